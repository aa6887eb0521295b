/* cmd_deploy.c: pipit deploy: send a signed plan to a fleet through Kafka in waves, watch each host's events, stop and roll back on failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <openssl/rand.h>
#include "command.h"
#include "command_key.h"
#include "commands.h"
#include "deploy_plan.h"
#include "options.h"
#include "plan.h"
#include "selector.h"
#include "wire.h"

/* Exit statuses, as documented in --help and docs/deployments.md. */
enum { DEPLOY_EXIT_OK = 0, DEPLOY_EXIT_FAILED = 1, DEPLOY_EXIT_USAGE = 2, DEPLOY_EXIT_ERROR = 4 };

#define DEFAULT_COMMAND_TOPIC "pipit.commands"
#define DEFAULT_EVENTS_TOPIC  "pipit.events"
#define DEFAULT_VALIDITY_MS   (3600 * 1000LL)
#define DEFAULT_WAVE_TIMEOUT  (600 * 1000LL)
#define KAFKA_TIMEOUT_MS      10000     /* metadata and watermark queries */
#define DELIVERY_TIMEOUT_MS   30000     /* message.timeout.ms of the commands */
#define KEY_FILE_MAX          (64u << 10)
#define ROLLBACK_SUFFIX       "-rollback"

static atomic_bool deploy_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&deploy_interrupted, true);
}

struct deploy {
    /* options */
    const char *plan_file, *target, *brokers, *key_file, *inventory_file;
    const char *gate, *command_topic, *events_topic, *signing_key_file, *rollback_file;
    const char *canary_text;
    char **vars;                        /* "k=v" from --var, borrowed from argv */
    size_t nvars;
    bool canary, dry;
    struct deploy_batch batch;
    size_t max_failures;
    int64_t wave_timeout_ms, validity_s;

    /* what was loaded */
    struct plan *plan, *rollback;
    char **rb_vars;                     /* the --var the rollback plan declares */
    size_t rb_nvars;
    struct deploy_inventory inv;
    struct selector sel, canary_sel;
    bool have_canary_sel;
    size_t ncanary;
    size_t *targets;
    size_t ntargets;
    struct deploy_waves waves;
    EVP_PKEY *key;
    struct buf hmac;                    /* --signing-key-file bytes, or empty */
    char id[COMMAND_ID_MAX + 1];
    char rb_id[COMMAND_ID_MAX + 16];     /* id + ROLLBACK_SUFFIX, checked to fit */

    /* the run */
    struct deploy_watch *hosts;         /* per inventory host */
    rd_kafka_t *producer, *consumer;
    size_t in_flight;                   /* commands without a delivery report */
    struct buf payload;                 /* a decoded event batch */
    uint64_t refused_batches;           /* event messages that did not verify */
    bool brokers_down_said;
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: pipit deploy PLAN.yaml --target SELECTOR --inventory FILE\n"
        "                    --brokers HOST:PORT[,...] --key PRIVATE.key [OPTIONS]\n"
        "\n"
        "Sign PLAN.yaml (docs/deployments.md) and send it to the hosts of FILE the\n"
        "SELECTOR addresses, one command per host on the command topic, in waves;\n"
        "watch each host's events and stop when failures exceed --max-failures.\n"
        "\n"
        "  --var NAME=VALUE         set a variable the plan declares (repeatable)\n"
        "  --inventory FILE         the hosts: lines \"HOST [key=value ...]\", # comments\n"
        "  --strategy rolling|canary  (default rolling)\n"
        "  --batch N|N%%             hosts per wave (default 1); N%% of the targets,\n"
        "                           rounded up\n"
        "  --max-failures K         failed hosts tolerated before stopping (default 0)\n"
        "  --canary SELECTOR|N      canary: the hosts it addresses, or the first N\n"
        "                           (default 1)\n"
        "  --gate-command CMD       canary: run CMD (/bin/sh -c) after the canary wave;\n"
        "                           exit 0 lets the rest go\n"
        "  --wave-timeout DUR       how long to wait for a wave's outcomes (default 10m)\n"
        "  --validity DUR           commands expire this long after signing (default 1h,\n"
        "                           at most 7d)\n"
        "  --command-topic T        (default " DEFAULT_COMMAND_TOPIC ")\n"
        "  --events-topic T         (default " DEFAULT_EVENTS_TOPIC ")\n"
        "  --signing-key-file F     HMAC key of the agents' event batches: unsigned or\n"
        "                           badly signed batches are ignored\n"
        "  --rollback-plan FILE     on a stop, send this plan to the hosts of the failed\n"
        "                           wave whose plan succeeded (id <ID>" ROLLBACK_SUFFIX ")\n"
        "  --id ID                  deployment id (default <plan>-<UTC time>-<4 hex>)\n"
        "  --dry-run                print the waves and each host's target, send nothing\n"
        "  -h, --help               show this help\n"
        "\n"
        "Exit status: 0 every host succeeded, 1 the deployment stopped or a host\n"
        "failed, 2 usage, an invalid plan or inventory, 4 could not run (Kafka, key).\n");
}

/* ---- setup ---------------------------------------------------------------- */

/* The HMAC key file: its bytes less one trailing newline. Returns 0 or -1. */
static int read_hmac_key(const char *path, struct buf *key)
{
    FILE *f = fopen(path, "rb");
    char tmp[4096];
    size_t n;

    if (!f) {
        fprintf(stderr, "pipit deploy: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if (key->len + n > KEY_FILE_MAX || buf_append(key, tmp, n) != PIPIT_OK) {
            fprintf(stderr, "pipit deploy: %s: larger than %u bytes; not a key\n", path,
                    KEY_FILE_MAX);
            fclose(f);
            return -1;
        }
    fclose(f);
    if (key->len && key->data[key->len - 1] == '\n')
        key->data[--key->len] = '\0';
    if (key->len == 0) {
        fprintf(stderr, "pipit deploy: %s: the key is empty\n", path);
        return -1;
    }
    return 0;
}

static struct plan *load_plan(const char *path, char *const *vars, size_t nvars)
{
    struct diag d;
    diag_init(&d);
    struct plan *p = plan_load_file(path, vars, nvars, &d);
    if (!p) {
        diag_print(&d, stderr);
        fprintf(stderr, "%s: invalid, %zu error%s\n", path, d.count + d.dropped,
                d.count + d.dropped == 1 ? "" : "s");
    }
    diag_free(&d);
    return p;
}

/*
 * The rollback plan, with those --var settings it declares (it is its own
 * plan: it need not declare the deployment plan's variables).
 */
static int load_rollback(struct deploy *D)
{
    struct plan *probe = load_plan(D->rollback_file, NULL, 0);

    if (!probe)
        return -1;
    D->rb_vars = calloc(D->nvars + 1, sizeof *D->rb_vars);
    if (!D->rb_vars) {
        plan_free(probe);
        return -1;
    }
    for (size_t i = 0; i < D->nvars; i++) {
        size_t kl = strcspn(D->vars[i], "=");
        for (size_t k = 0; k < probe->nvars; k++)
            if (strlen(probe->var_keys[k]) == kl && !strncmp(probe->var_keys[k], D->vars[i], kl)) {
                D->rb_vars[D->rb_nvars++] = D->vars[i];
                break;
            }
    }
    plan_free(probe);
    D->rollback = load_plan(D->rollback_file, D->rb_vars, D->rb_nvars);
    return D->rollback ? 0 : -1;
}

/* Plan, inventory, selectors, waves and ids: everything checked before
 * Kafka is touched. Returns an exit status, or -1 to go on. */
static int prepare(struct deploy *D)
{
    char err[512];
    struct diag d;

    if (!(D->plan = load_plan(D->plan_file, D->vars, D->nvars)))
        return DEPLOY_EXIT_USAGE;
    if (D->rollback_file && load_rollback(D) != 0)
        return DEPLOY_EXIT_USAGE;
    if (selector_parse(D->target, &D->sel, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "pipit deploy: --target: %s\n", err);
        return DEPLOY_EXIT_USAGE;
    }
    if (D->canary) {
        const char *s = D->canary_text ? D->canary_text : "1";
        char *end;
        unsigned long n = strtoul(s, &end, 10);
        if (*s >= '0' && *s <= '9' && !*end) {
            if (n < 1) {
                fprintf(stderr, "pipit deploy: --canary wants a selector or a number of "
                        "hosts from 1\n");
                return DEPLOY_EXIT_USAGE;
            }
            D->ncanary = n;
        } else if (selector_parse(s, &D->canary_sel, err, sizeof err) != PIPIT_OK) {
            fprintf(stderr, "pipit deploy: --canary: %s\n", err);
            return DEPLOY_EXIT_USAGE;
        } else {
            D->have_canary_sel = true;
        }
    }

    diag_init(&d);
    if (deploy_inventory_load(D->inventory_file, &D->inv, &d) != PIPIT_OK) {
        diag_print(&d, stderr);
        fprintf(stderr, "%s: invalid inventory, %zu error%s\n", D->inventory_file,
                d.count + d.dropped, d.count + d.dropped == 1 ? "" : "s");
        diag_free(&d);
        return DEPLOY_EXIT_USAGE;
    }
    diag_free(&d);
    D->targets = malloc((D->inv.count ? D->inv.count : 1) * sizeof *D->targets);
    D->hosts = calloc(D->inv.count ? D->inv.count : 1, sizeof *D->hosts);
    if (!D->targets || !D->hosts)
        return DEPLOY_EXIT_ERROR;
    for (size_t i = 0; i < D->inv.count; i++)
        D->hosts[i] = (struct deploy_watch){ .host = D->inv.hosts[i].name,
                                             .result = DEPLOY_NOT_SENT };
    D->ntargets = deploy_select(&D->inv, &D->sel, D->targets);
    if (D->ntargets == 0) {
        fprintf(stderr, "pipit deploy: no host of %s matches --target %s\n",
                D->inventory_file, D->target);
        return DEPLOY_EXIT_USAGE;
    }
    size_t batch = deploy_batch_size(&D->batch, D->ntargets);
    int r = D->canary
        ? deploy_waves_canary(&D->inv, D->targets, D->ntargets,
                              D->have_canary_sel ? &D->canary_sel : NULL, D->ncanary, batch,
                              &D->waves, err, sizeof err)
        : deploy_waves_rolling(D->targets, D->ntargets, batch, &D->waves);
    if (r == PIPIT_EINVAL) {
        fprintf(stderr, "pipit deploy: --canary %s: %s\n", D->canary_text ? D->canary_text : "1",
                err);
        return DEPLOY_EXIT_USAGE;
    }
    if (r != PIPIT_OK)
        return DEPLOY_EXIT_ERROR;

    if (!D->id[0]) {
        unsigned char rnd[2];
        if (RAND_bytes(rnd, sizeof rnd) != 1 ||
            deploy_make_id(D->id, sizeof D->id, D->plan->name, (int64_t)time(NULL), rnd) != PIPIT_OK) {
            fprintf(stderr, "pipit deploy: cannot make a deployment id\n");
            return DEPLOY_EXIT_ERROR;
        }
    }
    snprintf(D->rb_id, sizeof D->rb_id, "%s" ROLLBACK_SUFFIX, D->id);
    return -1;
}

/* ---- Kafka ---------------------------------------------------------------- */

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct deploy *D = opaque;

    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && !D->brokers_down_said) {
        fprintf(stderr, "pipit deploy: kafka: all brokers are down (%s)\n", reason);
        D->brokers_down_said = true;
    } else if (err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
               err == RD_KAFKA_RESP_ERR__SSL) {
        fprintf(stderr, "pipit deploy: kafka: %s: %s\n", rd_kafka_err2name(err), reason);
    }
}

/* librdkafka's own lines: only the severe ones; the rest is what error_cb
 * and the delivery reports already say. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= 2)
        fprintf(stderr, "pipit deploy: librdkafka %s: %s\n", fac, buf);
}

/* Delivery report of one command: the host's command counts as sent only
 * once every in-sync replica has it (acks=all). */
static void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    struct deploy *D = opaque;
    struct deploy_watch *w = rkm->_private;

    D->in_flight--;
    if (rkm->err && w) {
        w->result = DEPLOY_SEND_FAILED;
        snprintf(w->detail, sizeof w->detail, "command not delivered: %s",
                 rd_kafka_err2str(rkm->err));
    }
}

static rd_kafka_conf_t *kafka_conf(struct deploy *D, bool producer, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char timeout[24];
    snprintf(timeout, sizeof timeout, "%d", DELIVERY_TIMEOUT_MS);
    const char *const common[][2] = {
        { "bootstrap.servers", D->brokers }, { "client.id", "pipit-deploy" },
    };
    const char *const prod[][2] = {
        { "enable.idempotence", "true" }, { "acks", "all" }, { "message.timeout.ms", timeout },
        { "linger.ms", "5" },
    };
    /* An assign()ed reader that commits nothing. librdkafka wants a group.id
     * for assign() all the same; a fresh one per deployment, never joined. */
    char group[COMMAND_ID_MAX + 32];
    snprintf(group, sizeof group, "pipit-deploy.%s", D->id);
    const char *const cons[][2] = {
        { "group.id", group }, { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" }, { "enable.partition.eof", "false" },
    };

    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        if (rd_kafka_conf_set(conf, common[i][0], common[i][1], err, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; producer && i < sizeof prod / sizeof prod[0]; i++)
        if (rd_kafka_conf_set(conf, prod[i][0], prod[i][1], err, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    for (size_t i = 0; !producer && i < sizeof cons / sizeof cons[0]; i++)
        if (rd_kafka_conf_set(conf, cons[i][0], cons[i][1], err, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    rd_kafka_conf_set_opaque(conf, D);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    if (producer)
        rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* The number of partitions of topic, or -1 with the reason printed. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, const char *what)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    int n = -1;

    if (!rkt)
        return -1;
    e = rd_kafka_metadata(rk, 0, rkt, &md, KAFKA_TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "pipit deploy: kafka: cannot read the metadata of %s: %s\n", topic,
                rd_kafka_err2str(e));
    else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1)
        fprintf(stderr, "pipit deploy: kafka: the %s topic %s: %s\n", what, topic,
                md->topic_cnt == 1 && md->topics[0].err
                    ? rd_kafka_err2str(md->topics[0].err) : "has no partitions");
    else
        n = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/*
 * Connect, check both topics, and start reading the events topic. Where
 * to start: at each partition's end as it is now, asked before anything
 * is sent (explicit offsets, assigned, no group membership). Every event of
 * this deployment is produced after its command was delivered, so after
 * those offsets; nothing can be missed, and nothing older is read.
 * Offsets by timestamp would depend on the agents' clocks (CreateTime),
 * and a subscribed consumer group would wait for a rebalance and leave
 * committed offsets on the brokers for every run.
 * Returns 0, or -1 with the reason printed.
 */
static int kafka_start(struct deploy *D)
{
    char err[512];
    rd_kafka_conf_t *conf;

    if (!(conf = kafka_conf(D, false, err, sizeof err)) ||
        !(D->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err))) {
        fprintf(stderr, "pipit deploy: kafka: %s\n", err);
        return -1;
    }
    int nparts = topic_partitions(D->consumer, D->events_topic, "events");
    if (nparts < 0 || topic_partitions(D->consumer, D->command_topic, "command") < 0)
        return -1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(D->consumer, D->events_topic,
                                                                 p, &lo, &hi, KAFKA_TIMEOUT_MS);
        if (e) {
            fprintf(stderr, "pipit deploy: kafka: cannot read the end of %s [%d]: %s\n",
                    D->events_topic, p, rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(parts);
            return -1;
        }
        rd_kafka_topic_partition_list_add(parts, D->events_topic, p)->offset = hi;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(D->consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        fprintf(stderr, "pipit deploy: kafka: cannot read %s: %s\n", D->events_topic,
                rd_kafka_err2str(e));
        return -1;
    }
    if (!(conf = kafka_conf(D, true, err, sizeof err)) ||
        !(D->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err))) {
        fprintf(stderr, "pipit deploy: kafka: %s\n", err);
        return -1;
    }
    return 0;
}

static void kafka_stop(struct deploy *D)
{
    if (D->consumer) {
        rd_kafka_consumer_close(D->consumer);
        rd_kafka_destroy(D->consumer);
    }
    if (D->producer) {
        rd_kafka_flush(D->producer, 1000);
        rd_kafka_destroy(D->producer);
    }
}

/* ---- sending -------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Sign and publish one command per host of w[0..n) (key = host name) and
 * wait for their delivery reports. A host whose command could not be
 * signed, queued or delivered is SEND_FAILED; the others are PENDING.
 */
static void send_wave(struct deploy *D, const struct plan *p, char *const *vars, size_t nvars,
                      const char *id, struct deploy_watch *w, size_t n, const char *prefix)
{
    const char **keys = calloc(nvars + 1, sizeof *keys), **vals = calloc(nvars + 1, sizeof *vals);
    char **copy = calloc(nvars + 1, sizeof *copy);
    struct buf target = BUF_INIT, msg = BUF_INIT;
    char err[400];

    for (size_t i = 0; copy && i < nvars; i++) {
        copy[i] = strdup(vars[i]);
        char *eq = copy[i] ? strchr(copy[i], '=') : NULL;
        if (eq)
            *eq++ = '\0';
        if (keys && vals) {
            keys[i] = copy[i] ? copy[i] : "";
            vals[i] = eq ? eq : "";
        }
    }
    for (size_t i = 0; i < n; i++) {
        w[i].result = DEPLOY_SEND_FAILED;
        w[i].status[0] = w[i].detail[0] = '\0';
        buf_reset(&target);
        buf_reset(&msg);
        struct command cmd = {
            .id = (char *)id, .plan = p->text, .target = NULL,
            .vars = { keys, vals, keys && vals ? nvars : 0 },
            .issued_at = (int64_t)time(NULL),
        };
        cmd.expires_at = cmd.issued_at + D->validity_s;
        if (!keys || !vals || !copy || deploy_host_target(D->target, &D->sel, w[i].host, &target) ||
            command_new_nonce(cmd.nonce) != PIPIT_OK) {
            snprintf(w[i].detail, sizeof w[i].detail, "out of memory or no randomness");
            continue;
        }
        cmd.target = target.data;
        if (command_sign(&cmd, D->key, &msg, err, sizeof err) != PIPIT_OK) {
            snprintf(w[i].detail, sizeof w[i].detail, "cannot sign: %s", err);
            continue;
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            D->producer, RD_KAFKA_V_TOPIC(D->command_topic),
            RD_KAFKA_V_KEY(w[i].host, strlen(w[i].host)),
            RD_KAFKA_V_VALUE(msg.data, msg.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(&w[i]), RD_KAFKA_V_END);
        if (e) {
            snprintf(w[i].detail, sizeof w[i].detail, "cannot queue the command: %s",
                     rd_kafka_err2str(e));
            continue;
        }
        w[i].result = DEPLOY_PENDING;  /* until its delivery report says otherwise */
        D->in_flight++;
    }
    /* message.timeout.ms bounds this: every message gets its report */
    while (D->in_flight > 0)
        rd_kafka_poll(D->producer, 100);
    for (size_t i = 0; i < n; i++)
        if (w[i].result == DEPLOY_SEND_FAILED)
            printf("%s %s: %s\n", prefix, w[i].host, w[i].detail);
    fflush(stdout);
    for (size_t i = 0; copy && i < nvars; i++)
        free(copy[i]);
    free(copy);
    free(keys);
    free(vals);
    buf_free(&target);
    buf_free(&msg);
}

/* ---- watching ------------------------------------------------------------- */

static const char *label_str(json_t *labels, const char *k)
{
    return json_string_value(json_object_get(labels, k));
}

/* The first line of s, at most 200 characters, for a progress line. */
static int first_line(const char *s)
{
    int n = (int)strcspn(s ? s : "", "\n");
    return n > 200 ? 200 : n;
}

/* One progress line for an event about w (already applied to it). */
static void show_event(const char *prefix, const struct deploy_watch *w,
                       const struct deploy_event *ev)
{
    const char *msg = ev->message ? ev->message : "";
    char dur[32] = "";

    if (ev->duration_ms >= 0)
        snprintf(dur, sizeof dur, " (%.1f s)", (double)ev->duration_ms / 1000.0);
    if (!strcmp(ev->name, "plan.started"))
        printf("%s %s: plan started\n", prefix, w->host);
    else if (!strcmp(ev->name, "plan.resumed"))
        printf("%s %s: plan resumed\n", prefix, w->host);
    else if (!strcmp(ev->name, "step.finished") && ev->step)
        printf("%s %s: step %s %s%s%s%.*s\n", prefix, w->host, ev->step,
               ev->status ? ev->status : "?", dur,
               ev->status && strcmp(ev->status, "ok") && *msg ? ": " : "",
               ev->status && strcmp(ev->status, "ok") ? first_line(msg) : 0, msg);
    else if (!strcmp(ev->name, "step.retry") && ev->step)
        printf("%s %s: step %s attempt %s failed, retrying: %.*s\n", prefix, w->host, ev->step,
               ev->attempt ? ev->attempt : "?", first_line(msg), msg);
    else if (!strcmp(ev->name, "rollback.finished") && ev->step)
        printf("%s %s: rollback step %s %s%s\n", prefix, w->host, ev->step,
               ev->status ? ev->status : "?", dur);
    else if (!strcmp(ev->name, "plan.finished"))
        printf("%s %s: plan %s%s%.*s\n", prefix, w->host, w->status,
               w->result == DEPLOY_OK || !*msg ? "" : ": ",
               w->result == DEPLOY_OK ? 0 : first_line(msg), msg);
    else if (!strcmp(ev->name, "command.refused"))
        printf("%s %s: refused: %.*s\n", prefix, w->host, first_line(w->detail), w->detail);
    else
        return;
    fflush(stdout);
}

/* Apply every event record of one decoded batch. Returns how many hosts
 * got their outcome. */
static size_t apply_batch(struct deploy *D, const char *id, struct deploy_watch *w, size_t n,
                          const char *prefix)
{
    size_t decided = 0;
    const char *p = D->payload.data, *end = p + D->payload.len;

    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *rec = json_loadb(p, len, 0, NULL);
        p = nl ? nl + 1 : end;
        if (!rec)
            continue;
        json_t *labels = json_object_get(rec, "labels");
        const char *kind = json_string_value(json_object_get(rec, "kind"));
        const char *dur = label_str(labels, "duration_ms");
        struct deploy_event ev = {
            .name = json_string_value(json_object_get(rec, "name")),
            .status = json_string_value(json_object_get(rec, "status")),
            .host = json_string_value(json_object_get(rec, "host")),
            .message = json_string_value(json_object_get(rec, "message")),
            .run = label_str(labels, "run"), .step = label_str(labels, "step"),
            .action = label_str(labels, "action"), .reason = label_str(labels, "reason"),
            .attempt = label_str(labels, "attempt"),
            .duration_ms = dur ? strtoll(dur, NULL, 10) : -1,
        };
        if (kind && !strcmp(kind, "event")) {
            bool was_pending = false;
            for (size_t i = 0; i < n && ev.host; i++)
                if (!strcmp(w[i].host, ev.host))
                    was_pending = w[i].result == DEPLOY_PENDING;
            int i = deploy_watch_apply(w, n, id, &ev);
            if (i >= 0) {
                show_event(prefix, &w[i], &ev);
                if (was_pending && w[i].result != DEPLOY_PENDING)
                    decided++;
            }
        }
        json_decref(rec);
    }
    return decided;
}

/*
 * Read the events topic until every PENDING host of w[0..n) has its
 * outcome for run id, or the wave timeout; the hosts still pending then
 * are TIMED_OUT. Interrupted (SIGINT, SIGTERM): they stay PENDING.
 */
static void watch_wave(struct deploy *D, const char *id, struct deploy_watch *w, size_t n,
                       const char *prefix)
{
    int64_t deadline = now_ms() + D->wave_timeout_ms;
    size_t pending = 0;
    char err[512];

    for (size_t i = 0; i < n; i++)
        pending += w[i].result == DEPLOY_PENDING;
    while (pending > 0 && !atomic_load(&deploy_interrupted)) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(D->consumer, left < 200 ? (int)left : 200);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "pipit deploy: reading %s: %s\n", D->events_topic,
                        rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        struct wire_header h;
        enum wire_reason r = wire_decode(m->payload, m->len, D->hmac.len ? D->hmac.data : NULL,
                                         D->hmac.len, D->hmac.len > 0, WIRE_DEFAULT_MAX_RAW,
                                         &h, &D->payload, err, sizeof err);
        if (r != WIRE_OK) {
            /* Not ours to judge beyond ignoring it; say so, but not per message forever. */
            if (D->refused_batches++ < 10)
                fprintf(stderr, "pipit deploy: %s [%d] offset %" PRId64 " ignored: %s: %s\n",
                        D->events_topic, (int)m->partition, (int64_t)m->offset,
                        wire_reason_name(r), err);
        } else {
            size_t d = apply_batch(D, id, w, n, prefix);
            pending = pending > d ? pending - d : 0;
        }
        rd_kafka_message_destroy(m);
    }
    for (size_t i = 0; i < n; i++)
        if (w[i].result == DEPLOY_PENDING && !atomic_load(&deploy_interrupted)) {
            w[i].result = DEPLOY_TIMED_OUT;
            snprintf(w[i].detail, sizeof w[i].detail, "no outcome within --wave-timeout");
            printf("%s %s: timed out: no outcome within %" PRId64 " s\n", prefix, w[i].host,
                   D->wave_timeout_ms / 1000);
        }
    fflush(stdout);
}

/* ---- the deployment ------------------------------------------------------- */

/* Run the gate command; true when it exits 0. */
static bool run_gate(struct deploy *D, const struct deploy_wave *wave)
{
    struct buf hosts = BUF_INIT;

    for (size_t i = 0; i < wave->count; i++) {
        buf_puts(&hosts, i ? " " : "");
        buf_puts(&hosts, D->inv.hosts[wave->hosts[i]].name);
    }
    printf("gate: running %s\n", D->gate);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("PIPIT_DEPLOY_ID", D->id, 1);
        setenv("PIPIT_DEPLOY_HOSTS", hosts.data ? hosts.data : "", 1);
        execl("/bin/sh", "sh", "-c", D->gate, (char *)NULL);
        _exit(127);
    }
    buf_free(&hosts);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) {
        printf("gate: failed: cannot run it: %s\n", strerror(errno));
        return false;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        printf("gate: passed\n");
        return true;
    }
    if (WIFEXITED(st))
        printf("gate: failed: exit status %d\n", WEXITSTATUS(st));
    else
        printf("gate: failed: killed by signal %d\n", WTERMSIG(st));
    return false;
}

static void print_wave_line(const struct deploy *D, size_t wi)
{
    const struct deploy_wave *wv = &D->waves.waves[wi];

    printf("wave %zu/%zu%s:", wi + 1, D->waves.count, wv->canary ? " (canary)" : "");
    for (size_t i = 0; i < wv->count; i++)
        printf(" %s", D->inv.hosts[wv->hosts[i]].name);
    printf("\n");
}

static int dry_run(struct deploy *D)
{
    struct buf t = BUF_INIT;

    printf("deployment %s: plan %s (digest %.16s), %zu host%s in %zu wave%s, %s, "
           "max failures %zu\n", D->id, D->plan->name, D->plan->digest, D->ntargets,
           D->ntargets == 1 ? "" : "s", D->waves.count, D->waves.count == 1 ? "" : "s",
           D->canary ? "canary" : "rolling", D->max_failures);
    for (size_t wi = 0; wi < D->waves.count; wi++) {
        const struct deploy_wave *wv = &D->waves.waves[wi];
        print_wave_line(D, wi);
        for (size_t i = 0; i < wv->count; i++) {
            buf_reset(&t);
            const char *h = D->inv.hosts[wv->hosts[i]].name;
            deploy_host_target(D->target, &D->sel, h, &t);
            printf("  %s: target %s\n", h, t.data ? t.data : "");
        }
        if (wv->canary && D->gate)
            printf("gate: %s\n", D->gate);
    }
    if (D->rollback)
        printf("on a stop: plan %s as %s to the failed wave's hosts whose plan succeeded\n",
               D->rollback->name, D->rb_id);
    printf("dry run: nothing sent\n");
    buf_free(&t);
    return DEPLOY_EXIT_OK;
}

/* Send the rollback plan to the hosts of wave wi whose plan succeeded. */
static void roll_back(struct deploy *D, size_t wi)
{
    const struct deploy_wave *wv = &D->waves.waves[wi];
    struct deploy_watch *w = calloc(wv->count ? wv->count : 1, sizeof *w);
    size_t n = 0;

    if (!w)
        return;
    for (size_t i = 0; i < wv->count; i++)
        if (D->hosts[wv->hosts[i]].result == DEPLOY_OK)
            w[n++] = (struct deploy_watch){ .host = D->hosts[wv->hosts[i]].host };
    if (n == 0) {
        printf("[rollback] no host of wave %zu/%zu succeeded: nothing to roll back\n", wi + 1,
               D->waves.count);
        free(w);
        return;
    }
    printf("[rollback] plan %s as %s to %zu host%s:", D->rollback->name, D->rb_id, n,
           n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++)
        printf(" %s", w[i].host);
    printf("\n");
    fflush(stdout);
    send_wave(D, D->rollback, D->rb_vars, D->rb_nvars, D->rb_id, w, n, "[rollback]");
    watch_wave(D, D->rb_id, w, n, "[rollback]");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < wv->count; k++) {
            struct deploy_watch *h = &D->hosts[wv->hosts[k]];
            if (h->host != w[i].host)
                continue;
            if (w[i].result == DEPLOY_OK) {
                h->result = DEPLOY_ROLLED_BACK;
            } else if (w[i].result != DEPLOY_PENDING) {
                h->result = DEPLOY_ROLLBACK_FAILED;
                snprintf(h->detail, sizeof h->detail, "rollback %s%s%s",
                         deploy_result_name(w[i].result), w[i].detail[0] ? ": " : "",
                         w[i].detail);
            }
        }
    free(w);
}

/* The final report: each result with its hosts, and the counts. */
static void summary(const struct deploy *D, const char *why)
{
    struct deploy_tally t = { { 0 }, 0 };

    printf("deployment %s: %s\n", D->id, why);
    for (int r = 0; r < DEPLOY_RESULT_MAX; r++) {
        size_t n = 0;
        for (size_t i = 0; i < D->ntargets; i++)
            n += D->hosts[D->targets[i]].result == (enum deploy_result)r;
        if (!n)
            continue;
        printf("  %s (%zu):", deploy_result_name((enum deploy_result)r), n);
        for (size_t i = 0; i < D->ntargets; i++) {
            const struct deploy_watch *h = &D->hosts[D->targets[i]];
            if (h->result != (enum deploy_result)r)
                continue;
            printf(" %s", h->host);
            if (h->result == DEPLOY_FAILED)
                printf(" (%s)", h->status);
        }
        printf("\n");
    }
    for (size_t i = 0; i < D->ntargets; i++)
        deploy_tally_add(&t, D->hosts[D->targets[i]].result);
    printf("summary: %zu ok, %zu failed, %zu refused, %zu timed out, %zu not delivered, "
           "%zu rolled back, %zu rollback failed, %zu not sent, %zu unknown\n",
           t.n[DEPLOY_OK], t.n[DEPLOY_FAILED], t.n[DEPLOY_REFUSED], t.n[DEPLOY_TIMED_OUT],
           t.n[DEPLOY_SEND_FAILED], t.n[DEPLOY_ROLLED_BACK], t.n[DEPLOY_ROLLBACK_FAILED],
           t.n[DEPLOY_NOT_SENT], t.n[DEPLOY_PENDING]);
    fflush(stdout);
}

static int deploy_run(struct deploy *D)
{
    char why[256], prefix[64];
    struct deploy_tally t = { { 0 }, 0 };
    bool stopped = false;

    printf("deployment %s: plan %s to %zu host%s in %zu wave%s (%s)\n", D->id, D->plan->name,
           D->ntargets, D->ntargets == 1 ? "" : "s", D->waves.count,
           D->waves.count == 1 ? "" : "s", D->canary ? "canary" : "rolling");
    snprintf(why, sizeof why, "done");
    for (size_t wi = 0; wi < D->waves.count && !stopped; wi++) {
        const struct deploy_wave *wv = &D->waves.waves[wi];
        struct deploy_watch *w = calloc(wv->count, sizeof *w);
        if (!w) {
            snprintf(why, sizeof why, "stopped: out of memory");
            stopped = true;
            break;
        }
        for (size_t i = 0; i < wv->count; i++)
            w[i].host = D->hosts[wv->hosts[i]].host;
        snprintf(prefix, sizeof prefix, "[wave %zu/%zu]", wi + 1, D->waves.count);
        print_wave_line(D, wi);
        fflush(stdout);
        send_wave(D, D->plan, D->vars, D->nvars, D->id, w, wv->count, prefix);
        watch_wave(D, D->id, w, wv->count, prefix);
        struct deploy_tally wt = { { 0 }, 0 };
        for (size_t i = 0; i < wv->count; i++) {
            struct deploy_watch *h = &D->hosts[wv->hosts[i]];
            h->result = w[i].result;
            memcpy(h->status, w[i].status, sizeof h->status);
            memcpy(h->detail, w[i].detail, sizeof h->detail);
            deploy_tally_add(&wt, w[i].result);
            deploy_tally_add(&t, w[i].result);
        }
        free(w);
        printf("%s done: %zu ok, %zu failed (%zu failure%s so far, %zu allowed)\n", prefix,
               wt.n[DEPLOY_OK], wt.failures, t.failures, t.failures == 1 ? "" : "s",
               D->max_failures);
        if (atomic_load(&deploy_interrupted)) {
            snprintf(why, sizeof why, "interrupted during wave %zu/%zu", wi + 1, D->waves.count);
            stopped = true;
            break;                      /* no rollback: the user asked to stop now */
        }
        if (wv->canary && wt.failures > 0) {
            snprintf(why, sizeof why, "stopped: the canary wave failed");
            stopped = true;
        } else if (deploy_should_stop(&t, D->max_failures)) {
            snprintf(why, sizeof why, "stopped after wave %zu/%zu: %zu failure%s, over "
                     "--max-failures %zu", wi + 1, D->waves.count, t.failures,
                     t.failures == 1 ? "" : "s", D->max_failures);
            stopped = true;
        } else if (wv->canary && D->gate && wi + 1 < D->waves.count && !run_gate(D, wv)) {
            snprintf(why, sizeof why, "stopped: the gate command failed after the canary wave");
            stopped = true;
        }
        if (stopped && D->rollback)
            roll_back(D, wi);
    }
    summary(D, why);
    for (size_t i = 0; i < D->ntargets; i++)
        if (D->hosts[D->targets[i]].result != DEPLOY_OK)
            return DEPLOY_EXIT_FAILED;
    return stopped ? DEPLOY_EXIT_FAILED : DEPLOY_EXIT_OK;
}

int cmd_deploy(int argc, char **argv)
{
    enum { O_VAR = 256, O_TARGET, O_BROKERS, O_KEY, O_INVENTORY, O_STRATEGY, O_BATCH,
           O_MAX_FAILURES, O_CANARY, O_GATE, O_WAVE_TIMEOUT, O_VALIDITY, O_COMMAND_TOPIC,
           O_EVENTS_TOPIC, O_SIGNING_KEY, O_ROLLBACK, O_DRY_RUN, O_ID };
    static const struct option longopts[] = {
        { "var", required_argument, NULL, O_VAR },
        { "target", required_argument, NULL, O_TARGET },
        { "brokers", required_argument, NULL, O_BROKERS },
        { "key", required_argument, NULL, O_KEY },
        { "inventory", required_argument, NULL, O_INVENTORY },
        { "strategy", required_argument, NULL, O_STRATEGY },
        { "batch", required_argument, NULL, O_BATCH },
        { "max-failures", required_argument, NULL, O_MAX_FAILURES },
        { "canary", required_argument, NULL, O_CANARY },
        { "gate-command", required_argument, NULL, O_GATE },
        { "wave-timeout", required_argument, NULL, O_WAVE_TIMEOUT },
        { "validity", required_argument, NULL, O_VALIDITY },
        { "command-topic", required_argument, NULL, O_COMMAND_TOPIC },
        { "events-topic", required_argument, NULL, O_EVENTS_TOPIC },
        { "signing-key-file", required_argument, NULL, O_SIGNING_KEY },
        { "rollback-plan", required_argument, NULL, O_ROLLBACK },
        { "dry-run", no_argument, NULL, O_DRY_RUN },
        { "id", required_argument, NULL, O_ID },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct deploy D = {
        .command_topic = DEFAULT_COMMAND_TOPIC, .events_topic = DEFAULT_EVENTS_TOPIC,
        .batch = { 1, false }, .wave_timeout_ms = DEFAULT_WAVE_TIMEOUT,
        .validity_s = DEFAULT_VALIDITY_MS / 1000, .hmac = BUF_INIT, .payload = BUF_INIT,
    };
    const char *strategy = "rolling", *id = NULL, *gate_or_canary_misuse = NULL;
    char err[512], *end;
    int64_t ms;
    int c, status = DEPLOY_EXIT_USAGE;

    D.vars = calloc((size_t)argc + 1, sizeof *D.vars);
    if (!D.vars)
        return DEPLOY_EXIT_ERROR;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_VAR:
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                fprintf(stderr, "pipit deploy: --var wants NAME=VALUE, not \"%s\"\n", optarg);
                goto done;
            }
            D.vars[D.nvars++] = optarg;
            break;
        case O_TARGET: D.target = optarg; break;
        case O_BROKERS: D.brokers = optarg; break;
        case O_KEY: D.key_file = optarg; break;
        case O_INVENTORY: D.inventory_file = optarg; break;
        case O_STRATEGY: strategy = optarg; break;
        case O_BATCH:
            if (deploy_batch_parse(optarg, &D.batch) != PIPIT_OK) {
                fprintf(stderr, "pipit deploy: --batch wants a number of hosts from 1 or a "
                        "percentage from 1%% to 100%%, not \"%s\"\n", optarg);
                goto done;
            }
            break;
        case O_MAX_FAILURES:
            errno = 0;
            D.max_failures = strtoul(optarg, &end, 10);
            if (errno || *end || optarg[0] < '0' || optarg[0] > '9') {
                fprintf(stderr, "pipit deploy: --max-failures wants a number from 0\n");
                goto done;
            }
            break;
        case O_CANARY: D.canary_text = optarg; gate_or_canary_misuse = "--canary"; break;
        case O_GATE: D.gate = optarg; gate_or_canary_misuse = "--gate-command"; break;
        case O_WAVE_TIMEOUT:
            if (opt_parse_duration(optarg, &ms) != PIPIT_OK || ms < 1000) {
                fprintf(stderr, "pipit deploy: --wave-timeout wants a duration of at least "
                        "1s, such as 90s or 10m\n");
                goto done;
            }
            D.wave_timeout_ms = ms;
            break;
        case O_VALIDITY:
            if (opt_parse_duration(optarg, &ms) != PIPIT_OK || ms < 1000 ||
                ms > COMMAND_MAX_VALIDITY * 1000LL) {
                fprintf(stderr, "pipit deploy: --validity wants a duration from 1s to 7d, "
                        "such as 1h\n");
                goto done;
            }
            D.validity_s = ms / 1000;
            break;
        case O_COMMAND_TOPIC: D.command_topic = optarg; break;
        case O_EVENTS_TOPIC: D.events_topic = optarg; break;
        case O_SIGNING_KEY: D.signing_key_file = optarg; break;
        case O_ROLLBACK: D.rollback_file = optarg; break;
        case O_DRY_RUN: D.dry = true; break;
        case O_ID: id = optarg; break;
        case 'h': usage(stdout); status = DEPLOY_EXIT_OK; goto done;
        default: usage(stderr); goto done;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "pipit deploy: %s\n", optind >= argc ? "which plan? (PLAN.yaml)"
                                                           : "one plan at a time");
        usage(stderr);
        goto done;
    }
    D.plan_file = argv[optind];
    if (!strcmp(strategy, "canary")) {
        D.canary = true;
    } else if (strcmp(strategy, "rolling") != 0) {
        fprintf(stderr, "pipit deploy: --strategy is rolling or canary, not \"%s\"\n", strategy);
        goto done;
    } else if (gate_or_canary_misuse) {
        fprintf(stderr, "pipit deploy: %s needs --strategy canary\n", gate_or_canary_misuse);
        goto done;
    }
    if (!D.target) {
        fprintf(stderr, "pipit deploy: --target SELECTOR is required (\"*\" for every host)\n");
        goto done;
    }
    if (!D.inventory_file) {
        fprintf(stderr, "pipit deploy: --inventory FILE is required: it lists the hosts to "
                "deploy to, one a line (HOST [key=value ...]), so that waves can be made "
                "and each host's outcome waited for\n");
        goto done;
    }
    if (!D.dry && (!D.brokers || !D.key_file)) {
        fprintf(stderr, "pipit deploy: %s is required (unless --dry-run)\n",
                !D.brokers ? "--brokers HOST:PORT" : "--key PRIVATE.key");
        goto done;
    }
    if (id) {
        size_t max = COMMAND_ID_MAX - (D.rollback_file ? strlen(ROLLBACK_SUFFIX) : 0);
        if (!deploy_id_valid(id, max)) {
            fprintf(stderr, "pipit deploy: --id wants 1 to %zu printable characters without "
                    "blanks\n", max);
            goto done;
        }
        snprintf(D.id, sizeof D.id, "%s", id);
    }
    if ((status = prepare(&D)) >= 0)
        goto done;
    status = DEPLOY_EXIT_ERROR;
    if (D.key_file &&
        command_key_load_private(D.key_file, &D.key, err, sizeof err) != PIPIT_OK) {
        fprintf(stderr, "pipit deploy: %s\n", err);
        goto done;
    }
    if (D.signing_key_file && read_hmac_key(D.signing_key_file, &D.hmac) != 0)
        goto done;
    if (D.dry) {
        status = dry_run(&D);
        goto done;
    }

    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (kafka_start(&D) != 0)
        goto done;
    status = deploy_run(&D);
done:
    kafka_stop(&D);
    if (D.hmac.data)
        explicit_bzero(D.hmac.data, D.hmac.cap);
    buf_free(&D.hmac);
    buf_free(&D.payload);
    EVP_PKEY_free(D.key);
    deploy_waves_free(&D.waves);
    free(D.targets);
    free(D.hosts);
    deploy_inventory_free(&D.inv);
    selector_free(&D.sel);
    selector_free(&D.canary_sel);
    plan_free(D.plan);
    plan_free(D.rollback);
    free(D.rb_vars);
    free(D.vars);
    return status;
}
