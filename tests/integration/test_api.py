#!/usr/bin/python3
"""End-to-end test of cfa-server through its HTTP API (docs/API.md, v1).

Starts the real daemon on 127.0.0.1 port 0 with a fresh data directory and the
real backbone, uploads magnetic_tile_mini's good images, trains through the API,
inspects every test image, provokes every error status, restarts the daemon on
the same data directory and checks that everything survived, and runs a
concurrent phase (inspections while a new version trains and gets activated).

usage: test_api.py --server build/cfa-server --backbone X.pt --data ../shared/data
Python 3 standard library only. Exit 0 = pass; a missing backbone or data set fails.
"""
import argparse
import base64
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib

import daemon_proc

ADMIN_KEY = "it-admin-" + uuid.uuid4().hex
EPOCHS = int(os.environ.get("CFA_IT_EPOCHS", "2"))
TRAIN = {"epochs": EPOCHS, "gamma_c": 4, "gamma_d": 4}
MAX_BODY_MB = 8

failures = []


def check(cond, what):
    if cond:
        print("  ok   " + what, flush=True)
    else:
        print("  FAIL " + what, flush=True)
        failures.append(what)
    return cond


def fatal(what):
    print("FATAL " + what, flush=True)
    sys.exit(1)


# --------------------------------------------------------------------- daemon
class Daemon:
    def __init__(self, server, data_dir, backbone, log_path, extra=(), admin_env=True):
        self.server, self.data_dir, self.backbone = server, data_dir, backbone
        self.admin_env = admin_env
        self.log_path, self.extra = log_path, list(extra)
        self.proc = None
        self.port = None

    def start(self, timeout=180):
        env = dict(os.environ)
        env.pop("CFA_ADMIN_KEY", None)
        if self.admin_env:
            env["CFA_ADMIN_KEY"] = ADMIN_KEY
        args = [self.server, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
                "--backbone", self.backbone, "--max-body-mb", str(MAX_BODY_MB)] + self.extra
        try:
            self.proc, self.port, self.log = daemon_proc.spawn(args, env, self.log_path, timeout)
        except RuntimeError as e:
            fatal(str(e))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=120):
        return daemon_proc.stop(self.proc, self.log, sig, timeout)


class Client(daemon_proc.Client):
    timeout = 600


def expect_error(resp, status, what, code=None):
    st, js, _, _ = resp
    ok = st == status and isinstance(js, dict) and isinstance(js.get("error"), dict) \
        and isinstance(js["error"].get("code"), str) and isinstance(js["error"].get("message"), str)
    if ok and code is not None:
        ok = js["error"]["code"] == code
    return check(ok, "%s -> %d %s (got %d %s)" % (what, status, code or "", st,
                                                  json.dumps(js)[:160] if js else ""))


def expect_named(resp, status, code, what, *words):
    """An error reply whose message names what went wrong (all of words)."""
    st, js, _, _ = resp
    err = js.get("error", {}) if isinstance(js, dict) else {}
    msg = err.get("message", "")
    return check(st == status and err.get("code") == code and all(w in msg for w in words),
                 "%s -> %d %s naming %s (got %d %r)" % (what, status, code, " ".join(words), st,
                                                         msg or js))


# ------------------------------------------------------------------- helpers
def png_size(data):
    """(width, height, bit_depth, colour_type) from a PNG's IHDR."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    return w, h, depth, ctype


def png_gray16(data):
    """The pixel values of a non-interlaced 16-bit grayscale PNG, row-major."""
    w, h, depth, ctype = png_size(data)
    assert depth == 16 and ctype == 0
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw, stride, bpp = zlib.decompress(idat), 2 * w, 2
    prev, vals = bytearray(stride), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        vals.extend(struct.unpack(">%dH" % w, bytes(line)))
        prev = line
    return vals


def make_png(w, h):
    """A valid 8-bit grayscale PNG of w x h zeros."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\x00" + bytes(w) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def auroc(neg, pos):
    """Probability that a random positive scores above a random negative."""
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


def multipart(files):
    boundary = "----cfa" + uuid.uuid4().hex
    out = bytearray()
    for i, (name, data) in enumerate(files):
        out += ("--%s\r\nContent-Disposition: form-data; name=\"image%d\"; filename=\"%s\"\r\n"
                "Content-Type: image/png\r\n\r\n" % (boundary, i, name)).encode()
        out += data + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return bytes(out), "multipart/form-data; boundary=" + boundary


def wait_job(c, job_id, states=("succeeded", "failed", "canceled"), timeout=900):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, js, _, _ = c.req("GET", "/v1/jobs/" + job_id)
        if st == 200 and js["state"] in states:
            return js
        time.sleep(0.5)
    fatal("job %s did not reach %s" % (job_id, states))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--data", required=True, help="folder holding magnetic_tile_mini")
    ap.add_argument("--cli", help="the cfa CLI: compare its scores with the server's")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir")
    a = ap.parse_args()
    ds = os.path.join(a.data, "magnetic_tile_mini")
    if not os.path.exists(a.backbone) or not os.path.isdir(ds):
        # the real backbone and data are part of the test: missing means broken set-up
        print("FAIL: backbone %s or data %s missing (run tools/setup.sh)" % (a.backbone, ds))
        return 1
    tmp = tempfile.mkdtemp(prefix="cfa-it-")
    data_dir = os.path.join(tmp, "var")
    log_path = os.path.join(tmp, "server.log")
    print("data dir %s, server log %s" % (data_dir, log_path), flush=True)

    train_files = sorted(os.path.join(ds, "train", "good", f)
                         for f in os.listdir(os.path.join(ds, "train", "good")))
    test_files = []
    for d in sorted(os.listdir(os.path.join(ds, "test"))):
        for f in sorted(os.listdir(os.path.join(ds, "test", d))):
            test_files.append((os.path.join(ds, "test", d, f), 0 if d == "good" else 1))
    read = lambda p: open(p, "rb").read()

    t0 = time.time()
    d = Daemon(a.server, data_dir, a.backbone, log_path).start()
    admin = Client(d.port, ADMIN_KEY)
    anon = Client(d.port, None)

    print("== health, docs, metrics", flush=True)
    st, js, _, _ = anon.req("GET", "/healthz")
    check(st == 200 and js == {"status": "ok"}, "GET /healthz")
    st, js, _, _ = anon.req("GET", "/readyz")
    check(st == 200, "GET /readyz")
    st, js, _, _ = anon.req("GET", "/v1/openapi.json")
    check(st == 200 and js.get("openapi", "").startswith("3.") and "/v1/products/{id}/inspect"
          in js.get("paths", {}), "GET /v1/openapi.json is OpenAPI 3 with the inspect path")
    schemas = js.get("components", {}).get("schemas", {})
    ts, tr = schemas.get("TrainingSettings", {}), schemas.get("TrainRequest", {})
    gc = ts.get("properties", {}).get("gamma_c", {})
    check(ts.get("additionalProperties") is False and tr.get("additionalProperties") is False
          and (gc.get("minimum"), gc.get("maximum"), gc.get("default")) == (1, 64, 8)
          and "activate" in tr.get("properties", {}) and "ema_beta" not in tr.get("properties", {}),
          "served schemas of the settings come from the table: no other keys, gamma_c 1..64, "
          "server default 8")
    api_md = [("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"), ("get", "/v1/info"),
              ("post", "/v1/products"), ("get", "/v1/products"), ("get", "/v1/products/{id}"),
              ("patch", "/v1/products/{id}"), ("delete", "/v1/products/{id}"),
              ("post", "/v1/products/{id}/images"), ("get", "/v1/products/{id}/images"),
              ("delete", "/v1/products/{id}/images/{image_id}"), ("post", "/v1/products/{id}/train"),
              ("get", "/v1/jobs/{job_id}"), ("get", "/v1/jobs"), ("post", "/v1/jobs/{job_id}/cancel"),
              ("get", "/v1/products/{id}/models"),
              ("post", "/v1/products/{id}/models/{version}/activate"),
              ("put", "/v1/products/{id}/threshold"), ("post", "/v1/products/{id}/inspect"),
              ("get", "/v1/inspections"), ("get", "/v1/inspections/{id}"),
              ("get", "/v1/inspections/{id}/heatmap.png"), ("get", "/v1/inspections/{id}/map.png"),
              ("post", "/v1/keys"), ("get", "/v1/keys"), ("delete", "/v1/keys/{id}"),
              ("get", "/v1/openapi.json")]
    missing = [m + " " + p for m, p in api_md if m not in js.get("paths", {}).get(p, {})]
    check(not missing, "OpenAPI document covers every endpoint of API.md (missing %s)" % missing)
    st, _, body, hdrs = anon.req("GET", "/metrics")
    check(st == 200 and hdrs["content-type"].startswith("text/plain")
          and b"cfa_http_requests_total" in body, "GET /metrics")
    st, js, _, _ = admin.req("GET", "/v1/info")
    check(st == 200 and len(js["backbone"]["sha256"]) == 64, "GET /v1/info")
    expect_error(admin.req("GET", "/v1/nothing"), 404, "unknown path")
    expect_error(admin.req("PUT", "/v1/products"), 405, "wrong method")

    print("== keys and roles", flush=True)
    expect_error(anon.req("GET", "/v1/products"), 401, "missing key", "unauthorized")
    expect_error(anon.req("POST", "/v1/products/x/images", os.urandom(3 << 20), "image/png"), 401,
                 "upload without a key (body drained, not kept)", "unauthorized")
    expect_error(Client(d.port, "wrong-key-0123456789").req("GET", "/v1/products"), 401,
                 "unknown key", "unauthorized")
    st, js, _, _ = admin.req("POST", "/v1/keys", {"name": "line 1", "role": "operate"})
    check(st == 201 and js["role"] == "operate" and js["key"], "POST /v1/keys operate")
    op = Client(d.port, js["key"])
    st, js, _, _ = admin.req("POST", "/v1/keys", {"name": "camera", "role": "inspect"})
    check(st == 201 and js["role"] == "inspect", "POST /v1/keys inspect")
    insp = Client(d.port, js["key"])
    st, js, _, _ = admin.req("POST", "/v1/keys", {"name": "temp", "role": "inspect"})
    temp_id, temp = js["id"], Client(d.port, js["key"])
    st, js, _, _ = admin.req("GET", "/v1/keys")
    check(st == 200 and len(js["keys"]) == 4 and all("key" not in k for k in js["keys"]),
          "GET /v1/keys lists 4 keys without secrets")
    st, _, _, _ = admin.req("DELETE", "/v1/keys/" + temp_id)
    check(st == 204, "DELETE /v1/keys/{id}")
    expect_error(temp.req("GET", "/v1/products"), 401, "revoked key")
    expect_error(op.req("GET", "/v1/keys"), 403, "operate key on /v1/keys", "forbidden")
    expect_error(insp.req("POST", "/v1/products", {"id": "x"}), 403, "inspect key creating a product",
                 "forbidden")
    expect_error(admin.req("POST", "/v1/keys", {"name": "x", "role": "root"}), 400, "bad role")

    print("== products", flush=True)
    st, js, _, hdrs = op.req("POST", "/v1/products",
                             {"id": "tile-a", "name": "Magnetic tile", "settings": {"gamma_c": 4}})
    check(st == 201 and js["id"] == "tile-a" and js["active_version"] is None
          and hdrs.get("location") == "/v1/products/tile-a", "POST /v1/products 201")
    expect_error(op.req("POST", "/v1/products", {"id": "tile-a"}), 409, "duplicate product")
    expect_error(op.req("POST", "/v1/products", {"id": "bad id!"}), 400, "invalid product id")
    expect_error(op.req("POST", "/v1/products", b"{not json", "application/json"), 400,
                 "malformed JSON")
    expect_error(op.req("POST", "/v1/products", b"id=x", "application/x-www-form-urlencoded"),
                 415, "form body on a JSON endpoint")
    expect_error(op.req("POST", "/v1/products", {"id": "x", "settings": {"epochs": -1}}), 400,
                 "invalid settings")
    expect_error(insp.req("GET", "/v1/products/nope"), 404, "unknown product")
    # product settings are read by the settings table: a misspelt key or a
    # value out of range is a 400 naming it (it used to be stored, 201)
    for settings, words in (({"epoch": 2}, ['"epoch"', 'did you mean "epochs"']),
                            ({"gama_c": 8}, ['"gama_c"', 'did you mean "gamma_c"']),
                            ({"epochs": 2, "gama_c": 8}, ['"gama_c"']),
                            ({"gamma_c": 100}, ['"gamma_c"', "[1, 64]", "100"]),
                            ({"bank": "median"}, ['"bank"', "mean, ema"]),
                            ({"holdout": "0.1"}, ['"holdout"', "a number in [0, 0.5]"]),
                            ({"ema_beta": 0.5}, ['"ema_beta"']),
                            ({"resize_h": 64, "crop_h": 128}, ['"crop_h" (128)', '"resize_h" (64)'])):
        expect_named(op.req("POST", "/v1/products", {"id": "typo", "settings": settings}), 400,
                     "invalid_settings", "POST /v1/products settings %s" % json.dumps(settings),
                     *words)
    st, _, _, _ = op.req("GET", "/v1/products/typo")
    check(st == 404, "no product stored by a refused create")
    expect_named(op.req("PATCH", "/v1/products/tile-a", {"settings": {"gama_d": 4}}), 400,
                 "invalid_settings", "PATCH settings with a typo", '"gama_d"', '"gamma_d"')
    expect_named(op.req("PATCH", "/v1/products/tile-a", {"settings": {"gamma_d": 0}}), 400,
                 "invalid_settings", "PATCH settings out of range", '"gamma_d"', "[1, 64]")
    st, js, _, _ = op.req("GET", "/v1/products/tile-a")
    check(js["settings"] == {"gamma_c": 4}, "a refused PATCH changes nothing")
    st, js, _, _ = op.req("POST", "/v1/products", {"id": "norm", "settings": {"margin": 2, "epochs": None}})
    check(st == 201 and js["settings"] == {"margin": 2.0}, "settings stored as the table writes them")
    op.req("DELETE", "/v1/products/norm")
    st, js, _, _ = op.req("PATCH", "/v1/products/tile-a", {"name": "Magnetic tile A"})
    check(st == 200 and js["name"] == "Magnetic tile A" and js["settings"] == {"gamma_c": 4},
          "PATCH /v1/products/{id}")
    st, js, _, _ = op.req("POST", "/v1/products", {"id": "scratch"})
    st, _, _, _ = op.req("DELETE", "/v1/products/scratch")
    check(st == 204, "DELETE /v1/products/{id}")
    st, js, _, _ = insp.req("GET", "/v1/products")
    check(st == 200 and [p["id"] for p in js["products"]] == ["tile-a"], "GET /v1/products")

    print("== inspect before training", flush=True)
    expect_error(insp.req("POST", "/v1/products/tile-a/inspect", read(test_files[0][0]),
                          "image/png"), 422, "inspect without a model", "no_model")
    expect_error(insp.req("POST", "/v1/products/nope/inspect", read(test_files[0][0]),
                          "image/png"), 404, "inspect an unknown product")

    print("== images", flush=True)
    ids = []
    for p in train_files[:10]:
        st, js, _, _ = op.req("POST", "/v1/products/tile-a/images", read(p), "image/png")
        if not check(st == 201 and len(js["images"]) == 1, "upload %s" % os.path.basename(p)):
            fatal("upload failed: %s" % js)
        ids.append(js["images"][0]["id"])
    rest = train_files[10:]
    for chunk in (rest[:15], rest[15:]):
        body, ct = multipart([(os.path.basename(p), read(p)) for p in chunk])
        st, js, _, _ = op.req("POST", "/v1/products/tile-a/images", body, ct)
        check(st == 201 and len(js["images"]) == len(chunk), "multipart upload of %d" % len(chunk))
        ids += [i["id"] for i in js["images"]]
    check(len(set(ids)) == 40, "40 distinct image ids")
    st, js, _, _ = op.req("POST", "/v1/products/tile-a/images", read(train_files[0]), "image/png")
    check(st == 201 and js["images"][0]["id"] == ids[0] and js["images"][0]["created"] is False,
          "same bytes again: same id, nothing new")
    seen, after = [], None
    while True:
        q = "/v1/products/tile-a/images?limit=15" + ("&after=" + after if after else "")
        st, js, _, _ = op.req("GET", q)
        if st != 200:
            break
        seen += [i["id"] for i in js["images"]]
        after = js["next"]
        if after is None:
            break
    check(sorted(seen) == sorted(ids), "paginated image list returns all 40")
    st, js, _, _ = op.req("GET", "/v1/products/tile-a")
    check(js["image_count"] == 40, "image_count 40")
    expect_error(op.req("POST", "/v1/products/tile-a/images", b"hello", "text/plain"), 415,
                 "text/plain upload", "unsupported_media_type")
    expect_error(op.req("POST", "/v1/products/tile-a/images", b"GIF89a....", "image/png"), 415,
                 "GIF bytes labelled image/png")
    png = read(train_files[0])
    expect_error(op.req("POST", "/v1/products/tile-a/images", png[:200], "image/png"), 422,
                 "truncated PNG")
    bad_jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + \
        bytes(random.Random(1).randrange(256) for _ in range(600))
    expect_error(op.req("POST", "/v1/products/tile-a/images", bad_jpeg, "image/jpeg"), 422,
                 "corrupt JPEG")
    big = os.urandom((MAX_BODY_MB + 1) * 1024 * 1024)
    expect_error(op.req("POST", "/v1/products/tile-a/images", big, "image/png"), 413,
                 "oversized body", "body_too_large")
    expect_error(op.req("POST", "/v1/products/tile-a/images", b"--x\r\nbroken", 
                        "multipart/form-data; boundary=x"), 400, "malformed multipart")

    print("== training", flush=True)
    expect_error(op.req("POST", "/v1/products/tile-a/train", {"epochs": "many"}), 400,
                 "bad training params")
    # a misspelt key of a train body is a 400 too: {"epoch": 2} used to train
    # 30 epochs and, with activate defaulting to true, replace the active model
    for body, words in (({"epoch": 2}, ['"epoch"', 'did you mean "epochs"']),
                        ({"activte": False}, ['"activte"', 'did you mean "activate"']),
                        ({"holdout": 0.9}, ['"holdout"', "[0, 0.5]"]),
                        ({"activate": "no"}, ['"activate"', "true or false"]),
                        ({"resize_h": 128, "crop_h": 224},
                         ['"crop_h" (224)', '"resize_h" (128)'])):
        expect_named(op.req("POST", "/v1/products/tile-a/train", body), 400, "invalid_params",
                     "POST train %s" % json.dumps(body), *words)
    st, js, _, _ = op.req("GET", "/v1/jobs?product=tile-a")
    check(st == 200 and js["jobs"] == [], "no job queued by a refused train body")
    st, js, _, hdrs = op.req("POST", "/v1/products/tile-a/train", TRAIN)
    check(st == 202 and js["job"]["state"] in ("queued", "running")
          and hdrs.get("location") == "/v1/jobs/" + js["job"]["id"], "POST train 202 + Location")
    job1 = js["job"]["id"]
    expect_error(op.req("POST", "/v1/products/tile-a/train", TRAIN), 409,
                 "training while a job runs", "job_active")
    expect_error(op.req("DELETE", "/v1/products/tile-a"), 409, "delete product during training")
    expect_error(op.req("GET", "/v1/jobs/0123456789abcdef0123456789abcdef"), 404, "unknown job")
    expect_error(insp.req("GET", "/v1/jobs/" + job1), 403, "inspect key reading a job")
    t_train = time.time()
    job = wait_job(op, job1)
    check(job["state"] == "succeeded" and job["model_version"] == 1,
          "job succeeded with model_version 1 (%.0f s)" % (time.time() - t_train))
    check(job["progress"]["epochs"] == EPOCHS and job["started_at"] and job["finished_at"],
          "job progress and times")
    params = job.get("params", {})
    check(set(params) == set(tr.get("properties", {})) and params["epochs"] == EPOCHS
          and params["gamma_c"] == 4 and params["gamma_d"] == 4 and params["holdout"] == 0.2
          and params["activate"] is True and params["bank"] == "mean",
          "job params: every key, resolved (daemon < product < body): %s" % params)
    expect_error(op.req("POST", "/v1/jobs/%s/cancel" % job1), 409, "cancel a finished job",
                 "job_finished")
    st, js, _, _ = op.req("GET", "/v1/jobs?product=tile-a&state=succeeded")
    check(st == 200 and [j["id"] for j in js["jobs"]] == [job1], "GET /v1/jobs filtered")
    expect_error(op.req("GET", "/v1/jobs?state=sleeping"), 400, "bad job state filter")
    st, js, _, _ = op.req("GET", "/v1/products/tile-a/models")
    check(st == 200 and len(js["models"]) == 1 and js["models"][0]["active"]
          and js["models"][0]["job_id"] == job1 and js["models"][0]["threshold"] > 0,
          "GET models: version 1 active with a calibrated threshold")
    fig = js["models"][0]["figures"]
    check(fig["params"]["gamma_c"] == 4 and fig["params"]["epochs"] == EPOCHS
          and fig["holdout_images"] == 8 and fig["train_images"] == 32
          and fig["calibration"] == "holdout", "figures: params, 8 of 40 held out")
    st, prod, _, _ = insp.req("GET", "/v1/products/tile-a")
    threshold = prod["threshold"]
    check(prod["active_version"] == 1 and threshold > 0, "product names active version 1")

    print("== cancel a running job", flush=True)
    st, js, _, _ = op.req("POST", "/v1/products/tile-a/train", dict(TRAIN, epochs=50))
    job2 = js["job"]["id"]
    wait_job(op, job2, states=("running",), timeout=120)
    st, js, _, _ = op.req("POST", "/v1/jobs/%s/cancel" % job2)
    check(st == 202, "POST cancel 202")
    job = wait_job(op, job2, timeout=300)
    check(job["state"] == "canceled" and job["model_version"] is None, "job ends canceled")
    st, js, _, _ = op.req("GET", "/v1/products/tile-a/models")
    check(len(js["models"]) == 1, "no model written by the canceled job")

    print("== inspections", flush=True)
    results = {}
    for path, label in test_files:
        data = read(path)
        st, js, _, _ = insp.req("POST", "/v1/products/tile-a/inspect", data, "image/png")
        if not check(st == 200, "inspect %s" % os.path.basename(path)):
            print(js)
            continue
        results[path] = (js, label)
    keys = {"inspection_id", "product", "model_version", "score", "threshold", "decision",
            "map_max", "regions", "heatmap_url", "map_url", "timings_ms"}
    allres = [r for r, _ in results.values()]
    check(all(keys <= set(r) for r in allres), "every result has the API.md fields")
    check(all(set(r["timings_ms"]) >= {"decode", "queue", "model", "total"} for r in allres),
          "timings_ms has decode/queue/model/total")
    check(all(r["model_version"] == 1 and r["product"] == "tile-a" for r in allres),
          "every result names model_version 1")
    check(all(r["decision"] == ("NG" if r["score"] >= r["threshold"] else "OK") for r in allres),
          "decisions follow the threshold")
    check(all(abs(r["threshold"] - threshold) < 1e-9 for r in allres), "results carry the threshold")
    check(all((len(r["regions"]) > 0) <= (r["map_max"] >= r["threshold"]) for r in allres),
          "regions only where the map reaches the threshold")
    neg = [r["score"] for r, l in results.values() if l == 0]
    pos = [r["score"] for r, l in results.values() if l == 1]
    auc = auroc(neg, pos)
    check(auc > 0.7, "image AUROC %.3f > 0.7 over %d good / %d defective" % (auc, len(neg), len(pos)))
    for path, (r, _) in list(results.items()):
        w, h, _, _ = png_size(read(path))
        st, _, hm, hd = insp.req("GET", r["heatmap_url"])
        ok = st == 200 and hd["content-type"] == "image/png" and png_size(hm)[:2] == (w, h)
        st, _, mp, _ = insp.req("GET", r["map_url"])
        info = png_size(mp) if st == 200 else None
        ok = ok and info is not None and info == (w, h, 16, 0)
        if not ok:
            check(False, "heatmap/map of %s at %dx%d (map %s)" % (path, w, h, info))
            break
    else:
        check(True, "every heatmap.png and 16-bit map.png decodes at the image's own size")
    # map.png is rendered later from the stored model-geometry map: it must be
    # the map the response was computed from: its maximum is map_max, and the
    # pixels at or above the threshold are the regions' pixels
    top = max(allres, key=lambda r: r["score"])
    st, _, mp, _ = insp.req("GET", top["map_url"])
    vals = png_gray16(mp) if st == 200 else [0]
    level = top["threshold"] / top["map_max"] * 65535
    above = sum(1 for v in vals if v >= level)
    area = sum(g["area"] for g in top["regions"])
    check(max(vals) == 65535 and top["decision"] == "NG" and abs(above - area) <= 2 + area // 100,
          "map.png of the top-scoring inspection matches its response: max 65535 = map_max, "
          "%d px at or above the threshold, regions cover %d" % (above, area))
    p0 = test_files[-1][0]
    st, js, _, _ = insp.req("POST", "/v1/products/tile-a/inspect?store=false", read(p0), "image/png")
    check(st == 200 and js["heatmap_url"] is None and js["map_url"] is None, "?store=false keeps no images")
    st2, _, _, _ = insp.req("GET", "/v1/inspections/%s/heatmap.png" % js["inspection_id"])
    check(st2 == 404, "no heatmap for a store=false inspection")
    nostore_id = js["inspection_id"]
    st, js, _, _ = insp.req("POST", "/v1/products/tile-a/inspect?heatmap=inline", read(p0), "image/png")
    b = base64.b64decode(js.get("heatmap_png_base64", ""))
    check(st == 200 and png_size(b) is not None and png_size(b)[:2] == png_size(read(p0))[:2],
          "?heatmap=inline carries the heatmap PNG")
    expect_error(insp.req("POST", "/v1/products/tile-a/inspect", b"abc", "text/plain"), 415,
                 "inspect text/plain", "unsupported_media_type")
    expect_error(insp.req("POST", "/v1/products/tile-a/inspect", bad_jpeg, "image/jpeg"), 422,
                 "inspect a corrupt JPEG")
    expect_error(insp.req("POST", "/v1/products/tile-a/inspect", big, "image/jpeg"), 413,
                 "inspect an oversized body")
    tiny = make_png(1, 1)
    expect_error(insp.req("POST", "/v1/products/tile-a/inspect", tiny, "image/png"), 422,
                 "inspect a 1x1 image")

    if a.cli:
        print("== parity with the CLI", flush=True)
        st, _, blob, hd = op.req("GET", "/v1/products/tile-a/models/1/artifact")
        check(st == 200 and hd["content-type"] == "application/octet-stream" and len(blob) > 0,
              "GET model artifact")
        mpath = os.path.join(tmp, "v1.cfa")
        with open(mpath, "wb") as f:
            f.write(blob)
        p = subprocess.run([a.cli, "eval", "--data", ds, "--model", mpath, "--backbone", a.backbone,
                            "--json", "--quiet"], capture_output=True, text=True)
        if check(p.returncode == 0, "cfa eval --model <artifact> runs"):
            cli = json.loads(p.stdout.strip().splitlines()[-1])
            by_image = {s["image"]: s["score"] for s in cli["scores"]}
            diffs = [abs(by_image[os.path.relpath(path, os.path.join(ds, "test"))] - r["score"])
                     for path, (r, _) in results.items()
                     if os.path.relpath(path, os.path.join(ds, "test")) in by_image]
            check(len(diffs) == len(results) and max(diffs) <= 1e-4,
                  "server scores equal the CLI's for %d images (max diff %.3g)"
                  % (len(diffs), max(diffs) if diffs else -1))
        else:
            print(p.stderr[-2000:])

    print("== audit trail", flush=True)
    inspected = {r["inspection_id"]: r for r in allres}
    trail, after = [], None
    while True:
        q = "/v1/inspections?product=tile-a&limit=7" + ("&after=" + after if after else "")
        st, js, _, _ = insp.req("GET", q)
        if not check(st == 200, "GET " + q):
            break
        trail += js["inspections"]
        after = js["next"]
        if after is None:
            break
    tids = [t["inspection_id"] for t in trail]
    check(set(inspected) <= set(tids) and nostore_id in tids, "audit trail lists every inspection")
    check(tids == sorted(tids, reverse=True), "audit trail newest first")
    check(all(t["model_version"] == 1 for t in trail), "audit rows name model version 1")
    one = inspected[next(iter(inspected))]
    st, js, _, _ = insp.req("GET", "/v1/inspections/" + one["inspection_id"])
    check(st == 200 and abs(js["score"] - one["score"]) < 1e-6 and js["decision"] == one["decision"],
          "GET /v1/inspections/{id}")
    st, js, _, _ = insp.req("GET", "/v1/inspections?decision=NG&limit=1000")
    check(st == 200 and all(t["decision"] == "NG" for t in js["inspections"]) and
          len(js["inspections"]) == sum(1 for r in allres if r["decision"] == "NG") +
          sum(1 for t in trail if t["decision"] == "NG" and t["inspection_id"] not in inspected),
          "decision filter")
    st, js, _, _ = insp.req("GET", "/v1/inspections?since=2999-01-01T00:00:00Z")
    check(st == 200 and js["inspections"] == [] and js["next"] is None, "since filter")
    expect_error(insp.req("GET", "/v1/inspections?since=yesterday"), 400, "bad since")
    expect_error(insp.req("GET", "/v1/inspections?limit=abc"), 400, "bad limit")
    expect_error(insp.req("GET", "/v1/inspections/0123456789abcdef0123456789abcdef"), 404,
                 "unknown inspection")

    print("== threshold", flush=True)
    st, js, _, _ = op.req("PUT", "/v1/products/tile-a/threshold", {"threshold": 1e9})
    check(st == 200 and js["threshold"] == 1e9, "PUT threshold")
    st, js, _, _ = insp.req("POST", "/v1/products/tile-a/inspect", read(test_files[-1][0]), "image/png")
    check(st == 200 and js["decision"] == "OK" and js["threshold"] == 1e9, "new threshold applies")
    st, js, _, _ = op.req("PUT", "/v1/products/tile-a/threshold", {"threshold": threshold})
    expect_error(op.req("PUT", "/v1/products/tile-a/threshold", {"threshold": "high"}), 400,
                 "bad threshold")
    expect_error(op.req("POST", "/v1/products/tile-a/models/9/activate"), 404, "activate unknown version")

    print("== restart during training", flush=True)
    st, js, _, _ = op.req("POST", "/v1/products/tile-a/train", dict(TRAIN, epochs=50))
    job4 = js["job"]["id"]
    wait_job(op, job4, states=("running",), timeout=120)
    t_stop = time.time()
    rc = d.stop()
    check(rc == 0, "SIGTERM while training: clean exit 0 (got %s)" % rc)
    check(time.time() - t_stop < 60, "shutdown took %.1f s" % (time.time() - t_stop))
    # a database written by an older version, which stored settings as given:
    # a key now unknown is ignored (and logged) when training, not refused
    con = sqlite3.connect(os.path.join(data_dir, "cfa.db"))
    con.execute("UPDATE products SET settings_json = ? WHERE id = 'tile-a'",
                ('{"gamma_c": 4, "gama_d": 2}',))
    con.commit()
    con.close()
    d = Daemon(a.server, data_dir, a.backbone, log_path).start()
    admin, op, insp = (Client(d.port, c.key) for c in (admin, op, insp))
    st, js, _, _ = op.req("GET", "/v1/jobs/" + job4)
    check(st == 200 and js["state"] in ("queued", "running"), "interrupted job re-queued (%s)" % js["state"])
    st, _, _, _ = op.req("POST", "/v1/jobs/%s/cancel" % job4)
    job = wait_job(op, job4, timeout=300)
    check(job["state"] == "canceled", "re-queued job canceled")
    st, js, _, _ = insp.req("GET", "/v1/products/tile-a")
    check(st == 200 and js["active_version"] == 1 and js["image_count"] == 40
          and abs(js["threshold"] - threshold) < 1e-12, "product, model and images survived")
    st, js, _, _ = insp.req("GET", "/v1/inspections?product=tile-a&limit=1000")
    check(set(inspected) <= {t["inspection_id"] for t in js["inspections"]}, "audit trail survived")
    same = True
    for path, (r, _) in list(results.items())[::4]:
        st, js, _, _ = insp.req("POST", "/v1/products/tile-a/inspect", read(path), "image/png")
        if st != 200 or abs(js["score"] - r["score"]) > 1e-4:
            same = False
            print("   %s: %s vs %s" % (path, js and js.get("score"), r["score"]))
    check(same, "scores after restart equal to 1e-4")
    st, _, hm, _ = insp.req("GET", one["heatmap_url"])
    check(st == 200 and png_size(hm) is not None, "heatmaps survived")

    print("== concurrent inspections while training and activating", flush=True)
    st, js, _, _ = op.req("POST", "/v1/products/tile-a/train", dict(TRAIN, activate=True))
    job3 = js["job"]["id"]
    with open(log_path) as f:
        logged = f.read()
    check(st == 202 and "gama_d" not in js["job"]["params"] and js["job"]["params"]["gamma_c"] == 4
          and 'stored settings ignored: unknown key "gama_d"' in logged,
          "old stored settings: the unknown key is ignored and logged, the rest applies")
    stop = threading.Event()
    errors, versions, counts = [], set(), [0]
    lock = threading.Lock()
    payloads = [read(p) for p, _ in test_files]

    def client_loop(seed):
        rnd = random.Random(seed)
        c = Client(d.port, insp.key)
        while not stop.is_set():
            try:
                st, js, _, _ = c.req("POST", "/v1/products/tile-a/inspect?store=%s" %
                                     rnd.choice(["true", "false"]), rnd.choice(payloads),
                                     "image/png")
            except Exception as e:  # noqa: BLE001 - any transport failure is a failure
                with lock:
                    errors.append(repr(e))
                continue
            with lock:
                counts[0] += 1
                if st != 200:
                    errors.append("%d %s" % (st, js))
                else:
                    versions.add(js["model_version"])

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    job = wait_job(op, job3)
    # some requests on the new version: waited for, not slept for, since on a
    # loaded machine the 4 clients may need longer than any fixed time
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        with lock:
            if 2 in versions:
                break
        time.sleep(0.2)
    st, _, _, _ = op.req("POST", "/v1/products/tile-a/models/1/activate")
    check(st == 200, "activate version 1 while inspecting")
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    check(job["state"] == "succeeded" and job["model_version"] == 2, "second training succeeded")
    check(not errors, "no concurrent request failed (%d requests, errors %s)" % (counts[0], errors[:3]))
    st, js, _, _ = op.req("GET", "/v1/products/tile-a/models")
    existing = {m["version"] for m in js["models"]}
    check(versions <= existing and 1 in versions, "every version named existed (%s)" % sorted(versions))
    check(2 in versions, "requests were served by the newly activated version 2")
    st, js, _, _ = insp.req("POST", "/v1/products/tile-a/inspect", payloads[0], "image/png")
    check(st == 200 and js["model_version"] == 1, "after activating 1 again, results name version 1")
    st, _, body, _ = Client(d.port).req("GET", "/metrics")
    check(b'route="/v1/products/{id}/inspect"' in body and b"cfa_inference_batch_size_bucket" in body
          and b'cfa_training_jobs{state="succeeded"} 2' in body, "metrics count inspections and jobs")

    st, _, _, _ = op.req("DELETE", "/v1/products/tile-a/images/" + ids[0])
    check(st == 204, "DELETE image")
    expect_error(op.req("DELETE", "/v1/products/tile-a/images/" + ids[0]), 404, "DELETE image again")

    rc = d.stop()
    check(rc == 0, "SIGTERM: clean exit 0")

    print("== overload: queue depth 1", flush=True)
    d = Daemon(a.server, data_dir, a.backbone, log_path,
               extra=["--queue-depth", "1", "--batch", "1", "--gamma-d", "2", "--margin", "1.5"]).start()
    outcomes = []

    def one(i):
        r = Client(d.port, insp.key).req("POST", "/v1/products/tile-a/inspect?store=false",
                                         payloads[i % len(payloads)], "image/png")
        with lock:
            outcomes.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy = [r for r in outcomes if r[0] == 503]
    check(all(r[0] in (200, 503) for r in outcomes) and busy and len(busy) < 8,
          "a full queue answers 503 (%d of 8), the rest 200" % len(busy))
    if busy:
        expect_error(busy[0], 503, "queue full", "overloaded")
        check(busy[0][3].get("retry-after") == "1", "503 carries Retry-After")
    # precedence through the real daemon: its flags < the product's settings < the body
    op = Client(d.port, op.key)
    st, js, _, _ = op.req("POST", "/v1/products/tile-a/train", {"epochs": 3, "margin": 1.25})
    p = js["job"]["params"] if st == 202 else {}
    check(st == 202 and p["gamma_d"] == 2 and p["gamma_c"] == 4 and p["epochs"] == 3
          and p["margin"] == 1.25 and p["holdout"] == 0.2,
          "job params: --gamma-d 2 (daemon), gamma_c 4 (product), epochs 3 and margin 1.25 (body)")
    if st == 202:
        op.req("POST", "/v1/jobs/%s/cancel" % js["job"]["id"])
        wait_job(op, js["job"]["id"], timeout=300)
    rc = d.stop()
    check(rc == 0, "final SIGTERM: clean exit 0")

    print("== daemon training flags", flush=True)
    env = dict(os.environ)
    for args, extra_env, words in (
            (["--gama-c", "4"], {}, ['"--gama-c"', "did you mean --gamma-c?"]),
            (["--gamma-c", "100"], {}, ["--gamma-c / CFA_GAMMA_C", "[1, 64]", '"100"']),
            (["--bank", "median"], {}, ["--bank", "one of mean, ema"]),
            (["--resize-h", "64", "--crop-h", "224"], {}, ['"crop_h" (224)', '"resize_h" (64)']),
            ([], {"CFA_HOLDOUT": "0.9"}, ["--holdout / CFA_HOLDOUT", "[0, 0.5]"])):
        p = subprocess.run([a.server, "--data-dir", os.path.join(tmp, "never")] + args,
                           env=dict(env, **extra_env), capture_output=True, text=True, timeout=60)
        check(p.returncode == 2 and all(w in p.stderr for w in words),
              "cfa-server %s %s exits 2 naming %s (%d: %s)" % (extra_env or "", " ".join(args),
                                                               words, p.returncode, p.stderr.strip()))
    p = subprocess.run([a.server, "--help"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "--gamma-c=V" in p.stdout and "CFA_GAMMA_C" in p.stdout
          and "(8; the paper: 1; an integer in [1, 64])" in p.stdout,
          "cfa-server --help lists the training flags with the service's defaults")

    print("== first start without CFA_ADMIN_KEY", flush=True)
    dir2 = os.path.join(tmp, "var2")
    d = Daemon(a.server, dir2, a.backbone, log_path, admin_env=False).start()
    kpath = os.path.join(dir2, "admin.key")
    check(os.path.exists(kpath) and (os.stat(kpath).st_mode & 0o777) == 0o600,
          "admin.key written with mode 0600")
    key = open(kpath).read().strip()
    st, js, _, _ = Client(d.port, key).req("GET", "/v1/keys")
    check(st == 200 and len(js["keys"]) == 1 and js["keys"][0]["role"] == "admin",
          "the generated admin key works")
    expect_error(Client(d.port, ADMIN_KEY).req("GET", "/v1/keys"), 401, "another data dir's key")
    check(d.stop(sig=signal.SIGINT) == 0, "SIGINT: clean exit 0")
    print("total %.0f s" % (time.time() - t0))
    if failures:
        print("%d check(s) failed; data dir kept at %s" % (len(failures), tmp))
        for f in failures:
            print("  - " + f)
        return 1
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
