/* wire.c: the batch wire format, version 1 (docs/wire-format.md): encode, verify, decode. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <libdeflate.h>
#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif
#include <pipit/plugin.h>
#include "wire.h"

/* Byte offsets of the header fields. */
enum {
    OFF_MAGIC = 0, OFF_VERSION = 4, OFF_CODEC = 5, OFF_ENCODING = 6,
    OFF_FLAGS = 7, OFF_KIND = 8, OFF_RESERVED1 = 9, OFF_AGENT = 12,
    OFF_SEQ = 28, OFF_COUNT = 36, OFF_RAW_LEN = 40, OFF_COMP_LEN = 44,
    OFF_CRC = 48, OFF_CREATED = 52, OFF_RESERVED2 = 60
};

#define WIRE_KIND_MIN 1                 /* metric */
#define WIRE_KIND_MAX 4                 /* event */
#define INFLATE_STEP (1u << 20)         /* input handed to inflate() per call */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* Format a refusal into err (when given) and return the reason. */
static enum wire_reason refuse(enum wire_reason r, char *err, size_t errlen,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum wire_reason refuse(enum wire_reason r, char *err, size_t errlen,
                               const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

/*
 * CRC-32 of a message: the 64 header bytes with the CRC field read as zero,
 * then the compressed payload.
 */
static uint32_t wire_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    uint8_t tmp[WIRE_HEADER_SIZE];

    memcpy(tmp, hdr, sizeof tmp);
    memset(tmp + OFF_CRC, 0, 4);
    /* libdeflate's CRC-32 is zlib's, several times faster (carry-less
     * multiplication where the CPU has it) */
    uint32_t crc = libdeflate_crc32(0, tmp, sizeof tmp);
    return libdeflate_crc32(crc, payload, len);
}

/* HMAC-SHA256 of data[0..len) with key into mac. Returns 0 or -1. */
static int wire_hmac(const void *key, size_t key_len, const uint8_t *data, size_t len,
                     uint8_t mac[WIRE_HMAC_SIZE])
{
    unsigned int mac_len = 0;

    if (key_len > INT32_MAX)
        return -1;
    if (!HMAC(EVP_sha256(), key_len ? key : "", (int)key_len, data, len, mac, &mac_len) ||
        mac_len != WIRE_HMAC_SIZE)
        return -1;
    return 0;
}

/* Number of '\n' bytes in p[0..len). */
static size_t count_lines(const char *p, size_t len)
{
    size_t n = 0;
    const char *end = p + len, *nl;

    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p = nl + 1;
    }
    return n;
}

/*
 * Each thread that encodes keeps its compressors: making one costs about a
 * tenth of compressing a batch (zstd's context more). They are freed when
 * the thread ends.
 */
struct compressors {
    struct libdeflate_compressor *deflate;
    int deflate_level;
#ifdef HAVE_ZSTD
    ZSTD_CCtx *zstd;
#endif
};

static pthread_key_t compressors_key;
static pthread_once_t compressors_once = PTHREAD_ONCE_INIT;
static bool compressors_keyed;

static void compressors_free(void *p)
{
    struct compressors *c = p;

    libdeflate_free_compressor(c->deflate);
#ifdef HAVE_ZSTD
    ZSTD_freeCCtx(c->zstd);
#endif
    free(c);
}

static void compressors_make_key(void)
{
    compressors_keyed = pthread_key_create(&compressors_key, compressors_free) == 0;
}

/* This thread's compressors, or NULL when out of memory. */
static struct compressors *compressors(void)
{
    struct compressors *c;

    pthread_once(&compressors_once, compressors_make_key);
    if (!compressors_keyed)
        return NULL;
    c = pthread_getspecific(compressors_key);
    if (!c && (c = calloc(1, sizeof *c)) != NULL &&
        pthread_setspecific(compressors_key, c) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

/* Compress payload into dst (room for cap bytes); *dst_len gets the size. */
static int compress_payload(int codec, int level, const char *payload, size_t len,
                            uint8_t *dst, size_t cap, size_t *dst_len)
{
    switch (codec) {
    case WIRE_CODEC_NONE:
        if (len)
            memcpy(dst, payload, len);
        *dst_len = len;
        return PIPIT_OK;
    case WIRE_CODEC_ZLIB: {
        /* libdeflate writes the same zlib format as zlib's compress2() in
         * about 60 % of its CPU time (docs/performance.md); level 0 is the
         * codec's default, zlib's 6. */
        struct compressors *c = compressors();
        int want = level ? level : 6;
        if (!c)
            return PIPIT_ENOMEM;
        if (!c->deflate || c->deflate_level != want) {
            libdeflate_free_compressor(c->deflate);
            c->deflate_level = want;
            if (!(c->deflate = libdeflate_alloc_compressor(want)))
                return PIPIT_ENOMEM;
        }
        size_t n = libdeflate_zlib_compress(c->deflate, payload, len, dst, cap);
        if (n == 0)                     /* dst holds the bound: cannot happen */
            return PIPIT_EINVAL;
        *dst_len = n;
        return PIPIT_OK;
    }
#ifdef HAVE_ZSTD
    case WIRE_CODEC_ZSTD: {
        struct compressors *c = compressors();
        if (!c || (!c->zstd && !(c->zstd = ZSTD_createCCtx())))
            return PIPIT_ENOMEM;
        size_t n = ZSTD_compressCCtx(c->zstd, dst, cap, payload, len,
                                     level ? level : ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(n))            /* dst holds the bound: only memory can fail */
            return PIPIT_ENOMEM;
        *dst_len = n;
        return PIPIT_OK;
    }
#endif
    default:
        return PIPIT_ENOTSUP;
    }
}

/* Worst-case compressed size of len bytes for codec, or 0 if unknown. */
static size_t compress_bound(int codec, size_t len)
{
    switch (codec) {
    case WIRE_CODEC_NONE:
        return len;
    case WIRE_CODEC_ZLIB:
        return libdeflate_zlib_compress_bound(NULL, len);
#ifdef HAVE_ZSTD
    case WIRE_CODEC_ZSTD:
        return ZSTD_compressBound(len);
#endif
    default:
        return 0;
    }
}

/* Whether level is valid for codec (0 always is: the codec's default). */
static bool level_valid(int codec, int level)
{
    if (level == 0)
        return true;
    switch (codec) {
    case WIRE_CODEC_NONE:
        return true;                    /* nothing to tune */
    case WIRE_CODEC_ZLIB:
        return level >= 1 && level <= 9;
#ifdef HAVE_ZSTD
    case WIRE_CODEC_ZSTD:
        return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel();
#endif
    default:
        return false;
    }
}

/*
 * Build one message at the end of out: the header, the payload compressed
 * with opts->codec, and the HMAC trailer when opts->key is set. The payload
 * must be count lines, each ending in '\n' (what a decoder checks). The
 * whole message is written in place; on any error out->len is restored.
 */
int wire_encode(struct buf *out, const struct wire_encode_opts *opts, int kind,
                const char *agent_id, uint64_t seq, uint32_t count,
                int64_t created_ns, const char *payload, size_t len)
{
    uint8_t id[16];
    size_t old_len, bound, comp_len = 0;
    int r;

    if (!out || !opts || (!payload && len) || !agent_id)
        return PIPIT_EINVAL;
    if (opts->codec < WIRE_CODEC_NONE || opts->codec > WIRE_CODEC_ZSTD)
        return PIPIT_EINVAL;
#ifndef HAVE_ZSTD
    if (opts->codec == WIRE_CODEC_ZSTD)
        return PIPIT_ENOTSUP;
#endif
    if (!level_valid(opts->codec, opts->level))
        return PIPIT_EINVAL;
    if (kind < WIRE_KIND_MIN || kind > WIRE_KIND_MAX || len > UINT32_MAX)
        return PIPIT_EINVAL;
    if (opts->key && opts->key_len == 0)
        return PIPIT_EINVAL;            /* an empty key would sign nothing */
    if (wire_uuid_parse(agent_id, id) != PIPIT_OK)
        return PIPIT_EINVAL;
    if ((len && payload[len - 1] != '\n') || count_lines(payload, len) != count)
        return PIPIT_EINVAL;

    bound = compress_bound(opts->codec, len);
    if (bound < len || bound > SIZE_MAX - WIRE_HEADER_SIZE - WIRE_HMAC_SIZE)
        return PIPIT_EINVAL;
    old_len = out->len;
    if ((r = buf_reserve(out, WIRE_HEADER_SIZE + bound + WIRE_HMAC_SIZE)) != PIPIT_OK)
        return r;
    uint8_t *msg = (uint8_t *)out->data + old_len;

    r = compress_payload(opts->codec, opts->level, payload, len, msg + WIRE_HEADER_SIZE,
                         bound, &comp_len);
    if (r != PIPIT_OK)
        goto fail;
    if (comp_len > UINT32_MAX) {
        r = PIPIT_EINVAL;
        goto fail;
    }

    memset(msg, 0, WIRE_HEADER_SIZE);
    memcpy(msg + OFF_MAGIC, WIRE_MAGIC, 4);
    msg[OFF_VERSION] = WIRE_VERSION;
    msg[OFF_CODEC] = (uint8_t)opts->codec;
    msg[OFF_ENCODING] = WIRE_ENCODING_NDJSON;
    msg[OFF_FLAGS] = opts->key ? WIRE_FLAG_SIGNED : 0;
    msg[OFF_KIND] = (uint8_t)kind;
    memcpy(msg + OFF_AGENT, id, 16);
    put_be64(msg + OFF_SEQ, seq);
    put_be32(msg + OFF_COUNT, count);
    put_be32(msg + OFF_RAW_LEN, (uint32_t)len);
    put_be32(msg + OFF_COMP_LEN, (uint32_t)comp_len);
    put_be64(msg + OFF_CREATED, (uint64_t)created_ns);
    put_be32(msg + OFF_CRC, wire_crc(msg, msg + WIRE_HEADER_SIZE, comp_len));

    size_t total = WIRE_HEADER_SIZE + comp_len;
    if (opts->key) {
        if (wire_hmac(opts->key, opts->key_len, msg, total, msg + total) != 0) {
            r = PIPIT_ENOMEM;           /* the one way HMAC() fails here */
            goto fail;
        }
        total += WIRE_HMAC_SIZE;
    }
    out->len = old_len + total;
    out->data[out->len] = '\0';
    return PIPIT_OK;
fail:
    out->len = old_len;
    out->data[old_len] = '\0';
    return r;
}

/*
 * Check the header of msg and the CRC, in an order that lets a reader trust
 * each step: the magic and version first (another version may lay out the
 * rest differently), then the lengths (the CRC's extent depends on them),
 * then the CRC, and the meaning of the fields last, so that damage in
 * transit is reported as a checksum error rather than as a strange field.
 */
enum wire_reason wire_verify(const void *msg, size_t len, struct wire_header *h,
                             char *err, size_t errlen)
{
    const uint8_t *p = msg;
    struct wire_header tmp;

    if (!h)
        h = &tmp;
    memset(h, 0, sizeof *h);
    if (!p || len == 0)
        return refuse(WIRE_TRUNCATED, err, errlen, "message is empty");
    if (memcmp(p, WIRE_MAGIC, len < 4 ? len : 4) != 0)
        return refuse(WIRE_BAD_MAGIC, err, errlen,
                      "message does not start with the magic \"PPB1\"");
    if (len < WIRE_HEADER_SIZE)
        return refuse(WIRE_TRUNCATED, err, errlen,
                      "message is %zu bytes, shorter than the 64-byte header", len);

    h->version = p[OFF_VERSION];
    h->codec = p[OFF_CODEC];
    h->encoding = p[OFF_ENCODING];
    h->flags = p[OFF_FLAGS];
    h->kind = p[OFF_KIND];
    memcpy(h->agent_id, p + OFF_AGENT, 16);
    h->seq = get_be64(p + OFF_SEQ);
    h->count = get_be32(p + OFF_COUNT);
    h->raw_len = get_be32(p + OFF_RAW_LEN);
    h->comp_len = get_be32(p + OFF_COMP_LEN);
    h->crc = get_be32(p + OFF_CRC);
    h->created_ns = (int64_t)get_be64(p + OFF_CREATED);

    if (h->version != WIRE_VERSION)
        return refuse(WIRE_BAD_VERSION, err, errlen,
                      "format version %u; this reader understands version %d",
                      h->version, WIRE_VERSION);

    bool is_signed = h->flags & WIRE_FLAG_SIGNED;
    uint64_t want = (uint64_t)WIRE_HEADER_SIZE + h->comp_len +
                    (is_signed ? WIRE_HMAC_SIZE : 0);
    if ((uint64_t)len < want)
        return refuse(WIRE_TRUNCATED, err, errlen,
                      "message is %zu bytes but its header declares 64+%" PRIu32 "%s",
                      len, h->comp_len, is_signed ? "+32" : "");
    if ((uint64_t)len > want)
        return refuse(WIRE_BAD_HEADER, err, errlen,
                      "message is %zu bytes but its header declares 64+%" PRIu32
                      "%s: %" PRIu64 " bytes too many", len, h->comp_len,
                      is_signed ? "+32" : "", (uint64_t)len - want);

    uint32_t crc = wire_crc(p, p + WIRE_HEADER_SIZE, h->comp_len);
    if (crc != h->crc)
        return refuse(WIRE_CHECKSUM, err, errlen,
                      "CRC-32 of the message is %08" PRIx32 " but its header says %08"
                      PRIx32 ": damaged in transit or in storage", crc, h->crc);

    if (h->codec > WIRE_CODEC_ZSTD)
        return refuse(WIRE_BAD_HEADER, err, errlen, "unknown codec %u", h->codec);
    if (h->encoding != WIRE_ENCODING_NDJSON)
        return refuse(WIRE_BAD_HEADER, err, errlen, "unknown payload encoding %u",
                      h->encoding);
    if (h->flags & ~WIRE_FLAG_SIGNED)
        return refuse(WIRE_BAD_HEADER, err, errlen,
                      "unknown flag bits 0x%02x (only bit 0, signed, is defined)",
                      h->flags & ~WIRE_FLAG_SIGNED);
    if (h->kind < WIRE_KIND_MIN || h->kind > WIRE_KIND_MAX)
        return refuse(WIRE_BAD_HEADER, err, errlen,
                      "unknown record kind %u (1 to 4 are defined)", h->kind);
    for (int i = 0; i < WIRE_HEADER_SIZE; i++) {
        bool reserved = (i >= OFF_RESERVED1 && i < OFF_AGENT) || i >= OFF_RESERVED2;
        if (reserved && p[i])
            return refuse(WIRE_BAD_HEADER, err, errlen,
                          "reserved header byte %d is 0x%02x; it must be 0", i, p[i]);
    }
    if (h->codec == WIRE_CODEC_NONE && h->comp_len != h->raw_len)
        return refuse(WIRE_BAD_HEADER, err, errlen,
                      "codec none but the payload is %" PRIu32 " bytes and its header "
                      "declares %" PRIu32 " uncompressed", h->comp_len, h->raw_len);
    return WIRE_OK;
}

/*
 * Inflate the zlib stream src[0..len) into dst, which has room for
 * want + 1 bytes: the extra byte tells "exactly want" from "more than
 * want" without ever writing past the buffer. Input and output are handed
 * to zlib in pieces of at most INFLATE_STEP bytes (its counters are 32-bit).
 * *got receives the bytes produced.
 */
static enum wire_reason inflate_payload(const uint8_t *src, size_t len, uint8_t *dst,
                                        size_t want, size_t *got, char *err, size_t errlen)
{
    z_stream zs;
    enum wire_reason r = WIRE_OK;
    size_t in_pos = 0, out_pos = 0, room = want + 1;

    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK)
        return refuse(WIRE_DECOMPRESS, err, errlen, "cannot initialise zlib");
    for (;;) {
        if (zs.avail_in == 0 && in_pos < len) {
            size_t step = len - in_pos < INFLATE_STEP ? len - in_pos : INFLATE_STEP;
            zs.next_in = (Bytef *)(uintptr_t)(src + in_pos);
            zs.avail_in = (uInt)step;
            in_pos += step;
        }
        if (zs.avail_out == 0 && out_pos < room) {
            size_t step = room - out_pos < INFLATE_STEP ? room - out_pos : INFLATE_STEP;
            zs.next_out = dst + out_pos;
            zs.avail_out = (uInt)step;
            out_pos += step;
        }
        int zr = inflate(&zs, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR) {
            r = refuse(WIRE_DECOMPRESS, err, errlen, "zlib stream is invalid: %s",
                       zs.msg ? zs.msg : "it needs a preset dictionary");
            goto done;
        }
        if (zr == Z_MEM_ERROR) {
            r = refuse(WIRE_DECOMPRESS, err, errlen, "zlib ran out of memory");
            goto done;
        }
        if (zs.total_out > want) {
            r = refuse(WIRE_DECOMPRESS, err, errlen,
                       "payload inflates to more than the %zu bytes its header declares",
                       want);
            goto done;
        }
        if (zs.avail_in == 0 && in_pos == len && zs.avail_out != 0) {
            r = refuse(WIRE_DECOMPRESS, err, errlen,
                       "zlib stream ends early, after %zu bytes of output",
                       (size_t)zs.total_out);
            goto done;
        }
    }
    if (zs.avail_in != 0 || in_pos != len) {
        r = refuse(WIRE_DECOMPRESS, err, errlen,
                   "%zu bytes follow the end of the zlib stream",
                   (size_t)zs.avail_in + (len - in_pos));
        goto done;
    }
    *got = zs.total_out;
done:
    inflateEnd(&zs);
    return r;
}

#ifdef HAVE_ZSTD
/*
 * Decompress the single zstd frame src[0..len) into dst (room for want + 1
 * bytes). A frame that declares its content size must declare want; the
 * window the decoder may allocate is bounded by want, so a frame asking for
 * a larger one is refused instead of being given the memory.
 */
static enum wire_reason unzstd_payload(const uint8_t *src, size_t len, uint8_t *dst,
                                       size_t want, size_t *got, char *err, size_t errlen)
{
    enum wire_reason r = WIRE_OK;
    ZSTD_DCtx *dctx = NULL;
    unsigned long long fcs = ZSTD_getFrameContentSize(src, len);
    int wlog = 10;                      /* zstd's smallest window */

    if (fcs == ZSTD_CONTENTSIZE_ERROR)
        return refuse(WIRE_DECOMPRESS, err, errlen, "payload is not a zstd frame");
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != want)
        return refuse(WIRE_DECOMPRESS, err, errlen,
                      "zstd frame holds %llu bytes but the header declares %zu", fcs, want);
    while (wlog < 31 && ((size_t)1 << wlog) < want)
        wlog++;
    dctx = ZSTD_createDCtx();
    if (!dctx)
        return refuse(WIRE_DECOMPRESS, err, errlen, "cannot create a zstd context");
    if (ZSTD_isError(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, wlog))) {
        r = refuse(WIRE_DECOMPRESS, err, errlen, "cannot bound the zstd window");
        goto done;
    }
    ZSTD_inBuffer in = { src, len, 0 };
    ZSTD_outBuffer out = { dst, want + 1, 0 };
    for (;;) {
        size_t before_in = in.pos, before_out = out.pos;
        size_t zr = ZSTD_decompressStream(dctx, &out, &in);
        if (ZSTD_isError(zr)) {
            r = refuse(WIRE_DECOMPRESS, err, errlen, "zstd frame is invalid: %s",
                       ZSTD_getErrorName(zr));
            goto done;
        }
        if (out.pos > want) {
            r = refuse(WIRE_DECOMPRESS, err, errlen,
                       "payload decompresses to more than the %zu bytes its header declares",
                       want);
            goto done;
        }
        if (zr == 0)
            break;                      /* frame complete */
        if (in.pos == in.size && out.pos < out.size &&
            (before_in == in.pos && before_out == out.pos)) {
            r = refuse(WIRE_DECOMPRESS, err, errlen,
                       "zstd frame ends early after %zu bytes of output", out.pos);
            goto done;
        }
    }
    if (in.pos != in.size) {
        r = refuse(WIRE_DECOMPRESS, err, errlen,
                   "%zu bytes follow the end of the zstd frame", in.size - in.pos);
        goto done;
    }
    *got = out.pos;
done:
    ZSTD_freeDCtx(dctx);
    return r;
}
#endif

/*
 * Verify msg (header, CRC, then the signature as key and require_signature
 * ask), refuse a declared size over max_raw before allocating anything,
 * then decompress into out with a buffer of exactly the declared size (plus
 * one byte to notice overflow), and check the length and the line count.
 * out is emptied on failure.
 */
enum wire_reason wire_decode(const void *msg, size_t len, const void *key,
                             size_t key_len, bool require_signature, size_t max_raw,
                             struct wire_header *h, struct buf *out,
                             char *err, size_t errlen)
{
    struct wire_header tmp;
    enum wire_reason r;
    const uint8_t *p = msg;
    size_t got = 0;

    if (!h)
        h = &tmp;
    buf_reset(out);
    r = wire_verify(msg, len, h, err, errlen);
    if (r != WIRE_OK)
        return r;

    size_t body = WIRE_HEADER_SIZE + (size_t)h->comp_len;
    if (h->flags & WIRE_FLAG_SIGNED) {
        if (key) {
            uint8_t mac[WIRE_HMAC_SIZE];
            if (wire_hmac(key, key_len, p, body, mac) != 0)
                return refuse(WIRE_BAD_SIGNATURE, err, errlen,
                              "cannot compute HMAC-SHA256");
            if (CRYPTO_memcmp(mac, p + body, WIRE_HMAC_SIZE) != 0)
                return refuse(WIRE_BAD_SIGNATURE, err, errlen,
                              "HMAC-SHA256 does not match: signed with another key, "
                              "or altered after signing");
        } else if (require_signature) {
            return refuse(WIRE_BAD_SIGNATURE, err, errlen,
                          "message is signed but no key is known to check it");
        }
    } else if (require_signature) {
        return refuse(WIRE_UNSIGNED, err, errlen,
                      "message is not signed and a signature is required");
    }

    if (h->raw_len > max_raw)
        return refuse(WIRE_TOO_LARGE, err, errlen,
                      "header declares %" PRIu32 " bytes uncompressed, over the limit of %zu",
                      h->raw_len, max_raw);
#ifndef HAVE_ZSTD
    if (h->codec == WIRE_CODEC_ZSTD)
        return refuse(WIRE_DECOMPRESS, err, errlen,
                      "payload is zstd-compressed and this build has no zstd");
#endif
    if (buf_reserve(out, (size_t)h->raw_len + 1) != PIPIT_OK)
        return refuse(WIRE_TOO_LARGE, err, errlen,
                      "cannot allocate %" PRIu32 " bytes for the payload", h->raw_len);

    const uint8_t *src = p + WIRE_HEADER_SIZE;
    uint8_t *dst = (uint8_t *)out->data;
    switch (h->codec) {
    case WIRE_CODEC_NONE:
        if (h->raw_len)
            memcpy(dst, src, h->raw_len);
        got = h->raw_len;
        break;
    case WIRE_CODEC_ZLIB:
        r = inflate_payload(src, h->comp_len, dst, h->raw_len, &got, err, errlen);
        break;
#ifdef HAVE_ZSTD
    case WIRE_CODEC_ZSTD:
        r = unzstd_payload(src, h->comp_len, dst, h->raw_len, &got, err, errlen);
        break;
#endif
    default:
        r = refuse(WIRE_BAD_HEADER, err, errlen, "unknown codec %u", h->codec);
    }
    if (r != WIRE_OK)
        goto fail;
    if (got != h->raw_len) {
        r = refuse(WIRE_DECOMPRESS, err, errlen,
                   "payload decompresses to %zu bytes but its header declares %" PRIu32,
                   got, h->raw_len);
        goto fail;
    }
    if (got && dst[got - 1] != '\n') {
        r = refuse(WIRE_DECOMPRESS, err, errlen,
                   "payload does not end with a newline: its last record is cut");
        goto fail;
    }
    size_t lines = count_lines((const char *)dst, got);
    if (lines != h->count) {
        r = refuse(WIRE_DECOMPRESS, err, errlen,
                   "header declares %" PRIu32 " records but the payload holds %zu lines",
                   h->count, lines);
        goto fail;
    }
    out->len = got;
    out->data[got] = '\0';
    return WIRE_OK;
fail:
    buf_reset(out);
    return r;
}

const char *wire_reason_name(enum wire_reason r)
{
    static const char *const names[WIRE_REASON_MAX] = {
        [WIRE_OK] = "ok",
        [WIRE_TRUNCATED] = "truncated",
        [WIRE_BAD_MAGIC] = "bad_magic",
        [WIRE_BAD_VERSION] = "bad_version",
        [WIRE_BAD_HEADER] = "bad_header",
        [WIRE_CHECKSUM] = "checksum",
        [WIRE_UNSIGNED] = "unsigned",
        [WIRE_BAD_SIGNATURE] = "bad_signature",
        [WIRE_TOO_LARGE] = "too_large",
        [WIRE_DECOMPRESS] = "decompress",
    };
    if ((unsigned)r >= WIRE_REASON_MAX)
        return "unknown";
    return names[r];
}

const char *wire_codec_name(int codec)
{
    switch (codec) {
    case WIRE_CODEC_NONE: return "none";
    case WIRE_CODEC_ZLIB: return "zlib";
    case WIRE_CODEC_ZSTD: return "zstd";
    default: return "unknown";
    }
}

int wire_codec_parse(const char *s)
{
    if (!s)
        return -1;
    if (!strcmp(s, "none"))
        return WIRE_CODEC_NONE;
    if (!strcmp(s, "zlib"))
        return WIRE_CODEC_ZLIB;
#ifdef HAVE_ZSTD
    if (!strcmp(s, "zstd"))
        return WIRE_CODEC_ZSTD;
#endif
    return -1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parse the 36-character form 8-4-4-4-12 (either case); nothing may follow. */
int wire_uuid_parse(const char *s, uint8_t out[16])
{
    uint8_t id[16];
    int n = 0;

    if (!s)
        return PIPIT_EINVAL;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return PIPIT_EINVAL;
            continue;
        }
        int hi = hex_value(s[i]);
        if (hi < 0)
            return PIPIT_EINVAL;
        int lo = hex_value(s[++i]);
        if (lo < 0)
            return PIPIT_EINVAL;
        id[n++] = (uint8_t)(hi << 4 | lo);
    }
    if (s[36] != '\0')
        return PIPIT_EINVAL;
    memcpy(out, id, sizeof id);
    return PIPIT_OK;
}

void wire_uuid_format(const uint8_t id[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *o = out;

    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[id[i] >> 4];
        *o++ = hex[id[i] & 0xf];
    }
    *o = '\0';
}
