/* jobs.c - the training job runner (see jobs.h for the rules it follows).
 *
 * One job is a job_run taken through steps: resolve its settings, split the
 * images, train, calibrate the threshold, record the model. Each step
 * returns STEP_OK, STEP_FAILED (with run->err) or STEP_CANCELED, and the
 * first that is not OK decides how the job ends (finish). The pure parts of
 * split and calibrate are in calib.c. */
#define _GNU_SOURCE
#include "jobs.h"
#include "train_roi.h"

#include "base_alloc.h"
#include "base_clock.h"
#include "base_log.h"

#include "calib.h"
#include "fresh_thread.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cfa.h"
#include "heatmap.h"
#include "image.h"
#include "metrics_prom.h"
#include "settings.h"

struct jobs {
    store_t *st;
    const cfg_t *cfg;
    struct img_budget *pixels; /* shared with requests; may be NULL */
    cfa_backbone *bb;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    int alive;
    int wake;
    char current[STORE_ID_LEN];
    volatile int cancel;      /* polled by cfa_train */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_s(void)
{
    return mono_ms() / 1e3;
}

static int stopping(jobs_t *j)
{
    int s;
    pthread_mutex_lock(&j->mu);
    s = j->stopping;
    pthread_mutex_unlock(&j->mu);
    return s;
}

/* ---- image source over stored files ------------------------------------ */

typedef struct src_ctx {
    store_image_t *imgs;
    int *order;       /* training indices into imgs */
    img_rgbf *held;   /* decoded images while the engine holds them */
    img_limits lim;
    volatile int *cancel;
    char err[256];
} src_ctx;

/* Decodes a stored image as 8-bit within the pixel budget. A job is not a
 * request that a client can retry: it waits for room as long as it takes,
 * in steps of lim->budget_wait_ms so that a cancel or a shutdown is seen. */
static img_status load_image(const img_limits *lim, const char *path, volatile int *cancel,
                             img_rgbf *im)
{
    img_status rc;
    do
        rc = img_load_file_ex(path, lim, IMG_DECODE_8BIT, im);
    while (rc == IMG_ERR_BUSY && !*cancel);
    return rc;
}

static int src_get(void *user, int i, cfa_image *out)
{
    src_ctx *s = user;
    img_rgbf *im = &s->held[i];
    img_status rc = load_image(&s->lim, s->imgs[s->order[i]].path, s->cancel, im);
    if (rc != IMG_OK) {
        snprintf(s->err, sizeof s->err, "image %s: %s", s->imgs[s->order[i]].sha256,
                 img_status_str(rc));
        return -1;
    }
    out->width = im->width;
    out->height = im->height;
    out->rgb = im->rgb;
    out->rgb8 = im->rgb8;
    return 0;
}

static void src_release(void *user, int i, cfa_image *img)
{
    src_ctx *s = user;
    (void)img;
    img_rgbf_free(&s->held[i]);
}

/* ---- progress ----------------------------------------------------------- */

typedef struct prog_ctx {
    jobs_t *j;
    const char *job_id;
    double last;
    int last_epoch;
    char last_phase[16];
    double feature_s, epoch_s;
} prog_ctx;

static void on_progress(const cfa_progress *pr, void *user)
{
    prog_ctx *c = user;
    double t = now_s();
    c->feature_s = pr->feature_seconds;
    c->epoch_s = pr->epoch_seconds;
    /* throttled: at most 4 writes a second, but every phase/epoch change */
    if (t - c->last < 0.25 && pr->epoch == c->last_epoch &&
        strcmp(pr->phase, c->last_phase) == 0)
        return;
    c->last = t;
    c->last_epoch = pr->epoch;
    snprintf(c->last_phase, sizeof c->last_phase, "%s", pr->phase);
    int cancel = 0;
    store_job_progress(c->j->st, c->job_id, pr->phase, pr->epoch, pr->epochs, pr->loss,
                       pr->fraction * 0.95, &cancel);
    if (cancel)
        c->j->cancel = 1;
}

/* ---- one job: its state and its steps ------------------------------------ */

typedef enum { STEP_OK, STEP_FAILED, STEP_CANCELED } step_result;

typedef struct job_run {
    jobs_t *j;
    const store_job_t *job;
    double t0;
    settings_t set;        /* resolved: the daemon's defaults < the job's params */
    cfa_params p;          /* what the engine trains with                    */
    settings_job opt;      /* holdout, target_far, margin, activate          */
    store_image_t *imgs;   /* the product's images, sha256 order             */
    size_t n_imgs;
    int *order;            /* the seeded shuffle: order[0..n_hold) held out  */
    int n_hold, n_train;
    src_ctx sc;
    prog_ctx pc;
    cfa_model *model;
    const char *cal_kind;  /* "holdout", or "train" when nothing is held out */
    int n_cal;
    calib_decision cal;
    float *cal_scores;     /* the n_cal calibration scores, for the figures  */
    int64_t version;
    char err[512];
    train_tiles tiles;     /* with opt.tile: the training images' tiles      */
    roi_mask mask;         /* the product's ROI mask at the start, if any    */
    char mask_sha[STORE_SHA256_HEX]; /* "" without one                        */
    float edge_ratio[CFA_EDGE_PROFILE_MAX]; /* the model's edge profile ...  */
    int edge_n;            /* ... of edge_n ratios; 0: none                  */
    double aspect_q[2];    /* width/height quartiles when keep_aspect found
                              the images of many shapes; 0: not so          */
} job_run;

static step_result fail(job_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static step_result fail(job_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return STEP_FAILED;
}

/* The job's settings: its params over the daemon's defaults. POST /train
 * stores params already resolved (settings_resolve: daemon < product <
 * body); a job queued by an older version holds only the keys it was given,
 * and the daemon's defaults fill in the rest, as they did then. */
static void step_resolve(job_run *r)
{
    settings_t params;
    char warn[256];
    if (settings_from_stored(r->job->params_json, SW_BODY, &params, warn, sizeof warn) > 0)
        log_warn("jobs", "%s: params ignored: %s", r->job->id, warn);
    settings_resolve(&r->j->cfg->train, NULL, &params, &r->set);
    r->p = cfa_default_params();
    settings_apply(&r->set, &r->p, &r->opt);
}

/* The most the middle half of the images' width/height ratios may spread
 * (upper over lower quartile) for them to count as one shape: about what
 * rounding the frame to 16 pixels at a side of 256 distorts anyway (6%),
 * with room for a camera's region of interest that moves a little. */
#define ASPECT_SPREAD_MAX 1.1

/* keep_aspect: the model's frame gets the images' shape, the shorter side
 * at min(resize_h, resize_w) and the longer one in proportion, rounded to
 * 16 pixels (the backbone's coarsest stride). The median ratio: a line's
 * images share one shape, and a stray one does not move it. Images of many
 * shapes (cut-outs of parts, both orientations) have no shape to keep: any
 * one frame distorts most of them, the median's the wide ones as much as
 * the square's, at more pixels; they keep the square resize, and the
 * figures say why (docs/BENCHMARKS.md, "The frame"). The settings are
 * changed too, so the model's figures show the geometry it has. */
static void fit_aspect(job_run *r)
{
    if (!r->opt.keep_aspect || r->n_imgs == 0)
        return;
    double *ratio = malloc(r->n_imgs * sizeof *ratio);
    if (ratio == NULL)
        return;
    for (size_t i = 0; i < r->n_imgs; i++)
        ratio[i] = (double)r->imgs[i].width / (r->imgs[i].height > 0 ? r->imgs[i].height : 1);
    qsort(ratio, r->n_imgs, sizeof *ratio, cmp_double);
    double a = ratio[r->n_imgs / 2];
    double q1 = ratio[r->n_imgs / 4], q3 = ratio[(3 * r->n_imgs) / 4];
    free(ratio);
    if (q3 > q1 * ASPECT_SPREAD_MAX) {
        r->aspect_q[0] = q1;
        r->aspect_q[1] = q3;
        settings_set(&r->set, SET_keep_aspect, (setting_value){.i = 0});
        return;
    }
    int side = r->p.resize_h < r->p.resize_w ? r->p.resize_h : r->p.resize_w;
    double longer = side * (a >= 1 ? a : 1 / a);
    int l = (int)lround(longer / 16.0) * 16;
    l = l < side ? side : l > 2048 ? 2048 : l;
    r->p.resize_h = a >= 1 ? side : l;
    r->p.resize_w = a >= 1 ? l : side;
    settings_set(&r->set, SET_resize_h, (setting_value){.i = r->p.resize_h});
    settings_set(&r->set, SET_resize_w, (setting_value){.i = r->p.resize_w});
}

/* Lists the images and shuffles them into held-out and training ones. */
static step_result step_split(job_run *r)
{
    const cfg_t *cfg = r->j->cfg;
    store_status ss = store_image_list_all(r->j->st, r->job->product, &r->imgs, &r->n_imgs);
    if (ss != STORE_OK)
        return fail(r, "listing images: %s", store_strerror(ss));
    if (r->n_imgs < 2)
        return fail(r, "the product has %zu image(s); at least 2 are needed", r->n_imgs);
    fit_aspect(r);
    int n = (int)r->n_imgs;
    r->n_hold = calib_holdout_count(n, r->opt.holdout);
    r->n_train = n - r->n_hold;
    r->order = malloc(sizeof *r->order * (size_t)n);
    r->sc.held = calloc((size_t)n, sizeof *r->sc.held);
    if (r->order == NULL || r->sc.held == NULL)
        return fail(r, "out of memory");
    /* over the sha256-ordered list: the same images and seed, the same split */
    calib_shuffle(r->order, n, r->p.seed);
    r->sc.imgs = r->imgs;
    r->sc.order = r->order + r->n_hold;
    r->sc.lim = img_default_limits();
    r->sc.lim.max_pixels = (size_t)cfg->max_pixels;
    r->sc.lim.min_side = cfg->min_side;
    /* the engine widens the bytes to floats (12 bytes a pixel) */
    r->sc.lim.budget = r->j->pixels;
    r->sc.lim.budget_wait_ms = 1000;
    r->sc.lim.extra_bpp = 12;
    /* the engine resizes to the model's resize: JPEGs decoded at the DCT
     * scale just above it, as inspections are (image.h) */
    if (cfg->jpeg_dct_scale) {
        r->sc.lim.fit_w = r->p.resize_w;
        r->sc.lim.fit_h = r->p.resize_h;
    }
    r->sc.cancel = &r->j->cancel;
    return STEP_OK;
}

/* Issue 13: with a tile, the model's resize is the tile (no crop: a tile is
 * scored whole, at the image's own resolution) and JPEGs decode whole; the
 * product's ROI mask at this moment is the model's for good. */
static step_result step_roi(job_run *r)
{
    int tile = r->opt.tile, ov = r->opt.tile_overlap;
    if (tile > 0 && (tile < 32 || ov * 2 > tile))
        return fail(r, "tile must be 0 or at least 32, and tile_overlap at most half of it");
    if (tile > 0 && r->p.ensemble)
        return fail(r, "ensemble needs a crop, and tiles are scored uncropped: not both");
    if (tile > 0) {
        r->p.resize_h = r->p.resize_w = tile;
        r->p.crop_h = r->p.crop_w = 0;
        /* the figures' params say what the model was trained with */
        settings_set(&r->set, SET_resize_h, (setting_value){.i = tile});
        settings_set(&r->set, SET_resize_w, (setting_value){.i = tile});
        settings_set(&r->set, SET_crop_h, (setting_value){.i = 0});
        settings_set(&r->set, SET_crop_w, (setting_value){.i = 0});
        r->sc.lim.fit_w = r->sc.lim.fit_h = 0;
        if (train_tiles_init(&r->tiles, r->imgs, r->order + r->n_hold, r->n_train, tile, ov,
                             &r->sc.lim, &r->j->cancel) != 0)
            return fail(r, "%s", r->tiles.err);
    }
    store_mask_t m;
    store_status ss = store_mask_get(r->j->st, r->job->product, &m);
    if (ss == STORE_ERR_NOT_FOUND)
        return STEP_OK;
    char path[4096];
    img_status is = IMG_OK;
    img_limits lim = img_default_limits();
    roi_status rs = ROI_ERR_DECODE;
    if (ss == STORE_OK &&
        store_mask_path(r->j->st, r->job->product, m.sha256, path, sizeof path) == STORE_OK)
        rs = roi_mask_load_file(path, &lim, &r->mask, &is);
    if (rs != ROI_OK)
        return fail(r, "the product's ROI mask: %s (%s)", roi_status_str(rs), img_status_str(is));
    snprintf(r->mask_sha, sizeof r->mask_sha, "%s", m.sha256);
    return STEP_OK;
}

static step_result step_train(job_run *r)
{
    cfa_image_source src = {r->n_train, src_get, src_release, &r->sc};
    if (r->opt.tile > 0)
        src = (cfa_image_source){r->tiles.n, train_tiles_get, train_tiles_release, &r->tiles};
    r->pc = (prog_ctx){r->j, r->job->id, 0, -1, "", 0, 0};
    store_job_progress(r->j->st, r->job->id, "features", 0, r->p.epochs, NAN, 0.0, NULL);
    cfa_status st =
        cfa_train(r->j->bb, &r->p, &src, on_progress, &r->pc, &r->j->cancel, &r->model);
    if (st == CFA_ERR_CANCELED)
        return STEP_CANCELED;
    if (st != CFA_OK)
        return fail(r, "training failed: %s: %s%s%s%s", cfa_status_str(st), cfa_last_error(),
                    r->sc.err[0] || r->tiles.err[0] ? "; " : "", r->sc.err, r->tiles.err);
    return STEP_OK;
}

/* The score an inspection of the image would give: the maximum of the map
 * at the image's own size (inspect.c), not at a reduced decode's, over what
 * the inspection looks at (the model's area less the product's border). */
static float source_score(const cfa_result *res, int w, int h, int border)
{
    float max = res->score;
    float *map = malloc((size_t)w * h * sizeof *map);
    if (map == NULL)
        return max;
    if (cfa_map_to_image(res->model_map, res->model_width, res->model_height, res->resize_width,
                         res->resize_height, w, h, map, NULL) == CFA_OK) {
        int rect[4];
        cfa_model_area(res->model_width, res->model_height, res->resize_width,
                       res->resize_height, w, h, rect);
        heatmap_inset_area(rect, w, h, border);
        max = heatmap_blank_outside(map, w, h, rect);
    }
    free(map);
    return max;
}

/* Scores images order[0..n) with the new model; the scores (malloc'd), or
 * NULL with r->err set. Stops early on cancel (the caller checks). */
static float *score_images(job_run *r, const int *order, int n)
{
    float *scores = calloc((size_t)(n > 0 ? n : 1), sizeof *scores);
    if (scores == NULL) {
        fail(r, "out of memory");
        return NULL;
    }
    for (int k = 0; k < n && !r->j->cancel; k++) {
        img_rgbf im;
        const store_image_t *si = &r->imgs[order[k]];
        img_status rc = load_image(&r->sc.lim, si->path, &r->j->cancel, &im);
        if (rc != IMG_OK) {
            fail(r, "image %s: %s", si->sha256, img_status_str(rc));
            free(scores);
            return NULL;
        }
        cfa_status st = CFA_OK;
        if (r->opt.tile > 0 || r->mask.px != NULL) { /* issue 13: as inspections score */
            st = roi_calib_score(r->j->bb, r->model, &im, r->opt.tile, r->opt.tile_overlap,
                                 r->mask.px != NULL ? &r->mask : NULL, &scores[k]);
        } else {
            cfa_image ci = {im.width, im.height, im.rgb, im.rgb8};
            cfa_result res;
            memset(&res, 0, sizeof res);
            st = cfa_score(r->j->bb, r->model, &ci, 1, &res);
            if (st == CFA_OK)
                scores[k] = source_score(&res, im.src_width, im.src_height, r->opt.border);
            cfa_result_clear(&res);
        }
        img_rgbf_free(&im);
        if (st != CFA_OK) {
            fail(r, "calibration: %s", cfa_last_error());
            free(scores);
            return NULL;
        }
    }
    return scores;
}

/* The edge profile (core/src/edge.cpp) from the raw maps of the
 * calibration images, set on the model before they are scored for the
 * thresholds, so that the thresholds are those of the maps inspections get.
 * A few dozen ratios over every pixel of those images: fitting them there
 * leaves the thresholds' images as good as unseen. Not with tiles: each
 * tile has edges of its own and the stitched maximum hides which. */
static step_result fit_edge_profile(job_run *r)
{
    if (!r->opt.edge_profile || r->opt.tile > 0 || r->n_cal < 1)
        return STEP_OK;
    int mw, mh;
    cfa_model_geometry(&r->p, &mh, &mw);
    int n = cfa_edge_profile_len(mw, mh);
    double sum[CFA_EDGE_PROFILE_MAX] = {0}, count[CFA_EDGE_PROFILE_MAX] = {0};
    for (int k = 0; k < r->n_cal && !r->j->cancel; k++) {
        img_rgbf im;
        const store_image_t *si = &r->imgs[r->order[k]];
        if (load_image(&r->sc.lim, si->path, &r->j->cancel, &im) != IMG_OK)
            continue; /* score_images reports it */
        cfa_image ci = {im.width, im.height, im.rgb, im.rgb8};
        cfa_result res;
        memset(&res, 0, sizeof res);
        if (cfa_score(r->j->bb, r->model, &ci, 1, &res) == CFA_OK)
            cfa_edge_profile_accumulate(&res, n, sum, count);
        cfa_result_clear(&res);
        img_rgbf_free(&im);
    }
    if (r->j->cancel)
        return STEP_CANCELED;
    if (cfa_edge_profile_finish(sum, count, n, r->edge_ratio) != 0)
        return STEP_OK; /* no usable map: scored as before, figures say none */
    if (cfa_model_set_edge_profile(r->model, r->edge_ratio, n) != CFA_OK)
        return fail(r, "edge profile: %s", cfa_last_error());
    r->edge_n = n;
    return STEP_OK;
}

static json_t *edge_profile_json(const job_run *r)
{
    if (r->edge_n == 0)
        return json_null();
    json_t *a = json_array();
    for (int i = 0; i < r->edge_n; i++)
        json_array_append_new(a, json_real(r->edge_ratio[i]));
    return a;
}

/* Scores the held-out images (or, with none, the training images) and
 * derives the threshold from them (calib_threshold). */
static step_result step_calibrate(job_run *r)
{
    r->n_cal = r->n_hold > 0 ? r->n_hold : (int)r->n_imgs;
    r->cal_kind = r->n_hold > 0 ? "holdout" : "train";
    store_job_progress(r->j->st, r->job->id, "calibration", r->p.epochs, r->p.epochs,
                       cfa_model_train_loss(r->model), 0.96, NULL);
    step_result er = fit_edge_profile(r);
    if (er != STEP_OK)
        return er;
    float *scores = score_images(r, r->order, r->n_cal);
    if (r->j->cancel) {
        free(scores);
        return STEP_CANCELED;
    }
    if (scores == NULL)
        return STEP_FAILED;
    int rc = calib_decide(scores, r->n_cal, r->opt.target_far, r->opt.target_far_ng,
                          r->opt.margin, &r->cal);
    r->cal_scores = scores;
    if (rc != 0)
        return fail(r, "calibration: the model scored NaN on %d of %d images (%s)",
                    r->cal.q.n_nan, r->n_cal, r->cal_kind);
    return STEP_OK;
}

/* The calibration scores themselves: the console draws their histogram
 * under the threshold (a few hundred numbers at most for a line's holdout). */
static json_t *cal_scores_json(const job_run *r)
{
    json_t *a = json_array();
    for (int i = 0; r->cal_scores != NULL && i < r->n_cal; i++)
        json_array_append_new(a, isfinite(r->cal_scores[i]) ? json_real(r->cal_scores[i])
                                                          : json_null());
    return a;
}

/* How far the thresholds can be trusted: the fit they come from, the
 * held-out scores at or above T1 with their 95% interval, and the rule
 * before the fit (the held-out maximum) for comparison. */
static json_t *calib_estimate_json(const job_run *r)
{
    const calib_decision *c = &r->cal;
    json_t *o = json_object();
    json_object_set_new(o, "rule", json_string(c->fitted ? "lognormal_tolerance" : "quantile"));
    json_object_set_new(o, "images", json_integer(r->n_cal));
    json_object_set_new(o, "confidence", json_real(CALIB_CONF));
    json_object_set_new(o, "log_mean", c->fitted ? json_real(c->fit.mu) : json_null());
    json_object_set_new(o, "log_sd", c->fitted ? json_real(c->fit.sigma) : json_null());
    json_object_set_new(o, "far_fit", isfinite(c->far_fit) ? json_real(c->far_fit) : json_null());
    json_object_set_new(o, "exceedances", json_integer(c->exceed));
    json_object_set_new(o, "far_observed", json_real((double)c->exceed / r->n_cal));
    json_object_set_new(o, "far_ci95", json_pack("[f,f]", c->far_lo, c->far_hi));
    json_object_set_new(o, "threshold_max_rule", json_real(c->threshold_max));
    /* T1 is the larger of the fit's bound and the empirical quantile: say which */
    double bound = c->fitted ? calib_fit_bound(&c->fit, r->opt.target_far, CALIB_CONF) *
                                   r->opt.margin : NAN;
    int from_fit = c->fitted && c->threshold > c->q.threshold;
    json_object_set_new(o, "fit_bound", isfinite(bound) ? json_real(bound) : json_null());
    json_object_set_new(o, "threshold_from",
                        json_string(from_fit ? "fit_bound" : "empirical_quantile"));
    char text[320], how[96] = "";
    if (from_fit)
        snprintf(how, sizeof how, "; the threshold is the fitted tail's bound");
    else if (isfinite(bound))
        snprintf(how, sizeof how, "; the threshold is the held-out scores' quantile, above "
                 "the fitted tail's bound %.4g", bound);
    snprintf(text, sizeof text,
             "target FAR %.3g%%: %d of %d held-out good images at or above the threshold "
             "(95%% interval %.3g%% to %.3g%%)%s",
             r->opt.target_far * 100, c->exceed, r->n_cal, c->far_lo * 100, c->far_hi * 100, how);
    json_object_set_new(o, "summary", json_string(text));
    return o;
}

static json_t *figures_warnings_json(const job_run *r)
{
    json_t *a = json_array();
    char text[320];
    if (r->n_hold == 0)
        json_array_append_new(a, json_string("no image was held out: the thresholds come from "
                                             "the training images' own scores, which are lower "
                                             "than new parts' (set holdout, add images)"));
    if (r->cal.warnings & CALIB_WARN_NO_FIT) {
        snprintf(text, sizeof text,
                 "only %d calibration image(s): too few to fit a tail (%d needed); the "
                 "threshold is their empirical quantile and new good parts may often exceed it",
                 r->n_cal, CALIB_MIN_FIT);
        json_array_append_new(a, json_string(text));
    }
    if (r->aspect_q[1] > 0) {
        snprintf(text, sizeof text,
                 "keep_aspect: the images are of many shapes (width/height %.2f to %.2f across "
                 "the middle half), so no one frame keeps their aspect; they were resized to "
                 "resize_h x resize_w as they are",
                 r->aspect_q[0], r->aspect_q[1]);
        json_array_append_new(a, json_string(text));
    }
    if (r->cal.warnings & CALIB_WARN_EXTRAPOLATED) {
        snprintf(text, sizeof text,
                 "%d held-out images cannot show a false-alarm rate of %.3g%% (about %.0f "
                 "would): the observed rate is only known to lie in [%.3g%%, %.3g%%]",
                 r->n_cal, r->opt.target_far * 100, ceil(1.0 / r->opt.target_far),
                 r->cal.far_lo * 100, r->cal.far_hi * 100);
        json_array_append_new(a, json_string(text));
    }
    return a;
}

/* The model's figures (GET .../models): what it was trained and calibrated
 * on, and with which settings. */
static char *figures_json(const job_run *r)
{
    json_t *fig = json_object();
    json_object_set_new(fig, "train_loss", json_real(cfa_model_train_loss(r->model)));
    json_object_set_new(fig, "bank_size", json_integer(cfa_model_bank_size(r->model)));
    json_object_set_new(fig, "channels", json_integer(cfa_model_channels(r->model)));
    json_object_set_new(fig, "train_images", json_integer(r->n_train));
    json_object_set_new(fig, "holdout_images", json_integer(r->n_hold));
    json_object_set_new(fig, "calibration", json_string(r->cal_kind));
    json_object_set_new(fig, "calibration_max", json_real(r->cal.q.max));
    json_object_set_new(fig, "calibration_mean", json_real(r->cal.q.mean));
    json_object_set_new(fig, "calibration_scores", cal_scores_json(r));
    json_object_set_new(fig, "target_far", json_real(r->opt.target_far));
    json_object_set_new(fig, "target_far_ng", json_real(r->opt.target_far_ng));
    json_object_set_new(fig, "calibration_estimate", calib_estimate_json(r));
    json_object_set_new(fig, "warnings", figures_warnings_json(r));
    json_object_set_new(fig, "margin", json_real(r->opt.margin));
    json_object_set_new(fig, "feature_seconds", json_real(r->pc.feature_s));
    json_object_set_new(fig, "epoch_seconds", json_real(r->pc.epoch_s));
    json_object_set_new(fig, "total_seconds", json_real(now_s() - r->t0));
    /* the settings that shape the model and that the API can set */
    json_object_set_new(fig, "params", settings_to_json(&r->set, SW_BODY | SW_ENGINE));
    /* issue 13: what inspections with this model follow (roi_inspect.h) */
    json_object_set_new(fig, "tile", json_integer(r->opt.tile));
    json_object_set_new(fig, "tile_overlap", json_integer(r->opt.tile_overlap));
    /* calibrated without these pixels: inspections with this model skip them */
    json_object_set_new(fig, "border", json_integer(r->opt.border));
    /* for people: the model file carries it for scoring (model_io.cpp) */
    json_object_set_new(fig, "edge_profile", edge_profile_json(r));
    json_object_set_new(fig, "tiles", json_integer(r->tiles.n)); /* the bank's images */
    json_object_set_new(fig, "mask_sha256", r->mask_sha[0] ? json_string(r->mask_sha) : json_null());
    char *text = json_dumps(fig, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(fig);
    return text;
}

/* The event log's rows of a job's end and of the activation it made: by
 * the daemon, so no key or request id; written in the transaction that ends
 * the job (store_model_insert, store_job_finish), so neither stands alone. */
static void job_event(store_event_t *e, const char *kind, const job_run *r)
{
    memset(e, 0, sizeof *e);
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->product, sizeof e->product, "%s", r->job->product);
}

static char *finished_json(const job_run *r, const char *state, int64_t version)
{
    char after[512];
    snprintf(after, sizeof after, "{\"job_id\":\"%s\",\"state\":\"%s\",\"model_version\":%lld}",
             r->job->id, state, (long long)version);
    return xstrdup(after);
}

/* after_fns of store_model_insert's events: its row is the new version. */
static char *succeeded_after(const void *row, void *ctx)
{
    return finished_json(ctx, "succeeded", *(const int64_t *)row);
}

static char *activated_after(const void *row, void *ctx)
{
    const job_run *r = ctx;
    char after[512];
    snprintf(after, sizeof after, "{\"active_version\":%lld,\"threshold\":%.9g,\"job_id\":\"%s\"}",
             (long long)*(const int64_t *)row, r->cal.threshold, r->job->id);
    return xstrdup(after);
}

/* Stores the model with its threshold and figures; this also ends the job
 * 'succeeded' and, with activate, makes it the product's active version,
 * with the events of both in the same transaction. */
static step_result step_record(job_run *r)
{
    void *blob = NULL;
    size_t blob_len = 0;
    if (cfa_model_save(r->model, &blob, &blob_len) != CFA_OK)
        return fail(r, "saving the model: %s", cfa_last_error());
    char *fig = figures_json(r);
    store_model_new mn = {.product = r->job->product,
                          .job_id = r->job->id,
                          .blob = blob,
                          .blob_len = blob_len,
                          .threshold = r->cal.threshold,
                          .threshold_ng = r->cal.threshold_ng,
                          .backbone_sha256 = cfa_backbone_sha256(r->j->bb),
                          .figures_json = fig,
                          .activate = r->opt.activate};
    store_event_t ev[2];
    job_event(&ev[0], "training.finished", r);
    ev[0].after_fn = succeeded_after;
    job_event(&ev[1], "model.activated", r);
    ev[1].after_fn = activated_after;
    ev[0].after_ctx = ev[1].after_ctx = r;
    mn.events = ev;
    mn.n_events = r->opt.activate ? 2 : 1;
    store_status ss = store_model_insert(r->j->st, &mn, &r->version);
    store_event_clear(&ev[0]);
    store_event_clear(&ev[1]);
    cfa_free(blob);
    free(fig);
    if (ss == STORE_ERR_CANCELED)
        return STEP_CANCELED;
    if (ss != STORE_OK)
        return fail(r, "storing the model: %s", store_strerror(ss));
    return STEP_OK;
}

/* Ends a job that made no model, with its training.finished row. */
static void finish_unsucceeded(job_run *r, store_job_state js, const char *state,
                               const char *error)
{
    store_event_t e;
    job_event(&e, "training.finished", r);
    e.after_json = finished_json(r, state, r->version);
    store_status ss = store_job_finish(r->j->st, r->job->id, js, error, 0, &e);
    if (ss != STORE_OK)
        log_warn("jobs", "%s: ending it %s failed: %s (%s)", r->job->id, state,
                 store_strerror(ss), store_last_error());
    store_event_clear(&e);
}

/* Ends the job by the outcome of its steps. */
static void finish(job_run *r, step_result s)
{
    const char *id = r->job->id;
    const char *state = "succeeded";
    if (s == STEP_OK) {
        log_info("jobs", "%s (%s) succeeded: version %lld thresholds %.6g / %.6g (%s of %d)",
                 id, r->job->product, (long long)r->version, r->cal.threshold,
                 r->cal.threshold_ng, r->cal_kind, r->n_cal);
    } else if (s == STEP_CANCELED && stopping(r->j)) {
        /* left 'running' on purpose: store_jobs_recover() decides at next start */
        log_info("jobs", "%s interrupted by shutdown", id);
        return;
    } else if (s == STEP_CANCELED) {
        state = "canceled";
        finish_unsucceeded(r, STORE_JOB_CANCELED, state, "canceled on request");
        log_info("jobs", "%s canceled", id);
    } else {
        state = "failed";
        finish_unsucceeded(r, STORE_JOB_FAILED, state, r->err);
        log_warn("jobs", "%s failed: %s", id, r->err);
    }
    mp_training_done(state, now_s() - r->t0);
}

static void run_free(job_run *r)
{
    cfa_model_free(r->model);
    free(r->order);
    free(r->cal_scores);
    if (r->sc.held != NULL) {
        for (size_t i = 0; i < r->n_imgs; i++)
            img_rgbf_free(&r->sc.held[i]);
        free(r->sc.held);
    }
    store_images_free(r->imgs, r->n_imgs);
    train_tiles_free(&r->tiles);
    roi_mask_free(&r->mask);
}

static void run_job(jobs_t *j, store_job_t *job)
{
    job_run r;
    memset(&r, 0, sizeof r);
    r.j = j;
    r.job = job;
    r.t0 = now_s();
    step_resolve(&r);
    log_info("jobs", "%s (%s) started: epochs %d gamma_c %d gamma_d %d", job->id,
            job->product, r.p.epochs, r.p.gamma_c, r.p.gamma_d);
    step_result s = step_split(&r);
    if (s == STEP_OK)
        s = step_roi(&r);
    if (s == STEP_OK)
        s = step_train(&r);
    if (s == STEP_OK)
        s = step_calibrate(&r);
    if (s == STEP_OK)
        s = step_record(&r);
    finish(&r, s);
    run_free(&r);
}

typedef struct job_call {
    jobs_t *j;
    store_job_t *job;
} job_call;

static void run_job_call(void *arg)
{
    job_call *c = arg;
    run_job(c->j, c->job);
}

static void *runner_main(void *arg)
{
    jobs_t *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        if (j->stopping) {
            pthread_mutex_unlock(&j->mu);
            break;
        }
        pthread_mutex_unlock(&j->mu);
        store_job_t job;
        memset(&job, 0, sizeof job);
        store_status ss = store_job_claim(j->st, &job);
        if (ss == STORE_OK) {
            pthread_mutex_lock(&j->mu);
            snprintf(j->current, sizeof j->current, "%s", job.id);
            j->cancel = j->stopping;
            pthread_mutex_unlock(&j->mu);
            job_call jc = {j, &job};
            fresh_thread_run(run_job_call, &jc); /* its OpenMP team ends with it */
            pthread_mutex_lock(&j->mu);
            j->current[0] = '\0';
            pthread_mutex_unlock(&j->mu);
            store_job_clear(&job);
            continue;
        }
        if (ss != STORE_ERR_NOT_FOUND)
            log_error("jobs", "claim: %s", store_strerror(ss));
        /* nothing queued: sleep until notified, at most 1 s */
        pthread_mutex_lock(&j->mu);
        if (!j->wake && !j->stopping) {
            struct timespec ts = wall_deadline(1000);
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        }
        j->wake = 0;
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_lock(&j->mu);
    j->alive = 0;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

int jobs_start(store_t *st, const cfg_t *cfg, struct img_budget *pixels, const char *device,
               jobs_t **out, char *err, size_t errlen)
{
    jobs_t *j = calloc(1, sizeof *j);
    *out = NULL;
    if (j == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    j->st = st;
    j->cfg = cfg;
    j->pixels = pixels;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    char lerr[256] = "";
    /* on a thread of its own: leaves no OpenMP team behind (fresh_thread.h) */
    cfa_status cs = fresh_thread_load_backbone(cfg->backbone, device, &j->bb, lerr, sizeof lerr);
    if (cs != CFA_OK) {
        snprintf(err, errlen, "training backbone %s on %s: %s", cfg->backbone, device, lerr);
        free(j);
        return -1;
    }
    j->alive = 1;
    if (pthread_create(&j->thread, NULL, runner_main, j) != 0) {
        snprintf(err, errlen, "cannot start the job runner thread");
        cfa_backbone_free(j->bb);
        free(j);
        return -1;
    }
    *out = j;
    return 0;
}

void jobs_notify(jobs_t *j)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    j->wake = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void jobs_cancel_hint(jobs_t *j, const char *job_id)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    if (strcmp(j->current, job_id) == 0)
        j->cancel = 1;
    pthread_mutex_unlock(&j->mu);
}

int jobs_alive(jobs_t *j)
{
    int a;
    if (j == NULL)
        return 0;
    pthread_mutex_lock(&j->mu);
    a = j->alive;
    pthread_mutex_unlock(&j->mu);
    return a;
}

void jobs_stop(jobs_t *j)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = 1;
    j->cancel = 1;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    cfa_backbone_free(j->bb);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}
