/* batch.c: filling batches with JSON lines and closing them into numbered batches. */
#include <stdlib.h>
#include <time.h>
#include "batch.h"

int64_t batch_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int batch_open_add(struct batch_open *o, const char *line, size_t len, int64_t now_ns)
{
    if (buf_append(&o->payload, line, len) != PIPIT_OK)
        return PIPIT_ENOMEM;
    if (o->count++ == 0)
        o->opened_ns = now_ns;
    return PIPIT_OK;
}

bool batch_open_full(const struct batch_open *o, const struct batch_limits *l)
{
    return o->count >= l->max_records || o->payload.len >= l->max_bytes;
}

bool batch_open_expired(const struct batch_open *o, const struct batch_limits *l,
                        int64_t now_ns)
{
    return o->count > 0 && now_ns - o->opened_ns >= l->linger_ns;
}

struct batch *batch_close(struct batch_open *o, uint64_t seq, const char *agent_id)
{
    struct batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    size_t len = o->payload.len;
    b->payload = buf_steal(&o->payload);
    b->b.struct_size = sizeof b->b;
    b->b.kind = o->kind;
    b->b.seq = seq;
    b->b.count = o->count;
    b->b.payload = b->payload;
    b->b.payload_len = len;
    b->resident = true;
    b->mem = len;
    b->b.agent_id = agent_id;
    b->b.id = o->bid;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    b->b.created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    o->count = 0;
    o->opened_ns = 0;
    o->bid = 0;
    return b;
}

void batch_free(struct batch *b)
{
    if (!b)
        return;
    free(b->payload);
    free(b->wire);
    free(b);
}
