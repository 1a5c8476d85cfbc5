/*
 * jobs.c - the jobs table: training jobs, at most one queued or running per
 * product (checked here and by a partial unique index), claimed by the job
 * runner, and recovered at start-up after a crash.
 */
#include "store_int.h"

#include <math.h>

static const char *const job_state_names[STORE_JOB_STATES] = {
    [STORE_JOB_QUEUED] = "queued",       [STORE_JOB_RUNNING] = "running",
    [STORE_JOB_SUCCEEDED] = "succeeded", [STORE_JOB_FAILED] = "failed",
    [STORE_JOB_CANCELED] = "canceled",
};

const char *store_job_state_name(store_job_state s)
{
    if ((unsigned)s >= STORE_JOB_STATES)
        return NULL;
    return job_state_names[s];
}

int store_job_state_parse(const char *name, store_job_state *s)
{
    if (!name)
        return -1;
    for (int i = 0; i < STORE_JOB_STATES; i++) {
        if (strcmp(name, job_state_names[i]) == 0) {
            if (s)
                *s = (store_job_state)i;
            return 0;
        }
    }
    return -1;
}

store_status store_product_idle_w(store_t *st, const char *product)
{
    static const char SQL[] =
        "SELECT 1 FROM jobs WHERE product = ?1 AND state IN ('queued','running')";
    int e = store_product_exists_w(st, product);
    if (e <= 0)
        return e == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    e = db_exists_w(st, SQL, product);
    return e == 0 ? STORE_OK : e > 0 ? STORE_ERR_CONFLICT : STORE_ERR_DB;
}

#define JOB_COLS                                                                     \
    "id, product, state, params_json, phase, epoch, epochs, loss, fraction, "        \
    "model_version, error, cancel_requested, created_at, started_at, finished_at"

static void job_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_job_t *j = elem;
    db_col_copy(s, 0, j->id, sizeof j->id);
    db_col_copy(s, 1, j->product, sizeof j->product);
    store_job_state_parse((const char *)sqlite3_column_text(s, 2), &j->state);
    j->params_json = db_col_dup(s, 3, "{}");
    j->phase = db_col_dup(s, 4, "");
    j->epoch = sqlite3_column_int(s, 5);
    j->epochs = sqlite3_column_int(s, 6);
    j->loss = db_col_real_or_nan(s, 7);
    j->fraction = sqlite3_column_double(s, 8);
    j->model_version = sqlite3_column_int64(s, 9);
    j->error = db_col_dup(s, 10, NULL);
    j->cancel_requested = sqlite3_column_int(s, 11);
    j->created_at = sqlite3_column_int64(s, 12);
    j->started_at = sqlite3_column_int64(s, 13);
    j->finished_at = sqlite3_column_int64(s, 14);
}

static void job_clear(void *elem)
{
    store_job_t *j = elem;
    free(j->params_json);
    free(j->phase);
    free(j->error);
}

/* The cursor key is the id: store_job_list makes it "<created_at>.<id>". */
static const db_rowtype JOB_ROWS = {sizeof(store_job_t), job_from_row, job_clear,
                                    offsetof(store_job_t, id), STORE_ID_LEN};

DB_DEFINE_CLEAR_FREE(store_job_t, store_job_clear, store_jobs_free, JOB_ROWS)

/* Reads a job on the given connection (a reader, or the writer inside a
 * transaction so the caller sees its own change). */
static store_status job_get_on(conn_t *c, const char *id, store_job_t *out)
{
    static const char SQL[] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1";
    db_query q = {SQL, {DB_TEXT(id)}, NULL, 0};
    return db_get_on(c, &q, &JOB_ROWS, out);
}

/* Ends a write transaction that changed job id, first reading the job back
 * on the writer so it shows the change: into out (may be NULL; left empty
 * on failure) and as the row of ev (may be NULL), appended before the end. */
static store_status job_wend_get(store_t *st, store_status r, const char *id,
                                 store_job_t *out, store_event_t *ev)
{
    store_job_t j;
    memset(&j, 0, sizeof j);
    if (r == STORE_OK && (out || ev))
        r = job_get_on(&st->w, id, &j);
    if (r == STORE_OK)
        r = store_event_row_w(st, ev, &j);
    r = store_wend_event(st, r, ev);
    if (r == STORE_OK && out)
        *out = j;
    else
        store_job_clear(&j);
    return r;
}

store_status store_job_get(store_t *st, const char *id, store_job_t *out)
{
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    conn_t *c = db_racquire(st);
    store_status r = job_get_on(c, id, out);
    db_rrelease(st, c);
    return r;
}

/* The INSERT of store_job_create, inside its transaction, after the checks. */
static store_status job_insert_w(store_t *st, const char *id, const char *product,
                                 const char *params_json)
{
    static const char SQL[] = "INSERT INTO jobs(id, product, state, params_json, created_at) "
                              "VALUES (?1, ?2, 'queued', ?3, ?4)";
    db_query q = {SQL, {DB_TEXT(id), DB_TEXT(product), DB_TEXT(params_json ? params_json : "{}"),
                        DB_INT(store_now_ms())}, NULL, 0};
    store_status r = db_wrun(st, &q);
    /* the partial unique index: another process made an active job first */
    return r == STORE_ERR_EXISTS ? STORE_ERR_CONFLICT : r;
}

store_status store_job_create(store_t *st, const char *product, const char *params_json,
                              store_job_t *out, store_event_t *ev)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    char id[STORE_ID_LEN];
    if (store_random_id(id) != 0)
        return STORE_ERR_IO;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = store_product_idle_w(st, product);
    if (r == STORE_OK)
        r = job_insert_w(st, id, product, params_json);
    return job_wend_get(st, r, id, out, ev);
}

store_status store_job_list(store_t *st, const char *product, int state_filter, size_t limit,
                            const char *after, store_job_t **out, size_t *n,
                            char next[STORE_CURSOR_LEN])
{
    static const char SQL[] = "SELECT " JOB_COLS " FROM jobs WHERE "
                              "(?1 IS NULL OR product = ?1) AND (?2 IS NULL OR state = ?2) "
                              "AND (?4 IS NULL OR created_at < ?4 OR "
                              "(created_at = ?4 AND id < ?5)) "
                              "ORDER BY created_at DESC, id DESC LIMIT ?3";
    int64_t after_ms = 0;
    char after_id[STORE_ID_LEN] = "";
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    if (product && !store_valid_product_id(product))
        return STORE_ERR_INVALID;
    if (after && *after && store_cursor_parse(after, &after_ms, after_id) != 0)
        return STORE_ERR_INVALID;
    const char *state = NULL;
    if (state_filter >= 0) {
        state = store_job_state_name((store_job_state)state_filter);
        if (!state)
            return STORE_ERR_INVALID;
    }
    limit = db_list_limit(limit);
    db_query q = {SQL, {DB_TEXT(product), DB_TEXT(state), DB_INT(limit + 1),
                        after_id[0] ? DB_INT(after_ms) : DB_NULL, DB_TEXT(after_id)},
                  NULL, limit};
    store_status r = db_list(st, &q, &JOB_ROWS, out, n, next);
    if (r == STORE_OK && next && next[0])
        store_cursor_format((*out)[*n - 1].created_at, (*out)[*n - 1].id, next);
    return r;
}

/* Id of the oldest queued job into id (inside a write transaction). */
static store_status job_oldest_queued_w(store_t *st, char id[STORE_ID_LEN])
{
    static const char SQL[] =
        "SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at, rowid LIMIT 1";
    db_query q = {.sql = SQL}; /* no parameters */
    return db_get_text_w(st, &q, id, STORE_ID_LEN);
}

store_status store_job_claim(store_t *st, store_job_t *out)
{
    static const char SQL_RUN[] = "UPDATE jobs SET state = 'running', started_at = ?2, "
                                  "finished_at = NULL WHERE id = ?1 AND state = 'queued'";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    char id[STORE_ID_LEN] = "";
    r = job_oldest_queued_w(st, id);
    db_query q = {SQL_RUN, {DB_TEXT(id), DB_INT(store_now_ms())}, NULL, 0};
    if (r == STORE_OK)
        r = db_wrun(st, &q);
    return job_wend_get(st, r, id, out, NULL);
}

/* STORE_ERR_NOT_FOUND if the job does not exist, else STORE_ERR_CONFLICT:
 * the explanation when a state-guarded UPDATE changed nothing. */
static store_status job_missing_or_conflict(store_t *st, const char *id)
{
    static const char SQL[] = "SELECT 1 FROM jobs WHERE id = ?1";
    int e = db_exists_w(st, SQL, id);
    return e == 0 ? STORE_ERR_NOT_FOUND : e > 0 ? STORE_ERR_CONFLICT : STORE_ERR_DB;
}

store_status store_job_progress(store_t *st, const char *id, const char *phase, int epoch,
                                int epochs, double loss, double fraction, int *cancel_requested)
{
    static const char SQL[] = "UPDATE jobs SET phase = coalesce(?2, phase), epoch = ?3, "
                              "epochs = ?4, loss = ?5, fraction = ?6 "
                              "WHERE id = ?1 AND state = 'running' RETURNING cancel_requested";
    if (cancel_requested)
        *cancel_requested = 0;
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    if (!isfinite(fraction))
        fraction = 0;
    fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    store_status r;
    sqlite3_stmt *s = db_wbegin_prep(st, SQL, &r);
    if (!s)
        return r;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    db_bind_text_or_null(s, 2, phase);
    sqlite3_bind_int(s, 3, epoch);
    sqlite3_bind_int(s, 4, epochs);
    db_bind_real_or_null(s, 5, loss);
    sqlite3_bind_double(s, 6, fraction);
    int rc = db_step(s);
    if (rc == SQLITE_ROW) {
        if (cancel_requested)
            *cancel_requested = sqlite3_column_int(s, 0);
        rc = db_step(s); /* finish the statement */
        r = rc == SQLITE_DONE ? STORE_OK : db_map_rc(st->w.db, rc);
        db_done(s);
    } else {
        r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : db_map_rc(st->w.db, rc);
        db_done(s);
        if (r == STORE_ERR_NOT_FOUND)
            r = job_missing_or_conflict(st, id);
    }
    return db_wend(st, r);
}

store_status store_job_finish_w(store_t *st, const char *id, store_job_state state,
                                const char *error, int64_t model_version)
{
    static const char SQL[] =
        "UPDATE jobs SET state = ?2, error = ?3, model_version = ?4, finished_at = ?5, "
        "fraction = CASE WHEN ?2 = 'succeeded' THEN 1 ELSE fraction END "
        "WHERE id = ?1 AND state IN ('queued','running')";
    db_query q = {SQL, {DB_TEXT(id), DB_TEXT(store_job_state_name(state)), DB_TEXT(error),
                        model_version > 0 ? DB_INT(model_version) : DB_NULL,
                        DB_INT(store_now_ms())}, NULL, 0};
    store_status r = db_wrun(st, &q);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0)
        r = job_missing_or_conflict(st, id);
    return r;
}

store_status store_job_finish(store_t *st, const char *id, store_job_state state,
                              const char *error, int64_t model_version, store_event_t *ev)
{
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    if (state != STORE_JOB_SUCCEEDED && state != STORE_JOB_FAILED &&
        state != STORE_JOB_CANCELED)
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = store_job_finish_w(st, id, state, error, model_version);
    if (r == STORE_OK)
        r = store_event_row_w(st, ev, NULL);
    return store_wend_event(st, r, ev);
}

/* A queued job ends canceled at once; a running one is only flagged (its
 * runner ends it). Inside a write transaction. */
static store_status job_cancel_w(store_t *st, const char *id)
{
    static const char SQL_Q[] = "UPDATE jobs SET state = 'canceled', cancel_requested = 1, "
                                "finished_at = ?2 WHERE id = ?1 AND state = 'queued'";
    static const char SQL_R[] = "UPDATE jobs SET cancel_requested = 1 "
                                "WHERE id = ?1 AND state = 'running'";
    db_query q = {SQL_Q, {DB_TEXT(id), DB_INT(store_now_ms())}, NULL, 0};
    store_status r = db_wrun(st, &q);
    if (r != STORE_OK || sqlite3_changes(st->w.db) > 0)
        return r;
    db_query qr = {SQL_R, {DB_TEXT(id)}, NULL, 0};
    r = db_wrun(st, &qr);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0)
        r = job_missing_or_conflict(st, id);
    return r;
}

store_status store_job_cancel(store_t *st, const char *id, store_job_t *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    return job_wend_get(st, job_cancel_w(st, id), id, out, NULL);
}

/* Runs one recovery UPDATE (?1 = now when the SQL has it) and adds the rows
 * it changed to *total. */
static store_status recover_step(store_t *st, const char *sql, int bind_now, int *total)
{
    db_query q = {.sql = sql};
    if (bind_now)
        q.args[0] = DB_INT(store_now_ms());
    store_status r = db_wrun(st, &q);
    *total += sqlite3_changes(st->w.db);
    return r;
}

store_status store_jobs_recover(store_t *st, int requeue, int *n)
{
    static const char SQL_CANCELED[] =
        "UPDATE jobs SET state = 'canceled', finished_at = ?1 "
        "WHERE state = 'running' AND cancel_requested = 1";
    static const char SQL_REQUEUE[] =
        "UPDATE jobs SET state = 'queued', started_at = NULL, phase = '', epoch = 0, "
        "loss = NULL, fraction = 0 WHERE state = 'running'";
    static const char SQL_FAIL[] =
        "UPDATE jobs SET state = 'failed', error = 'interrupted by restart', "
        "finished_at = ?1 WHERE state = 'running'";
    if (n)
        *n = 0;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    int total = 0;
    /* cancels first: a job whose cancel was asked for is not run again */
    r = recover_step(st, SQL_CANCELED, 1, &total);
    if (r == STORE_OK)
        r = recover_step(st, requeue ? SQL_REQUEUE : SQL_FAIL, !requeue, &total);
    r = db_wend(st, r);
    if (r == STORE_OK && n)
        *n = total;
    return r;
}

store_status store_job_counts(store_t *st, int64_t counts[STORE_JOB_STATES])
{
    static const char SQL[] = "SELECT state, count(*) FROM jobs GROUP BY state";
    if (!counts)
        return STORE_ERR_INVALID;
    for (int i = 0; i < STORE_JOB_STATES; i++)
        counts[i] = 0;
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        int rc;
        while ((rc = db_step(s)) == SQLITE_ROW) {
            store_job_state js;
            if (store_job_state_parse((const char *)sqlite3_column_text(s, 0), &js) == 0)
                counts[js] = sqlite3_column_int64(s, 1);
        }
        r = rc == SQLITE_DONE ? STORE_OK : db_map_rc(c->db, rc);
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}
