/* acttest.h: helpers for the action tests: run one act() in the harness within a deadline and read its results and log. */
#ifndef PIPIT_ACTTEST_H
#define PIPIT_ACTTEST_H

#include "../plugins/plugtest.h"
#include "log.h"

static FILE *at_log_file;               /* the plugins' log lines */
static char at_log_path[4200];

/* Path of a built action: $PIPIT_PLUGIN_DIR/act_<name>.so (static buffer). */
static inline const char *at_plugin(const char *name)
{
    static char path[4096];
    const char *dir = getenv("PIPIT_PLUGIN_DIR");

    if (!dir)
        plan_skip_all("PIPIT_PLUGIN_DIR is not set (run through make check)");
    snprintf(path, sizeof path, "%s/act_%s.so", dir, name);
    return path;
}

/* Send the log to a file in dir (read back with at_log). */
static inline void at_log_setup(const char *dir)
{
    snprintf(at_log_path, sizeof at_log_path, "%s/plugin.log", dir);
    at_log_file = fopen(at_log_path, "w+");
    if (!at_log_file) {
        printf("Bail out! cannot open %s\n", at_log_path);
        exit(1);
    }
    log_setup(at_log_file, LOG_FMT_LOGFMT, PIPIT_LOG_DEBUG);
}

static inline void at_log_end(void)
{
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    if (at_log_file)
        fclose(at_log_file);
    at_log_file = NULL;
}

/* The log since the last at_log_clear (a static buffer). */
static inline const char *at_log(void)
{
    fflush(at_log_file);
    const char *s = tp_slurp(at_log_path);
    return s ? s : "";
}

static inline void at_log_clear(void)
{
    fflush(at_log_file);
    if (ftruncate(fileno(at_log_file), 0) != 0)
        diag("cannot truncate the log");
    rewind(at_log_file);
}

/* The log has text (reported with diag when not). */
static inline bool at_logged(const char *text)
{
    const char *l = at_log();

    if (strstr(l, text))
        return true;
    diag("not in the log: %s", text);
    diag("log: %s", l);
    return false;
}

/* Set by a test to make api->cancelled() true. */
static bool at_cancel;

static inline bool at__cancelled(struct instance_host *h, struct pipit_instance *ins)
{
    (void)h, (void)ins;
    return at_cancel;
}

/*
 * One step: open action `name` with options kv ("key=value" strings,
 * NULL-terminated; lists and maps as YAML flow text), init it and, when
 * that worked, act() once within timeout_ms (0: no deadline). Returns
 * act's status, or init's when it failed (the instance stays open for
 * at_result; close it with tp_close).
 */
static inline int at_step(struct tp *t, const char *name, const char *const *kv,
                          int64_t timeout_ms)
{
    int rc = tp_open_path(t, at_plugin(name), kv);

    if (!t->open)
        return rc;
    t->h.host.cancelled = at__cancelled;
    if (rc != PIPIT_OK)
        return rc;
    if (timeout_ms)
        t->h.deadline_ms = (int64_t)(uv_hrtime() / 1000000) + timeout_ms;
    return harness_run(&t->h);
}

/* Result key of the last step, or NULL. */
static inline const char *at_result(struct tp *t, const char *key)
{
    return json_string_value(json_object_get(t->h.results, key));
}

/* The same, "" when absent. */
static inline const char *at_res(struct tp *t, const char *key)
{
    const char *v = at_result(t, key);
    return v ? v : "";
}

static inline bool at_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* Number of entries in dir, "." and ".." aside. */
static inline int at_entries(const char *dir)
{
    char cmd[8300];
    int n = 0;

    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

/* The directories of the allowed_dirs tests. */
struct at_tree {
    char apps[2048];                    /* dir/apps: what allowed_dirs names */
    char outside[2048];                 /* dir/outside: where no step may write */
    char escape[3072];                  /* dir/apps/escape: a symlink to outside */
};

/* Make dir/apps/sub, dir/outside and the symlink dir/apps/escape -> outside. */
static inline void at_tree_make(const char *dir, const char *sub, struct at_tree *t)
{
    char rel[256];

    snprintf(t->apps, sizeof t->apps, "%s/apps", dir);
    snprintf(t->outside, sizeof t->outside, "%s/outside", dir);
    snprintf(t->escape, sizeof t->escape, "%s/escape", t->apps);
    snprintf(rel, sizeof rel, "apps/%s", sub);
    tp_mkdirs(dir, rel);
    tp_mkdirs(dir, "outside");
    if (symlink(t->outside, t->escape) != 0)
        diag("cannot make %s", t->escape);
}

/* "key=" and n bytes of 'a' (free() it): a megabyte parameter. */
static inline char *at_huge(const char *key, size_t n)
{
    size_t k = strlen(key);
    char *s = malloc(k + 1 + n + 1);

    if (!s) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    memcpy(s, key, k);
    s[k] = '=';
    memset(s + k + 1, 'a', n);
    s[k + 1 + n] = '\0';
    return s;
}

#endif
