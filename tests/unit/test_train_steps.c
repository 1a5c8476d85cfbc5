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


/* ---- the fitted tail and the interval (calib_tail.c) -------------------- */

static void test_normal_quantile(void **state)
{
    (void)state;
    /* reference values: scipy.stats.norm.ppf */
    const double p[] = {0.5, 0.9, 0.99, 0.999, 0.01, 0.02425, 0.975};
    const double z[] = {0.0, 1.2815516, 2.3263479, 3.0902323, -2.3263479, -1.9729611, 1.9599640};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        if (fabs(calib_normal_quantile(p[i]) - z[i]) > 1e-6)
            fail_msg("quantile(%g) = %.9g, want %.9g", p[i], calib_normal_quantile(p[i]), z[i]);
        assert_true(fabs(calib_normal_sf(z[i]) - (1 - p[i])) < 1e-7);
    }
    assert_true(isinf(calib_normal_quantile(0)) && isinf(calib_normal_quantile(1)));
}

/* The exact interval against an independent computation (Python: math.comb
 * sums, bisection to 1e-60). */
static void test_clopper_pearson(void **state)
{
    (void)state;
    const struct {
        int x, n;
        double lo, hi;
    } cases[] = {
        {0, 20, 0.0, 0.16843347}, {2, 20, 0.01234853, 0.31698271}, {5, 10, 0.18708603, 0.81291397},
        {20, 20, 0.83156653, 1.0}, {1, 100, 0.00025315, 0.05445939}, {0, 1, 0.0, 0.975},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double lo = -1, hi = -1;
        assert_int_equal(calib_clopper_pearson(cases[i].x, cases[i].n, 0.95, &lo, &hi), 0);
        if (fabs(lo - cases[i].lo) > 1e-6 || fabs(hi - cases[i].hi) > 1e-6)
            fail_msg("%d of %d: [%.8f, %.8f], want [%.8f, %.8f]", cases[i].x, cases[i].n, lo, hi,
                     cases[i].lo, cases[i].hi);
    }
    double lo, hi;
    assert_int_equal(calib_clopper_pearson(3, 2, 0.95, &lo, &hi), -1);
    assert_int_equal(calib_clopper_pearson(0, 0, 0.95, &lo, &hi), -1);
    assert_int_equal(calib_clopper_pearson(0, 5, 1.0, &lo, &hi), -1);
}

/* Natrella's factor against the exact one-sided tolerance factors of the
 * NIST/SEMATECH tables (within 1.5%). */
static void test_tolerance_factor(void **state)
{
    (void)state;
    const struct {
        int n;
        double p, conf, k;
    } cases[] = {
        {10, 0.90, 0.95, 2.355}, {20, 0.99, 0.90, 3.052}, {20, 0.95, 0.95, 2.396},
        {50, 0.99, 0.95, 2.863}, {100, 0.999, 0.95, 3.532},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double k = calib_tolerance_k(cases[i].n, cases[i].p, cases[i].conf);
        if (!(fabs(k - cases[i].k) / cases[i].k < 0.015))
            fail_msg("k(%d, %g, %g) = %g, want %g", cases[i].n, cases[i].p, cases[i].conf, k,
                     cases[i].k);
    }
    assert_true(isnan(calib_tolerance_k(1, 0.99, 0.9)));
    /* fewer images, a wider bound */
    assert_true(calib_tolerance_k(10, 0.99, 0.9) > calib_tolerance_k(40, 0.99, 0.9));
    assert_true(calib_tolerance_k(40, 0.99, 0.9) > calib_normal_quantile(0.99));
}

static void test_fit_lognormal(void **state)
{
    (void)state;
    float s[3] = {expf(1), expf(2), expf(3)};
    calib_fit f;
    assert_int_equal(calib_fit_lognormal(s, 3, &f), 0);
    assert_int_equal(f.n, 3);
    assert_true(fabs(f.mu - 2) < 1e-6 && fabs(f.sigma - 1) < 1e-6);
    /* the fit's rate at its own quantile */
    double t = exp(2 + calib_normal_quantile(0.99));
    assert_true(fabs(calib_fit_far(&f, t) - 0.01) < 1e-6);
    assert_int_equal(calib_fit_lognormal(s, 1, &f), -1);
    /* a zero score is the smallest positive float, not -inf */
    float z[3] = {0, 1, 2};
    assert_int_equal(calib_fit_lognormal(z, 3, &f), 0);
    assert_true(isfinite(f.mu) && isfinite(f.sigma));
}

/* deterministic standard normals: splitmix64 + Box-Muller */
static double normal_draw(uint64_t *x)
{
    uint64_t a = (*x += 0x9e3779b97f4a7c15ULL), b = (*x += 0x9e3779b97f4a7c15ULL);
    a = (a ^ (a >> 31)) * 0xbf58476d1ce4e5b9ULL;
    b = (b ^ (b >> 29)) * 0x94d049bb133111ebULL;
    double u = ((a >> 11) + 0.5) / 9007199254740992.0, v = ((b >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* What the rule promises: on log-normal good scores, the true false-alarm
 * rate at T1 is at most target_far in about CALIB_CONF of the calibrations
 * (the empirical quantile alone, at these n, is far looser), and at any
 * scale the same. */
static void test_decide_coverage(void **state)
{
    (void)state;
    const int reps = 2000, n = 20;
    const double mu = 0.7, sigma = 0.3, far = 0.01;
    uint64_t rng = 42;
    int held = 0;
    double sum_far = 0;
    for (int r = 0; r < reps; r++) {
        float s[20];
        for (int i = 0; i < n; i++)
            s[i] = (float)exp(mu + sigma * normal_draw(&rng));
        calib_decision d;
        assert_int_equal(calib_decide(s, n, far, 0.001, 1.0, &d), 0);
        double true_far = calib_normal_sf((log(d.threshold) - mu) / sigma);
        held += true_far <= far;
        sum_far += true_far;
        assert_true(d.threshold_ng >= d.threshold);
        assert_true(d.threshold >= d.q.threshold); /* never below the empirical rule */
        assert_true(d.fitted);
        assert_true(d.warnings & CALIB_WARN_EXTRAPOLATED); /* 20 < 1 / 1% */
    }
    double cover = (double)held / reps;
    if (fabs(cover - CALIB_CONF) > 0.03)
        fail_msg("the true FAR was <= %g in %.3f of calibrations, want about %g", far, cover,
                 CALIB_CONF);
    assert_true(sum_far / reps < far); /* on average, below the target */

    /* scale-free: ten times the scores, ten times the thresholds */
    float a[12], b[12];
    for (int i = 0; i < 12; i++) {
        a[i] = (float)exp(mu + sigma * normal_draw(&rng));
        b[i] = a[i] * 10.0f;
    }
    calib_decision da, db;
    calib_decide(a, 12, far, 0.001, 1.0, &da);
    calib_decide(b, 12, far, 0.001, 1.0, &db);
    assert_true(fabs(db.threshold / da.threshold - 10) < 1e-4);
    assert_true(fabs(db.threshold_ng / da.threshold_ng - 10) < 1e-4);
}

static void test_decide_small_and_zero(void **state)
{
    (void)state;
    /* fewer than CALIB_MIN_FIT: the empirical rule, with a warning */
    float s[3] = {1.0f, 2.0f, 3.0f};
    calib_decision d;
    assert_int_equal(calib_decide(s, 3, 0.01, 0.001, 1.0, &d), 0);
    assert_false(d.fitted);
    assert_true(d.warnings & CALIB_WARN_NO_FIT);
    assert_true(d.threshold == d.q.threshold && d.threshold == d.threshold_max);
    assert_true(d.threshold_ng == d.threshold);
    assert_int_equal(d.exceed, 0);
    assert_true(d.far_lo == 0 && fabs(d.far_hi - 0.70759822) < 1e-6); /* 0 of 3 */
    /* target_far 0: the maximum, as before the fit; target_far_ng 0: no band */
    float t[8] = {1, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f, 1.7f};
    assert_int_equal(calib_decide(t, 8, 0, 0, 1.0, &d), 0);
    assert_true(d.threshold == d.threshold_max && d.threshold_ng == d.threshold);
    /* a fit above the maximum: T2 above T1, both above every held-out score */
    assert_int_equal(calib_decide(t, 8, 0.01, 0.001, 1.0, &d), 0);
    assert_true(d.threshold > 1.7 && d.threshold_ng > d.threshold);
    assert_int_equal(d.exceed, 0);
    assert_int_equal(calib_decide(t, 0, 0.01, 0.001, 1.0, &d), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holdout_counts),         cmocka_unit_test(test_shuffle_pinned),
        cmocka_unit_test(test_shuffle_permutation),    cmocka_unit_test(test_threshold_empty_and_nan),
        cmocka_unit_test(test_threshold_one_score),    cmocka_unit_test(test_threshold_quantile),
        cmocka_unit_test(test_threshold_margin),       cmocka_unit_test(test_threshold_ties),
        cmocka_unit_test(test_normal_quantile),        cmocka_unit_test(test_clopper_pearson),
        cmocka_unit_test(test_tolerance_factor),       cmocka_unit_test(test_fit_lognormal),
        cmocka_unit_test(test_decide_coverage),        cmocka_unit_test(test_decide_small_and_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
