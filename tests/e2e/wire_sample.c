/* wire_sample.c: write sample wire messages and the records they hold, for decode.sh and the fuzz corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "wire.h"
#include "../wire_forge.h"

#define AGENT "0f8fad5b-d9cb-469f-a165-70867728950e"
#define KEY "sample-key"

static const char *dir;

static void put(const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "wire_sample: cannot write %s\n", path);
        exit(1);
    }
}

/* Encode payload as name.bin and write the payload to name.ndjson. */
static void sample(const char *name, int codec, int kind, const char *key, uint64_t seq,
                   const struct buf *payload, struct buf *m)
{
    struct wire_encode_opts o = { .codec = codec, .level = 0, .key = key,
                                  .key_len = key ? strlen(key) : 0 };
    uint32_t count = 0;
    char file[256];

    for (size_t i = 0; i < payload->len; i++)
        count += payload->data[i] == '\n';
    buf_reset(m);
    if (wire_encode(m, &o, kind, AGENT, seq, count, 1700000000000000000LL + (int64_t)seq,
                    payload->data, payload->len) != PIPIT_OK) {
        fprintf(stderr, "wire_sample: cannot encode %s\n", name);
        exit(1);
    }
    snprintf(file, sizeof file, "%s.bin", name);
    put(file, m->data, m->len);
    snprintf(file, sizeof file, "%s.ndjson", name);
    put(file, payload->data ? payload->data : "", payload->len);
}

/*
 * Write name.bin: a metric batch of one record, zlib codec, whose header
 * declares raw_len uncompressed bytes whatever the payload holds: the
 * payload is inflate_len zero bytes compressed at zlib's best level. The
 * header (docs/wire-format.md, version 1) and its CRC are correct, and the
 * message is signed with key, so only decompression can refuse it.
 * Returns the message's size.
 */
static size_t forge(const char *name, const char *key, uint64_t seq, uint32_t raw_len,
                    size_t inflate_len)
{
    struct wire_encode_opts o = { .codec = WIRE_CODEC_ZLIB, .key = key, .key_len = strlen(key) };
    uint8_t *zeros = calloc(inflate_len ? inflate_len : 1, 1);
    uLongf comp_len = compressBound(inflate_len);
    uint8_t *msg = malloc(64 + comp_len + WIRE_HMAC_SIZE);
    struct buf m = BUF_INIT;
    char file[256];

    if (!zeros || !msg || compress2(msg + 64, &comp_len, zeros, inflate_len,
                                    Z_BEST_COMPRESSION) != Z_OK) {
        fprintf(stderr, "wire_sample: cannot compress %s\n", name);
        exit(1);
    }
    /* the encoder's header of a signed one-record batch, with the lengths
     * of the bomb */
    if (wire_encode(&m, &o, PIPIT_METRIC, AGENT, seq, 1, (int64_t)time(NULL) * 1000000000,
                    "{}\n", 3) != PIPIT_OK) {
        fprintf(stderr, "wire_sample: cannot encode %s\n", name);
        exit(1);
    }
    memcpy(msg, m.data, 64);
    buf_free(&m);
    put_be32(msg + 40, raw_len);
    put_be32(msg + 44, (uint32_t)comp_len);
    reseal(msg, key);
    snprintf(file, sizeof file, "%s.bin", name);
    put(file, msg, 64 + comp_len + WIRE_HMAC_SIZE);
    free(zeros);
    free(msg);
    return 64 + comp_len + WIRE_HMAC_SIZE;
}

/*
 * wire_sample --bombs DIR KEY [CAP]: signed batches that must be refused by
 * a reader whose decompression cap is CAP bytes (default 64 MiB), and a
 * line "name size reason" for each in DIR/bombs.txt:
 *   small  under 1 KiB; declares 4 KiB and inflates to 768 KiB (deflate
 *          cannot expand more than about 1032:1, so under 1 KiB nothing
 *          reaches a 64 MiB cap; this one overruns its own header 192 times)
 *   cap    declares exactly CAP and inflates to CAP + 1 MiB: the reader
 *          fills its CAP-sized buffer and stops (the largest memory a
 *          message can make it use)
 *   over   declares CAP + 1 (honestly): refused before any allocation
 *   huge   under 1 KiB; declares 4 GiB - 1 (a lie) over a 768 KiB stream
 */
static int bombs(const char *key, unsigned long long cap)
{
    char line[256];
    struct buf list = BUF_INIT;
    size_t n;

    if (cap < 4096 || cap >= 0xffffffffull) {
        fprintf(stderr, "wire_sample: CAP must be 4096 to 4294967294\n");
        return 2;
    }
    n = forge("bomb_small", key, 1000001, 4096, 768u << 10);
    snprintf(line, sizeof line, "bomb_small %zu decompress\n", n);
    buf_puts(&list, line);
    n = forge("bomb_cap", key, 1000002, (uint32_t)cap, (size_t)cap + (1u << 20));
    snprintf(line, sizeof line, "bomb_cap %zu decompress\n", n);
    buf_puts(&list, line);
    n = forge("bomb_over", key, 1000003, (uint32_t)cap + 1, (size_t)cap + 1);
    snprintf(line, sizeof line, "bomb_over %zu too_large\n", n);
    buf_puts(&list, line);
    n = forge("bomb_huge", key, 1000004, 0xffffffffu, 768u << 10);
    snprintf(line, sizeof line, "bomb_huge %zu too_large\n", n);
    buf_puts(&list, line);
    put("bombs.txt", list.data, list.len);
    buf_free(&list);
    return 0;
}

int main(int argc, char **argv)
{
    struct buf p = BUF_INIT, m = BUF_INIT;

    if (argc >= 4 && argc <= 5 && strcmp(argv[1], "--bombs") == 0) {
        dir = argv[2];
        return bombs(argv[3], argc == 5 ? strtoull(argv[4], NULL, 0) : WIRE_DEFAULT_MAX_RAW);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: wire_sample DIR | wire_sample --bombs DIR KEY [CAP]\n");
        return 2;
    }
    dir = argv[1];
    put("key", KEY "\n", strlen(KEY) + 1);

    /* unsigned: zlib, two metrics */
    buf_puts(&p, "{\"kind\":\"metric\",\"time\":1700000000000000001,\"host\":\"web-01\","
                 "\"instance\":\"cpu\",\"name\":\"cpu.time_seconds\",\"type\":\"counter\","
                 "\"value\":64.23,\"labels\":{\"cpu\":\"total\",\"state\":\"user\"}}\n");
    buf_puts(&p, "{\"kind\":\"metric\",\"time\":1700000000000000001,\"host\":\"web-01\","
                 "\"instance\":\"load\",\"name\":\"load.1m\",\"type\":\"gauge\","
                 "\"value\":0.5,\"labels\":{}}\n");
    sample("unsigned", WIRE_CODEC_ZLIB, PIPIT_METRIC, NULL, 1, &p, &m);

    /* corrupt: the same with one payload bit flipped */
    m.data[m.len - 3] ^= 0x10;
    put("corrupt.bin", m.data, m.len);

    /* signed: zlib, one log line */
    buf_reset(&p);
    buf_puts(&p, "{\"kind\":\"log\",\"time\":1700000000000000002,\"host\":\"web-01\","
                 "\"instance\":\"nginx\",\"level\":\"info\",\"message\":\"GET / 200\","
                 "\"source\":\"/var/log/nginx/access.log\",\"offset\":1234,\"labels\":{}}\n");
    sample("signed", WIRE_CODEC_ZLIB, PIPIT_LOG, KEY, 2, &p, &m);

    /* truncated: the signed message less its last 5 bytes */
    put("truncated.bin", m.data, m.len - 5);

    /* zstd (none when built without it): signed event */
    buf_reset(&p);
    buf_puts(&p, "{\"kind\":\"event\",\"time\":1700000000000000003,\"host\":\"web-01\","
                 "\"instance\":\"deploy\",\"name\":\"step.finished\",\"status\":\"ok\","
                 "\"labels\":{\"plan\":\"web\"}}\n");
#ifdef HAVE_ZSTD
    sample("zstd", WIRE_CODEC_ZSTD, PIPIT_EVENT, KEY, 3, &p, &m);
#else
    sample("zstd", WIRE_CODEC_NONE, PIPIT_EVENT, KEY, 3, &p, &m);
#endif

    /* none: an uncompressed cost record */
    buf_reset(&p);
    buf_puts(&p, "{\"kind\":\"cost\",\"time\":1700000000000000004,\"host\":\"web-01\","
                 "\"instance\":\"cost\",\"amount\":0.0116,\"currency\":\"USD\","
                 "\"resource\":\"instance-hour\",\"period_start\":1699996400000000000,"
                 "\"period_end\":1700000000000000000,\"labels\":{}}\n");
    sample("none", WIRE_CODEC_NONE, PIPIT_COST, NULL, 4, &p, &m);

    /* empty: a batch of no records */
    buf_reset(&p);
    sample("empty", WIRE_CODEC_ZLIB, PIPIT_METRIC, NULL, 5, &p, &m);

    /* big: 2 MiB of records, for --max-bytes */
    for (int i = 0; p.len < (2u << 20); i++)
        buf_printf(&p, "{\"kind\":\"metric\",\"time\":1700000000000000006,\"host\":\"web-01\","
                       "\"instance\":\"bulk\",\"name\":\"bulk.n\",\"type\":\"gauge\","
                       "\"value\":%d,\"labels\":{}}\n", i);
    sample("big", WIRE_CODEC_ZLIB, PIPIT_METRIC, NULL, 6, &p, &m);

    buf_free(&p);
    buf_free(&m);
    return 0;
}
