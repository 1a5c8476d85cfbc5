/*
 * image.h - decoding of client images (JPEG, PNG) and PNG encoding.
 *
 * Basic usage:
 *
 *     img_limits lim = img_default_limits();
 *     img_rgbf im;
 *     img_status s = img_decode(body, body_len, &lim, &im);
 *     if (s != IMG_OK)
 *         fprintf(stderr, "%s: %s\n", img_status_code(s), img_status_str(s));
 *     ... im.width x im.height, im.rgb interleaved RGB in [0, 1] ...
 *     img_rgbf_free(&im);
 *
 * Every function here is reentrant and keeps no global state: call it from
 * any number of threads at once. Input bytes are untrusted: any byte string
 * gives a status, never a crash, and the dimensions are checked against the
 * limits from the header, before any pixel buffer is allocated (a 100 byte
 * file claiming 100000 x 100000 pixels is refused with IMG_ERR_TOO_LARGE).
 * What a status means to an HTTP client is api/errors.c's business.
 */
#ifndef CFA_IMAGE_H
#define CFA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: name, value, a stable snake_case name of the status (logs,
 * tests), message. IMG_OK is 0; values are fixed, new codes are appended. */
#define IMG_STATUS_TABLE(X)                                                        \
    X(IMG_OK, 0, "ok", "ok")                                                       \
    X(IMG_ERR_UNSUPPORTED, 1, "unsupported_media_type", "not a JPEG or PNG image") \
    X(IMG_ERR_CORRUPT, 2, "corrupt_image", "image data is corrupt")                \
    X(IMG_ERR_TRUNCATED, 3, "truncated_image", "image data is truncated")          \
    X(IMG_ERR_TOO_LARGE, 4, "image_too_large", "image dimensions exceed the limits") \
    X(IMG_ERR_TOO_SMALL, 5, "image_too_small", "image is too small")               \
    X(IMG_ERR_NOMEM, 6, "out_of_memory", "out of memory")                          \
    X(IMG_ERR_IO, 7, "io_error", "file could not be read")                         \
    X(IMG_ERR_INVALID_ARG, 8, "invalid_argument", "invalid argument")             \
    X(IMG_ERR_BUSY, 9, "overloaded", "too many decoded pixels in flight; retry later")

typedef enum {
#define IMG_X_ENUM(name, value, code, msg) name = value,
    IMG_STATUS_TABLE(IMG_X_ENUM)
#undef IMG_X_ENUM
    IMG_STATUS_COUNT = 10 /* one past the largest value */
} img_status;

/* Static strings for a status; never NULL. Unknown values map to
 * "unknown status" / "internal_error". */
const char *img_status_str(img_status s);
const char *img_status_code(img_status s);

typedef enum {
    IMG_KIND_UNKNOWN = 0,
    IMG_KIND_JPEG = 1,
    IMG_KIND_PNG = 2
} img_kind;

struct img_budget; /* budget.h */

/* Limits applied from the header, before decoding. Get the defaults and
 * adjust. An image is refused as IMG_ERR_TOO_LARGE when width > max_width,
 * height > max_height or width * height > max_pixels, and as
 * IMG_ERR_TOO_SMALL when either side is below min_side.
 * With a budget, img_decode_ex() and img_validate() charge it, from the
 * header and before any pixel buffer, with the bytes they allocate plus,
 * when the output is 8-bit, extra_bpp bytes a pixel that the caller will
 * allocate for it (the engine's float copy of bytes: 12; floats are used as
 * they are); a charge over the whole budget is
 * IMG_ERR_TOO_LARGE, one that does not fit within budget_wait_ms
 * IMG_ERR_BUSY. The decoded image holds its charge until img_rgbf_free(). */
typedef struct {
    int max_width;
    int max_height;
    size_t max_pixels;
    int min_side;
    struct img_budget *budget; /* NULL: no budget */
    int budget_wait_ms;
    unsigned extra_bpp;
    /* > 0: the consumer shrinks the image to fit_w x fit_h anyway (the
     * model's resize), so img_decode_ex() decodes a JPEG at the smallest
     * DCT scale whose sides are still >= these (img_jpeg_fit); the budget
     * is charged for that size. PNGs are always decoded whole. 0: whole. */
    int fit_w, fit_h;
} img_limits;

/* 16384 x 16384 sides, 64 Mpx, 8 px minimum side, no budget. */
img_limits img_default_limits(void);

/* Decoded image, interleaved RGB, row-major, width x height x 3 (the layout
 * of cfa_image in core/include/cfa.h). Exactly one of the two is set:
 *   rgb   floats in [0, 1] (img_decode(), and 16-bit PNGs always);
 *   rgb8  bytes, v standing for v / 255 (img_decode_ex() with
 *         IMG_DECODE_8BIT, for 8-bit sources): a quarter of the memory, and
 *         the engine widens them to the same floats img_decode() gives.
 * The struct owns its pixels; release with img_rgbf_free(). */
typedef struct {
    int width;
    int height;
    float *rgb;
    uint8_t *rgb8;
    struct img_budget *budget; /* what img_rgbf_free gives `charged` back to */
    size_t charged;
    /* the image's own size, as its header says: width x height unless the
     * decode was reduced (img_limits.fit_w) */
    int src_width, src_height;
} img_rgbf;

/* The size a w x h JPEG decodes to for img_limits.fit_w x fit_h: the
 * smallest of TurboJPEG's scales n/8 <= 1 whose sides (rounded up) are both
 * >= the fit, so a later resize only shrinks; w x h itself when no scale
 * below 1 fits or fit_w / fit_h is <= 0. */
void img_jpeg_fit(int w, int h, int fit_w, int fit_h, int *sw /* OUT */, int *sh /* OUT */);

/* Frees the pixels, gives back their budget and zeroes *im. NULL and an already freed image are no-ops. */
void img_rgbf_free(img_rgbf *im);

/* Sniffs the magic bytes and reads the dimensions from the header without
 * decoding pixels and without applying any limits. kind, w, h may be NULL.
 * Returns IMG_ERR_UNSUPPORTED for anything that is neither JPEG nor PNG
 * (with *kind = IMG_KIND_UNKNOWN). */
img_status img_probe(const void *buf, size_t len, img_kind *kind /* OUT */,
                     int *w /* OUT */, int *h /* OUT */);

/* Decodes a JPEG (gray, YCbCr or RGB; CMYK/YCCK read the Adobe way,
 * R = C * K / 255 on the stored values) or a PNG (1 to 16 bits, gray,
 * gray+alpha, RGB, RGBA, palette; alpha, tRNS and gAMA ignored, 16-bit
 * scaled as v / 65535 exactly). A JPEG that runs out of data is
 * IMG_ERR_TRUNCATED (libjpeg would pad it with gray); other libjpeg warnings
 * are tolerated. A PNG must reach a complete IEND. limits NULL means
 * img_default_limits(). On IMG_OK *out owns its pixels; on failure *out is
 * zeroed. EXIF orientation is not applied. */
img_status img_decode(const void *buf, size_t len, const img_limits *limits,
                      img_rgbf *out /* OUT */);

/* img_decode() with flags:
 *   IMG_DECODE_8BIT  keep 8-bit sources (every JPEG, PNGs of up to 8 bits)
 *                    as bytes in out->rgb8, out->rgb NULL; 16-bit PNGs are
 *                    still floats in out->rgb. The bytes are exactly the
 *                    floats of img_decode() times 255. */
#define IMG_DECODE_8BIT 1u
img_status img_decode_ex(const void *buf, size_t len, const img_limits *limits,
                         unsigned flags, img_rgbf *out /* OUT */);

/* Checks that the whole image decodes (what img_decode_ex() with
 * IMG_DECODE_8BIT would accept and refuse) without holding the frame: a PNG
 * is decoded row by row into one row, a JPEG at 1/8 scale (every entropy-coded
 * byte is still decoded; only the inverse DCT is reduced). Charges the budget
 * of limits for those buffers while it runs. kind, w, h may be NULL. */
img_status img_validate(const void *buf, size_t len, const img_limits *limits,
                        img_kind *kind /* OUT */, int *w /* OUT */, int *h /* OUT */);

/* Decodes any PNG or JPEG to 8-bit luma (ground-truth masks): gray images
 * as stored (16-bit keeps the high byte), colour as
 * (299 R + 587 G + 114 B) / 1000 rounded. On IMG_OK *px is w * h bytes owned
 * by the caller, released with free(); on failure *px is NULL. */
img_status img_decode_gray8(const void *buf, size_t len, const img_limits *limits,
                            int *w /* OUT */, int *h /* OUT */,
                            uint8_t **px /* OUT */);

/* Reads a whole file into memory (at most max_bytes, else IMG_ERR_TOO_LARGE).
 * On IMG_OK *buf is owned by the caller, released with free(). */
img_status img_read_file(const char *path, size_t max_bytes, void **buf /* OUT */,
                         size_t *len /* OUT */);

/* img_read_file() (up to 1 GiB) followed by img_decode() /
 * img_decode_gray8(). */
img_status img_load_file(const char *path, const img_limits *limits,
                         img_rgbf *out /* OUT */);
img_status img_load_file_ex(const char *path, const img_limits *limits, unsigned flags,
                            img_rgbf *out /* OUT */);
img_status img_load_file_gray8(const char *path, const img_limits *limits,
                               int *w /* OUT */, int *h /* OUT */,
                               uint8_t **px /* OUT */);

/* ------------------------------------------------------------------------ */
/* PNG encoding (png_encode.c). Non-interlaced, zlib level 3. On IMG_OK *out
 * is a complete PNG file of *len bytes owned by the caller, released with
 * free(); on failure *out is NULL. Returns IMG_ERR_INVALID_ARG for NULL
 * pointers or a side outside 1 .. 2^31-1, IMG_ERR_NOMEM otherwise. */

/* rgb: w * h * 3 bytes, row-major. */
img_status png_encode_rgb8(const uint8_t *rgb, int w, int h, void **out /* OUT */,
                           size_t *len /* OUT */);

/* px: w * h samples in host byte order; written as a 16-bit grayscale PNG
 * (big-endian in the file, as PNG requires). */
img_status png_encode_gray16(const uint16_t *px, int w, int h, void **out /* OUT */,
                             size_t *len /* OUT */);

/* px: w * h bytes; an 8-bit grayscale PNG. */
img_status png_encode_gray8(const uint8_t *px, int w, int h, void **out /* OUT */,
                            size_t *len /* OUT */);

#ifdef __cplusplus
}
#endif

#endif
