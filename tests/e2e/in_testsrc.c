/* in_testsrc: a collector for the daemon's tests: counts, blocks, fails or misbehaves on demand. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <pipit/plugin.h>

static const struct pipit_api *api;

struct testsrc_ctx {
    int64_t count;                      /* records per collect */
    int64_t runs;                       /* collections that emit; 0: all */
    const char *block_until;            /* collect waits until this file exists */
    bool fail_init;                     /* init returns PIPIT_EIO */
    const char *token;                  /* a value to keep secret */
    const char *mode;                   /* normal, hang, spin, flood, fail, segfault */
    int64_t after;                      /* misbehave from this collection on */
    int64_t run;                        /* collections so far */
};

static const struct pipit_option testsrc_options[] = {
    PIPIT_OPT_INT("count", "1", 0, 100000, struct testsrc_ctx, count,
                  "Records emitted per collection"),
    PIPIT_OPT_INT("runs", "0", 0, 100000000, struct testsrc_ctx, runs,
                  "Only the first this many collections emit (0: every one)"),
    PIPIT_OPT_STRING("block_until", NULL, struct testsrc_ctx, block_until,
                     "Each collection blocks until this file exists"),
    PIPIT_OPT_BOOL("fail_init", "false", struct testsrc_ctx, fail_init,
                   "Make init() fail"),
    PIPIT_OPT_STRING("token", NULL, struct testsrc_ctx, token,
                     "A credential; only its length is ever logged"),
    PIPIT_OPT_STRING("mode", "normal", struct testsrc_ctx, mode,
                     "From collection `after` on: normal, hang (sleep forever), spin "
                     "(busy loop forever), flood (count records of 1 KiB), fail (emit nothing, return an "
                     "error) or segfault"),
    PIPIT_OPT_INT("after", "1", 1, 1000000, struct testsrc_ctx, after,
                  "The first collection that misbehaves (1: every one)"),
    PIPIT_OPT_END
};

static int testsrc_load(const struct pipit_api *host) { api = host; return PIPIT_OK; }

static int testsrc_init(pipit_instance *ins, void *data)
{
    struct testsrc_ctx *ctx = data;
    if (ctx->fail_init) {
        api->log(ins, PIPIT_LOG_ERROR, "fail_init is set");
        return PIPIT_EIO;
    }
    api->log(ins, PIPIT_LOG_DEBUG, "token of %zu bytes", ctx->token ? strlen(ctx->token) : 0);
    return PIPIT_OK;
}

static int testsrc_collect(pipit_instance *ins, void *data)
{
    struct testsrc_ctx *ctx = data;
    char run[24], seq[24];

    static char pad[1025];
    bool bad = ++ctx->run >= ctx->after && strcmp(ctx->mode, "normal") != 0;

    while (ctx->block_until && access(ctx->block_until, F_OK) != 0)
        usleep(20000);
    if (ctx->runs && ctx->run > ctx->runs)
        return PIPIT_OK;                /* a known total, then silence */
    if (bad && strcmp(ctx->mode, "hang") == 0)
        for (;;)
            pause();
    if (bad && strcmp(ctx->mode, "spin") == 0)
        for (volatile unsigned long n = 0;; n++)
            ;
    if (bad && strcmp(ctx->mode, "segfault") == 0)
        raise(SIGSEGV);
    if (bad && strcmp(ctx->mode, "fail") == 0)
        return PIPIT_EIO;
    if (!pad[0])
        memset(pad, 'x', sizeof pad - 1);
    bool flood = bad && strcmp(ctx->mode, "flood") == 0;
    for (int64_t i = 0; i < ctx->count; i++) {
        snprintf(run, sizeof run, "%lld", (long long)ctx->run);
        snprintf(seq, sizeof seq, "%lld", (long long)i);
        struct pipit_label labels[] = { { "run", run }, { "seq", seq }, { "pad", pad } };
        api->emit_metric(ins, PIPIT_COUNTER, "testsrc.records", (double)i, labels,
                         flood ? 3 : 2);
    }
    return PIPIT_OK;
}

PIPIT_PLUGIN_DEFINE(
    .name = "testsrc", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Test collector", .ctx_size = sizeof(struct testsrc_ctx),
    .options = testsrc_options, .load = testsrc_load, .init = testsrc_init,
    .collect = testsrc_collect);
