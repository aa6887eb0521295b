/* test_plugin_proto.c: the frames between pipitd and a plugin host process: encoding, decoding in pieces, refusals, record line checks. */
#include <stdio.h>
#include <string.h>
#include "plugin_proto.h"
#include "../tap.h"

/* Feed all of b to a decoder one byte at a time; count the frames by type. */
static int decode_bytewise(const struct buf *b, size_t max, int *types, size_t ntypes,
                           char *err, size_t errlen)
{
    struct proto_dec d;
    struct proto_frame f;
    int n = 0, r = 0;

    proto_dec_init(&d, max);
    for (size_t i = 0; i < b->len && r >= 0; i++) {
        proto_dec_feed(&d, b->data + i, 1);
        while ((r = proto_next(&d, &f, err, errlen)) == 1)
            if ((size_t)n < ntypes)
                types[n++] = f.type;
    }
    proto_dec_free(&d);
    return r < 0 ? r : n;
}

struct kept {
    int n;
    char last[256];
};

static void keep(const char *line, size_t len, void *arg)
{
    struct kept *k = arg;
    k->n++;
    snprintf(k->last, sizeof k->last, "%.*s", (int)len, line);
}

static void one_frame(int type, const void *p, size_t len, size_t max, const char *want,
                      const char *what)
{
    struct buf b = BUF_INIT;
    char err[160] = "";
    int t[4];
    proto_put(&b, type, p, len);
    int r = decode_bytewise(&b, max, t, 4, err, sizeof err);
    if (want)
        ok(r == PIPIT_EPARSE && strstr(err, want), "%s: refused (%s)", what, err);
    else
        ok(r == 1 && t[0] == type, "%s: accepted", what);
    buf_free(&b);
}

int main(void)
{
    struct buf b = BUF_INIT;
    unsigned char done[8], st[4];
    char err[160];
    int types[8];
    const char *line = "{\"kind\":\"metric\",\"time\":1,\"host\":\"h\",\"instance\":\"i\","
                       "\"name\":\"m\",\"type\":\"gauge\",\"value\":1}\n";

    plan(17);
    proto_put_u32(done, (uint32_t)-3);
    proto_put_u32(done + 4, 7);
    ok(proto_get_u32(done) == (uint32_t)-3 && done[0] == 0xff && done[7] == 7,
       "integers are big-endian");

    /* a whole exchange fed one byte at a time */
    char rec[300];
    rec[0] = PIPIT_METRIC;
    memcpy(rec + 1, line, strlen(line));
    proto_put(&b, PROTO_READY, NULL, 0);
    proto_put(&b, PROTO_LOG, "\002hello", 6);
    proto_put(&b, PROTO_RECORDS, rec, 1 + strlen(line));
    proto_put(&b, PROTO_DONE, done, 8);
    ok(b.len == 4 * PROTO_HEADER + 6 + 1 + strlen(line) + 8, "four frames: headers and payloads");
    int n = decode_bytewise(&b, 4096, types, 8, err, sizeof err);
    ok(n == 4 && types[0] == PROTO_READY && types[1] == PROTO_LOG &&
       types[2] == PROTO_RECORDS && types[3] == PROTO_DONE,
       "decoded in one-byte pieces: READY, LOG, RECORDS, DONE (%d)", n);
    buf_free(&b);

    one_frame(PROTO_DONE, done, 8, 4096, NULL, "DONE of 8 bytes");
    one_frame(PROTO_DONE, done, 4, 4096, "payload of 4 bytes", "DONE of 4 bytes");
    one_frame(PROTO_READY, done, 1, 4096, "payload of 1 bytes", "READY with a payload");
    proto_put_u32(st, (uint32_t)-5);
    one_frame(PROTO_ERROR, st, 4, 4096, NULL, "ERROR with an empty reason");
    one_frame(PROTO_ERROR, st, 3, 4096, "payload of 3 bytes", "ERROR shorter than its status");
    one_frame(PROTO_COLLECT, NULL, 0, 4096, "frame type 2 is not one", "a frame meant for the host");
    one_frame(99, NULL, 0, 4096, "frame type 99 is not one", "an unknown type");
    one_frame(PROTO_RECORDS, rec, 1 + strlen(line), 64, "over the bound of 64",
              "RECORDS over the bound");
    rec[0] = 9;
    one_frame(PROTO_RECORDS, rec, 1 + strlen(line), 4096, "unknown kind 9",
              "RECORDS of an unknown kind");
    char big[PROTO_MAX_LOG + 2];
    memset(big, 'x', sizeof big);
    big[0] = PIPIT_LOG_INFO;
    one_frame(PROTO_LOG, big, sizeof big, 1 << 20, "over the bound", "LOG over 4 KiB");

    /* a header alone waits for its payload */
    struct proto_dec d;
    struct proto_frame f;
    proto_put(&b, PROTO_DONE, done, 8);
    proto_dec_init(&d, 4096);
    proto_dec_feed(&d, b.data, PROTO_HEADER + 3);
    ok(proto_next(&d, &f, err, sizeof err) == 0, "a partial frame waits for more bytes");
    proto_dec_feed(&d, b.data + PROTO_HEADER + 3, b.len - PROTO_HEADER - 3);
    ok(proto_next(&d, &f, err, sizeof err) == 1 && f.len == 8 &&
       proto_get_u32(f.payload + 4) == 7, "and is whole once they come");
    proto_dec_free(&d);
    buf_free(&b);

    /* record lines: only this instance's, of the frame's kind, whole JSON objects */
    struct buf lines = BUF_INIT;
    buf_puts(&lines, line);
    buf_puts(&lines, "{\"kind\":\"metric\",\"host\":\"h\",\"instance\":\"other\"}\n");
    buf_puts(&lines, "{\"kind\":\"log\",\"host\":\"h\",\"instance\":\"i\"}\n");
    buf_puts(&lines, "[1,2]\n");
    buf_puts(&lines, "{\"kind\":\"metric\",\"host\":\"h\",\"instance\":\"i\",\"instance\":\"i\"}\n");
    buf_puts(&lines, line);
    lines.len--;                        /* the last one without its newline */
    struct kept k = { 0 };
    size_t bad = 0;
    size_t kept = proto_check_lines(PIPIT_METRIC, lines.data, lines.len, "h", "i", keep, &k,
                                    &bad);
    ok(kept == 1 && k.n == 1 && strcmp(k.last, line) == 0, "one good line kept, with its newline");
    ok(bad == 5, "another instance's, another kind's, a non-object, a duplicate key and a "
       "cut line are counted as bad (%zu)", bad);
    buf_free(&lines);
    return done_testing();
}
