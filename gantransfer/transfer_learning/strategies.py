"""The transfer strategies' runners: for each name in the strategy registry, the function that
trains and evaluates one model.

The facts about a strategy (family, needs, description) are in :mod:`gantransfer.registry`; here
each runner is registered against a registry name with :func:`runs`, into :data:`RUNNERS`, and the
module checks at import that every registry entry has exactly one runner.

Each strategy gets the same care: the same labeled budget split into train and validation, learning
rates chosen and early stopping done on validation, optional augmentation, and one touch of the test
set at the end. Frozen strategies without augmentation compute the frozen trunk's features once and
train the head on them (:func:`cached_features`), which gives the same model much faster.

A runner returns a :class:`StrategyOutcome`: the model, its test predictions and the fields it
knows of its :class:`~gantransfer.evaluation.results.StrategyResult`; the protocol adds the budget,
the seed and the test metrics.

Example:
    >>> from gantransfer.registry import STRATEGIES
    >>> sorted(RUNNERS) == sorted(STRATEGIES)
    True
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import keras
import numpy as np

from gantransfer.config import TransferConfig
from gantransfer.errors import ConfigError, GantransferError
from gantransfer.registry import STRATEGIES, strategy
from gantransfer.transfer_learning.classifiers import (augmentation, build_classifier, build_head,
                                              count_parameters, fit_selected)
from gantransfer.transfer_learning.probe import (fit_probe, pixel_features, probe_as_keras,
                                        probe_features)
from gantransfer.transfer_learning.trunks import (TrunkArchitecture, build_gan_trunk, reestimate_batchnorm,
                                         trunk_from_discriminator)

logger = logging.getLogger(__name__)


class StrategySkipped(GantransferError):
    """A strategy cannot run here (e.g. no ImageNet weights); the comparison goes on without it."""


@dataclass
class Split:
    """One labeled budget drawn with one seed, plus the test set and real unlabeled images.

    Pixels are float32 in [0, 255], shaped for the trunk.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    unlabeled: np.ndarray
    num_classes: int
    seed: int


@dataclass
class StrategyContext:
    """What every strategy may draw on."""

    split: Split
    settings: TransferConfig  # the config's transfer section: the same for every strategy
    architecture: TrunkArchitecture
    discriminator: keras.Model | None = None
    verbose: bool = False
    label: str = ""


@dataclass
class StrategyOutcome:
    """A trained model, its test predictions, and its fields of the results (``StrategyResult``'s
    names: ``train_time_s``, ``learning_rate``, ``notes``, ...)."""

    model: Any
    predictions: np.ndarray
    record: dict[str, Any]


def _record(**values: Any) -> dict[str, Any]:
    base = {"status": "ok", "reason": None, "learning_rate": None, "C": None, "phase_kept": None,
            "history": {}, "notes": [], "epochs": 0}
    base.update(values)
    return base


Runner = Callable[[StrategyContext], StrategyOutcome]
# Strategy name (a key of gantransfer.registry.STRATEGIES) -> the function that runs it.
RUNNERS: dict[str, Runner] = {}


def runs(name: str) -> Callable[[Runner], Runner]:
    """Registers the decorated function as the runner of the registry's strategy ``name``.

    A name outside the registry, or one that already has a runner, is refused: the registry says
    what strategies exist, and each has exactly one runner.

    Example:
        >>> runs("gan-frozn")
        Traceback (most recent call last):
        ...
        gantransfer.errors.ConfigError: unknown strategy 'gan-frozn' (did you mean 'gan-frozen'?); ...
    """
    strategy(name)  # raises, listing the valid names, for a name outside the registry

    def register(runner: Runner) -> Runner:
        if name in RUNNERS:
            raise ConfigError(f"strategy {name!r} already runs with {RUNNERS[name].__name__}; "
                              f"a second runner {runner.__name__} is refused")
        RUNNERS[name] = runner
        return runner

    return register


def _progress(ctx: StrategyContext, what: str) -> str | None:
    return f"{ctx.label} {what}".strip() if ctx.verbose else None


def _prepared_trunk(ctx: StrategyContext, pretrained: bool, notes: list[str]) -> keras.Model:
    """A GAN-architecture trunk, trained or random, with BatchNorm statistics of real images."""
    if pretrained:
        if ctx.discriminator is None:
            raise StrategySkipped("no GAN discriminator was given (--gan-run or --discriminator)")
        trunk, report = trunk_from_discriminator(ctx.discriminator)
        notes.append(f"weights of {len(report.copied)} layers imported from the discriminator "
                     f"({', '.join(report.copied)}); its head ({', '.join(report.skipped)}) left out")
    else:
        keras.utils.set_random_seed(ctx.split.seed)
        trunk = build_gan_trunk(ctx.architecture)
        notes.append("the discriminator's architecture, randomly initialised (seeded)")
    images = ctx.split.unlabeled[:ctx.settings.bn_images]
    updated = reestimate_batchnorm(trunk, images)
    if updated:
        notes.append(f"BatchNorm statistics of {updated} layers re-estimated on {len(images)} real "
                     "training images of the target data")
    return trunk


def cached_features(trunk: keras.Model, split: Split,
                    batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frozen trunk's features of the train, validation and test images, computed once."""
    return tuple(trunk.predict(x, batch_size=batch_size, verbose=0)  # type: ignore[return-value]
                 for x in (split.x_train, split.x_val, split.x_test))


def _train_frozen(ctx: StrategyContext, trunk: keras.Model, notes: list[str]
                  ) -> tuple[keras.Model, Any, np.ndarray, float]:
    """Trains a head on a frozen trunk; returns (classifier, outcome, test predictions, time)."""
    s, split = ctx.settings, ctx.split
    trunk.trainable = False
    started = time.perf_counter()
    if not s.augments:
        f_train, f_val, f_test = cached_features(trunk, split)
        notes.append("frozen trunk features cached: computed once, the head trained on them")
        outcome = fit_selected(
            lambda: build_head(f_train.shape[1:], split.num_classes, dropout=s.dropout, l2=s.l2),
            (f_train, split.y_train), (f_val, split.y_val), learning_rates=s.learning_rates,
            max_epochs=s.max_epochs, patience=s.patience, batch_size=s.batch_size, seed=split.seed,
            progress=_progress(ctx, "head on cached features"))
        classifier = build_classifier(trunk, split.num_classes, head=outcome.model,
                                      trunk_training=False)
        predictions = np.argmax(outcome.model.predict(f_test, verbose=0), axis=-1)
    else:
        augment = augmentation(s.augment_flip, s.augment_shift)
        outcome = fit_selected(
            lambda: build_classifier(trunk, split.num_classes, dropout=s.dropout, l2=s.l2,
                                     trunk_training=False, augment=augment),
            (split.x_train, split.y_train), (split.x_val, split.y_val),
            learning_rates=s.learning_rates, max_epochs=s.max_epochs, patience=s.patience,
            batch_size=s.batch_size, seed=split.seed, progress=_progress(ctx, "head"))
        classifier = outcome.model
        predictions = np.argmax(classifier.predict(split.x_test, verbose=0), axis=-1)
    return classifier, outcome, predictions, time.perf_counter() - started


def _frozen_outcome(ctx: StrategyContext, trunk: keras.Model, notes: list[str]) -> StrategyOutcome:
    classifier, outcome, predictions, seconds = _train_frozen(ctx, trunk, notes)
    trainable, total = count_parameters(classifier)
    return StrategyOutcome(classifier, predictions, _record(
        learning_rate=outcome.learning_rate, epochs=outcome.epochs, history=outcome.history,
        train_time_s=seconds, trainable_params=trainable, total_params=total, notes=notes))


def _finetune_outcome(ctx: StrategyContext, trunk: keras.Model, notes: list[str]) -> StrategyOutcome:
    """Head first on the frozen trunk, then everything at a lower rate; keeps the better phase."""
    s, split = ctx.settings, ctx.split
    classifier, head_outcome, head_predictions, head_seconds = _train_frozen(ctx, trunk, notes)
    head_weights = classifier.get_weights()
    trunk.trainable = True  # BatchNorm stays in inference mode: the trunk is called with training=False
    started = time.perf_counter()
    rate = head_outcome.learning_rate * s.finetune_learning_rate_factor
    outcome = fit_selected(lambda: classifier, (split.x_train, split.y_train),
                           (split.x_val, split.y_val),
                           learning_rates=[rate], max_epochs=s.max_epochs, patience=s.patience,
                           batch_size=s.batch_size, seed=split.seed,
                           progress=_progress(ctx, "fine-tuning everything"))
    seconds = head_seconds + time.perf_counter() - started
    history = {f"head_{k}": v for k, v in head_outcome.history.items()}
    history.update(outcome.history)
    epochs = head_outcome.epochs + outcome.epochs
    if outcome.score > head_outcome.score:
        phase, predictions = "finetune", np.argmax(classifier.predict(split.x_test, verbose=0), -1)
        learning_rate = rate
    else:
        classifier.set_weights(head_weights)
        trunk.trainable = False
        phase, predictions = "head", head_predictions
        learning_rate = head_outcome.learning_rate
        notes.append("fine-tuning did not improve validation accuracy; the head-only phase is kept")
    trainable, total = count_parameters(classifier)
    return StrategyOutcome(classifier, predictions, _record(
        learning_rate=learning_rate, epochs=epochs, history=history, phase_kept=phase,
        train_time_s=seconds, trainable_params=trainable, total_params=total, notes=notes))


def _probe_outcome(ctx: StrategyContext, trunk: keras.Model | None,
                   notes: list[str]) -> StrategyOutcome:
    """Fits a linear probe on the trunk's pooled features (or on pixels when trunk is None)."""
    s, split = ctx.settings, ctx.split
    started = time.perf_counter()
    features = pixel_features if trunk is None else (lambda x: probe_features(trunk, x))
    f_train, f_val, f_test = (features(x) for x in (split.x_train, split.x_val, split.x_test))
    outcome = fit_probe((f_train, split.y_train), (f_val, split.y_val), kind=s.probe,
                        Cs=s.probe_c, seed=split.seed)
    predictions = outcome.model.predict(f_test)
    coefficients = outcome.model[-1].coef_
    trainable = int(coefficients.size + np.size(outcome.model[-1].intercept_))
    seconds = time.perf_counter() - started
    notes.append(f"{s.probe} probe on {f_train.shape[1]} features, C chosen on validation; saved "
                 "as a Keras model (features, standardisation, linear layer)")
    model = probe_as_keras(outcome.model, split.x_train.shape[1:], split.num_classes, trunk)
    return StrategyOutcome(model, predictions, _record(
        C=outcome.C, epochs=0, train_time_s=seconds, trainable_params=trainable,
        total_params=model.count_params(), notes=notes))


@runs("scratch")
def run_scratch(ctx: StrategyContext) -> StrategyOutcome:
    """The discriminator's architecture, randomly initialised, all of it trained."""
    s, split = ctx.settings, ctx.split
    started = time.perf_counter()
    augment = augmentation(s.augment_flip, s.augment_shift)
    outcome = fit_selected(
        lambda: build_classifier(build_gan_trunk(ctx.architecture), split.num_classes,
                                 dropout=s.dropout, l2=s.l2, trunk_training=None, augment=augment),
        (split.x_train, split.y_train), (split.x_val, split.y_val), learning_rates=s.learning_rates,
        max_epochs=s.max_epochs, patience=s.patience, batch_size=s.batch_size, seed=split.seed,
        progress=_progress(ctx, "from scratch"))
    predictions = np.argmax(outcome.model.predict(split.x_test, verbose=0), axis=-1)
    trainable, total = count_parameters(outcome.model)
    return StrategyOutcome(outcome.model, predictions, _record(
        learning_rate=outcome.learning_rate, epochs=outcome.epochs, history=outcome.history,
        train_time_s=time.perf_counter() - started, trainable_params=trainable, total_params=total,
        notes=[strategy("scratch").description]))


@runs("gan-frozen")
def run_gan_frozen(ctx: StrategyContext) -> StrategyOutcome:
    """The trunk from the discriminator, frozen in inference mode; only the head trains."""
    notes: list[str] = []
    return _frozen_outcome(ctx, _prepared_trunk(ctx, True, notes), notes)


@runs("gan-finetune")
def run_gan_finetune(ctx: StrategyContext) -> StrategyOutcome:
    """The trunk from the discriminator: head first, then everything at a lower rate."""
    notes: list[str] = []
    return _finetune_outcome(ctx, _prepared_trunk(ctx, True, notes), notes)


@runs("gan-linear-probe")
def run_gan_linear_probe(ctx: StrategyContext) -> StrategyOutcome:
    """The DCGAN paper's protocol: all conv features max-pooled to 4x4, a linear classifier."""
    notes: list[str] = []
    return _probe_outcome(ctx, _prepared_trunk(ctx, True, notes), notes)


@runs("random-frozen")
def run_random_frozen(ctx: StrategyContext) -> StrategyOutcome:
    """Control: the discriminator's architecture, randomly initialised and frozen; the head trains."""
    notes: list[str] = []
    return _frozen_outcome(ctx, _prepared_trunk(ctx, False, notes), notes)


@runs("random-linear-probe")
def run_random_linear_probe(ctx: StrategyContext) -> StrategyOutcome:
    """Control: the linear-probe protocol on a random trunk of the same architecture."""
    notes: list[str] = []
    return _probe_outcome(ctx, _prepared_trunk(ctx, False, notes), notes)


@runs("pixels-linear")
def run_pixels_linear(ctx: StrategyContext) -> StrategyOutcome:
    """Control: the same linear classifier on raw pixels."""
    return _probe_outcome(ctx, None, ["raw pixels, no trunk"])


def _backbone(ctx: StrategyContext, notes: list[str]) -> keras.Model:
    from gantransfer.transfer_learning.backbones import BackboneWeightsUnavailable, build_backbone

    s = ctx.settings
    try:
        trunk = build_backbone(s.backbone, image_size=ctx.architecture.image_size,
                               channels=ctx.architecture.channels, weights=s.backbone_weights,
                               input_size=s.backbone_input_size, alpha=s.backbone_alpha)
    except BackboneWeightsUnavailable as error:
        raise StrategySkipped(str(error)) from None
    notes.append(f"{s.backbone} (alpha {s.backbone_alpha:g}) with {s.backbone_weights} weights, "
                 f"inputs resized to {s.backbone_input_size} px inside the model")
    return trunk


@runs("imagenet-frozen")
def run_imagenet_frozen(ctx: StrategyContext) -> StrategyOutcome:
    """An ImageNet backbone, frozen in inference mode; only the head trains."""
    notes: list[str] = []
    return _frozen_outcome(ctx, _backbone(ctx, notes), notes)


@runs("imagenet-finetune")
def run_imagenet_finetune(ctx: StrategyContext) -> StrategyOutcome:
    """An ImageNet backbone: head first, then everything at a lower rate."""
    notes: list[str] = []
    return _finetune_outcome(ctx, _backbone(ctx, notes), notes)


def _check_runners() -> None:
    """Every registry entry has a runner: a strategy added to the registry without one fails here,
    at import, not halfway through a comparison."""
    missing = [name for name in STRATEGIES if name not in RUNNERS]
    if missing:
        raise ImportError(f"strategies {', '.join(missing)} are in gantransfer.registry but have "
                          "no runner; register one with @runs(name) in "
                          "gantransfer.transfer_learning.strategies")


_check_runners()
