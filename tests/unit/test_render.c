/* test_render.c - server/render.c with a real store in a temp directory:
 * the files of a submitted inspection are there once render_wait returns
 * (decoded back: sizes and 16-bit values), a full queue refuses, render_free
 * writes what is still queued, render_now works without a thread. Torch-free,
 * so it also runs under TSan. */
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

/* a w x h job whose map is a ramp 0 .. 2 (left to right) over a grey image */
static render_job make_job(const char *id, int w, int h)
{
    render_job j;
    memset(&j, 0, sizeof j);
    snprintf(j.id, sizeof j.id, "%s", id);
    j.width = w;
    j.height = h;
    j.map = malloc(sizeof(float) * (size_t)w * (size_t)h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            j.map[y * w + x] = 2.0f * (float)x / (float)(w - 1);
    j.base.width = w;
    j.base.height = h;
    j.base.rgb = malloc(sizeof(float) * 3 * (size_t)w * (size_t)h);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        j.base.rgb[i] = 0.5f;
    j.vmax = 2.0f;
    j.map_max = 2.0f;
    return j;
}

/* both files exist, decode at w x h, and the 16-bit map holds the ramp */
static void check_files(store_t *st, const char *id, int w, int h)
{
    void *data = NULL;
    size_t len = 0;
    img_rgbf im;
    memset(&im, 0, sizeof im);
    img_limits lim = img_default_limits();
    assert_int_equal(store_inspection_file_read(st, id, "heatmap.png", &data, &len), STORE_OK);
    assert_int_equal(img_decode(data, len, &lim, &im), IMG_OK);
    assert_int_equal(im.width, w);
    assert_int_equal(im.height, h);
    /* left edge: the colour of 0 (dark), right edge: of vmax (red) */
    size_t r = ((size_t)w - 1) * 3;
    assert_true(im.rgb[r] > im.rgb[0] + 0.1f);
    assert_true(im.rgb[r] > im.rgb[r + 2] + 0.1f);
    img_rgbf_free(&im);
    free(data);
    assert_int_equal(store_inspection_file_read(st, id, "map.png", &data, &len), STORE_OK);
    assert_int_equal(img_decode(data, len, &lim, &im), IMG_OK);
    assert_int_equal(im.width, w);
    assert_int_equal(im.height, h);
    assert_true(im.rgb[0] < 1e-4f);                       /* 0 -> 0 */
    assert_true(fabsf(im.rgb[r] - 1.0f) < 1e-4f);          /* map_max -> 65535 */
    img_rgbf_free(&im);
    free(data);
}

static void test_submit_then_wait(void **state)
{
    fixture *fx = *state;
    render_t *r = NULL;
    assert_int_equal(render_create(fx->st, 8, &r), 0);
    char ids[6][40];
    for (int i = 0; i < 6; i++) {
        store_time_id(ids[i]);
        render_job j = make_job(ids[i], 40 + i, 30);
        assert_int_equal(render_submit(r, &j), 0);
        assert_null(j.map);      /* ownership passed */
        assert_null(j.base.rgb);
    }
    /* the last one first: it is moved to the front of the queue */
    for (int i = 5; i >= 0; i--) {
        render_wait(r, ids[i]);
        check_files(fx->st, ids[i], 40 + i, 30);
    }
    render_wait(r, "no-such-id"); /* returns at once */
    assert_int_equal(render_pending(r), 0);
    render_free(r);
}

static void test_full_queue_and_drain(void **state)
{
    fixture *fx = *state;
    render_t *r = NULL;
    assert_int_equal(render_create(fx->st, 2, &r), 0);
    enum { N = 40 };
    char ids[N][40];
    int queued = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        store_time_id(ids[i]);
        render_job j = make_job(ids[i], 600, 400);
        if (render_submit(r, &j) == 0) {
            queued++;
        } else {
            refused++;
            assert_non_null(j.map); /* nothing taken: the caller renders */
            assert_int_equal(render_now(fx->st, &j), 0);
            assert_null(j.map);
        }
    }
    assert_int_equal(queued + refused, N);
    assert_true(refused > 0); /* 40 jobs of 600 x 400 cannot all fit in 2 slots */
    render_free(r);           /* renders what is still queued */
    for (int i = 0; i < N; i++)
        check_files(fx->st, ids[i], 600, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_then_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_and_drain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
