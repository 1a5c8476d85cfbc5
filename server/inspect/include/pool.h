/*
 * pool.h - the inference worker pool: one or more workers per device, each
 * with its own backbone replica and an LRU of loaded product models, fed by a
 * bounded queue per device. A worker takes up to `batch` waiting requests,
 * waiting up to `batch_wait_ms` for announced requests (pool_announce) to
 * fill the batch, and scores them with one
 * cfa_score_multi call: one backbone forward for the whole batch, whatever
 * the products, then each product's descriptor and scoring.
 *
 *     pool_t *p;
 *     pool_create(&opts, fetch_model, store, &p, err, sizeof err);
 *     pool_req r = {.product = "bottle-a", .version = 3, .image = img};
 *     switch (pool_run(p, &r)) { ... }        (blocks until scored)
 *     cfa_result_clear(&r.result);
 *     pool_free(p);
 *
 * Thread-safety: pool_run, pool_queue_depth, pool_forget and pool_stats may
 * be called from any thread; pool_stop and pool_free once, at shutdown.
 */
#ifndef CFA_POOL_H
#define CFA_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "cfa.h"

typedef struct pool pool_t;

/* Fetches the serialised model product@version into a malloc'd buffer
 * (*buf, *len; the pool frees it). Returns 0, or -1 with a message in err. */
typedef int (*pool_fetch_fn)(void *user, const char *product, int64_t version,
                             void **buf, size_t *len, char *err, size_t errlen);

typedef struct pool_options {
    const char *backbone_path;
    const char *const *devices; /* "cpu", "cuda:0", ...                   */
    int n_devices;
    int workers_per_device;     /* >= 1                                    */
    int batch;                  /* largest batch, >= 1                     */
    int batch_wait_ms;          /* a worker whose batch is not full waits
                                   for announced requests until the oldest
                                   request has waited this long (0 = take
                                   what waits) */
    int queue_depth;            /* waiting requests per device, >= 1       */
    int model_cache;            /* models per worker, >= 1                 */
} pool_options;

typedef enum {
    POOL_OK = 0,
    POOL_BUSY = 1,      /* the device queue is full: answer 503          */
    POOL_STOPPED = 2,   /* shutting down: answer 503                     */
    POOL_FAILED = 3     /* scoring failed: status/error say why          */
} pool_status;

typedef struct pool_req {
    /* in (owned by the caller, must stay valid until pool_run returns) */
    const char *product;
    int64_t version;
    cfa_image image;
    int announced;          /* 1: counted by an earlier pool_announce(p, 1) */
    /* n_tiles > 0: score these tiles of the image (issue 13, roi.h) instead
     * of image, in one backbone forward of their own (cfa_score_tiles);
     * tile_results (n_tiles, zeroed) receive the maps, the caller clears
     * them; result stays empty */
    const cfa_image *tiles;
    int n_tiles;
    cfa_result *tile_results;
    /* out */
    cfa_status status;      /* of model load or scoring                  */
    char error[256];
    cfa_result result;      /* filled on POOL_OK; caller clears it       */
    double queue_ms;        /* enqueue -> taken by a worker              */
    double model_ms;        /* model load (if any) + cfa_score of its group */
    int batch_n;            /* images in the batch it was scored in      */
    char device[32];
} pool_req;

/* Loads one backbone per worker (this takes a while) and starts them.
 * On failure returns -1 with a message in err and *out = NULL. */
int pool_create(const pool_options *opts, pool_fetch_fn fetch, void *fetch_user,
                pool_t **out /* OUT */, char *err, size_t errlen);
/* Queues r on the least busy device and waits for its result. */
pool_status pool_run(pool_t *p, pool_req *r);
/* n requests are on their way (n = 1 when a request starts decoding its
 * image): a worker with a batch that is not full waits for them, up to
 * batch_wait_ms, and for nothing else. The announcement ends when the request
 * reaches pool_run with announced = 1, or with pool_announce(p, -1) when it
 * never does (a bad image). */
void pool_announce(pool_t *p, int n);
/* Requests announced and not yet queued (for /metrics). */
int pool_arriving(pool_t *p);
/* Drops cached models of product (all versions), e.g. after a delete. */
void pool_forget(pool_t *p, const char *product);
/* The resize (cfa_params.resize_w x resize_h) of model product@version, for
 * decoding a JPEG no larger than the model needs. Remembered per version
 * (the first call fetches and parses the model); 0, or -1 when the model
 * cannot be fetched or parsed (*w = *h = 0). Any thread. */
int pool_model_resize(pool_t *p, const char *product, int64_t version, int *w, int *h);
/* Requests waiting on device i (for /metrics); -1 if out of range. */
int pool_queue_depth(pool_t *p, int device);
int pool_n_devices(pool_t *p);
const char *pool_device_name(pool_t *p, int device);
int pool_models_loaded(pool_t *p);
/* SHA-256 of the backbone file (64 hex) and its channels. */
const char *pool_backbone_sha256(pool_t *p);
void pool_backbone_channels(pool_t *p, int out[3]);
/* 1 when all workers are up and not stopping. */
int pool_ready(pool_t *p);
/* Stops taking requests; queued ones are still scored; returns at once. */
void pool_stop(pool_t *p);
/* Stops (if needed), waits for the workers, frees. NULL is a no-op. */
void pool_free(pool_t *p);

#endif
