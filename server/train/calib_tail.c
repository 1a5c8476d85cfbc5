/* calib_tail.c - the fitted tail and the interval of calibration (calib.h):
 * a log-normal fit of held-out good scores with a one-sided tolerance bound,
 * and the Clopper-Pearson interval of an observed false-alarm rate.
 *
 * Why log-normal: anomaly scores are positive distances whose spread grows
 * with their size, and their scale differs from product to product; the log
 * makes the fit free of the scale (a product whose scores are 10x larger
 * gets a 10x larger threshold, nothing else changes). Why a tolerance bound
 * rather than the fitted quantile: with the 10-40 held-out images a product
 * usually has, the sample's sigma is often well below the true one, and a
 * threshold at the plain fitted quantile then flags several times the target
 * on new parts. The bound holds the target with the stated confidence under
 * the fit, and widens by itself as the sample shrinks. */
#include "calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Acklam's rational approximation of the standard normal quantile (relative
 * error below 1.2e-9), for 0 < p < 1. */
double calib_normal_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                               2.445134137142996e+00, 3.754408661907416e+00};
    if (!(p > 0 && p < 1))
        return p <= 0 ? -INFINITY : INFINITY;
    if (p < 0.02425 || p > 1 - 0.02425) {
        double q = sqrt(-2 * log(p < 0.5 ? p : 1 - p));
        double x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
                   ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        return p < 0.5 ? x : -x;
    }
    double q = p - 0.5, r = q * q;
    return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
           (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

double calib_normal_sf(double z)
{
    return 0.5 * erfc(z / sqrt(2.0));
}

double calib_tolerance_k(int n, double p, double conf)
{
    /* Natrella's approximation of the one-sided normal tolerance factor
     * (NIST/SEMATECH e-Handbook 7.2.6.3): within 1% of the exact factor
     * from n = 5 on */
    if (n < 2 || !(p > 0 && p < 1) || !(conf > 0 && conf < 1))
        return NAN;
    double zp = calib_normal_quantile(p), zg = calib_normal_quantile(conf);
    double a = 1 - zg * zg / (2.0 * (n - 1)), b = zp * zp - zg * zg / n;
    if (!(a > 0) || zp * zp - a * b < 0)
        return NAN;
    return (zp + sqrt(zp * zp - a * b)) / a;
}

int calib_fit_lognormal(const float *scores, int m, calib_fit *out)
{
    memset(out, 0, sizeof *out);
    if (m < 2)
        return -1;
    double sum = 0, sum2 = 0;
    for (int i = 0; i < m; i++) {
        /* a score of exactly 0 (a part identical to the bank) has no log:
         * it stands at the smallest positive float */
        double v = log(scores[i] > 0 ? (double)scores[i] : (double)1.17549435e-38f);
        if (!isfinite(v))
            return -1;
        sum += v;
        sum2 += v * v;
    }
    out->n = m;
    out->mu = sum / m;
    double var = (sum2 - sum * sum / m) / (m - 1);
    out->sigma = var > 0 ? sqrt(var) : 0;
    return 0;
}

double calib_fit_bound(const calib_fit *f, double far, double conf)
{
    double k = calib_tolerance_k(f->n, 1 - far, conf);
    return isfinite(k) ? exp(f->mu + k * f->sigma) : NAN;
}

double calib_fit_far(const calib_fit *f, double threshold)
{
    if (!(threshold > 0))
        return 1;
    if (!(f->sigma > 0))
        return log(threshold) > f->mu ? 0 : 1;
    return calib_normal_sf((log(threshold) - f->mu) / f->sigma);
}

/* P(X <= x) for X ~ Binomial(n, p), summed in logs */
static double binom_cdf(int x, int n, double p)
{
    if (p <= 0)
        return 1;
    if (p >= 1)
        return x >= n ? 1 : 0;
    double lp = log(p), lq = log1p(-p), sum = 0;
    for (int k = 0; k <= x; k++)
        sum += exp(lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0) + k * lp + (n - k) * lq);
    return sum > 1 ? 1 : sum;
}

/* the p at which binom_cdf(x, n, p) = target, by bisection (it falls with p) */
static double binom_solve(int x, int n, double target)
{
    double lo = 0, hi = 1;
    for (int i = 0; i < 100; i++) {
        double mid = 0.5 * (lo + hi);
        if (binom_cdf(x, n, mid) > target)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

int calib_clopper_pearson(int x, int n, double conf, double *lo, double *hi)
{
    if (n < 1 || x < 0 || x > n || !(conf > 0 && conf < 1))
        return -1;
    double alpha = 1 - conf;
    /* lower: P(X >= x; lo) = alpha/2, i.e. cdf(x - 1; lo) = 1 - alpha/2;
     * upper: P(X <= x; hi) = alpha/2 */
    *lo = x == 0 ? 0 : binom_solve(x - 1, n, 1 - alpha / 2);
    *hi = x == n ? 1 : binom_solve(x, n, alpha / 2);
    return 0;
}
