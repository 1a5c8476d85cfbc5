/* test_contour.c - region outlines (contour.h) and the KS statistic of
 * drift.h on shapes and samples whose answers are known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "contour.h"
#include "drift.h"

#define W 64
#define H 48

/* The one region of map at 0.5 (asserts there is exactly one). */
static heatmap_region one_region(const float *map)
{
    heatmap_region *r = NULL;
    int n = 0;
    assert_int_equal(regions_find(map, W, H, 0.5f, 0, &r, &n), 0);
    assert_int_equal(n, 1);
    heatmap_region out = r[0];
    free(r);
    return out;
}

/* A filled rectangle: its outline simplifies to its 4 corners. */
static void test_rectangle(void **state)
{
    (void)state;
    static float map[W * H];
    memset(map, 0, sizeof map);
    for (int y = 10; y < 30; y++)
        for (int x = 5; x < 40; x++)
            map[y * W + x] = 1;
    heatmap_region r = one_region(map);
    int *p = NULL, n = 0;
    assert_int_equal(contour_region(map, W, H, 0.5, &r, &p, &n), 0);
    assert_int_equal(n, 4);
    int want[4][2] = {{5, 10}, {39, 10}, {39, 29}, {5, 29}};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(p[2 * i], want[i][0]);
        assert_int_equal(p[2 * i + 1], want[i][1]);
    }
    free(p);
}

/* A disc: at most INSPECT_POLYGON_MAX points, all on the disc's rim, and
 * another region inside its box (not connected) is not traced. */
static void test_disc_and_neighbour(void **state)
{
    (void)state;
    static float map[W * H];
    memset(map, 0, sizeof map);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if ((x - 30) * (x - 30) + (y - 24) * (y - 24) <= 20 * 20)
                map[y * W + x] = 2;
    map[5 * W + 12] = 1; /* inside the disc's box, off the disc */
    heatmap_region *rs = NULL;
    int nr = 0;
    assert_int_equal(regions_find(map, W, H, 0.5f, 0, &rs, &nr), 0);
    assert_int_equal(nr, 2);
    int *p = NULL, n = 0;
    assert_int_equal(contour_region(map, W, H, 0.5, &rs[0], &p, &n), 0);
    assert_true(n >= 8 && n <= INSPECT_POLYGON_MAX);
    for (int i = 0; i < n; i++) {
        double d = hypot(p[2 * i] - 30, p[2 * i + 1] - 24);
        assert_true(d > 17.5 && d <= 20.0);
    }
    free(p);
    json_t *a = json_pack("[{},{}]");
    inspect_region_outlines(map, W, H, 0.5, rs, nr, a);
    assert_true(json_is_array(json_object_get(json_array_get(a, 0), "polygon")));
    assert_int_equal(json_array_size(json_object_get(json_array_get(a, 1), "polygon")), 1);
    json_decref(a);
    free(rs);
}

/* KS: identical samples give D 0 and p 1; disjoint ones D 1 and a small p;
 * a known case: {1,2,3,4} vs {3,4,5,6} has D 0.5. */
static void test_ks(void **state)
{
    (void)state;
    double a[40], b[40], p;
    for (int i = 0; i < 40; i++)
        a[i] = b[i] = i * 0.1;
    assert_true(drift_ks(a, 40, b, 40, &p) == 0.0);
    assert_true(p > 0.99);
    for (int i = 0; i < 40; i++)
        b[i] = 10 + i;
    assert_true(drift_ks(a, 40, b, 40, &p) == 1.0);
    assert_true(p < 1e-6);
    double c[4] = {4, 2, 3, 1}, d[4] = {6, 3, 5, 4};
    assert_true(fabs(drift_ks(c, 4, d, 4, &p) - 0.5) < 1e-12);
    assert_true(p > 0.3 && p < 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rectangle),
                                       cmocka_unit_test(test_disc_and_neighbour),
                                       cmocka_unit_test(test_ks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
