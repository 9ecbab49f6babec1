#!/usr/bin/env bash
# The Fashion-MNIST comparison behind the README's results table.
#
# A DCGAN trains on the 60,000 unlabeled training images (the paper's 64-128-256 at 32x32, with the
# preset's rotation self-supervision, 3 epochs), with the linear probe scoring its discriminator
# after every epoch (train.probe_every=1); the best-scoring epoch's discriminator seeds the gan-*
# strategies. Then all eleven strategies run at 10 and 100 labels per class over 5 seeds, each with
# its default head, every choice cross-validated over its budget, and a refit; with the preset,
# every network trains under random shifts of up to a pixel (frozen heads on cached views) and is
# the mean of 5 refits. The eleven include the semi-supervised GAN and its random-trunk control,
# which train a GAN each (about 10 minutes a model on 2 CPU cores, 200 of the run's minutes). The
# ImageNet strategies use MobileNet v1, alpha 0.25, at 128 px. Offline, its genuine ImageNet weights
# are taken from ../shared/data/keras-models/ when that folder exists (copied into
# $KERAS_HOME/models/). Last, bench_test_shift.py scores every saved model again with test-time
# shifts (transfer.test_shift=1), paired with its score as trained.
#
# Usage: bash benchmarks/bench_fashion_mnist.sh [OUTPUT_DIR] [extra gantransfer compare flags...]
# With --gan-per-seed added, each seed's gan-* models start from a GAN of their own (5 GANs), so the
# verdict's intervals include the GAN's run-to-run variation as well. An interrupted run continues
# with --resume added: the GAN and the finished models are kept, and a run stopped during the test
# shifts goes straight on to them. A --strategies flag runs fewer.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-outputs/fashion-mnist-benchmark}"
shift || true
keras_home="${KERAS_HOME:-$HOME/.keras}"
shared="$(cd .. && pwd)/shared/data/keras-models"
if [ -d "$shared" ]; then
  mkdir -p "$keras_home/models"
  cp -n "$shared"/*.h5 "$keras_home/models/" 2>/dev/null || true
fi
gantransfer="${GANTRANSFER:-.venv/bin/gantransfer}"
python="${PYTHON:-.venv/bin/python}"
all="$("$python" -c 'from gantransfer.registry import STRATEGIES; print(",".join(STRATEGIES))')"
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
started=$SECONDS
status=0
{ "$gantransfer" compare --config fashion_mnist --epochs "${EPOCHS:-3}" \
  --labels-per-class 10,100 --seeds "${SEEDS:-5}" --set train.probe_every=1 \
  --backbone mobilenet --backbone-alpha 0.25 --backbone-input-size 128 \
  --strategies "$all" --output-dir "$out" "$@" 2>&1 1>&3 | tee "$errors" >&2; } 3>&1 \
  || status=$?  # its errors are shown as they come, and kept for the check below
# A run stopped during the test shifts below is complete, and --resume adds nothing to it: the
# comparison says so and stops, and the script goes on to the test shifts. Any other error stops.
if [ "$status" -ne 0 ]; then
  grep -q "is complete: nothing to resume" "$errors" || exit "$status"
  echo "the comparison in $out is complete: on to its test shifts"
fi
echo "compare: $((SECONDS - started)) s"
sed -n '/^## Verdict/,/^## Skipped/p' "$out/report.md"
time "$python" benchmarks/bench_test_shift.py "$out"
