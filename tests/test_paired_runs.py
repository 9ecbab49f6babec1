"""benchmarks/paired_runs.py: two runs' report files, paired model by model."""

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


def _paired_runs(*args: str) -> str:
    printed = io.StringIO()
    with mock.patch.object(sys, "argv", [str(SCRIPT), *args]), \
            mock.patch.object(sys, "path", [str(SCRIPT.parent), *sys.path]), \
            contextlib.redirect_stdout(printed):
        runpy.run_path(str(SCRIPT), run_name="__main__")
    return printed.getvalue()


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
