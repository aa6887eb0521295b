/* out_sqlite: store every record in an SQLite database (docs/store-schema.md), idempotently. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <pipit/plugin.h>
#include "store_ledger.h"
#include "store_map.h"
#include "store_record.h"
#include "store_stages.h"

#define SQLITE_SCHEMA_VERSION 2
#define SQLITE_SWEEP_CHUNK 2000         /* rows per table per sweep step */
#define SQLITE_SWEEP_AGAIN_MS 20        /* pause between steps of a backlog */
#define SQLITE_SERIES_CACHE_MAX 500000  /* entries before the cache restarts */

static const struct pipit_api *api;     /* borrowed from the host */

/* The DDL of schema version 1; docs/store-schema.md shows the same text. */
static const char sqlite_ddl_v1[] =
    "CREATE TABLE agents (\n"
    "    agent_id    TEXT PRIMARY KEY,\n"
    "    host        TEXT NOT NULL,\n"
    "    first_seen  INTEGER NOT NULL,\n"
    "    last_seen   INTEGER NOT NULL,\n"
    "    last_seq    INTEGER NOT NULL,\n"
    "    batches     INTEGER NOT NULL,\n"
    "    records     INTEGER NOT NULL,\n"
    "    skipped     INTEGER NOT NULL,\n"
    "    gaps        INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE batches (\n"
    "    agent_id    TEXT NOT NULL,\n"
    "    seq         INTEGER NOT NULL,\n"
    "    kind        TEXT NOT NULL,\n"
    "    count       INTEGER NOT NULL,\n"
    "    skipped     INTEGER NOT NULL,\n"
    "    received_at INTEGER NOT NULL,\n"
    "    PRIMARY KEY (agent_id, seq)\n"
    ");\n"
    "CREATE INDEX batches_received_at ON batches (received_at);\n"
    "CREATE TABLE series (\n"
    "    id          INTEGER PRIMARY KEY,\n"
    "    name        TEXT NOT NULL,\n"
    "    host        TEXT NOT NULL,\n"
    "    instance    TEXT NOT NULL,\n"
    "    labels      TEXT NOT NULL,\n"
    "    UNIQUE (name, host, instance, labels)\n"
    ");\n"
    "CREATE TABLE samples (\n"
    "    agent_id    TEXT NOT NULL,\n"
    "    seq         INTEGER NOT NULL,\n"
    "    idx         INTEGER NOT NULL,\n"
    "    series_id   INTEGER NOT NULL,\n"
    "    time        INTEGER NOT NULL,\n"
    "    type        TEXT NOT NULL,\n"
    "    value       REAL,\n"
    "    buckets     TEXT,\n"
    "    sum         REAL,\n"
    "    count       INTEGER,\n"
    "    PRIMARY KEY (agent_id, seq, idx)\n"
    ");\n"
    "CREATE INDEX samples_series_time ON samples (series_id, time);\n"
    "CREATE INDEX samples_time ON samples (time);\n"
    "CREATE TABLE logs (\n"
    "    agent_id    TEXT NOT NULL,\n"
    "    seq         INTEGER NOT NULL,\n"
    "    idx         INTEGER NOT NULL,\n"
    "    time        INTEGER NOT NULL,\n"
    "    host        TEXT NOT NULL,\n"
    "    instance    TEXT NOT NULL,\n"
    "    level       TEXT NOT NULL,\n"
    "    message     TEXT NOT NULL,\n"
    "    source      TEXT,\n"
    "    source_offset INTEGER,\n"
    "    labels      TEXT NOT NULL,\n"
    "    PRIMARY KEY (agent_id, seq, idx)\n"
    ");\n"
    "CREATE INDEX logs_time ON logs (time);\n"
    "CREATE TABLE costs (\n"
    "    agent_id    TEXT NOT NULL,\n"
    "    seq         INTEGER NOT NULL,\n"
    "    idx         INTEGER NOT NULL,\n"
    "    time        INTEGER NOT NULL,\n"
    "    host        TEXT NOT NULL,\n"
    "    instance    TEXT NOT NULL,\n"
    "    amount      REAL NOT NULL,\n"
    "    currency    TEXT NOT NULL,\n"
    "    resource    TEXT NOT NULL,\n"
    "    period_start INTEGER NOT NULL,\n"
    "    period_end  INTEGER NOT NULL,\n"
    "    labels      TEXT NOT NULL,\n"
    "    PRIMARY KEY (agent_id, seq, idx)\n"
    ");\n"
    "CREATE INDEX costs_time ON costs (time);\n"
    "CREATE TABLE events (\n"
    "    agent_id    TEXT NOT NULL,\n"
    "    seq         INTEGER NOT NULL,\n"
    "    idx         INTEGER NOT NULL,\n"
    "    time        INTEGER NOT NULL,\n"
    "    host        TEXT NOT NULL,\n"
    "    instance    TEXT NOT NULL,\n"
    "    name        TEXT NOT NULL,\n"
    "    status      TEXT NOT NULL,\n"
    "    message     TEXT,\n"
    "    labels      TEXT NOT NULL,\n"
    "    PRIMARY KEY (agent_id, seq, idx)\n"
    ");\n"
    "CREATE INDEX events_time ON events (time);\n";

/*
 * Migrations, one per version after 1: sqlite_migrations[v] takes the
 * tables from version v - 1 to v, in the transaction that checked the
 * version. A new database is made at version 1 and migrated like an old
 * one, so both end with the same tables. docs/store-schema.md lists them.
 */
static const char *const sqlite_migrations[SQLITE_SCHEMA_VERSION + 1] = {
    /* 2: the exact amount of a cost, backfilled from amount */
    [2] = "ALTER TABLE costs ADD COLUMN amount_micros INTEGER NOT NULL DEFAULT 0;\n"
          "UPDATE costs SET amount_micros = CAST(round(amount * 1000000) AS INTEGER);\n"
          "UPDATE schema_version SET version = 2;\n",
};

/* Prepared once in init, reused by every flush. */
enum sqlite_stmt {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_SERIES_SEL, ST_SERIES_INS,
    ST_SAMPLE, ST_LOG, ST_COST, ST_EVENT,
    ST_BATCH_INS, ST_BATCH_ADD, ST_NEIGHBOURS, ST_AGENT,
    ST_DEL_SAMPLES, ST_DEL_LOGS, ST_DEL_COSTS, ST_DEL_EVENTS, ST_DEL_BATCHES,
    ST_COUNT
};

static const char *const sqlite_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SERIES_SEL] =
        "SELECT id FROM series WHERE name = ?1 AND host = ?2 AND instance = ?3 "
        "AND labels = ?4",
    [ST_SERIES_INS] =
        "INSERT INTO series (name, host, instance, labels) VALUES (?1, ?2, ?3, ?4)",
    [ST_SAMPLE] =
        "INSERT OR IGNORE INTO samples (agent_id, seq, idx, series_id, time, type, "
        "value, buckets, sum, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_LOG] =
        "INSERT OR IGNORE INTO logs (agent_id, seq, idx, time, host, instance, level, "
        "message, source, source_offset, labels) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_COST] =
        "INSERT OR IGNORE INTO costs (agent_id, seq, idx, time, host, instance, amount, "
        "currency, resource, period_start, period_end, labels, amount_micros) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_EVENT] =
        "INSERT OR IGNORE INTO events (agent_id, seq, idx, time, host, instance, name, "
        "status, message, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_BATCH_INS] =
        "INSERT OR IGNORE INTO batches (agent_id, seq, kind, count, skipped, received_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_BATCH_ADD] =
        "UPDATE batches SET count = count + ?3, skipped = skipped + ?4 "
        "WHERE agent_id = ?1 AND seq = ?2",
    [ST_NEIGHBOURS] =
        "SELECT count(*) FROM batches WHERE agent_id = ?1 "
        "AND seq IN (?2 - 1, CASE WHEN ?2 < 9223372036854775807 THEN ?2 + 1 END)",
    [ST_AGENT] =
        "INSERT INTO agents (agent_id, host, first_seen, last_seen, last_seq, batches, "
        "records, skipped, gaps) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, 0) "
        "ON CONFLICT (agent_id) DO UPDATE SET host = excluded.host, "
        "last_seen = excluded.last_seen, last_seq = max(last_seq, excluded.last_seq), "
        "batches = batches + excluded.batches, records = records + excluded.records, "
        "skipped = skipped + excluded.skipped, "
        "gaps = gaps + CASE WHEN excluded.batches = 0 OR batches = 0 THEN 0 "
        "ELSE 1 - ?8 END",
    [ST_DEL_SAMPLES] =
        "DELETE FROM samples WHERE rowid IN "
        "(SELECT rowid FROM samples WHERE time < ?1 ORDER BY time LIMIT ?2)",
    [ST_DEL_LOGS] =
        "DELETE FROM logs WHERE rowid IN "
        "(SELECT rowid FROM logs WHERE time < ?1 ORDER BY time LIMIT ?2)",
    [ST_DEL_COSTS] =
        "DELETE FROM costs WHERE rowid IN "
        "(SELECT rowid FROM costs WHERE time < ?1 ORDER BY time LIMIT ?2)",
    [ST_DEL_EVENTS] =
        "DELETE FROM events WHERE rowid IN "
        "(SELECT rowid FROM events WHERE time < ?1 ORDER BY time LIMIT ?2)",
    [ST_DEL_BATCHES] =
        "DELETE FROM batches WHERE rowid IN "
        "(SELECT rowid FROM batches WHERE received_at < ?1 ORDER BY received_at LIMIT ?2)",
};

/* The stages of a flush, timed apart and logged at the end (sqlite_fini). */
enum { SQ_ST_PARSE, SQ_ST_SERIES, SQ_ST_INSERT, SQ_ST_LEDGER, SQ_ST_COMMIT, SQ_STAGES };
static const char *const sqlite_stage_names[SQ_STAGES] = {
    "parse", "series", "insert", "ledger", "begin and commit",
};
_Static_assert(SQ_STAGES <= STORE_STAGES_MAX, "struct store_stages holds every stage");

struct sqlite_ctx {
    const char *path;                   /* option: database file */
    int64_t retention_ms;               /* option: 0 keeps rows forever */
    int64_t busy_timeout_ms;            /* option: wait for another writer */
    const char *synchronous;            /* option: "full" or "normal" */
    int64_t wal_autocheckpoint;         /* option: pages, 0 disables */
    int64_t cache_size;                 /* option: page cache bytes */

    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    uint64_t sweep_ms;                  /* retention: period of the sweep */
    struct store_rec rec;               /* the line being stored */
    struct store_ledger ledger;         /* batches of the flush */
    struct store_map series;            /* series key -> id (committed rows) */
    struct store_map series_new;        /* the same, made in the open transaction */
    struct store_buf key;               /* scratch for series keys */
    struct store_stages stages;         /* time spent in each stage, all flushes */

    uint64_t stored, duplicates, skipped, flushes, retries, swept;
};

static const struct pipit_option sqlite_options[] = {
    PIPIT_OPT_STRING_REQ("path", struct sqlite_ctx, path,
                         "Database file (created with the tables if missing)"),
    PIPIT_OPT_DURATION("retention", "0", 0, 3153600000000.0, struct sqlite_ctx, retention_ms,
                       "Delete records older than this (by record time); 0 keeps them"),
    PIPIT_OPT_DURATION("busy_timeout", "1s", 0, 60000, struct sqlite_ctx, busy_timeout_ms,
                       "How long a flush waits for another writer before retrying later"),
    PIPIT_OPT_STRING("synchronous", "full", struct sqlite_ctx, synchronous,
                     "full: fsync at each commit (no loss on power failure); normal: "
                     "only at checkpoints"),
    PIPIT_OPT_INT("wal_autocheckpoint", "1000", 0, 1e9, struct sqlite_ctx,
                  wal_autocheckpoint,
                  "Checkpoint the WAL when it reaches this many pages (0: never)"),
    PIPIT_OPT_SIZE("cache_size", "16MiB", 1 << 20, 1099511627776.0, struct sqlite_ctx, cache_size,
                   "Page cache of the connection"),
    PIPIT_OPT_END
};

static int sqlite_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* Run one statement to completion; SQLITE_OK or the error code. */
static int sqlite_run(struct sqlite_ctx *ctx, enum sqlite_stmt which)
{
    sqlite3_stmt *s = ctx->st[which];
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void sqlite_bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/*
 * Create the tables of a new database, or check the version of an existing
 * one and migrate it forward; a database made by a newer version of this
 * plugin is refused. All of it is one transaction.
 * Returns PIPIT_OK or an error with the reason logged.
 */
static int sqlite_schema(pipit_instance *ins, struct sqlite_ctx *ctx)
{
    sqlite3_stmt *s = NULL;
    int64_t version = 0;
    char *msg = NULL;
    int rc;

    rc = sqlite3_exec(ctx->db, "BEGIN IMMEDIATE; "
                      "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_prepare_v2(ctx->db, "SELECT max(version) FROM schema_version", -1, &s, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    if ((rc = sqlite3_step(s)) != SQLITE_ROW)
        goto fail;
    version = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    if (version > SQLITE_SCHEMA_VERSION) {
        api->log(ins, PIPIT_LOG_ERROR, "%s has schema version %" PRId64 ", newer than "
                 "the %d this plugin writes; upgrade pipit or use another file",
                 ctx->path, version, SQLITE_SCHEMA_VERSION);
        sqlite3_exec(ctx->db, "ROLLBACK", NULL, NULL, NULL);
        return PIPIT_ECONFIG;
    }
    if (version == 0) {
        rc = sqlite3_exec(ctx->db, sqlite_ddl_v1, NULL, NULL, &msg);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(ctx->db, "INSERT INTO schema_version (version) VALUES (1)",
                              NULL, NULL, &msg);
        if (rc != SQLITE_OK)
            goto fail;
        api->log(ins, PIPIT_LOG_INFO, "created the tables of schema version 1 in %s",
                 ctx->path);
        version = 1;
    }
    for (int64_t v = version + 1; v <= SQLITE_SCHEMA_VERSION; v++) {
        if ((rc = sqlite3_exec(ctx->db, sqlite_migrations[v], NULL, NULL, &msg)) != SQLITE_OK)
            goto fail;
        api->log(ins, PIPIT_LOG_INFO, "migrated the tables in %s to schema version %" PRId64,
                 ctx->path, v);
    }
    rc = sqlite3_exec(ctx->db, "COMMIT", NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        goto fail;
    return PIPIT_OK;
fail:
    api->log(ins, PIPIT_LOG_ERROR, "cannot set up the tables in %s: %s", ctx->path,
             msg ? msg : sqlite3_errmsg(ctx->db));
    sqlite3_free(msg);
    sqlite3_finalize(s);
    if (!sqlite3_get_autocommit(ctx->db))
        sqlite3_exec(ctx->db, "ROLLBACK", NULL, NULL, NULL);
    return rc == SQLITE_BUSY ? PIPIT_EAGAIN : PIPIT_EIO;
}

/* Apply the connection settings: WAL (refused when the file system cannot
 * have it), synchronous, checkpoints, cache. */
static int sqlite_pragmas(pipit_instance *ins, struct sqlite_ctx *ctx)
{
    char sql[256];
    char *msg = NULL;
    sqlite3_stmt *s = NULL;
    bool wal = false;

    if (sqlite3_prepare_v2(ctx->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(s, 0);
        wal = mode && strcmp(mode, "wal") == 0;
    }
    sqlite3_finalize(s);
    if (!wal) {
        api->log(ins, PIPIT_LOG_ERROR, "%s: cannot switch to WAL mode (%s)", ctx->path,
                 sqlite3_errmsg(ctx->db));
        return PIPIT_EIO;
    }
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = %lld; "
             "PRAGMA cache_size = -%lld",
             strcmp(ctx->synchronous, "normal") == 0 ? "NORMAL" : "FULL",
             (long long)ctx->wal_autocheckpoint, (long long)(ctx->cache_size / 1024));
    if (sqlite3_exec(ctx->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        api->log(ins, PIPIT_LOG_ERROR, "%s: %s", ctx->path, msg ? msg : "pragma failed");
        sqlite3_free(msg);
        return PIPIT_EIO;
    }
    return PIPIT_OK;
}

static void sqlite_close(struct sqlite_ctx *ctx)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(ctx->st[i]);
        ctx->st[i] = NULL;
    }
    if (ctx->db)
        sqlite3_close(ctx->db);
    ctx->db = NULL;
    store_rec_free(&ctx->rec);
    store_ledger_free(&ctx->ledger);
    store_map_free(&ctx->series);
    store_map_free(&ctx->series_new);
    store_buf_free(&ctx->key);
}

static void sqlite_sweep(pipit_instance *ins, void *data);

static int sqlite_init(pipit_instance *ins, void *data)
{
    struct sqlite_ctx *ctx = data;
    int rc, err = PIPIT_EIO;

    ctx->stages.names = sqlite_stage_names;
    ctx->stages.n = SQ_STAGES;
    if (strcmp(ctx->synchronous, "full") != 0 && strcmp(ctx->synchronous, "normal") != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "synchronous must be \"full\" or \"normal\", not \"%s\"",
                 ctx->synchronous);
        return PIPIT_ECONFIG;
    }
    rc = sqlite3_open_v2(ctx->path, &ctx->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                         NULL);
    if (rc != SQLITE_OK) {
        api->log(ins, PIPIT_LOG_ERROR, "cannot open %s: %s", ctx->path,
                 ctx->db ? sqlite3_errmsg(ctx->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(ctx->db, 1);
    sqlite3_busy_timeout(ctx->db, (int)ctx->busy_timeout_ms);
    if ((err = sqlite_pragmas(ins, ctx)) != PIPIT_OK ||
        (err = sqlite_schema(ins, ctx)) != PIPIT_OK)
        goto fail;
    err = PIPIT_EIO;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(ctx->db, sqlite_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &ctx->st[i], NULL);
        if (rc != SQLITE_OK) {
            api->log(ins, PIPIT_LOG_ERROR, "%s: cannot prepare a statement: %s",
                     ctx->path, sqlite3_errmsg(ctx->db));
            goto fail;
        }
    }
    if (ctx->retention_ms > 0) {
        /* a tenth of the retention, within 100 ms .. 1 min */
        int64_t p = ctx->retention_ms / 10;
        ctx->sweep_ms = (uint64_t)(p < 100 ? 100 : p > 60000 ? 60000 : p);
        rc = api->timer_start(ins, ctx->sweep_ms, ctx->sweep_ms, sqlite_sweep);
        if (rc != PIPIT_OK) {
            api->log(ins, PIPIT_LOG_ERROR, "cannot start the retention timer: %s",
                     api->strerror(rc));
            err = rc;
            goto fail;
        }
    }
    return PIPIT_OK;
fail:
    sqlite_close(ctx);
    return err;
}

/*
 * The id of the record's series, inserted when new. Ids made inside the
 * open transaction stay in series_new until it commits, so that a rollback
 * never leaves a cached id without its row. Returns an SQLite code.
 */
static int sqlite_series(struct sqlite_ctx *ctx, const struct store_rec *r, int64_t *id)
{
    struct store_buf *k = &ctx->key;
    sqlite3_stmt *s;
    int rc;

    k->len = 0;
    if (store_buf_put(k, r->name, strlen(r->name) + 1) != 0 ||
        store_buf_put(k, r->host, strlen(r->host) + 1) != 0 ||
        store_buf_put(k, r->instance, strlen(r->instance) + 1) != 0 ||
        store_buf_put(k, r->labels, r->labels_len) != 0)
        return SQLITE_NOMEM;
    if (store_map_get(&ctx->series, k->data, k->len, id) ||
        store_map_get(&ctx->series_new, k->data, k->len, id))
        return SQLITE_OK;

    s = ctx->st[ST_SERIES_SEL];
    sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->host, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, r->instance, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, r->labels, (int)r->labels_len, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc == SQLITE_DONE) {
        s = ctx->st[ST_SERIES_INS];
        sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, r->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, r->instance, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, r->labels, (int)r->labels_len, SQLITE_STATIC);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc != SQLITE_DONE)
            return rc;
        *id = sqlite3_last_insert_rowid(ctx->db);
        return store_map_put(&ctx->series_new, k->data, k->len, *id) ? SQLITE_NOMEM
                                                                      : SQLITE_OK;
    }
    if (rc != SQLITE_ROW)
        return rc;
    return store_map_put(&ctx->series, k->data, k->len, *id) ? SQLITE_NOMEM : SQLITE_OK;
}

/*
 * Insert one parsed record into its table, ignoring it when its key is
 * already stored. *stored tells which. *t is the stage timer's mark.
 * Returns an SQLite code.
 */
static int sqlite_insert(struct sqlite_ctx *ctx, const struct store_rec *r, bool *stored,
                         int64_t *t)
{
    sqlite3_stmt *s;
    int64_t series_id;
    int rc;

    switch (r->kind) {
    case PIPIT_METRIC:
        rc = sqlite_series(ctx, r, &series_id);
        store_lap(&ctx->stages, SQ_ST_SERIES, t);
        if (rc != SQLITE_OK)
            return rc;
        s = ctx->st[ST_SAMPLE];
        sqlite3_bind_int64(s, 4, series_id);
        sqlite3_bind_int64(s, 5, r->time);
        sqlite3_bind_text(s, 6, r->type, -1, SQLITE_STATIC);
        if (r->has_value) {
            sqlite3_bind_double(s, 7, r->value);
            sqlite3_bind_null(s, 8);
            sqlite3_bind_null(s, 9);
            sqlite3_bind_null(s, 10);
        } else {
            sqlite3_bind_null(s, 7);
            sqlite3_bind_text(s, 8, r->buckets, (int)r->buckets_len, SQLITE_STATIC);
            sqlite3_bind_double(s, 9, r->sum);
            sqlite3_bind_int64(s, 10, r->count);
        }
        break;
    case PIPIT_LOG:
        s = ctx->st[ST_LOG];
        sqlite3_bind_int64(s, 4, r->time);
        sqlite3_bind_text(s, 5, r->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, r->instance, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 7, r->level, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 8, r->message, -1, SQLITE_STATIC);
        sqlite_bind_text(s, 9, r->source);
        if (r->has_offset)
            sqlite3_bind_int64(s, 10, r->offset);
        else
            sqlite3_bind_null(s, 10);
        sqlite3_bind_text(s, 11, r->labels, (int)r->labels_len, SQLITE_STATIC);
        break;
    case PIPIT_COST:
        s = ctx->st[ST_COST];
        sqlite3_bind_int64(s, 4, r->time);
        sqlite3_bind_text(s, 5, r->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, r->instance, -1, SQLITE_STATIC);
        sqlite3_bind_double(s, 7, r->amount);
        sqlite3_bind_text(s, 8, r->currency, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 9, r->resource, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 10, r->period_start);
        sqlite3_bind_int64(s, 11, r->period_end);
        sqlite3_bind_text(s, 12, r->labels, (int)r->labels_len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 13, r->amount_micros);
        break;
    default:
        s = ctx->st[ST_EVENT];
        sqlite3_bind_int64(s, 4, r->time);
        sqlite3_bind_text(s, 5, r->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, r->instance, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 7, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 8, r->status, -1, SQLITE_STATIC);
        sqlite_bind_text(s, 9, r->message);
        sqlite3_bind_text(s, 10, r->labels, (int)r->labels_len, SQLITE_STATIC);
        break;
    }
    sqlite3_bind_text(s, 1, r->agent, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->seq);
    sqlite3_bind_int64(s, 3, r->idx);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    store_lap(&ctx->stages, SQ_ST_INSERT, t);
    if (rc != SQLITE_DONE)
        return rc;
    *stored = sqlite3_changes(ctx->db) > 0;
    return SQLITE_OK;
}

/*
 * Record one batch of the flush in the ledger: a new (agent, seq) row, or
 * what this flush added to an existing one; then the agent's row. The gap
 * count is the number of holes between the agent's sequence numbers: a new
 * number changes it by 1 - (neighbours already present), except for the
 * agent's first batch. Returns an SQLite code.
 */
static int sqlite_ledger(struct sqlite_ctx *ctx, const struct store_batch *b, int64_t now)
{
    sqlite3_stmt *s = ctx->st[ST_BATCH_INS];
    int64_t neighbours = 0;
    bool fresh;
    int rc;

    sqlite3_bind_text(s, 1, b->agent, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, b->seq);
    sqlite3_bind_text(s, 3, store_kind_name(b->kind), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, b->stored);
    sqlite3_bind_int64(s, 5, b->skipped);
    sqlite3_bind_int64(s, 6, now);
    if ((rc = sqlite_run(ctx, ST_BATCH_INS)) != SQLITE_OK)
        return rc;
    fresh = sqlite3_changes(ctx->db) > 0;
    if (!fresh && (b->stored || b->skipped)) {
        s = ctx->st[ST_BATCH_ADD];
        sqlite3_bind_text(s, 1, b->agent, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, b->seq);
        sqlite3_bind_int64(s, 3, b->stored);
        sqlite3_bind_int64(s, 4, b->skipped);
        if ((rc = sqlite_run(ctx, ST_BATCH_ADD)) != SQLITE_OK)
            return rc;
    }
    if (fresh) {
        s = ctx->st[ST_NEIGHBOURS];
        sqlite3_bind_text(s, 1, b->agent, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, b->seq);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            neighbours = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
            return rc;
    }
    s = ctx->st[ST_AGENT];
    sqlite3_bind_text(s, 1, b->agent, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, b->host, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_int64(s, 4, b->seq);
    sqlite3_bind_int64(s, 5, fresh);
    sqlite3_bind_int64(s, 6, b->stored);
    sqlite3_bind_int64(s, 7, b->skipped);
    sqlite3_bind_int64(s, 8, neighbours);
    return sqlite_run(ctx, ST_AGENT);
}

/* Errors that concern one record only (it is skipped, the batch goes on);
 * anything else aborts the transaction. */
static bool sqlite_record_error(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: case SQLITE_TOOBIG: case SQLITE_MISMATCH: case SQLITE_RANGE:
        return true;
    default:
        return false;
    }
}

/*
 * Store a batch in one transaction: every record (a duplicate key is
 * ignored), the ledger rows of the batch and of the origin batches of
 * relayed records, and their agents. A line that is not a valid record is
 * skipped, counted in the ledger and logged. A busy or failing database
 * rolls everything back and asks for the batch again later.
 */
static int sqlite_flush(pipit_instance *ins, void *data, const struct pipit_batch *b)
{
    struct sqlite_ctx *ctx = data;
    struct store_rec *r = &ctx->rec;
    struct store_batch *carrier, *g;
    const char *agent = b->agent_id ? b->agent_id : "", *line;
    uint64_t stored = 0, dups = 0, skipped = 0;
    size_t pos = 0, len;
    int64_t now = api->now_ns(), idx = 0, t = store_mono_ns();
    char err[256];
    int rc;

    if (b->seq > INT64_MAX) {
        api->log(ins, PIPIT_LOG_ERROR, "batch %s/%" PRIu64 ": sequence number out of range; "
                 "dropped", agent, b->seq);
        return PIPIT_ERANGE;
    }
    ctx->flushes++;
    store_ledger_reset(&ctx->ledger);
    rc = sqlite_run(ctx, ST_BEGIN);
    store_lap(&ctx->stages, SQ_ST_COMMIT, &t);
    if (rc != SQLITE_OK)
        goto fail;
    carrier = store_ledger_get(&ctx->ledger, agent, (int64_t)b->seq, b->kind,
                               api->host_name(ins));
    if (!carrier) {
        rc = SQLITE_NOMEM;
        goto fail;
    }
    for (; store_next_line(b->payload, b->payload_len, &pos, &line, &len); idx++) {
        bool is_new = false;

        int parsed = store_rec_parse(r, line, len, agent, (int64_t)b->seq, idx, err, sizeof err);
        store_lap(&ctx->stages, SQ_ST_PARSE, &t);
        if (parsed == 0) {
            g = r->relayed ? store_ledger_get(&ctx->ledger, r->agent, r->seq, r->kind, r->host)
                           : store_ledger_get(&ctx->ledger, agent, (int64_t)b->seq, b->kind,
                                              NULL);
            if (!g) {
                rc = SQLITE_NOMEM;
                goto fail;
            }
            g->lines++;
            rc = sqlite_insert(ctx, r, &is_new, &t);
            if (rc == SQLITE_OK) {
                g->stored += is_new;
                if (is_new)
                    stored++;
                else
                    dups++;
                continue;
            }
            if (!sqlite_record_error(rc) || sqlite3_get_autocommit(ctx->db))
                goto fail;
            snprintf(err, sizeof err, "refused by the database: %s", sqlite3_errmsg(ctx->db));
        }
        /* the carrier may have moved: look it up again */
        carrier = store_ledger_get(&ctx->ledger, agent, (int64_t)b->seq, b->kind, NULL);
        if (!carrier) {
            rc = SQLITE_NOMEM;
            goto fail;
        }
        carrier->skipped++;
        skipped++;
        api->log(ins, PIPIT_LOG_WARN, "batch %s/%" PRIu64 " line %" PRId64 " skipped: %s",
                 agent, b->seq, idx, err);
    }
    for (size_t i = 0; i < ctx->ledger.n; i++)
        if ((rc = sqlite_ledger(ctx, &ctx->ledger.b[i], now)) != SQLITE_OK)
            goto fail;
    store_lap(&ctx->stages, SQ_ST_LEDGER, &t);
    rc = sqlite_run(ctx, ST_COMMIT);
    store_lap(&ctx->stages, SQ_ST_COMMIT, &t);
    if (rc != SQLITE_OK)
        goto fail;
    /* the new series rows are committed: their ids may be cached for good */
    if (ctx->series.len + ctx->series_new.len > SQLITE_SERIES_CACHE_MAX)
        store_map_clear(&ctx->series);
    for (size_t i = 0; i < ctx->series_new.cap && ctx->series_new.len; i++) {
        const struct store_map_ent *e = &ctx->series_new.ents[i];
        if (e->hash && store_map_put(&ctx->series, e->key, e->klen, e->val) != 0)
            store_map_clear(&ctx->series);  /* out of memory: start again */
    }
    store_map_clear(&ctx->series_new);
    ctx->stored += stored;
    ctx->duplicates += dups;
    ctx->skipped += skipped;
    if (dups)
        api->log(ins, PIPIT_LOG_DEBUG, "batch %s/%" PRIu64 ": %" PRIu64 " records already "
                 "stored", agent, b->seq, dups);
    return PIPIT_OK;
fail:
    api->log(ins, (rc & 0xff) == SQLITE_BUSY ? PIPIT_LOG_WARN : PIPIT_LOG_ERROR,
             "batch %s/%" PRIu64 " not stored, will retry: %s (%s)", agent, b->seq,
             sqlite3_errstr(rc), sqlite3_errmsg(ctx->db));
    if (!sqlite3_get_autocommit(ctx->db))
        sqlite_run(ctx, ST_ROLLBACK);
    store_map_clear(&ctx->series_new);
    ctx->retries++;
    return PIPIT_RETRY;
}

/*
 * Retention, on the loop: delete records older than the retention (by
 * record time) and ledger rows received before it, at most
 * SQLITE_SWEEP_CHUNK rows per table in one short transaction. While rows
 * remain the next step comes SQLITE_SWEEP_AGAIN_MS later, so that flushes
 * run in between; a busy database waits for the next period.
 */
static void sqlite_sweep(pipit_instance *ins, void *data)
{
    static const enum sqlite_stmt dels[] = {
        ST_DEL_SAMPLES, ST_DEL_LOGS, ST_DEL_COSTS, ST_DEL_EVENTS, ST_DEL_BATCHES,
    };
    struct sqlite_ctx *ctx = data;
    int64_t cutoff = api->now_ns() - ctx->retention_ms * 1000000;
    int64_t deleted = 0;
    bool more = false;
    int rc;

    if ((rc = sqlite_run(ctx, ST_BEGIN)) != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < sizeof dels / sizeof dels[0]; i++) {
        sqlite3_stmt *s = ctx->st[dels[i]];
        sqlite3_bind_int64(s, 1, cutoff);
        sqlite3_bind_int(s, 2, SQLITE_SWEEP_CHUNK);
        if ((rc = sqlite_run(ctx, dels[i])) != SQLITE_OK)
            goto fail;
        int n = sqlite3_changes(ctx->db);
        deleted += n;
        more |= n >= SQLITE_SWEEP_CHUNK;
    }
    if ((rc = sqlite_run(ctx, ST_COMMIT)) != SQLITE_OK)
        goto fail;
    ctx->swept += (uint64_t)deleted;
    if (deleted)
        api->log(ins, PIPIT_LOG_DEBUG, "retention: deleted %" PRId64 " rows%s", deleted,
                 more ? ", more to go" : "");
    if (more)
        api->timer_start(ins, SQLITE_SWEEP_AGAIN_MS, ctx->sweep_ms, sqlite_sweep);
    return;
fail:
    api->log(ins, (rc & 0xff) == SQLITE_BUSY ? PIPIT_LOG_INFO : PIPIT_LOG_ERROR,
             "retention: %s (%s); trying again later", sqlite3_errstr(rc),
             sqlite3_errmsg(ctx->db));
    if (!sqlite3_get_autocommit(ctx->db))
        sqlite_run(ctx, ST_ROLLBACK);
}

static void sqlite_fini(pipit_instance *ins, void *data)
{
    struct sqlite_ctx *ctx = data;

    api->log(ins, PIPIT_LOG_INFO, "%s: %" PRIu64 " records stored, %" PRIu64 " duplicates "
             "ignored, %" PRIu64 " lines skipped, %" PRIu64 " of %" PRIu64 " flushes retried, "
             "%" PRIu64 " rows deleted by retention", ctx->path, ctx->stored, ctx->duplicates,
             ctx->skipped, ctx->retries, ctx->flushes, ctx->swept);
    char times[256];
    store_stages_format(&ctx->stages, times, sizeof times);
    api->log(ins, PIPIT_LOG_INFO, "time per stage: %s", times);
    sqlite_close(ctx);
}

PIPIT_PLUGIN_DEFINE(
    .name = "sqlite", .version = "1.0.0", .kinds = PIPIT_OUTPUT,
    .description = "Records stored in an SQLite database, once each",
    .ctx_size = sizeof(struct sqlite_ctx), .options = sqlite_options,
    .load = sqlite_load, .init = sqlite_init, .flush = sqlite_flush, .fini = sqlite_fini);
