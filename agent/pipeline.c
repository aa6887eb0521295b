/* pipeline.c: batching records per kind and delivering batches to every output in order. */
#include <stdlib.h>
#include <string.h>
#include "errors.h"
#include "log.h"
#include "pipeline.h"
#include "record.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define DROP_LOG_EVERY_NS (10LL * 1000000000)

static void schedule_kick(struct pipeline *pl);
static void linger_fired(uv_timer_t *t);
static void spool_pending(struct pipeline *pl);
static uint32_t owed_by(const struct pipeline *pl, int kind);

static void pipeline_unref(struct pipeline *pl)
{
    if (--pl->handles == 0) {
        free(pl->outs);
        free(pl);
    }
}

static void handle_closed(uv_handle_t *h)
{
    pipeline_unref(h->data);
}

static void retry_closed(uv_handle_t *h)
{
    struct pipeline_output *o = h->data;
    pipeline_unref(o->pl);
}

/* Warn about refused records at most every 10 s, with the count since. */
static void note_drop(struct pipeline *pl, uint64_t n, const char *why)
{
    int64_t now = batch_clock_ns();
    pl->drops_unlogged += n;
    if (pl->drop_log_ns && now - pl->drop_log_ns < DROP_LOG_EVERY_NS)
        return;
    log_warn("pipeline", "%llu records dropped: %s",
             (unsigned long long)pl->drops_unlogged, why);
    pl->drops_unlogged = 0;
    pl->drop_log_ns = now;
}

/* Whether every output that still owes b sends only its wire message. */
static bool wire_only(const struct pipeline *pl, const struct batch *b)
{
    for (size_t i = 0; i < pl->nouts; i++)
        if ((b->pending & (1u << pl->outs[i].bit)) &&
            !(pl->outs[i].ins->plugin->desc.flags & PIPIT_FLUSH_WIRE_ONLY))
            return false;
    return true;
}

/* The decoded records of b, once its wire message holds them: not kept when
 * every output that owes b sends only the wire message. */
static void drop_payload(struct pipeline *pl, struct batch *b)
{
    pl->pending_bytes -= b->b.payload_len;
    b->mem -= b->b.payload_len;
    free(b->payload);
    b->payload = NULL;
    b->b.payload = NULL;
    b->b.payload_len = 0;
}

/* Wire-encode b (its payload stays for outputs that read records). */
static int encode_batch(struct pipeline *pl, struct batch *b)
{
    struct buf w = BUF_INIT;
    int r = wire_encode(&w, &pl->wire, b->b.kind, b->b.agent_id, b->b.seq,
                        b->b.count, b->b.created_ns, b->b.payload, b->b.payload_len);
    if (r != PIPIT_OK) {
        buf_free(&w);
        return r;
    }
    b->b.wire_len = w.len;              /* before buf_steal() empties w */
    pl->stats.batch_bytes += b->b.payload_len;
    pl->stats.batch_wire_bytes += w.len;
    b->wire = buf_steal(&w);
    b->b.wire = b->wire;
    b->mem += b->b.wire_len;
    pl->pending_bytes += b->b.wire_len;
    if (wire_only(pl, b))
        drop_payload(pl, b);
    return PIPIT_OK;
}

/* Warn about the spool at most every 10 s. */
static bool spool_log_due(struct pipeline *pl)
{
    int64_t now = batch_clock_ns();
    if (pl->spool_log_ns && now - pl->spool_log_ns < DROP_LOG_EVERY_NS)
        return false;
    pl->spool_log_ns = now;
    return true;
}

static void unlink_batch(struct pipeline *pl, struct batch *victim)
{
    struct batch **pp = &pl->head, *last = NULL;
    while (*pp && *pp != victim) {
        last = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = victim->next;
    if (!victim->next)
        pl->tail = last ? &last->next : &pl->head;
    pl->queued--;
}

/* Forget batches the spool dropped to make room (policy drop_oldest). */
static void forget_spool_dropped(struct pipeline *pl)
{
    uint64_t ids[64];
    size_t n;
    while ((n = spool_take_dropped(pl->spool, ids, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            for (struct batch *b = pl->head; b; b = b->next) {
                if (b->spool_id != ids[i])
                    continue;
                pl->stats.records_spool_dropped += b->b.count;
                note_drop(pl, b->b.count, "spool full (spool.policy drop_oldest)");
                unlink_batch(pl, b);
                pl->pending_bytes -= b->resident ? b->mem : 0;
                if (b->inflight) {
                    /* An output may still deliver it: keep its identity so that
                     * the drop is taken back if it does. */
                    free(b->payload);
                    free(b->wire);
                    b->payload = b->wire = NULL;
                    b->b.payload = NULL;
                    b->b.wire = NULL;
                    b->resident = false;
                    b->mem = 0;
                    b->next = pl->ghosts;
                    pl->ghosts = b;
                } else {
                    batch_free(b);
                }
                break;
            }
        }
    }
}

static void spool_retry_fired(uv_timer_t *t)
{
    struct pipeline *pl = t->data;
    spool_pending(pl);
    schedule_kick(pl);
}

/*
 * Write the queued batches that are not in the spool yet, oldest first,
 * stopping at the first refusal (full under policy block, or an I/O error):
 * they wait in memory, where pipeline.max_pending_bytes makes collectors
 * pause, and are tried again when space is released or after a second.
 */
static void spool_pending(struct pipeline *pl)
{
    for (struct batch *b = pl->head; b && pl->unspooled; b = b->next) {
        if (b->spool_id)
            continue;
        int r = spool_append(pl->spool, b->b.kind, b->b.seq, b->b.count,
                             b->b.wire, b->b.wire_len, &b->spool_id);
        if (r == PIPIT_OK) {
            pl->unspooled--;
            log_debug("pipeline", "spooled batch seq=%llu kind=%s records=%u entry=%llu",
                      (unsigned long long)b->b.seq, record_kind_name(b->b.kind),
                      b->b.count, (unsigned long long)b->spool_id);
            continue;
        }
        b->spool_id = 0;
        if (r == PIPIT_ERANGE) {        /* can never fit: say so, drop it */
            log_error("pipeline", "batch %llu (%zu bytes) is larger than "
                      "spool.max_bytes; its %u records are lost",
                      (unsigned long long)b->b.seq, b->b.wire_len, b->b.count);
            pl->stats.records_lost += b->b.count;
            b->pending = 0;             /* released by release_delivered */
            continue;
        }
        pl->stats.spool_waits++;
        if (r != PIPIT_EFULL)
            pl->stats.spool_errors++;   /* the spool logs it, once per episode */
        else if (spool_log_due(pl))
            log_warn("pipeline", "spool is full (spool.policy block); %zu batches wait in "
                     "memory and collectors pause near pipeline.max_pending_bytes",
                     pl->unspooled);
        if (!uv_is_active((uv_handle_t *)&pl->spool_retry))
            uv_timer_start(&pl->spool_retry, spool_retry_fired, 1000, 0);
        break;
    }
    forget_spool_dropped(pl);
}

/*
 * Keep memory near pipeline.max_pending_bytes: batches that are safe in the
 * spool and not in flight give their bytes back, newest first in effect (the
 * oldest, delivered soonest, stay), and are read back from the spool when an
 * output needs them.
 */
static void evict(struct pipeline *pl)
{
    size_t keep = pl->max_pending / 2, acc = 0;
    if (pl->pending_bytes <= keep)
        return;
    for (struct batch *b = pl->head; b; b = b->next) {
        if (!b->resident)
            continue;
        acc += b->mem;
        if (acc <= keep || !b->spool_id || b->inflight)
            continue;
        free(b->payload);
        free(b->wire);
        b->payload = b->wire = NULL;
        b->b.payload = NULL;
        b->b.wire = NULL;
        pl->pending_bytes -= b->mem;
        b->mem = 0;
        b->resident = false;
    }
}

/* Read an evicted or replayed batch back from the spool. */
static int load_batch(struct pipeline *pl, struct batch *b)
{
    struct spool_entry e;
    struct buf w = BUF_INIT, payload = BUF_INIT;
    struct wire_header h;
    char err[256];
    int r = spool_next(pl->spool, b->spool_id - 1, &e, &w);

    if (r != PIPIT_OK || e.id != b->spool_id) {
        snprintf(err, sizeof err, "entry %llu is no longer readable",
                 (unsigned long long)b->spool_id);
        goto fail;
    }
    /* The CRC is checked either way; the payload is decompressed only for
     * outputs that read records. */
    bool records = !wire_only(pl, b);
    if (records ? wire_decode(w.data, w.len, pl->wire.key, pl->wire.key_len, false,
                              pl->max_wire_raw, &h, &payload, err, sizeof err) != WIRE_OK
                : wire_verify(w.data, w.len, &h, err, sizeof err) != WIRE_OK)
        goto fail;
    b->b.payload_len = payload.len;     /* lengths before buf_steal() */
    b->b.wire_len = w.len;
    b->payload = records ? buf_steal(&payload) : NULL;
    b->b.payload = b->payload;
    b->wire = buf_steal(&w);
    b->b.wire = b->wire;
    b->b.created_ns = h.created_ns;
    b->mem = b->b.payload_len + b->b.wire_len;
    b->resident = true;
    pl->pending_bytes += b->mem;
    return PIPIT_OK;
fail:
    buf_free(&w);
    buf_free(&payload);
    pl->stats.spool_errors++;
    pl->stats.records_lost += b->b.count;
    log_error("pipeline", "spool: batch %llu (%u records) cannot be read back: %s; "
              "they are lost", (unsigned long long)b->b.seq, b->b.count, err);
    return PIPIT_EIO;
}

/*
 * Close the open batch of kind into the queue with the next sequence
 * number and mark which outputs owe it. A batch no running output takes is
 * counted and dropped here, loudly, instead of waiting forever.
 */
static void close_batch(struct pipeline *pl, int kind)
{
    struct batch_open *o = &pl->open[kind];
    uint64_t seq;
    uint32_t pending = 0;

    if (o->count == 0)
        return;
    seq = identity_next_seq(pl->id);
    if (seq == 0) {
        /* Without a sequence number of its own the batch would be taken for
         * a duplicate of another one and dropped by the aggregator: it stays
         * open (pipeline.max_pending_bytes bounds it) and is closed again in
         * a second; the identity logs why. */
        pl->stats.seq_errors++;
        if (!uv_is_active((uv_handle_t *)&pl->linger))
            uv_timer_start(&pl->linger, linger_fired, 1000, 0);
        return;
    }
    pending = owed_by(pl, kind);
    size_t len = o->payload.len;
    uint32_t count = o->count;
    struct batch *b = batch_close(o, seq, pl->id->agent_id);
    if (!b) {
        log_error("pipeline", "out of memory closing a batch of %u records", count);
        return;                         /* stays open; retried on the next close */
    }
    pl->stats.batches_closed++;
    histogram_observe(&pl->stats.batch_records, &histogram_records, count);
    if (!pending) {
        pl->stats.records_unrouted += count;
        pl->pending_bytes -= len;
        note_drop(pl, count, "no running output takes this record kind");
        batch_free(b);
        return;
    }
    b->pending = pending;
    if (pl->encode && encode_batch(pl, b) != PIPIT_OK) {
        pl->stats.encode_errors++;
        pl->stats.records_lost += count;
        pl->pending_bytes -= b->mem;
        log_error("pipeline", "cannot encode batch %llu (%u records); they are lost",
                  (unsigned long long)seq, count);
        batch_free(b);
        return;
    }
    *pl->tail = b;
    pl->tail = &b->next;
    pl->queued++;
    if (pl->spool) {
        pl->unspooled++;
        spool_pending(pl);
        evict(pl);
    }
    schedule_kick(pl);
}

static void linger_fired(uv_timer_t *t)
{
    struct pipeline *pl = t->data;
    int64_t now = batch_clock_ns(), next = -1;

    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++) {
        struct batch_open *o = &pl->open[k];
        if (batch_open_expired(o, &pl->limits, now))
            close_batch(pl, k);
        else if (o->count) {
            int64_t left = o->opened_ns + pl->limits.linger_ns - now;
            if (next < 0 || left < next)
                next = left;
        }
    }
    if (next >= 0)
        uv_timer_start(&pl->linger, linger_fired, (uint64_t)(next / 1000000) + 1, 0);
}

struct pipeline *pipeline_new(uv_loop_t *loop, struct identity *id,
                              const struct batch_limits *limits, size_t max_pending,
                              struct pipit_instance **outs, size_t nouts)
{
    struct pipeline *pl = calloc(1, sizeof *pl);
    if (!pl || nouts > 32)
        goto fail;
    pl->outs = calloc(nouts ? nouts : 1, sizeof *pl->outs);
    if (!pl->outs)
        goto fail;
    pl->loop = loop;
    pl->id = id;
    pl->limits = *limits;
    pl->max_pending = max_pending;
    pl->tail = &pl->head;
    pl->marks_tail = &pl->marks;
    pl->next_bid = 1;
    for (int k = 0; k <= PIPIT_RECORD_KIND_MAX; k++)
        pl->open[k].kind = k;
    uv_timer_init(loop, &pl->linger);
    uv_timer_init(loop, &pl->kick);
    uv_timer_init(loop, &pl->spool_retry);
    pl->linger.data = pl->kick.data = pl->spool_retry.data = pl;
    pl->handles = 3;
    pl->nouts = nouts;
    for (size_t i = 0; i < nouts; i++) {
        struct pipeline_output *o = &pl->outs[i];
        o->ins = outs[i];
        o->bit = (unsigned)i;
        o->pl = pl;
        o->backoff_ms = BACKOFF_MIN_MS;
        uv_timer_init(loop, &o->retry);
        o->retry.data = o;
        pl->handles++;
        outs[i]->out = o;
    }
    return pl;
fail:
    if (pl)
        free(pl->outs);
    free(pl);
    return NULL;
}

/* Outputs that owe a batch of kind, as pending bits. */
static uint32_t owed_by(const struct pipeline *pl, int kind)
{
    uint32_t pending = 0;
    for (size_t i = 0; i < pl->nouts; i++) {
        struct pipit_instance *ins = pl->outs[i].ins;
        if (ins->state == INS_RUNNING && (ins->kind_mask & (1u << kind)))
            pending |= 1u << pl->outs[i].bit;
    }
    return pending;
}

int pipeline_set_store(struct pipeline *pl, const struct wire_encode_opts *opts,
                       struct spool *spool)
{
    struct spool_entry e;
    uint64_t after = 0, batches = 0;

    pl->encode = true;
    pl->wire = *opts;
    pl->max_wire_raw = pl->limits.max_bytes * 2 + (1u << 20);
    if (pl->max_wire_raw < WIRE_DEFAULT_MAX_RAW)
        pl->max_wire_raw = WIRE_DEFAULT_MAX_RAW;
    pl->spool = spool;
    if (!spool)
        return PIPIT_OK;
    /* What an earlier run left: queued again, read back when delivered. */
    while (spool_next(spool, after, &e, NULL) == PIPIT_OK) {
        after = e.id;
        uint32_t pending = owed_by(pl, e.kind);
        if (!pending) {
            pl->stats.records_unrouted += e.count;
            note_drop(pl, e.count, "no running output takes this record kind");
            spool_release(spool, e.id);
            continue;
        }
        struct batch *b = calloc(1, sizeof *b);
        if (!b)
            return PIPIT_ENOMEM;
        b->b.struct_size = sizeof b->b;
        b->b.kind = e.kind;
        b->b.seq = e.seq;
        b->b.count = e.count;
        b->b.agent_id = pl->id->agent_id;
        b->b.id = pl->next_bid++;
        b->spool_id = e.id;
        b->pending = pending;
        *pl->tail = b;
        pl->tail = &b->next;
        pl->queued++;
        pl->stats.records_replayed += e.count;
        batches++;
        /* Also an entry written just before a crash whose append never
         * returned (so it was never logged as spooled): it is in the spool,
         * it is delivered, and it is named here. */
        log_debug("pipeline", "spooled batch seq=%llu kind=%s records=%u entry=%llu "
                  "(from an earlier run)", (unsigned long long)e.seq,
                  record_kind_name(e.kind), e.count, (unsigned long long)e.id);
    }
    if (batches) {
        log_info("pipeline", "spool: %llu batches (%llu records) from an earlier run "
                 "are delivered again", (unsigned long long)batches,
                 (unsigned long long)pl->stats.records_replayed);
        schedule_kick(pl);
    }
    return PIPIT_OK;
}

int pipeline_deliver(struct pipeline *pl, int kind, const char *lines, size_t len,
                     uint32_t count)
{
    if (pl->closing || kind < PIPIT_METRIC || kind > PIPIT_RECORD_KIND_MAX)
        return PIPIT_ESTATE;
    if (pl->pending_bytes + len > pl->max_pending) {
        pl->stats.records_full += count;
        note_drop(pl, count, "pipeline.max_pending_bytes reached (outputs are "
                  "not keeping up)");
        return PIPIT_EFULL;
    }
    struct batch_open *o = &pl->open[kind];
    int64_t now = 0;                    /* read once, when a batch opens */
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (o->count == 0 && now == 0)
            now = batch_clock_ns();
        if (batch_open_add(o, p, n, now) != PIPIT_OK) {
            uint32_t left = 0;
            for (const char *q = p; q < end; q++)
                left += *q == '\n';
            pl->stats.records_full += left;
            note_drop(pl, left, "out of memory");
            return PIPIT_ENOMEM;
        }
        pl->pending_bytes += n;
        pl->stats.records_in++;
        if (o->count == 1)
            o->bid = pl->next_bid++;
        if (o->count == 1 && pl->limits.linger_ns > 0 && !uv_is_active((uv_handle_t *)&pl->linger))
            uv_timer_start(&pl->linger, linger_fired,
                           (uint64_t)(pl->limits.linger_ns / 1000000), 0);
        if (batch_open_full(o, &pl->limits))
            close_batch(pl, kind);
        p += n;
    }
    if (pl->limits.linger_ns == 0)
        close_batch(pl, kind);
    return PIPIT_OK;
}

bool pipeline_high_water(const struct pipeline *pl)
{
    return pl->pending_bytes >= pl->max_pending / 10 * 9;
}

void pipeline_close_open(struct pipeline *pl)
{
    pl->close_when_free = false;
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        close_batch(pl, k);
}

void pipeline_caught_up(struct pipeline *pl)
{
    if (pl->head)
        pl->close_when_free = true;     /* release_delivered closes them */
    else
        pipeline_close_open(pl);
}

bool pipeline_idle(const struct pipeline *pl)
{
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        if (pl->open[k].count)
            return false;
    return pl->head == NULL;
}

/* Smallest id among batches not durable yet (open, queued and, with a
 * spool, not written to it), or UINT64_MAX. */
static uint64_t min_alive_bid(const struct pipeline *pl)
{
    uint64_t min = UINT64_MAX;
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        if (pl->open[k].count && pl->open[k].bid < min)
            min = pl->open[k].bid;
    for (const struct batch *b = pl->head; b; b = b->next)
        if (b->b.id < min && !(pl->spool && b->spool_id))  /* spooled = durable */
            min = b->b.id;
    return min;
}

/*
 * Acknowledge, in order, the marks whose batches are all released. The
 * list is ordered by barrier (marks are made in time order), so the scan
 * stops at the first mark still waiting.
 */
static void ack_marks(struct pipeline *pl)
{
    if (!pl->marks)
        return;
    uint64_t alive = min_alive_bid(pl);
    while (pl->marks && pl->marks->barrier < alive) {
        struct pipeline_mark *m = pl->marks;
        pl->marks = m->next;
        if (!pl->marks)
            pl->marks_tail = &pl->marks;
        struct pipit_instance *ins = m->ins;
        if (ins->state == INS_RUNNING && ins->plugin->desc.ack)
            ins->plugin->desc.ack(ins, ins->ctx, m->token);
        free(m);
    }
}

int pipeline_mark(struct pipeline *pl, struct pipit_instance *ins, uint64_t token)
{
    struct pipeline_mark *m = calloc(1, sizeof *m);
    if (!m)
        return PIPIT_ENOMEM;
    m->ins = ins;
    m->token = token;
    m->barrier = pl->next_bid - 1;      /* every batch opened so far */
    *pl->marks_tail = m;
    pl->marks_tail = &m->next;
    schedule_kick(pl);                  /* acked from the loop, never re-entrantly */
    return PIPIT_OK;
}

void pipeline_forget(struct pipeline *pl, struct pipit_instance *ins)
{
    struct pipeline_mark **pp = &pl->marks;
    while (*pp) {
        struct pipeline_mark *m = *pp;
        if (m->ins == ins) {
            *pp = m->next;
            free(m);
        } else {
            pp = &m->next;
        }
    }
    pl->marks_tail = pp;
}

static void free_marks(struct pipeline *pl)
{
    while (pl->marks) {
        struct pipeline_mark *m = pl->marks;
        pl->marks = m->next;
        free(m);
    }
    pl->marks_tail = &pl->marks;
}

/* Free the batches every output has taken (in any queue position). */
static void release_delivered(struct pipeline *pl)
{
    struct batch **pp = &pl->head, *last = NULL;
    bool freed_spool = false;
    while (*pp) {
        struct batch *b = *pp;
        if (b->pending == 0 && b->inflight == 0) {
            *pp = b->next;
            pl->pending_bytes -= b->resident ? b->mem : 0;
            pl->queued--;
            if (b->spool_id) {
                spool_release(pl->spool, b->spool_id);
                freed_spool = true;
            } else if (pl->spool) {
                pl->unspooled--;        /* given up before it was spooled */
            }
            batch_free(b);
        } else {
            last = b;
            pp = &b->next;
        }
    }
    pl->tail = last ? &last->next : &pl->head;
    if (freed_spool && pl->unspooled)
        spool_pending(pl);              /* space was released */
    ack_marks(pl);
    if (!pl->head && pl->close_when_free && !pl->closing)
        pipeline_close_open(pl);
}

static void retry_fired(uv_timer_t *t)
{
    struct pipeline_output *o = t->data;
    o->waiting = false;
    pipeline_kick(o->pl);
}

/* The output has just failed to deliver: it is failing from now, unless
 * it already was. */
static void note_failing(struct pipeline_output *o)
{
    if (!o->failing_since_ns)
        o->failing_since_ns = batch_clock_ns();
}

/* The output has b: count it, time it from the batch's close, and end any
 * backoff streak. */
static void note_delivered(struct pipeline_output *o, const struct batch *b)
{
    int64_t age = record_now_ns() - b->b.created_ns;

    o->batches++;
    o->records += b->b.count;
    o->backoff_ms = BACKOFF_MIN_MS;
    o->failing_since_ns = 0;
    histogram_observe(&o->latency, &histogram_seconds, age > 0 ? (double)age / 1e9 : 0);
}

/* Wait before giving this output anything again: exponential, with jitter. */
static void back_off(struct pipeline_output *o)
{
    o->retries++;
    note_failing(o);
    if (o->waiting)
        return;
    o->waiting = true;
    uint64_t wait = (uint64_t)o->backoff_ms / 2 +
                    (uint64_t)rand() % ((uint64_t)o->backoff_ms / 2 + 1);
    uv_timer_start(&o->retry, retry_fired, wait, 0);
    if (o->backoff_ms < BACKOFF_MAX_MS)
        o->backoff_ms *= 2;
    if (o->backoff_ms > BACKOFF_MAX_MS)
        o->backoff_ms = BACKOFF_MAX_MS;
}

/* The output cannot ever deliver b: count it and say so. */
static void give_up(struct pipeline_output *o, struct batch *b, int err)
{
    b->pending &= ~(1u << o->bit);
    o->failed_batches++;
    o->failed_records += b->b.count;
    note_failing(o);
    log_line(PIPIT_LOG_ERROR, o->ins->name, o->ins->plugin->desc.name, NULL,
             "flush of batch %llu (%u %s records) failed: %s; this output "
             "drops them (counted)", (unsigned long long)b->b.seq, b->b.count,
             record_kind_name(b->b.kind), pipit_strerror(err));
}

/*
 * Hand each output the batches it still owes, oldest first, until it has
 * none or asks to retry. PIPIT_PENDING leaves the batch in flight until
 * flush_done(); PIPIT_RETRY keeps the batch and backs off exponentially
 * with jitter; an error gives up this batch for this output, counted and
 * logged (other outputs still get it).
 */
static void deliver_output(struct pipeline *pl, struct pipeline_output *o)
{
    uint32_t bit = 1u << o->bit;
    const struct pipit_plugin *d = &o->ins->plugin->desc;

    if (o->waiting)
        return;
    for (struct batch *b = pl->head, *next; b; b = next) {
        next = b->next;
        if (!(b->pending & bit) || (b->inflight & bit))
            continue;
        if (pl->spool && !b->spool_id)
            break;                      /* written to the spool before delivery */
        if (!b->resident && load_batch(pl, b) != PIPIT_OK) {
            b->pending = 0;             /* lost, counted: released below */
            continue;
        }
        if (o->ins->state != INS_RUNNING) {
            b->pending &= ~bit;         /* disabled while the batch waited */
            o->failed_batches++;
            o->failed_records += b->b.count;
            continue;
        }
        int r = d->flush(o->ins, o->ins->ctx, &b->b);
        if (r == PIPIT_PENDING) {
            b->inflight |= bit;
            o->inflight++;
            continue;
        }
        if (r == PIPIT_OK) {
            b->pending &= ~bit;
            note_delivered(o, b);
            continue;
        }
        if (r == PIPIT_RETRY) {
            back_off(o);
            return;
        }
        give_up(o, b, r);
    }
}

void pipeline_kick(struct pipeline *pl)
{
    for (size_t i = 0; i < pl->nouts; i++)
        deliver_output(pl, &pl->outs[i]);
    release_delivered(pl);
    if (pl->on_progress)
        pl->on_progress(pl->progress_arg);
}

/*
 * The outcome of a batch the spool dropped while it was in flight: if the
 * output delivered it after all, it was not lost, so the drop is taken back.
 * Returns false when id is not a ghost.
 */
static bool settle_ghost(struct pipeline *pl, struct pipeline_output *o, uint64_t id,
                         int status)
{
    uint32_t bit = 1u << o->bit;
    for (struct batch **pp = &pl->ghosts; *pp; pp = &(*pp)->next) {
        struct batch *g = *pp;
        if (g->b.id != id || !(g->inflight & bit))
            continue;
        g->inflight &= ~bit;
        o->inflight--;
        if (status == PIPIT_OK && g->b.count) {
            pl->stats.records_spool_dropped -= g->b.count;
            o->batches++;
            o->records += g->b.count;
            log_info("pipeline", "batch %llu (%u records), dropped from the full spool "
                     "while in flight, was delivered after all",
                     (unsigned long long)g->b.seq, g->b.count);
            g->b.count = 0;             /* counted once, whatever other outputs say */
        }
        if (!g->inflight) {
            *pp = g->next;
            batch_free(g);
        }
        return true;
    }
    return false;
}

void pipeline_flush_done(struct pipeline *pl, struct pipit_instance *ins,
                         uint64_t id, int status)
{
    struct pipeline_output *o = ins->out;
    struct batch *b;

    if (!o || pl->closing)
        return;
    uint32_t bit = 1u << o->bit;
    for (b = pl->head; b; b = b->next)
        if (b->b.id == id && (b->inflight & bit))
            break;
    if (!b && settle_ghost(pl, o, id, status))
        return;
    if (!b) {
        log_line(PIPIT_LOG_WARN, ins->name, ins->plugin->desc.name, NULL,
                 "flush_done for batch id %llu which is not in flight; ignored",
                 (unsigned long long)id);
        return;
    }
    b->inflight &= ~bit;
    o->inflight--;
    if (status == PIPIT_OK) {
        b->pending &= ~bit;
        note_delivered(o, b);
        if (o->waiting) {
            /* A delivery just made room in the output (its client queue was
             * full): no need to sit out the rest of the backoff. */
            uv_timer_stop(&o->retry);
            o->waiting = false;
        }
    } else if (status == PIPIT_RETRY || status == PIPIT_PENDING) {
        back_off(o);
    } else {
        give_up(o, b, status);
    }
    schedule_kick(pl);
}

static void kick_fired(uv_timer_t *t)
{
    pipeline_kick(t->data);
}

static void schedule_kick(struct pipeline *pl)
{
    if (!pl->closing && !uv_is_active((uv_handle_t *)&pl->kick))
        uv_timer_start(&pl->kick, kick_fired, 0, 0);
}

void pipeline_abandon(struct pipeline *pl)
{
    uint64_t records = 0, batches = 0, kept_records = 0, kept = 0;

    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++) {
        records += pl->open[k].count;
        pl->pending_bytes -= pl->open[k].payload.len;
        pl->open[k].count = 0;
        buf_free(&pl->open[k].payload);
    }
    while (pl->head) {
        struct batch *b = pl->head;
        pl->head = b->next;
        if (b->spool_id && (b->pending || b->inflight)) {
            kept_records += b->b.count; /* stays in the spool for next time */
            kept++;
        } else if (b->pending || b->inflight || (pl->spool && !b->spool_id)) {
            records += b->b.count;
            batches++;
        }
        pl->pending_bytes -= b->resident ? b->mem : 0;
        batch_free(b);
    }
    pl->tail = &pl->head;
    pl->queued = 0;
    pl->unspooled = 0;
    while (pl->ghosts) {
        struct batch *g = pl->ghosts;
        pl->ghosts = g->next;
        batch_free(g);
    }
    free_marks(pl);                     /* their records were not all delivered */
    pl->stats.records_lost += records;
    if (records)
        log_error("pipeline", "%llu records (%llu batches, and open batches) were "
                  "not delivered in time and are lost",
                  (unsigned long long)records, (unsigned long long)batches);
    if (kept)
        log_warn("pipeline", "%llu batches (%llu records) not yet delivered stay in "
                 "the spool and are delivered after the restart",
                 (unsigned long long)kept, (unsigned long long)kept_records);
}

void pipeline_close(struct pipeline *pl)
{
    if (!pl || pl->closing)
        return;
    pipeline_abandon(pl);               /* counts anything left (normally none) */
    pl->closing = true;
    uv_close((uv_handle_t *)&pl->linger, handle_closed);
    uv_close((uv_handle_t *)&pl->kick, handle_closed);
    uv_close((uv_handle_t *)&pl->spool_retry, handle_closed);
    for (size_t i = 0; i < pl->nouts; i++) {
        pl->outs[i].ins->out = NULL;
        uv_close((uv_handle_t *)&pl->outs[i].retry, retry_closed);
    }
}
