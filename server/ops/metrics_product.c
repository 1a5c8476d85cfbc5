/* metrics_product.c - the per-product and process series of /metrics
 * (metrics_prom.h): inspections by decision and verdict, the score
 * histogram, and what is sampled at scrape time (active version, drift,
 * build, process figures from /proc).
 *
 * Label cardinality: products are few on a line (a handful to a few dozen);
 * the first MP_MAX_PRODUCTS seen by this process get their own series, any
 * later one is counted under product="_other", so a misconfigured client
 * cannot grow the exposition without bound. */
#define _GNU_SOURCE
#include "metrics_prom.h"
#include "metrics_int.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef CFA_GIT_COMMIT
#define CFA_GIT_COMMIT "unknown"
#endif

static const double SCORE_BUCKETS[] = {0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 13, 16, 20, 32, 64};
#define N_SCORE (sizeof SCORE_BUCKETS / sizeof SCORE_BUCKETS[0])
static const char *const DECISIONS[2] = {"OK", "NG"};
static const char *const VERDICTS[3] = {"OK", "UNSURE", "NG"};

typedef struct product_series {
    char id[65];
    uint64_t decision[2];
    uint64_t verdict[3];
    int has_verdict;
    uint64_t buckets[N_SCORE];
    uint64_t count;
    double sum;
} product_series;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static product_series prod[MP_MAX_PRODUCTS + 1]; /* the last: "_other" */
static int n_prod;

static int index_of(const char *const *names, int n, const char *s)
{
    for (int i = 0; s != NULL && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

/* The series of product (under mu), made on first sight. */
static product_series *series_of(const char *product)
{
    for (int i = 0; i < n_prod; i++)
        if (strcmp(prod[i].id, product) == 0)
            return &prod[i];
    product_series *s = n_prod < MP_MAX_PRODUCTS ? &prod[n_prod++] : &prod[MP_MAX_PRODUCTS];
    if (s->id[0] == '\0')
        snprintf(s->id, sizeof s->id, "%s", s == &prod[MP_MAX_PRODUCTS] ? "_other" : product);
    return s;
}

void mp_inspection(const char *product, const char *decision, const char *verdict, double score)
{
    int d = index_of(DECISIONS, 2, decision), v = index_of(VERDICTS, 3, verdict);
    pthread_mutex_lock(&mu);
    product_series *s = series_of(product);
    if (d >= 0)
        s->decision[d]++;
    if (v >= 0) {
        s->verdict[v]++;
        s->has_verdict = 1;
    }
    for (size_t b = 0; b < N_SCORE; b++)
        if (score <= SCORE_BUCKETS[b])
            s->buckets[b]++;
    s->count++;
    s->sum += score;
    pthread_mutex_unlock(&mu);
}

static void render_counts(sbuf *b)
{
    sb_printf(b, "# HELP cfa_inspections_total Inspections answered by this process, by "
                 "product and two-valued decision.\n# TYPE cfa_inspections_total counter\n");
    for (int i = 0; i <= MP_MAX_PRODUCTS; i++)
        for (int d = 0; prod[i].id[0] && d < 2; d++)
            sb_printf(b, "cfa_inspections_total{product=\"%s\",decision=\"%s\"} %llu\n",
                      prod[i].id, DECISIONS[d], (unsigned long long)prod[i].decision[d]);
    sb_printf(b, "# HELP cfa_inspections_verdict_total Inspections by product and three-way "
                 "verdict (OK, UNSURE, NG), where the result carries one.\n"
                 "# TYPE cfa_inspections_verdict_total counter\n");
    for (int i = 0; i <= MP_MAX_PRODUCTS; i++)
        for (int v = 0; prod[i].id[0] && prod[i].has_verdict && v < 3; v++)
            sb_printf(b, "cfa_inspections_verdict_total{product=\"%s\",verdict=\"%s\"} %llu\n",
                      prod[i].id, VERDICTS[v], (unsigned long long)prod[i].verdict[v]);
    sb_printf(b, "# HELP cfa_inspection_score Inspection scores (the map's maximum) by "
                 "product.\n# TYPE cfa_inspection_score histogram\n");
    for (int i = 0; i <= MP_MAX_PRODUCTS; i++) {
        if (!prod[i].id[0])
            continue;
        for (size_t k = 0; k < N_SCORE; k++)
            sb_printf(b, "cfa_inspection_score_bucket{product=\"%s\",le=\"%g\"} %llu\n",
                      prod[i].id, SCORE_BUCKETS[k], (unsigned long long)prod[i].buckets[k]);
        sb_printf(b, "cfa_inspection_score_bucket{product=\"%s\",le=\"+Inf\"} %llu\n"
                     "cfa_inspection_score_sum{product=\"%s\"} %.6f\n"
                     "cfa_inspection_score_count{product=\"%s\"} %llu\n",
                  prod[i].id, (unsigned long long)prod[i].count, prod[i].id, prod[i].sum,
                  prod[i].id, (unsigned long long)prod[i].count);
    }
}

static void render_products(sbuf *b, const mp_product_gauge *pg, int n)
{
    sb_printf(b, "# HELP cfa_model_active_version The active model version by product (0: "
                 "none).\n# TYPE cfa_model_active_version gauge\n");
    for (int i = 0; i < n; i++)
        sb_printf(b, "cfa_model_active_version{product=\"%s\"} %lld\n", pg[i].product,
                  (long long)pg[i].active_version);
    sb_printf(b, "# HELP cfa_drift_statistic Two-sample Kolmogorov-Smirnov D between the "
                 "active model's calibration scores and its newest inspections' scores "
                 "(--drift-window), by product.\n# TYPE cfa_drift_statistic gauge\n");
    for (int i = 0; i < n; i++)
        if (pg[i].drift_available)
            sb_printf(b, "cfa_drift_statistic{product=\"%s\"} %.6f\n", pg[i].product,
                      pg[i].drift_d);
    sb_printf(b, "# HELP cfa_drift_flag 1 when the drift's p-value is below 0.01 with at "
                 "least 20 scores in the window (docs/API.md, Drift).\n"
                 "# TYPE cfa_drift_flag gauge\n");
    for (int i = 0; i < n; i++)
        sb_printf(b, "cfa_drift_flag{product=\"%s\"} %d\n", pg[i].product, pg[i].drift_flag);
}

/* One number from /proc/self/stat's field (1-based, after the comm). */
static double proc_stat_field(const char *text, int field)
{
    const char *p = strrchr(text, ')'); /* the comm may hold spaces */
    if (p == NULL)
        return 0;
    p += 2; /* field 3 starts here */
    for (int f = 3; f < field && *p; p++)
        if (*p == ' ')
            f++;
    return strtod(p, NULL);
}

static void render_process(sbuf *b)
{
    char stat[1024] = "";
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    if (f != NULL) {
        size_t n = fread(stat, 1, sizeof stat - 1, f);
        stat[n] = '\0';
        fclose(f);
    }
    double cpu = (proc_stat_field(stat, 14) + proc_stat_field(stat, 15)) / (double)tick;
    double rss = proc_stat_field(stat, 24) * (double)page;
    double vsz = proc_stat_field(stat, 23);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            fds += e->d_name[0] != '.';
        fds--; /* the one opendir holds */
        closedir(d);
    }
    sb_printf(b, "# HELP process_cpu_seconds_total User and system CPU time of the process.\n"
                 "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                 "# HELP process_resident_memory_bytes Resident memory of the process.\n"
                 "# TYPE process_resident_memory_bytes gauge\n"
                 "process_resident_memory_bytes %.0f\n"
                 "# HELP process_virtual_memory_bytes Virtual memory of the process.\n"
                 "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n"
                 "# HELP process_open_fds Open file descriptors of the process.\n"
                 "# TYPE process_open_fds gauge\nprocess_open_fds %d\n",
              cpu, rss, vsz, fds);
}

void mp_render_extra(sbuf *b, const mp_product_gauge *pg, int n)
{
    pthread_mutex_lock(&mu);
    render_counts(b);
    pthread_mutex_unlock(&mu);
    render_products(b, pg, n);
    sb_printf(b, "# HELP cfa_build_info The daemon's version and source commit.\n"
                 "# TYPE cfa_build_info gauge\ncfa_build_info{version=\"%s\",commit=\"%s\"} 1\n",
              CFA_VERSION_STRING, CFA_GIT_COMMIT);
    render_process(b);
}
