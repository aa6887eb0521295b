/* csv.c: an incremental RFC 4180 CSV row reader for the billing_export input. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

/* Make room for n bytes of field text. */
static int csv_reserve_buf(struct csv_row *row, size_t n)
{
    if (n <= row->cap_buf)
        return 0;
    size_t cap = row->cap_buf ? row->cap_buf : 256;
    while (cap < n)
        cap *= 2;
    char *b = realloc(row->buf, cap);
    if (!b)
        return CSV_ENOMEM;
    row->buf = b;
    row->cap_buf = cap;
    return 0;
}

/* Start a field at offset o of buf. */
static int csv_add_field(struct csv_row *row, size_t o)
{
    if (row->nfields == row->cap_fields) {
        size_t cap = row->cap_fields ? row->cap_fields * 2 : 16;
        char **f = realloc(row->fields, cap * sizeof *f);
        if (!f)
            return CSV_ENOMEM;
        row->fields = f;
        row->cap_fields = cap;
    }
    row->fields[row->nfields++] = row->buf + o;
    return 0;
}

/* Skip to just past the next '\n' from data (quotes ignored): *used, and
 * whether it was found. */
static int csv_skip_line(const char *data, size_t len, size_t *used)
{
    const char *nl = memchr(data, '\n', len);

    *used = nl ? (size_t)(nl - data) + 1 : len;
    return nl != NULL;
}

int csv_next_row(const char *data, size_t len, int final, size_t max_row, char delim,
                 struct csv_row *row, size_t *used)
{
    enum { START, PLAIN, QUOTED, QUOTE, CLOSED } st = START;
    size_t o = 0, i, cap = max_row && max_row < len ? max_row : len;
    int bad = 0;

    row->nfields = 0;
    *used = 0;
    if (row->skipping) {
        if (csv_skip_line(data, len, used) || final)
            row->skipping = 0;
        return *used ? CSV_SKIP : CSV_NEED_MORE;
    }
    if (len == 0)
        return CSV_NEED_MORE;
    /* Field text never outgrows the input: a quote or delimiter read is at
     * most one byte written (the NUL that ends a field). */
    if (csv_reserve_buf(row, cap + 1) < 0 || csv_add_field(row, 0) < 0)
        return CSV_ENOMEM;
    for (i = 0; i < len; i++) {
        char c = data[i];

        if (max_row && i >= max_row) {
            if (!csv_skip_line(data + i, len - i, used) && !final)
                row->skipping = 1;
            *used += i;
            row->nfields = 0;
            return CSV_ETOOLONG;
        }
        if (st == QUOTED) {
            if (c == '"')
                st = QUOTE;
            else
                row->buf[o++] = c;
            continue;
        }
        if (st == QUOTE) {
            if (c == '"') {             /* a doubled quote is one quote */
                row->buf[o++] = '"';
                st = QUOTED;
                continue;
            }
            st = CLOSED;                /* and c is read after the field */
        }
        if (c == '\n' || (c == '\r' && i + 1 < len && data[i + 1] == '\n') ||
            (c == '\r' && i + 1 == len && final)) {
            *used = i + 1 + (c == '\r' && i + 1 < len);
            row->buf[o] = '\0';
            return bad ? CSV_EQUOTE : CSV_ROW;
        }
        if (c == '\r' && i + 1 == len)
            return CSV_NEED_MORE;       /* CRLF or a lone CR: next byte says */
        if (c == delim) {
            row->buf[o++] = '\0';
            if (csv_add_field(row, o) < 0)
                return CSV_ENOMEM;
            st = START;
        } else if (st == START && c == '"') {
            st = QUOTED;
        } else if (st == CLOSED) {
            bad = 1;                    /* "a"b: read on to the row's end */
        } else {
            row->buf[o++] = c;
            st = PLAIN;
        }
    }
    if (!final)
        return CSV_NEED_MORE;
    *used = len;
    row->buf[o] = '\0';
    return bad || st == QUOTED ? CSV_EQUOTE : CSV_ROW;
}

void csv_row_free(struct csv_row *row)
{
    free(row->fields);
    free(row->buf);
    memset(row, 0, sizeof *row);
}
