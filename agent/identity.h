/* identity.h: the agent's persistent id, its host name and batch sequence numbers. */
#ifndef PIPIT_IDENTITY_H
#define PIPIT_IDENTITY_H

#include <stdbool.h>
#include <stdint.h>

struct identity {
    char agent_id[37];                  /* UUID v4, kept in state_dir/agent_id */
    char host[256];                     /* configured or gethostname() */
    char *seq_path;                     /* state_dir/sequence */
    uint64_t seq_next;                  /* next number to hand out */
    uint64_t seq_reserved;              /* persisted upper bound */
    bool failing;                       /* the last reservation could not be written */
    int64_t retry_ns;                   /* then: no new attempt before (monotonic) */
};

/*
 * Load or make the agent id in state_dir (created 0700 if missing) and
 * reserve sequence numbers. host may be NULL or "" for gethostname().
 * Returns PIPIT_OK or an error with a reason logged.
 */
int identity_open(struct identity *id, const char *state_dir, const char *host);
/* Next batch sequence number; never reused across restarts or crashes
 * (numbers are reserved on disk in blocks, fsync'd, before use). Returns 0
 * if the reservation could not be persisted (disk full, I/O error): logged
 * once until it succeeds again, and tried again at most once a second. */
uint64_t identity_next_seq(struct identity *id);
void identity_close(struct identity *id);

#endif
