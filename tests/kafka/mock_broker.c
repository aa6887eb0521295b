/* mock_broker: a librdkafka mock Kafka cluster on loopback, driven by commands on stdin. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MOCK_MAX_BROKERS   16
#define MOCK_MAX_TOPICS    64
#define MOCK_LINE_MAX      1024
#define MOCK_DEF_BROKERS   3
#define MOCK_DEF_PARTS     4

static const char *const mock_default_topics[] = {
    "pipit.metrics", "pipit.logs", "pipit.costs", "pipit.events",
    "pipit.deadletter", "pipit.commands", NULL
};

struct mock_topic {
    const char *name;
    int partitions;
};

struct mock_state {
    rd_kafka_t *rk;                     /* handle the cluster lives in */
    rd_kafka_mock_cluster_t *mc;
    int brokers;                        /* ids 1..brokers */
    bool quit;
};

/* Kafka protocol request names accepted by `error` and `clear`. */
static const struct { const char *name; int16_t key; } mock_apikeys[] = {
    { "Produce", 0 },          { "Fetch", 1 },           { "ListOffsets", 2 },
    { "Metadata", 3 },         { "OffsetCommit", 8 },    { "OffsetFetch", 9 },
    { "FindCoordinator", 10 }, { "JoinGroup", 11 },      { "Heartbeat", 12 },
    { "LeaveGroup", 13 },      { "SyncGroup", 14 },      { "ApiVersions", 18 },
    { "InitProducerId", 22 },  { "AddPartitionsToTxn", 24 },
    { "AddOffsetsToTxn", 25 }, { "EndTxn", 26 },         { "TxnOffsetCommit", 28 },
};

static void mock_usage(FILE *f)
{
    fprintf(f,
        "usage: mock_broker [--brokers N] [--topic NAME:PARTITIONS]... [--no-default-topics]\n"
        "                   [--no-stdin]\n"
        "Start a librdkafka mock cluster on 127.0.0.1, print its bootstrap servers as\n"
        "the first line of stdout, then read commands from stdin until EOF, `quit`,\n"
        "SIGTERM or SIGINT (with --no-stdin: until a signal). Commands:\n"
        "  down ID|all            stop a broker (close connections, refuse new ones)\n"
        "  up ID|all              let it accept connections again\n"
        "  rtt ID|all MS          delay every response of the broker by MS\n"
        "  error APIKEY ERR COUNT the next COUNT requests of APIKEY fail with ERR\n"
        "  error TOPIC Metadata ERR [COUNT]  metadata for TOPIC reports ERR (0 clears)\n"
        "  clear APIKEY           forget errors pushed for APIKEY\n"
        "  leader TOPIC PARTITION ID   move a partition's leader (-1: none)\n"
        "  topic NAME:PARTITIONS  create a topic\n"
        "  bootstrap              print the bootstrap servers\n"
        "  quit                   stop\n"
        "Each command answers one line: `ok` or `error: <reason>`. APIKEY is a name\n"
        "(Produce, Metadata, InitProducerId, ...) or a number; ERR an error name\n"
        "(NOT_LEADER_FOR_PARTITION, _TRANSPORT, ...) or a number. Brokers have ids\n"
        "1..N (default %d); default topics have %d partitions.\n",
        MOCK_DEF_BROKERS, MOCK_DEF_PARTS);
}

/* Answer one command: "ok" (fmt NULL) or "error: ..." on a line of its
 * own. Returns 0 for ok, -1 for an error. */
static int mock_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int mock_reply(const char *fmt, ...)
{
    va_list ap;

    if (fmt) {
        fputs("error: ", stdout);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    } else {
        fputs("ok\n", stdout);
    }
    fflush(stdout);
    return fmt ? -1 : 0;
}

/* Parse a whole decimal integer within [lo, hi]. */
static bool mock_parse_int(const char *s, long lo, long hi, long *v)
{
    char *end;

    if (!s || !*s)
        return false;
    errno = 0;
    *v = strtol(s, &end, 10);
    return errno == 0 && *end == '\0' && *v >= lo && *v <= hi;
}

/* Parse NAME:PARTITIONS into t (name points into s, which is modified). */
static bool mock_parse_topic(char *s, struct mock_topic *t)
{
    char *colon = strrchr(s, ':');
    long n;

    if (!colon || colon == s || !mock_parse_int(colon + 1, 1, 10000, &n))
        return false;
    *colon = '\0';
    t->name = s;
    t->partitions = (int)n;
    return true;
}

static bool mock_parse_apikey(const char *s, int16_t *key)
{
    long n;

    for (size_t i = 0; i < sizeof(mock_apikeys) / sizeof(mock_apikeys[0]); i++)
        if (strcasecmp(s, mock_apikeys[i].name) == 0) {
            *key = mock_apikeys[i].key;
            return true;
        }
    if (!mock_parse_int(s, 0, 100, &n))
        return false;
    *key = (int16_t)n;
    return true;
}

/* An error code by number, by name, or by name with the RD_KAFKA_RESP_ERR_
 * prefix. */
static bool mock_parse_err(const char *s, rd_kafka_resp_err_t *err)
{
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    long n;

    if (strncmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0)
        s += 18;
    if (mock_parse_int(s, -200, 1000, &n)) {
        *err = (rd_kafka_resp_err_t)n;
        return true;
    }
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++)
        if (descs[i].name && strcasecmp(descs[i].name, s) == 0) {
            *err = descs[i].code;
            return true;
        }
    return false;
}

/* A broker id, or -1 for "all". */
static bool mock_parse_broker(const struct mock_state *st, const char *s, int *id)
{
    long n;

    if (s && strcmp(s, "all") == 0) {
        *id = -1;
        return true;
    }
    if (!mock_parse_int(s, 1, st->brokers, &n))
        return false;
    *id = (int)n;
    return true;
}

static int mock_create_topic(struct mock_state *st, const struct mock_topic *t)
{
    int rf = st->brokers < 3 ? st->brokers : 3;
    return rd_kafka_mock_topic_create(st->mc, t->name, t->partitions, rf);
}

/* Apply fn to one broker, or to each of 1..N for -1. */
static rd_kafka_resp_err_t mock_each_broker(struct mock_state *st, int id,
                                            rd_kafka_resp_err_t (*fn)(
                                                rd_kafka_mock_cluster_t *, int32_t))
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    for (int b = id < 0 ? 1 : id; b <= (id < 0 ? st->brokers : id); b++)
        if ((err = fn(st->mc, b)) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
    return err;
}

/*
 * Run one command line (split into at most 8 words) and answer it. Returns
 * 0 when it succeeded (or was blank), -1 when it was refused.
 */
static int mock_command(struct mock_state *st, char *line)
{
    char *w[8], *save = NULL;
    int n = 0, id;
    long v, count;
    int16_t key;
    rd_kafka_resp_err_t err, code;
    struct mock_topic t;

    for (char *tok = strtok_r(line, " \t\r\n", &save); tok && n < 8;
         tok = strtok_r(NULL, " \t\r\n", &save))
        w[n++] = tok;
    if (n == 0 || w[0][0] == '#')
        return 0;                       /* blank lines and comments: no answer */

    if (strcmp(w[0], "quit") == 0 && n == 1) {
        st->quit = true;
        return mock_reply(NULL);
    } else if (strcmp(w[0], "bootstrap") == 0 && n == 1) {
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(st->mc));
        return mock_reply(NULL);
    } else if ((strcmp(w[0], "down") == 0 || strcmp(w[0], "up") == 0) && n == 2) {
        if (!mock_parse_broker(st, w[1], &id))
            return mock_reply("broker must be 1..%d or all", st->brokers);
        err = mock_each_broker(st, id, strcmp(w[0], "down") == 0
                               ? rd_kafka_mock_broker_set_down
                               : rd_kafka_mock_broker_set_up);
        if (err)
            return mock_reply("%s", rd_kafka_err2str(err));
        return mock_reply(NULL);
    } else if (strcmp(w[0], "rtt") == 0 && n == 3) {
        if (!mock_parse_broker(st, w[1], &id))
            return mock_reply("broker must be 1..%d or all", st->brokers);
        if (!mock_parse_int(w[2], 0, INT_MAX, &v))
            return mock_reply("rtt must be milliseconds >= 0");
        for (int b = id < 0 ? 1 : id; b <= (id < 0 ? st->brokers : id); b++)
            if ((err = rd_kafka_mock_broker_set_rtt(st->mc, b, (int)v)))
                return mock_reply("%s", rd_kafka_err2str(err));
        return mock_reply(NULL);
    } else if (strcmp(w[0], "error") == 0 && n == 4 && mock_parse_apikey(w[1], &key)) {
        if (!mock_parse_err(w[2], &code))
            return mock_reply("unknown error code '%s'", w[2]);
        if (!mock_parse_int(w[3], 1, 100000, &count))
            return mock_reply("count must be 1..100000");
        rd_kafka_resp_err_t *errs = calloc((size_t)count, sizeof(*errs));
        if (!errs)
            return mock_reply("out of memory");
        for (long i = 0; i < count; i++)
            errs[i] = code;
        rd_kafka_mock_push_request_errors_array(st->mc, key, (size_t)count, errs);
        free(errs);
        return mock_reply(NULL);
    } else if (strcmp(w[0], "error") == 0 && (n == 4 || n == 5)) {
        /* error TOPIC Metadata ERR [COUNT]: the only per-topic error the
         * mock cluster of librdkafka 2.0 has. */
        if (!mock_parse_apikey(w[2], &key) || key != 3)
            return mock_reply("per-topic errors exist for Metadata only; "
                              "use: error APIKEY ERR COUNT");
        if (!mock_parse_err(w[3], &code))
            return mock_reply("unknown error code '%s'", w[3]);
        rd_kafka_mock_topic_set_error(st->mc, w[1], code);
        return mock_reply(NULL);
    } else if (strcmp(w[0], "clear") == 0 && n == 2) {
        if (!mock_parse_apikey(w[1], &key))
            return mock_reply("unknown request type '%s'", w[1]);
        rd_kafka_mock_clear_request_errors(st->mc, key);
        return mock_reply(NULL);
    } else if (strcmp(w[0], "leader") == 0 && n == 4) {
        if (!mock_parse_int(w[2], 0, INT_MAX, &v))
            return mock_reply("partition must be a number");
        if (!mock_parse_int(w[3], -1, st->brokers, &count) || count == 0)
            return mock_reply("leader must be 1..%d or -1", st->brokers);
        if ((err = rd_kafka_mock_partition_set_leader(st->mc, w[1], (int32_t)v,
                                                      (int32_t)count)))
            return mock_reply("%s", rd_kafka_err2str(err));
        return mock_reply(NULL);
    } else if (strcmp(w[0], "topic") == 0 && n == 2) {
        if (!mock_parse_topic(w[1], &t))
            return mock_reply("expected NAME:PARTITIONS");
        if ((err = mock_create_topic(st, &t)))
            return mock_reply("%s", rd_kafka_err2str(err));
        return mock_reply(NULL);
    } else {
        return mock_reply("unknown command or wrong arguments: %s (see --help)", w[0]);
    }
}

/* Log lines of the cluster's own handle go to stderr. */
static void mock_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                        const char *buf)
{
    fprintf(stderr, "mock_broker: %s: %s\n", fac, buf);
}

/*
 * Read commands from stdin (unless no_stdin) and signals from sfd until
 * EOF, quit or a signal. Lines longer than MOCK_LINE_MAX are refused.
 */
static void mock_serve(struct mock_state *st, int sfd, bool no_stdin)
{
    char buf[MOCK_LINE_MAX + 1];
    size_t len = 0;
    bool skipping = false;              /* inside an over-long line */

    while (!st->quit) {
        struct pollfd p[2] = { { sfd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 } };
        if (poll(p, no_stdin ? 1 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("mock_broker: poll");
            return;
        }
        if (p[0].revents) {             /* SIGTERM or SIGINT: say who sent it */
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                fprintf(stderr, "mock_broker: stopping on signal %u from pid %u\n",
                        si.ssi_signo, si.ssi_pid);
            return;
        }
        if (no_stdin || !p[1].revents)
            continue;
        ssize_t r = read(STDIN_FILENO, buf + len, MOCK_LINE_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;                     /* EOF (or a broken stdin) */
        len += (size_t)r;
        char *start = buf, *nl;
        while (!st->quit && (nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
            *nl = '\0';
            if (skipping)
                skipping = false;
            else
                mock_command(st, start);
            start = nl + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
        if (len == MOCK_LINE_MAX) {     /* no newline in a full buffer */
            if (!skipping)
                mock_reply("line longer than %d bytes", MOCK_LINE_MAX);
            skipping = true;
            len = 0;
        }
    }
}

int main(int argc, char **argv)
{
    struct mock_state st = { .brokers = MOCK_DEF_BROKERS };
    struct mock_topic topics[MOCK_MAX_TOPICS];
    size_t ntopics = 0;
    bool defaults = true, no_stdin = false;
    char errstr[512];
    rd_kafka_conf_t *conf = NULL;
    sigset_t sigs;
    int sfd = -1, rc = 1;
    long v;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            if (!mock_parse_int(argv[++i], 1, MOCK_MAX_BROKERS, &v)) {
                fprintf(stderr, "mock_broker: --brokers must be 1..%d\n", MOCK_MAX_BROKERS);
                return 2;
            }
            st.brokers = (int)v;
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            if (ntopics == MOCK_MAX_TOPICS || !mock_parse_topic(argv[++i], &topics[ntopics])) {
                fprintf(stderr, "mock_broker: --topic wants NAME:PARTITIONS (at most %d)\n",
                        MOCK_MAX_TOPICS);
                return 2;
            }
            ntopics++;
        } else if (strcmp(argv[i], "--no-default-topics") == 0) {
            defaults = false;
        } else if (strcmp(argv[i], "--no-stdin") == 0) {
            no_stdin = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            mock_usage(stdout);
            return 0;
        } else {
            mock_usage(stderr);
            return 2;
        }
    }

    /* Signals arrive through a descriptor, so no command is cut in half. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0 ||
        (sfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0) {
        perror("mock_broker: signalfd");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, mock_log_cb);
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        goto conf_fail;
    st.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!st.rk)
        goto conf_fail;
    conf = NULL;                        /* owned by rk now */
    st.mc = rd_kafka_mock_cluster_new(st.rk, st.brokers);
    if (!st.mc) {
        fprintf(stderr, "mock_broker: cannot create the mock cluster\n");
        goto fail;
    }
    for (size_t i = 0; defaults && mock_default_topics[i]; i++) {
        struct mock_topic t = { mock_default_topics[i], MOCK_DEF_PARTS };
        if (mock_create_topic(&st, &t) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "mock_broker: cannot create topic %s\n", t.name);
            goto fail;
        }
    }
    for (size_t i = 0; i < ntopics; i++) {
        rd_kafka_resp_err_t err = mock_create_topic(&st, &topics[i]);
        if (err) {
            fprintf(stderr, "mock_broker: cannot create topic %s: %s\n",
                    topics[i].name, rd_kafka_err2str(err));
            goto fail;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(st.mc));
    fflush(stdout);

    mock_serve(&st, sfd, no_stdin);
    rc = 0;
    goto fail;
conf_fail:
    fprintf(stderr, "mock_broker: %s\n", errstr);
fail:
    if (st.mc)
        rd_kafka_mock_cluster_destroy(st.mc);
    if (st.rk)
        rd_kafka_destroy(st.rk);
    if (conf)
        rd_kafka_conf_destroy(conf);
    close(sfd);
    return rc;
}
