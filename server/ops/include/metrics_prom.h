/*
 * metrics_prom.h - process-wide Prometheus counters and histograms.
 *
 * Thread-safety: every function may be called from any thread (one mutex).
 * The registry is a fixed-size table: at most MP_MAX_SERIES request series
 * (route x method x status); further combinations are counted under
 * route "other".
 */
#ifndef CFA_METRICS_PROM_H
#define CFA_METRICS_PROM_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_SERIES 512

/* One request finished: route is the route pattern ("/v1/products/{id}"). */
void mp_request(const char *method, const char *route, int status, double seconds);
/* One inference batch of n images took seconds on device. */
void mp_batch(const char *device, int n, double seconds);
/* A request was rejected because the queue was full. */
void mp_queue_rejected(void);
/* The daemon closed a connection itself: reason is "header_timeout",
 * "body_timeout" or "evicted" (api/conn.c). */
void mp_conn_closed(const char *reason);
/* One training job finished with state ("succeeded", ...). */
void mp_training_done(const char *state, double seconds);

/* One inspection answered: product, its two-valued decision ("OK"/"NG"),
 * its three-way verdict ("OK"/"UNSURE"/"NG", or NULL where the result has
 * none) and its score. The first MP_MAX_PRODUCTS products get their own
 * series; later ones are counted as product "_other". */
#define MP_MAX_PRODUCTS 64
void mp_inspection(const char *product, const char *decision, const char *verdict,
                   double score);

/* Per-product figures sampled at scrape time (from the store). */
typedef struct mp_product_gauge {
    char product[65];
    int64_t active_version;   /* 0: none */
    int drift_available;
    double drift_d;           /* KS D, server/inspect/drift.h */
    int drift_flag;
} mp_product_gauge;

/* Extra gauges sampled at scrape time. */
typedef struct mp_gauges {
    int n_devices;
    const char *device[8];
    int queue_depth[8];
    int64_t jobs[5];          /* by store_job_state */
    int64_t images_stored;
    int64_t inspections_in_flight;
    int models_loaded;
    int64_t audit_commits;    /* group commits of inspection rows (store)   */
    int64_t audit_rows;       /* rows in them: rows / commits = group size  */
    int inspect_arriving;     /* inspections announced to the pool, not yet queued */
    int64_t pixel_bytes_in_use;   /* the decoded-pixel budget (media/budget.h) */
    int64_t pixel_budget_bytes;
    int64_t pixel_refused;        /* charges refused after the wait (503) */
    const mp_product_gauge *products; /* at most MP_MAX_PRODUCTS */
    int n_products;
} mp_gauges;

/* Renders the Prometheus text exposition into a malloc'd NUL-terminated
 * string (caller frees); NULL on allocation failure. */
char *mp_render(const mp_gauges *g, size_t *len /* OUT */);

#endif
