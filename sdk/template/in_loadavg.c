/* in_loadavg: a pipit collector reporting the 1/5/15-minute load averages. */
#define _DEFAULT_SOURCE                 /* getloadavg() under -std=c11 */
#include <stdlib.h>
#include <unistd.h>
#include <pipit/plugin.h>

static const struct pipit_api *api;     /* borrowed from the host, kept for life */

struct loadavg_ctx {                    /* the host allocates and zero-fills it */
    bool relative;                      /* option: divide by online CPUs */
    long ncpu;                          /* cached by init() */
};

static const struct pipit_option loadavg_options[] = {
    PIPIT_OPT_BOOL("relative", "false", struct loadavg_ctx, relative,
                   "Divide each average by the number of online CPUs"),
    PIPIT_OPT_END
};

/* Once per process, before any instance: keep the host's service table. */
static int loadavg_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* Per instance, after the options were stored in data. */
static int loadavg_init(pipit_instance *ins, void *data)
{
    struct loadavg_ctx *ctx = data;

    ctx->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ctx->relative && ctx->ncpu < 1) {
        api->log(ins, PIPIT_LOG_ERROR, "relative=true but the CPU count is unknown");
        return PIPIT_EINVAL;            /* fini() will not be called */
    }
    return PIPIT_OK;
}

/* Once per interval, on a worker thread: may block, must not touch the loop. */
static int loadavg_collect(pipit_instance *ins, void *data)
{
    static const char *const names[3] = { "load.1m", "load.5m", "load.15m" };
    struct loadavg_ctx *ctx = data;
    double v[3];

    if (getloadavg(v, 3) != 3)
        return PIPIT_EIO;               /* the host logs it with our prefix */
    for (int i = 0; i < 3; i++) {
        int rc = api->emit_gauge(ins, names[i],
                                 ctx->relative ? v[i] / (double)ctx->ncpu : v[i]);
        if (rc != PIPIT_OK)
            return rc;                  /* PIPIT_EFULL: the host counted it */
    }
    return PIPIT_OK;
}

PIPIT_PLUGIN_DEFINE(                    /* fills magic, ABI version and size */
    .name = "loadavg", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "System load averages",
    .ctx_size = sizeof(struct loadavg_ctx), .options = loadavg_options,
    .load = loadavg_load, .init = loadavg_init, .collect = loadavg_collect);
