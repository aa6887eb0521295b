/* statsd_parse.h: parse one StatsD / DogStatsD line in place, without allocating. */
#ifndef PIPIT_STATSD_PARSE_H
#define PIPIT_STATSD_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define STATSD_MAX_TAGS 32              /* more tags on one line: a bad line */
#define STATSD_MAX_LINE 4096            /* longer lines: a bad line */

enum statsd_type {
    STATSD_COUNTER = 'c',
    STATSD_GAUGE   = 'g',
    STATSD_TIMER   = 't',               /* ms, h and d */
    STATSD_SET     = 's'
};

/* One tag as written: key and value point into the line; a tag without ':'
 * has value_len 0. */
struct statsd_tag {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

/* A parsed line. Every pointer points into the caller's line. */
struct statsd_line {
    const char *name;                   /* before the first ':' */
    size_t name_len;
    const char *raw;                    /* value text (set members use it) */
    size_t raw_len;
    double value;                       /* parsed value (not for sets) */
    int type;                           /* enum statsd_type */
    bool delta;                         /* gauge written with a sign */
    double rate;                        /* sample rate in (0, 1], else 1 */
    size_t ntags;
    struct statsd_tag tags[STATSD_MAX_TAGS];
};

/*
 * Parse the line p[0..len) (no newline; a trailing '\r' is ignored) into
 * *out. Returns NULL when the line is good, or a short static reason
 * ("unknown type", "bad value", ...) when it is not.
 */
const char *statsd_parse_line(const char *p, size_t len, struct statsd_line *out);

/*
 * Parse a decimal number p[0..n) ("12", "-0.5", "1e3"; no hex, inf or nan)
 * into *out. Returns false when it is not one or not finite.
 */
bool statsd_parse_number(const char *p, size_t n, double *out);

#endif
