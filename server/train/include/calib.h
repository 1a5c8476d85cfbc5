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

#endif
