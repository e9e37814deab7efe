#!/usr/bin/env bash
# test.sh installs what the tests need and runs the whole suite against real
# parts: libtorch and TorchScript checkpoints made by PyTorch, the real
# Fashion-MNIST files, Temporal servers (the SDK's test server and vog's
# embedded one), S3, GCS and Azure Blob servers, DuckDB as an independent
# Parquet reader, and headless Chromium for the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage's time, printed at the end (or where the run stops), so that
# the next slow-down shows where it is.
stages=() stage_name="" stage_at=$SECONDS
stage() {
  [ -z "$stage_name" ] || stages+=("$(printf '%5d s  %s' $((SECONDS - stage_at)) "$stage_name")")
  stage_name=$1 stage_at=$SECONDS
  [ -z "$1" ] || echo "test.sh: $1" >&2
}
print_stages() {
  stage ""
  echo "test.sh: time by stage (total $SECONDS s):"
  printf '  %s\n' "${stages[@]}"
}

stage "setup: packages, the engine, build/vog"
scripts/setup.sh --test
export PATH="$PATH:/usr/local/go/bin"
stage "tools and servers: DuckDB, versitygw, toxiproxy, fake-gcs-server, Azurite"
(cd tools/duckdb && npm ci --no-audit --no-fund --silent)

# A real S3-compatible server on loopback (versitygw over a temporary
# folder) for the object-storage tests; stopped on exit.
export GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
[ -x "$GOBIN/versitygw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
# Shopify's toxiproxy makes the links of the network fault tests
# (cmd/vog/netfault_test.go: partitions, bandwidth, latency); its command
# is named server, so it is installed under a name of its own.
if [ ! -x "$GOBIN/toxiproxy-server" ]; then
  toxibin=$(mktemp -d)
  GOBIN=$toxibin go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0
  mv "$toxibin/server" "$GOBIN/toxiproxy-server"
  rmdir "$toxibin"
fi
s3dir=$(mktemp -d)
mkdir "$s3dir/vog-test"
s3port=$((20000 + RANDOM % 20000))
export AWS_ACCESS_KEY_ID=vogtest AWS_SECRET_ACCESS_KEY=vogtestsecret
ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  "$GOBIN/versitygw" --port "127.0.0.1:$s3port" posix "$s3dir" >"$s3dir.log" 2>&1 &
s3pid=$!
# The servers to stop and the folders to remove on exit; each block adds its
# own. set +e: a server that already died must not cut the cleanup short.
srvpids=("$s3pid") srvdirs=("$s3dir" "$s3dir.log")
trap 'set +e; kill "${srvpids[@]}" 2>/dev/null; wait "${srvpids[@]}" 2>/dev/null; rm -rf "${srvdirs[@]}"; print_stages' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$s3port) 2>/dev/null && break; sleep 0.1; done
export VOG_S3_URL="s3://vog-test?endpoint=http://127.0.0.1:$s3port&region=us-east-1&use_path_style=true"

# Real GCS and Azure Blob servers on loopback, in memory, for the gs:// and
# azblob:// tests; stopped on exit. fake-gcs-server: gcsblob talks to
# $STORAGE_EMULATOR_HOST without credentials; the bucket is a folder of
# -data; reads go to the "public host", so that is the server too. Azurite
# (3.35, the last for Node 18, Debian 12's): Shared Key auth with its
# development account (the well-known key Microsoft publishes), the endpoint
# in the URL; it picks its own port and prints it, and accepts the newer
# API version of the Go SDK (--skipApiVersionCheck).
[ -x "$GOBIN/fake-gcs-server" ] || go install github.com/fsouza/fake-gcs-server@v1.56.1
(cd tools/azurite && npm ci --no-audit --no-fund --silent)
emudir=$(mktemp -d)
srvdirs+=("$emudir")
mkdir -p "$emudir/gcs/vog-test"
gcsport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$GOBIN/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$gcsport" -external-url "http://127.0.0.1:$gcsport" \
  -public-host "127.0.0.1:$gcsport" -backend memory -data "$emudir/gcs" -log-level warn >"$emudir/gcs.log" 2>&1 &
srvpids+=($!)
env -C "$emudir" "$PWD/tools/azurite/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort 0 \
  --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent >"$emudir/azurite.log" 2>&1 &
srvpids+=($!)
azport=""
for _ in $(seq 600); do # up to a minute
  # The log may not exist yet: Azurite's redirection is made in the
  # background. (Under set -e, sed failing on it ended the run.)
  [ -n "$azport" ] || azport=$(sed -n 's|.*listens on http://127.0.0.1:\([0-9]*\).*|\1|p' "$emudir/azurite.log" 2>/dev/null || true)
  [ -n "$azport" ] && (exec 3<>"/dev/tcp/127.0.0.1/$gcsport") 2>/dev/null && break
  sleep 0.1
done
export STORAGE_EMULATOR_HOST="127.0.0.1:$gcsport" VOG_GCS_URL="gs://vog-test"
export AZURE_STORAGE_ACCOUNT=devstoreaccount1
export AZURE_STORAGE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
export VOG_AZURE_URL="azblob://vog-test?protocol=http&domain=127.0.0.1:$azport"
if [ -z "$azport" ] || ! (exec 3<>"/dev/tcp/127.0.0.1/$gcsport") 2>/dev/null ||
  ! node tools/azurite/create-container.mjs "http://127.0.0.1:$azport/$AZURE_STORAGE_ACCOUNT" vog-test; then
  tail -n 20 "$emudir"/*.log
  echo "test.sh: fake-gcs-server or Azurite did not start (logs above)" >&2
  exit 1
fi

# Tests that need these fail rather than skip when they are missing.
export VOG_REQUIRE_TORCH=1 VOG_REQUIRE_DUCKDB=1 VOG_REQUIRE_S3=1 VOG_REQUIRE_GCS=1 VOG_REQUIRE_AZURE=1 VOG_REQUIRE_CHROMIUM=1
export VOG_REQUIRE_TOXIPROXY=1
export VOG_ENGINE_LIB="$PWD/build/libvogtorch.so" VOG_BIN="$PWD/build/vog"
# The storage-outage and network fault tests start S3 servers of their own.
export VOG_VERSITYGW="$GOBIN/versitygw" VOG_TOXIPROXY="$GOBIN/toxiproxy-server"

# The container images of deploy/local-cluster.sh, built while the stages
# below compile and test: mostly package downloads, and Go builds that find
# this machine's build cache. TestContainerCluster runs them.
imglog=$(mktemp)
srvdirs+=("$imglog")
deploy/local-cluster.sh build >"$imglog" 2>&1 &
imgpid=$!
srvpids+=("$imgpid")
export VOG_REQUIRE_PODMAN=1

stage "go vet"
go vet ./...
# Pure packages build and pass without cgo, libtorch or a server.
stage "pure packages without cgo"
CGO_ENABLED=0 go test -count=1 ./job/... ./checkpoint/... ./preprocess/... ./score/... ./shard/... ./storage/... ./jobstore/... ./engine/ ./engine/linear/ ./modelzoo/
# The race detector where goroutines meet, in the packages whose test
# binaries do not hold the Temporal server: compiling the server with -race
# for the client's took minutes of each CI run, and the client's
# goroutines run against the real server in the full suite below.
stage "-race"
go test -count=1 -race -timeout 20m ./job/... ./score/... ./shard/... ./storage/... ./jobstore/... ./dataset/... ./workflows/... ./activities/...
stage "container images (built since setup)"
if ! wait "$imgpid"; then
  tail -n 40 "$imglog"
  echo "test.sh: deploy/local-cluster.sh build failed (log above)" >&2
  exit 1
fi
grep 'images built' "$imglog" || true
stage "the whole suite against real parts"
go test -count=1 -timeout 30m ./...
# Every fuzz target for $FUZZTIME (default 5s), from its seeds (its f.Add
# calls and the corpus under its package's testdata/fuzz/<target>/), with
# one instrumented test binary per package, run as go test runs it. A
# failing input is written to that corpus folder: commit it with the fix.
# Go before 1.27 can report the end of -fuzztime itself as a failure,
# "context deadline exceeded" with no failing input (go.dev/issue/75804);
# that alone is not one.
stage "fuzzing, ${FUZZTIME:-5s} a target"
fuzzstart=$SECONDS
fuzzbin=$(mktemp -d)
srvdirs+=("$fuzzbin")
fuzzcache="$(go env GOCACHE)/fuzz"
mapfile -t fuzzpkgs < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
for line in "${fuzzpkgs[@]}"; do
  read -r pkg dir <<<"$line"
  names=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)([a-z]* \*testing\.F).*/\1/p' "$dir"/*_test.go 2>/dev/null || true)
  [ -n "$names" ] || continue
  go test -c -fuzz . -o "$fuzzbin/fuzz.test" "$pkg"
  for name in $names; do
    if ! out=$(cd "$dir" && "$fuzzbin/fuzz.test" -test.run '^$' -test.fuzz "^$name\$" -test.fuzztime "${FUZZTIME:-5s}" \
      -test.fuzzminimizetime 2s -test.fuzzcachedir "$fuzzcache/$pkg" -test.timeout 2m 2>&1); then
      if ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written' <<<"$out"; then
        echo "$out"
        echo "test.sh: fuzzing $pkg $name failed (above)" >&2
        exit 1
      fi
      echo "fuzz $pkg $name: the end of -fuzztime reported as a failure, no failing input (go.dev/issue/75804)"
    else
      echo "fuzz $pkg $name: $(grep -o 'execs: [0-9]*' <<<"$out" | tail -n 1)"
    fi
  done
done
echo "fuzzing: $((SECONDS - fuzzstart)) s"
# Every benchmark once, so none rots (figures: docs/benchmarks.md); one
# package at a time, since each compares rates measured in the same run.
stage "every benchmark once"
VOG_BENCH_ROUNDS=1 go test -p 1 -count=1 -run '^$' -bench . -benchtime 1x -timeout 20m ./...
# The GPU check, on the CPU at toy sizes, so that it still runs when a GPU
# machine is lent (packing, unpacking, every step, vog run end to end).
stage "scripts/gpu-check.sh on the CPU"
XZ_LEVEL=-1 scripts/gpu-pack.sh >/dev/null
gpuout=$(mktemp -d)
if ! DEVICE=cpu IMAGES=16 BATCH=4 ITERS=1 ROUNDS=1 ARCH=resnet18 PYTHON=/usr/bin/python3 OUT="$gpuout" scripts/gpu-check.sh >"$gpuout/smoke.log" 2>&1; then
  tail -50 "$gpuout/smoke.log"
  echo "test.sh: scripts/gpu-check.sh failed on the CPU (log above)" >&2
  exit 1
fi
rm -rf "$gpuout" build/gpu
