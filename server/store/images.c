/*
 * images.c - the images table and the content-addressed image files
 * <data_dir>/images/<product>/<sha[0:2]>/<sha>.<ext>. A file is written
 * durably before its row exists, and the row is deleted before its file, so
 * a row never points at a missing file. Puts and deletes of one sha256 are
 * serialised by a striped lock (st->blob_mu).
 */
#include "store_int.h"

#include <unistd.h>

#include "sha256.h"

#define IMAGE_COLS "sha256, ext, width, height, bytes, created_at"

/* An image being stored (store_image_put's arguments plus its hash). */
typedef struct {
    const char *product;
    char sha[SHA256_HEX_LEN];
    const char *ext;
    const void *data;
    size_t len;
    int width, height;
} image_new;

/* File extensions: [a-z0-9]{1,7}. */
static int valid_ext(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 7)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

void store_images_free(store_image_t *arr, size_t n)
{
    if (!arr)
        return;
    for (size_t i = 0; i < n; i++)
        free(arr[i].path);
    free(arr);
}

store_status store_image_path(store_t *st, const char *product, const char *sha256,
                              const char *ext, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return STORE_ERR_INVALID;
    buf[0] = '\0';
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256) || !valid_ext(ext))
        return STORE_ERR_INVALID;
    int n = snprintf(buf, buflen, "%s/images/%s/%.2s/%s.%s", st->dir, product, sha256, sha256,
                     ext);
    if (n < 0 || (size_t)n >= buflen) {
        buf[0] = '\0';
        return STORE_ERR_INVALID;
    }
    return STORE_OK;
}

static void image_from_row(sqlite3_stmt *s, store_image_t *im)
{
    memset(im, 0, sizeof *im);
    db_col_copy(s, 0, im->sha256, sizeof im->sha256);
    db_col_copy(s, 1, im->ext, sizeof im->ext);
    im->width = sqlite3_column_int(s, 2);
    im->height = sqlite3_column_int(s, 3);
    im->bytes = sqlite3_column_int64(s, 4);
    im->created_at = sqlite3_column_int64(s, 5);
}

store_status store_image_get(store_t *st, const char *product, const char *sha256,
                             store_image_t *out)
{
    static const char SQL[] =
        "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 AND sha256 = ?2";
    if (!out)
        return STORE_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256))
        return STORE_ERR_INVALID;
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, sha256, -1, SQLITE_TRANSIENT);
        int rc = db_step(s);
        if (rc == SQLITE_ROW) {
            image_from_row(s, out);
            r = STORE_OK;
        } else {
            r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : db_map_rc(c->db, rc);
        }
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}

/* The lock stripe of a sha256 (its first 16 bits pick one of BLOB_LOCKS). */
static pthread_mutex_t *blob_lock(store_t *st, const char *sha256)
{
    unsigned h = 0;
    for (int i = 0; i < 4; i++)
        h = h * 16 + (unsigned)(sha256[i] <= '9' ? sha256[i] - '0' : sha256[i] - 'a' + 10);
    return &st->blob_mu[h % BLOB_LOCKS];
}

/* Writes the image file durably; path receives its name. */
static store_status image_file_write(store_t *st, const image_new *im, char *path,
                                     size_t pathlen)
{
    char dir[STORE_PATH_MAX];
    store_status r = store_image_path(st, im->product, im->sha, im->ext, path, pathlen);
    if (r != STORE_OK)
        return r;
    snprintf(dir, sizeof dir, "%s/images/%s/%.2s", st->dir, im->product, im->sha);
    return fs_write_durable(dir, path, im->data, im->len);
}

/* Inserts the row of an image whose file is durable. *changed: 1 if a row
 * was added (0 when one already existed). */
static store_status image_row_insert(store_t *st, const image_new *im, int64_t now,
                                     int *changed)
{
    static const char SQL[] = "INSERT OR IGNORE INTO images(product, sha256, ext, width, "
                              "height, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    sqlite3_stmt *s = db_prep(&st->w, SQL);
    if (!s) {
        r = STORE_ERR_DB;
    } else {
        sqlite3_bind_text(s, 1, im->product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, im->sha, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 3, im->ext, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 4, im->width);
        sqlite3_bind_int(s, 5, im->height);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)im->len);
        sqlite3_bind_int64(s, 7, now);
        r = db_run(&st->w, s);
        *changed = sqlite3_changes(st->w.db) > 0;
    }
    return db_wend(st, r);
}

/* store_image_put with the sha's lock held: an existing row is the answer,
 * else the file is written, and only then the row that points at it. */
static store_status image_put_locked(store_t *st, const image_new *im, store_image_t *out,
                                     int *changed)
{
    store_image_t cur;
    store_status r = store_image_get(st, im->product, im->sha, &cur);
    if (r == STORE_OK && out)
        *out = cur;
    if (r != STORE_ERR_NOT_FOUND)
        return r;
    int pe = store_product_exists_r(st, im->product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    char path[STORE_PATH_MAX];
    r = image_file_write(st, im, path, sizeof path);
    if (r != STORE_OK)
        return r;
    int64_t now = store_now_ms();
    r = image_row_insert(st, im, now, changed);
    if (r != STORE_OK) {
        /* The product vanished or the insert failed: do not leave an orphan. */
        unlink(path);
        return r;
    }
    if (out) {
        memset(out, 0, sizeof *out);
        copy_str(out->sha256, sizeof out->sha256, im->sha);
        copy_str(out->ext, sizeof out->ext, im->ext);
        out->width = im->width;
        out->height = im->height;
        out->bytes = (int64_t)im->len;
        out->created_at = now;
    }
    return STORE_OK;
}

store_status store_image_put(store_t *st, const char *product, const void *data, size_t len,
                             int width, int height, const char *ext, store_image_t *out,
                             int *created)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (created)
        *created = 0;
    if (!store_valid_product_id(product) || !valid_ext(ext) || (!data && len > 0) ||
        width <= 0 || height <= 0)
        return STORE_ERR_INVALID;
    image_new im = {.product = product, .ext = ext, .data = data, .len = len,
                    .width = width, .height = height};
    sha256_hex_of(data, len, im.sha);
    int changed = 0;
    pthread_mutex_t *mu = blob_lock(st, im.sha);
    pthread_mutex_lock(mu);
    store_status r = image_put_locked(st, &im, out, &changed);
    pthread_mutex_unlock(mu);
    if (r == STORE_OK && created)
        *created = changed;
    return r;
}

/* Runs a product's image query (?1 = product) into a growing array; with
 * with_paths every entry gets its file path. */
static store_status image_rows(store_t *st, conn_t *c, sqlite3_stmt *s, const char *product,
                               int with_paths, store_image_t **out, size_t *n)
{
    size_t cap = 64, k = 0;
    store_image_t *arr = xcalloc(cap, sizeof *arr);
    int rc;
    while ((rc = db_step(s)) == SQLITE_ROW) {
        if (k == cap) {
            cap *= 2;
            arr = xrealloc(arr, cap * sizeof *arr);
        }
        image_from_row(s, &arr[k]);
        char path[STORE_PATH_MAX];
        if (with_paths && store_image_path(st, product, arr[k].sha256, arr[k].ext, path,
                                           sizeof path) == STORE_OK)
            arr[k].path = xstrdup(path);
        k++;
    }
    if (rc != SQLITE_DONE) {
        store_images_free(arr, k);
        return db_map_rc(c->db, rc);
    }
    *out = arr;
    *n = k;
    return STORE_OK;
}

store_status store_image_list(store_t *st, const char *product, size_t limit,
                              const char *after, store_image_t **out, size_t *n,
                              char next[STORE_SHA256_HEX])
{
    static const char SQL[] = "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 AND "
                              "sha256 > ?2 ORDER BY sha256 LIMIT ?3";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (next)
        next[0] = '\0';
    if (!store_valid_product_id(product) || (after && *after && !store_valid_sha256(after)))
        return STORE_ERR_INVALID;
    int pe = store_product_exists_r(st, product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    limit = db_list_limit(limit);
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, after ? after : "", -1, SQLITE_TRANSIENT);
        /* one row more than asked tells whether a next page exists */
        sqlite3_bind_int64(s, 3, (sqlite3_int64)limit + 1);
        r = image_rows(st, c, s, product, 0, out, n);
        if (r == STORE_OK && *n > limit) {
            *n = limit;
            if (next)
                copy_str(next, STORE_SHA256_HEX, (*out)[limit - 1].sha256);
        }
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}

store_status store_image_list_all(store_t *st, const char *product, store_image_t **out,
                                  size_t *n)
{
    static const char SQL[] =
        "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 ORDER BY created_at, sha256";
    if (!out || !n)
        return STORE_ERR_INVALID;
    *out = NULL;
    *n = 0;
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    int pe = store_product_exists_r(st, product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
        r = image_rows(st, c, s, product, 1, out, n);
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}

/* Deletes the row inside a write transaction; ext receives the file's
 * extension. */
static store_status image_row_delete(store_t *st, const char *product, const char *sha256,
                                     char ext[STORE_EXT_MAX])
{
    static const char SQL_EXT[] = "SELECT ext FROM images WHERE product = ?1 AND sha256 = ?2";
    static const char SQL_DEL[] = "DELETE FROM images WHERE product = ?1 AND sha256 = ?2";
    sqlite3_stmt *s = db_prep(&st->w, SQL_EXT);
    if (!s)
        return STORE_ERR_DB;
    sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, sha256, -1, SQLITE_TRANSIENT);
    int rc = db_step(s);
    store_status r = STORE_OK;
    if (rc == SQLITE_ROW)
        db_col_copy(s, 0, ext, STORE_EXT_MAX);
    else
        r = rc == SQLITE_DONE ? STORE_ERR_NOT_FOUND : db_map_rc(st->w.db, rc);
    db_done(s);
    if (r != STORE_OK)
        return r;
    s = db_prep(&st->w, SQL_DEL);
    if (!s)
        return STORE_ERR_DB;
    sqlite3_bind_text(s, 1, product, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, sha256, -1, SQLITE_TRANSIENT);
    return db_run(&st->w, s);
}

store_status store_image_delete(store_t *st, const char *product, const char *sha256)
{
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256))
        return STORE_ERR_INVALID;
    pthread_mutex_t *mu = blob_lock(st, sha256);
    pthread_mutex_lock(mu);
    char ext[STORE_EXT_MAX] = "";
    store_status r = db_wbegin(st);
    if (r == STORE_OK)
        r = db_wend(st, image_row_delete(st, product, sha256, ext));
    if (r == STORE_OK) {
        char path[STORE_PATH_MAX];
        /* Files are per product, so once the row is gone nothing else refers
         * to this one. */
        if (store_image_path(st, product, sha256, ext, path, sizeof path) == STORE_OK)
            unlink(path);
    }
    pthread_mutex_unlock(mu);
    return r;
}

store_status store_image_count(store_t *st, const char *product, int64_t *n)
{
    static const char SQL[] = "SELECT count(*) FROM images WHERE product = ?1";
    if (n)
        *n = 0;
    if (!store_valid_product_id(product))
        return STORE_ERR_INVALID;
    int pe = store_product_exists_r(st, product);
    if (pe <= 0)
        return pe == 0 ? STORE_ERR_NOT_FOUND : STORE_ERR_DB;
    return db_count(st, SQL, product, n);
}

store_status store_image_count_all(store_t *st, int64_t *n)
{
    static const char SQL[] = "SELECT count(*) FROM images";
    return db_count(st, SQL, NULL, n);
}
