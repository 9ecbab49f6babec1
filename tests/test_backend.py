"""The backend seam: which module it picks, its clear refusal, and each function's contract."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from gantransfer import backend
from gantransfer.errors import GantransferError

PACKAGE = Path(__file__).resolve().parent.parent / "gantransfer"


def test_the_seam_picks_the_module_of_the_keras_backend():
    import importlib

    name = keras.config.backend()
    seam = importlib.import_module(f"gantransfer.backend.{name}")
    assert backend.resolve() is seam
    assert backend.resolve(name) is seam


@pytest.mark.parametrize("name", ["torch", "numpy", "openvino"])
def test_an_unsupported_backend_is_refused_by_name(name):
    with pytest.raises(backend.UnsupportedBackendError) as caught:
        backend.resolve(name)
    message = str(caught.value)
    assert f"received KERAS_BACKEND={name!r}" in message
    assert "supports the jax and tensorflow backends" in message
    assert "Set KERAS_BACKEND=jax or tensorflow" in message
    # The CLI reports it in one line; code that expects NotImplementedError still catches it.
    assert isinstance(caught.value, GantransferError) and isinstance(caught.value, NotImplementedError)


@pytest.mark.parametrize("name", ["tensorflow", "jax"])
def test_a_backend_that_is_not_installed_is_one_clear_line_from_the_cli(tmp_path, name):
    # The package installs with either backend alone; asking for the other names the extra.
    other = "jax" if name == "tensorflow" else "tensorflow"
    script = (f"import sys; sys.modules[{name!r}] = None; sys.argv = sys.argv[1:]; "
              "from gantransfer.cli import main; main()")
    result = subprocess.run(
        [sys.executable, "-c", script, "gantransfer", "train-gan", "--epochs", "1",
         "--output-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KERAS_BACKEND": name})
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"Error: KERAS_BACKEND={name}, but {name} is not installed: pip install "
                           f"'gantransfer[{name}]'"), line
    assert len(line.splitlines()) == 1
    installed = importlib.util.find_spec(other) is not None
    assert line.endswith(f", or set KERAS_BACKEND={other}") == installed, line
    assert not (tmp_path / "run").exists()


def test_the_gan_step_says_which_backend_it_got(monkeypatch):
    from gantransfer.gan.models import build_discriminator, build_generator
    from gantransfer.gan.dcgan import DCGAN

    gan = DCGAN(build_generator(28, 1, latent_dim=4, width=0.125),
                build_discriminator(28, 1, width=0.125), seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam())
    monkeypatch.setattr(keras.config, "backend", lambda: "torch")
    with pytest.raises(backend.UnsupportedBackendError, match="received KERAS_BACKEND='torch'"):
        gan.train_step(np.zeros((2, 28, 28, 1), "float32"))


def test_value_and_gradient_of_a_sum_of_squares():
    x = np.array([[1.0, -2.0], [0.5, 3.0]], "float32")
    value, gradient = backend.value_and_gradient(lambda t: ops.sum(t ** 2), x)
    assert float(value) == pytest.approx(1 + 4 + 0.25 + 9)
    np.testing.assert_allclose(ops.convert_to_numpy(gradient), 2 * x)


def test_value_and_gradient_through_a_layer_differentiates_the_input_only():
    dense = keras.layers.Dense(3, use_bias=False)
    dense.build((None, 2))
    kernel = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 4.0]], "float32")
    dense.set_weights([kernel])
    x = np.array([[0.3, -0.7]], "float32")
    value, gradient = backend.value_and_gradient(lambda t: ops.sum(dense(t)), x)
    assert float(value) == pytest.approx(float((x @ kernel).sum()), rel=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(gradient), kernel.sum(axis=1)[None], rtol=1e-6)
    np.testing.assert_array_equal(dense.get_weights()[0], kernel)  # nothing was updated


def _epoch(dataset):
    xs, ys = [], []
    for x, y in dataset:
        xs.append(ops.convert_to_numpy(x))
        ys.append(ops.convert_to_numpy(y))
    return [len(y) for y in ys], np.concatenate(xs), np.concatenate(ys)


def test_make_dataset_gives_every_example_once_per_epoch_and_reshuffles_from_the_seed():
    x = np.arange(20, dtype="float32")[:, None] * np.ones((1, 3), "float32")
    y = np.arange(20)
    data = backend.make_dataset(x, y, 6, shuffle=True, seed=1)
    sizes, x1, y1 = _epoch(data)
    _, x2, y2 = _epoch(data)
    assert sizes == [6, 6, 6, 2]
    for xs, ys in ((x1, y1), (x2, y2)):
        assert sorted(ys.tolist()) == list(range(20))  # each example exactly once
        np.testing.assert_array_equal(xs[:, 0], ys)  # inputs stay with their labels
    assert not np.array_equal(y1, y2) and not np.array_equal(y1, y)  # a new order each epoch
    _, _, again = _epoch(backend.make_dataset(x, y, 6, shuffle=True, seed=1))
    _, _, other = _epoch(backend.make_dataset(x, y, 6, shuffle=True, seed=2))
    np.testing.assert_array_equal(again, y1)
    assert not np.array_equal(other, y1)
    assert not np.array_equal(other, y2)  # seed 2 does not replay seed 1 one epoch late
    _, _, ordered = _epoch(backend.make_dataset(x, y, 6))
    np.testing.assert_array_equal(ordered, y)


def test_only_the_tensorflow_module_imports_tensorflow():
    pattern = re.compile(r"^\s*(import tensorflow|from tensorflow\b)", re.MULTILINE)
    importing = sorted(str(path.relative_to(PACKAGE.parent)) for path in PACKAGE.rglob("*.py")
                       if pattern.search(path.read_text()))
    assert importing == ["gantransfer/backend/tensorflow.py"]


def test_the_seam_package_imports_nothing_heavy():
    script = ("import sys, gantransfer.backend; "
              "assert not {'keras', 'tensorflow', 'numpy'} & set(sys.modules), "
              "sorted({'keras', 'tensorflow', 'numpy'} & set(sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_quiet_start_determinism_and_devices_in_a_fresh_process():
    # One fresh process: determinism is a process-wide switch, and backends print their start-up
    # lines only on their first import. A run sets it as it asks; one deterministic run does not
    # leave the next deterministic (on TensorFlow, that also turned XLA off).
    script = """
import os
import sys
import gantransfer
from gantransfer import backend
name = os.environ["KERAS_BACKEND"]
backend.import_quietly()
assert name in sys.modules and "keras" in sys.modules
from gantransfer.gan.train import seed_everything
from gantransfer.runs import machine_description
if name == "tensorflow":
    from tensorflow.python.framework.config import is_op_determinism_enabled  # no public twin
    deterministic = is_op_determinism_enabled
else:  # XLA reads its flags when it starts; on a CPU it is deterministic already
    deterministic = lambda: "--xla_gpu_deterministic_ops=true" in os.environ.get("XLA_FLAGS", "")
assert not deterministic()
seed_everything(0, deterministic=True)
assert deterministic()
seed_everything(0)  # the next run, not deterministic: what the last one turned on goes off
assert not deterministic()
seed_everything(0, deterministic=True)
assert deterministic()
seed_everything(0)
assert not deterministic()
backend.resolve().enable_determinism()  # turned on by the caller, before any run: left on
seed_everything(0, deterministic=True)
seed_everything(0)
assert deterministic()
machine = machine_description()
assert machine["backend"] == name and isinstance(machine["gpus"], list), machine
assert machine["float32_math"] == "fp32", machine  # no GPU here: float32 is IEEE float32
print("ok")
"""
    # An earlier test in this worker may have asked JAX for determinism, which sets XLA_FLAGS here.
    fresh = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env=fresh)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
    assert result.stderr == ""  # the backend's start-up lines went nowhere


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
@pytest.mark.parametrize("setting, logs", [(None, None), ("", None), (None, "1")])
def test_on_jax_the_command_line_keeps_compiled_steps_unless_told_not_to(tmp_path, setting, logs):
    script = ("from gantransfer import backend; backend.import_quietly(); "
              "import jax, jax.numpy as jnp; jax.jit(lambda x: x * 2 + 1)(jnp.ones(3)); "
              "print(jax.config.jax_compilation_cache_dir)")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env.update(KERAS_BACKEND="jax", XDG_CACHE_HOME=str(tmp_path))
    if setting is not None:
        env["JAX_COMPILATION_CACHE_DIR"] = setting  # empty: the user turned the cache off
    if logs is not None:  # showing the backend's start-up lines changes nothing else
        env["GANTRANSFER_BACKEND_LOGS"] = logs
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    cached = list((tmp_path / "gantransfer" / "jax").glob("*"))
    if setting is None:
        assert result.stdout.strip() == str(tmp_path / "gantransfer" / "jax")
        assert cached  # even a step that compiles in milliseconds is kept
    else:
        assert result.stdout.strip() == "" and not cached
