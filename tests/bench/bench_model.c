/* bench_model.c - in-process model throughput of the CFA engine.
 *
 *   bench_model --data DIR [--train N] [--epochs E] [--iters I] [--batches 1,4,8]
 *               [--setting NAME=GC/GD]... [--image FILE] [--size WxH]
 *               [--backbone PT] [--device cpu] [--threads T] [--no-minimal]
 *
 * Loads the backbone, trains one small model per setting on the first N
 * images of DIR/train/good (default settings: "paper" = gamma_c 1 / gamma_d 1
 * and "compressed" = 8/8, the service default), then times cfa_score() on a 900 x 900 image (the
 * first test image of DIR, or --image, bilinearly resized in C) at batch 1, 4
 * and 8: one warm-up call, then at least I timed calls and S seconds (--min-time,
 * default 10) per batch size. Prints images/s
 * and ms/image per setting and batch, peak RSS, and a last line of JSON.
 *
 * The C API has no backbone-only call, so "backbone alone" is measured as
 * "backbone + minimal head": a model with an 8-channel descriptor and a
 * 12-centre bank (gamma_d 224, gamma_c 256, no epochs), whose descriptor and
 * nearest-centre search cost next to nothing. It still includes the engine's
 * pre-processing (resize to 256, crop 224) and the map's upsampling, blur and
 * mapping back to the image's own size.
 *
 * Speed is never asserted: this prints figures. Exit 0 on success, 77 when the
 * backbone or data is missing (CTest's skip code), 1 on failure. */
#define _GNU_SOURCE
#include "bench_common.h"
#include "bench_source.h"
#include "cfa.h"
#include "image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CFA_BENCH_BACKBONE
#define CFA_BENCH_BACKBONE ""
#endif

#define MAX_SETTINGS 8
#define MAX_BATCHES 8

typedef struct {
    char name[32];
    int gamma_c, gamma_d, epochs, n_train;
    /* results */
    double feature_s, epoch_s, train_s;
    int bank, channels;
    double ips[MAX_BATCHES], ms[MAX_BATCHES];
    int calls[MAX_BATCHES];
} setting;

typedef struct {
    double feature_s, epoch_s;
} progress_rec;

static void on_progress(const cfa_progress *p, void *user)
{
    progress_rec *r = user;
    r->feature_s = p->feature_seconds;
    r->epoch_s = p->epoch_seconds;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_model --data DIR [options]\n"
            "  --data DIR          MVTec-layout product folder (DIR/train/good, DIR/test/*)\n"
            "  --train N           training images for each model (default 20)\n"
            "  --epochs E          epochs for each model (default 1)\n"
            "  --setting NAME=C/D  a model with gamma_c C and gamma_d D; repeatable\n"
            "                      (default: paper=1/1 and compressed=8/8, the service default)\n"
            "  --no-minimal        skip the backbone + minimal head measurement\n"
            "  --shared-pixels     one pixel buffer for every image of a batch (default:\n"
            "                      a copy each, as the service's batches have)\n"
            "  --image FILE        scoring image (default: first image of DIR/test/good)\n"
            "  --size WxH          resize the scoring image to this (default 900x900)\n"
            "  --batches LIST      batch sizes, comma-separated (default 1,4,8)\n"
            "  --iters I           timed cfa_score calls per batch size, at least (default 5)\n"
            "  --gap-ms G          idle time between timed calls, not timed (default 0:\n"
            "                      back to back; a daemon's parts arrive with gaps)\n"
            "  --min-time S        and at least S seconds of timed calls (default 10)\n"
            "  --backbone PT       TorchScript backbone (default %s)\n"
            "  --device DEV        cpu or cuda:N (default cpu)\n"
            "  --threads T         libtorch intra-op threads (default: libtorch's)\n",
            CFA_BENCH_BACKBONE[0] ? CFA_BENCH_BACKBONE : "$CFA_BACKBONE");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_setting(const char *s, setting *st)
{
    const char *eq = strchr(s, '=');
    if (eq == NULL || eq == s || (size_t)(eq - s) >= sizeof st->name)
        return -1;
    memset(st, 0, sizeof *st);
    memcpy(st->name, s, (size_t)(eq - s));
    if (sscanf(eq + 1, "%d/%d", &st->gamma_c, &st->gamma_d) != 2 || st->gamma_c < 1 ||
        st->gamma_d < 1 || st->gamma_c > 1024 || st->gamma_d > 1024)
        return -1;
    return 0;
}

/* First image of DIR/test/good, else of the first test sub-folder. */
static char *default_image(const char *data)
{
    char *dir = NULL, **list = NULL, *res = NULL;
    if (asprintf(&dir, "%s/test/good", data) < 0)
        return NULL;
    int n = bench_list_images(dir, &list);
    if (n > 0)
        res = strdup(list[0]);
    bench_free_list(list, n);
    free(dir);
    return res;
}

static int train_one(cfa_backbone *bb, setting *s, char **files, int n_files,
                     cfa_model **out)
{
    cfa_params p = cfa_default_params();
    p.gamma_c = s->gamma_c;
    p.gamma_d = s->gamma_d;
    p.epochs = s->epochs;
    train_src src = {files, s->n_train < n_files ? s->n_train : n_files};
    cfa_image_source is = bench_train_source(&src);
    progress_rec rec = {0, 0};
    double t0 = bench_now();
    cfa_status st = cfa_train(bb, &p, &is, on_progress, &rec, NULL, out);
    s->train_s = bench_now() - t0;
    if (st != CFA_OK) {
        fprintf(stderr, "bench_model: training '%s': %s (%s)\n", s->name, cfa_status_str(st),
                cfa_last_error());
        return -1;
    }
    s->n_train = src.n;
    s->feature_s = rec.feature_s;
    s->epoch_s = rec.epoch_s;
    s->bank = cfa_model_bank_size(*out);
    s->channels = cfa_model_channels(*out);
    return 0;
}

/* idle milliseconds between timed calls (--gap-ms): a daemon scores parts
 * that arrive with gaps, a tight loop keeps threads and caches hot */
static int gap_ms;
static int shared_pixels; /* --shared-pixels: one buffer for the whole batch */

static int time_scoring(cfa_backbone *bb, const cfa_model *m, const cfa_image *img,
                        const int *batches, int n_batches, int iters, double min_time,
                        setting *s)
{
    cfa_image imgs[256];
    cfa_result res[256];
    void *copies[256] = {0};
    const void *pixels = img->rgb8 != NULL ? (const void *)img->rgb8 : (const void *)img->rgb;
    size_t bytes = (size_t)img->width * (size_t)img->height * 3 *
                   (img->rgb8 != NULL ? 1 : sizeof(float));
    for (int bi = 0; bi < n_batches; bi++) {
        int b = batches[bi];
        /* each image of a batch in its own buffer, as the service's batches
         * are: one buffer scored b times would stay in the caches */
        for (int i = 0; i < b; i++) {
            if (copies[i] == NULL && !shared_pixels) {
                copies[i] = malloc(bytes);
                if (copies[i] == NULL) {
                    fprintf(stderr, "bench_model: out of memory for batch %d\n", b);
                    for (int k = 0; k < i; k++)
                        free(copies[k]);
                    return -1;
                }
                memcpy(copies[i], pixels, bytes);
            }
            imgs[i] = *img;
            if (copies[i] != NULL && img->rgb8 != NULL)
                imgs[i].rgb8 = copies[i];
            else if (copies[i] != NULL)
                imgs[i].rgb = copies[i];
        }
        double total = 0;
        int it;
        /* it == -1: warm-up; then at least iters calls and min_time seconds */
        for (it = -1; it < iters || total < min_time; it++) {
            memset(res, 0, sizeof(cfa_result) * (size_t)b);
            double t0 = bench_now();
            cfa_status st = cfa_score(bb, m, imgs, b, res);
            double dt = bench_now() - t0;
            if (st != CFA_OK) {
                fprintf(stderr, "bench_model: cfa_score batch %d: %s (%s)\n", b,
                        cfa_status_str(st), cfa_last_error());
                return -1;
            }
            for (int i = 0; i < b; i++)
                cfa_result_clear(&res[i]);
            if (it >= 0)
                total += dt;
            if (gap_ms > 0) {
                struct timespec ts = {gap_ms / 1000, (long)(gap_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
        s->ips[bi] = (double)b * it / total;
        s->ms[bi] = total * 1000.0 / ((double)b * it);
        s->calls[bi] = it;
        printf("  %-22s batch %-3d %8.2f images/s %9.1f ms/image  (%d x %d images, %.1f s)\n",
               s->name, b, s->ips[bi], s->ms[bi], it, b, total);
        fflush(stdout);
    }
    for (int i = 0; i < 256; i++)
        free(copies[i]);
    return 0;
}

int main(int argc, char **argv)
{
    cfa_blas_fix_cpu(argv);
    cfa_tune_malloc();
    const char *data = NULL, *image = NULL, *device = "cpu";
    const char *backbone = getenv("CFA_BACKBONE");
    if (backbone == NULL || !*backbone)
        backbone = CFA_BENCH_BACKBONE;
    int n_train = 20, epochs = 1, iters = 5, threads = 0, minimal = 1;
    int size_w = 900, size_h = 900;
    double min_time = 10.0;
    int batches[MAX_BATCHES] = {1, 4, 8}, n_batches = 3;
    setting settings[MAX_SETTINGS];
    int n_settings = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-minimal")) {
            minimal = 0;
            continue;
        } else if (!strcmp(a, "--shared-pixels")) {
            shared_pixels = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "bench_model: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--image"))
            image = v;
        else if (!strcmp(a, "--backbone"))
            backbone = v;
        else if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--train"))
            bad = parse_int(v, 1, 100000, &n_train);
        else if (!strcmp(a, "--epochs"))
            bad = parse_int(v, 0, 100000, &epochs);
        else if (!strcmp(a, "--iters"))
            bad = parse_int(v, 1, 100000, &iters);
        else if (!strcmp(a, "--gap-ms"))
            bad = parse_int(v, 0, 60000, &gap_ms);
        else if (!strcmp(a, "--threads"))
            bad = parse_int(v, 0, 1024, &threads);
        else if (!strcmp(a, "--min-time")) {
            char *end;
            min_time = strtod(v, &end);
            bad = end == v || *end || !(min_time >= 0 && min_time <= 86400);
        }
        else if (!strcmp(a, "--size"))
            bad = sscanf(v, "%dx%d", &size_w, &size_h) != 2 || size_w < 8 || size_h < 8 ||
                  size_w > 16384 || size_h > 16384;
        else if (!strcmp(a, "--setting")) {
            if (n_settings >= MAX_SETTINGS - 1)
                bad = 1;
            else
                bad = parse_setting(v, &settings[n_settings++]);
        } else if (!strcmp(a, "--batches")) {
            n_batches = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save)) {
                if (n_batches >= MAX_BATCHES)
                    bad = 1;
                else
                    bad = parse_int(t, 1, 256, &batches[n_batches++]);
            }
            free(copy);
            bad = bad || n_batches == 0;
        } else {
            fprintf(stderr, "bench_model: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "bench_model: bad value for %s: '%s'\n", a, v);
            return 2;
        }
    }
    if (data == NULL) {
        usage(stderr);
        return 2;
    }
    if (n_settings == 0) {
        parse_setting("paper=1/1", &settings[n_settings++]);
        parse_setting("compressed=8/8", &settings[n_settings++]);
    }
    for (int i = 0; i < n_settings; i++) {
        settings[i].epochs = epochs;
        settings[i].n_train = n_train;
    }
    if (minimal) { /* backbone + minimal head, see the top of the file */
        setting *s = &settings[n_settings++];
        parse_setting("backbone+minimal_head=256/224", s);
        s->epochs = 0;
        s->n_train = n_train < 4 ? n_train : 4;
    }
    if (backbone == NULL || !*backbone || access(backbone, R_OK) != 0) {
        fprintf(stderr, "bench_model: SKIP: backbone '%s' not readable\n",
                backbone ? backbone : "");
        return 77;
    }
    char *train_dir = NULL;
    if (asprintf(&train_dir, "%s/train/good", data) < 0)
        return 1;
    char **files = NULL;
    int n_files = bench_list_images(train_dir, &files);
    if (n_files == 0) {
        fprintf(stderr, "bench_model: SKIP: no images in %s\n", train_dir);
        return 77;
    }
    char *img_path = image ? strdup(image) : default_image(data);
    if (img_path == NULL) {
        fprintf(stderr, "bench_model: SKIP: no test image in %s/test/good\n", data);
        return 77;
    }

    if (threads > 0)
        cfa_set_threads(threads);
    char machine[512];
    bench_machine(machine, sizeof machine);
    printf("bench_model: %s\n", machine);
    printf("  load average (1 min) at start: %.2f\n", bench_load1());

    double t0 = bench_now();
    cfa_backbone *bb = NULL;
    if (cfa_backbone_load(backbone, device, &bb) != CFA_OK) {
        fprintf(stderr, "bench_model: %s: %s\n", backbone, cfa_last_error());
        return 1;
    }
    double load_s = bench_now() - t0;
    printf("  backbone %s on %s, loaded in %.2f s, threads %s\n", backbone,
           cfa_backbone_device(bb), load_s, threads > 0 ? "set" : "libtorch default");

    /* decoded as the service decodes an upload: 8-bit sources stay bytes */
    img_rgbf src;
    int resized = 0;
    img_status ist = img_load_file_ex(img_path, NULL, IMG_DECODE_8BIT, &src);
    if (ist == IMG_OK && (src.width != size_w || src.height != size_h)) {
        img_rgbf_free(&src); /* resized below, as floats */
        ist = img_load_file(img_path, NULL, &src);
        resized = 1;
    }
    if (ist != IMG_OK) {
        fprintf(stderr, "bench_model: %s: %s\n", img_path, img_status_str(ist));
        return 1;
    }
    float *px = src.rgb;
    if (resized) {
        px = bench_resize_rgb(src.rgb, src.width, src.height, size_w, size_h);
        if (px == NULL)
            return 1;
    }
    cfa_image img = {size_w, size_h, px, src.rgb8};
    const char *pixel_kind = src.rgb8 != NULL ? "rgb8" : "float";
    printf("  scoring image %s (%d x %d) as %d x %d %s pixels; per batch size 1 warm-up call, "
           "then at least %d timed calls and %.0f s\n",
           img_path, src.width, src.height, size_w, size_h, pixel_kind, iters, min_time);
    fflush(stdout);

    int rc = 0;
    for (int si = 0; si < n_settings && rc == 0; si++) {
        setting *s = &settings[si];
        cfa_model *m = NULL;
        if (train_one(bb, s, files, n_files, &m) != 0) {
            rc = 1;
            break;
        }
        printf("  %s: gamma_c %d gamma_d %d -> bank %d, %d channels; trained on %d images, "
               "%d epoch(s) in %.1f s (features %.1f s, bank + epochs %.1f s)\n",
               s->name, s->gamma_c, s->gamma_d, s->bank, s->channels, s->n_train, s->epochs,
               s->train_s, s->feature_s, s->epoch_s);
        fflush(stdout);
        if (time_scoring(bb, m, &img, batches, n_batches, iters, min_time, s) != 0)
            rc = 1;
        cfa_model_free(m);
    }
    double rss = bench_peak_rss_mib();
    printf("  peak RSS %.0f MiB, load average (1 min) at end: %.2f\n", rss, bench_load1());

    /* JSON line: the last line of stdout */
    printf("{\"bench\":\"model\",\"device\":\"%s\",\"image\":[%d,%d],\"pixels\":\"%s\",\"iters\":%d,"
           "\"min_time_s\":%.1f,\"backbone_load_s\":%.3f,\"peak_rss_mib\":%.1f,\"load1\":%.2f,\"settings\":[",
           cfa_backbone_device(bb), size_w, size_h, pixel_kind, iters, min_time, load_s, rss, bench_load1());
    for (int si = 0; si < n_settings; si++) {
        setting *s = &settings[si];
        printf("%s{\"name\":\"%s\",\"gamma_c\":%d,\"gamma_d\":%d,\"bank\":%d,\"channels\":%d,"
               "\"train_images\":%d,\"epochs\":%d,\"train_s\":%.3f,\"feature_s\":%.3f,"
               "\"epoch_s\":%.3f,\"batches\":[",
               si ? "," : "", s->name, s->gamma_c, s->gamma_d, s->bank, s->channels,
               s->n_train, s->epochs, s->train_s, s->feature_s, s->epoch_s);
        for (int bi = 0; bi < n_batches; bi++)
            printf("%s{\"batch\":%d,\"calls\":%d,\"images_per_s\":%.4f,\"ms_per_image\":%.2f}",
                   bi ? "," : "", batches[bi], s->calls[bi], s->ips[bi], s->ms[bi]);
        printf("]}");
    }
    printf("],\"ok\":%s}\n", rc == 0 ? "true" : "false");

    if (resized)
        free(px);
    img_rgbf_free(&src);
    cfa_backbone_free(bb);
    bench_free_list(files, n_files);
    free(train_dir);
    free(img_path);
    return rc;
}
