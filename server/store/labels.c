/*
 * labels.c - the inspection_labels table (operator feedback), and the score
 * window the drift statistic reads. A label row copies the product and the
 * decision of its audit row, so the product summary's counts are one query
 * over the labels alone.
 */
#include "store_int.h"

#define LABEL_COLS "inspection_id, label, note, key_id, created_at, image_id"

static void label_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_label_t *l = elem;
    db_col_copy(s, 0, l->inspection_id, sizeof l->inspection_id);
    db_col_copy(s, 1, l->label, sizeof l->label);
    l->note = db_col_dup(s, 2, "");
    db_col_copy(s, 3, l->key_id, sizeof l->key_id);
    l->created_at = sqlite3_column_int64(s, 4);
    db_col_copy(s, 5, l->image_id, sizeof l->image_id);
}

static void label_free_fields(void *elem)
{
    free(((store_label_t *)elem)->note);
}

static const db_rowtype LABEL_ROWS = {sizeof(store_label_t), label_from_row, label_free_fields,
                                      0, 0};

void store_label_clear(store_label_t *l)
{
    if (!l)
        return;
    label_free_fields(l);
    memset(l, 0, sizeof *l);
}

int store_valid_label(const char *s)
{
    return s && (strcmp(s, "false_alarm") == 0 || strcmp(s, "defect") == 0 ||
                 strcmp(s, "ok") == 0);
}

store_status store_label_add(store_t *st, const char *inspection_id, const char *label,
                             const char *note, const char *key_id, const char *image_id,
                             store_label_t *out)
{
    /* the audit row's product and decision are copied in the same statement:
     * no row is inserted for an unknown inspection */
    static const char SQL[] =
        "INSERT INTO inspection_labels(inspection_id, product, decision, label, note, key_id, "
        "created_at, image_id) SELECT id, product, decision, ?2, ?3, ?4, ?5, ?6 "
        "FROM inspections WHERE id = ?1";
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_id(inspection_id) || !store_valid_label(label) ||
        (note && strlen(note) > STORE_NOTE_MAX) || (image_id && *image_id &&
                                                    !store_valid_sha256(image_id)))
        return STORE_ERR_INVALID;
    int64_t now = store_now_ms();
    db_query q = {SQL,
                  {DB_TEXT(inspection_id), DB_TEXT(label), DB_TEXT(note ? note : ""),
                   DB_TEXT(key_id && *key_id ? key_id : NULL), DB_INT(now),
                   DB_TEXT(image_id && *image_id ? image_id : NULL)},
                  NULL, 0};
    store_status r = db_write(st, &q, 1);
    if (r == STORE_OK && out) {
        copy_str(out->inspection_id, sizeof out->inspection_id, inspection_id);
        copy_str(out->label, sizeof out->label, label);
        out->note = xstrdup(note ? note : "");
        copy_str(out->key_id, sizeof out->key_id, key_id);
        out->created_at = now;
        copy_str(out->image_id, sizeof out->image_id, image_id);
    }
    return r;
}

store_status store_label_get(store_t *st, const char *inspection_id, store_label_t *out)
{
    static const char SQL[] = "SELECT " LABEL_COLS " FROM inspection_labels "
                              "WHERE inspection_id = ?1 ORDER BY seq DESC LIMIT 1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_id(inspection_id))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(inspection_id)}, NULL, 0};
    return db_get(st, &q, &LABEL_ROWS, out);
}

/* Adds one (decision, label, count) row to the counts. */
static void count_add(store_label_counts *c, const char *decision, const char *label,
                      int64_t n)
{
    int ng = decision && strcmp(decision, "NG") == 0;
    if (!label)
        return;
    if (strcmp(label, "defect") == 0)
        *(ng ? &c->ng_defect : &c->ok_defect) += n;
    else if (strcmp(label, "false_alarm") == 0)
        *(ng ? &c->ng_false_alarm : &c->ok_false_alarm) += n;
    else if (strcmp(label, "ok") == 0)
        *(ng ? &c->ng_ok : &c->ok_ok) += n;
}

store_status store_label_count(store_t *st, const char *product, store_label_counts *out)
{
    /* the newest label of each labelled inspection of the product as it is
     * now: inspections from before it was (re)created belong to a deleted
     * product of the same id and are left out */
    static const char SQL[] =
        "SELECT l.decision, l.label, count(*) FROM inspection_labels l JOIN inspections i "
        "ON i.id = l.inspection_id WHERE l.product = ?1 AND i.created_at >= "
        "(SELECT created_at FROM products WHERE id = ?1) AND l.seq = (SELECT max(m.seq) "
        "FROM inspection_labels m WHERE m.inspection_id = l.inspection_id) "
        "GROUP BY l.decision, l.label";
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        int rc;
        while ((rc = db_step(s)) == SQLITE_ROW)
            count_add(out, (const char *)sqlite3_column_text(s, 0),
                      (const char *)sqlite3_column_text(s, 1), sqlite3_column_int64(s, 2));
        r = rc == SQLITE_DONE ? STORE_OK : db_map_rc(c->db, rc);
        db_done(s);
    }
    db_rrelease(st, c);
    if (r != STORE_OK)
        memset(out, 0, sizeof *out);
    return r;
}

store_status store_inspection_scores(store_t *st, const char *product, int64_t version,
                                     size_t n, double **scores, size_t *n_out)
{
    static const char SQL[] = "SELECT score FROM inspections WHERE product = ?1 AND "
                              "model_version = ?2 ORDER BY id DESC LIMIT ?3";
    *scores = NULL;
    *n_out = 0;
    if (!store_valid_product_id(product) || n == 0 || n > 100000)
        return STORE_ERR_INVALID;
    double *v = xmalloc(n * sizeof *v);
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    size_t k = 0;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 2, version);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)n);
        int rc = SQLITE_DONE;
        while (k < n && (rc = db_step(s)) == SQLITE_ROW)
            v[k++] = sqlite3_column_double(s, 0);
        r = k == n || rc == SQLITE_DONE ? STORE_OK : db_map_rc(c->db, rc);
        db_done(s);
    }
    db_rrelease(st, c);
    if (r != STORE_OK || k == 0) {
        free(v);
        return r;
    }
    *scores = v;
    *n_out = k;
    return r;
}
