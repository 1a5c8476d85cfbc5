#!/usr/bin/python3
"""pair_http.py - a quick paired HTTP comparison of two cfa-server builds.

Starts both daemons (127.0.0.1 port 0, a temp data dir each), gives each the
same product (the first N good images of magnetic_tile_mini, epochs 1), then
runs bench_http against A and B alternately, ROUNDS times, so that both see
the same machine load; prints each round's throughput, the B/A ratio per
round and its median. Speed is never asserted.

  tests/bench/pair_http.py --a /work/main/build/cfa-server --b build/cfa-server \\
      --bench-http build/tests/bench_http --image body.jpg [--rounds 4] \\
      [--clients 4] [--requests 40] [--query ''] [--idempotency-keys 1] \\
      [--train-a JSON] [--train-b JSON]

With the same build as --a and --b and two --train-* bodies it compares two
product settings instead (e.g. a crop against the whole image, CFA++).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import daemon_proc  # noqa: E402

KEY = "pair-admin-" + uuid.uuid4().hex


TRAIN = {"epochs": 1, "gamma_c": 4, "gamma_d": 4}


def start(server, backbone, tmp, name, train_dir, n_train, extra=None):
    data = os.path.join(tmp, name)
    env = dict(os.environ, CFA_ADMIN_KEY=KEY)
    proc, port, log = daemon_proc.spawn([server, "--listen", "127.0.0.1:0", "--data-dir", data,
                                         "--backbone", backbone], env,
                                        os.path.join(tmp, name + ".log"))
    c = daemon_proc.Client(port, KEY)
    c.req("POST", "/v1/products", {"id": "pair"})
    files = sorted(os.listdir(train_dir))[:n_train]
    boundary = "pair" + uuid.uuid4().hex
    body = bytearray()
    for i, f in enumerate(files):
        body += ("--%s\r\nContent-Disposition: form-data; name=\"i%d\"; filename=\"%s\"\r\n"
                 "Content-Type: image/png\r\n\r\n" % (boundary, i, f)).encode()
        body += open(os.path.join(train_dir, f), "rb").read() + b"\r\n"
    body += ("--%s--\r\n" % boundary).encode()
    st, _, _, _ = c.req("POST", "/v1/products/pair/images", bytes(body),
                        "multipart/form-data; boundary=" + boundary)
    assert st == 201, st
    st, js, _, _ = c.req("POST", "/v1/products/pair/train", dict(TRAIN, **(extra or {})))
    assert st == 202, st
    job = js["job"]["id"]
    while True:
        st, js, _, _ = c.req("GET", "/v1/jobs/" + job)
        if js["state"] in ("succeeded", "failed", "canceled"):
            assert js["state"] == "succeeded", js
            break
        subprocess.run(["sleep", "0.5"])
    return proc, port, log


def bench(a, port, label):
    out = subprocess.run([a.bench_http, "--url", "http://127.0.0.1:%d" % port, "--product",
                          "pair", "--key", KEY, "--image", a.image, "--clients",
                          str(a.clients), "--requests", str(a.requests), "--label", label,
                          "--query", a.query, "--idempotency-keys", str(a.idempotency_keys)],
                         capture_output=True, text=True, check=True)
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def add_bench_args(ap, query):
    """The arguments bench() and start() read, shared with sinks_bench.py."""
    ap.add_argument("--bench-http", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--backbone", default=os.path.expanduser("~/.cache/cfa/resnet50_imagenet.pt"))
    ap.add_argument("--data", default="/work/shared/data/magnetic_tile_mini")
    ap.add_argument("--train", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=40)
    ap.add_argument("--query", default=query)
    ap.add_argument("--idempotency-keys", type=int, default=0,
                    help="1: bench_http sends a fresh Idempotency-Key on each request")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="baseline cfa-server")
    ap.add_argument("--b", required=True, help="candidate cfa-server")
    add_bench_args(ap, query="")
    ap.add_argument("--train-a", default="{}", help="JSON added to A's training body")
    ap.add_argument("--train-b", default="{}", help="JSON added to B's training body "
                    "(the same --a and --b then compare two settings of one build)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cfa-pair-")
    train_dir = os.path.join(a.data, "train", "good")
    daemons = {}
    try:
        for name, server, extra in (("A", a.a, a.train_a), ("B", a.b, a.train_b)):
            daemons[name] = start(server, a.backbone, tmp, name, train_dir, a.train,
                                  json.loads(extra))
        ratios = []
        for r in range(a.rounds):
            res = {}
            order = ("A", "B") if r % 2 == 0 else ("B", "A")
            for name in order:
                res[name] = bench(a, daemons[name][1], name)
            ra, rb = res["A"]["throughput_rps"], res["B"]["throughput_rps"]
            ratios.append(rb / ra)
            print("round %d: A %.3f rps (p50 %.0f ms)  B %.3f rps (p50 %.0f ms)  B/A %.3f  "
                  "load %.1f" % (r + 1, ra, res["A"]["latency_ms"]["p50"], rb,
                                 res["B"]["latency_ms"]["p50"], rb / ra, res["B"]["load1"]),
                  flush=True)
        print("median B/A throughput over %d rounds: %.3f" % (a.rounds, statistics.median(ratios)))
    finally:
        for proc, _, log in daemons.values():
            daemon_proc.stop(proc, log)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
