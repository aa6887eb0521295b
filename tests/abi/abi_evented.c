/* abi_evented: an event-driven collector fixture (init, no collect); it must load. */
#include <pipit/plugin.h>

static int evented_init(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_PLUGIN_DEFINE(
    .name = "abi_evented", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .init = evented_init);
