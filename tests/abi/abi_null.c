/* abi_null: pipit_plugin_entry() returns NULL. */
#include <pipit/plugin.h>

PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);
PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void) { return NULL; }
