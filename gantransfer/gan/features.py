"""The discriminator's features as the DCGAN paper reads them, and BatchNorm re-estimation.

Radford et al. score a discriminator by max-pooling every conv block's activation to a 4x4 grid and
concatenating the grids. These pieces live in the GAN layer, below transfer learning, so that both
the linear-probe strategies (:mod:`gantransfer.transfer_learning.probe`, which re-exports them) and
the probe that watches GAN training (:mod:`gantransfer.gan.probe`) compute the very same features.

They work on any model with the discriminator's ``block{i}_lrelu`` layers: a discriminator (images
in [-1, 1]) or a transfer trunk (pixels in [0, 255]); the images go in the model's own range.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


def adaptive_max_pool(features: np.ndarray, grid: int = 4) -> np.ndarray:
    """Max-pools ``(N, H, W, C)`` maps to ``(N, grid, grid, C)`` with adaptive windows.

    Window ``i`` spans rows ``floor(i*H/grid)`` to ``ceil((i+1)*H/grid)``, as PyTorch's adaptive
    pooling does, so 7x7 maps pool to 4x4 with overlapping windows and 2x2 maps repeat values.

    Example:
        >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
        >>> adaptive_max_pool(x, 2)[0, :, :, 0]
        array([[ 5.,  7.],
               [13., 15.]], dtype=float32)
    """
    _, height, width, _ = features.shape
    rows, cols = _windows(height, grid), _windows(width, grid)
    pooled = np.empty((features.shape[0], grid, grid, features.shape[-1]), features.dtype)
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            pooled[:, i, j] = features[:, r0:r1, c0:c1].max(axis=(1, 2))
    return pooled


def _windows(size: int, grid: int) -> list[tuple[int, int]]:
    return [(i * size // grid, -(-(i + 1) * size // grid)) for i in range(grid)]


# The registered name ("gantransfer>GridMaxPooling") is what saved .keras files refer to; it must not
# change. Files saved before this layer moved here name the old module too, which still re-exports it.
@keras.saving.register_keras_serializable(package="gantransfer")
class GridMaxPooling(layers.Layer):
    """Max-pools a feature map to ``grid x grid`` with the windows of :func:`adaptive_max_pool`.

    Args:
        grid: Side of the pooled grid.

    Example:
        >>> tuple(GridMaxPooling(4)(np.zeros((2, 7, 7, 3), "float32")).shape)
        (2, 4, 4, 3)
    """

    def __init__(self, grid: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.grid = grid

    def call(self, x):
        rows = []
        for r0, r1 in _windows(x.shape[1], self.grid):
            cells = [ops.max(x[:, r0:r1, c0:c1, :], axis=(1, 2))
                     for c0, c1 in _windows(x.shape[2], self.grid)]
            rows.append(ops.stack(cells, axis=1))
        return ops.stack(rows, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.grid, self.grid, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "grid": self.grid}


def conv_feature_layers(model: keras.Model) -> list[str]:
    """Names of the model's per-block activations (``block{i}_lrelu``), in order.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> conv_feature_layers(build_discriminator(32, 1, width=0.125))
        ['block1_lrelu', 'block2_lrelu', 'block3_lrelu']
    """
    return [layer.name for layer in model.layers if layer.name.endswith("_lrelu")]


def probe_features(trunk: keras.Model, images: np.ndarray, batch_size: int = 256,
                   grid: int = 4, dtype: str = "float32") -> np.ndarray:
    """Every conv block's features, max-pooled to ``grid x grid`` and concatenated, per image.

    The model runs in inference mode: BatchNorm uses its moving statistics.

    Args:
        trunk: A GAN trunk (pixels in [0, 255] in) or a discriminator (images in [-1, 1] in).
        images: ``(N, H, W, C)`` images in the model's input range.
        batch_size: Images per forward pass.
        grid: Pooled grid side (the paper's 4).
        dtype: How the features are stored: ``"float32"``, or ``"float16"`` in half the memory
            (each batch is computed in float32, then rounded into place).

    Returns:
        ``(N, D)`` features of ``dtype``.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> d = build_discriminator(32, 1, width=0.125)
        >>> probe_features(d, np.zeros((2, 32, 32, 1), "float32")).shape  # 16 cells * (8+16+32)
        (2, 896)
    """
    names = conv_feature_layers(trunk)
    extractor = keras.Model(trunk.input, [trunk.get_layer(n).output for n in names])
    features = np.empty((len(images), probe_width(trunk, grid)), dtype)  # filled in place
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], dtype="float32")
        outputs = extractor(batch, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        pooled = [adaptive_max_pool(keras.ops.convert_to_numpy(o), grid).reshape(len(batch), -1)
                  for o in outputs]
        features[start:start + len(batch)] = np.concatenate(pooled, axis=1)
    return features


def probe_width(trunk: keras.Model, grid: int = 4) -> int:
    """How many features :func:`probe_features` gives per image: every conv block's channels, once
    per cell of the ``grid x grid`` pooling.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> probe_width(build_discriminator(32, 1, width=0.125))  # 16 cells * (8+16+32)
        896
    """
    return grid * grid * sum(int(trunk.get_layer(n).output.shape[-1])
                             for n in conv_feature_layers(trunk))


def reestimate_batchnorm(trunk: keras.Model, images: np.ndarray, batch_size: int = 256) -> int:
    """Sets every BatchNorm layer's moving mean and variance to the statistics of ``images``.

    Layers are visited in order, each with the ones before it already updated, and each gets the
    exact mean and (biased) variance of its inputs over all images and positions, as if its
    momentum were 0 over one pass. The result does not depend on batch size or order.

    A GAN's discriminator accumulated its moving statistics partly on generated images; before its
    features are read in inference mode, this gives them the statistics of real ones.

    Args:
        trunk: A trunk (pixels in [0, 255] in) or a discriminator (images in [-1, 1] in).
        images: ``(N, H, W, C)`` images in the model's input range.
        batch_size: Images per forward pass.

    Returns:
        The number of BatchNorm layers updated.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> d = build_discriminator(32, 1, width=0.125)
        >>> reestimate_batchnorm(d, np.random.default_rng(0).uniform(-1, 1, (20, 32, 32, 1)))
        2
    """
    count = 0
    for layer in trunk.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        probe = keras.Model(trunk.input, layer.input)
        total = total_sq = None
        n = 0
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[start:start + batch_size], dtype="float32")
            values = keras.ops.convert_to_numpy(probe(batch, training=False)).astype("float64")
            flat = values.reshape(-1, values.shape[-1])
            total = flat.sum(0) if total is None else total + flat.sum(0)
            total_sq = (flat**2).sum(0) if total_sq is None else total_sq + (flat**2).sum(0)
            n += flat.shape[0]
        mean = total / n
        variance = np.maximum(total_sq / n - mean**2, 0.0)
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(variance.astype("float32"))
        count += 1
    return count
