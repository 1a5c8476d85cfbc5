/*
 * drift.h - has the score distribution of a product's line moved away from
 * the one its model was calibrated on? (docs/API.md, "Drift")
 *
 * The reference is the model's calibration scores (its held-out good
 * images, stored in the model's figures by the training job); the window is
 * the scores of the newest inspections of the same model version. The
 * statistic is the two-sample Kolmogorov-Smirnov D (largest distance
 * between the two empirical distribution functions) with its asymptotic
 * p-value; the flag rises when p < DRIFT_ALPHA with at least
 * DRIFT_MIN_WINDOW scores in the window and DRIFT_MIN_REFERENCE in the
 * reference.
 *
 * Thread-safety: no state; any thread.
 */
#ifndef CFA_DRIFT_H
#define CFA_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define DRIFT_ALPHA 0.01
#define DRIFT_MIN_WINDOW 20
#define DRIFT_MIN_REFERENCE 5

typedef struct drift_result {
    int64_t version;       /* the model version looked at (0: none active)  */
    int available;         /* 1 when both samples were there to compare     */
    char reference[16];    /* the figures' "calibration": holdout or train  */
    size_t n_reference, n_window;
    double ks_d;           /* 0..1                                          */
    double p_value;        /* 0..1                                          */
    double median_shift;   /* (median(window) - median(reference)) in units
                              of the reference's robust spread (IQR / 1.349);
                              NaN when that spread is 0                     */
    double window_median, reference_median;
    int flag;              /* the documented bound is crossed               */
} drift_result;

/* Two-sample KS on a[0..na) and b[0..nb) (both sorted ascending in place):
 * D, and the asymptotic p-value into *p (Kolmogorov distribution of
 * D * (sqrt(ne) + 0.12 + 0.11 / sqrt(ne)), ne = na nb / (na + nb)). */
double drift_ks(double *a, size_t na, double *b, size_t nb, double *p /* OUT */);

/* The drift of the product's active model version over the newest window
 * inspections. STORE_OK with out->available 0 when there is no active
 * model, the model has no calibration scores (trained by an older version)
 * or no inspection yet; another status when the store failed. */
store_status drift_compute(store_t *st, const char *product, int64_t version, size_t window,
                           drift_result *out /* OUT */);

#endif
