#!/usr/bin/env bash
# check_runtime_chroot.sh - the Docker runtime stage without a Docker engine.
#
# Builds a Debian 12 root with debootstrap (minbase) plus the packages of
# docker/runtime-packages.txt installed with apt-get --no-install-recommends,
# exactly as docker/Dockerfile's runtime stage does; installs the built
# binaries into it (cmake --install, as the build stage does) with the
# converted backbone; adds the same non-root user; starts cfa-server there as
# that user and checks /readyz, then one product trained (memory bank only)
# and one inspection through the HTTP API from outside the root. Whatever
# library the package list misses, or whatever the daemon needs to write as
# root, fails here.
#
#   tools/check_runtime_chroot.sh [--build DIR] [--backbone PT] [--data DIR] [--keep]
#
# Needs root (debootstrap, chroot, mount), Debian's debootstrap and the Debian
# mirror. The root with its packages is cached as a tarball under
# ${CFA_CACHE_DIR:-~/.cache/cfa}/runtime-chroot/, keyed by the package list:
# reruns unpack it (seconds) instead of downloading again (minutes).
# Too slow for CI the first time; tests/deploy/check_runtime_libs.py checks the
# same package list statically in CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CFA_CACHE_DIR:-$HOME/.cache/cfa}"
BUILD="$ROOT/build"
BACKBONE="${CFA_BACKBONE:-$CACHE/resnet50_imagenet.pt}"
DATA="$ROOT/../shared/data/magnetic_tile_mini"
KEEP=0
SUITE=bookworm
MIRROR="${CFA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PKGLIST="$ROOT/docker/runtime-packages.txt"
APP_USER=cfa
APP_UID=10001   # the same uid as docker/Dockerfile's user

while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$(cd "$2" && pwd)"; shift 2 ;;
    --backbone) BACKBONE="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { printf '[chroot-check] %s\n' "$*" >&2; }
die() { printf '[chroot-check] FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap not installed (tools/setup.sh)"
[ -x "$BUILD/cfa-server" ] || die "$BUILD/cfa-server not built"
[ -f "$BACKBONE" ] || die "backbone $BACKBONE missing (tools/setup.sh)"
[ -d "$DATA/train/good" ] || die "no MVTec data at $DATA"

packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PKGLIST" | grep -v '^$'; }
mapfile -t PKGS < <(packages)
key="$(printf '%s\n' "$SUITE" "$MIRROR" "${PKGS[@]}" | sha256sum | cut -c1-16)"
TARBALL="$CACHE/runtime-chroot/$SUITE-$key.tar.gz"

WORK="$(mktemp -d /tmp/cfa-chroot.XXXXXX)"
RFS="$WORK/root"
DAEMON_PID=""
cleanup() {
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  for m in proc dev; do mountpoint -q "$RFS/$m" 2>/dev/null && umount -l "$RFS/$m"; done
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ------------------------------------------------- 1. the runtime root (cached)
if [ -f "$TARBALL" ]; then
  log "unpacking cached root $TARBALL"
  mkdir -p "$RFS"
  tar -xzf "$TARBALL" -C "$RFS"
else
  log "debootstrap --variant=minbase $SUITE (first run: minutes)"
  debootstrap --variant=minbase "$SUITE" "$RFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  cp /etc/resolv.conf "$RFS/etc/resolv.conf"
  log "apt-get install --no-install-recommends ${PKGS[*]}"
  chroot "$RFS" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  chroot "$RFS" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${PKGS[@]}" > "$WORK/apt.log" 2>&1 \
    || { tail -20 "$WORK/apt.log" >&2; die "apt-get install failed"; }
  chroot "$RFS" apt-get clean
  rm -rf "$RFS"/var/lib/apt/lists/*
  mkdir -p "$(dirname "$TARBALL")"
  tar -czf "$TARBALL.tmp" -C "$RFS" . && mv "$TARBALL.tmp" "$TARBALL"
  log "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

# ------------------------------------- 2. what the build stage copies over
# the same steps as docker/Dockerfile: cmake --install into /usr/local, the
# backbone into /opt/cfa, a system user owning only the data directory
DESTDIR="$RFS" cmake --install "$BUILD" --prefix /usr/local > "$WORK/install.log"
mkdir -p "$RFS/opt/cfa"
cp "$BACKBONE" "$RFS/opt/cfa/resnet50_imagenet.pt"
chroot "$RFS" groupadd --system --gid "$APP_UID" "$APP_USER"
chroot "$RFS" useradd --uid "$APP_UID" --gid "$APP_UID" --home-dir /var/lib/cfa \
  --no-create-home --shell /usr/sbin/nologin "$APP_USER"
mkdir -p "$RFS/var/lib/cfa"
chroot "$RFS" chown "$APP_USER:$APP_USER" /var/lib/cfa
mount -t proc proc "$RFS/proc"
mount --bind /dev "$RFS/dev"

# ------------------------------------------- 3. start it as the non-root user
ADMIN_KEY="chroot-check-admin-key-$(date +%s)"
mkfifo "$WORK/out"
chroot --userspec="$APP_USER:$APP_USER" "$RFS" env -i HOME=/var/lib/cfa \
  CFA_ADMIN_KEY="$ADMIN_KEY" CFA_BACKBONE=/opt/cfa/resnet50_imagenet.pt \
  /usr/local/bin/cfa-server --listen 127.0.0.1:0 --data-dir /var/lib/cfa \
  > "$WORK/out" 2> "$WORK/daemon.log" &
DAEMON_PID=$!
PORT=""
while IFS= read -r line; do
  case "$line" in "listening on "*) PORT="${line##*:}"; break ;; esac
done < "$WORK/out"
[ -n "$PORT" ] || { tail -20 "$WORK/daemon.log" >&2; die "the daemon did not start in the root"; }
exec 3<"$WORK/out"   # keep the pipe open: the daemon may print more
srv_pid="$(pgrep -x cfa-server -P "$DAEMON_PID" || echo "$DAEMON_PID")"
log "cfa-server pid $srv_pid, uid $(ps -o uid= -p "$srv_pid" | tr -d ' '), listening on 127.0.0.1:$PORT"

URL="http://127.0.0.1:$PORT"
AUTH="Authorization: Bearer $ADMIN_KEY"
ready=""
for _ in $(seq 1 600); do   # the backbone loads before /readyz says 200
  if curl -fsS "$URL/readyz" > /dev/null 2>&1; then ready=1; break; fi
  kill -0 "$DAEMON_PID" 2>/dev/null || break
  sleep 0.5
done
[ -n "$ready" ] || { tail -20 "$WORK/daemon.log" >&2; die "/readyz never answered 200"; }
log "/readyz: 200"
# the image's HEALTHCHECK command, from inside the root as the user (curl is
# in the package list for it), and the CLI's libraries
chroot --userspec="$APP_USER:$APP_USER" "$RFS" curl -fsS -o /dev/null "$URL/readyz" \
  || die "the HEALTHCHECK's curl failed inside the root"
if ! chroot --userspec="$APP_USER:$APP_USER" "$RFS" /usr/local/bin/cfa --help > /dev/null 2>&1; then
  chroot "$RFS" ldd /usr/local/bin/cfa | grep "not found" >&2
  die "cfa does not run in the root"
fi
log "HEALTHCHECK command (curl, in the root): ok; cfa runs"

# ------------------------------------- 4. one product, trained, one inspection
curl -fsS -X POST "$URL/v1/products" -H "$AUTH" -H 'Content-Type: application/json' \
  -d '{"id":"chroot","name":"chroot check","settings":{"epochs":0,"gamma_c":8,"gamma_d":8}}' > /dev/null \
  || die "POST /v1/products failed"
args=()
for f in $(ls "$DATA"/train/good/*.png | head -4); do args+=(-F "file=@$f;type=image/png"); done
curl -fsS -X POST "$URL/v1/products/chroot/images" -H "$AUTH" "${args[@]}" > /dev/null \
  || die "image upload failed"
job="$(curl -fsS -X POST "$URL/v1/products/chroot/train" -H "$AUTH" \
  -H 'Content-Type: application/json' -d '{"activate":true}')" || die "POST train failed"
job_id="$(printf '%s' "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["job"]["id"])')"
state=""
for _ in $(seq 1 1200); do
  state="$(curl -fsS "$URL/v1/jobs/$job_id" -H "$AUTH" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')"
  case "$state" in succeeded|failed|canceled) break ;; esac
  sleep 0.5
done
[ "$state" = succeeded ] || { tail -20 "$WORK/daemon.log" >&2; die "training ended $state"; }
img="$(ls "$DATA"/test/*/*.png | grep -v /good/ | head -1)"
res="$(curl -fsS -X POST "$URL/v1/products/chroot/inspect" -H "$AUTH" \
  -H 'Content-Type: image/png' --data-binary "@$img")" || die "inspection failed"
printf '%s' "$res" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["decision"] in ("OK", "NG") and r["score"] >= 0, r
print("[chroot-check] inspection: score %.3f threshold %.3f decision %s" % (r["score"], r["threshold"], r["decision"]), file=sys.stderr)'
# everything the daemon wrote belongs to the non-root user
by_root="$(find "$RFS/var/lib/cfa" -mindepth 1 -uid 0 | head -3)"
[ -z "$by_root" ] || die "written as root: $by_root"
log "data directory: $(find "$RFS/var/lib/cfa" -mindepth 1 | wc -l) entries, all owned by uid $APP_UID"
log "PASS"
