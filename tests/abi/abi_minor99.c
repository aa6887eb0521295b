/* abi_minor99: a plugin built for ABI 1.99, newer than the host. */
#include <pipit/plugin.h>

static int minor99_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);
PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void)
{
    static const struct pipit_plugin desc = {
        .magic = PIPIT_ABI_MAGIC, .abi_major = PIPIT_ABI_MAJOR, .abi_minor = 99,
        .struct_size = sizeof(struct pipit_plugin),
        .name = "abi_minor99", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
        .collect = minor99_collect,
    };
    return &desc;
}
