"""What test-time shifts (``transfer.test_shift``) do to the models of a finished run, paired over
its seeds.

Every classifier a finished ``compare`` or ``transfer`` run saved (its ``models/*.keras``) is scored
on the run's test set twice in this one process: as it is, and averaged over copies of each image
moved a pixel down, up, right and left (``shift_averaged``, what ``transfer.test_shift`` saves).
The first score must equal the one the run reported, so both come from the same images. It prints
both means per strategy and budget, the paired difference (with minus without) with its 95%
Student t-interval, and the time of the averaged predictions against the plain ones.

Usage:
    python benchmarks/bench_test_shift.py RUN_DIR [--shift 1] [--strategies a,b,...]
        [--labels-per-class 10,100]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

import gantransfer as gt
from gantransfer.evaluation.summary import budget_sort_key
from gantransfer.transfer_learning.classifiers import shift_averaged
from gantransfer.workflows.targets import load_target

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rotation import paired_row  # noqa: E402  (one paired-row format for the benchmarks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--shift", type=int, default=1)
    parser.add_argument("--strategies", default="", help="comma-separated; all by default")
    parser.add_argument("--labels-per-class", default="",
                        help="comma-separated budgets, as results.csv writes them (10, all); "
                             "all by default")
    args = parser.parse_args()
    config = gt.load_config(str(args.run_dir / "config.yaml"))
    rows = [r for r in csv.DictReader(open(args.run_dir / "results.csv")) if r["status"] == "ok"
            and (not args.strategies or r["strategy"] in args.strategies.split(","))
            and (not args.labels_per_class
                 or r["labels_per_class"] in args.labels_per_class.split(","))]
    data = load_target(config, config.data.image_size, config.data.channels)
    x_test = data.test.load(np.arange(len(data.test))).astype("float32")
    y_test = data.test.y
    plain, averaged, seconds = {}, {}, [0.0, 0.0]
    for row in rows:
        # The run's own models/ folder: a run may have been moved since it recorded the paths.
        model_file = args.run_dir / "models" / Path(row["model_file"]).name
        model = gt.load_classifier(model_file)
        key = (row["strategy"], row["labels_per_class"], int(row["seed"]))
        for i, (scores, net) in enumerate(((plain, model),
                                           (averaged, shift_averaged(model, args.shift)))):
            started = time.perf_counter()
            scores[key] = float(np.mean(net.predict(x_test, batch_size=256, verbose=0).argmax(1)
                                        == y_test))
            seconds[i] += time.perf_counter() - started
        if abs(plain[key] - float(row["test_accuracy"])) > 1e-4:
            sys.exit(f"{model_file} scores {plain[key]:.4f} here but the run reported "
                     f"{float(row['test_accuracy']):.4f}: this is not the run's test set")
        print(f"{key}: {100 * plain[key]:.2f} -> {100 * averaged[key]:.2f}", flush=True)

    print(f"\n| strategy | labels/class | as trained | test shift {args.shift} | "
          "with - without (95% t-interval) |")
    print("|---|---:|---:|---:|---:|")
    for strategy, budget in sorted({key[:2] for key in plain},
                                   key=lambda k: (k[0], budget_sort_key(k[1]))):  # 10, 100, all
        print(paired_row(f"{strategy} | {budget}", plain, averaged, (strategy, budget),
                         (strategy, budget)))
    print(f"\n{len(plain)} models; predictions took {seconds[0]:.0f} s as trained and "
          f"{seconds[1]:.0f} s with test shifts ({seconds[1] / max(seconds[0], 1e-9):.1f}x)")


if __name__ == "__main__":
    main()
