/* test_store.c - unit tests of server/store/ on throw-away data dirs. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "store.h"

typedef struct {
    char dir[256];
    store_t *st;
} fixture;

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

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cfa-store-test-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    if (store_open(fx->dir, NULL, &fx->st) != STORE_OK) {
        fprintf(stderr, "open: %s\n", store_last_error());
        return -1;
    }
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

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static void mk_product(store_t *st, const char *id)
{
    assert_int_equal(store_product_create(st, id, "n", NULL, NULL, NULL), STORE_OK);
}

/* ------------------------------------------------------------------ tests */

static void test_status_strings(void **state)
{
    (void)state;
    assert_string_equal(store_strerror(STORE_OK), "ok");
    assert_string_equal(store_status_code(STORE_ERR_NOT_FOUND), "not_found");
    assert_string_equal(store_status_code(STORE_ERR_CONFLICT), "conflict");
    assert_non_null(store_strerror((store_status)999));
}

static void test_time_format_parse(void **state)
{
    (void)state;
    char buf[STORE_TIME_LEN];
    int64_t ms = 1795867200123LL; /* 2026-11-28T12:00:00.123Z */
    assert_string_equal(store_time_format(ms, buf), "2026-11-28T12:00:00.123Z");
    int64_t back = 0;
    assert_int_equal(store_time_parse(buf, &back), 0);
    assert_int_equal(back, ms);
    assert_int_equal(store_time_parse("2026-11-28T13:00:00+01:00", &back), 0);
    assert_int_equal(back, 1795867200000LL);
    assert_int_equal(store_time_parse("2026-11-28", &back), -1);
    assert_int_equal(store_time_parse("2026-11-28T12:00:00", &back), -1);
    assert_int_equal(store_time_parse("2026-11-28T12:00:00Zjunk", &back), -1);
}

/* The cases of api/parse.c's former RFC 3339 parser, which store_time_parse
 * replaced: store_time_parse is the project's one RFC 3339 parser. */
static void test_time_parse_api_cases(void **state)
{
    (void)state;
    int64_t t = -1, t2 = -1;
    char buf[STORE_TIME_LEN];
    assert_int_equal(store_time_parse("1970-01-01T00:00:00Z", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(store_time_parse("2026-11-28T12:00:00.5Z", &t), 0);
    assert_string_equal(store_time_format(t, buf), "2026-11-28T12:00:00.500Z");
    assert_int_equal(store_time_parse("2026-11-28T14:00:00.5+02:00", &t2), 0);
    assert_int_equal(t, t2);
    assert_int_equal(store_time_parse("2026-11-28", &t), -1);
    assert_int_equal(store_time_parse("2026-13-28T12:00:00Z", &t), -1);
    assert_int_equal(store_time_parse("2026-11-28T12:00:00", &t), -1);
    assert_int_equal(store_time_parse("2026-11-28T12:00:00Zjunk", &t), -1);
}

static void test_time_parse_edges(void **state)
{
    (void)state;
    int64_t t = 0, t2 = 0;
    /* lower-case separators and a space, as RFC 3339 section 5.6 allows */
    assert_int_equal(store_time_parse("2026-11-28t12:00:00z", &t), 0);
    assert_int_equal(store_time_parse("2026-11-28 12:00:00Z", &t2), 0);
    assert_int_equal(t, t2);
    assert_int_equal(t, 1795867200000LL);
    /* digits past the millisecond are ignored, not rounded */
    assert_int_equal(store_time_parse("2026-11-28T12:00:00.123999Z", &t), 0);
    assert_int_equal(t, 1795867200123LL);
    assert_int_equal(store_time_parse("2026-11-28T12:00:00-01:30", &t), 0);
    assert_int_equal(t, 1795867200000LL + 90 * 60 * 1000);
    /* a leap second is the first instant of the next minute */
    assert_int_equal(store_time_parse("2026-12-31T23:59:60Z", &t), 0);
    assert_int_equal(store_time_parse("2027-01-01T00:00:00Z", &t2), 0);
    assert_int_equal(t, t2);
    const char *bad[] = {"",
                         "2026-11-28T12:00:00.Z",
                         "2026-11-28T12:00:00+0100",
                         "2026-11-28T12:00:00+24:00",
                         "2026-11-28T12:00:00+01:60",
                         "2026-11-28T24:00:00Z",
                         "2026-11-28T12:60:00Z",
                         "2026-11-28T12:00:61Z",
                         "2026-11-00T12:00:00Z",
                         "2026-11-32T12:00:00Z",
                         "2026-00-28T12:00:00Z",
                         "26-11-28T12:00:00Z",
                         "2026/11/28T12:00:00Z",
                         "2026-11-28X12:00:00Z",
                         "+2026-11-28T12:00:00Z",
                         "2026-11-28T12:00:00Z ",
                         "2026-1a-28T12:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(store_time_parse(bad[i], &t), -1);
    assert_int_equal(store_time_parse(NULL, &t), -1);
    assert_int_equal(store_time_parse("2026-11-28T12:00:00Z", NULL), -1);
}

/* store_valid_product_id is the one product-id check (the API uses it too):
 * the cases of api/parse.c's former check, plus what that one missed. */
static void test_valid_product_id(void **state)
{
    (void)state;
    assert_true(store_valid_product_id("bottle-a"));
    assert_true(store_valid_product_id("A.b_c-9"));
    assert_true(store_valid_product_id("x"));
    assert_true(store_valid_product_id(".a"));
    char s65[66];
    memset(s65, 'a', 65);
    s65[65] = '\0';
    assert_false(store_valid_product_id(s65));
    s65[64] = '\0';
    assert_true(store_valid_product_id(s65));
    assert_false(store_valid_product_id(""));
    assert_false(store_valid_product_id("a b"));
    assert_false(store_valid_product_id("a/b"));
    assert_false(store_valid_product_id("\xc3\xa9")); /* "é" in UTF-8 */
    assert_false(store_valid_product_id("caf\xe9"));   /* "café" in Latin-1 */
    assert_false(store_valid_product_id(NULL));
    assert_false(store_valid_product_id("."));
    assert_false(store_valid_product_id(".."));
}

/* Explicit enum values: they are part of the API, only ever appended. */
static void test_enum_values(void **state)
{
    (void)state;
    assert_int_equal(STORE_OK, 0);
    assert_int_equal(STORE_ERR_CANCELED, 11);
    assert_int_equal(STORE_JOB_CANCELED, STORE_JOB_STATES - 1);
    assert_int_equal(STORE_ROLE_NONE, 0);
    assert_null(store_role_name(STORE_ROLE_NONE));
    assert_string_equal(store_role_name(STORE_ROLE_ADMIN), "admin");
    for (int s = STORE_OK; s <= STORE_ERR_CANCELED; s++) {
        assert_string_not_equal(store_strerror((store_status)s), "unknown status");
        assert_string_not_equal(store_status_code((store_status)s), "unknown");
    }
    assert_string_equal(store_status_code((store_status)(STORE_ERR_CANCELED + 1)), "unknown");
    assert_string_equal(store_status_code(STORE_ERR_VERSION), "schema_too_new");
    for (int j = 0; j < STORE_JOB_STATES; j++) {
        store_job_state back;
        assert_int_equal(store_job_state_parse(store_job_state_name((store_job_state)j), &back), 0);
        assert_int_equal(back, j);
    }
    assert_null(store_job_state_name((store_job_state)STORE_JOB_STATES));
}

static void test_migrations_fresh_and_reopen(void **state)
{
    fixture *fx = *state;
    assert_true(store_schema_latest() >= 1);
    assert_int_equal(store_schema_version(fx->st), store_schema_latest());
    char p[512];
    snprintf(p, sizeof p, "%s/cfa.db", fx->dir);
    assert_true(file_exists(p));
    snprintf(p, sizeof p, "%s/images", fx->dir);
    assert_true(file_exists(p));
    mk_product(fx->st, "keep-me");
    store_close(fx->st);
    fx->st = NULL;

    /* Re-open: no migration re-run, data kept. */
    assert_int_equal(store_open(fx->dir, NULL, &fx->st), STORE_OK);
    assert_int_equal(store_schema_version(fx->st), store_schema_latest());
    store_product_t pr;
    assert_int_equal(store_product_get(fx->st, "keep-me", &pr), STORE_OK);
    store_product_clear(&pr);
    store_close(fx->st);
    fx->st = NULL;

    /* WAL mode and a newer schema is refused. */
    snprintf(p, sizeof p, "%s/cfa.db", fx->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_latest() + 1);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    store_t *st2 = NULL;
    assert_int_equal(store_open(fx->dir, NULL, &st2), STORE_ERR_VERSION);
    assert_null(st2);
    /* Put it back so teardown's dir is a valid store again. */
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", store_schema_latest());
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(fx->dir, NULL, &fx->st), STORE_OK);
}

static void test_product_crud(void **state)
{
    fixture *fx = *state;
    store_product_t p;
    assert_int_equal(store_product_create(fx->st, "bottle-a", "Bottle A", "{\"x\":1}", &p, NULL),
                     STORE_OK);
    assert_string_equal(p.id, "bottle-a");
    assert_string_equal(p.name, "Bottle A");
    assert_string_equal(p.settings_json, "{\"x\":1}");
    assert_int_equal(p.active_version, 0);
    assert_false(p.has_threshold);
    assert_int_equal(p.image_count, 0);
    assert_true(p.created_at > 0);
    store_product_clear(&p);

    assert_int_equal(store_product_create(fx->st, "bottle-a", "dup", NULL, NULL, NULL),
                     STORE_ERR_EXISTS);
    assert_int_equal(store_product_create(fx->st, "bad id", NULL, NULL, NULL, NULL),
                     STORE_ERR_INVALID);
    assert_int_equal(store_product_create(fx->st, "", NULL, NULL, NULL, NULL), STORE_ERR_INVALID);
    char long_id[70];
    memset(long_id, 'a', 65);
    long_id[65] = '\0';
    assert_int_equal(store_product_create(fx->st, long_id, NULL, NULL, NULL, NULL),
                     STORE_ERR_INVALID);
    long_id[64] = '\0';
    assert_int_equal(store_product_create(fx->st, long_id, NULL, NULL, NULL, NULL), STORE_OK);

    assert_int_equal(store_product_patch(fx->st, "bottle-a", NULL, "{\"y\":2}", &p, NULL),
                     STORE_OK);
    assert_string_equal(p.name, "Bottle A");
    assert_string_equal(p.settings_json, "{\"y\":2}");
    store_product_clear(&p);
    assert_int_equal(store_product_patch(fx->st, "nope", "x", NULL, NULL, NULL),
                     STORE_ERR_NOT_FOUND);

    /* Pagination: 5 products listed 2 at a time. */
    mk_product(fx->st, "c1");
    mk_product(fx->st, "c2");
    mk_product(fx->st, "c3");
    char next[STORE_PRODUCT_ID_MAX] = "";
    size_t total = 0, n = 0;
    store_product_t *arr = NULL;
    char after[STORE_PRODUCT_ID_MAX] = "";
    do {
        assert_int_equal(store_product_list(fx->st, 2, after, &arr, &n, next), STORE_OK);
        assert_true(n <= 2);
        total += n;
        store_products_free(arr, n);
        snprintf(after, sizeof after, "%s", next);
    } while (next[0]);
    assert_int_equal(total, 5);

    assert_int_equal(store_product_delete(fx->st, "bottle-a", NULL), STORE_OK);
    assert_int_equal(store_product_get(fx->st, "bottle-a", &p), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_product_delete(fx->st, "bottle-a", NULL), STORE_ERR_NOT_FOUND);
}

static void test_image_put_idempotent(void **state)
{
    fixture *fx = *state;
    mk_product(fx->st, "p1");
    const char data[] = "\x89PNG fake image bytes for testing";
    store_image_t im, im2;
    int created = -1;
    assert_int_equal(store_image_put(fx->st, "p1", data, sizeof data, 10, 20, "png", &im,
                                     &created, NULL),
                     STORE_OK);
    assert_int_equal(created, 1);
    char expect[SHA256_HEX_LEN];
    sha256_hex_of(data, sizeof data, expect);
    assert_string_equal(im.sha256, expect);

    assert_int_equal(store_image_put(fx->st, "p1", data, sizeof data, 10, 20, "png", &im2,
                                     &created, NULL),
                     STORE_OK);
    assert_int_equal(created, 0);
    assert_string_equal(im2.sha256, im.sha256);

    int64_t cnt = 0;
    assert_int_equal(store_image_count(fx->st, "p1", &cnt), STORE_OK);
    assert_int_equal(cnt, 1);

    /* The file is there, once, and its content hashes to the id. */
    char path[1024];
    assert_int_equal(store_image_path(fx->st, "p1", im.sha256, "png", path, sizeof path),
                     STORE_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[256];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char h[SHA256_HEX_LEN];
    sha256_hex_of(buf, got, h);
    assert_string_equal(h, im.sha256);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/images/p1/%.2s", fx->dir, im.sha256);
    int files = 0;
    FILE *ls = NULL;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -1 '%s' | wc -l", dir);
    ls = popen(cmd, "r");
    assert_non_null(ls);
    assert_int_equal(fscanf(ls, "%d", &files), 1);
    pclose(ls);
    assert_int_equal(files, 1); /* no temp files left */

    /* list_all gives paths; product shows the count. */
    store_image_t *all = NULL;
    size_t n = 0;
    assert_int_equal(store_image_list_all(fx->st, "p1", &all, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(all[0].path, path);
    store_images_free(all, n);
    store_product_t p;
    assert_int_equal(store_product_get(fx->st, "p1", &p), STORE_OK);
    assert_int_equal(p.image_count, 1);
    store_product_clear(&p);

    /* Unknown product, bad ext. */
    assert_int_equal(store_image_put(fx->st, "nope", data, sizeof data, 1, 1, "png", NULL, NULL,
                                     NULL),
                     STORE_ERR_NOT_FOUND);
    assert_int_equal(store_image_put(fx->st, "p1", data, sizeof data, 1, 1, "../x", NULL, NULL,
                                     NULL),
                     STORE_ERR_INVALID);

    /* Pagination over images. */
    for (int i = 0; i < 7; i++) {
        char b[32];
        int len = snprintf(b, sizeof b, "image-%d", i);
        assert_int_equal(store_image_put(fx->st, "p1", b, (size_t)len, 4, 4, "jpg", NULL, NULL,
                                         NULL),
                         STORE_OK);
    }
    char next[STORE_SHA256_HEX] = "", after[STORE_SHA256_HEX] = "";
    size_t total = 0;
    store_image_t *arr;
    do {
        assert_int_equal(store_image_list(fx->st, "p1", 3, after, &arr, &n, next), STORE_OK);
        total += n;
        store_images_free(arr, n);
        snprintf(after, sizeof after, "%s", next);
    } while (next[0]);
    assert_int_equal(total, 8);

    /* Delete removes row and file. */
    assert_int_equal(store_image_delete(fx->st, "p1", im.sha256, NULL), STORE_OK);
    assert_false(file_exists(path));
    assert_int_equal(store_image_delete(fx->st, "p1", im.sha256, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_image_count(fx->st, "p1", &cnt), STORE_OK);
    assert_int_equal(cnt, 7);

    /* Deleting the product removes its image directory. */
    assert_int_equal(store_product_delete(fx->st, "p1", NULL), STORE_OK);
    snprintf(dir, sizeof dir, "%s/images/p1", fx->dir);
    assert_false(file_exists(dir));
}

static void test_path_traversal_rejected(void **state)
{
    fixture *fx = *state;
    const char *bad[] = {"..", ".", "../etc", "a/b", "a\\b", "x y", "%2e%2e", "a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(store_product_create(fx->st, bad[i], NULL, NULL, NULL, NULL),
                         STORE_ERR_INVALID);
        char path[512];
        assert_int_equal(store_image_path(fx->st, bad[i],
                                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                          "png", path, sizeof path),
                         STORE_ERR_INVALID);
    }
    mk_product(fx->st, "ok");
    char path[512];
    assert_int_equal(store_image_path(fx->st, "ok", "../../../../etc/passwd", "png", path,
                                      sizeof path),
                     STORE_ERR_INVALID);
    assert_int_equal(store_image_delete(fx->st, "ok", "../x", NULL), STORE_ERR_INVALID);
    assert_int_equal(store_inspection_file_path(fx->st, "../../../../../../../../etc/pa",
                                                "map.png", path, sizeof path),
                     STORE_ERR_INVALID);
    char id[STORE_ID_LEN];
    assert_int_equal(store_time_id(id), 0);
    assert_int_equal(store_inspection_file_path(fx->st, id, "../x", path, sizeof path),
                     STORE_ERR_INVALID);
    assert_int_equal(store_inspection_file_path(fx->st, id, "a/b", path, sizeof path),
                     STORE_ERR_INVALID);
    assert_int_equal(store_inspection_file_path(fx->st, id, "map.png", path, sizeof path),
                     STORE_OK);
    assert_non_null(strstr(path, "/inspections/"));
    assert_int_equal(store_job_get(fx->st, "../x", &(store_job_t){0}), STORE_ERR_INVALID);
}

static void test_jobs(void **state)
{
    fixture *fx = *state;
    mk_product(fx->st, "j1");
    mk_product(fx->st, "j2");
    store_job_t a, b, c;
    assert_int_equal(store_job_create(fx->st, "j1", "{\"epochs\":3}", &a, NULL), STORE_OK);
    assert_int_equal(a.state, STORE_JOB_QUEUED);
    assert_string_equal(a.params_json, "{\"epochs\":3}");
    assert_int_equal(store_job_create(fx->st, "j1", NULL, NULL, NULL), STORE_ERR_CONFLICT);
    assert_int_equal(store_job_create(fx->st, "zz", NULL, NULL, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_job_create(fx->st, "j2", NULL, &b, NULL), STORE_OK);
    /* A product with an active job cannot be deleted. */
    assert_int_equal(store_product_delete(fx->st, "j1", NULL), STORE_ERR_CONFLICT);

    /* Claim takes the oldest first. */
    assert_int_equal(store_job_claim(fx->st, &c), STORE_OK);
    assert_string_equal(c.id, a.id);
    assert_int_equal(c.state, STORE_JOB_RUNNING);
    assert_true(c.started_at > 0);
    store_job_clear(&c);
    assert_int_equal(store_job_create(fx->st, "j1", NULL, NULL, NULL), STORE_ERR_CONFLICT);

    int cancel = -1;
    assert_int_equal(store_job_progress(fx->st, a.id, "train", 1, 3, 0.5, 0.33, &cancel),
                     STORE_OK);
    assert_int_equal(cancel, 0);
    assert_int_equal(store_job_get(fx->st, a.id, &c), STORE_OK);
    assert_string_equal(c.phase, "train");
    assert_int_equal(c.epoch, 1);
    assert_true(fabs(c.loss - 0.5) < 1e-12);
    store_job_clear(&c);
    assert_int_equal(store_job_progress(fx->st, b.id, "x", 0, 0, NAN, 0, NULL),
                     STORE_ERR_CONFLICT); /* b is queued */

    /* Cancel: running -> flag; queued -> canceled at once. */
    assert_int_equal(store_job_cancel(fx->st, a.id, &c), STORE_OK);
    assert_int_equal(c.state, STORE_JOB_RUNNING);
    assert_int_equal(c.cancel_requested, 1);
    store_job_clear(&c);
    assert_int_equal(store_job_progress(fx->st, a.id, NULL, 2, 3, NAN, 0.6, &cancel), STORE_OK);
    assert_int_equal(cancel, 1);
    assert_int_equal(store_job_cancel(fx->st, b.id, &c), STORE_OK);
    assert_int_equal(c.state, STORE_JOB_CANCELED);
    store_job_clear(&c);
    assert_int_equal(store_job_cancel(fx->st, b.id, NULL), STORE_ERR_CONFLICT);

    /* A canceled job writes no model. */
    store_model_new mn = {.product = "j1", .job_id = a.id, .blob = "m", .blob_len = 1,
                          .threshold = 1.0, .activate = 1};
    assert_int_equal(store_model_insert(fx->st, &mn, NULL), STORE_ERR_CANCELED);
    store_model_t *ms = NULL;
    size_t n = 0;
    assert_int_equal(store_model_list(fx->st, "j1", 0, NULL, &ms, &n, NULL), STORE_OK);
    assert_int_equal(n, 0);
    store_models_free(ms, n);
    assert_int_equal(store_job_finish(fx->st, a.id, STORE_JOB_CANCELED, "canceled", 0, NULL),
                     STORE_OK);
    assert_int_equal(store_job_finish(fx->st, a.id, STORE_JOB_FAILED, NULL, 0, NULL),
                     STORE_ERR_CONFLICT);
    assert_int_equal(store_job_finish(fx->st, a.id, STORE_JOB_RUNNING, NULL, 0, NULL),
                     STORE_ERR_INVALID);
    assert_int_equal(store_job_claim(fx->st, &c), STORE_ERR_NOT_FOUND);

    /* Recover: running -> failed, or queued when asked to requeue. */
    store_job_t d;
    assert_int_equal(store_job_create(fx->st, "j1", NULL, &d, NULL), STORE_OK);
    assert_int_equal(store_job_claim(fx->st, &c), STORE_OK);
    store_job_clear(&c);
    int touched = 0;
    assert_int_equal(store_jobs_recover(fx->st, 1, &touched), STORE_OK);
    assert_int_equal(touched, 1);
    assert_int_equal(store_job_get(fx->st, d.id, &c), STORE_OK);
    assert_int_equal(c.state, STORE_JOB_QUEUED);
    store_job_clear(&c);
    assert_int_equal(store_job_claim(fx->st, &c), STORE_OK);
    store_job_clear(&c);
    assert_int_equal(store_jobs_recover(fx->st, 0, &touched), STORE_OK);
    assert_int_equal(touched, 1);
    assert_int_equal(store_job_get(fx->st, d.id, &c), STORE_OK);
    assert_int_equal(c.state, STORE_JOB_FAILED);
    assert_string_equal(c.error, "interrupted by restart");
    assert_true(c.finished_at > 0);
    store_job_clear(&c);

    /* Lists and counts. */
    store_job_t *js = NULL;
    char next[STORE_CURSOR_LEN], first[STORE_ID_LEN];
    assert_int_equal(store_job_list(fx->st, "j1", -1, 0, NULL, &js, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(next, "");
    store_jobs_free(js, n);
    /* pages of one: the cursor names the last row, the next page follows it */
    assert_int_equal(store_job_list(fx->st, "j1", -1, 1, NULL, &js, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_true(store_valid_time_cursor(next));
    snprintf(first, sizeof first, "%s", js[0].id);
    store_jobs_free(js, n);
    char cur[STORE_CURSOR_LEN]; /* the next page's cursor, apart from its output */
    snprintf(cur, sizeof cur, "%s", next);
    assert_int_equal(store_job_list(fx->st, "j1", -1, 1, cur, &js, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_true(strcmp(js[0].id, first) != 0);
    store_jobs_free(js, n);
    assert_int_equal(store_job_list(fx->st, "j1", -1, 1, "12.zz", &js, &n, next),
                     STORE_ERR_INVALID);
    assert_int_equal(store_job_list(fx->st, NULL, STORE_JOB_CANCELED, 0, NULL, &js, &n, NULL),
                     STORE_OK);
    assert_int_equal(n, 2);
    store_jobs_free(js, n);
    int64_t counts[5];
    assert_int_equal(store_job_counts(fx->st, counts), STORE_OK);
    assert_int_equal(counts[STORE_JOB_CANCELED], 2);
    assert_int_equal(counts[STORE_JOB_FAILED], 1);
    store_job_clear(&a);
    store_job_clear(&b);
    store_job_clear(&d);
}

static void test_models(void **state)
{
    fixture *fx = *state;
    mk_product(fx->st, "m1");
    store_job_t j, c;
    assert_int_equal(store_job_create(fx->st, "m1", NULL, &j, NULL), STORE_OK);
    /* Not running yet -> conflict. */
    store_model_new mn = {.product = "m1", .job_id = j.id, .blob = "AAAA", .blob_len = 4,
                          .threshold = 2.5, .figures_json = "{\"n_images\":3}", .activate = 1};
    assert_int_equal(store_model_insert(fx->st, &mn, NULL), STORE_ERR_CONFLICT);
    assert_int_equal(store_job_claim(fx->st, &c), STORE_OK);
    store_job_clear(&c);
    int64_t v = 0;
    assert_int_equal(store_model_insert(fx->st, &mn, &v), STORE_OK);
    assert_int_equal(v, 1);
    /* The job finished in the same transaction. */
    assert_int_equal(store_job_get(fx->st, j.id, &c), STORE_OK);
    assert_int_equal(c.state, STORE_JOB_SUCCEEDED);
    assert_int_equal(c.model_version, 1);
    store_job_clear(&c);
    store_job_clear(&j);

    store_model_new m2 = {.product = "m1", .blob = "BBBBBB", .blob_len = 6, .threshold = 3.0};
    assert_int_equal(store_model_insert(fx->st, &m2, &v), STORE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(store_model_insert(fx->st, &m2, &v), STORE_OK);
    assert_int_equal(v, 3);

    store_product_t p;
    assert_int_equal(store_product_get(fx->st, "m1", &p), STORE_OK);
    assert_int_equal(p.active_version, 1);
    assert_true(p.has_threshold);
    assert_true(fabs(p.threshold - 2.5) < 1e-12);
    store_product_clear(&p);

    store_model_t m;
    assert_int_equal(store_model_get(fx->st, "m1", 0, &m), STORE_OK);
    assert_int_equal(m.version, 1);
    assert_int_equal(m.blob_len, 4);
    assert_memory_equal(m.blob, "AAAA", 4);
    assert_int_equal(m.active, 1);
    assert_string_equal(m.figures_json, "{\"n_images\":3}");
    store_model_clear(&m);

    assert_int_equal(store_model_activate(fx->st, "m1", 2, NULL), STORE_OK);
    assert_int_equal(store_model_activate(fx->st, "m1", 9, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_model_set_threshold(fx->st, "m1", 0, 4.25), STORE_OK);
    assert_int_equal(store_model_get(fx->st, "m1", 0, &m), STORE_OK);
    assert_int_equal(m.version, 2);
    assert_true(fabs(m.threshold - 4.25) < 1e-12);
    assert_memory_equal(m.blob, "BBBBBB", 6);
    store_model_clear(&m);

    store_model_t *ms = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_LEN];
    assert_int_equal(store_model_list(fx->st, "m1", 2, NULL, &ms, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(next, "2");
    store_models_free(ms, n);
    char cur[STORE_CURSOR_LEN]; /* the next page's cursor, apart from its output */
    snprintf(cur, sizeof cur, "%s", next);
    assert_int_equal(store_model_list(fx->st, "m1", 2, cur, &ms, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ms[0].version, 1);
    assert_string_equal(next, "");
    store_models_free(ms, n);
    assert_int_equal(store_model_list(fx->st, "m1", 2, "x1", &ms, &n, next), STORE_ERR_INVALID);
    assert_int_equal(store_model_list(fx->st, "m1", 0, NULL, &ms, &n, NULL), STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ms[0].version, 3);
    assert_int_equal(ms[1].active, 1);
    assert_int_equal(ms[0].active, 0);
    assert_null(ms[0].blob);
    store_models_free(ms, n);

    mk_product(fx->st, "m2");
    assert_int_equal(store_model_get(fx->st, "m2", 0, &m), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_model_set_threshold(fx->st, "m2", 0, 1.0), STORE_ERR_NOT_FOUND);
    m2.product = "m2";
    assert_int_equal(store_model_insert(fx->st, &m2, &v), STORE_OK);
    assert_int_equal(v, 1); /* versions count per product */
}

static void fill_insp(store_inspection_t *r, const char *product, double score)
{
    memset(r, 0, sizeof *r);
    snprintf(r->product, sizeof r->product, "%s", product);
    r->model_version = 1;
    r->score = score;
    r->threshold = 2.0;
    snprintf(r->decision, sizeof r->decision, "%s", score >= 2.0 ? "NG" : "OK");
    r->map_max = score;
}

/* Migration 002: a model's NG threshold (none = its threshold; a new T1
 * alone raises a lower T2 to it; T2 < T1 refused) and the audit rows'
 * verdict and threshold_ng, filtered by verdict (a row written without a
 * verdict reads back its decision). */
static void test_verdicts(void **state)
{
    fixture *fx = *state;
    mk_product(fx->st, "v1");
    store_model_new bad = {.product = "v1", .blob = "A", .blob_len = 1, .threshold = 2.0,
                           .threshold_ng = 1.0, .activate = 1};
    assert_int_equal(store_model_insert(fx->st, &bad, NULL), STORE_ERR_INVALID);
    store_model_new none = {.product = "v1", .blob = "A", .blob_len = 1, .threshold = 2.0,
                            .activate = 1};
    assert_int_equal(store_model_insert(fx->st, &none, NULL), STORE_OK);
    store_product_t p;
    assert_int_equal(store_product_get(fx->st, "v1", &p), STORE_OK);
    assert_true(p.threshold == 2.0 && p.threshold_ng == 2.0);
    store_product_clear(&p);
    assert_int_equal(store_model_set_thresholds(fx->st, "v1", 0, 2.0, 5.0, NULL), STORE_OK);
    assert_int_equal(store_model_set_thresholds(fx->st, "v1", 0, 3.0, 2.5, NULL),
                     STORE_ERR_INVALID);
    assert_int_equal(store_model_set_threshold(fx->st, "v1", 0, 4.0), STORE_OK); /* keeps 5 */
    assert_int_equal(store_product_get(fx->st, "v1", &p), STORE_OK);
    assert_true(p.threshold == 4.0 && p.threshold_ng == 5.0);
    store_product_clear(&p);
    assert_int_equal(store_model_set_threshold(fx->st, "v1", 0, 6.0), STORE_OK); /* raises it */
    store_model_t m;
    assert_int_equal(store_model_get(fx->st, "v1", 0, &m), STORE_OK);
    assert_true(m.threshold == 6.0 && m.threshold_ng == 6.0);
    store_model_clear(&m);

    const char *verdicts[] = {"OK", "UNSURE", "NG", ""};
    for (int i = 0; i < 4; i++) {
        store_inspection_t r;
        fill_insp(&r, "v1", i == 0 ? 1.0 : 3.0);
        r.threshold_ng = 4.0;
        snprintf(r.verdict, sizeof r.verdict, "%s", verdicts[i]);
        assert_int_equal(store_inspection_insert(fx->st, &r), STORE_OK);
    }
    store_inspection_t r;
    fill_insp(&r, "v1", 3.0);
    snprintf(r.verdict, sizeof r.verdict, "MAYBE");
    assert_int_equal(store_inspection_insert(fx->st, &r), STORE_ERR_INVALID);
    store_inspection_t *arr;
    size_t n;
    char next[STORE_ID_LEN];
    store_inspection_filter f = {.product = "v1", .verdict = "UNSURE"};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(arr[0].verdict, "UNSURE");
    assert_true(arr[0].threshold_ng == 4.0);
    store_inspections_free(arr, n);
    f.verdict = "NG"; /* the explicit NG and the one written as its decision */
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    store_inspections_free(arr, n);
    f.decision = "OK";
    f.verdict = "UNSURE";
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 0);
    store_inspections_free(arr, n);
    f.verdict = "MAYBE";
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_ERR_INVALID);
}

static void test_inspections(void **state)
{
    fixture *fx = *state;
    /* 25 rows over two products, with increasing times. */
    for (int i = 0; i < 25; i++) {
        store_inspection_t r;
        fill_insp(&r, i % 2 ? "pa" : "pb", (double)(i % 5));
        r.regions_json = "[{\"x\":1}]";
        assert_int_equal(store_inspection_insert(fx->st, &r), STORE_OK);
        assert_true(store_valid_id(r.id));
        if (i == 9)
            usleep(5000);
    }
    store_inspection_t *arr;
    size_t n;
    char next[STORE_ID_LEN], after[STORE_ID_LEN] = "", prev[STORE_ID_LEN] = "";
    size_t total = 0;
    do {
        store_inspection_filter f = {.limit = 10, .after = after};
        assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
        for (size_t i = 0; i < n; i++) {
            if (prev[0])
                assert_true(strcmp(arr[i].id, prev) < 0); /* newest first */
            snprintf(prev, sizeof prev, "%s", arr[i].id);
        }
        total += n;
        store_inspections_free(arr, n);
        snprintf(after, sizeof after, "%s", next);
    } while (next[0]);
    assert_int_equal(total, 25);

    store_inspection_filter f = {.product = "pa", .decision = "NG"};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    /* pa: odd i; NG when i%5 >= 2 */
    size_t want = 0;
    for (int i = 0; i < 25; i++)
        if (i % 2 && i % 5 >= 2)
            want++;
    assert_int_equal(n, want);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(arr[i].product, "pa");
        assert_string_equal(arr[i].decision, "NG");
        assert_string_equal(arr[i].regions_json, "[{\"x\":1}]");
    }
    assert_string_equal(next, "");
    store_inspections_free(arr, n);

    /* since: only rows from the future -> none; from the epoch -> all. */
    f = (store_inspection_filter){.since = store_now_ms() + 60000};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 0);
    store_inspections_free(arr, n);
    f = (store_inspection_filter){.since = 1, .limit = 1000};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 25);
    store_inspections_free(arr, n);

    /* Bad filter values. */
    f = (store_inspection_filter){.decision = "MAYBE"};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_ERR_INVALID);

    /* A committed row is visible as soon as the commit returns. */
    store_inspection_t q;
    fill_insp(&q, "pa", 9.0);
    assert_int_equal(store_time_id(q.id), 0);
    q.has_images = 1;
    assert_int_equal(store_inspection_commit(fx->st, &q), STORE_OK);
    store_inspection_t got;
    assert_int_equal(store_inspection_get(fx->st, q.id, &got), STORE_OK);
    assert_string_equal(got.decision, "NG");
    assert_true(got.created_at > 0);
    store_inspection_clear(&got);

    /* Files and retention. */
    assert_int_equal(store_inspection_file_write(fx->st, q.id, "map.png", "PNGDATA", 7), STORE_OK);
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(store_inspection_file_read(fx->st, q.id, "map.png", &data, &len), STORE_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "PNGDATA", 7);
    free(data);
    store_inspection_t newer;
    fill_insp(&newer, "pa", 1.0);
    usleep(2000);
    newer.has_images = 1;
    assert_int_equal(store_inspection_insert(fx->st, &newer), STORE_OK);
    assert_int_equal(store_inspection_file_write(fx->st, newer.id, "map.png", "X", 1), STORE_OK);
    int64_t removed = -1;
    assert_int_equal(store_inspections_prune(fx->st, 1, &removed), STORE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(store_inspection_file_read(fx->st, q.id, "map.png", &data, &len),
                     STORE_ERR_NOT_FOUND);
    assert_int_equal(store_inspection_file_read(fx->st, newer.id, "map.png", &data, &len),
                     STORE_OK);
    free(data);
    assert_int_equal(store_inspection_get(fx->st, q.id, &got), STORE_OK);
    assert_int_equal(got.has_images, 0); /* the audit row stays */
    store_inspection_clear(&got);
}

/* Part identity round-trips and filters; an Idempotency-Key entry goes in
 * the row's transaction: a live key refuses a second row (and writes none),
 * an expired one is replaced; entries are swept. */
static void test_part_and_idempotency(void **state)
{
    fixture *fx = *state;
    store_inspection_t r;
    store_idem_t e = {.key_id = "", .route = "POST /x", .key = "k1", .status = 200};
    memset(e.hash, 'a', 64);
    fill_insp(&r, "pa", 3.0);
    snprintf(r.part.part_id, sizeof r.part.part_id, "P-1");
    snprintf(r.part.camera, sizeof r.part.camera, "cam \xc3\xa9");
    r.idem = &e;
    snprintf(e.ref, sizeof e.ref, "%s", "");
    assert_int_equal(store_inspection_commit(fx->st, &r), STORE_OK);
    store_inspection_t got;
    assert_int_equal(store_inspection_get(fx->st, r.id, &got), STORE_OK);
    assert_string_equal(got.part.part_id, "P-1");
    assert_string_equal(got.part.camera, "cam \xc3\xa9");
    assert_string_equal(got.part.serial, "");
    store_inspection_clear(&got);

    store_idem_t old;
    assert_int_equal(store_idem_get(fx->st, "", "POST /x", "k1", 0, &old), STORE_OK);
    assert_int_equal(old.status, 200);
    assert_string_equal(old.ref, r.id); /* the entry names its row */
    store_idem_clear(&old);
    /* the same key again: no second row */
    store_inspection_t r2;
    fill_insp(&r2, "pa", 1.0);
    snprintf(r2.part.part_id, sizeof r2.part.part_id, "P-1");
    r2.idem = &e;
    assert_int_equal(store_inspection_commit(fx->st, &r2), STORE_ERR_EXISTS);
    store_inspection_t *arr;
    size_t n;
    char next[STORE_ID_LEN];
    store_inspection_filter f = {.part_id = "P-1"};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    store_inspections_free(arr, n);
    store_inspection_filter fc = {.camera = "cam \xc3\xa9", .decision = "NG"};
    assert_int_equal(store_inspection_list(fx->st, &fc, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    store_inspections_free(arr, n);
    store_inspection_filter fm = {.model_version = 2};
    assert_int_equal(store_inspection_list(fx->st, &fm, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 0);
    store_inspections_free(arr, n);
    /* expired (expire_before after its time): replaced */
    e.expire_before = store_now_ms() + 1000;
    assert_int_equal(store_inspection_commit(fx->st, &r2), STORE_OK);
    int64_t removed = 0;
    assert_int_equal(store_idem_sweep(fx->st, store_now_ms() + 10000, &removed), STORE_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(store_idem_get(fx->st, "", "POST /x", "k1", 0, &old), STORE_ERR_NOT_FOUND);
}

static void test_api_keys(void **state)
{
    fixture *fx = *state;
    int64_t cnt = -1;
    assert_int_equal(store_key_count_active(fx->st, &cnt), STORE_OK);
    assert_int_equal(cnt, 0);
    char key[STORE_KEY_MAX];
    store_key_t k;
    assert_int_equal(store_key_create(fx->st, "line-1", STORE_ROLE_INSPECT, NULL, key, &k, NULL),
                     STORE_OK);
    assert_true(strlen(key) > 32);
    char first_key[STORE_KEY_MAX];
    snprintf(first_key, sizeof first_key, "%s", key);
    store_key_t v;
    assert_int_equal(store_key_verify(fx->st, key, &v), STORE_OK);
    assert_string_equal(v.id, k.id);
    assert_int_equal(v.role, STORE_ROLE_INSPECT);
    assert_string_equal(v.name, "line-1");
    store_key_clear(&v);

    /* Wrong keys: one char off, truncated, empty, NULL. */
    char wrong[STORE_KEY_MAX];
    snprintf(wrong, sizeof wrong, "%s", key);
    wrong[strlen(wrong) - 1] ^= 1;
    assert_int_equal(store_key_verify(fx->st, wrong, NULL), STORE_ERR_NOT_FOUND);
    wrong[10] = '\0';
    assert_int_equal(store_key_verify(fx->st, wrong, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_key_verify(fx->st, "", NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_key_verify(fx->st, NULL, NULL), STORE_ERR_NOT_FOUND);

    /* The clear key is nowhere in the database file. */
    store_close(fx->st);
    fx->st = NULL;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cat '%s'/cfa.db* | grep -c '%s'", fx->dir, key);
    FILE *pp = popen(cmd, "r");
    int hits = -1;
    assert_int_equal(fscanf(pp, "%d", &hits), 1);
    pclose(pp);
    assert_int_equal(hits, 0);
    assert_int_equal(store_open(fx->dir, NULL, &fx->st), STORE_OK);

    /* A given key (CFA_ADMIN_KEY). */
    assert_int_equal(store_key_create(fx->st, "admin", STORE_ROLE_ADMIN,
                                      "my-admin-key-from-env", key, NULL, NULL),
                     STORE_OK);
    assert_string_equal(key, "my-admin-key-from-env");
    assert_int_equal(store_key_verify(fx->st, "my-admin-key-from-env", &v), STORE_OK);
    assert_int_equal(v.role, STORE_ROLE_ADMIN);
    store_key_clear(&v);
    assert_int_equal(store_key_create(fx->st, "x", STORE_ROLE_ADMIN, "short", NULL, NULL, NULL),
                     STORE_ERR_INVALID);

    store_key_t *ks = NULL;
    size_t n = 0;
    char next[STORE_CURSOR_LEN], first[STORE_ID_LEN];
    assert_int_equal(store_key_list(fx->st, 0, NULL, &ks, &n, next), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(next, "");
    store_keys_free(ks, n);
    assert_int_equal(store_key_list(fx->st, 1, NULL, &ks, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    snprintf(first, sizeof first, "%s", ks[0].id);
    store_keys_free(ks, n);
    char cur[STORE_CURSOR_LEN]; /* the next page's cursor, apart from its output */
    snprintf(cur, sizeof cur, "%s", next);
    assert_int_equal(store_key_list(fx->st, 1, cur, &ks, &n, next), STORE_OK);
    assert_int_equal(n, 1);
    assert_true(strcmp(ks[0].id, first) != 0);
    assert_string_equal(next, "");
    store_keys_free(ks, n);
    assert_int_equal(store_key_revoke(fx->st, k.id, NULL), STORE_OK);
    assert_int_equal(store_key_revoke(fx->st, k.id, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_key_verify(fx->st, "my-admin-key-from-env", NULL), STORE_OK);
    assert_int_equal(store_key_verify(fx->st, first_key, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_key_count_active(fx->st, &cnt), STORE_OK);
    assert_int_equal(cnt, 1);
    store_key_clear(&k);
}

/* ------------------------------------------------------------ concurrency */

#define THREADS 4
#define PER_THREAD 200

typedef struct {
    store_t *st;
    int t;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++) {
        store_inspection_t r;
        fill_insp(&r, "conc", (double)i);
        store_status s;
        if (i % 2)
            s = store_inspection_insert(a->st, &r);
        else
            s = store_inspection_commit(a->st, &r);
        if (s != STORE_OK)
            a->failures++;
        if (i % 10 == 0) {
            char b[64];
            int len = snprintf(b, sizeof b, "img-%d-%d", a->t, i);
            if (store_image_put(a->st, "conc", b, (size_t)len, 2, 2, "png", NULL, NULL, NULL) !=
                STORE_OK)
                a->failures++;
            /* Every thread also uploads the same shared bytes. */
            len = snprintf(b, sizeof b, "shared-%d", i);
            if (store_image_put(a->st, "conc", b, (size_t)len, 2, 2, "png", NULL, NULL, NULL) !=
                STORE_OK)
                a->failures++;
        }
        if (i % 25 == 0) {
            store_inspection_t *arr;
            size_t n;
            char next[STORE_ID_LEN];
            store_inspection_filter f = {.product = "conc", .limit = 5};
            if (store_inspection_list(a->st, &f, &arr, &n, next) != STORE_OK)
                a->failures++;
            else
                store_inspections_free(arr, n);
        }
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    fixture *fx = *state;
    mk_product(fx->st, "conc");
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){.st = fx->st, .t = t};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(args[t].failures, 0);
    }
    store_inspection_t *arr;
    size_t n, total = 0;
    char next[STORE_ID_LEN], after[STORE_ID_LEN] = "";
    do {
        store_inspection_filter f = {.product = "conc", .limit = 1000, .after = after};
        assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
        total += n;
        store_inspections_free(arr, n);
        snprintf(after, sizeof after, "%s", next);
    } while (next[0]);
    assert_int_equal(total, THREADS * PER_THREAD);
    int64_t cnt = 0;
    assert_int_equal(store_image_count(fx->st, "conc", &cnt), STORE_OK);
    assert_int_equal(cnt, THREADS * (PER_THREAD / 10) + PER_THREAD / 10);
}

static store_status race_rc[8];
static void *job_racer(void *p)
{
    store_t *st = *(store_t **)((void **)p)[0];
    int i = (int)(intptr_t)((void **)p)[1];
    race_rc[i] = store_job_create(st, "race", NULL, NULL, NULL);
    return NULL;
}

static void test_job_create_race(void **state)
{
    fixture *fx = *state;
    mk_product(fx->st, "race");
    pthread_t th[8];
    void *args[8][2];
    for (int i = 0; i < 8; i++) {
        args[i][0] = &fx->st;
        args[i][1] = (void *)(intptr_t)i;
        pthread_create(&th[i], NULL, job_racer, args[i]);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += race_rc[i] == STORE_OK;
        conflict += race_rc[i] == STORE_ERR_CONFLICT;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflict, 7);
}

/* A second store on the same directory (like the CLI next to the daemon):
 * writers in two processes' worth of connections still lose nothing. */
static void *second_store_writer(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 100; i++) {
        store_inspection_t r;
        fill_insp(&r, "two", 1.0);
        if (store_inspection_insert(a->st, &r) != STORE_OK)
            a->failures++;
    }
    return NULL;
}

static void test_two_handles(void **state)
{
    fixture *fx = *state;
    store_t *st2 = NULL;
    assert_int_equal(store_open(fx->dir, NULL, &st2), STORE_OK);
    worker_arg a1 = {.st = fx->st}, a2 = {.st = st2};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, second_store_writer, &a1);
    pthread_create(&t2, NULL, second_store_writer, &a2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(a1.failures + a2.failures, 0);
    store_close(st2);
    store_inspection_t *arr;
    size_t n;
    char next[STORE_ID_LEN];
    store_inspection_filter f = {.product = "two", .limit = 1000};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, 200);
    store_inspections_free(arr, n);
}

/* Group commit: callers committing at once share transactions, each row is
 * visible as soon as its own commit returned, and a row that fails in a
 * group (here: an id taken meanwhile) fails alone. */
#define GC_THREADS 8
#define GC_PER_THREAD 40

typedef struct {
    store_t *st;
    int failures;
    char dup_id[STORE_ID_LEN]; /* every thread also commits this id once */
    int dup_ok, dup_exists;
} gc_arg;

static void *gc_worker(void *p)
{
    gc_arg *a = p;
    for (int i = 0; i < GC_PER_THREAD; i++) {
        store_inspection_t r, got;
        fill_insp(&r, "gc", (double)i);
        if (i == GC_PER_THREAD / 2)
            snprintf(r.id, sizeof r.id, "%s", a->dup_id);
        store_status s = store_inspection_commit(a->st, &r);
        if (i == GC_PER_THREAD / 2) {
            a->dup_ok += s == STORE_OK;
            a->dup_exists += s == STORE_ERR_EXISTS;
            continue;
        }
        if (s != STORE_OK || !store_valid_id(r.id) ||
            store_inspection_get(a->st, r.id, &got) != STORE_OK)
            a->failures++;
        else
            store_inspection_clear(&got);
    }
    return NULL;
}

static void test_group_commit(void **state)
{
    fixture *fx = *state;
    mk_product(fx->st, "gc");
    int64_t g0 = 0, r0 = 0, g1 = 0, r1 = 0;
    store_inspection_commit_stats(fx->st, &g0, &r0);
    char dup[STORE_ID_LEN];
    assert_int_equal(store_time_id(dup), 0);
    pthread_t th[GC_THREADS];
    gc_arg args[GC_THREADS];
    for (int t = 0; t < GC_THREADS; t++) {
        args[t] = (gc_arg){.st = fx->st};
        snprintf(args[t].dup_id, sizeof args[t].dup_id, "%s", dup);
        assert_int_equal(pthread_create(&th[t], NULL, gc_worker, &args[t]), 0);
    }
    int dup_ok = 0, dup_exists = 0;
    for (int t = 0; t < GC_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(args[t].failures, 0);
        dup_ok += args[t].dup_ok;
        dup_exists += args[t].dup_exists;
    }
    assert_int_equal(dup_ok, 1);
    assert_int_equal(dup_exists, GC_THREADS - 1);
    store_inspection_commit_stats(fx->st, &g1, &r1);
    assert_int_equal(r1 - r0, GC_THREADS * GC_PER_THREAD);
    /* eight callers at once: some commits carried more than one row */
    assert_true(g1 - g0 < r1 - r0);
    store_inspection_t *arr;
    size_t n;
    char next[STORE_ID_LEN];
    store_inspection_filter f = {.product = "gc", .limit = 1000};
    assert_int_equal(store_inspection_list(fx->st, &f, &arr, &n, next), STORE_OK);
    assert_int_equal(n, GC_THREADS * (GC_PER_THREAD - 1) + 1);
    store_inspections_free(arr, n);
    char why[64];
    assert_int_equal(store_write_health(fx->st, why, sizeof why), STORE_OK);
    assert_string_equal(why, "");
    assert_int_equal(store_write_probe(fx->st), STORE_OK);
}

/* Temp files of interrupted writes are swept at start-up; nothing else is. */
static void test_sweep_temp(void **state)
{
    fixture *fx = *state;
    char d[512], p[640];
    const char *gone[] = {"ab01.png.tmp-0123456789abcdef", "x.heatmap.png.tmp-aa", "admin.key.tmp"};
    const char *kept[] = {"ab01.png", "tmpfile.png", "notes.tmpl"};
    int n = -1;
    snprintf(d, sizeof d, "%s/images/p", fx->dir);
    assert_int_equal(mkdir(d, 0750), 0);
    snprintf(d, sizeof d, "%s/images/p/ab", fx->dir);
    assert_int_equal(mkdir(d, 0750), 0);
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/images/p/ab/%s", fx->dir, gone[i]);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fclose(f);
        snprintf(p, sizeof p, "%s/images/p/ab/%s", fx->dir, kept[i]);
        f = fopen(p, "w");
        assert_non_null(f);
        fclose(f);
    }
    assert_int_equal(store_sweep_temp(fx->dir, &n), STORE_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/images/p/ab/%s", fx->dir, gone[i]);
        assert_false(file_exists(p));
        snprintf(p, sizeof p, "%s/images/p/ab/%s", fx->dir, kept[i]);
        assert_true(file_exists(p));
    }
    snprintf(p, sizeof p, "%s/cfa.db", fx->dir);
    assert_true(file_exists(p));
    assert_int_equal(store_sweep_temp("/nonexistent/cfa-sweep", &n), STORE_OK);
    assert_int_equal(n, 0);
}

/* ROI masks (issue 13, migration *_roi_masks.sql): the file is durable and
 * named by its sha256, the row is the product's current mask, a replaced or
 * deleted mask keeps its file (models name it), deleting the product removes
 * both. */
static void test_masks(void **state)
{
    fixture *fx = *state;
    store_mask_t m;
    char path[4096];
    assert_int_equal(store_product_create(fx->st, "p1", "n", NULL, NULL, NULL), STORE_OK);
    assert_int_equal(store_mask_get(fx->st, "p1", &m), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_mask_put(fx->st, "nope", "ab", 2, 1, 1, &m, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_mask_put(fx->st, "p1", "ab", 2, 0, 1, &m, NULL), STORE_ERR_INVALID);
    assert_int_equal(store_mask_put(fx->st, "p1", "first", 5, 4, 3, &m, NULL), STORE_OK);
    char first[STORE_SHA256_HEX];
    snprintf(first, sizeof first, "%s", m.sha256);
    assert_int_equal(store_mask_put(fx->st, "p1", "second", 6, 8, 6, NULL, NULL), STORE_OK);
    assert_int_equal(store_mask_get(fx->st, "p1", &m), STORE_OK);
    assert_int_equal(m.width, 8);
    assert_int_equal(m.bytes, 6);
    assert_string_not_equal(m.sha256, first);
    assert_int_equal(store_mask_path(fx->st, "p1", first, path, sizeof path), STORE_OK);
    assert_int_equal(access(path, F_OK), 0); /* the replaced mask's file stays */
    assert_int_equal(store_mask_delete(fx->st, "p1", NULL), STORE_OK);
    assert_int_equal(store_mask_delete(fx->st, "p1", NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(access(path, F_OK), 0);
    char *fig = NULL;
    assert_int_equal(store_model_figures(fx->st, "p1", 1, &fig), STORE_ERR_NOT_FOUND);
    assert_null(fig);
    assert_int_equal(store_product_delete(fx->st, "p1", NULL), STORE_OK);
    assert_int_not_equal(access(path, F_OK), 0);
}

/* Safety rails and labels (migration 004): versions never reused across
 * model and product deletion, the active model not deletable, the last
 * admin key not revocable, labels replaced with history kept and counted. */
static void test_rails_and_labels(void **state)
{
    fixture *fx = *state;
    int64_t v = 0;
    mk_product(fx->st, "r1");
    store_model_new m = {.product = "r1", .blob = "AAAA", .blob_len = 4, .threshold = 1.0,
                         .activate = 1};
    assert_int_equal(store_model_insert(fx->st, &m, &v), STORE_OK);
    assert_int_equal(store_model_insert(fx->st, &m, &v), STORE_OK);
    assert_int_equal(v, 2);
    assert_int_equal(store_model_delete(fx->st, "r1", 2, NULL), STORE_ERR_CONFLICT);
    assert_int_equal(store_model_activate(fx->st, "r1", 1, NULL), STORE_OK);
    assert_int_equal(store_model_delete(fx->st, "r1", 2, NULL), STORE_OK);
    assert_int_equal(store_model_delete(fx->st, "r1", 2, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_model_insert(fx->st, &m, &v), STORE_OK);
    assert_int_equal(v, 3); /* not 2 again */
    assert_int_equal(store_product_delete(fx->st, "r1", NULL), STORE_OK);
    mk_product(fx->st, "r1");
    assert_int_equal(store_model_insert(fx->st, &m, &v), STORE_OK);
    assert_int_equal(v, 4); /* not 1: the product id's numbering continues */

    store_key_t a, b;
    assert_int_equal(store_key_create(fx->st, "a", STORE_ROLE_ADMIN, NULL, NULL, &a, NULL),
                     STORE_OK);
    assert_int_equal(store_key_create(fx->st, "b", STORE_ROLE_ADMIN, NULL, NULL, &b, NULL),
                     STORE_OK);
    assert_int_equal(store_key_revoke(fx->st, a.id, NULL), STORE_OK);
    assert_int_equal(store_key_revoke(fx->st, b.id, NULL), STORE_ERR_CONFLICT);
    store_key_clear(&a);
    store_key_clear(&b);

    store_inspection_t in = {.product = "r1", .model_version = 4, .score = 2, .threshold = 1,
                             .decision = "NG", .map_max = 2};
    assert_int_equal(store_inspection_insert(fx->st, &in), STORE_OK);
    store_label_t l;
    assert_int_equal(store_label_get(fx->st, in.id, &l), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_label_add(fx->st, in.id, "defect", NULL, "", NULL, NULL), STORE_OK);
    assert_int_equal(store_label_add(fx->st, in.id, "ok", "fine", "", NULL, &l), STORE_OK);
    store_label_clear(&l);
    assert_int_equal(store_label_add(fx->st, in.id, "maybe", NULL, "", NULL, NULL),
                     STORE_ERR_INVALID);
    assert_int_equal(store_label_add(fx->st, "0123456789abcdef0123456789abcdef", "ok", NULL, "",
                                     NULL, NULL), STORE_ERR_NOT_FOUND);
    assert_int_equal(store_label_get(fx->st, in.id, &l), STORE_OK);
    assert_string_equal(l.label, "ok");
    assert_string_equal(l.note, "fine");
    store_label_clear(&l);
    store_label_counts c;
    assert_int_equal(store_label_count(fx->st, "r1", &c), STORE_OK);
    assert_true(c.ng_ok == 1 && c.ng_defect == 0 && c.ok_ok == 0); /* the newest only */
    double *sc = NULL;
    size_t ns = 0;
    assert_int_equal(store_inspection_scores(fx->st, "r1", 4, 10, &sc, &ns), STORE_OK);
    assert_true(ns == 1 && sc[0] == 2.0);
    free(sc);
    /* created again: the old product's labelled inspections do not count */
    assert_int_equal(store_product_delete(fx->st, "r1", NULL), STORE_OK);
    usleep(2000); /* created_at is in ms: a later one */
    mk_product(fx->st, "r1");
    assert_int_equal(store_label_count(fx->st, "r1", &c), STORE_OK);
    assert_true(c.ng_ok == 0 && c.ng_defect == 0);
    store_inspection_clear(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_time_format_parse),
        cmocka_unit_test(test_time_parse_api_cases),
        cmocka_unit_test(test_time_parse_edges),
        cmocka_unit_test(test_valid_product_id),
        cmocka_unit_test(test_enum_values),
        cmocka_unit_test_setup_teardown(test_migrations_fresh_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_product_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_put_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_traversal_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_part_and_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_create_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_temp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rails_and_labels, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
