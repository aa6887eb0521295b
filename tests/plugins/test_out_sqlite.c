/* test_out_sqlite.c: the stores driven through the harness and read back: out_sqlite, or out_postgres with --conninfo. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#ifdef HAVE_POSTGRESQL
#include <libpq-fe.h>
#endif

#include "harness.h"
#include "instance.h"
#include "log.h"
#include "../tap.h"

#define AGENT_A "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define AGENT_C "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define AGENT_G "99999999-9999-4999-8999-999999999999"
#define AGENT_X "11111111-1111-4111-8111-111111111111"
#define AGENT_Y "22222222-2222-4222-8222-222222222222"

/* The backend under test and the checker's own connection to it. */
static struct {
    bool pg;                            /* out_postgres (--conninfo) */
    const char *conninfo;
    char base[64];                      /* PG: prefix of this run's schemas */
    char dir[4096];                     /* SQLite: directory of the files */
    char db[64];                        /* name of the store in use */
    sqlite3 *lite;
#ifdef HAVE_POSTGRESQL
    PGconn *pgc;
#endif
    FILE *log;                          /* what the plugins logged */
} T;

static const char *plugin_path(void)
{
    static char path[4096];
    const char *dir = getenv("PIPIT_PLUGIN_DIR");

    if (!dir)
        plan_skip_all("PIPIT_PLUGIN_DIR is not set (run through make check)");
    snprintf(path, sizeof path, "%s/%s", dir, T.pg ? "out_postgres.so" : "out_sqlite.so");
    return path;
}

/* Everything logged since the last call (and forget it). */
static const char *log_taken(void)
{
    static char text[1 << 20];
    int fd = fileno(T.log);
    ssize_t n;

    fflush(T.log);
    n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        diag("cannot empty the log");
    return text;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the checker --------------------------------------------------------- */

static void checker_close(void)
{
    if (T.lite)
        sqlite3_close(T.lite);
    T.lite = NULL;
#ifdef HAVE_POSTGRESQL
    if (T.pgc)
        PQfinish(T.pgc);
    T.pgc = NULL;
#endif
}

/* Run sql on the checker; the first column of the first row as text into
 * out ("NULL" for NULL, "" for no row). Returns false on error. */
static bool checker_query(const char *sql, char *out, size_t outlen)
{
    out[0] = '\0';
#ifdef HAVE_POSTGRESQL
    if (T.pg) {
        PGresult *res = PQexec(T.pgc, sql);
        ExecStatusType st = PQresultStatus(res);
        bool good = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;

        if (!good)
            diag("checker: %s: %s", sql, PQresultErrorMessage(res));
        else if (st == PGRES_TUPLES_OK && PQntuples(res) > 0)
            snprintf(out, outlen, "%s", PQgetisnull(res, 0, 0) ? "NULL" : PQgetvalue(res, 0, 0));
        PQclear(res);
        return good;
    }
#endif
    sqlite3_stmt *s = NULL;
    const char *tail = sql;
    int rc = SQLITE_OK;

    while (rc == SQLITE_OK && tail && *tail) {
        sqlite3_finalize(s);
        s = NULL;
        rc = sqlite3_prepare_v2(T.lite, tail, -1, &s, &tail);
        if (rc != SQLITE_OK || !s)
            break;
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(s, 0);
            snprintf(out, outlen, "%s", t ? (const char *)t : "NULL");
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK)
        diag("checker: %s: %s", sql, sqlite3_errmsg(T.lite));
    sqlite3_finalize(s);
    return rc == SQLITE_OK;
}

/* The checker's text answer to a query (one of four rotating buffers). */
static const char *q_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *q_str(const char *fmt, ...)
{
    static char bufs[4][8192];
    static int n;
    char sql[4096], *out = bufs[n++ % 4];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (!checker_query(sql, out, sizeof bufs[0]))
        snprintf(out, sizeof bufs[0], "(error)");
    return out;
}

static int64_t q_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t q_int(const char *fmt, ...)
{
    char sql[4096], out[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (!checker_query(sql, out, sizeof out) || !out[0] || strcmp(out, "NULL") == 0)
        return -1;
    return strtoll(out, NULL, 10);
}

static double q_num(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static double q_num(const char *fmt, ...)
{
    char sql[4096], out[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (!checker_query(sql, out, sizeof out) || !out[0] || strcmp(out, "NULL") == 0)
        return NAN;
    return strtod(out, NULL);
}

/* Point the checker at store db (a file in T.dir, or a schema). */
static void checker_use(const char *db)
{
    checker_close();
#ifdef HAVE_POSTGRESQL
    if (T.pg) {
        char sql[256];
        T.pgc = PQconnectdb(T.conninfo);
        if (PQstatus(T.pgc) != CONNECTION_OK) {
            printf("Bail out! checker cannot connect: %s\n", PQerrorMessage(T.pgc));
            exit(1);
        }
        PQclear(PQexec(T.pgc, "SET client_min_messages = warning"));
        snprintf(sql, sizeof sql, "SET search_path TO %s_%s", T.base, db);
        q_str("%s", sql);
        return;
    }
#endif
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.db", T.dir, db);
    if (sqlite3_open(path, &T.lite) != SQLITE_OK) {
        printf("Bail out! checker cannot open %s\n", path);
        exit(1);
    }
    sqlite3_busy_timeout(T.lite, 5000);
}

/* ---- the plugin ------------------------------------------------------------ */

/*
 * Open the store plugin on store db with extra "key=value" options
 * (NULL-terminated) and run init(). Returns init's status.
 */
static int store_open(struct harness *h, const char *db, ...)
{
    char opts[8][4200], *kv[8];
    int n = 0, r;
    va_list ap;

    snprintf(T.db, sizeof T.db, "%s", db);
    if (T.pg) {
        snprintf(opts[n++], sizeof opts[0], "conninfo=%s", T.conninfo);
        snprintf(opts[n++], sizeof opts[0], "schema=%s_%s", T.base, db);
    } else {
        snprintf(opts[n++], sizeof opts[0], "path=%s/%s.db", T.dir, db);
    }
    va_start(ap, db);
    for (const char *o; n < 8 && (o = va_arg(ap, const char *)) != NULL; n++)
        snprintf(opts[n], sizeof opts[0], "%s", o);
    va_end(ap);
    for (int i = 0; i < n; i++)
        kv[i] = opts[i];
    if (harness_open(h, plugin_path(), kv, n, stderr) != PIPIT_OK) {
        printf("Bail out! cannot open %s\n", plugin_path());
        exit(1);
    }
    r = harness_init(h);
    if (r != PIPIT_OK)
        harness_close(h);
    return r;
}

/* Hand payload (lines of JSON) to flush() as batch agent/seq of kind. */
static int flush(struct harness *h, const char *agent, uint64_t seq, int kind,
                 const char *payload)
{
    uint32_t count = 0;
    for (const char *p = payload; *p; p++)
        count += *p == '\n';
    struct pipit_batch b = {
        .struct_size = sizeof b, .kind = kind, .seq = seq, .count = count,
        .payload = payload, .payload_len = strlen(payload), .agent_id = agent,
        .created_ns = now_ns(),
    };
    return h->ins->plugin->desc.flush(h->ins, h->ins->ctx, &b);
}

/* A record line: JSON of kind with the common fields, origin when agent is
 * not NULL, then rest (the kind's fields and labels, without braces). One of
 * sixteen rotating buffers. */
static const char *rec(const char *kind, int64_t time, const char *origin_agent,
                       int64_t oseq, int64_t oidx, const char *rest)
{
    static char bufs[16][4096];
    static int n;
    char *b = bufs[n++ % 16], origin[160] = "";

    if (origin_agent)
        snprintf(origin, sizeof origin, ",\"origin\":{\"agent\":\"%s\",\"seq\":%" PRId64
                 ",\"index\":%" PRId64 "}", origin_agent, oseq, oidx);
    snprintf(b, sizeof bufs[0], "{\"kind\":\"%s\",\"time\":%" PRId64 ",\"host\":\"web-01\","
             "\"instance\":\"test\"%s,%s}\n", kind, time, origin, rest);
    return b;
}

/* Concatenate up to 16 lines (NULL-terminated) into a static payload. */
static const char *lines(const char *first, ...)
{
    static char buf[1 << 16];
    va_list ap;

    buf[0] = '\0';
    va_start(ap, first);
    for (const char *l = first; l; l = va_arg(ap, const char *))
        strncat(buf, l, sizeof buf - strlen(buf) - 1);
    va_end(ap);
    return buf;
}

#define GAUGE(v, labels) "\"name\":\"cpu.x\",\"type\":\"gauge\",\"value\":" v ",\"labels\":" labels

/* ---- the tests ------------------------------------------------------------- */

/* Every kind with every field, read back column by column. */
static void test_kinds(void)
{
    struct harness h;
    char payload[8192];

    is_int(store_open(&h, "kinds", NULL), PIPIT_OK, "kinds: init");
    checker_use("kinds");
    snprintf(payload, sizeof payload, "%s%s%s%s",
             rec("metric", 1000, NULL, 0, 0, GAUGE("1.5", "{\"b\":\"2\",\"a\":\"1\"}")),
             rec("metric", 1001, NULL, 0, 0, "\"name\":\"req.total\",\"type\":\"counter\","
                 "\"value\":42,\"labels\":{}"),
             rec("metric", 1002, NULL, 0, 0, "\"name\":\"req.seconds\",\"type\":\"histogram\","
                 "\"buckets\":[{\"le\":0.5,\"count\":1},{\"le\":\"+Inf\",\"count\":3}],"
                 "\"sum\":2.25,\"count\":3,\"labels\":{\"path\":\"/a\\\"b\\n\\u00e9\"}"),
             rec("metric", 1003, NULL, 0, 0, GAUGE("2.5", "{\"a\":\"1\",\"b\":\"2\"}")));
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, payload), PIPIT_OK, "flush metrics");
    is_int(q_int("SELECT count(*) FROM samples"), 4, "4 samples");
    is_int(q_int("SELECT count(*) FROM series"), 3, "3 series: label order does not matter");
    is_str(q_str("SELECT labels FROM series WHERE name = 'cpu.x'"), "{\"a\":\"1\",\"b\":\"2\"}",
           "labels are canonical JSON (sorted keys)");
    is_int(q_int("SELECT count(DISTINCT series_id) FROM samples WHERE idx IN (0, 3)"), 1,
           "samples 0 and 3 share their series");
    is_str(q_str("SELECT name || '|' || host || '|' || instance FROM series s JOIN samples m "
                 "ON m.series_id = s.id WHERE m.idx = 1"), "req.total|web-01|test",
           "series name, host, instance");
    is_str(q_str("SELECT agent_id || '|' || seq || '|' || idx || '|' || time || '|' || type "
                 "FROM samples WHERE idx = 0"), AGENT_A "|1|0|1000|gauge",
           "sample key, time and type");
    ok(q_num("SELECT value FROM samples WHERE idx = 0") == 1.5, "gauge value");
    ok(q_num("SELECT value FROM samples WHERE idx = 1") == 42, "counter value");
    is_str(q_str("SELECT type FROM samples WHERE idx = 1"), "counter", "counter type");
    is_str(q_str("SELECT coalesce(buckets, 'none') FROM samples WHERE idx = 0"), "none",
           "a gauge has no buckets");
    is_str(q_str("SELECT buckets FROM samples WHERE idx = 2"),
           "[{\"le\":0.5,\"count\":1},{\"le\":\"+Inf\",\"count\":3}]", "histogram buckets as JSON");
    ok(q_num("SELECT sum FROM samples WHERE idx = 2") == 2.25, "histogram sum");
    is_int(q_int("SELECT count FROM samples WHERE idx = 2"), 3, "histogram count");
    is_str(q_str("SELECT coalesce(value, -1) FROM samples WHERE idx = 2"), "-1",
           "a histogram has no value");
    is_str(q_str("SELECT labels FROM series WHERE name = 'req.seconds'"),
           "{\"path\":\"/a\\\"b\\n\xc3\xa9\"}",
           "label escapes: quote and newline escaped, UTF-8 kept");

    snprintf(payload, sizeof payload, "%s%s",
             rec("log", 2000, NULL, 0, 0, "\"level\":\"warn\",\"message\":\"disk\\tfull\","
                 "\"source\":\"/var/log/x\",\"offset\":1234,\"labels\":{\"unit\":\"a\"}"),
             rec("log", 2001, NULL, 0, 0, "\"level\":\"info\",\"message\":\"hello\","
                 "\"labels\":{}"));
    is_int(flush(&h, AGENT_A, 2, PIPIT_LOG, payload), PIPIT_OK, "flush logs");
    is_str(q_str("SELECT agent_id || '|' || seq || '|' || idx || '|' || time || '|' || host || "
                 "'|' || instance || '|' || level || '|' || message || '|' || source || '|' || "
                 "source_offset || '|' || labels FROM logs WHERE idx = 0"),
           AGENT_A "|2|0|2000|web-01|test|warn|disk\tfull|/var/log/x|1234|{\"unit\":\"a\"}",
           "log with every field");
    is_str(q_str("SELECT coalesce(source, 'none') || '|' || coalesce(source_offset, -1) FROM "
                 "logs WHERE idx = 1"), "none|-1", "log without source and offset");

    is_int(flush(&h, AGENT_A, 3, PIPIT_COST,
                 rec("cost", 3000, NULL, 0, 0, "\"amount\":12.5,\"currency\":\"EUR\","
                     "\"resource\":\"vm.hours\",\"period_start\":100,\"period_end\":200,"
                     "\"labels\":{\"team\":\"web\"}")), PIPIT_OK, "flush costs");
    is_str(q_str("SELECT agent_id || '|' || seq || '|' || idx || '|' || time || '|' || host || "
                 "'|' || instance || '|' || currency || '|' || resource || '|' || period_start "
                 "|| '|' || period_end || '|' || labels FROM costs"),
           AGENT_A "|3|0|3000|web-01|test|EUR|vm.hours|100|200|{\"team\":\"web\"}",
           "cost with every field");
    ok(q_num("SELECT amount FROM costs") == 12.5, "cost amount");
    is_int(q_int("SELECT amount_micros FROM costs"), 12500000,
           "a cost line with only amount gets amount_micros from it");

    snprintf(payload, sizeof payload, "%s%s",
             rec("event", 4000, NULL, 0, 0, "\"name\":\"step.finished\",\"status\":\"failed\","
                 "\"message\":\"exit 3\",\"labels\":{\"plan\":\"p1\"}"),
             rec("event", 4001, NULL, 0, 0, "\"name\":\"agent.started\",\"status\":\"ok\","
                 "\"labels\":{}"));
    is_int(flush(&h, AGENT_A, 4, PIPIT_EVENT, payload), PIPIT_OK, "flush events");
    is_str(q_str("SELECT agent_id || '|' || seq || '|' || idx || '|' || time || '|' || host || "
                 "'|' || instance || '|' || name || '|' || status || '|' || message || '|' || "
                 "labels FROM events WHERE idx = 0"),
           AGENT_A "|4|0|4000|web-01|test|step.finished|failed|exit 3|{\"plan\":\"p1\"}",
           "event with every field");
    is_str(q_str("SELECT coalesce(message, 'none') FROM events WHERE idx = 1"), "none",
           "event without a message");
    is_str(q_str("SELECT kind || '|' || count || '|' || skipped FROM batches WHERE seq = 4"),
           "event|2|0", "ledger row of the event batch");
    is_int(q_int("SELECT version FROM schema_version"), 2, "schema_version is 2");
    harness_close(&h);

    /* reopening finds the tables and keeps the rows */
    is_int(store_open(&h, "kinds", NULL), PIPIT_OK, "kinds: init again on existing tables");
    is_int(q_int("SELECT count(*) FROM samples"), 4, "rows kept");
    is_int(q_int("SELECT count(*) FROM schema_version"), 1, "the version is not added twice");
    harness_close(&h);
    log_taken();
}

/* The same batch flushed twice stores each record once. */
static void test_idempotent(void)
{
    struct harness h;
    const char *p;

    is_int(store_open(&h, "dup", NULL), PIPIT_OK, "dup: init");
    checker_use("dup");
    p = lines(rec("metric", 10, NULL, 0, 0, GAUGE("1", "{\"n\":\"1\"}")),
              rec("metric", 11, NULL, 0, 0, GAUGE("2", "{\"n\":\"2\"}")),
              rec("metric", 12, NULL, 0, 0, GAUGE("3", "{\"n\":\"3\"}")), NULL);
    is_int(flush(&h, AGENT_A, 7, PIPIT_METRIC, p), PIPIT_OK, "first delivery");
    is_int(flush(&h, AGENT_A, 7, PIPIT_METRIC, p), PIPIT_OK, "second delivery");
    is_int(q_int("SELECT count(*) FROM samples"), 3, "3 samples, not 6");
    is_int(q_int("SELECT count(*) FROM series"), 3, "3 series");
    is_int(q_int("SELECT count(*) FROM batches"), 1, "one ledger row");
    is_int(q_int("SELECT count FROM batches WHERE agent_id = '" AGENT_A "' AND seq = 7"), 3,
           "its count is 3");
    is_str(q_str("SELECT batches || '|' || records || '|' || last_seq || '|' || gaps FROM agents"),
           "1|3|7|0", "agent: 1 batch, 3 records");
    harness_close(&h);

    /* a restarted sink (empty caches) still ignores them */
    is_int(store_open(&h, "dup", NULL), PIPIT_OK, "dup: init again");
    is_int(flush(&h, AGENT_A, 7, PIPIT_METRIC, p), PIPIT_OK, "third delivery after a restart");
    is_int(q_int("SELECT count(*) FROM samples"), 3, "still 3 samples");
    harness_close(&h);
    /* at its end the sink logs where its flushes spent their time, stage by stage */
    const char *l = log_taken(), *st = strstr(l, "time per stage: ");
    ok(st && (T.pg ? strstr(st, "parse and encode ") && strstr(st, ", ledger and commit ")
                   : strstr(st, "parse ") && strstr(st, ", series ") && strstr(st, ", insert ") &&
                     strstr(st, ", ledger ") && strstr(st, ", begin and commit ")),
       "the time per stage is logged, every stage named");
}

/* Relayed records keep their origin key, however they are re-batched. */
static void test_origin(void)
{
    struct harness h;

    is_int(store_open(&h, "origin", NULL), PIPIT_OK, "origin: init");
    checker_use("origin");
    is_int(flush(&h, AGENT_C, 10, PIPIT_METRIC,
                 lines(rec("metric", 1, AGENT_X, 5, 0, GAUGE("1", "{}")),
                       rec("metric", 2, AGENT_X, 5, 1, GAUGE("2", "{}")),
                       rec("metric", 3, AGENT_Y, 7, 0, GAUGE("3", "{}")), NULL)),
           PIPIT_OK, "carrier batch 10");
    is_int(flush(&h, AGENT_C, 11, PIPIT_METRIC,
                 lines(rec("metric", 2, AGENT_X, 5, 1, GAUGE("2", "{}")),
                       rec("metric", 1, AGENT_X, 5, 0, GAUGE("1", "{}")),
                       rec("metric", 4, AGENT_X, 5, 2, GAUGE("4", "{}")), NULL)),
           PIPIT_OK, "carrier batch 11: two of the same records, one new");
    is_int(q_int("SELECT count(*) FROM samples"), 4, "4 samples");
    is_int(q_int("SELECT count(*) FROM samples WHERE agent_id = '" AGENT_X "' AND seq = 5"), 3,
           "keyed by origin X/5");
    is_int(q_int("SELECT idx FROM samples WHERE time = 4"), 2, "origin index kept");
    is_int(q_int("SELECT count(*) FROM samples WHERE agent_id = '" AGENT_C "'"), 0,
           "none keyed by the carrier");
    is_int(q_int("SELECT count FROM batches WHERE agent_id = '" AGENT_X "' AND seq = 5"), 3,
           "ledger X/5 counts 3 across both carriers");
    is_int(q_int("SELECT count FROM batches WHERE agent_id = '" AGENT_Y "' AND seq = 7"), 1,
           "ledger Y/7 counts 1");
    is_str(q_str("SELECT batches || '|' || records || '|' || host FROM agents WHERE agent_id = '"
                 AGENT_X "'"), "1|3|web-01", "agent X: 1 batch, 3 records, its host");
    is_str(q_str("SELECT batches || '|' || records FROM agents WHERE agent_id = '" AGENT_C "'"),
           "2|0", "carrier C: 2 batches, no records of its own");

    is_int(flush(&h, AGENT_C, 12, PIPIT_METRIC,
                 lines(rec("metric", 5, NULL, 0, 0, GAUGE("5", "{}")),
                       rec("metric", 6, AGENT_X, 5, 3, GAUGE("6", "{}")), NULL)),
           PIPIT_OK, "carrier batch 12: one own record, one relayed");
    is_int(q_int("SELECT idx FROM samples WHERE agent_id = '" AGENT_C "' AND seq = 12"), 0,
           "own record keyed by the carrier batch and its line");
    is_int(q_int("SELECT count FROM batches WHERE agent_id = '" AGENT_X "' AND seq = 5"), 4,
           "ledger X/5 now 4");
    is_str(q_str("SELECT batches || '|' || records || '|' || gaps FROM agents WHERE agent_id = '"
                 AGENT_C "'"), "3|1|0", "carrier C: 3 batches, 1 record, no gap");
    harness_close(&h);
    log_taken();
}

/* Bad lines are skipped and counted; good lines around them are stored. */
static void test_malformed(void)
{
    struct harness h;
    const char *log;

    is_int(store_open(&h, "bad", NULL), PIPIT_OK, "bad: init");
    checker_use("bad");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC,
                 lines(rec("metric", 1, NULL, 0, 0, GAUGE("1", "{}")),                  /* 0 */
                       "not json\n",                                                     /* 1 */
                       rec("trace", 1, NULL, 0, 0, "\"labels\":{}"),                     /* 2 */
                       rec("metric", 1, NULL, 0, 0, "\"name\":\"m\",\"type\":\"gauge\","
                           "\"labels\":{}"),                                             /* 3 */
                       rec("log", 1, NULL, 0, 0, "\"level\":\"info\",\"message\":\"m\","
                           "\"labels\":{}"),                                             /* 4 */
                       rec("metric", 1, NULL, 0, 0, "\"name\":\"h\",\"type\":\"histogram\","
                           "\"buckets\":[{\"le\":2,\"count\":1},{\"le\":1,\"count\":2}],"
                           "\"sum\":1,\"count\":2,\"labels\":{}"),                        /* 5 */
                       rec("metric", 1, "short", 1, 0, GAUGE("1", "{}")),                /* 6 */
                       rec("metric", 7, NULL, 0, 0, GAUGE("7", "{}")),                   /* 7 */
                       "\n",                                                             /* 8 */
                       rec("metric", 1, NULL, 0, 0, GAUGE("1", "{\"a\":1}")),            /* 9 */
                       "[1,2]\n",                                                        /* 10 */
                       rec("cost", 1, NULL, 0, 0, "\"amount\":1,\"currency\":\"usd\","
                           "\"resource\":\"r\",\"period_start\":0,\"period_end\":1,"
                           "\"labels\":{}"),                                             /* 11 */
                       "{\"kind\":\"metric\",\"time\":1,\"host\":\"h\",\"instance\":\"i\","
                           "\"name\":\"m\",\"type\":\"gauge\",\"value\":1,"
                           "\"labels\":{}",                      /* 12: cut short, no newline */
                       NULL)),
           PIPIT_OK, "a batch with bad lines is delivered");
    is_int(q_int("SELECT count(*) FROM samples"), 2, "2 good samples stored");
    is_str(q_str("SELECT min(idx) || ',' || max(idx) FROM samples"), "0,7",
           "at their line index");
    is_int(q_int("SELECT count(*) FROM logs"), 1, "a log line in a metric batch is stored too");
    is_str(q_str("SELECT count || '|' || skipped FROM batches"), "3|10",
           "ledger: 3 stored, 10 skipped");
    is_int(q_int("SELECT skipped FROM agents"), 10, "agent: 10 skipped");
    log = log_taken();
    ok(strstr(log, "line 1 skipped: not JSON") != NULL, "bad JSON logged with its line");
    ok(strstr(log, "line 2 skipped: unknown kind") != NULL, "unknown kind logged");
    ok(strstr(log, "line 3 skipped: metric \\\"m\\\" without a value") != NULL ||
       strstr(log, "line 3 skipped: metric \"m\" without a value") != NULL,
       "missing field logged");
    ok(strstr(log, "line 5 skipped: histogram") != NULL, "bad histogram logged");
    ok(strstr(log, "line 6 skipped: origin.agent") != NULL, "bad origin logged");
    ok(strstr(log, "line 11 skipped: cost record needs a 3-letter currency") != NULL,
       "bad currency logged");

    is_int(flush(&h, AGENT_A, 2, PIPIT_METRIC, ""), PIPIT_OK, "an empty batch is delivered");
    is_str(q_str("SELECT count || '|' || skipped FROM batches WHERE seq = 2"), "0|0",
           "and noted in the ledger");
    harness_close(&h);
    log_taken();
}

/* The ledger counts batches and the holes between sequence numbers. */
static void test_gaps(void)
{
    static const struct { uint64_t seq; int64_t gaps, batches; const char *why; } steps[] = {
        { 1, 0, 1, "seq 1" },
        { 2, 0, 2, "seq 2" },
        { 4, 1, 3, "seq 4: one gap" },
        { 3, 0, 4, "seq 3 fills it" },
        { 2, 0, 4, "seq 2 again changes nothing" },
        { 7, 1, 5, "seq 7: a gap" },
        { 6, 1, 6, "seq 6 shrinks it" },
        { 10, 2, 7, "seq 10: a second gap" },
        { 8, 2, 8, "seq 8 shrinks the first" },
        { 9, 1, 9, "seq 9 closes it" },
        { 5, 0, 10, "seq 5 closes the last" },
        { INT64_MAX, 1, 11, "the largest seq: a gap, and its neighbour above is not computed" },
        { INT64_MAX - 1, 1, 12, "the one below it leaves the gap as it is" },
    };
    struct harness h;
    char ev[512];

    is_int(store_open(&h, "gaps", NULL), PIPIT_OK, "gaps: init");
    checker_use("gaps");
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        snprintf(ev, sizeof ev, "%s",
                 rec("event", 1, NULL, 0, 0, "\"name\":\"e\",\"status\":\"ok\",\"labels\":{}"));
        if (flush(&h, AGENT_G, steps[i].seq, PIPIT_EVENT, ev) != PIPIT_OK)
            diag("flush of seq %" PRIu64 " failed", steps[i].seq);
        char want[64];
        snprintf(want, sizeof want, "%" PRId64 "|%" PRId64, steps[i].gaps, steps[i].batches);
        is_str(q_str("SELECT gaps || '|' || batches FROM agents"), want, "%s", steps[i].why);
    }
    is_str(q_str("SELECT last_seq || '|' || records FROM agents"), "9223372036854775807|12",
           "last_seq and records");
    ok(q_int("SELECT last_seen FROM agents") >= q_int("SELECT first_seen FROM agents") &&
       q_int("SELECT first_seen FROM agents") > 0, "first_seen <= last_seen");
    is_str(q_str("SELECT host FROM agents"), h.host_name, "the carrier's host is the sink's");
    harness_close(&h);
    log_taken();
}

/* out_sqlite's retention: old records go in bounded steps, new ones stay. */
static void test_retention(void)
{
    struct harness h;
    int64_t now = now_ns(), old = now - 3600 * 1000000000LL, future = now + 3600 * 1000000000LL;
    char *payload = malloc(5000 * 200);
    size_t len = 0;
    double t0;

    if (T.pg) {
        skip(7, "out_postgres has no retention option");
        free(payload);
        return;
    }
    is_int(store_open(&h, "retention", "retention=300ms", NULL), PIPIT_OK, "retention: init");
    checker_use("retention");
    for (int i = 0; i < 4500; i++) {
        char rest[128];
        snprintf(rest, sizeof rest, GAUGE("1", "{\"v\":\"%d\"}"), i % 50);
        len += (size_t)sprintf(payload + len, "%s", rec("metric", old + i, NULL, 0, 0, rest));
    }
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, payload), PIPIT_OK, "4500 old samples");
    is_int(flush(&h, AGENT_A, 2, PIPIT_METRIC,
                 lines(rec("metric", future, NULL, 0, 0, GAUGE("1", "{}")),
                       rec("metric", future + 1, NULL, 0, 0, GAUGE("2", "{}")), NULL)),
           PIPIT_OK, "2 future samples");
    is_int(flush(&h, AGENT_A, 3, PIPIT_LOG,
                 rec("log", old, NULL, 0, 0, "\"level\":\"info\",\"message\":\"m\","
                     "\"labels\":{}")), PIPIT_OK, "1 old log");
    t0 = mono_s();
    while (mono_s() - t0 < 10 && (q_int("SELECT count(*) FROM samples") > 2 ||
                                   q_int("SELECT count(*) FROM batches") > 0)) {
        uv_run(&h.loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    is_int(q_int("SELECT count(*) FROM samples"), 2, "old samples deleted, new ones kept");
    ok(q_int("SELECT count(*) FROM logs") == 0 && q_int("SELECT count(*) FROM batches") == 0,
       "old logs and old ledger rows deleted too");
    ok(strstr(log_taken(), "more to go") != NULL, "in more than one step");
    harness_close(&h);
    free(payload);
    log_taken();
}

/* A cost line for the store: amount and micros as JSON text. */
#define COST(amount, micros) \
    "\"amount\":" amount micros ",\"currency\":\"USD\",\"resource\":\"instance\"," \
    "\"period_start\":1,\"period_end\":2,\"labels\":{}"

/*
 * Exact money: amount_micros is stored as an integer and sums exactly where
 * the doubles drift; a store of schema version 1 (costs without the column)
 * is migrated at init, its old rows backfilled from amount.
 */
static void test_money(void)
{
    struct harness h;
    char payload[8192];

    is_int(store_open(&h, "money", NULL), PIPIT_OK, "money: init");
    checker_use("money");
    /* ten costs of 0.1: the doubles sum to 0.9999999999999999 */
    payload[0] = '\0';
    for (int i = 0; i < 10; i++)
        strcat(payload, rec("cost", 1000 + i, NULL, 0, 0,
                            COST("0.1", ",\"amount_micros\":100000")));
    is_int(flush(&h, AGENT_A, 1, PIPIT_COST, payload), PIPIT_OK, "flush ten exact costs");
    is_int(q_int("SELECT sum(amount_micros) FROM costs"), 1000000,
           "their amount_micros sum to exactly 1.000000");
    is_int(flush(&h, AGENT_A, 2, PIPIT_COST,
                 rec("cost", 2000, NULL, 0, 0,
                     "\"amount_micros\":92233720368547758,\"currency\":\"USD\","
                     "\"resource\":\"r\",\"period_start\":1,\"period_end\":2,"
                     "\"labels\":{}")), PIPIT_OK, "flush a cost with only amount_micros");
    is_int(q_int("SELECT amount_micros FROM costs WHERE seq = 2"), 92233720368547758LL,
           "a large amount_micros is stored to the micro");
    is_int(flush(&h, AGENT_A, 3, PIPIT_COST,
                 lines(rec("cost", 3000, NULL, 0, 0, COST("1", ",\"amount_micros\":\"7\"")),
                       rec("cost", 3001, NULL, 0, 0, COST("9.3e12", "")),
                       rec("cost", 3002, NULL, 0, 0, COST("0.0000125", "")), NULL)),
           PIPIT_OK, "flush costs with a bad amount_micros and an amount too large");
    is_int(q_int("SELECT skipped FROM batches WHERE seq = 3"), 2, "both are skipped");
    is_int(q_int("SELECT amount_micros FROM costs WHERE seq = 3"), 13,
           "an amount alone is rounded half away from zero");
    ok(strstr(log_taken(), "amount_micros that is not an integer") != NULL,
       "the reason is logged");
    harness_close(&h);

    /* back to version 1, as an older pipit left it, with a row of its own */
    q_str("ALTER TABLE costs DROP COLUMN amount_micros");
    q_str("UPDATE schema_version SET version = 1");
    q_str("INSERT INTO costs (agent_id, seq, idx, time, host, instance, amount, currency, "
          "resource, period_start, period_end, labels) VALUES ('" AGENT_C "', 1, 0, 5, 'h', "
          "'i', 0.0416, 'USD', 'instance', 1, 2, '{}')");
    checker_close();
    is_int(store_open(&h, "money", NULL), PIPIT_OK, "a version 1 store opens");
    checker_use("money");
    is_int(q_int("SELECT version FROM schema_version"), 2, "and is migrated to version 2");
    is_int(q_int("SELECT amount_micros FROM costs WHERE agent_id = '" AGENT_C "'"), 41600,
           "its old cost gets amount_micros from amount");
    is_int(q_int("SELECT sum(amount_micros) FROM costs WHERE agent_id = '" AGENT_A "' AND seq = 1"), 1000000,
           "the rows of the dropped column are backfilled from amount, rounded");
    is_int(flush(&h, AGENT_A, 4, PIPIT_COST,
                 rec("cost", 4000, NULL, 0, 0, COST("0.5", ",\"amount_micros\":500000"))),
           PIPIT_OK, "flush into the migrated store");
    is_int(q_int("SELECT amount_micros FROM costs WHERE seq = 4"), 500000, "stored exactly");
    ok(strstr(log_taken(), "to schema version 2") != NULL, "the migration is logged");
    harness_close(&h);
    log_taken();
}

/* Tables of a newer schema version are refused at init. */
static void test_version(void)
{
    struct harness h;

    checker_use("newer");
    if (T.pg)
        q_str("CREATE SCHEMA %s_newer; CREATE TABLE %s_newer.schema_version (version integer "
              "NOT NULL); INSERT INTO %s_newer.schema_version VALUES (99)",
              T.base, T.base, T.base);
    else
        q_str("CREATE TABLE schema_version (version INTEGER NOT NULL); "
              "INSERT INTO schema_version VALUES (99)");
    is_int(store_open(&h, "newer", NULL), PIPIT_ECONFIG, "a newer schema version is refused");
    ok(strstr(log_taken(), "version 99, newer than the 2") != NULL, "with a clear error");
    if (T.pg)
        skip(1, "synchronous is an option of out_sqlite");
    else
        is_int(store_open(&h, "sync", "synchronous=sometimes", NULL), PIPIT_ECONFIG,
               "synchronous is full or normal");
    log_taken();
}

/* PostgreSQL: end the sink's connection from the server side. */
static void kill_sink(void)
{
    is_int(q_int("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                 "pg_stat_activity WHERE application_name = 'pipit' AND "
                 "datname = current_database()) t"), 1, "the sink's connection is killed");
    usleep(100000);
}

/* A busy database (SQLite) or a lost connection (PostgreSQL) asks for the
 * batch again; the next flush stores it once. */
static void test_retry(void)
{
    struct harness h;
    const char *p = lines(rec("metric", 1, NULL, 0, 0, GAUGE("1", "{}")),
                          rec("metric", 2, NULL, 0, 0, GAUGE("2", "{}")), NULL);

    is_int(store_open(&h, "retry", T.pg ? NULL : "busy_timeout=50ms", NULL), PIPIT_OK,
           "retry: init");
    if (T.pg) {
        checker_use("retry");
        kill_sink();
    } else {
        checker_use("retry");
        q_str("BEGIN IMMEDIATE");
    }
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, p), PIPIT_RETRY, "flush: retry later");
    if (!T.pg)
        q_str("COMMIT");
    is_int(q_int("SELECT count(*) FROM samples"), 0, "nothing stored");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, p), PIPIT_OK, "the next flush stores it");
    is_int(q_int("SELECT count(*) FROM samples"), 2, "2 samples");
    is_int(q_int("SELECT batches FROM agents"), 1, "one batch in the ledger");
    ok(strstr(log_taken(), T.pg ? "connection lost" : "will retry") != NULL,
       "the retry is logged");
    harness_close(&h);
    log_taken();
}

#ifdef HAVE_POSTGRESQL
/* out_postgres never logs the connection string, connects lazily and
 * refuses a string libpq cannot read. */
static void test_pg_connection(void)
{
    struct harness h;
    char opt[512], *kv[1] = { opt };
    const char *log;

    snprintf(opt, sizeof opt, "conninfo=host=127.0.0.1 port=1 user=nobody "
             "password=sekrit-pw dbname=x connect_timeout=2");
    if (harness_open(&h, plugin_path(), kv, 1, stderr) != PIPIT_OK) {
        printf("Bail out! cannot open %s\n", plugin_path());
        exit(1);
    }
    is_int(harness_init(&h), PIPIT_OK, "an unreachable server is not an init error");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC,
                 rec("metric", 1, NULL, 0, 0, GAUGE("1", "{}"))), PIPIT_RETRY,
           "flush without a server: retry");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC,
                 rec("metric", 1, NULL, 0, 0, GAUGE("1", "{}"))), PIPIT_RETRY,
           "again at once: retry without waiting for a connection (back-off)");
    harness_close(&h);
    log = log_taken();
    ok(strstr(log, "cannot connect") != NULL, "the failure is logged");
    ok(strstr(log, "sekrit-pw") == NULL, "the password is never logged");

    snprintf(opt, sizeof opt, "conninfo=password=sekrit-pw 'unterminated");
    if (harness_open(&h, plugin_path(), kv, 1, stderr) != PIPIT_OK) {
        printf("Bail out! cannot open %s\n", plugin_path());
        exit(1);
    }
    is_int(harness_init(&h), PIPIT_ECONFIG, "a malformed connection string is refused");
    log = log_taken();
    ok(strstr(log, "not a libpq connection string") != NULL, "with a reason");
    ok(strstr(log, "sekrit-pw") == NULL, "that does not show the string");
    if (h.ins)
        harness_close(&h);
}

/* The numbers of out_postgres's "series cache:" line in log (at fini):
 * ids reused, looked up, evicted, held, batches by COPY BINARY. */
struct cache_stats {
    unsigned long long reused, looked_up, evicted, held, binary;
};

static struct cache_stats cache_stats(const char *log)
{
    struct cache_stats c = { 0, 0, 0, 0, 0 };
    const char *p = strstr(log, "series cache: ");

    if (!p || sscanf(p, "series cache: %llu ids reused, %llu looked up, %llu evicted, "
                     "%llu held; %llu batches", &c.reused, &c.looked_up, &c.evicted,
                     &c.held, &c.binary) != 5)
        diag("no series cache line in the log");
    return c;
}

/* A gauge of series n (label n) with value n. */
static const char *gauge_n(int64_t time, int n)
{
    char rest[128];

    snprintf(rest, sizeof rest, "\"name\":\"cpu.x\",\"type\":\"gauge\",\"value\":%d,"
             "\"labels\":{\"n\":\"%d\"}", n, n);
    return rec("metric", time, NULL, 0, 0, rest);
}

/* Samples whose series_id names no series, or a series of another label
 * than their value says (gauge_n). */
static int64_t wrong_series(void)
{
    return q_int("SELECT count(*) FROM samples s LEFT JOIN series se ON se.id = s.series_id "
                 "WHERE se.id IS NULL OR se.labels <> '{\"n\":\"' || s.value::int || '\"}'");
}

/* Series ids are cached per connection and reused by the next batches;
 * series_cache=0 looks them up each time; the bound holds. */
static void test_pg_cache(void)
{
    struct harness h;
    struct cache_stats c;
    const char *p = lines(gauge_n(1, 1), gauge_n(2, 2), gauge_n(3, 3), gauge_n(4, 1), NULL);
    char big[4096] = "";

    is_int(store_open(&h, "cache", NULL), PIPIT_OK, "cache: init");
    checker_use("cache");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, p), PIPIT_OK, "batch 1: 3 new series");
    is_int(flush(&h, AGENT_A, 2, PIPIT_METRIC, p), PIPIT_OK, "batch 2: the same series");
    harness_close(&h);
    c = cache_stats(log_taken());
    is_int((int64_t)c.looked_up, 3, "the 3 series are looked up once");
    is_int((int64_t)c.reused, 4, "batch 2's 4 samples take their ids from the cache");
    is_int((int64_t)c.binary, 2, "both batches by COPY BINARY");
    is_int(q_int("SELECT count(*) FROM samples"), 8, "8 samples");
    is_int(q_int("SELECT count(*) FROM series"), 3, "3 series");
    is_int(wrong_series(), 0, "each sample names its own series");

    is_int(store_open(&h, "cache", "series_cache=0", NULL), PIPIT_OK, "series_cache=0: init");
    is_int(flush(&h, AGENT_A, 3, PIPIT_METRIC, p), PIPIT_OK, "batch 3");
    is_int(flush(&h, AGENT_A, 4, PIPIT_METRIC, p), PIPIT_OK, "batch 4");
    harness_close(&h);
    c = cache_stats(log_taken());
    is_int((int64_t)c.reused, 0, "no cache: no id reused");
    is_int((int64_t)c.looked_up, 6, "each batch looks its 3 series up");
    is_int((int64_t)c.held, 0, "and none is held");

    for (int n = 10; n < 20; n++)
        strcat(big, gauge_n(n, n));
    is_int(store_open(&h, "cache", "series_cache=4", NULL), PIPIT_OK, "series_cache=4: init");
    is_int(flush(&h, AGENT_A, 5, PIPIT_METRIC, big), PIPIT_OK, "batch 5: 10 new series");
    is_int(flush(&h, AGENT_A, 6, PIPIT_METRIC, big), PIPIT_OK, "batch 6: the same");
    is_int(flush(&h, AGENT_A, 7, PIPIT_METRIC, p), PIPIT_OK, "batch 7: older series");
    harness_close(&h);
    c = cache_stats(log_taken());
    ok(c.held <= 4, "the cache holds at most 4 ids (%llu)", c.held);
    ok(c.evicted > 0, "and evicts to stay there (%llu)", c.evicted);
    ok(c.looked_up > 10 + 3, "evicted ids are looked up again (%llu lookups)", c.looked_up);
    is_int(q_int("SELECT count(*) FROM samples"), 8 + 8 + 20 + 4, "all samples stored");
    is_int(wrong_series(), 0, "each sample still names its own series");
    log_taken();
}

/* Ids of series inserted by a transaction that rolls back are not kept. */
static void test_pg_cache_rollback(void)
{
    struct harness h;
    struct cache_stats c;
    const char *p = lines(gauge_n(1, 1), gauge_n(2, 2), NULL);

    is_int(store_open(&h, "cacheroll", NULL), PIPIT_OK, "cacheroll: init");
    checker_use("cacheroll");
    q_str("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
          "$$BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '57014'; END$$");
    q_str("CREATE TRIGGER refuse BEFORE INSERT ON batches FOR EACH ROW EXECUTE FUNCTION refuse()");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, p), PIPIT_RETRY,
           "the ledger fails after the series were inserted: retry");
    is_int(q_int("SELECT count(*) FROM series"), 0, "the series rolled back");
    q_str("DROP TRIGGER refuse ON batches");
    is_int(flush(&h, AGENT_A, 2, PIPIT_METRIC, p), PIPIT_OK, "another batch of the same series");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, p), PIPIT_OK, "the first one again");
    harness_close(&h);
    c = cache_stats(log_taken());
    is_int(q_int("SELECT count(*) FROM samples"), 4, "4 samples");
    is_int(wrong_series(), 0, "none names a series that was rolled back");
    is_int((int64_t)c.looked_up, 4, "the series are looked up again after the rollback");
    is_int((int64_t)c.reused, 2, "and cached once committed");
}

/* A new connection starts with an empty cache. */
static void test_pg_cache_reconnect(void)
{
    struct harness h;
    struct cache_stats c;
    const char *p = lines(gauge_n(1, 1), gauge_n(2, 2), NULL);

    is_int(store_open(&h, "cacherecon", NULL), PIPIT_OK, "cacherecon: init");
    checker_use("cacherecon");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, p), PIPIT_OK, "batch 1");
    kill_sink();
    q_str("TRUNCATE samples, series");      /* ids cached on it name no row now */
    is_int(flush(&h, AGENT_A, 2, PIPIT_METRIC, p), PIPIT_RETRY, "batch 2: retry");
    is_int(flush(&h, AGENT_A, 2, PIPIT_METRIC, p), PIPIT_OK, "batch 2 after reconnecting");
    harness_close(&h);
    c = cache_stats(log_taken());
    is_int((int64_t)c.reused, 0, "no id from the old connection is reused");
    is_int((int64_t)c.looked_up, 4, "the series are looked up again");
    is_int(wrong_series(), 0, "each sample names its own series");
}

/* A new batch that another writer stored meanwhile (23505 in the direct
 * COPY) is stored again the staged way: each record once. */
static void test_pg_race(void)
{
    struct harness h;
    const char *p = lines(gauge_n(1, 1), gauge_n(2, 2), gauge_n(3, 3), NULL);

    is_int(store_open(&h, "race", NULL), PIPIT_OK, "race: init");
    checker_use("race");
    is_int(flush(&h, AGENT_A, 1, PIPIT_METRIC, p), PIPIT_OK, "batch 1 caches the series");
    /* the other writer's rows of batch 2, its ledger row not committed yet */
    q_str("INSERT INTO samples (agent_id, seq, idx, series_id, time, type, value) "
          "SELECT '" AGENT_A "', 2, 1, id, 2, 'gauge', 2 FROM series WHERE labels = '{\"n\":\"2\"}'");
    log_taken();
    is_int(flush(&h, AGENT_A, 2, PIPIT_METRIC, p), PIPIT_OK, "batch 2 is stored");
    ok(strstr(log_taken(), "stored meanwhile by another writer") != NULL,
       "the unique violation sent it the staged way");
    is_int(q_int("SELECT count(*) FROM samples WHERE seq = 2"), 3, "3 samples, each once");
    is_int(q_int("SELECT count(DISTINCT idx) FROM samples WHERE seq = 2"), 3, "at 3 indexes");
    is_int(q_int("SELECT count FROM batches WHERE seq = 2"), 2, "the ledger counts the 2 it added");
    is_int(wrong_series(), 0, "each sample names its own series");
    harness_close(&h);
    log_taken();
}

/* Values written in COPY BINARY read back exactly; a samples table with
 * other column types takes the staged way. */
static void test_pg_binary(void)
{
    struct harness h;
    struct cache_stats c;
    char p[4096], staged[4096];

    snprintf(p, sizeof p, "%s", lines(
        rec("metric", 1733616000123456789, NULL, 0, 0, GAUGE("-0.0", "{\"v\":\"a\"}")),
        rec("metric", INT64_MIN, NULL, 0, 0, GAUGE("\"NaN\"", "{\"v\":\"b\"}")),
        rec("metric", INT64_MAX, NULL, 0, 0, GAUGE("\"+Inf\"", "{\"v\":\"c\"}")),
        rec("metric", 0, NULL, 0, 0, GAUGE("\"-Inf\"", "{\"v\":\"d\"}")),
        rec("metric", -1, NULL, 0, 0, GAUGE("5e-324", "{\"v\":\"e\"}")),
        rec("metric", 1, NULL, 0, 0, GAUGE("1.7976931348623157e308", "{\"v\":\"f\"}")),
        rec("metric", 2, NULL, 0, 0, GAUGE("0.1", "{\"v\":\"g\"}")),
        rec("metric", 3, NULL, 0, 0, "\"name\":\"h\",\"type\":\"histogram\",\"buckets\":"
            "[{\"le\":\"+Inf\",\"count\":9223372036854775807}],\"sum\":-0.0,"
            "\"count\":9223372036854775807,\"labels\":{\"v\":\"h\"}"),
        rec("metric", 4, NULL, 0, 0, "\"name\":\"h\",\"type\":\"histogram\",\"buckets\":"
            "[{\"le\":\"+Inf\",\"count\":0}],\"sum\":\"NaN\",\"count\":0,"
            "\"labels\":{\"v\":\"i\"}"), NULL));
    static const char *const want =
        "0|1733616000123456789|gauge|8000000000000000|||"
        ",1|-9223372036854775808|gauge|NaN|||"
        ",2|9223372036854775807|gauge|Infinity|||"
        ",3|0|gauge|-Infinity|||"
        ",4|-1|gauge|0000000000000001|||"
        ",5|1|gauge|7fefffffffffffff|||"
        ",6|2|gauge|3fb999999999999a|||"
        ",7|3|histogram||[{\"le\":\"+Inf\",\"count\":9223372036854775807}]|8000000000000000"
        "|9223372036854775807"
        ",8|4|histogram||[{\"le\":\"+Inf\",\"count\":0}]|7ff8000000000000|0";
    static const char *const query =
        "SELECT string_agg(idx || '|' || time || '|' || type || '|' || "
        "coalesce(CASE WHEN value = value AND abs(value) < 'Infinity' "
        "THEN encode(float8send(value), 'hex') ELSE value::text END, '') || '|' || "
        "coalesce(buckets, '') || '|' || coalesce(CASE WHEN sum = sum "
        "THEN encode(float8send(sum), 'hex') ELSE sum::text END, '') || '|' || "
        "coalesce(count::text, ''), ',' ORDER BY idx) FROM samples WHERE seq = %" PRId64;

    is_int(store_open(&h, "binary", NULL), PIPIT_OK, "binary: init");
    checker_use("binary");
    is_int(flush(&h, AGENT_A, INT64_MAX, PIPIT_METRIC, p), PIPIT_OK,
           "extreme values, batch INT64_MAX");
    harness_close(&h);
    c = cache_stats(log_taken());
    is_int((int64_t)c.binary, 1, "by COPY BINARY");
    is_str(q_str(query, INT64_MAX), want, "every value exact");
    is_str(q_str("SELECT DISTINCT agent_id FROM samples"), AGENT_A, "agent id");

    /* the staged way makes the same rows (a relayed record sends it there) */
    is_int(store_open(&h, "binary", NULL), PIPIT_OK, "binary: init again");
    snprintf(staged, sizeof staged, "%s%s", p, rec("log", 1, AGENT_X, 1, 0,
             "\"level\":\"info\",\"message\":\"m\",\"labels\":{}"));
    is_int(flush(&h, AGENT_A, 5, PIPIT_METRIC, staged), PIPIT_OK, "the same, staged");
    harness_close(&h);
    c = cache_stats(log_taken());
    is_int((int64_t)c.binary, 0, "not by COPY BINARY");
    is_str(q_str(query, (int64_t)5), want, "the same values");

    /* tables whose value column is real: binary float8 would not fit */
    checker_use("binary");
    q_str("TRUNCATE samples");
    q_str("ALTER TABLE samples ALTER COLUMN value TYPE real");
    is_int(store_open(&h, "binary", NULL), PIPIT_OK, "value real: init");
    ok(strstr(log_taken(), "other types than pipit writes in binary") != NULL,
       "the different column type is logged");
    is_int(flush(&h, AGENT_A, 6, PIPIT_METRIC,
                 lines(rec("metric", 1, NULL, 0, 0, GAUGE("1.5", "{\"v\":\"a\"}")),
                       rec("metric", 2, NULL, 0, 0, GAUGE("-2.25", "{\"v\":\"z\"}")), NULL)),
           PIPIT_OK, "a batch is stored");
    harness_close(&h);
    c = cache_stats(log_taken());
    is_int((int64_t)c.binary, 0, "the staged way");
    is_str(q_str("SELECT string_agg(value::text, ',' ORDER BY idx) FROM samples WHERE seq = 6"),
           "1.5,-2.25", "with its values");
}
#endif

/* ---- throughput ------------------------------------------------------------ */

/* The plugin's "time per stage" line of the log since the last call, per
 * record stored; or nothing (out_sqlite has none). */
static void bench_stages(const char *what, int records)
{
    static char tail[1 << 16];
    int fd = fileno(T.log);
    off_t size;
    ssize_t got;
    const char *p;
    char buf[512], *q;
    size_t n;

    /* the line is at the end of a log that may be longer than log_taken() reads */
    fflush(T.log);
    size = lseek(fd, 0, SEEK_END);
    got = pread(fd, tail, sizeof tail - 1, size > (off_t)sizeof tail - 1
                                           ? size - (off_t)sizeof tail + 1 : 0);
    tail[got > 0 ? got : 0] = '\0';
    log_taken();
    p = strstr(tail, "time per stage: ");

    if (!p)
        return;
    p += strlen("time per stage: ");
    n = strcspn(p, "\"\n");
    snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), p);
    /* "stage 0.123 s, ..." becomes "stage 0.123 s (N records/s), ..." */
    diag("  %s, time per stage (records/s of each stage alone):", what);
    for (char *tok = strtok_r(buf, ",", &q); tok; tok = strtok_r(NULL, ",", &q)) {
        char *sp = strrchr(tok, ' ');
        double sec;
        while (*tok == ' ')
            tok++;
        if (!sp || sp == tok)
            continue;
        *sp = '\0';
        sp = strrchr(tok, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        sec = strtod(sp + 1, NULL);
        diag("    %-16s %8.3f s  %10.0f", tok, sec, sec > 0 ? records / sec : 0);
    }
}

/*
 * Records per second for nbatches batches of size records of kind: metrics
 * over 100 series (the cpu label; it fixes the host), or log lines. Then
 * the same batches again (all duplicates), through a new instance on the
 * same tables, so that each pass's time per stage (logged by out_postgres
 * at the end) shows apart.
 * Printed as TAP comments; never a pass/fail criterion.
 */
static void bench(const char *opt, int kind, int nbatches, int size, uint64_t seq0)
{
    char **payloads = calloc((size_t)nbatches, sizeof *payloads);
    int64_t t = now_ns();
    double secs[2];

    for (int b = 0; b < nbatches; b++) {
        size_t cap = (size_t)size * 320, len = 0;
        payloads[b] = malloc(cap);
        for (int i = 0; i < size; i++) {
            int n = b * size + i;
            if (kind == PIPIT_METRIC)
                len += (size_t)snprintf(payloads[b] + len, cap - len,
                    "{\"kind\":\"metric\",\"time\":%" PRId64 ",\"host\":\"web-%02d\","
                    "\"instance\":\"cpu\",\"name\":\"cpu.time_seconds\",\"type\":\"counter\","
                    "\"value\":%d.25,\"labels\":{\"cpu\":\"%d\",\"state\":\"user\"}}\n",
                    t + n, n % 10, n, n % 100);
            else
                len += (size_t)snprintf(payloads[b] + len, cap - len,
                    "{\"kind\":\"log\",\"time\":%" PRId64 ",\"host\":\"web-01\","
                    "\"instance\":\"nginx\",\"level\":\"info\",\"message\":\"GET /index.html "
                    "HTTP/1.1 200 %d 0.%03ds\",\"source\":\"/var/log/nginx/access.log\","
                    "\"offset\":%d,\"labels\":{\"vhost\":\"example.org\"}}\n",
                    t + n, n, n % 1000, n * 80);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        struct harness h;
        double t0;

        if (store_open(&h, "bench", opt, NULL) != PIPIT_OK) {
            printf("Bail out! bench: init failed\n");
            exit(1);
        }
        log_taken();
        t0 = mono_s();
        for (int b = 0; b < nbatches; b++)
            if (flush(&h, AGENT_A, seq0 + (uint64_t)b, kind, payloads[b]) != PIPIT_OK)
                diag("bench: flush %d failed", b);
        secs[pass] = mono_s() - t0;
        harness_close(&h);
        if (pass == 0)
            diag("%s: %d %s records in batches of %d: %.0f records/s stored",
                 T.pg ? "out_postgres" : "out_sqlite", nbatches * size,
                 kind == PIPIT_METRIC ? "metric" : "log", size, nbatches * size / secs[0]);
        else
            diag("  the same again: %.0f records/s as duplicates", nbatches * size / secs[1]);
        bench_stages(pass ? "duplicates" : "stored", nbatches * size);
    }
    for (int b = 0; b < nbatches; b++)
        free(payloads[b]);
    free(payloads);
}

/* opt: one more option (KEY=VALUE) of the plugin, or NULL. Sequence
 * numbers start after seq0, so that each round stores new batches on the
 * same tables instead of timing the previous round's as duplicates. */
static void run_bench(const char *opt, uint64_t seq0)
{
    diag("%s", opt ? opt : "default options");
    bench(opt, PIPIT_METRIC, 100, 1000, seq0 + 1);
    bench(opt, PIPIT_METRIC, 10, 10000, seq0 + 1000);
    bench(opt, PIPIT_LOG, 100, 1000, seq0 + 2000);
    bench(opt, PIPIT_METRIC, 1000, 100, seq0 + 3000);
    log_taken();
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: test_out_sqlite [--conninfo CONNINFO] [--bench]\n"
                    "       test_out_sqlite --query FILE SQL\n"
                    "  without --conninfo: out_sqlite on files in a temporary directory;\n"
                    "  with it: out_postgres on that server, in schemas of its own.\n"
                    "  --bench: print records/s instead of testing.\n"
                    "  --query: print the first column of SQL's first row in the SQLite\n"
                    "  database FILE (for the shell tests; no sqlite3 program needed).\n");
    exit(2);
}

/* --query FILE SQL: the answer on stdout; exit 1 on an error. */
static int query_file(const char *file, const char *sql)
{
    char out[8192];
    bool good;

    if (sqlite3_open_v2(file, &T.lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s: %s\n", file, sqlite3_errmsg(T.lite));
        sqlite3_close(T.lite);
        return 1;
    }
    sqlite3_busy_timeout(T.lite, 5000);
    good = checker_query(sql, out, sizeof out);
    sqlite3_close(T.lite);
    if (good)
        printf("%s\n", out);
    return good ? 0 : 1;
}

int main(int argc, char **argv)
{
    bool do_bench = false;
    const char *tmp = getenv("TMPDIR");

    if (argc == 4 && strcmp(argv[1], "--query") == 0)
        return query_file(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--conninfo") == 0 && i + 1 < argc)
            T.conninfo = argv[++i];
        else if (strcmp(argv[i], "--bench") == 0)
            do_bench = true;
        else
            usage();
    }
    if (T.conninfo) {
#ifndef HAVE_POSTGRESQL
        plan_skip_all("built without PostgreSQL");
#endif
        T.pg = true;
        snprintf(T.base, sizeof T.base, "pipit_test_%d", (int)getpid());
    }
    snprintf(T.dir, sizeof T.dir, "%s/pipit-store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(T.dir)) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    T.log = tmpfile();
    if (!T.log) {
        printf("Bail out! tmpfile: %s\n", strerror(errno));
        return 1;
    }
    log_setup(T.log, LOG_FMT_LOGFMT, PIPIT_LOG_DEBUG);

    if (do_bench) {
        run_bench(T.pg ? NULL : "synchronous=full", 0);
        run_bench(T.pg ? "synchronous_commit=off" : "synchronous=normal", 10000);
    } else {
        test_kinds();
        test_idempotent();
        test_origin();
        test_malformed();
        test_gaps();
        test_retention();
        test_version();
        test_money();
        test_retry();
#ifdef HAVE_POSTGRESQL
        if (T.pg) {
            test_pg_connection();
            test_pg_cache();
            test_pg_cache_rollback();
            test_pg_cache_reconnect();
            test_pg_race();
            test_pg_binary();
        }
#endif
    }

    checker_close();
#ifdef HAVE_POSTGRESQL
    if (T.pg && !getenv("PIPIT_KEEP_DB")) {
        static const char *const dbs[] = { "kinds", "dup", "origin", "bad", "gaps", "retention",
                                           "newer", "retry", "bench", "money", "cache",
                                           "cacheroll", "cacherecon", "race", "binary" };
        PGconn *c = PQconnectdb(T.conninfo);
        for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
            char sql[256];
            snprintf(sql, sizeof sql, "SET client_min_messages = warning; "
                     "DROP SCHEMA IF EXISTS %s_%s CASCADE", T.base, dbs[i]);
            PQclear(PQexec(c, sql));
        }
        PQfinish(c);
    }
#endif
    if (!getenv("PIPIT_KEEP_DB")) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", T.dir);
        if (system(cmd) != 0)
            diag("cannot remove %s", T.dir);
    } else {
        diag("stores kept in %s", T.dir);
    }
    fclose(T.log);
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    return do_bench ? 0 : done_testing();
}
