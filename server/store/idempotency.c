/*
 * idempotency.c - the idempotency table: the first answer to a request sent
 * with an Idempotency-Key, per API key and route (migrations/005_line.sql).
 *
 * An inspection's entry goes into the transaction of its audit row
 * (store_idem_insert_w, called by inspections.c), so a 200 that reached the
 * camera is replayed even after a kill -9; other routes record theirs after
 * their write (store_idem_put).
 */
#include "store_int.h"

#define IDEM_COLS "key_id, route, idem_key, request_hash, status, ref, response, created_at"

static void idem_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_idem_t *e = elem;
    db_col_copy(s, 0, e->key_id, sizeof e->key_id);
    db_col_copy(s, 1, e->route, sizeof e->route);
    db_col_copy(s, 2, e->key, sizeof e->key);
    db_col_copy(s, 3, e->hash, sizeof e->hash);
    e->status = sqlite3_column_int(s, 4);
    db_col_copy(s, 5, e->ref, sizeof e->ref);
    e->response = db_col_dup(s, 6, NULL);
    e->created_at = sqlite3_column_int64(s, 7);
}

static void idem_clear(void *elem)
{
    store_idem_t *e = elem;
    free(e->response);
    e->response = NULL;
}

static const db_rowtype IDEM_ROWS = {sizeof(store_idem_t), idem_from_row, idem_clear,
                                     offsetof(store_idem_t, key), STORE_IDEM_KEY_MAX};

void store_idem_clear(store_idem_t *e)
{
    if (e != NULL)
        idem_clear(e);
}

static int idem_valid(const store_idem_t *e)
{
    size_t kl = strlen(e->key);
    return kl >= 1 && kl < STORE_IDEM_KEY_MAX && e->route[0] != '\0' && strlen(e->hash) == 64;
}

store_status store_idem_get(store_t *st, const char *key_id, const char *route,
                            const char *key, int64_t not_before, store_idem_t *out)
{
    static const char SQL[] = "SELECT " IDEM_COLS " FROM idempotency WHERE key_id = ?1 AND "
                              "route = ?2 AND idem_key = ?3 AND created_at >= ?4";
    if (out == NULL || route == NULL || key == NULL)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    db_query q = {SQL,
                  {DB_TEXT(key_id ? key_id : ""), DB_TEXT(route), DB_TEXT(key), DB_INT(not_before)},
                  NULL, 0};
    return db_get(st, &q, &IDEM_ROWS, out);
}

/* Inserts e with the writer, inside the caller's transaction. An expired
 * entry of the same key is replaced; a live one makes STORE_ERR_EXISTS. */
store_status store_idem_insert_w(store_t *st, const store_idem_t *e)
{
    static const char SQL[] =
        "INSERT INTO idempotency(" IDEM_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
        "ON CONFLICT(key_id, route, idem_key) DO UPDATE SET request_hash = excluded.request_hash, "
        "status = excluded.status, ref = excluded.ref, response = excluded.response, "
        "created_at = excluded.created_at WHERE idempotency.created_at < ?9";
    if (!idem_valid(e))
        return STORE_ERR_INVALID;
    int64_t now = e->created_at > 0 ? e->created_at : store_now_ms();
    db_query q = {SQL,
                  {DB_TEXT(e->key_id), DB_TEXT(e->route), DB_TEXT(e->key), DB_TEXT(e->hash),
                   DB_INT(e->status), DB_TEXT(e->ref[0] ? e->ref : NULL), DB_TEXT(e->response),
                   DB_INT(now), DB_INT(e->expire_before)},
                  NULL, 0};
    store_status r = db_wrun(st, &q);
    if (r == STORE_OK && sqlite3_changes(st->w.db) == 0) {
        store_set_error("idempotency key %s is held by a live entry", e->key);
        return STORE_ERR_EXISTS;
    }
    return r;
}

store_status store_idem_put(store_t *st, const store_idem_t *e)
{
    if (e == NULL)
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    return db_wend(st, store_idem_insert_w(st, e));
}

store_status store_idem_sweep(store_t *st, int64_t before_ms, int64_t *removed)
{
    static const char SQL[] = "DELETE FROM idempotency WHERE created_at < ?1";
    db_query q = {SQL, {DB_INT(before_ms)}, NULL, 0};
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_wrun(st, &q);
    if (removed != NULL)
        *removed = r == STORE_OK ? sqlite3_changes(st->w.db) : 0;
    return db_wend(st, r);
}
