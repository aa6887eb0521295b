/* test_record_line.c: record_line_read() reads back every line record_encode_json() writes, to the same record, and gives up on any other form. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <pipit/plugin.h>
#include "buf.h"
#include "record.h"
#include "record_line.h"
#include "../tap.h"

static struct record_line rl;

/* Encode rec, read the line back, encode what was read: the same bytes. */
static bool round_trips(const struct pipit_record *rec, const char *what)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    bool same = false;

    if (record_encode_json(&a, rec, "host-1", "inst", 1700000000000000000LL) == PIPIT_OK &&
        record_line_read(&rl, a.data, a.len - 1) &&
        record_encode_json(&b, &rl.rec, "other", "other", 1) == PIPIT_OK)
        same = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    if (!same)
        diag("  %s: wrote %s  read back %s", what, a.data ? a.data : "", b.data ? b.data : "");
    buf_free(&a);
    buf_free(&b);
    return same;
}

static void test_round_trips(void)
{
    static const char *const texts[] = {
        "plain", "", "quote \" and \\ backslash", "tab\tnew\nline\rret\bbs\fff",
        "slash / kept", "ctl \x01 escaped", "utf-8 caf\xc3\xa9", "bad \xff byte",
    };
    struct pipit_label labels[3] = { { "a", "1" }, { "b", "" }, { "c", "x\"y" } };
    double bounds[] = { 0.1, 1, INFINITY };
    uint64_t counts[] = { 1, 5, 9 };
    size_t n = 0, read = 0, refused = 0;

    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        bool plain_ascii = !strpbrk(texts[i], "\x01\xc3\xff");
        struct pipit_record recs[] = {
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_METRIC,
              .name = texts[i], .metric_type = PIPIT_GAUGE, .value = -0.125,
              .labels = labels, .nlabels = 3 },
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_METRIC, .name = "m",
              .metric_type = PIPIT_COUNTER, .value = NAN },
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_METRIC, .name = "h",
              .metric_type = PIPIT_HISTOGRAM, .bucket_bounds = bounds,
              .bucket_counts = counts, .nbuckets = 3, .sum = 12.5, .count = 9 },
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_LOG,
              .level = PIPIT_LOG_WARN, .message = texts[i], .source = "/var/log/a.log",
              .offset = 123456789 },
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_LOG,
              .message = texts[i] },
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_COST, .amount = 1.5,
              .amount_micros = 1500000, .currency = "USD", .resource = texts[i],
              .period_start_ns = 1, .period_end_ns = 2 },
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_EVENT,
              .name = "step.finished", .status = "ok", .message = texts[i],
              .origin_agent = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", .origin_seq = 7,
              .origin_index = 4294967295u },
            { .struct_size = sizeof(struct pipit_record), .kind = PIPIT_EVENT,
              .name = texts[i], .status = "failed", .time_ns = 42 },
        };
        for (size_t k = 0; k < sizeof recs / sizeof recs[0]; k++) {
            bool has_text = recs[k].name == texts[i] || recs[k].message == texts[i] ||
                            recs[k].resource == texts[i];
            n++;
            if (plain_ascii || !has_text) {
                read += round_trips(&recs[k], texts[i]);
            } else {                    /* \u escapes and UTF-8 are jansson's */
                struct buf a = BUF_INIT;
                record_encode_json(&a, &recs[k], "h", "i", 1);
                refused += !record_line_read(&rl, a.data, a.len - 1);
                buf_free(&a);
            }
        }
    }
    ok(read + refused == n, "%zu records of each kind, escapes, histograms, origins: %zu read "
       "back to the same line, %zu (\\u escapes, UTF-8) left to jansson", n, read, refused);
}

static void test_other_forms(void)
{
    static const char *const lines[] = {
        "",
        "{}",
        "{\"time\":1,\"kind\":\"event\",\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"labels\":{}}",
        "{\"kind\":\"event\", \"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"labels\":{}}",
        "{\"kind\":\"event\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"labels\":{}} ",
        "{\"kind\":\"event\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"labels\":{}}x",
        "{\"kind\":\"event\",\"time\":1.5,\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"labels\":{}}",
        "{\"kind\":\"event\",\"time\":99999999999999999999,\"host\":\"h\",\"instance\":\"i\","
            "\"name\":\"e\",\"status\":\"s\",\"labels\":{}}",
        "{\"kind\":\"event\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"labels\":{\"a\":\"1\",\"a\":\"2\"}}",
        "{\"kind\":\"event\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"extra\":1,\"labels\":{}}",
        "{\"kind\":\"log\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"level\":\"info\","
            "\"message\":\"m\",\"source\":\"f\",\"offset\":-1,\"labels\":{}}",
        "{\"kind\":\"log\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"level\":\"loud\","
            "\"message\":\"m\",\"labels\":{}}",
        "{\"kind\":\"metric\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"m\","
            "\"type\":\"gauge\",\"value\":1e999,\"labels\":{}}",
        "{\"kind\":\"metric\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"m\","
            "\"type\":\"gauge\",\"value\":01,\"labels\":{}}",
        "{\"kind\":\"event\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"origin\":"
            "{\"agent\":\"a\",\"seq\":1,\"index\":4294967296},\"name\":\"e\",\"status\":\"s\","
            "\"labels\":{}}",
        "{\"kind\":\"event\",\"time\":1,\"host\":\"h\",\"instance\":\"i\",\"name\":\"e\","
            "\"status\":\"s\",\"labels\":{}",
    };
    size_t given_up = 0, n = sizeof lines / sizeof lines[0];

    for (size_t i = 0; i < n; i++) {
        if (!record_line_read(&rl, lines[i], strlen(lines[i])))
            given_up++;
        else
            diag("  read: %s", lines[i]);
    }
    ok(given_up == n, "%zu lines in other forms or out of range are left to jansson (%zu)", n,
       given_up);
}

int main(void)
{
    rl.strings = NULL;
    rl.cap = 0;
    plan(2);
    test_round_trips();
    test_other_forms();
    record_line_free(&rl);
    return done_testing();
}
