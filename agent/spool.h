/* spool.h: the agent's write-ahead spool: encoded batches on disk until every output has them. */
#ifndef PIPIT_SPOOL_H
#define PIPIT_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

enum spool_policy {
    SPOOL_BLOCK = 0,                    /* full: refuse new entries (caller pauses) */
    SPOOL_DROP_OLDEST = 1               /* full: drop the oldest unreleased entries */
};

struct spool_config {
    const char *dir;                    /* created 0700 if missing */
    uint64_t max_bytes;                 /* bound on all segment files together */
    uint64_t segment_bytes;             /* a segment is closed at this size (0: 16 MiB) */
    int policy;                         /* enum spool_policy */
    bool fsync;                         /* fsync each append before it returns */
};

struct spool_stats {
    uint64_t bytes;                     /* on disk now, all segments */
    uint64_t entries;                   /* unreleased now */
    uint64_t appended;                  /* entries appended since open */
    uint64_t released;
    uint64_t full;                      /* appends refused (block policy) */
    uint64_t dropped_entries;           /* dropped by drop_oldest */
    uint64_t dropped_records;           /* the records in them */
    uint64_t corrupt_entries;           /* damaged: skipped at open, or by spool_next */
    uint64_t corrupt_bytes;             /* bytes skipped with them */
    uint64_t write_errors;              /* appends that failed on I/O (disk full, EIO) */
};

/* What an entry holds besides its data. */
struct spool_entry {
    uint64_t id;                        /* increasing, never reused */
    int kind;                           /* record kind of the batch */
    uint64_t seq;                       /* the batch's sequence number */
    uint32_t count;                     /* records in the batch */
    size_t len;                         /* bytes of data */
};

/* A spool is used from one thread (the loop's); see docs/spool.md. */
struct spool;

/*
 * Open the spool in c->dir: scan every segment, check each entry's CRC,
 * keep the good ones as unreleased (they are delivered again), skip and
 * count damaged ones (a torn tail after a crash, bit flips, zeroed ranges),
 * and log what was skipped. The directory is locked (flock) while open: a
 * second open of it fails. Returns the spool (close with spool_close) or
 * NULL with a reason in err.
 */
struct spool *spool_open(const struct spool_config *c, char *err, size_t errlen);

/*
 * Append one entry (written, and fsync'd when c->fsync, before return).
 * Returns PIPIT_OK with its id, PIPIT_EFULL when max_bytes would be
 * exceeded under SPOOL_BLOCK (nothing written), PIPIT_ERANGE for an entry
 * larger than max_bytes, or PIPIT_EIO (disk full, I/O error; nothing is
 * reported appended that is not on disk; the first failure after a success
 * is logged as an error, later ones at debug level, all counted in
 * write_errors). Under SPOOL_DROP_OLDEST the oldest unreleased entries are
 * dropped to make room, counted in the stats: when max_bytes would be
 * exceeded, and when the disk is full (ENOSPC, EDQUOT).
 */
int spool_append(struct spool *s, int kind, uint64_t seq, uint32_t count,
                 const void *data, size_t len, uint64_t *id);

/* Every output has the entry: forget it. A segment file is deleted when all
 * its entries are released (the newest stays until a newer one exists: its
 * name keeps ids from repeating). Returns PIPIT_OK or PIPIT_ENOENT. */
int spool_release(struct spool *s, uint64_t id);

/*
 * The first unreleased entry with an id greater than after (0: from the
 * start): its metadata in e and, when data is not NULL, its bytes read back
 * from disk into data (CRC checked again; data's contents are replaced).
 * Returns PIPIT_OK, PIPIT_ENOENT at the end, PIPIT_ENOMEM, or PIPIT_EIO when
 * the entry is damaged now: it is then dropped and counted, and e still
 * describes it, so that iteration can go on after e->id.
 */
int spool_next(struct spool *s, uint64_t after, struct spool_entry *e, struct buf *data);

/* Ids of entries dropped by drop_oldest since the last call (so the caller
 * can forget them); returns how many were written to ids (at most max). */
size_t spool_take_dropped(struct spool *s, uint64_t *ids, size_t max);

const struct spool_stats *spool_stats(const struct spool *s);
/* Save which entries are released (a restart after a clean close does not
 * deliver them again), close the files and free s. */
void spool_close(struct spool *s);

#endif
