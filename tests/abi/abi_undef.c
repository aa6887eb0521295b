/* abi_undef: a plugin with an unresolved symbol, so dlopen(RTLD_NOW) fails. */
#include <pipit/plugin.h>

extern int abi_undef_missing_function(void);

static int undef_collect(pipit_instance *ins, void *data)
{
    return abi_undef_missing_function();
}

PIPIT_PLUGIN_DEFINE(
    .name = "abi_undef", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .collect = undef_collect);
