/*
 * main.c - cfa-server: wires config, store, inference pool, training job
 * runner and the HTTP API together, and shuts them down in order on SIGTERM
 * or SIGINT: stop accepting, finish requests in flight (at most 30 s),
 * interrupt training (the job is re-queued at the next start), stop the
 * workers, close the database, exit 0.
 * The only file of server/ that includes api/.
 *
 * Every message of the process, the engine's included, goes through the log
 * (base_log.h) at the level of --log-level. The one exception is the
 * "listening on HOST:PORT" line on stdout: it is not a log line but the
 * start-up handshake that supervisors and the tests (daemon_proc.py) wait for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "api.h"
#include "base_log.h"
#include "budget.h"
#include "bundle.h"
#include "cfa.h"
#include "config.h"
#include "follow.h"
#include "inspect.h"
#include "jobs.h"
#include "pool.h"
#include "sinks.h"
#include "store.h"

#ifndef CFA_VERSION_STRING
#define CFA_VERSION_STRING "0.1.0"
#endif

/* What runs, in start order; stopped in reverse. */
typedef struct daemon_parts {
    store_t *st;
    img_budget *pixels; /* decoded pixels in flight, for every decode  */
    pool_t *pool;
    jobs_t *jobs;
    inspect_t *inspect; /* the inspection use case over pool and store */
    follow_t *follow;   /* --follow: the replica's follower thread      */
    uint8_t bundle_key[BUNDLE_KEY_MAX]; /* --bundle-key-file          */
    size_t bundle_key_len;
    sinks_t *sinks;   /* result sink senders over the store's outbox */
    api_ctx ctx;      /* outlives srv, as api_start requires        */
    api_server *srv;
} daemon_parts;

static int fetch_model(void *user, const char *product, int64_t version, void **buf,
                       size_t *len, char *err, size_t errlen)
{
    store_t *st = user;
    store_model_t m;
    memset(&m, 0, sizeof m);
    store_status ss = store_model_get(st, product, version, &m);
    if (ss != STORE_OK) {
        snprintf(err, errlen, "model %s@%lld: %s", product, (long long)version,
                 store_strerror(ss));
        return -1;
    }
    *buf = m.blob;
    *len = m.blob_len;
    m.blob = NULL;
    m.blob_len = 0;
    store_model_clear(&m);
    return 0;
}

/* Defaults, then CFA_* variables, then flags; sets the log level. Returns -1
 * to start the daemon, else the exit status (0 after --help or --version, 2
 * on a bad value). */
static int configure(cfg_t *cfg, int argc, char **argv)
{
    char err[1024] = "";
    cfg_defaults(cfg);
    if (cfg_from_env(cfg, err, sizeof err) != 0) {
        log_error("main", "%s", err);
        return 2;
    }
    int rc = cfg_from_args(cfg, argc, argv, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        log_error("main", "%s", err);
        return 2;
    }
    log_set_level(cfg->log_level);
    log_set_json(cfg->log_json);
    return -1;
}

/* libtorch's own default was 1 intra-op thread on these machines: set it so
 * that inference workers x intra-op threads match the cores */
static void set_engine_threads(const cfg_t *cfg)
{
    int threads = cfg->threads;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long share = cores / ((long)cfg->workers * (cfg->n_devices > 0 ? cfg->n_devices : 1));
        threads = share > 1 ? (int)share : 1;
    }
    cfa_set_threads(threads);
    const char *blas = cfa_blas_core();
    log_info("main", "%d intra-op thread(s) per worker, OpenBLAS core %s", threads,
             blas ? blas : "(not OpenBLAS)");
}

/* The data directory holds the key hashes and every stored image: like
 * PostgreSQL, refuse to start in one that other users may write to (they
 * could replace the database or plant files), naming the chmod that fixes
 * it. A sticky /tmp-like directory is refused too: it is shared by design.
 * 0 when it may be used. */
static int data_dir_private(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        log_error("main", "data directory %s: %s", dir,
                  errno != 0 ? strerror(errno) : "not a directory");
        return -1;
    }
    if ((sb.st_mode & (S_IWGRP | S_IWOTH)) == 0)
        return 0;
    log_error("main",
              "data directory %s has mode %04o: group or others may write to it; "
              "run: chmod 700 %s",
              dir, (unsigned)(sb.st_mode & 07777), dir);
    return -1;
}

/* Files an older version created with wider modes (cfa.db was 0644): they
 * are the daemon's own, so they are narrowed to the owner, with a warning,
 * rather than refused (an upgrade must not stop on them). */
static void narrow_data_files(const char *dir)
{
    static const char *const names[] = {"cfa.db", "cfa.db-wal", "cfa.db-shm", "admin.key"};
    char path[4096];
    struct stat sb;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) != 0 || (sb.st_mode & 077) == 0)
            continue;
        if (chmod(path, sb.st_mode & 0700) != 0)
            log_warn("main", "%s has mode %04o and chmod failed: %s", path,
                     (unsigned)(sb.st_mode & 07777), strerror(errno));
        else
            log_warn("main", "%s had mode %04o; now %04o (owner only)", path,
                     (unsigned)(sb.st_mode & 07777), (unsigned)(sb.st_mode & 0700));
    }
}

/* Creates the data directory, sweeps the temp files of interrupted writes,
 * opens the store, recovers interrupted jobs and installs the first admin
 * key. NULL on failure (logged). */
static store_t *open_data(const cfg_t *cfg)
{
    char err[1024] = "";
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        log_error("main", "cannot create %s: %s", cfg->data_dir, strerror(errno));
        return NULL;
    }
    errno = 0;
    if (data_dir_private(cfg->data_dir) != 0)
        return NULL;
    narrow_data_files(cfg->data_dir);
    int swept = 0;
    if (store_sweep_temp(cfg->data_dir, &swept) != STORE_OK)
        log_warn("main", "could not sweep temp files in %s", cfg->data_dir);
    else if (swept > 0)
        log_warn("main", "removed %d temp file(s) left by an interrupted write", swept);
    store_t *st = NULL;
    store_status ss = store_open(cfg->data_dir, NULL, &st);
    if (ss != STORE_OK) {
        log_error("main", "opening the store in %s: %s (%s)", cfg->data_dir, store_strerror(ss),
                  store_last_error());
        return NULL;
    }
    int touched = 0;
    ss = store_jobs_recover(st, cfg->requeue_jobs, &touched);
    if (ss != STORE_OK)
        log_error("main", "job recovery: %s", store_strerror(ss));
    else if (touched > 0)
        log_warn("main", "%d interrupted job(s) %s", touched,
                 cfg->requeue_jobs ? "re-queued" : "marked failed");
    if (api_bootstrap_admin(st, cfg->data_dir, err, sizeof err) != 0) {
        log_error("main", "%s", err);
        store_close(st);
        return NULL;
    }
    return st;
}

/* Stops what runs, newest first: the API (connections closed), the job
 * runner, the pool, the store. Parts never started are NULL and skipped. */
static void stop_parts(daemon_parts *d)
{
    api_stop(d->srv);
    follow_stop(d->follow);
    sinks_stop(d->sinks);
    inspect_free(d->inspect);
    jobs_stop(d->jobs);
    pool_free(d->pool);
    store_close(d->st);
    img_budget_free(d->pixels);
    memset(d, 0, sizeof *d);
}

/* --bundle-key-file, and for a replica (--follow) the trainer's key and the
 * follower thread. 0, or -1 with err. */
static int start_bundles(daemon_parts *d, const cfg_t *cfg, char *err, size_t errlen)
{
    if (cfg->bundle_key_file[0] != '\0' &&
        bundle_key_load(cfg->bundle_key_file, d->bundle_key, &d->bundle_key_len, err, errlen) != 0)
        return -1;
    if (cfg->follow_url[0] == '\0')
        return 0;
    uint8_t key[BUNDLE_KEY_MAX + 1];
    size_t klen = strlen(cfg->follow_key);
    if (cfg->follow_key_file[0] != '\0') {
        if (bundle_key_load(cfg->follow_key_file, key, &klen, err, errlen) != 0)
            return -1;
    } else {
        memcpy(key, cfg->follow_key, klen);
    }
    key[klen] = '\0';
    follow_options fo = {.url = cfg->follow_url, .key = (const char *)key,
                         .interval_ms = cfg->follow_interval_ms, .st = d->st,
                         .backbone_sha256 = pool_backbone_sha256(d->pool),
                         .bundle_key = d->bundle_key_len > 0 ? d->bundle_key : NULL,
                         .bundle_key_len = d->bundle_key_len};
    return follow_start(&fo, &d->follow, err, errlen);
}

/* Starts the pool, the job runner and the HTTP API on the
 * open store d->st. 0, or -1 (logged) with everything stopped. */
static int start_parts(daemon_parts *d, const cfg_t *cfg)
{
    char err[1024] = "";
    const char *devs[CFG_MAX_DEVICES];
    for (int i = 0; i < cfg->n_devices; i++)
        devs[i] = cfg->devices[i];
    pool_options po = {.backbone_path = cfg->backbone,
                       .devices = devs,
                       .n_devices = cfg->n_devices,
                       .workers_per_device = cfg->workers,
                       .batch = cfg->batch,
                       .batch_wait_ms = cfg->batch_wait_ms,
                       .queue_depth = cfg->queue_depth,
                       .model_cache = cfg->model_cache};
    d->pixels = img_budget_new((size_t)cfg->pixel_budget_mb << 20);
    if (d->pixels == NULL) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    if (pool_create(&po, fetch_model, d->st, &d->pool, err, sizeof err) != 0 ||
        jobs_start(d->st, cfg, d->pixels, cfg->devices[0], &d->jobs, err, sizeof err) != 0)
        goto fail;
    sinks_options so = {.st = d->st, .max_tries = cfg->sink_max_tries,
                        .backoff_ms = cfg->sink_backoff_ms,
                        .backoff_max_ms = cfg->sink_backoff_max_ms > cfg->sink_backoff_ms
                                              ? cfg->sink_backoff_max_ms
                                              : cfg->sink_backoff_ms,
                        .timeout_ms = cfg->sink_timeout_ms};
    if (sinks_start(&so, &d->sinks, err, sizeof err) != 0)
        goto fail;
    inspect_options io = {.st = d->st, .pool = d->pool, .retention = cfg->retention,
                          .jpeg_full = !cfg->jpeg_dct_scale};
    if (inspect_create(&io, &d->inspect) != 0) {
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    if (start_bundles(d, cfg, err, sizeof err) != 0)
        goto fail;
    d->ctx = (api_ctx){.st = d->st,
                       .pool = d->pool,
                       .jobs = d->jobs,
                       .inspect = d->inspect,
                       .pixels = d->pixels,
                       .cfg = cfg,
                       .version = CFA_VERSION_STRING,
                       .bundle_key = d->bundle_key_len > 0 ? d->bundle_key : NULL,
                       .bundle_key_len = d->bundle_key_len,
                       .follow = d->follow};
    if (api_start(&d->ctx, &d->srv, err, sizeof err) != 0)
        goto fail;
    return 0;
fail:
    log_error("main", "%s", err);
    stop_parts(d);
    return -1;
}

int main(int argc, char **argv)
{
    /* every file and directory the daemon creates (the database, its -wal
     * and -shm, stored images) is its owner's alone */
    umask(077);
    cfa_blas_fix_cpu(argv);
    cfa_tune_malloc();
    cfg_t cfg;
    int status = configure(&cfg, argc, argv);
    if (status >= 0)
        return status;
    cfa_log_set(log_engine_sink, NULL);

    /* signals are taken by sigwait() in this thread only */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    set_engine_threads(&cfg);
    daemon_parts d;
    memset(&d, 0, sizeof d);
    if ((d.st = open_data(&cfg)) == NULL || start_parts(&d, &cfg) != 0)
        return 1;
    printf("listening on %s:%d\n", cfg.listen_host, api_port(d.srv));
    fflush(stdout);
    log_info("main", "cfa-server %s: data %s, backbone %s, devices %d x %d worker(s)",
             CFA_VERSION_STRING, cfg.data_dir, cfg.backbone, cfg.n_devices, cfg.workers);

    int sig = 0;
    sigwait(&sigs, &sig);
    log_info("main", "%s received, shutting down", strsignal(sig));
    api_quiesce(d.srv);
    int left = api_drain(d.srv, 30000);
    if (left > 0)
        log_warn("main", "%d request(s) still in flight after 30 s", left);
    stop_parts(&d);
    log_info("main", "stopped");
    return 0;
}
