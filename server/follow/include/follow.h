/*
 * follow.h - an inference replica that follows a trainer: one thread polls
 * the trainer's API (libcurl), downloads the bundles of the active versions
 * it lacks, imports and activates them, and copies the thresholds.
 *
 *     follow_options o = {.url = "http://trainer:8080", .key = key, .st = st, ...};
 *     follow_t *f;
 *     follow_start(&o, &f, err, sizeof err);
 *     follow_state s; follow_get_state(f, &s);   (readyz, metrics)
 *     follow_stop(f);
 *
 * The trainer being down is not an error of the replica: it keeps serving
 * what it has and tries again every interval.
 * Thread-safety: follow_get_state from any thread; start/stop from one.
 */
#ifndef CFA_FOLLOW_H
#define CFA_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct follow follow_t;

typedef struct follow_options {
    const char *url;             /* the trainer's base URL, "http://host:port" */
    const char *key;             /* an operate key of the trainer             */
    int interval_ms;             /* between polls                             */
    store_t *st;
    const char *backbone_sha256; /* ours: bundles of another are refused      */
    const uint8_t *bundle_key;   /* NULL: signatures not required             */
    size_t bundle_key_len;
} follow_options;

typedef struct follow_state {
    int64_t last_sync_ms;     /* wall clock of the last whole sync, 0 never */
    int64_t last_attempt_ms;
    int64_t syncs;            /* polls that completed                        */
    int64_t failures;         /* polls that did not                          */
    int64_t imports;          /* bundles imported                            */
    int trainer_up;           /* the last poll reached the trainer           */
    int has_model;            /* some product has an active model here       */
    char last_error[256];
} follow_state;

/* A product of the trainer's list, as a replica uses it. */
typedef struct follow_product {
    char id[STORE_PRODUCT_ID_MAX];
    int64_t active_version;   /* 0: none                                     */
    double threshold;
    double threshold_ng; /* T2 of OK / UNSURE / NG; = threshold when absent */
    int has_threshold;
} follow_product;

/* Parses a page of GET /v1/products from the trainer (a peer's bytes: any
 * input is safe). Entries a replica cannot use (no valid id, a version
 * below 1, a threshold not above 0 or over FLT_MAX) are counted in
 * *skipped. next: the cursor of the next page, "" on the last. 0, or -1
 * when the text is not an object with a "products" array. *out: free(). */
int follow_parse_products(const char *text, size_t len, follow_product **out /* OUT */,
                          size_t *n /* OUT */, size_t *skipped /* OUT */,
                          char next[STORE_PRODUCT_ID_MAX] /* OUT */);

/* Copies the strings of o. Starts the thread; its first poll is at once. */
int follow_start(const follow_options *o, follow_t **out /* OUT */, char *err, size_t errlen);
void follow_get_state(follow_t *f, follow_state *out /* OUT */);
/* The trainer's URL (the 409 of a replica names it). */
const char *follow_url(const follow_t *f);
/* Stops and joins the thread; NULL is a no-op. */
void follow_stop(follow_t *f);

#endif
