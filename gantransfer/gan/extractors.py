"""Feature extractors for FID and KID, offline.

The features come from InceptionV3's pool layer when its ImageNet weights are cached (the standard
FID), and otherwise from a small classifier trained on the labeled data of the same dataset, the way
"FID on MNIST" is usually reported. Values from different extractors are not comparable; results
say which one was used.

The classifier depends only on its training images, their labels and its fixed recipe, so it is
kept in the user's cache under a fingerprint of those (:func:`classifier_extractor`): every run,
``train-gan``'s metrics, ``evaluate-gan`` and ``compare`` on the same data scores with the same
classifier, trained once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from gantransfer import runtime
from gantransfer.data import Dataset
from gantransfer.data.sources import imagenet_cache_dir
from gantransfer.data.transforms import gan_range_layer
from gantransfer.runs import atomic_save, atomic_write_json, user_cache_dir

logger = logging.getLogger(__name__)

# Bumped whenever build_feature_classifier or train_feature_extractor changes what they make, so
# that a cached classifier of the old recipe is never taken for one of the new.
CLASSIFIER_RECIPE = "feature-classifier-1"
CLASSIFIER_EPOCHS = 10
CLASSIFIER_BATCH_SIZE = 32
CLASSIFIER_IMAGES = 20000  # at most this many training images: enough for features, minutes on a CPU


def build_feature_classifier(image_size: int, channels: int, num_classes: int,
                             feature_dim: int = 128) -> keras.Model:
    """A small CNN classifier whose ``features`` layer serves as the metric's feature extractor.

    Input: raw pixels in [0, 255]. Output: class logits.

    Example:
        >>> build_feature_classifier(28, 1, 10).get_layer("features").output.shape
        (None, 128)
    """
    inputs = keras.Input((image_size, image_size, channels), name="pixels")
    x = gan_range_layer("rescale")(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x) if i < 3 else x
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    features = layers.Dense(feature_dim, activation="relu", name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, logits, name="feature_classifier")


def train_feature_extractor(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
                            epochs: int = CLASSIFIER_EPOCHS,
                            batch_size: int = CLASSIFIER_BATCH_SIZE, seed: int = 0
                            ) -> tuple[keras.Model, float]:
    """Trains :func:`build_feature_classifier` on labeled real images.

    Returns:
        ``(extractor, train_accuracy)``: a model from pixels to the ``features`` layer, and the
        classifier's accuracy on its last epoch (a sanity check that the features mean something).
    """
    keras.utils.set_random_seed(seed)
    with runtime.float32_layers():  # FID and KID mean the same whatever the run's precision
        classifier = build_feature_classifier(images.shape[1], images.shape[-1], num_classes)
    classifier.compile(keras.optimizers.Adam(1e-3),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    history = classifier.fit(images.astype("float32"), labels, epochs=epochs,
                             batch_size=batch_size, verbose=0)
    extractor = keras.Model(classifier.input, classifier.get_layer("features").output,
                            name="feature_extractor")
    return extractor, float(history.history["accuracy"][-1])


def classifier_cache_dir() -> Path:
    """Where trained feature classifiers are kept: ``$XDG_CACHE_HOME/gantransfer/feature-classifiers``.

    Example:
        >>> classifier_cache_dir().parts[-2:]
        ('gantransfer', 'feature-classifiers')
    """
    return user_cache_dir() / "feature-classifiers"


def classifier_fingerprint(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
                           epochs: int = CLASSIFIER_EPOCHS, batch_size: int = CLASSIFIER_BATCH_SIZE,
                           seed: int = 0) -> str:
    """A name for the classifier that :func:`train_feature_extractor` makes of these arguments: a
    SHA-256 of the images' and labels' bytes, shapes and types, and of every setting of the recipe.

    Example:
        >>> images = np.zeros((4, 8, 8, 1), "uint8")
        >>> a = classifier_fingerprint(images, np.array([0, 1, 0, 1]), 2)
        >>> a == classifier_fingerprint(images, np.array([0, 1, 1, 0]), 2), len(a)
        (False, 64)
    """
    labels = np.asarray(labels).astype("int64")
    digest = hashlib.sha256()
    head = (CLASSIFIER_RECIPE, images.shape, str(images.dtype), labels.shape, num_classes, epochs,
            batch_size, seed)
    digest.update(repr(head).encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(labels.data)
    return digest.hexdigest()


def classifier_extractor(images: np.ndarray, labels: np.ndarray, num_classes: int, *,
                         seed: int = 0) -> tuple[keras.Model, dict[str, Any]]:
    """The feature classifier of these images and labels: read from :func:`classifier_cache_dir`
    when one was trained on exactly them before, else trained and kept there.

    A cached file that cannot be read is trained again and replaced; a cache that cannot be
    written is warned about, and the classifier is used all the same.

    Returns:
        ``(extractor, info)``: the model from pixels to the ``features`` layer, and how it was
        obtained: ``train_accuracy`` (its last epoch's), and ``cached`` (the file it was read from).
    """
    name = classifier_fingerprint(images, labels, num_classes, seed=seed)
    path = classifier_cache_dir() / f"{name}.keras"
    model = load_kept_extractor(path)
    if model is not None:
        return model, {**_read_info(path.with_suffix(".json")), "cached": str(path)}
    model, accuracy = train_feature_extractor(images, labels, num_classes, seed=seed)
    info = {"train_accuracy": round(accuracy, 4)}
    try:
        atomic_write_json(path.with_suffix(".json"), info)
        save_extractor(model, path)
    except OSError as error:
        logger.warning("the feature classifier cannot be kept in %s (%s); it will be trained again "
                       "next time", path.parent, error)
    return model, info


def dataset_classifier(data: Dataset, seed: int = 0) -> tuple[keras.Model, dict[str, Any]]:
    """:func:`classifier_extractor` on a dataset's labeled training images: at most
    ``CLASSIFIER_IMAGES`` of them, drawn with ``seed``, so every caller on the same data and seed
    shares one classifier."""
    train = data.train
    chosen = np.sort(np.random.default_rng(seed).permutation(len(train))[:CLASSIFIER_IMAGES])
    return classifier_extractor(train.load(chosen), train.y[chosen], data.num_classes, seed=seed)


def load_kept_extractor(path: Path) -> keras.Model | None:
    """A feature extractor kept in ``path``, or None when there is none, or when it cannot be read:
    it is derived data, so a caller trains it again and replaces it rather than fail (warned)."""
    if not path.is_file():
        return None
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many kinds for a corrupt file
        logger.warning("the kept feature extractor %s cannot be read (%s); training a new one",
                       path, str(error).splitlines()[0] if str(error) else type(error).__name__)
        return None


def _read_info(path: Path) -> dict[str, Any]:
    """What was recorded when a cached classifier was trained; nothing if that record is lost."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def inception_extractor(image_size: int, channels: int) -> keras.Model | None:
    """InceptionV3's 2048-d pool features (resized to 299, grey to RGB), or None without weights.

    Only a cached weights file is used: this never downloads.
    """
    cached = imagenet_cache_dir() / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    if not cached.is_file():
        return None
    with runtime.float32_layers():  # FID and KID mean the same whatever the run's precision
        inputs = keras.Input((image_size, image_size, channels), name="pixels")
        x = layers.Resizing(299, 299)(inputs)
        if channels == 1:
            x = layers.Concatenate()([x, x, x])
        x = gan_range_layer("inception_preprocess")(x)  # InceptionV3 takes [-1, 1] too
        base = keras.applications.InceptionV3(include_top=False, weights=str(cached),
                                              pooling="avg")
        return keras.Model(inputs, base(x), name="inception_features")


def save_extractor(extractor: keras.Model, path: Path) -> None:
    """Saves a feature extractor atomically, to reuse across evaluations of one run."""
    atomic_save(Path(path), extractor.save)
