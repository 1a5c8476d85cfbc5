/* test_train_steps.c - the pure steps of a training job (server/train/
 * calib.c): how many images are held out, which ones, and the threshold
 * calibrated from their scores, by the rules of jobs.h. No torch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "calib.h"

static void test_holdout_counts(void **state)
{
    (void)state;
    /* {n, holdout, held out} */
    const struct {
        int n;
        double holdout;
        int want;
    } cases[] = {
        {0, 0.1, 0},   {1, 0.1, 0},   {2, 0.1, 0},  {2, 0.5, 0},   /* none below 3 */
        {3, 0.1, 1},   {9, 0.1, 1},   {9, 0.5, 4},  {3, 0.5, 1},   /* >= 1 from 3  */
        {10, 0.1, 2},  {19, 0.1, 2},  {20, 0.1, 2}, {29, 0.1, 2},  /* >= 2 from 10 */
        {30, 0.1, 3},  {40, 0.1, 4},  {99, 0.1, 9}, {1000, 0.1, 100},
        {40, 0.2, 8},  {40, 0.5, 20}, {41, 0.5, 20},
        {40, 0.0, 0},  {3, 0.0, 0},   {1000, 0.0, 0},              /* holdout 0: none */
        {4, 0.5, 2},   {10, 0.01, 2}, {3, 0.01, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = calib_holdout_count(cases[i].n, cases[i].holdout);
        if (got != cases[i].want)
            fail_msg("n %d holdout %g: %d held out, want %d", cases[i].n, cases[i].holdout, got,
                     cases[i].want);
    }
    /* never all of them: at least one image is left to train on */
    for (int n = 1; n < 200; n++)
        assert_true(calib_holdout_count(n, 0.5) <= n - 1 || n < 3);
}

/* The shuffle is pinned: a change to it changes which images every job holds
 * out, hence every trained model. The expected orders come from an
 * independent implementation (splitmix64 seeded with seed ^ 0x5eed,
 * Fisher-Yates from the end). */
static void test_shuffle_pinned(void **state)
{
    (void)state;
    int o10[10], o20[20], o12[12];
    const int want10[10] = {8, 7, 2, 9, 6, 0, 3, 1, 4, 5};
    const int want20[20] = {3, 16, 7, 19, 9, 1, 11, 18, 4, 10, 8, 17, 13, 6, 5, 15, 12, 2, 0, 14};
    const int want12[12] = {1, 2, 11, 3, 10, 7, 4, 0, 6, 5, 8, 9};
    calib_shuffle(o10, 10, 1024);
    calib_shuffle(o20, 20, 3);
    calib_shuffle(o12, 12, 1024);
    assert_memory_equal(o10, want10, sizeof want10);
    assert_memory_equal(o20, want20, sizeof want20);
    assert_memory_equal(o12, want12, sizeof want12);
}

static void test_shuffle_permutation(void **state)
{
    (void)state;
    int a[257], b[257], seen[257];
    for (int n = 0; n <= 257; n += 37) {
        calib_shuffle(a, n, 42);
        calib_shuffle(b, n, 42);
        assert_memory_equal(a, b, sizeof a[0] * (size_t)n); /* same seed, same order */
        memset(seen, 0, sizeof seen);
        for (int i = 0; i < n; i++) {
            assert_true(a[i] >= 0 && a[i] < n);
            assert_int_equal(seen[a[i]]++, 0);
        }
    }
    calib_shuffle(b, 100, 43);
    calib_shuffle(a, 100, 42);
    assert_memory_not_equal(a, b, sizeof a[0] * 100); /* another seed, another order */
    int one = -1;
    calib_shuffle(&one, 1, 5);
    assert_int_equal(one, 0);
}

static void test_threshold_empty_and_nan(void **state)
{
    (void)state;
    calib_result r;
    float none[1] = {1.0f};
    assert_int_equal(calib_threshold(none, 0, 0.0, 1.0, &r), -1);
    assert_int_equal(r.n_nan, 0);
    float s[4] = {1.0f, NAN, 2.0f, NAN};
    assert_int_equal(calib_threshold(s, 4, 0.0, 1.0, &r), -1);
    assert_int_equal(r.n_nan, 2);
    float all[1] = {NAN};
    assert_int_equal(calib_threshold(all, 1, 0.1, 1.0, &r), -1);
    assert_int_equal(r.n_nan, 1);
}

static void test_threshold_one_score(void **state)
{
    (void)state;
    calib_result r;
    float s[1] = {3.5f};
    assert_int_equal(calib_threshold(s, 1, 0.0, 1.0, &r), 0);
    assert_int_equal(r.k, 0);
    assert_true(r.q == 3.5f && r.max == 3.5f && r.mean == 3.5);
    assert_true(r.threshold == (double)nextafterf(3.5f, INFINITY));
    s[0] = 3.5f;
    assert_int_equal(calib_threshold(s, 1, 0.5, 1.0, &r), 0); /* ceil(0.5) - 1 = 0 */
    assert_int_equal(r.k, 0);
}

/* q = s[ceil((1 - target_far) * m) - 1] of the sorted scores. */
static void test_threshold_quantile(void **state)
{
    (void)state;
    calib_result r;
    float s[10];
    const struct {
        double far;
        int k;
    } cases[] = {{0.0, 9}, {0.05, 9}, {0.1, 8}, {0.15, 8}, {0.2, 7}, {0.5, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int i = 0; i < 10; i++)
            s[i] = (float)((i * 7) % 10); /* 0..9, shuffled */
        assert_int_equal(calib_threshold(s, 10, cases[c].far, 1.0, &r), 0);
        for (int i = 1; i < 10; i++)
            assert_true(s[i - 1] <= s[i]); /* sorted in place */
        assert_int_equal(r.k, cases[c].k);
        assert_true(r.q == (float)cases[c].k);
        assert_true(r.max == 9.0f);
        assert_true(fabs(r.mean - 4.5) < 1e-12);
        /* at most target_far of the scores reach the threshold */
        int above = 0;
        for (int i = 0; i < 10; i++)
            above += s[i] >= r.threshold;
        assert_true(above <= (int)floor(cases[c].far * 10 + 1e-9));
    }
}

/* The threshold is the next float above q * margin: a score equal to q x
 * margin is OK, the next float up is NG. */
static void test_threshold_margin(void **state)
{
    (void)state;
    calib_result r;
    float s[3] = {2.0f, 1.0f, 4.0f};
    assert_int_equal(calib_threshold(s, 3, 0.0, 1.25, &r), 0);
    assert_true(r.q == 4.0f);
    float qm = (float)(4.0 * 1.25);
    assert_true(r.threshold > qm);
    assert_true(nextafterf((float)r.threshold, -INFINITY) == qm);
    assert_true((double)(float)r.threshold == r.threshold); /* a float */
    float t[2] = {0.1f, 0.3f};
    assert_int_equal(calib_threshold(t, 2, 0.0, 1.0, &r), 0);
    assert_true(r.threshold == (double)nextafterf(0.3f, INFINITY));
}

/* Ties: the quantile is one of the tied values; none of them is NG at 0. */
static void test_threshold_ties(void **state)
{
    (void)state;
    calib_result r;
    float s[6] = {5.0f, 5.0f, 5.0f, 5.0f, 1.0f, 5.0f};
    assert_int_equal(calib_threshold(s, 6, 0.0, 1.0, &r), 0);
    assert_true(r.q == 5.0f);
    for (int i = 0; i < 6; i++)
        assert_true(s[i] < r.threshold);
    float u[4] = {2.0f, 2.0f, 2.0f, 2.0f};
    assert_int_equal(calib_threshold(u, 4, 0.25, 1.0, &r), 0);
    assert_int_equal(r.k, 2);
    assert_true(r.q == 2.0f && r.mean == 2.0);
    float inf[2] = {INFINITY, 1.0f};
    assert_int_equal(calib_threshold(inf, 2, 0.0, 1.0, &r), 0);
    assert_true(isinf(r.threshold) && r.max == INFINITY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holdout_counts),         cmocka_unit_test(test_shuffle_pinned),
        cmocka_unit_test(test_shuffle_permutation),    cmocka_unit_test(test_threshold_empty_and_nan),
        cmocka_unit_test(test_threshold_one_score),    cmocka_unit_test(test_threshold_quantile),
        cmocka_unit_test(test_threshold_margin),       cmocka_unit_test(test_threshold_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
