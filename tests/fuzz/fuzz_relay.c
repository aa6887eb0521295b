/* fuzz_relay.c: libFuzzer target for in_kafka's record relay (relay_parse, and its jansson reader as the reference), checked through record_check and record_encode_json. */
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
#include "buf.h"
#include "record.h"
#include "relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_AGENT "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define FUZZ_SEQ 42
#define FUZZ_INDEX 7
#define FUZZ_NOW 1700000000000000000LL  /* never used: relayed times are > 0 */

/* What one relay_parse() call produced. */
struct fuzz_out {
    json_t *in;                         /* the input line read by jansson, or NULL */
    int kind;                           /* the batch's kind */
    int emitted;                        /* emit calls */
    bool checked;                       /* the record passed record_check */
    struct buf line;                    /* its JSON line when it did */
};

/* True when the member k of a and of b is the same JSON value. */
static bool fuzz_same(json_t *a, json_t *b, const char *k)
{
    json_t *va = json_object_get(a, k), *vb = json_object_get(b, k);
    return va && vb && json_equal(va, vb);
}

/*
 * A relayed record keeps its identity: time, host and instance of the line,
 * and its origin, the line's own when it has one, else the batch's.
 */
static void fuzz_identity(json_t *in, json_t *out)
{
    if (!fuzz_same(in, out, "time") || !fuzz_same(in, out, "host") ||
        !fuzz_same(in, out, "instance"))
        abort();
    json_t *oo = json_object_get(out, "origin"), *oi = json_object_get(in, "origin");
    if (oi) {
        if (!fuzz_same(oi, oo, "agent") || !fuzz_same(oi, oo, "seq") ||
            !fuzz_same(oi, oo, "index"))
            abort();
    } else {
        const char *a = json_string_value(json_object_get(oo, "agent"));
        if (!a || strcmp(a, FUZZ_AGENT) != 0 ||
            json_integer_value(json_object_get(oo, "seq")) != FUZZ_SEQ ||
            json_integer_value(json_object_get(oo, "index")) != FUZZ_INDEX)
            abort();
    }
}

/*
 * The emit callback: a record the host would accept must encode to exactly
 * one line of JSON that jansson reads back as an object of the batch's
 * kind, with the identity of the input line. Returns PIPIT_OK, or
 * PIPIT_EINVAL for a record the host refuses.
 */
static int fuzz_emit(void *arg, const struct pipit_record *rec)
{
    static const char *const kinds[] = { NULL, "metric", "log", "cost", "event" };
    struct fuzz_out *o = arg;
    char err[256];

    o->emitted++;
    if (rec->kind != o->kind || o->kind < PIPIT_METRIC || o->kind > PIPIT_RECORD_KIND_MAX)
        abort();
    if (record_check(rec, err, sizeof err) != PIPIT_OK)
        return PIPIT_EINVAL;
    o->checked = true;
    buf_reset(&o->line);
    if (record_encode_json(&o->line, rec, "relay-host", "relay-instance", FUZZ_NOW) != PIPIT_OK)
        abort();
    const char *nl = memchr(o->line.data, '\n', o->line.len);
    if (!nl || nl != o->line.data + o->line.len - 1)
        abort();                        /* one line, ending in its newline */

    json_error_t jerr;
    json_t *j = json_loadb(o->line.data, o->line.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j))
        abort();                        /* the relay produced invalid JSON */
    const char *k = json_string_value(json_object_get(j, "kind"));
    if (!k || strcmp(k, kinds[o->kind]) != 0 || !o->in)
        abort();
    fuzz_identity(o->in, j);
    json_decref(j);
    return PIPIT_OK;
}

/* Relay data as a line of a batch of kind through parse; returns the status. */
static int fuzz_relay_with(int (*parse)(const char *, size_t, int, const char *, uint64_t,
                                        uint32_t, relay_emit_cb, void *),
                           const char *data, size_t size, int kind, struct fuzz_out *o)
{
    json_error_t jerr;

    json_decref(o->in);
    o->in = json_loadb(data, size, JSON_REJECT_DUPLICATES, &jerr);
    o->kind = kind;
    o->emitted = 0;
    o->checked = false;
    int r = parse(data, size, kind, FUZZ_AGENT, FUZZ_SEQ, FUZZ_INDEX, fuzz_emit, o);
    if (o->emitted > 1 || (r == PIPIT_EPARSE && o->emitted) ||
        (r == PIPIT_OK) != o->checked)
        abort();                        /* emit once, and only for a record */
    return r;
}

/*
 * Relay data as a line of a batch of kind; returns the status. relay_parse()
 * reads the encoder's own lines without jansson: for every input it must
 * come to the same status and the same record as relay_parse_json().
 */
static int fuzz_relay(const char *data, size_t size, int kind, struct fuzz_out *o)
{
    static struct fuzz_out ref = { .in = NULL, .line = BUF_INIT };
    int r = fuzz_relay_with(relay_parse, data, size, kind, o);
    int rr = fuzz_relay_with(relay_parse_json, data, size, kind, &ref);

    if (r != rr || o->emitted != ref.emitted ||
        (r == PIPIT_OK && (o->line.len != ref.line.len ||
                           memcmp(o->line.data, ref.line.data, o->line.len) != 0)))
        abort();                        /* the two readers disagree */
    return r;
}

/*
 * The input is one line, tried as a record of every kind (and of the kinds
 * just outside the range, which take nothing). What the relay
 * writes is relayed again by the next aggregator: that second relay must
 * accept the line and write the same bytes.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_out a = { .in = NULL, .line = BUF_INIT }, b = { .in = NULL, .line = BUF_INIT };

    for (int kind = PIPIT_METRIC - 1; kind <= PIPIT_RECORD_KIND_MAX + 1; kind++) {
        int r = fuzz_relay((const char *)data, size, kind, &a);
        if ((kind < PIPIT_METRIC || kind > PIPIT_RECORD_KIND_MAX) && r != PIPIT_EPARSE)
            abort();                    /* no record of an unknown kind */
        if (r != PIPIT_OK)
            continue;
        if (fuzz_relay(a.line.data, a.line.len - 1, kind, &b) != PIPIT_OK ||
            b.line.len != a.line.len || memcmp(b.line.data, a.line.data, a.line.len) != 0)
            abort();                    /* a relayed line changes when relayed again */
    }
    json_decref(a.in);
    json_decref(b.in);
    buf_free(&a.line);
    buf_free(&b.line);
    return 0;
}
