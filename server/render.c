/* render.c - heatmap and map PNGs of inspections, off the request path. */
#define _GNU_SOURCE
#include "render.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heatmap.h"

struct render {
    store_t *st;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a job was queued, or stop               */
    pthread_cond_t cv_done; /* a job finished                          */
    render_job *q;          /* ring of cap jobs                        */
    int cap, head, n;
    char busy_id[40];       /* job the thread renders now ("" if none) */
    int stop;
    pthread_t thread;
};

static void job_release(render_job *j)
{
    free(j->map);
    j->map = NULL;
    img_rgbf_free(&j->base);
    free(j->heat_png);
    j->heat_png = NULL;
    j->heat_len = 0;
}

int render_heatmap_png(const float *map, int w, int h, const img_rgbf *base, float vmax,
                       void **png, size_t *len)
{
    *png = NULL;
    *len = 0;
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    int ok = rgb != NULL &&
             heatmap_render(map, w, h, base != NULL && base->rgb != NULL ? base : NULL, 0.0f,
                            vmax, rgb) == 0 &&
             png_encode_rgb8(rgb, w, h, png, len) == IMG_OK;
    free(rgb);
    return ok ? 0 : -1;
}

int render_now(store_t *st, render_job *j)
{
    size_t npx = (size_t)j->width * (size_t)j->height;
    void *mpng = NULL;
    size_t map_len = 0;
    int ok = 0;
    uint16_t *v16 = malloc(npx * sizeof *v16);
    if (v16 != NULL &&
        (j->heat_png != NULL || render_heatmap_png(j->map, j->width, j->height, &j->base, j->vmax,
                                                   &j->heat_png, &j->heat_len) == 0)) {
        heatmap_map16(j->map, npx, j->map_max, v16);
        if (png_encode_gray16(v16, j->width, j->height, &mpng, &map_len) == IMG_OK &&
            store_inspection_file_write(st, j->id, "heatmap.png", j->heat_png, j->heat_len) ==
                STORE_OK &&
            store_inspection_file_write(st, j->id, "map.png", mpng, map_len) == STORE_OK)
            ok = 1;
    }
    if (!ok)
        fprintf(stderr, "render: heatmap/map of inspection %s not stored\n", j->id);
    free(v16);
    free(mpng);
    job_release(j);
    return ok ? 0 : -1;
}

static void *render_main(void *arg)
{
    render_t *r = arg;
    /* below the inference workers: under full load, scoring goes first and
     * the files catch up in idle moments (a full queue renders inline) */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 5);
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->n == 0 && !r->stop)
            pthread_cond_wait(&r->cv_work, &r->mu);
        if (r->n == 0 && r->stop)
            break;
        render_job j = r->q[r->head];
        r->head = (r->head + 1) % r->cap;
        r->n--;
        snprintf(r->busy_id, sizeof r->busy_id, "%s", j.id);
        pthread_mutex_unlock(&r->mu);
        render_now(r->st, &j);
        pthread_mutex_lock(&r->mu);
        r->busy_id[0] = '\0';
        pthread_cond_broadcast(&r->cv_done);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int render_create(store_t *st, int queue_cap, render_t **out)
{
    *out = NULL;
    render_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -1;
    r->st = st;
    r->cap = queue_cap < 1 ? 1 : queue_cap;
    r->q = calloc((size_t)r->cap, sizeof *r->q);
    if (r->q == NULL) {
        free(r);
        return -1;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv_work, NULL);
    pthread_cond_init(&r->cv_done, NULL);
    if (pthread_create(&r->thread, NULL, render_main, r) != 0) {
        pthread_cond_destroy(&r->cv_done);
        pthread_cond_destroy(&r->cv_work);
        pthread_mutex_destroy(&r->mu);
        free(r->q);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int render_submit(render_t *r, render_job *job)
{
    pthread_mutex_lock(&r->mu);
    if (r->stop || r->n >= r->cap) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    r->q[(r->head + r->n) % r->cap] = *job;
    r->n++;
    job->map = NULL;
    memset(&job->base, 0, sizeof job->base);
    job->heat_png = NULL;
    job->heat_len = 0;
    pthread_cond_signal(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

void render_wait(render_t *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    for (;;) {
        int found = -1;
        for (int k = 0; k < r->n; k++)
            if (strcmp(r->q[(r->head + k) % r->cap].id, id) == 0) {
                found = k;
                break;
            }
        if (found > 0) {
            /* still queued: move it to the front, the thread renders it next */
            render_job j = r->q[(r->head + found) % r->cap];
            for (int k = found; k > 0; k--)
                r->q[(r->head + k) % r->cap] = r->q[(r->head + k - 1) % r->cap];
            r->q[r->head] = j;
        }
        if (found >= 0) {
            pthread_cond_wait(&r->cv_done, &r->mu);
            continue;
        }
        if (strcmp(r->busy_id, id) != 0)
            break;
        pthread_cond_wait(&r->cv_done, &r->mu);
    }
    pthread_mutex_unlock(&r->mu);
}

int render_pending(render_t *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->n + (r->busy_id[0] != '\0');
    pthread_mutex_unlock(&r->mu);
    return n;
}

void render_free(render_t *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL); /* the thread drains the queue first */
    pthread_cond_destroy(&r->cv_done);
    pthread_cond_destroy(&r->cv_work);
    pthread_mutex_destroy(&r->mu);
    free(r->q);
    free(r);
}
