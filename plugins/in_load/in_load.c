/* in_load: load averages and task counts from /proc/loadavg. */
#define _GNU_SOURCE
#include <pipit/plugin.h>
#include "procfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct pipit_api *api;     /* borrowed from the host */

struct load_ctx {
    /* options */
    const char *proc_path;              /* root of procfs */
    const char *sys_path;               /* root of sysfs */
    bool relative;                      /* divide averages by online CPUs */

    /* state */
    char path[4096];                    /* <proc_path>/loadavg */
    char online_path[4096];             /* <sys_path>/devices/system/cpu/online */
    bool online_logged;                 /* fallback to sysconf() reported */
};

static const struct pipit_option load_options[] = {
    PIPIT_OPT_STRING("proc_path", "/proc", struct load_ctx, proc_path,
                     "Directory where procfs is mounted (read <proc_path>/loadavg)"),
    PIPIT_OPT_STRING("sys_path", "/sys", struct load_ctx, sys_path,
                     "Directory where sysfs is mounted (online CPUs for relative)"),
    PIPIT_OPT_BOOL("relative", "false", struct load_ctx, relative,
                   "Divide each load average by the number of online CPUs"),
    PIPIT_OPT_END
};

static int load_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* An unsigned integer at *p; advances *p. */
static bool load_uint(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    *p = s;
    return true;
}

/*
 * Count the CPUs in a sysfs CPU list such as "0-3,8,10-11\n". Returns the
 * count, or 0 when the text is not such a list.
 */
static long load_count_cpulist(const char *s)
{
    long n = 0;

    while (*s && *s != '\n') {
        uint64_t a, b;

        if (!load_uint(&s, &a))
            return 0;
        b = a;
        if (*s == '-') {
            s++;
            if (!load_uint(&s, &b) || b < a)
                return 0;
        }
        n += (long)(b - a + 1);
        if (*s == ',')
            s++;
        else if (*s && *s != '\n')
            return 0;
    }
    return n;
}

/*
 * Number of online CPUs from <sys_path>/devices/system/cpu/online, read at
 * each collection because CPUs come and go; sysconf() when that file is not
 * readable (reported once).
 */
static long load_online_cpus(pipit_instance *ins, struct load_ctx *ctx)
{
    char buf[4096];
    long n = 0;
    ssize_t len = procfile_read_at(AT_FDCWD, ctx->online_path, buf, sizeof buf);

    if (len > 0)
        n = load_count_cpulist(buf);
    if (n > 0)
        return n;
    if (!ctx->online_logged) {
        api->log(ins, PIPIT_LOG_INFO, "%s not usable; counting CPUs with sysconf()",
                 ctx->online_path);
        ctx->online_logged = true;
    }
    return sysconf(_SC_NPROCESSORS_ONLN);
}

static void load_emit(pipit_instance *ins, int64_t t, const char *name,
                      double value)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_METRIC, .time_ns = t,
        .name = name, .metric_type = PIPIT_GAUGE, .value = value,
    };

    (void)api->emit(ins, &rec);
}

/*
 * Read and parse /proc/loadavg: "0.52 0.58 0.59 2/1093 12345". Returns
 * PIPIT_OK with the three averages, the runnable and total task counts, or
 * a logged error.
 */
static int load_sample(pipit_instance *ins, struct load_ctx *ctx, double avg[3],
                       uint64_t *runnable, uint64_t *tasks)
{
    char buf[256], ebuf[128];
    const char *p = buf;
    ssize_t len = procfile_read_at(AT_FDCWD, ctx->path, buf, sizeof buf);

    if (len < 0) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot read %s: %s", ctx->path,
                 strerror_r((int)-len, ebuf, sizeof ebuf));
        return procfile_errno((int)-len);
    }
    for (int i = 0; i < 3; i++) {
        if (!procfile_decimal(&p, &avg[i]) || *p++ != ' ')
            goto bad;
    }
    if (!load_uint(&p, runnable) || *p++ != '/' || !load_uint(&p, tasks) ||
        (*p != ' ' && *p != '\n'))
        goto bad;
    return PIPIT_OK;
bad:
    api->log(ins, PIPIT_LOG_ERROR, "%s: malformed content", ctx->path);
    return PIPIT_EPARSE;
}

static int load_init(pipit_instance *ins, void *data)
{
    struct load_ctx *ctx = data;
    double avg[3];
    uint64_t runnable, tasks;

    if ((size_t)snprintf(ctx->path, sizeof ctx->path, "%s/loadavg",
                         ctx->proc_path) >= sizeof ctx->path ||
        (size_t)snprintf(ctx->online_path, sizeof ctx->online_path,
                         "%s/devices/system/cpu/online",
                         ctx->sys_path) >= sizeof ctx->online_path) {
        api->log(ins, PIPIT_LOG_ERROR, "proc_path or sys_path is too long");
        return PIPIT_ECONFIG;
    }
    if (ctx->relative && load_online_cpus(ins, ctx) < 1) {
        api->log(ins, PIPIT_LOG_ERROR, "relative=true but CPU count unknown");
        return PIPIT_ENOTSUP;
    }
    return load_sample(ins, ctx, avg, &runnable, &tasks);
}

static int load_collect(pipit_instance *ins, void *data)
{
    static const char *const names[3] = { "load.1m", "load.5m", "load.15m" };
    struct load_ctx *ctx = data;
    int64_t t = api->now_ns();
    double avg[3], div = 1;
    uint64_t runnable, tasks;
    int rc;

    rc = load_sample(ins, ctx, avg, &runnable, &tasks);
    if (rc != PIPIT_OK)
        return rc;
    if (ctx->relative) {
        long n = load_online_cpus(ins, ctx);

        if (n < 1)
            return PIPIT_EIO;
        div = (double)n;
    }
    for (int i = 0; i < 3; i++)
        load_emit(ins, t, names[i], avg[i] / div);
    load_emit(ins, t, "load.runnable_tasks", (double)runnable);
    load_emit(ins, t, "load.tasks", (double)tasks);
    return PIPIT_OK;
}

PIPIT_PLUGIN_DEFINE(
    .name = "load", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Load averages and task counts from /proc/loadavg",
    .ctx_size = sizeof(struct load_ctx), .options = load_options,
    .load = load_load, .init = load_init, .collect = load_collect);
