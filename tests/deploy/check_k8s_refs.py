#!/usr/bin/env python3
"""What deploy/k8s/ names in the daemon exists in it: the HPA's pods metrics
are metrics the daemon exports (server/ops/metrics_prom.c, '# TYPE name'),
the probe paths are routes the daemon answers, and every CFA_* variable the
ConfigMap, the Secret references and docker/cfa.env.example set is one that
`cfa-server --help` lists. Exit 1 with every problem listed."""
import argparse
import glob
import os
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--server", required=True, help="built cfa-server (for --help)")
    a = ap.parse_args()
    problems = []
    prom = open(os.path.join(a.root, "server/ops/metrics_prom.c")).read()
    exported = set(re.findall(r"# TYPE (cfa_[a-z_]+) ", prom))
    helptext = subprocess.run([a.server, "--help"], capture_output=True, text=True).stdout
    env_known = set(re.findall(r"\b(CFA_[A-Z0-9_]+)\b", helptext))
    if not exported or not env_known:
        problems.append("found no metrics (%d) or no CFA_* variables (%d)"
                        % (len(exported), len(env_known)))
    k8s = sorted(glob.glob(os.path.join(a.root, "deploy/k8s/**/*.yaml"), recursive=True))
    text = "\n".join(open(f).read() for f in k8s)
    hpa_metrics = re.findall(r"metric:\s*\n\s*name:\s*(\S+)", text)
    if not hpa_metrics:
        problems.append("no HPA metric found in deploy/k8s")
    for m in hpa_metrics:
        if m not in exported:
            problems.append("HPA metric %s is not exported by the daemon" % m)
    for path in set(re.findall(r"path:\s*(/[a-z]+)\s*$", text, re.M)):
        if path not in ("/healthz", "/readyz", "/metrics"):
            problems.append("probe path %s is not one the daemon answers without a key" % path)
    env_file = open(os.path.join(a.root, "docker/cfa.env.example")).read()
    names = set(re.findall(r"^\s*(CFA_[A-Z0-9_]+):", text, re.M))
    names |= set(re.findall(r"name:\s*(CFA_[A-Z0-9_]+)", text))
    names |= set(re.findall(r"^(CFA_[A-Z0-9_]+)=", env_file, re.M))
    names.discard("CFA_FOLLOW_KEY")  # the replicas' own, passed as --follow-key $(CFA_FOLLOW_KEY)
    for n in sorted(names - env_known):
        problems.append("%s is not a cfa-server variable" % n)
    print("metrics used: %s; variables checked: %d" % (", ".join(hpa_metrics), len(names)))
    for p in problems:
        print("FAIL " + p)
    return 1 if problems else 0

if __name__ == "__main__":
    sys.exit(main())
