/* plugin_proto.h: the frames pipitd and a plugin host process exchange on a pipe (docs/plugin-isolation.md). */
#ifndef PIPIT_PLUGIN_PROTO_H
#define PIPIT_PLUGIN_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <pipit/plugin.h>
#include "buf.h"

/*
 * A frame is a 4-byte big-endian payload length, a 1-byte type, then the
 * payload. Types below 16 go from pipitd to the host process, the others
 * back.
 */
#define PROTO_HEADER 5
#define PROTO_INIT     1                /* JSON: plugin, name, options, ... */
#define PROTO_COLLECT  2                /* empty: run collect() once */
#define PROTO_READY    16               /* empty: init() succeeded */
#define PROTO_ERROR    17               /* int32 status, then a message */
#define PROTO_RECORDS  18               /* uint8 kind, then JSON lines */
#define PROTO_DONE     19               /* int32 status, uint32 records capped */
#define PROTO_LOG      20               /* uint8 level, then a message */

#define PROTO_MAX_LOG  4096             /* bound on a LOG message */

/* Append one frame to out. Returns PIPIT_OK or PIPIT_ENOMEM. */
int proto_put(struct buf *out, int type, const void *payload, size_t len);

struct proto_dec {                      /* a stream of frames being read */
    struct buf in;                      /* bytes not consumed yet */
    size_t used;                        /* consumed prefix of in */
    size_t max_payload;                 /* a longer frame is an error */
};

struct proto_frame {
    int type;
    const unsigned char *payload;       /* borrowed until the next call */
    size_t len;
};

void proto_dec_init(struct proto_dec *d, size_t max_payload);
void proto_dec_free(struct proto_dec *d);
/* Add bytes read from the pipe. Returns PIPIT_OK or PIPIT_ENOMEM. */
int proto_dec_feed(struct proto_dec *d, const void *p, size_t n);
/*
 * Take the next whole frame. Returns 1 with *f set, 0 when more bytes are
 * needed, or PIPIT_EPARSE for a frame pipitd does not accept from a host
 * (an unknown or parent-bound type, a payload over max_payload, a payload
 * of the wrong size for its type), with a reason in err.
 */
int proto_next(struct proto_dec *d, struct proto_frame *f, char *err, size_t errlen);

/* Integers of the payloads, big-endian. */
void proto_put_u32(unsigned char *p, uint32_t v);
uint32_t proto_get_u32(const unsigned char *p);

/*
 * Check the JSON lines of a RECORDS frame from a host: each line ends with
 * '\n' and is a JSON object whose kind is kind's name and whose host and
 * instance are the given ones (a host process cannot speak for another
 * instance). Calls keep(line, len, arg) for each good line (len with its
 * newline); counts the others in *bad. Returns the number kept.
 */
size_t proto_check_lines(int kind, const char *lines, size_t len, const char *host,
                         const char *instance,
                         void (*keep)(const char *line, size_t len, void *arg),
                         void *arg, size_t *bad);

#endif
