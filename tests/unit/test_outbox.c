/* test_outbox.c - unit tests of the event log, the sinks table and the
 * outbox (server/store: events.c, sinks.c, outbox.c) and of server/sinks'
 * pure parts (backoff, settings parser, topic templates). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sinks.h"
#include "store.h"

typedef struct {
    char dir[256];
    store_t *st;
} fixture;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)f;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfa-outbox-test-XXXXXX");
    if (!mkdtemp(fx->dir) || store_open(fx->dir, NULL, &fx->st) != STORE_OK)
        return -1;
    assert_int_equal(store_product_create(fx->st, "a", "", NULL, NULL, NULL), STORE_OK);
    assert_int_equal(store_product_create(fx->st, "b", "", NULL, NULL, NULL), STORE_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    store_close(fx->st);
    nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void add_sink(store_t *st, const char *product, const char *events, char id[STORE_ID_LEN])
{
    store_sink_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.kind, sizeof k.kind, "webhook");
    snprintf(k.product, sizeof k.product, "%s", product);
    k.name = "";
    k.events = (char *)events;
    k.config_json = "{\"url\":\"http://h/\"}";
    k.enabled = 1;
    assert_int_equal(store_sink_create(st, &k, "secret", NULL), STORE_OK);
    memcpy(id, k.id, STORE_ID_LEN);
}

static void inspect(store_t *st, const char *product, const char *decision,
                    char id[STORE_ID_LEN])
{
    store_inspection_t in;
    memset(&in, 0, sizeof in);
    snprintf(in.product, sizeof in.product, "%s", product);
    snprintf(in.decision, sizeof in.decision, "%s", decision);
    in.model_version = 1;
    assert_int_equal(store_inspection_commit(st, &in), STORE_OK);
    memcpy(id, in.id, STORE_ID_LEN);
}

static size_t queued(store_t *st, const char *sink, store_outbox_t **rows)
{
    size_t n = 0;
    assert_int_equal(store_outbox_head(st, sink, 100, rows, &n), STORE_OK);
    return n;
}

/* Rows go to the sinks that want them: by product and by event. */
static void test_match(void **state)
{
    fixture *fx = *state;
    char all[STORE_ID_LEN], ng_a[STORE_ID_LEN], ev[STORE_ID_LEN], i1[STORE_ID_LEN],
        i2[STORE_ID_LEN], i3[STORE_ID_LEN];
    add_sink(fx->st, "", "inspection", all);
    add_sink(fx->st, "a", "inspection.ng", ng_a);
    add_sink(fx->st, "", "threshold.set,model.activated", ev);
    inspect(fx->st, "a", "OK", i1);
    inspect(fx->st, "a", "NG", i2);
    inspect(fx->st, "b", "NG", i3);
    store_outbox_t *rows;
    assert_int_equal(queued(fx->st, all, &rows), 3);
    assert_string_equal(rows[0].ref, i1); /* in commit order */
    assert_string_equal(rows[2].ref, i3);
    free(rows);
    assert_int_equal(queued(fx->st, ng_a, &rows), 1);
    assert_string_equal(rows[0].ref, i2);
    assert_string_equal(rows[0].event, "inspection");
    free(rows);
    assert_int_equal(queued(fx->st, ev, &rows), 0);
    free(rows);
    store_event_t e;
    memset(&e, 0, sizeof e);
    snprintf(e.kind, sizeof e.kind, "threshold.set");
    snprintf(e.product, sizeof e.product, "b");
    e.after_json = "{\"threshold\":2}";
    assert_int_equal(store_event_append(fx->st, &e), STORE_OK);
    assert_true(e.seq > 0);
    assert_int_equal(queued(fx->st, ev, &rows), 1);
    assert_string_equal(rows[0].event, "threshold.set");
    assert_int_equal(strtoll(rows[0].ref, NULL, 10), e.seq);
    free(rows);
    snprintf(e.kind, sizeof e.kind, "no.such.kind");
    assert_int_equal(store_event_append(fx->st, &e), STORE_ERR_INVALID);
}

/* A change of the sinks is seen by the next commit (the cache reloads). */
static void test_cache_refresh(void **state)
{
    fixture *fx = *state;
    char s1[STORE_ID_LEN], i1[STORE_ID_LEN];
    add_sink(fx->st, "", "inspection", s1);
    inspect(fx->st, "a", "OK", i1);
    store_sink_t k;
    assert_int_equal(store_sink_get(fx->st, s1, 0, &k), STORE_OK);
    free(k.events);
    k.events = strdup("inspection.ng");
    assert_int_equal(store_sink_update(fx->st, &k, NULL, NULL), STORE_OK);
    store_sink_clear(&k);
    inspect(fx->st, "a", "OK", i1);
    store_outbox_t *rows;
    assert_int_equal(queued(fx->st, s1, &rows), 1); /* the second OK is not wanted */
    free(rows);
    assert_int_equal(store_sink_delete(fx->st, s1, NULL), STORE_OK);
    assert_int_equal(store_outbox_head(fx->st, s1, 10, &rows, &(size_t){0}), STORE_OK);
    free(rows);
    inspect(fx->st, "a", "NG", i1); /* no sink left: nothing to write */
}

/* Delivered rows go and are counted; failed tries are counted; dead rows
 * leave the queue until redelivered; the secret is read only on request. */
static void test_states(void **state)
{
    fixture *fx = *state;
    char s[STORE_ID_LEN], i1[STORE_ID_LEN], i2[STORE_ID_LEN];
    add_sink(fx->st, "", "inspection", s);
    inspect(fx->st, "a", "OK", i1);
    inspect(fx->st, "a", "NG", i2);
    store_outbox_t *rows;
    assert_int_equal(queued(fx->st, s, &rows), 2);
    int64_t first = rows[0].seq, second = rows[1].seq;
    free(rows);
    assert_int_equal(store_outbox_delivered(fx->st, &first, 1, s), STORE_OK);
    int64_t twice[] = {first, first};
    assert_int_equal(store_outbox_delivered(fx->st, twice, 2, s), STORE_OK); /* counted once */
    assert_int_equal(store_outbox_failed(fx->st, second, s, 1, store_now_ms() + 60000, 0, "x"),
                     STORE_OK);
    assert_int_equal(queued(fx->st, s, &rows), 1);
    assert_int_equal(rows[0].attempts, 1);
    assert_true(rows[0].next_at > store_now_ms());
    free(rows);
    assert_int_equal(store_outbox_failed(fx->st, second, s, 2, store_now_ms(), 1, "y"), STORE_OK);
    assert_int_equal(queued(fx->st, s, &rows), 0);
    free(rows);
    store_sink_t k;
    assert_int_equal(store_sink_get(fx->st, s, 0, &k), STORE_OK);
    assert_int_equal(k.delivered, 1);
    assert_int_equal(k.failed, 2);
    assert_int_equal(k.dead, 1);
    assert_int_equal(k.queued, 0);
    assert_true(k.has_secret);
    assert_null(k.secret);
    store_sink_clear(&k);
    assert_int_equal(store_sink_get(fx->st, s, 1, &k), STORE_OK);
    assert_string_equal(k.secret, "secret");
    store_sink_clear(&k);
    int64_t n = 0;
    assert_int_equal(store_sink_redeliver(fx->st, s, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(queued(fx->st, s, &rows), 1);
    assert_int_equal(rows[0].attempts, 0);
    free(rows);
    assert_int_equal(store_sink_redeliver(fx->st, "0123456789abcdef0123456789abcdef", &n),
                     STORE_ERR_NOT_FOUND);
}

/* Event log: filters, paging oldest first, the sink's change in the same
 * transaction as the sink. */
static void test_events(void **state)
{
    fixture *fx = *state;
    for (int i = 0; i < 5; i++) {
        store_event_t e;
        memset(&e, 0, sizeof e);
        snprintf(e.kind, sizeof e.kind, "%s", i % 2 ? "product.changed" : "image.added");
        snprintf(e.product, sizeof e.product, "%s", i < 3 ? "a" : "b");
        e.at = 1000 + i;
        assert_int_equal(store_event_append(fx->st, &e), STORE_OK);
    }
    store_event_t *arr;
    size_t n;
    char next[STORE_CURSOR_LEN];
    store_event_filter f = {.limit = 2};
    assert_int_equal(store_event_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    assert_true(arr[0].seq < arr[1].seq);
    assert_true(store_valid_seq_cursor(next));
    store_events_free(arr, n);
    f = (store_event_filter){.kind = "product.changed", .product = "a"};
    assert_int_equal(store_event_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(arr[0].at, 1001);
    store_events_free(arr, n);
    f = (store_event_filter){.since = 1001, .until = 1003};
    assert_int_equal(store_event_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    store_events_free(arr, n);
    store_event_t ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.kind, sizeof ev.kind, "sink.created");
    char s[STORE_ID_LEN];
    store_sink_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.kind, sizeof k.kind, "mqtt");
    k.events = "inspection";
    k.config_json = "{}";
    assert_int_equal(store_sink_create(fx->st, &k, NULL, &ev), STORE_OK);
    memcpy(s, k.id, sizeof s);
    assert_true(ev.seq > 0);
    snprintf(k.kind, sizeof k.kind, "pigeon"); /* refused: no event either */
    int64_t seq = ev.seq;
    assert_int_equal(store_sink_create(fx->st, &k, NULL, &ev), STORE_ERR_INVALID);
    f = (store_event_filter){.kind = "sink.created"};
    assert_int_equal(store_event_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(arr[0].seq, seq);
    store_events_free(arr, n);
}

static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(sinks_backoff_ms(1, 1000, 60000, 0.999999), 999);
    assert_int_equal(sinks_backoff_ms(1, 1000, 60000, 0.0), 500);
    assert_int_equal(sinks_backoff_ms(3, 1000, 60000, 0.0), 2000);
    assert_int_equal(sinks_backoff_ms(40, 1000, 60000, 0.0), 30000); /* capped */
    /* with any jitter, a try's delay is at least the one before (below the cap) */
    for (int t = 1; t < 6; t++)
        assert_true(sinks_backoff_ms(t + 1, 100, 1 << 20, 0.0) >=
                    sinks_backoff_ms(t, 100, 1 << 20, 0.999999));
}

static void test_topic(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(sink_topic_expand("cfa/{product}/{decision}", "tile-a", "NG", "inspection",
                                       out, sizeof out), 0);
    assert_string_equal(out, "cfa/tile-a/NG");
    assert_int_equal(sink_topic_expand("x/{event}/{decision}", "", "", "model.activated", out,
                                       sizeof out), 0);
    assert_string_equal(out, "x/model.activated/_");
    assert_int_equal(sink_topic_expand("cfa/{what}", "a", "OK", "e", out, sizeof out), -1);
    assert_int_equal(sink_topic_expand("{product}", "a/b", "OK", "e", out, sizeof out), -1);
    assert_int_equal(sink_topic_expand("{product}{product}", "abcdefghij", "", "", out, 16), -1);
}

static void test_spec(void **state)
{
    (void)state;
    sink_spec s;
    char err[256], field[64];
    const char *ok = "{\"kind\":\"webhook\",\"url\":\"https://mes/x\",\"secret\":\"k\","
                     "\"events\":[\"inspection.ng\",\"key.revoked\"]}";
    assert_int_equal(sink_spec_parse(ok, strlen(ok), 0, &s, err, sizeof err, field, sizeof field), 0);
    assert_string_equal(s.events, "inspection.ng,key.revoked");
    assert_string_equal(s.secret, "k");
    assert_true(s.enabled);
    const char *patch = "{\"enabled\":false,\"secret\":null}";
    assert_int_equal(sink_spec_parse(patch, strlen(patch), 1, &s, err, sizeof err, field,
                                     sizeof field), 0);
    assert_false(s.enabled);
    assert_true(s.secret_given);
    assert_string_equal(s.secret, "");
    assert_string_equal(s.url, "https://mes/x");
    const char *bad[][2] = {
        {"{\"kind\":\"mqtt\",\"host\":\"h\",\"topic\":\"a/+\",\"events\":[\"inspection\"]}", "topic"},
        {"{\"kind\":\"mqtt\",\"host\":\"h\",\"topic\":\"a\",\"events\":[]}", "events"},
        {"{\"kind\":\"mqtt\",\"host\":\"h\",\"topic\":\"a\",\"events\":[\"inspection\"],\"url\":\"x\"}", "url"},
        {"{\"kind\":\"webhook\",\"url\":\"http:///x\",\"events\":[\"inspection\"]}", "url"},
        {"{\"kind\":\"webhook\",\"url\":\"http://h\",\"events\":[\"inspection\"],\"product\":\"..\"}", "product"},
        {"[1]", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sink_spec_parse(bad[i][0], strlen(bad[i][0]), 0, &s, err, sizeof err,
                                         field, sizeof field), -1);
        assert_string_equal(field, bad[i][1]);
        assert_true(err[0] != '\0');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_topic),
        cmocka_unit_test(test_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
