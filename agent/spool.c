/* spool.c: the write-ahead spool: append-only segment files of CRC-checked entries, indexed in memory, bounded on disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>
#include <libdeflate.h>
#include <pipit/plugin.h>
#include "log.h"
#include "spool.h"

/*
 * Entry layout (docs/spool.md), little-endian:
 *   0 magic 89 50 53 45   4 hcrc: CRC-32 of bytes 8..40
 *   8 crc: CRC-32 of bytes 12..40 then the data
 *  12 version  13 kind  14 flags (u16, 0)  16 data length  20 record count
 *  24 batch seq (u64)  32 entry id (u64)   40 data
 */
#define HDR_SIZE 40
#define ENTRY_VERSION 1
#define MAX_DATA (256u << 20)           /* largest entry data ever read */
#define SEG_IDS (UINT64_C(1) << 20)     /* ids of a segment: [first, first + SEG_IDS) */
#define MAX_FIRST (UINT64_C(1) << 62)   /* larger segment names are not ours */
#define SEG_NAME_LEN 20                 /* 16 hex digits + ".seg" */
#define DEFAULT_SEGMENT (16u << 20)
#define WINDOW (256u << 10)             /* read size while scanning */

/* The release state saved by spool_close (docs/spool.md). */
#define REL_NAME "released"
#define REL_TMP "released.tmp"
#define REL_VERSION 2
#define REL_HDR 32
#define REL_MAX (UINT32_C(1) << 22)     /* segments, and owed ranges, at most */

static const unsigned char entry_magic[4] = { 0x89, 'P', 'S', 'E' };
static const unsigned char rel_magic[4] = { 0x89, 'P', 'S', 'R' };

struct sp_entry {
    uint64_t id;                        /* entry id */
    uint64_t seq;                       /* batch sequence number */
    uint64_t off;                       /* offset of its header in the segment */
    uint32_t len;                       /* bytes of data */
    uint32_t count;                     /* records in the batch */
    uint8_t kind;                       /* record kind */
    bool released;                      /* released, dropped, or found damaged */
};

struct seg {
    uint64_t first;                     /* the id in the file name */
    uint64_t size;                      /* bytes in the file */
    struct sp_entry *e;                 /* good entries, in id order */
    size_t n;                           /* entries used */
    size_t cap;                         /* entries allocated */
    size_t live;                        /* entries not released */
    size_t lo;                          /* e[0..lo) are all released */
    int fd;                             /* open descriptor, or -1 */
    bool stuck;                         /* fully released, but unlink failed */
};

struct spool {
    char *dir;                          /* for messages */
    int dfd;                            /* the directory, held with flock */
    uint64_t max_bytes;
    uint64_t segment_bytes;
    uint64_t max_data;                  /* largest data an append takes */
    int policy;
    bool fsync;
    struct seg **segs;                  /* in id order; the last is never deleted */
    size_t nseg;
    size_t capseg;
    struct seg *active;                 /* appends go here; NULL: start a segment */
    struct seg *rseg;                   /* older segment whose fd is kept for reads */
    uint64_t next_id;
    bool state_on_disk;                 /* REL_NAME exists: remove it before a change */
    size_t stuck;                       /* segments with stuck set */
    bool failing;                       /* the last write failed: an episode is on */
    uint64_t episode_errors;            /* failed writes in the current episode */
    uint64_t *dropped;                  /* ids dropped, not yet taken */
    size_t ndropped;
    size_t capdropped;
    struct spool_stats st;
};

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void seg_name(char out[SEG_NAME_LEN + 1], uint64_t first)
{
    snprintf(out, SEG_NAME_LEN + 1, "%016" PRIx64 ".seg", first);
}

/* A segment name is exactly 16 lowercase hex digits and ".seg". */
static bool parse_seg_name(const char *name, uint64_t *first)
{
    uint64_t v = 0;

    if (strlen(name) != SEG_NAME_LEN || strcmp(name + 16, ".seg") != 0)
        return false;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *first = v;
    return true;
}

/* Fill the header of an entry: both CRCs included. */
static void entry_header(unsigned char h[HDR_SIZE], uint64_t id, int kind, uint64_t seq,
                         uint32_t count, const void *data, size_t len)
{
    uint32_t crc;

    memcpy(h, entry_magic, 4);
    h[12] = ENTRY_VERSION;
    h[13] = (unsigned char)kind;
    h[14] = h[15] = 0;
    put32(h + 16, (uint32_t)len);
    put32(h + 20, count);
    put64(h + 24, seq);
    put64(h + 32, id);
    crc = libdeflate_crc32(0, h + 12, HDR_SIZE - 12);
    if (len)
        crc = libdeflate_crc32(crc, data, len);
    put32(h + 8, (uint32_t)crc);
    put32(h + 4, libdeflate_crc32(0, h + 8, HDR_SIZE - 8));
}

/* Decode a header whose magic, header CRC, version, flags and length are
 * right; false otherwise. crc gets the entry CRC it claims. */
static bool header_check(const unsigned char *h, struct sp_entry *e, uint32_t *crc)
{
    if (memcmp(h, entry_magic, 4) != 0 ||
        get32(h + 4) != libdeflate_crc32(0, h + 8, HDR_SIZE - 8) ||
        h[12] != ENTRY_VERSION || h[14] != 0 || h[15] != 0 || get32(h + 16) > MAX_DATA)
        return false;
    memset(e, 0, sizeof *e);
    *crc = get32(h + 8);
    e->kind = h[13];
    e->len = get32(h + 16);
    e->count = get32(h + 20);
    e->seq = get64(h + 24);
    e->id = get64(h + 32);
    return true;
}

/* mkdir -p with mode 0700 for the directories that are made. */
static int make_dirs(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Write all of iov at off, through short writes. 0, or -1 with errno. */
static int pwrite_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Read all of iov at off. 0, 1 at a short end of file, or -1 with errno. */
static int pread_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = preadv(fd, iov, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 1;
        off += (uint64_t)r;
        while (n > 0 && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

/* ---- scanning a segment at open ---- */

struct scan {
    int fd;
    uint64_t size;                      /* bytes in the file (shrinks at a short read) */
    unsigned char *buf;                 /* WINDOW bytes */
    uint64_t base;                      /* file offset of buf[0] */
    size_t len;                         /* bytes valid in buf */
    int err;                            /* errno of a failed read, or 0 */
};

/* Bytes [off, off + n) of the file (n <= WINDOW), or NULL past the end or
 * after a read error. The pointer is valid until the next call. */
static const unsigned char *scan_at(struct scan *sc, uint64_t off, size_t n)
{
    size_t want, got = 0;

    if (off > sc->size || n > sc->size - off)
        return NULL;
    if (off >= sc->base && off - sc->base <= sc->len && n <= sc->len - (off - sc->base))
        return sc->buf + (off - sc->base);
    if (sc->err)
        return NULL;
    want = sc->size - off < WINDOW ? (size_t)(sc->size - off) : WINDOW;
    while (got < want) {
        ssize_t r = pread(sc->fd, sc->buf + got, want - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            sc->err = errno;
            break;
        }
        if (r == 0) {                   /* shorter than fstat said: cut there */
            sc->size = off + got;
            break;
        }
        got += (size_t)r;
    }
    sc->base = off;
    sc->len = got;
    return got >= n ? sc->buf : NULL;
}

/* Offset of the next entry magic at or after off, or sc->size if none.
 * Every byte is searched once: the work is linear in the file size. */
static uint64_t scan_find(struct scan *sc, uint64_t off)
{
    while (off < sc->size && sc->size - off >= 4) {
        const unsigned char *p, *q;
        size_t n;

        if (off >= sc->base && off - sc->base < sc->len && sc->len - (off - sc->base) >= 4) {
            p = sc->buf + (off - sc->base);
            n = sc->len - (size_t)(off - sc->base);
        } else {
            n = sc->size - off < WINDOW ? (size_t)(sc->size - off) : WINDOW;
            p = scan_at(sc, off, n);
            if (!p)
                return sc->size;
        }
        q = memmem(p, n, entry_magic, 4);
        if (q)
            return off + (uint64_t)(q - p);
        off += n - 3;                   /* a magic may straddle the window's end */
    }
    return sc->size;
}

/* CRC of len bytes at off continued from crc; false on a read error. */
static bool scan_crc(struct scan *sc, uint64_t off, uint64_t len, uint32_t *crc)
{
    while (len > 0) {
        size_t n = len < WINDOW ? (size_t)len : WINDOW;
        const unsigned char *p = scan_at(sc, off, n);
        if (!p)
            return false;
        *crc = libdeflate_crc32(*crc, p, n);
        off += n;
        len -= n;
    }
    return true;
}

static int seg_push(struct seg *g, const struct sp_entry *e)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct sp_entry *p = realloc(g->e, cap * sizeof *p);
        if (!p)
            return PIPIT_ENOMEM;
        g->e = p;
        g->cap = cap;
    }
    g->e[g->n++] = *e;
    g->live++;
    return PIPIT_OK;
}

/*
 * Read segment g entry by entry, keeping the good ones: magic, header CRC,
 * version, an id in [g->first, hi) above the previous one, and the entry
 * CRC over header and data. After a bad spot the scan moves on to the next
 * magic byte sequence; an entry whose header is good but whose data is not
 * is skipped whole (its length is trusted once its header CRC matched), so
 * data is CRC-checked at most once and the work stays linear in the file
 * size. Returns PIPIT_OK or PIPIT_ENOMEM.
 */
static int scan_segment(struct seg *g, struct scan *sc, uint64_t hi)
{
    uint64_t pos = 0, last = 0;

    while (pos < sc->size) {
        const unsigned char *h = scan_at(sc, pos, HDR_SIZE);
        struct sp_entry e;
        uint32_t crc;

        if (!h)
            break;                      /* a torn header, or unreadable */
        if (header_check(h, &e, &crc) && e.id >= g->first && e.id < hi && e.id > last &&
            e.len <= sc->size - pos - HDR_SIZE) {
            uint32_t c = libdeflate_crc32(0, h + 12, HDR_SIZE - 12);
            if (!scan_crc(sc, pos + HDR_SIZE, e.len, &c))
                break;
            if (c == crc) {
                e.off = pos;
                if (seg_push(g, &e) != PIPIT_OK)
                    return PIPIT_ENOMEM;
                last = e.id;
            }
            pos += HDR_SIZE + e.len;
            continue;
        }
        pos = scan_find(sc, pos + 1);
    }
    return PIPIT_OK;
}

/* ---- failed writes ---- */

/*
 * A write to the spool failed (disk full, I/O error): count it, and log it
 * as an error once per episode, the first failure after a success, with
 * what the policy does about it; later failures of the episode are logged
 * at debug level. The episode ends when episode_check finds room again.
 */
static void write_failed(struct spool *s, const char *fmt, ...)
{
    char what[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    s->st.write_errors++;
    s->episode_errors++;
    if (s->failing) {
        log_debug("spool", "%s", what);
        return;
    }
    s->failing = true;
    log_error("spool", "%s; policy %s: %s (logged once until there is room again)", what,
              s->policy == SPOOL_BLOCK ? "block" : "drop_oldest",
              s->policy == SPOOL_BLOCK
                  ? "the batch is not accepted, it waits in memory and is written again later"
                  : "the oldest segments are dropped to make room, then the batch waits in "
                    "memory and is written again later");
}

/*
 * End a write-failure episode once there is room again: at least twice
 * segment_bytes free on the file system (1 MiB at least, 64 MiB at most),
 * or a file system that cannot tell. While a backlog refills every freed
 * byte the episode goes on, so a disk that stays nearly full is reported
 * once, not at every write that happens to fit.
 */
static void episode_check(struct spool *s)
{
    uint64_t margin = 2 * s->segment_bytes;
    struct statvfs vf;

    if (!s->failing)
        return;
    if (margin < (1u << 20))
        margin = 1u << 20;
    if (margin > (UINT64_C(64) << 20))
        margin = UINT64_C(64) << 20;
    if (fstatvfs(s->dfd, &vf) == 0 && (uint64_t)vf.f_bavail * vf.f_frsize < margin)
        return;
    log_info("spool", "%s: writes succeed again and there is room, after %" PRIu64
             " failed attempts", s->dir, s->episode_errors);
    s->failing = false;
    s->episode_errors = 0;
}

/* ---- the index ---- */

/* Index of the last segment whose first id is <= id, or 0. */
static size_t seg_find(const struct spool *s, uint64_t id)
{
    size_t lo = 0, hi = s->nseg;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid]->first <= id)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first entry of g with an id >= id (g->n if none). */
static size_t entry_find(const struct seg *g, uint64_t id)
{
    size_t lo = 0, hi = g->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->e[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void mark_released(struct spool *s, struct seg *g, struct sp_entry *e)
{
    e->released = true;
    g->live--;
    s->st.entries--;
    while (g->lo < g->n && g->e[g->lo].released)
        g->lo++;
}

static void seg_free(struct seg *g)
{
    if (g->fd >= 0)
        close(g->fd);
    free(g->e);
    free(g);
}

static void state_forget(struct spool *s, bool sync);

/*
 * Delete the file of segment i (all its entries released or dropped) and
 * fsync the directory (when the spool fsyncs). When unlink fails the segment stays, marked stuck,
 * and is tried again by the next append. Returns PIPIT_OK or PIPIT_EIO.
 */
static int seg_delete(struct spool *s, size_t i)
{
    struct seg *g = s->segs[i];
    char name[SEG_NAME_LEN + 1];

    seg_name(name, g->first);
    state_forget(s, true);
    if (unlinkat(s->dfd, name, 0) != 0 && errno != ENOENT) {
        if (!g->stuck)
            log_error("spool", "cannot delete %s/%s: %s", s->dir, name, strerror(errno));
        if (!g->stuck)
            s->stuck++;
        g->stuck = true;
        return PIPIT_EIO;
    }
    if (s->fsync && fsync(s->dfd) != 0) /* it may come back: duplicates only */
        log_warn("spool", "fsync %s: %s", s->dir, strerror(errno));
    if (g->stuck)
        s->stuck--;
    if (s->rseg == g)
        s->rseg = NULL;
    if (s->active == g)
        s->active = NULL;
    s->st.bytes -= g->size;
    s->st.entries -= g->live;
    memmove(s->segs + i, s->segs + i + 1, (s->nseg - i - 1) * sizeof *s->segs);
    s->nseg--;
    seg_free(g);
    episode_check(s);                   /* space came back */
    return PIPIT_OK;
}

/* Delete segment i if nothing in it is owed and it is not the last one
 * (the newest file keeps the ids from going back after a restart). */
static void seg_maybe_delete(struct spool *s, size_t i)
{
    if (s->segs[i]->live == 0 && i + 1 < s->nseg)
        (void)seg_delete(s, i);
}

static void retry_stuck(struct spool *s)
{
    for (size_t i = 0; s->stuck && i + 1 < s->nseg; ) {
        if (s->segs[i]->stuck && seg_delete(s, i) == PIPIT_OK)
            continue;
        i++;
    }
}

/* A descriptor to read g: its own, or the one cached for reads. */
static int seg_fd(struct spool *s, struct seg *g)
{
    char name[SEG_NAME_LEN + 1];

    if (g->fd >= 0)
        return g->fd;
    if (s->rseg && s->rseg != s->active && s->rseg->fd >= 0) {
        close(s->rseg->fd);
        s->rseg->fd = -1;
    }
    seg_name(name, g->first);
    g->fd = openat(s->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (g->fd >= 0)
        s->rseg = g;
    else
        log_error("spool", "cannot open %s/%s: %s", s->dir, name, strerror(errno));
    return g->fd;
}

/* ---- the release state, saved at close ---- */

/*
 * Save what a clean close leaves on disk to REL_NAME: the next id, the
 * names of the segments, and the ranges of the ids still owed (not
 * released) in them; atomically (temp file, fsync, rename, fsync of the
 * directory; without the fsyncs when the spool does not fsync). Every id
 * below the next one that is in no range was released or dropped, so the
 * next open knows both what not to deliver again and what damage took.
 */
static void save_state(struct spool *s)
{
    uint64_t *owed = NULL;              /* pairs: first, last */
    size_t n = 0, cap = 0;
    unsigned char *p = NULL;
    struct iovec iov;
    int fd = -1;

    for (size_t i = 0; i < s->nseg; i++) {
        const struct seg *g = s->segs[i];
        for (size_t j = g->lo; j < g->n; j++) {
            uint64_t id = g->e[j].id;
            if (g->e[j].released)
                continue;
            if (n && owed[2 * n - 1] + 1 == id) {
                owed[2 * n - 1] = id;
                continue;
            }
            if (n == cap) {
                size_t c = cap ? cap * 2 : 16;
                uint64_t *q = realloc(owed, c * 2 * sizeof *q);
                if (!q)
                    goto fail;
                owed = q;
                cap = c;
            }
            owed[2 * n] = owed[2 * n + 1] = id;
            n++;
        }
    }
    if (s->nseg > REL_MAX || n > REL_MAX) {
        errno = E2BIG;
        goto fail;
    }
    size_t len = REL_HDR + s->nseg * 8 + n * 16;
    p = malloc(len);
    if (!p)
        goto fail;
    memcpy(p, rel_magic, 4);
    put32(p + 4, REL_VERSION);
    put64(p + 8, s->next_id);
    put32(p + 16, (uint32_t)s->nseg);
    put32(p + 20, (uint32_t)n);
    put64(p + 24, 0);
    for (size_t i = 0; i < s->nseg; i++)
        put64(p + REL_HDR + i * 8, s->segs[i]->first);
    for (size_t r = 0; r < 2 * n; r++)
        put64(p + REL_HDR + s->nseg * 8 + r * 8, owed[r]);
    put32(p + 24, libdeflate_crc32(0, p, len));
    iov.iov_base = p;
    iov.iov_len = len;
    fd = openat(s->dfd, REL_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || pwrite_all(fd, &iov, 1, 0) != 0 || (s->fsync && fsync(fd) != 0) ||
        renameat(s->dfd, REL_TMP, s->dfd, REL_NAME) != 0)
        goto fail;
    close(fd);
    if (s->fsync && fsync(s->dfd) != 0)
        log_warn("spool", "fsync %s: %s", s->dir, strerror(errno));
    free(owed);
    free(p);
    return;
fail:
    log_warn("spool", "cannot save the release state in %s/%s: %s; released entries "
             "still on disk are delivered again after the restart", s->dir, REL_NAME,
             strerror(errno));
    if (fd >= 0) {
        close(fd);
        unlinkat(s->dfd, REL_TMP, 0);
    }
    free(owed);
    free(p);
}

/* The saved state, as spool_open reads it. */
struct saved {
    bool valid;                         /* read, and intact */
    uint64_t next;                      /* the next id at the close */
    uint64_t *names;                    /* the segments then, ascending */
    size_t nnames;
    uint64_t *owed;                     /* ranges of owed ids: pairs first, last */
    size_t nowed;
};

static void saved_free(struct saved *sv)
{
    free(sv->names);
    free(sv->owed);
}

/* Read REL_NAME into sv; a damaged file is ignored (its entries are
 * delivered again: duplicates, not loss). Notes in s whether it exists. */
static void load_state(struct spool *s, struct saved *sv)
{
    unsigned char *p = NULL;
    struct stat sb;
    struct iovec iov;
    uint64_t m, n;
    uint32_t crc;
    int fd;

    memset(sv, 0, sizeof *sv);
    fd = openat(s->dfd, REL_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    s->state_on_disk = fd >= 0 || errno != ENOENT;
    if (fd < 0) {
        if (errno != ENOENT)
            log_warn("spool", "cannot open %s/%s: %s", s->dir, REL_NAME, strerror(errno));
        return;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < REL_HDR ||
        (uint64_t)sb.st_size > REL_HDR + (uint64_t)REL_MAX * 24)
        goto bad;
    p = malloc((size_t)sb.st_size);
    iov.iov_base = p;
    iov.iov_len = (size_t)sb.st_size;
    if (!p || pread_all(fd, &iov, 1, 0) != 0)
        goto bad;
    m = get32(p + 16);
    n = get32(p + 20);
    crc = get32(p + 24);
    put32(p + 24, 0);
    if (memcmp(p, rel_magic, 4) != 0 || crc != libdeflate_crc32(0, p, (size_t)sb.st_size))
        goto bad;
    if (get32(p + 4) != REL_VERSION) {
        log_warn("spool", "%s/%s has format version %" PRIu32 ", not %d; ignoring it "
                 "(released entries are delivered again)", s->dir, REL_NAME, get32(p + 4),
                 REL_VERSION);
        goto out;
    }
    sv->next = get64(p + 8);
    if (REL_HDR + m * 8 + n * 16 != (uint64_t)sb.st_size || sv->next > MAX_FIRST ||
        !(sv->names = malloc(m * 8 + 1)) || !(sv->owed = malloc(n * 16 + 1)))
        goto bad;
    for (uint64_t i = 0; i < m; i++) {
        sv->names[i] = get64(p + REL_HDR + i * 8);
        if (sv->names[i] == 0 || sv->names[i] >= sv->next ||
            (i > 0 && sv->names[i] <= sv->names[i - 1]))
            goto bad;
    }
    for (uint64_t r = 0; r < 2 * n; r++) {
        sv->owed[r] = get64(p + REL_HDR + m * 8 + r * 8);
        if (sv->owed[r] >= sv->next || (r > 0 && sv->owed[r] < sv->owed[r - 1] + (r % 2 == 0)))
            goto bad;
    }
    sv->nnames = (size_t)m;
    sv->nowed = (size_t)n;
    sv->valid = true;
    goto out;
bad:
    log_warn("spool", "%s/%s is damaged; ignoring it (released entries are delivered "
             "again)", s->dir, REL_NAME);
    saved_free(sv);
    memset(sv, 0, sizeof *sv);
out:
    close(fd);
    free(p);
}

/*
 * Mark released every entry the saved state does not list as owed (an id
 * below its next id in no range: released or dropped before the close;
 * ids are never reused, so this holds even when later runs changed the
 * files). Both lists are in id order: one merge pass.
 */
static void apply_state(struct spool *s, const struct saved *sv)
{
    size_t r = 0;

    for (size_t i = 0; i < s->nseg; i++) {
        struct seg *g = s->segs[i];
        for (size_t j = 0; j < g->n; j++) {
            struct sp_entry *e = &g->e[j];
            if (e->id >= sv->next)
                return;
            while (r < sv->nowed && sv->owed[2 * r + 1] < e->id)
                r++;
            if (!(r < sv->nowed && sv->owed[2 * r] <= e->id) && !e->released)
                mark_released(s, g, e);
        }
    }
}

/* How many ids in [a, b) the saved state lists as owed. */
static uint64_t owed_between(const struct saved *sv, uint64_t a, uint64_t b)
{
    size_t lo = 0, hi = sv->nowed;
    uint64_t n = 0;

    while (lo < hi) {                   /* the first range ending at or after a */
        size_t mid = lo + (hi - lo) / 2;
        if (sv->owed[2 * mid + 1] < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t r = lo; r < sv->nowed && sv->owed[2 * r] < b; r++) {
        uint64_t x = sv->owed[2 * r] > a ? sv->owed[2 * r] : a;
        uint64_t y = sv->owed[2 * r + 1] + 1 < b ? sv->owed[2 * r + 1] + 1 : b;
        n += y - x;
    }
    return n;
}

/*
 * The saved state describes the files as the last clean close left them.
 * Before this run first changes them (a new segment, a deleted one), it
 * goes, so that a state file found at open is always current: after a
 * deletion the removal is synced first; a new segment is named by an id
 * at or above the saved next id, which marks the state as old anyway.
 */
static void state_forget(struct spool *s, bool sync)
{
    if (!s->state_on_disk)
        return;
    s->state_on_disk = false;
    if (unlinkat(s->dfd, REL_NAME, 0) != 0 && errno != ENOENT)
        log_warn("spool", "cannot remove %s/%s: %s", s->dir, REL_NAME, strerror(errno));
    else if (sync && s->fsync && fsync(s->dfd) != 0)
        log_warn("spool", "fsync %s: %s", s->dir, strerror(errno));
}

/*
 * Count and log what the scan of g skipped: the bytes outside good
 * entries, and the entries lost with them. With a current saved state
 * (sv), the segment's ids are [g->first, hi) and the lost entries are
 * exactly those the state lists as owed that no good entry holds.
 * Without one, ids within a segment are consecutive, so the entries lost
 * before a good entry are the ids missing before it; damaged bytes after
 * the last good entry count as one entry (a torn write, or damage whose
 * extent the file no longer tells).
 */
static void account_damage(struct spool *s, const struct seg *g, const struct saved *sv,
                           uint64_t hi)
{
    uint64_t end = 0, prev = g->first - 1, lost = 0, bytes = 0, at = UINT64_MAX, found = 0;
    char name[SEG_NAME_LEN + 1];

    for (size_t i = 0; i < g->n; i++) {
        const struct sp_entry *e = &g->e[i];
        if (e->off > end) {
            bytes += e->off - end;
            if (at == UINT64_MAX)
                at = end;
        }
        lost += e->id - prev - 1;
        prev = e->id;
        end = e->off + HDR_SIZE + e->len;
        found += !e->released && e->id < hi;
    }
    if (g->size > end) {
        bytes += g->size - end;
        lost++;
        if (at == UINT64_MAX)
            at = end;
    }
    if (sv) {
        uint64_t owed = owed_between(sv, g->first, hi);
        lost = owed > found ? owed - found : 0;
    }
    if (!lost && !bytes)
        return;
    s->st.corrupt_entries += lost;
    s->st.corrupt_bytes += bytes;
    seg_name(name, g->first);
    log_error("spool", "%s/%s: skipped %" PRIu64 " damaged entries (%" PRIu64
              " bytes), the first at offset %" PRIu64 "; %zu good entries kept",
              s->dir, name, lost, bytes, at == UINT64_MAX ? end : at, g->n);
}

/* A segment the current saved state lists is gone: its owed entries,
 * the ids [first, hi), are lost. */
static void account_missing(struct spool *s, const struct saved *sv, uint64_t first,
                            uint64_t hi)
{
    uint64_t lost = owed_between(sv, first, hi);
    char name[SEG_NAME_LEN + 1];

    seg_name(name, first);
    if (!lost) {
        log_warn("spool", "%s/%s is missing; it held nothing still owed", s->dir, name);
        return;
    }
    s->st.corrupt_entries += lost;
    log_error("spool", "%s/%s: skipped %" PRIu64 " damaged entries: the file is missing "
              "(it held them at the last clean close)", s->dir, name, lost);
}

/*
 * Count the damage of every segment, those on disk and, with a current
 * state, those it lists that are gone. The segments of the two lists,
 * merged in id order, split the ids up to the saved next id.
 */
static void account_all(struct spool *s, const struct saved *sv)
{
    size_t i = 0, k = 0, nk = sv ? sv->nnames : 0;

    while (i < s->nseg || k < nk) {
        uint64_t disk = i < s->nseg ? s->segs[i]->first : UINT64_MAX;
        uint64_t listed = k < nk ? sv->names[k] : UINT64_MAX;
        uint64_t first = disk < listed ? disk : listed, hi;
        struct seg *g = NULL;

        if (disk == first)
            g = s->segs[i++];
        if (listed == first)
            k++;
        disk = i < s->nseg ? s->segs[i]->first : UINT64_MAX;
        listed = k < nk ? sv->names[k] : UINT64_MAX;
        hi = disk < listed ? disk : listed;
        if (sv && hi > sv->next)
            hi = sv->next;
        if (hi > first + SEG_IDS)       /* a segment holds no more ids */
            hi = first + SEG_IDS;
        if (g)
            account_damage(s, g, sv, hi);
        else
            account_missing(s, sv, first, hi);
    }
}

/* ---- open ---- */

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = *(struct seg *const *)a, *y = *(struct seg *const *)b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* List the segment files of the directory into s->segs, in id order. */
static int list_segments(struct spool *s, char *err, size_t errlen)
{
    int fd = dup(s->dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (!d) {
        snprintf(err, errlen, "cannot read spool directory %s: %s", s->dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return PIPIT_EIO;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        struct stat sb;
        uint64_t first;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            strcmp(de->d_name, REL_NAME) == 0)
            continue;
        if (strcmp(de->d_name, REL_TMP) == 0) {
            unlinkat(s->dfd, REL_TMP, 0);   /* a close that did not finish */
            continue;
        }
        if (!parse_seg_name(de->d_name, &first)) {
            log_debug("spool", "%s/%s: not a spool file; ignored", s->dir, de->d_name);
            continue;
        }
        if (fstatat(s->dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(sb.st_mode) || first == 0 || first > MAX_FIRST) {
            log_warn("spool", "%s/%s: not a regular segment file; ignored", s->dir,
                     de->d_name);
            continue;
        }
        if (s->nseg == s->capseg) {
            size_t cap = s->capseg ? s->capseg * 2 : 16;
            struct seg **p = realloc(s->segs, cap * sizeof *p);
            if (!p)
                goto nomem;
            s->segs = p;
            s->capseg = cap;
        }
        struct seg *g = calloc(1, sizeof *g);
        if (!g)
            goto nomem;
        g->first = first;
        g->fd = -1;
        s->segs[s->nseg++] = g;
    }
    if (errno != 0) {
        snprintf(err, errlen, "cannot read spool directory %s: %s", s->dir, strerror(errno));
        closedir(d);
        return PIPIT_EIO;
    }
    closedir(d);
    if (s->nseg > 1)
        qsort(s->segs, s->nseg, sizeof *s->segs, cmp_seg);
    return PIPIT_OK;
nomem:
    snprintf(err, errlen, "out of memory listing %s", s->dir);
    closedir(d);
    return PIPIT_ENOMEM;
}

/* Scan every listed segment; account_all counts what was damaged. */
static int scan_all(struct spool *s, char *err, size_t errlen)
{
    struct scan sc;
    int r = PIPIT_OK;

    memset(&sc, 0, sizeof sc);
    sc.buf = malloc(WINDOW);
    if (!sc.buf) {
        snprintf(err, errlen, "out of memory");
        return PIPIT_ENOMEM;
    }
    for (size_t i = 0; i < s->nseg && r == PIPIT_OK; i++) {
        struct seg *g = s->segs[i];
        char name[SEG_NAME_LEN + 1];
        struct stat sb;
        uint64_t hi = g->first + SEG_IDS;

        if (i + 1 < s->nseg && s->segs[i + 1]->first < hi)
            hi = s->segs[i + 1]->first;
        seg_name(name, g->first);
        sc.fd = openat(s->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (sc.fd < 0 || fstat(sc.fd, &sb) != 0) {
            snprintf(err, errlen, "cannot open %s/%s: %s", s->dir, name, strerror(errno));
            r = PIPIT_EIO;
            if (sc.fd >= 0)
                close(sc.fd);
            break;
        }
        sc.size = (uint64_t)sb.st_size;
        sc.base = sc.len = 0;
        sc.err = 0;
        r = scan_segment(g, &sc, hi);
        if (r != PIPIT_OK)
            snprintf(err, errlen, "out of memory reading %s/%s", s->dir, name);
        if (sc.err)
            log_error("spool", "%s/%s: read error at about offset %" PRIu64 ": %s; the "
                      "rest of the file is skipped", s->dir, name, sc.base, strerror(sc.err));
        close(sc.fd);
        g->size = (uint64_t)sb.st_size;
        s->st.bytes += g->size;
        s->st.entries += g->live;
    }
    free(sc.buf);
    return r;
}

/*
 * Open the spool: create and lock the directory, list and scan the
 * segments, apply the saved release state, count the damage (exactly when
 * that state is current: see account_all), delete segments with nothing
 * left to deliver (never the newest), and choose the next id: after a
 * clean close the one saved; otherwise past every id the newest segment
 * may have handed out.
 */
struct spool *spool_open(const struct spool_config *c, char *err, size_t errlen)
{
    struct spool *s;
    struct saved sv;
    bool current;
    uint64_t saved_next;

    if (!c || !c->dir || !*c->dir || c->max_bytes <= HDR_SIZE ||
        (c->policy != SPOOL_BLOCK && c->policy != SPOOL_DROP_OLDEST)) {
        snprintf(err, errlen, "invalid spool configuration (dir, max_bytes > %d, policy)",
                 HDR_SIZE);
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(c->dir))) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    s->dfd = -1;
    s->max_bytes = c->max_bytes;
    s->segment_bytes = c->segment_bytes ? c->segment_bytes : DEFAULT_SEGMENT;
    if (s->segment_bytes > s->max_bytes)
        s->segment_bytes = s->max_bytes;
    s->max_data = s->max_bytes - HDR_SIZE < MAX_DATA ? s->max_bytes - HDR_SIZE : MAX_DATA;
    s->policy = c->policy;
    s->fsync = c->fsync;

    if (make_dirs(s->dir) != 0) {
        snprintf(err, errlen, "cannot create spool directory %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    s->dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dfd < 0) {
        snprintf(err, errlen, "cannot open spool directory %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if (flock(s->dfd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, errno == EWOULDBLOCK
                 ? "spool directory %s is in use by another process"
                 : "cannot lock spool directory %s: %s", s->dir, strerror(errno));
        goto fail;
    }
    if (list_segments(s, err, errlen) != PIPIT_OK || scan_all(s, err, errlen) != PIPIT_OK)
        goto fail;
    load_state(s, &sv);
    if (sv.valid)
        apply_state(s, &sv);
    /* current: no run has appended since the close (see state_forget) */
    current = sv.valid && (s->nseg == 0 || s->segs[s->nseg - 1]->first < sv.next);
    account_all(s, current ? &sv : NULL);
    saved_next = sv.valid ? sv.next : 0;
    saved_free(&sv);

    s->next_id = 1;
    if (s->nseg) {
        const struct seg *newest = s->segs[s->nseg - 1];
        uint64_t top = 0;
        for (size_t i = s->nseg; i-- > 0 && !top; )
            if (s->segs[i]->n)
                top = s->segs[i]->e[s->segs[i]->n - 1].id;
        s->next_id = newest->first + SEG_IDS;
        if (saved_next > newest->first)   /* saved after the newest segment began */
            s->next_id = saved_next > top ? saved_next : top + 1;
    } else if (saved_next) {
        s->next_id = saved_next;
    }
    for (size_t i = 0; i + 1 < s->nseg; ) {
        size_t before = s->nseg;
        seg_maybe_delete(s, i);
        if (s->nseg == before)
            i++;
    }
    if (s->st.bytes > s->max_bytes)
        log_warn("spool", "%s holds %" PRIu64 " bytes, more than max_bytes %" PRIu64,
                 s->dir, s->st.bytes, s->max_bytes);
    log_debug("spool", "%s: %zu segments, %" PRIu64 " entries to deliver, %" PRIu64
              " bytes, next id %" PRIu64, s->dir, s->nseg, s->st.entries, s->st.bytes,
              s->next_id);
    return s;
fail:
    for (size_t i = 0; i < s->nseg; i++)
        seg_free(s->segs[i]);
    free(s->segs);
    if (s->dfd >= 0)
        close(s->dfd);
    free(s->dir);
    free(s);
    return NULL;
}

/* ---- append ---- */

/* Start a new segment file named by the next id, and make it the active
 * one (with fsync, the directory is fsync'd so that the name, which anchors
 * the ids, survives a crash). Returns PIPIT_OK, PIPIT_ENOMEM or PIPIT_EIO. */
static int seg_create(struct spool *s)
{
    char name[SEG_NAME_LEN + 1];
    struct seg *g;

    if (s->nseg == s->capseg) {
        size_t cap = s->capseg ? s->capseg * 2 : 16;
        struct seg **p = realloc(s->segs, cap * sizeof *p);
        if (!p)
            return PIPIT_ENOMEM;
        s->segs = p;
        s->capseg = cap;
    }
    g = calloc(1, sizeof *g);
    if (!g || !(g->e = malloc(64 * sizeof *g->e))) {
        free(g);
        return PIPIT_ENOMEM;
    }
    g->cap = 64;
    g->first = s->next_id;
    seg_name(name, g->first);
    g->fd = openat(s->dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (g->fd < 0) {
        write_failed(s, "cannot create %s/%s: %s", s->dir, name, strerror(errno));
        goto fail;
    }
    if (s->fsync && fsync(s->dfd) != 0) {
        write_failed(s, "fsync %s: %s", s->dir, strerror(errno));
        unlinkat(s->dfd, name, 0);
        goto fail;
    }
    if (s->active && s->active->fd >= 0) {
        close(s->active->fd);
        s->active->fd = -1;
    }
    s->segs[s->nseg++] = g;
    s->active = g;
    state_forget(s, false);
    return PIPIT_OK;
fail:
    seg_free(g);
    return PIPIT_EIO;
}

/* Drop every unreleased entry of segment g to make room: counted, and
 * remembered for spool_take_dropped. */
static void drop_entries(struct spool *s, struct seg *g)
{
    for (size_t j = g->lo; j < g->n; j++) {
        struct sp_entry *e = &g->e[j];
        if (e->released)
            continue;
        if (s->ndropped == s->capdropped) {
            size_t cap = s->capdropped ? s->capdropped * 2 : 64;
            uint64_t *p = realloc(s->dropped, cap * sizeof *p);
            if (p) {
                s->dropped = p;
                s->capdropped = cap;
            }
        }
        if (s->ndropped < s->capdropped)
            s->dropped[s->ndropped++] = e->id;
        else
            log_error("spool", "out of memory: the drop of entry %" PRIu64 " is not "
                      "reported to the caller", e->id);
        s->st.dropped_entries++;
        s->st.dropped_records += e->count;
        mark_released(s, g, e);
    }
}

/*
 * Make room for need bytes under the policy. fresh says whether the entry
 * starts a new segment (then a fully released last segment goes once the
 * new one exists). Under drop_oldest whole oldest segments are dropped:
 * only deleting a file gives bytes back. Returns PIPIT_OK (fresh updated),
 * PIPIT_EFULL or PIPIT_EIO.
 */
static int make_room(struct spool *s, uint64_t need, bool *fresh)
{
    uint64_t entries0 = s->st.dropped_entries, records0 = s->st.dropped_records;
    int r = PIPIT_OK;

    for (;;) {
        struct seg *last = s->nseg ? s->segs[s->nseg - 1] : NULL;
        uint64_t used = s->st.bytes;

        if (*fresh && last && last->live == 0)
            used -= last->size;
        if (used + need <= s->max_bytes)
            break;
        if (s->policy == SPOOL_BLOCK) {
            s->st.full++;
            return PIPIT_EFULL;
        }
        struct seg *old = s->segs[0];
        drop_entries(s, old);
        if (old == last)
            *fresh = true;              /* deleted once the new segment exists */
        else if (seg_delete(s, 0) != PIPIT_OK) {
            r = PIPIT_EIO;
            break;
        }
    }
    if (s->st.dropped_entries > entries0)
        log_warn("spool", "%s is full (max_bytes %" PRIu64 "): dropped the oldest %" PRIu64
                 " entries (%" PRIu64 " records)", s->dir, s->max_bytes,
                 s->st.dropped_entries - entries0, s->st.dropped_records - records0);
    return r;
}

/*
 * Append one entry: header and data in one write at the end of the active
 * segment, fdatasync'd when configured. A failed write or sync is undone
 * with ftruncate to the previous end, so nothing half-written remains to be
 * read back as good; when even that fails the segment is closed to appends.
 * The id is used only when the append succeeds, so the ids in a segment are
 * consecutive.
 */
int spool_append(struct spool *s, int kind, uint64_t seq, uint32_t count,
                 const void *data, size_t len, uint64_t *id)
{
    unsigned char h[HDR_SIZE];
    struct iovec iov[2];
    struct seg *g;
    uint64_t need, off;
    bool fresh;
    int r;

    if (!s || kind < 0 || kind > 255 || (!data && len))
        return PIPIT_EINVAL;
    if (len > s->max_data)
        return PIPIT_ERANGE;
    need = HDR_SIZE + (uint64_t)len;
    if (s->stuck)
        retry_stuck(s);
    g = s->active;
    fresh = !g || (g->size > 0 && g->size + need > s->segment_bytes) ||
            s->next_id - g->first >= SEG_IDS - 1;
    r = make_room(s, need, &fresh);
    if (r != PIPIT_OK)
        return r;
    if (fresh) {
        size_t prev = s->nseg;
        if ((r = seg_create(s)) != PIPIT_OK)
            return r == PIPIT_ENOMEM ? r : PIPIT_EIO;
        if (prev && s->segs[prev - 1]->live == 0)
            (void)seg_delete(s, prev - 1);
        if (s->st.bytes + need > s->max_bytes)
            return PIPIT_EIO;           /* the old segment would not go away */
    }
    g = s->active;
    if (g->n == g->cap) {
        struct sp_entry *p = realloc(g->e, g->cap * 2 * sizeof *p);
        if (!p)
            return PIPIT_ENOMEM;
        g->e = p;
        g->cap *= 2;
    }

    entry_header(h, s->next_id, kind, seq, count, data, len);
    off = g->size;
    for (;;) {
        iov[0].iov_base = h;
        iov[0].iov_len = HDR_SIZE;
        iov[1].iov_base = (void *)data;
        iov[1].iov_len = len;
        bool wrote = pwrite_all(g->fd, iov, len ? 2 : 1, off) == 0;
        bool synced = wrote && (!s->fsync || fdatasync(g->fd) == 0);
        if (synced)
            break;
        char name[SEG_NAME_LEN + 1];
        int err = errno;
        bool undone = ftruncate(g->fd, (off_t)off) == 0;
        seg_name(name, g->first);
        if (undone && s->fsync)
            (void)fdatasync(g->fd);
        /* The disk is full: under drop_oldest the oldest segment goes
         * (counted like any drop) and the write is tried again. */
        if (!wrote && undone && (err == ENOSPC || err == EDQUOT) &&
            s->policy == SPOOL_DROP_OLDEST && s->nseg > 1 && s->segs[0] != g) {
            uint64_t entries0 = s->st.dropped_entries, records0 = s->st.dropped_records;
            drop_entries(s, s->segs[0]);
            if (seg_delete(s, 0) == PIPIT_OK) {
                log_warn("spool", "%s: the disk is full (%s): dropped the oldest %" PRIu64
                         " entries (%" PRIu64 " records) to make room (policy drop_oldest)",
                         s->dir, strerror(err), s->st.dropped_entries - entries0,
                         s->st.dropped_records - records0);
                continue;
            }
        }
        /* After a failed sync the state of the file's pages is not known
         * (Linux may have dropped them): no more appends to it. */
        bool seal = !undone || wrote;
        write_failed(s, "cannot %s %" PRIu64 " bytes to %s/%s at offset %" PRIu64 ": %s%s",
                     wrote ? "sync" : "append", need, s->dir, name, off, strerror(err),
                     seal ? "; the segment is closed to appends" : "");
        if (seal) {
            struct stat sb;
            if (fstat(g->fd, &sb) == 0 && (uint64_t)sb.st_size > off) {
                s->st.bytes += (uint64_t)sb.st_size - off;
                g->size = (uint64_t)sb.st_size;
            }
            close(g->fd);
            g->fd = -1;
            s->active = NULL;
        }
        return PIPIT_EIO;
    }
    episode_check(s);
    struct sp_entry *e = &g->e[g->n++];
    memset(e, 0, sizeof *e);
    e->id = s->next_id;
    e->seq = seq;
    e->off = off;
    e->len = (uint32_t)len;
    e->count = count;
    e->kind = (uint8_t)kind;
    g->live++;
    g->size += need;
    s->st.bytes += need;
    s->st.entries++;
    s->st.appended++;
    if (id)
        *id = s->next_id;
    s->next_id++;
    return PIPIT_OK;
}

/* ---- release, read back ---- */

int spool_release(struct spool *s, uint64_t id)
{
    size_t i, j;
    struct seg *g;

    if (!s || !s->nseg)
        return PIPIT_ENOENT;
    i = seg_find(s, id);
    g = s->segs[i];
    j = entry_find(g, id);
    if (j >= g->n || g->e[j].id != id || g->e[j].released)
        return PIPIT_ENOENT;
    mark_released(s, g, &g->e[j]);
    s->st.released++;
    seg_maybe_delete(s, i);
    return PIPIT_OK;
}

/* Read entry e of g into data and check it against the index and its CRC.
 * Returns PIPIT_OK, PIPIT_ENOMEM, or PIPIT_EIO with a reason in why. */
static int read_entry(struct spool *s, struct seg *g, const struct sp_entry *e,
                      struct buf *data, const char **why)
{
    unsigned char h[HDR_SIZE];
    struct iovec iov[2];
    struct sp_entry got;
    uint32_t crc;
    int fd, r;

    buf_reset(data);
    if (buf_reserve(data, e->len) != PIPIT_OK)
        return PIPIT_ENOMEM;
    fd = seg_fd(s, g);
    if (fd < 0) {
        *why = strerror(errno);
        return PIPIT_EIO;
    }
    iov[0].iov_base = h;
    iov[0].iov_len = HDR_SIZE;
    iov[1].iov_base = data->data;
    iov[1].iov_len = e->len;
    r = pread_all(fd, iov, e->len ? 2 : 1, e->off);
    if (r != 0) {
        *why = r < 0 ? strerror(errno) : "the file is shorter than the entry";
        return PIPIT_EIO;
    }
    if (!header_check(h, &got, &crc) || got.id != e->id || got.len != e->len ||
        got.seq != e->seq || got.count != e->count || got.kind != e->kind) {
        *why = "bad header";
        return PIPIT_EIO;
    }
    uint32_t c = libdeflate_crc32(0, h + 12, HDR_SIZE - 12);
    if (e->len)
        c = libdeflate_crc32(c, data->data, e->len);
    if ((uint32_t)c != crc) {
        *why = "bad CRC";
        return PIPIT_EIO;
    }
    data->len = e->len;
    data->data[data->len] = '\0';
    return PIPIT_OK;
}

/*
 * Find the first unreleased entry above after: the segment by binary search
 * on the names, then the entry, skipping the released ones (those below the
 * segment's lo mark at once). With data, read it back and check it; an entry
 * found damaged is dropped for good and reported as PIPIT_EIO, out still
 * describing it.
 */
int spool_next(struct spool *s, uint64_t after, struct spool_entry *out, struct buf *data)
{
    const char *why = NULL;
    struct sp_entry *e = NULL;
    struct seg *g = NULL;
    size_t i;
    int r;

    if (!s || !out)
        return PIPIT_EINVAL;
    if (!s->nseg || after == UINT64_MAX)
        return PIPIT_ENOENT;
    for (i = seg_find(s, after + 1); i < s->nseg && !e; i++) {
        g = s->segs[i];
        if (!g->live)
            continue;
        size_t j = entry_find(g, after + 1);
        for (j = j > g->lo ? j : g->lo; j < g->n; j++) {
            if (!g->e[j].released) {
                e = &g->e[j];
                break;
            }
        }
    }
    if (!e)
        return PIPIT_ENOENT;
    i--;
    out->id = e->id;
    out->kind = e->kind;
    out->seq = e->seq;
    out->count = e->count;
    out->len = e->len;
    if (!data)
        return PIPIT_OK;
    r = read_entry(s, g, e, data, &why);
    if (r != PIPIT_EIO)
        return r;
    char name[SEG_NAME_LEN + 1];
    seg_name(name, g->first);
    log_error("spool", "%s/%s: entry %" PRIu64 " at offset %" PRIu64 " cannot be read "
              "back (%s); it is dropped", s->dir, name, e->id, e->off, why);
    buf_reset(data);
    s->st.corrupt_entries++;
    s->st.corrupt_bytes += HDR_SIZE + (uint64_t)e->len;
    mark_released(s, g, e);
    seg_maybe_delete(s, i);
    return PIPIT_EIO;
}

size_t spool_take_dropped(struct spool *s, uint64_t *ids, size_t max)
{
    size_t n;

    if (!s || !ids)
        return 0;
    n = s->ndropped < max ? s->ndropped : max;
    if (n == 0)
        return 0;                       /* s->dropped may still be NULL */
    memcpy(ids, s->dropped, n * sizeof *ids);
    memmove(s->dropped, s->dropped + n, (s->ndropped - n) * sizeof *ids);
    s->ndropped -= n;
    return n;
}

const struct spool_stats *spool_stats(const struct spool *s)
{
    return &s->st;
}

/* Save the release state, close every file and free the spool. */
void spool_close(struct spool *s)
{
    if (!s)
        return;
    save_state(s);
    for (size_t i = 0; i < s->nseg; i++)
        seg_free(s->segs[i]);
    free(s->segs);
    free(s->dropped);
    close(s->dfd);
    free(s->dir);
    free(s);
}
