#!/usr/bin/python3
"""Decisions on an MVTec-layout data set, measured only through the HTTP API
with the service's defaults (issue 13; docs/BENCHMARKS.md, "Decisions").

  decisions_eval.py --server build/cfa-server --backbone B --data DIR
                    [--images 200] [--variants default,crop] [--out OUT]

Starts cfa-server on 127.0.0.1 port 0 with a data dir in a temp folder, and
for each variant creates a product, uploads the first --images of
DIR/train/good by file name, trains with the service defaults (the
variant "crop" adds only {"crop_h": 224, "crop_w": 224, "keep_aspect": false},
the MVTec convention, to compare; "ensemble" adds "ensemble": true to that, CFA++; "short224" is the default
with the short side at 224 instead of 256; "noedge" the default without the edge profile), inspects every DIR/test image
and reads back its map.png. Prints per variant:
  - FAR on the good test images and miss rate on the defective ones at the
    model's threshold (T1: decision NG), at threshold_ng (verdict NG) and at
    the rule before this issue (the held-out maximum, kept in the model's
    figures as calibration_estimate.threshold_max_rule), all from the same
    run's scores;
  - the share of UNSURE verdicts;
  - image AUROC, pixel AUROC and AUPRO (FPR up to 0.3) from map.png and
    DIR/ground_truth (pixel figures from 4096-bin histograms of the scores:
    exact ranks are not needed at that resolution);
  - inspect latency (median, p90, client side) and the training time.
Writes OUT/<variant>.json with every score. numpy and PIL (Debian's python3).
"""
import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import daemon_proc  # noqa: E402

ADMIN = "decisions-eval-admin-key-0123456789"
VARIANTS = {"default": {}, "crop": {"crop_h": 224, "crop_w": 224, "keep_aspect": False},
            # CFA++: the crop model with its resize-only partner, scores combined
            "ensemble": {"crop_h": 224, "crop_w": 224, "keep_aspect": False, "ensemble": True},
            # the default frame at a short side of 224: 0.77x the pixels of 256
            "short224": {"resize_h": 224, "resize_w": 224},
            # the default without the edge profile (the scoring before it)
            "noedge": {"edge_profile": False},
            # the whole image squeezed to the square frame, no edge profile
            "squeeze_noedge": {"keep_aspect": False, "edge_profile": False},
            # the former default exactly: the crop, no edge profile
            "crop_noedge": {"crop_h": 224, "crop_w": 224, "keep_aspect": False, "edge_profile": False},
            # the same two with another seed (initialisation, shuffles, the holdout split):
            # how far one run's figures move from another's
            "default_seed2": {"seed": 2},
            "crop_noedge_seed2": {"crop_h": 224, "crop_w": 224, "keep_aspect": False, "edge_profile": False,
                                  "seed": 2}}


def must(resp, ok, what):
    st, js, body, _ = resp
    if st not in ok:
        sys.exit("decisions_eval: %s: HTTP %d %s" % (what, st, body[:300]))
    return js, body


def upload(c, pid, files):
    for i in range(0, len(files), 32):
        parts, boundary = [], b"cfa-decisions-eval-boundary"
        for f in files[i:i + 32]:
            data = open(f, "rb").read()
            ct = b"image/png" if data[:4] == b"\x89PNG" else b"image/jpeg"
            parts.append(b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"f\"; "
                         b"filename=\"x\"\r\nContent-Type: " + ct + b"\r\n\r\n" + data + b"\r\n")
        body = b"".join(parts) + b"--" + boundary + b"--\r\n"
        must(c.req("POST", "/v1/products/%s/images" % pid, body,
                   "multipart/form-data; boundary=" + boundary.decode()), (201,), "upload")


def train(c, pid, body):
    js, _ = must(c.req("POST", "/v1/products/%s/train" % pid, body), (202,), "train")
    job_id = js["job"]["id"]
    t0 = time.time()
    while True:
        job, _ = must(c.req("GET", "/v1/jobs/" + job_id), (200,), "job")
        if job["state"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(5)
    if job["state"] != "succeeded":
        sys.exit("decisions_eval: training %s: %s" % (job["state"], job.get("error")))
    return job, time.time() - t0


def auroc(pos, neg):
    """Mann-Whitney AUROC with ties counted half."""
    s = np.concatenate([pos, neg])
    order = s.argsort(kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    rp = ranks[: len(pos)].sum()
    return (rp - len(pos) * (len(pos) + 1) / 2.0) / (len(pos) * len(neg))


def components(mask):
    """4-connected components of a boolean mask (lists of flat indices)."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for start in np.flatnonzero(mask):
        if seen.flat[start]:
            continue
        stack, comp = [start], []
        seen.flat[start] = True
        while stack:
            p = stack.pop()
            comp.append(p)
            y, x = divmod(p, w)
            for q, ok in ((p - 1, x > 0), (p + 1, x < w - 1), (p - w, y > 0), (p + w, y < h - 1)):
                if ok and mask.flat[q] and not seen.flat[q]:
                    seen.flat[q] = True
                    stack.append(q)
        out.append(np.array(comp))
    return out


class PixelStats:
    """Histograms of pixel scores: normal pixels, anomalous pixels, and one
    per ground-truth region, over BINS bins of [0, top)."""
    BINS = 4096

    def __init__(self, top):
        self.top = top
        self.neg = np.zeros(self.BINS)
        self.pos = np.zeros(self.BINS)
        self.regions = []

    def bins(self, v):
        return np.clip((v / self.top * self.BINS).astype(int), 0, self.BINS - 1)

    def add(self, smap, gt):
        b = self.bins(smap.ravel())
        g = gt.ravel()
        self.neg += np.bincount(b[~g], minlength=self.BINS)
        self.pos += np.bincount(b[g], minlength=self.BINS)
        for comp in components(gt):
            self.regions.append(np.bincount(b[comp], minlength=self.BINS) / len(comp))

    def auroc(self):
        # thresholds from the top bin down: TPR, FPR at "score >= bin"
        tpr = np.concatenate([[0], np.cumsum(self.pos[::-1]) / self.pos.sum()])
        fpr = np.concatenate([[0], np.cumsum(self.neg[::-1]) / self.neg.sum()])
        return float(np.trapz(tpr, fpr))

    def aupro(self, max_fpr=0.3):
        fpr = np.cumsum(self.neg[::-1]) / self.neg.sum()
        pro = np.mean([np.cumsum(r[::-1]) for r in self.regions], axis=0)
        fpr = np.concatenate([[0], fpr])
        pro = np.concatenate([[0], pro])
        keep = fpr <= max_fpr
        f, p = fpr[keep], pro[keep]
        # close the curve at max_fpr by interpolation
        k = np.searchsorted(fpr, max_fpr)
        if k < len(fpr) and f[-1] < max_fpr:
            t = (max_fpr - fpr[k - 1]) / (fpr[k] - fpr[k - 1])
            f = np.append(f, max_fpr)
            p = np.append(p, pro[k - 1] + t * (pro[k] - pro[k - 1]))
        return float(np.trapz(p, f) / max_fpr)


def test_images(data):
    out = []
    for d in sorted(os.listdir(os.path.join(data, "test"))):
        for f in sorted(os.listdir(os.path.join(data, "test", d))):
            gt = None
            if d != "good":
                stem = os.path.splitext(f)[0]
                gt = os.path.join(data, "ground_truth", d, stem + "_mask.png")
            out.append((d, os.path.join(data, "test", d, f), gt))
    return out


def inspect_all(c, pid, tests):
    rows = []
    for kind, path, gt in tests:
        data = open(path, "rb").read()
        ct = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        t0 = time.time()
        js, _ = must(c.req("POST", "/v1/products/%s/inspect" % pid, data, ct), (200,), "inspect")
        lat = (time.time() - t0) * 1e3
        _, png = must(c.req("GET", js["map_url"]), (200,), "map.png")
        m = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float64) / 65535.0 * js["map_max"]
        rows.append({"id": js["inspection_id"], "kind": kind, "path": path, "gt": gt, "score": js["score"],
                     "verdict": js["verdict"], "decision": js["decision"], "latency_ms": lat,
                     "map": m})
    return rows


def rates(rows, t):
    good = [r["score"] for r in rows if r["kind"] == "good"]
    bad = [r["score"] for r in rows if r["kind"] != "good"]
    far = sum(s >= t for s in good) / len(good)
    miss = sum(s < t for s in bad) / len(bad)
    return far, miss


def evaluate(rows, model):
    good = np.array([r["score"] for r in rows if r["kind"] == "good"])
    bad = np.array([r["score"] for r in rows if r["kind"] != "good"])
    top = max(float(np.nanmax(r["map"])) for r in rows) * 1.0001 + 1e-12
    px = PixelStats(top)
    for r in rows:
        m = np.nan_to_num(r["map"])
        if r["gt"] is not None:
            g = np.asarray(Image.open(r["gt"]).convert("L")) > 127
            if g.shape != m.shape:
                g = np.asarray(Image.open(r["gt"]).convert("L").resize(
                    (m.shape[1], m.shape[0]), Image.NEAREST)) > 127
        else:
            g = np.zeros(m.shape, dtype=bool)
        px.add(m, g)
    est = model["figures"].get("calibration_estimate", {})
    t_max = est.get("threshold_max_rule", model["figures"].get("calibration_max"))
    out = {"threshold": model["threshold"], "threshold_ng": model["threshold_ng"],
           "threshold_max_rule": t_max,
           "good_images": int(len(good)), "defective_images": int(len(bad))}
    for name, t in (("t1", model["threshold"]), ("t2", model["threshold_ng"]),
                    ("max_rule", t_max)):
        far, miss = rates(rows, t)
        out["far_" + name], out["miss_" + name] = far, miss
    out["unsure_share"] = sum(r["verdict"] == "UNSURE" for r in rows) / len(rows)
    out["image_auroc"] = float(auroc(bad, good))
    out["pixel_auroc"] = px.auroc()
    out["aupro"] = px.aupro()
    lat = np.array([r["latency_ms"] for r in rows])
    out["latency_ms_median"] = float(np.median(lat))
    out["latency_ms_p90"] = float(np.percentile(lat, 90))
    out["calibration_estimate"] = est
    out["warnings"] = model["figures"].get("warnings")
    out["params"] = model["figures"].get("params")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--data", required=True, help="MVTec layout: train/good, test/*, ground_truth/*")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--variants", default="default,crop")
    ap.add_argument("--out", default=None)
    ap.add_argument("--test-every", type=int, default=1,
                    help="inspect every k-th defective test image of each folder by name (1 = all)")
    ap.add_argument("--good-every", type=int, default=1,
                    help="inspect every k-th good test image by name (1 = all)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="override the service default (smoke runs only; the figures use none)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the daemon's data dir (OUT/var: models, each inspection's .mapdata)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="cfa-decisions-")
    out_dir = a.out or tmp
    var = os.path.join(out_dir if a.keep else tmp, "var")
    os.makedirs(out_dir, exist_ok=True)
    env = dict(os.environ, CFA_ADMIN_KEY=ADMIN)
    proc, port, log = daemon_proc.spawn(
        [a.server, "--listen", "127.0.0.1:0", "--data-dir", var,
         "--backbone", a.backbone], env, os.path.join(tmp, "server.log"))
    c = daemon_proc.Client(port, ADMIN)
    c.timeout = 3600
    good = os.path.join(a.data, "train", "good")
    files = sorted(os.path.join(good, f) for f in os.listdir(good))[: a.images]
    tests = test_images(a.data)
    tests = [t for i, t in enumerate(tests)
             if sum(1 for u in tests[:i] if u[0] == t[0]) %
             (a.good_every if t[0] == "good" else a.test_every) == 0]
    results = {}
    try:
        for v in a.variants.split(","):
            pid = "eval-" + v
            must(c.req("POST", "/v1/products", {"id": pid}), (201,), "create product")
            upload(c, pid, files)
            body = dict(VARIANTS[v], **({"epochs": a.epochs} if a.epochs is not None else {}))
            job, train_s = train(c, pid, body)
            models, _ = must(c.req("GET", "/v1/products/%s/models" % pid), (200,), "models")
            model = models["models"][0]
            rows = inspect_all(c, pid, tests)
            res = evaluate(rows, model)
            res["train_s"] = train_s
            res["job_result"] = job.get("result")
            results[v] = res
            with open(os.path.join(out_dir, v + ".json"), "w") as f:
                json.dump({"result": res, "scores": [
                    {k: r[k] for k in ("id", "kind", "path", "score", "verdict")} for r in rows]},
                    f, indent=1)
            print(json.dumps({v: {k: x for k, x in res.items()
                                  if k not in ("params", "job_result")}}, indent=1), flush=True)
    finally:
        daemon_proc.stop(proc, log)
        if not a.keep:
            shutil.rmtree(var, ignore_errors=True)
    print("train images: the first %d of %s by name; test: %d of %s/test (every %d-th good, "
          "every %d-th of each defect folder, by name)"
          % (len(files), good, len(tests), a.data, a.good_every, a.test_every))
    return 0


if __name__ == "__main__":
    sys.exit(main())
