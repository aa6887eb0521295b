/* idset.c: the set of line item identities the billing_export input has emitted, bounded, saved atomically. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "idset.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "syncdir.h"

#define IDSET_MAGIC "pipit-billing-export-state 1"

/* The slot index to start probing at: the identities are digests already. */
static size_t idset_hash(const unsigned char id[IDSET_ID_LEN], size_t mask)
{
    uint64_t h;

    memcpy(&h, id, sizeof h);
    return (size_t)h & mask;
}

/* Rebuild the slots for at least want entries at a load under one half. */
static int idset_rehash(struct idset *s, size_t want)
{
    size_t n = 16;

    while (n < 2 * want)
        n *= 2;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = idset_hash(s->e[i].id, n - 1);
        while (slots[j])
            j = (j + 1) & (n - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = n;
    return 0;
}

struct idset_entry *idset_find(const struct idset *s, const unsigned char id[IDSET_ID_LEN])
{
    if (!s->nslots)
        return NULL;
    for (size_t j = idset_hash(id, s->nslots - 1); s->slots[j]; j = (j + 1) & (s->nslots - 1)) {
        struct idset_entry *e = &s->e[s->slots[j] - 1];
        if (!memcmp(e->id, id, IDSET_ID_LEN))
            return e;
    }
    return NULL;
}

struct idset_entry *idset_add(struct idset *s, const unsigned char id[IDSET_ID_LEN],
                              int64_t end_ns, uint64_t tag)
{
    if (s->n >= UINT32_MAX - 1)
        return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct idset_entry *e = realloc(s->e, cap * sizeof *e);
        if (!e)
            return NULL;
        s->e = e;
        s->cap = cap;
    }
    if (2 * (s->n + 1) > s->nslots && idset_rehash(s, s->n + 1) != 0)
        return NULL;
    struct idset_entry *e = &s->e[s->n];
    memcpy(e->id, id, IDSET_ID_LEN);
    e->end_ns = end_ns;
    e->tag = tag;
    size_t j = idset_hash(id, s->nslots - 1);
    while (s->slots[j])
        j = (j + 1) & (s->nslots - 1);
    s->slots[j] = (uint32_t)++s->n;
    return e;
}

void idset_commit(struct idset *s, uint64_t token)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].tag && s->e[i].tag <= token)
            s->e[i].tag = 0;
}

/* Keep the entries keep() says yes to, in order, and rebuild the slots. */
static void idset_filter(struct idset *s, int (*keep)(const struct idset_entry *, void *),
                         void *arg)
{
    size_t o = 0;

    for (size_t i = 0; i < s->n; i++)
        if (keep(&s->e[i], arg))
            s->e[o++] = s->e[i];
    s->n = o;
    /* the slots only shrink in use: a rebuild at the same size cannot fail
     * for want of memory when it is done in place */
    memset(s->slots, 0, s->nslots * sizeof *s->slots);
    for (size_t i = 0; i < s->n; i++) {
        size_t j = idset_hash(s->e[i].id, s->nslots - 1);
        while (s->slots[j])
            j = (j + 1) & (s->nslots - 1);
        s->slots[j] = (uint32_t)(i + 1);
    }
}

static int idset_keep_committed(const struct idset_entry *e, void *arg)
{
    (void)arg;
    return e->tag == 0;
}

void idset_drop_pending(struct idset *s)
{
    if (s->n)
        idset_filter(s, idset_keep_committed, NULL);
}

static int idset_cmp_end(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

struct idset_cut {
    int64_t end_ns;                     /* the latest end dropped */
    size_t keep;                        /* entries that end then still kept */
};

/* Keep what waits for an ack, what ended after the cut, and of what ended
 * at the cut exactly, as many as are to be kept. */
static int idset_keep_newer(const struct idset_entry *e, void *arg)
{
    struct idset_cut *c = arg;

    if (e->tag || e->end_ns > c->end_ns)
        return 1;
    if (e->end_ns == c->end_ns && c->keep > 0) {
        c->keep--;
        return 1;
    }
    return 0;
}

size_t idset_bound(struct idset *s, size_t max)
{
    size_t committed = 0;

    for (size_t i = 0; i < s->n; i++)
        committed += s->e[i].tag == 0;
    if (committed <= max)
        return 0;
    int64_t *ends = malloc(committed * sizeof *ends);
    if (!ends)
        return (size_t)-1;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->e[i].tag == 0)
            ends[k++] = s->e[i].end_ns;
    qsort(ends, committed, sizeof *ends, idset_cmp_end);
    size_t drop = committed - max;
    int64_t cut = ends[drop - 1];       /* the latest end dropped */
    size_t at_cut_dropped = 0, at_cut = 0;
    for (size_t i = 0; i < committed; i++) {
        at_cut += ends[i] == cut;
        at_cut_dropped += ends[i] == cut && i < drop;
    }
    free(ends);
    struct idset_cut c = { cut, at_cut - at_cut_dropped };
    size_t before = s->n;
    idset_filter(s, idset_keep_newer, &c);
    if (cut > s->horizon_ns)
        s->horizon_ns = cut;
    return before - s->n;
}

void idset_free(struct idset *s)
{
    free(s->e);
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static void idset_hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int idset_unhex(unsigned char *out, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = in[2 * i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

int idset_save(const struct idset *s, const char *path, const void *validator, size_t vlen,
               char *why, size_t size)
{
    char tmp[4200], hex[2 * IDSET_ID_LEN + 1];
    FILE *f = NULL;
    int fd = -1;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        snprintf(why, size, "%s: path too long", path);
        return -1;
    }
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
        !(f = fdopen(fd, "w")))
        goto fail;
    fd = -1;
    fprintf(f, "%s\nhorizon %" PRId64 "\nvalidator ", IDSET_MAGIC, s->horizon_ns);
    if (vlen == 0) {
        fputc('-', f);
    } else {
        for (size_t i = 0; i < vlen; i++)
            fprintf(f, "%02x", ((const unsigned char *)validator)[i]);
    }
    fputc('\n', f);
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].tag)
            continue;
        idset_hex(hex, s->e[i].id, IDSET_ID_LEN);
        fprintf(f, "%s %" PRId64 "\n", hex, s->e[i].end_ns);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        goto fail;
    syncdir_of(path);                   /* the rename is durable once the directory is */
    return 0;
fail:
    snprintf(why, size, "cannot write %s: %s", tmp, strerror(errno));
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return -1;
}

int idset_load(struct idset *s, const char *path, char **validator, size_t *vlen, char *why,
               size_t size)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    unsigned char id[IDSET_ID_LEN];

    *validator = NULL;
    *vlen = 0;
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(why, size, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (lineno == 1) {
            if (strcmp(line, IDSET_MAGIC) != 0)
                goto bad;
        } else if (!strncmp(line, "horizon ", 8)) {
            char *end;
            errno = 0;
            s->horizon_ns = strtoll(line + 8, &end, 10);
            if (*end || errno)
                goto bad;
        } else if (!strncmp(line, "validator ", 10)) {
            const char *h = line + 10;
            size_t hl = strlen(h);
            if (strcmp(h, "-") != 0) {
                if (hl % 2 || !(*validator = malloc(hl / 2 + 1)) ||
                    idset_unhex((unsigned char *)*validator, h, hl / 2))
                    goto bad;
                (*validator)[hl / 2] = '\0';
                *vlen = hl / 2;
            }
        } else {
            char *end;
            if (n < 2 * IDSET_ID_LEN + 2 || line[2 * IDSET_ID_LEN] != ' ' ||
                idset_unhex(id, line, IDSET_ID_LEN))
                goto bad;
            errno = 0;
            int64_t e = strtoll(line + 2 * IDSET_ID_LEN + 1, &end, 10);
            if (*end || errno)
                goto bad;
            if (!idset_find(s, id) && !idset_add(s, id, e, 0)) {
                snprintf(why, size, "%s: out of memory", path);
                goto fail;
            }
        }
    }
    if (ferror(f)) {
        snprintf(why, size, "cannot read %s: %s", path, strerror(errno));
        goto fail;
    }
    if (lineno == 0) {
        lineno = 1;
        goto bad;
    }
    free(line);
    fclose(f);
    return 0;
bad:
    snprintf(why, size, "%s:%u: not a billing_export state line", path, lineno);
fail:
    free(line);
    fclose(f);
    free(*validator);
    *validator = NULL;
    *vlen = 0;
    idset_free(s);
    return -1;
}
