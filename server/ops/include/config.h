/*
 * config.h - the daemon's settings: defaults, then CFA_* environment
 * variables, then command-line flags (last wins).
 *
 *     cfg_t c;
 *     cfg_defaults(&c);
 *     if (cfg_from_env(&c, err, sizeof err) || cfg_from_args(&c, argc, argv, err, sizeof err) ...)
 *
 * cfg_from_args returns 1 when --help or --version was handled (print and
 * exit 0), -1 on a bad value or an unknown flag (message in err), 0
 * otherwise. The training flags (--epochs, --gamma-c, ...) and their
 * variables come from the settings table (settings.def).
 * Thread-safety: fill once at start-up, read-only afterwards.
 */
#ifndef CFA_CONFIG_H
#define CFA_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "settings.h"

#define CFG_MAX_DEVICES 8
#define CFG_PATH_MAX 1024

typedef struct cfg {
    char listen_host[256];  /* numeric IPv4 address or "localhost"        */
    int listen_port;        /* 0 = ephemeral                              */
    char data_dir[CFG_PATH_MAX];
    char backbone[CFG_PATH_MAX];
    char devices[CFG_MAX_DEVICES][32];
    int n_devices;
    int workers;            /* workers per device                         */
    int threads;            /* libtorch intra-op threads, 0 = leave       */
    int queue_depth;        /* waiting requests per device                */
    int batch;              /* max requests per inference batch          */
    int batch_wait_ms;      /* max wait for a batch to fill               */
    int model_cache;        /* models kept loaded per worker              */
    int max_body_mb;
    int64_t max_pixels;
    int min_side;           /* smallest accepted image side               */
    int pixel_budget_mb;    /* decoded pixels in flight (media/budget.h)  */
    int pixel_wait_ms;      /* wait for the pixel budget before 503       */
    int jpeg_dct_scale;     /* 1: JPEGs decoded at the model's DCT scale   */
    int64_t retention;      /* inspections whose images are kept          */
    int max_connections;
    int64_t max_images;     /* stored images per product, else 409 */
    char tls_cert[CFG_PATH_MAX]; /* PEM; both set = HTTPS, both empty = HTTP */
    char tls_key[CFG_PATH_MAX];
    int request_timeout_s;  /* idle connection timeout                    */
    int header_timeout_s;   /* whole request header, from accept          */
    int body_timeout_s;     /* whole body: this floor + size / rate       */
    int body_min_rate_kb;   /* kB/s a body must at least arrive at        */
    int max_conn_per_ip;    /* open connections per client address, 0 = any */
    int protect_metrics;    /* 1: /metrics needs an inspect key           */
    int requeue_jobs;       /* on start-up: running jobs -> queued (1) or failed (0) */
    int sink_max_tries;     /* result sinks: tries before a delivery is dead */
    int sink_backoff_ms;    /* ... the first retry's delay, doubling      */
    int sink_backoff_max_ms;/* ... up to this                             */
    int sink_timeout_ms;    /* ... one webhook request / MQTT PUBACK      */
    int drift_window;       /* newest inspections the drift statistic reads */
    /* the daemon's training defaults: settings.def's DAEMON column, then
     * CFA_* and flags; every setting set (settings_resolve puts product
     * settings and the POST /train body over them) */
    settings_t train;
    int log_level;          /* LL_DEBUG (0) .. LL_ERROR (3), base_log.h */
    char web_dir[CFG_PATH_MAX]; /* the console's files; "" = the default  */
    /* issue 16: model bundles and replicas that follow a trainer */
    char bundle_key_file[CFG_PATH_MAX]; /* HMAC key: signs bundles, required of imports */
    char follow_url[CFG_PATH_MAX];      /* "": a trainer; else a replica of this URL */
    char follow_key[CFG_PATH_MAX];      /* the trainer's operate key               */
    char follow_key_file[CFG_PATH_MAX]; /* ... or the file that holds it            */
    int follow_interval_ms;             /* between polls of the trainer            */
    int log_json;           /* --log-format: 0 text, 1 json (base_log.h)   */
    int64_t idempotency_window_s; /* Idempotency-Key replays, seconds      */
} cfg_t;

void cfg_defaults(cfg_t *c);
int cfg_from_env(cfg_t *c, char *err, size_t errlen);
int cfg_from_args(cfg_t *c, int argc, char **argv, char *err, size_t errlen);
/* Parses "host:port", "host" or ":port" into c. 0 on success. */
int cfg_parse_listen(cfg_t *c, const char *s);
/* Parses a comma-separated device list ("cpu", "cuda:0,cuda:1"). 0 on success. */
int cfg_parse_devices(cfg_t *c, const char *s);
void cfg_usage(FILE *f, const char *argv0);

#endif
