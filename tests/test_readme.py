"""Every code block in the README runs.

Blocks run as written, except where a block names a large dataset or a long training run: there the
test runs the same command with tiny settings instead. Each such substitution is listed in
``RUN_AS`` below with the reason, and a README command that the table no longer matches fails the
test, so the table and the README cannot drift apart.
"""

import contextlib
import importlib.util
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path
from unittest import mock

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gantransfer.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

# Tiny models and short fits: what "tiny settings" means below.
TINY_GAN = "--set gan.width=0.125 --set gan.latent_dim=8 --set gan.kernel_size=3 " \
           "--set train.sample_images=4 --quiet"
TINY_TRANSFER = "--set transfer.max_epochs=3 --set transfer.patience=1 " \
                "--set transfer.learning_rates=0.01 --set transfer.bn_images=200 " \
                "--set transfer.cv_folds=2"
TINY_COMPARE = f"--epochs 1 --seeds 1 --strategies scratch,gan-linear-probe --set data.image_size=16 " \
               f"{TINY_GAN} {TINY_TRANSFER}"
# The GAN's FID/KID needs a feature classifier trained for it: the compares here leave it out to keep
# the suite short (test_cli.py's compare and evaluate-gan below score it).
NO_GAN_METRICS = "--set transfer.gan_metrics=false"

TEST_COMMAND = \
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[tensorflow,jax,test]' && .venv/bin/pytest -q"
JAX_TEST_COMMAND = "python3 -m venv .venv-jax && .venv-jax/bin/pip install -q -e '.[jax,test]' && " \
                   ".venv-jax/bin/pytest -q"

MULTI_WORKER_COMMAND = (
    """TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": """
    """"worker", "index": 0}}' gantransfer train-gan --config fashion_mnist --distribute """
    "multi-worker --output-dir /shared/fmnist-gan")

# README command -> (what the test runs instead, why). Every other command runs as written.
RUN_AS = {
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[tensorflow]' && .venv/bin/gantransfer compare": (
        f"gantransfer compare --labels-per-class 10 {TINY_COMPARE} {NO_GAN_METRICS}",
        "the test already runs in an installed environment (.ci/run builds a fresh one); the "
        "comparison itself is made tiny"),
    TEST_COMMAND: (None, "the test suite cannot run itself; .ci/run runs this exact line"),
    MULTI_WORKER_COMMAND: (None, "it needs the two machines it names; test_multi_worker.py runs two "
                                 "workers on localhost"),
    JAX_TEST_COMMAND: (None, "the test suite cannot run itself; .ci/run runs this exact line"),
    "KERAS_BACKEND=jax gantransfer compare --output-dir outputs/digits-compare-jax": (
        f"KERAS_BACKEND=jax gantransfer compare --labels-per-class 10 "
        f"--output-dir outputs/digits-compare-jax {TINY_COMPARE} {NO_GAN_METRICS}",
        "tiny"),
    "KERAS_BACKEND=jax gantransfer train-gan --epochs 2 --output-dir outputs/digits-gan-jax": (
        f"KERAS_BACKEND=jax gantransfer train-gan --epochs 2 --output-dir outputs/digits-gan-jax "
        f"{TINY_GAN}", "tiny; the next command resumes it on TensorFlow as written"),
    "gantransfer compare": (
        f"gantransfer compare --labels-per-class 10 --output-dir outputs/cmp {TINY_COMPARE} "
        f"--strategies gan-finetune {NO_GAN_METRICS}",
        "tiny; gan-finetune, whose model the visualize example below reads"),
    "gantransfer compare --config fashion_mnist --output-dir outputs/fmnist-compare": (
        f"gantransfer compare --config digits --output-dir outputs/fmnist-compare "
        f"--labels-per-class 10 {TINY_COMPARE} {NO_GAN_METRICS}",
        "digits stands in for Fashion-MNIST; tiny"),
    "gantransfer compare --seeds 5 --gan-per-seed --output-dir outputs/digits-gan-per-seed": (
        f"gantransfer compare --labels-per-class 10 --output-dir outputs/digits-gan-per-seed "
        f"{TINY_COMPARE} --seeds 2 --gan-per-seed --strategies gan-linear-probe {NO_GAN_METRICS}",
        "two seeds, so two GANs, instead of five; tiny"),
    "gantransfer compare --labels-per-class 10,all --seeds 5 --set transfer.augment_shift=0.1": (
        f"gantransfer compare --labels-per-class 10,all --set transfer.augment_shift=0.1 "
        f"{TINY_COMPARE} {NO_GAN_METRICS}", "one seed instead of five; tiny"),
    "gantransfer transfer --gan-run outputs/fmnist-gan --dataset fashion_mnist --strategies "
    "scratch,gan-frozen,gan-linear-probe,random-linear-probe --labels-per-class 10,100": (
        "gantransfer transfer --gan-run outputs/fmnist-gan --dataset digits --strategies "
        f"scratch,gan-frozen,gan-linear-probe,random-linear-probe --labels-per-class 10,100 "
        f"--seeds 1 {TINY_TRANSFER} --quiet", "digits stands in for Fashion-MNIST; one seed"),
    "gantransfer transfer --discriminator outputs/mnist-gan/discriminator.keras --dataset "
    "~/my_labeled_photos": (
        "gantransfer transfer --discriminator outputs/fmnist-gan/discriminator.keras --dataset "
        f"my_labeled_photos --labels-per-class 4 --seeds 1 --strategies scratch,gan-frozen "
        f"{TINY_TRANSFER} --quiet",
        "a small labeled folder made by the test and the GAN trained above; tiny"),
    "gantransfer transfer --dataset digits --strategies scratch,imagenet-frozen --backbone-weights "
    "none": (
        "gantransfer transfer --dataset digits --strategies scratch,imagenet-frozen "
        f"--backbone-weights none --backbone-input-size 32 --labels-per-class 10 --seeds 1 "
        f"{TINY_TRANSFER} --quiet", "MobileNet at 32 px, one budget and seed"),
    "gantransfer compare --set transfer.robustness=0,0.02,0.05,0.1 --set "
    "transfer.robustness_steps=10": (
        f"gantransfer compare --labels-per-class 10 --set transfer.robustness=0,0.02,0.05,0.1 "
        f"--set transfer.robustness_steps=2 --set transfer.robustness_images=50 {TINY_COMPARE} "
        f"{NO_GAN_METRICS}", "tiny; PGD-2 on 50 test images"),
    "gantransfer compare --set transfer.robustness=0,0.05,0.1 --set "
    "transfer.adversarial_training=pgd --set transfer.adversarial_epsilon=0.1 --output-dir "
    "outputs/digits-adversarial": (
        f"gantransfer compare --labels-per-class 10 --set transfer.robustness=0,0.05,0.1 --set "
        f"transfer.adversarial_training=pgd --set transfer.adversarial_epsilon=0.1 --set "
        f"transfer.adversarial_steps=2 --set transfer.robustness_steps=2 --set "
        f"transfer.robustness_images=50 --output-dir outputs/digits-adversarial {TINY_COMPARE} "
        f"{NO_GAN_METRICS}", "tiny; PGD-2 for training and attack, on 50 test images"),
    "gantransfer transfer --config fashion_mnist --strategies imagenet-frozen --seeds 5 "
    "--output-dir outputs/imagenet-frozen": (
        "gantransfer transfer --config digits --strategies imagenet-frozen --backbone-weights none "
        "--backbone-input-size 32 --labels-per-class 5 --seeds 1 --set transfer.probe_shift=1 "
        f"--output-dir outputs/imagenet-frozen {TINY_TRANSFER} --quiet",
        "digits stands in for Fashion-MNIST; MobileNet untrained at 32 px, one budget and seed"),
    "gantransfer transfer --config fashion_mnist --strategies imagenet-frozen --seeds 5 --set "
    "transfer.probe_shift=0 --output-dir outputs/imagenet-frozen-unmoved": (
        "gantransfer transfer --config digits --strategies imagenet-frozen --backbone-weights none "
        "--backbone-input-size 32 --labels-per-class 5 --seeds 1 --set transfer.probe_shift=0 "
        f"--output-dir outputs/imagenet-frozen-unmoved {TINY_TRANSFER} --quiet",
        "digits stands in for Fashion-MNIST; MobileNet untrained at 32 px, one budget and seed"),
    "gantransfer train-gan": (f"gantransfer train-gan --epochs 1 {TINY_GAN}", "tiny"),
    "gantransfer train-gan --config configs/fashion_mnist.yaml --output-dir outputs/fmnist-gan": (
        f"gantransfer train-gan --config digits --epochs 1 --output-dir outputs/fmnist-gan "
        f"{TINY_GAN}", "digits stands in for Fashion-MNIST; tiny"),
    "gantransfer train-gan --output-dir outputs/fmnist-gan --resume --epochs 20": (
        "gantransfer train-gan --output-dir outputs/fmnist-gan --resume --epochs 2 --quiet",
        "on to epoch 2, not 20"),
    "gantransfer train-gan --dataset ~/photos/unlabeled --image-size 64 --set gan.width=0.5": (
        f"gantransfer train-gan --dataset unlabeled_photos --image-size 64 --epochs 1 {TINY_GAN}",
        "a small unlabeled folder made by the test; tiny"),
    "gantransfer train-gan --config fashion_mnist --set train.metrics_every=2": (
        f"gantransfer train-gan --config digits --epochs 2 --set train.metrics_every=2 "
        f"--set train.metrics_images=100 {TINY_GAN}", "digits stands in for Fashion-MNIST; tiny"),
    "gantransfer train-gan --config configs/fashion_mnist.yaml --set train.probe_every=1": (
        f"gantransfer train-gan --config digits --epochs 2 --set train.probe_every=1 "
        f"--set train.probe_images=100 {TINY_GAN}", "digits stands in for Fashion-MNIST; tiny"),
    "gantransfer train-gan --config fashion_mnist --epochs 8 --set gan.rotation_weight=0 --set "
    "train.probe_every=1 --set train.keep_checkpoints=0 --output-dir outputs/fmnist-probe-curve": (
        f"gantransfer train-gan --config digits --epochs 2 --set train.probe_every=1 "
        f"--set train.probe_images=100 --output-dir outputs/fmnist-probe-curve {TINY_GAN}",
        "digits stands in for Fashion-MNIST; two epochs; tiny"),
    "gantransfer train-gan --config fashion_mnist --set gan.width=1.5 --output-dir "
    "outputs/fmnist-wide": (
        f"gantransfer train-gan --config digits --epochs 1 --output-dir outputs/fmnist-wide "
        f"{TINY_GAN}", "digits stands in for Fashion-MNIST; tiny"),
    "gantransfer visualize outputs/cmp/models/gan-finetune_lpc-10_seed-0.keras --index 3 "
    "--embedding tsne": (
        "gantransfer visualize outputs/cmp/models/gan-finetune_lpc-10_seed-0.keras --index 3 "
        "--embedding tsne --embedding-images 200", "t-SNE of 200 test images, not 1000"),
    "gantransfer train-gan --config configs/fashion_mnist.yaml --epochs 5 --set gan.width=0.5 "
    "--set gan.rotation_weight=0 --output-dir outputs/fashion-mnist-docs": (
        f"gantransfer train-gan --config digits --epochs 1 --output-dir outputs/fashion-mnist-docs "
        f"{TINY_GAN}", "digits stands in for Fashion-MNIST; tiny"),
    "python benchmarks/bench_train_gan.py": (
        f"{sys.executable} {ROOT}/benchmarks/bench_train_gan.py --dataset digits --images 256 "
        "--epochs 2 --width 0.125 --large-images 32 --rounds 1", "digits, tiny"),
    "python benchmarks/bench_backends.py": (
        f"{sys.executable} {ROOT}/benchmarks/bench_backends.py --dataset digits --images 256 "
        "--epochs 2 --width 0.125 --rounds 1", "tiny"),
    "python benchmarks/bench_jax_cache.py": (
        f"{sys.executable} {ROOT}/benchmarks/bench_jax_cache.py --seeds 1 --epochs 1 "
        "--strategies random-linear-probe --set gan.width=0.125 --set gan.latent_dim=8 "
        "--set gan.kernel_size=3 --set data.image_size=16", "tiny"),
    "python benchmarks/gpu_check.py": (
        f"{sys.executable} {ROOT}/benchmarks/gpu_check.py --image-size 16 --channels 1 "
        "--batch-size 16 --width 0.125 --steps 2 --warmup 2 --workloads train-gan "
        "--precisions mixed_bfloat16", "tiny; the train-gan step, one precision"),
    "KERAS_BACKEND=jax python benchmarks/gpu_check.py --steps 30 --precisions "
    "float32,float32-strict,mixed_float16,mixed_bfloat16": (
        f"{sys.executable} {ROOT}/benchmarks/gpu_check.py --image-size 16 --channels 1 "
        "--batch-size 16 --width 0.125 --steps 2 --warmup 2 --workloads train-gan "
        "--precisions float32-strict", "tiny; the precision this command adds, on the suite's "
        "backend (both, in .ci/run)"),
    "KERAS_BACKEND=jax python benchmarks/gpu_check.py": (
        None, "the line above on JAX: .ci/run's JAX suite runs that line there, on an install "
        "without TensorFlow"),
    "python benchmarks/gpu_check.py --image-size 32 --channels 1 --batch-size 64 --steps 10 "
    "--warmup 3": (None, "the CPU figures' size (minutes); the tiny gpu_check runs above check "
                   "the script"),
    "gantransfer train-gan --config fashion_mnist --mixed-precision --output-dir "
    "outputs/fmnist-gan-fp16": (
        f"gantransfer train-gan --config digits --epochs 1 --mixed-precision --output-dir "
        f"outputs/fmnist-gan-fp16 --set data.image_size=16 {TINY_GAN}",
        "digits stands in for Fashion-MNIST; tiny, at 16 px (float16 is slow on a CPU)"),
    "gantransfer compare --mixed-precision bfloat16 --distribute mirrored --output-dir "
    "outputs/digits-compare-gpus": (
        f"gantransfer compare --labels-per-class 10 --mixed-precision bfloat16 --distribute "
        f"mirrored --output-dir outputs/digits-compare-gpus {TINY_COMPARE} {NO_GAN_METRICS}",
        "tiny; one replica on this CPU"),
    "python benchmarks/bench_attack.py": (
        f"{sys.executable} {ROOT}/benchmarks/bench_attack.py --images 64 --steps 2 --epochs 1 "
        "--width 0.125", "64 images, PGD-2, a tiny classifier"),
    "python benchmarks/bench_probe.py --gan-run outputs/fmnist-gan --features gan --half": (
        f"{sys.executable} {ROOT}/benchmarks/bench_probe.py --dataset digits --features "
        "random --width 0.125 --train-images 300 --Cs 0.1,1 --half",
        "digits, 300 images; a random trunk stands in for the GAN's, float16 too"),
    "python benchmarks/bench_probe.py --features random,pixels": (
        f"{sys.executable} {ROOT}/benchmarks/bench_probe.py --dataset digits --features "
        "pixels,random --width 0.125 --train-images 300 --Cs 0.1,1",
        "digits, 300 images, a random trunk and pixels"),
    "python benchmarks/bench_workers.py": (
        f"{sys.executable} {ROOT}/benchmarks/bench_workers.py --workers 2 --strategies "
        "scratch,gan-frozen,pixels-linear --labels-per-class 3 --seeds 1 --set gan.width=0.125 "
        "--set gan.latent_dim=8 --set gan.kernel_size=3 --set train.epochs=1 --set "
        "train.sample_images=4 --set transfer.max_epochs=3 --set transfer.gan_metrics=false",
        "digits, tiny: a one-epoch GAN, three strategies at one budget and seed"),
    "python benchmarks/bench_cached_features.py": (
        f"{sys.executable} {ROOT}/benchmarks/bench_cached_features.py --dataset digits "
        "--labels-per-class 10 --epochs 2 --width 0.125 --test-images 100", "digits, tiny"),
    "python benchmarks/bench_view_cache.py outputs/view-cache --labels-per-class 100": (
        f"{sys.executable} {ROOT}/benchmarks/bench_view_cache.py outputs/view-cache --config "
        "digits --strategies random-frozen --labels-per-class 3", "digits, one tiny strategy"),
    "gantransfer train-gan --config fashion_mnist --epochs 6 --set gan.rotation_weight=1 --set "
    "train.probe_every=1 --set train.keep_checkpoints=0 --output-dir outputs/fmnist-ssgan": (
        "gantransfer train-gan --config digits --epochs 2 --set gan.rotation_weight=1 --set "
        "train.probe_every=1 --set train.keep_checkpoints=0 --set train.probe_images=100 "
        f"--output-dir outputs/fmnist-ssgan {TINY_GAN}", "digits stands in for Fashion-MNIST; tiny"),
    "python benchmarks/bench_rotation.py outputs/fmnist-probe-curve outputs/rotation-benchmark "
    "--rotation-gan-run outputs/fmnist-ssgan --seeds 5 --labels-per-class 10,100 "
    "--strategies gan-frozen,gan-linear-probe,random-frozen,random-linear-probe": (
        f"{sys.executable} {ROOT}/benchmarks/bench_rotation.py outputs/fmnist-probe-curve "
        "outputs/rotation-benchmark --rotation-gan-run outputs/fmnist-ssgan --config digits "
        "--seeds 2 --labels-per-class 5 --strategies gan-linear-probe,random-linear-probe "
        "--set transfer.cv_folds=2 --set transfer.bn_images=200",
        "digits stands in for Fashion-MNIST; the two tiny GANs above; two seeds"),
    "python benchmarks/bench_robustness.py outputs/fashion-mnist-benchmark/gan "
    "outputs/robustness-benchmark --seeds 3 --labels-per-class 100 --epsilons 0,0.02,0.05,0.1 "
    "--pgd-steps 20 --set transfer.backbone_input_size=128 --set transfer.cv_folds=0": (
        f"{sys.executable} {ROOT}/benchmarks/bench_robustness.py outputs/fmnist-probe-curve "
        "outputs/robustness-benchmark --config digits --seeds 2 --labels-per-class 5 "
        "--strategies scratch,gan-finetune --epsilons 0,0.1 --pgd-steps 2 --images 50 "
        "--adversarial-steps 2 --set transfer.cv_folds=2 --set transfer.max_epochs=2 "
        "--set transfer.bn_images=200",
        "digits stands in for Fashion-MNIST; the tiny GAN above; two seeds, two PGD steps"),
    "gantransfer attack outputs/fashion-mnist-benchmark/models/gan-finetune_lpc-10_seed-0.keras "
    "--epsilons 0,0.01,0.02,0.05,0.1 --picture-epsilon 0.05": (
        "gantransfer attack outputs/fashion-mnist-benchmark/models/gan-linear-probe_lpc-10_seed-0"
        ".keras --epsilons 0,0.05 --picture-epsilon 0.05 --images 50",
        "the tiny benchmark above saved no gan-finetune model; its probe is attacked instead"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-benchmark "
    "--seeds 3 --labels-per-class 10 --strategies scratch --variants "
    "trunk-l2-1e-4,trunk-l2-1e-3,trunk-dropout": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-benchmark --config digits --seeds 2 --labels-per-class 5 --strategies "
        "scratch --variants trunk-l2-1e-3 --set transfer.cv_folds=2 --set transfer.max_epochs=2 "
        "--set transfer.bn_images=200", "digits stands in for Fashion-MNIST; two seeds, one variant"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-benchmark "
    "--seeds 5 --labels-per-class 10,100 --strategies gan-linear-probe,random-linear-probe,"
    "pixels-linear --variants no-probe-shift": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-benchmark --config digits --seeds 2 --labels-per-class 5 --strategies "
        "pixels-linear --variants no-probe-shift --set transfer.cv_folds=2 "
        "--set transfer.probe_shift=1", "digits stands in for Fashion-MNIST; two seeds, pixels"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-probe-shift "
    "--seeds 5 --labels-per-class 10 --strategies gan-linear-probe,random-linear-probe,"
    "pixels-linear --variants probe-shift-2px": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-probe-shift --config digits --seeds 1 --labels-per-class 5 --strategies "
        "pixels-linear --variants probe-shift-2px --set transfer.cv_folds=2",
        "digits stands in for Fashion-MNIST; one seed, pixels (its copies need no trunk)"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-probe-shift100 "
    "--seeds 3 --labels-per-class 100 --strategies gan-linear-probe,random-linear-probe "
    "--variants probe-shift-2px": (
        None, "the command above at 100 labels per class: the same script and variant, which "
              "the line above runs with tiny settings"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-shift10 "
    "--seeds 5 --labels-per-class 10 --strategies scratch,gan-finetune --variants "
    "shift-1px,shift-2px": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-shift10 --config digits --seeds 1 --labels-per-class 5 --strategies "
        "gan-finetune --variants shift-2px --set transfer.cv_folds=2 --set transfer.max_epochs=2 "
        "--set transfer.bn_images=200", "digits stands in for Fashion-MNIST; one seed, "
        "gan-finetune (whose folds train through the pixels with the shifts), one variant"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-shift100 "
    "--seeds 3 --labels-per-class 100 --strategies scratch,gan-finetune --variants "
    "shift-2px,shift-1px": (
        None, "the command above at 100 labels per class: the same script and variants, which "
              "the line above runs with tiny settings"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-100 --seeds "
    "3 --labels-per-class 100 --strategies scratch,gan-finetune --variants rates-3e-4,flip": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-100 --config digits --seeds 1 --labels-per-class 5 --strategies scratch "
        "--variants flip --set transfer.cv_folds=2 --set transfer.max_epochs=2 "
        "--set transfer.bn_images=200", "digits stands in for Fashion-MNIST; one seed, scratch, "
        "one variant (the other changes only the rates tried)"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-heads "
    "--seeds 5 --labels-per-class 10,100 --strategies gan-frozen,random-frozen --variants "
    "no-probe-shift": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-heads --config digits --seeds 1 --labels-per-class 5 --strategies "
        "random-frozen --variants no-probe-shift --set transfer.cv_folds=2 "
        "--set transfer.max_epochs=2 --set transfer.bn_images=200 --set transfer.probe_shift=1",
        "digits stands in for Fashion-MNIST; one seed, the random trunk"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-heads100 "
    "--seeds 3 --labels-per-class 100 --strategies scratch,gan-frozen,gan-finetune,random-frozen "
    "--variants head-pooled": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-heads100 --config digits --seeds 1 --labels-per-class 5 --strategies "
        "gan-frozen --variants head-pooled --set transfer.cv_folds=2 --set transfer.max_epochs=2 "
        "--set transfer.bn_images=200", "digits stands in for Fashion-MNIST; one seed, gan-frozen"),
    "gantransfer transfer --gan-run outputs/fashion-mnist-benchmark/gan --config fashion_mnist "
    "--labels-per-class 10 --seeds 5 --output-dir outputs/fashion-mnist-semisupervised "
    "--strategies gan-semisupervised,random-semisupervised,gan-linear-probe": (
        "gantransfer transfer --gan-run outputs/fmnist-gan --config digits --labels-per-class 5 "
        "--seeds 1 --strategies gan-semisupervised,random-semisupervised --set "
        "transfer.semisupervised_steps=4 --set transfer.semisupervised_batch_size=32 "
        f"--output-dir outputs/fashion-mnist-semisupervised {TINY_TRANSFER} --quiet",
        "the tiny GAN above on digits stands in for the benchmark's; the two semi-supervised "
        "GANs, one budget and seed, and a few steps"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-scratch-width10 "
    "--seeds 5 --labels-per-class 10 --strategies scratch "
    "--variants scratch-width-0.25,scratch-width-0.125 --defaults-from outputs/fashion-mnist-benchmark": (
        None, "scratch's widths with the benchmark's models as the baseline: the same script and "
              "variants, which the digits line below runs with tiny settings; test_paired_runs.py "
              "runs --defaults-from"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-scratch-width100 "
    "--seeds 5 --labels-per-class 100 --strategies scratch "
    "--variants scratch-width-0.25,scratch-width-0.125 --defaults-from outputs/fashion-mnist-benchmark": (
        None, "the line above at 100 labels per class"),
    "python benchmarks/bench_care.py outputs/digits-gan outputs/care-digits-width --config digits "
    "--seeds 5 --labels-per-class 10,50 --strategies scratch --set transfer.scratch_width=null "
    "--variants scratch-width-0.125,scratch-width-0.25": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-digits-width --config digits --seeds 1 --labels-per-class 5 --strategies "
        "scratch --set transfer.scratch_width=null --variants scratch-width-0.125,scratch-width-0.25 "
        "--set transfer.cv_folds=2 "
        "--set transfer.max_epochs=2 --set transfer.bn_images=200",
        "the benchmark chain's tiny digits GAN stands in for the preset's; one seed, one budget"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-gap10 "
    "--seeds 5 --labels-per-class 10 --strategies scratch --variants head-gap "
    "--defaults-from outputs/fashion-mnist-benchmark": (
        None, "the command above with another head and the benchmark's models as the baseline: "
              "the same script, which the line above runs with tiny settings; test_paired_runs.py "
              "runs --defaults-from"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-drop10 "
    "--seeds 3 --labels-per-class 10 --strategies scratch,gan-frozen,gan-finetune,random-frozen "
    "--variants dropout": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-drop10 --config digits --seeds 1 --labels-per-class 5 --strategies "
        "random-frozen --variants dropout --set transfer.cv_folds=2 --set transfer.max_epochs=2 "
        "--set transfer.bn_images=200", "digits stands in for Fashion-MNIST; one seed, the "
        "random trunk"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-drop100 "
    "--seeds 3 --labels-per-class 100 --strategies scratch --variants dropout": (
        None, "the command above with scratch at 100 labels per class: the same script and variant, "
              "which the line above runs with tiny settings"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-ens10 "
    "--seeds 5 --labels-per-class 10 --strategies scratch,gan-frozen,gan-finetune,random-frozen "
    "--variants ensemble-5": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-ens10 --config digits --seeds 2 --labels-per-class 5 --strategies scratch "
        "--variants ensemble-5 --set transfer.cv_folds=2 --set transfer.max_epochs=2 "
        "--set transfer.bn_images=200", "digits stands in for Fashion-MNIST; two seeds, scratch"),
    "python benchmarks/bench_care.py outputs/fashion-mnist-benchmark/gan outputs/care-shiftens10 "
    "--seeds 5 --labels-per-class 10 --strategies scratch --variants shift-1px-ensemble-5": (
        None, "the command above with random shifts as well: the same script and ensembles, which "
              "the line above runs with tiny settings"),
    "gantransfer train-gan --output-dir outputs/digits-gan": (
        f"gantransfer train-gan --epochs 1 --output-dir outputs/digits-gan {TINY_GAN}", "tiny"),
    "python benchmarks/bench_care.py outputs/digits-gan outputs/care-digits --config digits "
    "--seeds 3 --labels-per-class 10,50 --strategies scratch,gan-frozen,gan-finetune,random-frozen "
    "--variants shift-1px-ensemble-5": (
        f"{sys.executable} {ROOT}/benchmarks/bench_care.py outputs/fmnist-probe-curve "
        "outputs/care-digits --config digits --seeds 1 --labels-per-class 5 --strategies "
        "scratch,gan-frozen --variants shift-1px-ensemble-5 --set transfer.cv_folds=2 "
        "--set transfer.max_epochs=2 --set transfer.bn_images=200",
        "the benchmark chain's tiny digits GAN stands in for the one the line above trains (the "
        "other chain runs that); one seed, two strategies"),
    "python benchmarks/paired_runs.py outputs/care-ens10/defaults outputs/care-ens10/ensemble-5": (
        f"{sys.executable} {ROOT}/benchmarks/paired_runs.py outputs/care-ens10/defaults "
        "outputs/care-ens10/ensemble-5", "as written, on the tiny care run above (digits)"),
    "python benchmarks/bench_test_shift.py outputs/fashion-mnist-benchmark": (
        f"{sys.executable} {ROOT}/benchmarks/bench_test_shift.py outputs/care-benchmark/defaults",
        "the models of the tiny care run above (digits) stand in for the benchmark's"),
    "bash benchmarks/bench_fashion_mnist.sh outputs/fashion-mnist-benchmark": (
        f"bash {ROOT}/benchmarks/bench_fashion_mnist.sh {{cwd}}/outputs/fashion-mnist-benchmark "
        "--config digits --labels-per-class 10 --seeds 1 --strategies scratch,gan-linear-probe "
        f"{TINY_GAN} {TINY_TRANSFER} {NO_GAN_METRICS}",
        "digits stands in for Fashion-MNIST; one GAN epoch; tiny"),
}
# A command that needs another's output runs after it: train-gan examples make outputs/fmnist-gan.
FIRST = ("gantransfer train-gan --config configs/fashion_mnist.yaml --output-dir outputs/fmnist-gan",
         "gantransfer train-gan --output-dir outputs/fmnist-gan --resume --epochs 20")


def blocks() -> list[tuple[str, str]]:
    return [(lang, text) for lang, text in BLOCK.findall(README.read_text())]


def bash_commands() -> list[str]:
    """Every command line of the README's bash blocks, once each (one shown in two places runs
    once), in order: continuations joined, comments dropped."""
    commands = []
    for lang, text in blocks():
        if lang != "bash":
            continue
        for line in text.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            if line:
                commands.append(" ".join(line.split()))
    return list(dict.fromkeys(commands))


def kind(lang: str, text: str) -> str:
    if lang == "python":
        return "python"
    if lang == "bash":
        return "bash"
    if text.startswith("$ gantransfer"):
        return "transcript"
    if text.startswith("gantransfer "):
        return "synopsis"
    return "unknown"


def test_every_block_is_of_a_kind_this_file_runs():
    kinds = [kind(lang, text) for lang, text in blocks()]
    assert "unknown" not in kinds, [text[:60] for (lang, text), k in zip(blocks(), kinds)
                                    if k == "unknown"]
    assert kinds.count("python") == 2  # the end-to-end script and the pieces


def test_the_two_chains_split_the_readme_commands():
    commands = bash_commands()
    benchmarks = [c for c in commands if in_benchmark_chain(c)]
    assert any("bench_rotation" in c for c in benchmarks)
    assert any("fmnist-probe-curve" in c and c.startswith("gantransfer train-gan") for c in benchmarks)
    assert not any(in_benchmark_chain(c) for c in FIRST)


def test_the_substitution_table_matches_the_readme():
    commands = set(bash_commands())
    stale = [command for command in RUN_AS if command not in commands]
    assert not stale, f"RUN_AS entries the README no longer has: {stale}"
    assert set(FIRST) <= commands


@pytest.mark.parametrize("command", [TEST_COMMAND, JAX_TEST_COMMAND])
def test_the_test_commands_are_what_ci_runs(command):
    assert command in bash_commands()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_every_link_within_the_readme_reaches_a_heading():
    text = README.read_text()
    # GitHub's anchors: the heading in lower case, punctuation but hyphens dropped, spaces hyphens.
    anchors = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links and not [link for link in links if link not in anchors]


@pytest.mark.parametrize("synopsis", [text for lang, text in blocks()
                                      if kind(lang, text) == "synopsis"])
def test_every_flag_in_a_synopsis_exists(synopsis):
    command = synopsis.split()[1]
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    flags = set(re.findall(r"--[a-z][a-z0-9-]*", synopsis))
    assert flags and all(flag in result.output for flag in flags), \
        sorted(f for f in flags if f not in result.output)
    # ... and the synopsis leaves none of the command's flags out
    options = {name for param in cli.commands[command].params if isinstance(param, click.Option)
               for name in (*param.opts, *param.secondary_opts) if name.startswith("--")}
    assert options - {"--help"} <= flags, sorted(options - {"--help"} - flags)


def test_the_error_transcript_is_what_the_command_says():
    (text,) = [text for lang, text in blocks() if kind(lang, text) == "transcript"]
    command, expected = text.splitlines()[:2]
    result = CliRunner().invoke(cli, shlex.split(command)[2:])
    assert result.exit_code == 1
    shown = expected.removesuffix("...")
    assert result.output.startswith(shown), (result.output, shown)


def _make_folders(cwd: Path) -> None:
    rng = np.random.default_rng(0)
    for name, labeled in (("unlabeled_photos", False), ("my_labeled_photos", True)):
        for i in range(24):
            folder = cwd / name / (f"class_{i % 3}" if labeled else "")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (20, 20, 3), dtype="uint8")
            pixels[..., i % 3] = 40 * (i % 3 + 1)  # a colour per class, so there is a signal
            Image.fromarray(pixels).save(folder / f"photo_{i:02d}.png")


# Benchmark scripts that start no process and change nothing process-wide (no backend, precision
# or environment setting) run in the test's own process, as `gantransfer` commands do: a fresh
# interpreter would spend about 5 seconds importing TensorFlow for each.
IN_PROCESS_SCRIPTS = {"bench_attack.py", "bench_cached_features.py", "bench_care.py",
                      "bench_probe.py", "bench_robustness.py", "bench_rotation.py",
                      "bench_view_cache.py", "paired_runs.py"}


def _run(command: str, cwd: Path) -> str | None:
    argv = shlex.split(command.replace("{cwd}", str(cwd)))
    settings = {}
    while "=" in argv[0]:  # KERAS_BACKEND=jax gantransfer ...: a fresh process with that setting
        key, value = argv.pop(0).split("=", 1)
        settings[key] = value
    if settings and argv[0] == "gantransfer":
        argv = [sys.executable, "-m", "gantransfer", *argv[1:]]
    elif argv[0] == "gantransfer":
        result = CliRunner().invoke(cli, argv[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{command}\n{result.output[-3000:]}"
        return
    elif not settings and argv[0] == sys.executable and Path(argv[1]).name in IN_PROCESS_SCRIPTS:
        _run_script(argv[1:], command)
        return
    env = {**os.environ, "KERAS_HOME": str(cwd / "keras-home"),
           "GANTRANSFER": str(Path(sys.executable).parent / "gantransfer"), "PYTHON": sys.executable,
           "EPOCHS": "1", "PYTHONPATH": str(ROOT), **settings}
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr  # what a process of its own printed


def _run_script(argv: list[str], command: str) -> None:
    """Runs a benchmark script as ``python SCRIPT ARGS`` would, in this process (see
    IN_PROCESS_SCRIPTS), in the current folder; it fails the test as a non-zero exit would."""
    script = Path(argv[0])
    printed = io.StringIO()
    with mock.patch.object(sys, "argv", [str(script), *argv[1:]]), \
            mock.patch.object(sys, "path", [str(script.parent), *sys.path]), \
            contextlib.redirect_stdout(printed):
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as stop:
            assert stop.code in (None, 0), f"{command}\n{printed.getvalue()[-2000:]}\n{stop.code}"


def in_benchmark_chain(command: str) -> bool:
    """The benchmark scripts and the GAN runs they read: test_readme_benchmarks.py and
    test_readme_benchmark_scripts.py run these (see reads_gan_runs), on
    another pytest-xdist worker than test_readme_commands.py, which runs the rest."""
    return any(part in command for part in ("benchmarks/", "outputs/fmnist-probe-curve",
                                            "outputs/fmnist-ssgan",
                                            "outputs/fashion-mnist-benchmark/models"))


# README commands that need TensorFlow installed, and why; where it is not (a JAX-only install),
# they are left out.
NEEDS_TENSORFLOW = {
    "python benchmarks/bench_train_gan.py": "its baseline is TensorFlow's own tf.function loop",
}


def runnable(command: str) -> bool:
    """Whether this install can run the README command (see NEEDS_TENSORFLOW)."""
    return command not in NEEDS_TENSORFLOW or importlib.util.find_spec("tensorflow") is not None


def reads_gan_runs(command: str) -> bool:
    """A benchmark command that reads (or makes) the chain's GAN runs in ``outputs/``; the others
    stand alone, and test_readme_benchmark_scripts.py runs them on the other pytest-xdist worker."""
    return "outputs/" in command


def benchmark_commands(standalone: bool) -> list[str]:
    """The README's benchmark-chain commands that stand alone, or those that read the GAN runs,
    as each test runs them (those RUN_AS leaves out, and those this install cannot run, omitted)."""
    return [c for c in bash_commands() if in_benchmark_chain(c) and runnable(c)
            and reads_gan_runs(c) != standalone and RUN_AS.get(c, (c,))[0] is not None]


def run_commands(tmp_path: Path, benchmarks: bool, standalone: bool | None = None) -> list[str]:
    """Runs one chain of README commands (as written, or as RUN_AS says) in ``tmp_path``, in order;
    returns those it ran: all but the test suites' own and what this install cannot run. With
    ``benchmarks``, ``standalone`` picks the benchmark commands that read no GAN run (True) or
    those that do (False)."""
    _make_folders(tmp_path)
    commands = [c for c in bash_commands() if in_benchmark_chain(c) == benchmarks
                and (standalone is None or reads_gan_runs(c) != standalone)]
    ordered = [c for c in FIRST if c in commands] + [c for c in commands if c not in FIRST]
    if benchmarks:  # the GANs the benchmark scripts read are trained first
        ordered.sort(key=lambda c: not c.startswith("gantransfer train-gan"))
    ran = []
    for command in ordered:
        instead, _why = RUN_AS.get(command, (command, "as written"))
        if instead is None or not runnable(command):
            continue
        _run(instead, tmp_path)
        ran.append(command)
    return ran


PIECES_AS = [  # the pieces block names Fashion-MNIST and full-length training: made tiny here
    ('gt.load_dataset("fashion_mnist", image_size=32', 'gt.load_dataset("digits", image_size=32'),
    ('gt.load_config("fashion_mnist")',
     'gt.load_config("digits", ["train.epochs=1", "gan.width=0.125", "gan.latent_dim=8", '
     '"train.verbose=0", "train.sample_images=4", "transfer.strategies=scratch,gan-frozen", '
     '"transfer.labels_per_class=10", "transfer.seeds=1", "transfer.max_epochs=2"])'),
    ('weights="imagenet")', 'weights="none")'),  # offline: no ImageNet download
]


@pytest.mark.slow
def test_the_pieces_block_runs(tmp_path):
    (pieces,) = [text for lang, text in blocks() if lang == "python" and "readme-script" not in text
                 and "gt.compare(config" not in text]
    for old, new in PIECES_AS:
        assert old in pieces, f"the pieces block no longer says {old!r}"
        pieces = pieces.replace(old, new)
    result = subprocess.run([sys.executable, "-c", pieces], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "outputs/fmnist-transfer/report.html").is_file()


def readme_script() -> str:
    text = README.read_text()
    match = re.search(r"<!-- readme-script -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its <!-- readme-script --> block"
    return match.group(1)


def test_the_script_is_about_fifteen_lines():
    lines = [line for line in readme_script().splitlines() if line.strip()]
    assert 10 <= len(lines) <= 20


@pytest.mark.slow
def test_readme_script_runs(tmp_path):
    result = subprocess.run([sys.executable, "-c", readme_script()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    accuracies = dict(re.findall(r"^\s*([a-z-]+): (\d\.\d{3})$", out, re.M))
    assert set(accuracies) == {"scratch", "gan-frozen", "gan-linear-probe", "random-linear-probe"}
    # Ten classes: chance is 0.1. Even this tiny run learns the digits, every strategy well above.
    assert all(float(value) > 0.3 for value in accuracies.values()), accuracies
    assert "(16, 32, 32, 1)" in out and "'block1_conv'" in out and "['head_dense']" in out
    assert "conv: 16" in out
    assert (tmp_path / "outputs/readme-compare/report.html").is_file()

