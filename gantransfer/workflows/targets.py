"""The data and trunk a workflow works on: the configured dataset, loaded once at the GAN's size."""

from __future__ import annotations

import keras

from gantransfer.config import Config
from gantransfer.data import Dataset, load_dataset
from gantransfer.transfer_learning.trunks import TrunkArchitecture, architecture_of


def load_target(config: Config, image_size: int, channels: int | None) -> Dataset:
    """The configured dataset at this size, all of its training split kept (no validation split):
    the GAN trains on it, the GAN scoring draws real images from its test split, and the transfer
    protocol draws its labeled budgets and their validation images from it."""
    d = config.data
    return load_dataset(d.dataset, image_size=image_size, channels=channels, validation_split=0.0,
                        test_split=d.test_split, seed=config.train.seed,
                        max_in_memory_mb=d.max_in_memory_mb)


def target_data(config: Config, disc_model: keras.Model | None) -> tuple[Dataset, list[str]]:
    """Loads the target, at the discriminator's image size and channels when there is one."""
    d = config.data
    notes = []
    size, channels = d.image_size, d.channels
    if disc_model is not None:
        given = architecture_of(disc_model)
        if size != given.image_size or channels not in (None, given.channels):
            notes.append(f"target images brought to the GAN's {given.image_size}x{given.image_size}"
                         f"x{given.channels} (the config asked for {size} px, channels {channels})")
        size, channels = given.image_size, given.channels
    return load_target(config, size, channels), notes


def trunk_architecture(config: Config, data: Dataset,
                       disc_model: keras.Model | None) -> TrunkArchitecture:
    """The discriminator's trunk architecture, or the configured GAN's for the data's images."""
    if disc_model is not None:
        return architecture_of(disc_model)
    g = config.gan
    return TrunkArchitecture(data.image_size, data.channels, width=g.width,
                             kernel_size=g.kernel_size, leaky_relu_slope=g.leaky_relu_slope)
