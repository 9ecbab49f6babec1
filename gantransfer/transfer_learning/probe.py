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
from typing import Callable

import keras
import numpy as np
from keras import layers
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline

from gantransfer.data.transforms import shift_images
from gantransfer.evaluation.linear import (PROBES, SOLVERS, dense_weights,  # noqa: F401
                                           fit_quietly, fit_scaler, make_classifier, make_probe,
                                           probe_grid, resolve_solver, standardise)

# The features live with the discriminator (gan.features), where the probe that watches GAN training
# reads them too; they are re-exported from here, where they have always been imported from.
from gantransfer.gan.features import (GridMaxPooling, _windows, adaptive_max_pool,  # noqa: F401
                                      conv_feature_layers, probe_features, probe_width)

def pixel_features(images: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Raw pixels scaled to [0, 1] and flattened, stored as ``dtype``: the no-features baseline."""
    scaled = (np.asarray(images, dtype="float32") / 255.0).reshape(len(images), -1)
    return scaled.astype(dtype, copy=False)


@dataclass
class ProbeOutcome:
    """The probe a validation-selected fit kept.

    Attributes:
        grid_note: Said when the chosen C lay at an end of its grid: how far the grid was extended,
            and whether the choice still lies at the end; None otherwise.
    """

    model: Pipeline
    C: float
    val_accuracy: float
    wall_time_s: float
    folds: int = 0  # cross-validation folds that chose C (0: a validation split did)
    grid_note: str | None = None
    solver: str = "scikit-learn"  # how the logistic probes were solved (resolve_solver)
    chosen_on: int = 0  # training images of the subset C was chosen on (0: all of them)
    held_out: int = 0  # images of the budget held out to choose C, then refitted on (0: none)


# How many decades a C grid is extended beyond an end its choice lies at.
GRID_EXTENSION_DECADES = 3


def choose_C(grid: tuple[float, ...], score: Callable[[float], float], *,
             extend: bool = True) -> tuple[float, dict[float, float], str | None]:
    """The C that ``score`` rates best (ties to the smaller C), the scores of every C tried, and a
    note when the choice lies at an end of ``grid``.

    A choice at an end of its grid means the best value may lie beyond it. With ``extend``, the
    grid grows a decade at a time past that end, for at most :data:`GRID_EXTENSION_DECADES`, while
    each new value scores strictly better than the choice so far.

    Example: the best C is 1e-4, below a grid that starts at 1e-2
        >>> C, scores, note = choose_C((0.01, 0.1, 1.0), lambda C: -abs(np.log10(C) + 4))
        >>> C, sorted(scores)[:3]
        (0.0001, [1e-05, 0.0001, 0.001])
        >>> note
        'C at the low end of its grid (0.01): extended down, the choice settled at 0.0001'
    """
    scores = {float(C): float(score(C)) for C in grid}
    chosen = max(sorted(scores), key=lambda C: scores[C])  # the first, smallest, of the ties
    end = min(grid) if chosen == min(grid) else max(grid) if chosen == max(grid) else None
    if end is None or len(grid) < 2:
        return chosen, scores, None
    side, step = ("low", -1) if end == min(grid) else ("high", 1)
    said = f"C at the {side} end of its grid ({end:g})"
    if not extend:
        return chosen, scores, f"{said}; the best C may lie beyond it"
    for _ in range(GRID_EXTENSION_DECADES):
        beyond = float(f"{chosen * 10.0**step:.12g}")  # 1e-05, not 1.0000000000000002e-05
        scores[beyond] = float(score(beyond))
        if scores[beyond] <= scores[chosen]:  # the choice settled
            if chosen == end:
                return chosen, scores, f"{said}: a decade beyond it ({beyond:g}) scored no better"
            return chosen, scores, (f"{said}: extended {'down' if step < 0 else 'up'}, the choice "
                                    f"settled at {chosen:g}")
        chosen = beyond
    return chosen, scores, (f"{said}: extended {GRID_EXTENSION_DECADES} decades "
                            f"{'down' if step < 0 else 'up'} to {chosen:g}, and the choice is still "
                            "at the end: the best C may lie further")


# From this many training images on, C is chosen on a stratified subset of this many, and only
# the chosen C is fitted on all of them, starting from the subset's solution: a grid of full fits
# is what made probes on every label take many minutes.
CHOOSE_ON_IMAGES = 12_000


def fit_probe(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
              kind: str = "logistic", Cs: list[float] | tuple[float, ...] = (0.001, 0.01, 0.1, 1.0),
              seed: int = 0, warm_start: bool = True, solver: str = "scikit-learn",
              choose_on: int = CHOOSE_ON_IMAGES,
              copies: tuple[np.ndarray, ...] = ()) -> ProbeOutcome:
    """Fits one probe per ``C`` on the training features and keeps the best on validation.

    Ties go to the stronger regularisation (smaller C), which generalises better from few labels.
    The ``"paper"`` probe chooses among the paper's own C values (:func:`probe_grid`). The features
    are standardised once (one copy of each part, in the features' own precision: float16 features
    stay float16), and every C's classifier fits on them.

    With ``warm_start`` (logistic probes), each C's solver starts from the solution of the nearest
    C fitted before it, the grid's smallest first: the same convex problem, solved from closer by
    (``benchmarks/bench_probe.py`` measures it against cold starts). ``solver`` is
    ``"scikit-learn"`` (L-BFGS), ``"keras"`` (:class:`KerasLogisticRegression`) or ``"auto"``
    (:func:`resolve_solver`: Keras from 10,000 training images of 2,048 features on). With more than ``choose_on``
    training images (0: never), C is chosen on a stratified subset of ``choose_on`` of them, and
    the chosen C alone is then fitted on all of them. ``copies`` are features of altered copies of
    the training images (:func:`shifted_copies`), row for row: they train beside the originals.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 5)); y = (x[:, 0] > 0).astype(int)
        >>> fit_probe((x[:30], y[:30]), (x[30:], y[30:]), Cs=[0.1, 1.0]).val_accuracy > 0.8
        True
        >>> fit_probe((x[:30], y[:30]), (x[30:], y[30:]), Cs=[0.1, 1.0], choose_on=20).chosen_on
        20
    """
    started = time.perf_counter()
    if copies:
        train = with_copies(train, copies)
    solver = resolve_solver(solver, kind, *np.shape(train[0]))
    scaler = fit_scaler(kind, train[0])
    # the paper's probe reads the raw features: no copy to make
    fit_x, val_x = ((train[0], val[0]) if kind == "paper" else
                    (standardise(scaler, train[0]), standardise(scaler, val[0])))
    fit_y = np.asarray(train[1])
    subset = (stratified_subset(fit_y, choose_on, seed) if 0 < choose_on < len(fit_y) else None)
    choose_x, choose_y = (fit_x, fit_y) if subset is None else (fit_x[subset], fit_y[subset])
    models: dict[float, object] = {}

    def accuracy(C: float) -> float:
        model = make_classifier(kind, C, seed, solver)
        if warm_start and kind == "logistic" and models:
            nearest = models[min(models, key=lambda c: abs(np.log(c / C)))]
            _start_from(model, nearest)
        models[C] = fit_quietly(model, choose_x, choose_y)
        return float(np.mean(models[C].predict(val_x) == val[1]))

    C, scores, note = choose_C(probe_grid(kind, Cs), accuracy, extend=kind != "paper")
    chosen = models[C]
    if subset is not None:  # the chosen C on every training image, from the subset's solution
        chosen = _refit(kind, C, seed, solver, models[C], fit_x, fit_y)
    return ProbeOutcome(model=make_pipeline(scaler, chosen), C=C, val_accuracy=scores[C],
                        wall_time_s=time.perf_counter() - started, grid_note=note, solver=solver,
                        chosen_on=0 if subset is None else len(subset))


def stratified_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` of ``y``'s rows, every class in its proportion.

    Example:
        >>> rows = stratified_subset(np.repeat([0, 1], [80, 20]), 10, seed=0)
        >>> len(rows), int(np.sum(rows >= 80))
        (10, 2)
    """
    rows, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=seed)
    return np.sort(rows)


# Epochs of the Keras solver's refit on every image, started from the solution on a subset at the
# same C: on 48,000 Fashion-MNIST random-trunk features, 5 scored as 10 did (validation 90.62%
# and 90.67%).
KERAS_REFIT_EPOCHS = 5


def _refit(kind: str, C: float, seed: int, solver: str, start: object, x: np.ndarray,
           y: np.ndarray) -> object:
    """The classifier of C fitted on ``x``, starting (logistic probes) from ``start``'s solution."""
    model = make_classifier(kind, C, seed, solver)
    if kind == "logistic":
        _start_from(model, start)
        if solver == "keras":
            model.set_params(epochs=KERAS_REFIT_EPOCHS)
    return fit_quietly(model, x, y)


def refit_probe(chosen: ProbeOutcome, data: tuple[np.ndarray, np.ndarray], *, kind: str,
                seed: int, solver: str, copies: tuple[np.ndarray, ...] = ()) -> Pipeline:
    """The probe of ``chosen``'s C fitted on all of ``data`` (and its ``copies``), its scaler too,
    starting (logistic probes) from ``chosen``'s solution.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 5)); y = (x[:, 0] > 0).astype(int)
        >>> chosen = fit_probe((x[:30], y[:30]), (x[30:], y[30:]), Cs=[1.0])
        >>> int(refit_probe(chosen, (x, y), kind="logistic", seed=0, solver="scikit-learn")[0]
        ...     .n_samples_seen_)
        40
    """
    every_x, every_y = with_copies(data, copies)
    scaler = fit_scaler(kind, every_x)
    final = _refit(kind, chosen.C, seed, solver, chosen.model[-1],
                   every_x if kind == "paper" else standardise(scaler, every_x), every_y)
    return make_pipeline(scaler, final)


def _start_from(model: object, fitted: object) -> None:
    """Makes a logistic classifier's next fit start from another's solution (a warm start)."""
    model.set_params(warm_start=True)  # type: ignore[attr-defined]
    model.coef_ = fitted.coef_.copy()  # type: ignore[attr-defined]
    model.intercept_ = fitted.intercept_.copy()  # type: ignore[attr-defined]


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


# From this many images on, fit_probe_cv chooses C on one stratified held-out fold instead of all
# k: thousands of held-out images decide as well as k folds would, at a fraction of the cost.
HELD_OUT_FROM_IMAGES = 10_000


def fit_probe_cv(data: tuple[np.ndarray, np.ndarray], *, kind: str = "logistic",
                 Cs: list[float] | tuple[float, ...] = (0.001, 0.01, 0.1, 1.0), folds: int = 5,
                 seed: int = 0, solver: str = "scikit-learn",
                 held_out_from: int | None = None,
                 choose_on: int = CHOOSE_ON_IMAGES,
                 copies: tuple[np.ndarray, ...] = ()) -> ProbeOutcome:
    """Chooses ``C`` by stratified k-fold cross-validation over ``data``, then fits on all of it.

    Each fold's standardisation is fitted on that fold's training part only (the scaler is inside
    the cross-validated pipeline). Ties go to the smaller C, as in :func:`fit_probe`. From
    ``held_out_from`` images on, one stratified fold is held out instead, C is chosen on it
    (:func:`fit_probe`, on at most ``choose_on`` of the other folds' images), and the refit on all
    of ``data`` starts from that C's solution.

    Args:
        data: ``(features, labels)``: the whole label budget, never test images.
        kind: ``logistic`` or ``svm``.
        Cs: Inverse regularisation strengths to try.
        folds: Number of folds (capped at the smallest class's size).
        seed: Seed of the folds and the solver.
        solver: How logistic probes are solved (:func:`fit_probe`).
        held_out_from: Budget size from which one held-out fold chooses C (None:
            :data:`HELD_OUT_FROM_IMAGES`).
        choose_on: At most this many images fit while C is chosen on the held-out fold.
        copies: Features of altered copies of ``data``'s images, row for row
            (:func:`shifted_copies`). They train beside their originals, in the folds that train on
            those originals only: a fold never validates on an image whose copy it trained on.

    Returns:
        A :class:`ProbeOutcome` whose ``val_accuracy`` is the chosen C's mean fold accuracy (or its
        accuracy on the held-out fold).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(40, 5)); y = (x[:, 0] > 0).astype(int)
        >>> fit_probe_cv((x, y), Cs=[0.1, 1.0], folds=4).val_accuracy > 0.8
        True
        >>> fit_probe_cv((x, y), Cs=[0.1, 1.0], folds=4, held_out_from=40).held_out
        10
    """
    started = time.perf_counter()
    x, y = data
    pairs = fold_indices(y, folds, seed)
    solver = resolve_solver(solver, kind, *np.shape(x))
    if len(x) >= (HELD_OUT_FROM_IMAGES if held_out_from is None else held_out_from):
        fit_rows, val_rows = pairs[0]
        if 0 < choose_on < len(fit_rows):  # C chosen on a subset; the refit below fits all
            fit_rows = fit_rows[stratified_subset(y[fit_rows], choose_on, seed)]
        chosen = fit_probe((x[fit_rows], y[fit_rows]), (x[val_rows], y[val_rows]), kind=kind,
                           Cs=Cs, seed=seed, solver=solver, choose_on=0,
                           copies=tuple(c[fit_rows] for c in copies))
        return ProbeOutcome(model=refit_probe(chosen, data, kind=kind, seed=seed, solver=solver,
                                              copies=copies), C=chosen.C,
                            val_accuracy=chosen.val_accuracy,
                            wall_time_s=time.perf_counter() - started, grid_note=chosen.grid_note,
                            solver=solver, held_out=len(val_rows), chosen_on=len(fit_rows))

    def mean_fold_accuracy(C: float) -> float:
        def fold(rows: np.ndarray, held_out: np.ndarray) -> float:
            model = fit_quietly(make_probe(kind, C, seed, solver), *with_copies(data, copies, rows))
            return float(np.mean(model.predict(x[held_out]) == y[held_out]))

        return float(np.mean([fold(rows, held_out) for rows, held_out in pairs]))

    C, scores, note = choose_C(probe_grid(kind, Cs), mean_fold_accuracy, extend=kind != "paper")
    model = fit_quietly(make_probe(kind, C, seed, solver), *with_copies(data, copies))
    return ProbeOutcome(model=model, C=C, val_accuracy=scores[C],
                        wall_time_s=time.perf_counter() - started, folds=len(pairs),
                        grid_note=note, solver=solver)


# The probe's augmentation (transfer.probe_shift): each labeled image's features are also taken from
# copies moved each of these ways (down, up, right, left) by every distance from one pixel up to the
# shift. On Fashion-MNIST (5 seeds, paired), one pixel raised gan-linear-probe's test accuracy by 0.8
# points at 10 and at 100 labels per class, the random trunk's by 0.4 and 1.2, the pixels' by 1.4
# and 0.1 (benchmarks/bench_care.py).
SHIFT_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1))
# Budgets up to this many images get shifted copies: few labels are where they help, and beyond,
# 1 + copy_count(shift) times the features cost minutes and gigabytes for little.
SHIFT_UP_TO_IMAGES = 2_500


def copy_count(shift: int) -> int:
    """How many moved copies of each image a shift of up to ``shift`` pixels gives: one per
    direction and distance.

    Example:
        >>> copy_count(0), copy_count(1), copy_count(2)
        (0, 4, 8)
    """
    return len(SHIFT_DIRECTIONS) * shift


def describe_copies(shift: int) -> str:
    """The moved copies of a shift of up to ``shift`` pixels, in words, for a result's notes.

    Example:
        >>> describe_copies(1)
        '4 copies of each labeled image moved 1 pixel down, up, right and left'
        >>> describe_copies(3)
        '12 copies of each labeled image moved 1, 2 and 3 pixels down, up, right and left'
    """
    distances = ("1 pixel" if shift == 1 else
                 f"{', '.join(str(d) for d in range(1, shift))} and {shift} pixels")
    return (f"{copy_count(shift)} copies of each labeled image moved {distances} down, up, right "
            "and left")


def shifted_copies(images: np.ndarray, shift: int,
                   features: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, ...]:
    """The features of ``images`` moved each way (:data:`SHIFT_DIRECTIONS`, the border repeated)
    by every distance from 1 to ``shift`` pixels: one array per direction and distance
    (:func:`copy_count`), row for row with ``images``; none for ``shift`` 0.

    Example:
        >>> x = np.arange(8, dtype="float32").reshape(2, 2, 2, 1)
        >>> [c.tolist() for c in shifted_copies(x, 1, lambda i: i.reshape(len(i), -1))][2]
        [[0.0, 0.0, 2.0, 2.0], [4.0, 4.0, 6.0, 6.0]]
        >>> x = np.arange(3, dtype="float32").reshape(1, 1, 3, 1)  # one row: 0, 1, 2
        >>> [c.ravel().tolist() for c in shifted_copies(x, 2, lambda i: i.reshape(len(i), -1))][2::4]
        [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    return tuple(features(shift_images(images, dy * distance, dx * distance))
                 for distance in range(1, shift + 1) for dy, dx in SHIFT_DIRECTIONS)


def with_copies(data: tuple[np.ndarray, np.ndarray], copies: tuple[np.ndarray, ...],
                rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``data``'s ``rows`` (None: all, not copied) and the same rows of every copy, stacked, with
    their labels.

    Example:
        >>> x, y = np.arange(3.0)[:, None], np.array([0, 1, 0])
        >>> with_copies((x, y), (x + 10,), np.array([0, 2]))[0].ravel().tolist()
        [0.0, 2.0, 10.0, 12.0]
    """
    x, y = data
    if rows is None:
        if not copies:
            return x, y
        rows = np.arange(len(x))
    if not copies:
        return x[rows], y[rows]
    return (np.concatenate([x[rows]] + [c[rows] for c in copies]),
            np.tile(y[rows], 1 + len(copies)))


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
    dense = layers.Dense(num_classes, name="probe_dense", dtype="float32")
    outputs = dense(x)
    dense.set_weights(dense_weights(linear.coef_, linear.intercept_, num_classes))
    return keras.Model(inputs, outputs, name=name)
