"""GAN quality without a network: FID and KID on features of an offline feature extractor.

Both compare the feature distributions of real and generated images:

- FID (Heusel et al. 2017), the Fréchet distance between Gaussians fitted to the two feature sets:
  ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``.
- KID (Bińkowski et al. 2018), the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets. Being unbiased, it can go below 0
  when the two sets come from one distribution.

The features come from InceptionV3's pool layer when its ImageNet weights are cached (the standard
FID), and otherwise from a small classifier trained on the labeled data of the same dataset, the way
"FID on MNIST" is usually reported. Values from different extractors are not comparable; results
say which one was used.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers
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
        covmean, _ = linalg.sqrtm(np.atleast_2d(cov_r) @ np.atleast_2d(cov_f), disp=False)
        if not np.isfinite(covmean).all():  # nudge both diagonals and try again
            offset = np.eye(len(np.atleast_2d(cov_r))) * 1e-6
            covmean = linalg.sqrtm((cov_r + offset) @ (cov_f + offset))
    covmean = np.real(covmean)
    return float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r) + np.trace(cov_f)
                 - 2.0 * np.trace(covmean))


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
    rng = np.random.default_rng(seed)
    values = [_polynomial_mmd2(real[rng.choice(len(real), size, replace=False)],
                               fake[rng.choice(len(fake), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def build_feature_classifier(image_size: int, channels: int, num_classes: int,
                             feature_dim: int = 128) -> keras.Model:
    """A small CNN classifier whose ``features`` layer serves as the metric's feature extractor.

    Input: raw pixels in [0, 255]. Output: class logits.

    Example:
        >>> build_feature_classifier(28, 1, 10).get_layer("features").output.shape
        (None, 128)
    """
    inputs = keras.Input((image_size, image_size, channels), name="pixels")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x) if i < 3 else x
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    features = layers.Dense(feature_dim, activation="relu", name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, logits, name="feature_classifier")


def train_feature_extractor(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
                            epochs: int = 10, batch_size: int = 32, seed: int = 0
                            ) -> tuple[keras.Model, float]:
    """Trains :func:`build_feature_classifier` on labeled real images.

    Returns:
        ``(extractor, train_accuracy)``: a model from pixels to the ``features`` layer, and the
        classifier's accuracy on its last epoch (a sanity check that the features mean something).
    """
    keras.utils.set_random_seed(seed)
    classifier = build_feature_classifier(images.shape[1], images.shape[-1], num_classes)
    classifier.compile(keras.optimizers.Adam(1e-3),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    history = classifier.fit(images.astype("float32"), labels, epochs=epochs,
                             batch_size=batch_size, verbose=0)
    extractor = keras.Model(classifier.input, classifier.get_layer("features").output,
                            name="feature_extractor")
    return extractor, float(history.history["accuracy"][-1])


def inception_extractor(image_size: int, channels: int) -> keras.Model | None:
    """InceptionV3's 2048-d pool features (resized to 299, grey to RGB), or None without weights.

    Only a cached weights file is used: this never downloads.
    """
    from gantransfer.transfer.backbones import imagenet_cache_dir

    cached = imagenet_cache_dir() / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if not cached.is_file():
        return None
    inputs = keras.Input((image_size, image_size, channels), name="pixels")
    x = layers.Resizing(299, 299)(inputs)
    if channels == 1:
        x = layers.Concatenate()([x, x, x])
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(x)  # InceptionV3's preprocess_input
    base = keras.applications.InceptionV3(include_top=False, weights=str(cached), pooling="avg")
    return keras.Model(inputs, base(x), name="inception_features")


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


def save_extractor(extractor: keras.Model, path: Path) -> None:
    """Saves a feature extractor atomically, to reuse across evaluations of one run."""
    from gantransfer.runs import atomic_save

    atomic_save(Path(path), extractor.save)


EXTRACTORS = ("auto", "classifier", "inception")


def evaluate_gan(run_dir: str | Path, *, num_images: int = 2000, extractor: str = "auto",
                 seed: int = 0) -> dict[str, Any]:
    """FID and KID of a train-gan run's generator against real images of its dataset.

    Real images are the dataset's test split (the GAN never saw them), at most ``num_images``; as
    many images are generated. The scores go into ``<run_dir>/gan_metrics.json``.

    Args:
        run_dir: A train-gan run folder (``config.yaml`` and ``generator.keras``).
        num_images: Images per side.
        extractor: "inception" (cached InceptionV3 weights), "classifier" (a small CNN trained on
            the dataset's labeled training images, kept in ``metrics/`` for later calls), or
            "auto": InceptionV3 when cached, else the classifier.
        seed: Seed of the generated noise, the classifier and the KID subsets.

    Returns:
        The scores: ``fid``, ``kid``, ``kid_std``, ``extractor`` and the image counts.

    Example:
        >>> scores = evaluate_gan("outputs/fmnist-gan")  # doctest: +SKIP
        >>> scores["fid"], scores["kid"]  # doctest: +SKIP
    """
    from gantransfer.config import load_config
    from gantransfer.data import load_dataset
    from gantransfer.gan.sampling import sample
    from gantransfer.runs import atomic_write_json

    if extractor not in EXTRACTORS:
        raise GantransferError(f"extractor: received {extractor!r}, expected one of "
                               f"{', '.join(EXTRACTORS)}")
    if num_images < 2:
        raise GantransferError(f"num_images: received {num_images}, expected an integer >= 2")
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "generator.keras").is_file():
        raise GantransferError(f"{str(run_dir)!r} is not a finished train-gan run folder (it needs "
                               "config.yaml and generator.keras)")
    config = load_config(run_dir / "config.yaml")
    d = config.data
    data = load_dataset(d.dataset, image_size=d.image_size, channels=d.channels,
                        validation_split=0.0, test_split=d.test_split, seed=config.train.seed,
                        max_in_memory_mb=d.max_in_memory_mb)
    pool = data.test if len(data.test) >= 2 else data.train
    order = np.random.default_rng(seed).permutation(len(pool))[:num_images]
    real = pool.load(np.sort(order))
    model, name, info = None, extractor, {}
    if extractor in ("auto", "inception"):
        model = inception_extractor(data.image_size, data.channels)
        name = "inception_v3"
        if model is None and extractor == "inception":
            raise GantransferError("InceptionV3 ImageNet weights are not cached: put "
                                   "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 into "
                                   "$KERAS_HOME/models/, or use --extractor classifier")
    if model is None:
        if not data.train.labeled:
            raise GantransferError(f"dataset {data.name!r} has no labels to train the feature "
                                   "classifier, and InceptionV3 weights are not cached")
        cached = run_dir / "metrics" / "feature_extractor.keras"
        if cached.is_file():
            model = keras.saving.load_model(cached, compile=False)
            info = {"cached": str(cached)}
        else:
            train = data.train  # at most 20k images: enough for features, minutes on a CPU
            chosen = np.sort(np.random.default_rng(seed).permutation(len(train))[:20000])
            model, accuracy = train_feature_extractor(train.load(chosen), train.y[chosen],
                                                      data.num_classes, seed=seed)
            save_extractor(model, cached)
            info = {"train_accuracy": round(accuracy, 4)}
        name = "classifier"
    generated = sample(run_dir, num_images=len(real), seed=seed)
    scores = gan_scores(model, real, generated, seed=seed)
    scores.update({"extractor": name, "extractor_info": info, "dataset": data.name, "seed": seed})
    atomic_write_json(run_dir / "gan_metrics.json", scores)
    return scores
