#!/usr/bin/python3
"""Lint: the process has one log, one pair of clocks, one set of x-allocators
and one durable write, all in server/base; nothing reimplements them.

    base_helpers.py [--root DIR] [--self-test]

Rules (comments and string literals are blanked first, as in banned_calls.py):

  stderr  no direct write to stderr: fprintf/vfprintf(stderr, ...),
          fputs/fputc/putc/fwrite(..., stderr), dprintf(2, ...),
          write(STDERR_FILENO, ...), perror(), std::cerr. Messages go through
          the log (base_log.h), so that --log-level governs them and they
          carry time, level and module. Checked in core/, server/, api/, cmd/
          (the engine reports through cfa_log, which the daemon routes to the
          log); the log itself (server/base/log.c) is the one writer.
  clock   no clock_gettime() or gettimeofday() outside server/base: mono_ms,
          wall_ms, wall_deadline (base_clock.h).
  xalloc  no definition of xmalloc, xcalloc, xrealloc, xstrdup outside
          server/base (base_alloc.h).
  fsync   no fsync()/fdatasync() outside server/base: a durable write is
          file_write_durable (base_file.h).
  clock, xalloc and fsync are checked in server/, api/ and cmd/ (core/ is
  below server/base and cannot use it).

Two allowlists:
  PENDING  files still being switched to server/base, with the rules each
           still breaks. An entry the file no longer needs is an error too,
           so the list can only shrink.
  ALLOWED  (file, function, rule): places that may break a rule for good,
           with the reason (usage text printed before any log exists).

Exit 0 = clean, 1 = a violation or a stale PENDING entry (printed), 2 = no
sources found.
"""
import argparse
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from banned_calls import blank  # noqa: E402  (one literal/comment blanker)

# Owned by other helpers during the redesign (ISSUE: two xmalloc, five clocks,
# two durable writes, bare fprintf). Remove a rule once its file is switched.
PENDING = {
}

# Usage text goes to the terminal of whoever mistyped a flag, before (and
# instead of) starting anything: not a log message.
ALLOWED = {
    ("cmd/cfa/cli.c", "usage", "stderr"),
    # the CLI's own error for whoever ran the command, then exit 1: a
    # command-line tool answers in words, not in log lines
    ("cmd/cfa/cli.c", "die", "stderr"),
    ("server/ops/config.c", "cfg_usage", "stderr"),
    # a build-time generator (the OpenAPI settings schema), not the daemon:
    # its errors go to the build log
    ("api/gen_settings_schema.c", "merge", "stderr"),
    ("api/gen_settings_schema.c", "main", "stderr"),
}

ALL_DIRS = ("core", "server", "api", "cmd")
RULE_DIRS = {"stderr": ALL_DIRS, "clock": ("server", "api", "cmd"),
             "xalloc": ("server", "api", "cmd"), "fsync": ("server", "api", "cmd")}
EXEMPT = {"stderr": ("server/base/log.c",), "clock": ("server/base/",),
          "xalloc": ("server/base/",), "fsync": ("server/base/",)}
EXTS = (".c", ".h", ".cpp", ".hpp", ".cc")

_X = r"(?:xmalloc|xcalloc|xrealloc|xstrdup)"
RULES = {
    "stderr": (re.compile(
        r"\bv?fprintf\s*\(\s*stderr\b"
        r"|\b(?:fputs|fputc|putc|fwrite)\s*\([^;]*?,\s*stderr\s*\)"
        r"|\bv?dprintf\s*\(\s*(?:2|STDERR_FILENO)\s*,"
        r"|(?<![\w.>])write\s*\(\s*(?:2|STDERR_FILENO)\s*,"
        r"|\bperror\s*\(|\bstd::cerr\b"),
        "direct write to stderr: use log_debug/info/warn/error (base_log.h)"),
    "clock": (re.compile(r"\b(?:clock_gettime|gettimeofday)\s*\("),
              "own clock: use mono_ms, wall_ms or wall_deadline (base_clock.h)"),
    "xalloc": (re.compile(r"\b%s\s*\([^;{}()]*\)\s*\{|^[ \t]*#[ \t]*define[ \t]+%s\b" % (_X, _X),
                          re.M),
               "own x-allocator: include base_alloc.h"),
    "fsync": (re.compile(r"\b(?:fsync|fdatasync)\s*\("),
              "own durable write: use file_write_durable (base_file.h)"),
}
# a function definition's head at column 0: "static void usage(FILE *f) {"
FUNC_HEAD = re.compile(r"^[A-Za-z_][^;{}()\n=]*?\b(\w+)\s*\([^;{}]*\)\s*\{", re.M)


def scan(text, rel):
    """[(line, rule, function)] of the rules that apply to rel."""
    clean = blank(text)
    heads = [(m.start(), m.group(1)) for m in FUNC_HEAD.finditer(clean)]
    hits = []
    for rule, (rx, _) in RULES.items():
        if not rel.startswith(tuple(d + "/" for d in RULE_DIRS[rule])):
            continue
        if rel.startswith(EXEMPT[rule]):
            continue
        for m in rx.finditer(clean):
            fn = None
            for start, name in heads:
                if start > m.start():
                    break
                fn = name
            hits.append((clean.count("\n", 0, m.start()) + 1, rule, fn))
    return sorted(hits)


def check_tree(root, pending, allowed):
    """(problems, files scanned)."""
    problems, n, broken = [], 0, {}
    for d in ALL_DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in sorted(files):
                if not f.endswith(EXTS):
                    continue
                p = os.path.join(dirpath, f)
                rel = os.path.relpath(p, root).replace(os.sep, "/")
                n += 1
                with open(p, encoding="utf-8", errors="replace") as fh:
                    hits = scan(fh.read(), rel)
                for line, rule, fn in hits:
                    if (rel, fn, rule) in allowed:
                        continue
                    broken.setdefault(rel, set()).add(rule)
                    if rule not in pending.get(rel, ()):
                        problems.append("%s:%d: %s (in %s)" % (rel, line, RULES[rule][1],
                                                                fn or "file scope"))
    for rel, rules in sorted(pending.items()):
        for rule in sorted(rules - broken.get(rel, set())):
            problems.append("%s: PENDING lists '%s' but the file no longer needs it: "
                            "remove it from PENDING in %s" % (rel, rule, os.path.basename(__file__)))
    return problems, n


BAD = r'''
#include <stdio.h>
static void *xmalloc(size_t n) { return malloc(n); }
#define xstrdup(s) strdup(s)
int f(int fd) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fprintf(stderr, "x %d\n", fd);
    fputs("y", stderr);
    perror("open");
    write(STDERR_FILENO, "z", 1);
    return fsync(fd);
}
'''
GOOD = r'''
/* fprintf(stderr, "...") and clock_gettime( in a comment; fsync( too */
static void usage(FILE *f) { fprintf(f, "usage: x\n"); }
static void loud(void) { fprintf(stderr, "usage: y\n"); }
int g(char *buf, size_t n, void **p) {
    const char *s = "clock_gettime(CLOCK_REALTIME) fprintf(stderr";
    if ((*p = xmalloc(n)) != NULL) { snprintf(buf, n, "%s", s); }
    fprintf(stdout, "ok\n");
    log_error("t", "fsync(%d)", 3);
    return my_fsync_count + nwrite(2, 3);
}
'''


def self_test():
    hits = scan(BAD, "server/x/bad.c")
    rules = sorted(r for _, r, _ in hits)
    assert rules == ["clock", "fsync", "stderr", "stderr", "stderr", "stderr", "xalloc",
                     "xalloc"], hits
    assert scan(BAD, "server/base/clock.c") == [(8, "stderr", "f"), (9, "stderr", "f"),
                                                (10, "stderr", "f"), (11, "stderr", "f")]
    assert [r for _, r, _ in scan(BAD, "core/src/x.cpp")] == ["stderr"] * 4
    assert scan(BAD, "tests/unit/t.c") == []  # tests print freely
    assert scan(GOOD, "api/g.c") == [(4, "stderr", "loud")], scan(GOOD, "api/g.c")
    # the whole walk: a violation fails, an allowlisted one passes, a stale
    # PENDING entry fails
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "server", "x"))
        os.makedirs(os.path.join(root, "api"))
        open(os.path.join(root, "server", "x", "bad.c"), "w").write(BAD)
        open(os.path.join(root, "api", "g.c"), "w").write(GOOD)
        probs, n = check_tree(root, {}, set())
        assert n == 2 and len(probs) == 9, probs
        assert any(p.startswith("server/x/bad.c:7: own clock") for p in probs), probs
        allow = {("api/g.c", "loud", "stderr")}
        pend = {"server/x/bad.c": {"stderr", "clock", "xalloc", "fsync"}}
        assert check_tree(root, pend, allow) == ([], 2)
        pend["api/g.c"] = {"clock"}
        probs, _ = check_tree(root, pend, allow)
        assert len(probs) == 1 and "PENDING lists 'clock'" in probs[0], probs
    print("self-test ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    self_test()
    if a.self_test:
        return 0
    problems, n = check_tree(a.root, PENDING, ALLOWED)
    for p in problems:
        print(p)
    print("%d file(s) scanned, %d problem(s); %d file(s) pending" % (n, len(problems),
                                                                    len(PENDING)))
    if n == 0:
        print("no sources found under %s" % a.root)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
