/* settings.h: the whole configuration of pipitd, validated: host sections and plugin instances. */
#ifndef PIPIT_SETTINGS_H
#define PIPIT_SETTINGS_H

#include <stdint.h>
#include <pipit/plugin.h>
#include "config.h"
#include "diag.h"
#include "loader.h"
#include "options.h"

#define SETTINGS_MAX_OUTPUTS 32

struct agent_settings {                 /* the `agent:` section */
    const char *hostname;               /* "" or NULL: gethostname() */
    const char *state_dir;
    const char *plugin_dir;
    const char *log_level;
    const char *log_format;
    int64_t interval_ms;                /* default collector interval */
    int64_t jitter_ms;                  /* max random delay of a first collection */
    int64_t shutdown_timeout_ms;        /* bound on draining at exit/reload */
    const char *user;                   /* run as this user after start; NULL: stay */
    const char *role;                   /* agent or aggregator */
};

struct batch_settings {                 /* the `batch:` section */
    int64_t max_records;
    int64_t max_bytes;
    int64_t linger_ms;
};

struct pipeline_settings {              /* the `pipeline:` section */
    int64_t max_pending_bytes;          /* open + undelivered batches */
    int64_t max_collect_bytes;          /* records from one collect() */
};

struct wire_settings {                  /* the `wire:` section */
    const char *compression;            /* none, zlib, zstd */
    int64_t level;                      /* 0: the codec's default */
    const char *signing_key;            /* HMAC-SHA256 key; NULL/"": unsigned */
};

struct spool_settings {                 /* the `spool:` section */
    bool enabled;
    const char *dir;                    /* NULL: <state_dir>/spool */
    int64_t max_bytes;
    int64_t segment_bytes;
    const char *policy;                 /* block or drop_oldest */
    bool fsync;
};

struct http_settings {                  /* the `http:` section */
    bool enabled;                       /* default: true in the aggregator role */
    const char *listen;                 /* host:port, [v6]:port */
    const char *tls_cert, *tls_key;     /* PEM files; both or neither */
    const char *token_file;             /* bearer token; NULL: no auth */
    int64_t max_connections;
    int64_t timeout_ms;                 /* per connection, idle */
    int64_t max_request_bytes;          /* request line and headers */
    int64_t ready_grace_ms;             /* an output failing longer: not ready */
    int64_t stall_timeout_ms;           /* loop silent longer: not healthy */
    const char *query_store;            /* output instance serving /v1; NULL: off */
    int64_t query_timeout_ms;           /* bound on one query */
    int64_t query_threads;              /* server threads with the query API */
    const char *query_db;               /* resolved: that output's SQLite path */
};

struct command_settings {               /* the `commands:` section */
    const char *brokers;                /* NULL/"": no command channel */
    const char *topic;
    struct pipit_strlist trusted_keys;  /* public key files */
    struct pipit_strlist allowed_actions;
    struct pipit_strmap labels;         /* matched by target selectors */
    int64_t max_skew_ms;
    struct pipit_strmap rdkafka;        /* librdkafka consumer properties */
};

struct plugin_settings {                /* the `plugins:` section */
    bool require_signature;             /* refuse a plugin without a good .sig */
    struct pipit_strlist trusted_keys;  /* public key files it may be signed by */
};

struct conf_instance {                  /* one entry of inputs: or outputs: */
    unsigned role;                      /* PIPIT_COLLECTOR or PIPIT_OUTPUT */
    const char *plugin;                 /* as written in the file */
    const char *name;                   /* instance name (default: plugin) */
    int64_t interval_ms;                /* inputs: 0 = agent.interval */
    int64_t collect_timeout_ms;         /* inputs: the watchdog's deadline; 0: none */
    int64_t max_emit_bytes;             /* inputs: 0 = pipeline.max_collect_bytes */
    int on_emit_limit;                  /* inputs: enum emit_limit_policy */
    bool isolated;                      /* inputs: isolation: process */
    bool restart_on_stall;              /* inputs: on_stall: restart */
    int64_t memory_limit;               /* inputs, isolated: RLIMIT_AS; 0: none */
    struct pipit_strlist kinds;         /* outputs: record kinds taken */
    unsigned kind_mask;                 /* outputs: 1 << kind for each */
    const struct cfg_node *node;        /* the entry's map in the document */
    const struct loader_plugin *lp;     /* loaded plugin file */
    char prefix[32];                    /* "inputs[3]" for messages */
    struct opt_store *store;            /* storage of the host keys above */
};

struct agent_conf {
    char *file;
    struct cfg_doc *doc;
    struct agent_settings agent;
    struct batch_settings batch;
    struct pipeline_settings pipeline;
    struct wire_settings wire;
    struct spool_settings spool;
    struct http_settings http;
    struct command_settings commands;
    struct plugin_settings plugins;
    struct opt_store *stores[8];
    struct conf_instance *inputs, *outputs;
    size_t ninputs, noutputs;
};

/* Keys every inputs:/outputs: entry may have besides the plugin's own. */
extern const char *const settings_input_keys[];
extern const char *const settings_output_keys[];

/*
 * Read and validate path completely: YAML, every host section and every
 * plugin instance's options (plugins are loaded to learn their options;
 * no instance is initialised). plugin_dir, when not NULL, overrides
 * agent.plugin_dir. The loader's signature policy is set from the plugins:
 * section before any plugin is loaded (and stays set when the file is
 * refused, failing closed: a refused file asking for signatures leaves
 * them required). All errors go to d. Returns the configuration (free
 * with settings_free) or NULL.
 */
struct agent_conf *settings_load(const char *path, const char *plugin_dir,
                                 struct diag *d);
void settings_free(struct agent_conf *c);

/* Option tables of the host's sections, for docs and `pipit options`. */
extern const struct pipit_option settings_agent_options[];
extern const struct pipit_option settings_batch_options[];
extern const struct pipit_option settings_pipeline_options[];
extern const struct pipit_option settings_wire_options[];
extern const struct pipit_option settings_spool_options[];
extern const struct pipit_option settings_http_options[];
extern const struct pipit_option settings_command_options[];
extern const struct pipit_option settings_plugin_options[];
/* The host's keys of every inputs:/outputs: entry. */
extern const struct pipit_option settings_input_key_options[];
extern const struct pipit_option settings_output_key_options[];

#endif
