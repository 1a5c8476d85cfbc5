/* drift.c - the drift statistic of a product (drift.h). */
#include "drift.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Q_KS(lambda) = 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2) (Numerical
 * Recipes' probks): the probability of a D at least this large when both
 * samples come from one distribution. */
static double ks_q(double lambda)
{
    if (lambda < 0.2)
        return 1.0; /* the series converges slowly there, and Q is 1 to 1e-9 */
    double sum = 0, sign = 1, prev = 0;
    for (int j = 1; j <= 100; j++) {
        double term = sign * 2 * exp(-2.0 * j * j * lambda * lambda);
        sum += term;
        if (fabs(term) <= 1e-10 * fabs(sum) || fabs(term) <= 1e-12 * prev)
            break;
        sign = -sign;
        prev = fabs(term);
    }
    return sum < 0 ? 0 : sum > 1 ? 1 : sum;
}

double drift_ks(double *a, size_t na, double *b, size_t nb, double *p)
{
    qsort(a, na, sizeof *a, cmp_double);
    qsort(b, nb, sizeof *b, cmp_double);
    size_t i = 0, k = 0;
    double d = 0;
    while (i < na && k < nb) {
        double x = a[i] <= b[k] ? a[i] : b[k];
        while (i < na && a[i] <= x)
            i++;
        while (k < nb && b[k] <= x)
            k++;
        double gap = fabs((double)i / (double)na - (double)k / (double)nb);
        if (gap > d)
            d = gap;
    }
    double ne = (double)na * (double)nb / (double)(na + nb), sq = sqrt(ne);
    *p = ks_q((sq + 0.12 + 0.11 / sq) * d);
    return d;
}

/* The q-quantile of sorted v[0..n) by linear interpolation. */
static double quantile(const double *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    double frac = pos - (double)lo;
    return lo + 1 < n ? v[lo] * (1 - frac) + v[lo + 1] * frac : v[n - 1];
}

/* The model's calibration scores and their kind from its figures JSON
 * (malloc'd; NULL when it has none). */
static double *reference_scores(const char *figures, size_t *n, char *kind, size_t kind_cap)
{
    json_t *fig = json_loads(figures, 0, NULL);
    json_t *cs = json_object_get(fig, "calibration_scores");
    double *v = NULL;
    *n = 0;
    snprintf(kind, kind_cap, "%s", json_string_value(json_object_get(fig, "calibration"))
                                       ? json_string_value(json_object_get(fig, "calibration"))
                                       : "");
    if (json_is_array(cs) && json_array_size(cs) > 0) {
        v = malloc(json_array_size(cs) * sizeof *v);
        for (size_t i = 0; v != NULL && i < json_array_size(cs); i++)
            if (json_is_number(json_array_get(cs, i)))
                v[(*n)++] = json_number_value(json_array_get(cs, i));
    }
    json_decref(fig);
    return v;
}

static void compare(drift_result *out, double *ref, size_t nr, double *win, size_t nw)
{
    out->ks_d = drift_ks(ref, nr, win, nw, &out->p_value);
    out->reference_median = quantile(ref, nr, 0.5);
    out->window_median = quantile(win, nw, 0.5);
    double spread = (quantile(ref, nr, 0.75) - quantile(ref, nr, 0.25)) / 1.349;
    out->median_shift = spread > 0 ? (out->window_median - out->reference_median) / spread
                                   : NAN;
    out->available = 1;
    out->flag = nw >= DRIFT_MIN_WINDOW && nr >= DRIFT_MIN_REFERENCE && out->p_value < DRIFT_ALPHA;
}

store_status drift_compute(store_t *st, const char *product, int64_t version, size_t window,
                           drift_result *out)
{
    memset(out, 0, sizeof *out);
    out->version = version;
    out->p_value = out->median_shift = NAN;
    if (version <= 0)
        return STORE_OK;
    char *figures = NULL;
    store_status ss = store_model_figures(st, product, version, &figures);
    if (ss != STORE_OK)
        return ss == STORE_ERR_NOT_FOUND ? STORE_OK : ss; /* deleted meanwhile */
    size_t nr = 0, nw = 0;
    double *ref = reference_scores(figures, &nr, out->reference, sizeof out->reference);
    double *win = NULL;
    free(figures);
    if (nr > 0)
        ss = store_inspection_scores(st, product, version, window, &win, &nw);
    out->n_reference = nr;
    out->n_window = nw;
    if (ss == STORE_OK && nr > 0 && nw > 0)
        compare(out, ref, nr, win, nw);
    free(ref);
    free(win);
    return ss;
}
