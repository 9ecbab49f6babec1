"""``evaluate_gan``: the library behind ``gantransfer evaluate-gan``.

It reads a train-gan run folder (its config, data and generator) and scores the generator with FID
and KID against the real test images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np

from gantransfer.config import load_config
from gantransfer.data import load_dataset
from gantransfer.errors import GantransferError
from gantransfer.evaluation.gan_metrics import gan_scores
from gantransfer.gan.extractors import inception_extractor, save_extractor, train_feature_extractor
from gantransfer.gan.sampling import sample
from gantransfer.runs import atomic_write_json


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
