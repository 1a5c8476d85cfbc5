#!/usr/bin/python3
"""sinks_bench.py - inspection throughput with result sinks on against off
(docs/BENCHMARKS.md, "Result sinks"): pair_http.py's paired rounds with the
same cfa-server for A and B, where B has a webhook (a local http.server that
answers 200) and an MQTT sink (Debian's mosquitto on a free port), each
subscribed to every inspection. Prints each round and the median B/A ratio;
speed is never asserted.

  tests/bench/sinks_bench.py --server build/cfa-server \\
      --bench-http build/tests/bench_http --image body.png [--rounds 4]
"""
import argparse
import http.server
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import daemon_proc  # noqa: E402
import pair_http  # noqa: E402  (start, bench, KEY)


class Ack(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Ack.count += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def broker(tmp):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
    proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("mosquitto did not start")


def cpu_seconds(pid):
    """CPU seconds (user + system) of the process and of its sender threads
    (named cfa-webhook, cfa-mqtt), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(path):
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    total = stat("/proc/%d/stat" % pid)
    senders = 0.0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().strip() in ("cfa-webhook", "cfa-mqtt"):
                senders += stat("/proc/%d/task/%s/stat" % (pid, tid))
    return total, senders


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    pair_http.add_bench_args(ap, query="?store=false")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cfa-sinks-bench-")
    train_dir = os.path.join(a.data, "train", "good")
    rcv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ack)
    threading.Thread(target=rcv.serve_forever, daemon=True).start()
    mq, mq_port = broker(tmp)
    daemons = {}
    try:
        for name in ("A", "B"):
            daemons[name] = pair_http.start(a.server, a.backbone, tmp, name, train_dir, a.train)
        c = daemon_proc.Client(daemons["B"][1], pair_http.KEY)
        st1, _, _, _ = c.req("POST", "/v1/sinks", {
            "kind": "webhook", "url": "http://127.0.0.1:%d/" % rcv.server_address[1],
            "secret": "bench", "events": ["inspection"]})
        st2, _, _, _ = c.req("POST", "/v1/sinks", {
            "kind": "mqtt", "host": "127.0.0.1", "port": mq_port, "topic": "cfa/{product}/{decision}",
            "events": ["inspection"]})
        assert st1 == 201 and st2 == 201, (st1, st2)
        ratios = []
        cpu0 = cpu_seconds(daemons["B"][0].pid)
        for r in range(a.rounds):
            res = {}
            for name in (("A", "B") if r % 2 == 0 else ("B", "A")):
                res[name] = pair_http.bench(a, daemons[name][1], name)
            ra, rb = res["A"]["throughput_rps"], res["B"]["throughput_rps"]
            ratios.append(rb / ra)
            print("round %d: off %.3f rps (p50 %.0f ms)  on %.3f rps (p50 %.0f ms)  on/off %.3f"
                  % (r + 1, ra, res["A"]["latency_ms"]["p50"], rb, res["B"]["latency_ms"]["p50"],
                     rb / ra), flush=True)
        cpu1 = cpu_seconds(daemons["B"][0].pid)
        total, senders = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        print("sinks on: CPU of the daemon %.1f s, of its sender threads %.2f s (%.2f%%)"
              % (total, senders, 100.0 * senders / total if total else 0.0))
        st, js, _, _ = c.req("GET", "/v1/sinks")
        figs = [(s["kind"], s["deliveries"]) for s in js["sinks"]]
        print("median on/off throughput over %d rounds: %.3f; sinks: %s; webhook bodies received: %d"
              % (a.rounds, statistics.median(ratios), figs, Ack.count))
    finally:
        for proc, _, log in daemons.values():
            daemon_proc.stop(proc, log)
        mq.terminate()
        rcv.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
