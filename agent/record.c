/* record.c: checking records from plugins and encoding them as JSON lines (docs/records.md). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "record.h"

#define RECORD_MIN_SIZE \
    (offsetof(struct pipit_record, status) + sizeof(const char *))
/* True when rec is large enough to hold field: a record of an older plugin
 * ends before the fields appended after it was built. */
#define RECORD_HAS(rec, field) \
    ((rec)->struct_size >= offsetof(struct pipit_record, field) + sizeof((rec)->field))
/* |amount| beyond this does not fit in amount_micros (int64_t, 2^63 / 10^6). */
#define RECORD_AMOUNT_MAX 9223372036854.0
#define RECORD_MAX_LABELS 64

static const char *const kind_names[] = {
    [PIPIT_METRIC] = "metric", [PIPIT_LOG] = "log",
    [PIPIT_COST] = "cost",     [PIPIT_EVENT] = "event",
};

static const char *const type_names[] = {
    [PIPIT_GAUGE] = "gauge", [PIPIT_COUNTER] = "counter",
    [PIPIT_HISTOGRAM] = "histogram",
};

static const char *const level_names[] = {
    [PIPIT_LOG_ERROR] = "error", [PIPIT_LOG_WARN] = "warn",
    [PIPIT_LOG_INFO] = "info",   [PIPIT_LOG_DEBUG] = "debug",
    [PIPIT_LOG_TRACE] = "trace",
};

const char *record_kind_name(int kind)
{
    if (kind < PIPIT_METRIC || kind > PIPIT_RECORD_KIND_MAX)
        return NULL;
    return kind_names[kind];
}

int record_kind_parse(const char *name)
{
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        if (strcmp(name, kind_names[k]) == 0)
            return k;
    return 0;
}

int64_t record_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An ISO 4217 code: exactly three letters A-Z (not any three bytes: "U$D"
 * and the euro sign's three UTF-8 bytes are not codes). */
static bool currency_valid(const char *c)
{
    if (!c)
        return false;
    for (int i = 0; i < 3; i++)
        if (c[i] < 'A' || c[i] > 'Z')
            return false;
    return c[3] == '\0';
}

int64_t record_cost_micros(const struct pipit_record *rec)
{
    return RECORD_HAS(rec, amount_micros) ? rec->amount_micros : 0;
}

int64_t record_cost_amount_micros(const struct pipit_record *rec)
{
    int64_t micros = record_cost_micros(rec);

    return micros ? micros : llround(rec->amount * 1e6);
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); return PIPIT_EINVAL; } while (0)

/*
 * Check rec for its kind. Every string a kind requires must be non-NULL and
 * non-empty; labels must have keys, values and no duplicate keys; histogram
 * bounds must ascend with cumulative counts that never decrease.
 */
int record_check(const struct pipit_record *rec, char *err, size_t errlen)
{
    if (!rec)
        FAIL("record is NULL");
    if (rec->struct_size < RECORD_MIN_SIZE)
        FAIL("record struct_size %zu is smaller than ABI 1.0's %zu",
             rec->struct_size, (size_t)RECORD_MIN_SIZE);
    if (!record_kind_name(rec->kind))
        FAIL("unknown record kind %d", rec->kind);
    if (RECORD_HAS(rec, origin_index)) {
        if ((rec->host && !*rec->host) || (rec->instance && !*rec->instance))
            FAIL("host or instance given but empty");
        if (rec->origin_agent && strlen(rec->origin_agent) != 36)
            FAIL("origin_agent is not a UUID");
    }
    if (rec->nlabels > RECORD_MAX_LABELS)
        FAIL("%zu labels, more than %d", rec->nlabels, RECORD_MAX_LABELS);
    if (rec->nlabels && !rec->labels)
        FAIL("nlabels is %zu but labels is NULL", rec->nlabels);
    for (size_t i = 0; i < rec->nlabels; i++) {
        const struct pipit_label *l = &rec->labels[i];
        if (!l->key || !*l->key || !l->value)
            FAIL("label %zu has no key or no value", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(rec->labels[j].key, l->key) == 0)
                FAIL("label key \"%s\" given twice", l->key);
    }
    switch (rec->kind) {
    case PIPIT_METRIC:
        if (!rec->name || !*rec->name)
            FAIL("metric without a name");
        if (rec->metric_type < PIPIT_GAUGE || rec->metric_type > PIPIT_HISTOGRAM)
            FAIL("metric \"%s\" has unknown type %d", rec->name, rec->metric_type);
        if (rec->metric_type == PIPIT_HISTOGRAM) {
            if (rec->nbuckets == 0 || !rec->bucket_bounds || !rec->bucket_counts)
                FAIL("histogram \"%s\" without buckets", rec->name);
            for (size_t i = 1; i < rec->nbuckets; i++)
                if (!(rec->bucket_bounds[i] > rec->bucket_bounds[i - 1]) ||
                    rec->bucket_counts[i] < rec->bucket_counts[i - 1])
                    FAIL("histogram \"%s\": bucket %zu out of order", rec->name, i);
        }
        break;
    case PIPIT_LOG:
        if (!rec->message)
            FAIL("log record without a message");
        if (rec->level && (rec->level < PIPIT_LOG_ERROR || rec->level > PIPIT_LOG_TRACE))
            FAIL("log record with unknown level %d", rec->level);
        break;
    case PIPIT_COST:
        if (!currency_valid(rec->currency))
            FAIL("cost record needs a 3-letter currency code");
        if (record_cost_micros(rec) != 0)
            break;                      /* exact: amount is not looked at */
        if (!isfinite(rec->amount))
            FAIL("cost amount is not a finite number");
        if (fabs(rec->amount) > RECORD_AMOUNT_MAX)
            FAIL("cost amount %g is beyond what amount_micros holds", rec->amount);
        break;
    case PIPIT_EVENT:
        if (!rec->name || !*rec->name)
            FAIL("event without a name");
        break;
    }
    return PIPIT_OK;
}

/* ,"key": (keys are the encoder's own, plain ASCII). Always inlined, as are
 * the put_key_* below, so that strlen() of the constant key is folded. */
#define PUT_KEY_INLINE static inline __attribute__((always_inline))

PUT_KEY_INLINE int put_key(struct buf *b, const char *key)
{
    size_t n = strlen(key);

    if (buf_reserve(b, n + 4) != PIPIT_OK)
        return PIPIT_ENOMEM;
    char *p = b->data + b->len;
    p[0] = ',';
    p[1] = '"';
    memcpy(p + 2, key, n);
    p[n + 2] = '"';
    p[n + 3] = ':';
    p[n + 4] = '\0';
    b->len += n + 4;
    return PIPIT_OK;
}

PUT_KEY_INLINE int put_key_str(struct buf *b, const char *key, const char *s)
{
    put_key(b, key);
    return buf_json_str(b, s, strlen(s));
}

PUT_KEY_INLINE int put_key_num(struct buf *b, const char *key, double v)
{
    put_key(b, key);
    return buf_json_num(b, v);
}

PUT_KEY_INLINE int put_key_u64(struct buf *b, const char *key, uint64_t v)
{
    put_key(b, key);
    return buf_u64(b, v);
}

/* ,"key":"name" for the names of the encoder's own tables */
PUT_KEY_INLINE int put_key_name(struct buf *b, const char *key, const char *name)
{
    put_key(b, key);
    buf_putc(b, '"');
    buf_puts(b, name);
    return buf_putc(b, '"');
}

/*
 * The amount of a cost as JSON: "amount" (a number for readers that want
 * one) then "amount_micros" (the exact integer). An exact amount is written
 * as its decimal digits, with no trailing zeros, so that "amount" is the
 * same number: 41600 micros is 0.0416, not 0.041600000000000005.
 */
static int put_cost_amount(struct buf *b, const struct pipit_record *rec)
{
    /* A float amount is written as the micros it rounds to, so that the two
     * keys agree and the line encodes to the same bytes when relayed again. */
    int64_t micros = record_cost_amount_micros(rec);

    if (micros) {
        uint64_t mag = micros < 0 ? 0 - (uint64_t)micros : (uint64_t)micros;
        char frac[8];
        int n = snprintf(frac, sizeof frac, "%06llu", (unsigned long long)(mag % 1000000));

        while (n > 0 && frac[n - 1] == '0')
            frac[--n] = '\0';
        buf_printf(b, ",\"amount\":%s%llu%s%s", micros < 0 ? "-" : "",
                   (unsigned long long)(mag / 1000000), n ? "." : "", frac);
    } else {
        put_key_num(b, "amount", rec->amount);
    }
    return buf_printf(b, ",\"amount_micros\":%lld", (long long)micros);
}

/*
 * Encode one record as a JSON line. Key order is fixed (kind, time, host,
 * instance, then the kind's fields, labels last) so equal records encode to
 * equal bytes. Returns PIPIT_OK or PIPIT_ENOMEM.
 */
int record_encode_json(struct buf *out, const struct pipit_record *rec,
                       const char *host, const char *instance, int64_t now_ns)
{
    size_t start = out->len;
    int64_t t = rec->time_ns ? rec->time_ns : now_ns;

    buf_puts(out, "{\"kind\":\"");
    buf_puts(out, kind_names[rec->kind]);
    buf_puts(out, "\",\"time\":");
    buf_i64(out, t);
    if (rec->host)
        host = rec->host;
    if (rec->instance)
        instance = rec->instance;
    put_key_str(out, "host", host ? host : "");
    put_key_str(out, "instance", instance ? instance : "");
    if (rec->origin_agent) {
        buf_puts(out, ",\"origin\":{\"agent\":");
        buf_json_str(out, rec->origin_agent, strlen(rec->origin_agent));
        put_key_u64(out, "seq", rec->origin_seq);
        put_key_u64(out, "index", rec->origin_index);
        buf_putc(out, '}');
    }
    switch (rec->kind) {
    case PIPIT_METRIC:
        put_key_str(out, "name", rec->name);
        put_key_name(out, "type", type_names[rec->metric_type]);
        if (rec->metric_type == PIPIT_HISTOGRAM) {
            buf_puts(out, ",\"buckets\":[");
            for (size_t i = 0; i < rec->nbuckets; i++) {
                buf_puts(out, i ? ",{\"le\":" : "{\"le\":");
                buf_json_num(out, rec->bucket_bounds[i]);
                buf_printf(out, ",\"count\":%llu}",
                           (unsigned long long)rec->bucket_counts[i]);
            }
            buf_putc(out, ']');
            put_key_num(out, "sum", rec->sum);
            put_key_u64(out, "count", rec->count);
        } else {
            put_key_num(out, "value", rec->value);
        }
        break;
    case PIPIT_LOG:
        put_key_name(out, "level", level_names[rec->level ? rec->level : PIPIT_LOG_INFO]);
        put_key_str(out, "message", rec->message);
        if (rec->source) {
            put_key_str(out, "source", rec->source);
            put_key_u64(out, "offset", rec->offset);
        }
        break;
    case PIPIT_COST:
        put_cost_amount(out, rec);
        put_key_str(out, "currency", rec->currency);
        put_key_str(out, "resource", rec->resource ? rec->resource : "");
        buf_printf(out, ",\"period_start\":%lld,\"period_end\":%lld",
                   (long long)rec->period_start_ns, (long long)rec->period_end_ns);
        break;
    case PIPIT_EVENT:
        put_key_str(out, "name", rec->name);
        put_key_str(out, "status", rec->status ? rec->status : "");
        if (rec->message)
            put_key_str(out, "message", rec->message);
        break;
    }
    buf_puts(out, ",\"labels\":{");
    for (size_t i = 0; i < rec->nlabels; i++) {
        if (i)
            buf_putc(out, ',');
        buf_json_str(out, rec->labels[i].key, strlen(rec->labels[i].key));
        buf_putc(out, ':');
        buf_json_str(out, rec->labels[i].value, strlen(rec->labels[i].value));
    }
    if (buf_puts(out, "}}\n") != PIPIT_OK) {
        out->len = start;               /* never leave half a line */
        return PIPIT_ENOMEM;
    }
    return PIPIT_OK;
}
