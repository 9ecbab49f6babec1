"""Callbacks that surround DCGAN training: samples, checkpoints, curves, throughput, NaN guard.

Each is a ``keras.callbacks.Callback``; :func:`gantransfer.gan.train.train_gan` wires them up, and any
of them can be used with a plain ``DCGAN.fit`` as well. The linear probe of the discriminator's
features is one too, in :mod:`gantransfer.gan.probe`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gantransfer.data.transforms import GAN_RANGE
from gantransfer.errors import TrainingDiverged
from gantransfer.gan.checkpoint import non_finite_variables, prune_checkpoints, save_checkpoint
from gantransfer.images import save_image_grid
from gantransfer.runs import atomic_save, atomic_write_text

logger = logging.getLogger(__name__)

LOSS_KEYS = ("d_loss", "g_loss")
TRAINING_KEYS = ("d_loss", "g_loss", "d_real", "d_fake", "d_rotation")
METRIC_KEYS = ("fid", "kid")
PROBE_KEY = "probe_accuracy"  # what gantransfer.gan.probe.DiscriminatorProbe adds to the logs


def logs_finite(logs: dict[str, Any] | None) -> bool:
    """True when every training number in ``logs`` (losses, D outputs) is finite."""
    for key, value in (logs or {}).items():
        if key not in TRAINING_KEYS:
            continue
        try:
            if not math.isfinite(float(value)):
                return False
        except (TypeError, ValueError):
            continue
    return True


class SampleGrid(keras.callbacks.Callback):
    """Writes ``samples/epoch_NNN.png`` after every epoch, generated from fixed noise.

    The same noise every epoch shows how the generator's picture of each z evolves.

    Args:
        fixed_noise: ``(N, latent_dim)`` noise; N images per grid.
        folder: Where the PNG files go.
        value_range: Value range of the generator's output.

    Example:
        >>> callback = SampleGrid(np.zeros((16, 100), "float32"), "outputs/run/samples")
    """

    def __init__(self, fixed_noise: np.ndarray, folder: str | Path,
                 value_range: tuple[float, float] = GAN_RANGE) -> None:
        super().__init__()
        self.fixed_noise = np.asarray(fixed_noise, dtype="float32")
        self.folder = Path(folder)
        self.value_range = value_range

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not logs_finite(logs):
            return
        images = keras.ops.convert_to_numpy(self.model.generator(self.fixed_noise, training=False))
        save_image_grid(images, self.folder / f"epoch_{epoch + 1:03d}.png", value_range=self.value_range)


class GANCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state after every epoch (see :mod:`gantransfer.gan.checkpoint`).

    An epoch whose losses or variables are not finite is not saved, so the last checkpoint is always
    a good one.

    Args:
        folder: The checkpoints folder.
        fixed_noise: Stored with the state so a resumed run draws the same sample grids.
        keep: How many recent checkpoints to keep; 0 keeps all.
        settings: The settings that define the run, stored so a resume can refuse changed ones.
    """

    def __init__(self, folder: str | Path, fixed_noise: np.ndarray, keep: int = 3,
                 settings: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.fixed_noise = np.asarray(fixed_noise, dtype="float32")
        self.keep = keep
        self.settings = settings
        self.last_saved_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not logs_finite(logs):
            return
        try:
            save_checkpoint(self.model, self.folder, epoch + 1, self.fixed_noise, self.settings)
        except TrainingDiverged as error:  # the guard stops training; the last good one stays
            logger.warning("%s", error)
            return
        self.last_saved_epoch = epoch + 1
        prune_checkpoints(self.folder, self.keep)


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_s`` to the batch and epoch logs, so the progress bar and history show it.

    Args:
        batch_size: Images per step (the last, smaller batch of an epoch is counted exactly from
            ``num_images``).
        num_images: Images per epoch.
    """

    def __init__(self, batch_size: int, num_images: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_images = num_images
        self.epoch_rates: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = self._last = time.perf_counter()
        self._seen = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        self._seen = min(self.num_images, self._seen + self.batch_size)
        if logs is not None:
            logs["images_per_s"] = self._seen / max(now - self._epoch_start, 1e-9)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        rate = self._seen / max(time.perf_counter() - self._epoch_start, 1e-9)
        self.epoch_rates.append(rate)
        if logs is not None:
            logs["images_per_s"] = rate


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training when the losses, or any weight or optimizer variable, become NaN or inf.

    The losses are checked after every batch. The whole state (both networks with their BatchNorm
    statistics, both optimizers) is checked every ``check_every`` batches and at the end of every
    epoch, before the checkpoint: losses can stay finite while a BatchNorm moving variance
    overflows. ``fit`` returns normally; :attr:`failure` then says what happened, and the caller
    restores the last good checkpoint. (Keras's ``TerminateOnNaN`` sees only the loss, and says
    nothing a caller can use.)

    Args:
        check_every: Batches between two checks of the whole state.

    Example:
        >>> NonFiniteGuard(check_every=50).failure is None
        True
    """

    def __init__(self, check_every: int = 50) -> None:
        super().__init__()
        self.check_every = check_every
        self.failure: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def _stop(self, failure: str) -> None:
        self.failure = failure
        self.model.stop_training = True

    def _check_variables(self, where: str) -> None:
        bad = non_finite_variables(self.model)
        if bad and self.failure is None:
            shown = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
            self._stop(f"{len(bad)} weight or optimizer variables became NaN or inf at epoch "
                       f"{self._epoch + 1}, {where} ({shown}), while the losses were finite")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        bad = {k: float(v) for k, v in (logs or {}).items()
               if k in LOSS_KEYS and not math.isfinite(float(v))}
        if bad:
            shown = ", ".join(f"{k}={v}" for k, v in bad.items())
            self._stop(f"losses became non-finite at epoch {self._epoch + 1}, batch {batch + 1} "
                       f"({shown})")
        elif (batch + 1) % self.check_every == 0:
            self._check_variables(f"batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.failure is None:
            self._check_variables("at its end")


class CollapseWatch(keras.callbacks.Callback):
    """Says when GAN training has collapsed: D's loss pinned near 0, or G's images saturated at ±1.

    An epoch counts as collapsed when its mean ``d_loss`` is below ``d_loss_floor`` (D tells every
    image apart, and G learns nothing), or when at least ``saturated_share`` of the fixed-noise
    samples' pixels lie beyond ±0.99. After ``patience`` such epochs in a row it warns once, and, with
    ``stop``, ends training and records why in :attr:`failure`.

    Example:
        >>> CollapseWatch(np.zeros((4, 8), "float32")).collapsed_epochs
        0
    """

    def __init__(self, fixed_noise: np.ndarray, *, stop: bool = False, patience: int = 2,
                 d_loss_floor: float = 0.01, saturated_share: float = 0.9) -> None:
        super().__init__()
        self.fixed_noise = np.asarray(fixed_noise, dtype="float32")
        self.stop = stop
        self.patience = patience
        self.d_loss_floor = d_loss_floor
        self.saturated_share = saturated_share
        self.collapsed_epochs = 0
        self.failure: str | None = None
        self._warned = False

    def _symptom(self, logs: dict[str, Any]) -> str | None:
        d_loss = logs.get("d_loss")
        if d_loss is not None and math.isfinite(float(d_loss)) and float(d_loss) < self.d_loss_floor:
            return f"the discriminator's loss is pinned at {float(d_loss):.2g}"
        images = keras.ops.convert_to_numpy(self.model.generator(self.fixed_noise, training=False))
        share = float(np.mean(np.abs(images) > 0.99))
        if share >= self.saturated_share:
            return f"{share:.0%} of the generator's pixels are saturated at -1 or 1"
        return None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        symptom = self._symptom(logs or {})
        self.collapsed_epochs = self.collapsed_epochs + 1 if symptom else 0
        if symptom and self.collapsed_epochs >= self.patience:
            message = (f"GAN training has collapsed: {symptom}, for {self.collapsed_epochs} epochs "
                       f"in a row (epoch {epoch + 1}); try a lower gan.learning_rate, or start again "
                       "with another train.seed")
            if self.stop:
                self.failure = message
                self.model.stop_training = True
            elif not self._warned:
                logger.warning("%s (set train.stop_on_collapse=true to stop at this point)",
                               message)
                self._warned = True


class HistoryCSV(keras.callbacks.CSVLogger):
    """Keras's ``CSVLogger`` without the empty ``val_*`` columns it adds when there is no validation.

    A GAN has no validation data; the plain logger would still write ``val_d_loss``... full of NA.
    Appending to a file whose columns differ (a resume that turned ``fid`` or ``probe_accuracy`` on
    or off), it keeps every column of both, rewriting the earlier rows with NA where they have none,
    so that every row still lines up with the header.

    Args:
        filename: The CSV file.
        append: Append to an existing file (a resumed run) instead of starting a new one.
        extra_keys: Columns that only some epochs fill (e.g. ``fid``); the others write NA.
    """

    def __init__(self, filename: str, append: bool = False, extra_keys: tuple[str, ...] = ()) -> None:
        super().__init__(filename, append=append)
        self.extra_keys = tuple(extra_keys)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.keys is None and logs:
            header, rows = self._earlier_rows()
            self.keys = sorted(set(logs) | set(self.extra_keys) | set(header) - {"epoch"})
            if header and header != ["epoch", *self.keys]:
                self._rewrite(rows)
        super().on_epoch_end(epoch, logs)
        # On disk before the epoch's checkpoint, which commits the epoch: a crash of the machine
        # must not keep the checkpoint and lose the row.
        try:
            os.fsync(self.csv_file.fileno())
        except (AttributeError, OSError, io.UnsupportedOperation):  # not a local file: flushed only
            pass

    def _earlier_rows(self) -> tuple[list[str], list[dict[str, str]]]:
        """The header and rows of the file appended to (none when starting a new one)."""
        path = Path(self.filename)
        if not self.append or not path.is_file():
            return [], []
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle, delimiter=self.sep)
            return list(reader.fieldnames or []), list(reader)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", *self.keys], delimiter=self.sep,
                                restval="NA", extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        # The file Keras opened is being replaced: reopen it as Keras does, to append to the new one.
        self.csv_file.close()
        atomic_write_text(Path(self.filename), buffer.getvalue())
        self.csv_file = open(self.filename, "a")  # noqa: SIM115 (Keras closes it at the end)
        self.append_header = False


class GANMetrics(keras.callbacks.Callback):
    """Adds ``fid`` and ``kid`` to the epoch logs every ``every`` epochs and after the last one.

    Args:
        extractor: Pixels in [0, 255] to features (see :mod:`gantransfer.evaluation.gan_metrics`).
        real_images: Real uint8 images to compare against (features computed once).
        every: Epoch interval.
        epochs: The run's last epoch, always scored.
        seed: Seed of the generated noise and the KID subsets; the same every time, so the curve
            shows the generator changing, not the noise.
    """

    def __init__(self, extractor: keras.Model, real_images: np.ndarray, every: int, epochs: int,
                 seed: int = 0) -> None:
        super().__init__()
        from gantransfer.evaluation.gan_metrics import features

        self.extractor = extractor
        self.real_features = features(extractor, real_images)
        self.count = len(real_images)
        self.every = every
        self.epochs = epochs
        self.seed = seed

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None or not logs_finite(logs):
            return
        if (epoch + 1) % self.every and epoch + 1 != self.epochs:
            return
        from gantransfer.evaluation.gan_metrics import (features, frechet_distance,
                                                        kernel_inception_distance)
        from gantransfer.gan.sampling import generate, latent_noise

        generated = generate(self.model.generator, latent_noise(self.model.generator, self.count,
                                                                self.seed))
        fake = features(self.extractor, generated)
        logs["fid"] = frechet_distance(self.real_features, fake)
        logs["kid"] = kernel_inception_distance(self.real_features, fake, seed=self.seed)[0]


class LossPlot(keras.callbacks.Callback):
    """Redraws ``losses.png`` from ``history.csv`` after every epoch (place it after the CSVLogger).

    Two panels: the discriminator's and generator's losses, and the mean D(x) and D(G(z)).
    """

    def __init__(self, history_csv: str | Path, path: str | Path) -> None:
        super().__init__()
        self.history_csv = Path(history_csv)
        self.path = Path(path)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        plot_history(self.history_csv, self.path)


def read_history(history_csv: str | Path) -> dict[str, list[float]]:
    """Reads a Keras ``CSVLogger`` file into columns of floats."""
    columns: dict[str, list[float]] = {}
    path = Path(history_csv)
    if not path.is_file():
        return columns
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if None in row or None in row.values():  # a line with too many or too few fields
                continue
            for key, value in row.items():
                try:
                    columns.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):
                    columns.setdefault(key, []).append(float("nan"))
    return columns


def plot_history(history_csv: str | Path, path: str | Path) -> None:
    """Plots GAN losses and discriminator outputs per epoch into a PNG.

    Runs that logged them get a panel for the FID and one for the linear probe's accuracy
    (``probe_accuracy``, its best epoch starred).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    history = read_history(history_csv)
    if not history.get("epoch"):
        return
    epochs = [e + 1 for e in history["epoch"]]

    def scored(key: str) -> list[tuple[float, float]]:
        return [(e, v) for e, v in zip(epochs, history.get(key, [])) if math.isfinite(v)]

    fid, probe = scored("fid"), scored(PROBE_KEY)
    panels = 2 + bool(fid) + bool(probe)
    figure, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6))
    left, right, *extra = axes
    if fid:
        axis = extra.pop(0)
        axis.plot([p[0] for p in fid], [p[1] for p in fid], marker="o", color="tab:green")
        axis.set_xlabel("epoch")
        axis.set_ylabel("FID (lower is better)")
    if probe:
        axis = extra.pop(0)
        axis.plot([p[0] for p in probe], [p[1] for p in probe], marker="o", color="tab:purple")
        best = max(probe, key=lambda p: (p[1], -p[0]))  # the earliest of equal scores is kept
        axis.plot([best[0]], [best[1]], marker="*", markersize=14, color="tab:red", linestyle="",
                  label=f"best: epoch {best[0]:.0f}, {best[1]:.3f}")
        axis.set_xlabel("epoch")
        axis.set_ylabel("linear-probe accuracy")
        # Five points either side: the curve's few-point changes stay visible, its scale honest.
        scores = [p[1] for p in probe]
        axis.set_ylim(max(0.0, min(scores) - 0.05), min(1.0, max(scores) + 0.05))
        axis.legend(loc="lower right")
    for key, label in (("d_loss", "discriminator loss"), ("g_loss", "generator loss")):
        if key in history:
            left.plot(epochs, history[key], marker="o", label=label)
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.legend()
    for key, label in (("d_real", "mean D(x)"), ("d_fake", "mean D(G(z))"),
                       ("d_rotation", "rotation accuracy (real)")):
        if key in history:
            right.plot(epochs, history[key], marker="o", label=label)
    right.set_xlabel("epoch")
    right.set_ylim(0, 1)
    right.legend()
    for axis in axes:  # epochs are whole: no 1.25 or 2.5 on a short run's axis
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    atomic_save(Path(path), lambda name: figure.savefig(name, dpi=100))
    plt.close(figure)
