/* thumbnails.c - images for the console: GET
 * /v1/products/{id}/images/{image_id}/thumbnail (a small PNG of a training
 * image) and GET /v1/inspections/{id}/image (the image as it was inspected).
 *
 * A thumbnail is a function of the image's bytes, and the image id is their
 * SHA-256, so it never changes: the ETag is the id, browsers keep it for a
 * day without asking, and the daemon keeps the newest in memory (a page of
 * 200 thumbnails is decoded once, not at every visit of the page). */
#define _GNU_SOURCE
#include "api_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base_alloc.h"
#include "image.h"

#define THUMB_SIDE 160               /* longest side, pixels                  */
#define THUMB_SLOTS 512              /* thumbnails kept in memory             */
#define THUMB_CACHE_BYTES (24u << 20) /* and at most this many bytes of them   */

typedef struct {
    char key[2 * ROUTE_PARAM_MAX + 2]; /* product/sha; "" = free slot */
    void *png;
    size_t len;
    uint64_t used; /* clock of the last hit, for eviction */
} thumb_slot;

static struct {
    pthread_mutex_t mu;
    thumb_slot slot[THUMB_SLOTS];
    size_t bytes;
    uint64_t clock;
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* A copy of the cached PNG of key, or NULL. */
static void *cache_get(const char *key, size_t *len)
{
    void *copy = NULL;
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < THUMB_SLOTS; i++) {
        thumb_slot *s = &cache.slot[i];
        if (s->key[0] != '\0' && strcmp(s->key, key) == 0) {
            s->used = ++cache.clock;
            copy = xmalloc(s->len);
            memcpy(copy, s->png, s->len);
            *len = s->len;
            break;
        }
    }
    pthread_mutex_unlock(&cache.mu);
    return copy;
}

static void slot_drop(thumb_slot *s)
{
    cache.bytes -= s->len;
    free(s->png);
    memset(s, 0, sizeof *s);
}

/* Keeps a copy, evicting the least recently used until it fits. */
static void cache_put(const char *key, const void *png, size_t len)
{
    if (len > THUMB_CACHE_BYTES / 8)
        return;
    pthread_mutex_lock(&cache.mu);
    for (;;) {
        thumb_slot *free_slot = NULL, *oldest = NULL;
        for (size_t i = 0; i < THUMB_SLOTS; i++) {
            thumb_slot *s = &cache.slot[i];
            if (s->key[0] == '\0')
                free_slot = free_slot ? free_slot : s;
            else if (oldest == NULL || s->used < oldest->used)
                oldest = s;
        }
        if (free_slot != NULL && cache.bytes + len <= THUMB_CACHE_BYTES) {
            snprintf(free_slot->key, sizeof free_slot->key, "%s", key);
            free_slot->png = xmalloc(len);
            memcpy(free_slot->png, png, len);
            free_slot->len = len;
            free_slot->used = ++cache.clock;
            cache.bytes += len;
            break;
        }
        if (oldest == NULL)
            break;
        slot_drop(oldest);
    }
    pthread_mutex_unlock(&cache.mu);
}

/* The 8-bit RGB pixel (x, y) of a decoded image, whichever form it is in. */
static void pixel(const img_rgbf *im, int x, int y, unsigned acc[3])
{
    size_t o = ((size_t)y * (size_t)im->width + (size_t)x) * 3;
    for (int c = 0; c < 3; c++)
        acc[c] += im->rgb8 != NULL ? im->rgb8[o + c] : (unsigned)(im->rgb[o + c] * 255.0f + 0.5f);
}

/* Box-filters im down to at most THUMB_SIDE on its longest side. */
static uint8_t *shrink(const img_rgbf *im, int *tw, int *th)
{
    int side = im->width > im->height ? im->width : im->height;
    int w = side > THUMB_SIDE ? (int)((int64_t)im->width * THUMB_SIDE / side) : im->width;
    int h = side > THUMB_SIDE ? (int)((int64_t)im->height * THUMB_SIDE / side) : im->height;
    w = w < 1 ? 1 : w;
    h = h < 1 ? 1 : h;
    uint8_t *out = xmalloc((size_t)w * (size_t)h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int x0 = (int)((int64_t)x * im->width / w), x1 = (int)((int64_t)(x + 1) * im->width / w);
            int y0 = (int)((int64_t)y * im->height / h), y1 = (int)((int64_t)(y + 1) * im->height / h);
            unsigned acc[3] = {0, 0, 0}, n = 0;
            for (int yy = y0; yy < y1; yy++)
                for (int xx = x0; xx < x1; xx++, n++)
                    pixel(im, xx, yy, acc);
            for (int c = 0; c < 3; c++)
                out[((size_t)y * w + x) * 3 + c] = (uint8_t)(n ? acc[c] / n : 0);
        }
    *tw = w;
    *th = h;
    return out;
}

/* Decodes the stored image (a JPEG at a reduced DCT scale: a thumbnail
 * needs no more) and encodes its thumbnail. */
static img_status thumb_make(hreq *r, const char *path, void **png, size_t *len)
{
    img_limits lim = img_default_limits();
    lim.max_pixels = (size_t)r->ctx->cfg->max_pixels;
    lim.budget = r->ctx->pixels;
    lim.budget_wait_ms = r->ctx->cfg->pixel_wait_ms;
    lim.fit_w = lim.fit_h = THUMB_SIDE;
    img_rgbf im;
    img_status s = img_load_file_ex(path, &lim, IMG_DECODE_8BIT, &im);
    if (s != IMG_OK)
        return s;
    int w, h;
    uint8_t *rgb = shrink(&im, &w, &h);
    img_rgbf_free(&im);
    s = png_encode_rgb8(rgb, w, h, png, len);
    free(rgb);
    return s;
}

static enum MHD_Result reply_cached_png(hreq *r, void *png, size_t len, const char *etag)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, png, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(png);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "image/png");
    MHD_add_response_header(resp, "ETag", etag);
    /* private: behind a key; immutable: the id is the hash of the bytes */
    MHD_add_response_header(resp, "Cache-Control", "private, max-age=86400, immutable");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(r->con, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_not_modified(hreq *r, const char *etag)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "ETag", etag);
    MHD_add_response_header(resp, "Cache-Control", "private, max-age=86400, immutable");
    r->status = 304;
    enum MHD_Result ret = MHD_queue_response(r->con, 304, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result h_image_thumbnail(hreq *r)
{
    const char *product = r->params[0], *sha = r->params[1];
    if (!store_valid_sha256(sha))
        return reply_error(r, 404, "not_found", "no such image: %s", sha);
    store_image_t im;
    memset(&im, 0, sizeof im);
    store_status ss = store_image_get(r->ctx->st, product, sha, &im);
    if (ss != STORE_OK)
        return store_fail(r, ss, "image", sha);
    char etag[ROUTE_PARAM_MAX + 24], key[sizeof cache.slot[0].key], path[CFG_PATH_MAX + 256];
    snprintf(etag, sizeof etag, "\"t%d-%s\"", THUMB_SIDE, sha);
    const char *inm = req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm != NULL && strstr(inm, etag) != NULL)
        return reply_not_modified(r, etag);
    snprintf(key, sizeof key, "%s/%s", product, sha);
    size_t len = 0;
    void *png = cache_get(key, &len);
    if (png != NULL)
        return reply_cached_png(r, png, len, etag);
    ss = store_image_path(r->ctx->st, product, sha, im.ext, path, sizeof path);
    if (ss != STORE_OK)
        return store_fail(r, ss, "image", sha);
    img_status is = thumb_make(r, path, &png, &len);
    if (is != IMG_OK)
        return codec_fail(r, is, "thumbnail: ");
    cache_put(key, png, len);
    return reply_cached_png(r, png, len, etag);
}

/* The stored input of an inspection ("<id>.input", render.h), with the
 * type its magic bytes say. */
enum MHD_Result h_inspection_image(hreq *r)
{
    void *data = NULL;
    size_t len = 0;
    store_status ss = store_inspection_file_read(r->ctx->st, r->params[0], "input", &data, &len);
    if (ss == STORE_ERR_NOT_FOUND) {
        store_inspection_t in;
        memset(&in, 0, sizeof in);
        if (store_inspection_get(r->ctx->st, r->params[0], &in) == STORE_OK) {
            store_inspection_clear(&in);
            return reply_error(r, 404, "image_not_kept",
                               "inspection %s kept no image (stored without images or pruned by retention)",
                               r->params[0]);
        }
        return reply_error(r, 404, "not_found", "no such inspection: %s", r->params[0]);
    }
    if (ss != STORE_OK)
        return store_fail(r, ss, "inspection", r->params[0]);
    img_kind kind = IMG_KIND_UNKNOWN;
    img_probe(data, len, &kind, NULL, NULL);
    if (kind == IMG_KIND_UNKNOWN) {
        free(data);
        return reply_error(r, 500, "internal_error", "inspection %s: the kept image is not JPEG or PNG",
                           r->params[0]);
    }
    return reply_bytes(r, 200, kind == IMG_KIND_JPEG ? "image/jpeg" : "image/png", data, len);
}
