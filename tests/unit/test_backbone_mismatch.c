/* With the real backbone: a model artefact recorded for another backbone is
 * refused on load and on scoring; one recorded for this backbone loads. */
#define _GNU_SOURCE
#include "cfa.h"
#include "expect.h"
#include "sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float rgb[32 * 32 * 3];

static int get(void *user, int i, cfa_image *out)
{
    (void)user;
    for (int k = 0; k < 32 * 32 * 3; k++)
        rgb[k] = (float)((k * 7 + i * 13) % 255) / 255.0f;
    out->width = 32, out->height = 32, out->rgb = rgb;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s BACKBONE.pt\n", argv[0]);
        return 2;
    }
    cfa_set_threads(2);
    cfa_backbone *bb = NULL;
    EXPECT(cfa_backbone_load(argv[1], "cpu", &bb) == CFA_OK);
    if (!bb) {
        fprintf(stderr, "%s\n", cfa_last_error());
        return 1;
    }
    int ch[3];
    cfa_backbone_channels(bb, ch);
    EXPECT(ch[0] > 0 && ch[1] > 0 && ch[2] > 0);
    EXPECT(strlen(cfa_backbone_sha256(bb)) == 64);

    /* a tiny real model: 2 images of 32 x 32, no crop, no epochs */
    cfa_params p = cfa_default_params();
    p.resize_h = p.resize_w = 32;
    p.crop_h = p.crop_w = 0;
    p.epochs = 1;
    p.gamma_d = 16;
    cfa_image_source src = {2, get, NULL, NULL};
    cfa_model *m = NULL;
    EXPECT(cfa_train(bb, &p, &src, NULL, NULL, NULL, &m) == CFA_OK);
    void *buf = NULL;
    size_t len = 0;
    EXPECT(m && cfa_model_save(m, &buf, &len) == CFA_OK);
    cfa_model *back = NULL;
    EXPECT(cfa_model_load(buf, len, bb, &back) == CFA_OK);
    cfa_model_free(back);

    /* the hash is of the file's bytes: a copy elsewhere is the same backbone */
    char other[] = "/tmp/cfa-bb-XXXXXX";
    int fd = mkstemp(other);
    EXPECT(fd >= 0);
    FILE *in = fopen(argv[1], "rb"), *out = fdopen(fd, "wb");
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
        fwrite(chunk, 1, n, out);
    fclose(in);
    fclose(out);
    cfa_backbone *bb2 = NULL;
    EXPECT(cfa_backbone_load(other, "cpu", &bb2) == CFA_OK);
    back = NULL;
    EXPECT(bb2 && cfa_model_load(buf, len, bb2, &back) == CFA_OK);
    cfa_model_free(back);
    cfa_backbone_free(bb2);
    remove(other);

    /* an artefact recorded for another backbone: one hex digit of the recorded
     * hash changed and the checksum trailer recomputed, so only the hash differs */
    unsigned char *bytes = buf;
    const char *hash = cfa_backbone_sha256(bb);
    unsigned char *at = memmem(bytes, len, hash, 64);
    EXPECT(at != NULL);
    if (at) {
        at[0] = at[0] == 'a' ? 'b' : 'a';
        sha256(bytes, len - 32, bytes + len - 32);
        cfa_model *x = NULL;
        EXPECT(cfa_model_load(buf, len, bb, &x) == CFA_ERR_BACKBONE_MISMATCH && x == NULL);
        EXPECT(strstr(cfa_last_error(), "backbone") != NULL);
        /* without a backbone it parses, and scoring with this backbone is refused */
        EXPECT(cfa_model_load(buf, len, NULL, &x) == CFA_OK);
        float px[16 * 16 * 3] = {0};
        cfa_image img = {16, 16, px, NULL};
        cfa_result r;
        EXPECT(x && cfa_score(bb, x, &img, 1, &r) == CFA_ERR_BACKBONE_MISMATCH);
        cfa_model_free(x);
    }
    cfa_free(buf);
    cfa_model_free(m);
    cfa_backbone_free(bb);
    return expect_report();
}
