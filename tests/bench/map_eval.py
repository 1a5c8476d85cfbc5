#!/usr/bin/python3
"""Accuracy from the stored model maps of a kept decisions_eval run (issue 13;
docs/BENCHMARKS.md, "The edge band").

  decisions_eval.py ... --variants V --out RUN --keep
  map_eval.py --run RUN --variant V [--data DIR] [--per-type]
              [--profiles none,mean,mean_band8,mean_band16,mean_band32]

Reads each inspection's <id>.mapdata (the model map, model geometry, as the
daemon scored it) and the ground truth masks (resized to the model's frame
and cropped as the model was, nearest neighbour: the CLI's protocol), and
prints image AUROC (map maximum), pixel AUROC and AUPRO(0.3):
  - over the whole model map ("whole"),
  - over the region a 224-of-256 centre crop keeps ("crop region": the
    centre 7/8 of each side; for a crop model its whole map), so a
    whole-image model is compared with a crop model on the same pixels.
--per-type: the same on the crop region, one defect folder at a time.
--profiles: edge profiles simulated on a run scored without one (variant
noedge): the mean map by distance to the edge over the interior's, fitted on
one half of the good test images and evaluated on the other half and every
defective image, both ways, the two averaged. mean_bandK keeps the ratios of
the outer K pixels only (the daemon keeps 16: CFA_EDGE_BAND).
"""
import argparse
import glob
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decisions_eval as de  # noqa: E402


def load_map(run, inspection_id):
    path = glob.glob(os.path.join(run, "var", "**", inspection_id + ".mapdata"), recursive=True)[0]
    b = open(path, "rb").read()
    mw, mh, rw, rh, _, _ = struct.unpack("<6i", b[8:32])
    head = 8 + 24 + 8 + (16 if b[:8] == b"CFAMAP2\n" else 0)
    m = np.frombuffer(b[head:head + 4 * mw * mh], dtype="<f4").reshape(mh, mw)
    return m.astype(np.float64), rw, rh


def load_run(run, variant, data):
    rows = json.load(open(os.path.join(run, variant + ".json")))["scores"]
    gts = {os.path.abspath(p): gt for _, p, gt in de.test_images(data)}
    out = []
    for r in rows:
        m, rw, rh = load_map(run, r["id"])
        gt = gts.get(os.path.abspath(r["path"]))
        if gt:
            g = np.asarray(Image.open(gt).convert("L").resize((rw, rh), Image.NEAREST)) > 127
            oy, ox = (rh - m.shape[0]) // 2, (rw - m.shape[1]) // 2
            g = g[oy:oy + m.shape[0], ox:ox + m.shape[1]]
        else:
            g = np.zeros(m.shape, bool)
        out.append((r["kind"], m, g))
    return out


def crop_region(h, w, is_crop_model):
    """(y0, y1, x0, x1) of the pixels a 224-of-256 crop keeps."""
    if is_crop_model:
        return 0, h, 0, w
    return h // 16, h - h // 16, w // 16, w - w // 16


def metrics(items, box=None):
    if box:
        y0, y1, x0, x1 = box
        items = [(k, m[y0:y1, x0:x1], g[y0:y1, x0:x1]) for k, m, g in items]
    good = np.array([m.max() for k, m, _ in items if k == "good"])
    bad = np.array([m.max() for k, m, _ in items if k != "good"])
    lo = min(float(m.min()) for _, m, _ in items)
    top = max(float(m.max()) for _, m, _ in items) - lo
    px = de.PixelStats(top * 1.0001 + 1e-12)
    for _, m, g in items:
        px.add(m - lo, g)
    return de.auroc(bad, good), px.auroc(), px.aupro()


def edge_distance(h, w):
    y = np.arange(h)[:, None]
    x = np.arange(w)[None, :]
    return np.minimum(np.minimum(x, w - 1 - x), np.minimum(y, h - 1 - y))


def fit_profile(maps, band):
    """core/src/edge.cpp's fit: mean by distance bin (a quarter of the shorter
    side, the last bin the interior) over the interior's mean, >= 1; ratios
    kept for d < band only."""
    h, w = maps[0].shape
    n = max(2, min(w, h) // 4 + 1)
    d = np.minimum(edge_distance(h, w), n - 1)
    means = np.array([np.concatenate([m[d == b] for m in maps]).mean() for b in range(n)])
    ratio = np.maximum(means / means[-1], 1.0)
    ratio[np.arange(n) >= band] = 1.0
    return ratio[d]


def simulate(data, names, box):
    goods = [i for i, x in enumerate(data) if x[0] == "good"]
    bads = [i for i, x in enumerate(data) if x[0] != "good"]
    for name in names:
        band = 1 << 30 if name in ("none", "mean") else int(name[len("mean_band"):])
        res = []
        for fold in range(2):
            fit_on = [data[i][1] for j, i in enumerate(goods) if j % 2 == fold]
            evaluate = [i for j, i in enumerate(goods) if j % 2 != fold] + bads
            div = 1.0 if name == "none" else fit_profile(fit_on, band)
            items = [(data[i][0], data[i][1] / div, data[i][2]) for i in evaluate]
            res.append(metrics(items) + metrics(items, box))
        a = np.mean(res, axis=0)
        print("%-12s whole I %.3f P %.3f PRO %.3f | crop region I %.3f P %.3f PRO %.3f"
              % ((name,) + tuple(a)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="decisions_eval's --out of a --keep run")
    ap.add_argument("--variant", required=True)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "..", "..", "shared", "data", "magnetic_tile"))
    ap.add_argument("--per-type", action="store_true")
    ap.add_argument("--profiles", default=None)
    a = ap.parse_args()
    data = load_run(a.run, a.variant, a.data)
    h, w = data[0][1].shape
    params = json.load(open(os.path.join(a.run, a.variant + ".json")))["result"].get("params") or {}
    box = crop_region(h, w, bool(params.get("crop_h")))
    print("%s: %d maps of %d x %d, crop region rows %d..%d, columns %d..%d"
          % (a.variant, len(data), w, h, box[0], box[1], box[2], box[3]))
    if a.profiles:
        simulate(data, a.profiles.split(","), box)
        return 0
    print("whole        I %.3f P %.3f PRO %.3f" % metrics(data))
    print("crop region  I %.3f P %.3f PRO %.3f" % metrics(data, box))
    if a.per_type:
        for t in sorted({k for k, _, _ in data if k != "good"}):
            items = [x for x in data if x[0] in ("good", t)]
            print("  %-10s I %.3f P %.3f PRO %.3f" % ((t,) + metrics(items, box)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
