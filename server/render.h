/*
 * render.h - writes an inspection's heatmap.png and map.png off the request
 * path. The inspect handler answers as soon as the score, the decision and
 * the regions are known and hands the map and the decoded image to one
 * background thread, which renders the colour heatmap, encodes both PNGs and
 * stores them durably (store_inspection_file_write).
 *
 *     render_t *r;
 *     render_create(store, 16, &r);
 *     if (render_submit(r, &job) != 0)   (queue full: caller renders inline)
 *         render_now(store, &job);
 *     render_wait(r, id);                 (before reading an id's files)
 *     render_free(r);                     (renders what is queued, then stops)
 *
 * A reader of an inspection's files calls render_wait first: a job still
 * queued moves to the front of the queue and is waited for, as is one being
 * rendered, so a heatmap URL works as soon as the inspection's response is
 * sent. Jobs queued when the process is killed are
 * lost: their audit rows say has_images but the files are absent, and GET
 * answers 404 image_not_kept (docs/RELIABILITY.md).
 *
 * Thread-safety: all functions may be called from any thread, except
 * render_free (once, after the last submit).
 */
#ifndef CFA_RENDER_H
#define CFA_RENDER_H

#include <stddef.h>

#include "image.h"
#include "store.h"

typedef struct render render_t;

typedef struct render_job {
    char id[40];      /* inspection id                                  */
    float *map;       /* w * h anomaly scores; ownership passes on submit */
    int width, height;
    img_rgbf base;    /* the decoded image, w x h; ownership passes     */
    float vmax;       /* colour scale: 0 .. vmax                        */
    float map_max;    /* 16-bit map scale: v / 65535 * map_max          */
    void *heat_png;   /* heatmap PNG already encoded, or NULL (then it is
                         rendered from map and base); ownership passes  */
    size_t heat_len;
} render_job;

/* The colour heatmap PNG of map (w x h) over base (NULL or without pixels:
 * the colours alone), colour scale 0 .. vmax. On 0, *png is malloc'd (caller
 * frees); -1 on failure (*png NULL). */
int render_heatmap_png(const float *map, int w, int h, const img_rgbf *base, float vmax,
                       void **png /* OUT */, size_t *len /* OUT */);

/* Starts the writer thread; queue_cap >= 1 jobs may wait. 0, or -1. */
int render_create(store_t *st, int queue_cap, render_t **out /* OUT */);
/* Queues job and takes ownership of job->map, job->base and job->heat_png
 * (the caller's pointers are cleared). Returns 0, or -1 when the queue is full or the
 * writer is stopping (nothing taken: render inline with render_now). */
int render_submit(render_t *r, render_job *job);
/* Renders, encodes and stores job in the calling thread, then frees its map
 * and base. Returns 0 when both files were written. */
int render_now(store_t *st, render_job *job);
/* Returns once no job for id is queued or being rendered. */
void render_wait(render_t *r, const char *id);
/* Jobs waiting now (for /metrics). */
int render_pending(render_t *r);
/* Renders every queued job, stops the thread, frees. NULL is a no-op. */
void render_free(render_t *r);

#endif
