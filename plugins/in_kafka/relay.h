/* relay.h: one JSON record line of an agent batch parsed back into a record for relaying. */
#ifndef PIPIT_IN_KAFKA_RELAY_H
#define PIPIT_IN_KAFKA_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <pipit/plugin.h>

/* Most labels a relayed record may carry (the host's own limit). */
#define RELAY_MAX_LABELS 64

/* Receives the parsed record; it is valid only during the call. Returns a
 * PIPIT_* status that relay_parse() hands back. */
typedef int (*relay_emit_cb)(void *arg, const struct pipit_record *rec);

/*
 * Parse one JSON record line (len bytes, no newline needed) of a batch of
 * kind (PIPIT_METRIC .. PIPIT_EVENT) into a record that keeps its host,
 * instance and time, with its origin: the line's own "origin" when it has
 * one (a record relayed before), else (agent, seq, index) of the batch.
 * Calls emit(arg, &rec) once and returns its status, or PIPIT_EPARSE
 * without calling emit for a line that is not a record of kind: not a JSON
 * object of that kind; no time > 0, host or instance; an origin that is not
 * {"agent":string,"seq":integer >= 0,"index":32-bit integer}; labels that
 * are not an object of at most RELAY_MAX_LABELS strings; more than 256
 * histogram buckets; a negative count or offset.
 */
int relay_parse(const char *line, size_t len, int kind, const char *agent, uint64_t seq,
                uint32_t index, relay_emit_cb emit, void *arg);

/* The same through jansson for any JSON text: what relay_parse() falls back
 * to for a line not in the form record_encode_json() writes. */
int relay_parse_json(const char *line, size_t len, int kind, const char *agent,
                     uint64_t seq, uint32_t index, relay_emit_cb emit, void *arg);

#endif
