/*
 * files.c - the store's file primitives: directories, the durable writer
 * (temp file, fsync, rename, fsync dir) that every image and inspection file
 * goes through, tree removal, and the start-up sweep of temp files that an
 * interrupted durable write leaves behind.
 */
#define _GNU_SOURCE
#include "store_int.h"

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

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* A full disk is reported as such (507 in the API), anything else as I/O. */
static store_status errno_status(int e)
{
    return e == ENOSPC ? STORE_ERR_FULL : STORE_ERR_IO;
}

/* Writes all of data, retrying short writes and EINTR; 0 or an errno. */
static int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* Creates tmp exclusively and makes data durable in it. On failure tmp is
 * gone again. */
static store_status write_temp(const char *tmp, const void *data, size_t len)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        store_set_error("open %s: %s", tmp, strerror(errno));
        return STORE_ERR_IO;
    }
    int e = write_all(fd, data, len);
    const char *what = "write";
    if (e == 0 && fsync(fd) != 0) {
        e = errno;
        what = "fsync";
    }
    if (e != 0) {
        store_set_error("%s %s: %s", what, tmp, strerror(e));
        close(fd);
        unlink(tmp);
        return errno_status(e);
    }
    if (close(fd) != 0) {
        store_set_error("close %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return STORE_ERR_IO;
    }
    return STORE_OK;
}

store_status fs_write_durable(const char *dir, const char *final_path, const void *data,
                              size_t len)
{
    if (fs_mkdir_p(dir, 0750) != 0) {
        int e = errno;
        store_set_error("mkdir %s: %s", dir, strerror(e));
        return errno_status(e);
    }
    /* the random suffix keeps concurrent writers of one name apart; the
     * ".tmp-" marks it for store_sweep_temp() after a crash */
    char tmp[STORE_PATH_MAX + 32];
    char rnd[STORE_ID_LEN];
    if (store_random_id(rnd) != 0)
        return STORE_ERR_IO;
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%.16s", final_path, rnd) >= (int)sizeof tmp)
        return STORE_ERR_INVALID;
    store_status r = write_temp(tmp, data, len);
    if (r != STORE_OK)
        return r;
    if (rename(tmp, final_path) != 0) {
        store_set_error("rename %s: %s", final_path, strerror(errno));
        unlink(tmp);
        return STORE_ERR_IO;
    }
    /* the rename itself is durable only once the directory is */
    if (fsync_dir(dir) != 0) {
        store_set_error("fsync dir %s: %s", dir, strerror(errno));
        return STORE_ERR_IO;
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
