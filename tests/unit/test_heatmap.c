/* test_heatmap.c - colour heatmaps, 16-bit maps and regions (server/heatmap.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "heatmap.h"

static void test_colour(void **state)
{
    (void)state;
    uint8_t lo[3], mid[3], hi[3], c[3];
    heatmap_colour(0.0f, lo);
    heatmap_colour(0.5f, mid);
    heatmap_colour(1.0f, hi);
    assert_true(lo[0] + lo[1] + lo[2] < 120); /* dark */
    assert_true(mid[1] > mid[0] && mid[1] > mid[2]); /* green in the middle */
    assert_true(hi[0] > hi[1] && hi[0] > hi[2]);     /* red at the top */
    heatmap_colour(-3.0f, c);
    assert_memory_equal(c, lo, 3);
    heatmap_colour(NAN, c);
    assert_memory_equal(c, lo, 3);
    heatmap_colour(7.0f, c);
    assert_memory_equal(c, hi, 3);
}

static void test_render(void **state)
{
    (void)state;
    const float map[6] = {1.0f, 3.0f, 2.0f, 10.0f, -5.0f, NAN};
    uint8_t out[18], lo[3], mid[3], hi[3];
    heatmap_colour(0.0f, lo);
    heatmap_colour(128.0f / 255.0f, mid); /* (2 - 1) / 2 * 255 = 127.5 -> 128 */
    heatmap_colour(1.0f, hi);

    assert_int_equal(heatmap_render(map, 3, 2, NULL, 1.0f, 3.0f, out), 0);
    assert_memory_equal(out + 0, lo, 3);
    assert_memory_equal(out + 3, hi, 3);
    assert_memory_equal(out + 6, mid, 3);
    assert_memory_equal(out + 9, hi, 3);  /* clamped above */
    assert_memory_equal(out + 12, lo, 3); /* clamped below */
    /* NaN: not inspected, grey (no colour of the scale), hatched */
    assert_int_equal(out[15], out[16]);
    assert_int_equal(out[16], out[17]);
    assert_int_equal(out[15], 112); /* a stripe: 96 + 32 x mid-grey */
    const float blank[16] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN,
                             NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    uint8_t hatch[48];
    assert_int_equal(heatmap_render(blank, 16, 1, NULL, 1.0f, 3.0f, hatch), 0);
    assert_int_not_equal(hatch[0], hatch[3 * 4]); /* stripes 4 pixels wide */
    assert_int_equal(hatch[0], hatch[3 * 8]);

    /* empty range: everything at the colour of vmin */
    assert_int_equal(heatmap_render(map, 3, 2, NULL, 2.0f, 2.0f, out), 0);
    for (int i = 0; i < 5; i++)
        assert_memory_equal(out + 3 * i, lo, 3);

    /* blended 50/50 over the image */
    float px[18];
    for (int i = 0; i < 18; i++)
        px[i] = i % 2 ? 1.0f : 0.0f;
    img_rgbf base = {3, 2, px, NULL, NULL, 0, 0, 0};
    assert_int_equal(heatmap_render(map, 3, 2, &base, 1.0f, 3.0f, out), 0);
    for (int k = 0; k < 3; k++) {
        int b = k % 2 ? 255 : 0; /* pixel 0: channels 0, 1, 2 -> 0, 1, 0 */
        assert_int_equal(out[k], (lo[k] + b + 1) / 2);
    }
    /* the same image as bytes gives the same colours, for every byte value */
    {
        float fpx[256 * 3];
        uint8_t bpx[256 * 3];
        float ramp[256];
        uint8_t o_f[256 * 3], o_b[256 * 3];
        for (int i = 0; i < 256 * 3; i++) {
            bpx[i] = (uint8_t)((i * 7) % 256);
            fpx[i] = (float)bpx[i] / 255.0f;
        }
        for (int i = 0; i < 256; i++)
            ramp[i] = (float)i / 255.0f;
        img_rgbf fb = {16, 16, fpx, NULL, NULL, 0, 0, 0}, bb = {16, 16, NULL, bpx, NULL, 0, 0, 0};
        assert_int_equal(heatmap_render(ramp, 16, 16, &fb, 0.0f, 1.0f, o_f), 0);
        assert_int_equal(heatmap_render(ramp, 16, 16, &bb, 0.0f, 1.0f, o_b), 0);
        assert_memory_equal(o_f, o_b, sizeof o_f);
        img_rgbf both = {16, 16, fpx, bpx, NULL, 0, 0, 0}, none = {16, 16, NULL, NULL, NULL, 0, 0, 0};
        assert_int_equal(heatmap_render(ramp, 16, 16, &both, 0.0f, 1.0f, o_b), -1);
        assert_int_equal(heatmap_render(ramp, 16, 16, &none, 0.0f, 1.0f, o_b), -1);
    }
    /* a base of another size (a JPEG decoded at a reduced scale) is sampled
     * nearest-neighbour: a 1 x 1 base lies under every map pixel */
    img_rgbf one = {1, 1, px, NULL, NULL, 0, 0, 0};
    uint8_t out1[18];
    assert_int_equal(heatmap_render(map, 3, 2, &one, 1.0f, 3.0f, out1), 0);
    assert_memory_equal(out1, out, 3);
    uint8_t bare[18];
    assert_int_equal(heatmap_render(map, 3, 2, NULL, 1.0f, 3.0f, bare), 0);
    for (int i = 0; i < 15; i++) /* the last pixel is NaN: not inspected, not blended */
        assert_int_equal(out1[i], (bare[i] + (i % 3 == 1 ? 255 : 0) + 1) / 2);
    img_rgbf wrong = {0, 3, px, NULL, NULL, 0, 0, 0};
    assert_int_equal(heatmap_render(map, 3, 2, &wrong, 1.0f, 3.0f, out), -1);
    assert_int_equal(heatmap_render(NULL, 3, 2, NULL, 1.0f, 3.0f, out), -1);
    assert_int_equal(heatmap_render(map, 0, 2, NULL, 1.0f, 3.0f, out), -1);
}

static void test_map16(void **state)
{
    (void)state;
    const float map[8] = {0.0f, 1.0f, 2.0f, 3.0f, -1.0f, NAN, 0.5f, 2.0f * 1000.0f / 65535.0f};
    uint16_t out[8];
    heatmap_map16(map, 8, 2.0f, out);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 32768); /* 32767.5 rounds up */
    assert_int_equal(out[2], 65535);
    assert_int_equal(out[3], 65535); /* clamped */
    assert_int_equal(out[4], 0);
    assert_int_equal(out[5], 0);
    assert_int_equal(out[6], 16384); /* 16383.75 */
    assert_int_equal(out[7], 1000);
    /* v / 65535 * map_max gives the score back within half a step */
    for (int i = 0; i < 3; i++)
        assert_true(fabs(out[i] / 65535.0 * 2.0 - map[i]) <= 2.0 / 131070.0 + 1e-9);
    const float halves[3] = {0.5f, 1.5f, 2.4f};
    heatmap_map16(halves, 3, 65535.0f, out); /* scale exactly 1 */
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    assert_int_equal(out[2], 2);
    heatmap_map16(map, 8, 0.0f, out);
    for (int i = 0; i < 8; i++)
        assert_int_equal(out[i], 0);
    memset(out, 0xff, sizeof out);
    heatmap_map16(map, 8, -1.0f, out);
    for (int i = 0; i < 8; i++)
        assert_int_equal(out[i], 0);
}

static void test_regions_hand(void **state)
{
    (void)state;
    /* threshold 2:
     *   . 9 . . . .      A = (1,0) (1,1) (2,2), diagonal link: box 1,0 2x3
     *   . 9 . . 5 5      B = (4,1) (5,1) (5,2): box 4,1 2x2
     *   . . 9 . . 5      C = (0,4): box 0,4 1x1
     *   . . . . . .      the 1 at (5,4) is below the threshold
     *   7 . . . . 1
     */
    const float map[5 * 6] = {
        0, 9, 0, 0, 0, 0, /**/ 0, 9, 0, 0, 5, 5, /**/ 0, 0, 9, 0, 0, 5,
        0, 0, 0, 0, 0, 0, /**/ 7, 0, 0, 0, 0, 1,
    };
    heatmap_region *r;
    int n;
    assert_int_equal(regions_find(map, 6, 5, 2.0f, 0, &r, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].x, 1);
    assert_int_equal(r[0].y, 0);
    assert_int_equal(r[0].width, 2);
    assert_int_equal(r[0].height, 3);
    assert_int_equal(r[0].area, 3);
    assert_true(r[0].score == 9.0f);
    assert_int_equal(r[1].x, 0);
    assert_int_equal(r[1].y, 4);
    assert_int_equal(r[1].width, 1);
    assert_int_equal(r[1].height, 1);
    assert_int_equal(r[1].area, 1);
    assert_true(r[1].score == 7.0f);
    assert_int_equal(r[2].x, 4);
    assert_int_equal(r[2].y, 1);
    assert_int_equal(r[2].width, 2);
    assert_int_equal(r[2].height, 2);
    assert_int_equal(r[2].area, 3);
    assert_true(r[2].score == 5.0f);
    free(r);

    /* capped */
    assert_int_equal(regions_find(map, 6, 5, 2.0f, 2, &r, &n), 0);
    assert_int_equal(n, 2);
    assert_true(r[1].score == 7.0f);
    free(r);

    /* >= threshold; nothing above gives n 0 and NULL */
    assert_int_equal(regions_find(map, 6, 5, 9.0f, 0, &r, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].area, 3);
    free(r);
    assert_int_equal(regions_find(map, 6, 5, 10.0f, 0, &r, &n), 0);
    assert_int_equal(n, 0);
    assert_null(r);
    assert_int_equal(regions_find(NULL, 6, 5, 1.0f, 0, &r, &n), -1);
}

static void test_label_shapes(void **state)
{
    (void)state;
    uint32_t lab[64], n;
    /* a U needs two provisional labels merged */
    const uint8_t u[9] = {1, 0, 1, 1, 0, 1, 1, 1, 1};
    assert_int_equal(regions_label(u, 3, 3, lab, &n), 0);
    assert_int_equal(n, 1);
    for (int i = 0; i < 9; i++)
        assert_int_equal(lab[i], u[i] ? 1u : 0u);
    /* an anti-diagonal needs the NE neighbour */
    const uint8_t d[9] = {0, 0, 1, 0, 1, 0, 1, 0, 0};
    assert_int_equal(regions_label(d, 3, 3, lab, &n), 0);
    assert_int_equal(n, 1);
    /* a comb: many provisional labels, one component, joined at the bottom */
    uint8_t comb[5 * 8];
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 8; x++)
            comb[y * 8 + x] = (y == 4) || (x % 2 == 0);
    assert_int_equal(regions_label(comb, 8, 5, lab, &n), 0);
    assert_int_equal(n, 1);
    /* raster order of first pixels */
    const uint8_t two[8] = {0, 0, 0, 1, 1, 0, 0, 0};
    assert_int_equal(regions_label(two, 4, 2, lab, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(lab[3], 1);
    assert_int_equal(lab[4], 2);
}

/* Reference labelling: flood fill with an explicit stack. */
static uint32_t flood_reference(const uint8_t *fg, int w, int h, uint32_t *lab)
{
    int *stack = malloc(sizeof(int) * (size_t)w * h * 9);
    uint32_t n = 0;
    memset(lab, 0, sizeof *lab * (size_t)w * h);
    for (int s = 0; s < w * h; s++) {
        if (!fg[s] || lab[s])
            continue;
        n++;
        int top = 0;
        stack[top++] = s;
        lab[s] = n;
        while (top > 0) {
            int p = stack[--top], px = p % w, py = p / w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int qx = px + dx, qy = py + dy;
                    if (qx < 0 || qy < 0 || qx >= w || qy >= h)
                        continue;
                    int q = qy * w + qx;
                    if (fg[q] && !lab[q]) {
                        lab[q] = n;
                        stack[top++] = q;
                    }
                }
        }
    }
    free(stack);
    return n;
}

static void test_label_random(void **state)
{
    (void)state;
    enum { W = 61, H = 37 };
    uint8_t fg[W * H];
    uint32_t a[W * H], b[W * H], na, nb;
    uint32_t seed = 7;
    for (int round = 0; round < 200; round++) {
        int density = 20 + round % 50;
        for (int i = 0; i < W * H; i++) {
            seed = seed * 1664525u + 1013904223u;
            fg[i] = (int)((seed >> 16) % 100) < density;
            if (round % 2 && (i / W * 7 + round) % 3 == 0)
                fg[i] = 0; /* empty rows: the skipped-row path */
        }
        assert_int_equal(regions_label(fg, W, H, a, &na), 0);
        nb = flood_reference(fg, W, H, b);
        assert_int_equal(na, nb);
        /* both number components by their first pixel: labels must agree */
        assert_memory_equal(a, b, sizeof a);
        /* regions_find on the same foreground as a map: one region per
         * component, together covering every foreground pixel */
        float map[W * H];
        int n_fg = 0;
        for (int i = 0; i < W * H; i++) {
            map[i] = fg[i] ? 1.0f : 0.0f;
            n_fg += fg[i];
        }
        heatmap_region *r = NULL;
        int n = 0;
        assert_int_equal(regions_find(map, W, H, 0.5f, 0, &r, &n), 0);
        assert_int_equal(n, (int)nb);
        long area = 0;
        for (int k = 0; k < n; k++)
            area += r[k].area;
        assert_int_equal(area, n_fg);
        free(r);
    }
}

static void test_regions_wide(void **state)
{
    (void)state;
    /* 16384 wide, one long snake and a single pixel: no recursion anywhere */
    enum { W = 16384, H = 4 };
    float *map = calloc((size_t)W * H, sizeof *map);
    assert_non_null(map);
    for (int x = 0; x < W; x++)
        map[(size_t)(x % 2 ? 1 : 0) * W + x] = 1.0f + (float)x / W; /* zig-zag rows 0/1 */
    map[3 * W + 5] = 0.5f;
    heatmap_region *r;
    int n;
    assert_int_equal(regions_find(map, W, H, 0.25f, 10, &r, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].area, W);
    assert_int_equal(r[0].width, W);
    assert_int_equal(r[0].height, 2);
    assert_true(r[0].score == map[W + W - 1]);
    assert_int_equal(r[1].area, 1);
    free(r);
    free(map);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_colour),       cmocka_unit_test(test_render),
        cmocka_unit_test(test_map16),        cmocka_unit_test(test_regions_hand),
        cmocka_unit_test(test_label_shapes), cmocka_unit_test(test_label_random),
        cmocka_unit_test(test_regions_wide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
