/* out_kafka: send each batch as one wire message to Kafka with an idempotent librdkafka producer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE                     /* pipe2(), strcasestr() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <pipit/plugin.h>

#define KAFKA_ERRSTR_MAX      1024
#define KAFKA_FINI_FLUSH_MS   3000        /* fini() waits this long for acks */
#define KAFKA_RESTART_MIN_MS  1000        /* after a fatal error: first backoff */
#define KAFKA_RESTART_MAX_MS  60000
#define KAFKA_WIRE_MAGIC      "PPB1"      /* docs/wire-format.md, bytes 0-3 */
#define KAFKA_WIRE_MIN        5           /* magic (4) + format version (1) */

static const struct pipit_api *api;      /* borrowed from the host */

/* One batch handed to librdkafka and not yet reported to the host. */
struct kafka_msg {
    struct kafka_msg *prev, *next;      /* in kafka_ctx.inflight */
    uint64_t id;                        /* batch id for api->flush_done() */
    uint64_t seq;                       /* per-agent sequence, for log lines */
    size_t len;                         /* bytes of the message */
    bool reported;                      /* flush_done() already called */
};

struct kafka_ctx {
    /* options */
    const char *brokers;
    const char *topic_metrics, *topic_logs, *topic_costs, *topic_events;
    const char *client_id;              /* NULL: "pipit-<hostname>" */
    const char *compression;
    int64_t message_timeout_ms;
    int64_t queue_max_messages;
    int64_t queue_max_bytes;
    struct pipit_strmap rdkafka;        /* librdkafka properties, applied last */

    /* state, loop thread only */
    pipit_instance *ins;
    rd_kafka_t *rk;                     /* NULL only when no producer could start */
    rd_kafka_queue_t *mainq;            /* reference to rk's main queue */
    int pipe_fd[2];                     /* librdkafka writes [1] when mainq
                                           gets its first element */
    bool watching;                      /* pipe_fd[0] under api->watch_fd() */
    bool fatal;                         /* producer unusable; restart scheduled */
    bool closing;                       /* fini() runs: report nothing more */
    int64_t restart_ms;                 /* next backoff after a fatal error */
    struct kafka_msg inflight;          /* list head of batches in librdkafka */
    size_t ninflight;
    uint64_t retry_streak;              /* batches retried since the last ack */
    uint64_t delivered, retried, failed;
    char client_id_buf[300];
};

static const struct pipit_option kafka_options[] = {
    PIPIT_OPT_STRING_REQ("brokers", struct kafka_ctx, brokers,
                         "Bootstrap servers, host:port[,host:port...]"),
    PIPIT_OPT_STRING("topic_metrics", "pipit.metrics", struct kafka_ctx, topic_metrics,
                     "Topic of metric batches"),
    PIPIT_OPT_STRING("topic_logs", "pipit.logs", struct kafka_ctx, topic_logs,
                     "Topic of log batches"),
    PIPIT_OPT_STRING("topic_costs", "pipit.costs", struct kafka_ctx, topic_costs,
                     "Topic of cost batches"),
    PIPIT_OPT_STRING("topic_events", "pipit.events", struct kafka_ctx, topic_events,
                     "Topic of event batches"),
    PIPIT_OPT_STRING("client_id", NULL, struct kafka_ctx, client_id,
                     "Kafka client id (default pipit-<hostname>)"),
    PIPIT_OPT_STRING("compression", "none", struct kafka_ctx, compression,
                     "Kafka compression: none, gzip, snappy, lz4 or zstd (batches "
                     "are already compressed by the wire format)"),
    PIPIT_OPT_DURATION("message_timeout", "2m", 1000, 86400000, struct kafka_ctx,
                       message_timeout_ms,
                       "How long librdkafka tries to deliver a batch before handing "
                       "it back to the host to retry"),
    PIPIT_OPT_INT("queue_max_messages", "1000", 1, 10000000, struct kafka_ctx,
                  queue_max_messages,
                  "Batches librdkafka may hold at once; more wait in the spool"),
    PIPIT_OPT_SIZE("queue_max_bytes", "1MiB", 1048576, 2147483648LL, struct kafka_ctx,
                   queue_max_bytes,
                   "Bytes librdkafka may hold at once; more wait in the spool"),
    PIPIT_OPT_MAP("rdkafka", struct kafka_ctx, rdkafka,
                  "librdkafka producer properties (security.protocol, ssl.*, "
                  "sasl.*, ...), applied last; values are never logged"),
    PIPIT_OPT_END
};

/* Properties pipit sets itself, with the only values a user may repeat. */
static const struct {
    const char *key;
    const char *allowed[3];
    const char *why;
} kafka_fixed[] = {
    { "enable.idempotence", { "true", NULL, NULL },
      "pipit always produces with enable.idempotence=true and acks=all "
      "(no loss, no duplicates, per-agent order)" },
    { "acks", { "all", "-1", NULL },
      "pipit always produces with acks=all: a batch is released only when "
      "every in-sync replica has it" },
    { "request.required.acks", { "all", "-1", NULL },
      "pipit always produces with acks=all: a batch is released only when "
      "every in-sync replica has it" },
    { "log.queue", { "true", NULL, NULL },
      "pipit serves librdkafka's log lines on its own loop" },
    { "transactional.id", { NULL, NULL, NULL },
      "transactions are not used: the idempotent producer and the aggregator's "
      "deduplication give exactly-once records" },
};

/* Parts of property names whose values are credentials. */
static const char *const kafka_secret_parts[] = {
    "password", "secret", "token", "oauthbearer.config", "key.pem", "jaas",
    "keystore", NULL
};

static int kafka_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* ---- secrets ------------------------------------------------------------ */

static bool kafka_key_is_secret(const char *key)
{
    for (size_t i = 0; kafka_secret_parts[i]; i++)
        if (strcasestr(key, kafka_secret_parts[i]))
            return true;
    return false;
}

/*
 * Copy text from librdkafka into out (outlen bytes, NUL-terminated) with
 * every value of a secret rdkafka property, and also (when not NULL),
 * replaced by "***". Log lines and error strings of librdkafka may quote
 * property values; this keeps credentials out of pipit's logs.
 */
static const char *kafka_scrub(const struct kafka_ctx *ctx, const char *text,
                               const char *also, char *out, size_t outlen)
{
    size_t o = 0;

    for (const char *p = text; *p && o + 1 < outlen;) {
        size_t hit = 0;
        for (size_t i = 0; i <= ctx->rdkafka.count && !hit; i++) {
            const char *v = i < ctx->rdkafka.count ? ctx->rdkafka.values[i] : also;
            size_t n = v ? strlen(v) : 0;
            if (i < ctx->rdkafka.count && !kafka_key_is_secret(ctx->rdkafka.keys[i]))
                continue;
            if (n > 0 && strncmp(p, v, n) == 0)
                hit = n;
        }
        if (hit) {
            for (const char *r = "***"; *r && o + 1 < outlen; r++)
                out[o++] = *r;
            p += hit;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- librdkafka callbacks (all served by rd_kafka_poll on the loop) ----- */

static void kafka_unlink(struct kafka_ctx *ctx, struct kafka_msg *m)
{
    m->prev->next = m->next;
    m->next->prev = m->prev;
    ctx->ninflight--;
}

/*
 * The host's outcome for a librdkafka error: PIPIT_OK for none, an error
 * for a message Kafka can never take (too large, malformed), PIPIT_RETRY
 * for everything else (timeouts, brokers down, leader changes, missing
 * topics or ACLs that an operator can fix): a batch is never given up on
 * an error that may pass.
 */
static int kafka_status(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return PIPIT_OK;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        return PIPIT_ERANGE;
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return PIPIT_EINVAL;
    default:
        return PIPIT_RETRY;
    }
}

static const char *kafka_persisted(const rd_kafka_message_t *rkm)
{
    switch (rd_kafka_message_status(rkm)) {
    case RD_KAFKA_MSG_STATUS_NOT_PERSISTED:      return "not written";
    case RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED: return "possibly written";
    default:                                     return "written";
    }
}

/*
 * Delivery report of one batch: tell the host (unless it was told already,
 * after a fatal error, or fini() runs), count it, and say when delivery
 * stops and starts again without a line per batch.
 */
static void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct kafka_ctx *ctx = opaque;
    struct kafka_msg *m = rkm->_private;
    int status = kafka_status(rkm->err);

    if (!m)
        return;
    kafka_unlink(ctx, m);
    if (m->reported) {                  /* handed back after a fatal error */
        if (status == PIPIT_OK)
            api->log(ctx->ins, PIPIT_LOG_DEBUG, "batch seq %llu was written after it "
                     "was handed back for retry; the aggregator drops the second copy",
                     (unsigned long long)m->seq);
        free(m);
        return;
    }
    if (status == PIPIT_OK) {
        ctx->delivered++;
        if (ctx->retry_streak && !ctx->closing)
            api->log(ctx->ins, PIPIT_LOG_INFO, "delivering again; %llu batches "
                     "were handed back for retry meanwhile",
                     (unsigned long long)ctx->retry_streak);
        ctx->retry_streak = 0;
        ctx->restart_ms = KAFKA_RESTART_MIN_MS;
    } else if (status == PIPIT_RETRY) {
        ctx->retried++;
        if (ctx->retry_streak++ == 0 && !ctx->closing)
            api->log(ctx->ins, PIPIT_LOG_WARN, "batch seq %llu to %s not delivered: "
                     "%s (%s); the host retries it, and every batch until "
                     "delivery resumes", (unsigned long long)m->seq,
                     rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err),
                     kafka_persisted(rkm));
    } else {
        ctx->failed++;
        api->log(ctx->ins, PIPIT_LOG_ERROR, "batch seq %llu (%zu bytes) to %s refused "
                 "by Kafka: %s; it cannot be sent and is given up",
                 (unsigned long long)m->seq, m->len, rd_kafka_topic_name(rkm->rkt),
                 rd_kafka_err2str(rkm->err));
    }
    if (!ctx->closing)
        api->flush_done(ctx->ins, m->id, status);
    free(m);
}

/* Hand every batch librdkafka still holds back to the host for a retry;
 * their delivery reports, if any still come, report nothing more. */
static void kafka_fail_inflight(struct kafka_ctx *ctx)
{
    for (struct kafka_msg *m = ctx->inflight.next; m != &ctx->inflight; m = m->next) {
        if (m->reported)
            continue;
        m->reported = true;
        ctx->retried++;
        ctx->retry_streak++;
        if (!ctx->closing)
            api->flush_done(ctx->ins, m->id, PIPIT_RETRY);
    }
}

static void kafka_restart_fired(pipit_instance *ins, void *data);

/*
 * A fatal error leaves the producer unusable (e.g. the idempotent
 * producer lost its sequence): log it, hand every batch in flight back
 * for a retry and re-create the producer on a timer, with backoff.
 */
static void kafka_fatal(struct kafka_ctx *ctx)
{
    char reason[KAFKA_ERRSTR_MAX], clean[KAFKA_ERRSTR_MAX];
    rd_kafka_resp_err_t err;

    if (ctx->fatal || ctx->closing)
        return;
    ctx->fatal = true;
    err = rd_kafka_fatal_error(ctx->rk, reason, sizeof(reason));
    api->log(ctx->ins, PIPIT_LOG_ERROR, "fatal producer error %s: %s; %zu batches in "
             "flight are handed back for retry, the producer is re-created in %lld ms",
             rd_kafka_err2name(err), kafka_scrub(ctx, reason, NULL, clean, sizeof(clean)),
             ctx->ninflight, (long long)ctx->restart_ms);
    kafka_fail_inflight(ctx);
    if (api->timer_start(ctx->ins, (uint64_t)ctx->restart_ms, 0,
                         kafka_restart_fired) != PIPIT_OK)
        api->log(ctx->ins, PIPIT_LOG_ERROR, "cannot schedule the producer restart; "
                 "this output stays down");
    ctx->restart_ms = ctx->restart_ms * 2 > KAFKA_RESTART_MAX_MS
                      ? KAFKA_RESTART_MAX_MS : ctx->restart_ms * 2;
}

/* Errors of the client as a whole (not of one message). */
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_ctx *ctx = opaque;
    char clean[KAFKA_ERRSTR_MAX];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        kafka_fatal(ctx);
        return;
    }
    kafka_scrub(ctx, reason, NULL, clean, sizeof(clean));
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        api->log(ctx->ins, PIPIT_LOG_WARN, "all brokers are down (%s); batches "
                 "wait in librdkafka and the spool", clean);
    else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL)
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s: %s", rd_kafka_err2name(err), clean);
    else
        api->log(ctx->ins, PIPIT_LOG_DEBUG, "%s: %s", rd_kafka_err2name(err), clean);
}

/* librdkafka's own log lines (syslog levels), on the loop through the main
 * queue (log.queue). Connection failures are warnings for an agent. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    struct kafka_ctx *ctx = rd_kafka_opaque(rk);
    char clean[KAFKA_ERRSTR_MAX];
    int lv = level <= 2 ? PIPIT_LOG_ERROR : level <= 4 ? PIPIT_LOG_WARN
           : level <= 6 ? PIPIT_LOG_INFO : PIPIT_LOG_DEBUG;

    if (!ctx || !api->log_enabled(ctx->ins, lv))
        return;
    api->log(ctx->ins, lv, "librdkafka %s: %s", fac,
             kafka_scrub(ctx, buf, NULL, clean, sizeof(clean)));
}

/* The main queue got its first element: serve callbacks on the loop. */
static void kafka_readable(pipit_instance *ins, void *data, int fd, int events)
{
    struct kafka_ctx *ctx = data;
    char drain[256];

    while (read(fd, drain, sizeof(drain)) > 0)
        ;                               /* non-blocking: ends with EAGAIN */
    if (ctx->rk)
        rd_kafka_poll(ctx->rk, 0);
}

/* ---- the producer's life ------------------------------------------------ */

/* Set one property; on refusal write "WHAT: reason" to err, where what
 * names the setting for the operator (the value is scrubbed from it). */
static int kafka_set(const struct kafka_ctx *ctx, rd_kafka_conf_t *conf,
                     const char *what, const char *key, const char *value,
                     char *err, size_t errlen)
{
    char why[KAFKA_ERRSTR_MAX / 2], clean[KAFKA_ERRSTR_MAX / 2];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, key, value, why, sizeof(why));

    if (r == RD_KAFKA_CONF_OK)
        return PIPIT_OK;
    kafka_scrub(ctx, why, value, clean, sizeof(clean));
    snprintf(err, errlen, "%s: %s (%s)", what,
             r == RD_KAFKA_CONF_UNKNOWN ? "not a librdkafka property"
                                        : "librdkafka refused the value", clean);
    return PIPIT_ECONFIG;
}

/* Refuse an rdkafka property that would undo what pipit relies on. */
static int kafka_check_fixed(const char *key, const char *value, char *err,
                             size_t errlen)
{
    const char *k = strncmp(key, "topic.", 6) == 0 ? key + 6 : key;

    for (size_t i = 0; i < sizeof(kafka_fixed) / sizeof(kafka_fixed[0]); i++) {
        if (strcmp(k, kafka_fixed[i].key) != 0)
            continue;
        for (size_t a = 0; a < 3 && kafka_fixed[i].allowed[a]; a++)
            if (strcasecmp(value, kafka_fixed[i].allowed[a]) == 0)
                return PIPIT_OK;
        snprintf(err, errlen, "rdkafka.%s cannot be changed: %s; remove the key",
                 key, kafka_fixed[i].why);
        return PIPIT_ECONFIG;
    }
    return PIPIT_OK;
}

/*
 * Build the configuration of a producer: the options, the fixed delivery
 * properties, then the user's rdkafka map. Returns the conf (owned by the
 * caller, consumed by rd_kafka_new) or NULL with the reason in err.
 */
static rd_kafka_conf_t *kafka_conf_build(struct kafka_ctx *ctx, char *err, size_t errlen)
{
    char num[32], kb[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    snprintf(num, sizeof(num), "%lld", (long long)ctx->message_timeout_ms);
    snprintf(kb, sizeof(kb), "%lld", (long long)(ctx->queue_max_bytes / 1024));
    const struct { const char *key, *value, *option; } props[] = {
        { "bootstrap.servers", ctx->brokers, "brokers" },
        { "client.id", ctx->client_id, "client_id" },
        { "compression.codec", ctx->compression, "compression" },
        { "message.timeout.ms", num, "message_timeout" },
        { "queue.buffering.max.kbytes", kb, "queue_max_bytes" },
        { "enable.idempotence", "true", NULL },
        { "acks", "all", NULL },
        { "log.queue", "true", NULL },
    };
    char what[300];

    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        /* Name the option the operator wrote, not the property behind it. */
        snprintf(what, sizeof(what), "%s%s", props[i].option ? "option " : "",
                 props[i].option ? props[i].option : props[i].key);
        if (kafka_set(ctx, conf, what, props[i].key, props[i].value, err, errlen))
            goto fail;
    }
    snprintf(num, sizeof(num), "%lld", (long long)ctx->queue_max_messages);
    if (kafka_set(ctx, conf, "option queue_max_messages", "queue.buffering.max.messages",
                  num, err, errlen))
        goto fail;
    for (size_t i = 0; i < ctx->rdkafka.count; i++) {
        const char *k = ctx->rdkafka.keys[i], *v = ctx->rdkafka.values[i];
        snprintf(what, sizeof(what), "rdkafka.%.256s", k);
        if (kafka_check_fixed(k, v, err, errlen) != PIPIT_OK ||
            kafka_set(ctx, conf, what, k, v, err, errlen) != PIPIT_OK)
            goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_opaque(conf, ctx);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/*
 * Create the producer and hook its main queue to the loop: librdkafka
 * writes a byte to the pipe when the queue gets its first element, the
 * read end is watched, and callbacks are served there. Returns PIPIT_OK,
 * or an error with the reason logged and nothing left behind.
 */
static int kafka_start(struct kafka_ctx *ctx)
{
    char err[KAFKA_ERRSTR_MAX], clean[KAFKA_ERRSTR_MAX];
    rd_kafka_conf_t *conf = kafka_conf_build(ctx, err, sizeof(err));
    int rc = PIPIT_ECONFIG;

    if (!conf) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s", err);
        return PIPIT_ECONFIG;
    }
    ctx->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!ctx->rk) {
        rd_kafka_conf_destroy(conf);
        api->log(ctx->ins, PIPIT_LOG_ERROR, "cannot create the producer: %s",
                 kafka_scrub(ctx, err, NULL, clean, sizeof(clean)));
        return PIPIT_ECONFIG;
    }
    rc = PIPIT_EIO;
    if (pipe2(ctx->pipe_fd, O_NONBLOCK | O_CLOEXEC) != 0) {
        ctx->pipe_fd[0] = ctx->pipe_fd[1] = -1;
        api->log(ctx->ins, PIPIT_LOG_ERROR, "pipe: %s", strerror(errno));
        goto fail;
    }
    ctx->mainq = rd_kafka_queue_get_main(ctx->rk);
    rd_kafka_set_log_queue(ctx->rk, NULL);          /* logs to the main queue */
    if ((rc = api->watch_fd(ctx->ins, ctx->pipe_fd[0], PIPIT_FD_READ,
                            kafka_readable)) != PIPIT_OK) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "cannot watch the producer's queue: %s",
                 api->strerror(rc));
        goto fail;
    }
    ctx->watching = true;
    rd_kafka_queue_io_event_enable(ctx->mainq, ctx->pipe_fd[1], "1", 1);
    rd_kafka_poll(ctx->rk, 0);          /* what came before the event was on */
    ctx->fatal = false;
    return PIPIT_OK;
fail:
    if (ctx->mainq)
        rd_kafka_queue_destroy(ctx->mainq);
    ctx->mainq = NULL;
    rd_kafka_destroy(ctx->rk);
    ctx->rk = NULL;
    for (int i = 0; i < 2; i++)
        if (ctx->pipe_fd[i] >= 0)
            close(ctx->pipe_fd[i]);
    ctx->pipe_fd[0] = ctx->pipe_fd[1] = -1;
    return rc;
}

/*
 * Take the producer down: stop watching, purge what it holds (reports of
 * purged batches are served first), destroy it, and hand every batch still
 * unreported back to the host for a retry (nothing when closing).
 */
static void kafka_stop(struct kafka_ctx *ctx)
{
    if (!ctx->rk)
        return;
    if (ctx->watching)
        api->unwatch_fd(ctx->ins, ctx->pipe_fd[0]);  /* may have ended already */
    ctx->watching = false;
    rd_kafka_queue_io_event_enable(ctx->mainq, -1, NULL, 0);
    rd_kafka_purge(ctx->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(ctx->rk, 0);
    kafka_fail_inflight(ctx);
    rd_kafka_queue_destroy(ctx->mainq);
    ctx->mainq = NULL;
    rd_kafka_destroy(ctx->rk);
    ctx->rk = NULL;
    while (ctx->inflight.next != &ctx->inflight) {
        struct kafka_msg *m = ctx->inflight.next;
        kafka_unlink(ctx, m);
        free(m);
    }
    close(ctx->pipe_fd[0]);
    close(ctx->pipe_fd[1]);
    ctx->pipe_fd[0] = ctx->pipe_fd[1] = -1;
}

/* Timer after a fatal error: a fresh producer (with a new producer id). */
static void kafka_restart_fired(pipit_instance *ins, void *data)
{
    struct kafka_ctx *ctx = data;

    kafka_stop(ctx);
    if (kafka_start(ctx) == PIPIT_OK) {
        api->log(ins, PIPIT_LOG_INFO, "producer re-created after a fatal error");
        return;
    }
    ctx->fatal = true;
    api->log(ins, PIPIT_LOG_ERROR, "cannot re-create the producer; next try in %lld ms",
             (long long)ctx->restart_ms);
    api->timer_start(ins, (uint64_t)ctx->restart_ms, 0, kafka_restart_fired);
    ctx->restart_ms = ctx->restart_ms * 2 > KAFKA_RESTART_MAX_MS
                      ? KAFKA_RESTART_MAX_MS : ctx->restart_ms * 2;
}

static int kafka_init(pipit_instance *ins, void *data)
{
    struct kafka_ctx *ctx = data;

    ctx->ins = ins;
    ctx->pipe_fd[0] = ctx->pipe_fd[1] = -1;
    ctx->inflight.next = ctx->inflight.prev = &ctx->inflight;
    ctx->restart_ms = KAFKA_RESTART_MIN_MS;
    if (!ctx->client_id) {
        const char *host = api->host_name(ins);
        snprintf(ctx->client_id_buf, sizeof(ctx->client_id_buf), "pipit-%s",
                 host && *host ? host : "agent");
        ctx->client_id = ctx->client_id_buf;
    }
    return kafka_start(ctx);
}

/* ---- flush ------------------------------------------------------------- */

static const char *kafka_topic(const struct kafka_ctx *ctx, int kind, const char **name)
{
    switch (kind) {
    case PIPIT_METRIC: *name = "metric"; return ctx->topic_metrics;
    case PIPIT_LOG:    *name = "log";    return ctx->topic_logs;
    case PIPIT_COST:   *name = "cost";   return ctx->topic_costs;
    case PIPIT_EVENT:  *name = "event";  return ctx->topic_events;
    }
    return NULL;
}

/*
 * Hand one batch to librdkafka as one message: the wire encoding as value,
 * the agent id as key (per-agent order within a partition), headers
 * pipit-format (the wire format version) and pipit-kind. librdkafka copies
 * the message. Returns PIPIT_PENDING (the outcome comes from the delivery
 * report), PIPIT_RETRY when the local queue is full or the producer is
 * being re-created, or an error for a batch that can never be sent.
 */
static int kafka_flush(pipit_instance *ins, void *data, const struct pipit_batch *b)
{
    struct kafka_ctx *ctx = data;
    const unsigned char *wire = b->wire;
    const char *kind = NULL, *topic = kafka_topic(ctx, b->kind, &kind);
    char format[4];
    struct kafka_msg *m;
    rd_kafka_resp_err_t err;

    if (!wire || b->wire_len < KAFKA_WIRE_MIN || memcmp(wire, KAFKA_WIRE_MAGIC, 4) != 0 ||
        !topic || !b->agent_id) {
        api->log(ins, PIPIT_LOG_ERROR, "batch seq %llu has no wire encoding or no "
                 "known kind; out_kafka sends wire messages only",
                 (unsigned long long)b->seq);
        return PIPIT_EINVAL;
    }
    if (!ctx->rk || ctx->fatal)
        return PIPIT_RETRY;
    if (!(m = calloc(1, sizeof(*m))))
        return PIPIT_RETRY;
    m->id = b->id;
    m->seq = b->seq;
    m->len = b->wire_len;
    snprintf(format, sizeof(format), "%u", (unsigned)wire[4]);
    err = rd_kafka_producev(ctx->rk,
                            RD_KAFKA_V_TOPIC(topic),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_VALUE((void *)b->wire, b->wire_len),
                            RD_KAFKA_V_KEY(b->agent_id, strlen(b->agent_id)),
                            RD_KAFKA_V_HEADER("pipit-format", format, -1),
                            RD_KAFKA_V_HEADER("pipit-kind", kind, -1),
                            RD_KAFKA_V_OPAQUE(m),
                            RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        m->prev = ctx->inflight.prev;
        m->next = &ctx->inflight;
        m->prev->next = m;
        ctx->inflight.prev = m;
        ctx->ninflight++;
        return PIPIT_PENDING;
    }
    free(m);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        /* Back-pressure: the batch waits in the spool, not in librdkafka. */
        api->log(ins, PIPIT_LOG_DEBUG, "local queue full (%zu batches in flight)",
                 ctx->ninflight);
        return PIPIT_RETRY;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        kafka_fatal(ctx);
        return PIPIT_RETRY;
    }
    if (kafka_status(err) != PIPIT_RETRY) {
        api->log(ins, PIPIT_LOG_ERROR, "batch seq %llu (%zu bytes) cannot be sent to %s: "
                 "%s", (unsigned long long)b->seq, b->wire_len, topic,
                 rd_kafka_err2str(err));
        return kafka_status(err);
    }
    api->log(ins, PIPIT_LOG_WARN, "batch seq %llu not queued for %s: %s; will retry",
             (unsigned long long)b->seq, topic, rd_kafka_err2str(err));
    return PIPIT_RETRY;
}

/*
 * Wait a bounded time for the batches still in librdkafka (normally none:
 * the host drained them), report what was not acknowledged (it stays in
 * the spool and is sent again on the next start), and destroy the producer.
 */
static void kafka_fini(pipit_instance *ins, void *data)
{
    struct kafka_ctx *ctx = data;

    ctx->closing = true;
    if (ctx->rk) {
        if (ctx->watching)
            api->unwatch_fd(ins, ctx->pipe_fd[0]);
        ctx->watching = false;
        rd_kafka_queue_io_event_enable(ctx->mainq, -1, NULL, 0);
        if (ctx->ninflight && !ctx->fatal)
            rd_kafka_flush(ctx->rk, KAFKA_FINI_FLUSH_MS);
        if (ctx->ninflight)
            api->log(ins, PIPIT_LOG_WARN, "%zu batches not acknowledged by Kafka at "
                     "shutdown; they are sent again from the spool", ctx->ninflight);
        kafka_stop(ctx);
    }
    api->log(ins, PIPIT_LOG_INFO, "producer closed: delivered=%llu retried=%llu "
             "failed=%llu", (unsigned long long)ctx->delivered,
             (unsigned long long)ctx->retried, (unsigned long long)ctx->failed);
}

PIPIT_PLUGIN_DEFINE(
    .name = "kafka", .version = "1.0.0", .kinds = PIPIT_OUTPUT,
    .description = "Batches as wire messages to Kafka (idempotent producer, acks=all)",
    .ctx_size = sizeof(struct kafka_ctx), .options = kafka_options,
    .load = kafka_load, .init = kafka_init, .flush = kafka_flush, .fini = kafka_fini,
    .flags = PIPIT_FLUSH_WIRE_ONLY);
