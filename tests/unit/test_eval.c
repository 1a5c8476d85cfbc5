/* test_eval.c - AUROC and AUPRO (server/eval/eval.c) against hand-computed
 * values and brute force. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "heatmap.h"
#include "eval.h"

#define EPS 1e-12

static void test_auroc_hand(void **state)
{
    (void)state;
    /* positives 0.35, 0.8 against negatives 0.1, 0.4: 0.35 beats 1 of 2,
     * 0.8 beats 2 of 2 -> 3 / 4 */
    const float s1[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    const uint8_t l1[4] = {0, 0, 1, 1};
    assert_true(fabs(metrics_auroc(s1, l1, 4) - 0.75) < EPS);

    /* ties count one half: positive 0.5 vs {0.1, 0.5} = 1.5, 0.9 = 2 -> 3.5 / 4 */
    const float s2[4] = {0.1f, 0.5f, 0.5f, 0.9f};
    const uint8_t l2[4] = {0, 0, 1, 1};
    assert_true(fabs(metrics_auroc(s2, l2, 4) - 0.875) < EPS);

    /* all tied -> 0.5 */
    const float s3[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    const uint8_t l3[4] = {0, 1, 0, 1};
    assert_true(fabs(metrics_auroc(s3, l3, 4) - 0.5) < EPS);

    /* perfect, inverted; labels are "non-zero" */
    const float s4[4] = {1, 2, 3, 4};
    const uint8_t l4[4] = {0, 0, 7, 255};
    const uint8_t l5[4] = {1, 1, 0, 0};
    assert_true(metrics_auroc(s4, l4, 4) == 1.0);
    assert_true(metrics_auroc(s4, l5, 4) == 0.0);

    /* -0.0 == 0.0; negatives and infinities in order; NaN ranks on top */
    const float s6[2] = {-0.0f, 0.0f};
    const uint8_t l6[2] = {0, 1};
    assert_true(metrics_auroc(s6, l6, 2) == 0.5);
    const float s7[6] = {-INFINITY, -1.0f, -1e-30f, 1e-30f, INFINITY, NAN};
    const uint8_t l7[6] = {0, 0, 0, 1, 1, 1};
    assert_true(metrics_auroc(s7, l7, 6) == 1.0);
    const uint8_t l8[6] = {1, 0, 0, 0, 0, 0};
    assert_true(metrics_auroc(s7, l8, 6) == 0.0);

    /* one class absent, nothing, NULL */
    const uint8_t none[4] = {0, 0, 0, 0};
    assert_true(isnan(metrics_auroc(s1, none, 4)));
    assert_true(isnan(metrics_auroc(s1, l4 + 2, 2)));
    assert_true(isnan(metrics_auroc(s1, l1, 0)));
    assert_true(isnan(metrics_auroc(NULL, l1, 4)));
}

static void test_auroc_brute(void **state)
{
    (void)state;
    enum { N = 3000 };
    float *s = malloc(N * sizeof *s);
    uint8_t *l = malloc(N);
    uint32_t seed = 99;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 1664525u + 1013904223u;
            l[i] = (seed >> 20) % 3 == 0;
            seed = seed * 1664525u + 1013904223u;
            /* coarse values: many ties; shifted by the label; some negative */
            int q = (int)((seed >> 16) % (round == 0 ? 5 : 200)) - 40 + (l[i] ? 20 : 0);
            s[i] = (float)q * 0.25f;
        }
        double num = 0;
        long long p = 0, n = 0;
        for (int i = 0; i < N; i++) {
            if (!l[i])
                continue;
            p++;
            for (int j = 0; j < N; j++) {
                if (l[j])
                    continue;
                num += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
            }
        }
        for (int i = 0; i < N; i++)
            n += !l[i];
        double want = num / ((double)p * (double)n);
        assert_true(fabs(metrics_auroc(s, l, N) - want) < 1e-12);
    }
    free(s);
    free(l);
}

static void test_aupro_hand(void **state)
{
    (void)state;
    /* Image A, 4 x 4, mask       scores
     *   1 1 0 0                  .9 .5 .8 .1
     *   0 0 0 0                  .1 .1 .6 .1
     *   0 0 0 1                  .1 .1 .1 .7
     *   0 0 0 0                  .1 .1 .1 .1
     * R1 = 2 px (0.9, 0.5), R2 = 1 px (0.7); 13 normal px.
     * Image B, 4 x 2, empty mask: one 0.65, seven 0.0; 8 normal px.
     * 21 normal px in all. Going down the scores:
     *   0.9  fp 0   PRO (1/2 + 0) / 2 = 0.25
     *   0.8  fp 1
     *   0.7  fp 1   PRO (1/2 + 1) / 2 = 0.75
     *   0.65 fp 2
     *   0.6  fp 3
     *   0.5  fp 3   PRO 1
     *   0.1  fp 14  (FPR 0.667 > 0.3: the cut falls on the flat part)
     * Area to 0.3: 0.25 * 1/21 + 0.75 * 2/21 + 1 * (0.3 - 3/21)
     *            = 0.3 - 1.25 / 21; divided by 0.3: 1 - 1.25 / 6.3. */
    const float a[16] = {.9f, .5f, .8f, .1f, .1f, .1f, .6f, .1f,
                         .1f, .1f, .1f, .7f, .1f, .1f, .1f, .1f};
    const uint8_t ma[16] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0};
    const float b[8] = {0, 0, .65f, 0, 0, 0, 0, 0};
    const uint8_t mb[8] = {0};
    const float *maps[2] = {a, b};
    const uint8_t *masks[2] = {ma, mb};
    const int w[2] = {4, 4}, h[2] = {4, 2};
    double want = 1.0 - 1.25 / 6.3;
    assert_true(fabs(metrics_aupro(maps, masks, w, h, 2, 0.3) - want) < 1e-9);

    /* The empty-mask image matters: without B, 13 normal px, and the points
     * are (0, .25) (1/13, .25) (1/13, .75) (2/13, .75) (2/13, 1) ...:
     * 0.25/13 + 0.75/13 + (0.3 - 2/13), over 0.3. */
    double want_a = (0.25 / 13 + 0.75 / 13 + (0.3 - 2.0 / 13)) / 0.3;
    assert_true(fabs(metrics_aupro(maps, masks, w, h, 1, 0.3) - want_a) < 1e-9);

    /* Order of images does not matter */
    const float *maps2[2] = {b, a};
    const uint8_t *masks2[2] = {mb, ma};
    const int w2[2] = {4, 4}, h2[2] = {2, 4};
    assert_true(fabs(metrics_aupro(maps2, masks2, w2, h2, 2, 0.3) - want) < 1e-9);
}

static void test_aupro_ties_and_cut(void **state)
{
    (void)state;
    /* 3 x 4: ten normal px all at 0.5; a region of two px at 0.5 and 0.9.
     * Points: (0, 0.5) at t = 0.9, then the whole tie group at once:
     * (1, 1). At 0.3: PRO 0.5 + 0.5 * 0.3 = 0.65, area 0.3 * (0.5 + 0.65) / 2,
     * over 0.3: 0.575. Splitting the tie either way would give another
     * figure. With max_fpr 1: (0.5 + 1) / 2 = 0.75. */
    float m[12];
    uint8_t k[12] = {0};
    for (int i = 0; i < 12; i++)
        m[i] = 0.5f;
    m[5] = 0.9f;
    k[5] = 1;
    k[6] = 1;
    const float *maps[1] = {m};
    const uint8_t *masks[1] = {k};
    const int w[1] = {4}, h[1] = {3};
    assert_true(fabs(metrics_aupro(maps, masks, w, h, 1, 0.3) - 0.575) < 1e-12);
    assert_true(fabs(metrics_aupro(maps, masks, w, h, 1, 1.0) - 0.75) < 1e-12);

    /* perfect */
    for (int i = 0; i < 12; i++)
        m[i] = k[i] ? 1.0f : 0.0f;
    assert_true(fabs(metrics_aupro(maps, masks, w, h, 1, 0.3) - 1.0) < 1e-12);

    /* no region, no normal pixel, bad max_fpr */
    uint8_t empty[12] = {0}, full[12];
    memset(full, 1, sizeof full);
    const uint8_t *me[1] = {empty}, *mf[1] = {full};
    assert_true(isnan(metrics_aupro(maps, me, w, h, 1, 0.3)));
    assert_true(isnan(metrics_aupro(maps, mf, w, h, 1, 0.3)));
    assert_true(isnan(metrics_aupro(maps, masks, w, h, 1, 0.0)));
    assert_true(isnan(metrics_aupro(maps, masks, w, h, 0, 0.3)));
}

/* Brute force: every distinct score is a threshold; FPR and PRO counted
 * directly; trapezoid with the cut. */
static double aupro_brute(const float *const *maps, const uint8_t *const *masks,
                          const int *w, const int *h, int n_img, double max_fpr)
{
    size_t total = 0;
    for (int k = 0; k < n_img; k++)
        total += (size_t)w[k] * h[k];
    float *th = malloc(total * sizeof *th);
    uint32_t **lab = malloc(n_img * sizeof *lab);
    uint32_t *nl = malloc(n_img * sizeof *nl);
    size_t t = 0, n_norm = 0, n_reg = 0;
    for (int k = 0; k < n_img; k++) {
        size_t n = (size_t)w[k] * h[k];
        lab[k] = malloc(n * sizeof **lab);
        regions_label(masks[k], w[k], h[k], lab[k], &nl[k]);
        n_reg += nl[k];
        for (size_t i = 0; i < n; i++) {
            th[t++] = maps[k][i];
            n_norm += masks[k][i] == 0;
        }
    }
    /* distinct thresholds, descending (insertion sort is fine here) */
    for (size_t i = 1; i < total; i++)
        for (size_t j = i; j > 0 && th[j - 1] < th[j]; j--) {
            float x = th[j];
            th[j] = th[j - 1];
            th[j - 1] = x;
        }
    double pf = 0, pp = 0, area = 0;
    for (size_t i = 0; i < total; i++) {
        if (i > 0 && th[i] == th[i - 1])
            continue;
        size_t fp = 0;
        double pro = 0;
        for (int k = 0; k < n_img; k++) {
            size_t n = (size_t)w[k] * h[k];
            double *hit = calloc(nl[k] + 1, sizeof *hit);
            double *size = calloc(nl[k] + 1, sizeof *size);
            for (size_t p = 0; p < n; p++) {
                size[lab[k][p]] += 1;
                if (maps[k][p] >= th[i]) {
                    if (masks[k][p])
                        hit[lab[k][p]] += 1;
                    else
                        fp++;
                }
            }
            for (uint32_t r = 1; r <= nl[k]; r++)
                pro += hit[r] / size[r];
            free(hit);
            free(size);
        }
        double f = (double)fp / n_norm, pr = pro / n_reg;
        if (f >= max_fpr) {
            double pc = f > max_fpr ? pp + (pr - pp) * (max_fpr - pf) / (f - pf) : pr;
            area += (max_fpr - pf) * (pp + pc) / 2;
            break;
        }
        area += (f - pf) * (pp + pr) / 2;
        pf = f;
        pp = pr;
    }
    for (int k = 0; k < n_img; k++)
        free(lab[k]);
    free(lab);
    free(nl);
    free(th);
    return area / max_fpr;
}

static void test_aupro_brute(void **state)
{
    (void)state;
    enum { NI = 3 };
    const int w[NI] = {17, 9, 12}, h[NI] = {11, 14, 8};
    float *maps[NI];
    uint8_t *masks[NI];
    uint32_t seed = 4242;
    for (int round = 0; round < 6; round++) {
        for (int k = 0; k < NI; k++) {
            size_t n = (size_t)w[k] * h[k];
            maps[k] = malloc(n * sizeof(float));
            masks[k] = calloc(n, 1);
            /* a few blobs per image (none in image 1 on odd rounds) */
            int blobs = (k == 1 && round % 2) ? 0 : 1 + round % 3;
            for (int bI = 0; bI < blobs; bI++) {
                seed = seed * 1664525u + 1013904223u;
                int cx = (int)(seed >> 8) % w[k], cy = (int)(seed >> 20) % h[k];
                int r = 1 + (int)(seed >> 28) % 3;
                for (int y = 0; y < h[k]; y++)
                    for (int x = 0; x < w[k]; x++)
                        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r)
                            masks[k][(size_t)y * w[k] + x] = 255;
            }
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1664525u + 1013904223u;
                int q = (int)((seed >> 16) % 40) + (masks[k][i] ? 12 : 0);
                maps[k][i] = (float)q / 8.0f; /* coarse: ties across classes */
            }
        }
        const float *cm[NI] = {maps[0], maps[1], maps[2]};
        const uint8_t *ck[NI] = {masks[0], masks[1], masks[2]};
        for (int f = 0; f < 3; f++) {
            double max_fpr = f == 0 ? 0.3 : f == 1 ? 0.05 : 1.0;
            double got = metrics_aupro(cm, ck, w, h, NI, max_fpr);
            double want = aupro_brute(cm, ck, w, h, NI, max_fpr);
            if (!(fabs(got - want) < 1e-9))
                fail_msg("round %d max_fpr %g: %.15f vs %.15f", round, max_fpr, got, want);
        }
        for (int k = 0; k < NI; k++) {
            free(maps[k]);
            free(masks[k]);
        }
    }
}

static void test_auroc_large(void **state)
{
    (void)state;
    /* 3 million pixels: the radix path at scale; scores = label + noise in
     * [0, 0.5) never overlap -> exactly 1; then reversed -> 0. */
    size_t n = 3000000;
    float *s = malloc(n * sizeof *s);
    uint8_t *l = malloc(n);
    assert_non_null(s);
    assert_non_null(l);
    uint32_t seed = 1;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        l[i] = (seed >> 31) & 1;
        s[i] = (float)l[i] + (float)(seed & 0xffff) / 131072.0f;
    }
    assert_true(metrics_auroc(s, l, n) == 1.0);
    for (size_t i = 0; i < n; i++)
        s[i] = -s[i];
    assert_true(metrics_auroc(s, l, n) == 0.0);
    free(s);
    free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auroc_hand),     cmocka_unit_test(test_auroc_brute),
        cmocka_unit_test(test_auroc_large),    cmocka_unit_test(test_aupro_hand),
        cmocka_unit_test(test_aupro_ties_and_cut), cmocka_unit_test(test_aupro_brute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
