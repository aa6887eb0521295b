/* decimal.c: exact decimal numbers (prices, money) read from text as scaled integers. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "decimal.h"

/* An exponent beyond this is out of range for any input shorter than it
 * and any scale; clamping it keeps the arithmetic below from overflowing. */
#define DECIMAL_EXP_CLAMP 1000000000

/* The shape of a number, found by decimal_scan() before any arithmetic. */
struct decimal_shape {
    bool negative;
    const char *digits;                 /* first digit of the mantissa */
    const char *end;                    /* just past the mantissa */
    int64_t ndigits;                    /* digits in the mantissa, '.' excluded */
    int64_t shift;                        /* value = mantissa digits * 10^shift */
};

static bool decimal_isdigit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Check the syntax of s[0..len) and describe it in *sh: the mantissa digits
 * read as one integer, times 10^shift (the exponent minus the number of
 * fractional digits). Returns DECIMAL_OK or DECIMAL_ESYNTAX.
 */
static int decimal_scan(const char *s, size_t len, struct decimal_shape *sh)
{
    const char *p = s, *end = s + len;
    int64_t nfrac = 0, exp = 0;
    bool dot = false;

    memset(sh, 0, sizeof *sh);
    if (p < end && (*p == '+' || *p == '-'))
        sh->negative = *p++ == '-';
    sh->digits = p;
    for (; p < end; p++) {
        if (decimal_isdigit(*p)) {
            sh->ndigits++;
            nfrac += dot;
        } else if (*p == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    sh->end = p;
    if (sh->ndigits == 0)
        return DECIMAL_ESYNTAX;
    if (p < end && (*p == 'e' || *p == 'E')) {
        bool eneg = false;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p == end || !decimal_isdigit(*p))
            return DECIMAL_ESYNTAX;
        for (; p < end && decimal_isdigit(*p); p++)
            if (exp < DECIMAL_EXP_CLAMP)
                exp = exp * 10 + (*p - '0');
        if (eneg)
            exp = -exp;
    }
    if (p != end)
        return DECIMAL_ESYNTAX;
    sh->shift = exp - nfrac;
    return DECIMAL_OK;
}

int decimal_parse(const char *s, size_t len, int scale, unsigned flags, int64_t *out)
{
    const unsigned __int128 limit = (unsigned __int128)INT64_MAX + 1;
    struct decimal_shape sh;
    unsigned __int128 acc = 0;
    int64_t shift, keep, seen = 0;
    bool dropped_nonzero = false, round_up = false;
    int rc;

    if (!s || scale < 0 || scale > DECIMAL_SCALE_MAX)
        return DECIMAL_ESYNTAX;
    if ((rc = decimal_scan(s, len, &sh)) != DECIMAL_OK)
        return rc;
    shift = sh.shift + scale;
    /* Digits kept in the integer; the last -shift digits fall below one unit. */
    keep = shift < 0 ? sh.ndigits + shift : sh.ndigits;
    for (const char *p = sh.digits; p < sh.end; p++) {
        if (*p == '.')
            continue;
        int d = *p - '0';
        if (seen++ < keep) {
            acc = acc * 10 + (unsigned)d;
            if (acc > limit)
                return DECIMAL_ERANGE;
        } else {
            if (seen - 1 == keep)
                round_up = d >= 5;      /* the first digit below one unit */
            dropped_nonzero |= d != 0;
        }
    }
    if (dropped_nonzero) {
        if (!(flags & DECIMAL_ROUND))
            return DECIMAL_EPRECISION;
        acc += round_up;
        if (acc > limit)
            return DECIMAL_ERANGE;
    }
    for (int64_t i = 0; i < shift && acc != 0; i++) {
        acc *= 10;
        if (acc > limit)
            return DECIMAL_ERANGE;
    }
    if (acc == limit && !sh.negative)
        return DECIMAL_ERANGE;
    *out = sh.negative ? (int64_t)(0 - (uint64_t)acc) : (int64_t)acc;
    return DECIMAL_OK;
}

int decimal_parse_str(const char *s, int scale, int64_t *out)
{
    return decimal_parse(s, s ? strlen(s) : 0, scale, 0, out);
}

const char *decimal_strerror(int status)
{
    switch (status) {
    case DECIMAL_OK:         return "ok";
    case DECIMAL_ESYNTAX:    return "not a decimal number";
    case DECIMAL_EPRECISION: return "too many decimal places";
    case DECIMAL_ERANGE:     return "out of range";
    default:                 return "unknown error";
    }
}

int decimal_format(char *buf, size_t size, int64_t value, int scale)
{
    uint64_t mag = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    uint64_t unit = 1;
    char frac[DECIMAL_SCALE_MAX + 1];
    int n;

    if (scale < 0 || scale > DECIMAL_SCALE_MAX)
        scale = 0;
    for (int i = 0; i < scale; i++)
        unit *= 10;
    n = snprintf(frac, sizeof frac, "%0*llu", scale,
                 (unsigned long long)(mag % unit));
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    if (scale == 0)
        n = 0;
    return snprintf(buf, size, "%s%llu%s%s", value < 0 ? "-" : "",
                    (unsigned long long)(mag / unit), n ? "." : "", n ? frac : "");
}
