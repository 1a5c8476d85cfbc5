/*
 * inspections.c - the inspections table and its group commit.
 *
 * An inspection is answered only once its row is durable, so the request
 * thread waits for the commit (store_inspection_commit). Concurrent callers
 * share commits: the first caller to find no commit running takes every row
 * waiting and commits them in one transaction (one WAL fsync), the others
 * wait; rows arriving meanwhile form the next group, committed by one of
 * their callers. No thread of its own and no copy of a row: the rows stay
 * on their callers' stacks until their group is done.
 * Lock order: gmu is never held across SQLite calls.
 */
#define _GNU_SOURCE
#include "store_int.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

#define INSPECTION_COLS                                                              \
    "id, product, model_version, score, threshold, decision, map_max, regions_json, " \
    "timings_json, created_at, has_images, key_id, part_id, serial, camera, station, order_no, " \
    "threshold_ng, verdict"

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
    db_col_copy(s, 12, r->part.part_id, sizeof r->part.part_id);
    db_col_copy(s, 13, r->part.serial, sizeof r->part.serial);
    db_col_copy(s, 14, r->part.camera, sizeof r->part.camera);
    db_col_copy(s, 15, r->part.station, sizeof r->part.station);
    db_col_copy(s, 16, r->part.order, sizeof r->part.order);
    r->threshold_ng = sqlite3_column_type(s, 17) != SQLITE_NULL ? sqlite3_column_double(s, 17)
                                                                : r->threshold;
    db_col_copy(s, 18, r->verdict, sizeof r->verdict);
    if (r->verdict[0] == '\0')
        snprintf(r->verdict, sizeof r->verdict, "%s", r->decision);
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

int store_valid_verdict(const char *v)
{
    return v != NULL &&
           (strcmp(v, "OK") == 0 || strcmp(v, "UNSURE") == 0 || strcmp(v, "NG") == 0);
}

static store_status inspection_check(const store_inspection_t *in)
{
    if (!store_valid_id(in->id) || !store_valid_product_id(in->product))
        return STORE_ERR_INVALID;
    if (strcmp(in->decision, "OK") != 0 && strcmp(in->decision, "NG") != 0)
        return STORE_ERR_INVALID;
    if (in->key_id[0] && !store_valid_id(in->key_id))
        return STORE_ERR_INVALID;
    if (in->verdict[0] && !store_valid_verdict(in->verdict))
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

/* The part identity fields from ?13 on ("" binds NULL). */
static void bind_part(sqlite3_stmt *s, const store_part_t *p)
{
    db_bind_text_or_null(s, 13, p->part_id[0] ? p->part_id : NULL);
    db_bind_text_or_null(s, 14, p->serial[0] ? p->serial : NULL);
    db_bind_text_or_null(s, 15, p->camera[0] ? p->camera : NULL);
    db_bind_text_or_null(s, 16, p->station[0] ? p->station : NULL);
    db_bind_text_or_null(s, 17, p->order[0] ? p->order : NULL);
}

/* Inserts one row with the writer (inside a transaction), and its
 * Idempotency-Key entry when it has one: both or neither. */
static store_status inspection_insert_w(store_t *st, const store_inspection_t *in)
{
    static const char SQL[] = "INSERT INTO inspections(" INSPECTION_COLS ") VALUES "
                              "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                              "?15, ?16, ?17, ?18, ?19)";
    if (in->idem != NULL) { /* the entry names this row: a replay is made from it */
        store_idem_t e = *in->idem;
        snprintf(e.ref, sizeof e.ref, "%s", in->id);
        store_status r = store_idem_insert_w(st, &e);
        if (r != STORE_OK)
            return r;
    }
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
    bind_part(s, &in->part);
    double t_ng = isfinite(in->threshold_ng) ? in->threshold_ng : in->threshold;
    sqlite3_bind_double(s, 18, isfinite(t_ng) ? t_ng : 0.0);
    sqlite3_bind_text(s, 19, in->verdict[0] ? in->verdict : in->decision, -1, SQLITE_TRANSIENT);
    store_status r = db_run(&st->w, s);
    return r == STORE_OK ? store_outbox_inspection_w(st, in) : r;
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
    r = db_wend(st, r);
    store_outbox_notify(st);
    return r;
}

store_status store_inspection_insert(store_t *st, store_inspection_t *in)
{
    if (!in)
        return STORE_ERR_INVALID;
    return store_inspections_insert_many(st, in, 1);
}

/* ------------------------------------------------------- group commit */

/* One caller waiting in store_inspection_commit; lives on its stack. */
struct gc_waiter {
    store_inspection_t *row;
    store_status status;
    int done;
    char why[256];           /* the failure's detail, for the caller's thread */
    struct gc_waiter *next;
};

/* The files of a group's rows were written without fsync
 * (store_inspection_file_write): one syncfs makes all of them durable before
 * the rows that name them are committed, instead of two fsyncs per file
 * (four per stored inspection). why gets the failure's detail. */
static store_status sync_group_files(store_t *st, const struct gc_waiter *group, char *why,
                                     size_t cap)
{
    const struct gc_waiter *w = group;
    while (w != NULL && !w->row->has_images)
        w = w->next;
    if (w == NULL)
        return STORE_OK;
    store_status r = fs_sync(st->dir);
    if (r != STORE_OK)
        snprintf(why, cap, "%s", store_last_error());
    return r;
}

/* Whether a row goes into the transaction: its files, if any, are durable. */
static int row_ready(const struct gc_waiter *w, store_status synced)
{
    return synced == STORE_OK || !w->row->has_images;
}

/* Commits the rows of a group in one transaction (one WAL fsync). If that
 * fails, each row is tried alone so that one bad row cannot fail the others
 * and each caller gets its own row's status. A row whose files could not be
 * synced fails with the sync's status and is not written. */
static void commit_group(store_t *st, struct gc_waiter *group)
{
    char sync_why[256] = "";
    store_status synced = sync_group_files(st, group, sync_why, sizeof sync_why);
    int n = 0; /* rows in the transaction */
    for (struct gc_waiter *w = group; w; w = w->next)
        n += row_ready(w, synced);
    store_status r = db_wbegin(st);
    if (r == STORE_OK) {
        for (struct gc_waiter *w = group; w && r == STORE_OK; w = w->next)
            if (row_ready(w, synced))
                r = inspection_insert_w(st, w->row);
        r = db_wend(st, r);
    }
    for (struct gc_waiter *w = group; w; w = w->next) {
        if (!row_ready(w, synced)) {
            w->status = synced;
            snprintf(w->why, sizeof w->why, "%s", sync_why);
            continue;
        }
        if (r != STORE_OK && n > 1)
            w->status = store_inspection_insert(st, w->row);
        else
            w->status = r;
        snprintf(w->why, sizeof w->why, "%s", w->status == STORE_OK ? "" : store_last_error());
    }
}

/* A row that failed for want of space or of a working database marks the
 * store unwritable (store_write_health); a group that committed clears it. */
static void note_health(store_t *st, const struct gc_waiter *group)
{
    for (const struct gc_waiter *w = group; w; w = w->next)
        if (w->status != STORE_OK && w->status != STORE_ERR_EXISTS &&
            w->status != STORE_ERR_INVALID) {
            store_note_write(st, w->status, w->why, 0);
            return;
        }
    store_note_write(st, STORE_OK, NULL, 0);
}

store_status store_inspection_commit(store_t *st, store_inspection_t *in)
{
    if (!in)
        return STORE_ERR_INVALID;
    if (in->id[0] == '\0' && store_time_id(in->id) != 0)
        return STORE_ERR_IO;
    store_status r = inspection_check(in);
    if (r != STORE_OK)
        return r;
    struct gc_waiter me = {.row = in};
    pthread_mutex_lock(&st->gmu);
    *st->gtail = &me;
    st->gtail = &me.next;
    while (!me.done) {
        if (st->gbusy) {
            pthread_cond_wait(&st->gcv, &st->gmu);
            continue;
        }
        /* Leader: every row that arrived while the last group committed
         * forms this group; rows arriving now form the next one. */
        struct gc_waiter *group = st->ghead;
        st->ghead = NULL;
        st->gtail = &st->ghead;
        st->gbusy = 1;
        pthread_mutex_unlock(&st->gmu);
        commit_group(st, group);
        note_health(st, group);
        store_outbox_notify(st);
        pthread_mutex_lock(&st->gmu);
        st->ggroups++;
        for (struct gc_waiter *w = group, *next; w; w = next) {
            next = w->next; /* w may return (and its stack go) once done */
            w->done = 1;
            st->grows++;
        }
        st->gbusy = 0;
        pthread_cond_broadcast(&st->gcv);
    }
    pthread_mutex_unlock(&st->gmu);
    if (me.status != STORE_OK)
        store_set_error("%s", me.why); /* for store_last_error on this thread */
    return me.status;
}

void store_inspection_commit_stats(store_t *st, int64_t *groups, int64_t *rows)
{
    pthread_mutex_lock(&st->gmu);
    *groups = st->ggroups;
    *rows = st->grows;
    pthread_mutex_unlock(&st->gmu);
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
    db_query q = {SQL, {DB_TEXT(id)}, NULL, 0};
    return db_get(st, &q, &INSPECTION_ROWS, out);
}

/* One static SQL text per leading filter, so the planner can use the
 * matching (column, id) index; the other filters are "?n IS NULL OR ...";
 * values are always bound. Parameters: ?1 product, ?2 decision, ?3 cursor,
 * ?4 since, ?5 limit, ?6 until, ?7 model_version, ?8 part_id, ?9 serial,
 * ?10 camera, ?11 station, ?12 order. */
#define INSP_SEL "SELECT " INSPECTION_COLS " FROM inspections WHERE "
#define INSP_ANY(col, n) "(?" #n " IS NULL OR " col " = ?" #n ") AND "
#define INSP_EQ(col, n) col " = ?" #n " AND "
#define INSP_TAIL "(?3 IS NULL OR id < ?3) AND (?4 IS NULL OR created_at >= ?4) AND " \
                  "(?6 IS NULL OR created_at < ?6) AND " INSP_ANY("model_version", 7)    \
                  INSP_ANY("serial", 9) INSP_ANY("camera", 10) INSP_ANY("station", 11)    \
                  INSP_ANY("order_no", 12)    \
                  INSP_ANY("verdict", 13) "1 ORDER BY id DESC LIMIT ?5"
#define INSP_SQL(prod, dec, part) INSP_SEL prod dec part INSP_TAIL
enum { LEAD_NONE, LEAD_PRODUCT, LEAD_DECISION, LEAD_PRODUCT_DECISION, LEAD_PART, LEAD_SERIAL,
       LEAD_CAMERA, LEAD_STATION, LEAD_ORDER, LEAD_N };
static const char *const INSP_LIST_SQL[LEAD_N] = {
    INSP_SQL(INSP_ANY("product", 1), INSP_ANY("decision", 2), INSP_ANY("part_id", 8)),
    INSP_SQL(INSP_EQ("product", 1), INSP_ANY("decision", 2), INSP_ANY("part_id", 8)),
    INSP_SQL(INSP_ANY("product", 1), INSP_EQ("decision", 2), INSP_ANY("part_id", 8)),
    INSP_SQL(INSP_EQ("product", 1), INSP_EQ("decision", 2), INSP_ANY("part_id", 8)),
    INSP_SQL(INSP_ANY("product", 1), INSP_ANY("decision", 2), INSP_EQ("part_id", 8)),
    /* the remaining leads repeat their column as "=": the planner takes the
     * equality and its index, the IS NULL test is then always false */
    INSP_SQL(INSP_EQ("serial", 9) INSP_ANY("product", 1), INSP_ANY("decision", 2),
             INSP_ANY("part_id", 8)),
    INSP_SQL(INSP_EQ("camera", 10) INSP_ANY("product", 1), INSP_ANY("decision", 2),
             INSP_ANY("part_id", 8)),
    INSP_SQL(INSP_EQ("station", 11) INSP_ANY("product", 1), INSP_ANY("decision", 2),
             INSP_ANY("part_id", 8)),
    INSP_SQL(INSP_EQ("order_no", 12) INSP_ANY("product", 1), INSP_ANY("decision", 2),
             INSP_ANY("part_id", 8)),
};

/* The filter whose index leads: part identity is the most selective. */
static int list_lead(const store_inspection_filter *f)
{
    if (f->part_id)
        return LEAD_PART;
    if (f->serial)
        return LEAD_SERIAL;
    if (f->order)
        return LEAD_ORDER;
    if (f->station)
        return LEAD_STATION;
    if (f->camera)
        return LEAD_CAMERA;
    return (f->product ? LEAD_PRODUCT : 0) | (f->decision ? LEAD_DECISION : 0);
}

static int inspection_filter_valid(const store_inspection_filter *f)
{
    if (f->product && !store_valid_product_id(f->product))
        return 0;
    if (f->decision && strcmp(f->decision, "OK") != 0 && strcmp(f->decision, "NG") != 0)
        return 0;
    if (f->verdict && !store_valid_verdict(f->verdict))
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
    db_query q = {INSP_LIST_SQL[list_lead(&flt)],
                  {DB_TEXT(flt.product), DB_TEXT(flt.decision),
                   DB_TEXT((flt.after && *flt.after) ? flt.after : NULL),
                   flt.since > 0 ? DB_INT(flt.since) : DB_NULL, DB_INT(limit + 1),
                   flt.until > 0 ? DB_INT(flt.until) : DB_NULL,
                   flt.model_version > 0 ? DB_INT(flt.model_version) : DB_NULL,
                   DB_TEXT(flt.part_id), DB_TEXT(flt.serial), DB_TEXT(flt.camera),
                   DB_TEXT(flt.station), DB_TEXT(flt.order), DB_TEXT(flt.verdict)},
                  NULL, limit};
    return db_list(st, &q, &INSPECTION_ROWS, out, n, next);
}
