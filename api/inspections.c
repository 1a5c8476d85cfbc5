/* inspections.c - POST /inspect and the audit trail: /v1/inspections, their
 * heatmap and map files. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base_clock.h"
#include "inspect.h"
#include "render.h"
#include "settings.h"

/* The response: the audit row's view without created_at and key_id, with
 * the regions and timings the row was written from (not parsed back). */
static json_t *inspect_response(const inspect_result *res)
{
    json_t *o = inspection_json(&res->row); /* its JSON texts are NULL: nothing parsed */
    json_object_set(o, "regions", res->regions_json);
    json_object_set(o, "timings_ms", res->timings_json);
    json_object_del(o, "created_at");
    json_object_del(o, "key_id");
    if (res->heatmap != NULL)
        json_object_set_new(o, "heatmap_png_base64", json_string(res->heatmap));
    return o;
}

/* The product's border (its settings over the daemon's defaults). Read per
 * request, as the threshold is: a change applies from the next inspection.
 * A stored key now unknown is skipped, as for training (api/training.c). */
static int product_border(const api_ctx *c, const store_product_t *p)
{
    settings_t prod, all;
    char warn[256];
    settings_from_stored(p->settings_json, SW_PRODUCT, &prod, warn, sizeof warn);
    settings_resolve(&c->cfg->train, &prod, NULL, &all);
    return settings_has(&all, SET_border) ? (int)all.v[SET_border].i : 0;
}

enum MHD_Result h_inspect(hreq *r)
{
    api_ctx *c = r->ctx;
    double t_start = mono_ms();
    char ct[128];
    const char *qs = req_query(r, "store");
    const char *qh = req_query(r, "heatmap");
    if (qs != NULL && strcmp(qs, "false") != 0 && strcmp(qs, "true") != 0 &&
        strcmp(qs, "0") != 0 && strcmp(qs, "1") != 0)
        return reply_error(r, 400, "invalid_query", "store must be true or false");
    if (qh != NULL && strcmp(qh, "inline") != 0 && strcmp(qh, "url") != 0)
        return reply_error(r, 400, "invalid_query", "heatmap must be inline or url");

    store_product_t p;
    enum MHD_Result ret;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    /* the version is fixed here: an activation after this point does not
     * change what this request is scored with */
    inspect_req q = {.product = r->params[0],
                     .version = p.active_version,
                     .threshold = p.threshold,
                     .threshold_ng = p.threshold_ng,
                     .border = product_border(c, &p),
                     .body = &r->body,
                     .len = r->len,
                     .limits = img_default_limits(),
                     .keep = !(qs != NULL && (strcmp(qs, "false") == 0 || strcmp(qs, "0") == 0)),
                     .inline_heatmap = qh != NULL && strcmp(qh, "inline") == 0 ? b64_encode : NULL,
                     .key_id = r->key_id,
                     .announced = &r->announced,
                     .t_request_ms = r->t0 * 1e3,
                     .t_start_ms = t_start};
    store_product_clear(&p);
    if (q.version == 0)
        return reply_error(r, 422, "no_model",
                           "product %s has no active model: train one first", r->params[0]);
    req_content_type(r, ct, sizeof ct);
    if (!is_image_type(ct))
        return reply_error(r, 415, "unsupported_media_type",
                           "send the image as image/jpeg or image/png, not %s",
                           ct[0] ? ct : "no Content-Type");
    if (r->len == 0)
        return reply_error(r, 400, "empty_body", "the request has no image");
    q.limits.max_pixels = (size_t)c->cfg->max_pixels;
    q.limits.min_side = c->cfg->min_side;
    /* the bytes stay charged while the request waits for the pool, and the
     * engine widens them to floats (12 bytes a pixel) */
    q.limits.budget = c->pixels;
    q.limits.budget_wait_ms = c->cfg->pixel_wait_ms;
    q.limits.extra_bpp = 12;
    /* announced since its headers came in (http.c): a worker with a batch
     * to fill waits for it while the body arrives and decodes */
    inspect_result res = {.status = INSPECT_NOT_READY};
    if (c->inspect != NULL)
        inspect_run(c->inspect, &q, &res);
    if (r->body == NULL) /* the render job took it */
        r->len = r->cap = 0;
    ret = res.status == INSPECT_OK ? reply_json(r, 200, inspect_response(&res))
                                   : inspection_fail(r, &res);
    inspect_result_clear(&res);
    return ret;
}

enum MHD_Result h_inspection_list(hreq *r)
{
    store_inspection_filter f;
    store_inspection_t *arr = NULL;
    size_t n = 0;
    char next[STORE_ID_LEN] = "";
    memset(&f, 0, sizeof f);
    if (query_page(r, store_valid_id, &f.limit, &f.after) != 0)
        return MHD_YES;
    f.product = req_query(r, "product");
    f.decision = req_query(r, "decision");
    f.verdict = req_query(r, "verdict");
    const char *since = req_query(r, "since");
    if (f.product != NULL && !store_valid_product_id(f.product))
        return reply_error(r, 400, "invalid_product_id", "invalid product id");
    if (f.decision != NULL && strcmp(f.decision, "OK") != 0 && strcmp(f.decision, "NG") != 0)
        return reply_error(r, 400, "invalid_decision", "decision must be OK or NG");
    if (f.verdict != NULL && !store_valid_verdict(f.verdict))
        return reply_error(r, 400, "invalid_verdict", "verdict must be OK, UNSURE or NG");
    if (since != NULL && store_time_parse(since, &f.since) != 0)
        return reply_error(r, 400, "invalid_since", "since must be an RFC 3339 time");
    store_status ss = store_inspection_list(r->ctx->st, &f, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "inspection list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, inspection_json(&arr[i]));
    store_inspections_free(arr, n);
    return reply_list(r, "inspections", a, next);
}

enum MHD_Result h_inspection_get(hreq *r)
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

enum MHD_Result h_heatmap(hreq *r) { return inspection_file(r, "heatmap.png"); }
enum MHD_Result h_map(hreq *r) { return inspection_file(r, "map.png"); }
