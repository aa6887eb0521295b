/* in_billing_export: provider cost exports (CSV, JSON, NDJSON; a file or an HTTP URL) read each pass, every line item emitted once. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pipit/plugin.h>
#include "csv.h"
#include "decimal.h"
#include "httploop.h"
#include "idset.h"
#include "item.h"
#include "jsonitems.h"

#define BX_VERSION "1.0.0"
#define BX_STATE_NAME "billing_export.state"
#define BX_LABELS_MAX 60                /* the mapped ones; records hold 64 */
#define BX_MAX_HEADERS 64
#define BX_CHUNK 65536                  /* bytes read from a file at a time */
#define BX_ERRBODY 256                  /* bytes of an error answer logged */

static const struct pipit_api *api;     /* borrowed from the host */

enum bx_format { BX_AUTO = 0, BX_CSV, BX_JSON, BX_NDJSON };

static const char *const bx_format_names[] = { "auto", "csv", "json", "ndjson" };

/* A mark not acknowledged yet: what its ack commits besides identities. */
struct bx_pending {
    uint64_t token;
    char *validator;                    /* the export as read then, or NULL */
    size_t vlen;
    bool has_validator;                 /* the pass was complete */
    struct bx_pending *next;
};

struct bx_ctx {
    const char *path;                   /* option: a file, or */
    const char *url;                    /* option: an http(s) URL */
    const char *format;                 /* option: auto, csv, json, ndjson */
    const char *json_path;              /* option: where the items are */
    const char *delimiter;              /* option: CSV field separator */
    struct pipit_strmap columns;        /* option: field -> column */
    struct pipit_strmap labels;         /* option: label -> column */
    const char *currency;               /* option: fixed currency */
    int64_t max_row_bytes;              /* option */
    int64_t max_document_bytes;         /* option: a JSON document read whole */
    int64_t max_tracked;                /* option: identities kept */
    int64_t log_refused;                /* option: refused rows logged per pass */
    struct pipit_strmap headers;        /* option: request headers, secret */
    int64_t timeout_ms;                 /* option */
    const char *tls_ca_file;            /* options: TLS */
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;

    pipit_instance *ins;
    enum bx_format fmt;                 /* format parsed */
    char delim;
    const char *source;                 /* path, or url without credentials */
    char *shown;                        /* url without user:password, malloc'd */
    const char *colname[ITEM_NFIELDS];  /* columns mapped, NULL when not */
    unsigned char mapped[ITEM_NFIELDS];
    const char **label_keys;            /* sorted by key; from labels */
    const char **label_cols;
    size_t nlabels;
    struct curl_slist *hdrs;
    char cfg_digest[17];                /* hex: the options that shape items */
    char state_path[4200];              /* "" when there is no state dir */
    bool can_mark;

    pthread_mutex_t mu;                 /* the below: collect() vs ack() */
    bool mu_made;
    struct idset ids;                   /* emitted: committed and pending */
    char *validator;                    /* of the last complete pass */
    size_t vlen;
    char *committed_validator;          /* as saved in the state file */
    size_t committed_vlen;
    struct bx_pending *pend, **pend_tail;
    uint64_t next_token;
    bool save_failed;                   /* retry the save at the next ack */

    /* totals since init, reported as counters */
    uint64_t t_read, t_emitted, t_dups, t_expired, t_refused, t_passes, t_failed,
        t_unchanged;
};

static const struct pipit_option bx_options[] = {
    PIPIT_OPT_STRING("path", NULL, struct bx_ctx, path,
                     "Export file read each pass (give path or url)"),
    PIPIT_OPT_STRING("url", NULL, struct bx_ctx, url,
                     "Export fetched each pass over http or https (give path or url); "
                     "user:password@ in it is sent as Basic authentication and never logged"),
    PIPIT_OPT_STRING("format", "auto", struct bx_ctx, format,
                     "csv, json, ndjson, or auto: by the file extension or Content-Type, "
                     "else by the first byte"),
    PIPIT_OPT_STRING("json_path", "", struct bx_ctx, json_path,
                     "Dotted key path to the array of line items in a JSON document "
                     "(\"\": the document is the array)"),
    PIPIT_OPT_STRING("delimiter", ",", struct bx_ctx, delimiter,
                     "CSV field separator: one character, or \"tab\""),
    PIPIT_OPT_MAP("columns", struct bx_ctx, columns,
                  "Line item field -> export column (CSV header name, or dotted JSON key): "
                  "amount (required), id, currency, resource, start, end"),
    PIPIT_OPT_MAP("labels", struct bx_ctx, labels,
                  "Record label -> export column; a source label naming the export is added"),
    PIPIT_OPT_STRING("currency", NULL, struct bx_ctx, currency,
                     "ISO 4217 code of items whose currency column is absent or empty"),
    PIPIT_OPT_SIZE("max_row_bytes", "1MiB", 64, 1073741824, struct bx_ctx, max_row_bytes,
                   "Longest CSV row or NDJSON line; a longer one is refused and skipped"),
    PIPIT_OPT_SIZE("max_document_bytes", "256MiB", 1024, 17179869184, struct bx_ctx,
                   max_document_bytes,
                   "Largest JSON document (format json is read whole; csv and ndjson "
                   "stream)"),
    PIPIT_OPT_INT("max_tracked", "500000", 1, 100000000, struct bx_ctx, max_tracked,
                  "Line item identities remembered; past it those whose period ended "
                  "longest ago are forgotten and older items are skipped"),
    PIPIT_OPT_INT("log_refused", "10", 0, 1000000, struct bx_ctx, log_refused,
                  "Refused rows logged one by one in a pass (all are counted)"),
    PIPIT_OPT_MAP("headers", struct bx_ctx, headers,
                  "Request headers, name: value (values are never logged)"),
    PIPIT_OPT_DURATION("timeout", "5m", 100, 86400000, struct bx_ctx, timeout_ms,
                       "A transfer not done by then fails the pass"),
    PIPIT_OPT_STRING("tls_ca_file", NULL, struct bx_ctx, tls_ca_file,
                     "PEM file of the CA certificates that verify the server "
                     "(default: the system's)"),
    PIPIT_OPT_STRING("tls_cert_file", NULL, struct bx_ctx, tls_cert_file,
                     "PEM client certificate (with tls_key_file)"),
    PIPIT_OPT_STRING("tls_key_file", NULL, struct bx_ctx, tls_key_file,
                     "PEM private key of tls_cert_file"),
    PIPIT_OPT_BOOL("tls_insecure_skip_verify", "false", struct bx_ctx, tls_insecure,
                   "Accept any certificate and host name"),
    PIPIT_OPT_END
};

static int bx_load(const struct pipit_api *host)
{
    api = host;
    return httploop_global_init(host);
}

/* ---- a pass ------------------------------------------------------------- */

/* The reading of the export once, from its first byte to its last. */
struct bx_pass {
    struct bx_ctx *ctx;
    enum bx_format fmt;
    uint64_t token;                     /* tag of the identities emitted */
    int64_t now_ns;
    char *buf;                          /* bytes not parsed yet / the document */
    size_t len, cap;
    struct csv_row row;
    bool header_done;
    bool first_bytes;                   /* a UTF-8 BOM may come first */
    size_t *cols;                       /* CSV: index per field, then per label */
    uint64_t line;                      /* line number where the next row starts */
    uint64_t rows;                      /* data rows or items seen */
    bool skipping;                      /* NDJSON: inside a too-long line */
    struct idset occur;                 /* rows of the same digest this pass */
    bool fatal;                         /* the export as a whole was refused */
    bool incomplete;                    /* something to retry: read it again */
    uint64_t read, emitted, dups, expired, refused;
};

#define BX_NOCOL ((size_t)-1)

/* Log a refused row, counted; past log_refused only counted. */
PIPIT_PRINTF(2, 3)
static void bx_refuse(struct bx_pass *p, const char *fmt, ...)
{
    va_list ap;

    p->refused++;
    if ((int64_t)p->refused > p->ctx->log_refused)
        return;
    char msg[1024];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api->log(p->ctx->ins, PIPIT_LOG_WARN, "%s %s; row refused%s", p->ctx->source, msg,
             (int64_t)p->refused == p->ctx->log_refused
                 ? " (further refused rows of this pass are only counted)" : "");
}

/*
 * One line item from the text of its fields (vals by enum item_field,
 * lvals by label, NULL when absent): read it, find its identity, and emit
 * it unless it was emitted before. loc says where it is ("line 4 (row 3)"),
 * and what its columns are called is said as "column" or "key".
 */
static void bx_item(struct bx_pass *p, const char *const vals[ITEM_NFIELDS],
                    const char *const *lvals, const char *loc, const char *what)
{
    struct bx_ctx *ctx = p->ctx;
    struct item it;
    char why[256];
    int bad;
    unsigned char base[ITEM_DIGEST_LEN], id[ITEM_DIGEST_LEN];

    p->read++;
    if (item_read(vals, ctx->mapped, ctx->currency, &it, &bad, why, sizeof why) != 0) {
        if (ctx->colname[bad])
            bx_refuse(p, "%s, %s \"%s\" (%s): %s", loc, what, ctx->colname[bad],
                      item_field_names[bad], why);
        else
            bx_refuse(p, "%s, %s: %s", loc, item_field_names[bad], why);
        return;
    }
    if (!it.start_ns && !it.end_ns)
        it.start_ns = it.end_ns = p->now_ns;   /* no period given: the pass's */
    if (item_digest(&it, ctx->label_keys, lvals, ctx->nlabels, base) != 0) {
        p->incomplete = true;
        return;
    }
    if (it.id) {
        memcpy(id, base, sizeof id);
    } else {
        struct idset_entry *o = idset_find(&p->occur, base);
        uint64_t nth = o ? o->tag++ : 0;

        if (!o && !idset_add(&p->occur, base, 0, 1)) {
            p->incomplete = true;
            return;
        }
        if (nth > UINT32_MAX || item_digest_nth(base, (uint32_t)nth, id) != 0) {
            p->incomplete = true;
            return;
        }
    }

    pthread_mutex_lock(&ctx->mu);
    bool seen = idset_find(&ctx->ids, id) != NULL;
    bool expired = !seen && it.end_ns <= ctx->ids.horizon_ns;
    pthread_mutex_unlock(&ctx->mu);
    if (seen) {
        p->dups++;
        return;
    }
    if (expired) {
        p->expired++;
        return;
    }

    struct pipit_label labels[BX_LABELS_MAX + 1];
    size_t nl = 0;
    for (size_t i = 0; i < ctx->nlabels; i++)
        if (lvals[i] && *lvals[i])
            labels[nl++] = (struct pipit_label){ ctx->label_keys[i], lvals[i] };
    labels[nl++] = (struct pipit_label){ "source", ctx->source };
    struct pipit_record r = {
        .struct_size = sizeof r, .kind = PIPIT_COST, .time_ns = p->now_ns,
        .labels = labels, .nlabels = nl, .amount = (double)it.amount_micros / 1e6,
        .amount_micros = it.amount_micros, .currency = it.currency,
        .resource = it.resource, .period_start_ns = it.start_ns,
        .period_end_ns = it.end_ns,
    };
    int rc = api->emit(ctx->ins, &r);
    if (rc != PIPIT_OK) {
        /* not emitted, not remembered: the next pass tries it again */
        if (!p->incomplete)
            api->log(ctx->ins, PIPIT_LOG_WARN, "%s %s: the item was not taken (%s); it is "
                     "read again next pass", ctx->source, loc, api->strerror(rc));
        p->incomplete = true;
        return;
    }
    pthread_mutex_lock(&ctx->mu);
    if (!idset_add(&ctx->ids, id, it.end_ns, p->token))
        p->incomplete = true;           /* emitted, may come again: at least once */
    pthread_mutex_unlock(&ctx->mu);
    p->emitted++;
}

/* ---- CSV ---------------------------------------------------------------- */

/* Find the mapped columns in the header row; false (logged) when a field's
 * column is not there. */
static bool bx_csv_header(struct bx_pass *p, const struct csv_row *row)
{
    struct bx_ctx *ctx = p->ctx;
    size_t n = ITEM_NFIELDS + ctx->nlabels;

    p->cols = malloc(n * sizeof *p->cols);
    if (!p->cols) {
        p->fatal = true;
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        const char *want = k < ITEM_NFIELDS ? ctx->colname[k] : ctx->label_cols[k - ITEM_NFIELDS];

        p->cols[k] = BX_NOCOL;
        if (!want)
            continue;
        for (size_t i = 0; i < row->nfields; i++)
            if (!strcmp(row->fields[i], want)) {
                p->cols[k] = i;
                break;
            }
        if (p->cols[k] != BX_NOCOL)
            continue;
        if (k < ITEM_NFIELDS) {
            api->log(ctx->ins, PIPIT_LOG_ERROR, "%s line %" PRIu64 ": the header has no "
                     "column \"%s\" (columns.%s); nothing of this pass is read",
                     ctx->source, p->line, want, item_field_names[k]);
            p->fatal = true;
            return false;
        }
        api->log(ctx->ins, PIPIT_LOG_WARN, "%s line %" PRIu64 ": the header has no column "
                 "\"%s\" (labels.%s); items are read without that label", ctx->source,
                 p->line, want, ctx->label_keys[k - ITEM_NFIELDS]);
    }
    return true;
}

/* One CSV row that began at p->line: the header, or a line item. */
static void bx_csv_row(struct bx_pass *p, struct csv_row *row)
{
    struct bx_ctx *ctx = p->ctx;
    const char *vals[ITEM_NFIELDS], *lvals[BX_LABELS_MAX];
    char loc[96];

    if (p->first_bytes && row->nfields && !strncmp(row->fields[0], "\xEF\xBB\xBF", 3))
        memmove(row->fields[0], row->fields[0] + 3, strlen(row->fields[0] + 3) + 1);
    p->first_bytes = false;
    if (row->nfields == 1 && !row->fields[0][0])
        return;                         /* a blank line */
    if (!p->header_done) {
        p->header_done = true;
        bx_csv_header(p, row);
        return;
    }
    p->rows++;
    snprintf(loc, sizeof loc, "line %" PRIu64 " (row %" PRIu64 ")", p->line, p->rows);
    for (int f = 0; f < ITEM_NFIELDS; f++)
        if (p->cols[f] != BX_NOCOL && p->cols[f] >= row->nfields) {
            p->read++;
            bx_refuse(p, "%s, column \"%s\" (%s): is missing (the row has %zu fields)", loc,
                      ctx->colname[f], item_field_names[f], row->nfields);
            return;
        }
    for (size_t k = 0; k < ITEM_NFIELDS + ctx->nlabels; k++) {
        const char *v = p->cols[k] != BX_NOCOL && p->cols[k] < row->nfields
                            ? row->fields[p->cols[k]] : NULL;
        if (k < ITEM_NFIELDS)
            vals[k] = v;
        else
            lvals[k - ITEM_NFIELDS] = v;
    }
    bx_item(p, vals, lvals, loc, "column");
}

static uint64_t bx_count_lines(const char *s, size_t n)
{
    uint64_t k = 0;

    for (const char *e = s + n; (s = memchr(s, '\n', (size_t)(e - s))) != NULL; s++)
        k++;
    return k;
}

/* Parse the complete CSV rows in p->buf (all of it when final) and keep
 * the rest for more bytes. */
static void bx_csv_drain(struct bx_pass *p, bool final)
{
    struct bx_ctx *ctx = p->ctx;
    size_t off = 0;

    while (!p->fatal && off < p->len) {
        size_t used;
        int rc = csv_next_row(p->buf + off, p->len - off, final, (size_t)ctx->max_row_bytes,
                              ctx->delim, &p->row, &used);
        if (rc == CSV_NEED_MORE)
            break;
        if (rc == CSV_ENOMEM) {
            p->fatal = true;
            break;
        }
        if (rc == CSV_ROW) {
            bx_csv_row(p, &p->row);
        } else if (rc == CSV_ETOOLONG || rc == CSV_EQUOTE) {
            if (p->header_done)
                p->rows++;
            p->read++;
            if (rc == CSV_ETOOLONG)
                bx_refuse(p, "line %" PRIu64 " (row %" PRIu64 "): longer than max_row_bytes "
                          "(%" PRId64 "); skipped to the next line break", p->line, p->rows,
                          ctx->max_row_bytes);
            else
                bx_refuse(p, "line %" PRIu64 " (row %" PRIu64 "): a quoted field is not "
                          "closed, or text follows its closing quote", p->line, p->rows);
            if (!p->header_done) {
                api->log(ctx->ins, PIPIT_LOG_ERROR, "%s line %" PRIu64 ": the header row "
                         "cannot be read; nothing of this pass is read", ctx->source, p->line);
                p->fatal = true;
            }
        }
        p->line += bx_count_lines(p->buf + off, used);
        off += used;
    }
    memmove(p->buf, p->buf + off, p->len - off);
    p->len -= off;
}

/* ---- JSON --------------------------------------------------------------- */

/* One JSON line item: the text of its fields by their dotted keys. */
static void bx_json_item(struct bx_pass *p, json_t *item, const char *loc)
{
    struct bx_ctx *ctx = p->ctx;
    const char *vals[ITEM_NFIELDS], *lvals[BX_LABELS_MAX];
    char nums[ITEM_NFIELDS + BX_LABELS_MAX][JITEMS_NUM_MAX];

    if (!json_is_object(item)) {
        p->read++;
        bx_refuse(p, "%s: not an object", loc);
        return;
    }
    for (size_t k = 0; k < ITEM_NFIELDS + ctx->nlabels; k++) {
        const char *key = k < ITEM_NFIELDS ? ctx->colname[k] : ctx->label_cols[k - ITEM_NFIELDS];
        const char *v = NULL;

        if (key && jsonitems_text(item, key, nums[k], &v) != 0) {
            p->read++;
            bx_refuse(p, "%s, key \"%s\" (%s): is an object or an array, not a value", loc,
                      key, k < ITEM_NFIELDS ? item_field_names[k]
                                            : ctx->label_keys[k - ITEM_NFIELDS]);
            return;
        }
        if (k < ITEM_NFIELDS)
            vals[k] = v;
        else
            lvals[k - ITEM_NFIELDS] = v;
    }
    bx_item(p, vals, lvals, loc, "key");
}

/* The whole JSON document in p->buf: its items at json_path. */
static void bx_json_doc(struct bx_pass *p)
{
    struct bx_ctx *ctx = p->ctx;
    json_error_t err;
    char why[256], loc[64];
    json_t *doc = json_loadb(p->buf, p->len, 0, &err), *items, *item;
    size_t i;

    if (!doc) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s line %d, column %d: not JSON: %s; nothing "
                 "of this pass is read", ctx->source, err.line, err.column, err.text);
        p->fatal = true;
        return;
    }
    if (!(items = jsonitems_select(doc, ctx->json_path, why, sizeof why))) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s: %s; nothing of this pass is read",
                 ctx->source, why);
        p->fatal = true;
        json_decref(doc);
        return;
    }
    json_array_foreach(items, i, item) {
        p->rows++;
        snprintf(loc, sizeof loc, "item %zu", i + 1);
        bx_json_item(p, item, loc);
    }
    json_decref(doc);
}

/* Parse the complete NDJSON lines in p->buf (all of it when final). */
static void bx_ndjson_drain(struct bx_pass *p, bool final)
{
    struct bx_ctx *ctx = p->ctx;
    size_t off = 0;
    char loc[64];

    while (off < p->len) {
        char *s = p->buf + off, *nl = memchr(s, '\n', p->len - off);
        size_t n = nl ? (size_t)(nl - s) : p->len - off;

        if (!nl && !final && n <= (size_t)ctx->max_row_bytes)
            break;
        if (p->skipping) {              /* the rest of a too-long line */
            if (nl || final)
                p->skipping = false;
        } else if (n > (size_t)ctx->max_row_bytes) {
            p->rows++;
            p->read++;
            bx_refuse(p, "line %" PRIu64 ": longer than max_row_bytes (%" PRId64 "); skipped",
                      p->line, ctx->max_row_bytes);
            p->skipping = !nl && !final;
        } else {
            size_t b = 0;
            if (p->first_bytes && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
                b = 3;
            while (b < n && strchr(" \t\r", s[b]))
                b++;
            if (b < n) {
                json_error_t err;
                json_t *item = json_loadb(s + b, n - b, 0, &err);

                p->rows++;
                snprintf(loc, sizeof loc, "line %" PRIu64, p->line);
                if (!item) {
                    p->read++;
                    bx_refuse(p, "line %" PRIu64 ", column %d: not JSON: %s", p->line,
                              err.column + (int)b, err.text);
                } else {
                    bx_json_item(p, item, loc);
                    json_decref(item);
                }
            }
        }
        p->first_bytes = false;
        p->line += nl != NULL;
        off += n + (nl != NULL);
    }
    memmove(p->buf, p->buf + off, p->len - off);
    p->len -= off;
}

/* ---- feeding bytes ------------------------------------------------------ */

/* Take the next n bytes of the export. False when the pass cannot go on. */
static bool bx_feed(struct bx_pass *p, const char *data, size_t n)
{
    struct bx_ctx *ctx = p->ctx;

    if (p->fatal)
        return false;
    if (p->fmt == BX_JSON && p->len + n > (size_t)ctx->max_document_bytes) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s: the JSON document is larger than "
                 "max_document_bytes (%" PRId64 "); nothing of this pass is read",
                 ctx->source, ctx->max_document_bytes);
        p->fatal = true;
        return false;
    }
    if (p->len + n + 1 > p->cap) {
        size_t cap = p->cap ? p->cap : BX_CHUNK * 2;
        while (cap < p->len + n + 1)
            cap *= 2;
        char *b = realloc(p->buf, cap);
        if (!b) {
            api->log(ctx->ins, PIPIT_LOG_ERROR, "%s: out of memory", ctx->source);
            p->fatal = true;
            return false;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, n);
    p->len += n;
    if (p->fmt == BX_CSV)
        bx_csv_drain(p, false);
    else if (p->fmt == BX_NDJSON)
        bx_ndjson_drain(p, false);
    return !p->fatal;
}

/* The export ended: parse what is left. */
static void bx_finish(struct bx_pass *p)
{
    if (p->fatal)
        return;
    if (p->fmt == BX_CSV) {
        bx_csv_drain(p, true);
        if (!p->header_done && !p->fatal)
            api->log(p->ctx->ins, PIPIT_LOG_WARN, "%s: empty: no header row", p->ctx->source);
    } else if (p->fmt == BX_NDJSON) {
        bx_ndjson_drain(p, true);
    } else {
        bx_json_doc(p);
    }
}

/* The format of an export named name (a path or URL path) with Content-Type
 * ctype (or NULL) whose first byte is first (or -1). */
static enum bx_format bx_guess(const char *name, const char *ctype, int first)
{
    if (ctype) {
        if (!strncasecmp(ctype, "text/csv", 8) || !strncasecmp(ctype, "application/csv", 15))
            return BX_CSV;
        if (strcasestr(ctype, "ndjson") || strcasestr(ctype, "jsonl") ||
            strcasestr(ctype, "json-seq"))
            return BX_NDJSON;
        if (strcasestr(ctype, "json"))
            return BX_JSON;
    }
    if (name) {
        size_t n = strcspn(name, "?#");
        const char *dot = memrchr(name, '.', n);
        if (dot) {
            size_t el = n - (size_t)(dot - name);
            if ((el == 4 && !strncasecmp(dot, ".csv", 4)) || (el == 4 && !strncasecmp(dot, ".tsv", 4)))
                return BX_CSV;
            if (el == 5 && !strncasecmp(dot, ".json", 5))
                return BX_JSON;
            if ((el == 7 && !strncasecmp(dot, ".ndjson", 7)) || (el == 6 && !strncasecmp(dot, ".jsonl", 6)))
                return BX_NDJSON;
        }
    }
    return first == '[' || first == '{' ? BX_JSON : BX_CSV;
}

/* ---- state: identities, the validator, marks and acks -------------------- */

/* Commit what marks up to token covered: their identities and the latest
 * validator among them; bound the set and save it. Called with ctx->mu. */
static void bx_commit_locked(struct bx_ctx *ctx, uint64_t token)
{
    char why[512];

    idset_commit(&ctx->ids, token);
    while (ctx->pend && ctx->pend->token <= token) {
        struct bx_pending *q = ctx->pend;

        ctx->pend = q->next;
        if (q->has_validator) {
            free(ctx->committed_validator);
            ctx->committed_validator = q->validator;
            ctx->committed_vlen = q->vlen;
        } else {
            free(q->validator);
        }
        free(q);
    }
    if (!ctx->pend)
        ctx->pend_tail = &ctx->pend;
    size_t dropped = idset_bound(&ctx->ids, (size_t)ctx->max_tracked);
    if (dropped == (size_t)-1)
        api->log(ctx->ins, PIPIT_LOG_WARN, "out of memory bounding the identities; kept "
                 "them all");
    else if (dropped)
        api->log(ctx->ins, PIPIT_LOG_INFO, "max_tracked (%" PRId64 "): %zu identities whose "
                 "period ended by %" PRId64 " ns forgotten; items that ended by then are "
                 "skipped", ctx->max_tracked, dropped, ctx->ids.horizon_ns);
    if (!ctx->state_path[0])
        return;
    if (idset_save(&ctx->ids, ctx->state_path, ctx->committed_validator, ctx->committed_vlen,
                   why, sizeof why) != 0) {
        if (!ctx->save_failed)
            api->log(ctx->ins, PIPIT_LOG_ERROR, "%s; a restart would emit the items since "
                     "the last save again", why);
        ctx->save_failed = true;
    } else {
        ctx->save_failed = false;
    }
}

/* The host's ack: every record emitted before mark(token) is durable. */
static void bx_ack(pipit_instance *ins, void *data, uint64_t token)
{
    struct bx_ctx *ctx = data;

    (void)ins;
    pthread_mutex_lock(&ctx->mu);
    bx_commit_locked(ctx, token);
    pthread_mutex_unlock(&ctx->mu);
}

/*
 * End a pass: remember its validator when it read the whole export (so an
 * unchanged export is not read again), and when it emitted items or
 * changed the validator, mark it: its ack commits both. A host without
 * marks commits at once.
 */
static void bx_settle(struct bx_ctx *ctx, struct bx_pass *p, const char *validator, size_t vlen)
{
    bool complete = validator && !p->fatal && !p->incomplete;
    struct bx_pending *q = NULL;

    pthread_mutex_lock(&ctx->mu);
    bool changed = complete && (vlen != ctx->vlen || !ctx->validator ||
                                memcmp(validator, ctx->validator, vlen) != 0);
    if (!p->emitted && !changed) {
        pthread_mutex_unlock(&ctx->mu);
        return;
    }
    if (changed) {
        char *v = malloc(vlen + 1);
        if (v) {
            memcpy(v, validator, vlen);
            v[vlen] = '\0';
            free(ctx->validator);
            ctx->validator = v;
            ctx->vlen = vlen;
        }
    }
    if ((q = calloc(1, sizeof *q)) != NULL) {
        q->token = p->token;
        q->has_validator = changed && ctx->validator;
        if (q->has_validator && (q->validator = malloc(vlen + 1)) != NULL) {
            memcpy(q->validator, validator, vlen);
            q->validator[vlen] = '\0';
            q->vlen = vlen;
        } else {
            q->has_validator = false;
        }
        *ctx->pend_tail = q;
        ctx->pend_tail = &q->next;
    }
    pthread_mutex_unlock(&ctx->mu);
    if (ctx->can_mark && api->mark(ctx->ins, p->token) == PIPIT_OK)
        return;
    ctx->can_mark = false;
    bx_ack(ctx->ins, ctx, p->token);
}

/* The validator text: what shapes the items, then what names the export's
 * version ("file dev ino size mtime", or the ETag and Last-Modified). */
static size_t bx_validator(struct bx_ctx *ctx, char *out, size_t size, const char *a,
                           const char *b)
{
    int n = snprintf(out, size, "%s\n%s\n%s", ctx->cfg_digest, a, b ? b : "");
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

/* ---- reading a file ----------------------------------------------------- */

static int bx_read_file(struct bx_ctx *ctx, struct bx_pass *p)
{
    struct stat st, st2;
    char v[256], ver[160];
    char *chunk = NULL;
    int fd = open(ctx->path, O_RDONLY | O_CLOEXEC), rc = PIPIT_OK;
    size_t vlen;

    if (fd < 0 || fstat(fd, &st) != 0) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s: %s", ctx->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return errno == ENOENT ? PIPIT_ENOENT : PIPIT_EIO;
    }
    snprintf(ver, sizeof ver, "file %ju %ju %jd %jd.%09ld", (uintmax_t)st.st_dev,
             (uintmax_t)st.st_ino, (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    vlen = bx_validator(ctx, v, sizeof v, ver, NULL);
    pthread_mutex_lock(&ctx->mu);
    bool same = ctx->validator && vlen == ctx->vlen && !memcmp(v, ctx->validator, vlen);
    pthread_mutex_unlock(&ctx->mu);
    if (same) {
        close(fd);
        ctx->t_unchanged++;
        api->log(ctx->ins, PIPIT_LOG_DEBUG, "%s: unchanged since the last pass", ctx->path);
        return 1;
    }
    if (p->fmt == BX_AUTO) {
        unsigned char c = 0;
        ssize_t r = pread(fd, &c, 1, 0);
        p->fmt = bx_guess(ctx->path, NULL, r == 1 ? c : -1);
    }
    if (!(chunk = malloc(BX_CHUNK))) {
        close(fd);
        return PIPIT_ENOMEM;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, BX_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            api->log(ctx->ins, PIPIT_LOG_ERROR, "%s: %s", ctx->path, strerror(errno));
            p->incomplete = true;
            rc = PIPIT_EIO;
            break;
        }
        if (n == 0) {
            bx_finish(p);
            break;
        }
        if (!bx_feed(p, chunk, (size_t)n))
            break;
    }
    free(chunk);
    /* a file rewritten while it was read is read again next pass */
    if (fstat(fd, &st2) == 0 && (st2.st_size != st.st_size ||
                                 st2.st_mtim.tv_sec != st.st_mtim.tv_sec ||
                                 st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec)) {
        api->log(ctx->ins, PIPIT_LOG_INFO, "%s changed while it was read; it is read again "
                 "next pass", ctx->path);
        p->incomplete = true;
    }
    close(fd);
    bx_settle(ctx, p, v, vlen);
    return rc;
}

/* ---- fetching a URL ----------------------------------------------------- */

/* One transfer: its answer's headers and the pass its body feeds. */
struct bx_xfer {
    struct bx_ctx *ctx;
    struct bx_pass *p;
    CURL *easy;
    long status;                        /* of the final answer, once known */
    bool started;                       /* the body began */
    bool stopped;                       /* the pass refused more */
    char etag[512];
    char last_modified[128];
    char errbody[BX_ERRBODY + 1];
    size_t errlen;
};

/* Copy a header's value (blanks and CRLF trimmed) when line is "name: ...". */
static void bx_header_value(const char *line, size_t n, const char *name, char *out,
                            size_t size)
{
    size_t k = strlen(name);

    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return;
    line += k + 1;
    n -= k + 1;
    while (n && (*line == ' ' || *line == '\t')) {
        line++;
        n--;
    }
    while (n && strchr(" \t\r\n", line[n - 1]))
        n--;
    if (n < size) {
        memcpy(out, line, n);
        out[n] = '\0';
    }
}

static size_t bx_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct bx_xfer *x = arg;
    size_t n = size * nmemb;

    if (n >= 5 && !strncmp(data, "HTTP/", 5)) {     /* a new answer (redirects) */
        x->etag[0] = x->last_modified[0] = '\0';
        return n;
    }
    bx_header_value(data, n, "ETag", x->etag, sizeof x->etag);
    bx_header_value(data, n, "Last-Modified", x->last_modified, sizeof x->last_modified);
    return n;
}

static size_t bx_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct bx_xfer *x = arg;
    size_t n = size * nmemb;

    if (!x->started) {
        char *ctype = NULL;
        char *eff = NULL;

        x->started = true;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
        if (x->status >= 200 && x->status < 300 && x->p->fmt == BX_AUTO) {
            curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ctype);
            curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &eff);
            x->p->fmt = bx_guess(eff ? strrchr(eff, '/') : NULL, ctype,
                                 n ? (unsigned char)data[0] : -1);
        }
    }
    if (x->status < 200 || x->status >= 300) {
        size_t k = n < BX_ERRBODY - x->errlen ? n : BX_ERRBODY - x->errlen;
        memcpy(x->errbody + x->errlen, data, k);
        x->errlen += k;
        x->errbody[x->errlen] = '\0';
        return n;
    }
    if (!bx_feed(x->p, data, n)) {
        x->stopped = true;
        return 0;                       /* ends the transfer */
    }
    return n;
}

/* Make the easy handle of one pass: URL, limits, TLS, headers, and the
 * conditions (If-None-Match, If-Modified-Since) of the last complete pass. */
static CURL *bx_easy(struct bx_ctx *ctx, struct bx_xfer *x, struct curl_slist **cond)
{
    CURL *e = curl_easy_init();
    CURLcode c = CURLE_OK;
    char line[700];

    if (!e)
        return NULL;
    *cond = NULL;
    for (struct curl_slist *h = ctx->hdrs; h; h = h->next) {
        struct curl_slist *l = curl_slist_append(*cond, h->data);
        if (!l)
            goto fail;
        *cond = l;
    }
    pthread_mutex_lock(&ctx->mu);
    if (ctx->validator) {
        /* "cfg\netag\nlast-modified": conditions only while the options
         * that shape items are the same */
        char *v = strndup(ctx->validator, ctx->vlen);
        char *nl1 = v ? strchr(v, '\n') : NULL, *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
        if (nl2 && !strncmp(v, ctx->cfg_digest, (size_t)(nl1 - v))) {
            *nl2 = '\0';
            struct curl_slist *l = NULL;
            if (nl1[1]) {
                snprintf(line, sizeof line, "If-None-Match: %s", nl1 + 1);
                l = curl_slist_append(*cond, line);
                if (l)
                    *cond = l;
            }
            if (nl2[1]) {
                snprintf(line, sizeof line, "If-Modified-Since: %s", nl2 + 1);
                l = curl_slist_append(*cond, line);
                if (l)
                    *cond = l;
            }
        }
        free(v);
    }
    pthread_mutex_unlock(&ctx->mu);
#define BX_SET(opt, val) do { if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); } while (0)
    BX_SET(CURLOPT_URL, ctx->url);
    BX_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    BX_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    BX_SET(CURLOPT_FOLLOWLOCATION, 1L);
    BX_SET(CURLOPT_MAXREDIRS, 5L);
    BX_SET(CURLOPT_TIMEOUT_MS, (long)ctx->timeout_ms);
    BX_SET(CURLOPT_NOSIGNAL, 1L);
    BX_SET(CURLOPT_USERAGENT, "pipit-billing_export/" BX_VERSION);
    BX_SET(CURLOPT_ACCEPT_ENCODING, "");
    BX_SET(CURLOPT_HEADERFUNCTION, bx_on_header);
    BX_SET(CURLOPT_HEADERDATA, x);
    BX_SET(CURLOPT_WRITEFUNCTION, bx_on_body);
    BX_SET(CURLOPT_WRITEDATA, x);
    if (*cond)
        BX_SET(CURLOPT_HTTPHEADER, *cond);
    if (c == CURLE_OK)
        c = httploop_set_tls(e, ctx->tls_ca_file, ctx->tls_cert_file, ctx->tls_key_file,
                             ctx->tls_insecure);
#undef BX_SET
    if (c != CURLE_OK) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "libcurl refused an option: %s",
                 curl_easy_strerror(c));
        goto fail;
    }
    return e;
fail:
    curl_slist_free_all(*cond);
    *cond = NULL;
    curl_easy_cleanup(e);
    return NULL;
}

static int bx_fetch(struct bx_ctx *ctx, struct bx_pass *p)
{
    struct bx_xfer *x = calloc(1, sizeof *x);
    struct curl_slist *cond = NULL;
    char err[CURL_ERROR_SIZE] = "";
    int rc = PIPIT_OK;

    if (!x)
        return PIPIT_ENOMEM;
    x->ctx = ctx;
    x->p = p;
    if (!(x->easy = bx_easy(ctx, x, &cond))) {
        free(x);
        return PIPIT_EIO;
    }
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, err);
    CURLcode code = curl_easy_perform(x->easy);
    if (!x->started)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
    if (x->stopped) {
        rc = PIPIT_EPARSE;              /* logged by the pass */
    } else if (code != CURLE_OK) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "GET %s failed: %s", ctx->source,
                 err[0] ? err : curl_easy_strerror(code));
        p->incomplete = true;
        rc = code == CURLE_OPERATION_TIMEDOUT ? PIPIT_ETIMEDOUT : PIPIT_EIO;
    } else if (x->status == 304) {
        ctx->t_unchanged++;
        api->log(ctx->ins, PIPIT_LOG_DEBUG, "%s: not modified (304)", ctx->source);
        rc = 1;
    } else if (x->status < 200 || x->status >= 300) {
        for (size_t i = 0; i < x->errlen; i++)
            if ((unsigned char)x->errbody[i] < 0x20)
                x->errbody[i] = ' ';
        api->log(ctx->ins, PIPIT_LOG_ERROR, "GET %s: HTTP status %ld%s%s", ctx->source,
                 x->status, x->errlen ? ": " : "", x->errbody);
        rc = PIPIT_EIO;
    } else {
        if (p->fmt == BX_AUTO)          /* an empty body */
            p->fmt = bx_guess(NULL, NULL, -1);
        bx_finish(p);
    }
    if (rc == PIPIT_OK || rc == PIPIT_EPARSE || rc == PIPIT_EIO || rc == PIPIT_ETIMEDOUT) {
        char v[1024];
        size_t vlen = 0;

        /* without a validator every pass reads the export again */
        if (rc == PIPIT_OK && (x->etag[0] || x->last_modified[0]))
            vlen = bx_validator(ctx, v, sizeof v, x->etag, x->last_modified);
        bx_settle(ctx, p, vlen ? v : NULL, vlen);
    }
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(cond);
    free(x);
    return rc;
}

/* ---- collect ------------------------------------------------------------ */

/* Counters of the instance since init, labelled with the export. */
static void bx_counters(struct bx_ctx *ctx, size_t tracked)
{
    const struct { const char *name; uint64_t v; } c[] = {
        { "billing_export.rows_read", ctx->t_read },
        { "billing_export.items_emitted", ctx->t_emitted },
        { "billing_export.duplicates", ctx->t_dups },
        { "billing_export.expired", ctx->t_expired },
        { "billing_export.refused", ctx->t_refused },
        { "billing_export.passes", ctx->t_passes },
        { "billing_export.pass_failures", ctx->t_failed },
        { "billing_export.unchanged", ctx->t_unchanged },
    };
    struct pipit_label l = { "source", ctx->source };

    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        api->emit_metric(ctx->ins, PIPIT_COUNTER, c[i].name, (double)c[i].v, &l, 1);
    api->emit_metric(ctx->ins, PIPIT_GAUGE, "billing_export.tracked", (double)tracked, &l, 1);
}

/*
 * One pass: read the export unless it is unchanged since the last complete
 * pass, emit the line items not emitted before, log what it counted.
 * Runs on a worker thread; blocks for the file or the transfer.
 */
static int bx_collect(pipit_instance *ins, void *data)
{
    struct bx_ctx *ctx = data;
    struct bx_pass p = {
        .ctx = ctx, .fmt = ctx->fmt, .now_ns = api->now_ns(), .line = 1, .first_bytes = true,
    };
    int rc;

    (void)ins;
    pthread_mutex_lock(&ctx->mu);
    p.token = ++ctx->next_token;
    pthread_mutex_unlock(&ctx->mu);
    ctx->t_passes++;
    rc = ctx->path ? bx_read_file(ctx, &p) : bx_fetch(ctx, &p);
    if (rc != 1) {                      /* 1: unchanged, not read */
        if (p.fatal && rc == PIPIT_OK)
            rc = PIPIT_EPARSE;
        if (rc != PIPIT_OK)
            ctx->t_failed++;
        ctx->t_read += p.read;
        ctx->t_emitted += p.emitted;
        ctx->t_dups += p.dups;
        ctx->t_expired += p.expired;
        ctx->t_refused += p.refused;
        api->log(ins, p.refused || rc != PIPIT_OK ? PIPIT_LOG_WARN : PIPIT_LOG_INFO,
                 "%s (%s): %" PRIu64 " rows read, %" PRIu64 " emitted, %" PRIu64
                 " duplicates, %" PRIu64 " expired, %" PRIu64 " refused%s", ctx->source,
                 bx_format_names[p.fmt], p.read, p.emitted, p.dups, p.expired, p.refused,
                 rc != PIPIT_OK ? "; the pass failed" :
                 p.incomplete ? "; read again next pass" : "");
    } else {
        rc = PIPIT_OK;
    }
    pthread_mutex_lock(&ctx->mu);
    size_t tracked = ctx->ids.n;
    pthread_mutex_unlock(&ctx->mu);
    bx_counters(ctx, tracked);
    idset_free(&p.occur);
    csv_row_free(&p.row);
    free(p.cols);
    free(p.buf);
    return rc;
}

/* ---- init and fini ------------------------------------------------------ */

/* Set ctx->shown, the URL without user:password; NULL or why it is refused. */
static const char *bx_url_parse(struct bx_ctx *ctx, char *why, size_t size)
{
    struct httploop_url u;
    const char *err = httploop_url_parse(ctx->url, "url", &u, why, size);

    if (err)
        return err;
    ctx->shown = u.shown;
    u.shown = NULL;
    httploop_url_free(&u);
    return NULL;
}

static bool bx_label_name(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

/* Fingerprint the options that decide what the items of an export are: a
 * change of them reads the export again though it did not change. */
static void bx_fingerprint(struct bx_ctx *ctx)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char sep = '\0';

    memset(ctx->cfg_digest, '0', 16);
    ctx->cfg_digest[16] = '\0';
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto out;
#define BX_PUT(s) do { const char *s_ = (s) ? (s) : "-"; \
    EVP_DigestUpdate(md, s_, strlen(s_)); EVP_DigestUpdate(md, &sep, 1); } while (0)
    BX_PUT(bx_format_names[ctx->fmt]);
    BX_PUT(ctx->json_path);
    BX_PUT(ctx->delimiter);
    BX_PUT(ctx->currency);
    for (int f = 0; f < ITEM_NFIELDS; f++)
        BX_PUT(ctx->colname[f]);
    for (size_t i = 0; i < ctx->nlabels; i++) {
        BX_PUT(ctx->label_keys[i]);
        BX_PUT(ctx->label_cols[i]);
    }
#undef BX_PUT
    if (EVP_DigestFinal_ex(md, d, &n) && n >= 8)
        for (int i = 0; i < 8; i++)
            snprintf(ctx->cfg_digest + 2 * i, 3, "%02x", d[i]);
out:
    EVP_MD_CTX_free(md);
}

/* Check the options; NULL, or the first problem as "key: reason". */
static const char *bx_check(struct bx_ctx *ctx, char *why, size_t size)
{
    const char *err;

    if (!ctx->path == !ctx->url)
        return "path: give exactly one of path and url";
    if (ctx->path && !*ctx->path)
        return "path: is empty";
    if (ctx->url && (err = bx_url_parse(ctx, why, size)) != NULL)
        return err;
    ctx->source = ctx->path ? ctx->path : ctx->shown;
    ctx->fmt = (enum bx_format)-1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(ctx->format, bx_format_names[i]))
            ctx->fmt = (enum bx_format)i;
    if ((int)ctx->fmt < 0) {
        snprintf(why, size, "format: \"%.32s\" is not one of auto, csv, json, ndjson",
                 ctx->format);
        return why;
    }
    if (!strcmp(ctx->delimiter, "tab"))
        ctx->delim = '\t';
    else if (strlen(ctx->delimiter) == 1 && !strchr("\"\r\n", ctx->delimiter[0]))
        ctx->delim = ctx->delimiter[0];
    else
        return "delimiter: must be one character other than a quote or a line break, "
               "or \"tab\"";
    if (ctx->currency) {
        const char *c = ctx->currency;
        if (strlen(c) != 3 || strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
            return "currency: must be a three-letter ISO 4217 code in capitals, e.g. USD";
    }
    for (size_t i = 0; i < ctx->columns.count; i++) {
        const char *k = ctx->columns.keys[i], *v = ctx->columns.values[i];
        int f = -1;

        for (int j = 0; j < ITEM_NFIELDS; j++)
            if (!strcmp(k, item_field_names[j]))
                f = j;
        if (f < 0) {
            snprintf(why, size, "columns.%.64s: not a line item field (amount, id, "
                     "currency, resource, start, end)", k);
            return why;
        }
        if (!*v) {
            snprintf(why, size, "columns.%s: is empty", k);
            return why;
        }
        ctx->colname[f] = v;
        ctx->mapped[f] = 1;
    }
    if (!ctx->mapped[ITEM_AMOUNT])
        return "columns.amount: is required (the export column holding the cost)";
    if (!ctx->mapped[ITEM_CURRENCY] && !ctx->currency)
        return "currency: give a currency column (columns.currency) or a fixed currency";
    if (ctx->labels.count > BX_LABELS_MAX) {
        snprintf(why, size, "labels: more than %d", BX_LABELS_MAX);
        return why;
    }
    ctx->nlabels = ctx->labels.count;
    ctx->label_keys = calloc(ctx->nlabels + 1, sizeof *ctx->label_keys);
    ctx->label_cols = calloc(ctx->nlabels + 1, sizeof *ctx->label_cols);
    if (!ctx->label_keys || !ctx->label_cols)
        return "out of memory";
    for (size_t i = 0; i < ctx->nlabels; i++) {
        const char *k = ctx->labels.keys[i], *v = ctx->labels.values[i];
        size_t j = i;

        if (!bx_label_name(k) || !strcmp(k, "source")) {
            snprintf(why, size, "labels.%.64s: %s", k, !strcmp(k, "source")
                     ? "source is the label naming the export, set by the plugin"
                     : "a label name is letters, digits and _, not starting with a digit");
            return why;
        }
        if (!*v) {
            snprintf(why, size, "labels.%.64s: is empty", k);
            return why;
        }
        /* sorted by name, so that the identity does not hang on their order */
        while (j > 0 && strcmp(ctx->label_keys[j - 1], k) > 0) {
            ctx->label_keys[j] = ctx->label_keys[j - 1];
            ctx->label_cols[j] = ctx->label_cols[j - 1];
            j--;
        }
        ctx->label_keys[j] = k;
        ctx->label_cols[j] = v;
    }
    if (ctx->path && (ctx->headers.count || ctx->tls_ca_file || ctx->tls_cert_file ||
                      ctx->tls_insecure))
        return "headers: headers and tls_* options are for url, not path";
    if ((err = httploop_check_tls_files(ctx->tls_ca_file, ctx->tls_cert_file,
                                        ctx->tls_key_file, why, size)) != NULL)
        return err;
    return httploop_headers(&ctx->headers, BX_MAX_HEADERS, &ctx->hdrs, why, size);
}

/* Free what init made; safe on a partly made ctx. */
static void bx_cleanup(struct bx_ctx *ctx)
{
    while (ctx->pend) {
        struct bx_pending *q = ctx->pend;
        ctx->pend = q->next;
        free(q->validator);
        free(q);
    }
    idset_free(&ctx->ids);
    free(ctx->validator);
    free(ctx->committed_validator);
    ctx->validator = ctx->committed_validator = NULL;
    curl_slist_free_all(ctx->hdrs);
    ctx->hdrs = NULL;
    free(ctx->label_keys);
    free(ctx->label_cols);
    ctx->label_keys = ctx->label_cols = NULL;
    free(ctx->shown);
    ctx->shown = NULL;
    if (ctx->mu_made)
        pthread_mutex_destroy(&ctx->mu);
    ctx->mu_made = false;
}

/*
 * Check the options (a problem is logged naming its key: PIPIT_ECONFIG)
 * and load the identities emitted and acknowledged before, from
 * <state_dir>/billing_export.state. A state file that cannot be read is
 * logged and set aside: the export is then read as new (at least once).
 */
static int bx_init(pipit_instance *ins, void *data)
{
    struct bx_ctx *ctx = data;
    char why[512];
    const char *err, *dir;

    ctx->ins = ins;
    ctx->pend_tail = &ctx->pend;
    if (pthread_mutex_init(&ctx->mu, NULL) != 0)
        return PIPIT_ENOMEM;
    ctx->mu_made = true;
    if ((err = bx_check(ctx, why, sizeof why)) != NULL) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", err);
        bx_cleanup(ctx);
        return strcmp(err, "out of memory") ? PIPIT_ECONFIG : PIPIT_ENOMEM;
    }
    bx_fingerprint(ctx);
    ctx->can_mark = PIPIT_API_HAS(api, mark);
    dir = api->state_dir(ins);
    if (!dir) {
        api->log(ins, PIPIT_LOG_WARN, "no state directory: the items emitted are not "
                 "remembered across restarts");
    } else {
        snprintf(ctx->state_path, sizeof ctx->state_path, "%s/%s", dir, BX_STATE_NAME);
        if (idset_load(&ctx->ids, ctx->state_path, &ctx->committed_validator,
                       &ctx->committed_vlen, why, sizeof why) != 0) {
            char aside[4300];

            snprintf(aside, sizeof aside, "%s.bad", ctx->state_path);
            rename(ctx->state_path, aside);
            api->log(ins, PIPIT_LOG_ERROR, "%s; set aside as %s: the export is read as new",
                     why, aside);
        } else if (ctx->committed_validator) {
            ctx->validator = malloc(ctx->committed_vlen + 1);
            if (ctx->validator) {
                memcpy(ctx->validator, ctx->committed_validator, ctx->committed_vlen + 1);
                ctx->vlen = ctx->committed_vlen;
            }
        }
    }
    api->log(ins, PIPIT_LOG_INFO, "%s (%s): %zu identities remembered", ctx->source,
             bx_format_names[ctx->fmt], ctx->ids.n);
    return PIPIT_OK;
}

/* Stop: what was acknowledged is saved already; what was not is read and
 * emitted again after a restart. */
static void bx_fini(pipit_instance *ins, void *data)
{
    (void)ins;
    bx_cleanup(data);
}

PIPIT_PLUGIN_DEFINE(
    .name = "billing_export",
    .version = BX_VERSION,
    .description = "Provider cost exports (CSV, JSON, NDJSON; a file or an HTTP URL), "
                   "each line item emitted once",
    .kinds = PIPIT_COLLECTOR,
    .ctx_size = sizeof(struct bx_ctx),
    .options = bx_options,
    .load = bx_load,
    .init = bx_init,
    .collect = bx_collect,
    .fini = bx_fini,
    .ack = bx_ack,
);
