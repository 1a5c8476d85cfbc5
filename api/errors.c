/* errors.c - how failures of the layers below become HTTP errors: one table
 * from the engine's, the codec's, the store's and the pool's statuses to the
 * HTTP status and the error code of the JSON body (api/openapi.json). The
 * layers themselves know nothing of HTTP. */
#define _GNU_SOURCE
#include "api_int.h"

#include <stddef.h>

#include "bundle.h"

#define ERR_ANY (-1) /* a layer's row for every status not listed before it */

typedef enum { ERR_ENGINE = 0, ERR_CODEC = 1, ERR_STORE = 2, ERR_POOL = 3, ERR_AUDIT = 4,
               ERR_BUNDLE = 5 } err_layer;

typedef struct err_row {
    err_layer layer;
    int status;       /* the layer's status value, or ERR_ANY */
    int http;
    const char *code;
    const char *msg;  /* the message, or NULL: the caller's */
} err_row;

static const err_row err_table[] = {
    /* the engine (cfa_status): why a request was not scored (POOL_FAILED) */
    {ERR_ENGINE, CFA_ERR_IMAGE, 422, "image_unusable", NULL},
    {ERR_ENGINE, CFA_ERR_BACKBONE_MISMATCH, 409, "backbone_mismatch", NULL},
    /* host or device memory: the same request may pass later */
    {ERR_ENGINE, CFA_ERR_NOMEM, 503, "out_of_memory", NULL},
    {ERR_ENGINE, ERR_ANY, 500, "inference_failed", NULL},
    /* the codec (img_status) */
    {ERR_CODEC, IMG_ERR_UNSUPPORTED, 415, "unsupported_media_type", NULL},
    {ERR_CODEC, IMG_ERR_CORRUPT, 422, "corrupt_image", NULL},
    {ERR_CODEC, IMG_ERR_TRUNCATED, 422, "truncated_image", NULL},
    /* a decompression bomb is a well-formed body that is unusable: 413 is
     * for bodies over the byte limit */
    {ERR_CODEC, IMG_ERR_TOO_LARGE, 422, "image_too_large", NULL},
    {ERR_CODEC, IMG_ERR_TOO_SMALL, 422, "image_too_small", NULL},
    {ERR_CODEC, IMG_ERR_NOMEM, 503, "out_of_memory", NULL},
    {ERR_CODEC, IMG_ERR_IO, 500, "io_error", NULL},
    {ERR_CODEC, IMG_ERR_INVALID_ARG, 500, "invalid_argument", NULL},
    /* the decoded-pixel budget stayed full (budget.h): the same request may pass later */
    {ERR_CODEC, IMG_ERR_BUSY, 503, "overloaded", NULL},
    {ERR_CODEC, ERR_ANY, 500, "internal_error", NULL},
    /* the store (store_status) */
    {ERR_STORE, STORE_ERR_NOT_FOUND, 404, "not_found", NULL},
    {ERR_STORE, STORE_ERR_EXISTS, 409, "already_exists", NULL},
    {ERR_STORE, STORE_ERR_CONFLICT, 409, "conflict", NULL},
    {ERR_STORE, STORE_ERR_INVALID, 400, "invalid_argument", NULL},
    {ERR_STORE, STORE_ERR_FULL, 507, "storage_full", NULL},
    {ERR_STORE, STORE_ERR_BUSY, 503, "store_busy", NULL},
    {ERR_STORE, ERR_ANY, 500, "store_error", NULL},
    /* the pool (pool_status); POOL_FAILED is answered by the engine's status */
    {ERR_POOL, POOL_BUSY, 503, "overloaded", "the inference queue is full; retry later"},
    {ERR_POOL, POOL_STOPPED, 503, "shutting_down", "the server is shutting down"},
    {ERR_POOL, ERR_ANY, 500, "inference_failed", "the inference pool failed"},
    /* an inspection scored but not made durable (INSPECT_ERR_STORE, store
     * status): never a 200 that the audit trail could lose */
    {ERR_AUDIT, STORE_ERR_FULL, 507, "storage_full",
     "the disk is full: the inspection could not be recorded"},
    {ERR_AUDIT, ERR_ANY, 503, "audit_unavailable",
     "the audit trail cannot be written: the inspection was not recorded"},
    /* a model bundle refused on import (bundle.h); BUNDLE_ERR_STORE is
     * answered by the store's status */
    {ERR_BUNDLE, BUNDLE_ERR_FORMAT, 400, "invalid_bundle", NULL},
    {ERR_BUNDLE, BUNDLE_ERR_VERSION, 422, "unsupported_bundle_version", NULL},
    {ERR_BUNDLE, BUNDLE_ERR_CHECKSUM, 422, "bundle_checksum_mismatch", NULL},
    {ERR_BUNDLE, BUNDLE_ERR_SIGNATURE, 403, "bundle_signature_invalid", NULL},
    {ERR_BUNDLE, BUNDLE_ERR_UNSIGNED, 403, "bundle_unsigned", NULL},
    {ERR_BUNDLE, BUNDLE_ERR_BACKBONE, 409, "backbone_mismatch", NULL},
    {ERR_BUNDLE, ERR_ANY, 500, "internal_error", NULL},
};

static const err_row *err_find(err_layer layer, int status)
{
    static const err_row none = {ERR_ENGINE, ERR_ANY, 500, "internal_error", NULL};
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++)
        if (err_table[i].layer == layer &&
            (err_table[i].status == status || err_table[i].status == ERR_ANY))
            return &err_table[i];
    return &none;
}

enum MHD_Result store_fail(hreq *r, store_status ss, const char *what, const char *id)
{
    const err_row *e = err_find(ERR_STORE, (int)ss);
    switch (ss) {
    case STORE_ERR_NOT_FOUND:
        return reply_error(r, e->http, e->code, "no such %s: %s", what, id);
    case STORE_ERR_EXISTS:
        return reply_error(r, e->http, e->code, "%s %s already exists", what, id);
    case STORE_ERR_CONFLICT:
        return reply_error(r, e->http, e->code, "%s %s: %s", what, id, store_strerror(ss));
    case STORE_ERR_INVALID:
        return reply_error(r, e->http, e->code, "invalid %s: %s", what, id);
    default:
        return reply_error(r, e->http, e->code, "%s", store_strerror(ss));
    }
}

enum MHD_Result codec_fail(hreq *r, img_status st, const char *where)
{
    const err_row *e = err_find(ERR_CODEC, (int)st);
    return reply_error(r, e->http, e->code, "%s%s", where, img_status_str(st));
}

enum MHD_Result inspection_fail(hreq *r, const inspect_result *res)
{
    const err_row *e;
    switch (res->status) {
    case INSPECT_ERR_DECODE:
        return codec_fail(r, res->img, "");
    case INSPECT_ERR_POOL:
        if (res->pool == POOL_FAILED) {
            e = err_find(ERR_ENGINE, (int)res->engine);
            return reply_error(r, e->http, e->code, "%s", res->error);
        }
        e = err_find(ERR_POOL, (int)res->pool);
        return reply_error(r, e->http, e->code, "%s", e->msg);
    case INSPECT_ERR_STORE:
        e = err_find(ERR_AUDIT, (int)res->store);
        return reply_error(r, e->http, e->code, "%s (%s)", e->msg, res->error);
    default: /* INSPECT_NOT_READY */
        return reply_error(r, 503, "not_ready", "inference workers are not running");
    }
}

enum MHD_Result bundle_fail(hreq *r, int bs, const char *msg)
{
    const err_row *e = err_find(ERR_BUNDLE, bs);
    return reply_error(r, e->http, e->code, "%s", e->msg != NULL ? e->msg : msg);
}
