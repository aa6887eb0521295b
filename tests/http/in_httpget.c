/* in_httpget: a test fixture collector that fetches URLs through plugins/common/httploop. */
#include <pipit/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httploop.h"

static const struct pipit_api *api;

struct httpget_ctx {
    struct pipit_strlist urls;          /* fetched concurrently each tick */
    int64_t interval_ms;
    int64_t timeout_ms;
    int64_t max_body;
    struct httploop *hl;
    pipit_instance *ins;
};

static const struct pipit_option httpget_options[] = {
    PIPIT_OPT_LIST("urls", struct httpget_ctx, urls, "URLs fetched each tick"),
    PIPIT_OPT_DURATION("interval", "1s", 10, 3600000, struct httpget_ctx, interval_ms,
                       "Time between ticks"),
    PIPIT_OPT_DURATION("timeout", "5s", 1, 600000, struct httpget_ctx, timeout_ms,
                       "Timeout of one transfer"),
    PIPIT_OPT_SIZE("max_body", "1MiB", 1, 1 << 30, struct httpget_ctx, max_body,
                   "Largest body kept"),
    PIPIT_OPT_END
};

struct httpget_req {
    struct httpget_ctx *ctx;
    const char *url;
};

/* One record per transfer: its status, with the URL, the error and the
 * body's length as labels. */
static void httpget_done(void *arg, CURL *easy, const struct httploop_result *res)
{
    struct httpget_req *req = arg;
    char len[32], secs[32];

    snprintf(len, sizeof len, "%zu", res->body_len);
    snprintf(secs, sizeof secs, "%.3f", res->seconds);
    struct pipit_label labels[] = {
        { "url", req->url }, { "error", res->error }, { "bytes", len },
        { "too_large", res->too_large ? "true" : "false" }, { "seconds", secs },
    };
    api->emit_metric(req->ctx->ins, PIPIT_GAUGE, "httpget.status", (double)res->status,
                     labels, sizeof labels / sizeof labels[0]);
    curl_easy_cleanup(easy);
    free(req);
}

static void httpget_abandon(void *arg, CURL *easy)
{
    curl_easy_cleanup(easy);
    free(arg);
}

static void httpget_tick(void *arg)
{
    struct httpget_ctx *ctx = arg;

    for (size_t i = 0; i < ctx->urls.count; i++) {
        struct httpget_req *req = calloc(1, sizeof *req);
        CURL *easy = curl_easy_init();

        if (!req || !easy) {
            free(req);
            if (easy)
                curl_easy_cleanup(easy);
            continue;
        }
        req->ctx = ctx;
        req->url = ctx->urls.items[i];
        curl_easy_setopt(easy, CURLOPT_URL, req->url);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)ctx->timeout_ms);
        if (httploop_start(ctx->hl, easy, (size_t)ctx->max_body, httpget_done, req) != PIPIT_OK)
            httpget_abandon(req, easy);
    }
}

static int httpget_load(const struct pipit_api *a)
{
    api = a;
    return httploop_global_init(a);
}

static int httpget_init(pipit_instance *ins, void *data)
{
    struct httpget_ctx *ctx = data;

    ctx->ins = ins;
    ctx->hl = httploop_new(api, ins);
    if (!ctx->hl)
        return PIPIT_ENOMEM;
    return httploop_tick(ctx->hl, 0, (uint64_t)ctx->interval_ms, httpget_tick, ctx);
}

static void httpget_fini(pipit_instance *ins, void *data)
{
    struct httpget_ctx *ctx = data;

    (void)ins;
    httploop_free(ctx->hl, httpget_abandon);
}

PIPIT_PLUGIN_DEFINE(
    .name = "httpget",
    .version = "1.0.0",
    .description = "Test fixture: fetch URLs through the shared HTTP driver",
    .kinds = PIPIT_COLLECTOR,
    .ctx_size = sizeof(struct httpget_ctx),
    .options = httpget_options,
    .load = httpget_load,
    .init = httpget_init,
    .fini = httpget_fini,
);
