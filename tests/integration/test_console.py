#!/usr/bin/python3
"""The operator console (web/, api/static.c) and the endpoints it added.

  static   the console's files from --web-dir: the right types, ETag and 304,
           HEAD, the security headers (a Content-Security-Policy with
           script-src 'self' and frame-ancestors 'none', nosniff), no CORS
           header even for a cross-origin request; no traversal: "..",
           "%2e%2e", an encoded slash, a hidden file, a symlink out of the
           web directory, a folder, an unknown extension are all 404 and the
           files stay as they were (PUT/POST/DELETE refused); API paths keep
           their JSON 404; without --web-dir the build tree's web/ is served.
           Thumbnails: a small PNG with an ETag (304 on If-None-Match) and a
           cache lifetime, 404 for an unknown image, 403 for an inspect key;
           job events of an unknown job: a JSON 404; a stream open on a
           running job ends at SIGTERM instead of holding the drain.
  browser  tests/console/drive.mjs drives Debian's Chromium (playwright-core)
           through the console against the daemon: a key, a product, the
           mini set dropped on the training set, 2 epochs watched to 100%,
           activation, the threshold histogram, a defect inspected by hand
           with its heatmap overlay checked in screenshot pixels, a key
           created and revoked, every page at 1366x768 and as a tablet.
           Training progress comes from GET /v1/jobs/{id}/events (SSE read
           with fetch). Then from here: the finished job's events are one
           end event, the inspection's /image is the bytes sent, the model's
           figures carry the held-out scores, no key is in the daemon's log.

usage: test_console.py --server build/cfa-server --backbone X.pt --data DIR
                       [--node node] [--out DIR] [--only static,browser]
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hardening as th  # noqa: E402

check = th.check
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB = os.path.join(ROOT, "web")
CONSOLE = os.path.join(ROOT, "tests", "console")
OPTS = {"node": "node", "out": None}


def png_size(b):
    """(width, height) of a PNG, from its IHDR."""
    if b[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", b[16:24])


def raw_get(port, path, method="GET", headers=None):
    """A request with the path sent exactly as written (no client clean-up)."""
    c = th.Client(port)
    return c.req(method, path, key=None, headers=headers)


def web_copy(env):
    """A web directory with a symlink out of it, a hidden file and a folder,
    beside a file outside it that must never be served."""
    base = os.path.join(env.tmp, "site")
    web = os.path.join(base, "web")
    shutil.copytree(WEB, web)
    with open(os.path.join(base, "outside.html"), "w") as f:
        f.write("SECRET-OUTSIDE")
    os.symlink(os.path.join(base, "outside.html"), os.path.join(web, "link.html"))
    os.symlink("/etc/passwd", os.path.join(web, "passwd.css"))
    with open(os.path.join(web, ".hidden.html"), "w") as f:
        f.write("SECRET-HIDDEN")
    os.mkdir(os.path.join(web, "dir.html"))
    return web


def static_files(port, web):
    st, _, body, h = raw_get(port, "/")
    check(st == 200 and body == open(os.path.join(web, "index.html"), "rb").read(),
          "GET / serves index.html (%d)" % st)
    check(h.get("content-type", "").startswith("text/html"), "index is text/html")
    csp = h.get("content-security-policy", "")
    check("script-src 'self'" in csp and "unsafe-inline" not in csp and
          "frame-ancestors 'none'" in csp, "CSP forbids inline script and framing: " + csp)
    check(h.get("x-content-type-options") == "nosniff", "X-Content-Type-Options: nosniff")
    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css"),
                        ("favicon.svg", "image/svg+xml")):
        st, _, body, hh = raw_get(port, "/" + name)
        check(st == 200 and hh.get("content-type", "").startswith(ctype) and
              body == open(os.path.join(web, name), "rb").read(),
              "%s served as %s (%d, %s)" % (name, ctype, st, hh.get("content-type")))
    etag = h.get("etag")
    st, _, body, hh = raw_get(port, "/", headers={"If-None-Match": etag})
    check(etag and st == 304 and body == b"", "If-None-Match with the ETag -> 304 (%d)" % st)
    st, _, body, hh = raw_get(port, "/", method="HEAD")
    check(st == 200 and body == b"" and hh.get("etag") == etag, "HEAD / -> 200, no body")
    with open(os.path.join(web, "index.html"), "ab") as f:
        f.write(b"\n")
    st, _, _, hh = raw_get(port, "/", headers={"If-None-Match": etag})
    check(st == 200 and hh.get("etag") != etag, "an edited file gets a new ETag (%d)" % st)


def static_traversal(port, web):
    bad = ["/../outside.html", "/%2e%2e/outside.html", "/%2E%2E%2Foutside.html",
           "/..%2foutside.html", "/link.html", "/passwd.css", "/.hidden.html", "/dir.html",
           "/index.html/", "//index.html", "/web/index.html", "/missing.html", "/README.md",
           "/index.html%00.js", "/.."]
    for path in bad:
        st, _, body, _ = raw_get(port, path)
        check(st in (400, 404) and b"SECRET" not in body and b"root:" not in body,
              "GET %s refused (%d)" % (path, st))
    before = open(os.path.join(web, "index.html"), "rb").read()
    for method in ("PUT", "POST", "DELETE"):
        c = th.Client(port)
        st, _, _, _ = c.req(method, "/index.html", b"<p>owned</p>", "text/html", key=None)
        check(st in (404, 405), "%s /index.html refused (%d)" % (method, st))
    check(open(os.path.join(web, "index.html"), "rb").read() == before, "the files are unchanged")
    st, js, _, h = raw_get(port, "/", method="OPTIONS",
                           headers={"Origin": "http://evil.example",
                                    "Access-Control-Request-Method": "GET"})
    check(not any(k.startswith("access-control-") for k in h),
          "no CORS header for a cross-origin preflight (%d)" % st)
    st, _, _, h = raw_get(port, "/", headers={"Origin": "http://evil.example"})
    check(st == 200 and "access-control-allow-origin" not in h, "no CORS header on a GET")
    st, js, _, _ = raw_get(port, "/v1/nothing")
    check(st == 404 and js and js["error"]["code"] == "not_found", "API paths keep their JSON 404")
    st, js, _, _ = raw_get(port, "/healthz")
    check(st == 200, "API routes still answer")


def thumbnails(env, c):
    th.make_product(c, "thumbs", env.train[:3])
    st, js, _, _ = c.req("GET", "/v1/products/thumbs/images")
    ids = [i["id"] for i in js["images"]]
    path = "/v1/products/thumbs/images/%s/thumbnail" % ids[0]
    st, _, body, h = c.req("GET", path)
    size = png_size(body)
    check(st == 200 and h.get("content-type") == "image/png" and size and max(size) <= 160,
          "thumbnail: a PNG of at most 160 px (%d, %s)" % (st, size))
    check(h.get("etag") and "max-age" in h.get("cache-control", ""),
          "thumbnail: ETag and Cache-Control (%s, %s)" % (h.get("etag"), h.get("cache-control")))
    st2, _, body2, _ = c.req("GET", path)
    check(st2 == 200 and body2 == body, "thumbnail: the same bytes again (kept)")
    st, _, body, _ = c.req("GET", path, headers={"If-None-Match": h.get("etag")})
    check(st == 304 and body == b"", "thumbnail: If-None-Match -> 304 (%d)" % st)
    st, js, _, _ = c.req("GET", "/v1/products/thumbs/images/%s/thumbnail" % ("0" * 64))
    check(st == 404, "thumbnail of an unknown image -> 404 (%d)" % st)
    st, js, _, _ = c.req("GET", "/v1/products/nope/images/%s/thumbnail" % ids[0])
    check(st == 404, "thumbnail of an unknown product -> 404 (%d)" % st)
    st, js, _, _ = c.req("POST", "/v1/keys", {"name": "cam", "role": "inspect"})
    st, _, _, _ = c.req("GET", path, key=js["key"])
    check(st == 403, "thumbnail needs the operate role (%d)" % st)
    st, _, _, _ = c.req("GET", path, key=None)
    check(st == 401, "thumbnail needs a key (%d)" % st)
    st, js, _, h = c.req("GET", "/v1/jobs/%s/events" % ("0" * 32))
    check(st == 404 and h.get("content-type", "").startswith("application/json"),
          "events of an unknown job -> JSON 404 (%d)" % st)


def events_on_shutdown(env, d, c):
    """An event stream open on a running job does not hold SIGTERM's drain:
    the stream ends at once and no request is left in flight."""
    th.make_product(c, "stream", env.train)
    st, js, _, _ = c.req("POST", "/v1/products/stream/train", {"epochs": 2, "gamma_c": 4, "gamma_d": 4})
    check(st == 202, "a training job to follow (%d)" % st)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=120)
    s.sendall(("GET /v1/jobs/%s/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % (js["job"]["id"], th.ADMIN_KEY)).encode())
    got = b""
    while b"\n\n" not in got.split(b"\r\n\r\n", 1)[-1] or b"\r\n\r\n" not in got:
        part = s.recv(65536)
        if not part:
            break
        got += part
    head = got.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    check(head.startswith("http/1.1 200") and "content-type: text/event-stream" in head and
          b"event: progress" in got, "the job's event stream opens with its state")
    rc = d.stop()
    while True:
        part = s.recv(65536)
        if not part:
            break
        got += part
    s.close()
    check(rc == 0 and b"event: end" not in got, "SIGTERM with a stream open: exit %s" % rc)
    log = open(d.log_path, "rb").read()
    check(b"still in flight" not in log, "the open stream did not hold the drain")


def sec_static(env):
    web = web_copy(env)
    d = env.daemon("static", ["--web-dir", web]).start()
    try:
        static_files(d.port, web)
        static_traversal(d.port, web)
        thumbnails(env, th.Client(d.port, th.ADMIN_KEY))
        events_on_shutdown(env, d, th.Client(d.port, th.ADMIN_KEY))
    finally:
        if d.proc.poll() is None:
            d.stop()
    d = env.daemon("default-web").start()  # no --web-dir: the build tree's web/
    try:
        st, _, body, _ = raw_get(d.port, "/")
        check(st == 200 and body == open(os.path.join(WEB, "index.html"), "rb").read(),
              "without --web-dir the source tree's web/ is served (%d)" % st)
    finally:
        d.stop()


def run_drive(env, port, out):
    defect_dir = os.path.join(env.a.data, "magnetic_tile_mini", "test", "crack")
    defect = os.path.join(defect_dir, sorted(os.listdir(defect_dir))[0])
    cmd = [OPTS["node"], os.path.join(CONSOLE, "drive.mjs"), "--url", "http://127.0.0.1:%d" % port,
           "--key", th.ADMIN_KEY, "--train",
           os.path.join(env.a.data, "magnetic_tile_mini", "train", "good"),
           "--defect", defect, "--out", out]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    try:
        res = json.loads(last)
    except ValueError:
        th.fatal("drive.mjs gave no result (rc %d): %s %s" % (p.returncode, p.stdout[-2000:],
                                                              p.stderr[-2000:]))
    for ok, what in res["checks"]:
        check(ok, "browser: " + what)
    return res["facts"], open(defect, "rb").read()


def sec_browser(env):
    if not os.path.isdir(os.path.join(CONSOLE, "node_modules", "playwright-core")):
        th.fatal("tests/console/node_modules/playwright-core missing: run tools/setup.sh "
                 "(npm ci in tests/console)")
    out = OPTS["out"] or os.path.join(env.tmp, "screens")
    os.makedirs(out, exist_ok=True)
    d = env.daemon("browser").start()
    try:
        facts, defect = run_drive(env, d.port, out)
        th.note("browser: training %s; progress seen %s; heatmap %s" % (
            facts.get("train_status"), facts.get("progress_seen"), facts.get("heatmap")))
        c = th.Client(d.port, th.ADMIN_KEY)
        ins = facts.get("inspection")
        st, _, body, h = c.req("GET", "/v1/inspections/%s/image" % ins)
        check(st == 200 and body == defect and h.get("content-type") == "image/png",
              "GET /v1/inspections/{id}/image is the image sent (%d)" % st)
        st, js, _, _ = c.req("GET", "/v1/inspections/%s" % ins)
        check(st == 200 and abs(js["threshold"] - facts.get("saved_threshold", -1)) <= 1e-4 * js["threshold"],
              "the inspection was judged by the threshold saved in the console (%s)" % js.get("threshold"))
        st, js, _, _ = c.req("GET", "/v1/jobs?product=tile")
        if not check(st == 200 and js["jobs"], "the console started a training job (%d)" % st):
            return
        job = js["jobs"][0]
        st, _, body, h = c.req("GET", "/v1/jobs/%s/events" % job["id"])
        events = [b for b in body.decode().split("\n\n") if b.strip()]
        last = events[-1].split("\n") if events else []
        check(st == 200 and h.get("content-type", "").startswith("text/event-stream") and
              len(events) == 1 and last[0] == "event: end" and
              json.loads(last[1][len("data: "):])["state"] == "succeeded",
              "events of a finished job: one end event, then the stream closes (%d, %r)" % (st, events[:2]))
        st, js, _, _ = c.req("GET", "/v1/products/tile/models")
        m = js["models"][0] if st == 200 and js["models"] else {}
        scores = m.get("figures", {}).get("calibration_scores", [])
        check(m.get("active") and len(scores) == m["figures"]["holdout_images"] and
              max(scores) == m["figures"]["calibration_max"],
              "model figures carry the held-out scores (%d)" % len(scores))
    finally:
        d.stop()
    log = open(os.path.join(env.tmp, "browser", "server.log"), "rb").read()
    secrets = [th.ADMIN_KEY, facts.get("new_key") or "-"]
    check(not any(s.encode() in log for s in secrets), "no key in the daemon's log")
    th.note("browser: screenshots in %s" % out)


SECTIONS = {"static": sec_static, "browser": sec_browser}

if __name__ == "__main__":
    # --node and --out are ours; the rest is run_sections' command line
    argv = sys.argv[1:]
    for opt in ("node", "out"):
        if "--" + opt in argv:
            i = argv.index("--" + opt)
            OPTS[opt] = argv[i + 1]
            del argv[i:i + 2]
    sys.argv[1:] = argv
    sys.exit(th.run_sections(SECTIONS))
