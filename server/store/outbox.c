/*
 * outbox.c - the durable outbox of result sinks (server/sinks sends it).
 *
 * A delivery is a row written in the transaction of what it reports: the
 * inspection's audit row (inspections.c) or the event-log row (events.c). So
 * a committed inspection always has its deliveries, and a crash before the
 * commit leaves neither. A row is deleted only after the peer acknowledged
 * it: at-least-once across kill -9.
 *
 * Matching must cost the audit commit next to nothing: the sinks are cached
 * in memory as (id, product, mask of wanted events) and only reloaded after a
 * change of the sinks. The cache is read and reloaded only by the writer
 * (inside a write transaction, under st->wmu), so it needs no lock of its
 * own; the senders' wake-up has one.
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <time.h>

#include "base_clock.h"

#define OB_INSPECTION 0 /* mask bit of "inspection" (every one)   */
#define OB_INSPECTION_NG 1 /* ... of "inspection.ng"              */
#define OB_EVENT0 2     /* store_event_kinds[i] is bit OB_EVENT0 + i */

typedef struct {
    char id[STORE_ID_LEN];
    char product[STORE_PRODUCT_ID_MAX]; /* "": every product */
    uint64_t mask;
} cached_sink;

struct outbox_cache {
    int loaded;             /* the writer's: 0 after a change of the sinks */
    cached_sink *sinks;
    size_t n;
    pthread_mutex_t mu;     /* the wake-up of the senders               */
    pthread_cond_t cv;
    int64_t gen;
};

void store_outbox_init(store_t *st)
{
    st->ob = xcalloc(1, sizeof *st->ob);
    pthread_mutex_init(&st->ob->mu, NULL);
    pthread_cond_init(&st->ob->cv, NULL);
}

void store_outbox_free(store_t *st)
{
    if (st->ob == NULL)
        return;
    free(st->ob->sinks);
    pthread_mutex_destroy(&st->ob->mu);
    pthread_cond_destroy(&st->ob->cv);
    free(st->ob);
    st->ob = NULL;
}

/* The mask of a sink's comma-separated event names; unknown names (none are
 * stored: server/sinks validates) want nothing. */
static uint64_t events_mask(const char *events)
{
    uint64_t m = 0;
    const char *p = events;
    while (p != NULL && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[STORE_EVENT_KIND_MAX];
        if (len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            int i = store_event_kind_index(name);
            if (strcmp(name, "inspection") == 0)
                m |= 1ull << OB_INSPECTION;
            else if (strcmp(name, "inspection.ng") == 0)
                m |= 1ull << OB_INSPECTION_NG;
            else if (i >= 0)
                m |= 1ull << (OB_EVENT0 + i);
        }
        p = end ? end + 1 : NULL;
    }
    return m;
}

/* Reloads the enabled sinks on the writer (inside its transaction). */
static store_status cache_load_w(store_t *st)
{
    static const char SQL[] = "SELECT id, product, events FROM sinks WHERE enabled = 1";
    struct outbox_cache *ob = st->ob;
    sqlite3_stmt *s = db_prep(&st->w, SQL);
    if (!s)
        return STORE_ERR_DB;
    free(ob->sinks);
    ob->sinks = NULL;
    ob->n = 0;
    size_t cap = 0;
    int rc;
    while ((rc = db_step(s)) == SQLITE_ROW) {
        if (ob->n == cap) {
            cap = cap ? cap * 2 : 8;
            ob->sinks = xrealloc(ob->sinks, cap * sizeof *ob->sinks);
        }
        cached_sink *c = &ob->sinks[ob->n++];
        db_col_copy(s, 0, c->id, sizeof c->id);
        db_col_copy(s, 1, c->product, sizeof c->product);
        c->mask = events_mask((const char *)sqlite3_column_text(s, 2));
    }
    db_done(s);
    if (rc != SQLITE_DONE)
        return db_map_rc(st->w.db, rc);
    ob->loaded = 1;
    return STORE_OK;
}

void store_outbox_sinks_changed_w(store_t *st)
{
    st->ob->loaded = 0;
}

static store_status outbox_insert_w(store_t *st, const char *sink_id, const char *event,
                                    const char *ref, const char *product, int64_t now)
{
    static const char SQL[] = "INSERT INTO outbox(sink_id, event, ref, product, next_at, "
                              "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
    db_query q = {SQL,
                  {DB_TEXT(sink_id), DB_TEXT(event), DB_TEXT(ref),
                   DB_TEXT(product && *product ? product : NULL), DB_INT(now)},
                  NULL, 0};
    return db_wrun(st, &q);
}

/* One row per cached sink whose product and mask match. */
static store_status match_w(store_t *st, uint64_t bits, const char *event, const char *ref,
                            const char *product)
{
    struct outbox_cache *ob = st->ob;
    if (!ob->loaded) {
        store_status r = cache_load_w(st);
        if (r != STORE_OK)
            return r;
    }
    store_status r = STORE_OK;
    int64_t now = 0;
    for (size_t i = 0; i < ob->n && r == STORE_OK; i++) {
        const cached_sink *c = &ob->sinks[i];
        if ((c->mask & bits) == 0)
            continue;
        if (c->product[0] && (product == NULL || strcmp(c->product, product) != 0))
            continue;
        if (now == 0)
            now = store_now_ms();
        r = outbox_insert_w(st, c->id, event, ref, product, now);
    }
    return r;
}

store_status store_outbox_inspection_w(store_t *st, const store_inspection_t *in)
{
    uint64_t bits = 1ull << OB_INSPECTION;
    if (strcmp(in->decision, "NG") == 0)
        bits |= 1ull << OB_INSPECTION_NG;
    return match_w(st, bits, "inspection", in->id, in->product);
}

store_status store_outbox_event_w(store_t *st, const store_event_t *e)
{
    int i = store_event_kind_index(e->kind);
    if (i < 0)
        return STORE_ERR_INVALID;
    char ref[24];
    snprintf(ref, sizeof ref, "%lld", (long long)e->seq);
    return match_w(st, 1ull << (OB_EVENT0 + i), e->kind, ref, e->product);
}

void store_outbox_notify(store_t *st)
{
    pthread_mutex_lock(&st->ob->mu);
    st->ob->gen++;
    pthread_cond_broadcast(&st->ob->cv);
    pthread_mutex_unlock(&st->ob->mu);
}

int store_outbox_wait(store_t *st, int64_t *gen, int timeout_ms)
{
    struct timespec until = wall_deadline(timeout_ms);
    pthread_mutex_lock(&st->ob->mu);
    while (st->ob->gen == *gen)
        if (pthread_cond_timedwait(&st->ob->cv, &st->ob->mu, &until) != 0)
            break;
    int changed = st->ob->gen != *gen;
    *gen = st->ob->gen;
    pthread_mutex_unlock(&st->ob->mu);
    return changed;
}

/* ---------------------------------------------------------------- senders */

static void outbox_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_outbox_t *o = elem;
    o->seq = sqlite3_column_int64(s, 0);
    db_col_copy(s, 1, o->sink_id, sizeof o->sink_id);
    db_col_copy(s, 2, o->event, sizeof o->event);
    db_col_copy(s, 3, o->ref, sizeof o->ref);
    db_col_copy(s, 4, o->product, sizeof o->product);
    o->attempts = sqlite3_column_int(s, 5);
    o->next_at = sqlite3_column_int64(s, 6);
    o->created_at = sqlite3_column_int64(s, 7);
}

static void outbox_clear(void *elem)
{
    (void)elem;
}

static const db_rowtype OUTBOX_ROWS = {sizeof(store_outbox_t), outbox_from_row, outbox_clear,
                                       offsetof(store_outbox_t, ref), STORE_ID_LEN};

store_status store_outbox_head(store_t *st, const char *sink_id, size_t limit,
                               store_outbox_t **out, size_t *n)
{
    static const char SQL[] =
        "SELECT seq, sink_id, event, ref, product, attempts, next_at, created_at FROM outbox "
        "WHERE sink_id = ?1 AND state = 'queued' ORDER BY seq LIMIT ?2";
    if (!db_list_reset(out, n, NULL))
        return STORE_ERR_INVALID;
    if (!store_valid_id(sink_id))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(sink_id), DB_INT(limit > 0 ? limit : 1)}, NULL, 0};
    return db_list(st, &q, &OUTBOX_ROWS, out, n, NULL);
}

/* Runs a and b in one write transaction. */
static store_status write_pair(store_t *st, const db_query *a, const db_query *b)
{
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_wrun(st, a);
    if (r == STORE_OK)
        r = db_wrun(st, b);
    return db_wend(st, r);
}

store_status store_outbox_delivered(store_t *st, const int64_t *seqs, size_t n,
                                    const char *sink_id)
{
    static const char DEL[] = "DELETE FROM outbox WHERE seq = ?1";
    static const char COUNT[] = "UPDATE sinks SET delivered = delivered + ?2 WHERE id = ?1";
    if (n == 0)
        return STORE_OK;
    if (!seqs)
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    int64_t gone = 0; /* a row acknowledged twice (a retry raced an
                         acknowledgement) is counted once */
    for (size_t i = 0; i < n && r == STORE_OK; i++) {
        db_query a = {DEL, {DB_INT(seqs[i])}, NULL, 0};
        r = db_wrun(st, &a);
        gone += r == STORE_OK ? sqlite3_changes(st->w.db) : 0;
    }
    db_query b = {COUNT, {DB_TEXT(sink_id), DB_INT(gone)}, NULL, 0};
    if (r == STORE_OK)
        r = db_wrun(st, &b);
    return db_wend(st, r);
}

store_status store_outbox_failed(store_t *st, int64_t seq, const char *sink_id, int attempts,
                                 int64_t next_at, int dead, const char *error)
{
    static const char UPD[] = "UPDATE outbox SET attempts = ?2, next_at = ?3, state = ?4, "
                              "last_error = ?5 WHERE seq = ?1";
    static const char COUNT[] = "UPDATE sinks SET failed = failed + 1 WHERE id = ?1";
    db_query a = {UPD,
                  {DB_INT(seq), DB_INT(attempts), DB_INT(next_at),
                   DB_TEXT(dead ? "dead" : "queued"), DB_TEXT(error)},
                  NULL, 0};
    db_query b = {COUNT, {DB_TEXT(sink_id)}, NULL, 0};
    return write_pair(st, &a, &b);
}
