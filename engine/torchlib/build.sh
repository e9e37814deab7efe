#!/usr/bin/env bash
# build.sh compiles vog's gradient engine, libvogtorch.so, against the
# libtorch found on this machine, and writes it to $1 (default build/).
#
#   pip torch (CPU or CUDA): PYTHON=/path/to/python3 picks the interpreter
#   whose torch to use; without PYTHON, python3's torch where Debian's
#   libtorch is not installed.
#   Debian (apt-get install libtorch-dev): headers under /usr/include/torch;
#   VOG_DEBIAN_TORCH=1 insists on it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-build}
mkdir -p "$out"
cxx=${CXX:-g++}
flags=(-O2 -std=c++17 -fPIC -shared -Wall)

torchdir=""
asked=${PYTHON:-}
PYTHON=${PYTHON:-python3}
if [ -z "${VOG_DEBIAN_TORCH:-}" ] && { [ -n "$asked" ] || [ ! -f /usr/include/torch/script.h ]; }; then
  torchdir=$("$PYTHON" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null || true)
  if [ -n "$asked" ] && [ ! -f "$torchdir/include/torch/script.h" ]; then
    echo "build.sh: $PYTHON has no torch with C++ headers" >&2
  fi
fi
if [ -n "$torchdir" ] && [ -f "$torchdir/include/torch/script.h" ]; then
  abi=$("$PYTHON" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  flags+=(-D_GLIBCXX_USE_CXX11_ABI="$abi" -I"$torchdir/include" -I"$torchdir/include/torch/csrc/api/include"
          -L"$torchdir/lib" -Wl,-rpath,"$torchdir/lib")
  libs=(-ltorch -ltorch_cpu -lc10)
  if [ -f "$torchdir/lib/libtorch_cuda.so" ]; then
    # Without --no-as-needed the linker drops libtorch_cuda, and CUDA devices are not found.
    libs=(-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed "${libs[@]}")
  fi
  echo "building against pip torch at $torchdir" >&2
elif [ -f /usr/include/torch/script.h ]; then
  flags+=(-I/usr/include/torch/csrc/api/include)
  libs=(-ltorch -ltorch_cpu -lc10)
  echo "building against Debian libtorch" >&2
else
  echo "build.sh: no libtorch found: apt-get install libtorch-dev, or pip install torch" >&2
  exit 1
fi
"$cxx" "${flags[@]}" "$here/vogtorch.cpp" -o "$out/libvogtorch.so" "${libs[@]}"
echo "$out/libvogtorch.so"
