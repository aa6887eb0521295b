/* scheduler.h: collectors on timers, each collection on a worker thread. */
#ifndef PIPIT_SCHEDULER_H
#define PIPIT_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "instance.h"
#include "pipeline.h"

struct sched_entry;

struct scheduler {
    uv_loop_t *loop;
    struct pipeline *pl;                /* asked for high water before a run */
    struct sched_entry *entries;
    size_t running;                     /* collections on worker threads, but
                                           not those the watchdog gave up on */
    bool stopping;
    void (*on_progress)(void *arg);     /* after each collection (may be NULL) */
    void *progress_arg;
};

void scheduler_init(struct scheduler *s, uv_loop_t *loop, struct pipeline *pl);
/*
 * Collect from ins every interval_ms, the first time after first_ms (the
 * jitter). A tick that finds the previous collection still running is an
 * overrun, one that finds the pipeline above high water is skipped; both
 * are counted in ins->stats. Each call is watched: one still running
 * ins->collect_timeout_ms after it was queued is a stall (the watchdog,
 * docs/plugin-isolation.md). Returns PIPIT_OK or PIPIT_ENOMEM.
 */
int scheduler_add(struct scheduler *s, struct pipit_instance *ins,
                  uint64_t interval_ms, uint64_t first_ms);
/* Stop all timers and cancel collections not started yet. Collections in
 * progress finish; scheduler_busy() tells when none is left. */
void scheduler_stop(struct scheduler *s);
bool scheduler_busy(const struct scheduler *s);
/* Release the entries once stopped and not busy (handles close later).
 * An instance whose call is stalled (INS_STALLED) passes to the scheduler:
 * the caller must neither finish nor free it; it is finished and freed if
 * the call ever returns. */
void scheduler_release(struct scheduler *s);
/* Stalled calls of released schedulers that have not returned. */
size_t scheduler_orphans(void);

#endif
