/* in_exec: run a command each interval and turn what it prints into metrics. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

#define EXEC_MAX_STDERR 4096            /* bytes of stderr kept for the log */
#define EXEC_KILL_GRACE_MS 1000         /* between SIGTERM and SIGKILL */

extern char **environ;

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

static void exec_free_vec(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/*
 * Build the environment of the command: the agent's own, with every key of
 * the env option replaced or added. Returns a NULL-terminated array (free
 * with exec_free_vec) or NULL when out of memory.
 */
static char **exec_build_env(const struct pipit_strmap *env)
{
    size_t n = 0, k = 0;
    char **out;

    while (environ && environ[n])
        n++;
    out = calloc(n + env->count + 1, sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        bool over = false;
        for (size_t j = 0; j < env->count && !over; j++) {
            size_t kl = strlen(env->keys[j]);
            over = strncmp(environ[i], env->keys[j], kl) == 0 && environ[i][kl] == '=';
        }
        if (!over && !(out[k++] = strdup(environ[i])))
            goto fail;
    }
    for (size_t j = 0; j < env->count; j++)
        if (asprintf(&out[k++], "%s=%s", env->keys[j], env->values[j]) < 0) {
            out[k - 1] = NULL;
            goto fail;
        }
    return out;
fail:
    exec_free_vec(out);
    return NULL;
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
    ctx->envp = exec_build_env(&ctx->env);
    if (!ctx->envp)
        goto nomem;
    return PIPIT_OK;
nomem:
    exec_free_vec(ctx->argv);
    ctx->argv = NULL;
    return PIPIT_ENOMEM;
}

static void exec_fini(pipit_instance *ins, void *data)
{
    struct exec_ctx *ctx = data;

    exec_free_vec(ctx->argv);
    exec_free_vec(ctx->envp);
}

static int64_t exec_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What one run of the command produced. */
struct exec_run {
    char *out;                          /* stdout, max_output bytes at most */
    size_t outlen;
    char err[EXEC_MAX_STDERR + 1];      /* start of stderr, NUL-terminated */
    size_t errlen;
    bool truncated;                     /* stdout was longer than max_output */
    bool timed_out;
    int status;                         /* waitpid status */
};

/*
 * Read what is ready on fd into buf (up to cap bytes kept; the rest is read
 * and dropped). Returns false at end of file or on a read error.
 */
static bool exec_drain(int fd, char *buf, size_t *len, size_t cap, bool *cut)
{
    char junk[4096];

    for (;;) {
        ssize_t r;
        if (*len < cap)
            r = read(fd, buf + *len, cap - *len);
        else
            r = read(fd, junk, sizeof junk);
        if (r > 0) {
            if (*len < cap)
                *len += (size_t)r;
            else if (cut)
                *cut = true;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && errno == EAGAIN;
    }
}

/* Wait for pid until deadline (monotonic ms); true when it was reaped. */
static bool exec_reap(pid_t pid, int64_t deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return true;
        if (exec_now_ms() >= deadline)
            return false;
        struct timespec ts = { 0, 5 * 1000000 };
        nanosleep(&ts, NULL);
    }
}

/*
 * Spawn the command in a process group of its own with stdout and stderr
 * on pipes, read both (bounded) until they close, and reap it. Past the
 * timeout the whole group gets SIGTERM, then SIGKILL after a grace period.
 * Returns PIPIT_OK with run filled, or an error when it could not start.
 */
static int exec_spawn(struct exec_ctx *ctx, struct exec_run *run)
{
    int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, rc = PIPIT_EIO, err;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    pid_t pid;
    bool oopen = true, eopen = true;
    int64_t deadline;

    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "pipe: %s", strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                  POSIX_SPAWN_SETSIGDEF);
    err = posix_spawnp(&pid, ctx->argv[0], &fa, &at, ctx->argv, ctx->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    if (err != 0) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "cannot run %s: %s", ctx->argv[0],
                 strerror(err));
        goto out;
    }
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    deadline = exec_now_ms() + ctx->timeout_ms;
    while (oopen || eopen) {
        struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
        int64_t left = deadline - exec_now_ms();
        if (left <= 0) {
            run->timed_out = true;
            break;
        }
        if (!oopen)
            fds[0].fd = -1;
        if (!eopen)
            fds[1].fd = -1;
        if (poll(fds, 2, (int)left) < 0 && errno != EINTR)
            break;
        if (oopen && fds[0].revents)
            oopen = exec_drain(po[0], run->out, &run->outlen, (size_t)ctx->max_output,
                               &run->truncated);
        if (eopen && fds[1].revents)
            eopen = exec_drain(pe[0], run->err, &run->errlen, EXEC_MAX_STDERR, NULL);
    }
    if (!run->timed_out && !exec_reap(pid, deadline, &run->status))
        run->timed_out = true;
    if (run->timed_out) {
        kill(-pid, SIGTERM);
        if (!exec_reap(pid, exec_now_ms() + EXEC_KILL_GRACE_MS, &run->status)) {
            kill(-pid, SIGKILL);
            exec_reap(pid, INT64_MAX, &run->status);
        }
    }
    /* what the command left behind in its group goes too */
    kill(-pid, SIGKILL);
    run->err[run->errlen] = '\0';
    rc = PIPIT_OK;
out:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    return rc;
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
static int exec_collect(pipit_instance *ins, void *data)
{
    struct exec_ctx *ctx = data;
    struct exec_run *run = calloc(1, sizeof *run);
    int64_t t0 = exec_now_ms();
    int rc;

    if (!run || !(run->out = malloc((size_t)ctx->max_output))) {
        free(run);
        return PIPIT_ENOMEM;
    }
    rc = exec_spawn(ctx, run);
    if (rc == PIPIT_OK && run->truncated) {
        ctx->truncations++;
        api->log(ins, PIPIT_LOG_WARN, "output longer than max_output (%lld bytes): "
                 "cut at the last full line", (long long)ctx->max_output);
    }
    if (rc != PIPIT_OK) {
        ;
    } else if (run->timed_out) {
        api->log(ins, PIPIT_LOG_ERROR, "%s killed after the timeout of %lld ms",
                 ctx->argv[0], (long long)ctx->timeout_ms);
        rc = PIPIT_ETIMEDOUT;
    } else if (!WIFEXITED(run->status) || WEXITSTATUS(run->status) != 0) {
        if (WIFEXITED(run->status))
            api->log(ins, PIPIT_LOG_ERROR, "%s exited with status %d: %.200s",
                     ctx->argv[0], WEXITSTATUS(run->status), run->err);
        else
            api->log(ins, PIPIT_LOG_ERROR, "%s ended by signal %d: %.200s",
                     ctx->argv[0], WIFSIGNALED(run->status) ? WTERMSIG(run->status) : 0,
                     run->err);
        rc = PIPIT_EIO;
    } else {
        size_t len = run->outlen;
        if (run->truncated)     /* a cut line would parse as a wrong value */
            while (len > 0 && run->out[len - 1] != '\n')
                len--;
        if (ctx->fmt == EXEC_PROMETHEUS) {
            rc = promtext_parse(run->out, len, exec_emit_cb, exec_error_cb, ctx, NULL);
        } else if (ctx->fmt == EXEC_INFLUX) {
            rc = influx_parse(run->out, len, exec_emit_cb, exec_error_cb, ctx, NULL);
        } else {
            exec_parse_json(ctx, run->out, len);
        }
    }
    if (rc != PIPIT_OK)
        ctx->failures++;
    api->emit_gauge(ins, "exec.duration_seconds", (double)(exec_now_ms() - t0) / 1000.0);
    api->emit_counter(ins, "exec.failures", (double)ctx->failures);
    api->emit_counter(ins, "exec.truncations", (double)ctx->truncations);
    api->emit_counter(ins, "exec.malformed_lines", (double)ctx->malformed);
    free(run->out);
    free(run);
    return rc;
}

PIPIT_PLUGIN_DEFINE(
    .name = "exec", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Metrics printed by a command (Prometheus text, JSON lines or InfluxDB line protocol)",
    .ctx_size = sizeof(struct exec_ctx), .options = exec_options,
    .load = exec_load, .init = exec_init, .collect = exec_collect,
    .fini = exec_fini);
