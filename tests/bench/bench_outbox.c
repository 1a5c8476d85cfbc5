/* bench_outbox.c - what the outbox adds to an audit commit (docs/BENCHMARKS.md,
 * "Result sinks"): store_inspection_commit of inspection rows, one at a time,
 * into a store without sinks (A) and one with a webhook and an MQTT sink that
 * want every inspection (B: two outbox rows per commit, nothing sends them),
 * in alternating blocks so both see the same disk; prints the median
 * milliseconds per commit of each and B/A. Speed is never asserted.
 *
 *     bench_outbox [ROWS_PER_BLOCK (200)] [BLOCKS (10)] [normal]
 *
 * normal: PRAGMA synchronous=NORMAL (no fsync per commit), so that the SQL
 * work of the outbox rows shows rather than the disk's fsync times.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static store_t *open_store(char *dir, int sinks, int sync_full)
{
    store_t *st = NULL;
    store_options o = store_default_options();
    o.sync_full = sync_full;
    if (!mkdtemp(dir) || store_open(dir, &o, &st) != STORE_OK ||
        store_product_create(st, "p", "", NULL, NULL, NULL) != STORE_OK) {
        fprintf(stderr, "cannot open a store in %s: %s\n", dir, store_last_error());
        exit(1);
    }
    static const char *const kinds[] = {"webhook", "mqtt"};
    for (int i = 0; i < sinks; i++) {
        store_sink_t k;
        memset(&k, 0, sizeof k);
        snprintf(k.kind, sizeof k.kind, "%s", kinds[i]);
        k.name = "";
        k.events = "inspection";
        k.config_json = "{}";
        k.enabled = 1;
        if (store_sink_create(st, &k, NULL, NULL) != STORE_OK)
            exit(1);
    }
    return st;
}

/* ms per commit of n rows */
static double block(store_t *st, int n)
{
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        store_inspection_t in;
        memset(&in, 0, sizeof in);
        snprintf(in.product, sizeof in.product, "p");
        snprintf(in.decision, sizeof in.decision, "%s", i % 4 ? "OK" : "NG");
        in.model_version = 1;
        in.score = 1.0;
        in.threshold = 2.0;
        if (store_inspection_commit(st, &in) != STORE_OK)
            exit(1);
    }
    return (now_ms() - t0) / n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rows = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 200;
    int blocks = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 10;
    if (rows < 1 || blocks < 1 || blocks > 1000)
        return 2;
    char da[] = "/tmp/cfa-bench-outbox-a-XXXXXX", db[] = "/tmp/cfa-bench-outbox-b-XXXXXX";
    int full = !(argc > 3 && strcmp(argv[3], "normal") == 0);
    store_t *a = open_store(da, 0, full), *b = open_store(db, 2, full);
    double *ta = calloc(blocks, sizeof *ta), *tb = calloc(blocks, sizeof *tb);
    for (int i = 0; i < blocks; i++) {
        if (i % 2 == 0) {
            ta[i] = block(a, rows);
            tb[i] = block(b, rows);
        } else {
            tb[i] = block(b, rows);
            ta[i] = block(a, rows);
        }
    }
    qsort(ta, blocks, sizeof *ta, cmp);
    qsort(tb, blocks, sizeof *tb, cmp);
    printf("{\"synchronous\": \"%s\", \"rows_per_block\": %d, \"blocks\": %d, \"no_sinks_ms\": %.4f, \"two_sinks_ms\": %.4f, "
           "\"ratio\": %.3f}\n", full ? "full" : "normal", rows, blocks, ta[blocks / 2], tb[blocks / 2],
           tb[blocks / 2] / ta[blocks / 2]);
    store_close(a);
    store_close(b);
    free(ta);
    free(tb);
    fprintf(stderr, "stores left in %s and %s (rm -r them)\n", da, db);
    return 0;
}
