"""The DCGAN paper's linear-probe protocol, and linear classifiers on any features.

Radford et al. evaluate a discriminator by max-pooling every conv layer's features to a 4x4 grid,
concatenating them, and training a regularised linear classifier (an L2-SVM) on top. The same probe
runs on a randomly initialised trunk (``random-linear-probe``) and on raw pixels
(``pixels-linear``), so a report can show what GAN training adds beyond the architecture.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

PROBES = ("logistic", "svm")


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


@keras.saving.register_keras_serializable(package="gantransfer")
class GridMaxPooling(layers.Layer):
    """Max-pools a feature map to ``grid x grid`` with the windows of :func:`adaptive_max_pool`.

    Args:
        grid: Side of the pooled grid.
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


def conv_feature_layers(trunk: keras.Model) -> list[str]:
    """Names of the trunk's per-block activations (``block{i}_lrelu``), in order."""
    return [layer.name for layer in trunk.layers if layer.name.endswith("_lrelu")]


def probe_features(trunk: keras.Model, images: np.ndarray, batch_size: int = 256,
                   grid: int = 4) -> np.ndarray:
    """Every conv block's features, max-pooled to ``grid x grid`` and concatenated, per image.

    Args:
        trunk: A GAN trunk (raw pixels in [0, 255] in).
        images: ``(N, H, W, C)`` pixels.
        batch_size: Images per forward pass.
        grid: Pooled grid side (the paper's 4).

    Returns:
        ``(N, D)`` float32 features.
    """
    names = conv_feature_layers(trunk)
    extractor = keras.Model(trunk.input, [trunk.get_layer(n).output for n in names])
    parts = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], dtype="float32")
        outputs = extractor(batch, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        pooled = [adaptive_max_pool(keras.ops.convert_to_numpy(o), grid).reshape(len(batch), -1)
                  for o in outputs]
        parts.append(np.concatenate(pooled, axis=1))
    return np.concatenate(parts, axis=0).astype("float32")


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Raw pixels scaled to [0, 1] and flattened: the no-features baseline."""
    return (np.asarray(images, dtype="float32") / 255.0).reshape(len(images), -1)


def make_probe(kind: str, C: float, seed: int) -> Pipeline:
    """A standardising pipeline around an L2-regularised linear classifier.

    Args:
        kind: "logistic" (multinomial logistic regression) or "svm" (L2-SVM, the paper's).
        C: Inverse regularisation strength.
        seed: Seed of the solver.
    """
    if kind == "logistic":
        classifier = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    elif kind == "svm":
        classifier = LinearSVC(C=C, max_iter=5000, random_state=seed)
    else:
        raise ValueError(f"probe: received {kind!r}, expected one of {', '.join(PROBES)}")
    return make_pipeline(StandardScaler(), classifier)


@dataclass
class ProbeOutcome:
    """The probe a validation-selected fit kept."""

    model: Pipeline
    C: float
    val_accuracy: float
    wall_time_s: float


def fit_probe(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
              kind: str = "logistic", Cs: list[float] | tuple[float, ...] = (0.001, 0.01, 0.1, 1.0),
              seed: int = 0) -> ProbeOutcome:
    """Fits one probe per ``C`` on the training features and keeps the best on validation.

    Ties go to the stronger regularisation (smaller C), which generalises better from few labels.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 5)); y = (x[:, 0] > 0).astype(int)
        >>> fit_probe((x[:30], y[:30]), (x[30:], y[30:]), Cs=[0.1, 1.0]).val_accuracy > 0.8
        True
    """
    started = time.perf_counter()
    best: ProbeOutcome | None = None
    for C in sorted(Cs):
        model = make_probe(kind, C, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(train[0], train[1])
        accuracy = float(np.mean(model.predict(val[0]) == val[1]))
        if best is None or accuracy > best.val_accuracy:
            best = ProbeOutcome(model=model, C=float(C), val_accuracy=accuracy, wall_time_s=0.0)
    assert best is not None, "Cs must not be empty"
    best.wall_time_s = time.perf_counter() - started
    return best


def probe_as_keras(probe: Pipeline, input_shape: tuple[int, ...], num_classes: int,
                   trunk: keras.Model | None = None, grid: int = 4,
                   name: str = "linear_probe") -> keras.Model:
    """The fitted probe as one Keras model from pixels to class scores, to save as ``.keras``.

    The trunk's per-block features are pooled by :class:`GridMaxPooling` and concatenated (or, with
    no trunk, the pixels are scaled and flattened), standardised with the fitted scaler's statistics,
    and mapped by a ``Dense`` layer holding the linear classifier's weights. Its arg-max equals the
    pipeline's predictions.

    Args:
        probe: A fitted pipeline from :func:`make_probe`.
        input_shape: ``(H, W, C)`` of the pixels.
        num_classes: Number of classes.
        trunk: The trunk the probe's features came from, or None for raw pixels.
        grid: The pooled grid side used for the features.
        name: Model name.

    Returns:
        A ``keras.Model``.
    """
    scaler, linear = probe[0], probe[-1]
    inputs = keras.Input(input_shape, name="pixels")
    if trunk is None:
        x = layers.Flatten(name="flatten")(layers.Rescaling(1 / 255.0, name="to_unit")(inputs))
    else:
        names = conv_feature_layers(trunk)
        extractor = keras.Model(trunk.input, [trunk.get_layer(n).output for n in names],
                                name=f"{trunk.name}_features")
        outputs = extractor(inputs, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        pooled = [layers.Flatten(name=f"flatten_{n}")(GridMaxPooling(grid, name=f"pool_{n}")(o))
                  for n, o in zip(names, outputs)]
        x = layers.Concatenate(name="features")(pooled) if len(pooled) > 1 else pooled[0]
    # sklearn's scale_ is 1 where a feature never varied; Normalization's sqrt(variance) matches it.
    x = layers.Normalization(mean=scaler.mean_, variance=scaler.scale_**2, name="standardise")(x)
    coef, intercept = np.atleast_2d(linear.coef_), np.atleast_1d(linear.intercept_)
    if coef.shape[0] == 1 and num_classes == 2:  # binary: one score for class 1
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2,
                                                                                 intercept / 2])
    dense = layers.Dense(num_classes, name="probe_dense")
    outputs = dense(x)
    dense.set_weights([coef.T.astype("float32"), intercept.astype("float32")])
    return keras.Model(inputs, outputs, name=name)
