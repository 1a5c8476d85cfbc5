#!/usr/bin/python3
"""Helpers of run_bench.sh (Python 3 standard library only).

  bench_lib.py setup --port P --admin-key K --data DIR [--images N] [--epochs E]
                     [--gamma-c C] [--gamma-d D] [--product ID]
      Through the HTTP API of docs/API.md (127.0.0.1 only): creates the
      product, uploads the first N images of DIR/train/good, trains, waits
      for the job, creates an inspect key. Prints one JSON line:
      {"product", "inspect_key", "job", "train_wall_s", "upload_s"}.

  bench_lib.py report --dir OUT [--md FILE] [--command TEXT]
      Reads OUT/*.json (model.json, http_c*.json, train.json, server.json,
      machine.json) and prints the summary: in-process throughput, HTTP
      throughput and latency, the ratio HTTP / in-process at the same batch
      policy, training time, peak RSS. With --md also writes it as Markdown
      (the format of docs/BENCHMARKS.md).
"""
import argparse
import glob
import http.client
import json
import os
import sys
import time


# ---------------------------------------------------------------- setup
def req(port, method, path, key, body=None, ctype=None, timeout=600):
    h = {"Authorization": "Bearer " + key}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        ctype = "application/json"
    if ctype:
        h["Content-Type"] = ctype
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        js = None
        if r.getheader("Content-Type", "").startswith("application/json") and data:
            js = json.loads(data)
        return r.status, js
    finally:
        c.close()


def must(resp, ok, what):
    st, js = resp
    if st not in ok:
        sys.exit("bench_lib: %s: HTTP %d %s" % (what, st, json.dumps(js)[:400]))
    return js


def setup(a):
    good = os.path.join(a.data, "train", "good")
    files = sorted(f for f in os.listdir(good)
                   if f.lower().endswith((".png", ".jpg", ".jpeg")))[: a.images]
    if not files:
        sys.exit("bench_lib: no images in " + good)
    must(req(a.port, "POST", "/v1/products", a.admin_key,
             {"id": a.product, "name": "benchmark product"}), (201,), "create product")
    t0 = time.time()
    for f in files:
        with open(os.path.join(good, f), "rb") as fh:
            data = fh.read()
        ctype = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        must(req(a.port, "POST", "/v1/products/%s/images" % a.product, a.admin_key, data,
                 ctype), (200, 201), "upload " + f)
    upload_s = time.time() - t0
    t0 = time.time()
    js = must(req(a.port, "POST", "/v1/products/%s/train" % a.product, a.admin_key,
                  {"epochs": a.epochs, "gamma_c": a.gamma_c, "gamma_d": a.gamma_d,
                   "activate": True}), (202,), "train")
    job_id = js["job"]["id"]
    deadline = time.time() + a.timeout
    job = None
    while time.time() < deadline:
        job = must(req(a.port, "GET", "/v1/jobs/" + job_id, a.admin_key), (200,), "job")
        if job["state"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(1.0)
    train_wall_s = time.time() - t0
    if job is None or job["state"] != "succeeded":
        sys.exit("bench_lib: training job %s ended %s: %s" %
                 (job_id, job and job["state"], job and job.get("error")))
    key = must(req(a.port, "POST", "/v1/keys", a.admin_key,
                   {"name": "bench", "role": "inspect"}), (201,), "create inspect key")["key"]
    print(json.dumps({"product": a.product, "inspect_key": key, "job": job,
                      "images": len(files), "epochs": a.epochs, "gamma_c": a.gamma_c,
                      "gamma_d": a.gamma_d, "train_wall_s": round(train_wall_s, 2),
                      "upload_s": round(upload_s, 2)}))


# ---------------------------------------------------------------- report
def load(path):
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def fmt(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v))


def report(a):
    machine = load(os.path.join(a.dir, "machine.json")) or {}
    model = load(os.path.join(a.dir, "model.json"))
    server = load(os.path.join(a.dir, "server.json")) or {}
    train = load(os.path.join(a.dir, "train.json"))
    https = []
    for p in sorted(glob.glob(os.path.join(a.dir, "http_c*.json")),
                    key=lambda p: int(p.rsplit("_c", 1)[1].split(".")[0])):
        js = load(p)
        if js:
            fl = load(os.path.join(a.dir, "http_faults_c%d.json" % js["clients"])) or {}
            done = js["ok"] + js["status_503"] + js["status_other"] + js["clients"]  # + warm-up
            if "minor_faults" in fl and done > 0:
                js["faults_per_request"] = fl["minor_faults"] / done
            https.append(js)
    out = []
    md = []
    say = out.append

    say("CFA benchmark, %s" % machine.get("date", "?"))
    say("machine: %s" % machine.get("machine", "?"))
    say("load average before / after: %s / %s (other processes share these cores; figures "
        "are noisy)" % (machine.get("load_before", "?"), machine.get("load_after", "?")))
    md += ["## Run of %s" % machine.get("date", "?"), "",
           "- command: `%s`" % (a.command or machine.get("command", "?")),
           "- machine: %s" % machine.get("machine", "?"),
           "- commit: %s" % machine.get("commit", "?"),
           "- load average (1 min) before / after: %s / %s; other processes were running on "
           "the same cores, so treat the figures as a lower bound of this machine's speed"
           % (machine.get("load_before", "?"), machine.get("load_after", "?")), ""]

    ips = {}  # (setting, batch) -> images/s
    if model:
        say("")
        say("(1) in-process cfa_score, %dx%d image, per batch size a warm-up call, then at "
            "least %d calls and %.0f s:" % (model["image"][0], model["image"][1], model["iters"],
                                           model.get("min_time_s", 0)))
        md += ["### (1) In-process model throughput", "",
               "`cfa_score()` on a %dx%d image (JPEG of a magnetic_tile test image, decoded "
               "once); per batch size one warm-up call, then at least %d timed calls and %.0f s. "
               "\"backbone + minimal head\" is a model with an 8-channel descriptor and a "
               "12-centre bank: the cost of the backbone plus pre-processing and the map's "
               "upsampling, blur and mapping back (the C API has no backbone-only call)."
               % (model["image"][0], model["image"][1], model["iters"], model.get("min_time_s", 0))
               + " Load average (1 min) at the end of this part: %.2f." % model.get("load1", -1),
               "",
               "| setting | gamma_c / gamma_d | bank | channels | batch | images/s | ms/image |",
               "|---|---|---|---|---|---|---|"]
        for s in model["settings"]:
            for b in s["batches"]:
                ips[(s["name"], b["batch"])] = b["images_per_s"]
                say("  %-24s gc %-3d gd %-3d batch %-2d %7.2f images/s %8.1f ms/image"
                    % (s["name"], s["gamma_c"], s["gamma_d"], b["batch"], b["images_per_s"],
                       b["ms_per_image"]))
                md.append("| %s | %d / %d | %d | %d | %d | %.2f | %.1f |"
                          % (s["name"], s["gamma_c"], s["gamma_d"], s["bank"], s["channels"],
                             b["batch"], b["images_per_s"], b["ms_per_image"]))
        md.append("")

    if https:
        setting = server.get("setting", "paper")
        say("")
        say("(2) HTTP POST /v1/products/{id}/inspect, %s JPEG of %s bytes, loopback, "
            "model setting '%s' (server: %s):"
            % (server.get("image_size", "900x900"), https[0].get("body_bytes"), setting,
               server.get("flags", "defaults")))
        md += ["### (2) End-to-end HTTP throughput and latency", "",
               "`bench_http`: concurrent keep-alive clients on 127.0.0.1 POST a %s JPEG "
               "(%s bytes) to `/v1/products/{id}/inspect%s` (%s). The product was trained "
               "through the API (%s images, %s epoch(s), setting '%s'); server flags: `%s`."
               % (server.get("image_size", "900x900"), https[0].get("body_bytes"),
                  server.get("query", ""),
                  "no maps stored" if "store=false" in server.get("query", "") else
                  "heatmap and map stored for every inspection, as in production",
                  server.get("images", "?"), server.get("epochs", "?"), setting,
                  server.get("flags", "defaults")), "",
               "| clients | requests 200 / 503 / other | inspections/s | p50 ms | p95 ms | "
               "p99 ms | max ms | server model ms | server total ms | daemon page faults per inspection | load at end |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for h in https:
            l = h["latency_ms"]
            fpr = h.get("faults_per_request")
            say("  %d client(s): %d ok, %d x 503, %d other; %.3f inspections/s; latency ms "
                "p50 %.0f p95 %.0f p99 %.0f max %.0f; server model %.0f ms, total %.0f ms%s"
                % (h["clients"], h["ok"], h["status_503"], h["status_other"],
                   h["throughput_rps"], l["p50"], l["p95"], l["p99"], l["max"],
                   h["server_ms"]["model"], h["server_ms"]["total"],
                   "; %.0f page faults per inspection" % fpr if fpr is not None else ""))
            md.append("| %d | %d / %d / %d | %.3f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %.2f |"
                      % (h["clients"], h["ok"], h["status_503"], h["status_other"],
                         h["throughput_rps"], l["p50"], l["p95"], l["p99"], l["max"],
                         h["server_ms"]["model"], h["server_ms"]["total"],
                         "%.0f" % fpr if fpr is not None else "-", h.get("load1", -1)))
        md.append("")

        if ips:
            server_batch = int(server.get("batch", 8))
            say("")
            say("(3) ratio HTTP / in-process at the same batch policy (server batches up to "
                "min(clients, %d)):" % server_batch)
            md += ["### (3) HTTP over in-process", "",
                   "The server's worker batches the requests waiting, up to `--batch` (%d): "
                   "with C clients at most min(C, %d) per forward. Each HTTP figure is divided "
                   "by the in-process figure of the same setting at that batch (the largest "
                   "measured batch not above it)." % (server_batch, server_batch), "",
                   "| clients | HTTP inspections/s | in-process batch | in-process images/s "
                   "| ratio |", "|---|---|---|---|---|"]
            batches = sorted({b for (n, b) in ips if n == setting})
            for h in https:
                want = min(h["clients"], server_batch)
                cand = [b for b in batches if b <= want]
                if not cand:
                    continue
                b = cand[-1]
                ref = ips[(setting, b)]
                ratio = h["throughput_rps"] / ref if ref > 0 else None
                say("  %d client(s): %.3f / %.3f (batch %d) = %s"
                    % (h["clients"], h["throughput_rps"], ref, b, fmt(ratio, 3)))
                md.append("| %d | %.3f | %d | %.3f | %s |"
                          % (h["clients"], h["throughput_rps"], b, ref, fmt(ratio, 3)))
            md.append("")

    pairs = []  # (round, {batch: in-process images/s}, {clients: HTTP inspections/s})
    for p in sorted(glob.glob(os.path.join(a.dir, "pair_model_r*.json")),
                    key=lambda p: int(p.rsplit("_r", 1)[1].split(".")[0])):
        r = int(p.rsplit("_r", 1)[1].split(".")[0])
        m = load(p)
        hs = {c: load(os.path.join(a.dir, "pair_http_c%d_r%d.json" % (c, r))) for c in (1, 4)}
        if m and m.get("settings") and all(hs.values()):
            pairs.append((r, {b["batch"]: b["images_per_s"] for b in m["settings"][0]["batches"]},
                          {c: h["throughput_rps"] for c, h in hs.items()}))
    if pairs:
        def median(v):
            v = sorted(v)
            return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])
        say("")
        say("(3b) paired rounds: in-process right before HTTP, same server and setting:")
        md += ["### (3b) HTTP over in-process, paired rounds", "",
               "Each round measures in-process (`bench_model`, batch 1 and 4) and then HTTP "
               "(1 and 4 clients) back to back, so both see the same load from the other "
               "tenants of these cores; the ratio is taken per round, and its median is the "
               "figure to quote.", "",
               "| round | in-process b1 | HTTP 1 client | ratio | in-process b4 | HTTP 4 clients "
               "| ratio |", "|---|---|---|---|---|---|---|"]
        r1, r4 = [], []
        for r, ip, ht in pairs:
            a1 = ht[1] / ip[1] if ip.get(1) else None
            a4 = ht[4] / ip[4] if ip.get(4) else None
            if a1 is not None:
                r1.append(a1)
            if a4 is not None:
                r4.append(a4)
            say("  round %d: 1 client %.2f / %.2f = %s;  4 clients %.2f / %.2f = %s"
                % (r, ht[1], ip.get(1, 0), fmt(a1, 3), ht[4], ip.get(4, 0), fmt(a4, 3)))
            md.append("| %d | %.2f | %.2f | %s | %.2f | %.2f | %s |"
                      % (r, ip.get(1, 0), ht[1], fmt(a1, 3), ip.get(4, 0), ht[4], fmt(a4, 3)))
        say("  median ratio: 1 client %s, 4 clients %s"
            % (fmt(median(r1) if r1 else None, 3), fmt(median(r4) if r4 else None, 3)))
        md += ["| median | | | %s | | | %s |" % (fmt(median(r1) if r1 else None, 3),
                                                 fmt(median(r4) if r4 else None, 3)), ""]

    if train:
        say("")
        say("(4) training: %d images x %d epochs (gamma_c %d, gamma_d %d): total %.0f s = "
            "features %.0f s + bank and epochs %.0f s (bank ~%.0f s, median epoch %.1f s, "
            "%.4f s per image per epoch)%s"
            % (train["images"], train["epochs"], train["gamma_c"], train["gamma_d"],
               train["train_s"], train["feature_s"], train["bank_epochs_s"], train["bank_s"],
               train["epoch_median_s"], train["s_per_image_epoch"],
               "" if train["epochs"] == train["projected_epochs"] else
               "; projected for %d epochs: %.0f s" % (train["projected_epochs"],
                                                     train["projected_s"])))
        md += ["### (4) Training time", "",
               "`bench_train`: `cfa_train()` on the first %d good images of magnetic_tile, "
               "%d epoch(s), gamma_c %d, gamma_d %d, the paper's other parameters."
               % (train["images"], train["epochs"], train["gamma_c"], train["gamma_d"])
               + " Load average (1 min) at the end of this part: %.2f." % train.get("load1", -1),
               "",
               "| total s | feature extraction s | s/image | bank s | epochs s | median epoch s "
               "| s per image per epoch | projected 30 epochs s |",
               "|---|---|---|---|---|---|---|---|",
               "| %.0f | %.0f | %.3f | %.0f | %.0f | %.1f | %.4f | %.0f |"
               % (train["train_s"], train["feature_s"], train["feature_s"] / train["images"],
                  train["bank_s"], train["bank_epochs_s"] - train["bank_s"],
                  train["epoch_median_s"], train["s_per_image_epoch"],
                  train["projected_s"]), ""]
    else:
        say("")
        say("(4) training 200 images x 30 epochs: not run (pass --train-full, or "
            "--train-epochs E to project from E epochs)")

    say("")
    say("(5) peak resident memory:")
    md += ["### (5) Peak resident memory", "", "| process | peak RSS MiB |", "|---|---|"]
    rows = []
    if model:
        rows.append(("bench_model (backbone + the models above, scoring batch up to %d)"
                     % max(b for (_, b) in ips) if ips else "bench_model", model["peak_rss_mib"]))
    if server.get("vmhwm_mib") is not None:
        rows.append(("cfa-server after training and the HTTP runs", server["vmhwm_mib"]))
    if train:
        rows.append(("bench_train (%d images, feature cache in %s)"
                     % (train["images"], "float16" if train["feature_half"] else "float32"),
                     train["peak_rss_mib"]))
    for name, v in rows:
        say("  %-60s %8.0f MiB" % (name, v))
        md.append("| %s | %.0f |" % (name, v))
    md.append("")

    print("\n".join(out))
    if a.md:
        with open(a.md, "w") as f:
            f.write("\n".join(md) + "\n")
        print("\nMarkdown written to %s" % a.md)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--admin-key", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--product", default="bench-tile")
    s.add_argument("--images", type=int, default=20)
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--gamma-c", type=int, default=1)
    s.add_argument("--gamma-d", type=int, default=1)
    s.add_argument("--timeout", type=float, default=1800)
    r = sub.add_parser("report")
    r.add_argument("--dir", required=True)
    r.add_argument("--md")
    r.add_argument("--command")
    a = ap.parse_args()
    if a.cmd == "setup":
        setup(a)
    else:
        report(a)


if __name__ == "__main__":
    main()
