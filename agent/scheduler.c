/* scheduler.c: timers with jitter start collections on libuv's worker threads. */
#include <stdlib.h>
#include "errors.h"
#include "log.h"
#include "plugin_proc.h"
#include "record.h"
#include "scheduler.h"

struct sched_entry {
    uv_timer_t timer;                   /* the interval */
    uv_timer_t deadline;                /* the watchdog of the running call */
    uv_work_t work;
    struct scheduler *s;                /* NULL once orphaned */
    struct pipit_instance *ins;
    uint64_t interval_ms;
    int64_t started_ns;
    int status;                         /* of the last collect() */
    bool busy;                          /* work queued or running */
    bool stalled;                       /* the running call overran its deadline */
    int open;                           /* handles not closed yet */
    struct sched_entry *next;
};

/*
 * Entries whose generation ended while their call was stalled: the
 * instance cannot be finished nor freed while a worker thread is inside
 * it, so the entry keeps it until the call returns (possibly never).
 */
static struct sched_entry *orphans;
static size_t norphans;

static void entry_maybe_free(struct sched_entry *e)
{
    if (e->open == 0 && !e->busy)
        free(e);
}

static void handle_closed(uv_handle_t *h)
{
    struct sched_entry *e = h->data;
    e->open--;
    entry_maybe_free(e);
}

/* Worker thread: the plugin's collect(), records kept in the instance. */
static void collect_work(uv_work_t *w)
{
    struct sched_entry *e = w->data;
    e->status = instance_run(e->ins);
}

static void orphan_remove(struct sched_entry *e)
{
    for (struct sched_entry **pp = &orphans; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            norphans--;
            return;
        }
}

/*
 * Loop thread: a call that overran collect_timeout returned. Its records
 * are dropped and counted (they are late, and the plugin was already
 * reported stalled); the instance stays disabled. An orphan's instance is
 * finished and freed now that no thread is inside it.
 */
static void stalled_done(struct sched_entry *e)
{
    struct pipit_instance *ins = e->ins;
    uint64_t late = instance_discard(ins);

    ins->stats.runs++;
    ins->state = INS_DISABLED;
    log_line(PIPIT_LOG_WARN, ins->name, ins->plugin->desc.name, "watchdog",
             "the stalled collect() returned after %.1f s; its %llu records were "
             "dropped and counted (reason stalled); the instance stays disabled",
             (double)(record_now_ns() - e->started_ns) / 1e9, (unsigned long long)late);
    if (!e->s) {
        orphan_remove(e);
        instance_fini(ins);
        instance_free(ins);
    }
}

/* Loop thread: hand the records to the pipeline, account, report errors. */
static void call_finished(struct sched_entry *e, bool cancelled)
{
    struct scheduler *s = e->s;
    struct pipit_instance *ins = e->ins;

    e->busy = false;
    if (e->stalled) {
        e->stalled = false;
        stalled_done(e);
        entry_maybe_free(e);
        return;
    }
    uv_timer_stop(&e->deadline);
    s->running--;
    if (cancelled) {
        entry_maybe_free(e);
        if (s->on_progress)
            s->on_progress(s->progress_arg);
        return;
    }
    ins->stats.runs++;
    ins->stats.last_duration_ns = (uint64_t)(record_now_ns() - e->started_ns);
    histogram_observe(&ins->stats.duration, &histogram_seconds,
                      (double)ins->stats.last_duration_ns / 1e9);
    uint32_t capped = instance_handoff(ins);
    if (e->status != PIPIT_OK) {
        ins->stats.errors++;
        instance_api()->log(ins, PIPIT_LOG_ERROR, "collect failed: %s",
                            pipit_strerror(e->status));
    }
    if (capped && ins->on_emit_limit == EMIT_LIMIT_DISABLE && ins->state == INS_RUNNING) {
        ins->state = INS_DISABLED;
        uv_timer_stop(&e->timer);
        instance_pause(ins);
        log_line(PIPIT_LOG_ERROR, ins->name, ins->plugin->desc.name, "watchdog",
                 "a collection emitted more than max_emit_bytes (%llu records dropped); "
                 "on_emit_limit is disable: the instance is disabled",
                 (unsigned long long)capped);
    }
    entry_maybe_free(e);
    if (s->on_progress)
        s->on_progress(s->progress_arg);
}

static void collect_done(uv_work_t *w, int status)
{
    call_finished(w->data, status == UV_ECANCELED);
}

/* Loop thread: the host process of an isolated instance answered, or died. */
static void proc_done(void *arg, int status)
{
    struct sched_entry *e = arg;
    e->status = status;
    call_finished(e, false);
}

/*
 * Loop thread: the running call passed collect_timeout. A thread cannot be
 * stopped, so the instance is reported stalled and never scheduled again;
 * the call no longer counts as running, so a drain or reload does not wait
 * for it. A host process can be stopped: it is killed, and the call ends
 * through proc_done().
 */
static void deadline_fired(uv_timer_t *t)
{
    struct sched_entry *e = t->data;
    struct scheduler *s = e->s;
    struct pipit_instance *ins = e->ins;

    if (!e->busy || e->stalled)
        return;
    if (ins->child) {
        ins->stats.stalls++;
        log_line(PIPIT_LOG_ERROR, ins->name, ins->plugin->desc.name, "watchdog",
                 "collect() has run for longer than collect_timeout (%lld ms): killing "
                 "its process", (long long)ins->collect_timeout_ms);
        proc_kill(ins->child);
        return;
    }
    e->stalled = true;
    s->running--;
    ins->state = INS_STALLED;
    ins->stats.stalls++;
    uv_timer_stop(&e->timer);
    instance_pause(ins);
    log_line(PIPIT_LOG_ERROR, ins->name, ins->plugin->desc.name, "watchdog",
             "collect() has run for longer than collect_timeout (%lld ms): the instance "
             "is stalled and not scheduled again; if the call returns, its records are "
             "dropped and counted", (long long)ins->collect_timeout_ms);
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
    if (ins->child ? proc_collect(ins->child, proc_done, e) != PIPIT_OK
                   : uv_queue_work(s->loop, &e->work, collect_work, collect_done) != 0) {
        e->busy = false;
        s->running--;
        ins->stats.errors++;
        log_error("scheduler", "cannot queue a collection of %s", ins->name);
        return;
    }
    /* from the queueing: a call waiting for a free worker is stuck too */
    if (ins->collect_timeout_ms > 0)
        uv_timer_start(&e->deadline, deadline_fired, (uint64_t)ins->collect_timeout_ms, 0);
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
    uv_timer_init(s->loop, &e->deadline);
    e->timer.data = e->deadline.data = e;
    e->open = 2;
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
        uv_timer_stop(&e->timer);       /* the deadline keeps watching */
        if (e->busy && !e->stalled)
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
        uv_close((uv_handle_t *)&e->timer, handle_closed);
        uv_close((uv_handle_t *)&e->deadline, handle_closed);
        if (e->busy && e->stalled) {    /* the entry keeps the instance */
            e->s = NULL;
            e->next = orphans;
            orphans = e;
            norphans++;
        }
        e = next;
    }
    s->entries = NULL;
}

size_t scheduler_orphans(void)
{
    return norphans;
}
