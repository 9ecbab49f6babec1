"""GAN quality without a network: FID and KID on features of an offline feature extractor.

Both compare the feature distributions of real and generated images:

- FID (Heusel et al. 2017), the Fréchet distance between Gaussians fitted to the two feature sets:
  ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``.
- KID (Bińkowski et al. 2018), the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets. Being unbiased, it can go below 0
  when the two sets come from one distribution.

The feature extractors themselves (InceptionV3, or a classifier trained on the dataset's labels) are
built in :mod:`gantransfer.gan.extractors`; scoring a run folder is
:func:`gantransfer.workflows.scoring.evaluate_gan`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import keras
import numpy as np
import scipy
from scipy import linalg

from gantransfer.errors import GantransferError

logger = logging.getLogger(__name__)


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two ``(N, D)`` feature sets.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
        >>> frechet_distance(a, b) < 0.05, frechet_distance(a, b + 1.0) > 3.5
        (True, True)
    """
    real, fake = np.asarray(real, "float64"), np.asarray(fake, "float64")
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1] or min(len(real), len(fake)) < 2:
        raise GantransferError(f"FID needs two (N, D) feature sets with N >= 2; received "
                               f"{real.shape} and {fake.shape}")
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    with warnings.catch_warnings():  # dead (constant) features make the product singular
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = _sqrtm(np.atleast_2d(cov_r) @ np.atleast_2d(cov_f))
        if not np.isfinite(covmean).all():  # nudge both diagonals and try again
            offset = np.eye(len(np.atleast_2d(cov_r))) * 1e-6
            covmean = _sqrtm((cov_r + offset) @ (cov_f + offset))
    covmean = np.real(covmean)
    distance = np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r) + np.trace(cov_f) - 2.0 * np.trace(covmean)
    return max(float(distance), 0.0)  # a squared distance: below 0 only by rounding


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm``'s root, quietly, on every SciPy the package allows.

    SciPy before 1.16 prints a warning for a singular matrix unless ``disp=False`` (which also
    returns an error estimate); 1.16 and 1.17 deprecate ``disp``, and 1.18 removed it.
    """
    if np.lib.NumpyVersion(scipy.__version__) < "1.16.0":
        return linalg.sqrtm(matrix, disp=False)[0]
    return linalg.sqrtm(matrix)


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
                 + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1)) - 2.0 * k_xy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, subsets: int = 10,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID between two ``(N, D)`` feature sets: mean and std of the unbiased MMD^2 over subsets.

    Each subset holds ``subset_size`` images of each set, drawn without replacement; a set that
    has no more than that gives subsets of half its size, so that they differ and the std says how
    much the estimate moves (whole sets would give the same value every time, and a std of 0).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
        >>> abs(kernel_inception_distance(a, b)[0]) < 0.01
        True
    """
    real, fake = np.asarray(real, "float64"), np.asarray(fake, "float64")
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1] or min(len(real), len(fake)) < 2:
        raise GantransferError(f"KID needs two (N, D) feature sets with N >= 2; received "
                               f"{real.shape} and {fake.shape}")
    size = min(subset_size, len(real), len(fake))
    if size >= min(len(real), len(fake)):
        size = max(2, size // 2)
    rng = np.random.default_rng(seed)
    values = [_polynomial_mmd2(real[rng.choice(len(real), size, replace=False)],
                               fake[rng.choice(len(fake), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def features(extractor: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The extractor's features of uint8 or float pixels in [0, 255]."""
    return np.asarray(extractor.predict(np.asarray(images, "float32"), batch_size=batch_size,
                                        verbose=0), "float64")


def gan_scores(extractor: keras.Model, real: np.ndarray, generated: np.ndarray,
               seed: int = 0) -> dict[str, Any]:
    """FID and KID of generated against real images (pixels in [0, 255])."""
    f_real, f_fake = features(extractor, real), features(extractor, generated)
    kid, kid_std = kernel_inception_distance(f_real, f_fake, seed=seed)
    return {"fid": frechet_distance(f_real, f_fake), "kid": kid, "kid_std": kid_std,
            "real_images": len(real), "generated_images": len(generated)}
