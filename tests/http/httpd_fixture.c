/* httpd_fixture.c: a small real HTTP(S) server on loopback for the tests of the plugins that speak HTTP. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: httpd_fixture --root DIR --port-file FILE [--port N] [--log FILE]
 *                      [--token TOKEN] [--tls-cert PEM --tls-key PEM]
 *
 * GET/HEAD /PATH serves DIR/PATH with an ETag and Last-Modified, and answers
 * 304 to a matching If-None-Match. Query parameters shape the answer:
 *   status=N     answer with status N (the file, or a short text, as body)
 *   delay_ms=N   wait N ms before answering (each connection has a thread)
 *   body=TEXT    answer with TEXT instead of a file
 *   type=MIME    Content-Type (default text/plain; version=0.0.4)
 *   echo_header=NAME  answer with the value of request header NAME as body
 *                ("(none)" when the request has no such header)
 *   echo_body=1  answer with the request's body as body
 *   fail_first=N the first N requests for this path (query aside) answer
 *                503, the later ones as they would otherwise
 * With --token, a request without "Authorization: Bearer TOKEN" gets 401.
 * Each request is appended to the log as one line:
 *   METHOD PATH status=N auth=yes|no
 * The bound port is written to the port file once the server listens; the
 * server runs until SIGTERM or SIGINT.
 */

static const char *root;
static const char *token;
static FILE *req_log;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

/* The request body read so far, per request. */
struct upload {
    char *data;
    size_t len;
};

/* Requests seen per path, for fail_first (guarded by log_mu). */
#define SEEN_MAX 64
static struct { char path[256]; unsigned n; } seen[SEEN_MAX];

/* Count a request for path; returns how many came before it. */
static unsigned seen_before(const char *path)
{
    unsigned before = 0;

    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < SEEN_MAX; i++) {
        if (!seen[i].path[0])
            snprintf(seen[i].path, sizeof seen[i].path, "%s", path);
        if (strcmp(seen[i].path, path) == 0) {
            before = seen[i].n++;
            break;
        }
    }
    pthread_mutex_unlock(&log_mu);
    return before;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode toe)
{
    struct upload *u = *state;

    (void)cls, (void)c, (void)toe;
    if (u) {
        free(u->data);
        free(u);
    }
    *state = NULL;
}

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("httpd_fixture: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, f) == (size_t)n) {
        b[n] = '\0';
        *len = (size_t)n;
    } else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

static void log_request(const char *method, const char *url, unsigned status, bool auth)
{
    if (!req_log)
        return;
    pthread_mutex_lock(&log_mu);
    fprintf(req_log, "%s %s status=%u auth=%s\n", method, url, status, auth ? "yes" : "no");
    fflush(req_log);
    pthread_mutex_unlock(&log_mu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             size_t len, bool copy, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_MUST_FREE);

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            type ? type : "text/plain; version=0.0.4");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static bool authorized(struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    char want[512];

    if (!token)
        return true;
    snprintf(want, sizeof want, "Bearer %s", token);
    return h && strcmp(h, want) == 0;
}

static enum MHD_Result serve_file(struct MHD_Connection *c, const char *url,
                                  unsigned status, const char *type, const char *method)
{
    char path[PATH_MAX], etag[64], lm[64];
    struct stat st;
    size_t len = 0;
    char *body;

    if (strstr(url, "..") || snprintf(path, sizeof path, "%s%s", root, url) >= (int)sizeof path ||
        stat(path, &st) != 0 || !S_ISREG(st.st_mode) || !(body = slurp(path, &len))) {
        unsigned s = status ? status : MHD_HTTP_NOT_FOUND;
        log_request(method, url, s, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                    MHD_HTTP_HEADER_AUTHORIZATION) != NULL);
        return reply(c, s, "not found\n", 10, true, "text/plain");
    }
    snprintf(etag, sizeof etag, "\"%lld-%lld.%09ld\"", (long long)st.st_size,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct tm tm;
    gmtime_r(&st.st_mtim.tv_sec, &tm);
    strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_AUTHORIZATION) != NULL;
    if (!status && inm && strcmp(inm, etag) == 0) {
        free(body);
        log_request(method, url, MHD_HTTP_NOT_MODIFIED, auth);
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"",
                                                                 MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NOT_MODIFIED, r);
        MHD_destroy_response(r);
        return ret;
    }
    unsigned s = status ? status : MHD_HTTP_OK;
    log_request(method, url, s, auth);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            type ? type : "text/plain; version=0.0.4");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(r, MHD_HTTP_HEADER_LAST_MODIFIED, lm);
    enum MHD_Result ret = MHD_queue_response(c, s, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size,
                                  void **state)
{
    struct upload *u = *state;

    (void)cls;
    (void)version;
    if (u == NULL) {                    /* headers only so far */
        if (!(*state = calloc(1, sizeof *u)))
            return MHD_NO;
        return MHD_YES;
    }
    if (*upload_size) {                 /* a body is kept (up to 1 MiB) */
        if (u->len + *upload_size <= (1u << 20)) {
            char *d = realloc(u->data, u->len + *upload_size + 1);
            if (!d)
                return MHD_NO;
            memcpy(d + u->len, upload_data, *upload_size);
            u->data = d;
            u->len += *upload_size;
            d[u->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    const char *q;
    unsigned status = 0;
    if ((q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status")))
        status = (unsigned)strtoul(q, NULL, 10);
    if ((q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "delay_ms"))) {
        long ms = strtol(q, NULL, 10);
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    const char *type = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "type");
    bool auth_present = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_AUTHORIZATION) != NULL;
    if (!authorized(c)) {
        log_request(method, url, MHD_HTTP_UNAUTHORIZED, auth_present);
        return reply(c, MHD_HTTP_UNAUTHORIZED, "unauthorized\n", 13, true, "text/plain");
    }
    if ((q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "fail_first")) &&
        seen_before(url) < (unsigned)strtoul(q, NULL, 10)) {
        log_request(method, url, MHD_HTTP_SERVICE_UNAVAILABLE, auth_present);
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not yet\n", 8, true, "text/plain");
    }
    if (MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "echo_body")) {
        unsigned s = status ? status : MHD_HTTP_OK;
        log_request(method, url, s, auth_present);
        return reply(c, s, u->data ? u->data : "", u->len, true, type);
    }
    if ((q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "echo_header"))) {
        const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, q);
        unsigned s = status ? status : MHD_HTTP_OK;
        log_request(method, url, s, auth_present);
        if (!v)
            v = "(none)";
        return reply(c, s, v, strlen(v), true, type);
    }
    if ((q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "body"))) {
        unsigned s = status ? status : MHD_HTTP_OK;
        log_request(method, url, s, auth_present);
        return reply(c, s, q, strlen(q), true, type);
    }
    return serve_file(c, url, status, type, method);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL, *cert = NULL, *key = NULL;
    unsigned port = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("%s needs a value", a);
        if (strcmp(a, "--root") == 0) root = v;
        else if (strcmp(a, "--port-file") == 0) port_file = v;
        else if (strcmp(a, "--port") == 0) port = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--token") == 0) token = v;
        else if (strcmp(a, "--tls-cert") == 0) cert = v;
        else if (strcmp(a, "--tls-key") == 0) key = v;
        else if (strcmp(a, "--log") == 0) {
            if (!(req_log = fopen(v, "a")))
                die("cannot open %s: %s", v, strerror(errno));
        } else
            die("unknown argument %s", a);
        i++;
    }
    if (!root || !port_file)
        die("usage: httpd_fixture --root DIR --port-file FILE [--port N] [--log FILE] "
            "[--token T] [--tls-cert PEM --tls-key PEM]");
    if (!cert != !key)
        die("--tls-cert and --tls-key go together");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* MHD's threads inherit it */
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG;
    char *cert_pem = NULL, *key_pem = NULL;
    size_t n;
    if (cert) {
        if (!(cert_pem = slurp(cert, &n)) || !(key_pem = slurp(key, &n)))
            die("cannot read %s or %s", cert, key);
        flags |= MHD_USE_TLS;
    }
    struct MHD_Daemon *d = cert
        ? MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
                           MHD_OPTION_SOCK_ADDR, &sa,
                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                           MHD_OPTION_HTTPS_MEM_CERT, cert_pem,
                           MHD_OPTION_HTTPS_MEM_KEY, key_pem, MHD_OPTION_END)
        : MHD_start_daemon(flags, 0, NULL, NULL, on_request, NULL,
                           MHD_OPTION_SOCK_ADDR, &sa,
                           MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d)
        die("cannot listen on 127.0.0.1:%u", port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *pf = fopen(tmp, "w");
    if (!pf || fprintf(pf, "%u\n", info ? info->port : port) < 0 || fclose(pf) != 0 ||
        rename(tmp, port_file) != 0)
        die("cannot write %s", port_file);

    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    free(cert_pem);
    free(key_pem);
    if (req_log)
        fclose(req_log);
    return 0;
}
