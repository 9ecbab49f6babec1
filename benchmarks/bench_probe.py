"""Benchmark: the linear probe's fit (C chosen on validation), cold starts against warm starts.

Each C of the grid is the same convex problem (an L2-regularised logistic regression on
standardised features). gantransfer solves it from the solution of the nearest C already fitted
(warm starts); the baseline solves every C from zero, as scikit-learn does by default. This script
fits both, in one process, on the same features, and prints the time, the chosen C and the test
accuracy of each, and the time ratio. The answers must agree: it is the same problem.

Features: raw pixels (``pixels-linear``), and a randomly initialised trunk of the discriminator's
architecture, every block max-pooled to 4x4 and concatenated (``random-linear-probe``; a GAN's
trunk at the same width gives the same number of features: 7,168 at the paper's width on 32x32
images).

Usage:
    python benchmarks/bench_probe.py                                  # Fashion-MNIST if found
    python benchmarks/bench_probe.py --train-images 12000 --width 0.5  # a smaller problem
"""

from __future__ import annotations

import argparse
import os
import time

import gantransfer  # noqa: F401  (first: it picks Keras's backend before Keras is imported)
import keras
import numpy as np

from gantransfer.data import load_dataset
from gantransfer.transfer_learning.probe import fit_probe, pixel_features, probe_features
from gantransfer.transfer_learning.trunks import (TrunkArchitecture, build_gan_trunk,
                                                  reestimate_batchnorm)


def _features(kind: str, x: np.ndarray, width: float, seed: int) -> np.ndarray:
    if kind == "pixels":
        return pixel_features(x)
    keras.utils.set_random_seed(seed)
    trunk = build_gan_trunk(TrunkArchitecture(x.shape[1], x.shape[-1], width=width))
    reestimate_batchnorm(trunk, x[:2000])
    return probe_features(trunk, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--features", default="pixels,random", help="pixels, random, or both")
    parser.add_argument("--width", type=float, default=1.0, help="trunk width (1.0: the paper's)")
    parser.add_argument("--train-images", type=int, default=0, help="0: every training image")
    parser.add_argument("--Cs", default="0.001,0.01,0.1,1.0")
    args = parser.parse_args()
    name = args.dataset or ("fashion_mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist")
                            else "digits")
    data = load_dataset(name, image_size=32, channels=1, validation_split=0.2, seed=0)
    keep = args.train_images or len(data.train)
    splits = {"train": (data.train.x[:keep].astype("float32"), data.train.y[:keep]),
              "val": (data.val.x.astype("float32"), data.val.y),
              "test": (data.test.x.astype("float32"), data.test.y)}
    Cs = tuple(float(c) for c in args.Cs.split(","))
    print(f"{name}: {len(splits['train'][0])} train, {len(splits['val'][0])} validation, "
          f"{len(splits['test'][0])} test images; C grid {Cs}; machine: {os.cpu_count()} CPU cores")
    for kind in args.features.split(","):
        started = time.perf_counter()
        f = {part: _features(kind, x, args.width, 0) for part, (x, _) in splits.items()}
        print(f"\n{kind}: {f['train'].shape[1]} features, extracted in "
              f"{time.perf_counter() - started:.1f} s ({f['train'].nbytes / 2**20:.0f} MB for train)")
        results = {}
        for label, warm in (("cold starts (baseline)", False), ("warm starts", True)):
            outcome = fit_probe((f["train"], splits["train"][1]), (f["val"], splits["val"][1]),
                                Cs=Cs, warm_start=warm)
            accuracy = float(np.mean(outcome.model.predict(f["test"]) == splits["test"][1]))
            results[warm] = outcome.wall_time_s
            print(f"  {label:24s} {outcome.wall_time_s:8.1f} s   C={outcome.C:g}   "
                  f"test accuracy {100 * accuracy:.2f}%"
                  + (f"   ({outcome.grid_note})" if outcome.grid_note else ""))
        print(f"  warm starts take {results[True] / results[False]:.2f}x the baseline's time")


if __name__ == "__main__":
    main()
