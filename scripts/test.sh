#!/usr/bin/env bash
# test.sh installs what the tests need and runs the whole suite against real
# parts: libtorch and TorchScript checkpoints made by PyTorch, the real
# Fashion-MNIST files, Temporal servers (the SDK's test server and vog's
# embedded one), and DuckDB as an independent Parquet reader.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PATH:/usr/local/go/bin"
(cd tools/duckdb && npm ci --no-audit --no-fund --silent)

# Tests that need these fail rather than skip when they are missing.
export VOG_REQUIRE_TORCH=1 VOG_REQUIRE_DUCKDB=1
export VOG_ENGINE_LIB="$PWD/build/libvogtorch.so" VOG_BIN="$PWD/build/vog"

go vet ./...
# Pure packages build and pass without cgo, libtorch or a server.
CGO_ENABLED=0 go test -count=1 ./score/... ./shard/... ./storage/...
go test -count=1 -race -timeout 20m ./score/... ./shard/... ./storage/... ./dataset/... ./workflows/... ./activities/...
go test -count=1 -timeout 30m ./...
# Every benchmark once, so none rots (figures: docs/benchmarks.md); one
# package at a time, since each compares rates measured in the same run.
VOG_BENCH_ROUNDS=1 go test -p 1 -count=1 -run '^$' -bench . -benchtime 1x -timeout 20m ./...
