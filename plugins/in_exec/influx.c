/* influx.c: InfluxDB line protocol parsed into pipit gauges, one per numeric field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "influx.h"

struct influx_field {
    const char *key;                    /* in scratch */
    double value;
};

struct influx_state {
    char scratch[3 * PROMTEXT_MAX_LINE + 4];    /* tokens, then the name */
    struct pipit_label tags[PROMTEXT_MAX_LABELS];
    struct influx_field fields[INFLUX_MAX_FIELDS];
};

/*
 * Copy [*pp, end) into *out up to the first unescaped character of stop,
 * removing the backslash before an escaped one; NUL-terminates. Returns the
 * length copied; *pp is left on the stop character (or end).
 */
static size_t influx_token(const char **pp, const char *end, const char *stop, char **out)
{
    const char *p = *pp;
    char *o = *out, *start = o;

    while (p < end && !strchr(stop, *p)) {
        if (*p == '\\' && p + 1 < end && (strchr(stop, p[1]) || p[1] == '\\'))
            p++;
        *o++ = *p++;
    }
    *o++ = '\0';
    *pp = p;
    *out = o;
    return (size_t)(o - start - 1);
}

/* A decimal number of the protocol: digits, '.', sign and exponent only. */
static bool influx_float(const char *s, size_t n, double *v)
{
    char *e;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789.eE+-", s[i]))
            return false;
    *v = strtod(s, &e);
    return e == s + n;
}

/* An integer of the protocol, [-]digits with no more than 19 digits. */
static bool influx_int(const char *s, size_t n, bool sign, int64_t *v)
{
    size_t i = 0;
    int64_t x = 0;
    bool neg = false;

    if (sign && n && *s == '-') {
        neg = true;
        i = 1;
    }
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' ||
            __builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, s[i] - '0', &x))
            return false;
    }
    *v = neg ? -x : x;
    return true;
}

/* A field value: float, 12i, 12u, a boolean, or a "string" (*skip set). */
static const char *influx_value(const char **pp, const char *end, char **out,
                                double *v, bool *skip)
{
    static const char *const truths[] = { "t", "T", "true", "True", "TRUE" };
    static const char *const lies[] = { "f", "F", "false", "False", "FALSE" };
    const char *p = *pp;
    char *s;
    size_t n;
    int64_t i;

    *skip = false;
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++)
            if (*p == '\\' && p + 1 < end)
                p++;
        if (p == end)
            return "unterminated string field";
        *pp = p + 1;
        *skip = true;
        return NULL;
    }
    s = *out;
    n = influx_token(pp, end, ", ", out);
    if (n == 0)
        return "field without a value";
    for (size_t k = 0; k < 5; k++) {
        if (strcmp(s, truths[k]) == 0) {
            *v = 1;
            return NULL;
        }
        if (strcmp(s, lies[k]) == 0) {
            *v = 0;
            return NULL;
        }
    }
    if (s[n - 1] == 'i' || s[n - 1] == 'u') {
        if (!influx_int(s, n - 1, s[n - 1] == 'i', &i))
            return "bad integer field";
        *v = (double)i;
        return NULL;
    }
    if (!influx_float(s, n, v))
        return "bad number";
    return NULL;
}

/* One line [p, end); emits its fields when the whole line is good. */
static const char *influx_line(struct influx_state *s, const char *p, const char *end,
                               promtext_emit_cb emit, void *arg, unsigned long *records)
{
    char *out = s->scratch, *meas, *name;
    size_t ntags = 0, nfields = 0, ml;
    int64_t ts = 0;

    meas = out;
    ml = influx_token(&p, end, ", ", &out);
    if (ml == 0)
        return "no measurement";
    while (p < end && *p == ',') {
        const char *k, *v;
        p++;
        k = out;
        if (influx_token(&p, end, "=, ", &out) == 0 || p == end || *p != '=')
            return "bad tag";
        p++;
        v = out;
        if (influx_token(&p, end, ", =", &out) == 0)
            return "tag without a value";
        if (ntags == PROMTEXT_MAX_LABELS)
            return "too many labels";
        for (size_t i = 0; i < ntags; i++)
            if (strcmp(s->tags[i].key, k) == 0)
                return "duplicate label";
        s->tags[ntags].key = k;
        s->tags[ntags++].value = v;
    }
    if (p == end || *p != ' ')
        return "no fields";
    while (p < end && *p == ' ')
        p++;
    for (;;) {
        const char *k = out, *why;
        double v = 0;
        bool skip;

        if (influx_token(&p, end, "=, ", &out) == 0 || p == end || *p != '=')
            return "bad field";
        p++;
        if ((why = influx_value(&p, end, &out, &v, &skip)) != NULL)
            return why;
        if (!skip) {
            if (nfields == INFLUX_MAX_FIELDS)
                return "too many fields";
            s->fields[nfields].key = k;
            s->fields[nfields++].value = v;
        }
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        break;
    }
    while (p < end && *p == ' ')
        p++;
    if (p < end) {
        const char *t = p;
        while (p < end && *p != ' ')
            p++;
        if (!influx_int(t, (size_t)(p - t), true, &ts))
            return "bad timestamp";
        if (ts == 0)
            ts = 1;                     /* 0 would mean "now" */
        while (p < end && *p == ' ')
            p++;
        if (p < end)
            return "text after the timestamp";
    }
    name = out;
    for (size_t i = 0; i < nfields; i++) {
        size_t fl = strlen(s->fields[i].key);
        struct pipit_record r = {
            .struct_size = sizeof r, .kind = PIPIT_METRIC, .time_ns = ts,
            .labels = ntags ? s->tags : NULL, .nlabels = ntags, .name = name,
            .metric_type = PIPIT_GAUGE, .value = s->fields[i].value,
        };
        /* every token kept consumed a byte: tokens and NULs take at most
         * twice the line, the name one line more */
        memcpy(name, meas, ml);
        name[ml] = '.';
        memcpy(name + ml + 1, s->fields[i].key, fl + 1);
        (*records)++;
        emit(arg, &r);
    }
    return NULL;
}

/* See influx.h. */
int influx_parse(const char *text, size_t len, promtext_emit_cb emit,
                 promtext_error_cb error, void *arg, struct promtext_stats *st)
{
    struct influx_state *s = malloc(sizeof *s);
    struct promtext_stats c = { 0, 0, 0 };
    const char *p = text, *end = text + len;

    if (!s)
        return PIPIT_ENOMEM;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *q = p, *why = NULL;

        c.lines++;
        if (le > p && le[-1] == '\r')
            le--;
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        if ((size_t)(le - p) > PROMTEXT_MAX_LINE)
            why = "line too long";
        else if (q < le && memchr(q, '\0', (size_t)(le - q)))
            why = "NUL byte in a line";
        else if (q < le && *q != '#')
            why = influx_line(s, q, le, emit, arg, &c.records);
        if (why) {
            c.errors++;
            if (error)
                error(arg, c.lines, why);
        }
        p = nl ? nl + 1 : end;
    }
    if (st)
        *st = c;
    free(s);
    return PIPIT_OK;
}
