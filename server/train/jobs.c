/* jobs.c - the training job runner (see jobs.h for the rules it follows). */
#define _GNU_SOURCE
#include "jobs.h"

#include "fresh_thread.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cfa.h"
#include "image.h"
#include "metrics_prom.h"

struct jobs {
    store_t *st;
    const cfg_t *cfg;
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

typedef struct train_cfg {
    cfa_params p;
    double holdout, target_far, margin;
    int activate;
} train_cfg;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void get_int(json_t *o, const char *k, int *v)
{
    json_t *x = json_object_get(o, k);
    if (json_is_integer(x))
        *v = (int)json_integer_value(x);
}

static void get_dbl(json_t *o, const char *k, double *v)
{
    json_t *x = json_object_get(o, k);
    if (json_is_number(x))
        *v = json_number_value(x);
}

/* Server defaults, then params_json (the API stores product settings merged
 * with the request body there). */
static void resolve(const cfg_t *c, const char *params_json, train_cfg *t)
{
    cfa_params p = cfa_default_params();
#define SET_IF(field) \
    if (c->field >= 0)  \
        p.field = c->field;
    SET_IF(epochs) SET_IF(gamma_c) SET_IF(gamma_d) SET_IF(batch_size) SET_IF(resize_h)
    SET_IF(resize_w) SET_IF(crop_h) SET_IF(crop_w)
#undef SET_IF
    if (c->bank >= 0)
        p.bank = c->bank ? CFA_BANK_EMA : CFA_BANK_MEAN;
    if (c->seed >= 0)
        p.seed = (uint64_t)c->seed;
    t->holdout = c->holdout;
    t->target_far = c->target_far;
    t->margin = c->margin;
    t->activate = 1;
    json_t *o = params_json != NULL ? json_loads(params_json, 0, NULL) : NULL;
    if (json_is_object(o)) {
        double d;
        get_int(o, "epochs", &p.epochs);
        get_int(o, "gamma_c", &p.gamma_c);
        get_int(o, "gamma_d", &p.gamma_d);
        get_int(o, "batch_size", &p.batch_size);
        get_int(o, "resize_h", &p.resize_h);
        get_int(o, "resize_w", &p.resize_w);
        get_int(o, "crop_h", &p.crop_h);
        get_int(o, "crop_w", &p.crop_w);
        json_t *s = json_object_get(o, "seed");
        if (json_is_integer(s))
            p.seed = (uint64_t)json_integer_value(s);
        const char *b = json_string_value(json_object_get(o, "bank"));
        if (b != NULL)
            p.bank = strcmp(b, "ema") == 0 ? CFA_BANK_EMA : CFA_BANK_MEAN;
        d = p.lr;
        get_dbl(o, "lr", &d);
        p.lr = (float)d;
        d = p.blur_sigma;
        get_dbl(o, "blur_sigma", &d);
        p.blur_sigma = (float)d;
        get_dbl(o, "holdout", &t->holdout);
        get_dbl(o, "target_far", &t->target_far);
        get_dbl(o, "margin", &t->margin);
        json_t *en = json_object_get(o, "ensemble");
        if (json_is_boolean(en))
            p.ensemble = json_is_true(en);
        json_t *a = json_object_get(o, "activate");
        if (json_is_boolean(a))
            t->activate = json_is_true(a);
    }
    json_decref(o);
    t->p = p;
}

/* ---- image source over stored files ------------------------------------ */

typedef struct src_ctx {
    store_image_t *imgs;
    int *order;       /* training indices into imgs */
    img_rgbf *held;   /* decoded images while the engine holds them */
    img_limits lim;
    char err[256];
} src_ctx;

static int src_get(void *user, int i, cfa_image *out)
{
    src_ctx *s = user;
    img_rgbf *im = &s->held[i];
    img_status rc = img_load_file_ex(s->imgs[s->order[i]].path, &s->lim, IMG_DECODE_8BIT, im);
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

/* ---- one job ------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int stopping(jobs_t *j)
{
    int s;
    pthread_mutex_lock(&j->mu);
    s = j->stopping;
    pthread_mutex_unlock(&j->mu);
    return s;
}

/* Scores images order[0..n) with m; returns the scores (malloc'd) or NULL. */
static float *score_images(jobs_t *j, cfa_model *m, src_ctx *s, const int *order, int n,
                           char *err, size_t errlen)
{
    float *scores = calloc((size_t)(n > 0 ? n : 1), sizeof *scores);
    if (scores == NULL)
        return NULL;
    for (int k = 0; k < n; k++) {
        img_rgbf im;
        img_status rc = img_load_file_ex(s->imgs[order[k]].path, &s->lim, IMG_DECODE_8BIT, &im);
        if (rc != IMG_OK) {
            snprintf(err, errlen, "image %s: %s", s->imgs[order[k]].sha256,
                     img_status_str(rc));
            free(scores);
            return NULL;
        }
        cfa_image ci = {im.width, im.height, im.rgb, im.rgb8};
        cfa_result r;
        memset(&r, 0, sizeof r);
        cfa_status st = cfa_score(j->bb, m, &ci, 1, &r);
        img_rgbf_free(&im);
        if (st != CFA_OK) {
            snprintf(err, errlen, "calibration: %s", cfa_last_error());
            free(scores);
            return NULL;
        }
        scores[k] = r.score;
        cfa_result_clear(&r);
        if (j->cancel)
            break;
    }
    return scores;
}

static void run_job(jobs_t *j, store_job_t *job)
{
    train_cfg tc;
    store_image_t *imgs = NULL;
    size_t n_imgs = 0;
    src_ctx sc;
    char err[512] = "";
    cfa_model *model = NULL;
    float *scores = NULL;
    int *order = NULL;
    double t0 = now_s();
    const char *final_state = "failed";

    memset(&sc, 0, sizeof sc);
    resolve(j->cfg, job->params_json, &tc);
    fprintf(stderr, "jobs: %s (%s) started: epochs %d gamma_c %d gamma_d %d\n", job->id,
            job->product, tc.p.epochs, tc.p.gamma_c, tc.p.gamma_d);
    store_status ss = store_image_list_all(j->st, job->product, &imgs, &n_imgs);
    if (ss != STORE_OK) {
        snprintf(err, sizeof err, "listing images: %s", store_strerror(ss));
        goto fail;
    }
    if (n_imgs < 2) {
        snprintf(err, sizeof err, "the product has %zu image(s); at least 2 are needed",
                 n_imgs);
        goto fail;
    }
    int n = (int)n_imgs;
    int n_hold = (int)floor(tc.holdout * n);
    if (tc.holdout > 0) {
        if (n >= 10 && n_hold < 2)
            n_hold = 2;
        if (n >= 3 && n_hold < 1)
            n_hold = 1;
    }
    if (n_hold > n - 1)
        n_hold = n - 1;
    order = malloc(sizeof *order * (size_t)n);
    sc.held = calloc((size_t)n, sizeof *sc.held);
    if (order == NULL || sc.held == NULL) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    /* seeded shuffle over the sha256-ordered list: reproducible split */
    uint64_t rng = tc.p.seed ^ 0x5eedULL;
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int k = (int)(splitmix(&rng) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[k];
        order[k] = t;
    }
    int n_train = n - n_hold;
    sc.imgs = imgs;
    sc.order = order + n_hold; /* the first n_hold are held out */
    sc.lim = img_default_limits();
    sc.lim.max_pixels = (size_t)j->cfg->max_pixels;
    sc.lim.min_side = j->cfg->min_side;

    cfa_image_source src = {n_train, src_get, src_release, &sc};
    prog_ctx pc = {j, job->id, 0, -1, "", 0, 0};
    store_job_progress(j->st, job->id, "features", 0, tc.p.epochs, NAN, 0.0, NULL);
    cfa_status st = cfa_train(j->bb, &tc.p, &src, on_progress, &pc, &j->cancel, &model);
    if (st == CFA_ERR_CANCELED)
        goto canceled;
    if (st != CFA_OK) {
        snprintf(err, sizeof err, "training failed: %s: %s%s%s", cfa_status_str(st),
                 cfa_last_error(), sc.err[0] ? "; " : "", sc.err);
        goto fail;
    }
    /* calibration */
    int *cal = order;
    int n_cal = n_hold;
    const char *cal_kind = "holdout";
    if (n_cal == 0) {
        cal = order;
        n_cal = n;
        cal_kind = "train";
    }
    store_job_progress(j->st, job->id, "calibration", tc.p.epochs, tc.p.epochs,
                       cfa_model_train_loss(model), 0.96, NULL);
    scores = score_images(j, model, &sc, cal, n_cal, err, sizeof err);
    if (j->cancel)
        goto canceled;
    if (scores == NULL)
        goto fail;
    qsort(scores, (size_t)n_cal, sizeof *scores, cmp_float);
    int k = (int)ceil((1.0 - tc.target_far) * n_cal) - 1;
    if (k < 0)
        k = 0;
    if (k > n_cal - 1)
        k = n_cal - 1;
    /* a float-valued threshold: scores are floats, and JSON's 9 significant
     * digits then carry both exactly, so clients see the same comparison */
    double thr = (double)nextafterf((float)((double)scores[k] * tc.margin), INFINITY);
    double mean = 0;
    for (int i = 0; i < n_cal; i++)
        mean += scores[i];
    mean /= n_cal;

    void *blob = NULL;
    size_t blob_len = 0;
    st = cfa_model_save(model, &blob, &blob_len);
    if (st != CFA_OK) {
        snprintf(err, sizeof err, "saving the model: %s", cfa_last_error());
        goto fail;
    }
    json_t *fig = json_object();
    json_object_set_new(fig, "train_loss", json_real(cfa_model_train_loss(model)));
    json_object_set_new(fig, "bank_size", json_integer(cfa_model_bank_size(model)));
    json_object_set_new(fig, "channels", json_integer(cfa_model_channels(model)));
    json_object_set_new(fig, "train_images", json_integer(n_train));
    json_object_set_new(fig, "holdout_images", json_integer(n_hold));
    json_object_set_new(fig, "calibration", json_string(cal_kind));
    json_object_set_new(fig, "calibration_max", json_real(scores[n_cal - 1]));
    json_object_set_new(fig, "calibration_mean", json_real(mean));
    json_object_set_new(fig, "target_far", json_real(tc.target_far));
    json_object_set_new(fig, "margin", json_real(tc.margin));
    json_object_set_new(fig, "feature_seconds", json_real(pc.feature_s));
    json_object_set_new(fig, "epoch_seconds", json_real(pc.epoch_s));
    json_object_set_new(fig, "total_seconds", json_real(now_s() - t0));
    json_t *pj = json_object();
    json_object_set_new(pj, "epochs", json_integer(tc.p.epochs));
    json_object_set_new(pj, "gamma_c", json_integer(tc.p.gamma_c));
    json_object_set_new(pj, "gamma_d", json_integer(tc.p.gamma_d));
    json_object_set_new(pj, "resize_h", json_integer(tc.p.resize_h));
    json_object_set_new(pj, "resize_w", json_integer(tc.p.resize_w));
    json_object_set_new(pj, "crop_h", json_integer(tc.p.crop_h));
    json_object_set_new(pj, "crop_w", json_integer(tc.p.crop_w));
    json_object_set_new(pj, "bank", json_string(tc.p.bank == CFA_BANK_EMA ? "ema" : "mean"));
    json_object_set_new(pj, "batch_size", json_integer(tc.p.batch_size));
    json_object_set_new(pj, "seed", json_integer((json_int_t)tc.p.seed));
    json_object_set_new(pj, "ensemble", json_boolean(tc.p.ensemble));
    json_object_set_new(fig, "params", pj);
    char *fig_s = json_dumps(fig, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(fig);

    store_model_new mn = {job->product, job->id, blob, blob_len, thr,
                          cfa_backbone_sha256(j->bb), fig_s, tc.activate};
    int64_t version = 0;
    ss = store_model_insert(j->st, &mn, &version);
    cfa_free(blob);
    free(fig_s);
    if (ss == STORE_ERR_CANCELED)
        goto canceled;
    if (ss != STORE_OK) {
        snprintf(err, sizeof err, "storing the model: %s", store_strerror(ss));
        goto fail;
    }
    final_state = "succeeded";
    fprintf(stderr, "jobs: %s (%s) succeeded: version %lld threshold %.6g (%s of %d)\n",
            job->id, job->product, (long long)version, thr, cal_kind, n_cal);
    goto out;

canceled:
    if (stopping(j)) {
        /* left 'running' on purpose: store_jobs_recover() decides at next start */
        final_state = "interrupted";
        fprintf(stderr, "jobs: %s interrupted by shutdown\n", job->id);
        goto out;
    }
    final_state = "canceled";
    store_job_finish(j->st, job->id, STORE_JOB_CANCELED, "canceled on request", 0);
    fprintf(stderr, "jobs: %s canceled\n", job->id);
    goto out;
fail:
    store_job_finish(j->st, job->id, STORE_JOB_FAILED, err, 0);
    fprintf(stderr, "jobs: %s failed: %s\n", job->id, err);
out:
    if (strcmp(final_state, "interrupted") != 0)
        mp_training_done(final_state, now_s() - t0);
    cfa_model_free(model);
    free(scores);
    free(order);
    if (sc.held != NULL) {
        for (size_t i = 0; i < n_imgs; i++)
            img_rgbf_free(&sc.held[i]);
        free(sc.held);
    }
    store_images_free(imgs, n_imgs);
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
            fprintf(stderr, "jobs: claim: %s\n", store_strerror(ss));
        /* nothing queued: sleep until notified, at most 1 s */
        pthread_mutex_lock(&j->mu);
        if (!j->wake && !j->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
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

int jobs_start(store_t *st, const cfg_t *cfg, const char *device, jobs_t **out, char *err,
               size_t errlen)
{
    jobs_t *j = calloc(1, sizeof *j);
    *out = NULL;
    if (j == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    j->st = st;
    j->cfg = cfg;
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
