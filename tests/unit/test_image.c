/* test_image.c - decoding (server/image.c) and PNG encoding (server/png_encode.c).
 *
 * Every test image is made here with libspng or TurboJPEG; the real data set
 * (magnetic_tile_mini, 8-bit gray PNGs) is read from $CFA_TEST_DATA_DIR or
 * argv[1] and skipped when absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <spng.h>
#include <turbojpeg.h>

#include "budget.h"
#include "image.h"

static const char *data_dir;

/* ------------------------------------------------------------------------ */
/* Making test files */

static uint8_t *make_png(int w, int h, int color_type, int depth, int interlace,
                         const void *px, size_t px_len, const struct spng_plte *plte,
                         size_t *len)
{
    struct spng_ihdr ihdr = {.width = (uint32_t)w,
                             .height = (uint32_t)h,
                             .bit_depth = (uint8_t)depth,
                             .color_type = (uint8_t)color_type,
                             .interlace_method = (uint8_t)interlace};
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    int e;
    assert_non_null(ctx);
    assert_int_equal(spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1), 0);
    assert_int_equal(spng_set_ihdr(ctx, &ihdr), 0);
    if (plte != NULL)
        assert_int_equal(spng_set_plte(ctx, (struct spng_plte *)plte), 0);
    assert_int_equal(spng_encode_image(ctx, px, px_len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE), 0);
    uint8_t *out = spng_get_png_buffer(ctx, len, &e);
    assert_int_equal(e, 0);
    assert_non_null(out);
    spng_ctx_free(ctx);
    return out;
}

static uint8_t *make_jpeg(const uint8_t *px, int w, int h, int pf, int subsamp, size_t *len)
{
    tjhandle tj = tjInitCompress();
    unsigned char *jb = NULL;
    unsigned long jl = 0;
    assert_non_null(tj);
    assert_int_equal(tjCompress2(tj, px, w, 0, h, pf, &jb, &jl, subsamp, 95, 0), 0);
    uint8_t *out = malloc(jl);
    assert_non_null(out);
    memcpy(out, jb, jl);
    *len = jl;
    tjFree(jb);
    tjDestroy(tj);
    return out;
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Rewrites the IHDR dimensions of a PNG and fixes its CRC. */
static void png_set_dims(uint8_t *png, uint32_t w, uint32_t h)
{
    put_be32(png + 16, w);
    put_be32(png + 20, h);
    put_be32(png + 29, crc32_of(png + 12, 17));
}

/* Rewrites the dimensions in the SOF of a baseline JPEG. */
static void jpeg_set_dims(uint8_t *jpg, size_t len, uint16_t w, uint16_t h)
{
    for (size_t i = 2; i + 9 < len; i++) {
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            jpg[i + 5] = (uint8_t)(h >> 8);
            jpg[i + 6] = (uint8_t)h;
            jpg[i + 7] = (uint8_t)(w >> 8);
            jpg[i + 8] = (uint8_t)w;
            return;
        }
    }
    fail_msg("no SOF0 marker");
}

static void gradient_rgb8(uint8_t *px, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = px + 3 * ((size_t)y * w + x);
            p[0] = (uint8_t)(x * 255 / (w - 1));
            p[1] = (uint8_t)(y * 255 / (h - 1));
            p[2] = (uint8_t)((x + y) * 127 / (w + h - 2));
        }
}

/* ------------------------------------------------------------------------ */

static void test_status_table(void **state)
{
    (void)state;
    for (int s = 0; s < IMG_STATUS_COUNT; s++) {
        assert_non_null(img_status_str((img_status)s));
        assert_non_null(img_status_code((img_status)s));
    }
    assert_int_equal(IMG_OK, 0);
    assert_string_equal(img_status_str(IMG_OK), "ok");
    /* values are fixed (stored in logs, compared across versions) */
    assert_int_equal(IMG_ERR_UNSUPPORTED, 1);
    assert_int_equal(IMG_ERR_TOO_LARGE, 4);
    assert_int_equal(IMG_ERR_INVALID_ARG, 8);
    assert_int_equal(IMG_STATUS_COUNT, 10);
    assert_string_equal(img_status_code(IMG_ERR_CORRUPT), "corrupt_image");
    assert_string_equal(img_status_str((img_status)999), "unknown status");
    assert_string_equal(img_status_code((img_status)-1), "internal_error");
    img_limits l = img_default_limits();
    assert_int_equal(l.max_width, 16384);
    assert_int_equal(l.min_side, 8);
}

static void test_probe(void **state)
{
    (void)state;
    uint8_t px[16 * 12 * 3];
    size_t plen, jlen;
    gradient_rgb8(px, 16, 12);
    uint8_t *png = make_png(16, 12, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, px, sizeof px, NULL, &plen);
    uint8_t *jpg = make_jpeg(px, 16, 12, TJPF_RGB, TJSAMP_444, &jlen);
    img_kind k;
    int w, h;
    assert_int_equal(img_probe(png, plen, &k, &w, &h), IMG_OK);
    assert_int_equal(k, IMG_KIND_PNG);
    assert_int_equal(w, 16);
    assert_int_equal(h, 12);
    assert_int_equal(img_probe(jpg, jlen, &k, &w, &h), IMG_OK);
    assert_int_equal(k, IMG_KIND_JPEG);
    assert_int_equal(w, 16);
    assert_int_equal(h, 12);
    assert_int_equal(img_probe("GIF89a", 6, &k, &w, &h), IMG_ERR_UNSUPPORTED);
    assert_int_equal(k, IMG_KIND_UNKNOWN);
    assert_int_equal(img_probe("", 0, NULL, NULL, NULL), IMG_ERR_UNSUPPORTED);
    assert_int_equal(img_probe(NULL, 10, &k, NULL, NULL), IMG_ERR_UNSUPPORTED);
    assert_int_equal(img_probe(png, 20, &k, &w, &h), IMG_ERR_TRUNCATED);
    assert_int_equal(k, IMG_KIND_PNG);
    /* probe applies no limits */
    png_set_dims(png, 100000, 100000);
    assert_int_equal(img_probe(png, plen, &k, &w, &h), IMG_OK);
    assert_int_equal(w, 100000);
    free(png);
    free(jpg);
}

static void test_png_rgb8_exact(void **state)
{
    (void)state;
    enum { W = 16, H = 12 };
    uint8_t px[W * H * 3];
    size_t len;
    gradient_rgb8(px, W, H);
    for (int interlace = 0; interlace <= 1; interlace++) {
        uint8_t *png =
            make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 8, interlace, px, sizeof px, NULL, &len);
        img_rgbf im;
        assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
        assert_int_equal(im.width, W);
        assert_int_equal(im.height, H);
        for (size_t i = 0; i < sizeof px; i++)
            assert_true(im.rgb[i] == (float)px[i] / 255.0f);
        img_rgbf_free(&im);
        assert_null(im.rgb);
        img_rgbf_free(&im);
        free(png);
    }
    img_rgbf_free(NULL);
}

static void test_png_gray_alpha_rgba(void **state)
{
    (void)state;
    enum { W = 9, H = 10 };
    uint8_t g[W * H], ga[W * H * 2], rgba[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        g[i] = (uint8_t)(i * 2);
        ga[2 * i] = (uint8_t)(i * 2);
        ga[2 * i + 1] = (uint8_t)(255 - i);
        for (int c = 0; c < 3; c++)
            rgba[4 * i + c] = (uint8_t)(i + 50 * c);
        rgba[4 * i + 3] = (uint8_t)(i & 1 ? 0 : 128);
    }
    size_t len;
    img_rgbf im;

    uint8_t *png = make_png(W, H, SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, g, sizeof g, NULL, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++) {
        assert_true(im.rgb[3 * i] == (float)g[i] / 255.0f);
        assert_true(im.rgb[3 * i + 1] == im.rgb[3 * i]);
        assert_true(im.rgb[3 * i + 2] == im.rgb[3 * i]);
    }
    img_rgbf_free(&im);
    free(png);

    png = make_png(W, H, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, 0, ga, sizeof ga, NULL, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++)
            assert_true(im.rgb[3 * i + c] == (float)ga[2 * i] / 255.0f);
    img_rgbf_free(&im);
    free(png);

    png = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, 0, rgba, sizeof rgba, NULL, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++)
            assert_true(im.rgb[3 * i + c] == (float)rgba[4 * i + c] / 255.0f);
    img_rgbf_free(&im);
    free(png);
}

static void test_png_16bit(void **state)
{
    (void)state;
    enum { W = 8, H = 8 };
    /* libspng's encoder takes 16-bit SPNG_FMT_PNG samples in host order */
    uint16_t v[W * H * 3];
    for (int i = 0; i < W * H * 3; i++)
        v[i] = (uint16_t)(i * 1021 + (i == 5 ? 65535 - 5 * 1021 : 0));
    size_t len;
    img_rgbf im;
    uint8_t *png = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 16, 0, v, sizeof v, NULL, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H * 3; i++)
        assert_true(im.rgb[i] == (float)((double)v[i] / 65535.0));
    assert_true(im.rgb[5] == 1.0f);
    img_rgbf_free(&im);
    free(png);

    /* 16-bit gray, first W * H samples */
    png = make_png(W, H, SPNG_COLOR_TYPE_GRAYSCALE, 16, 1, v, W * H * 2, NULL, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++)
            assert_true(im.rgb[3 * i + c] == (float)((double)v[i] / 65535.0));
    img_rgbf_free(&im);
    int w, h;
    uint8_t *g8;
    assert_int_equal(img_decode_gray8(png, len, NULL, &w, &h, &g8), IMG_OK);
    for (int i = 0; i < W * H; i++)
        assert_int_equal(g8[i], v[i] >> 8);
    free(g8);
    free(png);
}

static void test_png_palette_and_low_depth(void **state)
{
    (void)state;
    enum { W = 10, H = 8 };
    struct spng_plte plte = {.n_entries = 3};
    plte.entries[0] = (struct spng_plte_entry){255, 0, 0, 255};
    plte.entries[1] = (struct spng_plte_entry){0, 128, 0, 255};
    plte.entries[2] = (struct spng_plte_entry){10, 20, 30, 255};
    uint8_t idx[W * H];
    for (int i = 0; i < W * H; i++)
        idx[i] = (uint8_t)(i % 3);
    size_t len;
    img_rgbf im;
    uint8_t *png = make_png(W, H, SPNG_COLOR_TYPE_INDEXED, 8, 0, idx, sizeof idx, &plte, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++) {
        const struct spng_plte_entry *e = &plte.entries[i % 3];
        assert_true(im.rgb[3 * i] == (float)e->red / 255.0f);
        assert_true(im.rgb[3 * i + 1] == (float)e->green / 255.0f);
        assert_true(im.rgb[3 * i + 2] == (float)e->blue / 255.0f);
    }
    img_rgbf_free(&im);
    int w, h;
    uint8_t *g8;
    assert_int_equal(img_decode_gray8(png, len, NULL, &w, &h, &g8), IMG_OK);
    assert_int_equal(g8[0], (299 * 255 + 500) / 1000);
    assert_int_equal(g8[1], (587 * 128 + 500) / 1000);
    free(g8);
    free(png);

    /* 1-bit gray, 10 px a row = 2 bytes: a mask */
    uint8_t bits[H * 2];
    for (int y = 0; y < H; y++) {
        bits[2 * y] = y & 1 ? 0xf0 : 0x0f;
        bits[2 * y + 1] = 0x40;
    }
    png = make_png(W, H, SPNG_COLOR_TYPE_GRAYSCALE, 1, 0, bits, sizeof bits, NULL, &len);
    assert_int_equal(img_decode_gray8(png, len, NULL, &w, &h, &g8), IMG_OK);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int bit = (bits[2 * y + x / 8] >> (7 - x % 8)) & 1;
            assert_int_equal(g8[y * W + x], bit ? 255 : 0);
        }
    free(g8);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    assert_true(im.rgb[0] == 0.0f);
    assert_true(im.rgb[3 * 4] == 1.0f);
    img_rgbf_free(&im);
    free(png);
}

static void test_jpeg(void **state)
{
    (void)state;
    enum { W = 32, H = 24 };
    uint8_t px[W * H * 3], g[W * H], cmyk[W * H * 4];
    size_t len;
    img_rgbf im;
    gradient_rgb8(px, W, H);
    for (int i = 0; i < W * H; i++) {
        g[i] = px[3 * i];
        cmyk[4 * i] = 200;
        cmyk[4 * i + 1] = 100;
        cmyk[4 * i + 2] = 50;
        cmyk[4 * i + 3] = 255;
    }

    uint8_t *jpg = make_jpeg(px, W, H, TJPF_RGB, TJSAMP_444, &len);
    assert_int_equal(img_decode(jpg, len, NULL, &im), IMG_OK);
    assert_int_equal(im.width, W);
    assert_int_equal(im.height, H);
    for (int i = 0; i < W * H * 3; i++)
        assert_true(fabsf(im.rgb[i] - (float)px[i] / 255.0f) < 8.0f / 255.0f);
    img_rgbf_free(&im);
    free(jpg);

    jpg = make_jpeg(g, W, H, TJPF_GRAY, TJSAMP_GRAY, &len);
    assert_int_equal(img_decode(jpg, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++) {
        assert_true(im.rgb[3 * i] == im.rgb[3 * i + 1]);
        assert_true(im.rgb[3 * i] == im.rgb[3 * i + 2]);
        assert_true(fabsf(im.rgb[3 * i] - (float)g[i] / 255.0f) < 8.0f / 255.0f);
    }
    img_rgbf_free(&im);
    int w, h;
    uint8_t *g8;
    assert_int_equal(img_decode_gray8(jpg, len, NULL, &w, &h, &g8), IMG_OK);
    assert_int_equal(w, W);
    for (int i = 0; i < W * H; i++)
        assert_true(abs((int)g8[i] - (int)g[i]) <= 8);
    free(g8);
    free(jpg);

    /* CMYK (stored as YCCK): R = C * K / 255 */
    jpg = make_jpeg(cmyk, W, H, TJPF_CMYK, TJSAMP_444, &len);
    assert_int_equal(img_decode(jpg, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++) {
        assert_true(fabsf(im.rgb[3 * i] - 200.0f / 255.0f) < 4.0f / 255.0f);
        assert_true(fabsf(im.rgb[3 * i + 1] - 100.0f / 255.0f) < 4.0f / 255.0f);
        assert_true(fabsf(im.rgb[3 * i + 2] - 50.0f / 255.0f) < 4.0f / 255.0f);
    }
    img_rgbf_free(&im);
    assert_int_equal(img_decode_gray8(jpg, len, NULL, &w, &h, &g8), IMG_OK);
    assert_true(abs((int)g8[0] - (299 * 200 + 587 * 100 + 114 * 50 + 500) / 1000) <= 3);
    free(g8);
    free(jpg);

    /* Bytes after EOI (some cameras pad files) do not make a file truncated */
    jpg = make_jpeg(px, W, H, TJPF_RGB, TJSAMP_444, &len);
    uint8_t *padded = malloc(len + 16);
    memcpy(padded, jpg, len);
    memset(padded + len, 0, 16);
    assert_int_equal(img_decode(padded, len + 16, NULL, &im), IMG_OK);
    img_rgbf_free(&im);
    free(padded);
    free(jpg);

    /* 4:2:0 subsampled, odd size */
    uint8_t odd[13 * 11 * 3];
    gradient_rgb8(odd, 13, 11);
    jpg = make_jpeg(odd, 13, 11, TJPF_RGB, TJSAMP_420, &len);
    assert_int_equal(img_decode(jpg, len, NULL, &im), IMG_OK);
    assert_int_equal(im.width, 13);
    assert_int_equal(im.height, 11);
    img_rgbf_free(&im);
    free(jpg);
}

/* Every proper prefix of a valid file must be refused, never crash. */
/* img_decode_ex(IMG_DECODE_8BIT) against img_decode() on the same bytes:
 * same status and size; 8-bit sources as bytes whose v / 255.0f are the
 * floats, 16-bit PNGs as the same floats. */
static void check_8bit_matches(const uint8_t *b, size_t len, int want_bytes)
{
    img_rgbf f, e;
    img_status sf = img_decode(b, len, NULL, &f);
    img_status se = img_decode_ex(b, len, NULL, IMG_DECODE_8BIT, &e);
    assert_int_equal(se, sf);
    /* the upload's check without the frame agrees with the decode */
    int vw = -1, vh = -1;
    assert_int_equal(img_validate(b, len, NULL, NULL, &vw, &vh), se);
    assert_int_equal(vw, se == IMG_OK ? e.width : 0);
    assert_int_equal(vh, se == IMG_OK ? e.height : 0);
    if (sf != IMG_OK) {
        assert_null(e.rgb);
        assert_null(e.rgb8);
        return;
    }
    assert_null(f.rgb8);
    assert_int_equal(e.width, f.width);
    assert_int_equal(e.height, f.height);
    assert_int_equal(e.rgb8 != NULL, want_bytes);
    assert_int_equal(e.rgb != NULL, !want_bytes);
    size_t n = (size_t)f.width * f.height * 3;
    for (size_t i = 0; i < n; i++) {
        float v = e.rgb8 != NULL ? (float)e.rgb8[i] / 255.0f : e.rgb[i];
        assert_true(v == f.rgb[i]);
    }
    img_rgbf_free(&e);
    assert_null(e.rgb8);
    img_rgbf_free(&f);
}

static void test_decode_8bit(void **state)
{
    (void)state;
    enum { W = 19, H = 13 };
    uint8_t px[W * H * 3], g[W * H], cmyk[W * H * 4];
    uint16_t v16[W * H * 3];
    size_t len;
    gradient_rgb8(px, W, H);
    for (int i = 0; i < W * H; i++) {
        g[i] = px[3 * i + 1];
        for (int c = 0; c < 4; c++)
            cmyk[4 * i + c] = (uint8_t)(px[3 * i + c % 3] ^ (c * 37));
    }
    for (int i = 0; i < W * H * 3; i++) {
        uint16_t v = (uint16_t)(px[i] * 257 + i);
        v16[i] = (uint16_t)((v >> 8) | (v << 8)); /* PNG is big-endian */
    }
    uint8_t *b;
    int subsamps[] = {TJSAMP_444, TJSAMP_420, TJSAMP_422};
    for (int k = 0; k < 3; k++) {
        b = make_jpeg(px, W, H, TJPF_RGB, subsamps[k], &len);
        check_8bit_matches(b, len, 1);
        check_8bit_matches(b, len - len / 3, 1); /* truncated: same status */
        free(b);
    }
    b = make_jpeg(g, W, H, TJPF_GRAY, TJSAMP_GRAY, &len);
    check_8bit_matches(b, len, 1);
    free(b);
    b = make_jpeg(cmyk, W, H, TJPF_CMYK, TJSAMP_444, &len);
    check_8bit_matches(b, len, 1);
    free(b);
    for (int interlace = 0; interlace <= 1; interlace++) {
        b = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 8, interlace, px, sizeof px, NULL, &len);
        check_8bit_matches(b, len, 1);
        free(b);
    }
    b = make_png(W, H, SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, g, sizeof g, NULL, &len);
    check_8bit_matches(b, len, 1);
    free(b);
    b = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 16, 0, v16, sizeof v16, NULL, &len);
    check_8bit_matches(b, len, 0); /* 16 bits stay floats */
    free(b);
    check_8bit_matches((const uint8_t *)"not an image", 12, 1);
}

/* Found by the fuzzer: a JPEG whose decode hits a fatal error ("Huffman
 * table 0x08 was not defined") after a warning. TurboJPEG still reports a
 * warning, and the pixels were never written: it used to be accepted with
 * whatever the buffer held. */
static void test_jpeg_fatal_after_warning(void **state)
{
    (void)state;
    void *b;
    size_t len;
    img_rgbf im;
    assert_int_equal(img_read_file(CFA_IMAGE_CORPUS "/jpeg_warning_then_fatal.jpg", 1 << 20, &b, &len),
                     IMG_OK);
    img_status vs = img_validate(b, len, NULL, NULL, NULL, NULL);
    assert_true(vs == IMG_ERR_CORRUPT || vs == IMG_ERR_TRUNCATED);
    for (int flags = 0; flags <= 1; flags++) {
        img_status s = img_decode_ex(b, len, NULL, flags ? IMG_DECODE_8BIT : 0, &im);
        assert_true(s == IMG_ERR_CORRUPT || s == IMG_ERR_TRUNCATED);
        assert_null(im.rgb);
        assert_null(im.rgb8);
    }
    /* the same file with its EOI restored: corrupt, not truncated */
    uint8_t *c = malloc(len + 2);
    assert_non_null(c);
    memcpy(c, b, len);
    c[len] = 0xff;
    c[len + 1] = 0xd9;
    assert_int_equal(img_decode(c, len + 2, NULL, &im), IMG_ERR_CORRUPT);
    free(c);
    free(b);
}

/* Every input of the fuzz corpus: img_validate() accepts and refuses
 * exactly what the 8-bit decode does, with the same status. */
static void test_validate_corpus(void **state)
{
    (void)state;
    DIR *d = opendir(CFA_IMAGE_CORPUS);
    assert_non_null(d);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        int pl = snprintf(path, sizeof path, "%s/%s", CFA_IMAGE_CORPUS, e->d_name);
        assert_true(pl > 0 && (size_t)pl < sizeof path);
        void *b;
        size_t len;
        assert_int_equal(img_read_file(path, (size_t)1 << 24, &b, &len), IMG_OK);
        img_rgbf im;
        int w, h;
        img_status want = img_decode_ex(b, len, NULL, IMG_DECODE_8BIT, &im);
        img_status got = img_validate(b, len, NULL, NULL, &w, &h);
        if (got != want)
            fail_msg("%s: validate %s, decode %s", e->d_name, img_status_code(got),
                     img_status_code(want));
        img_rgbf_free(&im);
        free(b);
        count++;
    }
    closedir(d);
    assert_true(count > 0);
}

static void check_prefixes(const uint8_t *file, size_t len)
{
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees overreads */
        assert_non_null(copy);
        memcpy(copy, file, n);
        img_rgbf im;
        int w, h;
        uint8_t *g8;
        img_status s = img_decode(copy, n, NULL, &im);
        if (s == IMG_OK)
            fail_msg("prefix of %zu / %zu bytes decoded", n, len);
        assert_null(im.rgb);
        s = img_decode_gray8(copy, n, NULL, &w, &h, &g8);
        if (s == IMG_OK)
            fail_msg("prefix of %zu / %zu bytes decoded as gray", n, len);
        assert_null(g8);
        if (img_validate(copy, n, NULL, NULL, &w, &h) == IMG_OK)
            fail_msg("prefix of %zu / %zu bytes validated", n, len);
        (void)img_probe(copy, n, NULL, &w, &h);
        free(copy);
    }
}

static void test_truncated(void **state)
{
    (void)state;
    enum { W = 16, H = 16 };
    uint8_t px[W * H * 3];
    size_t len;
    gradient_rgb8(px, W, H);
    uint8_t *png = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, px, sizeof px, NULL, &len);
    check_prefixes(png, len);
    img_rgbf im;
    assert_int_equal(img_decode(png, len - 30, NULL, &im), IMG_ERR_TRUNCATED);
    free(png);
    png = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 8, 1, px, sizeof px, NULL, &len);
    check_prefixes(png, len);
    free(png);
    uint8_t *jpg = make_jpeg(px, W, H, TJPF_RGB, TJSAMP_420, &len);
    check_prefixes(jpg, len);
    assert_int_equal(img_decode(jpg, len - 40, NULL, &im), IMG_ERR_TRUNCATED);
    free(jpg);
}

static void test_corrupt(void **state)
{
    (void)state;
    enum { W = 16, H = 16 };
    uint8_t px[W * H * 3];
    size_t len;
    img_rgbf im;
    gradient_rgb8(px, W, H);
    uint8_t *png = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, px, sizeof px, NULL, &len);
    png[len - 20] ^= 0x55; /* inside the IDAT: CRC mismatch */
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_ERR_CORRUPT);
    png[len - 20] ^= 0x55;
    png[12] = 'X'; /* first chunk is not IHDR */
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_ERR_CORRUPT);
    free(png);

    uint8_t junk[64];
    memset(junk, 0xab, sizeof junk);
    assert_int_equal(img_decode(junk, sizeof junk, NULL, &im), IMG_ERR_UNSUPPORTED);
    junk[0] = 0xff;
    junk[1] = 0xd8;
    junk[2] = 0xff;
    assert_true(img_decode(junk, sizeof junk, NULL, &im) != IMG_OK);
    assert_int_equal(img_decode(NULL, 0, NULL, &im), IMG_ERR_UNSUPPORTED);
    assert_int_equal(img_decode(junk, sizeof junk, NULL, NULL), IMG_ERR_INVALID_ARG);

    /* Deterministic mutations of valid files: any status, no crash (ASan
     * builds make this a real check). */
    uint8_t *jpg = make_jpeg(px, W, H, TJPF_RGB, TJSAMP_420, &len);
    size_t plen;
    png = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, px, sizeof px, NULL, &plen);
    uint32_t seed = 12345;
    for (int round = 0; round < 3000; round++) {
        const uint8_t *src = round & 1 ? png : jpg;
        size_t n = round & 1 ? plen : len;
        uint8_t *m = malloc(n);
        memcpy(m, src, n);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            m[(seed >> 8) % n] = (uint8_t)(seed >> 24);
        }
        uint8_t *g8;
        int w, h;
        if (img_decode(m, n, NULL, &im) == IMG_OK)
            img_rgbf_free(&im);
        if (img_decode_gray8(m, n, NULL, &w, &h, &g8) == IMG_OK)
            free(g8);
        free(m);
    }
    free(jpg);
    free(png);
}

static void test_limits(void **state)
{
    (void)state;
    uint8_t g[64 * 64];
    memset(g, 7, sizeof g);
    size_t len;
    img_rgbf im;
    int w, h;
    uint8_t *g8;

    /* A 100000 x 100000 claim: refused from the header. Allocating first
     * would fail (120 GB) and give IMG_ERR_NOMEM instead. */
    uint8_t *png = make_png(8, 8, SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, g, 64, NULL, &len);
    png_set_dims(png, 100000, 100000);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_ERR_TOO_LARGE);
    assert_int_equal(img_decode_gray8(png, len, NULL, &w, &h, &g8), IMG_ERR_TOO_LARGE);
    png_set_dims(png, 20000, 8);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_ERR_TOO_LARGE);
    png_set_dims(png, 8, 8);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_OK);
    img_rgbf_free(&im);
    img_limits lim = img_default_limits();
    lim.max_pixels = 63;
    assert_int_equal(img_decode(png, len, &lim, &im), IMG_ERR_TOO_LARGE);
    lim.max_pixels = 64;
    assert_int_equal(img_decode(png, len, &lim, &im), IMG_OK);
    img_rgbf_free(&im);
    free(png);

    png = make_png(1, 1, SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, g, 1, NULL, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_ERR_TOO_SMALL);
    assert_int_equal(img_decode_gray8(png, len, NULL, &w, &h, &g8), IMG_ERR_TOO_SMALL);
    free(png);
    png = make_png(64, 7, SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, g, 64 * 7, NULL, &len);
    assert_int_equal(img_decode(png, len, NULL, &im), IMG_ERR_TOO_SMALL);
    free(png);

    uint8_t *jpg = make_jpeg(g, 16, 16, TJPF_GRAY, TJSAMP_GRAY, &len);
    jpeg_set_dims(jpg, len, 60000, 60000);
    assert_int_equal(img_decode(jpg, len, NULL, &im), IMG_ERR_TOO_LARGE);
    assert_int_equal(img_decode_gray8(jpg, len, NULL, &w, &h, &g8), IMG_ERR_TOO_LARGE);
    free(jpg);
    jpg = make_jpeg(g, 4, 4, TJPF_GRAY, TJSAMP_GRAY, &len);
    assert_int_equal(img_decode(jpg, len, NULL, &im), IMG_ERR_TOO_SMALL);
    free(jpg);
}

static void test_png_encode_roundtrip(void **state)
{
    (void)state;
    enum { W = 21, H = 13 };
    uint8_t rgb[W * H * 3], g[W * H];
    uint16_t v[W * H];
    for (int i = 0; i < W * H; i++) {
        rgb[3 * i] = (uint8_t)i;
        rgb[3 * i + 1] = (uint8_t)(i * 7);
        rgb[3 * i + 2] = (uint8_t)(255 - i);
        g[i] = (uint8_t)(i * 3);
        v[i] = (uint16_t)(i * 251 + 3); /* distinct high and low bytes */
    }
    v[0] = 0x1234;
    v[1] = 65535;
    void *out;
    size_t len;
    img_rgbf im;

    assert_int_equal(png_encode_rgb8(rgb, W, H, &out, &len), IMG_OK);
    assert_int_equal(img_decode(out, len, NULL, &im), IMG_OK);
    assert_int_equal(im.width, W);
    assert_int_equal(im.height, H);
    for (int i = 0; i < W * H * 3; i++)
        assert_true(im.rgb[i] == (float)rgb[i] / 255.0f);
    img_rgbf_free(&im);
    free(out);

    assert_int_equal(png_encode_gray8(g, W, H, &out, &len), IMG_OK);
    int w, h;
    uint8_t *g8;
    assert_int_equal(img_decode_gray8(out, len, NULL, &w, &h, &g8), IMG_OK);
    assert_memory_equal(g8, g, sizeof g);
    free(g8);
    free(out);

    assert_int_equal(png_encode_gray16(v, W, H, &out, &len), IMG_OK);
    /* the file must hold big-endian samples: read them raw */
    spng_ctx *ctx = spng_ctx_new(0);
    struct spng_ihdr ihdr;
    assert_int_equal(spng_set_png_buffer(ctx, out, len), 0);
    assert_int_equal(spng_get_ihdr(ctx, &ihdr), 0);
    assert_int_equal(ihdr.bit_depth, 16);
    assert_int_equal(ihdr.color_type, SPNG_COLOR_TYPE_GRAYSCALE);
    uint8_t raw[W * H * 2];
    assert_int_equal(spng_decode_image(ctx, raw, sizeof raw, SPNG_FMT_RAW, 0), 0);
    spng_ctx_free(ctx);
    assert_int_equal(raw[0], 0x12);
    assert_int_equal(raw[1], 0x34);
    for (int i = 0; i < W * H; i++)
        assert_int_equal((raw[2 * i] << 8) | raw[2 * i + 1], v[i]);
    assert_int_equal(img_decode(out, len, NULL, &im), IMG_OK);
    for (int i = 0; i < W * H; i++)
        assert_true(im.rgb[3 * i] == (float)((double)v[i] / 65535.0));
    img_rgbf_free(&im);
    free(out);

    assert_int_equal(png_encode_rgb8(NULL, W, H, &out, &len), IMG_ERR_INVALID_ARG);
    assert_null(out);
    assert_int_equal(png_encode_gray16(v, 0, H, &out, &len), IMG_ERR_INVALID_ARG);
}

static void test_files(void **state)
{
    (void)state;
    img_rgbf im;
    assert_int_equal(img_load_file("/nonexistent/x.png", NULL, &im), IMG_ERR_IO);
    void *buf;
    size_t len;
    char path[] = "/tmp/cfa_test_image_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    uint8_t big[100000];
    memset(big, 1, sizeof big);
    fwrite(big, 1, sizeof big, f);
    fclose(f);
    assert_int_equal(img_read_file(path, sizeof big, &buf, &len), IMG_OK);
    assert_int_equal(len, sizeof big);
    free(buf);
    assert_int_equal(img_read_file(path, sizeof big - 1, &buf, &len), IMG_ERR_TOO_LARGE);
    assert_null(buf);
    assert_int_equal(img_load_file(path, NULL, &im), IMG_ERR_UNSUPPORTED);
    remove(path);
}

/* The real data: 8-bit gray PNGs of many sizes. */
static int check_dir(const char *dir)
{
    DIR *d = opendir(dir);
    int count = 0;
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".png") != 0)
            continue;
        char path[4096];
        int pl = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        assert_true(pl > 0 && (size_t)pl < sizeof path);
        void *buf;
        size_t len;
        assert_int_equal(img_read_file(path, (size_t)1 << 28, &buf, &len), IMG_OK);
        img_kind k;
        int pw, ph;
        assert_int_equal(img_probe(buf, len, &k, &pw, &ph), IMG_OK);
        assert_int_equal(k, IMG_KIND_PNG);
        /* IHDR: 8-bit grayscale */
        assert_int_equal(((uint8_t *)buf)[24], 8);
        assert_int_equal(((uint8_t *)buf)[25], 0);
        img_rgbf im;
        assert_int_equal(img_decode(buf, len, NULL, &im), IMG_OK);
        assert_int_equal(im.width, pw);
        assert_int_equal(im.height, ph);
        int w, h;
        uint8_t *g8;
        assert_int_equal(img_decode_gray8(buf, len, NULL, &w, &h, &g8), IMG_OK);
        assert_int_equal(w, pw);
        assert_int_equal(h, ph);
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            const float *p = im.rgb + 3 * i;
            if (!(p[0] == p[1] && p[1] == p[2] && p[0] == (float)g8[i] / 255.0f))
                fail_msg("%s: pixel %zu not gray", path, i);
        }
        free(g8);
        img_rgbf_free(&im);
        free(buf);
        count++;
    }
    closedir(d);
    return count;
}

/* ------------------------------------------------------------------------ */
/* Reduced-scale JPEG decoding (img_limits.fit_w) */

static void expect_fit(int w, int h, int fw, int fh, int ew, int eh)
{
    int sw = -1, sh = -1;
    img_jpeg_fit(w, h, fw, fh, &sw, &sh);
    if (sw != ew || sh != eh)
        fail_msg("%d x %d to fit %d x %d: %d x %d, expected %d x %d", w, h, fw, fh, sw, sh, ew,
                 eh);
}

static void test_jpeg_fit_choice(void **state)
{
    (void)state;
    /* 1/2 and 1/8 exactly, and one pixel below: sides round up (TJSCALED) */
    expect_fit(512, 512, 256, 256, 256, 256);
    expect_fit(511, 511, 256, 256, 256, 256);
    expect_fit(2048, 2048, 256, 256, 256, 256);
    expect_fit(2047, 2047, 256, 256, 256, 256);
    /* just below a scale's boundary: the next larger n/8 */
    expect_fit(510, 510, 256, 256, 319, 319);   /* 1/2 -> 255 < 256: 5/8 */
    expect_fit(2040, 2040, 256, 256, 510, 510); /* 1/8 -> 255: 1/4 */
    /* both sides must fit: the narrower one decides */
    expect_fit(1024, 300, 256, 256, 896, 263);  /* 7/8 */
    expect_fit(4096, 512, 256, 256, 2048, 256); /* 1/2 */
    expect_fit(1600, 1200, 320, 256, 400, 300); /* 1/4 */
    /* never enlarged, and off without a fit */
    expect_fit(200, 200, 256, 256, 200, 200);
    expect_fit(300, 200, 256, 256, 300, 200);
    expect_fit(2048, 2048, 0, 0, 2048, 2048);
    expect_fit(2048, 2048, 256, 0, 2048, 2048);
    /* every size around the boundaries: the decode is never larger than
     * the image, stays >= the fit, and is 1/8 when 1/8 fits */
    for (int w = 240; w <= 2100; w += 7) {
        for (int f = 200; f <= 260; f += 30) {
            int sw, sh;
            img_jpeg_fit(w, w + 13, f, f, &sw, &sh);
            assert_true(sw <= w && sh <= w + 13);
            if (w >= f) {
                assert_true(sw >= f);
                assert_true(sh >= f);
            }
            if (w >= 8 * f) /* 1/8 fits */
                assert_true(sw <= (w + 7) / 8);
        }
    }
}

/* A 600 x 400 JPEG for a 256 x 256 model decodes at 3/4 (450 x 300: 5/8
 * gives 250 rows), charged for that; the same image as PNG whole. */
static void test_jpeg_fit_decode(void **state)
{
    (void)state;
    enum { W = 600, H = 400 };
    uint8_t *px = malloc((size_t)W * H * 3);
    assert_non_null(px);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++)
                px[((size_t)y * W + x) * 3 + k] = (uint8_t)(x * 150 / W + y * 100 / H + 2 * k);
    size_t jlen, plen;
    uint8_t *jpg = make_jpeg(px, W, H, TJPF_RGB, TJSAMP_444, &jlen);
    uint8_t *png = make_png(W, H, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, px, (size_t)W * H * 3, NULL,
                            &plen);
    img_budget *b = img_budget_new((size_t)64 << 20);
    assert_non_null(b);
    img_limits lim = img_default_limits();
    lim.budget = b;
    lim.extra_bpp = 12;
    lim.fit_w = 256;
    lim.fit_h = 256;

    img_rgbf im, whole;
    assert_int_equal(img_decode_ex(jpg, jlen, &lim, IMG_DECODE_8BIT, &im), IMG_OK);
    assert_int_equal(im.width, 450);
    assert_int_equal(im.height, 300);
    assert_int_equal(im.src_width, W);
    assert_int_equal(im.src_height, H);
    assert_non_null(im.rgb8);
    /* 3 bytes a pixel decoded + the engine's 12, for the reduced size */
    assert_int_equal(im.charged, (size_t)450 * 300 * 15);
    assert_int_equal(img_budget_in_use(b), (size_t)450 * 300 * 15);

    /* the reduced pixels are the whole image's, shrunk: compare the pixel
     * under each reduced one (the gradient is smooth, JPEG q95 close) */
    img_limits off = lim;
    off.fit_w = off.fit_h = 0;
    assert_int_equal(img_decode_ex(jpg, jlen, &off, IMG_DECODE_8BIT, &whole), IMG_OK);
    assert_int_equal(whole.width, W);
    assert_int_equal(whole.src_width, W);
    assert_int_equal(whole.charged, (size_t)W * H * 15);
    long worst = 0;
    for (int y = 4; y < 296; y += 5)
        for (int x = 4; x < 446; x += 5) {
            size_t rx = (size_t)x * W / 450, ry = (size_t)y * H / 300;
            long d = labs((long)im.rgb8[((size_t)y * 450 + x) * 3] -
                          (long)whole.rgb8[(ry * W + rx) * 3]);
            worst = d > worst ? d : worst;
        }
    assert_true(worst <= 8);
    img_rgbf_free(&whole);
    img_rgbf_free(&im);

    /* a PNG is never scaled */
    assert_int_equal(img_decode_ex(png, plen, &lim, IMG_DECODE_8BIT, &im), IMG_OK);
    assert_int_equal(im.width, W);
    assert_int_equal(im.height, H);
    assert_int_equal(im.src_width, W);
    assert_int_equal(im.src_height, H);
    assert_memory_equal(im.rgb8, px, (size_t)W * H * 3);
    img_rgbf_free(&im);
    /* floats too */
    assert_int_equal(img_decode_ex(jpg, jlen, &lim, 0, &im), IMG_OK);
    assert_int_equal(im.width, 450);
    assert_int_equal(im.src_width, W);
    assert_non_null(im.rgb);
    img_rgbf_free(&im);
    assert_int_equal(img_budget_in_use(b), 0);
    img_budget_free(b);
    free(png);
    free(jpg);
    free(px);
}

static void test_real_data(void **state)
{
    (void)state;
    if (data_dir == NULL || data_dir[0] == '\0')
        skip();
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/magnetic_tile_mini/test/good", data_dir);
    DIR *probe = opendir(dir);
    if (probe == NULL)
        skip();
    closedir(probe);
    static const char *sub[] = {"test/good",          "test/crack",         "ground_truth/crack",
                                "ground_truth/break", "ground_truth/fray", "train/good"};
    int total = 0;
    for (size_t i = 0; i < sizeof sub / sizeof *sub; i++) {
        snprintf(dir, sizeof dir, "%s/magnetic_tile_mini/%s", data_dir, sub[i]);
        total += check_dir(dir);
    }
    print_message("decoded %d real PNGs\n", total);
    assert_true(total >= 10);

    /* a mask is 0 / 255 only */
    snprintf(dir, sizeof dir, "%s/magnetic_tile_mini/ground_truth/crack/exp1_num_249594_mask.png",
             data_dir);
    int w, h;
    uint8_t *g8;
    if (img_load_file_gray8(dir, NULL, &w, &h, &g8) == IMG_OK) {
        size_t on = 0;
        for (size_t i = 0; i < (size_t)w * h; i++) {
            assert_true(g8[i] == 0 || g8[i] == 255);
            on += g8[i] != 0;
        }
        assert_true(on > 0);
        free(g8);
    }
}

int main(int argc, char **argv)
{
    data_dir = argc > 1 ? argv[1] : getenv("CFA_TEST_DATA_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_png_rgb8_exact),
        cmocka_unit_test(test_png_gray_alpha_rgba),
        cmocka_unit_test(test_png_16bit),
        cmocka_unit_test(test_png_palette_and_low_depth),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_decode_8bit),
        cmocka_unit_test(test_jpeg_fatal_after_warning),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_validate_corpus),
        cmocka_unit_test(test_png_encode_roundtrip),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_jpeg_fit_choice),
        cmocka_unit_test(test_jpeg_fit_decode),
        cmocka_unit_test(test_real_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
