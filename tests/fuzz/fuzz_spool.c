/* fuzz_spool.c: libFuzzer target for the spool's recovery: the input is a segment file, opened, read back and released. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "log.h"
#include "spool.h"
#include "fuzz_dir.h"

#define HDR 40                          /* entry header size (docs/spool.md) */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");

    snprintf(dir, sizeof dir, "%s/pipit-fuzz-spool.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        abort();
    devnull = fopen("/dev/null", "w");
    log_setup(devnull ? devnull : stderr, LOG_FMT_LOGFMT, PIPIT_LOG_ERROR);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spool_config c = { .dir = dir, .max_bytes = 64 << 20, .segment_bytes = 1 << 20,
                              .policy = SPOOL_BLOCK, .fsync = false };
    struct spool_entry e;
    struct buf b = BUF_INIT;
    char path[512], err[256];
    uint64_t after = 0, good = 0, bytes = 0, id;
    struct spool *s;
    int fd;

    fuzz_clear_dir(dir);                /* the last run's segment, state and append */
    snprintf(path, sizeof path, "%s/0000000000000001.seg", dir);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        abort();
    close(fd);

    s = spool_open(&c, err, sizeof err);
    if (!s)
        abort();                        /* damage never stops the spool from opening */
    const struct spool_stats *st = spool_stats(s);
    uint64_t entries = st->entries;
    if (st->bytes != size)
        abort();

    /* Every entry kept at open reads back, in id order, with its CRC good. */
    for (;;) {
        int r = spool_next(s, after, &e, &b);
        if (r == PIPIT_ENOENT)
            break;
        if (r != PIPIT_OK || e.id <= after || b.len != e.len || e.len > size)
            abort();
        bytes += HDR + e.len;
        after = e.id;
        good++;
    }
    if (good != entries || bytes + st->corrupt_bytes != size)
        abort();                        /* every byte is an entry's or damage */

    /* Release every other entry, then the rest; an append after it all. */
    after = 0;
    while (spool_next(s, after, &e, NULL) == PIPIT_OK) {
        after = e.id;
        if (e.id % 2 && spool_release(s, e.id) != PIPIT_OK)
            abort();
    }
    after = 0;
    while (spool_next(s, after, &e, NULL) == PIPIT_OK) {
        after = e.id;
        if (spool_release(s, e.id) != PIPIT_OK)
            abort();
    }
    if (st->entries != 0 || st->released != good)
        abort();
    if (spool_append(s, 1, 1, 1, "x", 1, &id) != PIPIT_OK || id <= after)
        abort();
    buf_free(&b);
    spool_close(s);
    return 0;
}
