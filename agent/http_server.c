/* http_server.c: /metrics, /healthz, /readyz, the /v1 query API and the status page, served by libmicrohttpd's threads (opened by http_mhd.c). */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pipit/plugin.h>
#include "config.h"
#include "errors.h"
#include "http_mhd.h"
#include "http_server.h"
#include "log.h"
#include "query_params.h"
#include "status_page.h"
#include "store_query.h"

#define HTTP_MAX_URL      1024          /* longer request targets: 414 */
#define HTTP_MAX_FILE     (1u << 20)    /* certificate, key and token files */
#define HTTP_MAX_ARGS     32            /* query parameters of one request */

const unsigned http_server_status_codes[HTTP_ST_MAX] = {
#define HTTP_SERVER_CODE(code) code,
    HTTP_SERVER_STATUSES(HTTP_SERVER_CODE)
#undef HTTP_SERVER_CODE
};

/*
 * The server thread reads only what the loop published here, under mu;
 * it never touches the daemon's live state.
 */
struct http_snapshot {
    char *metrics;                      /* Prometheus text */
    size_t metrics_len;
    char *ready;                        /* /readyz JSON */
    size_t ready_len;
    bool ready_ok;
    int64_t beat_ns;                    /* monotonic time of the last publish */
};

struct http_server {
    struct MHD_Daemon *mhd;
    bool auth;                          /* a bearer token is required */
    unsigned char token_sha[SHA256_DIGEST_LENGTH];
    int64_t stall_timeout_ns;
    int64_t started_ns;
    struct buf cert, key;               /* PEM, kept while the daemon runs */
    pthread_mutex_t mu;
    struct http_snapshot snap;          /* under mu */
    char *query_db;                     /* NULL: /v1 and / are off */
    int64_t query_timeout_ms;
    atomic_uint_least64_t counts[HTTP_ST_MAX];
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Compare digests, not the strings: the time taken tells nothing about
 * the token, not even its length. */
static bool token_ok(const struct http_server *s, struct MHD_Connection *c)
{
    const char *h = http_mhd.lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    unsigned char sha[SHA256_DIGEST_LENGTH];
    size_t n = 0;
    const char *t = http_bearer_token(h, &n);

    if (!t)
        return false;
    SHA256((const unsigned char *)t, n, sha);
    return CRYPTO_memcmp(sha, s->token_sha, sizeof sha) == 0;
}

static unsigned status_index(unsigned code)
{
    for (unsigned i = 0; i < HTTP_ST_MAX; i++)
        if (http_server_status_codes[i] == code)
            return i;
    return HTTP_ST_MAX;
}

/* Queue one response (body copied) and count it. */
static enum MHD_Result reply(struct http_server *s, struct MHD_Connection *c,
                             unsigned code, const char *type, const char *body,
                             size_t len)
{
    struct MHD_Response *r = http_mhd.create_response_from_buffer(len, (void *)body,
                                                                  MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    http_mhd.add_response_header(r, "Content-Type", type);
    http_mhd.add_response_header(r, "Cache-Control", "no-store");
    if (code == 401)
        http_mhd.add_response_header(r, "WWW-Authenticate", "Bearer realm=\"pipit\"");
    if (code == 405)
        http_mhd.add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ret = http_mhd.queue_response(c, code, r);
    http_mhd.destroy_response(r);
    unsigned i = status_index(code);
    if (i < HTTP_ST_MAX)
        atomic_fetch_add(&s->counts[i], 1);
    return ret;
}

static enum MHD_Result reply_error(struct http_server *s, struct MHD_Connection *c,
                                   unsigned code, const char *what)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}\n", what);
    return reply(s, c, code, "application/json", body, (size_t)n);
}

/* An error whose text may hold request input: escaped as a JSON string. */
static enum MHD_Result reply_error_json(struct http_server *s, struct MHD_Connection *c,
                                        unsigned code, const char *what)
{
    struct buf b = BUF_INIT;
    enum MHD_Result ret;

    if (buf_puts(&b, "{\"error\":") != 0 || buf_json_str(&b, what, strlen(what)) != 0 ||
        buf_puts(&b, "}\n") != 0) {
        buf_free(&b);
        return reply_error(s, c, 500, "out of memory");
    }
    ret = reply(s, c, code, "application/json", b.data, b.len);
    buf_free(&b);
    return ret;
}

struct http_args {                      /* the request's arguments, borrowed from MHD */
    struct query_arg a[HTTP_MAX_ARGS];
    size_t n;
    bool overflow;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct http_args *args = cls;
    (void)kind;
    if (args->n == HTTP_MAX_ARGS) {
        args->overflow = true;
        return MHD_NO;
    }
    args->a[args->n++] = (struct query_arg){ key ? key : "", value };
    return MHD_YES;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * /v1/...: validate the arguments (400 naming the parameter), then run the
 * query on this server thread with a read-only connection of its own; the
 * loop is never involved.
 */
static enum MHD_Result serve_query(struct http_server *s, struct MHD_Connection *c,
                                   enum query_endpoint ep)
{
    struct http_args args = { .n = 0 };
    struct query_request *r = malloc(sizeof *r);
    struct buf body = BUF_INIT;
    char why[512];
    enum MHD_Result ret;

    if (!r)
        return reply_error(s, c, 500, "out of memory");
    http_mhd.get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &args);
    if (args.overflow) {
        snprintf(why, sizeof why, "more than %d parameters", HTTP_MAX_ARGS);
        ret = reply_error_json(s, c, 400, why);
    } else if (query_params_parse(ep, args.a, args.n, wall_ns(), r, why, sizeof why)
               != PIPIT_OK) {
        ret = reply_error_json(s, c, 400, why);
    } else {
        unsigned code = store_query_run(s->query_db, r, wall_ns(), s->query_timeout_ms,
                                        &body, why, sizeof why);
        if (code == 200)
            ret = reply(s, c, 200, "application/json", body.data ? body.data : "", body.len);
        else {
            log_warn("http", "query answered %u: %s", code, why);
            ret = reply_error_json(s, c, code, why);
        }
    }
    buf_free(&body);
    free(r);
    return ret;
}

static enum MHD_Result serve_healthz(struct http_server *s, struct MHD_Connection *c)
{
    char body[256];
    int64_t now = mono_ns();

    pthread_mutex_lock(&s->mu);
    int64_t age = now - s->snap.beat_ns;
    pthread_mutex_unlock(&s->mu);
    bool ok = age <= s->stall_timeout_ns;
    int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"loop_heartbeat_age_seconds\":"
                     "%.3f,\"stall_timeout_seconds\":%.3f,\"uptime_seconds\":%.3f,"
                     "\"version\":\"%s\"}\n", ok ? "ok" : "stalled", (double)age / 1e9,
                     (double)s->stall_timeout_ns / 1e9,
                     (double)(now - s->started_ns) / 1e9, PACKAGE_VERSION);
    return reply(s, c, ok ? 200 : 503, "application/json", body, (size_t)n);
}

/* /metrics or /readyz: the loop's last snapshot. */
static enum MHD_Result serve_snapshot(struct http_server *s, struct MHD_Connection *c,
                                      bool metrics)
{
    enum MHD_Result ret;

    pthread_mutex_lock(&s->mu);
    if (metrics)
        ret = reply(s, c, 200, "text/plain; version=0.0.4; charset=utf-8",
                    s->snap.metrics ? s->snap.metrics : "", s->snap.metrics_len);
    else if (s->snap.ready)
        ret = reply(s, c, s->snap.ready_ok ? 200 : 503, "application/json",
                    s->snap.ready, s->snap.ready_len);
    else
        ret = reply_error(s, c, 503, "starting");
    pthread_mutex_unlock(&s->mu);
    return ret;
}

/* A request declares a body: Content-Length above 0 or chunked. */
static bool has_body(struct MHD_Connection *c)
{
    const char *cl = http_mhd.lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    const char *te = http_mhd.lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    return te || (cl && strspn(cl, "0 \t") != strlen(cl));
}

/*
 * Every request is answered on its first call, with the headers only: a
 * body is never read. Checks go from the cheapest refusal to the route:
 * an overlong target, a body, a missing or wrong token, a method other
 * than GET or HEAD, then the three paths (anything else: 404).
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    struct http_server *s = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;

    if (strlen(url) > HTTP_MAX_URL)
        return reply_error(s, c, 414, "request target too long");
    if (has_body(c))
        return reply_error(s, c, 413, "request bodies are not accepted");
    /* the status page holds no data; the page sends the token to /v1 itself */
    bool page = s->query_db && strcmp(url, "/") == 0;
    if (s->auth && !page && !token_ok(s, c))
        return reply_error(s, c, 401, "a valid bearer token is required");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply_error(s, c, 405, "only GET and HEAD are allowed");
    if (strcmp(url, "/metrics") == 0)
        return serve_snapshot(s, c, true);
    if (strcmp(url, "/readyz") == 0)
        return serve_snapshot(s, c, false);
    if (strcmp(url, "/healthz") == 0)
        return serve_healthz(s, c);
    int ep = query_endpoint_parse(url);
    if (s->query_db && ep >= 0)
        return serve_query(s, c, (enum query_endpoint)ep);
    if (s->query_db && strcmp(url, "/") == 0)
        return reply(s, c, 200, "text/html; charset=utf-8", status_page_html,
                     status_page_html_len);
    if (ep >= 0 || strcmp(url, "/") == 0)
        return reply_error(s, c, 404, "the query API is off (set http.query_store)");
    if (s->query_db)
        return reply_error(s, c, 404, "not found (try /, /v1/agents, /v1/query, /v1/logs, "
                           "/v1/costs, /v1/deployments, /v1/throughput, /metrics, /healthz "
                           "or /readyz)");
    return reply_error(s, c, 404, "not found (try /metrics, /healthz or /readyz)");
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    log_warn("http", "%s", msg);
}

/* Read the token file: its first line, blanks around it removed. */
static int load_token(struct http_server *s, const char *path, char *err, size_t errlen)
{
    struct buf b = BUF_INIT;
    const char *why = NULL;

    if (cfg_read_small_file(path, HTTP_MAX_FILE, &b, &why) != PIPIT_OK) {
        snprintf(err, errlen, "cannot read http.token_file %s: %s", path, why);
        buf_free(&b);
        return PIPIT_EIO;
    }
    const char *t = b.data ? b.data : "";
    t += strspn(t, " \t");
    size_t n = strcspn(t, "\r\n");
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0) {
        snprintf(err, errlen, "http.token_file %s holds no token", path);
        buf_free(&b);
        return PIPIT_EINVAL;
    }
    SHA256((const unsigned char *)t, n, s->token_sha);
    OPENSSL_cleanse(b.data, b.len);
    buf_free(&b);
    s->auth = true;
    return PIPIT_OK;
}

static int read_pem(const char *key, const char *path, struct buf *out, char *err,
                    size_t errlen)
{
    const char *why = NULL;
    if (cfg_read_small_file(path, HTTP_MAX_FILE, out, &why) == PIPIT_OK)
        return PIPIT_OK;
    snprintf(err, errlen, "cannot read http.%s %s: %s", key, path, why);
    return PIPIT_EIO;
}

/* The key is wiped before its memory goes back to the allocator. */
static void free_tls(struct http_server *s)
{
    if (s->key.data)
        OPENSSL_cleanse(s->key.data, s->key.len);
    buf_free(&s->key);
    buf_free(&s->cert);
}

struct http_server *http_server_start(const struct http_server_config *c,
                                      char *err, size_t errlen)
{
    struct http_server_addr addr;
    struct http_server *s;
    char why[128];

    if (http_mhd_load(err, errlen) != PIPIT_OK)  /* before anything is held */
        return NULL;
    if (!(s = calloc(1, sizeof *s))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->stall_timeout_ns = c->stall_timeout_ns;
    s->started_ns = s->snap.beat_ns = mono_ns();
    if (http_parse_listen(c->listen, &addr, why, sizeof why) != PIPIT_OK) {
        snprintf(err, errlen, "http.listen: %s", why);
        goto fail;
    }
    if (c->token_file && load_token(s, c->token_file, err, errlen) != PIPIT_OK)
        goto fail;
    if (c->query_db && !(s->query_db = strdup(c->query_db))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->query_timeout_ms = c->query_timeout_ms > 0 ? c->query_timeout_ms : 5000;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (addr.ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[12];
    size_t n = 0;
#define HTTP_OPT(o, v, p) opts[n++] = (struct MHD_OptionItem){ (o), (intptr_t)(v), (p) }
    HTTP_OPT(MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL);  /* first: catches all */
    HTTP_OPT(MHD_OPTION_SOCK_ADDR, 0, &addr.ss);
    HTTP_OPT(MHD_OPTION_CONNECTION_LIMIT, c->max_connections, NULL);
    HTTP_OPT(MHD_OPTION_CONNECTION_TIMEOUT, c->timeout_s, NULL);
    HTTP_OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, c->max_request_bytes, NULL);
    if (s->query_db && c->query_threads > 1)  /* a slow query holds one thread only */
        HTTP_OPT(MHD_OPTION_THREAD_POOL_SIZE, c->query_threads, NULL);
    if (c->tls_cert) {
        if (http_mhd.is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, errlen, "http.tls_cert: this libmicrohttpd has no TLS support");
            goto fail;
        }
        if (read_pem("tls_cert", c->tls_cert, &s->cert, err, errlen) != PIPIT_OK ||
            read_pem("tls_key", c->tls_key, &s->key, err, errlen) != PIPIT_OK)
            goto fail;
        flags |= MHD_USE_TLS;
        HTTP_OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert.data);
        HTTP_OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, s->key.data);
    }
    HTTP_OPT(MHD_OPTION_END, 0, NULL);
#undef HTTP_OPT
    uint16_t port = ntohs(addr.ss.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&addr.ss)->sin6_port
                          : ((struct sockaddr_in *)&addr.ss)->sin_port);
    s->mhd = http_mhd.start_daemon(flags, port, NULL, NULL, on_request, s,
                                   MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "cannot serve on %s (address in use, not local, or a bad "
                 "certificate or key; see the lines above)", c->listen);
        goto fail;
    }
    return s;
fail:
    free_tls(s);
    free(s->query_db);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return NULL;
}

unsigned http_server_port(const struct http_server *s)
{
    const union MHD_DaemonInfo *i =
        http_mhd.get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return i ? i->port : 0;
}

void http_server_publish(struct http_server *s, struct buf *metrics, struct buf *ready,
                         bool ready_ok)
{
    size_t mlen = metrics->len, rlen = ready->len;
    char *m = buf_steal(metrics), *r = buf_steal(ready);

    pthread_mutex_lock(&s->mu);
    char *old_m = s->snap.metrics, *old_r = s->snap.ready;
    s->snap.metrics = m;
    s->snap.metrics_len = m ? mlen : 0;
    s->snap.ready = r;
    s->snap.ready_len = r ? rlen : 0;
    s->snap.ready_ok = ready_ok;
    s->snap.beat_ns = mono_ns();
    pthread_mutex_unlock(&s->mu);
    free(old_m);                        /* outside the lock */
    free(old_r);
}

void http_server_counts(const struct http_server *s, uint64_t counts[HTTP_ST_MAX])
{
    for (unsigned i = 0; i < HTTP_ST_MAX; i++)
        counts[i] = atomic_load(&((struct http_server *)s)->counts[i]);
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    http_mhd.stop_daemon(s->mhd);
    free_tls(s);
    free(s->snap.metrics);
    free(s->snap.ready);
    free(s->query_db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
