/* test_http_server.c: the endpoints' server alone: listen addresses, bearer headers, snapshots, the stall check, auth, counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <curl/curl.h>
#include <pipit/plugin.h>
#include "errors.h"
#include "http_server.h"
#include "../tap.h"

static void test_listen(void)
{
    static const char *const good[] = { "127.0.0.1:9790", "0.0.0.0:0", "[::1]:80",
                                        "[::]:65535" };
    static const char *const bad[] = { "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                                       "127.0.0.1:-1", "127.0.0.1:+1", "localhost:80",
                                       "::1:80", "[::1]", "[::1]80", ":80", "1.2.3.4:8x" };
    struct http_server_addr a;
    char why[128];

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        is_int(http_parse_listen(good[i], &a, why, sizeof why), PIPIT_OK, "listen %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        is_int(http_parse_listen(bad[i], &a, why, sizeof why), PIPIT_EINVAL,
               "listen \"%s\" refused: %s", bad[i], why);
    ok(http_parse_listen(NULL, &a, why, sizeof why) == PIPIT_EINVAL, "listen NULL refused");
    http_parse_listen("127.1.2.3:1", &a, why, sizeof why);
    ok(http_addr_is_loopback(&a), "127.1.2.3 is loopback");
    http_parse_listen("[::1]:1", &a, why, sizeof why);
    ok(http_addr_is_loopback(&a), "::1 is loopback");
    http_parse_listen("0.0.0.0:1", &a, why, sizeof why);
    ok(!http_addr_is_loopback(&a), "0.0.0.0 is not loopback");
    http_parse_listen("[::]:1", &a, why, sizeof why);
    ok(!http_addr_is_loopback(&a), ":: is not loopback");
}

static void bearer(const char *h, const char *want)
{
    size_t n = 0;
    const char *t = http_bearer_token(h, &n);
    char got[64] = "(none)";

    if (t)
        snprintf(got, sizeof got, "%.*s", (int)n, t);
    is_str(got, want, "bearer of \"%s\"", h ? h : "NULL");
}

static void test_bearer(void)
{
    bearer("Bearer abc", "abc");
    bearer("bearer \t abc  ", "abc");
    bearer("  BEARER x y", "x y");
    bearer("Bearerabc", "(none)");
    bearer("Basic abc", "(none)");
    bearer("Bearer ", "(none)");
    bearer("Bearer", "(none)");
    bearer("", "(none)");
    bearer(NULL, "(none)");
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    buf_append(b, p, size * n);
    return size * n;
}

/* GET path from s; the status, the body in body (replaced). */
static long get(struct http_server *s, const char *path, const char *auth, struct buf *body)
{
    char url[128], hdr[256];
    long code = 0;
    struct curl_slist *h = NULL;
    CURL *c = curl_easy_init();

    buf_reset(body);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", http_server_port(s), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (auth) {
        snprintf(hdr, sizeof hdr, "Authorization: %s", auth);
        h = curl_slist_append(h, hdr);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    }
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    buf_putc(body, '\0');
    return code;
}

static void publish(struct http_server *s, const char *metrics, const char *ready, bool ok)
{
    struct buf m = BUF_INIT, r = BUF_INIT;
    buf_puts(&m, metrics);
    buf_puts(&r, ready);
    http_server_publish(s, &m, &r, ok);
    ok(m.len == 0 && r.len == 0, "publish takes the buffers' contents");
    buf_free(&m);
    buf_free(&r);
}

static void test_serve(void)
{
    struct http_server_config c = {
        .listen = "127.0.0.1:0", .max_connections = 4, .timeout_s = 5,
        .max_request_bytes = 8192, .stall_timeout_ns = 2000000000,
    };
    struct buf body = BUF_INIT;
    uint64_t counts[HTTP_ST_MAX];
    char err[256];
    struct http_server *s = http_server_start(&c, err, sizeof err);

    if (!ok(s != NULL, "server started on port %u", s ? http_server_port(s) : 0)) {
        diag("%s", err);
        return;
    }
    is_int(get(s, "/readyz", NULL, &body), 503, "/readyz before any snapshot: 503");
    publish(s, "m 1\n", "{\"status\":\"ready\"}\n", true);
    is_int(get(s, "/metrics", NULL, &body), 200, "/metrics: 200");
    is_str(body.data, "m 1\n", "/metrics serves the snapshot");
    is_int(get(s, "/readyz", NULL, &body), 200, "/readyz: 200 when published ready");
    publish(s, "m 2\n", "{\"status\":\"not ready\"}\n", false);
    is_int(get(s, "/readyz", NULL, &body), 503, "/readyz: 503 when published not ready");
    is_str(body.data, "{\"status\":\"not ready\"}\n", "/readyz serves the document");
    is_int(get(s, "/healthz", NULL, &body), 200, "/healthz: 200 after a recent publish");
    ok(strstr(body.data, "\"status\":\"ok\"") != NULL, "/healthz says ok");
    usleep(2200000);                    /* past stall_timeout without a publish */
    is_int(get(s, "/healthz", NULL, &body), 503, "/healthz: 503 once the loop is silent");
    ok(strstr(body.data, "\"status\":\"stalled\"") != NULL, "/healthz says stalled");
    publish(s, "m 3\n", "{}", true);
    is_int(get(s, "/healthz", NULL, &body), 200, "/healthz: 200 again after a publish");
    is_int(get(s, "/metrics/", NULL, &body), 404, "/metrics/ is not /metrics: 404");
    http_server_counts(s, counts);
    ok(counts[HTTP_ST_200] == 4 && counts[HTTP_ST_503] == 3 && counts[HTTP_ST_404] == 1,
       "counts by status: 200 x%llu, 503 x%llu, 404 x%llu",
       (unsigned long long)counts[HTTP_ST_200], (unsigned long long)counts[HTTP_ST_503],
       (unsigned long long)counts[HTTP_ST_404]);
    http_server_stop(s);
    buf_free(&body);
}

static void test_token(void)
{
    char path[] = "/tmp/pipit-token.XXXXXX", err[256];
    int fd = mkstemp(path);
    struct buf body = BUF_INIT;

    ok(fd >= 0 && write(fd, "  t0ken \n", 9) == 9, "token file written");
    close(fd);
    struct http_server_config c = {
        .listen = "127.0.0.1:0", .max_connections = 4, .timeout_s = 5,
        .max_request_bytes = 8192, .stall_timeout_ns = 10000000000, .token_file = path,
    };
    struct http_server *s = http_server_start(&c, err, sizeof err);
    if (!ok(s != NULL, "server with a token started")) {
        diag("%s", err);
        unlink(path);
        return;
    }
    is_int(get(s, "/healthz", NULL, &body), 401, "no token: 401");
    is_int(get(s, "/healthz", "Bearer t0ke", &body), 401, "a prefix of the token: 401");
    is_int(get(s, "/healthz", "Bearer t0ken2", &body), 401, "a longer token: 401");
    is_int(get(s, "/healthz", "Bearer t0ken", &body), 200, "the token (blanks trimmed): 200");
    is_int(get(s, "/nope", "Bearer t0ken", &body), 404, "the token on an unknown path: 404");
    http_server_stop(s);

    ok(truncate(path, 0) == 0, "token file emptied");
    s = http_server_start(&c, err, sizeof err);
    ok(s == NULL && strstr(err, "holds no token"), "an empty token file is refused: %s",
       s ? "started" : err);
    http_server_stop(s);
    unlink(path);
    ok(http_server_start(&c, err, sizeof err) == NULL && strstr(err, "cannot read"),
       "a missing token file is refused: %s", err);
    buf_free(&body);
}

int main(void)
{
    plan(57);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_listen();
    test_bearer();
    test_serve();
    test_token();
    curl_global_cleanup();
    return done_testing();
}
