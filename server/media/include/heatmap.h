/*
 * heatmap.h - rendering of anomaly maps and extraction of anomalous regions.
 *
 * Basic usage, for one inspection (map is w x h floats at image resolution):
 *
 *     uint8_t *rgb = malloc((size_t)w * h * 3);
 *     heatmap_render(map, w, h, &image, 0.0f, threshold * 1.5f, rgb);
 *     png_encode_rgb8(rgb, w, h, &png, &png_len);          (image.h)
 *
 *     uint16_t *v = malloc((size_t)w * h * 2);
 *     heatmap_map16(map, w * h, map_max, v);
 *     png_encode_gray16(v, w, h, &png16, &png16_len);
 *
 *     heatmap_region *r; int nr;
 *     regions_find(map, w, h, threshold, 32, &r, &nr);  ... free(r);
 *
 * All functions are reentrant and keep no state. The connected components
 * are computed without recursion (two passes with union-find), so a 16384
 * pixel wide map is fine; memory is 4 bytes a pixel plus the label table.
 */
#ifndef CFA_HEATMAP_H
#define CFA_HEATMAP_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Renders map (w x h, row-major) through the turbo colour map, value vmin ->
 * dark blue, vmax -> dark red (clamped; an empty range vmax <= vmin gives
 * the colour of vmin); a NaN map value means "not inspected" and is drawn
 * grey with diagonal stripes, in no colour of the scale, blended 50/50 over base when base is not NULL
 * (float or byte pixels, both give the same colours; a base of another size, such
 * as one decoded at a reduced JPEG scale, is sampled nearest-neighbour). rgb_out: w * h * 3 bytes, written by the call.
 * Returns 0, or -1 on invalid arguments (nothing written). */
int heatmap_render(const float *map, int w, int h, const img_rgbf *base, float vmin,
                   float vmax, uint8_t *rgb_out /* OUT */);

/* Quantises n scores for the 16-bit map PNG: out[i] = round(map[i] / map_max
 * * 65535) clamped to 0 .. 65535, so that v means v / 65535 * map_max.
 * map_max <= 0 (or NaN) gives all zeros; NaN scores give 0. */
void heatmap_map16(const float *map, size_t n, float map_max, uint16_t *out /* OUT */);

/* The colour of the map at t in [0, 1] (clamped), 8-bit RGB. */
void heatmap_colour(float t, uint8_t rgb[3] /* OUT */);

/* Areas of a w x h map as [x0, x1) x [y0, y1) (rect = x0, y0, x1, y1).
 * heatmap_inset_area narrows rect to leave `border` pixels on each side
 * uninspected, at most a quarter of a side (half the image stays).
 * heatmap_blank_outside marks the map outside rect as not inspected (NaN:
 * no region, drawn as such by heatmap_render) and returns the maximum
 * inside (0 when nothing is inside). */
void heatmap_inset_area(int rect[4], int w, int h, int border);
float heatmap_blank_outside(float *map, int w, int h, const int rect[4]);

typedef struct {
    int x, y, width, height; /* bounding box, image pixels */
    int64_t area;            /* pixels in the region */
    float score;             /* highest map value inside */
} heatmap_region;

/* Finds the 8-connected regions of pixels with map >= threshold, sorted by
 * score descending (ties: larger area, then top-left first), at most
 * max_regions of them (max_regions <= 0: all). On 0, *out (NULL when *n == 0)
 * is owned by the caller and released with free(). Returns -1 on invalid
 * arguments or out of memory (*out NULL, *n 0). */
int regions_find(const float *map, int w, int h, float threshold, int max_regions,
                 heatmap_region **out /* OUT */, int *n /* OUT */);

/* Labels the 8-connected components of the non-zero bytes of fg (w x h):
 * labels[i] = 0 for background, 1 .. *n_labels otherwise, numbered in raster
 * order of their first pixel. labels: w * h entries, written by the call.
 * Returns 0, or -1 on invalid arguments or out of memory. */
int regions_label(const uint8_t *fg, int w, int h, uint32_t *labels /* OUT */,
                  uint32_t *n_labels /* OUT */);

#ifdef __cplusplus
}
#endif

#endif
