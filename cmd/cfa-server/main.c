/*
 * main.c - cfa-server: wires config, store, inference pool, training job
 * runner and the HTTP API together, and shuts them down in order on SIGTERM
 * or SIGINT: stop accepting, finish requests in flight (at most 30 s),
 * interrupt training (the job is re-queued at the next start), stop the
 * workers, close the database, exit 0.
 * The only file of server/ that includes api/.
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
#include "cfa.h"
#include "config.h"
#include "inspect.h"
#include "jobs.h"
#include "pool.h"
#include "store.h"

#ifndef CFA_VERSION_STRING
#define CFA_VERSION_STRING "0.1.0"
#endif

static int log_level = 1;

static void on_cfa_log(int level, const char *msg, void *user)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    (void)user;
    if (level < log_level)
        return;
    fprintf(stderr, "core %s: %s\n", names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

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

int main(int argc, char **argv)
{
    cfa_blas_fix_cpu(argv);
    cfa_tune_malloc();
    cfg_t cfg;
    char err[1024] = "";
    int rc;

    cfg_defaults(&cfg);
    if (cfg_from_env(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cfa-server: %s\n", err);
        return 2;
    }
    rc = cfg_from_args(&cfg, argc, argv, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "cfa-server: %s\n", err);
        return 2;
    }
    log_level = cfg.log_level;

    /* signals are taken by sigwait() in this thread only */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    cfa_log_set(on_cfa_log, NULL);
    /* libtorch's own default was 1 thread on these machines (BACKBONE.md): set it
     * so that inference workers x intra-op threads match the cores */
    int threads = cfg.threads;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long share = cores / ((long)cfg.workers * (cfg.n_devices > 0 ? cfg.n_devices : 1));
        threads = share > 1 ? (int)share : 1;
    }
    cfa_set_threads(threads);
    {
        const char *blas = cfa_blas_core();
        fprintf(stderr, "cfa-server: %d intra-op thread(s) per worker, OpenBLAS core %s\n", threads,
                blas ? blas : "(not OpenBLAS)");
    }

    if (mkdir(cfg.data_dir, 0750) != 0 && errno != EEXIST) {
        fprintf(stderr, "cfa-server: cannot create %s: %s\n", cfg.data_dir, strerror(errno));
        return 1;
    }
    int swept = 0;
    if (store_sweep_temp(cfg.data_dir, &swept) != STORE_OK)
        fprintf(stderr, "cfa-server: could not sweep temp files in %s\n", cfg.data_dir);
    else if (swept > 0)
        fprintf(stderr, "cfa-server: removed %d temp file(s) left by an interrupted write\n",
                swept);
    store_t *st = NULL;
    store_status ss = store_open(cfg.data_dir, NULL, &st);
    if (ss != STORE_OK) {
        fprintf(stderr, "cfa-server: opening the store in %s: %s\n", cfg.data_dir,
                store_strerror(ss));
        return 1;
    }
    int touched = 0;
    ss = store_jobs_recover(st, cfg.requeue_jobs, &touched);
    if (ss != STORE_OK)
        fprintf(stderr, "cfa-server: job recovery: %s\n", store_strerror(ss));
    else if (touched > 0)
        fprintf(stderr, "cfa-server: %d interrupted job(s) %s\n", touched,
                cfg.requeue_jobs ? "re-queued" : "marked failed");
    if (api_bootstrap_admin(st, cfg.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "cfa-server: %s\n", err);
        store_close(st);
        return 1;
    }

    const char *devs[CFG_MAX_DEVICES];
    for (int i = 0; i < cfg.n_devices; i++)
        devs[i] = cfg.devices[i];
    pool_options po = {.backbone_path = cfg.backbone,
                       .devices = devs,
                       .n_devices = cfg.n_devices,
                       .workers_per_device = cfg.workers,
                       .batch = cfg.batch,
                       .batch_wait_ms = cfg.batch_wait_ms,
                       .queue_depth = cfg.queue_depth,
                       .model_cache = cfg.model_cache};
    pool_t *pool = NULL;
    if (pool_create(&po, fetch_model, st, &pool, err, sizeof err) != 0) {
        fprintf(stderr, "cfa-server: %s\n", err);
        store_close(st);
        return 1;
    }
    jobs_t *jobs = NULL;
    if (jobs_start(st, &cfg, cfg.devices[0], &jobs, err, sizeof err) != 0) {
        fprintf(stderr, "cfa-server: %s\n", err);
        pool_free(pool);
        store_close(st);
        return 1;
    }

    render_t *render = NULL;
    if (render_create(st, cfg.render_queue, &render) != 0)
        fprintf(stderr, "cfa-server: no render thread: heatmaps are rendered in the request\n");
    inspect_t *insp = NULL;
    inspect_options io = {.st = st, .pool = pool, .render = render, .retention = cfg.retention};
    if (inspect_create(&io, &insp) != 0)
        snprintf(err, sizeof err, "out of memory");
    api_ctx ctx = {.st = st,
                   .pool = pool,
                   .jobs = jobs,
                   .render = render,
                   .inspect = insp,
                   .cfg = &cfg,
                   .version = CFA_VERSION_STRING};
    api_server *srv = NULL;
    if (insp == NULL || api_start(&ctx, &srv, err, sizeof err) != 0) {
        fprintf(stderr, "cfa-server: %s\n", err);
        inspect_free(insp);
        render_free(render);
        jobs_stop(jobs);
        pool_free(pool);
        store_close(st);
        return 1;
    }
    printf("listening on %s:%d\n", cfg.listen_host, api_port(srv));
    fflush(stdout);
    fprintf(stderr, "cfa-server %s: data %s, backbone %s, devices %d x %d worker(s)\n",
            CFA_VERSION_STRING, cfg.data_dir, cfg.backbone, cfg.n_devices, cfg.workers);

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "cfa-server: %s received, shutting down\n", strsignal(sig));
    api_quiesce(srv);
    int left = api_drain(srv, 30000);
    if (left > 0)
        fprintf(stderr, "cfa-server: %d request(s) still in flight after 30 s\n", left);
    api_stop(srv);
    inspect_free(insp);
    render_free(render); /* writes the heatmaps still queued */
    jobs_stop(jobs);
    pool_free(pool);
    store_close(st);
    fprintf(stderr, "cfa-server: stopped\n");
    return 0;
}
