/* abi_noact: an action without act(). */
#include <pipit/plugin.h>

static int noact_init(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_noact", .version = "1.0.0", .kinds = PIPIT_ACTION,
                    .init = noact_init);
