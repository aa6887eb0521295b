/* abi_nodelete: a refused plugin (no version) linked -z nodelete, so it stays mapped after dlclose. */
#include <pipit/plugin.h>

static int nodelete_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_nodelete", .kinds = PIPIT_COLLECTOR,
                    .collect = nodelete_collect);
