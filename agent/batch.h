/* batch.h: batches of encoded records of one kind, open (filling) and closed (numbered). */
#ifndef PIPIT_BATCH_H
#define PIPIT_BATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <pipit/plugin.h>
#include "buf.h"

/* Limits at which an open batch closes. */
struct batch_limits {
    uint32_t max_records;
    size_t max_bytes;
    int64_t linger_ns;
};

/* A batch being filled with JSON lines of one kind. */
struct batch_open {
    int kind;
    uint64_t bid;                       /* pipeline-wide id, set at the first record */
    struct buf payload;
    uint32_t count;
    int64_t opened_ns;                  /* monotonic time of the first record */
};

/* A closed batch, queued for the outputs. */
struct batch {
    struct batch *next;                 /* in the pipeline's queue */
    struct pipit_batch b;               /* what flush() is given */
    char *payload;                      /* owned; b.payload points here */
    uint32_t pending;                   /* bit i: output i still owes delivery */
    uint32_t inflight;                  /* bit i: output i returned PIPIT_PENDING */
    char *wire;                         /* owned; b.wire points here */
    uint64_t spool_id;                  /* 0: not written to the spool (yet) */
    bool resident;                      /* payload and wire are in memory */
    size_t mem;                         /* bytes held: payload + wire */
};

/* Append one line (with its '\n'); the first line starts the linger clock. */
int batch_open_add(struct batch_open *o, const char *line, size_t len, int64_t now_ns);
/* True when o must close now by record count or size. */
bool batch_open_full(const struct batch_open *o, const struct batch_limits *l);
/* True when o holds records older than the linger time. */
bool batch_open_expired(const struct batch_open *o, const struct batch_limits *l,
                        int64_t now_ns);

/*
 * Close o into a new batch with sequence number seq and the agent id given
 * (borrowed; must outlive the batch). o is left empty. Returns the batch
 * (free with batch_free) or NULL on out of memory, o unchanged.
 */
struct batch *batch_close(struct batch_open *o, uint64_t seq, const char *agent_id);
void batch_free(struct batch *b);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t batch_clock_ns(void);

#endif
