/* tile.c - tiles of a large image and the stitching of their maps (roi.h). */
#include "roi.h"

#include <string.h>

/* Tile origins along one side of length n: as few tiles as keep neighbours
 * overlapping by at least `overlap`, spread evenly from 0 to n - tile (an
 * even spread, not a last tile moved back onto its neighbour, so no pixels
 * are scored three times). Returns their number, or -1 past max. */
static int tile_starts(int n, int tile, int overlap, int *starts, int max)
{
    if (n <= tile) {
        starts[0] = 0;
        return 1;
    }
    int stride = tile - overlap;
    int64_t k = ((int64_t)n - tile + stride - 1) / stride + 1;
    if (k > max)
        return -1;
    for (int i = 0; i < (int)k; i++)
        starts[i] = (int)(((int64_t)i * (n - tile) + (k - 1) / 2) / (k - 1));
    return (int)k;
}

int roi_tile_grid(int w, int h, int tile, int overlap, roi_tile *out, int max)
{
    /* a tile must keep most of itself new: an overlap of half a tile or
     * more would score most pixels twice for nothing */
    if (w < 1 || h < 1 || tile < 8 || overlap < 0 || overlap * 2 > tile || out == NULL ||
        max < 1)
        return -1;
    int xs[ROI_MAX_TILES], ys[ROI_MAX_TILES];
    int nx = tile_starts(w, tile, overlap, xs, ROI_MAX_TILES);
    int ny = tile_starts(h, tile, overlap, ys, ROI_MAX_TILES);
    if (nx < 0 || ny < 0 || (int64_t)nx * ny > max)
        return -1;
    int n = 0;
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++)
            out[n++] = (roi_tile){xs[i], ys[j], w < tile ? w : tile, h < tile ? h : tile};
    return n;
}

void roi_tile_cut(const uint8_t *rgb8, const float *rgb, int w, const roi_tile *t,
                  uint8_t *dst8, float *dstf)
{
    size_t row = (size_t)t->w * 3;
    for (int y = 0; y < t->h; y++) {
        size_t src = ((size_t)(t->y + y) * (size_t)w + (size_t)t->x) * 3;
        if (rgb8 != NULL)
            memcpy(dst8 + (size_t)y * row, rgb8 + src, row);
        else
            memcpy(dstf + (size_t)y * row, rgb + src, row * sizeof *dstf);
    }
}

void roi_tile_stitch(float *map, int w, const roi_tile *t, const float *tile_map)
{
    for (int y = 0; y < t->h; y++) {
        float *dst = map + (size_t)(t->y + y) * (size_t)w + (size_t)t->x;
        const float *src = tile_map + (size_t)y * (size_t)t->w;
        for (int x = 0; x < t->w; x++)
            if (src[x] > dst[x])
                dst[x] = src[x];
    }
}
