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
};

/* One output's standing for /readyz. */
struct output_health {
    bool ready;
    const char *reason;                 /* static text */
    uint64_t owed;                      /* batches it still has to deliver */
    double failing_s;                   /* since its first failure, or 0 */
};

/* The spool (or, without one, the pipeline's memory) at 90% of its bound
 * is past the high-water mark. */
#define HEALTH_HIGH_WATER_PERCENT 90

/*
 * Judge output o (an instance of v->outputs): not ready when it is not
 * running, or when it has batches to deliver and has failed (retry, error)
 * without a delivery for longer than v->ready_grace_ns.
 */
void health_output(const struct daemon_view *v, const struct pipit_instance *o,
                   struct output_health *h);
/* True when the spool (or the pipeline) is below its high-water mark. */
bool health_buffer_ok(const struct daemon_view *v);
/* At least one output, every output ready, the buffer below high water. */
bool health_ready(const struct daemon_view *v);
/*
 * Append /readyz's JSON document to out: the verdict, each output's
 * standing and the buffer's. Returns true when ready: at least one output,
 * every output ready and the buffer below its high-water mark.
 */
bool health_render_ready(struct buf *out, const struct daemon_view *v);

#endif
