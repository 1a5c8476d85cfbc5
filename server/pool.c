/* pool.c - inference workers, per-device bounded queues and model LRUs. */
#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics_prom.h"

#define POOL_MAX_DEVICES 8

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
    unsigned flush_gen;       /* bumped by pool_forget: workers drop caches */
    char forget[64][72];      /* products forgotten, ring by flush_gen     */
    int models_loaded;
    char sha256[65];
    int channels[3];
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

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

/* Returns the model, loading it (and evicting the least recently used one)
 * when missing. Called only by the worker's own thread. */
static cfa_model *worker_model(worker *w, const char *product, int64_t version,
                               cfa_status *st, char *err, size_t errlen)
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
    if (w->n_cache >= p->opt.model_cache) {
        int lru = 0;
        for (int i = 1; i < w->n_cache; i++)
            if (w->cache[i].last_used < w->cache[lru].last_used)
                lru = i;
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

static void *worker_main(void *arg)
{
    worker *w = arg;
    pool_t *p = w->pool;
    device_q *d = &p->dev[w->device];
    int B = p->opt.batch;
    waiter **batch = calloc((size_t)B, sizeof *batch);
    cfa_image *imgs = calloc((size_t)B, sizeof *imgs);
    cfa_result *res = calloc((size_t)B, sizeof *res);
    int *idx = calloc((size_t)B, sizeof *idx);
    char *taken = calloc((size_t)B, 1);
    if (batch == NULL || imgs == NULL || res == NULL || idx == NULL || taken == NULL) {
        fprintf(stderr, "pool: out of memory\n");
        abort();
    }
    for (;;) {
        int n = 0;
        pthread_mutex_lock(&p->mu);
        while (d->head == NULL && !p->stopping)
            pthread_cond_wait(&d->cv, &p->mu);
        if (d->head == NULL && p->stopping) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        double t_take = now_ms();
        while (d->head != NULL && n < B) {
            waiter *wt = d->head;
            d->head = wt->next;
            if (d->head == NULL)
                d->tail = NULL;
            d->queued--;
            d->busy++;
            batch[n++] = wt;
        }
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < n; i++) {
            batch[i]->req->queue_ms = t_take - batch[i]->t_enqueue;
            batch[i]->req->batch_n = n;
            snprintf(batch[i]->req->device, sizeof batch[i]->req->device, "%s", d->name);
        }
        double t_batch = now_ms();
        memset(taken, 0, (size_t)B);
        /* one cfa_score per (product, version) group */
        for (int i = 0; i < n; i++) {
            if (taken[i])
                continue;
            pool_req *r0 = batch[i]->req;
            int g = 0;
            for (int j = i; j < n; j++) {
                /* a taken waiter may already be finished: its requester has
                 * returned and the waiter (on that thread's stack) is gone,
                 * so test taken[] before touching batch[j] */
                if (taken[j])
                    continue;
                pool_req *rj = batch[j]->req;
                if (rj->version == r0->version && strcmp(rj->product, r0->product) == 0) {
                    taken[j] = 1;
                    idx[g] = j;
                    imgs[g] = rj->image;
                    g++;
                }
            }
            double t0 = now_ms();
            cfa_status st = CFA_OK;
            char err[256] = "";
            cfa_model *m = worker_model(w, r0->product, r0->version, &st, err, sizeof err);
            if (m != NULL) {
                memset(res, 0, sizeof *res * (size_t)g);
                st = cfa_score(w->bb, m, imgs, g, res);
                if (st != CFA_OK)
                    snprintf(err, sizeof err, "%s", cfa_last_error());
            }
            double dt = now_ms() - t0;
            for (int k = 0; k < g; k++) {
                waiter *wt = batch[idx[k]];
                pool_req *r = wt->req;
                r->status = st;
                r->model_ms = dt;
                if (st == CFA_OK) {
                    r->result = res[k];
                } else {
                    memset(&r->result, 0, sizeof r->result);
                    snprintf(r->error, sizeof r->error, "%s", err);
                }
                finish(p, d, wt);
            }
        }
        mp_batch(d->name, n, (now_ms() - t_batch) / 1e3);
    }
    free(batch);
    free(imgs);
    free(res);
    free(idx);
    free(taken);
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
        w->cache = calloc((size_t)p->opt.model_cache, sizeof *w->cache);
        if (w->cache == NULL)
            goto fail;
        cfa_status st = cfa_backbone_load(opts->backbone_path, p->dev[w->device].name, &w->bb);
        if (st != CFA_OK) {
            snprintf(err, errlen, "backbone %s on %s: %s: %s", opts->backbone_path,
                     p->dev[w->device].name, cfa_status_str(st), cfa_last_error());
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
    wt.t_enqueue = now_ms();
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

void pool_forget(pool_t *p, const char *product)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->forget[p->flush_gen % 64], sizeof p->forget[0], "%s", product);
    p->flush_gen++;
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
    free(p);
}
