/* bench_jpeg.c - makes the benchmark's request body: decodes a real image
 * (PNG or JPEG, with server/image.h), resizes it bilinearly to W x H and
 * writes it as an RGB JPEG with TurboJPEG.
 *
 *   bench_jpeg IN OUT.jpg [WxH (default 900x900)] [quality (default 90)] */
#include "bench_common.h"
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

int main(int argc, char **argv)
{
    int w = 900, h = 900, quality = 90;
    if (argc < 3 || argc > 5 || (argc > 3 && sscanf(argv[3], "%dx%d", &w, &h) != 2) ||
        (argc > 4 && sscanf(argv[4], "%d", &quality) != 1) || w < 8 || h < 8 ||
        w > 16384 || h > 16384 || quality < 1 || quality > 100) {
        fprintf(stderr, "usage: bench_jpeg IN OUT.jpg [WxH] [quality]\n");
        return 2;
    }
    img_rgbf im;
    img_status st = img_load_file(argv[1], NULL, &im);
    if (st != IMG_OK) {
        fprintf(stderr, "bench_jpeg: %s: %s\n", argv[1], img_status_str(st));
        return 1;
    }
    float *px = bench_resize_rgb(im.rgb, im.width, im.height, w, h);
    unsigned char *rgb8 = malloc((size_t)w * h * 3);
    if (px == NULL || rgb8 == NULL) {
        fprintf(stderr, "bench_jpeg: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        float v = px[i] * 255.0f + 0.5f;
        rgb8[i] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long len = 0;
    if (tj == NULL ||
        tjCompress2(tj, rgb8, w, 0, h, TJPF_RGB, &jpg, &len, TJSAMP_420, quality, 0) != 0) {
        fprintf(stderr, "bench_jpeg: encoding: %s\n", tj ? tjGetErrorStr2(tj) : "init failed");
        return 1;
    }
    FILE *f = fopen(argv[2], "wb");
    if (f == NULL || fwrite(jpg, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "bench_jpeg: cannot write %s\n", argv[2]);
        return 1;
    }
    printf("%s: %d x %d JPEG, quality %d, %lu bytes (from %s, %d x %d)\n", argv[2], w, h,
           quality, len, argv[1], im.width, im.height);
    tjFree(jpg);
    tjDestroy(tj);
    free(rgb8);
    free(px);
    img_rgbf_free(&im);
    return 0;
}
