/* abi_loadfail: load() returns an error. */
#include <pipit/plugin.h>

static int loadfail_load(const struct pipit_api *api) { return PIPIT_ENOTSUP; }
static int loadfail_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_loadfail", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
                    .load = loadfail_load, .collect = loadfail_collect);
