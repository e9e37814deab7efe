#!/usr/bin/env bash
# gpu-pack.sh builds, here, what scripts/gpu-check.sh runs on a GPU machine
# (which has no Go): the engine and shard benchmarks as test binaries, and
# vog itself, stripped and xz-compressed into build/gpu-carry (about 45 MB,
# under the device tool's 64 MB carry limit). Then, on the GPU machine,
# carrying build/gpu-carry:
#
#   scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/gpu-carry
rm -rf "$out" && mkdir -p "$out"
go test -c -ldflags='-s -w' -o "$out/torchbench.test" ./engine/torch
go test -c -ldflags='-s -w' -o "$out/shardbench.test" ./activities
go build -ldflags='-s -w' -o "$out/vog" ./cmd/vog
xz -6 -T0 "$out"/*
du -sh "$out"
