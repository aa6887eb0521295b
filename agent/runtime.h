/* runtime.h: pipitd's running state: one loop, a generation of instances, drain and reload. */
#ifndef PIPIT_RUNTIME_H
#define PIPIT_RUNTIME_H

#include "settings.h"

struct runtime_options {
    const char *config_path;            /* re-read on SIGHUP */
    const char *plugin_dir;             /* overrides agent.plugin_dir, or NULL */
};

/*
 * Run the daemon with conf (already validated; ownership passes to the
 * runtime) until SIGTERM or SIGINT, then drain: stop the collectors, close
 * open batches and give the outputs up to agent.shutdown_timeout to take
 * them. SIGHUP re-reads the file: an invalid file is refused with its
 * errors logged and the running configuration stays; a valid one is
 * swapped in after the same drain. Returns the process exit status.
 */
int runtime_run(struct agent_conf *conf, const struct runtime_options *opt);

#endif
