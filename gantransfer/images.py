"""Image grids and plots written as PNG files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from gantransfer.runs import atomic_write


def to_uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Maps images from ``value_range`` to uint8 [0, 255], clipping anything outside it."""
    low, high = value_range
    scaled = (np.asarray(images, dtype="float32") - low) / (high - low)
    return np.clip(np.round(scaled * 255.0), 0, 255).astype("uint8")


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tiles ``(N, H, W, C)`` uint8 images into one ``(rows*(H+p)+p, cols*(W+p)+p, C)`` image.

    Example:
        >>> make_grid(np.zeros((4, 8, 8, 1), "uint8")).shape
        (22, 22, 1)
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    count, height, width, channels = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    grid = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding,
                     channels), dtype=images.dtype)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top:top + height, left:left + width] = image
    return grid


def save_png(image: np.ndarray, path: Path, scale: int = 1) -> None:
    """Writes a uint8 ``(H, W, C)`` image as PNG, atomically, optionally upscaled (nearest)."""
    image = np.asarray(image)
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    atomic_write(Path(path), lambda handle: pil.save(handle, format="PNG"))


def save_image_grid(images: np.ndarray, path: Path, *, value_range: tuple[float, float],
                    columns: int | None = None) -> np.ndarray:
    """Saves a batch of images as one PNG grid and returns the grid.

    Small images are upscaled so the grid is at least about 256 pixels wide.

    Args:
        images: ``(N, H, W, C)`` floats in ``value_range`` (the GAN's [-1, 1] by default).
        path: The PNG file.
        value_range: The range the images' values live in.
        columns: Grid columns; square by default.

    Returns:
        The uint8 grid, before upscaling.
    """
    grid = make_grid(to_uint8(images, value_range), columns=columns)
    save_png(grid, path, scale=max(1, 256 // grid.shape[1]))
    return grid
