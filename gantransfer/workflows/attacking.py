"""Attacking a saved classifier: the library behind ``gantransfer attack``.

:func:`attack_model` loads a classifier and a dataset's test images, measures accuracy under FGSM
or PGD at each epsilon (:mod:`gantransfer.robustness`), and writes the table, the curve and the
course's picture (image + perturbation = adversarial image) into a folder.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from gantransfer.errors import ConfigError, GantransferError
from gantransfer.reporting.figures import adversarial_figure, robustness_figure
from gantransfer.robustness import (AttackSettings, RobustPoint, adversarial_examples,
                                    check_epsilons, robust_accuracy)
from gantransfer.runs import (atomic_write, atomic_write_json, atomic_write_text, files_folder,
                              remove_earlier)
from gantransfer.transfer_learning.classifiers import load_classifier
from gantransfer.workflows.targets import run_split, test_pool

logger = logging.getLogger(__name__)

DEFAULT_DATASET = "digits"
FILES = ("robustness.csv", "robustness.png", "adversarial_examples.png", "attack.json")


@dataclass
class AttackResult:
    """What :func:`attack_model` measured and wrote.

    Attributes:
        points: Accuracy under attack, one per epsilon, in the order given.
        out_dir: The folder written.
        files: The files written, by kind (``csv``, ``curve``, ``examples``, ``json``).
        wall_time_s: Seconds the attacks took (loading excluded).
    """

    points: list[RobustPoint]
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def table(self) -> str:
        """The points as a Markdown table."""
        lines = ["| ε | accuracy | images | zero-gradient images |", "|---:|---:|---:|---:|"]
        lines += [f"| {p.epsilon:g} | {100 * p.accuracy:.1f}% | {p.images} | "
                  f"{p.zero_gradient_images} |" for p in self.points]
        return "\n".join(lines)


def _load_classifier(model_file: Path) -> keras.Model:
    model = load_classifier(model_file)
    if len(model.output_shape) != 2 or model.output_shape[-1] < 2:
        raise GantransferError(f"{str(model_file)!r} has output shape {model.output_shape}, not "
                               "class scores: attack a classifier (a compare run's models/), not a "
                               "discriminator")
    return model


def attack_model(model_file: str | Path, *, dataset: str | None = None,
                 epsilons: list[float] | tuple[float, ...] = (0.0, 0.01, 0.03, 0.1),
                 settings: AttackSettings | None = None, images: int = 1000, examples: int = 4,
                 picture_epsilon: float | None = None, out_dir: str | Path | None = None,
                 overwrite: bool = False) -> AttackResult:
    """Measures a saved classifier's accuracy under attack, and draws what the attack does.

    Writes into ``out_dir``: ``robustness.csv`` (one row per epsilon), ``robustness.png`` (accuracy
    against epsilon), ``adversarial_examples.png`` (for ``examples`` test images the model gets
    right, those the attack fools first: the image, the perturbation scaled for display and the
    adversarial image, each with its predicted class and confidence) and ``attack.json`` (the model, data, attack and points).

    Args:
        model_file: A classifier ``.keras`` file (pixels in [0, 255] to logits): any model in a
            compare or transfer run's ``models/``, linear probes included.
        dataset: Whose test images to attack (a name or a path); by default the run's own dataset
            for a model in a run's ``models/`` folder, else digits. Images are brought to the model's
            input size and channels. A run's own dataset is split as the run split it, so the
            attacked images are test images the model never trained on.
        epsilons: Budgets on the [0, 1] pixel scale; 0 is the clean accuracy.
        settings: The attack (PGD-20 with a random start by default).
        images: Attack the first this many test images (all when fewer).
        examples: Rows of the picture.
        picture_epsilon: The budget the picture shows; the largest of ``epsilons`` by default.
        out_dir: The folder; by default ``outputs/<dataset>-attack-<time>``.
        overwrite: Replace the files of an earlier attack in ``out_dir``.

    Returns:
        An :class:`AttackResult`.

    Raises:
        GantransferError: If the file is not a classifier, the data's classes do not match the
            model's outputs, an argument is out of range, or ``out_dir`` holds an earlier attack
            and ``overwrite`` is false.

    Example:
        >>> result = attack_model("outputs/cmp/models/scratch_lpc-10_seed-0.keras")  # doctest: +SKIP
        >>> [round(p.accuracy, 2) for p in result.points]  # doctest: +SKIP
        [0.91, 0.62, 0.2, 0.0]
    """
    settings = settings or AttackSettings()
    epsilons = check_epsilons(list(epsilons))
    if images < 1 or examples < 0:
        raise ConfigError(f"--images must be at least 1 and --examples at least 0; received "
                          f"{images} and {examples}")
    shown_epsilon = max(epsilons) if picture_epsilon is None else check_epsilons([picture_epsilon])[0]
    model_file = Path(model_file)
    split = run_split(model_file) if model_file.parent.name == "models" else None
    dataset = dataset or (split.dataset if split else DEFAULT_DATASET)
    out_dir = files_folder(out_dir, "attack", dataset, FILES, overwrite=overwrite,
                           what="an attack's files")

    model = _load_classifier(model_file)
    data, pool = test_pool(model, dataset, split)
    if not pool.labeled:
        raise GantransferError(f"dataset {dataset!r} has no labels: an attack needs labeled images")
    classes = int(model.output_shape[-1])
    if data.num_classes != classes:
        raise GantransferError(f"the model predicts {classes} classes but {dataset!r} has "
                               f"{data.num_classes}: attack it with the dataset it was trained on")
    chosen = np.arange(min(images, len(pool)))
    x, y = pool.load(chosen).astype("float32"), pool.y[chosen].astype("int64")

    started = time.perf_counter()
    points = robust_accuracy(model, x, y, epsilons, settings)
    wall_time = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    result = AttackResult(points=points, out_dir=out_dir, wall_time_s=wall_time)
    result.files["csv"] = _write_csv(out_dir / "robustness.csv", points)
    title = f"{model.name} on {dataset}: {settings.describe()}, {len(y)} test images"
    curve = robustness_figure({model.name: [(p.epsilon, p.accuracy, None) for p in points]}, title)
    result.files["curve"] = _write_bytes(out_dir / "robustness.png", curve)
    if examples:
        picture = _examples_picture(model, x, y, shown_epsilon, settings, examples,
                                    data.class_names or [str(i) for i in range(classes)])
        if picture is not None:
            result.files["examples"] = _write_bytes(out_dir / "adversarial_examples.png", picture)
    result.files["json"] = out_dir / "attack.json"
    atomic_write_json(result.files["json"], {
        "model": str(model_file), "dataset": dataset, "images": len(y),
        # How a dataset without a test split of its own was split: the model's run's way, or not.
        "split": ({"test_split": split.test_split, "seed": split.seed}
                  if split is not None and split.dataset == dataset else None),
        "attack": {"method": settings.method, "description": settings.describe(),
                   "steps": settings.steps, "step_size": settings.relative_step,
                   "random_start": settings.random_start, "restarts": settings.restarts,
                   "seed": settings.seed},
        "picture_epsilon": shown_epsilon, "wall_time_s": wall_time,
        "points": [p.to_row() for p in points]})
    remove_earlier(out_dir, FILES, result.files.values())
    zero = max(p.zero_gradient_images for p in points)
    if zero:
        logger.warning("%d of %d images had a zero loss gradient: the attack cannot move them, and "
                       "their accuracy under attack is gradient masking, not robustness", zero, len(y))
    return result


def _examples_picture(model: keras.Model, x: np.ndarray, y: np.ndarray, epsilon: float,
                      settings: AttackSettings, examples: int, class_names: list[str]
                      ) -> bytes | None:
    """The course's picture: among the first images the model classifies correctly, those the
    attack fools first (then the others), ``examples`` of them."""
    logits = keras.ops.convert_to_numpy(model(x[:max(64, examples * 8)], training=False))
    right = np.flatnonzero(logits.argmax(-1) == y[:len(logits)])[:examples * 4]
    if not len(right):
        return None
    attacked, _ = adversarial_examples(model, x[right], y[right], epsilon, settings)
    fooled = keras.ops.convert_to_numpy(model(attacked, training=False)).argmax(-1) != y[right]
    order = np.concatenate([np.flatnonzero(fooled), np.flatnonzero(~fooled)])[:examples]
    right, adversarial = right[np.sort(order)], attacked[np.sort(order)]

    def scores(images: np.ndarray) -> list[tuple[str, float]]:
        probabilities = keras.ops.convert_to_numpy(
            keras.ops.softmax(model(images, training=False), axis=-1))
        return [(class_names[i], float(p[i])) for i, p in zip(probabilities.argmax(-1),
                                                               probabilities)]

    return adversarial_figure(x[right], adversarial, scores(x[right]), scores(adversarial),
                              epsilon, settings.name)


def _write_csv(path: Path, points: list[RobustPoint]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(points[0].to_row()))
    writer.writeheader()
    writer.writerows(p.to_row() for p in points)
    atomic_write_text(path, buffer.getvalue())
    return path


def _write_bytes(path: Path, data: bytes) -> Path:
    atomic_write(path, lambda handle: handle.write(data))
    return path


def describe(result: AttackResult) -> str:
    """The lines ``gantransfer attack`` prints."""
    lines = [result.table(), f"attacked in {result.wall_time_s:.1f} s"]
    lines += [f"{kind}: {path}" for kind, path in result.files.items()]
    return "\n".join(lines)


__all__ = ["AttackResult", "attack_model", "describe"]
