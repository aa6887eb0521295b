/* act_http: the http action: one HTTP(S) request whose status must be one of those expected. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "actcurl.h"
#include "httploop.h"
#include "statuslist.h"

static const struct pipit_api *api;     /* borrowed from the host */

struct http_ctx {
    const char *url;                    /* option */
    const char *method;                 /* option: NULL: GET, or POST with a body */
    struct pipit_strmap headers;        /* option: values are secret */
    const char *body;                   /* option */
    struct pipit_strlist expect_status; /* option: codes, ranges, classes */
    int64_t timeout_ms;                 /* option: 0 none */
    const char *tls_ca_file;            /* options: TLS */
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;
    int64_t max_response;               /* option: body bytes kept */
    struct statuslist want;             /* expect_status parsed */
    char want_text[256];                /* expect_status for messages */
    struct curl_slist *hdrs;            /* headers as curl takes them */
};

static const struct pipit_option http_options[] = {
    PIPIT_OPT_STRING_REQ("url", struct http_ctx, url,
                         "The http:// or https:// URL to request"),
    PIPIT_OPT_STRING("method", NULL, struct http_ctx, method,
                     "Request method (GET, or POST when body is set)"),
    PIPIT__OPT("headers", PIPIT_OPT_T_MAP, NULL, struct http_ctx, headers,
               PIPIT_OPT_SECRET, 1, 0,
               "Request headers, name to value"),
    PIPIT_OPT_STRING("body", NULL, struct http_ctx, body, "Request body sent as it is"),
    PIPIT_OPT_LIST_DEF("expect_status", "[2xx]", struct http_ctx, expect_status,
                       "Statuses that succeed: codes (204), ranges (200-299) or classes (2xx)"),
    PIPIT_OPT_DURATION("timeout", "30s", 0, 86400000, struct http_ctx, timeout_ms,
                       "Longest the request may take (0: only the step's timeout)"),
    PIPIT_OPT_STRING("tls_ca_file", NULL, struct http_ctx, tls_ca_file,
                     "PEM file of the CA certificates that verify the server "
                     "(default: the system's)"),
    PIPIT_OPT_STRING("tls_cert_file", NULL, struct http_ctx, tls_cert_file,
                     "PEM client certificate (with tls_key_file)"),
    PIPIT_OPT_STRING("tls_key_file", NULL, struct http_ctx, tls_key_file,
                     "PEM private key of tls_cert_file"),
    PIPIT_OPT_BOOL("tls_insecure_skip_verify", "false", struct http_ctx, tls_insecure,
                   "Accept any certificate and host name"),
    PIPIT_OPT_SIZE("max_response", "64KiB", 0, PIPIT_RESULT_MAX, struct http_ctx,
                   max_response, "Bytes of the response body kept as the body result"),
    PIPIT_OPT_END
};

static int http_load(const struct pipit_api *host)
{
    api = host;
    return actcurl_global_init();
}

static int http_init(pipit_instance *ins, void *data)
{
    struct http_ctx *ctx = data;
    const char *err;
    char why[4400];

    if (strncmp(ctx->url, "http://", 7) != 0 && strncmp(ctx->url, "https://", 8) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "url \"%s\": expected an http:// or https:// URL",
                 ctx->url);
        return PIPIT_ECONFIG;
    }
    if (ctx->method && !httploop_token(ctx->method)) {
        api->log(ins, PIPIT_LOG_ERROR, "method \"%s\" is not an HTTP method", ctx->method);
        return PIPIT_ECONFIG;
    }
    if ((err = httploop_check_tls_files(ctx->tls_ca_file, ctx->tls_cert_file,
                                        ctx->tls_key_file, why, sizeof why))) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", err);
        return PIPIT_ECONFIG;
    }
    if (statuslist_parse_items(ctx->expect_status.items, ctx->expect_status.count,
                               &ctx->want, ctx->want_text, sizeof ctx->want_text,
                               why, sizeof why) != 0) {
        api->log(ins, PIPIT_LOG_ERROR, "expect_status: %s", why);
        return PIPIT_ECONFIG;
    }
    if ((err = httploop_headers(&ctx->headers, 0, &ctx->hdrs, why, sizeof why))) {
        api->log(ins, PIPIT_LOG_ERROR, "%s", err);
        curl_slist_free_all(ctx->hdrs);
        ctx->hdrs = NULL;
        return strcmp(err, "out of memory") == 0 ? PIPIT_ENOMEM : PIPIT_ECONFIG;
    }
    return PIPIT_OK;
}

static void http_fini(pipit_instance *ins, void *data)
{
    struct http_ctx *ctx = data;

    (void)ins;
    curl_slist_free_all(ctx->hdrs);
}

static void http_result_num(pipit_instance *ins, const char *key, long long v)
{
    char buf[32];

    snprintf(buf, sizeof buf, "%lld", v);
    api->set_result(ins, key, buf);
}

/*
 * Send the request once. Results status, body (the first max_response
 * bytes), body_truncated and duration_ms are published whenever a response
 * arrived, also when its status fails the step.
 */
static int http_act(pipit_instance *ins, void *data)
{
    struct http_ctx *ctx = data;
    const char *method = ctx->method ? ctx->method : ctx->body ? "POST" : "GET";
    const struct actcurl_req req = {
        .url = ctx->url, .protocols = "http,https", .method = method,
        .headers = ctx->hdrs, .body = ctx->body,
        .body_len = ctx->body ? strlen(ctx->body) : 0, .timeout_ms = ctx->timeout_ms,
        .tls_ca_file = ctx->tls_ca_file, .tls_cert_file = ctx->tls_cert_file,
        .tls_key_file = ctx->tls_key_file, .tls_insecure = ctx->tls_insecure,
        .max_body = (size_t)ctx->max_response,
    };
    struct actcurl_result r;
    int rc = actcurl_run(api, ins, &req, &r);

    if (rc != PIPIT_OK) {
        api->log(ins, PIPIT_LOG_ERROR, "%s %s: %s", method, ctx->url, r.error);
        actcurl_result_free(&r);
        return rc;
    }
    http_result_num(ins, "status", r.status);
    api->set_result(ins, "body", r.body);
    api->set_result(ins, "body_truncated", r.body_cut ? "true" : "false");
    http_result_num(ins, "duration_ms", r.duration_ms);
    if (!statuslist_has(&ctx->want, r.status)) {
        api->log(ins, PIPIT_LOG_ERROR, "%s %s: HTTP status %ld, expected %s", method,
                 ctx->url, r.status, ctx->want_text);
        rc = PIPIT_EIO;
    } else {
        api->log(ins, PIPIT_LOG_INFO, "%s %s: HTTP status %ld in %lld ms", method, ctx->url,
                 r.status, (long long)r.duration_ms);
    }
    actcurl_result_free(&r);
    return rc;
}

PIPIT_PLUGIN_DEFINE(
    .name = "http", .version = "1.0.0", .kinds = PIPIT_ACTION,
    .description = "One HTTP(S) request whose status must be one of those expected",
    .ctx_size = sizeof(struct http_ctx), .options = http_options,
    .load = http_load, .init = http_init, .act = http_act, .fini = http_fini);
