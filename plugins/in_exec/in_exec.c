/* in_exec: run a command each interval and turn what it prints into metrics. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <pipit/plugin.h>
#include "influx.h"
#include "promtext.h"
#include "subproc.h"

#define EXEC_MAX_STDERR 4096            /* bytes of stderr kept for the log */

static const struct pipit_api *api;     /* borrowed from the host */

enum exec_format { EXEC_PROMETHEUS, EXEC_JSON, EXEC_INFLUX };

struct exec_ctx {
    struct pipit_strlist command;       /* option: argv */
    bool shell;                         /* option: run command[0] with /bin/sh -c */
    int64_t timeout_ms;                 /* option */
    struct pipit_strmap env;            /* option: extra environment */
    const char *format;                 /* option: prometheus | json | influx */
    int64_t max_output;                 /* option: bytes of stdout kept */
    int fmt;                            /* enum exec_format */
    char **argv;                        /* NULL-terminated, built by init */
    char **envp;                        /* environ plus env, built by init */
    uint64_t failures;                  /* runs that failed, since init */
    uint64_t truncations;               /* runs whose stdout was cut */
    uint64_t malformed;                 /* lines refused, since init */
    pipit_instance *ins;
};

static const struct pipit_option exec_options[] = {
    { "command", PIPIT_OPT_T_LIST, NULL, offsetof(struct exec_ctx, command),
      PIPIT_OPT_REQUIRED, 1, 0,
      "Program and arguments, run without a shell (PATH is searched)" },
    PIPIT_OPT_BOOL("shell", "false", struct exec_ctx, shell,
                   "Run the one item of command with /bin/sh -c"),
    PIPIT_OPT_DURATION("timeout", "10s", 1, 86400000, struct exec_ctx, timeout_ms,
                       "A run that lasts longer is killed and counts as failed"),
    PIPIT_OPT_MAP("env", struct exec_ctx, env,
                  "Environment variables added to the agent's for the command"),
    PIPIT_OPT_STRING("format", "prometheus", struct exec_ctx, format,
                     "What the command prints: prometheus, json (one object a line) or influx"),
    PIPIT_OPT_SIZE("max_output", "1MiB", 1, 1073741824, struct exec_ctx, max_output,
                   "Bytes of stdout read per run; the rest is dropped and counted"),
    PIPIT_OPT_END
};

static int exec_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static int exec_init(pipit_instance *ins, void *data)
{
    struct exec_ctx *ctx = data;
    size_t n = ctx->command.count;

    ctx->ins = ins;
    if (n == 0 || !*ctx->command.items[0]) {
        api->log(ins, PIPIT_LOG_ERROR, "command is empty");
        return PIPIT_ECONFIG;
    }
    if (ctx->shell && n != 1) {
        api->log(ins, PIPIT_LOG_ERROR, "shell: true takes command as one string, "
                 "got %zu items", n);
        return PIPIT_ECONFIG;
    }
    if (strcmp(ctx->format, "prometheus") == 0)
        ctx->fmt = EXEC_PROMETHEUS;
    else if (strcmp(ctx->format, "json") == 0)
        ctx->fmt = EXEC_JSON;
    else if (strcmp(ctx->format, "influx") == 0)
        ctx->fmt = EXEC_INFLUX;
    else {
        api->log(ins, PIPIT_LOG_ERROR, "format \"%s\": expected prometheus, json or influx",
                 ctx->format);
        return PIPIT_ECONFIG;
    }
    for (size_t i = 0; i < ctx->env.count; i++)
        if (!*ctx->env.keys[i] || strchr(ctx->env.keys[i], '=')) {
            api->log(ins, PIPIT_LOG_ERROR, "env key \"%s\" is not a variable name",
                     ctx->env.keys[i]);
            return PIPIT_ECONFIG;
        }
    ctx->argv = calloc((ctx->shell ? 3 : n) + 1, sizeof *ctx->argv);
    if (!ctx->argv)
        goto nomem;
    if (ctx->shell) {
        if (!(ctx->argv[0] = strdup("/bin/sh")) || !(ctx->argv[1] = strdup("-c")) ||
            !(ctx->argv[2] = strdup(ctx->command.items[0])))
            goto nomem;
    } else {
        for (size_t i = 0; i < n; i++)
            if (!(ctx->argv[i] = strdup(ctx->command.items[i])))
                goto nomem;
    }
    ctx->envp = subproc_build_env(ctx->env.keys, ctx->env.values, ctx->env.count);
    if (!ctx->envp)
        goto nomem;
    return PIPIT_OK;
nomem:
    subproc_free_vec(ctx->argv);
    ctx->argv = NULL;
    return PIPIT_ENOMEM;
}

static void exec_fini(pipit_instance *ins, void *data)
{
    struct exec_ctx *ctx = data;

    subproc_free_vec(ctx->argv);
    subproc_free_vec(ctx->envp);
}

static void exec_emit_cb(void *arg, const struct pipit_record *rec)
{
    struct exec_ctx *ctx = arg;

    api->emit(ctx->ins, rec);
}

static void exec_error_cb(void *arg, unsigned long line, const char *reason)
{
    struct exec_ctx *ctx = arg;

    ctx->malformed++;
    api->log(ctx->ins, PIPIT_LOG_WARN, "output line %lu refused: %s", line, reason);
}

/*
 * One line of the json format: {"name":…,"value":…,"type":…,"labels":{…}}
 * with type gauge (the default), counter or untyped, and string labels.
 * Returns NULL when emitted, or the reason it is refused.
 */
static const char *exec_json_line(struct exec_ctx *ctx, const char *p, size_t n)
{
    struct pipit_label labels[PROMTEXT_MAX_LABELS];
    const char *why = NULL, *name, *type, *k;
    json_t *o, *v, *l, *lv;
    json_error_t je;
    size_t nl = 0;
    int t = PIPIT_GAUGE;

    o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return "not JSON";
    name = json_string_value(json_object_get(o, "name"));
    v = json_object_get(o, "value");
    type = json_string_value(json_object_get(o, "type"));
    l = json_object_get(o, "labels");
    if (!json_is_object(o))
        why = "not a JSON object";
    else if (!name || !*name)
        why = "no name";
    else if (!json_is_number(v))
        why = "value is not a number";
    else if (json_object_get(o, "type") && !type)
        why = "type is not a string";
    else if (type && strcmp(type, "counter") == 0)
        t = PIPIT_COUNTER;
    else if (type && strcmp(type, "gauge") != 0 && strcmp(type, "untyped") != 0)
        why = "type is not gauge, counter or untyped";
    if (!why && l && !json_is_object(l))
        why = "labels is not an object";
    if (!why && l) {
        json_object_foreach(l, k, lv) {
            if (!json_is_string(lv)) {
                why = "a label value is not a string";
                break;
            }
            if (nl == PROMTEXT_MAX_LABELS) {
                why = "too many labels";
                break;
            }
            labels[nl].key = k;
            labels[nl++].value = json_string_value(lv);
        }
    }
    if (!why) {
        struct pipit_record r = {
            .struct_size = sizeof r, .kind = PIPIT_METRIC,
            .labels = nl ? labels : NULL, .nlabels = nl, .name = name,
            .metric_type = t, .value = json_number_value(v),
        };
        api->emit(ctx->ins, &r);
    }
    json_decref(o);
    return why;
}

/* The json format: one object a line; blank lines are skipped. */
static void exec_parse_json(struct exec_ctx *ctx, const char *p, size_t len)
{
    const char *end = p + len;
    unsigned long line = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *q = p, *why;

        line++;
        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q < le && (why = exec_json_line(ctx, q, (size_t)(le - q))) != NULL)
            exec_error_cb(ctx, line, why);
        p = nl ? nl + 1 : end;
    }
}

/*
 * Run the command once. Its output is parsed only when it exited with 0
 * within the timeout. Every run emits exec.duration_seconds and the
 * cumulative exec.failures, exec.truncations and exec.malformed_lines.
 * Returns PIPIT_OK, PIPIT_ETIMEDOUT or PIPIT_EIO.
 */
static int64_t exec_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int exec_collect(pipit_instance *ins, void *data)
{
    struct exec_ctx *ctx = data;
    const struct subproc_cmd cmd = {
        .argv = ctx->argv, .envp = ctx->envp, .timeout_ms = ctx->timeout_ms,
        .max_out = (size_t)ctx->max_output, .max_err = EXEC_MAX_STDERR,
    };
    struct subproc_result run;
    int64_t t0 = exec_now_ms();
    char how[128];
    int rc = PIPIT_OK;

    if (subproc_run(&cmd, &run) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", run.why);
        rc = PIPIT_EIO;
    } else if (run.timed_out) {
        api->log(ins, PIPIT_LOG_ERROR, "%s killed after the timeout of %lld ms",
                 ctx->argv[0], (long long)ctx->timeout_ms);
        rc = PIPIT_ETIMEDOUT;
    } else if (!WIFEXITED(run.status) || WEXITSTATUS(run.status) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "%s %s: %.200s", ctx->argv[0],
                 subproc_describe(&run, how, sizeof how), run.err);
        rc = PIPIT_EIO;
    } else {
        size_t len = run.outlen;
        if (run.out_cut) {
            ctx->truncations++;
            api->log(ins, PIPIT_LOG_WARN, "output longer than max_output (%lld bytes): "
                     "cut at the last full line", (long long)ctx->max_output);
            while (len > 0 && run.out[len - 1] != '\n')  /* a cut line would parse wrong */
                len--;
        }
        if (ctx->fmt == EXEC_PROMETHEUS) {
            rc = promtext_parse(run.out, len, exec_emit_cb, exec_error_cb, ctx, NULL);
        } else if (ctx->fmt == EXEC_INFLUX) {
            rc = influx_parse(run.out, len, exec_emit_cb, exec_error_cb, ctx, NULL);
        } else {
            exec_parse_json(ctx, run.out, len);
        }
    }
    if (rc != PIPIT_OK)
        ctx->failures++;
    api->emit_gauge(ins, "exec.duration_seconds", (double)(exec_now_ms() - t0) / 1000.0);
    api->emit_counter(ins, "exec.failures", (double)ctx->failures);
    api->emit_counter(ins, "exec.truncations", (double)ctx->truncations);
    api->emit_counter(ins, "exec.malformed_lines", (double)ctx->malformed);
    subproc_result_free(&run);
    return rc;
}

PIPIT_PLUGIN_DEFINE(
    .name = "exec", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Metrics printed by a command (Prometheus text, JSON lines or InfluxDB line protocol)",
    .ctx_size = sizeof(struct exec_ctx), .options = exec_options,
    .load = exec_load, .init = exec_init, .collect = exec_collect,
    .fini = exec_fini);
