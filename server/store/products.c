/*
 * products.c - the products table. A product owns its images (rows and the
 * files under <data_dir>/images/<id>/), models and jobs; deleting it removes
 * them all except its inspections, which stay as the audit trail.
 */
#include "store_int.h"

#include <math.h>

static const char SQL_PRODUCT_EXISTS[] = "SELECT 1 FROM products WHERE id = ?1";

int store_product_exists_w(store_t *st, const char *id)
{
    return db_exists_w(st, SQL_PRODUCT_EXISTS, id);
}

int store_product_exists_r(store_t *st, const char *id)
{
    return db_exists_r(st, SQL_PRODUCT_EXISTS, id);
}

/* threshold: of the active model; image_count: live, so it is never stale */
#define PRODUCT_COLS                                                                   \
    "p.id, p.name, p.settings_json, p.active_version, p.created_at, p.updated_at, "    \
    "(SELECT m.threshold FROM models m WHERE m.product = p.id AND "                    \
    "m.version = p.active_version), "                                                  \
    "(SELECT count(*) FROM images i WHERE i.product = p.id), "                         \
    "(SELECT coalesce(m.threshold_ng, m.threshold) FROM models m WHERE "               \
    "m.product = p.id AND m.version = p.active_version)"

static void product_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    store_product_t *p = elem;
    db_col_copy(s, 0, p->id, sizeof p->id);
    p->name = db_col_dup(s, 1, "");
    p->settings_json = db_col_dup(s, 2, "{}");
    p->active_version = sqlite3_column_int64(s, 3);
    p->created_at = sqlite3_column_int64(s, 4);
    p->updated_at = sqlite3_column_int64(s, 5);
    p->has_threshold = sqlite3_column_type(s, 6) != SQLITE_NULL;
    p->threshold = p->has_threshold ? sqlite3_column_double(s, 6) : NAN;
    p->image_count = sqlite3_column_int64(s, 7);
    p->threshold_ng = p->has_threshold ? sqlite3_column_double(s, 8) : NAN;
}

static void product_clear(void *elem)
{
    store_product_t *p = elem;
    free(p->name);
    free(p->settings_json);
}

static const db_rowtype PRODUCT_ROWS = {sizeof(store_product_t), product_from_row,
                                        product_clear, offsetof(store_product_t, id),
                                        STORE_PRODUCT_ID_MAX};

DB_DEFINE_CLEAR_FREE(store_product_t, store_product_clear, store_products_free, PRODUCT_ROWS)

store_status store_product_check_r(store_t *st, const char *id)
{
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    int e = store_product_exists_r(st, id);
    return e > 0 ? STORE_OK : e == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
}

store_status store_product_get(store_t *st, const char *id, store_product_t *out)
{
    static const char SQL[] = "SELECT " PRODUCT_COLS " FROM products p WHERE p.id = ?1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(id)}, NULL, 0};
    return db_get(st, &q, &PRODUCT_ROWS, out);
}

store_status store_product_get_w(store_t *st, const char *id, store_product_t *out)
{
    static const char SQL[] = "SELECT " PRODUCT_COLS " FROM products p WHERE p.id = ?1";
    db_query q = {SQL, {DB_TEXT(id)}, NULL, 0};
    return db_get_on(&st->w, &q, &PRODUCT_ROWS, out);
}

store_status store_event_product_w(store_t *st, store_event_t *e, const char *id)
{
    if (e == NULL)
        return STORE_OK;
    store_product_t p;
    memset(&p, 0, sizeof p);
    store_status r = store_product_get_w(st, id, &p);
    if (r == STORE_OK)
        r = store_event_row_w(st, e, &p);
    store_product_clear(&p);
    return r;
}

/* Runs q (a change of product id), appends ev with the product as q left
 * it, and fills out from the same read, all in one write transaction;
 * must_change: q changing no row is STORE_ERR_NOT_FOUND. */
static store_status product_write(store_t *st, const db_query *q, int must_change,
                                  const char *id, store_product_t *out, store_event_t *ev)
{
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = must_change ? db_wrun_changing(st, q) : db_wrun(st, q);
    if (r == STORE_OK)
        r = store_event_product_w(st, ev, id);
    if (r == STORE_OK && out != NULL)
        r = store_product_get_w(st, id, out);
    r = store_wend_event(st, r, ev);
    if (r != STORE_OK && out != NULL)
        store_product_clear(out);
    return r;
}

store_status store_product_create(store_t *st, const char *id, const char *name,
                                  const char *settings_json, store_product_t *out,
                                  store_event_t *ev)
{
    static const char SQL[] = "INSERT INTO products(id, name, settings_json, active_version, "
                              "created_at, updated_at) VALUES (?1, ?2, ?3, NULL, ?4, ?4)";
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(id), DB_TEXT(name ? name : ""),
                        DB_TEXT(settings_json ? settings_json : "{}"), DB_INT(store_now_ms())},
                  NULL, 0};
    return product_write(st, &q, 0, id, out, ev);
}

store_status store_product_list(store_t *st, size_t limit, const char *after,
                                store_product_t **out, size_t *n,
                                char next[STORE_PRODUCT_ID_MAX])
{
    static const char SQL[] = "SELECT " PRODUCT_COLS " FROM products p WHERE p.id > ?1 "
                              "ORDER BY p.id LIMIT ?2";
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    if (after && *after && !store_valid_product_id(after))
        return STORE_ERR_INVALID;
    limit = db_list_limit(limit);
    db_query q = {SQL, {DB_TEXT(after ? after : ""), DB_INT(limit + 1)}, NULL, limit};
    return db_list(st, &q, &PRODUCT_ROWS, out, n, next);
}

store_status store_product_patch(store_t *st, const char *id, const char *name,
                                 const char *settings_json, store_product_t *out,
                                 store_event_t *ev)
{
    static const char SQL[] = "UPDATE products SET name = coalesce(?2, name), "
                              "settings_json = coalesce(?3, settings_json), updated_at = ?4 "
                              "WHERE id = ?1";
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(id), DB_TEXT(name), DB_TEXT(settings_json),
                        DB_INT(store_now_ms())}, NULL, 0};
    return product_write(st, &q, 1, id, out, ev);
}

store_status store_product_delete(store_t *st, const char *id, store_event_t *ev)
{
    static const char SQL[] = "DELETE FROM products WHERE id = ?1";
    if (!store_valid_product_id(id))
        return STORE_ERR_INVALID;
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = store_product_idle_w(st, id);
    db_query q = {SQL, {DB_TEXT(id)}, NULL, 0};
    if (r == STORE_OK)
        r = db_wrun(st, &q);
    if (r == STORE_OK)
        r = store_event_row_w(st, ev, NULL);
    r = store_wend_event(st, r, ev);
    if (r == STORE_OK) {
        /* Rows are gone (cascade); now the files. The id was validated, so
         * the path stays inside <data_dir>/images. */
        char path[STORE_PATH_MAX];
        snprintf(path, sizeof path, "%s/images/%s", st->dir, id);
        fs_rm_tree(path);
        /* its ROI masks too: their models went with the product */
        snprintf(path, sizeof path, "%s/masks/%s", st->dir, id);
        fs_rm_tree(path);
    }
    return r;
}
