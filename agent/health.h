/* health.h: what the daemon's endpoints look at, and /readyz's verdict on it. */
#ifndef PIPIT_HEALTH_H
#define PIPIT_HEALTH_H

#include <stdbool.h>
#include <stdint.h>
#include "buf.h"
#include "instance.h"
#include "pipeline.h"
#include "spool.h"

struct http_server;

/* One output's standing for /readyz. */
struct output_health {
    bool ready;
    const char *reason;                 /* static text */
    uint64_t owed;                      /* batches it still has to deliver */
    double failing_s;                   /* since its first failure, or 0 */
};

/*
 * The daemon's state as the runtime shows it to the endpoints, read on the
 * loop thread only. Every pointer is borrowed for the duration of one call.
 */
struct daemon_view {
    const struct pipeline *pl;          /* NULL while a reload swaps generations */
    struct pipit_instance *const *inputs;
    size_t ninputs;
    struct pipit_instance *const *outputs;
    size_t noutputs;
    const struct spool *spool;          /* NULL: spool disabled */
    uint64_t spool_max_bytes;
    const struct http_server *http;     /* for its request counts, or NULL */
    int64_t start_time_ns;              /* wall clock, at process start */
    int64_t ready_grace_ns;             /* http.ready_grace */
    int64_t now_ns;                     /* monotonic (batch_clock_ns) */

    /* Filled by health_judge(): */
    struct output_health *health;       /* one per output, given by the caller */
    bool buffer_ok;                     /* spool (or pipeline) below high water */
    bool ready;                         /* /readyz's verdict */
};

/* The spool (or, without one, the pipeline's memory) at 90% of its bound
 * is past the high-water mark. */
#define HEALTH_HIGH_WATER_PERCENT 90

/*
 * Judge every output into v->health (v->noutputs entries) and the buffer:
 * an output is not ready when it is not running, or when it has batches
 * to deliver and has failed (retry, error) without a delivery for longer
 * than v->ready_grace_ns. v is ready with at least one output, every
 * output ready and the buffer below its high-water mark. The queue is
 * walked once per output, so judge once per snapshot.
 */
void health_judge(struct daemon_view *v);
/*
 * Append /readyz's JSON document to out (after health_judge): the
 * verdict, each output's standing and the buffer's.
 */
void health_render_ready(struct buf *out, const struct daemon_view *v);

#endif
