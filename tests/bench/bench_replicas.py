#!/usr/bin/python3
"""Throughput of inspections through nginx with 1 and 2 replicas (issue 16,
docs/BENCHMARKS.md "Replicas (issue 16)").

A trainer trains one product on magnetic_tile_mini (1 epoch, the service's
other defaults); two replicas follow it (--follow); nginx (config generated
as in tests/integration/test_replicas.py) is started with an upstream of one
replica, then of both; bench_http sends --clients keep-alive clients of POST
inspect?store=false through nginx for --duration seconds each time. Prints one
JSON line per run and the ratio. Figures, never assertions.

usage: bench_replicas.py --server build/cfa-server --backbone X.pt --data DIR
                         --bench-http build/tests/bench_http [--clients 8]
                         [--duration 30] [--threads 1]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import test_hardening as th  # noqa: E402
import test_replicas as tr  # noqa: E402


def bench(a, port, image, label):
    p = subprocess.run([a.bench_http, "--url", "http://127.0.0.1:%d" % port, "--product", "tile",
                        "--key", th.ADMIN_KEY, "--image", image, "--clients", str(a.clients),
                        "--duration", str(a.duration), "--requests", "1000000",
                        "--query", "?store=false", "--label", label],
                       capture_output=True, text=True)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "{}"
    print(p.stdout, flush=True)
    return json.loads(last)


def main():
    ap = argparse.ArgumentParser()
    for f in ("--server", "--backbone", "--data", "--bench-http"):
        ap.add_argument(f, required=True)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0,
                    help="--threads of each replica (0: the daemon's own rule)")
    a = ap.parse_args()
    env = th.Env(a)
    tport = tr.free_port()
    t = env.daemon("trainer").start(extra=["--listen", "127.0.0.1:%d" % tport])
    ct = th.Client(t.port, th.ADMIN_KEY)
    th.make_product(ct, "tile", env.train)
    th.train(ct, "tile")
    extra = ["--threads", str(a.threads)] if a.threads else []
    reps = []
    for i in (1, 2):
        d = tr.replica(env, "replica%d" % i, tport)
        d.extra += extra
        reps.append(d.start())
    for r in reps:
        tr.wait_for("replica serves", lambda c=th.Client(r.port, th.ADMIN_KEY): tr.serving(c, 1))
    ds = os.path.join(a.data, "magnetic_tile_mini", "test", "good")
    image = os.path.join(ds, sorted(os.listdir(ds))[0])
    out = {}
    for n in (1, 2):
        ng = tr.Nginx(env, *[r.port for r in reps[:n]])
        out[n] = bench(a, ng.port, image, "nginx + %d replica(s)" % n)
        ng.stop()
    for r in reps:
        r.stop()
    t.stop()
    print(json.dumps({"clients": a.clients, "duration_s": a.duration, "cores": os.cpu_count(),
                      "one": out[1].get("throughput_rps"), "two": out[2].get("throughput_rps"),
                      "ratio": (out[2].get("throughput_rps") or 0) / (out[1].get("throughput_rps") or 1)}))


if __name__ == "__main__":
    main()
