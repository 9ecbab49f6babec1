"""benchmarks/bench_test_shift.py on a real finished run: its scores as trained are the run's, and
--strategies and --labels-per-class choose the models it scores."""

import csv
import re
from pathlib import Path

from click.testing import CliRunner

from gantransfer.cli import cli
from test_paired_runs import _script

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_test_shift.py"


def test_scores_the_runs_models_as_reported_and_only_the_budgets_asked_for(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "transfer", "--dataset", "digits", "--strategies", "pixels-linear",
        "--labels-per-class", "3,5", "--seeds", "2", "--output-dir", str(run), "--quiet",
        "--set", "data.image_size=16", "--set", "transfer.cv_folds=2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    reported = {(row["labels_per_class"], row["seed"]): float(row["test_accuracy"])
                for row in csv.DictReader(open(run / "results.csv"))}
    assert len(reported) == 4

    printed = _script(SCRIPT, str(run), "--labels-per-class", "5")
    scored = {(budget, seed): float(plain) / 100 for budget, seed, plain in re.findall(
        r"\('pixels-linear', '(\d+)', (\d)\): ([\d.]+) -> [\d.]+", printed)}
    # Only the 5-label models, each scored as the run reported it (the script stops otherwise).
    assert set(scored) == {("5", "0"), ("5", "1")}
    assert all(abs(scored[key] - reported[key]) < 1e-4 for key in scored)
    assert "| pixels-linear | 5 |" in printed and "| pixels-linear | 3 |" not in printed
    assert "2 models;" in printed
