/* config.c - defaults, CFA_* environment variables and flags. */
#include "config.h"

#include "base_log.h"
#include "cfa.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#ifndef CFA_VERSION_STRING
#define CFA_VERSION_STRING "0.1.0"
#endif

void cfg_defaults(cfg_t *c)
{
    const char *home = getenv("HOME");
    const char *cache = getenv("CFA_CACHE_DIR");
    memset(c, 0, sizeof *c);
    snprintf(c->listen_host, sizeof c->listen_host, "127.0.0.1");
    c->listen_port = 8080;
    snprintf(c->data_dir, sizeof c->data_dir, "./var");
    if (cache != NULL && *cache != '\0')
        snprintf(c->backbone, sizeof c->backbone, "%s/resnet50_imagenet.pt", cache);
    else
        snprintf(c->backbone, sizeof c->backbone, "%s/.cache/cfa/resnet50_imagenet.pt",
                 home != NULL ? home : ".");
    snprintf(c->devices[0], sizeof c->devices[0], "cpu");
    c->n_devices = 1;
    c->workers = 1;
    c->threads = 0;
    c->queue_depth = 64;
    c->batch = 8;
    c->batch_wait_ms = 10;
    c->render_queue = 16;
    c->model_cache = 8;
    c->max_body_mb = 32;
    c->max_pixels = 40000000;
    c->min_side = 8;
    c->retention = 10000;
    c->max_connections = 256;
    c->max_images = 100000;
    c->request_timeout_s = 60;
    c->protect_metrics = 0;
    c->requeue_jobs = 1;
    /* -1: the engine's default (cfa_default_params) */
    c->epochs = -1;
    /* the service's default bank compression, chosen from the gamma sweep on
     * magnetic_tile (docs/BENCHMARKS.md): gamma_c = gamma_d = 8 (392 centres x
     * 224 channels) cost 0.10 point of pixel AUROC against the paper's 1/1 and
     * score 4.3x, train 13x faster. The CLI keeps the paper's 1/1. */
    c->gamma_c = 8;
    c->gamma_d = 8;
    c->batch_size = -1;
    c->resize_h = -1;
    c->resize_w = -1;
    c->crop_h = -1;
    c->crop_w = -1;
    c->bank = -1;
    c->seed = -1;
    c->holdout = 0.1;
    c->target_far = 0.0;
    c->margin = 1.0;
    c->log_level = LL_INFO;
}

static int to_ll(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int to_d(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double v;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= min && v <= max))
        return -1;
    *out = v;
    return 0;
}

int cfg_parse_listen(cfg_t *c, const char *s)
{
    const char *colon = strrchr(s, ':');
    long long port = c->listen_port;
    size_t hl;
    if (colon != NULL) {
        if (to_ll(colon + 1, 0, 65535, &port) != 0)
            return -1;
        hl = (size_t)(colon - s);
    } else {
        hl = strlen(s);
    }
    if (hl >= sizeof c->listen_host)
        return -1;
    if (hl > 0) {
        memcpy(c->listen_host, s, hl);
        c->listen_host[hl] = '\0';
    }
    c->listen_port = (int)port;
    return 0;
}

int cfg_parse_devices(cfg_t *c, const char *s)
{
    int n = 0;
    const char *p = s;
    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= sizeof c->devices[0] || n >= CFG_MAX_DEVICES)
            return -1;
        memcpy(c->devices[n], p, len);
        c->devices[n][len] = '\0';
        /* DEV or DEV/PRECISION, by the engine's own rules (cfa.h) */
        if (cfa_device_parse(c->devices[n], NULL, 0, NULL) != CFA_OK)
            return -1;
        n++;
        if (e == NULL)
            break;
        p = e + 1;
    }
    if (n == 0)
        return -1;
    c->n_devices = n;
    return 0;
}

/* One table drives flags, environment variables and --help. */
enum opt_kind { K_LISTEN, K_PATH, K_DEVICES, K_INT, K_I64, K_DBL, K_BANK, K_BOOL, K_LEVEL };

typedef struct opt_def {
    const char *flag;
    const char *env;
    enum opt_kind kind;
    size_t off;
    double min, max;
    const char *help;
} opt_def;

#define OFF(f) offsetof(cfg_t, f)
static const opt_def OPTS[] = {
    {"listen", "CFA_LISTEN", K_LISTEN, 0, 0, 0, "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 = ephemeral)"},
    {"data-dir", "CFA_DATA_DIR", K_PATH, OFF(data_dir), 0, 0, "database, images and admin.key (default ./var)"},
    {"backbone", "CFA_BACKBONE", K_PATH, OFF(backbone), 0, 0, "TorchScript backbone (default $CFA_CACHE_DIR/resnet50_imagenet.pt, else ~/.cache/cfa/resnet50_imagenet.pt)"},
    {"device", "CFA_DEVICE", K_DEVICES, 0, 0, 0, "cpu, or a list cuda:0,cuda:1 (default cpu); /fp16 (CUDA) or /bf16 after a device runs its backbone in that precision, e.g. cuda:0/fp16"},
    {"workers", "CFA_WORKERS", K_INT, OFF(workers), 1, 64, "inference workers per device (default 1)"},
    {"threads", "CFA_THREADS", K_INT, OFF(threads), 0, 256, "libtorch intra-op threads, 0 = cores / (workers x devices)"},
    {"queue-depth", "CFA_QUEUE_DEPTH", K_INT, OFF(queue_depth), 1, 100000, "waiting inspections per device before 503 (default 64)"},
    {"batch", "CFA_BATCH", K_INT, OFF(batch), 1, 256, "largest inference batch (default 8)"},
    {"batch-wait-ms", "CFA_BATCH_WAIT_MS", K_INT, OFF(batch_wait_ms), 0, 10000, "a worker whose batch is not full waits for requests being decoded until the oldest has waited this long (default 10; a lone request never waits)"},
    {"render-queue", "CFA_RENDER_QUEUE", K_INT, OFF(render_queue), 1, 4096, "inspections whose heatmap/map PNGs wait for the render thread; when full, the request renders them itself (default 16)"},
    {"model-cache", "CFA_MODEL_CACHE", K_INT, OFF(model_cache), 1, 1024, "product models kept loaded per worker (default 8)"},
    {"max-body-mb", "CFA_MAX_BODY_MB", K_INT, OFF(max_body_mb), 1, 4096, "largest request body in MiB, else 413 (default 32)"},
    {"max-pixels", "CFA_MAX_PIXELS", K_I64, OFF(max_pixels), 64, 1e10, "largest image in pixels (checked from the header, before decoding), else 422 (default 40000000)"},
    {"min-side", "CFA_MIN_SIDE", K_INT, OFF(min_side), 1, 4096, "smallest image side, else 422 (default 8)"},
    {"retention", "CFA_RETENTION", K_I64, OFF(retention), 0, 1e12, "newest inspections whose heatmap/map files are kept, pruned every 16 inspections (default 10000)"},
    {"max-connections", "CFA_MAX_CONNECTIONS", K_INT, OFF(max_connections), 1, 100000, "concurrent connections (default 256)"},
    {"max-images", "CFA_MAX_IMAGES", K_I64, OFF(max_images), 1, 1e9, "stored training images per product, else 409 (default 100000)"},
    {"tls-cert", "CFA_TLS_CERT", K_PATH, OFF(tls_cert), 0, 0, "PEM certificate (chain): serve HTTPS (needs --tls-key)"},
    {"tls-key", "CFA_TLS_KEY", K_PATH, OFF(tls_key), 0, 0, "PEM private key of --tls-cert"},
    {"request-timeout", "CFA_REQUEST_TIMEOUT", K_INT, OFF(request_timeout_s), 1, 3600, "idle connection timeout in s (default 60)"},
    {"protect-metrics", "CFA_PROTECT_METRICS", K_BOOL, OFF(protect_metrics), 0, 1, "require an inspect key for /metrics (0/1, default 0)"},
    {"requeue-jobs", "CFA_REQUEUE_JOBS", K_BOOL, OFF(requeue_jobs), 0, 1, "on start-up, re-queue jobs left running (1, default) or fail them (0)"},
    {"epochs", "CFA_EPOCHS", K_INT, OFF(epochs), 0, 1000, "training default: epochs (engine default)"},
    {"gamma-c", "CFA_GAMMA_C", K_INT, OFF(gamma_c), 1, 64, "training default: bank compression gamma_c, centres = patches / N (default 8; the paper: 1)"},
    {"gamma-d", "CFA_GAMMA_D", K_INT, OFF(gamma_d), 1, 64, "training default: channel compression gamma_d, channels = 1792 / N (default 8; the paper: 1)"},
    {"batch-size", "CFA_BATCH_SIZE", K_INT, OFF(batch_size), 1, 256, "training default: batch size (engine default)"},
    {"resize-h", "CFA_RESIZE_H", K_INT, OFF(resize_h), 16, 2048, "training default: resize height (engine default)"},
    {"resize-w", "CFA_RESIZE_W", K_INT, OFF(resize_w), 16, 2048, "training default: resize width (engine default)"},
    {"crop-h", "CFA_CROP_H", K_INT, OFF(crop_h), 0, 2048, "training default: centre-crop height, 0 = none (engine default)"},
    {"crop-w", "CFA_CROP_W", K_INT, OFF(crop_w), 0, 2048, "training default: centre-crop width, 0 = none (engine default)"},
    {"bank", "CFA_BANK", K_BANK, OFF(bank), 0, 0, "training default: memory bank method mean|ema (engine default)"},
    {"seed", "CFA_SEED", K_I64, OFF(seed), 0, 9.2e18, "training default: seed (engine default)"},
    {"holdout", "CFA_HOLDOUT", K_DBL, OFF(holdout), 0, 0.5, "fraction of good images held out for threshold calibration (0.1)"},
    {"target-far", "CFA_TARGET_FAR", K_DBL, OFF(target_far), 0, 0.5, "target false-alarm rate on held-out images (0 = max score)"},
    {"margin", "CFA_MARGIN", K_DBL, OFF(margin), 0.1, 10, "threshold = quantile of held-out scores x margin (1.0)"},
    {"log-level", "CFA_LOG_LEVEL", K_LEVEL, OFF(log_level), 0, 0, "messages shown, of the whole process: debug, info, warn or error, or 0-3 (default info)"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static int apply(cfg_t *c, const opt_def *o, const char *v, char *err, size_t errlen)
{
    char *base = (char *)c;
    long long ll;
    double d;
    switch (o->kind) {
    case K_LISTEN:
        if (cfg_parse_listen(c, v) != 0)
            goto bad;
        return 0;
    case K_DEVICES:
        if (cfg_parse_devices(c, v) != 0)
            goto bad;
        return 0;
    case K_PATH:
        if (strlen(v) == 0 || strlen(v) >= CFG_PATH_MAX)
            goto bad;
        snprintf(base + o->off, CFG_PATH_MAX, "%s", v);
        return 0;
    case K_INT:
    case K_BOOL:
        if (to_ll(v, (long long)o->min, (long long)o->max, &ll) != 0)
            goto bad;
        *(int *)(base + o->off) = (int)ll;
        return 0;
    case K_I64:
        if (to_ll(v, (long long)o->min, (long long)o->max, &ll) != 0)
            goto bad;
        *(int64_t *)(base + o->off) = (int64_t)ll;
        return 0;
    case K_DBL:
        if (to_d(v, o->min, o->max, &d) != 0)
            goto bad;
        *(double *)(base + o->off) = d;
        return 0;
    case K_LEVEL:
        /* the log module's own names, so the flag and the log agree */
        if ((ll = log_level_parse(v)) < 0)
            goto bad;
        *(int *)(base + o->off) = (int)ll;
        return 0;
    case K_BANK:
        if (strcmp(v, "mean") == 0)
            c->bank = 0;
        else if (strcmp(v, "ema") == 0)
            c->bank = 1;
        else
            goto bad;
        return 0;
    }
bad:
    snprintf(err, errlen, "invalid value for --%s / %s: \"%s\"", o->flag, o->env, v);
    return -1;
}

int cfg_from_env(cfg_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(OPTS[i].env);
        if (v != NULL && *v != '\0' && apply(c, &OPTS[i], v, err, errlen) != 0)
            return -1;
    }
    return 0;
}

void cfg_usage(FILE *f, const char *argv0)
{
    fprintf(f, "usage: %s [options]\n\nCFA anomaly inspection HTTP daemon (API v1).\n"
               "Every option can also be set by the environment variable shown;\n"
               "flags win over the environment.\n\n", argv0);
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s=V", OPTS[i].flag);
        fprintf(f, "  %-22s %-20s %s\n", left, OPTS[i].env, OPTS[i].help);
    }
    fprintf(f, "  %-22s %-20s %s\n", "", "CFA_ADMIN_KEY",
            "admin key installed on first start (else one is generated into <data dir>/admin.key)");
    fprintf(f, "  %-22s %-20s %s\n", "--help", "", "this text");
    fprintf(f, "  %-22s %-20s %s\n", "--version", "", "print the version");
}

int cfg_from_args(cfg_t *c, int argc, char **argv, char *err, size_t errlen)
{
    struct option lo[N_OPTS + 3];
    size_t i;
    for (i = 0; i < N_OPTS; i++) {
        lo[i].name = OPTS[i].flag;
        lo[i].has_arg = required_argument;
        lo[i].flag = NULL;
        lo[i].val = 1000 + (int)i;
    }
    lo[i++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[i++] = (struct option){"version", no_argument, NULL, 'V'};
    lo[i] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "hV", lo, NULL);
        if (ch == -1)
            break;
        if (ch == 'h') {
            cfg_usage(stdout, argv[0]);
            return 1;
        }
        if (ch == 'V') {
            printf("cfa-server %s\n", CFA_VERSION_STRING);
            return 1;
        }
        if (ch >= 1000 && ch < 1000 + (int)N_OPTS) {
            if (apply(c, &OPTS[ch - 1000], optarg, err, errlen) != 0)
                return -1;
            continue;
        }
        snprintf(err, errlen, "unknown or incomplete option \"%s\" (see --help)",
                 optind - 1 < argc ? argv[optind - 1] : "?");
        return -1;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument \"%s\"", argv[optind]);
        return -1;
    }
    if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0')) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    if ((c->resize_h > 0 && c->crop_h > c->resize_h) ||
        (c->resize_w > 0 && c->crop_w > c->resize_w)) {
        snprintf(err, errlen, "crop must not exceed resize");
        return -1;
    }
    return 0;
}
