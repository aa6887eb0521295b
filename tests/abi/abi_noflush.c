/* abi_noflush: an output without flush(). */
#include <pipit/plugin.h>

static int noflush_init(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_noflush", .version = "1.0.0", .kinds = PIPIT_OUTPUT,
                    .init = noflush_init);
