"""The course's convolution output-size formula against the shapes Keras actually produces, and the
one image-size rule that the config, the data sources and the GAN builders share."""

import itertools

import keras
import numpy as np
import pytest

from gantransfer.config import DataConfig
from gantransfer.data import load_dataset
from gantransfer.errors import ConfigError, DataError
from gantransfer.gan.models import build_generator, spatial_plan
from gantransfer.shapes import check_image_size, conv_output_size, valid_image_size

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


def test_valid_image_sizes_are_4_or_7_times_a_power_of_two():
    assert [size for size in range(130) if valid_image_size(size)] == \
        [8, 14, 16, 28, 32, 56, 64, 112, 128]
    assert valid_image_size(np.int64(28)) and valid_image_size(256) and valid_image_size(224)
    for value in (4, 7, 12, 30, 48, 96, -8, 32.0, "32", True, None):
        assert not valid_image_size(value), value


def test_check_image_size_says_key_value_and_what_is_allowed():
    assert check_image_size(np.int64(16)) == 16 and type(check_image_size(np.int64(16))) is int
    with pytest.raises(ConfigError, match=r"^data.image_size: received 30, expected 4 or 7 times a "
                                          r"power of two, at least 8 \(8, 14, 16, 28, 32, 56, 64"):
        check_image_size(30, key="data.image_size")
    with pytest.raises(DataError, match=r"^image_size: received '32'"):
        check_image_size("32", error=DataError)


def _accepts(call) -> bool:
    try:
        call()
    except (ConfigError, DataError) as error:
        assert "image_size: received" in str(error)
        return False
    return True


@pytest.mark.parametrize("size", [*range(0, 66), 96, 112, 128, 224])
def test_config_data_sources_and_gan_builders_agree_on_every_size(size, tmp_path):
    images = tmp_path / "images.npz"
    np.savez(images, x=np.zeros((4, 8, 8), "uint8"))
    verdicts = {
        "config": _accepts(lambda: DataConfig(image_size=size)),
        "data": _accepts(lambda: load_dataset(str(images), image_size=size, validation_split=0.0,
                                              test_split=0.0)),
        "gan": _accepts(lambda: spatial_plan(size)),
    }
    assert verdicts == dict.fromkeys(verdicts, valid_image_size(size)), size


@pytest.mark.parametrize("size", [8, 14, 16, 28, 32, 56, 64])
def test_the_generator_builds_every_valid_size(size):
    start, blocks = spatial_plan(size)
    assert start * 2**blocks == size and blocks >= 1
    assert build_generator(size, 1, latent_dim=2, width=0.125).output_shape == (None, size, size, 1)
