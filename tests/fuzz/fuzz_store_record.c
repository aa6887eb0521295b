/* fuzz_store_record.c: libFuzzer target for the stores' record-line parser (store_next_line, store_rec_parse, checked against its jansson reader). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <pipit/plugin.h>
#include "store_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_AGENT "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define FUZZ_SEQ 42

/* Abort unless text (len bytes, NUL-terminated) is JSON of the given type. */
static json_t *fuzz_json(const char *text, size_t len, json_type type)
{
    json_error_t jerr;
    json_t *j;

    if (!text || strlen(text) != len)
        abort();
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || json_typeof(j) != type)
        abort();
    return j;
}

/*
 * Check what a successful parse promises: a known kind, the fields its kind
 * requires, an agent id as the key, canonical labels (a JSON object whose
 * keys ascend by their bytes) and, for histograms, buckets as a JSON array.
 */
static void fuzz_check(const struct store_rec *r, int64_t idx)
{
    if (r->kind < PIPIT_METRIC || r->kind > PIPIT_RECORD_KIND_MAX ||
        strcmp(store_kind_name(r->kind), "unknown") == 0 || !r->host || !r->instance ||
        !r->agent || r->seq < 0 || r->idx < 0)
        abort();
    if (r->relayed ? strlen(r->agent) != 36
                   : (strcmp(r->agent, FUZZ_AGENT) != 0 || r->seq != FUZZ_SEQ || r->idx != idx))
        abort();

    json_t *l = fuzz_json(r->labels, r->labels_len, JSON_OBJECT), *v;
    const char *k, *prev = NULL;
    json_object_foreach(l, k, v) {
        if (!json_is_string(v) || (prev && strcmp(prev, k) >= 0))
            abort();
        prev = k;
    }
    json_decref(l);

    switch (r->kind) {
    case PIPIT_METRIC:
        if (!r->name || !*r->name || !r->type ||
            strlen(r->name) + strlen(r->host) + strlen(r->instance) + r->labels_len >
                STORE_SERIES_KEY_MAX)
            abort();
        if (strcmp(r->type, "histogram") == 0) {
            json_t *b = fuzz_json(r->buckets, r->buckets_len, JSON_ARRAY);
            if (r->has_value || json_array_size(b) == 0 || r->count < 0)
                abort();
            json_decref(b);
        } else if (!r->has_value) {
            abort();
        }
        break;
    case PIPIT_LOG:
        if (!r->level || !r->message || (r->has_offset && r->offset < 0))
            abort();
        break;
    case PIPIT_COST:
        if (!r->currency || strlen(r->currency) != 3 || !r->resource)
            abort();
        break;
    case PIPIT_EVENT:
        if (!r->name || !*r->name || !r->status)
            abort();
        break;
    }
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_num(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b);
}

/* The two readers agree on everything a store takes from a record. */
static void fuzz_same(const struct store_rec *a, const struct store_rec *b)
{
    if (a->kind != b->kind || a->time != b->time || !same_str(a->host, b->host) ||
        !same_str(a->instance, b->instance) || !same_str(a->agent, b->agent) ||
        a->seq != b->seq || a->idx != b->idx || a->relayed != b->relayed ||
        a->labels_len != b->labels_len || memcmp(a->labels, b->labels, a->labels_len) != 0 ||
        !same_str(a->name, b->name) || !same_str(a->type, b->type) ||
        a->has_value != b->has_value || !same_num(a->value, b->value) ||
        a->buckets_len != b->buckets_len ||
        (a->buckets_len && memcmp(a->buckets, b->buckets, a->buckets_len) != 0) ||
        !same_num(a->sum, b->sum) || a->count != b->count || !same_str(a->level, b->level) ||
        !same_str(a->message, b->message) || !same_str(a->source, b->source) ||
        a->has_offset != b->has_offset || a->offset != b->offset ||
        !same_num(a->amount, b->amount) || a->amount_micros != b->amount_micros ||
        !same_str(a->currency, b->currency) || !same_str(a->resource, b->resource) ||
        a->period_start != b->period_start || a->period_end != b->period_end ||
        !same_str(a->status, b->status))
        abort();
}

/*
 * Parse one line into r (reused across calls, as the stores do), and into
 * ref through jansson alone: store_rec_parse() reads the encoder's own
 * lines without jansson, and must come to the same record, or to the same
 * refusal for the same reason.
 */
static void fuzz_parse(struct store_rec *r, struct store_rec *ref, const char *line,
                       size_t len, int64_t idx)
{
    char err[256], referr[256];

    err[0] = referr[0] = '\0';
    int got = store_rec_parse(r, line, len, FUZZ_AGENT, FUZZ_SEQ, idx, err, sizeof err);
    int want = store_rec_parse_json(ref, line, len, FUZZ_AGENT, FUZZ_SEQ, idx, referr,
                                    sizeof referr);
    if (got != want || strcmp(err, referr) != 0)
        abort();                        /* the two readers disagree */
    if (got == 0) {
        fuzz_check(r, idx);
        fuzz_same(r, ref);
    } else if (!err[0]) {
        abort();                        /* every refusal says why */
    }
}

/*
 * The input is a batch payload: walked line by line as the stores walk it,
 * every line parsed into the same record. The whole input is also parsed
 * as one line, so records spread over several lines of JSON are tried too.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *payload = (const char *)data, *line;
    struct store_rec r = { 0 }, ref = { 0 };
    size_t pos = 0, len, lines = 0;

    while (store_next_line(payload, size, &pos, &line, &len)) {
        if (line < payload || len > size || line + len > payload + size || pos > size)
            abort();
        fuzz_parse(&r, &ref, line, len, (int64_t)lines++);
    }
    if (pos != size && size)
        abort();                        /* the walk covers the payload */
    fuzz_parse(&r, &ref, payload, size, 0);
    store_rec_free(&r);
    store_rec_free(&ref);
    return 0;
}
