/* procfile.c: whole-file reads of /proc and /sys files for the built-in collectors. */
#define _GNU_SOURCE
#include "procfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Map an errno value from open/read/opendir to a PIPIT_E* code. */
int procfile_errno(int e)
{
    switch (e) {
    case ENOENT: case ENOTDIR: return PIPIT_ENOENT;
    case EACCES: case EPERM: return PIPIT_EPERM;
    case ENOMEM: return PIPIT_ENOMEM;
    default: return PIPIT_EIO;
    }
}

/*
 * Read the whole file at path into *buf and NUL-terminate it. *buf has
 * capacity *cap; it starts at initial bytes, doubles as needed and is kept
 * for the next call (the caller frees it with free()). A file that would
 * need a buffer larger than max bytes is refused with PIPIT_ERANGE; initial
 * must not exceed max. Failures are logged through api against ins, naming
 * path. Returns PIPIT_OK with the length in *len (len may be NULL), or a
 * PIPIT_E* code.
 */
int procfile_read(const struct pipit_api *api, pipit_instance *ins,
                  const char *path, size_t max, size_t initial,
                  char **buf, size_t *cap, size_t *len)
{
    char ebuf[128];
    size_t n = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno;
        api->log(ins, PIPIT_LOG_ERROR, "cannot open %s: %s", path,
                 strerror_r(rc, ebuf, sizeof ebuf));
        return procfile_errno(rc);
    }
    for (;;) {
        if (*cap - n < 2) {
            size_t ncap = *cap ? *cap * 2 : initial;
            char *nb;

            if (ncap > max) {
                api->log(ins, PIPIT_LOG_ERROR, "%s is larger than %zu bytes",
                         path, max);
                rc = PIPIT_ERANGE;
                goto fail;
            }
            nb = realloc(*buf, ncap);
            if (!nb) {
                rc = PIPIT_ENOMEM;
                goto fail;
            }
            *buf = nb;
            *cap = ncap;
        }
        ssize_t r = read(fd, *buf + n, *cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = errno;
            api->log(ins, PIPIT_LOG_ERROR, "cannot read %s: %s", path,
                     strerror_r(rc, ebuf, sizeof ebuf));
            rc = procfile_errno(rc);
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    (*buf)[n] = '\0';
    if (len)
        *len = n;
    return PIPIT_OK;
fail:
    close(fd);
    return rc;
}

/*
 * Read at most size - 1 bytes of the file at path (relative to dirfd, or
 * AT_FDCWD) into buf and NUL-terminate it; size must be at least 1. Logs
 * nothing. Returns the length, or -errno when open or read failed.
 */
ssize_t procfile_read_at(int dirfd, const char *path, char *buf, size_t size)
{
    size_t n = 0;
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    while (n < size - 1) {
        ssize_t r = read(fd, buf + n, size - 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;

            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}
