/* test_roi.c - ROI masks and tiles (server/media/roi.h, issue 13). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "image.h"
#include "roi.h"

/* Every pixel of a w x h image is in some tile, no tile runs past the image,
 * neighbours overlap by at least `overlap`. */
static void check_cover(int w, int h, int tile, int overlap)
{
    roi_tile t[ROI_MAX_TILES];
    int n = roi_tile_grid(w, h, tile, overlap, t, ROI_MAX_TILES);
    assert_true(n >= 1);
    uint8_t *hit = calloc((size_t)w * h, 1);
    for (int k = 0; k < n; k++) {
        assert_true(t[k].x >= 0 && t[k].y >= 0 && t[k].x + t[k].w <= w && t[k].y + t[k].h <= h);
        assert_int_equal(t[k].w, w < tile ? w : tile);
        assert_int_equal(t[k].h, h < tile ? h : tile);
        for (int y = t[k].y; y < t[k].y + t[k].h; y++)
            for (int x = t[k].x; x < t[k].x + t[k].w; x++)
                hit[(size_t)y * w + x] = 1;
        if (k > 0 && t[k].y == t[k - 1].y)
            assert_true(t[k - 1].x + t[k - 1].w - t[k].x >= overlap);
    }
    for (size_t i = 0; i < (size_t)w * h; i++)
        assert_int_equal(hit[i], 1);
    free(hit);
}

static void test_grid(void **state)
{
    (void)state;
    roi_tile t[ROI_MAX_TILES];
    /* 1024 wide at 256, no overlap: exactly 4 x 4 */
    assert_int_equal(roi_tile_grid(1024, 1024, 256, 0, t, ROI_MAX_TILES), 16);
    assert_int_equal(t[3].x, 768);
    /* 500 x 1250 at 256 with 32 overlap: 3 x 6 tiles spread evenly */
    int n = roi_tile_grid(500, 1250, 256, 32, t, ROI_MAX_TILES);
    assert_int_equal(n, 3 * 6);
    assert_int_equal(t[1].x, 122);
    assert_int_equal(t[2].x, 500 - 256);
    assert_int_equal(t[n - 1].y, 1250 - 256);
    check_cover(500, 1250, 256, 32);
    check_cover(777, 333, 100, 17);
    check_cover(60, 40, 128, 0); /* smaller than a tile: one tile, the image */
    /* refused: a tile under 8, an overlap over half, too many tiles */
    assert_int_equal(roi_tile_grid(100, 100, 4, 0, t, ROI_MAX_TILES), -1);
    assert_int_equal(roi_tile_grid(100, 100, 32, 17, t, ROI_MAX_TILES), -1);
    assert_int_equal(roi_tile_grid(16384, 16384, 8, 0, t, ROI_MAX_TILES), -1);
    assert_int_equal(roi_tile_grid(100, 100, 32, 0, t, 3), -1);
}

static void test_cut_stitch(void **state)
{
    (void)state;
    enum { W = 10, H = 6 };
    uint8_t img[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        img[i] = (uint8_t)i;
    roi_tile t = {3, 2, 4, 3};
    uint8_t cut[4 * 3 * 3];
    roi_tile_cut(img, NULL, W, &t, cut, NULL);
    assert_int_equal(cut[0], img[(2 * W + 3) * 3]);
    assert_int_equal(cut[4 * 3 * 3 - 1], img[(4 * W + 6) * 3 + 2]);
    /* overlaps keep the maximum */
    float map[W * H];
    for (int i = 0; i < W * H; i++)
        map[i] = -INFINITY;
    float a[12], b[12];
    for (int i = 0; i < 12; i++) {
        a[i] = 1.0f;
        b[i] = (float)i;
    }
    roi_tile ta = {0, 0, 4, 3}, tb = {2, 0, 4, 3};
    roi_tile_stitch(map, W, &ta, a);
    roi_tile_stitch(map, W, &tb, b);
    assert_true(map[0] == 1.0f);       /* a only */
    assert_true(map[2] == 1.0f);       /* a 1, b 0 */
    assert_true(map[3] == 1.0f);       /* a 1, b 1 */
    assert_true(map[2 * W + 3] == 9.0f); /* a 1, b 9 */
    assert_true(map[5] == 3.0f);       /* b only */
    assert_true(isinf(map[9]));        /* neither */
}

static void test_mask_apply(void **state)
{
    (void)state;
    /* a 2 x 2 mask, top-left inspected, scaled to 4 x 4 */
    uint8_t px[4] = {1, 0, 0, 0};
    roi_mask m = {2, 2, px, 1};
    float map[16];
    for (int i = 0; i < 16; i++)
        map[i] = (float)i;
    float s = roi_mask_apply(&m, map, 4, 4);
    assert_true(s == 5.0f); /* the largest of 0, 1, 4, 5 */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            assert_true(isnan(map[y * 4 + x]) == !(x < 2 && y < 2));
    /* no mask: the maximum, NaN skipped */
    float m2[3] = {NAN, 2.0f, 1.0f};
    assert_true(roi_mask_apply(NULL, m2, 3, 1) == 2.0f);
}

static void test_mask_decode(void **state)
{
    (void)state;
    roi_mask m;
    img_status is;
    img_limits lim = img_default_limits();
    lim.min_side = 1;
    const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0};
    assert_int_equal(roi_mask_decode(jpeg, sizeof jpeg, &lim, &m, &is), ROI_ERR_NOT_PNG);
    assert_int_equal(roi_mask_decode("nothing", 7, &lim, &m, &is), ROI_ERR_NOT_PNG);
    /* a gray PNG: 2 x 1, pixels 0 and 9 */
    void *png = NULL;
    size_t len = 0;
    uint8_t rgb[6] = {0, 0, 0, 9, 9, 9};
    assert_int_equal(png_encode_rgb8(rgb, 2, 1, &png, &len), IMG_OK);
    assert_int_equal(roi_mask_decode(png, len, &lim, &m, &is), ROI_OK);
    assert_int_equal(m.width, 2);
    assert_int_equal(m.px[0], 0);
    assert_int_equal(m.px[1], 1);
    assert_int_equal(m.inspected, 1);
    roi_mask_free(&m);
    free(png);
    uint8_t zero[6] = {0};
    assert_int_equal(png_encode_rgb8(zero, 2, 1, &png, &len), IMG_OK);
    assert_int_equal(roi_mask_decode(png, len, &lim, &m, &is), ROI_ERR_EMPTY);
    assert_null(m.px);
    /* truncated: the decoder's status */
    assert_int_equal(roi_mask_decode(png, len - 12, &lim, &m, &is), ROI_ERR_DECODE);
    assert_int_not_equal(is, IMG_OK);
    free(png);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_cut_stitch),
        cmocka_unit_test(test_mask_apply),
        cmocka_unit_test(test_mask_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
