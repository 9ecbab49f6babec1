"""Rotation self-supervision (SS-GAN) against the plain DCGAN, paired over the same budgets and seeds.

The baseline is a plain DCGAN run that already exists (the one ``bench_fashion_mnist.sh`` trains,
``OUTPUT_DIR/gan``). This script trains a DCGAN with ``gan.rotation_weight=1`` on the same data,
scoring it with the linear probe after every epoch, then runs the same transfer strategies from each
GAN's best-probe discriminator, with the same budgets and seeds (so the same labeled images), in
this one process. It prints both probe curves; per gan-* strategy and budget both means and the
paired difference (rotation minus plain) with its 95% Student t-interval; and each GAN's strategies
against their random-trunk controls (random-* strategies, run once: they do not depend on the GAN),
paired the same way.

Usage:
    python benchmarks/bench_rotation.py PLAIN_GAN_RUN OUTPUT_DIR [--epochs 3] [--seeds 5]
        [--labels-per-class 10,100] [--strategies gan-frozen,gan-finetune,gan-linear-probe]
        [--config fashion_mnist] [--set KEY=VALUE ...] [--rotation-gan-run RUN]

The rotation GAN trains for ``--epochs`` (3 by default: an SS-GAN epoch costs about 1.5 plain
ones, so 3 stay within the plain run's 5 epochs of CPU time). A finished rotation GAN in
``OUTPUT_DIR/gan``, or the run ``--rotation-gan-run`` names, is used instead of training one.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import gantransfer as gt
from gantransfer.evaluation.summary import paired_interval


def probe_curve(run_dir: Path) -> list[float]:
    with (run_dir / "history.csv").open() as handle:
        return [float(row["probe_accuracy"]) for row in csv.DictReader(handle)
                if row.get("probe_accuracy") not in (None, "", "nan")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("plain_gan_run", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--labels-per-class", default="10,100")
    parser.add_argument("--strategies", default="gan-frozen,gan-finetune,gan-linear-probe")
    parser.add_argument("--config", default="fashion_mnist")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--rotation-gan-run", type=Path, default=None,
                        help="an existing rotation GAN run to use instead of training one")
    args = parser.parse_args()

    transfer_settings = [f"transfer.labels_per_class={args.labels_per_class}",
                         f"transfer.seeds={args.seeds}", "transfer.gan_metrics=false"]
    rotation_dir = args.rotation_gan_run or args.output_dir / "gan"
    if not (rotation_dir / "discriminator.keras").is_file():
        config = gt.load_config(args.config, [*args.overrides, f"train.epochs={args.epochs}",
                                              "train.probe_every=1", "gan.rotation_weight=1.0",
                                              "train.keep_checkpoints=1"])
        started = time.perf_counter()
        gt.train_gan(config, rotation_dir, overwrite=True)
        print(f"rotation GAN: {args.epochs} epochs in {(time.perf_counter() - started) / 60:.1f} min")

    # random-* controls do not depend on the GAN: they run once, with the plain GAN's transfer.
    strategies = args.strategies.split(",")
    results = {}
    for name, gan_run in (("plain", args.plain_gan_run), ("rotation", rotation_dir)):
        chosen = strategies if name == "plain" else [s for s in strategies if s.startswith("gan-")]
        config = gt.load_config(args.config, [*args.overrides, *transfer_settings,
                                              f"transfer.strategies={','.join(chosen)}"])
        run = gt.transfer(config, args.output_dir / f"transfer-{name}", discriminator=gan_run,
                          overwrite=True, verbose=False)
        results[name] = {(r.strategy, str(r.labels_per_class), r.seed): r.test_accuracy
                         for r in run.results if r.status == "ok"}

    for name, gan_run in (("plain", args.plain_gan_run), ("rotation", rotation_dir)):
        curve = probe_curve(Path(gan_run))
        shown = ", ".join(f"{100 * v:.1f}" for v in curve) or "no probe scores (train.probe_every=0)"
        print(f"probe curve, {name}: {shown}")
    print("\n| strategy | labels/class | plain | rotation | rotation - plain (95% t-interval) |")
    print("|---|---:|---:|---:|---:|")
    for strategy, budget in sorted({(s, b) for s, b, _ in results["rotation"]}):
        print(paired_row(f"{strategy} | {budget}", results["plain"], results["rotation"],
                         (strategy, budget), (strategy, budget)))
    print("\n| GAN | strategy | labels/class | its random control | GAN-trained | "
          "GAN - random (95% t-interval) |")
    print("|---|---|---:|---:|---:|---:|")
    for name in ("plain", "rotation"):
        for strategy, budget in sorted({(s, b) for s, b, _ in results[name]}):
            control = strategy.replace("gan-", "random-", 1)
            if strategy.startswith("gan-") and control in strategies:
                print(paired_row(f"{name} | {strategy} | {budget}", results["plain"],
                                 results[name], (control, budget), (strategy, budget)))


def paired_row(label: str, first: dict, second: dict, first_key: tuple, second_key: tuple) -> str:
    """A markdown row: both means over the seeds both have, and second - first paired."""
    seeds = sorted(seed for *key, seed in first if tuple(key) == first_key
                   and (*second_key, seed) in second)
    a = [first[(*first_key, seed)] for seed in seeds]
    b = [second[(*second_key, seed)] for seed in seeds]
    differences = [y - x for x, y in zip(a, b)]
    interval = paired_interval(differences)
    shown = "n/a" if interval is None else f"[{100 * interval[0]:+.1f}, {100 * interval[1]:+.1f}]"
    return (f"| {label} | {100 * sum(a) / len(a):.1f} | {100 * sum(b) / len(b):.1f} | "
            f"{100 * sum(differences) / len(differences):+.1f} {shown} |")

if __name__ == "__main__":
    main()
