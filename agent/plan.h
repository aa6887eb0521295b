/* plan.h: a deployment plan read from YAML: variables, ordered steps, their rollback steps, templates and conditions. */
#ifndef PIPIT_PLAN_H
#define PIPIT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "config.h"
#include "diag.h"

#define PLAN_MAX_STEPS 256              /* steps of a plan, rollback steps apart */
#define PLAN_MAX_VARS 256

/* What to do when a run finds this step started but not finished (the
 * agent died during it). */
enum plan_interrupt {
    PLAN_RERUN = 0,                     /* run it again (default) */
    PLAN_ROLLBACK                       /* roll back instead */
};

struct plan_step {
    char *name;                         /* unique within its list */
    char *action;                       /* action plugin name */
    const struct cfg_node *node;        /* the step's map, owned by the doc */
    int line;
    int64_t timeout_ms;                 /* per attempt */
    unsigned retries;                   /* attempts after the first */
    int64_t backoff_ms;                 /* before the first retry, then doubled */
    const char *when;                   /* condition text, or NULL */
    bool ignore_failure;                /* a failure does not stop the plan */
    enum plan_interrupt on_interrupt;
    struct plan_step *rollback;         /* run when a later step fails */
    size_t nrollback;
};

struct plan {
    struct cfg_doc *doc;
    char *file;                         /* name used in errors */
    char *name;                         /* the plan's name: [a-z0-9_.-]+ */
    char **var_keys, **var_values;      /* after --var overrides */
    size_t nvars;
    struct plan_step *steps;
    size_t nsteps;
    char *text;                         /* the YAML as read */
    size_t text_len;
    char digest[65];                    /* SHA-256 of text and variables, hex */
};

/* The keys of a step that belong to the runner, not to the action. */
extern const char *const plan_step_keys[];

/*
 * Parse a plan from text (name for errors) with variable overrides
 * "key=value" (noverrides of them; each must name a declared variable).
 * Every error goes to d with file, line and key: unknown keys, bad
 * durations, duplicate step names, references to variables that do not
 * exist or to steps that do not come earlier, bad conditions. Returns the
 * plan (free with plan_free) or NULL.
 */
struct plan *plan_load(const char *text, size_t len, const char *name,
                       char *const *overrides, size_t noverrides, struct diag *d);
/* plan_load() of a file (at most 1 MiB). */
struct plan *plan_load_file(const char *path, char *const *overrides, size_t noverrides,
                            struct diag *d);
void plan_free(struct plan *p);

/* The results of the steps run so far, for templates and conditions. */
struct plan_results {
    const char *(*get)(void *arg, const char *step, const char *key);
    void *arg;
};

/*
 * Expand the {{...}} references of text: {{NAME}} a variable, {{plan}} the
 * plan's name, {{run}} the run id, {{host}} the host name,
 * {{steps.STEP.KEY}} a result of an earlier step. Appends to out; returns
 * PIPIT_OK, or PIPIT_ENOENT with a reason in why (a result not set), or
 * PIPIT_ERANGE when out would pass 1 MiB (a bound on every expanded value).
 */
struct plan_ctx {
    const struct plan *plan;
    const char *run, *host;
    struct plan_results results;
};
int plan_expand(const struct plan_ctx *c, const char *text, struct buf *out,
                char *why, size_t whylen);

/* The step's options with every scalar expanded, for instance_create(). */
struct cfg_node *plan_step_options(const struct plan_ctx *c, const struct plan_step *s,
                                   char *why, size_t whylen);

/*
 * Evaluate a condition after expansion: terms joined by " and ", each
 * "A == B", "A != B" or a lone word (true unless empty, "false" or "0").
 * Returns 1 true, 0 false, -1 with a reason in why.
 */
int plan_when(const struct plan_ctx *c, const char *when, char *why, size_t whylen);

/* Every action the plan uses, steps and rollback steps, each once, in
 * order of first use: count returned, names borrowed from the plan. */
size_t plan_actions(const struct plan *p, const char **out, size_t max);

#endif
