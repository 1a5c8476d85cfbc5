/* metrics_prom.c - Prometheus text exposition (format 0.0.4). */
#define _GNU_SOURCE
#include "metrics_prom.h"
#include "metrics_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double LAT_BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_LAT (sizeof LAT_BUCKETS / sizeof LAT_BUCKETS[0])
static const double BATCH_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64};
#define N_BATCH (sizeof BATCH_BUCKETS / sizeof BATCH_BUCKETS[0])

typedef struct series {
    char method[8];
    char route[64];
    int status;
    uint64_t count;
} series;

typedef struct hist {
    char route[64];
    uint64_t buckets[N_LAT];
    uint64_t count;
    double sum;
} hist;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static series req[MP_MAX_SERIES];
static int n_req;
static hist lat[64];
static int n_lat;
static uint64_t batch_buckets[N_BATCH];
static uint64_t batch_count;
static double batch_sum;
static hist infer;
static uint64_t rejected;
static const char *CLOSE_REASONS[3] = {"header_timeout", "body_timeout", "evicted"};
static uint64_t conn_closed[3];
static uint64_t trained[5];
static double train_seconds;
static const double TRAIN_BUCKETS[] = {10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200};
#define N_TRAIN (sizeof TRAIN_BUCKETS / sizeof TRAIN_BUCKETS[0])
static uint64_t train_buckets[N_TRAIN];
static const char *STATES[5] = {"queued", "running", "succeeded", "failed", "canceled"};

void mp_request(const char *method, const char *route, int status, double seconds)
{
    pthread_mutex_lock(&mu);
    int i;
    for (i = 0; i < n_req; i++)
        if (req[i].status == status && strcmp(req[i].route, route) == 0 &&
            strcmp(req[i].method, method) == 0)
            break;
    if (i == n_req) {
        if (n_req < MP_MAX_SERIES) {
            snprintf(req[i].method, sizeof req[i].method, "%s", method);
            snprintf(req[i].route, sizeof req[i].route, "%s", route);
            req[i].status = status;
            n_req++;
        } else {
            i = -1;
        }
    }
    if (i >= 0)
        req[i].count++;
    for (i = 0; i < n_lat; i++)
        if (strcmp(lat[i].route, route) == 0)
            break;
    if (i == n_lat && n_lat < (int)(sizeof lat / sizeof lat[0])) {
        snprintf(lat[i].route, sizeof lat[i].route, "%s", route);
        n_lat++;
    }
    if (i < n_lat) {
        for (size_t b = 0; b < N_LAT; b++)
            if (seconds <= LAT_BUCKETS[b])
                lat[i].buckets[b]++;
        lat[i].count++;
        lat[i].sum += seconds;
    }
    pthread_mutex_unlock(&mu);
}

void mp_batch(const char *device, int n, double seconds)
{
    (void)device;
    pthread_mutex_lock(&mu);
    for (size_t b = 0; b < N_BATCH; b++)
        if (n <= BATCH_BUCKETS[b])
            batch_buckets[b]++;
    batch_count++;
    batch_sum += n;
    for (size_t b = 0; b < N_LAT; b++)
        if (seconds <= LAT_BUCKETS[b])
            infer.buckets[b]++;
    infer.count++;
    infer.sum += seconds;
    pthread_mutex_unlock(&mu);
}

void mp_queue_rejected(void)
{
    pthread_mutex_lock(&mu);
    rejected++;
    pthread_mutex_unlock(&mu);
}

void mp_conn_closed(const char *reason)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < 3; i++)
        if (strcmp(reason, CLOSE_REASONS[i]) == 0)
            conn_closed[i]++;
    pthread_mutex_unlock(&mu);
}

void mp_training_done(const char *state, double seconds)
{
    pthread_mutex_lock(&mu);
    for (int i = 0; i < 5; i++)
        if (strcmp(state, STATES[i]) == 0)
            trained[i]++;
    train_seconds += seconds;
    for (size_t b = 0; b < N_TRAIN; b++)
        if (seconds <= TRAIN_BUCKETS[b])
            train_buckets[b]++;
    pthread_mutex_unlock(&mu);
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

static void hist_out(sbuf *b, const char *name, const char *labels, const hist *h,
                     const double *bounds, size_t nb)
{
    const char *sep = labels[0] != '\0' ? "," : "";
    for (size_t i = 0; i < nb; i++)
        sb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i],
                  (unsigned long long)h->buckets[i]);
    sb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
              (unsigned long long)h->count);
    sb_printf(b, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, labels, h->sum, name,
              labels, (unsigned long long)h->count);
}

char *mp_render(const mp_gauges *g, size_t *len)
{
    sbuf b = {malloc(8192), 0, 8192, 0};
    char labels[128];
    if (b.p == NULL)
        return NULL;
    b.p[0] = '\0';
    pthread_mutex_lock(&mu);
    sb_printf(&b, "# HELP cfa_http_requests_total HTTP requests by route, method and status.\n"
                  "# TYPE cfa_http_requests_total counter\n");
    for (int i = 0; i < n_req; i++)
        sb_printf(&b, "cfa_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                  req[i].route, req[i].method, req[i].status,
                  (unsigned long long)req[i].count);
    sb_printf(&b, "# HELP cfa_http_request_duration_seconds Request latency by route.\n"
                  "# TYPE cfa_http_request_duration_seconds histogram\n");
    for (int i = 0; i < n_lat; i++) {
        snprintf(labels, sizeof labels, "route=\"%.63s\"", lat[i].route);
        hist_out(&b, "cfa_http_request_duration_seconds", labels, &lat[i], LAT_BUCKETS,
                 N_LAT);
    }
    sb_printf(&b, "# HELP cfa_inference_batch_size Images per inference batch.\n"
                  "# TYPE cfa_inference_batch_size histogram\n");
    for (size_t i = 0; i < N_BATCH; i++)
        sb_printf(&b, "cfa_inference_batch_size_bucket{le=\"%g\"} %llu\n", BATCH_BUCKETS[i],
                  (unsigned long long)batch_buckets[i]);
    sb_printf(&b, "cfa_inference_batch_size_bucket{le=\"+Inf\"} %llu\n"
                  "cfa_inference_batch_size_sum %.0f\ncfa_inference_batch_size_count %llu\n",
              (unsigned long long)batch_count, batch_sum, (unsigned long long)batch_count);
    sb_printf(&b, "# HELP cfa_inference_seconds Model time per inference batch.\n"
                  "# TYPE cfa_inference_seconds histogram\n");
    hist_out(&b, "cfa_inference_seconds", "", &infer, LAT_BUCKETS, N_LAT);
    sb_printf(&b, "# HELP cfa_queue_rejected_total Inspections refused with 503 (queue full).\n"
                  "# TYPE cfa_queue_rejected_total counter\ncfa_queue_rejected_total %llu\n",
              (unsigned long long)rejected);
    sb_printf(&b, "# HELP cfa_connections_closed_total Connections the daemon closed: a header "
                  "or body past its deadline, or waiting for its header at the connection limit.\n"
                  "# TYPE cfa_connections_closed_total counter\n");
    for (int i = 0; i < 3; i++)
        sb_printf(&b, "cfa_connections_closed_total{reason=\"%s\"} %llu\n", CLOSE_REASONS[i],
                  (unsigned long long)conn_closed[i]);
    sb_printf(&b, "# HELP cfa_training_finished_total Training jobs finished by this process.\n"
                  "# TYPE cfa_training_finished_total counter\n");
    for (int i = 2; i < 5; i++)
        sb_printf(&b, "cfa_training_finished_total{state=\"%s\"} %llu\n", STATES[i],
                  (unsigned long long)trained[i]);
    uint64_t n_trained = trained[2] + trained[3] + trained[4];
    sb_printf(&b, "# HELP cfa_training_duration_seconds Wall time of the training jobs this "
                  "process finished (any final state).\n"
                  "# TYPE cfa_training_duration_seconds histogram\n");
    for (size_t i = 0; i < N_TRAIN; i++)
        sb_printf(&b, "cfa_training_duration_seconds_bucket{le=\"%g\"} %llu\n", TRAIN_BUCKETS[i],
                  (unsigned long long)train_buckets[i]);
    sb_printf(&b, "cfa_training_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                  "cfa_training_duration_seconds_sum %.3f\n"
                  "cfa_training_duration_seconds_count %llu\n",
              (unsigned long long)n_trained, train_seconds, (unsigned long long)n_trained);
    pthread_mutex_unlock(&mu);
    if (g != NULL) {
        sb_printf(&b, "# HELP cfa_queue_depth Inspections waiting per device.\n"
                      "# TYPE cfa_queue_depth gauge\n");
        for (int i = 0; i < g->n_devices && i < 8; i++)
            sb_printf(&b, "cfa_queue_depth{device=\"%s\",queue=\"%d\"} %d\n", g->device[i],
                      i, g->queue_depth[i]);
        sb_printf(&b, "# HELP cfa_training_jobs Training jobs in the database by state.\n"
                      "# TYPE cfa_training_jobs gauge\n");
        for (int i = 0; i < 5; i++)
            sb_printf(&b, "cfa_training_jobs{state=\"%s\"} %lld\n", STATES[i],
                      (long long)g->jobs[i]);
        sb_printf(&b, "# HELP cfa_images_stored Training images stored.\n"
                      "# TYPE cfa_images_stored gauge\ncfa_images_stored %lld\n",
                  (long long)g->images_stored);
        sb_printf(&b, "# HELP cfa_models_loaded Product models loaded in workers.\n"
                      "# TYPE cfa_models_loaded gauge\ncfa_models_loaded %d\n",
                  g->models_loaded);
        sb_printf(&b, "# HELP cfa_audit_commits_total Transactions that committed inspection "
                      "rows (group commit).\n# TYPE cfa_audit_commits_total counter\n"
                      "cfa_audit_commits_total %lld\n# HELP cfa_audit_rows_total Inspection rows "
                      "committed or tried.\n# TYPE cfa_audit_rows_total counter\n"
                      "cfa_audit_rows_total %lld\n",
                  (long long)g->audit_commits, (long long)g->audit_rows);
        sb_printf(&b, "# HELP cfa_inspect_arriving Inspections being received or decoded: a "
                      "worker filling a batch waits for them.\n# TYPE cfa_inspect_arriving gauge\n"
                      "cfa_inspect_arriving %d\n",
                  g->inspect_arriving);
        sb_printf(&b, "# HELP cfa_pixel_bytes_in_use Decoded-pixel bytes held against "
                      "--pixel-budget-mb.\n# TYPE cfa_pixel_bytes_in_use gauge\n"
                      "cfa_pixel_bytes_in_use %lld\n"
                      "# HELP cfa_pixel_budget_bytes The decoded-pixel budget.\n"
                      "# TYPE cfa_pixel_budget_bytes gauge\ncfa_pixel_budget_bytes %lld\n"
                      "# HELP cfa_pixel_refused_total Decodes refused with 503 after waiting "
                      "for the budget.\n# TYPE cfa_pixel_refused_total counter\n"
                      "cfa_pixel_refused_total %lld\n",
                  (long long)g->pixel_bytes_in_use, (long long)g->pixel_budget_bytes,
                  (long long)g->pixel_refused);
    }
    mp_render_extra(&b, g != NULL ? g->products : NULL, g != NULL ? g->n_products : 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
