/* file.c - the durable and the atomic file write, the file-system sync (base_file.h). */
#define _GNU_SOURCE /* mkostemp */
#include "base_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Formats "STEP FILE: strerror(errno)" into err; keeps errno; returns -1. */
static int fail(char *err, size_t errlen, const char *step, const char *file)
{
    int e = errno;
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s %s: %s", step, file, strerror(e));
    errno = e;
    return -1;
}

static int write_full(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The directory part of path ("." when there is none). */
static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, cap, ".");
    else if (slash == path)
        snprintf(dir, cap, "/");
    else
        snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

/* temp file, write, (fsync), rename, (fsync of the directory) */
static int write_replace(const char *path, const void *data, size_t len, mode_t mode, int durable,
                         char *err, size_t errlen)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return fail(err, errlen, "create", path);
    }
    dir_of(path, dir, sizeof dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, "create", path);
    const char *step = NULL;
    if (fchmod(fd, mode) != 0)
        step = "chmod";
    else if (write_full(fd, data, len) != 0)
        step = "write";
    else if (durable && fsync(fd) != 0)
        step = "fsync";
    int e = errno;
    if (close(fd) != 0 && step == NULL) {
        step = "close";
        e = errno;
    }
    if (step == NULL && rename(tmp, path) != 0) {
        step = "rename";
        e = errno;
    }
    if (step != NULL) {
        unlink(tmp);
        errno = e;
        return fail(err, errlen, step, strcmp(step, "rename") == 0 ? path : tmp);
    }
    if (durable && fsync_dir(dir) != 0)
        return fail(err, errlen, "fsync directory", dir);
    return 0;
}

int file_write_durable(const char *path, const void *data, size_t len, mode_t mode, char *err,
                       size_t errlen)
{
    return write_replace(path, data, len, mode, 1, err, errlen);
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                      size_t errlen)
{
    return write_replace(path, data, len, mode, 0, err, errlen);
}

int file_sync_fs(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, "open", dir);
    int rc = syncfs(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc != 0 ? fail(err, errlen, "syncfs", dir) : 0;
}
