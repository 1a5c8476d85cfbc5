/*
 * masks.c - the product_masks table (a product's current ROI mask) and the
 * content-addressed mask files <data_dir>/masks/<product>/<sha>.png. As for
 * images, a file is durable before its row names it. Replacing or deleting
 * a mask removes only the row: the models trained with it name its file
 * (figures' mask_sha256) and keep inspecting with it.
 */
#include "store_int.h"

#include <unistd.h>

#include "sha256.h"

#define MASK_COLS "sha256, width, height, bytes, created_at"

store_status store_mask_path(store_t *st, const char *product, const char *sha256, char *buf,
                             size_t buflen)
{
    if (!buf || buflen == 0)
        return STORE_ERR_INVALID;
    buf[0] = '\0';
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256))
        return STORE_ERR_INVALID;
    int n = snprintf(buf, buflen, "%s/masks/%s/%s.png", st->dir, product, sha256);
    if (n < 0 || (size_t)n >= buflen) {
        buf[0] = '\0';
        return STORE_ERR_INVALID;
    }
    return STORE_OK;
}

static void mask_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    store_mask_t *m = elem;
    (void)ctx;
    db_col_copy(s, 0, m->sha256, sizeof m->sha256);
    m->width = sqlite3_column_int(s, 1);
    m->height = sqlite3_column_int(s, 2);
    m->bytes = sqlite3_column_int64(s, 3);
    m->created_at = sqlite3_column_int64(s, 4);
}

static void mask_clear(void *elem) { (void)elem; }

static const db_rowtype MASK_ROWS = {sizeof(store_mask_t), mask_from_row, mask_clear, 0, 0};

store_status store_mask_get(store_t *st, const char *product, store_mask_t *out)
{
    static const char SQL[] = "SELECT " MASK_COLS " FROM product_masks WHERE product = ?1";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(product)}, NULL, 0};
    return db_get(st, &q, &MASK_ROWS, out);
}

/* The row of a mask whose file is durable, replacing the product's last,
 * with ev (may be NULL; after_fn gets the store_mask_t) in its transaction. */
static store_status mask_row_put(store_t *st, const char *product, const store_mask_t *m,
                                 store_event_t *ev)
{
    static const char SQL[] = "INSERT OR REPLACE INTO product_masks(product, sha256, width, "
                              "height, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    db_query q = {SQL, {DB_TEXT(product), DB_TEXT(m->sha256), DB_INT(m->width),
                        DB_INT(m->height), DB_INT(m->bytes), DB_INT(m->created_at)},
                  NULL, 0};
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_wrun(st, &q);
    if (r == STORE_OK)
        r = store_event_row_w(st, ev, m);
    return store_wend_event(st, r, ev);
}

store_status store_mask_put(store_t *st, const char *product, const void *data, size_t len,
                            int width, int height, store_mask_t *out, store_event_t *ev)
{
    store_mask_t m;
    memset(&m, 0, sizeof m);
    if (out)
        memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product) || !data || len == 0 || width <= 0 || height <= 0)
        return STORE_ERR_INVALID;
    store_status r = store_product_check_r(st, product);
    if (r != STORE_OK)
        return r;
    sha256_hex_of(data, len, m.sha256);
    m.width = width;
    m.height = height;
    m.bytes = (int64_t)len;
    m.created_at = store_now_ms();
    char path[STORE_PATH_MAX], dir[STORE_PATH_MAX];
    r = store_mask_path(st, product, m.sha256, path, sizeof path);
    if (r != STORE_OK)
        return r;
    snprintf(dir, sizeof dir, "%s/masks/%s", st->dir, product);
    /* the same bytes again are the same file: rewriting it is harmless */
    r = fs_write_durable(dir, path, data, len);
    if (r == STORE_OK)
        r = mask_row_put(st, product, &m, ev);
    if (r == STORE_OK && out)
        *out = m;
    return r;
}

store_status store_mask_delete(store_t *st, const char *product, store_event_t *ev)
{
    static const char SQL_GET[] = "SELECT " MASK_COLS " FROM product_masks WHERE product = ?1";
    static const char SQL[] = "DELETE FROM product_masks WHERE product = ?1";
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    store_mask_t was;
    memset(&was, 0, sizeof was);
    db_query g = {SQL_GET, {DB_TEXT(product)}, NULL, 0};
    db_query q = {SQL, {DB_TEXT(product)}, NULL, 0};
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    r = db_get_on(&st->w, &g, &MASK_ROWS, &was); /* NOT_FOUND: there was none */
    return store_remove_event_wend(st, r, &q, &was, ev);
}

/* A row of one text column, as a malloc'd string. */
static void text_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    (void)ctx;
    *(char **)elem = db_col_dup(s, 0, "{}");
}

static void text_clear(void *elem) { free(*(char **)elem); }

static const db_rowtype TEXT_ROWS = {sizeof(char *), text_from_row, text_clear, 0, 0};

store_status store_model_figures(store_t *st, const char *product, int64_t version,
                                 char **figures_json)
{
    static const char SQL[] =
        "SELECT figures_json FROM models WHERE product = ?1 AND version = ?2";
    if (!figures_json)
        return STORE_ERR_INVALID;
    *figures_json = NULL;
    if (!store_valid_product_id(product) || version < 1)
        return STORE_ERR_INVALID;
    db_query q = {SQL, {DB_TEXT(product), DB_INT(version)}, NULL, 0};
    return db_get(st, &q, &TEXT_ROWS, figures_json);
}
