/* inspections.c - POST /inspect and the audit trail: /v1/inspections, their
 * heatmap and map files. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>
#include <time.h>

#include "heatmap.h"
#include "image.h"
#include "metrics_prom.h"
#include "render.h"

#define MAX_REGIONS 64

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static atomic_long inspections_since_prune;

enum MHD_Result h_inspect(hreq *r)
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

enum MHD_Result h_inspection_list(hreq *r)
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
    if (f.product != NULL && !store_valid_product_id(f.product))
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

enum MHD_Result h_heatmap(hreq *r) { return inspection_file(r, "heatmap.png"); }
enum MHD_Result h_map(hreq *r) { return inspection_file(r, "map.png"); }
