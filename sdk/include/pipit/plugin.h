/* pipit/plugin.h: the public plugin SDK of pipit (the only header a plugin includes). */
#ifndef PIPIT_PLUGIN_H
#define PIPIT_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ABI policy (see docs/plugin-guide.md):
 *  - A plugin built against ABI major M, minor m loads into a host of major M
 *    and minor >= m. A major bump is the only way to break a plugin.
 *  - Structs the host hands to plugins (struct pipit_api, struct pipit_batch,
 *    struct pipit_record) start with their size and only grow at the end;
 *    test for a field with PIPIT_API_HAS() before calling a newer service.
 *  - The plugin descriptor carries its own struct_size; the host copies it
 *    into a zeroed struct, so fields a plugin does not know read as zero.
 */
#define PIPIT_ABI_MAGIC 0x70697069u /* "pipi" */
#define PIPIT_ABI_MAJOR 1
#define PIPIT_ABI_MINOR 4

/* The one exported symbol of every plugin. */
#define PIPIT_ENTRY_SYMBOL "pipit_plugin_entry"

#if defined(__GNUC__)
#define PIPIT_EXPORT __attribute__((visibility("default")))
#define PIPIT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PIPIT_EXPORT
#define PIPIT_PRINTF(f, a)
#endif

/*
 * Errors are negative codes, generated from this one list, which also builds
 * pipit_strerror() in the host (reachable by plugins as api->strerror).
 */
#define PIPIT_ERRNO_MAP(XX)                                              \
    XX(EINVAL,    -1,  "invalid argument")                               \
    XX(ENOMEM,    -2,  "out of memory")                                  \
    XX(EIO,       -3,  "input/output error")                             \
    XX(ENOENT,    -4,  "no such file or entry")                          \
    XX(EPERM,     -5,  "permission refused")                             \
    XX(EAGAIN,    -6,  "resource temporarily unavailable")               \
    XX(ETIMEDOUT, -7,  "timed out")                                      \
    XX(ENOTSUP,   -8,  "operation not supported")                        \
    XX(EABI,      -9,  "plugin ABI mismatch")                            \
    XX(ECONFIG,   -10, "invalid configuration")                          \
    XX(ERANGE,    -11, "value out of range")                             \
    XX(EPARSE,    -12, "malformed input")                                \
    XX(ESTATE,    -13, "operation not valid in this state")              \
    XX(EFULL,     -14, "buffer full")                                    \
    XX(ECANCELED, -15, "operation canceled")

enum pipit_status {
    PIPIT_OK = 0,
#define PIPIT__ERR_ENUM(name, val, msg) PIPIT_##name = (val),
    PIPIT_ERRNO_MAP(PIPIT__ERR_ENUM)
#undef PIPIT__ERR_ENUM
    /* Positive: only as the return value of an output's flush(). */
    PIPIT_RETRY = 1,                    /* not delivered, try again later */
    PIPIT_PENDING = 2                   /* taken; outcome via api->flush_done() */
};

/* Opaque handle of one configured plugin instance, owned by the host. */
typedef struct pipit_instance pipit_instance;

/* ---- records ------------------------------------------------------------ */

enum pipit_record_kind {
    PIPIT_METRIC = 1,
    PIPIT_LOG    = 2,
    PIPIT_COST   = 3,
    PIPIT_EVENT  = 4
};
#define PIPIT_RECORD_KIND_MAX 4

enum pipit_metric_type {
    PIPIT_GAUGE     = 1,
    PIPIT_COUNTER   = 2,
    PIPIT_HISTOGRAM = 3
};

enum pipit_log_level {
    PIPIT_LOG_ERROR = 1,
    PIPIT_LOG_WARN  = 2,
    PIPIT_LOG_INFO  = 3,
    PIPIT_LOG_DEBUG = 4,
    PIPIT_LOG_TRACE = 5
};

struct pipit_label {
    const char *key;
    const char *value;
};

/*
 * One record, as a plugin hands it to api->emit(). The host copies all of it
 * (strings included) before emit() returns; the plugin keeps ownership.
 * Fields a kind does not use stay zero. time_ns 0 means "now". host and
 * instance are filled in by the host.
 */
struct pipit_record {
    size_t struct_size;                 /* sizeof(struct pipit_record) */
    int kind;                           /* enum pipit_record_kind */
    int64_t time_ns;                    /* Unix time in nanoseconds */
    const struct pipit_label *labels;   /* nlabels entries, may be NULL */
    size_t nlabels;

    /* metric: name, type, value; histograms use the bucket arrays. */
    const char *name;                   /* metric name; event: event name */
    int metric_type;                    /* enum pipit_metric_type */
    double value;
    const double *bucket_bounds;        /* upper bounds, ascending */
    const uint64_t *bucket_counts;      /* cumulative counts per bound */
    size_t nbuckets;
    double sum;                         /* histogram sum */
    uint64_t count;                     /* histogram count */

    /* log: message, level, where it came from. */
    const char *message;                /* log line; event: detail text */
    int level;                          /* enum pipit_log_level */
    const char *source;                 /* file path or stream name */
    uint64_t offset;                    /* byte offset in source */

    /* cost: amount of money for a resource over a period. Since ABI 1.1
     * amount_micros (at the end) holds it exactly and wins when set. */
    double amount;
    const char *currency;               /* ISO 4217, e.g. "USD" */
    const char *resource;               /* what was paid for */
    int64_t period_start_ns;
    int64_t period_end_ns;

    /* event: outcome of something that happened. */
    const char *status;                 /* e.g. "ok", "failed", "started" */

    /* Relays (the aggregator's Kafka input) keep a record's first identity:
     * when set, host and instance replace the relay's own, and origin_*
     * name the batch the record first travelled in. */
    const char *host;
    const char *instance;
    const char *origin_agent;           /* agent id (UUID) of the first emitter */
    uint64_t origin_seq;                /* that agent's batch sequence number */
    uint32_t origin_index;              /* the record's index in that batch */

    /* Since ABI 1.1. cost: the amount in millionths of the currency unit
     * (41600 is 0.0416), exact. When non-zero it is authoritative and
     * amount is ignored (the host derives it); when zero, amount is used
     * and rounded to micros half away from zero. */
    int64_t amount_micros;
};

/* ---- batches (what outputs receive) ------------------------------------ */

/*
 * A closed batch of records of one kind, as handed to an output's flush().
 * Borrowed: valid until flush() returns; an output that returns
 * PIPIT_PENDING copies what it needs (librdkafka copies the message).
 */
struct pipit_batch {
    size_t struct_size;                 /* sizeof(struct pipit_batch) */
    int kind;                           /* enum pipit_record_kind */
    uint64_t seq;                       /* per-agent sequence number */
    uint32_t count;                     /* records in the batch */
    const char *payload;                /* newline-delimited JSON records */
    size_t payload_len;                 /* bytes in payload */
    const char *agent_id;               /* UUID of the agent, NUL-terminated */
    uint64_t id;                        /* handle for api->flush_done() */
    const void *wire;                   /* the batch as one wire message */
    size_t wire_len;                    /* (docs/wire-format.md), or NULL/0 */
    int64_t created_ns;                 /* when the batch was closed */
};

/* ---- options ------------------------------------------------------------ */

enum pipit_opt_type {
    PIPIT_OPT_T_END = 0,
    PIPIT_OPT_T_BOOL,                   /* bool */
    PIPIT_OPT_T_INT,                    /* int64_t */
    PIPIT_OPT_T_DOUBLE,                 /* double */
    PIPIT_OPT_T_STRING,                 /* const char *, host-owned */
    PIPIT_OPT_T_DURATION,               /* int64_t milliseconds; "250ms", "10s", "5m" */
    PIPIT_OPT_T_SIZE,                   /* int64_t bytes; "512", "64KiB", "16MiB" */
    PIPIT_OPT_T_LIST,                   /* struct pipit_strlist, host-owned */
    PIPIT_OPT_T_MAP                     /* struct pipit_strmap, host-owned */
};

#define PIPIT_OPT_REQUIRED 0x1u         /* key must be present */
#define PIPIT_OPT_SECRET   0x2u         /* value never printed */

/* A list of strings; items valid until fini() returns. */
struct pipit_strlist {
    const char *const *items;
    size_t count;
};

/* A map of strings to strings (e.g. library properties passed through as
 * they are); keys and values valid until fini() returns. */
struct pipit_strmap {
    const char *const *keys;
    const char *const *values;
    size_t count;
};

/*
 * One declared option. The host parses the config value (or def when the key
 * is absent), checks type and range, and stores it at ctx + offset before
 * init() runs. Strings and lists stay valid until fini() returns.
 */
struct pipit_option {
    const char *name;                   /* config key, lower_snake */
    int type;                           /* enum pipit_opt_type */
    const char *def;                    /* default as config text, or NULL */
    size_t offset;                      /* offsetof(ctx struct, field) */
    unsigned flags;                     /* PIPIT_OPT_REQUIRED | _SECRET */
    double min, max;                    /* range for numbers; min > max: none */
    const char *help;                   /* one sentence for docs and check */
};

#define PIPIT__OPT(n, t, d, st, f, fl, lo, hi, h) \
    { (n), (t), (d), offsetof(st, f), (fl), (lo), (hi), (h) }
#define PIPIT_OPT_BOOL(n, d, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_BOOL, d, st, f, 0, 1, 0, h)
#define PIPIT_OPT_INT(n, d, lo, hi, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_INT, d, st, f, 0, lo, hi, h)
#define PIPIT_OPT_DOUBLE(n, d, lo, hi, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_DOUBLE, d, st, f, 0, lo, hi, h)
#define PIPIT_OPT_STRING(n, d, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_STRING, d, st, f, 0, 1, 0, h)
#define PIPIT_OPT_STRING_REQ(n, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_STRING, NULL, st, f, PIPIT_OPT_REQUIRED, 1, 0, h)
#define PIPIT_OPT_SECRET_STRING(n, d, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_STRING, d, st, f, PIPIT_OPT_SECRET, 1, 0, h)
#define PIPIT_OPT_DURATION(n, d, lo, hi, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_DURATION, d, st, f, 0, lo, hi, h)
#define PIPIT_OPT_SIZE(n, d, lo, hi, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_SIZE, d, st, f, 0, lo, hi, h)
#define PIPIT_OPT_LIST(n, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_LIST, NULL, st, f, 0, 1, 0, h)
/* A list with a default, written as a YAML flow list: "[sda*, nvme*]". */
#define PIPIT_OPT_LIST_DEF(n, d, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_LIST, d, st, f, 0, 1, 0, h)
#define PIPIT_OPT_MAP(n, st, f, h) \
    PIPIT__OPT(n, PIPIT_OPT_T_MAP, NULL, st, f, 0, 1, 0, h)
#define PIPIT_OPT_END { NULL, PIPIT_OPT_T_END, NULL, 0, 0, 0, 0, NULL }

/* ---- host services ------------------------------------------------------ */

/* Events for api->watch_fd(). */
#define PIPIT_FD_READ  0x1
#define PIPIT_FD_WRITE 0x2

typedef void (*pipit_fd_cb)(pipit_instance *ins, void *data, int fd, int events);
typedef void (*pipit_timer_cb)(pipit_instance *ins, void *data);

/*
 * Services of the host, handed to a plugin once in load(). Append-only: the
 * first field is the size of the table the host was built with.
 *
 * Threads: emit*() and log() may be called from any plugin callback, on the
 * loop thread or a worker thread, and from threads a plugin starts itself.
 * watch_fd() and timer_start() are loop services: call them from init() or
 * from one of their own callbacks, which all run on the loop thread and must
 * not block.
 */
struct pipit_api {
    size_t struct_size;                 /* sizeof(struct pipit_api) of the host */
    uint32_t abi_major, abi_minor;      /* ABI the host implements */

    /* Log a line with the instance as prefix; rate-limited by the host. */
    void (*log)(pipit_instance *ins, int level, const char *fmt, ...)
        PIPIT_PRINTF(3, 4);
    void (*vlog)(pipit_instance *ins, int level, const char *fmt, va_list ap);
    bool (*log_enabled)(pipit_instance *ins, int level);

    /* Emit records; the host copies what it is given. PIPIT_EFULL when the
     * pipeline is full and the record was refused (counted by the host). */
    int (*emit)(pipit_instance *ins, const struct pipit_record *rec);
    int (*emit_gauge)(pipit_instance *ins, const char *name, double value);
    int (*emit_counter)(pipit_instance *ins, const char *name, double value);
    int (*emit_metric)(pipit_instance *ins, int metric_type, const char *name,
                       double value, const struct pipit_label *labels,
                       size_t nlabels);
    int (*emit_log)(pipit_instance *ins, int level, const char *message,
                    const struct pipit_label *labels, size_t nlabels);

    /* Read back the configured value of a declared option as text (after
     * expansion), or NULL when it was not set. Valid until fini() returns. */
    const char *(*config_get)(pipit_instance *ins, const char *key);

    /* Identity and environment. Strings valid until fini() returns. */
    const char *(*instance_name)(pipit_instance *ins);
    const char *(*host_name)(pipit_instance *ins);
    const char *(*agent_id)(pipit_instance *ins);
    const char *(*state_dir)(pipit_instance *ins);  /* private, created */
    int64_t (*now_ns)(void);                        /* CLOCK_REALTIME */
    const char *(*strerror)(int err);

    /* Loop services (see above). Return PIPIT_OK or an error. A watch or a
     * timer ends by itself before fini() is called. */
    int (*watch_fd)(pipit_instance *ins, int fd, int events, pipit_fd_cb cb);
    int (*unwatch_fd)(pipit_instance *ins, int fd);
    int (*timer_start)(pipit_instance *ins, uint64_t timeout_ms,
                       uint64_t repeat_ms, pipit_timer_cb cb);
    int (*timer_stop)(pipit_instance *ins);

    /* Output, loop thread: the outcome of a flush() that returned
     * PIPIT_PENDING: PIPIT_OK delivered, PIPIT_RETRY give it to me again
     * later, an error to give it up (counted). Exactly once per batch. */
    void (*flush_done)(pipit_instance *ins, uint64_t batch_id, int status);
    /* Input: ask for the plugin's ack(token) once every record this
     * instance emitted before the call is durable (written to the spool,
     * or taken by every output when there is no spool). Tokens must
     * increase. Used to commit source positions (file offsets, Kafka
     * offsets) only after the records are safe. */
    int (*mark)(pipit_instance *ins, uint64_t token);

    /* Since ABI 1.2, actions, from act(). Publish a named result of the
     * step (exit_code, stdout, previous, ...): later steps of the plan read
     * it as {{steps.NAME.KEY}} and in `when`, and the run's journal keeps
     * it. Keys are lower_snake; the text is copied and cut at
     * PIPIT_RESULT_MAX bytes. PIPIT_ENOTSUP outside a plan run. */
    int (*set_result)(pipit_instance *ins, const char *key, const char *value);
    /* Milliseconds left before the step's timeout (0 once it has passed),
     * or -1 when the step has none. An action ends by then: it kills its
     * child, bounds its transfer, stops polling. */
    int64_t (*time_left_ms)(pipit_instance *ins);
    /* True once the run is being stopped (SIGINT, SIGTERM, the daemon
     * shutting down): end the step soon with PIPIT_ECANCELED. */
    bool (*cancelled)(pipit_instance *ins);

    /* Since ABI 1.4, inputs, loop thread (not from collect()): the source
     * has nothing more waiting right now (a consumer that has caught up).
     * The host closes the open batches instead of holding them for
     * batch.linger_ms, which is only worth waiting while more is coming:
     * at once, or, while earlier batches are still being delivered, as soon
     * as they are (what arrives meanwhile goes with them).
     * Call it when a read finds nothing after records were emitted, not on
     * every idle poll. PIPIT_ESTATE from another thread or inside collect(). */
    int (*caught_up)(pipit_instance *ins);
};

/* The longest result value api->set_result() keeps. */
#define PIPIT_RESULT_MAX 65536

/* True when the host's api table has the service `field`. */
#define PIPIT_API_HAS(api, field)                                          \
    ((api)->struct_size >= offsetof(struct pipit_api, field) +             \
                           sizeof((api)->field) && (api)->field != NULL)

/* ---- the plugin descriptor --------------------------------------------- */

/* Kinds of plugin; a plugin may be several. */
#define PIPIT_COLLECTOR 0x1u            /* input: collect() or loop services */
#define PIPIT_OUTPUT    0x2u            /* output: flush() */
#define PIPIT_ACTION    0x4u            /* deployment step: act() */

struct pipit_plugin {
    uint32_t magic;                     /* PIPIT_ABI_MAGIC */
    uint16_t abi_major, abi_minor;      /* ABI the plugin was built with */
    size_t struct_size;                 /* sizeof(struct pipit_plugin) */
    const char *name;                   /* lower_snake, e.g. "cpu" */
    const char *version;                /* the plugin's own version */
    const char *description;            /* one line */
    unsigned kinds;                     /* PIPIT_COLLECTOR | ... */
    size_t ctx_size;                    /* instance state, zero-filled */
    const struct pipit_option *options; /* ends with PIPIT_OPT_END, or NULL */

    /* Once per loaded file, before any instance. Keep api: valid for the
     * life of the process. */
    int (*load)(const struct pipit_api *api);
    /* Per instance, after options were stored in data. If it fails the
     * plugin has cleaned up and fini() is not called. */
    int (*init)(pipit_instance *ins, void *data);
    /* Collector: gather once. Runs on a worker thread; may block. */
    int (*collect)(pipit_instance *ins, void *data);
    /* Output: deliver one batch. Runs on the loop thread. PIPIT_OK when the
     * batch is delivered, PIPIT_RETRY to be given it again later. */
    int (*flush)(pipit_instance *ins, void *data, const struct pipit_batch *b);
    /* Action: perform the step described by the instance's options (one
     * instance per step run). Runs on a worker thread; may block, but ends
     * within api->time_left_ms() and soon after api->cancelled(). Returns
     * PIPIT_OK when the step succeeded; its results go to api->set_result(). */
    int (*act)(pipit_instance *ins, void *data);
    /* Per instance, exactly once if init() succeeded. */
    void (*fini)(pipit_instance *ins, void *data);
    /* Input, loop thread: every record emitted before api->mark(token) is
     * durable. Tokens arrive in the order they were marked; a token whose
     * records were lost (drain timed out) is never acknowledged. */
    void (*ack)(pipit_instance *ins, void *data, uint64_t token);
    /* Since ABI 1.3: PIPIT_FLUSH_WIRE_ONLY and later flags. */
    unsigned flags;
};

/*
 * Output flag: flush() reads only batch->wire (it sends the wire message
 * as it is). The host then keeps no decoded payload for the batch (payload
 * is NULL, payload_len 0) and reads spooled batches back without
 * decompressing them: less memory and CPU per batch.
 */
#define PIPIT_FLUSH_WIRE_ONLY 0x1u

typedef const struct pipit_plugin *(*pipit_plugin_entry_fn)(void);

/*
 * Define the plugin's entry point. Usage:
 *   PIPIT_PLUGIN_DEFINE(.name = "cpu", .version = "1.0.0", ...);
 */
#define PIPIT_PLUGIN_DEFINE(...)                                           \
    PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void);      \
    PIPIT_EXPORT const struct pipit_plugin *pipit_plugin_entry(void)       \
    {                                                                      \
        static const struct pipit_plugin desc = {                          \
            .magic = PIPIT_ABI_MAGIC,                                      \
            .abi_major = PIPIT_ABI_MAJOR,                                  \
            .abi_minor = PIPIT_ABI_MINOR,                                  \
            .struct_size = sizeof(struct pipit_plugin),                    \
            __VA_ARGS__                                                    \
        };                                                                 \
        return &desc;                                                      \
    }                                                                      \
    struct pipit__plugin_define_end /* takes the caller's ';' */

#ifdef __cplusplus
}
#endif
#endif /* PIPIT_PLUGIN_H */
