/* plan_run.c: the plan runner: steps through action plugins, every state change journaled before it is acted on. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <jansson.h>
#include "errors.h"
#include "instance.h"
#include "loader.h"
#include "log.h"
#include "plan_journal.h"
#include "plan_run.h"
#include "record.h"

#define RUN_MAX_BACKOFF_MS (5 * 60 * 1000)
#define RUN_MESSAGE_MAX 1024            /* bytes of output or error in an event */
#define RUN_MAX_INTERRUPTS 3            /* a step cut short this often is rolled back */

enum step_state { ST_NONE = 0, ST_STARTED, ST_OK, ST_FAILED, ST_SKIPPED };

/* One run in progress: the plan, its journal and what the steps left. */
struct run {
    const struct plan_runner *r;
    const struct plan *p;
    char id[129];                       /* a UUID, or a deployment's id */
    struct plan_journal j;
    json_t *results;                    /* step name -> {key: text} */
    enum step_state *state;             /* per step */
    unsigned *attempts;                 /* per step, attempts started */
    unsigned *failures;                 /* per step, attempts that failed */
    unsigned char **undo;               /* per step, per rollback step: enum step_state */
    bool rolling_back, interrupted;
    size_t from;                        /* the step whose failure started the rollback */
    bool include_from;                  /* it acted: its own rollback runs too */
    bool acted;                         /* the last attempt reached act() */
    bool *failed_acted;                 /* per step: its failed attempt acted */
    struct instance_host host;
    pthread_mutex_t mu;                 /* cur_results */
    json_t *cur_results;                /* of the attempt being run */
    int64_t deadline_ms;                /* of the attempt, monotonic; 0: none */
    char why[512];
};

const char *plan_outcome_name(enum plan_outcome o)
{
    switch (o) {
    case PLAN_OK: return "ok";
    case PLAN_FAILED: return "failed";
    case PLAN_ROLLED_BACK: return "rolled_back";
    case PLAN_ROLLBACK_FAILED: return "rollback_failed";
    case PLAN_INTERRUPTED: return "interrupted";
    case PLAN_ERROR: return "error";
    }
    return "error";
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool cancelled(const struct run *R)
{
    return R->r->cancel && atomic_load(R->r->cancel);
}

/* ---- events ------------------------------------------------------------- */

int plan_event_encode(struct buf *out, const struct plan_event *ev, const char *host)
{
    struct pipit_label l[8];
    size_t n = 0;
    char attempt[16], dur[24];

    l[n++] = (struct pipit_label){ "plan", ev->plan };
    l[n++] = (struct pipit_label){ "run", ev->run };
    if (ev->step)
        l[n++] = (struct pipit_label){ "step", ev->step };
    if (ev->action)
        l[n++] = (struct pipit_label){ "action", ev->action };
    if (ev->attempt) {
        snprintf(attempt, sizeof attempt, "%u", ev->attempt);
        l[n++] = (struct pipit_label){ "attempt", attempt };
    }
    if (ev->duration_ms >= 0) {
        snprintf(dur, sizeof dur, "%lld", (long long)ev->duration_ms);
        l[n++] = (struct pipit_label){ "duration_ms", dur };
    }
    if (ev->exit_code)
        l[n++] = (struct pipit_label){ "exit_code", ev->exit_code };
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_EVENT, .labels = l, .nlabels = n,
        .name = ev->name, .status = ev->status,
        .message = ev->message && *ev->message ? ev->message : NULL,
    };
    return record_encode_json(out, &rec, host, "plan", record_now_ns());
}

static void emit(struct run *R, const char *name, const char *status, const char *message,
                 const struct plan_step *s, size_t index, unsigned attempt,
                 int64_t duration_ms, const char *exit_code)
{
    char msg[RUN_MESSAGE_MAX + 4];
    struct plan_event ev = {
        .name = name, .status = status, .plan = R->p->name, .run = R->id,
        .step = s ? s->name : NULL, .action = s ? s->action : NULL,
        .index = s ? (unsigned)index + 1 : 0, .total = (unsigned)R->p->nsteps,
        .attempt = attempt, .duration_ms = duration_ms, .exit_code = exit_code,
    };
    if (message) {
        size_t len = strlen(message);
        snprintf(msg, sizeof msg, "%.*s%s", RUN_MESSAGE_MAX, message,
                 len > RUN_MESSAGE_MAX ? "..." : "");
        ev.message = msg;
    }
    if (R->r->event)
        R->r->event(R->r->arg, &ev);
}

/* ---- the host of the action instances ----------------------------------- */

static int host_deliver(struct instance_host *h, struct pipit_instance *ins, int kind,
                        const char *lines, size_t len, uint32_t count)
{
    struct run *R = h->opaque;
    if (R->r->deliver)
        R->r->deliver(R->r->arg, kind, lines, len, count);
    return PIPIT_OK;
}

static int host_set_result(struct instance_host *h, struct pipit_instance *ins,
                           const char *key, const char *value)
{
    struct run *R = h->opaque;
    json_t *v = json_stringn(value, strnlen(value, PIPIT_RESULT_MAX));
    int rc = PIPIT_OK;

    if (!v)                             /* not UTF-8: keep it readable */
        v = json_string("(not UTF-8 text)");
    pthread_mutex_lock(&R->mu);
    if (!R->cur_results || json_object_set_new(R->cur_results, key, v) != 0)
        rc = PIPIT_ESTATE;
    pthread_mutex_unlock(&R->mu);
    return rc;
}

static int64_t host_time_left(struct instance_host *h, struct pipit_instance *ins)
{
    struct run *R = h->opaque;
    if (!R->deadline_ms)
        return -1;
    int64_t left = R->deadline_ms - mono_ms();
    return left > 0 ? left : 0;
}

static bool host_cancelled(struct instance_host *h, struct pipit_instance *ins)
{
    return cancelled(h->opaque);
}

/* ---- results ------------------------------------------------------------ */

static const char *result_get(void *arg, const char *step, const char *key)
{
    struct run *R = arg;
    return json_string_value(json_object_get(json_object_get(R->results, step), key));
}

static struct plan_ctx run_ctx(struct run *R)
{
    return (struct plan_ctx){ R->p, R->id, R->r->host_name, { result_get, R } };
}

static void set_results(struct run *R, const char *step, json_t *res, const char *status)
{
    json_t *o = res ? json_deep_copy(res) : json_object();
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(R->results, step, o);
}

/* ---- journal ------------------------------------------------------------ */

static int journal(struct run *R, json_t *line)
{
    char why[256];
    int rc = journal_append(&R->j, line, why, sizeof why);
    json_decref(line);
    if (rc != 0)
        snprintf(R->why, sizeof R->why, "journal: %s", why);
    return rc;
}

static int journal_step(struct run *R, const char *t, size_t i, int k, unsigned attempt,
                        const char *state, json_t *results, const char *error)
{
    json_t *l = json_pack("{s:s, s:I, s:s}", "t", t, "i", (json_int_t)i, "state", state);
    if (k >= 0)
        json_object_set_new(l, "k", json_integer(k));
    if (attempt)
        json_object_set_new(l, "attempt", json_integer(attempt));
    if (results)
        json_object_set(l, "results", results);
    if (error)
        json_object_set_new(l, "error", json_string(error));
    return journal(R, l);
}

/* ---- one attempt of one step -------------------------------------------- */

static bool allowed(const struct run *R, const char *action)
{
    if (!R->r->allowed)
        return true;
    for (const char *const *a = R->r->allowed; *a; a++)
        if (strcmp(*a, action) == 0)
            return true;
    return false;
}

/*
 * Make the step's instance (plugin loaded, options expanded and applied),
 * init, act, fini. Returns PIPIT_OK or an error with the reason in err;
 * the results the action set are in *results (always an object).
 */
static int run_attempt(struct run *R, const struct plan_step *s, const char *where,
                       json_t **results, char *err, size_t errlen)
{
    struct plan_ctx ctx = run_ctx(R);
    const struct loader_plugin *lp = NULL;
    struct pipit_instance *ins = NULL;
    struct cfg_node *opts = NULL;
    struct diag d;
    char *path = NULL, why[1024];
    int rc = PIPIT_EINVAL;

    diag_init(&d);
    R->acted = false;
    pthread_mutex_lock(&R->mu);
    R->cur_results = json_object();
    pthread_mutex_unlock(&R->mu);
    err[0] = '\0';
    if (!allowed(R, s->action)) {
        snprintf(err, errlen, "action %s is not allowed by this agent's config "
                 "(plans.allowed_actions)", s->action);
        rc = PIPIT_EPERM;
        goto out;
    }
    if (!(path = loader_resolve(R->r->plugin_dir, PIPIT_ACTION, s->action))) {
        snprintf(err, errlen, "action \"%s\": not a plugin name", s->action);
        goto out;
    }
    if ((rc = loader_load(path, instance_api(), &lp, why, sizeof why)) != PIPIT_OK) {
        snprintf(err, errlen, "%s", why);
        goto out;
    }
    if (!(lp->desc.kinds & PIPIT_ACTION)) {
        snprintf(err, errlen, "%s is not an action plugin", path);
        rc = PIPIT_EINVAL;
        goto out;
    }
    if (!(opts = plan_step_options(&ctx, s, why, sizeof why))) {
        snprintf(err, errlen, "%s", why);
        rc = PIPIT_EINVAL;
        goto out;
    }
    ins = instance_create(&R->host, lp, PIPIT_ACTION, s->name, opts, plan_step_keys,
                          R->p->file, where, &d);
    if (!ins) {
        struct diag_item *it = d.count ? &d.items[0] : NULL;
        snprintf(err, errlen, "%s:%d: %s: %s", it && it->file ? it->file : R->p->file,
                 it ? it->line : s->line, it && it->key ? it->key : where,
                 it ? it->msg : "cannot make the step");
        rc = PIPIT_ECONFIG;
        goto out;
    }
    R->deadline_ms = s->timeout_ms ? mono_ms() + s->timeout_ms : 0;
    if ((rc = instance_init(ins)) != PIPIT_OK) {
        snprintf(err, errlen, "%s: init failed: %s", s->action, pipit_strerror(rc));
    } else {
        R->acted = true;
        rc = instance_run(ins);
        instance_handoff(ins);
        if (rc == PIPIT_OK && R->deadline_ms && mono_ms() > R->deadline_ms + 1000) {
            snprintf(err, errlen, "ended %lld ms past its timeout",
                     (long long)(mono_ms() - R->deadline_ms));
            rc = PIPIT_ETIMEDOUT;
        }
    }
    instance_fini(ins);
out:
    pthread_mutex_lock(&R->mu);
    *results = R->cur_results;
    R->cur_results = NULL;
    pthread_mutex_unlock(&R->mu);
    if (rc != PIPIT_OK && !err[0]) {
        const char *e = json_string_value(json_object_get(*results, "error"));
        snprintf(err, errlen, "%s", e ? e : pipit_strerror(rc));
    }
    R->deadline_ms = 0;
    instance_free(ins);
    cfg_node_free(opts);
    free(path);
    diag_free(&d);
    return rc;
}

/* Wait ms, in slices, unless the run is cancelled; false when it was. */
static bool nap(struct run *R, int64_t ms)
{
    int64_t until = mono_ms() + ms;
    while (!cancelled(R)) {
        int64_t left = until - mono_ms();
        if (left <= 0)
            return true;
        struct timespec ts = { 0, (left < 50 ? left : 50) * 1000000 };
        nanosleep(&ts, NULL);
    }
    return false;
}

/* The message of a finished attempt: the error, else the start of stdout. */
static const char *attempt_message(json_t *results, const char *err, int rc)
{
    if (rc != PIPIT_OK)
        return err;
    return json_string_value(json_object_get(results, "stdout"));
}

/*
 * Run step s (index i; k >= 0 for rollback step k of step i) with its
 * retries, journaling each attempt. Returns ST_OK, ST_FAILED, or ST_NONE
 * when the run was cancelled or the journal failed (R->why says).
 */
static enum step_state run_step(struct run *R, const struct plan_step *s, size_t i, int k)
{
    const char *t = k >= 0 ? "undo" : "step";
    const char *ev_start = k >= 0 ? "rollback.started" : "step.started";
    const char *ev_end = k >= 0 ? "rollback.finished" : "step.finished";
    int64_t backoff = s->backoff_ms;
    unsigned attempts = 0, failures = 0;    /* of a rollback step: this run only */
    char where[160], err[1024];

    if (k >= 0)
        snprintf(where, sizeof where, "steps.%s.rollback[%d]", R->p->steps[i].name, k);
    else
        snprintf(where, sizeof where, "steps.%s", s->name);
    unsigned *started = k < 0 ? &R->attempts[i] : &attempts;
    unsigned *failed = k < 0 ? &R->failures[i] : &failures;
    for (;;) {
        json_t *res = NULL;
        if (cancelled(R))
            return ST_NONE;
        unsigned a = ++*started;
        if (journal_step(R, t, i, k, a, "started", NULL, NULL) != 0)
            return ST_NONE;
        emit(R, ev_start, "started", NULL, s, i, a, -1, NULL);
        int64_t t0 = mono_ms();
        int rc = run_attempt(R, s, where, &res, err, sizeof err);
        int64_t dur = mono_ms() - t0;
        const char *code = json_string_value(json_object_get(res, "exit_code"));
        if (rc == PIPIT_ECANCELED || (rc != PIPIT_OK && cancelled(R))) {
            /* interrupted: the journal says started, the next run decides */
            json_decref(res);
            snprintf(R->why, sizeof R->why, "interrupted during %s", where);
            return ST_NONE;
        }
        if (rc == PIPIT_OK) {
            int jr = journal_step(R, t, i, k, a, "ok", res, NULL);
            if (jr == 0) {
                set_results(R, s->name, res, "ok");
                emit(R, ev_end, "ok", attempt_message(res, err, rc), s, i, a, dur, code);
            }
            json_decref(res);
            return jr == 0 ? ST_OK : ST_NONE;
        }
        bool last = ++*failed > s->retries || rc == PIPIT_EPERM || rc == PIPIT_ECONFIG;
        if (!last) {
            json_decref(res);
            if (journal_step(R, t, i, k, a, "retry", NULL, err) != 0)
                return ST_NONE;
            emit(R, k >= 0 ? "rollback.retry" : "step.retry", "retrying", err, s, i, a, dur,
                 code);
            if (!nap(R, backoff))
                return ST_NONE;
            backoff = backoff * 2 > RUN_MAX_BACKOFF_MS ? RUN_MAX_BACKOFF_MS : backoff * 2;
            continue;
        }
        if (!json_object_get(res, "error"))
            json_object_set_new(res, "error", json_string(err));
        if (k < 0)
            R->failed_acted[i] = R->acted;
        int jr = journal_step(R, t, i, k, a, R->acted ? "failed" : "refused", res, err);
        if (jr == 0) {
            set_results(R, s->name, res, "failed");
            emit(R, ev_end, "failed", err, s, i, a, dur, code);
        }
        json_decref(res);
        return jr == 0 ? ST_FAILED : ST_NONE;
    }
}

/* ---- phases ------------------------------------------------------------- */

static enum plan_outcome finish(struct run *R, enum plan_outcome o)
{
    json_t *l = json_pack("{s:s, s:s}", "t", "end", "outcome", plan_outcome_name(o));
    if (journal(R, l) != 0)
        return PLAN_ERROR;
    emit(R, "plan.finished", plan_outcome_name(o), o == PLAN_OK ? NULL : R->why, NULL, 0, 0,
         -1, NULL);
    char *last = NULL;
    if (asprintf(&last, "%.*s.last", (int)(strlen(R->j.path) - strlen(".journal")),
                 R->j.path) < 0)
        last = NULL;
    journal_close(&R->j, last);
    free(last);
    return o;
}

/* Roll back, newest first: R->from itself when it acted (it may have done
 * part of its work: interrupted, or failed in act()), then every step that
 * completed before it, skipping rollback steps the journal has as done. */
static enum plan_outcome rollback(struct run *R)
{
    bool any = false, failed = false;

    for (size_t n = R->from + 1; n-- > 0;) {
        const struct plan_step *s = &R->p->steps[n];
        if (n == R->from ? !R->include_from : R->state[n] != ST_OK)
            continue;
        for (size_t k = 0; k < s->nrollback; k++) {
            any = true;
            if (R->undo[n][k] == ST_OK || R->undo[n][k] == ST_FAILED) {
                failed |= R->undo[n][k] == ST_FAILED;
                continue;
            }
            enum step_state st = run_step(R, &s->rollback[k], n, (int)k);
            if (st == ST_NONE)
                return cancelled(R) ? PLAN_INTERRUPTED : PLAN_ERROR;
            R->undo[n][k] = (unsigned char)st;
            failed |= st == ST_FAILED;
        }
    }
    if (failed)
        snprintf(R->why, sizeof R->why, "step %s failed and a rollback step failed too",
                 R->p->steps[R->from].name);
    return finish(R, failed ? PLAN_ROLLBACK_FAILED : any ? PLAN_ROLLED_BACK : PLAN_FAILED);
}

static enum plan_outcome start_rollback(struct run *R, size_t from, bool interrupted,
                                        bool include, const char *why)
{
    json_t *l = json_pack("{s:s, s:I, s:b, s:b}", "t", "rollback", "from", (json_int_t)from,
                          "interrupted", interrupted, "include", include);
    if (journal(R, l) != 0)
        return PLAN_ERROR;
    R->rolling_back = true;
    R->from = from;
    R->interrupted = interrupted;
    R->include_from = include;
    snprintf(R->why, sizeof R->why, "step %s %s: %s", R->p->steps[from].name,
             interrupted ? "was interrupted" : "failed", why);
    return rollback(R);
}

static enum plan_outcome forward(struct run *R, size_t i0)
{
    char why[512];

    for (size_t i = i0; i < R->p->nsteps; i++) {
        const struct plan_step *s = &R->p->steps[i];
        if (R->state[i] == ST_OK || R->state[i] == ST_SKIPPED ||
            (R->state[i] == ST_FAILED && s->ignore_failure))
            continue;
        if (R->state[i] == ST_NONE && s->when) {
            struct plan_ctx ctx = run_ctx(R);
            int w = plan_when(&ctx, s->when, why, sizeof why);
            if (w < 0) {
                /* a condition that cannot be evaluated fails its step */
                if (journal_step(R, "step", i, -1, 0, "failed", NULL, why) != 0)
                    return PLAN_ERROR;
                R->state[i] = ST_FAILED;
                set_results(R, s->name, NULL, "failed");
                emit(R, "step.finished", "failed", why, s, i, 0, -1, NULL);
                if (s->ignore_failure)
                    continue;
                return start_rollback(R, i, false, false, why);
            }
            if (w == 0) {
                if (journal_step(R, "step", i, -1, 0, "skipped", NULL, NULL) != 0)
                    return PLAN_ERROR;
                R->state[i] = ST_SKIPPED;
                set_results(R, s->name, NULL, "skipped");
                snprintf(why, sizeof why, "when: %s is false", s->when);
                emit(R, "step.finished", "skipped", why, s, i, 0, -1, NULL);
                continue;
            }
        }
        if (R->state[i] == ST_STARTED &&
            R->attempts[i] - R->failures[i] >= RUN_MAX_INTERRUPTS) {
            /* cut short again and again: maybe it is what brings the agent down */
            char msg[96];
            snprintf(msg, sizeof msg, "interrupted %u times", R->attempts[i] - R->failures[i]);
            return start_rollback(R, i, true, true, msg);
        }
        enum step_state st = run_step(R, s, i, -1);
        if (st == ST_NONE) {
            if (cancelled(R))
                emit(R, "plan.finished", "interrupted", R->why, NULL, 0, 0, -1, NULL);
            return cancelled(R) ? PLAN_INTERRUPTED : PLAN_ERROR;
        }
        R->state[i] = st;
        if (st == ST_FAILED && !s->ignore_failure) {
            const char *e = json_string_value(json_object_get(
                json_object_get(R->results, s->name), "error"));
            return start_rollback(R, i, false, R->failed_acted[i],
                                  e ? e : "see its step.finished event");
        }
    }
    return finish(R, PLAN_OK);
}

/* ---- resuming ----------------------------------------------------------- */

/* Replay the journal's lines (after the header) into R. */
static int replay(struct run *R, json_t *lines)
{
    for (size_t n = 1; n < json_array_size(lines); n++) {
        json_t *l = json_array_get(lines, n);
        const char *t = json_string_value(json_object_get(l, "t"));
        const char *state = json_string_value(json_object_get(l, "state"));
        json_int_t i = json_integer_value(json_object_get(l, "i"));
        json_int_t k = json_integer_value(json_object_get(l, "k"));
        bool retry = state && !strcmp(state, "retry");
        enum step_state st = !state ? ST_NONE : !strcmp(state, "started") || retry ? ST_STARTED
                           : !strcmp(state, "ok") ? ST_OK
                           : !strcmp(state, "failed") || !strcmp(state, "refused") ? ST_FAILED
                           : !strcmp(state, "skipped") ? ST_SKIPPED : ST_NONE;
        if (!t)
            return -1;
        if (!strcmp(t, "step") || !strcmp(t, "undo")) {
            if (i < 0 || (size_t)i >= R->p->nsteps || st == ST_NONE)
                return -1;
            const struct plan_step *s = &R->p->steps[i];
            if (!strcmp(t, "undo")) {
                if (k < 0 || (size_t)k >= s->nrollback)
                    return -1;
                if (!retry)
                    R->undo[i][k] = (unsigned char)st;
                if (st == ST_OK || st == ST_FAILED)
                    set_results(R, s->rollback[k].name, json_object_get(l, "results"),
                                state);
                continue;
            }
            R->state[i] = st;
            if (retry)
                R->failures[i]++;
            else if (st == ST_STARTED)
                R->attempts[i] = (unsigned)json_integer_value(json_object_get(l, "attempt"));
            else
                set_results(R, s->name, json_object_get(l, "results"), state);
            if (st == ST_FAILED)
                R->failed_acted[i] = strcmp(state, "refused") != 0;
        } else if (!strcmp(t, "rollback")) {
            i = json_integer_value(json_object_get(l, "from"));
            if (i < 0 || (size_t)i >= R->p->nsteps)
                return -1;
            R->rolling_back = true;
            R->from = (size_t)i;
            R->interrupted = json_is_true(json_object_get(l, "interrupted"));
            R->include_from = json_is_true(json_object_get(l, "include"));
        } else if (!strcmp(t, "end")) {
            return 1;
        } else {
            return -1;
        }
    }
    return 0;
}

static enum plan_outcome resume(struct run *R, json_t *lines)
{
    int rr = replay(R, lines);

    if (rr < 0) {
        snprintf(R->why, sizeof R->why, "%s: a line does not fit plan %s", R->j.path,
                 R->p->name);
        return PLAN_ERROR;
    }
    if (rr == 1) {                      /* ended, but not yet renamed */
        const char *o = json_string_value(json_object_get(
            json_array_get(lines, json_array_size(lines) - 1), "outcome"));
        char *last = NULL;
        if (asprintf(&last, "%.*s.last", (int)(strlen(R->j.path) - strlen(".journal")),
                     R->j.path) < 0)
            last = NULL;
        journal_close(&R->j, last);
        free(last);
        return o && !strcmp(o, "ok") ? PLAN_OK : PLAN_FAILED;
    }
    emit(R, "plan.resumed", "resumed", NULL, NULL, 0, 0, -1, NULL);
    if (R->rolling_back)
        return rollback(R);
    for (size_t i = 0; i < R->p->nsteps; i++) {
        const struct plan_step *s = &R->p->steps[i];
        if (R->state[i] == ST_STARTED && s->on_interrupt == PLAN_ROLLBACK)
            return start_rollback(R, i, true, true, "on_interrupt: rollback");
        if (R->state[i] == ST_FAILED && !s->ignore_failure)
            return start_rollback(R, i, false, R->failed_acted[i],
                                  "it failed before the interruption");
        if (R->state[i] == ST_STARTED || R->state[i] == ST_NONE)
            return forward(R, i);
    }
    return forward(R, R->p->nsteps);
}

/* ---- the run ------------------------------------------------------------ */

static void make_run_id(char id[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)(rand() ^ (int)(mono_ms() >> i));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(id, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
             b[12], b[13], b[14], b[15]);
}

static void run_free(struct run *R)
{
    if (R->undo)
        for (size_t i = 0; i < R->p->nsteps; i++)
            free(R->undo[i]);
    free(R->undo);
    free(R->state);
    free(R->attempts);
    free(R->failures);
    free(R->failed_acted);
    json_decref(R->results);
    if (R->j.fd >= 0)
        journal_close(&R->j, NULL);
    pthread_mutex_destroy(&R->mu);
}

static int run_init(struct run *R, const struct plan_runner *r, const struct plan *p)
{
    memset(R, 0, sizeof *R);
    R->r = r;
    R->p = p;
    R->j.fd = -1;
    pthread_mutex_init(&R->mu, NULL);
    R->results = json_object();
    R->state = calloc(p->nsteps, sizeof *R->state);
    R->attempts = calloc(p->nsteps, sizeof *R->attempts);
    R->failures = calloc(p->nsteps, sizeof *R->failures);
    R->failed_acted = calloc(p->nsteps, sizeof *R->failed_acted);
    R->undo = calloc(p->nsteps, sizeof *R->undo);
    if (!R->results || !R->state || !R->attempts || !R->failures || !R->failed_acted || !R->undo)
        return -1;
    for (size_t i = 0; i < p->nsteps; i++)
        if (!(R->undo[i] = calloc(p->steps[i].nrollback + 1, 1)))
            return -1;
    R->host.host_name = r->host_name;
    R->host.agent_id = r->agent_id;
    R->host.state_dir = r->state_dir;
    R->host.max_collect_bytes = 16u << 20;
    R->host.deliver = host_deliver;
    R->host.set_result = host_set_result;
    R->host.time_left_ms = host_time_left;
    R->host.cancelled = host_cancelled;
    R->host.opaque = R;
    return 0;
}

/* The journaled version of the plan, for resume_other. */
static struct plan *journaled_plan(json_t *head, const char *path, char *why, size_t whylen)
{
    const char *text = json_string_value(json_object_get(head, "text"));
    json_t *vars = json_object_get(head, "vars"), *v;
    const char *k;
    char **ov = calloc(json_object_size(vars) + 1, sizeof *ov);
    size_t n = 0;
    struct diag d;
    struct plan *p = NULL;

    diag_init(&d);
    if (!text || !ov) {
        snprintf(why, whylen, "%s: its first line holds no plan", path);
        goto out;
    }
    json_object_foreach(vars, k, v)
        if (asprintf(&ov[n], "%s=%s", k, json_string_value(v) ? json_string_value(v) : "") >= 0)
            n++;
    p = plan_load(text, strlen(text), path, ov, n, &d);
    if (!p)
        snprintf(why, whylen, "%s: the journaled plan no longer loads", path);
out:
    for (size_t i = 0; i < n; i++)
        free(ov[i]);
    free(ov);
    diag_free(&d);
    return p;
}

enum plan_outcome plan_run(const struct plan_runner *r, const struct plan *p, char *why,
                           size_t whylen)
{
    struct run R;
    struct plan *other = NULL;
    json_t *lines = NULL;
    enum plan_outcome o = PLAN_ERROR;
    char *path = journal_path(r->state_dir, p->name);
    int torn = 0;

    why[0] = '\0';
    if (!path) {
        snprintf(why, whylen, "cannot create %s/runs: %s", r->state_dir, strerror(errno));
        return PLAN_ERROR;
    }
    int jr = journal_read(path, &lines, &torn, why, whylen);
    if (jr < 0)
        goto out_nofree;
    if (jr == 0 && json_array_size(lines) == 0)
        jr = 1;                         /* created, crashed before its header */
    if (jr == 0) {
        json_t *head = json_array_get(lines, 0);
        const char *digest = json_string_value(json_object_get(head, "digest"));
        if (!digest || strcmp(digest, p->digest) != 0) {
            if (!r->resume_other) {
                snprintf(why, whylen, "plan %s has an unfinished run of another version "
                         "(journal %s); finish it with --resume, which runs that version "
                         "to its end, then run this one", p->name, path);
                goto out_nofree;
            }
            if (!(other = journaled_plan(head, path, why, whylen)))
                goto out_nofree;
            p = other;
        }
    }
    if (run_init(&R, r, p) != 0) {
        snprintf(why, whylen, "out of memory");
        run_free(&R);
        goto out_nofree;
    }
    if (journal_open(&R.j, path, R.why, sizeof R.why) != 0)
        goto out;
    if (jr == 0) {
        const char *id = json_string_value(json_object_get(json_array_get(lines, 0), "run"));
        snprintf(R.id, sizeof R.id, "%s", id ? id : "unknown");
        if (torn)
            log_warn("plan", "%s: its last line was cut by a crash and is ignored", path);
        o = resume(&R, lines);
    } else {
        if (r->run_id && *r->run_id)
            snprintf(R.id, sizeof R.id, "%s", r->run_id);
        else
            make_run_id(R.id);
        json_t *vars = json_object();
        for (size_t i = 0; i < p->nvars; i++)
            json_object_set_new(vars, p->var_keys[i], json_string(p->var_values[i]));
        json_t *head = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "t", "run",
                                 "run", R.id, "plan", p->name, "digest", p->digest,
                                 "host", r->host_name ? r->host_name : "",
                                 "started_ns", (json_int_t)record_now_ns(), "text", p->text,
                                 "vars", vars);
        if (!head || journal(&R, head) != 0)
            goto out;
        emit(&R, "plan.started", "started", NULL, NULL, 0, 0, -1, NULL);
        o = forward(&R, 0);
    }
out:
    if (o != PLAN_OK && !why[0])
        snprintf(why, whylen, "%s", R.why[0] ? R.why : plan_outcome_name(o));
    run_free(&R);
out_nofree:
    json_decref(lines);
    plan_free(other);
    free(path);
    return o;
}

char **plan_unfinished(const char *state_dir)
{
    char *dir = NULL;
    char **names = NULL;
    size_t n = 0;

    if (asprintf(&dir, "%s/runs", state_dir) < 0)
        return NULL;
    DIR *d = opendir(dir);
    free(dir);
    if (!d)
        return calloc(1, sizeof *names);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 8 || strcmp(e->d_name + len - 8, ".journal") != 0)
            continue;
        char **more = realloc(names, (n + 2) * sizeof *names);
        if (!more)
            break;
        names = more;
        if (!(names[n] = strndup(e->d_name, len - 8)))
            break;
        names[++n] = NULL;
    }
    closedir(d);
    return names ? names : calloc(1, sizeof *names);
}

void plan_names_free(char **names)
{
    for (char **p = names; p && *p; p++)
        free(*p);
    free(names);
}

enum plan_outcome plan_resume(const struct plan_runner *r, const char *name, char *why,
                              size_t whylen)
{
    char *path = journal_path(r->state_dir, name);
    json_t *lines = NULL;
    int torn = 0;
    enum plan_outcome o = PLAN_ERROR;

    why[0] = '\0';
    if (!path) {
        snprintf(why, whylen, "cannot open %s/runs", r->state_dir);
        return PLAN_ERROR;
    }
    if (journal_read(path, &lines, &torn, why, whylen) == 0 && json_array_size(lines) > 0) {
        struct plan *p = journaled_plan(json_array_get(lines, 0), path, why, whylen);
        if (p) {
            struct plan_runner rr = *r;
            rr.resume_other = true;
            o = plan_run(&rr, p, why, whylen);
            plan_free(p);
        }
    } else if (!why[0]) {
        snprintf(why, whylen, "%s holds no run", path);
    }
    json_decref(lines);
    free(path);
    return o;
}
