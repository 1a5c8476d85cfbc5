/* geometry.cpp - where the model's input sits in the image: the centre
 * crop's offsets, the model geometry, maps back to the image's own size and
 * masks to the model's. Plain C++ on purpose: the daemon renders stored
 * model maps and evaluates masks without libtorch. */
#include "internal.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <vector>

void cfa::crop_offsets(const cfa_params &p, int *oy, int *ox)
{
    *oy = p.crop_h ? (p.resize_h - p.crop_h) / 2 : 0;
    *ox = p.crop_w ? (p.resize_w - p.crop_w) / 2 : 0;
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
    /* the same size: a copy. Not the bilinear below, whose zero weight on
     * the next pixel would spread a NaN (an uninspected pixel, roi.h) */
    if (w == model_w && w == resize_w && h == model_h && h == resize_h) {
        float mx = -std::numeric_limits<float>::infinity();
        for (size_t i = 0; i < (size_t)w * (size_t)h; i++) {
            out[i] = model_map[i];
            mx = out[i] > mx ? out[i] : mx;
        }
        if (max_out)
            *max_out = mx;
        return CFA_OK;
    }
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

/* One axis of cfa_model_area: image pixel i (centre i + 0.5) sits at
 * (i + 0.5) * frame / n in the resize frame; it was seen when that lies in
 * [off, off + seen]. */
static void seen_span(int seen, int frame, int n, int *lo, int *hi)
{
    const double off = (frame - seen) / 2, k = (double)n / (double)frame;
    const double a = std::ceil(off * k - 0.5), b = std::floor((off + seen) * k - 0.5) + 1;
    *lo = a < 0 ? 0 : a > n ? n : (int)a;
    *hi = b < *lo ? *lo : b > n ? n : (int)b;
}

extern "C" void cfa_model_area(int model_w, int model_h, int resize_w, int resize_h, int w, int h,
                               int rect[4])
{
    if (model_w <= 0 || model_h <= 0 || resize_w < model_w || resize_h < model_h) {
        rect[0] = rect[1] = 0;
        rect[2] = w;
        rect[3] = h;
        return;
    }
    seen_span(model_w, resize_w, w, &rect[0], &rect[2]);
    seen_span(model_h, resize_h, h, &rect[1], &rect[3]);
}

/* Nearest-neighbour resize then centre crop, matching the image path's
 * geometry (crop offset = floor((resize - crop) / 2)). */
extern "C" void cfa_mask_to_model(const cfa_params *p, const uint8_t *mask, int w, int h,
                                  uint8_t *dst)
{
    int mh, mw;
    cfa_model_geometry(p, &mh, &mw);
    int oy, ox;
    cfa::crop_offsets(*p, &oy, &ox);
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
