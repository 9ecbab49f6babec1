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
