/* images.c - /v1/products/{id}/images: upload (one image or multipart), list,
 * delete. */
#define _GNU_SOURCE
#include "api_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "sha256.h"

#define MAX_UPLOAD_PARTS 256

typedef struct upload {
    const uint8_t *data;
    size_t len;
    int w, h;
    const char *ext;
    uint8_t digest[SHA256_DIGEST_LEN];
} upload;

/* An earlier part with the same bytes (so the same image), or NULL: a
 * multipart of 32 copies of one image is validated once. */
static const upload *same_bytes(const upload *done, int n, const upload *u)
{
    for (int i = 0; i < n; i++)
        if (done[i].len == u->len && memcmp(done[i].digest, u->digest, sizeof u->digest) == 0)
            return &done[i];
    return NULL;
}

/* Validates one image (ups[k]), unless one of ups[0..k) has the same bytes;
 * on failure replies and returns -1. */
static int check_image(hreq *r, const uint8_t *data, size_t len, int part, upload *ups, int k)
{
    upload *u = &ups[k];
    u->data = data;
    u->len = len;
    sha256(data, len, u->digest);
    const upload *seen = same_bytes(ups, k, u);
    if (seen != NULL) {
        u->w = seen->w;
        u->h = seen->h;
        u->ext = seen->ext;
        return 0;
    }
    img_kind kind = IMG_KIND_UNKNOWN;
    img_limits lim = img_default_limits();
    char where[48] = "";
    if (part >= 0)
        snprintf(where, sizeof where, "part %d: ", part + 1);
    lim.max_pixels = (size_t)r->ctx->cfg->max_pixels;
    lim.min_side = r->ctx->cfg->min_side;
    lim.budget = r->ctx->pixels;
    lim.budget_wait_ms = r->ctx->cfg->pixel_wait_ms;
    /* decoded once, never to floats: a PNG a row at a time, a JPEG at 1/8
     * scale; the training decode's checks without the frame (image.h) */
    img_status st = img_validate(data, len, &lim, &kind, &u->w, &u->h);
    if (st != IMG_OK) {
        codec_fail(r, st, where);
        return -1;
    }
    u->ext = kind == IMG_KIND_PNG ? "png" : "jpg";
    return 0;
}

int is_image_type(const char *ct)
{
    return strcmp(ct, "image/jpeg") == 0 || strcmp(ct, "image/png") == 0 ||
           strcmp(ct, "image/jpg") == 0;
}

enum MHD_Result h_image_upload(hreq *r)
{
    char ct[128];
    upload *ups = NULL;
    mp_part *parts = NULL;
    int n = 0;
    enum MHD_Result ret;
    store_product_t p;
    /* a repeat under an Idempotency-Key gets the first 201 (line.c) */
    if (line_idem_begin(r, 0, NULL, &ret) != 0 || path_product(r, &p, &ret) != 0)
        return ret;
    int64_t have = p.image_count;
    store_product_clear(&p);
    req_content_type(r, ct, sizeof ct);
    if (is_image_type(ct)) {
        /* as POST /inspect answers it: the type is checked first, then that
         * there is something of that type (docs/API.md, empty bodies) */
        if (r->len == 0)
            return reply_error(r, 400, "empty_body", "the request has no image");
        ups = calloc(1, sizeof *ups);
        if (ups == NULL)
            return reply_error(r, 503, "out_of_memory", "out of memory");
        if (check_image(r, r->body, r->len, -1, ups, 0) != 0) {
            free(ups);
            return MHD_YES;
        }
        n = 1;
    } else if (strcmp(ct, "multipart/form-data") == 0) {
        char boundary[80];
        if (mp_boundary(req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), boundary,
                        sizeof boundary) != 0)
            return reply_error(r, 400, "malformed_multipart",
                               "multipart/form-data without a valid boundary");
        parts = calloc(MAX_UPLOAD_PARTS, sizeof *parts);
        ups = calloc(MAX_UPLOAD_PARTS, sizeof *ups);
        if (parts == NULL || ups == NULL) {
            ret = reply_error(r, 503, "out_of_memory", "out of memory");
            goto out;
        }
        mp_status ms = mp_parse(r->body, r->len, boundary, parts, MAX_UPLOAD_PARTS, &n);
        if (ms == MP_ERR_TOO_MANY) {
            ret = reply_error(r, 413, "too_many_parts", "at most %d images per request",
                              MAX_UPLOAD_PARTS);
            goto out;
        }
        if (ms != MP_OK) {
            ret = reply_error(r, 400, "malformed_multipart", "malformed multipart/form-data body");
            goto out;
        }
        int k = 0;
        for (int i = 0; i < n; i++) {
            /* plain form fields (no filename, text type) are skipped */
            if (parts[i].filename[0] == '\0' &&
                (parts[i].content_type[0] == '\0' ||
                 strncmp(parts[i].content_type, "text/", 5) == 0))
                continue;
            if (parts[i].content_type[0] != '\0' && !is_image_type(parts[i].content_type) &&
                strcmp(parts[i].content_type, "application/octet-stream") != 0) {
                ret = reply_error(r, 415, "unsupported_media_type",
                                  "part %d: %s is not image/jpeg or image/png", i + 1,
                                  parts[i].content_type);
                goto out;
            }
            if (check_image(r, parts[i].data, parts[i].len, i, ups, k) != 0) {
                ret = MHD_YES;
                goto out;
            }
            k++;
        }
        n = k;
        if (n == 0) {
            ret = reply_error(r, 400, "no_images", "the multipart body holds no image part");
            goto out;
        }
    } else {
        return reply_error(r, 415, "unsupported_media_type",
                           "send image/jpeg, image/png or multipart/form-data, not %s",
                           ct[0] ? ct : "no Content-Type");
    }
    /* checked before storing anything, so a refused upload stores nothing;
     * counted conservatively (re-sent duplicates count as new here) */
    if (have + n > r->ctx->cfg->max_images) {
        ret = reply_error(r, 409, "too_many_images",
                          "product %s holds %lld image(s); %d more would pass the limit of %lld",
                          r->params[0], (long long)have, n, (long long)r->ctx->cfg->max_images);
        goto out;
    }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        store_image_t im;
        int created = 0;
        memset(&im, 0, sizeof im);
        /* one image.added per new image, in its row's transaction: the
         * parts stored before a failed one keep their events */
        store_event_t ev;
        event_fill_row(r, &ev, "image.added", r->params[0], NULL, event_after_image);
        store_status ss = store_image_put(r->ctx->st, r->params[0], ups[i].data, ups[i].len,
                                          ups[i].w, ups[i].h, ups[i].ext, &im, &created, &ev);
        store_event_clear(&ev);
        if (ss != STORE_OK) {
            json_decref(arr);
            ret = store_fail(r, ss, "product", r->params[0]);
            goto out;
        }
        json_array_append_new(arr, json_pack("{s:s,s:i,s:i,s:b}", "id", im.sha256, "width",
                                             im.width, "height", im.height, "created",
                                             created));
    }
    ret = reply_json(r, 201, json_pack("{s:o}", "images", arr));
out:
    free(parts);
    free(ups);
    return ret;
}

enum MHD_Result h_image_list(hreq *r)
{
    size_t limit, n = 0;
    store_image_t *arr = NULL;
    char next[STORE_SHA256_HEX] = "";
    const char *after;
    if (query_page(r, store_valid_sha256, &limit, &after) != 0)
        return MHD_YES;
    store_status ss = store_image_list(r->ctx->st, r->params[0], limit, after, &arr, &n, next);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:i,s:i,s:I,s:s,s:o}", "id", arr[i].sha256,
                                           "width", arr[i].width, "height", arr[i].height,
                                           "bytes", (json_int_t)arr[i].bytes, "format",
                                           arr[i].ext, "created_at",
                                           time_json(arr[i].created_at)));
    store_images_free(arr, n);
    return reply_list(r, "images", a, next);
}

enum MHD_Result h_image_delete(hreq *r)
{
    if (!store_valid_sha256(r->params[1]))
        return reply_error(r, 404, "not_found", "no such image: %s", r->params[1]);
    store_event_t ev;
    event_fill(r, &ev, "image.removed", r->params[0], json_pack("{s:s}", "image", r->params[1]),
               NULL);
    store_status ss = store_image_delete(r->ctx->st, r->params[0], r->params[1], &ev);
    store_event_clear(&ev);
    if (ss != STORE_OK)
        return store_fail(r, ss, "image", r->params[1]);
    return reply_empty(r, 204);
}
