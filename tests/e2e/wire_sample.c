/* wire_sample.c: write sample wire messages and the records they hold, for decode.sh and the fuzz corpus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "wire.h"

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

int main(int argc, char **argv)
{
    struct buf p = BUF_INIT, m = BUF_INIT;

    if (argc != 2) {
        fprintf(stderr, "usage: wire_sample DIR\n");
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
