/* mask.c - ROI masks (roi.h): decoding a mask PNG and applying it to an
 * anomaly map. */
#include "roi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *roi_status_str(roi_status s)
{
    switch (s) {
    case ROI_OK: return "ok";
    case ROI_ERR_NOT_PNG: return "the mask must be a PNG image";
    case ROI_ERR_TOO_BIG: return "the mask PNG is larger than 8 MiB";
    case ROI_ERR_DECODE: return "the mask PNG could not be decoded";
    case ROI_ERR_EMPTY: return "the mask inspects no pixel (every pixel is zero)";
    }
    return "unknown status";
}

void roi_mask_free(roi_mask *m)
{
    if (m == NULL)
        return;
    free(m->px);
    memset(m, 0, sizeof *m);
}

/* 1 where any channel of the decoded pixel is non-zero. */
static int64_t mask_from_pixels(const img_rgbf *im, uint8_t *px)
{
    size_t n = (size_t)im->width * (size_t)im->height;
    int64_t set = 0;
    for (size_t i = 0; i < n; i++) {
        int on = im->rgb8 != NULL
                     ? (im->rgb8[3 * i] | im->rgb8[3 * i + 1] | im->rgb8[3 * i + 2]) != 0
                     : (im->rgb[3 * i] > 0.0f || im->rgb[3 * i + 1] > 0.0f ||
                        im->rgb[3 * i + 2] > 0.0f);
        px[i] = (uint8_t)on;
        set += on;
    }
    return set;
}

roi_status roi_mask_decode(const void *buf, size_t len, const img_limits *lim, roi_mask *out,
                           img_status *img)
{
    img_kind kind = IMG_KIND_UNKNOWN;
    img_status is = IMG_OK;
    memset(out, 0, sizeof *out);
    if (img != NULL)
        *img = IMG_OK;
    if (buf == NULL || img_probe(buf, len, &kind, NULL, NULL) != IMG_OK || kind != IMG_KIND_PNG)
        return ROI_ERR_NOT_PNG;
    if (len > ROI_MASK_MAX_BYTES)
        return ROI_ERR_TOO_BIG;
    img_rgbf im;
    is = img_decode_ex(buf, len, lim, IMG_DECODE_8BIT, &im);
    if (is == IMG_OK) {
        out->px = malloc((size_t)im.width * (size_t)im.height);
        if (out->px == NULL) {
            img_rgbf_free(&im);
            is = IMG_ERR_NOMEM;
        }
    }
    if (is != IMG_OK) {
        if (img != NULL)
            *img = is;
        return ROI_ERR_DECODE;
    }
    out->width = im.width;
    out->height = im.height;
    out->inspected = mask_from_pixels(&im, out->px);
    img_rgbf_free(&im);
    if (out->inspected == 0) {
        roi_mask_free(out);
        return ROI_ERR_EMPTY;
    }
    return ROI_OK;
}

float roi_mask_apply(const roi_mask *m, float *map, int w, int h)
{
    float max = 0.0f;
    int any = 0;
    for (int y = 0; y < h; y++) {
        /* nearest neighbour: the mask pixel under this pixel's centre */
        const uint8_t *row = NULL;
        if (m != NULL)
            row = m->px + (size_t)(((int64_t)y * m->height + m->height / 2) / h) * m->width;
        float *mrow = map + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            if (row != NULL && !row[((int64_t)x * m->width + m->width / 2) / w]) {
                mrow[x] = NAN;
                continue;
            }
            if (!isnan(mrow[x]) && (!any || mrow[x] > max)) {
                max = mrow[x];
                any = 1;
            }
        }
    }
    return max;
}

roi_status roi_mask_load_file(const char *path, const img_limits *lim, roi_mask *out,
                              img_status *img)
{
    memset(out, 0, sizeof *out);
    if (img != NULL)
        *img = IMG_ERR_IO;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ROI_ERR_DECODE;
    uint8_t *buf = malloc(ROI_MASK_MAX_BYTES + 1);
    size_t len = buf != NULL ? fread(buf, 1, ROI_MASK_MAX_BYTES + 1, f) : 0;
    int bad = buf == NULL || ferror(f);
    fclose(f);
    roi_status rs = bad ? ROI_ERR_DECODE : roi_mask_decode(buf, len, lim, out, img);
    free(buf);
    return rs;
}
