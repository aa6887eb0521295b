/* command_channel.h: the agent's end of fleet deployments: read signed commands from Kafka, check them, run their plans. */
#ifndef PIPIT_COMMAND_CHANNEL_H
#define PIPIT_COMMAND_CHANNEL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "settings.h"

struct command_channel;

struct command_channel_opts {
    const struct command_settings *conf;    /* copied what is kept */
    const char *host_name, *agent_id;
    const char *state_dir;              /* runs/ and commands.nonces live here */
    const char *plugin_dir;             /* act_NAME.so */
    uv_loop_t *loop;
    /* Loop thread: event records (JSON lines) for the pipeline. */
    int (*deliver)(void *arg, int kind, const char *lines, size_t len, uint32_t count);
    void *arg;
};

/*
 * Start the channel's thread: first it finishes the plan runs a previous
 * process left unfinished (the journals under runs/), then it consumes the command
 * topic. Each command is verified (docs/deployments.md), its plan parsed
 * and its actions checked against allowed_actions, then run; refusals are
 * logged and emitted as command.refused events, runs emit their plan
 * events. Loop thread. Returns 0, or -1 with the reason in why.
 */
int command_channel_start(struct command_channel **out, const struct command_channel_opts *o,
                          char *why, size_t whylen);

/* Loop thread: stop the thread (a running plan is interrupted: its journal
 * resumes it at the next start), deliver the last events, free it all. */
void command_channel_stop(struct command_channel *c);

/* Counters for the log and /metrics. */
struct command_channel_stats {
    uint64_t received, accepted, refused, runs_ok, runs_failed;
};
void command_channel_stats(struct command_channel *c, struct command_channel_stats *out);

#endif
