/*
 * events.c - the event log: one row per change of state a plant must answer
 * for (who, which request, what before and after), oldest first by seq. A
 * row is appended together with its outbox rows (sinks that want the kind),
 * in one transaction.
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <inttypes.h>

const char *const store_event_kinds[] = {
    "product.created", "product.changed", "product.deleted", "image.added",
    "image.removed",   "training.started", "training.finished", "model.activated",
    "threshold.set",   "key.created",     "key.revoked",     "sink.created",
    "sink.changed",    "sink.deleted",    "model.imported",  "model.deleted",
    "mask.set",        "mask.removed",    NULL,
};

int store_event_kind_index(const char *kind)
{
    for (int i = 0; kind != NULL && store_event_kinds[i] != NULL; i++)
        if (strcmp(kind, store_event_kinds[i]) == 0)
            return i;
    return -1;
}

#define EVENT_COLS "seq, at, kind, product, key_id, request_id, before_json, after_json"

static void event_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_event_t *e = elem;
    e->seq = sqlite3_column_int64(s, 0);
    e->at = sqlite3_column_int64(s, 1);
    db_col_copy(s, 2, e->kind, sizeof e->kind);
    db_col_copy(s, 3, e->product, sizeof e->product);
    db_col_copy(s, 4, e->key_id, sizeof e->key_id);
    db_col_copy(s, 5, e->request_id, sizeof e->request_id);
    e->before_json = db_col_dup(s, 6, NULL);
    e->after_json = db_col_dup(s, 7, NULL);
    snprintf(e->cursor, sizeof e->cursor, "%" PRId64, e->seq);
}

static void event_clear(void *elem)
{
    store_event_t *e = elem;
    free(e->before_json);
    free(e->after_json);
}

static const db_rowtype EVENT_ROWS = {sizeof(store_event_t), event_from_row, event_clear,
                                      offsetof(store_event_t, cursor), 24};

DB_DEFINE_CLEAR_FREE(store_event_t, store_event_clear, store_events_free, EVENT_ROWS)

static int event_valid(const store_event_t *e)
{
    if (store_event_kind_index(e->kind) < 0)
        return 0;
    if (e->product[0] && !store_valid_product_id(e->product))
        return 0;
    return !(e->key_id[0] && !store_valid_id(e->key_id));
}

store_status store_event_append_w(store_t *st, store_event_t *e)
{
    static const char SQL[] = "INSERT INTO events(at, kind, product, key_id, request_id, "
                              "before_json, after_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    if (!event_valid(e))
        return STORE_ERR_INVALID;
    if (e->at == 0)
        e->at = store_now_ms();
    db_query q = {SQL,
                  {DB_INT(e->at), DB_TEXT(e->kind), DB_TEXT(e->product[0] ? e->product : NULL),
                   DB_TEXT(e->key_id[0] ? e->key_id : NULL),
                   DB_TEXT(e->request_id[0] ? e->request_id : NULL), DB_TEXT(e->before_json),
                   DB_TEXT(e->after_json)},
                  NULL, 0};
    store_status r = db_wrun(st, &q);
    if (r != STORE_OK)
        return r;
    e->seq = sqlite3_last_insert_rowid(st->w.db);
    return store_outbox_event_w(st, e);
}

store_status store_event_row_w(store_t *st, store_event_t *e, const void *row)
{
    if (e == NULL)
        return STORE_OK;
    if (e->after_fn != NULL && row != NULL) {
        free(e->after_json); /* a retried call made one already */
        e->after_json = e->after_fn(row, e->after_ctx);
    }
    return store_event_append_w(st, e);
}

store_status store_wend_event(store_t *st, store_status r, const store_event_t *e)
{
    r = db_wend(st, r);
    if (e != NULL)
        store_outbox_notify(st); /* its outbox rows, if any sink wanted it */
    return r;
}

store_status store_remove_event_wend(store_t *st, store_status r, const db_query *q,
                                     const void *was, store_event_t *e)
{
    if (r == STORE_OK)
        r = db_wrun(st, q);
    if (r == STORE_OK && e != NULL && e->before_fn != NULL) {
        free(e->before_json); /* a retried call made one already */
        e->before_json = e->before_fn(was, e->after_ctx);
    }
    if (r == STORE_OK)
        r = store_event_row_w(st, e, NULL);
    return store_wend_event(st, r, e);
}

store_status store_event_append(store_t *st, store_event_t *e)
{
    if (!e || !event_valid(e))
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_wend(st, store_event_append_w(st, e));
    store_outbox_notify(st);
    return r;
}

store_status store_event_get(store_t *st, int64_t seq, store_event_t *out)
{
    static const char SQL[] = "SELECT " EVENT_COLS " FROM events WHERE seq = ?1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    db_query q = {SQL, {DB_INT(seq)}, NULL, 0};
    return db_get(st, &q, &EVENT_ROWS, out);
}

int store_valid_seq_cursor(const char *s)
{
    if (!s || !*s || strlen(s) > 18 || *s == '0')
        return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* One SQL text; the filters are bound (NULL: unused). The kind and product
 * indexes serve the common filters; seq orders. */
store_status store_event_list(store_t *st, const store_event_filter *f, store_event_t **out,
                              size_t *n, char next[STORE_CURSOR_LEN])
{
    static const char SQL[] =
        "SELECT " EVENT_COLS " FROM events WHERE (?1 IS NULL OR kind = ?1) AND "
        "(?2 IS NULL OR product = ?2) AND (?3 IS NULL OR at >= ?3) AND "
        "(?4 IS NULL OR at < ?4) AND seq > ?5 ORDER BY seq LIMIT ?6";
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    store_event_filter flt = {0};
    if (f)
        flt = *f;
    if ((flt.after && *flt.after && !store_valid_seq_cursor(flt.after)) ||
        (flt.product && !store_valid_product_id(flt.product)))
        return STORE_ERR_INVALID;
    int64_t after = (flt.after && *flt.after) ? (int64_t)strtoll(flt.after, NULL, 10) : 0;
    size_t limit = db_list_limit(flt.limit);
    db_query q = {SQL,
                  {DB_TEXT(flt.kind), DB_TEXT(flt.product),
                   flt.since > 0 ? DB_INT(flt.since) : DB_NULL,
                   flt.until > 0 ? DB_INT(flt.until) : DB_NULL, DB_INT(after), DB_INT(limit + 1)},
                  NULL, limit};
    return db_list(st, &q, &EVENT_ROWS, out, n, next);
}
