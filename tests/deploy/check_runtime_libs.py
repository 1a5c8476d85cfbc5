#!/usr/bin/env python3
"""Static check of docker/runtime-packages.txt (the runtime image's packages):
every shared library the built binaries load (ldd) belongs to a Debian package
(dpkg's file lists, as dpkg -S) that those packages bring in, themselves or through their Depends /
Pre-Depends (read from /var/lib/dpkg/status; an alternative or a virtual
package counts when an installed package satisfies it). The same list is what
tools/check_runtime_chroot.sh installs and runs the daemon from, slowly; this
is the fast check for CI. Exit 1 naming each library no listed package brings."""
import argparse
import glob
import os
import re
import subprocess
import sys


def read_list(path):
    out = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def dpkg_status(path="/var/lib/dpkg/status"):
    """{package: [alternative groups]} of installed packages, {virtual: [providers]}."""
    deps, provides = {}, {}
    for stanza in open(path).read().split("\n\n"):
        f, key = {}, None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                f[key] += " " + line.strip()
            elif ":" in line:
                key, _, v = line.partition(":")
                f[key] = v.strip()
        if "installed" not in f.get("Status", "").split():
            continue
        name = f["Package"]
        groups = []
        for field in ("Pre-Depends", "Depends"):
            for g in filter(None, (x.strip() for x in f.get(field, "").split(","))):
                groups.append([re.split(r"[\s(:]", a.strip())[0] for a in g.split("|")])
        deps[name] = deps.get(name, []) + groups
        for p in filter(None, (x.strip() for x in f.get("Provides", "").split(","))):
            provides.setdefault(re.split(r"[\s(]", p)[0], []).append(name)
    return deps, provides


def closure(roots, deps, provides):
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for group in deps.get(p, []):
            for alt in group:
                todo.extend([alt] if alt in deps else provides.get(alt, []))
    return seen


def libs_of(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    return sorted(set(m.group(1) for m in re.finditer(r"=> (/\S+)", out)))


def file_owners(info="/var/lib/dpkg/info"):
    """{path: package} from dpkg's file lists (what `dpkg -S` reads, read once)."""
    owners = {}
    for f in glob.glob(os.path.join(info, "*.list")):
        pkg = os.path.basename(f)[:-5].split(":")[0]
        for line in open(f, errors="replace"):
            owners[line.rstrip("\n")] = pkg
    return owners


def package_of(lib, owners):
    for path in (lib, os.path.realpath(lib)):
        # merged /usr: /lib/x86_64-linux-gnu is /usr/lib/x86_64-linux-gnu
        alt = path[4:] if path.startswith("/usr/") else "/usr" + path
        for p in (path, alt):
            if p in owners:
                return owners[p]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", required=True, help="docker/runtime-packages.txt")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    roots = read_list(a.packages)
    deps, provides = dpkg_status()
    problems = [p + " (listed) is not installed here" for p in roots if p not in deps]
    have = closure(roots, deps, provides)
    owners = file_owners()
    n = 0
    for b in a.binaries:
        for lib in libs_of(b):
            n += 1
            pkg = package_of(lib, owners)
            if pkg is None:
                problems.append("%s: %s belongs to no Debian package" % (b, lib))
            elif pkg.split(":")[0] not in have:
                problems.append("%s: %s (package %s) is not brought in by %s"
                                % (b, lib, pkg, a.packages))
    print("%d packages listed, %d with their dependencies; %d libraries checked"
          % (len(roots), len(have), n))
    for p in problems:
        print("FAIL " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
