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

/*
 * Parse one unsigned decimal number at *p after blanks; advance *p past it.
 * Returns 1 when a number was read, 0 at the end of the line, -1 on
 * anything else (a sign, a letter, an overflow).
 */
int procfile_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\n' || *s == '\0') {
        *p = s;
        return 0;
    }
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\0')
        return -1;
    *out = v;
    *p = s;
    return 1;
}

/*
 * Parse a non-negative decimal with an optional fraction ("0.52", "350735.47") at *p,
 * independently of the C locale. Returns true and advances *p.
 */
bool procfile_decimal(const char **p, double *out)
{
    static const double pow10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                    1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14,
                                    1e15, 1e16, 1e17, 1e18 };
    const char *s = *p;
    uint64_t m = 0;
    int digits = 0, frac = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++, digits++)
        m = m * 10 + (uint64_t)(*s - '0');
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return false;
        for (; *s >= '0' && *s <= '9'; s++, digits++, frac++)
            m = m * 10 + (uint64_t)(*s - '0');
    }
    if (digits > 18)
        return false;                   /* far beyond what the kernel prints */
    /* One division of two exact values: correctly rounded, like strtod. */
    *out = (double)m / pow10[frac];
    *p = s;
    return true;
}
