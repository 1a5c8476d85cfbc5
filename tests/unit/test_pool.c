/* test_pool.c - server/inspect/pool.c against the fake engine
 * (fake_engine.h): batching, grouping by (product, version),
 * the bounded queue, the model LRU, pool_forget and shutdown. Torch-free, so
 * it also runs under TSan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "fake_engine.h"
#include "pool.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fetches; /* fetch calls, under fake_mu */

/* the "store": a model blob is its version and product name */
static int fetch(void *user, const char *product, int64_t version, void **buf, size_t *len,
                 char *err, size_t errlen)
{
    (void)user;
    if (strcmp(product, "gone") == 0) {
        snprintf(err, errlen, "no such model");
        return -1;
    }
    *buf = fake_model_blob(product, version, len);
    pthread_mutex_lock(&fake_mu);
    fetches++;
    pthread_mutex_unlock(&fake_mu);
    return 0;
}

static void reset(void)
{
    fake_reset();
    pthread_mutex_lock(&fake_mu);
    fetches = 0;
    pthread_mutex_unlock(&fake_mu);
}

static pool_t *make_wait(int n_dev, int batch, int wait_ms, int depth, int cache)
{
    static const char *devs[] = {"cpu", "cpu", "cpu"};
    pool_options o = {.backbone_path = "fake.pt",
                      .devices = devs,
                      .n_devices = n_dev,
                      .workers_per_device = 1,
                      .batch = batch,
                      .batch_wait_ms = wait_ms,
                      .queue_depth = depth,
                      .model_cache = cache};
    pool_t *p = NULL;
    char err[128];
    assert_int_equal(pool_create(&o, fetch, NULL, &p, err, sizeof err), 0);
    return p;
}

static pool_t *make(int n_dev, int batch, int depth, int cache)
{
    return make_wait(n_dev, batch, 0, depth, cache);
}

typedef struct job {
    pool_t *p;
    const char *product;
    int64_t version;
    int width;
    pool_status st;
    float score;
    int batch_n;
    int announced; /* counted by pool_announce before it runs */
    double queue_ms;
    float pixels[16 * 4 * 3];
} job;

static void *run_one(void *arg)
{
    job *j = arg;
    pool_req r;
    memset(&r, 0, sizeof r);
    r.product = j->product;
    r.version = j->version;
    r.image.width = j->width;
    r.image.height = 4;
    r.image.rgb = j->pixels;
    r.announced = j->announced;
    j->st = pool_run(j->p, &r);
    if (j->st == POOL_OK) {
        j->score = r.result.score;
        j->batch_n = r.batch_n;
        j->queue_ms = r.queue_ms;
        if (r.result.map[r.result.width * r.result.height - 1] != r.result.score)
            j->score = -1;
        cfa_result_clear(&r.result);
    }
    return NULL;
}

static void set_job(job *j, pool_t *p, const char *product, int64_t version, int width)
{
    memset(j, 0, sizeof *j);
    j->p = p;
    j->product = product;
    j->version = version;
    j->width = width;
}

/* the fake engine's score for j (fake_engine.h) */
static float want_score(const job *j)
{
    return (float)(j->version * 1000 + j->width + (j->product[0] == 'b' ? 100000 : 0));
}

/* as the daemon does when n requests start decoding */
static void announce_all(job *jobs, int n)
{
    pool_announce(jobs[0].p, n);
    for (int i = 0; i < n; i++)
        jobs[i].announced = 1;
}

static void run_many(job *jobs, int n)
{
    announce_all(jobs, n);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, run_one, &jobs[i]);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
}

static void test_batches_and_groups(void **state)
{
    (void)state;
    reset();
    fake_set_delay(30);
    pool_t *p = make(1, 8, 64, 8);
    enum { N = 24 };
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].p = p;
        jobs[i].product = i % 2 ? "bottle" : "apple";
        jobs[i].version = 1 + i % 3;
        jobs[i].width = 8 + i % 8;
    }
    run_many(jobs, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].st, POOL_OK);
        float want = (float)(jobs[i].version * 1000 + jobs[i].width + (i % 2 ? 100000 : 0));
        assert_true(jobs[i].score == want);
        assert_true(jobs[i].batch_n >= 1 && jobs[i].batch_n <= 8);
    }
    assert_true(fake_max_batch > 1);          /* requests waiting together were batched */
    assert_int_equal(fake_loads, 6);          /* 2 products x 3 versions, each loaded once */
    assert_int_equal(pool_models_loaded(p), 6);
    pool_free(p);
}

static void test_queue_full(void **state)
{
    (void)state;
    reset();
    fake_set_delay(200);
    pool_t *p = make(1, 1, 2, 2);
    enum { N = 10 };
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].p = p;
        jobs[i].product = "apple";
        jobs[i].version = 1;
        jobs[i].width = 8;
    }
    run_many(jobs, N);
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        ok += jobs[i].st == POOL_OK;
        busy += jobs[i].st == POOL_BUSY;
    }
    assert_int_equal(ok + busy, N);
    assert_true(busy > 0);
    assert_true(ok >= 2); /* at least the queue depth */
    assert_int_equal(pool_queue_depth(p, 0), 0);
    pool_free(p);
}

static void test_lru_and_forget(void **state)
{
    (void)state;
    reset();
    pool_t *p = make(1, 4, 8, 2);
    job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.width = 8;
    const char *prods[] = {"a1", "a2", "a1", "a3", "a1", "a2"};
    for (int i = 0; i < 6; i++) {
        j.product = prods[i];
        j.version = 1;
        run_one(&j);
        assert_int_equal(j.st, POOL_OK);
    }
    /* a1 a2 (hit a1) a3 evicts a2 (a1 was used later), a1 hit, a2 reloaded */
    assert_int_equal(fetches, 4);
    j.product = "a1";
    run_one(&j);
    assert_int_equal(fetches, 4);
    pool_forget(p, "a1");
    run_one(&j);
    assert_int_equal(fetches, 5);
    j.product = "gone";
    run_one(&j);
    assert_int_equal(j.st, POOL_FAILED);
    pool_free(p);
}

/* pool_model_resize: the model's resize (the fake engine's 256 x 256),
 * fetched once per product@version, again after pool_forget; -1 and 0 x 0
 * for a model that cannot be fetched. Called from 4 threads at once. */
static void *resize_thread(void *arg)
{
    pool_t *p = arg;
    for (int i = 0; i < 50; i++) {
        int w = 0, h = 0;
        assert_int_equal(pool_model_resize(p, i % 2 ? "r1" : "r2", 1 + i % 3, &w, &h), 0);
        assert_int_equal(w, 256);
        assert_int_equal(h, 256);
    }
    return NULL;
}

static void test_model_resize(void **state)
{
    (void)state;
    reset();
    pool_t *p = make(1, 1, 8, 2);
    int w = -1, h = -1;
    assert_int_equal(pool_model_resize(p, "r1", 1, &w, &h), 0);
    assert_int_equal(w, 256);
    assert_int_equal(h, 256);
    assert_int_equal(fetches, 1);
    assert_int_equal(pool_model_resize(p, "r1", 1, &w, &h), 0);
    assert_int_equal(fetches, 1); /* remembered */
    pool_forget(p, "r1");
    assert_int_equal(pool_model_resize(p, "r1", 1, &w, &h), 0);
    assert_int_equal(fetches, 2); /* forgotten with the product */
    assert_int_equal(pool_model_resize(p, "gone", 1, &w, &h), -1);
    assert_int_equal(w, 0);
    assert_int_equal(h, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, resize_thread, p), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* r1@1 known; r1@2, r1@3, r2@1..3 fetched once each: a thread that
     * misses waits for the one loading (one model parsed at a time) */
    assert_int_equal(fetches, 2 + 5);
    pool_free(p);
}

static void test_two_devices_and_stop(void **state)
{
    (void)state;
    reset();
    pool_t *p = make(2, 4, 8, 2);
    assert_int_equal(pool_n_devices(p), 2);
    assert_true(pool_ready(p));
    enum { N = 12 };
    job jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) {
        jobs[i].p = p;
        jobs[i].product = "apple";
        jobs[i].version = 2;
        jobs[i].width = 9;
    }
    run_many(jobs, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(jobs[i].st, POOL_OK);
    assert_int_equal(fake_loads, 2); /* one replica of the model per device */
    pool_stop(p);
    assert_false(pool_ready(p));
    run_one(&jobs[0]);
    assert_int_equal(jobs[0].st, POOL_STOPPED);
    pool_free(p);
    pool_free(NULL);
}

/* Requests of three products arriving together go through one
 * cfa_score_multi call (one backbone forward), each scored with its own model. */
static void test_cross_product_batch(void **state)
{
    (void)state;
    reset();
    pool_t *p = make_wait(1, 8, 400, 64, 8);
    enum { N = 6 };
    static const char *prods[] = {"apple", "bottle", "cable"};
    job jobs[N];
    for (int i = 0; i < N; i++)
        set_job(&jobs[i], p, prods[i % 3], 1 + i % 2, 8 + i);
    run_many(jobs, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].st, POOL_OK);
        assert_true(jobs[i].score == want_score(&jobs[i]));
        assert_int_equal(jobs[i].batch_n, N);
    }
    assert_int_equal(fake_multi_calls, 1);
    assert_int_equal(fake_score_calls, 1);
    assert_int_equal(fake_max_products, 3);
    assert_int_equal(fake_loads, 6);
    pool_free(p);
}

/* starts the jobs gap_ms apart, then waits for all */
static void run_staggered(job *jobs, int n, int gap_ms, int announce)
{
    if (announce)
        announce_all(jobs, n);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++) {
        pthread_create(&t[i], NULL, run_one, &jobs[i]);
        sleep_ms(gap_ms);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
}

/* With a maximum wait, announced requests arriving 60 ms apart are gathered
 * into one batch; without it each is scored as soon as it arrives. */
static void test_batch_wait(void **state)
{
    (void)state;
    enum { N = 4 };
    job jobs[N];
    for (int wait = 0; wait < 2; wait++) {
        reset();
        pool_t *p = make_wait(1, 8, wait ? 1000 : 0, 64, 8);
        for (int i = 0; i < N; i++)
            set_job(&jobs[i], p, "apple", 1, 8);
        run_staggered(jobs, N, 60, 1);
        for (int i = 0; i < N; i++) {
            assert_int_equal(jobs[i].st, POOL_OK);
            if (wait)
                assert_int_equal(jobs[i].batch_n, N);
        }
        if (!wait)
            assert_int_equal(jobs[0].batch_n, 1); /* nothing else had arrived */
        assert_int_equal(fake_multi_calls, wait ? 1 : fake_score_calls);
        pool_free(p);
    }
}

/* A worker waits only for announced requests: unannounced requests 100 ms
 * apart are scored alone at once, however long the maximum wait; and a
 * worker waiting for an announced request that never comes (its image did
 * not decode: pool_announce(p, -1)) stops waiting. The bounds are half the
 * 5 s wait, far from any scheduling noise. */
static void test_wait_only_for_announced(void **state)
{
    (void)state;
    enum { N = 2 };
    job jobs[N];
    reset();
    pool_t *p = make_wait(1, 8, 5000, 64, 8);
    for (int i = 0; i < N; i++)
        set_job(&jobs[i], p, "apple", 1, 8);
    run_staggered(jobs, N, 100, 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].st, POOL_OK);
        assert_int_equal(jobs[i].batch_n, 1);
        assert_true(jobs[i].queue_ms < 2500);
    }
    assert_int_equal(fake_multi_calls, N);

    pool_announce(p, 2); /* two requests decoding; the second will fail */
    set_job(&jobs[0], p, "apple", 1, 8);
    jobs[0].announced = 1;
    pthread_t t;
    pthread_create(&t, NULL, run_one, &jobs[0]);
    sleep_ms(400);
    pool_announce(p, -1);
    pthread_join(t, NULL);
    assert_int_equal(jobs[0].st, POOL_OK);
    assert_int_equal(jobs[0].batch_n, 1);
    assert_true(jobs[0].queue_ms >= 100 && jobs[0].queue_ms < 2500); /* it did wait */
    pool_free(p);
}

/* One unusable image in a batch fails alone; the others are scored. */
static void test_bad_image_in_batch(void **state)
{
    (void)state;
    reset();
    pool_t *p = make_wait(1, 8, 400, 64, 8);
    enum { N = 4 };
    job jobs[N];
    for (int i = 0; i < N; i++)
        set_job(&jobs[i], p, i % 2 ? "bottle" : "apple", 1, i == 2 ? 7 : 8 + i);
    run_many(jobs, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].st, i == 2 ? POOL_FAILED : POOL_OK);
        if (i != 2)
            assert_true(jobs[i].score == want_score(&jobs[i]));
    }
    pool_free(p);
}

/* A batch with more products than the model cache holds: every model stays
 * loaded until the batch is scored (ASan would see a freed one), then the
 * cache shrinks back. */
static void test_batch_larger_than_cache(void **state)
{
    (void)state;
    reset();
    pool_t *p = make_wait(1, 8, 400, 64, 1);
    enum { N = 4 };
    static const char *prods[] = {"a1", "b2", "c3", "d4"};
    job jobs[N];
    for (int i = 0; i < N; i++)
        set_job(&jobs[i], p, prods[i], 1, 8);
    run_many(jobs, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].st, POOL_OK);
        assert_true(jobs[i].score == want_score(&jobs[i]));
    }
    assert_int_equal(fake_multi_calls, 1);
    assert_int_equal(pool_models_loaded(p), N);
    jobs[0].product = "e5";
    run_one(&jobs[0]);
    assert_int_equal(jobs[0].st, POOL_OK);
    assert_int_equal(pool_models_loaded(p), 1); /* back within model_cache */
    pool_free(p);
}

static void test_bad_backbone(void **state)
{
    (void)state;
    static const char *devs[] = {"cpu"};
    pool_options o = {.backbone_path = "missing",
                      .devices = devs,
                      .n_devices = 1,
                      .workers_per_device = 1,
                      .batch = 4,
                      .queue_depth = 4,
                      .model_cache = 2};
    pool_t *p = (pool_t *)1;
    char err[256] = "";
    assert_int_equal(pool_create(&o, fetch, NULL, &p, err, sizeof err), -1);
    assert_null(p);
    assert_non_null(strstr(err, "missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_and_groups),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_lru_and_forget),
        cmocka_unit_test(test_model_resize),
        cmocka_unit_test(test_two_devices_and_stop),
        cmocka_unit_test(test_cross_product_batch),
        cmocka_unit_test(test_batch_wait),
        cmocka_unit_test(test_wait_only_for_announced),
        cmocka_unit_test(test_bad_image_in_batch),
        cmocka_unit_test(test_batch_larger_than_cache),
        cmocka_unit_test(test_bad_backbone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
