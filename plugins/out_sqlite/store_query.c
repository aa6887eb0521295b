/* store_query.c: /v1/agents, /v1/query, /v1/logs, /v1/costs, /v1/deployments and /v1/throughput over an out_sqlite store. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <sqlite3.h>
#include <pipit/plugin.h>
#include "store_query.h"

#define NS_PER_MS 1000000LL
#define SILENT_AFTER_NS (300LL * 1000000000)  /* /v1/agents: "silent" after 5 min */

/* One request's connection and its bounds. */
struct sq {
    sqlite3 *db;
    int64_t deadline_ns;                /* monotonic */
    bool timed_out;
    const struct query_request *r;
    int64_t now_ns;
    char *why;
    size_t whylen;
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Called every 1000 virtual machine steps: non-zero interrupts the query. */
static int sq_progress(void *arg)
{
    struct sq *q = arg;
    if (mono_ns() > q->deadline_ns) {
        q->timed_out = true;
        return 1;
    }
    return 0;
}

/* Prepare sql; on failure why says so and NULL is returned. */
static sqlite3_stmt *sq_prepare(struct sq *q, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(q->why, q->whylen, "store: %s", sqlite3_errmsg(q->db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* After a step that was neither ROW nor DONE: the status to answer with. */
static unsigned sq_fail(struct sq *q, int rc)
{
    if (q->timed_out || rc == SQLITE_INTERRUPT) {
        snprintf(q->why, q->whylen, "the query took longer than http.query_timeout; "
                 "narrow from/to or lower limit");
        return 503;
    }
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        snprintf(q->why, q->whylen, "the store is busy; retry");
        return 503;
    }
    snprintf(q->why, q->whylen, "store: %s", sqlite3_errmsg(q->db));
    return 500;
}

static int64_t to_ms(int64_t ns) { return ns / NS_PER_MS; }

static json_t *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? json_string((const char *)t) : json_null();
}

static json_t *col_real(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    double v = sqlite3_column_double(st, i);
    return isfinite(v) ? json_real(v) : json_null();
}

/* A labels column (canonical JSON text) as an object; {} if unreadable. */
static json_t *col_labels(sqlite3_stmt *st, int i)
{
    const char *t = (const char *)sqlite3_column_text(st, i);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return json_object();
    }
    return o;
}

/* Micros as an exact decimal string: 41600 -> "0.0416", -3000000 -> "-3". */
static json_t *micros_str(int64_t m)
{
    char s[48];
    uint64_t a = m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
    int n = snprintf(s, sizeof s, "%s%" PRIu64 ".%06" PRIu64, m < 0 ? "-" : "",
                     a / 1000000, a % 1000000);
    while (n > 0 && s[n - 1] == '0')
        s[--n] = '\0';
    if (n > 0 && s[n - 1] == '.')
        s[--n] = '\0';
    return json_string(s);
}

/* JSON path of a label key (keys are checked by query_params: no quotes). */
static void label_path(char *dst, size_t len, const char *key)
{
    snprintf(dst, len, "$.\"%s\"", key);
}

/* The page's "next_offset": null when rows did not exceed the limit. */
static void set_page(json_t *root, const struct query_request *r, int64_t rows)
{
    json_object_set_new(root, "limit", json_integer(r->limit));
    json_object_set_new(root, "offset", json_integer(r->offset));
    json_object_set_new(root, "next_offset", rows > r->limit
                        ? json_integer(r->offset + r->limit) : json_null());
}

static void set_range(json_t *root, const struct query_request *r)
{
    json_object_set_new(root, "from_ms", json_integer(to_ms(r->from_ns)));
    json_object_set_new(root, "to_ms", json_integer(to_ms(r->to_ns)));
    if (r->step_ns)
        json_object_set_new(root, "step_ms", json_integer(to_ms(r->step_ns)));
}

/*
 * /v1/agents: the agents table, with the version and spool depth an agent
 * reports in its own figures (pipit_build_info, pipit_spool_entries and
 * pipit_spool_bytes series of its host, when it sends them).
 */
static unsigned sq_agents(struct sq *q, json_t *root)
{
    static const char sql[] =
        "SELECT a.agent_id, a.host, a.first_seen, a.last_seen, a.last_seq, a.batches,"
        " a.records, a.skipped, a.gaps,"
        " (SELECT json_extract(s.labels, '$.version') FROM series s JOIN samples m"
        "   ON m.series_id = s.id WHERE s.name = 'pipit_build_info' AND s.host = a.host"
        "   ORDER BY m.time DESC LIMIT 1),"
        " (SELECT m.value FROM series s JOIN samples m ON m.series_id = s.id"
        "   WHERE s.name = 'pipit_spool_entries' AND s.host = a.host"
        "   ORDER BY m.time DESC LIMIT 1),"
        " (SELECT m.value FROM series s JOIN samples m ON m.series_id = s.id"
        "   WHERE s.name = 'pipit_spool_bytes' AND s.host = a.host"
        "   ORDER BY m.time DESC LIMIT 1),"
        " (SELECT count(*) FROM agents)"
        " FROM agents a ORDER BY a.host, a.agent_id LIMIT ?1 OFFSET ?2";
    const struct query_request *r = q->r;
    sqlite3_stmt *st = sq_prepare(q, sql);
    json_t *list = json_array();
    int64_t rows = 0, total = 0;
    int rc;

    if (!st)
        return 500;
    json_object_set_new(root, "agents", list);
    sqlite3_bind_int64(st, 1, r->limit + 1);
    sqlite3_bind_int64(st, 2, r->offset);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        total = sqlite3_column_int64(st, 12);
        if (++rows > r->limit)
            continue;
        int64_t last = sqlite3_column_int64(st, 3);
        json_t *a = json_object();
        json_object_set_new(a, "agent_id", col_text(st, 0));
        json_object_set_new(a, "host", col_text(st, 1));
        json_object_set_new(a, "first_seen_ms", json_integer(to_ms(sqlite3_column_int64(st, 2))));
        json_object_set_new(a, "last_seen_ms", json_integer(to_ms(last)));
        json_object_set_new(a, "last_seen_age_seconds",
                            json_real((double)(q->now_ns - last) / 1e9));
        json_object_set_new(a, "last_seq", json_integer(sqlite3_column_int64(st, 4)));
        json_object_set_new(a, "batches", json_integer(sqlite3_column_int64(st, 5)));
        json_object_set_new(a, "records", json_integer(sqlite3_column_int64(st, 6)));
        json_object_set_new(a, "skipped", json_integer(sqlite3_column_int64(st, 7)));
        json_object_set_new(a, "sequence_gaps", json_integer(sqlite3_column_int64(st, 8)));
        json_object_set_new(a, "version", col_text(st, 9));
        json_object_set_new(a, "spool_entries", sqlite3_column_type(st, 10) == SQLITE_NULL
                            ? json_null() : json_integer(sqlite3_column_int64(st, 10)));
        json_object_set_new(a, "spool_bytes", sqlite3_column_type(st, 11) == SQLITE_NULL
                            ? json_null() : json_integer(sqlite3_column_int64(st, 11)));
        const char *health = q->now_ns - last > SILENT_AFTER_NS ? "silent"
                           : sqlite3_column_int64(st, 8) > 0 ? "gaps" : "ok";
        json_object_set_new(a, "health", json_string(health));
        json_array_append_new(list, a);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_fail(q, rc);
    json_object_set_new(root, "total", json_integer(total));
    set_page(root, r, rows);
    return 200;
}

/* The points of one series: (time - from) / step buckets folded by r->agg. */
static unsigned sq_points(struct sq *q, sqlite3_int64 series, json_t *points)
{
    static const char *const fold[] = {
        [QUERY_AVG] = "avg(value)", [QUERY_MIN] = "min(value)", [QUERY_MAX] = "max(value)",
        [QUERY_SUM] = "sum(value)", [QUERY_COUNT] = "count(value)",
        [QUERY_LAST] = "value, max(time)",   /* SQLite: value of the latest row */
    };
    const struct query_request *r = q->r;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT (time - ?2) / ?4 AS b, %s FROM samples"
             " WHERE series_id = ?1 AND time >= ?2 AND time < ?3 GROUP BY b ORDER BY b",
             fold[r->agg]);
    sqlite3_stmt *st = sq_prepare(q, sql);
    int rc;

    if (!st)
        return 500;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int64(st, 2, r->from_ns);
    sqlite3_bind_int64(st, 3, r->to_ns);
    sqlite3_bind_int64(st, 4, r->step_ns);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t b = sqlite3_column_int64(st, 0);
        json_t *p = json_array();
        json_array_append_new(p, json_integer(to_ms(r->from_ns + b * r->step_ns)));
        json_array_append_new(p, r->agg == QUERY_COUNT ? json_integer(sqlite3_column_int64(st, 1))
                                                       : col_real(st, 1));
        json_array_append_new(points, p);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 200 : sq_fail(q, rc);
}

/* Bind the label matchers from index first on: key path, value, ... */
static void bind_labels(sqlite3_stmt *st, const struct query_request *r, int first)
{
    char path[QUERY_MAX_VALUE + 8];
    for (size_t i = 0; i < r->nlabels; i++) {
        label_path(path, sizeof path, r->labels[i].key);
        sqlite3_bind_text(st, first + 2 * (int)i, path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, first + 2 * (int)i + 1, r->labels[i].value, -1, SQLITE_TRANSIENT);
    }
}

/* /v1/query: the series of a metric with samples in [from, to), downsampled. */
static unsigned sq_series(struct sq *q, json_t *root)
{
    const struct query_request *r = q->r;
    struct buf sql = BUF_INIT;
    unsigned status = 500;
    int rc;

    buf_puts(&sql, "SELECT s.id, s.host, s.instance, s.labels FROM series s"
             " WHERE s.name = ?1 AND (?2 = '' OR s.host = ?2)");
    for (size_t i = 0; i < r->nlabels; i++)
        buf_printf(&sql, " AND json_extract(s.labels, ?%zu) = ?%zu", 7 + 2 * i, 8 + 2 * i);
    buf_puts(&sql, " AND EXISTS (SELECT 1 FROM samples m WHERE m.series_id = s.id"
             " AND m.time >= ?3 AND m.time < ?4) ORDER BY s.id LIMIT ?5 OFFSET ?6");
    sqlite3_stmt *st = sql.data ? sq_prepare(q, sql.data) : NULL;
    buf_free(&sql);
    if (!st)
        return 500;
    json_t *list = json_array();
    json_object_set_new(root, "metric", json_string(r->metric));
    json_object_set_new(root, "agg", json_string((const char *[]){
        "avg", "min", "max", "sum", "count", "last" }[r->agg]));
    set_range(root, r);
    json_object_set_new(root, "series", list);
    sqlite3_bind_text(st, 1, r->metric, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, r->from_ns);
    sqlite3_bind_int64(st, 4, r->to_ns);
    sqlite3_bind_int64(st, 5, r->limit + 1);
    sqlite3_bind_int64(st, 6, r->offset);
    bind_labels(st, r, 7);
    int64_t rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > r->limit)
            continue;
        json_t *s = json_object(), *points = json_array();
        json_object_set_new(s, "host", col_text(st, 1));
        json_object_set_new(s, "instance", col_text(st, 2));
        json_object_set_new(s, "labels", col_labels(st, 3));
        json_object_set_new(s, "points", points);
        json_array_append_new(list, s);
        if ((status = sq_points(q, sqlite3_column_int64(st, 0), points)) != 200)
            goto fail;
    }
    if (rc != SQLITE_DONE) {
        status = sq_fail(q, rc);
        goto fail;
    }
    set_page(root, r, rows);
    status = 200;
fail:
    sqlite3_finalize(st);
    return status;
}

/* /v1/logs: newest first, by host, level (that or more severe) and text. */
static unsigned sq_logs(struct sq *q, json_t *root)
{
    static const char sql[] =
        "SELECT time, host, instance, level, message, source, source_offset, labels"
        " FROM logs WHERE time >= ?1 AND time < ?2 AND (?3 = '' OR host = ?3)"
        " AND (?4 < 0 OR level IN ('error', 'warn', 'info', 'debug', 'trace') AND"
        "  CASE level WHEN 'error' THEN 0 WHEN 'warn' THEN 1 WHEN 'info' THEN 2"
        "  WHEN 'debug' THEN 3 ELSE 4 END <= ?4)"
        " AND (?5 = '' OR instr(message, ?5) > 0)"
        " ORDER BY time DESC, agent_id, seq, idx LIMIT ?6 OFFSET ?7";
    const struct query_request *r = q->r;
    sqlite3_stmt *st = sq_prepare(q, sql);
    json_t *list = json_array();
    int64_t rows = 0;
    int rc;

    if (!st) {
        json_decref(list);
        return 500;
    }
    set_range(root, r);
    json_object_set_new(root, "logs", list);
    sqlite3_bind_int64(st, 1, r->from_ns);
    sqlite3_bind_int64(st, 2, r->to_ns);
    sqlite3_bind_text(st, 3, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, r->min_level);
    sqlite3_bind_text(st, 5, r->text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, r->limit + 1);
    sqlite3_bind_int64(st, 7, r->offset);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > r->limit)
            continue;
        json_t *l = json_object();
        json_object_set_new(l, "time_ms", json_integer(to_ms(sqlite3_column_int64(st, 0))));
        json_object_set_new(l, "host", col_text(st, 1));
        json_object_set_new(l, "instance", col_text(st, 2));
        json_object_set_new(l, "level", col_text(st, 3));
        json_object_set_new(l, "message", col_text(st, 4));
        json_object_set_new(l, "source", col_text(st, 5));
        json_object_set_new(l, "offset", sqlite3_column_type(st, 6) == SQLITE_NULL
                            ? json_null() : json_integer(sqlite3_column_int64(st, 6)));
        json_object_set_new(l, "labels", col_labels(st, 7));
        json_array_append_new(list, l);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sq_fail(q, rc);
    set_page(root, r, rows);
    return 200;
}

/* The step buckets of one cost group: [[t_ms, micros], ...]. */
static unsigned sq_cost_buckets(struct sq *q, sqlite3_stmt *g, json_t *buckets)
{
    static const char sql[] =
        "SELECT (time - ?1) / ?3 AS b, sum(amount_micros) FROM costs"
        " WHERE time >= ?1 AND time < ?2 AND json_extract(labels, ?4) IS ?5"
        " AND currency = ?6 GROUP BY b ORDER BY b";
    const struct query_request *r = q->r;
    char path[QUERY_MAX_VALUE + 8];
    sqlite3_stmt *st = sq_prepare(q, sql);
    int rc;

    if (!st)
        return 500;
    label_path(path, sizeof path, r->group_by);
    sqlite3_bind_int64(st, 1, r->from_ns);
    sqlite3_bind_int64(st, 2, r->to_ns);
    sqlite3_bind_int64(st, 3, r->step_ns);
    sqlite3_bind_text(st, 4, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_value(st, 5, sqlite3_column_value(g, 0));
    sqlite3_bind_value(st, 6, sqlite3_column_value(g, 1));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *p = json_array();
        int64_t b = sqlite3_column_int64(st, 0);
        json_array_append_new(p, json_integer(to_ms(r->from_ns + b * r->step_ns)));
        json_array_append_new(p, json_integer(sqlite3_column_int64(st, 1)));
        json_array_append_new(buckets, p);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 200 : sq_fail(q, rc);
}

/* Totals per currency over the whole range (every group, not one page). */
static unsigned sq_cost_totals(struct sq *q, json_t *root)
{
    static const char sql[] =
        "SELECT currency, sum(amount_micros), count(*) FROM costs"
        " WHERE time >= ?1 AND time < ?2 GROUP BY currency ORDER BY currency";
    sqlite3_stmt *st = sq_prepare(q, sql);
    json_t *list = json_array();
    int rc;

    json_object_set_new(root, "totals", list);
    if (!st)
        return 500;
    sqlite3_bind_int64(st, 1, q->r->from_ns);
    sqlite3_bind_int64(st, 2, q->r->to_ns);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *t = json_object();
        int64_t m = sqlite3_column_int64(st, 1);
        json_object_set_new(t, "currency", col_text(st, 0));
        json_object_set_new(t, "total_micros", json_integer(m));
        json_object_set_new(t, "total", micros_str(m));
        json_object_set_new(t, "records", json_integer(sqlite3_column_int64(st, 2)));
        json_array_append_new(list, t);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 200 : sq_fail(q, rc);
}

/*
 * /v1/costs: sums of amount_micros (exact integers) per value of the
 * group_by label and currency, largest first; with step, per bucket too.
 */
static unsigned sq_costs(struct sq *q, json_t *root)
{
    static const char sql[] =
        "SELECT json_extract(labels, ?3) AS g, currency, sum(amount_micros), count(*)"
        " FROM costs WHERE time >= ?1 AND time < ?2 GROUP BY g, currency"
        " ORDER BY sum(amount_micros) DESC, g, currency LIMIT ?4 OFFSET ?5";
    const struct query_request *r = q->r;
    char path[QUERY_MAX_VALUE + 8];
    unsigned status;
    int rc;

    json_object_set_new(root, "group_by", json_string(r->group_by));
    set_range(root, r);
    if ((status = sq_cost_totals(q, root)) != 200)
        return status;
    sqlite3_stmt *st = sq_prepare(q, sql);
    if (!st)
        return 500;
    json_t *list = json_array();
    json_object_set_new(root, "groups", list);
    label_path(path, sizeof path, r->group_by);
    sqlite3_bind_int64(st, 1, r->from_ns);
    sqlite3_bind_int64(st, 2, r->to_ns);
    sqlite3_bind_text(st, 3, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, r->limit + 1);
    sqlite3_bind_int64(st, 5, r->offset);
    int64_t rows = 0;
    status = 200;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > r->limit)
            continue;
        json_t *g = json_object();
        int64_t m = sqlite3_column_int64(st, 2);
        json_object_set_new(g, "value", sqlite3_column_type(st, 0) == SQLITE_NULL
                            ? json_null() : col_text(st, 0));
        json_object_set_new(g, "currency", col_text(st, 1));
        json_object_set_new(g, "total_micros", json_integer(m));
        json_object_set_new(g, "total", micros_str(m));
        json_object_set_new(g, "records", json_integer(sqlite3_column_int64(st, 3)));
        json_array_append_new(list, g);
        if (r->step_ns) {
            json_t *b = json_array();
            json_object_set_new(g, "buckets", b);
            if ((status = sq_cost_buckets(q, st, b)) != 200)
                break;
        }
    }
    sqlite3_finalize(st);
    if (status != 200)
        return status;
    if (rc != SQLITE_DONE)
        return sq_fail(q, rc);
    set_page(root, r, rows);
    return 200;
}

/*
 * The steps of one run, oldest first; sets the run's hosts and status:
 * the status of its last plan.* event other than plan.started, else
 * "failed" when a step failed, else "running".
 */
static unsigned sq_run_steps(struct sq *q, const char *run, json_t *d)
{
    static const char sql[] =
        "SELECT time, host, name, status, message, json_extract(labels, '$.step'), labels"
        " FROM events WHERE json_extract(labels, '$.run') = ?1 AND time >= ?2 AND time < ?3"
        " ORDER BY time, agent_id, seq, idx LIMIT 10000";
    sqlite3_stmt *st = sq_prepare(q, sql);
    json_t *steps = json_array(), *hosts = json_array();
    const char *final = NULL;
    char final_buf[64] = "";
    bool failed = false;
    int rc;

    json_object_set_new(d, "hosts", hosts);
    json_object_set_new(d, "steps", steps);
    if (!st)
        return 500;
    sqlite3_bind_text(st, 1, run, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, q->r->from_ns);
    sqlite3_bind_int64(st, 3, q->r->to_ns);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *host = (const char *)sqlite3_column_text(st, 1);
        const char *name = (const char *)sqlite3_column_text(st, 2);
        const char *status = (const char *)sqlite3_column_text(st, 3);
        json_t *e = json_object();
        json_object_set_new(e, "time_ms", json_integer(to_ms(sqlite3_column_int64(st, 0))));
        json_object_set_new(e, "host", col_text(st, 1));
        json_object_set_new(e, "name", col_text(st, 2));
        json_object_set_new(e, "step", col_text(st, 5));
        json_object_set_new(e, "status", col_text(st, 3));
        json_object_set_new(e, "message", col_text(st, 4));
        json_object_set_new(e, "labels", col_labels(st, 6));
        json_array_append_new(steps, e);
        bool seen = false;
        for (size_t i = 0; host && i < json_array_size(hosts); i++)
            if (strcmp(json_string_value(json_array_get(hosts, i)), host) == 0)
                seen = true;
        if (host && !seen)
            json_array_append_new(hosts, json_string(host));
        if (status && strcmp(status, "failed") == 0)
            failed = true;
        if (name && status && strncmp(name, "plan.", 5) == 0 &&
            strcmp(name, "plan.started") != 0) {
            snprintf(final_buf, sizeof final_buf, "%s", status);
            final = final_buf;
        }
    }
    sqlite3_finalize(st);
    json_object_set_new(d, "status", json_string(final ? final : failed ? "failed" : "running"));
    return rc == SQLITE_DONE ? 200 : sq_fail(q, rc);
}

/* /v1/deployments: plan runs (events with a run label), latest first, with their steps. */
static unsigned sq_deployments(struct sq *q, json_t *root)
{
    static const char sql[] =
        "SELECT json_extract(labels, '$.run') AS run, json_extract(labels, '$.plan'),"
        " min(time), max(time), count(*) FROM events"
        " WHERE time >= ?1 AND time < ?2 AND run IS NOT NULL"
        " AND (?3 = '' OR json_extract(labels, '$.plan') = ?3)"
        " AND (?4 = '' OR host = ?4)"
        " GROUP BY run ORDER BY max(time) DESC, run LIMIT ?5 OFFSET ?6";
    const struct query_request *r = q->r;
    sqlite3_stmt *st = sq_prepare(q, sql);
    unsigned status = 200;
    int64_t rows = 0;
    int rc;

    if (!st)
        return 500;
    json_t *list = json_array();
    set_range(root, r);
    json_object_set_new(root, "deployments", list);
    sqlite3_bind_int64(st, 1, r->from_ns);
    sqlite3_bind_int64(st, 2, r->to_ns);
    sqlite3_bind_text(st, 3, r->plan, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, r->limit + 1);
    sqlite3_bind_int64(st, 6, r->offset);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (++rows > r->limit)
            continue;
        json_t *d = json_object();
        json_object_set_new(d, "run", col_text(st, 0));
        json_object_set_new(d, "plan", col_text(st, 1));
        json_object_set_new(d, "started_ms", json_integer(to_ms(sqlite3_column_int64(st, 2))));
        json_object_set_new(d, "last_event_ms", json_integer(to_ms(sqlite3_column_int64(st, 3))));
        json_object_set_new(d, "events", json_integer(sqlite3_column_int64(st, 4)));
        json_array_append_new(list, d);
        if ((status = sq_run_steps(q, (const char *)sqlite3_column_text(st, 0), d)) != 200)
            break;
    }
    sqlite3_finalize(st);
    if (status != 200)
        return status;
    if (rc != SQLITE_DONE)
        return sq_fail(q, rc);
    set_page(root, r, rows);
    return 200;
}

/* /v1/throughput: batches and records the store received, per step of received_at. */
static unsigned sq_throughput(struct sq *q, json_t *root)
{
    static const char sql[] =
        "SELECT (received_at - ?1) / ?3 AS b, count(*), sum(count), sum(skipped)"
        " FROM batches WHERE received_at >= ?1 AND received_at < ?2 GROUP BY b ORDER BY b";
    const struct query_request *r = q->r;
    sqlite3_stmt *st = sq_prepare(q, sql);
    int rc;

    if (!st)
        return 500;
    json_t *list = json_array();
    set_range(root, r);
    json_object_set_new(root, "buckets", list);
    sqlite3_bind_int64(st, 1, r->from_ns);
    sqlite3_bind_int64(st, 2, r->to_ns);
    sqlite3_bind_int64(st, 3, r->step_ns);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *b = json_object();
        json_object_set_new(b, "time_ms", json_integer(
            to_ms(r->from_ns + sqlite3_column_int64(st, 0) * r->step_ns)));
        json_object_set_new(b, "batches", json_integer(sqlite3_column_int64(st, 1)));
        json_object_set_new(b, "records", json_integer(sqlite3_column_int64(st, 2)));
        json_object_set_new(b, "skipped", json_integer(sqlite3_column_int64(st, 3)));
        json_array_append_new(list, b);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 200 : sq_fail(q, rc);
}

unsigned store_query_run(const char *path, const struct query_request *r, int64_t now_ns,
                         int64_t timeout_ms, struct buf *out, char *why, size_t whylen)
{
    struct sq q = { .r = r, .now_ns = now_ns, .why = why, .whylen = whylen };
    json_t *root = NULL;
    unsigned status = 500;

    why[0] = '\0';
    int rc = sqlite3_open_v2(path, &q.db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(why, whylen, "the store %s cannot be opened yet: %s", path,
                 q.db ? sqlite3_errmsg(q.db) : "out of memory");
        status = 503;
        goto fail;
    }
    sqlite3_busy_timeout(q.db, (int)(timeout_ms < 1000 ? timeout_ms : 1000));
    q.deadline_ns = mono_ns() + timeout_ms * NS_PER_MS;
    sqlite3_progress_handler(q.db, 1000, sq_progress, &q);
    root = json_object();
    json_object_set_new(root, "now_ms", json_integer(to_ms(now_ns)));
    switch (r->ep) {
    case QUERY_AGENTS: status = sq_agents(&q, root); break;
    case QUERY_SERIES: status = sq_series(&q, root); break;
    case QUERY_LOGS: status = sq_logs(&q, root); break;
    case QUERY_COSTS: status = sq_costs(&q, root); break;
    case QUERY_DEPLOYMENTS: status = sq_deployments(&q, root); break;
    case QUERY_THROUGHPUT: status = sq_throughput(&q, root); break;
    }
    if (status == 500 && strstr(why, "no such table")) {
        snprintf(why, whylen, "the store %s has no tables yet (out_sqlite creates them)", path);
        status = 503;
    }
    if (status != 200)
        goto fail;
    char *text = json_dumps(root, JSON_COMPACT);
    if (!text || buf_puts(out, text) != 0 || buf_putc(out, '\n') != 0) {
        free(text);
        snprintf(why, whylen, "out of memory");
        status = 500;
        goto fail;
    }
    free(text);
fail:
    json_decref(root);
    sqlite3_close(q.db);
    return status;
}
