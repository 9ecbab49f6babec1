"""DCGAN generator and discriminator builders (Radford et al. 2015).

The architecture follows the paper's guidelines: strided convolutions instead of pooling in the
discriminator, fractionally-strided (transposed) convolutions in the generator, BatchNorm everywhere
except the generator's output and the discriminator's input, ReLU in the generator with a tanh output,
LeakyReLU(0.2) in the discriminator, and every weight drawn from N(0, 0.02).

The discriminator's layers carry stable names (``block1_conv``, ``block2_conv``, ``block2_bn``, ...,
``head_dense``) so that a classifier can later take the trunk's weights by name. Its output is a
real/fake *logit*; losses apply the sigmoid, which is numerically safer than a sigmoid layer.
"""

from __future__ import annotations

import keras
from keras import layers

from gantransfer import backend
from gantransfer.data.transforms import GAN_RANGE, PIXEL_RANGE
from gantransfer.errors import ConfigError
from gantransfer.shapes import check_image_size

BASE_FILTERS = 64
BATCHNORM_MOMENTUM = 0.9  # PyTorch's 0.1 in Keras terms: the DCGAN reference setting.
BATCHNORM_EPSILON = 1e-5


# The discriminator is the one network that takes images in the GAN's range; every other model the
# toolkit builds (trunks, classifiers, probes, backbones) takes [0, 255] pixels. Its input layer's
# name declares that, and :func:`input_range` reads it.
DISCRIMINATOR_INPUT = "gan_range_image"


def _weight_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _gamma_init() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(mean=1.0, stddev=0.02)


def _batchnorm(name: str) -> layers.BatchNormalization:
    # Across replicas, the statistics of the global batch, as on one device (batchnorm_options).
    return layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, epsilon=BATCHNORM_EPSILON,
                                     gamma_initializer=_gamma_init(), name=name,
                                     **backend.batchnorm_options())


def spatial_plan(image_size: int) -> tuple[int, int]:
    """Returns ``(start_size, num_blocks)``: the smallest feature map and the stride-2 blocks to it.

    Powers of two shrink to 4x4 (32 -> 16 -> 8 -> 4: three blocks); 28 = 7 * 4 shrinks to 7x7.

    Raises:
        ConfigError: If ``image_size`` is not one the blocks can build
            (:func:`~gantransfer.shapes.check_image_size`).

    Example:
        >>> spatial_plan(32), spatial_plan(28), spatial_plan(64)
        ((4, 3), (7, 2), (4, 4))
    """
    size = check_image_size(image_size)
    start = 7 if size % 7 == 0 else 4
    return start, (size // start).bit_length() - 1  # size = start * 2**blocks


def block_filters(num_blocks: int, width: float = 1.0) -> list[int]:
    """Filters of the discriminator's blocks: ``64 * width`` doubling per block (64-128-256...).

    Example:
        >>> block_filters(3), block_filters(2, width=0.125)
        ([64, 128, 256], [8, 16])
    """
    base = max(1, int(round(BASE_FILTERS * width)))
    return [base * 2**i for i in range(num_blocks)]


def discriminator_blocks(x, num_blocks: int, *, width: float = 1.0, kernel_size: int = 5,
                         leaky_relu_slope: float = 0.2, dropout: float = 0.0, l2: float = 0.0):
    """Applies the discriminator's conv blocks to a tensor; shared by the GAN and its transfer trunk.

    Block ``i`` is ``block{i}_conv`` (stride 2, 'same', no bias), ``block{i}_bn`` (not in block 1,
    the input block) and ``block{i}_lrelu``; with ``dropout``, ``block{i}_dropout`` (spatial: whole
    feature maps) follows it, and ``l2`` puts weight decay on every conv kernel. Neither has
    weights, so a trunk with them still takes a plain discriminator's weights by layer name.
    """
    regularizer = keras.regularizers.L2(l2) if l2 else None
    for i, filters in enumerate(block_filters(num_blocks, width), start=1):
        x = layers.Conv2D(filters, kernel_size, strides=2, padding="same", use_bias=False,
                          kernel_initializer=_weight_init(), kernel_regularizer=regularizer,
                          name=f"block{i}_conv")(x)
        if i > 1:
            x = _batchnorm(f"block{i}_bn")(x)
        x = layers.LeakyReLU(negative_slope=leaky_relu_slope, name=f"block{i}_lrelu")(x)
        if dropout:
            x = layers.SpatialDropout2D(dropout, name=f"block{i}_dropout")(x)
    return x


def build_discriminator(image_size: int = 32, channels: int = 1, *, width: float = 1.0,
                        kernel_size: int = 5, leaky_relu_slope: float = 0.2,
                        name: str = "discriminator") -> keras.Model:
    """Builds the DCGAN discriminator: strided conv blocks, then a real/fake logit.

    Block ``i`` is ``block{i}_conv`` (stride 2, 'same'), ``block{i}_bn`` (not in block 1, the input
    block) and ``block{i}_lrelu``. The head is ``head_flatten`` and ``head_dense`` (one logit).

    Args:
        image_size: Input side: 4 or 7 times a power of two, at least 8 (8, 14, 16, 28, 32, ...).
        channels: 1 (grey) or 3 (colour).
        width: Multiplier on the paper's 64 base filters; 0.125 gives a tiny test model.
        kernel_size: Convolution kernel size.
        leaky_relu_slope: LeakyReLU negative slope.
        name: Model name.

    Returns:
        A functional ``keras.Model`` mapping ``(batch, image_size, image_size, channels)`` images in
        [-1, 1] to ``(batch, 1)`` logits.

    Example:
        >>> d = build_discriminator(32, 1, width=0.125)
        >>> d.output_shape, [l.name for l in d.layers][1:4]
        ((None, 1), ['block1_conv', 'block1_lrelu', 'block2_conv'])
    """
    _, num_blocks = spatial_plan(image_size)
    _check_channels(channels)
    inputs = keras.Input(shape=(image_size, image_size, channels), name=DISCRIMINATOR_INPUT)
    x = discriminator_blocks(inputs, num_blocks, width=width, kernel_size=kernel_size,
                             leaky_relu_slope=leaky_relu_slope)
    x = layers.Flatten(name="head_flatten")(x)
    logits = layers.Dense(1, kernel_initializer=_weight_init(), name="head_dense",
                          dtype="float32")(x)  # float32 logits in every precision
    return keras.Model(inputs, logits, name=name)


def input_range(model: keras.Model) -> tuple[float, float]:
    """The value range a model takes its images in: the GAN's [-1, 1] for a discriminator, else [0, 255].

    A discriminator says so by its input layer's name, :data:`DISCRIMINATOR_INPUT`. Discriminators
    saved by gantransfer 0.1, whose input was called ``image`` (a name backbones use too), are known
    by their one-logit ``head_dense`` after ``block1_conv``.

    Example:
        >>> input_range(build_discriminator(32, 1, width=0.125))
        (-1.0, 1.0)
        >>> input_range(keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten()]))
        (0.0, 255.0)
    """
    names = [layer.name for layer in model.layers]
    if names and names[0] == DISCRIMINATOR_INPUT:
        return GAN_RANGE
    legacy = (names[:2] == ["image", "block1_conv"] and "head_dense" in names
              and tuple(model.output_shape) == (None, 1))
    return GAN_RANGE if legacy else PIXEL_RANGE


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ConfigError(f"channels: received {channels}, expected 1 or 3")


def build_generator(image_size: int = 32, channels: int = 1, *, latent_dim: int = 100,
                    width: float = 1.0, kernel_size: int = 5, name: str = "generator") -> keras.Model:
    """Builds the DCGAN generator: project z, then transposed-conv blocks up to the image, tanh out.

    Layers: ``project_dense``/``project_bn``/``project_relu``/``project_reshape`` make a
    ``start x start`` map with the widest filters; ``up{i}_convt``/``up{i}_bn``/``up{i}_relu`` double
    it; ``output_convt`` (no BatchNorm) and ``output_tanh`` give the image in [-1, 1].

    Args:
        image_size: Output side: 4 or 7 times a power of two, at least 8 (8, 14, 16, 28, 32, ...).
        channels: 1 or 3 output channels.
        latent_dim: Length of the noise vector z.
        width: Multiplier on the base filters, mirroring the discriminator.
        kernel_size: Transposed-convolution kernel size.
        name: Model name.

    Returns:
        A functional ``keras.Model`` mapping ``(batch, latent_dim)`` noise to images.

    Example:
        >>> g = build_generator(28, 1, latent_dim=16, width=0.125)
        >>> g.output_shape
        (None, 28, 28, 1)
    """
    start, num_blocks = spatial_plan(image_size)
    _check_channels(channels)
    filters = block_filters(num_blocks, width)[::-1]  # widest first, mirroring D
    inputs = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(start * start * filters[0], use_bias=False, kernel_initializer=_weight_init(),
                     name="project_dense")(inputs)
    x = _batchnorm("project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    x = layers.Reshape((start, start, filters[0]), name="project_reshape")(x)
    for i, width_i in enumerate(filters[1:], start=1):
        x = layers.Conv2DTranspose(width_i, kernel_size, strides=2, padding="same", use_bias=False,
                                   kernel_initializer=_weight_init(), name=f"up{i}_convt")(x)
        x = _batchnorm(f"up{i}_bn")(x)
        x = layers.ReLU(name=f"up{i}_relu")(x)
    x = layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                               kernel_initializer=_weight_init(), name="output_convt")(x)
    outputs = layers.Activation("tanh", name="output_tanh", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
