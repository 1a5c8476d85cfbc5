/*
 * open.c - opening and closing a store: the data directories, the writer and
 * the reader pool with their pragmas and the embedded migrations.
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <errno.h>

/* ------------------------------------------------------------ migrations */

int store_schema_latest(void)
{
    int v = 0;
    for (int i = 0; i < store_migrations_count; i++)
        if (store_migrations[i].version > v)
            v = store_migrations[i].version;
    return v;
}

/* PRAGMA user_version of db, or -1 on error. */
static int user_version(sqlite3 *db)
{
    sqlite3_stmt *s = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Applies one migration in its own transaction, unless another process got
 * there first. */
static store_status apply_migration(sqlite3 *db, const struct store_migration *m)
{
    int rc = db_exec_retry(db, "BEGIN IMMEDIATE");
    if (rc != SQLITE_OK)
        return db_map_rc(db, rc);
    /* Re-check under the write lock: another process may have migrated. */
    if (user_version(db) >= m->version) {
        db_exec(db, "COMMIT");
        return STORE_OK;
    }
    rc = db_exec(db, m->sql);
    if (rc == SQLITE_OK) {
        /* PRAGMA takes no bound parameters; the value is our own integer. */
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", m->version);
        rc = db_exec(db, pragma);
    }
    if (rc != SQLITE_OK) {
        char detail[256];
        snprintf(detail, sizeof detail, "%s", store_last_error());
        db_exec(db, "ROLLBACK");
        store_set_error("migration %s failed: %s", m->name, detail);
        return STORE_ERR_DB;
    }
    rc = db_exec_retry(db, "COMMIT");
    if (rc != SQLITE_OK) {
        db_exec(db, "ROLLBACK");
        return db_map_rc(db, rc);
    }
    return STORE_OK;
}

static store_status migrate(sqlite3 *db)
{
    /* The generated table is sorted by file name; require 1..N without gaps
     * so a misnumbered file fails loudly at start-up instead of being skipped. */
    for (int i = 0; i < store_migrations_count; i++) {
        if (store_migrations[i].version != i + 1) {
            store_set_error("migration %s: expected number %d", store_migrations[i].name,
                            i + 1);
            return STORE_ERR_VERSION;
        }
    }
    int have = user_version(db);
    if (have < 0)
        return db_map_rc(db, sqlite3_errcode(db));
    if (have > store_schema_latest()) {
        store_set_error("database schema version %d is newer than this binary (%d)", have,
                        store_schema_latest());
        return STORE_ERR_VERSION;
    }
    store_status r = STORE_OK;
    for (int i = have; i < store_migrations_count && r == STORE_OK; i++)
        r = apply_migration(db, &store_migrations[i]);
    return r;
}

/* ----------------------------------------------------------- connections */

static store_status open_conn(store_t *st, const char *path, int readonly, int sync_full,
                              conn_t *c)
{
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    memset(c, 0, sizeof *c);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        store_status s = db_map_rc(c->db, rc);
        db_conn_close(c);
        return s == STORE_OK ? STORE_ERR_DB : s;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, st->busy_ms);
    if (db_exec(c->db, "PRAGMA foreign_keys = ON") != SQLITE_OK)
        goto fail;
    /* WAL is a property of the database file: the writer sets it once */
    if (!readonly && db_exec_retry(c->db, "PRAGMA journal_mode = WAL") != SQLITE_OK)
        goto fail;
    if (db_exec(c->db, sync_full ? "PRAGMA synchronous = FULL"
                                 : "PRAGMA synchronous = NORMAL") != SQLITE_OK)
        goto fail;
    return STORE_OK;
fail:;
    store_status s = db_map_rc(c->db, sqlite3_errcode(c->db));
    db_conn_close(c);
    return s == STORE_OK ? STORE_ERR_DB : s;
}

/* The writer (migrating the database to this binary's schema), then the
 * read-only pool: readers open only a database that is fully migrated. */
static store_status open_connections(store_t *st, int readers, int sync_full)
{
    char path[STORE_PATH_MAX];
    snprintf(path, sizeof path, "%s/cfa.db", st->dir);
    store_status s = open_conn(st, path, 0, sync_full, &st->w);
    if (s == STORE_OK)
        s = migrate(st->w.db);
    if (s != STORE_OK)
        return s;
    st->r = xcalloc((size_t)readers, sizeof *st->r);
    for (int i = 0; i < readers && s == STORE_OK; i++) {
        s = open_conn(st, path, 1, sync_full, &st->r[i]);
        if (s == STORE_OK)
            st->nr++;
    }
    return s;
}

/* ------------------------------------------------------------ open/close */

store_options store_default_options(void)
{
    store_options o;
    memset(&o, 0, sizeof o);
    o.read_connections = 4;
    o.busy_timeout_ms = 5000;
    o.sync_full = 1;
    return o;
}

/* opts (NULL = defaults) with zero / out-of-range fields replaced. */
static store_options effective_options(const store_options *opts)
{
    store_options o = opts ? *opts : store_default_options();
    if (o.read_connections <= 0)
        o.read_connections = 4;
    if (o.read_connections > 64)
        o.read_connections = 64;
    if (o.busy_timeout_ms <= 0)
        o.busy_timeout_ms = 5000;
    return o;
}

static store_status make_dirs(const char *data_dir)
{
    static const char *const subs[] = {"", "/images", "/inspections"};
    char path[STORE_PATH_MAX];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(path, sizeof path, "%s%s", data_dir, subs[i]);
        if (fs_mkdir_p(path, 0700) != 0) {
            int e = errno;
            store_set_error("mkdir %s: %s", path, strerror(e));
            return e == ENOSPC ? STORE_ERR_FULL : STORE_ERR_IO;
        }
    }
    return STORE_OK;
}

/* A handle with its locks made and no connection yet. */
static store_t *store_alloc(const char *data_dir, const store_options *o)
{
    store_t *st = xcalloc(1, sizeof *st);
    st->dir = xstrdup(data_dir);
    size_t dl = strlen(st->dir);
    while (dl > 1 && st->dir[dl - 1] == '/')
        st->dir[--dl] = '\0';
    st->busy_ms = o->busy_timeout_ms;
    pthread_mutex_init(&st->wmu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_cond_init(&st->rcv, NULL);
    pthread_mutex_init(&st->gmu, NULL);
    pthread_cond_init(&st->gcv, NULL);
    st->gtail = &st->ghead;
    pthread_mutex_init(&st->hmu, NULL);
    for (int i = 0; i < BLOB_LOCKS; i++)
        pthread_mutex_init(&st->blob_mu[i], NULL);
    store_outbox_init(st);
    return st;
}

store_status store_open(const char *data_dir, const store_options *opts, store_t **out)
{
    if (!out)
        return STORE_ERR_INVALID;
    *out = NULL;
    /* leaves room for the longest path built below it */
    if (!data_dir || !*data_dir || strlen(data_dir) > 3000)
        return STORE_ERR_INVALID;
    store_options o = effective_options(opts);
    store_status s = make_dirs(data_dir);
    if (s != STORE_OK)
        return s;
    store_t *st = store_alloc(data_dir, &o);
    s = open_connections(st, o.read_connections, o.sync_full);
    if (s != STORE_OK) {
        store_close(st);
        return s;
    }
    *out = st;
    return STORE_OK;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->nr; i++)
        db_conn_close(&st->r[i]);
    free(st->r);
    if (st->w.db) {
        /* Leave a compact WAL behind for backups and the next start. */
        sqlite3_wal_checkpoint_v2(st->w.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    db_conn_close(&st->w);
    pthread_mutex_destroy(&st->wmu);
    pthread_mutex_destroy(&st->rmu);
    pthread_cond_destroy(&st->rcv);
    pthread_mutex_destroy(&st->gmu);
    pthread_cond_destroy(&st->gcv);
    pthread_mutex_destroy(&st->hmu);
    for (int i = 0; i < BLOB_LOCKS; i++)
        pthread_mutex_destroy(&st->blob_mu[i]);
    store_outbox_free(st);
    free(st->dir);
    free(st);
}

/* ------------------------------------------------------------ accessors */

int store_schema_version(store_t *st)
{
    conn_t *c = db_racquire(st);
    int v = user_version(c->db);
    db_rrelease(st, c);
    return v;
}

const char *store_data_dir(store_t *st) { return st->dir; }

store_status store_ping(store_t *st)
{
    static const char SQL[] = "SELECT 1";
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        int rc = db_step(s);
        r = rc == SQLITE_ROW ? STORE_OK : db_map_rc(c->db, rc);
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}
