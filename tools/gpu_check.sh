#!/usr/bin/env bash
# gpu_check.sh - the one-script GPU check (issue 16), and its CPU dry run.
#
#   tools/gpu_check.sh --fetch        here (Debian 12, network): the C dependencies'
#                                     .debs into .deps/debs (ignored by git)
#   tools/gpu_check.sh [--out DIR]    on a CUDA machine with a python3 that has a CUDA
#                                     build of PyTorch, no other packages, no network
#   tools/gpu_check.sh --cpu [--quick] the same steps here on cpu against Debian's
#                                     libtorch (CTest deploy.gpu_check_cpu: --quick)
#
# Steps: unpack the carried .debs with dpkg -x into .deps/prefix (pkg-config files
# pointed there; pkgconf itself is carried too); configure and build the daemon,
# the CLI, the unit tests and the benchmarks against python3's libtorch
# (torch.utils.cmake_prefix_path; with --cpu Debian's, whose python3-torch has no
# CMake files) with the carried libraries found through the binaries' RPATH; run
# the unit tests and integration.api with CFA_DEVICE=cuda:0 (cpu); then the HTTP
# benchmark (tests/bench/run_bench.sh) at 224x224 with many clients and large
# batches, the paper's and the compressed settings, fp32 and fp16 (fp16: CUDA
# only). Writes OUT/gpu_check.json (figures, per-step status and time) and
# OUT/*.log. Exit 0 when every step passed.
#
# Options: --out DIR (default gpu-check-out), --build DIR (default
# build-gpu-check), --data DIR (MVTec data, default ../shared/data, else
# shared/data), --backbone PT (default $CFA_BACKBONE, else .deps/resnet50_imagenet.pt,
# else ~/.cache/cfa/resnet50_imagenet.pt), --jobs N, --quick (small counts: CI).
set -uo pipefail

# everything in one function, parsed before it runs: editing this file during a
# run cannot derail the run
main() {

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
DEBS="$DEPS/debs"
PREFIX="$DEPS/prefix"
OUT="$ROOT/gpu-check-out"
BUILD="$ROOT/build-gpu-check"
DATA=""
BACKBONE="${CFA_BACKBONE:-}"
JOBS="$(nproc)"
MODE=gpu
QUICK=0
FETCH=0
T0=$(date +%s)

# The C dependencies as Debian 12 packages, with their own dependencies resolved
# by --fetch. Left out: what every Linux with a compiler has (libc, libstdc++,
# libgcc) and must never be replaced from a prefix.
DEB_ROOTS=(
  libmicrohttpd-dev libjansson-dev libturbojpeg0-dev libspng-dev libsqlite3-dev
  libcmocka-dev libpng-dev libgnutls28-dev libcurl4-openssl-dev libmosquitto-dev
  pkgconf
)
DEB_SKIP='^(libc6|libc6-dev|libc-dev-bin|libgcc-s1|libstdc\+\+6|gcc-12-base|libcrypt1|libcrypt-dev|linux-libc-dev|rpcsvc-proto|libnsl-dev|libnsl2|libtirpc-dev|libtirpc3|libtirpc-common|debconf|perl-base|dpkg|tar|install-info|sensible-utils|libselinux1|libpcre2-8-0|zlib1g|libzstd1|liblzma5|libbz2-1.0|libmd0|libgssapi-krb5-2|libkrb5-3|libk5crypto3|libkrb5support0|libkeyutils1|libcom-err2|libdb5.3|libsystemd0|libcap2|libgcrypt20|libgpg-error0|liblz4-1|libudev1)$'

log() { printf '[gpu-check %4ds] %s\n' "$(($(date +%s) - T0))" "$*" >&2; }
die() { printf '[gpu-check] FAIL: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --fetch) FETCH=1; shift ;;
    --cpu) MODE=cpu; shift ;;
    --quick) QUICK=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --backbone) BACKBONE="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

# ------------------------------------------------------------------ --fetch
fetch() {
  command -v apt-get >/dev/null || die "--fetch needs Debian's apt-get"
  mapfile -t pkgs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
      --no-breaks --no-replaces --no-enhances "${DEB_ROOTS[@]}" \
    | grep -v '^ ' | grep -v '^<' | sort -u | grep -Ev "$DEB_SKIP")
  [ "${#pkgs[@]}" -gt "${#DEB_ROOTS[@]}" ] || die "apt-cache depends resolved too little: ${pkgs[*]}"
  # already there: the same packages at the same candidate versions
  local want
  want="$(apt-cache show --no-all-versions "${pkgs[@]}" 2>/dev/null | grep -E '^(Package|Version):' | sha256sum | cut -c1-16)"
  if [ -f "$DEBS/.stamp" ] && [ "$(cat "$DEBS/.stamp")" = "$want" ]; then
    log "$DEBS up to date (${#pkgs[@]} packages)"
    return
  fi
  rm -rf "$DEBS.new" && mkdir -p "$DEBS.new"
  (cd "$DEBS.new" && apt-get download "${pkgs[@]}" >/dev/null) || die "apt-get download failed"
  echo "$want" > "$DEBS.new/.stamp"
  rm -rf "$DEBS" && mv "$DEBS.new" "$DEBS"
  log "fetched ${#pkgs[@]} packages into $DEBS ($(du -sh "$DEBS" | cut -f1))"
}
if [ "$FETCH" = 1 ]; then fetch; exit 0; fi

# ------------------------------------------------------------------ 1. prefix
unpack() {
  ls "$DEBS"/*.deb >/dev/null 2>&1 || die "no .debs in $DEBS: run tools/gpu_check.sh --fetch where apt works"
  local stamp
  stamp="$(ls "$DEBS"/*.deb | xargs -n1 basename | sha256sum | cut -c1-16)"
  if [ -f "$PREFIX/.stamp" ] && [ "$(cat "$PREFIX/.stamp")" = "$stamp" ]; then
    log "prefix $PREFIX up to date"
    return
  fi
  rm -rf "$PREFIX" && mkdir -p "$PREFIX"
  for d in "$DEBS"/*.deb; do dpkg-deb -x "$d" "$PREFIX" 2>/dev/null || dpkg -x "$d" "$PREFIX" || die "cannot unpack $d"; done
  # the .pc files say /usr: point them at the prefix
  find "$PREFIX" -name '*.pc' -exec sed -i -E "s#^([A-Za-z_]+)=/usr#\\1=$PREFIX/usr#" {} +
  echo "$stamp" > "$PREFIX/.stamp"
  log "unpacked $(ls "$DEBS"/*.deb | wc -l) .debs into $PREFIX"
}

# dpkg-deb comes with dpkg; a machine without it (not Debian-like) unpacks with ar + tar
command -v dpkg-deb >/dev/null || dpkg-deb() {
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && ar x "$2" && tar -xf data.tar.* -C "$3") ; local rc=$?
  rm -rf "$tmp"; return $rc
}

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT"/*.log "$OUT"/gpu_check.json
STEPS="$OUT/steps.tsv"
: > "$STEPS"
step() {  # step NAME command... : runs it into OUT/NAME.log, records status and seconds
  local name="$1"; shift
  local t=$(date +%s)
  log "$name ..."
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  printf '%s\t%d\t%d\n' "$name" "$rc" "$(($(date +%s) - t))" >> "$STEPS"
  if [ $rc -ne 0 ]; then tail -15 "$OUT/$name.log" >&2; log "$name FAILED (rc $rc, $OUT/$name.log)"; fi
  return $rc
}

unpack
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
mkdir -p "$DEPS/bin"
cat > "$DEPS/bin/pkg-config" <<EOF
#!/bin/sh
# the carried pkgconf, reading only the carried .pc files
PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig:$PREFIX/usr/share/pkgconfig" LD_LIBRARY_PATH="$LIBDIR" exec "$PREFIX/usr/bin/pkgconf" "\$@"
EOF
chmod +x "$DEPS/bin/pkg-config"

# ------------------------------------------------------------------ 2. torch
PY=python3
[ "$MODE" = cpu ] && PY=/usr/bin/python3
torch_cmake="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)" || die "$PY cannot import torch"
torch_args=()
if [ -f "$torch_cmake/Torch/TorchConfig.cmake" ]; then
  torch_args=(-DCMAKE_PREFIX_PATH="$torch_cmake")
  torch_lib="$(dirname "$(dirname "$torch_cmake")")/lib"
  torch_args+=(-DCMAKE_BUILD_RPATH="$LIBDIR;$torch_lib")
elif [ "$MODE" = cpu ]; then
  log "Debian's python3-torch carries no CMake files: libtorch-dev's (the same 1.13)"
  torch_args=(-DCMAKE_BUILD_RPATH="$LIBDIR")
else
  die "no TorchConfig.cmake under $torch_cmake"
fi
if [ "$MODE" = gpu ]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || die "python3's torch sees no CUDA device"
  DEVICE=cuda:0
else
  DEVICE=cpu
fi
[ -n "$DATA" ] || { DATA="$ROOT/../shared/data"; [ -d "$DATA/magnetic_tile_mini" ] || DATA="$ROOT/shared/data"; }
[ -d "$DATA/magnetic_tile_mini" ] || die "no magnetic_tile_mini under $DATA"
if [ -z "$BACKBONE" ]; then
  BACKBONE="$DEPS/resnet50_imagenet.pt"
  [ -f "$BACKBONE" ] || BACKBONE="$HOME/.cache/cfa/resnet50_imagenet.pt"
fi
[ -f "$BACKBONE" ] || die "no backbone at $BACKBONE (copy resnet50_imagenet.pt into $DEPS)"
log "mode $MODE, device $DEVICE, torch $("$PY" -c 'import torch; print(torch.__version__)'), out $OUT"

# ------------------------------------------------------------------ 3. build
# DT_RPATH (not RUNPATH): it also covers the carried libraries' own
# dependencies (libmicrohttpd -> libgnutls ...), with no LD_LIBRARY_PATH that
# would reach python3 and the system tools the tests run.
configure() {
  cmake -S "$ROOT" -B "$BUILD" \
    -DPKG_CONFIG_EXECUTABLE="$DEPS/bin/pkg-config" \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags \
    -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags \
    -DCFA_BACKBONE_PATH="$BACKBONE" -DCFA_TEST_DATA_DIR="$DATA" "${torch_args[@]}"
}
step configure configure || exit 1
# --quick builds only what its steps run
targets=()
[ "$QUICK" = 1 ] && targets=(--target cfa-server cfa bench_http bench_jpeg bench_model bench_train test_config test_sha256
                             test_image test_store test_inspect test_metrics_prom)
step build cmake --build "$BUILD" -j "$JOBS" "${targets[@]}" || exit 1
# every carried library resolves, from the prefix
step ldd sh -c "ldd '$BUILD/cfa-server' && ! ldd '$BUILD/cfa-server' | grep 'not found' && ldd '$BUILD/cfa-server' | grep -q '$LIBDIR/libmicrohttpd'" || exit 1

# ------------------------------------------------------------------ 4. tests
export CFA_DEVICE="$DEVICE"
# one ctest run, in parallel: the unit tests (the lint ones are no device's
# business) and integration.api
tests_re='^(unit\.|integration\.api$)'
[ "$QUICK" = 1 ] && tests_re='^unit\.(config|sha256|image|store|inspect|metrics_prom)$'
fails=0
step tests ctest --test-dir "$BUILD" --output-on-failure -j "$JOBS" -R "$tests_re" -LE lint || fails=1
# (CFA_DEVICE reaches the daemons the integration test starts: a device the
# daemon cannot use stops it at start-up, so a pass means it ran there;
# unit.backbone_precision checks cuda:0/fp16 itself when CUDA is there)

# ------------------------------------------------------------------ 5. bench
# 224x224 over HTTP, many clients, large batches; fp16 where the device has it
if [ "$QUICK" = 1 ]; then
  bench_opts=(--quick --clients "2" --server-flags "--batch 4 --workers 1")
else
  bench_opts=(--http-requests 4000 --http-duration 20 --clients "64"
              --server-flags "--batch 64 --workers 2 --queue-depth 512 --batch-wait-ms 5"
              --http-query '?store=false')
fi
precisions=(fp32)
[ "$MODE" = gpu ] && precisions+=(fp16)
for prec in "${precisions[@]}"; do
  dev="$DEVICE"; [ "$prec" = fp32 ] || dev="$DEVICE/$prec"
  for setting in paper compressed; do
    step "bench_${setting}_$prec" "$ROOT/tests/bench/run_bench.sh" --build-dir "$BUILD" \
      --data "$DATA" --backbone "$BACKBONE" --out "$OUT/bench_${setting}_$prec" \
      --device "$dev" --image-size 224x224 --http-setting "$setting" --skip-model "${bench_opts[@]}" \
      || fails=1
  done
done

# ------------------------------------------------------------------ 6. report
"$PY" - "$OUT" "$MODE" "$DEVICE" "$(($(date +%s) - T0))" <<'EOF'
import glob, json, os, platform, subprocess, sys
out, mode, device, wall = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
steps = [dict(zip(("name", "rc", "seconds"), (l.split("\t")[0], int(l.split("\t")[1]), int(l.split("\t")[2]))))
         for l in open(os.path.join(out, "steps.tsv")) if l.strip()]
bench = {}
for d in sorted(glob.glob(os.path.join(out, "bench_*"))):
    if not os.path.isdir(d):
        continue
    runs = {}
    for f in sorted(glob.glob(os.path.join(d, "http_c*.json"))):
        # bench_http's report, then its figures as one JSON line
        lines = [l for l in open(f) if l.startswith("{")]
        if lines:
            r = json.loads(lines[-1])
            runs["clients_%d" % r.get("clients", 0)] = r
    bench[os.path.basename(d)[6:]] = runs
try:
    import torch
    torch_v = torch.__version__
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
except Exception:
    torch_v, gpu = None, None
rev = subprocess.run(["git", "-C", os.path.dirname(out), "rev-parse", "HEAD"], capture_output=True,
                     text=True).stdout.strip() or None
doc = {"mode": mode, "device": device, "gpu": gpu, "torch": torch_v, "host": platform.node(),
       "revision": rev, "wall_s": wall, "budget_s": 480, "within_budget": wall <= 480,
       "passed": all(s["rc"] == 0 for s in steps),
       "steps": steps, "http_224": bench}
json.dump(doc, open(os.path.join(out, "gpu_check.json"), "w"), indent=1)
for s in steps:
    print("%-24s %s %5d s" % (s["name"], "ok  " if s["rc"] == 0 else "FAIL", s["seconds"]))
for k, runs in bench.items():
    for c, r in runs.items():
        lat = r.get("latency_ms", {})
        print("%-24s %-11s %4d ok %3d x 503 %8.1f inspections/s  p50 %s ms  p99 %s ms"
              % (k, c, r.get("ok", 0), r.get("status_503", 0), r.get("throughput_rps", 0),
                 lat.get("p50"), lat.get("p99")))
EOF
log "wrote $OUT/gpu_check.json"
[ $fails -eq 0 ] || die "a step failed (see $OUT/gpu_check.json)"
log "PASS"
}
main "$@"; exit $?
