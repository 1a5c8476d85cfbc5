/* inspect.c - one inspection below HTTP (inspect.h): decode, pool, decision,
 * regions, the render job, the audit row, retention. */
#define _GNU_SOURCE
#include "inspect.h"
#include "roi_inspect.h"

#include "base_clock.h"
#include "base_log.h"
#include "contour.h"
#include "metrics_prom.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Retention walks the audit table: once every PRUNE_EVERY inspections that
 * kept files is often enough to hold the files near the limit. */
#define PRUNE_EVERY 16

struct inspect {
    inspect_options opt;
    atomic_long since_prune; /* inspections that kept files, since start */
    roi_cache *roi;          /* the models' ROI masks, decoded (issue 13)   */
};

int inspect_create(const inspect_options *opts, inspect_t **out)
{
    inspect_t *in = calloc(1, sizeof *in);
    *out = in;
    if (in == NULL)
        return -1;
    in->opt = *opts;
    atomic_init(&in->since_prune, 0);
    in->roi = roi_cache_new();
    return 0;
}

void inspect_free(inspect_t *in)
{
    if (in != NULL)
        roi_cache_free(in->roi);
    free(in);
}

void inspect_result_clear(inspect_result *res)
{
    free(res->regions);
    free(res->heatmap);
    free(res->row.regions_json);
    free(res->row.timings_json);
    json_decref(res->regions_json);
    json_decref(res->timings_json);
    memset(res, 0, sizeof *res);
}

/* Decodes the body and scores it on the pool. On INSPECT_OK *im holds the
 * pixels and pr->result the maps; otherwise neither holds anything. */
static inspect_status score(inspect_t *in, inspect_req *q, img_rgbf *im, pool_req *pr,
                            roi_inspect *ri, inspect_result *res)
{
    img_limits lim = q->limits;
    if (roi_inspect_begin(in->roi, in->opt.st, q->product, q->version, ri, res->error,
                          sizeof res->error) != 0) {
        res->pool = POOL_FAILED;
        res->engine = CFA_ERR_IO;
        return INSPECT_ERR_POOL;
    }
    /* The engine shrinks the image to the model's resize anyway: a JPEG is
     * decoded at the smallest DCT scale still >= it (image.h), a fraction
     * of the pixels to decode, charge and widen. No resize known (the
     * model cannot be read): whole, and pool_run reports why. */
    img_kind kind = IMG_KIND_UNKNOWN;
    /* tiles are cut at the image's own resolution: never a reduced decode */
    if (!in->opt.jpeg_full && ri->tile <= 0 &&
        img_probe(*q->body, q->len, &kind, NULL, NULL) == IMG_OK &&
        kind == IMG_KIND_JPEG) /* a PNG never scales: no lookup, no model parse */
        pool_model_resize(in->opt.pool, q->product, q->version, &lim.fit_w, &lim.fit_h);
    /* 8-bit sources stay bytes: a quarter of the memory, widened by the
     * engine to the same floats */
    res->img = img_decode_ex(*q->body, q->len, &lim, IMG_DECODE_8BIT, im);
    if (res->img != IMG_OK)
        return INSPECT_ERR_DECODE;
    res->timings.decode = mono_ms() - q->t_start_ms;
    memset(pr, 0, sizeof *pr);
    pr->announced = q->announced != NULL && *q->announced;
    pr->product = q->product;
    pr->version = q->version;
    pr->image.width = im->width;
    pr->image.height = im->height;
    pr->image.rgb = im->rgb;
    pr->image.rgb8 = im->rgb8;
    if (roi_inspect_tiles(ri, im, pr, res->error, sizeof res->error) != 0) {
        img_rgbf_free(im);
        res->img = IMG_ERR_TOO_LARGE;
        return INSPECT_ERR_DECODE;
    }
    res->pool = pool_run(in->opt.pool, pr);
    if (q->announced != NULL)
        *q->announced = 0; /* pool_run ended the announcement */
    res->timings.queue = pr->queue_ms;
    res->timings.model = pr->model_ms;
    if (res->pool == POOL_OK &&
        ((ri->n_tiles == 0 && inspect_map_to_source(&pr->result, im->src_width, im->src_height) != 0) ||
         roi_inspect_finish(ri, im, &pr->result) != 0)) {
        cfa_result_clear(&pr->result);
        res->pool = POOL_FAILED;
        pr->status = CFA_ERR_NOMEM;
        snprintf(pr->error, sizeof pr->error, "no memory for the %d x %d map", im->src_width,
                 im->src_height);
    }
    if (res->pool == POOL_OK)
        return INSPECT_OK;
    if (res->pool == POOL_FAILED) {
        res->engine = pr->status;
        snprintf(res->error, sizeof res->error, "%s", pr->error);
    }
    img_rgbf_free(im);
    return INSPECT_ERR_POOL;
}

/* Stores the image as received and the model-geometry map durably before
 * the row commits, so that a row saying has_images has its files after any
 * crash; heatmap.png and map.png are rendered from them on their first GET
 * (render.h). A heatmap already encoded for the response is stored too.
 * Nothing is copied: the job takes the body, the map and the PNG. */
static store_status store_files(inspect_t *in, inspect_req *q, cfa_result *r,
                                const int area[4], const char *id, float vmax, void **png,
                                size_t png_len)
{
    render_job job;
    memset(&job, 0, sizeof job);
    snprintf(job.id, sizeof job.id, "%s", id);
    job.input = *q->body;
    job.input_len = q->len;
    *q->body = NULL;
    job.model_map = r->model_map;
    r->model_map = NULL;
    job.model_w = r->model_width;
    job.model_h = r->model_height;
    job.resize_w = r->resize_width;
    job.resize_h = r->resize_height;
    job.width = r->width;
    job.height = r->height;
    memcpy(job.area, area, sizeof job.area);
    job.vmax = vmax;
    job.map_max = r->score; /* cfa.h: the score is the map's maximum */
    job.heat_png = *png;
    job.heat_len = png_len;
    *png = NULL;
    return render_now(in->opt.st, &job);
}

json_t *inspect_timings_json(const inspect_timings *t)
{
    return json_pack("{s:f,s:f,s:f,s:f,s:f}", "decode", t->decode, "queue", t->queue, "model",
                     t->model, "encode", t->encode, "total", t->total);
}

/* Commits res->row with its regions and timings as JSON texts, keeping the
 * JSON values in res (regions stolen) for the response. Returns once the row
 * is durable, or the store's failure: then the inspection is not answered. */
static store_status write_row(inspect_t *in, inspect_result *res, json_t *regions)
{
    res->regions_json = regions;
    res->timings_json = inspect_timings_json(&res->timings);
    store_inspection_t *row = &res->row;
    row->regions_json = json_dumps(regions, JSON_COMPACT | JSON_REAL_PRECISION(9));
    row->timings_json = json_dumps(res->timings_json, JSON_COMPACT | JSON_REAL_PRECISION(6));
    store_status ss = store_inspection_commit(in->opt.st, row);
    free(row->regions_json);
    free(row->timings_json);
    row->regions_json = row->timings_json = NULL;
    return ss;
}

/* The inspection fails for want of a durable record: nothing of it is kept. */
static inspect_status store_failed(inspect_t *in, inspect_result *res, store_status ss,
                                   int kept_files)
{
    snprintf(res->error, sizeof res->error, "%s", store_last_error());
    log_error("inspect", "inspection %s not recorded: %s (%s)", res->row.id, store_strerror(ss),
              res->error);
    if (kept_files)
        store_inspection_files_remove(in->opt.st, res->row.id);
    res->store = ss;
    return res->status = INSPECT_ERR_STORE;
}

inspect_status inspect_run(inspect_t *in, inspect_req *q, inspect_result *res)
{
    img_rgbf im;
    pool_req pr;
    roi_inspect ri;
    memset(res, 0, sizeof *res);
    memset(&im, 0, sizeof im);
    memset(&ri, 0, sizeof ri);
    if (in->opt.pool == NULL)
        return res->status = INSPECT_NOT_READY;
    res->status = score(in, q, &im, &pr, &ri, res);
    /* the border the model was calibrated with, as its mask: changing the
     * product's setting takes effect with the next training */
    int border = ri.border >= 0 ? ri.border : q->border;
    roi_inspect_clear(in->roi, &ri); /* the tiles' maps are stitched into pr.result */
    if (res->status != INSPECT_OK)
        return res->status;
    double t_scored = mono_ms();
    cfa_result *r = &pr.result;
    store_inspection_t *row = &res->row;
    int area[4];
    inspect_area(r, border, area);
    r->score = inspect_blank_outside(r->map, r->width, r->height, area);
    snprintf(row->decision, sizeof row->decision, "%s", inspect_decide(r->score, q->threshold));
    double t_ng = q->threshold_ng >= q->threshold ? q->threshold_ng : q->threshold;
    snprintf(row->verdict, sizeof row->verdict, "%s", inspect_verdict(r->score, q->threshold, t_ng));
    if (inspect_regions(r->map, r->width, r->height, q->threshold, &res->regions,
                        &res->n_regions) != 0)
        res->n_regions = 0;
    json_t *regions = inspect_regions_json(res->regions, res->n_regions);
    inspect_region_outlines(r->map, r->width, r->height, q->threshold, res->regions,
                            res->n_regions, regions);
    store_time_id(row->id);
    /* colour scale of the heatmap: half again the threshold, so that the
     * threshold sits at two thirds of it */
    float vmax = q->threshold > 0 ? (float)(q->threshold * 1.5) : r->score;
    void *png = NULL;
    size_t png_len = 0;
    if (q->inline_heatmap != NULL &&
        render_heatmap_png(r->map, r->width, r->height, &im, vmax, &png, &png_len) == 0)
        res->heatmap = q->inline_heatmap(png, png_len);
    store_status ss = STORE_OK;
    if (q->keep) {
        ss = store_files(in, q, r, area, row->id, vmax, &png, png_len);
        row->has_images = ss == STORE_OK;
    }
    img_rgbf_free(&im);
    double t_end = mono_ms();
    res->timings.encode = t_end - t_scored;
    res->timings.total = t_end - q->t_request_ms;
    free(png); /* not handed on (store=false): the response has what it needs */

    snprintf(row->product, sizeof row->product, "%.64s", q->product);
    row->model_version = q->version;
    row->score = r->score;
    row->threshold = q->threshold;
    row->threshold_ng = t_ng;
    row->map_max = r->score; /* cfa.h: the score is the map's maximum */
    snprintf(row->key_id, sizeof row->key_id, "%.32s", q->key_id != NULL ? q->key_id : "");
    if (q->part != NULL)
        row->part = *q->part;
    row->idem = q->idem;
    if (ss == STORE_OK)
        ss = write_row(in, res, regions);
    else
        json_decref(regions);
    cfa_result_clear(r);
    if (ss != STORE_OK)
        return store_failed(in, res, ss, q->keep);
    mp_inspection(row->product, row->decision, row->verdict, row->score);
    if (row->has_images && in->opt.retention > 0 &&
        atomic_fetch_add(&in->since_prune, 1) % PRUNE_EVERY == PRUNE_EVERY - 1)
        store_inspections_prune(in->opt.st, in->opt.retention, NULL);
    return INSPECT_OK;
}
