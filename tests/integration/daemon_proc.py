"""Start and stop a cfa-server process for the integration tests (shared by
test_api.py and test_hardening.py). Standard library only."""
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
