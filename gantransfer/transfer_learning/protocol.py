"""The comparison protocol: label budgets x seeds x strategies on one target dataset.

For each budget (labels per class) and seed, the labeled images are drawn from the training split,
and a fraction of them per class is held out for validation: validation comes from the labeled
budget only. Every strategy trains on the same split and touches the test set once.
"""

from __future__ import annotations

import logging
import math
import tempfile
from concurrent.futures import as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Callable

import keras
import numpy as np

from gantransfer import backend, runs, runtime
from gantransfer.config import TransferConfig
from gantransfer.data import Dataset, select_labels_per_class
from gantransfer.errors import ConfigError, DataError, GantransferError
from gantransfer.evaluation.metrics import classification_metrics
from gantransfer.evaluation.results import StrategyResult, normalize_budget
from gantransfer.registry import STRATEGIES, in_family
from gantransfer.robustness import AttackSettings, robust_accuracy
from gantransfer.robustness.training import plain
from gantransfer.runs import atomic_save
from gantransfer.transfer_learning.classifiers import augmentation_views, shift_averaged
from gantransfer.transfer_learning.probe import copy_count
from gantransfer.transfer_learning.strategies import (RUNNERS, Split, StrategyContext,
                                                      StrategyOutcome, StrategySkipped,
                                                      adversarial_training)
from gantransfer.transfer_learning.trunks import TrunkArchitecture, architecture_of, load_discriminator

logger = logging.getLogger(__name__)

Budget = int | str  # a number of labels per class, or "all"


def check_strategies(names: list[str]) -> list[str]:
    """Checks strategy names against the registry, listing the valid ones on a mistake.

    Example:
        >>> check_strategies(["scratch", "pixels-linear", "scratch"])
        ['scratch', 'pixels-linear']
    """
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown or not names:
        raise ConfigError(f"strategies: received {', '.join(unknown) or 'none'}, expected some of "
                          f"{', '.join(STRATEGIES)}")
    return list(dict.fromkeys(names))


def budget_split(y: np.ndarray, budget: Budget, seed: int, validation_fraction: float,
                 num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Draws a label budget and splits it per class into train and validation indices.

    Every class keeps at least one training and one validation image.

    Example:
        >>> y = np.repeat(np.arange(3), 20)
        >>> train, val = budget_split(y, 10, seed=0, validation_fraction=0.2, num_classes=3)
        >>> len(train), len(val), np.bincount(y[val]).tolist()
        (24, 6, [2, 2, 2])
    """
    if budget == "all":
        chosen = np.arange(len(y))
    else:
        chosen = select_labels_per_class(y, int(budget), seed)
    rng = np.random.default_rng([seed, 7])
    train, val = [], []
    for cls in range(num_classes):
        members = chosen[y[chosen] == cls]
        if len(members) < 2:
            raise DataError(f"class {cls} has {len(members)} labeled image(s) in the budget; each "
                            "class needs at least 2 (one to train, one to validate)")
        members = rng.permutation(members)
        n_val = min(len(members) - 1, max(1, int(round(validation_fraction * len(members)))))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


@dataclass
class TransferRun:
    """What :func:`run_transfer` produced."""

    results: list[StrategyResult] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    workers: int = 1  # the processes that trained the models (transfer.workers), 1 for this one


def _pixels(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype="float32")


def _first_of(pool: Any, order: np.ndarray, count: int) -> np.ndarray:
    """The pool's first ``count`` images in ``order``, as pixels: decoded only when asked for."""
    return _pixels(pool.load(order[:count]))


def model_path(folder: Path, strategy: str, budget: Budget, seed: int, suffix: str) -> Path:
    """Where one trained classifier is saved."""
    return Path(folder) / f"{strategy}_lpc-{budget}_seed-{seed}{suffix}"


def _save_model(model: keras.Model, folder: Path, strategy: str, budget: Budget, seed: int) -> str:
    path = model_path(folder, strategy, budget, seed, ".keras")
    # An adversarially trained model saves as a plain one, and a mixed-precision one as float32.
    atomic_save(path, runtime.portable_model(plain(model)).save)
    return str(path)


def _with_test_shift(outcome: StrategyOutcome, shift: int, x_test: np.ndarray) -> StrategyOutcome:
    """A strategy's final model averaged over moved copies of each image (``transfer.test_shift``;
    :func:`~gantransfer.transfer_learning.classifiers.shift_averaged`), with its test predictions
    made again by it. It is the model that is saved, attacked and reported."""
    model = shift_averaged(plain(outcome.model), shift)
    predictions = np.argmax(model.predict(x_test, batch_size=256, verbose=0), axis=-1)
    distances = "1 pixel" if shift == 1 else f"1 to {shift} pixels"
    note = (f"test-time shifts (transfer.test_shift): each prediction is the mean of the softmax "
            f"over the image and {copy_count(shift)} copies of it moved {distances} down, up, "
            "right and left")
    record = {**outcome.record, "notes": [*outcome.record.get("notes", []), note]}
    return StrategyOutcome(model, predictions, record)


def robustness_record(model: keras.Model, name: str, x_test: np.ndarray, y_test: np.ndarray,
                      settings: TransferConfig, seed: int) -> dict[str, Any]:
    """How the model was trained against attacks, and its accuracy under the configured attack.

    Args:
        model: The trained classifier (pixels in [0, 255] to logits).
        name: Its strategy: linear probes are never adversarially trained.
        x_test: Test pixels; the first ``transfer.robustness_images`` are attacked.
        y_test: Their labels.
        settings: The transfer settings (``adversarial_*`` and ``robustness*``).
        seed: Seed of the attack's random starts.

    Returns:
        ``StrategyResult`` fields: ``adversarial_training``, and with ``transfer.robustness``,
        ``robust_accuracy`` by epsilon and ``robustness_attack``.
    """
    record: dict[str, Any] = {}
    training = adversarial_training(settings)
    if training is not None and STRATEGIES[name].method != "linear-probe":
        record["adversarial_training"] = training.describe()
    if settings.robustness:
        attack = AttackSettings(settings.robustness_method, steps=settings.robustness_steps,
                                seed=seed)
        count = min(settings.robustness_images, len(y_test))
        points = robust_accuracy(plain(model), x_test[:count], y_test[:count],
                                 settings.robustness, attack)
        record["robust_accuracy"] = {p.epsilon: p.accuracy for p in points}
        zero = max(p.zero_gradient_images for p in points)
        record["robustness_attack"] = (f"{attack.describe()} on {count} test images"
                                       + (f"; {zero} had a zero gradient (masked, not robust)"
                                          if zero else ""))
    return record


def augmentation_note(settings: TransferConfig, image_size: int) -> str | None:
    """What a network trained through the pixels saw of its images under the config's
    augmentation, for its result's notes; None without augmentation.

    Example:
        >>> augmentation_note(TransferConfig(augment_shift=1 / 32), 32)
        'trained on its images under random shifts by whole pixels, up to 0.03125 of the side (1 pixel each way at 32 px) (transfer.augment_shift)'
    """
    parts = []
    if settings.augment_shift > 0:
        views, _ = augmentation_views(False, settings.augment_shift, image_size, image_size)
        reach = max(abs(dy) for _, dy, _ in views)
        pixels = "no whole pixel: no shift" if reach == 0 else \
            f"{reach} pixel{'s' if reach > 1 else ''} each way"
        parts.append(f"random shifts by whole pixels, up to {settings.augment_shift:g} of the "
                     f"side ({pixels} at {image_size} px) (transfer.augment_shift)")
    if settings.augment_flip:
        parts.append("mirror images left to right, half the time (transfer.augment_flip)")
    return f"trained on its images under {' and '.join(parts)}" if parts else None


Discriminator = str | Path | keras.Model  # a model, a .keras file or a train-gan run folder


def _per_seed(discriminator: Discriminator | Sequence[Discriminator] | None,
              seeds: int) -> list[keras.Model | None]:
    """Each seed's discriminator, loaded: the one given for every seed, or a list's, one per seed.

    Raises:
        ConfigError: A list whose length is not ``seeds``, or whose trunks differ in architecture.
    """
    if discriminator is None or isinstance(discriminator, (str, Path, keras.Model)):
        model = load_discriminator(discriminator) if discriminator is not None else None
        return [model] * seeds
    if len(discriminator) != seeds:
        raise ConfigError(f"run_transfer was given {len(discriminator)} discriminators for "
                          f"{seeds} seeds; give one per seed, or one for all of them")
    models = [load_discriminator(one) for one in discriminator]
    first, *others = [architecture_of(model) for model in models]
    if any(other != first for other in others):
        raise ConfigError(f"the seeds' discriminators differ in architecture ({first} and "
                          f"{next(o for o in others if o != first)}); one comparison needs one trunk")
    return models


def run_transfer(dataset: Dataset, strategies: list[str], labels_per_class: list[Budget],
                 seeds: int, settings: TransferConfig, *,
                 discriminator: Discriminator | Sequence[Discriminator] | None = None,
                 architecture: TrunkArchitecture | None = None,
                 validation_fraction: float = 0.2, models_dir: str | Path | None = None,
                 verbose: bool = False,
                 on_result: Callable[[StrategyResult], None] | None = None,
                 finished: list[StrategyResult] | None = None) -> TransferRun:
    """Runs every strategy at every budget and seed on a labeled dataset.

    Args:
        dataset: The target data, already at the trunk's image size and channels, with its own test
            split; its validation split is not used (validation comes from the budget).
        strategies: Names from the registry, :data:`gantransfer.registry.STRATEGIES`.
        labels_per_class: Budgets, e.g. ``[10, 100, "all"]``.
        seeds: Seeds 0..seeds-1 draw the budget, the validation split and initialisations.
        settings: How every strategy trains; ``settings.workers`` says how many models train at
            once, each in its own process (:func:`worker_count`).
        discriminator: The GAN's discriminator (model, ``.keras`` file or run folder); needed by
            the strategies that need a ``discriminator`` (the registry's ``gan`` family). A list
            gives each seed its own, ``discriminator[seed]`` (GANs of one architecture, trained
            at different seeds): the seeds' differences then include the GAN's own variation.
        architecture: The trunk architecture when no discriminator is given.
        validation_fraction: Share of each class's budget held out for validation.
        models_dir: Where trained classifiers are saved, or None to not save them.
        verbose: Show a progress bar per model (one for the whole run with several workers).
        on_result: Called with each result as soon as it is ready (with several workers, in the
            order they finish).
        finished: Results of earlier sessions to keep: a (strategy, budget, seed) that has an ok
            result there is not trained again, and its result is kept as it is.

    Returns:
        A :class:`TransferRun` with one :class:`StrategyResult` per (strategy, budget, seed), in
        that order: budget, then seed, then strategy.
    """
    strategies = check_strategies(strategies)
    if dataset.num_classes is None or not dataset.train.labeled:
        raise DataError(f"dataset {dataset.name!r} has no labels; transfer needs a labeled dataset "
                        "(a folder with one subfolder per class, or labels in the npz/IDX files)")
    if len(dataset.test) == 0:
        raise DataError(f"dataset {dataset.name!r} has no test images; set data.test_split > 0")
    per_seed = _per_seed(discriminator, seeds)
    disc_model = per_seed[0]
    if disc_model is not None:
        architecture = architecture_of(disc_model)
    elif any("discriminator" in STRATEGIES[name].needs for name in strategies):
        needy = [n for n in strategies if "discriminator" in STRATEGIES[n].needs]
        raise ConfigError(f"strategies {', '.join(needy)} "
                          "need a trained GAN: pass --gan-run RUN_DIR or --discriminator FILE")
    if architecture is None:
        raise ConfigError("run_transfer needs a discriminator or a trunk architecture")
    if (architecture.image_size, architecture.channels) != (dataset.image_size, dataset.channels):
        raise DataError(f"the trunk takes {architecture.image_size}x{architecture.image_size}x"
                        f"{architecture.channels} images but the dataset has {dataset.image_size}x"
                        f"{dataset.image_size}x{dataset.channels}; load it at the GAN's size")

    total = len(labels_per_class) * seeds * len(strategies)
    jobs = [_Job(name, budget, seed, f"[{i + 1}/{total}] {name}, {budget} labels/class, seed {seed}")
            for i, (budget, seed, name) in enumerate(
                (b, s, n) for b in labels_per_class for s in range(seeds) for n in strategies)]
    already = {(r.strategy, r.labels_per_class, r.seed): r for r in finished or ()
               if r.status == "ok"}
    kept = {job: already[key] for job in jobs
            if (key := (job.name, normalize_budget(job.budget), job.seed)) in already}
    workers = worker_count(settings.workers, len(jobs) - len(kept), dataset)
    trainer = _Trainer(dataset, settings, architecture, per_seed, validation_fraction,
                       models_dir, verbose=verbose and workers == 1)
    results: dict[_Job, StrategyResult] = {}
    overall = keras.utils.Progbar(total, unit_name="model") if verbose else None
    run = TransferRun(workers=workers)
    skipped_reasons: dict[str, str] = {}

    def done(job: _Job, record: StrategyResult, skip: tuple[str, bool] | None = None) -> None:
        if skip is not None:
            _note_skip(job.name, *skip, strategies, skipped_reasons, run.skipped)
        results[job] = record
        if job not in kept and on_result is not None:
            on_result(record)
        if overall is not None:
            overall.update(len(results), finalize=len(results) == total)

    for job, record in kept.items():
        logger.info("%s: kept from an earlier session", job.label)
        done(job, record)
    left = [job for job in jobs if job not in kept]
    if workers > 1:
        logger.info("training %d models, %d at a time, each in its own process on one thread "
                    "(transfer.workers)", len(left), workers)
        _train_in_processes(trainer, left, workers, skipped_reasons, done)
    else:
        for job in left:
            if job.name in skipped_reasons:
                done(job, trainer.skipped(job, skipped_reasons[job.name]))
            else:
                done(job, *trainer.train(job))
    run.results = [results[job] for job in jobs]
    return run


def worker_count(setting: int | str, models: int, dataset: Dataset | None = None) -> int:
    """How many processes train a run's models at once (``transfer.workers``).

    ``auto`` takes one per core this process may use (:func:`gantransfer.backend.usable_cores`),
    at most ``models`` and as many as the free memory holds (a backend and a copy of ``dataset``
    each); 1 on a GPU or under a distribution, whose one process uses the devices fully. A number
    is taken as it is, but never more than ``models``.

    Raises:
        ConfigError: A number above 1 on a GPU or under ``train.distribute``.

    Example:
        >>> worker_count(4, models=2), worker_count("auto", models=1)
        (2, 1)
    """
    devices = bool(backend.accelerators()) or runtime.current().distribute != "none"
    if setting == "auto":
        if devices:
            return 1
        return max(1, min(backend.usable_cores(), models, _memory_holds(dataset)))
    if int(setting) > 1 and devices:
        raise ConfigError(f"transfer.workers={setting}: several processes train on the CPU, and "
                          "this run trains on its devices (a GPU, or train.distribute), which one "
                          "process uses fully; set transfer.workers=auto or 1")
    return max(1, min(int(setting), models))


WORKER_MEMORY = 1 << 30
"""What a worker process takes besides its copy of the data: a backend and a few small models."""


def _memory_holds(dataset: Dataset | None) -> int:
    """How many worker processes the available memory holds (no limit where it is not known)."""
    free = runs.available_memory()
    if free is None:
        return 1 << 16
    data = 0
    if dataset is not None:
        # Its uint8 images, and the float32 pixels of the test split and of one budget.
        data = sum(part.x.nbytes for part in (dataset.train, dataset.test) if part.x is not None)
        data += 4 * (dataset.test.x.nbytes if dataset.test.x is not None else 0)
    return max(1, free // (WORKER_MEMORY + 2 * data))


@dataclass(frozen=True)
class _Job:
    """One model of a run: a strategy at a budget and seed, and how its log line names it."""

    name: str
    budget: Budget
    seed: int
    label: str


def _longest_first(jobs: list[_Job]) -> list[_Job]:
    """The order the workers take the models in: the largest budgets first, and at each budget and
    seed the networks trained through the pixels (the costliest) before the heads and probes, so
    that the last models to finish are short ones and no worker waits long on another at the end.

    Example:
        >>> [(j.name, j.budget) for j in _longest_first([_Job("pixels-linear", 10, 0, ""),
        ...     _Job("gan-frozen", 50, 0, ""), _Job("scratch", 50, 0, "")])]
        [('scratch', 50), ('gan-frozen', 50), ('pixels-linear', 10)]
    """
    def size(budget: Budget) -> float:
        return math.inf if budget == "all" else float(budget)

    return sorted(jobs, key=lambda job: (-size(job.budget), job.seed,
                                         not STRATEGIES[job.name].trains_through_pixels))


def _note_skip(name: str, reason: str, every_budget: bool, strategies: list[str],
               skipped_reasons: dict[str, str], skipped: list[dict[str, str]]) -> None:
    """Records a skipped strategy for the report; one the reason holds for at every budget is not
    tried again. The ImageNet strategies share one backbone: if it cannot be had, all are."""
    family = STRATEGIES[name].family
    group = in_family(family) if family == "imagenet" else (name,)
    for member in group:
        if member in strategies and member not in skipped_reasons:
            if every_budget:
                skipped_reasons[member] = reason
            entry = {"strategy": member, "reason": reason}
            if entry not in skipped:
                skipped.append(entry)
    logger.warning("skipping %s: %s", name, reason)


class _Trainer:
    """Trains one model of a run at a time, in the caller's process or in a worker's: the same
    numbers either way, since a model's draw and initialisation depend on its strategy, budget and
    seed alone. The splits of the latest budget and seed are kept for the next model."""

    def __init__(self, dataset: Dataset, settings: TransferConfig, architecture: TrunkArchitecture,
                 per_seed: list[keras.Model | None], validation_fraction: float,
                 models_dir: str | Path | None, *, verbose: bool) -> None:
        self.dataset, self.settings, self.architecture = dataset, settings, architecture
        self.per_seed, self.validation_fraction = per_seed, validation_fraction
        self.models_dir, self.verbose = models_dir, verbose
        self.x_test = _pixels(dataset.test.load(np.arange(len(dataset.test))))
        self._split: tuple[tuple[Budget, int], Split, dict[str, Any]] | None = None

    def _split_of(self, budget: Budget, seed: int) -> tuple[Split, dict[str, Any]]:
        """The budget's split at the seed, and the result fields that describe it."""
        if self._split is None or self._split[0] != (budget, seed):
            pool, test = self.dataset.train, self.dataset.test
            y_pool = pool.y
            train_idx, val_idx = budget_split(y_pool, budget, seed, self.validation_fraction,
                                              self.dataset.num_classes)
            # The real images that re-estimate BatchNorm statistics: only these are decoded.
            order = np.random.default_rng([seed, 11]).permutation(len(pool))
            split = Split(x_train=_pixels(pool.load(train_idx)), y_train=y_pool[train_idx],
                          x_val=_pixels(pool.load(val_idx)), y_val=y_pool[val_idx],
                          x_test=self.x_test, y_test=test.y,
                          unlabeled=_pixels(pool.load(order[:self.settings.bn_images])),
                          num_classes=self.dataset.num_classes, seed=seed,
                          unlabeled_pool=partial(_first_of, pool, order))
            sizes = {  # what the final model trained on: the whole budget when it was refitted
                "train_images": len(train_idx) + (len(val_idx) if self.settings.refit else 0),
                "val_images": len(val_idx)}
            self._split = ((budget, seed), split, sizes)
        return self._split[1], self._split[2]

    def _base(self, job: _Job) -> dict[str, Any]:
        return {"strategy": job.name, "labels_per_class": job.budget, "seed": job.seed,
                **self._split_of(job.budget, job.seed)[1]}

    def skipped(self, job: _Job, reason: str) -> StrategyResult:
        """The result of a model not trained, with why."""
        return StrategyResult(**self._base(job), status="skipped", reason=reason)

    def train(self, job: _Job) -> tuple[StrategyResult, tuple[str, bool] | None]:
        """Trains, tests and saves one model; returns its result, and ``(reason, every_budget)``
        when its strategy could not run (the result then says so)."""
        settings, test = self.settings, self.dataset.test
        split, _ = self._split_of(job.budget, job.seed)
        logger.info("%s", job.label)
        context = StrategyContext(split=split, settings=settings, architecture=self.architecture,
                                  discriminator=self.per_seed[job.seed], verbose=self.verbose,
                                  label=job.label)
        try:
            outcome = RUNNERS[job.name](context)
        except StrategySkipped as reason:
            return self.skipped(job, str(reason)), (str(reason), reason.every_budget)
        augmented = augmentation_note(settings, self.dataset.image_size)
        if augmented and STRATEGIES[job.name].trains_through_pixels:
            outcome.record["notes"] = [*outcome.record["notes"], augmented]
        if settings.test_shift:
            outcome = _with_test_shift(outcome, settings.test_shift, self.x_test)
        model_file = None if self.models_dir is None else _save_model(
            outcome.model, Path(self.models_dir), job.name, job.budget, job.seed)
        robustness = robustness_record(outcome.model, job.name, self.x_test, test.y, settings,
                                       job.seed)
        record = StrategyResult(**self._base(job), **outcome.record, model_file=model_file,
                                **robustness,
                                **classification_metrics(test.y, outcome.predictions,
                                                         self.dataset.num_classes))
        logger.info("  %s: test accuracy %.4f, %.1f s", job.name, record.test_accuracy,
                    record.train_time_s)
        return record, None


# The worker process's trainer, made once by _start_worker.
_WORKER: list[_Trainer] = []


def _start_worker(dataset: Dataset, settings: TransferConfig, architecture: TrunkArchitecture,
                  discriminators: list[str | None], validation_fraction: float,
                  models_dir: str | Path | None, run: runtime.Runtime, deterministic: bool,
                  log_level: int) -> None:
    """Makes a worker process ready to train models: the caller's runtime, determinism and log
    level, the seeds' discriminators from the files the caller wrote, and its own copy of the data."""
    logging.basicConfig(level=log_level, format="%(message)s")
    run.activate().__enter__()  # for the life of the process, which trains nothing else
    backend.set_determinism(deterministic)
    loaded = {path: load_discriminator(path) for path in set(discriminators) if path is not None}
    _WORKER[:] = [_Trainer(dataset, settings, architecture,
                           [loaded[path] if path is not None else None for path in discriminators],
                           validation_fraction, models_dir, verbose=False)]


def _train_in_worker(job: _Job) -> tuple[StrategyResult, tuple[str, bool] | None]:
    return _WORKER[0].train(job)


def _train_in_processes(trainer: _Trainer, jobs: list[_Job], workers: int,
                        skipped_reasons: dict[str, str],
                        done: Callable[..., None]) -> None:
    """Trains ``jobs`` in ``workers`` new processes, each computing on one thread, and hands each
    result to ``done`` as it comes. A strategy skipped for every budget is not tried again: its
    models not yet started are skipped with the same reason.

    Raises:
        GantransferError: A worker process died (killed, out of memory): the results handed on
            so far stand, and a resume trains the rest.
    """
    with tempfile.TemporaryDirectory(prefix="gantransfer-workers-") as folder:
        files: dict[int, str] = {}
        for model in trainer.per_seed:  # the workers load the seeds' discriminators from files
            if model is not None and id(model) not in files:
                files[id(model)] = str(Path(folder) / f"discriminator-{len(files)}.keras")
                runtime.portable_model(model).save(files[id(model)])
        discriminators = [files[id(m)] if m is not None else None for m in trainer.per_seed]
        initargs = (trainer.dataset, trainer.settings, trainer.architecture, discriminators,
                    trainer.validation_fraction, trainer.models_dir, runtime.current(),
                    backend.determinism_enabled(), logging.getLogger("gantransfer").getEffectiveLevel())
        with runtime.WorkerPool(workers, _start_worker, initargs) as pool:
            futures = pool.submit_all(_train_in_worker, _longest_first(jobs))
            for future in as_completed(futures):
                job = futures[future]
                if future.cancelled():
                    done(job, trainer.skipped(job, skipped_reasons[job.name]))
                    continue
                try:
                    record, skip = future.result()
                except BrokenProcessPool:
                    raise GantransferError(
                        f"a worker process stopped without a result for {job.label} (it was "
                        "killed, ran out of memory, or could not start: see above); the models "
                        "finished so far are kept: resume the run with fewer workers "
                        "(--set transfer.workers=1)") from None
                done(job, record, skip)
                if skip is not None and skip[0] == skipped_reasons.get(job.name):
                    for other, waiting in futures.items():
                        if waiting.name in skipped_reasons:
                            other.cancel()  # not started yet: skipped for the same reason
