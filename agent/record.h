/* record.h: checking a record from a plugin and encoding it as one JSON line. */
#ifndef PIPIT_RECORD_H
#define PIPIT_RECORD_H

#include <stddef.h>
#include <pipit/plugin.h>
#include "buf.h"

/* Name of a kind ("metric", "log", "cost", "event") or NULL if unknown. */
const char *record_kind_name(int kind);
/* Kind for a name, or 0. */
int record_kind_parse(const char *name);

/*
 * Check that rec is well-formed for its kind (struct_size, kind, required
 * fields: metric name and type, log message, cost currency, event name,
 * histogram arrays). Returns PIPIT_OK or PIPIT_EINVAL with a reason in err.
 */
int record_check(const struct pipit_record *rec, char *err, size_t errlen);

/*
 * Append rec to out as one line of JSON ending in '\n', in the fixed schema
 * of its kind (docs/records.md), with the host and instance given. A
 * time_ns of 0 is replaced by now_ns. rec must have passed record_check().
 * Returns PIPIT_OK or PIPIT_ENOMEM.
 */
int record_encode_json(struct buf *out, const struct pipit_record *rec,
                       const char *host, const char *instance, int64_t now_ns);

/* A cost record's amount_micros as the plugin set it, 0 when unset or when
 * the plugin was built before the field (ABI 1.0). */
int64_t record_cost_micros(const struct pipit_record *rec);
/* The exact amount of a checked cost record: amount_micros when set, else
 * amount rounded to micros half away from zero. */
int64_t record_cost_amount_micros(const struct pipit_record *rec);

/* CLOCK_REALTIME in nanoseconds. */
int64_t record_now_ns(void);

#endif
