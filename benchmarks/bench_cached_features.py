"""Benchmark: training a head on cached frozen-trunk features against running the frozen trunk.

A frozen trunk without augmentation computes the same features every epoch. gantransfer computes
them once and trains the head on them. This script times both, in one process, on the same data,
from the same seed and the same initial head, and prints the per-epoch ratio and both test
accuracies (they must agree: the computation is the same).

Usage:
    python benchmarks/bench_cached_features.py                  # Fashion-MNIST if found, else digits
    python benchmarks/bench_cached_features.py --labels-per-class 100 --epochs 10 --width 1.0
"""

from __future__ import annotations

import argparse
import os
import time

import gantransfer  # noqa: E402,F401  (first: it picks Keras's backend before Keras is imported)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from gantransfer.data import load_dataset  # noqa: E402
from gantransfer.transfer_learning.classifiers import (STEPS_PER_EXECUTION, build_classifier,  # noqa: E402
                                              build_head, make_dataset)
from gantransfer.transfer_learning.trunks import (TrunkArchitecture, build_gan_trunk,  # noqa: E402
                                         reestimate_batchnorm)


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def _compile(model, rate):
    model.compile(keras.optimizers.Adam(rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  steps_per_execution=STEPS_PER_EXECUTION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--labels-per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--test-images", type=int, default=2000)
    args = parser.parse_args()
    name = args.dataset or ("fashion_mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist")
                            else "digits")
    data = load_dataset(name, image_size=32, channels=1, validation_split=0.0, seed=0,
                        labels_per_class=args.labels_per_class)
    x = data.train.x.astype("float32")
    y = data.train.y
    x_test = data.test.x[:args.test_images].astype("float32")
    y_test = data.test.y[:args.test_images]

    keras.utils.set_random_seed(0)
    trunk = build_gan_trunk(TrunkArchitecture(32, 1, width=args.width))
    reestimate_batchnorm(trunk, x)
    trunk.trainable = False
    keras.utils.set_random_seed(1)
    head = build_head(tuple(trunk.output_shape[1:]), data.num_classes)
    initial = head.get_weights()

    # 1. The frozen trunk runs every epoch (what a plain Keras transfer script does).
    keras.utils.set_random_seed(2)
    full = build_classifier(trunk, data.num_classes, head=head, trunk_training=False)
    _compile(full, 1e-3)
    clock_full = EpochTimes()
    full.fit(make_dataset(x, y, args.batch_size), epochs=args.epochs, callbacks=[clock_full],
             verbose=0, shuffle=False)
    accuracy_full = float(np.mean(np.argmax(full.predict(x_test, verbose=0), -1) == y_test))

    # 2. Features once, then the head alone (gantransfer's frozen strategies).
    head.set_weights(initial)
    started = time.perf_counter()
    features = trunk.predict(x, batch_size=256, verbose=0)
    extract = time.perf_counter() - started
    keras.utils.set_random_seed(2)
    _compile(head, 1e-3)
    clock_cached = EpochTimes()
    head.fit(make_dataset(features, y, args.batch_size), epochs=args.epochs,
             callbacks=[clock_cached], verbose=0, shuffle=False)
    accuracy_cached = float(np.mean(np.argmax(
        head.predict(trunk.predict(x_test, batch_size=256, verbose=0), verbose=0), -1) == y_test))

    per_epoch_full = float(np.median(clock_full.times[1:]))
    per_epoch_cached = float(np.median(clock_cached.times[1:]))
    total_full = sum(clock_full.times)
    total_cached = sum(clock_cached.times) + extract
    print(f"data: {name}, {len(x)} labeled images ({args.labels_per_class}/class), trunk width "
          f"{args.width}, {args.epochs} epochs, batch {args.batch_size}, {len(x_test)} test images")
    print(f"per epoch (median, first left out): frozen trunk every epoch {per_epoch_full * 1000:.1f} ms, "
          f"cached features {per_epoch_cached * 1000:.1f} ms, ratio {per_epoch_full / per_epoch_cached:.1f}x")
    print(f"whole fit incl. one feature pass ({extract:.2f} s): {total_full:.2f} s vs "
          f"{total_cached:.2f} s, ratio {total_full / total_cached:.1f}x")
    print(f"test accuracy: frozen trunk every epoch {accuracy_full:.4f}, cached features "
          f"{accuracy_cached:.4f}")


if __name__ == "__main__":
    main()
