#!/usr/bin/python3
"""store_cost.py - what storing an inspection durably costs, per request.

Starts SERVER on 127.0.0.1 port 0 with a temp data dir (under build/), trains
a product (20 good images of magnetic_tile_mini, 1 epoch, gamma 4/4), then
POSTs IMAGE 4 x 12 times, one at a time, alternating ?store=false and the
default (files kept), and prints medians of the server's timings_ms.encode
(scored -> files stored), its total, the client's wall time, and wall minus
total (the commit, the JSON and HTTP). Speed is never asserted.

  tests/bench/store_cost.py SERVER IMAGE.jpg
"""
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import daemon_proc
server = sys.argv[1]
KEY = "cost-" + uuid.uuid4().hex
tmp = tempfile.mkdtemp(prefix="cfa-cost-", dir=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
env = dict(os.environ, CFA_ADMIN_KEY=KEY)
proc, port, log = daemon_proc.spawn([server, "--listen", "127.0.0.1:0", "--data-dir", tmp + "/var", "--backbone", os.path.expanduser("~/.cache/cfa/resnet50_imagenet.pt")], env, tmp + "/log")
c = daemon_proc.Client(port, KEY)
c.req("POST", "/v1/products", {"id": "p"})
d = "/work/shared/data/magnetic_tile_mini/train/good"
b = "bnd" + uuid.uuid4().hex
body = bytearray()
for i, f in enumerate(sorted(os.listdir(d))[:20]):
    body += ("--%s\r\nContent-Disposition: form-data; name=\"i%d\"; filename=\"%s\"\r\nContent-Type: image/png\r\n\r\n" % (b, i, f)).encode() + open(os.path.join(d, f), "rb").read() + b"\r\n"
body += ("--%s--\r\n" % b).encode()
assert c.req("POST", "/v1/products/p/images", bytes(body), "multipart/form-data; boundary=" + b)[0] == 201
st, js, _, _ = c.req("POST", "/v1/products/p/train", {"epochs": 1, "gamma_c": 4, "gamma_d": 4})
job = js["job"]["id"]
while c.req("GET", "/v1/jobs/" + job)[1]["state"] != "succeeded":
    time.sleep(0.5)
img = open(sys.argv[2], "rb").read()
res = {}
for q in ["?store=false", "", "?store=false", ""]:
    for i in range(12):
        t0 = time.time()
        st, js, _, _ = c.req("POST", "/v1/products/p/inspect" + q, img, "image/jpeg")
        wall = (time.time() - t0) * 1000
        assert st == 200, st
        res.setdefault(q, []).append((js["timings_ms"]["encode"], js["timings_ms"]["total"], wall))
for q, v in res.items():
    print("%-14s n=%d encode median %.1f ms, server total median %.1f ms, client wall median %.1f ms, wall - total median %.1f ms" % (q or "store=true", len(v), statistics.median(x[0] for x in v), statistics.median(x[1] for x in v), statistics.median(x[2] for x in v), statistics.median(x[2]-x[1] for x in v)))
daemon_proc.stop(proc, log)
subprocess.run(["rm", "-rf", tmp])
