#!/usr/bin/python3
"""Production-hardening tests of cfa-server (docs/RELIABILITY.md).

Each section starts the real daemon on 127.0.0.1 port 0 with a fresh data
directory and the real backbone, provokes one kind of fault and checks that
the daemon keeps serving and loses nothing:

  limits    413 body bytes, 422 pixel/dimension bombs, too many parts, images
            per product, slow clients (connection timeout), connection limit
  roles     every route of the served OpenAPI document x every role, secrets
            absent from the log and the database, path traversal in ids
  crash     SIGKILL during a multipart upload, during training and under a
            stream of inspections; restart on the same data directory
  shutdown  SIGTERM/SIGINT: in-flight requests finish, training is
            interrupted and re-queued, exit code 0
  tls       --tls-cert/--tls-key with a certificate generated at test time
  overload  loopback load at several times capacity: only 200/503, bounded
            resident memory (VmHWM), normal service right after

usage: test_hardening.py --server build/cfa-server --backbone X.pt --data DIR
                         --only limits,roles [--keep]
Python 3 standard library only (plus openssl or certtool for tls). Exit 0 =
pass; a missing certificate tool fails the tls section.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib

import daemon_proc

ADMIN_KEY = "hard-admin-" + uuid.uuid4().hex
TRAIN = {"epochs": 1, "gamma_c": 4, "gamma_d": 4}
failures = []
notes = []  # measured figures, printed at the end for docs/RELIABILITY.md


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def fatal(what):
    print("FATAL " + what, flush=True)
    sys.exit(1)


def note(what):
    print("  note " + what, flush=True)
    notes.append(what)


# --------------------------------------------------------------------- daemon
class Daemon:
    def __init__(self, a, data_dir, log_path, extra=()):
        self.a, self.data_dir, self.log_path, self.extra = a, data_dir, log_path, list(extra)
        self.proc = None
        self.port = None

    def start(self, timeout=180, extra=None):
        env = dict(os.environ)
        env["CFA_ADMIN_KEY"] = ADMIN_KEY
        args = [self.a.server, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
                "--backbone", self.a.backbone] + self.extra + list(extra or [])
        try:
            self.proc, self.port, self.log = daemon_proc.spawn(args, env, self.log_path, timeout)
        except RuntimeError as e:
            fatal(str(e))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=120):
        return daemon_proc.stop(self.proc, self.log, sig, timeout)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def vm(self, field="VmHWM"):
        """kB of a /proc/PID/status field."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0


Client = daemon_proc.Client


def expect_error(resp, status, what, code=None):
    st, js, _, _ = resp
    ok = st == status and isinstance(js, dict) and isinstance(js.get("error"), dict)
    if ok and code is not None:
        ok = js["error"].get("code") == code
    return check(ok, "%s -> %d %s (got %d %s)" % (what, status, code or "", st,
                                                  json.dumps(js)[:160] if js else ""))


def serves(c, what):
    """The daemon still serves an ordinary authenticated request."""
    try:
        st, js, _, _ = c.req("GET", "/v1/products", timeout=30)
    except OSError as e:
        st, js = -1, str(e)
    return check(st == 200 and "products" in js, "still serves after " + what)


# ------------------------------------------------------------------- images
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)


def make_png(w, h, seed=0, text=None):
    """A valid 8-bit grayscale PNG (noise from seed), optionally with a tEXt chunk."""
    rnd = random.Random(seed)
    raw = b"".join(b"\x00" + bytes(rnd.getrandbits(8) for _ in range(w)) for _ in range(h))
    extra = chunk(b"tEXt", b"Comment\x00" + text.encode()) if text else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_bomb(w, h):
    """A small PNG whose header claims w x h pixels: one zlib stream of zeros
    that would inflate to gigabytes if anybody decoded it."""
    z = zlib.compressobj(9)
    row = b"\x00" * (w + 1)
    data = b"".join(z.compress(row) for _ in range(min(h, 64))) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def jpeg_bomb(w, h):
    """A JPEG header (SOI, DQT, SOF0 claiming w x h, DHT, SOS) and a few bytes."""
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes([1] * 64)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, h, w, 1) + b"\x01\x11\x00"
    dht = b"\xff\xc4" + struct.pack(">H", 20) + b"\x00" + bytes([1] + [0] * 15) + b"\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + dqt + sof + dht + sos + b"\x00" * 64 + b"\xff\xd9"


def multipart(files, ctype="image/png"):
    boundary = "----cfa" + uuid.uuid4().hex
    out = bytearray()
    for i, (name, data) in enumerate(files):
        out += ("--%s\r\nContent-Disposition: form-data; name=\"image%d\"; filename=\"%s\"\r\n"
                "Content-Type: %s\r\n\r\n" % (boundary, i, name, ctype)).encode()
        out += data + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return bytes(out), "multipart/form-data; boundary=" + boundary


def wait_job(c, job_id, states=("succeeded", "failed", "canceled"), timeout=900):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, js, _, _ = c.req("GET", "/v1/jobs/" + job_id)
        if st == 200 and js["state"] in states:
            return js
        time.sleep(0.3)
    fatal("job %s did not reach %s" % (job_id, states))


def sha256(b):
    return hashlib.sha256(b).hexdigest()


class Env:
    """Paths and data shared by the sections."""
    def __init__(self, a):
        self.a = a
        ds = os.path.join(a.data, "magnetic_tile_mini")
        if not os.path.exists(a.backbone) or not os.path.isdir(ds):
            print("FAIL: backbone %s or data %s missing (run tools/setup.sh)" % (a.backbone, ds))
            sys.exit(1)
        self.train = [open(os.path.join(ds, "train", "good", f), "rb").read()
                      for f in sorted(os.listdir(os.path.join(ds, "train", "good")))]
        self.test = []
        for d in sorted(os.listdir(os.path.join(ds, "test"))):
            for f in sorted(os.listdir(os.path.join(ds, "test", d))):
                self.test.append(open(os.path.join(ds, "test", d, f), "rb").read())
        self.tmp = tempfile.mkdtemp(prefix="cfa-hard-")

    def daemon(self, name, extra=()):
        data_dir = os.path.join(self.tmp, name, "var")
        os.makedirs(os.path.dirname(data_dir), exist_ok=True)
        log = os.path.join(self.tmp, name, "server.log")
        print("  (%s: data %s, log %s)" % (name, data_dir, log), flush=True)
        return Daemon(self.a, data_dir, log, extra)


def make_product(c, pid, images):
    st, _, _, _ = c.req("POST", "/v1/products", {"id": pid})
    check(st == 201, "create product " + pid)
    body, ct = multipart([("%d.png" % i, b) for i, b in enumerate(images)])
    st, js, _, _ = c.req("POST", "/v1/products/%s/images" % pid, body, ct)
    check(st == 201 and len(js["images"]) == len(set(map(sha256, images))),
          "upload %d training images" % len(images))


def train(c, pid, wait=True):
    st, js, _, _ = c.req("POST", "/v1/products/%s/train" % pid, TRAIN)
    if not check(st == 202, "POST train -> 202 (got %d)" % st):
        fatal("cannot train")
    if not wait:
        return js["job"]
    job = wait_job(c, js["job"]["id"])
    check(job["state"] == "succeeded", "training %s succeeded (%s)" % (job["id"], job.get("error")))
    return job


# ------------------------------------------------------------------- limits
def keepalive_ok(s):
    """One GET /healthz on the open socket s: whether it answered 200 (and
    so is held open by the daemon)."""
    try:
        s.settimeout(10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
    except OSError:
        return False
    return got.startswith(b"HTTP/1.1 200")


def sec_limits(env):
    d = env.daemon("limits", ["--max-body-mb", "2", "--max-pixels", "1000000",
                              "--request-timeout", "2", "--max-connections", "8",
                              "--max-images", "5"]).start()
    c = Client(d.port, ADMIN_KEY)
    st, js, _, _ = c.req("GET", "/v1/info")
    check(st == 200 and js["limits"]["max_images_per_product"] == 5
          and js["limits"]["max_images_per_upload"] >= 1, "GET /v1/info lists the limits")
    c.req("POST", "/v1/products", {"id": "lim"})

    expect_error(c.req("POST", "/v1/products/lim/images", os.urandom(3 << 20), "image/png"), 413,
                 "3 MiB body over a 2 MiB limit", "body_too_large")
    serves(c, "413")
    expect_error(c.req("POST", "/v1/products", b"[" * (3 << 20), "application/json"), 413,
                 "3 MiB JSON body", "body_too_large")
    serves(c, "413 on JSON")

    for what, img in (("PNG claiming 20000 x 20000", png_bomb(20000, 20000)),
                      ("PNG claiming 2000 x 2000 (4 Mpx over 1 Mpx)", png_bomb(2000, 2000)),
                      ("PNG claiming 65535 x 8 (a side over 16384)", png_bomb(65535, 8)),
                      ("JPEG claiming 60000 x 60000", jpeg_bomb(60000, 60000))):
        ct = "image/png" if img[:4] == b"\x89PNG" else "image/jpeg"
        t0 = time.time()
        expect_error(c.req("POST", "/v1/products/lim/images", img, ct), 422,
                     "decompression bomb: %s (%d bytes)" % (what, len(img)), "image_too_large")
        check(time.time() - t0 < 5, "refused from the header, quickly")
        serves(c, "a bomb")
    body, ct = multipart([("bomb.png", png_bomb(30000, 30000))])
    expect_error(c.req("POST", "/v1/products/lim/images", body, ct), 422, "bomb in a multipart part",
                 "image_too_large")

    body, ct = multipart([("%d.png" % i, make_png(8, 8, i)) for i in range(300)])
    expect_error(c.req("POST", "/v1/products/lim/images", body, ct), 413,
                 "300 parts in one upload", "too_many_parts")
    serves(c, "too many parts")
    imgs = [make_png(16, 16, 100 + i) for i in range(6)]
    body, ct = multipart([("%d.png" % i, b) for i, b in enumerate(imgs[:5])])
    st, js, _, _ = c.req("POST", "/v1/products/lim/images", body, ct)
    check(st == 201 and len(js["images"]) == 5, "5 images up to the per-product limit")
    expect_error(c.req("POST", "/v1/products/lim/images", imgs[5], "image/png"), 409,
                 "6th image over --max-images 5", "too_many_images")
    st, js, _, _ = c.req("GET", "/v1/products/lim/images")
    check(st == 200 and len(js["images"]) == 5, "the refused image was not stored")

    # slow client: headers never finished; MHD closes it after --request-timeout 2
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(b"POST /v1/products/lim/images HTTP/1.1\r\nHost: x\r\nContent-Le")
    s.settimeout(15)
    t0 = time.time()
    try:
        got = s.recv(100)
    except (socket.timeout, ConnectionResetError):
        got = None
    waited = time.time() - t0
    check(got is not None and got == b"" or got and b"408" in got,
          "slow client (half a header) is disconnected after %.1f s (timeout 2 s)" % waited)
    check(waited < 10, "slow client dropped within the timeout")
    s.close()
    # slowloris body: a declared body trickled
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(("POST /v1/products/lim/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n" % ADMIN_KEY).encode())
    closed = False
    t0 = time.time()
    try:
        while time.time() - t0 < 12:
            time.sleep(3)  # longer than the timeout between bytes
            s.sendall(b"x")
    except OSError:
        closed = True
    check(closed, "slowloris body (1 byte / 3 s) is disconnected (%.1f s)" % (time.time() - t0))
    s.close()
    serves(c, "slow clients")

    # connection limit: 8 idle connections fill it; a 9th is served, the idle
    # connection that waited longest for a request making room (api/conn.c;
    # the slow clients themselves: test_hardening_slow.py)
    # each idle connection first completes one keep-alive request, so the
    # daemon has surely accepted all 8 (on a loaded machine its listener can
    # lag behind any fixed pause); they then sit idle until --request-timeout
    # (2 s) and the 9th is tried in that window. One closed before its
    # request (a connection of the checks above still held a slot, so the
    # daemon made room) is opened again.
    idle = []
    for i in range(8):
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", d.port))
            ok = keepalive_ok(s)
            if ok:
                break
            s.close()
            time.sleep(0.3)
        check(ok, "idle connection %d is open" % i)
        idle.append(s)
    try:
        st, _, _, _ = c.req("GET", "/v1/products", timeout=30)
    except (OSError, http.client.HTTPException):
        st = None
    check(st == 200, "9th connection over --max-connections 8 is served (%s)" % st)
    for s in idle:
        s.close()
    time.sleep(0.5)
    serves(c, "the connection limit")
    # and the same while the idle ones linger until their timeout
    idle = [socket.create_connection(("127.0.0.1", d.port)) for _ in range(8)]
    time.sleep(4)  # > request timeout: the server drops them
    serves(c, "idle connections that filled the limit timed out")
    for s in idle:
        s.close()

    # inspections that end before reaching the pool (no model, too big, unknown
    # product, a body the client never finishes) must not stay announced, or
    # every later batch would wait --batch-wait-ms for them
    expect_error(c.req("POST", "/v1/products/lim/inspect", make_png(16, 16), "image/png"), 422,
                 "inspect a product without a model", "no_model")
    expect_error(c.req("POST", "/v1/products/lim/inspect", os.urandom(3 << 20), "image/png"), 413,
                 "inspect a 3 MiB body over the 2 MiB limit", "body_too_large")
    expect_error(c.req("POST", "/v1/products/nope/inspect", make_png(16, 16), "image/png"), 404,
                 "inspect an unknown product")
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(("POST /v1/products/lim/inspect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: image/png\r\nContent-Length: 100000\r\n\r\nabc" % ADMIN_KEY).encode())
    s.settimeout(15)
    try:
        s.recv(100)  # the server drops it after --request-timeout 2
    except OSError:
        pass
    s.close()
    time.sleep(0.5)
    st, _, body, _ = c.req("GET", "/metrics")
    arriving = [l for l in body.decode().splitlines() if l.startswith("cfa_inspect_arriving ")]
    check(st == 200 and arriving == ["cfa_inspect_arriving 0"],
          "no inspection left announced to the pool after the failed ones (%s)" % arriving)
    check(d.stop() == 0, "SIGTERM -> exit 0")


# -------------------------------------------------------------------- roles
ROLE_RANK = {None: 0, "inspect": 1, "operate": 2, "admin": 3}
SAMPLE = {"id": "no-such-thing", "image_id": "0" * 64, "job_id": "no-such-job", "version": "999"}


def sec_roles(env):
    d = env.daemon("roles").start()
    admin = Client(d.port, ADMIN_KEY)
    keys = {"admin": ADMIN_KEY}
    for role in ("inspect", "operate"):
        st, js, _, _ = admin.req("POST", "/v1/keys", {"name": "t-" + role, "role": role})
        check(st == 201, "create %s key" % role)
        keys[role] = js["key"]
    st, doc, _, _ = Client(d.port).req("GET", "/v1/openapi.json")
    check(st == 200, "GET /v1/openapi.json")
    creds = [("no key", None, 0), ("unknown key", "x" * 40, 0), ("inspect", keys["inspect"], 1),
             ("operate", keys["operate"], 2), ("admin", keys["admin"], 3)]
    n = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            m = re.search(r"Role: `(\w+)`", op.get("description", ""))
            need = ROLE_RANK[m.group(1) if m else None]
            if need == 0:
                check(op.get("security") == [], "%s %s: documented as open" % (method, path))
            url = re.sub(r"\{(\w+)\}", lambda g: SAMPLE.get(g.group(1), "x"), path)
            body = None
            if method in ("post", "put", "patch"):
                body = {}
            for cname, key, rank in creds:
                st, js, _, _ = Client(d.port, key).req(method.upper(), url, body)
                if need == 0:
                    ok = st not in (401, 403)
                elif rank == 0:
                    ok = st == 401
                elif rank < need:
                    ok = st == 403
                else:
                    ok = st not in (401, 403) and not (
                        st == 404 and js and js["error"]["message"].startswith("no such endpoint"))
                n += 1
                if not ok:
                    check(False, "%s %s with %s (needs rank %d) -> %d" %
                          (method.upper(), url, cname, need, st))
    check(n > 100, "role table: %d route x credential cases checked" % n)
    # the route table in api/routes.c and the document agree (so a new route
    # without documentation cannot escape this table)
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "api", "routes.c")
    if os.path.exists(src):
        table = re.findall(
            r'\{"(GET|POST|PUT|PATCH|DELETE)", "[^"]*", "([^"]+)", STORE_ROLE_(\w+),',
            open(src).read())
        names = {"NONE": None, "INSPECT": "inspect", "OPERATE": "operate", "ADMIN": "admin"}
        mism = []
        for method, label, role in table:
            op = doc["paths"].get(label, {}).get(method.lower())
            m = re.search(r"Role: `(\w+)`", (op or {}).get("description", ""))
            if op is None or (m.group(1) if m else None) != names[role]:
                mism.append("%s %s" % (method, label))
        ndoc = sum(1 for v in doc["paths"].values() for k in v if k in
                   ("get", "post", "put", "patch", "delete"))
        check(table and not mism and len(table) == ndoc,
              "api/routes.c route table (%d) and openapi.json (%d) agree on routes and roles %s"
              % (len(table), ndoc, mism))
    serves(admin, "the role table")

    # path traversal and odd ids: never 200, never 5xx
    bad = ["/v1/products/..", "/v1/products/..%2f..%2fcfa.db", "/v1/products/%2e%2e",
           "/v1/products/a%00b", "/v1/products/" + "a" * 300,
           "/v1/products/x/images/..%2f..%2f..%2fcfa.db", "/v1/products/x/images/" + "../" * 20,
           "/v1/inspections/..%2f..%2fcfa.db/heatmap.png", "/v1/inspections/../../cfa.db",
           "/v1/jobs/%2e%2e%2f%2e%2e", "/v1/products/x/models/-1/activate",
           "/v1/products/x/models/99999999999999999999999/activate",
           "/v1/products?limit=-5", "/v1/inspections?since=..&limit=abc"]
    for u in bad:
        method = "POST" if u.endswith("activate") else "GET"
        st, js, _, _ = admin.req(method, u)
        check(st in (400, 404, 405) and js is not None and "error" in js,
              "%s %s -> %d" % (method, u[:70], st))
    serves(admin, "path traversal attempts")

    # secrets: upload an image carrying a marker, then grep log and database
    marker = "SECRET-IMAGE-" + uuid.uuid4().hex
    admin.req("POST", "/v1/products", {"id": "sec"})
    st, _, _, _ = admin.req("POST", "/v1/products/sec/images", make_png(32, 32, 5, marker),
                            "image/png")
    check(st == 201, "upload an image with a marker")
    admin.req("POST", "/v1/products/sec/images", (marker * 10).encode(), "image/png")
    Client(d.port, "wrong-" + marker).req("GET", "/v1/products")
    check(d.stop() == 0, "SIGTERM -> exit 0")
    log = open(d.log_path, "rb").read()
    leaked = [k for k in list(keys.values()) + [marker] if k.encode() in log]
    check(not leaked, "no API key and no image bytes in the server log (%d bytes)" % len(log))
    db = sqlite3.connect(os.path.join(d.data_dir, "cfa.db"))
    rows = db.execute("SELECT salt, hash, lookup FROM api_keys").fetchall()
    check(len(rows) == 3 and all(len(r[0]) >= 16 and len(r[1]) >= 32 for r in rows)
          and len({bytes(r[0]) for r in rows}) == 3, "keys stored as salted hashes (unique salts)")
    db.close()
    raw = b""
    for f in os.listdir(d.data_dir):
        p = os.path.join(d.data_dir, f)
        if os.path.isfile(p) and f.startswith("cfa.db"):
            raw += open(p, "rb").read()
    check(not [k for k in keys.values() if k.encode() in raw],
          "no API key in plain text in cfa.db / WAL")


# -------------------------------------------------------------------- crash
def db_checks(data_dir, what):
    db = sqlite3.connect(os.path.join(data_dir, "cfa.db"))
    ok = db.execute("PRAGMA integrity_check").fetchall()
    check(ok == [("ok",)], "%s: PRAGMA integrity_check ok" % what)
    fk = db.execute("PRAGMA foreign_key_check").fetchall()
    check(fk == [], "%s: PRAGMA foreign_key_check clean" % what)
    db.close()


def temp_files(data_dir):
    out = []
    for root, _, files in os.walk(data_dir):
        out += [os.path.join(root, f) for f in files if ".tmp-" in f or f.endswith(".tmp")]
    return out


def image_file(data_dir, product, sha):
    for ext in ("png", "jpg"):
        p = os.path.join(data_dir, "images", product, sha[:2], "%s.%s" % (sha, ext))
        if os.path.exists(p):
            return p
    return None


def check_images(c, data_dir, product, acked, what):
    listed, after = set(), None
    while True:
        st, js, _, _ = c.req("GET", "/v1/products/%s/images?limit=1000%s"
                             % (product, "&after=" + after if after else ""))
        if st != 200:
            break
        listed.update(i["id"] for i in js["images"])
        after = js.get("next")
        if not after:
            break
    missing = [h for h in acked if h not in listed]
    check(not missing, "%s: every upload answered 201 is listed (%d acked, %d listed, %d missing)"
          % (what, len(acked), len(listed), len(missing)))
    return len(missing)
    bad = [h for h in listed if image_file(data_dir, product, h) is None or
           sha256(open(image_file(data_dir, product, h), "rb").read()) != h]
    check(not bad, "%s: every listed image's file exists and its SHA-256 matches (%d files)"
          % (what, len(listed)))


def kill_under_load(d, threads, stop, seconds, until=None):
    """Starts the client threads, SIGKILLs the daemon after `seconds` (and,
    with until, once until() holds, waiting up to 180 s more: a loaded
    machine may answer nothing in the first seconds), then sets stop and
    waits for the threads."""
    for t in threads:
        t.start()
    time.sleep(seconds)
    deadline = time.monotonic() + 180
    while until is not None and not until() and time.monotonic() < deadline:
        time.sleep(0.2)
    d.kill()
    stop.set()
    for t in threads:
        t.join()


def sec_crash(env):
    d = env.daemon("crash")
    d.start()
    c = Client(d.port, ADMIN_KEY)
    c.req("POST", "/v1/products", {"id": "tile"})

    print("== (a) SIGKILL during multipart uploads", flush=True)
    acked, lock = set(), threading.Lock()
    stop = threading.Event()

    def uploader(seed):
        rnd = random.Random(seed)
        while not stop.is_set():
            imgs = [env.train[rnd.randrange(len(env.train))] if rnd.random() < 0.5
                    else make_png(64, 64, rnd.getrandbits(30)) for _ in range(rnd.randint(1, 6))]
            body, ct = multipart([("%d.png" % i, b) for i, b in enumerate(imgs)])
            try:
                st, js, _, _ = Client(d.port, ADMIN_KEY).req("POST", "/v1/products/tile/images",
                                                             body, ct, timeout=30)
            except (OSError, http.client.HTTPException):
                return
            if st == 201:
                with lock:
                    acked.update(i["id"] for i in js["images"])

    def half_sender():
        imgs = [make_png(256, 256, 999 + i) for i in range(8)]
        body, ct = multipart([("%d.png" % i, b) for i, b in enumerate(imgs)])
        try:
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(("POST /v1/products/tile/images HTTP/1.1\r\nHost: x\r\nAuthorization: "
                       "Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                       % (ADMIN_KEY, ct, len(body))).encode())
            s.sendall(body[:len(body) // 2])
            stop.wait(30)
            s.close()
        except OSError:
            pass

    ths = [threading.Thread(target=uploader, args=(i,)) for i in range(3)]
    ths.append(threading.Thread(target=half_sender))
    kill_under_load(d, ths, stop, 2.5)
    # a temp file as a crash between write and rename would leave it
    tdir = os.path.join(d.data_dir, "images", "tile", "ab")
    os.makedirs(tdir, exist_ok=True)
    fake = os.path.join(tdir, "ab" + "0" * 62 + ".png.tmp-0123456789abcdef")
    open(fake, "wb").write(b"half a file")
    db_checks(d.data_dir, "after SIGKILL during uploads")
    d.start()
    check(not temp_files(d.data_dir), "temp files are removed at start-up")
    c = Client(d.port, ADMIN_KEY)
    lost = check_images(c, d.data_dir, "tile", acked, "after SIGKILL during uploads")
    note("crash (a): %d distinct images acknowledged with 201 before SIGKILL, %d lost"
         % (len(acked), lost))

    print("== (b) SIGKILL during training", flush=True)
    # top up with the real training images so that a model can be trained
    body, ct = multipart([("%d.png" % i, b) for i, b in enumerate(env.train)])
    st, js, _, _ = c.req("POST", "/v1/products/tile/images", body, ct)
    acked.update(i["id"] for i in js["images"])
    # replace the noise images: train only on the real ones
    real = {sha256(b) for b in env.train}
    for h in list(acked - real):
        c.req("DELETE", "/v1/products/tile/images/" + h)
    acked &= real
    job = train(c, "tile", wait=False)
    deadline = time.time() + 300
    while time.time() < deadline:
        st, js, _, _ = c.req("GET", "/v1/jobs/" + job["id"])
        if js["state"] == "running" and js["progress"]["phase"] not in ("", "queued", "loading"):
            break
        time.sleep(0.2)
    check(js["state"] == "running", "job is running (phase %s)" % js["progress"]["phase"])
    d.kill()
    db_checks(d.data_dir, "after SIGKILL during training")
    d.start(extra=["--requeue-jobs", "0"])
    c = Client(d.port, ADMIN_KEY)
    st, js, _, _ = c.req("GET", "/v1/jobs")
    check(st == 200 and not [j for j in js["jobs"] if j["state"] == "running"],
          "no job left running after restart")
    st, js, _, _ = c.req("GET", "/v1/jobs/" + job["id"])
    check(js["state"] == "failed" and "restart" in (js["error"] or ""),
          "the interrupted job is failed ('%s') with --requeue-jobs 0" % js["error"])
    st, js, _, _ = c.req("GET", "/v1/products/tile/models")
    check(st == 200 and js["models"] == [], "no half-written model")
    check_images(c, d.data_dir, "tile", acked, "after SIGKILL during training")

    print("== (c) SIGKILL under a stream of inspections", flush=True)
    train(c, "tile")
    probe = env.test[:4]
    before = []
    for b in probe:
        st, js, _, _ = c.req("POST", "/v1/products/tile/inspect?store=false", b, "image/png")
        before.append(js["score"] if st == 200 else None)
    ok200, lock = [], threading.Lock()
    stop.clear()

    def inspector(seed):
        rnd = random.Random(seed)
        cl = Client(d.port, ADMIN_KEY)
        while not stop.is_set():
            try:
                st, js, _, _ = cl.req("POST", "/v1/products/tile/inspect",
                                      env.test[rnd.randrange(len(env.test))], "image/png",
                                      timeout=30)
            except (OSError, http.client.HTTPException):
                return
            if st == 200:
                with lock:
                    ok200.append(js["inspection_id"])

    ths = [threading.Thread(target=inspector, args=(i,)) for i in range(4)]
    kill_under_load(d, ths, stop, 6, until=lambda: len(ok200) >= 3)
    db_checks(d.data_dir, "after SIGKILL under inspections")
    d.start()
    c = Client(d.port, ADMIN_KEY)
    check(not temp_files(d.data_dir), "no temp files after restart")
    st, js, _, _ = c.req("GET", "/v1/inspections?limit=1000")
    have = {i["inspection_id"] if "inspection_id" in i else i.get("id") for i in js["inspections"]}
    lost = [i for i in ok200 if i not in have]
    note("crash (c): %d inspections answered 200 before SIGKILL, %d not in the audit trail "
         "after restart" % (len(ok200), len(lost)))
    check(len(ok200) > 0 and not lost,
          "no acknowledged audit record is lost (group commit before the 200): %d" % len(lost))
    stored = [i for i in ok200 if i in have][-3:]
    for i in stored:
        st, _, body, _ = c.req("GET", "/v1/inspections/%s/heatmap.png" % i)
        check(st == 200 and body[:4] == b"\x89PNG",
              "heatmap of an acknowledged inspection is a whole PNG (%d)" % st)
    after = []
    for b in probe:
        st, js, _, _ = c.req("POST", "/v1/products/tile/inspect?store=false", b, "image/png")
        after.append(js["score"] if st == 200 else None)
    check(None not in after and all(abs(x - y) <= 1e-6 * max(1, abs(x))
                                    for x, y in zip(before, after)),
          "the active model loads and scores as before (%s)" % after)
    check_images(c, d.data_dir, "tile", acked, "after the last restart")
    check(d.stop() == 0, "SIGTERM -> exit 0")
    db_checks(d.data_dir, "after a clean stop")


# ----------------------------------------------------------------- shutdown
def sec_shutdown(env):
    d = env.daemon("shutdown").start()
    c = Client(d.port, ADMIN_KEY)
    make_product(c, "tile", env.train)

    print("== SIGTERM with a request in flight", flush=True)
    body, ct = multipart([("%d.png" % i, make_png(64, 64, 500 + i)) for i in range(4)])
    result = {}

    def slow_upload():
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(("POST /v1/products/tile/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                   "%s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                   % (ADMIN_KEY, ct, len(body))).encode())
        s.sendall(body[:100])
        time.sleep(1.5)  # SIGTERM arrives here
        s.sendall(body[100:])
        s.settimeout(60)
        got = b""
        while True:
            k = s.recv(65536)
            if not k:
                break
            got += k
        result["resp"] = got
        s.close()

    th = threading.Thread(target=slow_upload)
    th.start()
    time.sleep(0.5)
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    refused = False
    try:
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
    except OSError:
        refused = True
    check(refused, "no new connection accepted after SIGTERM")
    th.join()
    rc = d.proc.wait(60)
    d.log.close()
    resp = result.get("resp", b"")
    check(resp.startswith(b"HTTP/1.1 201"), "the in-flight upload finished with 201 (%r)"
          % resp[:40])
    check(rc == 0, "exit code 0 after SIGTERM (%s, %.1f s)" % (rc, time.time() - t0))
    db_checks(d.data_dir, "after SIGTERM")

    print("== SIGTERM during training", flush=True)
    d.start()
    c = Client(d.port, ADMIN_KEY)
    body_ids = [json.loads(resp.split(b"\r\n\r\n", 1)[1])["images"][i]["id"] for i in range(4)] \
        if resp.startswith(b"HTTP/1.1 201") else []
    check_images(c, d.data_dir, "tile", body_ids, "after SIGTERM")
    for h in body_ids:
        c.req("DELETE", "/v1/products/tile/images/" + h)
    job = train(c, "tile", wait=False)
    wait_job(c, job["id"], states=("running",), timeout=120)
    time.sleep(1)
    t0 = time.time()
    rc = d.stop(signal.SIGTERM, timeout=60)
    check(rc == 0, "exit code 0 after SIGTERM during training (%.1f s)" % (time.time() - t0))
    check(b"interrupted by shutdown" in open(d.log_path, "rb").read(),
          "the log says the job was interrupted by the shutdown")
    db_checks(d.data_dir, "after SIGTERM during training")
    d.start()
    c = Client(d.port, ADMIN_KEY)
    js = wait_job(c, job["id"])
    check(js["state"] == "succeeded", "the interrupted job was re-queued and succeeded")
    st, js, _, _ = c.req("GET", "/v1/products/tile/models")
    check(st == 200 and len(js["models"]) == 1, "exactly one model from the re-run job")
    rc = d.stop(signal.SIGINT, timeout=60)
    check(rc == 0, "exit code 0 after SIGINT")


# ---------------------------------------------------------------------- tls
def sec_tls(env):
    cert = os.path.join(env.tmp, "cert.pem")
    key = os.path.join(env.tmp, "key.pem")
    if shutil.which("openssl"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elif shutil.which("certtool"):
        tpl = os.path.join(env.tmp, "cert.cfg")
        open(tpl, "w").write("cn = 127.0.0.1\nip_address = 127.0.0.1\nexpiration_days = 1\n"
                             "tls_www_server\nencryption_key\nsigning_key\n")
        subprocess.run(["certtool", "--generate-privkey", "--outfile", key], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key,
                        "--template", tpl, "--outfile", cert], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        print("FAIL: neither openssl nor certtool (gnutls-bin) is installed (tools/setup.sh installs openssl)")
        sys.exit(1)
    d = env.daemon("tls", ["--tls-cert", cert, "--tls-key", key]).start()
    ctx = ssl.create_default_context(cafile=cert)
    c = Client(d.port, ADMIN_KEY, tls=ctx)
    st, js, _, _ = c.req("GET", "/healthz")
    check(st == 200 and js == {"status": "ok"}, "GET /healthz over HTTPS, certificate verified")
    st, js, _, _ = c.req("GET", "/v1/info")
    check(st == 200 and js["limits"]["tls"] is True, "authenticated GET /v1/info over HTTPS")
    st, js, _, _ = c.req("POST", "/v1/products/nope/images", make_png(16, 16), "image/png")
    check(st == 404, "upload over HTTPS reaches the handler (404 unknown product)")
    plain_failed = False
    try:
        st, _, _, _ = Client(d.port, ADMIN_KEY).req("GET", "/healthz", timeout=5)
        plain_failed = st != 200
    except (OSError, http.client.HTTPException):
        plain_failed = True
    check(plain_failed, "plain HTTP on the HTTPS port gets no answer")
    wrong = ssl.create_default_context()  # system CAs: the self-signed cert is refused
    try:
        Client(d.port, None, tls=wrong).req("GET", "/healthz", timeout=5)
        verified = False
    except ssl.SSLError:
        verified = True
    check(verified, "a client without the certificate refuses the server")
    check(Client(d.port, None, tls=ctx).req("GET", "/healthz")[0] == 200,
          "serves after the failed handshakes")
    check(d.stop() == 0, "SIGTERM -> exit 0")
    bad = env.daemon("tls-bad", ["--tls-cert", cert, "--tls-key", cert])
    env_ = dict(os.environ, CFA_ADMIN_KEY=ADMIN_KEY)
    r = subprocess.run([env.a.server, "--listen", "127.0.0.1:0", "--data-dir", bad.data_dir,
                        "--backbone", env.a.backbone, "--tls-cert", cert, "--tls-key", cert],
                       env=env_, capture_output=True, text=True, timeout=120)
    check(r.returncode != 0 and "TLS" in r.stderr, "a wrong key refuses to start (%d)"
          % r.returncode)


# ----------------------------------------------------------------- overload
def sec_overload(env):
    d = env.daemon("overload", ["--workers", "1", "--batch", "2", "--queue-depth", "4",
                                "--max-connections", "128"]).start()
    c = Client(d.port, ADMIN_KEY)
    make_product(c, "tile", env.train[:24])
    train(c, "tile")
    # capacity: sequential inspections per second
    t0 = time.time()
    for b in env.test[:4]:
        c.req("POST", "/v1/products/tile/inspect?store=false", b, "image/png")
    cap = 4 / (time.time() - t0)
    rss0 = d.vm("VmRSS")
    duration = float(os.environ.get("CFA_HARD_LOAD_S", "20"))
    clients = 48
    counts, kinds, lock, peak = {}, {}, threading.Lock(), [0]
    stop = threading.Event()

    def client(seed):
        rnd = random.Random(seed)
        cl = Client(d.port, ADMIN_KEY)
        n = 0
        while not stop.is_set() and n < 400:
            n += 1
            kind = rnd.random()
            try:
                if kind < 0.8:
                    st, js, _, h = cl.req("POST", "/v1/products/tile/inspect",
                                          env.test[rnd.randrange(len(env.test))], "image/png",
                                          timeout=60)
                    if st == 503 and h.get("retry-after") is None:
                        st = -503
                elif kind < 0.9:
                    st, _, _, _ = cl.req("GET", "/v1/inspections?limit=50", timeout=60)
                else:
                    st, _, _, _ = cl.req("POST", "/v1/products/tile/inspect", os.urandom(2000),
                                         "image/png", timeout=60)
                    st = 200 if st == 415 else st
            except (OSError, http.client.HTTPException) as e:
                st = type(e).__name__
            what = "inspect" if kind < 0.8 else "list" if kind < 0.9 else "garbage"
            with lock:
                counts[st] = counts.get(st, 0) + 1
                kinds[(what, st)] = kinds.get((what, st), 0) + 1

    def sampler():
        while not stop.is_set():
            peak[0] = max(peak[0], d.vm("VmHWM"))
            time.sleep(0.2)

    ths = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    sm = threading.Thread(target=sampler)
    sm.start()
    t0 = time.time()
    for t in ths:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in ths:
        t.join()
    sm.join()
    el = time.time() - t0
    total = sum(counts.values())
    ok = counts.get(200, 0)
    peak[0] = max(peak[0], d.vm("VmHWM"))
    note("overload: %d clients for %.0f s, capacity %.1f inspections/s alone; %d requests "
         "(%.0f/s offered and answered), statuses %s; VmRSS before %d MiB, VmHWM peak %d MiB"
         % (clients, el, cap, total, total / el, counts, rss0 // 1024, peak[0] // 1024))
    note("overload by kind (garbage 415 counted as 200): %s" % ", ".join(
        "%s %s: %d" % (k[0], k[1], v) for k, v in sorted(kinds.items(), key=str)))
    check(set(counts) <= {200, 503}, "every request answered 200 or 503 with Retry-After (%s)"
          % counts)
    check(counts.get(503, 0) > 0, "the bounded queue refused the excess with 503")
    check(d.proc.poll() is None, "the daemon did not crash")
    check(peak[0] < rss0 + 2 * 1024 * 1024, "resident memory stays bounded (peak %d MiB)"
          % (peak[0] // 1024))
    time.sleep(1)
    st, js, _, _ = c.req("POST", "/v1/products/tile/inspect", env.test[0], "image/png")
    check(st == 200 and "score" in js, "serves an inspection right after the load")
    serves(c, "the load")
    check(d.stop() == 0, "SIGTERM -> exit 0")
    db_checks(d.data_dir, "after the load")


SECTIONS = {"limits": sec_limits, "roles": sec_roles, "crash": sec_crash,
            "shutdown": sec_shutdown, "tls": sec_tls, "overload": sec_overload}


def run_sections(sections, log_name=lambda f: f == "server.log"):
    """The command line of every test_hardening*.py with named sections:
    runs --only's sections (default all) each on its own daemon(s) under one
    temp dir, checks the daemons' logs (log_name picks them) for sanitizer
    reports, prints the notes and failures; the exit status."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--data", required=True, help="folder holding magnetic_tile_mini")
    ap.add_argument("--only", default=",".join(sections))
    ap.add_argument("--keep", action="store_true", help="keep the temp data dirs")
    a = ap.parse_args()
    env = Env(a)
    t0 = time.time()
    try:
        for name in a.only.split(","):
            print("== section %s" % name, flush=True)
            sections[name](env)
    finally:
        # a sanitizer build of the daemon reports into its log (and aborts)
        for root, _, files in os.walk(env.tmp):
            for f in files:
                if log_name(f):
                    text = open(os.path.join(root, f), "rb").read()
                    check(not re.search(rb"AddressSanitizer|LeakSanitizer|ThreadSanitizer|"
                                        rb"runtime error:", text),
                          "no sanitizer report in %s" % os.path.join(root, f))
        if not a.keep and not failures:
            shutil.rmtree(env.tmp, ignore_errors=True)
    for n in notes:
        print("NOTE " + n)
    print("%d failure(s) in %.0f s%s" % (len(failures), time.time() - t0,
                                         "" if not failures else " (kept %s)" % env.tmp))
    for f in failures:
        print("  - " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(run_sections(SECTIONS))
