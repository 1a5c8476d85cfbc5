/* With the real backbone: cfa_score_multi over a batch mixing three models
 * (two share a geometry, one does not; one is a CFA++ ensemble) gives each
 * image the result cfa_score gives it alone. */
#include "cfa.h"
#include "expect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *make_image(int w, int h, int seed)
{
    float *p = malloc(sizeof(float) * (size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        p[i] = (float)((i * 31 + seed * 17 + (i / (3 * w)) * 5) % 251) / 250.0f;
    return p;
}

static float *train_px[3];
static uint8_t *train_px8[3];
static int get(void *user, int i, cfa_image *out)
{
    /* user != NULL: the same training images as bytes */
    out->width = 48, out->height = 40;
    if (user != NULL)
        out->rgb8 = train_px8[i];
    else
        out->rgb = train_px[i];
    return 0;
}

/* bytes, and the floats an 8-bit decode gives for them (v / 255.0f) */
static uint8_t *make_bytes(int w, int h, int seed, float **as_float)
{
    size_t n = (size_t)w * h * 3;
    uint8_t *b = malloc(n);
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)((i * 29 + (size_t)seed * 13 + (i / (3 * (size_t)w)) * 7) % 256);
        f[i] = (float)b[i] / 255.0f;
    }
    *as_float = f;
    return b;
}

static int same_bytes(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

static cfa_model *train_from(cfa_backbone *bb, int resize, int crop, int seed, int ensemble,
                             void *bytes)
{
    cfa_params p = cfa_default_params();
    p.resize_h = p.resize_w = resize;
    p.crop_h = p.crop_w = crop;
    p.epochs = 1;
    p.gamma_d = 16;
    p.gamma_c = 2;
    p.seed = (uint64_t)seed;
    p.ensemble = ensemble;
    cfa_image_source src = {3, get, NULL, bytes};
    cfa_model *m = NULL;
    if (cfa_train(bb, &p, &src, NULL, NULL, NULL, &m) != CFA_OK)
        fprintf(stderr, "train: %s\n", cfa_last_error());
    return m;
}

static cfa_model *train(cfa_backbone *bb, int resize, int crop, int seed, int ensemble)
{
    return train_from(bb, resize, crop, seed, ensemble, NULL);
}

/* The profile corrects only the band the zero padding reaches: on a map
 * that rises at the edge and again farther in (a part's own rim), the outer
 * rise is fitted and the inner one is left as it is. */
static void check_edge_band(void)
{
    enum { W = 160, H = 160 };
    static float mm[W * H];
    const int rim = CFA_EDGE_BAND + 4;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int d = x < y ? x : y;
            d = d < W - 1 - x ? d : W - 1 - x;
            d = d < H - 1 - y ? d : H - 1 - y;
            mm[y * W + x] = d == 0 ? 3.0f : d == CFA_EDGE_BAND - 1 ? 1.5f : d == rim ? 2.0f : 1.0f;
        }
    cfa_result fake;
    memset(&fake, 0, sizeof fake);
    fake.model_map = mm;
    fake.model_width = W;
    fake.model_height = H;
    int n = cfa_edge_profile_len(W, H);
    EXPECT(n == H / 4 + 1 && n > rim);
    double sum[CFA_EDGE_PROFILE_MAX] = {0}, cnt[CFA_EDGE_PROFILE_MAX] = {0};
    float ratio[CFA_EDGE_PROFILE_MAX];
    cfa_edge_profile_accumulate(&fake, n, sum, cnt);
    EXPECT(cfa_edge_profile_finish(sum, cnt, n, ratio) == 0);
    EXPECT(ratio[0] == 3.0f && ratio[CFA_EDGE_BAND - 1] == 1.5f);
    EXPECT(ratio[CFA_EDGE_BAND] == 1.0f && ratio[rim] == 1.0f && ratio[n - 1] == 1.0f);
}

/* The edge profile (issue 13, core/src/edge.cpp): fitted from a map, it is
 * >= 1, 1 in the interior; set on a model, the model map is divided by
 * ratio[distance to the nearest edge] and map and score follow it. */
static void check_edge_profile(cfa_backbone *bb, cfa_model *m)
{
    cfa_image im = {56, 56, make_image(56, 56, 77), NULL};
    cfa_result raw, norm;
    EXPECT(cfa_score(bb, m, &im, 1, &raw) == CFA_OK);
    int w = raw.model_width, h = raw.model_height, n = cfa_edge_profile_len(w, h);
    EXPECT(n == (w < h ? w : h) / 4 + 1);
    /* a map that is 3 at the edge, 2 one pixel in, 1 elsewhere fits 3, 2, 1 ... */
    cfa_result fake = raw;
    float *mm = malloc(sizeof(float) * (size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int d = x < y ? x : y;
            d = d < w - 1 - x ? d : w - 1 - x;
            d = d < h - 1 - y ? d : h - 1 - y;
            mm[y * w + x] = d == 0 ? 3.0f : d == 1 ? 2.0f : 1.0f;
        }
    fake.model_map = mm;
    double sum[CFA_EDGE_PROFILE_MAX] = {0}, cnt[CFA_EDGE_PROFILE_MAX] = {0};
    float ratio[CFA_EDGE_PROFILE_MAX];
    cfa_edge_profile_accumulate(&fake, n, sum, cnt);
    EXPECT(cfa_edge_profile_finish(sum, cnt, n, ratio) == 0);
    EXPECT(ratio[0] == 3.0f && ratio[1] == 2.0f && ratio[2] == 1.0f && ratio[n - 1] == 1.0f);
    /* ... and a dip at the edge is not amplified: ratios stay >= 1 */
    for (int k = 0; k < w * h; k++)
        mm[k] = 4.0f - mm[k];
    memset(sum, 0, sizeof sum);
    memset(cnt, 0, sizeof cnt);
    cfa_edge_profile_accumulate(&fake, n, sum, cnt);
    EXPECT(cfa_edge_profile_finish(sum, cnt, n, ratio) == 0 && ratio[0] == 1.0f);
    free(mm);
    float bad[2] = {1.0f, 0.5f}, prof[3] = {4.0f, 2.0f, 1.0f};
    EXPECT(cfa_model_set_edge_profile(m, bad, 2) == CFA_ERR_INVALID_ARG);
    EXPECT(cfa_model_set_edge_profile(m, prof, 3) == CFA_OK);
    EXPECT(cfa_score(bb, m, &im, 1, &norm) == CFA_OK);
    int ok = 1;
    float max = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int d = x < y ? x : y;
            d = d < w - 1 - x ? d : w - 1 - x;
            d = d < h - 1 - y ? d : h - 1 - y;
            float want = raw.model_map[y * w + x] / prof[d < 2 ? d : 2];
            ok &= fabsf(norm.model_map[y * w + x] - want) <= 1e-6f * (1.0f + want);
        }
    for (int k = 0; k < norm.width * norm.height; k++)
        max = fmaxf(max, norm.map[k]);
    EXPECT(ok && norm.score == max && norm.score <= raw.score);
    /* the profile is saved with the model (version 2) and read back: the
     * CLI scores a daemon's model as the daemon does */
    void *buf = NULL;
    size_t len = 0;
    cfa_model *back = NULL;
    EXPECT(cfa_model_save(m, &buf, &len) == CFA_OK && cfa_model_load(buf, len, bb, &back) == CFA_OK);
    EXPECT(len > 12 && ((const uint8_t *)buf)[8] == 2);
    cfa_result reloaded;
    EXPECT(back && cfa_score(bb, back, &im, 1, &reloaded) == CFA_OK && reloaded.score == norm.score);
    cfa_result_clear(&reloaded);
    cfa_model_free(back);
    cfa_free(buf);
    EXPECT(cfa_model_set_edge_profile(m, NULL, 0) == CFA_OK); /* removed: as before */
    EXPECT(cfa_model_save(m, &buf, &len) == CFA_OK && ((const uint8_t *)buf)[8] == 1);
    cfa_free(buf);
    cfa_result again;
    EXPECT(cfa_score(bb, m, &im, 1, &again) == CFA_OK && again.score == raw.score);
    cfa_result_clear(&again);
    cfa_result_clear(&raw);
    cfa_result_clear(&norm);
    free((void *)im.rgb);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    cfa_set_threads(2);
    cfa_backbone *bb = NULL;
    if (cfa_backbone_load(argv[1], "cpu", &bb) != CFA_OK) {
        fprintf(stderr, "%s\n", cfa_last_error());
        return 1;
    }
    for (int i = 0; i < 3; i++)
        train_px[i] = make_image(48, 40, i);
    cfa_model *a = train(bb, 64, 48, 1, 0), *b = train(bb, 64, 48, 2, 1), *c = train(bb, 56, 0, 3, 0);
    EXPECT(a && b && c);
    if (!a || !b || !c)
        return 1;
    enum { N = 6 };
    const cfa_model *models[N] = {a, c, b, a, b, c};
    int sizes[N][2] = {{40, 30}, {64, 64}, {100, 20}, {33, 47}, {40, 30}, {90, 90}};
    cfa_image imgs[N];
    for (int i = 0; i < N; i++)
        imgs[i] = (cfa_image){sizes[i][0], sizes[i][1], make_image(sizes[i][0], sizes[i][1], 10 + i), NULL};
    cfa_result multi[N];
    EXPECT(cfa_score_multi(bb, models, imgs, N, multi) == CFA_OK);
    for (int i = 0; i < N; i++) {
        cfa_result one;
        EXPECT(cfa_score(bb, models[i], &imgs[i], 1, &one) == CFA_OK);
        EXPECT(multi[i].width == imgs[i].width && multi[i].height == imgs[i].height);
        EXPECT(fabsf(multi[i].score - one.score) <= 1e-4f * (1.0f + fabsf(one.score)));
        float worst = 0;
        for (int k = 0; k < one.width * one.height; k++)
            worst = fmaxf(worst, fabsf(multi[i].map[k] - one.map[k]));
        EXPECT(worst <= 1e-3f);
        cfa_result_clear(&one);
        cfa_result_clear(&multi[i]);
        free((void *)imgs[i].rgb);
    }
    /* bytes and their floats give bit-identical results: scoring, shrinking
     * (90 x 90 and 300 x 200 -> 64) and enlarging (40 x 30 -> 64), alone and
     * in a batch mixing both kinds; and training */
    {
        enum { M = 3 };
        int bs[M][2] = {{90, 90}, {40, 30}, {300, 200}};
        float *fl[M];
        uint8_t *by[M];
        cfa_image fi[M], bi[M], mixed[M];
        for (int i = 0; i < M; i++) {
            by[i] = make_bytes(bs[i][0], bs[i][1], i, &fl[i]);
            fi[i] = (cfa_image){bs[i][0], bs[i][1], fl[i], NULL};
            bi[i] = (cfa_image){bs[i][0], bs[i][1], NULL, by[i]};
            mixed[i] = i % 2 ? fi[i] : bi[i];
        }
        cfa_result rf[M], rb[M], rm[M];
        EXPECT(cfa_score(bb, a, fi, M, rf) == CFA_OK);
        EXPECT(cfa_score(bb, a, bi, M, rb) == CFA_OK);
        EXPECT(cfa_score(bb, a, mixed, M, rm) == CFA_OK);
        for (int i = 0; i < M; i++) {
            size_t n = (size_t)rf[i].width * rf[i].height * sizeof(float);
            EXPECT(rb[i].score == rf[i].score && rm[i].score == rf[i].score);
            EXPECT(same_bytes(rb[i].map, rf[i].map, n) && same_bytes(rm[i].map, rf[i].map, n));
            cfa_result_clear(&rf[i]);
            cfa_result_clear(&rb[i]);
            cfa_result_clear(&rm[i]);
        }
        /* both pointers, or neither: refused */
        cfa_image both = {90, 90, fl[0], by[0]}, none = {90, 90, NULL, NULL};
        EXPECT(cfa_score(bb, a, &both, 1, rf) == CFA_ERR_IMAGE);
        EXPECT(cfa_score(bb, a, &none, 1, rf) == CFA_ERR_IMAGE);
        for (int i = 0; i < M; i++) {
            free(fl[i]);
            free(by[i]);
        }
        for (int i = 0; i < 3; i++) {
            free(train_px[i]);
            train_px8[i] = make_bytes(48, 40, 20 + i, &train_px[i]);
        }
        cfa_model *tf = train_from(bb, 64, 48, 5, 0, NULL), *tb = train_from(bb, 64, 48, 5, 0, train_px8);
        void *sf = NULL, *sb = NULL;
        size_t lf = 0, lb = 0;
        EXPECT(tf && tb && cfa_model_save(tf, &sf, &lf) == CFA_OK && cfa_model_save(tb, &sb, &lb) == CFA_OK);
        EXPECT(lf == lb && lf > 0 && same_bytes(sf, sb, lf));
        cfa_free(sf);
        cfa_free(sb);
        cfa_model_free(tf);
        cfa_model_free(tb);
        for (int i = 0; i < 3; i++)
            free(train_px8[i]);
    }
    check_edge_profile(bb, c);
    check_edge_band();
    /* a model of another backbone anywhere in the batch fails the whole call cleanly */
    const cfa_model *bad[2] = {a, NULL};
    EXPECT(cfa_score_multi(bb, bad, imgs, 2, multi) == CFA_ERR_INVALID_ARG);
    cfa_model_free(a);
    cfa_model_free(b);
    cfa_model_free(c);
    cfa_backbone_free(bb);
    for (int i = 0; i < 3; i++)
        free(train_px[i]);
    return expect_report();
}
