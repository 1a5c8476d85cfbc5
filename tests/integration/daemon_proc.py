"""Start and stop a cfa-server process, and talk to it, for the integration tests
(shared by test_api.py and test_hardening.py). Standard library only."""
import http.client
import json
import signal
import subprocess
import time


def spawn(args, env, log_path, timeout=180):
    """Start the daemon with stdout piped and stderr appended to log_path; wait for
    its `listening on HOST:PORT` line. Returns (proc, port, log file) or raises
    RuntimeError with the last line read."""
    log = open(log_path, "a")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    deadline = time.time() + timeout
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("listening on "):
            return proc, int(line.strip().rsplit(":", 1)[1]), log
    proc.kill()
    proc.wait()
    log.close()
    raise RuntimeError("daemon did not start: %r (see %s)" % (line, log_path))


def stop(proc, log, sig=signal.SIGTERM, timeout=120):
    """Send sig and wait; kill after timeout. Returns the exit code, or None
    when it had to be killed."""
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    log.close()
    return rc


class Client:
    """One HTTP(S) request per connection to 127.0.0.1:port. req() returns
    (status, json or None, body bytes, headers with lower-case names)."""
    timeout = 300

    def __init__(self, port, key=None, tls=None, source=None):
        # source: the local address to connect from (any of 127.0.0.0/8), so
        # that a test can stand for clients on several hosts
        self.port, self.key, self.tls = port, key, tls
        self.source = (source, 0) if source else None

    def req(self, method, path, body=None, ctype=None, key="default", headers=None,
            timeout=None):
        h = dict(headers or {})
        k = self.key if key == "default" else key
        if k is not None:
            h["Authorization"] = "Bearer " + k
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            ctype = ctype or "application/json"
        if ctype:
            h["Content-Type"] = ctype
        timeout = self.timeout if timeout is None else timeout
        if self.tls is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.tls, source_address=self.source)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                              source_address=self.source)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            status = r.status
        finally:
            conn.close()
        js = None
        if hdrs.get("content-type", "").startswith("application/json"):
            js = json.loads(data)
        return status, js, data, hdrs
