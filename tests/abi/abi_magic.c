/* abi_magic: a descriptor with the wrong magic. */
#include <pipit/plugin.h>

static int magic_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);
PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void)
{
    static const struct pipit_plugin desc = {
        .magic = 0x12345678u, .abi_major = PIPIT_ABI_MAJOR, .abi_minor = PIPIT_ABI_MINOR,
        .struct_size = sizeof(struct pipit_plugin),
        .name = "abi_magic", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
        .collect = magic_collect,
    };
    return &desc;
}
