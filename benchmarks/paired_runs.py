"""Two finished transfer or compare runs, paired model by model: what their settings changed.

A model of the first run and one of the second pair up when they share the strategy, the labels
per class and the seed, so they trained on the same labeled images. For each strategy and budget
the script prints both means over the seeds both runs have, the mean difference (second minus
first) with its 95% Student t-interval, and each run's training minutes for those models. It first
prints the settings in which the two runs' config.yaml differ, so the table says what it measures.
Both runs must be on the same dataset. A run still going (or interrupted) contributes the models it
has finished so far.

With ``--pair FIRST=SECOND`` (as often as wanted) it pairs two different strategies instead:
FIRST of the first run with SECOND of the second, seed by seed, e.g. a strategy the benchmark
did not run against the benchmark's best (``--pair gan-linear-probe=gan-semisupervised``).

Usage:
    python benchmarks/paired_runs.py FIRST_RUN SECOND_RUN [--strategies scratch,gan-frozen]
    python benchmarks/paired_runs.py FIRST_RUN SECOND_RUN --pair gan-linear-probe=gan-semisupervised
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import gantransfer as gt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rotation import paired_row  # noqa: E402  (one paired-row format for every benchmark)


def finished_models(run_dir: Path) -> tuple[dict, dict]:
    """``(accuracies, seconds)``, each keyed by (strategy, labels per class, seed), of the models
    the run in ``run_dir`` finished: all of them, or so far when it is still running or was
    interrupted (its ``results.partial.json``)."""
    complete, partial = run_dir / "results.csv", run_dir / "results.partial.json"
    if complete.is_file():
        with open(complete, newline="") as file:
            rows = list(csv.DictReader(file))
    elif partial.is_file():
        rows = json.loads(partial.read_text())["results"]
    else:
        raise SystemExit(f"error: {str(run_dir)!r} has neither results.csv nor "
                         "results.partial.json; pass the folder of a transfer or compare run")
    rows = [row for row in rows if row["status"] == "ok"]
    keys = [(row["strategy"], str(row["labels_per_class"]), int(row["seed"])) for row in rows]
    return ({key: float(row["test_accuracy"]) for key, row in zip(keys, rows)},
            {key: float(row["train_time_s"]) for key, row in zip(keys, rows)})


def changed_settings(first: gt.Config, second: gt.Config) -> list[str]:
    """``section.key: first -> second`` for every setting in which two configs differ."""
    a, b = first.to_dict(), second.to_dict()
    return [f"{section}.{key}: {a[section][key]!r} -> {value!r}"
            for section, values in b.items() for key, value in values.items()
            if a[section][key] != value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--strategies", help="comma-separated; every strategy both runs have "
                                             "by default")
    parser.add_argument("--pair", action="append", default=[], metavar="FIRST=SECOND",
                        help="pair strategy FIRST of the first run with SECOND of the second "
                             "(repeatable); instead of each strategy with itself")
    args = parser.parse_args()
    (first, first_s), (second, second_s) = finished_models(args.first), finished_models(args.second)
    configs = [gt.load_config(run / "config.yaml") for run in (args.first, args.second)]
    datasets = {config.data.dataset for config in configs}
    if len(datasets) > 1:
        raise SystemExit(f"error: the runs are on different datasets ({', '.join(sorted(datasets))}),"
                         " so their models cannot be paired; pass two runs on the same data")
    pairs = [_pair(text) for text in args.pair] or None
    budgets = sorted({b for _, b, _ in first} | {b for _, b, _ in second},
                     key=lambda b: int(b) if b.isdigit() else 10**9)
    if pairs:  # (first's strategy, second's, budget) where a seed has both
        shared = [(a, b, budget) for budget in budgets for a, b in pairs
                  if any((a, budget, seed) in first and (b, budget, seed) in second
                         for *_, seed in first)]
    else:
        shared = [(s, s, b) for s, b in sorted(
            {(s, b) for s, b, seed in first if (s, b, seed) in second},
            key=lambda key: (int(key[1]) if key[1].isdigit() else 10**9, key[0]))]
    if args.strategies:
        wanted = args.strategies.split(",")
        shared = [key for key in shared if key[0] in wanted]
    if not shared:
        raise SystemExit("error: the runs share no model (strategy, labels per class and seed); "
                         "pass two runs of the same strategies, budgets and seeds")
    print(f"{args.first} -> {args.second}, what changed:")
    for line in changed_settings(*configs) or ["nothing"]:
        print(f"  {line}")
    print("\n| strategy | labels/class | first | second | second - first (95% t-interval) | "
          "minutes, first | minutes, second |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for one, other, budget in shared:
        seeds = [seed for s, b, seed in first if (s, b) == (one, budget)
                 and (other, b, seed) in second]
        minutes = [sum(times[(name, budget, seed)] for seed in seeds) / 60
                   for times, name in ((first_s, one), (second_s, other))]
        label = one if one == other else f"{one} → {other}"
        print(f"{paired_row(f'{label} | {budget}', first, second, (one, budget), (other, budget))}"
              f" {minutes[0]:.1f} | {minutes[1]:.1f} |")


def _pair(text: str) -> tuple[str, str]:
    """``FIRST=SECOND`` as two strategy names."""
    first, sep, second = text.partition("=")
    if not (sep and first and second):
        raise SystemExit(f"error: --pair {text!r} is not FIRST=SECOND; pass two strategy names, "
                         "e.g. --pair gan-linear-probe=gan-semisupervised")
    return first, second


if __name__ == "__main__":
    main()
