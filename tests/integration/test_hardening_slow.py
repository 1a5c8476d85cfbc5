#!/usr/bin/python3
"""Slow clients must not take every connection (docs/RELIABILITY.md, "Slow
clients"). Each section starts the real daemon on 127.0.0.1 port 0 with its
own data directory:

  header   a header trickled at 1 byte/s is closed at --header-timeout, although
           every byte restarts --request-timeout
  body     a body trickled at 1 kB/s is cut at --body-timeout + size /
           --body-min-rate while a normal request is served; a body that needs
           longer than the floor but keeps the rate is served
  per_ip   --max-connections-per-ip N: the N+1th connection from one address is
           refused, another address is served
  probes   --max-connections 8 filled by slow unauthenticated sockets (headers
           never finished, or bodies never finished): /healthz and /readyz
           answer 200

usage: test_hardening_slow.py --server build/cfa-server --backbone X.pt --data DIR
                              --only header,body [--keep]
Python 3 standard library only; helpers from test_hardening.py. Exit 0 = pass.
"""
import http.client
import os
import re
import select
import socket
import sys
import threading
import time

import test_hardening as th
from test_hardening import ADMIN_KEY, Client, check

# generous bounds: the sanitizer builds on a loaded machine are slow, and a
# daemon that does not enforce the deadline keeps the socket for all of it
GIVE_UP_S = 30


def closed_by_peer(s):
    """True once the daemon has closed s (EOF or reset); data is read away."""
    try:
        while select.select([s], [], [], 0)[0]:
            if not s.recv(65536):
                return True
    except OSError:
        return True
    return False


def trickle(s, data, step, pause):
    """Sends data in pieces of step bytes every pause s until the daemon closes
    s or GIVE_UP_S pass. Returns (seconds until closed or None, bytes sent)."""
    t0, sent = time.time(), 0
    while time.time() - t0 < GIVE_UP_S and sent < len(data):
        try:
            s.sendall(data[sent:sent + step])
        except OSError:
            return time.time() - t0, sent
        sent += step
        if sent >= len(data):
            break  # what follows is the reply, for the caller to read
        end = time.time() + pause
        while time.time() < end:
            if closed_by_peer(s):
                return time.time() - t0, sent
            time.sleep(0.05)
    return None, sent


def raw_status(port, path, src=None, key=None, sock=None, timeout=20):
    """Status of GET path on a new (or the given) keep-alive connection, with
    the headers' text; (None, "") when the connection is refused or closed."""
    try:
        s = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(src, 0) if src else None)
        s.settimeout(timeout)
        auth = "Authorization: Bearer %s\r\n" % key if key else ""
        # a one-off connection asks to be closed, so the daemon does not
        # count it a moment longer while the next one is tried
        close = "Connection: close\r\n" if sock is None else ""
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s%s\r\n" % (path, auth, close)).encode())
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                return None, ""
            got += chunk
    except OSError:
        return None, ""
    head = got.split(b"\r\n\r\n")[0].decode("latin-1")
    m = re.match(r"HTTP/1\.1 (\d+)", head)
    if sock is None:
        s.close()
    return (int(m.group(1)) if m else None), head


def closed_count(port, reason):
    try:
        st, _, body, _ = Client(port).req("GET", "/metrics", timeout=30)
    except (OSError, http.client.HTTPException) as e:
        st, body = str(e), b""
    m = re.search(r'^cfa_connections_closed_total\{reason="%s"\} (\d+)$' % reason,
                  body.decode(), re.M)
    if st != 200 or not m:
        print("  (GET /metrics: %s)" % st, flush=True)
    return int(m.group(1)) if st == 200 and m else -1


# ------------------------------------------------------------------- header
def sec_header(env):
    d = env.daemon("header", ["--header-timeout", "3", "--request-timeout", "30"]).start()
    s = socket.create_connection(("127.0.0.1", d.port))
    pad = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
    waited, sent = trickle(s, pad, 1, 1.0)
    s.close()
    check(waited is not None and 2.5 <= waited,
          "a header sent at 1 byte/s is closed at --header-timeout 3 (after %s s, %d bytes)"
          % ("%.1f" % waited if waited else "never in %d" % GIVE_UP_S, sent))
    check(closed_count(d.port, "header_timeout") >= 1,
          "cfa_connections_closed_total{reason=\"header_timeout\"} counts it")
    th.serves(Client(d.port, ADMIN_KEY), "a header deadline")
    check(d.stop() == 0, "SIGTERM -> exit 0")


# --------------------------------------------------------------------- body
def sec_body(env):
    d = env.daemon("body", ["--body-timeout", "3", "--body-min-rate", "64",
                            "--request-timeout", "30"]).start()
    c = Client(d.port, ADMIN_KEY)
    c.req("POST", "/v1/products", {"id": "slow"})
    served = []

    def fast_request():
        time.sleep(1.5)
        served.append(c.req("GET", "/v1/products", timeout=60)[0])

    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(("POST /v1/products/slow/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
               "\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
               % ADMIN_KEY).encode())
    t = threading.Thread(target=fast_request)
    t.start()
    # 500 bytes every 0.5 s: each piece restarts --request-timeout, the
    # deadline is 3 s + 100000 B / 64 kB/s = 4.6 s
    waited, sent = trickle(s, b"x" * 100000, 500, 0.5)
    t.join()
    s.close()
    check(waited is not None and 4.0 <= waited,
          "a 100 kB body sent at 1 kB/s is cut at 3 s + 100 kB / 64 kB/s (after %s s, %d bytes)"
          % ("%.1f" % waited if waited else "never in %d" % GIVE_UP_S, sent))
    check(served == [200], "a normal request on another connection is served meanwhile (%s)"
          % served)
    check(closed_count(d.port, "body_timeout") >= 1,
          "cfa_connections_closed_total{reason=\"body_timeout\"} counts it")

    # 400 kB at about 100 kB/s: 4 s, longer than the 3 s floor, within 3 + 6.25 s
    s = socket.create_connection(("127.0.0.1", d.port))
    s.sendall(("POST /v1/products/slow/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
               "\r\nContent-Type: image/png\r\nContent-Length: 400000\r\nConnection: close"
               "\r\n\r\n" % ADMIN_KEY).encode())
    waited, sent = trickle(s, os.urandom(400000), 10000, 0.1)
    s.settimeout(60)
    try:
        reply = s.recv(100)
    except OSError:
        reply = b""
    s.close()
    check(waited is None and sent == 400000 and reply.startswith(b"HTTP/1.1 4"),
          "a 400 kB body at 100 kB/s (longer than the floor, faster than the minimum rate) "
          "is read whole and answered (%r)" % reply[:12])
    th.serves(c, "a body deadline")
    check(d.stop() == 0, "SIGTERM -> exit 0")


# ------------------------------------------------------------------- per_ip
def sec_per_ip(env):
    d = env.daemon("per_ip", ["--max-connections-per-ip", "4"]).start()
    st, js, _, _ = Client(d.port, ADMIN_KEY).req("GET", "/v1/info")
    check(st == 200 and js["limits"].get("max_connections_per_ip") == 4 and
          js["limits"].get("header_timeout_s") == 10, "GET /v1/info lists the slow-client limits")
    # each completes a keep-alive request first, so the daemon surely holds all
    # 4; one refused is tried again: on a loaded machine the daemon may not yet
    # have let go of the /v1/info connection above
    held, tries = [], 0
    while len(held) < 4 and tries < 50:
        tries += 1
        s = socket.create_connection(("127.0.0.1", d.port))
        st, _ = raw_status(d.port, "/healthz", sock=s)
        if st == 200:
            held.append(s)
        else:
            s.close()
            time.sleep(0.2)
    check(len(held) == 4, "4 connections from 127.0.0.1 are served (%d tries)" % tries)
    st, _ = raw_status(d.port, "/healthz")
    check(st is None, "a 5th connection from 127.0.0.1 over --max-connections-per-ip 4 is "
          "refused (%s)" % st)
    st, _ = raw_status(d.port, "/v1/products", src="127.0.0.2", key=ADMIN_KEY)
    check(st == 200, "a request from another address (127.0.0.2) is served (%s)" % st)
    held.pop().close()
    time.sleep(0.5)
    st, _ = raw_status(d.port, "/v1/products", key=ADMIN_KEY)
    check(st == 200, "127.0.0.1 is served again once one of its connections closed (%s)" % st)
    for s in held:
        s.close()
    check(d.stop() == 0, "SIGTERM -> exit 0")


# ------------------------------------------------------------------- probes
def probes_answer(d, what):
    for path in ("/healthz", "/readyz"):
        time.sleep(0.3)  # the previous one-off connection is gone
        st, _ = raw_status(d.port, path)
        check(st == 200, "%s answers 200 while %s (%s)" % (path, what, st))


def sec_probes(env):
    # deadlines far away: here only the probe slots may free a connection
    d = env.daemon("probes", ["--max-connections", "8", "--header-timeout", "120",
                              "--body-timeout", "120", "--request-timeout", "120"]).start()
    # 12 unauthenticated sockets that never finish their header: more than
    # the 8 + 2 kept for probes, so the accept itself must make room
    slow = []
    for _ in range(12):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"GET /v1/products HTTP/1.1\r\nHost: x\r\nX-Pad: a")
        slow.append(s)
    time.sleep(2)  # the listener accepts them all (on main the 9th on are refused)
    probes_answer(d, "12 sockets never finish their header (--max-connections 8)")
    st, _ = raw_status(d.port, "/v1/products", key=ADMIN_KEY)
    check(st == 200, "an ordinary request is served too: the longest-waiting header "
          "made room (%s)" % st)
    # at least the 9th and 10th (MHD takes 8 + 2): under load the 11th and
    # 12th may be refused at accept before the reaper made room, not evicted
    check(closed_count(d.port, "evicted") >= 2, "cfa_connections_closed_total"
          "{reason=\"evicted\"} counts the connections that made room")
    for s in slow:
        s.close()
    time.sleep(1)

    # 8 unauthenticated sockets whose headers are in and whose bodies never
    # come: nothing waits for a header, so only the probe slots are left
    slow = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"POST /v1/products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: 1000000\r\n\r\n[")
        slow.append(s)
    time.sleep(2)
    probes_answer(d, "8 sockets never finish their body (--max-connections 8)")
    time.sleep(0.3)
    st, head = raw_status(d.port, "/v1/products", key=ADMIN_KEY)
    check(st == 503 and re.search(r"(?im)^connection: close", head) is not None and
          re.search(r"(?im)^retry-after:", head) is not None,
          "an ordinary request over --max-connections gets 503, Retry-After and "
          "Connection: close instead of holding a probe slot (%s)" % st)
    for s in slow:
        s.close()
    time.sleep(1)
    th.serves(Client(d.port, ADMIN_KEY), "the connection limit was filled")
    check(d.stop() == 0, "SIGTERM -> exit 0")


SECTIONS = {"header": sec_header, "body": sec_body, "per_ip": sec_per_ip,
            "probes": sec_probes}


if __name__ == "__main__":
    sys.exit(th.run_sections(SECTIONS))
