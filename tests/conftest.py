"""Shared test set-up: the TensorFlow backend, quiet logs, and tiny configs."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

TINY = ["gan.width=0.125", "gan.latent_dim=8", "gan.kernel_size=3", "train.verbose=0",
        "train.sample_images=4", "train.batch_size=16"]


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Overrides that make a DCGAN small enough to train in a second on a CPU."""
    return list(TINY)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache in tmp_path, and downloads that fail as they do offline (recorded)."""
    import urllib.error
    from types import SimpleNamespace

    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    # Keras reads KERAS_HOME once, at import; get_file asks keras_home() for it at every call.
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    attempts: list[tuple[str, str]] = []

    def offline(url, filename, *args, **kwargs):
        attempts.append((url, filename))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    return SimpleNamespace(models=home / "models", attempts=attempts)


def pytest_collection_modifyitems(config, items):
    """Skips the tests marked ``tensorflow_only`` on other backends, with the reason each gives."""
    name = os.environ["KERAS_BACKEND"]
    for item in items:
        marker = item.get_closest_marker("tensorflow_only")
        if marker is not None and name != "tensorflow":
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only: {marker.args[0]}"))
