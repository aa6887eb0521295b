/* record_line.c: the JSON lines record_encode_json() writes, read back without a JSON library. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "record_line.h"

static const char *const kinds[] = { NULL, "metric", "log", "cost", "event" };
static const char *const levels[] = { NULL, "error", "warn", "info", "debug", "trace" };
static const char *const types[] = { NULL, "gauge", "counter", "histogram" };

struct cur {
    const char *p, *end;
    char *out;                          /* decoded strings, NUL-terminated */
};

static bool lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool str(struct cur *c, const char **v)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    *v = c->out;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;

        if (ch == '"') {
            *c->out++ = '\0';
            return true;
        }
        if (ch < 0x20 || ch >= 0x7f)
            return false;               /* control or not ASCII: jansson's */
        if (ch == '\\') {
            if (c->p >= c->end)
                return false;
            switch (*c->p++) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            default: return false;      /* \u: jansson's */
            }
        }
        *c->out++ = (char)ch;
    }
    return false;
}

/* A JSON number token; *is_int when it has no fraction or exponent. */
static bool number_token(struct cur *c, const char **start, size_t *n, bool *is_int)
{
    const char *p = c->p, *e = c->end;

    *start = p;
    *is_int = true;
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0')
        p++;
    else if (p < e && *p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (p < e && *p == '.') {
        *is_int = false;
        if (++p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = false;
        if (++p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    *n = (size_t)(p - *start);
    c->p = p;
    return *n < 64;
}

/* An integer token within int64_t. */
static bool intg(struct cur *c, int64_t *v)
{
    const char *t;
    size_t n;
    bool is_int;

    if (!number_token(c, &t, &n, &is_int) || !is_int)
        return false;
    bool neg = *t == '-';
    uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = neg; i < n; i++) {
        unsigned d = (unsigned)(t[i] - '0');
        if (m > (lim - d) / 10)
            return false;               /* out of range: jansson refuses it */
        m = m * 10 + d;
    }
    *v = neg ? (int64_t)(0 - m) : (int64_t)m;
    return true;
}

/* A number as jnum() reads it: a JSON number, or "NaN", "+Inf", "-Inf". */
static bool num(struct cur *c, double *v)
{
    const char *t;
    size_t n;
    bool is_int;
    char tmp[64];

    if (lit(c, "\"NaN\"")) {
        *v = __builtin_nan("");
        return true;
    }
    if (lit(c, "\"+Inf\"")) {
        *v = __builtin_inf();
        return true;
    }
    if (lit(c, "\"-Inf\"")) {
        *v = -__builtin_inf();
        return true;
    }
    if (!number_token(c, &t, &n, &is_int))
        return false;
    if (is_int) {                       /* jansson: an integer, then a double */
        struct cur ic = { t, t + n, NULL };
        int64_t i;
        if (!intg(&ic, &i))
            return false;
        *v = (double)i;
        return true;
    }
    memcpy(tmp, t, n);
    tmp[n] = '\0';
    errno = 0;
    *v = strtod(tmp, NULL);
    return errno == 0 && isfinite(*v);  /* overflow and underflow: jansson's */
}

/* One of names[1..n] in quotes; its index. */
static bool name_of(struct cur *c, const char *const *names, int n, int *out)
{
    const char *v;

    if (!str(c, &v))
        return false;
    for (int i = 1; i <= n; i++)
        if (names[i] && strcmp(v, names[i]) == 0) {
            *out = i;
            return true;
        }
    return false;
}

/* An integer token within int64_t that is not negative. */
static bool uintg(struct cur *c, uint64_t *v)
{
    int64_t i;

    if (!intg(c, &i) || i < 0)
        return false;
    *v = (uint64_t)i;
    return true;
}

static bool read_fields(struct record_line *l, struct cur *c)
{
    struct pipit_record *rec = &l->rec;
    int t;

    switch (rec->kind) {
    case PIPIT_METRIC:
        if (!lit(c, ",\"name\":") || !str(c, &rec->name) || !lit(c, ",\"type\":") ||
            !name_of(c, types, 3, &t))
            return false;
        rec->metric_type = t;
        if (t != PIPIT_HISTOGRAM)
            return lit(c, ",\"value\":") && num(c, &rec->value);
        if (!lit(c, ",\"buckets\":["))
            return false;
        while (!lit(c, "]")) {
            if (rec->nbuckets == RECORD_LINE_MAX_BUCKETS ||
                (rec->nbuckets && !lit(c, ",")) || !lit(c, "{\"le\":") ||
                !num(c, &l->bounds[rec->nbuckets]) || !lit(c, ",\"count\":") ||
                !uintg(c, &l->counts[rec->nbuckets]) || !lit(c, "}"))
                return false;
            rec->nbuckets++;
        }
        rec->bucket_bounds = l->bounds;
        rec->bucket_counts = l->counts;
        return lit(c, ",\"sum\":") && num(c, &rec->sum) && lit(c, ",\"count\":") &&
               uintg(c, &rec->count);
    case PIPIT_LOG:
        if (!lit(c, ",\"level\":") || !name_of(c, levels, 5, &rec->level) ||
            !lit(c, ",\"message\":") || !str(c, &rec->message))
            return false;
        if (lit(c, ",\"source\":"))
            return str(c, &rec->source) && lit(c, ",\"offset\":") && uintg(c, &rec->offset);
        return true;
    case PIPIT_COST:
        return lit(c, ",\"amount\":") && num(c, &rec->amount) &&
               lit(c, ",\"amount_micros\":") && intg(c, &rec->amount_micros) &&
               lit(c, ",\"currency\":") && str(c, &rec->currency) &&
               lit(c, ",\"resource\":") && str(c, &rec->resource) &&
               lit(c, ",\"period_start\":") && intg(c, &rec->period_start_ns) &&
               lit(c, ",\"period_end\":") && intg(c, &rec->period_end_ns);
    default:
        return lit(c, ",\"name\":") && str(c, &rec->name) && lit(c, ",\"status\":") &&
               str(c, &rec->status) && (!lit(c, ",\"message\":") || str(c, &rec->message));
    }
}

bool record_line_read(struct record_line *l, const char *line, size_t len)
{
    memset(&l->rec, 0, sizeof l->rec);  /* labels and buckets are filled as read */
    l->has_origin = false;
    if (len >= l->cap) {                /* decoded strings are never longer */
        char *p = realloc(l->strings, len + 1);
        if (!p)
            return false;
        l->strings = p;
        l->cap = len + 1;
    }
    struct cur c = { line, line + len, l->strings };
    struct pipit_record *rec = &l->rec;
    int64_t seq, index;

    rec->struct_size = sizeof *rec;
    if (!lit(&c, "{\"kind\":") || !name_of(&c, kinds, 4, &rec->kind) ||
        !lit(&c, ",\"time\":") || !intg(&c, &rec->time_ns) || !lit(&c, ",\"host\":") ||
        !str(&c, &rec->host) || !lit(&c, ",\"instance\":") || !str(&c, &rec->instance))
        return false;
    if (lit(&c, ",\"origin\":")) {
        if (!lit(&c, "{\"agent\":") || !str(&c, &rec->origin_agent) ||
            !lit(&c, ",\"seq\":") || !intg(&c, &seq) || seq < 0 ||
            !lit(&c, ",\"index\":") || !intg(&c, &index) || index < 0 ||
            index > UINT32_MAX || !lit(&c, "}"))
            return false;
        rec->origin_seq = (uint64_t)seq;
        rec->origin_index = (uint32_t)index;
        l->has_origin = true;
    }
    if (!read_fields(l, &c) || !lit(&c, ",\"labels\":{"))
        return false;
    while (!lit(&c, "}")) {
        struct pipit_label *lb = &l->labels[rec->nlabels];
        if (rec->nlabels == RECORD_LINE_MAX_LABELS || (rec->nlabels && !lit(&c, ",")) ||
            !str(&c, &lb->key) || !lit(&c, ":") || !str(&c, &lb->value))
            return false;
        for (size_t j = 0; j < rec->nlabels; j++)
            if (strcmp(l->labels[j].key, lb->key) == 0)
                return false;           /* given twice */
        rec->nlabels++;
    }
    rec->labels = l->labels;
    return lit(&c, "}") && c.p == c.end;
}

void record_line_free(struct record_line *l)
{
    free(l->strings);
    l->strings = NULL;
    l->cap = 0;
}
