"""The comparison report: files, tables, verdicts, self-contained HTML and a real browser render."""

import base64
import csv
import html
import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantransfer.evaluation import (StrategyResult, classification_metrics, comparisons, summarize,
                                    verdict)
from gantransfer.registry import family_of
from gantransfer.reporting.figures import strategy_styles
from gantransfer.reporting.report import CSV_COLUMNS, write_report

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
               "Bag", "Ankle boot"]
# Test accuracy per strategy, budget and seed (seeds 0, 1, 2), chosen so the verdict is known.
ACCURACY = {
    "scratch": {10: [0.65, 0.66, 0.70], 100: [0.88, 0.90, 0.89]},
    "gan-frozen": {10: [0.70, 0.72, 0.74], 100: [0.85, 0.86, 0.87]},
    "random-frozen": {10: [0.60, 0.63, 0.63], 100: [0.80, 0.80, 0.83]},
    "gan-linear-probe": {10: [0.69, 0.70, 0.68], 100: [0.82, 0.83, 0.84]},
}
SKIP_REASON = "ImageNet weights unavailable (no network)"
SUMMARY_ROWS = 8  # 4 strategies x 2 budgets
IMAGES = 7  # accuracy, learning curves, 4 confusion matrices, GAN samples


def _predictions(accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    """100 test labels (10 per class) and predictions exactly ``accuracy`` of which are right."""
    y_true = np.repeat(np.arange(10), 10)
    order = np.random.default_rng(int(accuracy * 1000)).permutation(100)
    y_pred = (y_true + 1) % 10
    correct = order[:round(accuracy * 100)]
    y_pred[correct] = y_true[correct]
    return y_true, y_pred


def _history(epochs: int, final: float, seed: int) -> dict:
    steps = np.linspace(0.0, 1.0, epochs)
    accuracy = 0.2 + (final + 0.05 - 0.2) * np.sqrt(steps)
    history = {"loss": list(2.3 * np.exp(-2.5 * steps) + 0.1),
               "accuracy": list(np.minimum(accuracy + 0.08, 1.0)),
               "val_loss": list(2.3 * np.exp(-2.0 * steps) + 0.3 + 0.01 * seed),
               "val_accuracy": list(accuracy)}
    history["val_loss"][1] = float("nan")  # a NaN must become null in results.json
    return history


def result(strategy: str, labels_per_class, **fields) -> StrategyResult:
    """One result, as the protocol would make it."""
    return StrategyResult(strategy=strategy, labels_per_class=labels_per_class, **fields)


def make_results() -> list[StrategyResult]:
    results = []
    for strategy, budgets in ACCURACY.items():
        for budget, accuracies in budgets.items():
            for seed, accuracy in enumerate(accuracies):
                y_true, y_pred = _predictions(accuracy)
                probe = strategy.endswith("linear-probe")
                epochs = 8 + 2 * seed + budget // 25
                record = {
                    "seed": seed, "status": "ok",
                    "reason": None, **classification_metrics(y_true, y_pred, num_classes=10),
                    "train_time_s": np.float64(1.5 + budget / 20 + seed),
                    "trainable_params": np.int64(1290 if probe or "frozen" in strategy else 85_000),
                    "total_params": np.int64(1290 if probe else 86_290),
                    "epochs": None if probe else epochs,
                    "learning_rate": None if probe else 1e-3,
                    "C": 0.1 if probe else None, "phase_kept": None,
                    "history": {} if probe else _history(epochs, accuracy, seed),
                    "notes": (["BatchNorm statistics re-estimated on 1437 real training images"]
                              if family_of(strategy) == "gan" else []),
                }
                results.append(result(strategy, budget, **record))
    for budget in (10, 100):
        for seed in range(3):
            results.append(result("imagenet-frozen", budget, seed=seed, status="skipped",
                                  reason=SKIP_REASON))
    return results


def make_context(samples_png: Path) -> dict:
    return {
        "dataset": "fashion_mnist", "class_names": CLASS_NAMES, "num_classes": 10,
        "title": "Few-label Fashion-MNIST: GAN transfer vs baselines",
        "gan": {"run_dir": "outputs/fashion-gan", "epochs": 25, "samples_png": str(samples_png),
                "source_dataset": "fashion_mnist"},
        "config": {"data": {"dataset": "fashion_mnist", "image_size": 32},
                   "transfer": {"strategies": list(ACCURACY), "budgets": [10, 100], "seeds": 3}},
        "skipped": [{"strategy": "imagenet-frozen", "reason": SKIP_REASON},
                    {"strategy": "imagenet-finetune", "reason": SKIP_REASON}],
        "notes": ["Validation: 10% of the labelled pool, stratified."],
    }


def make_samples_png(path: Path) -> Path:
    tiles = np.random.default_rng(0).integers(0, 256, size=(4, 4, 28, 28), dtype=np.uint8)
    grid = np.zeros((4 * 30 + 2, 4 * 30 + 2), dtype=np.uint8)
    for row in range(4):
        for column in range(4):
            grid[2 + 30 * row:30 * row + 30, 2 + 30 * column:30 * column + 30] = tiles[row, column]
    Image.fromarray(grid).resize((488, 488), Image.NEAREST).save(path)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    results = make_results()
    context = make_context(make_samples_png(folder / "gan_samples_source.png"))
    paths = write_report(results, folder / "run", context)
    return {"results": results, "context": context, "paths": paths, "run_dir": folder / "run"}


class _Tags(HTMLParser):
    """Collects every start tag and its attributes."""

    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------

def test_all_files_are_written(report):
    paths, run_dir = report["paths"], report["run_dir"]
    for name in ("results.csv", "results.json", "report.md", "report.html"):
        assert paths[name] == run_dir / name and paths[name].stat().st_size > 0
    assert sorted(paths) == ["report.html", "report.md", "results.csv", "results.json"]
    figures = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert figures == ["accuracy.png", "confusion_gan-frozen.png", "confusion_gan-linear-probe.png",
                       "confusion_random-frozen.png", "confusion_scratch.png", "gan_samples.png",
                       "learning_curves.png"]
    for name in figures:
        assert (run_dir / "figures" / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not list(run_dir.rglob(".*.tmp"))  # atomic writes leave no temporary files


def test_results_csv_has_one_flat_row_per_record(report):
    with open(report["paths"]["results.csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(report["results"]) == 30
    columns = list(rows[0])
    assert columns[:len(CSV_COLUMNS)] == CSV_COLUMNS
    assert "history" not in columns and "confusion_matrix" not in columns
    first = rows[0]
    assert (first["strategy"], first["labels_per_class"], first["seed"]) == ("scratch", "10", "0")
    assert float(first["test_accuracy"]) == report["results"][0].test_accuracy
    assert json.loads(first["per_class_accuracy"]) == list(report["results"][0].per_class_accuracy)
    assert json.loads(first["notes"]) == []
    skipped = [row for row in rows if row["status"] == "skipped"]
    assert len(skipped) == 6 and all(row["reason"] == SKIP_REASON for row in skipped)
    assert skipped[0]["test_accuracy"] == ""


def test_results_json_parses_and_round_trips_numbers(report):
    text = report["paths"]["results.json"].read_text()
    assert "NaN" not in text
    document = json.loads(text)
    assert set(document) >= {"context", "results", "summary", "verdict"}
    for written, original in zip(document["results"], report["results"]):
        for key in ("test_accuracy", "macro_f1", "train_time_s", "trainable_params", "seed"):
            assert written[key] == getattr(original, key)
        assert written == original.to_row()
        assert StrategyResult.from_row(written).confusion_matrix == original.confusion_matrix
    history = document["results"][0]["history"]
    assert history["val_loss"][1] is None and history["val_loss"][0] == pytest.approx(2.6)
    assert document["verdict"] == verdict(report["results"])
    assert len(document["summary"]) == SUMMARY_ROWS
    assert document["context"]["class_names"] == CLASS_NAMES


# ----------------------------------------------------------------------------------------------
# Summary and verdict
# ----------------------------------------------------------------------------------------------

def test_summarize_gives_mean_and_sample_std_per_strategy_and_budget():
    rows = summarize(make_results())
    assert [(r["labels_per_class"], r["strategy"]) for r in rows][:4] == [
        (10, "scratch"), (10, "gan-frozen"), (10, "random-frozen"), (10, "gan-linear-probe")]
    gan = next(r for r in rows if r["strategy"] == "gan-frozen" and r["labels_per_class"] == 10)
    assert gan["n_seeds"] == 3 and gan["seeds"] == [0, 1, 2]
    assert gan["test_accuracy_mean"] == pytest.approx(0.72)
    assert gan["test_accuracy_std"] == pytest.approx(0.02)  # ddof=1
    assert gan["learning_rates"] == [1e-3] and gan["epochs_mean"] == pytest.approx(10.0)
    assert all(r["strategy"] != "imagenet-frozen" for r in rows)


def test_budgets_sort_numerically_with_all_last():
    records = [result("scratch", b, seed=0, test_accuracy=0.5) for b in ("all", 100, "5", 25)]
    assert [r["labels_per_class"] for r in summarize(records)] == [5, 25, 100, "all"]
    assert verdict(records)[-1].startswith("With all labels only scratch has results")


def test_verdict_opens_with_a_headline_per_budget_then_the_comparisons(report):
    lines = verdict(report["results"])
    assert lines[:2] == [
        "At 10 labels/class gan-frozen scores highest (72.0%, +3.0 points over gan-linear-probe, "
        "not significant); GAN pretraining beats its random-trunk control for gan-frozen "
        "(+10.0 points).",
        "At 100 labels/class scratch wins (89.0%, +3.0 points over gan-frozen); GAN pretraining "
        "beats its random-trunk control for gan-frozen (+5.0 points).",
    ]
    assert lines[2] == ("At 10 labels/class gan-frozen scores highest: 72.0% ± 2.0, +3.0 points "
                        "over gan-linear-probe, not significant (paired t-interval over 3 seeds, "
                        "95%: -3.6 to +9.6).")
    assert ("At 10 labels/class GAN pretraining vs a random trunk (frozen): +10.0 points, a win "
            "(paired t-interval over 3 seeds, 95%: +7.5 to +12.5; gan-frozen 72.0% vs "
            "random-frozen 62.0%).") in lines
    assert ("At 10 labels/class gan-linear-probe vs scratch: +2.0 points, not significant "
            "(paired t-interval over 3 seeds, 95%: -6.6 to +10.6; gan-linear-probe 69.0% vs "
            "scratch 67.0%).") in lines
    assert ("At 100 labels/class scratch wins: 89.0% ± 1.0, +3.0 points over gan-frozen "
            "(paired t-interval over 3 seeds, 95%: +0.5 to +5.5).") in lines
    assert ("At 100 labels/class gan-frozen vs scratch: -3.0 points, a loss (paired t-interval "
            "over 3 seeds, 95%: -5.5 to -0.5; gan-frozen 86.0% vs scratch 89.0%).") in lines
    # No random-linear-probe ran, so the linear probe has no control line.
    assert not any("(linear-probe)" in line for line in lines)
    # Two headlines, no sanity flag (no pixels-linear ran), then per budget: winner, one control,
    # two gan-* vs scratch.
    assert len(lines) == 2 + 2 * (1 + 1 + 2)


def _records(table: dict) -> list[StrategyResult]:
    return [result(s, 10, seed=seed, test_accuracy=acc)
            for s, seeds in table.items() for seed, acc in seeds.items()]


def test_verdict_linear_probe_control_and_only_existing_strategies():
    results = _records({"gan-linear-probe": {0: 0.75, 1: 0.70},
                        "random-linear-probe": {0: 0.50, 1: 0.55}})
    lines = verdict(results)
    assert lines == [
        "At 10 labels/class gan-linear-probe scores highest (72.5%, +20.0 points over "
        "random-linear-probe, not significant); GAN pretraining does not significantly beat its "
        "random-trunk control for gan-linear-probe (+20.0 points).",
        "At 10 labels/class gan-linear-probe scores highest: 72.5% ± 3.5, +20.0 points over "
        "random-linear-probe, not significant (paired t-interval over 2 seeds, 95%: -43.5 to "
        "+83.5).",
        "At 10 labels/class GAN pretraining vs a random trunk (linear-probe): +20.0 points, not "
        "significant (paired t-interval over 2 seeds, 95%: -43.5 to +83.5; gan-linear-probe "
        "72.5% vs random-linear-probe 52.5%).",
    ]  # two seeds that disagree by 10 points prove nothing; no scratch, so no line about it


def test_verdict_never_calls_a_win_without_an_interval_that_excludes_zero():
    close = _records({"a": {0: 0.70, 1: 0.60, 2: 0.65}, "b": {0: 0.60, 1: 0.66, 2: 0.62}})
    assert not comparisons(close)[0]["significant"]
    assert verdict(close)[1].startswith("At 10 labels/class a scores highest: 65.0% ± 5.0, "
                                        "+2.3 points over b, not significant (")
    unpaired = _records({"a": {0: 0.80, 1: 0.82, 2: 0.84}, "b": {0: 0.70, 1: 0.72}})
    assert verdict(unpaired)[1] == ("At 10 labels/class a scores highest: 82.0% ± 2.0, +11.0 "
                                    "points over b, no interval can be given (unpaired seeds: 3 "
                                    "vs 2).")
    item = comparisons(unpaired)[0]
    assert not item["paired"] and item["difference"] == pytest.approx(0.11)
    assert not any(" wins" in line for line in verdict(close) + verdict(unpaired))


def test_results_json_carries_each_comparisons_interval(report):
    document = json.loads(report["paths"]["results.json"].read_text())
    compared = document["comparisons"]
    assert len(compared) == 8
    for item in compared:
        assert item["ci_method"] == "paired t-interval over 3 seeds, 95%"
        assert item["ci_low"] < item["difference"] < item["ci_high"]
        assert item["significant"] == (item["ci_low"] > 0 or item["ci_high"] < 0)
        # the keys that were there before the intervals are still there
        assert {"kind", "strategy", "other", "difference", "difference_std", "paired"} <= set(item)
    control = next(i for i in compared if i["kind"] == "control" and i["labels_per_class"] == 10)
    assert (control["ci_low"], control["ci_high"]) == pytest.approx((0.0751586, 0.1248414))
    assert document["sanity_flags"] == []


def test_report_flags_models_below_raw_pixels_near_the_verdict(tmp_path):
    results = _records({"scratch": {0: 0.70, 1: 0.72}, "gan-frozen": {0: 0.55, 1: 0.57},
                        "random-frozen": {0: 0.40, 1: 0.42}, "pixels-linear": {0: 0.60, 1: 0.62}})
    flag = ("gan-frozen scores below logistic regression on raw pixels at 10 labels/class "
            "(56.0% vs 61.0%): a sign that it trained poorly.")
    paths = write_report(results, tmp_path / "flagged", {})
    markdown = paths["report.md"].read_text().replace("\\", "")
    verdict_section = markdown.split("## Verdict\n", 1)[1].split("\n## ", 1)[0]
    assert f"- {flag}" in verdict_section
    assert verdict_section.count("raw pixels at") == 1  # random-frozen is a control: not flagged
    text = paths["report.html"].read_text()
    assert f'<ul class="flags"><li>{html.escape(flag)}</li></ul>' in text
    document = json.loads(paths["results.json"].read_text())
    assert [f["strategy"] for f in document["sanity_flags"]] == ["gan-frozen"]
    assert flag in document["verdict"]

    fine = _records({"scratch": {0: 0.70, 1: 0.72}, "gan-frozen": {0: 0.65, 1: 0.67},
                     "pixels-linear": {0: 0.60, 1: 0.62}})
    paths = write_report(fine, tmp_path / "fine", {})
    assert "raw pixels at" not in paths["report.md"].read_text()
    assert 'class="flags"' not in paths["report.html"].read_text()


def test_the_verdict_says_its_intervals_leave_out_the_gans_own_variation(tmp_path):
    note = "the GAN was trained once, so its own run-to-run variation is not in the intervals"
    with_gan = _records({"scratch": {0: 0.70, 1: 0.72}, "gan-frozen": {0: 0.75, 1: 0.78}})
    paths = write_report(with_gan, tmp_path / "gan", {})
    verdict_section = paths["report.md"].read_text().split("## Verdict\n", 1)[1]
    assert note in verdict_section.split("\n## ", 1)[0]
    assert note in paths["report.html"].read_text()
    without = _records({"scratch": {0: 0.70, 1: 0.72}, "pixels-linear": {0: 0.60, 1: 0.62}})
    paths = write_report(without, tmp_path / "no-gan", {})
    assert "Each difference is paired over seeds" in paths["report.md"].read_text()
    assert note not in paths["report.md"].read_text()


def test_the_verdict_says_how_to_add_seeds_only_when_a_difference_is_unsettled(tmp_path):
    more = "may be settled by more seeds: the same command again with --resume"
    clear = _records({"scratch": {0: 0.70, 1: 0.72, 2: 0.71}, "gan-frozen": {0: 0.75, 1: 0.78,
                                                                           2: 0.76}})
    paths = write_report(clear, tmp_path / "clear", {})
    assert "a win (paired t-interval" in paths["report.md"].read_text()
    assert more not in paths["report.md"].read_text()
    unsettled = _records({"scratch": {0: 0.70, 1: 0.72, 2: 0.71}, "gan-frozen": {0: 0.75, 1: 0.69,
                                                                               2: 0.72}})
    paths = write_report(unsettled, tmp_path / "unsettled", {})
    verdict_section = paths["report.md"].read_text().split("## Verdict\n", 1)[1].split("\n## ")[0]
    assert "not significant" in verdict_section and more in verdict_section
    assert more in paths["report.html"].read_text()
    one_seed = _records({"scratch": {0: 0.70}, "gan-frozen": {0: 0.75}})
    assert more in write_report(one_seed, tmp_path / "one", {})["report.md"].read_text()


# ----------------------------------------------------------------------------------------------
# Markdown and HTML
# ----------------------------------------------------------------------------------------------

def test_markdown_has_the_results_table_with_the_best_in_bold(report):
    markdown = report["paths"]["report.md"].read_text()
    assert ("| Labels/class | Strategy | Test accuracy (%) | Macro-F1 (%) | Seeds |\n"
            "|---|---|---:|---:|---:|") in markdown
    assert "| 10 | **gan-frozen** | **72.0 ± 2.0** |" in markdown
    assert "| 10 | random-frozen | 62.0 ± 1.7 |" in markdown
    assert "| 100 | **scratch** | **89.0 ± 1.0** |" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| 10 |")
                  or line.startswith("| 100 |")]
    assert len(table_rows) == SUMMARY_ROWS
    for line in verdict(report["results"]):
        assert line in markdown.replace("\\", "")
    # Skipped strategies: shown once each, by their records when they have some.
    assert f"| imagenet-finetune | skipped | every budget | {SKIP_REASON} |" in markdown
    assert f"| imagenet-frozen | skipped | 10 (3 runs), 100 (3 runs) | {SKIP_REASON} |" in markdown
    assert markdown.count(f"| {SKIP_REASON} |") == 2
    assert "![GAN sample grid](figures/gan_samples.png)" in markdown
    assert "No per-epoch history for: gan-linear-probe" in markdown.replace("\\", "")
    assert "<details><summary>Resolved config</summary>" in markdown


def test_html_is_self_contained_and_holds_the_same_content(report):
    text = report["paths"]["report.html"].read_text()
    tags = _tags(text)
    images = [attrs for tag, attrs in tags if tag == "img"]
    assert len(images) == IMAGES
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(attrs["src"].split(",", 1)[1]).startswith(b"\x89PNG")
        assert attrs.get("alt")
    for tag, attrs in tags:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith("data:"), (tag, attrs[name][:80])
    assert not any(tag in ("script", "iframe", "object") for tag, _ in tags)
    assert not any(tag == "link" and attrs.get("rel") == "stylesheet" for tag, attrs in tags)
    assert "http://" not in text and "https://" not in text
    for line in verdict(report["results"]):
        assert line in text
    assert "<strong>72.0 ± 2.0</strong>" in text
    assert SKIP_REASON in text


def test_user_strings_are_escaped_in_html(tmp_path):
    results = [result("<img src=x onerror=alert(1)>", 10, seed=0, test_accuracy=0.5,
                      notes=["a <b>bold</b> & note"]),
               result("x|y", 10, seed=0, status="skipped", reason="<script>alert(2)</script>")]
    context = {"title": "Tom & Jerry <script>alert(3)</script>", "dataset": "d<1>",
               "config": {"note": "</pre><script>alert(4)</script>"}}
    paths = write_report(results, tmp_path, context)
    text = paths["report.html"].read_text()
    assert "<script>" not in text and "<img src=x" not in text and "<b>bold" not in text
    assert [tag for tag, _ in _tags(text)].count("img") == 1  # the accuracy figure only
    assert "Tom &amp; Jerry &lt;script&gt;alert(3)&lt;/script&gt;" in text
    markdown = paths["report.md"].read_text()
    assert "x\\|y" in markdown  # a pipe in a name does not break the table


def test_minimal_records_and_missing_optional_keys(tmp_path):
    results = [result("pixels-linear", "all", test_accuracy=0.4),
               result("pixels-linear", 5, test_accuracy=float("nan")),
               result("scratch", 5, status="failed")]
    paths = write_report(results, tmp_path / "minimal", None)
    document = json.loads(paths["results.json"].read_text())
    assert document["results"][1]["test_accuracy"] is None
    assert [row["labels_per_class"] for row in document["summary"]] == ["all"]
    markdown = paths["report.md"].read_text()
    assert "no test accuracy recorded" in markdown and "failed" in markdown
    assert [p.name for p in (tmp_path / "minimal" / "figures").iterdir()] == ["accuracy.png"]


def test_missing_gan_sample_grid_is_a_note_not_an_error(tmp_path):
    results = [result("gan-frozen", 10, seed=0, test_accuracy=0.5)]
    paths = write_report(results, tmp_path, {"gan": {"samples_png": str(tmp_path / "missing.png")}})
    assert "GAN sample grid was not found" in paths["report.md"].read_text()


@pytest.mark.parametrize("results, message", [
    ({"strategy": "scratch"}, "takes a list of StrategyResult. Received: dict"),
    (["scratch"], r"results\[0\] must be a StrategyResult. Received: str"),
    ([{"strategy": "scratch", "labels_per_class": 10}],
     r"must be a StrategyResult \(StrategyResult.from_row\(row\) reads a row of results.json\)"),
])
def test_bad_results_raise_clear_errors(tmp_path, results, message):
    with pytest.raises(TypeError, match=message):
        write_report(results, tmp_path, {})
    assert not list(tmp_path.iterdir())  # nothing written


def test_every_family_and_method_of_the_registry_has_a_style():
    from gantransfer.registry import FAMILIES, METHODS, OTHER, STRATEGIES
    from gantransfer.reporting.figures import FAMILY_COLOURS, METHOD_MARKERS

    assert set(FAMILY_COLOURS) == {*FAMILIES, OTHER} and set(METHOD_MARKERS) == set(METHODS)
    styles = strategy_styles(list(STRATEGIES))
    assert len({(s["color"], s["linestyle"], s["marker"]) for s in styles.values()}) == len(styles)
    # A strategy looks the same whichever others are in the report.
    assert strategy_styles(["gan-frozen"]) == {"gan-frozen": styles["gan-frozen"]}


def test_a_familys_shades_stay_apart_on_the_accuracy_figure():
    from matplotlib.colors import to_rgb

    from gantransfer.registry import FAMILIES, STRATEGIES, in_family

    styles = strategy_styles(list(STRATEGIES))
    for family in FAMILIES:
        colours = [np.asarray(to_rgb(styles[name]["color"])) for name in in_family(family)]
        gaps = [np.linalg.norm(a - b) for i, a in enumerate(colours) for b in colours[i + 1:]]
        # The GAN family's four blues (frozen, fine-tuned, probe, semi-supervised) included: on
        # the figure's thin lines, shades closer than this read as one strategy.
        assert not gaps or min(gaps) > 0.15, (family, gaps)
    assert styles["scratch"]["color"] == "#ff7f0e"  # a family of one keeps its hue as it is


def test_a_defended_model_is_drawn_in_its_strategys_colour_and_stands_out():
    from gantransfer.reporting.figures import robustness_styles

    labels = ["scratch (undefended)", "scratch (PGD-trained)", "gan-finetune (undefended)",
              "gan-finetune (FGSM-trained)", "gan-frozen"]
    styles = robustness_styles(labels)
    base = strategy_styles(["scratch", "gan-finetune", "gan-frozen"])
    for strategy in ("scratch", "gan-finetune"):
        undefended, defended = styles[f"{strategy} (undefended)"], styles[[
            label for label in labels if label.startswith(strategy) and "trained" in label][0]]
        assert undefended == {**base[strategy], "linewidth": 1.6}
        assert defended["color"] == base[strategy]["color"]
        assert (defended["linestyle"], defended["marker"], defended["linewidth"]) == ("-", "D", 2.6)
    assert styles["gan-frozen"] == {**base["gan-frozen"], "linewidth": 1.6}  # no defence named
    assert styles["scratch (undefended)"]["color"] != styles["gan-finetune (undefended)"]["color"]


def test_strategies_outside_the_registry_are_summarised_and_drawn_in_grey(tmp_path):
    results = _records({"my-method": {0: 0.6, 1: 0.7}, "gan-frozen": {0: 0.5, 1: 0.55},
                        "random-frozen": {0: 0.4, 1: 0.45}, "scratch": {0: 0.3, 1: 0.35}})
    assert [row["strategy"] for row in summarize(results)] == ["my-method", "gan-frozen",
                                                                "random-frozen", "scratch"]
    kinds = [(item["kind"], item["strategy"], item["other"]) for item in comparisons(results)]
    assert kinds == [("winner", "my-method", "gan-frozen"),
                     ("control", "gan-frozen", "random-frozen"),
                     ("scratch", "gan-frozen", "scratch")]
    styles = strategy_styles([row["strategy"] for row in summarize(results)])
    assert styles["my-method"] == {"color": "#7f7f7f", "linestyle": ":", "marker": "o"}
    assert styles["gan-frozen"]["marker"] == styles["random-frozen"]["marker"] == "s"
    assert styles["gan-frozen"]["color"] != styles["random-frozen"]["color"]
    paths = write_report(results, tmp_path, {})
    markdown = paths["report.md"].read_text()
    # The strategies table is grouped by the registry's families, unknown names last.
    section = markdown.split("## Strategies\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    assert [line.split(" | ")[:2] for line in rows] == [
        ["| scratch", "scratch"], ["| gan-frozen", "gan"], ["| random-frozen", "random"],
        ["| my-method", "other"]]
    assert "| my-method | other | not in the strategy registry |" in markdown


# ----------------------------------------------------------------------------------------------
# A real browser
# ----------------------------------------------------------------------------------------------

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_report_renders_in_headless_chromium(report):
    binary = _chromium()
    if binary is None:
        pytest.skip("no Chromium binary on PATH (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed (pip install "
                                          "'.[test]')")
    url = report["paths"]["report.html"].resolve().as_uri()
    problems, requests = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary,
                                             args=["--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            page.wait_for_function("[...document.images].every(i => i.complete)", timeout=10_000)
            state = page.evaluate("""() => ({
                images: [...document.images].map(i => [i.naturalWidth, i.naturalHeight,
                                                       i.getBoundingClientRect().width]),
                tables: [...document.querySelectorAll('table')].map(t => t.tBodies[0].rows.length),
                firstRow: [...document.querySelector('table tbody tr').cells].map(c => c.innerText),
                bold: [...document.querySelectorAll('table')][0].querySelectorAll('strong').length,
                verdict: document.querySelectorAll('ul.headline li, ul.verdict li').length,
                headline: [...document.querySelectorAll('ul.headline li')].map(l => l.innerText),
                title: document.title,
            })""")
            screenshot = report["run_dir"] / "screenshot.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()

    assert problems == []
    assert all(u == url or u.startswith("data:") for u in requests), requests
    assert len(state["images"]) == IMAGES
    assert all(width > 0 and height > 0 and shown > 0 for width, height, shown in state["images"])
    assert state["tables"] == [SUMMARY_ROWS, 2, SUMMARY_ROWS, 5]  # results, skipped, costs, strategies
    assert state["firstRow"][:2] == ["10", "scratch"] and state["firstRow"][4] == "3"
    assert state["bold"] == 2 * 3  # per budget: the winner's name and accuracy, the best macro-F1
    assert state["verdict"] == len(verdict(report["results"]))  # no sanity flags here
    assert state["headline"] == verdict(report["results"])[:2]
    assert state["title"] == report["context"]["title"]

    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype="float32")
    assert pixels.shape[1] >= 1200 and pixels.shape[0] > 2000  # the whole long page
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # not blank: text and figures drawn
    assert not math.isnan(float(pixels.mean()))


@pytest.mark.parametrize("machine, said", [
    ({"backend": "jax", "gpus": ["cuda:0"], "cpu_count": 16},
     "trained on Keras's jax backend (cuda:0)"),
    ({"backend": "tensorflow", "gpus": [], "cpu_count": 2},
     "trained on Keras's tensorflow backend (2 CPU cores)"),
    # float32 on an Ampere-or-later GPU multiplies in TF32 by default: the report does not call it
    # plain float32
    ({"backend": "jax", "gpus": ["gpu:0"], "devices": ["NVIDIA H200"], "float32_math": "tf32",
      "precision": "float32", "xla": True},
     "trained on Keras's jax backend (NVIDIA H200, float32 (TF32 products), XLA)"),
])
def test_the_report_says_which_backend_and_devices_trained_the_models(tmp_path, machine, said):
    results = [StrategyResult("scratch", 10, seed=0, test_accuracy=0.5)]
    paths = write_report(results, tmp_path, {"dataset": "digits", "num_classes": 10,
                                             "machine": machine})
    assert said in paths["report.md"].read_text()
    assert said in html.unescape(paths["report.html"].read_text())
    bare = write_report(results, tmp_path / "bare", {"dataset": "digits", "num_classes": 10})
    assert "backend" not in bare["report.md"].read_text()


def test_a_finetuning_strategys_curves_show_its_head_phase_then_fine_tuning(monkeypatch):
    from matplotlib.axes import Axes

    from gantransfer.reporting.figures import learning_curves_figure

    drawn, lines = [], []
    real_plot, real_axvline = Axes.plot, Axes.axvline

    def plot(self, x, y, *args, **kwargs):
        drawn.append((kwargs.get("label"), list(x), [round(float(v), 1) for v in y]))
        return real_plot(self, x, y, *args, **kwargs)

    def axvline(self, x, *args, **kwargs):
        lines.append(x)
        return real_axvline(self, x, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", plot)
    monkeypatch.setattr(Axes, "axvline", axvline)
    history = {"head_loss": [2.0, 1.5], "head_accuracy": [0.4, 0.5],
               "head_val_loss": [2.1, 1.9], "head_val_accuracy": [0.3, 0.45],
               "loss": [1.2, 1.0, 0.9], "accuracy": [0.6, 0.7, 0.8],
               "val_loss": [1.5, 1.4, 1.6], "val_accuracy": [0.5, 0.55, 0.5]}
    record = result("gan-finetune", 10, seed=0, test_accuracy=0.6, history=history)
    assert learning_curves_figure({"gan-finetune": record}, ["gan-finetune"]) is not None
    assert drawn == [("train", [1, 2, 3, 4, 5], [40.0, 50.0, 60.0, 70.0, 80.0]),
                     ("validation", [1, 2, 3, 4, 5], [30.0, 45.0, 50.0, 55.0, 50.0])]
    assert lines == [2.5]  # between the head's last epoch and fine-tuning's first


def test_the_learning_curves_mark_whole_epochs_only(monkeypatch):
    from gantransfer.reporting import figures

    drawn = []
    monkeypatch.setattr(figures, "_png", lambda figure: drawn.append(figure) or b"png")
    history = {"loss": [1.2, 1.0, 0.9], "accuracy": [0.6, 0.7, 0.8],
               "val_loss": [1.5, 1.4, 1.6], "val_accuracy": [0.5, 0.55, 0.5]}
    record = result("scratch", 10, seed=0, test_accuracy=0.6, history=history)
    assert figures.learning_curves_figure({"scratch": record}, ["scratch"]) == b"png"
    (axes,) = drawn[0].axes
    ticks = [tick for tick in axes.get_xticks() if 1 <= tick <= 3]
    assert ticks == [1.0, 2.0, 3.0]  # three epochs: no 1.5 or 2.5 between them
