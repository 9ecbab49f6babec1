"""benchmarks/paired_runs.py: two runs' report files, paired model by model; and bench_care.py's
baseline taken from a finished run (--defaults-from), which reads them the same way."""

import contextlib
import io
import json
import re
import runpy
import sys
from pathlib import Path
from unittest import mock

import pytest
from scipy import stats

from gantransfer.config import load_config, save_config
from gantransfer.evaluation.results import StrategyResult
from gantransfer.reporting import write_report

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "paired_runs.py"


def _run_folder(folder: Path, accuracies: dict, overrides: list[str], *, finished: bool = True,
                seconds: float = 60.0) -> Path:
    """A run folder as transfer leaves it: config.yaml, and results.csv (or, when not
    ``finished``, only results.partial.json) for ``{(strategy, budget): [accuracy per seed]}``."""
    results = [StrategyResult(strategy=strategy, labels_per_class=budget, seed=seed,
                              test_accuracy=accuracy, train_time_s=seconds)
               for (strategy, budget), per_seed in accuracies.items()
               for seed, accuracy in enumerate(per_seed)]
    folder.mkdir(parents=True)
    save_config(load_config(None, overrides), folder / "config.yaml")
    if finished:
        write_report(results, folder, {})
    else:
        (folder / "results.partial.json").write_text(
            json.dumps({"results": [r.to_row() for r in results]}))
    return folder


def _script(script: Path, *args: str) -> str:
    """What ``python SCRIPT ARGS`` prints, run in this process."""
    printed = io.StringIO()
    with mock.patch.object(sys, "argv", [str(script), *args]), \
            mock.patch.object(sys, "path", [str(script.parent), *sys.path]), \
            contextlib.redirect_stdout(printed):
        runpy.run_path(str(script), run_name="__main__")
    return printed.getvalue()


def _paired_runs(*args: str) -> str:
    return _script(SCRIPT, *args)


def test_pairs_models_by_seed_and_names_what_changed(tmp_path):
    first = _run_folder(tmp_path / "a", {("scratch", 10): [0.60, 0.70, 0.65],
                                         ("pixels-linear", 10): [0.50, 0.50, 0.50]}, [])
    # The second run is still going: two of scratch's seeds are done, and pixels-linear's none.
    second = _run_folder(tmp_path / "b", {("scratch", 10): [0.64, 0.71]},
                         ["transfer.ensemble=5"], finished=False, seconds=150.0)
    printed = _paired_runs(str(first), str(second))
    assert "transfer.ensemble: 1 -> 5" in printed
    differences = [0.04, 0.01]  # seeds 0 and 1, the only ones both runs have
    low, high = stats.t.interval(0.95, 1, loc=0.025, scale=stats.sem(differences))
    assert (f"| scratch | 10 | 65.0 | 67.5 | +2.5 [{100 * low:+.1f}, {100 * high:+.1f}] | "
            "2.0 | 5.0 |") in printed
    assert "pixels-linear" not in printed


def test_pair_compares_one_strategy_of_the_first_run_with_another_of_the_second(tmp_path):
    first = _run_folder(tmp_path / "a", {("gan-linear-probe", 10): [0.70, 0.76, 0.73],
                                         ("gan-linear-probe", 100): [0.84, 0.85, 0.84]}, [])
    # the second run has only its own strategy, at one budget, two seeds so far
    second = _run_folder(tmp_path / "b", {("gan-semisupervised", 10): [0.72, 0.79]}, [],
                         finished=False, seconds=600.0)
    printed = _paired_runs(str(first), str(second), "--pair", "gan-linear-probe=gan-semisupervised")
    differences = [0.02, 0.03]
    low, high = stats.t.interval(0.95, 1, loc=0.025, scale=stats.sem(differences))
    assert (f"| gan-linear-probe → gan-semisupervised | 10 | 73.0 | 75.5 | "
            f"+2.5 [{100 * low:+.1f}, {100 * high:+.1f}] | 2.0 | 20.0 |") in printed
    assert "| 100 |" not in printed  # no seed has both at 100 labels per class
    with pytest.raises(SystemExit, match="--pair 'gan-linear-probe' is not FIRST=SECOND"):
        _paired_runs(str(first), str(second), "--pair", "gan-linear-probe")


@pytest.mark.parametrize("second_overrides, second_strategy, message", [
    (["data.dataset=fashion_mnist"], "scratch", "different datasets (digits, fashion_mnist)"),
    ([], "gan-frozen", "the runs share no model"),
])
def test_runs_that_cannot_pair_stop_in_one_line(tmp_path, second_overrides, second_strategy,
                                                message):
    first = _run_folder(tmp_path / "a", {("scratch", 10): [0.6, 0.7]}, [])
    second = _run_folder(tmp_path / "b", {(second_strategy, 10): [0.6, 0.7]}, second_overrides)
    with pytest.raises(SystemExit, match=re.escape(message)):
        _paired_runs(str(first), str(second))


def test_a_folder_without_results_stops_in_one_line(tmp_path):
    first = _run_folder(tmp_path / "a", {("scratch", 10): [0.6, 0.7]}, [])
    with pytest.raises(SystemExit, match="has neither results.csv nor results.partial.json"):
        _paired_runs(str(first), str(tmp_path))


def _bench_care(*args: str) -> str:
    return _script(SCRIPT.parent / "bench_care.py", *args)


@pytest.mark.slow
def test_bench_care_takes_its_baseline_from_a_finished_run_without_training_it(tmp_path,
                                                                               tiny_overrides):
    """bench_care.py --defaults-from pairs its variant with the finished run's own models, seed by
    seed, and trains only the variant; a run without a model the variant needs stops in one line."""
    import gantransfer as gt

    gan_run = tmp_path / "gan"
    gt.train_gan(gt.load_config("digits", [*tiny_overrides, "train.epochs=1",
                                           "data.image_size=16"]), gan_run)
    finished = _run_folder(tmp_path / "benchmark", {("scratch", "5"): [0.12, 0.46]}, [])
    args = [str(gan_run), str(tmp_path / "care"), "--config", "digits", "--labels-per-class", "5",
            "--strategies", "scratch", "--variants", "head-gap", "--set", "transfer.max_epochs=2",
            "--set", "transfer.cv_folds=2", "--set", "data.image_size=16"]
    printed = _bench_care(*args, "--seeds", "2", "--defaults-from", str(finished))
    assert f"defaults: 2 models from {finished}" in printed
    assert not (tmp_path / "care" / "defaults").exists()  # the baseline was not trained again
    variant = json.loads((tmp_path / "care/head-gap/results.json").read_text())["results"]
    assert {row["head"] for row in variant} == {"gap"} and len(variant) == 2
    mean = 100 * sum(row["test_accuracy"] for row in variant) / 2
    assert f"| head-gap | scratch | 5 | 29.0 | {mean:.1f} |" in printed  # 29.0: 12 and 46
    with pytest.raises(SystemExit, match=r"has no finished model for scratch at 5/class seed 2"):
        _bench_care(*args, "--seeds", "3", "--defaults-from", str(finished))
