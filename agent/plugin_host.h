/* plugin_host.h: pipitd --plugin-host, the process that runs one isolated input. */
#ifndef PIPIT_PLUGIN_HOST_H
#define PIPIT_PLUGIN_HOST_H

/*
 * Read the INIT frame on fd 0, load and init the plugin with the loader's
 * checks, then answer COLLECT frames until fd 0 ends; frames go out on fd 1
 * (docs/plugin-isolation.md). Returns the exit status.
 */
int plugin_host_main(void);

#endif
