/* test_inspect.c - inspect_run (server/inspect/inspect.c) below HTTP: the
 * real pool on the fake engine (fake_engine.h, map = score
 * x the red channel), a real store in a temp directory. The decision at the
 * threshold boundary, the regions, the audit row, the files (taken from the
 * body without a copy; none with keep = 0), the inline heatmap handed on as
 * encoded, pruning on every 16th inspection that kept files, and each
 * failure's status (bad image, pool busy, stopped, scoring failed, no pool).
 * Torch-free, so it also runs under ASan and TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fake_engine.h"
#include "image.h"
#include "inspect.h"

#define W 32
#define H 24
/* the fake's score for version 1 of a product not starting with 'b' at
 * width W: version * 1000 + width; the map is that times red */
#define SCORE 1032.0
#define PRODUCT "tile-a"
#define KEY_ID "0123456789abcdef0123456789abcdef"

typedef struct fixture {
    char dir[64];
    store_t *st;
    pool_t *pool;
    inspect_t *in;
} fixture;

static int fetch(void *user, const char *product, int64_t version, void **buf, size_t *len,
                 char *err, size_t errlen)
{
    (void)user;
    (void)err;
    (void)errlen;
    *buf = fake_model_blob(product, version, len);
    return *buf != NULL ? 0 : -1;
}

/* queue_depth waiting requests, one worker taking one at a time; retention
 * as inspect_options */
static fixture *start(int queue_depth, int64_t retention)
{
    static const char *devs[] = {"cpu"};
    fixture *fx = calloc(1, sizeof *fx);
    char err[128];
    assert_non_null(fx);
    fake_reset();
    pthread_mutex_lock(&fake_mu);
    fake_map_from_red = 1;
    pthread_mutex_unlock(&fake_mu);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfa-inspect-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(store_open(fx->dir, NULL, &fx->st), STORE_OK);
    pool_options po = {.backbone_path = "fake.pt",
                       .devices = devs,
                       .n_devices = 1,
                       .workers_per_device = 1,
                       .batch = 1,
                       .queue_depth = queue_depth,
                       .model_cache = 2};
    assert_int_equal(pool_create(&po, fetch, NULL, &fx->pool, err, sizeof err), 0);
    inspect_options io = {.st = fx->st, .pool = fx->pool, .retention = retention};
    assert_int_equal(inspect_create(&io, &fx->in), 0);
    return fx;
}

static void stop(fixture *fx)
{
    inspect_free(fx->in);
    pool_free(fx->pool);
    store_close(fx->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fx->dir);
    free(fx);
}

/* A w x H PNG, black but for two red squares: A (x 2..5, y 3..6) at full
 * red (map = SCORE) and B (x 20..23, y 10..13) at red 128 (map = SCORE *
 * 128 / 255). Malloc'd, as http.c holds a body. */
static uint8_t *body_png(int w, size_t *len)
{
    uint8_t *rgb = calloc((size_t)w * H * 3, 1);
    void *png = NULL;
    assert_non_null(rgb);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < w; x++) {
            if (x >= 2 && x <= 5 && y >= 3 && y <= 6)
                rgb[((size_t)y * w + x) * 3] = 255;
            if (x >= 20 && x <= 23 && y >= 10 && y <= 13)
                rgb[((size_t)y * w + x) * 3] = 128;
        }
    assert_int_equal(png_encode_rgb8(rgb, w, H, &png, len), IMG_OK);
    free(rgb);
    return png;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inspect_req request(uint8_t **body, size_t len, double threshold, int keep)
{
    inspect_req q;
    memset(&q, 0, sizeof q);
    q.product = PRODUCT;
    q.version = 1;
    q.threshold = threshold;
    q.body = body;
    q.len = len;
    q.limits = img_default_limits();
    q.keep = keep;
    q.key_id = KEY_ID;
    q.t_request_ms = now_ms() - 100; /* arrived 100 ms ago */
    q.t_start_ms = now_ms();
    return q;
}

/* Runs one inspection of body_png(W) at threshold; the body is freed here
 * as http.c does after the response. */
static inspect_status run(fixture *fx, double threshold, int keep, inspect_result *res)
{
    size_t len;
    uint8_t *body = body_png(W, &len);
    inspect_req q = request(&body, len, threshold, keep);
    inspect_status st = inspect_run(fx->in, &q, res);
    free(body);
    return st;
}

static size_t rows_with_images(fixture *fx, size_t *total)
{
    store_inspection_filter f;
    store_inspection_t *arr = NULL;
    size_t n = 0, with = 0;
    char next[STORE_ID_LEN];
    memset(&f, 0, sizeof f);
    f.limit = 1000;
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    for (size_t i = 0; i < n; i++)
        with += arr[i].has_images != 0;
    store_inspections_free(arr, n);
    *total = n;
    return with;
}

/* NG from score >= threshold on: exactly at the score it is NG with the
 * full-red square as the one region; just above it OK with none; low
 * enough, both squares, highest score first. */
static void test_decision_and_regions(void **state)
{
    (void)state;
    fixture *fx = start(8, 0);
    inspect_result res;

    assert_int_equal(run(fx, SCORE, 0, &res), INSPECT_OK);
    assert_string_equal(res.row.decision, "NG");
    assert_true(res.row.score == SCORE && res.row.map_max == SCORE && res.row.threshold == SCORE);
    assert_int_equal(res.n_regions, 1);
    assert_int_equal(res.regions[0].x, 2);
    assert_int_equal(res.regions[0].y, 3);
    assert_int_equal(res.regions[0].width, 4);
    assert_int_equal(res.regions[0].height, 4);
    assert_int_equal(res.regions[0].area, 16);
    assert_true(res.regions[0].score == (float)SCORE);
    inspect_result_clear(&res);

    assert_int_equal(run(fx, SCORE + 0.001, 0, &res), INSPECT_OK);
    assert_string_equal(res.row.decision, "OK");
    assert_int_equal(res.n_regions, 0);
    assert_null(res.regions);
    inspect_result_clear(&res);

    assert_int_equal(run(fx, SCORE * 0.25, 0, &res), INSPECT_OK);
    assert_string_equal(res.row.decision, "NG");
    assert_int_equal(res.n_regions, 2);
    assert_int_equal(res.regions[1].x, 20);
    assert_int_equal(res.regions[1].y, 10);
    assert_true(res.regions[0].score > res.regions[1].score);
    assert_true(fabsf(res.regions[1].score - (float)(SCORE * 128 / 255)) < 0.01f);
    inspect_result_clear(&res);

    /* the same as the CLI's (decide.c) */
    assert_string_equal(inspect_decide((float)SCORE, SCORE), "NG");
    assert_string_equal(inspect_decide((float)SCORE, nextafter(SCORE, INFINITY)), "OK");
    assert_string_equal(inspect_decide(NAN, 0.0), "OK");
    stop(fx);
}

/* The thresholds a client may set: above 0 (at or below it every part is NG)
 * and no more than a float32 score can reach. */
static void test_threshold_bounds(void **state)
{
    (void)state;
    assert_true(inspect_threshold_valid(2.5));
    assert_true(inspect_threshold_valid(1e-30));
    assert_true(inspect_threshold_valid(FLT_MAX));
    assert_false(inspect_threshold_valid(0.0));
    assert_false(inspect_threshold_valid(-0.0));
    assert_false(inspect_threshold_valid(-1.0));
    assert_false(inspect_threshold_valid(nextafter((double)FLT_MAX, INFINITY)));
    assert_false(inspect_threshold_valid(1e308));
    assert_false(inspect_threshold_valid(INFINITY));
    assert_false(inspect_threshold_valid(NAN));
}

/* keep = 1: the audit row as answered, the files stored from the body
 * itself (taken: the caller's pointer is cleared) and the model map. */
static void test_audit_row_and_files(void **state)
{
    (void)state;
    fixture *fx = start(8, 0);
    size_t len;
    uint8_t *body = body_png(W, &len);
    uint8_t *sent = malloc(len);
    assert_non_null(sent);
    memcpy(sent, body, len);
    inspect_req q = request(&body, len, 500.0, 1);
    inspect_result res;
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_OK);
    assert_null(body); /* the render job has it */
    assert_int_equal(res.row.has_images, 1);
    assert_null(res.heatmap);
    const inspect_timings *t = &res.timings;
    assert_true(t->decode >= 0 && t->queue >= 0 && t->encode >= 0);
    assert_true(t->model >= 4.0);    /* the fake sleeps 5 ms per call */
    assert_true(t->total >= 100.0);  /* from the request's arrival */

    store_inspection_t got;
    memset(&got, 0, sizeof got);
    assert_int_equal(store_inspection_get(fx->st, res.row.id, &got), STORE_OK);
    assert_string_equal(got.product, PRODUCT);
    assert_int_equal(got.model_version, 1);
    assert_true(got.score == SCORE && got.threshold == 500.0 && got.map_max == SCORE);
    assert_string_equal(got.decision, "NG");
    assert_int_equal(got.has_images, 1);
    assert_string_equal(got.key_id, KEY_ID);
    /* the text the API's view of the row parses back */
    json_t *want = res.regions_json;
    char *want_text = json_dumps(want, JSON_COMPACT | JSON_REAL_PRECISION(9));
    assert_int_equal(json_array_size(want), 2);
    assert_string_equal(got.regions_json, want_text);
    free(want_text);
    /* each region with its outline: the 4 x 4 squares' corners */
    char *poly = json_dumps(json_object_get(json_array_get(want, 0), "polygon"), JSON_COMPACT);
    assert_string_equal(poly, "[[2,3],[5,3],[5,6],[2,6]]");
    free(poly);
    json_t *timings = json_loads(got.timings_json, 0, NULL);
    assert_int_equal(json_object_size(timings), 5);
    assert_true(fabs(json_real_value(json_object_get(timings, "total")) - t->total) < 1e-3);
    json_decref(timings);
    store_inspection_clear(&got);

    void *data = NULL;
    size_t dlen = 0;
    assert_int_equal(store_inspection_file_read(fx->st, res.row.id, "input", &data, &dlen),
                     STORE_OK);
    assert_int_equal(dlen, len);
    assert_memory_equal(data, sent, len);
    free(data);
    assert_int_equal(render_get(fx->st, res.row.id, "map.png", &data, &dlen), STORE_OK);
    img_rgbf im;
    assert_int_equal(img_decode(data, dlen, NULL, &im), IMG_OK);
    assert_int_equal(im.width, W);
    assert_int_equal(im.height, H);
    img_rgbf_free(&im);
    free(data);
    free(sent);
    inspect_result_clear(&res);
    stop(fx);
}

/* keep = 0: the row says no images, no file is written, the body stays the
 * caller's. */
static void test_no_store(void **state)
{
    (void)state;
    fixture *fx = start(8, 0);
    size_t len;
    uint8_t *body = body_png(W, &len);
    uint8_t *held = body;
    inspect_req q = request(&body, len, 500.0, 0);
    inspect_result res;
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_OK);
    assert_ptr_equal(body, held);
    assert_int_equal(res.row.has_images, 0);
    void *data = NULL;
    size_t dlen = 0;
    static const char *const names[] = {"input", "mapdata", "heatmap.png", "map.png"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(store_inspection_file_read(fx->st, res.row.id, names[i], &data, &dlen),
                         STORE_ERR_NOT_FOUND);
    store_inspection_t got;
    memset(&got, 0, sizeof got);
    assert_int_equal(store_inspection_get(fx->st, res.row.id, &got), STORE_OK);
    assert_int_equal(got.has_images, 0);
    store_inspection_clear(&got);
    inspect_result_clear(&res);
    free(body);
    stop(fx);
}

/* what the inline encoder was given, for the test below */
static uint8_t *seen_png;
static size_t seen_len;

static char *keep_png(const void *png, size_t len)
{
    free(seen_png);
    seen_png = malloc(len);
    if (seen_png == NULL)
        return NULL;
    memcpy(seen_png, png, len);
    seen_len = len;
    char *s = malloc(32);
    if (s != NULL)
        snprintf(s, 32, "png %zu", len);
    return s;
}

/* The heatmap encoded for the response is the one stored (not rendered
 * again): the render job took the very PNG. */
static void test_inline_heatmap(void **state)
{
    (void)state;
    fixture *fx = start(8, 0);
    size_t len;
    uint8_t *body = body_png(W, &len);
    inspect_req q = request(&body, len, 500.0, 1);
    q.inline_heatmap = keep_png;
    inspect_result res;
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_OK);
    assert_non_null(res.heatmap);
    char want[32];
    snprintf(want, sizeof want, "png %zu", seen_len);
    assert_string_equal(res.heatmap, want);
    img_rgbf im;
    assert_int_equal(img_decode(seen_png, seen_len, NULL, &im), IMG_OK);
    assert_int_equal(im.width, W);
    img_rgbf_free(&im);
    void *data = NULL;
    size_t dlen = 0;
    assert_int_equal(store_inspection_file_read(fx->st, res.row.id, "heatmap.png", &data, &dlen),
                     STORE_OK);
    assert_int_equal(dlen, seen_len);
    assert_memory_equal(data, seen_png, seen_len);
    free(data);
    free(seen_png);
    seen_png = NULL;
    inspect_result_clear(&res);
    stop(fx);
}

/* Retention 2 runs on the 16th inspection that kept files, not before,
 * and inspections without files do not count. */
static void test_prune_every_16th(void **state)
{
    (void)state;
    fixture *fx = start(8, 2);
    inspect_result res;
    size_t total;
    for (int i = 0; i < 15; i++) {
        assert_int_equal(run(fx, 500.0, 1, &res), INSPECT_OK);
        inspect_result_clear(&res);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(run(fx, 500.0, 0, &res), INSPECT_OK);
        inspect_result_clear(&res);
    }
    assert_int_equal(rows_with_images(fx, &total), 15);
    assert_int_equal(total, 18);
    assert_int_equal(run(fx, 500.0, 1, &res), INSPECT_OK);
    inspect_result_clear(&res);
    assert_int_equal(rows_with_images(fx, &total), 2);
    assert_int_equal(total, 19);
    stop(fx);
}

typedef struct runner {
    fixture *fx;
    inspect_status st;
} runner;

static void *run_thread(void *arg)
{
    runner *rn = arg;
    inspect_result res;
    rn->st = run(rn->fx, 500.0, 0, &res);
    inspect_result_clear(&res);
    return NULL;
}

/* One request being scored, one waiting (queue depth 1): a third is
 * refused as POOL_BUSY, keeps its body, writes no row; the two others are
 * answered. */
static void test_pool_busy(void **state)
{
    (void)state;
    fixture *fx = start(1, 0);
    fake_set_delay(600);
    runner a = {fx, INSPECT_NOT_READY}, b = {fx, INSPECT_NOT_READY};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, run_thread, &a);
    usleep(150 * 1000);
    pthread_create(&tb, NULL, run_thread, &b);
    usleep(150 * 1000);
    size_t len;
    uint8_t *body = body_png(W, &len);
    uint8_t *held = body;
    inspect_req q = request(&body, len, 500.0, 1);
    inspect_result res;
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_ERR_POOL);
    assert_int_equal(res.status, INSPECT_ERR_POOL);
    assert_int_equal(res.pool, POOL_BUSY);
    assert_ptr_equal(body, held);
    inspect_result_clear(&res);
    free(body);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.st, INSPECT_OK);
    assert_int_equal(b.st, INSPECT_OK);
    size_t total;
    rows_with_images(fx, &total);
    assert_int_equal(total, 2);
    stop(fx);
}

/* Each failure says which layer and why; the announcement is left to the
 * caller when the pool was never reached, taken over when it was. */
static void test_failures(void **state)
{
    (void)state;
    fixture *fx = start(8, 0);
    inspect_result res;
    uint8_t *junk = malloc(64);
    assert_non_null(junk);
    memset(junk, 'x', 64);
    inspect_req q = request(&junk, 64, 500.0, 1);
    int announced = 1;
    pool_announce(fx->pool, 1);
    q.announced = &announced;
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_ERR_DECODE);
    assert_int_equal(res.img, IMG_ERR_UNSUPPORTED);
    assert_int_equal(announced, 1); /* never reached the pool: the caller unannounces */
    assert_int_equal(pool_arriving(fx->pool), 1);
    pool_announce(fx->pool, -1);
    assert_non_null(junk);
    free(junk);
    inspect_result_clear(&res);

    /* 7 pixels wide: the fake engine fails the call with fake_fail_status */
    size_t len;
    uint8_t *body = body_png(7, &len);
    q = request(&body, len, 500.0, 1);
    q.limits.min_side = 1;
    announced = 1;
    pool_announce(fx->pool, 1);
    q.announced = &announced;
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_ERR_POOL);
    assert_int_equal(res.pool, POOL_FAILED);
    assert_int_equal(res.engine, CFA_ERR_IMAGE);
    assert_int_equal(announced, 0); /* pool_run took the announcement over */
    assert_int_equal(pool_arriving(fx->pool), 0);
    inspect_result_clear(&res);
    pthread_mutex_lock(&fake_mu);
    fake_fail_status = CFA_ERR_NOMEM;
    pthread_mutex_unlock(&fake_mu);
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_ERR_POOL);
    assert_int_equal(res.engine, CFA_ERR_NOMEM);
    assert_non_null(body); /* a failed inspection keeps nothing */
    free(body);
    inspect_result_clear(&res);

    pool_stop(fx->pool);
    assert_int_equal(run(fx, 500.0, 1, &res), INSPECT_ERR_POOL);
    assert_int_equal(res.pool, POOL_STOPPED);
    inspect_result_clear(&res);
    size_t total;
    rows_with_images(fx, &total);
    assert_int_equal(total, 0); /* no row for any of them */

    inspect_t *no_pool = NULL;
    inspect_options io = {.st = fx->st};
    assert_int_equal(inspect_create(&io, &no_pool), 0);
    body = body_png(W, &len);
    q = request(&body, len, 500.0, 1);
    assert_int_equal(inspect_run(no_pool, &q, &res), INSPECT_NOT_READY);
    inspect_result_clear(&res);
    free(body);
    inspect_free(no_pool);
    stop(fx);
}

/* Files that cannot be stored: the inspection is not answered OK, nothing of
 * it is recorded, the store says it cannot write (for /readyz) until the
 * probe finds it can; the row alone (keep = 0) still commits. */
static void test_files_not_stored(void **state)
{
    (void)state;
    fixture *fx = start(8, 0);
    char path[600], why[256];
    snprintf(path, sizeof path, "%s/inspections", fx->dir);
    assert_int_equal(rmdir(path), 0);
    FILE *f = fopen(path, "w"); /* a file where the directory was: ENOTDIR */
    assert_non_null(f);
    fclose(f);
    inspect_result res;
    size_t total = 0;
    assert_int_equal(run(fx, SCORE, 1, &res), INSPECT_ERR_STORE);
    assert_int_equal(res.store, STORE_ERR_IO);
    assert_true(strlen(res.error) > 0);
    inspect_result_clear(&res);
    assert_int_equal(rows_with_images(fx, &total), 0);
    assert_int_equal(total, 0);
    assert_int_equal(store_write_health(fx->st, why, sizeof why), STORE_ERR_IO);
    assert_true(strlen(why) > 0);
    assert_int_not_equal(store_write_probe(fx->st), STORE_OK);

    assert_int_equal(run(fx, SCORE, 0, &res), INSPECT_OK); /* the row alone */
    inspect_result_clear(&res);

    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0750), 0);
    assert_int_equal(store_write_probe(fx->st), STORE_OK);
    assert_int_equal(store_write_health(fx->st, why, sizeof why), STORE_OK);
    assert_int_equal(run(fx, SCORE, 1, &res), INSPECT_OK);
    inspect_result_clear(&res);
    assert_int_equal(rows_with_images(fx, &total), 1);
    assert_int_equal(total, 2);
    stop(fx);
}

/* Issue 13: a model whose figures name a tile and a mask. The image is
 * scored as 6 tiles of 16 (3 x 2, overlap 4) in ONE engine call, the maps
 * are stitched (the fake's score scale is then 1000 + the tile's width), and
 * the mask (x < 12 not inspected) leaves square A out: the score is square
 * B's, its region the only one, and the left of the map is NaN. */
static void test_tiles_and_mask(void **state)
{
    (void)state;
    fixture *fx = start(4, 0);
    uint8_t mask_rgb[W * H * 3];
    for (int k = 0; k < W * H; k++)
        memset(&mask_rgb[3 * k], (k % W) >= 12 ? 255 : 0, 3);
    void *mpng = NULL;
    size_t mlen = 0;
    store_mask_t m;
    assert_int_equal(png_encode_rgb8(mask_rgb, W, H, &mpng, &mlen), IMG_OK);
    assert_int_equal(store_product_create(fx->st, PRODUCT, "n", NULL, NULL, NULL), STORE_OK);
    assert_int_equal(store_mask_put(fx->st, PRODUCT, mpng, mlen, W, H, &m, NULL), STORE_OK);
    free(mpng);
    char fig[256];
    snprintf(fig, sizeof fig, "{\"tile\": 16, \"tile_overlap\": 4, \"mask_sha256\": \"%s\"}",
             m.sha256);
    store_model_new mn = {.product = PRODUCT, .blob = "x", .blob_len = 1, .threshold = 1.0,
                          .figures_json = fig, .activate = 1};
    assert_int_equal(store_model_insert(fx->st, &mn, NULL), STORE_OK);
    int calls0 = fake_score_calls;
    inspect_result res;
    size_t len;
    uint8_t *body = body_png(W, &len);
    inspect_req q = request(&body, len, 400.0, 1);
    assert_int_equal(inspect_run(fx->in, &q, &res), INSPECT_OK);
    free(body); /* NULL once the render job took it */
    pthread_mutex_lock(&fake_mu);
    assert_int_equal(fake_score_calls - calls0, 1); /* one forward for all tiles */
    assert_int_equal(fake_max_batch, 6);
    pthread_mutex_unlock(&fake_mu);
    assert_float_equal(res.row.score, 1016.0 * 128.0 / 255.0, 1e-2);
    assert_string_equal(res.row.decision, "NG");
    assert_int_equal(res.n_regions, 1);
    assert_int_equal(res.regions[0].x, 20);
    assert_int_equal(res.regions[0].y, 10);
    inspect_result_clear(&res);
    stop(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decision_and_regions),
        cmocka_unit_test(test_threshold_bounds),
        cmocka_unit_test(test_audit_row_and_files),
        cmocka_unit_test(test_no_store),
        cmocka_unit_test(test_inline_heatmap),
        cmocka_unit_test(test_prune_every_16th),
        cmocka_unit_test(test_pool_busy),
        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_files_not_stored),
        cmocka_unit_test(test_tiles_and_mask),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
