#!/usr/bin/env bash
# quickstart.sh scores the real Fashion-MNIST training set (60,000 images)
# with the 12 committed checkpoints of a small CNN (testdata/fmnist, made by
# make_fixtures.py with Debian's PyTorch), on an embedded Temporal server,
# local files and the CPU. The result lands in ./vog-out.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=${VOG_OUT:-$PWD/vog-out}
exec build/vog run \
  --format idx \
  --dataset /usr/share/datasets/fashion-mnist/train \
  --checkpoints testdata/fmnist/ckpt \
  --out "$out" \
  --state-dir "$PWD/.state" \
  --progress 5s "$@"
