/* buf.c: a growable byte buffer, with the JSON string and number writers of the encoder. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
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

int buf_append_grow(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != PIPIT_OK)
        return PIPIT_ENOMEM;
    return buf_append(b, p, n);
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

/* "00" to "99": buf_u64 writes two digits per division. */
static const char digit_pairs[201] =
    "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
    "5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

int buf_u64(struct buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = sizeof tmp;

    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;
        v /= 100;
        n -= 2;
        memcpy(tmp + n, digit_pairs + d, 2);
    }
    if (v >= 10) {
        n -= 2;
        memcpy(tmp + n, digit_pairs + v * 2, 2);
    } else {
        tmp[--n] = (char)('0' + v);
    }
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
 * How many bytes at the start of p[0..n) can be copied into a JSON string as
 * they are: none below 0x20, none '"' or '\\', none with the high bit set
 * (those are checked as UTF-8 one by one). Sixteen bytes at a time with SSE2,
 * then eight at a time, then one.
 */
static size_t json_plain_len(const unsigned char *p, size_t n)
{
    size_t i = 0;

#ifdef __SSE2__
    const __m128i below = _mm_set1_epi8(0x20);
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');

    while (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* signed: bytes 0x80-0xff are negative, so "< 0x20" takes them too */
        __m128i m = _mm_or_si128(_mm_cmplt_epi8(v, below),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                              _mm_cmpeq_epi8(v, bslash)));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#endif
    /* (x - k * ONES) & ~x & HIGHS is not zero exactly when some byte of x is
     * below k (for k <= 0x80); x ^ (c * ONES) has a zero byte where x has a
     * byte c. */
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t q = w ^ (ONES * '"'), bs = w ^ (ONES * '\\');
        uint64_t ctl = (w - ONES * 0x20) & ~w;
        uint64_t quote8 = (q - ONES) & ~q, slash = (bs - ONES) & ~bs;
        if ((ctl | quote8 | slash | w) & HIGHS)
            break;
        i += 8;
    }
    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' && p[i] < 0x80)
        i++;
    return i;
}

/* The escape of byte c, which is below 0x20, '"' or '\\', in esc; its length. */
static size_t json_escape(unsigned char c, char esc[6])
{
    static const char hex[] = "0123456789abcdef";

    esc[0] = '\\';
    switch (c) {
    case '"':  esc[1] = '"'; return 2;
    case '\\': esc[1] = '\\'; return 2;
    case '\n': esc[1] = 'n'; return 2;
    case '\r': esc[1] = 'r'; return 2;
    case '\t': esc[1] = 't'; return 2;
    case '\b': esc[1] = 'b'; return 2;
    case '\f': esc[1] = 'f'; return 2;
    }
    memcpy(esc, "\\u00", 4);
    esc[4] = hex[c >> 4];
    esc[5] = hex[c & 0xf];
    return 6;
}

/*
 * Append s[0..n) as a quoted JSON string. Runs of bytes that need no escape
 * are found by json_plain_len() and copied in one piece; valid UTF-8 is kept;
 * control characters, '"' and '\\' are escaped; bytes that are not valid
 * UTF-8 are replaced with U+FFFD so the output is always valid JSON whatever
 * a log file contains. Returns PIPIT_OK or PIPIT_ENOMEM.
 */
int buf_json_str(struct buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    if (buf_reserve(b, n + 2) != PIPIT_OK)
        return PIPIT_ENOMEM;
    b->data[b->len++] = '"';
    while (i < n) {
        i += json_plain_len(p + i, n - i);
        if (i >= n)
            break;
        unsigned char c = p[i];
        size_t ulen = c >= 0x80 ? utf8_seq_len(p + i, n - i) : 0;
        if (ulen) {
            i += ulen;
            continue;
        }
        char esc[6];
        size_t elen;
        if (c >= 0x80) {                /* invalid UTF-8: U+FFFD */
            memcpy(esc, "\xef\xbf\xbd", 3);
            elen = 3;
        } else {
            elen = json_escape(c, esc);
        }
        if (buf_append(b, p + run, i - run) != PIPIT_OK ||
            buf_append(b, esc, elen) != PIPIT_OK)
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
