/* fuzz_image.c - libFuzzer harness for the image decoders (server/image.c)
 * and, on what decodes, the PNG encoder (server/png_encode.c).
 *
 * Invariants checked: no crash or sanitizer report on any input; decoded
 * dimensions within the limits and equal to what img_probe() read; every
 * float in [0, 1]; the 8-bit decode (IMG_DECODE_8BIT) agrees with the float
 * one (same status and size, bytes whose v / 255.0f are its floats); an 8-bit
 * gray image survives a PNG encode/decode round trip unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small limits keep each run fast; min_side 1 lets tiny images through. */
static img_limits fuzz_limits(void)
{
    img_limits l = img_default_limits(); /* no budget */
    l.max_width = 1024;
    l.max_height = 1024;
    l.max_pixels = 256 * 1024;
    l.min_side = 1;
    return l;
}

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    img_limits lim = fuzz_limits();
    img_kind kind;
    int pw = 0, ph = 0;
    img_status ps = img_probe(data, size, &kind, &pw, &ph);
    check(img_status_str(ps) != NULL);

    img_rgbf im, im8;
    img_status s = img_decode(data, size, &lim, &im);
    /* the 8-bit decode agrees with the float one: same status, same size,
     * bytes whose v / 255.0f are its floats (16-bit PNGs: the floats) */
    img_status s8 = img_decode_ex(data, size, &lim, IMG_DECODE_8BIT, &im8);
    check(s8 == s);
    /* the upload's check without the frame agrees with both */
    int vw = 0, vh = 0;
    check(img_validate(data, size, &lim, NULL, &vw, &vh) == s);
    check(s != IMG_OK || (vw == im.width && vh == im.height));
    if (s == IMG_OK) {
        check(ps == IMG_OK && im.width == pw && im.height == ph);
        check(im.width <= lim.max_width && im.height <= lim.max_height);
        check(im.rgb8 == NULL && im8.width == im.width && im8.height == im.height);
        check((im8.rgb == NULL) != (im8.rgb8 == NULL));
        size_t n = (size_t)im.width * (size_t)im.height * 3;
        for (size_t i = 0; i < n; i++) {
            check(im.rgb[i] >= 0.0f && im.rgb[i] <= 1.0f);
            check((im8.rgb8 != NULL ? (float)im8.rgb8[i] / 255.0f : im8.rgb[i]) == im.rgb[i]);
        }
        img_rgbf_free(&im);
        img_rgbf_free(&im8);
    } else {
        check(im.rgb == NULL && im8.rgb == NULL && im8.rgb8 == NULL);
    }

    int w, h;
    uint8_t *g8;
    s = img_decode_gray8(data, size, &lim, &w, &h, &g8);
    if (s == IMG_OK) {
        check(w == pw && h == ph);
        if ((size_t)w * (size_t)h <= 4096) {
            void *png;
            size_t len;
            check(png_encode_gray8(g8, w, h, &png, &len) == IMG_OK);
            int w2, h2;
            uint8_t *back;
            check(img_decode_gray8(png, len, &lim, &w2, &h2, &back) == IMG_OK);
            check(w2 == w && h2 == h && memcmp(back, g8, (size_t)w * (size_t)h) == 0);
            free(back);
            free(png);
        }
        free(g8);
    } else {
        check(g8 == NULL);
    }
    return 0;
}
