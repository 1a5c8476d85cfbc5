#!/usr/bin/python3
"""PNG vs JPEG scores with the reduced-scale JPEG decode off and on
(docs/BENCHMARKS.md, "Reduced-scale JPEG decode"). Prints figures; asserts
nothing.

A daemon (real, 127.0.0.1 port 0, temp data dir) trains a product on
magnetic_tile_mini/train/good (1 epoch, gamma 4/4, resize 256: the hardening
tests' model). TEST images of magnetic_tile/test (good and every defect
type), enlarged 2x (pixel repetition), are inspected as PNG and as JPEG
quality 95, with --jpeg-dct-scale 1 (default) and then 0 (restart, same
data). For each: the scores, |JPEG - PNG| absolute and relative, the
decision at the model's threshold, the decode time (timings_ms.decode,
median of REPEAT) and the pixel bytes charged to --pixel-budget-mb: 15 a
decoded pixel (3 as bytes + the engine's 12 as floats; the charge
unit.image checks), at the size the decode has (img_jpeg_fit's rule).

usage: tests/bench/jpeg_dct_scale.py --server build/cfa-server
           [--backbone ~/.cache/cfa/resnet50_imagenet.pt] [--data /work/shared/data]
"""
import argparse
import os
import shutil
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import imgconv  # noqa: E402
import test_hardening as th  # noqa: E402

REPEAT = 3
# TurboJPEG's scales below 1 (tjGetScalingFactors), n/8
SCALES = [(n, 8) for n in range(1, 8)]


def fit(w, h, fw, fh):
    """img_jpeg_fit: the smallest n/8 (sides rounded up) still >= fw x fh."""
    best = (w, h)
    for n, d in SCALES:
        sw, sh = (w * n + d - 1) // d, (h * n + d - 1) // d
        if sw >= fw and sh >= fh and sw * sh < best[0] * best[1]:
            best = (sw, sh)
    return best


def pick(data, per_defect=1, good=5):
    root = os.path.join(data, "magnetic_tile", "test")
    out = []
    for kind in sorted(os.listdir(root)):
        files = sorted(os.listdir(os.path.join(root, kind)))
        out += [(kind, os.path.join(root, kind, f)) for f in files[:good if kind == "good"
                                                                     else per_defect]]
    return out


def run(c, body, ctype):
    res = []
    for _ in range(REPEAT):
        st, js, _, _ = c.req("POST", "/v1/products/tile/inspect?store=false", body, ctype,
                             timeout=300)
        if st != 200:
            raise SystemExit("inspect %s: %d %s" % (ctype, st, js))
        res.append(js)
    return res[0]["score"], res[0]["decision"], statistics.median(
        r["timings_ms"]["decode"] for r in res), res[0]["threshold"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--backbone", default=os.path.expanduser("~/.cache/cfa/resnet50_imagenet.pt"))
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--enlarge", type=int, default=2)
    a = ap.parse_args()
    env = th.Env(a)
    imgs = []
    for kind, path in pick(a.data):
        big = imgconv.enlarge(imgconv.read_png(open(path, "rb").read()), a.enlarge)
        imgs.append((kind + "/" + os.path.basename(path), big[0], big[1],
                     imgconv.write_png(big), imgconv.write_jpeg(big, 95)))
    d = env.daemon("bench").start()
    c = th.Client(d.port, th.ADMIN_KEY)
    th.make_product(c, "tile", env.train)
    th.train(c, "tile")
    rows = {}
    for on in (1, 0):
        if on == 0:
            d.stop()
            d.start(extra=["--jpeg-dct-scale", "0"])
            c = th.Client(d.port, th.ADMIN_KEY)
        for name, w, h, png, jpg in imgs:
            p = run(c, png, "image/png")
            j = run(c, jpg, "image/jpeg")
            rows.setdefault(name, {"w": w, "h": h})[on] = (p, j)
    d.stop()
    thr = rows[imgs[0][0]][1][0][3]
    print("model threshold %.4f; images enlarged %dx; decode ms = median of %d" %
          (thr, a.enlarge, REPEAT))
    print("%-28s %11s %8s | %8s %8s %7s %6s %6s %8s | %8s %8s %7s %6s %6s %8s" % (
        "image", "size", "PNG", "JPEGoff", "abs", "rel%", "flip", "ms", "MBchg",
        "JPEGon", "abs", "rel%", "flip", "ms", "MBchg"))
    agg = {0: [], 1: []}
    for name, w, h, _, _ in imgs:
        r = rows[name]
        line = "%-28s %5dx%-5d %8.4f" % (name, w, h, r[1][0][0])
        for on in (0, 1):
            (ps, pd, pms, _), (js, jd, jms, _) = r[on]
            ab = abs(js - ps)
            rel = ab / abs(ps) * 100
            sw, sh = fit(w, h, 256, 256) if on else (w, h)
            mb = sw * sh * 15 / 1e6
            agg[on].append((ab, rel, jd != pd, jms, mb))
            line += " | %8.4f %8.4f %7.3f %6s %6.1f %8.2f" % (js, ab, rel, "FLIP" if jd != pd
                                                             else "-", jms, mb)
        print(line)
    pms = statistics.mean(rows[n][1][0][2] for n, *_ in imgs)
    print("PNG decode mean %.1f ms, charged mean %.2f MB" %
          (pms, statistics.mean(w * h * 15 / 1e6 for _, w, h, _, _ in imgs)))
    for on in (0, 1):
        v = agg[on]
        print("JPEG dct-scale %s: |diff| mean %.4f max %.4f, rel mean %.3f%% max %.3f%%, "
              "flips %d/%d, decode mean %.1f ms, charged mean %.2f MB" % (
                  "on " if on else "off", statistics.mean(x[0] for x in v),
                  max(x[0] for x in v), statistics.mean(x[1] for x in v),
                  max(x[1] for x in v), sum(x[2] for x in v), len(v),
                  statistics.mean(x[3] for x in v), statistics.mean(x[4] for x in v)))
    shutil.rmtree(env.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
