#!/usr/bin/python3
"""Durability of answered inspections (docs/RELIABILITY.md, "No answered
inspection lost").

  kill   inspections answered 200 (one at a time, then several clients at
         once so that commits carry several rows), SIGKILL right after the
         last answer, restart: every answered id has its audit record and its
         heatmap.png
  disk   the data directory on a small tmpfs, filled up: inspections answer
         507 storage_full (never 200), /readyz 503 naming the full disk; after
         space is freed both recover; SIGTERM logs no lost rows; every 200 is
         in the audit trail after restart; start-up on the full disk (existing
         and fresh data directory) fails naming "No space left on device"

usage: test_hardening_durability.py --server build/cfa-server --backbone X.pt
                                    --data DIR --only kill,disk [--keep]
The disk section needs root (mount -t tmpfs); without it it exits 77 (skip).
"""
import errno
import os
import shutil
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hardening as th  # noqa: E402  (Daemon, Env, Client, check, ...)

check, note, fatal = th.check, th.note, th.fatal
ADMIN_KEY = th.ADMIN_KEY


def inspect(c, env, i, query=""):
    st, js, _, _ = c.req("POST", "/v1/products/tile/inspect" + query,
                         env.test[i % len(env.test)], "image/png", timeout=120)
    return st, js


def audit_ids(c):
    st, js, _, _ = c.req("GET", "/v1/inspections?limit=1000")
    check(st == 200, "list the audit trail (%d)" % st)
    return {i["inspection_id"] for i in js.get("inspections", [])} if st == 200 else set()


def check_answered(c, ids, what):
    """Every id answered 200 has its record and its heatmap after restart."""
    have = audit_ids(c)
    lost = [i for i in ids if i not in have]
    no_png = []
    for i in ids:
        st, _, body, _ = c.req("GET", "/v1/inspections/%s/heatmap.png" % i, timeout=120)
        if st != 200 or body[:4] != b"\x89PNG":
            no_png.append((i, st))
    check(ids and not lost, "%s: all %d answered inspections are in the audit trail "
          "(lost %d)" % (what, len(ids), len(lost)))
    check(ids and not no_png, "%s: every answered inspection has its heatmap.png "
          "(missing %s)" % (what, no_png[:3]))
    return len(lost), len(no_png)


# ------------------------------------------------------------------- kill
def sec_kill(env):
    d = env.daemon("kill").start()
    c = th.Client(d.port, ADMIN_KEY)
    th.make_product(c, "tile", env.train)
    th.train(c, "tile")
    ok = []
    for i in range(2):
        st, js = inspect(c, env, i)
        if check(st == 200, "inspection %d -> 200 (%d)" % (i, st)):
            ok.append(js["inspection_id"])
    lock = threading.Lock()

    def client(seed):
        cl = th.Client(d.port, ADMIN_KEY)
        for k in range(2):
            st, js = inspect(cl, env, seed * 2 + k)
            if st == 200:
                with lock:
                    ok.append(js["inspection_id"])

    ths = [threading.Thread(target=client, args=(s,)) for s in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    d.kill()  # right after the last answer: nothing had time to catch up
    check(len(ok) == 10, "10 inspections answered 200 before SIGKILL (%d)" % len(ok))
    d.start()
    c = th.Client(d.port, ADMIN_KEY)
    lost, no_png = check_answered(c, ok, "after SIGKILL")
    note("kill: %d inspections answered 200 (2 alone, 8 from 4 clients at once), SIGKILL at "
         "once: %d records and %d heatmaps missing after restart" % (len(ok), lost, no_png))
    check(d.stop() == 0, "SIGTERM -> exit 0")


# ------------------------------------------------------------------- disk
def fill(path):
    """Writes path until the file system is full; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        block = b"\0" * (1 << 16)
        try:
            while True:
                n += f.write(block)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        # the last pages: smaller writes until not one byte fits
        for size in (4096, 512, 1):
            try:
                while True:
                    n += f.write(b"\0" * size)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
    return n


def readyz(c):
    st, js, _, _ = c.req("GET", "/readyz", key=None, timeout=60)
    msg = (js or {}).get("error", {}).get("message", "") if st != 200 else ""
    return st, msg


def start_fails(env, data_dir, log, what):
    """Start-up on a full disk: exits non-zero, naming the full disk."""
    args = [env.a.server, "--listen", "127.0.0.1:0", "--data-dir", data_dir,
            "--backbone", env.a.backbone]
    envv = dict(os.environ, CFA_ADMIN_KEY=ADMIN_KEY)
    with open(log, "w") as f:
        try:
            p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=f, env=envv, timeout=120)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = None
    text = open(log).read()
    named = "no space left on device" in text.lower()
    check(rc not in (0, None) and named,
          "start-up on a full disk (%s) fails naming it (rc %s): %s" %
          (what, rc, [l for l in text.splitlines() if "store" in l][-1:] or text[-300:]))


def sec_disk(env):
    if os.geteuid() != 0:
        print("SKIP: the disk section mounts a tmpfs (needs root)")
        sys.exit(77)
    base = os.path.join(env.tmp, "disk")
    data_dir = os.path.join(base, "var")
    os.makedirs(data_dir)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0750", "tmpfs", data_dir],
                   check=True)
    try:
        disk_full(env, base, data_dir)
    finally:
        subprocess.run(["umount", "-l", data_dir])


def disk_full(env, base, data_dir):
    d = th.Daemon(env.a, data_dir, os.path.join(base, "server.log")).start()
    c = th.Client(d.port, ADMIN_KEY)
    th.make_product(c, "tile", env.train)
    th.train(c, "tile")
    ok = []
    st, js = inspect(c, env, 0)
    if check(st == 200, "inspection before the disk fills -> 200 (%d)" % st):
        ok.append(js["inspection_id"])
    filler = os.path.join(data_dir, "filler")
    filled = fill(filler)
    note("disk: tmpfs of 96 MiB, filled with %.1f MiB" % (filled / 2**20))
    answers = []
    for i, q in enumerate(["", "?heatmap=inline", ""]):
        st, js = inspect(c, env, i + 1, q)
        answers.append((st, (js or {}).get("error", {}).get("code")))
        if st == 200:
            ok.append(js["inspection_id"])
    check(all(a == (507, "storage_full") for a in answers),
          "full disk: inspections that keep their files answer 507 storage_full, none 200 "
          "(%s)" % answers)
    # the row alone may still fit into the WAL's pages: then its 200 must
    # hold like any other (checked after the restart below)
    st, js = inspect(c, env, 4, "?store=false")
    check(st in (200, 507), "full disk, ?store=false: 200 (row committed) or 507 (%d)" % st)
    if st == 200:
        ok.append(js["inspection_id"])
    note("disk: ?store=false on the full disk answered %d" % st)
    st, msg = readyz(c)
    check(st == 503 and "full" in msg, "full disk: /readyz 503 naming it (%d %r)" % (st, msg))
    os.unlink(filler)
    st, msg = readyz(c)
    check(st == 200, "space freed: /readyz 200 again (%d %r)" % (st, msg))
    for i in range(3):
        st, js = inspect(c, env, i + 5)
        if check(st == 200, "space freed: inspection -> 200 (%d)" % st):
            ok.append(js["inspection_id"])
    st, msg = readyz(c)
    check(st == 200, "after the inspections: /readyz 200 (%d %r)" % (st, msg))
    # full again, then a normal stop: nothing acknowledged may be reported lost
    fill(filler)
    st, _ = inspect(c, env, 9)
    check(st == 507, "full again: 507 (%d)" % st)
    check(d.stop() == 0, "SIGTERM on a full disk -> exit 0")
    log = open(d.log_path).read()
    check("could not be written" not in log and "flush failed" not in log,
          "SIGTERM logs no lost rows")
    fill(filler + "2")  # the clean stop removed the WAL: fill what it freed
    start_fails(env, data_dir, os.path.join(base, "start-full.log"), "existing data")
    fresh = os.path.join(data_dir, "fresh")
    os.mkdir(fresh)
    start_fails(env, fresh, os.path.join(base, "start-fresh.log"), "fresh data directory")
    os.unlink(filler)
    os.unlink(filler + "2")
    shutil.rmtree(fresh)
    d.start()
    c = th.Client(d.port, ADMIN_KEY)
    have = audit_ids(c)
    lost = [i for i in ok if i not in have]
    check(len(ok) >= 4 and not lost, "every 200 (%d) is in the audit trail after restart "
          "(lost %d)" % (len(ok), len(lost)))
    check(d.stop() == 0, "SIGTERM -> exit 0")


SECTIONS = {"kill": sec_kill, "disk": sec_disk}


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(th.run_sections(SECTIONS, log_name=lambda f: f.endswith(".log")))
