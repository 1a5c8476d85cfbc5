/*
 * base_file.h - the durable file writes of the process.
 *
 *     char err[512];
 *     if (file_write_durable(path, key, len, 0600, err, sizeof err) != 0)
 *         log_error("api", "%s", err);
 *
 * After it returns 0 the file holds data, whole, and survives a power cut:
 * the bytes go to a temp file "<path>.tmp-XXXXXX" in the same directory, are
 * fsync'ed, renamed over path (atomic: a reader sees the old file or the new
 * one, never a part), and the directory is fsync'ed so that the rename
 * itself is on disk. The temp name contains ".tmp-" so that a start-up sweep
 * (store_sweep_temp) removes one left by a crash.
 */
#ifndef CFA_BASE_FILE_H
#define CFA_BASE_FILE_H

#include <stddef.h>
#include <sys/types.h>

/* Writes data[0..len) to path with exactly mode (the umask does not apply: a
 * secret's mode must not depend on the caller's umask). The directory must
 * exist. 0 on success; -1 with errno of the failed step and "STEP FILE:
 * REASON" in err (err may be NULL), the temp file removed. A failure of the
 * last step (fsync of the directory) leaves the new file in place, not
 * known to be durable. */
int file_write_durable(const char *path, const void *data, size_t len, mode_t mode, char *err,
                       size_t errlen);

/* The same without either fsync: the file is whole or absent after a crash
 * of the process (the kernel keeps what was written), but a power cut may
 * lose it until the file system is synced. For many files that become
 * durable together with one file_sync_fs (the inspections' group commit):
 * one flush instead of two per file. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, char *err,
                      size_t errlen);

/* Flushes everything written to the file system that holds dir (syncfs):
 * afterwards every file_write_atomic made before it survives a power cut.
 * 0, or -1 with errno and the reason in err. */
int file_sync_fs(const char *dir, char *err, size_t errlen);

#endif
