/* edge.cpp - the edge profile (issue 13): how much higher a model's map runs
 * near the edges of the backbone's input than inside it, on good images, so
 * that scoring can take that rise out.
 *
 * Why: the backbone sees zero padding at its input's edges, so the patches
 * there differ from every interior patch, and they are few: the compressed
 * memory bank (k-means of the per-position means, gamma_c) keeps them poorly.
 * Good parts then peak at the edges (magnetic_tile, whole image: 187 of 191
 * good test images have their maximum in the outer 6% band) and the image
 * score mostly measures the edge, not the part. The profile is a function
 * of the distance to the nearest edge only (no position, so no alignment of
 * parts is assumed), a few dozen ratios fitted over every pixel of the
 * calibration images: too few parameters to overfit them. A defect at the
 * edge still rises above the edge's own normal level. Only the outer
 * CFA_EDGE_BAND pixels are corrected: that is where the padding enters the
 * features; farther in the rise is the part's (docs/BENCHMARKS.md). Plain C++: the
 * daemon fits it without libtorch. */
#include "internal.h"

#include <algorithm>
#include <cmath>

/* Distance of (x, y) to the nearest edge of a w x h map, capped at n - 1. */
static int edge_bin(int x, int y, int w, int h, int n)
{
    int d = std::min(std::min(x, w - 1 - x), std::min(y, h - 1 - y));
    return std::min(d, n - 1);
}

extern "C" int cfa_edge_profile_len(int model_w, int model_h)
{
    /* a quarter of the shorter side: beyond it, the interior the ratios
     * are taken against (half the map's area or more) */
    int n = std::min(model_w, model_h) / 4 + 1;
    return std::max(2, std::min(n, CFA_EDGE_PROFILE_MAX));
}

extern "C" void cfa_edge_profile_accumulate(const cfa_result *r, int n, double *sum, double *count)
{
    if (!r || !r->model_map || n < 2 || n > CFA_EDGE_PROFILE_MAX)
        return;
    const int w = r->model_width, h = r->model_height;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = r->model_map[(size_t)y * w + x];
            if (!std::isfinite(v))
                continue;
            int b = edge_bin(x, y, w, h, n);
            sum[b] += v;
            count[b] += 1;
        }
}

extern "C" int cfa_edge_profile_finish(const double *sum, const double *count, int n, float *ratio)
{
    if (n < 2 || n > CFA_EDGE_PROFILE_MAX || !(count[n - 1] > 0) || !(sum[n - 1] > 0))
        return -1;
    const double inner = sum[n - 1] / count[n - 1];
    for (int i = 0; i < n; i++) {
        double r = count[i] > 0 ? sum[i] / count[i] / inner : 1.0;
        /* only a rise is taken out: dividing by less than 1 would amplify
         * whatever the edge holds; and only within the band the padding
         * reaches (CFA_EDGE_BAND): farther in, a rise is the part's own */
        ratio[i] = (float)(i < CFA_EDGE_BAND && std::isfinite(r) && r > 1.0 ? r : 1.0);
    }
    return 0;
}

extern "C" cfa_status cfa_model_set_edge_profile(cfa_model *m, const float *ratio, int n)
{
    if (!m || n < 0 || n == 1 || n > CFA_EDGE_PROFILE_MAX || (n > 0 && !ratio))
        return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_model_set_edge_profile: bad arguments");
    for (int i = 0; i < n; i++)
        if (!(std::isfinite(ratio[i]) && ratio[i] >= 1.0f && ratio[i] <= 1e6f))
            return cfa_fail(CFA_ERR_INVALID_ARG, "cfa_model_set_edge_profile: ratios must be in [1, 1e6]");
    m->edge_ratio.assign(ratio, ratio + n);
    return CFA_OK;
}

void cfa::apply_edge_profile(const cfa_model &m, float *map, int w, int h)
{
    const int n = (int)m.edge_ratio.size();
    if (n < 2)
        return;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            map[(size_t)y * w + x] /= m.edge_ratio[(size_t)edge_bin(x, y, w, h, n)];
}
