/* abi_good: a well-formed collector fixture with options, load, init, collect and fini. */
#include <pipit/plugin.h>

static const struct pipit_api *good_api;
static int good_loads;

struct good_ctx {
    bool flag;
    int64_t count;
    double ratio;
    const char *label;
    int64_t every_ms;
    int64_t limit;
    struct pipit_strlist items;
};

static const struct pipit_option good_options[] = {
    PIPIT_OPT_BOOL("flag", "false", struct good_ctx, flag, "A flag"),
    PIPIT_OPT_INT("count", "3", 0, 100, struct good_ctx, count, "A count"),
    PIPIT_OPT_DOUBLE("ratio", "0.5", 0, 1, struct good_ctx, ratio, "A ratio"),
    PIPIT_OPT_STRING("label", "x", struct good_ctx, label, "A label"),
    PIPIT_OPT_DURATION("every", "10s", 0, 3600000, struct good_ctx, every_ms, "A period"),
    PIPIT_OPT_SIZE("limit", "64KiB", 0, 1e9, struct good_ctx, limit, "A size"),
    PIPIT_OPT_LIST("items", struct good_ctx, items, "Some items"),
    PIPIT_OPT_END
};

/* Refuses a missing api and a second call: the host calls load() once per file. */
static int good_load(const struct pipit_api *api)
{
    if (api == NULL || api->struct_size < sizeof(size_t))
        return PIPIT_EINVAL;
    if (++good_loads != 1)
        return PIPIT_ESTATE;
    good_api = api;
    return PIPIT_OK;
}

static int good_init(pipit_instance *ins, void *data) { return PIPIT_OK; }
static int good_collect(pipit_instance *ins, void *data)
{
    return good_api->emit_gauge ? good_api->emit_gauge(ins, "good", 1.0) : PIPIT_OK;
}
static void good_fini(pipit_instance *ins, void *data) { }

PIPIT_PLUGIN_DEFINE(
    .name = "abi_good", .version = "1.2.3", .kinds = PIPIT_COLLECTOR,
    .description = "Loader fixture: a valid collector",
    .ctx_size = sizeof(struct good_ctx), .options = good_options,
    .load = good_load, .init = good_init, .collect = good_collect,
    .fini = good_fini);
