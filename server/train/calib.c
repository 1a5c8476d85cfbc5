/* calib.c - holdout split and threshold calibration (see calib.h). */
#include "calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int calib_holdout_count(int n, double holdout)
{
    if (!(holdout > 0) || n < 3)
        return 0;
    int h = (int)floor(holdout * n);
    if (n >= 10 && h < 2)
        h = 2;
    if (h < 1)
        h = 1;
    if (h > n - 1)
        h = n - 1;
    return h;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void calib_shuffle(int *order, int n, uint64_t seed)
{
    uint64_t rng = seed ^ 0x5eedULL;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int k = (int)(splitmix(&rng) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[k];
        order[k] = t;
    }
}

/* A total order on NaN-free floats (calib_threshold rejects NaN first). */
static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int calib_threshold(float *scores, int m, double target_far, double margin, calib_result *out)
{
    memset(out, 0, sizeof *out);
    if (m < 1)
        return -1;
    for (int i = 0; i < m; i++)
        out->n_nan += isnan(scores[i]) != 0;
    if (out->n_nan > 0)
        return -1;
    qsort(scores, (size_t)m, sizeof *scores, cmp_float);
    int k = (int)ceil((1.0 - target_far) * m) - 1;
    if (k < 0)
        k = 0;
    if (k > m - 1)
        k = m - 1;
    double mean = 0;
    for (int i = 0; i < m; i++)
        mean += scores[i];
    out->k = k;
    out->q = scores[k];
    out->max = scores[m - 1];
    out->mean = mean / m;
    out->threshold = (double)nextafterf((float)((double)scores[k] * margin), INFINITY);
    return 0;
}

/* the next float above v: scores are floats, so "score >= threshold" reads
 * the same in the daemon and in a client that parses the JSON */
static double float_above(double v)
{
    return (double)nextafterf((float)v, INFINITY);
}

/* the tail's part of calib_decide: a bound, or T unchanged without one */
static double fitted(const calib_decision *d, double t, double far, double margin)
{
    if (!d->fitted || !(far > 0))
        return t;
    double b = calib_fit_bound(&d->fit, far, CALIB_CONF);
    return isfinite(b) && float_above(b * margin) > t ? float_above(b * margin) : t;
}

int calib_decide(float *scores, int m, double target_far, double target_far_ng, double margin,
                 calib_decision *out)
{
    memset(out, 0, sizeof *out);
    if (calib_threshold(scores, m, target_far, margin, &out->q) != 0)
        return -1;
    out->threshold_max = float_above((double)out->q.max * margin);
    out->fitted = m >= CALIB_MIN_FIT && calib_fit_lognormal(scores, m, &out->fit) == 0;
    if (!out->fitted)
        out->warnings |= CALIB_WARN_NO_FIT;
    else if (target_far > 0 && m < 1.0 / target_far)
        out->warnings |= CALIB_WARN_EXTRAPOLATED;
    out->threshold = fitted(out, out->q.threshold, target_far, margin);
    double t2 = out->threshold;
    if (target_far_ng > 0) {
        calib_result q_ng;
        calib_threshold(scores, m, target_far_ng, margin, &q_ng);
        t2 = q_ng.threshold > t2 ? q_ng.threshold : t2;
        t2 = fitted(out, t2, target_far_ng, margin);
    }
    out->threshold_ng = t2;
    for (int i = 0; i < m; i++)
        out->exceed += (double)scores[i] >= out->threshold;
    out->far_fit = out->fitted ? calib_fit_far(&out->fit, out->threshold) : NAN;
    calib_clopper_pearson(out->exceed, m, CALIB_INTERVAL_CONF, &out->far_lo, &out->far_hi);
    return 0;
}
