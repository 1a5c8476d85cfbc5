#!/usr/bin/env python3
"""The build context of each Dockerfile under docker/, computed here without a
Docker engine, and what the Dockerfile needs from it.

For each Dockerfile the ignore file BuildKit uses is chosen as BuildKit does
(<Dockerfile>.dockerignore beside it if present, else .dockerignore at the
context root) and applied with Docker's rules (moby/patternmatcher, ported
below): patterns relative to the root, '*' and '?' within one path segment,
'**' across any number, a pattern that matches a directory excludes what is
under it, '!' re-includes, the last matching pattern wins. Checks:
  - host build folders (a CMakeCache.txt anywhere, build/, build-*/), .git,
    node_modules, the carried .debs (.deps/) and *.pt are outside the context,
    both as found on disk and for such paths that do not exist here;
  - every file git tracks is inside it (the image builds the tree);
  - every COPY/ADD source without --from exists in it;
  - the image (the last stage) is what issue 16 asks: multi-stage, the last
    stage copies nothing but named files from the context, runs as a non-root
    USER, has a HEALTHCHECK on /readyz and the OCI version/revision labels
    from build arguments.
Exit 1 with every problem listed."""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

# paths that must never enter the context, checked even when absent here
MUST_EXCLUDE = ["build/CMakeCache.txt", "build-asan/CMakeCache.txt", "build2/CMakeCache.txt",
                "build-gpu-check/CMakeCache.txt", ".git/HEAD", ".git/objects/ab/cdef",
                "tools/deploy-check/node_modules/yaml/package.json", "node_modules/x/index.js",
                ".deps/debs/libjansson4_2.14-2_amd64.deb", "var/cfa.db", "resnet50_imagenet.pt",
                "tests/integration/__pycache__/daemon_proc.cpython-311.pyc"]


def pattern_regex(pat):
    """moby/patternmatcher Pattern.compile, for '/' separators."""
    out, i = "^", 0
    while i < len(pat):
        ch = pat[i]
        if ch == "*":
            if i + 1 < len(pat) and pat[i + 1] == "*":
                i += 1
                if i + 1 < len(pat) and pat[i + 1] == "/":
                    i += 1
                out += ".*" if i + 1 >= len(pat) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".$":
            out += "\\" + ch
        elif ch == "\\":
            i += 1
            out += re.escape(pat[i]) if i < len(pat) else "\\\\"
        else:
            out += ch
        i += 1
    return re.compile(out + "$")


def parse_ignore(text):
    """[(regex, exclusion)] in file order, as moby/patternmatcher/ignorefile reads them."""
    rules = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        p = line.strip()
        if not p:
            continue
        neg = p.startswith("!")
        if neg:
            p = p[1:].strip()
        p = os.path.normpath(p).lstrip("/") if p not in ("/",) else "."
        p = p.replace(os.sep, "/")
        if p.startswith("../") or p == "..":
            continue
        rules.append((pattern_regex(p), neg))
    return rules


def excluded(path, rules):
    """MatchesOrParentMatches: the path or one of its parent folders matches;
    the last matching rule decides."""
    parts = path.split("/")
    parents = ["/".join(parts[:k]) for k in range(1, len(parts))]
    out = False
    for rx, neg in rules:
        if rx.match(path) or any(rx.match(p) for p in parents):
            out = not neg
    return out


def ignore_file_for(root, dockerfile):
    beside = dockerfile + ".dockerignore"
    if os.path.isfile(beside):
        return beside
    root_file = os.path.join(root, ".dockerignore")
    return root_file if os.path.isfile(root_file) else None


def disk_files(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in filenames:
            yield os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")


def instructions(text):
    """(keyword, argument text) per instruction, continuation lines joined."""
    logical, buf = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        logical.append(buf + s)
        buf = ""
    for ln in logical:
        kw, _, rest = ln.partition(" ")
        yield kw.upper(), rest.strip()


def copy_sources(args):
    """Sources of a COPY/ADD taken from the context, or [] for --from=."""
    if args.startswith("["):
        words = json.loads(args)
    else:
        words = shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from") for f in flags):
        return []
    return [w for w in words if not w.startswith("--")][:-1]


def check(root, dockerfile, tracked, problems):
    name = os.path.relpath(dockerfile, root)
    ign = ignore_file_for(root, dockerfile)
    rules = parse_ignore(open(ign).read()) if ign else []
    print("%s: ignore file %s (%d rules)" % (name, os.path.relpath(ign, root) if ign else "none",
                                              len(rules)))
    for p in MUST_EXCLUDE:
        if not excluded(p, rules):
            problems.append("%s: %s would be in the build context" % (name, p))
    context = [p for p in disk_files(root) if not excluded(p, rules)]
    for p in context:
        if p.endswith("CMakeCache.txt") or p.startswith(".git/") or "/node_modules/" in p:
            problems.append("%s: %s is in the build context" % (name, p))
    ctx = set(context)
    for p in tracked:
        if p not in ctx and os.path.exists(os.path.join(root, p)):
            problems.append("%s: tracked file %s is left out of the build context" % (name, p))
    check_runtime_stage(name, open(dockerfile).read(), problems)
    n_copy = 0
    for kw, args in instructions(open(dockerfile).read()):
        if kw not in ("COPY", "ADD"):
            continue
        for src in copy_sources(args):
            n_copy += 1
            s = os.path.normpath(src).lstrip("/")
            if s == ".":
                ok = bool(ctx)
            else:
                rx = pattern_regex(s)
                ok = any(rx.match(p) or p.startswith(s + "/") for p in ctx)
            if not ok:
                problems.append("%s: COPY source %s is not in the build context" % (name, src))
    print("%s: %d files in the context, %d COPY/ADD sources checked" % (name, len(ctx), n_copy))


# Docker's documented examples (docs.docker.com, "Build context", .dockerignore
# files) and moby/patternmatcher's tests: (ignore file, path, excluded?)
SELF_TEST = [
    ("*/temp*", "somedir/temporary.txt", True), ("*/temp*", "somedir/temp", True),
    ("*/temp*", "temp", False), ("*/temp*", "a/b/temp", False),
    ("*/*/temp*", "somedir/subdir/temporary.txt", True), ("temp?", "tempa", True),
    ("temp?", "tempab", False), ("**/*.go", "main.go", True), ("**/*.go", "a/b/c.go", True),
    ("build", "build/CMakeCache.txt", True), ("build", "src/build/x.c", False),
    ("/build", "build/x", True), ("build*", "build-asan/x", True), ("build*", "xbuild", False),
    ("*.md\n!README*.md\nREADME-secret.md", "README.md", False),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "docs/API.md", False),
    ("**/node_modules", "tools/x/node_modules/a/b.js", True), ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True), ("a/**", "a/x/y", True), ("a/**", "ab", False),
    ("file.?xt", "file.txt", True), ("file.?xt", "fileatxt", False),
]


def self_test():
    bad = []
    for ign, path, want in SELF_TEST:
        if excluded(path, parse_ignore(ign)) != want:
            bad.append("pattern %r on %s: excluded=%s, Docker says %s" % (ign, path, not want, want))
    return bad


def check_runtime_stage(name, text, problems):
    stages, cur = [], None
    for kw, args in instructions(text):
        if kw == "FROM":
            cur = []
            stages.append(cur)
        if cur is not None:
            cur.append((kw, args))
    if len(stages) < 2:
        problems.append("%s: one stage: the toolchain ends up in the image" % name)
    last = stages[-1] if stages else []
    users = [a for k, a in last if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("%s: the last stage runs as root (no USER, or USER root)" % name)
    checks = [a for k, a in last if k == "HEALTHCHECK"]
    if not checks or "/readyz" not in checks[-1]:
        problems.append("%s: no HEALTHCHECK on /readyz in the last stage" % name)
    labels = " ".join(a for k, a in last if k == "LABEL")
    args = {a.split("=")[0] for k, a in last if k == "ARG"}
    for key, arg in (("org.opencontainers.image.version", "VERSION"),
                     ("org.opencontainers.image.revision", "REVISION")):
        if not re.search(re.escape(key) + r'="?\$\{?' + arg, labels) or arg not in args:
            problems.append("%s: LABEL %s from ARG %s missing" % (name, key, arg))
    for k, a in last:
        if k in ("COPY", "ADD") and any(os.path.normpath(src) == "." for src in copy_sources(a)):
            problems.append("%s: the last stage copies the whole context" % name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="repository root (the build context)")
    ap.add_argument("dockerfiles", nargs="+")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    tracked = subprocess.run(["git", "-C", root, "ls-files", "-z"], check=True,
                             capture_output=True).stdout.decode().split("\0")
    tracked = [t for t in tracked if t]
    problems = self_test()
    print("ignore rules: %d of Docker's examples checked" % len(SELF_TEST))
    for d in a.dockerfiles:
        check(root, os.path.abspath(d), tracked, problems)
    for p in problems:
        print("FAIL " + p)
    if problems:
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
