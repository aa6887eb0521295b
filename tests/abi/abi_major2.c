/* abi_major2: a plugin built for ABI 2.0. */
#include <pipit/plugin.h>

static int major2_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);
PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void)
{
    static const struct pipit_plugin desc = {
        .magic = PIPIT_ABI_MAGIC, .abi_major = 2, .abi_minor = 0,
        .struct_size = sizeof(struct pipit_plugin),
        .name = "abi_major2", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
        .collect = major2_collect,
    };
    return &desc;
}
