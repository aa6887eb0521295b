/* test_record.c: record checks for every kind and the exact JSON line of each kind (docs/records.md). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include <pipit/plugin.h>
#include "buf.h"
#include "record.h"
#include "../tap.h"

#define T0 1700000000123456789LL

static const struct pipit_label two_labels[] = {
    { "cpu", "total" }, { "state", "user" },
};

static struct pipit_record metric(void)
{
    return (struct pipit_record){
        .struct_size = sizeof(struct pipit_record), .kind = PIPIT_METRIC,
        .time_ns = T0, .name = "cpu.time_seconds", .metric_type = PIPIT_COUNTER,
        .value = 64.23, .labels = two_labels, .nlabels = 2,
    };
}

static const double hist_bounds[] = { 0.1, 1, INFINITY };
static const uint64_t hist_counts[] = { 3, 5, 6 };

static struct pipit_record histogram(void)
{
    return (struct pipit_record){
        .struct_size = sizeof(struct pipit_record), .kind = PIPIT_METRIC,
        .time_ns = T0, .name = "http.latency_seconds",
        .metric_type = PIPIT_HISTOGRAM, .bucket_bounds = hist_bounds,
        .bucket_counts = hist_counts, .nbuckets = 3, .sum = 2.5, .count = 6,
    };
}

static struct pipit_record logrec(void)
{
    return (struct pipit_record){
        .struct_size = sizeof(struct pipit_record), .kind = PIPIT_LOG,
        .time_ns = T0, .level = PIPIT_LOG_WARN, .message = "GET / 200 \"x\"",
        .source = "/var/log/a.log", .offset = 1234,
    };
}

static const struct pipit_label team_label[] = { { "team", "web" } };

static struct pipit_record cost(void)
{
    return (struct pipit_record){
        .struct_size = sizeof(struct pipit_record), .kind = PIPIT_COST,
        .time_ns = T0, .amount = 12.5, .currency = "USD", .resource = "vm/i-123",
        .period_start_ns = 1000, .period_end_ns = 2000,
        .labels = team_label, .nlabels = 1,
    };
}

static struct pipit_record event(void)
{
    return (struct pipit_record){
        .struct_size = sizeof(struct pipit_record), .kind = PIPIT_EVENT,
        .time_ns = T0, .name = "step.finished", .status = "ok", .message = "done",
    };
}

/* record_check accepts rec, with an empty reason buffer left as it was. */
static void accepted(const struct pipit_record *rec, const char *what)
{
    char err[256] = "";
    int r = record_check(rec, err, sizeof err);
    ok(r == PIPIT_OK && err[0] == '\0', "check accepts %s", what);
    if (r != PIPIT_OK)
        diag("  refused: %s", err);
}

/* record_check refuses rec with PIPIT_EINVAL and a reason containing why. */
static void refused(const struct pipit_record *rec, const char *why, const char *what)
{
    char err[256] = "";
    int r = record_check(rec, err, sizeof err);
    ok(r == PIPIT_EINVAL && strstr(err, why) != NULL, "check refuses %s", what);
    if (r != PIPIT_EINVAL || !strstr(err, why))
        diag("  status %d, reason \"%s\", want one with \"%s\"", r, err, why);
}

static void test_kind_names(void)
{
    is_str(record_kind_name(PIPIT_METRIC), "metric", "kind name metric");
    is_str(record_kind_name(PIPIT_LOG), "log", "kind name log");
    is_str(record_kind_name(PIPIT_COST), "cost", "kind name cost");
    is_str(record_kind_name(PIPIT_EVENT), "event", "kind name event");
    ok(record_kind_name(0) == NULL && record_kind_name(5) == NULL &&
       record_kind_name(-1) == NULL, "kind name of unknown kinds is NULL");
    is_int(record_kind_parse("metric"), PIPIT_METRIC, "kind parse metric");
    is_int(record_kind_parse("event"), PIPIT_EVENT, "kind parse event");
    is_int(record_kind_parse("metrics"), 0, "kind parse of an unknown name is 0");
    is_int(record_kind_parse(""), 0, "kind parse of \"\" is 0");
}

static void test_check_good(void)
{
    struct pipit_record r;

    r = metric();
    accepted(&r, "a counter with two labels");
    r.metric_type = PIPIT_GAUGE;
    r.labels = NULL;
    r.nlabels = 0;
    accepted(&r, "a gauge without labels");
    r.value = NAN;
    accepted(&r, "a gauge whose value is NaN (encoded as a string)");
    r = histogram();
    accepted(&r, "a histogram with +Inf as its last bound");
    r.nbuckets = 1;
    accepted(&r, "a histogram with one bucket");
    r = logrec();
    accepted(&r, "a log line with level, source and offset");
    r.level = 0;
    r.source = NULL;
    r.message = "";
    accepted(&r, "a log line with no level and an empty message");
    r = cost();
    accepted(&r, "a cost");
    r.resource = NULL;
    r.amount = -3;
    accepted(&r, "a cost without resource, negative amount (a refund)");
    r = event();
    accepted(&r, "an event");
    r.status = NULL;
    r.message = NULL;
    accepted(&r, "an event with only a name");

    r = metric();
    r.struct_size = sizeof(struct pipit_record) + 64;
    accepted(&r, "a record from a newer plugin (larger struct_size)");

    static const struct pipit_label empty_value[] = { { "k", "" } };
    r = metric();
    r.labels = empty_value;
    r.nlabels = 1;
    accepted(&r, "a label with an empty value");

    struct pipit_label many[64];
    char keys[64][8];
    for (int i = 0; i < 64; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i] = (struct pipit_label){ keys[i], "v" };
    }
    r.labels = many;
    r.nlabels = 64;
    accepted(&r, "64 labels, the most allowed");
}

static void test_check_bad(void)
{
    struct pipit_record r;
    char err[256] = "";

    is_int(record_check(NULL, err, sizeof err), PIPIT_EINVAL, "check refuses NULL");
    ok(strstr(err, "NULL") != NULL, "check of NULL says so");

    r = metric();
    r.struct_size = 0;
    refused(&r, "struct_size", "struct_size 0");
    /* ABI 1.0's record ends at `status`; the relay fields came after it. */
    r.struct_size = offsetof(struct pipit_record, host) - 1;
    refused(&r, "struct_size", "struct_size one byte short of ABI 1.0's");

    r = metric();
    r.kind = 0;
    refused(&r, "unknown record kind 0", "kind 0");
    r.kind = PIPIT_RECORD_KIND_MAX + 1;
    refused(&r, "unknown record kind 5", "kind 5");
    r.kind = -1;
    refused(&r, "unknown record kind -1", "kind -1");

    r = metric();
    r.name = NULL;
    refused(&r, "metric without a name", "a metric with a NULL name");
    r.name = "";
    refused(&r, "metric without a name", "a metric with an empty name");
    r = metric();
    r.metric_type = 0;
    refused(&r, "unknown type 0", "a metric without a type");
    r.metric_type = PIPIT_HISTOGRAM + 1;
    refused(&r, "unknown type 4", "a metric of type 4");

    static const struct pipit_label dup[] = {
        { "a", "1" }, { "b", "2" }, { "a", "3" },
    };
    r = metric();
    r.labels = dup;
    r.nlabels = 3;
    refused(&r, "label key \"a\" given twice", "a duplicate label key");
    r.labels = NULL;
    r.nlabels = 2;
    refused(&r, "labels is NULL", "NULL labels with nlabels 2");
    static const struct pipit_label nokey[] = { { NULL, "v" } };
    static const struct pipit_label emptykey[] = { { "", "v" } };
    static const struct pipit_label novalue[] = { { "a", "1" }, { "k", NULL } };
    r.labels = nokey;
    r.nlabels = 1;
    refused(&r, "label 0 has no key", "a label with a NULL key");
    r.labels = emptykey;
    refused(&r, "label 0 has no key", "a label with an empty key");
    r.labels = novalue;
    r.nlabels = 2;
    refused(&r, "label 1 has no key or no value", "a label with a NULL value");
    struct pipit_label many[65];
    char keys[65][8];
    for (int i = 0; i < 65; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i] = (struct pipit_label){ keys[i], "v" };
    }
    r.labels = many;
    r.nlabels = 65;
    refused(&r, "65 labels, more than 64", "65 labels");

    r = histogram();
    r.nbuckets = 0;
    refused(&r, "without buckets", "a histogram with no buckets");
    r = histogram();
    r.bucket_bounds = NULL;
    refused(&r, "without buckets", "a histogram without bounds");
    r = histogram();
    r.bucket_counts = NULL;
    refused(&r, "without buckets", "a histogram without counts");
    static const double equal_bounds[] = { 0.1, 0.1, 1 };
    static const double desc_bounds[] = { 0.1, 1, 0.5 };
    static const double nan_bounds[] = { 0.1, NAN, 1 };
    static const uint64_t desc_counts[] = { 3, 2, 6 };
    r = histogram();
    r.bucket_bounds = equal_bounds;
    refused(&r, "bucket 1 out of order", "histogram bounds equal");
    r.bucket_bounds = desc_bounds;
    refused(&r, "bucket 2 out of order", "histogram bounds descending");
    r.bucket_bounds = nan_bounds;
    refused(&r, "bucket 1 out of order", "a histogram bound that is NaN");
    r = histogram();
    r.bucket_counts = desc_counts;
    refused(&r, "bucket 1 out of order", "histogram counts decreasing");

    r = logrec();
    r.message = NULL;
    refused(&r, "log record without a message", "a log without message");
    r = logrec();
    r.level = PIPIT_LOG_TRACE + 1;
    refused(&r, "unknown level 6", "a log of level 6");
    r.level = -1;
    refused(&r, "unknown level -1", "a log of level -1");

    static const char *const bad_currency[] = {
        "", "US", "USDX", "U$D", "12 ", "\xe2\x82\xac", "usd",
    };
    r = cost();
    r.currency = NULL;
    refused(&r, "currency", "a cost without currency");
    for (size_t i = 0; i < sizeof bad_currency / sizeof bad_currency[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "a cost with currency \"%s\"", bad_currency[i]);
        r.currency = bad_currency[i];
        refused(&r, "currency", what);
    }
    r = cost();
    r.amount = NAN;
    refused(&r, "not a finite number", "a cost of NaN");
    r.amount = INFINITY;
    refused(&r, "not a finite number", "a cost of +Inf");
    r.amount = -INFINITY;
    refused(&r, "not a finite number", "a cost of -Inf");

    r = event();
    r.name = NULL;
    refused(&r, "event without a name", "an event with a NULL name");
    r.name = "";
    refused(&r, "event without a name", "an event with an empty name");

    /* A short reason buffer is cut, never overrun */
    char small[8];
    memset(small, 'X', sizeof small);
    r = event();
    r.name = NULL;
    record_check(&r, small, 6);
    ok(small[5] == '\0' && small[6] == 'X' && small[7] == 'X',
       "a short reason buffer is cut at its size");
}

/* Encode rec, compare the exact line, and parse it with jansson. */
static json_t *encoded_is(const struct pipit_record *rec, const char *host,
                          const char *instance, int64_t now, const char *want,
                          const char *what)
{
    struct buf b = BUF_INIT;
    json_error_t e;
    json_t *j = NULL;

    is_int(record_encode_json(&b, rec, host, instance, now), PIPIT_OK,
           "encode %s: status", what);
    is_str(b.data, want, "encode %s: exact line", what);
    if (b.data) {
        ok(b.len > 0 && b.data[b.len - 1] == '\n' && memchr(b.data, '\n', b.len - 1) == NULL,
           "encode %s: one line ending in a newline", what);
        j = json_loadb(b.data, b.len, 0, &e);
        ok(j && json_is_object(j), "encode %s: jansson parses an object", what);
        if (!j)
            diag("  %s", e.text);
    }
    buf_free(&b);
    return j;
}

/* j[key] is a string equal to want. */
static bool jstr(json_t *j, const char *key, const char *want)
{
    json_t *v = json_object_get(j, key);
    return v && json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

static bool jint(json_t *j, const char *key, long long want)
{
    json_t *v = json_object_get(j, key);
    return v && json_is_integer(v) && json_integer_value(v) == want;
}

static bool jreal(json_t *j, const char *key, double want)
{
    json_t *v = json_object_get(j, key);
    return v && json_is_number(v) && json_number_value(v) == want;
}

/* The keys of object j in order, comma-separated, into out. */
static const char *keys_of(json_t *j, char *out, size_t cap)
{
    const char *key;
    json_t *v;
    size_t n = 0;

    out[0] = '\0';
    json_object_foreach(j, key, v)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "", key);
    return out;
}

static void test_encode(void)
{
    struct pipit_record r;
    json_t *j;
    char keys[512];

    r = metric();
    j = encoded_is(&r, "web-01", "cpu", 5,
                   "{\"kind\":\"metric\",\"time\":1700000000123456789,\"host\":\"web-01\","
                   "\"instance\":\"cpu\",\"name\":\"cpu.time_seconds\",\"type\":\"counter\","
                   "\"value\":64.23,\"labels\":{\"cpu\":\"total\",\"state\":\"user\"}}\n",
                   "a counter");
    ok(j && jstr(j, "kind", "metric") && jint(j, "time", T0) && jstr(j, "host", "web-01") &&
       jstr(j, "instance", "cpu") && jstr(j, "name", "cpu.time_seconds") &&
       jstr(j, "type", "counter") && jreal(j, "value", 64.23),
       "encode a counter: every field has its value and type");
    json_t *labels = json_object_get(j, "labels");
    ok(labels && json_is_object(labels) && json_object_size(labels) == 2 &&
       jstr(labels, "cpu", "total") && jstr(labels, "state", "user"),
       "encode a counter: labels object");
    is_str(keys_of(j, keys, sizeof keys),
           "kind,time,host,instance,name,type,value,labels", "encode a counter: key order");
    json_decref(j);

    r = histogram();
    j = encoded_is(&r, "web-01", "api", 5,
                   "{\"kind\":\"metric\",\"time\":1700000000123456789,\"host\":\"web-01\","
                   "\"instance\":\"api\",\"name\":\"http.latency_seconds\",\"type\":\"histogram\","
                   "\"buckets\":[{\"le\":0.1,\"count\":3},{\"le\":1,\"count\":5},"
                   "{\"le\":\"+Inf\",\"count\":6}],\"sum\":2.5,\"count\":6,\"labels\":{}}\n",
                   "a histogram");
    json_t *buckets = json_object_get(j, "buckets");
    json_t *b2 = json_array_get(buckets, 2);
    ok(j && json_array_size(buckets) == 3 && jreal(json_array_get(buckets, 0), "le", 0.1) &&
       jint(json_array_get(buckets, 1), "count", 5) && jstr(b2, "le", "+Inf") &&
       jint(b2, "count", 6) && jreal(j, "sum", 2.5) && jint(j, "count", 6) &&
       json_object_get(j, "value") == NULL,
       "encode a histogram: buckets, sum and count, no value");
    is_str(keys_of(j, keys, sizeof keys),
           "kind,time,host,instance,name,type,buckets,sum,count,labels",
           "encode a histogram: key order");
    json_decref(j);

    r = logrec();
    j = encoded_is(&r, "web-01", "nginx", 5,
                   "{\"kind\":\"log\",\"time\":1700000000123456789,\"host\":\"web-01\","
                   "\"instance\":\"nginx\",\"level\":\"warn\",\"message\":\"GET / 200 \\\"x\\\"\","
                   "\"source\":\"/var/log/a.log\",\"offset\":1234,\"labels\":{}}\n",
                   "a log line");
    ok(j && jstr(j, "level", "warn") && jstr(j, "message", "GET / 200 \"x\"") &&
       jstr(j, "source", "/var/log/a.log") && jint(j, "offset", 1234),
       "encode a log line: level, message, source, offset");
    is_str(keys_of(j, keys, sizeof keys),
           "kind,time,host,instance,level,message,source,offset,labels",
           "encode a log line: key order");
    json_decref(j);

    r = logrec();
    r.level = 0;
    r.source = NULL;
    r.message = "line one\nline two\t\x01";
    j = encoded_is(&r, "h", "i", 5,
                   "{\"kind\":\"log\",\"time\":1700000000123456789,\"host\":\"h\","
                   "\"instance\":\"i\",\"level\":\"info\","
                   "\"message\":\"line one\\nline two\\t\\u0001\",\"labels\":{}}\n",
                   "a log line without level or source");
    ok(j && jstr(j, "message", "line one\nline two\t\x01") &&
       !json_object_get(j, "source") && !json_object_get(j, "offset"),
       "encode a log line: newlines escaped, no source or offset when unknown");
    json_decref(j);

    r = cost();
    j = encoded_is(&r, "web-01", "billing", 5,
                   "{\"kind\":\"cost\",\"time\":1700000000123456789,\"host\":\"web-01\","
                   "\"instance\":\"billing\",\"amount\":12.5,\"amount_micros\":12500000,"
                   "\"currency\":\"USD\","
                   "\"resource\":\"vm/i-123\",\"period_start\":1000,\"period_end\":2000,"
                   "\"labels\":{\"team\":\"web\"}}\n",
                   "a cost");
    ok(j && jreal(j, "amount", 12.5) && jstr(j, "currency", "USD") &&
       jstr(j, "resource", "vm/i-123") && jint(j, "period_start", 1000) &&
       jint(j, "period_end", 2000) && jstr(json_object_get(j, "labels"), "team", "web"),
       "encode a cost: amount, currency, resource, period");
    is_str(keys_of(j, keys, sizeof keys),
           "kind,time,host,instance,amount,amount_micros,currency,resource,period_start,"
           "period_end,labels",
           "encode a cost: key order");
    json_decref(j);

    r = event();
    j = encoded_is(&r, "web-01", "deploy", 5,
                   "{\"kind\":\"event\",\"time\":1700000000123456789,\"host\":\"web-01\","
                   "\"instance\":\"deploy\",\"name\":\"step.finished\",\"status\":\"ok\","
                   "\"message\":\"done\",\"labels\":{}}\n",
                   "an event");
    ok(j && jstr(j, "name", "step.finished") && jstr(j, "status", "ok") &&
       jstr(j, "message", "done"), "encode an event: name, status, message");
    is_str(keys_of(j, keys, sizeof keys),
           "kind,time,host,instance,name,status,message,labels", "encode an event: key order");
    json_decref(j);

    r = event();
    r.status = NULL;
    r.message = NULL;
    r.time_ns = 0;
    j = encoded_is(&r, NULL, NULL, 42,
                   "{\"kind\":\"event\",\"time\":42,\"host\":\"\",\"instance\":\"\","
                   "\"name\":\"step.finished\",\"status\":\"\",\"labels\":{}}\n",
                   "an event with time 0, no host, instance, status or message");
    ok(j && jint(j, "time", 42) && !json_object_get(j, "message"),
       "encode: time 0 becomes the now given; no message key without a message");
    json_decref(j);

    /* Labels: escaped keys and values, in the order given */
    static const struct pipit_label odd[] = {
        { "z\"q", "a\\b" }, { "a", "\xc3\xa9\xff" }, { "m", "" },
    };
    r = metric();
    r.metric_type = PIPIT_GAUGE;
    r.value = -INFINITY;
    r.labels = odd;
    r.nlabels = 3;
    j = encoded_is(&r, "h", "i", 5,
                   "{\"kind\":\"metric\",\"time\":1700000000123456789,\"host\":\"h\","
                   "\"instance\":\"i\",\"name\":\"cpu.time_seconds\",\"type\":\"gauge\","
                   "\"value\":\"-Inf\",\"labels\":{\"z\\\"q\":\"a\\\\b\","
                   "\"a\":\"\xc3\xa9\xef\xbf\xbd\",\"m\":\"\"}}\n",
                   "a gauge of -Inf with labels needing escapes");
    labels = json_object_get(j, "labels");
    ok(labels && jstr(labels, "z\"q", "a\\b") && jstr(labels, "a", "\xc3\xa9\xef\xbf\xbd") &&
       jstr(labels, "m", "") && jstr(j, "value", "-Inf"),
       "encode: label keys and values escaped, invalid UTF-8 replaced");
    is_str(keys_of(labels, keys, sizeof keys), "z\"q,a,m", "encode: labels in the order given");
    json_decref(j);

    /* Appending: a second record goes after the first, both lines intact */
    struct buf b = BUF_INIT;
    r = event();
    record_encode_json(&b, &r, "h", "i", 1);
    size_t first = b.len;
    r = cost();
    record_encode_json(&b, &r, "h", "i", 1);
    ok(first > 0 && b.len > first && b.data[first - 1] == '\n' &&
       strncmp(b.data + first, "{\"kind\":\"cost\"", 14) == 0 && b.data[b.len - 1] == '\n',
       "encode appends one line after what the buffer holds");
    buf_free(&b);

    /* now: record_now_ns is the realtime clock, which is after 2020 */
    ok(record_now_ns() > 1577836800000000000LL, "record_now_ns is Unix time in ns");
}

/* Relayed records keep their first host and instance, and say where they
 * first travelled (docs/records.md: origin comes right after instance). */
static void test_relay(void)
{
    static const char uuid[] = "0f0e0d0c-0b0a-4908-8706-050403020100";
    struct pipit_record r = metric();
    json_t *j;
    char keys[512];

    r.host = "edge-7";
    r.instance = "cpu0";
    r.origin_agent = uuid;
    r.origin_seq = 42;
    r.origin_index = 3;
    accepted(&r, "a relayed record");
    j = encoded_is(&r, "relay", "kafka_in", 5,
                   "{\"kind\":\"metric\",\"time\":1700000000123456789,\"host\":\"edge-7\","
                   "\"instance\":\"cpu0\",\"origin\":{\"agent\":"
                   "\"0f0e0d0c-0b0a-4908-8706-050403020100\",\"seq\":42,\"index\":3},"
                   "\"name\":\"cpu.time_seconds\",\"type\":\"counter\",\"value\":64.23,"
                   "\"labels\":{\"cpu\":\"total\",\"state\":\"user\"}}\n",
                   "a relayed record");
    json_t *origin = json_object_get(j, "origin");
    ok(j && jstr(j, "host", "edge-7") && jstr(j, "instance", "cpu0") && origin &&
       jstr(origin, "agent", uuid) && jint(origin, "seq", 42) && jint(origin, "index", 3),
       "encode a relayed record: first host and instance kept, origin object");
    is_str(keys_of(j, keys, sizeof keys),
           "kind,time,host,instance,origin,name,type,value,labels",
           "encode a relayed record: origin right after instance");
    json_decref(j);

    r = metric();
    r.instance = "cpu0";
    j = encoded_is(&r, "relay", "kafka_in", 5,
                   "{\"kind\":\"metric\",\"time\":1700000000123456789,\"host\":\"relay\","
                   "\"instance\":\"cpu0\",\"name\":\"cpu.time_seconds\",\"type\":\"counter\","
                   "\"value\":64.23,\"labels\":{\"cpu\":\"total\",\"state\":\"user\"}}\n",
                   "a record with only its instance set");
    json_decref(j);

    r = metric();
    r.host = "";
    refused(&r, "host or instance given but empty", "an empty relayed host");
    r = metric();
    r.instance = "";
    refused(&r, "host or instance given but empty", "an empty relayed instance");
    r = metric();
    r.origin_agent = "0f0e0d0c";
    refused(&r, "origin_agent is not a UUID", "a short origin agent");

    /* A plugin built before the relay fields: its struct ends at status and
     * the fields after it are never read */
    r = metric();
    r.struct_size = offsetof(struct pipit_record, host);
    r.host = "";                        /* beyond its struct_size: not looked at */
    accepted(&r, "a record of the ABI 1.0 size");
}

/*
 * Exact money (ABI 1.1): amount_micros wins over amount and is written as
 * an integer, with amount derived from its digits; a plugin that only sets
 * amount (or that was built before the field) gets it rounded to micros.
 */
static void test_cost_micros(void)
{
    struct pipit_record r = cost();
    struct buf b = BUF_INIT;
    json_t *j;

    r.amount = 0;
    r.amount_micros = 41600;
    j = encoded_is(&r, "h", "i", 5,
                   "{\"kind\":\"cost\",\"time\":1700000000123456789,\"host\":\"h\","
                   "\"instance\":\"i\",\"amount\":0.0416,\"amount_micros\":41600,"
                   "\"currency\":\"USD\",\"resource\":\"vm/i-123\",\"period_start\":1000,"
                   "\"period_end\":2000,\"labels\":{\"team\":\"web\"}}\n",
                   "an exact cost: amount written from its micros, digit for digit");
    json_decref(j);

    r.amount_micros = -3500001;
    r.amount = NAN;                     /* ignored when micros are set */
    accepted(&r, "an exact cost whose amount is NaN (amount_micros wins)");
    j = encoded_is(&r, "h", "i", 5,
                   "{\"kind\":\"cost\",\"time\":1700000000123456789,\"host\":\"h\","
                   "\"instance\":\"i\",\"amount\":-3.500001,\"amount_micros\":-3500001,"
                   "\"currency\":\"USD\",\"resource\":\"vm/i-123\",\"period_start\":1000,"
                   "\"period_end\":2000,\"labels\":{\"team\":\"web\"}}\n",
                   "a negative exact cost (a refund)");
    json_decref(j);

    r.amount_micros = INT64_MIN;
    ok(record_encode_json(&b, &r, "h", "i", 5) == PIPIT_OK &&
       strstr(b.data, "\"amount\":-9223372036854.775808,"
                      "\"amount_micros\":-9223372036854775808,") != NULL,
       "the most negative amount_micros encodes exactly");
    buf_free(&b);

    /* amount only: rounded half away from zero */
    r = cost();
    r.amount = 0.0000125;
    is_int(record_cost_amount_micros(&r), 13, "an amount of 0.0000125 is 13 micros");
    r.amount = -0.0000125;
    is_int(record_cost_amount_micros(&r), -13, "an amount of -0.0000125 is -13 micros");
    r.amount = 0.1 + 0.2;               /* 0.30000000000000004 */
    is_int(record_cost_amount_micros(&r), 300000, "0.1 + 0.2 is 300000 micros");
    /* a float amount is written as the micros it rounds to, so that a
     * relayed line reads back to the same bytes (found by fuzz_relay) */
    r.amount = 0.18446744073709551615;
    j = encoded_is(&r, "h", "i", 5,
                   "{\"kind\":\"cost\",\"time\":1700000000123456789,\"host\":\"h\","
                   "\"instance\":\"i\",\"amount\":0.184467,\"amount_micros\":184467,"
                   "\"currency\":\"USD\",\"resource\":\"vm/i-123\",\"period_start\":1000,"
                   "\"period_end\":2000,\"labels\":{\"team\":\"web\"}}\n",
                   "a float amount is written as its micros, both keys agreeing");
    json_decref(j);
    r.amount = 4e-7;                    /* rounds to no micros: the float stays */
    ok(record_encode_json(&b, &r, "h", "i", 5) == PIPIT_OK &&
       strstr(b.data, "\"amount\":4e-07,\"amount_micros\":0,") != NULL,
       "an amount under half a micro keeps its float, with amount_micros 0");
    buf_free(&b);
    r.amount = 9.3e12;
    refused(&r, "beyond what amount_micros holds", "an amount past int64 micros");
    r.amount = -9.3e12;
    refused(&r, "beyond what amount_micros holds", "a negative amount past int64 micros");

    /* a plugin built for ABI 1.0: amount_micros is beyond its struct */
    r = cost();
    r.struct_size = offsetof(struct pipit_record, amount_micros);
    r.amount_micros = 1;                /* not looked at */
    is_int(record_cost_micros(&r), 0, "amount_micros beyond struct_size reads as unset");
    is_int(record_cost_amount_micros(&r), 12500000, "an ABI 1.0 cost's micros come from amount");
    j = encoded_is(&r, "h", "i", 5,
                   "{\"kind\":\"cost\",\"time\":1700000000123456789,\"host\":\"h\","
                   "\"instance\":\"i\",\"amount\":12.5,\"amount_micros\":12500000,"
                   "\"currency\":\"USD\",\"resource\":\"vm/i-123\",\"period_start\":1000,"
                   "\"period_end\":2000,\"labels\":{\"team\":\"web\"}}\n",
                   "an ABI 1.0 cost encodes with amount_micros from its amount");
    json_decref(j);
    r.host = "";
    refused(&r, "host or instance given but empty",
            "an ABI 1.0 record with the relay fields is still checked");
}

int main(void)
{
    test_kind_names();
    test_check_good();
    test_check_bad();
    test_encode();
    test_relay();
    test_cost_micros();
    return done_testing();
}
