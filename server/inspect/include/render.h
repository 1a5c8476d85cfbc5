/*
 * render.h - an inspection's images, stored small and rendered on demand.
 *
 * The inspect handler answers as soon as the score, the decision and the
 * regions are known. What the images need goes to one background thread,
 * which stores it durably (store_inspection_file_write):
 *   <id>.input    the image exactly as it was received (JPEG or PNG)
 *   <id>.mapdata  the anomaly map in model geometry (224 x 224 floats by
 *                 default) with the geometry and the colour and 16-bit scales
 * That is a few hundred kB of writes and no pixel work. heatmap.png (colour
 * over the image, image resolution) and map.png (16-bit map, image
 * resolution) are rendered from them on their first GET (render_get):
 * cfa_map_to_image gives back the very map the response was computed from,
 * and the PNG is kept as <id>.heatmap.png / <id>.map.png for later GETs. A
 * heatmap already encoded for the response (?heatmap=inline) is stored as
 * it is.
 *
 *     render_t *r;
 *     render_create(store, 16, &r);
 *     if (render_submit(r, &job) != 0)   (queue full: caller stores inline)
 *         render_now(store, &job);
 *     render_wait(r, id);                 (before reading an id's files)
 *     render_get(store, id, "heatmap.png", &png, &len);
 *     render_free(r);                     (stores what is queued, then stops)
 *
 * A reader of an inspection's files calls render_wait first: a job still
 * queued moves to the front of the queue and is waited for, as is one being
 * stored, so a heatmap URL works as soon as the inspection's response is
 * sent. Jobs queued when the process is killed are lost: their audit rows
 * say has_images but the files are absent, and GET answers 404
 * image_not_kept (docs/RELIABILITY.md).
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
    char id[40];       /* inspection id                                     */
    void *input;       /* the image as received; ownership passes on submit */
    size_t input_len;
    float *model_map;  /* model_w * model_h scores; ownership passes        */
    int model_w, model_h;
    int resize_w, resize_h; /* the frame the crop came from (cfa_result)   */
    int width, height; /* the image's own size                              */
    float vmax;        /* colour scale: 0 .. vmax                           */
    float map_max;     /* 16-bit map scale: v / 65535 * map_max             */
    void *heat_png;    /* heatmap PNG already encoded, or NULL; ownership passes */
    size_t heat_len;
} render_job;

/* The colour heatmap PNG of map (w x h) over base (NULL or without pixels:
 * the colours alone), colour scale 0 .. vmax. On 0, *png is malloc'd (caller
 * frees); -1 on failure (*png NULL). */
int render_heatmap_png(const float *map, int w, int h, const img_rgbf *base, float vmax,
                       void **png /* OUT */, size_t *len /* OUT */);

/* Starts the writer thread; queue_cap >= 1 jobs may wait. 0, or -1. */
int render_create(store_t *st, int queue_cap, render_t **out /* OUT */);
/* Queues job and takes ownership of job->input, job->model_map and
 * job->heat_png (the caller's pointers are cleared). Returns 0, or -1 when the
 * queue is full or the writer is stopping (nothing taken: store inline with
 * render_now). */
int render_submit(render_t *r, render_job *job);
/* Stores job's files durably in the calling thread, then frees what it
 * owns. Returns STORE_OK (0) when they were written, else the first failure
 * (STORE_ERR_FULL on a full disk), logged. */
store_status render_now(store_t *st, render_job *job);
/* "heatmap.png" or "map.png" of inspection id: the kept PNG, or rendered
 * from <id>.mapdata (and <id>.input for the heatmap) and then kept. On
 * STORE_OK *png is malloc'd (caller frees). STORE_ERR_NOT_FOUND when the
 * inspection's files are absent (never stored, pruned, or lost in a kill);
 * STORE_ERR_IO when they are unreadable or inconsistent (with a log line). */
store_status render_get(store_t *st, const char *id, const char *name, void **png /* OUT */,
                        size_t *len /* OUT */);
/* Returns once no job for id is queued or being rendered. */
void render_wait(render_t *r, const char *id);
/* Jobs waiting now (for /metrics). */
int render_pending(render_t *r);
/* Stores every queued job, stops the thread, frees. NULL is a no-op. */
void render_free(render_t *r);

#endif
