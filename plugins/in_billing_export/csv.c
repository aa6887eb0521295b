/* csv.c: an incremental RFC 4180 CSV row reader for the billing_export input. */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

/* Make room for n bytes of field text and one more field pointer. */
static int csv_reserve(struct csv_row *row, size_t n)
{
    if (n > row->cap_buf) {
        size_t cap = row->cap_buf ? row->cap_buf : 256;
        while (cap < n)
            cap *= 2;
        char *b = realloc(row->buf, cap);
        if (!b)
            return CSV_ENOMEM;
        row->buf = b;
        row->cap_buf = cap;
    }
    if (row->nfields + 1 > row->cap_fields) {
        size_t cap = row->cap_fields ? row->cap_fields * 2 : 16;
        char **f = realloc(row->fields, cap * sizeof *f);
        if (!f)
            return CSV_ENOMEM;
        row->fields = f;
        row->cap_fields = cap;
    }
    return 0;
}

/*
 * Find where the row starting at data ends (the index just past its newline,
 * or len when final and no newline is left) without copying; 0 when the row
 * is not complete yet. *toolong is set when the row passes max_row first.
 */
static size_t csv_row_end(const char *data, size_t len, int final,
                          size_t max_row, int *toolong)
{
    int quoted = 0;

    *toolong = 0;
    for (size_t i = 0; i < len; i++) {
        if (max_row && i >= max_row) {
            *toolong = 1;
            /* skip to the next newline outside quotes, or give up here */
            for (; i < len; i++) {
                if (data[i] == '"')
                    quoted = !quoted;
                else if (data[i] == '\n' && !quoted)
                    return i + 1;
            }
            return final ? len : 0;
        }
        if (data[i] == '"')
            quoted = !quoted;
        else if (data[i] == '\n' && !quoted)
            return i + 1;
    }
    return final ? len : 0;
}

int csv_next_row(const char *data, size_t len, int final, size_t max_row,
                 struct csv_row *row, size_t *used)
{
    int toolong;
    size_t end = csv_row_end(data, len, final, max_row, &toolong);
    size_t stop, o = 0, start;
    int quoted = 0, closed = 0;

    row->nfields = 0;
    *used = 0;
    if (end == 0)
        return CSV_NEED_MORE;           /* the caller caps what it buffers */
    *used = end;
    if (toolong)
        return CSV_ETOOLONG;
    stop = end;
    if (stop > 0 && data[stop - 1] == '\n')
        stop--;
    if (stop > 0 && data[stop - 1] == '\r')
        stop--;
    /* the text is at most the input, plus one NUL per field */
    if (csv_reserve(row, 2 * stop + 2) < 0)
        return CSV_ENOMEM;
    start = 0;
    row->fields[row->nfields++] = row->buf;
    for (size_t i = 0; i < stop; i++) {
        char c = data[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < stop && data[i + 1] == '"') {
                    row->buf[o++] = '"';
                    i++;
                } else {
                    quoted = 0;
                    closed = 1;
                }
            } else {
                row->buf[o++] = c;
            }
        } else if (c == ',') {
            row->buf[o++] = '\0';
            if (csv_reserve(row, 0) < 0)
                return CSV_ENOMEM;
            row->fields[row->nfields++] = row->buf + o;
            start = o;
            closed = 0;
        } else if (c == '"' && o == start && !closed) {
            quoted = 1;
        } else if (closed) {
            return CSV_EQUOTE;
        } else {
            row->buf[o++] = c;
        }
    }
    if (quoted)
        return CSV_EQUOTE;              /* the file ended inside quotes */
    row->buf[o] = '\0';
    return CSV_ROW;
}

void csv_row_free(struct csv_row *row)
{
    free(row->fields);
    free(row->buf);
    memset(row, 0, sizeof *row);
}
