/* cmd_decode.c: pipit decode: print the records of raw wire batches as JSON lines. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "commands.h"
#include "options.h"
#include "record.h"
#include "wire.h"

#define KEY_FILE_MAX (64u << 10)        /* a key file larger than this is a mistake */

struct decode {
    const void *key;                    /* HMAC key, or NULL */
    size_t key_len;
    bool require_signature;
    bool header;                        /* print a {"batch":…} line per message */
    bool records;                       /* print the records */
    size_t max_bytes;                   /* decompressed size cap */
    uint64_t read_cap;                  /* compressed size cap, from max_bytes */
    uint64_t n;                         /* messages seen, over all inputs */
    int status;                         /* 0, or 1 once a message was refused */
    struct buf msg;                     /* the message being read */
    struct buf payload;                 /* its records */
    struct buf line;                    /* the header line */
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pipit decode [OPTIONS] [FILE...]\n"
        "\n"
        "Read wire batches (docs/wire-format.md) from each FILE, or from stdin\n"
        "when none is given or FILE is -, and print their records as JSON lines.\n"
        "An input holds one message or several back to back, as written by\n"
        "kcat -C -f '%%s' or by concatenating message files.\n"
        "\n"
        "  -k, --key-file FILE      HMAC key (the file's bytes, less one trailing\n"
        "                           newline); signed messages are checked with it\n"
        "  -s, --require-signature  refuse messages that are unsigned or that\n"
        "                           cannot be checked\n"
        "  -H, --header             print {\"batch\":{…}} with the header fields\n"
        "                           before the records of each message\n"
        "      --header-only        print the header lines only\n"
        "  -m, --max-bytes SIZE     refuse payloads larger than SIZE decompressed\n"
        "                           (default 64MiB)\n"
        "  -h, --help               show this help\n"
        "\n"
        "A refused message is reported on stderr as\n"
        "  pipit decode: message N (offset X): REASON: SENTENCE\n"
        "where N counts messages over all inputs from 1 and X is the byte offset\n"
        "of the message in its input. Exit 0 when every message decoded, 1 when\n"
        "any was refused or an input could not be read, 2 on usage errors.\n");
}

/* Read the key file: its bytes less one trailing newline. Returns 0 or -1. */
static int read_key(const char *path, struct buf *key)
{
    FILE *f = fopen(path, "rb");
    char tmp[4096];
    size_t n;

    if (!f) {
        fprintf(stderr, "pipit decode: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (key->len + n > KEY_FILE_MAX) {
            fprintf(stderr, "pipit decode: %s: larger than %u bytes; not a key\n", path,
                    KEY_FILE_MAX);
            goto fail;
        }
        if (buf_append(key, tmp, n) != PIPIT_OK)
            goto fail;
    }
    if (ferror(f)) {
        fprintf(stderr, "pipit decode: %s: %s\n", path, strerror(errno));
        goto fail;
    }
    fclose(f);
    if (key->len && key->data[key->len - 1] == '\n')
        key->data[--key->len] = '\0';
    if (key->len == 0) {
        fprintf(stderr, "pipit decode: %s: the key is empty\n", path);
        return -1;
    }
    return 0;
fail:
    fclose(f);
    return -1;
}

static void report(struct decode *d, uint64_t off, enum wire_reason r, const char *why)
{
    fprintf(stderr, "pipit decode: message %" PRIu64 " (offset %" PRIu64 "): %s: %s\n",
            d->n, off, wire_reason_name(r), why);
    d->status = 1;
}

static uint32_t be32(const char *p)
{
    const uint8_t *u = (const uint8_t *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Print the {"batch":…} line of a decoded message. */
static void print_header(struct decode *d, const char *input, uint64_t off,
                         const struct wire_header *h)
{
    char id[37];
    const char *kind = record_kind_name(h->kind);
    bool is_signed = h->flags & WIRE_FLAG_SIGNED;

    wire_uuid_format(h->agent_id, id);
    buf_reset(&d->line);
    buf_puts(&d->line, "{\"batch\":{\"input\":");
    buf_json_str(&d->line, input, strlen(input));
    buf_printf(&d->line,
               ",\"message\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"version\":%u"
               ",\"codec\":\"%s\",\"encoding\":\"ndjson\",\"signed\":%s"
               ",\"signature\":\"%s\",\"kind\":\"%s\",\"agent_id\":\"%s\""
               ",\"seq\":%" PRIu64 ",\"count\":%" PRIu32 ",\"raw_len\":%" PRIu32
               ",\"comp_len\":%" PRIu32 ",\"crc\":\"%08" PRIx32 "\",\"created_ns\":%" PRId64
               "}}\n",
               d->n, off, h->version, wire_codec_name(h->codec),
               is_signed ? "true" : "false",
               !is_signed ? "none" : d->key ? "verified" : "unchecked",
               kind ? kind : "unknown", id, h->seq, h->count, h->raw_len, h->comp_len,
               h->crc, h->created_ns);
    fwrite(d->line.data, 1, d->line.len, stdout);
}

/* Read and drop n bytes of f. Returns false at end of input. */
static bool skip_bytes(FILE *f, uint64_t n)
{
    char tmp[65536];

    while (n > 0) {
        size_t want = n < sizeof tmp ? (size_t)n : sizeof tmp;
        size_t got = fread(tmp, 1, want, f);
        if (got < want)
            return false;
        n -= got;
    }
    return true;
}

/*
 * Decode every message of one input. A message is read as its 64-byte
 * header, then as many bytes as the header says follow. When the header
 * itself cannot be trusted (bad magic, unknown version, cut short) the next
 * message cannot be found, so the rest of the input is left unread.
 */
static void decode_input(struct decode *d, FILE *f, const char *name)
{
    char why[256];
    uint64_t off = 0;
    struct wire_header h;

    for (;;) {
        buf_reset(&d->msg);
        if (buf_reserve(&d->msg, WIRE_HEADER_SIZE) != PIPIT_OK) {
            fprintf(stderr, "pipit decode: %s: out of memory\n", name);
            d->status = 1;
            return;
        }
        size_t got = fread(d->msg.data, 1, WIRE_HEADER_SIZE, f);
        if (got == 0)
            break;
        d->msg.len = got;
        d->n++;
        const uint8_t *p = (const uint8_t *)d->msg.data;
        if (got < WIRE_HEADER_SIZE || memcmp(p, WIRE_MAGIC, 4) != 0 ||
            p[4] != WIRE_VERSION) {
            enum wire_reason r = wire_verify(p, got, NULL, why, sizeof why);
            report(d, off, r, why);
            return;
        }
        uint32_t comp_len = be32(d->msg.data + 44);
        uint64_t rest = (uint64_t)comp_len + (p[7] & WIRE_FLAG_SIGNED ? WIRE_HMAC_SIZE : 0);
        if (comp_len > d->read_cap) {
            snprintf(why, sizeof why,
                     "header declares %" PRIu32 " compressed bytes, over the limit of "
                     "%" PRIu64 " that --max-bytes %zu implies", comp_len, d->read_cap,
                     d->max_bytes);
            report(d, off, WIRE_TOO_LARGE, why);
            if (!skip_bytes(f, rest))
                break;
            off += WIRE_HEADER_SIZE + rest;
            continue;
        }
        if (buf_reserve(&d->msg, (size_t)rest) != PIPIT_OK) {
            fprintf(stderr, "pipit decode: %s: out of memory\n", name);
            d->status = 1;
            return;
        }
        got = fread(d->msg.data + WIRE_HEADER_SIZE, 1, (size_t)rest, f);
        d->msg.len = WIRE_HEADER_SIZE + got;
        enum wire_reason r = wire_decode(d->msg.data, d->msg.len, d->key, d->key_len,
                                         d->require_signature, d->max_bytes, &h,
                                         &d->payload, why, sizeof why);
        if (r != WIRE_OK) {
            report(d, off, r, why);
            if (got < rest)
                break;                  /* cut short: the input ended */
        } else {
            if (d->header)
                print_header(d, name, off, &h);
            if (d->records)
                fwrite(d->payload.data, 1, d->payload.len, stdout);
        }
        off += d->msg.len;
    }
    if (ferror(f)) {
        fprintf(stderr, "pipit decode: %s: read error: %s\n", name, strerror(errno));
        d->status = 1;
    }
}

int cmd_decode(int argc, char **argv)
{
    enum { OPT_HEADER_ONLY = 256 };
    static const struct option longopts[] = {
        { "key-file", required_argument, NULL, 'k' },
        { "require-signature", no_argument, NULL, 's' },
        { "header", no_argument, NULL, 'H' },
        { "header-only", no_argument, NULL, OPT_HEADER_ONLY },
        { "max-bytes", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct decode d = { .records = true, .max_bytes = WIRE_DEFAULT_MAX_RAW,
                        .msg = BUF_INIT, .payload = BUF_INIT, .line = BUF_INIT };
    struct buf key = BUF_INIT;
    const char *key_file = NULL;
    int64_t size;
    int c, status = 2;

    optind = 1;
    while ((c = getopt_long(argc, argv, "k:sHm:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': key_file = optarg; break;
        case 's': d.require_signature = true; break;
        case 'H': d.header = true; break;
        case OPT_HEADER_ONLY: d.header = true; d.records = false; break;
        case 'm':
            if (opt_parse_size(optarg, &size) != PIPIT_OK || size < 1 ||
                (uint64_t)size > UINT32_MAX) {
                fprintf(stderr, "pipit decode: --max-bytes wants a size from 1 to 4GiB-1, "
                        "such as 512KiB or 64MiB\n");
                return 2;
            }
            d.max_bytes = (size_t)size;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (key_file) {
        if (read_key(key_file, &key) != 0)
            goto out;
        d.key = key.data;
        d.key_len = key.len;
    }
    /* A compressed payload is at most slightly larger than its input
     * (zlib: +0.03%, zstd: +0.4%, plus a few bytes). */
    d.read_cap = (uint64_t)d.max_bytes + d.max_bytes / 128 + 4096;

    status = 0;
    if (optind >= argc) {
        decode_input(&d, stdin, "-");
    } else {
        for (int i = optind; i < argc; i++) {
            if (!strcmp(argv[i], "-")) {
                decode_input(&d, stdin, "-");
                continue;
            }
            FILE *f = fopen(argv[i], "rb");
            if (!f) {
                fprintf(stderr, "pipit decode: %s: %s\n", argv[i], strerror(errno));
                d.status = 1;
                continue;
            }
            decode_input(&d, f, argv[i]);
            fclose(f);
        }
    }
    status = d.status;
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "pipit decode: cannot write to stdout: %s\n", strerror(errno));
        status = 1;
    }
out:
    if (key.data)
        explicit_bzero(key.data, key.cap);  /* do not leave the key in freed memory */
    buf_free(&key);
    buf_free(&d.msg);
    buf_free(&d.payload);
    buf_free(&d.line);
    return status;
}
