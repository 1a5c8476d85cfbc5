/* test_metrics_prom.c - the Prometheus exposition of server/metrics_prom.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
