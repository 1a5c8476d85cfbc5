/* train_roi.c - tiles for training and the calibration score with tiles and
 * an ROI mask (train_roi.h). */
#define _GNU_SOURCE
#include "train_roi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_alloc.h"

int train_tiles_init(train_tiles *tt, const store_image_t *imgs, const int *order, int n,
                     int tile, int overlap, const img_limits *lim, volatile int *cancel)
{
    memset(tt, 0, sizeof *tt);
    tt->imgs = imgs;
    tt->lim = *lim;
    tt->cancel = cancel;
    tt->cur = -1;
    roi_tile *grid = xcalloc(ROI_MAX_TILES, sizeof *grid);
    int cap = 0;
    for (int k = 0; k < n; k++) {
        const store_image_t *si = &imgs[order[k]];
        int g = roi_tile_grid(si->width, si->height, tile, overlap, grid, ROI_MAX_TILES);
        if (g < 1) {
            snprintf(tt->err, sizeof tt->err, "image %s (%d x %d) needs more than %d tiles",
                     si->sha256, si->width, si->height, ROI_MAX_TILES);
            free(grid);
            return -1;
        }
        if (tt->n + g > cap) {
            cap = (tt->n + g) * 2;
            tt->refs = xrealloc(tt->refs, (size_t)cap * sizeof *tt->refs);
        }
        for (int j = 0; j < g; j++)
            tt->refs[tt->n++] = (tile_ref){order[k], grid[j]};
    }
    free(grid);
    tt->held = xcalloc((size_t)(tt->n > 0 ? tt->n : 1), sizeof *tt->held);
    return 0;
}

/* Decodes image i into tt->im unless it is there already. */
static int decode_image(train_tiles *tt, int image)
{
    if (tt->cur == image)
        return 0;
    img_rgbf_free(&tt->im);
    tt->cur = -1;
    const store_image_t *si = &tt->imgs[image];
    img_status rc;
    do
        rc = img_load_file_ex(si->path, &tt->lim, IMG_DECODE_8BIT, &tt->im);
    while (rc == IMG_ERR_BUSY && !*tt->cancel);
    if (rc == IMG_OK && (tt->im.width != si->width || tt->im.height != si->height)) {
        img_rgbf_free(&tt->im);
        rc = IMG_ERR_CORRUPT;
    }
    if (rc != IMG_OK) {
        snprintf(tt->err, sizeof tt->err, "image %s: %s", si->sha256, img_status_str(rc));
        return -1;
    }
    tt->cur = image;
    return 0;
}

int train_tiles_get(void *user, int i, cfa_image *out)
{
    train_tiles *tt = user;
    const tile_ref *r = &tt->refs[i];
    if (decode_image(tt, r->image) != 0)
        return -1;
    size_t n = (size_t)r->t.w * (size_t)r->t.h * 3;
    int bytes = tt->im.rgb8 != NULL;
    void *px = malloc(n * (bytes ? 1 : sizeof(float)));
    if (px == NULL) {
        snprintf(tt->err, sizeof tt->err, "out of memory");
        return -1;
    }
    roi_tile_cut(tt->im.rgb8, tt->im.rgb, tt->im.width, &r->t, px, px);
    free(tt->held[i]);
    tt->held[i] = px;
    *out = (cfa_image){r->t.w, r->t.h, bytes ? NULL : px, bytes ? px : NULL};
    return 0;
}

void train_tiles_release(void *user, int i, cfa_image *img)
{
    train_tiles *tt = user;
    (void)img;
    free(tt->held[i]);
    tt->held[i] = NULL;
}

void train_tiles_free(train_tiles *tt)
{
    for (int i = 0; tt->held != NULL && i < tt->n; i++)
        free(tt->held[i]);
    free(tt->held);
    free(tt->refs);
    img_rgbf_free(&tt->im);
    memset(tt, 0, sizeof *tt);
}

/* The stitched map of im's tiles (w x h, malloc'd), or NULL. */
static float *tiled_map(cfa_backbone *bb, const cfa_model *m, const img_rgbf *im, int tile,
                        int overlap, cfa_status *st)
{
    roi_tile *grid = xcalloc(ROI_MAX_TILES, sizeof *grid);
    int n = roi_tile_grid(im->width, im->height, tile, overlap, grid, ROI_MAX_TILES);
    size_t px = n > 0 ? (size_t)grid[0].w * (size_t)grid[0].h * 3 : 0;
    size_t bytes = im->rgb8 != NULL ? 1 : sizeof(float);
    uint8_t *buf = n > 0 ? malloc(px * bytes * (size_t)n) : NULL;
    cfa_image *ti = n > 0 ? calloc((size_t)n, sizeof *ti) : NULL;
    cfa_result *res = n > 0 ? calloc((size_t)n, sizeof *res) : NULL;
    float *map = n > 0 ? malloc((size_t)im->width * (size_t)im->height * sizeof *map) : NULL;
    *st = buf && ti && res && map ? CFA_OK : n < 1 ? CFA_ERR_IMAGE : CFA_ERR_NOMEM;
    for (int k = 0; *st == CFA_OK && k < n; k++) {
        uint8_t *dst = buf + (size_t)k * px * bytes;
        roi_tile_cut(im->rgb8, im->rgb, im->width, &grid[k], dst, (float *)(void *)dst);
        ti[k] = (cfa_image){grid[k].w, grid[k].h, im->rgb8 ? NULL : (const float *)(void *)dst,
                            im->rgb8 ? dst : NULL};
    }
    if (*st == CFA_OK)
        *st = cfa_score_tiles(bb, m, ti, n, res);
    if (*st == CFA_OK) {
        for (size_t i = 0; i < (size_t)im->width * (size_t)im->height; i++)
            map[i] = -INFINITY;
        for (int k = 0; k < n; k++)
            roi_tile_stitch(map, im->width, &grid[k], res[k].map);
        for (int k = 0; k < n; k++)
            cfa_result_clear(&res[k]);
    }
    free(grid);
    free(buf);
    free(ti);
    free(res);
    if (*st != CFA_OK) {
        free(map);
        return NULL;
    }
    return map;
}

/* The whole image's map at its own size (src_width x src_height), or NULL. */
static float *whole_map(cfa_backbone *bb, const cfa_model *m, const img_rgbf *im, cfa_status *st)
{
    cfa_image ci = {im->width, im->height, im->rgb, im->rgb8};
    cfa_result res;
    memset(&res, 0, sizeof res);
    *st = cfa_score(bb, m, &ci, 1, &res);
    if (*st != CFA_OK)
        return NULL;
    float *map = res.map;
    if (res.width != im->src_width || res.height != im->src_height) {
        map = malloc((size_t)im->src_width * (size_t)im->src_height * sizeof *map);
        if (map == NULL)
            *st = CFA_ERR_NOMEM;
        else if ((*st = cfa_map_to_image(res.model_map, res.model_width, res.model_height,
                                         res.resize_width, res.resize_height, im->src_width,
                                         im->src_height, map, NULL)) != CFA_OK) {
            free(map);
            map = NULL;
        }
    } else {
        res.map = NULL; /* taken */
    }
    cfa_result_clear(&res);
    return map;
}

cfa_status roi_calib_score(cfa_backbone *bb, const cfa_model *m, const img_rgbf *im, int tile,
                           int overlap, const roi_mask *mask, float *score)
{
    cfa_status st = CFA_OK;
    float *map = tile > 0 ? tiled_map(bb, m, im, tile, overlap, &st) : whole_map(bb, m, im, &st);
    if (map == NULL)
        return st;
    int w = tile > 0 ? im->width : im->src_width, h = tile > 0 ? im->height : im->src_height;
    *score = roi_mask_apply(mask, map, w, h);
    free(map);
    return CFA_OK;
}
