#!/usr/bin/env bash
# gpu-check.sh checks vog on a GPU machine (../shared/gpu/README.md), in one
# command: it builds the engine against the machine's pip torch (CUDA),
# checks its gradients against PyTorch's on the committed fixtures (caller's
# memory, staged, channels-last), benchmarks it against PyTorch eager on a
# ResNet-50 at 224x224 for each precision and memory format, interleaved,
# measures one CPU core's JPEG preprocessing (the dataset reader against
# PIL + torchvision) and from it the cores one GPU needs for K = 1, 3 and 8
# checkpoints, runs the worker's shard activity on synthetic JPEGs against
# the bare engine, and scores those JPEGs end to end with
# `vog run --device cuda` (embedded Temporal server, local files).
#
# Go cannot be built there. Here:   scripts/gpu-pack.sh
# There, carrying build/gpu-carry:  scripts/gpu-check.sh
#
# Figures and logs go to $OUT (or ./gpu-check): record them, with the device
# name, in docs/benchmarks.md. DEVICE, IMAGES, BATCH, ITERS, ROUNDS and ARCH
# (cuda, 2048, 128, 10, 3, resnet50: any torchvision.models name) shrink it
# for a smoke test on a CPU machine, as scripts/test.sh does (bf16 ResNet-50
# passes take seconds each on a CPU without bf16 units):
#
#   DEVICE=cpu IMAGES=16 BATCH=4 ITERS=1 ROUNDS=1 ARCH=resnet18 scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda} IMAGES=${IMAGES:-2048} BATCH=${BATCH:-128} ITERS=${ITERS:-10} ROUNDS=${ROUNDS:-3} ARCH=${ARCH:-resnet50}
# A failed step is reported and the others still run (a GPU machine is
# lent briefly: every figure counts); the exit status says if any failed.
failed=0
csv=$out/figures.csv
echo "step,precision,channels_last,metric,value" >"$csv"
# figures STEP PRECISION CL FILE appends the value/unit pairs of FILE's
# benchmark line to figures.csv.
figures() {
  grep '^Benchmark' "$4" | tail -1 |
    awk -v s="$1" -v p="$2" -v c="$3" '{for (i = 5; i < NF; i += 2) printf "%s,%s,%s,%s,%s\n", s, p, c, $(i + 1), $i}' >>"$csv"
}
root=$PWD
bin=$root/build/gpu
mkdir -p "$bin"

echo "== machine"
nvidia-smi || echo "no nvidia-smi"
"$PY" -c 'import torch, torchvision; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
command -v g++ || echo "no g++"
nproc
for t in torchbench.test shardbench.test datasetbench.test vog libturbojpeg.so.0; do
  if [ ! -f build/gpu-carry/$t.xz ]; then
    [ "$t" = libturbojpeg.so.0 ] && continue # packed where the packing machine had it
    echo "build/gpu-carry/$t.xz missing: run scripts/gpu-pack.sh here first"
    exit 1
  fi
  # xz, else Python's lzma: either may be missing from a bare image.
  xz -dc build/gpu-carry/$t.xz >"$bin/$t" 2>/dev/null ||
    "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' build/gpu-carry/$t.xz "$bin/$t" || exit 1
  chmod +x "$bin/$t"
done

# libjpeg-turbo decodes vog's JPEGs (as it does PIL's): the machine's
# libturbojpeg.so.0, else the packed one; without either, Go's decoder (the
# preprocessing step below says which).
if [ -z "${VOG_TURBOJPEG:-}" ] && ! (/sbin/ldconfig -p 2>/dev/null | grep -q 'libturbojpeg\.so\.0 ') && [ -f "$bin/libturbojpeg.so.0" ]; then
  export VOG_TURBOJPEG=$bin/libturbojpeg.so.0
fi
echo "libturbojpeg: ${VOG_TURBOJPEG:-libturbojpeg.so.0 from the dynamic loader}"

echo "== engine build against pip torch"
PYTHON="$PY" engine/torchlib/build.sh "$bin" || exit 1
export VOG_ENGINE_LIB=$bin/libvogtorch.so VOG_PYTHON=$PY VOG_REQUIRE_TORCH=1

echo "== gradients against PyTorch's (fixtures), on $DEVICE"
(cd engine/torch && VOG_TEST_DEVICE=$DEVICE "$bin/torchbench.test" -test.run 'TestGradientsMatchPyTorch|TestBadInput|TestTF32IsOneJobAtATime|TestCheckDevice' -test.v) | tee "$out/agreement.txt" || failed=1

echo "== $ARCH checkpoints and synthetic JPEGs"
"$PY" - "$bin" "$IMAGES" "$ARCH" <<'PYEOF'
import os, sys, torch, torchvision, torchvision.io as io
d, n, arch = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(f"{d}/ckpt", exist_ok=True)
for k in range(4):  # four "checkpoints": different random weights
    torch.manual_seed(k)
    m = getattr(torchvision.models, arch)().eval()
    torch.jit.trace(m, torch.rand(2, 3, 224, 224)).save(f"{d}/ckpt/epoch_{k + 1}.pt")
g = torch.Generator().manual_seed(0)
for i in range(n):
    c = f"{d}/images/class{i % 2}"
    os.makedirs(c, exist_ok=True)
    img = torch.randint(0, 256, (3, 375, 500), dtype=torch.uint8, generator=g)
    io.write_file(f"{c}/{i:05d}.jpg", io.encode_jpeg(img, quality=90))
print(f"4 checkpoints, {n} JPEGs of 500x375")
PYEOF
[ $? -eq 0 ] || exit 1

# bench STEP LOG DIR BINARY BENCHMARK [VAR=VALUE...] runs one benchmark of a
# test binary in DIR on $ARCH in $precision and $cl, with the extra
# environment given, logs it to $out/LOG and records its figures.
bench() {
  local step=$1 log=$2 dir=$3 binary=$4 name=$5
  shift 5
  (cd "$dir" && env VOG_BENCH_MODEL="$bin/ckpt/epoch_1.pt" VOG_BENCH_DEVICE="$DEVICE" VOG_BENCH_BATCH="$BATCH" \
    VOG_BENCH_PRECISION="$precision" VOG_BENCH_CHANNELS_LAST="$cl" "$@" \
    "$bin/$binary" -test.run '^$' -test.bench "$name" -test.benchtime 1x) | tee "$bin/last.txt" || failed=1
  cat "$bin/last.txt" >>"$out/$log"
  figures "$step" "$precision" "$cl" "$bin/last.txt"
}

echo "== $ARCH 224x224: engine against PyTorch eager, interleaved (batch $BATCH)"
for cfg in fp32:0 tf32:0 tf32:1 bf16:0 bf16:1; do
  precision=${cfg%:*} cl=${cfg#*:}
  if [ "$precision" = tf32 ] && [ "$DEVICE" = cpu ]; then
    continue # TF32 exists only on CUDA: a CPU worker refuses it
  fi
  echo "-- precision $precision, channels-last $cl"
  bench engine resnet50.txt engine/torch torchbench.test GradientsModel VOG_BENCH_SHAPE=3,224,224 VOG_BENCH_ITERS="$ITERS"
done

echo "== JPEG preprocessing: the dataset reader against PIL + torchvision, 500x375 JPEGs, resize 256, crop 224, interleaved"
(cd dataset && VOG_BENCH_ROUNDS="$ROUNDS" "$bin/datasetbench.test" -test.run '^$' -test.bench PreprocessVsTorchvision -test.benchtime 1x) |
  tee "$bin/last.txt" || failed=1
cat "$bin/last.txt" >>"$out/preprocess.txt"
figures preprocess "" "" "$bin/last.txt"

# Each decoded image serves all K checkpoints of a job: one GPU keeps
# G / K / P cores busy decoding, G the engine's examples/s on it and P one
# core's images/s.
echo "== cores one GPU needs: engine examples/s / K / one core's images/s"
percore=$(awk -F, '$1 == "preprocess" && $4 == "vog-img/s/core" { print $5 }' "$csv")
if [ -z "$percore" ]; then
  echo "no per-core preprocessing rate (the step above failed)"
  failed=1
else
  echo "one core preprocesses $percore images/s ($(sed -n 's/.*vog decodes JPEGs with //p' "$bin/last.txt" | head -1))"
  awk -F, -v p="$percore" '$1 == "engine" && $4 == "engine-ex/s" {
    for (k = 1; k <= 8; k++) if (k == 1 || k == 3 || k == 8) printf "sizing,%s,%s,cores-K%d,%.2f\n", $2, $3, k, $5 / k / p }' "$csv" >"$bin/sizing.csv"
  awk -F, -v p="$percore" 'BEGIN { printf "%-9s %-13s %11s %7s %7s %7s\n", "precision", "channels-last", "engine ex/s", "K=1", "K=3", "K=8" }
    $1 == "engine" && $4 == "engine-ex/s" { printf "%-9s %-13s %11.1f %7.2f %7.2f %7.2f\n", $2, $3, $5, $5 / p, $5 / 3 / p, $5 / 8 / p }' "$csv"
  cat "$bin/sizing.csv" >>"$csv"
fi

echo "== the worker's shard activity on synthetic JPEGs against the bare engine ($ARCH, K=4, $DEVICE)"
for cfg in fp32:0 bf16:1; do
  precision=${cfg%:*} cl=${cfg#*:}
  echo "-- precision $precision, channels-last $cl"
  bench shard worker.txt activities shardbench.test ShardOnJPEGs VOG_BENCH_IMAGES=$((IMAGES / 2)) VOG_BENCH_K=4 VOG_BENCH_ROUNDS="$ROUNDS"
done

echo "== vog run --device $DEVICE: $IMAGES JPEGs, 4 $ARCH checkpoints, embedded Temporal server"
for cfg in fp32:0 bf16:1; do
  precision=${cfg%:*} cl=${cfg#*:}
  flags=(--precision "$precision")
  [ "$cl" = 1 ] && flags+=(--channels-last)
  echo "-- ${flags[*]}"
  rm -rf "$bin/out"
  start=$(date +%s.%N)
  "$bin/vog" run --format imagefolder --dataset "$bin/images" --checkpoints "$bin/ckpt" --out "$bin/out" \
    --resize 256 --crop 224 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 \
    --shard-size $((IMAGES / 4)) --batch-size "$BATCH" --device "$DEVICE" --engine-lib "$VOG_ENGINE_LIB" \
    --state-dir "$bin/state" "${flags[@]}" 2>&1 | tee "$bin/last.txt" || failed=1
  wall=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { print a - b }')
  cat "$bin/last.txt" >>"$out/vogrun.txt"
  sed -n 's/^time: plan \([0-9.]*\)s, score \([0-9.]*\)s, reduce \([0-9.]*\)s$/\1 \2 \3/p' "$bin/last.txt" |
    awk -v p="$precision" -v c="$cl" -v n="$IMAGES" -v w="$wall" '{
      printf "vog-run,%s,%s,plan-s,%s\nvog-run,%s,%s,score-s,%s\nvog-run,%s,%s,reduce-s,%s\n", p, c, $1, p, c, $2, p, c, $3
      printf "vog-run,%s,%s,wall-s,%.1f\nvog-run,%s,%s,img/s,%.1f\n", p, c, w, p, c, n / w }' >>"$csv"
done
echo "== figures"
cat "$csv"
if [ "$failed" = 0 ]; then echo "== done: $out"; else echo "== done, with failures (above): $out"; fi
exit "$failed"
