#!/usr/bin/python3
"""Bounded fields, paging and file permissions of cfa-server (docs/RELIABILITY.md,
"Bounded input, paged lists, private files"). Each section starts the real daemon
on 127.0.0.1 port 0 with a fresh data directory:

  fields     string caps (names, ids), per-route JSON body limits, unknown
             properties refused by name; nothing is stored on a refusal
  paging     products, images, keys and jobs paged with limit and cursor while
             rows are inserted between pages: every row seen exactly once;
             bad cursors and limits are a 400 on every list
  threshold  -1, 0, 1e308, above FLT_MAX, a string: 400 before anything else;
             the CLI's --threshold refuses the same
  perms      cfa.db, -wal, -shm and stored images 0600, directories 0700; a
             0644 database of an older version narrowed; a group- or world-
             writable data directory refused with the chmod to run

usage: test_hardening_bounds.py --server build/cfa-server --backbone X.pt --data DIR
                                --only fields,paging [--keep]
Python 3 standard library only. Exit 0 = pass.
"""
import os
import re
import stat
import subprocess
import sys
import time

import daemon_proc
import test_hardening as th
from test_hardening import (ADMIN_KEY, Client, check, expect_error, make_png,
                            multipart, sha256)

NAME_MAX = 256            # API_NAME_MAX, api/api_int.h
FLT_MAX = 3.4028234663852886e38


def products_named(c):
    st, js, _, _ = c.req("GET", "/v1/products?limit=1000")
    return {p["id"]: p["name"] for p in js["products"]} if st == 200 else None


# -------------------------------------------------------------------- fields
def sec_fields(env):
    d = env.daemon("fields").start()
    try:
        fields_checks(Client(d.port, ADMIN_KEY))
    finally:
        d.stop()


def fields_checks(c):
    st, js, _, _ = c.req("GET", "/v1/info")
    lim = js.get("limits", {}) if st == 200 else {}
    check(lim.get("max_name_bytes") == NAME_MAX and lim.get("max_json_body_bytes") == 65536
          and lim.get("max_list_limit") == 1000,
          "GET /v1/info lists the name, JSON body and list limits (%s)"
          % {k: v for k, v in lim.items() if k.startswith("max_")})
    # names: bytes of UTF-8, not characters
    check(c.req("POST", "/v1/products", {"id": "n256", "name": "x" * NAME_MAX})[0] == 201,
          "a name of %d bytes is stored" % NAME_MAX)
    expect_error(c.req("POST", "/v1/products", {"id": "n257", "name": "x" * (NAME_MAX + 1)}),
                 400, "a name of %d bytes" % (NAME_MAX + 1), "field_too_long")
    expect_error(c.req("POST", "/v1/products", {"id": "n-utf8", "name": "\u00e9" * 129}),
                 400, "a name of 129 two-byte characters (258 bytes)", "field_too_long")
    t0 = time.time()
    st, js, _, _ = c.req("POST", "/v1/products", {"id": "n30mb", "name": "x" * (30 << 20)})
    expect_error((st, js, None, None), 413, "a 30 MB name", "body_too_large")
    msg = ((js or {}).get("error") or {}).get("message", "")
    check("65536 bytes" in msg, "the 413 names the route's limit (%s)" % msg)
    print("  note 30 MB product body refused in %.2f s" % (time.time() - t0))
    expect_error(c.req("POST", "/v1/products", b'{"id": "u8", "name": "\xff\xfe"}',
                       "application/json"), 400, "a name that is not UTF-8", "malformed_json")
    expect_error(c.req("POST", "/v1/products", {"id": "i" * 65}), 400, "a 65-byte id",
                 "invalid_product_id")
    expect_error(c.req("POST", "/v1/products", {"id": "i" * 100000}), 413,
                 "a 100 kB id", "body_too_large")
    # an unknown property's name is cut on a character boundary in the message
    st, js, _, _ = c.req("POST", "/v1/products", {"id": "u2", "\u00e9" * 100: 1})
    msg = ((js or {}).get("error") or {}).get("message", "")
    check(st == 400 and "\u00e9" * 20 + '"' in msg and len(msg) < 200,
          "a 200-byte unknown property is named, cut to 40 bytes (%s)" % msg)
    expect_error(c.req("PATCH", "/v1/products/n256", {"name": "y" * 1000}), 400,
                 "PATCH a 1000-byte name", "field_too_long")
    names = products_named(c)
    check(names == {"n256": "x" * NAME_MAX},
          "nothing stored by the refused bodies (products: %s)"
          % sorted(names or {}))

    # settings: a body of 200,000 unknown keys is refused by its size, unread
    big = "{" + ",".join('"k%06d": 1' % i for i in range(200000)) + "}"
    body = ('{"id": "s1", "settings": %s}' % big).encode()
    t0 = time.time()
    expect_error(c.req("POST", "/v1/products", body, "application/json"), 413,
                 "settings with 200,000 unknown keys (%d bytes)" % len(body), "body_too_large")
    print("  note %d-byte settings body refused in %.2f s" % (len(body), time.time() - t0))
    st, js, _, _ = c.req("POST", "/v1/products",
                         {"id": "s2", "settings": {"epochs": 2, "colour": 1, "sizee": 3}})
    expect_error((st, js, None, None), 400, "settings with unknown keys", "invalid_settings")
    msg = ((js or {}).get("error") or {}).get("message", "")
    check(st == 400 and ("colour" in msg or "sizee" in msg),
          "the 400 names an unknown settings key (%s)" % msg)

    # unknown properties of every JSON body, named
    for what, method, path, body, allowed in (
            ("POST products", "POST", "/v1/products", {"id": "u1", "colour": "red"}, "colour"),
            ("PATCH product", "PATCH", "/v1/products/n256", {"name": "a", "descr": "b"}, "descr"),
            ("PUT threshold", "PUT", "/v1/products/n256/threshold",
             {"threshold": 1.5, "thresh": 2}, "thresh"),
            ("POST keys", "POST", "/v1/keys", {"name": "k", "role": "inspect", "rol": "x"}, "rol")):
        st, js, _, _ = c.req(method, path, body)
        expect_error((st, js, None, None), 400, what + " with an unknown property",
                     "unknown_property")
        msg = ((js or {}).get("error") or {}).get("message", "")
        check(st == 400 and '"%s"' % allowed in msg,
              "%s: the 400 names the property (%s)" % (what, msg))
    expect_error(c.req("POST", "/v1/products/n256/train", {"epochs": 1, "epoch": 2}), 400,
                 "train body with an unknown key", "invalid_params")
    st, js, _, _ = c.req("GET", "/v1/products/n256")
    check(st == 200 and js["name"] == "x" * NAME_MAX, "the refused PATCHes changed nothing")

    # keys: name capped, body capped, nothing stored
    st, js, _, _ = c.req("GET", "/v1/keys")
    n_keys = len(js["keys"]) if st == 200 else -1
    expect_error(c.req("POST", "/v1/keys", {"name": "k" * 300, "role": "inspect"}), 400,
                 "a 300-byte key name", "field_too_long")
    expect_error(c.req("POST", "/v1/keys", {"name": "k" * 5000, "role": "inspect"}), 413,
                 "a 5000-byte key body", "body_too_large")
    st, js, _, _ = c.req("GET", "/v1/keys")
    check(st == 200 and len(js["keys"]) == n_keys, "no key stored by the refused bodies")


# -------------------------------------------------------------------- paging
def walk(c, path, name, limit, between=None, key="id"):
    """Pages through path with limit and cursor; calls between(i) after page
    i. Returns (the ids in order, the number of pages, the cursors)."""
    seen, cursor, pages, cursors = [], None, 0, []
    while True:
        sep = "&" if "?" in path else "?"
        q = "%s%slimit=%d%s" % (path, sep, limit, "&cursor=" + cursor if cursor else "")
        st, js, _, _ = c.req("GET", q)
        if not check(st == 200 and name in js and "next_cursor" in js,
                     "GET %s -> 200 with %s and next_cursor (got %d)" % (q, name, st)):
            return seen, pages, cursors
        check(js["next"] == js["next_cursor"], "next and next_cursor agree")
        seen += [x[key] for x in js[name]]
        pages += 1
        cursor = js["next_cursor"]
        if not cursor or pages > 100:
            return seen, pages, cursors
        cursors.append(cursor)
        if between is not None:
            between(pages)


def exactly_once(seen, expected, what, pages):
    dup = sorted({s for s in seen if seen.count(s) > 1})
    missing = sorted(set(expected) - set(seen))
    check(pages > 1 and not dup and not missing,
          "%s: %d pages, each of %d rows seen exactly once (dup %s, missing %s)"
          % (what, pages, len(expected), dup, missing))


def train_and_cancel(c, pid):
    st, js, _, _ = c.req("POST", "/v1/products/%s/train" % pid, {"epochs": 1})
    if not check(st == 202, "POST train %s -> 202 (got %d)" % (pid, st)):
        return None
    job = js["job"]["id"]
    c.req("POST", "/v1/jobs/%s/cancel" % job)
    return job


def wait_jobs_ended(c, ids, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, js, _, _ = c.req("GET", "/v1/jobs?limit=1000")
        if st == 200 and all(j["state"] in ("canceled", "failed", "succeeded")
                             for j in js["jobs"] if j["id"] in ids):
            return True
        time.sleep(0.5)
    return check(False, "jobs %s ended" % ids)


def sec_paging(env):
    d = env.daemon("paging").start()
    try:
        paging_checks(Client(d.port, ADMIN_KEY))
    finally:
        d.stop()


def paging_checks(c):
    # products: ordered by id; new ones, before and after the cursor, come
    # between pages
    orig = ["p%02d" % i for i in range(0, 20, 2)]
    for pid in orig:
        c.req("POST", "/v1/products", {"id": pid})
    extra = iter(["p%02d" % i for i in range(1, 20, 2)] + ["a0", "z9"])

    def add_product(_):
        for _ in range(2):
            c.req("POST", "/v1/products", {"id": next(extra)})
    seen, pages, _ = walk(c, "/v1/products", "products", 3, add_product)
    exactly_once([s for s in seen if s in orig], orig, "products", pages)
    check(len(seen) == len(set(seen)), "products: no row twice though %d were added"
          % (len(seen) - len(orig)))

    # images: ordered by id (SHA-256)
    imgs = [make_png(16, 16, seed=s) for s in range(7)]
    body, ct = multipart([("%d.png" % i, b) for i, b in enumerate(imgs)])
    check(c.req("POST", "/v1/products/p00/images", body, ct)[0] == 201, "upload 7 images")
    more = iter(range(100, 120))

    def add_image(_):
        b = make_png(16, 16, seed=next(more))
        c.req("POST", "/v1/products/p00/images", b, "image/png")
    seen, pages, _ = walk(c, "/v1/products/p00/images", "images", 2, add_image)
    exactly_once([s for s in seen if s in map(sha256, imgs)], list(map(sha256, imgs)),
                 "images", pages)
    check(len(seen) == len(set(seen)), "images: no row twice")

    # keys: oldest first
    st, js, _, _ = c.req("GET", "/v1/keys?limit=1000")
    keys0 = [k["id"] for k in js["keys"]]
    for i in range(6):
        st, js, _, _ = c.req("POST", "/v1/keys", {"name": "k%d" % i, "role": "inspect"})
        keys0.append(js["id"])
    seen, pages, _ = walk(c, "/v1/keys", "keys", 2,
                          lambda _: c.req("POST", "/v1/keys", {"name": "new", "role": "inspect"}))
    exactly_once([s for s in seen if s in keys0], keys0, "keys", pages)
    check(len(seen) == len(set(seen)), "keys: no row twice")

    # jobs: newest first; one job per product (each with 2 images), canceled
    jobs = []
    for pid in ("p02", "p04", "p06", "p08"):
        b2, ct2 = multipart([("a.png", make_png(16, 16, seed=200)),
                             ("b.png", make_png(16, 16, seed=201))])
        c.req("POST", "/v1/products/%s/images" % pid, b2, ct2)
        jobs.append(train_and_cancel(c, pid))
    wait_jobs_ended(c, jobs)
    late = iter(("p10", "p12"))

    def add_job(_):
        pid = next(late, None)
        if pid is not None:
            b3, ct3 = multipart([("a.png", make_png(16, 16, seed=300)),
                                 ("b.png", make_png(16, 16, seed=301))])
            c.req("POST", "/v1/products/%s/images" % pid, b3, ct3)
            jobs_late.append(train_and_cancel(c, pid))
    jobs_late = []
    seen, pages, _ = walk(c, "/v1/jobs", "jobs", 1, add_job)
    exactly_once([s for s in seen if s in jobs], jobs, "jobs", pages)
    check(not set(seen) & set(jobs_late), "jobs created after the first page are not on later "
          "pages of a newest-first list")
    wait_jobs_ended(c, jobs_late)
    seen, pages, _ = walk(c, "/v1/jobs?product=p02", "jobs", 1)
    check(len(seen) == 1, "jobs filtered by product: one page, one job")

    # a bad cursor or limit on every list is a 400, not a first page
    for path in ("/v1/products", "/v1/products/p00/images", "/v1/products/p00/models",
                 "/v1/jobs", "/v1/keys", "/v1/inspections"):
        sep = "&" if "?" in path else "?"
        expect_error(c.req("GET", path + sep + "cursor=bad%21cursor"), 400,
                     "GET %s?cursor=bad!cursor" % path, "invalid_cursor")
        expect_error(c.req("GET", path + sep + "limit=0"), 400, "GET %s?limit=0" % path,
                     "invalid_limit")
        st, js, _, _ = c.req("GET", path + sep + "limit=1")
        check(st == 200 and "next_cursor" in js, "GET %s?limit=1 has next_cursor" % path)
    expect_error(c.req("GET", "/v1/products?cursor=" + "a" * 200), 400,
                 "a 200-byte cursor", "invalid_cursor")


# ----------------------------------------------------------------- threshold
def sec_threshold(env):
    d = env.daemon("threshold").start()
    c = Client(d.port, ADMIN_KEY)
    c.req("POST", "/v1/products", {"id": "t1"})
    for v in (-1, 0, -0.0, 1e308, FLT_MAX * 1.0000001, "nan", "2.5", None, True):
        expect_error(c.req("PUT", "/v1/products/t1/threshold", {"threshold": v}), 400,
                     "threshold %r" % (v,), "invalid_threshold")
    for raw in (b'{"threshold": NaN}', b'{"threshold": Infinity}', b'{"threshold": 1e999}'):
        st = c.req("PUT", "/v1/products/t1/threshold", raw, "application/json")[0]
        check(st == 400, "threshold body %s -> 400 (got %d)" % (raw.decode(), st))
    # a valid one passes the check and meets the product's state: no model yet
    expect_error(c.req("PUT", "/v1/products/t1/threshold", {"threshold": 2.5}), 422,
                 "threshold 2.5 without a model", "no_model")
    expect_error(c.req("PUT", "/v1/products/t1/threshold", {"threshold": FLT_MAX}), 422,
                 "threshold FLT_MAX without a model", "no_model")
    d.stop()
    # the CLI refuses the same thresholds, before it reads the model
    cli = os.path.join(os.path.dirname(os.path.abspath(env.a.server)), "cfa")
    if check(os.access(cli, os.X_OK), "the CLI is next to the daemon (%s)" % cli):
        for v in ("-1", "0", "1e308"):
            p = subprocess.run([cli, "infer", "--model", "/nonexistent.model", "/nonexistent.png",
                                "--threshold", v], capture_output=True, text=True, timeout=120)
            check(p.returncode != 0 and "--threshold" in p.stderr,
                  "cfa infer --threshold %s refused naming the flag (rc %d: %s)"
                  % (v, p.returncode, p.stderr.strip()[:120]))


# --------------------------------------------------------------------- perms
def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def start_fails(env, name, data_dir):
    """Starts the daemon on data_dir expecting it to refuse: (exit code, log)."""
    log = os.path.join(env.tmp, name + ".log")
    env_vars = dict(os.environ, CFA_ADMIN_KEY=ADMIN_KEY)
    try:
        proc, _, f = daemon_proc.spawn([env.a.server, "--listen", "127.0.0.1:0", "--data-dir",
                                        data_dir, "--backbone", env.a.backbone], env_vars, log, 120)
    except RuntimeError:
        return None, open(log).read()
    daemon_proc.stop(proc, f)
    return 0, open(log).read()


def sec_perms(env):
    old = os.umask(0o022)  # the usual umask: what the daemon makes is its own doing
    try:
        d = env.daemon("perms").start()
        c = Client(d.port, ADMIN_KEY)
        c.req("POST", "/v1/products", {"id": "m1"})
        c.req("POST", "/v1/products/m1/images", make_png(16, 16, seed=1), "image/png")
        dd = d.data_dir
        files = {f: os.path.join(dd, f) for f in ("cfa.db", "cfa.db-wal", "cfa.db-shm")}
        for f, p in files.items():
            check(os.path.exists(p) and mode(p) == 0o600,
                  "%s is 0600 (%s)" % (f, oct(mode(p)) if os.path.exists(p) else "absent"))
        for root, dirs, fs in os.walk(dd):
            bad = [os.path.join(root, x) for x in dirs if mode(os.path.join(root, x)) != 0o700]
            bad += [os.path.join(root, x) for x in fs if mode(os.path.join(root, x)) != 0o600]
            check(not bad, "under %s: directories 0700, files 0600 (%s)"
                  % (os.path.relpath(root, dd), [(b, oct(mode(b))) for b in bad]))
        check(mode(dd) == 0o700, "the data directory it created is 0700 (%s)" % oct(mode(dd)))
        d.stop()
        # an older version's 0644 database is narrowed at start, with a warning
        os.chmod(files["cfa.db"], 0o644)
        d.start()
        check(mode(files["cfa.db"]) == 0o600, "a 0644 cfa.db is 0600 after a start (%s)"
              % oct(mode(files["cfa.db"])))
        d.stop()
        check("had mode 0644" in open(d.log_path).read(), "the narrowing is logged")

        # a data directory others may write to is refused, naming the chmod
        for m in (0o777, 0o770, 0o1777):
            dd2 = os.path.join(env.tmp, "perms-%o" % m)
            os.makedirs(dd2, exist_ok=True)
            os.chmod(dd2, m)
            rc, log = start_fails(env, "perms-%o" % m, dd2)
            check(rc is None and "chmod 700 " + dd2 in log,
                  "a %04o data directory is refused with the chmod to run (%s)"
                  % (m, (re.findall(r".*chmod.*", log) or log.splitlines()[-1:] or [""])[0]))
            check(not os.path.exists(os.path.join(dd2, "cfa.db")), "nothing created in it")
        dd3 = os.path.join(env.tmp, "perms-755")
        os.makedirs(dd3, exist_ok=True)
        os.chmod(dd3, 0o755)
        rc, _ = start_fails(env, "perms-755", dd3)
        check(rc == 0, "a 0755 data directory (others may read, not write) is used")
    finally:
        os.umask(old)


SECTIONS = {"fields": sec_fields, "paging": sec_paging, "threshold": sec_threshold,
            "perms": sec_perms}


if __name__ == "__main__":
    sys.exit(th.run_sections(SECTIONS, log_name=lambda f: f.endswith(".log")))
