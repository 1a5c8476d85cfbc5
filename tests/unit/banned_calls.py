#!/usr/bin/python3
"""Lint: the unsafe C calls banned by docs/STYLE.md (after libcurl) do not
appear in the sources of core/, server/ and api/, and no SQL statement is
built by formatting (SQL goes through bound parameters: no sqlite3_mprintf
family, no *printf whose format starts a SELECT/INSERT/UPDATE/DELETE).

    banned_calls.py [--root DIR] [--self-test]

Comments, string and character literals are blanked before matching, so a
comment that says "gets (" does not count. Exit 0 = clean, 1 = a banned call
was found (file:line printed), 2 = usage error.
"""
import argparse
import os
import re
import sys

BANNED = ("sprintf", "vsprintf", "strcpy", "strcat", "gets", "atoi", "atol", "atoll",
          "strtok")
CALL = re.compile(r"(?<![A-Za-z0-9_.>])(?:std::)?(%s)\s*\(" % "|".join(BANNED))
DIRS = ("core", "server", "api", "cmd")
SQL_FMT = re.compile(r"\b(?:sqlite3_v?mprintf|sqlite3_v?snprintf)\s*\(|"
                     r"\b\w*printf\s*\([^;]*?\"\s*(?:SELECT|INSERT|UPDATE|DELETE|REPLACE)\b",
                     re.S | re.I)
EXTS = (".c", ".h", ".cpp", ".hpp", ".cc")


def blank(src):
    """src with comments and literals replaced by spaces (newlines kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", src[i + 1:j - 1]) + c if j - i >= 2 else src[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def scan(text, name):
    hits = []
    for m in CALL.finditer(blank(text)):
        line = text.count("\n", 0, m.start()) + 1
        hits.append("%s:%d: banned call %s()" % (name, line, m.group(1)))
    for m in SQL_FMT.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        hits.append("%s:%d: SQL built by formatting; bind parameters instead" % (name, line))
    return hits


def self_test():
    bad = 'int f(char *d){ sprintf(d, "x"); return atoi(d) + strtok (d, ",") != 0; }'
    good = ('/* gets ( in a comment */ int g(char *d){ snprintf(d, 2, "strcpy(");'
            ' // atoi(x)\n return my_atoi(d) + s.gets(1) + strtoll(d, 0, 10); }')
    assert len(scan(bad, "bad")) == 3, scan(bad, "bad")
    assert scan(good, "good") == [], scan(good, "good")
    sql = 'snprintf(q, sizeof q, "SELECT * FROM t WHERE id = \'%s\'", id);'
    assert len(scan(sql, "sql")) == 1, scan(sql, "sql")
    assert len(scan('char *q = sqlite3_mprintf("x %q", id);', "m")) == 1
    print("self-test ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    self_test()
    hits, n = [], 0
    for d in DIRS:
        for root, _, files in os.walk(os.path.join(a.root, d)):
            for f in sorted(files):
                if f.endswith(EXTS):
                    p = os.path.join(root, f)
                    n += 1
                    hits += scan(open(p, encoding="utf-8", errors="replace").read(),
                                 os.path.relpath(p, a.root))
    for h in hits:
        print(h)
    print("%d file(s) scanned, %d banned call(s)" % (n, len(hits)))
    if n == 0:
        print("no sources found under %s" % a.root)
        return 2
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
