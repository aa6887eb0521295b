/* plugtest.h: helpers for the collector tests: run a plugin in the harness and look up what it emitted. */
#ifndef PIPIT_PLUGTEST_H
#define PIPIT_PLUGTEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "config.h"
#include "diag.h"
#include "harness.h"
#include "../tap.h"

/*
 * One plugin instance under test. recs holds the records of the last
 * tp_run() only (a JSON array); bad counts records of that run that break
 * the naming and typing rules of docs/plugins (see tp_check).
 */
struct tp {
    struct harness h;
    bool open;
    json_t *recs;
    int bad;
};

/* Path of a built plugin: $PIPIT_PLUGIN_DIR/in_<name>.so (static buffer). */
static inline const char *tp_plugin(const char *name)
{
    static char path[4096];
    const char *dir = getenv("PIPIT_PLUGIN_DIR");

    if (!dir)
        plan_skip_all("PIPIT_PLUGIN_DIR is not set (run through make check)");
    snprintf(path, sizeof path, "%s/in_%s.so", dir, name);
    return path;
}

/* Path of a fixture: $top_srcdir/tests/fixtures/proc/<rel> (one of four
 * static buffers, reused in turn). */
static inline const char *tp_fixture(const char *rel)
{
    static char bufs[4][4096];
    static int n;
    char *b = bufs[n++ % 4];
    const char *top = getenv("top_srcdir");

    if (!top)
        plan_skip_all("top_srcdir is not set (run through make check)");
    snprintf(b, sizeof bufs[0], "%s/tests/fixtures/proc/%s", top, rel);
    return b;
}

/* Check one cost record: a three-letter currency, an exact integer
 * amount_micros next to a finite amount, a resource, a period that does not
 * run backwards, and string labels. */
static inline bool tp_check_cost(json_t *r)
{
    const char *cur = json_string_value(json_object_get(r, "currency"));
    json_t *labels = json_object_get(r, "labels"), *lv;
    const char *k;

    if (!cur || strlen(cur) != 3 || !json_is_integer(json_object_get(r, "amount_micros")) ||
        !json_is_number(json_object_get(r, "amount")) ||
        !json_is_string(json_object_get(r, "resource")) ||
        json_integer_value(json_object_get(r, "period_end")) <
            json_integer_value(json_object_get(r, "period_start")) ||
        !json_is_object(labels))
        return false;
    json_object_foreach(labels, k, lv)
        if (!json_is_string(lv))
            return false;
    return true;
}

/* Check one event record: a lowercase dotted name, a status and string
 * labels. */
static inline bool tp_check_event(json_t *r)
{
    const char *name = json_string_value(json_object_get(r, "name"));
    json_t *labels = json_object_get(r, "labels"), *lv;
    const char *k, *p;

    if (!name || !*name || !json_is_string(json_object_get(r, "status")))
        return false;
    for (p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.'))
            return false;
    if (labels && !json_is_object(labels))
        return false;
    json_object_foreach(labels, k, lv)
        if (!json_is_string(lv))
            return false;
    return true;
}

/* Check one record: a metric with a lowercase dotted name, a known type, a
 * finite value and string labels, a cost (tp_check_cost) or an event
 * (tp_check_event). Returns true when it is well-formed. */
static inline bool tp_check(json_t *r)
{
    static regex_t re;
    static bool compiled;
    const char *kind = json_string_value(json_object_get(r, "kind"));
    const char *name = json_string_value(json_object_get(r, "name"));
    const char *type = json_string_value(json_object_get(r, "type"));
    json_t *v = json_object_get(r, "value"), *labels = json_object_get(r, "labels");
    const char *k;
    json_t *lv;

    if (!compiled) {
        if (regcomp(&re, "^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)+$", REG_EXTENDED | REG_NOSUB))
            abort();
        compiled = true;
    }
    if (kind && strcmp(kind, "cost") == 0)
        return tp_check_cost(r);
    if (kind && strcmp(kind, "event") == 0)
        return tp_check_event(r);
    if (kind && strcmp(kind, "log") == 0)  /* a message, a level, string labels */
        return json_is_string(json_object_get(r, "message")) &&
               json_is_string(json_object_get(r, "level")) && json_is_object(labels);
    if (!kind || strcmp(kind, "metric") || !name || regexec(&re, name, 0, NULL, 0))
        return false;
    if (!type || (strcmp(type, "gauge") && strcmp(type, "counter")))
        return false;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return false;
    if (!json_is_object(labels))
        return false;
    json_object_foreach(labels, k, lv)
        if (!json_is_string(lv))
            return false;
    return true;
}

/*
 * Open plugin `name` (or the plugin file at path) with options kv
 * ("key=value" strings, NULL-terminated) and run init(). Returns init's status, or PIPIT_EINVAL when the plugin or
 * an option was refused (printed on stderr).
 */
static inline int tp_open_path(struct tp *t, const char *path, const char *const *kv)
{
    char *copy[32];
    int n = 0, rc;

    memset(t, 0, sizeof *t);
    for (; kv && kv[n] && n < 32; n++)
        copy[n] = strdup(kv[n]);
    rc = harness_open(&t->h, path, copy, n, stderr);
    for (int i = 0; i < n; i++)
        free(copy[i]);
    if (rc != PIPIT_OK)
        return rc;
    t->open = true;
    return harness_init(&t->h);
}

static inline int tp_open(struct tp *t, const char *name, const char *const *kv)
{
    return tp_open_path(t, tp_plugin(name), kv);
}

/*
 * Open plugin `name` with options given as YAML text (lists and maps need
 * it) and run init(). The harness makes the instance from kv first
 * ("key=value" strings, NULL-terminated, or NULL: placeholders for required
 * options), then makes it again from the YAML map. Returns init's status,
 * or PIPIT_EINVAL when the plugin or an option was refused (on stderr).
 */
static inline int tp_open_yaml(struct tp *t, const char *name, const char *const *kv,
                               const char *yaml)
{
    const struct loader_plugin *lp;
    char *copy[32];
    struct cfg_doc *doc;
    struct diag d;
    int n = 0, rc;

    memset(t, 0, sizeof *t);
    for (; kv && kv[n] && n < 32; n++)
        copy[n] = strdup(kv[n]);
    rc = harness_open(&t->h, tp_plugin(name), copy, n, stderr);
    for (int i = 0; i < n; i++)
        free(copy[i]);
    if (rc != PIPIT_OK) {
        diag("the %s plugin does not load", name);
        return PIPIT_EINVAL;
    }
    t->open = true;
    lp = t->h.ins->plugin;
    instance_free(t->h.ins);
    t->h.ins = NULL;
    diag_init(&d);
    doc = cfg_load_string(yaml, strlen(yaml), "test", &d);
    if (doc)
        t->h.ins = instance_create(&t->h.host, lp, PIPIT_COLLECTOR, name, doc->root,
                                   NULL, "test", NULL, &d);
    if (!t->h.ins)
        diag_print(&d, stderr);
    cfg_free(doc);
    diag_free(&d);
    if (!t->h.ins)
        return PIPIT_EINVAL;
    return harness_init(&t->h);
}

/* Parse what the plugin emitted into t->recs, counting malformed records. */
static inline void tp__take(struct tp *t)
{
    char *line, *save = NULL;

    if (!t->h.out.len)
        return;
    for (line = strtok_r(t->h.out.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *r = json_loads(line, 0, &err);

        if (!r) {
            diag("unparsable record: %s (%s)", line, err.text);
            t->bad++;
            continue;
        }
        if (!tp_check(r)) {
            diag("malformed record: %s", line);
            t->bad++;
        }
        json_array_append_new(t->recs, r);
    }
}

static inline void tp__reset(struct tp *t)
{
    json_decref(t->recs);
    t->recs = json_array();
    t->bad = 0;
    buf_reset(&t->h.out);
}

/*
 * One collection: the records it emitted replace t->recs. Returns the
 * status of collect().
 */
static inline int tp_run(struct tp *t)
{
    tp__reset(t);
    int rc = harness_run(&t->h);
    tp__take(t);
    return rc;
}

static inline int64_t tp__ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tp__wake(uv_timer_t *timer)
{
    (void)timer;
}

/*
 * For plugins driven by the loop (watched fds, timers): run the loop for
 * up to ms milliseconds, or until done(t) is true after a turn (done may be
 * NULL), with what was emitted in that time replacing t->recs. Returns the
 * milliseconds it ran.
 */
static inline int64_t tp_pump(struct tp *t, int64_t ms, bool (*done)(struct tp *t))
{
    int64_t start = tp__ms(), now = start;
    uv_timer_t timer;

    tp__reset(t);
    uv_timer_init(&t->h.loop, &timer);
    while (now - start < ms) {
        uv_timer_start(&timer, tp__wake, (uint64_t)(ms - (now - start)), 0);
        uv_run(&t->h.loop, UV_RUN_ONCE);
        instance_handoff(t->h.ins);
        now = tp__ms();
        if (done) {
            json_decref(t->recs);
            t->recs = json_array();
            t->bad = 0;
            char *copy = strndup(t->h.out.data ? t->h.out.data : "", t->h.out.len);
            struct buf keep = t->h.out;
            t->h.out.data = copy;
            tp__take(t);
            free(copy);
            t->h.out = keep;
            if (done(t))
                break;
        }
    }
    uv_timer_stop(&timer);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&t->h.loop, UV_RUN_NOWAIT);
    json_decref(t->recs);
    t->recs = json_array();
    t->bad = 0;
    tp__take(t);
    return now - start;
}

static inline void tp_close(struct tp *t)
{
    if (t->open)
        harness_close(&t->h);
    json_decref(t->recs);
    memset(t, 0, sizeof *t);
}

/* True when record r has name and every label of the NULL-terminated
 * key, value list ap (other labels are allowed). */
static inline bool tp_matches(json_t *r, const char *name, va_list ap)
{
    json_t *labels = json_object_get(r, "labels");
    const char *n = json_string_value(json_object_get(r, "name")), *k, *v;

    if (!n || strcmp(n, name) != 0)
        return false;
    while ((k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        const char *got = json_string_value(json_object_get(labels, k));
        if (!got || strcmp(got, v) != 0)
            return false;
    }
    return true;
}

/* First record of the last run named name with the given labels
 * ("key", "value", ..., NULL), or NULL. */
static inline json_t *tp_find(struct tp *t, const char *name, ...)
{
    size_t i;
    json_t *r;

    json_array_foreach(t->recs, i, r) {
        va_list ap;
        bool m;

        va_start(ap, name);
        m = tp_matches(r, name, ap);
        va_end(ap);
        if (m)
            return r;
    }
    return NULL;
}

/* Number of records of the last run named name with the given labels. */
static inline int tp_count(struct tp *t, const char *name, ...)
{
    size_t i;
    json_t *r;
    int n = 0;

    json_array_foreach(t->recs, i, r) {
        va_list ap;

        va_start(ap, name);
        n += tp_matches(r, name, ap);
        va_end(ap);
    }
    return n;
}

/* Value of a found record (NaN when r is NULL). */
static inline double tp_val(json_t *r)
{
    return r ? json_number_value(json_object_get(r, "value")) : NAN;
}

/* Type ("gauge", "counter") of a found record, or "". */
static inline const char *tp_type(json_t *r)
{
    const char *s = r ? json_string_value(json_object_get(r, "type")) : NULL;
    return s ? s : "";
}

/* ok() for doubles: |got - want| <= tol. */
#define is_num(got, want, tol, ...) do {                                     \
    double tp__g = (got), tp__w = (want);                                    \
    if (!ok(fabs(tp__g - tp__w) <= (tol), __VA_ARGS__))                      \
        diag("  got %.17g, want %.17g", tp__g, tp__w);                       \
} while (0)

/* ---- staging fixture trees --------------------------------------------- */

/* A fresh private directory under $TMPDIR (static buffer). */
static inline const char *tp_tmpdir(void)
{
    static char dir[4096];
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof dir, "%s/pipit-plugtest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    return dir;
}

/* mkdir -p dir/rel. */
static inline void tp_mkdirs(const char *dir, const char *rel)
{
    char path[8192];

    if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path)
        abort();                        /* test paths are short */
    for (char *p = path + strlen(dir) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
}

/* Write text to dir/rel (replacing it), making parent directories. */
static inline void tp_write(const char *dir, const char *rel, const char *text)
{
    char path[8192], tmp[8300];
    const char *slash = strrchr(rel, '/');
    FILE *f;

    if (slash) {
        char parent[4096];

        if (snprintf(parent, sizeof parent, "%.*s", (int)(slash - rel), rel) >=
            (int)sizeof parent)
            abort();
        tp_mkdirs(dir, parent);
    }
    if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path ||
        snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        abort();
    f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* Copy the fixture file <fixture> (relative to tests/fixtures/proc) to
 * dir/rel. */
static inline void tp_stage(const char *dir, const char *rel, const char *fixture)
{
    const char *src = tp_fixture(fixture);
    FILE *f = fopen(src, "r");
    char *text = NULL;
    size_t len = 0;

    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", src, strerror(errno));
        exit(1);
    }
    FILE *m = open_memstream(&text, &len);
    char buf[8192];
    size_t n;

    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, m);
    fclose(f);
    fclose(m);
    tp_write(dir, rel, text);
    free(text);
}

static inline int tp__rm(const char *path, const struct stat *st, int flag,
                         struct FTW *f)
{
    return remove(path);
}

/* rm -rf dir. */
static inline void tp_rmtree(const char *dir)
{
    nftw(dir, tp__rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Read a whole small file into a static buffer (one of two); NULL on error. */
static inline const char *tp_slurp(const char *path)
{
    static char bufs[2][1 << 20];
    static int n;
    char *b = bufs[n++ % 2];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    ssize_t r;

    if (fd < 0)
        return NULL;
    while ((r = read(fd, b + len, sizeof bufs[0] - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    b[len] = '\0';
    return b;
}

#endif
