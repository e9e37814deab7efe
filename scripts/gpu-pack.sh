#!/usr/bin/env bash
# gpu-pack.sh builds, here, what scripts/gpu-check.sh runs on a GPU machine
# (which has no Go): the engine, shard and dataset (preprocessing)
# benchmarks as test binaries, vog itself, and this machine's libturbojpeg
# (used there where the machine has none: it needs only glibc 2.14),
# stripped and xz-compressed into build/gpu-carry (about 55 MB, under the
# device tool's 64 MB carry limit). Then, on the GPU machine, carrying
# build/gpu-carry:
#
#   scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/gpu-carry
rm -rf "$out" && mkdir -p "$out"
go test -c -ldflags='-s -w' -o "$out/torchbench.test" ./engine/torch
go test -c -ldflags='-s -w' -o "$out/shardbench.test" ./activities
go test -c -ldflags='-s -w' -o "$out/datasetbench.test" ./dataset
go build -ldflags='-s -w' -o "$out/vog" ./cmd/vog
tj=$( (/sbin/ldconfig -p 2>/dev/null || true) | awk '$1 == "libturbojpeg.so.0" { print $NF; exit }')
if [ -n "$tj" ]; then
  cp -L "$tj" "$out/libturbojpeg.so.0"
else
  echo "gpu-pack.sh: no libturbojpeg.so.0 here (Debian: libturbojpeg0); the GPU check will use the machine's, or Go's decoder" >&2
fi
# XZ_LEVEL: -6 (default) fits the device carry limit; CI, which only unpacks
# them again, takes -1.
xz "${XZ_LEVEL:--6}" -T0 "$out"/*
du -sh "$out"
