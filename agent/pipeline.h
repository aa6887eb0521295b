/* pipeline.h: records into batches per kind, batches queued and handed to the outputs. */
#ifndef PIPIT_PIPELINE_H
#define PIPIT_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "batch.h"
#include "histogram.h"
#include "identity.h"
#include "instance.h"
#include "spool.h"
#include "wire.h"

struct pipeline_output {
    struct pipit_instance *ins;         /* an output instance (borrowed) */
    unsigned bit;                       /* its bit in batch.pending */
    uv_timer_t retry;                   /* backoff after PIPIT_RETRY */
    bool waiting;                       /* retry timer running */
    int64_t backoff_ms;
    uint64_t batches, records;          /* delivered */
    uint64_t retries;                   /* flush() returned PIPIT_RETRY */
    uint64_t inflight;                  /* batches flushed with PIPIT_PENDING */
    uint64_t failed_batches, failed_records;  /* flush() returned an error */
    int64_t failing_since_ns;           /* monotonic: first retry or error since
                                         * the last delivery; 0 while delivering */
    struct histogram latency;           /* seconds from batch close to delivery */
    struct pipeline *pl;
};

struct pipeline_stats {
    uint64_t records_in;                /* accepted into open batches */
    uint64_t records_full;              /* refused: max_pending_bytes reached */
    uint64_t records_unrouted;          /* no running output takes the kind */
    uint64_t records_lost;              /* undelivered when a drain timed out */
    uint64_t batches_closed;
    uint64_t seq_errors;                /* sequence reservation not persisted */
    uint64_t records_replayed;          /* found in the spool at start */
    uint64_t spool_waits;               /* batches that waited for spool space */
    uint64_t spool_errors;              /* spool writes or reads that failed */
    uint64_t records_spool_dropped;     /* dropped by spool.policy drop_oldest */
    uint64_t encode_errors;             /* batches that could not be encoded */
    struct histogram batch_records;     /* records per closed batch */
    uint64_t batch_bytes;               /* JSON payload of the batches encoded */
    uint64_t batch_wire_bytes;          /* the same, encoded and compressed */
};

struct pipeline_mark {                  /* an input's api->mark() */
    struct pipeline_mark *next;
    struct pipit_instance *ins;
    uint64_t token;
    uint64_t barrier;                   /* acked when no batch <= this id lives */
};

struct pipeline {
    uv_loop_t *loop;
    uint64_t next_bid;                  /* id of the next batch opened */
    struct pipeline_mark *marks, **marks_tail;
    struct identity *id;                /* borrowed: agent id and sequence */
    struct batch_limits limits;
    size_t max_pending;                 /* bytes, open + queued */
    size_t pending_bytes;
    struct batch_open open[PIPIT_RECORD_KIND_MAX + 1];
    struct batch *head, **tail;         /* closed batches, oldest first */
    size_t queued;                      /* batches in the queue */
    struct pipeline_output *outs;
    size_t nouts;
    uv_timer_t linger;                  /* closes batches at linger time */
    uv_timer_t kick;                    /* runs deliveries from the loop */
    void (*on_progress)(void *arg);     /* after deliveries (may be NULL) */
    void *progress_arg;
    struct pipeline_stats stats;
    int64_t drop_log_ns;                /* rate limit of drop warnings */
    uint64_t drops_unlogged;
    int handles;                        /* open uv handles, for pipeline_close */
    bool closing;
    bool close_when_free;               /* an input caught up while batches were queued */

    bool encode;                        /* wire-encode every closed batch */
    struct wire_encode_opts wire;       /* borrowed key */
    size_t max_wire_raw;                /* cap when reading batches back */
    struct spool *spool;                /* borrowed; NULL: memory only */
    struct batch *ghosts;               /* dropped by the spool while in flight */
    uv_timer_t spool_retry;             /* retries batches the spool refused */
    size_t unspooled;                   /* queued batches not in the spool yet */
    int64_t spool_log_ns;               /* rate limit of spool warnings */
};

/*
 * Make a pipeline on loop for the outputs given (nouts instances, at most
 * 32; the order gives their bits). Returns it, or NULL on out of memory.
 */
struct pipeline *pipeline_new(uv_loop_t *loop, struct identity *id,
                              const struct batch_limits *limits, size_t max_pending,
                              struct pipit_instance **outs, size_t nouts);
/*
 * Encode every batch closed from now on with the wire format (opts; its key
 * is borrowed and must outlive the pipeline) and, when spool is not NULL,
 * write it to the spool before any output is given it: outputs then get
 * only spooled batches, a batch leaves the spool when every output took
 * it, and marks are acknowledged once records are spooled. Entries already
 * in the spool (from before a restart or reload) are queued again for the
 * outputs. Call once, before any record. Returns PIPIT_OK or an error.
 */
int pipeline_set_store(struct pipeline *pl, const struct wire_encode_opts *opts,
                       struct spool *spool);

/*
 * Take complete JSON lines of one kind (count records). Returns PIPIT_OK, or
 * PIPIT_EFULL when max_pending would be exceeded: then nothing was taken,
 * the records are counted in stats.records_full and a warning is logged.
 */
int pipeline_deliver(struct pipeline *pl, int kind, const char *lines, size_t len,
                     uint32_t count);
/* True above 90% of max_pending: collectors should skip a round. */
bool pipeline_high_water(const struct pipeline *pl);
/* Close every open batch now (for drain). */
void pipeline_close_open(struct pipeline *pl);
/* An input has caught up with its source: close the open batches now when
 * nothing is queued, else as soon as the queue has been delivered (what
 * arrives meanwhile is stored together, as a group commit). */
void pipeline_caught_up(struct pipeline *pl);
/* True when no open batch and no undelivered batch remain. */
bool pipeline_idle(const struct pipeline *pl);
/* Count and log what is still undelivered, and free it (drain timed out). */
void pipeline_abandon(struct pipeline *pl);
/* Close the handles; the pipeline frees itself when they are closed. */
void pipeline_close(struct pipeline *pl);
/* Try deliveries now (normally scheduled by the pipeline itself). */
void pipeline_kick(struct pipeline *pl);
/*
 * The outcome of a flush() that returned PIPIT_PENDING (api->flush_done):
 * PIPIT_OK delivered, PIPIT_RETRY again later (with backoff), an error gives
 * the batch up for that output (counted). Unknown ids are ignored.
 */
void pipeline_flush_done(struct pipeline *pl, struct pipit_instance *ins,
                         uint64_t id, int status);
/*
 * Call ins's ack(token) once every batch holding records it emitted so far
 * is released (delivered by every output, given up, or dropped and
 * counted). Marks of one instance are acknowledged in order.
 */
int pipeline_mark(struct pipeline *pl, struct pipit_instance *ins, uint64_t token);
/* Drop the marks of ins without acknowledging them (before ins goes away). */
void pipeline_forget(struct pipeline *pl, struct pipit_instance *ins);

#endif
