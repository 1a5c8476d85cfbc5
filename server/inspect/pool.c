/* pool.c - inference workers, per-device bounded queues and model LRUs. */
#define _GNU_SOURCE
#include "pool.h"

#include "base_alloc.h"
#include "base_clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fresh_thread.h"
#include "metrics_prom.h"

#define POOL_MAX_DEVICES 8
/* model versions whose resize is remembered (pool_model_resize) */
#define POOL_RESIZE_SLOTS 64

typedef struct waiter {
    pool_req *req;
    struct waiter *next;
    double t_enqueue;
    int done;
    pthread_cond_t cv;
} waiter;

typedef struct device_q {
    char name[32];
    waiter *head, *tail;
    int queued;
    int busy;                /* requests taken by workers, not yet done */
    pthread_cond_t cv;       /* signals workers of this device          */
} device_q;

typedef struct cached_model {
    char product[72];
    int64_t version;
    cfa_model *model;
    uint64_t last_used;
} cached_model;

typedef struct worker {
    pool_t *pool;
    int device;
    cfa_backbone *bb;
    pthread_t thread;
    int started;
    cached_model *cache;
    int n_cache;
    uint64_t tick;
    uint64_t batch_tick;     /* tick when the current batch started       */
    unsigned flush_gen;
} worker;

struct pool {
    pool_options opt;
    pool_fetch_fn fetch;
    void *fetch_user;
    pthread_mutex_t mu;
    device_q dev[POOL_MAX_DEVICES];
    int n_dev;
    worker *workers;
    int n_workers;
    int stopping;
    int arriving;             /* announced requests not yet queued (pool_announce) */
    unsigned flush_gen;       /* bumped by pool_forget: workers drop caches */
    char forget[64][72];      /* products forgotten, ring by flush_gen     */
    int models_loaded;
    char sha256[65];
    int channels[3];
    /* resize of each model version seen by pool_model_resize, a ring */
    struct {
        char product[72];
        int64_t version;
        int w, h;
    } resize[POOL_RESIZE_SLOTS];
    unsigned n_resize;
    /* one model parsed for its resize at a time: 256 first requests of a
     * new version must not hold 256 copies of its bank */
    pthread_mutex_t resize_load_mu;
};


static void cache_evict_product(pool_t *p, worker *w, const char *product)
{
    for (int i = 0; i < w->n_cache;) {
        if (product == NULL || strcmp(w->cache[i].product, product) == 0) {
            cfa_model_free(w->cache[i].model);
            w->cache[i] = w->cache[w->n_cache - 1];
            w->n_cache--;
            pthread_mutex_lock(&p->mu);
            p->models_loaded--;
            pthread_mutex_unlock(&p->mu);
        } else {
            i++;
        }
    }
}

/* Applies pool_forget calls made since the last batch. Called by the
 * worker's own thread between batches (never while a batch holds models). */
static void worker_sync_forget(worker *w)
{
    pool_t *p = w->pool;
    unsigned gen;
    pthread_mutex_lock(&p->mu);
    gen = p->flush_gen;
    pthread_mutex_unlock(&p->mu);
    if (gen != w->flush_gen) {
        if (gen - w->flush_gen > 64) {
            cache_evict_product(p, w, NULL);
        } else {
            for (unsigned g = w->flush_gen; g != gen; g++) {
                char prod[72];
                pthread_mutex_lock(&p->mu);
                memcpy(prod, p->forget[g % 64], sizeof prod);
                pthread_mutex_unlock(&p->mu);
                cache_evict_product(p, w, prod);
            }
        }
        w->flush_gen = gen;
    }
}

/* Returns the model, loading it (and evicting the least recently used one)
 * when missing. Models used by the current batch (last_used > batch_tick)
 * are never evicted: the cache may exceed model_cache by up to a batch.
 * Called only by the worker's own thread. */
static cfa_model *worker_model(worker *w, const char *product, int64_t version,
                               cfa_status *st, char *err, size_t errlen)
{
    pool_t *p = w->pool;
    for (int i = 0; i < w->n_cache; i++) {
        if (w->cache[i].version == version && strcmp(w->cache[i].product, product) == 0) {
            w->cache[i].last_used = ++w->tick;
            return w->cache[i].model;
        }
    }
    void *buf = NULL;
    size_t len = 0;
    if (p->fetch(p->fetch_user, product, version, &buf, &len, err, errlen) != 0) {
        *st = CFA_ERR_IO;
        return NULL;
    }
    cfa_model *m = NULL;
    *st = cfa_model_load(buf, len, w->bb, &m);
    free(buf);
    if (*st != CFA_OK) {
        snprintf(err, errlen, "model %s@%lld: %s", product, (long long)version,
                 cfa_last_error());
        return NULL;
    }
    while (w->n_cache >= p->opt.model_cache) {
        int lru = -1;
        for (int i = 0; i < w->n_cache; i++)
            if (w->cache[i].last_used <= w->batch_tick &&
                (lru < 0 || w->cache[i].last_used < w->cache[lru].last_used))
                lru = i;
        if (lru < 0)
            break; /* all in use by this batch */
        cfa_model_free(w->cache[lru].model);
        w->cache[lru] = w->cache[w->n_cache - 1];
        w->n_cache--;
        pthread_mutex_lock(&p->mu);
        p->models_loaded--;
        pthread_mutex_unlock(&p->mu);
    }
    cached_model *c = &w->cache[w->n_cache++];
    snprintf(c->product, sizeof c->product, "%s", product);
    c->version = version;
    c->model = m;
    c->last_used = ++w->tick;
    pthread_mutex_lock(&p->mu);
    p->models_loaded++;
    pthread_mutex_unlock(&p->mu);
    return m;
}

static void finish(pool_t *p, device_q *d, waiter *wt)
{
    pthread_mutex_lock(&p->mu);
    wt->done = 1;
    d->busy--;
    pthread_cond_signal(&wt->cv);
    pthread_mutex_unlock(&p->mu);
}

/* The tiled images of a batch (issue 13): each its own backbone forward of
 * all its tiles, after the models of the batch are known (a failure here
 * is the request's, not its model's). */
static void score_tiled(worker *w, pool_req **reqs, int n, const cfa_model **models,
                        cfa_status *st, char (*err)[256])
{
    for (int i = 0; i < n; i++) {
        if (models[i] == NULL || reqs[i]->n_tiles == 0)
            continue;
        st[i] = cfa_score_tiles(w->bb, models[i], reqs[i]->tiles, reqs[i]->n_tiles,
                                reqs[i]->tile_results);
        if (st[i] != CFA_OK)
            snprintf(err[i], sizeof err[i], "%s", cfa_last_error());
    }
}

/* Scores the n requests of a batch: one cfa_score_multi call for all whose
 * model loaded (one backbone forward across products, then each model's
 * descriptor and scoring); if that call fails, each image alone, so that one
 * unusable image does not fail the others. Fills each request's outputs. */
static void score_batch(worker *w, pool_req **reqs, int n, const cfa_model **models,
                        cfa_image *imgs, cfa_result *res, int *idx, cfa_status *st,
                        char (*err)[256])
{
    int g = 0;
    for (int i = 0; i < n; i++) {
        st[i] = CFA_OK;
        err[i][0] = '\0';
        /* the same (product, version) earlier in the batch: same model */
        const cfa_model *m = NULL;
        for (int j = 0; j < i; j++)
            if (reqs[j]->version == reqs[i]->version &&
                strcmp(reqs[j]->product, reqs[i]->product) == 0) {
                m = models[j];
                st[i] = st[j];
                snprintf(err[i], sizeof err[i], "%s", err[j]);
                break;
            }
        if (m == NULL && st[i] == CFA_OK)
            m = worker_model(w, reqs[i]->product, reqs[i]->version, &st[i], err[i], sizeof err[i]);
        models[i] = m;
        if (m != NULL && reqs[i]->n_tiles == 0) {
            idx[g] = i;
            imgs[g] = reqs[i]->image;
            g++;
        }
    }
    score_tiled(w, reqs, n, models, st, err);
    if (g == 0)
        return;
    const cfa_model **gm = malloc(sizeof *gm * (size_t)g);
    if (gm == NULL) {
        for (int k = 0; k < g; k++) {
            st[idx[k]] = CFA_ERR_NOMEM;
            snprintf(err[idx[k]], sizeof err[0], "out of memory");
        }
        return;
    }
    for (int k = 0; k < g; k++)
        gm[k] = models[idx[k]];
    memset(res, 0, sizeof *res * (size_t)g);
    cfa_status s = cfa_score_multi(w->bb, gm, imgs, g, res);
    if (s == CFA_OK) {
        for (int k = 0; k < g; k++)
            reqs[idx[k]]->result = res[k];
    } else if (g == 1) {
        st[idx[0]] = s;
        snprintf(err[idx[0]], sizeof err[0], "%s", cfa_last_error());
    } else {
        for (int k = 0; k < g; k++) {
            cfa_result one;
            memset(&one, 0, sizeof one);
            cfa_status s1 = cfa_score(w->bb, gm[k], &imgs[k], 1, &one);
            st[idx[k]] = s1;
            if (s1 == CFA_OK)
                reqs[idx[k]]->result = one;
            else
                snprintf(err[idx[k]], sizeof err[0], "%s", cfa_last_error());
        }
    }
    free(gm);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pool_t *p = w->pool;
    device_q *d = &p->dev[w->device];
    int B = p->opt.batch;
    /* a worker without its batch buffers cannot serve: xcalloc aborts */
    waiter **batch = xcalloc((size_t)B, sizeof *batch);
    pool_req **reqs = xcalloc((size_t)B, sizeof *reqs);
    const cfa_model **models = xcalloc((size_t)B, sizeof *models);
    cfa_image *imgs = xcalloc((size_t)B, sizeof *imgs);
    cfa_result *res = xcalloc((size_t)B, sizeof *res);
    int *idx = xcalloc((size_t)B, sizeof *idx);
    cfa_status *st = xcalloc((size_t)B, sizeof *st);
    char(*err)[256] = xcalloc((size_t)B, sizeof *err);
    for (;;) {
        int n = 0;
        pthread_mutex_lock(&p->mu);
        while (d->head == NULL && !p->stopping)
            pthread_cond_wait(&d->cv, &p->mu);
        if (d->head == NULL && p->stopping) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        /* dynamic batching: take what waits; if the batch is not full and
         * requests are on their way (announced, being decoded), wait for
         * them until the oldest request has waited batch_wait_ms. Nobody
         * waits for requests that may never come: a lone request is scored
         * at once. */
        double deadline = d->head->t_enqueue + p->opt.batch_wait_ms;
        for (;;) {
            while (d->head != NULL && n < B) {
                waiter *wt = d->head;
                d->head = wt->next;
                if (d->head == NULL)
                    d->tail = NULL;
                d->queued--;
                d->busy++;
                batch[n++] = wt;
            }
            if (n >= B || p->stopping || p->opt.batch_wait_ms <= 0 || p->arriving <= 0)
                break;
            double left = deadline - mono_ms();
            if (left <= 0)
                break;
            struct timespec ts = wall_deadline(left);
            pthread_cond_timedwait(&d->cv, &p->mu, &ts);
        }
        pthread_mutex_unlock(&p->mu);
        double t_take = mono_ms();
        for (int i = 0; i < n; i++) {
            reqs[i] = batch[i]->req;
            reqs[i]->queue_ms = t_take - batch[i]->t_enqueue;
            reqs[i]->batch_n = n;
            snprintf(reqs[i]->device, sizeof reqs[i]->device, "%s", d->name);
        }
        worker_sync_forget(w);
        w->batch_tick = w->tick;
        score_batch(w, reqs, n, models, imgs, res, idx, st, err);
        double dt = mono_ms() - t_take;
        for (int i = 0; i < n; i++) {
            pool_req *r = reqs[i];
            r->status = st[i];
            r->model_ms = dt;
            if (st[i] != CFA_OK) {
                memset(&r->result, 0, sizeof r->result);
                snprintf(r->error, sizeof r->error, "%s", err[i]);
            }
            /* after finish() the waiter (on its requester's stack) may be gone */
            finish(p, d, batch[i]);
        }
        mp_batch(d->name, n, dt / 1e3);
    }
    free(batch);
    free(reqs);
    free(models);
    free(imgs);
    free(res);
    free(idx);
    free(st);
    free(err);
    return NULL;
}

int pool_create(const pool_options *opts, pool_fetch_fn fetch, void *fetch_user,
                pool_t **out, char *err, size_t errlen)
{
    pool_t *p = calloc(1, sizeof *p);
    *out = NULL;
    if (p == NULL || opts->n_devices < 1 || opts->n_devices > POOL_MAX_DEVICES) {
        snprintf(err, errlen, "pool: bad options");
        free(p);
        return -1;
    }
    p->opt = *opts;
    if (p->opt.workers_per_device < 1)
        p->opt.workers_per_device = 1;
    if (p->opt.batch < 1)
        p->opt.batch = 1;
    if (p->opt.queue_depth < 1)
        p->opt.queue_depth = 1;
    if (p->opt.model_cache < 1)
        p->opt.model_cache = 1;
    p->fetch = fetch;
    p->fetch_user = fetch_user;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->resize_load_mu, NULL);
    p->n_dev = opts->n_devices;
    for (int i = 0; i < p->n_dev; i++) {
        snprintf(p->dev[i].name, sizeof p->dev[i].name, "%s", opts->devices[i]);
        pthread_cond_init(&p->dev[i].cv, NULL);
    }
    p->n_workers = p->n_dev * p->opt.workers_per_device;
    p->workers = calloc((size_t)p->n_workers, sizeof *p->workers);
    if (p->workers == NULL)
        goto fail;
    for (int i = 0; i < p->n_workers; i++) {
        worker *w = &p->workers[i];
        w->pool = p;
        w->device = i / p->opt.workers_per_device;
        w->cache = calloc((size_t)(p->opt.model_cache + p->opt.batch), sizeof *w->cache);
        if (w->cache == NULL)
            goto fail;
        char lerr[256] = "";
        /* on a thread of its own: leaves no OpenMP team behind (fresh_thread.h) */
        cfa_status st = fresh_thread_load_backbone(opts->backbone_path, p->dev[w->device].name,
                                                   &w->bb, lerr, sizeof lerr);
        if (st != CFA_OK) {
            snprintf(err, errlen, "backbone %s on %s: %s: %s", opts->backbone_path,
                     p->dev[w->device].name, cfa_status_str(st), lerr);
            goto fail_quiet;
        }
    }
    snprintf(p->sha256, sizeof p->sha256, "%s", cfa_backbone_sha256(p->workers[0].bb));
    cfa_backbone_channels(p->workers[0].bb, p->channels);
    for (int i = 0; i < p->n_workers; i++) {
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            snprintf(err, errlen, "pool: cannot start worker thread");
            pool_free(p);
            return -1;
        }
        p->workers[i].started = 1;
    }
    *out = p;
    return 0;
fail:
    snprintf(err, errlen, "pool: out of memory");
fail_quiet:
    pool_free(p);
    return -1;
}

pool_status pool_run(pool_t *p, pool_req *r)
{
    waiter wt;
    memset(&wt, 0, sizeof wt);
    wt.req = r;
    r->status = CFA_OK;
    r->error[0] = '\0';
    memset(&r->result, 0, sizeof r->result);
    pthread_cond_init(&wt.cv, NULL);
    pthread_mutex_lock(&p->mu);
    if (r->announced && p->arriving > 0)
        p->arriving--; /* its announcement ends here, queued or not */
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        pthread_cond_destroy(&wt.cv);
        return POOL_STOPPED;
    }
    int best = 0;
    for (int i = 1; i < p->n_dev; i++)
        if (p->dev[i].queued + p->dev[i].busy < p->dev[best].queued + p->dev[best].busy)
            best = i;
    device_q *d = &p->dev[best];
    if (d->queued >= p->opt.queue_depth) {
        pthread_mutex_unlock(&p->mu);
        pthread_cond_destroy(&wt.cv);
        mp_queue_rejected();
        return POOL_BUSY;
    }
    wt.t_enqueue = mono_ms();
    if (d->tail != NULL)
        d->tail->next = &wt;
    else
        d->head = &wt;
    d->tail = &wt;
    d->queued++;
    pthread_cond_signal(&d->cv);
    while (!wt.done)
        pthread_cond_wait(&wt.cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&wt.cv);
    return r->status == CFA_OK ? POOL_OK : POOL_FAILED;
}

void pool_announce(pool_t *p, int n)
{
    pthread_mutex_lock(&p->mu);
    p->arriving += n;
    if (p->arriving < 0)
        p->arriving = 0;
    if (n < 0) /* a worker waiting for it stops waiting */
        for (int i = 0; i < p->n_dev; i++)
            pthread_cond_broadcast(&p->dev[i].cv);
    pthread_mutex_unlock(&p->mu);
}

int pool_arriving(pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->arriving;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Looks product@version up in the resize ring; call with p->mu held. */
static int resize_find(pool_t *p, const char *product, int64_t version, int *w, int *h)
{
    unsigned n = p->n_resize < POOL_RESIZE_SLOTS ? p->n_resize : POOL_RESIZE_SLOTS;
    for (unsigned i = 0; i < n; i++) {
        if (p->resize[i].version == version && strcmp(p->resize[i].product, product) == 0) {
            *w = p->resize[i].w;
            *h = p->resize[i].h;
            return 0;
        }
    }
    return -1;
}

/* Once per version: the parameters are inside the model's blob, loaded on
 * the CPU without a backbone and dropped at once. Call with
 * p->resize_load_mu held (p->mu not). */
static int resize_load(pool_t *p, const char *product, int64_t version, int *w, int *h)
{
    pthread_mutex_lock(&p->mu);
    int found = resize_find(p, product, version, w, h); /* loaded while we waited */
    pthread_mutex_unlock(&p->mu);
    if (found == 0)
        return 0;
    void *buf = NULL;
    size_t len = 0;
    char err[256];
    cfa_model *m = NULL;
    if (p->fetch(p->fetch_user, product, version, &buf, &len, err, sizeof err) != 0)
        return -1;
    cfa_status st = cfa_model_load(buf, len, NULL, &m);
    free(buf);
    if (st != CFA_OK)
        return -1;
    cfa_params prm = cfa_model_params(m);
    cfa_model_free(m);
    pthread_mutex_lock(&p->mu);
    unsigned i = p->n_resize++ % POOL_RESIZE_SLOTS;
    snprintf(p->resize[i].product, sizeof p->resize[i].product, "%s", product);
    p->resize[i].version = version;
    p->resize[i].w = *w = prm.resize_w;
    p->resize[i].h = *h = prm.resize_h;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int pool_model_resize(pool_t *p, const char *product, int64_t version, int *w, int *h)
{
    *w = *h = 0;
    pthread_mutex_lock(&p->mu);
    int found = resize_find(p, product, version, w, h);
    pthread_mutex_unlock(&p->mu);
    if (found == 0)
        return 0;
    pthread_mutex_lock(&p->resize_load_mu);
    int rc = resize_load(p, product, version, w, h);
    pthread_mutex_unlock(&p->resize_load_mu);
    return rc;
}

void pool_forget(pool_t *p, const char *product)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->forget[p->flush_gen % 64], sizeof p->forget[0], "%s", product);
    p->flush_gen++;
    /* a product made again under the same id starts again at version 1 */
    for (unsigned i = 0; i < POOL_RESIZE_SLOTS; i++)
        if (strcmp(p->resize[i].product, product) == 0)
            p->resize[i].product[0] = '\0';
    pthread_mutex_unlock(&p->mu);
}

int pool_queue_depth(pool_t *p, int device)
{
    int n;
    if (device < 0 || device >= p->n_dev)
        return -1;
    pthread_mutex_lock(&p->mu);
    n = p->dev[device].queued;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pool_n_devices(pool_t *p) { return p->n_dev; }

const char *pool_device_name(pool_t *p, int device)
{
    return device >= 0 && device < p->n_dev ? p->dev[device].name : "";
}

int pool_models_loaded(pool_t *p)
{
    int n;
    pthread_mutex_lock(&p->mu);
    n = p->models_loaded;
    pthread_mutex_unlock(&p->mu);
    return n;
}

const char *pool_backbone_sha256(pool_t *p) { return p->sha256; }

void pool_backbone_channels(pool_t *p, int out[3])
{
    memcpy(out, p->channels, sizeof p->channels);
}

int pool_ready(pool_t *p)
{
    int r;
    pthread_mutex_lock(&p->mu);
    r = !p->stopping;
    pthread_mutex_unlock(&p->mu);
    return r;
}

void pool_stop(pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    for (int i = 0; i < p->n_dev; i++)
        pthread_cond_broadcast(&p->dev[i].cv);
    pthread_mutex_unlock(&p->mu);
}

void pool_free(pool_t *p)
{
    if (p == NULL)
        return;
    pool_stop(p);
    for (int i = 0; i < p->n_workers; i++) {
        worker *w = &p->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->cache != NULL) {
            for (int k = 0; k < w->n_cache; k++)
                cfa_model_free(w->cache[k].model);
            free(w->cache);
        }
        cfa_backbone_free(w->bb);
    }
    free(p->workers);
    for (int i = 0; i < p->n_dev; i++)
        pthread_cond_destroy(&p->dev[i].cv);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->resize_load_mu);
    free(p);
}
