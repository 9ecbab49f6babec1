"""TensorFlow and JAX give the same GAN steps, and each continues the other's runs.

Keras reads ``KERAS_BACKEND`` once per process, so each backend runs in a subprocess of its own.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY

BACKENDS = ("tensorflow", "jax")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in BACKENDS),
    reason="needs both backends: pip install -e '.[tensorflow,jax,test]'")]

# The same DCGAN (weights from one file), the same real batches and the same noise under each
# backend, a few steps run eagerly so that the noise can be handed to each step.
STEPS = """
import json, sys
from pathlib import Path
import numpy as np
import keras
from gantransfer.config import load_config
from gantransfer.gan.train import build_dcgan

folder, overrides = Path(sys.argv[1]), sys.argv[2:]
keras.utils.set_random_seed(0)  # TensorFlow's initial weights, and so the losses, every time
gan = build_dcgan(load_config(None, overrides), 16, 1)
weights = folder / "initial.weights.h5"
if weights.exists():
    gan.load_weights(weights)
else:
    gan.save_weights(weights)
gan.compile(d_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5), run_eagerly=True)
rng = np.random.default_rng(0)
losses = []
for step in range(4):
    real = rng.uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    noise = rng.normal(size=(8, gan.latent_dim)).astype("float32")
    gan.sample_noise = lambda n, noise=noise: keras.ops.convert_to_tensor(noise)
    logs = gan.train_on_batch(real, return_dict=True)
    losses.append({k: float(v) for k, v in logs.items()})
print(json.dumps({"backend": keras.config.backend(), "losses": losses}))
"""


def _run(backend: str, args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("rotation", ["0", "1"])
def test_the_gan_steps_agree_across_backends(tmp_path, rotation):
    overrides = [*(o for o in TINY if not o.startswith("train.")),
                 f"gan.rotation_weight={rotation}"]
    runs = {}
    for backend in BACKENDS:  # TensorFlow writes the weights, JAX reads them
        out = _run(backend, ["-c", STEPS, str(tmp_path), *overrides]).stdout.strip().splitlines()
        runs[backend] = json.loads(out[-1])
        assert runs[backend]["backend"] == backend
    tf_losses, jax_losses = runs["tensorflow"]["losses"], runs["jax"]["losses"]
    assert len(tf_losses) == len(jax_losses) == 4
    assert sorted(tf_losses[0]) == sorted(jax_losses[0])  # the same metrics
    # The losses move (the steps train), and agree to 1e-3 relative after four Adam steps: float32
    # convolutions differ between TensorFlow's kernels and XLA's in the last bits only.
    assert abs(tf_losses[-1]["d_loss"] - tf_losses[0]["d_loss"]) > 1e-3
    for tf_step, jax_step in zip(tf_losses, jax_losses):
        for name in tf_step:
            assert jax_step[name] == pytest.approx(tf_step[name], rel=1e-3, abs=1e-4), name


@pytest.mark.parametrize("first, second", [BACKENDS, BACKENDS[::-1]])
def test_a_run_saved_under_one_backend_resumes_under_the_other(tmp_path, npz_images, first,
                                                                  second):
    run = tmp_path / "run"
    common = ["-m", "gantransfer", "train-gan", "--dataset", str(npz_images), "--image-size", "16",
              "--output-dir", str(run), "--quiet", *[f"--set={o}" for o in TINY]]
    _run(first, [*common, "--epochs", "1"])
    assert json.loads((run / "run.json").read_text())["machine"]["backend"] == first
    _run(second, [*common, "--epochs", "2", "--resume"])
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1"]  # epoch 0 kept, 1 added
    assert json.loads((run / "run.json").read_text())["machine"]["backend"] == second
    # The resumed run's models load under the first backend again.
    check = ("import sys, keras; import gantransfer\n"
             "g = keras.saving.load_model(sys.argv[1])\n"
             "print(g(keras.ops.zeros((2, g.input_shape[-1]))).shape)")
    out = _run(first, ["-c", check, str(run / "generator.keras")]).stdout.strip().splitlines()
    assert out[-1] == "(2, 16, 16, 1)"


@pytest.fixture
def npz_images(tmp_path) -> Path:
    """64 labeled 16x16 grey images in an .npz, as a user's own data."""
    rng = np.random.default_rng(0)
    path = tmp_path / "images.npz"
    np.savez(path, x=rng.integers(0, 256, (64, 16, 16, 1), dtype=np.uint8),
             y=rng.integers(0, 4, 64))
    return path
