/*
 * contour.h - the outline of each anomalous region as a polygon, for the
 * inspection result (docs/API.md, "The inspection result").
 *
 * A region's polygon is its outer boundary (Moore-neighbour tracing of its
 * 8-connected pixels: the centres of its boundary pixels, in image pixels,
 * clockwise in image coordinates, the first point not repeated), simplified
 * by Douglas-Peucker with the smallest tolerance out of 0.5, 1, 2, 4, ...
 * pixels that leaves at most INSPECT_POLYGON_MAX points, so an inline
 * response stays small (64 regions x 32 points at most). Holes are not
 * drawn: the region's area counts its pixels. The map is labelled once, over
 * the union of the regions' boxes, for all of them; an outline longer than
 * 4M points (a pathological region of a huge image) is not traced.
 *
 * Thread-safety: no state; any thread.
 */
#ifndef CFA_CONTOUR_H
#define CFA_CONTOUR_H

#include <jansson.h>

#include "heatmap.h"

#define INSPECT_POLYGON_MAX 32

/* The outline of the region's component in map (w x h) at threshold, as
 * [[x, y], ...] into *pts (malloc'd, 2 ints a point; caller frees) and *n.
 * 0, or -1 (out of memory, no component matches the region, or its outline
 * is too long to trace). */
int contour_region(const float *map, int w, int h, double threshold, const heatmap_region *reg,
                   int **pts /* OUT */, int *n /* OUT */);
/* Adds "polygon" to each of the n region objects of regions (the array
 * inspect_regions_json made from regs): [[x, y], ...], or null when it
 * could not be traced. */
void inspect_region_outlines(const float *map, int w, int h, double threshold,
                             const heatmap_region *regs, int n, json_t *regions);

#endif
