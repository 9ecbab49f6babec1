"""What each kind of care does to the networks trained with few labels, paired over the same seeds.

The defaults (every choice cross-validated over the budget, a refit on all of it, no augmentation
through the pixels, linear probes and frozen heads also trained on copies moved a pixel each way,
no weight decay, no dropout) are the baseline. Each variant changes one setting and runs the same
strategies on the same labeled images (same budgets and seeds), from the same GAN, in this one
process. The script prints, per variant, strategy and budget, both means and the paired difference
(variant minus defaults) with its 95% Student t-interval. This is the evidence behind the
defaults the README's care list states.

Usage:
    python benchmarks/bench_care.py GAN_RUN OUTPUT_DIR [--seeds 3] [--labels-per-class 10]
        [--strategies scratch,gan-frozen,random-frozen] [--variants validation-split,shift,...]
        [--config fashion_mnist] [--set KEY=VALUE ...] [--defaults-from RUN_DIR]

GAN_RUN is a finished train-gan run (for instance ``OUTPUT_DIR/gan`` of ``bench_fashion_mnist.sh``);
its best-probe discriminator seeds the gan-* strategies, as in ``compare``. ``--defaults-from`` takes
the baseline's accuracies from a finished run made with the defaults on the same GAN (for instance
``bench_fashion_mnist.sh``'s OUTPUT_DIR) instead of training those models again; every strategy,
budget and seed asked for must be in it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gantransfer as gt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rotation import paired_row  # noqa: E402  (one paired-row format for both benchmarks)
from paired_runs import finished_models  # noqa: E402

# name -> (the one setting it changes, what it tests)
VARIANTS = {
    "validation-split": (["transfer.cv_folds=0"],
                         "choices made on the validation split instead of k-fold CV"),
    "no-refit": (["transfer.refit=false"], "the final model trains without the validation images"),
    "shift": (["transfer.augment_shift=0.1"], "random shifts of up to 10% of the side"),
    "shift-1px": (["transfer.augment_shift=0.03125"],
                  "random shifts of up to a pixel at 32 px (1/32 of the side)"),
    "shift-2px": (["transfer.augment_shift=0.0625"],
                  "random shifts of up to two pixels at 32 px (1/16 of the side)"),
    "flip": (["transfer.augment_flip=true"],
             "random horizontal flips (for images whose classes a mirror keeps)"),
    "rates-3e-4": (["transfer.learning_rates=0.01,0.001,0.0003"],
                   "Adam rates 1e-2, 1e-3 and 3e-4 to choose among, instead of 1e-2 and 1e-3"),
    "head-pooled": (["transfer.head=pooled"], "every conv block max-pooled to 4x4 and concatenated, "
                                              "instead of the DCGAN trunks' flattened last map"),
    "head-gap": (["transfer.head=gap"], "global average pooling over the last map"),
    "l2-1e-3": (["transfer.l2=0.001"], "weight decay 1e-3 on the head"),
    "l2-1e-2": (["transfer.l2=0.01"], "weight decay 1e-2 on the head"),
    "dropout": (["transfer.dropout=0.5"], "dropout 0.5 before the head's Dense layer"),
    "trunk-l2-1e-4": (["transfer.trunk_l2=0.0001"], "weight decay 1e-4 on the trunk's kernels"),
    "trunk-l2-1e-3": (["transfer.trunk_l2=0.001"], "weight decay 1e-3 on the trunk's kernels"),
    "trunk-dropout": (["transfer.trunk_dropout=0.1"],
                      "spatial dropout 0.1 after every trunk block (acts in scratch only)"),
    "scratch-width-0.25": (["transfer.scratch_width=0.25"],
                           "scratch's network at width 0.25 (16-32-64 filters at 32 px)"),
    "scratch-width-0.125": (["transfer.scratch_width=0.125"],
                            "scratch's network at width 0.125 (8-16-32 filters at 32 px)"),
    "ensemble-5": (["transfer.ensemble=5"], "each network's final model the mean of 5 refits from "
                                            "their own initialisations"),
    "shift-1px-ensemble-5": (["transfer.augment_shift=0.03125", "transfer.ensemble=5"],
                             "random shifts of up to 1 pixel, and the mean of 5 refits"),
    "no-probe-shift": (["transfer.probe_shift=0"], "linear probes and frozen heads without their "
                                                   "copies moved a pixel each way"),
    "probe-shift-2px": (["transfer.probe_shift=2"], "linear probes and frozen heads also trained on "
                                                    "copies moved 2 pixels each way, beside the "
                                                    "1-pixel ones"),
}


def finished_results(run_dir: Path, strategies: list[str], budgets: list[str],
                     seeds: int) -> dict:
    """(strategy, budget, seed) -> test accuracy of the models a finished run trained."""
    found, _seconds = finished_models(run_dir)
    wanted = [(s, b, seed) for s in strategies for b in budgets for seed in range(seeds)]
    missing = [key for key in wanted if key not in found]
    if missing:
        raise SystemExit(f"error: the run in {str(run_dir)!r} has no finished model for "
                         f"{', '.join(f'{s} at {b}/class seed {seed}' for s, b, seed in missing)}; "
                         "run the defaults here instead (leave out --defaults-from)")
    return {key: found[key] for key in wanted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gan_run", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels-per-class", default="10")
    parser.add_argument("--strategies", default="scratch,gan-frozen,random-frozen")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, among: {', '.join(VARIANTS)}")
    parser.add_argument("--config", default="fashion_mnist")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--defaults-from", type=Path,
                        help="a finished run with the defaults to take the baseline from")
    args = parser.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose among {', '.join(VARIANTS)}")

    settings = [*args.overrides, f"transfer.labels_per_class={args.labels_per_class}",
                f"transfer.seeds={args.seeds}", f"transfer.strategies={args.strategies}",
                "transfer.gan_metrics=false"]
    results = {}
    if args.defaults_from:
        results["defaults"] = finished_results(args.defaults_from, args.strategies.split(","),
                                               args.labels_per_class.split(","), args.seeds)
        print(f"defaults: {len(results['defaults'])} models from {args.defaults_from}", flush=True)
    for name in [*(["defaults"] if not args.defaults_from else []), *variants]:
        changes = [] if name == "defaults" else VARIANTS[name][0]
        config = gt.load_config(args.config, [*settings, *changes])
        started = time.perf_counter()
        run = gt.transfer(config, args.output_dir / name, discriminator=args.gan_run,
                          overwrite=True, verbose=False)
        results[name] = {(r.strategy, str(r.labels_per_class), r.seed): r.test_accuracy
                         for r in run.results if r.status == "ok"}
        print(f"{name}: {len(results[name])} models in {(time.perf_counter() - started) / 60:.1f} min",
              flush=True)

    print("\n| variant | strategy | labels/class | defaults | variant | variant - defaults "
          "(95% t-interval) |")
    print("|---|---|---:|---:|---:|---:|")
    for name in variants:
        for strategy, budget in sorted({(s, b) for s, b, _ in results[name]}):
            print(paired_row(f"{name} | {strategy} | {budget}", results["defaults"], results[name],
                             (strategy, budget), (strategy, budget)))
    print()
    for name in variants:
        print(f"{name}: {VARIANTS[name][1]} ({' '.join(VARIANTS[name][0])})")


if __name__ == "__main__":
    main()
