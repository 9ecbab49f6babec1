"""Feature extractors for FID and KID, offline.

The features come from InceptionV3's pool layer when its ImageNet weights are cached (the standard
FID), and otherwise from a small classifier trained on the labeled data of the same dataset, the way
"FID on MNIST" is usually reported. Values from different extractors are not comparable; results
say which one was used.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from gantransfer import runtime
from gantransfer.data.sources import imagenet_cache_dir
from gantransfer.data.transforms import gan_range_layer
from gantransfer.runs import atomic_save


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
                            epochs: int = 10, batch_size: int = 32, seed: int = 0
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
