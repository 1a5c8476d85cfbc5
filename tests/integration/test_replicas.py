#!/usr/bin/python3
"""Model bundles and replicas that follow a trainer (issue 16).

  bundle    a trainer and a second daemon, both with --bundle-key-file: the
            bundle of the trainer's version is imported into the second daemon
            (the product created there, the next version, its origin in the
            figures) and scores the same image the same; a bundle with one
            model byte changed (checksum), re-checksummed without the key
            (signature), unsigned, made on another backbone (signed with the
            key, so that only the backbone is wrong), of format version 2, not
            a bundle, of the wrong content type: each a 4xx that stores nothing.
            The import's event-log rows: with the log closed (a trigger in the
            daemon's database) the import is refused and stores no model;
            open, exactly one model.imported (and with ?activate one
            model.activated) row; a version deleted: one model.deleted row
            (refused with the log closed).
            With --cli: `cfa bundle import` checks the same way and writes the
            model file, `cfa bundle export` makes a bundle the daemon imports.
  replicas  one trainer and two replicas (--follow) behind Debian's nginx
            (config generated here, upstream of the two replicas with
            proxy_next_upstream error timeout): the replicas are not ready
            before the trainer has a model; training on the trainer makes both
            serve the new version; training and uploads on a replica are 409
            read_only_replica naming the trainer; a threshold changed on the
            trainer is copied. Under a load of CLIENTS clients through nginx one
            replica is killed with SIGKILL: every request gets a 200 except at
            most one per client (those in flight on the killed replica, which
            nginx does not send twice: POST is not idempotent). Then the
            trainer is stopped: the replica keeps serving, stays ready and says
            in /metrics that the trainer is down; the trainer comes back on the
            same port with a new version, and the replica catches up. A
            replica's own event log has its imports, activations and threshold
            copies (model.imported, model.activated, threshold.set) with no key
            and request id "follow".

usage: test_replicas.py --server build/cfa-server --backbone X.pt --data DIR
                        [--only bundle,replicas] [--nginx /usr/sbin/nginx] [--cli build/cfa]
"""
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_events_atomic as ea  # noqa: E402  (the log closed by a trigger)
import test_hardening as th  # noqa: E402  (Daemon, Env, Client, check, ...)

check, note, fatal = th.check, th.note, th.fatal
BUNDLE_KEY = b"replica-test-bundle-key-" + os.urandom(8).hex().encode()
BUNDLE_CT = "application/vnd.cfa.bundle"
CLIENTS = 4          # load through nginx
GUARD_S = 120        # only against hangs: how long a replica may take to follow
NGINX = "/usr/sbin/nginx"
CLI = None           # --cli build/cfa: the bundle section checks `cfa bundle` too


STARTED = []  # every daemon and nginx a section started, killed if it ends early


def started(d):
    STARTED.append(d)
    return d


def cleanup():
    """Kills what a section left running (a FATAL check, an exception)."""
    for d in STARTED:
        if d.proc is None or d.proc.poll() is not None:
            continue
        if isinstance(d, Nginx):
            d.stop()  # its workers would outlive a killed master
        else:
            d.proc.kill()
            d.proc.wait()
    STARTED.clear()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, fn, timeout=GUARD_S, every=0.1):
    """Polls fn until it returns a true value; the seconds it took, or None."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if fn():
                return time.time() - t0
        except OSError:
            pass
        time.sleep(every)
    check(False, "%s within %d s" % (what, timeout))
    return None


# ------------------------------------------------------------------- bundles
def split(b):
    """(manifest dict, model bytes) of a bundle (bundle.h gives the layout)."""
    ml = struct.unpack(">I", b[12:16])[0]
    man = json.loads(b[16:16 + ml])
    mlen = struct.unpack(">Q", b[16 + ml:24 + ml])[0]
    return man, b[24 + ml:24 + ml + mlen]


def make(man, model, key=None, version=1):
    """A bundle of manifest and model, checksummed, signed with key if any."""
    m = json.dumps(man, separators=(",", ":"), sort_keys=True).encode()
    body = (b"CFABNDL\n" + struct.pack(">II", version, len(m)) + m +
            struct.pack(">Q", len(model)) + model)
    body += hashlib.sha256(body).digest()
    return body + (hmac.new(key, body, hashlib.sha256).digest() if key else b"\0" * 32)


def score(c, pid, img):
    st, js, _, _ = c.req("POST", "/v1/products/%s/inspect?store=false" % pid, img, "image/png")
    return js if st == 200 else None


def models(c, pid):
    st, js, _, _ = c.req("GET", "/v1/products/%s/models" % pid)
    return js["models"] if st == 200 else []


def sec_bundle(env):
    keyfile = os.path.join(env.tmp, "bundle.key")
    with open(keyfile, "wb") as f:
        f.write(BUNDLE_KEY + b"\n")  # as echo writes it: the newline is not part of the key
    a = started(env.daemon("bundle-a", ["--bundle-key-file", keyfile])).start()
    b = started(env.daemon("bundle-b", ["--bundle-key-file", keyfile])).start()
    ca, cb = th.Client(a.port, th.ADMIN_KEY), th.Client(b.port, th.ADMIN_KEY)
    th.make_product(ca, "tile", env.train[:12])
    th.train(ca, "tile")
    st, _, bundle, hdr = ca.req("GET", "/v1/products/tile/models/1/bundle")
    check(st == 200 and hdr.get("content-type") == BUNDLE_CT and bundle[:8] == b"CFABNDL\n",
          "GET .../models/1/bundle -> 200 %s (got %d)" % (BUNDLE_CT, st))
    man, model = split(bundle)
    st, _, artifact, _ = ca.req("GET", "/v1/products/tile/models/1/artifact")
    check(model == artifact, "the bundle carries the model file (the artifact) unchanged")
    check(man["signed"] is True and man["format_version"] == 1 and
          abs(man["model"]["threshold"] - models(ca, "tile")[0]["threshold"]) <=
          1e-6 * man["model"]["threshold"],
          "manifest: signed, format version 1, the version's threshold")

    def refused(body, status, code, what, ct=BUNDLE_CT):
        th.expect_error(cb.req("POST", "/v1/products/tile/models", body, ct), status, what, code)

    refused(b"not a bundle at all, just some bytes" * 4, 400, "invalid_bundle", "not a bundle")
    flipped = bytearray(bundle)
    flipped[len(bundle) - 200] ^= 1
    refused(bytes(flipped), 422, "bundle_checksum_mismatch", "one model byte changed")
    changed = make(man, model[:-1] + bytes([model[-1] ^ 1]))
    changed = changed[:-32] + bundle[-32:]  # the old signature over a new checksum
    refused(changed, 403, "bundle_signature_invalid", "re-checksummed without the key")
    refused(make(dict(man, signed=False), model), 403, "bundle_unsigned", "an unsigned bundle")
    other = dict(man, model=dict(man["model"], backbone_sha256="ab" * 32))
    refused(make(other, model, BUNDLE_KEY), 409, "backbone_mismatch",
            "signed, but made on another backbone")
    refused(make(man, model, BUNDLE_KEY, version=2), 422, "unsupported_bundle_version",
            "format version 2")
    refused(bundle, 415, "unsupported_media_type", "as image/png", ct="image/png")
    st, _, _, _ = cb.req("GET", "/v1/products/tile")
    check(st == 404, "nothing stored by the refused bundles (product absent: %d)" % st)

    ea.sql(b, ea.CLOSE)
    try:
        st, _, _, _ = cb.req("POST", "/v1/products/tile/models?activate=true", bundle, BUNDLE_CT)
    finally:
        ea.sql(b, ea.REOPEN)
    check(not 200 <= st < 300 and models(cb, "tile") == [] and
          ea.rows_of(b, "model.imported") == 0 and ea.rows_of(b, "model.activated") == 0,
          "import with the event log closed: refused, no model, no row (got %d)" % st)
    st, js, _, hdr = cb.req("POST", "/v1/products/tile/models?activate=true", bundle, BUNDLE_CT)
    check(st == 201 and js["version"] == 1 and js["active"] and
          js["figures"]["origin"]["version"] == 1 and
          js["figures"]["origin"]["product"] == "tile" and
          hdr.get("location") == "/v1/products/tile/models/1",
          "import -> 201, version 1, active, origin in the figures (got %d %s)"
          % (st, json.dumps(js)[:300]))
    img = env.test[0]
    sa, sb = score(ca, "tile", img), score(cb, "tile", img)
    check(sa is not None and sb is not None and abs(sa["score"] - sb["score"]) <=
          1e-6 * max(1.0, abs(sa["score"])) and sa["threshold"] == sb["threshold"] and
          sa["decision"] == sb["decision"],
          "the same score on both daemons (%s vs %s)" % (sa and sa["score"], sb and sb["score"]))
    st, js, _, _ = cb.req("POST", "/v1/products/tile/models", bundle, "application/octet-stream")
    check(st == 201 and js["version"] == 2 and not js["active"],
          "imported again: the next version (2), not activated (got %d)" % st)
    bundle_events(b, cb, js)
    th.serves(cb, "the bundle checks")
    if CLI:
        cli_bundles(env, keyfile, cb, bundle, artifact, sa)
    a.stop()
    b.stop()


def bundle_events(b, cb, second):
    """Two imports (activated, then not): their rows; then version 2 deleted."""
    st, js, _, _ = cb.req("GET", "/v1/events?limit=1000&product=tile")
    ev = js["events"] if st == 200 else []
    imp = [e for e in ev if e["kind"] == "model.imported"]
    act = [e for e in ev if e["kind"] == "model.activated"]
    sha = second["figures"]["origin"]["bundle_sha256"]
    check(len(imp) == 2 and len(act) == 1 and
          [(e["after"]["version"], e["after"]["activated"]) for e in imp] == [(1, True),
                                                                          (2, False)] and
          all(e["after"]["origin"]["bundle_sha256"] == sha and e["key_id"] for e in imp) and
          act[0]["after"]["active_version"] == 1 and act[0]["request_id"] == imp[0]["request_id"],
          "two imports: a model.imported row each (version, activated, the bundle's sha256, "
          "the key), one model.activated (%s)" % json.dumps(imp + act)[:600])
    n = ea.rows_of(b, "model.deleted")
    ea.sql(b, ea.CLOSE)
    try:
        st, _, _, _ = cb.req("DELETE", "/v1/products/tile/models/2")
    finally:
        ea.sql(b, ea.REOPEN)
    check(not 200 <= st < 300 and len(models(cb, "tile")) == 2 and
          ea.rows_of(b, "model.deleted") == n,
          "DELETE version 2 with the event log closed: refused, kept, no row (got %d)" % st)
    st, _, _, _ = cb.req("DELETE", "/v1/products/tile/models/2")
    st_e, js, _, _ = cb.req("GET", "/v1/events?kind=model.deleted&product=tile")
    dels = js["events"] if st_e == 200 else []
    check(st == 204 and len(dels) == n + 1 and dels[-1]["before"] == {
        "version": 2, "threshold": second["threshold"],
        "threshold_ng": second["threshold_ng"]} and dels[-1]["after"] is None,
          "DELETE version 2: exactly one model.deleted row, before = its thresholds (%s)"
          % (dels[-1:],))


def cfa(*args):
    p = subprocess.run([CLI, "bundle"] + list(args), capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout, p.stderr


def cli_bundles(env, keyfile, cb, bundle, artifact, sa):
    """`cfa bundle import` checks a daemon's bundle as the daemon does and gives
    its model file; `cfa bundle export` makes one the daemon imports."""
    d = os.path.join(env.tmp, "cli")
    os.makedirs(d, exist_ok=True)
    path, model = os.path.join(d, "tile.cfab"), os.path.join(d, "model.cfa")
    open(path, "wb").write(bundle)
    bb = ["--backbone", env.a.backbone]
    rc, out, err = cfa("import", path, "--out", model, "--key-file", keyfile, *bb)
    check(rc == 0 and open(model, "rb").read() == artifact and
          json.loads(out)["model"]["version"] == 1,
          "cfa bundle import: the model file and the manifest (rc %d %s)" % (rc, err[-200:]))
    wrong = os.path.join(d, "wrong.key")
    open(wrong, "w").write("another key")
    rc, _, err = cfa("import", path, "--out", model, "--key-file", wrong, *bb)
    check(rc == 1 and "signature" in err, "cfa bundle import with another key -> refused (%s)"
          % err.strip()[-120:])
    flipped = bytearray(bundle)
    flipped[len(bundle) - 200] ^= 1
    open(path, "wb").write(bytes(flipped))
    rc, _, err = cfa("import", path, "--out", model, *bb)
    check(rc == 1 and "checksum" in err, "cfa bundle import of a changed bundle -> refused")
    out_b = os.path.join(d, "export.cfab")
    thr = sa["threshold"]
    rc, _, err = cfa("export", "--model", os.path.join(d, "model.cfa"), "--product", "cli-tile",
                     "--threshold", repr(thr), "--out", out_b, "--key-file", keyfile)
    st, js, _, _ = cb.req("POST", "/v1/products/cli-tile/models?activate=true",
                          open(out_b, "rb").read() if rc == 0 else b"", BUNDLE_CT)
    check(rc == 0 and st == 201 and js["threshold"] == models(cb, "tile")[0]["threshold"],
          "cfa bundle export -> the daemon imports it (rc %d %s, %d)" % (rc, err[-200:], st))
    sc = score(cb, "cli-tile", env.test[0])
    check(sc is not None and abs(sc["score"] - sa["score"]) <= 1e-6 * max(1.0, sa["score"]),
          "the CLI's bundle scores as the trainer (%s vs %s)" % (sc and sc["score"], sa["score"]))


# ------------------------------------------------------------------ replicas
# No upstream keep-alive: a request sent on an idle connection to the replica
# just killed would fail after it was sent, and nginx does not send a POST
# twice; a fresh connection is refused before anything is sent, and nginx
# tries the next replica (proxy_next_upstream error).
NGINX_CONF = """
%(user)s
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 512; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    upstream replicas {
%(servers)s
    }
    server {
        listen 127.0.0.1:%(port)d;
        client_max_body_size 64m;
        client_body_buffer_size 16m;
        location / {
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 300s;
        }
    }
}
"""


class Nginx:
    def __init__(self, env, *ports):
        self.dir = os.path.join(env.tmp, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            servers = "\n".join("        server 127.0.0.1:%d max_fails=1 fail_timeout=60s;" % p
                                 for p in ports)
            f.write(NGINX_CONF % {"dir": self.dir, "servers": servers, "port": self.port,
                                  "user": "user root;" if os.geteuid() == 0 else ""})
        self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf, "-g",
                                      "daemon off;"], stderr=open(os.path.join(self.dir, "stderr"), "w"))
        c = th.Client(self.port)
        wait_for("nginx listening", lambda: c.req("GET", "/healthz", timeout=5)[0] == 200)

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load(port, img, stop, results, lock):
    """One client through nginx: POST inspect until stop; (t0, t1, status)."""
    c = th.Client(port, th.ADMIN_KEY)
    while not stop.is_set():
        t0 = time.time()
        try:
            st = c.req("POST", "/v1/products/tile/inspect?store=false", img, "image/png",
                       timeout=300)[0]
        except OSError:
            st = -1
        with lock:
            results.append((t0, time.time(), st))


def serving(c, version):
    """The replica's active version is its copy of the trainer's version."""
    active = [m for m in models(c, "tile") if m["active"]]
    return bool(active) and active[0]["figures"].get("origin", {}).get("version") == version


def metric(c, name):
    st, _, text, _ = c.req("GET", "/metrics")
    m = re.search(rb"^" + name.encode() + rb" ([0-9.e+-]+)$", text, re.M) if st == 200 else None
    return float(m.group(1)) if m else None


def kill_under_load(env, ng, r1, img):
    stop, lock, results = threading.Event(), threading.Lock(), []
    threads = [threading.Thread(target=load, args=(ng.port, img, stop, results, lock))
               for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    wait_for("requests through nginx", lambda: len(results) >= 3 * CLIENTS, timeout=600)
    t_kill = time.time()
    r1.kill()
    n_at_kill = len(results)
    wait_for("requests after the kill", lambda: len(results) >= n_at_kill + 3 * CLIENTS,
             timeout=600)
    stop.set()
    for t in threads:
        t.join()
    bad = [r for r in results if r[2] != 200]
    in_flight = [r for r in bad if r[0] <= t_kill <= r[1]]
    check(len(results) > 0 and len(bad) == len(in_flight) and len(bad) <= CLIENTS,
          "SIGKILL of a replica under load: %d requests, %d not 200, all in flight at the kill "
          "(at most %d): %s" % (len(results), len(bad), CLIENTS, [r[2] for r in bad]))
    before = [r for r in results if r[1] < t_kill]
    after = [r for r in results if r[0] > t_kill and r[2] == 200]
    if before and after:
        note("through nginx, %d clients: %.2f inspections/s with 2 replicas, %.2f with 1 "
             "(after the kill)" % (CLIENTS, len(before) / (t_kill - min(r[0] for r in before)),
                                   len(after) / (max(r[1] for r in after) - t_kill)))


def replica(env, name, trainer_port):
    return env.daemon(name, ["--follow", "http://127.0.0.1:%d" % trainer_port,
                             "--follow-key", th.ADMIN_KEY, "--follow-interval-ms", "250"])


def sec_replicas(env):
    if not os.path.exists(NGINX):
        fatal("nginx not found at %s (apt-get install nginx-light)" % NGINX)
    tport = free_port()
    t = started(env.daemon("trainer")).start(extra=["--listen", "127.0.0.1:%d" % tport])
    ct = th.Client(t.port, th.ADMIN_KEY)
    r1 = started(replica(env, "replica1", tport)).start()
    r2 = started(replica(env, "replica2", tport)).start()
    c1, c2 = th.Client(r1.port, th.ADMIN_KEY), th.Client(r2.port, th.ADMIN_KEY)
    th.expect_error(c1.req("GET", "/readyz"), 503, "a replica without a model: /readyz",
                    "not_ready")
    ng = started(Nginx(env, r1.port, r2.port))
    th.make_product(ct, "tile", env.train[:12])
    th.train(ct, "tile")
    took = [wait_for("replica %d serves version 1" % i, lambda c=c: serving(c, 1))
            for i, c in ((1, c1), (2, c2))]
    if None not in took:
        note("both replicas served the trainer's new version %.1f s after the job ended"
             % max(took))
    # ready once the poll that imported the model has recorded it
    wait_for("a replica with a model: /readyz 200", lambda: c1.req("GET", "/readyz")[0] == 200)
    img = env.test[0]
    st, js, _, _ = th.Client(ng.port, th.ADMIN_KEY).req(
        "POST", "/v1/products/tile/inspect", img, "image/png")
    check(st == 200 and js["model_version"] == 1, "inspection through nginx -> 200 (%d)" % st)
    for what, resp in (("train", c2.req("POST", "/v1/products/tile/train", {})),
                       ("upload", c2.req("POST", "/v1/products/tile/images", env.train[0],
                                         "image/png"))):
        ok = th.expect_error(resp, 409, what + " on a replica", "read_only_replica")
        if ok:
            check("127.0.0.1:%d" % tport in resp[1]["error"]["message"],
                  "the 409 names the trainer: " + resp[1]["error"]["message"])
    thr = models(ct, "tile")[0]["threshold"] * 1.25
    check(ct.req("PUT", "/v1/products/tile/threshold", {"threshold": thr})[0] == 200,
          "threshold changed on the trainer")
    shown = ct.req("GET", "/v1/products/tile")[1]["threshold"]
    wait_for("replicas copy the threshold", lambda: all(
        c.req("GET", "/v1/products/tile")[1]["threshold"] == shown for c in (c1, c2)))
    follower_events(c1, shown)

    kill_under_load(env, ng, r1, img)

    t.stop()
    wait_for("replica 2 sees the trainer down", lambda: metric(c2, "cfa_follow_trainer_up") == 0)
    st = score(c2, "tile", img)
    check(st is not None and c2.req("GET", "/readyz")[0] == 200,
          "trainer down: the replica serves (%s) and stays ready" % (st and st["score"]))
    synced = metric(c2, "cfa_follow_last_sync_timestamp_seconds")
    check(synced is not None and 0 < synced <= time.time(),
          "cfa_follow_last_sync_timestamp_seconds says when it last synced (%s)" % synced)
    t = started(env.daemon("trainer")).start(extra=["--listen", "127.0.0.1:%d" % tport])
    ct = th.Client(t.port, th.ADMIN_KEY)
    _, _, bundle, _ = ct.req("GET", "/v1/products/tile/models/1/bundle")
    st, js, _, _ = ct.req("POST", "/v1/products/tile/models?activate=true", bundle, BUNDLE_CT)
    check(st == 201 and js["version"] == 2, "trainer back with version 2 (%d)" % st)
    took = wait_for("replica 2 catches up to version 2", lambda: serving(c2, 2))
    if took is not None:
        note("the replica caught up %.1f s after the trainer's new version" % took)
    sj = score(c2, "tile", img)
    check(sj is not None and sj["model_version"] == 2 and metric(c2, "cfa_follow_trainer_up") == 1,
          "the replica serves version 2, trainer up again")
    ng.stop()
    r2.stop()
    t.stop()


def follower_events(c, thr):
    """What the replica took from its trainer is in its own event log, once
    each (the trainer's threshold as listed, 9 digits, is no change of the
    one its bundle carried): no key, request id "follow"."""
    st, js, _, _ = c.req("GET", "/v1/events?limit=1000&product=tile")
    ev = js["events"] if st == 200 else []
    kinds = [e["kind"] for e in ev]
    check(kinds == ["model.imported", "model.activated", "threshold.set"] and
          ev[0]["after"]["version"] == 1 and ev[0]["after"]["activated"] is True and
          ev[2]["after"]["threshold"] == thr and
          all(e["key_id"] is None and e["request_id"] == "follow" for e in ev),
          "the replica's event log: model.imported, model.activated, threshold.set (the "
          "trainer's change), each with no key and request id follow (%s)"
          % json.dumps(ev)[:900])


def guarded(fn):
    def run(env):
        try:
            fn(env)
        finally:
            cleanup()
    return run


SECTIONS = {"bundle": guarded(sec_bundle), "replicas": guarded(sec_replicas)}

if __name__ == "__main__":
    for flag in ("--nginx", "--cli"):
        if flag in sys.argv:
            i = sys.argv.index(flag)
            globals()[flag[2:].upper()] = sys.argv[i + 1]
            del sys.argv[i:i + 2]
    sys.exit(th.run_sections(SECTIONS))
