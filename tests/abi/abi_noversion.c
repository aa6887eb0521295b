/* abi_noversion: a descriptor without a version. */
#include <pipit/plugin.h>

static int noversion_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_noversion", .kinds = PIPIT_COLLECTOR,
                    .collect = noversion_collect);
