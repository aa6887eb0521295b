/* diag.c: collect user-facing configuration errors and print or log them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* vasprintf, asprintf */
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "diag.h"
#include "log.h"

#define DIAG_DEFAULT_MAX 100            /* errors recorded before counting only */

void diag_init(struct diag *d)
{
    memset(d, 0, sizeof(*d));
    d->max = DIAG_DEFAULT_MAX;
}

/*
 * Copy s with control characters escaped ("\n", "\t", "\x1b"), so that a
 * message built from a hostile config cannot forge extra lines in a terminal
 * or a log. Returns a string to free(), or NULL (also for s NULL).
 */
static char *escape_dup(const char *s)
{
    size_t n = 0;
    char *out, *p;

    if (!s)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        n += (*c < 0x20 || *c == 0x7f) ? 4 : 1;
    if (!(out = malloc(n + 1)))
        return NULL;
    p = out;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '\n') {
            *p++ = '\\';
            *p++ = 'n';
        } else if (*c == '\t') {
            *p++ = '\\';
            *p++ = 't';
        } else if (*c < 0x20 || *c == 0x7f) {
            p += sprintf(p, "\\x%02x", *c);
        } else {
            *p++ = (char)*c;
        }
    }
    *p = '\0';
    return out;
}

/*
 * Record one error (see diag.h). Past d->max errors, or when memory runs
 * out, the error is only counted in d->dropped.
 */
void diag_add(struct diag *d, const char *file, int line, const char *key,
              const char *fmt, ...)
{
    struct diag_item it = { .line = line > 0 ? line : 0 };
    char *msg = NULL;
    size_t max = d->max ? d->max : DIAG_DEFAULT_MAX; /* zeroed, not initialised */
    va_list ap;
    int n;

    if (d->count >= max)
        goto drop;
    if (d->count == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct diag_item *items;
        if (cap > max)
            cap = max;
        items = realloc(d->items, cap * sizeof(*items));
        if (!items)
            goto drop;
        d->items = items;
        d->cap = cap;
    }
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg = NULL;
        goto drop;
    }
    it.msg = escape_dup(msg);
    it.file = escape_dup(file);
    it.key = escape_dup(key && *key ? key : NULL);
    if (!it.msg || (file && !it.file) || (key && *key && !it.key))
        goto drop;
    free(msg);
    d->items[d->count++] = it;
    return;
drop:
    free(msg);
    free(it.msg);
    free(it.file);
    free(it.key);
    d->dropped++;
}

/* Format one item as "file:line: key: msg", leaving out the parts it lacks.
 * Returns a string to free(), or NULL on out of memory. */
static char *format_item(const struct diag_item *it)
{
    char lbuf[24] = "";
    char *s = NULL;

    if (it->line > 0)
        snprintf(lbuf, sizeof(lbuf), "%s%d", it->file ? ":" : "line ", it->line);
    if (asprintf(&s, "%s%s%s%s%s%s", it->file ? it->file : "", lbuf,
                 (it->file || it->line > 0) ? ": " : "",
                 it->key ? it->key : "", it->key ? ": " : "", it->msg) < 0)
        return NULL;
    return s;
}

void diag_print(const struct diag *d, FILE *f)
{
    for (size_t i = 0; i < d->count; i++) {
        char *s = format_item(&d->items[i]);
        fprintf(f, "%s\n", s ? s : d->items[i].msg);
        free(s);
    }
    if (d->dropped)
        fprintf(f, "... and %zu more error%s\n", d->dropped,
                d->dropped == 1 ? "" : "s");
}

void diag_log(const struct diag *d, const char *module)
{
    for (size_t i = 0; i < d->count; i++) {
        char *s = format_item(&d->items[i]);
        log_line(PIPIT_LOG_ERROR, "pipitd", NULL, module, "%s",
                 s ? s : d->items[i].msg);
        free(s);
    }
    if (d->dropped)
        log_line(PIPIT_LOG_ERROR, "pipitd", NULL, module,
                 "... and %zu more error%s", d->dropped,
                 d->dropped == 1 ? "" : "s");
}

void diag_free(struct diag *d)
{
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].key);
        free(d->items[i].msg);
    }
    free(d->items);
    d->items = NULL;
    d->count = d->cap = 0;
    d->dropped = 0;
}
