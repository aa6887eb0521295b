/* plugin_proc.h: an input run in its own plugin host process (isolation: process). */
#ifndef PIPIT_PLUGIN_PROC_H
#define PIPIT_PLUGIN_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct pipit_instance;
struct cfg_node;
struct pipit_strlist;
struct proc_child;

struct proc_config {                    /* what the host process is given */
    const char *plugin_path;            /* the file the loader checked */
    const struct cfg_node *options;     /* the instance's map in the config */
    const char *log_level, *log_format;
    bool require_signature;
    const struct pipit_strlist *trusted_keys;
    int64_t memory_limit;               /* RLIMIT_AS of the process; 0: none */
    bool restart_on_stall;              /* on_stall: restart */
    bool set_user;                      /* run it as uid/gid */
    uid_t uid;
    gid_t gid;
};

/*
 * Start ins in a host process: pipitd runs itself with --plugin-host and
 * sends it the INIT frame. ins is INS_STARTING until the process reports
 * init() done (then INS_RUNNING) or failed (INS_DISABLED). A process that
 * dies is started again with backoff (stats.restarts). Everything in cfg is
 * copied. Returns PIPIT_OK (ins->child set) or an error, logged.
 */
int proc_start(uv_loop_t *loop, struct pipit_instance *ins, const struct proc_config *cfg);
/*
 * Ask for one collect(). done(arg, status) runs on the loop once the
 * process answered (its records are in ins->collecting for
 * instance_handoff) or died (PIPIT_EIO, or PIPIT_ETIMEDOUT after
 * proc_kill). Returns PIPIT_OK, or PIPIT_ESTATE when no call can start
 * (done will not run).
 */
int proc_collect(struct proc_child *pc, void (*done)(void *arg, int status), void *arg);
/* The running call overran its deadline: SIGKILL the process. It is
 * started again if on_stall is restart, else ins is disabled. */
void proc_kill(struct proc_child *pc);
/* Close the process's input (it runs fini() and exits; SIGKILL after 5 s)
 * and forget ins; the child frees itself once its handles are closed. */
void proc_stop(struct proc_child *pc);

#endif
