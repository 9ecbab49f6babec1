"""Shuffled batches for ``fit()``, reproducible: of an ImageSet, across resumed runs; and of the
views an augmentation makes of some images, one view of each drawn every epoch.

Example:
    >>> import numpy as np
    >>> from gantransfer.data.core import ImageSet
    >>> batches = ImageBatches(ImageSet(np.zeros((10, 8, 8, 1), "uint8"), None), batch_size=4)
    >>> len(batches), batches[0].shape, float(batches[0].min())
    (3, (4, 8, 8, 1), -1.0)
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from gantransfer.backend.common import ArrayBatches
from gantransfer.data.core import ImageSet
from gantransfer.data.transforms import to_gan_range
from gantransfer.errors import DataError


class ImageBatches(keras.utils.PyDataset):
    """Batches of one :class:`ImageSet`, scaled to [-1, 1] float32 and shuffled per epoch.

    The order of epoch ``e`` is ``np.random.default_rng([seed, e]).permutation(len(images))``: it
    depends only on the seed and the epoch number, so a run resumed at ``initial_epoch=e`` sees the
    same batches as an uninterrupted one. Pass ``shuffle=False`` to ``fit()``: Keras would otherwise
    reorder these batches itself with Python's global ``random``. Keras also calls
    :meth:`on_epoch_end` once before the first epoch of every ``fit()``, so under ``fit`` the counter
    runs one ahead of Keras's epoch number, the same way in fresh and resumed runs. Streamed sets are
    decoded batch by batch; ``workers=`` (passed on to ``keras.utils.PyDataset``) decodes batches in
    parallel threads.

    Args:
        images: The split to serve.
        batch_size: Images per batch.
        seed: Non-negative seed of the per-epoch permutations.
        shuffle: Shuffle every epoch; False serves the images in order.
        initial_epoch: The epoch the first pass counts as (the one ``fit`` resumes at).
        with_labels: Serve ``(x, y)`` with int64 labels instead of ``x`` alone.
        drop_remainder: Leave out the last, smaller batch.
        **kwargs: ``workers``, ``use_multiprocessing``, ``max_queue_size`` for ``PyDataset``.

    Example:
        >>> data = load_dataset("digits")  # doctest: +SKIP
        >>> batches = ImageBatches(data.train, 64, seed=0, with_labels=True)  # doctest: +SKIP
        >>> model.fit(batches, epochs=3, shuffle=False)  # doctest: +SKIP
    """

    def __init__(self, images: ImageSet, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 initial_epoch: int = 0, with_labels: bool = False, drop_remainder: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(images, ImageSet):
            raise DataError(f"ImageBatches needs an ImageSet, received {type(images).__name__}; "
                            "pass a split such as dataset.train")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise DataError(f"batch_size must be an integer >= 1, received {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DataError(f"seed must be a non-negative integer, received {seed!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
                or initial_epoch < 0:
            raise DataError(f"initial_epoch must be an integer >= 0, received {initial_epoch!r}")
        if with_labels and not images.labeled:
            raise DataError("with_labels=True needs labeled images, received an unlabeled "
                            "ImageSet; use with_labels=False or a labeled dataset")
        if len(images) == 0:
            raise DataError("cannot batch an empty ImageSet; check the split sizes "
                            "(validation_split / test_split) or the dataset")
        if drop_remainder and len(images) < batch_size:
            raise DataError(f"batch_size={batch_size} is larger than the {len(images)} images and "
                            "drop_remainder=True leaves no batch; lower batch_size")
        self.images = images
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.initial_epoch = int(initial_epoch)
        self.with_labels = with_labels
        self.drop_remainder = drop_remainder
        self.epoch = self.initial_epoch
        self.order = self._order_for(self.epoch)

    def _order_for(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.images), dtype="int64")
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def __len__(self) -> int:
        if self.drop_remainder:
            return len(self.images) // self.batch_size
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        x = to_gan_range(self.images.load(rows))
        if self.with_labels:
            return x, self.images.y[rows]
        return x

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order_for(self.epoch)


class Views:
    """Every view an augmentation can make of some images, stacked, with how likely each is.

    ``stack`` is ``(n, V, ...)``: row ``i`` holds ``V`` versions of image ``i`` (a frozen trunk's
    features of it moved or mirrored, say), view 0 being the image as it is. ``probabilities``
    (``V``, summing to 1) is how often the augmentation makes each view. Training on
    :class:`ViewBatches` draws one view of each image per epoch with those probabilities, so it
    sees what training through the augmentation would, for the price of computing each view once;
    validation and scoring read :func:`originals`.

    Rows are taken like an array's: ``views[rows]`` is the ``Views`` of those images.

    Example:
        >>> views = Views(np.arange(12.0).reshape(3, 2, 2), [0.75, 0.25])
        >>> len(views), views[[2, 0]].stack.shape, originals(views).tolist()
        (3, (2, 2, 2), [[0.0, 1.0], [4.0, 5.0], [8.0, 9.0]])
    """

    def __init__(self, stack: np.ndarray, probabilities: Any) -> None:
        probabilities = np.asarray(probabilities, "float64")
        if stack.ndim < 2 or probabilities.shape != (stack.shape[1],):
            raise ValueError(f"Views needs a stack of shape (n, V, ...) and V probabilities, "
                             f"received {stack.shape} and {probabilities.shape}")
        if np.any(probabilities < 0) or not np.isclose(probabilities.sum(), 1.0):
            raise ValueError(f"view probabilities must be >= 0 and sum to 1, received "
                             f"{probabilities.tolist()}")
        self.stack = stack
        self.probabilities = probabilities / probabilities.sum()

    def __len__(self) -> int:
        return len(self.stack)

    def __getitem__(self, rows: Any) -> Views:
        return Views(self.stack[rows], self.probabilities)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one batch of views as a model reads it: ``(n, ...)``, the views axis gone."""
        return (self.stack.shape[0],) + self.stack.shape[2:]

    def drawn(self, rng: np.random.Generator, rows: np.ndarray | None = None) -> np.ndarray:
        """One view of each of ``rows`` (all images when None), each drawn on its own."""
        stack = self.stack if rows is None else self.stack[rows]
        chosen = rng.choice(len(self.probabilities), size=len(stack), p=self.probabilities)
        return stack[np.arange(len(stack)), chosen]

    @staticmethod
    def joined(first: Views, second: Views) -> Views:
        """The images of ``first`` then of ``second``, which must have the same views."""
        if not np.array_equal(first.probabilities, second.probabilities):
            raise ValueError("only views of the same augmentation can be joined")
        return Views(np.concatenate([first.stack, second.stack]), first.probabilities)


def originals(x: np.ndarray | Views) -> np.ndarray:
    """``x`` as it is, or of :class:`Views`, view 0 of every image: the images unaugmented."""
    return x.stack[:, 0] if isinstance(x, Views) else x


class ViewBatches(ArrayBatches):
    """Batches of ``(x, y)`` for ``fit`` where ``x`` is :class:`Views`: each epoch shuffles the
    images and draws one view of each.

    Epoch ``e``'s order and views are drawn from ``np.random.default_rng([seed, e])``, so a run
    repeats exactly, on every backend; ``fit`` ends an epoch with :meth:`on_epoch_end`.

    Example:
        >>> views = Views(np.stack([np.zeros((4, 1)), np.ones((4, 1))], axis=1), [0.5, 0.5])
        >>> batches = ViewBatches(views, np.arange(4), 2, shuffle=True, seed=0)
        >>> len(batches), sorted(float(v) for i in range(len(batches)) for v in batches[i][0].ravel())
        (2, [0.0, 0.0, 1.0, 1.0])
    """

    x: Views

    def _draw(self) -> np.random.Generator:
        rng = super()._draw()
        self.inputs = self.x.drawn(rng, self.order)
        return rng

    def _inputs(self, batch: slice) -> np.ndarray:
        return self.inputs[batch]
