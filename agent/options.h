/* options.h: apply a declared option table (struct pipit_option) to a config map. */
#ifndef PIPIT_OPTIONS_H
#define PIPIT_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <pipit/plugin.h>
#include "config.h"
#include "diag.h"

/* Everything the options of one instance allocated: strings, lists, and the
 * raw text of each set key (for api->config_get). */
struct opt_store;

/*
 * Check every key of map against opts and store the values into ctx at each
 * option's offset; options absent from map get their default. Keys listed in
 * host_keys (NULL-terminated, may be NULL) belong to the host and are
 * skipped. Unknown keys, wrong types, out-of-range values and missing
 * required keys are all reported to d (file from `file`, keys prefixed with
 * `prefix`, e.g. "inputs[0]"), not only the first. Secret values never
 * appear in messages.
 *
 * map may be NULL (all defaults). On success returns PIPIT_OK and *store
 * (free with opt_store_free after the instance's fini). On error returns
 * PIPIT_ECONFIG, *store is NULL and ctx may be partly written.
 */
int opt_apply(const struct pipit_option *opts, const struct cfg_node *map,
              const char *const *host_keys, void *ctx, const char *file,
              const char *prefix, struct opt_store **store, struct diag *d);

/* The configured text of key (NULL when not set or unknown). */
const char *opt_store_get(const struct opt_store *s, const char *key);
void opt_store_free(struct opt_store *s);

/* Parse "1500", "250ms", "10s", "5m", "1h", "2d" into milliseconds. */
int opt_parse_duration(const char *s, int64_t *ms);
/* Parse "512", "64k", "64KiB", "16MiB", "1GB", "2G" into bytes (k = 1024). */
int opt_parse_size(const char *s, int64_t *bytes);
/* YAML 1.2 core booleans: true/false (any case), plus yes/no/on/off. */
int opt_parse_bool(const char *s, bool *v);

/* Name of an option type for messages and docs: "bool", "duration"... */
const char *opt_type_name(int type);

/* The option of the table opts (may be NULL) named key, or NULL. */
const struct pipit_option *opt_find(const struct pipit_option *opts, const char *key);

#endif
