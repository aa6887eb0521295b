/* wire.h: the batch wire format, version 1 (docs/wire-format.md): encode, verify, decode. */
#ifndef PIPIT_WIRE_H
#define PIPIT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

#define WIRE_MAGIC        "PPB1"        /* first 4 bytes of every message */
#define WIRE_VERSION      1
#define WIRE_HEADER_SIZE  64
#define WIRE_HMAC_SIZE    32            /* HMAC-SHA256 trailer when signed */
#define WIRE_FLAG_SIGNED  0x01
#define WIRE_ENCODING_NDJSON 1          /* docs/records.md */
#define WIRE_DEFAULT_MAX_RAW (64u << 20) /* decompression cap */

enum wire_codec {
    WIRE_CODEC_NONE = 0,
    WIRE_CODEC_ZLIB = 1,                /* RFC 1950 stream (deflate) */
    WIRE_CODEC_ZSTD = 2                 /* when built with zstd */
};

/* Why a message was refused, for counters and the dead-letter header. */
enum wire_reason {
    WIRE_OK = 0,
    WIRE_TRUNCATED,                     /* shorter than its header says */
    WIRE_BAD_MAGIC,
    WIRE_BAD_VERSION,                   /* a version this build cannot read */
    WIRE_BAD_HEADER,                    /* unknown codec/encoding/kind/flags */
    WIRE_CHECKSUM,                      /* CRC mismatch: damaged in transit */
    WIRE_UNSIGNED,                      /* a signature was required */
    WIRE_BAD_SIGNATURE,                 /* HMAC mismatch or unknown key */
    WIRE_TOO_LARGE,                     /* declared or actual size over the cap */
    WIRE_DECOMPRESS,                    /* codec error or length mismatch */
    WIRE_REASON_MAX
};

struct wire_header {
    uint8_t version, codec, encoding, flags, kind;
    uint8_t agent_id[16];               /* UUID bytes */
    uint64_t seq;                       /* the agent's batch sequence number */
    uint32_t count;                     /* records in the payload */
    uint32_t raw_len;                   /* payload bytes before compression */
    uint32_t comp_len;                  /* payload bytes after the header */
    uint32_t crc;                       /* CRC-32 of header (crc zeroed) + payload */
    int64_t created_ns;                 /* when the batch closed, Unix ns */
};

struct wire_encode_opts {
    int codec;                          /* enum wire_codec */
    int level;                          /* codec level; 0 = the codec's default */
    const void *key;                    /* HMAC-SHA256 key, or NULL: unsigned */
    size_t key_len;
};

/*
 * Append one message to out: header, compressed payload, HMAC trailer when
 * opts->key is set. agent_id is the UUID text (36 chars). Returns PIPIT_OK,
 * PIPIT_EINVAL (bad arguments; a payload over 4 GiB, not ending in '\n' or
 * whose line count is not count; an empty key), PIPIT_ENOTSUP (codec not
 * built) or PIPIT_ENOMEM; out is unchanged on error.
 */
int wire_encode(struct buf *out, const struct wire_encode_opts *opts, int kind,
                const char *agent_id, uint64_t seq, uint32_t count,
                int64_t created_ns, const char *payload, size_t len);

/*
 * Read and check the header of msg (magic, version, fields, lengths and the
 * CRC over header and payload), without decompressing. Returns WIRE_OK or
 * the reason, with a sentence in err.
 */
enum wire_reason wire_verify(const void *msg, size_t len, struct wire_header *h,
                             char *err, size_t errlen);

/*
 * Verify msg completely and decompress its payload into out (replacing its
 * contents). key/key_len: the HMAC key for this agent, or NULL. A signed
 * message is checked when a key is given; require_signature refuses an
 * unsigned message or one that cannot be checked. max_raw caps the
 * decompressed size (a larger declared or actual size is WIRE_TOO_LARGE,
 * found before the memory is used). Returns WIRE_OK or the reason.
 */
enum wire_reason wire_decode(const void *msg, size_t len, const void *key,
                             size_t key_len, bool require_signature, size_t max_raw,
                             struct wire_header *h, struct buf *out,
                             char *err, size_t errlen);

/* Short names: "truncated", "bad_magic", ..., "ok". */
const char *wire_reason_name(enum wire_reason r);
const char *wire_codec_name(int codec);
/* "none", "zlib", "zstd" -> codec, or -1 (zstd only when built in). */
int wire_codec_parse(const char *s);

/* UUID text <-> 16 bytes. parse returns PIPIT_OK or PIPIT_EINVAL. */
int wire_uuid_parse(const char *s, uint8_t out[16]);
void wire_uuid_format(const uint8_t id[16], char out[37]);

#endif
