/* act_wait_healthy: the wait_healthy action: probe a URL or a command until it succeeds N times in a row, or fail at the deadline. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <pipit/plugin.h>
#include "actcurl.h"
#include "httploop.h"
#include "statuslist.h"
#include "subproc.h"

#define WH_MAX_ERR 4096                 /* bytes of a command's stderr kept */

static const struct pipit_api *api;     /* borrowed from the host */

struct wh_ctx {
    const char *url;                    /* option: probe by HTTP GET */
    struct pipit_strlist command;       /* option: or by running a command */
    struct pipit_strlist expect_status; /* option: statuses that are healthy */
    int64_t successes;                  /* option: consecutive successes needed */
    int64_t interval_ms;                /* option: between probes */
    int64_t timeout_ms;                 /* option: 0: only the step's */
    int64_t probe_timeout_ms;           /* option: one probe's limit */
    const char *tls_ca_file;            /* options: TLS */
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;
    struct statuslist want;             /* expect_status parsed */
    char want_text[256];
    char **argv;                        /* command, NULL-terminated */
    pipit_instance *ins;
};

static const struct pipit_option wh_options[] = {
    PIPIT_OPT_STRING("url", NULL, struct wh_ctx, url,
                     "Probe: an http:// or https:// URL, healthy when its status is "
                     "in expect_status (url or command)"),
    PIPIT_OPT_LIST("command", struct wh_ctx, command,
                   "Probe: program and arguments, run without a shell, healthy when "
                   "it exits with 0 (url or command)"),
    PIPIT_OPT_LIST_DEF("expect_status", "[2xx]", struct wh_ctx, expect_status,
                       "Statuses of url that are healthy: codes, ranges (200-299) or "
                       "classes (2xx)"),
    PIPIT_OPT_INT("successes", "3", 1, 1000, struct wh_ctx, successes,
                  "Consecutive healthy probes needed"),
    PIPIT_OPT_DURATION("interval", "1s", 0, 3600000, struct wh_ctx, interval_ms,
                       "Pause between the end of a probe and the start of the next"),
    PIPIT_OPT_DURATION("timeout", "5m", 0, 86400000, struct wh_ctx, timeout_ms,
                       "Fail when not healthy by then (0: only the step's timeout)"),
    PIPIT_OPT_DURATION("probe_timeout", "5s", 1, 3600000, struct wh_ctx, probe_timeout_ms,
                       "A probe that lasts longer counts as unhealthy"),
    PIPIT_OPT_STRING("tls_ca_file", NULL, struct wh_ctx, tls_ca_file,
                     "PEM file of the CA certificates that verify the server "
                     "(default: the system's)"),
    PIPIT_OPT_STRING("tls_cert_file", NULL, struct wh_ctx, tls_cert_file,
                     "PEM client certificate (with tls_key_file)"),
    PIPIT_OPT_STRING("tls_key_file", NULL, struct wh_ctx, tls_key_file,
                     "PEM private key of tls_cert_file"),
    PIPIT_OPT_BOOL("tls_insecure_skip_verify", "false", struct wh_ctx, tls_insecure,
                   "Accept any certificate and host name"),
    PIPIT_OPT_END
};

static int wh_load(const struct pipit_api *host)
{
    api = host;
    return actcurl_global_init();
}

static int wh_init(pipit_instance *ins, void *data)
{
    struct wh_ctx *ctx = data;
    const char *err;
    char why[4400];

    ctx->ins = ins;
    if (!ctx->url == !ctx->command.count) {
        api->log(ins, PIPIT_LOG_ERROR, "give one probe: url or command");
        return PIPIT_ECONFIG;
    }
    if (ctx->url && strncmp(ctx->url, "http://", 7) != 0 &&
        strncmp(ctx->url, "https://", 8) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "url \"%s\": expected an http:// or https:// URL",
                 ctx->url);
        return PIPIT_ECONFIG;
    }
    if (statuslist_parse_items(ctx->expect_status.items, ctx->expect_status.count,
                               &ctx->want, ctx->want_text, sizeof ctx->want_text,
                               why, sizeof why) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "expect_status: %s", why);
        return PIPIT_ECONFIG;
    }
    if ((err = httploop_check_tls_files(ctx->tls_ca_file, ctx->tls_cert_file,
                                        ctx->tls_key_file, why, sizeof why))) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", err);
        return PIPIT_ECONFIG;
    }
    if (ctx->command.count) {
        if (!*ctx->command.items[0]) {
            api->log(ins, PIPIT_LOG_ERROR, "command is empty");
            return PIPIT_ECONFIG;
        }
        if (!(ctx->argv = calloc(ctx->command.count + 1, sizeof *ctx->argv)))
            return PIPIT_ENOMEM;
        for (size_t i = 0; i < ctx->command.count; i++)
            if (!(ctx->argv[i] = strdup(ctx->command.items[i]))) {
                subproc_free_vec(ctx->argv);
                ctx->argv = NULL;
                return PIPIT_ENOMEM;
            }
    }
    return PIPIT_OK;
}

static void wh_fini(pipit_instance *ins, void *data)
{
    struct wh_ctx *ctx = data;

    (void)ins;
    subproc_free_vec(ctx->argv);
}

static bool wh_cancelled(void *arg)
{
    struct wh_ctx *ctx = arg;

    return api->cancelled(ctx->ins);
}

/* One probe within limit_ms. Returns true when healthy; otherwise the
 * reason is in why. */
static bool wh_probe(struct wh_ctx *ctx, int64_t limit_ms, char *why, size_t size)
{
    if (ctx->url) {
        const struct actcurl_req req = {
            .url = ctx->url, .protocols = "http,https", .method = "GET",
            .timeout_ms = limit_ms, .tls_ca_file = ctx->tls_ca_file,
            .tls_cert_file = ctx->tls_cert_file, .tls_key_file = ctx->tls_key_file,
            .tls_insecure = ctx->tls_insecure, .max_body = 0,
        };
        struct actcurl_result r;
        bool healthy = false;

        if (actcurl_run(api, ctx->ins, &req, &r) != PIPIT_OK)
            snprintf(why, size, "%s", r.error);
        else if (!statuslist_has(&ctx->want, r.status))
            snprintf(why, size, "HTTP status %ld, expected %s", r.status, ctx->want_text);
        else
            healthy = true;
        actcurl_result_free(&r);
        return healthy;
    }

    const struct subproc_cmd cmd = {
        .argv = ctx->argv, .max_out = 0, .max_err = WH_MAX_ERR, .timeout_ms = limit_ms,
        .cancelled = wh_cancelled, .arg = ctx,
    };
    struct subproc_result r;
    char how[128];
    bool healthy = false;

    if (subproc_run(&cmd, &r) != 0) {
        snprintf(why, size, "%s", r.why);
        return false;
    }
    if (r.timed_out) {
        snprintf(why, size, "%s killed after %lld ms", ctx->argv[0], (long long)limit_ms);
    } else if (r.cancelled) {
        snprintf(why, size, "cancelled");
    } else if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
        size_t n = r.errlen;
        while (n && (r.err[n - 1] == '\n' || r.err[n - 1] == '\r'))
            n--;
        snprintf(why, size, "%s %s%s%.*s", ctx->argv[0], subproc_describe(&r, how, sizeof how),
                 n ? ": " : "", (int)(n > 200 ? 200 : n), r.err);
    } else {
        healthy = true;
    }
    subproc_result_free(&r);
    return healthy;
}

static void wh_result_num(pipit_instance *ins, const char *key, long long v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%lld", v);
    api->set_result(ins, key, buf);
}

/* Sleep ms, waking every 50 ms to see whether the run is being stopped.
 * Returns false when it is. */
static bool wh_sleep(pipit_instance *ins, int64_t ms)
{
    int64_t end = actcurl_now_ms() + ms, left;

    while ((left = end - actcurl_now_ms()) > 0) {
        if (api->cancelled(ins))
            return false;
        if (left > 50)
            left = 50;
        struct timespec ts = { 0, (long)left * 1000000L };
        nanosleep(&ts, NULL);
    }
    return !api->cancelled(ins);
}

/*
 * Probe every interval until successes healthy probes in a row. The
 * deadline is the sooner of timeout and the step's time left; each probe is
 * bounded by probe_timeout and by what is left. Results: attempts,
 * successes (the consecutive healthy probes at the end) and last_error
 * (the reason of the last unhealthy probe, "" when there was none).
 */
static int wh_act(pipit_instance *ins, void *data)
{
    struct wh_ctx *ctx = data;
    int64_t start = actcurl_now_ms(), left = api->time_left_ms(ins);
    int64_t limit = ctx->timeout_ms, deadline;
    long long attempts = 0, run = 0;
    char last[1024] = "", why[1024];
    int rc = PIPIT_OK;

    if (left >= 0 && (limit == 0 || left < limit))
        limit = left;
    deadline = limit > 0 || left == 0 ? start + limit : INT64_MAX;
    for (;;) {
        int64_t now = actcurl_now_ms(), probe = ctx->probe_timeout_ms;

        if (api->cancelled(ins)) {
            rc = PIPIT_ECANCELED;
            break;
        }
        if (now >= deadline) {
            api->log(ins, PIPIT_LOG_ERROR, "not healthy within %lld ms: %lld of %lld "
                     "consecutive successes after %lld attempts; last error: %s",
                     (long long)limit, run, (long long)ctx->successes, attempts,
                     *last ? last : "none");
            rc = PIPIT_ETIMEDOUT;
            break;
        }
        bool cut = false;                   /* the probe ends at the deadline */
        if (deadline != INT64_MAX && deadline - now < probe) {
            probe = deadline - now;
            cut = true;
        }
        attempts++;
        if (wh_probe(ctx, probe, why, sizeof why)) {
            if (++run >= ctx->successes) {
                api->log(ins, PIPIT_LOG_INFO, "healthy: %lld consecutive successes after "
                         "%lld attempts in %lld ms", run, attempts,
                         (long long)(actcurl_now_ms() - start));
                break;
            }
        } else {
            if (api->cancelled(ins)) {
                rc = PIPIT_ECANCELED;
                break;
            }
            run = 0;
            /* a probe stopped by the deadline says less than the failure before it */
            if (!(cut && *last && actcurl_now_ms() >= deadline))
                snprintf(last, sizeof last, "%s", why);
            api->log(ins, PIPIT_LOG_DEBUG, "attempt %lld: %s", attempts, why);
        }
        int64_t pause = ctx->interval_ms;
        now = actcurl_now_ms();
        if (deadline != INT64_MAX && deadline - now < pause)
            pause = deadline - now > 0 ? deadline - now : 0;
        if (!wh_sleep(ins, pause)) {
            rc = PIPIT_ECANCELED;
            break;
        }
    }
    wh_result_num(ins, "attempts", attempts);
    wh_result_num(ins, "successes", run);
    api->set_result(ins, "last_error", last);
    return rc;
}

PIPIT_PLUGIN_DEFINE(
    .name = "wait_healthy", .version = "1.0.0", .kinds = PIPIT_ACTION,
    .description = "Probe a URL or a command until it is healthy N times in a row",
    .ctx_size = sizeof(struct wh_ctx), .options = wh_options,
    .load = wh_load, .init = wh_init, .act = wh_act, .fini = wh_fini);
