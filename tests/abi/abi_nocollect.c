/* abi_nocollect: a collector with neither collect() nor init(). */
#include <pipit/plugin.h>

static void nocollect_fini(pipit_instance *ins, void *data) { }

PIPIT_PLUGIN_DEFINE(.name = "abi_nocollect", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
                    .fini = nocollect_fini);
