"""Classifier heads, classifiers around a trunk, and training with validation-based selection.

Every classifier takes raw pixels in [0, 255] and returns class logits. Its trunk (a GAN trunk, an
ImageNet backbone) is a nested model named by the trunk; its head is a nested model named ``head``:
the trunk's features pooled one of :data:`HEADS` ways, optional dropout, then ``Dense(num_classes)``
with optional L2 weight decay. Because the head is its own model, it can be trained on cached trunk
features and then put back on the trunk unchanged.

A head's hyperparameters are chosen on validation (:func:`fit_selected`), or by stratified k-fold
cross-validation over the whole label budget (:func:`fit_cross_validated`); :func:`refit` then
trains the final model on every labeled image with those choices.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
from keras import layers

from gantransfer import backend, runtime
from gantransfer.data.batches import ViewBatches, Views, originals
from gantransfer.data.transforms import shift_images
from gantransfer.errors import GantransferError
from gantransfer.transfer_learning.backbones import BackbonePreprocess
from gantransfer.transfer_learning.probe import (SHIFT_DIRECTIONS, GridMaxPooling, copy_count,
                                                conv_feature_layers, fold_indices, with_copies)

logger = logging.getLogger(__name__)


# How a head reads a trunk's feature map. "auto" is resolved per trunk by :func:`resolve_head`.
HEADS = ("auto", "gap", "flatten", "pooled")


def resolve_head(kind: str, native: str) -> str:
    """The head to use: ``kind``, or for ``"auto"`` the trunk's ``native`` head.

    The native head is the one the trunk's own pretraining read its features with: a DCGAN
    discriminator decides real or fake from its flattened last map (``"flatten"``), so the spatial
    layout is part of what it learned; ImageNet backbones were trained under global average pooling
    (``"gap"``). A randomly initialised or from-scratch trunk of the discriminator's architecture
    takes the discriminator's head, so the controls stay comparable.

    Example:
        >>> resolve_head("auto", "flatten"), resolve_head("gap", "flatten")
        ('flatten', 'gap')
    """
    if kind not in HEADS:
        raise ValueError(f"head: received {kind!r}, expected one of {', '.join(HEADS)}")
    return native if kind == "auto" else kind


def build_head(feature_shape: tuple[int, ...], num_classes: int, *, kind: str = "gap",
               dropout: float = 0.0, l2: float = 0.0, name: str = "head") -> keras.Model:
    """Pools a feature map, optional dropout, then a linear layer to class logits.

    Args:
        feature_shape: The trunk's output shape without the batch axis: ``(H, W, C)``, or ``(D,)``
            for features that are already a vector (a ``pooled`` trunk, see :func:`pooled_trunk`).
        num_classes: Number of classes.
        kind: ``"gap"`` averages over positions; ``"flatten"`` keeps every position (the spatial
            layout); ``"pooled"`` expects the vector of :func:`pooled_trunk` and adds no pooling.
        dropout: Dropout rate before the linear layer.
        l2: L2 weight decay of the linear layer.
        name: Model name.

    Example:
        >>> build_head((4, 4, 32), 10, dropout=0.5).output_shape
        (None, 10)
        >>> build_head((4, 4, 32), 10, kind="flatten").layers[1].name
        'head_flatten'
    """
    if kind not in HEADS[1:]:
        raise ValueError(f"head kind: received {kind!r}, expected one of {', '.join(HEADS[1:])}")
    inputs = keras.Input(feature_shape, name="features")
    x = inputs
    if len(feature_shape) == 3 and kind == "gap":
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    elif len(feature_shape) > 1:
        x = layers.Flatten(name="head_flatten")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    # float32 logits in every precision (16-bit softmaxes and losses lose too much)
    outputs = layers.Dense(num_classes, kernel_regularizer=regularizer, name="head_dense",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def pooled_trunk(trunk: keras.Model, taps: list[str] | None = None, grid: int = 4) -> keras.Model:
    """The trunk with a multi-block output: each tapped block max-pooled to ``grid x grid``.

    The blocks' maps are pooled by :class:`~gantransfer.transfer_learning.probe.GridMaxPooling`,
    flattened and concatenated, as in the DCGAN paper's feature protocol. The returned model shares
    the trunk's layers (and so their weights and ``trainable`` flags) and keeps its name.

    Args:
        trunk: Raw pixels to a feature map.
        taps: Names of the layers to read; the trunk's per-block activations by default, or only
            its output when it has none (an ImageNet backbone).
        grid: Side of each pooled grid.

    Example:
        >>> from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
        >>> pooled_trunk(build_gan_trunk(TrunkArchitecture(32, 1, width=0.125))).output_shape
        (None, 896)
    """
    taps = taps if taps is not None else conv_feature_layers(trunk)
    outputs = [trunk.get_layer(name).output for name in taps] or [trunk.output]
    names = taps or ["output"]
    pooled = [layers.Flatten(name=f"flat_{n}")(GridMaxPooling(grid, name=f"grid_{n}")(o))
              for n, o in zip(names, outputs)]
    features = layers.Concatenate(name="pooled_blocks")(pooled) if len(pooled) > 1 else pooled[0]
    return keras.Model(trunk.input, features, name=trunk.name)


def augmentation(flip: bool = False, shift: float = 0.0) -> keras.Sequential | None:
    """Random horizontal flips and shifts (a fraction of the side), active only while training.

    Shifts move an image by whole pixels (nearest-neighbour sampling, so a sub-pixel move never
    blurs it), and the rows and columns they uncover repeat the image's edge, as the probes' moved
    copies do. A constant fill would paint them black (0 on the [0, 255] pixel scale), a border
    that no light-background test image has.

    Example:
        >>> import numpy as np
        >>> light = np.full((1, 8, 8, 1), 255.0, "float32")
        >>> float(np.asarray(augmentation(shift=0.25)(light, training=True)).min())
        255.0
    """
    steps: list[keras.layers.Layer] = []
    if flip:
        steps.append(layers.RandomFlip("horizontal", name="augment_flip"))
    if shift > 0:
        steps.append(layers.RandomTranslation(shift, shift, fill_mode="nearest",
                                              interpolation="nearest", name="augment_shift"))
    return keras.Sequential(steps, name="augment") if steps else None


def _whole_pixel_moves(fraction: float, side: int) -> tuple[list[int], list[float]]:
    """The whole-pixel moves along one axis that ``RandomTranslation(fraction)`` with nearest
    sampling makes on a side of ``side`` pixels, and how likely each is.

    The layer draws a move ``t`` uniformly from ``[-a, a]``, ``a = fraction * side``, and nearest
    sampling rounds it: the move is ``d`` with the share of ``[-a, a]`` that rounds to ``d``.
    """
    a = fraction * side
    if a < 0.5:
        return [0], [1.0]
    reach = int(np.floor(a + 0.5))
    moves = sorted(range(-reach, reach + 1), key=lambda d: (abs(d), d))  # 0 first
    shares = [max(0.0, min(a, d + 0.5) - max(-a, d - 0.5)) / (2 * a) for d in moves]
    kept = [(d, p) for d, p in zip(moves, shares) if p > 0]
    return [d for d, _ in kept], [p for _, p in kept]


def augmentation_views(flip: bool, shift: float, height: int,
                       width: int) -> tuple[list[tuple[bool, int, int]], list[float]]:
    """Every image that :func:`augmentation` can make of an ``height`` x ``width`` one, as
    ``(mirrored, dy, dx)`` (mirrored first, then moved ``dy`` down and ``dx`` right), and how likely
    each is; the first is the image as it is.

    Its shifts move by whole pixels, so they make a few images, not a continuum: a frozen trunk's
    features of each can be computed once (:class:`~gantransfer.data.batches.Views`).

    Example:
        >>> views, chances = augmentation_views(False, 1 / 32, 32, 32)
        >>> len(views), views[0], chances[0], chances[-1]
        (9, (False, 0, 0), 0.25, 0.0625)
    """
    rows, row_chances = _whole_pixel_moves(shift, height)
    cols, col_chances = _whole_pixel_moves(shift, width)
    mirrors = [(False, 0.5), (True, 0.5)] if flip else [(False, 1.0)]
    views, chances = [], []
    for mirrored, p_mirror in mirrors:
        for dy, p_row in zip(rows, row_chances):
            for dx, p_col in zip(cols, col_chances):
                views.append((mirrored, dy, dx))
                chances.append(p_mirror * p_row * p_col)
    return views, chances


def apply_view(images: np.ndarray, view: tuple[bool, int, int]) -> np.ndarray:
    """``images`` as one view of :func:`augmentation_views` shows them: mirrored left to right
    when ``view[0]``, then moved ``view[1]`` pixels down and ``view[2]`` right, the uncovered
    border repeating the edge, as :func:`augmentation` does.

    Example:
        >>> x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
        >>> apply_view(x, (True, 0, 1))[0, :, :, 0].tolist()
        [[2.0, 2.0, 1.0], [5.0, 5.0, 4.0], [8.0, 8.0, 7.0]]
    """
    mirrored, dy, dx = view
    return shift_images(images[:, :, ::-1] if mirrored else images, dy, dx)


# The registered names ("gantransfer>PixelShift", "gantransfer>LogMeanSoftmax") are what saved
# .keras files with test-time shifts or ensembles refer to; they must not change.
@keras.saving.register_keras_serializable(package="gantransfer")
class PixelShift(layers.Layer):
    """Moves images ``dy`` pixels down and ``dx`` right (negative: up, left), the uncovered rows and
    columns repeating the image's edge: :func:`~gantransfer.data.transforms.shift_images` inside a
    model, on every backend.

    Example:
        >>> x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
        >>> np.asarray(PixelShift(0, 1)(x))[0, :, :, 0].tolist()
        [[0.0, 0.0, 1.0], [3.0, 3.0, 4.0], [6.0, 6.0, 7.0]]
    """

    def __init__(self, dy: int = 0, dx: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dy, self.dx = int(dy), int(dx)

    def call(self, x):
        # Output row i reads input row i - dy, clipped to the image: the edge repeats.
        rows = np.clip(np.arange(x.shape[1]) - self.dy, 0, x.shape[1] - 1)
        cols = np.clip(np.arange(x.shape[2]) - self.dx, 0, x.shape[2] - 1)
        return keras.ops.take(keras.ops.take(x, rows, axis=1), cols, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "dy": self.dy, "dx": self.dx}


@keras.saving.register_keras_serializable(package="gantransfer")
class LogMeanSoftmax(layers.Layer):
    """The log of the mean softmax of several logits: an average of predicted probabilities that a
    softmax (or a cross-entropy from logits) reads back as those probabilities. Always float32.

    Example:
        >>> a, b = np.log([[0.8, 0.2]]), np.log([[0.4, 0.6]])
        >>> np.exp(np.asarray(LogMeanSoftmax()([a, b]), "float64")).round(3).tolist()
        [[0.6, 0.4]]
    """

    def __init__(self, **kwargs) -> None:
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)

    def call(self, logits):
        probabilities = [keras.ops.softmax(keras.ops.cast(z, "float32"), axis=-1) for z in logits]
        mean = keras.ops.mean(keras.ops.stack(probabilities, axis=0), axis=0)
        return keras.ops.log(keras.ops.maximum(mean, 1e-30))

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def shift_averaged(model: keras.Model, shift: int) -> keras.Model:
    """``model`` predicting the mean of its softmax over each image and the image's copies moved
    down, up, right and left by every distance from 1 to ``shift`` pixels (``transfer.test_shift``).

    The copies are those the probes and frozen heads train beside each labeled image
    (``transfer.probe_shift``): test-time augmentation asks the model about the same small moves it
    was taught to ignore, and averages its answers. The new model's output is the log of that mean
    probability, so its argmax is the averaged prediction, a softmax of it gives the averaged
    probabilities back, and an attack's cross-entropy from logits reads it as it reads any
    classifier's. It shares ``model``'s layers, so it holds no new weights.

    Args:
        model: A classifier from pixels to logits.
        shift: Largest move in pixels, >= 1; ``1 + 4 * shift`` views of each image.

    Returns:
        The averaged classifier, named as ``model``.

    Example:
        >>> from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
        >>> net = build_classifier(build_gan_trunk(TrunkArchitecture(32, 1, width=0.125)), 10)
        >>> averaged = shift_averaged(net, 1)
        >>> averaged.output_shape, len(averaged.get_weights()) == len(net.get_weights())
        ((None, 10), True)
    """
    if shift < 1:
        raise ValueError(f"shift must be >= 1 pixel, got {shift}")
    inputs = keras.Input(model.input_shape[1:], name="pixels")
    moved = [PixelShift(dy * distance, dx * distance, name=f"moved_{dy * distance}_{dx * distance}")
             for distance in range(1, shift + 1) for dy, dx in SHIFT_DIRECTIONS]
    assert len(moved) == copy_count(shift)
    views = [inputs] + [move(inputs) for move in moved]
    outputs = LogMeanSoftmax(name="mean_of_moved_views")([model(view) for view in views])
    return keras.Model(inputs, outputs, name=model.name)


def member_seed(seed: int, member: int) -> int:
    """The seed of an ensemble's ``member``-th model (``transfer.ensemble``): the first is ``seed``
    itself, so a one-member ensemble is the single model.

    Example:
        >>> member_seed(3, 0), member_seed(3, 2)
        (3, 2003)
    """
    return seed + 1000 * member


def mean_of(models: list[keras.Model]) -> keras.Model:
    """Classifiers of the same inputs as one that predicts the mean of their softmax: a deep
    ensemble (Lakshminarayanan et al., 2017). Its output is the log of the mean probability, as
    :func:`shift_averaged`'s, and one model is returned as it is.

    Example:
        >>> from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
        >>> nets = [build_classifier(build_gan_trunk(TrunkArchitecture(32, 1, width=0.125)), 10)
        ...         for _ in range(3)]
        >>> ensemble = mean_of(nets)
        >>> ensemble.output_shape, ensemble.count_params() == 3 * nets[0].count_params()
        ((None, 10), True)
    """
    if len(models) == 1:
        return models[0]
    inputs = keras.Input(models[0].input_shape[1:], name="inputs")
    # Each member under a name of its own: the members of one build share their names.
    members = [keras.Model(m.input, m.output, name=f"member_{i}") for i, m in enumerate(models)]
    outputs = LogMeanSoftmax(name="mean_of_members")([member(inputs) for member in members])
    return keras.Model(inputs, outputs, name=models[0].name)


def first_member(model: keras.Model) -> keras.Model:
    """The single classifier inside the toolkit's averages: a :func:`shift_averaged` model's
    (its prediction for the unmoved image) and a :func:`mean_of` ensemble's first member, both
    peeled when nested; any other model as it is. Grad-CAM explains this one.

    Example:
        >>> from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
        >>> net = build_classifier(build_gan_trunk(TrunkArchitecture(32, 1, width=0.125)), 10)
        >>> first_member(shift_averaged(net, 1)) is net, first_member(net) is net
        (True, True)
        >>> first_member(shift_averaged(mean_of([net, net]), 1)).name
        'member_0'
    """
    while any(isinstance(layer, LogMeanSoftmax) for layer in model.layers):
        model = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    return model


def build_classifier(trunk: keras.Model, num_classes: int, *, head: keras.Model | None = None,
                     kind: str = "gap", dropout: float = 0.0, l2: float = 0.0,
                     trunk_training: bool | None = None,
                     augment: keras.Sequential | None = None, name: str = "classifier") -> keras.Model:
    """Puts a head on a trunk.

    Args:
        trunk: Raw pixels to a feature map.
        num_classes: Number of classes.
        head: A trained head to reuse; a new one is built when None.
        kind: The new head's pooling (:func:`build_head`).
        dropout: Head dropout rate.
        l2: Head L2 weight decay.
        trunk_training: False calls the trunk in inference mode always (transfer: BatchNorm keeps
            its statistics even when fine-tuned, as in the Keras transfer-learning guide); None lets
            ``fit`` decide (training from scratch).
        augment: Augmentation layers applied to the pixels before the trunk.
        name: Model name.

    Returns:
        A ``keras.Model`` from pixels to logits.

    Example:
        >>> from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
        >>> model = build_classifier(build_gan_trunk(TrunkArchitecture(32, 1, width=0.125)), 10)
        >>> model.output_shape
        (None, 10)
    """
    inputs = keras.Input(trunk.input_shape[1:], name="pixels")
    x = augment(inputs) if augment is not None else inputs
    features = trunk(x, training=False) if trunk_training is False else trunk(x)
    head = head or build_head(tuple(trunk.output_shape[1:]), num_classes, kind=kind,
                              dropout=dropout, l2=l2)
    return keras.Model(inputs, head(features), name=name)


def with_features(classifier: keras.Model) -> keras.Model:
    """A model on the same layers as a :func:`build_classifier` classifier (the same weights) with
    two outputs: the logits, and the trunk's feature map that the head reads. Its layers run as
    ``fit`` or ``predict`` says (``trunk_training=None``'s classifier).

    Example:
        >>> from gantransfer.transfer_learning.trunks import TrunkArchitecture, build_gan_trunk
        >>> model = build_classifier(build_gan_trunk(TrunkArchitecture(32, 1, width=0.125)), 10)
        >>> [tuple(shape) for shape in with_features(model).output_shape]
        [(None, 10), (None, 4, 4, 32)]
    """
    inputs = keras.Input(classifier.input_shape[1:], name="pixels")
    x = inputs
    *body, head = classifier.layers[1:]  # after the input: any augmentation, the trunk; the head
    for layer in body:
        x = layer(x)
    return keras.Model(inputs, [head(x), x], name=f"{classifier.name}_with_features")


def load_classifier(path: str | Path) -> keras.Model:
    """Loads a classifier that ``compare`` or ``transfer`` saved (a run's ``models/*.keras``).

    Some of those models hold the toolkit's own layers: a linear probe its
    :class:`~gantransfer.gan.features.GridMaxPooling`, an ImageNet strategy its
    :class:`~gantransfer.transfer_learning.backbones.BackbonePreprocess`. Keras rebuilds them only
    once the modules that register them are imported, so ``keras.saving.load_model`` alone fails
    on them in a fresh interpreter ("Could not locate class 'GridMaxPooling'"). This passes them to
    Keras itself.

    Args:
        path: A ``.keras`` classifier file.

    Returns:
        The model, uncompiled: pixels in [0, 255] in, class logits out.

    Raises:
        GantransferError: If ``path`` is not a file, or not a Keras model.

    Example:
        >>> model = load_classifier("outputs/cmp/models/gan-linear-probe_lpc-10_seed-0.keras")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise GantransferError(f"{str(path)!r} is not a file; pass a classifier .keras file, e.g. "
                               "from a compare or transfer run's models/ folder")
    layers_of_ours = {"gantransfer>GridMaxPooling": GridMaxPooling,
                      "gantransfer>BackbonePreprocess": BackbonePreprocess,
                      "gantransfer>PixelShift": PixelShift,
                      "gantransfer>LogMeanSoftmax": LogMeanSoftmax}
    try:
        return keras.saving.load_model(path, compile=False, custom_objects=layers_of_ours)
    except Exception as error:  # Keras raises many kinds for a foreign or corrupt file.
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise GantransferError(f"cannot load {str(path)!r} as a Keras model: {first}") from None


def count_parameters(model: keras.Model) -> tuple[int, int]:
    """Returns ``(trainable, total)`` parameter counts."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return trainable, int(model.count_params())


class ValidationScore(keras.callbacks.Callback):
    """Adds ``val_score`` = val accuracy, ties broken by lower val loss, for early stopping.

    With a few labels per class, validation accuracy moves in coarse steps and often ties; the small
    loss term prefers the more confident of two equally accurate epochs.
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None and "val_accuracy" in logs:
            logs["val_score"] = float(logs["val_accuracy"]) - 1e-3 * float(logs.get("val_loss", 0.0))


class RestoreBest(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best ``val_score`` and puts them back at the end.

    Every epoch counts, the first ones included: the weights kept are the weights whose validation
    score model selection reads. (``EarlyStopping(restore_best_weights=True, start_from_epoch=n)``
    ignores the first ``n`` epochs when it restores, and keeps the last weights when training ends
    before epoch ``n``, so its weights and the history's best epoch could differ.)

    Example:
        >>> callback = RestoreBest()
        >>> callback.best_epoch is None
        True
    """

    def __init__(self) -> None:
        super().__init__()
        self.best_score = -math.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.best_score, self.best_epoch, self.best_weights = -math.inf, None, None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        score = (logs or {}).get("val_score")
        if score is not None and float(score) > self.best_score:  # the first of equal scores wins
            self.best_score, self.best_epoch = float(score), epoch
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class EpochBar(keras.callbacks.Callback):
    """One progress bar per model: epochs done out of the maximum, with the validation figures."""

    def __init__(self, max_epochs: int, label: str = "") -> None:
        super().__init__()
        self.max_epochs = max_epochs
        self.label = label

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.label:
            logger.info("%s", self.label)
        self.bar = keras.utils.Progbar(self.max_epochs, unit_name="epoch",
                                       stateful_metrics=["loss", "val_loss", "val_accuracy"])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        shown = [(k, float(logs[k])) for k in ("loss", "val_loss", "val_accuracy") if k in logs]
        self.bar.update(epoch + 1, values=shown, finalize=epoch + 1 >= self.max_epochs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.bar._seen_so_far < self.max_epochs:
            self.bar.update(self.bar._seen_so_far, finalize=True)


class StepBar(keras.callbacks.Callback):
    """One progress bar per model over all its steps, across epochs, with the named metrics: for
    a fit of many short epochs or few long ones (a semi-supervised GAN's passes).

    Example:
        >>> bar = StepBar(4, ("supervised_loss",), verbose=0)  # 1 (the default) draws it
        >>> bar.on_train_begin()
        >>> bar.on_train_batch_end(0, {"supervised_loss": 1.5})
        >>> bar.done
        1
    """

    def __init__(self, steps: int, shown: tuple[str, ...] = (), label: str = "",
                 verbose: int = 1) -> None:
        super().__init__()
        self.steps = steps
        self.shown = shown
        self.label = label
        self.verbose = verbose
        self.done = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.label:
            logger.info("%s", self.label)
        self.bar = keras.utils.Progbar(self.steps, unit_name="step", stateful_metrics=self.shown,
                                       verbose=self.verbose)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self.done += 1
        self.bar.update(self.done, values=[(k, float(logs[k])) for k in self.shown if k in logs],
                        finalize=self.done >= self.steps)


STEPS_PER_EXECUTION = 16  # fewer Python round trips per epoch; the same steps and results


def make_dataset(x: np.ndarray | Views, y: np.ndarray, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> Any:
    """In-memory ``(x, y)`` batches for ``fit``, reshuffled every epoch from ``seed``.

    The backend's own pipeline (:func:`gantransfer.backend.make_dataset`): for a head on cached
    features, where an epoch is a few cheap steps, it cuts the per-epoch overhead of ``fit`` on
    NumPy arrays by about two thirds. :class:`~gantransfer.data.batches.Views` are served by
    :class:`~gantransfer.data.batches.ViewBatches`, one view of each image drawn every epoch.
    """
    if isinstance(x, Views):
        return ViewBatches(x, y, batch_size, shuffle=shuffle, seed=seed)
    return backend.make_dataset(x, y, batch_size, shuffle=shuffle, seed=seed)


@dataclass
class FitOutcome:
    """The model a validation-selected fit kept, and how it got there."""

    model: keras.Model
    learning_rate: float
    epochs: int
    best_epoch: int
    val_accuracy: float
    val_loss: float
    history: dict[str, list[float]] = field(default_factory=dict)
    wall_time_s: float = 0.0
    selection: str = "validation split"
    # The fit's model back at its start with a given learning rate, for a refit that reuses it.
    restart: Callable[[float], keras.Model] | None = field(default=None, repr=False)

    @property
    def score(self) -> float:
        return self.val_accuracy - 1e-3 * self.val_loss


def _steps_per_execution() -> int:
    """:data:`STEPS_PER_EXECUTION` on one device; 1 across replicas, where TensorFlow's
    multi-step loop under a ``tf.distribute`` strategy fails to build (a placeholder it never feeds).
    """
    return STEPS_PER_EXECUTION if backend.replicas() == 1 else 1


def _compiled(build: Callable[[], keras.Model], learning_rate: float, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], steps_per_execution=_steps_per_execution(),
                  jit_compile=runtime.current().jit_compile)
    return model


def fit_selected(build: Callable[[], keras.Model], train: tuple[np.ndarray | Views, np.ndarray],
                 val: tuple[np.ndarray | Views, np.ndarray], *, learning_rates: list[float],
                 max_epochs: int, patience: int, batch_size: int, seed: int,
                 progress: str | None = None) -> FitOutcome:
    """Trains one model per learning rate with early stopping on validation; keeps the best.

    Each candidate starts from the same seed, trains until validation stops improving for
    ``patience`` epochs, and rolls back to its best epoch. The candidate with the best validation
    accuracy (ties: lower validation loss) wins.

    Args:
        build: Returns a fresh, uncompiled model (or one to continue from, for fine-tuning).
        train: ``(x, y)`` training inputs and integer labels.
        val: ``(x, y)`` validation inputs and labels, from the labeled budget.
        learning_rates: Adam learning rates to try.
        max_epochs: Upper bound on epochs.
        patience: Epochs without improvement before stopping.
        batch_size: Images per step.
        seed: Seed of initialisation, shuffling and dropout.
        progress: A label to show a per-model progress bar under, or None for silence.

    Returns:
        The winning :class:`FitOutcome`.
    """
    # One model, restarted for each rate: Keras traces its train and test functions once.
    restarts = _Restarts(build, seed)
    best: FitOutcome | None = None
    best_weights: list[np.ndarray] = []
    for learning_rate in learning_rates:
        outcome = _fit_until_best(restarts.start(learning_rate), train, val,
                                  learning_rate=learning_rate, max_epochs=max_epochs,
                                  patience=patience, batch_size=batch_size, seed=seed,
                                  progress=progress)
        if best is None or outcome.score > best.score:
            if best is not None:
                outcome.wall_time_s += best.wall_time_s
            best, best_weights = outcome, outcome.model.get_weights()
        else:
            best.wall_time_s += outcome.wall_time_s
    assert best is not None, "learning_rates must not be empty"
    best.model.set_weights(best_weights)
    best.restart = restarts.start
    return best


def _fit_until_best(model: keras.Model, train: tuple[np.ndarray | Views, np.ndarray],
                    val: tuple[np.ndarray | Views, np.ndarray], *, learning_rate: float,
                    max_epochs: int, patience: int, batch_size: int, seed: int,
                    progress: str | None) -> FitOutcome:
    """Trains a compiled model until validation stops improving; it ends on its best epoch.
    Validation reads the images as they are (:func:`~gantransfer.data.batches.originals`)."""
    started = time.perf_counter()
    restore = RestoreBest()
    callbacks: list[keras.callbacks.Callback] = [
        ValidationScore(),  # first: the callbacks after it read the val_score it adds
        restore,
        # No stopping in the first `patience` epochs: with a few labels an epoch is a few steps.
        keras.callbacks.EarlyStopping(monitor="val_score", mode="max", patience=patience,
                                      start_from_epoch=patience),
    ]
    if progress is not None:
        callbacks.append(EpochBar(max_epochs, f"{progress}, learning rate {learning_rate:g}"))
    history = model.fit(make_dataset(*train, batch_size, shuffle=True, seed=seed),
                        validation_data=make_dataset(originals(val[0]), val[1], 256),
                        epochs=max_epochs,
                        callbacks=callbacks, verbose=0, shuffle=False).history
    scores = history["val_score"]
    # The epoch whose weights the model now holds (the last one if no score was ever finite).
    best_index = restore.best_epoch if restore.best_epoch is not None else len(scores) - 1
    return FitOutcome(model=model, learning_rate=learning_rate, epochs=len(scores),
                      best_epoch=best_index + 1,
                      val_accuracy=float(history["val_accuracy"][best_index]),
                      val_loss=float(history["val_loss"][best_index]),
                      history={k: [float(v) for v in history[k]]
                               for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
                      wall_time_s=time.perf_counter() - started)


class _Restarts:
    """One compiled model trained again and again from the same start: a fresh model each time,
    without tracing Keras's train and test functions again (which costs more than a small head's
    whole fit). Each restart puts back the initial weights and the optimizer's state as built (its
    moments and step count zero; under float16, its loss scale the initial one) and sets the
    learning rate."""

    def __init__(self, build: Callable[[], keras.Model], seed: int) -> None:
        self.model = _compiled(build, 1e-3, seed)
        self.initial = self.model.get_weights()
        optimizer = self.model.optimizer
        if not optimizer.built:  # as fit would build it, so the state to restart from exists now
            optimizer.build(self.model.trainable_variables)
        self.initial_state = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]

    def start(self, learning_rate: float) -> keras.Model:
        self.model.set_weights(self.initial)
        for variable, value in zip(self.model.optimizer.variables, self.initial_state):
            variable.assign(value)
        self.model.optimizer.learning_rate = learning_rate
        return self.model


def refit(build: Callable[[], keras.Model], data: tuple[np.ndarray | Views, np.ndarray], *,
          learning_rate: float, epochs: int, batch_size: int, seed: int,
          progress: str | None = None, model: keras.Model | None = None) -> keras.Model:
    """Trains the final model on every labeled image with the choices validation made.

    No image is held out, so nothing stops training early: it runs for exactly ``epochs`` (the best
    epoch that validation found) at ``learning_rate``, from the same seed.

    Args:
        build: Returns a fresh, uncompiled model (or one to continue from, for fine-tuning).
        data: ``(x, y)``: the whole label budget, training and validation images together.
        learning_rate: The Adam rate validation chose.
        epochs: The number of epochs validation chose.
        batch_size: Images per step.
        seed: Seed of initialisation, shuffling and dropout.
        progress: A label to show a progress bar under, or None for silence.
        model: A compiled model at its start to train instead of a new one from ``build``
            (:attr:`FitOutcome.restart`): the same model, without tracing it again.

    Returns:
        The trained model.
    """
    if model is None:
        model = _compiled(build, learning_rate, seed)
    else:
        model.optimizer.learning_rate = learning_rate
    return _train_for(model, data, epochs=epochs, batch_size=batch_size, seed=seed,
                      progress=progress)


def _train_for(model: keras.Model, data: tuple[np.ndarray | Views, np.ndarray], *, epochs: int,
               batch_size: int, seed: int, progress: str | None) -> keras.Model:
    """Trains a compiled model on ``data`` for exactly ``epochs``: every refit goes through here."""
    callbacks = [] if progress is None else [EpochBar(epochs, f"{progress}, refit on all labels")]
    model.fit(make_dataset(*data, batch_size, shuffle=True, seed=seed), epochs=epochs,
              callbacks=callbacks, verbose=0, shuffle=False)
    return model


def fit_cross_validated(build: Callable[[], keras.Model],
                        data: tuple[np.ndarray | Views, np.ndarray], *,
                        folds: int, learning_rates: list[float], max_epochs: int, patience: int,
                        batch_size: int, seed: int, progress: str | None = None,
                        copies: tuple[np.ndarray, ...] = ()) -> FitOutcome:
    """Chooses the learning rate and epochs by stratified k-fold CV, then refits on all of ``data``.

    Every fold validates on images the others train on, so each labeled image helps choose, and
    the choice rests on the whole budget rather than one small split. A learning rate's score is
    its mean over folds of :func:`fit_selected`'s score; the epochs are the median of the folds'
    best epochs. The final model is :func:`refit` on every image of ``data``.

    Args:
        build: Returns a fresh, uncompiled model.
        data: ``(x, y)``: the whole label budget.
        folds: Number of folds (capped at the smallest class's size).
        learning_rates: Adam rates to try.
        max_epochs: Upper bound on epochs per fold.
        patience: Early-stopping patience in each fold.
        batch_size: Images per step.
        seed: Seed of the folds, initialisation, shuffling and dropout.
        progress: A label for a progress bar per fit, or None for silence.
        copies: Other inputs of the same images, row for row with ``x`` (a cached-feature head's
            features of moved copies): each fold and the refit also train on the copies of the
            images they train on; folds validate on ``x`` alone, and no image's copy is validated
            on where the image trains.

    Returns:
        A :class:`FitOutcome` of the refitted model: the chosen rate and epochs, the mean fold
        validation accuracy and loss, and the first fold's history at the chosen rate.
    """
    started = time.perf_counter()
    x, y = data
    pairs = fold_indices(y, folds, seed)
    restarts = _Restarts(build, seed)
    best: tuple[float, float, list[FitOutcome]] | None = None
    for learning_rate in learning_rates:
        runs = []
        for i, (train, val) in enumerate(pairs):
            run = _fit_until_best(restarts.start(learning_rate), with_copies(data, copies, train),
                                  (x[val], y[val]), learning_rate=learning_rate,
                                  max_epochs=max_epochs, patience=patience,
                                  batch_size=batch_size, seed=seed,
                                  progress=None if progress is None else f"{progress}, fold {i + 1}")
            run.model = None  # the shared model moves on; only the numbers are kept
            runs.append(run)
        score = float(np.mean([run.score for run in runs]))
        if best is None or score > best[0]:
            best = (score, learning_rate, runs)
    assert best is not None, "learning_rates must not be empty"
    _, learning_rate, runs = best
    epochs = max(1, int(round(float(np.median([run.best_epoch for run in runs])))))
    model = _train_for(restarts.start(learning_rate), with_copies(data, copies), epochs=epochs,
                       batch_size=batch_size, seed=seed, progress=progress)
    first = runs[0]
    return FitOutcome(model=model, learning_rate=learning_rate, epochs=epochs, best_epoch=epochs,
                      val_accuracy=float(np.mean([run.val_accuracy for run in runs])),
                      val_loss=float(np.mean([run.val_loss for run in runs])),
                      history=first.history, wall_time_s=time.perf_counter() - started,
                      selection=f"{len(pairs)}-fold cross-validation over the budget, then a refit "
                                "on all of it", restart=restarts.start)


@dataclass
class FinetuneChoice:
    """What :func:`finetune_cross_validated` chose and trained.

    ``classifier`` is the final model: the trunk with the head refitted on every labeled image and,
    when ``finetune`` is not None, everything then fine-tuned on them too. ``finetune`` holds the
    fine-tuning phase's rate, epochs (the median of the folds' best) and mean fold scores;
    ``finetune_score`` is that mean score and ``finetune_history`` the first fold's fine-tuning
    curves, kept even when fine-tuning lost; ``folds`` is how many folds chose.
    """

    classifier: keras.Model
    head: FitOutcome
    finetune: FitOutcome | None
    finetune_score: float
    folds: int
    finetune_history: dict[str, list[float]] = field(default_factory=dict)
    # When fine-tuning won over the folds but its refit failed (refit_failed): (the fine-tuned
    # refit's accuracy on the budget, the folds' mean fine-tuning validation accuracy); the
    # head-only model is kept.
    discarded_refit: tuple[float, float] | None = None


def budget_accuracy(model: keras.Model, x: np.ndarray | Views, y: np.ndarray) -> float:
    """Accuracy on the budget's own labeled images (never test images), as they are."""
    scores = model.predict(originals(x), batch_size=256, verbose=0)
    return float(np.mean(np.argmax(scores, axis=-1) == y))


def refit_failed(refit_fit: float, held_out: float) -> bool:
    """Whether a refit ended on a bad epoch: it fits its own training images (the whole budget)
    worse than validation scored the same choices on images they never trained on.

    A refit has no validation images to stop it, and at a high rate it can end on a bad epoch.
    A sound one fits the images it trained on at least as well as unseen ones. It is not held to
    the validated model's fit of its own training images: with a few labels that is often 100%,
    and at that ceiling a refit that fits 998 of 1,000 images would count as worse while
    validation says it generalises better.

    Example:
        >>> refit_failed(0.998, held_out=0.853), refit_failed(0.41, held_out=0.853)
        (False, True)
    """
    return refit_fit < held_out


def finetune_cross_validated(trunk: keras.Model, build_head: Callable[[], keras.Model],
                             features: np.ndarray | Views, pixels: np.ndarray, y: np.ndarray, *,
                             folds: int, learning_rates: list[float], rate_factor: float,
                             max_epochs: int, patience: int, batch_size: int, seed: int,
                             progress: str | None = None,
                             whole: Callable[[keras.Model], keras.Model] | None = None,
                             copies: tuple[np.ndarray, ...] = ()) -> FinetuneChoice:
    """A fine-tuning strategy chosen and judged by stratified k-fold CV over the whole budget.

    1. The head's learning rate and epochs are chosen by :func:`fit_cross_validated` on the frozen
       trunk's ``features`` of the budget (or on the pixels themselves, through the frozen trunk,
       when the head must train through them: see ``whole``).
    2. In each fold, the trunk starts from its pretrained weights, a head trains on the fold's
       features at that rate for those epochs, then everything trains on the fold's pixels at the
       rate times ``rate_factor``, stopping early on the fold's validation images.
    3. Fine-tuning is kept when its mean fold score beats the head's; then the final model is the
       head refitted on every image, fine-tuned on every image for the median of the folds' best
       epochs. Otherwise it is the refitted head on the pretrained trunk.
    4. A fine-tuning refit has no validation images to stop it at a good epoch, and at a high rate
       it can end on a bad one: when it fits the budget's own images worse than the folds'
       fine-tuning scored on images it had not trained on (:func:`refit_failed`), it is
       discarded and the refitted head on the pretrained trunk is kept (``discarded_refit``).

    Every choice rests on every labeled image, and the final model trains on all of them; no test
    image is involved. One classifier is compiled and restarted for every fold.

    Args:
        trunk: The pretrained trunk (its weights now are where every fold starts).
        build_head: Returns a fresh, uncompiled head on the trunk's features.
        features: What the head phase reads: the frozen trunk's features of ``pixels`` (or
            ``pixels`` themselves, with ``whole``).
        pixels: The budget's images, ``(n, side, side, channels)``.
        y: Their labels.
        folds: Number of folds (capped at the smallest class's size).
        learning_rates: Adam rates to try for the head.
        rate_factor: Fine-tuning runs at the head's rate times this.
        max_epochs: Upper bound on epochs per fit.
        patience: Early-stopping patience.
        batch_size: Images per step.
        seed: Seed of the folds, initialisation, shuffling and dropout.
        progress: A label for a progress bar per fit, or None for silence.
        whole: The model that fine-tunes everything, given the head model; it must share the
            head model's layers. By default the head model reads cached ``features`` and the whole
            model is the trunk under it; a head on cached views of augmented images
            (:class:`~gantransfer.data.batches.Views`) passes one with the augmentation in front. A head that trains through the pixels (augmentation or
            adversarial training change the trunk's inputs every step) passes ``features`` equal to
            ``pixels``, a ``build_head`` that returns the whole pixel classifier with the trunk
            frozen, and a ``whole`` that returns a second model on its layers (compiled on its
            own with the trunk trainable: each model keeps the trainable set it was built with).
        copies: The head phase's inputs of moved copies of the images, row for row with
            ``features`` (:func:`fit_cross_validated`): wherever the head trains (choosing, in
            each fold, the refit), it also trains on the copies of its images. Fine-tuning trains
            on ``pixels`` alone, and every fold validates on them alone.

    Returns:
        A :class:`FinetuneChoice`.
    """
    started = time.perf_counter()
    if copies and whole is not None:
        raise ValueError("copies are cached features of moved images: a head that trains "
                         "through the pixels (whole) takes none")
    head = fit_cross_validated(build_head, (features, y), folds=folds,
                               learning_rates=learning_rates, max_epochs=max_epochs,
                               patience=patience, batch_size=batch_size, seed=seed,
                               progress=None if progress is None else f"{progress}, head",
                               copies=copies)
    rate = head.learning_rate * rate_factor
    assert head.restart is not None, "fit_cross_validated returns its model's restart"
    refitted = head.model.get_weights()  # the head refitted on every image
    trunk.trainable = True  # its BatchNorm stays in inference mode: it is called with training=False
    # The cross-validated head model itself is the classifier's head: no second head is traced.
    classifier = (whole(head.model) if whole is not None else
                  build_classifier(trunk, int(head.model.output_shape[-1]), head=head.model,
                                   trunk_training=False))
    models = _Restarts(lambda: classifier, seed)  # the trunk's weights now are every fold's start
    runs = []
    pairs = fold_indices(y, folds, seed)
    for i, (train, val) in enumerate(pairs):
        model = models.start(rate)
        trunk.trainable = False  # the head model trains with the trainable set it was built with
        _train_for(head.restart(head.learning_rate), with_copies((features, y), copies, train),
                   epochs=head.best_epoch, batch_size=batch_size, seed=seed, progress=None)
        trunk.trainable = True
        label = None if progress is None else f"{progress}, fine-tuning, fold {i + 1}"
        run = _fit_until_best(model, (pixels[train], y[train]), (pixels[val], y[val]),
                              learning_rate=rate, max_epochs=max_epochs, patience=patience,
                              batch_size=batch_size, seed=seed, progress=label)
        run.model = None  # the shared model moves on; only the numbers are kept
        runs.append(run)
    score = float(np.mean([run.score for run in runs]))
    model = models.start(rate)
    head.model.set_weights(refitted)
    finetune, discarded = None, None
    if score > head.score:
        held_out = float(np.mean([run.val_accuracy for run in runs]))
        epochs = max(1, int(round(float(np.median([run.best_epoch for run in runs])))))
        _train_for(model, (pixels, y), epochs=epochs, batch_size=batch_size, seed=seed,
                   progress=None if progress is None else f"{progress}, fine-tuning")
        finetune_fit = budget_accuracy(model, pixels, y)
        if not refit_failed(finetune_fit, held_out):
            finetune = FitOutcome(model=model, learning_rate=rate, epochs=epochs,
                                  best_epoch=epochs,
                                  val_accuracy=float(np.mean([run.val_accuracy for run in runs])),
                                  val_loss=float(np.mean([run.val_loss for run in runs])),
                                  history=runs[0].history,
                                  wall_time_s=time.perf_counter() - started)
        else:
            discarded = (finetune_fit, held_out)
            model = models.start(rate)  # the pretrained trunk again, under the refitted head
            head.model.set_weights(refitted)
    if finetune is None:
        trunk.trainable = False
    return FinetuneChoice(classifier=model, head=head, finetune=finetune, finetune_score=score,
                          folds=len(pairs), finetune_history=runs[0].history,
                          discarded_refit=discarded)
