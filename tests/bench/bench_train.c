/* bench_train.c - training time of one product, split into feature
 * extraction, memory bank and epochs.
 *
 *   bench_train --data DIR [--train N (200)] [--epochs E (30)] [--gamma-c C]
 *               [--gamma-d D] [--feature-half] [--backbone PT] [--device cpu]
 *               [--threads T]
 *
 * Trains with cfa_train() on the first N images (name order) of
 * DIR/train/good, all other parameters at cfa_default_params() (the paper's).
 * The engine's progress callback gives the feature-extraction time and the
 * time of bank + epochs; the time of each epoch is the difference between
 * consecutive callbacks, so the bank's share is epoch 1's time minus the
 * median of the later epochs. Prints the split, seconds per image per epoch,
 * a projection to --project epochs (default 30) when fewer were run, peak RSS
 * and a last line of JSON. Exit 77 when the backbone or data is missing. */
#define _GNU_SOURCE
#include "bench_common.h"
#include "bench_source.h"
#include "cfa.h"
#include "image.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CFA_BENCH_BACKBONE
#define CFA_BENCH_BACKBONE ""
#endif

typedef struct {
    int n_images;
    double feature_s, epoch_s; /* latest totals */
    double *epoch_end;         /* epoch_seconds at the end of each epoch */
    double *loss;
    int epochs_seen;
    double next_report;
    int features_done;
} rec_t;

static void on_progress(const cfa_progress *p, void *user)
{
    rec_t *r = user;
    r->feature_s = p->feature_seconds;
    r->epoch_s = p->epoch_seconds;
    if (strcmp(p->phase, "features") == 0) {
        if (p->feature_seconds >= r->next_report) {
            fprintf(stderr, "  features: %.0f%% (%.1f s)\n", 100.0 * p->fraction,
                    p->feature_seconds);
            r->next_report = p->feature_seconds + 30.0;
        }
    } else if (!r->features_done) {
        r->features_done = 1;
        fprintf(stderr, "  features done in %.1f s (%.3f s/image); phase %s\n",
                p->feature_seconds, p->feature_seconds / r->n_images, p->phase);
    }
    if (strcmp(p->phase, "epochs") == 0 && p->epoch >= 1 && p->epoch <= p->epochs &&
        !isnan(p->loss) && p->epoch > r->epochs_seen) {
        r->epoch_end[p->epoch - 1] = p->epoch_seconds;
        r->loss[p->epoch - 1] = p->loss;
        r->epochs_seen = p->epoch;
        fprintf(stderr, "  epoch %d/%d loss %.5f (bank + epochs %.1f s)\n", p->epoch, p->epochs,
                p->loss, p->epoch_seconds);
    }
}

int main(int argc, char **argv)
{
    cfa_blas_fix_cpu(argv);
    cfa_tune_malloc();
    const char *data = NULL, *device = "cpu";
    const char *backbone = getenv("CFA_BACKBONE");
    if (backbone == NULL || !*backbone)
        backbone = CFA_BENCH_BACKBONE;
    int n_train = 200, threads = 0, project = 30;
    cfa_params p = cfa_default_params();
    p.epochs = 30;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--feature-half")) {
            p.feature_half = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || i + 1 >= argc) {
            fprintf(a[2] == 'h' ? stdout : stderr,
                    "usage: bench_train --data DIR [--train N (200)] [--epochs E (30)] "
                    "[--gamma-c C] [--gamma-d D]\n"
                    "       [--feature-half] [--project E (30)] [--backbone PT] "
                    "[--device cpu] [--threads T]\n");
            return a[2] == 'h' ? 0 : 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--backbone"))
            backbone = v;
        else if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--train"))
            n_train = atoi(v);
        else if (!strcmp(a, "--epochs"))
            p.epochs = atoi(v);
        else if (!strcmp(a, "--gamma-c"))
            p.gamma_c = atoi(v);
        else if (!strcmp(a, "--gamma-d"))
            p.gamma_d = atoi(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--project"))
            project = atoi(v);
        else {
            fprintf(stderr, "bench_train: unknown option %s\n", a);
            return 2;
        }
    }
    if (data == NULL || n_train < 1 || p.epochs < 0 || project < 1) {
        fprintf(stderr, "bench_train: --data DIR is required (see --help)\n");
        return 2;
    }
    if (backbone == NULL || !*backbone || access(backbone, R_OK) != 0) {
        fprintf(stderr, "bench_train: SKIP: backbone '%s' not readable\n",
                backbone ? backbone : "");
        return 77;
    }
    char *dir = NULL, **files = NULL;
    if (asprintf(&dir, "%s/train/good", data) < 0)
        return 1;
    int n_files = bench_list_images(dir, &files);
    if (n_files == 0) {
        fprintf(stderr, "bench_train: SKIP: no images in %s\n", dir);
        return 77;
    }
    if (n_train > n_files) {
        fprintf(stderr, "bench_train: only %d images in %s, using them all\n", n_files, dir);
        n_train = n_files;
    }
    if (threads > 0)
        cfa_set_threads(threads);

    char machine[512];
    bench_machine(machine, sizeof machine);
    printf("bench_train: %s\n", machine);
    printf("  load average (1 min) at start: %.2f\n", bench_load1());
    cfa_backbone *bb = NULL;
    if (cfa_backbone_load(backbone, device, &bb) != CFA_OK) {
        fprintf(stderr, "bench_train: %s: %s\n", backbone, cfa_last_error());
        return 1;
    }
    printf("  %d images of %s, %d epochs, gamma_c %d gamma_d %d, batch %d, feature cache %s, "
           "device %s\n",
           n_train, dir, p.epochs, p.gamma_c, p.gamma_d, p.batch_size,
           p.feature_half ? "float16" : "float32", cfa_backbone_device(bb));
    fflush(stdout);

    rec_t rec;
    memset(&rec, 0, sizeof rec);
    rec.n_images = n_train;
    rec.epoch_end = calloc((size_t)p.epochs + 1, sizeof(double));
    rec.loss = calloc((size_t)p.epochs + 1, sizeof(double));
    train_src src = {files, n_train};
    cfa_image_source is = bench_train_source(&src);
    cfa_model *m = NULL;
    double t0 = bench_now();
    cfa_status st = cfa_train(bb, &p, &is, on_progress, &rec, NULL, &m);
    double total = bench_now() - t0;
    if (st != CFA_OK) {
        fprintf(stderr, "bench_train: cfa_train: %s (%s)\n", cfa_status_str(st),
                cfa_last_error());
        return 1;
    }
    /* per-epoch times; epoch 1 also holds the bank */
    int E = rec.epochs_seen;
    double *ep = calloc((size_t)E + 1, sizeof(double));
    for (int e = 0; e < E; e++)
        ep[e] = rec.epoch_end[e] - (e ? rec.epoch_end[e - 1] : 0.0);
    double median_epoch = 0, bank_s = rec.epoch_s;
    if (E >= 2) {
        double *later = malloc((size_t)(E - 1) * sizeof *later);
        memcpy(later, ep + 1, (size_t)(E - 1) * sizeof *later);
        median_epoch = bench_percentile(later, E - 1, 0.5);
        free(later);
        bank_s = ep[0] - median_epoch;
        if (bank_s < 0)
            bank_s = 0;
    } else if (E == 1) {
        median_epoch = ep[0]; /* bank not separable with one epoch */
        bank_s = 0;
    }
    double per_img_epoch = n_train > 0 && median_epoch > 0 ? median_epoch / n_train : 0;
    double projected = rec.feature_s + bank_s + median_epoch * project;
    double rss = bench_peak_rss_mib();
    printf("  total %.1f s = features %.1f s (%.3f s/image) + bank and %d epoch(s) %.1f s\n",
           total, rec.feature_s, rec.feature_s / n_train, E, rec.epoch_s);
    printf("  bank ~%.1f s%s, epoch median %.1f s, %.4f s per image per epoch\n", bank_s,
           E >= 2 ? " (epoch 1 minus the median of later epochs)" : " (not separable)",
           median_epoch, per_img_epoch);
    if (E != project)
        printf("  projected for %d epochs: %.0f s (features + bank + %d x median epoch)\n",
               project, projected, project);
    printf("  final loss %.6f, bank %d centres, %d channels, peak RSS %.0f MiB\n",
           cfa_model_train_loss(m), cfa_model_bank_size(m), cfa_model_channels(m), rss);
    printf("  load average (1 min) at end: %.2f\n", bench_load1());
    printf("{\"bench\":\"train\",\"images\":%d,\"epochs\":%d,\"gamma_c\":%d,\"gamma_d\":%d,"
           "\"feature_half\":%d,\"device\":\"%s\",\"train_s\":%.3f,\"feature_s\":%.3f,"
           "\"bank_epochs_s\":%.3f,\"bank_s\":%.3f,\"epoch_median_s\":%.3f,"
           "\"s_per_image_epoch\":%.5f,\"projected_epochs\":%d,\"projected_s\":%.1f,"
           "\"loss\":%.6f,\"peak_rss_mib\":%.1f,\"load1\":%.2f}\n",
           n_train, E, p.gamma_c, p.gamma_d, p.feature_half, cfa_backbone_device(bb), total,
           rec.feature_s, rec.epoch_s, bank_s, median_epoch, per_img_epoch, project, projected,
           cfa_model_train_loss(m), rss, bench_load1());
    cfa_model_free(m);
    cfa_backbone_free(bb);
    free(ep);
    free(rec.epoch_end);
    free(rec.loss);
    bench_free_list(files, n_files);
    free(dir);
    return 0;
}
