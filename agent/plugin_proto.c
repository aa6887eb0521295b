/* plugin_proto.c: frame encoding and the checking decoder of what a plugin host process sends. */
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "errors.h"
#include "plugin_proto.h"
#include "record.h"

void proto_put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

uint32_t proto_get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int proto_put(struct buf *out, int type, const void *payload, size_t len)
{
    unsigned char h[PROTO_HEADER];

    if (len > UINT32_MAX)
        return PIPIT_ERANGE;
    proto_put_u32(h, (uint32_t)len);
    h[4] = (unsigned char)type;
    if (buf_append(out, h, sizeof h) != PIPIT_OK ||
        (len && buf_append(out, payload, len) != PIPIT_OK))
        return PIPIT_ENOMEM;
    return PIPIT_OK;
}

void proto_dec_init(struct proto_dec *d, size_t max_payload)
{
    memset(d, 0, sizeof *d);
    d->max_payload = max_payload;
}

void proto_dec_free(struct proto_dec *d)
{
    buf_free(&d->in);
    d->used = 0;
}

int proto_dec_feed(struct proto_dec *d, const void *p, size_t n)
{
    if (d->used && d->used == d->in.len) {
        buf_reset(&d->in);
        d->used = 0;
    } else if (d->used > (64u << 10) && d->used > d->in.len / 2) {
        /* slide the unread tail to the front now and then */
        memmove(d->in.data, d->in.data + d->used, d->in.len - d->used);
        d->in.len -= d->used;
        d->used = 0;
    }
    return buf_append(&d->in, p, n);
}

int proto_next(struct proto_dec *d, struct proto_frame *f, char *err, size_t errlen)
{
    size_t avail = d->in.len - d->used;
    const unsigned char *p = (const unsigned char *)d->in.data + d->used;

    if (avail < PROTO_HEADER)
        return 0;
    uint32_t len = proto_get_u32(p);
    int type = p[4];
    size_t want = 0;                    /* fixed size, or 0: any */
    size_t min = 0;
    switch (type) {
    case PROTO_READY:   want = 0; break;
    case PROTO_ERROR:   min = 4; break;
    case PROTO_RECORDS: min = 1; break;
    case PROTO_DONE:    want = 8; break;
    case PROTO_LOG:     min = 1; break;
    default:
        snprintf(err, errlen, "frame type %d is not one a plugin host sends", type);
        return PIPIT_EPARSE;
    }
    if (len > d->max_payload || (type == PROTO_LOG && len > 1 + PROTO_MAX_LOG)) {
        snprintf(err, errlen, "frame type %d of %lu bytes is over the bound of %zu",
                 type, (unsigned long)len, type == PROTO_LOG ? (size_t)1 + PROTO_MAX_LOG
                                                              : d->max_payload);
        return PIPIT_EPARSE;
    }
    if ((want && len != want) || (type == PROTO_READY && len != 0) || len < min) {
        snprintf(err, errlen, "frame type %d has a payload of %lu bytes", type,
                 (unsigned long)len);
        return PIPIT_EPARSE;
    }
    if (avail - PROTO_HEADER < len)
        return 0;
    if (type == PROTO_RECORDS && (p[PROTO_HEADER] < PIPIT_METRIC ||
                                  p[PROTO_HEADER] > PIPIT_RECORD_KIND_MAX)) {
        snprintf(err, errlen, "records of unknown kind %d", p[PROTO_HEADER]);
        return PIPIT_EPARSE;
    }
    f->type = type;
    f->payload = p + PROTO_HEADER;
    f->len = len;
    d->used += PROTO_HEADER + len;
    return 1;
}

/* str is the string value of key in o. */
static int has_str(json_t *o, const char *key, const char *str)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && strcmp(v, str) == 0;
}

size_t proto_check_lines(int kind, const char *lines, size_t len, const char *host,
                         const char *instance,
                         void (*keep)(const char *line, size_t len, void *arg),
                         void *arg, size_t *bad)
{
    const char *kname = record_kind_name(kind);
    size_t kept = 0;

    while (len > 0) {
        const char *nl = memchr(lines, '\n', len);
        size_t n = nl ? (size_t)(nl - lines) + 1 : len;
        json_t *o = nl ? json_loadb(lines, n - 1, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (o && json_is_object(o) && has_str(o, "kind", kname) &&
            has_str(o, "host", host) && has_str(o, "instance", instance)) {
            keep(lines, n, arg);
            kept++;
        } else {
            (*bad)++;
        }
        json_decref(o);
        lines += n;
        len -= n;
    }
    return kept;
}
