/* abi_badname: a plugin name outside [a-z0-9_]. */
#include <pipit/plugin.h>

static int badname_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "Bad-Name", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
                    .collect = badname_collect);
