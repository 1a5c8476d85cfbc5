/*
 * inspections.c - the inspections table and its write queue.
 *
 * The request path does not wait for SQLite: store_inspection_enqueue copies
 * the row into st->q and a flusher thread writes the queue in batches every
 * flush_ms (or as soon as QUEUE_BATCH rows wait). Reads flush first, so a row
 * is visible as soon as enqueue returned. Rows the database rejects as
 * invalid are dropped one by one; on any other failure they stay queued.
 * Lock order: flush_mu, then qmu (qmu is never held across SQLite calls).
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

#define INSPECTION_COLS                                                              \
    "id, product, model_version, score, threshold, decision, map_max, regions_json, " \
    "timings_json, created_at, has_images, key_id"

static void inspection_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_inspection_t *r = elem;
    db_col_copy(s, 0, r->id, sizeof r->id);
    db_col_copy(s, 1, r->product, sizeof r->product);
    r->model_version = sqlite3_column_int64(s, 2);
    r->score = sqlite3_column_double(s, 3);
    r->threshold = sqlite3_column_double(s, 4);
    db_col_copy(s, 5, r->decision, sizeof r->decision);
    r->map_max = sqlite3_column_double(s, 6);
    r->regions_json = db_col_dup(s, 7, "[]");
    r->timings_json = db_col_dup(s, 8, "{}");
    r->created_at = sqlite3_column_int64(s, 9);
    r->has_images = sqlite3_column_int(s, 10);
    db_col_copy(s, 11, r->key_id, sizeof r->key_id);
}

static void inspection_clear(void *elem)
{
    store_inspection_t *r = elem;
    free(r->regions_json);
    free(r->timings_json);
}

static const db_rowtype INSPECTION_ROWS = {sizeof(store_inspection_t), inspection_from_row,
                                           inspection_clear, offsetof(store_inspection_t, id),
                                           STORE_ID_LEN};

DB_DEFINE_CLEAR_FREE(store_inspection_t, store_inspection_clear, store_inspections_free,
                     INSPECTION_ROWS)

static store_status inspection_check(const store_inspection_t *in)
{
    if (!store_valid_id(in->id) || !store_valid_product_id(in->product))
        return STORE_ERR_INVALID;
    if (strcmp(in->decision, "OK") != 0 && strcmp(in->decision, "NG") != 0)
        return STORE_ERR_INVALID;
    if (in->key_id[0] && !store_valid_id(in->key_id))
        return STORE_ERR_INVALID;
    return STORE_OK;
}

/* Creation time encoded in a store_time_id(), or 0 if it is not one. */
static int64_t time_of_id(const char *id)
{
    if (!store_valid_id(id))
        return 0;
    char head[13];
    memcpy(head, id, 12);
    head[12] = '\0';
    return (int64_t)strtoll(head, NULL, 16);
}

/* ----------------------------------------------------------------- writes */

/* Inserts one row with the writer (inside a transaction). */
static store_status inspection_insert_w(store_t *st, const store_inspection_t *in)
{
    static const char SQL[] = "INSERT INTO inspections(" INSPECTION_COLS ") VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
    sqlite3_stmt *s = db_prep(&st->w, SQL);
    if (!s)
        return STORE_ERR_DB;
    int64_t created = in->created_at;
    if (created == 0)
        created = time_of_id(in->id);
    if (created == 0)
        created = store_now_ms();
    sqlite3_bind_text(s, 1, in->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, in->product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, in->model_version);
    sqlite3_bind_double(s, 4, isfinite(in->score) ? in->score : 0.0);
    sqlite3_bind_double(s, 5, isfinite(in->threshold) ? in->threshold : 0.0);
    sqlite3_bind_text(s, 6, in->decision, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(s, 7, isfinite(in->map_max) ? in->map_max : 0.0);
    sqlite3_bind_text(s, 8, in->regions_json ? in->regions_json : "[]", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 9, in->timings_json ? in->timings_json : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 10, created);
    sqlite3_bind_int(s, 11, in->has_images ? 1 : 0);
    db_bind_text_or_null(s, 12, in->key_id[0] ? in->key_id : NULL);
    return db_run(&st->w, s);
}

store_status store_inspections_insert_many(store_t *st, store_inspection_t *in, size_t n)
{
    if (!in && n > 0)
        return STORE_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (in[i].id[0] == '\0' && store_time_id(in[i].id) != 0)
            return STORE_ERR_IO;
        store_status r = inspection_check(&in[i]);
        if (r != STORE_OK)
            return r;
    }
    if (n == 0)
        return STORE_OK;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    for (size_t i = 0; i < n && r == STORE_OK; i++)
        r = inspection_insert_w(st, &in[i]);
    return db_wend(st, r);
}

store_status store_inspection_insert(store_t *st, store_inspection_t *in)
{
    if (!in)
        return STORE_ERR_INVALID;
    return store_inspections_insert_many(st, in, 1);
}

/* ------------------------------------------------------------ the queue */

static void inspection_copy(store_inspection_t *dst, const store_inspection_t *src)
{
    *dst = *src;
    dst->regions_json = src->regions_json ? xstrdup(src->regions_json) : NULL;
    dst->timings_json = src->timings_json ? xstrdup(src->timings_json) : NULL;
}

store_status store_inspection_enqueue(store_t *st, const store_inspection_t *in)
{
    if (!in)
        return STORE_ERR_INVALID;
    store_status r = inspection_check(in);
    if (r != STORE_OK)
        return r;
    if (!st->async) {
        store_inspection_t tmp;
        inspection_copy(&tmp, in);
        r = store_inspection_insert(st, &tmp);
        store_inspection_clear(&tmp);
        return r;
    }
    pthread_mutex_lock(&st->qmu);
    if (st->qn >= QUEUE_MAX) {
        pthread_mutex_unlock(&st->qmu);
        return STORE_ERR_FULL;
    }
    if (st->qn == st->qcap) {
        st->qcap = st->qcap ? st->qcap * 2 : 64;
        st->q = xrealloc(st->q, st->qcap * sizeof *st->q);
    }
    inspection_copy(&st->q[st->qn++], in);
    if (st->qn >= QUEUE_BATCH)
        pthread_cond_signal(&st->qcv);
    pthread_mutex_unlock(&st->qmu);
    return STORE_OK;
}

/* Inserts batch row by row after the batch insert failed: one bad row must
 * not poison the batch. Rows written or rejected as invalid are cleared;
 * the others are moved to the front of batch for a later retry.
 * Returns the last retryable failure (STORE_OK if none); *keep the count. */
static store_status insert_one_by_one(store_t *st, store_inspection_t *batch, size_t n,
                                      size_t *keep)
{
    store_status r = STORE_OK;
    *keep = 0;
    for (size_t i = 0; i < n; i++) {
        store_status ri = store_inspection_insert(st, &batch[i]);
        if (ri == STORE_OK) {
            store_inspection_clear(&batch[i]);
        } else if (ri == STORE_ERR_EXISTS || ri == STORE_ERR_INVALID) {
            log_warn("store", "dropping inspection %s: %s", batch[i].id, store_last_error());
            store_inspection_clear(&batch[i]);
        } else {
            batch[(*keep)++] = batch[i];
            r = ri;
        }
    }
    return r;
}

/* Puts keep unwritten rows back in front of what was queued meanwhile. */
static void requeue_front(store_t *st, store_inspection_t *rows, size_t keep)
{
    pthread_mutex_lock(&st->qmu);
    size_t total = keep + st->qn;
    store_inspection_t *merged = xmalloc(total * sizeof *merged);
    memcpy(merged, rows, keep * sizeof *merged);
    if (st->qn)
        memcpy(merged + keep, st->q, st->qn * sizeof *merged);
    free(st->q);
    st->q = merged;
    st->qn = st->qcap = total;
    pthread_mutex_unlock(&st->qmu);
}

store_status store_inspections_flush(store_t *st)
{
    pthread_mutex_lock(&st->flush_mu);
    pthread_mutex_lock(&st->qmu);
    store_inspection_t *batch = st->q;
    size_t n = st->qn;
    st->q = NULL;
    st->qn = st->qcap = 0;
    pthread_mutex_unlock(&st->qmu);
    store_status r = STORE_OK;
    size_t keep = 0;
    if (n > 0 && store_inspections_insert_many(st, batch, n) == STORE_OK) {
        for (size_t i = 0; i < n; i++)
            store_inspection_clear(&batch[i]);
    } else if (n > 0) {
        r = insert_one_by_one(st, batch, n, &keep);
    }
    if (keep > 0)
        requeue_front(st, batch, keep);
    free(batch);
    pthread_mutex_unlock(&st->flush_mu);
    return r;
}

static void *flusher_main(void *arg)
{
    store_t *st = arg;
    pthread_mutex_lock(&st->qmu);
    while (!st->qstop) {
        /* condition variables wait on CLOCK_REALTIME, the store's clock */
        int64_t deadline = store_now_ms() + st->flush_ms;
        struct timespec ts = {.tv_sec = (time_t)(deadline / 1000),
                              .tv_nsec = (long)(deadline % 1000) * 1000000L};
        if (st->qn < QUEUE_BATCH)
            pthread_cond_timedwait(&st->qcv, &st->qmu, &ts);
        if (st->qn == 0)
            continue;
        pthread_mutex_unlock(&st->qmu);
        store_status r = store_inspections_flush(st);
        if (r != STORE_OK) {
            log_error("store", "inspection flush failed: %s (%s)", store_strerror(r),
                      store_last_error());
            usleep(100000);
        }
        pthread_mutex_lock(&st->qmu);
    }
    pthread_mutex_unlock(&st->qmu);
    return NULL;
}

int store_queue_start(store_t *st)
{
    if (pthread_create(&st->flusher, NULL, flusher_main, st) != 0)
        return -1;
    st->flusher_started = 1;
    return 0;
}

void store_queue_stop(store_t *st)
{
    if (st->flusher_started) {
        pthread_mutex_lock(&st->qmu);
        st->qstop = 1;
        pthread_cond_signal(&st->qcv);
        pthread_mutex_unlock(&st->qmu);
        pthread_join(st->flusher, NULL);
        st->flusher_started = 0;
    }
    if (st->w.db && st->qn > 0)
        store_inspections_flush(st);
    if (st->qn > 0)
        log_error("store", "%zu queued inspections could not be written", st->qn);
    for (size_t i = 0; i < st->qn; i++)
        store_inspection_clear(&st->q[i]);
    free(st->q);
    st->q = NULL;
    st->qn = st->qcap = 0;
}

/* ------------------------------------------------------------------ reads */

store_status store_inspection_get(store_t *st, const char *id, store_inspection_t *out)
{
    static const char SQL[] = "SELECT " INSPECTION_COLS " FROM inspections WHERE id = ?1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    store_inspections_flush(st);
    db_query q = {SQL, {DB_TEXT(id)}, NULL, 0};
    return db_get(st, &q, &INSPECTION_ROWS, out);
}

/* One static SQL text per combination of filters, so the planner can use the
 * matching (product/decision, id) index; values are always bound. */
#define INSP_SEL "SELECT " INSPECTION_COLS " FROM inspections WHERE "
#define INSP_TAIL "(?3 IS NULL OR id < ?3) AND (?4 IS NULL OR created_at >= ?4) " \
                  "ORDER BY id DESC LIMIT ?5"
static const char *const INSP_LIST_SQL[4] = {
    INSP_SEL "(?1 IS NULL) AND (?2 IS NULL) AND " INSP_TAIL,
    INSP_SEL "product = ?1 AND (?2 IS NULL) AND " INSP_TAIL,
    INSP_SEL "(?1 IS NULL) AND decision = ?2 AND " INSP_TAIL,
    INSP_SEL "product = ?1 AND decision = ?2 AND " INSP_TAIL,
};

static int inspection_filter_valid(const store_inspection_filter *f)
{
    if (f->product && !store_valid_product_id(f->product))
        return 0;
    if (f->decision && strcmp(f->decision, "OK") != 0 && strcmp(f->decision, "NG") != 0)
        return 0;
    return !(f->after && *f->after && !store_valid_id(f->after));
}

store_status store_inspection_list(store_t *st, const store_inspection_filter *f,
                                   store_inspection_t **out, size_t *n, char next[STORE_ID_LEN])
{
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    store_inspection_filter flt;
    memset(&flt, 0, sizeof flt);
    if (f)
        flt = *f;
    if (!inspection_filter_valid(&flt))
        return STORE_ERR_INVALID;
    size_t limit = db_list_limit(flt.limit);
    store_inspections_flush(st);
    int which = (flt.product ? 1 : 0) | (flt.decision ? 2 : 0);
    db_query q = {INSP_LIST_SQL[which],
                  {DB_TEXT(flt.product), DB_TEXT(flt.decision),
                   DB_TEXT((flt.after && *flt.after) ? flt.after : NULL),
                   flt.since > 0 ? DB_INT(flt.since) : DB_NULL, DB_INT(limit + 1)},
                  NULL, limit};
    return db_list(st, &q, &INSPECTION_ROWS, out, n, next);
}
