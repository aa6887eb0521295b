/* act_service: the service action: start, stop, restart or reload a systemd unit with systemctl and check that it is active. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "subproc.h"

#define SVC_MAX_OUT 4096                /* bytes of systemctl's output kept */
#define SVC_UNIT_MAX 256                /* longest unit name systemd takes */

static const struct pipit_api *api;     /* borrowed from the host */

struct svc_ctx {
    const char *unit;                   /* option */
    const char *operation;              /* option: start|stop|restart|reload */
    const char *systemctl;              /* option: the program */
    const char *systemd_run_dir;        /* option: present when systemd runs */
    bool skip_without_systemd;          /* option */
    int64_t timeout_ms;                 /* option: 0 only the step's */
    char name[SVC_UNIT_MAX + 16];       /* unit with its suffix */
    pipit_instance *ins;
};

static const struct pipit_option svc_options[] = {
    PIPIT_OPT_STRING_REQ("unit", struct svc_ctx, unit,
                         "The systemd unit; without a unit suffix .service is added"),
    PIPIT_OPT_STRING_REQ("operation", struct svc_ctx, operation,
                         "start, stop, restart or reload"),
    PIPIT_OPT_STRING("systemctl", "systemctl", struct svc_ctx, systemctl,
                     "The systemctl program (PATH is searched)"),
    PIPIT_OPT_STRING("systemd_run_dir", "/run/systemd/system", struct svc_ctx,
                     systemd_run_dir,
                     "Directory that exists only when systemd is the init system"),
    PIPIT_OPT_BOOL("skip_without_systemd", "false", struct svc_ctx, skip_without_systemd,
                   "Without systemd, succeed with skipped=true and a warning instead "
                   "of failing"),
    PIPIT_OPT_DURATION("timeout", "90s", 0, 86400000, struct svc_ctx, timeout_ms,
                       "Longest each systemctl call may take (0: only the step's timeout)"),
    PIPIT_OPT_END
};

static const char *const svc_suffixes[] = {
    ".service", ".socket", ".target", ".timer", ".mount", ".automount", ".path",
    ".slice", ".scope", ".swap", ".device", NULL
};

static int svc_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* True when s ends with suffix and has something before it. */
static bool svc_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n > m && strcmp(s + n - m, suffix) == 0;
}

static int svc_init(pipit_instance *ins, void *data)
{
    struct svc_ctx *ctx = data;
    const char *u = ctx->unit;
    bool suffixed = false;

    ctx->ins = ins;
    if (!*u || strlen(u) > SVC_UNIT_MAX || u[0] == '-' ||
        strspn(u, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.@\\-")
            != strlen(u)) {
        api->log(ins, PIPIT_LOG_ERROR, "unit \"%.80s\": not a unit name (letters, digits "
                 "and :_.@\\- only, no '/', not starting with '-')", u);
        return PIPIT_ECONFIG;
    }
    for (int i = 0; svc_suffixes[i]; i++)
        suffixed |= svc_ends(u, svc_suffixes[i]);
    snprintf(ctx->name, sizeof ctx->name, "%s%s", u, suffixed ? "" : ".service");
    if (strcmp(ctx->operation, "start") && strcmp(ctx->operation, "stop") &&
        strcmp(ctx->operation, "restart") && strcmp(ctx->operation, "reload")) {
        api->log(ins, PIPIT_LOG_ERROR, "operation \"%s\": expected start, stop, restart "
                 "or reload", ctx->operation);
        return PIPIT_ECONFIG;
    }
    if (!*ctx->systemctl) {
        api->log(ins, PIPIT_LOG_ERROR, "systemctl is empty");
        return PIPIT_ECONFIG;
    }
    return PIPIT_OK;
}

/* True when prog can be run: an executable path, or found in PATH. */
static bool svc_runnable(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];

    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? path : ".", prog) <
                (int)sizeof buf &&
            access(buf, X_OK) == 0)
            return true;
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

static bool svc_cancelled(void *arg)
{
    struct svc_ctx *ctx = arg;

    return api->cancelled(ctx->ins);
}

/*
 * Run `systemctl verb unit` within the timeout and the step's time left.
 * Returns PIPIT_OK with r filled (the caller frees it and reads the exit
 * status), or an error (logged) when it could not run or was stopped.
 */
static int svc_systemctl(struct svc_ctx *ctx, const char *verb, struct subproc_result *r)
{
    char *argv[] = { (char *)ctx->systemctl, (char *)verb, ctx->name, NULL };
    int64_t limit = ctx->timeout_ms, left = api->time_left_ms(ctx->ins);
    const struct subproc_cmd cmd = {
        .argv = argv, .max_out = SVC_MAX_OUT, .max_err = SVC_MAX_OUT,
        .timeout_ms = left >= 0 && (limit == 0 || left < limit) ? left : limit,
        .cancelled = svc_cancelled, .arg = ctx,
    };
    int rc;

    if (left == 0) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "the step's deadline passed before "
                 "systemctl %s %s", verb, ctx->name);
        return PIPIT_ETIMEDOUT;
    }
    if (subproc_run(&cmd, r) != 0) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "systemctl %s %s: %s", verb, ctx->name, r->why);
        return PIPIT_EIO;
    }
    if (r->timed_out || r->cancelled) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "systemctl %s %s %s after %lld ms", verb,
                 ctx->name, r->timed_out ? "killed" : "stopped (run cancelled)",
                 (long long)r->duration_ms);
        rc = r->timed_out ? PIPIT_ETIMEDOUT : PIPIT_ECANCELED;
        subproc_result_free(r);
        return rc;
    }
    return PIPIT_OK;
}

/* The first line of text, without its line break, cut at 200 bytes. */
static int svc_line_len(const char *text)
{
    size_t n = strcspn(text, "\r\n");

    return (int)(n > 200 ? 200 : n);
}

/*
 * Perform the operation, then ask `systemctl is-active` for the unit's
 * state (result active_state); after start and restart any state but
 * "active" fails the step. Without systemd the step fails, or is skipped
 * (skipped=true, a warning) with skip_without_systemd.
 */
static int svc_act(pipit_instance *ins, void *data)
{
    struct svc_ctx *ctx = data;
    struct subproc_result r;
    struct stat st;
    char how[128];
    char why[4200] = "";
    int rc;

    if (api->cancelled(ins))
        return PIPIT_ECANCELED;
    if (stat(ctx->systemd_run_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        snprintf(why, sizeof why, "systemd is not running (no %s)", ctx->systemd_run_dir);
    else if (!svc_runnable(ctx->systemctl))
        snprintf(why, sizeof why, "systemctl is missing (%s not found)", ctx->systemctl);
    if (*why) {
        if (ctx->skip_without_systemd) {
            api->log(ins, PIPIT_LOG_WARN, "%s: %s %s skipped (skip_without_systemd)", why,
                     ctx->operation, ctx->name);
            api->set_result(ins, "skipped", "true");
            api->set_result(ins, "active_state", "");
            return PIPIT_OK;
        }
        api->log(ins, PIPIT_LOG_ERROR, "%s: cannot %s %s (skip_without_systemd: true "
                 "skips the step instead)", why, ctx->operation, ctx->name);
        return PIPIT_ENOTSUP;
    }
    api->set_result(ins, "skipped", "false");

    if ((rc = svc_systemctl(ctx, ctx->operation, &r)) != PIPIT_OK)
        return rc;
    if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "systemctl %s %s %s: %.*s", ctx->operation,
                 ctx->name, subproc_describe(&r, how, sizeof how), svc_line_len(r.err),
                 r.err);
        subproc_result_free(&r);
        return PIPIT_EIO;
    }
    subproc_result_free(&r);

    if ((rc = svc_systemctl(ctx, "is-active", &r)) != PIPIT_OK)
        return rc;
    char state[64];
    snprintf(state, sizeof state, "%.*s", svc_line_len(r.out), r.out);
    if (!*state)
        snprintf(state, sizeof state, "unknown");
    subproc_result_free(&r);
    api->set_result(ins, "active_state", state);
    if ((strcmp(ctx->operation, "start") == 0 || strcmp(ctx->operation, "restart") == 0) &&
        strcmp(state, "active") != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "%s %s: the unit is %s, not active afterwards",
                 ctx->operation, ctx->name, state);
        return PIPIT_EIO;
    }
    api->log(ins, PIPIT_LOG_INFO, "%s %s: %s", ctx->operation, ctx->name, state);
    return PIPIT_OK;
}

PIPIT_PLUGIN_DEFINE(
    .name = "service", .version = "1.0.0", .kinds = PIPIT_ACTION,
    .description = "Start, stop, restart or reload a systemd unit",
    .ctx_size = sizeof(struct svc_ctx), .options = svc_options,
    .load = svc_load, .init = svc_init, .act = svc_act);
