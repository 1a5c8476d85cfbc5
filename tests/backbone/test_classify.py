#!/usr/bin/python3
"""Sanity checks of the converted TorchScript backbone (run with /usr/bin/python3).

  test_classify.py classify --backbone PT --labels labels.json --photos DIR
      eagle.jpg -> "bald eagle" top-1, p about 0.87; dog.jpg -> "malamute", p about 0.81
      (shorter side resized to 256 bilinear, centre crop 224; photos from Debian's darknet)
  test_classify.py shapes --backbone PT [--channels 256,512,1024]
      forward() feature maps at 224x224 and 160x320

Missing inputs are failures, not skips: tools/setup.sh creates them.
JPEGs are decoded with libturbojpeg (ctypes), the decoder the server uses.
"""

import argparse
import ctypes
import ctypes.util
import json
import os
import sys

import torch
import torch.nn.functional as F

# (photo, expected top-1 label, expected probability)
CASES = [("eagle.jpg", "bald eagle", 0.87), ("dog.jpg", "malamute", 0.81)]
TOLERANCE = 0.03


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def require_file(path, what):
    if not os.path.isfile(path):
        fail("%s not found at %s (run tools/setup.sh)" % (what, path))


def decode_jpeg(path):
    """Decode a JPEG to a 3 x H x W uint8 RGB tensor with libturbojpeg."""
    name = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
    tj = ctypes.CDLL(name)
    tj.tjInitDecompress.restype = ctypes.c_void_p
    tj.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong,
                                       ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int),
                                       ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    tj.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
                                 ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    tj.tjDestroy.argtypes = [ctypes.c_void_p]
    tj.tjGetErrorStr.restype = ctypes.c_char_p
    with open(path, "rb") as f:
        data = f.read()
    h = tj.tjInitDecompress()
    if not h:
        fail("tjInitDecompress failed")
    try:
        w, hh, ss, cs = (ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int())
        if tj.tjDecompressHeader3(h, data, len(data), ctypes.byref(w), ctypes.byref(hh),
                                  ctypes.byref(ss), ctypes.byref(cs)) != 0:
            fail("%s: %s" % (path, tj.tjGetErrorStr().decode()))
        out = torch.empty((hh.value, w.value, 3), dtype=torch.uint8)
        TJPF_RGB = 0
        if tj.tjDecompress2(h, data, len(data), ctypes.c_void_p(out.data_ptr()), w.value, 0,
                            hh.value, TJPF_RGB, 0) != 0:
            fail("%s: %s" % (path, tj.tjGetErrorStr().decode()))
    finally:
        tj.tjDestroy(h)
    return out.permute(2, 0, 1).contiguous()


def preprocess(img):
    """uint8 3xHxW -> 1x3x224x224 float in [0,1]: shorter side 256 (bilinear), centre crop 224."""
    x = img.unsqueeze(0).float() / 255.0
    h, w = x.shape[-2:]
    if h <= w:
        nh, nw = 256, int(round(w * 256.0 / h))
    else:
        nh, nw = int(round(h * 256.0 / w)), 256
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (nh - 224) // 2, (nw - 224) // 2
    return x[:, :, top:top + 224, left:left + 224].clamp(0.0, 1.0)


def cmd_classify(args, net):
    require_file(args.labels, "labels.json")
    with open(args.labels) as f:
        raw = json.load(f)
    labels = {int(k): v.replace("_", " ") for k, v in raw.items()}
    if len(labels) != 1000:
        fail("labels.json has %d entries, expected 1000" % len(labels))
    ok = True
    for photo, want, want_p in CASES:
        path = os.path.join(args.photos, photo)
        require_file(path, photo)
        x = preprocess(decode_jpeg(path))
        with torch.no_grad():
            prob = torch.softmax(net.classify(x), dim=1)[0]
        top = torch.topk(prob, 5)
        got = labels[int(top.indices[0])]
        p = float(top.values[0])
        print("%s: top-1 %r p=%.4f (expected %r p=%.2f+-%.2f); top-5: %s" % (
            photo, got, p, want, want_p, TOLERANCE,
            ", ".join("%s %.3f" % (labels[int(i)], float(v)) for v, i in zip(top.values, top.indices))))
        if got != want or abs(p - want_p) > TOLERANCE:
            print("FAIL: %s" % photo, file=sys.stderr)
            ok = False
    return 0 if ok else 1


def cmd_shapes(args, net):
    chans = [int(c) for c in args.channels.split(",")]
    ok = True
    for n, h, w in ((1, 224, 224), (2, 160, 320), (1, 97, 131)):
        with torch.no_grad():
            feats = net(torch.rand(n, 3, h, w))
        if not isinstance(feats, tuple) or len(feats) != 3:
            fail("forward() must return a tuple of 3 tensors")
        want = []
        for c, s in zip(chans, (4, 8, 16)):
            # conv arithmetic of the ResNet stem (7x7/2 pad 3, 3x3/2 pad 1) and 3 stride-2 stages
            hh, ww = h, w
            for _ in range({4: 2, 8: 3, 16: 4}[s]):
                hh, ww = (hh - 1) // 2 + 1, (ww - 1) // 2 + 1
            want.append((n, c, hh, ww))
        got = [tuple(f.shape) for f in feats]
        good = got == want and all(f.dtype == torch.float32 and bool(torch.isfinite(f).all()) for f in feats)
        print("%dx%d: %s (expected %s) %s" % (h, w, got, want, "ok" if good else "MISMATCH"))
        ok = ok and good
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("classify", "shapes"))
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--labels")
    ap.add_argument("--photos")
    ap.add_argument("--channels", default="256,512,1024")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.mode == "classify" and not (args.labels and args.photos):
        ap.error("classify needs --labels and --photos")
    require_file(args.backbone, "backbone")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    net = torch.jit.load(args.backbone, map_location="cpu")
    net.eval()
    return cmd_classify(args, net) if args.mode == "classify" else cmd_shapes(args, net)


if __name__ == "__main__":
    sys.exit(main())
