"""DCGAN builders: shapes, layer names, the paper's architecture rules, .keras round trips."""

import keras
import numpy as np
import pytest

from gantransfer.errors import ConfigError
from gantransfer.gan.models import block_filters, build_discriminator, build_generator, spatial_plan


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 1), (32, 3), (64, 3), (128, 1)])
def test_output_shapes(size, channels):
    g = build_generator(size, channels, latent_dim=8, width=0.0625, kernel_size=3)
    d = build_discriminator(size, channels, width=0.0625, kernel_size=3)
    z = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    images = g(z, training=False)
    assert tuple(images.shape) == (2, size, size, channels)
    assert tuple(d(images, training=False).shape) == (2, 1)
    assert float(keras.ops.max(keras.ops.abs(images))) <= 1.0  # tanh output


def test_discriminator_layer_names_are_stable():
    d = build_discriminator(32, 1, width=0.125)
    names = [layer.name for layer in d.layers]
    assert names == ["gan_range_image", "block1_conv", "block1_lrelu", "block2_conv", "block2_bn",
                     "block2_lrelu", "block3_conv", "block3_bn", "block3_lrelu", "head_flatten",
                     "head_dense"]


def test_paper_rules():
    d = build_discriminator(32, 1, width=0.125)
    g = build_generator(32, 1, width=0.125)
    # Strided convolutions, no pooling; no BatchNorm on D's input block or G's output.
    assert not any("pool" in layer.name for layer in d.layers + g.layers)
    assert all(layer.strides == (2, 2) for layer in d.layers if isinstance(layer, keras.layers.Conv2D))
    assert "block1_bn" not in [layer.name for layer in d.layers]
    assert isinstance(g.layers[-2], keras.layers.Conv2DTranspose)
    assert g.layers[-1].get_config()["activation"] == "tanh"
    assert d.get_layer("block1_lrelu").negative_slope == pytest.approx(0.2)
    assert all(isinstance(layer, keras.layers.ReLU) for layer in g.layers if "relu" in layer.name)
    kernel = d.get_layer("block2_conv").kernel.numpy()
    assert abs(kernel.mean()) < 0.005 and 0.015 < kernel.std() < 0.025  # N(0, 0.02)


def test_width_multiplier_and_filters():
    assert block_filters(3) == [64, 128, 256]
    d = build_discriminator(32, 3, width=0.25)
    assert [d.get_layer(f"block{i}_conv").filters for i in (1, 2, 3)] == [16, 32, 64]
    g = build_generator(32, 3, width=0.25, latent_dim=10)
    assert g.get_layer("project_reshape").output.shape[1:] == (4, 4, 64)


@pytest.mark.parametrize("size", [30, 48, 7])
def test_unsupported_sizes_are_rejected(size):
    with pytest.raises(ConfigError, match=f"image_size: received {size}"):
        spatial_plan(size)


def test_keras_round_trip(tmp_path):
    d = build_discriminator(28, 1, width=0.125)
    g = build_generator(28, 1, latent_dim=4, width=0.125)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 28, 28, 1)).astype("float32")
    z = np.random.default_rng(2).normal(size=(2, 4)).astype("float32")
    d.save(tmp_path / "d.keras")
    g.save(tmp_path / "g.keras")
    d2 = keras.saving.load_model(tmp_path / "d.keras")
    g2 = keras.saving.load_model(tmp_path / "g.keras")
    np.testing.assert_allclose(d2(x, training=False), d(x, training=False), atol=1e-6)
    np.testing.assert_allclose(g2(z, training=False), g(z, training=False), atol=1e-6)


def test_input_range_is_declared_not_guessed_from_a_shared_name():
    import keras
    from keras import layers

    from gantransfer.gan.models import discriminator_blocks, input_range
    from gantransfer.transfer_learning.backbones import build_backbone

    assert input_range(build_discriminator(32, 1, width=0.125)) == (-1.0, 1.0)
    # An ImageNet backbone's input is also called "image"; it takes [0, 255] pixels.
    backbone = build_backbone("mobilenet", image_size=32, channels=1, weights="none", alpha=0.25,
                              input_size=32)
    assert backbone.layers[0].name == "image" and input_range(backbone) == (0.0, 255.0)
    # A discriminator saved by gantransfer 0.1 (input "image") is still known for what it is.
    inputs = keras.Input((32, 32, 1), name="image")
    x = layers.Flatten(name="head_flatten")(discriminator_blocks(inputs, 3, width=0.125))
    legacy = keras.Model(inputs, layers.Dense(1, name="head_dense")(x))
    assert input_range(legacy) == (-1.0, 1.0)
