/*
 * budget.h - one process-wide budget of decoded-pixel bytes in flight.
 *
 * A small compressed image can claim a large frame (a 105 kB PNG of
 * 6000 x 6000 zeros decodes to 108 MB, and the engine widens it to floats):
 * without a bound, a few hundred such requests at once take gigabytes. Every
 * decode that goes through img_decode_ex() with img_limits.budget set charges
 * the bytes it will allocate, computed from the header before any pixel
 * buffer exists, and the decoded image gives them back in img_rgbf_free().
 *
 *     img_budget *b = img_budget_new((size_t)768 << 20);
 *     img_status s = img_budget_acquire(b, bytes, 1000);
 *     if (s == IMG_OK) { ... allocate, use, free ...; img_budget_release(b, bytes); }
 *     img_budget_free(b);
 *
 * A charge larger than the whole budget can never pass: IMG_ERR_TOO_LARGE at
 * once. Otherwise a charge waits up to wait_ms for others to give bytes back,
 * then fails with IMG_ERR_BUSY (HTTP 503 with Retry-After). Waiters are not
 * queued in order: a large charge may wait while small ones pass; it is
 * bounded by wait_ms, never starved forever.
 * Thread-safety: every function may be called from any thread at once, except
 * img_budget_free, once nothing uses the budget any more.
 */
#ifndef CFA_BUDGET_H
#define CFA_BUDGET_H

#include <stddef.h>

#include "image.h"

typedef struct img_budget img_budget;

/* A budget of `bytes` (> 0); NULL when out of memory or bytes is 0. */
img_budget *img_budget_new(size_t bytes);
/* NULL is a no-op. */
void img_budget_free(img_budget *b);

/* Takes `bytes` of the budget: IMG_OK, IMG_ERR_TOO_LARGE when bytes exceeds
 * the whole budget, IMG_ERR_BUSY when they did not become free within
 * wait_ms (0: no wait). A NULL budget or 0 bytes always succeeds. */
img_status img_budget_acquire(img_budget *b, size_t bytes, int wait_ms);
/* Gives back bytes taken by img_budget_acquire. NULL is a no-op. */
void img_budget_release(img_budget *b, size_t bytes);

/* The figures, for /v1/info, metrics and tests (0 for NULL). */
size_t img_budget_total(const img_budget *b);
size_t img_budget_in_use(img_budget *b);
/* The most bytes ever held at once. */
size_t img_budget_peak(img_budget *b);
/* Charges refused with IMG_ERR_BUSY so far. */
unsigned long img_budget_refused(img_budget *b);

#endif
