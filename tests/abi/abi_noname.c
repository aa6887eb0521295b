/* abi_noname: a descriptor without a name. */
#include <pipit/plugin.h>

static int noname_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.version = "1.0.0", .kinds = PIPIT_COLLECTOR, .collect = noname_collect);
