/* test_budget.c - the decoded-pixel budget (server/media/budget.h): charges,
 * waits, time-outs, release, oversize, and decodes that charge it. Threaded:
 * runs under TSan too (tests/sanitize.sh tsan). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>
#include <spng.h>

#include "base_clock.h"
#include "budget.h"
#include "image.h"

static void test_take_and_give_back(void **state)
{
    (void)state;
    img_budget *b = img_budget_new(1000);
    assert_non_null(b);
    assert_int_equal(img_budget_total(b), 1000);
    assert_int_equal(img_budget_acquire(b, 600, 0), IMG_OK);
    assert_int_equal(img_budget_acquire(b, 400, 0), IMG_OK);
    assert_int_equal(img_budget_in_use(b), 1000);
    /* full: no wait means refused at once */
    assert_int_equal(img_budget_acquire(b, 1, 0), IMG_ERR_BUSY);
    assert_int_equal(img_budget_refused(b), 1);
    img_budget_release(b, 600);
    assert_int_equal(img_budget_acquire(b, 600, 0), IMG_OK);
    img_budget_release(b, 600);
    img_budget_release(b, 400);
    assert_int_equal(img_budget_in_use(b), 0);
    assert_int_equal(img_budget_peak(b), 1000);
    /* a release of more than is held cannot wrap the count */
    img_budget_release(b, 5);
    assert_int_equal(img_budget_in_use(b), 0);
    img_budget_free(b);
    /* NULL: no budget, everything passes */
    assert_int_equal(img_budget_acquire(NULL, (size_t)1 << 40, 0), IMG_OK);
    img_budget_release(NULL, 5);
    img_budget_free(NULL);
    assert_null(img_budget_new(0));
}

static void test_oversize_refused_at_once(void **state)
{
    (void)state;
    img_budget *b = img_budget_new(1000);
    double t0 = mono_ms();
    /* can never fit: TOO_LARGE without waiting out the 10 s */
    assert_int_equal(img_budget_acquire(b, 1001, 10000), IMG_ERR_TOO_LARGE);
    assert_true(mono_ms() - t0 < 5000);
    assert_int_equal(img_budget_in_use(b), 0);
    img_budget_free(b);
}

static void test_wait_times_out(void **state)
{
    (void)state;
    img_budget *b = img_budget_new(100);
    assert_int_equal(img_budget_acquire(b, 100, 0), IMG_OK);
    double t0 = mono_ms();
    assert_int_equal(img_budget_acquire(b, 10, 200), IMG_ERR_BUSY);
    /* it did wait (the bound is generous: only a lower bound is asserted) */
    assert_true(mono_ms() - t0 >= 150);
    img_budget_release(b, 100);
    img_budget_free(b);
}

typedef struct {
    img_budget *b;
    size_t bytes;
    int wait_ms;
    img_status got;
    double took_ms;
} taker;

static void *take(void *arg)
{
    taker *t = arg;
    double t0 = mono_ms();
    t->got = img_budget_acquire(t->b, t->bytes, t->wait_ms);
    t->took_ms = mono_ms() - t0;
    return NULL;
}

static void test_waiter_gets_released_bytes(void **state)
{
    (void)state;
    img_budget *b = img_budget_new(100);
    assert_int_equal(img_budget_acquire(b, 80, 0), IMG_OK);
    taker t = {b, 50, 60000, IMG_ERR_INVALID_ARG, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, take, &t), 0);
    /* the waiter cannot pass until 80 come back: they come back after
     * 200 ms, and it passes then, long before its 60 s */
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    img_budget_release(b, 80);
    pthread_join(th, NULL);
    assert_int_equal(t.got, IMG_OK);
    assert_true(t.took_ms >= 150);
    assert_int_equal(img_budget_in_use(b), 50);
    img_budget_release(b, 50);
    img_budget_free(b);
}

/* Many threads taking and giving back: never more than the total at once,
 * everything given back at the end. */
typedef struct {
    img_budget *b;
    int busy;
} churn_arg;

static void *churn(void *arg)
{
    churn_arg *c = arg;
    for (int i = 0; i < 2000; i++) {
        size_t n = 10 + (size_t)(i % 7) * 10;
        img_status s = img_budget_acquire(c->b, n, 1000);
        if (s == IMG_OK) {
            assert_true(img_budget_in_use(c->b) <= img_budget_total(c->b));
            img_budget_release(c->b, n);
        } else {
            __atomic_add_fetch(&c->busy, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

static void test_many_threads(void **state)
{
    (void)state;
    enum { N = 8 };
    img_budget *b = img_budget_new(150);
    churn_arg c = {b, 0};
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&th[i], NULL, churn, &c), 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(img_budget_in_use(b), 0);
    assert_true(img_budget_peak(b) <= 150);
    img_budget_free(b);
}

/* A w x h gray PNG of zeros, 8 or 16 bits. */
static uint8_t *gray_png(int w, int h, int depth, size_t *len)
{
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    assert_non_null(ctx);
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    struct spng_ihdr ihdr = {(uint32_t)w, (uint32_t)h, (uint8_t)depth, SPNG_COLOR_TYPE_GRAYSCALE,
                             0, 0, 0};
    spng_set_ihdr(ctx, &ihdr);
    size_t bytes = (size_t)w * h * (size_t)(depth / 8);
    uint8_t *px = calloc(bytes, 1);
    assert_non_null(px);
    assert_int_equal(spng_encode_image(ctx, px, bytes, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE), 0);
    int e = 0;
    uint8_t *out = spng_get_png_buffer(ctx, len, &e);
    assert_int_equal(e, 0);
    free(px);
    spng_ctx_free(ctx);
    return out;
}

/* What a decode charges: the 8-bit output (3 bytes a pixel) plus the
 * caller's extra bytes a pixel, held until img_rgbf_free(); over the whole
 * budget is TOO_LARGE, over what is left is BUSY; img_validate() holds a
 * row only and gives it back. */
static void test_decode_charges(void **state)
{
    (void)state;
    size_t len;
    uint8_t *png = gray_png(100, 50, 8, &len);
    img_budget *b = img_budget_new(100 * 50 * 15);
    img_limits lim = img_default_limits();
    lim.budget = b;
    lim.extra_bpp = 12;
    img_rgbf im, im2;
    assert_int_equal(img_decode_ex(png, len, &lim, IMG_DECODE_8BIT, &im), IMG_OK);
    assert_int_equal(img_budget_in_use(b), 100 * 50 * 15);
    assert_int_equal(im.charged, 100 * 50 * 15);
    /* the budget is full: a second decode waits 50 ms, then BUSY */
    lim.budget_wait_ms = 50;
    assert_int_equal(img_decode_ex(png, len, &lim, IMG_DECODE_8BIT, &im2), IMG_ERR_BUSY);
    assert_null(im2.rgb8);
    assert_int_equal(img_validate(png, len, &lim, NULL, NULL, NULL), IMG_ERR_BUSY);
    img_rgbf_free(&im);
    assert_int_equal(img_budget_in_use(b), 0);
    /* the upload check needs one row, and gives it back */
    int w = 0, h = 0;
    assert_int_equal(img_validate(png, len, &lim, NULL, &w, &h), IMG_OK);
    assert_int_equal(w, 100);
    assert_int_equal(h, 50);
    assert_int_equal(img_budget_in_use(b), 0);
    assert_int_equal(img_budget_peak(b), 100 * 50 * 15);
    /* one more byte a pixel than the whole budget: refused at once */
    lim.extra_bpp = 13;
    assert_int_equal(img_decode_ex(png, len, &lim, IMG_DECODE_8BIT, &im), IMG_ERR_TOO_LARGE);
    assert_int_equal(img_budget_in_use(b), 0);
    /* a failed decode gives its charge back */
    lim.extra_bpp = 0;
    assert_int_equal(img_decode_ex(png, len - 20, &lim, IMG_DECODE_8BIT, &im),
                     IMG_ERR_TRUNCATED);
    assert_int_equal(img_budget_in_use(b), 0);
    img_budget_free(b);
    free(png);
}

/* A 16-bit PNG decodes to floats, which the engine uses as they are: only
 * the 12 bytes a pixel of the floats are charged, not extra_bpp on top. */
static void test_float_output_not_charged_twice(void **state)
{
    (void)state;
    size_t len;
    uint8_t *png = gray_png(40, 30, 16, &len);
    img_budget *b = img_budget_new(1 << 20);
    img_limits lim = img_default_limits();
    lim.budget = b;
    lim.extra_bpp = 12;
    img_rgbf im;
    assert_int_equal(img_decode_ex(png, len, &lim, IMG_DECODE_8BIT, &im), IMG_OK);
    assert_non_null(im.rgb);
    assert_int_equal(img_budget_in_use(b), 40 * 30 * 12);
    img_rgbf_free(&im);
    assert_int_equal(img_budget_in_use(b), 0);
    img_budget_free(b);
    free(png);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_and_give_back),
        cmocka_unit_test(test_oversize_refused_at_once),
        cmocka_unit_test(test_wait_times_out),
        cmocka_unit_test(test_waiter_gets_released_bytes),
        cmocka_unit_test(test_many_threads),
        cmocka_unit_test(test_decode_charges),
        cmocka_unit_test(test_float_output_not_charged_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
