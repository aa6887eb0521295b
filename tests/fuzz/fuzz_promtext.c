/* fuzz_promtext.c: libFuzzer target for the Prometheus text parser (plugins/common) and in_exec's influx parser, each record checked with record_check. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "influx.h"
#include "promtext.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Counts of one parse, to check against the parser's own. */
struct fuzz_count {
    unsigned long records, errors;
};

/*
 * Every record the parser emits must pass the host's record_check, encode
 * as JSON, and a histogram must end with its +Inf bucket holding count.
 */
static void fuzz_emit(void *arg, const struct pipit_record *rec)
{
    struct fuzz_count *c = arg;
    struct buf b = BUF_INIT;
    char err[256];

    c->records++;
    if (record_check(rec, err, sizeof err) != PIPIT_OK)
        abort();
    if (rec->kind != PIPIT_METRIC || rec->struct_size != sizeof *rec)
        abort();
    if (rec->metric_type == PIPIT_HISTOGRAM &&
        (!isinf(rec->bucket_bounds[rec->nbuckets - 1]) ||
         rec->bucket_counts[rec->nbuckets - 1] != rec->count ||
         rec->nbuckets > PROMTEXT_MAX_BUCKETS))
        abort();
    if (rec->nlabels > PROMTEXT_MAX_LABELS)
        abort();
    if (record_encode_json(&b, rec, "host", "exec", 1) != PIPIT_OK)
        abort();
    buf_free(&b);
}

static void fuzz_error(void *arg, unsigned long line, const char *reason)
{
    struct fuzz_count *c = arg;

    c->errors++;
    if (line == 0 || !reason || !*reason)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_count c = { 0, 0 };
    struct promtext_stats st;

    if (promtext_parse((const char *)data, size, fuzz_emit, fuzz_error, &c, &st) != PIPIT_OK)
        return 0;
    if (st.records != c.records || st.errors != c.errors || st.lines > size + 1)
        abort();
    memset(&c, 0, sizeof c);
    if (influx_parse((const char *)data, size, fuzz_emit, fuzz_error, &c, &st) != PIPIT_OK)
        return 0;
    if (st.records != c.records || st.errors != c.errors || st.lines > size + 1)
        abort();
    return 0;
}
