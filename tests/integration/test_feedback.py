#!/usr/bin/python3
"""Operator feedback, drift, region outlines and the safety rails of the
product and key resources (docs/API.md: "Feedback", "Drift", "The inspection
result", "Safety rails"). Real daemon, real store, real backbone, magnetic_tile_mini.

  labels   POST /v1/inspections/{id}/label: the label object back, in GET
           /v1/inspections/{id} (null before), a new label replaces the old;
           add_to_training adds the stored image to the product's images (one
           call) with its image.added row (refused whole when that row cannot
           be written), 409 image_not_kept for a store=false inspection, 403 for an
           inspect key, 400 with a defect label, for an unknown label or
           property; the product summary's counts, precision and FAR as
           docs/API.md defines them
  regions  a defect's regions carry a polygon of at most 32 points inside
           the region's box, touching each of its four sides
  rails    the last active admin key cannot be revoked (409 last_admin_key);
           a model that is not active is deleted (204), the active one is
           not (409 model_active); a product deleted and created again
           continues its version numbers
  drift    trained with half the images held out, --drift-window 20: 20
           unseen good images keep the drift flag down (API and metric);
           20 brightened ones raise it; 20 good ones bring it down; 20
           blurred ones raise it again

usage: test_feedback.py --server build/cfa-server --backbone X.pt --data DIR [--only a,b]
"""
import os
import re
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgconv  # noqa: E402
import test_events_atomic as ea  # noqa: E402  (the event log closed by a trigger)
import test_hardening as th  # noqa: E402

check, expect_error = th.check, th.expect_error
TRAIN = {"epochs": 1, "gamma_c": 4, "gamma_d": 4}
WINDOW = 20  # --drift-window of the drift section (its smallest value)


def train(c, pid, body=None):
    st, js, _, _ = c.req("POST", "/v1/products/%s/train" % pid, dict(TRAIN, **(body or {})))
    if not check(st == 202, "POST train %s -> 202 (got %d %s)" % (pid, st, js)):
        th.fatal("cannot train")
    job = th.wait_job(c, js["job"]["id"])
    check(job["state"] == "succeeded", "training %s succeeded (%s)" % (pid, job.get("error")))
    return job


def inspect(c, pid, body, query=""):
    st, js, _, _ = c.req("POST", "/v1/products/%s/inspect%s" % (pid, query), body, "image/png")
    check(st == 200, "inspect %s%s -> 200 (got %d %s)" % (pid, query, st, "" if st == 200 else js))
    return js


def label(c, iid, body, key="default"):
    return c.req("POST", "/v1/inspections/%s/label" % iid, body, key=key)


def image_count(c, pid):
    return c.req("GET", "/v1/products/" + pid)[1]["image_count"]


def make_key(c, role):
    st, js, _, _ = c.req("POST", "/v1/keys", {"name": role + "-" + uuid.uuid4().hex[:6],
                                              "role": role})
    check(st == 201, "create a %s key (%d)" % (role, st))
    return js


def added_rows(c, png):
    st, js, _, _ = c.req("GET", "/v1/events?limit=1000&kind=image.added&product=fb")
    return [e for e in js["events"] if e["after"] == {"images": [th.sha256(png)]}] \
        if st == 200 else []


def label_events(d, c, b_id, good, n0):
    """The image a label adds to the training set has its image.added row,
    written with it: with the event log closed the label is refused whole."""
    rows = added_rows(c, good[0])
    check(len(rows) == 1 and rows[0]["key_id"] is not None,
          "add_to_training: exactly one image.added row with the image, the key (%s)" % rows)
    ea.sql(d, ea.CLOSE)
    try:
        st, _, _, _ = label(c, b_id, {"label": "ok", "add_to_training": True})
    finally:
        ea.sql(d, ea.REOPEN)
    st_i, js, _, _ = c.req("GET", "/v1/inspections/" + b_id)
    check(not 200 <= st < 300 and image_count(c, "fb") == n0 + 1 and
          st_i == 200 and js.get("label") is None and added_rows(c, good[1]) == [],
          "add_to_training with the event log closed: refused, no image, no label, no row "
          "(got %d)" % st)


def sec_labels(env):
    d = env.daemon("labels").start()
    c = th.Client(d.port, th.ADMIN_KEY)
    th.make_product(c, "fb", env.train[:12])
    train(c, "fb")
    good = env.test_good
    a = inspect(c, "fb", good[0])
    b = inspect(c, "fb", good[1])
    nostore = inspect(c, "fb", good[2], "?store=false")
    dfx = [inspect(c, "fb", x) for x in env.test_defect[:3]]
    st, js, _, _ = c.req("GET", "/v1/inspections/" + a["inspection_id"])
    check(st == 200 and "label" in js and js["label"] is None,
          "GET an unlabelled inspection: label null (%s)" % (js or {}).get("label", "absent"))

    n0 = image_count(c, "fb")
    st, js, _, _ = label(c, a["inspection_id"], {"label": "defect", "note": "first look"})
    check(st == 200 and js.get("label") == "defect" and js.get("note") == "first look"
          and js.get("key_id") and js.get("at"), "label defect -> 200 with the label (%s)" % js)
    st, js, _, _ = label(c, a["inspection_id"], {"label": "false_alarm", "note": "fine part",
                                                 "add_to_training": True})
    check(st == 200 and js.get("label") == "false_alarm" and js.get("training_image_id"),
          "relabel false_alarm with add_to_training -> 200 (%s)" % js)
    check(image_count(c, "fb") == n0 + 1, "the inspected image joined the training set "
          "(%d -> %d)" % (n0, image_count(c, "fb")))
    st, imgs, _, _ = c.req("GET", "/v1/products/fb/images?limit=1000")
    check(any(i["id"] == js.get("training_image_id") for i in imgs["images"])
          and js.get("training_image_id") == th.sha256(good[0]),
          "the training image is the inspected bytes")
    label_events(d, c, b["inspection_id"], good, n0)
    st, js, _, _ = c.req("GET", "/v1/inspections/" + a["inspection_id"])
    check(st == 200 and (js.get("label") or {}).get("label") == "false_alarm"
          and js["label"].get("note") == "fine part",
          "GET the inspection: the newest label replaces the old (%s)" % js.get("label"))

    expect_error(label(c, nostore["inspection_id"], {"label": "ok", "add_to_training": True}),
                 409, "add_to_training of a store=false inspection", "image_not_kept")
    check(image_count(c, "fb") == n0 + 1, "nothing added by the refused call")
    insp = make_key(c, "inspect")
    expect_error(label(c, b["inspection_id"], {"label": "ok", "add_to_training": True},
                       key=insp["key"]), 403, "add_to_training with an inspect key", "forbidden")
    st, js, _, _ = label(c, b["inspection_id"], {"label": "ok"}, key=insp["key"])
    check(st == 200 and js.get("key_id") == insp["id"],
          "an inspect key labels; the label names its key (%s)" % js)
    expect_error(label(c, b["inspection_id"], {"label": "defect", "add_to_training": True}),
                 400, "add_to_training of a defect", "invalid_label")
    expect_error(label(c, b["inspection_id"], {"label": "broken"}), 400, "unknown label",
                 "invalid_label")
    expect_error(label(c, b["inspection_id"], {"label": "ok", "colour": 1}), 400,
                 "unknown property", "unknown_property")
    expect_error(label(c, b["inspection_id"], {"label": "ok", "note": "x" * 1025}), 400,
                 "a note over 1024 bytes", "field_too_long")
    expect_error(label(c, "0" * 32, {"label": "ok"}), 404, "label of an unknown inspection",
                 "not_found")
    st, js, _, _ = c.req("GET", "/v1/inspections/" + b["inspection_id"])
    check((js.get("label") or {}).get("label") == "ok", "refused labels changed nothing")

    # the summary: every labelled inspection by its decision and newest label
    labelled = {a["inspection_id"]: ("false_alarm", a), b["inspection_id"]: ("ok", b)}
    for i, r in enumerate(dfx):
        lab = "defect" if i < 2 else "false_alarm"
        st, _, _, _ = label(c, r["inspection_id"], {"label": lab})
        labelled[r["inspection_id"]] = (lab, r)
    ng = [(lab, r) for lab, r in labelled.values() if r["decision"] == "NG"]
    good_parts = [(lab, r) for lab, r in labelled.values() if lab != "defect"]
    want_prec = (sum(lab == "defect" for lab, _ in ng) / len(ng)) if ng else None
    want_far = (sum(r["decision"] == "NG" for _, r in good_parts) / len(good_parts))
    st, p, _, _ = c.req("GET", "/v1/products/fb")
    fb = p.get("feedback") or {}
    check(fb.get("labelled_ng") == len(ng) and fb.get("labelled_good") == len(good_parts)
          and fb.get("confirmed_defects") == sum(lab == "defect" for lab, _ in ng),
          "summary counts: %d labelled NG, %d good parts (%s)" % (len(ng), len(good_parts), fb))
    same = lambda x, y: (x is None and y is None) or (x is not None and y is not None
                                                       and abs(x - y) < 1e-9)
    check(same(fb.get("precision"), want_prec) and same(fb.get("far"), want_far),
          "summary precision %s and FAR %s as defined (%s, %s)"
          % (want_prec, want_far, fb.get("precision"), fb.get("far")))
    d.stop()


def sec_regions(env):
    d = env.daemon("regions").start()
    c = th.Client(d.port, th.ADMIN_KEY)
    th.make_product(c, "rg", env.train[:12])
    train(c, "rg")
    seen = 0
    for x in env.test_defect:
        js = inspect(c, "rg", x, "?store=false")
        for reg in js.get("regions", []):
            poly = reg.get("polygon")
            seen += 1
            if not check(isinstance(poly, list) and 1 <= len(poly) <= 32,
                         "region %s: polygon of 1-32 points (%s)" % (reg, poly and len(poly))):
                continue
            x0, y0 = reg["x"], reg["y"]
            x1, y1 = x0 + reg["width"] - 1, y0 + reg["height"] - 1
            xs, ys = [p[0] for p in poly], [p[1] for p in poly]
            check(min(xs) >= x0 and max(xs) <= x1 and min(ys) >= y0 and max(ys) <= y1,
                  "polygon inside the box %s" % [x0, y0, x1, y1])
            if len(poly) >= 4:
                check(x0 in xs and x1 in xs and y0 in ys and y1 in ys,
                      "the outline touches the four sides of its box (%s)" % poly[:6])
            check(reg.get("area", 0) >= 1, "area in pixels (%s)" % reg.get("area"))
    check(seen > 0, "the defects made %d region(s)" % seen)
    d.stop()


def sec_rails(env):
    d = env.daemon("rails").start()
    c = th.Client(d.port, th.ADMIN_KEY)
    st, keys, _, _ = c.req("GET", "/v1/keys")
    first = [k for k in keys["keys"] if k["role"] == "admin" and not k.get("revoked_at")]
    check(len(first) == 1, "one admin key at start")
    expect_error(c.req("DELETE", "/v1/keys/" + first[0]["id"]), 409,
                 "revoke the last admin key", "last_admin_key")
    second = make_key(c, "admin")
    st, _, _, _ = c.req("DELETE", "/v1/keys/" + first[0]["id"], key=second["key"])
    check(st == 204, "with a second admin key the first is revoked (%d)" % st)
    c2 = th.Client(d.port, second["key"])
    expect_error(c2.req("DELETE", "/v1/keys/" + second["id"]), 409,
                 "revoke the (new) last admin key", "last_admin_key")
    st, _, _, _ = c2.req("GET", "/v1/keys")
    check(st == 200, "the remaining admin key still works (%d)" % st)

    th.make_product(c2, "rl", env.train[:8])
    train(c2, "rl")
    train(c2, "rl")
    expect_error(c2.req("DELETE", "/v1/products/rl/models/2"), 409, "delete the active model",
                 "model_active")
    st, _, _, _ = c2.req("DELETE", "/v1/products/rl/models/1")
    check(st == 204, "delete model 1 (not active) -> 204 (%d)" % st)
    st, js, _, _ = c2.req("GET", "/v1/products/rl/models")
    check([m["version"] for m in js["models"]] == [2], "only version 2 is left (%s)"
          % [m["version"] for m in js["models"]])
    expect_error(c2.req("DELETE", "/v1/products/rl/models/1"), 404, "delete it again",
                 "not_found")
    st, _, _, _ = c2.req("DELETE", "/v1/products/rl")
    check(st == 204, "delete the product (%d)" % st)
    th.make_product(c2, "rl", env.train[:8])
    job = train(c2, "rl")
    check(job.get("model_version") == 3, "the product created again trains version 3, not 1 "
          "(got %s)" % job.get("model_version"))
    d.stop()


def brighten(png, k=3.0):
    w, h, bpp, rows = imgconv.read_png(png)
    out = [bytes(min(255, int(v * k)) for v in r) for r in rows]
    return imgconv.write_png((w, h, bpp, out))


def blur(png, r=4):
    """A box blur of radius r, separable (numpy from Debian's python3)."""
    import numpy as np
    w, h, bpp, rows = imgconv.read_png(png)
    a = np.frombuffer(b"".join(rows), np.uint8).reshape(h, w * bpp // bpp, bpp).astype(float)
    k = 2 * r + 1
    for axis in (0, 1):
        p = np.pad(a, [(r, r) if i == axis else (0, 0) for i in range(3)], mode="edge")
        c = np.cumsum(p, axis=axis)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        a = (np.take(c, range(k, c.shape[axis]), axis=axis)
             - np.take(c, range(0, c.shape[axis] - k), axis=axis)) / k
    out = a.clip(0, 255).astype(np.uint8)
    return imgconv.write_png((w, h, bpp, [out[y].tobytes() for y in range(h)]))


def metric(c, name, pid):
    _, _, body, _ = c.req("GET", "/metrics", key=None)
    m = re.search(r'^%s\{product="%s"\} (\S+)$' % (name, re.escape(pid)), body.decode(), re.M)
    return float(m.group(1)) if m else None


def feed(c, pid, images):
    """Inspects the images 4 at a time (store=false: only the scores matter)."""
    out, lock = [], threading.Lock()

    def run(chunk):
        for x in chunk:
            st, js, _, _ = c.req("POST", "/v1/products/%s/inspect?store=false" % pid, x,
                                 "image/png")
            with lock:
                out.append(js["score"] if st == 200 else None)
    ts = [threading.Thread(target=run, args=(images[i::4],)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(None not in out and len(out) == len(images), "%d inspections answered" % len(images))
    return out


def drift_state(c, pid, what, want):
    st, js, _, _ = c.req("GET", "/v1/products/%s/drift" % pid)
    flag = metric(c, "cfa_drift_flag", pid)
    stat = metric(c, "cfa_drift_statistic", pid)
    th.note("drift %s: D %.3f p %.2g median shift %s, n %s/%s (metric D %s flag %s)"
            % (what, js.get("ks_d") or -1, js.get("p_value") or -1, js.get("median_shift"),
               js.get("n_window"), js.get("n_reference"), stat, flag))
    check(st == 200 and js.get("available") and js.get("flag") is want
          and flag == (1.0 if want else 0.0) and stat is not None
          and abs(stat - js["ks_d"]) < 1e-5,
          "%s: drift flag %s in the API and the metric (%s, %s)" % (what, want, js.get("flag"),
                                                                   flag))
    st, p, _, _ = c.req("GET", "/v1/products/" + pid)
    check((p.get("drift") or {}).get("flag") is want, "%s: the summary shows the flag" % what)


def sec_drift(env):
    d = env.daemon("drift", ["--drift-window", str(WINDOW)]).start()
    c = th.Client(d.port, th.ADMIN_KEY)
    trained = env.train[:24]
    th.make_product(c, "dr", trained)
    train(c, "dr", {"holdout": 0.5})
    st, js, _, _ = c.req("GET", "/v1/products/dr/drift")
    check(st == 200 and js.get("available") is False and js.get("n_reference") == 12
          and js.get("flag") is False, "before any inspection: no drift, 12 reference scores "
          "(%s)" % js)
    unseen = (env.train[24:] + env.test_good)[:WINDOW]
    check(len(unseen) == WINDOW, "%d unseen good images" % WINDOW)
    feed(c, "dr", unseen)
    drift_state(c, "dr", "unseen good images", False)
    feed(c, "dr", [brighten(x) for x in unseen])
    drift_state(c, "dr", "brightened", True)
    feed(c, "dr", unseen)
    drift_state(c, "dr", "good again", False)
    feed(c, "dr", [blur(x) for x in unseen])
    drift_state(c, "dr", "blurred", True)
    d.stop()


SECTIONS = {"labels": sec_labels, "regions": sec_regions, "rails": sec_rails,
            "drift": sec_drift}


def add_test_sets(env):
    ds = os.path.join(env.a.data, "magnetic_tile_mini", "test")
    env.test_good, env.test_defect = [], []
    for kind in sorted(os.listdir(ds)):
        for f in sorted(os.listdir(os.path.join(ds, kind))):
            data = open(os.path.join(ds, kind, f), "rb").read()
            (env.test_good if kind == "good" else env.test_defect).append(data)


if __name__ == "__main__":
    orig = th.Env.__init__

    def init(self, a):
        orig(self, a)
        add_test_sets(self)
    th.Env.__init__ = init
    sys.exit(th.run_sections(SECTIONS))
