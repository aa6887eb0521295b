/* relay.c: one JSON record line of an agent batch parsed back into a record for relaying. */
#include <jansson.h>
#include <string.h>
#include "relay.h"

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static double jnum(json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *s = json_string_value(v);
    if (s && strcmp(s, "NaN") == 0)
        return __builtin_nan("");
    if (s && strcmp(s, "+Inf") == 0)
        return __builtin_inf();
    if (s && strcmp(s, "-Inf") == 0)
        return -__builtin_inf();
    return 0;
}

static int level_of(const char *s)
{
    static const char *const names[] = { NULL, "error", "warn", "info", "debug", "trace" };
    for (int i = 1; i <= 5; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return PIPIT_LOG_INFO;
}

static int type_of(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "gauge") == 0)
        return PIPIT_GAUGE;
    if (strcmp(s, "counter") == 0)
        return PIPIT_COUNTER;
    if (strcmp(s, "histogram") == 0)
        return PIPIT_HISTOGRAM;
    return 0;
}

/*
 * Re-emit one JSON record line of the batch as the same record, keeping its
 * host, instance and time, with its origin (agent, seq, index): relayed
 * records keep the origin they already carry. Returns the emit status, or
 * PIPIT_EPARSE for a line that is not a record of the batch's kind. The
 * record's strings point into the parsed document, freed after emit.
 */
int relay_parse(const char *line, size_t len, int kind, const char *agent, uint64_t seq,
                uint32_t index, relay_emit_cb emit, void *arg)
{
    static const char *const kinds[] = { NULL, "metric", "log", "cost", "event" };
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    struct pipit_label labels[RELAY_MAX_LABELS];
    double bounds[256];
    uint64_t counts[256];
    int r = PIPIT_EPARSE;

    if (kind < PIPIT_METRIC || kind > PIPIT_EVENT || !json_is_object(o))
        goto out;
    const char *k = jstr(o, "kind");
    if (!k || strcmp(k, kinds[kind]) != 0)
        goto out;
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = kind,
        .time_ns = json_integer_value(json_object_get(o, "time")),
        .host = jstr(o, "host"), .instance = jstr(o, "instance"),
        .origin_agent = agent, .origin_seq = seq, .origin_index = index,
    };
    if (rec.time_ns <= 0 || !rec.host || !*rec.host || !rec.instance || !*rec.instance)
        goto out;
    json_t *origin = json_object_get(o, "origin");
    if (json_is_object(origin)) {
        rec.origin_agent = jstr(origin, "agent");
        rec.origin_seq = (uint64_t)json_integer_value(json_object_get(origin, "seq"));
        rec.origin_index = (uint32_t)json_integer_value(json_object_get(origin, "index"));
        if (!rec.origin_agent)
            goto out;
    }
    json_t *lab = json_object_get(o, "labels"), *v;
    const char *key;
    if (lab && !json_is_object(lab))
        goto out;
    json_object_foreach(lab, key, v) {
        if (rec.nlabels == RELAY_MAX_LABELS || !json_is_string(v))
            goto out;
        labels[rec.nlabels].key = key;
        labels[rec.nlabels].value = json_string_value(v);
        rec.nlabels++;
    }
    rec.labels = labels;
    switch (kind) {
    case PIPIT_METRIC:
        rec.name = jstr(o, "name");
        rec.metric_type = type_of(jstr(o, "type"));
        if (rec.metric_type == PIPIT_HISTOGRAM) {
            json_t *b = json_object_get(o, "buckets"), *e;
            size_t i;
            if (!json_is_array(b) || json_array_size(b) > 256)
                goto out;
            json_array_foreach(b, i, e) {
                bounds[i] = jnum(json_object_get(e, "le"));
                counts[i] = (uint64_t)json_integer_value(json_object_get(e, "count"));
            }
            rec.bucket_bounds = bounds;
            rec.bucket_counts = counts;
            rec.nbuckets = json_array_size(b);
            rec.sum = jnum(json_object_get(o, "sum"));
            rec.count = (uint64_t)json_integer_value(json_object_get(o, "count"));
        } else {
            rec.value = jnum(json_object_get(o, "value"));
        }
        break;
    case PIPIT_LOG:
        rec.level = level_of(jstr(o, "level"));
        rec.message = jstr(o, "message");
        rec.source = jstr(o, "source");
        rec.offset = (uint64_t)json_integer_value(json_object_get(o, "offset"));
        break;
    case PIPIT_COST:
        rec.amount = jnum(json_object_get(o, "amount"));
        rec.currency = jstr(o, "currency");
        rec.resource = jstr(o, "resource");
        rec.period_start_ns = json_integer_value(json_object_get(o, "period_start"));
        rec.period_end_ns = json_integer_value(json_object_get(o, "period_end"));
        break;
    case PIPIT_EVENT:
        rec.name = jstr(o, "name");
        rec.status = jstr(o, "status");
        rec.message = jstr(o, "message");
        break;
    }
    r = emit(arg, &rec);
out:
    json_decref(o);
    return r;
}

