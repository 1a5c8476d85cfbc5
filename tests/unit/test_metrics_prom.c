/* test_metrics_prom.c - the Prometheus exposition of server/metrics_prom.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>

#include "metrics_prom.h"

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        mp_request("GET", "/v1/products", 200, 0.002);
        mp_batch("cpu", 1 + i % 8, 0.05);
    }
    return NULL;
}

static void test_render(void **state)
{
    (void)state;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    mp_request("POST", "/v1/products/{id}/inspect", 503, 0.3);
    mp_queue_rejected();
    mp_conn_closed("header_timeout");
    mp_conn_closed("header_timeout");
    mp_conn_closed("evicted");
    mp_training_done("succeeded", 12.0);
    mp_gauges g;
    memset(&g, 0, sizeof g);
    g.n_devices = 2;
    g.device[0] = "cuda:0";
    g.device[1] = "cuda:1";
    g.queue_depth[1] = 3;
    g.jobs[2] = 5;
    g.images_stored = 40;
    g.audit_commits = 7;
    g.audit_rows = 19;
    size_t len = 0;
    char *s = mp_render(&g, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    assert_non_null(strstr(s, "cfa_http_requests_total{route=\"/v1/products\",method=\"GET\",status=\"200\"} 4000\n"));
    assert_non_null(strstr(s, "cfa_http_requests_total{route=\"/v1/products/{id}/inspect\",method=\"POST\",status=\"503\"} 1\n"));
    assert_non_null(strstr(s, "cfa_http_request_duration_seconds_bucket{route=\"/v1/products\",le=\"0.0025\"} 4000\n"));
    assert_non_null(strstr(s, "cfa_http_request_duration_seconds_bucket{route=\"/v1/products\",le=\"0.001\"} 0\n"));
    assert_non_null(strstr(s, "cfa_inference_batch_size_count 4000\n"));
    assert_non_null(strstr(s, "cfa_inference_batch_size_bucket{le=\"+Inf\"} 4000\n"));
    assert_non_null(strstr(s, "cfa_queue_rejected_total 1\n"));
    assert_non_null(strstr(s, "cfa_connections_closed_total{reason=\"header_timeout\"} 2\n"));
    assert_non_null(strstr(s, "cfa_connections_closed_total{reason=\"body_timeout\"} 0\n"));
    assert_non_null(strstr(s, "cfa_connections_closed_total{reason=\"evicted\"} 1\n"));
    assert_non_null(strstr(s, "cfa_queue_depth{device=\"cuda:1\",queue=\"1\"} 3\n"));
    assert_non_null(strstr(s, "cfa_training_jobs{state=\"succeeded\"} 5\n"));
    assert_non_null(strstr(s, "cfa_training_finished_total{state=\"succeeded\"} 1\n"));
    assert_non_null(strstr(s, "cfa_images_stored 40\n"));
    assert_non_null(strstr(s, "cfa_audit_commits_total 7\n"));
    assert_non_null(strstr(s, "cfa_audit_rows_total 19\n"));
    /* every sample line is "name{labels} value" or "name value" */
    for (char *line = s; *line != '\0';) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] != '#')
            assert_non_null(memchr(line, ' ', (size_t)(nl - line)));
        line = nl + 1;
    }
    free(s);
}

/* Per-product series: counts by decision and verdict, the score histogram,
 * the scrape-time gauges, and products past MP_MAX_PRODUCTS under "_other". */
static void test_products(void **state)
{
    (void)state;
    char id[32];
    mp_inspection("tile", "OK", NULL, 0.7);
    mp_inspection("tile", "NG", NULL, 5.5);
    mp_inspection("tile", "NG", NULL, 100.0);
    mp_inspection("cup", "OK", "UNSURE", 2.0);
    for (int i = 0; i < MP_MAX_PRODUCTS + 5; i++) {
        snprintf(id, sizeof id, "p%03d", i);
        mp_inspection(id, "OK", NULL, 1.0);
    }
    mp_product_gauge pg[2];
    memset(pg, 0, sizeof pg);
    snprintf(pg[0].product, sizeof pg[0].product, "tile");
    pg[0].active_version = 3;
    pg[0].drift_available = 1;
    pg[0].drift_d = 0.25;
    snprintf(pg[1].product, sizeof pg[1].product, "cup");
    pg[1].drift_flag = 1;
    mp_gauges g;
    memset(&g, 0, sizeof g);
    g.products = pg;
    g.n_products = 2;
    size_t len = 0;
    char *s = mp_render(&g, &len);
    assert_non_null(s);
    assert_non_null(strstr(s, "cfa_inspections_total{product=\"tile\",decision=\"OK\"} 1\n"));
    assert_non_null(strstr(s, "cfa_inspections_total{product=\"tile\",decision=\"NG\"} 2\n"));
    assert_non_null(strstr(s, "cfa_inspections_verdict_total{product=\"cup\",verdict=\"UNSURE\"} 1\n"));
    assert_null(strstr(s, "cfa_inspections_verdict_total{product=\"tile\""));
    assert_non_null(strstr(s, "cfa_inspection_score_bucket{product=\"tile\",le=\"1\"} 1\n"));
    assert_non_null(strstr(s, "cfa_inspection_score_bucket{product=\"tile\",le=\"64\"} 2\n"));
    assert_non_null(strstr(s, "cfa_inspection_score_bucket{product=\"tile\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(s, "cfa_inspection_score_count{product=\"tile\"} 3\n"));
    /* tile and cup took 2 of the slots: 62 more named, 7 counted as _other */
    assert_non_null(strstr(s, "cfa_inspections_total{product=\"p061\",decision=\"OK\"} 1\n"));
    assert_null(strstr(s, "product=\"p062\""));
    assert_non_null(strstr(s, "cfa_inspections_total{product=\"_other\",decision=\"OK\"} 7\n"));
    assert_non_null(strstr(s, "cfa_model_active_version{product=\"tile\"} 3\n"));
    assert_non_null(strstr(s, "cfa_drift_statistic{product=\"tile\"} 0.250000\n"));
    assert_null(strstr(s, "cfa_drift_statistic{product=\"cup\"}"));
    assert_non_null(strstr(s, "cfa_drift_flag{product=\"cup\"} 1\n"));
    assert_non_null(strstr(s, "cfa_build_info{version=\""));
    assert_non_null(strstr(s, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(s, "# TYPE cfa_training_duration_seconds histogram\n"));
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render),
                                       cmocka_unit_test(test_products)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
