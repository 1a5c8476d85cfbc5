/*
 * calib.h - the pure steps of a training job: which images are held out of
 * training, and the threshold calibrated from their scores. No I/O, no
 * engine (unit-tested without torch: tests/unit/test_train_steps.c). The
 * rules are those of jobs.h.
 */
#ifndef CFA_CALIB_H
#define CFA_CALIB_H

#include <stdint.h>

/* Images held out of n at fraction holdout (0..0.5): floor(holdout * n),
 * raised to 2 when n >= 10 and to 1 when n >= 3, at most n - 1; none when
 * holdout is 0 or n < 3. */
int calib_holdout_count(int n, double holdout);

/* order[0..n) = a permutation of 0..n-1 by a Fisher-Yates shuffle on
 * splitmix64 seeded with seed ^ 0x5eed: the same seed and n give the same
 * order on every machine. A job holds out order[0..n_hold) and trains on
 * the rest. Changing this changes every trained model: do not. */
void calib_shuffle(int *order, int n, uint64_t seed);

typedef struct calib_result {
    double threshold; /* the next float above q * margin                   */
    float q;          /* s[k], the quantile                                */
    int k;            /* its index: ceil((1 - target_far) * m) - 1 in [0, m) */
    float max;        /* s[m - 1]                                          */
    double mean;      /* of the m scores                                   */
    int n_nan;        /* NaN scores found (then nothing else is set)       */
} calib_result;

/* Sorts scores[0..m) ascending in place and calibrates:
 *     q = s[ceil((1 - target_far) * m) - 1]   (target_far 0 -> s[m - 1])
 *     threshold = nextafterf((float)(q * margin), +inf)
 * so that at most target_far of the m scores are >= threshold (margin 1).
 * The threshold is a float: scores are floats and JSON's 9 significant
 * digits carry both exactly, so clients see the same comparison.
 * Returns 0; -1 when m < 1 or a score is NaN (a model that scores NaN on
 * good images has no usable threshold; out->n_nan says how many). */
int calib_threshold(float *scores, int m, double target_far, double margin,
                    calib_result *out /* OUT */);

/* ---- the fitted tail and the interval (calib_tail.c) ---------------------
 * Held-out good scores are few (often 10-40) and their maximum is a poor
 * stand-in for tomorrow's parts: the threshold comes from a log-normal fit
 * of them, at a one-sided tolerance bound, never below the empirical
 * quantile; the observed false-alarm rate is reported with its interval. */
typedef struct calib_fit {
    int n;
    double mu, sigma;  /* mean and sample standard deviation of log(score) */
} calib_fit;

/* Standard normal quantile (0 < p < 1; -inf / +inf outside) and upper tail
 * P(Z > z). */
double calib_normal_quantile(double p);
double calib_normal_sf(double z);
/* One-sided normal tolerance factor k: with confidence conf, at least the
 * fraction p of the population lies below mean + k * sd of a sample of n.
 * NAN when n < 2 or the arguments are out of (0, 1). */
double calib_tolerance_k(int n, double p, double conf);
/* Fits log(scores[0..m)) (a score <= 0 counts as the smallest positive
 * float). 0, or -1 when m < 2. */
int calib_fit_lognormal(const float *scores, int m, calib_fit *out /* OUT */);
/* The score that, with confidence conf, at most far of good parts reach
 * under the fit: exp(mu + k * sigma); NAN when no bound exists. */
double calib_fit_bound(const calib_fit *f, double far, double conf);
/* The fit's false-alarm rate at threshold: P(score >= threshold). */
double calib_fit_far(const calib_fit *f, double threshold);
/* The exact (Clopper-Pearson) two-sided interval at confidence conf of a
 * rate seen x times in n. 0, or -1 for bad arguments. */
int calib_clopper_pearson(int x, int n, double conf, double *lo /* OUT */,
                          double *hi /* OUT */);

/* Held-out images below which no tail is fitted (the sample's sigma is too
 * rough): the thresholds are then the empirical quantiles. */
#define CALIB_MIN_FIT 5
/* The tolerance bound's confidence. */
#define CALIB_CONF 0.9
/* The interval's confidence. */
#define CALIB_INTERVAL_CONF 0.95

enum {
    CALIB_WARN_NO_FIT = 1,       /* fewer than CALIB_MIN_FIT scores: no fit   */
    CALIB_WARN_EXTRAPOLATED = 2, /* fewer than 1 / target_far scores: the
                                    threshold lies beyond what they show     */
};

typedef struct calib_decision {
    calib_result q;         /* the empirical rule at target_far (calib_threshold) */
    double threshold;       /* T1: OK below it                                  */
    double threshold_ng;    /* T2 >= T1: NG from it, UNSURE between             */
    double threshold_max;   /* the rule before the fit: next float above the
                               held-out maximum x margin (for comparison)       */
    int fitted;             /* 1: T1 / T2 come from the fit's bound             */
    calib_fit fit;
    double far_fit;         /* the fit's false-alarm rate at T1                 */
    int exceed;             /* held-out scores >= T1                            */
    double far_lo, far_hi;  /* their Clopper-Pearson interval                   */
    unsigned warnings;      /* CALIB_WARN_* bits                                */
} calib_decision;

/* Both thresholds from the m held-out scores (sorted in place):
 *   T1 = max(empirical quantile rule at target_far (calib_threshold),
 *            bound(target_far) x margin)
 *   T2 = max(T1, empirical rule at target_far_ng, bound(target_far_ng) x margin)
 * with no bound when m < CALIB_MIN_FIT or a target is 0 (target_far 0: the
 * maximum, as before; target_far_ng 0: no UNSURE band from the fit).
 * Returns 0, or -1 as calib_threshold does. */
int calib_decide(float *scores, int m, double target_far, double target_far_ng, double margin,
                 calib_decision *out /* OUT */);

#endif
