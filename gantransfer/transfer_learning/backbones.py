"""ImageNet backbones from ``keras.applications`` as classifier trunks, and the weight files they use.

:data:`BACKBONES` is a plain registry of :class:`BackboneSpec` entries; adding a backbone is adding an
entry. :func:`build_backbone` wraps one application (``include_top=False``, ``pooling=None``) in a
functional model that takes the project's raw-pixel images, so the same data feeds GAN trunks,
scratch models and ImageNet backbones alike::

    image (image_size, image_size, channels), floats in [0, 255]
      -> "resize"       keras.layers.Resizing to input_size
      -> "grey_to_rgb"  three copies of a grey channel (channels=1 only)
      -> "preprocess"   BackbonePreprocess: the application's own preprocess_input
      -> "backbone"     the keras.applications model, BatchNorm layers included
      -> final feature map (batch, h, w, features)

Freeze the ImageNet part with ``model.get_layer("backbone").trainable = False`` and call it with
``training=False`` when fine-tuning, as the Keras transfer-learning guide does.

ImageNet weights come from the Keras cache, ``$KERAS_HOME/models`` (Keras reads ``KERAS_HOME`` once,
when it is imported), downloaded by Keras when missing. Without a network,
:class:`BackboneWeightsUnavailable` names the exact file, its URL and the folder to put it in
(:func:`imagenet_weights_file`, :func:`imagenet_cache_dir`). When the no-top file is missing but the
with-top file for the same width and size is cached, the trunk is cut from the with-top model
instead, with no download.

Example:
    >>> model = build_backbone("mobilenet", image_size=28, channels=1, weights="none",
    ...                        input_size=32, alpha=0.25)
    >>> model.input_shape, model.output_shape
    ((None, 28, 28, 1), (None, 1, 1, 256))
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
from keras import layers

from gantransfer.data.sources import imagenet_cache_dir
from gantransfer.errors import ConfigError, GantransferError

logger = logging.getLogger(__name__)

WEIGHTS_FORMS = '"imagenet", "none" (or None), or a path to a .h5 or .weights.h5 file'


class BackboneWeightsUnavailable(GantransferError):
    """ImageNet weights are neither in the Keras cache nor downloadable (no network, a proxy)."""


class BackboneWeightsError(GantransferError, ValueError):
    """A weights file given by path is missing or does not fit the backbone it is loaded into."""


def _mobilenet_alpha_text(alpha: float) -> str:
    # keras.applications.MobileNet spells the width multiplier this way in its file names.
    return {1.0: "1_0", 0.75: "7_5", 0.5: "5_0"}.get(alpha, "2_5")


def _float_text(alpha: float) -> str:
    return str(float(alpha))


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one ``keras.applications`` backbone and name the ImageNet files it loads.

    Attributes:
        name: The registry key.
        application: The ``keras.applications`` constructor, e.g. ``keras.applications.MobileNet``.
        preprocess_input: That application's own ``preprocess_input`` (raw [0, 255] RGB in).
        min_input_size: Smallest input side Keras accepts, with or without ImageNet weights.
        default_input_size: The input side the ImageNet weights were trained at by default.
        supports_alpha: Whether the application takes a width multiplier ``alpha``.
        weights_url: The folder URL Keras downloads the weight files from.
        weights_file: File name Keras uses with ``include_top=False``; ``{alpha}`` and ``{size}``
            are filled in by :func:`imagenet_weights_file`.
        weights_file_top: The same with ``include_top=True``.
        last_layer: Name of the application's last layer with ``include_top=False`` (the layer a
            with-top model is cut at).
        imagenet_alphas: Widths that have ImageNet weights.
        imagenet_sizes: Input sides with their own weight files; Keras loads the
            ``default_input_size`` files for every other side.
        alpha_text: How file names spell ``alpha`` (None where they do not contain it).
        weights_hash: The MD5 Keras publishes for the no-top ImageNet file (None where it
            publishes none, as for MobileNet); a cached or downloaded file must match it.
    """

    name: str
    application: Callable[..., keras.Model]
    preprocess_input: Callable[..., Any]
    min_input_size: int
    default_input_size: int
    supports_alpha: bool
    weights_url: str
    weights_file: str
    weights_file_top: str
    last_layer: str
    imagenet_alphas: tuple[float, ...] = (1.0,)
    imagenet_sizes: tuple[int, ...] = (224,)
    alpha_text: Callable[[float], str] | None = None
    weights_hash: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.min_input_size <= self.default_input_size:
            raise ConfigError(f"backbone {self.name}: need 0 < min_input_size <= default_input_size; "
                              f"Received: min_input_size={self.min_input_size}, "
                              f"default_input_size={self.default_input_size}")


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet": BackboneSpec(
        name="mobilenet",
        application=keras.applications.MobileNet,
        preprocess_input=keras.applications.mobilenet.preprocess_input,
        min_input_size=32,
        default_input_size=224,
        supports_alpha=True,
        weights_url="https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/",
        weights_file="mobilenet_{alpha}_{size}_tf_no_top.h5",
        weights_file_top="mobilenet_{alpha}_{size}_tf.h5",
        last_layer="conv_pw_13_relu",
        imagenet_alphas=(0.25, 0.5, 0.75, 1.0),
        imagenet_sizes=(128, 160, 192, 224),
        alpha_text=_mobilenet_alpha_text,
    ),
    "mobilenet_v2": BackboneSpec(
        name="mobilenet_v2",
        application=keras.applications.MobileNetV2,
        preprocess_input=keras.applications.mobilenet_v2.preprocess_input,
        min_input_size=32,
        default_input_size=224,
        supports_alpha=True,
        weights_url="https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/",
        weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{size}_no_top.h5",
        weights_file_top="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{size}.h5",
        last_layer="out_relu",
        imagenet_alphas=(0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
        imagenet_sizes=(96, 128, 160, 192, 224),
        alpha_text=_float_text,
    ),
    "resnet50": BackboneSpec(
        name="resnet50",
        application=keras.applications.ResNet50,
        preprocess_input=keras.applications.resnet50.preprocess_input,
        min_input_size=32,
        default_input_size=224,
        supports_alpha=False,
        weights_url="https://storage.googleapis.com/tensorflow/keras-applications/resnet/",
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_file_top="resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        last_layer="conv5_block3_out",
        weights_hash="4d473c1dd8becc155b73f8504c6f6626",  # keras.applications.resnet's
    ),
    "efficientnet_b0": BackboneSpec(
        name="efficientnet_b0",
        application=keras.applications.EfficientNetB0,
        # A no-op kept by Keras for symmetry: EfficientNet rescales and normalises inside itself.
        preprocess_input=keras.applications.efficientnet.preprocess_input,
        min_input_size=32,
        default_input_size=224,
        supports_alpha=False,
        weights_url="https://storage.googleapis.com/keras-applications/",
        weights_file="efficientnetb0_notop.h5",
        weights_file_top="efficientnetb0.h5",
        last_layer="top_activation",
        weights_hash="50bc09e76180e00e4465e1a485ddc09d",  # keras.applications.efficientnet's
    ),
}


def get_backbone_spec(name: str) -> BackboneSpec:
    """Looks a backbone up in :data:`BACKBONES`, ignoring case and ``-`` versus ``_``.

    Args:
        name: A registry key such as ``"mobilenet_v2"``.

    Returns:
        The :class:`BackboneSpec`.

    Raises:
        ConfigError: The name is not in the registry; the message lists the valid names.

    Example:
        >>> get_backbone_spec("MobileNet-V2").application.__name__
        'MobileNetV2'
    """
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    if key not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[key]


def imagenet_weights_file(name: str, *, alpha: float = 1.0, input_size: int = 224,
                          include_top: bool = False) -> tuple[str, str]:
    """The ImageNet weight file Keras loads for a backbone, width and input size, and its URL.

    Follows the rules in ``keras.applications``: MobileNet (v1 and v2) have one file per input
    side in ``spec.imagenet_sizes`` and use the 224 px file for every other side; ResNet50 and
    EfficientNetB0 have one file for all sides.

    Args:
        name: A key of :data:`BACKBONES`.
        alpha: Width multiplier; one of ``spec.imagenet_alphas`` (only 1.0 without alpha support).
        input_size: Side of the square image the application receives.
        include_top: The with-classifier file instead of the feature-extractor one.

    Returns:
        ``(file_name, url)``.

    Raises:
        ConfigError: Unknown backbone, an alpha without ImageNet weights, or a side below the
            backbone's minimum.

    Example:
        >>> file_name, url = imagenet_weights_file("mobilenet", alpha=0.25, input_size=224)
        >>> file_name
        'mobilenet_2_5_224_tf_no_top.h5'
        >>> url.endswith("/keras-applications/mobilenet/" + file_name)
        True
        >>> imagenet_weights_file("mobilenet", alpha=0.25, input_size=96)[0]  # Keras uses 224's
        'mobilenet_2_5_224_tf_no_top.h5'
    """
    spec = get_backbone_spec(name)
    _check_alpha(spec, alpha, imagenet=True)
    _check_input_size(spec, input_size)
    template = spec.weights_file_top if include_top else spec.weights_file
    file_name = template.format(alpha=spec.alpha_text(alpha) if spec.alpha_text else "",
                                size=_weights_size(spec, input_size))
    return file_name, spec.weights_url + file_name


@keras.saving.register_keras_serializable(package="gantransfer")
class BackbonePreprocess(layers.Layer):
    """Applies a registered backbone's own ``preprocess_input`` to RGB pixels in [0, 255].

    The config holds the backbone's name, not the function, so models containing this layer save
    to and load from ``.keras`` files (no ``Lambda`` layer, no pickled code).

    Args:
        backbone: A key of :data:`BACKBONES`.
        **kwargs: Base layer arguments (``name``, ``dtype``).

    Example:
        >>> import numpy as np
        >>> scaled = BackbonePreprocess("mobilenet")(np.array([[[[0.0, 127.5, 255.0]]]]))
        >>> keras.ops.convert_to_numpy(scaled).tolist()
        [[[[-1.0, 0.0, 1.0]]]]
    """

    def __init__(self, backbone: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backbone = get_backbone_spec(backbone).name

    def call(self, inputs):
        return BACKBONES[self.backbone].preprocess_input(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "backbone": self.backbone}


def check_backbone(name: str, *, weights: str | os.PathLike[str] | None = "imagenet",
                   input_size: int | None = None, alpha: float = 1.0) -> None:
    """Checks a backbone's settings without building it: name, input size, width and weights.

    A weights path must exist; ImageNet weights that are neither cached nor downloadable are not an
    error here (strategies that need them are skipped, and the report says why).

    Raises:
        ConfigError: Unknown backbone, or a bad ``input_size``, ``alpha`` or ``weights`` value.
        BackboneWeightsError: A weights path that does not exist.

    Example:
        >>> check_backbone("mobilenet", weights="none", input_size=32, alpha=0.25)
        >>> try:
        ...     check_backbone("mobilenet", weights="missing.h5")
        ... except BackboneWeightsError as error:
        ...     print(str(error)[:36])
        weights file missing.h5 does not exi
    """
    spec = get_backbone_spec(name)
    _check_input_size(spec, spec.default_input_size if input_size is None else input_size)
    source, _ = _weights_source(weights)
    _check_alpha(spec, alpha, imagenet=source == "imagenet")


def build_backbone(name: str, *, image_size: int, channels: int,
                   weights: str | os.PathLike[str] | None = "imagenet", input_size: int | None = None,
                   alpha: float = 1.0) -> keras.Model:
    """Builds a ``keras.applications`` feature extractor that takes raw-pixel images.

    The model resizes to ``input_size``, turns grey into RGB, applies the application's own
    ``preprocess_input`` and runs the application (``include_top=False``, ``pooling=None``) as a
    nested model named ``"backbone"``, BatchNorm layers included, so callers can freeze it.

    Args:
        name: A key of :data:`BACKBONES`: ``mobilenet``, ``mobilenet_v2``, ``resnet50``,
            ``efficientnet_b0``.
        image_size: Side of the square input images.
        channels: 1 (grey, repeated into RGB inside the model) or 3.
        weights: ``"imagenet"`` (the Keras cache, downloaded when missing), ``"none"`` or None
            (random initialisation), or a path to a ``.weights.h5`` file saved from a model built
            by this function (or from its ``"backbone"`` layer) or a Keras-applications ``.h5``
            file for the same backbone and width.
        input_size: Side the images are resized to before the backbone; defaults to the
            backbone's ``default_input_size`` (224) and must be at least ``min_input_size``.
        alpha: Width multiplier (MobileNet v1 and v2 only); with ImageNet weights one of
            ``spec.imagenet_alphas``.

    Returns:
        A functional ``keras.Model`` named ``f"{name}_trunk"`` from ``(batch, image_size,
        image_size, channels)`` floats in [0, 255] to the backbone's final feature map.

    Raises:
        ConfigError: Unknown backbone, bad ``channels``, ``image_size``, ``input_size``, ``alpha``
            or ``weights`` value.
        BackboneWeightsUnavailable: ImageNet weights neither cached nor downloadable; the message
            names the file, its URL and the folder to put it in.
        BackboneWeightsError: A weights path that does not exist or does not fit the backbone.

    Example:
        >>> import numpy as np
        >>> model = build_backbone("mobilenet_v2", image_size=28, channels=1, weights="none",
        ...                        input_size=32, alpha=0.35)
        >>> model.name, model.get_layer("backbone").name
        ('mobilenet_v2_trunk', 'backbone')
        >>> model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape
        (2, 1, 1, 1280)
        >>> model.get_layer("backbone").trainable = False
        >>> len(model.trainable_weights)
        0
    """
    spec = get_backbone_spec(name)
    _check_positive_int("image_size", image_size)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ConfigError(f"channels must be 1 (grey) or 3 (RGB); Received: channels={channels!r}")
    input_size = spec.default_input_size if input_size is None else input_size
    _check_input_size(spec, input_size)
    source, path = _weights_source(weights)
    _check_alpha(spec, alpha, imagenet=source == "imagenet")

    if source == "imagenet":
        base = _imagenet_base(spec, alpha, input_size)
    else:
        base = _application(spec, alpha, input_size, weights=None)
    # The application names its model after the width and size (and EfficientNet derives its weight
    # file name from that name), so the base is renamed only once it is built.
    base.name = "backbone"

    images = keras.Input((image_size, image_size, channels), name="image")
    x = layers.Resizing(input_size, input_size, interpolation="bilinear", name="resize")(images)
    if channels == 1:
        x = layers.Concatenate(axis=-1, name="grey_to_rgb")([x, x, x])
    x = BackbonePreprocess(spec.name, name="preprocess")(x)
    features = base(x)
    model = keras.Model(images, features, name=f"{spec.name}_trunk")

    if path is not None:
        _load_weights_file(model, base, path, spec, alpha, input_size)
    logger.info("built %s: %s weights, %d px input resized to %d px, output %s", model.name,
                path or source, image_size, input_size, model.output_shape)
    return model


def _check_positive_int(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer; Received: {what}={value!r}")


def _check_input_size(spec: BackboneSpec, input_size: Any) -> None:
    _check_positive_int("input_size", input_size)
    if input_size < spec.min_input_size:
        raise ConfigError(f"{spec.name} needs input_size >= {spec.min_input_size} px; Received: "
                          f"input_size={input_size}. Pass input_size={spec.min_input_size} or "
                          f"more (images are resized inside the model)")


def _check_alpha(spec: BackboneSpec, alpha: Any, *, imagenet: bool) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ConfigError(f"alpha must be a positive number; Received: alpha={alpha!r}")
    if not spec.supports_alpha:
        if alpha != 1.0:
            with_alpha = ", ".join(key for key, entry in BACKBONES.items() if entry.supports_alpha)
            raise ConfigError(f"{spec.name} has no width multiplier, so alpha must be 1.0; Received: "
                              f"alpha={alpha}. Backbones with alpha: {with_alpha}")
        return
    if imagenet and alpha not in spec.imagenet_alphas:
        raise ConfigError(f"{spec.name} has ImageNet weights only for alpha in "
                          f"{', '.join(f'{a:g}' for a in spec.imagenet_alphas)}; Received: "
                          f"alpha={alpha}. Pick one of those or use weights='none'")


def _weights_size(spec: BackboneSpec, input_size: int) -> int:
    return input_size if input_size in spec.imagenet_sizes else spec.default_input_size


def _describe(spec: BackboneSpec, alpha: float, size: int) -> str:
    return f"{spec.name} (alpha {alpha:g}, {size} px)" if spec.supports_alpha else \
        f"{spec.name} ({size} px)"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def _weights_source(weights: Any) -> tuple[str, Path | None]:
    if weights is None:
        return "none", None
    if isinstance(weights, str) and weights.strip().lower() in ("imagenet", "none"):
        return weights.strip().lower(), None
    looks_like_path = isinstance(weights, os.PathLike) or (
        isinstance(weights, str) and (weights.endswith(".h5") or "/" in weights or os.sep in weights))
    if not looks_like_path:
        raise ConfigError(f"weights must be {WEIGHTS_FORMS}; Received: weights={weights!r}")
    path = Path(weights).expanduser()
    if path.suffix != ".h5":
        raise ConfigError(f"a weights file must end in .h5 or .weights.h5 (save one with "
                          f"model.save_weights); Received: weights={os.fspath(weights)!r}")
    if not path.is_file():
        raise BackboneWeightsError(f"weights file {path} does not exist; pass an existing .h5 or "
                                   f".weights.h5 file, or weights='imagenet' or 'none'")
    return "path", path


def _application(spec: BackboneSpec, alpha: float, input_size: int, *, weights: str | None,
                 include_top: bool = False) -> keras.Model:
    kwargs: dict[str, Any] = {"include_top": include_top, "weights": weights,
                              "input_shape": (input_size, input_size, 3)}
    if spec.supports_alpha:
        kwargs["alpha"] = alpha
    return spec.application(**kwargs)


def _fetch_imagenet_file(spec: BackboneSpec, alpha: float, input_size: int) -> Path | None:
    """Makes sure the no-top ImageNet weights file is in the Keras cache, downloading it if need be.

    Returns the with-top file to cut the backbone from when only that one is cached, else None.

    Raises:
        BackboneWeightsUnavailable: Neither file is cached and the download fails.
    """
    file_name, url = imagenet_weights_file(spec.name, alpha=alpha, input_size=input_size)
    top_name, _ = imagenet_weights_file(spec.name, alpha=alpha, input_size=input_size,
                                        include_top=True)
    folder = imagenet_cache_dir()
    if not (folder / file_name).is_file() and (folder / top_name).is_file():
        return folder / top_name
    try:
        # With a hash, a cached file that does not match is downloaded again, never loaded.
        keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=spec.weights_hash)
    except Exception as error:  # No network, a proxy, a refused URL: the fix is the same.
        size = _weights_size(spec, input_size)
        raise BackboneWeightsUnavailable(
            f"ImageNet weights for {_describe(spec, alpha, size)} are not cached and cannot be "
            f"downloaded: put {file_name} (from {url}) into {folder}/ and run again "
            f"({_first_line(error)})") from error
    return None


def imagenet_weights_problem(name: str, *, alpha: float = 1.0,
                             input_size: int | None = None) -> str | None:
    """Fetches a backbone's ImageNet weights now (a no-op when cached); says why they are not at hand.

    For callers that want to know before training starts, not when the first ImageNet strategy
    does: it returns None when the weights can be loaded, and otherwise the one-line reason,
    naming the file, its URL and the folder to put it in.

    Example:
        >>> imagenet_weights_problem("mobilenet", alpha=0.25, input_size=128)  # doctest: +SKIP
        'ImageNet weights for mobilenet (alpha 0.25, 128 px) are not cached and cannot be ...'
    """
    spec = get_backbone_spec(name)
    try:
        _fetch_imagenet_file(spec, alpha, spec.default_input_size if input_size is None
                             else input_size)
    except BackboneWeightsUnavailable as error:
        return str(error)
    return None


def _imagenet_base(spec: BackboneSpec, alpha: float, input_size: int) -> keras.Model:
    size = _weights_size(spec, input_size)
    if size != input_size:
        logger.warning("%s has no ImageNet weights for %d px; Keras loads the %d px ones",
                       spec.name, input_size, size)
    file_name, _ = imagenet_weights_file(spec.name, alpha=alpha, input_size=input_size)
    top_file = _fetch_imagenet_file(spec, alpha, input_size)
    if top_file is not None:
        return _base_from_top_file(spec, alpha, input_size, top_file, file_name)
    logger.info("loading ImageNet weights for %s from %s", _describe(spec, alpha, size),
                imagenet_cache_dir() / file_name)
    return _application(spec, alpha, input_size, weights="imagenet")


def _base_from_top_file(spec: BackboneSpec, alpha: float, input_size: int, top_path: Path,
                        missing_file: str) -> keras.Model:
    # The with-top application holds the no-top one as a prefix: cut it at the last feature layer,
    # then rebuild that graph on the requested input side (convolutions do not depend on it) and
    # copy the weights over, shapes checked.
    size = _weights_size(spec, input_size)
    top = _application(spec, alpha, size, weights="imagenet", include_top=True)
    cut = keras.Model(top.input, top.get_layer(spec.last_layer).output)
    base = keras.models.clone_model(cut, input_tensors=keras.Input((input_size, input_size, 3)))
    source, target = cut.get_weights(), base.get_weights()
    if [w.shape for w in source] != [w.shape for w in target]:
        raise BackboneWeightsError(f"cannot cut {spec.name} out of {top_path}: its weights do not "
                                   f"match the rebuilt backbone; delete the file and run again")
    base.set_weights(source)
    head = [layer.name for layer in top.layers[len(cut.layers):]]
    logger.warning("ImageNet weights for %s: %s is not cached, so the backbone was cut out of the "
                   "with-top file %s (%d arrays copied; head dropped: %s)",
                   _describe(spec, alpha, size), missing_file, top_path, len(source),
                   ", ".join(head))
    return base


def _load_weights_file(model: keras.Model, base: keras.Model, path: Path, spec: BackboneSpec,
                       alpha: float, input_size: int) -> None:
    whole_trunk = _saved_from_a_trunk(path)
    target = model if whole_trunk else base
    try:
        target.load_weights(path)
    except Exception as error:  # h5py, shape and structure errors alike mean "wrong file".
        raise BackboneWeightsError(
            f"cannot load {path} into {_describe(spec, alpha, input_size)}: {_first_line(error)}; "
            f"pass a file saved from the same backbone and alpha (save_weights of a build_backbone "
            f"model or of its 'backbone' layer, or a keras.applications no-top file)") from error
    logger.info("loaded %s weights from %s into %s", spec.name, path,
                "the whole trunk" if whole_trunk else "the backbone")
    if spec.name == "efficientnet_b0" and _has_imagenet_statistics(base):
        logger.warning("efficientnet_b0 from a weights file: Keras adds the Rescaling layer that "
                       "corrects its ImageNet normalisation only with weights='imagenet'; for "
                       "ImageNet-derived weights put the file into %s/ and use weights='imagenet'",
                       imagenet_cache_dir())


def _saved_from_a_trunk(path: Path) -> bool:
    # Keras 3 .weights.h5 files group layers by class name: a trunk saved whole holds our
    # preprocessing layer next to the nested backbone. Anything else (the "backbone" layer saved
    # alone, a keras.applications file) is loaded into the backbone.
    try:
        with h5py.File(path, "r") as handle:
            group = handle.get("layers")
            return isinstance(group, h5py.Group) and "backbone_preprocess" in group
    except OSError as error:
        raise BackboneWeightsError(f"cannot read {path} as an HDF5 weights file "
                                   f"({_first_line(error)}); pass a file written by "
                                   f"model.save_weights or a keras.applications .h5 file") from error


def _has_imagenet_statistics(base: keras.Model) -> bool:
    # An unadapted Normalization layer has unit variance; ImageNet statistics mean the file came
    # from an ImageNet build, whose variance-correcting Rescaling layer this build lacks.
    for layer in base.layers:
        if isinstance(layer, layers.Normalization):
            variance = layer.get_weights()[1]
            if not np.allclose(variance, 1.0):
                return True
    return False
