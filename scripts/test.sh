#!/usr/bin/env bash
# test.sh installs what the tests need and runs the whole suite against real
# parts: libtorch and TorchScript checkpoints made by PyTorch, the real
# Fashion-MNIST files, Temporal servers (the SDK's test server and vog's
# embedded one), an S3 server, DuckDB as an independent Parquet reader, and
# headless Chromium for the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PATH:/usr/local/go/bin"
(cd tools/duckdb && npm ci --no-audit --no-fund --silent)

# A real S3-compatible server on loopback (versitygw over a temporary
# folder) for the object-storage tests; stopped on exit.
export GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
[ -x "$GOBIN/versitygw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
s3dir=$(mktemp -d)
mkdir "$s3dir/vog-test"
s3port=$((20000 + RANDOM % 20000))
export AWS_ACCESS_KEY_ID=vogtest AWS_SECRET_ACCESS_KEY=vogtestsecret
ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  "$GOBIN/versitygw" --port "127.0.0.1:$s3port" posix "$s3dir" >"$s3dir.log" 2>&1 &
s3pid=$!
trap 'kill $s3pid 2>/dev/null; wait $s3pid 2>/dev/null; rm -rf "$s3dir" "$s3dir.log"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$s3port) 2>/dev/null && break; sleep 0.1; done
export VOG_S3_URL="s3://vog-test?endpoint=http://127.0.0.1:$s3port&region=us-east-1&use_path_style=true"

# Tests that need these fail rather than skip when they are missing.
export VOG_REQUIRE_TORCH=1 VOG_REQUIRE_DUCKDB=1 VOG_REQUIRE_S3=1 VOG_REQUIRE_CHROMIUM=1
export VOG_ENGINE_LIB="$PWD/build/libvogtorch.so" VOG_BIN="$PWD/build/vog"

go vet ./...
# Pure packages build and pass without cgo, libtorch or a server.
CGO_ENABLED=0 go test -count=1 ./score/... ./shard/... ./storage/... ./engine/ ./engine/linear/
go test -count=1 -race -timeout 20m ./score/... ./shard/... ./storage/... ./dataset/... ./workflows/... ./activities/...
go test -count=1 -timeout 30m ./...
# Every benchmark once, so none rots (figures: docs/benchmarks.md); one
# package at a time, since each compares rates measured in the same run.
VOG_BENCH_ROUNDS=1 go test -p 1 -count=1 -run '^$' -bench . -benchtime 1x -timeout 20m ./...
# The GPU check, on the CPU at toy sizes, so that it still runs when a GPU
# machine is lent (packing, unpacking, every step, vog run end to end).
scripts/gpu-pack.sh >/dev/null
gpuout=$(mktemp -d)
if ! DEVICE=cpu IMAGES=16 BATCH=4 ITERS=1 ROUNDS=1 PYTHON=/usr/bin/python3 OUT="$gpuout" scripts/gpu-check.sh >"$gpuout/smoke.log" 2>&1; then
  tail -50 "$gpuout/smoke.log"
  echo "test.sh: scripts/gpu-check.sh failed on the CPU (log above)" >&2
  exit 1
fi
rm -rf "$gpuout" build/gpu
