/* wire_forge.h: for tests, read and store big-endian header fields of a wire message and seal it again after an edit, as an encoder would (docs/wire-format.md). */
#ifndef PIPIT_TESTS_WIRE_FORGE_H
#define PIPIT_TESTS_WIRE_FORGE_H

#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* Recompute the CRC of a message whose header or payload was edited (the
 * payload's length is read from the header), and the HMAC after it when
 * key is given. */
static inline void reseal(uint8_t *m, const char *key)
{
    uint8_t hdr[64];
    uint32_t comp = be32(m + 44);

    memcpy(hdr, m, 64);
    memset(hdr + 48, 0, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, hdr, 64);
    crc = crc32_z(crc, m + 64, comp);
    put_be32(m + 48, (uint32_t)crc);
    if (key) {
        unsigned int n;
        HMAC(EVP_sha256(), key, (int)strlen(key), m, 64 + comp, m + 64 + comp, &n);
    }
}

#endif
