/* fake_engine.h - the torch part of the engine (core/src/engine.cpp: backbone
 * and model loading, cfa_score, cfa_score_multi), faked for torch-free tests
 * of server/inspect (pool.c, inspect.c), so that they also run under ASan and
 * TSan. The torch-free rest of core/ (status strings, cfa_map_to_image) is
 * the real cfa_core_io; cfa_model_free and cfa_result_clear are faked too,
 * as they free the fake's own objects.
 *
 * The fake:
 *   - a backbone loads from any path but "missing" (CFA_ERR_IO);
 *   - a model blob is an int64 version followed by the product name;
 *   - score = version * 1000 + width + (product starts with 'b' ? 100000 : 0);
 *   - the map is that score at every pixel, or with fake_map_from_red set,
 *     score * red (red in [0, 1]), the score then being the map's maximum;
 *   - the model map is the map itself (model geometry = image geometry);
 *   - an image 7 pixels wide fails the whole call with fake_fail_status
 *     (CFA_ERR_IMAGE: "unusable", unless a test sets another);
 *   - every call sleeps fake_score_delay_ms first.
 * Counters and settings are guarded by fake_mu. */
#ifndef CFA_FAKE_ENGINE_H
#define CFA_FAKE_ENGINE_H

#include <pthread.h>

#include "cfa.h"

extern pthread_mutex_t fake_mu;
extern int fake_score_calls;  /* cfa_score and cfa_score_multi calls    */
extern int fake_multi_calls;  /* cfa_score_multi calls                  */
extern int fake_max_batch;    /* most images in one call                */
extern int fake_max_products; /* most distinct products in one call     */
extern int fake_loads;        /* cfa_model_load calls                   */
extern int fake_score_delay_ms;
extern int fake_map_from_red;
extern cfa_status fake_fail_status;

/* Counters to 0, delay 5 ms, constant maps, CFA_ERR_IMAGE. */
void fake_reset(void);
/* Sets the delay under fake_mu. */
void fake_set_delay(int ms);
/* The blob fake's cfa_model_load reads (malloc'd, *len bytes). */
void *fake_model_blob(const char *product, int64_t version, size_t *len);

#endif
