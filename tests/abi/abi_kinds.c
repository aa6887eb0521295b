/* abi_kinds: unknown kind bits besides a known one. */
#include <pipit/plugin.h>

static int kinds_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(.name = "abi_kinds", .version = "1.0.0", .kinds = PIPIT_COLLECTOR | 0x80u,
                    .collect = kinds_collect);
