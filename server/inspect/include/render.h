/*
 * render.h - an inspection's images, stored small and rendered on demand.
 *
 * Before an inspection is answered, the request thread stores durably what
 * its images need (render_now, store_inspection_file_write), and only then
 * commits its row (inspect.c), so a row that says has_images has them after
 * any crash:
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
 *     if (render_now(store, &job) != STORE_OK) ...   (not answered: 507/503)
 *     render_get(store, id, "heatmap.png", &png, &len);
 *
 * Thread-safety: all functions may be called from any thread at once.
 */
#ifndef CFA_RENDER_H
#define CFA_RENDER_H

#include <stddef.h>

#include "image.h"
#include "store.h"

typedef struct render_job {
    char id[40];       /* inspection id                                     */
    void *input;       /* the image as received; render_now frees it         */
    size_t input_len;
    float *model_map;  /* model_w * model_h scores; render_now frees it     */
    int model_w, model_h;
    int resize_w, resize_h; /* the frame the crop came from (cfa_result)   */
    int width, height; /* the image's own size                              */
    int area[4];       /* inspected: [x0, x1) x [y0, y1) (inspect_area);
                          the rest is drawn as not inspected               */
    float vmax;        /* colour scale: 0 .. vmax                           */
    float map_max;     /* 16-bit map scale: v / 65535 * map_max             */
    void *heat_png;    /* heatmap PNG already encoded, or NULL; freed too   */
    size_t heat_len;
} render_job;

/* The colour heatmap PNG of map (w x h) over base (NULL or without pixels:
 * the colours alone), colour scale 0 .. vmax. On 0, *png is malloc'd (caller
 * frees); -1 on failure (*png NULL). */
int render_heatmap_png(const float *map, int w, int h, const img_rgbf *base, float vmax,
                       void **png /* OUT */, size_t *len /* OUT */);

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
#endif
