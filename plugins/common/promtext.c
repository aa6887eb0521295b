/* promtext.c: the Prometheus text exposition format 0.0.4 parsed into pipit records. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "promtext.h"

enum promtext_ftype {
    PROMTEXT_UNTYPED = 0, PROMTEXT_COUNTER, PROMTEXT_GAUGE,
    PROMTEXT_HISTOGRAM, PROMTEXT_SUMMARY
};

/* One label set of the current histogram family being gathered. */
struct promtext_group {
    char *key;                          /* canonical labels without le */
    size_t keylen;
    struct pipit_label *labels;         /* point into key */
    size_t nlabels;
    double bounds[PROMTEXT_MAX_BUCKETS];
    uint64_t counts[PROMTEXT_MAX_BUCKETS];
    size_t nbuckets;
    double sum;
    uint64_t count;
    bool has_sum, has_count, bad;
    int64_t time_ns;
    unsigned long line;                 /* first line of the group */
};

struct promtext_state {
    promtext_emit_cb emit;
    promtext_error_cb error;
    void *arg;
    struct promtext_stats st;
    unsigned long line;
    char family[PROMTEXT_MAX_LINE + 1]; /* name of the current family */
    int ftype;                          /* its enum promtext_ftype */
    char scratch[PROMTEXT_MAX_LINE + 1];/* unescaped name and label values */
    struct pipit_label labels[PROMTEXT_MAX_LABELS + 1];
    size_t nlabels;
    struct promtext_group **groups;
    size_t ngroups;
};

static void promtext_fail(struct promtext_state *s, unsigned long line, const char *why)
{
    s->st.errors++;
    if (s->error)
        s->error(s->arg, line, why);
}

static bool promtext_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool promtext_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool promtext_name_char(char c)
{
    return promtext_name_start(c) || (c >= '0' && c <= '9');
}

/*
 * Parse a sample value or bucket bound from [p, end): NaN, +Inf, -Inf, Inf
 * (any case), or a decimal number with an optional exponent. Returns true
 * and stores it in *v when the whole token is a number.
 */
static bool promtext_number(const char *p, size_t n, double *v)
{
    char tmp[64];
    char *e;
    const char *t = p;
    size_t k = n;

    if (n == 0 || n >= sizeof tmp)
        return false;
    if (*t == '+' || *t == '-') {
        t++;
        k--;
    }
    if (k == 3 && strncasecmp(t, "inf", 3) == 0) {
        *v = *p == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (n == 3 && strncasecmp(p, "nan", 3) == 0) {
        *v = NAN;
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
              c == '+' || c == '-'))
            return false;
    }
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    *v = strtod(tmp, &e);
    return e == tmp + n;
}

/* Parse an optional millisecond timestamp into nanoseconds. */
static bool promtext_timestamp(const char *p, size_t n, int64_t *ns)
{
    int64_t ms = 0;
    size_t i = 0;
    bool neg = false;

    if (n && (*p == '-' || *p == '+')) {
        neg = *p == '-';
        i = 1;
    }
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        if (__builtin_mul_overflow(ms, 10, &ms) ||
            __builtin_add_overflow(ms, p[i] - '0', &ms))
            return false;
    }
    if (neg)
        ms = -ms;
    return !__builtin_mul_overflow(ms, (int64_t)1000000, ns);
}

static void promtext_group_free(struct promtext_group *g)
{
    free(g->key);
    free(g->labels);
    free(g);
}

/*
 * Emit every histogram gathered for the current family and forget them. A
 * histogram whose buckets do not make sense (missing +Inf and _count,
 * repeated bounds, counts that decrease, _count that differs from the +Inf
 * bucket) is refused at the line of its first sample.
 */
static void promtext_flush(struct promtext_state *s)
{
    for (size_t i = 0; i < s->ngroups; i++) {
        struct promtext_group *g = s->groups[i];
        const char *why = NULL;

        /* insertion sort by bound: exporters write them ascending already */
        for (size_t a = 1; a < g->nbuckets; a++) {
            double b = g->bounds[a];
            uint64_t c = g->counts[a];
            size_t j = a;
            for (; j > 0 && g->bounds[j - 1] > b; j--) {
                g->bounds[j] = g->bounds[j - 1];
                g->counts[j] = g->counts[j - 1];
            }
            g->bounds[j] = b;
            g->counts[j] = c;
        }
        for (size_t a = 1; a < g->nbuckets && !why; a++) {
            if (!(g->bounds[a] > g->bounds[a - 1]))
                why = "histogram has the same le twice";
            else if (g->counts[a] < g->counts[a - 1])
                why = "histogram bucket counts are not cumulative";
        }
        if (!why && (g->nbuckets == 0 || !isinf(g->bounds[g->nbuckets - 1]))) {
            if (!g->has_count)
                why = "histogram without a +Inf bucket or _count";
            else if (g->nbuckets == PROMTEXT_MAX_BUCKETS)
                why = "histogram has too many buckets";
            else if (g->nbuckets && g->counts[g->nbuckets - 1] > g->count)
                why = "histogram _count is less than a bucket";
            else {
                g->bounds[g->nbuckets] = INFINITY;
                g->counts[g->nbuckets++] = g->count;
            }
        }
        if (!why && g->has_count && g->count != g->counts[g->nbuckets - 1])
            why = "histogram _count differs from its +Inf bucket";
        if (g->bad)
            ;                           /* already refused */
        else if (why)
            promtext_fail(s, g->line, why);
        else {
            struct pipit_record r = {
                .struct_size = sizeof r, .kind = PIPIT_METRIC,
                .time_ns = g->time_ns, .labels = g->labels,
                .nlabels = g->nlabels, .name = s->family,
                .metric_type = PIPIT_HISTOGRAM, .bucket_bounds = g->bounds,
                .bucket_counts = g->counts, .nbuckets = g->nbuckets,
                .sum = g->has_sum ? g->sum : NAN,
                .count = g->counts[g->nbuckets - 1],
            };
            s->st.records++;
            s->emit(s->arg, &r);
        }
        promtext_group_free(g);
    }
    s->ngroups = 0;
}

/* Start a new family name with type t; the previous one is flushed. */
static void promtext_family(struct promtext_state *s, const char *name, size_t n, int t)
{
    promtext_flush(s);
    memcpy(s->family, name, n);
    s->family[n] = '\0';
    s->ftype = t;
}

static bool promtext_is(const char *name, size_t n, const char *base, const char *suffix)
{
    size_t bl = strlen(base), sl = strlen(suffix);
    return n == bl + sl && memcmp(name, base, bl) == 0 &&
           memcmp(name + bl, suffix, sl) == 0;
}

/*
 * The group of the current histogram family for the labels of this line
 * (le left out), created when new. Returns NULL with *why set when the
 * family already has PROMTEXT_MAX_GROUPS label sets or memory ran out.
 */
static struct promtext_group *promtext_group(struct promtext_state *s, const char **why)
{
    size_t idx[PROMTEXT_MAX_LABELS], n = 0, keylen = 0;
    struct promtext_group *g;
    char *k;

    for (size_t i = 0; i < s->nlabels; i++) {
        if (strcmp(s->labels[i].key, "le") == 0)
            continue;
        size_t j = n;
        for (; j > 0 && strcmp(s->labels[idx[j - 1]].key, s->labels[i].key) > 0; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
        n++;
        keylen += strlen(s->labels[i].key) + strlen(s->labels[i].value) + 2;
    }
    k = malloc(keylen + 1);
    if (!k) {
        *why = "out of memory";
        return NULL;
    }
    keylen = 0;
    for (size_t i = 0; i < n; i++) {
        const struct pipit_label *l = &s->labels[idx[i]];
        size_t a = strlen(l->key) + 1, b = strlen(l->value) + 1;
        memcpy(k + keylen, l->key, a);
        memcpy(k + keylen + a, l->value, b);
        keylen += a + b;
    }
    for (size_t i = 0; i < s->ngroups; i++) {
        g = s->groups[i];
        if (g->keylen == keylen && memcmp(g->key, k, keylen) == 0) {
            free(k);
            return g;
        }
    }
    if (s->ngroups == PROMTEXT_MAX_GROUPS) {
        free(k);
        *why = "histogram family has too many label sets";
        return NULL;
    }
    g = calloc(1, sizeof *g);
    if (g)
        g->labels = calloc(n ? n : 1, sizeof *g->labels);
    if (!g || !g->labels) {
        if (g)
            free(g);
        free(k);
        *why = "out of memory";
        return NULL;
    }
    g->key = k;
    g->keylen = keylen;
    g->nlabels = n;
    for (size_t i = 0, off = 0; i < n; i++) {
        g->labels[i].key = k + off;
        off += strlen(k + off) + 1;
        g->labels[i].value = k + off;
        off += strlen(k + off) + 1;
    }
    g->line = s->line;
    g->sum = NAN;
    s->groups[s->ngroups++] = g;
    return g;
}

/* A sample value as a bucket or histogram count: a whole number >= 0. */
static bool promtext_count(double v, uint64_t *c)
{
    if (!(v >= 0) || v >= 18446744073709551616.0 || v != floor(v))
        return false;
    *c = (uint64_t)v;
    return true;
}

/* Add one _bucket, _sum or _count sample to its histogram group. */
static const char *promtext_hist_sample(struct promtext_state *s, const char *suffix,
                                        double v, int64_t ns)
{
    const char *why = NULL, *le = NULL;
    struct promtext_group *g;
    double bound = 0;
    uint64_t c = 0;

    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].key, "le") == 0)
            le = s->labels[i].value;
    if (*suffix == 'b') {
        if (!le)
            return "histogram bucket without le";
        if (!promtext_number(le, strlen(le), &bound) || isnan(bound))
            return "histogram bucket with a bad le";
        if (!promtext_count(v, &c))
            return "histogram bucket count is not a whole number >= 0";
    } else if (*suffix == 'c' && !promtext_count(v, &c)) {
        return "histogram _count is not a whole number >= 0";
    }
    g = promtext_group(s, &why);
    if (!g)
        return why;
    if (ns)
        g->time_ns = ns;
    if (*suffix == 'b') {
        if (g->nbuckets == PROMTEXT_MAX_BUCKETS) {
            if (!g->bad) {
                g->bad = true;
                return "histogram has too many buckets";
            }
            return NULL;
        }
        g->bounds[g->nbuckets] = bound;
        g->counts[g->nbuckets++] = c;
    } else if (*suffix == 's') {
        g->sum = v;
        g->has_sum = true;
    } else {
        g->count = c;
        g->has_count = true;
    }
    return NULL;
}

/*
 * Parse the label set starting after '{' at *pp. Label values are
 * unescaped into s->scratch from *used on. Returns NULL and moves *pp after
 * '}', or the reason the line is refused.
 */
static const char *promtext_labels(struct promtext_state *s, const char **pp,
                                   const char *end, size_t *used)
{
    const char *p = *pp;
    char *out = s->scratch + *used;

    s->nlabels = 0;
    for (;;) {
        while (p < end && promtext_blank(*p))
            p++;
        if (p == end)
            return "unterminated label set";
        if (*p == '}') {
            *pp = p + 1;
            *used = (size_t)(out - s->scratch);
            return NULL;
        }
        if (!promtext_name_start(*p) || *p == ':')
            return "bad label name";
        const char *k = p;
        while (p < end && promtext_name_char(*p) && *p != ':')
            p++;
        size_t kl = (size_t)(p - k);
        while (p < end && promtext_blank(*p))
            p++;
        if (p == end)
            return "unterminated label set";
        if (*p != '=')
            return "expected = after a label name";
        p++;
        while (p < end && promtext_blank(*p))
            p++;
        if (p == end)
            return "unterminated label set";
        if (*p != '"')
            return "label value is not quoted";
        p++;
        if (s->nlabels == PROMTEXT_MAX_LABELS)
            return "too many labels";
        char *key = out;
        memcpy(out, k, kl);
        out += kl;
        *out++ = '\0';
        for (size_t i = 0; i < s->nlabels; i++)
            if (strcmp(s->labels[i].key, key) == 0)
                return "duplicate label";
        char *val = out;
        for (;;) {
            if (p == end)
                return "unterminated label value";
            if (*p == '"')
                break;
            if (*p == '\\') {
                if (++p == end)
                    return "unterminated label value";
                if (*p == 'n')
                    *out++ = '\n';
                else if (*p == '\\' || *p == '"')
                    *out++ = *p;
                else
                    return "bad escape in a label value";
                p++;
                continue;
            }
            *out++ = *p++;
        }
        p++;
        *out++ = '\0';
        s->labels[s->nlabels].key = key;
        s->labels[s->nlabels].value = val;
        s->nlabels++;
        while (p < end && promtext_blank(*p))
            p++;
        if (p < end && *p == ',')
            p++;
        else if (p < end && *p != '}')
            return "expected , or } after a label";
    }
}

/* Emit a plain sample (counter, gauge, summary part). */
static void promtext_plain(struct promtext_state *s, const char *name, int type,
                           double v, int64_t ns)
{
    struct pipit_record r = {
        .struct_size = sizeof r, .kind = PIPIT_METRIC, .time_ns = ns,
        .labels = s->nlabels ? s->labels : NULL, .nlabels = s->nlabels,
        .name = name, .metric_type = type, .value = v,
    };
    s->st.records++;
    s->emit(s->arg, &r);
}

/* One sample line [p, end). Returns NULL, or the reason it is refused. */
static const char *promtext_sample(struct promtext_state *s, const char *p, const char *end)
{
    const char *name = p, *tok;
    size_t nl, used;
    double v;
    int64_t ns = 0;

    while (p < end && promtext_name_char(*p))
        p++;
    nl = (size_t)(p - name);
    /* "a-1" is not the sample "a" with value -1 */
    if (!promtext_name_start(*name) || (p < end && !promtext_blank(*p) && *p != '{'))
        return "bad metric name";
    memcpy(s->scratch, name, nl);
    s->scratch[nl] = '\0';
    used = nl + 1;
    s->nlabels = 0;
    while (p < end && promtext_blank(*p))
        p++;
    if (p < end && *p == '{') {
        const char *why;
        p++;
        if ((why = promtext_labels(s, &p, end, &used)) != NULL)
            return why;
    }
    while (p < end && promtext_blank(*p))
        p++;
    if (p == end)
        return "missing value";
    tok = p;
    while (p < end && !promtext_blank(*p))
        p++;
    if (!promtext_number(tok, (size_t)(p - tok), &v))
        return "bad number";
    while (p < end && promtext_blank(*p))
        p++;
    if (p < end) {
        tok = p;
        while (p < end && !promtext_blank(*p))
            p++;
        if (!promtext_timestamp(tok, (size_t)(p - tok), &ns))
            return "bad timestamp";
        if (ns == 0)
            ns = 1;                     /* 0 would mean "now" */
        while (p < end && promtext_blank(*p))
            p++;
        if (p < end)
            return "text after the timestamp";
    }

    const char *fam = s->family;
    int t = s->ftype;
    if (t == PROMTEXT_HISTOGRAM) {
        static const char *const sfx[3] = { "_bucket", "_sum", "_count" };
        for (int i = 0; i < 3; i++)
            if (promtext_is(name, nl, fam, sfx[i]))
                return promtext_hist_sample(s, sfx[i] + 1, v, ns);
        if (promtext_is(name, nl, fam, ""))
            return "histogram sample without _bucket, _sum or _count";
    } else if (t == PROMTEXT_SUMMARY) {
        if (promtext_is(name, nl, fam, "_sum") || promtext_is(name, nl, fam, "_count")) {
            promtext_plain(s, s->scratch, PIPIT_COUNTER, v, ns);
            return NULL;
        }
        if (promtext_is(name, nl, fam, "")) {
            bool q = false;
            double qv;
            for (size_t i = 0; i < s->nlabels; i++)
                if (strcmp(s->labels[i].key, "quantile") == 0)
                    q = promtext_number(s->labels[i].value,
                                        strlen(s->labels[i].value), &qv);
            if (!q)
                return "summary sample without a numeric quantile";
            promtext_plain(s, s->scratch, PIPIT_GAUGE, v, ns);
            return NULL;
        }
    } else if (promtext_is(name, nl, fam, "")) {
        promtext_plain(s, s->scratch, t == PROMTEXT_COUNTER ? PIPIT_COUNTER : PIPIT_GAUGE,
                       v, ns);
        return NULL;
    }
    /* a sample of another family without a TYPE line: untyped */
    promtext_family(s, name, nl, PROMTEXT_UNTYPED);
    promtext_plain(s, s->scratch, PIPIT_GAUGE, v, ns);
    return NULL;
}

/* A comment line after '#': HELP and TYPE are read, others ignored. */
static const char *promtext_comment(struct promtext_state *s, const char *p, const char *end)
{
    static const char *const types[] = {
        "untyped", "counter", "gauge", "histogram", "summary"
    };
    const char *w = p, *name;
    size_t wl, nl;
    bool help;

    while (p < end && promtext_blank(*p))
        p++;
    w = p;
    while (p < end && !promtext_blank(*p))
        p++;
    wl = (size_t)(p - w);
    if (wl != 4 || (memcmp(w, "HELP", 4) != 0 && memcmp(w, "TYPE", 4) != 0))
        return NULL;
    help = w[0] == 'H';
    while (p < end && promtext_blank(*p))
        p++;
    name = p;
    while (p < end && promtext_name_char(*p))
        p++;
    nl = (size_t)(p - name);
    if (nl == 0 || !promtext_name_start(*name) || (p < end && !promtext_blank(*p)))
        return help ? "bad metric name in HELP" : "bad metric name in TYPE";
    if (help) {
        if (!promtext_is(name, nl, s->family, ""))
            promtext_family(s, name, nl, PROMTEXT_UNTYPED);
        return NULL;
    }
    while (p < end && promtext_blank(*p))
        p++;
    w = p;
    while (p < end && !promtext_blank(*p))
        p++;
    wl = (size_t)(p - w);
    while (p < end && promtext_blank(*p))
        p++;
    for (int t = 0; t < 5; t++) {
        if (wl == strlen(types[t]) && memcmp(w, types[t], wl) == 0) {
            if (p < end)
                return "text after the type in TYPE";
            promtext_family(s, name, nl, t);
            return NULL;
        }
    }
    return "unknown type in TYPE";
}

/* See promtext.h. */
int promtext_parse(const char *text, size_t len, promtext_emit_cb emit,
                   promtext_error_cb error, void *arg, struct promtext_stats *st)
{
    struct promtext_state *s = calloc(1, sizeof *s);
    const char *p = text, *end = text + len;

    if (!s)
        return PIPIT_ENOMEM;
    s->groups = calloc(PROMTEXT_MAX_GROUPS, sizeof *s->groups);
    if (!s->groups) {
        free(s);
        return PIPIT_ENOMEM;
    }
    s->emit = emit;
    s->error = error;
    s->arg = arg;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *q = p, *why = NULL;

        s->line++;
        s->st.lines++;
        if (le > p && le[-1] == '\r')
            le--;
        if ((size_t)(le - p) > PROMTEXT_MAX_LINE)
            why = "line too long";
        else {
            while (q < le && promtext_blank(*q))
                q++;
            if (q == le)
                ;                       /* blank line */
            else if (*q == '#')
                why = promtext_comment(s, q + 1, le);
            else if (memchr(q, '\0', (size_t)(le - q)))
                why = "NUL byte in a line";
            else
                why = promtext_sample(s, q, le);
        }
        if (why)
            promtext_fail(s, s->line, why);
        p = nl ? nl + 1 : end;
    }
    promtext_flush(s);
    if (st)
        *st = s->st;
    free(s->groups);
    free(s);
    return PIPIT_OK;
}

/* See promtext.h. */
size_t promtext_samples(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    size_t n = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;

        if (le > p && le[-1] == '\r')
            le--;
        while (p < le && promtext_blank(*p))
            p++;
        n += p < le && *p != '#';
        p = nl ? nl + 1 : end;
    }
    return n;
}
