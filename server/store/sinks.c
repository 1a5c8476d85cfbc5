/*
 * sinks.c - the sinks table: where deliveries go (server/sinks sends them).
 * A change of a sink appends its event-log row in the same transaction and
 * marks the outbox's cache of sinks stale.
 */
#define _GNU_SOURCE
#include "store_int.h"

/* The figures come from the outbox in the same statement, so a sink's
 * queued/dead/oldest agree with each other. */
#define SINK_COLS                                                                         \
    "s.id, s.kind, s.name, s.product, s.events, s.config_json, s.secret IS NOT NULL, "   \
    "s.enabled, s.delivered, s.failed, s.created_at, s.updated_at, "                      \
    "(SELECT count(*) FROM outbox o WHERE o.sink_id = s.id AND o.state = 'queued'), "     \
    "(SELECT count(*) FROM outbox o WHERE o.sink_id = s.id AND o.state = 'dead'), "       \
    "(SELECT min(created_at) FROM outbox o WHERE o.sink_id = s.id AND o.state = 'queued'), " \
    "s.secret"

static void sink_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    int with_secret = ctx != NULL;
    store_sink_t *k = elem;
    db_col_copy(s, 0, k->id, sizeof k->id);
    db_col_copy(s, 1, k->kind, sizeof k->kind);
    k->name = db_col_dup(s, 2, "");
    db_col_copy(s, 3, k->product, sizeof k->product);
    k->events = db_col_dup(s, 4, "");
    k->config_json = db_col_dup(s, 5, "{}");
    k->has_secret = sqlite3_column_int(s, 6);
    k->enabled = sqlite3_column_int(s, 7);
    k->delivered = sqlite3_column_int64(s, 8);
    k->failed = sqlite3_column_int64(s, 9);
    k->created_at = sqlite3_column_int64(s, 10);
    k->updated_at = sqlite3_column_int64(s, 11);
    k->queued = sqlite3_column_int64(s, 12);
    k->dead = sqlite3_column_int64(s, 13);
    k->oldest_at = sqlite3_column_int64(s, 14);
    k->secret = with_secret ? db_col_dup(s, 15, NULL) : NULL;
}

static void sink_clear(void *elem)
{
    store_sink_t *k = elem;
    free(k->name);
    free(k->events);
    free(k->config_json);
    if (k->secret)
        memset(k->secret, 0, strlen(k->secret));
    free(k->secret);
}

static const db_rowtype SINK_ROWS = {sizeof(store_sink_t), sink_from_row, sink_clear,
                                     offsetof(store_sink_t, id), STORE_ID_LEN};

DB_DEFINE_CLEAR_FREE(store_sink_t, store_sink_clear, store_sinks_free, SINK_ROWS)

static int sink_valid(const store_sink_t *s)
{
    if (strcmp(s->kind, "webhook") != 0 && strcmp(s->kind, "mqtt") != 0)
        return 0;
    if (s->product[0] && !store_valid_product_id(s->product))
        return 0;
    return s->events != NULL && s->config_json != NULL;
}

/* Runs q, then q2 (may be NULL), then appends ev (may be NULL), in one
 * write transaction; must_change: q changing no row is STORE_ERR_NOT_FOUND.
 * changed (may be NULL) gets the rows q changed. */
static store_status write_with_event(store_t *st, const db_query *q, int must_change,
                                     store_event_t *ev, const db_query *q2, int64_t *changed)
{
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_wrun(st, q);
    int64_t n = r == STORE_OK ? sqlite3_changes(st->w.db) : 0;
    if (changed)
        *changed = n;
    if (r == STORE_OK && must_change && n == 0)
        r = STORE_ERR_NOT_FOUND;
    if (r == STORE_OK && q2 != NULL)
        r = db_wrun(st, q2);
    if (r == STORE_OK && ev != NULL)
        r = store_event_append_w(st, ev);
    if (r == STORE_OK)
        store_outbox_sinks_changed_w(st);
    r = db_wend(st, r);
    store_outbox_notify(st);
    return r;
}

store_status store_sink_create(store_t *st, store_sink_t *s, const char *secret,
                               store_event_t *ev)
{
    static const char SQL[] =
        "INSERT INTO sinks(id, kind, name, product, events, config_json, secret, enabled, "
        "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
    if (!s || !sink_valid(s))
        return STORE_ERR_INVALID;
    if (store_random_id(s->id) != 0)
        return STORE_ERR_IO;
    s->created_at = s->updated_at = store_now_ms();
    s->has_secret = secret != NULL && *secret;
    db_query q = {SQL,
                  {DB_TEXT(s->id), DB_TEXT(s->kind), DB_TEXT(s->name ? s->name : ""),
                   DB_TEXT(s->product[0] ? s->product : NULL), DB_TEXT(s->events),
                   DB_TEXT(s->config_json), DB_TEXT(s->has_secret ? secret : NULL),
                   DB_INT(s->enabled ? 1 : 0), DB_INT(s->created_at)},
                  NULL, 0};
    return write_with_event(st, &q, 0, ev, NULL, NULL);
}

store_status store_sink_update(store_t *st, const store_sink_t *s, const char *secret,
                               store_event_t *ev)
{
    static const char SQL[] =
        "UPDATE sinks SET name = ?2, product = ?3, events = ?4, config_json = ?5, "
        "enabled = ?6, updated_at = ?7 WHERE id = ?1";
    static const char SQL_SECRET[] = "UPDATE sinks SET secret = ?2 WHERE id = ?1";
    if (!s || !sink_valid(s) || !store_valid_id(s->id))
        return STORE_ERR_INVALID;
    db_query q = {SQL,
                  {DB_TEXT(s->id), DB_TEXT(s->name ? s->name : ""),
                   DB_TEXT(s->product[0] ? s->product : NULL), DB_TEXT(s->events),
                   DB_TEXT(s->config_json), DB_INT(s->enabled ? 1 : 0), DB_INT(store_now_ms())},
                  NULL, 0};
    db_query qs = {SQL_SECRET, {DB_TEXT(s->id), DB_TEXT(secret && *secret ? secret : NULL)},
                   NULL, 0};
    return write_with_event(st, &q, 1, ev, secret != NULL ? &qs : NULL, NULL);
}

store_status store_sink_delete(store_t *st, const char *id, store_event_t *ev)
{
    static const char SQL[] = "DELETE FROM sinks WHERE id = ?1";
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(id)}, NULL, 0};
    return write_with_event(st, &q, 1, ev, NULL, NULL);
}

store_status store_sink_get(store_t *st, const char *id, int with_secret, store_sink_t *out)
{
    static const char SQL[] = "SELECT " SINK_COLS " FROM sinks s WHERE s.id = ?1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(id)}, with_secret ? (void *)st : NULL, 0};
    return db_get(st, &q, &SINK_ROWS, out);
}

store_status store_sink_list(store_t *st, const char *kind, size_t limit, const char *after,
                             store_sink_t **out, size_t *n, char next[STORE_CURSOR_LEN])
{
    static const char SQL[] = "SELECT " SINK_COLS " FROM sinks s WHERE (?1 IS NULL OR "
                              "s.kind = ?1) AND s.id > ?2 ORDER BY s.id LIMIT ?3";
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    if (after && *after && !store_valid_id(after))
        return STORE_ERR_INVALID;
    size_t lim = db_list_limit(limit);
    db_query q = {SQL, {DB_TEXT(kind), DB_TEXT(after && *after ? after : ""), DB_INT(lim + 1)},
                  NULL, lim};
    return db_list(st, &q, &SINK_ROWS, out, n, next);
}

store_status store_sink_redeliver(store_t *st, const char *id, int64_t *n)
{
    static const char SQL[] = "UPDATE outbox SET state = 'queued', attempts = 0, next_at = ?2 "
                              "WHERE sink_id = ?1 AND state = 'dead'";
    if (!n)
        return STORE_ERR_INVALID;
    *n = 0;
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    if (db_exists_r(st, "SELECT 1 FROM sinks WHERE id = ?1", id) != 1)
        return STORE_ERR_NOT_FOUND;
    db_query q = {SQL, {DB_TEXT(id), DB_INT(store_now_ms())}, NULL, 0};
    return write_with_event(st, &q, 0, NULL, NULL, n);
}
