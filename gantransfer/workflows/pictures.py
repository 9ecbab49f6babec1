"""Pictures of what networks learned, as files: the library behind ``gantransfer visualize`` and the
compare report's figures.

:func:`visualize_model` looks at one saved model (filters, feature maps, Grad-CAM, an embedding);
:func:`report_pictures` draws the figures of a transfer report. Both load what they need (configs,
data, models) and write PNGs with :mod:`gantransfer.visualize`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gantransfer import visualize as vis
from gantransfer.config import Config
from gantransfer.data import Dataset, load_dataset
from gantransfer.errors import GantransferError
from gantransfer.evaluation.results import StrategyResult
from gantransfer.registry import STRATEGIES, family_of
from gantransfer.workflows.targets import run_split, test_pool, trunk_architecture
from gantransfer.runs import atomic_write_json, files_folder, remove_earlier
from gantransfer.transfer_learning.classifiers import first_member, load_classifier
from gantransfer.transfer_learning.trunks import (build_gan_trunk, load_discriminator,
                                                  reestimate_batchnorm, trunk_from_discriminator)

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "digits"
PICTURES = ("filters.png", "feature_maps.png", "gradcam.png", "embedding.png")


def _load_image(path: Path, channels: int) -> np.ndarray:
    """A picture file as uint8 ``(H, W, C)`` pixels, grey or RGB as the model takes them."""
    from PIL import Image

    picture = np.asarray(Image.open(path).convert("RGB" if channels == 3 else "L"))
    return picture[..., None] if picture.ndim == 2 else picture


def visualize_model(source: str | Path, *, dataset: str | None = None,
                    image_file: str | Path | None = None, index: int = 0,
                    layers: tuple[str, ...] | list[str] = (), class_index: int | None = None,
                    embedding: str = "pca", embedding_images: int = 1000,
                    out_dir: str | Path | None = None, overwrite: bool = False) -> dict[str, Path]:
    """Shows what a saved network learned: filters, feature maps, Grad-CAM and a 2-D embedding.

    Writes into ``out_dir``: ``filters.png`` (the first conv layer's kernels), ``feature_maps.png``
    (activations for one image), ``gradcam.png`` (classifiers only: where the evidence for a class
    lies), ``embedding.png`` (when the images are labeled: the last conv layer's features of up to
    ``embedding_images`` images, coloured by class) and ``visualize.json`` (what was drawn, from
    what, and the Grad-CAM class).

    Args:
        source: A ``.keras`` discriminator, trunk or classifier; a train-gan run folder means its
            discriminator.
        dataset: The images to look at (a name or a path); by default the run's own dataset (for
            a run folder, its discriminator, or a model in a run's ``models/``), split as the run
            split it, else digits. Images are brought to the model's input size and channels.
        image_file: One picture for the feature maps and Grad-CAM; by default test image ``index``.
        index: Which test image (training image, for a dataset without a test split).
        layers: Conv layers whose feature maps to show; the first two by default.
        class_index: The class Grad-CAM explains; the predicted one by default.
        embedding: ``"pca"`` or ``"tsne"``.
        embedding_images: At most this many images in the embedding.
        out_dir: The folder; by default ``outputs/<dataset>-visualize-<time>``.
        overwrite: Replace pictures already in ``out_dir``.

    Returns:
        The pictures written, by kind: ``filters``, ``feature_maps``, and ``gradcam`` and
        ``embedding`` when drawn.

    Raises:
        GantransferError: If ``source`` is not a model or run folder, ``out_dir`` already holds
            pictures and ``overwrite`` is false, ``index``, ``class_index`` or
            ``embedding_images`` is out of range, or a layer is unknown; before anything is drawn.

    Example:
        >>> from gantransfer.gan.models import build_discriminator
        >>> build_discriminator(32, 1, width=0.125).save("d.keras")
        >>> sorted(visualize_model("d.keras", embedding_images=50, out_dir="pictures"))
        ['embedding', 'feature_maps', 'filters']
    """
    if embedding_images < 3:  # PCA and t-SNE place a few points, not one or none
        raise GantransferError(f"--embedding-images: received {embedding_images}, expected at "
                               "least 3")
    source = Path(source)
    model_file = source / "discriminator.keras" if source.is_dir() else source
    if not model_file.is_file():
        raise GantransferError(f"{str(source)!r} is neither a .keras model nor a train-gan run folder")
    split = run_split(model_file)
    dataset = dataset or (split.dataset if split else DEFAULT_DATASET)
    out_dir = files_folder(out_dir, "visualize", dataset, PICTURES, overwrite=overwrite,
                           what="pictures")

    model = load_discriminator(model_file)
    outputs = int(model.output_shape[-1])
    if class_index is not None and not (outputs > 1 and 0 <= class_index < outputs):
        raise GantransferError(f"--class: received {class_index}, expected "
                               + (f"0..{outputs - 1}" if outputs > 1 else
                                  "none: Grad-CAM explains a classifier's classes, and this model "
                                  "has one output"))
    data, pool = test_pool(model, dataset, split)
    channels = model.input_shape[-1]
    if image_file is not None:
        picture = _load_image(Path(image_file), int(channels))
    else:
        if not 0 <= index < len(pool):
            raise GantransferError(f"--index: received {index}, expected 0..{len(pool) - 1}")
        picture = pool.load(np.array([index]))[0]
    x = vis.model_input(model, picture[None])[0]
    layers_shown = list(layers) or [layer.name for layer in vis.conv_layers(model)][:2]
    for name in layers_shown:  # an unknown or non-image layer fails before anything is drawn
        vis.activation_model(model, name)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"filters": vis.save_grid_png(vis.filter_grid(model), out_dir / "filters.png")}
    written["feature_maps"] = vis.save_grid_png(vis.feature_map_panel(model, x, layers_shown),
                                                out_dir / "feature_maps.png")
    record: dict[str, Any] = {}
    if model.output_shape[-1] > 1:
        heatmap, predicted = vis.grad_cam(model, x, class_index)
        overlay = vis.grad_cam_overlay(x, heatmap)  # a classifier's input is [0, 255] pixels
        written["gradcam"] = vis.save_grid_png(overlay, out_dir / "gradcam.png")
        record["gradcam_class"] = predicted
    if pool.labeled:
        chosen = np.sort(np.random.default_rng(0).permutation(len(pool))[:embedding_images])
        points = vis.embed(vis.trunk_features(model, pool.load(chosen)), embedding)
        written["embedding"] = vis.embedding_figure({model.name: (points, pool.y[chosen])},
                                                    out_dir / "embedding.png", data.class_names,
                                                    embedding)
    atomic_write_json(out_dir / "visualize.json", {
        "model": str(model_file), "dataset": dataset, "layers": layers_shown,
        **{kind: str(path) for kind, path in written.items()}, **record})
    remove_earlier(out_dir, PICTURES, written.values())
    return written


def report_pictures(config: Config, run_dir: str | Path, discriminator: keras.Model | None,
                    data: Dataset, results: list[StrategyResult]) -> list[dict[str, str]]:
    """The figures of a transfer report, as PNGs in ``run_dir/pictures/``.

    With a discriminator: its first-layer filters and the first test image's feature maps. With a
    trained GAN-trunk (or scratch) classifier among ``results``: its Grad-CAM of the first test
    image. Always: an embedding of up to 1,000 test images' features before any label is used, one
    panel per trunk (the GAN trunk, a random trunk, the ImageNet backbone when configured and its
    weights are at hand) and the raw pixels.

    Args:
        config: The run's configuration (GAN architecture, strategies, backbone, embedding).
        run_dir: The run folder.
        discriminator: The transferred discriminator, if any.
        data: The target dataset.
        results: The transfer results (their ``model_file`` entries name saved classifiers).

    Returns:
        One ``{"png", "title", "caption"}`` entry per figure, in report order.

    Example:
        >>> from gantransfer.config import load_config
        >>> config = load_config(None, ["transfer.strategies=scratch", "transfer.bn_images=50",
        ...                                  "gan.width=0.125"])
        >>> data = load_dataset("digits", image_size=28, seed=0)
        >>> [f["title"] for f in report_pictures(config, "run", None, data, results=[])]
        ['Which trunk separates the classes before any label?']
    """
    folder = Path(run_dir) / "pictures"
    figures: list[dict[str, str]] = []
    test = data.test
    chosen = np.sort(np.random.default_rng(0).permutation(len(test))[:1000])
    pixels, labels = test.load(chosen), test.y[chosen]
    real = data.train.load(np.arange(min(len(data.train), config.transfer.bn_images)))
    trunks: dict[str, keras.Model] = {}
    if discriminator is not None:
        path = vis.save_grid_png(vis.filter_grid(discriminator), folder / "filters.png")
        figures.append({"png": str(path), "title": "First-layer filters of the discriminator",
                        "caption": "Each tile is one 5x5 (or kernel-size) filter, scaled to its "
                                   "own range."})
        x = vis.model_input(discriminator, pixels[:1])[0]
        path = vis.save_grid_png(vis.feature_map_panel(discriminator, x),
                                 folder / "feature_maps.png")
        figures.append({"png": str(path), "title": "Discriminator feature maps",
                        "caption": "The first two conv blocks' activations for the first test "
                                   "image, one tile per channel."})
        trunks["GAN trunk"], _ = trunk_from_discriminator(discriminator)
        reestimate_batchnorm(trunks["GAN trunk"], real)
    architecture = trunk_architecture(config, data, discriminator)
    keras.utils.set_random_seed(0)
    trunks["random trunk"] = build_gan_trunk(architecture, name="random_trunk")
    reestimate_batchnorm(trunks["random trunk"], real)
    # A conv classifier to explain: a GAN-trunk one when there is one, else scratch (probes have
    # no conv layer of their own to weigh).
    models = [r for r in results if r.has_results and r.model_file
              and family_of(r.strategy) in ("gan", "scratch")
              and STRATEGIES[r.strategy].method != "linear-probe"]
    if models:
        best = max(models, key=lambda r: (family_of(r.strategy) == "gan",
                                          str(r.labels_per_class), -int(r.seed)))
        classifier = first_member(load_classifier(best.model_file))  # one model, on the unmoved image
        heatmap, predicted = vis.grad_cam(classifier, pixels[0].astype("float32"))
        overlay = vis.grad_cam_overlay(pixels[0], heatmap)
        path = vis.save_grid_png(overlay, folder / "gradcam.png")
        name = (data.class_names or [])[predicted] if data.class_names else predicted
        figures.append({"png": str(path), "title": f"Grad-CAM of {best.strategy}",
                        "caption": f"Where {best.strategy} ({best.labels_per_class} labels/"
                                   f"class, seed {best.seed}) found its evidence for class "
                                   f"{name} in the first test image."})
    t = config.transfer
    if any(family_of(name) == "imagenet" for name in t.strategies):
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
