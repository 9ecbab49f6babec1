"""The convolution output-size formula from the course, checked against what Keras builds.

``W_out = floor((W_in + 2P - D(F - 1) - 1) / S) + 1`` for input size ``W_in``, kernel size ``F``,
stride ``S``, padding ``P`` on each side and dilation ``D``.
"""

from __future__ import annotations

import math

from gantransfer.errors import ConfigError


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
