/* settings.c: validate a whole pipitd configuration (host sections, inputs, outputs). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "http_mhd.h"
#include "http_parse.h"
#include "instance.h"
#include "log.h"
#include "record.h"
#include "settings.h"
#include "command_key.h"
#include "plugin_sig.h"
#include "privileges.h"
#include "wire.h"

#ifndef PIPIT_PLUGIN_DIR
#define PIPIT_PLUGIN_DIR "/usr/local/lib/pipit/plugins"
#endif
#ifndef PIPIT_STATE_DIR
#define PIPIT_STATE_DIR "/var/lib/pipit"
#endif

const struct pipit_option settings_agent_options[] = {
    PIPIT_OPT_STRING("hostname", NULL, struct agent_settings, hostname,
                     "Host name put on every record (default: the system's)"),
    PIPIT_OPT_STRING("state_dir", PIPIT_STATE_DIR, struct agent_settings, state_dir,
                     "Directory for the agent id, sequence numbers and plugin state"),
    PIPIT_OPT_STRING("plugin_dir", PIPIT_PLUGIN_DIR, struct agent_settings, plugin_dir,
                     "Directory the plugins are loaded from"),
    PIPIT_OPT_STRING("log_level", "info", struct agent_settings, log_level,
                     "Least severe level logged: error, warn, info, debug or trace"),
    PIPIT_OPT_STRING("log_format", "logfmt", struct agent_settings, log_format,
                     "Log line format: logfmt or json"),
    PIPIT_OPT_DURATION("interval", "10s", 10, 86400000, struct agent_settings,
                       interval_ms, "Default collection interval of inputs"),
    PIPIT_OPT_DURATION("jitter", "1s", 0, 3600000, struct agent_settings, jitter_ms,
                       "Largest random delay before an input's first collection"),
    PIPIT_OPT_DURATION("shutdown_timeout", "10s", 0, 3600000, struct agent_settings,
                       shutdown_timeout_ms,
                       "How long stop and reload wait for outputs to take what is in flight"),
    PIPIT_OPT_STRING("user", NULL, struct agent_settings, user,
                     "Started as root, run as this user once the inputs and outputs are "
                     "started and the state directory is handed to it (default: stay)"),
    PIPIT_OPT_STRING("role", "agent", struct agent_settings, role,
                     "What this daemon is: agent (on a host) or aggregator (central); "
                     "sets the defaults that differ, such as http.enabled"),
    PIPIT_OPT_END
};

const struct pipit_option settings_batch_options[] = {
    PIPIT_OPT_INT("max_records", "1000", 1, 1000000, struct batch_settings,
                  max_records, "A batch closes when it holds this many records"),
    PIPIT_OPT_SIZE("max_bytes", "1MiB", 1024, 268435456, struct batch_settings,
                   max_bytes, "A batch closes when its encoded records reach this size"),
    PIPIT_OPT_INT("linger_ms", "1000", 0, 3600000, struct batch_settings, linger_ms,
                  "A batch closes this many milliseconds after its first record"),
    PIPIT_OPT_END
};

const struct pipit_option settings_pipeline_options[] = {
    PIPIT_OPT_SIZE("max_pending_bytes", "4MiB", 65536, 17179869184.0,
                   struct pipeline_settings, max_pending_bytes,
                   "Bound on records held in memory, open and undelivered batches"),
    PIPIT_OPT_SIZE("max_collect_bytes", "16MiB", 4096, 1073741824,
                   struct pipeline_settings, max_collect_bytes,
                   "Bound on the records one collection may emit"),
    PIPIT_OPT_END
};

const struct pipit_option settings_wire_options[] = {
    PIPIT_OPT_STRING("compression", "zlib", struct wire_settings, compression,
                     "Batch compression: none, zlib or zstd (when built with zstd)"),
    PIPIT_OPT_INT("level", "1", 0, 22, struct wire_settings, level,
                  "Compression level (0: the codec's default; zlib 1-9, zstd 1-22)"),
    PIPIT_OPT_SECRET_STRING("signing_key", NULL, struct wire_settings, signing_key,
                            "HMAC-SHA256 key signing every batch (at least 16 bytes; "
                            "use ${file:/path}); unset: batches are not signed"),
    PIPIT_OPT_END
};

const struct pipit_option settings_spool_options[] = {
    PIPIT_OPT_BOOL("enabled", "true", struct spool_settings, enabled,
                   "Write every batch to disk before the outputs get it"),
    PIPIT_OPT_STRING("dir", NULL, struct spool_settings, dir,
                     "Spool directory (default: <agent.state_dir>/spool)"),
    PIPIT_OPT_SIZE("max_bytes", "1GiB", 1048576, 1099511627776.0, struct spool_settings,
                   max_bytes, "Bound on the spool's size on disk"),
    PIPIT_OPT_SIZE("segment_bytes", "16MiB", 65536, 1073741824, struct spool_settings,
                   segment_bytes, "Size at which a spool segment file is closed"),
    PIPIT_OPT_STRING("policy", "block", struct spool_settings, policy,
                     "When full: block (collectors pause, counted) or drop_oldest "
                     "(oldest batches dropped, counted)"),
    PIPIT_OPT_BOOL("fsync", "true", struct spool_settings, fsync,
                   "fsync each batch before it counts as written"),
    PIPIT_OPT_END
};

const struct pipit_option settings_http_options[] = {
    PIPIT_OPT_BOOL("enabled", NULL, struct http_settings, enabled,
                   "Serve /metrics, /healthz and /readyz (default: false in the agent "
                   "role, true in the aggregator role)"),
    PIPIT_OPT_STRING("listen", "127.0.0.1:9790", struct http_settings, listen,
                     "Address and port: 127.0.0.1:9790, 0.0.0.0:9790, [::1]:9790 "
                     "(port 0: any free port, logged)"),
    PIPIT_OPT_STRING("tls_cert", NULL, struct http_settings, tls_cert,
                     "PEM certificate file: serve HTTPS (needs tls_key)"),
    PIPIT_OPT_STRING("tls_key", NULL, struct http_settings, tls_key,
                     "PEM private key file of tls_cert"),
    PIPIT_OPT_STRING("token_file", NULL, struct http_settings, token_file,
                     "File holding a bearer token every request must present "
                     "(Authorization: Bearer ...); unset: no authentication"),
    PIPIT_OPT_INT("max_connections", "16", 1, 1024, struct http_settings,
                  max_connections, "Connections open at once; more wait in the listen "
                  "queue until one closes"),
    PIPIT_OPT_DURATION("timeout", "10s", 1000, 300000, struct http_settings, timeout_ms,
                       "A connection idle this long is closed"),
    PIPIT_OPT_SIZE("max_request_bytes", "16KiB", 4096, 1048576, struct http_settings,
                   max_request_bytes, "Bound on a request's line and headers; "
                   "larger requests are refused"),
    PIPIT_OPT_DURATION("ready_grace", "30s", 0, 86400000, struct http_settings,
                       ready_grace_ms, "/readyz fails when an output with batches to "
                       "deliver has not delivered for this long since it began failing"),
    PIPIT_OPT_DURATION("stall_timeout", "10s", 2000, 3600000, struct http_settings,
                       stall_timeout_ms, "/healthz fails when the event loop has not "
                       "run for this long"),
    PIPIT_OPT_STRING("query_store", NULL, struct http_settings, query_store,
                     "Name of the sqlite output whose store the JSON query API (/v1/...) "
                     "and the status page (/) read; unset: both off"),
    PIPIT_OPT_DURATION("query_timeout", "5s", 100, 60000, struct http_settings,
                       query_timeout_ms, "A query running longer is stopped and answered "
                       "503"),
    PIPIT_OPT_INT("query_threads", "4", 1, 64, struct http_settings, query_threads,
                  "Server threads when query_store is set (a slow query holds one)"),
    PIPIT_OPT_END
};

const struct pipit_option settings_command_options[] = {
    PIPIT_OPT_STRING("brokers", NULL, struct command_settings, brokers,
                     "Kafka bootstrap servers of the command topic; set: the agent runs the "
                     "signed deployment commands addressed to it (docs/deployments.md)"),
    PIPIT_OPT_STRING("topic", "pipit.commands", struct command_settings, topic,
                     "Topic the signed commands are read from"),
    PIPIT_OPT_LIST("trusted_keys", struct command_settings, trusted_keys,
                   "Ed25519 public key files (pipit keygen); only commands signed by one of "
                   "them run"),
    PIPIT_OPT_LIST("allowed_actions", struct command_settings, allowed_actions,
                   "Actions a command's plan may use (exec, http, fetch, switch, "
                   "wait_healthy, service); others are refused"),
    PIPIT_OPT_MAP("labels", struct command_settings, labels,
                  "Labels of this agent that target selectors match (role: web)"),
    PIPIT_OPT_DURATION("max_skew", "60s", 0, 3600000, struct command_settings, max_skew_ms,
                       "Clock difference allowed at both ends of a command's validity"),
    PIPIT_OPT_MAP("rdkafka", struct command_settings, rdkafka,
                  "librdkafka consumer properties passed through (security.protocol, "
                  "sasl.*, ssl.*)"),
    PIPIT_OPT_END
};

const struct pipit_option settings_plugin_options[] = {
    PIPIT_OPT_BOOL("require_signature", "false", struct plugin_settings, require_signature,
                   "Load only plugins with a valid signature file PLUGIN.so.sig made by "
                   "pipit sign-plugin with a key of trusted_keys (docs/plugin-guide.md)"),
    PIPIT_OPT_LIST("trusted_keys", struct plugin_settings, trusted_keys,
                   "Ed25519 public key files (pipit keygen) plugins may be signed by"),
    PIPIT_OPT_END
};

/* The host's keys of an inputs:/outputs: entry. */
struct instance_keys {
    const char *plugin;
    const char *name;
    int64_t interval_ms;
    int64_t collect_timeout_ms;
    int64_t max_emit_bytes;
    const char *on_emit_limit;
    const char *isolation;
    const char *on_stall;
    int64_t memory_limit;
    struct pipit_strlist kinds;
};

const struct pipit_option settings_input_key_options[] = {
    PIPIT_OPT_STRING_REQ("plugin", struct instance_keys, plugin,
                         "Plugin name (loads in_NAME.so from plugin_dir) or a path"),
    PIPIT_OPT_STRING("name", NULL, struct instance_keys, name,
                     "Instance name, unique among inputs (default: the plugin name)"),
    PIPIT_OPT_DURATION("interval", NULL, 10, 86400000, struct instance_keys,
                       interval_ms, "Collection interval (default: agent.interval)"),
    PIPIT_OPT_DURATION("collect_timeout", "60s", 0, 86400000, struct instance_keys,
                       collect_timeout_ms, "A collect() still running this long after "
                       "it was started is a stall: in process the instance is reported "
                       "stalled and not scheduled again, isolated its process is killed "
                       "(see on_stall; docs/plugin-isolation.md); 0: no deadline"),
    PIPIT_OPT_SIZE("max_emit_bytes", NULL, 4096, 1073741824, struct instance_keys,
                   max_emit_bytes, "Bound on the records one collect() may emit; the "
                   "rest are dropped and counted (default: pipeline.max_collect_bytes)"),
    PIPIT_OPT_STRING("on_emit_limit", "drop", struct instance_keys, on_emit_limit,
                     "When one collect() passes max_emit_bytes: drop (the excess, keep "
                     "collecting) or disable (the instance too)"),
    PIPIT_OPT_STRING("isolation", "in_process", struct instance_keys, isolation,
                     "in_process (collect() on a worker thread of pipitd) or process "
                     "(the plugin runs in a host process of its own, restarted when it "
                     "crashes; docs/plugin-isolation.md)"),
    PIPIT_OPT_STRING("on_stall", NULL, struct instance_keys, on_stall,
                     "When collect() overruns collect_timeout: disable, or restart (kill "
                     "the host process and start it again; isolation: process only) "
                     "(default: restart with isolation: process, else disable)"),
    PIPIT_OPT_SIZE("memory_limit", NULL, 16777216, 1099511627776.0, struct instance_keys,
                   memory_limit, "Address-space limit (RLIMIT_AS) of the host process "
                   "(isolation: process only; default: none)"),
    PIPIT_OPT_END
};

const struct pipit_option settings_output_key_options[] = {
    PIPIT_OPT_STRING_REQ("plugin", struct instance_keys, plugin,
                         "Plugin name (loads out_NAME.so from plugin_dir) or a path"),
    PIPIT_OPT_STRING("name", NULL, struct instance_keys, name,
                     "Instance name, unique among outputs (default: the plugin name)"),
    PIPIT_OPT_LIST("kinds", struct instance_keys, kinds,
                   "Record kinds this output takes: metric, log, cost, event (default: all)"),
    PIPIT_OPT_END
};

const char *const settings_input_keys[] = {
    "plugin", "name", "interval", "collect_timeout", "max_emit_bytes", "on_emit_limit",
    "isolation", "on_stall", "memory_limit", NULL
};
const char *const settings_output_keys[] = { "plugin", "name", "kinds", NULL };

static const char *const top_keys[] = {
    "agent", "batch", "pipeline", "wire", "spool", "http", "commands", "plugins", "inputs",
    "outputs",
    NULL
};

static bool is_top_key(const char *k)
{
    for (int i = 0; top_keys[i]; i++)
        if (strcmp(k, top_keys[i]) == 0)
            return true;
    return false;
}

/* NULL-terminated names of a plugin's options (to skip in the host table). */
static const char **option_names(const struct pipit_option *opts)
{
    size_t n = 0;
    while (opts && opts[n].name)
        n++;
    const char **names = calloc(n + 1, sizeof *names);
    for (size_t i = 0; names && i < n; i++)
        names[i] = opts[i].name;
    return names;
}

/* An error at key of an entry, on the key's line. */
static void key_error(struct agent_conf *c, const struct conf_instance *ci,
                      const struct cfg_node *node, const char *k, const char *msg,
                      struct diag *d)
{
    const struct cfg_node *n = cfg_get(node, k);
    char key[64];
    snprintf(key, sizeof key, "%s.%s", ci->prefix, k);
    diag_add(d, c->file, n ? n->line : node->line, key, "%s", msg);
}

/*
 * isolation, on_stall and memory_limit of an input: restart and a memory
 * limit need a host process (a thread stuck in a call cannot be stopped,
 * nor its memory bounded); a host process runs collect() calls only.
 */
static void check_isolation(struct agent_conf *c, struct conf_instance *ci,
                            const struct cfg_node *node, const struct instance_keys *k,
                            const struct loader_plugin *lp, struct diag *d)
{
    if (strcmp(k->isolation, "process") == 0)
        ci->isolated = true;
    else if (strcmp(k->isolation, "in_process") != 0)
        key_error(c, ci, node, "isolation", "unknown isolation (expected in_process or "
                  "process)", d);
    ci->memory_limit = k->memory_limit;
    ci->restart_on_stall = ci->isolated;
    if (k->on_stall && strcmp(k->on_stall, "disable") == 0)
        ci->restart_on_stall = false;
    else if (k->on_stall && strcmp(k->on_stall, "restart") != 0)
        key_error(c, ci, node, "on_stall", "unknown policy (expected disable or restart)", d);
    else if (k->on_stall && !ci->isolated)
        key_error(c, ci, node, "on_stall", "restart needs isolation: process (a thread "
                  "stuck in a call cannot be stopped, so an in-process instance is only "
                  "disabled)", d);
    if (k->memory_limit && !ci->isolated)
        key_error(c, ci, node, "memory_limit", "needs isolation: process (the limit is "
                  "set on the plugin's own process)", d);
    if (ci->isolated && lp && !lp->desc.collect)
        key_error(c, ci, node, "isolation", "process isolation runs collect() calls; "
                  "this input has none (it is driven by its own events)", d);
}

/*
 * Validate one inputs:/outputs: entry: the host keys, the plugin (found,
 * safe, loadable, of the right kind) and the plugin's own options, which
 * are applied to a scratch context that is thrown away.
 */
static void load_instance(struct agent_conf *c, struct conf_instance *ci,
                          const struct cfg_node *node, unsigned role,
                          const char *plugin_dir, struct diag *d)
{
    const char *const *host_keys = role == PIPIT_COLLECTOR ? settings_input_keys
                                                           : settings_output_keys;
    const struct pipit_option *key_opts = role == PIPIT_COLLECTOR
                                          ? settings_input_key_options
                                          : settings_output_key_options;
    struct instance_keys keys = { 0 };
    char why[1024];

    ci->role = role;
    ci->node = node;
    if (node->type != CFG_MAP) {
        diag_add(d, c->file, node->line, ci->prefix,
                 "expected a map with at least a \"plugin\" key");
        return;
    }

    /* Host keys first; the plugin's keys are unknown yet, so skip all
     * others here and let the plugin's table judge them below. */
    const struct cfg_node *pnode = cfg_get(node, "plugin");
    const struct loader_plugin *lp = NULL;
    if (pnode && pnode->type == CFG_SCALAR && pnode->value && *pnode->value) {
        char *path = loader_resolve(plugin_dir, role, pnode->value);
        if (path)
            lp = loader_open(path, instance_api(), why, sizeof why);
        else if (errno == EINVAL)
            snprintf(why, sizeof why, "\"%s\" is not a plugin name (lower_snake: "
                     "a-z, 0-9 and _, at most 64) nor a path", pnode->value);
        else
            snprintf(why, sizeof why, "out of memory");
        if (!lp) {
            char key[64];
            snprintf(key, sizeof key, "%s.plugin", ci->prefix);
            diag_add(d, c->file, pnode->line, key, "%s", why);
        } else if (!(lp->desc.kinds & role)) {
            char key[64];
            snprintf(key, sizeof key, "%s.plugin", ci->prefix);
            diag_add(d, c->file, pnode->line, key, "%s is not %s plugin", path,
                     role == PIPIT_COLLECTOR ? "an input" : "an output");
            lp = NULL;
        }
        free(path);
    }

    const char **skip = lp ? option_names(lp->desc.options) : NULL;
    if (!lp) {
        /* Without the plugin, only the host keys can be checked: skip all. */
        size_t n = node->nchild;
        skip = calloc(n + 1, sizeof *skip);
        for (size_t i = 0; skip && i < n; i++)
            skip[i] = node->child[i]->key;
    }
    if (!skip) {
        diag_add(d, c->file, node->line, ci->prefix, "out of memory");
        return;
    }
    opt_apply(key_opts, node, skip, &keys, c->file, ci->prefix, &ci->store, d);
    free(skip);
    if (!ci->store)
        return;
    ci->plugin = keys.plugin;
    ci->name = keys.name ? keys.name : (lp ? lp->desc.name : keys.plugin);
    ci->interval_ms = keys.interval_ms;
    ci->collect_timeout_ms = keys.collect_timeout_ms;
    ci->max_emit_bytes = keys.max_emit_bytes;
    if (role == PIPIT_COLLECTOR) {
        check_isolation(c, ci, node, &keys, lp, d);
        if (strcmp(keys.on_emit_limit, "disable") == 0) {
            ci->on_emit_limit = EMIT_LIMIT_DISABLE;
        } else if (strcmp(keys.on_emit_limit, "drop") != 0) {
            const struct cfg_node *n = cfg_get(node, "on_emit_limit");
            char key[64];
            snprintf(key, sizeof key, "%s.on_emit_limit", ci->prefix);
            diag_add(d, c->file, n ? n->line : node->line, key, "unknown policy \"%s\" "
                     "(expected drop or disable)", keys.on_emit_limit);
        }
    }
    const struct cfg_node *inode = cfg_get(node, "interval");
    if (role == PIPIT_COLLECTOR && lp && !lp->desc.collect && inode &&
        !opt_find(lp->desc.options, "interval")) {
        /* The host schedules collect(); an input driven by its own events
         * would silently ignore the key. */
        char key[64];
        snprintf(key, sizeof key, "%s.interval", ci->prefix);
        diag_add(d, c->file, inode->line, key, "the %s input is not run on an interval "
                 "(it has no collect()); its own options set its timing",
                 lp->desc.name);
    }
    ci->kinds = keys.kinds;
    ci->lp = lp;
    if (role == PIPIT_OUTPUT) {
        ci->kind_mask = 0;
        for (size_t i = 0; i < keys.kinds.count; i++) {
            int k = record_kind_parse(keys.kinds.items[i]);
            if (!k) {
                char key[64];
                snprintf(key, sizeof key, "%s.kinds", ci->prefix);
                diag_add(d, c->file, node->line, key, "unknown record kind \"%s\" "
                         "(expected metric, log, cost or event)", keys.kinds.items[i]);
            }
            ci->kind_mask |= 1u << k;
        }
        if (keys.kinds.count == 0)
            for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
                ci->kind_mask |= 1u << k;
    }
    if (!lp)
        return;

    static const struct pipit_option no_options[] = { PIPIT_OPT_END };
    void *scratch = calloc(1, lp->desc.ctx_size ? lp->desc.ctx_size : 1);
    struct opt_store *store = NULL;
    if (!scratch) {
        diag_add(d, c->file, node->line, ci->prefix, "out of memory");
        return;
    }
    opt_apply(lp->desc.options ? lp->desc.options : no_options, node, host_keys,
              scratch, c->file, ci->prefix, &store, d);
    opt_store_free(store);
    free(scratch);
}

/* Validate a list section (inputs: or outputs:) and its instance names. */
static void load_list(struct agent_conf *c, const char *section, unsigned role,
                      const char *plugin_dir, struct diag *d)
{
    const struct cfg_node *seq = c->doc->root ? cfg_get(c->doc->root, section) : NULL;
    struct conf_instance **list = role == PIPIT_COLLECTOR ? &c->inputs : &c->outputs;
    size_t *count = role == PIPIT_COLLECTOR ? &c->ninputs : &c->noutputs;

    if (!seq)
        return;
    if (seq->type != CFG_SEQ) {
        if (!(seq->type == CFG_SCALAR && seq->plain && !*seq->value))
            diag_add(d, c->file, seq->line, section, "expected a list of instances");
        return;
    }
    if (role == PIPIT_OUTPUT && seq->nchild > SETTINGS_MAX_OUTPUTS) {
        diag_add(d, c->file, seq->line, section, "%zu outputs; at most %d are supported",
                 seq->nchild, SETTINGS_MAX_OUTPUTS);
        return;
    }
    *list = calloc(seq->nchild ? seq->nchild : 1, sizeof **list);
    if (!*list) {
        diag_add(d, c->file, seq->line, section, "out of memory");
        return;
    }
    *count = seq->nchild;
    for (size_t i = 0; i < seq->nchild; i++) {
        struct conf_instance *ci = &(*list)[i];
        snprintf(ci->prefix, sizeof ci->prefix, "%s[%zu]", section, i);
        load_instance(c, ci, seq->child[i], role, plugin_dir, d);
        if (!ci->name)
            continue;
        for (size_t j = 0; j < i; j++)
            if ((*list)[j].name && strcmp((*list)[j].name, ci->name) == 0) {
                char key[64];
                snprintf(key, sizeof key, "%s.name", ci->prefix);
                diag_add(d, c->file, seq->child[i]->line, key,
                         "instance name \"%s\" is already used by %s; give each a "
                         "distinct \"name\"", ci->name, (*list)[j].prefix);
                break;
            }
    }
}

/* Line of <section>.<key> in the document, or 0 when it is a default. */
static int section_line(const struct cfg_node *root, const char *section,
                        const char *key)
{
    const struct cfg_node *a = root ? cfg_get(root, section) : NULL;
    const struct cfg_node *n = a && a->type == CFG_MAP ? cfg_get(a, key) : NULL;
    return n ? n->line : 0;
}

static int key_line(const struct cfg_node *root, const char *key)
{
    return section_line(root, "agent", key);
}

/* A file key of http: must name a readable file. */
static void check_http_file(const struct agent_conf *c, const struct cfg_node *root,
                            const char *key, const char *path, struct diag *d)
{
    char name[32];
    if (!path)
        return;
    snprintf(name, sizeof name, "http.%s", key);
    if (!*path || access(path, R_OK) != 0)
        diag_add(d, c->file, section_line(root, "http", key), name,
                 "cannot read \"%s\": %s", path, *path ? strerror(errno) : "empty path");
}

/*
 * The endpoints are on: libmicrohttpd, which pipit opens only then, must
 * load. The error names the key that turned them on: http.enabled, or
 * agent.role when enabled follows the aggregator role.
 */
static void check_http_library(struct agent_conf *c, const struct cfg_node *root,
                               struct diag *d)
{
    char why[512];
    int line = section_line(root, "http", "enabled");

    if (!c->http.enabled || http_mhd_load(why, sizeof why) == PIPIT_OK)
        return;
    if (line)
        diag_add(d, c->file, line, "http.enabled", "the HTTP endpoints are on, but %s", why);
    else
        diag_add(d, c->file, key_line(root, "role"), "agent.role",
                 "the aggregator role turns the HTTP endpoints on (set http.enabled: "
                 "false to run without them), but %s", why);
}

/*
 * The http: section: enabled follows agent.role unless written; the listen
 * address parses; TLS needs both files; every file named is readable (the
 * token's contents are read only when the server starts, never logged);
 * libmicrohttpd loads when the endpoints are on.
 */
static void check_http(struct agent_conf *c, const struct cfg_node *root, struct diag *d)
{
    struct http_server_addr addr;
    char why[128];

    if (!section_line(root, "http", "enabled"))
        c->http.enabled = strcmp(c->agent.role, "aggregator") == 0;
    check_http_library(c, root, d);
    if (http_parse_listen(c->http.listen, &addr, why, sizeof why) != PIPIT_OK)
        diag_add(d, c->file, section_line(root, "http", "listen"), "http.listen",
                 "%s", why);
    if (!c->http.tls_cert != !c->http.tls_key)
        diag_add(d, c->file, section_line(root, "http", c->http.tls_cert ? "tls_cert"
                                                                          : "tls_key"),
                 c->http.tls_cert ? "http.tls_cert" : "http.tls_key",
                 "tls_cert and tls_key go together: set both or neither");
    check_http_file(c, root, "tls_cert", c->http.tls_cert, d);
    check_http_file(c, root, "tls_key", c->http.tls_key, d);
    check_http_file(c, root, "token_file", c->http.token_file, d);
}

/*
 * http.query_store names an output instance; it must be a sqlite output
 * with a path, which becomes http.query_db (borrowed from the document).
 */
static void check_query_store(struct agent_conf *c, const struct cfg_node *root,
                              struct diag *d)
{
    const char *name = c->http.query_store;
    int line = section_line(root, "http", "query_store");

    if (!name)
        return;
    for (size_t i = 0; i < c->noutputs; i++) {
        const struct conf_instance *ci = &c->outputs[i];
        if (!ci->name || strcmp(ci->name, name) != 0)
            continue;
        const char *plugin = ci->lp ? ci->lp->desc.name : ci->plugin;
        if (!plugin || strcmp(plugin, "sqlite") != 0) {
            diag_add(d, c->file, line, "http.query_store", "output \"%s\" is a %s output; "
                     "the query API reads sqlite stores only", name, plugin ? plugin : "?");
            return;
        }
        const struct cfg_node *p = ci->node ? cfg_get(ci->node, "path") : NULL;
        if (!p || p->type != CFG_SCALAR || !p->value || !*p->value) {
            diag_add(d, c->file, line, "http.query_store", "output \"%s\" has no path",
                     name);
            return;
        }
        c->http.query_db = p->value;
        return;
    }
    diag_add(d, c->file, line, "http.query_store", "no output is named \"%s\" (an "
             "output's name defaults to its plugin: sqlite)", name);
}

/*
 * The commands: section, when brokers is set: at least one trusted key,
 * each a readable Ed25519 public key; allowed actions that are plugin
 * names; labels that selectors can match.
 */
static void check_commands(struct agent_conf *c, const struct cfg_node *root,
                           struct diag *d)
{
    const struct command_settings *s = &c->commands;
    struct command_keyring ring = COMMAND_KEYRING_INIT;
    char err[512];

    if (!s->brokers || !*s->brokers)
        return;
    if (s->trusted_keys.count == 0)
        diag_add(d, c->file, section_line(root, "commands", "brokers"),
                 "commands.trusted_keys", "the command channel needs at least one trusted "
                 "public key (pipit keygen makes one)");
    for (size_t i = 0; i < s->trusted_keys.count; i++)
        if (command_keyring_add_file(&ring, s->trusted_keys.items[i], err, sizeof err) !=
            PIPIT_OK)
            diag_add(d, c->file, section_line(root, "commands", "trusted_keys"),
                     "commands.trusted_keys", "%s", err);
    command_keyring_free(&ring);
    for (size_t i = 0; i < s->allowed_actions.count; i++) {
        const char *a = s->allowed_actions.items[i];
        bool ok = *a && strlen(a) <= 64;
        for (const char *p = a; *p && ok; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
        if (!ok)
            diag_add(d, c->file, section_line(root, "commands", "allowed_actions"),
                     "commands.allowed_actions", "\"%s\" is not an action name", a);
    }
    for (size_t i = 0; i < s->labels.count; i++)
        if (!strcmp(s->labels.keys[i], "host") || !*s->labels.values[i])
            diag_add(d, c->file, section_line(root, "commands", "labels"),
                     "commands.labels", "label \"%s\": host is the host name, not a "
                     "label, and a label needs a value", s->labels.keys[i]);
}

/*
 * The plugins: section: with require_signature, at least one trusted key,
 * each a readable Ed25519 public key. Sets the loader's signature policy
 * for the plugins loaded next: off without require_signature, else the
 * keys that could be read (possibly none, so that every plugin is refused
 * while the file is being checked: signatures asked for are never skipped).
 */
static void check_plugins(struct agent_conf *c, const struct cfg_node *root,
                          struct diag *d)
{
    const struct plugin_settings *s = &c->plugins;
    struct command_keyring ring = COMMAND_KEYRING_INIT;
    char err[512];

    if (!c->stores[7])
        return;                         /* not a map: already an error */
    if (!s->require_signature) {
        loader_set_signature_policy(NULL);
        return;
    }
    if (s->trusted_keys.count == 0)
        diag_add(d, c->file, section_line(root, "plugins", "require_signature"),
                 "plugins.trusted_keys", "require_signature needs at least one trusted "
                 "public key (pipit keygen makes one; pipit sign-plugin signs with it)");
    for (size_t i = 0; i < s->trusted_keys.count; i++)
        if (command_keyring_add_file(&ring, s->trusted_keys.items[i], err, sizeof err) !=
            PIPIT_OK)
            diag_add(d, c->file, section_line(root, "plugins", "trusted_keys"),
                     "plugins.trusted_keys", "%s", err);
    if (loader_set_signature_policy(&ring) != PIPIT_OK)
        diag_add(d, c->file, 0, "plugins", "out of memory");
    command_keyring_free(&ring);
}

struct agent_conf *settings_load(const char *path, const char *plugin_dir,
                                 struct diag *d)
{
    size_t errors = d->count + d->dropped;
    struct agent_conf *c = calloc(1, sizeof *c);

    if (!c || !(c->file = strdup(path))) {
        diag_add(d, path, 0, NULL, "out of memory");
        free(c);
        return NULL;
    }
    c->doc = cfg_load_file(path, d);
    if (!c->doc)
        goto fail;

    const struct cfg_node *root = c->doc->root;
    if (root) {
        for (size_t i = 0; i < root->nchild; i++)
            if (!is_top_key(root->child[i]->key))
                diag_add(d, c->file, root->child[i]->line, root->child[i]->key,
                         "unknown section (expected agent, batch, pipeline, wire, "
                         "spool, http, commands, plugins, inputs or outputs)");
    }
    const struct cfg_node *sec;
#define SECTION(name, table, field, slot)                                       \
    sec = root ? cfg_get(root, name) : NULL;                                    \
    if (sec && sec->type == CFG_SCALAR && sec->plain && !*sec->value)           \
        sec = NULL;                     /* "agent:" with nothing under it */     \
    if (sec && sec->type != CFG_MAP)                                            \
        diag_add(d, c->file, sec->line, name, "expected a map of settings");    \
    else                                                                        \
        opt_apply(table, sec, NULL, &c->field, c->file, name, &c->stores[slot], d);
    SECTION("agent", settings_agent_options, agent, 0)
    SECTION("batch", settings_batch_options, batch, 1)
    SECTION("pipeline", settings_pipeline_options, pipeline, 2)
    SECTION("wire", settings_wire_options, wire, 3)
    SECTION("spool", settings_spool_options, spool, 4)
    SECTION("http", settings_http_options, http, 5)
    SECTION("commands", settings_command_options, commands, 6)
    SECTION("plugins", settings_plugin_options, plugins, 7)
#undef SECTION
    /* Before any plugin is loaded below: pipit check refuses what pipitd would. */
    check_plugins(c, root, d);

    if (c->stores[3]) {
        if (wire_codec_parse(c->wire.compression) < 0)
            diag_add(d, c->file, section_line(root, "wire", "compression"),
                     "wire.compression", "unknown or unavailable codec \"%s\" "
                     "(expected none, zlib%s)", c->wire.compression,
#ifdef HAVE_ZSTD
                     " or zstd"
#else
                     "; this build has no zstd"
#endif
                     );
        if (c->wire.signing_key && *c->wire.signing_key && strlen(c->wire.signing_key) < 16)
            diag_add(d, c->file, section_line(root, "wire", "signing_key"),
                     "wire.signing_key", "is shorter than 16 bytes; use a random key "
                     "of 32 bytes or more");
    }
    if (c->stores[4] && strcmp(c->spool.policy, "block") != 0 &&
        strcmp(c->spool.policy, "drop_oldest") != 0)
        diag_add(d, c->file, section_line(root, "spool", "policy"), "spool.policy",
                 "unknown policy \"%s\" (expected block or drop_oldest)", c->spool.policy);
    if (c->stores[4] && c->spool.dir && c->spool.dir[0] != '/')
        diag_add(d, c->file, section_line(root, "spool", "dir"), "spool.dir",
                 "must be an absolute path");

    if (c->stores[0] && strcmp(c->agent.role, "agent") != 0 &&
        strcmp(c->agent.role, "aggregator") != 0)
        diag_add(d, c->file, key_line(root, "role"), "agent.role",
                 "unknown role \"%s\" (expected agent or aggregator)", c->agent.role);
    if (c->stores[0] && c->stores[5])
        check_http(c, root, d);

    if (c->stores[0]) {
        if (log_level_parse(c->agent.log_level) < 0)
            diag_add(d, c->file, key_line(root, "log_level"), "agent.log_level",
                     "unknown level \"%s\" (expected error, warn, info, debug or trace)",
                     c->agent.log_level);
        if (strcmp(c->agent.log_format, "logfmt") && strcmp(c->agent.log_format, "json"))
            diag_add(d, c->file, key_line(root, "log_format"), "agent.log_format",
                     "unknown format \"%s\" (expected logfmt or json)",
                     c->agent.log_format);
        uid_t uid;
        gid_t gid;
        char why[512];
        if (c->agent.user && *c->agent.user &&
            privileges_lookup(c->agent.user, &uid, &gid, why, sizeof why) != PIPIT_OK)
            diag_add(d, c->file, key_line(root, "user"), "agent.user", "%s", why);
        if (!*c->agent.state_dir || c->agent.state_dir[0] != '/')
            diag_add(d, c->file, key_line(root, "state_dir"), "agent.state_dir", "must be an absolute path");
        const char *pdir = plugin_dir ? plugin_dir : c->agent.plugin_dir;
        load_list(c, "outputs", PIPIT_OUTPUT, pdir, d);
        load_list(c, "inputs", PIPIT_COLLECTOR, pdir, d);
        if (c->stores[5])
            check_query_store(c, root, d);
    }
    if (c->stores[6])
        check_commands(c, root, d);
    if (d->count + d->dropped > errors)
        goto fail;
    return c;
fail:
    settings_free(c);
    return NULL;
}

void settings_free(struct agent_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ninputs; i++)
        opt_store_free(c->inputs[i].store);
    for (size_t i = 0; i < c->noutputs; i++)
        opt_store_free(c->outputs[i].store);
    free(c->inputs);
    free(c->outputs);
    for (int i = 0; i < 8; i++)
        opt_store_free(c->stores[i]);
    cfg_free(c->doc);
    free(c->file);
    free(c);
}
