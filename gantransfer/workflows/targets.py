"""The data and trunk a workflow works on: the configured dataset, loaded once at the GAN's size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from gantransfer.config import Config, load_config
from gantransfer.data import Dataset, ImageSet, load_dataset
from gantransfer.errors import DataError
from gantransfer.gan.train import load_gan_data
from gantransfer.transfer_learning.trunks import TrunkArchitecture, architecture_of


def load_target(config: Config, image_size: int, channels: int | None, *,
                test_split: float | None = None, seed: int | None = None) -> Dataset:
    """The configured dataset at this size, all of its training split kept (no validation split):
    the GAN trains on it, the GAN scoring draws real images from its test split, and the transfer
    protocol draws its labeled budgets and their validation images from it. ``test_split`` and
    ``seed`` override the config's, to hold out another run's test split."""
    return load_gan_data(config, image_size=image_size, channels=channels, test_split=test_split,
                         seed=seed)


def target_data(config: Config, disc_model: keras.Model | None,
                gan_run: dict[str, Any] | None = None) -> tuple[Dataset, list[str]]:
    """Loads the target, at the discriminator's image size and channels when there is one.

    With the manifest (``run.json``) of the GAN run the discriminator comes from, a target from the
    same source is split as the GAN's data was, so the test images are ones the GAN never trained
    on (see :func:`hold_out_the_gans_test_split`).
    """
    d = config.data
    notes = []
    size, channels = d.image_size, d.channels
    if disc_model is not None:
        given = architecture_of(disc_model)
        if size != given.image_size or channels not in (None, given.channels):
            notes.append(f"target images brought to the GAN's {given.image_size}x{given.image_size}"
                         f"x{given.channels} (the config asked for {size} px, channels {channels})")
        size, channels = given.image_size, given.channels
    data = load_target(config, size, channels)
    if gan_run is not None:
        data, held_out = hold_out_the_gans_test_split(config, data, gan_run)
        notes += held_out
    return data, notes


def hold_out_the_gans_test_split(config: Config, data: Dataset, gan_run: dict[str, Any]
                                 ) -> tuple[Dataset, list[str]]:
    """Makes the target's test split the one the GAN run held out, when both come from one source.

    Sources without their own test split (digits, folders, npz, IDX) hold one out by
    ``data.test_split`` and the split seed; a GAN trained with other values has seen some of this
    run's test images. The target is then loaded again with the GAN run's values, and the test
    images are checked against the fingerprint the run recorded.

    Returns:
        The data to use, and notes for the report.

    Raises:
        DataError: The test images still differ from the GAN's held-out ones (the source changed,
            say), unless ``transfer.allow_test_overlap``.
    """
    allowed = config.transfer.allow_test_overlap
    trained = gan_run.get("dataset") or {}
    if trained.get("source") != data.source:
        return data, []  # the GAN learned from other data: none of its images is a test image
    if "test_sha256" not in trained:
        return data, ["the GAN run does not record which images it held out (it predates "
                      "gantransfer 0.2), so whether it saw test images is unknown"]
    notes = []
    split = held_out_split(config, gan_run, data.source)
    if split != (config.data.test_split, config.data.split_seed):
        data = load_target(config, data.image_size, data.channels, test_split=split[0],
                           seed=split[1])
        notes.append(f"test split taken from the GAN run (data.test_split={split[0]}, split seed "
                     f"{split[1]}): the GAN trained on none of the {len(data.test)} test images")
    if data.test.fingerprint() != trained["test_sha256"]:
        problem = (f"the test images of {data.name} differ from the ones the GAN run held out "
                   f"({trained.get('test_images')} images), so the GAN may have trained on some")
        if not allowed:
            raise DataError(f"{problem}; use the data the GAN was trained on, or set "
                            "transfer.allow_test_overlap=true to run anyway (the report will say so)")
        notes.append(f"WARNING: {problem} (transfer.allow_test_overlap is set)")
    return data, notes


def held_out_split(config: Config, gan_run: dict[str, Any] | None,
                   source: str) -> tuple[float, int]:
    """``(test_split, split seed)`` of a transfer's test images on ``source``: those the GAN run
    held out when it trained on the same source (and recorded them), else the config's.

    Example:
        >>> from gantransfer.config import load_config
        >>> held_out_split(load_config(None, ["train.seed=3"]), None, "sklearn digits")
        (0.2, 3)
    """
    trained = (gan_run or {}).get("dataset") or {}
    if trained.get("source") == source and "test_sha256" in trained:
        return float(trained["test_split"]), int(trained["split_seed"])
    return config.data.test_split, int(config.data.split_seed or 0)  # resolved: never None


@dataclass(frozen=True)
class RunSplit:
    """The dataset a run used and how its test images were held out (for sources without a test
    split of their own)."""

    dataset: str
    test_split: float
    seed: int


def run_split(model_file: Path) -> RunSplit | None:
    """The split of the run a model file belongs to: a classifier in a ``transfer`` or ``compare``
    run's ``models/``, or a ``train-gan`` run's discriminator; None for a file outside a run.

    Read from the run's ``run.json`` (which records the split it held out) and ``config.yaml``; a
    run without the record (unfinished, or older) held out by its config's.

    Raises:
        ConfigError: The run's ``config.yaml`` cannot be read.
    """
    run_dir = model_file.parent.parent if model_file.parent.name == "models" else model_file.parent
    if not (run_dir / "config.yaml").is_file():
        return None
    config = load_config(run_dir / "config.yaml")
    try:
        manifest = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    record = manifest if isinstance(manifest, dict) else {}
    if "split_seed" not in record:  # a train-gan run records it with its dataset
        record = record.get("dataset") if isinstance(record.get("dataset"), dict) else {}
    if "split_seed" in record and "test_split" in record:
        return RunSplit(config.data.dataset, float(record["test_split"]), int(record["split_seed"]))
    return RunSplit(config.data.dataset, config.data.test_split, int(config.data.split_seed or 0))


def trunk_architecture(config: Config, data: Dataset,
                       disc_model: keras.Model | None) -> TrunkArchitecture:
    """The discriminator's trunk architecture, or the configured GAN's for the data's images."""
    if disc_model is not None:
        return architecture_of(disc_model)
    g = config.gan
    return TrunkArchitecture(data.image_size, data.channels, width=g.width,
                             kernel_size=g.kernel_size, leaky_relu_slope=g.leaky_relu_slope)


def test_pool(model: keras.Model, dataset: str, split: RunSplit | None = None
              ) -> tuple[Dataset, ImageSet]:
    """``dataset`` at ``model``'s input size and channels, and the images to look at or attack: its
    test split (its training split when it has no test split).

    With the ``split`` of the run the model comes from (:func:`run_split`), a source without a test
    split of its own is split as that run split it, so the pool holds none of the images the model
    trained on; without one, by the defaults (a fifth held out, seed 0).
    """
    _, size, _, channels = model.input_shape
    held_out = ({"test_split": split.test_split, "seed": split.seed}
                if split is not None and split.dataset == dataset else {"seed": 0})
    data = load_dataset(dataset, image_size=int(size), channels=int(channels), **held_out)
    return data, data.test if len(data.test) else data.train
