"""The course's convolution output-size formula against the shapes Keras actually produces."""

import itertools

import keras
import pytest

from gantransfer.errors import ConfigError
from gantransfer.shapes import conv_output_size

GRID = list(itertools.product([7, 8, 28, 32], [1, 3, 5], [1, 2, 3], [0, 1, 2, "valid", "same"],
                              [1, 2]))


def _keras_size(size, kernel, stride, padding, dilation):
    inputs = keras.Input((size, size, 1))
    x = inputs
    if isinstance(padding, int):
        x = keras.layers.ZeroPadding2D(padding)(x)
        padding = "valid"
    x = keras.layers.Conv2D(1, kernel, strides=stride, padding=padding, dilation_rate=dilation)(x)
    return x.shape[1]


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    case for case in GRID
    # Keras (TensorFlow) refuses strides > 1 together with dilation > 1.
    if not (case[2] > 1 and case[4] > 1)
    and case[0] + 2 * (case[3] if isinstance(case[3], int) else 0) >= case[4] * (case[1] - 1) + 1
])
def test_formula_matches_keras(size, kernel, stride, padding, dilation):
    assert conv_output_size(size, kernel, stride, padding, dilation) == \
        _keras_size(size, kernel, stride, padding, dilation)


def test_dcgan_blocks_halve_the_size():
    sizes = [32]
    for _ in range(3):
        sizes.append(conv_output_size(sizes[-1], 5, stride=2, padding="same"))
    assert sizes == [32, 16, 8, 4]


@pytest.mark.parametrize("kwargs, message", [
    ({"input_size": 0, "kernel_size": 3}, "input_size: received 0"),
    ({"input_size": 8, "kernel_size": 3, "padding": "full"}, "padding: received 'full'"),
    ({"input_size": 8, "kernel_size": 3, "padding": -1}, "padding: received -1"),
    ({"input_size": 4, "kernel_size": 3, "dilation": 3}, "does not fit"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        conv_output_size(**kwargs)
