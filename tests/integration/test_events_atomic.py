#!/usr/bin/python3
"""The event log's rows commit with their change (docs/API.md, "Events").

  atomic   against the real daemon: with the log closed (a trigger, added to
           the running daemon's database, refuses event rows) every change
           the API makes is refused and nothing of it stays (a product
           made, renamed, deleted; an image added, removed; a key made,
           revoked; a training queued; an ROI mask set, removed); with the
           log open again each change is made and leaves exactly one row.
           Before the events were written in their change's transaction, the
           changes stood without rows (the mask's until mask.set and
           mask.removed).

usage: test_events_atomic.py --server build/cfa-server --backbone X.pt --data DIR
"""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgconv  # noqa: E402
import test_hardening as th  # noqa: E402  (Daemon, Env, Client, check, ...)

check = th.check
CLOSE = ("CREATE TRIGGER closed BEFORE INSERT ON events "
         "BEGIN SELECT RAISE(ABORT, 'the log is closed'); END")
REOPEN = "DROP TRIGGER IF EXISTS closed"


def sql(d, text, args=()):
    db = sqlite3.connect(os.path.join(d.data_dir, "cfa.db"), timeout=30)
    try:
        rows = db.execute(text, args).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def rows_of(d, kind):
    return sql(d, "SELECT count(*) FROM events WHERE kind = ?", (kind,))[0][0]


def attempt(d, kind, make, present, what):
    """make() refused with the log closed, nothing of it present(), then
    made with it open: exactly one more row of kind."""
    n = rows_of(d, kind)
    sql(d, CLOSE)
    try:
        st = make()
    finally:
        sql(d, REOPEN)
    check(not 200 <= st < 300, "%s with the log closed is refused (got %d)" % (what, st))
    check(not present(), "%s with the log closed left nothing" % what)
    check(rows_of(d, kind) == n, "%s with the log closed: no %s row" % (what, kind))
    st = make()
    check(200 <= st < 300, "%s with the log open -> %d" % (what, st))
    check(present(), "%s with the log open took effect" % what)
    check(rows_of(d, kind) == n + 1, "%s: exactly one %s row" % (what, kind))


def last_event(c, kind):
    st, js, _, _ = c.req("GET", "/v1/events?limit=1000&kind=" + kind)
    return js["events"][-1] if st == 200 and js["events"] else {}


def sec_atomic(env):
    d = env.daemon("atomic").start()
    c = th.Client(d.port, th.ADMIN_KEY)
    try:
        run(d, c)
    finally:
        d.stop()


def run(d, c):
    def status(*a):
        return c.req(*a)[0]

    def product(name=None):
        st, js, _, _ = c.req("GET", "/v1/products/ev")
        return st == 200 and (name is None or js["name"] == name)

    attempt(d, "product.created", lambda: status("POST", "/v1/products", {"id": "ev"}),
            product, "POST /v1/products")
    attempt(d, "product.changed",
            lambda: status("PATCH", "/v1/products/ev", {"name": "renamed"}),
            lambda: product("renamed"), "PATCH /v1/products/ev")
    png, png2 = th.make_png(64, 64, seed=1), th.make_png(64, 64, seed=2)
    sha = th.sha256(png)

    def images():
        st, js, _, _ = c.req("GET", "/v1/products/ev/images")
        return {i["id"] for i in js["images"]} if st == 200 else set()

    def image_row_or_file():
        return sha in images() or th.image_file(d.data_dir, "ev", sha) is not None

    attempt(d, "image.added",
            lambda: status("POST", "/v1/products/ev/images", png, "image/png"),
            image_row_or_file, "POST an image")
    check(sha in images() and th.image_file(d.data_dir, "ev", sha) is not None,
          "the image's row and file")
    attempt(d, "image.removed",
            lambda: status("DELETE", "/v1/products/ev/images/" + sha),
            lambda: sha not in images(), "DELETE the image")
    # an ROI mask of the images' shape (64 x 64, left half inspected)
    mpng = imgconv.write_png((64, 64, 1, [bytes([255] * 32 + [0] * 32)] * 64))

    def mask():
        st, _, body, _ = c.req("GET", "/v1/products/ev/mask")
        return st == 200 and body == mpng

    attempt(d, "mask.set", lambda: status("PUT", "/v1/products/ev/mask", mpng, "image/png"),
            mask, "PUT the mask")
    last = last_event(c, "mask.set")
    check(last.get("after") == {"sha256": th.sha256(mpng), "width": 64, "height": 64} and
          last.get("key_id") is not None, "mask.set: after is the mask, with the key (%s)" % last)
    attempt(d, "mask.removed", lambda: status("DELETE", "/v1/products/ev/mask"),
            lambda: not mask(), "DELETE the mask")
    last = last_event(c, "mask.removed")
    check(last.get("before") == {"sha256": th.sha256(mpng), "width": 64, "height": 64} and
          last.get("after", 0) is None, "mask.removed: before is the mask (%s)" % last)
    made = {}

    def key_create():
        st, js, _, _ = c.req("POST", "/v1/keys", {"name": "line", "role": "inspect"})
        made["id"] = js.get("id") if st == 201 else None
        return st

    def keys(revoked):
        st, js, _, _ = c.req("GET", "/v1/keys")
        return [k for k in js["keys"] if k["name"] == "line" and
                (k["revoked_at"] is not None) == revoked]

    attempt(d, "key.created", key_create, lambda: len(keys(False)) == 1, "POST /v1/keys")
    attempt(d, "key.revoked", lambda: status("DELETE", "/v1/keys/" + made["id"]),
            lambda: len(keys(True)) == 1, "DELETE the key")
    # a training queued with the log closed: refused, no job (with the log
    # open it would train: that path is unit.store_events')
    c.req("POST", "/v1/products/ev/images", png, "image/png")
    c.req("POST", "/v1/products/ev/images", png2, "image/png")
    sql(d, CLOSE)
    try:
        st = status("POST", "/v1/products/ev/train", {"epochs": 1})
    finally:
        sql(d, REOPEN)
    st_jobs, js, _, _ = c.req("GET", "/v1/jobs?product=ev")
    check(not 200 <= st < 300 and st_jobs == 200 and js["jobs"] == [],
          "POST train with the log closed is refused and queues no job (got %d)" % st)
    attempt(d, "product.deleted", lambda: status("DELETE", "/v1/products/ev"),
            lambda: not product(), "DELETE /v1/products/ev")
    check(rows_of(d, "training.started") == 0, "no training.started row")


if __name__ == "__main__":
    sys.exit(th.run_sections({"atomic": sec_atomic}))
