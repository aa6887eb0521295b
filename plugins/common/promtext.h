/* promtext.h: a parser of the Prometheus text exposition format 0.0.4 that emits pipit records. */
#ifndef PIPIT_PROMTEXT_H
#define PIPIT_PROMTEXT_H

#include <stddef.h>
#include <pipit/plugin.h>

#define PROMTEXT_MAX_LINE    65536      /* bytes of one line, CR/LF excluded */
#define PROMTEXT_MAX_LABELS  64         /* labels of one sample */
#define PROMTEXT_MAX_BUCKETS 256        /* buckets of one histogram */
#define PROMTEXT_MAX_GROUPS  4096       /* label sets of one histogram family */

/*
 * Called once per finished record: a counter or gauge sample, a summary
 * quantile (a gauge with its "quantile" label), or a whole histogram. rec
 * and every string it points to are borrowed until the callback returns.
 */
typedef void (*promtext_emit_cb)(void *arg, const struct pipit_record *rec);
/* Called once per refused line (1-based) with the reason; the line is skipped. */
typedef void (*promtext_error_cb)(void *arg, unsigned long line, const char *reason);

struct promtext_stats {
    unsigned long lines;                /* lines read */
    unsigned long records;              /* records emitted */
    unsigned long errors;               /* lines or histograms refused */
};

/*
 * Parse len bytes of text and call emit for every record, error for every
 * malformed line (error may be NULL). A bad line is skipped and the rest is
 * still parsed. Input need not be NUL-terminated nor end with a newline.
 * st (may be NULL) receives the counts. Returns PIPIT_OK, or PIPIT_ENOMEM
 * when the working memory could not be allocated.
 */
int promtext_parse(const char *text, size_t len, promtext_emit_cb emit,
                   promtext_error_cb error, void *arg, struct promtext_stats *st);

/*
 * Number of sample lines in len bytes of text: lines that hold something
 * other than blanks and do not start with '#', well-formed or not. Cheap
 * (no parsing), so that a scraper can refuse a body with too many samples
 * before anything of it is emitted.
 */
size_t promtext_samples(const char *text, size_t len);

#endif
