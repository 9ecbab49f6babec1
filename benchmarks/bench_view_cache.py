"""Benchmark: frozen heads under augmentation, trained on cached views against through the pixels.

Random shifts move an image by whole pixels, so they make a few views of it (9 for shifts of up
to a pixel). gantransfer computes a frozen trunk's features of each view once, and its head draws
one view of each image every epoch, as often as the augmentation layer would make it. This script
runs the same strategies twice in one process, on the same budgets and seeds: with the views
cached (the default), then through the pixels (``VIEW_CACHE_UP_TO = 0``, what every frozen head
under augmentation did before). It prints each strategy's training minutes and test accuracy both
ways, and the ratio of the minutes. The accuracies differ by the random draws alone (the views are
drawn from a NumPy generator, the layer's moves from Keras's), so they agree within the spread
between seeds, not to the digit.

Usage:
    python benchmarks/bench_view_cache.py OUTPUT_DIR [--config fashion_mnist] \
        [--strategies random-frozen,imagenet-frozen] [--labels-per-class 100] [--seeds 1] \
        [--gan-run GAN_RUN_DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gantransfer as gt
from gantransfer.transfer_learning import strategies

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_rotation import paired_row  # noqa: E402  (one paired-row format for the benchmarks)


def _run(config: gt.Config, run_dir: Path, gan_run: Path | None) -> tuple[dict, dict]:
    result = gt.transfer(config, run_dir, discriminator=gan_run, overwrite=True, verbose=False)
    accuracy, minutes = {}, {}
    for r in result.results:
        if r.status != "ok":
            raise SystemExit(f"{r.strategy} did not run: {r.reason}")
        accuracy[(r.strategy, r.labels_per_class, r.seed)] = r.test_accuracy
        minutes[r.strategy] = minutes.get(r.strategy, 0.0) + r.train_time_s / 60
    return accuracy, minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--config", default="fashion_mnist")
    parser.add_argument("--strategies", default="random-frozen,imagenet-frozen")
    parser.add_argument("--labels-per-class", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--gan-run", type=Path, default=None, help="for the gan-* strategies")
    parser.add_argument("--shift", type=float, default=1 / 32, help="transfer.augment_shift")
    args = parser.parse_args()
    config = gt.load_config(args.config, [
        f"transfer.strategies={args.strategies}", f"transfer.labels_per_class={args.labels_per_class}",
        f"transfer.seeds={args.seeds}", f"transfer.augment_shift={args.shift}",
        "transfer.backbone_input_size=128", "transfer.report_pictures=false"])
    cached, cached_minutes = _run(config, args.output_dir / "views-cached", args.gan_run)
    limit = strategies.VIEW_CACHE_UP_TO
    strategies.VIEW_CACHE_UP_TO = 0  # every frozen head under augmentation through the pixels
    try:
        pixels, pixel_minutes = _run(config, args.output_dir / "through-pixels", args.gan_run)
    finally:
        strategies.VIEW_CACHE_UP_TO = limit
    print(f"{args.config}, {args.labels_per_class} labels/class, {args.seeds} seed(s), shifts of "
          f"up to {args.shift} of the side; test accuracy in %, through the pixels -> cached views")
    print("| strategy | through the pixels | cached views | difference [95% t-interval] | "
          "minutes (pixels / views) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.strategies.split(","):
        row = paired_row(name, pixels, cached, (name, args.labels_per_class),
                         (name, args.labels_per_class))
        ratio = pixel_minutes[name] / max(cached_minutes[name], 1e-9)
        print(f"{row} {pixel_minutes[name]:.1f} / {cached_minutes[name]:.1f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
