/* fsutil.h: durable file updates: fsync the directory of a path, replace a file atomically. */
#ifndef PIPIT_FSUTIL_H
#define PIPIT_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/*
 * fsync the directory that holds path ("." for a bare name), so that a
 * create, rename or unlink of path survives a crash. Returns 0, or -1 with
 * errno set.
 */
int fs_sync_dir(const char *path);

/* Write all len bytes at data to fd (again after EINTR or a short write).
 * Returns 0, or -1 with errno set. */
int fs_write_all(int fd, const void *data, size_t len);

/*
 * Replace path with the len bytes at data: they are written to path.tmp
 * (created with mode exactly, not followed if it is a symlink), fsync'd,
 * renamed over path, and the directory is fsync'd, so that a crash leaves
 * the old content or the new one, never a mix. Returns 0, or -1 with
 * errno set and path.tmp removed.
 */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

#endif
