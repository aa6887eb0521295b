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
    if (seq == 0)
        pl->stats.seq_errors++;
    for (size_t i = 0; i < pl->nouts; i++) {
        struct pipit_instance *ins = pl->outs[i].ins;
        if (ins->state == INS_RUNNING && (ins->kind_mask & (1u << kind)))
            pending |= 1u << pl->outs[i].bit;
    }
    size_t len = o->payload.len;
    uint32_t count = o->count;
    struct batch *b = batch_close(o, seq, pl->id->agent_id);
    if (!b) {
        log_error("pipeline", "out of memory closing a batch of %u records", count);
        return;                         /* stays open; retried on the next close */
    }
    pl->stats.batches_closed++;
    if (!pending) {
        pl->stats.records_unrouted += count;
        pl->pending_bytes -= len;
        note_drop(pl, count, "no running output takes this record kind");
        batch_free(b);
        return;
    }
    b->pending = pending;
    *pl->tail = b;
    pl->tail = &b->next;
    pl->queued++;
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
    pl->linger.data = pl->kick.data = pl;
    pl->handles = 2;
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
    int64_t now = batch_clock_ns();
    const char *p = lines, *end = lines + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
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
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        close_batch(pl, k);
}

bool pipeline_idle(const struct pipeline *pl)
{
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        if (pl->open[k].count)
            return false;
    return pl->head == NULL;
}

/* Smallest id among batches still alive (open or queued), or UINT64_MAX. */
static uint64_t min_alive_bid(const struct pipeline *pl)
{
    uint64_t min = UINT64_MAX;
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
        if (pl->open[k].count && pl->open[k].bid < min)
            min = pl->open[k].bid;
    for (const struct batch *b = pl->head; b; b = b->next)
        if (b->b.id < min)
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
    while (*pp) {
        struct batch *b = *pp;
        if (b->pending == 0 && b->inflight == 0) {
            *pp = b->next;
            pl->pending_bytes -= b->b.payload_len;
            pl->queued--;
            batch_free(b);
        } else {
            last = b;
            pp = &b->next;
        }
    }
    pl->tail = last ? &last->next : &pl->head;
    ack_marks(pl);
}

static void retry_fired(uv_timer_t *t)
{
    struct pipeline_output *o = t->data;
    o->waiting = false;
    pipeline_kick(o->pl);
}

/* Wait before giving this output anything again: exponential, with jitter. */
static void back_off(struct pipeline_output *o)
{
    o->retries++;
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
    for (struct batch *b = pl->head; b; b = b->next) {
        if (!(b->pending & bit) || (b->inflight & bit))
            continue;
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
            o->batches++;
            o->records += b->b.count;
            o->backoff_ms = BACKOFF_MIN_MS;
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
        o->batches++;
        o->records += b->b.count;
        o->backoff_ms = BACKOFF_MIN_MS;
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
    uint64_t records = 0, batches = 0;

    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++) {
        records += pl->open[k].count;
        pl->pending_bytes -= pl->open[k].payload.len;
        pl->open[k].count = 0;
        buf_free(&pl->open[k].payload);
    }
    while (pl->head) {
        struct batch *b = pl->head;
        pl->head = b->next;
        records += b->b.count;
        batches++;
        pl->pending_bytes -= b->b.payload_len;
        batch_free(b);
    }
    pl->tail = &pl->head;
    pl->queued = 0;
    free_marks(pl);                     /* their records were not all delivered */
    pl->stats.records_lost += records;
    if (records)
        log_error("pipeline", "%llu records in %llu batches were not delivered "
                  "before the shutdown timeout and are lost",
                  (unsigned long long)records, (unsigned long long)batches);
}

void pipeline_close(struct pipeline *pl)
{
    if (!pl || pl->closing)
        return;
    pipeline_abandon(pl);               /* counts anything left (normally none) */
    pl->closing = true;
    uv_close((uv_handle_t *)&pl->linger, handle_closed);
    uv_close((uv_handle_t *)&pl->kick, handle_closed);
    for (size_t i = 0; i < pl->nouts; i++) {
        pl->outs[i].ins->out = NULL;
        uv_close((uv_handle_t *)&pl->outs[i].retry, retry_closed);
    }
}
