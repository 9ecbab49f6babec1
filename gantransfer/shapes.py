"""Image and feature-map sizes: the convolution output-size formula, and which image sizes exist.

``W_out = floor((W_in + 2P - D(F - 1) - 1) / S) + 1`` for input size ``W_in``, kernel size ``F``,
stride ``S``, padding ``P`` on each side and dilation ``D``.

An image size is valid when the DCGAN builders can make it: stride-2 blocks halve it down to a 4x4
or 7x7 map, so it is ``4 * 2**k`` or ``7 * 2**k`` with ``k >= 1``. The config, the data sources
and the GAN builders all ask :func:`check_image_size`, so they agree.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from gantransfer.errors import ConfigError, GantransferError

IMAGE_SIZES = "4 or 7 times a power of two, at least 8 (8, 14, 16, 28, 32, 56, 64, ...)"
"""What :func:`check_image_size` allows, in words for error messages and help."""


def valid_image_size(size: Any) -> bool:
    """Whether the DCGAN builders can make square images of this side: ``4 * 2**k`` or
    ``7 * 2**k``, ``k >= 1``.

    Example:
        >>> [size for size in range(60) if valid_image_size(size)]
        [8, 14, 16, 28, 32, 56]
        >>> valid_image_size(30), valid_image_size(64.0), valid_image_size(True)
        (False, False, False)
    """
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 8:
        return False
    start = 7 if size % 7 == 0 else 4
    ratio, remainder = divmod(int(size), start)
    return remainder == 0 and ratio & (ratio - 1) == 0


def check_image_size(size: Any, key: str = "image_size",
                     error: type[GantransferError] = ConfigError) -> int:
    """Returns ``size`` as an ``int`` if it is a valid image size, else raises one clear line.

    Args:
        size: The value received.
        key: The name the message gives it (``data.image_size`` in a config).
        error: The error class to raise (the data sources raise
            :class:`~gantransfer.errors.DataError`).

    Returns:
        ``size``, as an ``int``.

    Raises:
        ConfigError: Or ``error``: the key, the value received and the sizes allowed.

    Example:
        >>> check_image_size(28)
        28
        >>> try:
        ...     check_image_size(30)
        ... except ConfigError as error:
        ...     print(error)
        image_size: received 30, expected 4 or 7 times a power of two, at least 8 (8, 14, 16, 28, 32, 56, 64, ...)
    """
    if not valid_image_size(size):
        raise error(f"{key}: received {size!r}, expected {IMAGE_SIZES}")
    return int(size)


def conv_output_size(input_size: int, kernel_size: int, stride: int = 1,
                     padding: int | str = 0, dilation: int = 1) -> int:
    """Output size of a convolution (or pooling) along one spatial axis.

    Args:
        input_size: ``W_in``, the input's size along the axis.
        kernel_size: ``F``.
        stride: ``S``.
        padding: ``P``, zeros added on each side; or Keras's ``"valid"`` (P = 0) or ``"same"``
            (output ``ceil(W_in / S)``, Keras padding as much as that needs).
        dilation: ``D``; a dilated kernel spans ``D(F - 1) + 1`` inputs.

    Returns:
        ``W_out``.

    Raises:
        ConfigError: On non-positive sizes, negative padding, an unknown padding name, or a kernel
            that does not fit in the padded input.

    Example:
        >>> conv_output_size(32, 5, stride=2, padding=2)      # a DCGAN block, by the formula
        16
        >>> conv_output_size(32, 5, stride=2, padding="same")  # the same block as Keras writes it
        16
        >>> conv_output_size(28, 3, dilation=2)
        24
    """
    for name, value in (("input_size", input_size), ("kernel_size", kernel_size),
                        ("stride", stride), ("dilation", dilation)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}: received {value!r}, expected an integer >= 1")
    if isinstance(padding, str):
        if padding == "same":
            return math.ceil(input_size / stride)
        if padding != "valid":
            raise ConfigError(f"padding: received {padding!r}, expected an integer >= 0, "
                              "'valid' or 'same'")
        padding = 0
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ConfigError(f"padding: received {padding!r}, expected an integer >= 0, 'valid' or 'same'")
    span = dilation * (kernel_size - 1) + 1
    if input_size + 2 * padding < span:
        raise ConfigError(f"a kernel spanning {span} inputs does not fit in {input_size} + 2x"
                          f"{padding} padding; use a smaller kernel or dilation, or more padding")
    return (input_size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
