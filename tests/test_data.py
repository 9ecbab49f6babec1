"""Tests for gantransfer.data: sources, transforms, splits, label budgets and batches. All offline."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from gantransfer.data import (DATASETS, GAN_RANGE, Dataset, ImageBatches, ImageSet,
                              convert_channels, gan_range_layer, load_dataset, resize_images,
                              select_labels_per_class, to_gan_range)
from gantransfer.data import sources
from gantransfer.data.sources import to_uint8_images
from gantransfer.images import to_uint8
from gantransfer.data.core import holdout_indices
from gantransfer.data.idx import read_idx
from gantransfer.errors import DataError

REAL_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------------------------
# Fixture builders
# ----------------------------------------------------------------------------------------------

def _save(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _solid(colour, size=(10, 12)) -> np.ndarray:
    """A solid (H, W, 3) RGB image, or (H, W) grey image when ``colour`` is an int."""
    if isinstance(colour, int):
        return np.full(size, colour, dtype="uint8")
    return np.broadcast_to(np.array(colour, "uint8"), size + (3,)).copy()


def _truncated_png(path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype="uint8")
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 6 // 10])


@pytest.fixture
def labeled_folder(tmp_path: Path) -> Path:
    """Two classes with PNG and JPEG, grey and RGB, non-square, nested, plus three broken files.

    Sorted order: blue/a.png (blue), blue/b.png (grey 50), blue/c.jpg (grey 120),
    red/a.png (red), red/b.jpg (red), red/nested/c.png (grey 200).
    """
    root = tmp_path / "labeled"
    _save(root / "blue" / "a.png", _solid((0, 0, 255)))
    _save(root / "blue" / "b.png", _solid(50))
    _save(root / "blue" / "c.jpg", _solid(120), "JPEG")
    _save(root / "red" / "a.png", _solid((255, 0, 0)))
    _save(root / "red" / "b.jpg", _solid((255, 0, 0)), "JPEG")
    _save(root / "red" / "nested" / "c.png", _solid(200))
    (root / "blue" / "notes.txt").write_text("not an image")
    (root / "red" / "broken.png").write_bytes(b"\x89PNG garbage")
    _truncated_png(root / "red" / "trunc.png")
    (root / ".DS_Store").write_bytes(b"hidden files are ignored, not counted")
    return root


@pytest.fixture
def flat_folder(tmp_path: Path) -> Path:
    root = tmp_path / "flat"
    for i in range(5):
        _save(root / f"img{i}.png", _solid(40 * i))
    _save(root / "img5.jpg", _solid(90), "JPEG")
    (root / "readme.txt").write_text("skip me")
    return root


def _write_idx(path: Path, array: np.ndarray) -> Path:
    array = np.asarray(array, dtype="uint8")
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.name.endswith(".gz") else payload)
    return path


def _idx_folder(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> Path:
    rng = np.random.default_rng(1)
    suffix = ".gz" if gz else ""
    _write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28)))
    _write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(n_train) % 10)
    _write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(n_test) % 10)
    return folder


def _fake_mnist_npz(path: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    arrays = {"x_train": rng.integers(0, 256, (30, 28, 28), dtype="uint8"),
              "y_train": (np.arange(30) % 10).astype("uint8"),
              "x_test": rng.integers(0, 256, (7, 28, 28), dtype="uint8"),
              "y_test": (np.arange(7) % 10).astype("uint8")}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def _cifar_batch(n: int, label_key: bytes, seed: int) -> dict[bytes, object]:
    rng = np.random.default_rng(seed)
    return {b"data": rng.integers(0, 256, (n, 3072), dtype="uint8"),
            label_key: [i % 10 for i in range(n)]}


@pytest.fixture
def keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras dataset cache, and Keras downloads that fail as they do offline."""
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    monkeypatch.setattr(sources, "keras_datasets_dir", lambda: cache)
    monkeypatch.setattr(sources, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "no-debian-package")

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- [Errno -2] "
                        "Name or service not known")

    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        monkeypatch.setattr(getattr(keras.datasets, name), "load_data", offline)
    return cache


def _all_batches(batches: ImageBatches) -> list:
    return [batches[i] for i in range(len(batches))]


# ----------------------------------------------------------------------------------------------
# digits and splits
# ----------------------------------------------------------------------------------------------

def test_digits_shapes_ranges_and_labels():
    data = load_dataset("digits", seed=0)
    assert isinstance(data, Dataset)
    assert (data.name, data.image_size, data.channels, data.num_classes) == ("digits", 32, 1, 10)
    assert data.class_names == [str(i) for i in range(10)]
    assert "load_digits" in data.source
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert (len(data.test), len(data.val)) == (360, 144)  # ceil(0.2 * 1797), ceil(0.1 * 1437)
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == np.uint8 and split.x.shape[1:] == (32, 32, 1)
        assert split.y.dtype == np.int64 and split.y.shape == (len(split),)
        assert set(split.y.tolist()) == set(range(10))  # stratified: every class everywhere
    assert data.train.x.min() == 0 and data.train.x.max() == 255
    assert not data.train.streamed and data.train.labeled and data.skipped_files == 0


def test_digits_splits_are_deterministic_per_seed():
    a, b, c = (load_dataset("digits", image_size=8, seed=s) for s in (3, 3, 4))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, split).x, getattr(b, split).x)
        np.testing.assert_array_equal(getattr(a, split).y, getattr(b, split).y)
    assert not np.array_equal(a.test.x, c.test.x)
    assert not np.array_equal(a.val.y, c.val.y)


def test_holdout_indices_partition_stratify_and_fallback():
    y = np.repeat(np.arange(4), 25)
    kept, held = holdout_indices(100, 0.2, seed=0, y=y)
    assert len(held) == 20 and len(kept) == 80
    assert np.array_equal(np.sort(np.concatenate([kept, held])), np.arange(100))
    assert np.bincount(y[held]).tolist() == [5, 5, 5, 5]  # class proportions kept
    again = holdout_indices(100, 0.2, seed=0, y=y)
    assert np.array_equal(held, again[1])
    assert not np.array_equal(held, holdout_indices(100, 0.2, seed=0, y=y, stream=1)[1])
    # A class with one example cannot be stratified: plain random, still a partition.
    lonely = np.array([0] * 9 + [1])
    kept, held = holdout_indices(10, 0.3, seed=0, y=lonely)
    assert len(held) == 3 and len(np.intersect1d(kept, held)) == 0
    kept, held = holdout_indices(10, 0.0, seed=0, y=lonely)
    assert len(held) == 0 and len(kept) == 10
    with pytest.raises(DataError, match=r"validation_split=0.95 .* leaves none"):
        holdout_indices(3, 0.95, seed=0, what="validation_split")


def test_zero_validation_split_gives_an_empty_val_set():
    data = load_dataset("digits", image_size=16, validation_split=0.0)
    assert len(data.val) == 0 and data.val.x.shape == (0, 16, 16, 1)
    assert len(data.train) == 1797 - 360


def test_registered_names_and_normalised_spelling():
    assert sorted(DATASETS) == ["cifar10", "cifar100", "digits", "fashion_mnist", "mnist"]
    assert load_dataset("DIGITS", image_size=8).name == "digits"


# ----------------------------------------------------------------------------------------------
# transforms
# ----------------------------------------------------------------------------------------------

def test_gan_range_round_trip():
    x = np.arange(256, dtype="uint8").reshape(1, 16, 16, 1)
    scaled = to_gan_range(x)
    assert scaled.dtype == np.float32
    assert scaled.min() == -1.0 and scaled.max() == 1.0
    np.testing.assert_array_equal(to_uint8(scaled, GAN_RANGE), x)
    assert to_uint8(np.array([-3.0, 0.0, 5.0]), GAN_RANGE).tolist() == [0, 128, 255]
    # The layer inside trunks and the NumPy function are the same mapping (to float32 rounding).
    inside = np.asarray(gan_range_layer()(x.astype("float32")))
    np.testing.assert_allclose(inside, scaled, rtol=0, atol=1e-6)
    assert inside.min() == -1.0 and inside.max() == 1.0
    # ... and the NumPy one is the arithmetic gantransfer has always used, so GAN runs repeat.
    np.testing.assert_array_equal(scaled, x.astype("float32") / np.float32(127.5) - np.float32(1))


def test_gan_range_floats_in_npz_files_come_back_as_the_same_pixels():
    x = np.arange(256, dtype="uint8").reshape(1, 16, 16, 1)
    np.testing.assert_array_equal(to_uint8_images(to_gan_range(x), "x"), x)


def test_resize_images():
    x = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1), dtype="uint8")
    assert resize_images(x, 8) is x
    up = resize_images(x, 32)
    assert up.shape == (3, 32, 32, 1) and up.dtype == np.uint8
    constant = np.full((2, 30, 20, 3), 77, "uint8")
    down = resize_images(constant, 10)
    assert down.shape == (2, 10, 10, 3) and np.all(down == 77)
    assert resize_images(np.zeros((2, 8, 8), "uint8"), 16).shape == (2, 16, 16, 1)
    with pytest.raises(DataError, match="uint8"):
        resize_images(np.zeros((1, 8, 8, 1), "float32"), 16)


def test_convert_channels():
    grey = np.array([[[[10]], [[200]]]], dtype="uint8")  # (1, 2, 1, 1)
    rgb = convert_channels(grey, 3)
    assert rgb.shape == (1, 2, 1, 3) and rgb[0, 1, 0].tolist() == [200, 200, 200]
    colours = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 150, 200]]]], "uint8")
    luma = convert_channels(colours, 1)[0, 0, :, 0].tolist()
    # 0.299*255=76.2, 0.587*255=149.7, 0.114*255=29.1, 0.299*100+0.587*150+0.114*200=140.75
    assert luma == [76, 150, 29, 141]
    assert convert_channels(colours, None) is colours
    assert convert_channels(colours, 3) is colours
    with pytest.raises(DataError, match="channels must be 1, 3 or None, received 2"):
        convert_channels(colours, 2)


def test_image_size_and_channel_conversion_in_load_dataset():
    rgb = load_dataset("digits", image_size=16, channels=3, seed=0)
    assert rgb.channels == 3 and rgb.train.x.shape[1:] == (16, 16, 3)
    x = rgb.train.x
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])
    grey = load_dataset("digits", image_size=16, channels=1, seed=0)
    np.testing.assert_array_equal(grey.train.x[..., 0], x[..., 0])


# ----------------------------------------------------------------------------------------------
# label budgets
# ----------------------------------------------------------------------------------------------

def test_select_labels_per_class_counts_determinism_and_nesting():
    y = np.repeat(np.arange(3), [10, 12, 15])
    chosen = select_labels_per_class(y, 4, seed=7)
    assert np.all(np.diff(chosen) > 0)  # sorted, unique
    assert np.bincount(y[chosen]).tolist() == [4, 4, 4]
    assert np.array_equal(chosen, select_labels_per_class(y, 4, seed=7))
    assert not np.array_equal(chosen, select_labels_per_class(y, 4, seed=8))
    bigger = select_labels_per_class(y, 8, seed=7)
    assert set(chosen.tolist()) <= set(bigger.tolist())


def test_select_labels_per_class_names_the_short_class():
    y = np.repeat(np.arange(3), [10, 3, 15])
    with pytest.raises(DataError, match=r"class '1' has only 3 .* labels_per_class=5; use "
                                        r"labels_per_class <= 3"):
        select_labels_per_class(y, 5, seed=0)
    with pytest.raises(DataError, match=r"class 'Trouser' has only 3"):
        select_labels_per_class(y, 5, seed=0, class_names=["T-shirt/top", "Trouser", "Pullover"])


def test_load_dataset_with_label_budget():
    full = load_dataset("digits", image_size=8, seed=0)
    small = load_dataset("digits", image_size=8, labels_per_class=7, seed=0)
    assert len(small.train) == 70
    assert np.bincount(small.train.y).tolist() == [7] * 10
    np.testing.assert_array_equal(small.test.y, full.test.y)  # val and test untouched
    np.testing.assert_array_equal(small.val.x, full.val.x)
    again = full.with_label_budget(7, seed=0)
    np.testing.assert_array_equal(again.train.x, small.train.x)
    with pytest.raises(DataError, match=r"has only \d+ training examples, fewer than "
                                        r"labels_per_class=1000"):
        load_dataset("digits", image_size=8, labels_per_class=1000)


# ----------------------------------------------------------------------------------------------
# image folders
# ----------------------------------------------------------------------------------------------

def test_labeled_folder_decodes_mixed_files_and_skips_broken_ones(labeled_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="gantransfer.data"):
        data = load_dataset(str(labeled_folder), image_size=16, validation_split=0.0,
                            test_split=0.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "skipped 3 unreadable files" in message and str(labeled_folder) in message
    assert "first: blue/notes.txt" in message
    assert data.skipped_files == 3
    assert data.class_names == ["blue", "red"] and data.num_classes == 2
    assert data.channels == 3  # some files are colour
    x, y = data.train.x, data.train.y
    assert x.shape == (6, 16, 16, 3) and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.all(x[0] == [0, 0, 255]) and np.all(x[3] == [255, 0, 0])
    assert np.all(x[1] == 50) and np.all(x[5] == 200)  # grey files repeated into RGB
    assert np.abs(x[2].astype(int) - 120).max() <= 3  # grey JPEG
    assert np.abs(x[4].astype(int) - [255, 0, 0]).max() <= 6  # red JPEG
    assert str(labeled_folder.resolve()) in data.source


def test_labeled_folder_to_greyscale(labeled_folder):
    data = load_dataset(str(labeled_folder), image_size=8, channels=1, validation_split=0.0,
                        test_split=0.0)
    assert data.train.x.shape == (6, 8, 8, 1)
    assert np.all(data.train.x[0] == 29) and np.all(data.train.x[3] == 76)  # luma of blue, red


def test_flat_folder_is_unlabeled_and_grey(flat_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="gantransfer.data"):
        data = load_dataset(str(flat_folder), image_size=8, validation_split=0.0, test_split=0.0)
    assert data.num_classes is None and data.class_names is None
    assert data.train.y is None and not data.train.labeled
    assert data.channels == 1 and data.train.x.shape == (6, 8, 8, 1)
    assert [int(img.mean()) for img in data.train.x[:5]] == [0, 40, 80, 120, 160]
    assert data.skipped_files == 1 and "readme.txt" in caplog.text
    with pytest.raises(DataError, match="unlabeled, so labels_per_class cannot apply"):
        load_dataset(str(flat_folder), image_size=8, labels_per_class=1)
    with pytest.raises(DataError, match="with_labels=True needs labeled images"):
        ImageBatches(data.train, 2, with_labels=True)


def test_streamed_folder_yields_the_same_pixels_as_in_memory(labeled_folder):
    kwargs = dict(image_size=16, validation_split=0.2, test_split=0.2, seed=5)
    memory = load_dataset(str(labeled_folder), **kwargs)
    streamed = load_dataset(str(labeled_folder), max_in_memory_mb=1e-6, **kwargs)
    assert streamed.train.streamed and streamed.train.x is None
    assert all(Path(p).is_file() for p in streamed.train.paths)
    assert not memory.train.streamed
    assert streamed.skipped_files == memory.skipped_files == 3
    # One source however it is held: a GAN run that streamed it and a transfer that did not must
    # still compare their test images, and find them the same.
    assert streamed.source == memory.source
    for split in ("train", "val", "test"):
        a, b = getattr(memory, split), getattr(streamed, split)
        assert len(a) == len(b) and np.array_equal(a.y, b.y)
        assert a.fingerprint() == b.fingerprint()
        np.testing.assert_array_equal(a.load(np.arange(len(a))), b.load(np.arange(len(b))))
    batches_a = ImageBatches(memory.train, 2, seed=1, with_labels=True)
    batches_b = ImageBatches(streamed.train, 2, seed=1, with_labels=True)
    for _ in range(2):
        for (xa, ya), (xb, yb) in zip(_all_batches(batches_a), _all_batches(batches_b)):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
            assert xb.dtype == np.float32 and -1 <= xb.min() and xb.max() <= 1
        batches_a.on_epoch_end()
        batches_b.on_epoch_end()


def test_streamed_file_that_breaks_after_the_scan_names_the_file(labeled_folder):
    data = load_dataset(str(labeled_folder), image_size=8, max_in_memory_mb=1e-6,
                        validation_split=0.0, test_split=0.0)
    victim = Path(data.train.paths[0])
    victim.write_bytes(b"no longer an image")
    with pytest.raises(DataError, match=f"cannot decode {victim}.*remove or replace"):
        data.train.load(np.array([0]))
    assert data.train.load(np.array([1])).shape == (1, 8, 8, 3)


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no readable images in"):
        load_dataset(str(empty))
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("x")
    with pytest.raises(DataError, match=r"no readable images .*skipped 1 unreadable files, first: a.txt"):
        load_dataset(str(junk))
    one_class = tmp_path / "one_class"
    _save(one_class / "cats" / "a.png", _solid(1))
    with pytest.raises(DataError, match=r"only one class folder \('cats'\)"):
        load_dataset(str(one_class))
    mixed = tmp_path / "mixed"
    _save(mixed / "a" / "x.png", _solid(1))
    _save(mixed / "b" / "x.png", _solid(1))
    _save(mixed / "loose.png", _solid(1))
    with pytest.raises(DataError, match="has both files .* and subfolders"):
        load_dataset(str(mixed))
    empty_class = tmp_path / "empty_class"
    _save(empty_class / "a" / "x.png", _solid(1))
    (empty_class / "b").mkdir()
    (empty_class / "b" / "bad.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="class folder 'b' .* has no readable images"):
        load_dataset(str(empty_class))


# ----------------------------------------------------------------------------------------------
# npz and IDX files
# ----------------------------------------------------------------------------------------------

def test_npz_with_labels_float_pixels_and_label_values(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((40, 16, 16, 3)).astype("float32")  # [0, 1] floats
    y = np.where(np.arange(40) % 2 == 0, 3, 7)
    np.savez(tmp_path / "set.npz", x=x, y=y)
    data = load_dataset(str(tmp_path / "set.npz"), image_size=16, validation_split=0.0,
                        test_split=0.25)
    assert data.class_names == ["3", "7"] and data.num_classes == 2
    assert data.channels == 3 and len(data.test) == 10 and len(data.train) == 30
    assert sorted(set(data.train.y.tolist())) == [0, 1]
    expected = np.rint(x * 255).astype("uint8")
    assert any(np.array_equal(data.train.x[0], img) for img in expected)
    assert "npz file" in data.source


def test_npz_without_labels_and_in_gan_range(tmp_path):
    x = np.linspace(-1, 1, 20 * 8 * 8).reshape(20, 8, 8)  # (N, H, W) floats in [-1, 1]
    np.savez(tmp_path / "gan.npz", x=x)
    data = load_dataset(str(tmp_path / "gan.npz"), image_size=8, validation_split=0.0,
                        test_split=0.0)
    assert data.train.y is None and data.num_classes is None and data.channels == 1
    assert data.train.x.min() == 0 and data.train.x.max() == 255


def test_npz_with_its_own_test_split(tmp_path):
    arrays = _fake_mnist_npz(tmp_path / "own.npz")
    data = load_dataset(str(tmp_path / "own.npz"), image_size=28, validation_split=0.0)
    assert len(data.test) == 7 and len(data.train) == 30
    np.testing.assert_array_equal(data.test.x[..., 0], arrays["x_test"])


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "mismatch.npz", x=np.zeros((5, 8, 8), "uint8"), y=np.arange(4) % 2)
    with pytest.raises(DataError, match="has 5 images but 4 labels"):
        load_dataset(str(tmp_path / "mismatch.npz"))
    np.savez(tmp_path / "single.npz", x=np.zeros((5, 8, 8), "uint8"), y=np.ones(5, "int64"))
    with pytest.raises(DataError, match=r"has only one class \('1'\)"):
        load_dataset(str(tmp_path / "single.npz"))
    np.savez(tmp_path / "keys.npz", images=np.zeros((5, 8, 8), "uint8"))
    with pytest.raises(DataError, match=r"holds arrays \['images'\]; expected x"):
        load_dataset(str(tmp_path / "keys.npz"))
    np.savez(tmp_path / "range.npz", x=np.full((5, 8, 8), 300.0))
    with pytest.raises(DataError, match=r"holds floats in \[300, 300\]"):
        load_dataset(str(tmp_path / "range.npz"))
    np.savez(tmp_path / "shape.npz", x=np.zeros((5, 8, 8, 4), "uint8"))
    with pytest.raises(DataError, match=r"shape \(5, 8, 8, 4\); expected images"):
        load_dataset(str(tmp_path / "shape.npz"))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_single_images_file_finds_its_labels(tmp_path, gz):
    folder = _idx_folder(tmp_path / "idx", n_train=20, gz=gz)
    images = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    data = load_dataset(str(images), image_size=28, validation_split=0.0, test_split=0.25)
    assert (len(data.train), len(data.test)) == (15, 5)
    assert data.num_classes == 10 and data.channels == 1
    assert np.array_equal(read_idx(images)[..., None].sum(), (data.train.x.astype(int).sum()
                                                             + data.test.x.astype(int).sum()))


def test_idx_files_in_the_kaggle_spelling_find_their_labels(tmp_path):
    folder = _idx_folder(tmp_path / "idx", n_train=20, n_test=10, gz=False)
    for path in folder.iterdir():  # train-images-idx3-ubyte -> train-images.idx3-ubyte
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    data = load_dataset(str(folder / "train-images.idx3-ubyte"), image_size=28,
                        validation_split=0.0, test_split=0.25)
    assert data.num_classes == 10 and len(data.train) == 15
    whole = load_dataset(str(folder), image_size=28, validation_split=0.0)
    assert len(whole.test) == 10 and whole.num_classes == 10


def test_idx_images_file_without_labels_is_unlabeled(tmp_path):
    path = _write_idx(tmp_path / "my-images-idx3-ubyte", np.zeros((6, 8, 8)))
    data = load_dataset(str(path), image_size=8, validation_split=0.0, test_split=0.0)
    assert data.train.y is None and data.train.x.shape == (6, 8, 8, 1)


def test_idx_folder_uses_t10k_as_test(tmp_path):
    folder = _idx_folder(tmp_path / "idx", n_train=20, n_test=10)
    data = load_dataset(str(folder), image_size=28, validation_split=0.1)
    assert len(data.test) == 10 and len(data.train) + len(data.val) == 20
    assert data.test.y.tolist() == (np.arange(10) % 10).tolist()
    expected = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data.test.x[..., 0], expected)


def test_idx_errors(tmp_path):
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x08\x03" + b"\x00" * 20)
    with pytest.raises(DataError, match="is not an IDX file: it starts with bytes 01 02 08 03"):
        load_dataset(str(bad))
    short = tmp_path / "short-images-idx3-ubyte.gz"
    payload = bytes([0, 0, 8, 3]) + struct.pack(">3I", 4, 5, 5) + b"\x00" * 50
    short.write_bytes(gzip.compress(payload))
    with pytest.raises(DataError, match=r"does not match its IDX header: shape \(4, 5, 5\)"):
        load_dataset(str(short))
    # A gzip bomb: 4 images by its header, 256 MB of zeros after them, in a 250 KB file. Only what
    # the header promises (plus one byte) is ever decompressed, and the surplus is refused.
    bomb = tmp_path / "bomb-images-idx3-ubyte.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    with bomb.open("wb") as handle:
        handle.write(compressor.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 4, 5, 5)
                                         + b"\x00" * 100))
        for _ in range(256):
            handle.write(compressor.compress(bytes(2**20)))
        handle.write(compressor.flush())
    assert bomb.stat().st_size < 2**20
    with pytest.raises(DataError, match=r"does not match its IDX header: shape \(4, 5, 5\) of uint8 "
                                        r"needs 116 bytes, the file has 117"):
        load_dataset(str(bomb))
    huge = tmp_path / "huge-images-idx3-ubyte.gz"
    huge.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 10**6, 10**3, 10**3)))
    with pytest.raises(DataError, match="says it holds 1,000,000,000,016 bytes, more than"):
        load_dataset(str(huge))
    # Dimensions whose product wraps in 64 bits (to -2 here) must not slip past that check.
    wrapped = tmp_path / "wrapped-images-idx3-ubyte.gz"
    wrapped.write_bytes(gzip.compress(bytes([0, 0, 8, 3])
                                      + struct.pack(">3I", 908558, 31252369, 649657)))
    with pytest.raises(DataError, match="says it holds 18,446,744,073,709,551,630 bytes"):
        load_dataset(str(wrapped))
    folder = tmp_path / "count"
    _write_idx(folder / "train-images-idx3-ubyte", np.zeros((6, 8, 8)))
    _write_idx(folder / "train-labels-idx1-ubyte", np.arange(5) % 2)
    with pytest.raises(DataError, match="has 6 images but 5 labels"):
        load_dataset(str(folder))


# ----------------------------------------------------------------------------------------------
# Keras built-ins and Fashion-MNIST, offline
# ----------------------------------------------------------------------------------------------

def test_mnist_from_a_cached_npz_loads_offline(keras_cache):
    arrays = _fake_mnist_npz(keras_cache / "mnist.npz")
    data = load_dataset("mnist", image_size=28, validation_split=0.0)
    assert (len(data.train), len(data.test)) == (30, 7)
    assert data.class_names == [str(i) for i in range(10)] and data.channels == 1
    np.testing.assert_array_equal(data.test.x[..., 0], arrays["x_test"])
    np.testing.assert_array_equal(data.test.y, arrays["y_test"])
    assert str(keras_cache / "mnist.npz") in data.source


@pytest.mark.parametrize("name, expected", [
    ("mnist", "put mnist.npz from https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
              "mnist.npz into {cache}/ (KERAS_HOME) and run again"),
    ("fashion_mnist", "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                      "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz from "
                      "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
    ("cifar10", "put cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/"
                "cifar-10-python.tar.gz into {cache}/"),
    ("cifar100", "put cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/"
                 "cifar-100-python.tar.gz into {cache}/"),
])
def test_failed_download_says_which_file_to_put_where(keras_cache, name, expected):
    with pytest.raises(DataError) as info:
        load_dataset(name)
    message = str(info.value)
    assert message.startswith(f"could not download {name}: ")
    assert expected.format(cache=keras_cache) in message
    assert "\n" not in message and "Name or service not known" in message
    if name == "fashion_mnist":
        assert f"into {keras_cache / 'fashion-mnist'}/" in message and "dataset-fashion-mnist" in message


@pytest.mark.parametrize("name, as_archive", [("cifar10", True), ("cifar100", False)])
def test_cifar_from_the_keras_cache(keras_cache, name, as_archive, monkeypatch):
    if name == "cifar10":
        inner, label_key, archive = "cifar-10-batches-py", b"labels", "cifar-10-python.tar.gz"
        members = {f"data_batch_{i}": _cifar_batch(3, label_key, i) for i in range(1, 6)}
        members["test_batch"] = _cifar_batch(4, label_key, 9)
    else:
        inner, label_key, archive = "cifar-100-python", b"fine_labels", "cifar-100-python.tar.gz"
        members = {"train": _cifar_batch(15, label_key, 1), "test": _cifar_batch(4, label_key, 9)}
    if as_archive:
        with tarfile.open(keras_cache / archive, "w:gz") as tar:
            for member, batch in members.items():
                payload = pickle.dumps(batch)
                info = tarfile.TarInfo(f"{inner}/{member}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
        # A stand-in for the real archive: its hash is the one the loader is told to expect.
        monkeypatch.setitem(sources.CIFAR_SHA256, archive,
                            hashlib.sha256((keras_cache / archive).read_bytes()).hexdigest())
    else:
        (keras_cache / inner).mkdir(mode=0o755)
        for member, batch in members.items():
            (keras_cache / inner / member).write_bytes(pickle.dumps(batch))
    data = load_dataset(name, image_size=32, validation_split=0.0)
    assert (len(data.train), len(data.test)) == (15, 4) and data.channels == 3
    assert data.num_classes == (10 if name == "cifar10" else 100)
    first = members["test_batch" if name == "cifar10" else "test"][b"data"][0]
    # Rows are 1024 red, then 1024 green, then 1024 blue values of a 32x32 image.
    assert data.test.x[0, 0, 1].tolist() == [first[1], first[1025], first[2049]]
    assert data.test.y.tolist() == [0, 1, 2, 3]


class _Exploit:
    """Unpickling this would create a file: the proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_cifar_pickles_are_not_read_from_an_unchecked_archive_or_a_shared_folder(keras_cache,
                                                                                  tmp_path):
    marker = tmp_path / "pickle-was-loaded"
    with tarfile.open(keras_cache / "cifar-10-python.tar.gz", "w:gz") as tar:
        payload = pickle.dumps(_Exploit(marker))
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(DataError, match="is not the published archive .*delete it"):
        load_dataset("cifar10")
    assert not marker.exists()
    (keras_cache / "cifar-10-python.tar.gz").unlink()
    shared = keras_cache / "cifar-10-batches-py"
    shared.mkdir()
    (shared / "data_batch_1").write_bytes(pickle.dumps(_Exploit(marker)))
    shared.chmod(0o777)  # like the /tmp/.keras fallback cache
    with pytest.raises(DataError, match="refusing to unpickle .* writable by every user"):
        load_dataset("cifar10")
    assert not marker.exists()
    shared.chmod(0o755)  # a private folder, but a batch in it that anyone could have replaced
    (shared / "data_batch_1").chmod(0o666)
    with pytest.raises(DataError, match="data_batch_1 is writable by every user"):
        load_dataset("cifar10")
    assert not marker.exists()
    (shared / "data_batch_1").chmod(0o644)
    if hasattr(os, "getuid") and os.getuid() == 0:  # only root can give a folder to someone else
        os.chown(shared, 12345, -1)  # another user made it, say in /tmp/.keras before us
        with pytest.raises(DataError, match="cifar-10-batches-py belongs to another user"):
            load_dataset("cifar10")
        assert not marker.exists()


def test_cifar100_class_names_are_the_hundred_fine_labels():
    names = sources.CIFAR100_CLASSES
    assert len(names) == len(set(names)) == 100 and names == sorted(names)
    assert names[0] == "apple" and names[-1] == "worm"


def test_fashion_mnist_from_a_fake_debian_dir(tmp_path, keras_cache, monkeypatch):
    debian = _idx_folder(tmp_path / "debian", n_train=20, n_test=10)
    monkeypatch.setattr(sources, "FASHION_MNIST_DEBIAN_DIR", debian)
    data = load_dataset("fashion_mnist", image_size=28, validation_split=0.0)
    assert (len(data.train), len(data.test)) == (20, 10)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[-1] == "Ankle boot"
    assert "Debian package" in data.source and str(debian) in data.source


@pytest.mark.skipif(not (REAL_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason="the Debian package dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_real_debian_package():
    data = load_dataset("fashion_mnist", image_size=28, seed=0)
    assert len(data.train) + len(data.val) == 60000 and len(data.test) == 10000
    assert data.num_classes == 10 and len(data.class_names) == 10
    assert data.train.x.shape[1:] == (28, 28, 1) and data.train.x.dtype == np.uint8
    assert np.bincount(data.test.y).tolist() == [1000] * 10
    assert str(REAL_FASHION_DIR) in data.source


# ----------------------------------------------------------------------------------------------
# ImageSet and ImageBatches
# ----------------------------------------------------------------------------------------------

def _numbered_set(n: int = 10) -> ImageSet:
    """Image i is filled with the value i, so a batch tells which images it holds."""
    x = np.arange(n, dtype="uint8")[:, None, None, None] * np.ones((1, 4, 4, 1), "uint8")
    return ImageSet(x, np.arange(n) % 3)


def test_image_set_basics():
    images = _numbered_set(10)
    assert len(images) == 10 and images.labeled and not images.streamed
    assert (images.image_size, images.channels) == (4, 1)
    part = images.subset([7, 2])
    assert part.x[:, 0, 0, 0].tolist() == [7, 2] and part.y.tolist() == [1, 2]
    assert images.load(np.array([3, 1]))[:, 0, 0, 0].tolist() == [3, 1]
    assert "n=10" in repr(images)
    with pytest.raises(DataError, match="exactly one of x .* or paths"):
        ImageSet(None, None)
    with pytest.raises(DataError, match="has 10 images but 9 labels"):
        ImageSet(images.x, np.arange(9))


def _values(batch: np.ndarray) -> list[int]:
    return to_uint8(batch, GAN_RANGE)[:, 0, 0, 0].tolist()


def test_image_batches_shapes_range_and_coverage():
    images = _numbered_set(10)
    batches = ImageBatches(images, 4, seed=0)
    assert len(batches) == 3
    first = batches[0]
    assert first.shape == (4, 4, 4, 1) and first.dtype == np.float32
    assert -1.0 <= first.min() and first.max() <= 1.0
    seen = sum((_values(b) for b in _all_batches(batches)), [])
    assert sorted(seen) == list(range(10))  # every image once per epoch
    assert seen != list(range(10))  # shuffled
    assert len(ImageBatches(images, 4, drop_remainder=True)) == 2
    assert _values(ImageBatches(images, 4, shuffle=False)[1]) == [4, 5, 6, 7]
    x, y = ImageBatches(images, 4, seed=0, with_labels=True)[0]
    assert y.tolist() == [v % 3 for v in _values(x)]  # labels travel with their images
    assert len(list(iter(batches))) == 3  # PyDataset iteration protocol
    with pytest.raises(IndexError):
        batches[3]


def test_image_batches_order_depends_only_on_seed_and_epoch():
    images = _numbered_set(50)
    run = ImageBatches(images, 8, seed=3)
    epoch0 = [_values(b) for b in _all_batches(run)]
    assert epoch0 == [_values(b) for b in _all_batches(ImageBatches(images, 8, seed=3))]
    assert epoch0 != [_values(b) for b in _all_batches(ImageBatches(images, 8, seed=4))]
    run.on_epoch_end()
    epoch1 = [_values(b) for b in _all_batches(run)]
    assert epoch1 != epoch0
    resumed = ImageBatches(images, 8, seed=3, initial_epoch=1)
    assert [_values(b) for b in _all_batches(resumed)] == epoch1
    expected = np.random.default_rng([3, 1]).permutation(50)
    assert sum(epoch1, []) == expected.tolist()


def test_image_batches_pass_kwargs_to_py_dataset():
    batches = ImageBatches(_numbered_set(8), 4, workers=2, max_queue_size=3)
    assert (batches.workers, batches.max_queue_size) == (2, 3)


def _fit_and_record_orders(images: ImageSet, initial_epoch: int, epochs: int) -> dict:
    """Fits a tiny model; returns {Keras epoch: the permutation ImageBatches served in it}."""
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batches = ImageBatches(images, 4, seed=0, with_labels=True, initial_epoch=initial_epoch)
    orders = {}
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: orders.__setitem__(epoch, batches.order.tolist()))
    history = model.fit(batches, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                        verbose=0, callbacks=[record])
    assert np.isfinite(history.history["loss"]).all()
    return orders


def test_keras_fit_sees_the_same_order_in_a_resumed_run():
    images = _numbered_set(12)
    fresh = _fit_and_record_orders(images, initial_epoch=0, epochs=3)
    resumed = _fit_and_record_orders(images, initial_epoch=1, epochs=3)
    assert sorted(fresh) == [0, 1, 2] and sorted(resumed) == [1, 2]
    assert resumed[1] == fresh[1] and resumed[2] == fresh[2]
    assert fresh[0] != fresh[1] != fresh[2]


def test_image_batches_errors():
    images = _numbered_set(5)
    with pytest.raises(DataError, match="batch_size must be an integer >= 1, received 0"):
        ImageBatches(images, 0)
    with pytest.raises(DataError, match="cannot batch an empty ImageSet"):
        ImageBatches(images.subset([]), 2)
    with pytest.raises(DataError, match="batch_size=8 is larger than the 5 images"):
        ImageBatches(images, 8, drop_remainder=True)


# ----------------------------------------------------------------------------------------------
# argument and name errors
# ----------------------------------------------------------------------------------------------

def test_unknown_name_lists_the_valid_choices():
    with pytest.raises(DataError) as info:
        load_dataset("fashon_mnist")
    assert str(info.value).startswith(
        "unknown dataset 'fashon_mnist': expected one of cifar10, cifar100, digits, fashion_mnist, "
        "mnist, or a path to an image folder, .npz or IDX file")
    assert "did you mean 'fashion_mnist'" in str(info.value)
    with pytest.raises(DataError, match="no file or folder at 'missing/set.npz'.*one of cifar10"):
        load_dataset("missing/set.npz")


def test_unsupported_file_type(tmp_path):
    (tmp_path / "table.csv").write_text("1,2")
    with pytest.raises(DataError, match="expected an image folder, an .npz file or an IDX file"):
        load_dataset(str(tmp_path / "table.csv"))


@pytest.mark.parametrize("kwargs, message", [
    ({"image_size": 4}, r"image_size: received 4, expected 4 or 7 times a power of two"),
    ({"image_size": 32.0}, r"image_size: received 32.0, expected 4 or 7 times a power of two"),
    ({"image_size": 12}, r"image_size: received 12, expected .*\(8, 14, 16, 28, 32, 56, 64"),
    ({"channels": 2}, r"channels must be 1 \(greyscale\), 3 \(RGB\) or None .*received 2"),
    ({"validation_split": 1.0}, r"validation_split must be a fraction in \[0, 1\), received 1.0"),
    ({"validation_split": -0.1}, r"validation_split must be a fraction in \[0, 1\), received -0.1"),
    ({"test_split": 1}, r"test_split must be a fraction in \[0, 1\), received 1"),
    ({"labels_per_class": 0}, "labels_per_class must be an integer >= 1 or None, received 0"),
    ({"seed": -1}, "seed must be a non-negative integer, received -1"),
    ({"max_in_memory_mb": 0}, "max_in_memory_mb must be a number > 0, received 0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(DataError, match=message):
        load_dataset("digits", **kwargs)


def test_view_batches_serve_every_image_once_an_epoch_in_a_view_drawn_as_often_as_its_chance():
    from gantransfer.data.batches import ViewBatches, Views, originals

    n, chances = 200, [0.5, 0.25, 0.125, 0.125]
    # image i's view k holds i + 1000 k: the value says which image and which view was served
    stack = np.arange(n)[:, None, None] + 1000 * np.arange(4)[None, :, None]
    views = Views(stack.astype("float32"), chances)
    labels = np.arange(n)
    batches = ViewBatches(views, labels, 32, shuffle=True, seed=3)
    counts, orders = np.zeros(4), []
    for _ in range(50):
        served = [batches[i] for i in range(len(batches))]
        batches.on_epoch_end()  # as fit does
        x = np.concatenate([b[0] for b in served]).ravel()
        y = np.concatenate([b[1] for b in served])
        assert sorted(y.tolist()) == labels.tolist()  # every image once, with its own label
        np.testing.assert_array_equal(x % 1000, y)
        counts += np.bincount((x // 1000).astype(int), minlength=4)
        orders.append(y)
    assert not np.array_equal(orders[0], orders[1])  # reshuffled every epoch
    np.testing.assert_allclose(counts / counts.sum(), chances, atol=0.02)
    first, again = (ViewBatches(views, labels, 32, shuffle=True, seed=3) for _ in range(2))
    np.testing.assert_array_equal(first.inputs, again.inputs)  # the same seed, the same draws
    np.testing.assert_array_equal(originals(views).ravel(), np.arange(n))
    assert views[[3, 1]].stack[:, 0, 0].tolist() == [3.0, 1.0] and views.shape == (n, 1)
    with pytest.raises(ValueError, match="sum to 1"):
        Views(stack.astype("float32"), [0.5, 0.5, 0.5, 0.5])


def test_16_bit_and_float_grey_images_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    from gantransfer.data.folders import decode_image

    ramp = np.tile(np.linspace(0, 1, 16), (16, 1))
    expected = np.floor(ramp * 255 + 0.5).astype("uint8")
    sixteen = Image.fromarray((ramp * 65535).round().astype("uint16"))  # a 16-bit PNG
    sixteen.save(tmp_path / "sixteen.png")
    Image.fromarray(ramp.astype("float32"), mode="F").save(tmp_path / "float.tiff")
    for name in ("sixteen.png", "float.tiff"):
        decoded = decode_image(tmp_path / name, 16, 1)[..., 0]
        assert np.abs(decoded.astype(int) - expected).max() <= 1, name  # not all 255, not all 0
