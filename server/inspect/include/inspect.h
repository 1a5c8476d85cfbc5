/*
 * inspect.h - one inspection, below HTTP: decode the image, score it on the
 * pool, decide OK/NG at the product's threshold, find the anomalous regions,
 * store its files durably, commit the audit row (the caller answers only once
 * both are durable: INSPECT_ERR_STORE when they cannot be) and, every 16th
 * inspection that kept images, apply the retention.
 *
 *     inspect_t *in;
 *     inspect_create(&(inspect_options){.st = st, .pool = pool,
 *                                       .retention = cfg.retention}, &in);
 *     inspect_req q = {.product = "bottle-a", .version = 3, .threshold = 1.2,
 *                      .body = &body, .len = len, .limits = img_default_limits(),
 *                      .keep = 1, .inline_heatmap = b64_encode, .announced = &announced,
 *                      .t_request_ms = t0, .t_start_ms = t1};
 *     inspect_result res;
 *     if (inspect_run(in, &q, &res) == INSPECT_OK)
 *         ... res.row.decision, res.regions[0 .. res.n_regions), res.timings ...
 *     inspect_result_clear(&res);
 *     inspect_free(in);
 *
 * inspect_decide and inspect_regions are the decision and the regions on
 * their own (no pool, no store; decide.c): the CLI prints what the daemon
 * would answer.
 *
 * Thread-safety: inspect_run may be called from any number of threads at
 * once (the composition root creates one inspect_t for the process);
 * inspect_create and inspect_free once.
 */
#ifndef CFA_INSPECT_H
#define CFA_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfa.h"
#include "heatmap.h"
#include "image.h"
#include "pool.h"
#include "render.h"
#include "store.h"

/* Regions reported per inspection, highest score first. */
#define INSPECT_MAX_REGIONS 64

typedef struct inspect inspect_t;

typedef struct inspect_options {
    store_t *st;
    pool_t *pool;       /* NULL: every inspection is INSPECT_NOT_READY       */
    int64_t retention;  /* inspections whose files are kept; 0 = all         */
    int jpeg_full;      /* 1: decode JPEGs whole, not at the model's DCT scale */
} inspect_options;

typedef struct inspect_req {
    const char *product;     /* a valid product id                               */
    int64_t version;         /* the model version and threshold, read once by   */
    double threshold;        /* the caller: a later activation does not change
                                what this inspection is scored with            */
    double threshold_ng;     /* NG from here, UNSURE from threshold; NAN or
                                below threshold: = threshold                   */
    int border;              /* pixels on each side not inspected: the
                                product's setting, for models whose figures
                                do not carry their own                        */
    /* in/out: the image as received (malloc'd). With keep, the render job
     * takes it without a copy and *body becomes NULL (the caller frees what
     * is left, as before). */
    uint8_t **body;
    size_t len;
    img_limits limits;       /* decoder limits                                   */
    int keep;                /* 1: store the files (has_images), 0: the row only */
    /* NULL, or the heatmap for the response: called with the colour heatmap
     * PNG before the render job takes the PNG over (no copy), it returns the
     * form the caller answers with (the API: base64), malloc'd, kept in
     * res->heatmap; NULL from it means none */
    char *(*inline_heatmap)(const void *png, size_t len);
    const char *key_id;      /* API key of the caller, for the audit row ("")    */
    const store_part_t *part; /* part identity for the audit row (NULL: none)  */
    /* NULL, or the Idempotency-Key entry written in the audit row's
     * transaction (a live entry of the key: INSPECT_ERR_STORE with
     * res->store STORE_ERR_EXISTS, and no row) */
    const store_idem_t *idem;
    /* in/out: 1 when the caller counted this request with pool_announce(p, 1);
     * cleared once pool_run took the announcement over (a request that ends
     * before that unannounces it, pool.h) */
    int *announced;
    double t_request_ms;     /* CLOCK_MONOTONIC ms: the request arrived (total)  */
    double t_start_ms;       /* CLOCK_MONOTONIC ms: its handling began (decode)  */
} inspect_req;

typedef enum {
    INSPECT_OK = 0,
    INSPECT_NOT_READY = 1,    /* no pool (inference workers not running)         */
    INSPECT_ERR_DECODE = 2,   /* the body is no usable image: res->img says why  */
    INSPECT_ERR_POOL = 3,     /* refused or not scored: res->pool; for
                                 POOL_FAILED also res->engine and res->error    */
    INSPECT_ERR_STORE = 4     /* scored, but its files or its audit row could
                                 not be made durable: res->store, res->error;
                                 nothing of the inspection is kept             */
} inspect_status;

/* Milliseconds, as the response's timings_ms reports them. */
typedef struct inspect_timings {
    double decode;  /* handling began -> image decoded                 */
    double queue;   /* waiting for a worker (pool_req.queue_ms)         */
    double model;   /* model load (if any) + scoring (pool_req.model_ms) */
    double encode;  /* scored -> files stored (regions, heatmap, files) */
    double total;   /* request arrived -> files stored (the row's commit
                       that follows is not in it: the row holds these)  */
} inspect_timings;

typedef struct inspect_result {
    inspect_status status;
    img_status img;            /* INSPECT_ERR_DECODE                          */
    pool_status pool;          /* INSPECT_ERR_POOL                            */
    cfa_status engine;         /* INSPECT_ERR_POOL with POOL_FAILED           */
    store_status store;        /* INSPECT_ERR_STORE                           */
    char error[256];           /* the engine's message (POOL_FAILED), the
                                  store's detail (INSPECT_ERR_STORE)          */
    /* INSPECT_OK: the audit row as written: id, product, model_version,
     * score, threshold, decision, map_max, has_images, key_id (its JSON
     * texts are released once written: NULL here) */
    store_inspection_t row;
    heatmap_region *regions;   /* n_regions, highest score first              */
    int n_regions;
    inspect_timings timings;
    /* the regions and timings as the JSON the row was written from; the
     * response takes references instead of building them again */
    json_t *regions_json;
    json_t *timings_json;
    char *heatmap;             /* what inline_heatmap made of the PNG, or NULL */
} inspect_result;

/* 0, or -1 (out of memory; *out NULL). */
int inspect_create(const inspect_options *opts, inspect_t **out /* OUT */);
/* NULL is a no-op. After the last inspect_run. */
void inspect_free(inspect_t *in);

/* Runs one inspection; *res is always set (release with
 * inspect_result_clear) and res->status is returned. Failures of the audit
 * row or of the files are logged, not returned: the decision stands. */
inspect_status inspect_run(inspect_t *in, inspect_req *req, inspect_result *res /* OUT */);
/* Frees what res owns and zeroes it. */
void inspect_result_clear(inspect_result *res);

/* Makes r's map (and score, its maximum) again at w x h, the image's own
 * size, from r->model_map, as cfa_score would have for an image of that
 * size: for an image decoded at a reduced JPEG scale (img_rgbf.src_width).
 * Nothing done when r is w x h already. 0, or -1 out of memory (r kept). */
int inspect_map_to_source(cfa_result *r, int w, int h);

/* "NG" when score >= threshold, else "OK" (a NaN score is "OK"). */
const char *inspect_decide(float score, double threshold);
/* What an inspection looks at, in image pixels, as [x0, x1) x [y0, y1):
 * what the model saw (cfa_model_area: all of it without a crop) less a
 * border of `border` pixels on each side (at most a quarter of a side). */
void inspect_area(const cfa_result *r, int border, int rect[4] /* OUT */);

/* Marks the map outside rect as not inspected (NaN: no region, no score,
 * drawn as such by heatmap_render) and returns the maximum inside, the
 * inspection's score (0 when nothing inside). */
float inspect_blank_outside(float *map, int w, int h, const int rect[4]);

/* The three-way verdict: "OK" below threshold, "NG" at or above
 * threshold_ng, "UNSURE" between (a NaN score is "OK"). threshold_ng is at
 * least threshold (the API and the store enforce it), so "OK" here is "OK"
 * of inspect_decide and "UNSURE" and "NG" are both its "NG". */
const char *inspect_verdict(float score, double threshold, double threshold_ng);
/* 1 when threshold can be a product's threshold: finite, > 0 and at most
 * FLT_MAX (scores are float32); else 0. Every threshold a client gives (the
 * API's, the CLI's --threshold) passes this check. */
int inspect_threshold_valid(double threshold);
/* The 8-connected regions of map (w x h, image geometry) at or above
 * threshold, highest score first, at most INSPECT_MAX_REGIONS. On 0, *out
 * (NULL when *n is 0) is freed by the caller with free(). On -1 (invalid
 * arguments, out of memory) *out is NULL and *n 0: report no regions. */
int inspect_regions(const float *map, int w, int h, double threshold,
                    heatmap_region **out /* OUT */, int *n /* OUT */);

/* The JSON the audit row stores, the API answers and the CLI prints (new
 * references): regions as [{"x", "y", "width", "height", "area", "score"}],
 * timings as {"decode", "queue", "model", "encode", "total"}. */
json_t *inspect_regions_json(const heatmap_region *regs, int n);
json_t *inspect_timings_json(const inspect_timings *t);

#endif
