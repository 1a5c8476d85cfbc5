/* bundles.c - model bundles over HTTP (export, import; server/bundle) and
 * what a replica that follows a trainer refuses (server/follow). */
#define _GNU_SOURCE
#include "api_int.h"

#include "bundle.h"
#include "follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUNDLE_CTYPE "application/vnd.cfa.bundle"

enum MHD_Result h_model_bundle(hreq *r)
{
    long long v;
    store_model_t m;
    store_product_t p;
    enum MHD_Result ret;
    memset(&m, 0, sizeof m);
    if (parse_int_range(r->params[1], 1, INT64_MAX, &v) != 0)
        return reply_error(r, 404, "not_found", "no such model version: %s", r->params[1]);
    if (path_product(r, &p, &ret) != 0)
        return ret;
    store_status ss = store_model_get(r->ctx->st, r->params[0], (int64_t)v, &m);
    if (ss != STORE_OK) {
        store_product_clear(&p);
        return store_fail(r, ss, "model version", r->params[1]);
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bundle_pack(&p, &m, host, r->ctx->bundle_key, r->ctx->bundle_key_len, &buf, &len);
    store_product_clear(&p);
    store_model_clear(&m);
    if (rc != 0)
        return reply_error(r, 500, "internal_error", "the bundle could not be made");
    return reply_bytes(r, 200, BUNDLE_CTYPE, buf, len);
}

/* ?activate: absent or false keeps the active version as it is. */
static int query_activate(hreq *r, int *activate)
{
    const char *q = req_query(r, "activate");
    *activate = q != NULL && (strcmp(q, "true") == 0 || strcmp(q, "1") == 0);
    if (q == NULL || *activate || strcmp(q, "false") == 0 || strcmp(q, "0") == 0)
        return 0;
    reply_error(r, 400, "invalid_query", "activate must be true or false");
    return -1;
}

enum MHD_Result h_model_import(hreq *r)
{
    char ct[128], err[320] = "";
    int activate;
    if (query_activate(r, &activate) != 0)
        return MHD_YES;
    if (!store_valid_product_id(r->params[0]))
        return reply_error(r, 400, "invalid_product_id",
                           "the product id must be 1-64 characters of [A-Za-z0-9._-]");
    req_content_type(r, ct, sizeof ct);
    if (strcmp(ct, BUNDLE_CTYPE) != 0 && strcmp(ct, "application/octet-stream") != 0)
        return reply_error(r, 415, "unsupported_media_type",
                           "a bundle is sent as " BUNDLE_CTYPE " or application/octet-stream");
    if (r->len == 0)
        return reply_error(r, 400, "empty_body", "the request has no bundle");
    if (r->ctx->pool == NULL)
        return reply_error(r, 503, "not_ready", "the backbone is not loaded");
    bundle_t b;
    bundle_status bs = bundle_parse(r->body, r->len, r->ctx->bundle_key, r->ctx->bundle_key_len,
                                    &b, err, sizeof err);
    if (bs != BUNDLE_OK)
        return bundle_fail(r, (int)bs, err);
    int64_t version = 0;
    store_status ss = STORE_OK;
    store_event_t who; /* model.imported (and model.activated): this key and request */
    event_fill(r, &who, "model.imported", r->params[0], NULL, NULL);
    bs = bundle_import(r->ctx->st, r->params[0], &b, pool_backbone_sha256(r->ctx->pool), activate,
                       &who, &version, &ss, err, sizeof err);
    store_event_clear(&who);
    bundle_clear(&b);
    if (bs == BUNDLE_ERR_STORE)
        return store_fail(r, ss, "product", r->params[0]);
    if (bs != BUNDLE_OK)
        return bundle_fail(r, (int)bs, err);
    store_model_t m;
    ss = store_model_get(r->ctx->st, r->params[0], version, &m);
    if (ss != STORE_OK)
        return store_fail(r, ss, "model version", "new");
    char loc[160];
    snprintf(loc, sizeof loc, "/v1/products/%s/models/%lld", r->params[0], (long long)version);
    enum MHD_Result ret = reply_json_hdr(r, 201, model_json(&m), "Location", loc);
    store_model_clear(&m);
    return ret;
}

/* What changes the training side: on a replica it is the trainer's to do.
 * The inspections, reads and keys stay the replica's own. */
static const api_handler trainer_only[] = {
    h_product_create, h_product_patch, h_product_delete, h_image_upload, h_image_delete,
    h_train, h_job_cancel, h_model_activate, h_threshold, h_model_import,
};

void replica_check(hreq *r)
{
    if (r->ctx->follow == NULL || r->route == NULL || r->deny_status != 0)
        return;
    for (size_t i = 0; i < sizeof trainer_only / sizeof trainer_only[0]; i++) {
        if (trainer_only[i] != r->route->fn)
            continue;
        r->deny_status = 409;
        snprintf(r->deny_code, sizeof r->deny_code, "read_only_replica");
        snprintf(r->deny_msg, sizeof r->deny_msg,
                 "this daemon is a replica that follows %.200s; send this request there",
                 follow_url(r->ctx->follow));
        return;
    }
}

/* A replica is ready once it holds a model to serve; until its first sync it
 * has nothing to answer inspections with. 0 when ready (or not a replica). */
int replica_not_ready(hreq *r, char *why, size_t cap)
{
    follow_state fs;
    if (r->ctx->follow == NULL)
        return 0;
    follow_get_state(r->ctx->follow, &fs);
    if (fs.has_model)
        return 0;
    snprintf(why, cap, "replica has no model yet from %.200s%s%.200s", follow_url(r->ctx->follow),
             fs.last_error[0] != '\0' ? ": " : "", fs.last_error);
    return 1;
}

/* The follower's figures after the others of /metrics (text is realloc'd). */
int replica_metrics(hreq *r, char **text, size_t *len)
{
    follow_state fs;
    if (r->ctx->follow == NULL)
        return 0;
    follow_get_state(r->ctx->follow, &fs);
    char *more = NULL;
    int n = asprintf(&more,
                     "# HELP cfa_follow_last_sync_timestamp_seconds When this replica last "
                     "synced with its trainer (0: never).\n"
                     "# TYPE cfa_follow_last_sync_timestamp_seconds gauge\n"
                     "cfa_follow_last_sync_timestamp_seconds %.3f\n"
                     "# HELP cfa_follow_trainer_up Whether the last poll reached the trainer.\n"
                     "# TYPE cfa_follow_trainer_up gauge\ncfa_follow_trainer_up %d\n"
                     "# HELP cfa_follow_syncs_total Polls of the trainer by result.\n"
                     "# TYPE cfa_follow_syncs_total counter\n"
                     "cfa_follow_syncs_total{result=\"ok\"} %lld\n"
                     "cfa_follow_syncs_total{result=\"failed\"} %lld\n"
                     "# HELP cfa_follow_imports_total Bundles imported from the trainer.\n"
                     "# TYPE cfa_follow_imports_total counter\ncfa_follow_imports_total %lld\n",
                     (double)fs.last_sync_ms / 1e3, fs.trainer_up, (long long)fs.syncs,
                     (long long)fs.failures, (long long)fs.imports);
    if (n < 0)
        return -1;
    char *grown = realloc(*text, *len + (size_t)n + 1);
    if (grown == NULL) {
        free(more);
        return -1;
    }
    memcpy(grown + *len, more, (size_t)n + 1);
    free(more);
    *text = grown;
    *len += (size_t)n;
    return 0;
}
