"""GPU check: train-gan and a transfer fine-tune, in float32 and mixed precision, with and without XLA.

On whatever accelerator the active Keras backend sees (a CPU when there is none), each setting runs
in a fresh subprocess of this script (``--worker``), so that its dtype policy, XLA setting and peak
memory are its own. For each it prints:

- images/s and the time of one training step, over ``--steps`` steps after ``--warmup`` steps (the
  first compiles);
- the data time: what the toolkit's input pipeline takes to make one batch on the host, against the
  step time (a pipeline slower than the step starves the accelerator);
- the peak accelerator memory;
- the model FLOP utilisation (MFU): the model's own FLOPs per step (counted from its convolution and
  dense layers, a training step as 3 forward passes) per second, against the device's dense peak
  for the arithmetic the step ran in (the ``math`` column): the 16-bit tensor-core peak for mixed
  precision; for float32, the TF32 tensor-core peak where the backend multiplies float32 in TF32
  (NVIDIA Ampere and later, the default of both backends), else the plain float32 peak.
  ``--peak-tflops`` gives the peak for a device the table below does not know.

``float32-strict`` is float32 with TF32 turned off (``NVIDIA_TF32_OVERRIDE=0``, and
``JAX_DEFAULT_MATMUL_PRECISION=highest`` on JAX): IEEE float32 throughout, the baseline that mixed
precision's speed-up is usually quoted against.

Workloads: ``train-gan`` is the DCGAN step (``build_dcgan``, the toolkit's own ``fit``) at
``--image-size`` (64 by default: the paper's LSUN/ImageNet size) on random images; ``finetune`` trains
the discriminator's trunk with a classifier head on random labels (the gan-finetune strategy's
second phase). On JAX steps are always XLA-compiled, so the no-XLA settings are left out there.
The whole check takes under 5 minutes on a GPU and needs nothing but the package.

Usage:
    python benchmarks/gpu_check.py                      # 64x64, batch 128, the paper's widths
    KERAS_BACKEND=jax python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --image-size 32 --steps 20 --precisions float32,mixed_bfloat16
    python benchmarks/gpu_check.py --precisions float32,float32-strict,mixed_float16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# Dense peak TFLOP/s by device name (substring) and arithmetic: NVIDIA's datasheets (SXM parts),
# without sparsity. fp32 is the plain (non-tensor-core) float32 rate, tf32 the TensorFloat-32
# tensor-core rate (Ampere and later), 16bit the float16/bfloat16 tensor-core rate.
PEAK_TFLOPS = {
    "H200": {"fp32": 67.0, "tf32": 494.7, "16bit": 989.4},
    "H100": {"fp32": 67.0, "tf32": 494.7, "16bit": 989.4},
    "A100": {"fp32": 19.5, "tf32": 156.0, "16bit": 312.0},
    "L40S": {"fp32": 91.6, "tf32": 183.0, "16bit": 362.0},
    "L4": {"fp32": 30.3, "tf32": 60.0, "16bit": 121.0},
    "A10": {"fp32": 31.2, "tf32": 62.5, "16bit": 125.0},
    "V100": {"fp32": 15.7, "16bit": 125.0},
    "T4": {"fp32": 8.1, "16bit": 65.0},
}
PRECISIONS = ("float32", "float32-strict", "mixed_float16", "mixed_bfloat16")
STRICT_FLOAT32 = {"NVIDIA_TF32_OVERRIDE": "0", "JAX_DEFAULT_MATMUL_PRECISION": "highest"}


def layer_flops(model) -> int:
    """Multiply-adds x 2 of one forward pass of one image, from the conv and dense layers."""
    import keras

    total = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            k1, k2 = layer.kernel_size
            total += 2 * h * w * k1 * k2 * c_in * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k1, k2 = layer.kernel_size
            total += 2 * h * w * k1 * k2 * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def _layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _layers(layer)


def device_peak(kinds: list[str], math: str, override: float | None) -> float | None:
    """The device's dense peak FLOP/s for ``math`` (``fp32``, ``tf32`` or ``16bit``)."""
    if override:
        return override * 1e12
    for name, peaks in PEAK_TFLOPS.items():
        if any(name in kind for kind in kinds):
            return peaks.get(math, peaks["fp32"]) * 1e12
    return None


def step_math(precision: str, float32_math: str) -> str:
    """The arithmetic a step's matrix products run in: ``16bit``, ``tf32`` or ``fp32``.

    Example:
        >>> step_math("mixed_bfloat16", "tf32"), step_math("float32", "tf32"), step_math("float32", "fp32")
        ('16bit', 'tf32', 'fp32')
    """
    return "16bit" if precision.startswith("mixed") else float32_math


class StepClock:
    """A Keras callback timing ``fit``'s batches after the first ``warmup``."""

    def __init__(self, warmup: int):
        import keras

        clock = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                # logs hold the step's metrics: reading one waits for the step to finish
                if logs:
                    float(next(iter(logs.values())))
                clock.ends.append(time.perf_counter())

        self.warmup, self.ends, self.callback = warmup, [], Callback()

    def step_seconds(self) -> float:
        timed = self.ends[self.warmup - 1:]
        return (timed[-1] - timed[0]) / (len(timed) - 1)


def run_worker(args) -> dict:
    """One workload at one precision and XLA setting, in this process."""
    import keras
    import numpy as np

    from gantransfer import backend
    from gantransfer.config import load_config
    from gantransfer.data import ImageBatches
    from gantransfer.data.core import ImageSet
    from gantransfer.gan.train import build_dcgan
    from gantransfer.runtime import Runtime

    backend.import_quietly()
    steps = args.warmup + args.steps
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (steps * args.batch_size, args.image_size, args.image_size,
                                   args.channels), dtype=np.uint8)
    images = ImageSet(pixels, rng.integers(0, 10, len(pixels)))
    overrides = [f"gan.width={args.width}", f"train.batch_size={args.batch_size}"]
    runtime = Runtime(precision=args.precision.replace("-strict", ""), jit_compile=args.xla)
    clock = StepClock(args.warmup)
    with runtime.activate():
        keras.utils.set_random_seed(0)
        gan = build_dcgan(load_config(None, overrides), args.image_size, args.channels)
        batches = ImageBatches(images, args.batch_size, seed=0, with_labels=args.workload != "train-gan",
                               drop_remainder=True, **({"workers": 2} if backend.accelerators() else {}))
        started = time.perf_counter()
        for index in range(min(len(batches), 10)):
            batches[index]
        data_seconds = (time.perf_counter() - started) / min(len(batches), 10)
        if args.workload == "train-gan":
            model = gan
            flops = args.batch_size * (3 * layer_flops(gan.generator)
                                       + 8 * layer_flops(gan.discriminator))
        else:
            from gantransfer.transfer_learning.classifiers import build_classifier
            from gantransfer.transfer_learning.trunks import trunk_from_discriminator

            trunk, _ = trunk_from_discriminator(gan.discriminator)
            model = build_classifier(trunk, 10, kind="flatten")
            model.compile(optimizer=keras.optimizers.Adam(1e-4),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile=runtime.jit_compile)
            flops = args.batch_size * 3 * layer_flops(model)
        model.fit(batches, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0,
                  callbacks=[clock.callback])
        step = clock.step_seconds()
        kinds = backend.device_kinds()
        math = step_math(args.precision, backend.float32_math())
        peak = device_peak(kinds, math, args.peak_tflops)
        return {"workload": args.workload, "precision": args.precision, "xla": runtime.xla,
                "math": math,
                "images_per_s": args.batch_size / step, "step_ms": 1000 * step,
                "data_ms": 1000 * data_seconds, "peak_memory_mb": _peak_mb(backend),
                "tflops": flops / step / 1e12, "mfu": None if peak is None else flops / step / peak,
                "device": ", ".join(kinds) or "CPU", "backend": keras.config.backend()}


def _peak_mb(backend) -> float | None:
    peak = backend.peak_memory()
    return None if peak is None else peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--width", type=float, default=1.0, help="gan.width (1.0: the paper's)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (the first compiles)")
    parser.add_argument("--precisions", default="float32,mixed_float16,mixed_bfloat16",
                        help="of float32, float32-strict (TF32 off), mixed_float16, mixed_bfloat16")
    parser.add_argument("--workloads", default="train-gan,finetune")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak, where not in the table")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--xla", type=lambda v: v == "true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)), flush=True)
        return
    unknown = set(args.precisions.split(",")) - set(PRECISIONS)
    if unknown:
        parser.error(f"--precisions: unknown {', '.join(sorted(unknown))}; choose from "
                     f"{', '.join(PRECISIONS)}")
    import gantransfer  # noqa: F401  (picks the default backend)

    name = os.environ["KERAS_BACKEND"]
    xla_settings = [True] if name == "jax" else [False, True]
    print(f"{name}: {args.image_size}x{args.image_size}x{args.channels}, batch {args.batch_size}, "
          f"width {args.width}, {args.steps} steps after {args.warmup}")
    header = (f"{'workload':<10} {'precision':<15} {'XLA':<4} {'math':<5} {'images/s':>9} "
              f"{'step ms':>8} {'data ms':>8} {'peak MB':>8} {'TFLOP/s':>8} {'MFU':>6}")
    print(header)
    rates: dict[tuple, float] = {}
    device = None
    for workload in args.workloads.split(","):
        for precision in args.precisions.split(","):
            for xla in xla_settings:
                command = [sys.executable, __file__, "--worker", "--workload", workload,
                           "--precision", precision, "--xla", str(xla).lower(),
                           *[f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                             if k in ("image_size", "channels", "batch_size", "width", "steps",
                                      "warmup") or (k == "peak_tflops" and v)]]
                env = {**os.environ, **(STRICT_FLOAT32 if precision == "float32-strict" else {})}
                done = subprocess.run(command, capture_output=True, text=True, env=env)
                lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
                if done.returncode != 0 or not lines:
                    print(f"{workload:<10} {precision:<15} {'on' if xla else 'off':<4} failed: "
                          f"{(done.stderr.strip().splitlines() or ['?'])[-1]}")
                    continue
                r = json.loads(lines[0][len("RESULT "):])
                device = r["device"]
                rates[(workload, precision, xla)] = r["images_per_s"]
                memory = "n/a" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}"
                mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
                print(f"{workload:<10} {precision:<15} {'on' if xla else 'off':<4} {r['math']:<5} "
                      f"{r['images_per_s']:>9.0f} {r['step_ms']:>8.2f} {r['data_ms']:>8.2f} "
                      f"{memory:>8} {r['tflops']:>8.2f} {mfu:>6}", flush=True)
    print(f"device: {device}")
    for workload in args.workloads.split(","):
        for xla in xla_settings:
            for baseline in ("float32", "float32-strict"):
                base = rates.get((workload, baseline, xla))
                for precision in args.precisions.split(","):
                    if precision.startswith("mixed") and base and (workload, precision, xla) in rates:
                        print(f"{workload}, XLA {'on' if xla else 'off'}: {precision} / {baseline} = "
                              f"{rates[(workload, precision, xla)] / base:.2f}x")


if __name__ == "__main__":
    main()
