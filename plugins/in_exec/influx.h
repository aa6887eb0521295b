/* influx.h: a parser of InfluxDB line protocol that emits each numeric field as a pipit gauge. */
#ifndef PIPIT_INFLUX_H
#define PIPIT_INFLUX_H

#include "promtext.h"

#define INFLUX_MAX_FIELDS 256           /* fields of one line */

/*
 * Parse len bytes of line protocol (measurement[,tag=value…] field=value[,…]
 * [timestamp_ns]) and call emit once per numeric or boolean field: a gauge
 * named <measurement>.<field> labeled with the tags. String fields are
 * skipped. Malformed lines go to error (may be NULL) with their number and
 * are skipped; limits are those of promtext (line length, labels). Returns
 * PIPIT_OK or PIPIT_ENOMEM.
 */
int influx_parse(const char *text, size_t len, promtext_emit_cb emit,
                 promtext_error_cb error, void *arg, struct promtext_stats *st);

#endif
