/* abi_big: struct_size larger than the host's descriptor while claiming the host's ABI. */
#include <pipit/plugin.h>

static int big_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

/* The descriptor really is that large, so reading all of it stays in bounds. */
static const struct {
    struct pipit_plugin p;
    char future[64];
} big_desc = {
    .p = {
        .magic = PIPIT_ABI_MAGIC, .abi_major = PIPIT_ABI_MAJOR,
        .abi_minor = PIPIT_ABI_MINOR,
        .struct_size = sizeof(struct pipit_plugin) + 64,
        .name = "abi_big", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
        .collect = big_collect,
    },
};

PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);
PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void) { return &big_desc.p; }
