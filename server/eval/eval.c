/*
 * metrics.c - exact AUROC and AUPRO with radix-sorted scores.
 */
#include "eval.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heatmap.h"

/* ------------------------------------------------------------------------ */
/* Sorting */

/* Maps a float to a key whose unsigned order is the numeric order: -0.0 and
 * 0.0 share a key, every NaN gets the largest one. */
static uint32_t float_key(float f)
{
    uint32_t u;
    if (isnan(f))
        return UINT32_MAX;
    if (f == 0.0f)
        f = 0.0f;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* LSD radix sort, 8 bits a pass over key bits [LO, HI); passes where every key
 * has the same digit are skipped. tmp: n entries of scratch. One macro body
 * serves both element widths, so the two sorts cannot drift apart while each
 * keeps its own element type in the hot loops. */
#define DEFINE_RADIX_SORT(NAME, T, LO, HI)                                     \
    static void NAME(T *a, T *tmp, size_t n)                                   \
    {                                                                          \
        T *src = a, *dst = tmp;                                                \
        for (int shift = (LO); shift < (HI); shift += 8) {                     \
            size_t count[256] = {0};                                           \
            for (size_t i = 0; i < n; i++)                                     \
                count[(src[i] >> shift) & 0xff]++;                             \
            if (n == 0 || count[(src[0] >> shift) & 0xff] == n)                \
                continue;                                                      \
            size_t pos = 0;                                                    \
            for (int d = 0; d < 256; d++) {                                    \
                size_t c = count[d];                                           \
                count[d] = pos;                                                \
                pos += c;                                                      \
            }                                                                  \
            for (size_t i = 0; i < n; i++)                                     \
                dst[count[(src[i] >> shift) & 0xff]++] = src[i];               \
            T *t = src;                                                        \
            src = dst;                                                         \
            dst = t;                                                           \
        }                                                                      \
        if (src != a)                                                          \
            memcpy(a, src, n * sizeof *a);                                     \
    }

DEFINE_RADIX_SORT(radix_sort_u32, uint32_t, 0, 32)
/* Sorts by the upper 32 bits only (the key); the lower half is payload. */
DEFINE_RADIX_SORT(radix_sort_u64_hi, uint64_t, 32, 64)
#undef DEFINE_RADIX_SORT

/* ------------------------------------------------------------------------ */
/* AUROC */

double metrics_auroc(const float *scores, const uint8_t *labels, size_t n)
{
    if (scores == NULL || labels == NULL || n == 0)
        return NAN;
    size_t n_pos = 0;
    for (size_t i = 0; i < n; i++)
        n_pos += labels[i] != 0;
    size_t n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0)
        return NAN;

    /* positives at the front, negatives behind them */
    uint32_t *keys = malloc(n * sizeof *keys);
    uint32_t *tmp = malloc(n * sizeof *tmp);
    if (keys == NULL || tmp == NULL) {
        free(keys);
        free(tmp);
        return NAN;
    }
    size_t ip = 0, in = n_pos;
    for (size_t i = 0; i < n; i++) {
        if (labels[i])
            keys[ip++] = float_key(scores[i]);
        else
            keys[in++] = float_key(scores[i]);
    }
    radix_sort_u32(keys, tmp, n_pos);
    radix_sort_u32(keys + n_pos, tmp, n_neg);
    free(tmp);

    /* For each positive: 2 * (negatives below it) + (negatives equal to it),
     * summed exactly in integers (at most 2 * P * N < 2^63). */
    const uint32_t *pos = keys, *neg = keys + n_pos;
    size_t lo = 0, hi = 0;
    uint64_t twice_u = 0;
    for (size_t i = 0; i < n_pos; i++) {
        uint32_t p = pos[i];
        while (lo < n_neg && neg[lo] < p)
            lo++;
        if (hi < lo)
            hi = lo;
        while (hi < n_neg && neg[hi] <= p)
            hi++;
        twice_u += 2 * (uint64_t)lo + (uint64_t)(hi - lo);
    }
    free(keys);
    return (double)twice_u / (2.0 * (double)n_pos * (double)n_neg);
}

/* ------------------------------------------------------------------------ */
/* AUPRO */

double metrics_aupro(const float *const *maps, const uint8_t *const *masks, const int *w,
                     const int *h, int n_images, double max_fpr)
{
    if (maps == NULL || masks == NULL || w == NULL || h == NULL || n_images <= 0 ||
        !(max_fpr > 0.0 && max_fpr <= 1.0))
        return NAN;

    size_t n_norm = 0, n_def = 0, max_px = 0;
    for (int k = 0; k < n_images; k++) {
        if (maps[k] == NULL || masks[k] == NULL || w[k] <= 0 || h[k] <= 0)
            return NAN;
        size_t npx = (size_t)w[k] * (size_t)h[k];
        if (npx > max_px)
            max_px = npx;
        for (size_t i = 0; i < npx; i++)
            n_def += masks[k][i] != 0;
        n_norm += npx;
    }
    n_norm -= n_def;
    if (n_def == 0 || n_norm == 0)
        return NAN;

    double result = NAN;
    uint32_t *norm = malloc(n_norm * sizeof *norm);
    uint32_t *norm_tmp = malloc(n_norm * sizeof *norm_tmp);
    uint64_t *def = malloc(n_def * sizeof *def);
    uint64_t *def_tmp = malloc(n_def * sizeof *def_tmp);
    uint32_t *labels = malloc(max_px * sizeof *labels);
    double *weight = NULL; /* 1 / size of each region, all images */
    size_t n_regions = 0, cap_regions = 0;
    uint32_t *sizes = NULL;
    if (norm == NULL || norm_tmp == NULL || def == NULL || def_tmp == NULL || labels == NULL)
        goto done;

    size_t in = 0, id = 0;
    for (int k = 0; k < n_images; k++) {
        size_t npx = (size_t)w[k] * (size_t)h[k];
        uint32_t nl = 0;
        if (regions_label(masks[k], w[k], h[k], labels, &nl) != 0)
            goto done;
        if (n_regions + nl > cap_regions) {
            size_t cap = cap_regions * 2 > n_regions + nl ? cap_regions * 2 : n_regions + nl;
            if (cap > UINT32_MAX)
                goto done;
            double *nw = realloc(weight, cap * sizeof *nw);
            if (nw == NULL)
                goto done;
            weight = nw;
            cap_regions = cap;
        }
        uint32_t *sz = realloc(sizes, ((size_t)nl + 1) * sizeof *sz);
        if (sz == NULL)
            goto done;
        sizes = sz;
        memset(sizes, 0, ((size_t)nl + 1) * sizeof *sizes);
        for (size_t i = 0; i < npx; i++) {
            uint32_t l = labels[i];
            if (l == 0) {
                norm[in++] = float_key(maps[k][i]);
            } else {
                sizes[l]++;
                def[id++] = (uint64_t)float_key(maps[k][i]) << 32 |
                            (uint64_t)(n_regions + l - 1);
            }
        }
        for (uint32_t l = 1; l <= nl; l++)
            weight[n_regions + l - 1] = 1.0 / (double)sizes[l];
        n_regions += nl;
    }
    free(labels);
    labels = NULL;
    free(sizes);
    sizes = NULL;
    radix_sort_u32(norm, norm_tmp, n_norm);
    radix_sort_u64_hi(def, def_tmp, n_def);
    free(norm_tmp);
    norm_tmp = NULL;
    free(def_tmp);
    def_tmp = NULL;

    /* Sweep thresholds from the highest score down; all pixels of one score
     * enter together, then the curve gets a point. */
    size_t rn = n_norm, rd = n_def; /* unconsumed: norm[0 .. rn), def[0 .. rd) */
    size_t fp = 0;
    long double overlap = 0.0L; /* sum over regions of covered fraction */
    double prev_fpr = 0.0, prev_pro = 0.0, area = 0.0;
    while (rn > 0 || rd > 0) {
        uint32_t kn = rn > 0 ? norm[rn - 1] : 0;
        uint32_t kd = rd > 0 ? (uint32_t)(def[rd - 1] >> 32) : 0;
        uint32_t t = rn == 0 ? kd : rd == 0 ? kn : (kn > kd ? kn : kd);
        while (rn > 0 && norm[rn - 1] == t) {
            rn--;
            fp++;
        }
        while (rd > 0 && (uint32_t)(def[rd - 1] >> 32) == t) {
            rd--;
            overlap += weight[(uint32_t)def[rd]];
        }
        double fpr = (double)fp / (double)n_norm;
        double pro = (double)(overlap / (long double)n_regions);
        if (fpr >= max_fpr) {
            double pro_cut = pro;
            if (fpr > max_fpr)
                pro_cut = prev_pro + (pro - prev_pro) * (max_fpr - prev_fpr) / (fpr - prev_fpr);
            area += (max_fpr - prev_fpr) * (prev_pro + pro_cut) / 2.0;
            break;
        }
        area += (fpr - prev_fpr) * (prev_pro + pro) / 2.0;
        prev_fpr = fpr;
        prev_pro = pro;
    }
    result = area / max_fpr;

done:
    free(norm);
    free(norm_tmp);
    free(def);
    free(def_tmp);
    free(labels);
    free(weight);
    free(sizes);
    return result;
}
