#!/usr/bin/python3
"""What tiling (issue 13) gains and costs, through the HTTP API of a real
cfa-server: the same images trained and inspected once squeezed (the whole
image resized to the model's resize, the service's way) and once tiled
(`tile`, `tile_overlap`). Prints a Markdown table for docs/BENCHMARKS.md
("ROI and tiling (issue 13)"). Python 3 standard library only; figures only,
nothing asserted.

  synthetic  large parts of G x G good crops (C pixels) of DATA/train/good;
             test parts of crops of DATA/test/good, half of them with a thin
             bright scratch (1-3 px wide, 60-200 px long): scratch found
             (NG) and false alarms (NG on clean parts), score / threshold of
             the scratched parts, pixel AUROC over the scratched parts (the
             scratch's pixels are the defect)
  native     DATA's own images at their own sizes: image AUROC over the test
             set, pixel AUROC over the defective images (ground_truth masks)
Both: training wall time (the job's figures) and the inspect latency
(timings_ms.total, median).

usage: roi_tiling.py --server build/cfa-server --backbone X.pt
                     --data /work/shared/data/magnetic_tile [--parts synthetic,native]
                     [--tile 128 --overlap 16] [--crop 128 --grid 4] [--train 8]
                     [--test 6] [--native-train 40] [--native-test 3] [--epochs 1]
"""
import argparse
import os
import random
import signal
import statistics
import struct
import sys
import tempfile
import time
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import daemon_proc  # noqa: E402
import imgconv  # noqa: E402

KEY = "bench-admin-" + uuid.uuid4().hex


# ------------------------------------------------------------------ pixels
def read_png_any(b):
    """(w, h, samples a pixel, bytes a sample, rows) of a non-interlaced
    8- or 16-bit gray/RGB PNG (imgconv reads 8-bit only)."""
    idat, at = [], 8
    while at + 8 <= len(b):
        n, kind = struct.unpack(">I4s", b[at:at + 8])
        data = b[at + 8:at + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[:10])
        elif kind == b"IDAT":
            idat.append(data)
        at += 12 + n
    spp, bps = {0: 1, 2: 3}[ctype], depth // 8
    bpp, stride = spp * bps, w * spp * bps
    raw, rows, prev = zlib.decompress(b"".join(idat)), [], bytearray(w * spp * bps)
    for y in range(h):
        f, cur = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                cur[i] = (cur[i] + a) & 255
            elif f == 2:
                cur[i] = (cur[i] + prev[i]) & 255
            elif f == 3:
                cur[i] = (cur[i] + ((a + prev[i]) >> 1)) & 255
            elif f == 4:
                cur[i] = (cur[i] + imgconv._paeth(a, prev[i], c)) & 255
        rows.append(bytes(cur))
        prev = cur
    return w, h, spp, bps, rows


def gray(png):
    w, h, spp, _, rows = read_png_any(png)
    return [bytearray(r[::spp]) for r in rows]


def map_values(png16, map_max):
    """The scores of a map.png (16-bit, v / 65535 * map_max)."""
    w, h, _, _, rows = read_png_any(png16)
    k = map_max / 65535.0
    return [v * k for r in rows for v in struct.unpack(">%dH" % w, r)]


def to_png(rows):
    return imgconv.write_png((len(rows[0]), len(rows), 1, [bytes(r) for r in rows]))


def crops(files, c, n, rnd):
    out = []
    for f in files:
        rows = gray(open(f, "rb").read())
        h, w = len(rows), len(rows[0])
        if w < c or h < c:
            continue
        for _ in range(4):
            x0, y0 = rnd.randrange(w - c + 1), rnd.randrange(h - c + 1)
            out.append([bytearray(r[x0:x0 + c]) for r in rows[y0:y0 + c]])
        if len(out) >= n:
            return out[:n]
    sys.exit("roi_tiling: not enough images of at least %d px for %d crops" % (c, n))


def part(cs, g):
    c = len(cs[0])
    return [bytearray(b"".join(bytes(cs[gy * g + gx][y]) for gx in range(g)))
            for gy in range(g) for y in range(c)]


def scratch(rows, rnd):
    """A thin bright scratch; returns the part and its pixel mask."""
    h, w = len(rows), len(rows[0])
    width, length = rnd.randint(1, 3), rnd.randint(60, 200)
    horiz = rnd.random() < 0.5
    x0 = rnd.randrange(0, w - (length if horiz else width))
    y0 = rnd.randrange(0, h - (width if horiz else length))
    out = [bytearray(r) for r in rows]
    gt = [bytearray(w) for _ in range(h)]
    for i in range(length):
        for j in range(width):
            x, y = (x0 + i, y0 + j) if horiz else (x0 + j, y0 + i)
            out[y][x], gt[y][x] = 255, 1
    return out, gt


# ------------------------------------------------------------------ metrics
def auroc(pos, neg):
    """P(score of a positive > a negative), ties half (Mann-Whitney)."""
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    rank_sum, i, n = 0.0, 0, len(allv)
    while i < n:
        j = i
        while j < n and allv[j][0] == allv[i][0]:
            j += 1
        r = (i + j + 1) / 2.0
        rank_sum += r * sum(1 for k in range(i, j) if allv[k][1])
        i = j
    npos, nneg = len(pos), len(neg)
    if npos == 0 or nneg == 0:
        return float("nan")
    return (rank_sum - npos * (npos + 1) / 2.0) / (npos * nneg)


# --------------------------------------------------------------------- API
class Api:
    def __init__(self, port):
        self.c = daemon_proc.Client(port, KEY)

    def must(self, method, path, body=None, ctype=None, ok=(200, 201, 202, 204)):
        st, js, data, _ = self.c.req(method, path, body, ctype)
        if st not in ok:
            sys.exit("roi_tiling: %s %s: %d %s" % (method, path, st, data[:300]))
        return js if js is not None else data

    def product(self, pid, pngs, settings):
        self.must("POST", "/v1/products", {"id": pid})
        for i in range(0, len(pngs), 16):
            body, ct = multipart(pngs[i:i + 16])
            self.must("POST", "/v1/products/%s/images" % pid, body, ct)
        js = self.must("POST", "/v1/products/%s/train" % pid, settings)
        job = js["job"]["id"]
        while True:
            j = self.must("GET", "/v1/jobs/" + job)
            if j["state"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(1)
        if j["state"] != "succeeded":
            sys.exit("roi_tiling: training %s: %s" % (pid, j.get("error")))
        return self.must("GET", "/v1/products/%s/models" % pid)["models"][0]

    def inspect(self, pid, png, want_map=False):
        js = self.must("POST", "/v1/products/%s/inspect" % pid, png, "image/png")
        vals = None
        if want_map:
            m = self.must("GET", "/v1/inspections/%s/map.png" % js["inspection_id"])
            vals = map_values(m, js["map_max"])
        return js, vals


def multipart(pngs):
    boundary = "----cfa" + uuid.uuid4().hex
    out = bytearray()
    for i, b in enumerate(pngs):
        out += ("--%s\r\nContent-Disposition: form-data; name=\"i%d\"; filename=\"%d.png\"\r\n"
                "Content-Type: image/png\r\n\r\n" % (boundary, i, i)).encode() + b + b"\r\n"
    out += ("--%s--\r\n" % boundary).encode()
    return bytes(out), "multipart/form-data; boundary=" + boundary


# ------------------------------------------------------------------- parts
def variants(a):
    base = {"epochs": a.epochs}
    return [("squeezed", dict(base)),
            ("tiled", dict(base, tile=a.tile, tile_overlap=a.overlap))]


def run_synthetic(api, a, rnd):
    good = lambda d: sorted(os.path.join(a.data, d, "good", f)
                            for f in os.listdir(os.path.join(a.data, d, "good")))
    g2 = a.grid * a.grid
    tr = crops(good("train"), a.crop, a.train * g2, rnd)
    te = crops(good("test"), a.crop, a.test * g2, rnd)
    train_pngs = [to_png(part(tr[k * g2:(k + 1) * g2], a.grid)) for k in range(a.train)]
    tests = []
    for k in range(a.test):
        p = part(te[k * g2:(k + 1) * g2], a.grid)
        tests.append((to_png(p), None) if k % 2 else tuple(
            (to_png(x) if i == 0 else x) for i, x in enumerate(scratch(p, rnd))))
    side = a.crop * a.grid
    rows = []
    for name, settings in variants(a):
        model = api.product("syn-" + name, train_pngs, settings)
        found = fa = 0
        ratios, lat, pos, neg = [], [], [], []
        for png, gt in tests:
            js, vals = api.inspect("syn-" + name, png, want_map=gt is not None)
            lat.append(js["timings_ms"]["total"])
            if gt is None:
                fa += js["decision"] == "NG"
                continue
            found += js["decision"] == "NG"
            ratios.append(js["score"] / js["threshold"])
            flat = [v for r in gt for v in r]
            pos += [v for v, g in zip(vals, flat) if g]
            neg += [v for v, g in zip(vals, flat) if not g]
        n_s = sum(1 for _, g in tests if g is not None)
        rows.append("| synthetic %dx%d | %s | %d/%d | %d/%d | %.2f | %.3f | %.1f | %.0f |" % (
            side, side, name, found, n_s, fa, len(tests) - n_s,
            statistics.median(ratios), auroc(pos, neg),
            model["figures"]["total_seconds"], statistics.median(lat)))
        print(rows[-1], flush=True)
    return rows


def run_native(api, a, rnd):
    tdir = os.path.join(a.data, "train", "good")
    train = sorted(os.listdir(tdir))
    rnd.shuffle(train)
    train_pngs = [open(os.path.join(tdir, f), "rb").read() for f in train[:a.native_train]]
    tests = []
    for cls in sorted(os.listdir(os.path.join(a.data, "test"))):
        fs = sorted(os.listdir(os.path.join(a.data, "test", cls)))[:a.native_test]
        for f in fs:
            gt = None
            if cls != "good":
                m = os.path.join(a.data, "ground_truth", cls, f[:-4] + "_mask.png")
                gt = [v for r in gray(open(m, "rb").read()) for v in r]
            tests.append((open(os.path.join(a.data, "test", cls, f), "rb").read(), gt))
    rows = []
    for name, settings in variants(a):
        model = api.product("mt-" + name, train_pngs, settings)
        ipos, ineg, pos, neg, lat = [], [], [], [], []
        for png, gt in tests:
            js, vals = api.inspect("mt-" + name, png, want_map=gt is not None)
            lat.append(js["timings_ms"]["total"])
            (ineg if gt is None else ipos).append(js["score"])
            if gt is not None:
                pos += [v for v, g in zip(vals, gt) if g]
                neg += [v for v, g in zip(vals, gt) if not g]
        rows.append("| magnetic_tile native | %s | image AUROC %.3f | %d defective, %d good | - "
                    "| %.3f | %.1f | %.0f |" % (name, auroc(ipos, ineg), len(ipos), len(ineg),
                                                 auroc(pos, neg), model["figures"]["total_seconds"],
                                                 statistics.median(lat)))
        print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--data", required=True, help="an MVTec-layout set (magnetic_tile)")
    ap.add_argument("--parts", default="synthetic,native")
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--grid", type=int, default=4)
    ap.add_argument("--train", type=int, default=8, help="synthetic training parts")
    ap.add_argument("--test", type=int, default=6, help="synthetic test parts (half scratched)")
    ap.add_argument("--native-train", type=int, default=40)
    ap.add_argument("--native-test", type=int, default=3, help="test images per class")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="cfa-roi-bench-")
    env = dict(os.environ, CFA_ADMIN_KEY=KEY)
    proc, port, log = daemon_proc.spawn([a.server, "--listen", "127.0.0.1:0", "--data-dir",
                                         os.path.join(tmp, "var"), "--backbone", a.backbone],
                                        env, os.path.join(tmp, "server.log"))
    try:
        api = Api(port)
        print("| case | model | scratch found (NG) | false alarms | score / threshold (scratched, "
              "median) | pixel AUROC | train s | inspect ms (median) |")
        print("|---|---|---|---|---|---|---|---|")
        for p in a.parts.split(","):
            {"synthetic": run_synthetic, "native": run_native}[p](api, a, rnd)
    finally:
        daemon_proc.stop(proc, log, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
