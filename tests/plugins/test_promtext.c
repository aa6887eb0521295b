/* test_promtext.c: the shared Prometheus text parser (plugins/common/promtext.c), construct by construct, and on node_exporter's output. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "promtext.h"
#include "node_exporter.h"
#include "../tap.h"

/* What one parse produced: one text line per record, one per error. */
struct got {
    char *recs, *errs;
    size_t rlen, elen;
    FILE *r, *e;
    struct promtext_stats st;
};

/* Shortest %g that reads back as v. */
static void num(FILE *f, double v)
{
    char b[40];

    for (int p = 15; p <= 17; p++) {
        snprintf(b, sizeof b, "%.*g", p, v);
        if (isnan(v) || strtod(b, NULL) == v)
            break;
    }
    fputs(b, f);
}

static void on_emit(void *arg, const struct pipit_record *rec)
{
    struct got *g = arg;
    static const char *const types[] = { "?", "gauge", "counter", "histogram" };

    fprintf(g->r, "%s %s ", rec->name, types[rec->metric_type]);
    if (rec->metric_type == PIPIT_HISTOGRAM) {
        fputs("sum=", g->r);
        num(g->r, rec->sum);
        fprintf(g->r, " count=%llu [", (unsigned long long)rec->count);
        for (size_t i = 0; i < rec->nbuckets; i++) {
            fputs(i ? " " : "", g->r);
            num(g->r, rec->bucket_bounds[i]);
            fprintf(g->r, ":%llu", (unsigned long long)rec->bucket_counts[i]);
        }
        fputs("]", g->r);
    } else {
        num(g->r, rec->value);
    }
    fputs(" {", g->r);
    for (size_t i = 0; i < rec->nlabels; i++)
        fprintf(g->r, "%s%s=%s", i ? "," : "", rec->labels[i].key, rec->labels[i].value);
    fputs("}", g->r);
    if (rec->time_ns)
        fprintf(g->r, " @%lld", (long long)rec->time_ns);
    fputs("\n", g->r);
}

static void on_error(void *arg, unsigned long line, const char *reason)
{
    struct got *g = arg;

    fprintf(g->e, "%lu: %s\n", line, reason);
}

/* Parse text; the results stay in g until got_free. */
static int parse(struct got *g, const char *text)
{
    int rc;

    memset(g, 0, sizeof *g);
    g->r = open_memstream(&g->recs, &g->rlen);
    g->e = open_memstream(&g->errs, &g->elen);
    rc = promtext_parse(text, strlen(text), on_emit, on_error, g, &g->st);
    fclose(g->r);
    fclose(g->e);
    return rc;
}

static void got_free(struct got *g)
{
    free(g->recs);
    free(g->errs);
}

/* Parse text and compare its records and errors with the expected ones. */
static void check(const char *what, const char *text, const char *recs, const char *errs)
{
    struct got g;

    is_int(parse(&g, text), PIPIT_OK, "%s: parsed", what);
    is_str(g.recs, recs, "%s: records", what);
    is_str(g.errs, errs, "%s: errors", what);
    got_free(&g);
}

static void test_samples(void)
{
    check("counter and gauge with HELP and TYPE",
          "# HELP http_requests_total The total number of requests.\n"
          "# TYPE http_requests_total counter\n"
          "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
          "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
          "\n"
          "# TYPE temp gauge\n"
          "temp 21.5\n",
          "http_requests_total counter 1027 {method=post,code=200} @1395066363000000000\n"
          "http_requests_total counter 3 {method=post,code=400} @1395066363000000000\n"
          "temp gauge 21.5 {}\n", "");
    check("untyped is a gauge; a name without TYPE is untyped",
          "# TYPE u untyped\nu 1\nother_metric 2\n",
          "u gauge 1 {}\nother_metric gauge 2 {}\n", "");
    check("special and exponent numbers",
          "a NaN\nb +Inf\nc -Inf\nd 1.5e3\ne -2E-2\nf +7\ng .5\n",
          "a gauge nan {}\nb gauge inf {}\nc gauge -inf {}\nd gauge 1500 {}\n"
          "e gauge -0.02 {}\nf gauge 7 {}\ng gauge 0.5 {}\n", "");
    check("label escapes",
          "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n",
          "msdos_file_access_time_seconds gauge 1458255915 "
          "{path=C:\\DIR\\FILE.TXT,error=Cannot find file:\n\"FILE.TXT\"}\n", "");
    check("comments, blank lines, CRLF, blanks, trailing comma, empty set",
          "# just a comment\r\n\r\n   \r\n"
          "x{a=\"1\",} 1\r\n"
          "y{} 2\r\n"
          "\tz { b = \"2\" } 3 \r\n"
          "# TYPED is just a comment\r\n"
          "last 4",
          "x gauge 1 {a=1}\ny gauge 2 {}\nz gauge 3 {b=2}\nlast gauge 4 {}\n", "");
    check("negative timestamp",
          "t 1 -1000\n", "t gauge 1 {} @-1000000000\n", "");
}

static void test_malformed(void)
{
    check("each bad line refused with its number, the good ones kept",
          "good1 1\n"
          "missing_value\n"
          "bad_escape{a=\"x\\q\"} 1\n"
          "unterminated{a=\"x\" 1\n"
          "bad_number 12abc\n"
          "dup{a=\"1\",a=\"2\"} 1\n"
          "good2{a=\"1\"} 2\n"
          "unterminated_value{a=\"x} 1\n"
          "unquoted{a=x} 1\n"
          "bad_ts 1 12.5\n"
          "trailing 1 2 3\n"
          "9starts_with_digit 1\n"
          "# TYPE t sometype\n"
          "hexnum 0x10\n"
          "good3 3\n"
          "dash-1\n",
          "good1 gauge 1 {}\ngood2 gauge 2 {a=1}\ngood3 gauge 3 {}\n",
          "2: missing value\n"
          "3: bad escape in a label value\n"
          "4: expected , or } after a label\n"
          "5: bad number\n"
          "6: duplicate label\n"
          "8: unterminated label value\n"
          "9: label value is not quoted\n"
          "10: bad timestamp\n"
          "11: text after the timestamp\n"
          "12: bad metric name\n"
          "13: unknown type in TYPE\n"
          "14: bad number\n"
          "16: bad metric name\n");
    check("label set cut at the end of the line",
          "a{b=\"1\",\nok 1\n", "ok gauge 1 {}\n", "1: unterminated label set\n");

    {
        char *text = NULL, *want = NULL;
        size_t tl = 0, wl = 0;
        FILE *f = open_memstream(&text, &tl), *w = open_memstream(&want, &wl);
        struct got g;

        for (int n = 64; n <= 65; n++) {
            fprintf(f, "many%d{", n);
            for (int i = 0; i < n; i++)
                fprintf(f, "%sl%d=\"%d\"", i ? "," : "", i, i);
            fputs("} 1\n", f);
        }
        fclose(f);
        parse(&g, text);
        is_int((int)g.st.records, 1, "64 labels kept");
        is_str(g.errs, "2: too many labels\n", "65 labels refused");
        ok(strncmp(g.recs, "many64 gauge 1 {l0=0,l1=1,", 26) == 0, "the 64-label record");
        got_free(&g);
        free(text);
        fclose(w);
        free(want);
    }
    {
        size_t n = PROMTEXT_MAX_LINE + 10;
        char *text = malloc(n + 20);
        struct got g;

        memset(text, 'a', n);
        strcpy(text + n, " 1\nok 2\n");
        parse(&g, text);
        is_str(g.errs, "1: line too long\n", "an over-long line refused");
        is_str(g.recs, "ok gauge 2 {}\n", "the next line kept");
        free(text);
        got_free(&g);
    }
    {
        static const char text[] = "a 1\nb\0 2\nc 3\n";
        struct got g;

        memset(&g, 0, sizeof g);
        g.r = open_memstream(&g.recs, &g.rlen);
        g.e = open_memstream(&g.errs, &g.elen);
        promtext_parse(text, sizeof text - 1, on_emit, on_error, &g, &g.st);
        fclose(g.r);
        fclose(g.e);
        is_str(g.recs, "a gauge 1 {}\nc gauge 3 {}\n", "NUL byte: lines around kept");
        is_str(g.errs, "2: NUL byte in a line\n", "NUL byte refused");
        got_free(&g);
    }
}

static void test_histogram(void)
{
    check("a histogram with two label sets, then the next family",
          "# HELP http_request_duration_seconds A histogram of the request duration.\n"
          "# TYPE http_request_duration_seconds histogram\n"
          "http_request_duration_seconds_bucket{code=\"200\",le=\"0.05\"} 24054\n"
          "http_request_duration_seconds_bucket{code=\"200\",le=\"0.1\"} 33444\n"
          "http_request_duration_seconds_bucket{le=\"0.5\",code=\"200\"} 129389\n"
          "http_request_duration_seconds_bucket{code=\"200\",le=\"+Inf\"} 144320\n"
          "http_request_duration_seconds_sum{code=\"200\"} 53423\n"
          "http_request_duration_seconds_count{code=\"200\"} 144320\n"
          "http_request_duration_seconds_bucket{code=\"500\",le=\"1\"} 1\n"
          "http_request_duration_seconds_bucket{code=\"500\",le=\"+Inf\"} 2\n"
          "http_request_duration_seconds_sum{code=\"500\"} 3.5\n"
          "http_request_duration_seconds_count{code=\"500\"} 2\n"
          "next 1\n",
          "http_request_duration_seconds histogram sum=53423 count=144320 "
          "[0.05:24054 0.1:33444 0.5:129389 inf:144320] {code=200}\n"
          "http_request_duration_seconds histogram sum=3.5 count=2 [1:1 inf:2] {code=500}\n"
          "next gauge 1 {}\n", "");
    check("buckets out of order are sorted; +Inf from _count; end of input flushes",
          "# TYPE h histogram\n"
          "h_bucket{le=\"10\"} 5\n"
          "h_bucket{le=\"1e-1\"} 1\n"
          "h_sum 7.25\n"
          "h_count 6\n",
          "h histogram sum=7.25 count=6 [0.1:1 10:5 inf:6] {}\n", "");
    check("bad histograms refused at their first line",
          "# TYPE h histogram\n"
          "h_bucket{le=\"1\"} 5\n"
          "h_bucket{le=\"2\"} 4\n"
          "h_bucket{le=\"+Inf\"} 5\n"
          "h_bucket{x=\"y\",le=\"1\"} 1\n"
          "h_bucket{z=\"1\"} 1\n"
          "h_bucket{z=\"1\",le=\"abc\"} 1\n"
          "h_bucket{z=\"1\",le=\"1\"} 1.5\n"
          "h 3\n"
          "# TYPE g histogram\n"
          "g_bucket{le=\"1\"} 1\n"
          "g_bucket{le=\"+Inf\"} 2\n"
          "g_count 3\n",
          "",
          "6: histogram bucket without le\n"
          "7: histogram bucket with a bad le\n"
          "8: histogram bucket count is not a whole number >= 0\n"
          "9: histogram sample without _bucket, _sum or _count\n"
          "2: histogram bucket counts are not cumulative\n"
          "5: histogram without a +Inf bucket or _count\n"
          "11: histogram _count differs from its +Inf bucket\n");
    {
        char *text = NULL;
        size_t tl = 0;
        FILE *f = open_memstream(&text, &tl);
        struct got g;

        fputs("# TYPE big histogram\n", f);
        for (int i = 0; i < PROMTEXT_MAX_BUCKETS + 1; i++)
            fprintf(f, "big_bucket{le=\"%d\"} %d\n", i, i);
        fputs("# TYPE ok histogram\nok_bucket{le=\"+Inf\"} 1\n", f);
        fclose(f);
        parse(&g, text);
        is_str(g.errs, "258: histogram has too many buckets\n",
               "257 buckets: refused once, at the bucket over the limit");
        is_str(g.recs, "ok histogram sum=nan count=1 [inf:1] {}\n",
               "the next histogram kept (no _sum: NaN)");
        got_free(&g);
        free(text);
    }
}

static void test_summary(void)
{
    check("a summary: quantiles as gauges, _sum and _count as counters",
          "# HELP rpc_duration_seconds A summary of the RPC duration in seconds.\n"
          "# TYPE rpc_duration_seconds summary\n"
          "rpc_duration_seconds{quantile=\"0.01\"} 3102\n"
          "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
          "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
          "rpc_duration_seconds_sum 1.7560473e+07\n"
          "rpc_duration_seconds_count 2693\n"
          "rpc_duration_seconds{x=\"1\"} 5\n",
          "rpc_duration_seconds gauge 3102 {quantile=0.01}\n"
          "rpc_duration_seconds gauge 4773 {quantile=0.5}\n"
          "rpc_duration_seconds gauge 76656 {quantile=0.99}\n"
          "rpc_duration_seconds_sum counter 17560473 {}\n"
          "rpc_duration_seconds_count counter 2693 {}\n",
          "8: summary sample without a numeric quantile\n");
}

/* promtext_samples: the sample lines a scraper limits, good or bad. */
static void test_count(void)
{
    static const char text[] =
        "# HELP a An a.\n"
        "# TYPE a gauge\n"
        "a 1\n"
        "\n"
        "  \t\r\n"
        "  # an indented comment\n"
        "bad{ line\r\n"
        "b{x=\"1\"} 2";

    is_int((int)promtext_samples(text, sizeof text - 1), 3,
           "promtext_samples: good and bad sample lines, not comments nor blanks");
    is_int((int)promtext_samples("", 0), 0, "promtext_samples: empty text");
    is_int((int)promtext_samples("x 1\n\n", 5), 1, "promtext_samples: a trailing blank line");
}

/* Fetch node_exporter's /metrics when the package is installed. */
static void test_node_exporter(void)
{
    const char *exe = node_exporter_path();
    char cmd[512], path[] = "/tmp/pipit-promtext.XXXXXX";
    pid_t pid;
    int port, fd, got = 0;
    struct got g;

    if (!exe) {
        skip(4, "prometheus-node-exporter is not installed");
        return;
    }
    port = 20000 + (int)(getpid() % 20000);
    pid = node_exporter_start(exe, (unsigned)port);
    fd = mkstemp(path);
    close(fd);
    snprintf(cmd, sizeof cmd, "curl -sf -o %s http://127.0.0.1:%d/metrics", path, port);
    for (int i = 0; i < 100 && !got; i++) {
        usleep(100000);
        got = system(cmd) == 0;
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (!got) {
        unlink(path);
        skip(4, "node_exporter did not answer on its port");
        return;
    }
    {
        FILE *f = fopen(path, "r");
        char *text = NULL;
        size_t n = 0;
        FILE *m = open_memstream(&text, &n);
        char buf[8192];
        size_t r;

        while ((r = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, r, m);
        fclose(f);
        fclose(m);
        is_int(parse(&g, text), PIPIT_OK, "node_exporter output parsed (%zu bytes)", n);
        free(text);
    }
    unlink(path);
    is_str(g.errs, "", "no malformed line in node_exporter's output");
    ok(strstr(g.recs, "\nnode_load1 gauge ") != NULL, "node_load1 present");
    ok(g.st.records > 100, "%lu records from %lu lines", g.st.records, g.st.lines);
    got_free(&g);
}

int main(void)
{
    test_samples();
    test_malformed();
    test_histogram();
    test_summary();
    test_count();
    test_node_exporter();
    return done_testing();
}
