/* abi_oldminor: a descriptor as ABI 1.0 laid it out (fields up to fini), loaded by any 1.x host. */
#include <pipit/plugin.h>

/*
 * struct_size is the ABI 1.0 size, not sizeof: once a later minor appends
 * fields, this is what an old plugin looks like to the new host, which must
 * read the missing fields as zero.
 */
#define OLDMINOR_SIZE (offsetof(struct pipit_plugin, fini) + sizeof(void (*)(void)))

static int oldminor_collect(pipit_instance *ins, void *data) { return PIPIT_OK; }

PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);
PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void)
{
    static const struct pipit_plugin desc = {
        .magic = PIPIT_ABI_MAGIC, .abi_major = PIPIT_ABI_MAJOR, .abi_minor = 0,
        .struct_size = OLDMINOR_SIZE,
        .name = "abi_oldminor", .version = "0.9", .kinds = PIPIT_COLLECTOR,
        .collect = oldminor_collect,
    };
    return &desc;
}
