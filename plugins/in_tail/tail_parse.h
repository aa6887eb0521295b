/* tail_parse.h: line splitting, multiline assembly and JSON / regex parsing of the tail input. */
#ifndef PIPIT_TAIL_PARSE_H
#define PIPIT_TAIL_PARSE_H

#include <pipit/plugin.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define TAIL_MAX_LABELS 32              /* labels taken from one parsed line */

enum tail_format {
    TAIL_FMT_NONE = 0,                  /* the line is the message */
    TAIL_FMT_JSON,                      /* a JSON object per line */
    TAIL_FMT_REGEX                      /* named groups of a regex */
};

/* What every file of one instance shares: limits and compiled patterns. */
struct tail_parse_conf {
    size_t max_line;                    /* longer lines are split */
    size_t max_record;                  /* multiline records are cut here */
    int format;                         /* enum tail_format */
    pcre2_code *start;                  /* start of a multiline record, or NULL */
    pcre2_code *regex;                  /* TAIL_FMT_REGEX pattern, or NULL */
};

/* Bad input and work seen, counted per instance. */
struct tail_counts {
    uint64_t lines;                     /* lines (or pieces) taken */
    uint64_t records;                   /* records handed to the emitter */
    uint64_t split;                     /* pieces of lines over max_line */
    uint64_t truncated;                 /* multiline records cut at max_record */
    uint64_t invalid_utf8;              /* byte sequences replaced by U+FFFD */
    uint64_t nul;                       /* NUL bytes replaced by U+FFFD */
    uint64_t parse_errors;              /* lines that did not parse as configured */
};

/* One record ready to emit. Strings valid during the callback only. */
struct tail_rec {
    const char *message;                /* valid UTF-8, NUL-terminated */
    size_t len;
    uint64_t offset;                    /* file offset of its first byte */
    uint64_t end;                       /* file offset after its last byte */
    int level;                          /* enum pipit_log_level */
    bool split;                         /* a piece of an over-long line */
    bool truncated;                     /* a multiline record cut at max_record */
    const struct pipit_label *labels;
    size_t nlabels;
};

/* Emitter: return 0 to go on, non-zero to stop the feed at this record. */
typedef int (*tail_emit_cb)(void *arg, const struct tail_rec *r);

/* The state of one file: the start of a line not ended yet and the
 * multiline record being assembled. */
struct tail_parser {
    const struct tail_parse_conf *conf;
    struct tail_counts *counts;
    char *line;                         /* max_line bytes */
    size_t line_len;
    uint64_t line_off;                  /* file offset of line[0] */
    bool line_cont;                     /* line continues a split piece */
    char *rec;                          /* multiline record, max_record bytes */
    size_t rec_len;
    uint64_t rec_off, rec_end;
    bool rec_open, rec_split, rec_truncated;
    uint64_t pos;                       /* file offset after the last byte fed */
    char *scratch;                      /* sanitised text and parse results */
    size_t scratch_cap;
    pcre2_match_data *md;
    struct pipit_label labels[TAIL_MAX_LABELS];
};

/* Compile the multiline start and parse regexes (either may be NULL) into
 * conf. On error writes "<what>: <reason> at offset N" to err and returns
 * PIPIT_EINVAL. */
int tail_conf_init(struct tail_parse_conf *conf, const char *start_re,
                   const char *parse_re, char *err, size_t errlen);
void tail_conf_free(struct tail_parse_conf *conf);

/* Make the parser of a file whose next byte is at file offset pos. */
int tail_parser_init(struct tail_parser *p, const struct tail_parse_conf *conf,
                     struct tail_counts *counts, uint64_t pos);
void tail_parser_free(struct tail_parser *p);
/* Forget what is pending and go on from offset pos (after a rewind). */
void tail_parser_reset(struct tail_parser *p, uint64_t pos);

/*
 * Feed n bytes that follow what was fed before. Complete records go to
 * emit; when emit asks to stop, returns its value (the caller rewinds to
 * the refused record's offset and resets), else 0.
 */
int tail_parser_feed(struct tail_parser *p, const char *buf, size_t n,
                     tail_emit_cb emit, void *arg);
/* Emit the pending multiline record; with partial, also a line that has
 * not ended (the file is gone or truncated). Returns as tail_parser_feed. */
int tail_parser_flush(struct tail_parser *p, bool partial, tail_emit_cb emit, void *arg);
/* True while a multiline record waits for its successor. */
bool tail_parser_pending(const struct tail_parser *p);
/* File offset up to which everything was emitted: the safe checkpoint. */
uint64_t tail_parser_safe(const struct tail_parser *p);

/* Copy n bytes to out as valid UTF-8: invalid sequences and NUL bytes
 * become U+FFFD (counted). out has room for 3 * n + 1 bytes; returns the
 * length written (out is NUL-terminated). */
size_t tail_utf8_clean(const char *in, size_t n, char *out, struct tail_counts *c);
/* Level of a level word (error, warn, info...), or 0 when unknown. */
int tail_level_of(const char *s, size_t n);

#endif
