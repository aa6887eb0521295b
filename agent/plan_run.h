/* plan_run.h: run a plan's steps through action plugins, journaled, with retries, conditions and rollback. */
#ifndef PIPIT_PLAN_RUN_H
#define PIPIT_PLAN_RUN_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "buf.h"
#include "plan.h"

/* How a run ended (the status of its plan.finished event). */
enum plan_outcome {
    PLAN_OK = 0,                        /* every step ok or skipped */
    PLAN_FAILED,                        /* a step failed, nothing to roll back */
    PLAN_ROLLED_BACK,                   /* a step failed, every rollback step ok */
    PLAN_ROLLBACK_FAILED,               /* a rollback step failed too */
    PLAN_INTERRUPTED,                   /* cancelled: the journal resumes it */
    PLAN_ERROR                          /* could not run: journal, plugin, refusal */
};
const char *plan_outcome_name(enum plan_outcome o);

/* What happened, for the progress display and the event records. */
struct plan_event {
    const char *name;                   /* plan.started, plan.resumed, step.started,
                                         * step.finished, step.retry, rollback.started,
                                         * rollback.finished, plan.finished */
    const char *status;                 /* started, ok, failed, skipped, retrying, ... */
    const char *message;                /* the error, or the start of the output */
    const char *plan, *run;
    const char *step, *action;          /* NULL for plan.* */
    unsigned index, total;              /* 1-based position among the steps */
    unsigned attempt;                   /* 1-based, 0 when not an attempt */
    int64_t duration_ms;                /* -1 when not measured */
    const char *exit_code;              /* the step's exit_code result, or NULL */
};

struct plan_runner {
    const char *plugin_dir;             /* act_NAME.so are loaded from here */
    const char *state_dir;              /* journals in <state_dir>/runs/ */
    const char *host_name, *agent_id;
    const char *const *allowed;         /* actions allowed, NULL-terminated; NULL: all */
    /* Each event, on the runner's thread. */
    void (*event)(void *arg, const struct plan_event *ev);
    /* Records the actions emitted themselves, as JSON lines of one kind. */
    void (*deliver)(void *arg, int kind, const char *lines, size_t len, uint32_t count);
    void *arg;
    atomic_bool *cancel;                /* set to stop: the run is interrupted */
    bool resume_other;                  /* resume an unfinished run of another version */
    const char *run_id;                 /* id of a new run (a fleet deployment's); NULL:
                                         * a fresh UUID */
};

/*
 * Run plan p, or first resume its unfinished run when the journal holds
 * one: with the same digest it goes on (an interrupted step is run again,
 * or rolled back when its on_interrupt says so); with another digest it is
 * refused unless r->resume_other, which finishes the journaled version.
 * Returns the outcome; why says what went wrong for every outcome but OK.
 */
enum plan_outcome plan_run(const struct plan_runner *r, const struct plan *p, char *why,
                           size_t whylen);

/* Names of the plans with an unfinished run under r->state_dir (a
 * NULL-terminated array to free with plan_names_free), or NULL. */
char **plan_unfinished(const char *state_dir);
void plan_names_free(char **names);

/* Finish the unfinished run of plan `name` with the version it started
 * with (the daemon does this at start, before new commands). */
enum plan_outcome plan_resume(const struct plan_runner *r, const char *name, char *why,
                              size_t whylen);

/* The event as one JSON record line (kind event, instance "plan"), labels
 * plan, run, step, action, attempt, duration_ms and exit_code. */
int plan_event_encode(struct buf *out, const struct plan_event *ev, const char *host);

#endif
