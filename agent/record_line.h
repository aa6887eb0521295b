/* record_line.h: the JSON lines record_encode_json() writes, read back without a JSON library. */
#ifndef PIPIT_RECORD_LINE_H
#define PIPIT_RECORD_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pipit/plugin.h>

#define RECORD_LINE_MAX_LABELS 256
#define RECORD_LINE_MAX_BUCKETS 256

/* A line read back. Only strings and cap need be set (NULL and 0) before
 * the first read; the rest is filled by each read. */
struct record_line {
    struct pipit_record rec;            /* kind, time, host, instance, fields, labels */
    bool has_origin;                    /* rec.origin_* are the line's own */
    struct pipit_label labels[RECORD_LINE_MAX_LABELS];
    double bounds[RECORD_LINE_MAX_BUCKETS];
    uint64_t counts[RECORD_LINE_MAX_BUCKETS];
    char *strings;                      /* the decoded strings rec points into */
    size_t cap;
};

/*
 * Read one line that is exactly in the form record_encode_json() writes:
 * its keys in its order, no white space, strings of printable ASCII with
 * the short escapes, numbers in JSON's grammar and in range, no label
 * twice, no negative count, offset or sequence, a 32-bit index. That is
 * every line a pipit agent writes, read here about ten times faster than
 * through jansson. Returns true with l->rec filled (its strings valid until
 * the next call or record_line_free()), or false for a line in any other
 * form, or out of memory: the caller then reads it with jansson, which
 * tells why it is refused or reads what this reader does not.
 */
bool record_line_read(struct record_line *l, const char *line, size_t len);
void record_line_free(struct record_line *l);

#endif
