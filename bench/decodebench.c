/* decodebench.c: the aggregator's per-record work, stage by stage: verify + decompress, parse, re-encode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "buf.h"
#include "record.h"
#include "relay.h"
#include "wire.h"

/*
 * Usage: decodebench [RECORDS] [BATCH] [CODEC]
 *
 * Builds RECORDS (default 1000000) metric records in batches of BATCH
 * (default 1000) as signed wire messages (CODEC zlib or zstd, level 1), the
 * way agents send them, then times on one thread what the aggregator does
 * with each message:
 *   verify   CRC, HMAC-SHA256 and decompression (wire_decode)
 *   parse    each JSON line into a record with its origin (relay_parse)
 *   encode   each record back into the JSON line of the next batch
 *            (record_encode_json, what the host does on emit)
 * and prints one row per stage: CPU seconds and records per CPU second,
 * then the three together. Deduplication is one bit per batch and is not
 * measured apart.
 */

static const char agent[] = "0b5e8a2c-3d4f-4a6b-9c7d-1e2f3a4b5c6d";
static const char key[] = "bench-signing-key-0123456789abcdef";

static double cpu_now(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* One batch of n metric lines, like those of the host collectors. */
static void make_payload(struct buf *p, size_t first, size_t n)
{
    static const char *const names[] = { "cpu.time_seconds", "memory.used_bytes",
                                         "net.rx_bytes", "disk.read_bytes",
                                         "load.avg1" };
    char line[512];

    buf_reset(p);
    for (size_t i = first; i < first + n; i++) {
        int len = snprintf(line, sizeof line,
                           "{\"kind\":\"metric\",\"time\":%lld,\"host\":\"web-%02zu\","
                           "\"instance\":\"cpu\",\"name\":\"%s\",\"type\":\"counter\","
                           "\"value\":%zu.%02zu,\"labels\":{\"cpu\":\"cpu%zu\","
                           "\"state\":\"user\"}}\n",
                           1795314569751772657LL + (long long)i * 1000, i % 64,
                           names[i % 5], i * 7, i % 100, i % 16);
        buf_append(p, line, (size_t)len);
    }
}

struct sink {
    struct buf out;
    size_t records;
    bool encode;
};

static int on_record(void *arg, const struct pipit_record *rec)
{
    struct sink *s = arg;

    s->records++;
    if (s->encode)
        return record_encode_json(&s->out, rec, rec->host, rec->instance, 0);
    return PIPIT_OK;
}

/* Parse (and with s->encode, re-encode) every line of a payload. */
static void relay_all(struct sink *s, const struct buf *payload, uint64_t seq)
{
    const char *p = payload->data, *end = p + payload->len;
    uint32_t index = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (relay_parse(p, len, PIPIT_METRIC, agent, seq, index++, on_record, s) != PIPIT_OK) {
            fprintf(stderr, "decodebench: a line did not parse\n");
            exit(1);
        }
        p += len + 1;
    }
}

static void row(const char *stage, double secs, size_t records)
{
    printf("| %-28s | %8.3f | %12.0f |\n", stage, secs, secs > 0 ? (double)records / secs : 0);
}

int main(int argc, char **argv)
{
    size_t total = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t per = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    const char *codec = argc > 3 ? argv[3] : "zlib";
    int c = wire_codec_parse(codec);
    if (c < 0 || per == 0) {
        fprintf(stderr, "usage: decodebench [RECORDS] [BATCH] [zlib|zstd]\n");
        return 2;
    }
    size_t nmsg = (total + per - 1) / per;
    struct buf *msgs = calloc(nmsg, sizeof *msgs), payload = BUF_INIT;
    struct wire_encode_opts opts = { .codec = c, .level = 1, .key = key,
                                     .key_len = sizeof key - 1 };
    size_t raw = 0, wire_bytes = 0;

    for (size_t m = 0; m < nmsg; m++) {
        size_t n = total - m * per < per ? total - m * per : per;
        make_payload(&payload, m * per, n);
        raw += payload.len;
        if (wire_encode(&msgs[m], &opts, PIPIT_METRIC, agent, m + 1, (uint32_t)n,
                        1795314569751772657LL, payload.data, payload.len) != PIPIT_OK) {
            fprintf(stderr, "decodebench: wire_encode failed\n");
            return 1;
        }
        wire_bytes += msgs[m].len;
    }
    printf("%zu records in %zu batches of %zu, %s level 1, signed: %.1f MiB of JSON, "
           "%.1f MiB on the wire\n\n", total, nmsg, per, codec, (double)raw / 1048576,
           (double)wire_bytes / 1048576);
    printf("| %-28s | %8s | %12s |\n|---|---:|---:|\n", "stage (one thread)", "CPU s",
           "records/s");

    /* verify + decompress */
    struct wire_header h;
    char err[256];
    struct buf *plain = calloc(nmsg, sizeof *plain);
    double t0 = cpu_now();
    for (size_t m = 0; m < nmsg; m++)
        if (wire_decode(msgs[m].data, msgs[m].len, key, sizeof key - 1, true, 64u << 20, &h,
                        &plain[m], err, sizeof err) != WIRE_OK) {
            fprintf(stderr, "decodebench: %s\n", err);
            return 1;
        }
    double verify = cpu_now() - t0;
    row("verify + decompress", verify, total);

    struct sink s = { BUF_INIT, 0, false };
    t0 = cpu_now();
    for (size_t m = 0; m < nmsg; m++)
        relay_all(&s, &plain[m], m + 1);
    double parse = cpu_now() - t0;
    row("parse (relay_parse)", parse, total);

    s.encode = true;
    s.records = 0;
    t0 = cpu_now();
    for (size_t m = 0; m < nmsg; m++) {
        buf_reset(&s.out);
        relay_all(&s, &plain[m], m + 1);
    }
    double both = cpu_now() - t0;
    row("re-encode (record_encode_json)", both - parse, total);
    row("all three", verify + both, total);

    for (size_t m = 0; m < nmsg; m++) {
        buf_free(&msgs[m]);
        buf_free(&plain[m]);
    }
    free(msgs);
    free(plain);
    buf_free(&payload);
    buf_free(&s.out);
    return 0;
}
