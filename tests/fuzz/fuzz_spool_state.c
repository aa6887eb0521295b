/* fuzz_spool_state.c: libFuzzer target for the spool's saved release state: the input is the `released` file beside a fixed set of segments, opened, read back and closed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "log.h"
#include "spool.h"
#include "fuzz_dir.h"

#define NENT 24                         /* entries of the fixed spool: ids 1..NENT */
#define MAXSEG 16

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static FILE *devnull;
static struct {
    char name[32];
    unsigned char *data;
    size_t len;
} segs[MAXSEG];
static int nsegs;

static const struct spool_config config = { .max_bytes = 64 << 20, .segment_bytes = 1024,
                                            .policy = SPOOL_BLOCK, .fsync = false };

static void spit(const char *name, const void *p, size_t len)
{
    char path[512];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0 || (len && write(fd, p, len) != (ssize_t)len))
        abort();
    close(fd);
}

/* The fixed spool: NENT entries of 100 bytes in segments of 1024 bytes,
 * written once and kept in memory. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");
    struct spool_config c = config;
    unsigned char entry[100];
    char err[256];
    uint64_t id;
    DIR *d;
    struct dirent *de;

    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "%s/pipit-fuzz-spool-state.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull ? devnull : stderr, LOG_FMT_LOGFMT, PIPIT_LOG_ERROR);
    c.dir = dir;
    struct spool *s = spool_open(&c, err, sizeof err);
    for (int i = 0; s && i < NENT; i++) {
        memset(entry, 'a' + i, sizeof entry);
        if (spool_append(s, 1, (uint64_t)i + 1, 1, entry, sizeof entry, &id) != PIPIT_OK)
            abort();
    }
    if (!s)
        abort();
    spool_close(s);
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) {
        char path[512];
        struct stat sb;
        FILE *f;
        if (!strstr(de->d_name, ".seg") || nsegs == MAXSEG)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &sb) != 0 || !(f = fopen(path, "rb")))
            abort();
        snprintf(segs[nsegs].name, sizeof segs[nsegs].name, "%s", de->d_name);
        segs[nsegs].len = (size_t)sb.st_size;
        segs[nsegs].data = malloc(segs[nsegs].len + 1);
        if (!segs[nsegs].data || fread(segs[nsegs].data, 1, segs[nsegs].len, f) != segs[nsegs].len)
            abort();
        fclose(f);
        nsegs++;
    }
    if (d)
        closedir(d);
    if (nsegs < 2)
        abort();
    return 0;
}

/*
 * Whatever the state file says, the spool opens, every entry it keeps is
 * one of the fixed ones and reads back whole, in id order, the damage it
 * counts is bounded by what a state may claim, and ids go on above all.
 */
static void one(const uint8_t *data, size_t size)
{
    struct spool_config c = config;
    struct spool_entry e;
    struct buf b = BUF_INIT;
    char err[256];
    uint64_t after = 0, id;
    struct spool *s;

    fuzz_clear_dir(dir);
    for (int i = 0; i < nsegs; i++)
        spit(segs[i].name, segs[i].data, segs[i].len);
    spit("released", data, size);
    c.dir = dir;
    s = spool_open(&c, err, sizeof err);
    if (!s)
        abort();                        /* a bad state never stops the spool from opening */
    const struct spool_stats *st = spool_stats(s);
    if (st->entries > NENT || st->corrupt_bytes != 0 ||
        st->corrupt_entries > (uint64_t)(size / 8 + nsegs) << 20)
        abort();
    for (;;) {
        int r = spool_next(s, after, &e, &b);
        if (r == PIPIT_ENOENT)
            break;
        if (r != PIPIT_OK || e.id <= after || e.id > NENT || e.len != 100 ||
            b.len != 100 || (uint64_t)(unsigned char)b.data[0] != 'a' + e.id - 1 ||
            e.seq != e.id)
            abort();
        after = e.id;
    }
    if (spool_append(s, 1, 1, 1, "x", 1, &id) != PIPIT_OK || id <= NENT)
        abort();
    buf_free(&b);
    spool_close(s);
}

/* The input as it is, and with its CRC (bytes 24..28) made right, so that
 * the fuzzer gets past the check to the fields. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size >= 32) {
        uint8_t *p = malloc(size);
        uint32_t crc;
        if (!p)
            abort();
        memcpy(p, data, size);
        memset(p + 24, 0, 4);
        crc = (uint32_t)crc32(0L, p, (uInt)size);
        for (int i = 0; i < 4; i++)
            p[24 + i] = (uint8_t)(crc >> (8 * i));
        one(p, size);
        free(p);
    }
    return 0;
}
