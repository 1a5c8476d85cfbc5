/* fuzz_mask.c - libFuzzer harness for the ROI mask parser (roi.h:
 * roi_mask_decode, what PUT /v1/products/{id}/mask calls) and, on what
 * decodes, the mask applied to a map and the heatmap blanking.
 *
 * Invariants checked: no crash or sanitizer report on any input; a mask
 * decodes only from a PNG within ROI_MASK_MAX_BYTES and the limits, with at
 * least one inspected pixel, counted right, every pixel 0 or 1; applying it
 * makes exactly the uninspected pixels NaN and returns the maximum of the
 * others. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "roi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

/* The mask on a small map of another size: NaN exactly where not inspected. */
static void check_apply(const roi_mask *m)
{
    enum { W = 13, H = 7 };
    float map[W * H];
    float want = 0.0f;
    int any = 0;
    for (int i = 0; i < W * H; i++)
        map[i] = (float)((i * 37) % 101);
    float copy[W * H];
    memcpy(copy, map, sizeof map);
    float got = roi_mask_apply(m, map, W, H);
    for (int i = 0; i < W * H; i++) {
        if (isnan(map[i]))
            continue;
        check(map[i] == copy[i]);
        if (!any || map[i] > want)
            want = map[i];
        any = 1;
    }
    check(got == (any ? want : 0.0f));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    img_limits lim = img_default_limits(); /* no budget */
    lim.max_width = 1024;
    lim.max_height = 1024;
    lim.max_pixels = 256 * 1024;
    lim.min_side = 1;
    roi_mask m;
    img_status is = IMG_OK;
    roi_status rs = roi_mask_decode(data, size, &lim, &m, &is);
    check(roi_status_str(rs) != NULL);
    if (rs != ROI_OK) {
        check(m.px == NULL);
        check((rs == ROI_ERR_DECODE) == (is != IMG_OK));
        return 0;
    }
    img_kind kind;
    check(img_probe(data, size, &kind, NULL, NULL) == IMG_OK && kind == IMG_KIND_PNG);
    check(size <= ROI_MASK_MAX_BYTES && m.width <= 1024 && m.height <= 1024);
    int64_t set = 0;
    for (size_t i = 0; i < (size_t)m.width * (size_t)m.height; i++) {
        check(m.px[i] <= 1);
        set += m.px[i];
    }
    check(set == m.inspected && set > 0);
    check_apply(&m);
    roi_mask_free(&m);
    return 0;
}
