/* tail_checkpoint.c: read and write the tail input's checkpoint lines. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* getline, asprintf, fmemopen */
#endif
#include "tail_checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

uint64_t tail_fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/*
 * Each line is "C <hash> <i> <n> <dev> <ino> <offset> <fp_len> <fp> <path>":
 * entry i of n, and the FNV-1a hash of the text after the hash. A line that
 * does not verify is counted in d and skipped. The entries lost are n less
 * the good ones; one when no line is good (n is then unknown), also for a
 * file that is there but empty. Lines of the older format (without "C", not
 * verifiable) are still read.
 */
void tail_ckpt_read(FILE *f, tail_ckpt_add_fn add, void *arg, struct tail_ckpt_damage *d)
{
    char *line = NULL;
    size_t cap = 0, blen = 0, n = 0;
    bool *seen = NULL, have_n = false, any = false;
    ssize_t len;
    int lineno = 0;

    memset(d, 0, sizeof *d);
    while ((len = getline(&line, &cap, f)) > 0) {
        struct tail_ckpt_entry e;
        uintmax_t i, cnt;
        int at = 0;
        char *end;

        lineno++;
        any = true;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[0] >= '0' && line[0] <= '9') {   /* the older format */
            if (sscanf(line, "%ju %ju %ju %u %jx %n", &e.dev, &e.ino, &e.off, &e.fp_len,
                       &e.fp, &at) == 5 &&
                at && e.fp_len <= TAIL_FP_MAX && strlen(line) == (size_t)len &&
                (e.path = line + at, add(arg, &e)))
                continue;
            goto damaged;
        }
        /* "C " 16 hex digits " " body; the body has no NUL byte */
        if (len < 20 || line[0] != 'C' || line[1] != ' ' || line[18] != ' ' ||
            strlen(line) != (size_t)len)
            goto damaged;
        if (strspn(line + 2, "0123456789abcdef") != 16)
            goto damaged;               /* as written: lowercase, 16 digits */
        errno = 0;
        uint64_t h = strtoull(line + 2, &end, 16);
        if (errno || end != line + 18 ||
            h != tail_fnv((const unsigned char *)line + 19, (size_t)len - 19))
            goto damaged;
        if (sscanf(line + 19, "%ju %ju %n", &i, &cnt, &at) != 2 || cnt > (1u << 20) ||
            (have_n && cnt != n))
            goto damaged;
        if (!have_n) {
            n = (size_t)cnt;
            have_n = true;
            seen = calloc(n + 1, sizeof *seen);
            if (!seen)
                break;                  /* then all n are lost */
        }
        if (cnt == 0)
            continue;                   /* the line of an empty table */
        const char *rest = line + 19 + at;
        at = 0;
        if (i < 1 || i > cnt || seen[i] ||
            sscanf(rest, "%ju %ju %ju %u %jx %n", &e.dev, &e.ino, &e.off, &e.fp_len, &e.fp,
                   &at) != 5 ||
            !at || e.fp_len > TAIL_FP_MAX || (e.path = rest + at, !add(arg, &e)))
            goto damaged;
        seen[i] = true;
        continue;
damaged:
        d->bad_lines++;
        if (blen < sizeof d->bad - 16)
            blen += (size_t)snprintf(d->bad + blen, sizeof d->bad - blen, "%s%d",
                                     blen ? "," : "", lineno);
    }
    free(line);
    size_t found = 0;
    for (size_t k = 1; seen && k <= n; k++)
        found += seen[k];
    free(seen);
    d->lost = have_n ? n - found : (d->bad_lines || !any) ? 1 : 0;
}

int tail_ckpt_print(FILE *f, size_t i, size_t n, const struct tail_ckpt_entry *e)
{
    char *body;
    int len = n == 0 ? asprintf(&body, "0 0")
                     : asprintf(&body, "%zu %zu %ju %ju %ju %u %016jx %s", i, n, e->dev, e->ino,
                                e->off, e->fp_len, e->fp, e->path);

    if (len < 0)
        return -1;
    len = fprintf(f, "C %016" PRIx64 " %s\n", tail_fnv((const unsigned char *)body, (size_t)len),
                  body);
    free(body);
    return len < 0 ? -1 : 0;
}
