"""The dataset containers, the seeded splits, and per-class label budgets.

An :class:`ImageSet` is one split: uint8 images in memory, or a list of files decoded on demand when
the folder is too large to hold. A :class:`Dataset` bundles the train, validation and test splits with
what a model needs to know about them (image size, channels, classes).

Example:
    >>> import numpy as np
    >>> images = ImageSet(np.zeros((4, 8, 8, 1), "uint8"), np.array([0, 1, 0, 1]))
    >>> len(images), images.labeled, images.subset([1, 3]).y.tolist()
    (4, True, [1, 1])
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gantransfer.data.folders import decode_image
from gantransfer.errors import DataError


@dataclasses.dataclass(repr=False)
class ImageSet:
    """One split of a dataset: images and, when labeled, their classes.

    In memory, ``x`` holds uint8 ``(N, H, W, C)`` images already resized to ``image_size`` and
    converted to the target channels; ``image_size`` and ``channels`` are then read from its shape.
    Streamed (an image folder too large for memory), ``x`` is None and ``paths`` lists the files,
    which :meth:`load` decodes and transforms on demand.

    Attributes:
        x: uint8 ``(N, image_size, image_size, channels)``, or None when streamed.
        y: int64 ``(N,)`` class indices, or None when unlabeled.
        paths: Image files of a streamed set, or None in memory.
        image_size: Side length of every image.
        channels: 1 (greyscale) or 3 (RGB).

    Example:
        >>> images = ImageSet(np.zeros((2, 16, 16, 3), "uint8"), None)
        >>> images.load(np.array([1])).shape, images.labeled, images.streamed
        ((1, 16, 16, 3), False, False)
    """

    x: np.ndarray | None
    y: np.ndarray | None
    paths: list[str] | None = None
    image_size: int = 32
    channels: int = 1
    _streamed_fingerprint: str | None = dataclasses.field(default=None, init=False, repr=False,
                                                          compare=False)

    def __post_init__(self) -> None:
        if (self.x is None) == (self.paths is None):
            raise DataError("an ImageSet needs exactly one of x (decoded images) or paths (files to "
                            f"stream), received x={'None' if self.x is None else 'an array'} and "
                            f"paths={'None' if self.paths is None else 'a list'}")
        if self.x is not None:
            x = np.asarray(self.x)
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != x.shape[2]:
                raise DataError(f"ImageSet.x must be uint8 (N, S, S, C), received {x.dtype} "
                                f"{x.shape}; convert with gantransfer.data.prepare_images")
            self.x = x
            self.image_size, self.channels = int(x.shape[1]), int(x.shape[3])
        else:
            self.paths = [str(path) for path in self.paths]
        if self.y is not None:
            self.y = np.asarray(self.y).astype("int64", copy=False).reshape(-1)
            if len(self.y) != len(self):
                raise DataError(f"an ImageSet has {len(self)} images but {len(self.y)} labels; "
                                "give one label per image")

    def __len__(self) -> int:
        return len(self.x) if self.x is not None else len(self.paths)

    def __repr__(self) -> str:
        return (f"ImageSet(n={len(self)}, image_size={self.image_size}, channels={self.channels}, "
                f"labeled={self.labeled}, streamed={self.streamed})")

    @property
    def labeled(self) -> bool:
        """Whether the images have class labels."""
        return self.y is not None

    @property
    def streamed(self) -> bool:
        """Whether the images are decoded from files on demand instead of held in memory."""
        return self.x is None

    def load(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """Returns the images at ``indices`` as uint8, decoding them first when streamed.

        Args:
            indices: Positions in this set, in the order wanted.

        Returns:
            uint8 ``(len(indices), image_size, image_size, channels)``.

        Raises:
            DataError: A streamed file cannot be decoded any more (changed since the scan).

        Example:
            >>> ImageSet(np.zeros((5, 8, 8, 1), "uint8"), None).load([0, 4]).shape
            (2, 8, 8, 1)
        """
        indices = np.asarray(indices, dtype="int64").reshape(-1)
        if self.x is not None:
            return self.x[indices]
        out = np.empty((len(indices), self.image_size, self.image_size, self.channels), "uint8")
        for row, index in enumerate(indices):
            path = self.paths[index]
            try:
                out[row] = decode_image(path, self.image_size, self.channels)
            except Exception as error:
                raise DataError(f"cannot decode {path} ({type(error).__name__}: "
                                f"{str(error).splitlines()[0] if str(error) else 'no detail'}); "
                                "remove or replace the file and run again") from error
        return out

    def fingerprint(self) -> str:
        """A SHA-256 of what this set holds: its pixels and its labels.

        Two loads of one source with the same split give the same fingerprint, whether the images
        are held in memory or streamed (decoded here a chunk at a time); a run folder records it
        so that a later run can tell whether it holds out the same images.

        Example:
            >>> a = ImageSet(np.zeros((2, 4, 4, 1), "uint8"), np.arange(2))
            >>> a.fingerprint() == a.subset([0, 1]).fingerprint() != a.subset([1, 0]).fingerprint()
            True
        """
        if self.x is None and self._streamed_fingerprint is not None:
            return self._streamed_fingerprint  # its files were decoded once already
        digest = hashlib.sha256()
        shape = (len(self), self.image_size, self.image_size, self.channels)
        digest.update(repr(shape).encode())
        if self.x is not None:
            digest.update(np.ascontiguousarray(self.x).tobytes())
        else:
            for start in range(0, len(self), 1024):
                rows = np.arange(start, min(start + 1024, len(self)))
                digest.update(np.ascontiguousarray(self.load(rows)).tobytes())
        if self.y is not None:
            digest.update(np.asarray(self.y, "int64").tobytes())
        if self.x is None:
            self._streamed_fingerprint = digest.hexdigest()
        return digest.hexdigest()

    def subset(self, indices: np.ndarray | Sequence[int]) -> ImageSet:
        """Returns a new ImageSet with the images (and labels) at ``indices``, copied.

        Args:
            indices: Positions in this set.

        Returns:
            An :class:`ImageSet` of ``len(indices)`` images, in memory or streamed like this one.

        Example:
            >>> ImageSet(np.zeros((5, 8, 8, 1), "uint8"), np.arange(5)).subset([4, 0]).y.tolist()
            [4, 0]
        """
        indices = np.asarray(indices, dtype="int64").reshape(-1)
        y = self.y[indices] if self.y is not None else None
        if self.x is not None:
            return ImageSet(self.x[indices], y)
        return ImageSet(None, y, paths=[self.paths[i] for i in indices],
                        image_size=self.image_size, channels=self.channels)


@dataclasses.dataclass(repr=False)
class Dataset:
    """The train, validation and test splits of one data source, and what they contain.

    Attributes:
        name: The registry name, or the path given to :func:`~gantransfer.data.load_dataset`.
        source: Where the data came from, for people (a path, ``keras.datasets.mnist``, ...).
        train: Training images.
        val: Validation images held out of the training split (may be empty).
        test: Test images: the source's own test split, or one held out with ``test_split``.
        image_size: Side length of every image.
        channels: 1 or 3.
        num_classes: Number of classes, or None when unlabeled.
        class_names: One name per class index, or None when unlabeled.
        skipped_files: Corrupt or non-image files skipped in a folder.

    Example:
        >>> from gantransfer.data import load_dataset
        >>> data = load_dataset("digits", image_size=32)
        >>> data.num_classes, data.train.x.shape[1:]
        (10, (32, 32, 1))
    """

    name: str
    source: str
    train: ImageSet
    val: ImageSet
    test: ImageSet
    image_size: int
    channels: int
    num_classes: int | None
    class_names: list[str] | None
    skipped_files: int = 0

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, image_size={self.image_size}, channels={self.channels}, "
                f"num_classes={self.num_classes}, streamed={self.train.streamed})")

    def with_label_budget(self, labels_per_class: int, seed: int) -> Dataset:
        """Returns a copy whose training split keeps only ``labels_per_class`` images per class.

        The validation and test splits are left whole. The selection is nested: for one seed, the
        images chosen for a budget of 10 are among those chosen for a budget of 100.

        Args:
            labels_per_class: Labeled training images to keep per class.
            seed: Seed of the selection.

        Returns:
            A new :class:`Dataset` sharing ``val`` and ``test`` with this one.

        Raises:
            DataError: The dataset is unlabeled, or a class has fewer training images than asked.

        Example:
            >>> small = load_dataset("digits").with_label_budget(5, seed=0)  # doctest: +SKIP
            >>> len(small.train)  # doctest: +SKIP
            50
        """
        if not self.train.labeled:
            raise DataError(f"dataset {self.name!r} is unlabeled, so labels_per_class cannot apply; "
                            "use a labeled source (a folder with one subfolder per class, an .npz "
                            "with y, or a registered dataset)")
        chosen = select_labels_per_class(self.train.y, labels_per_class, seed,
                                         class_names=self.class_names)
        return dataclasses.replace(self, train=self.train.subset(chosen))

    def summary(self) -> dict[str, Any]:
        """Describes the dataset in plain JSON-able values, for logs and run manifests.

        Returns:
            A dict with the name, source, shape, classes and split sizes.

        Example:
            >>> load_dataset("digits").summary()["num_classes"]  # doctest: +SKIP
            10
        """
        return {"name": self.name, "source": self.source, "image_size": self.image_size,
                "channels": self.channels, "num_classes": self.num_classes,
                "class_names": self.class_names, "train": len(self.train), "val": len(self.val),
                "test": len(self.test), "streamed": self.train.streamed,
                "skipped_files": self.skipped_files}


def select_labels_per_class(y: np.ndarray, labels_per_class: int, seed: int, *,
                            class_names: Sequence[str] | None = None) -> np.ndarray:
    """Picks ``labels_per_class`` example indices from every class, reproducibly.

    Each class's examples are permuted with a generator seeded by ``(seed, class position)`` and the
    first ``labels_per_class`` kept, so budgets are nested for a seed and independent across classes.

    Args:
        y: Labels, ``(N,)``.
        labels_per_class: How many examples to keep per class (>= 1).
        seed: Non-negative seed.
        class_names: Names of class indices ``0..K-1``; when given, every one of the K classes must
            have enough examples (even one absent from ``y``), and errors name the class.

    Returns:
        Sorted int64 indices into ``y``, ``labels_per_class`` per class.

    Raises:
        DataError: A class has fewer than ``labels_per_class`` examples, or the arguments are bad.

    Example:
        >>> select_labels_per_class(np.array([0, 1, 0, 1, 0, 1]), 2, seed=0).shape
        (4,)
    """
    if y is None:
        raise DataError("select_labels_per_class needs labels, received y=None; use a labeled dataset")
    if isinstance(labels_per_class, bool) or not isinstance(labels_per_class, (int, np.integer)) \
            or labels_per_class < 1:
        raise DataError(f"labels_per_class must be an integer >= 1, received {labels_per_class!r}")
    seed = _check_seed(seed)
    y = np.asarray(y).reshape(-1)
    classes = np.arange(len(class_names)) if class_names is not None else np.unique(y)
    members = [np.flatnonzero(y == value) for value in classes]
    counts = np.array([len(m) for m in members])
    if len(counts) and counts.min() < labels_per_class:
        short = int(np.argmin(counts))
        name = class_names[short] if class_names is not None else str(classes[short])
        raise DataError(f"class {name!r} has only {counts[short]} training examples, fewer than "
                        f"labels_per_class={labels_per_class}; use labels_per_class <= "
                        f"{counts.min()} or add more data")
    chosen = [np.random.default_rng([seed, position]).permutation(m)[:labels_per_class]
              for position, m in enumerate(members)]
    return np.sort(np.concatenate(chosen)).astype("int64") if chosen else np.empty(0, "int64")


def holdout_indices(n: int, fraction: float, seed: int, y: np.ndarray | None = None, *,
                    stream: int = 0, what: str = "fraction") -> tuple[np.ndarray, np.ndarray]:
    """Splits ``range(n)`` into kept and held-out indices, reproducibly.

    ``ceil(fraction * n)`` indices are held out. With labels where every class has at least two
    examples (and both parts can hold every class) the split is stratified, keeping class
    proportions; otherwise it is plain random.

    Args:
        n: Number of items.
        fraction: Share to hold out, in [0, 1).
        seed: Non-negative seed.
        y: Labels for stratification, or None.
        stream: Tells apart independent draws from one seed (the test and the validation split).
        what: The setting's name, for error messages.

    Returns:
        ``(kept, held)``: sorted int64 index arrays.

    Raises:
        DataError: Holding out that share leaves nothing to keep.

    Example:
        >>> kept, held = holdout_indices(10, 0.2, seed=0)
        >>> len(kept), len(held)
        (8, 2)
    """
    seed = _check_seed(seed)
    every = np.arange(n, dtype="int64")
    if fraction <= 0 or n == 0:
        return every, np.empty(0, dtype="int64")
    n_held = math.ceil(fraction * n)
    if n_held >= n:
        raise DataError(f"{what}={fraction} holds out {n_held} of {n} images and leaves none to "
                        f"train on; lower {what} or add data")
    generator = np.random.default_rng([seed, stream])
    if y is not None:
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and n_held >= len(counts) and n - n_held >= len(counts):
            from sklearn.model_selection import train_test_split

            kept, held = train_test_split(every, test_size=n_held, stratify=np.asarray(y),
                                          random_state=int(generator.integers(2**31 - 1)))
            return np.sort(kept), np.sort(held)
    order = generator.permutation(n)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, received {seed!r}")
    return int(seed)
