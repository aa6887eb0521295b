/* identity.h: the agent's persistent id, its host name and batch sequence numbers. */
#ifndef PIPIT_IDENTITY_H
#define PIPIT_IDENTITY_H

#include <stdint.h>

struct identity {
    char agent_id[37];                  /* UUID v4, kept in state_dir/agent_id */
    char host[256];                     /* configured or gethostname() */
    char *seq_path;                     /* state_dir/sequence */
    uint64_t seq_next;                  /* next number to hand out */
    uint64_t seq_reserved;              /* persisted upper bound */
};

/*
 * Load or make the agent id in state_dir (created 0700 if missing) and
 * reserve sequence numbers. host may be NULL or "" for gethostname().
 * Returns PIPIT_OK or an error with a reason logged.
 */
int identity_open(struct identity *id, const char *state_dir, const char *host);
/* Next batch sequence number; never reused across restarts or crashes
 * (numbers are reserved on disk in blocks, fsync'd, before use). Returns 0
 * if the reservation could not be persisted. */
uint64_t identity_next_seq(struct identity *id);
void identity_close(struct identity *id);

#endif
