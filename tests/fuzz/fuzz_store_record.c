/* fuzz_store_record.c: libFuzzer target for the stores' record-line parser (store_next_line, store_rec_parse). */
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

/* Parse one line into r (reused across calls, as the stores do). */
static void fuzz_parse(struct store_rec *r, const char *line, size_t len, int64_t idx)
{
    char err[256];

    err[0] = '\0';
    if (store_rec_parse(r, line, len, FUZZ_AGENT, FUZZ_SEQ, idx, err, sizeof err) == 0)
        fuzz_check(r, idx);
    else if (!err[0])
        abort();                        /* every refusal says why */
}

/*
 * The input is a batch payload: walked line by line as the stores walk it,
 * every line parsed into the same record. The whole input is also parsed
 * as one line, so records spread over several lines of JSON are tried too.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *payload = (const char *)data, *line;
    struct store_rec r = { 0 };
    size_t pos = 0, len, lines = 0;

    while (store_next_line(payload, size, &pos, &line, &len)) {
        if (line < payload || len > size || line + len > payload + size || pos > size)
            abort();
        fuzz_parse(&r, line, len, (int64_t)lines++);
    }
    if (pos != size && size)
        abort();                        /* the walk covers the payload */
    fuzz_parse(&r, payload, size, 0);
    store_rec_free(&r);
    return 0;
}
