/*
 * store_int.h - private to server/store: the store handle, the SQL plumbing
 * every table file uses, and the few helpers they share. Nothing outside
 * server/store includes this (only include/store.h is public).
 *
 * Files of server/store
 *   db.c                status strings, last error, statement cache,
 *                       transactions, reader pool, busy retries
 *   open.c              store_open/close: directories, connections, pragmas,
 *                       migrations
 *   ids.c               clock, RFC 3339, identifier checks, random ids
 *   files.c             durable file writes, trees, the temp-file sweep
 *   products.c images.c models.c jobs.c keys.c
 *                       one table each
 *   inspections.c       the inspections table and its group commit
 *   inspection_files.c  map/heatmap files of inspections on disk
 *
 * Concurrency design: one read-write connection, used only while holding
 * st->wmu, so in-process writers are serialised and never see SQLITE_BUSY from
 * each other; write transactions start with BEGIN IMMEDIATE (the write lock is
 * taken up front, so no deadlocking read->write upgrade) and are retried on
 * SQLITE_BUSY for other processes (the CLI). Reads go through a small pool of
 * read-only connections, which WAL lets run next to the writer. Every
 * connection caches its prepared statements (keyed by the SQL string's
 * address) and statements are reset right after use so no reader keeps a
 * snapshot open and blocks checkpoints.
 *
 * Naming: db_* is the SQL plumbing (db.c), fs_* the file primitives
 * (files.c); other private functions shared between files start with store_
 * like the API but are declared only here.
 */
#ifndef CFA_STORE_INT_H
#define CFA_STORE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "store.h"

/* Generated from migrations/NNN_name.sql at build time (CMakeLists.txt). */
struct store_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct store_migration store_migrations[];
extern const int store_migrations_count;

#define STMT_CACHE 64     /* distinct SQL texts per connection; the store has
                             a fixed set of queries, so overflowing is a bug */
#define BLOB_LOCKS 16     /* stripes of the per-sha256 image file locks      */
#define BUSY_RETRIES 50   /* 10 ms retries of SQLITE_BUSY past busy_timeout   */
#define STORE_PATH_MAX 4096

/* One SQLite connection and its statement cache. */
typedef struct {
    sqlite3 *db;
    const char *keys[STMT_CACHE];  /* SQL text addresses            */
    sqlite3_stmt *stmts[STMT_CACHE];
    int n;
    int in_use;                    /* reader pool: taken by a thread */
} conn_t;

struct store {
    char *dir;                     /* data dir, no trailing '/'      */
    int busy_ms;

    conn_t w;                      /* the writer; only under wmu     */
    pthread_mutex_t wmu;

    conn_t *r;                     /* read-only pool of nr           */
    int nr;
    pthread_mutex_t rmu;
    pthread_cond_t rcv;

    pthread_mutex_t blob_mu[BLOB_LOCKS];

    /* Group commit of inspection rows (inspections.c): callers waiting for
     * the next group, and whether a group is being committed now. */
    pthread_mutex_t gmu;
    pthread_cond_t gcv;
    struct gc_waiter *ghead, **gtail;
    int gbusy;
    int64_t ggroups, grows;        /* committed so far (commit_stats) */

    /* The last write's outcome for /readyz (files.c, store_write_health). */
    pthread_mutex_t hmu;
    store_status health;
    char health_why[256];

    /* Result sinks (outbox.c): the sinks cached for matching, and the
     * senders' wake-up. */
    struct outbox_cache *ob;
};

/* ---- memory -------------------------------------------------------------
 * Out of memory aborts (server/base's xmalloc family): the daemon cannot serve
 * without it, and callers need no NULL path. */
#include "base_alloc.h"
#include "base_log.h"

/* Copies src (NULL = "") into dst[cap], truncating; always NUL-terminated. */
static inline void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ---- errors (db.c) ------------------------------------------------------ */

/* Records the detail store_last_error() returns on this thread. */
void store_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- SQL plumbing (db.c) ------------------------------------------------ */

/* Maps a SQLite result code to a status, recording the detail. */
store_status db_map_rc(sqlite3 *db, int rc);
/* A cached prepared statement (reset, bindings cleared). sql must have
 * static storage: its address is the cache key. NULL on error. */
sqlite3_stmt *db_prep(conn_t *c, const char *sql);
/* Steps a statement, retrying SQLITE_BUSY (beyond busy_timeout). */
int db_step(sqlite3_stmt *s);
/* Resets a statement after use so it holds no snapshot or locks. */
void db_done(sqlite3_stmt *s);
/* Steps a statement that returns no rows, maps the result, resets it. */
store_status db_run(conn_t *c, sqlite3_stmt *s);
/* sqlite3_exec without results, recording the error. */
int db_exec(sqlite3 *db, const char *sql);
/* db_exec retrying SQLITE_BUSY beyond the busy timeout. */
int db_exec_retry(sqlite3 *db, const char *sql);
/* Finalizes the cached statements and closes the connection. */
void db_conn_close(conn_t *c);

/* Write transaction: takes the writer mutex and BEGIN IMMEDIATE; on failure
 * the mutex is released again. */
store_status db_wbegin(store_t *st);
/* Rolls back and releases the writer (for early exits). */
void db_wrollback(store_t *st);
/* Ends a write transaction: commits if s is STORE_OK, else rolls back.
 * Returns the outcome (a failed COMMIT replaces STORE_OK). */
store_status db_wend(store_t *st, store_status s);

/* Takes a read connection from the pool (waits while all are busy). */
conn_t *db_racquire(store_t *st);
void db_rrelease(store_t *st, conn_t *c);

void db_bind_text_or_null(sqlite3_stmt *s, int i, const char *v);
/* NULL for NAN / inf. */
void db_bind_real_or_null(sqlite3_stmt *s, int i, double v);
/* Column text as a new heap string; SQL NULL gives a copy of dflt (NULL if
 * dflt is NULL). */
char *db_col_dup(sqlite3_stmt *s, int i, const char *dflt);
void db_col_copy(sqlite3_stmt *s, int i, char *dst, size_t cap);
double db_col_real_or_nan(sqlite3_stmt *s, int i);

/* 1 if the single-parameter query returns a row, 0 if not, -1 on error.
 * _w runs on the writer (inside a write transaction), _r on a reader. */
int db_exists_w(store_t *st, const char *sql, const char *arg);
int db_exists_r(store_t *st, const char *sql, const char *arg);
/* Runs a "SELECT count(*)" with an optional text parameter on a reader. */
store_status db_count(store_t *st, const char *sql, const char *arg,
                      int64_t *n /* OUT */);
/* A list call's limit: 0 -> STORE_LIST_DEFAULT, capped at STORE_LIST_MAX. */
size_t db_list_limit(size_t limit);
/* The cursor of job and key lists (ids.c): "<ms>.<id>" from and into its
 * parts; parse returns 0, or -1 when s is not one. */
void store_cursor_format(int64_t ms, const char *id, char out[STORE_CURSOR_LEN]);
int store_cursor_parse(const char *s, int64_t *ms /* OUT */, char id[STORE_ID_LEN] /* OUT */);

/* ---- statements as data (db.c) ------------------------------------------
 * Every table reads rows and runs writes the same way (prepare, bind, step,
 * convert, reset); these helpers hold that code once, so a table file only
 * says which SQL, which parameters and how one row becomes one struct. */

/* How rows become a table's struct. */
typedef struct {
    size_t size;                                    /* sizeof the struct     */
    /* fills one zeroed element from the current row */
    void (*from_row)(sqlite3_stmt *s, void *elem, void *ctx);
    void (*clear)(void *elem);                      /* frees what it owns    */
    size_t key_off;  /* offsetof the char[] field a list's next cursor is    */
    size_t key_cap;  /* ... and its size                                     */
} db_rowtype;

/* One bound parameter: text (NULL text binds SQL NULL), integer, real or
 * blob (copied when bound, like text). */
typedef struct {
    enum { DB_ARG_END, DB_ARG_TEXT, DB_ARG_INT, DB_ARG_REAL, DB_ARG_BLOB } kind;
    const void *p;   /* text or blob */
    int64_t i;       /* integer, or the blob's length */
    double d;
} db_arg;
#define DB_TEXT(v) ((db_arg){DB_ARG_TEXT, (v), 0, 0})
#define DB_INT(v) ((db_arg){DB_ARG_INT, NULL, (int64_t)(v), 0})
#define DB_REAL(v) ((db_arg){DB_ARG_REAL, NULL, 0, (v)})
#define DB_BLOB(v, len) ((db_arg){DB_ARG_BLOB, (v), (int64_t)(len), 0})
#define DB_NULL DB_TEXT(NULL)
#define DB_ARGS_MAX 16

/* A statement: the SQL (static storage: its address keys the statement cache),
 * its parameters ?1, ?2, ... in order (ended by the first DB_ARG_END), the
 * context handed to from_row, and for a paged list its page size: the SQL
 * then asks for page + 1 rows, the extra one only tells a next page exists. */
typedef struct {
    const char *sql;
    db_arg args[DB_ARGS_MAX];
    void *ctx;
    size_t page;                                    /* 0: not paged          */
} db_query;

/* The first row of q on connection c into out (t->from_row);
 * STORE_ERR_NOT_FOUND when there is none. */
store_status db_get_on(conn_t *c, const db_query *q, const db_rowtype *t, void *out);
/* db_get_on on a reader from the pool. */
store_status db_get(store_t *st, const db_query *q, const db_rowtype *t, void *out);
/* All rows of q on a reader, as a new array (never NULL on success) into
 * the caller's T *array, whose address is out, and its length into *n.
 * Paged (q->page > 0): at most page rows, and next (t->key_cap bytes, may be
 * NULL) receives the last row's key when a next page exists. On failure
 * nothing is handed over. */
store_status db_list(store_t *st, const db_query *q, const db_rowtype *t, void *out,
                     size_t *n, char *next);
/* Empties a list call's outputs first (out is the address of its T *array;
 * next may be NULL), so every failure leaves them empty. 0 when out or n is
 * NULL, which the call answers with STORE_ERR_INVALID. */
int db_list_reset(void *out, size_t *n, char *next);
/* Clears n elements of arr with t->clear and frees arr (NULL is fine): the
 * body of every store_*s_free. */
void db_free_rows(const db_rowtype *t, void *arr, size_t n);
/* Defines a table's public store_X_clear (NULL is fine; the struct is zeroed
 * after t->clear freed what it owns) and store_Xs_free from its db_rowtype,
 * which every table's pair only forwarded to. */
#define DB_DEFINE_CLEAR_FREE(T, clear_fn, free_fn, rows)                     \
    void clear_fn(T *x)                                                      \
    {                                                                        \
        if (!x)                                                              \
            return;                                                          \
        (rows).clear(x);                                                     \
        memset(x, 0, sizeof *x);                                             \
    }                                                                        \
    void free_fn(T *arr, size_t n) { db_free_rows(&(rows), arr, n); }
/* Column 0 of q's first row on the writer into dst[cap];
 * STORE_ERR_NOT_FOUND when there is no row. */
store_status db_get_text_w(store_t *st, const db_query *q, char *dst, size_t cap);

/* Binds q's parameters to its SQL on the writer and runs it (a statement
 * without rows), inside the caller's write transaction. */
store_status db_wrun(store_t *st, const db_query *q);
/* db_wrun, and STORE_ERR_NOT_FOUND when q changed no row (an UPDATE or a
 * DELETE of a missing row). */
store_status db_wrun_changing(store_t *st, const db_query *q);
/* db_wrun in a write transaction of its own. With must_change, changing no
 * row is STORE_ERR_NOT_FOUND (an UPDATE of a missing row). */
store_status db_write(store_t *st, const db_query *q, int must_change);

/* Begins a write transaction and prepares sql on the writer. NULL on
 * failure, with *r the status and the writer released again. */
sqlite3_stmt *db_wbegin_prep(store_t *st, const char *sql, store_status *r);

/* ---- files (files.c) ---------------------------------------------------- */

/* mkdir -p with mode for the directories it creates; 0 or -1 (errno). */
int fs_mkdir_p(const char *path, mode_t mode);
/* Writes data to final_path durably: temp file in dir (created if missing),
 * fsync, rename over the final name, fsync dir. STORE_ERR_FULL on ENOSPC. */
store_status fs_write_durable(const char *dir, const char *final_path,
                              const void *data, size_t len);
/* The same without the fsyncs (base_file.h, file_write_atomic): durable
 * only once fs_sync ran after it. */
store_status fs_write_atomic(const char *dir, const char *final_path,
                             const void *data, size_t len);
/* syncfs of the file system that holds dir; STORE_ERR_FULL on ENOSPC. */
store_status fs_sync(const char *dir);
/* Removes path and everything below it, not following links. */
void fs_rm_tree(const char *path);

/* ---- ids (ids.c) -------------------------------------------------------- */

/* n bytes from getrandom() (or /dev/urandom); 0 or -1. */
int store_random_bytes(void *buf, size_t n);

/* ---- shared between table files ---------------------------------------- */

/* Existence checks, 1 / 0 / -1 on error like db_exists_*. products.c */
int store_product_exists_w(store_t *st, const char *id);
int store_product_exists_r(store_t *st, const char *id);
/* The check of a call about one product: STORE_ERR_INVALID for a bad id,
 * STORE_ERR_NOT_FOUND for an unknown one, STORE_ERR_DB if it cannot tell. */
store_status store_product_check_r(store_t *st, const char *id);
/* Whether product may get a job or be deleted, in a write transaction:
 * STORE_OK, STORE_ERR_NOT_FOUND (no such product), STORE_ERR_CONFLICT (it
 * has a queued or running job) or STORE_ERR_DB. jobs.c */
store_status store_product_idle_w(store_t *st, const char *product);
/* store_job_finish's UPDATE inside the caller's write transaction (so
 * store_model_insert finishes the job atomically with the insert). jobs.c */
store_status store_job_finish_w(store_t *st, const char *id, store_job_state state,
                                const char *error, int64_t model_version);
/* Records the outcome of a write for store_write_health (files.c): a
 * failure of the disk or the database marks the store unwritable, STORE_OK
 * clears it (a full disk only when shows_space: a file was written). why
 * (may be NULL) is the detail. */
void store_note_write(store_t *st, store_status s, const char *why, int shows_space);

/* ---- event log and outbox (events.c, outbox.c, sinks.c) ---------------- */

/* The outbox's cache of sinks and the senders' wake-up: made by store_open,
 * freed by store_close. */
void store_outbox_init(store_t *st);
void store_outbox_free(store_t *st);
/* One outbox row per sink that wants this inspection, inside the caller's
 * write transaction (the audit row's). */
store_status store_outbox_inspection_w(store_t *st, const store_inspection_t *in);
/* The same for an event-log row (e->seq set). */
store_status store_outbox_event_w(store_t *st, const store_event_t *e);
/* Marks the cache stale after a change of the sinks (inside that change's
 * write transaction: the next match reloads it). */
void store_outbox_sinks_changed_w(store_t *st);
/* Appends e inside the caller's write transaction (seq and at set). */
store_status store_event_append_w(store_t *st, store_event_t *e);
/* The change's own event: e (NULL: none) appended inside the change's write
 * transaction, its after_json made first by e->after_fn from row when both
 * are set. A failure here rolls the change back with it. */
store_status store_event_row_w(store_t *st, store_event_t *e, const void *row);
/* db_wend for a change that appended e (may be NULL), then the senders'
 * wake-up for its outbox rows. */
store_status store_wend_event(store_t *st, store_status r, const store_event_t *e);
/* The end of a removal inside its write transaction (r its status so far):
 * runs q, makes e's before_json from was (the row as it was) by
 * e->before_fn, appends e and ends the transaction (store_wend_event). */
store_status store_remove_event_wend(store_t *st, store_status r, const db_query *q,
                                     const void *was, store_event_t *e);
/* The product as the transaction now has it, on the writer. products.c */
store_status store_product_get_w(store_t *st, const char *id, store_product_t *out);
/* e (may be NULL) appended with the product as the transaction now has it
 * as its row. products.c */
store_status store_event_product_w(store_t *st, store_event_t *e, const char *id);
/* ---- idempotency (idempotency.c) ---------------------------------------- */
/* Inserts an Idempotency-Key entry with the writer, inside the caller's
 * transaction (an inspection's, with its audit row); STORE_ERR_EXISTS when a
 * live entry holds the key. */
store_status store_idem_insert_w(store_t *st, const store_idem_t *e);

#endif /* CFA_STORE_INT_H */
