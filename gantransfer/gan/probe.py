"""A linear probe that watches GAN training: how well a linear classifier reads the discriminator.

Every ``train.probe_every`` epochs, :class:`DiscriminatorProbe` takes the discriminator's features as
the DCGAN paper does (:func:`~gantransfer.gan.features.probe_features`: every conv block max-pooled
to 4x4 and concatenated), fits a standardised logistic regression on a few labeled training images
and scores it on other training images. The score goes into the epoch's logs (``probe_accuracy``,
so ``history.csv`` and ``losses.png`` show it), and the discriminator of the best-scoring epoch is
kept as ``discriminator_best_probe.keras``. In a run that checkpoints, the probe scores before the
history row is written and its :meth:`~DiscriminatorProbe.keeper` saves after the checkpoint, so a
run killed at any point resumes with every epoch's row and the best discriminator of the epochs it
keeps (:func:`~gantransfer.gan.train.train_gan` repairs the one gap: a kill between the checkpoint
of a best epoch and its save).

Both subsets come from the GAN's own training split, drawn once with ``train.probe_seed`` (by
default ``train.seed``; :func:`probe_subsets`): the probe never sees a test image, so choosing the
epoch by it leaves the test split untouched for the transfer that follows. GANs trained at other
seeds from one config keep its probe seed, so their scores are on the same images.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from gantransfer import runtime
from gantransfer.data import select_labels_per_class
from gantransfer.data.transforms import to_gan_range
from gantransfer.errors import ConfigError, DataError
from gantransfer.evaluation.linear import fit_quietly, make_probe
from gantransfer.gan.callbacks import PROBE_KEY, logs_finite
from gantransfer.gan.checkpoint import non_finite_variables
from gantransfer.gan.features import probe_features, reestimate_batchnorm
from gantransfer.runs import atomic_save, atomic_write_json

logger = logging.getLogger(__name__)

BEST_PROBE_FILE = "discriminator_best_probe.keras"
# Which epoch that file holds, written just after it: the file and the record always agree, even
# when history.csv has rows (and scores) of epochs a resume trains again or cannot restore.
BEST_PROBE_RECORD = "discriminator_best_probe.json"


def save_best_probe(run_dir: Path, discriminator: keras.Model, epoch: int, accuracy: float,
                    path: Path | None = None) -> None:
    """Saves the best-probe discriminator (float32, as any saved model) and then its record."""
    path = Path(path) if path is not None else Path(run_dir) / BEST_PROBE_FILE
    atomic_save(path, runtime.portable_model(discriminator).save)
    atomic_write_json(path.with_suffix(".json"), {"epoch": int(epoch),
                                                 "probe_accuracy": float(accuracy)})


def saved_best_probe(path: Path) -> tuple[int, float] | None:
    """The epoch and score of the discriminator in ``path`` (a best-probe ``.keras`` file), from
    its record; None when either is missing or unreadable (a run from before the record)."""
    path = Path(path)
    try:
        record = json.loads(path.with_suffix(".json").read_text())
        found = int(record["epoch"]), float(record["probe_accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if path.is_file() else None
# One fixed, strong L2 penalty on standardised features. The probe fits ~10 images per class on
# thousands of features (896 for the tiny test GAN, 7168 for the paper's 32x32 one): without strong
# regularisation the classes are separable whatever the features, and the score stops telling
# epochs apart. A fixed C also keeps the per-epoch scores one measurement: choosing C per epoch would
# need a validation split of its own and add selection noise to a curve that exists to be compared.
# 0.01 is the middle of transfer.probe_c's default grid, where the transfer's probes usually land.
PROBE_C = 0.01
# Seeds the draw of the scored images apart from the per-class draws of the fitted ones, which
# select_labels_per_class seeds with (seed, class position).
_SCORE_STREAM = 2**20


@dataclass(frozen=True)
class ProbeSubsets:
    """Indices into the training split: the labeled images the probe fits on, and those it scores.

    Example:
        >>> subsets = probe_subsets(np.repeat(np.arange(3), 10), 2, 5, seed=0)
        >>> len(subsets.fit), len(subsets.score), set(subsets.fit) & set(subsets.score)
        (6, 5, set())
    """

    fit: np.ndarray
    score: np.ndarray


def probe_subsets(y: np.ndarray, labels_per_class: int, images: int, seed: int, *,
                  class_names: list[str] | None = None) -> ProbeSubsets:
    """Draws the probe's fit subset (``labels_per_class`` per class) and its scored images.

    The scored images are ``images`` of the remaining training images, drawn at random (fewer when
    fewer remain). Both draws depend only on ``y`` and ``seed``, so every epoch, and every session
    of a resumed run, scores on the same images.

    Args:
        y: Labels of the training split.
        labels_per_class: Images per class to fit on.
        images: Images to score on.
        seed: Seed of both draws (``train.probe_seed``).
        class_names: The dataset's class names: every class must have enough images.

    Returns:
        Sorted, disjoint index arrays.

    Raises:
        ConfigError: A class has fewer than ``labels_per_class`` images, or none are left to score.
    """
    try:
        fit = select_labels_per_class(y, labels_per_class, seed, class_names=class_names)
    except DataError as error:
        raise ConfigError(f"train.probe_labels_per_class={labels_per_class}: {error}") from None
    rest = np.setdiff1d(np.arange(len(y), dtype="int64"), fit)
    if not len(rest):
        raise ConfigError(f"train.probe_labels_per_class={labels_per_class} uses every training "
                          "image and leaves none to score the probe on; lower it")
    score = np.random.default_rng([seed, _SCORE_STREAM]).permutation(rest)[:images]
    return ProbeSubsets(fit=fit, score=np.sort(score))


def linear_probe_accuracy(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                          *, C: float = PROBE_C, seed: int = 0) -> float:
    """Fits a standardised L2 logistic regression on ``train`` and returns its accuracy on ``test``.

    Args:
        train: ``(features, labels)`` to fit on.
        test: ``(features, labels)`` to score on.
        C: Inverse regularisation strength.
        seed: Seed of the solver.

    Returns:
        The accuracy in [0, 1]; NaN when a feature is NaN or infinite.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(60, 4)); y = (x[:, 0] > 0).astype(int)
        >>> linear_probe_accuracy((x[:20], y[:20]), (x[20:], y[20:]), C=1.0) > 0.8
        True
    """
    if not (np.isfinite(train[0]).all() and np.isfinite(test[0]).all()):
        return float("nan")
    model = fit_quietly(make_probe("logistic", C, seed), *train)
    return float(np.mean(model.predict(test[0]) == test[1]))


def best_probe(history: dict[str, list[float]]) -> tuple[int, float] | None:
    """The epoch (1-based) with the highest ``probe_accuracy`` in a history and that accuracy, or None.

    Ties go to the earliest epoch, as in :class:`DiscriminatorProbe`, which keeps a discriminator
    only when a later one scores strictly higher.

    Example:
        >>> nan = float("nan")
        >>> best_probe({"epoch": [0, 1, 2, 3], "probe_accuracy": [nan, 0.5, nan, 0.5]})
        (2, 0.5)
        >>> best_probe({"epoch": [0], "d_loss": [0.7]}) is None
        True
    """
    scores = [(value, int(epoch) + 1) for epoch, value in
              zip(history.get("epoch", []), history.get(PROBE_KEY, [])) if math.isfinite(value)]
    if not scores:
        return None
    accuracy, epoch = max(scores, key=lambda pair: (pair[0], -pair[1]))
    return epoch, accuracy


class DiscriminatorProbe(keras.callbacks.Callback):
    """Adds ``probe_accuracy`` to the epoch logs every ``every`` epochs and after the last one, and
    saves the best-scoring discriminator.

    The probe reads the discriminator in inference mode. Its BatchNorm moving statistics were
    accumulated on real and generated batches alike, so for the probe they are first re-estimated
    on the probe's real images (:func:`~gantransfer.gan.features.reestimate_batchnorm`), exactly as
    the transfer strategies do before they freeze or probe a trunk: the score then predicts what
    those strategies will see. (Training-mode batch statistics would make each image's features
    depend on the others in its batch.) The re-estimation works on a copy of the statistics: they
    are put back before training goes on, and the saved discriminator holds them as trained, like
    ``discriminator.keras``. Nothing else changes, and no random draw is made, so a run with the
    probe trains exactly as one without.

    An epoch whose losses or variables are not finite is not scored, and its discriminator is
    never saved.

    The best discriminator is saved as it is scored, unless :meth:`keeper` has given the saving to
    a callback of its own, to place after a checkpoint.

    Args:
        fit_images: uint8 ``(N, H, W, C)`` training images the probe fits on.
        fit_labels: Their labels.
        score_images: uint8 training images it is scored on (none of ``fit_images``).
        score_labels: Their labels.
        every: Epoch interval.
        epochs: The run's last epoch, always scored.
        best_path: Where the best-scoring discriminator is saved; None saves none.
        seed: Seed of the logistic regression's solver.

    Attributes:
        best_epoch: The epoch (1-based) of the best score so far, or None.
        best_accuracy: That score, or None.

    Example:
        >>> x = np.zeros((4, 16, 16, 1), "uint8"); y = np.array([0, 1, 0, 1])
        >>> DiscriminatorProbe(x[:2], y[:2], x[2:], y[2:], every=1, epochs=2).best_epoch is None
        True
    """

    def __init__(self, fit_images: np.ndarray, fit_labels: np.ndarray, score_images: np.ndarray,
                 score_labels: np.ndarray, every: int, epochs: int,
                 best_path: str | Path | None = None, seed: int = 0) -> None:
        super().__init__()
        self.fit_images = np.asarray(fit_images)
        self.fit_labels = np.asarray(fit_labels)
        self.score_images = np.asarray(score_images)
        self.score_labels = np.asarray(score_labels)
        self.every = every
        self.epochs = epochs
        self.best_path = Path(best_path) if best_path is not None else None
        self.seed = seed
        self.best_epoch: int | None = None
        self.best_accuracy: float | None = None
        self._candidate: tuple[int, float] | None = None  # scored best, not yet saved
        self._deferred = False

    def keeper(self) -> keras.callbacks.Callback:
        """A callback that saves the best discriminator at epoch end, in place of this probe.

        Put it after the checkpoint callback, and the probe before the history's: a best-probe
        discriminator is then only ever one of a checkpointed epoch, and every checkpointed epoch
        has its row in the history.
        """
        self._deferred = True
        return _BestProbeKeeper(self)

    def resume_from(self, history: dict[str, list[float]]) -> None:
        """Takes the best score so far from the history of the epochs a resumed run keeps.

        A best epoch whose saved discriminator is missing is forgotten (with a warning), so the next
        score saves one and the file and the record agree.
        """
        found = best_probe(history)
        if found is None:
            return
        if self.best_path is not None:
            saved = saved_best_probe(self.best_path)
            if not self.best_path.is_file() or (saved is not None and saved[0] != found[0]):
                logger.warning("%s does not hold epoch %d, which scored best so far (probe "
                               "accuracy %.4f), and its checkpoint is gone; the best of the epochs "
                               "still to train will be kept instead", self.best_path, *found)
                return
        self.best_epoch, self.best_accuracy = found

    def score(self, discriminator: keras.Model) -> float:
        """The probe's accuracy on the discriminator as it is now (its weights are left unchanged)."""
        fit = to_gan_range(self.fit_images)
        scored = to_gan_range(self.score_images)
        norms = [layer for layer in discriminator.layers
                 if isinstance(layer, layers.BatchNormalization)]
        trained = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in norms]
        try:
            # Statistics of every real image the probe uses; their labels play no part in them.
            reestimate_batchnorm(discriminator, np.concatenate([fit, scored]))
            fit_features = probe_features(discriminator, fit)
            score_features = probe_features(discriminator, scored)
        finally:
            for layer, (mean, variance) in zip(norms, trained):
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(variance)
        return linear_probe_accuracy((fit_features, self.fit_labels),
                                     (score_features, self.score_labels), seed=self.seed)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or not logs_finite(logs):
            return
        if (epoch + 1) % self.every and epoch + 1 != self.epochs:
            return
        if non_finite_variables(self.model):  # the divergence guard says what and stops training
            return
        accuracy = self.score(self.model.discriminator)
        logs[PROBE_KEY] = accuracy
        if not math.isfinite(accuracy):
            logger.warning("epoch %d: the probe's features hold NaN or inf; no probe score",
                           epoch + 1)
            return
        if self.best_accuracy is None or accuracy > self.best_accuracy:
            self._candidate = (epoch + 1, accuracy)
            if not self._deferred:
                self.keep_best()

    def keep_best(self) -> None:
        """Saves the discriminator if the epoch just scored is the best so far."""
        if self._candidate is None:
            return
        if self.best_path is not None:
            save_best_probe(self.best_path.parent, self.model.discriminator, *self._candidate,
                            path=self.best_path)
        (self.best_epoch, self.best_accuracy), self._candidate = self._candidate, None


class _BestProbeKeeper(keras.callbacks.Callback):
    """Saves its probe's best discriminator at epoch end (see :meth:`DiscriminatorProbe.keeper`)."""

    def __init__(self, probe: DiscriminatorProbe) -> None:
        super().__init__()
        self.probe = probe

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.probe.keep_best()
