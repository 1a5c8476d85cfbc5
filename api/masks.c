/* masks.c - /v1/products/{id}/mask: a product's ROI mask (issue 13; roi.h
 * says what a mask is). PUT stores a PNG for the next training, GET gives it
 * back, DELETE removes it; the models already trained keep theirs. */
#define _GNU_SOURCE
#include "api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roi.h"

/* A mask is scaled to each image: only a mask of an image's shape (2%)
 * keeps its holes where the operator drew them. 1 when the product has no
 * image yet or one has the mask's shape; 0 otherwise, *iw x *ih one of them. */
static int shape_fits(hreq *r, int mw, int mh, int *iw, int *ih)
{
    store_image_t *imgs = NULL;
    size_t n = 0;
    char next[STORE_SHA256_HEX];
    if (store_image_list(r->ctx->st, r->params[0], 100, NULL, &imgs, &n, next) != STORE_OK)
        return 1; /* the images' sizes are a courtesy check, not the store's */
    int fits = n == 0;
    for (size_t i = 0; i < n && !fits; i++) {
        double a = (double)mw * imgs[i].height, b = (double)mh * imgs[i].width;
        fits = a <= b * 1.02 && b <= a * 1.02;
    }
    if (n > 0) {
        *iw = imgs[0].width;
        *ih = imgs[0].height;
    }
    store_images_free(imgs, n);
    return fits;
}

/* Decodes the body as a mask; on failure replies and returns -1. */
static int mask_check(hreq *r, roi_mask *m, enum MHD_Result *ret)
{
    img_limits lim = img_default_limits();
    img_status is = IMG_OK;
    lim.max_pixels = (size_t)r->ctx->cfg->max_pixels;
    lim.min_side = 1; /* a 1 x 1 mask is a valid (if dull) mask */
    lim.budget = r->ctx->pixels;
    lim.budget_wait_ms = r->ctx->cfg->pixel_wait_ms;
    roi_status rs = roi_mask_decode(r->body, r->len, &lim, m, &is);
    if (rs == ROI_OK)
        return 0;
    if (rs == ROI_ERR_NOT_PNG)
        *ret = reply_error(r, 415, "unsupported_media_type", "%s", roi_status_str(rs));
    else if (rs == ROI_ERR_TOO_BIG)
        *ret = reply_error(r, 413, "mask_too_large", "%s", roi_status_str(rs));
    else if (rs == ROI_ERR_EMPTY)
        *ret = reply_error(r, 422, "empty_mask", "%s", roi_status_str(rs));
    else
        *ret = codec_fail(r, is, "mask: ");
    return -1;
}

static json_t *mask_json(const store_mask_t *m, int64_t inspected)
{
    json_t *o = json_pack("{s:s,s:i,s:i,s:I}", "sha256", m->sha256, "width", m->width, "height",
                          m->height, "bytes", (json_int_t)m->bytes);
    char when[STORE_TIME_LEN];
    store_time_format(m->created_at, when);
    json_object_set_new(o, "created_at", json_string(when));
    if (inspected >= 0)
        json_object_set_new(o, "inspected_fraction",
                            json_real((double)inspected / ((double)m->width * m->height)));
    return o;
}

enum MHD_Result h_mask_put(hreq *r)
{
    char ct[128];
    enum MHD_Result ret;
    store_product_t p;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    store_product_clear(&p);
    req_content_type(r, ct, sizeof ct);
    if (strcmp(ct, "image/png") != 0)
        return reply_error(r, 415, "unsupported_media_type",
                           "send the mask as image/png, not %s", ct[0] ? ct : "no Content-Type");
    if (r->len == 0)
        return reply_error(r, 400, "empty_body", "the request has no mask");
    roi_mask m;
    if (mask_check(r, &m, &ret) != 0)
        return ret;
    int iw = 0, ih = 0;
    int64_t inspected = m.inspected;
    int mw = m.width, mh = m.height;
    roi_mask_free(&m);
    if (!shape_fits(r, mw, mh, &iw, &ih))
        return reply_error(r, 422, "mask_shape",
                           "a %d x %d mask does not have the shape of the product's images "
                           "(e.g. %d x %d): it would be stretched; send one of their size",
                           mw, mh, iw, ih);
    store_mask_t sm;
    store_event_t ev;
    event_fill_row(r, &ev, "mask.set", r->params[0], NULL, event_mask);
    store_status ss =
        store_mask_put(r->ctx->st, r->params[0], r->body, r->len, mw, mh, &sm, &ev);
    store_event_clear(&ev);
    if (ss != STORE_OK)
        return store_fail(r, ss, "product", r->params[0]);
    return reply_json(r, 200, mask_json(&sm, inspected));
}

enum MHD_Result h_mask_get(hreq *r)
{
    store_mask_t m;
    char path[4096];
    enum MHD_Result ret;
    store_product_t p;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    store_product_clear(&p);
    store_status ss = store_mask_get(r->ctx->st, r->params[0], &m);
    if (ss == STORE_ERR_NOT_FOUND)
        return reply_error(r, 404, "no_mask", "product %s has no ROI mask", r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "mask", r->params[0]);
    FILE *f = NULL;
    if (store_mask_path(r->ctx->st, r->params[0], m.sha256, path, sizeof path) == STORE_OK)
        f = fopen(path, "rb");
    uint8_t *buf = f != NULL && m.bytes > 0 ? malloc((size_t)m.bytes) : NULL;
    size_t got = buf != NULL ? fread(buf, 1, (size_t)m.bytes, f) : 0;
    if (f != NULL)
        fclose(f);
    if (buf == NULL || got != (size_t)m.bytes) {
        free(buf);
        return reply_error(r, 500, "io_error", "the mask file of %s cannot be read", r->params[0]);
    }
    return reply_bytes(r, 200, "image/png", buf, got);
}

enum MHD_Result h_mask_delete(hreq *r)
{
    enum MHD_Result ret;
    store_product_t p;
    if (path_product(r, &p, &ret) != 0)
        return ret;
    store_product_clear(&p);
    store_event_t ev;
    event_fill(r, &ev, "mask.removed", r->params[0], NULL, NULL);
    ev.before_fn = event_mask;
    store_status ss = store_mask_delete(r->ctx->st, r->params[0], &ev);
    store_event_clear(&ev);
    if (ss == STORE_ERR_NOT_FOUND)
        return reply_error(r, 404, "no_mask", "product %s has no ROI mask", r->params[0]);
    if (ss != STORE_OK)
        return store_fail(r, ss, "mask", r->params[0]);
    return reply_empty(r, 204);
}
