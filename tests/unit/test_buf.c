/* test_buf.c: the growable buffer, and the JSON string and number writers checked against jansson and against the one-byte-at-a-time writers they replaced. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include <pipit/plugin.h>
#include "buf.h"
#include "../tap.h"

/* xorshift64*: a fixed-seed generator, so that every run checks the same values. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void test_append_growth(void)
{
    struct buf b = BUF_INIT;
    char expect[10000];
    bool ok_all = true;

    for (size_t i = 0; i < sizeof expect; i++)
        expect[i] = (char)('a' + i % 26);
    /* 1, 2, 3... byte pieces: crosses the first capacity and several doublings */
    size_t off = 0, piece = 1;
    while (off < sizeof expect) {
        size_t n = piece < sizeof expect - off ? piece : sizeof expect - off;
        if (buf_append(&b, expect + off, n) != PIPIT_OK)
            ok_all = false;
        off += n;
        piece++;
        if (b.cap <= b.len || b.data[b.len] != '\0')
            ok_all = false;             /* always room for the NUL, and set */
    }
    ok(ok_all, "append: every call succeeded and kept a terminating NUL");
    is_int(b.len, sizeof expect, "append: length is the sum of the pieces");
    ok(b.len == sizeof expect && memcmp(b.data, expect, sizeof expect) == 0,
       "append: content is the pieces in order");

    buf_reset(&b);
    is_int(b.len, 0, "reset: length 0");
    ok(b.cap > 0 && b.data && b.data[0] == '\0', "reset: storage kept, empty string");

    is_int(buf_append(&b, "", 0), PIPIT_OK, "append of 0 bytes succeeds");
    is_str(b.data, "", "append of 0 bytes leaves the string empty");
    buf_puts(&b, "ab");
    buf_putc(&b, 'c');
    is_str(b.data, "abc", "puts and putc append");

    char *s = buf_steal(&b);
    is_str(s, "abc", "steal returns the content");
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "steal leaves the buffer empty");
    free(s);
    s = buf_steal(&b);
    ok(s && s[0] == '\0', "steal of a never-used buffer returns an empty string");
    free(s);
    buf_free(&b);
    buf_free(&b);                       /* twice is harmless */
    ok(b.data == NULL, "free twice is harmless");
}

static void test_printf_growth(void)
{
    struct buf b = BUF_INIT;
    char big[1000];

    is_int(buf_printf(&b, "%d-%s", 42, "x"), PIPIT_OK, "printf into an unused buffer");
    is_str(b.data, "42-x", "printf into an unused buffer: content");
    is_int(b.len, 4, "printf: length");

    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "[%s]", big);
    is_int(b.len, 4 + 2 + 999, "printf longer than the capacity: length");
    ok(b.data[4] == '[' && b.data[5] == 'z' && b.data[4 + 999] == 'z' &&
       b.data[4 + 1000] == ']' && b.data[b.len] == '\0',
       "printf longer than the capacity: content and NUL");

    /* Exactly filling the space left, then one byte more, at each size */
    bool exact = true;
    for (size_t want = 1; want < 600; want += 7) {
        struct buf c = BUF_INIT;
        buf_puts(&c, "x");
        size_t room = c.cap - c.len - 1;
        for (size_t fill = room > 1 ? room - 1 : 0; fill <= room + 1; fill++) {
            struct buf d = BUF_INIT;
            buf_puts(&d, "x");
            buf_printf(&d, "%*s", (int)fill, "");
            buf_printf(&d, "%0*d", (int)want, 7);
            if (d.len != 1 + fill + want || d.data[d.len] != '\0' ||
                d.data[d.len - 1] != '7' || d.cap <= d.len)
                exact = false;
            buf_free(&d);
        }
        buf_free(&c);
    }
    ok(exact, "printf at and around the capacity boundary: exact lengths");
    buf_free(&b);
}

/* Encode n bytes of s with buf_json_str; compare with want (a C string). */
static void json_str_is(const char *s, size_t n, const char *want, const char *what)
{
    struct buf b = BUF_INIT;
    int r = buf_json_str(&b, s, n);
    ok(r == PIPIT_OK && b.data && strcmp(b.data, want) == 0 && b.len == strlen(want),
       "json_str %s: exact output", what);
    if (!b.data || strcmp(b.data, want) != 0)
        diag("  got %s, want %s", b.data ? b.data : "(null)", want);
    buf_free(&b);
}

/*
 * Encode n bytes of s and parse the output with jansson: it must be a JSON
 * string whose decoded bytes are decoded[0..dlen).
 */
static void json_str_parses(const char *s, size_t n, const char *decoded,
                            size_t dlen, const char *what)
{
    struct buf b = BUF_INIT;
    json_error_t e;

    buf_json_str(&b, s, n);
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    ok(j && json_is_string(j) && json_string_length(j) == dlen &&
       memcmp(json_string_value(j), decoded, dlen) == 0,
       "json_str %s: jansson reads back the expected string", what);
    if (!j)
        diag("  jansson: %s in %s", e.text, b.data);
    json_decref(j);
    buf_free(&b);
}

static void test_json_str(void)
{
    json_str_is("", 0, "\"\"", "empty");
    json_str_is("plain text", 10, "\"plain text\"", "plain");
    json_str_is("a\"b", 3, "\"a\\\"b\"", "quote");
    json_str_is("a\\b", 3, "\"a\\\\b\"", "backslash");
    json_str_is("/", 1, "\"/\"", "slash is not escaped");
    json_str_is("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"", "short escapes");
    json_str_is("a\0b", 3, "\"a\\u0000b\"", "NUL inside the string");
    json_str_is("\x01\x1f", 2, "\"\\u0001\\u001f\"", "other control characters");
    json_str_is("\x7f", 1, "\"\x7f\"", "DEL passes through");
    json_str_is("abcdef", 3, "\"abc\"", "only n bytes are read");

    /* Every control character: the short escape or \u00XX, lowercase hex */
    bool ctl = true;
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c, want[16];
        struct buf b = BUF_INIT;
        switch (c) {
        case '\n': strcpy(want, "\"\\n\""); break;
        case '\r': strcpy(want, "\"\\r\""); break;
        case '\t': strcpy(want, "\"\\t\""); break;
        case '\b': strcpy(want, "\"\\b\""); break;
        case '\f': strcpy(want, "\"\\f\""); break;
        default:   snprintf(want, sizeof want, "\"\\u%04x\"", c);
        }
        buf_json_str(&b, &in, 1);
        if (strcmp(b.data, want) != 0) {
            diag("  control 0x%02x: got %s want %s", c, b.data, want);
            ctl = false;
        }
        buf_free(&b);
    }
    ok(ctl, "json_str: each of the 32 control characters escaped exactly");

    /* Valid multibyte UTF-8 passes through unchanged */
    static const char *const valid[] = {
        "\xc3\xa9",                     /* U+00E9 */
        "\xc2\x80",                     /* U+0080, smallest 2-byte */
        "\xdf\xbf",                     /* U+07FF */
        "\xe0\xa0\x80",                 /* U+0800, smallest 3-byte */
        "\xe2\x82\xac",                 /* U+20AC */
        "\xed\x9f\xbf",                 /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",                 /* U+E000, just above */
        "\xef\xbf\xbf",                 /* U+FFFF */
        "\xf0\x90\x80\x80",             /* U+10000, smallest 4-byte */
        "\xf0\x9d\x84\x9e",             /* U+1D11E */
        "\xf4\x8f\xbf\xbf",             /* U+10FFFF, the largest */
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        char in[32], want[40];
        snprintf(in, sizeof in, "x%sy", valid[i]);
        snprintf(want, sizeof want, "\"x%sy\"", valid[i]);
        json_str_is(in, strlen(in), want, "valid UTF-8 sequence");
        json_str_parses(in, strlen(in), in, strlen(in), "valid UTF-8 sequence");
    }

    /* Invalid UTF-8: each byte that does not start a valid sequence becomes U+FFFD */
#define R "\xef\xbf\xbd"
    static const struct { const char *in, *want, *what; } bad[] = {
        { "\x80", "\"" R "\"", "lone continuation byte" },
        { "\xbf", "\"" R "\"", "lone continuation byte 0xbf" },
        { "\xc0\x80", "\"" R R "\"", "overlong NUL (c0 80)" },
        { "\xc1\xbf", "\"" R R "\"", "overlong 2-byte (c1 bf)" },
        { "\xe0\x80\x80", "\"" R R R "\"", "overlong 3-byte (e0 80 80)" },
        { "\xe0\x9f\xbf", "\"" R R R "\"", "overlong 3-byte (e0 9f bf)" },
        { "\xf0\x80\x80\x80", "\"" R R R R "\"", "overlong 4-byte (f0 80 80 80)" },
        { "\xf0\x8f\xbf\xbf", "\"" R R R R "\"", "overlong 4-byte (f0 8f bf bf)" },
        { "\xed\xa0\x80", "\"" R R R "\"", "surrogate U+D800" },
        { "\xed\xbf\xbf", "\"" R R R "\"", "surrogate U+DFFF" },
        { "\xf4\x90\x80\x80", "\"" R R R R "\"", "above U+10FFFF" },
        { "\xf5\x80\x80\x80", "\"" R R R R "\"", "lead byte f5" },
        { "\xff", "\"" R "\"", "byte ff" },
        { "\xfe", "\"" R "\"", "byte fe" },
        { "a\xe2\x82", "\"a" R R "\"", "truncated at the end" },
        { "\xe2\x82z", "\"" R R "z\"", "truncated before ASCII" },
        { "\xc3\xa9\x80\xc3\xa9", "\"\xc3\xa9" R "\xc3\xa9\"", "stray byte between valid ones" },
        { "\x80\"\n", "\"" R "\\\"\\n\"", "invalid byte before escapes" },
    };
#undef R
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_str_is(bad[i].in, strlen(bad[i].in), bad[i].want, bad[i].what);
        /* the decoded string is what was written between the quotes, unescaped */
        json_t *want = json_loads(bad[i].want, JSON_DECODE_ANY, NULL);
        json_str_parses(bad[i].in, strlen(bad[i].in),
                        want ? json_string_value(want) : "",
                        want ? json_string_length(want) : 1, bad[i].what);
        json_decref(want);
    }

    json_str_parses("q\"b\\n\nt\tz\x01", 11, "q\"b\\n\nt\tz\x01", 11, "mixed escapes");
    json_str_parses("a\0b", 3, "a\0b", 3, "NUL");

    /* Random bytes: the output is always a JSON string jansson accepts
     * (jansson refuses invalid UTF-8), and ASCII-only input reads back as is */
    bool all_parse = true, ascii_same = true;
    for (int round = 0; round < 2000; round++) {
        unsigned char in[64];
        size_t n = rng() % sizeof in;
        bool ascii = round % 2 == 0;
        for (size_t i = 0; i < n; i++)
            in[i] = (unsigned char)(ascii ? rng() % 0x80 : rng() % 0x100);
        struct buf b = BUF_INIT;
        buf_json_str(&b, (const char *)in, n);
        json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!j || !json_is_string(j)) {
            all_parse = false;
        } else if (ascii && (json_string_length(j) != n ||
                             memcmp(json_string_value(j), in, n) != 0)) {
            ascii_same = false;
        }
        json_decref(j);
        buf_free(&b);
    }
    ok(all_parse, "json_str: 2000 random byte strings all encode to valid JSON");
    ok(ascii_same, "json_str: 1000 random ASCII strings read back unchanged");

    /* Appends after what is already in the buffer */
    struct buf b = BUF_INIT;
    buf_puts(&b, "k=");
    buf_json_str(&b, "v", 1);
    buf_putc(&b, ';');
    is_str(b.data, "k=\"v\";", "json_str appends to existing content");
    buf_free(&b);
}

static void json_num_is(double v, const char *want, const char *what)
{
    struct buf b = BUF_INIT;
    int r = buf_json_num(&b, v);
    ok(r == PIPIT_OK && b.data && strcmp(b.data, want) == 0, "json_num %s: %s", what, want);
    if (!b.data || strcmp(b.data, want) != 0)
        diag("  got %s", b.data ? b.data : "(null)");
    buf_free(&b);
}

/* Significant digits of a number as text: leading and trailing zeros aside. */
static int sig_digits(const char *s)
{
    char d[64];
    int n = 0;

    for (; *s && *s != 'e' && *s != 'E' && n < 63; s++)
        if (*s >= '0' && *s <= '9' && (n > 0 || *s != '0'))
            d[n++] = *s;
    while (n > 0 && d[n - 1] == '0')
        n--;
    return n;
}

static void test_json_num(void)
{
    json_num_is(0, "0", "zero");
    json_num_is(1, "1", "one");
    json_num_is(-42, "-42", "negative integer");
    json_num_is(1e15, "1000000000000000", "1e15 as an integer");
    json_num_is(9007199254740991.0, "9007199254740991", "2^53-1, the largest exact integer");
    json_num_is(9007199254740992.0, "9007199254740992", "2^53");
    json_num_is(1e16, "1e+16", "1e16");
    json_num_is(0.1, "0.1", "0.1");
    json_num_is(0.3, "0.3", "0.3");
    json_num_is(0.1 + 0.2, "0.30000000000000004", "0.1+0.2 needs 17 digits");
    json_num_is(4.35, "4.35", "4.35");
    json_num_is(-1.5, "-1.5", "-1.5");
    json_num_is(123.456, "123.456", "123.456");
    json_num_is(1e-7, "1e-07", "1e-7");
    json_num_is(1e300, "1e+300", "1e300");
    json_num_is(-1e300, "-1e+300", "-1e300");
    json_num_is(1e21, "1e+21", "1e21");
    json_num_is(1.7976931348623157e308, "1.7976931348623157e+308", "DBL_MAX");
    /* -0.0 reads back equal (== 0.0); the sign of zero is not kept */
    json_num_is(-0.0, "0", "-0.0");
    json_num_is(NAN, "\"NaN\"", "NaN");
    json_num_is(-NAN, "\"NaN\"", "-NaN");
    json_num_is(INFINITY, "\"+Inf\"", "+Inf");
    json_num_is(-INFINITY, "\"-Inf\"", "-Inf");

    /*
     * Random doubles (random bit patterns, all exponents, and short decimals):
     * strtod reads each output back to the same bits, jansson parses it as a
     * number of the same value, and it never has more than 17 digits.
     */
    int bad_rt = 0, bad_json = 0, bad_len = 0, bad_short = 0, n = 0;
    for (int i = 0; i < 20000; i++) {
        double v;
        if (i % 2 == 0) {
            uint64_t bits = rng();
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v))
                continue;
        } else {
            /* a decimal of up to 15 digits: printed with no more digits than that */
            char dec[64];
            long long mant = (long long)(rng() % 1000000000000000ull);
            int exp = (int)(rng() % 41) - 20;
            snprintf(dec, sizeof dec, "%lldE%d", mant, exp);
            v = strtod(dec, NULL);
            struct buf b = BUF_INIT;
            buf_json_num(&b, v);
            snprintf(dec, sizeof dec, "%lld", mant);
            if (!(fabs(v) < 9007199254740992.0 && v == trunc(v)) &&
                sig_digits(b.data) > sig_digits(dec))
                bad_short++;
            buf_free(&b);
        }
        n++;
        struct buf b = BUF_INIT;
        buf_json_num(&b, v);
        double back = strtod(b.data, NULL);
        if (memcmp(&back, &v, sizeof v) != 0 && !(v == 0 && back == 0))
            bad_rt++;
        json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
        if (!j || !json_is_number(j) || json_number_value(j) != v)
            bad_json++;
        json_decref(j);
        if (sig_digits(b.data) > 17)
            bad_len++;
        buf_free(&b);
    }
    diag("%d random doubles checked", n);
    is_int(bad_rt, 0, "json_num: strtod reads every random double back bit for bit");
    is_int(bad_json, 0, "json_num: jansson parses every one as the same number");
    is_int(bad_len, 0, "json_num: no output has more than 17 significant digits");
    is_int(bad_short, 0, "json_num: decimals of up to 15 digits print with no more digits");

    struct buf b = BUF_INIT;
    buf_puts(&b, "[");
    buf_json_num(&b, 2);
    buf_putc(&b, ',');
    buf_json_num(&b, 0.5);
    buf_putc(&b, ']');
    is_str(b.data, "[2,0.5]", "json_num appends to existing content");
    buf_free(&b);
}

/*
 * The byte-at-a-time escaping that buf_json_str's eight-byte scan must
 * agree with: one special byte (or a two-byte UTF-8 sequence) at every
 * position of plain strings of lengths 1 to 40, so that it falls in the
 * first, a middle and the last word, and in the tail shorter than a word.
 */
static void test_json_str_words(void)
{
    static const struct { const char *in, *out; } specials[] = {
        { "\"", "\\\"" }, { "\\", "\\\\" }, { "\n", "\\n" }, { "\x01", "\\u0001" },
        { "\x1f", "\\u001f" }, { "\x80", "\xef\xbf\xbd" }, { "\xff", "\xef\xbf\xbd" },
        { "\xc3\xa9", "\xc3\xa9" }, { "\x7f", "\x7f" }, { " ", " " }, { "!", "!" },
        { "#", "#" }, { "[", "[" }, { "]", "]" },
    };
    size_t cases = 0, wrong = 0;

    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        for (size_t len = 1; len <= 40; len++) {
            for (size_t at = 0; at < len; at++) {
                char in[64], want[128];
                size_t sl = strlen(specials[k].in), n = 0, w = 0;

                want[w++] = '"';
                for (size_t i = 0; i < len; i++) {
                    if (i == at) {
                        memcpy(in + n, specials[k].in, sl);
                        n += sl;
                        w += (size_t)sprintf(want + w, "%s", specials[k].out);
                    } else {
                        in[n++] = (char)('a' + i % 26);
                        want[w++] = (char)('a' + i % 26);
                    }
                }
                want[w++] = '"';
                want[w] = '\0';
                struct buf b = BUF_INIT;
                cases++;
                if (buf_json_str(&b, in, n) != PIPIT_OK || b.len != w || strcmp(b.data, want)) {
                    if (!wrong)
                        diag("  special %zu at %zu of %zu: got %s, want %s", k, at, len,
                             b.data ? b.data : "(null)", want);
                    wrong++;
                }
                buf_free(&b);
            }
        }
    }
    ok(wrong == 0, "json_str: %zu cases of one special byte at every position agree with "
       "byte-at-a-time escaping (%zu differ)", cases, wrong);
}

static void test_integers(void)
{
    struct buf b = BUF_INIT;

    buf_u64(&b, 0);
    buf_putc(&b, ' ');
    buf_u64(&b, 7);
    buf_putc(&b, ' ');
    buf_u64(&b, UINT64_MAX);
    buf_putc(&b, ' ');
    buf_i64(&b, -1);
    buf_putc(&b, ' ');
    buf_i64(&b, INT64_MIN);
    buf_putc(&b, ' ');
    buf_i64(&b, INT64_MAX);
    is_str(b.data, "0 7 18446744073709551615 -1 -9223372036854775808 9223372036854775807",
           "u64/i64: zero, one digit, both ends of both ranges");
    buf_free(&b);
}

/* This file is built twice: once against the core library (SSE2 on x86-64)
 * and once with buf.c compiled without __SSE2__ (the portable path). */
#ifdef __SSE2__
#define PATH_NAME "sse2"
#else
#define PATH_NAME "portable"
#endif

/*
 * The reference: what buf_json_str() wrote before, one byte at a time, into
 * out (at least 6 * n + 2 bytes); returns the length. Valid UTF-8 is decided
 * here from RFC 3629's table of byte ranges, not by buf.c's code.
 */
static size_t ref_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (len > n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

static size_t ref_json_str(char *out, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;

    out[o++] = '"';
    while (i < n) {
        unsigned char c = p[i];
        size_t ulen;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            out[o++] = (char)c;
            i++;
        } else if (c >= 0x80 && (ulen = ref_utf8_len(p + i, n - i)) != 0) {
            memcpy(out + o, p + i, ulen);
            o += ulen;
            i += ulen;
        } else {
            switch (c) {
            case '"':  memcpy(out + o, "\\\"", 2); o += 2; break;
            case '\\': memcpy(out + o, "\\\\", 2); o += 2; break;
            case '\n': memcpy(out + o, "\\n", 2); o += 2; break;
            case '\r': memcpy(out + o, "\\r", 2); o += 2; break;
            case '\t': memcpy(out + o, "\\t", 2); o += 2; break;
            case '\b': memcpy(out + o, "\\b", 2); o += 2; break;
            case '\f': memcpy(out + o, "\\f", 2); o += 2; break;
            default:
                if (c < 0x20) {
                    memcpy(out + o, "\\u00", 4);
                    out[o + 4] = hex[c >> 4];
                    out[o + 5] = hex[c & 0xf];
                    o += 6;
                } else {
                    memcpy(out + o, "\xef\xbf\xbd", 3);
                    o += 3;
                }
            }
            i++;
        }
    }
    out[o++] = '"';
    return o;
}

static unsigned ref_checked, ref_mismatched;

/* Compare buf_json_str(s) with the reference, after a prefix of plen bytes
 * already in the buffer (so that the string starts at any alignment). */
static void check_str(const unsigned char *s, size_t n, size_t plen)
{
    static char want[6 * 1024 + 2];
    struct buf b = BUF_INIT;

    ref_checked++;
    for (size_t k = 0; k < plen; k++)
        buf_putc(&b, 'p');
    size_t wlen = ref_json_str(want, s, n);
    bool same = buf_json_str(&b, (const char *)s, n) == PIPIT_OK &&
                b.len == plen + wlen && memcmp(b.data + plen, want, wlen) == 0 &&
                b.data[b.len] == '\0';
    if (!same && ref_mismatched++ < 5) {
        diag("mismatch for %zu bytes at offset %zu:", n, plen);
        for (size_t k = 0; k < n; k++)
            fprintf(stderr, "%02x%s", s[k], k + 1 < n ? " " : "\n");
    }
    buf_free(&b);
}

/* Every string of the form plain[k] + piece + plain[m]: the piece at every
 * position around the 8-, 16- and 32-byte steps, and at the end. */
static void check_around(const char *piece, size_t plen)
{
    unsigned char s[128];

    for (size_t before = 0; before <= 40; before++) {
        for (size_t after = 0; after <= 20; after++) {
            size_t n = 0;
            for (size_t k = 0; k < before; k++)
                s[n++] = (unsigned char)('a' + k % 26);
            memcpy(s + n, piece, plen);
            n += plen;
            for (size_t k = 0; k < after; k++)
                s[n++] = (unsigned char)('A' + k % 26);
            check_str(s, n, 0);
        }
    }
}

static void test_json_str_reference(void)
{
    /* pieces that each need a decision: UTF-8 of each length at the edges of
     * its range, invalid sequences, truncated ones, quotes, backslashes */
    static const char *const pieces[] = {
        "\xc2\x80", "\xc3\xa9", "\xdf\xbf",                     /* 2 bytes */
        "\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf", "\xee\x80\x80",
        "\xef\xbf\xbf",                                         /* 3 bytes */
        "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", /* 4 bytes */
        "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf",  /* overlong */
        "\xed\xa0\x80", "\xed\xbf\xbf",                         /* surrogates */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8", "\xff", "\xfe",
        "\x80", "\xbf", "\xc3", "\xe2\x82", "\xf0\x9f\x98",      /* truncated */
        "\xc3\x28", "\xe2\x28\xa1", "\xf0\x28\x8c\x28",
        "\"", "\\", "\\\"", "\"\"", "\\\\", "\x7f", " ", "/", "\x1f\x20",
        "\r\n", "\t\b\f",
    };
    unsigned char s[1024];

    /* every byte alone, and at every position around the steps */
    for (unsigned c = 0; c < 256; c++) {
        char one[2] = { (char)c, 0 };
        s[0] = (unsigned char)c;
        check_str(s, 1, 0);
        if (c)
            check_around(one, 1);
        else
            check_around("\0", 1);
    }
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++)
        check_around(pieces[k], strlen(pieces[k]));
    /* plain strings of every length up to 100, at every alignment */
    for (size_t n = 0; n <= 100; n++) {
        for (size_t k = 0; k < n; k++)
            s[k] = (unsigned char)('#' + k % 57);   /* '#' to '[': no quote, no backslash */
        for (size_t plen = 0; plen < 16; plen++)
            check_str(s, n, plen);
    }
    /* random strings drawn mostly from the bytes that need a decision */
    static const unsigned char tricky[] = {
        0x00, 0x01, 0x08, 0x09, 0x0a, 0x0c, 0x0d, 0x1f, 0x20, '"', '\\', 0x7f,
        0x80, 0xbf, 0xc2, 0xc3, 0xdf, 0xe0, 0xe2, 0xed, 0xef, 0xf0, 0xf4, 0xf5,
        0xff,
    };
    for (int r = 0; r < 30000; r++) {
        size_t n = rng() % (r % 10 == 0 ? 1000 : 80);
        for (size_t k = 0; k < n; k++) {
            uint64_t x = rng();
            s[k] = x % 3 ? (unsigned char)('a' + (x >> 8) % 26)
                         : x % 2 ? tricky[(x >> 8) % sizeof tricky]
                                 : (unsigned char)(x >> 16);
        }
        check_str(s, n, rng() % 20);
    }
    ok(ref_mismatched == 0, "%s: buf_json_str equals the reference over %u strings",
       PATH_NAME, ref_checked);
}

static void check_num(uint64_t u, int64_t i, unsigned *bad)
{
    char want[32];
    struct buf b = BUF_INIT;

    snprintf(want, sizeof want, "%llu", (unsigned long long)u);
    if (buf_u64(&b, u) != PIPIT_OK || strcmp(b.data, want) != 0) {
        if ((*bad)++ < 5)
            diag("buf_u64(%s) wrote %s", want, b.data ? b.data : "(nothing)");
    }
    buf_reset(&b);
    snprintf(want, sizeof want, "%lld", (long long)i);
    if (buf_i64(&b, i) != PIPIT_OK || strcmp(b.data, want) != 0) {
        if ((*bad)++ < 5)
            diag("buf_i64(%s) wrote %s", want, b.data ? b.data : "(nothing)");
    }
    buf_free(&b);
}

static void test_integers_reference(void)
{
    unsigned bad = 0, n = 0;

    /* every power of ten and its neighbours, both signs, the extremes */
    uint64_t p = 1;
    for (int e = 0; e < 20; e++, p *= 10) {
        for (int d = -1; d <= 1; d++) {
            check_num(p + (uint64_t)d, (int64_t)(p + (uint64_t)d), &bad);
            check_num(p + (uint64_t)d, -(int64_t)((p + (uint64_t)d) & INT64_MAX), &bad);
            n += 2;
        }
    }
    check_num(UINT64_MAX, INT64_MIN, &bad);
    check_num(0, INT64_MAX, &bad);
    n += 2;
    for (uint64_t v = 0; v < 100000; v++, n++)
        check_num(v, (int64_t)v - 50000, &bad);
    for (int r = 0; r < 100000; r++, n++) {
        uint64_t x = rng() >> (rng() % 64);
        check_num(x, (int64_t)x, &bad);
    }
    ok(bad == 0, "%s: buf_u64 and buf_i64 equal printf over %u numbers", PATH_NAME, n);
}

int main(void)
{
    test_append_growth();
    test_printf_growth();
    test_json_str();
    test_json_str_words();
    test_integers();
    test_json_num();
    test_json_str_reference();
    test_integers_reference();
    return done_testing();
}
