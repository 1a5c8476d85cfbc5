#!/usr/bin/python3
"""/metrics as a plant's Prometheus reads it (docs/API.md, GET /metrics).

  metrics  two products (one trained and inspected, one without a model);
           the exposition is parsed by Prometheus' own text parser
           (python3-prometheus-client) and by a strict reader here: every
           family has HELP and TYPE before its samples, no series twice,
           histogram buckets cumulative with +Inf == _count. Then the figures
           against what the test did and what /proc says:
           cfa_inspections_total{product,decision} = the decisions answered,
           cfa_inspection_score{product} buckets/sum/count = the scores
           answered, cfa_model_active_version per product,
           cfa_training_duration_seconds_count = jobs finished,
           cfa_drift_statistic/flag per product, cfa_build_info{version,
           commit} with /v1/info's version, process_resident_memory_bytes,
           process_open_fds and process_cpu_seconds_total close to
           /proc/PID of the daemon.

usage: test_metrics.py --server build/cfa-server --backbone X.pt --data DIR
"""
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_hardening as th  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

check = th.check
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                  r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? '
                  r'([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))$')
SUFFIXES = ("_bucket", "_sum", "_count")


def strict(text):
    """Checks the exposition line by line; {(name, labels tuple): value}."""
    helps, types, seen, bad = set(), {}, {}, []
    for line in text.split("\n"):
        if not line:
            continue
        m = re.match(r"^# (HELP|TYPE) (\S+) (.+)$", line)
        if m:
            (helps.add(m.group(2)) if m.group(1) == "HELP" else types.__setitem__(m.group(2),
                                                                             m.group(3)))
            continue
        m = LINE.match(line)
        if not m:
            bad.append(line)
            continue
        name = m.group(1)
        fam = next((name[:-len(s)] for s in SUFFIXES
                    if name.endswith(s) and types.get(name[:-len(s)]) == "histogram"), name)
        if fam not in helps or fam not in types:
            bad.append("no HELP/TYPE before " + line)
        labels = tuple(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if (name, labels) in seen:
            bad.append("twice: " + line)
        seen[(name, labels)] = float(m.group(3).replace("Inf", "inf"))
    check(not bad, "strict reading: every line well formed, HELP/TYPE first, no series twice "
          "(%s)" % bad[:3])
    for (name, labels), v in seen.items():
        if name.endswith("_count") and types.get(name[:-6]) == "histogram":
            base = name[:-6]
            rest = [x for x in labels if x[0] != "le"]
            bs = sorted(((float(dict(lb)["le"].replace("+Inf", "inf")), bv)
                         for (n, lb), bv in seen.items() if n == base + "_bucket"
                         and [x for x in lb if x[0] != "le"] == rest))
            ok = bs and bs[-1][0] == math.inf and bs[-1][1] == v and \
                all(bs[i][1] <= bs[i + 1][1] for i in range(len(bs) - 1))
            check(ok, "histogram %s%s: cumulative buckets, +Inf = count %g" % (base, rest, v))
    return seen, types


def val(samples, name, **labels):
    for (n, lb), v in samples.items():
        if n == name and dict(lb) == {k: str(x) for k, x in labels.items()}:
            return v
    return None


def proc(pid):
    st = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        st[k] = v.split()
    stat = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return int(st["VmRSS"][0]) * 1024, len(os.listdir("/proc/%d/fd" % pid)), cpu


def sec_metrics(env):
    d = env.daemon("metrics").start()
    c = th.Client(d.port, th.ADMIN_KEY)
    th.make_product(c, "m1", env.train[:12])
    th.train(c, "m1")
    st, _, _, _ = c.req("POST", "/v1/products", {"id": "m2"})
    answers = []
    for x in env.test[:8]:
        st, js, _, _ = c.req("POST", "/v1/products/m1/inspect?store=false", x, "image/png")
        if check(st == 200, "inspect (%d)" % st):
            answers.append(js)
    st, _, body, hdrs = c.req("GET", "/metrics", key=None)
    text = body.decode()
    check(st == 200 and hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"),
          "GET /metrics -> 200 text/plain 0.0.4")
    try:
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        check(True, "Prometheus' parser reads the whole exposition (%d families)" % len(fams))
        undoc = [n for n, f in fams.items() if not f.documentation or f.type == "unknown"]
        check(not undoc, "every family has HELP and TYPE (%s)" % undoc)
    except Exception as e:  # the parser's own error names the line
        check(False, "Prometheus' parser reads the exposition (%s)" % e)
    s, types = strict(text)
    for dec in ("OK", "NG"):
        want = sum(a["decision"] == dec for a in answers)
        got = val(s, "cfa_inspections_total", product="m1", decision=dec)
        check(got == want, "cfa_inspections_total{m1,%s} = %d (got %s)" % (dec, want, got))
    scores = [a["score"] for a in answers]
    check(val(s, "cfa_inspection_score_count", product="m1") == len(scores)
          and abs(val(s, "cfa_inspection_score_sum", product="m1") - sum(scores)) < 1e-3,
          "score histogram count and sum are the answers' (%d, %.4f)" % (len(scores), sum(scores)))
    buckets = [(dict(lb)["le"], v) for (n, lb), v in s.items()
               if n == "cfa_inspection_score_bucket" and dict(lb)["product"] == "m1"]
    wrong = [(le, v) for le, v in buckets if le != "+Inf"
             and v != sum(x <= float(le) for x in scores)]
    check(len(buckets) > 2 and not wrong, "each score bucket counts the scores at or below it "
          "(%s)" % wrong[:3])
    check(types.get("cfa_inspection_score") == "histogram"
          and types.get("cfa_inspections_total") == "counter", "types of the new families")
    check(val(s, "cfa_model_active_version", product="m1") == 1
          and val(s, "cfa_model_active_version", product="m2") == 0,
          "cfa_model_active_version: m1 1, m2 0")
    check(val(s, "cfa_training_duration_seconds_count") == 1
          and val(s, "cfa_training_duration_seconds_sum") > 0, "one training job in the "
          "duration histogram")
    check(val(s, "cfa_drift_flag", product="m1") in (0, 1)
          and val(s, "cfa_drift_flag", product="m2") == 0, "a drift flag per product")
    _, info, _, _ = c.req("GET", "/v1/info")
    bi = [dict(lb) for (n, lb), v in s.items() if n == "cfa_build_info" and v == 1]
    check(len(bi) == 1 and bi[0].get("version") == info["version"]
          and re.match(r"^([0-9a-f]{7,40}|unknown)$", bi[0].get("commit", "")),
          "cfa_build_info{version=%s, commit} (%s)" % (info["version"], bi))
    rss, fds, cpu = proc(d.proc.pid)
    m_rss = val(s, "process_resident_memory_bytes")
    m_fds = val(s, "process_open_fds")
    m_cpu = val(s, "process_cpu_seconds_total")
    th.note("process: rss %.0f MB (proc %.0f), fds %s (proc %d), cpu %.1f s (proc %.1f)"
            % ((m_rss or 0) / 1e6, rss / 1e6, m_fds, fds, m_cpu or 0, cpu))
    check(m_rss is not None and 0.7 * rss <= m_rss <= 1.3 * rss,
          "process_resident_memory_bytes near /proc's VmRSS")
    check(m_fds is not None and abs(m_fds - fds) <= 8, "process_open_fds near /proc's count")
    check(m_cpu is not None and 0 < m_cpu <= cpu + 0.01, "process_cpu_seconds_total > 0, at "
          "most /proc's later reading")
    d.stop()


if __name__ == "__main__":
    sys.exit(th.run_sections({"metrics": sec_metrics}))
