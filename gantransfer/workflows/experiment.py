"""``transfer`` and ``compare``: the library behind ``gantransfer transfer`` and ``gantransfer compare``.

``transfer`` runs the strategies on a labeled target dataset, with a GAN's discriminator when one is
given; ``compare`` first trains that GAN on the target's unlabeled training images, then transfers.
Both write a run folder with the trained classifiers, ``results.csv``/``results.json`` and a
``report.md``/``report.html``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from gantransfer.config import Config, save_config
from gantransfer.data import Dataset, load_dataset
from gantransfer.errors import GantransferError
from gantransfer.gan.train import TrainGanResult, seed_everything, train_gan
from gantransfer.runs import (atomic_write_json, check_run_dir, machine_description,
                              package_versions, prepare_run_dir)
from gantransfer.transfer_learning.protocol import run_transfer
from gantransfer.transfer_learning.trunks import TrunkArchitecture, architecture_of, load_discriminator
from gantransfer.workflows.scoring import score_generator

logger = logging.getLogger(__name__)


@dataclass
class TransferResult:
    """What :func:`transfer` and :func:`compare` return.

    Attributes:
        run_dir: The run folder.
        results: One record per (strategy, labels per class, seed).
        files: The report files by name (results.csv, results.json, report.md, report.html).
        gan: The GAN training result, for ``compare``.

    Example:
        >>> result = compare(config, "outputs/cmp")  # doctest: +SKIP
        >>> [r["test_accuracy"] for r in result.results if r["status"] == "ok"]  # doctest: +SKIP
    """

    run_dir: Path
    results: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    gan: TrainGanResult | None = None


def _load_target(config: Config, image_size: int, channels: int | None) -> Dataset:
    """The configured dataset at this size, all of its training split kept (no validation split):
    the GAN trains on it, the GAN scoring draws real images from its test split, and the transfer
    protocol draws its labeled budgets and their validation images from it."""
    d = config.data
    return load_dataset(d.dataset, image_size=image_size, channels=channels, validation_split=0.0,
                        test_split=d.test_split, seed=config.train.seed,
                        max_in_memory_mb=d.max_in_memory_mb)


def _target_data(config: Config, disc_model: keras.Model | None) -> tuple[Dataset, list[str]]:
    """Loads the target, at the discriminator's image size and channels when there is one."""
    d = config.data
    notes = []
    size, channels = d.image_size, d.channels
    if disc_model is not None:
        given = architecture_of(disc_model)
        if size != given.image_size or channels not in (None, given.channels):
            notes.append(f"target images brought to the GAN's {given.image_size}x{given.image_size}"
                         f"x{given.channels} (the config asked for {size} px, channels {channels})")
        size, channels = given.image_size, given.channels
    return _load_target(config, size, channels), notes


def _gan_context(gan_dir: Path | None) -> dict[str, Any] | None:
    if gan_dir is None:
        return None
    samples = sorted((gan_dir / "samples").glob("epoch_*.png")) if gan_dir.is_dir() else []
    info: dict[str, Any] = {"run_dir": str(gan_dir),
                            "samples_png": str(samples[-1]) if samples else None}
    manifest = gan_dir / "run.json"
    if manifest.is_file():
        import json

        data = json.loads(manifest.read_text())
        info.update({"epochs": data.get("epochs"), "source_dataset": data.get("dataset", {}).get("name"),
                     "images": data.get("dataset", {}).get("images"),
                     "wall_time_s": data.get("wall_time_s")})
    return info


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


def _learned_pictures(config: Config, run_dir: Path, disc_model: keras.Model | None,
                      data: Dataset, results: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Filters, feature maps, a Grad-CAM and trunk embeddings, as PNGs in ``pictures/``."""
    import numpy as np

    from gantransfer import visualize as vis
    from gantransfer.transfer_learning.trunks import build_gan_trunk, reestimate_batchnorm
    from gantransfer.transfer_learning.trunks import trunk_from_discriminator

    folder = run_dir / "pictures"
    figures: list[dict[str, str]] = []
    test = data.test
    chosen = np.sort(np.random.default_rng(0).permutation(len(test))[:1000])
    pixels, labels = test.load(chosen), test.y[chosen]
    real = data.train.load(np.arange(min(len(data.train), config.transfer.bn_images)))
    trunks: dict[str, keras.Model] = {}
    if disc_model is not None:
        path = vis.save_grid_png(vis.filter_grid(disc_model), folder / "filters.png")
        figures.append({"png": str(path), "title": "First-layer filters of the discriminator",
                        "caption": "Each tile is one 5x5 (or kernel-size) filter, scaled to its "
                                   "own range."})
        x = vis.model_input(disc_model, pixels[:1])[0]
        path = vis.save_grid_png(vis.feature_map_panel(disc_model, x), folder / "feature_maps.png")
        figures.append({"png": str(path), "title": "Discriminator feature maps",
                        "caption": "The first two conv blocks' activations for the first test "
                                   "image, one tile per channel."})
        trunks["GAN trunk"], _ = trunk_from_discriminator(disc_model)
        reestimate_batchnorm(trunks["GAN trunk"], real)
    architecture = _architecture_for(config, data, disc_model)
    keras.utils.set_random_seed(0)
    trunks["random trunk"] = build_gan_trunk(architecture, name="random_trunk")
    reestimate_batchnorm(trunks["random trunk"], real)
    models = [r for r in results if r.get("status") == "ok" and r.get("model_file")
              and r["strategy"] in ("gan-finetune", "gan-frozen", "scratch")]
    if models:
        best = max(models, key=lambda r: (r["strategy"] != "scratch", str(r["labels_per_class"]),
                                          -int(r["seed"])))
        classifier = keras.saving.load_model(best["model_file"], compile=False)
        heatmap, predicted = vis.grad_cam(classifier, pixels[0].astype("float32"))
        overlay = vis.grad_cam_overlay(pixels[0], heatmap)
        path = vis.save_grid_png(overlay, folder / "gradcam.png")
        name = (data.class_names or [])[predicted] if data.class_names else predicted
        figures.append({"png": str(path), "title": f"Grad-CAM of {best['strategy']}",
                        "caption": f"Where {best['strategy']} ({best['labels_per_class']} labels/"
                                   f"class, seed {best['seed']}) found its evidence for class "
                                   f"{name} in the first test image."})
    t = config.transfer
    if any(name.startswith("imagenet-") for name in t.strategies):
        from gantransfer.errors import GantransferError
        from gantransfer.transfer_learning.backbones import build_backbone

        try:
            trunks[f"ImageNet {t.backbone}"] = build_backbone(
                t.backbone, image_size=data.image_size, channels=data.channels,
                weights=t.backbone_weights, input_size=t.backbone_input_size,
                alpha=t.backbone_alpha)
        except GantransferError as error:  # no weights here: the panel is left out, and says so
            logger.warning("no ImageNet panel in the embedding figure: %s", error)
    panels = {name: (vis.embed(trunk.predict(pixels.astype("float32"), verbose=0),
                               config.transfer.embedding), labels)
              for name, trunk in trunks.items()}
    panels["pixels"] = (vis.embed(pixels, config.transfer.embedding), labels)
    path = vis.embedding_figure(panels, folder / "embedding.png", data.class_names,
                                config.transfer.embedding)
    figures.append({"png": str(path), "title": "Which trunk separates the classes before any label?",
                    "caption": f"{config.transfer.embedding.upper()} of {len(pixels)} test images' "
                               "trunk features, coloured by class, before any label was used: the "
                               "trunks of the gan-*, random-* (and scratch, at its start), "
                               "imagenet-* and pixels-linear strategies."})
    return figures


def _architecture_for(config: Config, data: Dataset,
                      disc_model: keras.Model | None) -> TrunkArchitecture:
    if disc_model is not None:
        return architecture_of(disc_model)
    g = config.gan
    return TrunkArchitecture(data.image_size, data.channels, width=g.width,
                             kernel_size=g.kernel_size, leaky_relu_slope=g.leaky_relu_slope)


def transfer(config: Config, run_dir: str | Path, *,
             discriminator: str | Path | keras.Model | None = None, overwrite: bool = False,
             verbose: bool = True) -> TransferResult:
    """Compares the configured strategies on the configured (labeled) dataset.

    Args:
        config: The run's configuration; ``config.transfer`` picks strategies, budgets and seeds.
        run_dir: The run folder (must not exist unless ``overwrite``).
        discriminator: A trained discriminator (model, ``.keras`` file or train-gan run folder);
            needed by the ``gan-*`` strategies only. Its architecture fixes the trunk, and the
            target data is brought to its image size and channels.
        overwrite: Replace an existing run folder.
        verbose: Show a progress bar per model.

    Returns:
        A :class:`TransferResult`.

    Example:
        >>> import gantransfer as gt
        >>> config = gt.load_config(None, ["transfer.strategies=scratch,pixels-linear"])
        >>> result = gt.transfer(config, "outputs/digits-transfer")  # doctest: +SKIP
        >>> sorted(result.files)  # doctest: +SKIP
        ['report.html', 'report.md', 'results.csv', 'results.json']
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    # Check the folder first (fail fast), load, and only then touch the folder: bad input never
    # leaves an empty run folder behind or costs an old run under overwrite.
    check_run_dir(run_dir, overwrite=overwrite)
    seed_everything(config.train.seed, config.train.deterministic)
    disc_model = load_discriminator(discriminator) if discriminator is not None else None
    data, notes = _target_data(config, disc_model)
    run_dir = prepare_run_dir(run_dir, overwrite=overwrite)
    save_config(config, run_dir / "config.yaml")
    discriminator_file = discriminator if isinstance(discriminator, (str, Path)) else None
    return _transfer_into(run_dir, config, data, disc_model, notes=notes, started=started,
                          verbose=verbose, gan_dir=_run_dir_of(discriminator),
                          discriminator_file=discriminator_file)


def _transfer_into(run_dir: Path, config: Config, data: Dataset, disc_model: keras.Model | None, *,
                   notes: list[str], started: float, verbose: bool, gan_dir: Path | None = None,
                   gan_metrics: dict[str, Any] | None = None,
                   discriminator_file: str | Path | None = None) -> TransferResult:
    """Runs the strategies into a prepared run folder (``config.yaml`` written) on loaded data.

    ``data`` must have the discriminator's image size and channels, when there is one; ``gan_dir``
    is the GAN's run folder, for the report; ``started`` is when the caller's work began.
    """
    from gantransfer.reporting.report import write_report

    architecture = _architecture_for(config, data, disc_model)
    notes = [*notes, f"{data.name}: {len(data.train)} labeled training images to draw budgets "
                     f"from, {len(data.test)} test images, {data.num_classes} classes ({data.source})"]
    t = config.transfer
    context: dict[str, Any] = {
        "title": f"gantransfer: transfer strategies on {data.name}",
        "dataset": data.name, "class_names": data.class_names, "num_classes": data.num_classes,
        "gan": _gan_context(gan_dir), "config": config.to_dict(), "skipped": [], "notes": notes,
    }
    partial: list[dict[str, Any]] = []

    def keep(record: dict[str, Any]) -> None:  # results so far survive a crash
        partial.append(record)
        atomic_write_json(run_dir / "results.partial.json", {"results": partial})

    run = run_transfer(data, t.strategies, t.labels_per_class, t.seeds, t,
                       discriminator=disc_model, architecture=architecture,
                       validation_fraction=t.validation_fraction, models_dir=run_dir / "models",
                       verbose=verbose, on_result=keep)
    context["skipped"] = run.skipped
    if gan_metrics and context["gan"] is not None:
        context["gan"].update(gan_metrics)
    if t.report_pictures:
        context["figures"] = _learned_pictures(config, run_dir, disc_model, data, run.results)
    files = write_report(run.results, run_dir, context)
    (run_dir / "results.partial.json").unlink(missing_ok=True)
    atomic_write_json(run_dir / "run.json", {
        "command": "transfer", "versions": package_versions(), "machine": machine_description(),
        "dataset": data.name, "strategies": t.strategies, "labels_per_class": t.labels_per_class,
        "seeds": t.seeds, "models": len([r for r in run.results if r.get("status") == "ok"]),
        "wall_time_s": round(time.perf_counter() - started, 2),
        "discriminator": str(discriminator_file) if discriminator_file is not None else None,
    })
    return TransferResult(run_dir=run_dir, results=run.results, files=files)


def compare(config: Config, run_dir: str | Path, *, overwrite: bool = False,
            verbose: bool = True) -> TransferResult:
    """Trains a DCGAN on the target's unlabeled training images, then runs every strategy.

    The run folder holds the GAN's own run folder in ``gan/``, the trained classifiers in
    ``models/``, and the results and report. The dataset is loaded once: the GAN trains on its
    training split, is scored against its test split, and the strategies use its labels.

    Args:
        config: The run's configuration (``data``, ``gan``, ``train`` for the GAN, ``transfer``).
        run_dir: The run folder (must not exist unless ``overwrite``).
        overwrite: Replace an existing run folder.
        verbose: Show progress.

    Returns:
        A :class:`TransferResult` with ``gan`` set.

    Example:
        >>> import gantransfer as gt
        >>> result = gt.compare(gt.load_config("configs/digits.yaml"), "outputs/digits")  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, overwrite=overwrite)
    # The GAN is built at the data's size and channels, so the same images serve the transfer.
    data = _load_target(config, config.data.image_size, config.data.channels)
    run_dir = prepare_run_dir(run_dir, overwrite=overwrite)
    save_config(config, run_dir / "config.yaml")
    gan = train_gan(config, run_dir / "gan", dataset=data)
    scores = _gan_metrics(config, gan, data) if config.transfer.gan_metrics else None
    started = time.perf_counter()
    seed_everything(config.train.seed, config.train.deterministic)
    result = _transfer_into(run_dir, config, data, gan.gan.discriminator, notes=[], started=started,
                            verbose=verbose, gan_dir=gan.run_dir, gan_metrics=scores)
    result.gan = gan
    return result
