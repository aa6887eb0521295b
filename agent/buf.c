/* buf.c: a growable byte buffer, with the JSON string and number writers of the encoder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "buf.h"

int buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len > n)            /* keep one byte for the NUL */
        return PIPIT_OK;
    if (n > SIZE_MAX / 2 - b->len)
        return PIPIT_ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= n)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return PIPIT_ENOMEM;
    b->data = p;
    b->cap = cap;
    return PIPIT_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != PIPIT_OK)
        return PIPIT_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return PIPIT_OK;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(b->data ? b->data + b->len : NULL,
                      b->data ? b->cap - b->len : 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return PIPIT_EINVAL;
    if ((size_t)n >= b->cap - b->len || !b->data) {
        if (buf_reserve(b, (size_t)n + 1) != PIPIT_OK)
            return PIPIT_ENOMEM;
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    }
    b->len += (size_t)n;
    return PIPIT_OK;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

int buf_u64(struct buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof tmp;

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, tmp + n, sizeof tmp - n);
}

int buf_i64(struct buf *b, int64_t v)
{
    if (v >= 0)
        return buf_u64(b, (uint64_t)v);
    if (buf_putc(b, '-') != PIPIT_OK)
        return PIPIT_ENOMEM;
    return buf_u64(b, 0 - (uint64_t)v);
}

/* Length of the valid UTF-8 sequence at s (of at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;                       /* overlong, out of range, surrogate */
    return len;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/*
 * Append s[0..n) as a quoted JSON string. Runs of bytes that need no escape
 * are copied in one piece; control characters are escaped; bytes that are
 * not valid UTF-8 are replaced with U+FFFD so the output is always valid
 * JSON whatever a log file contains.
 */
int buf_json_str(struct buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    if (buf_reserve(b, n + 2) != PIPIT_OK)
        return PIPIT_ENOMEM;
    b->data[b->len++] = '"';
    while (i < n) {
        /* Eight plain bytes at a time: none below 0x20, none '"' or '\\',
         * none with the high bit set. (x - k * ONES) & ~x & HIGHS is not
         * zero exactly when some byte of x is below k (for k <= 0x80);
         * x ^ (c * ONES) has a zero byte where x has a byte c. */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            uint64_t q = w ^ (ONES * '"'), bs = w ^ (ONES * '\\');
            uint64_t ctl = (w - ONES * 0x20) & ~w;
            uint64_t quote = (q - ONES) & ~q, slash = (bs - ONES) & ~bs;
            if ((ctl | quote | slash | w) & HIGHS)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t ulen = c >= 0x80 ? utf8_seq_len(p + i, n - i) : 0;
        if (ulen) {
            i += ulen;
            continue;
        }
        if (buf_append(b, p + run, i - run) != PIPIT_OK)
            return PIPIT_ENOMEM;
        char esc[8];
        size_t elen = 2;
        esc[0] = '\\';
        switch (c) {
        case '"':  esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
                elen = 6;
            } else {                    /* invalid UTF-8: U+FFFD */
                memcpy(esc, "\xef\xbf\xbd", 3);
                elen = 3;
            }
        }
        if (buf_append(b, esc, elen) != PIPIT_OK)
            return PIPIT_ENOMEM;
        i++;
        run = i;
    }
    if (buf_append(b, p + run, i - run) != PIPIT_OK || buf_putc(b, '"') != PIPIT_OK)
        return PIPIT_ENOMEM;
    return PIPIT_OK;
}

/*
 * Append v as a JSON number: integers without a fraction, others with the
 * fewest significant digits (up to 17) that read back to the same double.
 */
int buf_json_num(struct buf *b, double v)
{
    char tmp[40];

    if (isnan(v))
        return buf_puts(b, "\"NaN\"");
    if (isinf(v))
        return buf_puts(b, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
    /* range first: converting a double outside long long's range is undefined */
    if (fabs(v) < 9007199254740992.0 && v == (double)(long long)v)
        return buf_i64(b, (int64_t)v);
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return buf_puts(b, tmp);
}

char *buf_steal(struct buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
