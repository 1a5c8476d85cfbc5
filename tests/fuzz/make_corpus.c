/* make_corpus.c - writes the seed corpus of fuzz_image into a directory:
 * tiny JPEGs and PNGs of every colour type the decoder handles, and two
 * truncated files. Built as the target make_fuzz_corpus (not by default):
 *
 *     cmake --build build --target make_fuzz_corpus
 *     build/tests/make_fuzz_corpus tests/fuzz/corpus/image
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spng.h>
#include <turbojpeg.h>

static const char *dir;

static void put(const char *name, const void *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len) {
        perror(path);
        exit(1);
    }
    fclose(f);
    printf("%-34s %5zu bytes\n", name, len);
}

static void png(const char *name, int w, int h, int ct, int depth, int interlace,
                const void *px, size_t px_len, const struct spng_plte *plte, size_t cut)
{
    struct spng_ihdr ihdr = {.width = (uint32_t)w, .height = (uint32_t)h,
                             .bit_depth = (uint8_t)depth, .color_type = (uint8_t)ct,
                             .interlace_method = (uint8_t)interlace};
    spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
    size_t len;
    int e;
    spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
    spng_set_ihdr(ctx, &ihdr);
    if (plte != NULL)
        spng_set_plte(ctx, (struct spng_plte *)plte);
    if (spng_encode_image(ctx, px, px_len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE) != 0) {
        fprintf(stderr, "%s: encode failed\n", name);
        exit(1);
    }
    void *out = spng_get_png_buffer(ctx, &len, &e);
    spng_ctx_free(ctx);
    put(name, out, cut ? len / 2 : len);
    free(out);
}

static void jpeg(const char *name, const uint8_t *px, int w, int h, int pf, int ss,
                 int flags, size_t cut)
{
    tjhandle tj = tjInitCompress();
    unsigned char *jb = NULL;
    unsigned long jl = 0;
    if (tjCompress2(tj, px, w, 0, h, pf, &jb, &jl, ss, 75, flags) != 0) {
        fprintf(stderr, "%s: %s\n", name, tjGetErrorStr2(tj));
        exit(1);
    }
    put(name, jb, cut ? jl / 2 : jl);
    tjFree(jb);
    tjDestroy(tj);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    uint8_t px[16 * 16 * 4];
    uint16_t px16[16 * 16 * 3];
    for (int i = 0; i < 16 * 16 * 4; i++)
        px[i] = (uint8_t)(i * 37 + (i >> 4) * 11);
    for (int i = 0; i < 16 * 16 * 3; i++)
        px16[i] = (uint16_t)(i * 2731);
    struct spng_plte plte = {.n_entries = 4};
    for (int i = 0; i < 4; i++)
        plte.entries[i] = (struct spng_plte_entry){(uint8_t)(i * 80), (uint8_t)(255 - i * 60),
                                                   (uint8_t)(i * 30), 255};
    uint8_t idx[8 * 8];
    for (int i = 0; i < 64; i++)
        idx[i] = (uint8_t)(i % 4);

    png("png_gray8_8x8.png", 8, 8, SPNG_COLOR_TYPE_GRAYSCALE, 8, 0, px, 64, NULL, 0);
    png("png_gray1_9x8.png", 9, 8, SPNG_COLOR_TYPE_GRAYSCALE, 1, 0, px, 16, NULL, 0);
    png("png_ga8_8x8.png", 8, 8, SPNG_COLOR_TYPE_GRAYSCALE_ALPHA, 8, 0, px, 128, NULL, 0);
    png("png_rgb8_9x8.png", 9, 8, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, px, 9 * 8 * 3, NULL, 0);
    png("png_rgba8_8x8.png", 8, 8, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, 8, 0, px, 256, NULL, 0);
    png("png_palette_8x8.png", 8, 8, SPNG_COLOR_TYPE_INDEXED, 8, 0, idx, 64, &plte, 0);
    png("png_gray16_8x8.png", 8, 8, SPNG_COLOR_TYPE_GRAYSCALE, 16, 0, px16, 128, NULL, 0);
    png("png_rgb16_8x8.png", 8, 8, SPNG_COLOR_TYPE_TRUECOLOR, 16, 0, px16, 384, NULL, 0);
    png("png_rgb8_adam7_12x12.png", 12, 12, SPNG_COLOR_TYPE_TRUECOLOR, 8, 1, px, 432, NULL, 0);
    png("png_rgb8_truncated.png", 16, 16, SPNG_COLOR_TYPE_TRUECOLOR, 8, 0, px, 768, NULL, 1);
    jpeg("jpeg_rgb444_16x16.jpg", px, 16, 16, TJPF_RGB, TJSAMP_444, 0, 0);
    jpeg("jpeg_rgb420_13x11.jpg", px, 13, 11, TJPF_RGB, TJSAMP_420, 0, 0);
    jpeg("jpeg_gray_8x8.jpg", px, 8, 8, TJPF_GRAY, TJSAMP_GRAY, 0, 0);
    jpeg("jpeg_cmyk_8x8.jpg", px, 8, 8, TJPF_CMYK, TJSAMP_444, 0, 0);
    jpeg("jpeg_progressive_16x16.jpg", px, 16, 16, TJPF_RGB, TJSAMP_420, TJFLAG_PROGRESSIVE, 0);
    jpeg("jpeg_truncated.jpg", px, 16, 16, TJPF_RGB, TJSAMP_420, 0, 1);
    return 0;
}
