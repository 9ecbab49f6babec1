"""The report's figures, drawn with Matplotlib's Agg renderer and returned as PNG bytes.

Figures are built on ``matplotlib.figure.Figure`` directly, not ``pyplot``: nothing global changes
(no backend switch, no open-figure registry), so drawing works in threads and headless machines.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gantransfer.evaluation.results import StrategyResult
from gantransfer.evaluation.summary import budget_label, budget_sort_key
from gantransfer.registry import OTHER, STRATEGIES, in_family

DPI = 110
# Class names label the confusion-matrix axes up to this many classes; cell values up to _ANNOTATE.
MAX_NAMED_CLASSES = 20
_ANNOTATE = 12


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


# One hue per family (the registry's) and a shade of it per member, so that a strategy looks the
# same in every report; a GAN strategy and its random-trunk control share a marker. Names outside
# the registry are greys.
FAMILY_COLOURS = {"gan": "#1f77b4", "random": "#d62728", "imagenet": "#2ca02c",
                  "scratch": "#ff7f0e", "pixels": "#9467bd", OTHER: "#7f7f7f"}
FAMILY_LINESTYLES = {"gan": "-", "random": "--", "imagenet": "-."}  # the rest dotted
# The same method draws the same marker in every family: gan-frozen and random-frozen match.
METHOD_MARKERS = {"full": "o", "frozen": "s", "finetune": "^", "linear-probe": "D",
                  "semisupervised": "P"}


def _shade(colour: str, index: int, count: int) -> str:
    """``colour`` darkened for ``index`` 0, lightened for ``count - 1``, evenly between; as it is
    when ``count`` is 1. The ends are far enough apart that four shades of a hue stay apart."""
    mix = -0.35 + 0.9 * index / (count - 1) if count > 1 else 0.0
    rgb = np.asarray(to_rgb(colour))
    return to_hex(rgb * (1.0 + mix) if mix < 0 else rgb + (1.0 - rgb) * mix)


def strategy_styles(strategies: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A colour, line style and marker per strategy, the same in every figure of a report.

    Everything comes from the strategy registry: the colour's hue and the line style from the
    family (GAN trunks solid blues, random-trunk controls dashed reds, ImageNet dash-dotted greens,
    the rest dotted), its shade from its place in the family (darkest first, in registry order)
    and the marker from the method. Names outside the registry are
    dotted greys, one shade each.

    Example:
        >>> styles = strategy_styles(["scratch", "gan-frozen", "random-frozen", "mine"])
        >>> styles["gan-frozen"]["linestyle"], styles["random-frozen"]["marker"]
        ('-', 's')
        >>> styles["mine"]["color"]
        '#7f7f7f'
    """
    unknown = [name for name in dict.fromkeys(strategies) if name not in STRATEGIES]
    styles = {}
    for name in strategies:
        info = STRATEGIES.get(name)
        if info is None:
            colour = _shade(FAMILY_COLOURS[OTHER], unknown.index(name), len(unknown))
            styles[name] = {"color": colour, "linestyle": ":", "marker": "o"}
            continue
        family = in_family(info.family)
        colour = _shade(FAMILY_COLOURS[info.family], family.index(name), len(family))
        styles[name] = {"color": colour, "linestyle": FAMILY_LINESTYLES.get(info.family, ":"),
                        "marker": METHOD_MARKERS[info.method]}
    return styles


def _budget_positions(budgets: Sequence[Any]) -> tuple[dict[Any, float], bool]:
    """x positions of budgets: numbers at their value (log axis), ``"all"`` and names after them."""
    numeric = sorted(b for b in budgets if isinstance(b, int) and b > 0)
    named = sorted((b for b in budgets if b not in numeric), key=budget_sort_key)
    if not numeric:
        return {b: float(i + 1) for i, b in enumerate(named)}, False
    positions = {b: float(b) for b in numeric}
    # Named budgets continue the numeric ones' spacing (at least a factor 2 on the log axis).
    ratio = (numeric[-1] / numeric[0]) ** (1.0 / (len(numeric) - 1)) if len(numeric) > 1 else 3.0
    step = max(ratio, 2.0)
    for index, budget in enumerate(named):
        positions[budget] = numeric[-1] * step ** (index + 1)
    return positions, True


def accuracy_figure(summary: list[dict[str, Any]], strategies: Sequence[str]) -> bytes | None:
    """Mean test accuracy against labels per class, one line per strategy, std error bars.

    Args:
        summary: Rows from :func:`gantransfer.evaluation.summary.summarize`.
        strategies: Strategy names in display order (they fix the colours).

    Returns:
        The PNG bytes, or ``None`` when ``summary`` is empty.
    """
    if not summary:
        return None
    styles = strategy_styles(strategies)
    budgets = sorted({row["labels_per_class"] for row in summary}, key=budget_sort_key)
    positions, log_axis = _budget_positions(budgets)
    drawn = [s for s in strategies if any(row["strategy"] == s for row in summary)]

    figure = Figure(figsize=(8.0, 4.4), layout="constrained")
    axes = figure.add_subplot()
    for index, strategy in enumerate(drawn):
        rows = sorted((r for r in summary if r["strategy"] == strategy),
                      key=lambda r: budget_sort_key(r["labels_per_class"]))
        # Nudge strategies apart along x so their error bars do not hide one another.
        offset = (index - (len(drawn) - 1) / 2.0) * 0.012
        xs = [positions[r["labels_per_class"]] * (10 ** offset if log_axis else 1.0)
              + (0.0 if log_axis else offset * 4) for r in rows]
        ys = [100.0 * r["test_accuracy_mean"] for r in rows]
        errors = [100.0 * (r["test_accuracy_std"] or 0.0) for r in rows]
        axes.errorbar(xs, ys, yerr=errors, label=strategy, markersize=4, capsize=3,
                      linewidth=1.6, elinewidth=1.0, **styles[strategy])
    if log_axis:
        axes.set_xscale("log")
    axes.set_xticks([positions[b] for b in budgets], [str(b) for b in budgets])
    axes.minorticks_off()
    axes.set_xlabel("Labels per class" + (" (log scale)" if log_axis else ""))
    axes.set_ylabel("Test accuracy (%)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    axes.set_title("Test accuracy by label budget (mean ± std over seeds)", fontsize=11)
    return _png(figure)


def _history_keys(history: dict[str, Any]) -> tuple[str, str | None, str]:
    """The train key, its validation key and the y label: accuracy when logged, else loss.

    A fine-tuning strategy logs its head phase under ``head_`` names before the fine-tuning
    phase's own: the keys are the fine-tuning phase's (:func:`_phases` puts the two together).

    Example:
        >>> _history_keys({"head_accuracy": [0.5], "head_val_accuracy": [0.4],
        ...                "accuracy": [0.6], "val_accuracy": [0.5]})
        ('accuracy', 'val_accuracy', 'accuracy (%)')
    """
    train_keys = [k for k in history if not str(k).startswith("val_") and history.get(k)]
    if any(not str(k).startswith("head_") for k in train_keys):
        train_keys = [k for k in train_keys if not str(k).startswith("head_")]
    accuracy = [k for k in train_keys if "acc" in str(k)]
    key = accuracy[0] if accuracy else ("loss" if "loss" in train_keys else
                                        (train_keys[0] if train_keys else None))
    if key is None:  # Only validation curves were logged.
        val_only = [k for k in history if history.get(k)]
        return val_only[0], None, str(val_only[0])
    val_key = f"val_{key}" if history.get(f"val_{key}") else None
    return key, val_key, "accuracy (%)" if "acc" in str(key) else str(key)


def _phases(history: dict[str, Any], key: str) -> tuple[list[Any], int | None]:
    """The values of ``key`` with a fine-tuning strategy's head phase (``head_<key>``) before
    them, and how many epochs that phase had (None when there is one phase).

    Example:
        >>> _phases({"head_loss": [3, 2], "loss": [1]}, "loss"), _phases({"loss": [1]}, "loss")
        (([3, 2, 1], 2), ([1], None))
    """
    head = list(history.get(f"head_{key}") or []) if not key.startswith("head_") else []
    main = list(history.get(key) or [])
    return head + main, (len(head) if head and main else None)


def pick_history_records(results: list[StrategyResult],
                         strategies: Sequence[str]) -> dict[str, StrategyResult]:
    """Per strategy, the result whose history to draw: the lowest seed at its largest budget.

    Only results with a test accuracy and a non-empty ``history`` are considered; strategies
    without one are left out.

    Example:
        >>> results = [StrategyResult("scratch", b, seed=s, test_accuracy=0.5,
        ...                           history={"loss": [1.0, 0.5]})
        ...            for b in (10, 100) for s in (1, 0)]
        >>> chosen = pick_history_records(results, ["scratch", "pixels-linear"])
        >>> list(chosen), chosen["scratch"].labels_per_class, chosen["scratch"].seed
        (['scratch'], 100, 0)
    """
    chosen: dict[str, StrategyResult] = {}
    for strategy in strategies:
        records = [r for r in results if r.has_results and r.strategy == strategy
                   and any(r.history.values())]
        if not records:
            continue
        largest = max((r.labels_per_class for r in records), key=budget_sort_key)
        at_largest = [r for r in records if r.labels_per_class == largest]
        chosen[strategy] = min(at_largest, key=_seed_key)
    return chosen


def _seed_key(record: StrategyResult) -> tuple[int, float, str]:
    seed = record.seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return (0, float(seed), "")
    return (1, 0.0, str(seed))


def learning_curves_figure(records: dict[str, StrategyResult],
                           strategies: Sequence[str]) -> bytes | None:
    """Small multiples of train/validation curves per epoch, one panel per strategy.

    Args:
        records: ``{strategy: record}``, as chosen by :func:`pick_history_records`.
        strategies: All strategy names in display order (they fix the colours).

    Returns:
        The PNG bytes, or ``None`` when no record has a history.
    """
    if not records:
        return None
    styles = strategy_styles(strategies)
    names = [s for s in strategies if s in records]
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(3.1 * columns + 0.4, 2.5 * rows + 0.3), layout="constrained")
    for index, strategy in enumerate(names):
        record = records[strategy]
        history = record.history
        axes = figure.add_subplot(rows, columns, index + 1)
        key, val_key, label = _history_keys(history)
        scale = 100.0 if "acc" in str(key) else 1.0
        color = styles[strategy]["color"]
        boundary = None
        for name, linestyle, legend in ((key, "-", "train"), (val_key, "--", "validation")):
            if name is None:
                continue
            series, head_epochs = _phases(history, name)
            boundary = boundary or head_epochs
            values = np.asarray([np.nan if v is None else v for v in series], dtype="float64")
            axes.plot(np.arange(1, len(values) + 1), values * scale, linestyle=linestyle,
                      color=color, linewidth=1.5, label=legend)
        if boundary:  # a fine-tuning strategy: its head trained first, then everything
            axes.axvline(boundary + 0.5, color="0.5", linestyle=":", linewidth=1.0,
                         label="fine-tuning starts")
        axes.set_title(f"{strategy}\n{budget_label(record.labels_per_class)}, "
                       f"seed {record.seed}", fontsize=9)
        axes.set_xlabel("epoch", fontsize=8)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(label, fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7, frameon=False)
    return _png(figure)


def normalized_confusion(matrices: Sequence[Any], num_classes: int) -> np.ndarray | None:
    """Sums confusion matrices and divides each row by its total (empty rows stay zero).

    Matrices whose shape is not ``(num_classes, num_classes)`` are ignored.

    Example:
        >>> normalized_confusion([[[1, 1], [0, 2]], [[2, 0], [0, 0]]], 2).tolist()
        [[0.75, 0.25], [0.0, 1.0]]
    """
    total = np.zeros((num_classes, num_classes), dtype="float64")
    used = 0
    for matrix in matrices:
        array = np.asarray(matrix, dtype="float64")
        if array.shape == (num_classes, num_classes) and np.all(np.isfinite(array)):
            total += array
            used += 1
    if not used:
        return None
    sums = total.sum(axis=1, keepdims=True)
    return np.divide(total, sums, out=np.zeros_like(total), where=sums > 0)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """A row-normalised confusion matrix: rows true classes, columns predictions.

    Class names label the axes when there are at most ``MAX_NAMED_CLASSES`` classes; cells show
    their value in percent (blank when it rounds to 0) up to 12 classes.

    Args:
        matrix: ``(K, K)`` row-normalised matrix (rows sum to 1 or 0).
        class_names: ``K`` names.
        title: Panel title.

    Returns:
        The PNG bytes.
    """
    count = matrix.shape[0]
    side = float(np.clip(0.28 * count + 1.9, 3.2, 7.5))
    figure = Figure(figsize=(side, side * 0.95), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    if count <= MAX_NAMED_CLASSES:
        names = [str(n) if len(str(n)) <= 18 else str(n)[:17] + "…" for n in class_names]
        axes.set_xticks(range(count), names, rotation=45, ha="right", rotation_mode="anchor",
                        fontsize=8)
        axes.set_yticks(range(count), names, fontsize=8)
    else:
        axes.set_xticks([])
        axes.set_yticks([])
    if count <= _ANNOTATE:
        for row in range(count):
            for column in range(count):
                value = matrix[row, column]
                if round(100 * value) == 0:
                    continue  # blank cells read faster than a sea of zeros
                axes.text(column, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=7.5,
                          color="white" if value > 0.5 else "#333333")
    else:
        figure.colorbar(image, ax=axes, shrink=0.8)
    axes.set_xlabel("Predicted class", fontsize=9)
    axes.set_ylabel("True class", fontsize=9)
    axes.set_title(title, fontsize=10)
    return _png(figure)


def robustness_styles(labels: list[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib line styles for a robustness curve's labels.

    A label ``"strategy (defence)"`` takes its strategy's colour; a defence other than
    ``undefended`` is drawn solid and thicker, with diamonds, so that a defended model stands out
    from the same strategy undefended.

    Example:
        >>> styles = robustness_styles(["scratch (undefended)", "scratch (PGD-trained)"])
        >>> styles["scratch (PGD-trained)"]["color"] == styles["scratch (undefended)"]["color"]
        True
        >>> [styles["scratch (PGD-trained)"][key] for key in ("linestyle", "marker", "linewidth")]
        ['-', 'D', 2.6]
    """
    bases = {label: label.split(" (")[0] for label in labels}
    base_styles = strategy_styles(list(dict.fromkeys(bases.values())))
    styles = {}
    for label, base in bases.items():
        styles[label] = dict(base_styles[base])
        defence = label[len(base):].strip(" ()")
        if defence and defence != "undefended":
            styles[label].update(linestyle="-", marker="D", linewidth=2.6)
        styles[label].setdefault("linewidth", 1.6)
    return styles


def robustness_figure(curves: dict[str, list[tuple[float, float, float | None]]], title: str
                      ) -> bytes:
    """Accuracy against the attack's epsilon, one line per model or strategy.

    Args:
        curves: Label -> ``(epsilon, accuracy, std or None)`` points; accuracies are fractions.
            Strategy names get the report's colours; other labels, greys. A label ``"strategy
            (defence)"`` takes its strategy's colour, and a defence other than ``undefended`` draws
            it solid and thicker, with diamonds.
        title: The figure's title (the attack).

    Returns:
        The PNG bytes.
    """
    styles = robustness_styles(list(curves))
    figure = Figure(figsize=(7.0, 4.2), layout="constrained")
    axes = figure.add_subplot()
    for label, points in curves.items():
        points = sorted(points)
        errors = [100.0 * (std or 0.0) for _, _, std in points]
        axes.errorbar([e for e, _, _ in points], [100.0 * a for _, a, _ in points],
                      yerr=errors if any(errors) else None, label=label, markersize=4,
                      capsize=3, **styles[label])
    axes.set_xlabel("ε (L∞, on the [0, 1] pixel scale)")
    axes.set_ylabel("Accuracy under attack (%)")
    axes.set_ylim(-2, 102)
    axes.grid(True, alpha=0.3)
    if len(curves) > 1:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    axes.set_title(title, fontsize=11)
    return _png(figure)


def adversarial_figure(originals: np.ndarray, adversarials: np.ndarray,
                       original_scores: list[tuple[str, float]],
                       adversarial_scores: list[tuple[str, float]], epsilon: float,
                       attack: str) -> bytes:
    """The course's picture: each image, its perturbation (scaled for display) and the result.

    Args:
        originals: uint8-range pixels ``(N, H, W, C)`` in [0, 255].
        adversarials: The attacked images, same shape and range.
        original_scores: ``(predicted class name, confidence)`` per original.
        adversarial_scores: The same for each adversarial image.
        epsilon: The budget on the [0, 1] scale.
        attack: The attack's name, for the title.

    Returns:
        The PNG bytes.
    """
    rows = len(originals)
    figure = Figure(figsize=(6.6, 2.2 * rows + 0.5), layout="constrained")
    grid = figure.subplots(rows, 3, squeeze=False)
    grey = originals.shape[-1] == 1
    radius = max(epsilon * 255.0, 1e-12)
    for row in range(rows):
        x, adv = originals[row].astype("float32"), adversarials[row].astype("float32")
        noise = np.clip((adv - x) / (2 * radius) + 0.5, 0, 1)  # -epsilon..+epsilon to 0..1
        panels = [(x / 255.0, "{} ({:.1%})".format(*original_scores[row])),
                  (noise, f"perturbation (±{epsilon:g}, scaled)"),
                  (adv / 255.0, "{} ({:.1%})".format(*adversarial_scores[row]))]
        for column, (image, caption) in enumerate(panels):
            axes = grid[row][column]
            axes.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None,
                        vmin=0, vmax=1, interpolation="nearest")
            axes.set_title(caption, fontsize=9)
            axes.set_xticks([])
            axes.set_yticks([])
    figure.suptitle(f"image + perturbation = adversarial image ({attack}, ε = {epsilon:g})",
                    fontsize=10)
    return _png(figure)
