"""Benchmark: train-gan's throughput against a plain tf.function GradientTape loop.

In one process, on the same images and the same two models, it times
  1. ``train_gan`` (fit(), with every callback: samples, checkpoints, history, curves, guard), and
  2. the TensorFlow DCGAN tutorial's loop: a ``tf.function`` step with two GradientTapes over a
     ``tf.data`` pipeline, no callbacks, nothing written,
and prints images/s for both and their ratio. Epochs are timed end to end, callbacks included, and
the first epoch (tracing) is left out. It then reports what rotation self-supervision
(``gan.rotation_weight``) costs, as a ratio to the plain run in the same rounds, and train-gan's
images/s at batch 128 for 28x28 and 64x64 images.

It runs on TensorFlow whatever KERAS_BACKEND says; benchmarks/bench_backends.py compares the
backends.

Usage:
    python benchmarks/bench_train_gan.py                 # Fashion-MNIST subset if available, else digits
    python benchmarks/bench_train_gan.py --images 6000 --epochs 4 --width 1.0
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time

# Always TensorFlow: the baseline is TensorFlow's own loop (bench_backends.py compares backends).
if importlib.util.find_spec("tensorflow") is None:
    raise SystemExit("bench_train_gan.py measures against TensorFlow's tutorial loop and needs "
                     "TensorFlow: pip install -e '.[tensorflow]'; on JAX alone, run "
                     "benchmarks/bench_backends.py")
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gantransfer.config import load_config  # noqa: E402
from gantransfer.data import load_dataset, to_gan_range  # noqa: E402
from gantransfer.gan.models import build_discriminator, build_generator  # noqa: E402
from gantransfer.gan.train import train_gan  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_backends import gan_benchmark_parser  # noqa: E402  (one set of arguments for both)


class EpochClock(keras.callbacks.Callback):
    """Placed last, so each interval covers an epoch's steps and every other callback's work."""

    def on_train_begin(self, logs=None):
        self.ends = [time.perf_counter()]

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


def steady_rate(ends: list[float], images_per_epoch: int) -> float:
    """Images/s over the epochs after the first."""
    return images_per_epoch * (len(ends) - 2) / (ends[-1] - ends[1])


def tutorial_loop(x: np.ndarray, args, image_size: int, channels: int) -> float:
    """The TensorFlow DCGAN tutorial's training loop on the same models; returns steady images/s."""
    keras.utils.set_random_seed(args.seed)
    generator = build_generator(image_size, channels, latent_dim=100, width=args.width)
    discriminator = build_discriminator(image_size, channels, width=args.width)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)

    @tf.function
    def train_step(images):
        noise = tf.random.normal([tf.shape(images)[0], 100])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
            disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                         + cross_entropy(tf.zeros_like(fake_output), fake_output))
        g_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        d_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables))
        return gen_loss, disc_loss

    dataset = tf.data.Dataset.from_tensor_slices(to_gan_range(x)).shuffle(len(x)).batch(args.batch_size)
    ends = [time.perf_counter()]
    for _ in range(args.epochs):
        for batch in dataset:
            train_step(batch)
        ends.append(time.perf_counter())
    return steady_rate(ends, len(x))


def train_gan_rate(dataset_name: str, image_size: int, args, images: int,
                   extra: tuple[str, ...] = ()) -> tuple[float, int]:
    """train_gan's steady images/s (every callback on) on the first ``images`` training images."""
    data = load_dataset(dataset_name, image_size=image_size, validation_split=0.0, seed=args.seed)
    data.train = data.train.subset(np.arange(min(images, len(data.train))))
    config = load_config(None, [f"data.dataset={dataset_name}", f"data.image_size={image_size}",
                                f"gan.width={args.width}", f"train.epochs={args.epochs}",
                                f"train.batch_size={args.batch_size}", f"train.seed={args.seed}",
                                "train.verbose=0", *extra])
    clock = EpochClock()
    with tempfile.TemporaryDirectory() as folder:
        train_gan(config, os.path.join(folder, "run"), dataset=data, callbacks=[clock])
    # train_gan trains on full batches only; count the images it actually saw.
    count = len(data.train)
    trained = count // args.batch_size * args.batch_size if count >= args.batch_size else count
    return steady_rate(clock.ends, trained), count


def main() -> None:
    parser = gan_benchmark_parser(__doc__)
    parser.add_argument("--large-images", type=int, default=1024, help="images for the 64x64 figure")
    args = parser.parse_args()
    name = args.dataset or ("fashion_mnist" if os.path.isdir("/usr/share/datasets/fashion-mnist")
                            else "digits")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}; keras {keras.__version__}, "
          f"tensorflow {tf.__version__}")
    print(f"data: {name}, batch {args.batch_size}, width {args.width}, {args.epochs} epochs "
          "(first left out)")

    data = load_dataset(name, image_size=28, validation_split=0.0, seed=args.seed)
    ratios, rotation_ratios = [], []
    for round_ in range(1, args.rounds + 1):  # alternate them, so drift hits all alike
        ours, count = train_gan_rate(name, 28, args, args.images)
        baseline = tutorial_loop(data.train.load(np.arange(count)), args, 28, data.channels)
        rotation, _ = train_gan_rate(name, 28, args, args.images, ("gan.rotation_weight=1.0",))
        ratios.append(ours / baseline)
        rotation_ratios.append(ours / rotation)
        print(f"round {round_}: 28x28, {count} images: train-gan {ours:.1f} images/s, "
              f"tf.function loop {baseline:.1f} images/s, ratio {ours / baseline:.3f}; "
              f"with rotation self-supervision {rotation:.1f} images/s", flush=True)
    print(f"28x28 ratio train-gan / tf.function loop, mean of {args.rounds}: {np.mean(ratios):.3f}")
    print(f"28x28 time per image, rotation self-supervision / plain, mean of {args.rounds}: "
          f"{np.mean(rotation_ratios):.3f}")

    large, large_count = train_gan_rate(name, 64, args, args.large_images)
    print(f"64x64, {large_count} images: train-gan {large:.1f} images/s")


if __name__ == "__main__":
    main()
