#!/bin/bash
# run_bench.sh - the whole CFA benchmark in one command (tests/bench/README.md).
#
#   tests/bench/run_bench.sh [--build-dir build] [--data ../shared/data] [options]
#
# 1. bench_jpeg: a 900x900 JPEG from the first magnetic_tile test/good image
# 2. bench_model: in-process cfa_score throughput at batch 1, 4, 8 for the
#    paper (1/1) and compressed (8/8, the service default) settings and the backbone + minimal head
# 3. cfa-server on 127.0.0.1:0 with a temporary data dir; through the API:
#    product, upload N good images, train, inspect key; bench_http with 1 and
#    4 concurrent clients POSTing the JPEG to /v1/products/{id}/inspect
# 4. the ratio HTTP / in-process at the same batch policy
# 5. with --train-full: bench_train, 200 images x 30 epochs (long); with
#    --train-epochs E: 200 images x E epochs, projected to 30
# 6. peak RSS of each process; summary printed and written as Markdown
#    (OUT/BENCHMARKS.md, the format of docs/BENCHMARKS.md)
#
# Options:
#   --build-dir DIR     where bench_* and cfa-server were built (default build)
#   --server PATH       the daemon (default BUILD/cfa-server)
#   --data DIR          folder holding magnetic_tile (default ../shared/data)
#   --product-data DIR  MVTec product folder (default DATA/magnetic_tile)
#   --out DIR           results (default BUILD/bench-results)
#   --backbone PT       default $CFA_BACKBONE or ~/.cache/cfa/resnet50_imagenet.pt
#   --iters N           timed cfa_score calls per batch size, at least (default 5)
#   --min-time S        and at least S seconds of them (default 10)
#   --train N           training images of the in-process and HTTP models (20)
#   --http-setting S    paper (1/1, default) or compressed (8/8) for the HTTP model
#   --http-requests N   timed requests per HTTP run (default 150)
#   --http-duration S   time limit per HTTP run in seconds (default 120)
#   --clients "1 4"     concurrency levels of the HTTP runs
#   --http-query Q      appended to the inspect path, e.g. '?store=false'
#                       (default none: maps and heatmaps stored, as in production)
#   --threads T         libtorch threads for every process (default: libtorch's)
#   --device DEV        cpu (default), cuda:N or with a precision (cuda:0/fp16),
#                       for bench_model and the server
#   --image-size WxH    the inspected JPEG's size (default 900x900; the paper's
#                       GPU figure is at 224x224)
#   --server-flags S    more cfa-server flags, e.g. '--batch 64 --workers 2'
#   --model-batches L   in-process batch sizes (default 1,4,8)
#   --train-full        also train 200 images x 30 epochs (paper settings)
#   --train-setting S   paper (1/1, default) or compressed (8/8, the service
#                       default) for the training run
#   --train-epochs E    also train 200 images x E epochs and project to 30
#   --train-images N    images of that training run (default 200)
#   --pair-rounds R     also R paired rounds while the server is up: in-process
#                       (compressed, batch 1 and 4) right before HTTP (1 and 4
#                       clients), so both see the same machine load; the ratio
#                       is reported per round and as the median (default 0)
#   --skip-model, --skip-http   leave a part out
#   --quick             tiny counts, to check that the harness works (~3 min)
# Speed is never asserted; exit status is 0 when every part that ran worked.
set -u

# everything in one function, parsed before it runs: editing this file during a
# run cannot derail the run
main() {
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build"
server=""
data="$root/../shared/data"
pdata=""
out=""
backbone="${CFA_BACKBONE:-$HOME/.cache/cfa/resnet50_imagenet.pt}"
iters=5
min_time=10
ntrain=20
http_setting=paper
http_requests=150
http_duration=120
clients="1 4"
http_query=""
threads=0
train_epochs=0
train_images=200
train_setting=paper
skip_model=0
skip_http=0
pair_rounds=0
device=""
size=900x900
server_extra=""
model_batches=1,4,8
cmdline="tests/bench/run_bench.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir) build="$(cd "$2" && pwd)"; shift ;;
    --server) server="$2"; shift ;;
    --data) data="$2"; shift ;;
    --product-data) pdata="$2"; shift ;;
    --out) out="$2"; shift ;;
    --backbone) backbone="$2"; shift ;;
    --iters) iters="$2"; shift ;;
    --min-time) min_time="$2"; shift ;;
    --train) ntrain="$2"; shift ;;
    --http-setting) http_setting="$2"; shift ;;
    --http-requests) http_requests="$2"; shift ;;
    --http-duration) http_duration="$2"; shift ;;
    --clients) clients="$2"; shift ;;
    --http-query) http_query="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --device) device="$2"; shift ;;
    --image-size) size="$2"; shift ;;
    --server-flags) server_extra="$2"; shift ;;
    --model-batches) model_batches="$2"; shift ;;
    --train-full) train_epochs=30 ;;
    --train-epochs) train_epochs="$2"; shift ;;
    --train-images) train_images="$2"; shift ;;
    --train-setting) train_setting="$2"; shift ;;
    --pair-rounds) pair_rounds="$2"; shift ;;
    --skip-model) skip_model=1 ;;
    --skip-http) skip_http=1 ;;
    --quick) iters=1; min_time=0; ntrain=4; http_requests=4; clients="1 2" ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//;/^set -u/d'; exit 0 ;;
    *) echo "run_bench.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

[ -n "$pdata" ] || pdata="$data/magnetic_tile"
[ -n "$out" ] || out="$build/bench-results"
[ -n "$server" ] || server="$build/cfa-server"
bin="$build/tests"
case "$http_setting" in
paper) gc=1; gd=1 ;;
compressed) gc=8; gd=8 ;;
*) echo "run_bench.sh: --http-setting must be paper or compressed" >&2; exit 2 ;;
esac
case "$train_setting" in
paper) tg=1 ;;
compressed) tg=8 ;;
*) echo "run_bench.sh: --train-setting must be paper or compressed" >&2; exit 2 ;;
esac
case "$size" in
[1-9]*x[1-9]*) ;;
*) echo "run_bench.sh: --image-size must be WxH" >&2; exit 2 ;;
esac
dev=()
[ -n "$device" ] && dev=(--device "$device")
# the server's largest batch (its default 8, or --batch N among --server-flags)
server_batch="$(printf ' %s ' "$server_extra" | sed -n 's/.* --batch \([0-9][0-9]*\) .*/\1/p')"
[ -n "$server_batch" ] || server_batch=8
if [ ! -r "$backbone" ] || [ ! -d "$pdata/train/good" ]; then
    echo "run_bench.sh: SKIP: backbone $backbone or data $pdata missing" >&2
    exit 77
fi
for b in bench_model bench_http bench_jpeg; do
    if [ ! -x "$bin/$b" ]; then
        echo "run_bench.sh: $bin/$b missing: cmake --build $build --target bench_model bench_http bench_jpeg bench_train" >&2
        exit 2
    fi
done
export CFA_BACKBONE="$backbone"
mkdir -p "$out"
rm -f "$out"/model.json "$out"/http_c*.json "$out"/train.json "$out"/server.json \
    "$out"/machine.json "$out"/setup.json "$out"/pair_*.json
thr=()
thr_flag=""
if [ "$threads" -gt 0 ]; then
    thr=(--threads "$threads")
    thr_flag=" --threads $threads"
fi
status=0

load1() { cut -d' ' -f1 /proc/loadavg; }
machine="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
date_utc="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
load_before="$(load1)"
echo "== CFA benchmark $date_utc on $machine, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   results in $out"

# ---------------------------------------------------------------- the image
src_img="$(ls "$pdata/test/good/"*.png "$pdata/test/good/"*.jpg 2>/dev/null | sort | head -n1)"
jpg="$out/inspect_$size.jpg"
if ! "$bin/bench_jpeg" "$src_img" "$jpg" "$size" 90; then
    echo "run_bench.sh: could not make the JPEG" >&2
    exit 1
fi

# ---------------------------------------------------------------- (1) model
if [ "$skip_model" = 0 ]; then
    echo "== (1) in-process model throughput"
    "$bin/bench_model" --data "$pdata" --image "$jpg" --size "$size" --train "$ntrain" \
        --epochs 1 --iters "$iters" --min-time "$min_time" --batches "$model_batches" "${thr[@]}" "${dev[@]}" \
        | tee "$out/model.json"
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "run_bench.sh: bench_model failed" >&2; status=1; }
fi

# ---------------------------------------------------------------- (2) HTTP
if [ "$skip_http" = 0 ]; then
    if [ ! -x "$server" ]; then
        echo "run_bench.sh: $server not built: skipping the HTTP part" >&2
        status=1
    else
        echo "== (2) end-to-end HTTP"
        tmp="$(mktemp -d /tmp/cfa-bench.XXXXXX)"
        admin_key="bench-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
        server_flags="--listen 127.0.0.1:0 --data-dir $tmp/var --backbone $backbone"
        [ "$threads" -gt 0 ] && server_flags="$server_flags --threads $threads"
        [ -n "$device" ] && server_flags="$server_flags --device $device"
        [ -n "$server_extra" ] && server_flags="$server_flags $server_extra"
        CFA_ADMIN_KEY="$admin_key" "$server" $server_flags >"$tmp/stdout" 2>"$tmp/server.log" &
        spid=$!
        port=""
        for _ in $(seq 1 600); do
            port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/stdout" | head -n1)"
            [ -n "$port" ] && break
            kill -0 "$spid" 2>/dev/null || break
            sleep 0.5
        done
        if [ -z "$port" ]; then
            echo "run_bench.sh: cfa-server did not start; its log:" >&2
            tail -n 20 "$tmp/server.log" >&2
            kill "$spid" 2>/dev/null
            status=1
        else
            echo "   cfa-server pid $spid on 127.0.0.1:$port (log $tmp/server.log)"
            echo "   training product through the API: $ntrain images, 1 epoch, $http_setting ($gc/$gd)"
            if /usr/bin/python3 "$here/bench_lib.py" setup --port "$port" --admin-key "$admin_key" \
                --data "$pdata" --images "$ntrain" --epochs 1 --gamma-c "$gc" --gamma-d "$gd" \
                >"$out/setup.json"; then
                key="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inspect_key"])' "$out/setup.json")"
                echo "   trained in $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["train_wall_s"])' "$out/setup.json") s (wall, through the API)"
                for c in $clients; do
                    # the daemon's minor page faults over the run (field 10 of
                    # /proc/PID/stat): fresh pages per inspection are the
                    # allocator regressions that cost 5-15 % (malloc_tune.c)
                    f0="$(awk '{print $10}' "/proc/$spid/stat" 2>/dev/null)"
                    "$bin/bench_http" --url "http://127.0.0.1:$port" --product bench-tile \
                        --key "$key" --image "$jpg" --clients "$c" --requests "$http_requests" \
                        --duration "$http_duration" --warmup 1 --label "clients=$c" \
                        ${http_query:+--query "$http_query"} \
                        | tee "$out/http_c$c.json"
                    [ "${PIPESTATUS[0]}" = 0 ] || { echo "run_bench.sh: bench_http -c $c failed" >&2; status=1; }
                    f1="$(awk '{print $10}' "/proc/$spid/stat" 2>/dev/null)"
                    [ -n "$f0" ] && [ -n "$f1" ] &&
                        printf '{"minor_faults":%d}\n' "$((f1 - f0))" >"$out/http_faults_c$c.json"
                done
                for r in $(seq 1 "$pair_rounds"); do
                    echo "== (3) paired round $r of $pair_rounds: in-process, then HTTP"
                    "$bin/bench_model" --data "$pdata" --image "$jpg" --size "$size" --train "$ntrain" \
                        --epochs 1 --iters "$iters" --min-time "$min_time" --batches 1,4 \
                        --setting "$http_setting=$gc/$gd" --no-minimal "${thr[@]}" "${dev[@]}" \
                        >"$out/pair_model_r$r.json" 2>/dev/null ||
                        { echo "run_bench.sh: bench_model (round $r) failed" >&2; status=1; }
                    for c in 1 4; do
                        "$bin/bench_http" --url "http://127.0.0.1:$port" --product bench-tile \
                            --key "$key" --image "$jpg" --clients "$c" --requests "$http_requests" \
                            --duration "$http_duration" --warmup 1 --label "round=$r clients=$c" \
                            ${http_query:+--query "$http_query"} >"$out/pair_http_c${c}_r$r.json" 2>/dev/null ||
                            { echo "run_bench.sh: bench_http (round $r) failed" >&2; status=1; }
                    done
                done
            else
                echo "run_bench.sh: API setup failed; server log:" >&2
                tail -n 20 "$tmp/server.log" >&2
                status=1
            fi
            hwm="$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$spid/status" 2>/dev/null)"
            kill -TERM "$spid" 2>/dev/null
            for _ in $(seq 1 120); do kill -0 "$spid" 2>/dev/null || break; sleep 0.5; done
            kill -0 "$spid" 2>/dev/null && kill -KILL "$spid" 2>/dev/null
            wait "$spid" 2>/dev/null
            printf '{"setting":"%s","gamma_c":%d,"gamma_d":%d,"images":%d,"epochs":1,"batch":%d,"image_size":"%s","flags":"%s%s%s","query":"%s","vmhwm_mib":%s}\n' \
                "$http_setting" "$gc" "$gd" "$ntrain" "$server_batch" "$size" \
                "$([ -z "$server_extra" ] && echo '--workers 1 --batch 8 (defaults)')" \
                "$thr_flag${device:+ --device $device}" "${server_extra:+ $server_extra}" \
                "$http_query" "${hwm:-null}" >"$out/server.json"
        fi
        rm -rf "$tmp"
    fi
fi

# ---------------------------------------------------------------- (4) training
if [ "$train_epochs" -gt 0 ]; then
    echo "== (4) training $train_images images x $train_epochs epochs, $train_setting ($tg/$tg)"
    if [ -x "$bin/bench_train" ]; then
        "$bin/bench_train" --data "$pdata" --train "$train_images" --epochs "$train_epochs" \
            --gamma-c "$tg" --gamma-d "$tg" --project 30 "${thr[@]}" | tee "$out/train.json"
        [ "${PIPESTATUS[0]}" = 0 ] || { echo "run_bench.sh: bench_train failed" >&2; status=1; }
    else
        echo "run_bench.sh: $bin/bench_train not built" >&2
        status=1
    fi
fi

# ---------------------------------------------------------------- summary
printf '{"date":"%s","machine":"%s","commit":"%s","load_before":"%s","load_after":"%s","command":"%s"}\n' \
    "$date_utc" "$machine" "$commit" "$load_before" "$(load1)" "$cmdline" >"$out/machine.json"
echo
echo "================================================================ summary"
/usr/bin/python3 "$here/bench_lib.py" report --dir "$out" --md "$out/BENCHMARKS.md" --command "$cmdline"
exit $status
}

main "$@"
