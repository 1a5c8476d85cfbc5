#!/usr/bin/env bash
# Set up (tools/setup.sh), build, and run the service in the foreground:
#   tools/run.sh [cfa-server options...]      e.g. tools/run.sh --listen 0.0.0.0:8080
# Works from any directory; relative paths in the options are taken from the caller's cwd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CFA_CACHE_DIR:-$HOME/.cache/cfa}"
BUILD="${CFA_BUILD_DIR:-$ROOT/build}"

"$ROOT/tools/setup.sh"
cmake -S "$ROOT" -B "$BUILD" -DCFA_BACKBONE_PATH="${CFA_BACKBONE:-$CACHE/resnet50_imagenet.pt}" >&2
cmake --build "$BUILD" -j "${CFA_JOBS:-$(nproc)}" >&2

export CFA_BACKBONE="${CFA_BACKBONE:-$CACHE/resnet50_imagenet.pt}"
exec "$BUILD/cfa-server" "$@"
