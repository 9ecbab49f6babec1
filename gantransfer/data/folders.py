"""Image folders: finding the files, telling classes apart, and decoding one image.

A folder is either *labeled*, with one subfolder per class (files are found recursively inside each
class folder), or *flat*, with the image files directly inside it (unlabeled). Everything is sorted so
the same folder always gives the same order, and so the same splits for a seed.

Files whose names start with a dot (``.DS_Store``, editor swap files) are ignored silently. Any other
file Pillow cannot open is skipped and counted.

Example:
    >>> scan = scan_image_folder("path/to/folder")  # doctest: +SKIP
    >>> scan.class_names, len(scan.files)  # doctest: +SKIP
    (['cat', 'dog'], 200)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from gantransfer.data.transforms import prepare_images
from gantransfer.errors import DataError

# Pillow modes that hold one intensity plane (plus maybe alpha); every other mode counts as colour.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


# Grey modes wider than 8 bits: Pillow's convert("L") clips them at 255 instead of scaling.
WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def _wide_grey_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer or float grey pixels scaled to uint8.

    16-bit modes are scaled from [0, 65535]; 32-bit integers from [0, 65535] when any exceeds 255
    (a 16-bit image Pillow opened as ``I``), else taken as 8-bit; floats from [0, 1] when none
    exceeds 1, else taken as [0, 255].

    Raises:
        ValueError: Values outside those ranges (the file then counts as unreadable).

    Example:
        >>> _wide_grey_to_uint8(np.array([[0, 32768, 65535]], "uint16"), "I;16").tolist()
        [[0, 128, 255]]
        >>> _wide_grey_to_uint8(np.array([[0.0, 0.5, 1.0]], "float32"), "F").tolist()
        [[0, 128, 255]]
    """
    values = np.asarray(values, "float64")
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if mode == "F":
        full = 1.0 if high <= 1.0 else 255.0
    else:
        full = 65535.0 if mode.startswith("I;16") or high > 255 else 255.0
    if low < 0 or high > full or not np.isfinite(values).all():
        raise ValueError(f"{mode} pixels in [{low:g}, {high:g}]: expected 0..{full:g}")
    return np.floor(values * (255.0 / full) + 0.5).astype("uint8")


def decode_image(path: str | Path, image_size: int, channels: int) -> np.ndarray:
    """Decodes one image file into a uint8 ``(image_size, image_size, channels)`` array.

    The EXIF orientation is applied, then the image becomes greyscale or RGB (alpha dropped), is
    resized and converted exactly like in-memory arrays (:func:`~gantransfer.data.transforms.prepare_images`),
    so a streamed folder yields the same pixels as a decoded one.

    Args:
        path: The image file.
        image_size: Output side length.
        channels: 1 or 3.

    Returns:
        uint8 ``(image_size, image_size, channels)``.

    Raises:
        OSError, ValueError, SyntaxError: The file is not an image Pillow can decode.

    Example:
        >>> decode_image("cat.png", 32, 3).shape  # doctest: +SKIP
        (32, 32, 3)
    """
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode in WIDE_GREY_MODES:
            array = _wide_grey_to_uint8(np.asarray(image), image.mode)
        else:
            array = np.asarray(image.convert("L" if image.mode in GREY_MODES else "RGB"))
    if array.ndim == 2:
        array = array[..., None]
    return prepare_images(array[None], image_size, channels)[0]


@dataclasses.dataclass
class FolderScan:
    """What a scan of an image folder found, before any pixel is decoded.

    Attributes:
        root: The folder.
        files: Image files Pillow could open, sorted (by class, then path).
        labels: int64 class index per file, or None for a flat folder.
        class_names: Sorted class folder names, or None for a flat folder.
        colour: Whether any file is a colour image (by its header's mode).
        skipped: Files that could not be opened.
    """

    root: Path
    files: list[Path]
    labels: np.ndarray | None
    class_names: list[str] | None
    colour: bool
    skipped: list[Path]


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _files_under(folder: Path, root: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p, root))


def scan_image_folder(root: str | Path) -> FolderScan:
    """Lists a folder's image files and their classes, reading only the file headers.

    Args:
        root: A folder with one subfolder per class, or with image files directly inside.

    Returns:
        A :class:`FolderScan`.

    Raises:
        DataError: The folder has image files next to class folders, only one class folder, or no
            readable image at all.

    Example:
        >>> scan_image_folder("flowers/").class_names  # doctest: +SKIP
        ['daisy', 'rose', 'tulip']
    """
    root = Path(root)
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    subfolders = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if p.is_file()]
    if subfolders and loose:
        raise DataError(f"{root} has both files ({loose[0].name}, ...) and subfolders "
                        f"({subfolders[0].name}, ...): put every image in a class subfolder for "
                        "labeled data, or all of them directly in the folder for unlabeled data")
    if len(subfolders) == 1:
        raise DataError(f"{root} has only one class folder ({subfolders[0].name!r}): a labeled "
                        "folder needs two or more class subfolders; for unlabeled images put the "
                        f"files directly in {root}")

    class_names = [p.name for p in subfolders] if subfolders else None
    groups = [(i, _files_under(p, root)) for i, p in enumerate(subfolders)] or [(-1, loose)]
    files: list[Path] = []
    labels: list[int] = []
    skipped: list[Path] = []
    colour = False
    for label, candidates in groups:
        for path in candidates:
            try:
                with Image.open(path) as image:
                    mode = image.mode
            except Exception:  # Pillow raises many types for unreadable files; all mean "skip".
                skipped.append(path)
                continue
            colour = colour or mode not in GREY_MODES
            files.append(path)
            labels.append(label)
    scan = FolderScan(root=root, files=files,
                      labels=np.asarray(labels, dtype="int64") if class_names else None,
                      class_names=class_names, colour=colour, skipped=skipped)
    check_not_empty(scan)
    return scan


def without(scan: FolderScan, positions: list[int]) -> FolderScan:
    """Returns the scan with the files at ``positions`` moved to ``skipped``.

    Args:
        scan: A folder scan.
        positions: Indices into ``scan.files`` that turned out unreadable.

    Returns:
        A new :class:`FolderScan`; the same one when ``positions`` is empty.

    Raises:
        DataError: No image, or a class with no image, is left.

    Example:
        >>> scan = without(scan, verify_files(scan.files))  # doctest: +SKIP
    """
    if not positions:
        return scan
    keep = np.setdiff1d(np.arange(len(scan.files)), positions)
    scan = dataclasses.replace(
        scan, files=[scan.files[i] for i in keep],
        labels=scan.labels[keep] if scan.labels is not None else None,
        skipped=sorted(scan.skipped + [scan.files[i] for i in positions]))
    check_not_empty(scan)
    return scan


def verify_files(files: list[Path]) -> list[int]:
    """Checks files with Pillow's ``verify()`` (structure and checksums) without decoding them.

    Streamed folders are only decoded during training; this catches most broken files up front at
    a fraction of the cost of decoding. What it misses makes :meth:`ImageSet.load` raise DataError.

    Args:
        files: Image files.

    Returns:
        Positions in ``files`` that failed.

    Example:
        >>> verify_files(scan_image_folder("flowers/").files)  # doctest: +SKIP
        []
    """
    failed = []
    for position, path in enumerate(files):
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception:  # Pillow raises many types for broken files; all mean "skip".
            failed.append(position)
    return failed


def check_not_empty(scan: FolderScan) -> None:
    """Raises DataError when a scan has no images at all, or a class folder with none.

    Args:
        scan: A folder scan, possibly after dropping files that failed to decode.

    Example:
        >>> check_not_empty(scan_image_folder("flowers/"))  # doctest: +SKIP
    """
    skipped = ""
    if scan.skipped:
        skipped = (f" (skipped {len(scan.skipped)} unreadable files, first: "
                   f"{scan.skipped[0].relative_to(scan.root)})")
    if not scan.files:
        raise DataError(f"no readable images in {scan.root}{skipped}: add image files Pillow can "
                        "open (PNG, JPEG, BMP, ...)")
    if scan.class_names:
        counts = np.bincount(scan.labels, minlength=len(scan.class_names))
        empty = [name for name, count in zip(scan.class_names, counts) if count == 0]
        if empty:
            raise DataError(f"class folder {empty[0]!r} in {scan.root} has no readable images"
                            f"{skipped}: add images to it or remove it")


def decode_files(files: list[Path], image_size: int, channels: int) -> tuple[np.ndarray, list[int]]:
    """Decodes image files into one uint8 array, skipping files that fail to decode.

    Args:
        files: Image files.
        image_size: Output side length.
        channels: 1 or 3.

    Returns:
        ``(x, failed)``: uint8 ``(N - len(failed), image_size, image_size, channels)`` in file order,
        and the positions in ``files`` that could not be decoded.

    Example:
        >>> x, failed = decode_files(scan_image_folder("flowers/").files, 32, 3)  # doctest: +SKIP
    """
    out = np.empty((len(files), image_size, image_size, channels), dtype="uint8")
    failed: list[int] = []
    for position, path in enumerate(files):
        try:
            out[position - len(failed)] = decode_image(path, image_size, channels)
        except Exception:  # A header that opened but pixels that do not decode (truncated files).
            failed.append(position)
    return out[:len(files) - len(failed)], failed
