/*
 * inspection_files.c - the map / heatmap files of inspections,
 * <data_dir>/inspections/<id[0:7]>/<id>.<name> (ids start with the creation
 * time, so a bucket holds the inspections of about 4.6 hours), and their
 * retention (store_inspections_prune), which deletes old files but keeps
 * the rows.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define PRUNE_BATCH 500 /* inspections per prune round (one transaction) */

/* Inspection file names: [a-z0-9._-]{1,32}, not starting with '.'. */
static int valid_file_name(const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 32 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static store_status inspection_dir(store_t *st, const char *id, char *buf, size_t buflen)
{
    if (!store_valid_id(id))
        return STORE_ERR_INVALID;
    int k = snprintf(buf, buflen, "%s/inspections/%.7s", st->dir, id);
    return (k < 0 || (size_t)k >= buflen) ? STORE_ERR_INVALID : STORE_OK;
}

store_status store_inspection_file_path(store_t *st, const char *id, const char *name,
                                        char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return STORE_ERR_INVALID;
    buf[0] = '\0';
    if (!store_valid_id(id) || !valid_file_name(name))
        return STORE_ERR_INVALID;
    int k = snprintf(buf, buflen, "%s/inspections/%.7s/%s.%s", st->dir, id, id, name);
    if (k < 0 || (size_t)k >= buflen) {
        buf[0] = '\0';
        return STORE_ERR_INVALID;
    }
    return STORE_OK;
}

store_status store_inspection_file_write(store_t *st, const char *id, const char *name,
                                         const void *data, size_t len)
{
    char path[STORE_PATH_MAX], dir[STORE_PATH_MAX];
    if (!data && len > 0)
        return STORE_ERR_INVALID;
    store_status r = store_inspection_file_path(st, id, name, path, sizeof path);
    if (r == STORE_OK)
        r = inspection_dir(st, id, dir, sizeof dir);
    if (r != STORE_OK)
        return r;
    /* no fsync here: the commit of the row that names the file syncs the
     * file system once for its whole group (inspections.c) */
    r = fs_write_atomic(dir, path, data, len);
    store_note_write(st, r, store_last_error(), 1);
    return r;
}

/* Reads all of fd (size from fstat) into a new buffer. */
static store_status read_whole(int fd, void **data, size_t *len)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0)
        return STORE_ERR_IO;
    size_t sz = (size_t)sb.st_size;
    uint8_t *buf = xmalloc(sz);
    size_t got = 0;
    while (got < sz) {
        ssize_t k = read(fd, buf + got, sz - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got != sz) {
        free(buf);
        return STORE_ERR_IO;
    }
    *data = buf;
    *len = sz;
    return STORE_OK;
}

store_status store_inspection_file_read(store_t *st, const char *id, const char *name,
                                        void **data, size_t *len)
{
    if (!data || !len)
        return STORE_ERR_INVALID;
    *data = NULL;
    *len = 0;
    char path[STORE_PATH_MAX];
    store_status r = store_inspection_file_path(st, id, name, path, sizeof path);
    if (r != STORE_OK)
        return r;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        store_set_error("open %s: %s", path, strerror(e));
        return e == ENOENT ? STORE_ERR_NOT_FOUND : STORE_ERR_IO;
    }
    r = read_whole(fd, data, len);
    close(fd);
    return r;
}

/* ------------------------------------------------------------- retention */

void store_inspection_files_remove(store_t *st, const char *id)
{
    char dir[STORE_PATH_MAX];
    if (inspection_dir(st, id, dir, sizeof dir) != STORE_OK)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t il = strlen(id);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, id, il) == 0 && e->d_name[il] == '.')
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
    rmdir(dir); /* only succeeds once the bucket is empty */
}

/* Ids of up to PRUNE_BATCH inspections with images beyond the newest keep. */
static store_status prune_candidates(store_t *st, int64_t keep,
                                     char (*ids)[STORE_ID_LEN], size_t *k)
{
    static const char SQL[] = "SELECT id FROM inspections WHERE has_images = 1 "
                              "ORDER BY id DESC LIMIT ?2 OFFSET ?1";
    *k = 0;
    conn_t *c = db_racquire(st);
    sqlite3_stmt *s = db_prep(c, SQL);
    store_status r = STORE_ERR_DB;
    if (s) {
        sqlite3_bind_int64(s, 1, keep);
        sqlite3_bind_int64(s, 2, PRUNE_BATCH);
        int rc;
        while ((rc = db_step(s)) == SQLITE_ROW && *k < PRUNE_BATCH)
            db_col_copy(s, 0, ids[(*k)++], STORE_ID_LEN);
        r = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? STORE_OK : db_map_rc(c->db, rc);
        db_done(s);
    }
    db_rrelease(st, c);
    return r;
}

/* Clears has_images of k inspections in one transaction. */
static store_status prune_clear_flags(store_t *st, char (*ids)[STORE_ID_LEN], size_t k)
{
    static const char SQL[] = "UPDATE inspections SET has_images = 0 WHERE id = ?1";
    store_status r = db_wbegin(st);
    if (r != STORE_OK)
        return r;
    for (size_t i = 0; i < k && r == STORE_OK; i++) {
        sqlite3_stmt *s = db_prep(&st->w, SQL);
        if (!s) {
            r = STORE_ERR_DB;
            break;
        }
        sqlite3_bind_text(s, 1, ids[i], -1, SQLITE_TRANSIENT);
        r = db_run(&st->w, s);
    }
    return db_wend(st, r);
}

store_status store_inspections_prune(store_t *st, int64_t keep, int64_t *removed)
{
    if (removed)
        *removed = 0;
    if (keep < 0)
        return STORE_ERR_INVALID;
    int64_t total = 0;
    char(*ids)[STORE_ID_LEN] = xcalloc(PRUNE_BATCH, STORE_ID_LEN);
    store_status r;
    for (;;) {
        size_t k = 0;
        r = prune_candidates(st, keep, ids, &k);
        if (r != STORE_OK || k == 0)
            break;
        /* Files first: a crash in between leaves a row that claims images the
         * reader then reports as not found, never an orphaned file. */
        for (size_t i = 0; i < k; i++)
            store_inspection_files_remove(st, ids[i]);
        r = prune_clear_flags(st, ids, k);
        if (r != STORE_OK)
            break;
        total += (int64_t)k;
    }
    free(ids);
    if (removed)
        *removed = total;
    return r;
}
