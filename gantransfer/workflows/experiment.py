"""``transfer`` and ``compare``: the library behind ``gantransfer transfer`` and ``gantransfer compare``.

``transfer`` runs the strategies on a labeled target dataset, with a GAN's discriminator when one is
given; ``compare`` first trains that GAN on the target's unlabeled training images, then transfers.
Both write a run folder with the trained classifiers, ``results.csv``/``results.json`` and a
``report.md``/``report.html``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np

from gantransfer.config import Config, load_config, save_config
from gantransfer.data import Dataset
from gantransfer.errors import ConfigError, DataError, GantransferError, RunFolderError
from gantransfer.evaluation.results import StrategyResult, normalize_budget
from gantransfer.gan.dcgan import DCGAN
from gantransfer.gan.probe import BEST_PROBE_FILE
from gantransfer.gan.sampling import load_generator
from gantransfer.gan.train import TrainGanResult, seed_everything, train_gan
from gantransfer.runs import (atomic_write_json, check_run_dir, machine_description,
                              package_versions, prepare_run_dir)
from gantransfer.registry import STRATEGIES
from gantransfer.runtime import Runtime, start_together, together
from gantransfer.transfer_learning.backbones import check_backbone, imagenet_weights_problem
from gantransfer.transfer_learning.protocol import (Discriminator, budget_split, run_transfer,
                                                   worker_count)
from gantransfer.transfer_learning.trunks import architecture_of, load_discriminator
from gantransfer.workflows.pictures import report_pictures
from gantransfer.workflows.targets import (held_out_split, hold_out_the_gans_test_split,
                                           load_target, target_data, trunk_architecture)
from gantransfer.workflows.scoring import score_generator

logger = logging.getLogger(__name__)


@dataclass
class TransferResult:
    """What :func:`transfer` and :func:`compare` return.

    Attributes:
        run_dir: The run folder.
        results: One :class:`StrategyResult` per (strategy, labels per class, seed).
        files: The report files by name (results.csv, results.json, report.md, report.html).
        gan: The GAN training result, for ``compare`` (seed 0's, with ``transfer.gan_per_seed``).
        gans: Every GAN training result of ``compare``, in seed order: ``[gan]``, or with
            ``transfer.gan_per_seed`` one per seed.
        chief: False on a ``multi-worker`` worker other than the chief: it trained the GAN
            alongside the chief, and has no results; ``run_dir`` is the chief's.
        kept: How many of ``results`` an earlier session of a resumed run trained.

    Example:
        >>> result = compare(config, "outputs/cmp")  # doctest: +SKIP
        >>> [r.test_accuracy for r in result.results if r.status == "ok"]  # doctest: +SKIP
    """

    run_dir: Path
    results: list[StrategyResult] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    gan: TrainGanResult | None = None
    gans: list[TrainGanResult] = field(default_factory=list)
    chief: bool = True
    kept: int = 0


def _gan_manifest(gan_dir: Path | None) -> dict[str, Any] | None:
    """A GAN run's ``run.json``, or None without one.

    Raises:
        RunFolderError: If the file exists but cannot be read.
    """
    manifest = gan_dir / "run.json" if gan_dir is not None else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        if not isinstance(data.get("dataset", {}), dict):
            raise ValueError("its 'dataset' is not an object")
    except (ValueError, UnicodeDecodeError) as error:
        raise RunFolderError(f"the GAN run's manifest {str(manifest)!r} is not readable JSON "
                             f"({error}); restore it, or pass the run's discriminator.keras "
                             "with --discriminator") from None
    return data


def _gan_context(gan_dir: Path | None, manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the report says about the GAN run: its samples and its manifest's facts."""
    if gan_dir is None:
        return None
    samples = sorted((gan_dir / "samples").glob("epoch_*.png")) if gan_dir.is_dir() else []
    info: dict[str, Any] = {"run_dir": str(gan_dir),
                            "samples_png": str(samples[-1]) if samples else None}
    if manifest is not None:
        dataset = manifest.get("dataset") or {}
        info.update({"epochs": manifest.get("epochs"), "source_dataset": dataset.get("name"),
                     "images": dataset.get("images"), "wall_time_s": manifest.get("wall_time_s"),
                     "best_probe_epoch": manifest.get("best_probe_epoch"),
                     "best_probe_accuracy": manifest.get("best_probe_accuracy")})
    if (gan_dir / "losses.png").is_file():
        info["losses_png"] = str(gan_dir / "losses.png")
    return info


def _check_transfer_inputs(config: Config, data: Dataset, *, has_discriminator: bool) -> None:
    """Everything the strategies will need, checked before any folder is made or model trained.

    Raises:
        DataError: The data has no labels or no test images, or a label budget does not fit it.
        ConfigError: A strategy needs a GAN that is not given, the backbone settings are bad, or
            ``transfer.workers`` asks for several processes on a GPU.
    """
    t = config.transfer
    if data.num_classes is None or not data.train.labeled:
        raise DataError(f"dataset {data.name!r} has no labels; transfer and compare need a labeled "
                        "dataset (a folder with one subfolder per class, or labels in the npz/IDX "
                        "files)")
    if len(data.test) == 0:
        raise DataError(f"dataset {data.name!r} has no test images; set data.test_split > 0")
    for budget in t.labels_per_class:  # the same draw the protocol makes, for its errors only
        budget_split(data.train.y, budget, 0, t.validation_fraction, data.num_classes)
    needy = [name for name in t.strategies if "discriminator" in STRATEGIES[name].needs]
    if needy and not has_discriminator:
        raise ConfigError(f"strategies {', '.join(needy)} need a trained GAN: pass --gan-run "
                          "RUN_DIR or --discriminator FILE")
    worker_count(t.workers, models=len(t.strategies) * len(t.labels_per_class) * t.seeds)
    imagenet = [name for name in t.strategies if "backbone_weights" in STRATEGIES[name].needs]
    if imagenet:
        check_backbone(t.backbone, weights=t.backbone_weights, input_size=t.backbone_input_size,
                       alpha=t.backbone_alpha)
    if imagenet and str(t.backbone_weights).lower() == "imagenet":
        # Fetched now, not when the first ImageNet strategy starts after minutes of training.
        problem = imagenet_weights_problem(t.backbone, alpha=t.backbone_alpha,
                                           input_size=t.backbone_input_size)
        if problem:
            logger.warning("%s will be skipped: %s", ", ".join(imagenet), problem)


@dataclass
class _Earlier:
    """What the earlier sessions of a resumed transfer or compare finished: an interrupted run's
    ``results.partial.json``, or a complete run's ``results.json`` when the resume grows it.

    Attributes:
        results: The models they finished.
        discriminator_sha256: The fingerprint of the discriminator they trained from
            (:func:`weights_fingerprint`; one per seed, comma-separated, with a GAN per seed);
            ``""`` when the run predates the record.
        wall_time_s: Their time, each up to its last finished model.
        sessions: How many there were.
        seeds: The run's ``transfer.seeds`` before this session.
    """

    results: list[StrategyResult] = field(default_factory=list)
    discriminator_sha256: str | None = ""
    wall_time_s: float = 0.0
    sessions: int = 0
    seeds: int = 0


# The settings a resume may grow: more seeds, label budgets and strategies train more models and
# leave the finished ones as they are (each model's draw and initialisation depend on its own
# strategy, budget and seed only). Any other change would mix models trained two ways.
_MAY_GROW = {("transfer", "seeds"), ("transfer", "labels_per_class"), ("transfer", "strategies")}
# The settings a resume may change freely: how much it prints, and how many processes train (a
# model's draw and initialisation do not depend on the process that trains it).
_MAY_CHANGE = {("train", "verbose"), ("transfer", "workers")}


def _grows(was: Any, now: Any) -> bool:
    """Whether ``now`` keeps everything of ``was`` and adds to it: a larger count, or a list
    holding every earlier item."""
    if isinstance(was, list):
        return isinstance(now, list) and all(item in now for item in was)
    return isinstance(was, int) and isinstance(now, int) and now > was


def _earlier_sessions(run_dir: Path, config: Config) -> _Earlier:
    """What the earlier sessions of a run in ``run_dir`` finished, to resume it: an interrupted
    run's models, or, when ``config`` adds seeds, label budgets or strategies
    (:data:`_MAY_GROW`), a complete run's, which the new models join.

    Raises:
        ConfigError: The config differs from the run's own other than by growing it (only
            ``train.verbose`` and ``transfer.workers`` may change besides).
        RunFolderError: The run is already complete and ``config`` adds nothing, or its files
            cannot be read.
    """
    saved = load_config(run_dir / "config.yaml").to_dict()
    now = config.to_dict()
    changed, dropped, grown = [], [], []
    for section, values in now.items():
        for key, value in values.items():
            was = saved[section][key]
            if (section, key) in _MAY_CHANGE or was == value:
                continue
            said = f"{section}.{key} was {was!r} in this run and is {value!r} now"
            if (section, key) not in _MAY_GROW:
                changed.append(said)
            elif _grows(was, value):
                grown.append(f"{section}.{key}")
            else:
                dropped.append(said)
    if dropped:
        raise ConfigError(f"cannot resume {str(run_dir)!r} with less than it has: "
                          f"{'; '.join(dropped)}; a resume may add seeds, label budgets and "
                          "strategies, not drop them: give the run's own along with the new ones")
    if changed:
        raise ConfigError(f"cannot resume {str(run_dir)!r} with other settings: "
                          f"{'; '.join(changed)}; resume with the run's own config "
                          f"(--config {run_dir / 'config.yaml'}) or start a new run")
    seeds = int(saved["transfer"]["seeds"])
    partial = run_dir / "results.partial.json"
    if partial.is_file():
        return _read_earlier(partial, seeds)
    complete = run_dir / "results.json"
    if not complete.is_file():
        return _Earlier(seeds=seeds)
    earlier = _read_earlier(complete, seeds, run_dir / "run.json")
    # Complete when it has a result (a model, or why it was skipped) for every model asked for;
    # a session that added to it and stopped before its first model left it short.
    had = {(r.strategy, r.labels_per_class, r.seed) for r in earlier.results}
    t = config.transfer
    if all((name, normalize_budget(budget), seed) in had for name in t.strategies
           for budget in t.labels_per_class for seed in range(t.seeds)):
        raise RunFolderError(f"the run in {str(run_dir)!r} is complete: nothing to resume (a "
                             "resume may add to it: more --seeds, --labels-per-class or "
                             "--strategies)")
    earlier.results = [r for r in earlier.results if r.status == "ok"]  # the skipped: tried again
    logger.info("adding to the complete run in %s (%s): its %d models are kept", run_dir,
                ", ".join(grown) or "the models it lacks", len(earlier.results))
    return earlier


def _read_earlier(path: Path, seeds: int, manifest: Path | None = None) -> _Earlier:
    """The finished models in ``results.partial.json``, or in a complete run's ``results.json``
    with its time, sessions and discriminator from ``manifest`` (its ``run.json``).

    Raises:
        RunFolderError: A file cannot be read.
    """
    try:
        recorded = json.loads(path.read_text())
        if manifest is not None:
            recorded = {**json.loads(manifest.read_text()), "results": recorded["results"]}
        finished = [StrategyResult.from_row(row) for row in recorded["results"]]
        return _Earlier([_in_this_folder(result, path.parent) for result in finished],
                        recorded.get("discriminator_sha256", ""),
                        float(recorded.get("wall_time_s", 0.0)),
                        int(recorded.get("sessions", 1)), seeds)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        if manifest is None:
            raise RunFolderError(f"cannot resume: {str(path)!r} is unreadable ({error}); delete "
                                 "it to train every model again") from None
        raise RunFolderError(f"cannot add to the run: {str(path)!r} or {str(manifest)!r} is "
                             f"unreadable ({error}); start a new run with another --output-dir")\
            from None


def weights_fingerprint(model: keras.Model | None) -> str | None:
    """The SHA-256 of a model's weights, in order (None for no model): the same discriminator,
    wherever its file is, on either backend.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> model = build_discriminator(16, 1, width=0.125)
        >>> weights_fingerprint(model) == weights_fingerprint(model), weights_fingerprint(None)
        (True, None)
    """
    if model is None:
        return None
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def _check_same_discriminator(run_dir: Path, earlier: _Earlier, weights: str | None) -> None:
    """Refuses to resume a run whose finished models came from another discriminator: each of
    the run's seeds must start from the one it started from (seeds the resume adds may have their
    own, with a GAN per seed).

    Raises:
        ConfigError: ``results.partial.json`` (or a complete run's ``run.json``) records another
            discriminator's fingerprint for one of the run's seeds.
    """
    if earlier.discriminator_sha256 == "":
        return  # written before discriminators were recorded
    seeds = max(earlier.seeds, 1)
    if _per_seed_fingerprints(earlier.discriminator_sha256, seeds) != \
            _per_seed_fingerprints(weights, seeds):
        raise ConfigError(f"cannot resume {str(run_dir)!r} with another discriminator: its "
                          "finished models were trained from one whose weights differ, and the "
                          "comparison would mix the two; resume with the run's own --gan-run or "
                          "--discriminator, or start a new run (another --output-dir)")


def _fingerprint(disc_model: keras.Model | None, per_seed: list[keras.Model] | None) -> str | None:
    """What a run records of the discriminators it trains from: the fingerprint of ``disc_model``,
    or of each seed's in ``per_seed``, comma-separated."""
    if per_seed:
        return ",".join(str(weights_fingerprint(model)) for model in per_seed)
    return weights_fingerprint(disc_model)


def _per_seed_fingerprints(weights: str | None, seeds: int) -> list[str | None]:
    """The first ``seeds`` seeds' discriminator fingerprints, from one fingerprint for all of
    them or a comma-separated one per seed.

    Example:
        >>> _per_seed_fingerprints("a", 2), _per_seed_fingerprints("a,b,c", 2)
        (['a', 'a'], ['a', 'b'])
    """
    each = weights.split(",") if weights and "," in weights else [weights] * seeds
    return each[:seeds]


def _in_this_folder(result: StrategyResult, run_dir: Path) -> StrategyResult:
    """A finished result whose ``model_file`` names its model in ``run_dir``: the path was written
    as seen from where the run started, and the run may have moved, or resume from elsewhere."""
    if result.model_file is None:
        return result
    here = run_dir / "models" / Path(result.model_file).name
    return replace(result, model_file=str(here)) if here.is_file() else result


def _probe_chosen(config: Config, gan_dir: Path | None,
                  manifest: dict[str, Any] | None) -> tuple[keras.Model | None, list[str]]:
    """The GAN run's best-probe discriminator, when ``transfer.gan_discriminator`` asks for it and
    the run kept one, with a note saying which epoch it is; ``(None, notes)`` otherwise."""
    if config.transfer.gan_discriminator != "best-probe" or gan_dir is None:
        return None, []
    path = gan_dir / BEST_PROBE_FILE
    if not path.is_file() or not manifest or manifest.get("best_probe_epoch") is None:
        return None, [f"the GAN's last discriminator (epoch {manifest.get('epochs') if manifest else '?'})"
                      " seeds the gan-* strategies: the run has no linear-probe scores "
                      "(train.probe_every)"]
    epoch, accuracy = manifest["best_probe_epoch"], manifest.get("best_probe_accuracy")
    note = (f"the GAN's discriminator of epoch {epoch} of {manifest.get('epochs')} seeds the gan-* "
            f"strategies: the epoch whose features the linear probe scored best "
            f"({100 * float(accuracy):.1f}% on held-out training images). That probe used "
            "labeled training images beyond the budgets below to choose the epoch")
    return load_discriminator(path), [note]


def _run_dir_of(discriminator: str | Path | keras.Model | None) -> Path | None:
    if discriminator is None or isinstance(discriminator, keras.Model):
        return None
    path = Path(discriminator)
    return path if path.is_dir() else (path.parent if (path.parent / "run.json").is_file() else None)


def _gan_metrics(config: Config, gan: TrainGanResult, data: Dataset) -> dict[str, Any]:
    """FID and KID of the comparison's GAN for the report, or a note of why there are none.

    Scores the generator in memory against the data already loaded, and writes them into the GAN's
    run folder as ``gantransfer evaluate-gan`` would (``gan_metrics.json``, ``metrics/``).
    """
    try:
        scores = score_generator(gan.gan.generator, data,
                                 num_images=min(2000, config.train.metrics_images * 2),
                                 seed=config.train.seed, metrics_dir=gan.run_dir / "metrics")
    except GantransferError as error:
        return {"gan_metrics": f"not computed: {error}"}
    atomic_write_json(gan.run_dir / "gan_metrics.json", scores)
    return {"FID": round(scores["fid"], 3), "KID": round(scores["kid"], 5),
            "FID/KID features": f"{scores['extractor']}, {scores['real_images']} real vs "
                                f"{scores['generated_images']} generated test-split images"}


def _in_runtime(*, trains_gan: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Runs ``workflow(config, ...)`` in its config's runtime: precision, XLA and devices.

    Under ``train.distribute=multi-worker`` the classifiers train on the chief alone, in the same
    precision and XLA setting on one device; a workflow that ``trains_gan`` trains it across the
    machines (``train_gan`` spans them itself).

    Raises:
        ConfigError: ``multi-worker`` for a workflow that trains no GAN, or with a bad
            ``TF_CONFIG``.
    """
    def decorate(workflow: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(workflow)
        def run(config: Config, *args: Any, **kwargs: Any) -> Any:
            classifiers = Runtime.from_config(config)
            if classifiers.distribute == "multi-worker":
                if not trains_gan:
                    raise ConfigError(
                        "train.distribute=multi-worker spans machines for GAN training only; "
                        "transfer trains classifiers, so use none or mirrored (this machine's "
                        "GPUs). Keras 3 cannot fit a classifier under MultiWorkerMirroredStrategy "
                        "(tensorflow/tensorflow#72388)")
                classifiers.cluster  # noqa: B018  (a bad TF_CONFIG fails before anything runs)
                classifiers = replace(classifiers, distribute="none")
            with classifiers.activate():
                return workflow(config, *args, **kwargs)

        return run

    return decorate


@_in_runtime(trains_gan=False)
def transfer(config: Config, run_dir: str | Path, *,
             discriminator: Discriminator | Sequence[Discriminator] | None = None,
             overwrite: bool = False, resume: bool = False, verbose: bool = True) -> TransferResult:
    """Compares the configured strategies on the configured (labeled) dataset.

    Args:
        config: The run's configuration; ``config.transfer`` picks strategies, budgets and seeds.
        run_dir: The run folder (must not exist unless ``overwrite``).
        discriminator: A trained discriminator (model, ``.keras`` file or train-gan run folder);
            needed by the ``gan-*`` strategies only. Its architecture fixes the trunk, and the
            target data is brought to its image size and channels. A list of several gives each
            seed its own GAN, one per seed in seed order (GANs of one architecture that held out
            the same test images, trained at different ``train.seed``): the paired intervals then
            include the GAN's run-to-run variation.
        overwrite: Replace an existing run folder.
        resume: Continue an interrupted run in ``run_dir`` with the same config: the models in its
            ``results.partial.json`` are kept, the others trained. The config may add seeds,
            label budgets and strategies, to an interrupted run or a complete one: its models
            are kept, the new ones trained, and the report covers them all.
        verbose: Show a progress bar per model.

    Returns:
        A :class:`TransferResult`.

    Raises:
        ConfigError: Several discriminators, but not one per seed; or ``transfer.gan_per_seed``,
            which is compare's (it trains the GANs).

    Example:
        >>> import gantransfer as gt
        >>> config = gt.load_config(None, ["transfer.strategies=scratch,pixels-linear"])
        >>> result = gt.transfer(config, "outputs/digits-transfer")  # doctest: +SKIP
        >>> sorted(result.files)  # doctest: +SKIP
        ['report.html', 'report.md', 'results.csv', 'results.json']
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    sources = list(discriminator) if isinstance(discriminator, (list, tuple)) else \
        ([discriminator] if discriminator is not None else [])
    if config.transfer.gan_per_seed:
        raise ConfigError("transfer.gan_per_seed trains one GAN per seed, which compare does; "
                          "transfer takes GANs already trained: set it to false, and give one "
                          "--gan-run per seed")
    if len(sources) > 1 and len(sources) != config.transfer.seeds:
        raise ConfigError(f"{len(sources)} GANs for {config.transfer.seeds} "
                          f"seed{'s' if config.transfer.seeds > 1 else ''}: give one --gan-run "
                          "(or --discriminator) per seed, or one for all of them")
    # Check the folder first (fail fast), load, and only then touch the folder: bad input never
    # leaves an empty run folder behind or costs an old run under overwrite.
    check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    earlier = _earlier_sessions(run_dir, config) if resume else _Earlier()
    seed_everything(config.train.seed, config.train.deterministic)
    gans = [_given_gan(config, source) for source in sources]  # a broken run fails here
    disc_model, gan_dir, manifest = gans[0][:3] if gans else (None, None, None)
    others = [(source, architecture_of(model)) for source, (model, *_) in zip(sources, gans)][1:]
    for source, other in others:
        if other != architecture_of(disc_model):
            raise ConfigError(f"the GAN {str(source)!r} differs in architecture from the first "
                              f"({other} against {architecture_of(disc_model)}); one comparison "
                              "needs one trunk: give GANs trained with the same gan.* settings "
                              "and image size")
    _check_different_gans([model for model, *_ in gans])
    data, notes = target_data(config, disc_model, manifest)
    for _, other_dir, other, _ in gans[1:]:
        notes += _check_same_held_out_images(config, data, other_dir, other)
    labels = [str(folder if folder is not None else source) for (_, folder, _, _), source
              in zip(gans, sources)]
    notes = [*_seed_notes([(label, record, said) for label, (_, _, record, said)
                           in zip(labels, gans)]), *notes]
    _check_transfer_inputs(config, data, has_discriminator=disc_model is not None)
    gan = _gan_context(gan_dir, manifest)
    if len(gans) > 1 and gan is not None:
        gan["per_seed"] = _per_seed_fact(labels)
    per_seed = [model for model, *_ in gans] if len(gans) > 1 else None
    run_dir = prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    files = [str(source) if isinstance(source, (str, Path)) else None for source in sources]
    return _transfer_into(run_dir, config, data, disc_model, notes=notes, started=started,
                          verbose=verbose, per_seed=per_seed,
                          gan=gan, discriminator_file=files if len(files) > 1 else
                          (files[0] if files else None),
                          earlier=earlier, split=held_out_split(config, manifest, data.source))


def _check_different_gans(models: list[keras.Model]) -> None:
    """Refuses one GAN given for two seeds: the report would say that the GAN's own variation is
    in the intervals when it is not.

    Raises:
        ConfigError: Two seeds' discriminators have the same weights.
    """
    seen: dict[str | None, int] = {}
    for seed, model in enumerate(models if len(models) > 1 else []):
        weights = weights_fingerprint(model)
        if weights in seen:
            raise ConfigError(f"seeds {seen[weights]} and {seed} were given the same GAN (the "
                              "same discriminator weights): give each seed a GAN of its own, "
                              "trained at its own --seed, or one GAN for all of them")
        seen[weights] = seed


def _given_gan(config: Config, source: Discriminator
               ) -> tuple[keras.Model, Path | None, dict[str, Any] | None, list[str]]:
    """A GAN given to :func:`transfer`: the discriminator that seeds the gan-* strategies, the run
    folder and manifest it comes from (None for a model, or a file outside a run), and notes.

    A run folder gives its best-probe discriminator (:func:`_probe_chosen`); an explicit ``.keras``
    file is used as it is.
    """
    gan_dir = _run_dir_of(source)
    manifest = _gan_manifest(gan_dir)
    chosen, notes = (None, [])
    if not isinstance(source, keras.Model) and Path(source).is_dir():
        chosen, notes = _probe_chosen(config, gan_dir, manifest)
    return chosen or load_discriminator(source), gan_dir, manifest, notes


def _check_same_held_out_images(config: Config, data: Dataset, gan_dir: Path | None,
                                manifest: dict[str, Any] | None) -> list[str]:
    """Refuses a seed's GAN that held out other test images of the target than those in ``data``,
    the first GAN's: it trained on some of the images the comparison tests on. Returns a warning
    note instead under ``transfer.allow_test_overlap``.

    Raises:
        DataError: It trained on the target's source with another test split or split seed.
    """
    trained = (manifest or {}).get("dataset") or {}
    if trained.get("source") != data.source \
            or trained.get("test_sha256") == data.test.fingerprint():
        return []  # it learned from other data, or held out these very images
    if "test_sha256" not in trained:
        return [f"the GAN run {str(gan_dir)!r} does not record which images it held out (it "
                "predates gantransfer 0.2), so whether it saw test images is unknown"]
    problem = (f"the GAN run {str(gan_dir)!r} held out other test images than the ones this "
               "transfer tests on, so it trained on some of them")
    if not config.transfer.allow_test_overlap:
        raise DataError(f"{problem}; train every seed's GAN with the same data.test_split and "
                        "data.split_seed, or set transfer.allow_test_overlap=true to run anyway")
    return [f"WARNING: {problem} (transfer.allow_test_overlap is set)"]


def _seed_notes(gans: list[tuple[str, dict[str, Any] | None, list[str]]]) -> list[str]:
    """What the report says of the discriminators that seed the gan-* strategies, given each GAN's
    ``(label, manifest, notes)``: one GAN's notes as they are; with one GAN per seed, a note
    saying so, then each GAN's notes under its seed, label and ``train.seed``."""
    if len(gans) < 2:
        return [note for _, _, said in gans for note in said]
    notes = [f"one GAN per seed, {len(gans)} GANs: each seed's gan-* models start from its own "
             "GAN, so the paired intervals include the GAN's run-to-run variation"]
    for seed, (label, manifest, said) in enumerate(gans):
        trained_at = f", train.seed={manifest.get('seed')}" if manifest else ""
        notes += [f"seed {seed}'s GAN ({label}{trained_at}): {note}"
                  for note in said or ["its discriminator as given"]]
    return notes


def _per_seed_fact(labels: list[str]) -> str:
    """The report's GAN fact for one GAN per seed: which, and whose pictures it shows."""
    return (f"{', '.join(labels)}: one GAN per seed; the samples, curves, scores and pictures of "
            f"what the networks learned here are {labels[0]}'s")


def _transfer_into(run_dir: Path, config: Config, data: Dataset, disc_model: keras.Model | None, *,
                   notes: list[str], started: float, verbose: bool,
                   per_seed: list[keras.Model] | None = None,
                   gan: dict[str, Any] | None = None,
                   gan_metrics: dict[str, Any] | None = None,
                   discriminator_file: str | Path | list[str] | None = None,
                   earlier: _Earlier | None = None,
                   split: tuple[float, int] | None = None) -> TransferResult:
    """Runs the strategies into a prepared run folder on loaded data, and writes its ``config.yaml``.

    ``data`` must have the discriminator's image size and channels, when there is one; with
    ``per_seed``, seed ``s``'s gan-* models start from ``per_seed[s]`` instead (``disc_model``
    is seed 0's, whose pictures the report shows); ``gan`` is
    what the report says of the GAN run (:func:`_gan_context`); ``started`` is when the caller's
    work began; ``earlier`` is what the interrupted sessions of a resumed run finished, and
    ``split`` the ``(test_split, seed)`` the test images were held out with
    (:func:`~gantransfer.workflows.targets.held_out_split`), recorded in ``run.json``.
    """
    from gantransfer.reporting.report import write_report

    architecture = trunk_architecture(config, data, disc_model)
    notes = [*notes, f"{data.name}: {len(data.train)} labeled training images to draw budgets "
                     f"from, {len(data.test)} test images, {data.num_classes} classes ({data.source})"]
    t = config.transfer
    context: dict[str, Any] = {
        "title": f"gantransfer: transfer strategies on {data.name}",
        "dataset": data.name, "class_names": data.class_names, "num_classes": data.num_classes,
        "gan": gan, "gan_per_seed": per_seed is not None, "config": config.to_dict(),
        "skipped": [], "notes": notes,
        "machine": machine_description(),
    }
    earlier = earlier or _Earlier()
    finished = earlier.results
    partial: list[dict[str, Any]] = [r.to_row() for r in finished if r.status == "ok"]
    weights = _fingerprint(disc_model, per_seed)
    if finished:
        _check_same_discriminator(run_dir, earlier, weights)
    # Written once the resume is accepted: a refused one leaves the run's config as it was.
    save_config(config, run_dir / "config.yaml")

    def wall_time_s() -> float:  # every session's, a killed one's up to its last finished model
        return round(earlier.wall_time_s + time.perf_counter() - started, 2)

    def keep(record: StrategyResult | None = None) -> None:  # results so far survive a crash
        if record is not None:
            partial.append(record.to_row())
        atomic_write_json(run_dir / "results.partial.json",
                          {"results": partial, "discriminator_sha256": weights,
                           "wall_time_s": wall_time_s(), "sessions": earlier.sessions + 1})

    # The partial results mark a run in progress until its last file is written: a run killed
    # while it writes its report or run.json is resumed (its models kept), never taken as complete.
    keep()

    run = run_transfer(data, t.strategies, t.labels_per_class, t.seeds, t,
                       discriminator=per_seed or disc_model, architecture=architecture,
                       validation_fraction=t.validation_fraction, models_dir=run_dir / "models",
                       verbose=verbose, on_result=keep, finished=finished)
    context["skipped"] = run.skipped
    if gan_metrics and context["gan"] is not None:
        context["gan"].update(gan_metrics)
    if t.report_pictures:
        context["figures"] = report_pictures(config, run_dir, disc_model, data, run.results)
    files = write_report(run.results, run_dir, context)
    atomic_write_json(run_dir / "run.json", {
        "command": "transfer", "versions": package_versions(), "machine": machine_description(),
        "dataset": data.name, "strategies": t.strategies, "labels_per_class": t.labels_per_class,
        "seeds": t.seeds, "models": len([r for r in run.results if r.status == "ok"]),
        "workers": run.workers,  # this session's: a resume may train in another number
        "test_images": len(data.test), "test_sha256": data.test.fingerprint(),
        # How a source without its own test split was split: attack and visualize split it so.
        **({"test_split": split[0], "split_seed": split[1]} if split is not None else {}),
        "wall_time_s": wall_time_s(), "sessions": earlier.sessions + 1,
        "discriminator_sha256": weights,  # what a resume that adds to the run checks
        "discriminator": (discriminator_file if isinstance(discriminator_file, list) else
                          str(discriminator_file) if discriminator_file is not None else None),
    })
    (run_dir / "results.partial.json").unlink(missing_ok=True)  # the run is complete
    earlier_ids = {id(result) for result in finished}
    return TransferResult(run_dir=run_dir, results=run.results, files=files,
                          kept=sum(id(result) in earlier_ids for result in run.results))


def _compare_beside_chief(config: Config, run_dir: Path, data: Dataset,
                          resume: bool) -> TransferResult:
    """:func:`compare` on a ``multi-worker`` worker other than the chief: it trains the GAN
    alongside the chief (writing none of it) and leaves the classifiers to the chief."""
    # The same answers as the chief's, from the same shared folder.
    gans = _the_gans(config, run_dir, data, resume)
    return TransferResult(run_dir=run_dir, gan=gans[0], gans=gans, chief=False)


def _gan_runs(config: Config, run_dir: Path) -> list[tuple[Config, Path]]:
    """The config and folder of each GAN a compare trains: one, in ``gan/``; or with
    ``transfer.gan_per_seed`` one per seed, seed ``s``'s at ``train.seed + s`` in ``gan-seed-s/``
    (seed 0's in ``gan/``), all holding out the same test split (``data.split_seed``).

    Raises:
        ConfigError: A seed's ``train.seed`` would be out of range.
    """
    if not config.transfer.gan_per_seed:
        return [(config, run_dir / "gan")]
    # Each GAN's own config is a plain one-GAN config at its seed (checked when the compare's was).
    one_gan = replace(config.transfer, gan_per_seed=False)
    return [(replace(config, train=replace(config.train, seed=config.train.seed + seed),
                     transfer=one_gan),
             run_dir / (f"gan-seed-{seed}" if seed else "gan"))
            for seed in range(config.transfer.seeds)]


def _the_gans(config: Config, run_dir: Path, data: Dataset, resume: bool) -> list[TrainGanResult]:
    """The compare's GANs (:func:`_gan_runs`), each trained on ``data``, or on from its last
    checkpoint, or, resuming a compare whose GAN had finished, that one."""
    gans = []
    for gan_config, gan_dir in _gan_runs(config, run_dir):
        gan = _finished_gan(gan_config, gan_dir) if resume else None
        if gan is None:
            gan = train_gan(gan_config, gan_dir, dataset=data,
                            resume=resume and (gan_dir / "config.yaml").is_file())
        gans.append(gan)
    return gans


def _finished_gan(config: Config, gan_dir: Path) -> TrainGanResult | None:
    """The GAN of an interrupted compare, when it had finished training; None otherwise."""
    manifest = _gan_manifest(gan_dir)
    if manifest is None or manifest.get("epochs") != config.train.epochs or not all(
            (gan_dir / name).is_file() for name in ("generator.keras", "discriminator.keras")):
        return None
    generator = load_generator(gan_dir)
    gan = DCGAN(generator, load_discriminator(gan_dir), seed=config.train.seed)
    logger.info("resuming with the finished GAN in %s", gan_dir)
    return TrainGanResult(run_dir=gan_dir, gan=gan, manifest=manifest)


@_in_runtime(trains_gan=True)
def compare(config: Config, run_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
            verbose: bool = True) -> TransferResult:
    """Trains a DCGAN on the target's unlabeled training images, then runs every strategy.

    The run folder holds the GAN's own run folder in ``gan/`` (with ``transfer.gan_per_seed``,
    seed 0's, and seed ``s``'s in ``gan-seed-s/``), the trained classifiers in
    ``models/``, and the results and report. The dataset is loaded once: the GAN trains on its
    training split, is scored against its test split, and the strategies use its labels.

    Args:
        config: The run's configuration (``data``, ``gan``, ``train`` for the GAN, ``transfer``).
        run_dir: The run folder (must not exist unless ``overwrite``).
        overwrite: Replace an existing run folder.
        resume: Continue an interrupted run in ``run_dir`` with the same config: a GAN that did
            not finish trains on from its last checkpoint, a finished one is kept, and so are the
            models in ``results.partial.json``. As for :func:`transfer`, the config may add
            seeds, label budgets and strategies (with ``transfer.gan_per_seed``, an added seed
            trains its GAN).
        verbose: Show progress.

    Returns:
        A :class:`TransferResult` with ``gan`` set.

    Example:
        >>> import gantransfer as gt
        >>> result = gt.compare(gt.load_config("configs/digits.yaml"), "outputs/digits")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    gan_runtime = Runtime.from_config(config)  # under multi-worker, the GAN's: across machines
    chief = gan_runtime.cluster.chief

    def ready_to_start() -> Dataset:  # on every worker, which all stop if one refuses
        if chief or resume:
            check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        # The GAN is built at the data's size and channels, so the same images serve the transfer.
        data = load_target(config, config.data.image_size, config.data.channels)
        _check_transfer_inputs(config, data, has_discriminator=True)  # before the GAN's minutes
        return data

    data = start_together(gan_runtime, ready_to_start)
    with together(gan_runtime):  # under multi-worker, the others wait for the chief's classifiers
        if not chief:
            return _compare_beside_chief(config, run_dir, data, resume)
        return _compare_on_chief(config, run_dir, data, resume, overwrite, verbose)


def _compare_on_chief(config: Config, run_dir: Path, data: Dataset, resume: bool, overwrite: bool,
                      verbose: bool) -> TransferResult:
    """:func:`compare` once every worker is ready to start (on one machine, the only worker)."""
    earlier = _earlier_sessions(run_dir, config) if resume else _Earlier()
    run_dir = prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if not resume:  # the mark of a run folder, before the GAN's minutes; a resume's, once accepted
        save_config(config, run_dir / "config.yaml")
    gans = _the_gans(config, run_dir, data, resume)
    gan = gans[0]
    # The GANs trained on this very data's training split; the check proves the test split is the
    # one they held out, as for any transfer from a GAN run.
    data, notes = hold_out_the_gans_test_split(config, data, gan.manifest)
    chosen = [_probe_chosen(config, g.run_dir, g.manifest) for g in gans]
    discriminators = [model or g.gan.discriminator for (model, _), g in zip(chosen, gans)]
    labels = [f"{g.run_dir.name}/" for g in gans]
    notes = [*_seed_notes([(label, g.manifest, said) for label, g, (_, said)
                           in zip(labels, gans, chosen)]), *notes]
    scores = _gan_metrics(config, gan, data) if config.transfer.gan_metrics else None
    context = _gan_context(gan.run_dir, gan.manifest)
    if len(gans) > 1 and context is not None:
        context["per_seed"] = _per_seed_fact(labels)
    started = time.perf_counter()
    seed_everything(config.train.seed, config.train.deterministic)
    result = _transfer_into(run_dir, config, data, discriminators[0], notes=notes,
                            started=started, verbose=verbose,
                            per_seed=discriminators if len(gans) > 1 else None,
                            gan=context, gan_metrics=scores, earlier=earlier,
                            split=held_out_split(config, gan.manifest, data.source))
    result.gan, result.gans = gan, gans
    return result


