/* bench_source.c - see bench_source.h. */
#include "bench_source.h"

#include "image.h"

#include <stdio.h>
#include <stdlib.h>

static int src_get(void *user, int i, cfa_image *out)
{
    train_src *s = user;
    img_rgbf im;
    /* as the service's training jobs read them: 8-bit sources as bytes */
    img_status st = img_load_file_ex(s->files[i], NULL, IMG_DECODE_8BIT, &im);
    if (st != IMG_OK) {
        fprintf(stderr, "bench: %s: %s\n", s->files[i], img_status_str(st));
        return -1;
    }
    out->width = im.width;
    out->height = im.height;
    out->rgb = im.rgb;
    out->rgb8 = im.rgb8;
    return 0;
}

static void src_release(void *user, int i, cfa_image *img)
{
    (void)user;
    (void)i;
    free((void *)img->rgb);
    free((void *)img->rgb8);
    img->rgb = NULL;
    img->rgb8 = NULL;
}

cfa_image_source bench_train_source(train_src *src)
{
    cfa_image_source is = {src->n, src_get, src_release, src};
    return is;
}
