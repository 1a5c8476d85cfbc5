/* Unit tests of the engine's arithmetic against small hand-computed tensors:
 * loss and its gradient, patch scores, blur, descriptor identity, k-means,
 * artefact round trip and refusal. No backbone needed. */
#include "engine.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

static int g_failed = 0, g_passed = 0;
#define EXPECT(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            g_failed++;                                                         \
        } else                                                                  \
            g_passed++;                                                         \
    } while (0)
#define NEAR(a, b, tol) EXPECT(std::fabs((double)(a) - (double)(b)) <= (tol))

using namespace cfa;

static at::Tensor T(std::vector<float> v, std::vector<int64_t> shape)
{
    return at::from_blob(v.data(), shape, at::kFloat).clone();
}

/* z = {(0,0)}, bank = {(1,0), (0,2), (3,0), (0,-4)}; squared distances 1, 4, 9, 16.
 * K = 1, J = 2, r = 0.5 (r2 = 0.25), alpha = 0.1, scale = 1:
 *   L_att = max(0, 1 - 0.25) = 0.75
 *   L_rep = mean(max(0, 0.25 - 4 - 0.1), max(0, 0.25 - 9 - 0.1)) = 0
 * With r = 3 (r2 = 9): L_att = max(0, 1 - 9) = 0; L_rep = mean(9 - 4 - 0.1, 9 - 9 - 0.1 -> 0)
 *   = 4.9 / 2 = 2.45, and the hard negatives are neighbours 2..3 (d = 4, 9), not
 *   d[:, J:] = (9, 16) as the public codes take them. */
static void test_loss()
{
    cfa_params p = cfa_default_params();
    p.K = 1, p.J = 2, p.r = 0.5f, p.alpha = 0.1f, p.loss_scale = 1.0f;
    at::Tensor z = T({0, 0}, {1, 2});
    at::Tensor bank = T({1, 0, 0, 2, 3, 0, 0, -4}, {4, 2});
    at::Tensor bsq = (bank * bank).sum(1);
    at::Tensor g;
    double L = loss_and_grad(z, bank, bsq, p, &g);
    NEAR(L, 0.75, 1e-6);
    /* dL/dz = 2 (z - c_1) * 1 = (-2, 0) */
    NEAR(g[0][0].item<float>(), -2.0, 1e-6);
    NEAR(g[0][1].item<float>(), 0.0, 1e-6);

    p.r = 3.0f;
    L = loss_and_grad(z, bank, bsq, p, &g);
    NEAR(L, 2.45, 1e-5);
    /* only the neighbour at d=4 (0,2) is active in L_rep with weight -1/2:
     * dL/dz = 2 * (-1/2) * (z - (0,2)) = (0, 2) */
    NEAR(g[0][0].item<float>(), 0.0, 1e-6);
    NEAR(g[0][1].item<float>(), 2.0, 1e-5);

    /* the loss scale multiplies both terms */
    p.loss_scale = 1000.0f;
    NEAR(loss_and_grad(z, bank, bsq, p, nullptr), 2450.0, 1e-2);
}

/* The hand-written gradient equals autograd through the full distance matrix. */
static void test_grad_matches_autograd()
{
    cfa_params p = cfa_default_params();
    p.K = 2, p.J = 2, p.r = 0.3f, p.alpha = 0.05f, p.loss_scale = 1.0f;
    Rng rng(7);
    std::vector<float> zv(12 * 5), bv(9 * 5);
    for (auto &v : zv)
        v = (float)rng.normal() * 0.5f;
    for (auto &v : bv)
        v = (float)rng.normal() * 0.5f;
    at::Tensor z = T(zv, {12, 5}), bank = T(bv, {9, 5});
    at::Tensor g;
    double L = loss_and_grad(z, bank, (bank * bank).sum(1), p, &g);

    at::Tensor za = z.clone().set_requires_grad(true);
    at::Tensor d = (za.unsqueeze(1) - bank.unsqueeze(0)).pow(2).sum(2);
    at::Tensor top = std::get<0>(d.topk(p.K + p.J, 1, false, true));
    double r2 = (double)p.r * p.r;
    at::Tensor la = (top.narrow(1, 0, p.K) - r2).clamp_min(0).mean();
    at::Tensor lr = (r2 - top.narrow(1, p.K, p.J) - p.alpha).clamp_min(0).mean();
    at::Tensor loss = la + lr;
    loss.backward();
    NEAR(L, loss.item<double>(), 1e-5);
    EXPECT(at::allclose(g, za.grad(), 1e-4, 1e-5));
}

/* Scores: d = (1, 2, 3) -> softmin(d)[0] * d[0] = e^-1 / (e^-1 + e^-2 + e^-3). */
static void test_patch_scores()
{
    at::Tensor z = T({0, 0}, {1, 2});
    at::Tensor bank = T({1, 0, 0, 2, -3, 0, 10, 10}, {4, 2});
    at::Tensor s = patch_scores(z, bank, (bank * bank).sum(1), 3);
    double e1 = std::exp(-1.0), e2 = std::exp(-2.0), e3 = std::exp(-3.0);
    NEAR(s[0].item<float>(), e1 / (e1 + e2 + e3) * 1.0, 1e-6);
    /* a patch on a centre scores 0 */
    at::Tensor s0 = patch_scores(T({1, 0}, {1, 2}), bank, (bank * bank).sum(1), 3);
    NEAR(s0[0].item<float>(), 0.0, 1e-3);
}

/* Blur keeps a constant map constant, conserves mass away from borders, and
 * its kernel has 2 * int(4 sigma + 0.5) + 1 taps. */
static void test_blur()
{
    at::Tensor c = at::full({1, 1, 40, 40}, 2.5f);
    EXPECT(at::allclose(gaussian_blur(c, 4.0f), c, 1e-5, 1e-5));
    at::Tensor d = at::zeros({1, 1, 81, 81});
    d[0][0][40][40] = 1.0f;
    at::Tensor b = gaussian_blur(d, 4.0f);
    NEAR(b.sum().item<float>(), 1.0, 1e-4);
    /* 1-D Gaussian at 0 with sigma 4 (normalised over 33 taps) squared */
    double w0 = 0;
    for (int i = -16; i <= 16; i++)
        w0 += std::exp(-0.5 * i * i / 16.0);
    NEAR(b[0][0][40][40].item<float>(), 1.0 / (w0 * w0), 1e-6);
    EXPECT(b[0][0][40][40 + 17].item<float>() == 0.0f); /* beyond the 16-tap radius */
}

/* conv1x1(cat(up(p1), up(p2), up(p3), xy)) == the projected-then-upsampled form. */
static void test_descriptor_identity()
{
    Rng rng(3);
    int ch[3] = {3, 4, 5};
    std::vector<at::Tensor> p = {at::randn({2, 3, 8, 8}), at::randn({2, 4, 4, 4}), at::randn({2, 5, 2, 2})};
    at::Tensor W = at::randn({6, 3 + 4 + 5 + 2}), b = at::randn({6});
    at::Tensor fast = descriptor(p, W, b, ch);
    at::Tensor cat = at::cat({p[0], at::upsample_bilinear2d(p[1], {8, 8}, false),
                              at::upsample_bilinear2d(p[2], {8, 8}, false),
                              coord_map(8, 8, c10::kCPU).unsqueeze(0).expand({2, 2, 8, 8})},
                             1);
    at::Tensor ref = at::conv2d(cat, W.view({6, 14, 1, 1}), b);
    EXPECT(at::allclose(fast, ref, 1e-4, 1e-4));
    /* coordinates run from -1 to 1, x first */
    at::Tensor xy = coord_map(3, 5, c10::kCPU);
    NEAR(xy[0][0][0].item<float>(), -1.0, 0);
    NEAR(xy[0][0][4].item<float>(), 1.0, 0);
    NEAR(xy[1][2][0].item<float>(), 1.0, 0);
}

static void test_kmeans()
{
    /* two tight clusters around (0,0) and (10,10) */
    std::vector<float> v;
    Rng r(5);
    for (int i = 0; i < 20; i++) {
        float c = i < 10 ? 0.0f : 10.0f;
        v.push_back(c + 0.01f * (float)r.normal());
        v.push_back(c + 0.01f * (float)r.normal());
    }
    Rng rng(11);
    at::Tensor cent = kmeans(T(v, {20, 2}), 2, 20, rng);
    at::Tensor s = std::get<0>(cent.sum(1).sort());
    NEAR(s[0].item<float>(), 0.0, 0.05);
    NEAR(s[1].item<float>(), 20.0, 0.05);
    /* determinism */
    Rng a(11), b(11);
    EXPECT(at::equal(kmeans(T(v, {20, 2}), 3, 5, a), kmeans(T(v, {20, 2}), 3, 5, b)));
}

static void test_geometry()
{
    cfa_params p = cfa_default_params(); /* 256 -> crop 224 */
    /* a 2 x 2 mask, left column set, maps to the left half of the model frame */
    uint8_t mask[4] = {255, 0, 255, 0};
    std::vector<uint8_t> dst(224 * 224);
    cfa_mask_to_model(&p, mask, 2, 2, dst.data());
    EXPECT(dst[0] == 255 && dst[111] == 255 && dst[112] == 0 && dst[223] == 0);
    /* model map back into the resize frame: the crop sits at offset 16 and
     * the border replicates its edge */
    at::Tensor m = at::arange(224 * 224, at::kFloat).view({1, 1, 224, 224});
    at::Tensor f = uncrop(m, p);
    EXPECT(f.size(2) == 256 && f.size(3) == 256);
    EXPECT(at::equal(f.narrow(2, 16, 224).narrow(3, 16, 224), m));
    EXPECT(f[0][0][0][0].item<float>() == 0.0f && f[0][0][255][255].item<float>() == 224.0f * 224 - 1);
}

/* cfa_map_to_image (plain C loops) against libtorch doing the same: uncrop by
 * replication, then upsample_bilinear2d, for upsizing, downsizing, odd sizes
 * and no crop; the maximum it reports is the map's. */
static void test_map_to_image()
{
    struct { int rw, rh, mw, mh, w, h; } cases[] = {
        {256, 256, 224, 224, 900, 900}, {256, 256, 224, 224, 97, 61}, {256, 256, 224, 224, 256, 256},
        {40, 30, 40, 30, 83, 17},       {33, 21, 20, 15, 1, 3},
    };
    for (auto &c : cases) {
        at::Tensor m = at::rand({1, 1, c.mh, c.mw}, at::kFloat);
        cfa_params p = cfa_default_params();
        p.resize_w = c.rw, p.resize_h = c.rh;
        p.crop_w = c.mw == c.rw ? 0 : c.mw, p.crop_h = c.mh == c.rh ? 0 : c.mh;
        at::Tensor want = at::upsample_bilinear2d(uncrop(m, p), {c.h, c.w}, false).contiguous();
        std::vector<float> got((size_t)c.w * c.h);
        float mx = 0;
        EXPECT(cfa_map_to_image(m.data_ptr<float>(), c.mw, c.mh, c.rw, c.rh, c.w, c.h, got.data(),
                                &mx) == CFA_OK);
        at::Tensor g = at::from_blob(got.data(), {1, 1, c.h, c.w}, at::kFloat);
        NEAR((g - want).abs().max().item<float>(), 0.0, 1e-6);
        EXPECT(mx == g.max().item<float>());
    }
    float one = 1, out[4];
    EXPECT(cfa_map_to_image(&one, 1, 1, 1, 1, 2, 2, out, nullptr) == CFA_OK && out[3] == 1.0f);
    EXPECT(cfa_map_to_image(&one, 2, 1, 1, 1, 2, 2, out, nullptr) == CFA_ERR_INVALID_ARG);
    EXPECT(cfa_map_to_image(nullptr, 1, 1, 1, 1, 2, 2, out, nullptr) == CFA_ERR_INVALID_ARG);
}

/* cfa_model_area: the pixels whose centres the crop covers. 256 -> 224 hides
 * 16 of 256 on each side: 6.25% of any image's side; no crop hides nothing. */
static void test_model_area()
{
    int r[4];
    cfa_model_area(224, 224, 256, 256, 256, 256, r);
    EXPECT(r[0] == 16 && r[1] == 16 && r[2] == 240 && r[3] == 240);
    cfa_model_area(224, 224, 256, 256, 512, 1024, r); /* (16 * 2, 16 * 4) */
    EXPECT(r[0] == 32 && r[1] == 64 && r[2] == 480 && r[3] == 960);
    cfa_model_area(224, 224, 256, 256, 300, 200, r); /* 18.75 - 0.5 -> 19; 12.5 - 0.5 -> 12 */
    EXPECT(r[0] == 19 && r[1] == 12 && r[2] == 281 && r[3] == 188);
    cfa_model_area(256, 304, 256, 304, 300, 357, r);
    EXPECT(r[0] == 0 && r[1] == 0 && r[2] == 300 && r[3] == 357);
    /* every pixel inside maps into the crop, every one outside does not */
    for (int w : {97, 250, 301}) {
        cfa_model_area(224, 224, 256, 256, w, w, r);
        for (int x = 0; x < w; x++) {
            double f = (x + 0.5) * 256.0 / w;
            EXPECT((x >= r[0] && x < r[2]) == (f >= 16 && f <= 240));
        }
    }
}

/* Build a small model by hand and round-trip it through the artefact. */
static cfa_model *small_model()
{
    cfa_model *m = new cfa_model();
    m->params = cfa_default_params();
    m->backbone_sha256 = std::string(64, 'a');
    m->channels[0] = 2, m->channels[1] = 3, m->channels[2] = 4;
    m->d_out = 5, m->grid_h = 4, m->grid_w = 4, m->n_centres = 8;
    m->train_loss = 1.25;
    Rng r(1);
    m->weight.resize(5 * (9 + 2));
    m->bias.resize(5);
    m->bank.resize(8 * 5);
    for (auto *v : {&m->weight, &m->bias, &m->bank})
        for (float &f : *v)
            f = (float)r.normal();
    return m;
}

static void test_artefact()
{
    cfa_model *m = small_model();
    void *buf = nullptr;
    size_t len = 0;
    EXPECT(cfa_model_save(m, &buf, &len) == CFA_OK);
    cfa_model *back = nullptr;
    EXPECT(cfa_model_load(buf, len, nullptr, &back) == CFA_OK);
    if (back) {
        EXPECT(back->weight == m->weight && back->bias == m->bias && back->bank == m->bank);
        EXPECT(back->backbone_sha256 == m->backbone_sha256 && back->train_loss == 1.25);
        void *buf2 = nullptr;
        size_t len2 = 0;
        EXPECT(cfa_model_save(back, &buf2, &len2) == CFA_OK);
        EXPECT(len2 == len && memcmp(buf, buf2, len) == 0); /* bit-exact */
        cfa_free(buf2);
    }
    cfa_model_free(back);
    /* any flipped byte is caught; every truncation is refused */
    unsigned char *c = (unsigned char *)buf;
    for (size_t i = 0; i < len; i += 7) {
        c[i] ^= 0x40;
        cfa_model *x = nullptr;
        EXPECT(cfa_model_load(buf, len, nullptr, &x) != CFA_OK && x == nullptr);
        c[i] ^= 0x40;
    }
    for (size_t l = 0; l < len; l += 3) {
        cfa_model *x = nullptr;
        EXPECT(cfa_model_load(buf, l, nullptr, &x) != CFA_OK);
    }
    cfa_free(buf);
    cfa_model_free(m);
    cfa_model_free(nullptr);

    /* a CFA++ model carries its resize-only partner through the artefact */
    cfa_model *e = small_model();
    e->params.ensemble = 1;
    e->partner.reset(small_model());
    e->partner->params.crop_h = e->partner->params.crop_w = 0;
    e->partner->bias[0] = 42.0f;
    EXPECT(cfa_model_save(e, &buf, &len) == CFA_OK);
    cfa_model *eb = nullptr;
    EXPECT(cfa_model_load(buf, len, nullptr, &eb) == CFA_OK);
    EXPECT(eb && eb->partner && eb->partner->bias[0] == 42.0f && eb->partner->params.crop_h == 0);
    cfa_model_free(eb);
    cfa_free(buf);
    /* a partner that is not resize-only is refused */
    e->partner->params.crop_h = e->partner->params.crop_w = 224;
    EXPECT(cfa_model_save(e, &buf, &len) == CFA_OK);
    eb = nullptr;
    EXPECT(cfa_model_load(buf, len, nullptr, &eb) == CFA_ERR_FORMAT && eb == nullptr);
    cfa_free(buf);
    cfa_model_free(e);
}

int main()
{
    test_loss();
    test_grad_matches_autograd();
    test_patch_scores();
    test_blur();
    test_descriptor_identity();
    test_kmeans();
    test_geometry();
    test_map_to_image();
    test_model_area();
    test_artefact();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
