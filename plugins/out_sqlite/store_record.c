/* store_record.c: record lines parsed and checked for the stores (out_sqlite, out_postgres). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "record_line.h"
#include "store_record.h"

/* ---- buffers ------------------------------------------------------------ */

int store_buf_reserve(struct store_buf *b, size_t more)
{
    if (b->cap - b->len > more)         /* keep room for the NUL */
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= more) {
        if (cap > SIZE_MAX / 2)
            goto fail;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        goto fail;
    b->data = p;
    b->cap = cap;
    return 0;
fail:
    b->failed = true;
    return -1;
}

int store_buf_put(struct store_buf *b, const void *p, size_t n)
{
    if (store_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int store_buf_putc(struct store_buf *b, char c)
{
    return store_buf_put(b, &c, 1);
}

int store_buf_printf(struct store_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0,
                  fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (!b->data || (size_t)n >= b->cap - b->len) {
        if (store_buf_reserve(b, (size_t)n) != 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

void store_buf_free(struct store_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

/* ---- fields ------------------------------------------------------------- */

static const char *const store_kind_names[] = {
    [PIPIT_METRIC] = "metric", [PIPIT_LOG] = "log",
    [PIPIT_COST] = "cost",     [PIPIT_EVENT] = "event",
};

const char *store_kind_name(int kind)
{
    if (kind < PIPIT_METRIC || kind > PIPIT_RECORD_KIND_MAX)
        return "unknown";
    return store_kind_names[kind];
}

static int store_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int store_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#define FAIL(...) return store_fail(err, errlen, __VA_ARGS__)

/*
 * Where a record's fields are read from: the line parsed by jansson (o), or
 * read by record_line_read() (l) when it is in the encoder's own form. Both
 * go through the same checks below, so both refuse the same lines, with
 * the same reasons.
 */
struct store_src {
    json_t *o;
    const struct record_line *l;
};

/* The field key of a line read by record_line_read(), by its JSON key:
 * returns 's' (string in *sv), 'i' (integer in *iv), 'n' (number in *nv)
 * or 0 when the line has no such key. */
static int line_field(const struct record_line *l, const char *key, const char **sv,
                      int64_t *iv, double *nv)
{
    static const char *const types[] = { NULL, "gauge", "counter", "histogram" };
    static const char *const levels[] = { NULL, "error", "warn", "info", "debug", "trace" };
    const struct pipit_record *rec = &l->rec;
    bool hist = rec->kind == PIPIT_METRIC && rec->metric_type == PIPIT_HISTOGRAM;

#define STR(v) return *sv = (v), (v) ? 's' : 0
#define INT(v) return *iv = (int64_t)(v), 'i'
#define NUM(v) return *nv = (v), 'n'
    if (!strcmp(key, "kind")) STR(store_kind_names[rec->kind]);
    if (!strcmp(key, "time")) INT(rec->time_ns);
    if (!strcmp(key, "host")) STR(rec->host);
    if (!strcmp(key, "instance")) STR(rec->instance);
    switch (rec->kind) {
    case PIPIT_METRIC:
        if (!strcmp(key, "name")) STR(rec->name);
        if (!strcmp(key, "type")) STR(types[rec->metric_type]);
        if (!hist && !strcmp(key, "value")) NUM(rec->value);
        if (hist && !strcmp(key, "sum")) NUM(rec->sum);
        if (hist && !strcmp(key, "count")) INT(rec->count);
        break;
    case PIPIT_LOG:
        if (!strcmp(key, "level")) STR(levels[rec->level]);
        if (!strcmp(key, "message")) STR(rec->message);
        if (!strcmp(key, "source")) STR(rec->source);
        if (rec->source && !strcmp(key, "offset")) INT(rec->offset);
        break;
    case PIPIT_COST:
        if (!strcmp(key, "amount")) NUM(rec->amount);
        if (!strcmp(key, "amount_micros")) INT(rec->amount_micros);
        if (!strcmp(key, "currency")) STR(rec->currency);
        if (!strcmp(key, "resource")) STR(rec->resource);
        if (!strcmp(key, "period_start")) INT(rec->period_start_ns);
        if (!strcmp(key, "period_end")) INT(rec->period_end_ns);
        break;
    default:
        if (!strcmp(key, "name")) STR(rec->name);
        if (!strcmp(key, "status")) STR(rec->status);
        if (!strcmp(key, "message")) STR(rec->message);
        break;
    }
#undef STR
#undef INT
#undef NUM
    return 0;
}

static bool src_has(const struct store_src *s, const char *key)
{
    const char *sv;
    int64_t iv;
    double nv;

    return s->l ? line_field(s->l, key, &sv, &iv, &nv) != 0 : json_object_get(s->o, key) != NULL;
}

/* A string field: *out is NULL when the key is absent. Returns 0, or -1
 * when present but not a string. */
static int store_get_str(const struct store_src *s, const char *key, const char **out)
{
    int64_t iv;
    double nv;

    *out = NULL;
    if (s->l) {
        int t = line_field(s->l, key, out, &iv, &nv);
        return t == 0 || t == 's' ? 0 : -1;
    }
    json_t *v = json_object_get(s->o, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

/* A required integer field. */
static int store_get_int(const struct store_src *s, const char *key, int64_t *out)
{
    const char *sv;
    double nv;

    if (s->l)
        return line_field(s->l, key, &sv, out, &nv) == 'i' ? 0 : -1;
    json_t *v = json_object_get(s->o, key);
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* A required number: a JSON number, or when nonfinite is true one of the
 * strings "NaN", "+Inf", "-Inf" (which record_line_read() reads as such). */
static int store_get_num(const struct store_src *s, const char *key, bool nonfinite,
                         double *out)
{
    const char *str;
    int64_t iv;

    if (s->l) {
        int t = line_field(s->l, key, &str, &iv, out);
        if (t == 'i')
            *out = (double)iv;
        return (t == 'n' || t == 'i') && (nonfinite || isfinite(*out)) ? 0 : -1;
    }
    json_t *v = json_object_get(s->o, key);
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (!nonfinite || !json_is_string(v))
        return -1;
    str = json_string_value(v);
    if (strcmp(str, "NaN") == 0)
        *out = NAN;
    else if (strcmp(str, "+Inf") == 0)
        *out = INFINITY;
    else if (strcmp(str, "-Inf") == 0)
        *out = -INFINITY;
    else
        return -1;
    return 0;
}

struct store_label {
    const char *key, *value;
    size_t vlen;
};

static int store_label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct store_label *)a)->key, ((const struct store_label *)b)->key);
}

/* Canonical JSON text of the labels into r->lbuf: from the JSON object, or
 * the labels record_line_read() read. */
static int store_rec_labels(struct store_rec *r, const struct store_src *src, char *err,
                            size_t errlen)
{
    struct store_label l[STORE_LABELS_MAX];
    size_t n = 0;
    const char *k;
    json_t *v, *labels = src->o ? json_object_get(src->o, "labels") : NULL;

    buf_reset(&r->lbuf);
    if (src->l) {
        for (size_t i = 0; i < src->l->rec.nlabels; i++) {
            if (n == STORE_LABELS_MAX)
                FAIL("more than %d labels", STORE_LABELS_MAX);
            l[n].key = src->l->labels[i].key;
            l[n].value = src->l->labels[i].value;
            l[n].vlen = strlen(l[n].value);
            if (!*l[n].key)
                FAIL("a label with an empty key");
            n++;
        }
    } else {
        if (!labels)
            FAIL("no labels");
        if (!json_is_object(labels))
            FAIL("labels is not an object");
        json_object_foreach(labels, k, v) {
            if (n == STORE_LABELS_MAX)
                FAIL("more than %d labels", STORE_LABELS_MAX);
            if (!*k)
                FAIL("a label with an empty key");
            if (!json_is_string(v))
                FAIL("label \"%s\" is not a string", k);
            l[n].key = k;
            l[n].value = json_string_value(v);
            l[n].vlen = json_string_length(v);
            n++;
        }
    }
    if (n > 1)
        qsort(l, n, sizeof l[0], store_label_cmp);
    if (buf_putc(&r->lbuf, '{') != PIPIT_OK)
        FAIL("out of memory");
    for (size_t i = 0; i < n; i++) {
        if ((i && buf_putc(&r->lbuf, ',') != PIPIT_OK) ||
            buf_json_str(&r->lbuf, l[i].key, strlen(l[i].key)) != PIPIT_OK ||
            buf_putc(&r->lbuf, ':') != PIPIT_OK ||
            buf_json_str(&r->lbuf, l[i].value, l[i].vlen) != PIPIT_OK)
            FAIL("out of memory");
    }
    if (buf_putc(&r->lbuf, '}') != PIPIT_OK)
        FAIL("out of memory");
    r->labels = r->lbuf.data;
    r->labels_len = r->lbuf.len;
    return 0;
}

/* Bucket i of a histogram, checked against the one before, into r->bbuf. */
static int store_bucket(struct store_rec *r, size_t i, double le, int64_t count,
                        double *prev_le, int64_t *prev_count, char *err, size_t errlen)
{
    if (isnan(le) || count < 0)
        FAIL("histogram \"%s\": bucket %zu is not {\"le\":number,\"count\":integer}",
             r->name, i);
    if (i && (!(le > *prev_le) || count < *prev_count))
        FAIL("histogram \"%s\": bucket %zu out of order", r->name, i);
    *prev_le = le;
    *prev_count = count;
    if (buf_puts(&r->bbuf, i ? ",{\"le\":" : "{\"le\":") != PIPIT_OK ||
        buf_json_num(&r->bbuf, le) != PIPIT_OK ||
        buf_printf(&r->bbuf, ",\"count\":%lld}", (long long)count) != PIPIT_OK)
        FAIL("out of memory");
    return 0;
}

/* A histogram's buckets, checked (ascending bounds, cumulative counts) and
 * written to r->bbuf as JSON text in the record's own form. */
static int store_rec_buckets(struct store_rec *r, const struct store_src *src, char *err,
                             size_t errlen)
{
    double prev_le = -INFINITY;
    int64_t prev_count = 0;
    json_t *buckets = src->o ? json_object_get(src->o, "buckets") : NULL;
    size_t n = src->l ? src->l->rec.nbuckets : json_array_size(buckets);

    buf_reset(&r->bbuf);
    if ((!src->l && !json_is_array(buckets)) || n == 0)
        FAIL("histogram \"%s\" without buckets", r->name);
    if (buf_putc(&r->bbuf, '[') != PIPIT_OK)
        FAIL("out of memory");
    for (size_t i = 0; i < n; i++) {
        double le;
        int64_t count;

        if (src->l) {
            le = src->l->bounds[i];
            count = (int64_t)src->l->counts[i];   /* read as an int64_t >= 0 */
        } else {
            json_t *bk = json_array_get(buckets, i);
            struct store_src b = { bk, NULL };
            if (!json_is_object(bk) || store_get_num(&b, "le", true, &le) != 0 ||
                store_get_int(&b, "count", &count) != 0)
                FAIL("histogram \"%s\": bucket %zu is not {\"le\":number,\"count\":integer}",
                     r->name, i);
        }
        if (store_bucket(r, i, le, count, &prev_le, &prev_count, err, errlen) != 0)
            return -1;
    }
    if (buf_putc(&r->bbuf, ']') != PIPIT_OK)
        FAIL("out of memory");
    r->buckets = r->bbuf.data;
    r->buckets_len = r->bbuf.len;
    return 0;
}

static int store_rec_metric(struct store_rec *r, const struct store_src *o, char *err, size_t errlen)
{
    static const char *const types[] = { "gauge", "counter", "histogram" };
    const char *type;

    if (store_get_str(o, "name", &r->name) != 0 || !r->name || !*r->name)
        FAIL("metric without a name");
    if (store_get_str(o, "type", &type) != 0 || !type)
        FAIL("metric \"%s\" without a type", r->name);
    for (size_t i = 0; i < 3; i++)
        if (strcmp(type, types[i]) == 0)
            r->type = types[i];
    if (!r->type)
        FAIL("metric \"%s\" has unknown type \"%s\"", r->name, type);
    if (r->type == types[2]) {
        if (store_rec_buckets(r, o, err, errlen) != 0)
            return -1;
        if (store_get_num(o, "sum", true, &r->sum) != 0)
            FAIL("histogram \"%s\" without a sum", r->name);
        if (store_get_int(o, "count", &r->count) != 0 || r->count < 0)
            FAIL("histogram \"%s\" without a count", r->name);
    } else {
        if (store_get_num(o, "value", true, &r->value) != 0)
            FAIL("metric \"%s\" without a value", r->name);
        r->has_value = true;
    }
    if (strlen(r->name) + strlen(r->host) + strlen(r->instance) + r->labels_len >
        STORE_SERIES_KEY_MAX)
        FAIL("metric \"%s\": series key longer than %d bytes", r->name,
             STORE_SERIES_KEY_MAX);
    return 0;
}

static int store_rec_log(struct store_rec *r, const struct store_src *o, char *err, size_t errlen)
{
    static const char *const levels[] = { "error", "warn", "info", "debug", "trace" };
    const char *level;

    if (store_get_str(o, "message", &r->message) != 0 || !r->message)
        FAIL("log record without a message");
    if (store_get_str(o, "level", &level) != 0 || !level)
        FAIL("log record without a level");
    for (size_t i = 0; i < 5; i++)
        if (strcmp(level, levels[i]) == 0)
            r->level = levels[i];
    if (!r->level)
        FAIL("log record with unknown level \"%s\"", level);
    if (store_get_str(o, "source", &r->source) != 0)
        FAIL("log record with a source that is not a string");
    if (src_has(o, "offset")) {
        if (store_get_int(o, "offset", &r->offset) != 0 || r->offset < 0)
            FAIL("log record with an offset that is not an integer");
        r->has_offset = true;
    }
    return 0;
}

/*
 * The amount of a cost line: amount_micros (an integer) is exact and wins;
 * amount, a number, is kept for readers and derived from the micros when a
 * line has only those. A line from an agent before amount_micros has only
 * amount, rounded to micros half away from zero (docs/records.md).
 */
static int store_cost_amount(struct store_rec *r, const struct store_src *o, char *err, size_t errlen)
{
    bool has_amount = src_has(o, "amount");

    if (has_amount && (store_get_num(o, "amount", false, &r->amount) != 0 ||
                       !isfinite(r->amount)))
        FAIL("cost record with an amount that is not a finite number");
    if (src_has(o, "amount_micros")) {
        if (store_get_int(o, "amount_micros", &r->amount_micros) != 0)
            FAIL("cost record with an amount_micros that is not an integer");
        if (!has_amount)
            r->amount = (double)r->amount_micros / 1e6;
        return 0;
    }
    if (!has_amount)
        FAIL("cost record without an amount");
    if (fabs(r->amount) > STORE_AMOUNT_MAX)
        FAIL("cost record with an amount beyond what amount_micros holds");
    r->amount_micros = llround(r->amount * 1e6);
    return 0;
}

static int store_rec_cost(struct store_rec *r, const struct store_src *o, char *err, size_t errlen)
{
    const char *c;

    if (store_cost_amount(r, o, err, errlen) != 0)
        return -1;
    if (store_get_str(o, "currency", &c) != 0 || !c || strlen(c) != 3 ||
        c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || c[2] < 'A' || c[2] > 'Z')
        FAIL("cost record needs a 3-letter currency code");
    r->currency = c;
    if (store_get_str(o, "resource", &r->resource) != 0 || !r->resource)
        FAIL("cost record without a resource");
    if (store_get_int(o, "period_start", &r->period_start) != 0 ||
        store_get_int(o, "period_end", &r->period_end) != 0)
        FAIL("cost record without period_start and period_end");
    return 0;
}

static int store_rec_event(struct store_rec *r, const struct store_src *o, char *err, size_t errlen)
{
    if (store_get_str(o, "name", &r->name) != 0 || !r->name || !*r->name)
        FAIL("event without a name");
    if (store_get_str(o, "status", &r->status) != 0 || !r->status)
        FAIL("event \"%s\" without a status", r->name);
    if (store_get_str(o, "message", &r->message) != 0)
        FAIL("event \"%s\" with a message that is not a string", r->name);
    return 0;
}

/* The record key from "origin" when the line has one. */
static int store_rec_origin(struct store_rec *r, const struct store_src *src, char *err,
                            size_t errlen)
{
    const char *agent;

    if (src->l) {                       /* its seq and index are read in range */
        agent = src->l->rec.origin_agent;
        r->seq = (int64_t)src->l->rec.origin_seq;
        r->idx = src->l->rec.origin_index;
        if (strlen(agent) != 36)
            FAIL("origin.agent is not an agent id");
    } else {
        json_t *origin = json_object_get(src->o, "origin");
        struct store_src o = { origin, NULL };
        if (!json_is_object(origin))
            FAIL("origin is not an object");
        if (store_get_str(&o, "agent", &agent) != 0 || !agent || strlen(agent) != 36)
            FAIL("origin.agent is not an agent id");
        if (store_get_int(&o, "seq", &r->seq) != 0 || r->seq < 0)
            FAIL("origin.seq is not a sequence number");
        if (store_get_int(&o, "index", &r->idx) != 0 || r->idx < 0 || r->idx > UINT32_MAX)
            FAIL("origin.index is not an index");
    }
    r->agent = agent;
    r->relayed = true;
    return 0;
}

/* Check the record's fields, read from src, into r. */
static int store_rec_check(struct store_rec *r, const struct store_src *src, char *err,
                           size_t errlen)
{
    const char *kind;

    if (store_get_str(src, "kind", &kind) != 0 || !kind)
        FAIL("no kind");
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        if (strcmp(kind, store_kind_names[k]) == 0)
            r->kind = k;
    if (!r->kind)
        FAIL("unknown kind \"%.32s\"", kind);
    if (store_get_int(src, "time", &r->time) != 0)
        FAIL("no integer time");
    if (store_get_str(src, "host", &r->host) != 0 || !r->host)
        FAIL("no host");
    if (store_get_str(src, "instance", &r->instance) != 0 || !r->instance)
        FAIL("no instance");
    if ((src->l ? src->l->has_origin : json_object_get(src->o, "origin") != NULL) &&
        store_rec_origin(r, src, err, errlen) != 0)
        return -1;
    if (store_rec_labels(r, src, err, errlen) != 0)
        return -1;
    switch (r->kind) {
    case PIPIT_METRIC: return store_rec_metric(r, src, err, errlen);
    case PIPIT_LOG: return store_rec_log(r, src, err, errlen);
    case PIPIT_COST: return store_rec_cost(r, src, err, errlen);
    default: return store_rec_event(r, src, err, errlen);
    }
}

/* Empty r for the next line, keeping its buffers. */
static void store_rec_reset(struct store_rec *r, const char *agent, int64_t seq, int64_t idx)
{
    struct buf lbuf = r->lbuf, bbuf = r->bbuf;
    struct record_line *line = r->line;

    json_decref(r->root);
    memset(r, 0, sizeof *r);
    r->lbuf = lbuf;
    r->bbuf = bbuf;
    r->line = line;
    r->agent = agent;
    r->seq = seq;
    r->idx = idx;
}

int store_rec_parse_json(struct store_rec *r, const char *line, size_t len,
                         const char *agent, int64_t seq, int64_t idx,
                         char *err, size_t errlen)
{
    json_error_t jerr;

    store_rec_reset(r, agent, seq, idx);
    json_t *o = r->root = json_loadb(line, len, 0, &jerr);
    if (!o)
        FAIL("not JSON: %s at column %d", jerr.text, jerr.column);
    if (!json_is_object(o))
        FAIL("not a JSON object");
    struct store_src src = { o, NULL };
    return store_rec_check(r, &src, err, errlen);
}

/*
 * A line in the encoder's own form is read by record_line_read(), several
 * times faster than through jansson, and goes through the same checks; any
 * other line, and any line those checks refuse (so that the reason is
 * jansson's reading's), is read by store_rec_parse_json().
 */
int store_rec_parse(struct store_rec *r, const char *line, size_t len,
                    const char *agent, int64_t seq, int64_t idx,
                    char *err, size_t errlen)
{
    store_rec_reset(r, agent, seq, idx);
    if (!r->line)
        r->line = calloc(1, sizeof *r->line);
    if (r->line && record_line_read(r->line, line, len)) {
        struct store_src src = { NULL, r->line };
        if (store_rec_check(r, &src, err, errlen) == 0)
            return 0;
    }
    return store_rec_parse_json(r, line, len, agent, seq, idx, err, errlen);
}

void store_rec_free(struct store_rec *r)
{
    json_decref(r->root);
    if (r->line) {
        record_line_free(r->line);
        free(r->line);
    }
    buf_free(&r->lbuf);
    buf_free(&r->bbuf);
    memset(r, 0, sizeof *r);
}

bool store_next_line(const char *payload, size_t size, size_t *pos,
                     const char **line, size_t *len)
{
    if (!payload || *pos >= size)
        return false;
    const char *start = payload + *pos;
    const char *nl = memchr(start, '\n', size - *pos);
    size_t n = nl ? (size_t)(nl - start) : size - *pos;

    *line = start;
    *len = n;
    *pos += n + (nl != NULL);
    return true;
}
