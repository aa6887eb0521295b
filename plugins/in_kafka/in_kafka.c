/* in_kafka: the aggregator's input: consume agent batches from Kafka, verify, deduplicate, relay. */
#define _GNU_SOURCE                     /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "relay.h"
#include "wire.h"

static const struct pipit_api *api;     /* borrowed from the host */

#define KAFKA_POLL_BUDGET 64            /* messages per loop turn, for fairness */
#define KAFKA_STALL_RETRY_MS 200        /* pipeline full: try the message again */

/* Sequence numbers seen from one agent: all <= floor, plus a window above. */
struct kafka_seen {
    uint8_t agent[16];
    bool used;
    uint64_t floor;
    uint64_t *bits;                     /* window bits for floor+1 .. floor+W */
};

/* A consumed message whose offset is not committed yet, in consumption order. */
struct kafka_msg {
    struct kafka_msg *next;
    uint64_t token;                     /* api->mark() token of its records */
    char *topic;
    int32_t partition;
    int64_t offset;
    bool durable;                       /* records acknowledged by the host */
    bool dlq_pending;                   /* dead-letter copy not yet delivered */
    bool dlq_failed;                    /* dead-letter copy must be sent again */
    char *dlq_reason, *dlq_error;       /* for a resend */
    void *dlq_value;
    size_t dlq_len;
    char *dlq_key;
};

struct kafka_ctx {
    /* options */
    const char *brokers;
    const char *group_id;
    struct pipit_strlist topics;
    const char *deadletter_topic;
    struct pipit_strmap keys;
    bool require_signature;
    int64_t max_batch_bytes;
    int64_t dedup_window;
    int64_t max_agents;
    bool close_when_caught_up;
    struct pipit_strmap rdkafka;

    /* clients */
    rd_kafka_t *rk;                     /* consumer */
    rd_kafka_queue_t *queue;            /* its consumer queue */
    rd_kafka_t *dlq;                    /* dead-letter producer */
    int pipe_c[2], pipe_p[2];           /* IO events of the two queues */

    /* durability bookkeeping */
    struct kafka_msg *head, **tail;
    uint64_t next_token;
    rd_kafka_message_t *stalled;        /* partly emitted, pipeline was full */
    uint32_t stalled_index;             /* first record not yet emitted */
    bool timer_armed;
    bool emitted;                       /* records emitted since the queue was last empty */

    /* deduplication */
    struct kafka_seen *seen;
    size_t nseen_slots, nseen;

    struct buf payload;                 /* decompressed batch */

    /* counters (logged at fini) */
    uint64_t messages, batches, records, duplicates, invalid_records;
    uint64_t dlq_sent, dlq_by_reason[WIRE_REASON_MAX], commits, commit_errors;
    bool dlq_count_pending[WIRE_REASON_MAX];  /* kafka.dead_letters not yet emitted */
};

static const struct pipit_option kafka_options[] = {
    PIPIT_OPT_STRING_REQ("brokers", struct kafka_ctx, brokers,
                         "Bootstrap servers, host:port[,host:port...]"),
    PIPIT_OPT_STRING("group_id", "pipit-aggregator", struct kafka_ctx, group_id,
                     "Consumer group; aggregators in one group share the partitions"),
    PIPIT_OPT_LIST("topics", struct kafka_ctx, topics,
                   "Topics to consume (default: pipit.metrics, pipit.logs, pipit.costs, pipit.events)"),
    PIPIT_OPT_STRING("deadletter_topic", "pipit.deadletter", struct kafka_ctx,
                     deadletter_topic,
                     "Where messages that fail verification go, with the reason in headers"),
    PIPIT_OPT_MAP("keys", struct kafka_ctx, keys,
                  "HMAC keys by agent id (UUID); the key \"*\" applies to every other agent"),
    PIPIT_OPT_BOOL("require_signature", "false", struct kafka_ctx, require_signature,
                   "Refuse batches that are not signed with a known key"),
    PIPIT_OPT_SIZE("max_batch_bytes", "64MiB", 4096, 1073741824, struct kafka_ctx,
                   max_batch_bytes, "Largest decompressed batch accepted"),
    PIPIT_OPT_INT("dedup_window", "4096", 64, 1048576, struct kafka_ctx, dedup_window,
                  "Sequence numbers remembered per agent above the contiguous floor"),
    PIPIT_OPT_INT("max_agents", "100000", 1, 10000000, struct kafka_ctx, max_agents,
                  "Agents tracked for deduplication (beyond: the store deduplicates alone)"),
    PIPIT_OPT_BOOL("close_when_caught_up", "true", struct kafka_ctx, close_when_caught_up,
                   "Close the open batches as soon as the consumer has caught up, instead of "
                   "holding them for batch.linger_ms"),
    PIPIT_OPT_MAP("rdkafka", struct kafka_ctx, rdkafka,
                  "librdkafka consumer properties, applied last (e.g. security.protocol)"),
    PIPIT_OPT_END
};

static const char *const kafka_default_topics[] = {
    "pipit.metrics", "pipit.logs", "pipit.costs", "pipit.events",
};

static int kafka_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* ---- deduplication ------------------------------------------------------ */

static size_t seen_hash(const uint8_t id[16], size_t slots)
{
    uint64_t h;
    memcpy(&h, id, sizeof h);
    return (size_t)(h ^ (h >> 29)) & (slots - 1);
}

/* The record for agent id, made on first sight; NULL when the table is full. */
static struct kafka_seen *seen_get(struct kafka_ctx *ctx, const uint8_t id[16])
{
    if (!ctx->seen) {
        ctx->nseen_slots = 1024;
        ctx->seen = calloc(ctx->nseen_slots, sizeof *ctx->seen);
        if (!ctx->seen)
            return NULL;
    }
    size_t i = seen_hash(id, ctx->nseen_slots);
    for (size_t n = 0; n < ctx->nseen_slots; n++, i = (i + 1) & (ctx->nseen_slots - 1)) {
        struct kafka_seen *s = &ctx->seen[i];
        if (s->used && memcmp(s->agent, id, 16) == 0)
            return s;
        if (!s->used)
            break;
    }
    if ((int64_t)ctx->nseen >= ctx->max_agents)
        return NULL;
    if ((ctx->nseen + 1) * 4 > ctx->nseen_slots * 3) {      /* grow at 75% */
        size_t slots = ctx->nseen_slots * 2;
        struct kafka_seen *t = calloc(slots, sizeof *t);
        if (!t)
            return NULL;
        for (size_t j = 0; j < ctx->nseen_slots; j++) {
            if (!ctx->seen[j].used)
                continue;
            size_t k = seen_hash(ctx->seen[j].agent, slots);
            while (t[k].used)
                k = (k + 1) & (slots - 1);
            t[k] = ctx->seen[j];
        }
        free(ctx->seen);
        ctx->seen = t;
        ctx->nseen_slots = slots;
        return seen_get(ctx, id);
    }
    struct kafka_seen *s = &ctx->seen[i];
    s->bits = calloc((size_t)(ctx->dedup_window + 63) / 64, sizeof(uint64_t));
    if (!s->bits)
        return NULL;
    memcpy(s->agent, id, 16);
    s->used = true;
    s->floor = 0;
    ctx->nseen++;
    return s;
}

/*
 * True when (agent, seq) was seen before; otherwise remember it. The floor
 * rises over every contiguous run, and the window slides when a number far
 * above it arrives (older numbers below the new floor then count as seen:
 * the store's idempotent keys still stop any real duplicate).
 */
static bool seen_check(struct kafka_ctx *ctx, const uint8_t id[16], uint64_t seq)
{
    struct kafka_seen *s = seen_get(ctx, id);
    uint64_t w = (uint64_t)ctx->dedup_window;

    if (!s)
        return false;
    if (seq <= s->floor)
        return true;
    if (seq > s->floor + w) {           /* slide the window up to seq */
        uint64_t shift = seq - (s->floor + w);
        uint64_t *nb = calloc((size_t)(w + 63) / 64, sizeof(uint64_t));
        if (!nb)
            return false;
        for (uint64_t k = shift; k < w; k++)
            if (s->bits[k / 64] & (1ull << (k % 64)))
                nb[(k - shift) / 64] |= 1ull << ((k - shift) % 64);
        free(s->bits);
        s->bits = nb;
        s->floor += shift;
    }
    uint64_t bit = seq - s->floor - 1;
    if (s->bits[bit / 64] & (1ull << (bit % 64)))
        return true;
    s->bits[bit / 64] |= 1ull << (bit % 64);
    /* raise the floor over the contiguous run */
    uint64_t run = 0;
    while (run < w && (s->bits[run / 64] & (1ull << (run % 64))))
        run++;
    if (run) {
        uint64_t *nb = calloc((size_t)(w + 63) / 64, sizeof(uint64_t));
        if (nb) {
            for (uint64_t k = run; k < w; k++)
                if (s->bits[k / 64] & (1ull << (k % 64)))
                    nb[(k - run) / 64] |= 1ull << ((k - run) % 64);
            free(s->bits);
            s->bits = nb;
            s->floor += run;
        }
    }
    return false;
}

/* ---- keys ---------------------------------------------------------------- */

/* The HMAC key configured for agent (its UUID text), or "*", or NULL. */
static const char *key_for(const struct kafka_ctx *ctx, const char *agent)
{
    const char *star = NULL;
    for (size_t i = 0; i < ctx->keys.count; i++) {
        if (strcmp(ctx->keys.keys[i], agent) == 0)
            return ctx->keys.values[i];
        if (strcmp(ctx->keys.keys[i], "*") == 0)
            star = ctx->keys.values[i];
    }
    return star;
}

/* ---- offsets ------------------------------------------------------------- */

static void msg_free(struct kafka_msg *m)
{
    free(m->topic);
    free(m->dlq_reason);
    free(m->dlq_error);
    free(m->dlq_value);
    free(m->dlq_key);
    free(m);
}

/*
 * Commit the offsets of the messages at the head of the list that are
 * complete (records durable, dead-letter copy delivered). The head blocks
 * the rest, so an offset is never committed past a message still at risk.
 */
static void commit_ready(pipit_instance *ins, struct kafka_ctx *ctx)
{
    rd_kafka_topic_partition_list_t *list = NULL;

    while (ctx->head && ctx->head->durable && !ctx->head->dlq_pending) {
        struct kafka_msg *m = ctx->head;
        ctx->head = m->next;
        if (!ctx->head)
            ctx->tail = &ctx->head;
        if (!list)
            list = rd_kafka_topic_partition_list_new(8);
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, m->topic, m->partition);
        if (!tp)
            tp = rd_kafka_topic_partition_list_add(list, m->topic, m->partition);
        if (m->offset + 1 > tp->offset)
            tp->offset = m->offset + 1;  /* the next message to read */
        msg_free(m);
    }
    if (!list)
        return;
    rd_kafka_resp_err_t err = rd_kafka_commit(ctx->rk, list, 1);
    if (err) {
        ctx->commit_errors++;
        api->log(ins, PIPIT_LOG_WARN, "offset commit failed: %s (messages will be "
                 "read again after a rebalance or restart; the store ignores them)",
                 rd_kafka_err2str(err));
    } else {
        ctx->commits++;
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* The host made everything up to token durable. */
static void kafka_ack(pipit_instance *ins, void *data, uint64_t token)
{
    struct kafka_ctx *ctx = data;
    for (struct kafka_msg *m = ctx->head; m && m->token <= token; m = m->next)
        m->durable = true;
    commit_ready(ins, ctx);
}

/* ---- dead letters -------------------------------------------------------- */

static int dlq_produce(pipit_instance *ins, struct kafka_ctx *ctx, struct kafka_msg *m)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    char source[512];

    snprintf(source, sizeof source, "%s/%" PRId32 "/%" PRId64, m->topic, m->partition,
             m->offset);
    rd_kafka_header_add(hdrs, "pipit-reason", -1, m->dlq_reason, -1);
    rd_kafka_header_add(hdrs, "pipit-error", -1, m->dlq_error, -1);
    rd_kafka_header_add(hdrs, "pipit-source", -1, source, -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        ctx->dlq, RD_KAFKA_V_TOPIC(ctx->deadletter_topic),
        RD_KAFKA_V_VALUE(m->dlq_value, m->dlq_len),
        RD_KAFKA_V_KEY(m->dlq_key, m->dlq_key ? strlen(m->dlq_key) : 0),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(m), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(hdrs);
        api->log(ins, PIPIT_LOG_WARN, "cannot queue a dead letter: %s; will retry",
                 rd_kafka_err2str(err));
        m->dlq_failed = true;
        return PIPIT_EAGAIN;
    }
    m->dlq_failed = false;
    return PIPIT_OK;
}

/* Delivery report of a dead letter (on the loop, from rd_kafka_poll). */
static void dlq_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    pipit_instance *ins = opaque;       /* rd_kafka_conf_set_opaque() */
    struct kafka_msg *m = msg->_private;  /* RD_KAFKA_V_OPAQUE() */
    if (msg->err) {
        api->log(ins, PIPIT_LOG_WARN, "dead letter for %s/%" PRId32 "/%" PRId64
                 " not delivered: %s; will retry", m->topic, m->partition, m->offset,
                 rd_kafka_err2str(msg->err));
        m->dlq_failed = true;
        return;
    }
    m->dlq_pending = false;
}

/* ---- records -------------------------------------------------------------- */

/* Emit a relayed record for the instance arg; a record the host refuses
 * counts as not parsed. */
static int kafka_relay_emit(void *arg, const struct pipit_record *rec)
{
    int r = api->emit(arg, rec);
    if (r == PIPIT_EINVAL)
        r = PIPIT_EPARSE;               /* the host logged why */
    return r;
}

static void kafka_resume(pipit_instance *ins, void *data);

/*
 * Emit the counter kafka.dead_letters{reason} for every reason whose count
 * changed since it was last emitted, with the cumulative count. A reason
 * whose record the pipeline refuses (full) stays pending and is emitted at
 * the next loop turn, so no count is lost.
 */
static void emit_dead_letter_counts(pipit_instance *ins, struct kafka_ctx *ctx)
{
    for (int r = 0; r < WIRE_REASON_MAX; r++) {
        if (!ctx->dlq_count_pending[r])
            continue;
        struct pipit_label label = { "reason", wire_reason_name((enum wire_reason)r) };
        int e = api->emit_metric(ins, PIPIT_COUNTER, "kafka.dead_letters",
                                 (double)ctx->dlq_by_reason[r], &label, 1);
        if (e == PIPIT_EFULL) {
            api->timer_start(ins, KAFKA_STALL_RETRY_MS, 0, kafka_resume);
            continue;
        }
        if (e != PIPIT_OK)
            api->log(ins, PIPIT_LOG_WARN, "cannot emit kafka.dead_letters{reason=%s}: %s",
                     label.value, api->strerror(e));
        ctx->dlq_count_pending[r] = false;
    }
}

/* ---- consuming ------------------------------------------------------------ */

/* Queue a message's dead-letter copy; it must be delivered before its offset
 * is committed. */
static void send_dead_letter(pipit_instance *ins, struct kafka_ctx *ctx,
                             struct kafka_msg *m, const rd_kafka_message_t *msg,
                             enum wire_reason reason, const char *why)
{
    ctx->dlq_sent++;
    ctx->dlq_by_reason[reason]++;
    ctx->dlq_count_pending[reason] = true;
    emit_dead_letter_counts(ins, ctx);
    m->dlq_pending = true;
    m->dlq_reason = strdup(wire_reason_name(reason));
    m->dlq_error = strdup(why);
    m->dlq_value = malloc(msg->len ? msg->len : 1);
    if (msg->len && m->dlq_value)
        memcpy(m->dlq_value, msg->payload, msg->len);
    m->dlq_len = msg->len;
    if (msg->key_len) {
        m->dlq_key = calloc(1, msg->key_len + 1);
        if (m->dlq_key)
            memcpy(m->dlq_key, msg->key, msg->key_len);
    }
    if (!m->dlq_reason || !m->dlq_error || !m->dlq_value) {
        api->log(ins, PIPIT_LOG_ERROR, "out of memory keeping a dead letter");
        m->dlq_failed = true;
        return;
    }
    api->log(ins, PIPIT_LOG_WARN, "message %s/%" PRId32 "/%" PRId64 " refused (%s): %s; "
             "sent to %s", m->topic, m->partition, m->offset, wire_reason_name(reason),
             why, ctx->deadletter_topic);
    dlq_produce(ins, ctx, m);
}

/*
 * Handle one consumed message from record `from` on: verify and decode it,
 * relay its records unless the batch was seen before, and mark it. Returns
 * PIPIT_EFULL when the pipeline refused a record (the caller keeps the
 * message and retries from ctx->stalled_index), PIPIT_OK otherwise.
 */
static int handle_message(pipit_instance *ins, struct kafka_ctx *ctx,
                          const rd_kafka_message_t *msg, uint32_t from)
{
    struct wire_header h;
    char err[512], agent[37];
    enum wire_reason reason;

    if (from == 0)
        ctx->messages++;
    reason = wire_verify(msg->payload, msg->len, &h, err, sizeof err);
    const char *key = NULL;
    if (reason == WIRE_OK) {
        wire_uuid_format(h.agent_id, agent);
        key = key_for(ctx, agent);
        reason = wire_decode(msg->payload, msg->len, key, key ? strlen(key) : 0,
                             ctx->require_signature, (size_t)ctx->max_batch_bytes, &h,
                             &ctx->payload, err, sizeof err);
    }

    struct kafka_msg *m = NULL;
    if (from == 0) {
        m = calloc(1, sizeof *m);
        if (!m || !(m->topic = strdup(rd_kafka_topic_name(msg->rkt)))) {
            free(m);
            api->log(ins, PIPIT_LOG_ERROR, "out of memory");
            return PIPIT_EFULL;         /* try again shortly */
        }
        m->partition = msg->partition;
        m->offset = msg->offset;
        m->token = ++ctx->next_token;
        *ctx->tail = m;
        ctx->tail = &m->next;
    } else {
        for (m = ctx->head; m && m->next; m = m->next)
            ;                           /* a stalled message is the newest */
    }

    if (reason != WIRE_OK) {
        send_dead_letter(ins, ctx, m, msg, reason, err);
        api->mark(ins, m->token);
        return PIPIT_OK;
    }
    if (from == 0 && seen_check(ctx, h.agent_id, h.seq)) {
        ctx->duplicates++;
        api->mark(ins, m->token);
        return PIPIT_OK;
    }
    if (from == 0)
        ctx->batches++;

    const char *p = ctx->payload.data, *end = p + ctx->payload.len;
    uint32_t index = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (index >= from) {
            int r = relay_parse(p, n, h.kind, agent, h.seq, index, kafka_relay_emit, ins);
            if (r == PIPIT_EFULL) {
                ctx->stalled_index = index;
                return PIPIT_EFULL;
            }
            if (r == PIPIT_OK) {
                ctx->records++;
                ctx->emitted = true;
            }
            else {
                ctx->invalid_records++;
                api->log(ins, PIPIT_LOG_WARN, "record %u of batch %" PRIu64 " from "
                         "agent %s is not a valid %s record; skipped (counted)",
                         index, h.seq, agent, wire_reason_name(WIRE_OK));
            }
        }
        index++;
        p += n + 1;
    }
    api->mark(ins, m->token);
    return PIPIT_OK;
}

/* The consumer has caught up with its partitions (see kafka_consume). */
static void caught_up(pipit_instance *ins, struct kafka_ctx *ctx)
{
    if (!ctx->emitted || !ctx->close_when_caught_up || !PIPIT_API_HAS(api, caught_up))
        return;
    ctx->emitted = false;
    int e = api->caught_up(ins);
    if (e != PIPIT_OK)
        api->log(ins, PIPIT_LOG_DEBUG, "cannot close the open batches: %s", api->strerror(e));
}

/*
 * Serve the consumer: up to KAFKA_POLL_BUDGET messages per turn, then yield
 * to the loop and continue from a zero timer, until the queue is empty (the
 * IO event fires only when an empty queue gets an element, so it must be
 * drained). A stalled message (pipeline full) is retried first. Once the
 * queue is empty after records were emitted, the consumer has caught up: no
 * more is coming to fill the open batches, so they close now
 * (close_when_caught_up) rather than after batch.linger_ms.
 */
static void kafka_consume(pipit_instance *ins, struct kafka_ctx *ctx)
{
    if (ctx->stalled) {
        if (handle_message(ins, ctx, ctx->stalled, ctx->stalled_index) == PIPIT_EFULL)
            goto stall;
        rd_kafka_message_destroy(ctx->stalled);
        ctx->stalled = NULL;
    }
    for (int i = 0; i < KAFKA_POLL_BUDGET; i++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(ctx->rk, 0);
        if (!msg) {
            caught_up(ins, ctx);
            return;
        }
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                api->log(ins, PIPIT_LOG_WARN, "consumer: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (handle_message(ins, ctx, msg, 0) == PIPIT_EFULL) {
            ctx->stalled = msg;
            goto stall;
        }
        rd_kafka_message_destroy(msg);
    }
    api->timer_start(ins, 0, 0, kafka_resume);  /* more may be queued */
    return;
stall:
    api->timer_start(ins, KAFKA_STALL_RETRY_MS, 0, kafka_resume);
}

static void kafka_resume(pipit_instance *ins, void *data)
{
    struct kafka_ctx *ctx = data;
    rd_kafka_poll(ctx->dlq, 0);
    for (struct kafka_msg *m = ctx->head; m; m = m->next)
        if (m->dlq_pending && m->dlq_failed)
            dlq_produce(ins, ctx, m);
    emit_dead_letter_counts(ins, ctx);
    kafka_consume(ins, ctx);
    commit_ready(ins, ctx);
}

static void drain_pipe(int fd)
{
    char b[64];
    while (read(fd, b, sizeof b) > 0)
        ;
}

static void kafka_consumer_ready(pipit_instance *ins, void *data, int fd, int events)
{
    struct kafka_ctx *ctx = data;
    drain_pipe(fd);
    if (!ctx->stalled)
        kafka_consume(ins, ctx);
}

static void kafka_producer_ready(pipit_instance *ins, void *data, int fd, int events)
{
    struct kafka_ctx *ctx = data;
    drain_pipe(fd);
    rd_kafka_poll(ctx->dlq, 0);         /* delivery reports of dead letters */
    for (struct kafka_msg *m = ctx->head; m; m = m->next)
        if (m->dlq_pending && m->dlq_failed)
            dlq_produce(ins, ctx, m);
    commit_ready(ins, ctx);
}

/* ---- setup ----------------------------------------------------------------- */

static void kafka_logger(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    pipit_instance *ins = rd_kafka_opaque(rk);
    int lv = level <= 3 ? PIPIT_LOG_ERROR : level <= 4 ? PIPIT_LOG_WARN
           : level <= 6 ? PIPIT_LOG_INFO : PIPIT_LOG_DEBUG;
    api->log(ins, lv, "librdkafka %s: %s", fac, buf);
}

/* Set one property; the value is never logged (it may be a secret). */
static int set_prop(pipit_instance *ins, rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, k, v, err, sizeof err);
    if (r != RD_KAFKA_CONF_OK) {
        /* librdkafka's message quotes the value, which may be a secret */
        api->log(ins, PIPIT_LOG_ERROR, "librdkafka property \"%s\": %s", k,
                 r == RD_KAFKA_CONF_UNKNOWN ? "unknown property"
                                            : "invalid value (not shown)");
        return PIPIT_EINVAL;
    }
    return PIPIT_OK;
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return PIPIT_EIO;
    return PIPIT_OK;
}

/*
 * Common properties of both clients, then the user's rdkafka map. A user
 * property that would break exactly-once handling is refused.
 */
static rd_kafka_conf_t *make_conf(pipit_instance *ins, struct kafka_ctx *ctx, bool consumer)
{
    static const char *const fixed[] = {
        "enable.auto.commit", "enable.auto.offset.store", "group.id",
        "enable.idempotence", "acks", NULL,
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client[300];

    snprintf(client, sizeof client, "pipit-%s", api->host_name(ins));
    if (set_prop(ins, conf, "bootstrap.servers", ctx->brokers) ||
        set_prop(ins, conf, "client.id", client))
        goto fail;
    if (consumer) {
        if (set_prop(ins, conf, "group.id", ctx->group_id) ||
            set_prop(ins, conf, "enable.auto.commit", "false") ||
            set_prop(ins, conf, "enable.auto.offset.store", "false") ||
            set_prop(ins, conf, "auto.offset.reset", "earliest") ||
            set_prop(ins, conf, "enable.partition.eof", "false"))
            goto fail;
    } else {
        if (set_prop(ins, conf, "enable.idempotence", "true") ||
            set_prop(ins, conf, "acks", "all"))
            goto fail;
        rd_kafka_conf_set_dr_msg_cb(conf, dlq_delivered);
    }
    for (size_t i = 0; i < ctx->rdkafka.count; i++) {
        for (int f = 0; fixed[f]; f++)
            if (strcmp(ctx->rdkafka.keys[i], fixed[f]) == 0) {
                api->log(ins, PIPIT_LOG_ERROR, "rdkafka.%s is set by pipit for "
                         "exactly-once delivery and cannot be overridden",
                         ctx->rdkafka.keys[i]);
                goto fail;
            }
        if (set_prop(ins, conf, ctx->rdkafka.keys[i], ctx->rdkafka.values[i]))
            goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_logger);
    rd_kafka_conf_set_opaque(conf, ins);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void kafka_fini(pipit_instance *ins, void *data);

static int kafka_init(pipit_instance *ins, void *data)
{
    struct kafka_ctx *ctx = data;
    char err[512];
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *subs = NULL;

    ctx->pipe_c[0] = ctx->pipe_c[1] = ctx->pipe_p[0] = ctx->pipe_p[1] = -1;
    ctx->tail = &ctx->head;
    for (size_t i = 0; i < ctx->keys.count; i++)
        if (strcmp(ctx->keys.keys[i], "*") != 0 && strlen(ctx->keys.keys[i]) != 36) {
            api->log(ins, PIPIT_LOG_ERROR, "keys: \"%s\" is not an agent id (UUID) or \"*\"",
                     ctx->keys.keys[i]);
            return PIPIT_EINVAL;
        }
    if (ctx->require_signature && ctx->keys.count == 0) {
        api->log(ins, PIPIT_LOG_ERROR, "require_signature is set but no keys are configured");
        return PIPIT_EINVAL;
    }

    if (!(conf = make_conf(ins, ctx, false)))
        return PIPIT_EINVAL;
    ctx->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!ctx->dlq) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot create the dead-letter producer: %s", err);
        rd_kafka_conf_destroy(conf);
        return PIPIT_EINVAL;
    }
    if (!(conf = make_conf(ins, ctx, true)))
        goto fail;
    ctx->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!ctx->rk) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot create the consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(ctx->rk);
    ctx->queue = rd_kafka_queue_get_consumer(ctx->rk);
    if (make_pipe(ctx->pipe_c) || make_pipe(ctx->pipe_p))
        goto fail;
    rd_kafka_queue_io_event_enable(ctx->queue, ctx->pipe_c[1], "1", 1);
    rd_kafka_queue_t *pq = rd_kafka_queue_get_main(ctx->dlq);
    rd_kafka_queue_io_event_enable(pq, ctx->pipe_p[1], "1", 1);
    rd_kafka_queue_destroy(pq);
    if (api->watch_fd(ins, ctx->pipe_c[0], PIPIT_FD_READ, kafka_consumer_ready) ||
        api->watch_fd(ins, ctx->pipe_p[0], PIPIT_FD_READ, kafka_producer_ready))
        goto fail;

    subs = rd_kafka_topic_partition_list_new(4);
    if (ctx->topics.count)
        for (size_t i = 0; i < ctx->topics.count; i++)
            rd_kafka_topic_partition_list_add(subs, ctx->topics.items[i], RD_KAFKA_PARTITION_UA);
    else
        for (size_t i = 0; i < 4; i++)
            rd_kafka_topic_partition_list_add(subs, kafka_default_topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(ctx->rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot subscribe: %s", rd_kafka_err2str(e));
        goto fail;
    }
    api->log(ins, PIPIT_LOG_INFO, "consuming from %s as group %s", ctx->brokers,
             ctx->group_id);
    api->timer_start(ins, 0, 0, kafka_resume);  /* anything queued already */
    return PIPIT_OK;
fail:
    kafka_fini(ins, ctx);
    return PIPIT_EIO;
}

/*
 * Stop: commit what is durable, close the consumer (leaving the group
 * cleanly), flush dead letters for a bounded time. Offsets of messages
 * whose records are not durable stay uncommitted: they are read again.
 */
static void kafka_fini(pipit_instance *ins, void *data)
{
    struct kafka_ctx *ctx = data;

    if (ctx->rk) {
        if (ctx->dlq)
            rd_kafka_flush(ctx->dlq, 5000);
        rd_kafka_poll(ctx->dlq, 0);
        commit_ready(ins, ctx);
        if (ctx->queue) {
            rd_kafka_queue_io_event_enable(ctx->queue, -1, NULL, 0);
            rd_kafka_queue_destroy(ctx->queue);
        }
        rd_kafka_consumer_close(ctx->rk);
        rd_kafka_destroy(ctx->rk);
        ctx->rk = NULL;
    }
    if (ctx->dlq) {
        rd_kafka_destroy(ctx->dlq);
        ctx->dlq = NULL;
    }
    if (ctx->stalled) {
        rd_kafka_message_destroy(ctx->stalled);
        ctx->stalled = NULL;
    }
    size_t uncommitted = 0;
    while (ctx->head) {
        struct kafka_msg *m = ctx->head;
        ctx->head = m->next;
        uncommitted++;
        msg_free(m);
    }
    for (int i = 0; i < 2; i++) {
        if (ctx->pipe_c[i] >= 0)
            close(ctx->pipe_c[i]);
        if (ctx->pipe_p[i] >= 0)
            close(ctx->pipe_p[i]);
        ctx->pipe_c[i] = ctx->pipe_p[i] = -1;
    }
    for (size_t i = 0; i < ctx->nseen_slots; i++)
        free(ctx->seen[i].bits);
    free(ctx->seen);
    ctx->seen = NULL;
    buf_free(&ctx->payload);
    api->log(ins, PIPIT_LOG_INFO, "totals: messages=%" PRIu64 " batches=%" PRIu64
             " records=%" PRIu64 " duplicates=%" PRIu64 " invalid_records=%" PRIu64
             " deadletters=%" PRIu64 " commits=%" PRIu64 " commit_errors=%" PRIu64
             " uncommitted=%zu", ctx->messages, ctx->batches, ctx->records,
             ctx->duplicates, ctx->invalid_records, ctx->dlq_sent, ctx->commits,
             ctx->commit_errors, uncommitted);
}

PIPIT_PLUGIN_DEFINE(
    .name = "kafka", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Agent batches from Kafka: verified, deduplicated, relayed",
    .ctx_size = sizeof(struct kafka_ctx), .options = kafka_options,
    .load = kafka_load, .init = kafka_init, .fini = kafka_fini, .ack = kafka_ack);
