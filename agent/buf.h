/* buf.h: a growable byte buffer with an optional hard limit. */
#ifndef PIPIT_BUF_H
#define PIPIT_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *data;                         /* NUL-terminated when len < cap */
    size_t len;                         /* bytes used */
    size_t cap;                         /* bytes allocated */
};

#define BUF_INIT { NULL, 0, 0 }

/* Make room for n more bytes. Returns 0 or PIPIT_ENOMEM. */
int buf_reserve(struct buf *b, size_t n);
/* buf_append() when the bytes do not fit: grows, then appends. */
int buf_append_grow(struct buf *b, const void *p, size_t n);

/*
 * Append n bytes (buf_puts: a C string; buf_putc: one byte) and keep the
 * data NUL-terminated. Inline: the encoder appends a few bytes at a time, and
 * the room is nearly always there already. Returns 0 (PIPIT_OK) or
 * PIPIT_ENOMEM.
 */
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
    if (b->cap - b->len <= n)           /* keep one byte for the NUL */
        return buf_append_grow(b, p, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

static inline int buf_putc(struct buf *b, char c)
{
    if (b->cap - b->len <= 1)
        return buf_append_grow(b, &c, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Append v in decimal (the hot path's integers, without printf). */
int buf_u64(struct buf *b, uint64_t v);
int buf_i64(struct buf *b, int64_t v);
/* Append s as a JSON string literal (with quotes), escaping as RFC 8259
 * requires; invalid UTF-8 bytes become U+FFFD. */
int buf_json_str(struct buf *b, const char *s, size_t n);
/* Append a double in the shortest form that reads back equal; non-finite
 * values become the JSON strings "NaN", "+Inf", "-Inf". */
int buf_json_num(struct buf *b, double v);
/* Give up the storage; the caller frees the returned pointer with free(). */
char *buf_steal(struct buf *b);
void buf_reset(struct buf *b);          /* len = 0, keep storage */
void buf_free(struct buf *b);

#endif
