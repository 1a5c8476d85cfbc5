/* With the real backbone: cfa_score_multi over a batch mixing three models
 * (two share a geometry, one does not; one is a CFA++ ensemble) gives each
 * image the result cfa_score gives it alone. */
#include "cfa.h"
#include "expect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *make_image(int w, int h, int seed)
{
    float *p = malloc(sizeof(float) * (size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        p[i] = (float)((i * 31 + seed * 17 + (i / (3 * w)) * 5) % 251) / 250.0f;
    return p;
}

static float *train_px[3];
static int get(void *user, int i, cfa_image *out)
{
    (void)user;
    out->width = 48, out->height = 40, out->rgb = train_px[i];
    return 0;
}

static cfa_model *train(cfa_backbone *bb, int resize, int crop, int seed, int ensemble)
{
    cfa_params p = cfa_default_params();
    p.resize_h = p.resize_w = resize;
    p.crop_h = p.crop_w = crop;
    p.epochs = 1;
    p.gamma_d = 16;
    p.gamma_c = 2;
    p.seed = (uint64_t)seed;
    p.ensemble = ensemble;
    cfa_image_source src = {3, get, NULL, NULL};
    cfa_model *m = NULL;
    if (cfa_train(bb, &p, &src, NULL, NULL, NULL, &m) != CFA_OK)
        fprintf(stderr, "train: %s\n", cfa_last_error());
    return m;
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
        imgs[i] = (cfa_image){sizes[i][0], sizes[i][1], make_image(sizes[i][0], sizes[i][1], 10 + i)};
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
