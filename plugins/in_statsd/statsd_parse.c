/* statsd_parse.c: the StatsD / DogStatsD line parser of in_statsd. */
#include "statsd_parse.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const double statsd_pow10[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/*
 * The fast path takes [+-]digits[.digits] with at most 15 significant
 * digits, which a double holds exactly, so mantissa / 10^frac is correctly
 * rounded. Anything else (exponents, long numbers) goes through strtod on
 * a bounded copy, after a check that only decimal characters are present
 * (strtod would also take hex, "inf" and "nan").
 */
bool statsd_parse_number(const char *p, size_t n, double *out)
{
    uint64_t m = 0;
    int digits = 0, frac = 0;
    bool neg = false, dot = false, any = false;
    size_t i = 0;
    char buf[64], *end;
    double v;

    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    for (; i < n; i++) {
        char c = p[i];

        if (c >= '0' && c <= '9') {
            if (digits >= 15 || frac >= 22)
                goto slow;
            m = m * 10 + (uint64_t)(c - '0');
            if (m)
                digits++;
            if (dot)
                frac++;
            any = true;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            goto slow;
        }
    }
    if (!any)
        return false;
    v = (double)m / statsd_pow10[frac];
    *out = neg ? -v : v;
    return true;
slow:
    if (n == 0 || n >= sizeof buf)
        return false;
    for (i = 0; i < n; i++) {
        char c = p[i];

        if (!((c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-' ||
              c == 'e' || c == 'E'))
            return false;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Split the DogStatsD tag list p[0..n) ("a:1,b,c:2") into out->tags. */
static const char *statsd_parse_tags(const char *p, size_t n, struct statsd_line *out)
{
    const char *end = p + n;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *colon;
        struct statsd_tag *t;

        if (stop == p) {                /* empty tag: skipped */
            p = stop + 1;
            continue;
        }
        if (out->ntags == STATSD_MAX_TAGS)
            return "too many tags";
        t = &out->tags[out->ntags++];
        colon = memchr(p, ':', (size_t)(stop - p));
        t->key = p;
        t->key_len = (size_t)((colon ? colon : stop) - p);
        t->value = colon ? colon + 1 : stop;
        t->value_len = colon ? (size_t)(stop - colon - 1) : 0;
        if (t->key_len == 0)
            return "empty tag key";
        p = stop + 1;
    }
    return NULL;
}

/*
 * name:value|type[|@rate][|#tags]; sections after the type may come in any
 * order, and sections this parser does not know (DogStatsD's "c:" container
 * id, "T" timestamp) are skipped.
 */
const char *statsd_parse_line(const char *p, size_t len, struct statsd_line *out)
{
    const char *end, *colon, *bar, *type, *sec;
    size_t tlen;

    if (len && p[len - 1] == '\r')
        len--;
    if (len > STATSD_MAX_LINE)
        return "line too long";
    end = p + len;
    out->ntags = 0;
    out->rate = 1.0;
    out->delta = false;
    out->value = 0;
    colon = memchr(p, ':', len);
    if (!colon)
        return "no value";
    out->name = p;
    out->name_len = (size_t)(colon - p);
    if (out->name_len == 0)
        return "empty name";
    if (memchr(p, '|', out->name_len))
        return "no value";
    bar = memchr(colon + 1, '|', (size_t)(end - colon - 1));
    if (!bar)
        return "no type";
    out->raw = colon + 1;
    out->raw_len = (size_t)(bar - out->raw);
    if (out->raw_len == 0)
        return "empty value";
    type = bar + 1;
    sec = memchr(type, '|', (size_t)(end - type));
    tlen = (size_t)((sec ? sec : end) - type);
    if (tlen == 1 && type[0] == 'c')
        out->type = STATSD_COUNTER;
    else if (tlen == 1 && type[0] == 'g')
        out->type = STATSD_GAUGE;
    else if (tlen == 1 && type[0] == 's')
        out->type = STATSD_SET;
    else if ((tlen == 2 && type[0] == 'm' && type[1] == 's') ||
             (tlen == 1 && (type[0] == 'h' || type[0] == 'd')))
        out->type = STATSD_TIMER;
    else
        return "unknown type";
    if (out->type != STATSD_SET) {
        if (!statsd_parse_number(out->raw, out->raw_len, &out->value))
            return "bad value";
        out->delta = out->type == STATSD_GAUGE &&
                     (out->raw[0] == '+' || out->raw[0] == '-');
    }
    while (sec) {
        const char *s = sec + 1, *next = memchr(s, '|', (size_t)(end - s));
        size_t slen = (size_t)((next ? next : end) - s);

        if (slen && s[0] == '@') {
            if (!statsd_parse_number(s + 1, slen - 1, &out->rate) ||
                !(out->rate > 0 && out->rate <= 1))
                return "bad sample rate";
        } else if (slen && s[0] == '#') {
            const char *why = statsd_parse_tags(s + 1, slen - 1, out);

            if (why)
                return why;
        }
        sec = next;
    }
    return NULL;
}
