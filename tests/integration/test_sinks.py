#!/usr/bin/python3
"""Result sinks and the event log (docs/API.md, "Result sinks" and "Events").

Real peers on loopback, started by the test: an HTTP receiver (http.server,
recording every body and checking its X-CFA-Signature HMAC) and Debian's
mosquitto broker (a listener on a free port), read by a small MQTT 3.1.1
subscriber written here over a socket (QoS 1, PUBACKs its messages).

  api       sinks are made, read, changed and refused through the API; the
            secret is write-only
  deliver   inspections of NG and OK parts reach the webhook (every
            inspection) and the broker (NG only, topic cfa/{product}/{decision});
            training's end and the activation reach the webhook
  kill      with the receiver slow, the daemon is killed (SIGKILL) while
            deliveries are still queued; after the restart every NG
            inspection of the audit trail reaches both peers at least once
  backoff   the receiver answers 503: the tries of one delivery come further
            and further apart, it goes dead after --sink-max-tries, the
            figures (GET /v1/sinks, /metrics) say so, and redeliver sends it
  outage    the receiver is stopped for a while, then started again on the
            same port: what was queued meanwhile arrives (catch-up)
  events    the event log has a row for each change the test made, with the
            key id, before and after; filters and cursor paging

usage: test_sinks.py --server build/cfa-server --backbone X.pt --data DIR
"""
import hashlib
import hmac
import http.server
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hardening as th  # noqa: E402  (Daemon, Env, Client, check, ...)

check, note, fatal = th.check, th.note, th.fatal
SECRET = "s3cret-for-the-hmac"
# 6 tries 200 ms apart, doubling with jitter (x 0.5-1): dead after 3.1-6.2 s,
# and no delay reaches the cap, so each gap is at least the one before
MAX_TRIES = 6
BACKOFF_MS = 200
DAEMON_FLAGS = ["--sink-max-tries", str(MAX_TRIES), "--sink-backoff-ms", str(BACKOFF_MS),
                "--sink-backoff-max-ms", "10000", "--sink-timeout-ms", "120000"]


def wait_for(cond, timeout, what):
    """Polls cond until it is true (the events come from other processes);
    timeout only guards against a hang."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return check(False, "in time: " + what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------ receiver
class Receiver:
    """The webhook's peer. mode: "ok" (200), "fail" (503) or "hold" (the
    answer waits for release: a delivery in flight, never acknowledged when
    the daemon dies meanwhile). Records (time, delivery id, event, body,
    mode) of every POST that reached it and counts bad signatures. Each
    answer closes its connection, so that stop() is an outage."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got, self.bad_sig, self.mode, self.port, self.srv = [], 0, "ok", 0, None
        self.release = threading.Event()

    def start(self):
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                with rcv.lock:
                    if self.headers.get("X-CFA-Signature") != want:
                        rcv.bad_sig += 1
                    rec = [time.time(), self.headers.get("X-CFA-Delivery"),
                           self.headers.get("X-CFA-Event"), json.loads(body), rcv.mode]
                    rcv.got.append(rec)
                if rec[4] == "hold":
                    rcv.release.wait(120)
                    with rcv.lock:
                        rec[4] = "fail" if rcv.mode == "hold" else rcv.mode
                code = 503 if rec[4] == "fail" else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    def delivered(self, event=None):
        """Bodies the receiver acknowledged (200), by event."""
        with self.lock:
            return [g for g in self.got if g[4] == "ok" and (event is None or g[2] == event)]

    def inspection_ids(self):
        return {g[3]["inspection"]["inspection_id"] for g in self.delivered("inspection")}


# ---------------------------------------------------------------------- MQTT
def mqtt_packet(kind, payload):
    n, rl = len(payload), b""
    while True:
        b, n = n % 128, n // 128
        rl += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return bytes([kind]) + rl + payload


def mqtt_str(s):
    return struct.pack(">H", len(s)) + s.encode()


class Subscriber(threading.Thread):
    """An MQTT 3.1.1 client that subscribes to a filter at QoS 1 and records
    (topic, payload) of every PUBLISH, answering PUBACK."""

    def __init__(self, port, topic_filter):
        super().__init__(daemon=True)
        self.got, self.lock = [], threading.Lock()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(mqtt_packet(0x10, mqtt_str("MQTT") + bytes([4, 2, 0, 0]) +
                                      mqtt_str("cfa-test-sub")))
        kind, _ = self.read_packet()
        if kind != 0x20:
            fatal("mqtt: no CONNACK")
        self.sock.sendall(mqtt_packet(0x82, struct.pack(">H", 1) + mqtt_str(topic_filter) +
                                      bytes([1])))
        kind, _ = self.read_packet()
        if kind != 0x90:
            fatal("mqtt: no SUBACK")
        self.sock.settimeout(None)

    def read_exact(self, n):
        b = b""
        while len(b) < n:
            part = self.sock.recv(n - len(b))
            if not part:
                raise EOFError
            b += part
        return b

    def read_packet(self):
        head = self.read_exact(1)[0]
        n, mult = 0, 1
        while True:
            b = self.read_exact(1)[0]
            n += (b & 0x7f) * mult
            mult *= 128
            if not b & 0x80:
                break
        return head & 0xf0, (head, self.read_exact(n))

    def run(self):
        try:
            while True:
                kind, (head, body) = self.read_packet()
                if kind != 0x30:
                    continue
                tl = struct.unpack(">H", body[:2])[0]
                topic, rest = body[2:2 + tl].decode(), body[2 + tl:]
                if (head >> 1) & 3:
                    self.sock.sendall(mqtt_packet(0x40, rest[:2]))
                    rest = rest[2:]
                with self.lock:
                    self.got.append((topic, json.loads(rest)))
        except (EOFError, OSError):
            pass

    def inspection_ids(self):
        with self.lock:
            return {p["inspection"]["inspection_id"] for _, p in self.got
                    if p.get("event") == "inspection"}


def start_broker(tmp):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = os.path.join(tmp, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
    proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "mosquitto.log"), "w"))

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    if not wait_for(up, 30, "mosquitto listens on %d" % port):
        fatal("mosquitto did not start")
    return proc, port


# ---------------------------------------------------------------- sections
def sec_api(c, rcv, broker_port, pid):
    """Sinks through the API: made, read (no secret), refused, changed."""
    st, web, _, hdrs = c.req("POST", "/v1/sinks", {
        "kind": "webhook", "name": "mes", "url": "http://127.0.0.1:%d/hook" % rcv.port,
        "secret": SECRET, "events": ["inspection", "training.finished", "model.activated"]})
    check(st == 201 and web["has_secret"] is True and "secret" not in web and
          hdrs.get("location") == "/v1/sinks/" + web["id"], "POST webhook sink -> 201, secret hidden")
    st, mq, _, _ = c.req("POST", "/v1/sinks", {
        "kind": "mqtt", "host": "127.0.0.1", "port": broker_port, "product": pid,
        "topic": "cfa/{product}/{decision}", "events": ["inspection.ng"]})
    check(st == 201 and mq["topic"] == "cfa/{product}/{decision}" and mq["qos"] == 1,
          "POST mqtt sink -> 201")
    for body, field in [({"kind": "webhook", "url": "ftp://x", "events": ["inspection"]}, "url"),
                        ({"kind": "webhook", "url": "http://h", "events": ["nope"]}, "events"),
                        ({"kind": "webhook", "url": "http://h", "events": ["inspection"],
                          "colour": 1}, "colour"),
                        ({"kind": "mqtt", "host": "h", "topic": "cfa/#", "events": ["inspection"]},
                         "topic"),
                        ({"kind": "mqtt", "host": "h", "topic": "cfa/{part}",
                          "events": ["inspection"]}, "topic"),
                        ({"kind": "mqtt", "host": "h", "port": 70000, "topic": "t",
                          "events": ["inspection"]}, "port"),
                        ({"kind": "carrier-pigeon", "events": ["inspection"]}, "kind")]:
        st, js, _, _ = c.req("POST", "/v1/sinks", body)
        check(st == 400 and js["error"]["code"] == "invalid_sink" and
              js["error"].get("field") == field, "bad sink (%s) -> 400 naming %s" % (field, field))
    st, js, _, _ = c.req("PATCH", "/v1/sinks/" + web["id"], {"name": "mes-line-1"})
    check(st == 200 and js["name"] == "mes-line-1" and js["has_secret"] is True and
          js["url"] == web["url"], "PATCH name keeps url and secret")
    st, js, _, _ = c.req("PATCH", "/v1/sinks/" + web["id"], {"kind": "mqtt"})
    check(st == 400, "PATCH kind -> 400")
    st, js, _, _ = c.req("GET", "/v1/sinks")
    check(st == 200 and {s["id"] for s in js["sinks"]} == {web["id"], mq["id"]} and
          all("secret" not in s for s in js["sinks"]), "GET /v1/sinks lists both, no secret")
    st, _, _, _ = c.req("GET", "/v1/sinks/" + "0" * 32)
    check(st == 404, "unknown sink -> 404")
    st, _, _, _ = c.req("GET", "/v1/sinks", key=None)
    check(st == 401, "sinks need a key")
    return web["id"], mq["id"]


def inspect_all(c, pid, images, parallel=False):
    """Inspects images one after the other (or all at once); their results."""
    out = [None] * len(images)

    def one(i):
        st, js, _, _ = c.req("POST", "/v1/products/%s/inspect?store=false" % pid, images[i],
                             "image/png")
        out[i] = js if st == 200 else None
    if parallel:
        ts = [threading.Thread(target=one, args=(i,)) for i in range(len(images))]
        [t.start() for t in ts]
        [t.join() for t in ts]
    else:
        [one(i) for i in range(len(images))]
    check(None not in out, "%d inspection(s) -> 200" % len(images))
    return [r for r in out if r is not None]


def sec_deliver(c, rcv, sub, pid, images):
    res = inspect_all(c, pid, images)
    ng = {r["inspection_id"] for r in res if r["decision"] == "NG"}
    ok = {r["inspection_id"] for r in res if r["decision"] == "OK"}
    check(len(ng) > 0 and len(ok) > 0, "both NG (%d) and OK (%d) parts inspected" % (len(ng), len(ok)))
    wait_for(lambda: ng | ok <= rcv.inspection_ids(), 60, "every inspection at the webhook")
    wait_for(lambda: ng <= sub.inspection_ids(), 60, "every NG inspection at the broker")
    time.sleep(0.5)  # an OK delivered by mistake would have come with the NGs
    check(not (ok & sub.inspection_ids()), "no OK inspection at the broker (NG only)")
    with sub.lock:
        topics = {t for t, p in sub.got}
    check(topics == {"cfa/%s/NG" % pid}, "MQTT topic from the template: %s" % sorted(topics))
    check(rcv.bad_sig == 0, "every webhook body carries a valid HMAC signature")
    got = rcv.delivered("inspection")[0][3]["inspection"]
    check(got["product"] == pid and "score" in got and "threshold" in got,
          "the webhook body is the inspection's result")
    kinds = {g[2] for g in rcv.delivered()}
    check({"training.finished", "model.activated"} <= kinds,
          "training's end and the activation reached the webhook: %s" % sorted(kinds))


def sec_kill(env, d, c, rcv, sub, pid, images):
    rcv.mode = "hold"
    rcv.release.clear()
    n0 = len(rcv.got)
    res = inspect_all(c, pid, images, parallel=True)
    wait_for(lambda: len(rcv.got) > n0, 60, "a delivery in flight")
    held = {g[3]["inspection"]["inspection_id"] for g in rcv.got[n0:] if g[2] == "inspection"}
    pending = {r["inspection_id"] for r in res} - rcv.inspection_ids()
    check(len(held) == 1 and held <= pending,
          "deliveries in flight (1) and queued (%d of %d) at the kill" % (len(pending), len(res)))
    d.kill()
    rcv.mode = "fail"  # the held answer goes nowhere: its daemon is gone
    rcv.release.set()
    wait_for(lambda: all(g[4] != "hold" for g in rcv.got), 30, "the held answer given")
    rcv.mode = "ok"
    d.start()
    c.port = d.port
    st, js, _, _ = c.req("GET", "/v1/inspections?product=%s&decision=NG&limit=1000" % pid)
    ng = {r["inspection_id"] for r in js["inspections"]}
    wait_for(lambda: ng <= rcv.inspection_ids(), 60,
             "every NG of the audit trail at the webhook after kill -9 (%d)" % len(ng))
    wait_for(lambda: ng <= sub.inspection_ids(), 60,
             "every NG of the audit trail at the broker after kill -9 (%d)" % len(ng))
    check(held <= rcv.inspection_ids(), "the delivery in flight at the kill came again")
    wait_for(lambda: pending <= rcv.inspection_ids(), 60, "every queued delivery after the restart")


def sink_figures(c, sid):
    st, js, _, _ = c.req("GET", "/v1/sinks/" + sid)
    return js["deliveries"] if st == 200 else {}


def sec_backoff(c, rcv, web, pid, images):
    rcv.mode = "fail"
    n0 = len(rcv.got)
    res = inspect_all(c, pid, images[:1])
    iid = res[0]["inspection_id"] if res else ""

    def tries():
        with rcv.lock:
            return [g[0] for g in rcv.got[n0:] if g[2] == "inspection" and
                    g[3]["inspection"]["inspection_id"] == iid]
    wait_for(lambda: sink_figures(c, web).get("dead") == 1, 60,
             "the delivery is dead after %d tries" % MAX_TRIES)
    t = tries()
    gaps = [b - a for a, b in zip(t, t[1:])]
    check(len(t) == MAX_TRIES, "%d tries of the delivery (got %d)" % (MAX_TRIES, len(t)))
    check(all(b >= a * 0.9 for a, b in zip(gaps, gaps[1:])) and gaps and gaps[-1] > gaps[0] * 2,
          "tries further and further apart: %s s" % ", ".join("%.2f" % g for g in gaps))
    fig = sink_figures(c, web)
    check(fig.get("failed", 0) >= MAX_TRIES and fig.get("queued") == 0,
          "GET /v1/sinks figures: %s" % json.dumps(fig))
    st, _, text, _ = c.req("GET", "/metrics")
    m = text.decode()
    check("# TYPE cfa_sink_dead gauge" in m and
          'cfa_sink_dead{sink="%s",kind="webhook"} 1' % web in m and
          "# HELP cfa_sink_delivered_total" in m and "cfa_sink_oldest_age_seconds{" in m,
          "/metrics has the sink figures with HELP/TYPE")
    rcv.mode = "ok"
    st, js, _, _ = c.req("POST", "/v1/sinks/%s/redeliver" % web)
    check(st == 202 and js["requeued"] == 1, "redeliver -> 202, 1 requeued")
    wait_for(lambda: iid in rcv.inspection_ids(), 30, "the redelivered inspection arrives")
    wait_for(lambda: sink_figures(c, web).get("dead") == 0, 30, "no dead delivery left")


def sec_outage(c, rcv, web, pid, images):
    # the receiver holds the first delivery while the parts are inspected,
    # then goes away: the outage starts with every delivery queued, however
    # long the inspections took
    rcv.mode = "hold"
    rcv.release.clear()
    n0 = len(rcv.got)
    res = inspect_all(c, pid, images, parallel=True)
    ids = {r["inspection_id"] for r in res}
    wait_for(lambda: len(rcv.got) > n0, 60, "a delivery in flight")
    rcv.stop()
    failed0 = sink_figures(c, web)["failed"]
    rcv.mode = "fail"
    rcv.release.set()
    # a while: until two tries failed with connection refused (well before
    # the delivery would be dead)
    wait_for(lambda: sink_figures(c, web)["failed"] >= failed0 + 2, 30, "tries during the outage")
    check(not (ids & rcv.inspection_ids()), "nothing arrives while the receiver is down")
    rcv.mode = "ok"
    rcv.start()  # the same port
    wait_for(lambda: ids <= rcv.inspection_ids(), 60, "catch-up after the outage (%d)" % len(ids))


def sec_events(c, admin_id, pid, started_at):
    st, js, _, _ = c.req("GET", "/v1/events?limit=1000")
    if not check(st == 200, "GET /v1/events -> 200"):
        return
    ev = js["events"]
    kinds = {e["kind"] for e in ev}
    want = {"product.created", "product.changed", "product.deleted", "image.added",
            "image.removed", "training.started", "training.finished", "model.activated",
            "threshold.set", "key.created", "key.revoked", "sink.created", "sink.changed"}
    check(want <= kinds, "a row for each kind of change made: missing %s" % sorted(want - kinds))
    thr = [e for e in ev if e["kind"] == "threshold.set"]
    check(thr and thr[0]["key_id"] == admin_id and thr[0]["before"] is not None and
          thr[0]["after"]["threshold"] != thr[0]["before"]["threshold"],
          "threshold.set has the key id, before and after")
    seqs = [e["seq"] for e in ev]
    check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "events oldest first by seq")
    walked, cursor = [], None
    while True:
        st, page, _, _ = c.req("GET", "/v1/events?limit=3" + ("&cursor=" + cursor if cursor else ""))
        walked += [e["seq"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    check(walked == seqs, "cursor pages of 3 walk the same rows")
    st, js, _, _ = c.req("GET", "/v1/events?kind=sink.created")
    check(st == 200 and len(js["events"]) == 2 and all(e["kind"] == "sink.created" for e in js["events"]),
          "filter kind")
    st, js, _, _ = c.req("GET", "/v1/events?product=%s&until=%s" % (pid, started_at))
    check(st == 200 and js["events"] == [], "filter until (before the test)")
    st, js, _, _ = c.req("GET", "/v1/events?kind=nonsense")
    check(st == 400, "unknown kind -> 400")


def changes(c, pid):
    """Changes the event log must show: a product made, changed and deleted,
    an image removed, a key made and revoked."""
    c.req("POST", "/v1/products", {"id": "tmp-" + pid})
    c.req("PATCH", "/v1/products/tmp-" + pid, {"name": "for the log"})
    png = th.make_png(64, 64)
    st, js, _, _ = c.req("POST", "/v1/products/tmp-%s/images" % pid, png, "image/png")
    c.req("DELETE", "/v1/products/tmp-%s/images/%s" % (pid, th.sha256(png)))
    c.req("DELETE", "/v1/products/tmp-" + pid)
    st, js, _, _ = c.req("POST", "/v1/keys", {"name": "line-2", "role": "inspect"})
    c.req("DELETE", "/v1/keys/" + js["id"])


def main_sections(env):
    tmp = os.path.join(env.tmp, "peers")
    os.makedirs(tmp)
    broker, bport = start_broker(tmp)
    rcv = Receiver()
    rcv.start()
    sub = Subscriber(bport, "cfa/#")
    sub.start()
    t0 = time.time()
    d = env.daemon("sinks", DAEMON_FLAGS)
    try:
        d.start()  # inside: a daemon that does not start still stops the peers
        c = th.Client(d.port, th.ADMIN_KEY)
        started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
        st, keys, _, _ = c.req("GET", "/v1/keys")
        admin_id = keys["keys"][0]["id"]
        pid = "tile"
        print("== section api (%.0f s)" % (time.time() - t0), flush=True)
        web, mq = sec_api(c, rcv, bport, pid)
        th.make_product(c, pid, env.train[:12])
        th.train(c, pid)
        images = env.test[::4]
        # the threshold at the median score: both NG and OK parts
        scores = sorted(r["score"] for r in inspect_all(c, pid, images))
        st, _, _, _ = c.req("PUT", "/v1/products/%s/threshold" % pid,
                            {"threshold": scores[len(scores) // 2]})
        check(st == 200, "PUT threshold")
        print("== section deliver (%.0f s)" % (time.time() - t0), flush=True)
        sec_deliver(c, rcv, sub, pid, images)
        print("== section kill (%.0f s)" % (time.time() - t0), flush=True)
        sec_kill(env, d, c, rcv, sub, pid, images[:4])
        print("== section backoff (%.0f s)" % (time.time() - t0), flush=True)
        sec_backoff(c, rcv, web, pid, images)
        print("== section outage (%.0f s)" % (time.time() - t0), flush=True)
        sec_outage(c, rcv, web, pid, images[:3])
        print("== section events (%.0f s)" % (time.time() - t0), flush=True)
        changes(c, pid)
        sec_events(c, admin_id, pid, started_at)
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
        rcv.release.set()
        rcv.stop()
        broker.terminate()
        broker.wait()


if __name__ == "__main__":
    sys.exit(th.run_sections({"sinks": main_sections}))
