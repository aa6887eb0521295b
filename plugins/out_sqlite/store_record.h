/* store_record.h: record lines parsed and checked for the stores (out_sqlite, out_postgres). */
#ifndef PIPIT_STORE_RECORD_H
#define PIPIT_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "buf.h"                        /* agent/buf.h, from libpipitwire */

struct record_line;                     /* agent/record_line.h */

/* Longest series key (name, host, instance and canonical labels together)
 * a store accepts: PostgreSQL's unique index refuses entries over ~2.7 KB,
 * and both stores must accept the same records. */
#define STORE_SERIES_KEY_MAX 2048
/* Largest |amount| of a cost line without amount_micros: its micros must
 * fit in int64_t (2^63 / 10^6). */
#define STORE_AMOUNT_MAX 9223372036854.0
/* Most labels one record may carry. */
#define STORE_LABELS_MAX 256

/* A growable byte buffer with an out-of-memory flag, for the stores' own
 * statements and keys; the record's labels and buckets use struct buf. */
struct store_buf {
    char *data;                         /* NUL-terminated when len > 0 */
    size_t len, cap;
    bool failed;                        /* an append ran out of memory */
};

/* Room for more bytes (and a NUL). Appends return 0, or -1 when out of
 * memory, which also sets failed until the caller clears it. */
int store_buf_reserve(struct store_buf *b, size_t more);
int store_buf_put(struct store_buf *b, const void *p, size_t n);
int store_buf_putc(struct store_buf *b, char c);
int store_buf_printf(struct store_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void store_buf_free(struct store_buf *b);

/*
 * One record line, checked against docs/records.md; zero-filled is empty.
 * Every string points into the parsed document (root) or into the record's
 * own buffers and is valid until the next store_rec_parse() or
 * store_rec_free().
 */
struct store_rec {
    json_t *root;                       /* the parsed line */
    int kind;                           /* PIPIT_METRIC .. PIPIT_EVENT */
    int64_t time;                       /* Unix ns */
    const char *host, *instance;

    /* The record key: from "origin" when present, else the batch's. */
    const char *agent;
    int64_t seq;
    int64_t idx;
    bool relayed;                       /* key came from "origin" */

    const char *labels;                 /* canonical JSON text, see below */
    size_t labels_len;

    /* metric */
    const char *name;                   /* also the event's name */
    const char *type;                   /* "gauge", "counter", "histogram" */
    bool has_value;                     /* false for histograms */
    double value;                       /* may be NaN or infinite */
    const char *buckets;                /* histograms: JSON text */
    size_t buckets_len;
    double sum;
    int64_t count;

    /* log */
    const char *level;
    const char *message;                /* also the event's detail, or NULL */
    const char *source;                 /* or NULL */
    bool has_offset;
    int64_t offset;

    /* cost */
    double amount;                      /* for readers; may round */
    int64_t amount_micros;              /* exact: millionths of the currency */
    const char *currency, *resource;
    int64_t period_start, period_end;

    /* event */
    const char *status;

    struct buf lbuf, bbuf;              /* storage of labels and buckets */
    struct record_line *line;           /* a line read without jansson */
};

/*
 * Parse and check one line (len bytes, no newline needed). The key is taken
 * from the record's "origin" when present, else (agent, seq, idx) of the
 * batch and line. Labels become canonical JSON: keys sorted by their bytes,
 * no spaces, only '"', '\' and control characters escaped, so equal label
 * sets give equal text. Returns 0, or -1 with the reason in err.
 */
int store_rec_parse(struct store_rec *r, const char *line, size_t len,
                    const char *agent, int64_t seq, int64_t idx,
                    char *err, size_t errlen);
/* The same through jansson alone: what store_rec_parse() falls back to for
 * a line not in the encoder's own form. */
int store_rec_parse_json(struct store_rec *r, const char *line, size_t len,
                         const char *agent, int64_t seq, int64_t idx,
                         char *err, size_t errlen);
void store_rec_free(struct store_rec *r);

/* Name of a record kind ("metric", ...), or "unknown". */
const char *store_kind_name(int kind);

/*
 * Walk the lines of a payload: *pos starts at 0. Sets *line and *len (the
 * newline excluded) and returns true while there is a line; a last empty
 * segment after the final newline is not a line.
 */
bool store_next_line(const char *payload, size_t size, size_t *pos,
                     const char **line, size_t *len);

#endif
