/* test_wire.c: the wire format: round trips, exact bytes, every refusal, size caps and zip bombs. */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include <pipit/plugin.h>
#include "buf.h"
#include "wire.h"
#include "../tap.h"
#include "../wire_forge.h"

static const char AGENT[] = "0f8fad5b-d9cb-469f-a165-70867728950e";
static const char KEY[] = "secret";

/* One record of each kind, as docs/records.md shows them (index = kind). */
static const char *const LINES[5] = {
    NULL,
    "{\"kind\":\"metric\",\"time\":1795314569751772657,\"host\":\"web-01\",\"instance\":\"cpu\","
    "\"name\":\"cpu.time_seconds\",\"type\":\"counter\",\"value\":64.23,"
    "\"labels\":{\"cpu\":\"total\",\"state\":\"user\"}}\n",
    "{\"kind\":\"log\",\"time\":1795314569751772657,\"host\":\"web-01\",\"instance\":\"nginx\","
    "\"level\":\"info\",\"message\":\"GET / 200\",\"source\":\"/var/log/nginx/access.log\","
    "\"offset\":1234,\"labels\":{}}\n",
    "{\"kind\":\"cost\",\"time\":1795314569751772657,\"host\":\"web-01\",\"instance\":\"cost\","
    "\"amount\":0.0116,\"currency\":\"USD\",\"resource\":\"instance-hour\","
    "\"period_start\":1795311000000000000,\"period_end\":1795314600000000000,\"labels\":{}}\n",
    "{\"kind\":\"event\",\"time\":1700000000000000000,\"host\":\"h1\",\"instance\":\"x\","
    "\"name\":\"up\",\"status\":\"ok\",\"labels\":{}}\n",
};

/* The fixed message of docs/wire-format.md: the event line above, kind 4,
 * seq 42, created 1700000000123456789, codec none, unsigned. */
static const char DOC_HEADER_HEX[] =
    "5050423101000100040000000f8fad5bd9cb469fa16570867728950e"
    "000000000000002a000000010000006d0000006d9032b4e417979cfe3d85cd1500000000";
/* The same signed with KEY: header (flag and CRC differ), then the HMAC. */
static const char DOC_SIGNED_HEADER_HEX[] =
    "5050423101000101040000000f8fad5bd9cb469fa16570867728950e"
    "000000000000002a000000010000006d0000006dbf4cd0fd17979cfe3d85cd1500000000";
static const char DOC_HMAC_HEX[] =
    "26e37fedbe7f63452615a34085c30c52de4acb23b80f2e42c2607094abd56c4d";

static int codecs[3];
static int ncodecs;

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static int encode(struct buf *out, int codec, int kind, const char *key, uint64_t seq,
                  uint32_t count, const char *payload, size_t len)
{
    struct wire_encode_opts o = { .codec = codec, .key = key, .key_len = key ? strlen(key) : 0 };
    return wire_encode(out, &o, kind, AGENT, seq, count, 1700000000123456789LL, payload, len);
}

/* Decode with the common arguments: KEY when key, cap 64 MiB. */
static enum wire_reason decode(const struct buf *m, const char *key, bool require,
                               struct wire_header *h, struct buf *out, char *err)
{
    return wire_decode(m->data, m->len, key, key ? strlen(key) : 0, require,
                       WIRE_DEFAULT_MAX_RAW, h, out, err, 256);
}

/* Peak resident set (VmHWM) in KiB, after resetting it to the current RSS
 * when reset is set (Linux 4.0+; otherwise the peak so far). */
static long peak_kib(bool reset)
{
    char line[256];
    long v = -1;

    if (reset) {
        FILE *c = fopen("/proc/self/clear_refs", "w");
        if (c) {
            fputs("5", c);
            fclose(c);
        }
    }
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every codec, kind and signing combination encodes and decodes back. */
static void test_round_trip(void)
{
    for (int c = 0; c < ncodecs; c++) {
        for (int kind = 1; kind <= 4; kind++) {
            for (int sign = 0; sign < 2; sign++) {
                struct buf payload = BUF_INIT, m = BUF_INIT, out = BUF_INIT;
                struct wire_header h;
                char err[256] = "";
                for (int i = 0; i < 50; i++)
                    buf_puts(&payload, LINES[kind]);
                const char *key = sign ? KEY : NULL;
                int r = encode(&m, codecs[c], kind, key, 7 + (uint64_t)kind, 50,
                               payload.data, payload.len);
                enum wire_reason v = wire_verify(m.data, m.len, &h, err, sizeof err);
                enum wire_reason d = decode(&m, key, sign, &h, &out, err);
                bool good = r == PIPIT_OK && v == WIRE_OK && d == WIRE_OK &&
                            out.len == payload.len &&
                            !memcmp(out.data, payload.data, payload.len) &&
                            out.data[out.len] == '\0' &&
                            h.version == 1 && h.codec == codecs[c] && h.encoding == 1 &&
                            h.flags == (sign ? 1 : 0) && h.kind == kind &&
                            h.seq == 7 + (uint64_t)kind && h.count == 50 &&
                            h.raw_len == payload.len &&
                            m.len == 64 + h.comp_len + (sign ? 32u : 0u) &&
                            h.created_ns == 1700000000123456789LL;
                char id[37];
                wire_uuid_format(h.agent_id, id);
                good = good && !strcmp(id, AGENT);
                if (!ok(good, "round trip: codec %s, kind %d, %s",
                        wire_codec_name(codecs[c]), kind, sign ? "signed" : "unsigned"))
                    diag("  encode %d, verify %s, decode %s: %s", r, wire_reason_name(v),
                         wire_reason_name(d), err);
                buf_free(&payload);
                buf_free(&m);
                buf_free(&out);
            }
        }
        /* An empty batch is a valid message too. */
        struct buf m = BUF_INIT, out = BUF_INIT;
        struct wire_header h;
        char err[256] = "";
        int r = encode(&m, codecs[c], 1, NULL, 1, 0, "", 0);
        enum wire_reason d = decode(&m, NULL, false, &h, &out, err);
        ok(r == PIPIT_OK && d == WIRE_OK && out.len == 0 && h.count == 0 && h.raw_len == 0,
           "round trip: codec %s, empty payload (%s)", wire_codec_name(codecs[c]), err);
        buf_free(&m);
        buf_free(&out);
    }
}

/* Payloads and compressed streams larger than the 1 MiB steps in which the
 * decoder hands data to zlib: 12 MiB of records that compress poorly. */
static void test_round_trip_large(void)
{
    struct buf payload = BUF_INIT;
    uint64_t v = 7;
    uint32_t n = 0;

    while (payload.len < (12u << 20)) {
        buf_puts(&payload, "{\"kind\":\"log\",\"time\":1,\"host\":\"h\",\"instance\":\"t\","
                           "\"level\":\"info\",\"message\":\"");
        for (int i = 0; i < 4; i++) {
            v ^= v >> 12, v ^= v << 25, v ^= v >> 27;
            buf_printf(&payload, "%016" PRIx64, (uint64_t)(v * 0x2545f4914f6cdd1dull));
        }
        buf_puts(&payload, "\",\"labels\":{}}\n");
        n++;
    }
    for (int c = 0; c < ncodecs; c++) {
        struct buf m = BUF_INIT, out = BUF_INIT;
        struct wire_header h = { 0 };
        char err[256] = "";
        int r = encode(&m, codecs[c], 2, KEY, 1, n, payload.data, payload.len);
        enum wire_reason d = wire_decode(m.data, m.len, KEY, strlen(KEY), true,
                                         WIRE_DEFAULT_MAX_RAW, &h, &out, err, sizeof err);
        ok(r == PIPIT_OK && d == WIRE_OK && out.len == payload.len &&
           !memcmp(out.data, payload.data, payload.len),
           "round trip: codec %s, %zu bytes in %u records, %" PRIu32 " compressed (%s)",
           wire_codec_name(codecs[c]), payload.len, n, h.comp_len, err);
        buf_free(&m);
        buf_free(&out);
    }
    buf_free(&payload);
}

/* The bytes of a fixed input, checked against values computed independently
 * (Python's zlib.crc32 and hmac), so that the format cannot drift. */
static void test_exact_bytes(void)
{
    struct buf m = BUF_INIT, s = BUF_INIT;
    char got[2 * 256 + 1];
    const char *line = LINES[4];
    size_t n = strlen(line);

    is_int(encode(&m, WIRE_CODEC_NONE, 4, NULL, 42, 1, line, n), PIPIT_OK,
           "exact: encode the documented example");
    is_int(m.len, 64 + n, "exact: message is 64 + payload bytes");
    hex((const uint8_t *)m.data, 64, got);
    is_str(got, DOC_HEADER_HEX, "exact: header bytes, codec none, unsigned");
    ok(m.len == 64 + n && !memcmp(m.data + 64, line, n), "exact: payload follows verbatim");

    is_int(encode(&s, WIRE_CODEC_NONE, 4, KEY, 42, 1, line, n), PIPIT_OK,
           "exact: encode signed");
    is_int(s.len, 64 + n + 32, "exact: signed message carries 32 more bytes");
    hex((const uint8_t *)s.data, 64, got);
    is_str(got, DOC_SIGNED_HEADER_HEX, "exact: signed header (flag bit 0, its CRC)");
    hex((const uint8_t *)s.data + 64 + n, 32, got);
    is_str(got, DOC_HMAC_HEX, "exact: HMAC-SHA256 trailer");

    /* Appending keeps what out held. */
    struct buf a = BUF_INIT;
    buf_puts(&a, "prefix");
    is_int(encode(&a, WIRE_CODEC_ZLIB, 4, NULL, 42, 1, line, n), PIPIT_OK,
           "exact: encode appends to a non-empty buffer");
    ok(a.len > 6 && !memcmp(a.data, "prefixPPB1", 10), "exact: earlier content kept");
    buf_free(&a);
    buf_free(&m);
    buf_free(&s);
}

/* wire_encode's argument checks leave out unchanged. */
static void test_encode_errors(void)
{
    struct buf m = BUF_INIT;
    const char *line = LINES[1];
    size_t n = strlen(line);
    struct wire_encode_opts o = { .codec = WIRE_CODEC_ZLIB };

    buf_puts(&m, "keep");
#define ENC_ERR(want, what, ...) do {                                           \
        int r_ = wire_encode(&m, __VA_ARGS__);                                  \
        ok(r_ == (want) && m.len == 4 && !strcmp(m.data, "keep"),               \
           "encode refuses %s", what);                                          \
    } while (0)
    ENC_ERR(PIPIT_EINVAL, "kind 0", &o, 0, AGENT, 1, 1, 0, line, n);
    ENC_ERR(PIPIT_EINVAL, "kind 5", &o, 5, AGENT, 1, 1, 0, line, n);
    ENC_ERR(PIPIT_EINVAL, "a malformed agent id", &o, 1, "not-a-uuid", 1, 1, 0, line, n);
    ENC_ERR(PIPIT_EINVAL, "a count that is not the number of lines", &o, 1, AGENT, 1, 2, 0,
            line, n);
    ENC_ERR(PIPIT_EINVAL, "a payload whose last line has no newline", &o, 1, AGENT, 1, 1, 0,
            line, n - 1);
    struct wire_encode_opts bad = { .codec = 3 };
    ENC_ERR(PIPIT_EINVAL, "codec 3", &bad, 1, AGENT, 1, 1, 0, line, n);
    struct wire_encode_opts lvl = { .codec = WIRE_CODEC_ZLIB, .level = 10 };
    ENC_ERR(PIPIT_EINVAL, "zlib level 10", &lvl, 1, AGENT, 1, 1, 0, line, n);
    struct wire_encode_opts empty = { .codec = WIRE_CODEC_ZLIB, .key = "", .key_len = 0 };
    ENC_ERR(PIPIT_EINVAL, "an empty key", &empty, 1, AGENT, 1, 1, 0, line, n);
#ifndef HAVE_ZSTD
    struct wire_encode_opts zstd = { .codec = WIRE_CODEC_ZSTD };
    ENC_ERR(PIPIT_ENOTSUP, "zstd in a build without it", &zstd, 1, AGENT, 1, 1, 0, line, n);
#else
    struct wire_encode_opts zlvl = { .codec = WIRE_CODEC_ZSTD, .level = ZSTD_maxCLevel() + 1 };
    ENC_ERR(PIPIT_EINVAL, "a zstd level over the maximum", &zlvl, 1, AGENT, 1, 1, 0, line, n);
#endif
#undef ENC_ERR
    struct wire_encode_opts l1 = { .codec = WIRE_CODEC_ZLIB, .level = 1 };
    is_int(wire_encode(&m, &l1, 1, AGENT, 1, 1, 0, line, n), PIPIT_OK, "encode: zlib level 1");
    buf_free(&m);
}

/* Each prefix of a good message is refused as truncated. */
static void test_truncated(void)
{
    struct buf m = BUF_INIT, out = BUF_INIT, payload = BUF_INIT;
    char err[256];
    int bad_verify = -1, bad_decode = -1;

    for (int i = 0; i < 3; i++)
        buf_puts(&payload, LINES[2]);
    encode(&m, WIRE_CODEC_ZLIB, 2, KEY, 1, 3, payload.data, payload.len);
    for (size_t len = 0; len < m.len; len++) {
        enum wire_reason v = wire_verify(m.data, len, NULL, err, sizeof err);
        enum wire_reason d = wire_decode(m.data, len, KEY, strlen(KEY), true, 1 << 20,
                                         NULL, &out, err, sizeof err);
        if (v != WIRE_TRUNCATED && bad_verify < 0)
            bad_verify = (int)len;
        if ((d != WIRE_TRUNCATED || out.len) && bad_decode < 0)
            bad_decode = (int)len;
    }
    is_int(bad_verify, -1, "truncated: verify refuses every length 0..%zu as truncated",
           m.len - 1);
    is_int(bad_decode, -1, "truncated: decode refuses every length 0..%zu as truncated",
           m.len - 1);
    is_int(wire_verify(NULL, 0, NULL, err, sizeof err), WIRE_TRUNCATED,
           "truncated: NULL, 0 is an empty message");

    uint32_t comp = be32((const uint8_t *)m.data + 44);
    wire_verify(m.data, 70, NULL, err, sizeof err);
    char want[128];
    snprintf(want, sizeof want, "message is 70 bytes but its header declares 64+%" PRIu32 "+32",
             comp);
    is_str(err, want, "truncated: the sentence names both lengths");
    wire_verify(m.data, 10, NULL, err, sizeof err);
    is_str(err, "message is 10 bytes, shorter than the 64-byte header",
           "truncated: inside the header");

    /* One byte too many is not a message of this length either. */
    struct buf longer = BUF_INIT;
    buf_append(&longer, m.data, m.len);
    buf_putc(&longer, 0);
    is_str(wire_reason_name(wire_verify(longer.data, longer.len, NULL, err, sizeof err)),
           "bad_header", "trailing byte: refused");
    snprintf(want, sizeof want,
             "message is %zu bytes but its header declares 64+%" PRIu32 "+32: 1 bytes too many",
             longer.len, comp);
    is_str(err, want, "trailing byte: the sentence says so");
    buf_free(&longer);
    buf_free(&m);
    buf_free(&out);
    buf_free(&payload);
}

/* Header fields with values this reader does not know, CRC made valid. */
static void test_bad_fields(void)
{
    static const struct {
        int off;
        uint8_t val;
        enum wire_reason want;
        const char *what;
        const char *sentence;
    } cases[] = {
        { 0, 'X', WIRE_BAD_MAGIC, "bad magic", "message does not start with the magic \"PPB1\"" },
        { 3, '2', WIRE_BAD_MAGIC, "magic PPB2", NULL },
        { 4, 2, WIRE_BAD_VERSION, "version 2",
          "format version 2; this reader understands version 1" },
        { 4, 0, WIRE_BAD_VERSION, "version 0", NULL },
        { 4, 255, WIRE_BAD_VERSION, "version 255", NULL },
        { 5, 3, WIRE_BAD_HEADER, "codec 3", "unknown codec 3" },
        { 5, 255, WIRE_BAD_HEADER, "codec 255", NULL },
        { 6, 0, WIRE_BAD_HEADER, "encoding 0", "unknown payload encoding 0" },
        { 6, 2, WIRE_BAD_HEADER, "encoding 2", NULL },
        { 7, 0x02, WIRE_BAD_HEADER, "flag bit 1",
          "unknown flag bits 0x02 (only bit 0, signed, is defined)" },
        { 7, 0x04, WIRE_BAD_HEADER, "flag bit 2", NULL },
        { 7, 0x08, WIRE_BAD_HEADER, "flag bit 3", NULL },
        { 7, 0x10, WIRE_BAD_HEADER, "flag bit 4", NULL },
        { 7, 0x20, WIRE_BAD_HEADER, "flag bit 5", NULL },
        { 7, 0x40, WIRE_BAD_HEADER, "flag bit 6", NULL },
        { 7, 0x80, WIRE_BAD_HEADER, "flag bit 7", NULL },
        { 8, 0, WIRE_BAD_HEADER, "kind 0", "unknown record kind 0 (1 to 4 are defined)" },
        { 8, 5, WIRE_BAD_HEADER, "kind 5", NULL },
        { 9, 1, WIRE_BAD_HEADER, "reserved byte 9", "reserved header byte 9 is 0x01; it must be 0" },
        { 10, 1, WIRE_BAD_HEADER, "reserved byte 10", NULL },
        { 11, 0x80, WIRE_BAD_HEADER, "reserved byte 11", NULL },
        { 60, 1, WIRE_BAD_HEADER, "reserved byte 60", NULL },
        { 63, 1, WIRE_BAD_HEADER, "reserved byte 63", NULL },
        { 40, 0x7f, WIRE_BAD_HEADER, "codec none with raw_len != comp_len", NULL },
    };
    struct buf m = BUF_INIT, out = BUF_INIT;
    char err[256];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf_reset(&m);
        encode(&m, WIRE_CODEC_NONE, 1, NULL, 1, 1, LINES[1], strlen(LINES[1]));
        ((uint8_t *)m.data)[cases[i].off] = cases[i].val;
        reseal((uint8_t *)m.data, NULL);
        enum wire_reason v = wire_verify(m.data, m.len, NULL, err, sizeof err);
        enum wire_reason d = decode(&m, NULL, false, NULL, &out, err);
        if (!ok(v == cases[i].want && d == cases[i].want, "field: %s is %s", cases[i].what,
                wire_reason_name(cases[i].want)))
            diag("  verify %s, decode %s: %s", wire_reason_name(v), wire_reason_name(d), err);
        if (cases[i].sentence)
            is_str(err, cases[i].sentence, "field: %s: sentence", cases[i].what);
    }
    buf_free(&m);
    buf_free(&out);
}

/* The reason one flipped bit at (byte, bit) of an unsigned message whose
 * payload is comp bytes must give: the framing fields say what they now
 * mean, everything else is caught by the CRC. */
static enum wire_reason flip_reason(size_t byte, int bit, uint32_t comp)
{
    if (byte < 4)
        return WIRE_BAD_MAGIC;
    if (byte == 4)
        return WIRE_BAD_VERSION;
    if (byte == 7 && bit == 0)
        return WIRE_TRUNCATED;          /* now "signed": 32 bytes are missing */
    if (byte >= 44 && byte < 48) {      /* comp_len */
        uint32_t v = comp ^ ((uint32_t)1 << (8 * (47 - byte) + bit));
        return v > comp ? WIRE_TRUNCATED : WIRE_BAD_HEADER;
    }
    return WIRE_CHECKSUM;
}

/* Every single-bit flip of small messages, and a sample of a large one. */
static void test_bit_flips(void)
{
    struct buf m = BUF_INIT, out = BUF_INIT, big = BUF_INIT, payload = BUF_INIT;
    char err[256];
    size_t wrong = 0, flips = 0, first = SIZE_MAX;

    for (int c = 0; c < ncodecs; c++) {
        buf_reset(&m);
        encode(&m, codecs[c], 3, NULL, 9, 1, LINES[3], strlen(LINES[3]));
        uint32_t comp = be32((const uint8_t *)m.data + 44);
        for (size_t i = 0; i < m.len * 8; i++) {
            uint8_t *p = (uint8_t *)m.data + i / 8;
            *p ^= (uint8_t)(1u << (i % 8));
            enum wire_reason want = flip_reason(i / 8, (int)(i % 8), comp);
            enum wire_reason v = wire_verify(m.data, m.len, NULL, err, sizeof err);
            enum wire_reason d = decode(&m, NULL, false, NULL, &out, err);
            if ((v != want || d != want) && wrong++ == 0) {
                first = i;
                diag("  codec %s, bit %zu: verify %s, decode %s, want %s: %s",
                     wire_codec_name(codecs[c]), i, wire_reason_name(v),
                     wire_reason_name(d), wire_reason_name(want), err);
            }
            flips++;
            *p ^= (uint8_t)(1u << (i % 8));
        }
    }
    ok(wrong == 0 && first == SIZE_MAX,
       "bit flips: each of %zu single-bit flips (every bit, every codec) refused as expected",
       flips);

    /* Signed: a flip in the trailer passes the CRC and fails the HMAC. */
    buf_reset(&m);
    encode(&m, WIRE_CODEC_ZLIB, 3, KEY, 9, 1, LINES[3], strlen(LINES[3]));
    wrong = 0;
    for (size_t i = (m.len - 32) * 8; i < m.len * 8; i++) {
        uint8_t *p = (uint8_t *)m.data + i / 8;
        *p ^= (uint8_t)(1u << (i % 8));
        if (wire_verify(m.data, m.len, NULL, err, sizeof err) != WIRE_OK ||
            decode(&m, KEY, false, NULL, &out, err) != WIRE_BAD_SIGNATURE ||
            decode(&m, NULL, false, NULL, &out, err) != WIRE_OK)
            wrong++;
        *p ^= (uint8_t)(1u << (i % 8));
    }
    is_int(wrong, 0, "bit flips: each of 256 flips in the HMAC trailer is bad_signature "
           "with the key, unchecked without");

    /* About 64 KiB of zlib-compressed records (values vary, so that they do
     * not compress to nothing): 4096 random flips in the payload. */
    uint64_t v = 1;
    for (int i = 0; payload.len < 400000; i++) {
        v = v * 6364136223846793005ull + 1442695040888963407ull;
        buf_printf(&payload, "{\"kind\":\"metric\",\"time\":%" PRIu64 ",\"host\":\"web-01\","
                   "\"instance\":\"cpu\",\"name\":\"m%d\",\"type\":\"gauge\","
                   "\"value\":%" PRIu64 ",\"labels\":{}}\n", v >> 4, i % 97, v >> 40);
    }
    size_t lines = 0;
    for (size_t i = 0; i < payload.len; i++)
        lines += payload.data[i] == '\n';
    encode(&big, WIRE_CODEC_ZLIB, 1, NULL, 1, (uint32_t)lines, payload.data, payload.len);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    wrong = 0;
    for (int i = 0; i < 4096; i++) {
        seed ^= seed >> 12, seed ^= seed << 25, seed ^= seed >> 27;
        size_t bit = 64 * 8 + (size_t)((seed * 0x2545f4914f6cdd1dull) % ((big.len - 64) * 8));
        uint8_t *p = (uint8_t *)big.data + bit / 8;
        *p ^= (uint8_t)(1u << (bit % 8));
        if (decode(&big, NULL, false, NULL, &out, err) != WIRE_CHECKSUM)
            wrong++;
        *p ^= (uint8_t)(1u << (bit % 8));
    }
    is_int(wrong, 0, "bit flips: 4096 random flips in a %zu-byte zlib payload are checksum "
           "errors", big.len - 64);
    buf_free(&m);
    buf_free(&out);
    buf_free(&big);
    buf_free(&payload);
}

/* Signing: required, wrong key, no key. */
static void test_signature(void)
{
    struct buf u = BUF_INIT, s = BUF_INIT, out = BUF_INIT;
    char err[256];
    const char *line = LINES[2];

    encode(&u, WIRE_CODEC_ZLIB, 2, NULL, 1, 1, line, strlen(line));
    encode(&s, WIRE_CODEC_ZLIB, 2, KEY, 1, 1, line, strlen(line));

    is_str(wire_reason_name(decode(&u, KEY, true, NULL, &out, err)), "unsigned",
           "signature: unsigned refused when one is required");
    is_str(err, "message is not signed and a signature is required",
           "signature: unsigned: sentence");
    is_str(wire_reason_name(decode(&u, NULL, true, NULL, &out, err)), "unsigned",
           "signature: unsigned refused when required, even without a key");
    is_str(wire_reason_name(decode(&u, KEY, false, NULL, &out, err)), "ok",
           "signature: unsigned accepted when not required");
    is_str(wire_reason_name(decode(&s, "another key", false, NULL, &out, err)),
           "bad_signature", "signature: wrong key refused");
    ok(out.len == 0, "signature: nothing decoded with the wrong key");
    is_str(err, "HMAC-SHA256 does not match: signed with another key, or altered after signing",
           "signature: wrong key: sentence");
    is_str(wire_reason_name(decode(&s, "secre", true, NULL, &out, err)), "bad_signature",
           "signature: a prefix of the key is refused");
    is_str(wire_reason_name(decode(&s, NULL, true, NULL, &out, err)), "bad_signature",
           "signature: signed, no key, required: refused");
    is_str(err, "message is signed but no key is known to check it",
           "signature: no key: sentence");
    is_str(wire_reason_name(decode(&s, NULL, false, NULL, &out, err)), "ok",
           "signature: signed, no key, not required: decoded unchecked");
    is_str(wire_reason_name(decode(&s, KEY, true, NULL, &out, err)), "ok",
           "signature: right key, required: decoded");
    ok(out.len == strlen(line) && !strcmp(out.data, line), "signature: payload intact");

    /* A re-signed message whose payload changed, CRC fixed: only the HMAC tells. */
    ((uint8_t *)s.data)[64] ^= 1;
    reseal((uint8_t *)s.data, NULL);
    uint32_t comp = be32((const uint8_t *)s.data + 44);
    uint8_t saved[32];
    memcpy(saved, s.data + 64 + comp, 32);
    is_str(wire_reason_name(decode(&s, KEY, true, NULL, &out, err)), "bad_signature",
           "signature: payload altered and CRC recomputed: HMAC refuses it");
    ok(!memcmp(saved, s.data + 64 + comp, 32), "signature: trailer untouched by decode");
    buf_free(&u);
    buf_free(&s);
    buf_free(&out);
}

/* A declared size over the cap is refused before any memory is used. */
static void test_declared_too_large(void)
{
    struct buf m = BUF_INIT, out = BUF_INIT;
    char err[256];

    encode(&m, WIRE_CODEC_ZLIB, 1, NULL, 1, 1, LINES[1], strlen(LINES[1]));
    put_be32((uint8_t *)m.data + 40, UINT32_MAX);
    reseal((uint8_t *)m.data, NULL);
    long before = peak_kib(true);
    double t0 = now_s();
    enum wire_reason r = wire_decode(m.data, m.len, NULL, 0, false, 1 << 20, NULL, &out,
                                     err, sizeof err);
    double dt = now_s() - t0;
    long after = peak_kib(false);
    is_str(wire_reason_name(r), "too_large", "cap: raw_len 4 GiB-1 over a 1 MiB cap refused");
    is_str(err, "header declares 4294967295 bytes uncompressed, over the limit of 1048576",
           "cap: sentence names both sizes");
    ok(dt < 0.05, "cap: refused at once (%.6f s)", dt);
    ok(before > 0 && after - before < 1024, "cap: peak RSS grew %ld KiB (< 1 MiB)",
       after - before);
    is_int(out.cap < 4096, 1, "cap: output buffer not grown");

    /* Exactly the cap is fine, one over is not. */
    buf_reset(&m);
    encode(&m, WIRE_CODEC_ZLIB, 1, NULL, 1, 1, LINES[1], strlen(LINES[1]));
    size_t n = strlen(LINES[1]);
    is_str(wire_reason_name(wire_decode(m.data, m.len, NULL, 0, false, n, NULL, &out, err,
                                        sizeof err)), "ok", "cap: raw_len == cap decodes");
    is_str(wire_reason_name(wire_decode(m.data, m.len, NULL, 0, false, n - 1, NULL, &out, err,
                                        sizeof err)), "too_large", "cap: raw_len == cap+1 refused");
    buf_free(&m);
    buf_free(&out);
}

/* Deflate n bytes of zeros into out in 1 MiB steps (the input never exists
 * whole). */
static void deflate_zeros(struct buf *out, size_t n)
{
    static uint8_t zeros[1 << 20];
    uint8_t tmp[1 << 16];
    z_stream zs;

    memset(&zs, 0, sizeof zs);
    deflateInit(&zs, 9);
    while (n > 0) {
        size_t step = n < sizeof zeros ? n : sizeof zeros;
        n -= step;
        zs.next_in = zeros;
        zs.avail_in = (uInt)step;
        int flush = n ? Z_NO_FLUSH : Z_FINISH, zr;
        do {
            zs.next_out = tmp;
            zs.avail_out = sizeof tmp;
            zr = deflate(&zs, flush);
            buf_append(out, tmp, sizeof tmp - zs.avail_out);
        } while (zs.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    }
    deflateEnd(&zs);
}

#ifdef HAVE_ZSTD
/* The same with zstd; pledged: declare the size in the frame header. */
static void zstd_zeros(struct buf *out, size_t n, bool pledged)
{
    static uint8_t zeros[1 << 20];
    uint8_t tmp[1 << 16];
    ZSTD_CCtx *cc = ZSTD_createCCtx();

    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
    if (pledged)
        ZSTD_CCtx_setPledgedSrcSize(cc, n);
    while (n > 0) {
        size_t step = n < sizeof zeros ? n : sizeof zeros;
        n -= step;
        ZSTD_inBuffer in = { zeros, step, 0 };
        ZSTD_EndDirective end = n ? ZSTD_e_continue : ZSTD_e_end;
        size_t left;
        do {
            ZSTD_outBuffer o = { tmp, sizeof tmp, 0 };
            left = ZSTD_compressStream2(cc, &o, &in, end);
            buf_append(out, tmp, o.pos);
        } while (in.pos < in.size || (end == ZSTD_e_end && left != 0));
    }
    ZSTD_freeCCtx(cc);
}
#endif

/* Wrap a compressed stream in a message that declares raw_len. */
static void bomb_message(struct buf *m, int codec, const struct buf *stream, uint32_t raw_len)
{
    uint8_t hdr[64];
    buf_reset(m);
    encode(m, codec, 1, NULL, 1, 0, "", 0);
    memcpy(hdr, m->data, 64);
    put_be32(hdr + 40, raw_len);
    put_be32(hdr + 44, (uint32_t)stream->len);
    buf_reset(m);
    buf_append(m, hdr, 64);
    buf_append(m, stream->data, stream->len);
    reseal((uint8_t *)m->data, NULL);
}

/* Run one bomb and check the reason and the peak memory growth. */
static void run_bomb(const char *what, const struct buf *m, long max_growth_kib)
{
    struct buf out = BUF_INIT;
    char err[256] = "";

    long before = peak_kib(true);
    double t0 = now_s();
    enum wire_reason r = wire_decode(m->data, m->len, NULL, 0, false, WIRE_DEFAULT_MAX_RAW,
                                     NULL, &out, err, sizeof err);
    double dt = now_s() - t0;
    long after = peak_kib(false);
    buf_free(&out);
    ok(r == WIRE_DECOMPRESS || r == WIRE_TOO_LARGE, "bomb: %s refused (%s: %s)", what,
       wire_reason_name(r), err);
    ok(before > 0 && after - before < max_growth_kib,
       "bomb: %s: peak RSS grew %ld KiB (limit %ld KiB), %.3f s", what, after - before,
       max_growth_kib, dt);
}

/* 200 MiB of zeros compressed into a message that lies about its size. */
static void test_zip_bomb(void)
{
    struct buf z = BUF_INIT, m = BUF_INIT;
    const size_t bomb = (size_t)200 << 20;
    const long cap_kib = WIRE_DEFAULT_MAX_RAW / 1024;

    deflate_zeros(&z, bomb);
    diag("zlib bomb: 200 MiB of zeros in %zu bytes", z.len);
    bomb_message(&m, WIRE_CODEC_ZLIB, &z, 1000);
    run_bomb("zlib, raw_len 1000", &m, 4096);
    bomb_message(&m, WIRE_CODEC_ZLIB, &z, WIRE_DEFAULT_MAX_RAW);
    run_bomb("zlib, raw_len = the 64 MiB cap", &m, cap_kib + cap_kib / 2);
    bomb_message(&m, WIRE_CODEC_ZLIB, &z, (uint32_t)bomb);
    run_bomb("zlib, raw_len honest 200 MiB", &m, 1024);
#ifdef HAVE_ZSTD
    for (int pledged = 0; pledged < 2; pledged++) {
        char what[64];
        buf_reset(&z);
        zstd_zeros(&z, bomb, pledged);
        diag("zstd bomb: 200 MiB of zeros in %zu bytes (%s size)", z.len,
             pledged ? "declared" : "undeclared");
        bomb_message(&m, WIRE_CODEC_ZSTD, &z, 1000);
        snprintf(what, sizeof what, "zstd %s, raw_len 1000", pledged ? "sized" : "unsized");
        run_bomb(what, &m, 4096);
        bomb_message(&m, WIRE_CODEC_ZSTD, &z, WIRE_DEFAULT_MAX_RAW);
        snprintf(what, sizeof what, "zstd %s, raw_len = cap", pledged ? "sized" : "unsized");
        run_bomb(what, &m, cap_kib + cap_kib / 2);
    }
#else
    skip(8, "built without zstd");
#endif
    buf_free(&z);
    buf_free(&m);
}

/* Payloads whose decompressed form disagrees with the header. */
static void test_payload_mismatch(void)
{
    struct buf m = BUF_INIT, out = BUF_INIT, payload = BUF_INIT;
    char err[256];
    const char *line = LINES[1];
    size_t n = strlen(line);

    buf_puts(&payload, line);
    buf_puts(&payload, line);

    /* count off by one either way */
    for (int delta = -1; delta <= 1; delta += 2) {
        for (int c = 0; c < ncodecs; c++) {
            buf_reset(&m);
            encode(&m, codecs[c], 1, NULL, 1, 2, payload.data, payload.len);
            put_be32((uint8_t *)m.data + 36, (uint32_t)(2 + delta));
            reseal((uint8_t *)m.data, NULL);
            char want[128];
            snprintf(want, sizeof want, "header declares %d records but the payload holds 2 lines",
                     2 + delta);
            enum wire_reason r = decode(&m, NULL, false, NULL, &out, err);
            ok(r == WIRE_DECOMPRESS && !strcmp(err, want) && out.len == 0,
               "count %d for 2 lines, codec %s: refused (%s: %s)", 2 + delta,
               wire_codec_name(codecs[c]), wire_reason_name(r), err);
        }
    }

    /* The last line has no newline. */
    buf_reset(&m);
    encode(&m, WIRE_CODEC_NONE, 1, NULL, 1, 2, payload.data, payload.len);
    m.data[m.len - 1] = ' ';
    reseal((uint8_t *)m.data, NULL);
    is_str(wire_reason_name(decode(&m, NULL, false, NULL, &out, err)), "decompress",
           "unterminated last line refused");
    is_str(err, "payload does not end with a newline: its last record is cut",
           "unterminated: sentence");

    /* raw_len one short and one long of the real size. */
    for (int c = 0; c < ncodecs; c++) {
        if (codecs[c] == WIRE_CODEC_NONE)
            continue;
        for (int delta = -1; delta <= 1; delta += 2) {
            buf_reset(&m);
            encode(&m, codecs[c], 1, NULL, 1, 2, payload.data, payload.len);
            put_be32((uint8_t *)m.data + 40, (uint32_t)((int)payload.len + delta));
            reseal((uint8_t *)m.data, NULL);
            enum wire_reason r = decode(&m, NULL, false, NULL, &out, err);
            ok(r == WIRE_DECOMPRESS && out.len == 0, "codec %s, raw_len %+d: refused (%s)",
               wire_codec_name(codecs[c]), delta, err);
        }
    }

    /* zlib: garbage stream, stream cut short, bytes after the stream. */
    buf_reset(&m);
    encode(&m, WIRE_CODEC_ZLIB, 1, NULL, 1, 1, line, n);
    struct buf cut = BUF_INIT, tail = BUF_INIT, junk = BUF_INIT;
    uint32_t comp = be32((const uint8_t *)m.data + 44);
    buf_append(&cut, m.data, m.len - 6);
    put_be32((uint8_t *)cut.data + 44, comp - 6);
    reseal((uint8_t *)cut.data, NULL);
    is_str(wire_reason_name(decode(&cut, NULL, false, NULL, &out, err)), "decompress",
           "zlib stream cut short: refused");
    diag("  %s", err);
    buf_append(&tail, m.data, m.len);
    buf_puts(&tail, "xyz");
    put_be32((uint8_t *)tail.data + 44, comp + 3);
    reseal((uint8_t *)tail.data, NULL);
    is_str(wire_reason_name(decode(&tail, NULL, false, NULL, &out, err)), "decompress",
           "bytes after the zlib stream: refused");
    is_str(err, "3 bytes follow the end of the zlib stream", "bytes after zlib: sentence");
    buf_append(&junk, m.data, m.len);
    memset(junk.data + 64, 0x5a, comp);
    reseal((uint8_t *)junk.data, NULL);
    is_str(wire_reason_name(decode(&junk, NULL, false, NULL, &out, err)), "decompress",
           "garbage in place of a zlib stream: refused");
    diag("  %s", err);
#ifdef HAVE_ZSTD
    buf_reset(&m);
    encode(&m, WIRE_CODEC_ZSTD, 1, NULL, 1, 1, line, n);
    comp = be32((const uint8_t *)m.data + 44);
    buf_reset(&tail);
    buf_append(&tail, m.data, m.len);
    buf_append(&tail, m.data + 64, comp);   /* a second frame */
    put_be32((uint8_t *)tail.data + 44, 2 * comp);
    reseal((uint8_t *)tail.data, NULL);
    is_str(wire_reason_name(decode(&tail, NULL, false, NULL, &out, err)), "decompress",
           "two zstd frames: refused");
    diag("  %s", err);
    buf_reset(&cut);
    buf_append(&cut, m.data, m.len - 3);
    put_be32((uint8_t *)cut.data + 44, comp - 3);
    reseal((uint8_t *)cut.data, NULL);
    is_str(wire_reason_name(decode(&cut, NULL, false, NULL, &out, err)), "decompress",
           "zstd frame cut short: refused");
    diag("  %s", err);
    buf_reset(&junk);
    buf_append(&junk, m.data, m.len);
    memset(junk.data + 64, 0x5a, comp);
    reseal((uint8_t *)junk.data, NULL);
    is_str(wire_reason_name(decode(&junk, NULL, false, NULL, &out, err)), "decompress",
           "garbage in place of a zstd frame: refused");
    diag("  %s", err);
#else
    buf_reset(&m);
    encode(&m, WIRE_CODEC_NONE, 1, NULL, 1, 1, line, n);
    m.data[5] = WIRE_CODEC_ZSTD;
    reseal((uint8_t *)m.data, NULL);
    is_str(wire_reason_name(decode(&m, NULL, false, NULL, &out, err)), "decompress",
           "zstd payload in a build without zstd: refused");
    skip(3, "built without zstd");
#endif
    buf_free(&cut);
    buf_free(&tail);
    buf_free(&junk);
    buf_free(&m);
    buf_free(&out);
    buf_free(&payload);
}

/* Names, codec parsing and UUID helpers. */
static void test_names(void)
{
    static const char *const names[] = { "ok", "truncated", "bad_magic", "bad_version",
        "bad_header", "checksum", "unsigned", "bad_signature", "too_large", "decompress" };
    bool all = true;
    for (int r = 0; r < WIRE_REASON_MAX; r++)
        all = all && !strcmp(wire_reason_name((enum wire_reason)r), names[r]);
    ok(all, "reason names");
    is_str(wire_reason_name(WIRE_REASON_MAX), "unknown", "reason name out of range");
    is_str(wire_codec_name(1), "zlib", "codec name");
    is_str(wire_codec_name(9), "unknown", "unknown codec name");
    is_int(wire_codec_parse("none"), 0, "parse none");
    is_int(wire_codec_parse("zlib"), 1, "parse zlib");
#ifdef HAVE_ZSTD
    is_int(wire_codec_parse("zstd"), 2, "parse zstd");
#else
    is_int(wire_codec_parse("zstd"), -1, "parse zstd without zstd");
#endif
    is_int(wire_codec_parse("gzip"), -1, "parse unknown codec");

    uint8_t id[16];
    char text[37];
    is_int(wire_uuid_parse("0F8FAD5B-D9CB-469F-A165-70867728950E", id), PIPIT_OK,
           "uuid: upper case parses");
    wire_uuid_format(id, text);
    is_str(text, AGENT, "uuid: formatted in lower case");
    static const char *const bad[] = { "", "0f8fad5b", "0f8fad5bd9cb469fa16570867728950e",
        "0f8fad5b-d9cb-469f-a165-70867728950", "0f8fad5b-d9cb-469f-a165-70867728950e0",
        "0f8fad5b_d9cb-469f-a165-70867728950e", "0f8fad5g-d9cb-469f-a165-70867728950e",
        "0f8fad5b-d9cb-469f-a165-70867728950 " };
    all = true;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        all = all && wire_uuid_parse(bad[i], id) == PIPIT_EINVAL;
    ok(all, "uuid: malformed texts refused");
}

struct thread_arg {
    int id;
    int failures;
};

/* Encode and decode in a loop with a per-thread key. */
static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    char key[32], err[256];
    struct buf m = BUF_INIT, out = BUF_INIT;

    snprintf(key, sizeof key, "key-%d", a->id);
    for (int i = 0; i < 200; i++) {
        const char *line = LINES[1 + (i + a->id) % 4];
        buf_reset(&m);
        int c = codecs[(i + a->id) % ncodecs];
        if (encode(&m, c, 1 + (i + a->id) % 4, key, (uint64_t)i, 1, line, strlen(line)) ||
            decode(&m, key, true, NULL, &out, err) != WIRE_OK || strcmp(out.data, line) ||
            decode(&m, "other", true, NULL, &out, err) != WIRE_BAD_SIGNATURE)
            a->failures++;
    }
    buf_free(&m);
    buf_free(&out);
    return NULL;
}

static void test_threads(void)
{
    pthread_t t[4];
    struct thread_arg a[4];
    int failures = 0;

    for (int i = 0; i < 4; i++) {
        a[i] = (struct thread_arg){ .id = i };
        pthread_create(&t[i], NULL, thread_main, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        failures += a[i].failures;
    }
    is_int(failures, 0, "threads: 4 threads encode and decode concurrently with their keys");
}

int main(void)
{
    codecs[ncodecs++] = WIRE_CODEC_NONE;
    codecs[ncodecs++] = WIRE_CODEC_ZLIB;
#ifdef HAVE_ZSTD
    codecs[ncodecs++] = WIRE_CODEC_ZSTD;
#endif
    test_round_trip();
    test_round_trip_large();
    test_exact_bytes();
    test_encode_errors();
    test_truncated();
    test_bad_fields();
    test_bit_flips();
    test_signature();
    test_declared_too_large();
    test_zip_bomb();
    test_payload_mismatch();
    test_names();
    test_threads();
    return done_testing();
}
