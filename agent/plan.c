/* plan.c: read a deployment plan, check its references, expand its templates, evaluate its conditions. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "errors.h"
#include "options.h"
#include "plan.h"

#define PLAN_MAX_BYTES (1u << 20)
#define PLAN_DEFAULT_TIMEOUT_MS (10 * 60 * 1000)
#define PLAN_MAX_RETRIES 100
#define PLAN_MAX_VALUE (1u << 20)       /* bytes of one value once expanded */

const char *const plan_step_keys[] = {
    "name", "action", "timeout", "retries", "backoff", "when", "ignore_failure",
    "on_interrupt", "rollback", NULL
};

static const char *const plan_keys[] = { "plan", "description", "variables", "steps", NULL };

/* Names of plans, steps and variables: [a-z0-9_] plus '-' and '.' for plans. */
static bool plan_word(const char *s, bool plan_name)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!(islower((unsigned char)s[n]) || isdigit((unsigned char)s[n]) || s[n] == '_' ||
              (plan_name && (s[n] == '-' || s[n] == '.'))))
            return false;
    return n > 0 && n <= 64;
}

static bool in_list(const char *const *list, const char *key)
{
    for (; *list; list++)
        if (strcmp(*list, key) == 0)
            return true;
    return false;
}

/* ---- templates ---------------------------------------------------------- */

/*
 * Find the next reference in text from p: sets *start (at "{{"), *end (after
 * "}}") and the trimmed name inside. Returns false when there is none;
 * *bad is set for an unterminated or empty reference.
 */
static bool next_ref(const char *p, const char **start, const char **end,
                     char *name, size_t namelen, bool *bad)
{
    const char *s = strstr(p, "{{"), *e, *a, *b;

    *bad = false;
    if (!s)
        return false;
    if (!(e = strstr(s + 2, "}}"))) {
        *bad = true;
        return false;
    }
    for (a = s + 2; a < e && isspace((unsigned char)*a); a++)
        ;
    for (b = e; b > a && isspace((unsigned char)b[-1]); b--)
        ;
    if (b == a || (size_t)(b - a) >= namelen) {
        *bad = true;
        return false;
    }
    memcpy(name, a, (size_t)(b - a));
    name[b - a] = '\0';
    *start = s;
    *end = e + 2;
    return true;
}

/* Split "steps.STEP.KEY"; false when name is not of that form. */
static bool split_result_ref(char *name, char **step, char **key)
{
    if (strncmp(name, "steps.", 6) != 0)
        return false;
    *step = name + 6;
    char *dot = strchr(*step, '.');
    if (!dot)
        return false;
    *dot = '\0';
    *key = dot + 1;
    return true;
}

static const char *plan_var(const struct plan *p, const char *name)
{
    for (size_t i = 0; i < p->nvars; i++)
        if (strcmp(p->var_keys[i], name) == 0)
            return p->var_values[i];
    return NULL;
}

int plan_expand(const struct plan_ctx *c, const char *text, struct buf *out,
                char *why, size_t whylen)
{
    const char *p = text, *s, *e;
    char name[200], *step, *key;
    bool bad;

    while (next_ref(p, &s, &e, name, sizeof name, &bad)) {
        const char *v = NULL;
        buf_append(out, p, (size_t)(s - p));
        if (strcmp(name, "plan") == 0)
            v = c->plan->name;
        else if (strcmp(name, "run") == 0)
            v = c->run;
        else if (strcmp(name, "host") == 0)
            v = c->host;
        else if (split_result_ref(name, &step, &key)) {
            v = c->results.get ? c->results.get(c->results.arg, step, key) : NULL;
            if (!v) {
                snprintf(why, whylen, "step %s has no result %s", step, key);
                return PIPIT_ENOENT;
            }
        } else
            v = plan_var(c->plan, name);
        if (!v) {
            snprintf(why, whylen, "no variable %s", name);
            return PIPIT_ENOENT;
        }
        if (out->len + strlen(v) > PLAN_MAX_VALUE)
            goto toolong;
        buf_puts(out, v);
        p = e;
    }
    if (bad) {
        snprintf(why, whylen, "a {{ without a name and }}");
        return PIPIT_EINVAL;
    }
    if (out->len + strlen(p) > PLAN_MAX_VALUE)
        goto toolong;
    return buf_puts(out, p);
toolong:
    snprintf(why, whylen, "longer than %u KiB once its {{...}} are expanded: refused",
             PLAN_MAX_VALUE >> 10);
    return PIPIT_ERANGE;
}

struct expand_arg {
    const struct plan_ctx *c;
    char *why;
    size_t whylen;
    const struct cfg_node *failed;      /* the scalar that did not expand */
};

static char *expand_scalar(const struct cfg_node *n, void *arg)
{
    struct expand_arg *a = arg;
    struct buf b = BUF_INIT;

    if (plan_expand(a->c, n->value, &b, a->why, a->whylen) != PIPIT_OK) {
        a->failed = n;
        buf_free(&b);
        return NULL;
    }
    if (!b.data)
        return strdup("");
    return buf_steal(&b);
}

/* Append to b the key path of node below parent ("command[2]",
 * "headers.Host"); false when node is not below parent. */
static bool key_path(const struct cfg_node *parent, const struct cfg_node *node,
                     struct buf *b)
{
    for (size_t i = 0; i < parent->nchild; i++) {
        const struct cfg_node *c = parent->child[i];
        size_t len = b->len;

        if (parent->type == CFG_SEQ)
            buf_printf(b, "[%zu]", i);
        else
            buf_printf(b, "%s%s", len ? "." : "", c->key ? c->key : "?");
        if (c == node || key_path(c, node, b))
            return true;
        b->len = len;
    }
    return false;
}

struct cfg_node *plan_step_options(const struct plan_ctx *c, const struct plan_step *s,
                                   char *why, size_t whylen)
{
    struct expand_arg a = { c, why, whylen, NULL };
    struct buf path = BUF_INIT;

    why[0] = '\0';
    struct cfg_node *n = cfg_node_copy(s->node, expand_scalar, &a);
    if (!n && !why[0])
        snprintf(why, whylen, "out of memory");
    if (!n && a.failed && key_path(s->node, a.failed, &path) && path.data) {
        char reason[512];               /* name the key the value is of */

        snprintf(reason, sizeof reason, "%s", why);
        snprintf(why, whylen, "%.*s: %s", (int)path.len, path.data, reason);
    }
    buf_free(&path);
    return n;
}

/* ---- conditions --------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One term, already expanded: 1, 0 or -1. */
static int eval_term(char *t, char *why, size_t whylen)
{
    char *op = strstr(t, "==");
    bool neq = false;

    if (!op && (op = strstr(t, "!=")))
        neq = true;
    if (!op) {
        t = trim(t);
        if (strchr(t, '=') || strchr(t, '!')) {
            snprintf(why, whylen, "\"%s\": expected A == B, A != B or a word", t);
            return -1;
        }
        return *t && strcmp(t, "false") != 0 && strcmp(t, "0") != 0;
    }
    *op = '\0';
    char *a = trim(t), *b = trim(op + 2);
    if (strstr(b, "==") || strstr(b, "!=")) {
        snprintf(why, whylen, "\"%s\": one comparison per term (join terms with and)", b);
        return -1;
    }
    return (strcmp(a, b) == 0) != neq;
}

int plan_when(const struct plan_ctx *c, const char *when, char *why, size_t whylen)
{
    struct buf b = BUF_INIT;
    int result = 1;

    if (plan_expand(c, when, &b, why, whylen) != PIPIT_OK) {
        buf_free(&b);
        return -1;
    }
    char *p = b.data ? b.data : "";
    for (;;) {
        char *and = strstr(p, " and ");
        if (and)
            *and = '\0';
        int r = eval_term(p, why, whylen);
        if (r < 0) {
            result = -1;
            break;
        }
        if (!r)
            result = 0;
        if (!and)
            break;
        p = and + 5;
    }
    buf_free(&b);
    return result;
}

/* ---- loading ------------------------------------------------------------ */

struct loader_state {
    struct plan *p;
    struct diag *d;
};

/* Check every reference of every scalar under n: variables that exist,
 * results of steps in known[0..nknown). */
static void check_refs(struct loader_state *L, const struct cfg_node *n, const char *key,
                       char *const *known, size_t nknown)
{
    if (n->type != CFG_SCALAR) {
        for (size_t i = 0; i < n->nchild; i++)
            check_refs(L, n->child[i], n->child[i]->key ? n->child[i]->key : key, known,
                       nknown);
        return;
    }
    const char *p = n->value, *s, *e;
    char name[200], *step, *rkey;
    bool bad;
    while (next_ref(p, &s, &e, name, sizeof name, &bad)) {
        p = e;
        if (!strcmp(name, "plan") || !strcmp(name, "run") || !strcmp(name, "host"))
            continue;
        if (split_result_ref(name, &step, &rkey)) {
            bool found = false;
            for (size_t i = 0; i < nknown && !found; i++)
                found = strcmp(known[i], step) == 0;
            if (!found)
                diag_add(L->d, L->p->file, n->line, key,
                         "{{steps.%s.%s}}: no step %s runs before this one", step, rkey,
                         step);
            else if (!*rkey)
                diag_add(L->d, L->p->file, n->line, key, "{{steps.%s.}}: no result named",
                         step);
            continue;
        }
        if (!plan_var(L->p, name))
            diag_add(L->d, L->p->file, n->line, key,
                     "{{%s}}: no such variable (declare it under variables)", name);
    }
    if (bad)
        diag_add(L->d, L->p->file, n->line, key, "a {{ without a name and a closing }}");
}

static int64_t step_duration(struct loader_state *L, const struct cfg_node *m,
                             const char *key, int64_t def, int64_t max)
{
    const struct cfg_node *n = cfg_get(m, key);
    int64_t ms;

    if (!n)
        return def;
    if (n->type != CFG_SCALAR || opt_parse_duration(n->value, &ms) != PIPIT_OK || ms <= 0 ||
        ms > max) {
        diag_add(L->d, L->p->file, n->line, key,
                 "expected a duration such as 30s or 5m (at most %lld s)",
                 (long long)(max / 1000));
        return def;
    }
    return ms;
}

static void free_steps(struct plan_step *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].name);
        free(s[i].action);
        free_steps(s[i].rollback, s[i].nrollback);
    }
    free(s);
}

/*
 * Parse the sequence seq into *out. known/nknown: the step names whose
 * results a step may use; the names of this list are added as they come
 * (a rollback list may use its own earlier steps too). owner: the step
 * whose rollback this is, or NULL.
 */
static int parse_steps(struct loader_state *L, const struct cfg_node *seq, const char *what,
                       struct plan_step **out, size_t *nout, char **known, size_t *nknown,
                       const struct plan_step *owner)
{
    if (seq->type != CFG_SEQ || seq->nchild == 0) {
        diag_add(L->d, L->p->file, seq->line, what, "expected a list of steps");
        return -1;
    }
    if (seq->nchild > PLAN_MAX_STEPS) {
        diag_add(L->d, L->p->file, seq->line, what, "%zu steps: at most %d", seq->nchild,
                 PLAN_MAX_STEPS);
        return -1;
    }
    struct plan_step *steps = calloc(seq->nchild, sizeof *steps);
    if (!steps)
        return -1;
    *out = steps;
    *nout = seq->nchild;
    size_t base = *nknown;
    for (size_t i = 0; i < seq->nchild; i++) {
        const struct cfg_node *m = seq->child[i], *n;
        struct plan_step *s = &steps[i];
        char defname[96];
        s->node = m;
        s->line = m->line;
        if (m->type != CFG_MAP) {
            diag_add(L->d, L->p->file, m->line, what, "a step is a map with an action");
            continue;
        }
        n = cfg_get(m, "action");
        if (!n || n->type != CFG_SCALAR || !plan_word(n->value, false)) {
            diag_add(L->d, L->p->file, n ? n->line : m->line, "action",
                     n ? "\"%s\": expected an action plugin name (exec, http, fetch, switch, "
                         "wait_healthy, service...)" : "every step needs an action%s",
                     n && n->value ? cfg_show(n) : "");
            continue;
        }
        s->action = strdup(n->value);
        if (owner)
            snprintf(defname, sizeof defname, "%s-rollback-%zu", owner->name, i + 1);
        else
            snprintf(defname, sizeof defname, "%s-%zu", n->value, i + 1);
        n = cfg_get(m, "name");
        if (n && (n->type != CFG_SCALAR || !plan_word(n->value, false)))
            diag_add(L->d, L->p->file, n->line, "name",
                     "a step name is 1 to 64 of a-z, 0-9 and _");
        s->name = strdup(n && n->type == CFG_SCALAR ? n->value : defname);
        for (size_t j = 0; j < *nknown && s->name; j++)
            if (strcmp(known[j], s->name) == 0)
                diag_add(L->d, L->p->file, n ? n->line : m->line, "name",
                         "a step named %s comes earlier", s->name);
        s->timeout_ms = step_duration(L, m, "timeout", PLAN_DEFAULT_TIMEOUT_MS,
                                      7LL * 24 * 3600 * 1000);
        s->backoff_ms = step_duration(L, m, "backoff", 1000, 3600 * 1000);
        if ((n = cfg_get(m, "retries"))) {
            char *end;
            long v = n->type == CFG_SCALAR ? strtol(n->value, &end, 10) : -1;
            if (n->type != CFG_SCALAR || *end || !*n->value || v < 0 || v > PLAN_MAX_RETRIES)
                diag_add(L->d, L->p->file, n->line, "retries", "expected 0 to %d",
                         PLAN_MAX_RETRIES);
            else
                s->retries = (unsigned)v;
        }
        if ((n = cfg_get(m, "ignore_failure")) &&
            (n->type != CFG_SCALAR || opt_parse_bool(n->value, &s->ignore_failure) != PIPIT_OK))
            diag_add(L->d, L->p->file, n->line, "ignore_failure", "expected true or false");
        if ((n = cfg_get(m, "on_interrupt"))) {
            if (n->type == CFG_SCALAR && strcmp(n->value, "rerun") == 0)
                s->on_interrupt = PLAN_RERUN;
            else if (n->type == CFG_SCALAR && strcmp(n->value, "rollback") == 0)
                s->on_interrupt = PLAN_ROLLBACK;
            else
                diag_add(L->d, L->p->file, n->line, "on_interrupt",
                         "expected rerun or rollback");
        }
        if ((n = cfg_get(m, "when"))) {
            if (n->type != CFG_SCALAR || !*n->value)
                diag_add(L->d, L->p->file, n->line, "when", "expected a condition");
            else
                s->when = n->value;
        }
        /* references: the step's own results are not known yet */
        for (size_t j = 0; j < m->nchild; j++)
            if (strcmp(m->child[j]->key, "rollback") != 0 &&
                strcmp(m->child[j]->key, "name") != 0)
                check_refs(L, m->child[j], m->child[j]->key, known, *nknown);
        if ((n = cfg_get(m, "rollback"))) {
            if (owner) {
                diag_add(L->d, L->p->file, n->line, "rollback",
                         "a rollback step has no rollback of its own");
            } else if (s->name) {
                /* a rollback may read the results of this step and earlier ones */
                size_t mark = *nknown;
                known[(*nknown)++] = s->name;
                parse_steps(L, n, "rollback", &s->rollback, &s->nrollback, known, nknown, s);
                *nknown = mark;
            }
        }
        if (s->name && !owner)
            known[(*nknown)++] = s->name;
        else if (s->name && owner)
            known[(*nknown)++] = s->name;
        if (!s->name || !s->action)
            return -1;
    }
    (void)base;
    return 0;
}

static void load_vars(struct loader_state *L, const struct cfg_node *vars,
                      char *const *overrides, size_t noverrides)
{
    struct plan *p = L->p;
    size_t n = vars ? vars->nchild : 0;

    if (vars && vars->type != CFG_MAP) {
        diag_add(L->d, p->file, vars->line, "variables", "expected a map of name: value");
        return;
    }
    if (n > PLAN_MAX_VARS) {
        diag_add(L->d, p->file, vars->line, "variables", "%zu variables: at most %d", n,
                 PLAN_MAX_VARS);
        return;
    }
    p->var_keys = calloc(n + 1, sizeof *p->var_keys);
    p->var_values = calloc(n + 1, sizeof *p->var_values);
    if (!p->var_keys || !p->var_values)
        return;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_node *v = vars->child[i];
        if (!plan_word(v->key, false) || !strcmp(v->key, "plan") || !strcmp(v->key, "run") ||
            !strcmp(v->key, "host") || !strcmp(v->key, "steps")) {
            diag_add(L->d, p->file, v->line, v->key,
                     "a variable name is 1 to 64 of a-z, 0-9 and _, not plan, run, host or steps");
            continue;
        }
        if (v->type != CFG_SCALAR) {
            diag_add(L->d, p->file, v->line, v->key, "a variable's value is text");
            continue;
        }
        p->var_keys[p->nvars] = strdup(v->key);
        p->var_values[p->nvars++] = strdup(v->value);
    }
    for (size_t i = 0; i < noverrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        size_t j, kl = eq ? (size_t)(eq - overrides[i]) : 0;
        for (j = 0; eq && j < p->nvars; j++)
            if (strlen(p->var_keys[j]) == kl && !strncmp(p->var_keys[j], overrides[i], kl))
                break;
        if (!eq || kl == 0) {
            diag_add(L->d, "--var", 0, overrides[i], "expected NAME=VALUE");
        } else if (j == p->nvars) {
            diag_add(L->d, "--var", 0, overrides[i],
                     "the plan declares no variable %.*s (its variables: key under "
                     "variables)", (int)kl, overrides[i]);
        } else {
            free(p->var_values[j]);
            p->var_values[j] = strdup(eq + 1);
        }
    }
}

static void plan_digest(struct plan *p)
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_MD_CTX *x = EVP_MD_CTX_new();

    p->digest[0] = '\0';
    if (!x)
        return;
    EVP_DigestInit_ex(x, EVP_sha256(), NULL);
    EVP_DigestUpdate(x, p->text, p->text_len);
    for (size_t i = 0; i < p->nvars; i++) {
        EVP_DigestUpdate(x, "\n", 1);
        EVP_DigestUpdate(x, p->var_keys[i], strlen(p->var_keys[i]) + 1);
        EVP_DigestUpdate(x, p->var_values[i], strlen(p->var_values[i]) + 1);
    }
    EVP_DigestFinal_ex(x, md, &len);
    EVP_MD_CTX_free(x);
    for (unsigned i = 0; i < 32; i++)
        snprintf(p->digest + 2 * i, 3, "%02x", md[i]);
}

struct plan *plan_load(const char *text, size_t len, const char *name,
                       char *const *overrides, size_t noverrides, struct diag *d)
{
    struct plan *p = calloc(1, sizeof *p);
    struct loader_state L = { p, d };
    const struct cfg_node *root, *n;
    size_t errors0 = d->count;
    char **known = NULL;
    size_t nknown = 0;

    if (!p || !(p->file = strdup(name)) || !(p->text = malloc(len + 1)))
        goto fail;
    memcpy(p->text, text, len);
    p->text[len] = '\0';
    p->text_len = len;
    if (!(p->doc = cfg_load_string(text, len, name, d)))
        goto fail;
    root = p->doc->root;
    if (!root || root->type != CFG_MAP) {
        diag_add(d, name, 1, "plan", "a plan is a map with plan, variables and steps");
        goto fail;
    }
    for (size_t i = 0; i < root->nchild; i++)
        if (!in_list(plan_keys, root->child[i]->key))
            diag_add(d, name, root->child[i]->line, root->child[i]->key,
                     "unknown key (a plan has plan, description, variables and steps)");
    n = cfg_get(root, "plan");
    if (!n || n->type != CFG_SCALAR || !plan_word(n->value, true)) {
        diag_add(d, name, n ? n->line : 1, "plan",
                 "every plan needs a name: 1 to 64 of a-z, 0-9, _, - and .");
        goto fail;
    }
    p->name = strdup(n->value);
    load_vars(&L, cfg_get(root, "variables"), overrides, noverrides);
    n = cfg_get(root, "steps");
    if (!n) {
        diag_add(d, name, root->line ? root->line : 1, "steps", "a plan needs steps");
        goto fail;
    }
    /* at most every step and rollback step is known at once */
    known = calloc(PLAN_MAX_STEPS * 2 + 2, sizeof *known);
    if (!known)
        goto fail;
    parse_steps(&L, n, "steps", &p->steps, &p->nsteps, known, &nknown, NULL);
    free(known);
    if (d->count > errors0 || !p->name)
        goto fail;
    plan_digest(p);
    return p;
fail:
    plan_free(p);
    return NULL;
}

struct plan *plan_load_file(const char *path, char *const *overrides, size_t noverrides,
                            struct diag *d)
{
    struct buf b = BUF_INIT;
    const char *why = NULL;

    if (cfg_read_small_file(path, PLAN_MAX_BYTES, &b, &why) != PIPIT_OK) {
        diag_add(d, path, 0, "plan", "cannot read: %s", why ? why : "error");
        buf_free(&b);
        return NULL;
    }
    struct plan *p = plan_load(b.data ? b.data : "", b.len, path, overrides, noverrides, d);
    buf_free(&b);
    return p;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    free_steps(p->steps, p->nsteps);
    for (size_t i = 0; i < p->nvars; i++) {
        free(p->var_keys[i]);
        free(p->var_values[i]);
    }
    free(p->var_keys);
    free(p->var_values);
    cfg_free(p->doc);
    free(p->file);
    free(p->name);
    free(p->text);
    free(p);
}

static void add_action(const char **out, size_t max, size_t *n, const char *a)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(out[i], a) == 0)
            return;
    if (*n < max)
        out[(*n)++] = a;
}

size_t plan_actions(const struct plan *p, const char **out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < p->nsteps; i++) {
        add_action(out, max, &n, p->steps[i].action);
        for (size_t j = 0; j < p->steps[i].nrollback; j++)
            add_action(out, max, &n, p->steps[i].rollback[j].action);
    }
    return n;
}
