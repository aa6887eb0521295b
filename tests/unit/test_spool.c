/* test_spool.c: the write-ahead spool: round trips, restarts and crashes, segments, bounds and policies, failed writes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pipit/plugin.h>
#include "buf.h"
#include "log.h"
#include "spool.h"
#include "../tap.h"

#define HDR 40                          /* entry header size (docs/spool.md) */

static char tmp[4096];                  /* private temporary directory */
static FILE *log_file;                  /* the log, for checking what was said */
static struct spool *volatile crashed;  /* a child's spool, left open on purpose */

static const char *at(const char *rel)
{
    static char bufs[8][4200];
    static int n;
    char *b = bufs[n++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp, rel);
    return b;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The log written since the last call. */
static const char *log_taken(void)
{
    static char text[65536];
    int fd = fileno(log_file);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);

    text[n > 0 ? n : 0] = '\0';
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        diag("cannot truncate the log");
    return text;
}

/* Deterministic content for the entry keyed by key. */
static void fill(unsigned char *p, size_t len, uint64_t key)
{
    uint64_t x = key * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

static unsigned char *content(size_t len, uint64_t key)
{
    unsigned char *p = malloc(len ? len : 1);
    if (p)
        fill(p, len, key);
    return p;
}

static struct spool *sp_open(const char *dir, uint64_t max, uint64_t seg, int policy, bool fs)
{
    struct spool_config c = { .dir = dir, .max_bytes = max, .segment_bytes = seg,
                              .policy = policy, .fsync = fs };
    char err[512];
    struct spool *s = spool_open(&c, err, sizeof err);
    if (!s)
        diag("spool_open %s: %s", dir, err);
    return s;
}

/* Append len bytes of content keyed by key; returns the status, id in *id. */
static int put(struct spool *s, size_t len, uint64_t key, uint32_t count, uint64_t *id)
{
    unsigned char *p = content(len, key);
    int r = spool_append(s, (int)(key % 5), key + 1000, count, p, len, id);
    free(p);
    return r;
}

/* Sum of the sizes of the segment files in dir; their number in *n. */
static uint64_t seg_bytes(const char *dir, int *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t sum = 0;
    int count = 0;

    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        struct stat sb;
        char path[8192];
        if (l != 20 || strcmp(de->d_name + 16, ".seg") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            sum += (uint64_t)sb.st_size;
            count++;
        }
    }
    closedir(d);
    if (n)
        *n = count;
    return sum;
}

static const char *seg_path(const char *dir, uint64_t first)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%016" PRIx64 ".seg", dir, first);
    return path;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* The ids spool_next returns from the start, metadata only. */
static size_t list_ids(struct spool *s, uint64_t *ids, size_t max)
{
    struct spool_entry e;
    uint64_t after = 0;
    size_t n = 0;

    while (spool_next(s, after, &e, NULL) == PIPIT_OK) {
        if (n < max)
            ids[n] = e.id;
        n++;
        after = e.id;
    }
    return n;
}

/* Check that the entry read back with id has the content of key and len. */
static bool entry_is(struct spool *s, uint64_t id, size_t len, uint64_t key)
{
    struct spool_entry e;
    struct buf b = BUF_INIT;
    unsigned char *want = content(len, key);
    bool good = spool_next(s, id - 1, &e, &b) == PIPIT_OK && e.id == id && e.len == len &&
                b.len == len && memcmp(b.data, want, len) == 0 &&
                e.kind == (int)(key % 5) && e.seq == key + 1000;
    buf_free(&b);
    free(want);
    return good;
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    if (fd < 0 || pread(fd, &c, 1, off) != 1)
        diag("cannot read %s", path);
    c ^= 0x10;
    if (fd < 0 || pwrite(fd, &c, 1, off) != 1)
        diag("cannot write %s", path);
    if (fd >= 0)
        close(fd);
}

/* Round trips: append, read back, release, and the argument checks. */
static void test_basic(void)
{
    const char *dir = at("basic/a/spool");
    uint64_t ids[21], got[32], sum = 0;
    struct spool_entry e;
    struct buf b = BUF_INIT;
    struct stat sb;
    bool good = true;
    char err[512];

    struct spool *s = sp_open(dir, 1 << 20, 64 << 10, SPOOL_BLOCK, true);
    ok(s != NULL, "open creates the missing directories");
    if (!s)
        return;
    ok(stat(dir, &sb) == 0 && (sb.st_mode & 0777) == 0700, "the directory is made 0700");
    const struct spool_stats *st = spool_stats(s);
    ok(st->bytes == 0 && st->entries == 0 && st->appended == 0, "a new spool is empty");
    is_int(spool_next(s, 0, &e, &b), PIPIT_ENOENT, "spool_next on an empty spool: ENOENT");

    for (int i = 0; i < 20; i++) {
        size_t len = 100 + (size_t)i * 37;
        if (put(s, len, (uint64_t)i, (uint32_t)i + 1, &ids[i]) != PIPIT_OK)
            good = false;
        if (i > 0 && ids[i] <= ids[i - 1])
            good = false;
        sum += HDR + len;
    }
    ok(good && ids[0] >= 1, "20 appends, ids increasing from 1 up");
    ok(st->appended == 20 && st->entries == 20, "stats count 20 appended, 20 unreleased");
    is_int(st->bytes, sum, "stats.bytes is the sum of header and data sizes");
    is_int(seg_bytes(dir, NULL), sum, "and the size of the segment files");

    good = true;
    uint64_t after = 0;
    int n = 0;
    while (spool_next(s, after, &e, &b) == PIPIT_OK) {
        size_t len = 100 + (size_t)n * 37;
        unsigned char *want = content(len, (uint64_t)n);
        if (n >= 20 || e.id != ids[n] || e.len != len || b.len != len ||
            memcmp(b.data, want, len) != 0 || e.kind != n % 5 ||
            e.seq != (uint64_t)n + 1000 || e.count != (uint32_t)n + 1)
            good = false;
        free(want);
        after = e.id;
        n++;
    }
    ok(good && n == 20, "spool_next returns every entry in id order with its metadata and data");
    ok(spool_next(s, ids[5] - 1, &e, NULL) == PIPIT_OK && e.id == ids[5],
       "spool_next(id - 1) finds the entry id");
    is_int(spool_next(s, ids[19], &e, NULL), PIPIT_ENOENT, "nothing after the last id");
    is_int(spool_next(s, UINT64_MAX, &e, NULL), PIPIT_ENOENT, "nothing after UINT64_MAX");

    good = true;
    for (int i = 0; i < 5; i++)
        good = good && spool_release(s, ids[i]) == PIPIT_OK;
    good = good && spool_release(s, ids[10]) == PIPIT_OK;
    ok(good, "six releases");
    is_int(spool_release(s, ids[10]), PIPIT_ENOENT, "a second release of an id: ENOENT");
    is_int(spool_release(s, ids[19] + 1000), PIPIT_ENOENT, "an unknown id: ENOENT");
    is_int(spool_release(s, 0), PIPIT_ENOENT, "id 0: ENOENT");
    size_t m = list_ids(s, got, 32);
    ok(m == 14 && got[0] == ids[5] && got[4] == ids[9] && got[5] == ids[11],
       "spool_next skips the released entries");
    ok(st->released == 6 && st->entries == 14, "stats: 6 released, 14 unreleased");

    is_int(spool_append(s, 256, 1, 1, "x", 1, &ids[20]), PIPIT_EINVAL, "kind 256: EINVAL");
    is_int(spool_append(s, -1, 1, 1, "x", 1, &ids[20]), PIPIT_EINVAL, "kind -1: EINVAL");
    is_int(spool_append(s, 1, 1, 1, NULL, 5, &ids[20]), PIPIT_EINVAL, "NULL data: EINVAL");
    ok(spool_append(s, 255, UINT64_MAX, UINT32_MAX, NULL, 0, &ids[20]) == PIPIT_OK &&
       spool_next(s, ids[20] - 1, &e, &b) == PIPIT_OK && e.len == 0 && b.len == 0 &&
       e.kind == 255 && e.seq == UINT64_MAX && e.count == UINT32_MAX,
       "an empty entry with the largest kind, seq and count round-trips");

    struct spool_config c = { .dir = dir, .max_bytes = 1 << 20, .policy = SPOOL_BLOCK };
    struct spool *s2 = spool_open(&c, err, sizeof err);
    ok(s2 == NULL && strstr(err, "in use"), "a second open of the directory is refused");
    spool_close(s2);
    c.policy = 7;
    ok(spool_open(&c, err, sizeof err) == NULL, "an unknown policy is refused");
    c.policy = SPOOL_BLOCK;
    c.max_bytes = HDR;
    ok(spool_open(&c, err, sizeof err) == NULL, "max_bytes below one entry is refused");

    buf_free(&b);
    spool_close(s);
    log_taken();
}

/* A large entry round-trips through the disk. */
static void test_large(void)
{
    const char *dir = at("large");
    size_t len = 3u << 20;
    uint64_t id;
    struct spool *s = sp_open(dir, 16 << 20, 1 << 20, SPOOL_BLOCK, false);

    if (!s)
        return;
    ok(put(s, len, 77, 5, &id) == PIPIT_OK && entry_is(s, id, len, 77),
       "a 3 MiB entry (larger than segment_bytes) round-trips");
    int nseg;
    seg_bytes(dir, &nseg);
    ok(put(s, 10, 78, 1, &id) == PIPIT_OK && (seg_bytes(dir, &nseg), nseg == 2),
       "the entry after it starts a new segment");
    spool_close(s);
    rm_tree(dir);
}

/* Clean close and reopen: ids go on, unreleased entries come back. */
static void test_reopen(void)
{
    const char *dir = at("reopen");
    uint64_t ids[12], got[16];
    struct spool *s = sp_open(dir, 1 << 20, 64 << 10, SPOOL_BLOCK, true);
    bool good = true;

    if (!s)
        return;
    for (int i = 0; i < 10; i++)
        good = good && put(s, 300, (uint64_t)i, 1, &ids[i]) == PIPIT_OK;
    for (int i = 0; i < 4; i++)
        good = good && spool_release(s, ids[i]) == PIPIT_OK;
    ok(good, "10 appends, 4 releases");
    spool_close(s);
    ok(exists(at("reopen/released")), "close saves the release state");

    s = sp_open(dir, 1 << 20, 64 << 10, SPOOL_BLOCK, true);
    if (!s)
        return;
    const struct spool_stats *st = spool_stats(s);
    ok(st->entries == 6 && st->corrupt_entries == 0, "after reopen: the 6 unreleased entries");
    good = list_ids(s, got, 16) == 6;
    for (int i = 4; i < 10; i++)
        good = good && got[i - 4] == ids[i] && entry_is(s, ids[i], 300, (uint64_t)i);
    ok(good, "they come back with their ids and data; the released ones do not");
    ok(put(s, 300, 10, 1, &ids[10]) == PIPIT_OK && ids[10] == ids[9] + 1,
       "after a clean close the next id follows the last one");
    for (int i = 4; i < 11; i++)
        spool_release(s, ids[i]);
    spool_close(s);

    s = sp_open(dir, 1 << 20, 64 << 10, SPOOL_BLOCK, true);
    if (!s)
        return;
    ok(spool_stats(s)->entries == 0, "all released: nothing comes back");
    ok(put(s, 300, 11, 1, &ids[11]) == PIPIT_OK && ids[11] > ids[10], "the id still increases");
    spool_close(s);

    /* The segment files gone, the saved state still keeps the ids going up. */
    unlink(seg_path(dir, ids[0]));
    unlink(seg_path(dir, ids[11]));
    int nseg;
    seg_bytes(dir, &nseg);
    s = sp_open(dir, 1 << 20, 64 << 10, SPOOL_BLOCK, true);
    if (!s)
        return;
    ok(nseg == 0 && put(s, 300, 12, 1, &ids[0]) == PIPIT_OK && ids[0] > ids[11],
       "with every segment file deleted, ids still increase (saved state)");
    spool_close(s);
    rm_tree(dir);
    log_taken();
}

/* A crash (no spool_close): what was not released comes back, ids go on. */
static void test_crash(void)
{
    const char *dir = at("crash");
    uint64_t ids[12], got[16], id;
    int fds[2];
    pid_t pid;
    int status;

    if (pipe(fds) != 0)
        return;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        /* 440-byte entries, 2048-byte segments: 4 entries a segment. */
        struct spool *s = crashed = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, true);
        if (!s)
            _exit(1);
        for (int i = 0; i < 12; i++)
            if (put(s, 400, (uint64_t)i, 1, &ids[i]) != PIPIT_OK)
                _exit(1);
        for (int i = 0; i < 4; i++)
            spool_release(s, ids[i]);
        spool_release(s, ids[5]);
        if (write(fds[1], ids, sizeof ids) != (ssize_t)sizeof ids)
            _exit(1);
        _exit(0);                       /* no spool_close: a crash */
    }
    close(fds[1]);
    bool child = pid > 0 && read(fds[0], ids, sizeof ids) == (ssize_t)sizeof ids &&
                 waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                 WEXITSTATUS(status) == 0;
    close(fds[0]);
    ok(child, "a child appends 12 entries, releases 5 and exits without closing");
    if (!child)
        return;
    ok(!exists(seg_path(dir, ids[0])), "the segment of the 4 released entries was deleted");

    struct spool *s = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, true);
    if (!s)
        return;
    const struct spool_stats *st = spool_stats(s);
    bool good = list_ids(s, got, 16) == 8 && st->entries == 8 && st->corrupt_entries == 0;
    for (int i = 4; i < 12; i++)
        good = good && got[i - 4] == ids[i] && entry_is(s, ids[i], 400, (uint64_t)i);
    ok(good, "the 8 entries of the surviving segments come back intact (released 6th too)");
    ok(put(s, 400, 12, 1, &id) == PIPIT_OK && id > ids[11], "the next id is above the child's");
    spool_close(s);
    rm_tree(dir);

    /* The newest entry damaged after the crash: its id is still not reused. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct spool *c = crashed = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true);
        for (int i = 0; i < 5; i++)
            if (!c || put(c, 100, (uint64_t)i, 1, &id) != PIPIT_OK)
                _exit(1);
        _exit(0);
    }
    child = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0;
    flip_byte(seg_path(dir, 1), 4 * (HDR + 100) + HDR + 50);
    s = child ? sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true) : NULL;
    ok(s && spool_stats(s)->entries == 4 && spool_stats(s)->corrupt_entries == 1 &&
       spool_stats(s)->corrupt_bytes == HDR + 100,
       "a damaged last entry after a crash is skipped and counted");
    ok(s && put(s, 100, 6, 1, &id) == PIPIT_OK && id > 5, "and its id is not handed out again");
    spool_close(s);
    rm_tree(dir);
    log_taken();
}

/* Segments roll over at segment_bytes and go when all their entries are released. */
static void test_segments(void)
{
    const char *dir = at("segments");
    uint64_t ids[16];
    int nseg;
    bool good = true;
    struct spool *s = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, false);

    if (!s)
        return;
    for (int i = 0; i < 10; i++)
        good = good && put(s, 400, (uint64_t)i, 1, &ids[i]) == PIPIT_OK;
    ok(good && ids[0] == 1 && ids[9] == 10, "10 entries of 440 bytes, ids 1..10");
    seg_bytes(dir, &nseg);
    ok(nseg == 3 && exists(seg_path(dir, 1)) && exists(seg_path(dir, 5)) &&
       exists(seg_path(dir, 9)), "3 segments named by their first ids: 1, 5, 9");
    for (int i = 0; i < 3; i++)
        spool_release(s, ids[i]);
    ok(exists(seg_path(dir, 1)), "a segment stays while one of its entries is unreleased");
    spool_release(s, ids[3]);
    ok(!exists(seg_path(dir, 1)), "and is deleted with its last release");
    spool_release(s, ids[8]);
    spool_release(s, ids[9]);
    ok(exists(seg_path(dir, 9)), "the segment being written stays when all is released");
    for (int i = 4; i < 8; i++)
        spool_release(s, ids[i]);
    ok(!exists(seg_path(dir, 5)) && seg_bytes(dir, &nseg) == spool_stats(s)->bytes && nseg == 1,
       "the middle segment goes; stats.bytes follows the files");
    ok(put(s, 400, 10, 1, &ids[10]) == PIPIT_OK && ids[10] == 11 &&
       put(s, 400, 11, 1, &ids[11]) == PIPIT_OK && (seg_bytes(dir, &nseg), nseg == 1),
       "the next entries go into the segment being written (11, 12)");
    spool_release(s, ids[10]);
    spool_release(s, ids[11]);
    ok(put(s, 400, 12, 1, &ids[12]) == PIPIT_OK && exists(seg_path(dir, 13)),
       "the one that would pass segment_bytes starts segment 13");
    ok(!exists(seg_path(dir, 9)) && spool_stats(s)->entries == 1,
       "the old segment, all released, goes once it is not the newest");
    spool_close(s);
    rm_tree(dir);
}

/* Policy block: EFULL, counted, and nothing written. */
static void test_block(void)
{
    const char *dir = at("block");
    uint64_t ids[20], id;
    int nseg, nseg2;
    bool good = true, bounded = true;
    struct spool *s = sp_open(dir, 4096, 1024, SPOOL_BLOCK, false);

    if (!s)
        return;
    const struct spool_stats *st = spool_stats(s);
    /* 256-byte entries: 4 a segment, 16 fill max_bytes. */
    for (int i = 0; i < 16; i++) {
        good = good && put(s, 216, (uint64_t)i, 1, &ids[i]) == PIPIT_OK;
        bounded = bounded && seg_bytes(dir, NULL) <= 4096;
    }
    ok(good && bounded && st->bytes == 4096, "16 entries of 256 bytes fill 4096 bytes");
    uint64_t before = seg_bytes(dir, &nseg);
    is_int(put(s, 216, 16, 1, &id), PIPIT_EFULL, "the 17th: EFULL");
    is_int(put(s, 1, 16, 1, &id), PIPIT_EFULL, "even 1 byte: EFULL");
    ok(st->full == 2 && st->appended == 16 && st->entries == 16, "full counts 2 refusals");
    ok(seg_bytes(dir, &nseg2) == before && nseg2 == nseg && st->bytes == 4096,
       "nothing was written");
    spool_release(s, ids[0]);
    is_int(put(s, 216, 16, 1, &id), PIPIT_EFULL, "one release in a segment frees nothing yet");
    for (int i = 1; i < 4; i++)
        spool_release(s, ids[i]);
    ok(st->bytes == 3072 && put(s, 216, 16, 1, &id) == PIPIT_OK && st->bytes == 3328,
       "the segment's last release makes room");
    ok(st->full == 3 && st->dropped_entries == 0, "3 refusals, no drops");
    spool_close(s);
    rm_tree(dir);

    /* A full segment, all released, is no reason to refuse. */
    s = sp_open(dir, 1024, 1024, SPOOL_BLOCK, false);
    if (!s)
        return;
    for (int i = 0; i < 4; i++)
        put(s, 216, (uint64_t)i, 1, &ids[i]);
    for (int i = 0; i < 4; i++)
        spool_release(s, ids[i]);
    ok(put(s, 216, 4, 1, &id) == PIPIT_OK && seg_bytes(dir, &nseg) == 256 && nseg == 1 &&
       spool_stats(s)->full == 0, "the released segment makes way for a new one, within bounds");
    spool_close(s);
    rm_tree(dir);
}

/* Policy drop_oldest: exactly the oldest entries go, counted and reported. */
static void test_drop_oldest(void)
{
    const char *dir = at("drop");
    uint64_t ids[40], taken[16];
    bool good = true, bounded = true;
    struct spool *s = sp_open(dir, 4096, 1024, SPOOL_DROP_OLDEST, false);

    if (!s)
        return;
    const struct spool_stats *st = spool_stats(s);
    /* Entry i (id i + 1) holds i + 1 records. */
    for (int i = 0; i < 16; i++) {
        good = good && put(s, 216, (uint64_t)i, (uint32_t)i + 1, &ids[i]) == PIPIT_OK;
        bounded = bounded && seg_bytes(dir, NULL) <= 4096 && seg_bytes(dir, NULL) == st->bytes;
    }
    ok(good && st->dropped_entries == 0 && ids[15] == 16, "16 entries fit without drops");
    spool_release(s, ids[5]);
    ok(put(s, 216, 16, 17, &ids[16]) == PIPIT_OK, "the 17th is taken");
    ok(st->dropped_entries == 4 && st->dropped_records == 1 + 2 + 3 + 4,
       "by dropping the oldest segment: 4 entries, 10 records");
    ok(spool_take_dropped(s, taken, 16) == 4 && taken[0] == 1 && taken[1] == 2 &&
       taken[2] == 3 && taken[3] == 4, "spool_take_dropped gives ids 1..4");
    is_int(spool_take_dropped(s, taken, 16), 0, "and nothing more");
    good = true;
    for (int i = 17; i < 20; i++) {
        good = good && put(s, 216, (uint64_t)i, (uint32_t)i + 1, &ids[i]) == PIPIT_OK;
        bounded = bounded && seg_bytes(dir, NULL) <= 4096 && seg_bytes(dir, NULL) == st->bytes;
    }
    ok(good && st->dropped_entries == 4, "three more fit in the new segment");
    ok(put(s, 216, 20, 21, &ids[20]) == PIPIT_OK && st->dropped_entries == 7 &&
       st->dropped_records == 10 + 5 + 7 + 8, "the next drops 5, 7, 8 (6 was released)");
    ok(spool_take_dropped(s, taken, 16) == 3 && taken[0] == 5 && taken[1] == 7 &&
       taken[2] == 8, "spool_take_dropped gives 5, 7, 8");
    struct spool_entry e;
    ok(spool_next(s, 0, &e, NULL) == PIPIT_OK && e.id == 9, "the oldest left is 9");
    for (int i = 21; i < 25; i++) {
        put(s, 216, (uint64_t)i, (uint32_t)i + 1, &ids[i]);
        bounded = bounded && seg_bytes(dir, NULL) <= 4096 && seg_bytes(dir, NULL) == st->bytes;
    }
    ok(spool_take_dropped(s, taken, 2) == 2 && taken[0] == 9 && taken[1] == 10 &&
       spool_take_dropped(s, taken, 16) == 2 && taken[0] == 11 && taken[1] == 12,
       "spool_take_dropped hands ids out in order, max at a time");
    ok(bounded, "the files never exceed max_bytes, and stats.bytes matches them");
    ok(st->entries == 13 && st->full == 0, "13 entries held (13..25), no refusal");
    spool_close(s);
    rm_tree(dir);

    /* Only the segment being written holds entries: it is dropped whole. */
    s = sp_open(dir, 1024, 1024, SPOOL_DROP_OLDEST, false);
    if (!s)
        return;
    for (int i = 0; i < 4; i++)
        put(s, 216, (uint64_t)i, (uint32_t)i + 1, &ids[i]);
    int nseg;
    ok(put(s, 216, 4, 5, &ids[4]) == PIPIT_OK && spool_stats(s)->dropped_entries == 4 &&
       spool_stats(s)->dropped_records == 10 && seg_bytes(dir, &nseg) == 256 && nseg == 1 &&
       exists(seg_path(dir, 5)), "a lone full segment is dropped for a new one");
    ok(spool_take_dropped(s, taken, 16) == 4 && taken[3] == 4, "its 4 ids are reported");
    spool_close(s);
    rm_tree(dir);
    ok(strstr(log_taken(), "dropped the oldest") != NULL, "drops are logged");
}

/* An entry larger than max_bytes can never fit. */
static void test_erange(void)
{
    const char *dir = at("erange");
    uint64_t id;
    struct spool *s = sp_open(dir, 1024, 1024, SPOOL_BLOCK, false);

    if (!s)
        return;
    is_int(put(s, 1024 - HDR + 1, 1, 1, &id), PIPIT_ERANGE, "max_bytes - 39 bytes of data: ERANGE");
    ok(spool_stats(s)->bytes == 0 && spool_stats(s)->full == 0, "nothing written or counted");
    ok(put(s, 1024 - HDR, 1, 1, &id) == PIPIT_OK && spool_stats(s)->bytes == 1024,
       "max_bytes - 40 fits exactly");
    is_int(put(s, 0, 2, 1, &id), PIPIT_EFULL, "then even an empty entry is refused");
    spool_close(s);
    rm_tree(dir);
}

/* Damage found when reading back: EIO, dropped, counted; iteration goes on. */
static void test_damage_live(void)
{
    const char *dir = at("live");
    uint64_t ids[3];
    struct spool_entry e;
    struct buf b = BUF_INIT;
    struct spool *s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true);

    if (!s)
        return;
    for (int i = 0; i < 3; i++)
        put(s, 500, (uint64_t)i, 1, &ids[i]);
    flip_byte(seg_path(dir, ids[0]), HDR + 500 + HDR + 7);
    is_int(spool_next(s, ids[0], &e, &b), PIPIT_EIO, "a damaged entry reads back as EIO");
    ok(e.id == ids[1] && b.len == 0, "e names the damaged entry");
    const struct spool_stats *st = spool_stats(s);
    ok(st->corrupt_entries == 1 && st->corrupt_bytes == HDR + 500 && st->entries == 2,
       "it is dropped and counted");
    ok(spool_next(s, e.id, &e, &b) == PIPIT_OK && e.id == ids[2] && entry_is(s, ids[2], 500, 2),
       "the next one reads fine");
    ok(entry_is(s, ids[0], 500, 0), "and so does the one before");
    ok(strstr(log_taken(), "cannot be read back") != NULL, "the damage is logged");
    buf_free(&b);
    spool_close(s);
    rm_tree(dir);
}

/* Files that are not segments are left alone; empty segments are fine. */
static void test_files(void)
{
    const char *dir = at("files");
    uint64_t id;
    FILE *f;
    int fd;

    mkdir(dir, 0700);
    f = fopen(at("files/notes.txt"), "w");
    if (f) {
        fputs("hello\n", f);
        fclose(f);
    }
    mkdir(at("files/0000000000000010.seg"), 0700);
    if (symlink("notes.txt", at("files/0000000000000020.seg")) != 0)
        diag("symlink: %s", strerror(errno));
    fd = open(at("files/0000000000000005.seg"), O_CREAT | O_WRONLY, 0600);
    if (fd >= 0)
        close(fd);
    fd = open(at("files/ABCDEF0000000001.seg"), O_CREAT | O_WRONLY, 0600);
    if (fd >= 0)
        close(fd);
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_DEBUG);
    struct spool *s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, false);
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    ok(s != NULL, "open succeeds among foreign files");
    if (!s)
        return;
    const struct spool_stats *st = spool_stats(s);
    ok(st->bytes == 0 && st->entries == 0 && st->corrupt_entries == 0,
       "an empty segment holds nothing and is not damage");
    const char *log = log_taken();
    ok(strstr(log, "notes.txt") && strstr(log, "ABCDEF0000000001.seg"),
       "unknown files are mentioned at debug level");
    ok(put(s, 10, 1, 1, &id) == PIPIT_OK && id > 5, "ids start above the empty segment's name");
    spool_close(s);
    ok(exists(at("files/notes.txt")) && exists(at("files/0000000000000010.seg")) &&
       exists(at("files/0000000000000020.seg")), "foreign files are untouched");
    rm_tree(dir);
    log_taken();
}

/* The saved release state: used when intact, ignored when damaged. */
static void test_release_state(void)
{
    const char *dir = at("relstate");
    uint64_t ids[8], got[8];
    struct spool *s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true);

    if (!s)
        return;
    for (int i = 0; i < 8; i++)
        put(s, 50, (uint64_t)i, 1, &ids[i]);
    spool_release(s, ids[1]);
    spool_release(s, ids[2]);
    spool_release(s, ids[4]);
    spool_close(s);
    s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true);
    if (!s)
        return;
    ok(list_ids(s, got, 8) == 5 && got[0] == ids[0] && got[1] == ids[3] && got[2] == ids[5],
       "released ranges are remembered across a clean restart");
    spool_close(s);
    flip_byte(at("relstate/released"), 30);
    s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true);
    ok(s && list_ids(s, got, 8) == 8, "a damaged release state is ignored: all come back");
    ok(strstr(log_taken(), "is damaged") != NULL, "and the damage is logged");
    spool_close(s);
    rm_tree(dir);
}

/* The bytes of a small file, or -1. */
static ssize_t file_get(const char *path, unsigned char *p, size_t max)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(p, 1, max, f) : 0;
    if (f)
        fclose(f);
    return f ? (ssize_t)n : -1;
}

static void file_put(const char *path, const unsigned char *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len)
        diag("cannot write %s", path);
    if (f)
        fclose(f);
}

/*
 * The saved state is the truth about the files only while they are as the
 * clean close left them: the first change of a later run (a new segment, a
 * deleted one) removes it, and a state file that survived such a change
 * (a crash before its removal reached the disk) is not used for counting,
 * since the newest segment is named at or above its next id.
 */
static void test_state_current(void)
{
    const char *dir = at("current"), *rel = at("current/released");
    unsigned char saved[4096];
    uint64_t ids[12], got[16], id = 0;
    ssize_t saved_len;
    pid_t pid;
    int status;
    /* 440-byte entries, 2048-byte segments: 4 entries a segment (1, 5, 9). */
    struct spool *s = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, true);

    if (!s)
        return;
    for (int i = 0; i < 12; i++)
        put(s, 400, (uint64_t)i, 1, &ids[i]);
    spool_release(s, ids[0]);
    spool_release(s, ids[1]);
    spool_close(s);
    s = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, true);
    ok(s && exists(rel) && spool_stats(s)->entries == 10,
       "an open that changes nothing keeps the saved state");
    ok(s && put(s, 400, 12, 1, &id) == PIPIT_OK && !exists(rel),
       "the run's first new segment removes it");
    spool_close(s);
    s = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, true);
    ok(s && exists(rel), "a clean close saves it again");
    spool_release(s, ids[2]);
    spool_release(s, ids[3]);
    ok(s && !exists(seg_path(dir, ids[0])) && !exists(rel),
       "deleting a released segment removes it first");
    spool_close(s);

    saved_len = file_get(rel, saved, sizeof saved);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct spool *c = crashed = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, true);
        for (int i = 4; i < 8 && c; i++)
            spool_release(c, ids[i]);   /* segment 5 goes */
        if (!c || put(c, 400, 13, 1, &id) != PIPIT_OK)
            _exit(1);
        _exit(0);                       /* a crash */
    }
    bool child = saved_len > 0 && pid > 0 && waitpid(pid, &status, 0) == pid &&
                 WIFEXITED(status) && WEXITSTATUS(status) == 0 && !exists(seg_path(dir, ids[4]));
    ok(child, "a child releases a segment, appends and exits without closing");
    if (!child)
        return;
    file_put(rel, saved, (size_t)saved_len);   /* as if its removal was lost */
    s = sp_open(dir, 1 << 20, 2048, SPOOL_BLOCK, true);
    ok(s && spool_stats(s)->corrupt_entries == 0 && list_ids(s, got, 16) == 6 &&
       got[0] == ids[8] && got[3] == ids[11],
       "a state older than the newest segment counts nothing as lost");
    spool_close(s);
    rm_tree(dir);
    log_taken();
}

/* Found by fuzz_spool: garbage and a damaged copy of an entry between good
 * entries with consecutive ids lose no entry, but their bytes are counted. */
static void test_regression_dup_id(void)
{
    const char *dir = at("dupid");
    uint64_t ids[3];
    size_t len;
    struct spool *s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, false);

    if (!s)
        return;
    for (int i = 0; i < 3; i++)
        put(s, 30 + (size_t)i * 10, (uint64_t)i, 1, &ids[i]);
    spool_close(s);
    unlink(at("dupid/released"));

    /* e1, 63 bytes of garbage, e2, e3 with a damaged byte, 51 of garbage, e3 */
    FILE *f = fopen(seg_path(dir, 1), "rb");
    unsigned char in[512], out[1024];
    len = f ? fread(in, 1, sizeof in, f) : 0;
    if (f)
        fclose(f);
    size_t e1 = HDR + 30, e2 = HDR + 40, e3 = HDR + 50, n = 0;
    memcpy(out + n, in, e1), n += e1;
    for (int i = 0; i < 63; i++)
        out[n++] = (unsigned char)(i * 37 + 1);
    memcpy(out + n, in + e1, e2 + e3), n += e2 + e3;
    out[n - 5] ^= 1;
    for (int i = 0; i < 51; i++)
        out[n++] = (unsigned char)(i * 91 + 3);
    memcpy(out + n, in + e1 + e2, e3), n += e3;
    f = fopen(seg_path(dir, 1), "wb");
    if (f) {
        fwrite(out, 1, n, f);
        fclose(f);
    }
    s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, false);
    uint64_t got[4];
    ok(len == e1 + e2 + e3 && s && list_ids(s, got, 4) == 3 && entry_is(s, 1, 30, 0) &&
       entry_is(s, 2, 40, 1) && entry_is(s, 3, 50, 2), "all three ids come back intact");
    ok(s && spool_stats(s)->corrupt_entries == 0 && spool_stats(s)->corrupt_bytes == 63 + e3 + 51,
       "no entry is lost; the skipped bytes are counted");
    spool_close(s);
    rm_tree(dir);
    log_taken();
}

/* A write that fails half-way (RLIMIT_FSIZE: EFBIG) leaves nothing behind. */
static void test_failed_write(void)
{
    const char *dir = at("efbig");
    uint64_t ids[5];
    struct rlimit old, lim;
    struct stat sb;
    struct spool *s = sp_open(dir, 4 << 20, 1 << 20, SPOOL_BLOCK, true);

    if (!s)
        return;
    for (int i = 0; i < 3; i++)
        put(s, 1000, (uint64_t)i, 1, &ids[i]);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 3 * (HDR + 1000) + 500;  /* the next entry gets half-written */
    setrlimit(RLIMIT_FSIZE, &lim);
    int r = put(s, 1000, 3, 1, &ids[3]);
    setrlimit(RLIMIT_FSIZE, &old);
    is_int(r, PIPIT_EIO, "a write cut short: EIO");
    ok(stat(seg_path(dir, ids[0]), &sb) == 0 && sb.st_size == 3 * (HDR + 1000) &&
       spool_stats(s)->bytes == 3 * (HDR + 1000), "the file is cut back to its previous end");
    ok(put(s, 1000, 3, 1, &ids[3]) == PIPIT_OK && ids[3] == ids[2] + 1,
       "the next append works and takes the unused id");
    spool_close(s);
    s = sp_open(dir, 4 << 20, 1 << 20, SPOOL_BLOCK, true);
    bool good = s && spool_stats(s)->entries == 4 && spool_stats(s)->corrupt_entries == 0;
    for (int i = 0; good && i < 4; i++)
        good = entry_is(s, ids[i], 1000, (uint64_t)i);
    ok(good, "after reopen: the 4 entries, intact, and no damage");
    ok(strstr(log_taken(), "cannot append") != NULL, "the failed write is logged");
    spool_close(s);
    rm_tree(dir);
}

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Make every fdatasync of this process fail with EIO; false if not possible. */
static bool fail_fdatasync(void)
{
#ifdef TEST_AUDIT_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fdatasync, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EIO & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { (unsigned short)(sizeof f / sizeof f[0]), f };
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#else
    return false;
#endif
}

/* A failed fdatasync: EIO, the entry cut off, the segment closed to appends. */
static void test_failed_sync(void)
{
    const char *dir = at("syncfail");
    uint64_t ids[3];
    int status;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct spool *s = crashed = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true);
        struct stat sb;
        if (!s || put(s, 100, 0, 1, &ids[0]) != PIPIT_OK || put(s, 100, 1, 1, &ids[1]) != PIPIT_OK)
            _exit(1);
        if (!fail_fdatasync())
            _exit(77);
        if (put(s, 100, 2, 1, &ids[2]) != PIPIT_OK &&             /* EIO, sealed */
            stat(seg_path(dir, 1), &sb) == 0 && sb.st_size == 2 * (HDR + 100) &&
            put(s, 100, 2, 1, &ids[2]) != PIPIT_OK &&             /* a new segment */
            exists(seg_path(dir, 3)) && stat(seg_path(dir, 3), &sb) == 0 && sb.st_size == 0)
            _exit(0);
        _exit(2);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        ok(0, "the child with failing fdatasync ran");
        skip(1, "no child");
        return;
    }
    if (WEXITSTATUS(status) == 77) {
        skip(2, "cannot install a seccomp filter");
        return;
    }
    ok(WEXITSTATUS(status) == 0, "a failed fdatasync: EIO, the entry cut off, the next "
       "append in a new segment");
    struct spool *s = sp_open(dir, 1 << 20, 1 << 20, SPOOL_BLOCK, true);
    ok(s && spool_stats(s)->entries == 2 && spool_stats(s)->corrupt_entries == 0 &&
       entry_is(s, 1, 100, 0) && entry_is(s, 2, 100, 1), "after reopen: the two good entries only");
    spool_close(s);
    rm_tree(dir);
    log_taken();
}

/* A real full disk: a 256 KiB tmpfs. */
static void test_disk_full(void)
{
    const char *mnt = at("tmpfs"), *dir = at("tmpfs/spool"), *filler = at("tmpfs/filler");
    uint64_t ids[66];
    size_t n = 0;
    int r = PIPIT_OK, fd;

    mkdir(mnt, 0700);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k,mode=0700") != 0) {
        char why[256];
        snprintf(why, sizeof why, "cannot mount a tmpfs (%s)", strerror(errno));
        skip(12, why);
        return;
    }
    fd = open(filler, O_CREAT | O_WRONLY, 0600);
    static char zeros[32768];
    if (fd < 0 || write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros)
        diag("cannot write the filler file");
    if (fd >= 0)
        close(fd);
    struct spool *s = sp_open(dir, 16 << 20, 64 << 10, SPOOL_BLOCK, true);
    if (!s)
        goto out;
    while (n < 64 && (r = put(s, 10000, n, 1, &ids[n])) == PIPIT_OK)
        n++;
    is_int(r, PIPIT_EIO, "appends until the disk is full, then EIO");
    diag("%zu entries of 10000 bytes fit", n);
    ok(n > 5 && seg_bytes(dir, NULL) == n * (HDR + 10000) &&
       spool_stats(s)->bytes == n * (HDR + 10000), "nothing half-written stays on disk");
    is_int(put(s, 10000, n, 1, &ids[n]), PIPIT_EIO, "still full: EIO again");
    is_int((int)spool_stats(s)->write_errors, 2, "both failed writes are counted");
    {
        const char *text = log_taken(), *p = text;
        int errors = 0;
        while ((p = strstr(p, "level=error")) != NULL) {
            errors++;
            p++;
        }
        ok(errors == 1 && strstr(text, "No space left") && strstr(text, "policy block") &&
           strstr(text, dir), "the episode is logged once, with the path and the policy");
    }
    spool_close(s);
    s = sp_open(dir, 16 << 20, 64 << 10, SPOOL_BLOCK, true);
    if (!s)
        goto out;
    uint64_t got[64];
    bool good = list_ids(s, got, 64) == n && spool_stats(s)->corrupt_entries == 0;
    for (size_t i = 0; good && i < n; i++)
        good = got[i] == ids[i] && entry_is(s, ids[i], 10000, i);
    ok(good, "after reopen: exactly the entries reported appended, intact");
    unlink(filler);
    ok(put(s, 10000, n, 1, &ids[n]) == PIPIT_OK, "with space freed, appends work again");
    ok(strstr(log_taken(), "writes succeed again") == NULL,
       "a reopened spool starts without an episode");
    spool_close(s);
    s = sp_open(dir, 16 << 20, 64 << 10, SPOOL_BLOCK, true);
    ok(s && spool_stats(s)->entries == n + 1 && spool_stats(s)->corrupt_entries == 0 &&
       entry_is(s, ids[n], 10000, n), "and the new entry is there after reopen");
    spool_close(s);
    rm_tree(dir);

    /* drop_oldest: a full disk drops the oldest segment, and the write
     * that hit ENOSPC then succeeds; every entry reported appended is on
     * disk, each drop counted. */
    fd = open(filler, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0 || write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros)
        diag("cannot write the filler file");
    if (fd >= 0)
        close(fd);
    log_taken();
    s = sp_open(dir, 16 << 20, 32 << 10, SPOOL_DROP_OLDEST, true);
    if (!s)
        goto out;
    size_t k, failed = 0;
    for (k = 0; k < 60; k++)
        if (put(s, 10000, k, 3, &ids[k % 64]) != PIPIT_OK)
            failed++;
    const struct spool_stats *st = spool_stats(s);
    diag("drop_oldest on a full disk: %" PRIu64 " entries kept, %" PRIu64 " dropped",
         st->entries, st->dropped_entries);
    ok(failed == 0 && st->dropped_entries > 0 && st->dropped_records == 3 * st->dropped_entries &&
       st->entries + st->dropped_entries == 60 && st->write_errors == 0,
       "under drop_oldest every append succeeds: the oldest segments are dropped, counted");
    ok(seg_bytes(dir, NULL) == st->entries * (HDR + 10000) && st->bytes == seg_bytes(dir, NULL),
       "the files hold exactly the entries kept");
    ok(strstr(log_taken(), "the disk is full") != NULL, "the drops are logged");
    spool_close(s);
out:
    if (umount2(mnt, MNT_DETACH) != 0)
        diag("umount %s: %s", mnt, strerror(errno));
    rmdir(mnt);
}

int main(void)
{
    const char *t = getenv("TMPDIR");

    umask(022);
    snprintf(tmp, sizeof tmp, "%s/pipit-test-spool.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp))
        plan_skip_all("cannot make a temporary directory");
    log_file = tmpfile();
    if (!log_file)
        plan_skip_all("cannot make a temporary file");
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);

    test_basic();
    test_large();
    test_reopen();
    test_crash();
    test_segments();
    test_block();
    test_drop_oldest();
    test_erange();
    test_damage_live();
    test_files();
    test_release_state();
    test_state_current();
    test_regression_dup_id();
    test_failed_write();
    test_failed_sync();
    test_disk_full();

    rm_tree(tmp);
    fclose(log_file);
    return done_testing();
}
