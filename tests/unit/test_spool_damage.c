/* test_spool_damage.c: generated damage to a spool on disk (cuts, bit flips, zeroed ranges, lost and replaced files) and what open recovers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pipit/plugin.h>
#include "buf.h"
#include "log.h"
#include "spool.h"
#include "../tap.h"

#define HDR 40                          /* entry header size (docs/spool.md) */
#define MAXENT 512                      /* entries in a template spool, at most */
#define MAXLEN 3000                     /* bytes of data in an entry, at most */
#define MAXFILES 32
#define SEED 0x5eed5eed5eed5eedull      /* fixed: every run damages the same way */

static char tmp[4096];                  /* private temporary directory */
static char tdir[4200], wdir[4200];     /* the template spool, the damaged copy */

struct tfile {
    char name[32];
    unsigned char *data;
    size_t len;
    bool seg;                           /* a segment (else the release state) */
};

struct tent {
    uint64_t id;
    int file;                           /* index in files[] */
    uint64_t off;                       /* header offset in the file */
    uint64_t size;                      /* header and data */
};

static struct tfile files[MAXFILES];
static int nfiles;
static struct tent ents[MAXENT];
static int nent = 48;                   /* entries in the template */
static uint64_t segment = 2048;         /* its segment_bytes: about 5 segments */
static bool big;                        /* entries of 500..3000 bytes, not 20..300 */
static uint64_t max_id;
static uint64_t rng = SEED;
static FILE *devnull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* What entry id holds: the data length and bytes, kind, seq and count. */
static size_t ent_len(uint64_t id)
{
    return big ? 500 + (size_t)((id * 7919) % 2500) : 20 + (size_t)((id * 7919) % 280);
}
static int ent_kind(uint64_t id) { return (int)(id % 5); }
static uint64_t ent_seq(uint64_t id) { return id * 3; }
static uint32_t ent_count(uint64_t id) { return (uint32_t)(id % 17); }
/* Released in the template (never a whole segment). */
static bool ent_released(uint64_t id) { return id % 11 == 3; }

static void ent_fill(unsigned char *p, uint64_t id)
{
    uint64_t x = id * 0x9E3779B97F4A7C15ull + 7;
    for (size_t i = 0; i < ent_len(id); i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

static struct spool *sp_open(const char *dir)
{
    struct spool_config c = { .dir = dir, .max_bytes = 1 << 20, .segment_bytes = segment,
                              .policy = SPOOL_BLOCK, .fsync = false };
    char err[512];
    struct spool *s = spool_open(&c, err, sizeof err);
    if (!s)
        diag("spool_open %s: %s", dir, err);
    return s;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct tfile *)a)->name, ((const struct tfile *)b)->name);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    struct stat sb;
    unsigned char *p = NULL;
    int fd = open(path, O_RDONLY);

    if (fd < 0 || fstat(fd, &sb) != 0)
        goto out;
    p = malloc((size_t)sb.st_size + 1);
    if (p && read(fd, p, (size_t)sb.st_size) != sb.st_size) {
        free(p);
        p = NULL;
    }
    *len = (size_t)sb.st_size;
out:
    if (fd >= 0)
        close(fd);
    return p;
}

static bool spit(const char *dir, const char *name, const unsigned char *p, size_t len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* In place, not O_TRUNC: freeing and reallocating blocks is slow on
     * some file systems, and most cases change a few bytes. */
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    bool good = fd >= 0 && (len == 0 || write(fd, p, len) == (ssize_t)len) &&
                ftruncate(fd, (off_t)len) == 0;
    if (fd >= 0)
        close(fd);
    return good;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/*
 * Write the template spool (nent entries, some released, closed cleanly),
 * load its files and walk its segments to learn where each entry lies.
 */
static bool build_template(void)
{
    struct spool *s = sp_open(tdir);
    unsigned char data[MAXLEN];
    uint64_t id;
    DIR *d;
    struct dirent *de;

    if (!s)
        return false;
    for (int i = 0; i < nent; i++) {
        uint64_t want = (uint64_t)i + 1;
        ent_fill(data, want);
        if (spool_append(s, ent_kind(want), ent_seq(want), ent_count(want), data,
                         ent_len(want), &id) != PIPIT_OK || id != want)
            return false;
        max_id = id;
    }
    for (uint64_t i = 1; i <= (uint64_t)nent; i++)
        if (ent_released(i))
            spool_release(s, i);
    spool_close(s);

    d = opendir(tdir);
    if (!d)
        return false;
    while ((de = readdir(d)) != NULL && nfiles < MAXFILES) {
        struct tfile *f = &files[nfiles];
        char path[8192];
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.' || nl >= sizeof f->name)
            continue;
        memcpy(f->name, de->d_name, nl + 1);
        snprintf(path, sizeof path, "%s/%s", tdir, de->d_name);
        f->data = slurp(path, &f->len);
        f->seg = strstr(f->name, ".seg") != NULL;
        if (!f->data)
            return false;
        nfiles++;
    }
    closedir(d);
    qsort(files, (size_t)nfiles, sizeof *files, cmp_file);

    int n = 0;
    for (int fi = 0; fi < nfiles; fi++) {
        uint64_t pos = 0;
        if (!files[fi].seg)
            continue;
        while (pos + HDR <= files[fi].len && n < nent) {
            const unsigned char *h = files[fi].data + pos;
            ents[n].id = get64(h + 32);
            ents[n].file = fi;
            ents[n].off = pos;
            ents[n].size = HDR + (h[16] | (uint64_t)h[17] << 8 | (uint64_t)h[18] << 16 |
                                  (uint64_t)h[19] << 24);
            if (ents[n].id != (uint64_t)n + 1)
                return false;
            pos += ents[n].size;
            n++;
        }
        if (pos != files[fi].len)
            return false;
    }
    return n == nent;
}

static uint64_t dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t sum = 0;

    while (d && (de = readdir(d)) != NULL) {
        char path[8192];
        struct stat sb;
        if (strlen(de->d_name) != 20 || !strstr(de->d_name, ".seg"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &sb) == 0)
            sum += (uint64_t)sb.st_size;
    }
    if (d)
        closedir(d);
    return sum;
}

static bool exists_in(const char *dir, const char *name)
{
    char path[8192];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &sb) == 0;
}

/*
 * Make the work directory the template with file fi replaced by data (or
 * deleted when data is NULL). Only what the previous case changed is
 * written again: its damaged file, the release state (rewritten by every
 * close), files open deleted, and files an append added.
 */
static int restore_last = -1;           /* the file the last case damaged */

static bool restore(int fi, const unsigned char *data, size_t len)
{
    int last = restore_last;
    DIR *d;
    struct dirent *de;
    bool good = true;

    mkdir(wdir, 0700);
    d = opendir(wdir);
    while (d && (de = readdir(d)) != NULL) {
        bool known = de->d_name[0] == '.';
        for (int j = 0; j < nfiles && !known; j++)
            known = strcmp(de->d_name, files[j].name) == 0;
        if (!known) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", wdir, de->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    for (int j = 0; j < nfiles; j++) {
        if (j == fi && !data) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", wdir, files[j].name);
            unlink(path);
        } else if (j == fi) {
            good = good && spit(wdir, files[j].name, data, len);
        } else if (j == last || !files[j].seg || !exists_in(wdir, files[j].name)) {
            good = good && spit(wdir, files[j].name, files[j].data, files[j].len);
        }
    }
    restore_last = fi;
    return good;
}

/*
 * One case: the template with file fi replaced by data (len bytes), or
 * deleted when data is NULL; with crashed set, the release state is gone
 * too, as after a stop without spool_close. Checks that open succeeds;
 * that exactly the entries whose bytes are unchanged come back, intact
 * (less the released ones while the release state is intact); that
 * corrupt_entries and corrupt_bytes follow the rule of docs/spool.md; and
 * that the next id is above every old one. Returns true, or false with the
 * reason in why.
 */
static bool crashed;
static bool run_case(int fi, const unsigned char *data, size_t len, char *why, size_t whylen)
{
    bool touched[MAXENT], present[MAXENT];
    bool rel_intact = true, any = false;
    uint64_t want_corrupt = 0, want_bytes = 0, end = 0, prev = 0, npresent = 0;
    struct spool_entry e;
    struct buf b = BUF_INIT;
    unsigned char expect[MAXLEN];
    bool good = false;
    struct spool *s = NULL;

    if (!restore(fi, data, len)) {
        snprintf(why, whylen, "cannot write the damaged copy");
        return false;
    }
    if (crashed) {
        char path[8192];
        snprintf(path, sizeof path, "%s/released", wdir);
        unlink(path);
        rel_intact = false;
    } else if (!files[fi].seg) {
        rel_intact = data && len == files[fi].len && memcmp(data, files[fi].data, len) == 0;
    }
    if (files[fi].seg)
        prev = strtoull(files[fi].name, NULL, 16) - 1;  /* ids start at the name */

    /*
     * Which entries changed, and what open should count. With the release
     * state intact, exactly the owed (unreleased) entries that are gone.
     * Without it (a crash), the rule for a segment alone: ids in a segment
     * are consecutive, so a gap before a good entry is that many lost, and
     * damaged bytes after the last good entry are one more.
     */
    for (int i = 0; i < nent; i++) {
        const struct tent *t = &ents[i];
        touched[i] = false;
        if (t->file == fi && data)
            touched[i] = t->off + t->size > len ||
                         memcmp(data + t->off, files[fi].data + t->off, t->size) != 0;
        bool gone = (t->file == fi && !data) || touched[i];
        present[i] = !gone && !(rel_intact && ent_released(t->id));
        npresent += present[i];
        if (rel_intact && gone && !ent_released(t->id))
            want_corrupt++;
        if (t->file == fi && data && files[fi].seg && !touched[i]) {
            if (!rel_intact)
                want_corrupt += t->id - prev - 1;
            want_bytes += t->size;
            prev = t->id;
            end = t->off + t->size;
            any = true;
        }
    }
    if (data && files[fi].seg) {
        if (!any)                       /* no good entry: the whole file is damage */
            end = 0;
        if (!rel_intact && len > end)
            want_corrupt++;
        want_bytes = len - want_bytes;
    } else {
        want_bytes = 0;
    }

    s = sp_open(wdir);
    if (!s) {
        snprintf(why, whylen, "spool_open failed");
        return false;
    }
    uint64_t after = 0;
    int i = 0;
    for (;;) {
        int r = spool_next(s, after, &e, &b);
        if (r == PIPIT_ENOENT)
            break;
        if (r != PIPIT_OK) {
            snprintf(why, whylen, "spool_next: %d", r);
            goto out;
        }
        while (i < nent && !present[i])
            i++;
        if (i == nent || e.id != ents[i].id) {
            snprintf(why, whylen, "entry %" PRIu64 " returned, %" PRIu64 " expected", e.id,
                     i < nent ? ents[i].id : 0);
            goto out;
        }
        ent_fill(expect, e.id);
        if (e.len != ent_len(e.id) || b.len != e.len || memcmp(b.data, expect, e.len) != 0 ||
            e.kind != ent_kind(e.id) || e.seq != ent_seq(e.id) || e.count != ent_count(e.id)) {
            snprintf(why, whylen, "entry %" PRIu64 " differs", e.id);
            goto out;
        }
        after = e.id;
        i++;
    }
    while (i < nent && !present[i])
        i++;
    if (i < nent) {
        snprintf(why, whylen, "entry %" PRIu64 " missing", ents[i].id);
        goto out;
    }
    const struct spool_stats *st = spool_stats(s);
    if (st->corrupt_entries != want_corrupt || st->corrupt_bytes != want_bytes) {
        snprintf(why, whylen, "corrupt %" PRIu64 " entries %" PRIu64 " bytes, want %" PRIu64
                 " and %" PRIu64, st->corrupt_entries, st->corrupt_bytes, want_corrupt,
                 want_bytes);
        goto out;
    }
    if (st->entries != npresent || st->bytes != dir_bytes(wdir)) {
        snprintf(why, whylen, "stats: %" PRIu64 " entries (want %" PRIu64 "), %" PRIu64
                 " bytes (files %" PRIu64 ")", st->entries, npresent, st->bytes,
                 dir_bytes(wdir));
        goto out;
    }
    uint64_t id;
    if (spool_append(s, 1, 1, 1, "after", 5, &id) != PIPIT_OK || id <= max_id) {
        snprintf(why, whylen, "append after damage: id %" PRIu64, id);
        goto out;
    }
    good = true;
out:
    buf_free(&b);
    spool_close(s);
    return good;
}

/* Run a family of cases and report it as one test line. */
struct family {
    const char *name;
    int cases;
    int failed;
};

static void record(struct family *f, bool good, const char *what, const char *why)
{
    f->cases++;
    if (good)
        return;
    if (f->failed++ < 8)
        diag("%s: %s", what, why);
}

static void report(const struct family *f)
{
    ok(f->failed == 0 && f->cases > 0, "%s%s: %d cases, %d wrong", f->name,
       crashed ? ", without a release state (after a crash)" : "", f->cases, f->failed);
}

static int pick_segment(void)
{
    int nseg = 0;
    for (int i = 0; i < nfiles; i++)
        nseg += files[i].seg;
    int k = (int)below((uint64_t)nseg);
    for (int i = 0; i < nfiles; i++)
        if (files[i].seg && k-- == 0)
            return i;
    return 0;
}

static void test_truncation(void)
{
    char why[256], what[128];
    int segs[2] = { -1, -1 }, nseg = 0;

    for (int i = 0; i < nfiles; i++)
        if (files[i].seg) {
            if (nseg == 1)
                segs[0] = i;            /* one in the middle */
            segs[1] = i;                /* and the newest */
            nseg++;
        }
    for (int k = 0; k < 2; k++) {
        struct family f = { k ? "truncation of the newest segment at every offset"
                              : "truncation of a middle segment at every offset", 0, 0 };
        int fi = segs[k];
        for (size_t t = 0; fi >= 0 && t < files[fi].len; t++) {
            snprintf(what, sizeof what, "%.31s cut at %zu", files[fi].name, t);
            record(&f, run_case(fi, files[fi].data, t, why, sizeof why), what, why);
        }
        report(&f);
    }
}

static void test_bit_flips(void)
{
    struct family f = { "single bit flips at random offsets", 0, 0 };
    char why[256], what[128];

    for (int c = 0; c < 400; c++) {
        int fi = pick_segment();
        size_t len = files[fi].len, off = (size_t)below(len);
        int bit = (int)below(8);
        unsigned char *p = malloc(len);
        memcpy(p, files[fi].data, len);
        p[off] ^= (unsigned char)(1u << bit);
        snprintf(what, sizeof what, "%.31s bit %d of byte %zu", files[fi].name, bit, off);
        record(&f, run_case(fi, p, len, why, sizeof why), what, why);
        free(p);
    }
    report(&f);
}

static void test_zeroed(void)
{
    struct family f = { "zero-filled ranges", 0, 0 };
    char why[256], what[128];

    for (int c = 0; c < 200; c++) {
        int fi = pick_segment();
        size_t len = files[fi].len, off = (size_t)below(len);
        size_t n = 1 + (size_t)below(c % 4 == 0 ? 1200 : 64);
        if (n > len - off)
            n = len - off;
        unsigned char *p = malloc(len);
        memcpy(p, files[fi].data, len);
        memset(p + off, 0, n);
        snprintf(what, sizeof what, "%.31s zeroed %zu bytes at %zu", files[fi].name, n, off);
        record(&f, run_case(fi, p, len, why, sizeof why), what, why);
        free(p);
    }
    report(&f);
}

static void test_deleted(void)
{
    struct family f = { "a deleted segment file", 0, 0 };
    char why[256], what[128];

    for (int fi = 0; fi < nfiles; fi++) {
        if (!files[fi].seg)
            continue;
        snprintf(what, sizeof what, "%.31s deleted", files[fi].name);
        record(&f, run_case(fi, NULL, 0, why, sizeof why), what, why);
    }
    report(&f);
}

static void test_garbage(void)
{
    struct family f = { "garbage appended to a segment", 0, 0 };
    char why[256], what[128];

    for (int c = 0; c < 60; c++) {
        int fi = pick_segment();
        size_t len = files[fi].len, n = 1 + (size_t)below(300);
        unsigned char *p = malloc(len + n);
        memcpy(p, files[fi].data, len);
        for (size_t i = 0; i < n; i++)
            p[len + i] = (unsigned char)rnd();
        if (c % 5 == 0 && n >= 4)       /* sometimes starting with an entry magic */
            memcpy(p + len, files[fi].data, 4);
        snprintf(what, sizeof what, "%.31s + %zu bytes", files[fi].name, n);
        record(&f, run_case(fi, p, len + n, why, sizeof why), what, why);
        free(p);
    }
    report(&f);
}

static void test_replaced(void)
{
    struct family f = { "a segment replaced by random bytes", 0, 0 };
    char why[256], what[128];

    for (int c = 0; c < 30; c++) {
        int fi = c < nfiles && files[c].seg ? c : pick_segment();
        size_t len = c < 10 ? files[fi].len : (size_t)below(4096);
        unsigned char *p = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            p[i] = (unsigned char)rnd();
        snprintf(what, sizeof what, "%.31s replaced by %zu random bytes", files[fi].name, len);
        record(&f, run_case(fi, p, len, why, sizeof why), what, why);
        free(p);
    }
    report(&f);
}

static void test_release_state(void)
{
    struct family f = { "damage to the saved release state", 0, 0 };
    char why[256], what[128];
    int fi = -1;

    for (int i = 0; i < nfiles; i++)
        if (!files[i].seg)
            fi = i;
    if (fi < 0) {
        ok(0, "the template has a release state file");
        return;
    }
    for (int c = 0; c < 60; c++) {
        size_t len = files[fi].len;
        unsigned char *p = malloc(len + 1);
        memcpy(p, files[fi].data, len);
        if (c < 40) {
            size_t off = (size_t)below(len);
            p[off] ^= (unsigned char)(1u << below(8));
            snprintf(what, sizeof what, "bit flip at %zu", off);
        } else {
            len = (size_t)below(len);
            snprintf(what, sizeof what, "cut at %zu", len);
        }
        record(&f, run_case(fi, p, len, why, sizeof why), what, why);
        free(p);
    }
    record(&f, run_case(fi, NULL, 0, why, sizeof why), "deleted", why);
    report(&f);
}

/* Damage in a segment larger than the scan's 256 KiB read window, most of
 * it near the window's first boundary. */
static void test_big_segment(void)
{
    struct family f = { "damage in a 700 KiB segment, around the scan window's end", 0, 0 };
    char why[256], what[128];

    for (int i = 0; i < nfiles; i++)
        free(files[i].data);
    nfiles = 0;
    nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(wdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    restore_last = -1;
    big = true;
    nent = 400;
    segment = 1 << 20;
    if (!build_template() || !files[0].seg || files[0].len < 600000) {
        ok(0, "a template spool of one segment of 400 entries");
        return;
    }
    for (int c = 0; c < 80; c++) {
        size_t len = files[0].len, off, n;
        unsigned char *p = malloc(len);
        memcpy(p, files[0].data, len);
        off = c < 60 ? 262144 - 100 + (size_t)below(200) : (size_t)below(len);
        switch (c % 4) {
        case 0:
        case 1:
            p[off] ^= (unsigned char)(1u << below(8));
            snprintf(what, sizeof what, "bit flip at %zu", off);
            break;
        case 2:
            n = 1 + (size_t)below(5000);
            if (n > len - off)
                n = len - off;
            memset(p + off, 0, n);
            snprintf(what, sizeof what, "%zu bytes zeroed at %zu", n, off);
            break;
        default:
            len = off;
            snprintf(what, sizeof what, "cut at %zu", off);
        }
        record(&f, run_case(0, p, len, why, sizeof why), what, why);
        free(p);
    }
    report(&f);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    struct timespec t0, t1;

    umask(022);
    alarm(120);                         /* a hang is a failure */
    snprintf(tmp, sizeof tmp, "%s/pipit-test-spool-damage.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp))
        plan_skip_all("cannot make a temporary directory");
    devnull = fopen("/dev/null", "w");
    log_setup(devnull ? devnull : stderr, LOG_FMT_LOGFMT, PIPIT_LOG_ERROR);
    snprintf(tdir, sizeof tdir, "%s/template", tmp);
    snprintf(wdir, sizeof wdir, "%s/work", tmp);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    bool built = build_template();
    ok(built, "a template spool of %d entries in %d files", nent, nfiles);
    if (built) {
        char why[256] = "";
        ok(run_case(0, files[0].data, files[0].len, why, sizeof why),
           "the undamaged template reads back whole %s", why);
        diag("seed %#" PRIx64, (uint64_t)SEED);
        test_truncation();
        test_bit_flips();
        test_zeroed();
        test_deleted();
        test_garbage();
        test_replaced();
        test_release_state();
        crashed = true;
        test_truncation();
        test_bit_flips();
        test_zeroed();
        test_deleted();
        crashed = false;
        test_big_segment();
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    diag("%.2f s", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);

    for (int i = 0; i < nfiles; i++)
        free(files[i].data);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    if (devnull)
        fclose(devnull);
    return done_testing();
}
