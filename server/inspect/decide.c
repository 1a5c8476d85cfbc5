/* decide.c - the decision and the regions of a scored image, and the
 * regions' JSON (inspect.h).
 * Apart from inspect.c so that the CLI, which links only this, prints what
 * the daemon answers without pulling in the pool, the store or the render
 * thread. */
#include "inspect.h"

#include <stdlib.h>

#include <float.h>
#include <math.h>

const char *inspect_decide(float score, double threshold)
{
    /* compared in double, as the threshold is stored: a score equal to the
     * threshold is NG, a NaN score compares false and is OK */
    return (double)score >= threshold ? "NG" : "OK";
}

const char *inspect_verdict(float score, double threshold, double threshold_ng)
{
    /* NG first: a model without an NG threshold of its own has
     * threshold_ng = threshold, so the verdict is the decision */
    if (!((double)score >= threshold))
        return "OK";
    return (double)score >= threshold_ng ? "NG" : "UNSURE";
}

int inspect_threshold_valid(double threshold)
{
    /* scores are float32 maxima of distances, so >= 0: a threshold at or
     * below 0 makes every part NG, and one above FLT_MAX no part (nor the
     * float the regions are found at) can reach */
    return isfinite(threshold) && threshold > 0 && threshold <= FLT_MAX;
}

int inspect_regions(const float *map, int w, int h, double threshold, heatmap_region **out,
                    int *n)
{
    return regions_find(map, w, h, (float)threshold, INSPECT_MAX_REGIONS, out, n);
}

json_t *inspect_regions_json(const heatmap_region *regs, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:i,s:i,s:i,s:i,s:I,s:f}", "x", regs[i].x, "y",
                                           regs[i].y, "width", regs[i].width, "height",
                                           regs[i].height, "area", (json_int_t)regs[i].area,
                                           "score", (double)regs[i].score));
    return a;
}

/* A JPEG decoded at a reduced DCT scale was scored at that size; the
 * answer speaks of the image as sent. The map is made again at the image's
 * own size from model_map, the way cfa_score makes it (cfa_map_to_image),
 * so the score (its maximum), the regions, the heatmap and the stored map
 * are in the image's coordinates and nothing past here knows of the
 * reduction. */
int inspect_map_to_source(cfa_result *r, int w, int h)
{
    if (r->width == w && r->height == h)
        return 0;
    float *map = malloc((size_t)w * (size_t)h * sizeof *map), max = 0;
    if (map == NULL || cfa_map_to_image(r->model_map, r->model_width, r->model_height,
                                        r->resize_width, r->resize_height, w, h, map,
                                        &max) != CFA_OK) {
        free(map);
        return -1;
    }
    free(r->map);
    r->map = map;
    r->width = w;
    r->height = h;
    r->score = max;
    return 0;
}

void inspect_area(const cfa_result *r, int border, int rect[4])
{
    cfa_model_area(r->model_width, r->model_height, r->resize_width, r->resize_height, r->width,
                   r->height, rect);
    heatmap_inset_area(rect, r->width, r->height, border);
}

float inspect_blank_outside(float *map, int w, int h, const int rect[4])
{
    return heatmap_blank_outside(map, w, h, rect);
}
