/* ops.c - health, readiness, Prometheus metrics, the OpenAPI document, info. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_alloc.h"
#include "budget.h"
#include "metrics_prom.h"
#include "drift.h"

#define MAX_UPLOAD_PARTS 256

enum MHD_Result h_healthz(hreq *r)
{
    return reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

enum MHD_Result h_readyz(hreq *r)
{
    api_ctx *c = r->ctx;
    if (store_ping(c->st) != STORE_OK)
        return reply_error(r, 503, "not_ready", "database not reachable");
    /* an inspection would answer 507/503 rather than lose its record: say
     * so here, and look again (cheaply) whether the space came back */
    char why[256];
    store_status ws = store_write_health(c->st, why, sizeof why);
    if (ws != STORE_OK && store_write_probe(c->st) != STORE_OK)
        return reply_error(r, 503, "not_ready", "the audit trail cannot be written: %s (%s)",
                           store_strerror(ws), why);
    if (c->pool == NULL || !pool_ready(c->pool))
        return reply_error(r, 503, "not_ready", "inference workers not running");
    if (c->jobs == NULL || !jobs_alive(c->jobs))
        return reply_error(r, 503, "not_ready", "training runner not running");
    if (replica_not_ready(r, why, sizeof why))
        return reply_error(r, 503, "not_ready", "%s", why);
    return reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

/* Each product's active version and drift, for /metrics (at most
 * MP_MAX_PRODUCTS, in id order); the count filled. */
static int product_gauges(api_ctx *c, mp_product_gauge *pg)
{
    store_product_t *arr = NULL;
    size_t n = 0;
    char next[STORE_PRODUCT_ID_MAX];
    if (store_product_list(c->st, MP_MAX_PRODUCTS, NULL, &arr, &n, next) != STORE_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        drift_result d;
        snprintf(pg[i].product, sizeof pg[i].product, "%s", arr[i].id);
        pg[i].active_version = arr[i].active_version;
        if (drift_compute(c->st, arr[i].id, arr[i].active_version,
                          (size_t)c->cfg->drift_window, &d) == STORE_OK) {
            pg[i].drift_available = d.available;
            pg[i].drift_d = d.ks_d;
            pg[i].drift_flag = d.flag;
        }
    }
    store_products_free(arr, n);
    return (int)n;
}

enum MHD_Result h_metrics(hreq *r)
{
    static mp_product_gauge pg_none[1];
    api_ctx *c = r->ctx;
    mp_gauges g;
    memset(&g, 0, sizeof g);
    if (c->pool != NULL) {
        g.n_devices = pool_n_devices(c->pool);
        for (int i = 0; i < g.n_devices && i < 8; i++) {
            g.device[i] = pool_device_name(c->pool, i);
            g.queue_depth[i] = pool_queue_depth(c->pool, i);
        }
        g.models_loaded = pool_models_loaded(c->pool);
        g.inspect_arriving = pool_arriving(c->pool);
    }
    g.pixel_bytes_in_use = (int64_t)img_budget_in_use(c->pixels);
    g.pixel_budget_bytes = (int64_t)img_budget_total(c->pixels);
    g.pixel_refused = (int64_t)img_budget_refused(c->pixels);
    store_inspection_commit_stats(c->st, &g.audit_commits, &g.audit_rows);
    store_job_counts(c->st, g.jobs);
    store_image_count_all(c->st, &g.images_stored);
    mp_product_gauge *pg = calloc(MP_MAX_PRODUCTS, sizeof *pg);
    g.products = pg != NULL ? pg : pg_none;
    g.n_products = pg != NULL ? product_gauges(c, pg) : 0;
    size_t len = 0;
    char *text = mp_render(&g, &len);
    if (text != NULL && replica_metrics(r, &text, &len) != 0) {
        free(text);
        text = NULL;
    }
    free(pg);
    if (text == NULL)
        return reply_error(r, 500, "internal_error", "out of memory");
    char *sinks = sinks_metrics_text(c->st);
    if (sinks != NULL) {
        size_t sl = strlen(sinks);
        text = xrealloc(text, len + sl + 1);
        memcpy(text + len, sinks, sl + 1);
        len += sl;
        free(sinks);
    }
    return reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

enum MHD_Result h_openapi(hreq *r)
{
    return reply_static(r, 200, "application/json; charset=utf-8", api_openapi_json,
                        api_openapi_json_len);
}

enum MHD_Result h_info(hreq *r)
{
    api_ctx *c = r->ctx;
    const cfg_t *cfg = c->cfg;
    json_t *devs = json_array();
    for (int i = 0; i < cfg->n_devices; i++)
        json_array_append_new(devs, json_string(cfg->devices[i]));
    const char *bname = strrchr(cfg->backbone, '/');
    bname = bname != NULL ? bname + 1 : cfg->backbone;
    int ch[3] = {0, 0, 0};
    if (c->pool != NULL)
        pool_backbone_channels(c->pool, ch);
    json_t *o = json_pack(
        "{s:s,s:i,s:{s:s,s:s?,s:[i,i,i]},s:o,s:i,s:i,s:{s:I,s:I,s:i,s:i,s:i,s:I,s:I,s:i,s:i,s:b},s:i}",
        "version", c->version != NULL ? c->version : "0.1.0", "api_version", 1,
        "backbone", "name", bname, "sha256", c->pool != NULL ? pool_backbone_sha256(c->pool) : NULL,
        "channels", ch[0], ch[1], ch[2], "devices", devs, "workers_per_device", cfg->workers,
        "batch", cfg->batch, "limits", "max_body_bytes", (json_int_t)cfg->max_body_mb * 1048576,
        "max_pixels", (json_int_t)cfg->max_pixels, "min_side", cfg->min_side, "queue_depth",
        cfg->queue_depth, "max_connections", cfg->max_connections, "retention",
        (json_int_t)cfg->retention, "max_images_per_product", (json_int_t)cfg->max_images,
        "max_images_per_upload", MAX_UPLOAD_PARTS, "request_timeout_s", cfg->request_timeout_s,
        "tls", cfg->tls_cert[0] != '\0', "schema_version", store_schema_version(c->st));
    json_t *lim = o != NULL ? json_object_get(o, "limits") : NULL;
    if (lim != NULL) {
        /* the fixed ones, of JSON bodies, names and lists (api_int.h) */
        json_object_set_new(lim, "max_json_body_bytes", json_integer(API_BODY_SETTINGS));
        json_object_set_new(lim, "max_name_bytes", json_integer(API_NAME_MAX));
        json_object_set_new(lim, "max_list_limit", json_integer(STORE_LIST_MAX));
        /* the slow-client limits (conn.c) */
        json_object_set_new(lim, "header_timeout_s", json_integer(cfg->header_timeout_s));
        json_object_set_new(lim, "body_timeout_s", json_integer(cfg->body_timeout_s));
        json_object_set_new(lim, "body_min_rate_kb", json_integer(cfg->body_min_rate_kb));
        json_object_set_new(lim, "max_connections_per_ip", json_integer(cfg->max_conn_per_ip));
        /* the decoded-pixel budget (budget.h) */
        json_object_set_new(lim, "pixel_budget_bytes",
                            json_integer((json_int_t)cfg->pixel_budget_mb << 20));
        json_object_set_new(lim, "pixel_wait_ms", json_integer(cfg->pixel_wait_ms));
    }
    return reply_json(r, 200, o);
}
