/* csv.h: an incremental RFC 4180 CSV row reader for the billing_export input. */
#ifndef PIPIT_BILLING_CSV_H
#define PIPIT_BILLING_CSV_H

#include <stddef.h>

/* Compiled into the plugin, its tests and its fuzz target; never exported. */
#define CSV_HIDDEN __attribute__((visibility("hidden")))

/* Results of csv_next_row(). */
#define CSV_ROW        1                /* a complete row was read */
#define CSV_NEED_MORE  0                /* the buffer ends inside a row */
#define CSV_ETOOLONG  -1                /* the row is longer than the cap */
#define CSV_ENOMEM    -2                /* out of memory */
#define CSV_EQUOTE    -3                /* text after a closing quote, or a
                                         * quote still open at the end */
#define CSV_SKIP      -4                /* more of a row already refused as
                                         * too long: skipped, not an error */

/* One parsed row: nfields NUL-terminated fields, valid until the next call
 * on the same struct or csv_row_free(). Zero-fill before the first use. */
struct csv_row {
    char **fields;                      /* nfields pointers into buf */
    size_t nfields;
    size_t cap_fields;                  /* allocated entries of fields */
    char *buf;                          /* unquoted field text */
    size_t cap_buf;                     /* allocated bytes of buf */
    int skipping;                       /* inside a too-long row's rest */
};

/*
 * Read one row from the len bytes at data, fields separated by delim (','
 * for RFC 4180; any byte but '"', '\r' and '\n'). A row ends at LF or CRLF
 * outside quotes; a quoted field may hold delimiters, doubled quotes and
 * line breaks; a quote inside an unquoted field is kept as text. When final
 * is non-zero the end of data also ends a row (a file without a last
 * newline). max_row caps the bytes of one row (0: none).
 *
 * Returns CSV_ROW with *used the bytes the row took (its line break
 * included). CSV_NEED_MORE when data ends inside the row (*used is 0: call
 * again with more data after it). CSV_EQUOTE with *used past the bad row.
 * CSV_ETOOLONG once a row passes max_row: *used reaches the next line
 * break, ignoring quotes (whose state a runaway row makes doubtful), or all
 * of data when none is there yet; then the calls that go on skipping the
 * same row return CSV_SKIP until its line break is passed.
 */
CSV_HIDDEN int csv_next_row(const char *data, size_t len, int final, size_t max_row,
                            char delim, struct csv_row *row, size_t *used);

/* Free what csv_next_row() allocated in row; row may be reused. */
CSV_HIDDEN void csv_row_free(struct csv_row *row);

#endif
