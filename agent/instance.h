/* instance.h: one configured plugin instance and the host services (api) it is given. */
#ifndef PIPIT_INSTANCE_H
#define PIPIT_INSTANCE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "config.h"
#include "diag.h"
#include "histogram.h"
#include "loader.h"
#include "options.h"

struct pipit_instance;
struct proc_child;

/* Records emitted during one collect() or by a foreign thread, encoded as
 * JSON lines and kept apart per kind until they reach the loop thread. */
struct emitbuf {
    struct buf lines[PIPIT_RECORD_KIND_MAX + 1];
    uint32_t count[PIPIT_RECORD_KIND_MAX + 1];
    size_t bytes;                       /* sum of lines[].len */
    uint32_t capped;                    /* records refused by the emit cap */
    bool marked;                        /* api->mark() was called: */
    uint64_t mark;                      /* its latest token */
};

/*
 * What instances need from whoever runs them (the daemon's runtime or the
 * plugin-test harness). Owned by that runner; must outlive its instances.
 */
struct instance_host {
    uv_loop_t *loop;                    /* NULL: no loop services */
    const char *host_name;
    const char *agent_id;
    const char *state_dir;              /* instance dirs are made below it */
    size_t max_collect_bytes;           /* cap on one collect()'s records */
    /* Loop thread: take complete JSON lines of one kind. Return PIPIT_OK, or
     * PIPIT_EFULL when refused (the caller counts them as dropped). */
    int (*deliver)(struct instance_host *h, struct pipit_instance *ins,
                   int kind, const char *lines, size_t len, uint32_t count);
    /* Loop thread: an output's api->flush_done(), an input's api->mark().
     * Either may be NULL (the call then returns PIPIT_ENOTSUP). */
    void (*flush_done)(struct instance_host *h, struct pipit_instance *ins,
                       uint64_t batch_id, int status);
    int (*mark)(struct instance_host *h, struct pipit_instance *ins, uint64_t token);
    /* Loop thread: an input's api->caught_up(). NULL: PIPIT_ENOTSUP. */
    int (*caught_up)(struct instance_host *h, struct pipit_instance *ins);
    /* Any thread, actions: api->set_result(), api->time_left_ms() and
     * api->cancelled(). NULL: PIPIT_ENOTSUP, -1 (no timeout), false. */
    int (*set_result)(struct instance_host *h, struct pipit_instance *ins,
                      const char *key, const char *value);
    int64_t (*time_left_ms)(struct instance_host *h, struct pipit_instance *ins);
    bool (*cancelled)(struct instance_host *h, struct pipit_instance *ins);
    void *opaque;                       /* for the runner */

    /* Internal: records from threads the plugin started itself. */
    pthread_t loop_thread;
    uv_async_t foreign_async;
    bool foreign_ready;
    pthread_mutex_t foreign_mu;
    struct foreign_item *foreign_head, **foreign_tail;
    size_t foreign_bytes;               /* queued, under foreign_mu */
    struct buf emit_line;               /* loop thread: api_emit's encoding,
                                           kept between records */
    bool emit_line_busy;                /* in use: an emit inside a deliver
                                           encodes into its own buffer */
};

enum instance_state {
    INS_CONFIGURED = 0,                 /* options applied, init not run */
    INS_RUNNING,                        /* init succeeded */
    INS_DISABLED,                       /* init failed, or disabled by the
                                           watchdog: kept for reporting */
    INS_STOPPED,                        /* fini ran */
    INS_STALLED,                        /* a call overran collect_timeout and
                                           has not returned yet */
    INS_STARTING                        /* its host process is (re)starting */
};

/* What the scheduler does when one collection emits more than max_emit_bytes. */
enum emit_limit_policy {
    EMIT_LIMIT_DROP = 0,                /* drop the excess, keep collecting */
    EMIT_LIMIT_DISABLE                  /* drop the excess, disable the instance */
};

struct instance_stats {                 /* read and written on the loop thread */
    uint64_t records;                   /* records accepted into the pipeline */
    uint64_t dropped;                   /* records refused (pipeline full) */
    uint64_t capped;                    /* records over max_emit_bytes, dropped */
    uint64_t stalled;                   /* records of a stalled call, dropped */
    uint64_t stalls;                    /* calls that overran collect_timeout */
    uint64_t restarts;                  /* host processes started again */
    uint64_t invalid;                   /* malformed records refused by emit */
    uint64_t runs;                      /* collect()/act() calls */
    uint64_t errors;                    /* calls that returned an error */
    uint64_t overruns;                  /* timer fired while still collecting */
    uint64_t skipped;                   /* collections skipped: pipeline full */
    uint64_t last_duration_ns;
    struct histogram duration;          /* seconds per collect()/act() call */
};

struct pipit_instance {
    char *name;                         /* instance name, unique per role */
    unsigned role;                      /* PIPIT_COLLECTOR, _OUTPUT or _ACTION */
    const struct loader_plugin *plugin; /* borrowed from the loader */
    void *ctx;                          /* plugin state, ctx_size bytes */
    struct opt_store *opts;             /* option storage, freed after fini */
    struct instance_host *host;
    enum instance_state state;
    int64_t interval_ms;                /* collectors: between collections */
    int64_t collect_timeout_ms;         /* collectors: the watchdog's deadline */
    size_t max_emit_bytes;              /* cap on one call's records; 0: the host's */
    enum emit_limit_policy on_emit_limit;
    bool initialised;                   /* init succeeded, fini not run yet */
    struct proc_child *child;           /* isolation: process; NULL in process */
    unsigned kind_mask;                 /* outputs: 1 << kind of records taken */
    char *state_dir;                    /* made on first api->state_dir() */
    struct instance_stats stats;
    void *sched;                        /* the scheduler's per-instance state */
    void *out;                          /* the pipeline's per-output state */

    struct emitbuf *collecting;         /* set while collect() runs */
    atomic_uint_least64_t emit_invalid; /* counted from any thread */
    atomic_uint_least64_t emit_dropped;

    pthread_mutex_t log_mu;             /* rate limit of plugin log lines */
    int64_t log_window;
    unsigned log_lines, log_suppressed;

    struct instance_watch *watches;     /* api->watch_fd() */
    uv_timer_t *timer;                  /* api->timer_start() */
    struct pipit_instance *next;        /* in the runner's list */
};

/* The host service table given to every plugin's load(). */
const struct pipit_api *instance_api(void);

/* Start/stop accepting records from foreign threads (needs h->loop). */
int instance_host_open(struct instance_host *h);
void instance_host_close(struct instance_host *h);

/*
 * Make an instance of plugin p: allocate ctx, apply the options in map
 * (keys in host_keys belong to the host and are skipped), but do not run
 * init. Errors go to d with file, line and key. Returns the instance (free
 * with instance_free) or NULL.
 */
struct pipit_instance *instance_create(struct instance_host *h,
                                       const struct loader_plugin *p,
                                       unsigned role, const char *name,
                                       const struct cfg_node *map,
                                       const char *const *host_keys,
                                       const char *file, const char *prefix,
                                       struct diag *d);
/* Run init(). On failure the instance is INS_DISABLED, the reason logged. */
int instance_init(struct pipit_instance *ins);
/* Stop the instance's watches and timer, then run fini() if init succeeded. */
void instance_fini(struct pipit_instance *ins);
void instance_free(struct pipit_instance *ins);

/*
 * Run collect() (or act() for actions) on the calling thread, any thread;
 * records emitted meanwhile are kept in an emitbuf for instance_handoff().
 * Returns the plugin's status.
 */
int instance_run(struct pipit_instance *ins);
/* Loop thread: pass what the last instance_run() emitted to h->deliver,
 * then its mark, if it made one. Returns the number of records that call
 * emitted past the emit cap (dropped, counted in stats.capped). */
uint32_t instance_handoff(struct pipit_instance *ins);
/* Keep one encoded record line in the running call's buffer, within
 * max_emit_bytes (past it: PIPIT_EFULL, counted as capped). */
int instance_take_line(struct pipit_instance *ins, int kind, const char *line, size_t len);
/* Loop thread: drop what the last instance_run() emitted, counted in
 * stats.stalled (the call overran its deadline). Returns how many. */
uint64_t instance_discard(struct pipit_instance *ins);
/* Stop the instance's fd watches and timer (it emits nothing more by
 * itself); fini() is still to come. */
void instance_pause(struct pipit_instance *ins);

/* Free every line of an emitbuf; keeps the storage of none. */
void emitbuf_free(struct emitbuf *e);

#endif
