/*
 * db.c - the store's SQL plumbing: status strings and the per-thread last
 * error, result-code mapping, the per-connection statement cache, busy
 * retries, write transactions on the one writer and the reader pool.
 * The concurrency design is described in store_int.h.
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <unistd.h>

/* ---------------------------------------------------------------- status */

static const struct {
    const char *code; /* snake_case, for JSON error bodies and metrics */
    const char *msg;  /* for people                                    */
} status_info[] = {
    [STORE_OK] = {"ok", "ok"},
    [STORE_ERR_NOT_FOUND] = {"not_found", "not found"},
    [STORE_ERR_EXISTS] = {"exists", "already exists"},
    [STORE_ERR_CONFLICT] = {"conflict", "conflicts with the current state"},
    [STORE_ERR_INVALID] = {"invalid", "invalid argument"},
    [STORE_ERR_IO] = {"io_error", "file input/output error"},
    [STORE_ERR_DB] = {"db_error", "database error"},
    [STORE_ERR_FULL] = {"full", "disk or database full"},
    [STORE_ERR_NOMEM] = {"out_of_memory", "out of memory"},
    [STORE_ERR_BUSY] = {"busy", "database busy (retries exhausted)"},
    [STORE_ERR_VERSION] = {"schema_too_new", "database schema is newer than this binary"},
    [STORE_ERR_CANCELED] = {"canceled", "job cancel was requested"},
};
#define STATUS_N (sizeof status_info / sizeof status_info[0])

_Static_assert(STATUS_N == STORE_ERR_CANCELED + 1,
               "status_info needs one row per store_status (append both together)");

const char *store_strerror(store_status s)
{
    if ((unsigned)s >= STATUS_N)
        return "unknown status";
    return status_info[s].msg;
}

const char *store_status_code(store_status s)
{
    if ((unsigned)s >= STATUS_N)
        return "unknown";
    return status_info[s].code;
}

static _Thread_local char last_err[256];

void store_set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof last_err, fmt, ap);
    va_end(ap);
}

const char *store_last_error(void) { return last_err; }

/* ------------------------------------------------------------ statements */

store_status db_map_rc(sqlite3 *db, int rc)
{
    if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW)
        return STORE_OK;
    /* SQLite reports a full disk met while opening or growing a file as an
     * I/O or open error, with the errno behind it; a write that found no
     * space is SQLITE_FULL with the errno cleared (the unix VFS), and the
     * store sets no max_page_count, so SQLITE_FULL is ENOSPC */
    int prim = rc & 0xff;
    int sys = db && (prim == SQLITE_IOERR || prim == SQLITE_CANTOPEN)
                  ? sqlite3_system_errno(db)
                  : 0;
    if (prim == SQLITE_FULL)
        sys = ENOSPC;
    if (sys == ENOSPC || sys == EDQUOT) {
        store_set_error("sqlite: %s (%d): %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc,
                        strerror(sys));
        return STORE_ERR_FULL;
    }
    store_set_error("sqlite: %s (%d)", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return STORE_ERR_EXISTS;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return STORE_ERR_NOT_FOUND;
        return STORE_ERR_INVALID;
    case SQLITE_FULL:
        return STORE_ERR_FULL;
    case SQLITE_NOMEM:
        return STORE_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_ERR_BUSY;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return STORE_ERR_INVALID;
    default:
        return STORE_ERR_DB;
    }
}

sqlite3_stmt *db_prep(conn_t *c, const char *sql)
{
    for (int i = 0; i < c->n; i++)
        if (c->keys[i] == sql)
            return c->stmts[i];
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        db_map_rc(c->db, rc);
        return NULL;
    }
    if (c->n >= STMT_CACHE) {
        /* The store has a fixed set of queries: raise STMT_CACHE. */
        log_error("store", "statement cache full");
        abort();
    }
    c->keys[c->n] = sql;
    c->stmts[c->n] = s;
    c->n++;
    return s;
}

void db_done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

static int is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

int db_step(sqlite3_stmt *s)
{
    int rc;
    for (int i = 0; i < BUSY_RETRIES; i++) {
        rc = sqlite3_step(s);
        if (!is_busy(rc))
            return rc;
        sqlite3_reset(s);
        usleep(10000);
    }
    return rc;
}

store_status db_run(conn_t *c, sqlite3_stmt *s)
{
    int rc = db_step(s);
    store_status r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? STORE_OK : db_map_rc(c->db, rc);
    db_done(s);
    return r;
}

int db_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        store_set_error("sqlite: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

int db_exec_retry(sqlite3 *db, const char *sql)
{
    int rc;
    for (int i = 0; i < BUSY_RETRIES; i++) {
        rc = db_exec(db, sql);
        if (!is_busy(rc))
            return rc;
        usleep(10000);
    }
    return rc;
}

void db_conn_close(conn_t *c)
{
    for (int i = 0; i < c->n; i++)
        sqlite3_finalize(c->stmts[i]);
    c->n = 0;
    if (c->db)
        sqlite3_close_v2(c->db);
    c->db = NULL;
}

/* ---------------------------------------------------------- transactions */

store_status db_wbegin(store_t *st)
{
    pthread_mutex_lock(&st->wmu);
    int rc = db_exec_retry(st->w.db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK) {
        store_status s = db_map_rc(st->w.db, rc);
        pthread_mutex_unlock(&st->wmu);
        return s;
    }
    return STORE_OK;
}

static store_status wcommit(store_t *st)
{
    int rc = db_exec_retry(st->w.db, "COMMIT");
    store_status s = STORE_OK;
    if (rc != SQLITE_OK) {
        s = db_map_rc(st->w.db, rc);
        if (!sqlite3_get_autocommit(st->w.db))
            db_exec(st->w.db, "ROLLBACK");
    }
    pthread_mutex_unlock(&st->wmu);
    return s;
}

void db_wrollback(store_t *st)
{
    if (!sqlite3_get_autocommit(st->w.db))
        db_exec(st->w.db, "ROLLBACK");
    pthread_mutex_unlock(&st->wmu);
}

store_status db_wend(store_t *st, store_status s)
{
    if (s == STORE_OK)
        return wcommit(st);
    db_wrollback(st);
    return s;
}

/* ----------------------------------------------------------- reader pool */

conn_t *db_racquire(store_t *st)
{
    pthread_mutex_lock(&st->rmu);
    for (;;) {
        for (int i = 0; i < st->nr; i++) {
            if (!st->r[i].in_use) {
                st->r[i].in_use = 1;
                pthread_mutex_unlock(&st->rmu);
                return &st->r[i];
            }
        }
        pthread_cond_wait(&st->rcv, &st->rmu);
    }
}

void db_rrelease(store_t *st, conn_t *c)
{
    pthread_mutex_lock(&st->rmu);
    c->in_use = 0;
    pthread_cond_signal(&st->rcv);
    pthread_mutex_unlock(&st->rmu);
}

/* ------------------------------------------------------ binds and columns */

void db_bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, i);
}

void db_bind_real_or_null(sqlite3_stmt *s, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

char *db_col_dup(sqlite3_stmt *s, int i, const char *dflt)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    if (!t)
        return dflt ? xstrdup(dflt) : NULL;
    return xstrdup((const char *)t);
}

void db_col_copy(sqlite3_stmt *s, int i, char *dst, size_t cap)
{
    copy_str(dst, cap, (const char *)sqlite3_column_text(s, i));
}

double db_col_real_or_nan(sqlite3_stmt *s, int i)
{
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return NAN;
    return sqlite3_column_double(s, i);
}

/* ------------------------------------------------------- common queries */

static int exists_on(conn_t *c, const char *sql, const char *arg)
{
    sqlite3_stmt *s = db_prep(c, sql);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
    int rc = db_step(s);
    int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
    if (r < 0)
        db_map_rc(c->db, rc);
    db_done(s);
    return r;
}

int db_exists_w(store_t *st, const char *sql, const char *arg)
{
    return exists_on(&st->w, sql, arg);
}

int db_exists_r(store_t *st, const char *sql, const char *arg)
{
    conn_t *c = db_racquire(st);
    int r = exists_on(c, sql, arg);
    db_rrelease(st, c);
    return r;
}

store_status db_count(store_t *st, const char *sql, const char *arg, int64_t *n)
{
    if (!n)
        return STORE_ERR_INVALID;
    *n = 0;
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, sql);
    store_status r = STORE_ERR_DB;
    if (s) {
        if (arg)
            sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
        int rc = db_step(s);
        if (rc == SQLITE_ROW) {
            *n = sqlite3_column_int64(s, 0);
            r = STORE_OK;
        } else {
            r = db_map_rc(c->db, rc);
        }
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}

size_t db_list_limit(size_t limit)
{
    if (limit == 0)
        return STORE_LIST_DEFAULT;
    return limit > STORE_LIST_MAX ? STORE_LIST_MAX : limit;
}

/* ------------------------------------------------------------- row reads */

static void bind_args(sqlite3_stmt *s, const db_arg *a)
{
    for (int i = 0; i < DB_ARGS_MAX && a[i].kind != DB_ARG_END; i++) {
        if (a[i].kind == DB_ARG_INT)
            sqlite3_bind_int64(s, i + 1, a[i].i);
        else if (a[i].kind == DB_ARG_REAL)
            sqlite3_bind_double(s, i + 1, a[i].d);
        else if (a[i].kind == DB_ARG_BLOB)
            sqlite3_bind_blob64(s, i + 1, a[i].p, (sqlite3_uint64)a[i].i, SQLITE_TRANSIENT);
        else
            db_bind_text_or_null(s, i + 1, a[i].p);
    }
}

store_status db_get_on(conn_t *c, const db_query *q, const db_rowtype *t, void *out)
{
    sqlite3_stmt *s = db_prep(c, q->sql);
    if (!s)
        return STORE_ERR_DB;
    bind_args(s, q->args);
    int rc = db_step(s);
    store_status r = STORE_OK;
    if (rc == SQLITE_ROW) {
        memset(out, 0, t->size);
        t->from_row(s, out, q->ctx);
    }
    else
        r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : db_map_rc(c->db, rc);
    db_done(s);
    return r;
}

store_status db_get(store_t *st, const db_query *q, const db_rowtype *t, void *out)
{
    conn_t *c = db_racquire(st);
    store_status r = db_get_on(c, q, t, out);
    db_rrelease(st, c);
    return r;
}

int db_list_reset(void *out, size_t *n, char *next)
{
    if (!out || !n)
        return 0;
    void *none = NULL;
    memcpy(out, &none, sizeof none); /* *out = NULL, see db_list */
    *n = 0;
    if (next)
        next[0] = '\0';
    return 1;
}

/* db_get_text_w's row: the text of column 0, cut to the size in ctx. */
static void text_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    db_col_copy(s, 0, elem, *(const size_t *)ctx);
}

static void no_clear(void *elem) { (void)elem; }

store_status db_get_text_w(store_t *st, const db_query *q, char *dst, size_t cap)
{
    const db_rowtype t = {cap, text_from_row, no_clear, 0, 0};
    db_query qc = *q;
    qc.ctx = &cap;
    return db_get_on(&st->w, &qc, &t, dst);
}

void db_free_rows(const db_rowtype *t, void *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        t->clear((char *)arr + i * t->size);
    free(arr);
}

/* Steps s to its end, each row into the next element of a doubling array. */
static store_status collect(conn_t *c, sqlite3_stmt *s, const db_query *q,
                            const db_rowtype *t, char **arr, size_t *n)
{
    size_t cap = 16, k = 0;
    char *a = xcalloc(cap, t->size);
    int rc;
    while ((rc = db_step(s)) == SQLITE_ROW) {
        if (k == cap) {
            cap *= 2;
            a = xrealloc(a, cap * t->size);
        }
        memset(a + k * t->size, 0, t->size); /* xrealloc'd space is not */
        t->from_row(s, a + k++ * t->size, q->ctx);
    }
    if (rc != SQLITE_DONE) {
        db_free_rows(t, a, k);
        return db_map_rc(c->db, rc);
    }
    *arr = a;
    *n = k;
    return STORE_OK;
}

/* Drops a page's extra row; its presence means a next page starts after
 * the last row kept, whose key becomes the cursor. */
static void cut_page(const db_rowtype *t, size_t page, char *a, size_t *n, char *next)
{
    if (page == 0 || *n <= page)
        return;
    for (size_t i = page; i < *n; i++)
        t->clear(a + i * t->size);
    *n = page;
    if (next)
        copy_str(next, t->key_cap, a + (page - 1) * t->size + t->key_off);
}

store_status db_list(store_t *st, const db_query *q, const db_rowtype *t, void *out,
                     size_t *n, char *next)
{
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, q->sql);
    store_status r = STORE_ERR_DB;
    if (s) {
        bind_args(s, q->args);
        char *a = NULL;
        size_t k = 0;
        r = collect(c, s, q, t, &a, &k);
        if (r == STORE_OK) {
            cut_page(t, q->page, a, &k, next);
            /* out is a T **; object pointers share one representation on
             * every platform the daemon builds for */
            memcpy(out, &a, sizeof a);
            *n = k;
        }
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}

sqlite3_stmt *db_wbegin_prep(store_t *st, const char *sql, store_status *r)
{
    *r = db_wbegin(st);
    if (*r != STORE_OK)
        return NULL;
    sqlite3_stmt *s = db_prep(&st->w, sql);
    if (!s) {
        db_wrollback(st);
        *r = STORE_ERR_DB;
    }
    return s;
}

store_status db_wrun(store_t *st, const db_query *q)
{
    sqlite3_stmt *s = db_prep(&st->w, q->sql);
    if (!s)
        return STORE_ERR_DB;
    bind_args(s, q->args);
    return db_run(&st->w, s);
}

store_status db_wrun_changing(store_t *st, const db_query *q)
{
    store_status r = db_wrun(st, q);
    return r == STORE_OK && sqlite3_changes(st->w.db) == 0 ? STORE_ERR_NOT_FOUND : r;
}

store_status db_write(store_t *st, const db_query *q, int must_change)
{
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = must_change ? db_wrun_changing(st, q) : db_wrun(st, q);
    return db_wend(st, r);
}
