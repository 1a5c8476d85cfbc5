/* fake_engine.c - see fake_engine.h. */
#include "fake_engine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cfa_backbone { int id; };
struct cfa_model { int64_t version; char product[72]; };

pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
int fake_score_calls, fake_multi_calls, fake_max_batch, fake_max_products, fake_loads;
int fake_score_delay_ms = 5;
int fake_map_from_red;
cfa_status fake_fail_status = CFA_ERR_IMAGE;

void fake_reset(void)
{
    pthread_mutex_lock(&fake_mu);
    fake_score_calls = fake_multi_calls = fake_max_batch = fake_max_products = fake_loads = 0;
    fake_score_delay_ms = 5;
    fake_map_from_red = 0;
    fake_fail_status = CFA_ERR_IMAGE;
    pthread_mutex_unlock(&fake_mu);
}

void fake_set_delay(int ms)
{
    pthread_mutex_lock(&fake_mu);
    fake_score_delay_ms = ms;
    pthread_mutex_unlock(&fake_mu);
}

void *fake_model_blob(const char *product, int64_t version, size_t *len)
{
    size_t pl = strlen(product) + 1;
    uint8_t *b = malloc(sizeof version + pl);
    if (b == NULL)
        return NULL;
    memcpy(b, &version, sizeof version);
    memcpy(b + sizeof version, product, pl);
    *len = sizeof version + pl;
    return b;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

cfa_status cfa_backbone_load(const char *path, const char *device, cfa_backbone **out)
{
    (void)device;
    if (strcmp(path, "missing") == 0)
        return CFA_ERR_IO;
    *out = calloc(1, sizeof **out);
    return *out != NULL ? CFA_OK : CFA_ERR_NOMEM;
}

void cfa_backbone_free(cfa_backbone *bb) { free(bb); }

const char *cfa_backbone_sha256(const cfa_backbone *bb)
{
    (void)bb;
    return "0000000000000000000000000000000000000000000000000000000000000000";
}

void cfa_backbone_channels(const cfa_backbone *bb, int out[3])
{
    (void)bb;
    out[0] = 256, out[1] = 512, out[2] = 1024;
}

cfa_status cfa_model_load(const void *buf, size_t len, const cfa_backbone *bb, cfa_model **out)
{
    (void)bb;
    if (len < sizeof(int64_t) + 1)
        return CFA_ERR_FORMAT;
    cfa_model *m = calloc(1, sizeof *m);
    if (m == NULL)
        return CFA_ERR_NOMEM;
    memcpy(&m->version, buf, sizeof m->version);
    snprintf(m->product, sizeof m->product, "%s", (const char *)buf + sizeof m->version);
    pthread_mutex_lock(&fake_mu);
    fake_loads++;
    pthread_mutex_unlock(&fake_mu);
    *out = m;
    return CFA_OK;
}

void cfa_model_free(cfa_model *m) { free(m); }

/* pool_model_resize reads the resize of a model: the engine's default */
cfa_params cfa_model_params(const cfa_model *m)
{
    (void)m;
    cfa_params p;
    memset(&p, 0, sizeof p);
    p.resize_w = p.resize_h = 256;
    return p;
}

void cfa_result_clear(cfa_result *r)
{
    if (r == NULL)
        return;
    free(r->map);
    free(r->model_map);
    memset(r, 0, sizeof *r);
}

/* red of pixel k in [0, 1], whichever of the two layouts the image has */
static float red(const cfa_image *im, size_t k)
{
    if (im->rgb8 != NULL)
        return im->rgb8[k * 3] / 255.0f;
    return im->rgb != NULL ? im->rgb[k * 3] : 0.0f;
}

static cfa_status fill(const cfa_model *m, const cfa_image *im, int from_red, cfa_result *out)
{
    size_t npx = (size_t)im->width * (size_t)im->height;
    float s = (float)(m->version * 1000 + im->width + (m->product[0] == 'b' ? 100000 : 0));
    memset(out, 0, sizeof *out);
    out->map = malloc(sizeof(float) * npx);
    out->model_map = malloc(sizeof(float) * npx);
    if (out->map == NULL || out->model_map == NULL) {
        cfa_result_clear(out);
        return CFA_ERR_NOMEM;
    }
    float mx = 0;
    for (size_t k = 0; k < npx; k++) {
        out->map[k] = from_red ? s * red(im, k) : s;
        mx = out->map[k] > mx ? out->map[k] : mx;
    }
    memcpy(out->model_map, out->map, sizeof(float) * npx);
    out->width = out->model_width = out->resize_width = im->width;
    out->height = out->model_height = out->resize_height = im->height;
    out->score = mx; /* cfa.h: the map's maximum */
    return CFA_OK;
}

static cfa_status fake_score(const cfa_model *const *models, const cfa_model *one,
                             const cfa_image *images, int n, cfa_result *out)
{
    int products = 0;
    for (int i = 0; i < n; i++) {
        const cfa_model *m = models ? models[i] : one;
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (strcmp((models ? models[j] : one)->product, m->product) == 0)
                seen = 1;
        products += !seen;
    }
    pthread_mutex_lock(&fake_mu);
    fake_score_calls++;
    if (n > fake_max_batch)
        fake_max_batch = n;
    if (products > fake_max_products)
        fake_max_products = products;
    int delay = fake_score_delay_ms, from_red = fake_map_from_red;
    cfa_status fail = fake_fail_status;
    pthread_mutex_unlock(&fake_mu);
    sleep_ms(delay);
    for (int i = 0; i < n; i++)
        if (images[i].width == 7)
            return fail;
    for (int i = 0; i < n; i++) {
        cfa_status st = fill(models ? models[i] : one, &images[i], from_red, &out[i]);
        if (st != CFA_OK) {
            for (int k = 0; k < i; k++)
                cfa_result_clear(&out[k]);
            return st;
        }
    }
    return CFA_OK;
}

cfa_status cfa_score(cfa_backbone *bb, const cfa_model *m, const cfa_image *images, int n,
                     cfa_result *out)
{
    (void)bb;
    return fake_score(NULL, m, images, n, out);
}

cfa_status cfa_score_multi(cfa_backbone *bb, const cfa_model *const *models,
                           const cfa_image *images, int n, cfa_result *out)
{
    (void)bb;
    pthread_mutex_lock(&fake_mu);
    fake_multi_calls++;
    pthread_mutex_unlock(&fake_mu);
    return fake_score(models, NULL, images, n, out);
}

cfa_status cfa_score_tiles(cfa_backbone *bb, const cfa_model *m, const cfa_image *tiles, int n,
                           cfa_result *out)
{
    (void)bb;
    return fake_score(NULL, m, tiles, n, out);
}
