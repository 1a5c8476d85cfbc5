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
    json_t *o = inspect_view(&res->row); /* its JSON texts are NULL: nothing parsed */
    json_object_set(o, "regions", res->regions_json);
    json_object_set(o, "timings_ms", res->timings_json);
    if (res->heatmap != NULL)
        json_object_set_new(o, "heatmap_png_base64", json_string(res->heatmap));
    return o;
}

/* A multipart inspection: one image part and an optional "meta" part (JSON,
 * part identity). The image is moved to the front of the body, which then
 * holds only it, and its type goes into ct. -1 after replying 400. */
static int inspect_multipart(hreq *r, part_fields *part, char *ct, size_t ctcap)
{
    char boundary[80], why[256];
    mp_part parts[4];
    int n = 0;
    const mp_part *img = NULL, *meta = NULL;
    if (mp_boundary(req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), boundary, sizeof boundary) != 0 ||
        mp_parse(r->body, r->len, boundary, parts, 4, &n) != MP_OK) {
        reply_error(r, 400, "malformed_multipart",
                    "malformed multipart/form-data body (at most 4 parts: one image, one meta)");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const mp_part *pt = &parts[i];
        const mp_part **slot = strcmp(pt->name, "meta") == 0 ? &meta : &img;
        if (*slot != NULL) {
            reply_error(r, 400, "malformed_multipart", "the form holds two %s parts",
                        slot == &meta ? "meta" : "image");
            return -1;
        }
        *slot = pt;
    }
    int bad = meta != NULL ? part_meta_parse(part, (const char *)meta->data, meta->len, why,
                                             sizeof why)
                           : 0;
    if (bad != 0) {
        reply_error(r, 400,
                    bad == -2                   ? "invalid_part_field"
                    : meta->len > PART_META_MAX ? "meta_too_large"
                                                : "invalid_meta",
                    "%s", why);
        return -1;
    }
    if (img == NULL) {
        reply_error(r, 400, "no_image", "the form holds no image part");
        return -1;
    }
    snprintf(ct, ctcap, "%s", img->content_type);
    memmove(r->body, img->data, img->len);
    r->len = img->len;
    return 0;
}

static store_part_t store_part_of(const part_fields *p)
{
    store_part_t sp;
    memset(&sp, 0, sizeof sp);
    snprintf(sp.part_id, sizeof sp.part_id, "%s", p->v[PART_ID]);
    snprintf(sp.serial, sizeof sp.serial, "%s", p->v[PART_SERIAL]);
    snprintf(sp.camera, sizeof sp.camera, "%s", p->v[PART_CAMERA]);
    snprintf(sp.station, sizeof sp.station, "%s", p->v[PART_STATION]);
    snprintf(sp.order, sizeof sp.order, "%s", p->v[PART_ORDER]);
    return sp;
}

/* ?store and ?heatmap; -1 after replying 400. */
static int inspect_flags(hreq *r, int *keep, int *inline_map)
{
    const char *qs = req_query(r, "store");
    const char *qh = req_query(r, "heatmap");
    if (qs != NULL && strcmp(qs, "false") != 0 && strcmp(qs, "true") != 0 &&
        strcmp(qs, "0") != 0 && strcmp(qs, "1") != 0) {
        reply_error(r, 400, "invalid_query", "store must be true or false");
        return -1;
    }
    if (qh != NULL && strcmp(qh, "inline") != 0 && strcmp(qh, "url") != 0) {
        reply_error(r, 400, "invalid_query", "heatmap must be inline or url");
        return -1;
    }
    *keep = !(qs != NULL && (strcmp(qs, "false") == 0 || strcmp(qs, "0") == 0));
    *inline_map = qh != NULL && strcmp(qh, "inline") == 0;
    return 0;
}

/* What comes with the image: flags, the image itself out of a multipart
 * form, part identity, an Idempotency-Key. 1 when the request was answered
 * (an error, a replay) with *ret set. */
static int inspect_inputs(hreq *r, part_fields *part, char *ct, size_t ctcap, int *keep,
                          int *inline_map, enum MHD_Result *ret)
{
    *ret = MHD_YES;
    if (inspect_flags(r, keep, inline_map) != 0 || line_part_from_request(r, part) != 0)
        return 1;
    req_content_type(r, ct, ctcap);
    if (strcmp(ct, "multipart/form-data") == 0 && inspect_multipart(r, part, ct, ctcap) != 0)
        return 1;
    return line_idem_begin(r, 1, part, ret);
}

/* The product's border (its settings over the daemon's defaults), for a
 * model whose figures do not carry the border it was calibrated with (one
 * trained before they did); a newer model's own border wins (inspect.c).
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
    part_fields part;
    int keep, inline_map;
    enum MHD_Result ret;
    memset(&part, 0, sizeof part);
    if (inspect_inputs(r, &part, ct, sizeof ct, &keep, &inline_map, &ret) != 0)
        return ret;
    store_part_t sp = store_part_of(&part);

    store_product_t p;
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
                     .keep = keep,
                     .inline_heatmap = inline_map ? b64_encode : NULL,
                     .key_id = r->key_id,
                     .part = &sp,
                     .idem = line_idem_entry(r),
                     .announced = &r->announced,
                     .t_request_ms = r->t0 * 1e3,
                     .t_start_ms = t_start};
    store_product_clear(&p);
    if (q.version == 0)
        return reply_error(r, 422, "no_model",
                           "product %s has no active model: train one first", r->params[0]);
    if (!is_image_type(ct))
        return reply_error(r, 415, "unsupported_media_type",
                           "send the image as image/jpeg or image/png (alone, or as a part of "
                           "multipart/form-data), not %s",
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
    if (res.status == INSPECT_OK)
        ret = reply_json(r, 200, inspect_response(&res));
    else if (res.status == INSPECT_ERR_STORE && res.store == STORE_ERR_EXISTS && q.idem != NULL)
        ret = line_idem_replay_now(r); /* a repeat under the key committed first */
    else
        ret = inspection_fail(r, &res);
    inspect_result_clear(&res);
    return ret;
}

/* The audit trail's filters (GET /v1/inspections and its export); -1
 * after replying 400 naming the filter. */
int inspection_filters(hreq *r, store_inspection_filter *f)
{
    const char *since = req_query(r, "since"), *until = req_query(r, "until");
    const char *mv = req_query(r, "model_version");
    const char **part[PART_N] = {&f->part_id, &f->serial, &f->camera, &f->station, &f->order};
    long long v = 0;
    char why[160];
    f->product = req_query(r, "product");
    f->decision = req_query(r, "decision");
    f->verdict = req_query(r, "verdict");
    if (f->verdict != NULL && !store_valid_verdict(f->verdict))
        return reply_error(r, 400, "invalid_verdict", "verdict must be OK, UNSURE or NG"), -1;
    if (f->product != NULL && !store_valid_product_id(f->product))
        return reply_error(r, 400, "invalid_product_id", "invalid product id"), -1;
    if (f->decision != NULL && strcmp(f->decision, "OK") != 0 && strcmp(f->decision, "NG") != 0)
        return reply_error(r, 400, "invalid_decision", "decision must be OK or NG"), -1;
    if (since != NULL && store_time_parse(since, &f->since) != 0)
        return reply_error(r, 400, "invalid_since", "since must be an RFC 3339 time"), -1;
    if (until != NULL && store_time_parse(until, &f->until) != 0)
        return reply_error(r, 400, "invalid_until", "until must be an RFC 3339 time"), -1;
    if (mv != NULL && parse_int_range(mv, 1, INT64_MAX, &v) != 0)
        return reply_error(r, 400, "invalid_model_version",
                           "model_version must be a whole number from 1"), -1;
    f->model_version = v;
    for (int i = 0; i < PART_N; i++) {
        *part[i] = req_query(r, part_names[i]);
        if (*part[i] != NULL && part_value_check(*part[i], strlen(*part[i]), why, sizeof why) != 0)
            return reply_error(r, 400, "invalid_part_field", "%s %s", part_names[i], why), -1;
    }
    return 0;
}

enum MHD_Result h_inspection_list(hreq *r)
{
    store_inspection_filter f;
    store_inspection_t *arr = NULL;
    size_t n = 0;
    char next[STORE_ID_LEN] = "";
    memset(&f, 0, sizeof f);
    if (query_page(r, store_valid_id, &f.limit, &f.after) != 0 || inspection_filters(r, &f) != 0)
        return MHD_YES;
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
    json_t *o = inspection_json(&in);
    json_object_set_new(o, "label", inspection_label_json(r->ctx->st, in.id));
    enum MHD_Result ret = reply_json(r, 200, o);
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
