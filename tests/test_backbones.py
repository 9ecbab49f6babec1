"""ImageNet backbones: registry, raw-pixel trunk, weight files, offline errors, real weights."""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace

import h5py
import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gantransfer.data import load_dataset
from gantransfer.errors import ConfigError, GantransferError
from gantransfer.transfer_learning.backbones import (BACKBONES, BackbonePreprocess, BackboneWeightsError,
                                            BackboneWeightsUnavailable, build_backbone,
                                            get_backbone_spec, imagenet_cache_dir,
                                            imagenet_weights_file)


def _real_weights_dir() -> Path:
    beside_repo = Path(__file__).resolve().parents[2] / "shared" / "data" / "keras-models"
    return beside_repo if beside_repo.is_dir() else Path("/work/shared/data/keras-models")


REAL_WEIGHTS = _real_weights_dir()
NO_TOP_224 = "mobilenet_2_5_224_tf_no_top.h5"  # MobileNet alpha 0.25, include_top=False
TOP_128 = "mobilenet_2_5_128_tf.h5"  # MobileNet alpha 0.25, 128 px, include_top=True
requires_real_weights = pytest.mark.skipif(
    not all((REAL_WEIGHTS / name).is_file() for name in (NO_TOP_224, TOP_128)),
    reason=f"the genuine MobileNet ImageNet files ({NO_TOP_224}, {TOP_128}) are not in "
           f"{REAL_WEIGHTS}")
REAL_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

SMALL = {"image_size": 28, "channels": 1, "weights": "none", "input_size": 32}
GREY_BATCH = np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 1)).astype("float32")
FEATURES = {"mobilenet": 1024, "mobilenet_v2": 1280, "resnet50": 2048, "efficientnet_b0": 1280}


def _predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


def _scaled(actual: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Randomly initialised deep nets can output features near 1e-11: compare relative to the
    # reference's largest value, so "equal" and "different" both mean something.
    scale = float(np.abs(reference).max())
    assert scale > 0 and np.isfinite(scale)
    return actual / scale, reference / scale


def _assert_same(actual: np.ndarray, reference: np.ndarray) -> None:
    np.testing.assert_allclose(*_scaled(actual, reference), atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The registry and the trunk


def test_registry_holds_the_four_backbones_with_keras_rules():
    assert {"mobilenet", "mobilenet_v2", "resnet50", "efficientnet_b0"} <= set(BACKBONES)
    for key, spec in BACKBONES.items():
        assert spec.name == key
        assert spec.min_input_size == 32 and spec.default_input_size == 224
    assert BACKBONES["mobilenet"].application is keras.applications.MobileNet
    assert BACKBONES["resnet50"].preprocess_input is keras.applications.resnet50.preprocess_input
    with_alpha = [key for key, spec in BACKBONES.items() if spec.supports_alpha]
    assert with_alpha == ["mobilenet", "mobilenet_v2"]
    assert get_backbone_spec("MobileNet-V2") is BACKBONES["mobilenet_v2"]


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_every_backbone_builds_a_raw_pixel_trunk(name):
    model = build_backbone(name, **SMALL)
    assert model.name == f"{name}_trunk"
    assert [layer.name for layer in model.layers] == ["image", "resize", "grey_to_rgb", "preprocess",
                                                      "backbone"]
    assert model.input_shape == (None, 28, 28, 1)
    assert model.get_layer("resize").output.shape == (None, 32, 32, 1)
    assert model.get_layer("grey_to_rgb").output.shape == (None, 32, 32, 3)
    assert model.get_layer("backbone").input_shape == (None, 32, 32, 3)
    features = _predict(model, GREY_BATCH)
    assert features.shape == (2, 1, 1, FEATURES[name])
    assert np.isfinite(features).all()


def test_input_size_defaults_to_224_and_rgb_needs_no_conversion():
    model = build_backbone("mobilenet", image_size=16, channels=3, weights="none", alpha=0.25)
    assert "grey_to_rgb" not in [layer.name for layer in model.layers]
    assert model.get_layer("backbone").input_shape == (None, 224, 224, 3)
    assert model.output_shape == (None, 7, 7, 256)


def test_backbone_keeps_batchnorm_and_can_be_frozen():
    model = build_backbone("mobilenet", alpha=0.25, **SMALL)
    base = model.get_layer("backbone")
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)
    assert model.trainable_weights
    base.trainable = False
    assert model.trainable_weights == []
    assert len(model.non_trainable_weights) == len(model.weights)


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_preprocess_layer_applies_the_applications_own_function(name):
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    expected = BACKBONES[name].preprocess_input(pixels.copy())
    got = keras.ops.convert_to_numpy(BackbonePreprocess(name)(pixels))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_trunk_is_resize_then_preprocess_then_backbone():
    model = build_backbone("resnet50", image_size=40, channels=3, weights="none", input_size=32)
    pixels = np.random.default_rng(2).uniform(0, 255, (2, 40, 40, 3)).astype("float32")
    resized = keras.ops.convert_to_numpy(keras.layers.Resizing(32, 32)(pixels))
    caffe = keras.applications.resnet50.preprocess_input(resized.copy())  # BGR, mean subtracted
    expected = _predict(model.get_layer("backbone"), caffe)
    _assert_same(_predict(model, pixels), expected)


def test_grey_input_equals_the_rgb_trunk_on_repeated_channels(tmp_path):
    grey = build_backbone("mobilenet", alpha=0.25, **SMALL)
    grey.save_weights(tmp_path / "grey.weights.h5")
    rgb = build_backbone("mobilenet", image_size=28, channels=3, input_size=32, alpha=0.25,
                         weights=tmp_path / "grey.weights.h5")
    _assert_same(_predict(rgb, np.repeat(GREY_BATCH, 3, axis=-1)), _predict(grey, GREY_BATCH))


@pytest.mark.parametrize("name, alpha", [("mobilenet", 0.25), ("efficientnet_b0", 1.0)])
def test_keras_file_round_trip_gives_the_same_features(tmp_path, name, alpha):
    model = build_backbone(name, alpha=alpha, **SMALL)
    model.save(tmp_path / "trunk.keras")
    loaded = keras.saving.load_model(tmp_path / "trunk.keras")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert isinstance(loaded.get_layer("preprocess"), BackbonePreprocess)
    assert loaded.get_layer("preprocess").backbone == name
    _assert_same(_predict(loaded, GREY_BATCH), _predict(model, GREY_BATCH))


# ---------------------------------------------------------------------------------------------
# Weights from a file


@pytest.mark.parametrize("saved", ["trunk", "backbone"])
def test_weights_from_a_local_file_reproduce_the_model(tmp_path, saved):
    keras.utils.set_random_seed(3)
    source = build_backbone("mobilenet", alpha=0.25, **SMALL)
    owner = source if saved == "trunk" else source.get_layer("backbone")
    owner.save_weights(tmp_path / f"{saved}.weights.h5")
    fresh = build_backbone("mobilenet", alpha=0.25, **SMALL)
    assert not np.allclose(*_scaled(_predict(fresh, GREY_BATCH), _predict(source, GREY_BATCH)),
                           atol=1e-2)
    loaded = build_backbone("mobilenet", alpha=0.25,
                            **{**SMALL, "weights": str(tmp_path / f"{saved}.weights.h5")})
    _assert_same(_predict(loaded, GREY_BATCH), _predict(source, GREY_BATCH))


def test_weights_file_of_another_width_is_a_clear_error(tmp_path):
    build_backbone("mobilenet", alpha=0.25, **SMALL).save_weights(tmp_path / "narrow.weights.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about every layer it cannot match first
        with pytest.raises(BackboneWeightsError, match=r"cannot load .*narrow\.weights\.h5 into "
                                                       r"mobilenet \(alpha 0\.5, 32 px\)"):
            build_backbone("mobilenet", alpha=0.5,
                           **{**SMALL, "weights": tmp_path / "narrow.weights.h5"})


def test_missing_or_non_h5_weights_path_is_a_clear_error(tmp_path):
    with pytest.raises(BackboneWeightsError, match="does not exist"):
        build_backbone("mobilenet", alpha=0.25, **{**SMALL, "weights": tmp_path / "gone.weights.h5"})
    (tmp_path / "model.keras").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"must end in \.h5 or \.weights\.h5"):
        build_backbone("mobilenet", alpha=0.25, **{**SMALL, "weights": tmp_path / "model.keras"})
    (tmp_path / "junk.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(BackboneWeightsError, match="cannot read .* as an HDF5 weights file"):
        build_backbone("mobilenet", alpha=0.25, **{**SMALL, "weights": tmp_path / "junk.weights.h5"})


def test_efficientnet_file_with_imagenet_statistics_warns_about_the_missing_rescaling(tmp_path,
                                                                                       caplog):
    model = build_backbone("efficientnet_b0", **SMALL)
    norm = next(layer for layer in model.get_layer("backbone").layers
                if isinstance(layer, keras.layers.Normalization))
    mean, variance, count = norm.get_weights()
    model.save_weights(tmp_path / "plain.weights.h5")
    norm.set_weights([mean, np.full_like(variance, 0.05), count])  # ImageNet-like statistics
    model.save_weights(tmp_path / "imagenet_stats.weights.h5")
    with caplog.at_level(logging.WARNING, logger="gantransfer.transfer_learning.backbones"):
        build_backbone("efficientnet_b0", **{**SMALL, "weights": tmp_path / "plain.weights.h5"})
        assert "Rescaling" not in caplog.text
        build_backbone("efficientnet_b0",
                       **{**SMALL, "weights": tmp_path / "imagenet_stats.weights.h5"})
    assert "adds the Rescaling layer that corrects its ImageNet normalisation only with " \
        "weights='imagenet'" in caplog.text


# ---------------------------------------------------------------------------------------------
# ImageNet weight files, the cache and offline errors


KERAS_FILE_CASES = [
    ("mobilenet", 0.25, 224, False), ("mobilenet", 0.5, 128, False), ("mobilenet", 1.0, 96, False),
    ("mobilenet", 0.25, 128, True), ("mobilenet_v2", 0.35, 96, False),
    ("mobilenet_v2", 1.0, 100, False), ("mobilenet_v2", 1.4, 160, True),
    ("resnet50", 1.0, 64, False), ("efficientnet_b0", 1.0, 64, False),
]


@pytest.mark.parametrize("name, alpha, size, include_top", KERAS_FILE_CASES)
def test_weight_file_and_url_are_the_ones_keras_asks_for(keras_home, name, alpha, size, include_top):
    spec = BACKBONES[name]
    kwargs = {"alpha": alpha} if spec.supports_alpha else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Weights for input shape (224, 224) will be loaded"
        with pytest.raises(Exception, match="URL fetch failure"):
            spec.application(include_top=include_top, weights="imagenet",
                             input_shape=(size, size, 3), **kwargs)
    [(url, target)] = keras_home.attempts
    assert (Path(target).name, url) == imagenet_weights_file(name, alpha=alpha, input_size=size,
                                                             include_top=include_top)
    assert Path(target).parent == imagenet_cache_dir() == keras_home.models


def test_mobilenet_sizes_without_their_own_file_use_the_224_file():
    assert imagenet_weights_file("mobilenet", alpha=0.25, input_size=128)[0] == \
        "mobilenet_2_5_128_tf_no_top.h5"
    assert imagenet_weights_file("mobilenet", alpha=0.25, input_size=100)[0] == NO_TOP_224
    assert imagenet_weights_file("mobilenet_v2", alpha=0.35, input_size=96)[0] == \
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert imagenet_weights_file("resnet50", input_size=64)[0] == \
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def test_offline_error_names_the_exact_file_url_and_folder(keras_home):
    url = f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/{NO_TOP_224}"
    with pytest.raises(BackboneWeightsUnavailable) as info:
        build_backbone("mobilenet", image_size=28, channels=1, alpha=0.25)
    message = str(info.value)
    assert message.startswith(
        f"ImageNet weights for mobilenet (alpha 0.25, 224 px) are not cached and cannot be "
        f"downloaded: put {NO_TOP_224} (from {url}) into {keras_home.models}/ and run again (")
    assert "\n" not in message
    assert isinstance(info.value, GantransferError)
    assert keras_home.attempts == [(url, str(keras_home.models / NO_TOP_224))]
    assert list(keras_home.models.iterdir()) == []  # nothing half-downloaded is left behind


@pytest.mark.parametrize("name, alpha", [("mobilenet_v2", 0.35), ("resnet50", 1.0),
                                         ("efficientnet_b0", 1.0)])
def test_offline_error_for_every_backbone(keras_home, name, alpha):
    file_name, url = imagenet_weights_file(name, alpha=alpha, input_size=64)
    with pytest.raises(BackboneWeightsUnavailable,
                       match=f"put {file_name} .from {url}. into {keras_home.models}/ and run again"):
        build_backbone(name, image_size=28, channels=1, input_size=64, alpha=alpha)
    assert [url for url, _ in keras_home.attempts] == [url]


def test_imagenet_cache_dir_follows_keras_home(keras_home):
    assert imagenet_cache_dir() == keras_home.models


# ---------------------------------------------------------------------------------------------
# Argument errors


@pytest.mark.parametrize("kwargs, error, match", [
    ({"name": "vgg99"}, ConfigError,
     "unknown backbone 'vgg99'; choose one of: mobilenet, mobilenet_v2, resnet50, efficientnet_b0"),
    ({"name": "resnet50", "alpha": 0.5}, ConfigError,
     "resnet50 has no width multiplier, so alpha must be 1.0; Received: alpha=0.5. "
     "Backbones with alpha: mobilenet, mobilenet_v2"),
    ({"weights": "imagenett"}, ConfigError,
     "weights must be \"imagenet\", \"none\" (or None), or a path to a .h5 or .weights.h5 file; "
     "Received: weights='imagenett'"),
    ({"input_size": 31}, ConfigError, "mobilenet needs input_size >= 32 px; Received: input_size=31"),
    ({"weights": "imagenet", "alpha": 0.3}, ConfigError,
     "mobilenet has ImageNet weights only for alpha in 0.25, 0.5, 0.75, 1; Received: alpha=0.3"),
    ({"channels": 2}, ConfigError, "channels must be 1 (grey) or 3 (RGB); Received: channels=2"),
    ({"image_size": 0}, ConfigError, "image_size must be a positive integer; Received: image_size=0"),
    ({"alpha": -1.0}, ConfigError, "alpha must be a positive number; Received: alpha=-1.0"),
])
def test_bad_arguments_raise_one_clear_line(kwargs, error, match):
    arguments = {"name": "mobilenet", **SMALL, "weights": "none", **kwargs}
    with pytest.raises(error) as info:
        build_backbone(arguments.pop("name"), **arguments)
    assert match in str(info.value)
    assert "\n" not in str(info.value)


def test_weights_none_and_the_string_none_both_give_random_init():
    keras.utils.set_random_seed(5)
    a = build_backbone("mobilenet", alpha=0.25, **{**SMALL, "weights": None})
    keras.utils.set_random_seed(5)
    b = build_backbone("mobilenet", alpha=0.25, **{**SMALL, "weights": "None"})
    _assert_same(_predict(a, GREY_BATCH), _predict(b, GREY_BATCH))


def test_preprocess_layer_rejects_unknown_backbones():
    with pytest.raises(ConfigError, match="unknown backbone 'alexnet'; choose one of: mobilenet"):
        BackbonePreprocess("alexnet")


# ---------------------------------------------------------------------------------------------
# Genuine ImageNet weights, offline


def _h5_kernel(path: Path, layer: str, weight: str) -> np.ndarray:
    with h5py.File(path, "r") as handle:
        return np.asarray(handle[layer][layer][weight])


@requires_real_weights
def test_imagenet_no_top_file_loads_offline_from_the_cache(keras_home):
    shutil.copy(REAL_WEIGHTS / NO_TOP_224, keras_home.models / NO_TOP_224)
    model = build_backbone("mobilenet", image_size=28, channels=1, alpha=0.25)
    base = model.get_layer("backbone")
    assert keras_home.attempts == []
    assert model.output_shape == (None, 7, 7, 256)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(base.get_layer("conv1").kernel),
                                  _h5_kernel(REAL_WEIGHTS / NO_TOP_224, "conv1", "kernel:0"))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(base.get_layer("conv_pw_13_bn").moving_variance),
        _h5_kernel(REAL_WEIGHTS / NO_TOP_224, "conv_pw_13_bn", "moving_variance:0"))


@requires_real_weights
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined:UserWarning")  # 64 px: 224's file
def test_imagenet_file_by_path_equals_the_cached_imagenet_build(keras_home):
    shutil.copy(REAL_WEIGHTS / NO_TOP_224, keras_home.models / NO_TOP_224)
    cached = build_backbone("mobilenet", image_size=28, channels=1, alpha=0.25, input_size=64)
    by_path = build_backbone("mobilenet", image_size=28, channels=1, alpha=0.25, input_size=64,
                             weights=REAL_WEIGHTS / NO_TOP_224)
    _assert_same(_predict(by_path, GREY_BATCH), _predict(cached, GREY_BATCH))


@requires_real_weights
def test_imagenet_128_px_is_cut_from_the_cached_with_top_file(keras_home, caplog):
    shutil.copy(REAL_WEIGHTS / TOP_128, keras_home.models / TOP_128)
    with caplog.at_level(logging.WARNING, logger="gantransfer.transfer_learning.backbones"):
        model = build_backbone("mobilenet", image_size=28, channels=1, alpha=0.25, input_size=128)
    assert keras_home.attempts == []  # the missing no-top file was not even asked for
    assert "cut out of the with-top file" in caplog.text and "conv_preds" in caplog.text
    base = model.get_layer("backbone")
    assert model.output_shape == (None, 4, 4, 256)
    assert base.layers[-1].name == "conv_pw_13_relu"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(base.get_layer("conv1").kernel),
                                  _h5_kernel(REAL_WEIGHTS / TOP_128, "conv1", "kernel:0"))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(base.get_layer("conv_pw_13").kernel),
        _h5_kernel(REAL_WEIGHTS / TOP_128, "conv_pw_13", "kernel:0"))
    # The cut trunk saves and loads like any other.
    features = _predict(model, GREY_BATCH)
    model.save(keras_home.models.parent / "cut.keras")
    loaded = keras.saving.load_model(keras_home.models.parent / "cut.keras")
    _assert_same(_predict(loaded, GREY_BATCH), features)


def _probe_accuracy(model: keras.Model, train, test) -> float:
    def features(x: np.ndarray) -> np.ndarray:  # frozen, global-average-pooled
        return model.predict(x.astype("float32"), batch_size=128, verbose=0).mean(axis=(1, 2))

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    probe.fit(features(train.x), train.y)
    return float(probe.score(features(test.x), test.y))


@pytest.mark.slow
@requires_real_weights
@pytest.mark.parametrize("dataset, input_size, margin", [
    ("digits", 224, 0.03),  # the no-top 224 px file
    ("digits", 128, 0.05),  # cut from the with-top 128 px file
    pytest.param("fashion_mnist", 128, 0.10, marks=pytest.mark.skipif(
        not (REAL_FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
        reason="the Debian package dataset-fashion-mnist is not installed")),
])
def test_imagenet_features_beat_random_features(keras_home, dataset, input_size, margin):
    for name in (NO_TOP_224, TOP_128):
        shutil.copy(REAL_WEIGHTS / name, keras_home.models / name)
    data = load_dataset(dataset, image_size=32 if dataset == "digits" else 28, channels=1,
                        labels_per_class=30, seed=0)
    picked = np.random.default_rng(0).choice(len(data.test), size=300, replace=False)
    test = SimpleNamespace(x=data.test.x[picked], y=data.test.y[picked])
    size = data.train.x.shape[1]
    imagenet = build_backbone("mobilenet", image_size=size, channels=1, alpha=0.25,
                              input_size=input_size, weights="imagenet")
    keras.utils.set_random_seed(0)
    random = build_backbone("mobilenet", image_size=size, channels=1, alpha=0.25,
                            input_size=input_size, weights="none")
    imagenet_accuracy = _probe_accuracy(imagenet, data.train, test)
    random_accuracy = _probe_accuracy(random, data.train, test)
    print(f"{dataset} {input_size} px, 30 labels/class: ImageNet {imagenet_accuracy:.3f}, "
          f"random {random_accuracy:.3f}")
    assert keras_home.attempts == []
    assert imagenet_accuracy >= random_accuracy + margin, (imagenet_accuracy, random_accuracy)


def test_a_cached_imagenet_file_that_fails_its_published_hash_is_not_loaded(keras_home):
    # Keras publishes an MD5 for the ResNet-50 file; a file that does not match it is fetched
    # again (impossible offline: one clear error), never loaded.
    keras_home.models.mkdir(parents=True, exist_ok=True)
    fake = keras_home.models / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    fake.write_bytes(b"not the published weights")
    with pytest.raises(BackboneWeightsUnavailable, match="resnet50_weights_tf_dim_ordering_tf_"
                                                         "kernels_notop.h5"):
        build_backbone("resnet50", image_size=32, channels=3, weights="imagenet", input_size=32)
    assert BACKBONES["resnet50"].weights_hash and BACKBONES["mobilenet"].weights_hash is None
