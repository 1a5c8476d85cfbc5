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
    c->model_cache = 8;
    c->max_body_mb = 32;
    c->max_pixels = 40000000;
    c->min_side = 8;
    c->jpeg_dct_scale = 1;
    c->pixel_budget_mb = 768;
    c->pixel_wait_ms = 1000;
    c->retention = 10000;
    c->drift_window = 200;
    c->max_connections = 256;
    c->max_images = 100000;
    c->request_timeout_s = 60;
    c->header_timeout_s = 10;
    c->body_timeout_s = 10;
    c->body_min_rate_kb = 64;
    /* room for a line of cameras behind one NAT and for loopback benches
     * (64 clients); still leaves half the default --max-connections to
     * the other addresses */
    c->max_conn_per_ip = 128;
    c->protect_metrics = 0;
    c->requeue_jobs = 1;
    c->sink_max_tries = 10;
    c->sink_backoff_ms = 1000;
    c->sink_backoff_max_ms = 300000;
    c->sink_timeout_ms = 10000;
    /* the training defaults and why they differ from the paper's: settings.def */
    settings_defaults(&c->train, SETTINGS_DAEMON);
    c->log_level = LL_INFO;
    c->follow_interval_ms = 2000;
    c->idempotency_window_s = 86400;
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

/* One table drives flags, environment variables and --help; the training
 * flags follow it from the settings table (settings.def). */
enum opt_kind { K_LISTEN, K_PATH, K_DEVICES, K_INT, K_I64, K_BOOL, K_LEVEL, K_LOGFMT };

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
    {"model-cache", "CFA_MODEL_CACHE", K_INT, OFF(model_cache), 1, 1024, "product models kept loaded per worker (default 8)"},
    {"max-body-mb", "CFA_MAX_BODY_MB", K_INT, OFF(max_body_mb), 1, 4096, "largest request body in MiB, else 413 (default 32)"},
    {"max-pixels", "CFA_MAX_PIXELS", K_I64, OFF(max_pixels), 64, 1e10, "largest image in pixels (checked from the header, before decoding), else 422 (default 40000000)"},
    {"min-side", "CFA_MIN_SIDE", K_INT, OFF(min_side), 1, 4096, "smallest image side, else 422 (default 8)"},
    {"pixel-budget-mb", "CFA_PIXEL_BUDGET_MB", K_INT, OFF(pixel_budget_mb), 16, 1048576, "decoded-pixel MiB in flight across uploads, inspections and training (the engine's float copy included); an image over it is 422, one that does not fit in time 503 (default 768)"},
    {"pixel-wait-ms", "CFA_PIXEL_WAIT_MS", K_INT, OFF(pixel_wait_ms), 0, 60000, "how long a request waits for room in --pixel-budget-mb before 503 (default 1000)"},
    {"jpeg-dct-scale", "CFA_JPEG_DCT_SCALE", K_BOOL, OFF(jpeg_dct_scale), 0, 1, "decode a JPEG at the smallest DCT scale (n/8) still at least the model's resize, for inspections and training (1, default), or whole (0)"},
    {"retention", "CFA_RETENTION", K_I64, OFF(retention), 0, 1e12, "newest inspections whose heatmap/map files are kept, pruned every 16 inspections (default 10000)"},
    {"max-connections", "CFA_MAX_CONNECTIONS", K_INT, OFF(max_connections), 1, 100000, "concurrent connections (default 256); 2 more are kept for /healthz and /readyz"},
    {"max-images", "CFA_MAX_IMAGES", K_I64, OFF(max_images), 1, 1e9, "stored training images per product, else 409 (default 100000)"},
    {"tls-cert", "CFA_TLS_CERT", K_PATH, OFF(tls_cert), 0, 0, "PEM certificate (chain): serve HTTPS (needs --tls-key)"},
    {"tls-key", "CFA_TLS_KEY", K_PATH, OFF(tls_key), 0, 0, "PEM private key of --tls-cert"},
    {"request-timeout", "CFA_REQUEST_TIMEOUT", K_INT, OFF(request_timeout_s), 1, 3600, "idle connection timeout in s (default 60)"},
    {"header-timeout", "CFA_HEADER_TIMEOUT", K_INT, OFF(header_timeout_s), 1, 3600, "whole request header in s from the accept (or the previous response), however steadily it trickles, else closed (default 10)"},
    {"body-timeout", "CFA_BODY_TIMEOUT", K_INT, OFF(body_timeout_s), 1, 3600, "whole request body in s: this plus its size at --body-min-rate, else closed (default 10)"},
    {"body-min-rate", "CFA_BODY_MIN_RATE", K_INT, OFF(body_min_rate_kb), 1, 1000000, "slowest body upload in kB/s that --body-timeout allows for (default 64)"},
    {"max-connections-per-ip", "CFA_MAX_CONNECTIONS_PER_IP", K_INT, OFF(max_conn_per_ip), 0, 100000, "concurrent connections from one client address, 0 = no limit (default 128)"},
    {"protect-metrics", "CFA_PROTECT_METRICS", K_BOOL, OFF(protect_metrics), 0, 1, "require an inspect key for /metrics (0/1, default 0)"},
    {"requeue-jobs", "CFA_REQUEUE_JOBS", K_BOOL, OFF(requeue_jobs), 0, 1, "on start-up, re-queue jobs left running (1, default) or fail them (0)"},
    {"web-dir", "CFA_WEB_DIR", K_PATH, OFF(web_dir), 0, 0, "the operator console's files, served at / (default: share/cfa-inspect/web beside the binary, else the source tree's web/)"},
    {"sink-max-tries", "CFA_SINK_MAX_TRIES", K_INT, OFF(sink_max_tries), 1, 1000, "tries of a result sink delivery before it is dead (default 10; POST /v1/sinks/{id}/redeliver puts dead ones back)"},
    {"sink-backoff-ms", "CFA_SINK_BACKOFF_MS", K_INT, OFF(sink_backoff_ms), 1, 3600000, "delay before a sink's first retry in ms, doubling per try, with jitter (default 1000)"},
    {"sink-backoff-max-ms", "CFA_SINK_BACKOFF_MAX_MS", K_INT, OFF(sink_backoff_max_ms), 1, 86400000, "longest delay between a sink's retries in ms (default 300000)"},
    {"sink-timeout-ms", "CFA_SINK_TIMEOUT_MS", K_INT, OFF(sink_timeout_ms), 100, 600000, "one webhook request, or the wait for an MQTT PUBACK, in ms (default 10000)"},
    {"drift-window", "CFA_DRIFT_WINDOW", K_INT, OFF(drift_window), 20, 100000, "newest inspections of a product's active model compared with its calibration scores for drift (default 200)"},
    {"log-level", "CFA_LOG_LEVEL", K_LEVEL, OFF(log_level), 0, 0, "messages shown, of the whole process: debug, info, warn or error, or 0-3 (default info)"},
    {"bundle-key-file", "CFA_BUNDLE_KEY_FILE", K_PATH, OFF(bundle_key_file), 0, 0, "HMAC-SHA256 key (file): model bundles exported are signed with it, bundles imported must be"},
    {"follow", "CFA_FOLLOW", K_PATH, OFF(follow_url), 0, 0, "URL of a trainer (http://host:port): run as an inference replica that copies its products, active versions and thresholds; training and uploads here answer 409"},
    {"follow-key", "CFA_FOLLOW_KEY", K_PATH, OFF(follow_key), 0, 0, "an operate key of the --follow trainer"},
    {"follow-key-file", "CFA_FOLLOW_KEY_FILE", K_PATH, OFF(follow_key_file), 0, 0, "file holding the --follow-key (e.g. a mounted Secret)"},
    {"follow-interval-ms", "CFA_FOLLOW_INTERVAL_MS", K_INT, OFF(follow_interval_ms), 100, 3600000, "how often a replica polls its trainer (default 2000)"},
    {"log-format", "CFA_LOG_FORMAT", K_LOGFMT, OFF(log_json), 0, 0, "text (default: timestamp, level, module, message) or json (one object a line, with an access log line per request)"},
    {"idempotency-window", "CFA_IDEMPOTENCY_WINDOW", K_I64, OFF(idempotency_window_s), 1, 31536000, "seconds a request sent with an Idempotency-Key is answered again with its first answer (default 86400)"},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static int apply(cfg_t *c, const opt_def *o, const char *v, char *err, size_t errlen)
{
    char *base = (char *)c;
    long long ll;
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
    case K_LEVEL:
        /* the log module's own names, so the flag and the log agree */
        if ((ll = log_level_parse(v)) < 0)
            goto bad;
        *(int *)(base + o->off) = (int)ll;
        return 0;
    case K_LOGFMT:
        if ((ll = log_format_parse(v)) < 0)
            goto bad;
        *(int *)(base + o->off) = (int)ll;
        return 0;
    }
bad:
    snprintf(err, errlen, "invalid value for --%s / %s: \"%s\"", o->flag, o->env, v);
    return -1;
}

/* A training flag (settings.def) from a flag or its variable. */
static int apply_setting(cfg_t *c, setting_id id, const char *v, char *err, size_t errlen)
{
    char env[48], why[160];
    if (settings_set_text(&c->train, id, v, why, sizeof why) == 0)
        return 0;
    settings_env_name(id, env, sizeof env);
    snprintf(err, errlen, "invalid value for --%s / %s: %s", settings_table[id].flag, env, why);
    return -1;
}

int cfg_from_env(cfg_t *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(OPTS[i].env);
        if (v != NULL && *v != '\0' && apply(c, &OPTS[i], v, err, errlen) != 0)
            return -1;
    }
    for (int id = 0; id < SETTING_COUNT; id++) {
        char env[48];
        if (settings_table[id].flag == NULL)
            continue;
        settings_env_name((setting_id)id, env, sizeof env);
        const char *v = getenv(env);
        if (v != NULL && *v != '\0' && apply_setting(c, (setting_id)id, v, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/* The --help line of a training flag: its doc, default and range. */
static void usage_setting(FILE *f, setting_id id)
{
    const setting_def *d = &settings_table[id];
    char left[64], env[48], dv[32], pv[32], range[64], paper[64] = "";
    snprintf(left, sizeof left, "--%s=V", d->flag);
    settings_env_name(id, env, sizeof env);
    settings_format(id, d->daemon, dv, sizeof dv);
    settings_format(id, d->paper, pv, sizeof pv);
    settings_describe(id, range, sizeof range);
    if (strcmp(dv, pv) != 0)
        snprintf(paper, sizeof paper, "; the paper: %s", pv);
    fprintf(f, "  %-22s %-20s training default: %s (%s%s; %s)\n", left, env, d->doc, dv, paper,
            range);
}

void cfg_usage(FILE *f, const char *argv0)
{
    fprintf(f, "usage: %s [options]\n\nCFA anomaly inspection HTTP daemon (API v1).\n"
               "Every option can also be set by the environment variable shown;\n"
               "flags win over the environment. Training defaults apply where a\n"
               "product's settings and the POST /train body say nothing.\n\n", argv0);
    for (size_t i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s=V", OPTS[i].flag);
        fprintf(f, "  %-22s %-20s %s\n", left, OPTS[i].env, OPTS[i].help);
    }
    for (int id = 0; id < SETTING_COUNT; id++)
        if (settings_table[id].flag != NULL)
            usage_setting(f, (setting_id)id);
    fprintf(f, "  %-22s %-20s %s\n", "", "CFA_ADMIN_KEY",
            "admin key installed on first start (else one is generated into <data dir>/admin.key)");
    fprintf(f, "  %-22s %-20s %s\n", "--help", "", "this text");
    fprintf(f, "  %-22s %-20s %s\n", "--version", "", "print the version");
}

#define VAL_OPT 1000     /* getopt value of OPTS[i]: VAL_OPT + i            */
#define VAL_SETTING 2000 /* of a training flag: VAL_SETTING + setting_id */

/* getopt_long's table: OPTS, the training flags, --help, --version. */
static void long_options(struct option *lo)
{
    size_t n = 0;
    for (size_t i = 0; i < N_OPTS; i++)
        lo[n++] = (struct option){OPTS[i].flag, required_argument, NULL, VAL_OPT + (int)i};
    for (int id = 0; id < SETTING_COUNT; id++)
        if (settings_table[id].flag != NULL)
            lo[n++] = (struct option){settings_table[id].flag, required_argument, NULL,
                                      VAL_SETTING + id};
    lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n++] = (struct option){"version", no_argument, NULL, 'V'};
    lo[n] = (struct option){NULL, 0, NULL, 0};
}

/* "unknown option", with the nearest flag when one is 1-2 edits away (a
 * GNU abbreviation that fits two flags lands here too). */
static void unknown_option(const struct option *lo, const char *arg, char *err, size_t errlen)
{
    char name[64];
    const char *best = NULL;
    int best_d = 3;
    size_t n = strcspn(arg + strspn(arg, "-"), "=");
    snprintf(name, sizeof name, "%.*s", (int)n, arg + strspn(arg, "-"));
    for (; lo->name != NULL; lo++) {
        int d = settings_distance(name, lo->name);
        if (d < best_d && d < (int)strlen(name)) {
            best = lo->name;
            best_d = d;
        }
    }
    if (best != NULL && best_d == 0)
        snprintf(err, errlen, "option \"%s\" needs a value (see --help)", arg);
    else if (best != NULL)
        snprintf(err, errlen, "unknown option \"%s\" (did you mean --%s?)", arg, best);
    else
        snprintf(err, errlen, "unknown or incomplete option \"%s\" (see --help)", arg);
}

/* getopt_long takes any unambiguous prefix ("--epoch" for --epochs): a
 * typo would then set a flag the operator did not name. 1 (with a message)
 * when the option just read was not written in full. */
static int abbreviated(const char *name, int argc, char **argv, char *err, size_t errlen)
{
    /* a value given as a separate word was read after its option */
    int at = (optarg != NULL && optind >= 2 && optind - 1 < argc && optarg == argv[optind - 1])
                 ? optind - 2 : optind - 1;
    if (at < 1 || at >= argc)
        return 0;
    const char *text = argv[at] + strspn(argv[at], "-");
    size_t n = strcspn(text, "=");
    if (n == strlen(name) && strncmp(text, name, n) == 0)
        return 0;
    snprintf(err, errlen, "unknown option \"--%.*s\" (did you mean --%s?)", (int)n, text, name);
    return 1;
}

int cfg_from_args(cfg_t *c, int argc, char **argv, char *err, size_t errlen)
{
    struct option lo[N_OPTS + SETTING_COUNT + 3];
    long_options(lo);
    optind = 1;
    opterr = 0;
    for (;;) {
        int li = -1;
        /* "+": stop at the first non-option (refused below) instead of
         * permuting, so argv[optind - 1] is what was just read */
        int ch = getopt_long(argc, argv, "+hV", lo, &li);
        if (ch == -1)
            break;
        if (li >= 0 && abbreviated(lo[li].name, argc, argv, err, errlen))
            return -1;
        if (ch == 'h') {
            cfg_usage(stdout, argv[0]);
            return 1;
        }
        if (ch == 'V') {
            printf("cfa-server %s\n", CFA_VERSION_STRING);
            return 1;
        }
        if (ch >= VAL_OPT && ch < VAL_OPT + (int)N_OPTS) {
            if (apply(c, &OPTS[ch - VAL_OPT], optarg, err, errlen) != 0)
                return -1;
            continue;
        }
        if (ch >= VAL_SETTING && ch < VAL_SETTING + SETTING_COUNT) {
            if (apply_setting(c, (setting_id)(ch - VAL_SETTING), optarg, err, errlen) != 0)
                return -1;
            continue;
        }
        unknown_option(lo, optind - 1 < argc ? argv[optind - 1] : "?", err, errlen);
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
    if (c->follow_url[0] != '\0' && c->follow_key[0] == '\0' && c->follow_key_file[0] == '\0') {
        snprintf(err, errlen, "--follow needs --follow-key or --follow-key-file");
        return -1;
    }
    char why[160];
    if (settings_check(&c->train, why, sizeof why) != 0) {
        snprintf(err, errlen, "training defaults: %s", why);
        return -1;
    }
    return 0;
}
