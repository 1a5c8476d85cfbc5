/* test_render.c - server/render.c with a real store in a temp directory:
 * the files render_now stores can be rendered (decoded back: sizes, colours
 * and 16-bit values) and are kept after the first render_get, and missing or
 * damaged files give NOT_FOUND or IO, never a crash. Torch-free, so it also runs
 * under TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "image.h"
#include "render.h"
#include "store.h"

typedef struct fixture {
    char dir[64];
    store_t *st;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfa-render-XXXXXX");
    if (fx->dir[0] == '\0' || mkdtemp(fx->dir) == NULL || store_open(fx->dir, NULL, &fx->st) != STORE_OK) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    store_close(fx->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->dir);
    free(fx);
    return 0;
}

/* a w x h job whose model map (20 x 15, cropped from 24 x 18) is a ramp
 * 0 .. 2 (left to right), over a grey w x h PNG as the received image */
static render_job make_job(const char *id, int w, int h)
{
    render_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "%s", id);
    j.width = w;
    j.height = h;
    j.model_w = 20;
    j.model_h = 15;
    j.resize_w = 24;
    j.resize_h = 18;
    j.model_map = malloc(sizeof(float) * 20 * 15);
    for (int y = 0; y < 15; y++)
        for (int x = 0; x < 20; x++)
            j.model_map[y * 20 + x] = 2.0f * (float)x / 19.0f;
    uint8_t *grey = malloc((size_t)w * (size_t)h * 3);
    memset(grey, 128, (size_t)w * (size_t)h * 3);
    assert_int_equal(png_encode_rgb8(grey, w, h, &j.input, &j.input_len), IMG_OK);
    free(grey);
    j.vmax = 2.0f;
    j.map_max = 2.0f;
    j.area[2] = w; /* all of it inspected */
    j.area[3] = h;
    return j;
}

/* both images render at w x h with the ramp's colours and 16-bit values, and
 * are kept after the first GET */
static void check_files(store_t *st, const char *id, int w, int h)
{
    void *data = NULL;
    size_t len = 0;
    img_rgbf im;
    memset(&im, 0, sizeof im);
    img_limits lim = img_default_limits();
    assert_int_equal(render_get(st, id, "heatmap.png", &data, &len), STORE_OK);
    assert_int_equal(img_decode(data, len, &lim, &im), IMG_OK);
    assert_int_equal(im.width, w);
    assert_int_equal(im.height, h);
    /* left edge: the colour of 0 (dark), right edge: of vmax (red) */
    size_t r = ((size_t)w - 1) * 3;
    assert_true(im.rgb[r] > im.rgb[0] + 0.1f);
    assert_true(im.rgb[r] > im.rgb[r + 2] + 0.1f);
    img_rgbf_free(&im);
    free(data);
    assert_int_equal(render_get(st, id, "map.png", &data, &len), STORE_OK);
    assert_int_equal(img_decode(data, len, &lim, &im), IMG_OK);
    assert_int_equal(im.width, w);
    assert_int_equal(im.height, h);
    assert_true(im.rgb[0] < 1e-4f);                       /* 0 -> 0 */
    assert_true(fabsf(im.rgb[r] - 1.0f) < 1e-4f);          /* map_max -> 65535 */
    img_rgbf_free(&im);
    /* kept: the same bytes straight from the store */
    void *kept = NULL;
    size_t kept_len = 0;
    assert_int_equal(store_inspection_file_read(st, id, "map.png", &kept, &kept_len), STORE_OK);
    assert_int_equal(kept_len, len);
    assert_memory_equal(kept, data, len);
    free(kept);
    free(data);
    assert_int_equal(store_inspection_file_read(st, id, "heatmap.png", &kept, &kept_len), STORE_OK);
    free(kept);
}

/* render_now stores a job's files durably and frees what the job owned;
 * a job without its map or its input stores nothing. */
static void test_store_now(void **state)
{
    fixture *fx = *state;
    char ids[3][40];
    for (int i = 0; i < 3; i++) {
        store_time_id(ids[i]);
        render_job j = make_job(ids[i], 40 + i, 30);
        assert_int_equal(render_now(fx->st, &j), STORE_OK);
        assert_null(j.model_map); /* freed */
        assert_null(j.input);
        check_files(fx->st, ids[i], 40 + i, 30);
    }
    char id[40];
    store_time_id(id);
    render_job j = make_job(id, 40, 30);
    free(j.model_map);
    j.model_map = NULL;
    assert_int_equal(render_now(fx->st, &j), STORE_ERR_INVALID);
    assert_null(j.input);
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(store_inspection_file_read(fx->st, id, "input", &data, &len),
                     STORE_ERR_NOT_FOUND);
}

/* What was not inspected (left of area[0]) is drawn grey, hatched, in no
 * colour of the scale, and is 0 in map.png; the inspected part keeps its
 * colours. */
static void test_not_inspected(void **state)
{
    fixture *fx = *state;
    char id[40];
    store_time_id(id);
    render_job j = make_job(id, 40, 30);
    j.area[0] = 10;
    assert_int_equal(render_now(fx->st, &j), STORE_OK);
    void *data = NULL;
    size_t len = 0;
    img_rgbf im;
    memset(&im, 0, sizeof im);
    img_limits lim = img_default_limits();
    assert_int_equal(render_get(fx->st, id, "heatmap.png", &data, &len), STORE_OK);
    assert_int_equal(img_decode(data, len, &lim, &im), IMG_OK);
    int grey = 0, stripes = 0;
    for (int y = 0; y < 30; y++) {
        const float *px = im.rgb + ((size_t)y * 40 + 9) * 3; /* the last column not inspected */
        grey += px[0] == px[1] && px[1] == px[2];
        stripes += y > 0 && px[0] != im.rgb[((size_t)(y - 1) * 40 + 9) * 3];
    }
    assert_int_equal(grey, 30);
    assert_true(stripes >= 4); /* hatched, not flat */
    const float *in = im.rgb + (15 * 40 + 39) * 3; /* inspected, right edge: red */
    assert_true(in[0] > in[2] + 0.1f);
    img_rgbf_free(&im);
    free(data);
    assert_int_equal(render_get(fx->st, id, "map.png", &data, &len), STORE_OK);
    assert_int_equal(img_decode(data, len, &lim, &im), IMG_OK);
    assert_true(im.rgb[(15 * 40 + 9) * 3] == 0.0f);
    assert_true(im.rgb[(15 * 40 + 39) * 3] > 0.5f);
    img_rgbf_free(&im);
    free(data);
}

/* A heatmap encoded for the response is kept as it is; unknown ids, damaged
 * map data and an input that no longer decodes give errors, not crashes, and
 * the map still renders without the input. */
static void test_inline_and_damage(void **state)
{
    fixture *fx = *state;
    char id[40];
    void *data = NULL;
    size_t len = 0;
    store_time_id(id);
    render_job j = make_job(id, 30, 20);
    j.heat_png = malloc(5);
    memcpy(j.heat_png, "ABCDE", 5);
    j.heat_len = 5;
    assert_int_equal(render_now(fx->st, &j), 0);
    assert_int_equal(render_get(fx->st, id, "heatmap.png", &data, &len), STORE_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "ABCDE", 5);
    free(data);

    char other[40];
    store_time_id(other);
    assert_int_equal(render_get(fx->st, other, "map.png", &data, &len), STORE_ERR_NOT_FOUND);
    assert_null(data);
    assert_int_equal(render_get(fx->st, id, "secret", &data, &len), STORE_ERR_INVALID);

    /* input replaced by garbage: no heatmap, the map still renders */
    store_time_id(other);
    j = make_job(other, 30, 20);
    assert_int_equal(render_now(fx->st, &j), 0);
    assert_int_equal(store_inspection_file_write(fx->st, other, "input", "not an image", 12), STORE_OK);
    assert_int_equal(render_get(fx->st, other, "heatmap.png", &data, &len), STORE_ERR_IO);
    assert_null(data);
    assert_int_equal(render_get(fx->st, other, "map.png", &data, &len), STORE_OK);
    free(data);

    /* map data cut short or with a wrong header */
    static const size_t cuts[] = {0, 7, 40, 100};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        store_time_id(other);
        j = make_job(other, 30, 20);
        assert_int_equal(render_now(fx->st, &j), 0);
        void *md = NULL;
        size_t md_len = 0;
        assert_int_equal(store_inspection_file_read(fx->st, other, "mapdata", &md, &md_len), STORE_OK);
        if (k == 0)
            ((uint8_t *)md)[0] ^= 1; /* magic */
        else if (k == 3)
            ((int32_t *)md)[6] = -5; /* width, in place */
        assert_int_equal(store_inspection_file_write(fx->st, other, "mapdata", md,
                                                     k == 0 || k == 3 ? md_len : cuts[k]),
                         STORE_OK);
        free(md);
        assert_int_equal(render_get(fx->st, other, "map.png", &data, &len), STORE_ERR_IO);
        assert_int_equal(render_get(fx->st, other, "heatmap.png", &data, &len), STORE_ERR_IO);
        assert_null(data);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inline_and_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_inspected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
