/*
 * models.c - the models table: serialised models (blobs) numbered 1, 2, ...
 * per product, at most one of them active (products.active_version). A model
 * made by a training job is inserted in the same transaction that finishes
 * the job, so a job never succeeds without its model or the other way round.
 */
#include "store_int.h"

#include <math.h>

#define MODEL_COLS                                                                 \
    "m.product, m.version, m.created_at, m.job_id, m.threshold, m.backbone_sha256, " \
    "m.figures_json, coalesce(p.active_version = m.version, 0), coalesce(m.threshold_ng, m.threshold)"

static void model_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_model_t *m = elem;
    db_col_copy(s, 0, m->product, sizeof m->product);
    m->version = sqlite3_column_int64(s, 1);
    m->created_at = sqlite3_column_int64(s, 2);
    db_col_copy(s, 3, m->job_id, sizeof m->job_id);
    m->threshold = sqlite3_column_double(s, 4);
    db_col_copy(s, 5, m->backbone_sha256, sizeof m->backbone_sha256);
    m->figures_json = db_col_dup(s, 6, "{}");
    m->active = sqlite3_column_int(s, 7) != 0;
    m->threshold_ng = sqlite3_column_double(s, 8);
}

/* store_model_get's row: MODEL_COLS, then the blob in column 9. */
static void model_blob_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    store_model_t *m = elem;
    model_from_row(s, m, ctx);
    const void *b = sqlite3_column_blob(s, 9); /* before _bytes, as SQLite asks */
    int bl = sqlite3_column_bytes(s, 9);
    m->blob = xmalloc((size_t)bl);
    if (bl > 0)
        memcpy(m->blob, b, (size_t)bl);
    m->blob_len = (size_t)bl;
}

static void model_clear(void *elem)
{
    store_model_t *m = elem;
    free(m->figures_json);
    free(m->blob);
}

/* Models are not paged: no cursor key. */
/* Lists page by version, a number: the product (never empty) only marks that
 * a next page exists, and store_model_list makes the cursor the version. */
static const db_rowtype MODEL_ROWS = {sizeof(store_model_t), model_from_row, model_clear,
                                      offsetof(store_model_t, product), STORE_PRODUCT_ID_MAX};
static const db_rowtype MODEL_BLOB_ROWS = {sizeof(store_model_t), model_blob_from_row,
                                           model_clear, 0, 0};

DB_DEFINE_CLEAR_FREE(store_model_t, store_model_clear, store_models_free, MODEL_ROWS)

/* Makes version the product's active model (inside a write transaction). */
static store_status product_set_active_w(store_t *st, const char *product, int64_t version,
                                         int64_t now)
{
    static const char SQL[] =
        "UPDATE products SET active_version = ?2, updated_at = ?3 WHERE id = ?1";
    db_query q = {SQL, {DB_TEXT(product), DB_INT(version), DB_INT(now)}, NULL, 0};
    return db_wrun(st, &q);
}

/* ---------------------------------------------------------------- insert */

static int model_new_valid(const store_model_new *m)
{
    return m && store_valid_product_id(m->product) && m->blob && m->blob_len > 0 &&
           isfinite(m->threshold) && !(m->threshold_ng > 0 && m->threshold_ng < m->threshold) &&
           (!m->job_id || store_valid_id(m->job_id)) &&
           (!m->backbone_sha256 || !*m->backbone_sha256 ||
            store_valid_sha256(m->backbone_sha256)) &&
           (m->n_events == 0 || (m->n_events > 0 && m->events != NULL)) &&
           m->blob_len <= (size_t)INT32_MAX; /* sqlite3_column_bytes() is an int */
}

/* The job that made the model must be of the same product, running, and
 * not asked to cancel (then nothing is written: STORE_ERR_CANCELED). */
static store_status model_job_check_w(store_t *st, const store_model_new *m)
{
    static const char SQL[] = "SELECT product, state, cancel_requested FROM jobs WHERE id = ?1";
    sqlite3_stmt *s = db_prep(&st->w, SQL);
    if (!s)
        return STORE_ERR_DB;
    sqlite3_bind_text(s, 1, m->job_id, -1, SQLITE_TRANSIENT);
    int rc = db_step(s);
    store_status r = STORE_OK;
    if (rc == SQLITE_ROW) {
        const char *prod = (const char *)sqlite3_column_text(s, 0);
        const char *state = (const char *)sqlite3_column_text(s, 1);
        if (!prod || strcmp(prod, m->product) != 0)
            r = STORE_ERR_INVALID;
        else if (sqlite3_column_int(s, 2))
            r = STORE_ERR_CANCELED;
        else if (!state || strcmp(state, "running") != 0)
            r = STORE_ERR_CONFLICT;
    } else {
        r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : db_map_rc(st->w.db, rc);
    }
    db_done(s);
    return r;
}

/* The product's next version into *v: one past the highest it ever had,
 * deleted models and deleted products included (model_versions outlives
 * both), so a version is never given out twice for a product id. */
static store_status model_next_version_w(store_t *st, const char *product, int64_t *v)
{
    static const char SQL[] =
        "SELECT max(coalesce((SELECT max(version) FROM models WHERE product = ?1), 0), "
        "coalesce((SELECT last_version FROM model_versions WHERE product = ?1), 0)) + 1";
    sqlite3_stmt *s = db_prep(&st->w, SQL);
    if (!s)
        return STORE_ERR_DB;
    sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
    int rc = db_step(s);
    store_status r = STORE_OK;
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(s, 0);
    else
        r = db_map_rc(st->w.db, rc);
    db_done(s);
    return r;
}

static store_status model_row_insert_w(store_t *st, const store_model_new *m, int64_t v,
                                       int64_t now)
{
    static const char SQL[] =
        "INSERT INTO models(product, version, created_at, job_id, threshold, backbone_sha256, "
        "blob, figures_json, threshold_ng) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    sqlite3_stmt *s = db_prep(&st->w, SQL);
    if (!s)
        return STORE_ERR_DB;
    sqlite3_bind_text(s, 1, m->product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, v);
    sqlite3_bind_int64(s, 3, now);
    db_bind_text_or_null(s, 4, m->job_id);
    sqlite3_bind_double(s, 5, m->threshold);
    db_bind_text_or_null(s, 6, (m->backbone_sha256 && *m->backbone_sha256)
                                   ? m->backbone_sha256 : NULL);
    /* static: the blob outlives the statement, which is reset before return */
    sqlite3_bind_blob64(s, 7, m->blob, (sqlite3_uint64)m->blob_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 8, m->figures_json ? m->figures_json : "{}", -1, SQLITE_TRANSIENT);
    if (isfinite(m->threshold_ng) && m->threshold_ng > 0)
        sqlite3_bind_double(s, 9, m->threshold_ng);
    else
        sqlite3_bind_null(s, 9);
    return db_run(&st->w, s);
}

static store_status model_version_record_w(store_t *st, const char *product, int64_t v)
{
    static const char SQL[] =
        "INSERT INTO model_versions(product, last_version) VALUES (?1, ?2) "
        "ON CONFLICT(product) DO UPDATE SET last_version = max(last_version, excluded.last_version)";
    db_query q = {SQL, {DB_TEXT(product), DB_INT(v)}, NULL, 0};
    return db_wrun(st, &q);
}

/* Every step of store_model_insert inside its one write transaction. */
static store_status model_insert_w(store_t *st, const store_model_new *m, int64_t *v)
{
    int e = store_product_exists_w(st, m->product);
    if (e <= 0)
        return e == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    store_status r = m->job_id ? model_job_check_w(st, m) : STORE_OK;
    if (r == STORE_OK)
        r = model_next_version_w(st, m->product, v);
    int64_t now = store_now_ms();
    if (r == STORE_OK)
        r = model_row_insert_w(st, m, *v, now);
    if (r == STORE_OK)
        r = model_version_record_w(st, m->product, *v);
    if (r == STORE_OK && m->activate)
        r = product_set_active_w(st, m->product, *v, now);
    if (r == STORE_OK && m->job_id)
        r = store_job_finish_w(st, m->job_id, STORE_JOB_SUCCEEDED, NULL, *v);
    for (int i = 0; r == STORE_OK && i < m->n_events; i++)
        r = store_event_row_w(st, &m->events[i], v);
    return r;
}

store_status store_model_insert(store_t *st, const store_model_new *m, int64_t *version)
{
    if (version)
        *version = 0;
    if (!model_new_valid(m))
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    int64_t v = 0;
    r = model_insert_w(st, m, &v);
    r = store_wend_event(st, r, m->n_events > 0 ? m->events : NULL);
    if (r == STORE_OK && version)
        *version = v;
    return r;
}

/* ----------------------------------------------------------------- reads */

store_status store_model_get(store_t *st, const char *product, int64_t version,
                             store_model_t *out)
{
    static const char SQL[] =
        "SELECT " MODEL_COLS ", m.blob FROM models m JOIN products p ON p.id = m.product "
        "WHERE m.product = ?1 AND m.version = "
        "CASE WHEN ?2 > 0 THEN ?2 ELSE p.active_version END";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product) || version < 0)
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(product), DB_INT(version)}, NULL, 0};
    return db_get(st, &q, &MODEL_BLOB_ROWS, out);
}

store_status store_model_list(store_t *st, const char *product, size_t limit,
                              const char *after, store_model_t **out, size_t *n,
                              char next[STORE_CURSOR_LEN])
{
    static const char SQL[] = "SELECT " MODEL_COLS " FROM models m JOIN products p ON "
                              "p.id = m.product WHERE m.product = ?1 AND "
                              "(?3 IS NULL OR m.version < ?3) ORDER BY m.version DESC LIMIT ?2";
    char more[STORE_PRODUCT_ID_MAX] = "";
    long long before = 0;
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    if (after && *after && (strspn(after, "0123456789") != strlen(after) ||
                            strlen(after) > 18 || (before = strtoll(after, NULL, 10)) < 1))
        return STORE_ERR_INVALID;
    store_status r = store_product_check_r(st, product);
    if (r != STORE_OK)
        return r;
    limit = db_list_limit(limit);
    db_query q = {SQL, {DB_TEXT(product), DB_INT(limit + 1), before ? DB_INT(before) : DB_NULL},
                  NULL, limit};
    r = db_list(st, &q, &MODEL_ROWS, out, n, more);
    if (r == STORE_OK && next && more[0])
        snprintf(next, STORE_CURSOR_LEN, "%lld", (long long)(*out)[*n - 1].version);
    return r;
}

/* ---------------------------------------------------------------- updates */

store_status store_model_activate(store_t *st, const char *product, int64_t version,
                                  store_event_t *ev)
{
    static const char SQL_HAS[] = "SELECT 1 FROM models WHERE product = ?1 AND version = ?2";
    if (!store_valid_product_id(product) || version <= 0)
        return STORE_ERR_INVALID;
    store_status r;
    sqlite3_stmt *s = db_wbegin_prep(st, SQL_HAS, &r);
    if (!s)
        return r;
    sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, version);
    int rc = db_step(s);
    r = rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND
                                                        : db_map_rc(st->w.db, rc);
    db_done(s);
    if (r == STORE_OK)
        r = product_set_active_w(st, product, version, store_now_ms());
    if (r == STORE_OK)
        r = store_event_product_w(st, ev, product);
    return store_wend_event(st, r, ev);
}

store_status store_model_set_thresholds(store_t *st, const char *product, int64_t version,
                                        double threshold, double threshold_ng,
                                        store_event_t *ev)
{
    /* ?4 NULL: the NG threshold stays, raised to the new threshold if below */
    static const char SQL[] =
        "UPDATE models SET threshold = ?3, threshold_ng = CASE WHEN ?4 IS NULL THEN "
        "max(coalesce(threshold_ng, ?3), ?3) ELSE ?4 END WHERE product = ?1 AND version = "
        "CASE WHEN ?2 > 0 THEN ?2 ELSE (SELECT active_version FROM products WHERE id = ?1) END";
    if (!store_valid_product_id(product) || version < 0 || !isfinite(threshold) ||
        threshold_ng < threshold)
        return STORE_ERR_INVALID;
    db_query q = {SQL,
                  {DB_TEXT(product), DB_INT(version), DB_REAL(threshold),
                   isfinite(threshold_ng) ? DB_REAL(threshold_ng) : DB_NULL},
                  NULL, 0};
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_wrun_changing(st, &q);
    if (r == STORE_OK)
        r = store_event_product_w(st, ev, product);
    return store_wend_event(st, r, ev);
}

store_status store_model_set_threshold(store_t *st, const char *product, int64_t version,
                                       double threshold)
{
    return store_model_set_thresholds(st, product, version, threshold, NAN, NULL);
}

/* ---------------------------------------------------------------- delete */

/* ev's before_fn gets the model as it was (no blob, no figures), read in
 * the transaction that deletes it. */
store_status store_model_delete(store_t *st, const char *product, int64_t version,
                                store_event_t *ev)
{
    static const char SQL_ACTIVE[] =
        "SELECT coalesce(p.active_version = ?2, 0), m.threshold, "
        "coalesce(m.threshold_ng, m.threshold) FROM models m JOIN products p "
        "ON p.id = m.product WHERE m.product = ?1 AND m.version = ?2";
    static const char SQL_DEL[] = "DELETE FROM models WHERE product = ?1 AND version = ?2";
    if (!store_valid_product_id(product) || version <= 0)
        return STORE_ERR_INVALID;
    store_status r;
    sqlite3_stmt *s = db_wbegin_prep(st, SQL_ACTIVE, &r);
    if (!s)
        return r;
    sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, version);
    int rc = db_step(s);
    store_model_t was;
    memset(&was, 0, sizeof was);
    r = rc == SQLITE_ROW ? (sqlite3_column_int(s, 0) ? STORE_ERR_CONFLICT : STORE_OK)
        : rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : db_map_rc(st->w.db, rc);
    if (rc == SQLITE_ROW) {
        snprintf(was.product, sizeof was.product, "%s", product);
        was.version = version;
        was.threshold = sqlite3_column_double(s, 1);
        was.threshold_ng = sqlite3_column_double(s, 2);
    }
    db_done(s);
    db_query q = {SQL_DEL, {DB_TEXT(product), DB_INT(version)}, NULL, 0};
    /* model_versions keeps the number taken */
    return store_remove_event_wend(st, r, &q, &was, ev);
}

