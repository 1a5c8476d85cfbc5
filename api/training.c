/* training.c - training and its results: POST /train, /v1/jobs, model
 * versions (list, activate, artifact) and the threshold. */
#define _GNU_SOURCE
#include "api_int.h"

#include "base_log.h"

#include "settings.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A product's stored settings. Keys now unknown (typos stored by versions
 * that did not check) are skipped and logged, not refused: see
 * settings_from_stored() for why. */
static void product_settings(const store_product_t *p, settings_t *out)
{
    char warn[256];
    if (settings_from_stored(p->settings_json, SW_PRODUCT, out, warn, sizeof warn) > 0)
        log_warn("api", "product %s: stored settings ignored: %s", p->id, warn);
}

enum MHD_Result h_train(hreq *r)
{
    int ok;
    char err[256];
    settings_t from_product, from_body, job_settings;
    enum MHD_Result ret;
    /* a repeat under an Idempotency-Key gets the first 202 and its job
     * (line.c) instead of a 409 for the job it queued */
    if (line_idem_begin(r, 0, NULL, &ret) != 0)
        return ret;
    json_t *body = req_json_object(r, 1, "body must be a JSON object", &ok);
    store_product_t p;
    if (!ok)
        return MHD_YES;
    int bad = settings_from_json(body, SW_BODY, &from_body, err, sizeof err);
    json_decref(body);
    if (bad)
        return reply_error(r, 400, "invalid_params", "%s", err);
    if (path_product(r, &p, &ret) != 0)
        return ret;
    product_settings(&p, &from_product);
    int64_t n_images = p.image_count;
    store_product_clear(&p);
    if (n_images < 2)
        return reply_error(r, 422, "not_enough_images",
                           "product %s has %lld image(s); upload at least 2 good images",
                           r->params[0], (long long)n_images);
    settings_resolve(&r->ctx->cfg->train, &from_product, &from_body, &job_settings);
    if (settings_check(&job_settings, err, sizeof err) != 0)
        return reply_error(r, 400, "invalid_params",
                           "over the product's settings and the server's defaults: %s", err);
    /* the job keeps the settings it resolved to: what it trains with is in
     * its params, whatever the daemon's flags are when it runs */
    char *ptext = settings_dumps(&job_settings, SW_BODY);
    store_job_t job;
    memset(&job, 0, sizeof job);
    store_event_t ev;
    event_fill_row(r, &ev, "training.started", r->params[0], NULL, event_after_job);
    store_status ss = store_job_create(r->ctx->st, r->params[0], ptext, &job, &ev);
    store_event_clear(&ev);
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

/* A succeeded job's outcome: the thresholds of the version it made, how far
 * they can be trusted and the calibration's warnings (from the model's
 * figures); null before, or once the version is gone. */
static json_t *job_result_json(store_t *st, const store_job_t *j)
{
    store_model_t m;
    memset(&m, 0, sizeof m);
    if (j->model_version <= 0 || store_model_get(st, j->product, j->model_version, &m) != STORE_OK)
        return json_null();
    json_t *fig = json_loads(m.figures_json, 0, NULL);
    json_t *o = json_pack("{s:i,s:f,s:f}", "model_version", (json_int_t)m.version, "threshold",
                          m.threshold, "threshold_ng", m.threshold_ng);
    json_t *est = fig != NULL ? json_object_get(fig, "calibration_estimate") : NULL;
    json_t *warn = fig != NULL ? json_object_get(fig, "warnings") : NULL;
    json_object_set_new(o, "calibration_estimate", est != NULL ? json_incref(est) : json_null());
    json_object_set_new(o, "warnings", warn != NULL ? json_incref(warn) : json_array());
    json_decref(fig);
    store_model_clear(&m);
    return o;
}

enum MHD_Result h_job_get(hreq *r)
{
    store_job_t j;
    memset(&j, 0, sizeof j);
    if (!store_valid_id(r->params[0]))
        return reply_error(r, 404, "not_found", "no such job: %s", r->params[0]);
    store_status ss = store_job_get(r->ctx->st, r->params[0], &j);
    if (ss != STORE_OK)
        return store_fail(r, ss, "job", r->params[0]);
    json_t *o = job_json(&j);
    json_object_set_new(o, "result", job_result_json(r->ctx->st, &j));
    enum MHD_Result ret = reply_json(r, 200, o);
    store_job_clear(&j);
    return ret;
}

enum MHD_Result h_job_list(hreq *r)
{
    size_t limit, n = 0;
    store_job_t *arr = NULL;
    const char *product = req_query(r, "product");
    const char *state = req_query(r, "state");
    store_job_state sf = STORE_JOB_QUEUED;
    const char *cursor;
    char next[STORE_CURSOR_LEN] = "";
    if (query_page(r, store_valid_time_cursor, &limit, &cursor) != 0)
        return MHD_YES;
    if (state != NULL && store_job_state_parse(state, &sf) != 0)
        return reply_error(r, 400, "invalid_state",
                           "state must be queued, running, succeeded, failed or canceled");
    if (product != NULL && !store_valid_product_id(product))
        return reply_error(r, 400, "invalid_product_id", "invalid product id");
    store_status ss =
        store_job_list(r->ctx->st, product, state != NULL ? (int)sf : -1, limit, cursor, &arr,
                       &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "job list", "");
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, job_json(&arr[i]));
    store_jobs_free(arr, n);
    return reply_list(r, "jobs", a, next);
}

enum MHD_Result h_job_cancel(hreq *r)
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

/* A model list's cursor: a version number. */
static int valid_version(const char *s)
{
    long long v;
    return strspn(s, "0123456789") == strlen(s) && parse_int_range(s, 1, INT64_MAX, &v) == 0;
}

enum MHD_Result h_model_list(hreq *r)
{
    store_model_t *arr = NULL;
    size_t limit, n = 0;
    const char *cursor;
    char next[STORE_CURSOR_LEN] = "";
    store_product_t p;
    enum MHD_Result ret;
    if (query_page(r, valid_version, &limit, &cursor) != 0)
        return MHD_YES;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    store_product_clear(&p);
    store_status ss = store_model_list(r->ctx->st, r->params[0], limit, cursor, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, model_json(&arr[i]));
    store_models_free(arr, n);
    return reply_list(r, "models", a, next);
}

enum MHD_Result h_model_activate(hreq *r)
{
    long long v;
    if (parse_int_range(r->params[1], 1, INT64_MAX, &v) != 0)
        return reply_error(r, 404, "not_found", "no such model version: %s", r->params[1]);
    store_event_t ev;
    event_fill_row(r, &ev, "model.activated", r->params[0], product_state(r, r->params[0]),
                   event_after_product);
    store_status ss = store_model_activate(r->ctx->st, r->params[0], (int64_t)v, &ev);
    store_event_clear(&ev);
    if (ss != STORE_OK)
        return store_fail(r, ss, "model version", r->params[1]);
    return reply_path_product(r);
}

enum MHD_Result h_model_delete(hreq *r)
{
    long long v;
    if (parse_int_range(r->params[1], 1, INT64_MAX, &v) != 0)
        return reply_error(r, 404, "not_found", "no such model version: %s", r->params[1]);
    store_event_t ev;
    event_fill(r, &ev, "model.deleted", r->params[0], NULL, NULL);
    ev.before_fn = event_before_model;
    store_status ss = store_model_delete(r->ctx->st, r->params[0], (int64_t)v, &ev);
    store_event_clear(&ev);
    if (ss == STORE_ERR_CONFLICT)
        return reply_error(r, 409, "model_active",
                           "version %lld is the active model of %s: activate another first",
                           v, r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "model version", r->params[1]);
    return reply_empty(r, 204);
}

/* Extension: the serialised model (cfa_model_save format), to move models
 * between replicas or to score with the CLI (`cfa eval --model`). */
enum MHD_Result h_model_artifact(hreq *r)
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

/* Reads {"threshold"} and/or {"threshold_ng"}: each a valid threshold, NAN
 * when absent; replies 400 and returns -1 otherwise. */
static int threshold_body(hreq *r, double *thr, double *thr_ng)
{
    int ok;
    static const char *const fields[] = {"threshold", "threshold_ng", NULL};
    json_t *body = req_json(r, &ok);
    if (!ok)
        return -1;
    if (body_only(r, body, fields) != 0) {
        json_decref(body);
        return -1;
    }
    json_t *t = json_object_get(body, "threshold"), *t_ng = json_object_get(body, "threshold_ng");
    int bad = (t == NULL && t_ng == NULL) ||
              (t != NULL && (!json_is_number(t) || !inspect_threshold_valid(json_number_value(t)))) ||
              (t_ng != NULL &&
               (!json_is_number(t_ng) || !inspect_threshold_valid(json_number_value(t_ng))));
    *thr = t != NULL ? json_number_value(t) : NAN;
    *thr_ng = t_ng != NULL ? json_number_value(t_ng) : NAN;
    json_decref(body);
    if (bad) {
        reply_error(r, 400, "invalid_threshold",
                    "body must be {\"threshold\": x, \"threshold_ng\": y} (either or both) with "
                    "numbers above 0 and at most %g (scores are float32)", (double)FLT_MAX);
        return -1;
    }
    return 0;
}

/* PUT .../threshold: the active version's thresholds. threshold alone keeps
 * the NG threshold (raised to it when below: NG implies the two-valued NG);
 * threshold_ng alone keeps threshold; NG below threshold is refused. */
enum MHD_Result h_threshold(hreq *r)
{
    double thr, thr_ng;
    if (threshold_body(r, &thr, &thr_ng) != 0)
        return MHD_YES;
    store_product_t p;
    enum MHD_Result ret;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    int64_t active = p.active_version;
    json_t *before = product_json(&p);
    double current = p.threshold;
    store_product_clear(&p);
    if (active == 0) {
        json_decref(before);
        return reply_error(r, 422, "no_model", "product %s has no active model", r->params[0]);
    }
    if (isnan(thr))
        thr = current;
    if (thr_ng < thr) {
        json_decref(before);
        return reply_error(r, 400, "invalid_threshold_ng",
                           "threshold_ng (%.9g) must be at least threshold (%.9g): NG is "
                           "the stricter of the two", thr_ng, thr);
    }
    store_event_t ev;
    event_fill_row(r, &ev, "threshold.set", r->params[0], before, event_after_product);
    store_status ss =
        store_model_set_thresholds(r->ctx->st, r->params[0], active, thr, thr_ng, &ev);
    store_event_clear(&ev);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    return reply_path_product(r);
}
