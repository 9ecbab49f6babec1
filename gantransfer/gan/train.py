"""``train_gan``: the library behind ``gantransfer train-gan``.

It loads the data, builds the DCGAN, restores the last checkpoint when resuming, trains with
``fit()`` and the callbacks of :mod:`gantransfer.gan.callbacks`, and writes the run folder::

    config.yaml  generator.keras  discriminator.keras  checkpoints/  samples/epoch_NNN.png
    history.csv  losses.png  run.json  [tensorboard/]
    [discriminator_best_probe.keras  discriminator_best_probe.json]

With ``train.probe_every``, a linear probe scores the discriminator's features along the way
(:mod:`gantransfer.gan.probe`) and the best-scoring discriminator is kept.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gantransfer import backend, runtime
from gantransfer.config import Config, load_config, save_config
from gantransfer.data import Dataset, ImageBatches, load_dataset
from gantransfer.errors import (ConfigError, DataError, GantransferError, RunFolderError,
                                TrainingDiverged)
from gantransfer.gan.callbacks import (METRIC_KEYS, PROBE_KEY, CollapseWatch, GANCheckpoint,
                                       GANMetrics, HistoryCSV, LossPlot, NonFiniteGuard, SampleGrid,
                                       Throughput, plot_history, read_history)
from gantransfer.gan.checkpoint import (Checkpoint, latest_checkpoint, non_finite_variables,
                                        restore_checkpoint)
from gantransfer.gan.dcgan import DCGAN
from gantransfer.gan.models import build_discriminator, build_generator
from gantransfer.gan.probe import (BEST_PROBE_FILE, DiscriminatorProbe, best_probe, probe_subsets,
                                   save_best_probe, saved_best_probe)
from gantransfer.runs import (atomic_save, atomic_write_json, atomic_write_text, check_run_dir,
                              machine_description, package_versions, prepare_run_dir)

logger = logging.getLogger(__name__)


@dataclass
class TrainGanResult:
    """What :func:`train_gan` returns.

    Attributes:
        run_dir: The run folder.
        gan: The trained DCGAN (generator and discriminator inside).
        history: Per-epoch metrics of this call's epochs.
        images_per_second: Mean training throughput over this call's epochs.
        manifest: The contents of ``run.json``.
        chief: False on a ``multi-worker`` worker other than the chief: it trained alongside and
            wrote nothing; ``run_dir`` is the chief's.

    Example:
        >>> result = train_gan(config, "outputs/run")  # doctest: +SKIP
        >>> result.run_dir / "generator.keras", result.images_per_second  # doctest: +SKIP
    """

    run_dir: Path
    gan: DCGAN
    history: dict[str, list[float]] = field(default_factory=dict)
    images_per_second: float = 0.0
    manifest: dict[str, Any] = field(default_factory=dict)
    chief: bool = True


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python, NumPy and the backend, and sets the backend's kernels deterministic or not as
    the run asks (:func:`gantransfer.backend.set_determinism`)."""
    keras.utils.set_random_seed(seed)
    backend.set_determinism(deterministic)


def build_dcgan(config: Config, image_size: int, channels: int) -> DCGAN:
    """Builds and compiles the DCGAN a config describes, for images of the given shape.

    Example:
        >>> from gantransfer.config import load_config
        >>> gan = build_dcgan(load_config(None, ["gan.width=0.125"]), 32, 1)
        >>> gan.generator.output_shape
        (None, 32, 32, 1)
    """
    g = config.gan
    generator = build_generator(image_size, channels, latent_dim=g.latent_dim, width=g.width,
                                kernel_size=g.kernel_size)
    discriminator = build_discriminator(image_size, channels, width=g.width, kernel_size=g.kernel_size,
                                        leaky_relu_slope=g.leaky_relu_slope)
    gan = DCGAN(generator, discriminator, latent_dim=g.latent_dim, seed=config.train.seed,
                rotation_weight=g.rotation_weight)
    gan.compile(d_optimizer=keras.optimizers.Adam(g.learning_rate, beta_1=g.beta_1),
                g_optimizer=keras.optimizers.Adam(g.learning_rate, beta_1=g.beta_1),
                jit_compile=runtime.current().jit_compile)
    return gan  # compile built both optimizers


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _trim_history(history_csv: Path, epochs_done: int) -> None:
    """Drops rows of epochs a resumed run will train again (written after the last checkpoint)."""
    if not history_csv.is_file():
        return
    with history_csv.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept, garbled = [rows[0]], 0
    for row in rows[1:]:
        epoch = _number(row[0]) if row else None
        if epoch is None or len(row) != len(rows[0]):
            garbled += bool(row)
        elif epoch < epochs_done:
            kept.append(row)
    if garbled:  # e.g. a line cut short when a run was killed: the checkpoints are what counts
        logger.warning("dropped %d unreadable line(s) from %s", garbled, history_csv)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(kept)
    atomic_write_text(history_csv, buffer.getvalue())


def load_gan_data(config: Config, *, image_size: int | None = None, channels: int | None = None,
                  test_split: float | None = None, seed: int | None = None) -> Dataset:
    """The configured dataset as a GAN run uses it: the whole training split (no validation split;
    the GAN uses no labels), the test split held out by ``data.test_split`` and ``data.split_seed``.

    The keyword arguments override the config's values, to load the data at a discriminator's size
    or with another run's held-out split. ``image_size`` and ``channels`` go together: with an
    ``image_size``, ``channels`` replaces the config's (None keeps the source's channels).

    Example:
        >>> from gantransfer.config import load_config
        >>> data = load_gan_data(load_config(None, ["data.image_size=16"]))
        >>> data.image_size, len(data.val)
        (16, 0)
    """
    d = config.data
    return load_dataset(d.dataset, image_size=d.image_size if image_size is None else image_size,
                        channels=d.channels if image_size is None else channels,
                        validation_split=0.0,
                        test_split=d.test_split if test_split is None else test_split,
                        seed=d.split_seed if seed is None else seed,
                        max_in_memory_mb=d.max_in_memory_mb)


def _metrics_callback(config: Config, data: Dataset) -> list[keras.callbacks.Callback]:
    """FID/KID logging when ``train.metrics_every`` asks for it (InceptionV3 if cached, else a
    classifier trained on the dataset's labels)."""
    t = config.train
    if not t.metrics_every:
        return []
    from gantransfer.gan.extractors import dataset_classifier, inception_extractor

    extractor = inception_extractor(data.image_size, data.channels)
    if extractor is None:
        if not data.train.labeled:
            raise ConfigError("train.metrics_every needs labels to train the metrics' feature "
                              "classifier (or cached InceptionV3 weights); this dataset has none")
        extractor, _ = dataset_classifier(data, seed=t.seed)
    pool = data.test if len(data.test) >= 2 else data.train
    chosen = np.sort(np.random.default_rng(t.seed).permutation(len(pool))[:t.metrics_images])
    return [GANMetrics(extractor, pool.load(chosen), t.metrics_every, t.epochs, seed=t.seed)]


def _probe_callback(config: Config, data: Dataset, run_dir: Path) -> DiscriminatorProbe | None:
    """The linear probe when ``train.probe_every`` asks for it and the data has labels to fit it on.

    Its images are drawn here, from the training split only, before the run folder is touched: a
    budget the classes cannot fill fails before anything trains.
    """
    t = config.train
    if not t.probe_every:
        return None
    y = data.train.y
    if y is None or len(np.unique(y)) < 2:
        logger.warning("train.probe_every=%d needs a labeled dataset with at least two classes; "
                       "%s has %s, so the probe is off", t.probe_every, data.name,
                       "no labels" if y is None else "one class")
        return None
    subsets = probe_subsets(y, t.probe_labels_per_class, t.probe_images, int(t.probe_seed or 0),
                            class_names=data.class_names)  # resolved: never None
    logger.info("linear probe every %d epochs: fitted on %d labeled training images, scored on %d "
                "others", t.probe_every, len(subsets.fit), len(subsets.score))
    return DiscriminatorProbe(data.train.load(subsets.fit), y[subsets.fit],
                              data.train.load(subsets.score), y[subsets.score], t.probe_every,
                              t.epochs, best_path=run_dir / BEST_PROBE_FILE, seed=t.seed)


def train_gan(config: Config, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
              dataset: Dataset | None = None,
              callbacks: list[keras.callbacks.Callback] | None = None) -> TrainGanResult:
    """Trains a DCGAN as ``config`` says and writes everything into ``run_dir``.

    Args:
        config: The run's configuration.
        run_dir: The run folder. It must not exist (or be empty) unless ``resume`` or ``overwrite``.
        resume: Continue from the last checkpoint in ``run_dir`` up to ``config.train.epochs``.
        overwrite: Replace an existing run folder.
        dataset: Already-loaded data to train on instead of ``config.data`` (its training split).
        callbacks: Extra Keras callbacks.

    Returns:
        A :class:`TrainGanResult`.

    Raises:
        RunFolderError: The folder exists without ``resume``/``overwrite``, or cannot be resumed.
        ClusterError: Under ``multi-worker``, another worker refused to start or stopped.
        DataError: The dataset cannot be loaded.
        TrainingDiverged: Losses or variables became NaN or inf (the models hold the last good
            checkpoint, and no model file is written), or training collapsed and
            ``train.stop_on_collapse`` asked to stop.

    Example:
        >>> from gantransfer.config import load_config
        >>> config = load_config(None, ["gan.width=0.125", "train.epochs=1", "train.verbose=0"])
        >>> result = train_gan(config, "outputs/doc-example", overwrite=True)  # doctest: +SKIP
        >>> (result.run_dir / "generator.keras").is_file()  # doctest: +SKIP
        True
    """
    started = time.perf_counter()
    run_runtime = runtime.Runtime.from_config(config)
    cluster = run_runtime.cluster  # a bad TF_CONFIG fails here, before anything is touched
    data, metrics = runtime.start_together(run_runtime, lambda: _ready_to_start(
        config, Path(run_dir), cluster, resume, overwrite, dataset))
    with run_runtime.activate(), runtime.together(run_runtime):
        if cluster.chief:
            return _train(config, Path(run_dir), resume, overwrite, data, metrics, callbacks,
                          started)
        return _train_beside_chief(config, Path(run_dir), cluster, resume, data, metrics,
                                   callbacks, started)


def _ready_to_start(config: Config, run_dir: Path, cluster: runtime.Cluster, resume: bool,
                    overwrite: bool, dataset: Dataset | None
                    ) -> tuple[Dataset, list[keras.callbacks.Callback]]:
    """What :func:`train_gan` checks and makes before it trains, outside the run's devices: the run
    folder (which only the chief writes; the other workers read it, to resume), TensorBoard's
    packages, the data, and the FID/KID callback (whose feature classifier, when it trains one,
    trains on one device, whatever the run's distribution, and leaves the GAN's seeds alone)."""
    # Check the folder first (fail fast), load the data, and only then touch the folder: bad data
    # never leaves an empty run folder behind or costs an old run under --overwrite.
    if cluster.chief or resume:
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if config.train.tensorboard and None in (importlib.util.find_spec("tensorboard"),
                                             importlib.util.find_spec("tensorflow")):
        # Keras's TensorBoard callback writes with tf.summary, on every backend.
        raise ConfigError("train.tensorboard needs the tensorboard and tensorflow packages: pip "
                          "install 'gantransfer[tensorboard]' (or set train.tensorboard=false)")
    data = dataset if dataset is not None else load_gan_data(config)
    if len(data.train) == 0:
        raise DataError("the dataset's training split is empty; nothing to train on")
    return data, _metrics_callback(config, data)  # may train a feature classifier; fails early


def _train_beside_chief(config: Config, run_dir: Path, cluster: runtime.Cluster, resume: bool,
                        data: Dataset, metrics: list[keras.callbacks.Callback],
                        callbacks: list[keras.callbacks.Callback] | None,
                        started: float) -> TrainGanResult:
    """:func:`_train` on a worker other than the chief, into a scratch folder deleted afterwards.

    Every worker runs the same steps, callbacks included (a sample grid or a probe computes across
    the workers), so each writes the same files; only the chief's stay. To resume, a worker starts
    from a copy of the chief's run folder, which it must therefore see (a shared file system).
    """
    logger.info("%s of %d workers: training alongside the chief, which writes %s", cluster.task,
                cluster.workers, run_dir)
    with tempfile.TemporaryDirectory(prefix=f"gantransfer-{cluster.task.replace(' ', '')}-") \
            as scratch:
        work_dir = Path(scratch) / run_dir.name
        if resume:
            # All that a resume reads, as the chief reads it (its best-probe model included);
            # not the pictures.
            shutil.copytree(run_dir, work_dir,
                            ignore=shutil.ignore_patterns("samples", "tensorboard", "*.png"))
        result = _train(config, work_dir, resume, False, data, metrics, callbacks, started)
    return replace(result, run_dir=run_dir, chief=False)


def _train(config: Config, run_dir: Path, resume: bool, overwrite: bool, data: Dataset,
           metrics: list[keras.callbacks.Callback], callbacks: list[keras.callbacks.Callback] | None,
           started: float) -> TrainGanResult:
    """:func:`train_gan` once the folder is checked and the data loaded, in the run's precision and
    distribution."""
    seed_everything(config.train.seed, config.train.deterministic)
    probe = _probe_callback(config, data, Path(run_dir))
    run_dir = prepare_run_dir(Path(run_dir), resume=resume, overwrite=overwrite)
    checkpoint = _checkpoint_to_resume(config, run_dir) if resume else None
    initial_epoch = checkpoint.epoch if checkpoint else 0
    gan, fixed_noise = _build_models(config, data, checkpoint)
    if resume:  # the rows of epochs after the checkpoint go: those epochs train again
        _trim_history(run_dir / "history.csv", initial_epoch)
    if checkpoint is not None:
        _keep_best_probe(run_dir, gan, initial_epoch)
    # Only now, with the checkpoint restored, does config.yaml describe the run.
    save_config(config, run_dir / "config.yaml")
    if initial_epoch == config.train.epochs:  # trained to the end, stopped before writing models
        logger.info("every epoch is in the last checkpoint; writing the models")
        return _write_results(gan, config, run_dir, data, {}, initial_epoch, None, started)
    all_callbacks, guard, collapse, throughput = _callbacks(config, run_dir, data, fixed_noise,
                                                            initial_epoch, metrics, probe,
                                                            callbacks or [])
    history = _fit(gan, config, run_dir, data, initial_epoch, all_callbacks, guard, collapse)
    return _write_results(gan, config, run_dir, data, history, initial_epoch, throughput, started,
                          probe)


# What a resumed run may change: how long it trains and what it writes along the way. Every other
# setting defines the run (its data, models, optimisers, seeds and batches), and a resume keeps it.
# How the run uses the machine (precision, XLA, devices) may change too: a run started on a laptop's
# CPU may go on under mixed precision on a GPU box; checkpoints hold float32 weights in every case.
RESUMABLE_KEYS = ("train.epochs", "train.verbose", "train.tensorboard", "train.keep_checkpoints",
                  "train.metrics_every", "train.metrics_images", "train.stop_on_collapse",
                  "train.probe_every", "train.probe_labels_per_class", "train.probe_images",
                  "train.probe_seed", "data.max_in_memory_mb", "train.precision",
                  "train.jit_compile", "train.distribute")
# Except these, once the run has probe scores: they define what the best score, carried across
# sessions, measures (a resume may still turn the probe on, with any sizes and seed, or off).
PROBE_MEASURE_KEYS = ("probe_labels_per_class", "probe_images", "probe_seed")


def run_settings(config: Config) -> dict[str, Any]:
    """The settings that define a GAN run, as ``{"section.key": value}``: what a resume must keep.

    Example:
        >>> from gantransfer.config import load_config
        >>> settings = run_settings(load_config(None))
        >>> settings["gan.learning_rate"], "train.epochs" in settings
        (0.0002, False)
    """
    values = config.to_dict()
    settings = {f"{section}.{key}": value for section in ("data", "gan", "train")
                for key, value in values[section].items()}
    return {key: value for key, value in settings.items() if key not in RESUMABLE_KEYS}


def _changed_settings(saved: dict[str, Any], config: Config) -> list[str]:
    now = json.loads(json.dumps(run_settings(config)))  # compared as stored: JSON values
    return [f"{key} was {saved[key]!r} in this run and is {now.get(key)!r} now"
            for key in saved if now.get(key) != saved[key]]


def _saved_settings(checkpoint: Checkpoint, run_dir: Path) -> dict[str, Any] | None:
    """What defined the run: stored in the checkpoint, or (0.1 checkpoints) in its config.yaml."""
    if checkpoint.settings is not None:
        return checkpoint.settings
    try:
        return json.loads(json.dumps(run_settings(load_config(run_dir / "config.yaml"))))
    except GantransferError:
        return None


def _keep_best_probe(run_dir: Path, gan: DCGAN, epoch: int) -> None:
    """Saves the restored discriminator as the best-probe one when the kept history says the
    checkpoint's ``epoch`` scored best: the run may have been killed after that checkpoint and
    before the save, and the checkpoint holds exactly the discriminator the probe scored. A file
    that already holds it is left as it is."""
    found = best_probe(read_history(run_dir / "history.csv"))
    if found is None or found[0] != epoch:
        return
    path = run_dir / BEST_PROBE_FILE
    recorded = saved_best_probe(path)
    if recorded is not None and recorded[0] == epoch:
        return
    try:
        saved = keras.saving.load_model(path, compile=False) if path.is_file() else None
    except Exception:  # noqa: BLE001 - unreadable (cut short by the kill?): saved again below
        saved = None
    if recorded is None and saved is not None and len(saved.weights) == len(
            gan.discriminator.weights) and all(  # a run from before the record: compare weights
            np.array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
            for a, b in zip(saved.weights, gan.discriminator.weights)):
        return
    logger.info("epoch %d scored best and was checkpointed but not saved as %s; saving it now",
                epoch, BEST_PROBE_FILE)
    save_best_probe(run_dir, gan.discriminator, *found)


def _checkpoint_to_resume(config: Config, run_dir: Path) -> Checkpoint | None:
    """The last checkpoint in ``run_dir``; refused when it already has every configured epoch or
    when ``config`` changes a setting that defines the run.

    Raises:
        RunFolderError: The run has every epoch already.
        ConfigError: A setting outside :data:`RESUMABLE_KEYS` differs from the run's.
    """
    checkpoint = latest_checkpoint(run_dir / "checkpoints")
    if checkpoint is None:
        trained = _trained_before(run_dir)
        if trained:
            raise RunFolderError(f"cannot resume {str(run_dir)!r}: it has no readable checkpoint, "
                                 f"though it trained before (it holds {trained}); resume a copy "
                                 "that still has its checkpoints/, or start again with --overwrite "
                                 "or another --output-dir")
        logger.warning("no checkpoint in %s; starting from epoch 0", run_dir)
        return None
    saved = _saved_settings(checkpoint, run_dir)
    changed = _changed_settings(saved, config) if saved is not None else []
    if changed:
        allowed = ", ".join(RESUMABLE_KEYS)
        raise ConfigError(f"cannot resume {str(run_dir)!r} with other settings: "
                          f"{'; '.join(changed)}. A resume may change only {allowed}; start a new "
                          "run (another --output-dir) for the rest")
    changed = _changed_probe_measure(config, run_dir, checkpoint.epoch)
    if changed:
        raise ConfigError(f"cannot resume {str(run_dir)!r} with another linear probe: "
                          f"{'; '.join(changed)}. Its probe scores, and the {BEST_PROBE_FILE} they "
                          "chose, were measured with the earlier setting; keep it, or start a new "
                          "run (another --output-dir)")
    if checkpoint.epoch == config.train.epochs and not _is_finished(run_dir, checkpoint.epoch):
        logger.info("finishing %s: its last checkpoint has all %d epochs", run_dir, checkpoint.epoch)
        return checkpoint
    if checkpoint.epoch >= config.train.epochs:
        raise RunFolderError(f"the run in {str(run_dir)!r} already has {checkpoint.epoch} epochs; "
                             f"pass --epochs larger than {checkpoint.epoch} to train further")
    logger.info("resuming %s from epoch %d", run_dir, checkpoint.epoch)
    return checkpoint


def _trained_before(run_dir: Path) -> str:
    """What in a run folder without checkpoints shows that it finished an epoch (checkpoints that
    were deleted, then), in words; empty for a run killed in its first epoch, which may start
    again. The first epoch's history row is written just before its checkpoint, so it alone
    shows nothing."""
    found = [name for name in ("run.json", "generator.keras", "discriminator.keras",
                               BEST_PROBE_FILE) if (run_dir / name).is_file()]
    epochs = [int(epoch) for epoch in read_history(run_dir / "history.csv").get("epoch", [])
              if math.isfinite(epoch)]
    if any(epoch >= 1 for epoch in epochs):
        found.append(f"history.csv rows of {max(epochs) + 1} epochs")
    return ", ".join(found)


def _changed_probe_measure(config: Config, run_dir: Path, epochs_kept: int) -> list[str]:
    """The :data:`PROBE_MEASURE_KEYS` that ``config`` changes in a run that already has probe scores
    in the ``epochs_kept`` epochs a resume keeps (compared with the last session's
    ``config.yaml``)."""
    history = read_history(run_dir / "history.csv")
    kept = [i for i, epoch in enumerate(history.get("epoch", [])) if epoch < epochs_kept]
    if best_probe({key: [values[i] for i in kept] for key, values in history.items()}) is None:
        return []
    try:
        earlier = load_config(run_dir / "config.yaml").train
    except GantransferError:
        return []
    return [f"train.{key} was {getattr(earlier, key)!r} in this run and is "
            f"{getattr(config.train, key)!r} now" for key in PROBE_MEASURE_KEYS
            if getattr(earlier, key) != getattr(config.train, key)]


def _is_finished(run_dir: Path, epochs: int) -> bool:
    """Whether the run wrote its models and ``run.json`` after its ``epochs``-th epoch: the last
    step of :func:`_write_results`, so a run killed before it is not."""
    try:
        manifest = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and manifest.get("epochs") == epochs
            and all((run_dir / name).is_file() for name in ("generator.keras", "discriminator.keras")))


def _build_models(config: Config, data: Dataset, checkpoint: Checkpoint | None
                  ) -> tuple[DCGAN, np.ndarray]:
    """Builds the DCGAN and its optimizers, restored from ``checkpoint`` when resuming.

    Every variable of the DCGAN (both models, both optimizers) is created here, so a distribution
    strategy's scope can wrap this one call. Returns the model and the sample grids' fixed noise.
    """
    gan = build_dcgan(config, data.image_size, data.channels)
    if checkpoint:
        restore_checkpoint(gan, checkpoint)
        return gan, checkpoint.fixed_noise
    fixed_noise = keras.ops.convert_to_numpy(keras.random.normal(
        (config.train.sample_images, config.gan.latent_dim), seed=config.train.seed + 1))
    return gan, fixed_noise


def _callbacks(config: Config, run_dir: Path, data: Dataset, fixed_noise: np.ndarray,
               initial_epoch: int, metrics: list[keras.callbacks.Callback],
               probe: DiscriminatorProbe | None, extra: list[keras.callbacks.Callback]
               ) -> tuple[list[keras.callbacks.Callback], NonFiniteGuard, CollapseWatch,
                          Throughput]:
    """The fit's callbacks, the caller's ``extra`` ones last; also returns the divergence guard and
    the throughput meter, read after the fit."""
    t = config.train
    history_csv = run_dir / "history.csv"
    if probe is not None:  # the best score of the epochs kept, to beat from here on
        probe.resume_from(read_history(history_csv))
    extra_keys = (*(METRIC_KEYS if t.metrics_every else ()), *((PROBE_KEY,) if probe else ()))
    images = len(data.train)
    images_per_epoch = images // t.batch_size * t.batch_size if images >= t.batch_size else images
    guard = NonFiniteGuard()
    collapse = CollapseWatch(fixed_noise, stop=t.stop_on_collapse)
    throughput = Throughput(t.batch_size, images_per_epoch)
    # What an epoch writes comes before its checkpoint, which commits it: a run killed before the
    # checkpoint trains that epoch again (and its history row is dropped and rewritten), one killed
    # after it has all of it. The best-probe discriminator alone is saved after the checkpoint, so
    # it is only ever one of a checkpointed epoch; _keep_best_probe repairs a kill in between.
    callbacks: list[keras.callbacks.Callback] = [
        guard, collapse, throughput,
        SampleGrid(fixed_noise, run_dir / "samples"),
        *metrics,  # before HistoryCSV, which writes the FID/KID they add to the logs
        *([probe] if probe else []),  # scores into the logs, for HistoryCSV
        HistoryCSV(str(history_csv), append=initial_epoch > 0, extra_keys=extra_keys),
        LossPlot(history_csv, run_dir / "losses.png"),
        GANCheckpoint(run_dir / "checkpoints", fixed_noise, keep=t.keep_checkpoints,
                      settings=run_settings(config)),
        *([probe.keeper()] if probe else []),
    ]
    if t.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    return [*callbacks, *extra], guard, collapse, throughput


def _fit(gan: DCGAN, config: Config, run_dir: Path, data: Dataset, initial_epoch: int,
         callbacks: list[keras.callbacks.Callback], guard: NonFiniteGuard,
         collapse: CollapseWatch) -> dict[str, list[float]]:
    """Trains up to ``config.train.epochs``; returns the history of this call's epochs.

    Raises:
        TrainingDiverged: The guard saw NaN or inf losses or variables, or training collapsed and
            ``train.stop_on_collapse`` asked to stop; after a divergence ``gan`` is back at the last good
            checkpoint, if any epoch finished.
    """
    t = config.train
    images = data.train
    # Full batches only: one traced step shape, and BatchNorm never sees a tiny last batch.
    # With an accelerator, two threads make the next batches while it trains on this one (the
    # order stays the seed's); on a CPU they would only compete with the step for its cores.
    prefetch = {"workers": 2} if backend.accelerators() else {}
    batches = ImageBatches(images, t.batch_size, seed=t.seed, initial_epoch=initial_epoch,
                           drop_remainder=len(images) >= t.batch_size, **prefetch)
    logger.info("training a DCGAN on %d images of %s (%dx%dx%d) for epochs %d..%d", len(images),
                data.name, data.image_size, data.image_size, data.channels, initial_epoch + 1,
                t.epochs)
    # ImageBatches shuffles by (seed, epoch) itself; fit must not reorder its batches again.
    fit = gan.fit(batches, epochs=t.epochs, initial_epoch=initial_epoch, shuffle=False,
                  callbacks=callbacks, verbose=t.verbose)
    if collapse.failure and not guard.failure:
        raise TrainingDiverged(f"training stopped: {collapse.failure}; the checkpoints up to this "
                               f"epoch are kept in {run_dir / 'checkpoints'} (train.stop_on_collapse)")
    if guard.failure:
        last_good = latest_checkpoint(run_dir / "checkpoints")
        if last_good:
            restore_checkpoint(gan, last_good)
            kept = f"the last good checkpoint (epoch {last_good.epoch}) is kept in {run_dir / 'checkpoints'}"
        else:
            kept = "no epoch finished, so there is no checkpoint"
        advice = "try a lower gan.learning_rate or a smaller batch"
        if t.precision != "float32":  # 16-bit activations overflow where float32 ones would not
            advice = (f"it ran under train.precision={t.precision}; resume it with "
                      f"train.precision=float32, or {advice.removeprefix('try ')}")
        raise TrainingDiverged(f"training stopped: {guard.failure}; {kept}; {advice}")
    return fit.history


def _write_results(gan: DCGAN, config: Config, run_dir: Path, data: Dataset,
                   history: dict[str, list[float]], initial_epoch: int,
                   throughput: Throughput | None, started: float,
                   probe: DiscriminatorProbe | None = None) -> TrainGanResult:
    """Saves both models, the loss plot and ``run.json``; returns what :func:`train_gan` returns.

    ``throughput`` is None for a session that trained no epoch (it only wrote the models); ``probe``
    is this session's linear probe, if any (the best-probe discriminator it kept is recorded).
    """
    bad = non_finite_variables(gan)
    if bad:  # the guard checks at every epoch's end; this is the last line before the files
        raise TrainingDiverged(f"not saving models that hold NaN or inf ({', '.join(bad[:3])}); the "
                               f"last good checkpoint is kept in {run_dir / 'checkpoints'}")
    # files that load anywhere: float32 in every precision (runtime.portable_model)
    atomic_save(run_dir / "generator.keras", runtime.portable_model(gan.generator).save)
    atomic_save(run_dir / "discriminator.keras", runtime.portable_model(gan.discriminator).save)
    plot_history(run_dir / "history.csv", run_dir / "losses.png")
    rates = throughput.epoch_rates if throughput is not None else []
    # The first epoch of a call includes tracing and compilation; leave it out when there are others.
    steady = rates[1:] if len(rates) > 1 else rates
    images_per_second = float(np.mean(steady)) if steady else 0.0
    manifest = _write_manifest(run_dir, config, data, gan, initial_epoch, images_per_second,
                               time.perf_counter() - started, _best_probe(run_dir, probe))
    return TrainGanResult(run_dir=run_dir, gan=gan, history=history,
                          images_per_second=images_per_second, manifest=manifest)


def _best_probe(run_dir: Path, probe: DiscriminatorProbe | None) -> tuple[int, float] | None:
    """The epoch and score of the discriminator in ``discriminator_best_probe.keras``, or None.

    The file's record says (:func:`~gantransfer.gan.probe.saved_best_probe`); a run from before the
    record has this session's probe, or ``history.csv``, which holds every kept epoch's score.
    """
    if not (run_dir / BEST_PROBE_FILE).is_file():
        return None
    recorded = saved_best_probe(run_dir / BEST_PROBE_FILE)
    if recorded is not None:
        return recorded
    if probe is not None and probe.best_epoch is not None:
        return probe.best_epoch, float(probe.best_accuracy)
    return best_probe(read_history(run_dir / "history.csv"))


def _run_throughput(sessions: list[dict[str, Any]]) -> float:
    """Images per second over the whole run: each session's rate weighted by the epochs it trained.

    Example:
        >>> _run_throughput([{"epochs": [1, 3], "images_per_second": 100.0},
        ...                  {"epochs": [4, 4], "images_per_second": 200.0},
        ...                  {"epochs": [], "images_per_second": 0.0}])
        125.0
    """
    weighted = [(s["epochs"][1] - s["epochs"][0] + 1, s.get("images_per_second", 0.0))
                for s in sessions if len(s.get("epochs") or []) == 2]
    epochs = sum(n for n, _ in weighted)
    return sum(n * rate for n, rate in weighted) / epochs if epochs else 0.0


def _write_manifest(run_dir: Path, config: Config, data: Dataset, gan: DCGAN, initial_epoch: int,
                    images_per_second: float, wall_time: float,
                    best: tuple[int, float] | None = None) -> dict[str, Any]:
    path = run_dir / "run.json"
    previous: dict[str, Any] = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = {}
    sessions = [s for s in previous.get("sessions", []) if isinstance(s, dict)]
    trained = config.train.epochs - initial_epoch
    sessions.append({"epochs": [initial_epoch + 1, config.train.epochs] if trained else [],
                     "wall_time_s": round(wall_time, 2),
                     "images_per_second": round(images_per_second, 1)})
    manifest = {
        "command": "train-gan",
        "versions": package_versions(),
        "machine": machine_description(),
        "seed": config.train.seed,
        "dataset": {"name": data.name, "source": data.source, "images": len(data.train),
                    "image_size": data.image_size, "channels": data.channels,
                    "skipped_files": data.skipped_files,
                    # Which images the GAN never saw: a transfer on the same source must test on
                    # exactly these (see workflows.targets).
                    "test_split": config.data.test_split, "split_seed": config.data.split_seed,
                    "test_images": len(data.test), "test_sha256": data.test.fingerprint()},
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "wall_time_s": round(sum(s.get("wall_time_s", 0.0) for s in sessions), 2),
        "images_per_second": round(_run_throughput(sessions), 1),
        "parameters": {"generator": gan.generator.count_params(),
                       "discriminator": gan.discriminator.count_params()},
        "sessions": sessions,
    }
    if best is not None:  # the discriminator in discriminator_best_probe.keras
        manifest["best_probe_epoch"], manifest["best_probe_accuracy"] = best
    atomic_write_json(path, manifest)
    return manifest
