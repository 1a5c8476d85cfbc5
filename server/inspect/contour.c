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

/* The region's own pixels inside its box: the component of the box's
 * foreground whose size is the region's area. A mask of bw x bh, or NULL. */
static uint8_t *region_mask(const float *map, int w, double threshold, const heatmap_region *r)
{
    size_t nb = (size_t)r->width * (size_t)r->height;
    uint8_t *fg = malloc(nb);
    uint32_t *lab = malloc(nb * sizeof *lab), n_lab = 0;
    uint64_t *count = NULL;
    if (fg == NULL || lab == NULL)
        goto fail;
    for (int y = 0; y < r->height; y++)
        for (int x = 0; x < r->width; x++)
            fg[(size_t)y * r->width + x] =
                map[(size_t)(r->y + y) * w + (r->x + x)] >= (float)threshold;
    if (regions_label(fg, r->width, r->height, lab, &n_lab) != 0 || n_lab == 0 ||
        (count = calloc(n_lab + 1, sizeof *count)) == NULL)
        goto fail;
    for (size_t i = 0; i < nb; i++)
        count[lab[i]]++;
    uint32_t keep = 0;
    for (uint32_t l = 1; l <= n_lab && keep == 0; l++)
        if ((int64_t)count[l] == r->area)
            keep = l;
    for (size_t i = 0; i < nb; i++)
        fg[i] = keep != 0 && lab[i] == keep;
    free(lab);
    free(count);
    if (keep == 0) {
        free(fg);
        return NULL;
    }
    return fg;
fail:
    free(fg);
    free(lab);
    free(count);
    return NULL;
}

static int on(const uint8_t *m, int bw, int bh, int x, int y)
{
    return x >= 0 && y >= 0 && x < bw && y < bh && m[(size_t)y * bw + x];
}

/* Moore-neighbour tracing from the first pixel in raster order, stopped
 * when it leaves the start the way it first did (Jacob's criterion). The
 * boundary pixels into pts (2 ints each, room for cap points); the count. */
static int trace(const uint8_t *m, int bw, int bh, int *pts, int cap)
{
    int sx = 0, sy = 0;
    while (!m[(size_t)sy * bw + sx])
        if (++sx == bw)
            sx = 0, sy++;
    int x = sx, y = sy, back = 0, n = 0, first = -1; /* west of the start is off */
    for (;;) {
        int d = -1;
        for (int k = 1; k <= 8 && d < 0; k++)
            if (on(m, bw, bh, x + DX[(back + k) % 8], y + DY[(back + k) % 8]))
                d = (back + k) % 8;
        if (d < 0 || (x == sx && y == sy && d == first) || n == cap)
            break; /* a lone pixel, back at the start, or a runaway */
        if (first < 0)
            first = d;
        pts[2 * n] = x;
        pts[2 * n + 1] = y;
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
        pts[0] = sx;
        pts[1] = sy;
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
    /* at least one pass at 0.5 px: points on a straight run go */
    for (double eps = 0.5; eps == 0.5 || m > INSPECT_POLYGON_MAX; eps *= 2) {
        memset(keep, 0, (size_t)n);
        keep[0] = keep[far] = 1;
        dp(pts, 0, far, eps, keep, stack);
        pts[2 * n] = pts[0]; /* the closing point, room made by the caller */
        pts[2 * n + 1] = pts[1];
        dp(pts, far, n, eps, keep, stack); /* keep[n] is not read: i < b */
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

int contour_region(const float *map, int w, int h, double threshold, const heatmap_region *reg,
                   int **pts, int *n)
{
    *pts = NULL;
    *n = 0;
    if (map == NULL || reg->width <= 0 || reg->height <= 0 || reg->x < 0 || reg->y < 0 ||
        reg->x + reg->width > w || reg->y + reg->height > h)
        return -1;
    uint8_t *m = region_mask(map, w, threshold, reg);
    /* a boundary visits each pixel at most 4 times; +1 for the closing point */
    int cap = (int)(reg->area < (1 << 27) ? 4 * reg->area + 4 : (1 << 29));
    int *p = m != NULL ? malloc((size_t)(cap + 1) * 2 * sizeof *p) : NULL;
    int k = p != NULL ? simplify(p, trace(m, reg->width, reg->height, p, cap)) : -1;
    free(m);
    if (k < 0) {
        free(p);
        return -1;
    }
    for (int i = 0; i < k; i++) {
        p[2 * i] += reg->x;
        p[2 * i + 1] += reg->y;
    }
    *pts = p;
    *n = k;
    return 0;
}

void inspect_region_outlines(const float *map, int w, int h, double threshold,
                             const heatmap_region *regs, int n, json_t *regions)
{
    for (int i = 0; i < n && i < (int)json_array_size(regions); i++) {
        int *pts = NULL, np = 0;
        json_t *poly = json_null();
        if (contour_region(map, w, h, threshold, &regs[i], &pts, &np) == 0) {
            poly = json_array();
            for (int k = 0; k < np; k++)
                json_array_append_new(poly, json_pack("[i,i]", pts[2 * k], pts[2 * k + 1]));
        }
        free(pts);
        json_object_set_new(json_array_get(regions, i), "polygon", poly);
    }
}
