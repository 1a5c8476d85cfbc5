/*
 * metrics.h - evaluation figures: AUROC and AUPRO, computed exactly.
 *
 *     double i_auroc = metrics_auroc(image_scores, image_labels, n_images);
 *     double p_auroc = metrics_auroc(all_pixel_scores, all_pixel_labels, n_px);
 *     double aupro = metrics_aupro(maps, masks, ws, hs, n_images, 0.3);
 *
 * Both sort with an LSD radix sort on the float bit patterns (O(n), about
 * 8 bytes of scratch per score for AUROC, 12 per defect pixel plus 8 per
 * normal pixel for AUPRO). Equal scores are one threshold, never split.
 * NaN scores rank above every number (NaN is never "normal-looking");
 * -0.0 equals 0.0. Reentrant; no state.
 */
#ifndef CFA_METRICS_H
#define CFA_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Area under the ROC curve of scores against labels (non-zero = anomalous,
 * the positive class): P(s+ > s-) + P(s+ == s-) / 2, the Mann-Whitney U over
 * P * N, from integer counts. NAN when a class is absent, n == 0, a pointer
 * is NULL or memory runs out. */
double metrics_auroc(const float *scores, const uint8_t *labels, size_t n);

/* Area under the per-region-overlap curve up to max_fpr (0 < max_fpr <= 1,
 * normally 0.3), divided by max_fpr, so 1.0 is perfect.
 * maps[i], masks[i]: w[i] x h[i] scores and ground truth (mask > 0 = defect).
 * Regions are the 8-connected components of each mask; FPR counts the mask ==
 * 0 pixels of all images; PRO(t) is the mean over all regions of the
 * fraction of the region's pixels scoring >= t. The curve, from (0, 0), has
 * one point per distinct score, is integrated with the trapezoid rule and
 * cut at max_fpr by linear interpolation. Images without defects contribute
 * their pixels to the FPR only. NAN when there is no region or no normal
 * pixel, on invalid arguments or when memory runs out. */
double metrics_aupro(const float *const *maps, const uint8_t *const *masks, const int *w,
                     const int *h, int n_images, double max_fpr);

#ifdef __cplusplus
}
#endif

#endif
