#!/usr/bin/python3
"""ROI masks and tiling (issue 13) through the API of the real daemon: real
store, real backbone, magnetic_tile_mini images.
  mask    PUT/GET/DELETE /v1/products/{id}/mask and its validation (not a
          PNG, too big, a bomb, the wrong shape, nothing inspected); a
          defect outside the mask gives OK, no region and a blank heatmap
          there, the same defect inside gives NG with a region over it; the
          model keeps the mask it was trained with
  tiling  a thin scratch on a large image (3 x 3 good crops): the squeezed
          whole-image model misses it (OK), the tiled model finds it (NG, a
          region over the scratch, in image coordinates)
usage: test_roi_tiling.py --server build/cfa-server --backbone X.pt --data DIR
                          [--only mask,tiling] [--keep]
Python 3 standard library only. Exit 0 = pass.
"""
import os
import sys
import base64

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgconv  # noqa: E402
import test_hardening as th  # noqa: E402
from test_hardening import check, expect_error, fatal  # noqa: E402

CROP = 180     # mask section: every image is a CROP x CROP part
BIG = 128      # tiling section: parts of 3 x 3 crops of BIG pixels ...
SQUEEZE = 128  # ... squeezed whole to SQUEEZE pixels, or tiled at BIG
FAST = {"epochs": 1, "gamma_c": 4, "gamma_d": 4, "holdout": 0.25}


# ------------------------------------------------------------------ pixels
def gray(png):
    w, h, bpp, rows = imgconv.read_png(png)
    if bpp != 1:
        rows = [bytes(r[i] for i in range(0, len(r), bpp)) for r in rows]
    return w, h, [bytearray(r) for r in rows]


def crop(img, x0, y0, size):
    w, h, rows = img
    x0, y0 = min(x0, w - size), min(y0, h - size)
    return [bytearray(r[x0:x0 + size]) for r in rows[y0:y0 + size]]


def centre_crop(png, size):
    w, h, rows = gray(png)
    return crop((w, h, rows), (w - size) // 2, (h - size) // 2, size)


def to_png(rows):
    return imgconv.write_png((len(rows[0]), len(rows), 1, [bytes(r) for r in rows]))


def paint(rows, x0, y0, w, h, value):
    out = [bytearray(r) for r in rows]
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            out[y][x] = value(x, y)
    return out


def blob(rows, x0, y0, size=26):
    """A defect: a square of bright/dark checks, far from the tile's texture."""
    return paint(rows, x0, y0, size, size, lambda x, y: 255 if (x // 3 + y // 3) % 2 else 0)


def overlaps(reg, x0, y0, w, h):
    return (reg["x"] < x0 + w and x0 < reg["x"] + reg["width"] and
            reg["y"] < y0 + h and y0 < reg["y"] + reg["height"])


def rgb_rows(png):
    return imgconv.read_png(png)


# -------------------------------------------------------------------- API
def train(c, pid, body):
    st, js, _, _ = c.req("POST", "/v1/products/%s/train" % pid, body)
    if not check(st == 202, "POST train %s -> 202 (got %d %s)" % (pid, st, js)):
        fatal("cannot train")
    job = th.wait_job(c, js["job"]["id"])
    check(job["state"] == "succeeded", "training %s succeeded (%s)" % (pid, job.get("error")))
    st, js, _, _ = c.req("GET", "/v1/products/%s/models" % pid)
    return js["models"][0]


def inspect(c, pid, png):
    st, js, _, _ = c.req("POST", "/v1/products/%s/inspect?heatmap=inline" % pid, png,
                         "image/png")
    if not check(st == 200, "inspect %s -> 200 (got %d %s)" % (pid, st, str(js)[:200])):
        fatal("cannot inspect")
    return js


# ------------------------------------------------------------------- mask
def mask_validation(c, pid, part_png):
    expect_error(c.req("GET", "/v1/products/%s/mask" % pid), 404, "GET mask before any",
                 "no_mask")
    expect_error(c.req("PUT", "/v1/products/%s/mask" % pid, part_png, "image/jpeg"), 415,
                 "PUT mask as image/jpeg", "unsupported_media_type")
    expect_error(c.req("PUT", "/v1/products/%s/mask" % pid, b"GIF89a" + b"\0" * 64,
                       "image/png"), 415, "PUT mask that is not a PNG",
                 "unsupported_media_type")
    big = th.make_png(CROP, CROP, seed=1, text="x" * (9 << 20))
    expect_error(c.req("PUT", "/v1/products/%s/mask" % pid, big, "image/png"), 413,
                 "PUT mask over 8 MiB", "mask_too_large")
    expect_error(c.req("PUT", "/v1/products/%s/mask" % pid, th.png_bomb(60000, 60000),
                       "image/png"), 422, "PUT mask PNG bomb", "image_too_large")
    trunc = to_png([bytearray([255] * CROP)] * CROP)[:-30]
    expect_error(c.req("PUT", "/v1/products/%s/mask" % pid, trunc, "image/png"), 422,
                 "PUT truncated mask PNG")
    expect_error(c.req("PUT", "/v1/products/%s/mask" % pid,
                       to_png([bytearray([255] * 60)] * 180), "image/png"), 422,
                 "PUT mask of another shape (60 x 180 for 180 x 180 images)", "mask_shape")
    expect_error(c.req("PUT", "/v1/products/%s/mask" % pid,
                       to_png([bytearray(CROP)] * CROP), "image/png"), 422,
                 "PUT mask with nothing inspected", "empty_mask")
    expect_error(c.req("PUT", "/v1/products/nope/mask", to_png([bytearray([1] * 8)] * 8),
                       "image/png"), 404, "PUT mask of an unknown product")
    expect_error(c.req("GET", "/v1/products/%s/mask" % pid), 404,
                 "no mask kept after the refused uploads", "no_mask")


def sec_mask(env):
    d = env.daemon("mask").start()
    try:
        c = th.Client(d.port, th.ADMIN_KEY)
        good = [centre_crop(b, CROP) for b in env.train[:8]]
        th.make_product(c, "roi", [to_png(g) for g in good])
        mask_validation(c, "roi", to_png(good[0]))
        # left half inspected; drawn at half the images' size: scaled to each
        half = CROP // 2
        mrows = [bytearray([255] * (half // 2) + [0] * (half // 2)) for _ in range(half)]
        mpng = to_png(mrows)
        st, js, _, _ = c.req("PUT", "/v1/products/roi/mask", mpng, "image/png")
        check(st == 200 and js["sha256"] == th.sha256(mpng) and js["width"] == half and
              abs(js["inspected_fraction"] - 0.5) < 0.01,
              "PUT mask -> 200 with its sha256 and inspected fraction (%s)" % js)
        st, _, body, hdrs = c.req("GET", "/v1/products/roi/mask")
        check(st == 200 and body == mpng and hdrs.get("content-type") == "image/png",
              "GET mask gives the PNG back")
        model = train(c, "roi", FAST)
        fig = model.get("figures", {})
        check(fig.get("mask_sha256") == th.sha256(mpng),
              "the model's figures name its mask (%s)" % fig.get("mask_sha256"))
        # the same defect inside (left) and outside (right) the mask
        base = good[1]  # a training image: scores low without a defect
        y0, size = 77, 26
        inside, outside = blob(base, 30, y0, size), blob(base, 124, y0, size)
        ji = inspect(c, "roi", to_png(inside))
        jo = inspect(c, "roi", to_png(outside))
        check(ji["decision"] == "NG" and any(overlaps(r, 30, y0, size, size)
                                             for r in ji["regions"]),
              "defect inside the mask: NG with a region over it (score %.3f, thr %.3f, %s)"
              % (ji["score"], ji["threshold"], ji["regions"][:2]))
        check(jo["decision"] == "OK" and jo["regions"] == [] and jo["score"] < ji["score"],
              "the same defect outside the mask: OK, no region (score %.3f < %.3f)"
              % (jo["score"], ji["score"]))
        heat = imgconv.read_png(base64.b64decode(jo["heatmap_png_base64"]))
        w, h, bpp, rows = heat
        blank = all(r[3 * x] == r[3 * x + 1] == r[3 * x + 2]
                    for r in rows for x in range(half + 2, w))
        coloured = sum(r[3 * x] != r[3 * x + 2] for r in rows for x in range(0, half - 2))
        check(bpp == 3 and blank and coloured > (half - 2) * h // 2,
              "heatmap: blank (grey) outside the mask, coloured inside (%d px)" % coloured)
        st, _, png, _ = c.req("GET", "/v1/inspections/%s/heatmap.png" % jo["inspection_id"])
        check(st == 200 and png == base64.b64decode(jo["heatmap_png_base64"]),
              "the stored heatmap is the one answered")
        st, _, mpng16, _ = c.req("GET", "/v1/inspections/%s/map.png" % jo["inspection_id"])
        check(st == 200 and imgconv.png_size(mpng16) == (CROP, CROP),
              "map.png at the image's size")
        # a model keeps the mask it was trained with
        st, _, _, _ = c.req("DELETE", "/v1/products/roi/mask")
        check(st == 204, "DELETE mask -> 204")
        expect_error(c.req("DELETE", "/v1/products/roi/mask"), 404, "DELETE mask again",
                     "no_mask")
        jo2 = inspect(c, "roi", to_png(outside))
        check(jo2["decision"] == "OK" and jo2["score"] == jo["score"],
              "after DELETE the active model still inspects with its mask (%.3f)" % jo2["score"])
        model2 = train(c, "roi", FAST)
        check(model2["figures"].get("mask_sha256") is None,
              "the next model is trained without a mask")
        jo3 = inspect(c, "roi", to_png(outside))
        check(jo3["decision"] == "NG",
              "without a mask the defect on the right is NG (score %.3f thr %.3f)"
              % (jo3["score"], jo3["threshold"]))
    finally:
        d.stop()


# ----------------------------------------------------------------- tiling
def crops_of(pngs, n):
    """n BIG-pixel crops: the four corners of as many good images as needed
    (decoding in pure Python is the slow part: each image is read once)."""
    out = []
    for png in pngs:
        w, h, rows = gray(png)
        for x0, y0 in ((0, 0), (w - BIG, 0), (0, h - BIG), (w - BIG, h - BIG)):
            out.append(crop((w, h, rows), x0, y0, BIG))
        if len(out) >= n:
            return out[:n]
    fatal("not enough good images for %d crops" % n)


def part(crops):
    """A 3 x 3 part of nine crops."""
    rows = []
    for gy in range(3):
        for y in range(BIG):
            rows.append(bytearray(b"".join(bytes(crops[gy * 3 + gx][y]) for gx in range(3))))
    return rows


def scratch(rows, x0, y, length, width):
    """A thin bright scratch, width pixels thick."""
    return paint(rows, x0, y, length, width, lambda x, yy: 255)


def sec_tiling(env):
    d = env.daemon("tiling").start()
    try:
        c = th.Client(d.port, th.ADMIN_KEY)
        crops = crops_of(env.train, 45)
        parts = [part(crops[9 * k:9 * k + 9]) for k in range(5)]
        pngs = [to_png(p) for p in parts]
        for pid in ("squeezed", "tiled"):
            th.make_product(c, pid, pngs)
        # a margin over the held-out part's score: the part the scratch is
        # drawn on may be the held-out one, whose score is the threshold
        sq = train(c, "squeezed", dict(FAST, crop_h=0, crop_w=0, resize_h=SQUEEZE,
                                       resize_w=SQUEEZE, margin=1.15))
        ti = train(c, "tiled", dict(FAST, tile=BIG, tile_overlap=0, margin=1.15))
        tp = ti["figures"].get("params", {})
        check(sq["figures"].get("tile") == 0 and ti["figures"].get("tile") == BIG and
              ti["figures"].get("tiles", 0) >= 9 and tp.get("resize_w") == BIG and
              tp.get("crop_w") == 0,
              "the tiled model's figures: tile %s, %s tiles" %
              (ti["figures"].get("tile"), ti["figures"].get("tiles")))
        x0, y, length, width = BIG + 24, BIG + 60, 80, 1
        img = to_png(scratch(parts[1], x0, y, length, width))
        js = inspect(c, "squeezed", img)
        jt = inspect(c, "tiled", img)
        check(js["decision"] == "OK",
              "squeezed to %d px the %d-px scratch is missed: OK (score %.3f, thr %.3f)"
              % (SQUEEZE, width, js["score"], js["threshold"]))
        check(jt["decision"] == "NG" and any(overlaps(r, x0, y, length, width)
                                             for r in jt["regions"]),
              "tiled at %d px the scratch is found: NG with a region over it "
              "(score %.3f, thr %.3f, %s)" % (BIG, jt["score"], jt["threshold"],
                                              jt["regions"][:2]))
        good = inspect(c, "tiled", pngs[1])
        check(good["decision"] == "OK", "the same part without the scratch: OK (%.3f)"
              % good["score"])
    finally:
        d.stop()


SECTIONS = {"mask": sec_mask, "tiling": sec_tiling}

if __name__ == "__main__":
    sys.exit(th.run_sections(SECTIONS))
