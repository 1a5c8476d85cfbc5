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
