/* roi_inspect.c - the ROI mask and the tiles of one inspection
 * (roi_inspect.h). */
#define _GNU_SOURCE
#include "roi_inspect.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_alloc.h"

/* Masks decoded and kept: a product has one current mask, and older models
 * of it may name a few more. */
#define ROI_CACHE_SLOTS 16
/* What a model's figures say of its tiles and mask, by (product, version):
 * a version's figures never change and its number is never given out again
 * (store_model_insert), so the request path reads and parses them once. */
#define ROI_MODEL_SLOTS 32

typedef struct model_roi {
    char product[STORE_PRODUCT_ID_MAX];
    int64_t version;            /* 0: empty slot                           */
    int tile, overlap;
    int border;                 /* -1: figures from before border was kept  */
    char sha256[STORE_SHA256_HEX]; /* "" when the model has no mask       */
} model_roi;

typedef struct mask_entry {
    char product[STORE_PRODUCT_ID_MAX];
    char sha256[STORE_SHA256_HEX];
    roi_mask mask;
    int refs;                   /* the cache's own, plus one per inspection */
} mask_entry;

struct roi_cache {
    pthread_mutex_t mu;
    mask_entry *slot[ROI_CACHE_SLOTS];
    int next;                   /* the slot replaced next (round robin)     */
    model_roi model[ROI_MODEL_SLOTS];
    int model_next;
};

roi_cache *roi_cache_new(void)
{
    roi_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

/* Drops one reference; the last frees. Under c->mu. */
static void entry_unref(mask_entry *e)
{
    if (e != NULL && --e->refs == 0) {
        roi_mask_free(&e->mask);
        free(e);
    }
}

void roi_cache_free(roi_cache *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < ROI_CACHE_SLOTS; i++)
        entry_unref(c->slot[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The cached entry of (product, sha256) with a reference taken, or NULL. */
static mask_entry *cache_find(roi_cache *c, const char *product, const char *sha)
{
    mask_entry *hit = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < ROI_CACHE_SLOTS && hit == NULL; i++)
        if (c->slot[i] != NULL && strcmp(c->slot[i]->sha256, sha) == 0 &&
            strcmp(c->slot[i]->product, product) == 0)
            hit = c->slot[i];
    if (hit != NULL)
        hit->refs++;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* Loads the mask file of (product, sha256) into a new entry, cached, with
 * the caller's reference taken; NULL with err set. */
static mask_entry *cache_load(roi_cache *c, store_t *st, const char *product, const char *sha,
                              char *err, size_t errlen)
{
    char path[4096];
    mask_entry *e = xcalloc(1, sizeof *e);
    img_limits lim = img_default_limits();
    img_status is = IMG_OK;
    roi_status rs = ROI_ERR_DECODE;
    if (store_mask_path(st, product, sha, path, sizeof path) == STORE_OK)
        rs = roi_mask_load_file(path, &lim, &e->mask, &is);
    if (rs != ROI_OK) {
        snprintf(err, errlen, "the model's ROI mask %.12s cannot be read: %s (%s)", sha,
                 roi_status_str(rs), img_status_str(is));
        free(e);
        return NULL;
    }
    snprintf(e->product, sizeof e->product, "%s", product);
    snprintf(e->sha256, sizeof e->sha256, "%s", sha);
    e->refs = 2;
    pthread_mutex_lock(&c->mu);
    entry_unref(c->slot[c->next]);
    c->slot[c->next] = e;
    c->next = (c->next + 1) % ROI_CACHE_SLOTS;
    pthread_mutex_unlock(&c->mu);
    return e;
}

/* The tiles and mask of product@version into *m: from the cache, else
 * from the model's figures (then cached). 0, or -1 when the model has no
 * figures (no such model). */
static int model_roi_get(roi_cache *c, store_t *st, const char *product, int64_t version,
                         model_roi *m)
{
    int hit = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < ROI_MODEL_SLOTS && !hit; i++)
        if (c->model[i].version == version && strcmp(c->model[i].product, product) == 0) {
            *m = c->model[i];
            hit = 1;
        }
    pthread_mutex_unlock(&c->mu);
    if (hit)
        return 0;
    char *fig = NULL;
    if (store_model_figures(st, product, version, &fig) != STORE_OK)
        return -1;
    json_t *j = json_loads(fig, 0, NULL);
    free(fig);
    memset(m, 0, sizeof *m);
    snprintf(m->product, sizeof m->product, "%s", product);
    m->version = version;
    m->tile = (int)json_integer_value(json_object_get(j, "tile"));
    m->overlap = (int)json_integer_value(json_object_get(j, "tile_overlap"));
    json_t *border = json_object_get(j, "border");
    m->border = json_is_integer(border) ? (int)json_integer_value(border) : -1;
    const char *sha = json_string_value(json_object_get(j, "mask_sha256"));
    if (sha != NULL && store_valid_sha256(sha))
        snprintf(m->sha256, sizeof m->sha256, "%s", sha);
    json_decref(j);
    pthread_mutex_lock(&c->mu);
    c->model[c->model_next] = *m;
    c->model_next = (c->model_next + 1) % ROI_MODEL_SLOTS;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int roi_inspect_begin(roi_cache *c, store_t *st, const char *product, int64_t version,
                      roi_inspect *ri, char *err, size_t errlen)
{
    memset(ri, 0, sizeof *ri);
    ri->border = -1;
    model_roi m;
    /* no figures (no such model): the pool says why it cannot score */
    if (model_roi_get(c, st, product, version, &m) != 0)
        return 0;
    ri->tile = m.tile;
    ri->overlap = m.overlap;
    ri->border = m.border;
    const char *sha = m.sha256;
    int rc = 0;
    if (sha[0] != '\0') {
        mask_entry *e = cache_find(c, product, sha);
        if (e == NULL)
            e = cache_load(c, st, product, sha, err, errlen);
        ri->mask_ref = e;
        ri->mask = e != NULL ? &e->mask : NULL;
        rc = e != NULL ? 0 : -1;
    }
    return rc;
}

int roi_inspect_tiles(roi_inspect *ri, const img_rgbf *im, pool_req *pr, char *err,
                      size_t errlen)
{
    if (ri->tile <= 0)
        return 0;
    ri->tiles = xcalloc(ROI_MAX_TILES, sizeof *ri->tiles);
    int n = roi_tile_grid(im->width, im->height, ri->tile, ri->overlap, ri->tiles, ROI_MAX_TILES);
    if (n < 1) {
        snprintf(err, errlen, "a %d x %d image needs more than %d tiles of %d pixels", im->width,
                 im->height, ROI_MAX_TILES, ri->tile);
        return -1;
    }
    size_t px = (size_t)ri->tiles[0].w * (size_t)ri->tiles[0].h * 3;
    size_t bytes = im->rgb8 != NULL ? 1 : sizeof(float);
    uint8_t *buf = malloc(px * bytes * (size_t)n);
    ri->tile_imgs = calloc((size_t)n, sizeof *ri->tile_imgs);
    ri->tile_results = calloc((size_t)n, sizeof *ri->tile_results);
    ri->tile_px = buf;
    if (buf == NULL || ri->tile_imgs == NULL || ri->tile_results == NULL) {
        snprintf(err, errlen, "no memory for %d tiles", n);
        return -1;
    }
    for (int k = 0; k < n; k++) {
        uint8_t *dst = buf + (size_t)k * px * bytes;
        roi_tile_cut(im->rgb8, im->rgb, im->width, &ri->tiles[k], dst, (float *)(void *)dst);
        ri->tile_imgs[k] = (cfa_image){ri->tiles[k].w, ri->tiles[k].h,
                                       im->rgb8 != NULL ? NULL : (const float *)(void *)dst,
                                       im->rgb8 != NULL ? dst : NULL};
    }
    ri->n_tiles = n;
    pr->tiles = ri->tile_imgs;
    pr->n_tiles = n;
    pr->tile_results = ri->tile_results;
    return 0;
}

/* r from the stitched maximum of the tiles' maps. */
static int stitch(roi_inspect *ri, const img_rgbf *im, cfa_result *r)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    float *map = malloc(n * sizeof *map);
    if (map == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        map[i] = -INFINITY;
    for (int k = 0; k < ri->n_tiles; k++)
        roi_tile_stitch(map, im->width, &ri->tiles[k], ri->tile_results[k].map);
    memset(r, 0, sizeof *r);
    r->map = map;
    r->width = im->width;
    r->height = im->height;
    return 0;
}

int roi_inspect_finish(roi_inspect *ri, const img_rgbf *im, cfa_result *r)
{
    if (ri->n_tiles > 0 && stitch(ri, im, r) != 0)
        return -1;
    if (ri->n_tiles == 0 && ri->mask == NULL)
        return 0;
    r->score = roi_mask_apply(ri->mask, r->map, r->width, r->height);
    /* the stored map is this one (not the engine's small model map): a
     * render later draws what was decided, the mask's holes included */
    size_t bytes = (size_t)r->width * (size_t)r->height * sizeof(float);
    float *mm = malloc(bytes);
    if (mm == NULL)
        return -1;
    memcpy(mm, r->map, bytes);
    free(r->model_map);
    r->model_map = mm;
    r->model_width = r->resize_width = r->width;
    r->model_height = r->resize_height = r->height;
    return 0;
}

void roi_inspect_clear(roi_cache *c, roi_inspect *ri)
{
    if (ri->mask_ref != NULL) {
        pthread_mutex_lock(&c->mu);
        entry_unref(ri->mask_ref);
        pthread_mutex_unlock(&c->mu);
    }
    for (int k = 0; k < ri->n_tiles; k++)
        cfa_result_clear(&ri->tile_results[k]);
    free(ri->tile_results);
    free(ri->tile_imgs);
    free(ri->tile_px);
    free(ri->tiles);
    memset(ri, 0, sizeof *ri);
}
