/* test_http.c: the http action through the harness against httpd_fixture: statuses, headers, body, limits, deadline and cancellation. */
#include "acttest.h"
#include "../http/httpd.h"

static const char *tmp;                 /* scratch directory of the test */
static struct httpd srv;

/* "url=http://127.0.0.1:PORT/PATH" (one of four static buffers). */
static const char *url(const char *path)
{
    static char bufs[4][512];
    static int n;
    char *b = bufs[n++ % 4];

    snprintf(b, sizeof bufs[0], "url=http://127.0.0.1:%u/%s", srv.port, path);
    return b;
}

static void test_ok(void)
{
    struct tp t;
    int rc;

    at_log_clear();
    rc = at_step(&t, "http", (const char *[]){ url("ok.txt"), NULL }, 10000);
    is_int(rc, PIPIT_OK, "a 200 succeeds");
    is_str(at_res(&t, "status"), "200", "status result 200");
    is_str(at_res(&t, "body"), "all good\n", "body result is the response");
    is_str(at_res(&t, "body_truncated"), "false", "not truncated");
    const char *d = at_result(&t, "duration_ms");
    ok(d && atoll(d) >= 0 && atoll(d) < 5000, "duration_ms %s", d ? d : "(none)");
    ok(strstr(tp_slurp(srv.log), "GET /ok.txt status=200") != NULL, "GET by default");
    tp_close(&t);

    rc = at_step(&t, "http", (const char *[]){ url("ok.txt?status=404"),
                                               "expect_status=[404, 5xx]", NULL }, 10000);
    is_int(rc, PIPIT_OK, "a 404 in expect_status [404, 5xx] succeeds");
    is_str(at_res(&t, "status"), "404", "status result 404");
    tp_close(&t);

    rc = at_step(&t, "http", (const char *[]){ url("ok.txt?status=503"),
                                               "expect_status=[200-299, 3xx]", NULL }, 10000);
    is_int(rc, PIPIT_EIO, "a 503 outside expect_status fails");
    ok(at_logged("HTTP status 503, expected 200-299, 3xx"),
       "the log names the status got and those expected");
    is_str(at_res(&t, "status"), "503", "the status is still a result");
    tp_close(&t);

    at_log_clear();
    rc = at_step(&t, "http", (const char *[]){ url("ok.txt?status=500"), NULL }, 10000);
    is_int(rc, PIPIT_EIO, "a 500 fails with the default 2xx");
    ok(at_logged("HTTP status 500, expected 2xx"), "naming 2xx");
    tp_close(&t);
}

static void test_headers_body(void)
{
    struct tp t;
    int rc;

    at_log_clear();
    rc = at_step(&t, "http", (const char *[]){ url("h?echo_header=X-Token"),
                                               "headers={X-Token: s3cret-value, Accept: text/plain}",
                                               NULL }, 10000);
    is_int(rc, PIPIT_OK, "a request with headers");
    is_str(at_res(&t, "body"), "s3cret-value", "the header reached the server");
    tp_close(&t);
    rc = at_step(&t, "http", (const char *[]){ url("h?echo_header=X-Token&status=500"),
                                               "headers={X-Token: s3cret-value}", NULL }, 10000);
    is_int(rc, PIPIT_EIO, "a failing request with headers");
    ok(strstr(at_log(), "s3cret-value") == NULL, "header values are never logged");
    tp_close(&t);

    rc = at_step(&t, "http", (const char *[]){ url("e?echo_body=1"), "body=name=pipit&v=2", NULL },
                 10000);
    is_int(rc, PIPIT_OK, "a request with a body");
    is_str(at_res(&t, "body"), "name=pipit&v=2", "the body reached the server");
    ok(strstr(tp_slurp(srv.log), "POST /e status=200") != NULL, "as a POST by default");
    tp_close(&t);

    rc = at_step(&t, "http", (const char *[]){ url("put?echo_body=1"), "method=PUT",
                                               "body=new-config", NULL }, 10000);
    is_int(rc, PIPIT_OK, "a PUT with a body");
    is_str(at_res(&t, "body"), "new-config", "its body reached the server");
    ok(strstr(tp_slurp(srv.log), "PUT /put status=200") != NULL, "as a PUT");
    tp_close(&t);

    rc = at_step(&t, "http", (const char *[]){ url("big.txt"), "max_response=10", NULL },
                 10000);
    is_int(rc, PIPIT_OK, "a body longer than max_response");
    is_str(at_res(&t, "body"), "0123456789", "is cut at max_response bytes");
    is_str(at_res(&t, "body_truncated"), "true", "and body_truncated says so");
    tp_close(&t);
}

static void test_limits(void)
{
    struct tp t;
    int64_t t0;
    int rc;

    at_log_clear();
    t0 = tp__ms();
    rc = at_step(&t, "http", (const char *[]){ url("ok.txt?delay_ms=4000"), NULL }, 500);
    int64_t took = tp__ms() - t0;
    is_int(rc, PIPIT_ETIMEDOUT, "a slow answer past the step's deadline times out");
    ok(took >= 400 && took < 2500, "at the deadline (%lld ms)", (long long)took);
    ok(at_logged("time left"), "the log says it was the step's deadline");
    tp_close(&t);

    t0 = tp__ms();
    rc = at_step(&t, "http", (const char *[]){ url("ok.txt?delay_ms=4000"), "timeout=300ms",
                                               NULL }, 0);
    took = tp__ms() - t0;
    is_int(rc, PIPIT_ETIMEDOUT, "the timeout option bounds it without a deadline");
    ok(took < 2500, "in %lld ms", (long long)took);
    tp_close(&t);

    at_cancel = true;
    t0 = tp__ms();
    rc = at_step(&t, "http", (const char *[]){ url("ok.txt?delay_ms=4000"), NULL }, 0);
    took = tp__ms() - t0;
    at_cancel = false;
    is_int(rc, PIPIT_ECANCELED, "a cancelled run ends the request");
    ok(took < 2500, "soon (%lld ms)", (long long)took);
    tp_close(&t);

    rc = at_step(&t, "http", (const char *[]){ "url=http://127.0.0.1:1/", NULL }, 5000);
    is_int(rc, PIPIT_EIO, "a refused connection fails");
    tp_close(&t);
}

static void test_config(void)
{
    struct tp t;

    is_int(at_step(&t, "http", (const char *[]){ "url=ftp://example.com/", NULL }, 0),
           PIPIT_ECONFIG, "an ftp:// url is refused");
    tp_close(&t);
    is_int(at_step(&t, "http", (const char *[]){ url("x"), "expect_status=[2xx, abc]", NULL },
                   0), PIPIT_ECONFIG, "a malformed expect_status is refused");
    tp_close(&t);
    is_int(at_step(&t, "http", (const char *[]){ url("x"), "headers={\"Bad Name\": v}", NULL },
                   0), PIPIT_ECONFIG, "a header name with a space is refused");
    tp_close(&t);
    is_int(at_step(&t, "http", (const char *[]){ url("x"), "tls_cert_file=/c.pem", NULL }, 0),
           PIPIT_ECONFIG, "a client certificate without its key is refused");
    tp_close(&t);
}

int main(void)
{
    char www[4200];

    tmp = tp_tmpdir();
    snprintf(www, sizeof www, "%s/www", tmp);
    at_log_setup(tmp);
    tp_write(tmp, "www/ok.txt", "all good\n");
    tp_write(tmp, "www/big.txt", "0123456789abcdefghijklmnopqrstuvwxyz\n");
    if (httpd_start(&srv, www, tmp, NULL) != 0) {
        printf("Bail out! httpd_fixture did not start\n");
        return 1;
    }
    test_ok();
    test_headers_body();
    test_limits();
    test_config();
    httpd_stop(&srv);
    at_log_end();
    tp_rmtree(tmp);
    return done_testing();
}
