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

/* What image_from_row needs to fill each image's path (store_image_list_all). */
typedef struct {
    store_t *st;
    const char *product;
} image_path_ctx;

/* ctx: an image_path_ctx when the path is wanted, else NULL. */
static void image_from_row(sqlite3_stmt *s, void *elem, void *ctx)
{
    store_image_t *im = elem;
    db_col_copy(s, 0, im->sha256, sizeof im->sha256);
    db_col_copy(s, 1, im->ext, sizeof im->ext);
    im->width = sqlite3_column_int(s, 2);
    im->height = sqlite3_column_int(s, 3);
    im->bytes = sqlite3_column_int64(s, 4);
    im->created_at = sqlite3_column_int64(s, 5);
    const image_path_ctx *pc = ctx;
    char path[STORE_PATH_MAX];
    if (pc && store_image_path(pc->st, pc->product, im->sha256, im->ext, path,
                               sizeof path) == STORE_OK)
        im->path = xstrdup(path);
}

/* Only the path is owned (store_image_t has no public clear). */
static void image_clear(void *elem)
{
    store_image_t *im = elem;
    free(im->path);
}

static const db_rowtype IMAGE_ROWS = {sizeof(store_image_t), image_from_row, image_clear,
                                      offsetof(store_image_t, sha256), STORE_SHA256_HEX};

void store_images_free(store_image_t *arr, size_t n)
{
    db_free_rows(&IMAGE_ROWS, arr, n);
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
    db_query q = {SQL, {DB_TEXT(product), DB_TEXT(sha256)}, NULL, 0};
    return db_get(st, &q, &IMAGE_ROWS, out);
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

/* The image as store_image_put reports it. */
static void image_view(const image_new *im, int64_t now, store_image_t *out)
{
    memset(out, 0, sizeof *out);
    copy_str(out->sha256, sizeof out->sha256, im->sha);
    copy_str(out->ext, sizeof out->ext, im->ext);
    out->width = im->width;
    out->height = im->height;
    out->bytes = (int64_t)im->len;
    out->created_at = now;
}

/* Inserts the row of an image whose file is durable, with ev (may be NULL)
 * when the row is new. *changed: 1 if a row was added (0 when one already
 * existed). */
static store_status image_row_insert(store_t *st, const image_new *im, int64_t now,
                                     int *changed, store_event_t *ev)
{
    static const char SQL[] = "INSERT OR IGNORE INTO images(product, sha256, ext, width, "
                              "height, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    db_query q = {SQL, {DB_TEXT(im->product), DB_TEXT(im->sha), DB_TEXT(im->ext),
                        DB_INT(im->width), DB_INT(im->height), DB_INT(im->len), DB_INT(now)},
                  NULL, 0};
    r = db_wrun(st, &q);
    *changed = r == STORE_OK && sqlite3_changes(st->w.db) > 0;
    if (*changed && ev != NULL) {
        store_image_t view;
        image_view(im, now, &view);
        r = store_event_row_w(st, ev, &view);
    }
    r = store_wend_event(st, r, *changed ? ev : NULL);
    if (r != STORE_OK)
        *changed = 0;
    return r;
}

/* store_image_put with the sha's lock held: an existing row is the answer,
 * else the file is written, and only then the row that points at it. */
static store_status image_put_locked(store_t *st, const image_new *im, store_image_t *out,
                                     int *changed, store_event_t *ev)
{
    store_image_t cur;
    store_status r = store_image_get(st, im->product, im->sha, &cur);
    if (r == STORE_OK && out)
        *out = cur;
    if (r != STORE_ERR_NOT_FOUND)
        return r;
    r = store_product_check_r(st, im->product);
    if (r != STORE_OK)
        return r;
    char path[STORE_PATH_MAX];
    r = image_file_write(st, im, path, sizeof path);
    if (r != STORE_OK)
        return r;
    int64_t now = store_now_ms();
    r = image_row_insert(st, im, now, changed, ev);
    if (r != STORE_OK) {
        /* The product vanished or the insert failed: do not leave an orphan. */
        unlink(path);
        return r;
    }
    if (out)
        image_view(im, now, out);
    return STORE_OK;
}

store_status store_image_put(store_t *st, const char *product, const void *data, size_t len,
                             int width, int height, const char *ext, store_image_t *out,
                             int *created, store_event_t *ev)
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
    store_status r = image_put_locked(st, &im, out, &changed, ev);
    pthread_mutex_unlock(mu);
    if (r == STORE_OK && created)
        *created = changed;
    return r;
}

store_status store_image_list(store_t *st, const char *product, size_t limit,
                              const char *after, store_image_t **out, size_t *n,
                              char next[STORE_SHA256_HEX])
{
    static const char SQL[] = "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 AND "
                              "sha256 > ?2 ORDER BY sha256 LIMIT ?3";
    if (!db_list_reset(out, n, next))
        return STORE_ERR_INVALID;
    if (after && *after && !store_valid_sha256(after))
        return STORE_ERR_INVALID;
    store_status r = store_product_check_r(st, product);
    if (r != STORE_OK)
        return r;
    limit = db_list_limit(limit);
    db_query q = {SQL, {DB_TEXT(product), DB_TEXT(after ? after : ""), DB_INT(limit + 1)},
                  NULL, limit};
    return db_list(st, &q, &IMAGE_ROWS, out, n, next);
}

store_status store_image_list_all(store_t *st, const char *product, store_image_t **out,
                                  size_t *n)
{
    static const char SQL[] =
        "SELECT " IMAGE_COLS " FROM images WHERE product = ?1 ORDER BY created_at, sha256";
    if (!db_list_reset(out, n, NULL))
        return STORE_ERR_INVALID;
    store_status r = store_product_check_r(st, product);
    if (r != STORE_OK)
        return r;
    image_path_ctx pc = {st, product};
    db_query q = {SQL, {DB_TEXT(product)}, &pc, 0};
    return db_list(st, &q, &IMAGE_ROWS, out, n, NULL);
}

/* Deletes the row inside a write transaction; ext receives the file's
 * extension. */
static store_status image_row_delete(store_t *st, const char *product, const char *sha256,
                                     char ext[STORE_EXT_MAX])
{
    static const char SQL_EXT[] = "SELECT ext FROM images WHERE product = ?1 AND sha256 = ?2";
    static const char SQL_DEL[] = "DELETE FROM images WHERE product = ?1 AND sha256 = ?2";
    db_query q = {SQL_EXT, {DB_TEXT(product), DB_TEXT(sha256)}, NULL, 0};
    store_status r = db_get_text_w(st, &q, ext, STORE_EXT_MAX);
    if (r != STORE_OK)
        return r;
    q.sql = SQL_DEL; /* same parameters */
    return db_wrun(st, &q);
}

store_status store_image_delete(store_t *st, const char *product, const char *sha256,
                                store_event_t *ev)
{
    if (!store_valid_product_id(product) || !store_valid_sha256(sha256))
        return STORE_ERR_INVALID;
    pthread_mutex_t *mu = blob_lock(st, sha256);
    pthread_mutex_lock(mu);
    char ext[STORE_EXT_MAX] = "";
    store_status r = db_wbegin(st);
    if (r == STORE_OK) {
        r = image_row_delete(st, product, sha256, ext);
        if (r == STORE_OK)
            r = store_event_row_w(st, ev, NULL);
        r = store_wend_event(st, r, ev);
    }
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
    store_status r = store_product_check_r(st, product);
    return r != STORE_OK ? r : db_count(st, SQL, product, n);
}

store_status store_image_count_all(store_t *st, int64_t *n)
{
    static const char SQL[] = "SELECT count(*) FROM images";
    return db_count(st, SQL, NULL, n);
}
