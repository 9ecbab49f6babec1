"""The data and trunk a workflow works on: the configured dataset, loaded once at the GAN's size."""

from __future__ import annotations

from typing import Any

import keras

from gantransfer.config import Config
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
    split = (trained["test_split"], trained["split_seed"])
    if split != (config.data.test_split, config.train.seed):
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


def trunk_architecture(config: Config, data: Dataset,
                       disc_model: keras.Model | None) -> TrunkArchitecture:
    """The discriminator's trunk architecture, or the configured GAN's for the data's images."""
    if disc_model is not None:
        return architecture_of(disc_model)
    g = config.gan
    return TrunkArchitecture(data.image_size, data.channels, width=g.width,
                             kernel_size=g.kernel_size, leaky_relu_slope=g.leaky_relu_slope)


def test_pool(model: keras.Model, dataset: str) -> tuple[Dataset, ImageSet]:
    """``dataset`` at ``model``'s input size and channels, and the images to look at or attack: its
    test split (its training split when it has no test split)."""
    _, size, _, channels = model.input_shape
    data = load_dataset(dataset, image_size=int(size), channels=int(channels), seed=0)
    return data, data.test if len(data.test) else data.train
