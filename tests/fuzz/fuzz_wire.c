/* fuzz_wire.c: libFuzzer target for the wire format decoder (wire_verify, wire_decode). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KEY "sample-key"           /* the key of the signed seeds */
#define FUZZ_CAP (1u << 20)

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decode and check what a successful decode promises. */
static void decode_checked(const uint8_t *m, size_t len, const char *key, bool require)
{
    struct buf out = BUF_INIT;
    struct wire_header h, hv;
    char err[256];

    enum wire_reason v = wire_verify(m, len, &hv, err, sizeof err);
    err[0] = '\0';
    enum wire_reason r = wire_decode(m, len, key, key ? strlen(key) : 0, require, FUZZ_CAP,
                                     &h, &out, err, sizeof err);
    if ((unsigned)r >= WIRE_REASON_MAX || (r != WIRE_OK && !err[0]))
        abort();                        /* every refusal comes with its sentence */
    if (v != WIRE_OK && r != v)
        abort();                        /* decode verifies first */
    if (r == WIRE_OK) {
        size_t lines = 0;
        for (size_t i = 0; i < out.len; i++)
            lines += out.data[i] == '\n';
        if (v != WIRE_OK || out.len != h.raw_len || out.len > FUZZ_CAP ||
            lines != h.count || (out.len && out.data[out.len - 1] != '\n') ||
            memcmp(&h, &hv, sizeof h) != 0)
            abort();
        if (require && !(h.flags & WIRE_FLAG_SIGNED))
            abort();
        /* What decoded encodes again, and that decodes to the same payload. */
        struct buf again = BUF_INIT, back = BUF_INIT;
        struct wire_encode_opts o = { .codec = WIRE_CODEC_ZLIB, .level = 1,
                                      .key = key, .key_len = key ? strlen(key) : 0 };
        char id[37];
        wire_uuid_format(h.agent_id, id);
        if (wire_encode(&again, &o, h.kind, id, h.seq, h.count, h.created_ns,
                        out.data, out.len) != PIPIT_OK ||
            wire_decode(again.data, again.len, key, key ? strlen(key) : 0, require,
                        FUZZ_CAP, NULL, &back, err, sizeof err) != WIRE_OK ||
            back.len != out.len || (out.len && memcmp(back.data, out.data, out.len)))
            abort();
        buf_free(&again);
        buf_free(&back);
    } else if (out.len != 0) {
        abort();
    }
    buf_free(&out);
}

/*
 * Most mutations break the CRC, and a decoder that stops there leaves the
 * decompressors and the line count unexplored; so each input is also tried
 * with its CRC (and its HMAC, under FUZZ_KEY) made right.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_checked(data, size, NULL, false);
    decode_checked(data, size, FUZZ_KEY, false);
    decode_checked(data, size, FUZZ_KEY, true);

    if (size < WIRE_HEADER_SIZE || size > (8u << 20))
        return 0;
    uint8_t *m = malloc(size);
    if (!m)
        return 0;
    memcpy(m, data, size);
    uint32_t comp = be32(m + 44);
    bool is_signed = m[7] & WIRE_FLAG_SIGNED;
    size_t body = WIRE_HEADER_SIZE + (size_t)comp;
    if (body <= size) {
        uint8_t hdr[WIRE_HEADER_SIZE];
        memcpy(hdr, m, sizeof hdr);
        memset(hdr + 48, 0, 4);
        uLong crc = crc32(0L, Z_NULL, 0);
        crc = crc32(crc, hdr, sizeof hdr);
        crc = crc32_z(crc, m + WIRE_HEADER_SIZE, comp);
        m[48] = (uint8_t)(crc >> 24), m[49] = (uint8_t)(crc >> 16);
        m[50] = (uint8_t)(crc >> 8), m[51] = (uint8_t)crc;
        if (is_signed && body + WIRE_HMAC_SIZE <= size) {
            unsigned int n;
            HMAC(EVP_sha256(), FUZZ_KEY, (int)strlen(FUZZ_KEY), m, body, m + body, &n);
        }
        decode_checked(m, size, NULL, false);
        decode_checked(m, size, FUZZ_KEY, true);
    }
    free(m);
    return 0;
}
