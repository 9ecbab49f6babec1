"""Benchmark: the linear probe's whole fit (C chosen on validation), as it was (scikit-learn's
L-BFGS on every C and image) against the probe now, on every label.

Each C of the grid is the same convex problem: an L2-regularised multinomial logistic regression on
standardised features. The baseline is the probe as it was: scikit-learn's L-BFGS fits every C
of the grid on every training image (each C warm-started from the nearest one already fitted). The
new probe (``transfer.probe_solver=auto``) chooses C on a stratified subset of 12,000 training
images, then fits the chosen C alone on all of them, starting from the subset's solution; from
2,048 features on it solves the same objective with Keras (Adam on mini-batches), below that with
L-BFGS (each line names the solver). This script fits both, in one process, on the same
features, and prints for each the time, the chosen C and the test accuracy, and the time ratio.
``--cold`` adds scikit-learn with every C started from zero; ``--half`` adds the new probe on the
same features stored as float16 (``transfer.probe_storage=float16``: half the memory).

Features, each at 32x32:
- ``pixels``: raw pixels (``pixels-linear``, 1,024 features);
- ``random``: a randomly initialised trunk of the discriminator's architecture, every block
  max-pooled to 4x4 and concatenated (``random-linear-probe``; 7,168 features at the paper's width);
- ``gan``: the same from a trained discriminator (``gan-linear-probe``), given by ``--gan-run``.
Both trunks' BatchNorm statistics are re-estimated on training images, as the strategies do.

Usage:
    python benchmarks/bench_probe.py --gan-run outputs/fm-gan --features gan  # the bar: < 60 s
    python benchmarks/bench_probe.py --features pixels,random
    python benchmarks/bench_probe.py --dataset digits --width 0.125 --train-images 300  # tiny
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import gantransfer  # noqa: F401  (first: it picks Keras's backend before Keras is imported)
import keras
import numpy as np

from gantransfer.data import load_dataset
from gantransfer.evaluation.linear import predict_in_chunks
from gantransfer.transfer_learning.probe import (CHOOSE_ON_IMAGES, fit_probe, pixel_features,
                                                 probe_features)
from gantransfer.transfer_learning.trunks import (TrunkArchitecture, build_gan_trunk,
                                                  reestimate_batchnorm, trunk_from_discriminator)


def _trunk(kind: str, x: np.ndarray, width: float, gan_run: str | None) -> keras.Model | None:
    if kind == "pixels":
        return None
    if kind == "gan":
        if gan_run is None:
            raise SystemExit("--features gan needs --gan-run: a train-gan run folder")
        folder = Path(gan_run)
        best = folder / "discriminator_best_probe.keras"
        trunk, _ = trunk_from_discriminator(best if best.exists() else
                                            folder / "discriminator.keras")
    else:
        keras.utils.set_random_seed(0)
        trunk = build_gan_trunk(TrunkArchitecture(x.shape[1], x.shape[-1], width=width))
    reestimate_batchnorm(trunk, x[:10000])  # the strategies' transfer.bn_images
    return trunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--features", default="pixels,random", help="pixels, random, gan")
    parser.add_argument("--gan-run", default=None, help="train-gan run folder for --features gan")
    parser.add_argument("--width", type=float, default=1.0, help="random trunk width (1.0: paper)")
    parser.add_argument("--train-images", type=int, default=0, help="0: every training image")
    parser.add_argument("--Cs", default="0.001,0.01,0.1,1.0")
    parser.add_argument("--cold", action="store_true", help="also scikit-learn from cold starts")
    parser.add_argument("--half", action="store_true", help="also the new probe on float16 features")
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
          f"{len(splits['test'][0])} test images; C grid {Cs}; machine: {os.cpu_count()} CPU cores",
          flush=True)
    # (label, solver, warm starts, C chosen on a subset of at most this many images (0: on all),
    # feature storage)
    fits = [("new probe, C chosen on 12,000", "auto", True, CHOOSE_ON_IMAGES, "float32"),
            ("scikit-learn L-BFGS (baseline)", "scikit-learn", True, 0, "float32")]
    if args.cold:
        fits.append(("scikit-learn, cold starts", "scikit-learn", False, 0, "float32"))
    if args.half:
        fits.append(("Keras, float16 features", "keras", True, CHOOSE_ON_IMAGES, "float16"))
    for kind in args.features.split(","):
        started = time.perf_counter()
        trunk = _trunk(kind, splits["train"][0], args.width, args.gan_run)
        f = {part: pixel_features(x) if trunk is None else probe_features(trunk, x)
             for part, (x, _) in splits.items()}
        print(f"\n{kind}: {f['train'].shape[1]} features, extracted in "
              f"{time.perf_counter() - started:.1f} s ({f['train'].nbytes / 2**20:.0f} MB for train)",
              flush=True)
        seconds, accuracies = {}, {}
        for label, solver, warm, choose_on, storage in fits:
            stored = {part: features.astype(storage, copy=False) for part, features in f.items()}
            outcome = fit_probe((stored["train"], splits["train"][1]),
                                (stored["val"], splits["val"][1]),
                                Cs=Cs, warm_start=warm, solver=solver, choose_on=choose_on)
            predictions = predict_in_chunks(outcome.model, stored["test"])
            accuracy = float(np.mean(predictions == splits["test"][1]))
            seconds[label], accuracies[label] = outcome.wall_time_s, accuracy
            label = f"{label} [{outcome.solver}]"
            print(f"  {label:47s} {outcome.wall_time_s:8.1f} s   C={outcome.C:g}   "
                  f"validation {100 * outcome.val_accuracy:.2f}%   test {100 * accuracy:.2f}%"
                  + (f"   ({outcome.grid_note})" if outcome.grid_note else ""), flush=True)
        new, baseline = list(seconds)[:2]
        print(f"  the new probe takes {seconds[new] / seconds[baseline]:.2f}x the baseline's "
              f"time; test accuracy {100 * (accuracies[new] - accuracies[baseline]):+.2f} points",
              flush=True)


if __name__ == "__main__":
    main()
