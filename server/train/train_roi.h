/*
 * train_roi.h - training and calibration with tiles and an ROI mask (issue
 * 13), private to cfa_train. With a tile, the engine's image source gives
 * the tiles of the training images (each image decoded once for its run of
 * tiles), so the memory bank and the descriptor see tiles at the images'
 * own resolution; calibration scores held-out images as inspections do:
 * tiles in one backbone batch, maps stitched with their maximum, the mask's
 * uninspected pixels left out of the score.
 */
#ifndef CFA_TRAIN_ROI_H
#define CFA_TRAIN_ROI_H

#include "cfa.h"
#include "image.h"
#include "roi.h"
#include "store.h"

typedef struct {
    int image;          /* index into the job's images        */
    roi_tile t;
} tile_ref;

typedef struct train_tiles {
    const store_image_t *imgs;
    tile_ref *refs;
    int n;              /* tiles in all                         */
    img_limits lim;
    volatile int *cancel;
    int cur;            /* the image decoded in im (-1: none)   */
    img_rgbf im;
    void **held;        /* each tile's pixels while the engine holds it */
    char err[256];
} train_tiles;

/* The tiles of images order[0 .. n) (their stored sizes). 0, or -1 with
 * tt->err set (too many tiles for an image). */
int train_tiles_init(train_tiles *tt, const store_image_t *imgs, const int *order, int n,
                     int tile, int overlap, const img_limits *lim, volatile int *cancel);
/* cfa_image_source callbacks over tt. */
int train_tiles_get(void *user, int i, cfa_image *out);
void train_tiles_release(void *user, int i, cfa_image *img);
void train_tiles_free(train_tiles *tt);

/* The score an inspection would give the decoded image im: with tile > 0
 * its stitched tiles, else the whole image (map made at its own size,
 * src_width x src_height), then the maximum over the mask's inspected
 * pixels (mask may be NULL). CFA_OK or the engine's failure. */
cfa_status roi_calib_score(cfa_backbone *bb, const cfa_model *m, const img_rgbf *im, int tile,
                           int overlap, const roi_mask *mask, float *score /* OUT */);

#endif
