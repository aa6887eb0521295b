/* in_http_check: uptime and health of one HTTP(S) URL: status, body, latency, certificate expiry, state changes as events. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pipit/plugin.h>
#include "httploop.h"
#include "statuslist.h"

#define HC_VERSION "1.0.0"
#define HC_MATCH_LIMIT 1000000          /* PCRE2 backtracking steps per check */
#define HC_MAX_HEADERS 64

static const struct pipit_api *api;     /* borrowed from the host */

/* Why a check failed: the value of the reason label, fixed and few. */
enum hc_reason {
    HC_OK = 0,
    HC_DNS,                             /* the host name did not resolve */
    HC_CONNECT,                         /* refused or unreachable */
    HC_TIMEOUT,                         /* no whole answer within timeout */
    HC_TLS,                             /* handshake or certificate refused */
    HC_TRANSFER,                        /* any other transfer error */
    HC_STATUS,                          /* a status not in expect_status */
    HC_BODY,                            /* body_contains not found */
    HC_REGEX,                           /* body_regex did not match */
    HC_CERT_EXPIRY,                     /* certificate within tls_min_days */
    HC_NREASONS
};

static const char *const hc_reason_names[HC_NREASONS] = {
    "ok", "dns", "connect", "timeout", "tls", "transfer", "status", "body", "regex",
    "cert_expiry",
};

enum hc_state { HC_UNKNOWN = 0, HC_UP, HC_DOWN };

static const char *const hc_state_names[] = { "unknown", "up", "down" };

struct hc_ctx {
    const char *url;                    /* option: the URL checked, host-owned */
    const char *method;                 /* option */
    const char *request_body;           /* option: sent with the request */
    const char *expect_status;          /* option: status list text */
    const char *body_contains;          /* option: substring wanted */
    const char *body_regex;             /* option: PCRE2 pattern wanted */
    int64_t interval_ms;                /* option: check_interval */
    int64_t timeout_ms;                 /* option: timeout */
    struct pipit_strmap headers;        /* option: request headers */
    bool follow_redirects;              /* option */
    const char *tls_ca_file;            /* options: TLS */
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;
    int64_t tls_min_days;               /* option: 0 off */
    int64_t max_body;                   /* option: bytes of the body read */

    pipit_instance *ins;
    struct httploop *hl;
    CURL *easy;                         /* one transfer at a time */
    struct curl_slist *hdrs;            /* headers as curl takes them */
    char *shown;                        /* url without user:password */
    bool https;
    struct statuslist want;             /* expect_status parsed */
    pcre2_code *re;                     /* body_regex compiled, or NULL */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    bool running;                       /* a check is in flight */
    int64_t start_ns;                   /* wall time it started */
    enum hc_state state;                /* after the last check */
    uint64_t checks;                    /* checks ended, since init */
    uint64_t skipped;                   /* ticks that found one running */
    uint64_t failures[HC_NREASONS];     /* failed checks by reason */
};

static const struct pipit_option hc_options[] = {
    PIPIT_OPT_STRING_REQ("url", struct hc_ctx, url,
                         "URL checked (http or https); user:password@ in it is sent as "
                         "Basic authentication and never logged"),
    PIPIT_OPT_STRING("method", "GET", struct hc_ctx, method,
                     "Request method: GET, HEAD, POST, PUT, DELETE, OPTIONS or PATCH"),
    PIPIT_OPT_SECRET_STRING("request_body", NULL, struct hc_ctx, request_body,
                            "Body sent with the request (POST, PUT, PATCH)"),
    PIPIT_OPT_STRING("expect_status", "200-299", struct hc_ctx, expect_status,
                     "Statuses that count as up: codes, ranges and classes separated by "
                     "commas, e.g. \"200-299,301\" or \"2xx,3xx\""),
    PIPIT_OPT_STRING("body_contains", NULL, struct hc_ctx, body_contains,
                     "Text the body must contain to count as up"),
    PIPIT_OPT_STRING("body_regex", NULL, struct hc_ctx, body_regex,
                     "PCRE2 pattern the body must match to count as up"),
    PIPIT_OPT_DURATION("check_interval", "30s", 100, 86400000, struct hc_ctx, interval_ms,
                       "Time between the starts of two checks"),
    PIPIT_OPT_DURATION("timeout", "10s", 1, 86400000, struct hc_ctx, timeout_ms,
                       "A check without a whole answer by then is down (reason timeout); "
                       "must be less than check_interval"),
    PIPIT_OPT_MAP("headers", struct hc_ctx, headers,
                  "Request headers, name: value (values are never logged)"),
    PIPIT_OPT_BOOL("follow_redirects", "false", struct hc_ctx, follow_redirects,
                   "Follow up to 5 redirects to http or https and judge the last answer "
                   "(false: a 3xx is the answer)"),
    PIPIT_OPT_STRING("tls_ca_file", NULL, struct hc_ctx, tls_ca_file,
                     "PEM file of the CA certificates that verify the server "
                     "(default: the system's)"),
    PIPIT_OPT_STRING("tls_cert_file", NULL, struct hc_ctx, tls_cert_file,
                     "PEM client certificate (with tls_key_file)"),
    PIPIT_OPT_STRING("tls_key_file", NULL, struct hc_ctx, tls_key_file,
                     "PEM private key of tls_cert_file"),
    PIPIT_OPT_BOOL("tls_insecure_skip_verify", "false", struct hc_ctx, tls_insecure,
                   "Accept any certificate and host name (expiry is still reported)"),
    PIPIT_OPT_INT("tls_min_days", "0", 0, 3650, struct hc_ctx, tls_min_days,
                  "Down (reason cert_expiry) when a certificate of the chain expires "
                  "within this many days (0: never)"),
    PIPIT_OPT_SIZE("max_body", "64KiB", 0, 67108864, struct hc_ctx, max_body,
                   "Bytes of the body read and matched; the rest is not read"),
    PIPIT_OPT_END
};

static int hc_load(const struct pipit_api *host)
{
    api = host;
    return httploop_global_init(host);
}

/* ---- records ------------------------------------------------------------ */

/* Emit one metric of the check, labelled with the URL (and reason when
 * set), stamped with the check's start. */
static void hc_metric(struct hc_ctx *ctx, const char *name, int type, double v,
                      const char *reason)
{
    struct pipit_label l[2] = { { "url", ctx->shown }, { "reason", reason } };
    struct pipit_record r = {
        .struct_size = sizeof r, .kind = PIPIT_METRIC, .time_ns = ctx->start_ns,
        .labels = l, .nlabels = reason ? 2 : 1, .name = name, .metric_type = type,
        .value = v,
    };
    api->emit(ctx->ins, &r);
}

/* Emit the event of a change of state (the first result is one). */
static void hc_event(struct hc_ctx *ctx, enum hc_state from, enum hc_state to,
                     const char *detail)
{
    struct pipit_label l[3] = {
        { "url", ctx->shown }, { "method", ctx->method }, { "from", hc_state_names[from] },
    };
    struct pipit_record r = {
        .struct_size = sizeof r, .kind = PIPIT_EVENT, .time_ns = ctx->start_ns,
        .labels = l, .nlabels = 3, .name = "http_check.state", .message = detail,
        .status = hc_state_names[to],
    };
    api->emit(ctx->ins, &r);
}

/* One certificate's "Expire date" as curl's OpenSSL backend writes it
 * ("Jan  5 12:00:00 2027 GMT") in Unix seconds; false when unreadable. */
static bool hc_cert_time(const char *text, time_t *out)
{
    struct tm tm;
    const char *end;

    memset(&tm, 0, sizeof tm);
    end = strptime(text, "%b %d %H:%M:%S %Y", &tm);
    if (!end)
        return false;
    *out = timegm(&tm);
    return *out != (time_t)-1;
}

/*
 * Days until the certificate of the chain the server sent that expires
 * first, from curl's CURLINFO_CERTINFO (fractional; negative once
 * expired), or NAN when there was no TLS or no readable date.
 */
static double hc_cert_days(CURL *easy)
{
    struct curl_certinfo *ci = NULL;
    double days = NAN;
    time_t now = time(NULL);

    if (curl_easy_getinfo(easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci)
        return NAN;
    for (int i = 0; i < ci->num_of_certs; i++)
        for (struct curl_slist *s = ci->certinfo[i]; s; s = s->next) {
            time_t t;

            if (strncmp(s->data, "Expire date:", 12) != 0 || !hc_cert_time(s->data + 12, &t))
                continue;
            double d = difftime(t, now) / 86400.0;
            if (isnan(days) || d < days)
                days = d;
        }
    return days;
}

/* ---- checks ------------------------------------------------------------- */

/* The reason label of a transfer that ended with code. */
static enum hc_reason hc_curl_reason(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return HC_DNS;
    case CURLE_COULDNT_CONNECT:
        return HC_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HC_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return HC_TLS;
    default:
        return HC_TRANSFER;
    }
}

/*
 * Judge the body of an answer against body_contains and body_regex. Returns
 * HC_OK, or the reason with the detail in why.
 */
static enum hc_reason hc_body(struct hc_ctx *ctx, const struct httploop_result *res,
                              char *why, size_t size)
{
    if (ctx->body_contains &&
        !memmem(res->body, res->body_len, ctx->body_contains, strlen(ctx->body_contains))) {
        snprintf(why, size, "the body (%zu bytes read) does not contain body_contains",
                 res->body_len);
        return HC_BODY;
    }
    if (ctx->re) {
        int rc = pcre2_match(ctx->re, (PCRE2_SPTR)res->body, res->body_len, 0, 0, ctx->md,
                             ctx->mctx);
        if (rc >= 0)
            return HC_OK;
        if (rc == PCRE2_ERROR_NOMATCH) {
            snprintf(why, size, "the body (%zu bytes read) does not match body_regex",
                     res->body_len);
        } else {
            char msg[128];

            pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof msg);
            snprintf(why, size, "body_regex could not be matched: %s", msg);
        }
        return HC_REGEX;
    }
    return HC_OK;
}

/*
 * httploop's done callback: judge the answer, emit the metrics, log a
 * failure, and emit an event when the state changed.
 */
static void hc_done(void *arg, CURL *easy, const struct httploop_result *res)
{
    struct hc_ctx *ctx = arg;
    char why[CURL_ERROR_SIZE + 128] = "";
    enum hc_reason reason = HC_OK;
    double days = ctx->https ? hc_cert_days(easy) : NAN;
    double seconds = res->seconds;
    curl_off_t total_us = 0;

    ctx->running = false;
    ctx->checks++;
    if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK && total_us > 0)
        seconds = (double)total_us / 1e6;
    /* A body past max_body is cut, not a failure: what was read is judged. */
    if (res->code != CURLE_OK && !(res->too_large && res->status)) {
        reason = hc_curl_reason(res->code);
        snprintf(why, sizeof why, "%s", res->error);
    } else if (!statuslist_has(&ctx->want, res->status)) {
        reason = HC_STATUS;
        snprintf(why, sizeof why, "HTTP status %ld, expected %s", res->status,
                 ctx->expect_status);
    } else if ((reason = hc_body(ctx, res, why, sizeof why)) != HC_OK) {
        ;
    } else if (ctx->tls_min_days && !isnan(days) && days < (double)ctx->tls_min_days) {
        reason = HC_CERT_EXPIRY;
        snprintf(why, sizeof why, "a certificate expires in %.1f days, less than "
                 "tls_min_days (%lld)", days, (long long)ctx->tls_min_days);
    }

    enum hc_state was = ctx->state;
    ctx->state = reason == HC_OK ? HC_UP : HC_DOWN;
    if (reason != HC_OK) {
        ctx->failures[reason]++;
        api->log(ctx->ins, PIPIT_LOG_WARN, "check of %s %s failed (%s): %s", ctx->method,
                 ctx->shown, hc_reason_names[reason], why);
    }
    hc_metric(ctx, "http_check.up", PIPIT_GAUGE, reason == HC_OK, NULL);
    hc_metric(ctx, "http_check.response_time_seconds", PIPIT_GAUGE, seconds, NULL);
    hc_metric(ctx, "http_check.status_code", PIPIT_GAUGE, (double)res->status, NULL);
    if (!isnan(days))
        hc_metric(ctx, "http_check.cert_expiry_days", PIPIT_GAUGE, days, NULL);
    hc_metric(ctx, "http_check.checks", PIPIT_COUNTER, (double)ctx->checks, NULL);
    hc_metric(ctx, "http_check.skipped_checks", PIPIT_COUNTER, (double)ctx->skipped, NULL);
    for (int i = 1; i < HC_NREASONS; i++)
        if (ctx->failures[i] || i == (int)reason)
            hc_metric(ctx, "http_check.failures", PIPIT_COUNTER, (double)ctx->failures[i],
                      hc_reason_names[i]);
    if (ctx->state != was) {
        char detail[sizeof why + 96];

        if (reason == HC_OK)
            snprintf(detail, sizeof detail, "up: HTTP status %ld in %.3f s", res->status,
                     seconds);
        else
            snprintf(detail, sizeof detail, "down (%s): %s", hc_reason_names[reason], why);
        if (was != HC_UNKNOWN)
            api->log(ctx->ins, PIPIT_LOG_INFO, "%s %s is %s", ctx->method, ctx->shown,
                     detail);
        hc_event(ctx, was, ctx->state, detail);
    }
}

/* Every check_interval: start a check, unless the last one still runs. */
static void hc_tick(void *arg)
{
    struct hc_ctx *ctx = arg;

    if (ctx->running) {
        ctx->skipped++;
        api->log(ctx->ins, PIPIT_LOG_WARN, "check of %s still running at the next interval: "
                 "this one is skipped", ctx->shown);
        return;
    }
    ctx->start_ns = api->now_ns();
    if (httploop_start(ctx->hl, ctx->easy, (size_t)ctx->max_body, hc_done, ctx) != PIPIT_OK) {
        api->log(ctx->ins, PIPIT_LOG_ERROR, "check of %s could not be started", ctx->shown);
        return;
    }
    ctx->running = true;
}

/* ---- options ------------------------------------------------------------ */

static const char *const hc_methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", NULL,
};

/*
 * Read the URL: set ctx->shown (without user:password, malloc'd) and
 * ctx->https. Returns NULL, or why it is refused (the URL itself is not
 * repeated when it may hold a password).
 */
static const char *hc_url_parse(struct hc_ctx *ctx, char *why, size_t size)
{
    struct httploop_url u;
    const char *err = httploop_url_parse(ctx->url, "url", &u, why, size);

    if (err)
        return err;
    ctx->https = u.https;
    ctx->shown = u.shown;
    u.shown = NULL;
    httploop_url_free(&u);
    return NULL;
}

/*
 * Check every option and the ones that depend on each other, compile the
 * regex and build the header list. Returns NULL, or the first problem as
 * "key: reason" (in why, or a constant).
 */
static const char *hc_check(struct hc_ctx *ctx, char *why, size_t size)
{
    const char *err;
    bool known = false;

    if ((err = hc_url_parse(ctx, why, size)) != NULL)
        return err;
    for (int i = 0; hc_methods[i]; i++)
        known |= strcmp(ctx->method, hc_methods[i]) == 0;
    if (!known) {
        snprintf(why, size, "method: \"%.32s\" is not one of GET, HEAD, POST, PUT, DELETE, "
                 "OPTIONS, PATCH", ctx->method);
        return why;
    }
    char sw[160];
    if (statuslist_parse(ctx->expect_status, &ctx->want, sw, sizeof sw) != 0) {
        snprintf(why, size, "expect_status: %s", sw);
        return why;
    }
    if (ctx->timeout_ms >= ctx->interval_ms)
        return "timeout: must be less than check_interval";
    if (ctx->body_contains && !*ctx->body_contains)
        return "body_contains: is empty";
    if (ctx->request_body && !strcmp(ctx->method, "HEAD"))
        return "request_body: a HEAD request has no body";
    if (!strcmp(ctx->method, "HEAD") && (ctx->body_contains || ctx->body_regex))
        return "method: HEAD has no body for body_contains or body_regex to look at";
    if ((ctx->body_contains || ctx->body_regex) && ctx->max_body == 0)
        return "max_body: 0 reads no body for body_contains or body_regex to look at";
    if ((err = httploop_check_tls_files(ctx->tls_ca_file, ctx->tls_cert_file,
                                        ctx->tls_key_file, why, size)) ||
        (err = httploop_headers(&ctx->headers, HC_MAX_HEADERS, &ctx->hdrs, why, size)))
        return err;
    if (ctx->body_regex) {
        int ec;
        PCRE2_SIZE off;

        ctx->re = pcre2_compile((PCRE2_SPTR)ctx->body_regex, PCRE2_ZERO_TERMINATED, 0, &ec,
                                &off, NULL);
        if (!ctx->re) {
            char msg[128];

            pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof msg);
            snprintf(why, size, "body_regex: does not compile at offset %zu: %s",
                     (size_t)off, msg);
            return why;
        }
        if (!(ctx->md = pcre2_match_data_create_from_pattern(ctx->re, NULL)) ||
            !(ctx->mctx = pcre2_match_context_create(NULL)))
            return "out of memory";
        pcre2_set_match_limit(ctx->mctx, HC_MATCH_LIMIT);
    }
    return NULL;
}

/*
 * Set the options of the easy handle that stay the same for every check.
 * Returns NULL, or why libcurl refused one.
 */
static const char *hc_easy_setup(struct hc_ctx *ctx)
{
    CURL *e = ctx->easy;
    CURLcode c = CURLE_OK;
    const char *m = ctx->method;

#define HC_SET(opt, val) do { if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val); } while (0)
    HC_SET(CURLOPT_URL, ctx->url);
    HC_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    HC_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    HC_SET(CURLOPT_FOLLOWLOCATION, ctx->follow_redirects ? 1L : 0L);
    HC_SET(CURLOPT_MAXREDIRS, 5L);
    HC_SET(CURLOPT_TIMEOUT_MS, (long)ctx->timeout_ms);
    HC_SET(CURLOPT_USERAGENT, "pipit-http_check/" HC_VERSION);
    HC_SET(CURLOPT_ACCEPT_ENCODING, "");
    /* A new connection every check: connect time is part of the answer,
     * and the certificate is seen (and its expiry read) every time. */
    HC_SET(CURLOPT_FRESH_CONNECT, 1L);
    HC_SET(CURLOPT_FORBID_REUSE, 1L);
    if (ctx->hdrs)
        HC_SET(CURLOPT_HTTPHEADER, ctx->hdrs);
    if (!strcmp(m, "HEAD")) {
        HC_SET(CURLOPT_NOBODY, 1L);
    } else if (!strcmp(m, "POST") || ctx->request_body) {
        const char *b = ctx->request_body ? ctx->request_body : "";

        HC_SET(CURLOPT_POSTFIELDSIZE, (long)strlen(b));
        HC_SET(CURLOPT_POSTFIELDS, b);
        if (strcmp(m, "POST") != 0)
            HC_SET(CURLOPT_CUSTOMREQUEST, m);
    } else if (strcmp(m, "GET") != 0) {
        HC_SET(CURLOPT_CUSTOMREQUEST, m);
    }
    if (ctx->https)
        HC_SET(CURLOPT_CERTINFO, 1L);
    if (c == CURLE_OK)
        c = httploop_set_tls(e, ctx->tls_ca_file, ctx->tls_cert_file, ctx->tls_key_file,
                             ctx->tls_insecure);
#undef HC_SET
    return c == CURLE_OK ? NULL : curl_easy_strerror(c);
}

/* Free what init made; safe on a partly made ctx and twice. */
static void hc_cleanup(struct hc_ctx *ctx)
{
    httploop_free(ctx->hl, NULL);       /* the easy handle is ours */
    ctx->hl = NULL;
    if (ctx->easy)
        curl_easy_cleanup(ctx->easy);
    ctx->easy = NULL;
    curl_slist_free_all(ctx->hdrs);
    ctx->hdrs = NULL;
    pcre2_match_context_free(ctx->mctx);
    pcre2_match_data_free(ctx->md);
    pcre2_code_free(ctx->re);
    ctx->mctx = NULL;
    ctx->md = NULL;
    ctx->re = NULL;
    free(ctx->shown);
    ctx->shown = NULL;
}

/*
 * Check the options (each problem is logged naming its key, PIPIT_ECONFIG),
 * make the easy handle and the loop driver, and start checking at once and
 * then every check_interval.
 */
static int hc_init(pipit_instance *ins, void *data)
{
    struct hc_ctx *ctx = data;
    char why[512];
    const char *err;
    int rc = PIPIT_ECONFIG;

    ctx->ins = ins;
    if ((err = hc_check(ctx, why, sizeof why)) != NULL) {
        rc = strcmp(err, "out of memory") == 0 ? PIPIT_ENOMEM : PIPIT_ECONFIG;
        goto fail;
    }
    if (!(ctx->easy = curl_easy_init())) {
        err = "out of memory";
        rc = PIPIT_ENOMEM;
        goto fail;
    }
    if ((err = hc_easy_setup(ctx)) != NULL) {
        snprintf(why, sizeof why, "libcurl refused an option: %s", err);
        err = why;
        goto fail;
    }
    if (!(ctx->hl = httploop_new(api, ins))) {
        err = "the transfer driver could not be made";
        rc = PIPIT_ENOMEM;
        goto fail;
    }
    if ((rc = httploop_tick(ctx->hl, 0, (uint64_t)ctx->interval_ms, hc_tick, ctx)) != PIPIT_OK) {
        err = "the check timer could not be started";
        goto fail;
    }
    return PIPIT_OK;
fail:
    api->log(ins, PIPIT_LOG_ERROR, "%s", err);
    hc_cleanup(ctx);
    return rc;
}

static void hc_fini(pipit_instance *ins, void *data)
{
    (void)ins;
    hc_cleanup(data);
}

PIPIT_PLUGIN_DEFINE(
    .name = "http_check",
    .version = HC_VERSION,
    .description = "Uptime and health of an HTTP(S) URL: status, body, latency, "
                   "certificate expiry",
    .kinds = PIPIT_COLLECTOR,
    .ctx_size = sizeof(struct hc_ctx),
    .options = hc_options,
    .load = hc_load,
    .init = hc_init,
    .fini = hc_fini,
);
