"""The public API: every name in ``gt.__all__`` is what it says, whatever was imported before."""

import json
import os
import pkgutil
import subprocess
import sys

import pytest

import gantransfer as gt


def test_no_public_name_is_also_a_submodule_name():
    # Importing gantransfer.X binds the submodule to the attribute X of the package, silently
    # replacing a public function of the same name: such a pair must never exist.
    submodules = {info.name for info in pkgutil.iter_modules(gt.__path__)}
    assert not set(gt.__all__) & submodules


def test_every_public_name_survives_importing_every_module():
    script = """
import importlib, importlib.util, inspect, json, pkgutil, types
import gantransfer as gt
gt.trunk_from_discriminator  # the README's order, which once turned gt.transfer into a module
for info in pkgutil.walk_packages(gt.__path__, "gantransfer."):
    seam = info.name.removeprefix("gantransfer.backend.")
    if seam != info.name and importlib.util.find_spec(seam) is None:
        continue  # a backend's module where that backend is not installed
    if info.name != "gantransfer.__main__":
        importlib.import_module(info.name)
wrong = {}
for name in gt.__all__:
    value = getattr(gt, name)
    if isinstance(value, types.ModuleType):
        wrong[name] = "a module"
    elif name != "__version__" and not (callable(value) or isinstance(value, dict)):
        wrong[name] = type(value).__name__
print(json.dumps({"wrong": wrong, "transfer": callable(gt.transfer), "compare": callable(gt.compare)}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"wrong": {}, "transfer": True, "compare": True}


def test_loading_a_config_imports_no_backend():
    script = ("import gantransfer, sys; gantransfer.load_config(None); "
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, "
              "sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))[:5]")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_api_starts_the_backend_as_quietly_as_the_command_line():
    # The backend's C++ start-up lines come before any Python log level applies; the first public
    # name that needs Keras starts it with them silenced, and GANTRANSFER_BACKEND_LOGS=1 shows them.
    script = ("import sys, gantransfer as gt; gt.load_config('digits'); "
              "assert 'keras' not in sys.modules; gt.build_head; "
              "assert 'keras' in sys.modules; import keras; keras.ops.ones(2); print('ok')")
    runs = {}
    for logs in ("", "1"):
        env = {**os.environ, "GANTRANSFER_BACKEND_LOGS": logs}
        runs[logs] = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                    text=True, timeout=120, env=env)
        assert runs[logs].returncode == 0, runs[logs].stderr[-2000:]
        assert runs[logs].stdout.strip() == "ok"
    assert runs[""].stderr == ""
    if runs["1"].stderr == "":
        pytest.skip(f"Keras's {os.environ.get('KERAS_BACKEND', 'tensorflow')} backend prints no "
                    "start-up lines here: nothing to silence")


def test_load_classifier_rebuilds_the_toolkits_own_layers_where_keras_alone_cannot(tmp_path,
                                                                                   monkeypatch):
    # A saved linear probe holds GridMaxPooling, an ImageNet classifier BackbonePreprocess. In a
    # fresh interpreter nothing has imported the modules that register them with Keras.
    import keras
    import numpy as np

    from gantransfer.gan.features import GridMaxPooling
    from gantransfer.transfer_learning.backbones import BackbonePreprocess

    inputs = keras.Input((16, 16, 3))
    pooled = GridMaxPooling(4)(BackbonePreprocess("mobilenet")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(pooled)))
    path = tmp_path / "models" / "gan-linear-probe_lpc-10_seed-0.keras"
    path.parent.mkdir()
    model.save(path)
    registered = keras.saving.get_custom_objects()
    for name in ("gantransfer>GridMaxPooling", "gantransfer>BackbonePreprocess"):
        monkeypatch.delitem(registered, name)
    with pytest.raises(TypeError, match="Could not locate class"):
        keras.saving.load_model(path, compile=False)

    loaded = gt.load_classifier(path)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(pixels, verbose=0), model.predict(pixels, verbose=0),
                               rtol=1e-5, atol=1e-6)

    with pytest.raises(gt.GantransferError, match="is not a file; pass a classifier .keras file"):
        gt.load_classifier(tmp_path / "models" / "missing.keras")
    (tmp_path / "notes.keras").write_text("not a model")
    with pytest.raises(gt.GantransferError, match="cannot load .*notes.keras.* as a Keras model"):
        gt.load_classifier(tmp_path / "notes.keras")
