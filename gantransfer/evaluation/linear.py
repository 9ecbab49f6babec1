"""Linear classifiers on features, as the probes use them: one pipeline, fitted quietly and fast.

Both the probe that watches GAN training (:mod:`gantransfer.gan.probe`) and the linear-probe
strategies (:mod:`gantransfer.transfer_learning.probe`) fit :func:`make_probe` pipelines with
:func:`fit_quietly`.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 4)); y = (x[:, 0] > 0).astype(int)
    >>> model = fit_quietly(make_probe("logistic", 1.0, seed=0), x[:40], y[:40])
    >>> float(np.mean(model.predict(x[40:]) == y[40:])) > 0.8
    True
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import keras
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

PROBES = ("logistic", "svm", "paper")
# The C grid of the DCGAN authors' probe (Newmu/dcgan_code, svhn/svhn_semisup_analysis.py): an
# L2-SVM on the raw pooled features, C chosen among these on validation.
PAPER_CS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01)


def probe_grid(kind: str, Cs: list[float] | tuple[float, ...]) -> tuple[float, ...]:
    """The C values a probe of ``kind`` chooses among: the paper's own for ``"paper"``.

    Example:
        >>> probe_grid("logistic", [1.0, 0.1]), probe_grid("paper", [1.0])[:2]
        ((0.1, 1.0), (0.0001, 0.0002))
    """
    return PAPER_CS if kind == "paper" else tuple(sorted(float(c) for c in Cs))


# How logistic probes are solved: scikit-learn's L-BFGS (exact), Keras (mini-batch Adam on the same
# objective), or auto: Keras from KERAS_FROM_IMAGES fitted images of at least KERAS_FROM_WIDTH
# features on, where L-BFGS's full passes over every image per iteration cost minutes
# (benchmarks/bench_probe.py measures both). On Fashion-MNIST's 48,000 x 1,024 raw pixels, strongly
# correlated features on which Adam converges slowly, Keras was 0.56 points below the exact optimum
# (25.6 s), while L-BFGS with C chosen on a subset matched it (84.67% against 84.69%) in 74.8 s.
SOLVERS = ("auto", "scikit-learn", "keras")
KERAS_FROM_IMAGES = 10_000
KERAS_FROM_WIDTH = 2_048

def probe_memory(fitted: int, tested: int, width: int, storage: str) -> int:
    """Bytes a probe on ``fitted`` budget images and ``tested`` test images of ``width`` features
    needs at most, stored as ``storage`` (float32 or float16): the features of every image, then up
    to three copies of the fitted ones (a held-out split, the standardised copy, the solver's
    shuffled or chunked reading of it).

    Example:
        >>> probe_memory(48_000, 10_000, 7_168, "float16") / 2**30  # GiB
        2.69...
    """
    size = np.dtype(storage).itemsize
    return (fitted + tested) * width * size + 3 * fitted * width * size


def resolve_solver(solver: str, kind: str, images: int, width: int = KERAS_FROM_WIDTH) -> str:
    """The solver a probe of ``kind`` fitted on ``images`` images of ``width`` features uses:
    ``"scikit-learn"`` or ``"keras"``. SVM probes (``svm``, ``paper``) are always scikit-learn's.

    Example:
        >>> resolve_solver("auto", "logistic", 500), resolve_solver("auto", "logistic", 48_000)
        ('scikit-learn', 'keras')
        >>> resolve_solver("auto", "logistic", 48_000, width=1_024)  # raw pixels: exact
        'scikit-learn'
    """
    if solver not in SOLVERS:
        raise ValueError(f"probe solver: received {solver!r}, expected one of {', '.join(SOLVERS)}")
    if kind != "logistic":
        return "scikit-learn"
    if solver == "auto":
        return ("keras" if images >= KERAS_FROM_IMAGES and width >= KERAS_FROM_WIDTH else
                "scikit-learn")
    return solver


class KerasLogisticRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression with scikit-learn's L2 objective, trained by Keras.

    It minimises the objective of ``LogisticRegression(C=C)``: the mean cross-entropy plus
    ``||W||^2 / (2 C n)`` over ``n`` images (the intercept unpenalised), with Adam on shuffled
    mini-batches (of at most ``batch_size``, and at least 8 an epoch) and a cosine-decayed learning
    rate, for ``epochs`` epochs and at least ``min_steps`` steps. Each epoch reads the features
    once, where an L-BFGS iteration reads them twice, and ten epochs of 48,000 images came within
    0.13 points of the exact optimum's test accuracy: this is the solver for tens of thousands of
    images, and it runs on a GPU. Below 10,000 images, or 2,048 features, scikit-learn's L-BFGS is
    fast enough, and exact (:func:`resolve_solver`). It is a scikit-learn classifier (``coef_``,
    ``intercept_``, ``classes_``, ``predict``), so it sits in the same pipelines and exports like
    ``LogisticRegression``; ``warm_start`` starts from the ``coef_`` and ``intercept_`` already set.
    Always float32, whatever the global dtype policy.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(400, 3)).astype("float32"); y = (x[:, 0] > 0).astype(int)
        >>> model = KerasLogisticRegression(C=1.0, learning_rate=0.05, min_steps=100)
        >>> model = model.fit(x[:300], y[:300])
        >>> model.coef_.shape, float(np.mean(model.predict(x[300:]) == y[300:])) > 0.9
        ((1, 3), True)
    """

    def __init__(self, C: float = 1.0, *, epochs: int = 10, min_steps: int = 500,
                 batch_size: int = 256, learning_rate: float = 1e-3, random_state: int = 0,
                 warm_start: bool = False):
        self.C = C
        self.epochs = epochs
        self.min_steps = min_steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.warm_start = warm_start

    def fit(self, X: np.ndarray, y: np.ndarray) -> "KerasLogisticRegression":
        X = np.asarray(X)
        if X.dtype != np.float16:  # float16 features stay so, read a batch at a time (below)
            X = X.astype("float32", copy=False)
        self.classes_, labels = np.unique(np.asarray(y), return_inverse=True)
        n, width = X.shape
        classes = max(2, len(self.classes_))
        # scikit-learn's penalty, ||w||^2 / (2Cn) on the mean loss. Two classes are one score,
        # w = k1 - k0, split at the optimum as k1 = -k0 = w / 2: the two columns' L2 sums to half
        # of ||w||^2, so it weighs twice as much to match.
        strength = 1 / (2 * self.C * n) * (2 if len(self.classes_) == 2 else 1)
        dense = keras.layers.Dense(classes, dtype="float32", kernel_initializer="zeros",
                                   kernel_regularizer=keras.regularizers.L2(strength))
        model = keras.Sequential([keras.Input((width,), dtype="float32"), dense])
        if self.warm_start and hasattr(self, "coef_"):
            dense.set_weights(dense_weights(self.coef_, self.intercept_, classes))
        batch_size = min(self.batch_size, max(32, n // 8))  # an epoch of at least 8 steps
        steps = -(-n // batch_size)
        # at least min_steps Adam steps: a few images in large batches need more epochs
        self.epochs_ = max(self.epochs, -(-self.min_steps // steps))
        schedule = keras.optimizers.schedules.CosineDecay(self.learning_rate, self.epochs_ * steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        # Rows shuffled once here, then the order of whole batches every epoch: a third faster than
        # shuffling rows every epoch (a gather of every row), and no class-sorted batches. Every
        # epoch is read in one Keras epoch: a few images take hundreds of epochs, and Keras's
        # own epochs cost about 40 ms each, whatever their size.
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(n)
        batches = _Batches(X, labels, order, batch_size,
                           [rng.permutation(steps) for _ in range(self.epochs_)])
        model.fit(batches, epochs=1, shuffle=False, verbose=0)
        kernel, bias = (np.asarray(w, dtype="float64") for w in dense.get_weights())
        if len(self.classes_) == 2:  # scikit-learn's binary form: one score, for class 1
            self.coef_, self.intercept_ = (kernel[:, 1] - kernel[:, 0])[None], bias[1:] - bias[:1]
        else:
            self.coef_, self.intercept_ = kernel.T, bias
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Class scores, ``(n, classes)``; one score for class 1 ``(n,)`` with two classes.

        float16 features are scored a chunk of rows at a time in float32, never copied whole."""
        X = np.asarray(X)
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float32
        coef, intercept = self.coef_.T.astype(dtype), self.intercept_.astype(dtype)
        scores = np.concatenate([X[start:start + CHUNK_ROWS].astype(dtype, copy=False) @ coef
                                 for start in range(0, len(X), CHUNK_ROWS)]) + intercept
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(1)]


class _Batches(keras.utils.PyDataset):
    """Every epoch's mini-batches in one sequence: epoch ``e``'s ``j``-th batch is rows
    ``order[b * batch_size:(b + 1) * batch_size]`` with ``b = epoch_orders[e][j]`` (the order of
    whole batches reshuffled each epoch, as ``shuffle="batch"`` does), cast to float32 as each is
    read, so float16 features are never copied whole."""

    def __init__(self, x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                 epoch_orders: list[np.ndarray]) -> None:
        super().__init__()
        self.x, self.y, self.order, self.batch_size = x, y, order, batch_size
        self.epoch_orders = epoch_orders

    def __len__(self) -> int:
        return sum(len(batches) for batches in self.epoch_orders)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, step = divmod(index, len(self.epoch_orders[0]))
        start = self.epoch_orders[epoch][step] * self.batch_size
        rows = np.sort(self.order[start:start + self.batch_size])
        return self.x[rows].astype("float32", copy=False), self.y[rows]


# Rows scored or standardised at a time where features may be float16: a float32 (or float64)
# chunk, never a copy of every row.
CHUNK_ROWS = 2048


def standardise(scaler: StandardScaler, x: np.ndarray) -> np.ndarray:
    """``scaler.transform(x)`` in ``x``'s own precision: float32 stays float32 (scikit-learn keeps
    it), float16 stays float16, a chunk of rows at a time in float32, where scikit-learn's own
    transform would return float64, four times the features' memory.

    Example:
        >>> x = np.random.default_rng(0).normal(3, 2, size=(5000, 4)).astype("float16")
        >>> z = standardise(fit_scaler("logistic", x), x)
        >>> z.dtype, bool(np.allclose(z.astype("float64").std(0), 1, atol=0.01))
        (dtype('float16'), True)
    """
    x = np.asarray(x)
    if x.dtype != np.float16:
        return scaler.transform(x)
    out = np.empty(x.shape, x.dtype)
    for start in range(0, len(x), CHUNK_ROWS):
        out[start:start + CHUNK_ROWS] = scaler.transform(x[start:start + CHUNK_ROWS].astype(
            "float32"))
    return out


def predict_in_chunks(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict(x)`` a chunk of rows at a time: a pipeline's scaler makes a float64 copy of
    what it transforms, so float16 features are never copied whole."""
    return np.concatenate([model.predict(x[start:start + CHUNK_ROWS])
                           for start in range(0, len(x), CHUNK_ROWS)])


def dense_weights(coef: np.ndarray, intercept: np.ndarray, classes: int) -> list[np.ndarray]:
    """A ``Dense(classes)`` layer's float32 kernel and bias from a linear classifier's ``coef_`` and
    ``intercept_`` (a binary classifier's one score split between the two classes)."""
    coef, intercept = np.atleast_2d(coef), np.atleast_1d(intercept)
    if coef.shape[0] == 1 and classes == 2:  # binary: split the one score between two classes
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate(
            [-intercept / 2, intercept / 2])
    return [coef.T.astype("float32"), intercept.astype("float32")]


def make_scaler(kind: str) -> StandardScaler:
    """The probe's standardisation: per-feature mean and scale, or (``paper``) none at all."""
    standardised = kind != "paper"
    return StandardScaler(with_mean=standardised, with_std=standardised)


def fit_scaler(kind: str, x: np.ndarray, chunk: int = CHUNK_ROWS) -> StandardScaler:
    """:func:`make_scaler`, fitted on ``x``: the same ``mean_``, ``var_`` and ``scale_`` as
    ``StandardScaler.fit``, computed in float64 a chunk of rows at a time (two passes).

    scikit-learn's own fit took 18 s on 48,000 x 7,168 float32 features, longer than the probe's
    fit; this takes about 2 s and no second copy of the features.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(1000, 3)).astype("float32"); x[:, 2] = 7
        >>> mine, theirs = fit_scaler("logistic", x, chunk=64), StandardScaler().fit(x)
        >>> bool(np.allclose(mine.mean_, theirs.mean_) and np.allclose(mine.scale_, theirs.scale_))
        True
        >>> mine.scale_[2]  # a constant feature is left unscaled, as scikit-learn leaves it
        np.float64(1.0)
    """
    scaler = make_scaler(kind)
    if kind == "paper":
        return scaler.fit(x[:1])  # nothing to learn: it passes the features through
    n = len(x)
    mean = np.zeros(x.shape[1])
    for start in range(0, n, chunk):
        mean += x[start:start + chunk].sum(axis=0, dtype=np.float64)
    mean /= n
    var = np.zeros(x.shape[1])
    for start in range(0, n, chunk):
        var += np.square(x[start:start + chunk] - mean).sum(axis=0)
    var /= n
    scale = np.sqrt(var)
    scale[var == 0] = 1.0
    scaler.mean_, scaler.var_, scaler.scale_ = mean, var, scale
    scaler.n_samples_seen_, scaler.n_features_in_ = n, x.shape[1]
    return scaler


def make_classifier(kind: str, C: float, seed: int, solver: str = "scikit-learn") -> Any:
    """An L2-regularised linear classifier: ``logistic`` (multinomial logistic regression, solved
    by scikit-learn's L-BFGS or by :class:`KerasLogisticRegression`), ``svm`` or ``paper`` (an
    L2-SVM, scikit-learn's ``LinearSVC``)."""
    if kind == "logistic":
        if solver == "keras":
            return KerasLogisticRegression(C=C, random_state=seed)
        return LogisticRegression(C=C, max_iter=2000, random_state=seed)
    if kind in ("svm", "paper"):
        return LinearSVC(C=C, max_iter=5000, random_state=seed)
    raise ValueError(f"probe: received {kind!r}, expected one of {', '.join(PROBES)}")


def make_probe(kind: str, C: float, seed: int, solver: str = "scikit-learn") -> Pipeline:
    """A standardising pipeline around an L2-regularised linear classifier.

    Args:
        kind: "logistic" (multinomial logistic regression), "svm" (an L2-SVM on standardised
            features) or "paper" (the DCGAN authors' probe: an L2-SVM on the raw features, which
            the pipeline's first step passes through unchanged).
        C: Inverse regularisation strength.
        seed: Seed of the solver.
        solver: For logistic probes, "scikit-learn" or "keras" (:func:`resolve_solver`).
    """
    classifier = make_classifier(kind, C, seed, solver)
    return make_pipeline(make_scaler(kind), classifier)


def fit_quietly(estimator: Any, x: np.ndarray, y: np.ndarray) -> Any:
    """Fits a scikit-learn estimator (or search) on one BLAS thread, without convergence warnings.

    One thread, because these fits are small and run beside TensorFlow's thread pools: with
    OpenBLAS's threads competing for the same cores, a 100 x 1,024 logistic regression took 0.73 s
    against 0.07 s on one thread (2 cores), and at 5,000 x 7,168 one thread was still faster (1.07 s
    against 1.69 s). An unconverged solver at the iteration cap still gives a usable classifier,
    and the choice of C on held-out images already accounts for it.

    Returns:
        The fitted estimator.
    """
    with quietly():
        estimator.fit(x, y)
    return estimator


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """How every probe fit runs: on one BLAS thread, without convergence warnings (see
    :func:`fit_quietly`), for fits inside scikit-learn's own loops such as ``cross_val_score``."""
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
