#!/usr/bin/env bash
# gpu-check.sh checks vog's engine on a GPU machine (../shared/gpu/README.md):
# it builds the engine against the machine's pip torch (CUDA), checks its
# gradients against PyTorch's on the committed fixtures, and benchmarks it
# against PyTorch eager on a ResNet-50 at 224x224, interleaved, in the same
# run. Go cannot be built there: build the test binary here first.
#
#   go test -c -ldflags=-s -o build/torchbench.test ./engine/torch    # here
#   go test -c -ldflags=-s -o build/shardbench.test ./activities      # here
#   scripts/gpu-check.sh                                               # there, carrying build/
#
# Figures and logs go to $OUT (or ./gpu-check): record them, with the device
# name, in docs/benchmarks.md.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
PY=${PYTHON:-python3}
root=$PWD

echo "== machine"
nvidia-smi || echo "no nvidia-smi"
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
command -v g++ || echo "no g++"
for t in torchbench shardbench; do
  [ -x build/$t.test ] || { echo "build/$t.test missing: build it here first (see the top of this script)"; exit 1; }
done

echo "== engine build against pip torch"
PYTHON="$PY" engine/torchlib/build.sh build/gpu || exit 1
export VOG_ENGINE_LIB=$root/build/gpu/libvogtorch.so VOG_PYTHON=$PY VOG_REQUIRE_TORCH=1

echo "== gradients against PyTorch's (fixtures), on cuda"
(cd engine/torch && VOG_TEST_DEVICE=cuda "$root/build/torchbench.test" -test.run 'TestGradientsMatchPyTorch|TestBadInput' -test.v) | tee "$out/agreement.txt"

echo "== ResNet-50 224x224: engine against PyTorch eager, interleaved"
"$PY" - "$root/build/gpu/resnet50.pt" <<'PYEOF'
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet50().eval()
torch.jit.trace(m, torch.rand(2, 3, 224, 224)).save(sys.argv[1])
PYEOF
for precision in fp32 tf32 bf16; do
  echo "-- $precision, batch 128"
  (cd engine/torch && VOG_BENCH_MODEL=$root/build/gpu/resnet50.pt VOG_BENCH_SHAPE=3,224,224 VOG_BENCH_BATCH=128 \
    VOG_BENCH_DEVICE=cuda VOG_BENCH_PRECISION=$precision VOG_BENCH_ITERS=10 \
    "$root/build/torchbench.test" -test.run '^$' -test.bench GradientsModel -test.benchtime 1x) | tee -a "$out/resnet50.txt"
done
echo "== the worker's shard activity on synthetic JPEGs against the bare engine (ResNet-50, cuda)"
(cd activities && VOG_BENCH_MODEL=$root/build/gpu/resnet50.pt VOG_BENCH_DEVICE=cuda VOG_BENCH_IMAGES=1024 VOG_BENCH_K=2 \
  "$root/build/shardbench.test" -test.run '^$' -test.bench ShardOnJPEGs -test.benchtime 1x) | tee "$out/worker.txt"
echo "== done: $out"
