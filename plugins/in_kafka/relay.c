/* relay.c: one JSON record line of an agent batch parsed back into a record for relaying. */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>
#include "record_line.h"
#include "relay.h"

static const char *const kinds[] = { NULL, "metric", "log", "cost", "event" };

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

/*
 * The unsigned integer member k of o into *out: absent or not an integer
 * reads as 0; a negative integer is refused (false), as it has no unsigned
 * value and would be written back as a number no JSON reader takes.
 */
static bool juint(json_t *o, const char *k, uint64_t *out)
{
    json_t *v = json_object_get(o, k);
    json_int_t i = json_integer_value(v);

    *out = 0;
    if (i < 0)
        return false;
    *out = (uint64_t)i;
    return true;
}

/*
 * The record's own origin, which a relayed record must keep exactly: an
 * object with the agent id, a sequence number (an integer >= 0) and an
 * index (an integer of 32 bits). Returns false when it is anything else.
 */
static bool origin_of(json_t *origin, struct pipit_record *rec)
{
    json_t *seq = json_object_get(origin, "seq"), *index = json_object_get(origin, "index");

    if (!json_is_object(origin) || !json_is_integer(seq) || json_integer_value(seq) < 0 ||
        !json_is_integer(index) || json_integer_value(index) < 0 ||
        json_integer_value(index) > UINT32_MAX)
        return false;
    rec->origin_agent = jstr(origin, "agent");
    rec->origin_seq = (uint64_t)json_integer_value(seq);
    rec->origin_index = (uint32_t)json_integer_value(index);
    return rec->origin_agent != NULL;
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
int relay_parse_json(const char *line, size_t len, int kind, const char *agent, uint64_t seq,
                     uint32_t index, relay_emit_cb emit, void *arg)
{
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
    if (origin && !origin_of(origin, &rec))
        goto out;
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
                if (!juint(e, "count", &counts[i]))
                    goto out;
            }
            rec.bucket_bounds = bounds;
            rec.bucket_counts = counts;
            rec.nbuckets = json_array_size(b);
            rec.sum = jnum(json_object_get(o, "sum"));
            if (!juint(o, "count", &rec.count))
                goto out;
        } else {
            rec.value = jnum(json_object_get(o, "value"));
        }
        break;
    case PIPIT_LOG:
        rec.level = level_of(jstr(o, "level"));
        rec.message = jstr(o, "message");
        rec.source = jstr(o, "source");
        if (!juint(o, "offset", &rec.offset))
            goto out;
        break;
    case PIPIT_COST: {
        /* amount_micros, when the line has it, is the exact amount: a
         * line from an agent before ABI 1.1 has only amount. */
        json_t *micros = json_object_get(o, "amount_micros");
        if (micros && !json_is_integer(micros))
            goto out;
        rec.amount_micros = json_integer_value(micros);
        rec.amount = jnum(json_object_get(o, "amount"));
        rec.currency = jstr(o, "currency");
        rec.resource = jstr(o, "resource");
        rec.period_start_ns = json_integer_value(json_object_get(o, "period_start"));
        rec.period_end_ns = json_integer_value(json_object_get(o, "period_end"));
        break;
    }
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


/* ---- the line as the encoder writes it ---------------------------------- */

/*
 * Lines in the form record_encode_json() writes (every line of a pipit
 * agent) are read by record_line_read(), about ten times faster than
 * through jansson; any other line is read by jansson, and both come to the
 * same record and status (tests/fuzz/fuzz_relay checks it on every input).
 */
int relay_parse(const char *line, size_t len, int kind, const char *agent, uint64_t seq,
                uint32_t index, relay_emit_cb emit, void *arg)
{
    struct record_line l;
    int r = PIPIT_EPARSE;

    l.strings = NULL;
    l.cap = 0;
    if (kind < PIPIT_METRIC || kind > PIPIT_EVENT || !record_line_read(&l, line, len) ||
        l.rec.nlabels > RELAY_MAX_LABELS) {
        record_line_free(&l);
        return relay_parse_json(line, len, kind, agent, seq, index, emit, arg);
    }
    struct pipit_record *rec = &l.rec;
    if (!l.has_origin) {
        rec->origin_agent = agent;
        rec->origin_seq = seq;
        rec->origin_index = index;
    }
    if (rec->kind == kind && rec->time_ns > 0 && *rec->host && *rec->instance)
        r = emit(arg, rec);
    record_line_free(&l);
    return r;
}
