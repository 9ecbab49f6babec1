"""Datasets: a registry of named sources, image folders, npz and IDX files, splits and label budgets.

:func:`load_dataset` returns a :class:`Dataset` of uint8 :class:`ImageSet` splits; :class:`ImageBatches`
serves one split to ``fit()`` in the GAN's [-1, 1] range.

Example:
    >>> from gantransfer.data import ImageBatches, load_dataset
    >>> data = load_dataset("digits", image_size=32, labels_per_class=10, seed=0)
    >>> batches = ImageBatches(data.train, batch_size=32, seed=0, with_labels=True)
    >>> x, y = batches[0]
    >>> x.shape, x.dtype.name, y.shape
    ((32, 32, 32, 1), 'float32', (32,))
"""

from gantransfer.data.batches import ImageBatches
from gantransfer.data.core import Dataset, ImageSet, select_labels_per_class
from gantransfer.data.sources import DATASETS, load_dataset
from gantransfer.data.transforms import (GAN_RANGE, convert_channels, gan_range_layer,
                                         prepare_images, resize_images, to_gan_range)

__all__ = [
    "DATASETS",
    "GAN_RANGE",
    "Dataset",
    "ImageBatches",
    "ImageSet",
    "convert_channels",
    "gan_range_layer",
    "load_dataset",
    "prepare_images",
    "resize_images",
    "select_labels_per_class",
    "to_gan_range",
]
