/* routes.c - the route table of API v1 and its handlers. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heatmap.h"
#include "render.h"
#include "image.h"
#include "metrics_prom.h"

#define MAX_UPLOAD_PARTS 256
#define MAX_REGIONS 64

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static json_t *time_json(int64_t ms)
{
    char buf[STORE_TIME_LEN];
    if (ms == 0)
        return json_null();
    return json_string(store_time_format(ms, buf));
}

static json_t *json_text_or(const char *text, json_t *fallback)
{
    json_t *j = text != NULL ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    if (j == NULL)
        return fallback;
    json_decref(fallback);
    return j;
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* Maps a store failure to an error reply. what names the thing ("product"). */
static enum MHD_Result store_fail(hreq *r, store_status ss, const char *what, const char *id)
{
    switch (ss) {
    case STORE_ERR_NOT_FOUND:
        return reply_error(r, 404, "not_found", "no such %s: %s", what, id);
    case STORE_ERR_EXISTS:
        return reply_error(r, 409, "already_exists", "%s %s already exists", what, id);
    case STORE_ERR_CONFLICT:
        return reply_error(r, 409, "conflict", "%s %s: %s", what, id, store_strerror(ss));
    case STORE_ERR_INVALID:
        return reply_error(r, 400, "invalid_argument", "invalid %s: %s", what, id);
    case STORE_ERR_FULL:
        return reply_error(r, 507, "storage_full", "%s", store_strerror(ss));
    case STORE_ERR_BUSY:
        return reply_error(r, 503, "store_busy", "%s", store_strerror(ss));
    default:
        return reply_error(r, 500, "store_error", "%s", store_strerror(ss));
    }
}

/* ---- JSON views ----------------------------------------------------------- */

static json_t *product_json(const store_product_t *p)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(p->id));
    json_object_set_new(o, "name", json_string(p->name != NULL ? p->name : ""));
    json_object_set_new(o, "settings", json_text_or(p->settings_json, json_object()));
    json_object_set_new(o, "active_version",
                        p->active_version > 0 ? json_integer(p->active_version) : json_null());
    json_object_set_new(o, "threshold",
                        p->has_threshold ? num_or_null(p->threshold) : json_null());
    json_object_set_new(o, "image_count", json_integer(p->image_count));
    json_object_set_new(o, "created_at", time_json(p->created_at));
    json_object_set_new(o, "updated_at", time_json(p->updated_at));
    return o;
}

static json_t *job_json(const store_job_t *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "product", json_string(j->product));
    json_object_set_new(o, "state", json_string(store_job_state_name(j->state)));
    json_object_set_new(o, "params", json_text_or(j->params_json, json_object()));
    json_object_set_new(o, "progress",
                        json_pack("{s:s?,s:i,s:i,s:o,s:f}", "phase",
                                  j->phase != NULL && j->phase[0] ? j->phase : NULL, "epoch",
                                  j->epoch, "epochs", j->epochs, "loss", num_or_null(j->loss),
                                  "fraction", isfinite(j->fraction) ? j->fraction : 0.0));
    json_object_set_new(o, "model_version",
                        j->model_version > 0 ? json_integer(j->model_version) : json_null());
    json_object_set_new(o, "error", j->error != NULL ? json_string(j->error) : json_null());
    json_object_set_new(o, "cancel_requested", json_boolean(j->cancel_requested));
    json_object_set_new(o, "created_at", time_json(j->created_at));
    json_object_set_new(o, "started_at", time_json(j->started_at));
    json_object_set_new(o, "finished_at", time_json(j->finished_at));
    return o;
}

static json_t *model_json(const store_model_t *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "product", json_string(m->product));
    json_object_set_new(o, "version", json_integer(m->version));
    json_object_set_new(o, "created_at", time_json(m->created_at));
    json_object_set_new(o, "job_id", m->job_id[0] ? json_string(m->job_id) : json_null());
    json_object_set_new(o, "threshold", num_or_null(m->threshold));
    json_object_set_new(o, "active", json_boolean(m->active));
    json_object_set_new(o, "backbone_sha256",
                        m->backbone_sha256[0] ? json_string(m->backbone_sha256) : json_null());
    json_object_set_new(o, "figures", json_text_or(m->figures_json, json_object()));
    return o;
}

static json_t *inspection_json(const store_inspection_t *in)
{
    char url[128];
    json_t *o = json_object();
    json_object_set_new(o, "inspection_id", json_string(in->id));
    json_object_set_new(o, "product", json_string(in->product));
    json_object_set_new(o, "model_version", json_integer(in->model_version));
    json_object_set_new(o, "score", json_real(in->score));
    json_object_set_new(o, "threshold", json_real(in->threshold));
    json_object_set_new(o, "decision", json_string(in->decision));
    json_object_set_new(o, "map_max", json_real(in->map_max));
    json_object_set_new(o, "regions", json_text_or(in->regions_json, json_array()));
    if (in->has_images) {
        snprintf(url, sizeof url, "/v1/inspections/%s/heatmap.png", in->id);
        json_object_set_new(o, "heatmap_url", json_string(url));
        snprintf(url, sizeof url, "/v1/inspections/%s/map.png", in->id);
        json_object_set_new(o, "map_url", json_string(url));
    } else {
        json_object_set_new(o, "heatmap_url", json_null());
        json_object_set_new(o, "map_url", json_null());
    }
    json_object_set_new(o, "timings_ms", json_text_or(in->timings_json, json_object()));
    json_object_set_new(o, "created_at", time_json(in->created_at));
    json_object_set_new(o, "key_id", in->key_id[0] ? json_string(in->key_id) : json_null());
    return o;
}

static json_t *key_json(const store_key_t *k)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(k->id));
    json_object_set_new(o, "name", json_string(k->name != NULL ? k->name : ""));
    json_object_set_new(o, "role", json_string(store_role_name(k->role)));
    json_object_set_new(o, "created_at", time_json(k->created_at));
    json_object_set_new(o, "revoked_at", time_json(k->revoked_at));
    return o;
}

/* Reads ?limit (default 100, capped at 1000). Replies 400 and returns -1 on
 * a bad value. */
static int query_limit(hreq *r, size_t *limit)
{
    const char *s = req_query(r, "limit");
    long long v;
    *limit = STORE_LIST_DEFAULT;
    if (s == NULL)
        return 0;
    if (parse_int_range(s, 1, INT32_MAX, &v) != 0) {
        reply_error(r, 400, "invalid_limit", "limit must be a positive integer");
        return -1;
    }
    *limit = v > STORE_LIST_MAX ? STORE_LIST_MAX : (size_t)v;
    return 0;
}

/* ---- health, metrics, info --------------------------------------------- */

static enum MHD_Result h_healthz(hreq *r)
{
    return reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result h_readyz(hreq *r)
{
    api_ctx *c = r->ctx;
    if (store_ping(c->st) != STORE_OK)
        return reply_error(r, 503, "not_ready", "database not reachable");
    if (c->pool == NULL || !pool_ready(c->pool))
        return reply_error(r, 503, "not_ready", "inference workers not running");
    if (c->jobs == NULL || !jobs_alive(c->jobs))
        return reply_error(r, 503, "not_ready", "training runner not running");
    return reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

static enum MHD_Result h_metrics(hreq *r)
{
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
    if (c->render != NULL)
        g.render_pending = render_pending(c->render);
    store_job_counts(c->st, g.jobs);
    store_image_count_all(c->st, &g.images_stored);
    size_t len = 0;
    char *text = mp_render(&g, &len);
    if (text == NULL)
        return reply_error(r, 500, "internal_error", "out of memory");
    return reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static enum MHD_Result h_openapi(hreq *r)
{
    return reply_static(r, 200, "application/json; charset=utf-8", api_openapi_json,
                        api_openapi_json_len);
}

static enum MHD_Result h_info(hreq *r)
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
    return reply_json(r, 200, o);
}

/* ---- products -------------------------------------------------------------- */

static enum MHD_Result h_product_create(hreq *r)
{
    int ok;
    char err[256];
    train_overrides tov;
    json_t *body = req_json(r, &ok);
    if (!ok)
        return MHD_YES;
    if (!json_is_object(body)) {
        json_decref(body);
        return reply_error(r, 400, "invalid_body", "body must be a JSON object with \"id\"");
    }
    const char *id = json_string_value(json_object_get(body, "id"));
    json_t *name = json_object_get(body, "name");
    json_t *settings = json_object_get(body, "settings");
    enum MHD_Result ret;
    if (id == NULL || !parse_product_id_ok(id) || !store_valid_product_id(id)) {
        ret = reply_error(r, 400, "invalid_product_id",
                          "\"id\" must be 1-64 characters of [A-Za-z0-9._-]");
        goto out;
    }
    if (name != NULL && !json_is_null(name) && !json_is_string(name)) {
        ret = reply_error(r, 400, "invalid_body", "\"name\" must be a string");
        goto out;
    }
    if (parse_train_overrides(settings, &tov, err, sizeof err) != 0) {
        ret = reply_error(r, 400, "invalid_settings", "%s", err);
        goto out;
    }
    char *stext = settings != NULL && json_is_object(settings)
                      ? json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS)
                      : NULL;
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status ss = store_product_create(r->ctx->st, id, json_string_value(name), stext, &p);
    free(stext);
    if (ss == STORE_ERR_EXISTS) {
        ret = reply_error(r, 409, "product_exists", "product %s already exists", id);
        goto out;
    }
    if (ss != STORE_OK) {
        ret = store_fail(r, ss, "product", id);
        goto out;
    }
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/products/%s", p.id);
    ret = reply_json_hdr(r, 201, product_json(&p), "Location", loc);
    store_product_clear(&p);
out:
    json_decref(body);
    return ret;
}

static enum MHD_Result h_product_list(hreq *r)
{
    size_t limit, n = 0;
    store_product_t *arr = NULL;
    char next[STORE_PRODUCT_ID_MAX] = "";
    if (query_limit(r, &limit) != 0)
        return MHD_YES;
    store_status ss = store_product_list(r->ctx->st, limit, req_query(r, "after"), &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, product_json(&arr[i]));
    store_products_free(arr, n);
    return reply_json(r, 200, json_pack("{s:o,s:o}", "products", a, "next",
                                        next[0] ? json_string(next) : json_null()));
}

static enum MHD_Result h_product_get(hreq *r)
{
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status ss = store_product_get(r->ctx->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    enum MHD_Result ret = reply_json(r, 200, product_json(&p));
    store_product_clear(&p);
    return ret;
}

static enum MHD_Result h_product_patch(hreq *r)
{
    int ok;
    char err[256];
    train_overrides tov;
    json_t *body = req_json(r, &ok);
    enum MHD_Result ret;
    if (!ok)
        return MHD_YES;
    if (!json_is_object(body)) {
        json_decref(body);
        return reply_error(r, 400, "invalid_body", "body must be a JSON object");
    }
    json_t *name = json_object_get(body, "name");
    json_t *settings = json_object_get(body, "settings");
    if (name != NULL && !json_is_string(name)) {
        ret = reply_error(r, 400, "invalid_body", "\"name\" must be a string");
        goto out;
    }
    if (settings != NULL && !json_is_object(settings)) {
        ret = reply_error(r, 400, "invalid_settings", "\"settings\" must be an object");
        goto out;
    }
    if (parse_train_overrides(settings, &tov, err, sizeof err) != 0) {
        ret = reply_error(r, 400, "invalid_settings", "%s", err);
        goto out;
    }
    char *stext = settings != NULL ? json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status ss = store_product_patch(r->ctx->st, r->params[0], json_string_value(name),
                                          stext, &p);
    free(stext);
    if (ss != STORE_OK) {
        ret = store_fail(r, ss, "product", r->params[0]);
        goto out;
    }
    ret = reply_json(r, 200, product_json(&p));
    store_product_clear(&p);
out:
    json_decref(body);
    return ret;
}

static enum MHD_Result h_product_delete(hreq *r)
{
    store_status ss = store_product_delete(r->ctx->st, r->params[0]);
    if (ss == STORE_ERR_CONFLICT)
        return reply_error(r, 409, "job_active",
                           "product %s has a queued or running job; cancel it first",
                           r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    if (r->ctx->pool != NULL)
        pool_forget(r->ctx->pool, r->params[0]);
    return reply_empty(r, 204);
}

/* ---- images ---------------------------------------------------------------- */

typedef struct upload {
    const uint8_t *data;
    size_t len;
    int w, h;
    const char *ext;
} upload;

/* Validates one image; on failure replies and returns -1. */
static int check_image(hreq *r, const uint8_t *data, size_t len, int part, upload *u)
{
    img_kind kind = IMG_KIND_UNKNOWN;
    img_limits lim = img_default_limits();
    img_rgbf im;
    char where[48] = "";
    if (part >= 0)
        snprintf(where, sizeof where, "part %d: ", part + 1);
    lim.max_pixels = (size_t)r->ctx->cfg->max_pixels;
    lim.min_side = r->ctx->cfg->min_side;
    img_status st = img_probe(data, len, &kind, NULL, NULL);
    if (st == IMG_OK)
        st = img_decode(data, len, &lim, &im);
    if (st != IMG_OK) {
        reply_error(r, img_status_http(st), img_status_code(st), "%s%s", where,
                    img_status_str(st));
        return -1;
    }
    u->data = data;
    u->len = len;
    u->w = im.width;
    u->h = im.height;
    u->ext = kind == IMG_KIND_PNG ? "png" : "jpg";
    img_rgbf_free(&im);
    return 0;
}

static int is_image_type(const char *ct)
{
    return strcmp(ct, "image/jpeg") == 0 || strcmp(ct, "image/png") == 0 ||
           strcmp(ct, "image/jpg") == 0;
}

static enum MHD_Result h_image_upload(hreq *r)
{
    char ct[128];
    upload *ups = NULL;
    mp_part *parts = NULL;
    int n = 0;
    enum MHD_Result ret;
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status ss = store_product_get(r->ctx->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    int64_t have = p.image_count;
    store_product_clear(&p);
    req_content_type(r, ct, sizeof ct);
    if (is_image_type(ct)) {
        ups = calloc(1, sizeof *ups);
        if (ups == NULL)
            return reply_error(r, 503, "out_of_memory", "out of memory");
        if (check_image(r, r->body, r->len, -1, &ups[0]) != 0) {
            free(ups);
            return MHD_YES;
        }
        n = 1;
    } else if (strcmp(ct, "multipart/form-data") == 0) {
        char boundary[80];
        if (mp_boundary(req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), boundary,
                        sizeof boundary) != 0)
            return reply_error(r, 400, "malformed_multipart",
                               "multipart/form-data without a valid boundary");
        parts = calloc(MAX_UPLOAD_PARTS, sizeof *parts);
        ups = calloc(MAX_UPLOAD_PARTS, sizeof *ups);
        if (parts == NULL || ups == NULL) {
            ret = reply_error(r, 503, "out_of_memory", "out of memory");
            goto out;
        }
        mp_status ms = mp_parse(r->body, r->len, boundary, parts, MAX_UPLOAD_PARTS, &n);
        if (ms == MP_ERR_TOO_MANY) {
            ret = reply_error(r, 413, "too_many_parts", "at most %d images per request",
                              MAX_UPLOAD_PARTS);
            goto out;
        }
        if (ms != MP_OK) {
            ret = reply_error(r, 400, "malformed_multipart", "malformed multipart/form-data body");
            goto out;
        }
        int k = 0;
        for (int i = 0; i < n; i++) {
            /* plain form fields (no filename, text type) are skipped */
            if (parts[i].filename[0] == '\0' &&
                (parts[i].content_type[0] == '\0' ||
                 strncmp(parts[i].content_type, "text/", 5) == 0))
                continue;
            if (parts[i].content_type[0] != '\0' && !is_image_type(parts[i].content_type) &&
                strcmp(parts[i].content_type, "application/octet-stream") != 0) {
                ret = reply_error(r, 415, "unsupported_media_type",
                                  "part %d: %s is not image/jpeg or image/png", i + 1,
                                  parts[i].content_type);
                goto out;
            }
            if (check_image(r, parts[i].data, parts[i].len, i, &ups[k]) != 0) {
                ret = MHD_YES;
                goto out;
            }
            k++;
        }
        n = k;
        if (n == 0) {
            ret = reply_error(r, 400, "no_images", "the multipart body holds no image part");
            goto out;
        }
    } else {
        return reply_error(r, 415, "unsupported_media_type",
                           "send image/jpeg, image/png or multipart/form-data, not %s",
                           ct[0] ? ct : "no Content-Type");
    }
    /* checked before storing anything, so a refused upload stores nothing;
     * counted conservatively (re-sent duplicates count as new here) */
    if (have + n > r->ctx->cfg->max_images) {
        ret = reply_error(r, 409, "too_many_images",
                          "product %s holds %lld image(s); %d more would pass the limit of %lld",
                          r->params[0], (long long)have, n, (long long)r->ctx->cfg->max_images);
        goto out;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        store_image_t im;
        int created = 0;
        memset(&im, 0, sizeof im);
        ss = store_image_put(r->ctx->st, r->params[0], ups[i].data, ups[i].len, ups[i].w,
                             ups[i].h, ups[i].ext, &im, &created);
        if (ss != STORE_OK) {
            json_decref(arr);
            ret = store_fail(r, ss, "product", r->params[0]);
            goto out;
        }
        json_array_append_new(arr, json_pack("{s:s,s:i,s:i,s:b}", "id", im.sha256, "width",
                                             im.width, "height", im.height, "created",
                                             created));
    }
    ret = reply_json(r, 201, json_pack("{s:o}", "images", arr));
out:
    free(parts);
    free(ups);
    return ret;
}

static enum MHD_Result h_image_list(hreq *r)
{
    size_t limit, n = 0;
    store_image_t *arr = NULL;
    char next[STORE_SHA256_HEX] = "";
    const char *after = req_query(r, "after");
    if (query_limit(r, &limit) != 0)
        return MHD_YES;
    if (after != NULL && !parse_sha256_ok(after))
        return reply_error(r, 400, "invalid_cursor", "after must be an image id");
    store_status ss = store_image_list(r->ctx->st, r->params[0], limit, after, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:i,s:i,s:I,s:s,s:o}", "id", arr[i].sha256,
                                           "width", arr[i].width, "height", arr[i].height,
                                           "bytes", (json_int_t)arr[i].bytes, "format",
                                           arr[i].ext, "created_at",
                                           time_json(arr[i].created_at)));
    store_images_free(arr, n);
    return reply_json(r, 200, json_pack("{s:o,s:o}", "images", a, "next",
                                        next[0] ? json_string(next) : json_null()));
}

static enum MHD_Result h_image_delete(hreq *r)
{
    if (!parse_sha256_ok(r->params[1]))
        return reply_error(r, 404, "not_found", "no such image: %s", r->params[1]);
    store_status ss = store_image_delete(r->ctx->st, r->params[0], r->params[1]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "image", r->params[1]);
    return reply_empty(r, 204);
}

/* ---- training and jobs ----------------------------------------------------- */

static enum MHD_Result h_train(hreq *r)
{
    int ok;
    char err[256];
    train_overrides from_product, from_body, merged;
    json_t *body = req_json(r, &ok);
    enum MHD_Result ret;
    store_product_t p;
    memset(&p, 0, sizeof p);
    if (!ok)
        return MHD_YES;
    if (body != NULL && !json_is_object(body)) {
        json_decref(body);
        return reply_error(r, 400, "invalid_body", "body must be a JSON object");
    }
    if (parse_train_overrides(body, &from_body, err, sizeof err) != 0) {
        json_decref(body);
        return reply_error(r, 400, "invalid_params", "%s", err);
    }
    json_decref(body);
    store_status ss = store_product_get(r->ctx->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    json_t *settings = json_loads(p.settings_json, 0, NULL);
    if (parse_train_overrides(settings, &from_product, err, sizeof err) != 0)
        memset(&from_product, 0, sizeof from_product);
    json_decref(settings);
    int64_t n_images = p.image_count;
    store_product_clear(&p);
    if (n_images < 2)
        return reply_error(r, 422, "not_enough_images",
                           "product %s has %lld image(s); upload at least 2 good images",
                           r->params[0], (long long)n_images);
    train_overrides_merge(&from_product, &from_body, &merged);
    json_t *pj = json_object();
    train_overrides_to_json(&merged, pj);
    char *ptext = json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(pj);
    store_job_t job;
    memset(&job, 0, sizeof job);
    ss = store_job_create(r->ctx->st, r->params[0], ptext, &job);
    free(ptext);
    if (ss == STORE_ERR_CONFLICT)
        return reply_error(r, 409, "job_active",
                           "product %s already has a queued or running training job",
                           r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    jobs_notify(r->ctx->jobs);
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/jobs/%s", job.id);
    ret = reply_json_hdr(r, 202, json_pack("{s:o}", "job", job_json(&job)), "Location", loc);
    store_job_clear(&job);
    return ret;
}

static enum MHD_Result h_job_get(hreq *r)
{
    store_job_t j;
    memset(&j, 0, sizeof j);
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such job: %s", r->params[0]);
    store_status ss = store_job_get(r->ctx->st, r->params[0], &j);
    if (ss != STORE_OK)
        return store_fail(r, ss, "job", r->params[0]);
    enum MHD_Result ret = reply_json(r, 200, job_json(&j));
    store_job_clear(&j);
    return ret;
}

static enum MHD_Result h_job_list(hreq *r)
{
    size_t limit, n = 0;
    store_job_t *arr = NULL;
    const char *product = req_query(r, "product");
    const char *state = req_query(r, "state");
    store_job_state sf = STORE_JOB_QUEUED;
    if (query_limit(r, &limit) != 0)
        return MHD_YES;
    if (state != NULL && store_job_state_parse(state, &sf) != 0)
        return reply_error(r, 400, "invalid_state",
                           "state must be queued, running, succeeded, failed or canceled");
    if (product != NULL && !parse_product_id_ok(product))
        return reply_error(r, 400, "invalid_product_id", "invalid product id");
    store_status ss =
        store_job_list(r->ctx->st, product, state != NULL ? (int)sf : -1, limit, &arr, &n);
    if (ss != STORE_OK)
        return store_fail(r, ss, "job list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, job_json(&arr[i]));
    store_jobs_free(arr, n);
    return reply_json(r, 200, json_pack("{s:o}", "jobs", a));
}

static enum MHD_Result h_job_cancel(hreq *r)
{
    store_job_t j;
    memset(&j, 0, sizeof j);
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such job: %s", r->params[0]);
    store_status ss = store_job_cancel(r->ctx->st, r->params[0], &j);
    if (ss == STORE_ERR_CONFLICT)
        return reply_error(r, 409, "job_finished", "job %s has already finished",
                           r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "job", r->params[0]);
    jobs_cancel_hint(r->ctx->jobs, j.id);
    enum MHD_Result ret = reply_json(r, 202, json_pack("{s:o}", "job", job_json(&j)));
    store_job_clear(&j);
    return ret;
}

/* ---- models ------------------------------------------------------------------ */

static enum MHD_Result h_model_list(hreq *r)
{
    store_model_t *arr = NULL;
    size_t n = 0;
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status ss = store_product_get(r->ctx->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    store_product_clear(&p);
    ss = store_model_list(r->ctx->st, r->params[0], &arr, &n);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, model_json(&arr[i]));
    store_models_free(arr, n);
    return reply_json(r, 200, json_pack("{s:o}", "models", a));
}

static enum MHD_Result h_model_activate(hreq *r)
{
    long long v;
    if (parse_int_range(r->params[1], 1, INT64_MAX, &v) != 0)
        return reply_error(r, 404, "not_found", "no such model version: %s", r->params[1]);
    store_status ss = store_model_activate(r->ctx->st, r->params[0], (int64_t)v);
    if (ss != STORE_OK)
        return store_fail(r, ss, "model version", r->params[1]);
    store_product_t p;
    memset(&p, 0, sizeof p);
    ss = store_product_get(r->ctx->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    enum MHD_Result ret = reply_json(r, 200, product_json(&p));
    store_product_clear(&p);
    return ret;
}

/* Extension: the serialised model (cfa_model_save format), to move models
 * between replicas or to score with the CLI (`cfa eval --model`). */
static enum MHD_Result h_model_artifact(hreq *r)
{
    long long v;
    store_model_t m;
    memset(&m, 0, sizeof m);
    if (parse_int_range(r->params[1], 1, INT64_MAX, &v) != 0)
        return reply_error(r, 404, "not_found", "no such model version: %s", r->params[1]);
    store_status ss = store_model_get(r->ctx->st, r->params[0], (int64_t)v, &m);
    if (ss != STORE_OK)
        return store_fail(r, ss, "model version", r->params[1]);
    void *blob = m.blob;
    size_t len = m.blob_len;
    m.blob = NULL;
    store_model_clear(&m);
    return reply_bytes(r, 200, "application/octet-stream", blob, len);
}

static enum MHD_Result h_threshold(hreq *r)
{
    int ok;
    json_t *body = req_json(r, &ok);
    if (!ok)
        return MHD_YES;
    json_t *t = json_object_get(body, "threshold");
    if (!json_is_number(t) || !isfinite(json_number_value(t))) {
        json_decref(body);
        return reply_error(r, 400, "invalid_threshold", "body must be {\"threshold\": <number>}");
    }
    double thr = json_number_value(t);
    json_decref(body);
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status ss = store_product_get(r->ctx->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    int64_t active = p.active_version;
    store_product_clear(&p);
    if (active == 0)
        return reply_error(r, 422, "no_model", "product %s has no active model", r->params[0]);
    ss = store_model_set_threshold(r->ctx->st, r->params[0], active, thr);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    ss = store_product_get(r->ctx->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    enum MHD_Result ret = reply_json(r, 200, product_json(&p));
    store_product_clear(&p);
    return ret;
}

/* ---- inspection -------------------------------------------------------------- */

static atomic_long inspections_since_prune;

static enum MHD_Result h_inspect(hreq *r)
{
    api_ctx *c = r->ctx;
    char ct[128];
    double t_start = now_ms();
    enum MHD_Result ret;
    img_rgbf im;
    memset(&im, 0, sizeof im);
    const char *qs = req_query(r, "store");
    const char *qh = req_query(r, "heatmap");
    int keep = !(qs != NULL && (strcmp(qs, "false") == 0 || strcmp(qs, "0") == 0));
    int inline_png = qh != NULL && strcmp(qh, "inline") == 0;
    if (qs != NULL && strcmp(qs, "false") != 0 && strcmp(qs, "true") != 0 &&
        strcmp(qs, "0") != 0 && strcmp(qs, "1") != 0)
        return reply_error(r, 400, "invalid_query", "store must be true or false");
    if (qh != NULL && strcmp(qh, "inline") != 0 && strcmp(qh, "url") != 0)
        return reply_error(r, 400, "invalid_query", "heatmap must be inline or url");

    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status ss = store_product_get(c->st, r->params[0], &p);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    /* the version is fixed here: an activation after this point does not
     * change what this request is scored with */
    int64_t version = p.active_version;
    double threshold = p.threshold;
    store_product_clear(&p);
    if (version == 0)
        return reply_error(r, 422, "no_model",
                           "product %s has no active model: train one first", r->params[0]);
    req_content_type(r, ct, sizeof ct);
    if (!is_image_type(ct))
        return reply_error(r, 415, "unsupported_media_type",
                           "send the image as image/jpeg or image/png, not %s",
                           ct[0] ? ct : "no Content-Type");
    if (r->len == 0)
        return reply_error(r, 400, "empty_body", "the request has no image");
    img_limits lim = img_default_limits();
    lim.max_pixels = (size_t)c->cfg->max_pixels;
    lim.min_side = c->cfg->min_side;
    if (c->pool == NULL)
        return reply_error(r, 503, "not_ready", "inference workers are not running");
    /* announced since its headers came in (http.c): a worker with a batch
     * to fill waits for it while the body arrives and decodes; a request
     * that ends before pool_run is unannounced when it completes */
    /* 8-bit sources stay bytes: a quarter of the memory, widened by the
     * engine to the same floats */
    img_status is = img_decode_ex(r->body, r->len, &lim, IMG_DECODE_8BIT, &im);
    if (is != IMG_OK)
        return reply_error(r, img_status_http(is), img_status_code(is), "%s",
                           img_status_str(is));
    double t_decoded = now_ms();
    pool_req pr;
    memset(&pr, 0, sizeof pr);
    pr.announced = r->announced;
    pr.product = r->params[0];
    pr.version = version;
    pr.image.width = im.width;
    pr.image.height = im.height;
    pr.image.rgb = im.rgb;
    pr.image.rgb8 = im.rgb8;
    pool_status ps = pool_run(c->pool, &pr);
    r->announced = 0; /* pool_run ended the announcement */
    if (ps == POOL_BUSY || ps == POOL_STOPPED) {
        img_rgbf_free(&im);
        return reply_error(r, 503, ps == POOL_BUSY ? "overloaded" : "shutting_down",
                           ps == POOL_BUSY ? "the inference queue is full; retry later"
                                           : "the server is shutting down");
    }
    if (ps != POOL_OK) {
        img_rgbf_free(&im);
        if (pr.status == CFA_ERR_IMAGE)
            return reply_error(r, 422, "image_unusable", "%s", pr.error);
        if (pr.status == CFA_ERR_BACKBONE_MISMATCH)
            return reply_error(r, 409, "backbone_mismatch", "%s", pr.error);
        if (pr.status == CFA_ERR_NOMEM) /* host or device memory: retry later */
            return reply_error(r, 503, "out_of_memory", "%s", pr.error);
        return reply_error(r, 500, "inference_failed", "%s", pr.error);
    }
    double t_scored = now_ms();
    const cfa_result *res = &pr.result;
    int w = res->width, h = res->height;
    float map_max = res->score; /* cfa.h: the score is the map's maximum */
    const char *decision = res->score >= threshold ? "NG" : "OK";

    heatmap_region *regs = NULL;
    int n_regs = 0;
    if (regions_find(res->map, w, h, (float)threshold, MAX_REGIONS, &regs, &n_regs) != 0)
        n_regs = 0;
    json_t *regions = json_array();
    for (int i = 0; i < n_regs; i++)
        json_array_append_new(regions, json_pack("{s:i,s:i,s:i,s:i,s:I,s:f}", "x", regs[i].x,
                                                 "y", regs[i].y, "width", regs[i].width,
                                                 "height", regs[i].height, "area",
                                                 (json_int_t)regs[i].area, "score",
                                                 (double)regs[i].score));
    free(regs);

    store_inspection_t ins;
    memset(&ins, 0, sizeof ins);
    store_time_id(ins.id);
    void *heat_png = NULL;
    size_t heat_len = 0;
    char *heat_b64 = NULL;
    int have_images = 0;
    float vmax = threshold > 0 ? (float)(threshold * 1.5) : map_max;
    if (inline_png && render_heatmap_png(res->map, w, h, &im, vmax, &heat_png, &heat_len) == 0)
        heat_b64 = b64_encode(heat_png, heat_len); /* wanted in the response */
    if (keep) {
        /* the image as received and the model-geometry map are stored by
         * the render thread after the response; heatmap.png and map.png are
         * rendered from them on their first GET (render.h), which waits for
         * the files. A heatmap already encoded for the response goes along. */
        render_job job;
        memset(&job, 0, sizeof job);
        snprintf(job.id, sizeof job.id, "%s", ins.id);
        job.input = r->body; /* the body as received: no copy, http.c frees NULL */
        job.input_len = r->len;
        r->body = NULL;
        r->len = r->cap = 0;
        job.model_map = pr.result.model_map;
        job.model_w = res->model_width;
        job.model_h = res->model_height;
        job.resize_w = res->resize_width;
        job.resize_h = res->resize_height;
        job.width = w;
        job.height = h;
        job.vmax = vmax;
        job.map_max = map_max;
        job.heat_png = heat_png;
        job.heat_len = heat_len;
        pr.result.model_map = NULL;
        heat_png = NULL;
        if (c->render == NULL || render_submit(c->render, &job) != 0)
            have_images = render_now(c->st, &job) == 0; /* queue full: inline */
        else
            have_images = 1;
    }
    img_rgbf_free(&im);
    double t_end = now_ms();
    json_t *timings = json_pack("{s:f,s:f,s:f,s:f,s:f}", "decode", t_decoded - t_start, "queue",
                                pr.queue_ms, "model", pr.model_ms, "encode", t_end - t_scored,
                                "total", t_end - r->t0 * 1e3);

    snprintf(ins.product, sizeof ins.product, "%.64s", r->params[0]);
    ins.model_version = version;
    ins.score = res->score;
    ins.threshold = threshold;
    ins.map_max = map_max;
    snprintf(ins.decision, sizeof ins.decision, "%s", decision);
    ins.regions_json = json_dumps(regions, JSON_COMPACT | JSON_REAL_PRECISION(9));
    ins.timings_json = json_dumps(timings, JSON_COMPACT | JSON_REAL_PRECISION(6));
    ins.has_images = have_images;
    snprintf(ins.key_id, sizeof ins.key_id, "%.32s", r->key_id);
    ss = store_inspection_enqueue(c->st, &ins);
    if (ss == STORE_ERR_FULL)
        ss = store_inspection_insert(c->st, &ins);
    if (ss != STORE_OK)
        fprintf(stderr, "api: audit row for %s not written: %s\n", ins.id, store_strerror(ss));
    if (have_images && c->cfg->retention > 0 && atomic_fetch_add(&inspections_since_prune, 1) % 16 == 15)
        store_inspections_prune(c->st, c->cfg->retention, NULL);

    json_t *o = inspection_json(&ins);
    json_object_set(o, "regions", regions);
    json_object_set(o, "timings_ms", timings);
    json_object_del(o, "created_at");
    json_object_del(o, "key_id");
    if (heat_b64 != NULL)
        json_object_set_new(o, "heatmap_png_base64", json_string(heat_b64));
    free(heat_b64);
    free(heat_png);
    json_decref(regions);
    json_decref(timings);
    free(ins.regions_json);
    free(ins.timings_json);
    cfa_result_clear(&pr.result);
    ret = reply_json(r, 200, o);
    return ret;
}

static enum MHD_Result h_inspection_list(hreq *r)
{
    store_inspection_filter f;
    store_inspection_t *arr = NULL;
    size_t n = 0;
    char next[STORE_ID_LEN] = "";
    memset(&f, 0, sizeof f);
    if (query_limit(r, &f.limit) != 0)
        return MHD_YES;
    f.product = req_query(r, "product");
    f.decision = req_query(r, "decision");
    f.after = req_query(r, "after");
    const char *since = req_query(r, "since");
    if (f.product != NULL && !parse_product_id_ok(f.product))
        return reply_error(r, 400, "invalid_product_id", "invalid product id");
    if (f.decision != NULL && strcmp(f.decision, "OK") != 0 && strcmp(f.decision, "NG") != 0)
        return reply_error(r, 400, "invalid_decision", "decision must be OK or NG");
    if (f.after != NULL && !store_valid_id(f.after))
        return reply_error(r, 400, "invalid_cursor", "after must be an inspection id");
    if (since != NULL && store_time_parse(since, &f.since) != 0)
        return reply_error(r, 400, "invalid_since", "since must be an RFC 3339 time");
    store_status ss = store_inspection_list(r->ctx->st, &f, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "inspection list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, inspection_json(&arr[i]));
    store_inspections_free(arr, n);
    return reply_json(r, 200, json_pack("{s:o,s:o}", "inspections", a, "next",
                                        next[0] ? json_string(next) : json_null()));
}

static enum MHD_Result h_inspection_get(hreq *r)
{
    store_inspection_t in;
    memset(&in, 0, sizeof in);
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such inspection: %s", r->params[0]);
    store_status ss = store_inspection_get(r->ctx->st, r->params[0], &in);
    if (ss != STORE_OK)
        return store_fail(r, ss, "inspection", r->params[0]);
    enum MHD_Result ret = reply_json(r, 200, inspection_json(&in));
    store_inspection_clear(&in);
    return ret;
}

static enum MHD_Result inspection_file(hreq *r, const char *name)
{
    void *data = NULL;
    size_t len = 0;
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such inspection: %s", r->params[0]);
    if (r->ctx->render != NULL)
        render_wait(r->ctx->render, r->params[0]);
    store_status ss = render_get(r->ctx->st, r->params[0], name, &data, &len);
    if (ss == STORE_ERR_NOT_FOUND) {
        store_inspection_t in;
        memset(&in, 0, sizeof in);
        if (store_inspection_get(r->ctx->st, r->params[0], &in) == STORE_OK) {
            store_inspection_clear(&in);
            return reply_error(r, 404, "image_not_kept",
                               "inspection %s has no %s (stored without images or pruned by retention)",
                               r->params[0], name);
        }
        return reply_error(r, 404, "not_found", "no such inspection: %s", r->params[0]);
    }
    if (ss != STORE_OK)
        return store_fail(r, ss, "inspection", r->params[0]);
    return reply_bytes(r, 200, "image/png", data, len);
}

static enum MHD_Result h_heatmap(hreq *r) { return inspection_file(r, "heatmap.png"); }
static enum MHD_Result h_map(hreq *r) { return inspection_file(r, "map.png"); }

/* ---- keys ------------------------------------------------------------------------ */

static enum MHD_Result h_key_create(hreq *r)
{
    int ok;
    store_role role;
    json_t *body = req_json(r, &ok);
    if (!ok)
        return MHD_YES;
    const char *name = json_string_value(json_object_get(body, "name"));
    const char *rs = json_string_value(json_object_get(body, "role"));
    if (!json_is_object(body) || rs == NULL || store_role_parse(rs, &role) != 0) {
        json_decref(body);
        return reply_error(r, 400, "invalid_body",
                           "body must be {\"name\": \"...\", \"role\": \"inspect\"|\"operate\"|\"admin\"}");
    }
    char key[STORE_KEY_MAX];
    store_key_t k;
    memset(&k, 0, sizeof k);
    store_status ss = store_key_create(r->ctx->st, name != NULL ? name : "", role, NULL, key, &k);
    json_decref(body);
    if (ss != STORE_OK)
        return store_fail(r, ss, "key", "");
    json_t *o = key_json(&k);
    json_object_set_new(o, "key", json_string(key));
    memset(key, 0, sizeof key);
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/keys/%s", k.id);
    store_key_clear(&k);
    return reply_json_hdr(r, 201, o, "Location", loc);
}

static enum MHD_Result h_key_list(hreq *r)
{
    store_key_t *arr = NULL;
    size_t n = 0;
    store_status ss = store_key_list(r->ctx->st, &arr, &n);
    if (ss != STORE_OK)
        return store_fail(r, ss, "key list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, key_json(&arr[i]));
    store_keys_free(arr, n);
    return reply_json(r, 200, json_pack("{s:o}", "keys", a));
}

static enum MHD_Result h_key_delete(hreq *r)
{
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such key: %s", r->params[0]);
    store_status ss = store_key_revoke(r->ctx->st, r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "key", r->params[0]);
    return reply_empty(r, 204);
}

/* ---- the table --------------------------------------------------------------- */

const api_route api_routes[] = {
    {"GET", "/healthz", "/healthz", ROLE_NONE, 0, h_healthz, 0},
    {"GET", "/readyz", "/readyz", ROLE_NONE, 0, h_readyz, 0},
    {"GET", "/metrics", "/metrics", ROLE_NONE, 0, h_metrics, 0},
    {"GET", "/v1/openapi.json", "/v1/openapi.json", ROLE_NONE, 0, h_openapi, 0},
    {"GET", "/v1/info", "/v1/info", ROLE_INSPECT, 0, h_info, 0},
    {"POST", "/v1/products", "/v1/products", ROLE_OPERATE, 1, h_product_create, 0},
    {"GET", "/v1/products", "/v1/products", ROLE_INSPECT, 0, h_product_list, 0},
    {"GET", "/v1/products/{}", "/v1/products/{id}", ROLE_INSPECT, 0, h_product_get, 0},
    {"PATCH", "/v1/products/{}", "/v1/products/{id}", ROLE_OPERATE, 1, h_product_patch, 0},
    {"DELETE", "/v1/products/{}", "/v1/products/{id}", ROLE_OPERATE, 0, h_product_delete, 0},
    {"POST", "/v1/products/{}/images", "/v1/products/{id}/images", ROLE_OPERATE, 2, h_image_upload, 0},
    {"GET", "/v1/products/{}/images", "/v1/products/{id}/images", ROLE_OPERATE, 0, h_image_list, 0},
    {"DELETE", "/v1/products/{}/images/{}", "/v1/products/{id}/images/{image_id}", ROLE_OPERATE, 0, h_image_delete, 0},
    {"POST", "/v1/products/{}/train", "/v1/products/{id}/train", ROLE_OPERATE, 1, h_train, 0},
    {"GET", "/v1/products/{}/models", "/v1/products/{id}/models", ROLE_OPERATE, 0, h_model_list, 0},
    {"POST", "/v1/products/{}/models/{}/activate", "/v1/products/{id}/models/{version}/activate", ROLE_OPERATE, 0, h_model_activate, 0},
    {"GET", "/v1/products/{}/models/{}/artifact", "/v1/products/{id}/models/{version}/artifact", ROLE_OPERATE, 0, h_model_artifact, 0},
    {"PUT", "/v1/products/{}/threshold", "/v1/products/{id}/threshold", ROLE_OPERATE, 1, h_threshold, 0},
    {"POST", "/v1/products/{}/inspect", "/v1/products/{id}/inspect", ROLE_INSPECT, 2, h_inspect, 1},
    {"GET", "/v1/jobs", "/v1/jobs", ROLE_OPERATE, 0, h_job_list, 0},
    {"GET", "/v1/jobs/{}", "/v1/jobs/{job_id}", ROLE_OPERATE, 0, h_job_get, 0},
    {"POST", "/v1/jobs/{}/cancel", "/v1/jobs/{job_id}/cancel", ROLE_OPERATE, 0, h_job_cancel, 0},
    {"GET", "/v1/inspections", "/v1/inspections", ROLE_INSPECT, 0, h_inspection_list, 0},
    {"GET", "/v1/inspections/{}", "/v1/inspections/{id}", ROLE_INSPECT, 0, h_inspection_get, 0},
    {"GET", "/v1/inspections/{}/heatmap.png", "/v1/inspections/{id}/heatmap.png", ROLE_INSPECT, 0, h_heatmap, 0},
    {"GET", "/v1/inspections/{}/map.png", "/v1/inspections/{id}/map.png", ROLE_INSPECT, 0, h_map, 0},
    {"POST", "/v1/keys", "/v1/keys", ROLE_ADMIN, 1, h_key_create, 0},
    {"GET", "/v1/keys", "/v1/keys", ROLE_ADMIN, 0, h_key_list, 0},
    {"DELETE", "/v1/keys/{}", "/v1/keys/{id}", ROLE_ADMIN, 0, h_key_delete, 0},
};
const size_t api_n_routes = sizeof api_routes / sizeof api_routes[0];
