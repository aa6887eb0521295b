/* abi_small: struct_size smaller than the ABI 1.0 descriptor (fini missing). */
#include <pipit/plugin.h>

static int small_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);
PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void)
{
    static const struct pipit_plugin desc = {
        .magic = PIPIT_ABI_MAGIC, .abi_major = PIPIT_ABI_MAJOR, .abi_minor = PIPIT_ABI_MINOR,
        .struct_size = offsetof(struct pipit_plugin, fini),
        .name = "abi_small", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
        .collect = small_collect,
    };
    return &desc;
}
