/* command_channel.c: consume the command topic on a thread of its own, verify each command, run its plan, ship the events. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include "command.h"
#include "command_channel.h"
#include "errors.h"
#include "fsutil.h"
#include "log.h"
#include "plan.h"
#include "plan_run.h"
#include "record.h"

#define CHANNEL_POLL_MS 200

/* Records made on the channel's thread, waiting for the loop. */
struct channel_item {
    struct channel_item *next;
    int kind;
    uint32_t count;
    size_t len;
    char lines[];
};

struct command_channel {
    struct command_channel_opts o;
    char *host, *agent_id, *state_dir, *plugin_dir, *topic;
    char **allowed;                     /* NULL-terminated copy of allowed_actions */
    struct pipit_strlist allowed_list;
    struct pipit_strmap labels;         /* copied */
    int64_t skew;                       /* seconds */
    struct command_keyring ring;
    nonce_journal *nonces;
    char *offsets_path;                 /* <state_dir>/commands.offsets */
    int64_t *offsets;                   /* per partition: the next to read, -1 none */
    int nparts;
    rd_kafka_t *rk;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    uv_async_t async;
    pthread_mutex_t mu;
    struct channel_item *head, **tail;
    struct command_channel_stats stats; /* under mu */
};

/* ---- records to the loop ------------------------------------------------- */

static void queue_lines(struct command_channel *c, int kind, const char *lines, size_t len,
                        uint32_t count)
{
    struct channel_item *it = malloc(sizeof *it + len);
    if (!it) {
        log_error("commands", "out of memory: %u event records lost", count);
        return;
    }
    it->next = NULL;
    it->kind = kind;
    it->count = count;
    it->len = len;
    memcpy(it->lines, lines, len);
    pthread_mutex_lock(&c->mu);
    *c->tail = it;
    c->tail = &it->next;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
}

static void drain_queue(struct command_channel *c)
{
    pthread_mutex_lock(&c->mu);
    struct channel_item *it = c->head;
    c->head = NULL;
    c->tail = &c->head;
    pthread_mutex_unlock(&c->mu);
    while (it) {
        struct channel_item *next = it->next;
        if (c->o.deliver(c->o.arg, it->kind, it->lines, it->len, it->count) != PIPIT_OK)
            log_warn("commands", "the pipeline refused %u event records (full or stopping)",
                     it->count);
        free(it);
        it = next;
    }
}

static void on_async(uv_async_t *a)
{
    drain_queue(a->data);
}

static void on_event(void *arg, const struct plan_event *ev)
{
    struct command_channel *c = arg;
    struct buf b = BUF_INIT;

    if (ev->step)
        log_info("commands", "plan %s run %s: %s %s: %s%s%.200s", ev->plan, ev->run,
                 ev->name, ev->step, ev->status, ev->message ? ": " : "",
                 ev->message ? ev->message : "");
    else
        log_info("commands", "plan %s run %s: %s %s", ev->plan, ev->run, ev->name, ev->status);
    if (plan_event_encode(&b, ev, c->host) == PIPIT_OK)
        queue_lines(c, PIPIT_EVENT, b.data, b.len, 1);
    buf_free(&b);
}

static void on_records(void *arg, int kind, const char *lines, size_t len, uint32_t count)
{
    queue_lines(arg, kind, lines, len, count);
}

/* A command.refused event: the reason, the deployment when known. */
static void refused(struct command_channel *c, const char *id, const char *reason,
                    const char *detail)
{
    struct pipit_label l[2] = { { "reason", reason }, { "run", id } };
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_EVENT, .labels = l, .nlabels = id ? 2 : 1,
        .name = "command.refused", .status = "refused", .message = detail,
    };
    struct buf b = BUF_INIT;

    log_warn("commands", "command %s refused: %s: %s", id ? id : "(unknown)", reason, detail);
    if (record_encode_json(&b, &rec, c->host, "commands", record_now_ns()) == PIPIT_OK)
        queue_lines(c, PIPIT_EVENT, b.data, b.len, 1);
    buf_free(&b);
    pthread_mutex_lock(&c->mu);
    c->stats.refused++;
    pthread_mutex_unlock(&c->mu);
}

/* ---- running plans -------------------------------------------------------- */

static struct plan_runner runner(struct command_channel *c, const char *run_id)
{
    return (struct plan_runner){
        .plugin_dir = c->plugin_dir, .state_dir = c->state_dir, .host_name = c->host,
        .agent_id = c->agent_id, .allowed = (const char *const *)c->allowed,
        .event = on_event, .deliver = on_records, .arg = c, .cancel = &c->stop,
        .run_id = run_id,
    };
}

static void count_outcome(struct command_channel *c, enum plan_outcome o)
{
    pthread_mutex_lock(&c->mu);
    if (o == PLAN_OK)
        c->stats.runs_ok++;
    else if (o != PLAN_INTERRUPTED)
        c->stats.runs_failed++;
    pthread_mutex_unlock(&c->mu);
}

/* Runs a previous process left unfinished: finished first, with the plan
 * they started with. */
static void resume_unfinished(struct command_channel *c)
{
    char **names = plan_unfinished(c->state_dir), why[1024];

    for (char **n = names; n && *n && !atomic_load(&c->stop); n++) {
        struct plan_runner r = runner(c, NULL);
        log_info("commands", "resuming the unfinished run of plan %s", *n);
        enum plan_outcome o = plan_resume(&r, *n, why, sizeof why);
        count_outcome(c, o);
        if (o != PLAN_OK)
            log_warn("commands", "plan %s: %s: %s", *n, plan_outcome_name(o), why);
    }
    plan_names_free(names);
}

/* One message of the command topic. */
static void handle(struct command_channel *c, const void *msg, size_t len)
{
    struct command cmd;
    char err[1024];
    const struct command_verify_opts vo = {
        .trusted = &c->ring, .now = (int64_t)time(NULL), .skew = c->skew, .host = c->host,
        .labels = &c->labels, .journal = c->nonces,
    };

    pthread_mutex_lock(&c->mu);
    c->stats.received++;
    pthread_mutex_unlock(&c->mu);
    enum command_reason r = command_verify(msg, len, &vo, &cmd, err, sizeof err);
    if (r == COMMAND_NOT_FOR_THIS_HOST) {
        /* every agent reads every command: one for another host is normal */
        log_debug("commands", "%s", err);
        command_free(&cmd);
        return;
    }
    if (r != COMMAND_OK) {
        refused(c, cmd.id, command_reason_name(r), err);
        command_free(&cmd);
        return;
    }
    /* The plan: parsed with the command's variables, its actions allowed. */
    char **ov = calloc(cmd.vars.count + 1, sizeof *ov);
    size_t nov = 0;
    for (size_t i = 0; ov && i < cmd.vars.count; i++)
        if (asprintf(&ov[nov], "%s=%s", cmd.vars.keys[i], cmd.vars.values[i]) >= 0)
            nov++;
    struct diag d;
    char name[COMMAND_ID_MAX + 16];
    diag_init(&d);
    snprintf(name, sizeof name, "command %s", cmd.id);
    struct plan *p = ov ? plan_load(cmd.plan, strlen(cmd.plan), name, ov, nov, &d) : NULL;
    for (size_t i = 0; i < nov; i++)
        free(ov[i]);
    free(ov);
    if (!p) {
        const struct diag_item *it = d.count ? &d.items[0] : NULL;
        snprintf(err, sizeof err, "its plan is invalid: line %d: %s: %s", it ? it->line : 0,
                 it && it->key ? it->key : "plan", it ? it->msg : "cannot parse");
        refused(c, cmd.id, "bad_plan", err);
        diag_free(&d);
        command_free(&cmd);
        return;
    }
    diag_free(&d);
    const char *actions[PLAN_MAX_STEPS * 2], *bad = NULL;
    size_t na = plan_actions(p, actions, sizeof actions / sizeof actions[0]);
    if (!command_actions_allowed(actions, na, &c->allowed_list, &bad)) {
        snprintf(err, sizeof err, "plan %s uses the action %s, which commands.allowed_actions "
                 "does not allow", p->name, bad ? bad : "?");
        refused(c, cmd.id, command_reason_name(COMMAND_ACTION_NOT_ALLOWED), err);
        plan_free(p);
        command_free(&cmd);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stats.accepted++;
    pthread_mutex_unlock(&c->mu);
    log_info("commands", "command %s accepted (key %s): plan %s, %zu steps", cmd.id,
             cmd.key_id, p->name, p->nsteps);
    struct plan_runner rr = runner(c, cmd.id);
    char why[1024];
    enum plan_outcome o = plan_run(&rr, p, why, sizeof why);
    count_outcome(c, o);
    if (o != PLAN_OK)
        log_warn("commands", "command %s: plan %s: %s: %s", cmd.id, p->name,
                 plan_outcome_name(o), why);
    plan_free(p);
    command_free(&cmd);
}

/* ---- offsets -------------------------------------------------------------- */

/* The offsets file: "PARTITION NEXT_OFFSET" lines. A missing or damaged file
 * means reading from the beginning, which is safe: what was seen is refused
 * as replayed or expired. */
static void load_offsets(struct command_channel *c)
{
    FILE *f = fopen(c->offsets_path, "re");
    int p;
    long long off;

    if (!f)
        return;
    while (fscanf(f, "%d %lld\n", &p, &off) == 2)
        if (p >= 0 && p < c->nparts && off >= 0)
            c->offsets[p] = off;
    fclose(f);
}

/* Write the offsets atomically (see fs_write_atomic). */
static void save_offsets(struct command_channel *c)
{
    struct buf b = BUF_INIT;
    int rc = PIPIT_OK;

    for (int i = 0; i < c->nparts && rc == PIPIT_OK; i++)
        if (c->offsets[i] >= 0)
            rc = buf_printf(&b, "%d %lld\n", i, (long long)c->offsets[i]);
    if (rc != PIPIT_OK)
        log_warn("commands", "cannot write %s: out of memory", c->offsets_path);
    else if (fs_write_atomic(c->offsets_path, b.data ? b.data : "", b.len, 0644) != 0)
        log_warn("commands", "cannot write %s: %s", c->offsets_path, strerror(errno));
    buf_free(&b);
}

/*
 * Every agent reads every partition of the command topic. The partitions
 * are assigned, not subscribed: no consumer group per agent for the
 * brokers to coordinate across a fleet, no rebalance to wait for. Reading
 * starts where this agent's offsets file says, else at the beginning.
 * Waits for the topic to exist. Returns false when stopped first.
 */
static bool assign_partitions(struct command_channel *c)
{
    bool warned = false;

    while (!atomic_load(&c->stop)) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(c->rk, c->topic, NULL);
        rd_kafka_resp_err_t e = t ? rd_kafka_metadata(c->rk, 0, t, &md, 2000)
                                  : RD_KAFKA_RESP_ERR__FAIL;
        int parts = 0;
        if (!e && md->topic_cnt == 1 && !md->topics[0].err)
            parts = md->topics[0].partition_cnt;
        else if (!e && md->topic_cnt == 1)
            e = md->topics[0].err;
        if (md)
            rd_kafka_metadata_destroy(md);
        if (t)
            rd_kafka_topic_destroy(t);
        if (parts > 0) {
            if (!(c->offsets = malloc((size_t)parts * sizeof *c->offsets)))
                return false;
            c->nparts = parts;
            for (int i = 0; i < parts; i++)
                c->offsets[i] = -1;
            load_offsets(c);
            rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
            for (int i = 0; i < parts; i++)
                rd_kafka_topic_partition_list_add(l, c->topic, i)->offset =
                    c->offsets[i] >= 0 ? c->offsets[i] : RD_KAFKA_OFFSET_BEGINNING;
            e = rd_kafka_assign(c->rk, l);
            rd_kafka_topic_partition_list_destroy(l);
            if (!e) {
                log_info("commands", "reading %d partition%s of %s", parts,
                         parts == 1 ? "" : "s", c->topic);
                return true;
            }
        }
        if (!warned)
            log_warn("commands", "command topic %s not available yet: %s; retrying",
                     c->topic, e ? rd_kafka_err2str(e) : "no partitions");
        warned = true;
        for (int i = 0; i < 10 && !atomic_load(&c->stop); i++) {
            struct timespec ts = { 0, 200 * 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    return false;
}

static void *channel_main(void *arg)
{
    struct command_channel *c = arg;

    resume_unfinished(c);
    if (!assign_partitions(c))
        return NULL;
    while (!atomic_load(&c->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, CHANNEL_POLL_MS);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                log_warn("commands", "command topic: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        handle(c, m->payload, m->len);
        /* The nonce is in the journal and the run journaled: the offset may
         * move on. A command read again after a crash is refused as replayed. */
        if (m->partition >= 0 && m->partition < c->nparts) {
            c->offsets[m->partition] = m->offset + 1;
            save_offsets(c);
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* ---- start and stop ------------------------------------------------------- */

static int set_prop(rd_kafka_conf_t *conf, const char *k, const char *v, char *why,
                    size_t whylen)
{
    char err[512];
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, k, v, err, sizeof err);
    if (r == RD_KAFKA_CONF_OK)
        return 0;
    /* librdkafka's message quotes the value, which may be a secret */
    snprintf(why, whylen, "commands.rdkafka.%s: %s", k,
             r == RD_KAFKA_CONF_UNKNOWN ? "unknown property" : "invalid value (not shown)");
    return -1;
}

static void channel_logger(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    log_line(level <= 3 ? PIPIT_LOG_ERROR : level <= 5 ? PIPIT_LOG_WARN : PIPIT_LOG_DEBUG,
             "pipitd", NULL, "commands", "librdkafka %s: %s", fac, buf);
}

static int make_consumer(struct command_channel *c, char *why, size_t whylen)
{
    static const char *const fixed[] = { "group.id", "enable.auto.commit",
                                         "enable.auto.offset.store", "auto.offset.reset",
                                         NULL };
    const struct command_settings *s = c->o.conf;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client[300], group[128], err[512];

    /* librdkafka's assign() wants a group.id; it never joins, never commits */
    snprintf(group, sizeof group, "pipit-agent-%s", c->agent_id);
    snprintf(client, sizeof client, "pipit-%s", c->host);
    if (set_prop(conf, "bootstrap.servers", s->brokers, why, whylen) ||
        set_prop(conf, "client.id", client, why, whylen) ||
        set_prop(conf, "group.id", group, why, whylen) ||
        set_prop(conf, "enable.auto.commit", "false", why, whylen) ||
        set_prop(conf, "enable.auto.offset.store", "false", why, whylen) ||
        set_prop(conf, "auto.offset.reset", "earliest", why, whylen))
        goto fail;
    for (size_t i = 0; i < s->rdkafka.count; i++) {
        for (int f = 0; fixed[f]; f++)
            if (!strcmp(s->rdkafka.keys[i], fixed[f])) {
                snprintf(why, whylen, "commands.rdkafka.%s is set by pipit: the agent "
                         "keeps its own offsets, without a consumer group",
                         s->rdkafka.keys[i]);
                goto fail;
            }
        if (set_prop(conf, s->rdkafka.keys[i], s->rdkafka.values[i], why, whylen))
            goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, channel_logger);
    if (!(c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err))) {
        snprintf(why, whylen, "cannot create the command consumer: %s", err);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    return 0;
fail:
    if (!c->rk)
        rd_kafka_conf_destroy(conf);
    return -1;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void channel_free(struct command_channel *c)
{
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
    }
    if (c->nonces)
        nonce_journal_close(c->nonces);
    command_keyring_free(&c->ring);
    for (char **a = c->allowed; a && *a; a++)
        free(*a);
    free(c->allowed);
    for (size_t i = 0; i < c->labels.count; i++) {
        free((char *)c->labels.keys[i]);
        free((char *)c->labels.values[i]);
    }
    free((void *)c->labels.keys);
    free((void *)c->labels.values);
    free(c->host);
    free(c->agent_id);
    free(c->state_dir);
    free(c->plugin_dir);
    free(c->topic);
    free(c->offsets);
    free(c->offsets_path);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void on_closed(uv_handle_t *h)
{
    channel_free(h->data);
}

int command_channel_start(struct command_channel **out, const struct command_channel_opts *o,
                          char *why, size_t whylen)
{
    const struct command_settings *s = o->conf;
    struct command_channel *c = calloc(1, sizeof *c);
    char err[512], *path = NULL;
    size_t na = s->allowed_actions.count, nl = s->labels.count;

    *out = NULL;
    if (!c) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    c->o = *o;
    pthread_mutex_init(&c->mu, NULL);
    c->tail = &c->head;
    c->skew = s->max_skew_ms / 1000;
    c->host = dup_or_empty(o->host_name);
    c->agent_id = dup_or_empty(o->agent_id);
    c->state_dir = dup_or_empty(o->state_dir);
    c->plugin_dir = dup_or_empty(o->plugin_dir);
    c->topic = dup_or_empty(s->topic);
    c->allowed = calloc(na + 1, sizeof *c->allowed);
    c->labels.keys = calloc(nl + 1, sizeof *c->labels.keys);
    c->labels.values = calloc(nl + 1, sizeof *c->labels.values);
    if (!c->allowed || !c->labels.keys || !c->labels.values)
        goto nomem;
    for (size_t i = 0; i < na; i++)
        if (!(c->allowed[i] = strdup(s->allowed_actions.items[i])))
            goto nomem;
    c->allowed_list.items = (const char *const *)c->allowed;
    c->allowed_list.count = na;
    for (size_t i = 0; i < nl; i++) {
        ((const char **)c->labels.keys)[i] = strdup(s->labels.keys[i]);
        ((const char **)c->labels.values)[i] = strdup(s->labels.values[i]);
        c->labels.count++;
        if (!c->labels.keys[i] || !c->labels.values[i])
            goto nomem;
    }
    for (size_t i = 0; i < s->trusted_keys.count; i++)
        if (command_keyring_add_file(&c->ring, s->trusted_keys.items[i], err, sizeof err) !=
            PIPIT_OK) {
            snprintf(why, whylen, "commands.trusted_keys: %s", err);
            goto fail;
        }
    if (asprintf(&path, "%s/commands.nonces", c->state_dir) < 0 ||
        asprintf(&c->offsets_path, "%s/commands.offsets", c->state_dir) < 0)
        goto nomem;
    int jr = nonce_journal_open(&c->nonces, path, c->skew, (int64_t)time(NULL), err,
                                sizeof err);
    free(path);
    if (jr != PIPIT_OK) {
        snprintf(why, whylen, "%s", err);
        goto fail;
    }
    if (make_consumer(c, why, whylen) != 0)
        goto fail;
    if (uv_async_init(o->loop, &c->async, on_async) != 0) {
        snprintf(why, whylen, "cannot set up the event queue");
        goto fail;
    }
    c->async.data = c;
    if (pthread_create(&c->thread, NULL, channel_main, c) != 0) {
        snprintf(why, whylen, "cannot start the command thread: %s", strerror(errno));
        uv_close((uv_handle_t *)&c->async, on_closed);
        return -1;
    }
    c->started = true;
    if (na == 0)
        log_warn("commands", "commands.allowed_actions is empty: every command will be "
                 "refused");
    log_info("commands", "reading signed commands from %s on %s (%zu trusted key%s, "
             "actions: %zu allowed)", c->topic, s->brokers, c->ring.count,
             c->ring.count == 1 ? "" : "s", na);
    *out = c;
    return 0;
nomem:
    snprintf(why, whylen, "out of memory");
fail:
    channel_free(c);
    return -1;
}

void command_channel_stop(struct command_channel *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, true);
    if (c->started)
        pthread_join(c->thread, NULL);
    drain_queue(c);
    log_info("commands", "command channel stopped: received=%llu accepted=%llu refused=%llu "
             "runs_ok=%llu runs_failed=%llu", (unsigned long long)c->stats.received,
             (unsigned long long)c->stats.accepted, (unsigned long long)c->stats.refused,
             (unsigned long long)c->stats.runs_ok, (unsigned long long)c->stats.runs_failed);
    uv_close((uv_handle_t *)&c->async, on_closed);
}

void command_channel_stats(struct command_channel *c, struct command_channel_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
