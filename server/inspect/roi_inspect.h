/*
 * roi_inspect.h - the ROI mask and the tiling of an inspection (issue 13),
 * private to cfa_inspect. What the model was trained with decides both: its
 * figures name its tile, tile_overlap and mask_sha256 (server/train/jobs.c),
 * so changing a product's mask or tile affects only the next training.
 * Decoded masks are cached by (product, sha256): content-addressed, so an
 * entry is never stale.
 */
#ifndef CFA_ROI_INSPECT_H
#define CFA_ROI_INSPECT_H

#include "cfa.h"
#include "image.h"
#include "pool.h"
#include "roi.h"
#include "store.h"

typedef struct roi_cache roi_cache;

/* What one inspection is scored with; roi_inspect_clear releases it. */
typedef struct {
    int tile, overlap;          /* tile 0: the whole image at once          */
    int border;                 /* the model's border; -1: its figures predate
                                   it, the request's (product's) applies     */
    const roi_mask *mask;       /* NULL: every pixel inspected              */
    void *mask_ref;             /* the cache entry the mask is held through */
    roi_tile *tiles;            /* the tiled image's grid ...               */
    cfa_image *tile_imgs;       /* ... its cut pixels ...                   */
    void *tile_px;
    cfa_result *tile_results;   /* ... and their maps                       */
    int n_tiles;
} roi_inspect;

roi_cache *roi_cache_new(void);
void roi_cache_free(roi_cache *c);

/* Reads the model's figures (tile, border, mask). 0, or -1 with err set when the
 * model's mask cannot be read (its file is part of the model). */
int roi_inspect_begin(roi_cache *c, store_t *st, const char *product, int64_t version,
                      roi_inspect *ri /* OUT */, char *err, size_t errlen);
/* With a tile: cuts the decoded image into tiles and points pr at them.
 * 0, or -1 (too many tiles, no memory) with err set. */
int roi_inspect_tiles(roi_inspect *ri, const img_rgbf *im, pool_req *pr, char *err,
                      size_t errlen);
/* After scoring: stitches the tiles' maps into r (image geometry, the
 * model map made the same so that renders see what was decided) and applies
 * the mask (uninspected pixels NaN, score their maximum over the rest).
 * 0, or -1 out of memory. */
int roi_inspect_finish(roi_inspect *ri, const img_rgbf *im, cfa_result *r /* in/out */);
void roi_inspect_clear(roi_cache *c, roi_inspect *ri);

#endif
