/*
 * roi.h - what of an image is inspected, and how a large image is cut into
 * tiles (issue 13). Pixels only: no engine, no store.
 *
 * ROI mask: a PNG (any bit depth and colour type libspng reads), the size of
 * the product's images or any other size (then scaled nearest-neighbour to
 * each image); a pixel whose grey or colour value is non-zero is inspected,
 * alpha is ignored. Uninspected pixels of an anomaly map are NaN: they never
 * raise the score (roi_mask_apply returns the maximum over inspected pixels),
 * make no region (NaN is never >= a threshold) and are drawn blank.
 *
 *     roi_mask m;
 *     if (roi_mask_decode(png, len, &lim, &m) == ROI_OK) {
 *         float score = roi_mask_apply(&m, map, w, h);
 *         roi_mask_free(&m);
 *     }
 *
 * Tiles: tile x tile squares at the image's own resolution, overlapping by
 * at least `overlap` pixels, spread evenly from edge to edge (no tile runs
 * past the image, every pixel is in at least one tile); a side shorter than
 * the tile is one tile of that side. Their maps are
 * stitched with the maximum where tiles overlap (roi_tile_stitch).
 *
 * All functions are reentrant and keep no state.
 */
#ifndef CFA_ROI_H
#define CFA_ROI_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* A mask PNG's encoded size limit: a mask is one bit of information a
 * pixel, and compresses to far less than the images it covers. */
#define ROI_MASK_MAX_BYTES ((size_t)8 << 20)
/* At most this many tiles per image (one backbone batch; 16384 x 16384 at
 * 512-pixel tiles without overlap is 1024). */
#define ROI_MAX_TILES 1024

typedef enum {
    ROI_OK = 0,
    ROI_ERR_NOT_PNG = 1,   /* the body is not a PNG                         */
    ROI_ERR_TOO_BIG = 2,   /* over ROI_MASK_MAX_BYTES                       */
    ROI_ERR_DECODE = 3,    /* libspng refused it or a limit was hit: img    */
    ROI_ERR_EMPTY = 4      /* no pixel is inspected                         */
} roi_status;

typedef struct {
    int width, height;
    uint8_t *px;           /* width * height: 1 inspected, 0 not            */
    int64_t inspected;     /* pixels set                                     */
} roi_mask;

/* Decodes a mask PNG strictly (image.h's PNG decoder with lim's size
 * limits and pixel budget). On ROI_OK *out owns its pixels (roi_mask_free);
 * on ROI_ERR_DECODE *img says why (may be NULL). */
roi_status roi_mask_decode(const void *buf, size_t len, const img_limits *lim,
                           roi_mask *out /* OUT */, img_status *img /* OUT */);
/* roi_mask_decode of a stored mask file (ROI_ERR_DECODE with *img
 * IMG_ERR_IO when it cannot be read). */
roi_status roi_mask_load_file(const char *path, const img_limits *lim, roi_mask *out /* OUT */,
                              img_status *img /* OUT */);
void roi_mask_free(roi_mask *m);
const char *roi_status_str(roi_status s);

/* Sets map (w x h) to NaN where the mask, scaled nearest-neighbour to
 * w x h, is not inspected, and returns the maximum over the inspected
 * pixels (0 when none is inspected at this size; NaN scores are skipped).
 * A NULL mask only returns the maximum. */
float roi_mask_apply(const roi_mask *m, float *map, int w, int h);


typedef struct {
    int x, y, w, h;
} roi_tile;

/* The tiles of a w x h image (see above) into out[0 .. max); returns their
 * number, or -1 for invalid arguments (tile < 8, overlap < 0 or >= tile/2
 * ... see roi.c) or more than max tiles. */
int roi_tile_grid(int w, int h, int tile, int overlap, roi_tile *out /* OUT */, int max);
/* Copies tile t of an interleaved RGB image of width w: bytes (rgb8) or
 * floats (rgb), whichever is not NULL, into dst8 / dstf (t->w * t->h * 3). */
void roi_tile_cut(const uint8_t *rgb8, const float *rgb, int w, const roi_tile *t,
                  uint8_t *dst8 /* OUT */, float *dstf /* OUT */);
/* Stitches a tile's map (t->w x t->h) into map (w wide): the maximum of what
 * is there and the tile's value. Fill map with -INFINITY first. */
void roi_tile_stitch(float *map, int w, const roi_tile *t, const float *tile_map);

#endif
