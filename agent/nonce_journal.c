/* nonce_journal.c: the nonces of accepted commands, kept on disk until they expire, so that none runs twice. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "fsutil.h"
#include "log.h"
#include "nonce_journal.h"

#define LINE_MAX_LEN (NONCE_HEX_LEN + 1 + 20 + 1)  /* nonce, blank, int64, newline */

struct entry {
    uint8_t nonce[NONCE_HEX_LEN / 2];
    int64_t expires_at;
};

struct nonce_journal {
    char *path;
    int fd;                             /* the file, O_APPEND */
    int64_t skew;                       /* seconds kept past expires_at */
    struct entry *e;                    /* live entries, in no order */
    size_t count, cap;
    uint32_t *slots;                    /* hash index: entry index + 1, 0 = empty */
    size_t nslots;                      /* a power of two, > 2 * count */
    size_t lines;                       /* entry lines in the file */
    off_t size;                         /* bytes in the file */
};

static int jfail(int r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int jfail(int r, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Read NONCE_HEX_LEN lowercase hex digits into raw. Returns false if not hex. */
static bool nonce_decode(const char *hex, uint8_t raw[NONCE_HEX_LEN / 2])
{
    for (int i = 0; i < NONCE_HEX_LEN / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
        if (lo < 0)
            return false;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void nonce_encode(const uint8_t raw[NONCE_HEX_LEN / 2], char hex[NONCE_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < NONCE_HEX_LEN / 2; i++) {
        hex[2 * i] = digits[raw[i] >> 4];
        hex[2 * i + 1] = digits[raw[i] & 15];
    }
    hex[NONCE_HEX_LEN] = '\0';
}

static uint32_t nonce_hash(const uint8_t *raw)
{
    uint32_t h;
    memcpy(&h, raw, sizeof h);          /* nonces are random: any four bytes will do */
    return h;
}

/* Slot of nonce in the index: the one holding it, or the empty one where it would go. */
static size_t find_slot(const nonce_journal *j, const uint8_t *raw)
{
    size_t mask = j->nslots - 1, s = nonce_hash(raw) & mask;

    while (j->slots[s] &&
           memcmp(j->e[j->slots[s] - 1].nonce, raw, NONCE_HEX_LEN / 2) != 0)
        s = (s + 1) & mask;
    return s;
}

/* Rebuild the index for count entries, growing it when needed. */
static int reindex(nonce_journal *j)
{
    size_t want = j->nslots ? j->nslots : 64;
    while (want <= 2 * j->count)
        want *= 2;
    if (want != j->nslots) {
        uint32_t *s = calloc(want, sizeof *s);
        if (!s)
            return PIPIT_ENOMEM;
        free(j->slots);
        j->slots = s;
        j->nslots = want;
    } else {
        memset(j->slots, 0, j->nslots * sizeof *j->slots);
    }
    for (size_t i = 0; i < j->count; i++)
        j->slots[find_slot(j, j->e[i].nonce)] = (uint32_t)(i + 1);
    return PIPIT_OK;
}

/*
 * Add an entry in memory; a nonce already there keeps the later expiry.
 * Returns PIPIT_OK, PIPIT_EFULL or PIPIT_ENOMEM.
 */
static int add_entry(nonce_journal *j, const uint8_t *raw, int64_t expires_at)
{
    size_t s = find_slot(j, raw);
    if (j->slots[s]) {
        struct entry *e = &j->e[j->slots[s] - 1];
        if (expires_at > e->expires_at)
            e->expires_at = expires_at;
        return PIPIT_OK;
    }
    if (j->count >= NONCE_JOURNAL_MAX)
        return PIPIT_EFULL;
    if (j->count == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64;
        struct entry *e = realloc(j->e, cap * sizeof *e);
        if (!e)
            return PIPIT_ENOMEM;
        j->e = e;
        j->cap = cap;
    }
    memcpy(j->e[j->count].nonce, raw, NONCE_HEX_LEN / 2);
    j->e[j->count].expires_at = expires_at;
    j->count++;
    if (2 * j->count >= j->nslots)
        return reindex(j);
    j->slots[s] = (uint32_t)j->count;
    return PIPIT_OK;
}

static bool stale(const nonce_journal *j, int64_t expires_at, int64_t now)
{
    return expires_at < INT64_MAX - j->skew && expires_at + j->skew < now;
}

static int format_line(char *line, const uint8_t *raw, int64_t expires_at)
{
    char hex[NONCE_HEX_LEN + 1];
    nonce_encode(raw, hex);
    return snprintf(line, LINE_MAX_LEN + 1, "%s %" PRId64 "\n", hex, expires_at);
}

/* Write every live entry to path.tmp, fsync, rename over path, reopen. */
static int rewrite(nonce_journal *j, char *err, size_t errlen)
{
    char tmp[4200], line[LINE_MAX_LEN + 1];
    size_t cap = 65536, used = 0;
    char *out = malloc(cap);
    off_t size = 0;
    int fd = -1;

    if (!out)
        return jfail(PIPIT_ENOMEM, err, errlen, "%s: out of memory", j->path);
    snprintf(tmp, sizeof tmp, "%s.tmp", j->path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    for (size_t i = 0; i <= j->count; i++) {
        int n = i < j->count ? format_line(line, j->e[i].nonce, j->e[i].expires_at) : 0;
        if (used + (size_t)n > cap || i == j->count) {
            if (used && write(fd, out, used) != (ssize_t)used)
                goto fail;
            size += (off_t)used;
            used = 0;
        }
        memcpy(out + used, line, (size_t)n);
        used += (size_t)n;
    }
    if (fsync(fd) != 0 || rename(tmp, j->path) != 0)
        goto fail;
    free(out);
    fs_sync_dir(j->path);
    close(j->fd);
    close(fd);
    j->fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (j->fd < 0)
        return jfail(PIPIT_EIO, err, errlen, "%s: cannot reopen after rewriting it: %s",
                     j->path, strerror(errno));
    j->lines = j->count;
    j->size = size;
    return PIPIT_OK;
fail:
    {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        free(out);
        return jfail(PIPIT_EIO, err, errlen, "%s: cannot rewrite without its stale entries: "
                     "%s", j->path, strerror(e));
    }
}

int nonce_journal_prune(nonce_journal *j, int64_t now, char *err, size_t errlen)
{
    size_t kept = 0;

    for (size_t i = 0; i < j->count; i++)
        if (!stale(j, j->e[i].expires_at, now))
            j->e[kept++] = j->e[i];
    if (kept != j->count) {
        j->count = kept;
        if (reindex(j) != PIPIT_OK)
            return jfail(PIPIT_ENOMEM, err, errlen, "%s: out of memory", j->path);
    }
    if (j->fd >= 0 && j->lines - j->count > j->lines / 2)
        return rewrite(j, err, errlen);
    return PIPIT_OK;
}

/*
 * Parse one complete line (without its newline) into raw and *expires_at.
 * Returns false when it is not "<32 hex> <decimal>".
 */
static bool parse_line(const char *line, size_t len, uint8_t *raw, int64_t *expires_at)
{
    if (len < NONCE_HEX_LEN + 2 || len > LINE_MAX_LEN - 1 || line[NONCE_HEX_LEN] != ' ' ||
        !nonce_decode(line, raw))
        return false;
    int64_t v = 0;
    for (size_t i = NONCE_HEX_LEN + 1; i < len; i++) {
        if (line[i] < '0' || line[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (line[i] - '0');
    }
    *expires_at = v;
    return true;
}

/* Read the whole file of fd into memory. Returns PIPIT_OK or PIPIT_EIO/ENOMEM. */
static int read_all(int fd, char **data, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *p = malloc(cap);

    if (!p)
        return PIPIT_ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap > (size_t)NONCE_JOURNAL_MAX * 2 * LINE_MAX_LEN) {
                free(p);
                errno = EFBIG;
                return PIPIT_EIO;
            }
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                return PIPIT_ENOMEM;
            }
            p = q;
            cap *= 2;
        }
        ssize_t got = read(fd, p + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            free(p);
            return PIPIT_EIO;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    *data = p;
    *len = n;
    return PIPIT_OK;
}

int nonce_journal_open(nonce_journal **out, const char *path, int64_t skew, int64_t now,
                       char *err, size_t errlen)
{
    nonce_journal *j;
    char *data = NULL;
    size_t len = 0, pos = 0, lineno = 0;
    struct stat st;
    int r;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!path || !*path || skew < 0)
        return jfail(PIPIT_EINVAL, err, errlen, "nonce journal: no path, or a negative skew");
    j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path))) {
        free(j);
        return jfail(PIPIT_ENOMEM, err, errlen, "%s: out of memory", path);
    }
    j->skew = skew;
    j->fd = -1;
    if ((r = reindex(j)) != PIPIT_OK) {
        jfail(r, err, errlen, "%s: out of memory", path);
        goto fail;
    }
    bool existed = stat(path, &st) == 0;
    j->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (j->fd < 0) {
        r = jfail(PIPIT_EIO, err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (!existed)
        fs_sync_dir(path);              /* the file itself must survive a crash */
    if ((r = read_all(j->fd, &data, &len)) != PIPIT_OK) {
        jfail(r, err, errlen, "%s: cannot read: %s", path,
              r == PIPIT_ENOMEM ? "out of memory" : strerror(errno));
        goto fail;
    }
    while (pos < len) {
        const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
        uint8_t raw[NONCE_HEX_LEN / 2];
        int64_t exp;

        lineno++;
        if (!nl) {
            /* A crash during an append: that command never ran (the append
             * is fsync'd before it would), so its nonce is not needed. */
            log_warn("nonce_journal", "%s: line %zu is cut short (%zu bytes, no newline); "
                     "ignoring it", path, lineno, len - pos);
            if (ftruncate(j->fd, (off_t)pos) != 0 || fsync(j->fd) != 0) {
                r = jfail(PIPIT_EIO, err, errlen, "%s: cannot cut off the torn last line: "
                          "%s", path, strerror(errno));
                goto fail;
            }
            len = pos;
            break;
        }
        if (!parse_line(line, (size_t)(nl - line), raw, &exp)) {
            r = jfail(PIPIT_EPARSE, err, errlen, "%s:%zu: damaged entry (want \"<32 hex "
                      "digits> <expires_at>\"); refusing to forget a nonce that may have "
                      "run", path, lineno);
            goto fail;
        }
        if (!stale(j, exp, now) && (r = add_entry(j, raw, exp)) != PIPIT_OK) {
            jfail(r, err, errlen, "%s: %s", path, r == PIPIT_EFULL ?
                  "more live entries than the journal holds" : "out of memory");
            goto fail;
        }
        j->lines++;
        pos = (size_t)(nl - data) + 1;
    }
    free(data);
    data = NULL;
    j->size = (off_t)len;
    if ((r = nonce_journal_prune(j, now, err, errlen)) != PIPIT_OK)
        goto fail;
    *out = j;
    return PIPIT_OK;
fail:
    free(data);
    nonce_journal_close(j);
    return r;
}

bool nonce_journal_seen(const nonce_journal *j, const char *nonce)
{
    uint8_t raw[NONCE_HEX_LEN / 2];

    if (!nonce || strlen(nonce) != NONCE_HEX_LEN || !nonce_decode(nonce, raw))
        return false;
    return j->slots[find_slot(j, raw)] != 0;
}

int nonce_journal_record(nonce_journal *j, const char *nonce, int64_t expires_at,
                         int64_t now, char *err, size_t errlen)
{
    uint8_t raw[NONCE_HEX_LEN / 2];
    char line[LINE_MAX_LEN + 1];
    int r;

    if (!nonce || strlen(nonce) != NONCE_HEX_LEN || !nonce_decode(nonce, raw) ||
        expires_at < 0)
        return jfail(PIPIT_EINVAL, err, errlen, "%s: not a nonce of %d hex digits", j->path,
                     NONCE_HEX_LEN);
    if (j->slots[find_slot(j, raw)])
        return jfail(PIPIT_EINVAL, err, errlen, "%s: nonce %s is already recorded", j->path,
                     nonce);
    if (j->fd < 0)
        return jfail(PIPIT_EIO, err, errlen, "%s: not open", j->path);
    if ((r = nonce_journal_prune(j, now, err, errlen)) != PIPIT_OK && j->fd < 0)
        return r;                       /* a failed rewrite leaves the old file usable */
    if (j->count >= NONCE_JOURNAL_MAX)
        return jfail(PIPIT_EFULL, err, errlen, "%s: %u live entries already; refusing more "
                     "commands until some expire", j->path, NONCE_JOURNAL_MAX);
    int n = format_line(line, raw, expires_at);
    ssize_t w = write(j->fd, line, (size_t)n);
    if (w != n || fsync(j->fd) != 0) {
        int e = w < 0 ? errno : w != n ? ENOSPC : errno;
        /* leave no torn line for the next append to run into */
        if (ftruncate(j->fd, j->size) != 0)
            log_warn("nonce_journal", "%s: cannot cut off a failed append: %s", j->path,
                     strerror(errno));
        return jfail(PIPIT_EIO, err, errlen, "%s: cannot record nonce: %s", j->path,
                     strerror(e));
    }
    if ((r = add_entry(j, raw, expires_at)) != PIPIT_OK)
        return jfail(r, err, errlen, "%s: out of memory", j->path);  /* on disk all the same */
    j->size += n;
    j->lines++;
    return PIPIT_OK;
}

size_t nonce_journal_count(const nonce_journal *j) { return j->count; }
size_t nonce_journal_lines(const nonce_journal *j) { return j->lines; }
int64_t nonce_journal_skew(const nonce_journal *j) { return j->skew; }

void nonce_journal_close(nonce_journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        close(j->fd);
    free(j->e);
    free(j->slots);
    free(j->path);
    free(j);
}
