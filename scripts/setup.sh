#!/usr/bin/env bash
# setup.sh installs what vog needs on Debian 12 (bookworm) and builds it:
# Debian's libtorch, libjpeg-turbo's TurboJPEG (JPEG decoding as PIL's),
# the Fashion-MNIST data set, the engine library
# build/libvogtorch.so and the binary build/vog. With --test it also installs
# what the test suite uses: PyTorch, Node.js (DuckDB) and Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export PATH="$PATH:/usr/local/go/bin"

pkgs=(libtorch-dev libturbojpeg0 dataset-fashion-mnist g++ git ca-certificates)
if [ "${1:-}" = "--test" ]; then
  # PyTorch for baselines and reference computations, Node.js for DuckDB,
  # Chromium for the report.
  # xz packs the binaries scripts/gpu-check.sh takes to a GPU machine.
  # Podman (runc, mmdebstrap for Debian base images) builds and runs the
  # container cluster of deploy/local-cluster.sh.
  pkgs+=(python3-torch python3-torchvision python3-numpy chromium xz-utils podman runc mmdebstrap)
  command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: Go 1.26 is needed (https://go.dev/doc/install)" >&2; exit 1; }

if [ ! -f build/libvogtorch.so ] || [ engine/torchlib/vogtorch.cpp -nt build/libvogtorch.so ] ||
  [ engine/torchlib/vogtorch.h -nt build/libvogtorch.so ]; then
  echo "setup: building the gradient engine (build/libvogtorch.so)" >&2
  VOG_DEBIAN_TORCH=1 engine/torchlib/build.sh build >/dev/null
fi
echo "setup: building build/vog (the first build compiles the Temporal server: ~11 minutes on 2 cores)" >&2
go build -o build/vog ./cmd/vog
