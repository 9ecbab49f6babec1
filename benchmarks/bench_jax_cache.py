"""Benchmark: a comparison on JAX with XLA's persistent compilation cache, against one without it.

JAX compiles each new model's training step; a comparison trains many models of a few shapes (a
seed, fold and strategy each), so the command line keeps compiled steps on disk and reads them back
(``gantransfer.backend.jax.use_compilation_cache``). This times the same small digits comparison
as a fresh ``gantransfer compare`` process, alternating:

1. with the cache turned off (``JAX_COMPILATION_CACHE_DIR=``, empty), the baseline;
2. with the cache on, starting empty (a new folder each round): what a first run gains;
3. with the cache from (2): what a run gains when its steps were compiled before.

It prints each wall time and the ratios to the baseline.

Usage:
    python benchmarks/bench_jax_cache.py [--rounds 1] [--seeds 3] [--epochs 5] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def run_compare(args, folder: str, cache_home: str | None) -> float:
    """Seconds for one ``gantransfer compare`` in a fresh process on JAX: with the command line's
    own cache under ``cache_home`` (as ``XDG_CACHE_HOME``), or none (``JAX_COMPILATION_CACHE_DIR=``)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env["KERAS_BACKEND"] = "jax"
    if cache_home is None:
        env["JAX_COMPILATION_CACHE_DIR"] = ""
    else:
        env["XDG_CACHE_HOME"] = cache_home
    command = [sys.executable, "-m", "gantransfer", "compare", "--quiet", "--output-dir", folder,
               "--labels-per-class", "10", "--seeds", str(args.seeds), "--epochs", str(args.epochs),
               "--strategies", args.strategies, "--set", "transfer.gan_metrics=false",
               *[part for override in args.overrides for part in ("--set", override)]]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"compare failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="GAN epochs")
    parser.add_argument("--strategies", default="scratch,gan-frozen,gan-finetune,random-frozen")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a config override for every compare")
    args = parser.parse_args()
    print(f"digits, 10 labels/class, {args.seeds} seeds, {args.strategies}; GAN {args.epochs} "
          f"epochs; {os.cpu_count()} CPUs")
    times: dict[str, list[float]] = {"no cache": [], "empty cache": [], "warm cache": []}
    for round_ in range(1, args.rounds + 1):
        work = tempfile.mkdtemp(prefix="bench-jax-cache-")
        try:
            cache = os.path.join(work, "cache")
            times["no cache"].append(run_compare(args, os.path.join(work, "a"), None))
            times["empty cache"].append(run_compare(args, os.path.join(work, "b"), cache))
            times["warm cache"].append(run_compare(args, os.path.join(work, "c"), cache))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"round {round_}: " + ", ".join(f"{name} {values[-1]:.1f} s"
                                              for name, values in times.items()), flush=True)
    base = sum(times["no cache"]) / args.rounds
    for name in ("empty cache", "warm cache"):
        mean = sum(times[name]) / args.rounds
        print(f"{name} / no cache: {mean / base:.3f}")


if __name__ == "__main__":
    main()
