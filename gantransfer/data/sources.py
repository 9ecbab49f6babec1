"""Where images come from: the registry of named datasets, files on disk, and :func:`load_dataset`.

Named datasets (:data:`DATASETS`) are plain functions returning the source's own arrays. Paths can
be an image folder, an ``.npz`` file, or MNIST-format IDX files. Every source goes through the same
steps: pixels to uint8, resize, channel conversion, labels to ``0..K-1``, then seeded splits.

Offline use: Keras built-ins are read straight from the Keras cache folder
(``$KERAS_HOME/datasets``, see :func:`keras_datasets_dir`) when the original files are there, and only
otherwise downloaded by ``keras.datasets``; Fashion-MNIST is read first from the Debian package
``dataset-fashion-mnist`` (:data:`FASHION_MNIST_DEBIAN_DIR`).

Example:
    >>> from gantransfer.data import load_dataset
    >>> data = load_dataset("digits", image_size=32, channels=3, labels_per_class=10, seed=1)
    >>> len(data.train), data.train.x.shape[1:]
    (100, (32, 32, 3))
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import logging
import math
import numbers
import os
import pickle
import stat
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gantransfer.data import folders
from gantransfer.data.core import Dataset, ImageSet, holdout_indices
from gantransfer.data.idx import IDX_NAME, find_idx_file, labels_file_for, read_idx
from gantransfer.data.transforms import GAN_OFFSET, GAN_RANGE, GAN_SCALE, prepare_images
from gantransfer.errors import DataError
from gantransfer.shapes import check_image_size

logger = logging.getLogger(__name__)

# The Debian package dataset-fashion-mnist installs the four original IDX files here.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_DATASETS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")

DIGIT_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck"]
# CIFAR-100's fine label names, in label order (the dataset's meta file lists them alphabetically).
CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly "
    "camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile "
    "cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp "
    "lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom "
    "oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine "
    "possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake "
    "spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor "
    "train trout tulip turtle wardrobe whale willow_tree wolf woman worm").split()

# Float arrays are converted in chunks of this many images so temporaries stay small.
_CHUNK = 2048


@dataclasses.dataclass
class SourceArrays:
    """Images as a source delivers them, before resizing, label encoding and splitting.

    Attributes:
        x_train: Images, ``(N, H, W)`` or ``(N, H, W, C)``, uint8 or float (see :func:`to_uint8_images`).
        y_train: Labels ``(N,)`` or ``(N, 1)``, or None when unlabeled.
        x_test: The source's own test images, or None to hold some out with ``test_split``.
        y_test: Their labels.
        class_names: Names of labels ``0..K-1`` when the labels already are class indices; None to
            take the sorted distinct label values as the classes.
        source: Where the arrays came from, for people.
    """

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    source: str = ""


def keras_home() -> Path:
    """The folder Keras caches downloads in: ``$KERAS_HOME``, by default ``~/.keras``.

    Keras reads ``KERAS_HOME`` once, when it is imported, and falls back to ``/tmp/.keras`` when
    that folder is not writable; this returns the folder it settled on.
    """
    try:
        from keras.src.backend.config import keras_home as keras_own_home

        home = keras_own_home()
    except ImportError:  # A Keras without the private accessor: mirror its rule.
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    base = os.path.expanduser(home)
    if os.path.isdir(base) and not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    return Path(base)


def keras_datasets_dir() -> Path:
    """The folder Keras caches datasets in: ``$KERAS_HOME/datasets``, by default ``~/.keras/datasets``.

    Returns:
        The folder (it may not exist yet).

    Example:
        >>> keras_datasets_dir().name
        'datasets'
    """
    return keras_home() / "datasets"


def imagenet_cache_dir() -> Path:
    """The folder Keras caches ImageNet weight files in, ``$KERAS_HOME/models``.

    Mirrors ``keras.utils.get_file(..., cache_subdir="models")``.

    Returns:
        The folder (it may not exist yet).

    Example:
        >>> imagenet_cache_dir().name
        'models'
    """
    return keras_home() / "models"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _download(name: str, load_data: Callable[..., Any], what: str, folder: Path,
              **kwargs: Any) -> Any:
    try:
        return load_data(**kwargs)
    except Exception as error:  # No network, a proxy, a bad hash: the fix is the same.
        raise DataError(f"could not download {name}: put {what} into {folder}/ (KERAS_HOME) and run "
                        f"again ({_first_line(error)})") from error


def _unreadable_cache(path: Path, error: BaseException) -> DataError:
    return DataError(f"cannot read the cached file {path} ({_first_line(error)}); delete it and run "
                     "again to download it, or replace it with a good copy")


def load_digits() -> SourceArrays:
    """scikit-learn's 1797 8x8 handwritten digits, embedded in the package: no download needed.

    Returns:
        :class:`SourceArrays` with uint8 ``(1797, 8, 8)`` images (0..16 scaled to 0..255).

    Example:
        >>> load_digits().x_train.shape
        (1797, 8, 8)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    x = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype("uint8")
    return SourceArrays(x, digits.target, class_names=DIGIT_CLASSES,
                        source="sklearn.datasets.load_digits")


def load_mnist() -> SourceArrays:
    """MNIST from the Keras cache (``mnist.npz``), downloading it with Keras when missing.

    Returns:
        :class:`SourceArrays` with 60000 train and 10000 test ``28x28`` greyscale digits.

    Raises:
        DataError: The file is missing and cannot be downloaded, or it is unreadable.

    Example:
        >>> load_mnist().x_test.shape  # doctest: +SKIP
        (10000, 28, 28)
    """
    folder = keras_datasets_dir()
    cached = folder / "mnist.npz"
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as f:
                arrays = [f[key] for key in ("x_train", "y_train", "x_test", "y_test")]
        except Exception as error:
            raise _unreadable_cache(cached, error) from error
        return SourceArrays(*arrays, class_names=DIGIT_CLASSES, source=f"keras.datasets.mnist ({cached})")
    (x, y), (x_test, y_test) = _download(
        "mnist", keras.datasets.mnist.load_data, f"mnist.npz from {KERAS_DATASETS_URL}mnist.npz", folder)
    return SourceArrays(x, y, x_test, y_test, DIGIT_CLASSES, "keras.datasets.mnist")


def load_fashion_mnist() -> SourceArrays:
    """Fashion-MNIST from the Debian package, the Keras cache, or a Keras download, in that order.

    Returns:
        :class:`SourceArrays` with 60000 train and 10000 test ``28x28`` greyscale clothing images.

    Raises:
        DataError: No local copy and the download fails, or a local file is malformed.

    Example:
        >>> load_fashion_mnist().class_names[0]  # doctest: +SKIP
        'T-shirt/top'
    """
    debian = Path(FASHION_MNIST_DEBIAN_DIR)
    if all(find_idx_file(debian, stem) for stem in MNIST_FILES):
        arrays = load_idx_folder(debian)
        return dataclasses.replace(arrays, class_names=FASHION_MNIST_CLASSES,
                                   source=f"IDX files in {debian} (Debian package dataset-fashion-mnist)")
    cache = keras_datasets_dir() / "fashion-mnist"
    if all(find_idx_file(cache, stem) for stem in MNIST_FILES):
        arrays = load_idx_folder(cache)
        return dataclasses.replace(arrays, class_names=FASHION_MNIST_CLASSES,
                                   source=f"keras.datasets.fashion_mnist ({cache})")
    files = ", ".join(f"{stem}.gz" for stem in MNIST_FILES)
    (x, y), (x_test, y_test) = _download(
        "fashion_mnist", keras.datasets.fashion_mnist.load_data,
        f"{files} from {KERAS_DATASETS_URL} (or install the Debian package dataset-fashion-mnist)",
        cache)
    return SourceArrays(x, y, x_test, y_test, FASHION_MNIST_CLASSES, "keras.datasets.fashion_mnist")


# The SHA-256 of each CIFAR archive as published (the same hashes Keras checks its downloads with).
CIFAR_SHA256 = {
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}


def _check_archive(location: Path, handle: Any) -> None:
    """Checks the SHA-256 of an open CIFAR archive against the published one, then rewinds it:
    what is unpickled is what was hashed, not a file swapped in between.

    Raises:
        DataError: The hash differs.
    """
    expected = CIFAR_SHA256[location.name]
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(2**20), b""):
        digest.update(block)
    handle.seek(0)
    if digest.hexdigest() != expected:
        raise DataError(f"{location} is not the published archive (its SHA-256 is "
                        f"{digest.hexdigest()}, expected {expected}); delete it so that Keras "
                        "downloads it again")


def _check_cifar_folder(location: Path, members: list[str]) -> None:
    """The CIFAR batches are Python pickles, and unpickling runs code: an extracted folder is
    read only when no other user could have written it or its batches.

    Raises:
        DataError: The folder, one of the two it is in, or a batch belongs to another user (not
            root), or is writable by every user, as the ``/tmp/.keras`` fallback cache is.
    """
    me = os.getuid() if hasattr(os, "getuid") else None
    # the Keras home, its datasets folder, the batches' folder and the batches: whoever owns a
    # folder can swap what is in it
    folders = (location.parent.parent, location.parent, location)
    for path in (*folders, *(location / m for m in members if (location / m).exists())):
        status = path.stat()
        foreign = me is not None and status.st_uid not in (me, 0)
        if foreign or status.st_mode & stat.S_IWOTH:
            why = "belongs to another user" if foreign else "is writable by every user"
            raise DataError(f"refusing to unpickle the CIFAR batches in {location}: {path} {why}; "
                            f"put the published archive ({', '.join(CIFAR_SHA256)}) in a private "
                            "Keras cache ($KERAS_HOME)")


def _read_cifar(location: Path, inner: str, members: list[str], label_key: bytes
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    # The CIFAR batches are Python pickles, as Keras itself reads them: only an archive with the
    # published hash, or a folder only its owner (or root) can have written, is read this way.
    batches = []
    if location.is_dir():
        _check_cifar_folder(location, members)
    try:
        if location.is_dir():
            for member in members:
                with open(location / member, "rb") as handle:
                    batches.append(pickle.load(handle, encoding="bytes"))
        else:
            with open(location, "rb") as raw:
                _check_archive(location, raw)
                with tarfile.open(fileobj=raw, mode="r:*") as archive:
                    for member in members:
                        handle = archive.extractfile(f"{inner}/{member}")
                        if handle is None:
                            raise KeyError(f"{inner}/{member} is not a file in the archive")
                        batches.append(pickle.load(handle, encoding="bytes"))
        return [(np.asarray(b[b"data"], "uint8").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1),
                 np.asarray(b[label_key], "int64")) for b in batches]
    except DataError:  # the archive's hash: said as it is
        raise
    except Exception as error:
        raise _unreadable_cache(location, error) from error


def _load_cifar(name: str, archive: str, inner: str, url: str, train_members: list[str],
                test_member: str, label_key: bytes, class_names: list[str],
                load_data: Callable[..., Any], **kwargs: Any) -> SourceArrays:
    folder = keras_datasets_dir()
    for location in (folder / inner, folder / archive):
        if location.exists():
            parts = _read_cifar(location, inner, train_members + [test_member], label_key)
            x = np.concatenate([p[0] for p in parts[:-1]])
            y = np.concatenate([p[1] for p in parts[:-1]])
            return SourceArrays(x, y, parts[-1][0], parts[-1][1], class_names,
                                f"keras.datasets.{name} ({location})")
    (x, y), (x_test, y_test) = _download(name, load_data, f"{archive} from {url}", folder, **kwargs)
    if x.ndim == 4 and x.shape[1] == 3 and x.shape[-1] != 3:  # channels_first image_data_format
        x, x_test = x.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return SourceArrays(x, y, x_test, y_test, class_names, f"keras.datasets.{name}")


def load_cifar10() -> SourceArrays:
    """CIFAR-10 from the Keras cache, downloading it with Keras when missing.

    ``cifar-10-python.tar.gz`` (or its extracted ``cifar-10-batches-py`` folder) in
    :func:`keras_datasets_dir` is read directly.

    Returns:
        :class:`SourceArrays` with 50000 train and 10000 test ``32x32`` RGB images.

    Raises:
        DataError: The archive is missing and cannot be downloaded, or it is unreadable.

    Example:
        >>> load_cifar10().class_names[:2]  # doctest: +SKIP
        ['airplane', 'automobile']
    """
    return _load_cifar("cifar10", "cifar-10-python.tar.gz", "cifar-10-batches-py", CIFAR10_URL,
                       [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels",
                       CIFAR10_CLASSES, keras.datasets.cifar10.load_data)


def load_cifar100() -> SourceArrays:
    """CIFAR-100 with its 100 fine labels, from the Keras cache or a Keras download.

    ``cifar-100-python.tar.gz`` (or its extracted ``cifar-100-python`` folder) in
    :func:`keras_datasets_dir` is read directly.

    Returns:
        :class:`SourceArrays` with 50000 train and 10000 test ``32x32`` RGB images.

    Raises:
        DataError: The archive is missing and cannot be downloaded, or it is unreadable.

    Example:
        >>> len(load_cifar100().class_names)  # doctest: +SKIP
        100
    """
    return _load_cifar("cifar100", "cifar-100-python.tar.gz", "cifar-100-python", CIFAR100_URL,
                       ["train"], "test", b"fine_labels", CIFAR100_CLASSES,
                       keras.datasets.cifar100.load_data, label_mode="fine")


# The registry of named datasets: adding one is adding an entry returning SourceArrays.
DATASETS: dict[str, Callable[[], SourceArrays]] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
}


def load_npz(path: str | Path) -> SourceArrays:
    """Reads images from an ``.npz`` file.

    The file holds ``x`` and optionally ``y``, or Keras-style ``x_train``/``y_train`` with optional
    ``x_test``/``y_test`` (then the test split is the file's own).

    Args:
        path: The ``.npz`` file.

    Returns:
        :class:`SourceArrays`.

    Raises:
        DataError: The file is unreadable or holds none of those arrays.

    Example:
        >>> np.savez("images.npz", x=np.zeros((10, 28, 28), "uint8"))  # doctest: +SKIP
        >>> load_npz("images.npz").y_train is None  # doctest: +SKIP
        True
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except Exception as error:
        raise DataError(f"cannot read {path} as .npz ({_first_line(error)}); save it with "
                        "np.savez(path, x=images, y=labels)") from error
    source = f"npz file {path.resolve()}"
    if "x" in arrays:
        return SourceArrays(arrays["x"], arrays.get("y"), source=source)
    if "x_train" in arrays:
        return SourceArrays(arrays["x_train"], arrays.get("y_train"), arrays.get("x_test"),
                            arrays.get("y_test"), source=source)
    raise DataError(f"{path} holds arrays {sorted(arrays) or 'none'}; expected x (and optionally y), "
                    "or x_train/y_train (and optionally x_test/y_test)")


def load_idx_folder(folder: str | Path) -> SourceArrays:
    """Reads MNIST-format IDX files from a folder.

    ``train-images-idx3-ubyte[.gz]`` is required; ``train-labels-idx1-ubyte[.gz]`` makes the data
    labeled; ``t10k-images-idx3-ubyte[.gz]`` (with its labels when labeled) becomes the test split.

    Args:
        folder: The folder.

    Returns:
        :class:`SourceArrays`.

    Raises:
        DataError: A required file is missing or malformed.

    Example:
        >>> load_idx_folder("/usr/share/datasets/fashion-mnist").x_train.shape  # doctest: +SKIP
        (60000, 28, 28)
    """
    folder = Path(folder)
    train_images = find_idx_file(folder, "train-images-idx3-ubyte")
    if train_images is None:
        raise DataError(f"{folder} has no train-images-idx3-ubyte[.gz]; an IDX folder needs it")
    train_labels = find_idx_file(folder, "train-labels-idx1-ubyte")
    test_images = find_idx_file(folder, "t10k-images-idx3-ubyte")
    test_labels = find_idx_file(folder, "t10k-labels-idx1-ubyte")
    if test_images is not None and train_labels is not None and test_labels is None:
        raise DataError(f"{folder} has labeled training files and {test_images.name} but no "
                        "t10k-labels-idx1-ubyte[.gz]; add it, or remove the t10k images")
    x = _idx_images(train_images)
    y = read_idx(train_labels) if train_labels is not None else None
    x_test = _idx_images(test_images) if test_images is not None else None
    y_test = read_idx(test_labels) if test_images is not None and train_labels is not None else None
    return SourceArrays(x, y, x_test, y_test, source=f"IDX files in {folder.resolve()}")


def load_idx_file(path: str | Path) -> SourceArrays:
    """Reads one IDX images file, with the labels file next to it when there is one.

    Labels are found by replacing ``images-idx3`` with ``labels-idx1`` in the name.

    Args:
        path: e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        :class:`SourceArrays` without a test split.

    Raises:
        DataError: The file is malformed or holds no images.

    Example:
        >>> load_idx_file("train-images-idx3-ubyte.gz").y_train.shape  # doctest: +SKIP
        (60000,)
    """
    path = Path(path)
    labels = labels_file_for(path)
    return SourceArrays(_idx_images(path), read_idx(labels) if labels is not None else None,
                        source=f"IDX file {path.resolve()}")


def _idx_images(path: Path) -> np.ndarray:
    x = read_idx(path)
    if x.ndim not in (3, 4):
        raise DataError(f"{path} holds a {x.ndim}-D array shaped {x.shape}, expected images "
                        "(N, H, W); pass the images file (...-images-idx3-ubyte), not the labels")
    return x


def to_uint8_images(x: Any, where: str) -> np.ndarray:
    """Checks an image array's shape and brings its values to uint8 ``(N, H, W, C)``.

    uint8 passes through; booleans map to 0/255; other integers must lie in 0..255. Floats are
    read by their range: within [0, 1] they are scaled by 255, else within [-1, 1] they are taken as
    GAN range (the inverse of :func:`~gantransfer.data.transforms.to_gan_range`), else within [0, 255] they are rounded as they are. (A [-1, 1]
    array with no negative value is therefore read as [0, 1].)

    Args:
        x: ``(N, H, W)``, ``(N, H, W, 1)`` or ``(N, H, W, 3)``.
        where: What the array is, for error messages.

    Returns:
        uint8 ``(N, H, W, C)``.

    Raises:
        DataError: Wrong shape, no images, non-finite values or values out of every range.

    Example:
        >>> to_uint8_images(np.ones((2, 4, 4)), "x")[0, 0, 0]
        array([255], dtype=uint8)
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DataError(f"{where} has shape {x.shape}; expected images shaped (N, H, W), "
                        "(N, H, W, 1) or (N, H, W, 3)")
    if len(x) == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"{where} holds no images (shape {x.shape}); give at least one image")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind == "b":
        return x.astype("uint8") * np.uint8(255)
    if x.dtype.kind in "iu":
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise DataError(f"{where} holds integers in [{low}, {high}]; expected pixel values "
                            "in 0..255 (store images as uint8)")
        return x.astype("uint8")
    if x.dtype.kind != "f":
        raise DataError(f"{where} has dtype {x.dtype}; expected uint8 pixels or floats")
    low, high = float(x.min()), float(x.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise DataError(f"{where} contains NaN or infinite values; clean the array first")
    if low >= 0 and high <= 1:
        offset, scale = 0.0, 255.0
    elif low >= GAN_RANGE[0] and high <= GAN_RANGE[1]:
        offset, scale = -GAN_OFFSET, 1.0 / GAN_SCALE
    elif low >= 0 and high <= 255:
        offset, scale = 0.0, 1.0
    else:
        raise DataError(f"{where} holds floats in [{low:g}, {high:g}]; expected [0, 1], [-1, 1] "
                        "or [0, 255] (or uint8 pixels)")
    out = np.empty(x.shape, dtype="uint8")
    for start in range(0, len(x), _CHUNK):
        chunk = (x[start:start + _CHUNK].astype("float32") + offset) * scale
        out[start:start + _CHUNK] = np.clip(np.rint(chunk), 0, 255)
    return out


def _flat_labels(y: Any, count: int, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where} labels have shape {y.shape}; expected one label per image, (N,)")
    if len(y) != count:
        raise DataError(f"{where} has {count} images but {len(y)} labels; give exactly one label "
                        "per image")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise DataError(f"{where} labels are fractional floats; expected class indices or names")
    if y.dtype.kind not in "biufUS":
        raise DataError(f"{where} labels have dtype {y.dtype}; expected integers or strings")
    return y


def encode_labels(y: Any, y_test: Any, n_train: int, n_test: int | None,
                  class_names: list[str] | None, where: str
                  ) -> tuple[np.ndarray | None, np.ndarray | None, list[str] | None]:
    """Turns labels into int64 class indices ``0..K-1`` and names the classes.

    Args:
        y: Training labels, or None when unlabeled (then ``y_test`` is ignored).
        y_test: Test labels, or None when there is no own test split.
        n_train: Number of training images.
        n_test: Number of test images, or None.
        class_names: Names when ``y`` already holds indices ``0..K-1``; None to use the sorted
            distinct values of ``y`` as the classes (so labels 3 and 7 become classes "3" and "7").
        where: The source, for error messages.

    Returns:
        ``(y, y_test, class_names)``; all None when unlabeled.

    Raises:
        DataError: Counts differ, labels are out of range or unseen in training, or there is only
            one class.

    Example:
        >>> encode_labels(np.array([7, 3, 7]), None, 3, None, None, "x")[0].tolist()
        [1, 0, 1]
    """
    if y is None:
        return None, None, None
    y = _flat_labels(y, n_train, where)
    if n_test is not None:
        if y_test is None:
            raise DataError(f"{where} has labeled training images but unlabeled test images; "
                            "give test labels too")
        y_test = _flat_labels(y_test, n_test, f"{where} (test)")
    if class_names is not None:
        encoded = [v.astype("int64") for v in (y, y_test) if v is not None]
        bad = [v for v in encoded if len(v) and (v.min() < 0 or v.max() >= len(class_names))]
        if bad:
            raise DataError(f"{where} labels range over [{bad[0].min()}, {bad[0].max()}], expected "
                            f"0..{len(class_names) - 1}; the file does not match this dataset")
        names = list(class_names)
        y, y_test = encoded[0], (encoded[1] if y_test is not None else None)
    else:
        values = np.unique(y)
        if y_test is not None:
            unseen = np.setdiff1d(np.unique(y_test), values)
            if len(unseen):
                raise DataError(f"{where} test labels include {unseen[:3].tolist()} which no "
                                "training image has; every test class must appear in training")
            y_test = np.searchsorted(values, y_test).astype("int64")
        y = np.searchsorted(values, y).astype("int64")
        names = [_label_name(value) for value in values]
    if len(names) < 2:
        raise DataError(f"{where} has only one class ({names[0] if names else 'none'!r}); a labeled "
                        "dataset needs two or more classes (leave the labels out for unlabeled data)")
    return y, y_test, names


def _label_name(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _check_arguments(image_size: Any, channels: Any, validation_split: Any, test_split: Any,
                     labels_per_class: Any, seed: Any, max_in_memory_mb: Any) -> None:
    def integer(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    def fraction(value: Any) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value < 1

    check_image_size(image_size, error=DataError)
    if channels is not None and (not integer(channels) or channels not in (1, 3)):
        raise DataError(f"channels must be 1 (greyscale), 3 (RGB) or None (keep the source's), "
                        f"received {channels!r}")
    if not fraction(validation_split):
        raise DataError(f"validation_split must be a fraction in [0, 1), received "
                        f"{validation_split!r}")
    if not fraction(test_split):
        raise DataError(f"test_split must be a fraction in [0, 1), received {test_split!r}")
    if labels_per_class is not None and (not integer(labels_per_class) or labels_per_class < 1):
        raise DataError(f"labels_per_class must be an integer >= 1 or None, received "
                        f"{labels_per_class!r}")
    if not integer(seed) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, received {seed!r}")
    if not isinstance(max_in_memory_mb, numbers.Real) or isinstance(max_in_memory_mb, bool) \
            or not max_in_memory_mb > 0:
        raise DataError(f"max_in_memory_mb must be a number > 0, received {max_in_memory_mb!r}")


def _unknown(name: str) -> DataError:
    names = ", ".join(sorted(DATASETS))
    looks_like_path = os.sep in name or "/" in name or name.startswith((".", "~")) \
        or Path(name).suffix.lower() in (".npz", ".gz")
    if looks_like_path:
        return DataError(f"no file or folder at {name!r}: pass an existing image folder, .npz or "
                         f"IDX file, or one of {names}")
    close = difflib.get_close_matches(name.lower(), sorted(DATASETS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return DataError(f"unknown dataset {name!r}: expected one of {names}, or a path to an image "
                     f"folder, .npz or IDX file{hint}")


def _split(name: str, source: str, pool: ImageSet, test: ImageSet | None,
           class_names: list[str] | None, validation_split: float, test_split: float, seed: int,
           skipped_files: int = 0) -> Dataset:
    if test is None:
        kept, held = holdout_indices(len(pool), test_split, seed, pool.y, stream=0,
                                     what="test_split")
        pool, test = pool.subset(kept), pool.subset(held)
    kept, held = holdout_indices(len(pool), validation_split, seed, pool.y, stream=1,
                                 what="validation_split")
    train = pool if len(held) == 0 else pool.subset(kept)
    return Dataset(name=name, source=source, train=train, val=pool.subset(held), test=test,
                   image_size=pool.image_size, channels=pool.channels,
                   num_classes=len(class_names) if class_names else None, class_names=class_names,
                   skipped_files=skipped_files)


def _from_arrays(name: str, arrays: SourceArrays, image_size: int, channels: int | None,
                 validation_split: float, test_split: float, seed: int) -> Dataset:
    where = arrays.source or name
    x = to_uint8_images(arrays.x_train, f"{where} images")
    x_test = None
    if arrays.x_test is not None:
        x_test = to_uint8_images(arrays.x_test, f"{where} test images")
        if x_test.shape[-1] != x.shape[-1] and channels is None:
            channels = max(x.shape[-1], x_test.shape[-1])
    y, y_test, class_names = encode_labels(arrays.y_train, arrays.y_test, len(x),
                                           len(x_test) if x_test is not None else None,
                                           arrays.class_names, where)
    pool = ImageSet(prepare_images(x, image_size, channels), y)
    del x  # Drop the source-sized copy before preparing the test images.
    test = ImageSet(prepare_images(x_test, image_size, pool.channels), y_test) \
        if x_test is not None else None
    return _split(name, arrays.source, pool, test, class_names, validation_split, test_split, seed)


def _from_folder(name: str, root: Path, image_size: int, channels: int | None,
                 validation_split: float, test_split: float, seed: int,
                 max_in_memory_mb: float) -> Dataset:
    scan = folders.scan_image_folder(root)
    channels = channels or (3 if scan.colour else 1)
    megabytes = len(scan.files) * image_size * image_size * channels / 2**20
    streamed = megabytes > max_in_memory_mb
    if streamed:
        scan = folders.without(scan, folders.verify_files(scan.files))
        pool = ImageSet(None, scan.labels, paths=[str(p) for p in scan.files],
                        image_size=image_size, channels=channels)
        logger.info("streaming %d images from %s: decoded they would take %.0f MB, more than "
                    "max_in_memory_mb=%g", len(scan.files), root, megabytes, max_in_memory_mb)
    else:
        x, failed = folders.decode_files(scan.files, image_size, channels)
        scan = folders.without(scan, failed)
        pool = ImageSet(x, scan.labels)
    if scan.skipped:
        logger.warning("skipped %d unreadable files in %s (first: %s)", len(scan.skipped), root,
                       scan.skipped[0].relative_to(root))
    # The same source however it is held: a GAN run that streamed a folder and a transfer that
    # decoded it must still be compared (see workflows.targets).
    source = f"image folder {root.resolve()}"
    return _split(name, source, pool, None, scan.class_names, validation_split, test_split, seed,
                  skipped_files=len(scan.skipped))


def _arrays_for_path(path: Path) -> SourceArrays | None:
    if path.is_dir():
        return load_idx_folder(path) if find_idx_file(path, "train-images-idx3-ubyte") else None
    if path.suffix.lower() == ".npz":
        return load_npz(path)
    if IDX_NAME.search(path.name):
        return load_idx_file(path)
    raise DataError(f"cannot load {str(path)!r}: expected an image folder, an .npz file or an IDX "
                    "file (e.g. train-images-idx3-ubyte.gz)")


def load_dataset(name_or_path: str | os.PathLike, *, image_size: int = 32, channels: int | None = None,
                 validation_split: float = 0.1, test_split: float = 0.2,
                 labels_per_class: int | None = None, seed: int = 0,
                 max_in_memory_mb: float = 2048.0) -> Dataset:
    """Loads a named dataset or images from a path, resized, converted and split by seed.

    Args:
        name_or_path: A name in :data:`DATASETS` (digits, mnist, fashion_mnist, cifar10, cifar100) or
            a path: a folder of images (one subfolder per class for labels, flat for unlabeled), an
            ``.npz`` file (``x`` and optional ``y``), an IDX images file, or a folder of IDX files.
        image_size: Side length every image is resized to, one the DCGAN can build (8, 14, 16, 28,
            32, 56, 64, ...: :func:`~gantransfer.shapes.valid_image_size`).
        channels: 1 or 3 to convert (grey to RGB repeats, RGB to grey by ITU-R 601 luma); None
            keeps the source's (for folders: 3 if any image is colour, else 1).
        validation_split: Share of the training split held out as validation, in [0, 1).
        test_split: Share held out as test, in [0, 1), for sources without their own test split
            (digits, folders, npz with ``x``, IDX without t10k files).
        labels_per_class: Keep only this many labeled training images per class
            (:meth:`Dataset.with_label_budget`); None keeps all.
        seed: Seed of every split and of the label budget.
        max_in_memory_mb: Image folders that would take more than this once decoded are streamed
            from disk instead (:attr:`ImageSet.streamed`).

    Returns:
        A :class:`Dataset`.

    Raises:
        DataError: Unknown name, missing or malformed files, bad labels or arguments, or a label
            budget larger than a class.

    Example:
        >>> data = load_dataset("digits", image_size=32, seed=0)
        >>> data.train.x.shape[1:], data.num_classes, len(data.test)
        ((32, 32, 1), 10, 360)
    """
    _check_arguments(image_size, channels, validation_split, test_split, labels_per_class, seed,
                     max_in_memory_mb)
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    key = name if name in DATASETS else name.strip().lower().replace("-", "_")
    if name in DATASETS or (key in DATASETS and not path.exists()):
        key = name if name in DATASETS else key
        data = _from_arrays(key, DATASETS[key](), image_size, channels, validation_split,
                            test_split, seed)
    elif not path.exists():
        raise _unknown(name)
    else:
        arrays = _arrays_for_path(path)
        if arrays is None:
            data = _from_folder(name, path, image_size, channels, validation_split, test_split,
                                seed, max_in_memory_mb)
        else:
            data = _from_arrays(name, arrays, image_size, channels, validation_split, test_split,
                                seed)
    if labels_per_class is not None:
        data = data.with_label_budget(labels_per_class, seed)
    logger.info("loaded %s from %s: %d train, %d val, %d test images of %dx%dx%d, %s", data.name,
                data.source, len(data.train), len(data.val), len(data.test), data.image_size,
                data.image_size, data.channels,
                f"{data.num_classes} classes" if data.num_classes else "unlabeled")
    return data
