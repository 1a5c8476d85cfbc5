/* status.cpp - status strings, the per-thread error message, the log sink. */
#include "internal.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <vector>

static thread_local std::string g_last_error;
static std::mutex g_log_mu;
static cfa_log_fn g_log_fn = nullptr;
static void *g_log_user = nullptr;

extern "C" const char *cfa_status_str(cfa_status s)
{
    switch (s) {
#define CFA_X_CASE(name, msg) \
    case name:                \
        return msg;
        CFA_STATUS_TABLE(CFA_X_CASE)
#undef CFA_X_CASE
    default:
        return "unknown status";
    }
}

extern "C" const char *cfa_last_error(void) { return g_last_error.c_str(); }

extern "C" cfa_status cfa_device_parse(const char *spec, char *dev, size_t devlen, int *precision)
{
    const std::string full = spec && *spec ? spec : "cpu";
    std::string d = full, prec = "fp32";
    const size_t slash = full.find('/');
    if (slash != std::string::npos) {
        d = full.substr(0, slash);
        prec = full.substr(slash + 1);
    }
    bool cuda = false;
    if (d != "cpu") {
        const bool prefix = d.size() > 5 && d.compare(0, 5, "cuda:") == 0;
        const char *n = prefix ? d.c_str() + 5 : "";
        char *end = nullptr;
        long idx = *n >= '0' && *n <= '9' ? strtol(n, &end, 10) : -1;
        if (idx < 0 || idx > 63 || end == nullptr || *end != '\0')
            return cfa_fail(CFA_ERR_DEVICE, "unknown device '" + d + "' (use cpu or cuda:N)");
        cuda = true;
    }
    int p;
    if (prec == "fp32")
        p = 0;
    else if (prec == "fp16")
        p = 1;
    else if (prec == "bf16")
        p = 2;
    else
        return cfa_fail(CFA_ERR_DEVICE, "unknown precision '" + prec + "' (use fp32, fp16 or bf16)");
    if (p == 1 && !cuda)
        return cfa_fail(CFA_ERR_DEVICE, "fp16 needs a CUDA device (libtorch's CPU convolutions "
                                        "have no float16); use " + d + "/bf16 or fp32");
    if (dev != nullptr) {
        if (devlen <= d.size())
            return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_device_parse: buffer too small");
        memcpy(dev, d.c_str(), d.size() + 1);
    }
    if (precision != nullptr)
        *precision = p;
    return CFA_OK;
}

extern "C" void cfa_free(void *p) { free(p); }

extern "C" void cfa_log_set(cfa_log_fn fn, void *user)
{
    std::lock_guard<std::mutex> lk(g_log_mu);
    g_log_fn = fn;
    g_log_user = user;
}

cfa_status cfa_fail(cfa_status s, const std::string &msg)
{
    g_last_error = msg.empty() ? std::string(cfa_status_str(s)) : msg;
    return s;
}

void cfa_clear_error() { g_last_error.clear(); }

void cfa_log(int level, const char *fmt, ...)
{
    cfa_log_fn fn;
    void *user;
    {
        std::lock_guard<std::mutex> lk(g_log_mu);
        fn = g_log_fn;
        user = g_log_user;
    }
    if (!fn)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(level, buf, user);
}

extern "C" cfa_params cfa_default_params(void)
{
    cfa_params p;
    p.resize_h = 256;
    p.resize_w = 256;
    p.crop_h = 224;
    p.crop_w = 224;
    p.gamma_c = 1;
    p.gamma_d = 1;
    p.bank = CFA_BANK_MEAN;
    p.ema_beta = 0.9f;
    p.kmeans_iters = 30;
    p.K = 3;
    p.J = 3;
    p.r = 1e-5f;
    p.alpha = 0.1f;
    p.loss_scale = 1000.0f;
    p.epochs = 30;
    p.batch_size = 4;
    p.lr = 1e-3f;
    p.weight_decay = 5e-4f;
    p.blur_sigma = 4.0f;
    p.seed = 1024;
    p.feature_half = 0;
    p.ensemble = 0;
    return p;
}

std::string cfa_params_check(const cfa_params &p)
{
    if (p.resize_h < 16 || p.resize_w < 16 || p.resize_h > 4096 || p.resize_w > 4096)
        return "resize must be within 16..4096";
    if (p.crop_h < 0 || p.crop_w < 0 || p.crop_h > p.resize_h || p.crop_w > p.resize_w)
        return "crop must be within 0..resize";
    if ((p.crop_h == 0) != (p.crop_w == 0))
        return "crop_h and crop_w must both be 0 or both positive";
    if (p.crop_h != 0 && (p.crop_h < 16 || p.crop_w < 16))
        return "crop must be at least 16";
    if (p.gamma_c < 1 || p.gamma_c > 1024 || p.gamma_d < 1 || p.gamma_d > 1024)
        return "gamma_c and gamma_d must be within 1..1024";
    if (p.bank != CFA_BANK_MEAN && p.bank != CFA_BANK_EMA)
        return "unknown bank method";
    if (!(p.ema_beta >= 0.0f && p.ema_beta <= 1.0f))
        return "ema_beta must be within 0..1";
    if (p.kmeans_iters < 0 || p.kmeans_iters > 10000)
        return "kmeans_iters must be within 0..10000";
    if (p.K < 1 || p.J < 0 || p.K > 64 || p.J > 64)
        return "K must be 1..64 and J 0..64";
    if (!(p.r >= 0.0f) || !(p.alpha >= 0.0f) || !(p.loss_scale > 0.0f))
        return "r and alpha must be >= 0, loss_scale > 0";
    if (p.epochs < 0 || p.epochs > 100000)
        return "epochs must be within 0..100000";
    if (p.batch_size < 1 || p.batch_size > 1024)
        return "batch_size must be within 1..1024";
    if (!(p.lr > 0.0f) || !(p.weight_decay >= 0.0f))
        return "lr must be > 0 and weight_decay >= 0";
    if (!(p.blur_sigma >= 0.0f) || p.blur_sigma > 64.0f)
        return "blur_sigma must be within 0..64";
    if (p.feature_half != 0 && p.feature_half != 1)
        return "feature_half must be 0 or 1";
    if (p.ensemble != 0 && p.ensemble != 1)
        return "ensemble must be 0 or 1";
    if (p.ensemble && p.crop_h == 0)
        return "ensemble (CFA++) pairs a centre-crop model with a resize-only one: it needs a crop";
    return "";
}

std::string cfa_sha256_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return "";
    sha256_ctx c;
    sha256_init(&c);
    std::vector<unsigned char> buf(1 << 20);
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), f)) > 0)
        sha256_update(&c, buf.data(), n);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err)
        return "";
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_final(&c, d);
    char hex[SHA256_HEX_LEN];
    sha256_hex(d, sizeof d, hex);
    return hex;
}

extern "C" void cfa_model_geometry(const cfa_params *p, int *model_h, int *model_w)
{
    *model_h = p->crop_h ? p->crop_h : p->resize_h;
    *model_w = p->crop_w ? p->crop_w : p->resize_w;
}

/* One axis of a bilinear resize from frame size `in` to `out` (PyTorch's
 * align_corners=False rule: src = (dst + 0.5) * in / out - 0.5, clamped at 0),
 * with the frame index mapped into the model's crop [off, off + n) by
 * clamping: the crop undone by replicating its border. */
static void axis_weights(int in, int out, int off, int n, int *i0, int *i1, float *l0, float *l1)
{
    /* a float scale and the source index in double: this matches
     * libtorch 1.13's CPU kernel to a float rounding (unit.core_math) */
    const float scale = (float)in / (float)out;
    for (int d = 0; d < out; d++) {
        double real = (double)scale * ((double)d + 0.5) - 0.5;
        if (real < 0.0)
            real = 0.0;
        int a = (int)real;
        if (a > in - 1)
            a = in - 1;
        float lam = (float)(real - (double)a);
        lam = lam < 0.0f ? 0.0f : lam > 1.0f ? 1.0f : lam;
        int b = a < in - 1 ? a + 1 : a;
        a -= off;
        b -= off;
        i0[d] = a < 0 ? 0 : a > n - 1 ? n - 1 : a;
        i1[d] = b < 0 ? 0 : b > n - 1 ? n - 1 : b;
        l1[d] = lam;
        l0[d] = 1.0f - lam;
    }
}

extern "C" cfa_status cfa_map_to_image(const float *model_map, int model_w, int model_h,
                                       int resize_w, int resize_h, int w, int h, float *out,
                                       float *max_out)
{
    if (!model_map || !out || model_w <= 0 || model_h <= 0 || w <= 0 || h <= 0 ||
        resize_w < model_w || resize_h < model_h || (int64_t)w * h > ((int64_t)1 << 31))
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_map_to_image: bad geometry");
    try {
        std::vector<int> x0(w), x1(w), y0(h), y1(h);
        std::vector<float> lx0(w), lx1(w), ly0(h), ly1(h);
        axis_weights(resize_w, w, (resize_w - model_w) / 2, model_w, x0.data(), x1.data(),
                     lx0.data(), lx1.data());
        axis_weights(resize_h, h, (resize_h - model_h) / 2, model_h, y0.data(), y1.data(),
                     ly0.data(), ly1.data());
        float mx = -std::numeric_limits<float>::infinity();
        for (int y = 0; y < h; y++) {
            const float *r0 = model_map + (size_t)y0[y] * (size_t)model_w;
            const float *r1 = model_map + (size_t)y1[y] * (size_t)model_w;
            const float a = ly0[y], b = ly1[y];
            float *o = out + (size_t)y * (size_t)w;
            for (int x = 0; x < w; x++) {
                float v = a * (lx0[x] * r0[x0[x]] + lx1[x] * r0[x1[x]]) +
                          b * (lx0[x] * r1[x0[x]] + lx1[x] * r1[x1[x]]);
                o[x] = v;
                mx = v > mx ? v : mx;
            }
        }
        if (max_out)
            *max_out = mx;
        return CFA_OK;
    } catch (const std::bad_alloc &) {
        return cfa_fail(CFA_ERR_NOMEM, "cfa_map_to_image: out of memory");
    }
}

/* Nearest-neighbour resize then centre crop, matching the image path's
 * geometry (crop offset = floor((resize - crop) / 2)). */
extern "C" void cfa_mask_to_model(const cfa_params *p, const uint8_t *mask, int w, int h,
                                  uint8_t *dst)
{
    int mh, mw;
    cfa_model_geometry(p, &mh, &mw);
    int oy = p->crop_h ? (p->resize_h - p->crop_h) / 2 : 0;
    int ox = p->crop_w ? (p->resize_w - p->crop_w) / 2 : 0;
    for (int y = 0; y < mh; y++) {
        /* PyTorch 'nearest': src = floor(dst * in / out) */
        long sy = (long)((int64_t)(y + oy) * h / p->resize_h);
        if (sy >= h)
            sy = h - 1;
        for (int x = 0; x < mw; x++) {
            long sx = (long)((int64_t)(x + ox) * w / p->resize_w);
            if (sx >= w)
                sx = w - 1;
            dst[(size_t)y * mw + x] = mask[(size_t)sy * w + sx];
        }
    }
}
