/*
 * image.c - JPEG (TurboJPEG) and PNG (libspng) decoding of untrusted bytes.
 */
#include "image.h"
#include "budget.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spng.h>
#include <turbojpeg.h>

/* img_load_file*() refuse bigger files. */
#define IMG_FILE_MAX_BYTES ((size_t)1 << 30)
/* Cap on ancillary chunks libspng keeps (text, ICC, EXIF): we use none, and a
 * zTXt chunk can inflate far beyond its size in the file. */
#define IMG_PNG_CACHE_LIMIT ((size_t)4 << 20)

/* Indexed by value; a value without a row has a NULL code. */
static const struct {
    const char *code;
    const char *msg;
} status_info[] = {
#define IMG_X_INFO(name, value, code, msg) [value] = {code, msg},
    IMG_STATUS_TABLE(IMG_X_INFO)
#undef IMG_X_INFO
};
_Static_assert(sizeof status_info / sizeof status_info[0] == IMG_STATUS_COUNT,
               "IMG_STATUS_COUNT must be one past the largest status value");

const char *img_status_str(img_status s)
{
    if ((unsigned)s >= IMG_STATUS_COUNT || status_info[s].msg == NULL)
        return "unknown status";
    return status_info[s].msg;
}

const char *img_status_code(img_status s)
{
    if ((unsigned)s >= IMG_STATUS_COUNT || status_info[s].code == NULL)
        return "internal_error";
    return status_info[s].code;
}

img_limits img_default_limits(void)
{
    img_limits l;
    l.max_width = 16384;
    l.max_height = 16384;
    l.max_pixels = (size_t)64 << 20;
    l.min_side = 8;
    l.budget = NULL;
    l.budget_wait_ms = 0;
    l.extra_bpp = 0;
    l.fit_w = 0;
    l.fit_h = 0;
    return l;
}

void img_rgbf_free(img_rgbf *im)
{
    if (im == NULL)
        return;
    free(im->rgb);
    free(im->rgb8);
    img_budget_release(im->budget, im->charged);
    memset(im, 0, sizeof *im);
}

/* Takes from lim's budget (none: nothing to take) the `bytes` of the output
 * plus the larger of what the decoder holds while it runs (`transient`,
 * freed before it returns) and what the caller will allocate for n 8-bit
 * pixels afterwards (extra_bpp; n is 0 when the output is floats already);
 * *charged is what to give back. */
static img_status charge(const img_limits *lim, size_t n, size_t bytes, size_t transient,
                         size_t *charged)
{
    *charged = 0;
    if (lim->budget == NULL)
        return IMG_OK;
    /* n <= SIZE_MAX / 12 (check_dims), bytes and transient <= 12 n: no
     * overflow on a 64-bit size_t for any sane extra_bpp */
    size_t later = n * (size_t)lim->extra_bpp;
    size_t c = bytes + (transient > later ? transient : later);
    img_status s = img_budget_acquire(lim->budget, c, lim->budget_wait_ms);
    if (s == IMG_OK)
        *charged = c;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Sniffing and limits */

static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static img_kind sniff(const uint8_t *b, size_t len)
{
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
        return IMG_KIND_JPEG;
    if (len >= sizeof png_magic && memcmp(b, png_magic, sizeof png_magic) == 0)
        return IMG_KIND_PNG;
    return IMG_KIND_UNKNOWN;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The order matters: a 1 x 100000 image is too large, not too small. */
static img_status check_dims(long long w, long long h, const img_limits *lim)
{
    if (w <= 0 || h <= 0)
        return IMG_ERR_CORRUPT;
    if (w > lim->max_width || h > lim->max_height)
        return IMG_ERR_TOO_LARGE;
    /* The float output is w * h * 12 bytes: keep that representable too. */
    if ((unsigned long long)w * (unsigned long long)h > lim->max_pixels ||
        (unsigned long long)w * (unsigned long long)h > SIZE_MAX / (3 * sizeof(float)))
        return IMG_ERR_TOO_LARGE;
    if (w < lim->min_side || h < lim->min_side)
        return IMG_ERR_TOO_SMALL;
    return IMG_OK;
}

/* ------------------------------------------------------------------------ */
/* JPEG */

/* libjpeg reports running out of data as a warning ("Premature end of JPEG
 * file", "Corrupt JPEG data: premature end of data segment") and fills the
 * rest with gray; such an image must not be scored. Other warnings (stray
 * bytes between markers, common from cameras) leave a usable image. */
static int jpeg_ran_out(const char *msg)
{
    return msg != NULL && strstr(msg, "remature end") != NULL;
}

/* TurboJPEG 2.x keeps reporting TJERR_WARNING when a fatal error follows a
 * warning (its error handler does not clear the flag), and then the pixels
 * were never written. So a "warning" is trusted only when the message it
 * left is one of libjpeg's warnings (JWRN_* in jerror.h); any other message
 * is the fatal error that stopped the decode. */
static int jpeg_is_warning(const char *msg)
{
    static const char *const warnings[] = {
        "Corrupt JPEG data: ",                 /* bad codes, extraneous bytes, resync, ICC */
        "Premature end of JPEG file",          /* JWRN_JPEG_EOF */
        "Warning: unknown JFIF revision",      /* JWRN_JFIF_MAJOR */
        "Unknown Adobe color transform code",  /* JWRN_ADOBE_XFORM */
        "Inconsistent progression sequence",   /* JWRN_BOGUS_PROGRESSION */
        "Invalid SOS parameters for sequential JPEG", /* JWRN_NOT_SEQUENTIAL */
        "Application transferred too many scanlines", /* JWRN_TOO_MUCH_DATA */
    };
    if (msg == NULL)
        return 0;
    for (size_t i = 0; i < sizeof warnings / sizeof *warnings; i++)
        if (strncmp(msg, warnings[i], strlen(warnings[i])) == 0)
            return 1;
    return 0;
}

/* A failure is called truncation when libjpeg ran out of data or the file
 * does not end with EOI. */
static img_status jpeg_fail(tjhandle tj, const uint8_t *b, size_t len)
{
    if (jpeg_ran_out(tjGetErrorStr2(tj)) || len < 2 || b[len - 2] != 0xff ||
        b[len - 1] != 0xd9)
        return IMG_ERR_TRUNCATED;
    return IMG_ERR_CORRUPT;
}

/* *cmyk: the JPEG holds CMYK or YCCK, which TurboJPEG only decodes to CMYK. */
static img_status jpeg_header(tjhandle tj, const uint8_t *b, size_t len, int *w, int *h,
                              int *cmyk)
{
    int ss = 0, cs = 0;
    if (len > ULONG_MAX)
        return IMG_ERR_TOO_LARGE;
    if (tjDecompressHeader3(tj, b, (unsigned long)len, w, h, &ss, &cs) != 0)
        return jpeg_fail(tj, b, len);
    *cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    return IMG_OK;
}

/* CMYK JPEGs come from Adobe software, which stores the inks inverted
 * (255 = no ink), and TurboJPEG hands them over as stored: so
 * R = C * K / 255, the usual reading of such files. */
static void cmyk_to_rgb(const uint8_t *p, unsigned rgb[3])
{
    rgb[0] = (p[0] * p[3] + 127u) / 255u;
    rgb[1] = (p[1] * p[3] + 127u) / 255u;
    rgb[2] = (p[2] * p[3] + 127u) / 255u;
}

/* Decodes into dst (w * h * bytes-per-pixel of pf, tightly packed). */
static img_status jpeg_pixels(tjhandle tj, const uint8_t *b, size_t len, int w, int h,
                              int pf, uint8_t *dst)
{
    int pitch = w * tjPixelSize[pf];
    /* LIMITSCANS: a progressive JPEG with thousands of scans is a CPU bomb. */
    int flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS;
    if (tjDecompress2(tj, b, (unsigned long)len, dst, w, pitch, h, pf, flags) == 0)
        return IMG_OK;
    const char *msg = tjGetErrorStr2(tj);
    if (tjGetErrorCode(tj) == TJERR_WARNING && jpeg_is_warning(msg) && !jpeg_ran_out(msg))
        return IMG_OK;
    return jpeg_fail(tj, b, len);
}

/* ------------------------------------------------------------------------ */
/* PNG */

static img_status spng_to_status(int e)
{
    switch (e) {
    case SPNG_OK:
        return IMG_OK;
    case SPNG_IO_EOF:
    case SPNG_EIDAT_TOO_SHORT:
    case SPNG_EOF:
        return IMG_ERR_TRUNCATED;
    case SPNG_EMEM:
        return IMG_ERR_NOMEM;
    case SPNG_EUSER_WIDTH:
    case SPNG_EUSER_HEIGHT:
        return IMG_ERR_TOO_LARGE;
    default:
        return IMG_ERR_CORRUPT;
    }
}

static uint32_t clamp_limit(long long v)
{
    if (v < 1)
        return 1;
    if (v > INT32_MAX)
        return INT32_MAX;
    return (uint32_t)v;
}

/* Walks the chunk list up to a complete IEND. libspng stops reading once it
 * has the pixels, so a file cut inside its last chunks would pass. */
static img_status png_walk_chunks(const uint8_t *b, size_t len)
{
    size_t at = sizeof png_magic;
    for (;;) {
        if (len - at < 12)
            return IMG_ERR_TRUNCATED;
        uint32_t n = be32(b + at);
        if (n > INT32_MAX)
            return IMG_ERR_CORRUPT;
        if (len - at - 12 < n)
            return IMG_ERR_TRUNCATED;
        if (memcmp(b + at + 4, "IEND", 4) == 0)
            return IMG_OK;
        at += 12 + (size_t)n;
    }
}

/* Opens a decoder on buf and reads the header; on IMG_OK *out is a context to
 * free with spng_ctx_free() and the dimensions passed the limits. */
static img_status png_open(const uint8_t *b, size_t len, const img_limits *lim,
                           spng_ctx **out, struct spng_ihdr *ihdr)
{
    img_status s;
    int e;
    spng_ctx *ctx = spng_ctx_new(0);

    *out = NULL;
    if (ctx == NULL)
        return IMG_ERR_NOMEM;
    spng_set_image_limits(ctx, clamp_limit(lim->max_width), clamp_limit(lim->max_height));
    /* No chunk can be longer than the buffer; the cache limit is what bounds
     * inflated ancillary chunks. */
    spng_set_chunk_limits(ctx, clamp_limit((long long)(len < INT32_MAX ? len : INT32_MAX)),
                          IMG_PNG_CACHE_LIMIT);
    e = spng_set_png_buffer(ctx, b, len);
    if (e == 0)
        e = spng_get_ihdr(ctx, ihdr);
    s = spng_to_status(e);
    if (s == IMG_OK)
        s = check_dims(ihdr->width, ihdr->height, lim);
    if (s == IMG_OK)
        s = png_walk_chunks(b, len);
    if (s != IMG_OK) {
        spng_ctx_free(ctx);
        return s;
    }
    *out = ctx;
    return IMG_OK;
}

/* ------------------------------------------------------------------------ */
/* Public decoding */

static uint8_t luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
}

img_status img_probe(const void *buf, size_t len, img_kind *kind, int *w, int *h)
{
    const uint8_t *b = buf;
    img_kind k = buf != NULL ? sniff(b, len) : IMG_KIND_UNKNOWN;
    int iw = 0, ih = 0;
    img_status s = IMG_OK;

    if (kind != NULL)
        *kind = k;
    if (w != NULL)
        *w = 0;
    if (h != NULL)
        *h = 0;
    if (k == IMG_KIND_UNKNOWN)
        return IMG_ERR_UNSUPPORTED;
    if (k == IMG_KIND_PNG) {
        /* signature, IHDR length and type, width, height */
        if (len < 24)
            return IMG_ERR_TRUNCATED;
        if (be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4) != 0)
            return IMG_ERR_CORRUPT;
        uint32_t pw = be32(b + 16), ph = be32(b + 20);
        if (pw == 0 || ph == 0 || pw > INT32_MAX || ph > INT32_MAX)
            return IMG_ERR_CORRUPT;
        iw = (int)pw;
        ih = (int)ph;
    } else {
        int cmyk = 0;
        tjhandle tj = tjInitDecompress();
        if (tj == NULL)
            return IMG_ERR_NOMEM;
        s = jpeg_header(tj, b, len, &iw, &ih, &cmyk);
        tjDestroy(tj);
        if (s != IMG_OK)
            return s;
    }
    if (w != NULL)
        *w = iw;
    if (h != NULL)
        *h = ih;
    return IMG_OK;
}

/* The 8-bit pixels are decoded into the tail of the float buffer and widened
 * front to back: float j (bytes 4j .. 4j+3) is written after byte 9n + j is
 * read, and 4j + 3 < 9n + j + 1 for every j < 3n, so no unread byte is
 * overwritten. This saves a second buffer of up to 192 MB. */
static void widen_rgb8_in_place(float *rgb, size_t n)
{
    /* A table of v / 255.0f: the same floats as dividing, without a division
     * a byte (the division made widening cost as much as the JPEG decode). */
    float lut[256];
    for (int v = 0; v < 256; v++)
        lut[v] = (float)v / 255.0f;
    const uint8_t *src = (const uint8_t *)rgb + 9 * n;
    for (size_t j = 0; j < 3 * n; j++)
        rgb[j] = lut[src[j]];
}

/* Same idea for RGBA16 (8 bytes a pixel) decoded at byte 4n: pixel p is read
 * whole before floats 3p .. 3p+2 (bytes 12p .. 12p+11) are written, and
 * 12p + 11 < 4n + 8(p + 1) for every p < n. */
static void widen_rgba16_in_place(float *rgb, size_t n)
{
    const uint8_t *src = (const uint8_t *)rgb + 4 * n;
    for (size_t p = 0; p < n; p++) {
        uint16_t px[4];
        memcpy(px, src + 8 * p, sizeof px);
        rgb[3 * p + 0] = (float)((double)px[0] / 65535.0);
        rgb[3 * p + 1] = (float)((double)px[1] / 65535.0);
        rgb[3 * p + 2] = (float)((double)px[2] / 65535.0);
    }
}

/* CMYK (4 bytes a pixel) decoded at byte 8n: pixel p is read before bytes
 * 12p .. 12p+11 are written, and 12p + 11 < 8n + 4(p + 1) for p < n. */
static void widen_cmyk_in_place(float *rgb, size_t n)
{
    const uint8_t *src = (const uint8_t *)rgb + 8 * n;
    for (size_t p = 0; p < n; p++) {
        uint8_t px[4];
        unsigned c[3];
        memcpy(px, src + 4 * p, sizeof px);
        cmyk_to_rgb(px, c);
        rgb[3 * p + 0] = (float)c[0] / 255.0f;
        rgb[3 * p + 1] = (float)c[1] / 255.0f;
        rgb[3 * p + 2] = (float)c[2] / 255.0f;
    }
}

/* Decodes the image as fmt into a new buffer of `bytes` (>= want), the pixels
 * at its end so a caller can widen them in place towards the front; a decoded
 * size other than `want` is corrupt. Frees ctx on every path. */
static img_status png_decode_pixels(spng_ctx *ctx, int fmt, size_t want, size_t bytes, void **out)
{
    size_t need = 0;
    int e = spng_decoded_image_size(ctx, fmt, &need);
    if (e != 0 || need != want) {
        spng_ctx_free(ctx);
        return e != 0 ? spng_to_status(e) : IMG_ERR_CORRUPT;
    }
    uint8_t *buf = malloc(bytes);
    if (buf == NULL) {
        spng_ctx_free(ctx);
        return IMG_ERR_NOMEM;
    }
    /* flags 0: tRNS and gAMA are ignored; callers drop alpha. */
    e = spng_decode_image(ctx, buf + (bytes - need), need, fmt, 0);
    /* Read on to IEND: a file cut after its pixel data is still truncated. */
    if (e == 0)
        e = spng_decode_chunks(ctx);
    spng_ctx_free(ctx);
    if (e != 0) {
        free(buf);
        return spng_to_status(e);
    }
    *out = buf;
    return IMG_OK;
}

static img_status decode_png_rgbf(const uint8_t *b, size_t len, const img_limits *lim,
                                  unsigned flags, img_rgbf *out)
{
    spng_ctx *ctx;
    struct spng_ihdr ihdr;
    img_status s = png_open(b, len, lim, &ctx, &ihdr);
    if (s != IMG_OK)
        return s;

    size_t n = (size_t)ihdr.width * ihdr.height;
    int wide = ihdr.bit_depth == 16;
    int keep8 = !wide && (flags & IMG_DECODE_8BIT);
    int fmt = wide ? SPNG_FMT_RGBA16 : SPNG_FMT_RGB8;
    size_t want = n * (wide ? 8 : 3);
    size_t bytes = keep8 ? want : n * 3 * sizeof(float);
    size_t charged;
    s = charge(lim, keep8 ? n : 0, bytes, 0, &charged);
    if (s != IMG_OK) {
        spng_ctx_free(ctx);
        return s;
    }
    void *buf;
    s = png_decode_pixels(ctx, fmt, want, bytes, &buf);
    if (s != IMG_OK) {
        img_budget_release(lim->budget, charged);
        return s;
    }
    float *rgb = buf;
    out->width = out->src_width = (int)ihdr.width;
    out->height = out->src_height = (int)ihdr.height;
    out->budget = lim->budget;
    out->charged = charged;
    if (keep8) {
        out->rgb8 = (uint8_t *)rgb;
        return IMG_OK;
    }
    if (wide)
        widen_rgba16_in_place(rgb, n);
    else
        widen_rgb8_in_place(rgb, n);
    out->rgb = rgb;
    return IMG_OK;
}

/* CMYK (4 bytes a pixel) at the start of the buffer to RGB bytes in place:
 * pixel p is read whole before bytes 3p .. 3p+2 are written, and those lie
 * below pixel p + 1 (byte 4p + 4). */
static void cmyk_to_rgb8_in_place(uint8_t *px, size_t n)
{
    for (size_t p = 0; p < n; p++) {
        uint8_t q[4];
        unsigned c[3];
        memcpy(q, px + 4 * p, sizeof q);
        cmyk_to_rgb(q, c);
        px[3 * p + 0] = (uint8_t)c[0];
        px[3 * p + 1] = (uint8_t)c[1];
        px[3 * p + 2] = (uint8_t)c[2];
    }
}

/* 1 when the frame header before the first scan is progressive (SOF2, 6,
 * 10 or 14). Stops at anything unexpected: the decoder judges the file. */
static int jpeg_progressive(const uint8_t *b, size_t len)
{
    size_t at = 2;
    while (at + 4 <= len && b[at] == 0xff) {
        uint8_t m = b[at + 1];
        if (m == 0xff) { /* fill byte */
            at++;
            continue;
        }
        if (m == 0xda || m == 0xd9) /* SOS, EOI: no frame header before */
            return 0;
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc)
            return (m & 3) == 2;
        at += 2 + ((size_t)b[at + 2] << 8 | b[at + 3]);
    }
    return 0;
}

/* What libjpeg holds besides the output for a progressive JPEG: every DCT
 * coefficient of the frame (2 bytes a sample; 3 components at most unless
 * CMYK) until the last scan. A sequential JPEG needs a few rows of blocks. */
static size_t jpeg_coef_bytes(const uint8_t *b, size_t len, size_t n, int cmyk)
{
    return jpeg_progressive(b, len) ? n * (cmyk ? 4 : 3) * 2 : 0;
}

/* Reads the header and checks the dimensions; on IMG_OK *tj is open. */
static img_status jpeg_open(const uint8_t *b, size_t len, const img_limits *lim, tjhandle *tj,
                            int *w, int *h, int *cmyk)
{
    *tj = tjInitDecompress();
    if (*tj == NULL)
        return IMG_ERR_NOMEM;
    img_status s = jpeg_header(*tj, b, len, w, h, cmyk);
    if (s == IMG_OK)
        s = check_dims(*w, *h, lim);
    if (s != IMG_OK) {
        tjDestroy(*tj);
        *tj = NULL;
    }
    return s;
}

/* Allocates `bytes` and decodes the image as pf into its last w * h pixels
 * (the whole buffer when it is just that big); closes tj either way. On
 * IMG_OK *out is owned by the caller. */
static img_status jpeg_decode_alloc(tjhandle tj, const uint8_t *b, size_t len, int w, int h,
                                    int pf, size_t bytes, uint8_t **out)
{
    size_t need = (size_t)w * (size_t)h * (size_t)tjPixelSize[pf];
    uint8_t *buf = bytes >= need ? malloc(bytes) : NULL;
    img_status s = buf == NULL ? IMG_ERR_NOMEM : jpeg_pixels(tj, b, len, w, h, pf, buf + (bytes - need));
    tjDestroy(tj);
    if (s != IMG_OK) {
        free(buf);
        return s;
    }
    *out = buf;
    return IMG_OK;
}

void img_jpeg_fit(int w, int h, int fit_w, int fit_h, int *sw, int *sh)
{
    int nsf = 0;
    tjscalingfactor *sf = fit_w > 0 && fit_h > 0 ? tjGetScalingFactors(&nsf) : NULL;
    *sw = w;
    *sh = h;
    for (int i = 0; sf != NULL && i < nsf; i++) {
        int tw = TJSCALED(w, sf[i]), th = TJSCALED(h, sf[i]);
        if (sf[i].num < sf[i].denom && tw >= fit_w && th >= fit_h &&
            (long long)tw * th < (long long)*sw * *sh) {
            *sw = tw;
            *sh = th;
        }
    }
}

static img_status decode_jpeg_rgbf(const uint8_t *b, size_t len, const img_limits *lim,
                                   unsigned flags, img_rgbf *out)
{
    int iw = 0, ih = 0, w = 0, h = 0, cmyk = 0;
    tjhandle tj;
    img_status s = jpeg_open(b, len, lim, &tj, &iw, &ih, &cmyk);
    if (s != IMG_OK)
        return s;
    /* the limits judged the image as sent; the pixels are what is decoded */
    img_jpeg_fit(iw, ih, lim->fit_w, lim->fit_h, &w, &h);
    size_t n = (size_t)w * (size_t)h;
    int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    int keep8 = (flags & IMG_DECODE_8BIT) != 0;
    /* 8-bit: the bytes; else into the tail of the float buffer, widened in
     * place (see above) */
    size_t bytes = keep8 ? n * (cmyk ? 4 : 3) : n * 3 * sizeof(float);
    size_t charged;
    /* a progressive JPEG holds the coefficients of the whole frame */
    s = charge(lim, keep8 ? n : 0, bytes, jpeg_coef_bytes(b, len, (size_t)iw * (size_t)ih, cmyk),
               &charged);
    if (s != IMG_OK) {
        tjDestroy(tj);
        return s;
    }
    uint8_t *px;
    s = jpeg_decode_alloc(tj, b, len, w, h, pf, bytes, &px);
    if (s != IMG_OK) {
        img_budget_release(lim->budget, charged);
        return s;
    }
    out->width = w;
    out->height = h;
    out->src_width = iw;
    out->src_height = ih;
    out->budget = lim->budget;
    out->charged = charged;
    if (keep8) {
        if (cmyk)
            cmyk_to_rgb8_in_place(px, n);
        out->rgb8 = px;
        return IMG_OK;
    }
    float *rgb = (float *)(void *)px;
    if (cmyk)
        widen_cmyk_in_place(rgb, n);
    else
        widen_rgb8_in_place(rgb, n);
    out->rgb = rgb;
    return IMG_OK;
}

img_status img_decode_ex(const void *buf, size_t len, const img_limits *limits,
                         unsigned flags, img_rgbf *out)
{
    img_limits def = img_default_limits();
    if (out == NULL)
        return IMG_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if (buf == NULL)
        return IMG_ERR_UNSUPPORTED;
    if (limits == NULL)
        limits = &def;
    switch (sniff(buf, len)) {
    case IMG_KIND_JPEG:
        return decode_jpeg_rgbf(buf, len, limits, flags, out);
    case IMG_KIND_PNG:
        return decode_png_rgbf(buf, len, limits, flags, out);
    default:
        return IMG_ERR_UNSUPPORTED;
    }
}

img_status img_decode(const void *buf, size_t len, const img_limits *limits, img_rgbf *out)
{
    return img_decode_ex(buf, len, limits, 0, out);
}

/* ------------------------------------------------------------------------ */
/* Validation without the frame */

/* Decodes every row into one row buffer, in the format img_decode_ex()
 * would use, and reads on to IEND: the same checks, a row of memory. */
static img_status validate_png(const uint8_t *b, size_t len, const img_limits *lim, int *w,
                               int *h)
{
    spng_ctx *ctx;
    struct spng_ihdr ihdr;
    img_status s = png_open(b, len, lim, &ctx, &ihdr);
    if (s != IMG_OK)
        return s;
    /* Rows as stored, without the conversion to RGB (a third of the CPU on
     * a large gray image): converting gray or RGB cannot fail. Palette
     * images go through RGB8 as the decode does, where an index beyond the
     * palette is an error. */
    int fmt = ihdr.color_type == SPNG_COLOR_TYPE_INDEXED ? SPNG_FMT_RGB8 : SPNG_FMT_PNG;
    size_t need = 0, charged = 0, row = 0;
    uint8_t *buf = NULL;
    int e = spng_decoded_image_size(ctx, fmt, &need);
    if (e == 0)
        row = need / ihdr.height;
    if (e == 0 && (row == 0 || need != row * ihdr.height))
        s = IMG_ERR_CORRUPT;
    else if (e == 0)
        s = charge(lim, 0, row, 0, &charged);
    if (e == 0 && s == IMG_OK && (buf = malloc(row)) == NULL)
        s = IMG_ERR_NOMEM;
    if (buf != NULL) {
        e = spng_decode_image(ctx, NULL, 0, fmt, SPNG_DECODE_PROGRESSIVE);
        while (e == 0)
            e = spng_decode_row(ctx, buf, row);
        if (e == SPNG_EOI) /* every row decoded: read on to IEND */
            e = spng_decode_chunks(ctx);
    }
    if (s == IMG_OK)
        s = spng_to_status(e);
    free(buf);
    img_budget_release(lim->budget, charged);
    spng_ctx_free(ctx);
    *w = (int)ihdr.width;
    *h = (int)ihdr.height;
    return s;
}

/* Decodes at the smallest scale TurboJPEG offers (1/8): the entropy-coded
 * data, where corruption and truncation show, is decoded whole; only the
 * inverse DCT and the output shrink, to 1/64 of the pixels. */
static img_status validate_jpeg(const uint8_t *b, size_t len, const img_limits *lim, int *w,
                                int *h)
{
    int cmyk = 0, nsf = 0;
    tjhandle tj;
    img_status s = jpeg_open(b, len, lim, &tj, w, h, &cmyk);
    if (s != IMG_OK)
        return s;
    tjscalingfactor *sf = tjGetScalingFactors(&nsf), best = {1, 1};
    for (int i = 0; sf != NULL && i < nsf; i++)
        if ((long long)sf[i].num * best.denom < (long long)best.num * sf[i].denom)
            best = sf[i];
    int sw = TJSCALED(*w, best), sh = TJSCALED(*h, best);
    int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    size_t bytes = (size_t)sw * (size_t)sh * (size_t)tjPixelSize[pf], charged;
    size_t n = (size_t)*w * (size_t)*h;
    s = charge(lim, 0, bytes, jpeg_coef_bytes(b, len, n, cmyk), &charged);
    if (s != IMG_OK) {
        tjDestroy(tj);
        return s;
    }
    uint8_t *px = NULL;
    s = jpeg_decode_alloc(tj, b, len, sw, sh, pf, bytes, &px);
    free(px);
    img_budget_release(lim->budget, charged);
    return s;
}

img_status img_validate(const void *buf, size_t len, const img_limits *limits, img_kind *kind,
                        int *w, int *h)
{
    img_limits def = img_default_limits();
    int iw = 0, ih = 0;
    img_kind k = buf != NULL ? sniff(buf, len) : IMG_KIND_UNKNOWN;
    img_status s = IMG_ERR_UNSUPPORTED;
    if (limits == NULL)
        limits = &def;
    if (k == IMG_KIND_JPEG)
        s = validate_jpeg(buf, len, limits, &iw, &ih);
    else if (k == IMG_KIND_PNG)
        s = validate_png(buf, len, limits, &iw, &ih);
    if (kind != NULL)
        *kind = k;
    if (w != NULL)
        *w = s == IMG_OK ? iw : 0;
    if (h != NULL)
        *h = s == IMG_OK ? ih : 0;
    return s;
}

/* Gives back the tail of a buffer compacted to n bytes; a failed realloc
 * only wastes that tail, so the larger block is kept. */
static uint8_t *shrink(uint8_t *p, size_t n)
{
    uint8_t *q = realloc(p, n);
    return q != NULL ? q : p;
}

static img_status decode_png_gray8(const uint8_t *b, size_t len, const img_limits *lim,
                                   int *w, int *h, uint8_t **px)
{
    spng_ctx *ctx;
    struct spng_ihdr ihdr;
    img_status s = png_open(b, len, lim, &ctx, &ihdr);
    if (s != IMG_OK)
        return s;

    size_t n = (size_t)ihdr.width * ihdr.height;
    /* libspng converts to G8 only from gray of up to 8 bits; everything else
     * goes through RGBA8 (16-bit samples keep their high byte). */
    int direct = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE && ihdr.bit_depth <= 8;
    int fmt = direct ? SPNG_FMT_G8 : SPNG_FMT_RGBA8;
    size_t want = n * (direct ? 1 : 4);
    void *buf;
    s = png_decode_pixels(ctx, fmt, want, want, &buf);
    if (s != IMG_OK)
        return s;
    uint8_t *raw = buf;
    if (!direct) {
        int gray = ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE ||
                   ihdr.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
        /* Compacted in place: pixel i is read before byte i is written. */
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = raw + 4 * i;
            raw[i] = gray ? p[0] : luma(p[0], p[1], p[2]);
        }
        raw = shrink(raw, n);
    }
    *w = (int)ihdr.width;
    *h = (int)ihdr.height;
    *px = raw;
    return IMG_OK;
}

static img_status decode_jpeg_gray8(const uint8_t *b, size_t len, const img_limits *lim,
                                    int *w, int *h, uint8_t **px)
{
    int iw = 0, ih = 0, cmyk = 0;
    tjhandle tj;
    img_status s = jpeg_open(b, len, lim, &tj, &iw, &ih, &cmyk);
    if (s != IMG_OK)
        return s;
    size_t n = (size_t)iw * (size_t)ih;
    uint8_t *raw;
    s = jpeg_decode_alloc(tj, b, len, iw, ih, cmyk ? TJPF_CMYK : TJPF_GRAY, cmyk ? 4 * n : n, &raw);
    if (s != IMG_OK)
        return s;
    if (cmyk) {
        /* Compacted in place: pixel i is read before byte i is written. */
        for (size_t i = 0; i < n; i++) {
            unsigned c[3];
            cmyk_to_rgb(raw + 4 * i, c);
            raw[i] = luma(c[0], c[1], c[2]);
        }
        raw = shrink(raw, n);
    }
    *w = iw;
    *h = ih;
    *px = raw;
    return IMG_OK;
}

img_status img_decode_gray8(const void *buf, size_t len, const img_limits *limits, int *w,
                            int *h, uint8_t **px)
{
    img_limits def = img_default_limits();
    if (w == NULL || h == NULL || px == NULL)
        return IMG_ERR_INVALID_ARG;
    *w = 0;
    *h = 0;
    *px = NULL;
    if (buf == NULL)
        return IMG_ERR_UNSUPPORTED;
    if (limits == NULL)
        limits = &def;
    switch (sniff(buf, len)) {
    case IMG_KIND_JPEG:
        return decode_jpeg_gray8(buf, len, limits, w, h, px);
    case IMG_KIND_PNG:
        return decode_png_gray8(buf, len, limits, w, h, px);
    default:
        return IMG_ERR_UNSUPPORTED;
    }
}

/* ------------------------------------------------------------------------ */
/* Files */

img_status img_read_file(const char *path, size_t max_bytes, void **buf, size_t *len)
{
    if (path == NULL || buf == NULL || len == NULL)
        return IMG_ERR_INVALID_ARG;
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return IMG_ERR_IO;
    size_t cap = 1 << 16, n = 0;
    uint8_t *data = malloc(cap);
    img_status s = data != NULL ? IMG_OK : IMG_ERR_NOMEM;
    while (s == IMG_OK) {
        if (n == cap) {
            if (cap > max_bytes) {
                s = IMG_ERR_TOO_LARGE;
                break;
            }
            uint8_t *bigger = realloc(data, cap * 2);
            if (bigger == NULL) {
                s = IMG_ERR_NOMEM;
                break;
            }
            data = bigger;
            cap *= 2;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                s = IMG_ERR_IO;
            break;
        }
    }
    fclose(f);
    if (s == IMG_OK && n > max_bytes)
        s = IMG_ERR_TOO_LARGE;
    if (s != IMG_OK) {
        free(data);
        return s;
    }
    *buf = data;
    *len = n;
    return IMG_OK;
}

img_status img_load_file_ex(const char *path, const img_limits *limits, unsigned flags,
                            img_rgbf *out)
{
    void *buf;
    size_t len;
    if (out == NULL)
        return IMG_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    img_status s = img_read_file(path, IMG_FILE_MAX_BYTES, &buf, &len);
    if (s != IMG_OK)
        return s;
    s = img_decode_ex(buf, len, limits, flags, out);
    free(buf);
    return s;
}

img_status img_load_file(const char *path, const img_limits *limits, img_rgbf *out)
{
    return img_load_file_ex(path, limits, 0, out);
}

img_status img_load_file_gray8(const char *path, const img_limits *limits, int *w, int *h,
                               uint8_t **px)
{
    void *buf;
    size_t len;
    if (w == NULL || h == NULL || px == NULL)
        return IMG_ERR_INVALID_ARG;
    *px = NULL;
    img_status s = img_read_file(path, IMG_FILE_MAX_BYTES, &buf, &len);
    if (s != IMG_OK)
        return s;
    s = img_decode_gray8(buf, len, limits, w, h, px);
    free(buf);
    return s;
}
