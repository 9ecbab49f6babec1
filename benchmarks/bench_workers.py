"""A comparison's classifiers trained in worker processes against one after the other, in this
one process, from the same GAN on the same labeled images.

``transfer.workers`` trains each model in its own process computing on one thread. This script
runs the same ``gantransfer transfer`` twice: once with ``transfer.workers=1`` (every model here, in
turn, on the backend's own threads), then with ``--workers`` (``auto``: one per core). It prints
both times, their ratio, and how many models' test accuracy differ between the two (a model's draw
and initialisation do not depend on the process; one thread may sum floats in another order).

Usage:
    python benchmarks/bench_workers.py [--gan-run RUN_DIR] [--workers auto] [--config digits]
        [--strategies A,B] [--labels-per-class 10,50] [--seeds 3] [--set KEY=VALUE ...]

Without ``--gan-run`` it first trains the config's GAN (the digits preset's: 20 epochs, under a
minute on 2 cores), which is not timed. The config's other settings are the main job's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import gantransfer as gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan-run", help="a finished train-gan run (default: train the config's)")
    parser.add_argument("--workers", default="auto", help="the parallel run's transfer.workers")
    parser.add_argument("--config", default="digits", help="config file or preset name")
    parser.add_argument("--strategies", help="comma-separated (default: the config's)")
    parser.add_argument("--labels-per-class", help="comma-separated (default: the config's)")
    parser.add_argument("--seeds", type=int, help="seeds per budget (default: the config's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="any config key, as on the command line")
    args = parser.parse_args()
    overrides = [*args.overrides, "train.verbose=0"]
    for key, value in (("strategies", args.strategies), ("labels_per_class", args.labels_per_class),
                       ("seeds", args.seeds)):
        if value is not None:
            overrides.append(f"transfer.{key}={value}")

    with tempfile.TemporaryDirectory(prefix="bench-workers-") as folder:
        gan_run = args.gan_run
        if gan_run is None:
            print("training the config's GAN (not timed) ...", flush=True)
            gan_run = str(Path(folder) / "gan")
            gt.train_gan(gt.load_config(args.config, overrides), gan_run)
        timed: dict[str, tuple[float, gt.TransferResult]] = {}
        for workers in ("1", str(args.workers)):
            config = gt.load_config(args.config, [*overrides, f"transfer.workers={workers}"])
            started = time.perf_counter()
            result = gt.transfer(config, Path(folder) / f"workers-{workers}",
                                 discriminator=gan_run, verbose=False)
            timed[workers] = (time.perf_counter() - started, result)
            processes = json.loads((result.run_dir / "run.json").read_text())["workers"]
            print(f"transfer.workers={workers}: {len(result.results)} models in "
                  f"{timed[workers][0]:.1f} s, {processes} process(es) training", flush=True)

    (one, serial), (many, parallel) = timed["1"], timed[str(args.workers)]
    moved = [(a.strategy, a.labels_per_class, a.seed, a.test_accuracy, b.test_accuracy)
             for a, b in zip(serial.results, parallel.results)
             if a.test_accuracy != b.test_accuracy]
    print(f"workers {args.workers} / one process: {many:.1f} s / {one:.1f} s, "
          f"{one / many:.2f}x the throughput")
    print(f"models whose test accuracy differs: {len(moved)} of {len(serial.results)}")
    for strategy, budget, seed, a, b in moved:
        print(f"  {strategy}, {budget} labels/class, seed {seed}: {100 * a:.2f}% -> {100 * b:.2f}%")


if __name__ == "__main__":
    main()
