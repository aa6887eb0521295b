/* in_prometheus: scrape Prometheus text endpoints over HTTP(S), all targets concurrently on the host's loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pipit/plugin.h>
#include "httploop.h"
#include "promlabels.h"
#include "promtext.h"

#define PROM_VERSION "1.0.0"
#define PROM_MAX_TOKEN 16384            /* bytes of a bearer token file */
#define PROM_DEFAULT_TIMEOUT_MS 10000   /* when scrape_timeout is not set */
#define PROM_ACCEPT "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1"

static const struct pipit_api *api;     /* borrowed from the host */

struct prom_ctx;

/* One configured URL and the state of its scrapes. */
struct prom_target {
    struct prom_ctx *ctx;
    const char *url;                    /* as configured, host-owned */
    char *shown;                        /* url without user:password, for logs */
    char *instance;                     /* host:port of the URL */
    CURL *easy;                         /* reused, so connections are kept */
    struct promlabels_set set;          /* job, instance, configured labels */
    bool running;                       /* a scrape is in flight */
    int64_t start_ns;                   /* wall time its scrape started */
    uint64_t malformed;                 /* lines refused, since init */
    uint64_t skipped;                   /* ticks found it still running */
    uint64_t failed;                    /* scrapes with up 0 */
    unsigned long bad;                  /* lines refused in this scrape */
    char first_bad[128];                /* where and why the first one was */
};

struct prom_ctx {
    struct pipit_strlist targets;       /* option: URLs */
    int64_t interval_ms;                /* option: scrape_interval */
    int64_t timeout_ms;                 /* option: scrape_timeout, 0 unset */
    const char *job;                    /* option, default: instance name */
    struct pipit_strmap labels;         /* option: extra target labels */
    bool honor_labels;                  /* option */
    const char *token_file;             /* option: bearer_token_file */
    const char *tls_ca_file;            /* options: TLS */
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;
    int64_t max_body;                   /* option: bytes of one body */
    int64_t max_samples;                /* option: 0 means no limit */

    pipit_instance *ins;
    struct httploop *hl;
    struct prom_target *t;              /* one per URL */
    size_t nt;
    struct curl_slist *headers;         /* Accept and the timeout hint */
    char *token;                        /* bearer token, NULL without a file */
    struct stat token_st;               /* of the file the token came from */
};

static const struct pipit_option prom_options[] = {
    { "targets", PIPIT_OPT_T_LIST, NULL, offsetof(struct prom_ctx, targets),
      PIPIT_OPT_REQUIRED, 1, 0, "URLs scraped (http or https), all at once each interval" },
    PIPIT_OPT_DURATION("scrape_interval", "15s", 10, 86400000, struct prom_ctx, interval_ms,
                       "Time between the starts of two scrapes of a target"),
    PIPIT_OPT_DURATION("scrape_timeout", NULL, 1, 86400000, struct prom_ctx, timeout_ms,
                       "A scrape lasting longer fails (default: 10s, at most 9/10 of "
                       "scrape_interval); must be less than scrape_interval"),
    PIPIT_OPT_STRING("job", NULL, struct prom_ctx, job,
                     "Value of the job label (default: the instance name)"),
    PIPIT_OPT_MAP("labels", struct prom_ctx, labels,
                  "Labels added to every record of every target"),
    PIPIT_OPT_BOOL("honor_labels", "false", struct prom_ctx, honor_labels,
                   "On a clash with a target label, keep the scraped label (true) or "
                   "rename it exported_<name> (false)"),
    PIPIT_OPT_STRING("bearer_token_file", NULL, struct prom_ctx, token_file,
                     "File holding a bearer token sent with every scrape; read again "
                     "when it changes"),
    PIPIT_OPT_STRING("tls_ca_file", NULL, struct prom_ctx, tls_ca_file,
                     "PEM file of the CA certificates that verify the targets "
                     "(default: the system's)"),
    PIPIT_OPT_STRING("tls_cert_file", NULL, struct prom_ctx, tls_cert_file,
                     "PEM client certificate (with tls_key_file)"),
    PIPIT_OPT_STRING("tls_key_file", NULL, struct prom_ctx, tls_key_file,
                     "PEM private key of tls_cert_file"),
    PIPIT_OPT_BOOL("tls_insecure_skip_verify", "false", struct prom_ctx, tls_insecure,
                   "Accept any certificate and host name (tests only)"),
    PIPIT_OPT_SIZE("max_body", "16MiB", 1024, 1073741824, struct prom_ctx, max_body,
                   "A scrape whose body (after decompression) is larger fails"),
    PIPIT_OPT_INT("max_samples", "0", 0, 1000000000, struct prom_ctx, max_samples,
                  "A scrape with more sample lines fails and emits none (0: no limit)"),
    PIPIT_OPT_END
};

static int prom_load(const struct pipit_api *host)
{
    api = host;
    return httploop_global_init(host);
}

/* ---- bearer token ------------------------------------------------------- */

/*
 * Read the token file into *out (malloc'd, trailing blanks and newlines
 * cut; free with prom_token_free) and its stat into *st. Returns NULL, or
 * why it failed; the token itself is never part of a message.
 */
static const char *prom_token_read(const char *path, char **out, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf;
    ssize_t n;

    if (fd < 0)
        return strerror(errno);
    if (fstat(fd, st) != 0) {
        close(fd);
        return strerror(errno);
    }
    if (!S_ISREG(st->st_mode) || st->st_size > PROM_MAX_TOKEN) {
        close(fd);
        return S_ISREG(st->st_mode) ? "larger than 16 KiB" : "not a regular file";
    }
    buf = malloc(PROM_MAX_TOKEN + 1);
    if (!buf) {
        close(fd);
        return "out of memory";
    }
    n = read(fd, buf, PROM_MAX_TOKEN + 1);
    close(fd);
    if (n < 0 || n > PROM_MAX_TOKEN) {
        free(buf);
        return n < 0 ? strerror(errno) : "larger than 16 KiB";
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x21 || buf[i] == 0x7f) {
            free(buf);                  /* would break the header */
            return "the token holds a blank or a control character";
        }
    if (n == 0) {
        free(buf);
        return "the file is empty";
    }
    *out = buf;
    return NULL;
}

static void prom_token_free(char *token)
{
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
}

/* Read the token file again when it changed since it was last read.
 * Returns NULL, or why it could not be read (the scrapes then fail). */
static const char *prom_token_refresh(struct prom_ctx *ctx)
{
    struct stat st;
    char *token = NULL;
    const char *why;

    if (!ctx->token_file)
        return NULL;
    if (stat(ctx->token_file, &st) == 0 && ctx->token &&
        st.st_ino == ctx->token_st.st_ino && st.st_dev == ctx->token_st.st_dev &&
        st.st_size == ctx->token_st.st_size &&
        st.st_mtim.tv_sec == ctx->token_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == ctx->token_st.st_mtim.tv_nsec)
        return NULL;
    if ((why = prom_token_read(ctx->token_file, &token, &st)) != NULL)
        return why;
    prom_token_free(ctx->token);
    ctx->token = token;
    ctx->token_st = st;
    return NULL;
}

/* ---- records ------------------------------------------------------------ */

/* Emit one health gauge or counter of target t, stamped with its scrape. */
static void prom_health(struct prom_target *t, const char *name, int type, double v)
{
    struct pipit_record r = {
        .struct_size = sizeof r, .kind = PIPIT_METRIC, .time_ns = t->start_ns,
        .labels = t->set.labels, .nlabels = t->set.n, .name = name,
        .metric_type = type, .value = v,
    };
    api->emit(t->ctx->ins, &r);
}

/*
 * The end of one scrape of t: its health records, and for a failure (why
 * set) a warning with the reason.
 */
static void prom_report(struct prom_target *t, const char *why, double seconds,
                        size_t samples)
{
    if (why) {
        t->failed++;
        api->log(t->ctx->ins, PIPIT_LOG_WARN, "scrape of %s failed: %s", t->shown, why);
    } else if (t->bad) {
        api->log(t->ctx->ins, PIPIT_LOG_WARN, "scrape of %s: %lu lines refused, the "
                 "first %s", t->shown, t->bad, t->first_bad);
    }
    prom_health(t, "up", PIPIT_GAUGE, why ? 0 : 1);
    prom_health(t, "scrape_duration_seconds", PIPIT_GAUGE, seconds);
    prom_health(t, "scrape_samples_scraped", PIPIT_GAUGE, (double)samples);
    prom_health(t, "prometheus.malformed_lines", PIPIT_COUNTER, (double)t->malformed);
    prom_health(t, "prometheus.skipped_scrapes", PIPIT_COUNTER, (double)t->skipped);
    prom_health(t, "prometheus.failed_scrapes", PIPIT_COUNTER, (double)t->failed);
}

/* Count a refused line (line 0: a record refused after parsing); the
 * first of a scrape is kept for its log line. */
static void prom_refuse(struct prom_target *t, unsigned long line, const char *why)
{
    t->malformed++;
    if (t->bad++ > 0)
        return;
    if (line)
        snprintf(t->first_bad, sizeof t->first_bad, "at line %lu: %s", line, why);
    else
        snprintf(t->first_bad, sizeof t->first_bad, "%s", why);
}

static void prom_error_cb(void *arg, unsigned long line, const char *why)
{
    prom_refuse(arg, line, why);
}

/* A scraped record with the target's labels merged in, stamped with the
 * scrape's start when the exposition gave no timestamp. */
static void prom_emit_cb(void *arg, const struct pipit_record *rec)
{
    struct prom_target *t = arg;
    struct promlabels_out out;
    struct pipit_record r = *rec;

    int rc = promlabels_merge(&t->set, rec->labels, rec->nlabels, t->ctx->honor_labels,
                              &out);

    if (rc == PIPIT_OK) {
        r.labels = out.labels;
        r.nlabels = out.n;
        if (!r.time_ns)
            r.time_ns = t->start_ns;
        api->emit(t->ctx->ins, &r);
    } else {
        prom_refuse(t, 0, rc == PIPIT_ERANGE ? "a sample of more than 64 labels with "
                    "the target's" : "out of memory for a sample's labels");
    }
    promlabels_out_free(&out);
}

/* ---- scrapes ------------------------------------------------------------ */

/* Why a finished transfer is a failed scrape, in why (NUL-terminated), or
 * false when a body of metrics arrived. */
static bool prom_failed(const struct prom_ctx *ctx, const struct httploop_result *res,
                        char *why, size_t size)
{
    if (res->too_large)
        snprintf(why, size, "the body passed max_body (%lld bytes)",
                 (long long)ctx->max_body);
    else if (res->code != CURLE_OK)
        snprintf(why, size, "%s", res->error);
    else if (res->status != 200)
        snprintf(why, size, "HTTP status %ld", res->status);
    else
        return false;
    return true;
}

/* httploop's done callback: parse the body of t's scrape and report it. */
static void prom_done(void *arg, CURL *easy, const struct httploop_result *res)
{
    struct prom_target *t = arg;
    struct prom_ctx *ctx = t->ctx;
    char why[CURL_ERROR_SIZE + 64];
    size_t samples = 0;

    (void)easy;
    t->running = false;
    if (prom_failed(ctx, res, why, sizeof why)) {
        prom_report(t, why, res->seconds, 0);
        return;
    }
    samples = promtext_samples(res->body, res->body_len);
    if (ctx->max_samples && samples > (size_t)ctx->max_samples) {
        snprintf(why, sizeof why, "%zu samples, more than max_samples (%lld)", samples,
                 (long long)ctx->max_samples);
        prom_report(t, why, res->seconds, samples);
        return;
    }
    if (promtext_parse(res->body, res->body_len, prom_emit_cb, prom_error_cb, t,
                       NULL) != PIPIT_OK) {
        prom_report(t, "out of memory while parsing", res->seconds, samples);
        return;
    }
    prom_report(t, NULL, res->seconds, samples);
}

/* Start a scrape of t, unless the last one is still running. */
static void prom_start(struct prom_target *t, const char *token_error)
{
    struct prom_ctx *ctx = t->ctx;

    if (t->running) {
        t->skipped++;
        api->log(ctx->ins, PIPIT_LOG_WARN, "scrape of %s still running at the next "
                 "interval: this one is skipped", t->shown);
        return;
    }
    t->start_ns = api->now_ns();
    t->bad = 0;
    if (token_error) {
        char why[256];

        snprintf(why, sizeof why, "cannot read bearer_token_file %s: %s", ctx->token_file,
                 token_error);
        prom_report(t, why, 0, 0);
        return;
    }
    if (ctx->token)
        curl_easy_setopt(t->easy, CURLOPT_XOAUTH2_BEARER, ctx->token);
    if (httploop_start(ctx->hl, t->easy, (size_t)ctx->max_body, prom_done, t) != PIPIT_OK) {
        prom_report(t, "the transfer could not be started", 0, 0);
        return;
    }
    t->running = true;
}

/* Every scrape_interval: read the token file again when it changed, then
 * start the scrape of every target at once. */
static void prom_tick(void *arg)
{
    struct prom_ctx *ctx = arg;
    const char *token_error = prom_token_refresh(ctx);

    for (size_t i = 0; i < ctx->nt; i++)
        prom_start(&ctx->t[i], token_error);
}

/* ---- set-up ------------------------------------------------------------- */

/*
 * Set the options of t's easy handle that stay the same for every scrape.
 * Returns PIPIT_OK, or an error with the reason logged.
 */
static int prom_easy_setup(struct prom_ctx *ctx, struct prom_target *t)
{
    CURL *e = t->easy;
    CURLcode c = CURLE_OK;

#define PROM_SET(opt, val) do { if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); } while (0)
    PROM_SET(CURLOPT_URL, t->url);
    PROM_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    PROM_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    PROM_SET(CURLOPT_FOLLOWLOCATION, 1L);
    PROM_SET(CURLOPT_MAXREDIRS, 5L);
    PROM_SET(CURLOPT_TIMEOUT_MS, (long)ctx->timeout_ms);
    PROM_SET(CURLOPT_HTTPHEADER, ctx->headers);
    PROM_SET(CURLOPT_USERAGENT, "pipit-prometheus/" PROM_VERSION);
    PROM_SET(CURLOPT_ACCEPT_ENCODING, "");
    if (ctx->token_file)
        PROM_SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    if (c == CURLE_OK)
        c = httploop_set_tls(e, ctx->tls_ca_file, ctx->tls_cert_file, ctx->tls_key_file,
                             ctx->tls_insecure);
#undef PROM_SET
    if (c != CURLE_OK) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "target %s: libcurl refused an option: %s",
                 t->shown, curl_easy_strerror(c));
        return PIPIT_ECONFIG;
    }
    return PIPIT_OK;
}

/*
 * Read URL u into t: the shown form without credentials and the instance
 * label host:port. Returns PIPIT_OK, or PIPIT_ECONFIG with the reason
 * logged (the URL is not repeated when it may hold a password).
 */
static int prom_target_parse(struct prom_ctx *ctx, struct prom_target *t, const char *u)
{
    struct httploop_url p;
    char why[512];
    const char *err = httploop_url_parse(u, "targets", &p, why, sizeof why);
    int rc = PIPIT_OK;

    t->url = u;
    if (err) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s", err);
        return strcmp(err, "out of memory") == 0 ? PIPIT_ENOMEM : PIPIT_ECONFIG;
    }
    if (asprintf(&t->instance, "%s:%s", p.host, p.port) < 0) {
        t->instance = NULL;
        rc = PIPIT_ENOMEM;
    }
    t->shown = p.shown;
    p.shown = NULL;
    httploop_url_free(&p);
    return rc;
}

/* Check the options that depend on each other; log and return
 * PIPIT_ECONFIG for the first that does not hold. */
static int prom_check(struct prom_ctx *ctx)
{
    const char *why = NULL;
    char buf[4400];

    if (!ctx->timeout_ms) {
        ctx->timeout_ms = ctx->interval_ms * 9 / 10;
        if (ctx->timeout_ms > PROM_DEFAULT_TIMEOUT_MS)
            ctx->timeout_ms = PROM_DEFAULT_TIMEOUT_MS;
        if (!ctx->timeout_ms)
            ctx->timeout_ms = 1;
    }
    if (ctx->timeout_ms >= ctx->interval_ms)
        why = "scrape_timeout must be less than scrape_interval";
    else if (ctx->targets.count == 0)
        why = "targets is empty";
    else if (ctx->job && !*ctx->job)
        why = "job is empty";
    else
        why = httploop_check_tls_files(ctx->tls_ca_file, ctx->tls_cert_file,
                                       ctx->tls_key_file, buf, sizeof buf);
    if (why) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "%s", why);
        return PIPIT_ECONFIG;
    }
    for (size_t i = 0; i < ctx->targets.count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(ctx->targets.items[i], ctx->targets.items[j]) == 0) {
                api->log(ctx->ins, PIPIT_LOG_ERROR, "targets: item %zu repeats item %zu",
                         i + 1, j + 1);
                return PIPIT_ECONFIG;
            }
    return PIPIT_OK;
}

/* The headers of every scrape: the format asked for, and the timeout as
 * Prometheus announces it, so that exporters can bound their own work. */
static int prom_headers(struct prom_ctx *ctx)
{
    char hint[96];
    struct curl_slist *l;

    snprintf(hint, sizeof hint, "X-Prometheus-Scrape-Timeout-Seconds: %.3f",
             (double)ctx->timeout_ms / 1000);
    l = curl_slist_append(NULL, PROM_ACCEPT);
    if (l)
        ctx->headers = curl_slist_append(l, hint);
    if (!ctx->headers) {
        curl_slist_free_all(l);
        return PIPIT_ENOMEM;
    }
    return PIPIT_OK;
}

static void prom_targets_free(struct prom_ctx *ctx)
{
    for (size_t i = 0; i < ctx->nt; i++) {
        struct prom_target *t = &ctx->t[i];

        if (t->easy)
            curl_easy_cleanup(t->easy);
        free(t->shown);
        free(t->instance);
    }
    free(ctx->t);
    ctx->t = NULL;
    ctx->nt = 0;
}

/* Make one target per URL, each with its label set and easy handle. */
static int prom_targets(struct prom_ctx *ctx)
{
    const char *job = ctx->job ? ctx->job : api->instance_name(ctx->ins);
    char why[160];
    int rc;

    ctx->t = calloc(ctx->targets.count, sizeof *ctx->t);
    if (!ctx->t)
        return PIPIT_ENOMEM;
    for (size_t i = 0; i < ctx->targets.count; i++) {
        struct prom_target *t = &ctx->t[ctx->nt++];

        t->ctx = ctx;
        if ((rc = prom_target_parse(ctx, t, ctx->targets.items[i])) != PIPIT_OK)
            return rc;
        rc = promlabels_set_init(&t->set, job, t->instance, &ctx->labels, why, sizeof why);
        if (rc != PIPIT_OK) {
            api->log(ctx->ins, PIPIT_LOG_ERROR, "labels: %s", why);
            return rc;
        }
        if (!(t->easy = curl_easy_init()))
            return PIPIT_ENOMEM;
        if ((rc = prom_easy_setup(ctx, t)) != PIPIT_OK)
            return rc;
    }
    return PIPIT_OK;
}

static void prom_cleanup(struct prom_ctx *ctx)
{
    httploop_free(ctx->hl, NULL);       /* the easy handles are the targets' */
    ctx->hl = NULL;
    prom_targets_free(ctx);
    curl_slist_free_all(ctx->headers);
    ctx->headers = NULL;
    prom_token_free(ctx->token);
    ctx->token = NULL;
}

static int prom_init(pipit_instance *ins, void *data)
{
    struct prom_ctx *ctx = data;
    int rc;

    ctx->ins = ins;
    if ((rc = prom_check(ctx)) != PIPIT_OK)
        return rc;
    if (ctx->token_file) {
        const char *why = prom_token_read(ctx->token_file, &ctx->token, &ctx->token_st);
        if (why) {
            api->log(ins, PIPIT_LOG_ERROR, "cannot read bearer_token_file %s: %s",
                     ctx->token_file, why);
            return PIPIT_ECONFIG;
        }
    }
    if ((rc = prom_headers(ctx)) != PIPIT_OK || (rc = prom_targets(ctx)) != PIPIT_OK)
        goto fail;
    if (!(ctx->hl = httploop_new(api, ins))) {
        rc = PIPIT_ENOMEM;
        goto fail;
    }
    rc = httploop_tick(ctx->hl, 0, (uint64_t)ctx->interval_ms, prom_tick, ctx);
    if (rc != PIPIT_OK)
        goto fail;
    return PIPIT_OK;
fail:
    if (rc == PIPIT_ENOMEM)
        api->log(ins, PIPIT_LOG_ERROR, "out of memory");
    prom_cleanup(ctx);
    return rc;
}

static void prom_fini(pipit_instance *ins, void *data)
{
    (void)ins;
    prom_cleanup(data);
}

PIPIT_PLUGIN_DEFINE(
    .name = "prometheus",
    .version = PROM_VERSION,
    .description = "Scrape Prometheus text endpoints over HTTP(S)",
    .kinds = PIPIT_COLLECTOR,
    .ctx_size = sizeof(struct prom_ctx),
    .options = prom_options,
    .load = prom_load,
    .init = prom_init,
    .fini = prom_fini,
);
