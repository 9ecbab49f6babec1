"""Training across replicas means what it means on one device (train.distribute=mirrored).

Two devices on this CPU: two logical CPU devices for TensorFlow's MirroredStrategy, two host
devices for JAX's keras.distribution.DataParallel. Each backend runs in a fresh process, since
both fix their devices when they start.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What both backends' scripts do: the same GAN, seed and batches on one device and on two
# replicas; the losses printed as JSON.
GAN_STEPS = """
import json, keras, numpy as np
from gantransfer.config import load_config
from gantransfer.gan.train import build_dcgan
from gantransfer.runtime import Runtime

x = np.random.default_rng(0).uniform(-1, 1, (64, 16, 16, 1)).astype("float32")
config = load_config(None, ["gan.width=0.125", "gan.latent_dim=8", "gan.kernel_size=3"])
losses = {}
for mode in ("none", "mirrored"):
    with Runtime(distribute=mode).activate() as runtime:
        keras.utils.set_random_seed(0)
        gan = build_dcgan(config, 16, 1)
        history = gan.fit(x, batch_size=32, epochs=2, verbose=0, shuffle=False).history
        losses[mode] = {"replicas": runtime.describe()["replicas"], **history}
print("GAN " + json.dumps(losses))
"""

CLASSIFIER_AND_RUN = """
from gantransfer import backend
from gantransfer.transfer_learning.classifiers import _compiled, build_classifier
from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
from gantransfer.gan.train import train_gan

rng = np.random.default_rng(0)
images, labels = rng.integers(0, 256, (64, 16, 16, 1)).astype("float32"), rng.integers(0, 4, 64)
fits = {}
for mode in ("none", "mirrored"):
    with Runtime(distribute=mode).activate():
        model = _compiled(lambda: build_classifier(
            build_gan_trunk(TrunkArchitecture(16, 1, width=0.125)), 4, kind="flatten"), 1e-3, 0)
        data = backend.make_dataset(images, labels, 32, shuffle=True, seed=0)
        fits[mode] = model.fit(data, epochs=3, verbose=0).history["loss"]
print("CLASSIFIER " + json.dumps(fits))
overrides = ["gan.width=0.125", "gan.latent_dim=8", "gan.kernel_size=3", "train.verbose=0",
             "train.sample_images=4", "train.batch_size=32", "train.epochs=1",
             "train.distribute=mirrored", "data.image_size=16"]
result = train_gan(load_config(None, overrides), RUN_DIR)
print("SYNCHRONIZED " + json.dumps(sorted(layer.name for layer in result.gan.discriminator.layers
                                          if getattr(layer, "synchronized", False))))
"""


def _run(script: str, env: dict[str, str], cwd: Path) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    return {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1])
            for line in result.stdout.splitlines()
            if line.startswith(("GAN ", "CLASSIFIER ", "SYNCHRONIZED "))}


def _same_gan_training(losses: dict[str, dict]) -> None:
    one, two = losses["none"], losses["mirrored"]
    assert (one.pop("replicas"), two.pop("replicas")) == (1, 2)
    assert one.keys() == two.keys() == {"d_loss", "g_loss", "d_real", "d_fake"}
    # Each replica draws its share of one global batch's noise, BatchNorm sees the global batch's
    # statistics, and the losses are the global batch's means: the same numbers, to float error.
    for key in one:
        assert one[key] == pytest.approx(two[key], abs=1e-4), key


@pytest.mark.slow
@pytest.mark.tensorflow_only("tf.distribute's MirroredStrategy over logical CPU devices")
def test_mirrored_training_on_two_logical_cpus_matches_one_device(tmp_path):
    run_dir = tmp_path / "run"
    script = ("import tensorflow as tf\n"
              "cpu = tf.config.list_physical_devices('CPU')[0]\n"
              "tf.config.set_logical_device_configuration(\n"
              "    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
              f"RUN_DIR = {str(run_dir)!r}\n" + GAN_STEPS + CLASSIFIER_AND_RUN)
    printed = _run(script, {"KERAS_BACKEND": "tensorflow"}, tmp_path)
    _same_gan_training(printed["GAN"])
    # A classifier's fit: Keras scales each replica's loss by the replica count; the two runs add
    # up the same gradients in another order, so they agree to within 1% over 3 epochs.
    one, two = printed["CLASSIFIER"]["none"], printed["CLASSIFIER"]["mirrored"]
    assert one == pytest.approx(two, rel=0.01)
    assert one[-1] < one[0]
    machine = json.loads((run_dir / "run.json").read_text())["machine"]
    assert (machine["distribute"], machine["replicas"]) == ("mirrored", 2)
    # Trained with BatchNormalization synchronized across the replicas, the files load anywhere
    # (JAX refuses synchronized BatchNormalization): none in them.
    assert printed["SYNCHRONIZED"] == ["block2_bn"]
    for name in ("generator.keras", "discriminator.keras"):
        config = zipfile.ZipFile(run_dir / name).read("config.json").decode()
        assert '"synchronized": true' not in config and "BatchNormalization" in config, name


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_data_parallel_training_on_two_jax_devices_matches_one_device(tmp_path):
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    _same_gan_training(_run(GAN_STEPS, env, tmp_path)["GAN"])
