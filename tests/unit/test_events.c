/* test_events.c - every change the event log records is written in one
 * transaction with its event row and the event's outbox rows (server/store).
 * Each change is tried with the log closed (a trigger refuses event rows),
 * with the outbox closed, and with an event the log refuses: each time the
 * change must not be there either. Then it is made: exactly one event row
 * (and one outbox row for the sink that wants every kind). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "sha256.h"
#include "store.h"

typedef struct fixture {
    char dir[256];
    store_t *st;
    sqlite3 *db;       /* a connection of the test's own, for triggers and counts */
    store_key_t key;   /* made by the key.created step                          */
    store_job_t job;   /* made by the training.started step                     */
    char sha[SHA256_HEX_LEN];
    char last_after[256]; /* after_json of the last event that was written      */
} fixture;

static const unsigned char IMAGE[] = "not decoded by the store, only hashed and kept";

#define ALL_KINDS                                                                          \
    "product.created,product.changed,product.deleted,image.added,image.removed,"          \
    "training.started,training.finished,model.activated,threshold.set,key.created,"       \
    "key.revoked,model.imported,model.deleted,mask.set,mask.removed"

static const char CLOSE_EVENTS[] =
    "CREATE TRIGGER closed BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'closed'); END";
static const char CLOSE_OUTBOX[] =
    "CREATE TRIGGER closed BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'closed'); END";
static const char REOPEN[] = "DROP TRIGGER IF EXISTS closed";

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)f;
    if (flag == FTW_DP)
        rmdir(p);
    else
        unlink(p);
    return 0;
}

static void run_sql(fixture *fx, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(fx->db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

/* The first column of the first row of sql with one optional text parameter. */
static int64_t q1(fixture *fx, const char *sql, const char *arg)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(fx->db, sql, -1, &s, NULL), SQLITE_OK);
    if (arg)
        sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int64_t events_of(fixture *fx, const char *kind)
{
    return q1(fx, "SELECT count(*) FROM events WHERE kind = ?1", kind);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfa-events-test-XXXXXX");
    if (!mkdtemp(fx->dir) || store_open(fx->dir, NULL, &fx->st) != STORE_OK)
        return -1;
    char path[300];
    snprintf(path, sizeof path, "%s/cfa.db", fx->dir);
    if (sqlite3_open_v2(path, &fx->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(fx->db, 5000);
    store_sink_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.kind, sizeof k.kind, "webhook");
    k.name = "";
    k.events = ALL_KINDS;
    k.config_json = "{\"url\":\"http://h/\"}";
    k.enabled = 1;
    if (store_sink_create(fx->st, &k, NULL, NULL) != STORE_OK)
        return -1;
    sha256_hex_of(IMAGE, sizeof IMAGE, fx->sha);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sqlite3_close(fx->db);
    store_close(fx->st);
    store_key_clear(&fx->key);
    store_job_clear(&fx->job);
    nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* ---- the driver ----------------------------------------------------------- */

typedef store_status (*change_fn)(fixture *fx, store_event_t *ev, int n_ev);
typedef int (*done_fn)(fixture *fx); /* 1: the change is in the database */

static void event_of(store_event_t *e, const char *kind, char *(*after_fn)(const void *, void *))
{
    memset(e, 0, sizeof *e);
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->product, sizeof e->product, "p");
    e->after_fn = after_fn;
}

/* Tries change with each way of refusing its events (nothing may be left
 * of it), then makes it: exactly one row per event, one outbox row each. */
static void atomic(fixture *fx, const char *const *kinds, int n, change_fn change, done_fn done,
                   char *(*after_fn)(const void *, void *))
{
    static const char *const closers[] = {CLOSE_EVENTS, CLOSE_OUTBOX, NULL};
    int64_t before[2] = {events_of(fx, kinds[0]), n > 1 ? events_of(fx, kinds[1]) : 0};
    int64_t outbox = q1(fx, "SELECT count(*) FROM outbox", NULL);
    store_event_t ev[2];
    for (int way = 0; way < 3; way++) {
        for (int i = 0; i < n; i++)
            event_of(&ev[i], kinds[i], after_fn);
        if (closers[way] != NULL)
            run_sql(fx, closers[way]);
        else /* the last event is one the log refuses, the first was fine */
            snprintf(ev[n - 1].kind, sizeof ev[n - 1].kind, "no.such.kind");
        assert_int_not_equal(change(fx, ev, n), STORE_OK);
        run_sql(fx, REOPEN);
        for (int i = 0; i < n; i++)
            store_event_clear(&ev[i]);
        assert_false(done(fx));
        for (int i = 0; i < n; i++)
            assert_int_equal(events_of(fx, kinds[i]), before[i]);
        assert_int_equal(q1(fx, "SELECT count(*) FROM outbox", NULL), outbox);
    }
    for (int i = 0; i < n; i++)
        event_of(&ev[i], kinds[i], after_fn);
    assert_int_equal(change(fx, ev, n), STORE_OK);
    assert_true(done(fx));
    for (int i = 0; i < n; i++) {
        assert_true(ev[i].seq > 0);
        assert_int_equal(events_of(fx, kinds[i]), before[i] + 1);
    }
    assert_int_equal(q1(fx, "SELECT count(*) FROM outbox", NULL), outbox + n);
    snprintf(fx->last_after, sizeof fx->last_after, "%s",
             ev[0].after_json ? ev[0].after_json : "");
    for (int i = 0; i < n; i++)
        store_event_clear(&ev[i]);
}

#define ATOMIC1(fx, kind, change, done, after_fn)                                          \
    atomic(fx, (const char *const[]){kind}, 1, change, done, after_fn)

/* ---- after_fns: what the store hands over is the row it wrote ------------ */

static char *after_product_name(const void *row, void *ctx)
{
    (void)ctx;
    return strdup(((const store_product_t *)row)->name);
}

static char *after_key_id(const void *row, void *ctx)
{
    (void)ctx;
    return strdup(((const store_key_t *)row)->id);
}

static char *after_job_id(const void *row, void *ctx)
{
    (void)ctx;
    return strdup(((const store_job_t *)row)->id);
}

static char *after_image_id(const void *row, void *ctx)
{
    (void)ctx;
    return strdup(((const store_image_t *)row)->sha256);
}

static char *after_version(const void *row, void *ctx)
{
    (void)ctx;
    char *t = NULL;
    if (asprintf(&t, "%lld", (long long)*(const int64_t *)row) < 0)
        return NULL;
    return t;
}

static char *after_model_thresholds(const void *row, void *ctx)
{
    (void)ctx;
    const store_model_t *m = row;
    char *t = NULL;
    if (asprintf(&t, "%lld %g %g", (long long)m->version, m->threshold, m->threshold_ng) < 0)
        return NULL;
    return t;
}

static char *after_mask(const void *row, void *ctx)
{
    (void)ctx;
    const store_mask_t *m = row;
    char *t = NULL;
    if (asprintf(&t, "%.8s %dx%d", m->sha256, m->width, m->height) < 0)
        return NULL;
    return t;
}

/* ---- the changes and how to see each ------------------------------------- */

static store_status product_create(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_product_create(fx->st, "p", "first", NULL, NULL, ev);
}
static int product_there(fixture *fx)
{
    return q1(fx, "SELECT count(*) FROM products WHERE id = 'p'", NULL) == 1;
}
static int product_gone(fixture *fx) { return !product_there(fx); }

static store_status product_patch(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_product_patch(fx->st, "p", "second", NULL, NULL, ev);
}
static int product_renamed(fixture *fx)
{
    return q1(fx, "SELECT count(*) FROM products WHERE name = 'second'", NULL) == 1;
}

static store_status key_create(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_key_create(fx->st, "line", STORE_ROLE_INSPECT, NULL, NULL, &fx->key, ev);
}
static int key_there(fixture *fx) { return q1(fx, "SELECT count(*) FROM api_keys", NULL) == 1; }

static store_status key_revoke(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_key_revoke(fx->st, fx->key.id, ev);
}
static int key_revoked(fixture *fx)
{
    return q1(fx, "SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL", NULL) == 1;
}

static store_status image_put(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_image_put(fx->st, "p", IMAGE, sizeof IMAGE, 4, 4, "png", NULL, NULL, ev);
}
/* the row, and its file exactly when the row is there */
static int image_there(fixture *fx)
{
    char path[512];
    struct stat sb;
    assert_int_equal(store_image_path(fx->st, "p", fx->sha, "png", path, sizeof path), STORE_OK);
    int row = q1(fx, "SELECT count(*) FROM images WHERE sha256 = ?1", fx->sha) == 1;
    assert_int_equal(stat(path, &sb) == 0, row);
    return row;
}
static int image_gone(fixture *fx) { return !image_there(fx); }

static store_status image_delete(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_image_delete(fx->st, "p", fx->sha, ev);
}

static store_status job_create(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    store_job_clear(&fx->job);
    return store_job_create(fx->st, "p", NULL, &fx->job, ev);
}
static int job_there(fixture *fx) { return q1(fx, "SELECT count(*) FROM jobs", NULL) == 1; }

static store_status job_fail(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_job_finish(fx->st, fx->job.id, STORE_JOB_FAILED, "broke", 0, ev);
}
static int job_failed(fixture *fx)
{
    return q1(fx, "SELECT count(*) FROM jobs WHERE state = 'failed'", NULL) == 1;
}

static store_status model_insert(fixture *fx, store_event_t *ev, int n)
{
    store_model_new m = {.product = "p", .job_id = fx->job.id, .blob = IMAGE,
                         .blob_len = sizeof IMAGE, .threshold = 1.0, .threshold_ng = NAN,
                         .activate = 1, .events = ev, .n_events = n};
    return store_model_insert(fx->st, &m, NULL);
}
/* the model, its job's end and the activation: all of them or none */
static int model_there(fixture *fx)
{
    int model = q1(fx, "SELECT count(*) FROM models", NULL) == 1;
    assert_int_equal(q1(fx, "SELECT count(*) FROM jobs WHERE state = 'succeeded'", NULL), model);
    assert_int_equal(q1(fx, "SELECT coalesce(active_version, 0) FROM products", NULL), model);
    return model;
}

static store_status model_activate(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_model_activate(fx->st, "p", 2, ev);
}
static int second_active(fixture *fx)
{
    return q1(fx, "SELECT active_version FROM products WHERE id = 'p'", NULL) == 2;
}

static store_status threshold_set(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_model_set_thresholds(fx->st, "p", 0, 7.0, NAN, ev);
}
static int threshold_seven(fixture *fx)
{
    return q1(fx, "SELECT count(*) FROM models WHERE threshold = 7.0", NULL) == 1;
}

static store_status product_delete(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_product_delete(fx->st, "p", ev);
}

static store_status model_delete(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    ev->before_fn = after_model_thresholds;
    return store_model_delete(fx->st, "p", 1, ev);
}
static int first_gone(fixture *fx)
{
    return q1(fx, "SELECT count(*) FROM models WHERE product = 'p' AND version = 1", NULL) == 0;
}

static store_status mask_put(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    return store_mask_put(fx->st, "p", IMAGE, sizeof IMAGE, 4, 3, NULL, ev);
}
static int mask_there(fixture *fx)
{
    return q1(fx, "SELECT count(*) FROM product_masks WHERE product = 'p'", NULL) == 1;
}
static int mask_gone(fixture *fx) { return !mask_there(fx); }

static store_status mask_delete(fixture *fx, store_event_t *ev, int n)
{
    (void)n;
    ev->before_fn = after_mask;
    return store_mask_delete(fx->st, "p", ev);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_products_keys_images(void **state)
{
    fixture *fx = *state;
    ATOMIC1(fx, "product.created", product_create, product_there, after_product_name);
    assert_string_equal(fx->last_after, "first");
    ATOMIC1(fx, "product.changed", product_patch, product_renamed, after_product_name);
    assert_string_equal(fx->last_after, "second");
    ATOMIC1(fx, "key.created", key_create, key_there, after_key_id);
    assert_string_equal(fx->last_after, fx->key.id);
    ATOMIC1(fx, "key.revoked", key_revoke, key_revoked, NULL);
    ATOMIC1(fx, "image.added", image_put, image_there, after_image_id);
    assert_string_equal(fx->last_after, fx->sha);
    /* the same bytes again store nothing new: no event */
    store_event_t e;
    event_of(&e, "image.added", after_image_id);
    int created = 1;
    assert_int_equal(store_image_put(fx->st, "p", IMAGE, sizeof IMAGE, 4, 4, "png", NULL,
                                     &created, &e),
                     STORE_OK);
    assert_int_equal(created, 0);
    assert_int_equal(e.seq, 0);
    store_event_clear(&e);
    assert_int_equal(events_of(fx, "image.added"), 1);
    ATOMIC1(fx, "image.removed", image_delete, image_gone, NULL);
    ATOMIC1(fx, "product.deleted", product_delete, product_gone, NULL);
}

static void test_training_models(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_product_create(fx->st, "p", "", NULL, NULL, NULL), STORE_OK);
    ATOMIC1(fx, "training.started", job_create, job_there, after_job_id);
    assert_string_equal(fx->last_after, fx->job.id);
    ATOMIC1(fx, "training.finished", job_fail, job_failed, NULL);
    /* a job that makes a model: its end and its activation, two events */
    store_job_clear(&fx->job);
    assert_int_equal(store_job_create(fx->st, "p", NULL, NULL, NULL), STORE_OK);
    assert_int_equal(store_job_claim(fx->st, &fx->job), STORE_OK);
    atomic(fx, (const char *const[]){"training.finished", "model.activated"}, 2, model_insert,
           model_there, after_version);
    assert_string_equal(fx->last_after, "1");
    store_model_new m2 = {.product = "p", .blob = IMAGE, .blob_len = sizeof IMAGE,
                          .threshold = 2.0, .threshold_ng = NAN};
    assert_int_equal(store_model_insert(fx->st, &m2, NULL), STORE_OK);
    ATOMIC1(fx, "model.activated", model_activate, second_active, after_product_name);
    ATOMIC1(fx, "threshold.set", threshold_set, threshold_seven, NULL);
}

/* The last event's before_json (model.deleted and mask.removed say what was). */
static void last_before_is(fixture *fx, const char *kind, const char *want)
{
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(fx->db,
                                        "SELECT before_json FROM events WHERE kind = ?1 "
                                        "ORDER BY seq DESC LIMIT 1",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), want);
    sqlite3_finalize(s);
}

/* model.deleted (before: the version and its thresholds), mask.set (after:
 * the mask) and mask.removed (before: the mask) with their changes. */
static void test_model_delete_masks(void **state)
{
    fixture *fx = *state;
    assert_int_equal(store_product_create(fx->st, "p", "", NULL, NULL, NULL), STORE_OK);
    for (int i = 0; i < 2; i++) {
        store_model_new m = {.product = "p", .blob = IMAGE, .blob_len = sizeof IMAGE,
                             .threshold = 1.5, .threshold_ng = 2.5, .activate = i == 1};
        assert_int_equal(store_model_insert(fx->st, &m, NULL), STORE_OK);
    }
    ATOMIC1(fx, "model.deleted", model_delete, first_gone, NULL);
    last_before_is(fx, "model.deleted", "1 1.5 2.5");
    /* the active one is refused: no row */
    store_event_t e;
    event_of(&e, "model.deleted", NULL);
    assert_int_equal(store_model_delete(fx->st, "p", 2, &e), STORE_ERR_CONFLICT);
    store_event_clear(&e);
    assert_int_equal(events_of(fx, "model.deleted"), 1);
    ATOMIC1(fx, "mask.set", mask_put, mask_there, after_mask);
    char want[64];
    snprintf(want, sizeof want, "%.8s 4x3", fx->sha);
    assert_string_equal(fx->last_after, want);
    ATOMIC1(fx, "mask.removed", mask_delete, mask_gone, NULL);
    last_before_is(fx, "mask.removed", want);
    event_of(&e, "mask.removed", NULL);
    assert_int_equal(store_mask_delete(fx->st, "p", &e), STORE_ERR_NOT_FOUND);
    store_event_clear(&e);
    assert_int_equal(events_of(fx, "mask.removed"), 1);
}

/* A bundle import: its model, activation, model.imported and
 * model.activated rows (who's ids) in one transaction, or none of them. */
static void test_bundle_import(void **state)
{
    fixture *fx = *state;
    static const char BB[] = "e195ca9c95623ea1e2da4795a2f94b53b54ccdfa393b33d833737f5b9f02f202";
    store_product_t p = {.id = "src", .name = "Src", .settings_json = "{}"};
    store_model_t m = {.product = "src", .version = 3, .created_at = 1, .threshold = 2.5,
                       .threshold_ng = 3.5, .figures_json = "{}", .blob = (void *)IMAGE,
                       .blob_len = sizeof IMAGE};
    snprintf(m.backbone_sha256, sizeof m.backbone_sha256, "%s", BB);
    uint8_t *buf = NULL;
    size_t len = 0;
    bundle_t b;
    char err[320];
    assert_int_equal(bundle_pack(&p, &m, "host-a", NULL, 0, &buf, &len), 0);
    assert_int_equal(bundle_parse(buf, len, NULL, 0, &b, err, sizeof err), BUNDLE_OK);
    assert_int_equal(store_product_create(fx->st, "p", "", NULL, NULL, NULL), STORE_OK);
    store_event_t who;
    memset(&who, 0, sizeof who);
    snprintf(who.key_id, sizeof who.key_id, "0123456789abcdef0123456789abcdef");
    snprintf(who.request_id, sizeof who.request_id, "req-1");
    static const char *const closers[] = {CLOSE_EVENTS, CLOSE_OUTBOX};
    int64_t outbox = q1(fx, "SELECT count(*) FROM outbox", NULL), v = 0;
    store_status ss;
    for (int way = 0; way < 2; way++) {
        run_sql(fx, closers[way]);
        assert_int_equal(bundle_import(fx->st, "p", &b, BB, 1, &who, &v, &ss, err, sizeof err),
                         BUNDLE_ERR_STORE);
        run_sql(fx, REOPEN);
        assert_int_equal(q1(fx, "SELECT count(*) FROM models", NULL), 0);
        assert_int_equal(q1(fx, "SELECT coalesce(active_version, 0) FROM products", NULL), 0);
        assert_int_equal(q1(fx, "SELECT count(*) FROM events", NULL), 0);
        assert_int_equal(q1(fx, "SELECT count(*) FROM outbox", NULL), outbox);
    }
    assert_int_equal(bundle_import(fx->st, "p", &b, BB, 1, &who, &v, &ss, err, sizeof err),
                     BUNDLE_OK);
    assert_int_equal(v, 1);
    assert_int_equal(events_of(fx, "model.imported"), 1);
    assert_int_equal(events_of(fx, "model.activated"), 1);
    assert_int_equal(q1(fx, "SELECT count(*) FROM outbox", NULL), outbox + 2);
    assert_int_equal(q1(fx, "SELECT count(*) FROM events WHERE key_id = ?1 AND "
                            "request_id = 'req-1' AND product = 'p'", who.key_id), 2);
    assert_int_equal(q1(fx, "SELECT count(*) FROM events WHERE kind = 'model.imported' AND "
                            "json_extract(after_json, '$.version') = 1 AND "
                            "json_extract(after_json, '$.threshold') = 2.5 AND "
                            "json_extract(after_json, '$.threshold_ng') = 3.5 AND "
                            "json_extract(after_json, '$.activated') = 1 AND "
                            "json_extract(after_json, '$.origin.bundle_sha256') = ?1",
                        b.sha256),
                     1);
    /* not activated: model.imported alone, activated false */
    assert_int_equal(bundle_import(fx->st, "p", &b, BB, 0, &who, &v, &ss, err, sizeof err),
                     BUNDLE_OK);
    assert_int_equal(events_of(fx, "model.imported"), 2);
    assert_int_equal(events_of(fx, "model.activated"), 1);
    assert_int_equal(q1(fx, "SELECT json_extract(after_json, '$.activated') FROM events "
                            "WHERE kind = 'model.imported' ORDER BY seq DESC LIMIT 1", NULL),
                     0);
    /* no who: no rows (the callers that record nothing) */
    assert_int_equal(bundle_import(fx->st, "p", &b, BB, 1, NULL, &v, &ss, err, sizeof err),
                     BUNDLE_OK);
    assert_int_equal(q1(fx, "SELECT count(*) FROM events", NULL), 3);
    bundle_clear(&b);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_products_keys_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_training_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_delete_masks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bundle_import, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
