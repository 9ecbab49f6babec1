"""The DCGAN paper's linear-probe protocol, and linear classifiers on any features.

Radford et al. evaluate a discriminator by max-pooling every conv layer's features to a 4x4 grid,
concatenating them (:mod:`gantransfer.gan.features`), and training a regularised linear classifier
(an L2-SVM) on top. The same probe runs on a randomly initialised trunk (``random-linear-probe``)
and on raw pixels (``pixels-linear``), so a report can show what GAN training adds beyond the
architecture.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from gantransfer.evaluation.linear import PROBES, fit_quietly, make_probe, probe_grid  # noqa: F401

# The features live with the discriminator (gan.features), where the probe that watches GAN training
# reads them too; they are re-exported from here, where they have always been imported from.
from gantransfer.gan.features import (GridMaxPooling, _windows, adaptive_max_pool,  # noqa: F401
                                      conv_feature_layers, probe_features)

def pixel_features(images: np.ndarray) -> np.ndarray:
    """Raw pixels scaled to [0, 1] and flattened: the no-features baseline."""
    return (np.asarray(images, dtype="float32") / 255.0).reshape(len(images), -1)


@dataclass
class ProbeOutcome:
    """The probe a validation-selected fit kept."""

    model: Pipeline
    C: float
    val_accuracy: float
    wall_time_s: float
    folds: int = 0  # cross-validation folds that chose C (0: a validation split did)


def fit_probe(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
              kind: str = "logistic", Cs: list[float] | tuple[float, ...] = (0.001, 0.01, 0.1, 1.0),
              seed: int = 0) -> ProbeOutcome:
    """Fits one probe per ``C`` on the training features and keeps the best on validation.

    Ties go to the stronger regularisation (smaller C), which generalises better from few labels.
    The ``"paper"`` probe chooses among the paper's own C values (:func:`probe_grid`).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 5)); y = (x[:, 0] > 0).astype(int)
        >>> fit_probe((x[:30], y[:30]), (x[30:], y[30:]), Cs=[0.1, 1.0]).val_accuracy > 0.8
        True
    """
    started = time.perf_counter()
    best: ProbeOutcome | None = None
    for C in probe_grid(kind, Cs):
        model = fit_quietly(make_probe(kind, C, seed), *train)
        accuracy = float(np.mean(model.predict(val[0]) == val[1]))
        if best is None or accuracy > best.val_accuracy:
            best = ProbeOutcome(model=model, C=float(C), val_accuracy=accuracy, wall_time_s=0.0)
    assert best is not None, "Cs must not be empty"
    best.wall_time_s = time.perf_counter() - started
    return best


def fold_indices(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold ``(train, validation)`` index pairs over ``y``, shuffled by ``seed``.

    ``folds`` is capped at the smallest class's size, so every fold validates on every class.

    Example:
        >>> pairs = fold_indices(np.repeat([0, 1], 4), folds=5, seed=0)
        >>> len(pairs), sorted(np.concatenate([val for _, val in pairs]).tolist())
        (4, [0, 1, 2, 3, 4, 5, 6, 7])
    """
    smallest = int(min(c for c in np.bincount(np.asarray(y)) if c > 0))
    splitter = StratifiedKFold(n_splits=max(2, min(folds, smallest)), shuffle=True,
                               random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def fit_probe_cv(data: tuple[np.ndarray, np.ndarray], *, kind: str = "logistic",
                 Cs: list[float] | tuple[float, ...] = (0.001, 0.01, 0.1, 1.0), folds: int = 5,
                 seed: int = 0) -> ProbeOutcome:
    """Chooses ``C`` by stratified k-fold cross-validation over ``data``, then fits on all of it.

    Each fold's standardisation is fitted on that fold's training part only (the scaler is inside
    the cross-validated pipeline). Ties go to the smaller C, as in :func:`fit_probe`.

    Args:
        data: ``(features, labels)``: the whole label budget, never test images.
        kind: ``logistic`` or ``svm``.
        Cs: Inverse regularisation strengths to try.
        folds: Number of folds (capped at the smallest class's size).
        seed: Seed of the folds and the solver.

    Returns:
        A :class:`ProbeOutcome` whose ``val_accuracy`` is the chosen C's mean fold accuracy.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 5)); y = (x[:, 0] > 0).astype(int)
        >>> fit_probe_cv((x, y), Cs=[0.1, 1.0], folds=4).val_accuracy > 0.8
        True
    """
    started = time.perf_counter()
    x, y = data
    grid = probe_grid(kind, Cs)
    pipeline = make_probe(kind, grid[0], seed)
    step = pipeline.steps[-1][0]
    pairs = fold_indices(y, folds, seed)
    search = GridSearchCV(pipeline, {f"{step}__C": list(grid)}, cv=pairs, scoring="accuracy",
                          refit=True)
    fit_quietly(search, x, y)
    return ProbeOutcome(model=search.best_estimator_, C=float(search.best_params_[f"{step}__C"]),
                        val_accuracy=float(search.best_score_),
                        wall_time_s=time.perf_counter() - started, folds=len(pairs))


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
    width = len(linear.coef_[0]) if np.ndim(linear.coef_) == 2 else len(linear.coef_)
    mean = np.zeros(width) if scaler.mean_ is None else scaler.mean_  # None: not standardised
    scale = np.ones(width) if scaler.scale_ is None else scaler.scale_
    # The linear part is float32 in every precision: the same numbers as scikit-learn's.
    x = layers.Normalization(mean=mean, variance=scale**2, name="standardise", dtype="float32")(x)
    coef, intercept = np.atleast_2d(linear.coef_), np.atleast_1d(linear.intercept_)
    if coef.shape[0] == 1 and num_classes == 2:  # binary: one score for class 1
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2,
                                                                                 intercept / 2])
    dense = layers.Dense(num_classes, name="probe_dense", dtype="float32")
    outputs = dense(x)
    dense.set_weights([coef.T.astype("float32"), intercept.astype("float32")])
    return keras.Model(inputs, outputs, name=name)
