#!/usr/bin/python3
"""Reduced-scale JPEG decoding (docs/RELIABILITY.md, "Memory").

A product is trained on magnetic_tile_mini (resize 256 x 256). Test images
(good and defect) enlarged 5x (about 1200 x 1450) are sent as PNG and as
JPEG quality 95. The daemon decodes the JPEG at the smallest DCT scale still
>= 256 x 256 (1/4 here), so:

  coords   the JPEG's answer is in the image's own coordinates: map.png,
           heatmap.png (stored and inline) are the image's size, every
           region's box lies inside it, and the largest region of a defect
           overlaps the PNG's;
  score    the JPEG's score is within SCORE_TOL (relative) of the PNG's: the
           two decodes differ by the JPEG's loss and by DCT scaling versus
           bilinear resizing of the whole image (docs/BENCHMARKS.md measures
           it on 10 images: at most a few percent);
  cli      `cfa infer` (--cli) with the daemon's model (its artifact) decodes
           the same way: the same score for the first image's JPEG and PNG, within 1e-4
           (same model, same pixels; float sums in another order), and its
           heatmap at the image's size;
  budget   restarted with --pixel-budget-mb 16 (the smallest), the enlarged
           JPEG is scored (charged at its reduced size, ~2 MB) while the
           same image as PNG (~26 MB whole) is refused 422 image_too_large;
           with --jpeg-dct-scale 0 as well, the JPEG is refused like the PNG.

usage: test_hardening_dct.py --server build/cfa-server --backbone X.pt --data DIR
                            [--cli build/cfa]
"""
import argparse
import base64
import os
import json
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgconv  # noqa: E402
import test_hardening as th  # noqa: E402  (Daemon, Env, Client, check, ...)

check, note = th.check, th.note
ENLARGE = 5
# Relative score difference allowed between the JPEG (reduced decode) and the
# PNG (whole decode) of one image: measured at most ~3% on magnetic_tile
# (docs/BENCHMARKS.md); twice that leaves room for another model's weights.
SCORE_TOL = 0.06
BUDGET_BYTES = 16 << 20  # --pixel-budget-mb 16


def images(env):
    """(name, png, jpeg, w, h) of a good and two defect test images, enlarged
    so that the whole decode (15 bytes a pixel charged) is over 16 MiB."""
    ds = os.path.join(env.a.data, "magnetic_tile_mini", "test")
    out = []
    for kind in ("good", "blowhole", "crack"):
        f = sorted(os.listdir(os.path.join(ds, kind)))[0]
        big = imgconv.enlarge(imgconv.read_png(open(os.path.join(ds, kind, f), "rb").read()),
                              ENLARGE)
        w, h = big[0], big[1]
        if w * h * 15 > BUDGET_BYTES:
            out.append(("%s/%s" % (kind, f), imgconv.write_png(big), imgconv.write_jpeg(big, 95),
                        w, h))
    check(len(out) >= 2, "at least 2 test images large enough (%d)" % len(out))
    return out


def inspect(c, body, ctype, query="?heatmap=inline"):
    return c.req("POST", "/v1/products/tile/inspect" + query, body, ctype, timeout=300)


def overlap(a, b):
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"]
            and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def check_coords(c, name, js, w, h):
    got = imgconv.png_size(base64.b64decode(js.get("heatmap_png_base64", "")))
    check(got == (w, h), "%s: inline heatmap is %d x %d (got %s)" % (name, w, h, got))
    for f in ("heatmap.png", "map.png"):
        st, _, body, _ = c.req("GET", "/v1/inspections/%s/%s" % (js["inspection_id"], f),
                               timeout=120)
        got = imgconv.png_size(body) if st == 200 else None
        check(got == (w, h), "%s: %s is %d x %d (got %s, %d)" % (name, f, w, h, got, st))
    bad = [r for r in js["regions"] if r["x"] < 0 or r["y"] < 0 or r["x"] + r["width"] > w
           or r["y"] + r["height"] > h]
    check(not bad, "%s: every region inside %d x %d (%s)" % (name, w, h, bad[:2]))


def cli_model(env, c):
    """The active model as a file for `cfa infer`, or None without --cli."""
    if not env.a.cli:
        return None
    st, _, body, _ = c.req("GET", "/v1/products/tile/models/1/artifact", timeout=120)
    check(st == 200, "GET the model's artifact (%d)" % st)
    path = os.path.join(env.tmp, "model.cfa")
    with open(path, "wb") as f:
        f.write(body)
    return path


def check_cli(env, model, name, ext, body, daemon_score, w, h):
    img = os.path.join(env.tmp, "image." + ext)
    heat = os.path.join(env.tmp, "heat.png")
    with open(img, "wb") as f:
        f.write(body)
    r = subprocess.run([env.a.cli, "infer", "--model", model, "--backbone", env.a.backbone,
                        img, "--heatmap", heat], capture_output=True, timeout=300)
    if not check(r.returncode == 0, "%s: cfa infer %s (%s)" % (name, ext, r.stderr[-300:])):
        return
    out = json.loads(r.stdout)
    rel = abs(out["score"] - daemon_score) / max(abs(daemon_score), 1e-9)
    check(rel <= 1e-4, "%s: cfa infer scores the %s as the daemon (%.5f, %.5f)"
          % (name, ext, out["score"], daemon_score))
    with open(heat, "rb") as f:
        got = imgconv.png_size(f.read())
    check(got == (w, h) and (out["width"], out["height"]) == (w, h),
          "%s: cfa infer's %s map and heatmap are %d x %d (%s, %s)"
          % (name, ext, w, h, got, (out["width"], out["height"])))


def sec_main(env):
    imgs = images(env)
    d = env.daemon("dct").start()
    c = th.Client(d.port, th.ADMIN_KEY)
    th.make_product(c, "tile", env.train)
    th.train(c, "tile")
    print("== coords, score", flush=True)
    model = cli_model(env, c)
    for name, png, jpg, w, h in imgs:
        st_p, jp, _, _ = inspect(c, png, "image/png")
        st_j, jj, _, _ = inspect(c, jpg, "image/jpeg")
        if not check(st_p == 200 and st_j == 200, "%s: PNG and JPEG inspected (%d, %d)"
                     % (name, st_p, st_j)):
            continue
        if model is not None and name == imgs[0][0]:  # one image: a backbone load each
            check_cli(env, model, name, "png", png, jp["score"], w, h)
            check_cli(env, model, name, "jpg", jpg, jj["score"], w, h)
        check_coords(c, name + " JPEG", jj, w, h)
        rel = abs(jj["score"] - jp["score"]) / max(abs(jp["score"]), 1e-9)
        note("%s %d x %d: score PNG %.4f JPEG %.4f (rel %.4f), decode ms PNG %.1f JPEG %.1f"
             % (name, w, h, jp["score"], jj["score"], rel, jp["timings_ms"]["decode"],
                jj["timings_ms"]["decode"]))
        check(rel <= SCORE_TOL, "%s: JPEG score %.4f within %.0f%% of the PNG's %.4f"
              % (name, jj["score"], SCORE_TOL * 100, jp["score"]))
        if jp["regions"] and jj["regions"]:
            check(overlap(jp["regions"][0], jj["regions"][0]),
                  "%s: the largest regions of PNG and JPEG overlap (%s, %s)"
                  % (name, jp["regions"][0], jj["regions"][0]))
    d.stop()

    print("== budget: --pixel-budget-mb 16", flush=True)
    d.start(extra=["--pixel-budget-mb", "16"])
    c = th.Client(d.port, th.ADMIN_KEY)
    name, png, jpg, w, h = imgs[0]
    st, js, _, _ = inspect(c, jpg, "image/jpeg", "")
    check(st == 200, "%s: JPEG %d x %d scored within a 16 MiB budget (%d %s)"
          % (name, w, h, st, js))
    th.expect_error(inspect(c, png, "image/png", ""), 422, "the same image as PNG",
                    "image_too_large")
    d.stop()
    d.start(extra=["--pixel-budget-mb", "16", "--jpeg-dct-scale", "0"])
    c = th.Client(d.port, th.ADMIN_KEY)
    th.expect_error(inspect(c, jpg, "image/jpeg", ""), 422,
                    "the JPEG with --jpeg-dct-scale 0", "image_too_large")
    d.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--data", required=True, help="folder holding magnetic_tile_mini")
    ap.add_argument("--cli", help="the cfa CLI: also compare `cfa infer` with the daemon")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dirs")
    a = ap.parse_args()
    env = th.Env(a)
    t0 = time.time()
    try:
        sec_main(env)
    finally:
        log = os.path.join(env.tmp, "dct", "server.log")
        if os.path.exists(log):
            check(b"runtime error:" not in open(log, "rb").read() and
                  b"Sanitizer" not in open(log, "rb").read(), "no sanitizer report in " + log)
        if not a.keep and not th.failures:
            shutil.rmtree(env.tmp, ignore_errors=True)
    for n in th.notes:
        print("NOTE " + n)
    print("%d failure(s) in %.0f s%s" % (len(th.failures), time.time() - t0,
                                         "" if not th.failures else " (kept %s)" % env.tmp))
    for f in th.failures:
        print("  - " + f)
    return 1 if th.failures else 0


if __name__ == "__main__":
    sys.exit(main())
