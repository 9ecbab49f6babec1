"""The transfer strategies' runners: for each name in the strategy registry, the function that
trains and evaluates one model.

The facts about a strategy (family, needs, description) are in :mod:`gantransfer.registry`; here
each runner is registered against a registry name with :func:`runs`, into :data:`RUNNERS`, and the
module checks at import that every registry entry has exactly one runner.

Each strategy gets the same care: the same labeled budget split into train and validation, learning
rates chosen and early stopping done on validation, optional augmentation, and one touch of the test
set at the end. Frozen strategies compute the frozen trunk's features once and train the head on
them (:func:`cached_features`), which gives the same model much faster. With augmentation they
compute the features of every view it makes (its shifts move by whole pixels), and the head draws
one view of each image every epoch (:func:`view_features`): what training through the augmentation
would show it, for the price of computing each view once.

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
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable

import keras
import numpy as np

from gantransfer.config import TransferConfig
from gantransfer.data.batches import Views
from gantransfer.errors import ConfigError, DataError, GantransferError
from gantransfer.gan.models import build_generator
from gantransfer.gan.semisupervised import FinalDecay, SemiSupervisedBatches, SemiSupervisedGAN
from gantransfer.registry import STRATEGIES, strategy
from gantransfer.runs import available_memory, check_memory
from gantransfer.robustness.training import AdversarialTraining, adversarially_trained, plain
from gantransfer.transfer_learning.classifiers import (FitOutcome, StepBar, apply_view,
                                                      augmentation, augmentation_views,
                                                      budget_accuracy,
                                                      build_classifier,
                                                      build_head, count_parameters,
                                                      fit_cross_validated, fit_selected,
                                                      finetune_cross_validated, mean_of,
                                                      member_seed, pooled_trunk, refit,
                                                      refit_failed, resolve_head,
                                                      with_features)
from gantransfer.evaluation.linear import predict_in_chunks, probe_memory
from gantransfer.transfer_learning.probe import (SHIFT_UP_TO_IMAGES, copy_count, describe_copies,
                                                fit_probe, fit_probe_cv, pixel_features,
                                                probe_as_keras, probe_features, probe_width,
                                                refit_probe, shifted_copies, with_copies)
from gantransfer.transfer_learning.trunks import (TrunkArchitecture, build_gan_trunk, reestimate_batchnorm,
                                         trunk_from_discriminator)

logger = logging.getLogger(__name__)


class StrategySkipped(GantransferError):
    """A strategy cannot run here (e.g. no ImageNet weights); the comparison goes on without it.

    Args:
        reason: What stops it, and what to change.
        every_budget: The reason holds at every label budget, so the strategy is skipped for the
            rest of the comparison; False for one that depends on the budget's size (memory), so
            that smaller budgets still run.
    """

    def __init__(self, reason: str, *, every_budget: bool = True) -> None:
        super().__init__(reason)
        self.every_budget = every_budget


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
    # up to n real unlabeled training images, in the seed's order (``unlabeled`` are the first)
    unlabeled_pool: Callable[[int], np.ndarray] | None = None

    def more_unlabeled(self, count: int) -> np.ndarray:
        """Up to ``count`` real unlabeled training images: from the pool when there is one."""
        if self.unlabeled_pool is None or count <= len(self.unlabeled):
            return self.unlabeled[:count]
        return self.unlabeled_pool(count)


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
            "history": {}, "notes": [], "epochs": 0, "head": None, "selection": None}
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


# The head each kind of trunk was pretrained with, which transfer.head=auto keeps
# (gantransfer.transfer_learning.classifiers.resolve_head).
GAN_ARCHITECTURE_HEAD = "flatten"  # the discriminator reads its flattened last map
IMAGENET_HEAD = "gap"  # keras.applications backbones were trained under global average pooling


def _all_labels(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The whole label budget: the training and validation images together, for a refit."""
    return (np.concatenate([split.x_train, split.x_val]),
            np.concatenate([split.y_train, split.y_val]))


def _headed(trunk: keras.Model, kind: str) -> keras.Model:
    """The trunk as the head of ``kind`` reads it: multi-block for ``pooled``, else as it is."""
    return pooled_trunk(trunk) if kind == "pooled" else trunk


def _describe_head(kind: str, setting: str) -> str:
    how = {"gap": "global average pooling", "flatten": "the flattened feature map",
           "pooled": "every conv block max-pooled to 4x4 and concatenated"}[kind]
    why = " (auto: the head the trunk was pretrained with)" if setting == "auto" else ""
    return f"head: {how}{why}"


REFITTED = "then a refit on all of it"  # how a refitted model's selection ends


def _keep_refit(held_out: float, refitted: float, notes: list[str]) -> bool:
    """Whether a refit is kept: unless it fits the whole budget worse than validation scored the
    validated model on images it had not trained on (:func:`refit_failed`). A refit has no
    validation images to stop it at a good epoch; at a high learning rate it can end on a bad one,
    and then the validated model is the safer."""
    if not refit_failed(refitted, held_out):
        return True
    notes.append(f"the refit on all labels fit them worse ({100 * refitted:.1f}%) than the "
                 f"validated model scored on its validation images ({100 * held_out:.1f}%), so "
                 "the validated model is kept")
    return False


def _refitted(outcome: FitOutcome, build: Any, data: tuple[np.ndarray, np.ndarray],
              ctx: StrategyContext, what: str, notes: list[str]) -> FitOutcome:
    """With ``transfer.refit``, the outcome's model trained again on ``data`` (the whole budget,
    the training and the validation images) at the chosen rate for the chosen epochs, unless that
    refit failed (:func:`_keep_refit`); without it, the outcome as it is."""
    s = ctx.settings
    if not s.refit:
        return outcome
    kept = outcome.model.get_weights()
    # The validated model itself is restarted and refitted (no second trace); its weights are
    # put back if the refit is not kept.
    model = refit(build, data, learning_rate=outcome.learning_rate, epochs=outcome.best_epoch,
                  batch_size=s.batch_size, seed=ctx.split.seed, progress=_progress(ctx, what),
                  model=outcome.restart(outcome.learning_rate) if outcome.restart else None)
    outcome.epochs += outcome.best_epoch
    if _keep_refit(outcome.val_accuracy, budget_accuracy(model, *data), notes):
        outcome.model = model
        outcome.selection = f"{outcome.selection}, {REFITTED}"
    else:
        outcome.model.set_weights(kept)
        outcome.selection = f"{outcome.selection} (its refit was discarded)"
    return outcome


def _final_fit(ctx: StrategyContext, build: Any, what: str, notes: list[str],
               inputs: tuple[np.ndarray | Views, np.ndarray | Views] | None = None,
               copies: tuple[np.ndarray, ...] = ()) -> FitOutcome:
    """A strategy's final model: with ``transfer.refit`` and ``transfer.cv_folds`` >= 2, the
    learning rate and epochs are chosen by stratified k-fold cross-validation over the whole budget
    and the model is refitted on all of it; otherwise they are chosen on the validation split, then
    refitted (:func:`_refitted`) when ``refit`` is on.

    ``inputs`` are what the model reads of the training and validation images: their pixels by
    default, or a frozen trunk's cached features of them (or of every view the augmentation makes
    of them: :class:`~gantransfer.data.batches.Views`). ``copies`` are its inputs of moved copies
    of the same images, row for row with the training then the validation images: every fit also
    trains on the copies of the images it trains on, and validates on originals only.

    With a few labels per class, the validation split holds two images of each class: a choice
    made on them is mostly noise, and a bad one (a rate too high) costs a network trained through
    pixels far more than a head on fixed features.
    """
    s, split = ctx.settings, ctx.split
    x_train, x_val = inputs if inputs is not None else (split.x_train, split.x_val)
    everything = (_joined(x_train, x_val), np.concatenate([split.y_train, split.y_val]))
    fit = dict(learning_rates=s.learning_rates, max_epochs=s.max_epochs, patience=s.patience,
               batch_size=s.batch_size, seed=split.seed, progress=_progress(ctx, what))
    if s.refit and s.cv_folds >= 2:
        outcome = fit_cross_validated(build, everything, folds=s.cv_folds, copies=copies, **fit)
    else:
        train = with_copies((x_train, split.y_train), tuple(c[:len(x_train)] for c in copies))
        outcome = fit_selected(build, train, (x_val, split.y_val), **fit)
        outcome = _refitted(outcome, build, with_copies(everything, copies), ctx, what, notes)
    return _ensembled(ctx, outcome, build, with_copies(everything, copies), what, notes)


def _ensemble_note(ctx: StrategyContext, kept: int, notes: list[str]) -> None:
    n = ctx.settings.ensemble
    note = (f"an ensemble of {kept} refits on all labels with the same choices, each from its own "
            "initialisation and shuffling, predicting the mean of their softmax (transfer.ensemble)")
    if kept < n:
        note += (f"; {n - kept} of {n - 1} further refits fit the labels worse than validation "
                 "scored on images it had not trained on, and were left out")
    notes.append(note)


def _not_an_ensemble(ctx: StrategyContext, notes: list[str]) -> None:
    if ctx.settings.ensemble > 1:
        notes.append(f"one model, not an ensemble of {ctx.settings.ensemble}: transfer.ensemble "
                     "repeats the refit on all labels, and this model was not refitted")


def _ensembled(ctx: StrategyContext, outcome: FitOutcome, build: Any,
               data: tuple[np.ndarray, np.ndarray], what: str, notes: list[str]) -> FitOutcome:
    """With ``transfer.ensemble`` > 1, the outcome's refitted model and ``ensemble - 1`` more
    refits on ``data`` with the same rate and epochs, each from its own seed
    (:func:`~gantransfer.transfer_learning.classifiers.member_seed`), as one model that predicts the
    mean of their softmax (:func:`~gantransfer.transfer_learning.classifiers.mean_of`).

    A refit that fits ``data`` worse than validation scored on unseen images ended on a bad epoch
    (:func:`refit_failed`) and is left out. A model that was not refitted (``transfer.refit``
    off, or its refit discarded) stays one model: its members would not be alike."""
    n, seed = ctx.settings.ensemble, ctx.split.seed
    if n == 1:
        return outcome
    if not outcome.selection.endswith(REFITTED):
        _not_an_ensemble(ctx, notes)
        return outcome
    members = [plain(outcome.model)]
    for k in range(1, n):
        model = refit(build, data, learning_rate=outcome.learning_rate, epochs=outcome.best_epoch,
                      batch_size=ctx.settings.batch_size, seed=member_seed(seed, k),
                      progress=_progress(ctx, f"{what}, member {k + 1} of {n}"))
        if not refit_failed(budget_accuracy(model, *data), outcome.val_accuracy):
            members.append(plain(model))
    _ensemble_note(ctx, len(members), notes)
    outcome.model = mean_of(members)
    outcome.selection = f"{outcome.selection}, averaged over {len(members)} refits"
    return outcome


def _prepared_trunk(ctx: StrategyContext, pretrained: bool, notes: list[str]) -> keras.Model:
    """A GAN-architecture trunk, trained or random, with BatchNorm statistics of real images."""
    if pretrained:
        if ctx.discriminator is None:
            raise StrategySkipped("no GAN discriminator was given (--gan-run or --discriminator)")
        trunk, report = trunk_from_discriminator(ctx.discriminator,
                                                 dropout=ctx.settings.trunk_dropout,
                                                 l2=ctx.settings.trunk_l2)
        notes.append(f"weights of {len(report.copied)} layers imported from the discriminator "
                     f"({', '.join(report.copied)}); its head ({', '.join(report.skipped)}) left out")
    else:
        keras.utils.set_random_seed(ctx.split.seed)
        trunk = build_gan_trunk(ctx.architecture, dropout=ctx.settings.trunk_dropout,
                                l2=ctx.settings.trunk_l2)
        notes.append("the discriminator's architecture, randomly initialised (seeded)")
    images = ctx.split.unlabeled[:ctx.settings.bn_images]
    updated = reestimate_batchnorm(trunk, images)
    if updated:
        notes.append(f"BatchNorm statistics of {updated} layers re-estimated on {len(images)} real "
                     "training images of the target data")
    return trunk


def _joined(first: np.ndarray | Views, second: np.ndarray | Views) -> np.ndarray | Views:
    if isinstance(first, Views) and isinstance(second, Views):
        return Views.joined(first, second)
    return np.concatenate([first, second])


# A frozen trunk's features of every view an augmentation makes are cached when there are at most
# this many (labeled images times views: 2,500 images with a pixel's shifts, whose float32
# features of a 4x4x256 map take 370 MB) and they fit in a quarter of the memory available;
# beyond, the head trains through the pixels.
VIEW_CACHE_UP_TO = 25_000


def _augmented_views(ctx: StrategyContext, trunk: keras.Model,
                     notes: list[str]) -> tuple[list[tuple[bool, int, int]], list[float]] | None:
    """The views the config's augmentation makes of each labeled image and their chances
    (:func:`~gantransfer.transfer_learning.classifiers.augmentation_views`), when a frozen head can
    train on ``trunk``'s cached features of them; None when it must train through the pixels:
    no augmentation, adversarial training (its images depend on the model at every step), or more
    views than :data:`VIEW_CACHE_UP_TO` or memory allows (a note says so)."""
    s, split = ctx.settings, ctx.split
    if not s.augments or s.adversarial_training != "none":
        return None
    views, chances = augmentation_views(s.augment_flip, s.augment_shift,
                                        *split.x_train.shape[1:3])
    count = (len(split.x_train) + len(split.x_val)) * len(views)
    needed = 4 * count * int(np.prod(trunk.output_shape[1:]))
    available = available_memory()
    if count > VIEW_CACHE_UP_TO or (available is not None and needed > available // 4):
        notes.append(f"the head trained through the pixels: the frozen trunk's features of the "
                     f"{len(views)} views of each labeled image that the augmentation makes would "
                     f"be {count} feature maps ({needed / 2**20:.0f} MiB), too many to cache")
        return None
    return views, chances


def view_features(trunk: keras.Model, images: np.ndarray, views: list[tuple[bool, int, int]],
                  chances: list[float]) -> Views:
    """The frozen trunk's features of every view of ``images`` (mirrored, then moved ``dy`` down
    and ``dx`` right, the border repeating the edge as the augmentation's does), with the chance of
    each: training on them draws one view of each image per epoch
    (:class:`~gantransfer.data.batches.ViewBatches`)."""
    stack = [frozen_features(trunk, apply_view(images, view)) for view in views]
    return Views(np.stack(stack, axis=1), chances)


def _views_note(count: int, what: str) -> str:
    return (f"frozen trunk features of the {count} views of each labeled image that the "
            f"augmentation makes cached: computed once, the {what} trained on one view of each "
            "image every epoch, drawn as often as the augmentation makes it")


def frozen_features(trunk: keras.Model, images: np.ndarray) -> np.ndarray:
    """The frozen trunk's features of ``images``, float32 in every precision (a mixed-precision
    trunk computes, and returns, 16-bit features)."""
    return trunk.predict(images, batch_size=256, verbose=0).astype("float32", copy=False)


def cached_features(trunk: keras.Model, split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frozen trunk's features of the train, validation and test images, computed once."""
    return tuple(frozen_features(trunk, x)  # type: ignore[return-value]
                 for x in (split.x_train, split.x_val, split.x_test))


def _pixel_classifier(ctx: StrategyContext, trunk: keras.Model, kind: str,
                      trunk_training: bool | None) -> keras.Model:
    """A new classifier that trains through the pixels: with the config's augmentation, and
    adversarially trained when ``transfer.adversarial_training`` is on."""
    s = ctx.settings
    model = build_classifier(trunk, ctx.split.num_classes, kind=kind, dropout=s.dropout, l2=s.l2,
                             trunk_training=trunk_training,
                             augment=augmentation(s.augment_flip, s.augment_shift))
    return adversarially_trained(model, adversarial_training(s), seed=ctx.split.seed)


def _pixel_twin(ctx: StrategyContext, model: keras.Model) -> keras.Model:
    """A second classifier on ``model``'s layers (augmentation, trunk, head), adversarially
    trained as ``model`` is: it compiles on its own, so the two can keep different trainable sets
    (the head phase with the trunk frozen, fine-tuning with it trainable)."""
    inner = plain(model)
    return adversarially_trained(keras.Model(inner.input, inner.output, name=inner.name),
                                 adversarial_training(ctx.settings), seed=ctx.split.seed)


def adversarial_training(settings: TransferConfig) -> AdversarialTraining | None:
    """The config's adversarial training, or None when it is off."""
    if settings.adversarial_training == "none":
        return None
    return AdversarialTraining(settings.adversarial_training, settings.adversarial_epsilon,
                               settings.adversarial_steps, settings.adversarial_fraction)


def _head_copies(ctx: StrategyContext, trunk: keras.Model, what: str,
                 notes: list[str]) -> tuple[np.ndarray, ...]:
    """The probes' care for a head on the frozen trunk's cached features: the features of moved
    copies of every labeled image (``transfer.probe_shift``; :func:`shifted_copies`), row for row
    with the training then the validation images; none beyond ``SHIFT_UP_TO_IMAGES`` images."""
    images = _all_labels(ctx.split)[0]
    shift = ctx.settings.probe_shift if len(images) <= SHIFT_UP_TO_IMAGES else 0
    if not shift:
        return ()
    notes.append(f"the {what} also trained on {describe_copies(shift)} (transfer.probe_shift)")
    return shifted_copies(images, shift, lambda x: frozen_features(trunk, x))


def _train_head(ctx: StrategyContext, trunk: keras.Model, kind: str, notes: list[str], *,
                final: bool) -> tuple[keras.Model, FitOutcome, np.ndarray,
                                      tuple[np.ndarray | Views, np.ndarray] | None]:
    """Trains a head on a frozen trunk, on cached features unless adversarial training, or more
    views than :data:`VIEW_CACHE_UP_TO`, need the pixels. With augmentation, the features cached
    are those of every view it makes (:func:`view_features`).

    Returns ``(classifier, outcome, test predictions, cached)``: ``cached`` is what a head on the
    cached features trains on across the whole budget (the features and labels of every labeled
    image, then of their moved copies, or their views), or None when the head trained through the
    pixels.

    A ``final`` head is the strategy's model (a frozen strategy). With ``transfer.refit`` it is
    trained on the whole budget: on cached features, after k-fold cross-validation over the budget
    has chosen (``transfer.cv_folds`` >= 2); otherwise after the validation split has chosen
    (:func:`_refitted`). A fine-tuning strategy's head phase is not ``final``: the validation split
    chooses it, and the strategy refits both phases once it has judged them. Either way a head on
    cached features also trains on moved copies of its images (``transfer.probe_shift``).
    """
    s, split = ctx.settings, ctx.split
    trunk.trainable = False
    views = _augmented_views(ctx, trunk, notes)
    if not s.trains_through_pixels or views is not None:
        f_train: np.ndarray | Views
        f_val: np.ndarray | Views
        copies: tuple[np.ndarray, ...] = ()
        if views is None:
            f_train, f_val, f_test = cached_features(trunk, split)
            notes.append("frozen trunk features cached: computed once, the head trained on them")
            copies = _head_copies(ctx, trunk, "head" if final else "head phase", notes)
        else:
            f_views = view_features(trunk, _all_labels(split)[0], *views)
            notes.append(_views_note(len(views[0]), "head" if final else "head phase"))
            f_train, f_val = f_views[:len(split.x_train)], f_views[len(split.x_train):]
            f_test = frozen_features(trunk, split.x_test)
        f_all = _joined(f_train, f_val)

        def build() -> keras.Model:
            return build_head(f_train.shape[1:], split.num_classes, kind=kind, dropout=s.dropout,
                              l2=s.l2)

        if final:
            outcome = _final_fit(ctx, build, "head on cached features", notes, (f_train, f_val),
                                 copies)
        else:
            train = with_copies((f_train, split.y_train), tuple(c[:len(f_train)] for c in copies))
            outcome = fit_selected(build, train, (f_val, split.y_val),
                                   learning_rates=s.learning_rates, max_epochs=s.max_epochs,
                                   patience=s.patience, batch_size=s.batch_size, seed=split.seed,
                                   progress=_progress(ctx, "head on cached features"))
        # The augmentation goes in front, as on a head trained through the pixels: fine-tuning
        # trains under it, and a frozen model ignores it when it predicts.
        classifier = build_classifier(trunk, split.num_classes, head=outcome.model,
                                      trunk_training=False,
                                      augment=augmentation(s.augment_flip, s.augment_shift))
        predictions = np.argmax(outcome.model.predict(f_test, verbose=0), axis=-1)
        cached = with_copies((f_all, _all_labels(split)[1]), copies)
        return classifier, outcome, predictions, cached
    def build_pixels() -> keras.Model:
        return _pixel_classifier(ctx, trunk, kind, trunk_training=False)

    if final:
        outcome = _final_fit(ctx, build_pixels, "head", notes)
    else:
        outcome = fit_selected(build_pixels, (split.x_train, split.y_train),
                               (split.x_val, split.y_val), learning_rates=s.learning_rates,
                               max_epochs=s.max_epochs, patience=s.patience,
                               batch_size=s.batch_size, seed=split.seed,
                               progress=_progress(ctx, "head"))
    predictions = np.argmax(outcome.model.predict(split.x_test, verbose=0), axis=-1)
    return outcome.model, outcome, predictions, None


def _frozen_outcome(ctx: StrategyContext, trunk: keras.Model, native: str,
                    notes: list[str]) -> StrategyOutcome:
    kind = resolve_head(ctx.settings.head, native)
    notes.append(_describe_head(kind, ctx.settings.head))
    started = time.perf_counter()
    classifier, outcome, predictions, _ = _train_head(ctx, _headed(trunk, kind), kind, notes,
                                                      final=True)
    trainable, total = count_parameters(classifier)
    return StrategyOutcome(classifier, predictions, _record(
        learning_rate=outcome.learning_rate, epochs=outcome.epochs, history=outcome.history,
        train_time_s=time.perf_counter() - started, trainable_params=trainable,
        total_params=total, notes=notes, head=kind, selection=outcome.selection))


def _finetune_outcome(ctx: StrategyContext, trunk: keras.Model, native: str,
                      notes: list[str]) -> StrategyOutcome:
    """Head first on the frozen trunk, then everything at a lower rate; keeps the better phase.

    With ``transfer.refit`` and ``transfer.cv_folds`` >= 2, every choice is made by k-fold
    cross-validation over the budget (:func:`_finetune_cv_outcome`). Otherwise whether fine-tuning
    helps is judged on the validation split, which neither phase trains on; with
    ``transfer.refit``, the kept phases are then trained again on the whole budget with the rates
    and epochs chosen: the head from the trunk's starting weights, then (if kept) everything.
    """
    s, split = ctx.settings, ctx.split
    kind = resolve_head(s.head, native)
    notes.append(_describe_head(kind, s.head))
    trunk = _headed(trunk, kind)
    if s.refit and s.cv_folds >= 2:
        return _finetune_cv_outcome(ctx, trunk, kind, notes)
    started = time.perf_counter()
    start_weights = trunk.get_weights()
    classifier, head_outcome, head_predictions, cached = _train_head(ctx, trunk, kind, notes,
                                                                     final=False)
    head_weights = classifier.get_weights()
    trunk.trainable = True  # BatchNorm stays in inference mode: the trunk is called with training=False
    rate = head_outcome.learning_rate * s.finetune_learning_rate_factor
    outcome = fit_selected(lambda: classifier, (split.x_train, split.y_train),
                           (split.x_val, split.y_val),
                           learning_rates=[rate], max_epochs=s.max_epochs, patience=s.patience,
                           batch_size=s.batch_size, seed=split.seed,
                           progress=_progress(ctx, "fine-tuning everything"))
    history = {f"head_{k}": v for k, v in head_outcome.history.items()}
    history.update(outcome.history)
    epochs = head_outcome.epochs + outcome.epochs
    finetuned = outcome.score > head_outcome.score
    if not finetuned:
        notes.append("fine-tuning did not improve validation accuracy; the head-only phase is kept")
        classifier.set_weights(head_weights)
        trunk.trainable = False
    selection = "validation split"
    if s.refit:
        validated, kept_weights = classifier, classifier.get_weights()
        held_out = (outcome if finetuned else head_outcome).val_accuracy
        refitted = _refit_finetune(ctx, trunk, kind, start_weights, cached, head_outcome,
                                   outcome if finetuned else None)
        epochs += head_outcome.best_epoch + (outcome.best_epoch if finetuned else 0)
        if _keep_refit(held_out, budget_accuracy(refitted, *_all_labels(split)), notes):
            classifier, averaged = _finetune_members(ctx, refitted, trunk, kind, start_weights,
                                                     cached, head_outcome,
                                                     outcome if finetuned else None, held_out,
                                                     notes)
            selection = f"{selection}, {REFITTED}{averaged}"
        else:
            _not_an_ensemble(ctx, notes)
            validated.set_weights(kept_weights)  # the trunk is shared: its validated weights too
            trunk.trainable = finetuned
            classifier, selection = validated, f"{selection} (its refit was discarded)"
        predictions = np.argmax(classifier.predict(split.x_test, verbose=0), -1)
    elif finetuned:
        _not_an_ensemble(ctx, notes)
        predictions = np.argmax(classifier.predict(split.x_test, verbose=0), -1)
    else:
        _not_an_ensemble(ctx, notes)
        predictions = head_predictions
    seconds = time.perf_counter() - started
    trainable, total = count_parameters(classifier)
    return StrategyOutcome(classifier, predictions, _record(
        learning_rate=rate if finetuned else head_outcome.learning_rate, epochs=epochs,
        history=history, phase_kept="finetune" if finetuned else "head", train_time_s=seconds,
        trainable_params=trainable, total_params=total, notes=notes, head=kind,
        selection=selection))


def _finetune_cv_outcome(ctx: StrategyContext, trunk: keras.Model, kind: str,
                         notes: list[str]) -> StrategyOutcome:
    """The fine-tuning strategy with every choice made by k-fold cross-validation over the budget
    (:func:`~gantransfer.transfer_learning.classifiers.finetune_cross_validated`): the head's
    rate and epochs, whether fine-tuning helps, and its epochs; then a refit on every image.

    The head phase trains on the frozen trunk's cached features (with augmentation, of every view
    it makes: :func:`view_features`), or through the pixels when adversarial training changes what
    the trunk sees every step; then the folds, the fine-tuning (under the augmentation) and the
    refit are the same either way."""
    s, split = ctx.settings, ctx.split
    started = time.perf_counter()
    start_weights = trunk.get_weights()  # an ensemble's further members start here too
    trunk.trainable = False
    x_all, y_all = _all_labels(split)
    whole: Callable[[keras.Model], keras.Model] | None = None
    copies: tuple[np.ndarray, ...] = ()
    views = _augmented_views(ctx, trunk, notes)
    through_pixels = s.trains_through_pixels and views is None
    inputs: np.ndarray | Views
    if through_pixels:
        inputs = x_all

        def build() -> keras.Model:
            return _pixel_classifier(ctx, trunk, kind, trunk_training=False)

        whole = partial(_pixel_twin, ctx)  # compiled on its own, with the trunk trainable
    else:
        if views is None:
            inputs = frozen_features(trunk, x_all)
            notes.append("frozen trunk features cached: computed once, the head trained on them")
            copies = _head_copies(ctx, trunk, "head phase", notes)
        else:
            inputs = view_features(trunk, x_all, *views)
            notes.append(_views_note(len(views[0]), "head phase"))

            def whole(head: keras.Model) -> keras.Model:  # fine-tuning trains under augmentation
                return build_classifier(trunk, split.num_classes, head=head, trunk_training=False,
                                        augment=augmentation(s.augment_flip, s.augment_shift))

        def build() -> keras.Model:
            return build_head(inputs.shape[1:], split.num_classes, kind=kind, dropout=s.dropout,
                              l2=s.l2)
    choice = finetune_cross_validated(
        trunk, build, inputs, x_all, y_all, folds=s.cv_folds, learning_rates=s.learning_rates,
        rate_factor=s.finetune_learning_rate_factor, max_epochs=s.max_epochs, patience=s.patience,
        batch_size=s.batch_size, seed=split.seed, progress=_progress(ctx, "fine-tuning strategy"),
        whole=whole, copies=copies)
    head, finetune = choice.head, choice.finetune
    if choice.discarded_refit is not None:
        finetuned_fit, held_out = choice.discarded_refit
        notes.append(f"fine-tuning's mean fold validation accuracy, "
                     f"{100 * choice.finetune_score:.1f}%, beat the head's, "
                     f"{100 * head.score:.1f}%, but its refit on all labels fit them worse "
                     f"({100 * finetuned_fit:.1f}%) than the folds scored on images they had not "
                     f"trained on ({100 * held_out:.1f}%), so the head-only model is kept")
    else:
        verdict = "beat" if finetune is not None else "did not beat"
        notes.append(f"fine-tuning's mean fold validation accuracy, "
                     f"{100 * choice.finetune_score:.1f}%, {verdict} the head's, "
                     f"{100 * head.score:.1f}% (ties go to the lower loss); the "
                     f"{'fine-tuned' if finetune is not None else 'head-only'} model is kept")
    history = {f"head_{k}": v for k, v in head.history.items()}
    history.update(choice.finetune_history)  # the first fold's, as for the head
    kept = finetune if finetune is not None else head
    cached = None if through_pixels else with_copies((inputs, y_all), copies)
    classifier, averaged = _finetune_members(ctx, choice.classifier, trunk, kind, start_weights,
                                             cached, head, finetune, kept.val_accuracy, notes)
    predictions = np.argmax(classifier.predict(split.x_test, verbose=0), -1)
    trainable, total = count_parameters(classifier)
    return StrategyOutcome(classifier, predictions, _record(
        learning_rate=finetune.learning_rate if finetune is not None else head.learning_rate,
        epochs=head.epochs + (finetune.epochs if finetune is not None else 0), history=history,
        phase_kept="finetune" if finetune is not None else "head",
        train_time_s=time.perf_counter() - started, trainable_params=trainable, total_params=total,
        notes=notes, head=kind,
        selection=f"{choice.folds}-fold cross-validation over the budget (the head's rate and "
                  f"epochs, and whether fine-tuning helps), {REFITTED}{averaged}"))


def _refit_finetune(ctx: StrategyContext, trunk: keras.Model, kind: str,
                    start_weights: list[np.ndarray], cached: tuple[np.ndarray | Views, np.ndarray] | None,
                    head_outcome: FitOutcome, finetune: FitOutcome | None,
                    seed: int | None = None) -> keras.Model:
    """The fine-tuning strategy's phases again, on every labeled image, with the choices made,
    from the split's seed or ``seed`` (an ensemble's further members).

    The trunk goes back to its starting weights; the head trains on it frozen (on ``cached``, the
    cached features of every labeled image and of its moved copies, when there are some) for the
    head phase's epochs; then, when fine-tuning was kept, everything trains on the images at its
    rate for its epochs.
    """
    s, split = ctx.settings, ctx.split
    trunk.set_weights(start_weights)
    trunk.trainable = False
    x_all, y_all = _all_labels(split)
    seed = split.seed if seed is None else seed
    common = dict(learning_rate=head_outcome.learning_rate, epochs=head_outcome.best_epoch,
                  batch_size=s.batch_size, seed=seed, progress=_progress(ctx, "head"))
    if cached is not None:
        head = refit(lambda: build_head(cached[0].shape[1:], split.num_classes, kind=kind,
                                        dropout=s.dropout, l2=s.l2), cached, **common)
        classifier = build_classifier(trunk, split.num_classes, head=head, trunk_training=False,
                                      augment=augmentation(s.augment_flip, s.augment_shift))
    else:
        classifier = refit(lambda: _pixel_classifier(ctx, trunk, kind, trunk_training=False),
                           (x_all, y_all), **common)
    if finetune is not None:
        trunk.trainable = True
        classifier = refit(lambda: classifier, (x_all, y_all), learning_rate=finetune.learning_rate,
                           epochs=finetune.best_epoch, batch_size=s.batch_size, seed=seed,
                           progress=_progress(ctx, "fine-tuning everything"))
    return classifier


def _snapshot(model: keras.Model) -> keras.Model:
    """A copy of ``model`` with its weights now, sharing no layer with it: the fine-tuning
    strategies' refits all train the one trunk."""
    model = plain(model)
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def _finetune_members(ctx: StrategyContext, first: keras.Model, trunk: keras.Model, kind: str,
                      start_weights: list[np.ndarray],
                      cached: tuple[np.ndarray | Views, np.ndarray] | None, head_outcome: FitOutcome,
                      finetune: FitOutcome | None, held_out: float,
                      notes: list[str]) -> tuple[keras.Model, str]:
    """A fine-tuning strategy's refitted model ``first`` and, with ``transfer.ensemble`` > 1,
    further refits of its kept phases from their own seeds (:func:`_refit_finetune`), as one model
    that predicts the mean of their softmax; and what to add to its selection. A refit that fits
    the labels worse than ``held_out`` (what validation scored the kept phase on unseen images) is
    left out."""
    n = ctx.settings.ensemble
    if n == 1:
        return first, ""
    members = [_snapshot(first)]
    for k in range(1, n):
        member = _refit_finetune(ctx, trunk, kind, start_weights, cached, head_outcome, finetune,
                                 seed=member_seed(ctx.split.seed, k))
        if not refit_failed(budget_accuracy(member, *_all_labels(ctx.split)), held_out):
            members.append(_snapshot(member))
    _ensemble_note(ctx, len(members), notes)
    return mean_of(members), f", averaged over {len(members)} refits"


def _probe_storage(s: TransferConfig, fitted: int, tested: int, width: int) -> str:
    """How a probe's features are stored (``transfer.probe_storage``): ``auto`` keeps float32 where
    it fits in available memory, else float16 where only that fits (logistic probes not tied to
    scikit-learn's solver, which would copy them to float64).

    Raises:
        DataError: The probe needs more memory than is available, in the storage it would use.
    """
    what = f"the linear probe on {fitted + tested} images x {width} features stored as"
    fix = "lower transfer.labels_per_class, or use a narrower trunk (gan.width)"
    if s.probe_storage != "auto":
        check_memory(probe_memory(fitted, tested, width, s.probe_storage),
                     f"{what} {s.probe_storage}", fix)
        return s.probe_storage
    half = s.probe == "logistic" and s.probe_solver != "scikit-learn"  # others copy float16 up
    try:
        check_memory(probe_memory(fitted, tested, width, "float32"), f"{what} float32",
                     fix + ("" if half else "; float16 features (half the memory) need "
                            "transfer.probe=logistic and transfer.probe_solver auto or keras"))
        return "float32"
    except DataError:
        if not half:
            raise
    check_memory(probe_memory(fitted, tested, width, "float16"),
                 f"{what} float16 (its smallest storage)", fix)
    return "float16"


def _probe_outcome(ctx: StrategyContext, trunk: keras.Model | None,
                   notes: list[str]) -> StrategyOutcome:
    """Fits a linear probe on the trunk's pooled features (or on pixels when trunk is None).

    With ``transfer.refit`` and ``transfer.cv_folds`` >= 2, C is chosen by stratified k-fold
    cross-validation over the whole budget and the probe is fitted on all of it; with
    ``transfer.refit`` alone, C is chosen on the validation split and the probe is then fitted on
    all of the budget, as the networks are; without it, the probe keeps its fit on the training
    part.
    """
    s, split = ctx.settings, ctx.split
    started = time.perf_counter()
    width = (int(np.prod(split.x_train.shape[1:])) if trunk is None else probe_width(trunk))
    fitted, tested = len(split.x_train) + len(split.x_val), len(split.x_test)
    # shifted copies of every labeled image (transfer.probe_shift), for small budgets
    shift = s.probe_shift if s.probe != "paper" and fitted <= SHIFT_UP_TO_IMAGES else 0
    rows = fitted * (1 + copy_count(shift))
    try:
        storage = _probe_storage(s, rows, tested, width)
    except DataError as error:  # the other strategies of the comparison still run
        raise StrategySkipped(str(error), every_budget=False) from None
    # float16 features are read without a float32 copy by the Keras solver alone
    solver = "keras" if storage == "float16" and s.probe_solver == "auto" else s.probe_solver
    if storage == "float16":
        why = ("transfer.probe_storage=float16" if s.probe_storage == "float16" else
               "float32 features would not fit in available memory")
        notes.append(f"features stored as float16 ({why}), half the memory; the Keras solver "
                     "reads them a batch at a time in float32")
    features = ((lambda x: pixel_features(x, storage)) if trunk is None else
                (lambda x: probe_features(trunk, x, dtype=storage)))
    f_train, f_val, f_test = (features(x) for x in (split.x_train, split.x_val, split.x_test))
    cross_validated = s.refit and s.cv_folds >= 2  # over the whole budget, else the training part
    # the copies of every image the final probe fits on: the whole budget under transfer.refit
    copies = shifted_copies(np.concatenate([split.x_train, split.x_val]) if s.refit
                            else split.x_train, shift, features)
    if shift:
        notes.append(f"the probe also trained on {describe_copies(shift)} (transfer.probe_shift)")
    if ctx.verbose:
        logger.info("%s: %d images (moved copies included) x %d features (%.0f MB, %s) in %.1f s",
                    _progress(ctx, "linear probe features"), rows + tested, width,
                    (rows + tested) * width * np.dtype(storage).itemsize / 2**20, storage,
                    time.perf_counter() - started)
    if cross_validated:
        outcome = fit_probe_cv((np.concatenate([f_train, f_val]),
                                np.concatenate([split.y_train, split.y_val])),
                               kind=s.probe, Cs=s.probe_c, folds=s.cv_folds, seed=split.seed,
                               solver=solver, copies=copies)
        selection = (f"{outcome.folds}-fold cross-validation over the budget, then a refit on all "
                     "of it" if not outcome.held_out else
                     f"{outcome.held_out} held-out images of the budget (one stratified fold of "
                     f"{s.cv_folds}: at this size one fold decides as all would), then a refit "
                     "on all of it")
    else:
        outcome = fit_probe((f_train, split.y_train), (f_val, split.y_val), kind=s.probe,
                            Cs=s.probe_c, seed=split.seed, solver=solver,
                            copies=tuple(c[:len(f_train)] for c in copies))
        selection = "validation split"
        if s.refit:  # the chosen C on every image of the budget, as the networks' refit
            outcome = replace(outcome, model=refit_probe(
                outcome, (np.concatenate([f_train, f_val]),
                          np.concatenate([split.y_train, split.y_val])),
                kind=s.probe, seed=split.seed, solver=outcome.solver, copies=copies))
            selection = "validation split, then a refit on all of the budget"
    if ctx.verbose:
        logger.info("%s: C=%g chosen by %s, %.1f%% there, in %.1f s", _progress(
            ctx, "linear probe"), outcome.C, selection, 100 * outcome.val_accuracy,
            outcome.wall_time_s)
    predictions = predict_in_chunks(outcome.model, f_test)
    coefficients = outcome.model[-1].coef_
    trainable = int(coefficients.size + np.size(outcome.model[-1].intercept_))
    seconds = time.perf_counter() - started
    solved = ("; solved by Keras (Adam on mini-batches, scikit-learn's objective)"
              if outcome.solver == "keras" else "")
    notes.append(f"{s.probe} probe on {f_train.shape[1]} features, C chosen by {selection}"
                 f"{solved}; saved as a Keras model (features, standardisation, linear layer)")
    if outcome.grid_note:
        notes.append(outcome.grid_note)
    model = probe_as_keras(outcome.model, split.x_train.shape[1:], split.num_classes, trunk)
    return StrategyOutcome(model, predictions, _record(
        C=outcome.C, epochs=0, train_time_s=seconds, trainable_params=trainable,
        total_params=model.count_params(), notes=notes, selection=selection))


@runs("scratch")
def run_scratch(ctx: StrategyContext) -> StrategyOutcome:
    """The discriminator's architecture, randomly initialised, all of it trained; at
    ``transfer.scratch_width`` when it is set."""
    s, split = ctx.settings, ctx.split
    kind = resolve_head(s.head, GAN_ARCHITECTURE_HEAD)
    started = time.perf_counter()
    architecture = (ctx.architecture if s.scratch_width is None
                    else replace(ctx.architecture, width=s.scratch_width))

    def build() -> keras.Model:
        trunk = build_gan_trunk(architecture, dropout=s.trunk_dropout, l2=s.trunk_l2)
        return _pixel_classifier(ctx, _headed(trunk, kind), kind, trunk_training=None)

    notes = [strategy("scratch").description, _describe_head(kind, s.head)]
    if architecture.width != ctx.architecture.width:
        filters = "-".join(map(str, architecture.filters))
        notes.append(f"width {architecture.width} ({filters} filters), not the discriminator's "
                     f"{ctx.architecture.width} (transfer.scratch_width)")
    outcome = _final_fit(ctx, build, "from scratch", notes)
    predictions = np.argmax(outcome.model.predict(split.x_test, verbose=0), axis=-1)
    trainable, total = count_parameters(outcome.model)
    return StrategyOutcome(outcome.model, predictions, _record(
        learning_rate=outcome.learning_rate, epochs=outcome.epochs, history=outcome.history,
        train_time_s=time.perf_counter() - started, trainable_params=trainable, total_params=total,
        notes=notes, head=kind,
        selection=outcome.selection))


@runs("gan-frozen")
def run_gan_frozen(ctx: StrategyContext) -> StrategyOutcome:
    """The trunk from the discriminator, frozen in inference mode; only the head trains."""
    notes: list[str] = []
    return _frozen_outcome(ctx, _prepared_trunk(ctx, True, notes), GAN_ARCHITECTURE_HEAD, notes)


@runs("gan-finetune")
def run_gan_finetune(ctx: StrategyContext) -> StrategyOutcome:
    """The trunk from the discriminator: head first, then everything at a lower rate."""
    notes: list[str] = []
    return _finetune_outcome(ctx, _prepared_trunk(ctx, True, notes), GAN_ARCHITECTURE_HEAD,
                             notes)


@runs("gan-linear-probe")
def run_gan_linear_probe(ctx: StrategyContext) -> StrategyOutcome:
    """The DCGAN paper's protocol: all conv features max-pooled to 4x4, a linear classifier."""
    notes: list[str] = []
    return _probe_outcome(ctx, _prepared_trunk(ctx, True, notes), notes)


@runs("random-frozen")
def run_random_frozen(ctx: StrategyContext) -> StrategyOutcome:
    """Control: the discriminator's architecture, randomly initialised and frozen; the head trains."""
    notes: list[str] = []
    return _frozen_outcome(ctx, _prepared_trunk(ctx, False, notes), GAN_ARCHITECTURE_HEAD, notes)


@runs("random-linear-probe")
def run_random_linear_probe(ctx: StrategyContext) -> StrategyOutcome:
    """Control: the linear-probe protocol on a random trunk of the same architecture."""
    notes: list[str] = []
    return _probe_outcome(ctx, _prepared_trunk(ctx, False, notes), notes)


def _semisupervised_outcome(ctx: StrategyContext, trunk: keras.Model,
                            notes: list[str]) -> StrategyOutcome:
    """The classifier on ``trunk`` trained as the discriminator of a semi-supervised GAN
    (:class:`~gantransfer.gan.semisupervised.SemiSupervisedGAN`) against a new generator, on the
    whole label budget and the unlabeled training images, for ``transfer.semisupervised_steps``.

    The schedule is fixed: no choice is made on the labels, so there is nothing to
    cross-validate, and the model is trained once on every labeled image. The trunk trains in
    training mode (BatchNorm on each batch's statistics, as in the GAN it came from).
    """
    s, split = ctx.settings, ctx.split
    if adversarial_training(s) is not None:
        raise StrategySkipped("the semi-supervised GAN does not train on adversarial examples "
                              "(transfer.adversarial_training); run it without")
    started = time.perf_counter()
    kind = resolve_head(s.head, GAN_ARCHITECTURE_HEAD)
    notes.append(_describe_head(kind, s.head))
    trunk = _headed(trunk, kind)
    keras.utils.set_random_seed(split.seed)  # the head's and the generator's starts are the seed's
    classifier = build_classifier(trunk, split.num_classes, kind=kind,
                                  dropout=s.semisupervised_dropout, l2=s.l2,
                                  augment=augmentation(s.augment_flip, s.augment_shift))
    a = ctx.architecture
    generator = build_generator(a.image_size, a.channels, width=a.width,
                                kernel_size=a.kernel_size)
    gan = SemiSupervisedGAN(generator, with_features(classifier), seed=split.seed,
                            unlabeled_weight=s.semisupervised_unlabeled_weight)
    unlabeled = split.more_unlabeled(s.semisupervised_images)
    x_all, y_all = _all_labels(split)
    batch = min(s.semisupervised_batch_size, len(unlabeled))
    batches = SemiSupervisedBatches(unlabeled, x_all, y_all, batch_size=batch, seed=split.seed)
    epochs = -(-s.semisupervised_steps // len(batches))  # whole passes over the unlabeled images
    steps = epochs * len(batches)
    rate = (FinalDecay(s.semisupervised_learning_rate, steps, s.semisupervised_decay)
            if s.semisupervised_decay else s.semisupervised_learning_rate)
    gan.compile(d_optimizer=keras.optimizers.Adam(rate, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(rate, beta_1=0.5))
    label = _progress(ctx, "semi-supervised GAN")
    bar = [] if label is None else [StepBar(
        steps, ("supervised_loss", "labeled_accuracy", "d_real", "d_fake"),
        f"{label}: {steps} steps ({epochs} passes over {len(unlabeled)} "
        f"unlabeled images), {len(x_all)} labeled")]
    history = gan.fit(batches, epochs=epochs, verbose=0, callbacks=bar).history
    notes.append(f"trained as the discriminator of a semi-supervised GAN (Salimans et al. 2016) "
                 f"against a new generator with feature matching: {steps} steps "
                 f"of {batch} unlabeled, {batch} generated and {batch} labeled images "
                 f"({epochs} passes over {len(unlabeled)} unlabeled training images; "
                 "transfer.semisupervised_steps), head dropout "
                 f"{s.semisupervised_dropout:g}, the GAN loss weighted "
                 f"{s.semisupervised_unlabeled_weight:g}, "
                 + (f"the learning rate decayed linearly over the last "
                    f"{s.semisupervised_decay:.0%} of the steps (transfer.semisupervised_decay)"
                    if s.semisupervised_decay else "a constant learning rate")
                 + "; a fixed schedule")
    if s.ensemble > 1:
        notes.append(f"one model, not an ensemble of {s.ensemble} (transfer.ensemble): each "
                     "member would cost a GAN's training")
    predictions = np.argmax(classifier.predict(split.x_test, verbose=0), axis=-1)
    trainable, total = count_parameters(classifier)
    return StrategyOutcome(classifier, predictions, _record(
        learning_rate=s.semisupervised_learning_rate, epochs=epochs,
        history={k: [float(v) for v in values] for k, values in history.items()},
        train_time_s=time.perf_counter() - started, trainable_params=trainable,
        total_params=total, notes=notes, head=kind,
        selection="a fixed schedule (transfer.semisupervised_steps) on the whole budget"))


@runs("gan-semisupervised")
def run_gan_semisupervised(ctx: StrategyContext) -> StrategyOutcome:
    """The trunk from the discriminator, trained on as a semi-supervised GAN's discriminator."""
    notes: list[str] = []
    return _semisupervised_outcome(ctx, _prepared_trunk(ctx, True, notes), notes)


@runs("random-semisupervised")
def run_random_semisupervised(ctx: StrategyContext) -> StrategyOutcome:
    """Control: the same semi-supervised GAN from a randomly initialised trunk."""
    notes: list[str] = []
    return _semisupervised_outcome(ctx, _prepared_trunk(ctx, False, notes), notes)


@runs("pixels-linear")
def run_pixels_linear(ctx: StrategyContext) -> StrategyOutcome:
    """Control: the same linear classifier on raw pixels."""
    return _probe_outcome(ctx, None, ["raw pixels, no trunk"])


def _backbone(ctx: StrategyContext, notes: list[str]) -> keras.Model:
    from gantransfer.transfer_learning.backbones import BackboneWeightsUnavailable, build_backbone

    s = ctx.settings
    keras.utils.set_random_seed(ctx.split.seed)  # backbone_weights=none: its start is the seed's
    try:
        trunk = build_backbone(s.backbone, image_size=ctx.architecture.image_size,
                               channels=ctx.architecture.channels, weights=s.backbone_weights,
                               input_size=s.backbone_input_size, alpha=s.backbone_alpha)
    except BackboneWeightsUnavailable as error:
        raise StrategySkipped(str(error)) from None
    notes.append(f"{s.backbone} (alpha {s.backbone_alpha:g}) with {s.backbone_weights} weights, "
                 f"inputs resized to {s.backbone_input_size} px inside the model")
    return trunk


def _at_backbone_rates(ctx: StrategyContext, notes: list[str]) -> StrategyContext:
    """The context with ``transfer.backbone_learning_rates``, where set, as the rates tried."""
    rates = ctx.settings.backbone_learning_rates
    if not rates:
        return ctx
    notes.append(f"learning rates tried: {', '.join(f'{r:g}' for r in rates)} "
                 "(transfer.backbone_learning_rates)")
    return replace(ctx, settings=replace(ctx.settings, learning_rates=list(rates)))


@runs("imagenet-frozen")
def run_imagenet_frozen(ctx: StrategyContext) -> StrategyOutcome:
    """An ImageNet backbone, frozen in inference mode; only the head trains."""
    notes: list[str] = []
    ctx = _at_backbone_rates(ctx, notes)
    return _frozen_outcome(ctx, _backbone(ctx, notes), IMAGENET_HEAD, notes)


@runs("imagenet-finetune")
def run_imagenet_finetune(ctx: StrategyContext) -> StrategyOutcome:
    """An ImageNet backbone: head first, then everything at a lower rate."""
    notes: list[str] = []
    ctx = _at_backbone_rates(ctx, notes)
    return _finetune_outcome(ctx, _backbone(ctx, notes), IMAGENET_HEAD, notes)


def _check_runners() -> None:
    """Every registry entry has a runner: a strategy added to the registry without one fails here,
    at import, not halfway through a comparison."""
    missing = [name for name in STRATEGIES if name not in RUNNERS]
    if missing:
        raise ImportError(f"strategies {', '.join(missing)} are in gantransfer.registry but have "
                          "no runner; register one with @runs(name) in "
                          "gantransfer.transfer_learning.strategies")


_check_runners()
