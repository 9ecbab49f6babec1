"""``evaluate_gan``: the library behind ``gantransfer evaluate-gan``.

It reads a train-gan run folder (its config, data and generator) and scores the generator with FID
and KID against the real test images. :func:`score_generator` does the scoring on objects already
in memory, for ``compare``, which holds the data and the generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from gantransfer.config import load_config
from gantransfer.data import Dataset, load_dataset
from gantransfer.errors import GantransferError
from gantransfer.evaluation.gan_metrics import gan_scores
from gantransfer.gan.extractors import (dataset_classifier, inception_extractor, load_kept_extractor,
                                        save_extractor)
from gantransfer.gan.sampling import load_generator, sample
from gantransfer.runs import atomic_write_json

EXTRACTORS = ("auto", "classifier", "inception")


def evaluate_gan(run_dir: str | Path, *, num_images: int = 2000, extractor: str = "auto",
                 seed: int = 0) -> dict[str, Any]:
    """FID and KID of a train-gan run's generator against real images of its dataset.

    Loads the run's config, dataset and generator, scores them with :func:`score_generator` and
    writes the scores into ``<run_dir>/gan_metrics.json``.

    Args:
        run_dir: A train-gan run folder (``config.yaml`` and ``generator.keras``).
        num_images: Images per side.
        extractor: "inception" (cached InceptionV3 weights), "classifier" (a small CNN trained on
            the dataset's labeled training images, kept in ``metrics/`` for later calls), or
            "auto": InceptionV3 when cached, else the classifier.
        seed: Seed of the generated noise, the real images drawn and the KID subsets, and of the
            feature classifier when one is trained; a run's kept classifier
            (``metrics/feature_extractor.keras``) is reused whatever the seed, so its scores stay
            comparable with the run's own.

    Returns:
        The scores: ``fid``, ``kid``, ``kid_std``, ``extractor`` and the image counts.

    Example:
        >>> scores = evaluate_gan("outputs/fmnist-gan")  # doctest: +SKIP
        >>> scores["fid"], scores["kid"]  # doctest: +SKIP
    """
    _check_arguments(num_images, extractor)
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "generator.keras").is_file():
        raise GantransferError(f"{str(run_dir)!r} is not a finished train-gan run folder (it needs "
                               "config.yaml and generator.keras)")
    config = load_config(run_dir / "config.yaml")
    d = config.data
    data = load_dataset(d.dataset, image_size=d.image_size, channels=d.channels,
                        validation_split=0.0, test_split=d.test_split, seed=d.split_seed,
                        max_in_memory_mb=d.max_in_memory_mb)
    scores = score_generator(load_generator(run_dir), data, num_images=num_images,
                             extractor=extractor, seed=seed, metrics_dir=run_dir / "metrics")
    atomic_write_json(run_dir / "gan_metrics.json", scores)
    return scores


def score_generator(generator: keras.Model, data: Dataset, *, num_images: int = 2000,
                    extractor: str = "auto", seed: int = 0,
                    metrics_dir: str | Path | None = None) -> dict[str, Any]:
    """FID and KID of a generator against a dataset's real images, from objects already in memory.

    Real images are the dataset's test split (the GAN never saw them; the training split when the
    test split has fewer than two images), at most ``num_images``; as many images are generated.

    Args:
        generator: A generator making images of the dataset's size and channels.
        data: The dataset the generator was trained on.
        num_images: Images per side.
        extractor: "inception", "classifier" or "auto", as in :func:`evaluate_gan`.
        seed: Seed of the generated noise, the real images drawn and the KID subsets, and of the
            feature classifier when one is trained; a run's kept classifier
            (``metrics/feature_extractor.keras``) is reused whatever the seed, so its scores stay
            comparable with the run's own.
        metrics_dir: The folder keeping a copy of the feature classifier for later calls
            (``feature_extractor.keras``), or None to keep none there. The classifier is also kept
            in the user's cache, and trained only when neither holds it (see
            :func:`gantransfer.gan.extractors.classifier_extractor`).

    Returns:
        The scores: ``fid``, ``kid``, ``kid_std``, ``extractor`` and the image counts.

    Example:
        >>> from gantransfer.data import Dataset, load_dataset
        >>> from gantransfer.gan.models import build_generator
        >>> data = load_dataset("digits", image_size=16, validation_split=0.0)
        >>> untrained = build_generator(16, 1, latent_dim=8, width=0.125)
        >>> scores = score_generator(untrained, data, num_images=50,
        ...                          extractor="classifier")  # doctest: +SKIP
        >>> scores["real_images"], scores["generated_images"]  # doctest: +SKIP
        (50, 50)
    """
    _check_arguments(num_images, extractor)
    made = tuple(generator.output_shape[1:])
    if made != (data.image_size, data.image_size, data.channels):
        raise GantransferError(f"the generator makes {made} images but dataset {data.name!r} holds "
                               f"{(data.image_size, data.image_size, data.channels)}; load the "
                               "dataset at the generator's image size and channels")
    pool = data.test if len(data.test) >= 2 else data.train
    order = np.random.default_rng(seed).permutation(len(pool))[:num_images]
    real = pool.load(np.sort(order))
    model, name, info = _extractor(extractor, data, seed, metrics_dir)
    generated = sample(generator, num_images=len(real), seed=seed)
    scores = gan_scores(model, real, generated, seed=seed)
    scores.update({"extractor": name, "extractor_info": info, "dataset": data.name, "seed": seed})
    return scores


def _check_arguments(num_images: int, extractor: str) -> None:
    if extractor not in EXTRACTORS:
        raise GantransferError(f"extractor: received {extractor!r}, expected one of "
                               f"{', '.join(EXTRACTORS)}")
    if num_images < 2:
        raise GantransferError(f"num_images: received {num_images}, expected an integer >= 2")


def _extractor(extractor: str, data: Dataset, seed: int, metrics_dir: str | Path | None
               ) -> tuple[keras.Model, str, dict[str, Any]]:
    """The feature extractor asked for, its name for the scores, and how it was obtained."""
    if extractor in ("auto", "inception"):
        model = inception_extractor(data.image_size, data.channels)
        if model is not None:
            return model, "inception_v3", {}
        if extractor == "inception":
            raise GantransferError("InceptionV3 ImageNet weights are not cached: put "
                                   "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 into "
                                   "$KERAS_HOME/models/, or use --extractor classifier")
    if not data.train.labeled:
        raise GantransferError(f"dataset {data.name!r} has no labels to train the feature "
                               "classifier, and InceptionV3 weights are not cached")
    cached = Path(metrics_dir) / "feature_extractor.keras" if metrics_dir is not None else None
    model = load_kept_extractor(cached) if cached is not None else None
    if model is not None:
        return model, "classifier", {"cached": str(cached)}
    model, info = dataset_classifier(data, seed=seed)
    if cached is not None:
        save_extractor(model, cached)
    return model, "classifier", info
