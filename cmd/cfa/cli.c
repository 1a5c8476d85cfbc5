/* cli.c - `cfa`: train, evaluate and run CFA models on MVTec-layout folders.
 *
 *   cfa train --data DIR --out MODEL [settings]
 *   cfa eval  --data DIR [--model MODEL | settings] [--json]
 *   cfa infer --model MODEL IMAGE [--threshold X] [--heatmap OUT.png] [--map OUT.png]
 *   cfa bundle export|import ...   the daemon's model bundles (bundle_cmd.c)
 *
 * Uses core/ (the engine) and server/'s codecs and metrics, never api/. */
#define _GNU_SOURCE
#include "bundle_cmd.h"
#include "cfa.h"
#include "heatmap.h"
#include "image.h"
#include "eval.h"
#include "base_alloc.h"
#include "base_clock.h"
#include "base_file.h"
#include "base_log.h"
#include "inspect.h"
#include "settings.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *data;
    const char *model_in;
    const char *model_out;
    const char *backbone;
    const char *device;
    const char *heatmap_out;
    const char *map_out;
    const char *image;
    double threshold;   /* infer: decide OK/NG and find regions, as the daemon */
    int has_threshold;
    int threads;
    int max_train;
    int infer_batch;
    int json;
    int quiet;
    int jpeg_full;      /* --jpeg-dct-scale 0: JPEGs decoded whole        */
    settings_t s; /* the settings flags over the paper's defaults (settings.def) */
    cfa_params p; /* what they make, or a loaded model's                      */
} cli_opts;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cfa: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now_s(void)
{
    return mono_ms() / 1e3;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

static long parse_long(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        die("%s: expected an integer in %ld..%ld, got '%s'", flag, lo, hi, v);
    return x;
}

/* a double, as the daemon stores thresholds: a float would round the
 * threshold and could flip a decision at the boundary */
static double parse_double(const char *flag, const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        die("%s: expected a number, got '%s'", flag, v);
    return x;
}

static int is_image_name(const char *n)
{
    const char *dot = strrchr(n, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory: image files, or sub-directories. */
static char **list_dir(const char *dir, int want_dirs, int *count)
{
    DIR *d = opendir(dir);
    *count = 0;
    if (!d)
        return NULL;
    size_t cap = 64, n = 0;
    char **v = xmalloc(cap * sizeof *v);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *full = path_join(dir, e->d_name);
        struct stat st;
        int ok = stat(full, &st) == 0 &&
                 (want_dirs ? S_ISDIR(st.st_mode) : (S_ISREG(st.st_mode) && is_image_name(e->d_name)));
        free(full);
        if (!ok)
            continue;
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        if (!v)
            die("out of memory");
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    *count = (int)n;
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The decoder limits of the daemon's inspections for params' model: a JPEG
 * decoded at the smallest DCT scale still >= its resize (image.h), unless
 * --jpeg-dct-scale 0; so the CLI scores what the daemon scores. */
static img_limits model_limits(const cli_opts *o, const cfa_params *p)
{
    img_limits lim = img_default_limits();
    if (!o->jpeg_full) {
        lim.fit_w = p->resize_w;
        lim.fit_h = p->resize_h;
    }
    return lim;
}

/* ---- training images through the engine's callback ---- */
typedef struct {
    char **paths;
    int n;
    img_rgbf *held;
    img_limits lim;
} file_source;

static int src_get(void *user, int i, cfa_image *out)
{
    file_source *fs = user;
    img_status s = img_load_file_ex(fs->paths[i], &fs->lim, IMG_DECODE_8BIT, &fs->held[i]);
    if (s != IMG_OK) {
        log_error("cli", "%s: %s", fs->paths[i], img_status_str(s));
        return -1;
    }
    out->width = fs->held[i].width;
    out->height = fs->held[i].height;
    out->rgb = fs->held[i].rgb;
    out->rgb8 = fs->held[i].rgb8;
    return 0;
}

static void src_release(void *user, int i, cfa_image *img)
{
    (void)img;
    img_rgbf_free(&((file_source *)user)->held[i]);
}

static void on_progress(const cfa_progress *p, void *user)
{
    const cli_opts *o = user;
    static const char *last_phase = NULL;
    static int last_epoch = -1;
    if (o->quiet)
        return;
    if (p->phase != last_phase || p->epoch != last_epoch || !strcmp(p->phase, "done")) {
        if (!strcmp(p->phase, "epochs"))
            log_info("cli", "epoch %d/%d loss %.5f (%.1f s)", p->epoch, p->epochs, p->loss,
                     p->epoch_seconds);
        else if (!strcmp(p->phase, "bank"))
            log_info("cli", "features done (%.1f s), building memory bank", p->feature_seconds);
        last_phase = p->phase;
        last_epoch = p->epoch;
    }
}

static cfa_backbone *load_backbone(const cli_opts *o)
{
    cfa_backbone *bb = NULL;
    if (cfa_backbone_load(o->backbone, o->device, &bb) != CFA_OK)
        die("backbone %s: %s", o->backbone, cfa_last_error());
    return bb;
}

typedef struct {
    double feature_seconds, epoch_seconds, train_seconds;
    int n_train;
} train_stats;

/* Progress sink that also records the time split. */
typedef struct {
    const cli_opts *o;
    double feature_seconds, epoch_seconds;
} split_rec;

static void on_progress_split(const cfa_progress *p, void *user)
{
    split_rec *r = user;
    r->feature_seconds = p->feature_seconds;
    r->epoch_seconds = p->epoch_seconds;
    on_progress(p, (void *)r->o);
}

static cfa_model *train_split(cfa_backbone *bb, const cli_opts *o, train_stats *ts)
{
    char *dir = path_join(o->data, "train/good");
    int n = 0;
    char **names = list_dir(dir, 0, &n);
    if (!names || n == 0)
        die("no training images in %s", dir);
    int total = n;
    if (o->max_train > 0 && n > o->max_train)
        n = o->max_train;
    file_source fs = {xmalloc(n * sizeof(char *)), n, calloc(n, sizeof(img_rgbf)),
                      model_limits(o, &o->p)};
    for (int i = 0; i < n; i++)
        fs.paths[i] = path_join(dir, names[i]);
    cfa_image_source src = {n, src_get, src_release, &fs};
    if (!o->quiet)
        log_info("cli", "training on %d of %d images in %s, %d epochs", n, total, dir, o->p.epochs);
    split_rec rec = {o, 0, 0};
    double t0 = now_s();
    cfa_model *m = NULL;
    cfa_status s = cfa_train(bb, &o->p, &src, on_progress_split, &rec, NULL, &m);
    ts->train_seconds = now_s() - t0;
    if (s != CFA_OK)
        die("training failed: %s", cfa_last_error());
    ts->n_train = n;
    ts->feature_seconds = rec.feature_seconds;
    ts->epoch_seconds = rec.epoch_seconds;
    for (int i = 0; i < n; i++)
        free(fs.paths[i]);
    free(fs.paths);
    free(fs.held);
    free_list(names, total);
    free(dir);
    return m;
}

static void *read_all(const char *path, size_t *len)
{
    void *buf = NULL;
    img_status s = img_read_file(path, (size_t)4 << 30, &buf, len);
    if (s != IMG_OK)
        die("%s: %s", path, img_status_str(s));
    return buf;
}

static cfa_model *load_model(const char *path, const cfa_backbone *bb)
{
    size_t len = 0;
    void *buf = read_all(path, &len);
    cfa_model *m = NULL;
    if (cfa_model_load(buf, len, bb, &m) != CFA_OK)
        die("model %s: %s", path, cfa_last_error());
    free(buf);
    return m;
}

static void save_model(const cfa_model *m, const char *path)
{
    void *buf = NULL;
    size_t len = 0;
    char err[512];
    if (cfa_model_save(m, &buf, &len) != CFA_OK)
        die("cannot serialise model: %s", cfa_last_error());
    if (file_write_durable(path, buf, len, 0644, err, sizeof err) != 0)
        die("cannot write %s: %s", path, err);
    cfa_free(buf);
}

/* A model's parameters, named and typed as the settings table has them. */
static json_t *settings_json(const cfa_params *p)
{
    settings_t s;
    settings_from_params(p, &s);
    return settings_to_json(&s, SW_ENGINE);
}

/* ---- eval ---- */
typedef struct {
    char *path;
    char *mask_path; /* NULL for good images */
    char *name;      /* defect/file, for reports */
    int label;
} test_item;

static test_item *list_test(const char *data, int *count)
{
    char *tdir = path_join(data, "test");
    int nd = 0;
    char **defects = list_dir(tdir, 1, &nd);
    if (!defects || nd == 0)
        die("no test folders in %s", tdir);
    size_t cap = 64, n = 0;
    test_item *v = xmalloc(cap * sizeof *v);
    for (int d = 0; d < nd; d++) {
        char *ddir = path_join(tdir, defects[d]);
        int nf = 0;
        char **files = list_dir(ddir, 0, &nf);
        int good = strcmp(defects[d], "good") == 0;
        for (int f = 0; f < nf; f++) {
            if (n == cap && !(v = realloc(v, (cap *= 2) * sizeof *v)))
                die("out of memory");
            test_item *it = &v[n++];
            it->path = path_join(ddir, files[f]);
            size_t nl = strlen(defects[d]) + strlen(files[f]) + 2;
            it->name = xmalloc(nl);
            snprintf(it->name, nl, "%s/%s", defects[d], files[f]);
            it->label = !good;
            it->mask_path = NULL;
            if (!good) {
                char stem[PATH_MAX];
                snprintf(stem, sizeof stem, "%s", files[f]);
                char *dot = strrchr(stem, '.');
                if (dot)
                    *dot = 0;
                char rel[PATH_MAX + 64];
                snprintf(rel, sizeof rel, "ground_truth/%s/%s_mask.png", defects[d], stem);
                it->mask_path = path_join(data, rel);
            }
        }
        free_list(files, nf);
        free(ddir);
    }
    free_list(defects, nd);
    free(tdir);
    *count = (int)n;
    return v;
}

static int cmd_eval(cli_opts *o)
{
    if (!o->data)
        die("eval: --data DIR is required");
    cfa_backbone *bb = load_backbone(o);
    train_stats ts = {0, 0, 0, 0};
    cfa_model *m;
    if (o->model_in) {
        m = load_model(o->model_in, bb);
        o->p = cfa_model_params(m);
    } else {
        m = train_split(bb, o, &ts);
        if (o->model_out)
            save_model(m, o->model_out);
    }
    const cfa_params mp = cfa_model_params(m);
    int mh, mw;
    cfa_model_geometry(&mp, &mh, &mw);

    int n = 0;
    test_item *items = list_test(o->data, &n);
    float *scores = xmalloc(n * sizeof(float));
    uint8_t *labels = xmalloc(n);
    const size_t npx = (size_t)mh * mw;
    float *pix_scores = xmalloc((size_t)n * npx * sizeof(float));
    uint8_t *pix_labels = xmalloc((size_t)n * npx);
    const float **maps = xmalloc(n * sizeof(float *));
    const uint8_t **masks = xmalloc(n * sizeof(uint8_t *));
    int *ws = xmalloc(n * sizeof(int)), *hs = xmalloc(n * sizeof(int));

    const int B = o->infer_batch > 0 ? o->infer_batch : 1;
    double t_model = 0;
    img_rgbf *imgs = xmalloc(B * sizeof(img_rgbf));
    const img_limits lim = model_limits(o, &mp);
    cfa_image *cimgs = xmalloc(B * sizeof(cfa_image));
    cfa_result *res = xmalloc(B * sizeof(cfa_result));
    for (int s = 0; s < n; s += B) {
        int bn = n - s < B ? n - s : B;
        for (int i = 0; i < bn; i++) {
            img_status st = img_load_file_ex(items[s + i].path, &lim, IMG_DECODE_8BIT, &imgs[i]);
            if (st != IMG_OK)
                die("%s: %s", items[s + i].path, img_status_str(st));
            cimgs[i] = (cfa_image){imgs[i].width, imgs[i].height, imgs[i].rgb, imgs[i].rgb8};
        }
        double t0 = now_s();
        if (cfa_score(bb, m, cimgs, bn, res) != CFA_OK)
            die("scoring failed: %s", cfa_last_error());
        t_model += now_s() - t0;
        for (int i = 0; i < bn; i++) {
            int k = s + i;
            if (inspect_map_to_source(&res[i], imgs[i].src_width, imgs[i].src_height) != 0)
                die("out of memory");
            scores[k] = res[i].score;
            labels[k] = (uint8_t)items[k].label;
            memcpy(pix_scores + (size_t)k * npx, res[i].model_map, npx * sizeof(float));
            uint8_t *mdst = pix_labels + (size_t)k * npx;
            if (items[k].mask_path) {
                int w = 0, h = 0;
                uint8_t *mask = NULL;
                img_status st = img_load_file_gray8(items[k].mask_path, NULL, &w, &h, &mask);
                if (st != IMG_OK)
                    die("%s: %s", items[k].mask_path, img_status_str(st));
                cfa_mask_to_model(&mp, mask, w, h, mdst);
                for (size_t j = 0; j < npx; j++)
                    mdst[j] = mdst[j] > 127;
                free(mask);
            } else {
                memset(mdst, 0, npx);
            }
            maps[k] = pix_scores + (size_t)k * npx;
            masks[k] = mdst;
            ws[k] = mw;
            hs[k] = mh;
            cfa_result_clear(&res[i]);
            img_rgbf_free(&imgs[i]);
        }
    }
    double i_auroc = metrics_auroc(scores, labels, (size_t)n);
    double p_auroc = metrics_auroc(pix_scores, pix_labels, (size_t)n * npx);
    double aupro = metrics_aupro(maps, masks, ws, hs, n, 0.3);
    double ips = t_model > 0 ? n / t_model : 0;

    int n_defective = 0;
    for (int i = 0; i < n; i++)
        n_defective += labels[i];
    printf("images: %d train, %d test (%d defective)\n", ts.n_train, n, n_defective);
    printf("I-AUROC %.4f  P-AUROC %.4f  AUPRO(0.3) %.4f\n", i_auroc, p_auroc, aupro);
    if (!o->model_in)
        printf("training %.1f s (features %.1f s, bank + epochs %.1f s)\n", ts.train_seconds,
               ts.feature_seconds, ts.epoch_seconds);
    printf("inference %.2f images/s (batch %d, model time only)\n", ips, B);
    if (o->json) {
        json_t *per = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(per, json_pack("{s:s,s:f,s:i}", "image", items[i].name, "score",
                                                 (double)scores[i], "label", labels[i]));
        json_t *j = json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:i,s:i,s:i,s:o,s:o,s:s}", "image_auroc", i_auroc,
                              "pixel_auroc", p_auroc, "aupro", aupro, "train_seconds", ts.train_seconds,
                              "feature_seconds", ts.feature_seconds, "epoch_seconds", ts.epoch_seconds,
                              "infer_images_per_s", ips, "n_train", ts.n_train, "n_test", n, "infer_batch", B,
                              "settings", settings_json(&mp), "scores", per, "backbone_sha256",
                              cfa_backbone_sha256(bb));
        char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
        printf("%s\n", s);
        free(s);
        json_decref(j);
    }
    for (int i = 0; i < n; i++) {
        free(items[i].path);
        free(items[i].mask_path);
        free(items[i].name);
    }
    free(items);
    free(scores);
    free(labels);
    free(pix_scores);
    free(pix_labels);
    free(maps);
    free(masks);
    free(ws);
    free(hs);
    free(imgs);
    free(cimgs);
    free(res);
    cfa_model_free(m);
    cfa_backbone_free(bb);
    return 0;
}

static int cmd_train(cli_opts *o)
{
    if (!o->data || !o->model_out)
        die("train: --data DIR and --out MODEL are required");
    cfa_backbone *bb = load_backbone(o);
    train_stats ts;
    cfa_model *m = train_split(bb, o, &ts);
    save_model(m, o->model_out);
    printf("wrote %s: %d centres x %d channels, loss %.5f, %.1f s (features %.1f s, bank + epochs %.1f s)\n",
           o->model_out, cfa_model_bank_size(m), cfa_model_channels(m), cfa_model_train_loss(m),
           ts.train_seconds, ts.feature_seconds, ts.epoch_seconds);
    cfa_model_free(m);
    cfa_backbone_free(bb);
    return 0;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

/* Writes and frees the PNG an encoder has just made (est its status). */
static void write_png(const char *path, img_status est, void *png, size_t len)
{
    if (est != IMG_OK)
        die("PNG encoding failed");
    write_file(path, png, len);
    free(png);
}

static int cmd_infer(cli_opts *o)
{
    if (!o->model_in || !o->image)
        die("infer: --model MODEL and an IMAGE are required");
    cfa_backbone *bb = load_backbone(o);
    cfa_model *m = load_model(o->model_in, bb);
    img_rgbf img;
    cfa_params mp = cfa_model_params(m);
    const img_limits lim = model_limits(o, &mp);
    img_status st = img_load_file_ex(o->image, &lim, IMG_DECODE_8BIT, &img);
    if (st != IMG_OK)
        die("%s: %s", o->image, img_status_str(st));
    cfa_image ci = {img.width, img.height, img.rgb, img.rgb8};
    cfa_result r;
    double t0 = now_s();
    if (cfa_score(bb, m, &ci, 1, &r) != CFA_OK)
        die("scoring failed: %s", cfa_last_error());
    /* the answer in the image's own coordinates, as the daemon's */
    if (inspect_map_to_source(&r, img.src_width, img.src_height) != 0)
        die("out of memory");
    double dt = now_s() - t0;
    size_t npx = (size_t)r.width * r.height;
    float map_max = 0;
    for (size_t i = 0; i < npx; i++)
        map_max = r.map[i] > map_max ? r.map[i] : map_max;
    void *png = NULL;
    size_t len = 0;
    if (o->heatmap_out) {
        uint8_t *rgb = xmalloc(npx * 3);
        heatmap_render(r.map, r.width, r.height, &img, 0.0f, map_max, rgb);
        img_status est = png_encode_rgb8(rgb, r.width, r.height, &png, &len);
        free(rgb);
        write_png(o->heatmap_out, est, png, len);
    }
    if (o->map_out) {
        uint16_t *px = xmalloc(npx * sizeof(uint16_t));
        heatmap_map16(r.map, npx, map_max, px);
        img_status est = png_encode_gray16(px, r.width, r.height, &png, &len);
        free(px);
        write_png(o->map_out, est, png, len);
    }
    json_t *j = json_pack("{s:s,s:f,s:f,s:i,s:i,s:f}", "image", o->image, "score", (double)r.score, "map_max",
                          (double)map_max, "width", r.width, "height", r.height, "model_ms", dt * 1000.0);
    if (o->has_threshold) {
        /* the daemon's decision and regions (inspect.h), from the same map */
        heatmap_region *regs = NULL;
        int n_regs = 0;
        if (inspect_regions(r.map, r.width, r.height, o->threshold, &regs, &n_regs) != 0)
            die("region search failed: out of memory");
        json_object_set_new(j, "threshold", json_real(o->threshold));
        json_object_set_new(j, "decision", json_string(inspect_decide(r.score, o->threshold)));
        json_object_set_new(j, "regions", inspect_regions_json(regs, n_regs));
        free(regs);
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
    printf("%s\n", s);
    free(s);
    json_decref(j);
    cfa_result_clear(&r);
    img_rgbf_free(&img);
    cfa_model_free(m);
    cfa_backbone_free(bb);
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  cfa train --data DIR --out MODEL [settings]\n"
          "  cfa eval  --data DIR [--model MODEL | settings [--out MODEL]] [--json] [--infer-batch N]\n"
          "  cfa infer --model MODEL IMAGE [--threshold X] [--heatmap OUT.png] [--map OUT.png]\n"
          "            --threshold: also the daemon's decision (NG when score >= X) and regions\n"
          "  cfa info              BLAS kernels and CUDA devices this process uses\n"
          "  cfa bundle export --model MODEL --product ID --threshold X --out FILE [--name N]\n"
          "                    [--key-file K]   a model file as a bundle the daemon imports\n"
          "  cfa bundle import FILE --out MODEL [--key-file K]   a daemon's bundle checked\n"
          "                    (checksum, signature, --backbone) into a model file\n"
          "\n"
          "DIR is an MVTec-layout folder: train/good, test/<type>, ground_truth/<type>/<stem>_mask.png.\n"
          "\n"
          "common:\n"
          "  --backbone PATH     TorchScript backbone (default $CFA_BACKBONE or ~/.cache/cfa/resnet50_imagenet.pt)\n"
          "  --device DEV        cpu (default) or cuda:N\n"
          "  --threads N         libtorch intra-op threads (default: all cores)\n"
          "  --max-train N       train on the first N images of train/good (name order)\n"
          "  --quiet             no progress on stderr\n"
          "  --jpeg-dct-scale 0|1  1 (default): decode a JPEG at the smallest DCT scale still\n"
          "                      >= the model's resize, as the daemon does; 0: whole\n"
          "settings (the paper's values are the defaults):\n",
          f);
    settings_cli_usage(f);
}

/* Dies on an argument no command takes, naming a settings flag 1-2 edits
 * away ("--gama-c": did you mean --gamma-c?). */
static void unknown_argument(const char *a)
{
    const char *near = strncmp(a, "--", 2) == 0 ? settings_suggest(a + 2, SETTINGS_NAMES_CLI, 0)
                                                : NULL;
    if (near != NULL)
        die("unknown argument '%s' (did you mean --%s?)", a, near);
    die("unknown argument '%s' (see cfa --help)", a);
}

int main(int argc, char **argv)
{
    cfa_blas_fix_cpu(argv);
    cfa_tune_malloc();
    cfa_log_set(log_engine_sink, NULL); /* the engine's messages as the CLI's */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "info")) {
        /* what this process runs on: the BLAS kernels chosen (blas_cpu.c) and
         * the CUDA devices libtorch sees */
        const char *blas = cfa_blas_core();
        printf("blas_core %s\n", blas ? blas : "none");
        printf("openblas_coretype %s\n", getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "-");
        printf("cuda_devices %d\n", cfa_cuda_device_count());
        return 0;
    }
    cli_opts o;
    memset(&o, 0, sizeof o);
    o.p = cfa_default_params();
    o.device = "cpu";
    o.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *env_bb = getenv("CFA_BACKBONE");
    static char default_bb[PATH_MAX];
    if (env_bb && *env_bb) {
        o.backbone = env_bb;
    } else {
        const char *cache = getenv("CFA_CACHE_DIR");
        if (cache && *cache)
            snprintf(default_bb, sizeof default_bb, "%s/resnet50_imagenet.pt", cache);
        else
            snprintf(default_bb, sizeof default_bb, "%s/.cache/cfa/resnet50_imagenet.pt",
                     getenv("HOME") ? getenv("HOME") : ".");
        o.backbone = default_bb;
    }
    if (!strcmp(cmd, "bundle"))
        return cmd_bundle(argc - 2, argv + 2, o.backbone);
    settings_defaults(&o.s, SETTINGS_PAPER);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        char serr[256];
        int sr = settings_cli_arg(&o.s, argc, argv, &i, serr, sizeof serr);
        if (sr < 0)
            die("%s", serr);
        if (sr > 0)
            continue;
#define NEXT() (i + 1 < argc ? argv[++i] : (die("%s needs a value", a), (const char *)NULL))
        if (!strcmp(a, "--data"))
            o.data = NEXT();
        else if (!strcmp(a, "--model"))
            o.model_in = NEXT();
        else if (!strcmp(a, "--out"))
            o.model_out = NEXT();
        else if (!strcmp(a, "--backbone"))
            o.backbone = NEXT();
        else if (!strcmp(a, "--device"))
            o.device = NEXT();
        else if (!strcmp(a, "--heatmap"))
            o.heatmap_out = NEXT();
        else if (!strcmp(a, "--map"))
            o.map_out = NEXT();
        else if (!strcmp(a, "--threshold")) {
            o.threshold = parse_double(a, NEXT());
            o.has_threshold = 1;
            if (!inspect_threshold_valid(o.threshold))
                die("--threshold: expected a number above 0 and at most %g (scores are "
                    "float32), got %g", (double)FLT_MAX, o.threshold);
        }
        else if (!strcmp(a, "--threads"))
            o.threads = (int)parse_long(a, NEXT(), 1, 1024);
        else if (!strcmp(a, "--max-train"))
            o.max_train = (int)parse_long(a, NEXT(), 1, INT_MAX);
        else if (!strcmp(a, "--infer-batch"))
            o.infer_batch = (int)parse_long(a, NEXT(), 1, 256);
        else if (!strcmp(a, "--json"))
            o.json = 1;
        else if (!strcmp(a, "--jpeg-dct-scale"))
            o.jpeg_full = !parse_long(a, NEXT(), 0, 1);
        else if (!strcmp(a, "--quiet")) {
            o.quiet = 1;
            log_set_level(LL_WARN); /* progress is info; warnings still show */
        }
        else if (a[0] != '-' && !o.image && !strcmp(cmd, "infer"))
            o.image = a;
        else
            unknown_argument(a);
#undef NEXT
    }
    char serr[256];
    if (settings_check(&o.s, serr, sizeof serr) != 0)
        die("%s", serr);
    settings_apply(&o.s, &o.p, NULL);
    cfa_set_threads(o.threads);
    if (!strcmp(cmd, "train"))
        return cmd_train(&o);
    if (!strcmp(cmd, "eval"))
        return cmd_eval(&o);
    if (!strcmp(cmd, "infer"))
        return cmd_infer(&o);
    usage(stderr);
    return 2;
}
