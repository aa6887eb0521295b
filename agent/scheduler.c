/* scheduler.c: timers with jitter start collections on libuv's worker threads. */
#include <stdlib.h>
#include "errors.h"
#include "log.h"
#include "record.h"
#include "scheduler.h"

struct sched_entry {
    uv_timer_t timer;
    uv_work_t work;
    struct scheduler *s;
    struct pipit_instance *ins;
    uint64_t interval_ms;
    int64_t started_ns;
    int status;                         /* of the last collect() */
    bool busy;                          /* work queued or running */
    bool closed;                        /* timer handle closed */
    struct sched_entry *next;
};

static void entry_maybe_free(struct sched_entry *e)
{
    if (e->closed && !e->busy)
        free(e);
}

static void timer_closed(uv_handle_t *h)
{
    struct sched_entry *e = h->data;
    e->closed = true;
    entry_maybe_free(e);
}

/* Worker thread: the plugin's collect(), records kept in the instance. */
static void collect_work(uv_work_t *w)
{
    struct sched_entry *e = w->data;
    e->status = instance_run(e->ins);
}

/* Loop thread: hand the records to the pipeline, account, report errors. */
static void collect_done(uv_work_t *w, int status)
{
    struct sched_entry *e = w->data;
    struct scheduler *s = e->s;
    struct pipit_instance *ins = e->ins;

    e->busy = false;
    s->running--;
    if (status == UV_ECANCELED) {
        if (e->closed)
            free(e);
        if (s->on_progress)
            s->on_progress(s->progress_arg);
        return;
    }
    ins->stats.runs++;
    ins->stats.last_duration_ns = (uint64_t)(record_now_ns() - e->started_ns);
    histogram_observe(&ins->stats.duration, &histogram_seconds,
                      (double)ins->stats.last_duration_ns / 1e9);
    instance_handoff(ins);
    if (e->status != PIPIT_OK) {
        ins->stats.errors++;
        instance_api()->log(ins, PIPIT_LOG_ERROR, "collect failed: %s",
                            pipit_strerror(e->status));
    }
    if (e->closed)
        free(e);
    if (s->on_progress)
        s->on_progress(s->progress_arg);
}

static void tick(uv_timer_t *t)
{
    struct sched_entry *e = t->data;
    struct scheduler *s = e->s;
    struct pipit_instance *ins = e->ins;

    if (s->stopping || ins->state != INS_RUNNING)
        return;
    if (e->busy) {
        if (ins->stats.overruns++ == 0)
            instance_api()->log(ins, PIPIT_LOG_WARN, "collect() takes longer than "
                                "the interval (%llu ms); ticks are skipped while it "
                                "runs and counted as overruns",
                                (unsigned long long)e->interval_ms);
        return;
    }
    if (s->pl && pipeline_high_water(s->pl)) {
        if (ins->stats.skipped++ % 100 == 0)
            instance_api()->log(ins, PIPIT_LOG_WARN, "pipeline near its bound; "
                                "collection skipped (%llu so far)",
                                (unsigned long long)ins->stats.skipped);
        return;
    }
    e->busy = true;
    e->started_ns = record_now_ns();
    s->running++;
    if (uv_queue_work(s->loop, &e->work, collect_work, collect_done) != 0) {
        e->busy = false;
        s->running--;
        ins->stats.errors++;
        log_error("scheduler", "cannot queue a collection of %s", ins->name);
    }
}

void scheduler_init(struct scheduler *s, uv_loop_t *loop, struct pipeline *pl)
{
    s->loop = loop;
    s->pl = pl;
    s->entries = NULL;
    s->running = 0;
    s->stopping = false;
    s->on_progress = NULL;
    s->progress_arg = NULL;
}

int scheduler_add(struct scheduler *s, struct pipit_instance *ins,
                  uint64_t interval_ms, uint64_t first_ms)
{
    struct sched_entry *e = calloc(1, sizeof *e);
    if (!e)
        return PIPIT_ENOMEM;
    e->s = s;
    e->ins = ins;
    e->interval_ms = interval_ms;
    e->work.data = e;
    uv_timer_init(s->loop, &e->timer);
    e->timer.data = e;
    uv_timer_start(&e->timer, tick, first_ms, interval_ms);
    e->next = s->entries;
    s->entries = e;
    ins->sched = e;
    return PIPIT_OK;
}

void scheduler_stop(struct scheduler *s)
{
    s->stopping = true;
    for (struct sched_entry *e = s->entries; e; e = e->next) {
        uv_timer_stop(&e->timer);
        if (e->busy)
            uv_cancel((uv_req_t *)&e->work);    /* fails if already running */
    }
}

bool scheduler_busy(const struct scheduler *s)
{
    return s->running > 0;
}

void scheduler_release(struct scheduler *s)
{
    struct sched_entry *e = s->entries;
    while (e) {
        struct sched_entry *next = e->next;
        e->ins->sched = NULL;
        uv_close((uv_handle_t *)&e->timer, timer_closed);
        e = next;
    }
    s->entries = NULL;
}
