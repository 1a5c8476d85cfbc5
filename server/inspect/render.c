/* render.c - inspection images: stored small before the answer, rendered on
 * their first GET (render.h). */
#define _GNU_SOURCE
#include "render.h"
#include "roi.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base_log.h"
#include "cfa.h"
#include "heatmap.h"

static void job_release(render_job *j)
{
    free(j->input);
    j->input = NULL;
    j->input_len = 0;
    free(j->model_map);
    j->model_map = NULL;
    free(j->heat_png);
    j->heat_png = NULL;
    j->heat_len = 0;
}

/* <id>.mapdata: MAPDATA_MAGIC, six int32 (model_w, model_h, resize_w,
 * resize_h, width, height), two float32 (vmax, map_max), four int32 (the
 * inspected area x0, y0, x1, y1), then model_w * model_h float32 scores,
 * row-major; host byte order (little-endian on the x86-64 and arm64
 * machines this runs on). Version 1 (CFAMAP1) had no area: all inspected. */
#define MAPDATA_MAGIC "CFAMAP2\n"
#define MAPDATA_MAGIC_V1 "CFAMAP1\n"
enum {
    MAPDATA_DIMS = 8,
    MAPDATA_SCALES = MAPDATA_DIMS + 6 * 4,
    MAPDATA_HEAD_V1 = MAPDATA_SCALES + 2 * 4,
    MAPDATA_AREA = MAPDATA_HEAD_V1,
    MAPDATA_HEAD = MAPDATA_AREA + 4 * 4
};

int render_heatmap_png(const float *map, int w, int h, const img_rgbf *base, float vmax,
                       void **png, size_t *len)
{
    *png = NULL;
    *len = 0;
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    int ok = rgb != NULL &&
             heatmap_render(map, w, h,
                            base != NULL && (base->rgb != NULL || base->rgb8 != NULL) ? base : NULL, 0.0f,
                            vmax, rgb) == 0;
    /* pixels not inspected (outside the ROI mask, the border, a crop) are
     * NaN: heatmap_render draws them grey and hatched, never in a colour */
    ok = ok && png_encode_rgb8(rgb, w, h, png, len) == IMG_OK;
    free(rgb);
    return ok ? 0 : -1;
}

store_status render_now(store_t *st, render_job *j)
{
    size_t mpx = (size_t)j->model_w * (size_t)j->model_h;
    size_t len = MAPDATA_HEAD + mpx * sizeof(float);
    uint8_t *md = malloc(len);
    store_status ss = md == NULL ? STORE_ERR_NOMEM : STORE_ERR_INVALID;
    if (md != NULL && j->model_map != NULL && j->input != NULL) {
        int32_t dims[6] = {j->model_w, j->model_h, j->resize_w, j->resize_h, j->width, j->height};
        float scales[2] = {j->vmax, j->map_max};
        memcpy(md, MAPDATA_MAGIC, 8);
        memcpy(md + MAPDATA_DIMS, dims, sizeof dims);
        memcpy(md + MAPDATA_SCALES, scales, sizeof scales);
        int32_t area[4] = {j->area[0], j->area[1], j->area[2], j->area[3]};
        memcpy(md + MAPDATA_AREA, area, sizeof area);
        memcpy(md + MAPDATA_HEAD, j->model_map, mpx * sizeof(float));
        /* mapdata last: its presence means the inspection's files are whole */
        ss = store_inspection_file_write(st, j->id, "input", j->input, j->input_len);
        if (ss == STORE_OK && j->heat_png != NULL)
            ss = store_inspection_file_write(st, j->id, "heatmap.png", j->heat_png, j->heat_len);
        if (ss == STORE_OK)
            ss = store_inspection_file_write(st, j->id, "mapdata", md, len);
    }
    if (ss != STORE_OK)
        log_error("render", "files of inspection %s not stored: %s (%s)", j->id,
                  store_strerror(ss), store_last_error());
    free(md);
    job_release(j);
    return ss;
}

/* Reads and checks <id>.mapdata, then gives the image-geometry map back. */
static store_status load_map(store_t *st, const char *id, float **map, int *w, int *h,
                             float *vmax, float *map_max)
{
    void *data = NULL;
    size_t len = 0;
    *map = NULL;
    store_status ss = store_inspection_file_read(st, id, "mapdata", &data, &len);
    if (ss != STORE_OK)
        return ss;
    int32_t d[6], area[4] = {0, 0, INT32_MAX, INT32_MAX};
    float sc[2];
    const uint8_t *b = data;
    ss = STORE_ERR_IO;
    int v2 = len >= MAPDATA_HEAD && memcmp(b, MAPDATA_MAGIC, 8) == 0;
    size_t head = v2 ? MAPDATA_HEAD : MAPDATA_HEAD_V1;
    if (v2 || (len >= MAPDATA_HEAD_V1 && memcmp(b, MAPDATA_MAGIC_V1, 8) == 0)) {
        memcpy(d, b + MAPDATA_DIMS, sizeof d);
        memcpy(sc, b + MAPDATA_SCALES, sizeof sc);
        if (v2)
            memcpy(area, b + MAPDATA_AREA, sizeof area);
        /* sides within the image decoder's limits */
        const img_limits lim = img_default_limits();
        int sane = d[0] > 0 && d[1] > 0 && d[2] >= d[0] && d[3] >= d[1] && d[2] <= lim.max_width &&
                   d[3] <= lim.max_height && d[4] > 0 && d[5] > 0 && d[4] <= lim.max_width &&
                   d[5] <= lim.max_height;
        if (sane && len == head + (size_t)d[0] * (size_t)d[1] * sizeof(float)) {
            float *full = malloc((size_t)d[4] * (size_t)d[5] * sizeof(float));
            float *mm = malloc((size_t)d[0] * (size_t)d[1] * sizeof(float));
            if (full != NULL && mm != NULL) {
                memcpy(mm, b + head, (size_t)d[0] * (size_t)d[1] * sizeof(float));
                if (cfa_map_to_image(mm, d[0], d[1], d[2], d[3], d[4], d[5], full, NULL) ==
                    CFA_OK) {
                    const int rect[4] = {area[0], area[1], area[2], area[3]};
                    heatmap_blank_outside(full, d[4], d[5], rect);
                    *map = full;
                    full = NULL;
                    *w = d[4];
                    *h = d[5];
                    *vmax = sc[0];
                    *map_max = sc[1];
                    ss = STORE_OK;
                }
            } else {
                ss = STORE_ERR_NOMEM;
            }
            free(full);
            free(mm);
        }
    }
    if (ss == STORE_ERR_IO)
        log_error("render", "%s.mapdata is damaged (%zu bytes)", id, len);
    free(data);
    return ss;
}

store_status render_get(store_t *st, const char *id, const char *name, void **png, size_t *len)
{
    *png = NULL;
    *len = 0;
    int heat = strcmp(name, "heatmap.png") == 0;
    if (!heat && strcmp(name, "map.png") != 0)
        return STORE_ERR_INVALID;
    store_status ss = store_inspection_file_read(st, id, name, png, len);
    if (ss != STORE_ERR_NOT_FOUND)
        return ss; /* kept from an earlier GET (or an I/O error) */
    float *map = NULL, vmax = 0, map_max = 0;
    int w = 0, h = 0;
    ss = load_map(st, id, &map, &w, &h, &vmax, &map_max);
    if (ss != STORE_OK)
        return ss;
    if (heat) {
        void *in = NULL;
        size_t in_len = 0;
        img_rgbf base;
        memset(&base, 0, sizeof base);
        ss = store_inspection_file_read(st, id, "input", &in, &in_len);
        if (ss == STORE_OK) {
            img_limits lim = img_default_limits();
            lim.min_side = 1;
            lim.max_pixels = (size_t)w * (size_t)h;
            if (img_decode_ex(in, in_len, &lim, IMG_DECODE_8BIT, &base) != IMG_OK || base.width != w ||
                base.height != h) {
                log_error("render", "%s.input does not decode to %d x %d", id, w, h);
                ss = STORE_ERR_IO;
            } else if (render_heatmap_png(map, w, h, &base, vmax, png, len) != 0) {
                ss = STORE_ERR_NOMEM;
            }
        }
        img_rgbf_free(&base);
        free(in);
    } else {
        uint16_t *v16 = malloc((size_t)w * (size_t)h * sizeof *v16);
        if (v16 == NULL) {
            ss = STORE_ERR_NOMEM;
        } else {
            heatmap_map16(map, (size_t)w * (size_t)h, map_max, v16);
            if (png_encode_gray16(v16, w, h, png, len) != IMG_OK)
                ss = STORE_ERR_NOMEM;
        }
        free(v16);
    }
    free(map);
    if (ss != STORE_OK) {
        free(*png);
        *png = NULL;
        *len = 0;
        return ss;
    }
    /* kept for the next GET; a failure to keep it only costs a re-render. If
     * retention pruned the inspection meanwhile, the kept file goes too. */
    if (store_inspection_file_write(st, id, name, *png, *len) == STORE_OK) {
        char path[4096];
        if (store_inspection_file_path(st, id, "mapdata", path, sizeof path) == STORE_OK &&
            access(path, F_OK) != 0 &&
            store_inspection_file_path(st, id, name, path, sizeof path) == STORE_OK)
            unlink(path);
    }
    return STORE_OK;
}
