"""A reader for IDX files, the format of MNIST and Fashion-MNIST, gzipped or not.

An IDX file starts with a four-byte magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the values, big-endian, in C order.

Example:
    >>> labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> labels.shape, labels.dtype  # doctest: +SKIP
    ((10000,), dtype('uint8'))
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from pathlib import Path

import numpy as np

from gantransfer.errors import DataError

# IDX type codes and the big-endian NumPy types they hold.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_GZIP_MAGIC = b"\x1f\x8b"
# Matches IDX file names such as train-images-idx3-ubyte or t10k-labels.idx1-ubyte.gz.
IDX_NAME = re.compile(r"idx\d[-._]ubyte", re.IGNORECASE)


# The most an IDX file may hold once decompressed (all of MNIST's training images are 47 MB).
MAX_IDX_BYTES = 4 * 2**30


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; a gzip file is decompressed only as far as its IDX header says it holds.

    A small gzip file can expand to far more than memory (a "gzip bomb"), so decompression stops one
    byte past the size the header gives, and a header asking for more than :data:`MAX_IDX_BYTES` is
    refused before anything is decompressed.
    """
    with open(path, "rb") as handle:
        if handle.read(2) != _GZIP_MAGIC:
            handle.seek(0)
            return handle.read()
    try:
        with gzip.open(path, "rb") as stream:
            head = stream.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_DTYPES:
                return head  # not IDX: read_idx says so
            dims = stream.read(4 * head[3])
            if len(dims) < 4 * head[3]:
                return head + dims  # truncated: read_idx says so
            # Python integers: a product of int64s can wrap to a small or negative count
            count = math.prod(int(d) for d in np.frombuffer(dims, dtype=">u4"))
            expected = len(head) + len(dims) + count * np.dtype(IDX_DTYPES[head[2]]).itemsize
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path} says it holds {expected:,} bytes, more than the "
                                f"{MAX_IDX_BYTES:,} an IDX file may hold here; is it the right file?")
            return head + dims + stream.read(expected - len(head) - len(dims) + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is a damaged gzip file ({error}); download it again") from error


def read_idx(path: str | Path) -> np.ndarray:
    """Reads one IDX file into a native-endian NumPy array.

    Args:
        path: The file, plain or gzip-compressed (told apart by content, not by name).

    Returns:
        An array with the file's shape and type (uint8 for MNIST images and labels).

    Raises:
        DataError: The header is not IDX, or the data is shorter or longer than the header says.

    Example:
        >>> read_idx("train-images-idx3-ubyte.gz").shape  # doctest: +SKIP
        (60000, 28, 28)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES or data[3] == 0:
        raise DataError(f"{path} is not an IDX file: it starts with bytes {data[:4].hex(' ')}, "
                        "expected 00 00 <type 08-0e> <ndim>; pass an MNIST-format file")
    dtype = np.dtype(IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is a truncated IDX file: its header needs {header} bytes, the "
                        f"file has {len(data)}; download it again")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path} does not match its IDX header: shape {shape} of {dtype.name} needs "
                        f"{expected} bytes, the file has {len(data)}; download it again")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def labels_file_for(images_path: str | Path) -> Path | None:
    """Finds the labels file that goes with an IDX images file, by the MNIST naming convention.

    Args:
        images_path: e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        The existing ``train-labels-idx1-ubyte[.gz]`` next to it, or None.

    Example:
        >>> labels_file_for("data/train-images-idx3-ubyte.gz")  # doctest: +SKIP
        PosixPath('data/train-labels-idx1-ubyte.gz')
    """
    images_path = Path(images_path)
    marker = next((m for m in ("images-idx3", "images.idx3") if m in images_path.name), None)
    if marker is None:
        return None
    # the same spelling: train-images-idx3-ubyte, or Kaggle's train-images.idx3-ubyte
    name = images_path.name.replace(marker, marker.replace("images", "labels").replace("3", "1"))
    stem = name[:-3] if name.endswith(".gz") else name
    for candidate in (name, stem, stem + ".gz"):
        path = images_path.with_name(candidate)
        if path.is_file():
            return path
    return None


def find_idx_file(folder: str | Path, stem: str) -> Path | None:
    """Returns ``folder/stem`` or ``folder/stem.gz``, whichever exists, else None; the Kaggle
    spelling (``t10k-images.idx3-ubyte``) counts as the same name.

    Args:
        folder: Where to look.
        stem: The uncompressed file name, e.g. ``t10k-images-idx3-ubyte``.

    Returns:
        The path, or None.

    Example:
        >>> find_idx_file("/usr/share/datasets/fashion-mnist", "t10k-images-idx3-ubyte")  # doctest: +SKIP
        PosixPath('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')
    """
    dotted = stem.replace("-idx", ".idx")
    for name in dict.fromkeys((stem, stem + ".gz", dotted, dotted + ".gz")):
        path = Path(folder) / name
        if path.is_file():
            return path
    return None
