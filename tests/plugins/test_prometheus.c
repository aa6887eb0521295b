/* test_prometheus.c: the prometheus scrape input through the harness, against httpd_fixture and a real node_exporter on loopback. */
#include "plugtest.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "log.h"
#include "node_exporter.h"
#include "../http/httpd.h"

/*
 * Scraped records keep their Prometheus names, which have no dots, and
 * histograms are not gauges or counters: plugtest's naming check reports
 * them as malformed, so these tests do not look at t.bad.
 */

static const char *tmp;                 /* scratch directory of the test */
static char www[4200], logpath[4200];
static struct httpd srv;                /* plain HTTP, serving www */
static FILE *log_file;                      /* the plugin's log lines */

static const char every_txt[] =
    "# HELP http_requests_total Requests served.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{code=\"200\",method=\"get\"} 1027\n"
    "http_requests_total{code=\"400\",method=\"post\"} 3 1395066363000\n"
    "# TYPE temperature_celsius gauge\n"
    "temperature_celsius{room=\"a\\\"b\\\\c\\nd\"} -3.5e1\n"
    "# TYPE nothing_yet gauge\n"
    "nothing_yet NaN\n"
    "# TYPE upper_bound gauge\n"
    "upper_bound +Inf\n"
    "lower_bound -Inf\n"
    "# TYPE latency_seconds histogram\n"
    "latency_seconds_bucket{le=\"0.1\"} 2\n"
    "latency_seconds_bucket{le=\"1\"} 5\n"
    "latency_seconds_bucket{le=\"+Inf\"} 6\n"
    "latency_seconds_sum 4.2\n"
    "latency_seconds_count 6\n"
    "# TYPE rpc_seconds summary\n"
    "rpc_seconds{quantile=\"0.5\"} 0.05\n"
    "rpc_seconds{quantile=\"0.99\"} 0.2\n"
    "rpc_seconds_sum 17\n"
    "rpc_seconds_count 120\n"
    "# TYPE mystery untyped\n"
    "mystery 42\n"
    "no_type_at_all 7\n";
#define EVERY_SAMPLES 17

static const char bad_txt[] =
    "# TYPE good_one gauge\n"
    "good_one 1\n"
    "bad{ 1\n"
    "good_two 2\n"
    "good_three{a=\"x\"} not_a_number\n"
    "bad_escape{a=\"\\q\"} 3\n"
    "good_four 4\n";

static const char clash_txt[] =
    "clash_metric{job=\"their_job\",instance=\"their:1\",env=\"theirs\",own=\"o\"} 1\n";

/* Open the prometheus input with options kv; returns init's status. */
static int prom_open(struct tp *t, const char *const *kv)
{
    return tp_open(t, "prometheus", kv);
}

static int want_up = 1;

static bool have_up(struct tp *t)
{
    return tp_count(t, "up", NULL) >= want_up;
}

/*
 * Open the input with kv, wait until n scrapes reported `up` (at most ms)
 * and return how long that took; init's failure is reported and gives -1.
 */
static int64_t scrape(struct tp *t, const char *const *kv, int n, int64_t ms)
{
    int rc = prom_open(t, kv);

    if (rc != PIPIT_OK) {
        diag("init failed: %d", rc);
        return -1;
    }
    want_up = n;
    return tp_pump(t, ms, have_up);
}

/* The value of `up` for the target url (by its instance label), NaN when
 * no record. */
static double up_of(struct tp *t, unsigned port)
{
    char inst[64];

    snprintf(inst, sizeof inst, "127.0.0.1:%u", port);
    return tp_val(tp_find(t, "up", "instance", inst, NULL));
}

static const char *label(json_t *r, const char *key)
{
    const char *v = json_string_value(json_object_get(json_object_get(r, "labels"), key));
    return v ? v : "";
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

/* "targets=[URL]" for path on port, in buf. */
static const char *target(char *buf, size_t size, unsigned port, const char *path)
{
    snprintf(buf, size, "targets=[\"http://127.0.0.1:%u/%s\"]", port, path);
    return buf;
}

static void test_every_construct(void)
{
    struct tp t;
    char opt[512];
    json_t *r;

    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "every.txt"),
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 1, 0, "every construct: up 1");
    r = tp_find(&t, "up", NULL);
    is_str(label(r, "job"), "prometheus", "job defaults to the instance name");
    is_num(tp_val(tp_find(&t, "scrape_samples_scraped", NULL)), EVERY_SAMPLES, 0,
           "scrape_samples_scraped counts the sample lines");
    double secs = tp_val(tp_find(&t, "scrape_duration_seconds", NULL));
    ok(secs > 0 && secs < 10, "scrape_duration_seconds %.4f", secs);
    int64_t up_time = (int64_t)json_integer_value(json_object_get(r, "time"));

    r = tp_find(&t, "http_requests_total", "code", "200", "method", "get", NULL);
    is_num(tp_val(r), 1027, 0, "a counter with two labels");
    is_str(tp_type(r), "counter", "typed counter");
    is_str(label(r, "instance"), label(tp_find(&t, "up", NULL), "instance"),
           "the target's instance label on a scraped record");
    is_int((int)(json_integer_value(json_object_get(r, "time")) == up_time), 1,
           "a sample without timestamp is stamped with the scrape's start");
    r = tp_find(&t, "http_requests_total", "code", "400", NULL);
    ok(json_integer_value(json_object_get(r, "time")) == 1395066363000LL * 1000000,
       "the exposition's timestamp is kept");
    r = tp_find(&t, "temperature_celsius", NULL);
    is_str(label(r, "room"), "a\"b\\c\nd", "label escapes undone");
    is_num(tp_val(r), -35, 0, "exponent read");
    is_str(json_string_value(json_object_get(tp_find(&t, "nothing_yet", NULL), "value")),
           "NaN", "NaN kept");
    is_str(json_string_value(json_object_get(tp_find(&t, "upper_bound", NULL), "value")),
           "+Inf", "+Inf kept");
    is_str(json_string_value(json_object_get(tp_find(&t, "lower_bound", NULL), "value")),
           "-Inf", "-Inf kept");
    r = tp_find(&t, "latency_seconds", NULL);
    is_str(tp_type(r), "histogram", "a histogram as one record");
    is_int((int)json_array_size(json_object_get(r, "buckets")), 3, "with its three buckets");
    is_num(json_number_value(json_object_get(r, "count")), 6, 0, "and its count");
    is_str(label(r, "job"), "prometheus", "and the target's labels");
    is_num(tp_val(tp_find(&t, "rpc_seconds", "quantile", "0.99", NULL)), 0.2, 1e-12,
           "a summary quantile");
    is_num(tp_val(tp_find(&t, "rpc_seconds_count", NULL)), 120, 0, "summary count");
    is_num(tp_val(tp_find(&t, "mystery", NULL)), 42, 0, "untyped");
    is_num(tp_val(tp_find(&t, "no_type_at_all", NULL)), 7, 0, "no TYPE line");
    is_num(tp_val(tp_find(&t, "prometheus.malformed_lines", NULL)), 0, 0,
           "no malformed line");
    is_int(tp_count(&t, "up", NULL), 1, "one scrape with scrape_interval 1h");
    tp_close(&t);
}

/* A free TCP port on loopback (bound once, then released). */
static unsigned free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned port = 0;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* True once something accepts connections on 127.0.0.1:port. */
static bool listening(unsigned port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool yes = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;

    if (fd >= 0)
        close(fd);
    return yes;
}

static void test_node_exporter(void)
{
    const char *exe = node_exporter_path();
    struct tp t;
    char opt[256];
    unsigned port = free_port();
    pid_t pid;

    if (!exe || !port || (pid = node_exporter_start(exe, port)) < 0) {
        skip(5, "prometheus-node-exporter is not installed");
        return;
    }
    for (int i = 0; i < 200 && !listening(port); i++)
        usleep(50000);
    scrape(&t, (const char *[]){ target(opt, sizeof opt, port, "metrics"),
                                 "scrape_interval=1h", "scrape_timeout=20s", NULL }, 1, 30000);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    is_num(up_of(&t, port), 1, 0, "node_exporter: up 1");
    ok(json_array_size(t.recs) > 200, "%zu records", json_array_size(t.recs));
    ok(tp_find(&t, "node_load1", "job", "prometheus", NULL) != NULL,
       "node_load1 with the job label");
    ok(tp_find(&t, "go_gc_duration_seconds", "quantile", "0.5", NULL) != NULL,
       "a summary quantile of the Go runtime");
    is_num(tp_val(tp_find(&t, "prometheus.malformed_lines", NULL)), 0, 0,
           "no malformed line in node_exporter's output");
    tp_close(&t);
}

static void test_concurrent(void)
{
    struct tp t;
    char opt[1024];

    snprintf(opt, sizeof opt, "targets=[\"http://127.0.0.1:%u/every.txt?delay_ms=1000&n=0\", "
             "\"http://127.0.0.1:%u/every.txt?delay_ms=1000&n=1\", "
             "\"http://127.0.0.1:%u/every.txt?delay_ms=1000&n=2\"]", srv.port, srv.port,
             srv.port);
    int64_t ms = scrape(&t, (const char *[]){ opt, "scrape_interval=1h", NULL }, 3, 20000);
    is_int(tp_count(&t, "up", NULL), 3, "three targets scraped");
    is_int(tp_count(&t, "latency_seconds", NULL), 3, "each one's records arrived");
    ok(ms < 2500, "concurrently: %lld ms for three answers of 1 s each", (long long)ms);
    tp_close(&t);
}

static void test_failures(void)
{
    struct tp t;
    char opt[512];

    log_clear();
    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "every.txt?delay_ms=3000"),
                                 "scrape_interval=1h", "scrape_timeout=300ms", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 0, 0, "past scrape_timeout: up 0");
    ok(tp_val(tp_find(&t, "scrape_duration_seconds", NULL)) < 2.5,
       "it ended at the timeout");
    is_int(tp_count(&t, "http_requests_total", NULL), 0, "nothing scraped");
    ok(strstr(log_text(), "timed out") != NULL, "the log says it timed out");
    tp_close(&t);

    log_clear();
    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "missing.txt"),
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 0, 0, "404: up 0");
    is_num(tp_val(tp_find(&t, "prometheus.failed_scrapes", NULL)), 1, 0, "counted as failed");
    ok(strstr(log_text(), "HTTP status 404") != NULL, "the log names the status");
    tp_close(&t);

    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "every.txt?status=500"),
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 0, 0, "500: up 0");
    is_int(tp_count(&t, "http_requests_total", NULL), 0, "the body of a 500 is not used");
    tp_close(&t);

    log_clear();
    scrape(&t, (const char *[]){ "targets=[\"http://scraper:pw-hidden@127.0.0.1:1/metrics\"]",
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, 1), 0, 0, "connection refused: up 0");
    ok(strstr(log_text(), "scrape of http://127.0.0.1:1/metrics failed") != NULL,
       "the log names the URL");
    ok(strstr(log_text(), "pw-hidden") == NULL, "without the password it holds");
    tp_close(&t);
}

/* An instance stopped with a scrape in flight leaves no loop handle behind
 * (a timer left armed would fire into a freed instance after a reload). */
static void test_stop_in_flight(void)
{
    struct tp t;
    char opt[512];

    log_clear();
    is_int(prom_open(&t, (const char *[]){ target(opt, sizeof opt, srv.port,
                                                  "every.txt?delay_ms=2000"),
                                           "scrape_interval=1h", NULL }), PIPIT_OK,
           "a slow target");
    tp_pump(&t, 300, NULL);
    is_int(tp_count(&t, "up", NULL), 0, "its scrape is still running");
    tp_close(&t);
    ok(strstr(log_text(), "left open") == NULL, "stopped mid-scrape: no loop handle left open");
}

static void test_malformed(void)
{
    struct tp t;
    char opt[512];

    log_clear();
    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "bad.txt"),
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 1, 0, "malformed lines: the target is still up");
    ok(tp_find(&t, "good_one", NULL) && tp_find(&t, "good_two", NULL) &&
       tp_find(&t, "good_four", NULL), "the good lines are kept");
    is_num(tp_val(tp_find(&t, "prometheus.malformed_lines", NULL)), 3, 0,
           "the three bad lines counted");
    ok(strstr(log_text(), "3 lines refused, the first at line 3") != NULL,
       "and logged with the first one's line");
    tp_close(&t);

    /* 63 labels are fine for the parser, not with job and instance added. */
    log_clear();
    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "wide.txt"),
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_int(tp_count(&t, "wide", NULL), 0, "a sample past 64 labels with the target's is refused");
    ok(tp_find(&t, "narrow", NULL) != NULL, "the next sample is kept");
    is_num(tp_val(tp_find(&t, "prometheus.malformed_lines", NULL)), 1, 0, "and it is counted");
    tp_close(&t);
}

static void test_limits(void)
{
    struct tp t;
    char opt[512];

    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "every.txt"),
                                 "scrape_interval=1h", "max_samples=10", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 0, 0, "max_samples exceeded: up 0");
    is_int(tp_count(&t, "http_requests_total", NULL), 0, "and no sample of it emitted");
    is_num(tp_val(tp_find(&t, "scrape_samples_scraped", NULL)), EVERY_SAMPLES, 0,
           "its samples are still reported");
    tp_close(&t);

    char limit[64];
    snprintf(limit, sizeof limit, "max_samples=%d", EVERY_SAMPLES);
    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "every.txt"), limit,
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 1, 0, "max_samples reached, not exceeded: up 1");
    tp_close(&t);

    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "big.txt"),
                                 "scrape_interval=1h", "max_body=1KiB", NULL }, 1, 10000);
    is_num(up_of(&t, srv.port), 0, 0, "max_body exceeded: up 0");
    is_int(tp_count(&t, "filler", NULL), 0, "and nothing of the body emitted");
    tp_close(&t);
}

static void test_honor_labels(void)
{
    struct tp t;
    char opt[512];
    json_t *r;

    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "clash.txt"),
                                 "scrape_interval=1h", "job=node",
                                 "labels={env: prod, exported_env: cfg}", NULL }, 1, 10000);
    r = tp_find(&t, "clash_metric", NULL);
    is_str(label(r, "job"), "node", "honor_labels false: the target's job");
    is_str(label(r, "exported_job"), "their_job", "the scraped job as exported_job");
    is_str(label(r, "instance"), label(tp_find(&t, "up", NULL), "instance"),
           "the target's instance");
    is_str(label(r, "exported_instance"), "their:1", "the scraped one as exported_instance");
    is_str(label(r, "env"), "prod", "a configured label wins");
    is_str(label(r, "exported_env"), "cfg", "a configured exported_ name stays the target's");
    is_str(label(r, "exported_exported_env"), "theirs",
           "so the scraped env takes the prefix twice");
    is_str(label(r, "own"), "o", "a label without a clash is kept");
    is_str(label(tp_find(&t, "up", NULL), "env"), "prod", "health records get the labels");
    tp_close(&t);

    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "clash.txt"),
                                 "scrape_interval=1h", "job=node", "labels={env: prod}",
                                 "honor_labels=true", NULL }, 1, 10000);
    r = tp_find(&t, "clash_metric", NULL);
    is_str(label(r, "job"), "their_job", "honor_labels true: the scraped job");
    is_str(label(r, "instance"), "their:1", "the scraped instance");
    is_str(label(r, "env"), "theirs", "the scraped env");
    is_str(label(r, "exported_job"), "", "nothing renamed");
    is_str(label(tp_find(&t, "up", NULL), "job"), "node", "health keeps the target's job");
    tp_close(&t);

    scrape(&t, (const char *[]){ target(opt, sizeof opt, srv.port, "clash.txt"),
                                 "scrape_interval=1h", "labels={instance: web-1}", NULL },
           1, 10000);
    is_num(tp_val(tp_find(&t, "up", "instance", "web-1", NULL)), 1, 0,
           "labels.instance replaces the one of the URL");
    tp_close(&t);
}

static void test_token(void)
{
    struct httpd tsrv;
    struct tp t;
    char opt[512], tokfile[4300], tdir[4300], topt[4400];

    snprintf(tdir, sizeof tdir, "%s/tok", tmp);
    tp_mkdirs(tmp, "tok");
    if (httpd_start(&tsrv, www, tdir, (const char *[]){ "--token", "s3cret-t0ken", NULL }) != 0) {
        skip(7, "httpd_fixture --token did not start");
        return;
    }
    scrape(&t, (const char *[]){ target(opt, sizeof opt, tsrv.port, "every.txt"),
                                 "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, tsrv.port), 0, 0, "no token: up 0 (401)");
    tp_close(&t);

    snprintf(tokfile, sizeof tokfile, "%s/token", tmp);
    snprintf(topt, sizeof topt, "bearer_token_file=%s", tokfile);
    tp_write(tmp, "token", "s3cret-t0ken\n");
    log_clear();
    scrape(&t, (const char *[]){ target(opt, sizeof opt, tsrv.port, "every.txt"),
                                 "scrape_interval=300ms", "scrape_timeout=250ms", topt, NULL },
           1, 10000);
    is_num(up_of(&t, tsrv.port), 1, 0, "the token from the file: up 1");
    ok(tp_find(&t, "http_requests_total", NULL) != NULL, "and the records");

    /* The file is read again when it changes: a wrong token fails. */
    tp_write(tmp, "token", "wrong\n");
    want_up = 1;
    tp_pump(&t, 10000, have_up);
    is_num(up_of(&t, tsrv.port), 0, 0, "a changed file is read again (wrong token: up 0)");
    tp_write(tmp, "token", "s3cret-t0ken");
    tp_pump(&t, 10000, have_up);
    is_num(up_of(&t, tsrv.port), 1, 0, "and again (right token, no newline: up 1)");
    ok(strstr(log_text(), "s3cret") == NULL, "the token never reaches the log");
    tp_close(&t);

    snprintf(topt, sizeof topt, "bearer_token_file=%s/no-such-file", tmp);
    is_int(prom_open(&t, (const char *[]){ target(opt, sizeof opt, tsrv.port, "every.txt"),
                                           topt, NULL }), PIPIT_ECONFIG,
           "a missing token file is refused at init");
    tp_close(&t);
    httpd_stop(&tsrv);
}

/* Make a CA and a server certificate for 127.0.0.1 under tmp/tls with the
 * openssl command. Returns 0 when done. */
static int make_certs(void)
{
    char cmd[8192];

    tp_mkdirs(tmp, "tls");
    tp_write(tmp, "tls/ext", "subjectAltName=IP:127.0.0.1\n");
    snprintf(cmd, sizeof cmd,
             "cd '%s/tls' && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj '/CN=pipit test CA' && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout srv.key -out srv.csr -subj '/CN=127.0.0.1' && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out srv.pem -days 2 -extfile ext", tmp);
    strcat(cmd, " >/dev/null 2>&1");
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
    if (make_certs() != 0 ||
        httpd_start(&ssrv, www, sdir, (const char *[]){ "--tls-cert", cert, "--tls-key", key,
                                                         NULL }) != 0) {
        skip(5, "openssl or httpd_fixture --tls-cert did not work");
        return;
    }
    snprintf(opt, sizeof opt, "targets=[\"https://127.0.0.1:%u/every.txt\"]", ssrv.port);
    snprintf(ca, sizeof ca, "tls_ca_file=%s/tls/ca.pem", tmp);
    scrape(&t, (const char *[]){ opt, "scrape_interval=1h", ca, NULL }, 1, 10000);
    is_num(up_of(&t, ssrv.port), 1, 0, "https verified with tls_ca_file: up 1");
    ok(tp_find(&t, "latency_seconds", NULL) != NULL, "and the records");
    tp_close(&t);

    log_clear();
    scrape(&t, (const char *[]){ opt, "scrape_interval=1h", NULL }, 1, 10000);
    is_num(up_of(&t, ssrv.port), 0, 0, "without the CA: up 0");
    ok(strstr(log_text(), "certificate") != NULL, "the log says why (the certificate)");
    tp_close(&t);

    scrape(&t, (const char *[]){ opt, "scrape_interval=1h", "tls_insecure_skip_verify=true",
                                 NULL }, 1, 10000);
    is_num(up_of(&t, ssrv.port), 1, 0, "tls_insecure_skip_verify: up 1");
    tp_close(&t);
    httpd_stop(&ssrv);
}

static void test_options(void)
{
    struct tp t;
    char opt[512];

    target(opt, sizeof opt, srv.port, "every.txt");
    is_int(prom_open(&t, (const char *[]){ opt, "scrape_interval=1s", "scrape_timeout=1s",
                                           NULL }), PIPIT_ECONFIG,
           "scrape_timeout equal to scrape_interval is refused");
    tp_close(&t);
    is_int(prom_open(&t, (const char *[]){ "targets=[\"ftp://127.0.0.1/x\"]", NULL }),
           PIPIT_ECONFIG, "an ftp target is refused");
    tp_close(&t);
    is_int(prom_open(&t, (const char *[]){ opt, "labels={job: x}", NULL }), PIPIT_ECONFIG,
           "labels.job is refused (the job option sets it)");
    tp_close(&t);
    is_int(prom_open(&t, (const char *[]){ opt, "labels={\"bad-name\": x}", NULL }),
           PIPIT_ECONFIG, "a label key that is not a label name is refused");
    tp_close(&t);
    is_int(prom_open(&t, (const char *[]){ opt, "tls_cert_file=/etc/hostname", NULL }),
           PIPIT_ECONFIG, "tls_cert_file without tls_key_file is refused");
    tp_close(&t);
    is_int(prom_open(&t, (const char *[]){ opt, "scrape_interval=2s", NULL }), PIPIT_OK,
           "without scrape_timeout, a short interval gets a shorter timeout");
    tp_close(&t);
}

int main(void)
{
    char big[2048];

    plan(93);
    tmp = tp_tmpdir();
    snprintf(www, sizeof www, "%s/www", tmp);
    snprintf(logpath, sizeof logpath, "%s/plugin.log", tmp);
    log_file = fopen(logpath, "w+");
    if (!log_file) {
        printf("Bail out! cannot open %s\n", logpath);
        return 1;
    }
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    tp_write(tmp, "www/every.txt", every_txt);
    tp_write(tmp, "www/bad.txt", bad_txt);
    tp_write(tmp, "www/clash.txt", clash_txt);
    char wide[2048] = "wide{";
    for (int i = 0; i < 63; i++)
        snprintf(wide + strlen(wide), sizeof wide - strlen(wide), "%sl%d=\"v\"", i ? "," : "", i);
    strcat(wide, "} 1\nnarrow 2\n");
    tp_write(tmp, "www/wide.txt", wide);
    memset(big, 0, sizeof big);
    for (size_t n = 0; n + 12 < sizeof big; n += 11)
        memcpy(big + n, "filler 1.0\n", 11);
    tp_write(tmp, "www/big.txt", big);
    if (httpd_start(&srv, www, tmp, NULL) != 0) {
        printf("Bail out! httpd_fixture did not start\n");
        return 1;
    }
    test_every_construct();
    test_node_exporter();
    test_concurrent();
    test_failures();
    test_stop_in_flight();
    test_malformed();
    test_limits();
    test_honor_labels();
    test_token();
    test_tls();
    test_options();
    httpd_stop(&srv);
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    fclose(log_file);
    tp_rmtree(tmp);
    return done_testing();
}
