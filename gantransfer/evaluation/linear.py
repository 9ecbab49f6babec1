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

import numpy as np
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


def make_probe(kind: str, C: float, seed: int) -> Pipeline:
    """A standardising pipeline around an L2-regularised linear classifier.

    Args:
        kind: "logistic" (multinomial logistic regression), "svm" (an L2-SVM on standardised
            features) or "paper" (the DCGAN authors' probe: an L2-SVM on the raw features, which
            the pipeline's first step passes through unchanged).
        C: Inverse regularisation strength.
        seed: Seed of the solver.
    """
    if kind == "logistic":
        classifier = LogisticRegression(C=C, max_iter=2000, random_state=seed)
    elif kind in ("svm", "paper"):
        classifier = LinearSVC(C=C, max_iter=5000, random_state=seed)
    else:
        raise ValueError(f"probe: received {kind!r}, expected one of {', '.join(PROBES)}")
    standardise = kind != "paper"
    return make_pipeline(StandardScaler(with_mean=standardise, with_std=standardise), classifier)


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
