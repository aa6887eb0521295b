/* abi_nosym: a shared object without pipit_plugin_entry. */
#include <pipit/plugin.h>

PIPIT_EXPORT int abi_nosym_something(void);
PIPIT_EXPORT int abi_nosym_something(void) { return 42; }
