/* test_http_check.c: the http_check input through the harness against httpd_fixture (plain and TLS), and its expected-status parser. */
#include "plugtest.h"
#include "log.h"
#include "../http/httpd.h"
#include "../../plugins/common/statuslist.h"

static const char *tmp;                 /* scratch directory of the test */
static char www[4200], logpath[4200];
static struct httpd srv;                /* plain HTTP, serving www */
static FILE *log_file;                  /* the plugin's log lines */

static int want_checks = 1;

static bool have_checks(struct tp *t)
{
    return tp_count(t, "http_check.up", NULL) >= want_checks;
}

/* Open the input with kv, wait until n checks ended (at most ms) and return
 * how long that took; init's failure is reported and gives -1. */
static int64_t check(struct tp *t, const char *const *kv, int n, int64_t ms)
{
    int rc = tp_open(t, "http_check", kv);

    if (rc != PIPIT_OK) {
        diag("init failed: %d", rc);
        return -1;
    }
    want_checks = n;
    return tp_pump(t, ms, have_checks);
}

/* "url=http://127.0.0.1:PORT/PATH" in buf. */
static const char *url(char *buf, size_t size, unsigned port, const char *path)
{
    snprintf(buf, size, "url=http://127.0.0.1:%u/%s", port, path);
    return buf;
}

static double val(struct tp *t, const char *name)
{
    return tp_val(tp_find(t, name, NULL));
}

static double failures(struct tp *t, const char *reason)
{
    return tp_val(tp_find(t, "http_check.failures", "reason", reason, NULL));
}

static const char *str(json_t *r, const char *key)
{
    const char *v = json_string_value(json_object_get(r, key));
    return v ? v : "";
}

static const char *label(json_t *r, const char *key)
{
    return str(json_object_get(r, "labels"), key);
}

/* Records of kind event in the last run. */
static int events(struct tp *t)
{
    size_t i;
    json_t *r;
    int n = 0;

    json_array_foreach(t->recs, i, r)
        n += strcmp(str(r, "kind"), "event") == 0;
    return n;
}

static json_t *event(struct tp *t)
{
    return tp_find(t, "http_check.state", NULL);
}

/* The plugin's log so far (a static buffer). */
static const char *log_text(void)
{
    fflush(log_file);
    return tp_slurp(logpath);
}

static void log_clear(void)
{
    fflush(log_file);
    if (ftruncate(fileno(log_file), 0) != 0)
        diag("cannot truncate the log");
    rewind(log_file);
}

static void test_statuslist(void)
{
    struct statuslist s;
    char why[160];

    is_int(statuslist_parse("200", &s, why, sizeof why), 0, "statuslist: one code");
    ok(statuslist_has(&s, 200) && !statuslist_has(&s, 201), "which alone matches");
    is_int(statuslist_parse(" 200-204 , 301,4xx", &s, why, sizeof why), 0,
           "a range, a code and a class, with blanks");
    ok(statuslist_has(&s, 200) && statuslist_has(&s, 204) && !statuslist_has(&s, 205) &&
       statuslist_has(&s, 301) && statuslist_has(&s, 400) && statuslist_has(&s, 499) &&
       !statuslist_has(&s, 500), "each matches its own codes only");
    ok(!statuslist_has(&s, -1) && !statuslist_has(&s, 0) && !statuslist_has(&s, 100000),
       "out-of-range statuses never match");
    is_int(statuslist_parse("5XX", &s, why, sizeof why), 0, "a class in capitals");
    ok(statuslist_has(&s, 503), "matches");

    static const char *const bad[][2] = {
        { "", "an empty item" }, { "200,", "an empty item" }, { "20", "three-digit" },
        { "2000", "three-digit" }, { "299-200", "ends before it starts" },
        { "600", "outside 100..599" }, { "099", "outside 100..599" },
        { "200-", "end is not" }, { "6xx", "three-digit" }, { "200 x", "text after" },
        { "ok", "three-digit" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = statuslist_parse(bad[i][0], &s, why, sizeof why);
        ok(rc == -1 && strstr(why, bad[i][1]) != NULL, "\"%s\" refused: %s", bad[i][0],
           rc ? why : "(accepted)");
    }
    statuslist_parse("200,30", &s, why, sizeof why);
    ok(strstr(why, "item 2 \"30\"") != NULL, "the reason names the item: %s", why);
    ok(!statuslist_has(&s, 200), "a refused list is left empty");
}

static void test_up(void)
{
    struct tp t;
    char opt[512];
    json_t *r;

    log_clear();
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt"),
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "a 200: up 1");
    is_num(val(&t, "http_check.status_code"), 200, 0, "status_code 200");
    double secs = val(&t, "http_check.response_time_seconds");
    ok(secs > 0 && secs < 5, "response_time_seconds %.4f", secs);
    is_num(val(&t, "http_check.checks"), 1, 0, "checks 1");
    ok(tp_find(&t, "http_check.cert_expiry_days", NULL) == NULL, "no cert expiry for http");
    ok(tp_find(&t, "http_check.failures", NULL) == NULL, "no failure counted");
    r = tp_find(&t, "http_check.up", NULL);
    char want[128];
    snprintf(want, sizeof want, "http://127.0.0.1:%u/ok.txt", srv.port);
    is_str(label(r, "url"), want, "the url label");
    r = event(&t);
    ok(r != NULL, "the first result is an event");
    is_str(str(r, "status"), "up", "its status is up");
    is_str(label(r, "from"), "unknown", "from unknown");
    ok(strstr(str(r, "message"), "HTTP status 200") != NULL, "its message: %s",
       str(r, "message"));
    is_int(t.bad, 0, "every record well-formed");
    tp_close(&t);

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt?status=301"),
                                "expect_status=200, 301-302", "check_interval=1h", NULL },
          1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "a 301 in expect_status \"200, 301-302\": up 1");
    tp_close(&t);
}

static void test_status(void)
{
    struct tp t;
    char opt[512];

    log_clear();
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt?status=500"),
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "a 500: up 0");
    is_num(val(&t, "http_check.status_code"), 500, 0, "status_code 500");
    is_num(failures(&t, "status"), 1, 0, "failures{reason=status} 1");
    is_str(str(event(&t), "status"), "down", "the first result (down) is an event");
    ok(strstr(log_text(), "(status): HTTP status 500, expected 200-299") != NULL,
       "the log names the status and what was expected");
    tp_close(&t);

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "missing.txt"),
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.status_code"), 404, 0, "a missing file: 404");
    is_num(val(&t, "http_check.up"), 0, 0, "down");
    tp_close(&t);

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt?status=302"),
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0,
           "a 302 without follow_redirects is the answer, not in 200-299: down");
    tp_close(&t);
}

static void test_body(void)
{
    struct tp t;
    char opt[512];

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt"),
                                "body_contains=status: green", "check_interval=1h", NULL },
          1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "body_contains found: up 1");
    tp_close(&t);

    log_clear();
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt"),
                                "body_contains=status: red", "check_interval=1h", NULL },
          1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "body_contains not found: up 0");
    is_num(val(&t, "http_check.status_code"), 200, 0, "though the status was 200");
    is_num(failures(&t, "body"), 1, 0, "failures{reason=body} 1");
    ok(strstr(log_text(), "does not contain body_contains") != NULL, "the log says why");
    tp_close(&t);

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt"),
                                "body_regex=^version: [0-9]+\\.[0-9]+$", "check_interval=1h",
                                NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "^...$ without multiline does not match: up 0");
    is_num(failures(&t, "regex"), 1, 0, "failures{reason=regex} 1");
    tp_close(&t);

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt"),
                                "body_regex=(?m)^version: [0-9]+\\.[0-9]+$",
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "(?m) lets it match a line: up 1");
    tp_close(&t);

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt"),
                                "body_regex=(a+)+$", "body_contains=green",
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "both conditions must hold");
    tp_close(&t);

    /* The body read is bounded: text past max_body is not seen. */
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "big.txt"),
                                "body_contains=THE-END", "max_body=1KiB", "check_interval=1h",
                                NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "text past max_body is not read: up 0");
    is_num(val(&t, "http_check.status_code"), 200, 0, "the status still read");
    is_num(failures(&t, "body"), 1, 0, "reason body, not a transfer error");
    tp_close(&t);
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "big.txt"),
                                "body_contains=THE-START", "max_body=1KiB",
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "text within max_body of a larger body: up 1");
    tp_close(&t);
}

static void test_timeout_refused(void)
{
    struct tp t;
    char opt[512];

    log_clear();
    int64_t ms = check(&t, (const char *[]){ url(opt, sizeof opt, srv.port,
                                                 "ok.txt?delay_ms=3000"),
                                             "timeout=300ms", "check_interval=1h", NULL },
                       1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "a slow server past timeout: up 0");
    is_num(failures(&t, "timeout"), 1, 0, "failures{reason=timeout} 1");
    ok(ms < 2500, "it ended at the timeout (%lld ms)", (long long)ms);
    ok(val(&t, "http_check.response_time_seconds") < 2.5, "response_time is the time waited");
    is_num(val(&t, "http_check.status_code"), 0, 0, "status_code 0: no answer");
    ok(strstr(log_text(), "(timeout)") != NULL, "the log says timeout");
    tp_close(&t);

    log_clear();
    check(&t, (const char *[]){ "url=http://checker:pw-hidden@127.0.0.1:1/health",
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "connection refused: up 0");
    is_num(failures(&t, "connect"), 1, 0, "failures{reason=connect} 1");
    ok(strstr(log_text(), "check of GET http://127.0.0.1:1/health failed (connect)") != NULL,
       "the log names the URL and the reason");
    ok(strstr(log_text(), "pw-hidden") == NULL && strstr(log_text(), "checker") == NULL,
       "without the credentials it holds");
    is_str(label(tp_find(&t, "http_check.up", NULL), "url"), "http://127.0.0.1:1/health",
           "nor in the url label");
    tp_close(&t);
}

static void test_method_headers(void)
{
    struct tp t;
    char opt[512];

    int before = httpd_requests(&srv);
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt?m=head"),
                                "method=HEAD", "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "HEAD: up 1");
    tp_close(&t);
    ok(httpd_requests(&srv) == before + 1 && strstr(tp_slurp(srv.log), "HEAD /ok.txt") != NULL,
       "the server saw one HEAD");

    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt?m=post"),
                                "method=POST", "request_body='{\"ping\":1}'",
                                "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "POST with a body: up 1");
    tp_close(&t);
    ok(strstr(tp_slurp(srv.log), "POST /ok.txt") != NULL, "the server saw a POST");

    log_clear();
    is_int(tp_open_yaml(&t, "http_check", (const char *[]){ "url=http://x/", NULL },
                        (char[512]){ 0 }), PIPIT_EINVAL, "(an empty YAML map is refused)");
    tp_close(&t);
    char yaml[512];
    snprintf(yaml, sizeof yaml, "url: http://127.0.0.1:%u/ok.txt?echo_header=X-Probe\n"
             "check_interval: 1h\nheaders: {X-Probe: pipit-probe-7}\n"
             "body_contains: pipit-probe-7\n", srv.port);
    is_int(tp_open_yaml(&t, "http_check", (const char *[]){ "url=http://x/", NULL }, yaml),
           PIPIT_OK, "headers as a map");
    want_checks = 1;
    tp_pump(&t, 10000, have_checks);
    is_num(val(&t, "http_check.up"), 1, 0, "the server got the configured header");
    tp_close(&t);
}

/* Make a CA (valid 30 days) and a server certificate for 127.0.0.1 valid
 * for `days` days under tmp/tls with the openssl command. Returns 0 when
 * done. */
static int make_certs(int days)
{
    char cmd[8192];

    tp_mkdirs(tmp, "tls");
    tp_write(tmp, "tls/ext", "subjectAltName=IP:127.0.0.1\n");
    snprintf(cmd, sizeof cmd,
             "cd '%s/tls' && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 30 -subj '/CN=pipit test CA' && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout srv.key -out srv.csr -subj '/CN=127.0.0.1' && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days %d -extfile ext >/dev/null 2>&1", tmp, days);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_tls(void)
{
    struct httpd ssrv;
    struct tp t;
    char opt[512], cert[4300], key[4300], ca[4400], sdir[4300];

    snprintf(cert, sizeof cert, "%s/tls/srv.pem", tmp);
    snprintf(key, sizeof key, "%s/tls/srv.key", tmp);
    snprintf(sdir, sizeof sdir, "%s/tls", tmp);
    if (make_certs(10) != 0 ||
        httpd_start(&ssrv, www, sdir, (const char *[]){ "--tls-cert", cert, "--tls-key", key,
                                                         NULL }) != 0) {
        skip(9, "openssl or httpd_fixture --tls-cert did not work");
        return;
    }
    snprintf(opt, sizeof opt, "url=https://127.0.0.1:%u/ok.txt", ssrv.port);
    snprintf(ca, sizeof ca, "tls_ca_file=%s/tls/ca.pem", tmp);
    check(&t, (const char *[]){ opt, ca, "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "https verified with tls_ca_file: up 1");
    double days = val(&t, "http_check.cert_expiry_days");
    ok(days > 9.99 && days <= 10.0, "cert_expiry_days %.4f for a leaf of 10 days "
       "(the CA's 30 are later)", days);
    tp_close(&t);

    log_clear();
    check(&t, (const char *[]){ opt, "check_interval=1h", NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "without the CA: up 0");
    is_num(failures(&t, "tls"), 1, 0, "failures{reason=tls} 1");
    ok(strstr(log_text(), "certificate") != NULL, "the log says why (the certificate)");
    tp_close(&t);

    check(&t, (const char *[]){ opt, "tls_insecure_skip_verify=true", "check_interval=1h",
                                NULL }, 1, 10000);
    is_num(val(&t, "http_check.up"), 1, 0, "tls_insecure_skip_verify: up 1");
    days = val(&t, "http_check.cert_expiry_days");
    ok(days > 9.99 && days <= 10.0, "and the expiry still read (%.4f)", days);
    tp_close(&t);

    check(&t, (const char *[]){ opt, ca, "tls_min_days=14", "check_interval=1h", NULL },
          1, 10000);
    is_num(val(&t, "http_check.up"), 0, 0, "10 days left, tls_min_days 14: up 0");
    is_num(failures(&t, "cert_expiry"), 1, 0, "failures{reason=cert_expiry} 1");
    tp_close(&t);
    httpd_stop(&ssrv);
}

/* Events only on a change of state, across checks every 150 ms: a file
 * whose text decides up or down is switched between runs. */
static void test_state_changes(void)
{
    struct tp t;
    char opt[512];
    json_t *r;

    tp_write(www, "flip.txt", "state: OK\n");
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "flip.txt"),
                                "body_contains=OK", "check_interval=150ms", "timeout=100ms",
                                NULL }, 3, 10000);
    is_int(tp_count(&t, "http_check.up", NULL), 3, "three checks up");
    is_int(events(&t), 1, "one event: the first result");
    is_str(str(event(&t), "status"), "up", "up");

    tp_write(www, "flip.txt", "state: FAILED\n");
    want_checks = 3;
    tp_pump(&t, 10000, have_checks);
    is_num(tp_count(&t, "http_check.up", NULL), 3, 0, "three more checks");
    is_int(events(&t), 1, "up to down: one event");
    r = event(&t);
    is_str(str(r, "status"), "down", "status down");
    is_str(label(r, "from"), "up", "from up");
    ok(strstr(str(r, "message"), "down (body)") != NULL, "the reason in its message: %s",
       str(r, "message"));
    is_int(tp_count(&t, "http_check.up", NULL) - (int)(val(&t, "http_check.up") == 0) * 0,
           3, "(checks counted)");

    want_checks = 2;
    tp_pump(&t, 10000, have_checks);
    is_int(events(&t), 0, "still down: no event");

    tp_write(www, "flip.txt", "state: OK\n");
    want_checks = 3;
    tp_pump(&t, 10000, have_checks);
    is_int(events(&t), 1, "down to up: one event");
    r = event(&t);
    is_str(str(r, "status"), "up", "status up");
    is_str(label(r, "from"), "down", "from down");
    is_int(t.bad, 0, "every record well-formed");
    tp_close(&t);
}

/* A slow server and a short interval: a tick that finds the last check
 * still running skips, and stopping mid-check leaves nothing behind. */
static void test_skip_and_stop(void)
{
    struct tp t;
    char opt[512];

    log_clear();
    check(&t, (const char *[]){ url(opt, sizeof opt, srv.port, "ok.txt?delay_ms=700"),
                                "check_interval=200ms", "timeout=150ms", NULL }, 1, 10000);
    is_num(failures(&t, "timeout"), 1, 0, "timeout under the interval");
    tp_close(&t);

    is_int(tp_open(&t, "http_check", (const char *[]){ url(opt, sizeof opt, srv.port,
                                                           "ok.txt?delay_ms=2000"),
                                                       "check_interval=1h", NULL }),
           PIPIT_OK, "a slow target");
    tp_pump(&t, 300, NULL);
    is_int(tp_count(&t, "http_check.up", NULL), 0, "its check is still running");
    tp_close(&t);
    ok(strstr(log_text(), "left open") == NULL, "stopped mid-check: no loop handle left open");
}

static void test_options(void)
{
    static const struct {
        const char *kv, *key;
    } bad[] = {
        /* logfmt escapes the quotes */
        { "url=ftp://127.0.0.1/x", "url: scheme \\\"ftp\\\"" },
        { "url=not a url", "url: " },
        { "method=FETCH", "method: \\\"FETCH\\\"" },
        { "expect_status=200-700", "expect_status: item 1" },
        { "body_regex=([a-z]", "body_regex: does not compile" },
        { "timeout=1h", "timeout: must be less than check_interval" },
        { "tls_cert_file=/etc/hostname", "tls_cert_file: " },
        { "tls_ca_file=/no/such/ca.pem", "tls_ca_file: /no/such/ca.pem" },
    };
    struct tp t;
    char opt[512];

    url(opt, sizeof opt, srv.port, "ok.txt");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log_clear();
        const char *kv[4] = { opt, bad[i].kv, NULL };
        if (strncmp(bad[i].kv, "url=", 4) == 0)
            kv[0] = bad[i].kv, kv[1] = NULL;
        int rc = tp_open(&t, "http_check", kv);
        if (!ok(rc == PIPIT_ECONFIG && strstr(log_text(), bad[i].key) != NULL,
                "%s refused, naming the key", bad[i].kv))
            diag("rc %d, log: %s", rc, log_text());
        tp_close(&t);
    }
    log_clear();
    is_int(tp_open(&t, "http_check", (const char *[]){ opt, "method=HEAD",
                                                       "body_contains=x", NULL }),
           PIPIT_ECONFIG, "HEAD with body_contains is refused");
    tp_close(&t);
    is_int(tp_open(&t, "http_check", (const char *[]){ "check_interval=1s", NULL }),
           PIPIT_EINVAL, "url is required");
    tp_close(&t);
}

int main(void)
{
    char big[4096];

    plan(109);
    test_statuslist();
    tmp = tp_tmpdir();
    snprintf(www, sizeof www, "%s/www", tmp);
    snprintf(logpath, sizeof logpath, "%s/plugin.log", tmp);
    log_file = fopen(logpath, "w+");
    if (!log_file) {
        printf("Bail out! cannot open %s\n", logpath);
        return 1;
    }
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    tp_write(tmp, "www/ok.txt", "status: green\nversion: 1.4\n");
    memset(big, 0, sizeof big);
    memcpy(big, "THE-START\n", 10);
    for (size_t n = 10; n + 12 < sizeof big; n += 11)
        memcpy(big + n, "filler 1.0\n", 11);
    strcpy(big + sizeof big - 12, "THE-END\n");
    tp_write(tmp, "www/big.txt", big);
    if (httpd_start(&srv, www, tmp, NULL) != 0) {
        printf("Bail out! httpd_fixture did not start\n");
        return 1;
    }
    test_up();
    test_status();
    test_body();
    test_timeout_refused();
    test_method_headers();
    test_tls();
    test_state_changes();
    test_skip_and_stop();
    test_options();
    httpd_stop(&srv);
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    fclose(log_file);
    tp_rmtree(tmp);
    return done_testing();
}
