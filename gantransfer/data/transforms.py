"""Pixel transforms on uint8 image batches: GAN range scaling, resizing, channel conversion.

Every function here takes and returns ``(N, H, W, C)`` arrays. Images are stored as uint8 and only
scaled to float32 one batch at a time (:func:`to_gan_range`), so a dataset is never held as floats.

Example:
    >>> import numpy as np
    >>> x = np.zeros((2, 8, 8, 1), "uint8")
    >>> convert_channels(resize_images(x, 16), 3).shape
    (2, 16, 16, 3)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from gantransfer.errors import DataError

# The GAN's range is its generator's tanh range. The one mapping from [0, 255] pixels into it is
# ``pixels * GAN_SCALE + GAN_OFFSET``; its inverse, ``(x - GAN_OFFSET) / GAN_SCALE``, is what
# ``images.to_uint8(x, GAN_RANGE)`` computes. Everything that crosses between the two ranges uses
# these numbers, through :func:`to_gan_range` (NumPy) or :func:`gan_range_layer` (inside a model).
GAN_RANGE = (-1.0, 1.0)
PIXEL_RANGE = (0.0, 255.0)
GAN_SCALE = 1.0 / 127.5
GAN_OFFSET = -1.0

# ITU-R BT.601 luma weights, the same ones Pillow's RGB -> L conversion uses.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype="float32")

# Channel conversion works on this many images at a time so its float temporaries stay small.
_CHUNK = 2048


def to_gan_range(x_uint8: np.ndarray) -> np.ndarray:
    """Scales uint8 pixels to the GAN's float32 range [-1, 1] (the generator's tanh range).

    Args:
        x_uint8: Images with values in [0, 255], any shape.

    Returns:
        float32 array of the same shape: ``x * GAN_SCALE + GAN_OFFSET``. It divides by
        ``1 / GAN_SCALE`` (127.5) rather than multiplying, as gantransfer always has, so GAN runs stay
        bit-identical across versions; :func:`gan_range_layer` agrees within float32 rounding.

    Example:
        >>> to_gan_range(np.array([0, 255], "uint8"))
        array([-1.,  1.], dtype=float32)
    """
    return np.asarray(x_uint8, dtype="float32") / np.float32(1.0 / GAN_SCALE) + np.float32(GAN_OFFSET)


def gan_range_layer(name: str = "to_gan_range") -> Any:
    """A Keras layer that maps [0, 255] pixels into the GAN's range inside a model.

    Example:
        >>> layer = gan_range_layer()
        >>> np.asarray(layer(np.array([[0.0, 255.0]], "float32"))).tolist()
        [[-1.0, 1.0]]
    """
    from keras import layers

    return layers.Rescaling(GAN_SCALE, offset=GAN_OFFSET, name=name)


def _as_uint8_batch(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise DataError(f"{what} expects uint8 images, received dtype {x.dtype}; convert floats in "
                        "[-1, 1] with gantransfer.images.to_uint8(x, GAN_RANGE) first")
    if x.ndim == 3:  # (N, H, W) greyscale
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{what} expects images shaped (N, H, W, C) or (N, H, W), received shape "
                        f"{x.shape}; add a batch axis for a single image")
    return x


def resize_images(x_uint8: np.ndarray, image_size: int) -> np.ndarray:
    """Resizes a batch of images to ``image_size`` x ``image_size`` with Pillow.

    Upscaling uses bicubic interpolation, anything else bilinear (which Pillow antialiases when
    shrinking). Non-square images are stretched to the square; crop them first to keep the aspect.

    Args:
        x_uint8: uint8 images, ``(N, H, W, C)`` or ``(N, H, W)``.
        image_size: Output side length in pixels.

    Returns:
        uint8 ``(N, image_size, image_size, C)``; the input itself when it already has that size.

    Example:
        >>> resize_images(np.zeros((3, 8, 8, 1), "uint8"), 32).shape
        (3, 32, 32, 1)
    """
    x = _as_uint8_batch(x_uint8, "resize_images")
    if int(image_size) < 1:
        raise DataError(f"resize_images needs image_size >= 1, received {image_size}")
    count, height, width, channels = x.shape
    if height == image_size and width == image_size:
        return x
    upscaling = height <= image_size and width <= image_size
    resample = Image.BICUBIC if upscaling else Image.BILINEAR
    size = (image_size, image_size)
    out = np.empty((count, image_size, image_size, channels), dtype="uint8")
    for i in range(count):
        if channels == 3:
            out[i] = np.asarray(Image.fromarray(x[i], "RGB").resize(size, resample))
        else:  # Greyscale, or an unusual channel count resized plane by plane.
            for c in range(channels):
                plane = np.ascontiguousarray(x[i, :, :, c])
                out[i, :, :, c] = np.asarray(Image.fromarray(plane, "L").resize(size, resample))
    return out


def convert_channels(x_uint8: np.ndarray, channels: int | None) -> np.ndarray:
    """Converts images between greyscale and RGB.

    Grey to RGB repeats the plane; RGB to grey takes the ITU-R 601 luma
    ``0.299 R + 0.587 G + 0.114 B``, rounded.

    Args:
        x_uint8: uint8 images, ``(N, H, W, C)`` with C 1 or 3, or ``(N, H, W)``.
        channels: 1 or 3; None returns the images unchanged.

    Returns:
        uint8 ``(N, H, W, channels)``; the input itself when it already has that many channels.

    Example:
        >>> convert_channels(np.full((1, 2, 2, 3), 200, "uint8"), 1)[0, 0, 0]
        array([200], dtype=uint8)
    """
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1, 3 or None, received {channels!r}")
    x = _as_uint8_batch(x_uint8, "convert_channels")
    if channels is None or x.shape[-1] == channels:
        return x
    if x.shape[-1] not in (1, 3):
        raise DataError(f"convert_channels handles 1- or 3-channel images, received "
                        f"{x.shape[-1]} channels; drop alpha or extra planes first")
    if channels == 3:
        return np.repeat(x, 3, axis=-1)
    out = np.empty(x.shape[:-1] + (1,), dtype="uint8")
    for start in range(0, len(x), _CHUNK):
        chunk = x[start:start + _CHUNK].astype("float32")
        out[start:start + _CHUNK, ..., 0] = np.clip(np.rint(chunk @ LUMA_WEIGHTS), 0, 255)
    return out


def prepare_images(x_uint8: np.ndarray, image_size: int, channels: int | None) -> np.ndarray:
    """Resizes, then converts channels: the one pipeline every source goes through.

    Args:
        x_uint8: uint8 images, ``(N, H, W, C)`` or ``(N, H, W)``.
        image_size: Output side length.
        channels: 1, 3, or None to keep the images' own.

    Returns:
        uint8 ``(N, image_size, image_size, C)``.

    Example:
        >>> prepare_images(np.zeros((2, 8, 8), "uint8"), 16, 3).shape
        (2, 16, 16, 3)
    """
    return convert_channels(resize_images(x_uint8, image_size), channels)


def shift_images(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``(N, H, W, C)`` images moved ``dy`` pixels down and ``dx`` right (negative: up, left), the
    uncovered border filled by repeating the edge pixels; same shape and dtype.

    Example:
        >>> x = np.arange(9, dtype="uint8").reshape(1, 3, 3, 1)
        >>> shift_images(x, 0, 1)[0, :, :, 0].tolist()
        [[0, 0, 1], [3, 3, 4], [6, 6, 7]]
    """
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return x
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    return padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]
