"""Benchmark: train-gan's images/s on TensorFlow and on JAX, and JAX's against a plain jax.jit step.

Keras picks its backend once per process, so each measurement runs in a fresh subprocess of this
script (``--worker``), and the rounds alternate them so that drift hits all alike:

1. ``train-gan`` on TensorFlow: ``train_gan`` with every callback (samples, checkpoints, history,
   curves, guard);
2. ``train-gan`` on JAX, the same;
3. the ceiling for the JAX path: a plain ``jax.jit`` step over the same two Keras models
   (``stateless_call``, one ``jax.vjp``, each optimizer's ``stateless_apply``), looping over NumPy
   batches, with no Keras trainer, no callbacks, and nothing written.

Epochs are timed end to end (callbacks included) and the first, which compiles, is left out. The
script prints images/s for each and the ratios JAX / TensorFlow and train-gan on JAX / the jit loop.

Usage:
    python benchmarks/bench_backends.py                  # Fashion-MNIST subset if available, else digits
    python benchmarks/bench_backends.py --images 6000 --epochs 4 --rounds 2
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

WORKERS = ("tensorflow", "jax", "jax-jit-loop")


def steady_rate(ends: list[float], images_per_epoch: int) -> float:
    """Images/s over the epochs after the first."""
    return images_per_epoch * (len(ends) - 2) / (ends[-1] - ends[1])


def _data(args):
    import numpy as np

    from gantransfer.data import load_dataset

    data = load_dataset(args.dataset, image_size=28, validation_split=0.0, seed=args.seed)
    data.train = data.train.subset(np.arange(min(args.images, len(data.train))))
    return data


def train_gan_rate(args) -> float:
    """train_gan's steady images/s, every callback on, on the backend this process runs."""
    import keras

    from gantransfer.config import load_config
    from gantransfer.gan.train import train_gan

    class EpochClock(keras.callbacks.Callback):  # last, so each interval covers every callback
        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

    data = _data(args)
    config = load_config(None, [f"data.dataset={args.dataset}", "data.image_size=28",
                                f"gan.width={args.width}", f"train.epochs={args.epochs}",
                                f"train.batch_size={args.batch_size}", f"train.seed={args.seed}",
                                "train.verbose=0"])
    clock = EpochClock()
    with tempfile.TemporaryDirectory() as folder:
        train_gan(config, os.path.join(folder, "run"), dataset=data, callbacks=[clock])
    trained = len(data.train) // args.batch_size * args.batch_size  # full batches only
    return steady_rate(clock.ends, trained)


def jit_loop_rate(args) -> float:
    """A plain jax.jit DCGAN step over the same Keras models; steady images/s."""
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    from gantransfer.data import to_gan_range
    from gantransfer.gan.models import build_discriminator, build_generator

    keras.utils.set_random_seed(args.seed)
    data = _data(args)
    x = to_gan_range(data.train.load(np.arange(len(data.train)))).astype("float32")
    generator = build_generator(28, data.channels, latent_dim=100, width=args.width)
    discriminator = build_discriminator(28, data.channels, width=args.width)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt.build(discriminator.trainable_variables)
    g_opt.build(generator.trainable_variables)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    @jax.jit
    def step(state, real, key):
        d_tv, d_ntv, g_tv, g_ntv, d_ov, g_ov = state
        noise = jax.random.normal(key, (real.shape[0], 100))

        def losses(d_tv, g_tv):
            fake, g_new = generator.stateless_call(g_tv, g_ntv, noise, training=True)
            real_logits, d_new = discriminator.stateless_call(d_tv, d_ntv, real, training=True)
            fake_logits, d_new = discriminator.stateless_call(d_tv, d_new, fake, training=True)
            d_loss = (bce(jnp.ones_like(real_logits), real_logits)
                      + bce(jnp.zeros_like(fake_logits), fake_logits))
            g_loss = bce(jnp.ones_like(fake_logits), fake_logits)
            return (d_loss, g_loss), (d_new, g_new)

        (d_loss, g_loss), pullback, (d_ntv, g_ntv) = jax.vjp(losses, d_tv, g_tv, has_aux=True)
        d_grads, _ = pullback((jnp.ones(()), jnp.zeros(())))
        _, g_grads = pullback((jnp.zeros(()), jnp.ones(())))
        d_tv, d_ov = d_opt.stateless_apply(d_ov, d_grads, d_tv)
        g_tv, g_ov = g_opt.stateless_apply(g_ov, g_grads, g_tv)
        return (d_tv, d_ntv, g_tv, g_ntv, d_ov, g_ov), d_loss, g_loss

    values = lambda variables: [v.value for v in variables]  # noqa: E731
    state = (values(discriminator.trainable_variables), values(discriminator.non_trainable_variables),
             values(generator.trainable_variables), values(generator.non_trainable_variables),
             values(d_opt.variables), values(g_opt.variables))
    rng, key = np.random.default_rng(args.seed), jax.random.key(args.seed)
    batches = len(x) // args.batch_size
    ends = [time.perf_counter()]
    for _ in range(args.epochs):
        order = rng.permutation(len(x))
        for b in range(batches):
            key, sub = jax.random.split(key)
            real = jnp.asarray(x[order[b * args.batch_size:(b + 1) * args.batch_size]])
            state, d_loss, _ = step(state, real, sub)
        d_loss.block_until_ready()
        ends.append(time.perf_counter())
    return steady_rate(ends, batches * args.batch_size)


def worker(args) -> None:
    rate = jit_loop_rate(args) if args.worker == "jax-jit-loop" else train_gan_rate(args)
    print(json.dumps({"worker": args.worker, "images_per_s": rate}))


def measure(kind: str, args) -> float:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow" if kind == "tensorflow" else "jax",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, __file__, "--worker", kind, "--dataset", args.dataset,
               "--images", str(args.images), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--width", str(args.width),
               "--seed", str(args.seed)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["images_per_s"]


def gan_benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments both GAN-throughput benchmarks take (this one and bench_train_gan.py)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--dataset", default=None, help="default: fashion_mnist if found, else digits")
    parser.add_argument("--images", type=int, default=6000, help="training images used per epoch")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the comparison")
    return parser


def main() -> None:
    parser = gan_benchmark_parser(__doc__)
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.dataset = args.dataset or ("fashion_mnist" if os.path.isdir(
        "/usr/share/datasets/fashion-mnist") else "digits")
    if args.worker:
        worker(args)
        return
    installed = {name: importlib.util.find_spec(name) is not None for name in ("tensorflow", "jax")}
    if not installed["jax"]:
        raise SystemExit("bench_backends.py needs JAX: pip install -e '.[jax]' (and '.[tensorflow]' "
                         "for the TensorFlow figure)")
    kinds = [kind for kind in WORKERS if installed[kind.split("-")[0]]]
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}"
                         for name in ("keras", *sorted(n for n, there in installed.items() if there)))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {versions}")
    print(f"data: {args.dataset}, {args.images} images at 28x28, batch {args.batch_size}, width "
          f"{args.width}, {args.epochs} epochs (first left out), {args.rounds} rounds")
    if not installed["tensorflow"]:
        print("TensorFlow is not installed: JAX only")
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(1, args.rounds + 1):
        for kind in kinds:
            rates[kind].append(measure(kind, args))
        print(f"round {round_}: " + ", ".join(f"{kind} {rates[kind][-1]:.1f} images/s"
                                              for kind in kinds), flush=True)
    mean = {kind: sum(values) / len(values) for kind, values in rates.items()}
    if "tensorflow" in mean:
        print(f"train-gan, JAX / TensorFlow: {mean['jax'] / mean['tensorflow']:.3f}")
    print(f"train-gan on JAX / plain jax.jit loop: {mean['jax'] / mean['jax-jit-loop']:.3f}")


if __name__ == "__main__":
    main()
