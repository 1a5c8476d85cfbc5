/* contour.c - region outlines: Moore-neighbour tracing and Douglas-Peucker
 * (contour.h). */
#include "contour.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The 8 neighbours clockwise (image y down), starting west. */
static const int DX[8] = {-1, -1, 0, 1, 1, 1, 0, -1};
static const int DY[8] = {0, -1, -1, -1, 0, 1, 1, 1};
#define OUTLINE_MAX (1 << 22) /* points traced at most: 32 MiB */

static int map_ok(int w, int h)
{
    return w > 0 && h > 0;
}

/* The labelled components of the map at the threshold inside one box
 * (x0, y0, bw x bh: the union of the regions' boxes, so one pass serves
 * every region), with each label's pixel count and box. */
typedef struct comps {
    int x0, y0, bw, bh;
    uint32_t *lab, n;
    int64_t *count;
    int *box; /* 4 a label: min x, min y, max x, max y (box coordinates) */
} comps;

static void comps_free(comps *c)
{
    free(c->lab);
    free(c->count);
    free(c->box);
}

static void comps_stats(comps *c)
{
    for (uint32_t l = 1; l <= c->n; l++) {
        c->box[4 * l] = c->box[4 * l + 1] = INT32_MAX;
        c->box[4 * l + 2] = c->box[4 * l + 3] = -1;
    }
    for (int y = 0; y < c->bh; y++)
        for (int x = 0; x < c->bw; x++) {
            uint32_t l = c->lab[(size_t)y * c->bw + x];
            int *b = &c->box[4 * l];
            c->count[l]++;
            b[0] = x < b[0] ? x : b[0];
            b[1] = y < b[1] ? y : b[1];
            b[2] = x > b[2] ? x : b[2];
            b[3] = y > b[3] ? y : b[3];
        }
}

static int comps_make(const float *map, int w, double threshold, const heatmap_region *regs,
                      int n, comps *c)
{
    int x1 = 0, y1 = 0;
    memset(c, 0, sizeof *c);
    c->x0 = c->y0 = INT32_MAX;
    for (int i = 0; i < n; i++) {
        c->x0 = regs[i].x < c->x0 ? regs[i].x : c->x0;
        c->y0 = regs[i].y < c->y0 ? regs[i].y : c->y0;
        x1 = regs[i].x + regs[i].width > x1 ? regs[i].x + regs[i].width : x1;
        y1 = regs[i].y + regs[i].height > y1 ? regs[i].y + regs[i].height : y1;
    }
    c->bw = x1 - c->x0;
    c->bh = y1 - c->y0;
    if (n <= 0 || c->bw <= 0 || c->bh <= 0)
        return -1;
    size_t nb = (size_t)c->bw * (size_t)c->bh;
    uint8_t *fg = malloc(nb);
    c->lab = malloc(nb * sizeof *c->lab);
    if (fg == NULL || c->lab == NULL) {
        free(fg);
        return -1;
    }
    for (int y = 0; y < c->bh; y++)
        for (int x = 0; x < c->bw; x++)
            fg[(size_t)y * c->bw + x] =
                map[(size_t)(c->y0 + y) * w + (c->x0 + x)] >= (float)threshold;
    int rc = regions_label(fg, c->bw, c->bh, c->lab, &c->n);
    free(fg);
    if (rc != 0 || (c->count = calloc(c->n + 1, sizeof *c->count)) == NULL ||
        (c->box = malloc((c->n + 1) * 4 * sizeof *c->box)) == NULL)
        return -1;
    comps_stats(c);
    return 0;
}

/* The label of the region: the component with its area and its box; 0 if
 * none. */
static uint32_t comps_find(const comps *c, const heatmap_region *r)
{
    for (uint32_t l = 1; l <= c->n; l++) {
        const int *b = &c->box[4 * l];
        if (c->count[l] == r->area && b[0] + c->x0 == r->x && b[1] + c->y0 == r->y &&
            b[2] - b[0] + 1 == r->width && b[3] - b[1] + 1 == r->height)
            return l;
    }
    return 0;
}

static int on(const comps *c, uint32_t l, int x, int y)
{
    return x >= 0 && y >= 0 && x < c->bw && y < c->bh && c->lab[(size_t)y * c->bw + x] == l;
}

/* Moore-neighbour tracing of component l from its first pixel in raster
 * order, stopped when it leaves the start the way it first did (Jacob's
 * criterion). The boundary pixels into pts (2 ints each, room for cap
 * points); the count, or -1 past cap. */
static int trace(const comps *c, uint32_t l, int *pts, int cap)
{
    const int *bb = &c->box[4 * l];
    int sx = bb[0], sy = bb[1];
    while (!on(c, l, sx, sy))
        if (++sx > bb[2])
            sx = bb[0], sy++;
    int x = sx, y = sy, back = 0, n = 0, first = -1; /* west of the start is off */
    for (;;) {
        int d = -1;
        for (int k = 1; k <= 8 && d < 0; k++)
            if (on(c, l, x + DX[(back + k) % 8], y + DY[(back + k) % 8]))
                d = (back + k) % 8;
        if (d < 0 || (x == sx && y == sy && d == first))
            break; /* a lone pixel, or back at the start */
        if (n == cap)
            return -1;
        if (first < 0)
            first = d;
        pts[2 * n] = x + c->x0;
        pts[2 * n + 1] = y + c->y0;
        n++;
        /* the last background neighbour checked, seen from the new pixel */
        int px = x + DX[(d + 7) % 8], py = y + DY[(d + 7) % 8];
        x += DX[d];
        y += DY[d];
        for (int k = 0; k < 8; k++)
            if (x + DX[k] == px && y + DY[k] == py)
                back = k;
    }
    if (n == 0) {
        pts[0] = sx + c->x0;
        pts[1] = sy + c->y0;
        n = 1;
    }
    return n;
}

static double seg_dist(const int *p, const int *a, const int *b)
{
    double vx = b[0] - a[0], vy = b[1] - a[1], wx = p[0] - a[0], wy = p[1] - a[1];
    double len = hypot(vx, vy);
    return len > 0 ? fabs(vx * wy - vy * wx) / len : hypot(wx, wy);
}

/* Douglas-Peucker on pts[lo..hi] (inclusive; both kept) with an explicit
 * stack: keep[i] marks the points that stay. */
static void dp(const int *pts, int lo, int hi, double eps, uint8_t *keep, int *stack)
{
    int top = 0;
    stack[top++] = lo;
    stack[top++] = hi;
    while (top > 0) {
        int b = stack[--top], a = stack[--top], far = -1;
        double best = eps;
        for (int i = a + 1; i < b; i++) {
            double dd = seg_dist(&pts[2 * i], &pts[2 * a], &pts[2 * b]);
            if (dd > best)
                best = dd, far = i;
        }
        if (far < 0)
            continue;
        keep[far] = 1;
        stack[top++] = a;
        stack[top++] = far;
        stack[top++] = far;
        stack[top++] = b;
    }
}

/* Simplifies the closed outline pts[0..n) in place (room for n + 1 points)
 * to at most INSPECT_POLYGON_MAX points; the new count, or -1. */
static int simplify(int *pts, int n)
{
    if (n <= 3)
        return n;
    uint8_t *keep = malloc((size_t)n);
    int *stack = malloc((size_t)(4 * n + 4) * sizeof *stack), far = 0, m = n;
    if (keep == NULL || stack == NULL) {
        free(keep);
        free(stack);
        return -1;
    }
    /* the closed curve as two open halves: start -> farthest -> start */
    for (int i = 1; i < n; i++)
        if (hypot(pts[2 * i] - pts[0], pts[2 * i + 1] - pts[1]) >
            hypot(pts[2 * far] - pts[0], pts[2 * far + 1] - pts[1]))
            far = i;
    /* the leftmost, topmost, rightmost and bottommost points always stay, so
     * the polygon spans the region's box however coarse the tolerance gets */
    int ext[4] = {0, 0, 0, 0};
    for (int i = 1; i < n; i++) {
        ext[0] = pts[2 * i] < pts[2 * ext[0]] ? i : ext[0];
        ext[1] = pts[2 * i + 1] < pts[2 * ext[1] + 1] ? i : ext[1];
        ext[2] = pts[2 * i] > pts[2 * ext[2]] ? i : ext[2];
        ext[3] = pts[2 * i + 1] > pts[2 * ext[3] + 1] ? i : ext[3];
    }
    /* at least one pass at 0.5 px: points on a straight run go */
    for (double eps = 0.5; eps == 0.5 || m > INSPECT_POLYGON_MAX; eps *= 2) {
        memset(keep, 0, (size_t)n);
        keep[0] = keep[far] = 1;
        dp(pts, 0, far, eps, keep, stack);
        pts[2 * n] = pts[0]; /* the closing point, room made by the caller */
        pts[2 * n + 1] = pts[1];
        dp(pts, far, n, eps, keep, stack); /* keep[n] is not read: i < b */
        for (int e = 0; e < 4; e++)
            keep[ext[e]] = 1;
        m = 0;
        for (int i = 0; i < n; i++)
            m += keep[i];
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (keep[i]) {
            pts[2 * k] = pts[2 * i];
            pts[2 * k + 1] = pts[2 * i + 1];
            k++;
        }
    free(keep);
    free(stack);
    return k;
}

/* The outline of region r (its label in c) into *pts / *n; 0 or -1. */
static int outline(const comps *c, const heatmap_region *r, int **pts, int *n)
{
    uint32_t l = comps_find(c, r);
    /* a boundary visits a pixel at most 4 times; past OUTLINE_MAX points the
     * region gets no polygon rather than the memory to trace it */
    int64_t cap = 4 * r->area + 4 < OUTLINE_MAX ? 4 * r->area + 4 : OUTLINE_MAX;
    int *p = l != 0 ? malloc((size_t)(cap + 1) * 2 * sizeof *p) : NULL;
    int k = p != NULL ? trace(c, l, p, (int)cap) : -1;
    k = k > 0 ? simplify(p, k) : -1;
    if (k < 0) {
        free(p);
        return -1;
    }
    *pts = p;
    *n = k;
    return 0;
}

static int regions_valid(int w, int h, const heatmap_region *regs, int n)
{
    for (int i = 0; i < n; i++)
        if (regs[i].width <= 0 || regs[i].height <= 0 || regs[i].x < 0 || regs[i].y < 0 ||
            regs[i].x + regs[i].width > w || regs[i].y + regs[i].height > h)
            return 0;
    return map_ok(w, h);
}

int contour_region(const float *map, int w, int h, double threshold, const heatmap_region *reg,
                   int **pts, int *n)
{
    comps c;
    *pts = NULL;
    *n = 0;
    if (map == NULL || !regions_valid(w, h, reg, 1) ||
        comps_make(map, w, threshold, reg, 1, &c) != 0) {
        comps_free(&c);
        return -1;
    }
    int rc = outline(&c, reg, pts, n);
    comps_free(&c);
    return rc;
}

void inspect_region_outlines(const float *map, int w, int h, double threshold,
                             const heatmap_region *regs, int n, json_t *regions)
{
    comps c;
    memset(&c, 0, sizeof c);
    int ok = n > 0 && map != NULL && regions_valid(w, h, regs, n) &&
             comps_make(map, w, threshold, regs, n, &c) == 0;
    for (int i = 0; i < n && i < (int)json_array_size(regions); i++) {
        int *pts = NULL, np = 0;
        json_t *poly = json_null();
        if (ok && outline(&c, &regs[i], &pts, &np) == 0) {
            poly = json_array();
            for (int k = 0; k < np; k++)
                json_array_append_new(poly, json_pack("[i,i]", pts[2 * k], pts[2 * k + 1]));
        }
        free(pts);
        json_object_set_new(json_array_get(regions, i), "polygon", poly);
    }
    comps_free(&c);
}
