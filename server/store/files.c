/*
 * files.c - the store's file primitives: directories, the durable writer
 * (temp file, fsync, rename, fsync dir) that every image and inspection file
 * goes through, tree removal, and the start-up sweep of temp files that an
 * interrupted durable write leaves behind.
 */
#define _GNU_SOURCE
#include "store_int.h"

#include "base_file.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *path, mode_t mode)
{
    char tmp[STORE_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* A full disk is reported as such (507 in the API), anything else as I/O. */
static store_status errno_status(int e)
{
    return e == ENOSPC ? STORE_ERR_FULL : STORE_ERR_IO;
}

/* server/base's durable write (temp, fsync, rename, fsync of the directory)
 * after creating the directory; 0600 and 0700: the data directory is not
 * for other users. */
static store_status write_file(const char *dir, const char *final_path, const void *data,
                               size_t len, int durable)
{
    if (fs_mkdir_p(dir, 0700) != 0) {
        int e = errno;
        store_set_error("mkdir %s: %s", dir, strerror(e));
        return errno_status(e);
    }
    char err[512];
    int rc = durable ? file_write_durable(final_path, data, len, 0600, err, sizeof err)
                     : file_write_atomic(final_path, data, len, 0600, err, sizeof err);
    if (rc != 0) {
        int e = errno;
        store_set_error("%s", err);
        return errno_status(e);
    }
    return STORE_OK;
}

store_status fs_write_durable(const char *dir, const char *final_path, const void *data,
                              size_t len)
{
    return write_file(dir, final_path, data, len, 1);
}

store_status fs_write_atomic(const char *dir, const char *final_path, const void *data,
                             size_t len)
{
    return write_file(dir, final_path, data, len, 0);
}

store_status fs_sync(const char *dir)
{
    char err[512];
    if (file_sync_fs(dir, err, sizeof err) != 0) {
        int e = errno;
        store_set_error("%s", err);
        return errno_status(e);
    }
    return STORE_OK;
}

static int rm_tree_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void fs_rm_tree(const char *path)
{
    nftw(path, rm_tree_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* nftw() has no user pointer; the sweep runs once, single-threaded, at start-up */
static int sweep_count;

static int sweep_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    const char *base = path + ftw->base;
    size_t bl = strlen(base);
    (void)sb;
    if (flag != FTW_F)
        return 0;
    if (strstr(base, ".tmp-") != NULL || (bl > 4 && strcmp(base + bl - 4, ".tmp") == 0)) {
        if (unlink(path) == 0)
            sweep_count++;
    }
    return 0;
}

store_status store_sweep_temp(const char *data_dir, int *removed)
{
    struct stat sb;
    if (removed)
        *removed = 0;
    if (data_dir == NULL)
        return STORE_ERR_INVALID;
    if (stat(data_dir, &sb) != 0)
        return errno == ENOENT ? STORE_OK : STORE_ERR_IO;
    sweep_count = 0;
    if (nftw(data_dir, sweep_cb, 16, FTW_PHYS) != 0)
        return STORE_ERR_IO;
    if (removed)
        *removed = sweep_count;
    return STORE_OK;
}

/* ------------------------------------------------------------ write health */

void store_note_write(store_t *st, store_status s, const char *why, int shows_space)
{
    pthread_mutex_lock(&st->hmu);
    if (s == STORE_OK) {
        /* a row alone can fit into pages the WAL already has: only a file
         * written (or the probe) shows that there is room again */
        if (st->health != STORE_ERR_FULL || shows_space)
            st->health = STORE_OK;
    } else if (s == STORE_ERR_FULL || s == STORE_ERR_IO || s == STORE_ERR_DB ||
               s == STORE_ERR_BUSY || s == STORE_ERR_NOMEM) {
        st->health = s;
        snprintf(st->health_why, sizeof st->health_why, "%s", why ? why : "");
    }
    pthread_mutex_unlock(&st->hmu);
}

store_status store_write_health(store_t *st, char *why, size_t len)
{
    pthread_mutex_lock(&st->hmu);
    store_status s = st->health;
    if (why && len > 0)
        snprintf(why, len, "%s", s == STORE_OK ? "" : st->health_why);
    pthread_mutex_unlock(&st->hmu);
    return s;
}

/* Room the probe must find: about what one inspection with its files needs. */
#define PROBE_BYTES (1 << 20)

store_status store_write_probe(store_t *st)
{
    char path[STORE_PATH_MAX];
    snprintf(path, sizeof path, "%s/inspections/probe.tmp-%ld", st->dir, (long)gettid());
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int e = fd < 0 ? errno : posix_fallocate(fd, 0, PROBE_BYTES);
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    if (e != 0) {
        store_set_error("cannot reserve %d bytes in %s: %s", PROBE_BYTES, st->dir, strerror(e));
        return errno_status(e);
    }
    /* the space is there again: the next write may succeed */
    store_note_write(st, STORE_OK, NULL, 1);
    return STORE_OK;
}
