/*
 * heatmap.c - colour heatmaps, 16-bit maps and connected regions.
 */
#include "heatmap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Colour map */

/* Turbo (Mikhailov, Google 2019), through its published degree-5 polynomial
 * fit: perceptually smoother than jet and still reads hot = red. */
static const double turbo_coef[3][6] = {
    {0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943},
    {0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604},
    {0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973},
};

void heatmap_colour(float t, uint8_t rgb[3])
{
    double x = t;
    if (!(x > 0.0))
        x = 0.0;
    if (x > 1.0)
        x = 1.0;
    for (int c = 0; c < 3; c++) {
        const double *k = turbo_coef[c];
        double v = k[0] + x * (k[1] + x * (k[2] + x * (k[3] + x * (k[4] + x * k[5]))));
        if (v < 0.0)
            v = 0.0;
        if (v > 1.0)
            v = 1.0;
        rgb[c] = (uint8_t)lrint(v * 255.0);
    }
}

/* The base pixel under map pixel i, nearest neighbour: a base decoded at a
 * reduced scale (img_limits.fit_w) lies under a map of the image's own size. */
static size_t base_pixel(const img_rgbf *base, size_t i, int w, int h)
{
    if (base->width == w && base->height == h)
        return i;
    size_t x = i % (size_t)w, y = i / (size_t)w;
    size_t bx = x * (size_t)base->width / (size_t)w, by = y * (size_t)base->height / (size_t)h;
    return by * (size_t)base->width + bx;
}

/* A pixel that was not inspected (NaN in the map): grey, hatched with
 * diagonal stripes 4 pixels wide, the part's own brightness faintly under
 * it, so that no colour of the scale can be read into it. */
static void not_inspected(const img_rgbf *base, size_t i, int w, int h, uint8_t *o)
{
    size_t x = i % (size_t)w, y = i / (size_t)w;
    float g = 0.5f;
    if (base != NULL) {
        size_t j = base_pixel(base, i, w, h);
        float sum = 0;
        for (int k = 0; k < 3; k++)
            sum += base->rgb != NULL ? base->rgb[3 * j + k] : (float)base->rgb8[3 * j + k] / 255.0f;
        g = sum / 3.0f;
        g = g > 0.0f ? (g < 1.0f ? g : 1.0f) : 0.0f;
    }
    int stripe = ((x + y) / 4) % 2 == 0;
    o[0] = o[1] = o[2] = (uint8_t)((stripe ? 96.0f : 144.0f) + 32.0f * g + 0.5f);
}

int heatmap_render(const float *map, int w, int h, const img_rgbf *base, float vmin,
                   float vmax, uint8_t *rgb_out)
{
    uint8_t table[256][3];

    if (map == NULL || rgb_out == NULL || w <= 0 || h <= 0)
        return -1;
    if (base != NULL && ((base->rgb == NULL) == (base->rgb8 == NULL) || base->width <= 0 ||
                         base->height <= 0))
        return -1;
    for (int i = 0; i < 256; i++)
        heatmap_colour((float)i / 255.0f, table[i]);

    /* A NaN or empty range paints everything with the colour of vmin. */
    double lo = vmin, range = (double)vmax - (double)vmin;
    double scale = range > 0.0 ? 255.0 / range : 0.0;
    size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++) {
        if (isnan(map[i])) {
            not_inspected(base, i, w, h, rgb_out + 3 * i);
            continue;
        }
        double t = ((double)map[i] - lo) * scale;
        int idx = 0;
        if (t >= 255.0)
            idx = 255;
        else if (t > 0.0)
            idx = (int)(t + 0.5);
        const uint8_t *c = table[idx];
        uint8_t *o = rgb_out + 3 * i;
        if (base == NULL) {
            o[0] = c[0];
            o[1] = c[1];
            o[2] = c[2];
            continue;
        }
        size_t j = base_pixel(base, i, w, h);
        for (int k = 0; k < 3; k++) {
            /* bytes as the floats img_decode() would give: v / 255.0f */
            float b = base->rgb != NULL ? base->rgb[3 * j + k] : (float)base->rgb8[3 * j + k] / 255.0f;
            if (!(b > 0.0f))
                b = 0.0f;
            if (b > 1.0f)
                b = 1.0f;
            o[k] = (uint8_t)(0.5f * (float)c[k] + 0.5f * b * 255.0f + 0.5f);
        }
    }
    return 0;
}

void heatmap_map16(const float *map, size_t n, float map_max, uint16_t *out)
{
    if (map == NULL || out == NULL)
        return;
    if (!(map_max > 0.0f)) {
        memset(out, 0, n * sizeof *out);
        return;
    }
    double k = 65535.0 / (double)map_max;
    for (size_t i = 0; i < n; i++) {
        double v = (double)map[i] * k;
        if (!(v > 0.0))
            out[i] = 0;
        else if (v >= 65535.0)
            out[i] = 65535;
        else
            out[i] = (uint16_t)(v + 0.5); /* round(), halves up */
    }
}

/* ------------------------------------------------------------------------ */
/* Connected components: two raster passes with union-find over provisional
 * labels, no recursion and no queue. */

typedef struct {
    uint32_t *parent;
    size_t len, cap;
} uf_table;

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

/* Keeps the smaller label as root: it belongs to the first pixel in raster
 * order, which gives the final numbering its order. */
static uint32_t uf_union(uint32_t *parent, uint32_t a, uint32_t b)
{
    a = uf_find(parent, a);
    b = uf_find(parent, b);
    if (a < b) {
        parent[b] = a;
        return a;
    }
    parent[a] = b;
    return b;
}

static int uf_new(uf_table *t, uint32_t *out)
{
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        if (cap > UINT32_MAX)
            return -1;
        uint32_t *p = realloc(t->parent, cap * sizeof *p);
        if (p == NULL)
            return -1;
        t->parent = p;
        t->cap = cap;
    }
    t->parent[t->len] = (uint32_t)t->len;
    *out = (uint32_t)t->len;
    t->len++;
    return 0;
}

/* 1 when some map value is >= thr (NaN is not). Blocks of a fixed length
 * without an early exit inside, so the compiler vectorises the comparison. */
static int any_at_or_above(const float *map, size_t n, float thr)
{
    enum { BLOCK = 1024 };
    size_t i = 0;
    for (; i + BLOCK <= n; i += BLOCK) {
        int hit = 0;
        for (size_t j = 0; j < BLOCK; j++)
            hit |= map[i + j] >= thr;
        if (hit)
            return 1;
    }
    for (; i < n; i++)
        if (map[i] >= thr)
            return 1;
    return 0;
}

static int any_nonzero(const uint8_t *fg, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fg[i])
            return 1;
    return 0;
}

/* Foreground is fg[i] != 0 when fg is given, map[i] >= thr otherwise.
 * row_on (h bytes) gets 1 for rows with foreground; returns how many there
 * are. Rows without any are labelled with one memset and skipped by every
 * later pass (a defect covers a few rows of a large image), and an image
 * without any needs no labelling at all (the common OK image). */
static int mark_rows(const uint8_t *fg, const float *map, float thr, int w, int h,
                     uint8_t *row_on)
{
    int n = 0;
    for (int y = 0; y < h; y++) {
        size_t row = (size_t)y * (size_t)w;
        row_on[y] = fg != NULL ? (uint8_t)any_nonzero(fg + row, (size_t)w)
                               : (uint8_t)any_at_or_above(map + row, (size_t)w, thr);
        n += row_on[y];
    }
    return n;
}

/* Labels the foreground (as for mark_rows) of the rows row_on marks. */
static int label_impl(const uint8_t *fg, const float *map, float thr, int w, int h,
                      uint32_t *labels, uint32_t *n_labels, const uint8_t *row_on)
{
    uf_table t = {NULL, 0, 0};
    uint32_t zero;

    if (uf_new(&t, &zero) != 0) /* label 0 is the background */
        return -1;
    for (int y = 0; y < h; y++) {
        size_t row = (size_t)y * (size_t)w;
        if (!row_on[y]) {
            memset(labels + row, 0, (size_t)w * sizeof *labels);
            continue;
        }
        for (int x = 0; x < w; x++) {
            size_t i = row + (size_t)x;
            int on = fg != NULL ? fg[i] != 0 : map[i] >= thr;
            if (!on) {
                labels[i] = 0;
                continue;
            }
            /* Already visited neighbours: W, NW, N, NE. */
            uint32_t nb[4];
            int k = 0;
            if (x > 0 && labels[i - 1])
                nb[k++] = labels[i - 1];
            if (y > 0) {
                size_t up = i - (size_t)w;
                if (x > 0 && labels[up - 1])
                    nb[k++] = labels[up - 1];
                if (labels[up])
                    nb[k++] = labels[up];
                if (x + 1 < w && labels[up + 1])
                    nb[k++] = labels[up + 1];
            }
            uint32_t l;
            if (k == 0) {
                if (uf_new(&t, &l) != 0) {
                    free(t.parent);
                    return -1;
                }
            } else {
                l = nb[0];
                for (int j = 1; j < k; j++)
                    if (nb[j] != l)
                        l = uf_union(t.parent, l, nb[j]);
            }
            labels[i] = l;
        }
    }
    /* A parent is always smaller than its child, so one ascending pass
     * points every label at its root; a second one gives the roots
     * consecutive final numbers (raster order of their first pixel) and the
     * rest the number of their root, already final. */
    for (size_t l = 1; l < t.len; l++)
        t.parent[l] = t.parent[t.parent[l]];
    uint32_t next = 0;
    for (size_t l = 1; l < t.len; l++) {
        uint32_t r = t.parent[l];
        t.parent[l] = r == l ? ++next : t.parent[r];
    }
    for (int y = 0; y < h; y++) {
        if (!row_on[y])
            continue;
        uint32_t *lr = labels + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++)
            if (lr[x])
                lr[x] = t.parent[lr[x]];
    }
    free(t.parent);
    *n_labels = next;
    return 0;
}

int regions_label(const uint8_t *fg, int w, int h, uint32_t *labels, uint32_t *n_labels)
{
    if (fg == NULL || labels == NULL || n_labels == NULL || w <= 0 || h <= 0)
        return -1;
    *n_labels = 0;
    uint8_t *row_on = malloc((size_t)h);
    if (row_on == NULL)
        return -1;
    mark_rows(fg, NULL, 0.0f, w, h, row_on);
    int r = label_impl(fg, NULL, 0.0f, w, h, labels, n_labels, row_on);
    free(row_on);
    return r;
}

static int region_cmp(const void *pa, const void *pb)
{
    const heatmap_region *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->area != b->area)
        return a->area > b->area ? -1 : 1;
    if (a->y != b->y)
        return a->y < b->y ? -1 : 1;
    return (a->x > b->x) - (a->x < b->x);
}

int regions_find(const float *map, int w, int h, float threshold, int max_regions,
                 heatmap_region **out, int *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (map == NULL || out == NULL || n == NULL || w <= 0 || h <= 0)
        return -1;

    size_t npx = (size_t)w * (size_t)h;
    uint8_t *row_on = malloc((size_t)h);
    if (row_on == NULL)
        return -1;
    if (mark_rows(NULL, map, threshold, w, h, row_on) == 0) {
        free(row_on);
        return 0; /* the common OK image: no labelling pass */
    }
    uint32_t *labels = malloc(npx * sizeof *labels);
    uint32_t nl = 0;
    if (labels == NULL || label_impl(NULL, map, threshold, w, h, labels, &nl, row_on) != 0) {
        free(labels);
        free(row_on);
        return -1;
    }
    if (nl == 0) {
        free(labels);
        free(row_on);
        return 0;
    }
    /* x1, y1 hold the far corner until the end. */
    heatmap_region *r = malloc((size_t)nl * sizeof *r);
    if (r == NULL) {
        free(labels);
        free(row_on);
        return -1;
    }
    for (uint32_t l = 0; l < nl; l++) {
        r[l].x = w;
        r[l].y = h;
        r[l].width = -1;
        r[l].height = -1;
        r[l].area = 0;
        r[l].score = -INFINITY;
    }
    for (int y = 0; y < h; y++) {
        if (!row_on[y])
            continue;
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            if (labels[i] == 0)
                continue;
            heatmap_region *g = &r[labels[i] - 1];
            if (x < g->x)
                g->x = x;
            if (y < g->y)
                g->y = y;
            if (x > g->width)
                g->width = x;
            if (y > g->height)
                g->height = y;
            g->area++;
            if (map[i] > g->score)
                g->score = map[i];
        }
    }
    free(labels);
    free(row_on);
    for (uint32_t l = 0; l < nl; l++) {
        r[l].width = r[l].width - r[l].x + 1;
        r[l].height = r[l].height - r[l].y + 1;
    }
    qsort(r, nl, sizeof *r, region_cmp);
    size_t keep = nl;
    if (max_regions > 0 && (size_t)max_regions < keep)
        keep = (size_t)max_regions;
    if (keep > INT32_MAX)
        keep = INT32_MAX;
    if (keep < nl) {
        heatmap_region *shrunk = realloc(r, keep * sizeof *r);
        if (shrunk != NULL)
            r = shrunk;
    }
    *out = r;
    *n = (int)keep;
    return 0;
}

void heatmap_inset_area(int rect[4], int w, int h, int border)
{
    /* a border never takes more than a quarter of a side: at least half the
     * image stays inspected, whatever a product's setting says */
    int bx = border < w / 4 ? border : w / 4;
    int by = border < h / 4 ? border : h / 4;
    rect[0] = rect[0] > bx ? rect[0] : bx;
    rect[1] = rect[1] > by ? rect[1] : by;
    rect[2] = rect[2] < w - bx ? rect[2] : w - bx;
    rect[3] = rect[3] < h - by ? rect[3] : h - by;
}

float heatmap_blank_outside(float *map, int w, int h, const int rect[4])
{
    float max = 0;
    for (int y = 0; y < h; y++) {
        float *row = map + (size_t)y * (size_t)w;
        int inside_y = y >= rect[1] && y < rect[3];
        for (int x = 0; x < w; x++) {
            if (inside_y && x >= rect[0] && x < rect[2])
                max = row[x] > max ? row[x] : max;
            else
                row[x] = NAN;
        }
    }
    return max;
}
