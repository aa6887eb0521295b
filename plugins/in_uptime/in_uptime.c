/* in_uptime: system uptime, idle time and boot time from /proc/uptime and /proc/stat. */
#define _GNU_SOURCE
#include <pipit/plugin.h>
#include "procfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UPTIME_STAT_MAX (64u << 20)     /* refuse a /proc/stat larger than this */

static const struct pipit_api *api;     /* borrowed from the host */

struct uptime_ctx {
    /* options */
    const char *proc_path;              /* root of procfs */
    bool boot_time;                     /* also read btime from /proc/stat */

    /* state */
    char path[4096];                    /* <proc_path>/uptime */
    char stat_path[4096];               /* <proc_path>/stat */
    char *buf;                          /* /proc/stat contents, reused */
    size_t bufcap;
};

static const struct pipit_option uptime_options[] = {
    PIPIT_OPT_STRING("proc_path", "/proc", struct uptime_ctx, proc_path,
                     "Directory where procfs is mounted (read <proc_path>/uptime and stat)"),
    PIPIT_OPT_BOOL("boot_time", "true", struct uptime_ctx, boot_time,
                   "Report system.boot_time_seconds from the btime line of <proc_path>/stat"),
    PIPIT_OPT_END
};

static int uptime_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* Read /proc/uptime: "<uptime> <idle>\n", both in seconds. */
static int uptime_sample(pipit_instance *ins, struct uptime_ctx *ctx,
                         double *up, double *idle)
{
    const char *p;
    int rc = procfile_read(api, ins, ctx->path, UPTIME_STAT_MAX, 4096,
                           &ctx->buf, &ctx->bufcap, NULL);

    if (rc != PIPIT_OK)
        return rc;
    p = ctx->buf;
    if (!procfile_decimal(&p, up) || *p++ != ' ' || !procfile_decimal(&p, idle) ||
        (*p != '\n' && *p != '\0')) {
        api->log(ins, PIPIT_LOG_ERROR, "%s: malformed content", ctx->path);
        return PIPIT_EPARSE;
    }
    return PIPIT_OK;
}

/* Find "btime <seconds>" in /proc/stat: the boot time as Unix seconds. */
static int uptime_btime(pipit_instance *ins, struct uptime_ctx *ctx,
                        double *btime)
{
    const char *p;
    int rc = procfile_read(api, ins, ctx->stat_path, UPTIME_STAT_MAX, 4096,
                           &ctx->buf, &ctx->bufcap, NULL);

    if (rc != PIPIT_OK)
        return rc;
    for (p = ctx->buf; *p; p++) {
        if (strncmp(p, "btime ", 6) == 0) {
            p += 6;
            if (!procfile_decimal(&p, btime) || (*p != '\n' && *p != '\0'))
                break;
            return PIPIT_OK;
        }
        p = strchr(p, '\n');           /* on to the next line */
        if (!p)
            break;
    }
    api->log(ins, PIPIT_LOG_ERROR, "%s: no valid btime line", ctx->stat_path);
    return PIPIT_EPARSE;
}

static void uptime_emit(pipit_instance *ins, int64_t t, int type,
                        const char *name, double value)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_METRIC, .time_ns = t,
        .name = name, .metric_type = type, .value = value,
    };

    (void)api->emit(ins, &rec);
}

static int uptime_init(pipit_instance *ins, void *data)
{
    struct uptime_ctx *ctx = data;
    double up, idle, btime;
    int rc;

    if ((size_t)snprintf(ctx->path, sizeof ctx->path, "%s/uptime",
                         ctx->proc_path) >= sizeof ctx->path ||
        (size_t)snprintf(ctx->stat_path, sizeof ctx->stat_path, "%s/stat",
                         ctx->proc_path) >= sizeof ctx->stat_path) {
        api->log(ins, PIPIT_LOG_ERROR, "proc_path is too long");
        return PIPIT_ECONFIG;
    }
    rc = uptime_sample(ins, ctx, &up, &idle);
    if (rc == PIPIT_OK && ctx->boot_time)
        rc = uptime_btime(ins, ctx, &btime);
    if (rc != PIPIT_OK) {
        free(ctx->buf);
        ctx->buf = NULL;
    }
    return rc;
}

/*
 * One collection. Both files are parsed before anything is emitted, so a
 * malformed file emits nothing.
 */
static int uptime_collect(pipit_instance *ins, void *data)
{
    struct uptime_ctx *ctx = data;
    int64_t t = api->now_ns();
    double up, idle, btime = 0;
    int rc;

    rc = uptime_sample(ins, ctx, &up, &idle);
    if (rc == PIPIT_OK && ctx->boot_time)
        rc = uptime_btime(ins, ctx, &btime);
    if (rc != PIPIT_OK)
        return rc;
    uptime_emit(ins, t, PIPIT_GAUGE, "system.uptime_seconds", up);
    uptime_emit(ins, t, PIPIT_COUNTER, "system.idle_seconds", idle);
    if (ctx->boot_time)
        uptime_emit(ins, t, PIPIT_GAUGE, "system.boot_time_seconds", btime);
    return PIPIT_OK;
}

static void uptime_fini(pipit_instance *ins, void *data)
{
    struct uptime_ctx *ctx = data;

    free(ctx->buf);
}

PIPIT_PLUGIN_DEFINE(
    .name = "uptime", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "System uptime, idle time and boot time",
    .ctx_size = sizeof(struct uptime_ctx), .options = uptime_options,
    .load = uptime_load, .init = uptime_init, .collect = uptime_collect,
    .fini = uptime_fini);
