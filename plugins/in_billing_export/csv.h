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
#define CSV_EQUOTE    -3                /* text after a closing quote */

/* One parsed row: nfields NUL-terminated fields, valid until the next call
 * on the same struct or csv_row_free(). */
struct csv_row {
    char **fields;                      /* nfields pointers into buf */
    size_t nfields;
    size_t cap_fields;                  /* allocated entries of fields */
    char *buf;                          /* unquoted field text */
    size_t cap_buf;                     /* allocated bytes of buf */
};

/*
 * Read one row from the len bytes at data. A row ends at LF or CRLF outside
 * quotes; quoted fields may hold commas, doubled quotes and newlines. When
 * final is non-zero the end of data also ends a row (a file without a last
 * newline). On CSV_ROW, *used is the bytes the row took (its newline
 * included); on CSV_EQUOTE and CSV_ETOOLONG too, so the caller can skip the
 * bad row and go on. max_row caps the bytes of one row (0: none).
 */
CSV_HIDDEN int csv_next_row(const char *data, size_t len, int final,
                            size_t max_row, struct csv_row *row, size_t *used);

/* Free what csv_next_row() allocated in row; row may be reused. */
CSV_HIDDEN void csv_row_free(struct csv_row *row);

#endif
