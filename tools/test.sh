#!/usr/bin/env bash
# Build and run every test, from a fresh Debian 12 machine or an existing checkout:
#   tools/setup.sh && cmake -S . -B build && cmake --build build && ctest --test-dir build
#
#   CFA_SANITIZE=1 (or address)   ASan + UBSan build in build-asan/
#   CFA_SANITIZE=thread           TSan build in build-tsan/
#   CFA_BUILD_DIR=DIR             build folder (default: build, build-asan, build-tsan)
#   CFA_JOBS=N                    parallel build and test jobs (default: nproc)
#   CFA_CACHE_DIR=DIR             where setup keeps the backbone (default ~/.cache/cfa)
# Extra arguments go to ctest, e.g.  tools/test.sh -L backbone   or   -R store
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${CFA_CACHE_DIR:-$HOME/.cache/cfa}"
JOBS="${CFA_JOBS:-$(nproc)}"

tools/setup.sh

cmake_args=(
  -DCFA_BACKBONE_PATH="${CFA_BACKBONE:-$CACHE/resnet50_imagenet.pt}"
  -DCFA_ASSETS_DIR="$CACHE"
)
case "${CFA_SANITIZE:-0}" in
  0|"")             build="build" ;;
  1|address|asan)   build="build-asan"; cmake_args+=(-DCFA_SANITIZE_ADDRESS=ON -DCFA_SANITIZE_THREAD=OFF) ;;
  thread|tsan)      build="build-tsan"; cmake_args+=(-DCFA_SANITIZE_THREAD=ON -DCFA_SANITIZE_ADDRESS=OFF) ;;
  *) echo "CFA_SANITIZE must be 0, 1/address or thread" >&2; exit 2 ;;
esac
build="${CFA_BUILD_DIR:-$build}"

cmake -S . -B "$build" "${cmake_args[@]}"
cmake --build "$build" -j "$JOBS"
ctest --test-dir "$build" --output-on-failure -j "$JOBS" "$@"
