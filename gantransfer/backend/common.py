"""What the backend modules share that is not backend-specific: in-memory batches for ``fit``.

Only backend modules and the data layer import this; it needs Keras and NumPy, nothing of a backend.

Example:
    >>> batches = ArrayBatches(np.arange(5.0), np.arange(5), 2)
    >>> [y.tolist() for _, y in batches]
    [[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


class ArrayBatches(keras.utils.PyDataset):
    """In-memory ``(x, y)`` batches for ``fit``, reshuffled every epoch from a seed; no TensorFlow.

    Epoch ``e``'s order is a permutation drawn from ``np.random.default_rng([seed, e])``, so a run
    repeats exactly, on every backend, and no two seeds share an order at different epochs (seed
    ``s`` at epoch ``e + 1`` must not replay seed ``s + 1`` at ``e``). ``fit`` ends an epoch with
    :meth:`on_epoch_end`; a plain ``for`` loop over every batch ends one too. A subclass that draws
    more each epoch (an augmented view of each image, say) extends :meth:`_draw`, which returns the
    epoch's generator after the order, and serves a batch's rows from :meth:`_inputs`.

    Example:
        >>> batches = ArrayBatches(np.arange(5.0), np.arange(5), 2, shuffle=True, seed=0)
        >>> sorted(int(v) for _, y in batches for v in y)
        [0, 1, 2, 3, 4]
    """

    def __init__(self, x: Any, y: np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> None:
        super().__init__()
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.seed = shuffle, seed
        self.epoch = 0
        self._draw()

    def _draw(self) -> np.random.Generator:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
        return rng

    def _inputs(self, batch: slice) -> Any:
        """The inputs of the epoch's rows ``batch`` (positions in :attr:`order`)."""
        return self.x[self.order[batch]]

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self._inputs(batch), self.y[self.order[batch]]

    def __iter__(self) -> Any:
        for index in range(len(self)):
            yield self[index]
        self.on_epoch_end()

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()
