/* test_statsd.c: the statsd input on real UDP datagrams over loopback, aggregates checked exactly. */
#include "plugtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

static int port;                        /* the instance's UDP port */
static int sender = -1;                 /* the test's own UDP socket */

/* A UDP port free on 127.0.0.1 just now. */
static int free_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM, 0), p;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("free_port");
        exit(1);
    }
    p = ntohs(a.sin_port);
    close(fd);
    return p;
}

/* Open the plugin on a fresh port with flush_interval=200ms plus extra. */
static int open_statsd2(struct tp *t, const char *extra, const char *extra2)
{
    char listen[64];
    const char *kv[] = { listen, "flush_interval=200ms", extra, extra2, NULL };

    port = free_port();
    snprintf(listen, sizeof listen, "listen=127.0.0.1:%d", port);
    return tp_open(t, "statsd", kv);
}

static int open_statsd(struct tp *t, const char *extra)
{
    return open_statsd2(t, extra, NULL);
}

/* Send one datagram to the instance. */
static void send_dgram(const char *s)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sendto(sender, s, strlen(s), 0, (struct sockaddr *)&a, sizeof a) < 0)
        diag("sendto: %s", strerror(errno));
}

/* Run the loop until a flush emits statsd.lines (at most ~5 s); the
 * records of that flush are in t->recs. Returns true when one came. A
 * flush that saw no line at all is skipped unless empty_ok. */
static bool wait_flush(struct tp *t, bool empty_ok)
{
    for (int i = 0; i < 500; i++) {
        json_t *r;

        tp_run(t);
        r = tp_find(t, "statsd.lines", NULL);
        if (r && (empty_ok || tp_val(r) > 0 || tp_val(tp_find(t, "statsd.bad_lines", NULL)) > 0))
            return true;
        usleep(10000);
    }
    return false;
}

static double val(struct tp *t, const char *name)
{
    return tp_val(tp_find(t, name, NULL));
}

static void test_counters_gauges(void)
{
    struct tp t;

    is_int(open_statsd(&t, NULL), PIPIT_OK, "init");
    send_dgram("hits:1|c\nhits:2|c\nhits:1|c|@0.5\n");
    send_dgram("temp:20|g\ntemp:+5|g\ntemp:-3|g\nneg:-4|g");
    send_dgram("users:alice|s\nusers:bob|s\nusers:alice|s\nusers:carol|s|#x:1");
    ok(wait_flush(&t, false), "a flush came");
    is_num(val(&t, "hits"), 1 + 2 + 2, 0, "counter: 1 + 2 + 1/0.5");
    is_str(tp_type(tp_find(&t, "hits", NULL)), "counter", "counter type");
    is_num(val(&t, "temp"), 22, 0, "gauge: 20, +5, -3");
    is_str(tp_type(tp_find(&t, "temp", NULL)), "gauge", "gauge type");
    is_num(val(&t, "neg"), -4, 0, "a first delta starts from 0");
    is_num(tp_val(tp_find(&t, "users", NULL)), 2, 0, "set without tags: alice, bob");
    is_num(tp_val(tp_find(&t, "users", "x", "1", NULL)), 1, 0, "tagged set is its own series");
    is_num(val(&t, "statsd.lines"), 11, 0, "11 good lines");
    is_num(val(&t, "statsd.bad_lines"), 0, 0, "no bad line");

    send_dgram("temp:+1|g");
    ok(wait_flush(&t, false), "second flush");
    is_num(val(&t, "temp"), 23, 0, "gauge delta applies to the kept value");
    is_int(tp_count(&t, "hits", NULL), 0, "counter not seen: not emitted");
    is_num(val(&t, "neg"), -4, 0, "unseen gauge still emitted");
    tp_close(&t);

    is_int(open_statsd(&t, "delete_gauges=true"), PIPIT_OK, "init delete_gauges");
    send_dgram("a:1|g\nb:2|g");
    ok(wait_flush(&t, false), "flush");
    is_num(val(&t, "a"), 1, 0, "a");
    send_dgram("a:+1|g");
    ok(wait_flush(&t, false), "flush");
    is_num(val(&t, "a"), 2, 0, "a updated");
    is_int(tp_count(&t, "b", NULL), 0, "b unseen: deleted");
    tp_close(&t);
}

static void test_timers(void)
{
    struct tp t;
    char buf[16384];
    size_t n = 0;

    is_int(open_statsd(&t, NULL), PIPIT_OK, "init, default percentiles");
    /* 1..100 in a scrambled order, two datagrams */
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "lat:%d|ms\n", (i * 37) % 100 + 1);
        if (i == 49) {
            send_dgram(buf);
            n = 0;
        }
    }
    send_dgram(buf);
    send_dgram("rt:10|ms|@0.25\nrt:30|h|@0.25\nsz:7|d");
    ok(wait_flush(&t, false), "a flush came");
    is_num(val(&t, "lat.count"), 100, 0, "count");
    is_str(tp_type(tp_find(&t, "lat.count", NULL)), "counter", "count is a counter");
    is_num(val(&t, "lat.sum"), 5050, 0, "sum");
    is_num(val(&t, "lat.min"), 1, 0, "min");
    is_num(val(&t, "lat.max"), 100, 0, "max");
    is_num(val(&t, "lat.mean"), 50.5, 0, "mean");
    is_num(val(&t, "lat.p50"), 50, 0, "p50 (nearest rank)");
    is_num(val(&t, "lat.p90"), 90, 0, "p90");
    is_num(val(&t, "lat.p99"), 99, 0, "p99");
    is_num(val(&t, "rt.count"), 8, 0, "sampled timer count: 2 / 0.25");
    is_num(val(&t, "rt.sum"), 40, 0, "sum of received samples");
    is_num(val(&t, "rt.mean"), 20, 0, "mean of received samples");
    is_num(val(&t, "sz.count"), 1, 0, "distribution d is a timer");
    tp_close(&t);

    is_int(open_statsd2(&t, "max_timer_samples=10", "percentiles=99.9"), PIPIT_OK,
           "init, 10 samples kept");
    n = 0;
    for (int i = 1; i <= 1000; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "r:%d|ms\n", i);
    send_dgram(buf);
    ok(wait_flush(&t, false), "flush");
    is_num(val(&t, "r.count"), 1000, 0, "count exact past the reservoir");
    is_num(val(&t, "r.max"), 1000, 0, "max exact");
    is_num(val(&t, "r.mean"), 500.5, 0, "mean exact");
    ok(val(&t, "r.p99_9") >= 1 && val(&t, "r.p99_9") <= 1000,
       "p99.9, named p99_9, from the reservoir");
    is_int(tp_count(&t, "r.p50", NULL), 0, "only the configured percentiles");
    tp_close(&t);
}

static void test_tags_names(void)
{
    struct tp t;
    json_t *r;

    is_int(open_statsd(&t, NULL), PIPIT_OK, "init");
    send_dgram("req:1|c|#env:prod,zone:a\nreq:2|c|#zone:a,env:prod\n"
               "req:4|c|#env:dev,canary\nmy/odd name:1|c|#bad-key:v v,x.y:1\n"
               "dup:1|c|#k:1,k:2\n");
    ok(wait_flush(&t, false), "a flush came");
    r = tp_find(&t, "req", "env", "prod", "zone", "a", NULL);
    is_num(tp_val(r), 3, 0, "tag order does not matter: one series");
    is_int((int)json_object_size(json_object_get(r, "labels")), 2, "two labels");
    is_num(tp_val(tp_find(&t, "req", "env", "dev", "canary", "", NULL)), 4, 0,
           "a tag without ':' has the value \"\"");
    r = tp_find(&t, "my_odd_name", "bad_key", "v v", "x_y", "1", NULL);
    is_num(tp_val(r), 1, 0, "name and label keys sanitized, values kept");
    is_num(tp_val(tp_find(&t, "dup", "k", "1", NULL)), 1, 0, "a repeated tag key keeps its first value");
    tp_close(&t);
}

static void test_bad_lines(void)
{
    struct tp t;
    char big[6000];

    is_int(open_statsd(&t, NULL), PIPIT_OK, "init");
    send_dgram("ok:1|c\n"
               "x:1|q\n"               /* unknown type */
               "x:abc|c\n"             /* bad number */
               ":1|c\n"                /* empty name */
               "x:1|c|@0\n"            /* rate 0 */
               "x:1|c|@1.5\n"          /* rate > 1 */
               "x:1\n"                 /* no type */
               "x|c\n"                 /* no value */
               "x:nan|g\n"             /* not finite */
               "x:0x10|c\n"            /* hex */
               "\n\r\n"                /* empty lines: ignored */
               "ok:2|c\n");
    memset(big, 'a', sizeof big);
    memcpy(big + sizeof big - 6, ":1|c\n", 6);
    send_dgram(big);                    /* oversized line */
    ok(wait_flush(&t, false), "a flush came");
    is_num(val(&t, "ok"), 3, 0, "good lines of the same datagram kept");
    is_num(val(&t, "statsd.bad_lines"), 10, 0, "10 bad lines counted");
    is_num(val(&t, "statsd.lines"), 2, 0, "2 good lines");
    is_int(tp_count(&t, "x", NULL), 0, "nothing of a bad line");
    send_dgram("ok:1|c");
    ok(wait_flush(&t, false), "next flush");
    is_num(val(&t, "statsd.bad_lines"), 0, 0, "bad_lines is per interval");
    tp_close(&t);

    is_int(open_statsd(&t, "max_series=3"), PIPIT_OK, "init max_series=3");
    send_dgram("a:1|c\nb:1|c\nc:1|c\nd:1|c\ne:1|c\na:1|c");
    ok(wait_flush(&t, false), "flush");
    is_num(val(&t, "a"), 2, 0, "existing series still updated");
    is_int(tp_count(&t, "d", NULL), 0, "series past the cap dropped");
    is_num(val(&t, "statsd.dropped_lines"), 2, 0, "dropped lines counted");
    tp_close(&t);
}

/* A TCP connection to the instance's port, or -1. */
static int tcp_connect(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        diag("connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);

        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

static void test_tcp(void)
{
    struct tp t;
    static char big[10000];
    int a, b, c;
    char ch;

    is_int(open_statsd2(&t, "tcp=true", "max_connections=2"), PIPIT_OK, "init tcp=true");
    a = tcp_connect();
    b = tcp_connect();
    ok(a >= 0 && b >= 0, "two connections");
    tp_run(&t);                         /* accept */
    c = tcp_connect();
    send_str(a, "t.hits:1|");        /* a line split across writes */
    tp_run(&t);
    send_str(a, "c\nt.hits:2|c\nt.temp:");
    tp_run(&t);
    send_str(a, "7|g\n");
    memset(big, 'x', sizeof big);
    send_all(b, big, sizeof big);       /* a line far past 4096 bytes */
    send_str(b, ":1|c\nt.hits:4|c\nt.last:1|c");
    close(b);                           /* the unterminated last line counts */
    tp_run(&t);
    {
        struct timeval tv = { .tv_sec = 5 };

        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ok(c >= 0 && read(c, &ch, 1) == 0, "a third connection is closed (max_connections=2)");
    }
    ok(wait_flush(&t, false), "a flush came");
    is_num(val(&t, "t.hits"), 7, 0, "lines from both connections, one split across writes");
    is_num(val(&t, "t.temp"), 7, 0, "a line split inside its value");
    is_num(val(&t, "t.last"), 1, 0, "a last line without newline at end of stream");
    is_num(val(&t, "statsd.bad_lines"), 1, 0, "the long line is one bad line");
    close(a);
    close(c);
    tp_close(&t);
}

static void test_options(void)
{
    struct tp t;

    ok(open_statsd(&t, "percentiles=0") != PIPIT_OK, "percentile 0 refused");
    tp_close(&t);
    ok(open_statsd(&t, "percentiles=101") != PIPIT_OK, "percentile 101 refused");
    tp_close(&t);
    {
        const char *kv[] = { "listen=nonsense", NULL };

        ok(tp_open(&t, "statsd", kv) != PIPIT_OK, "listen without a port refused");
        tp_close(&t);
    }
    {
        const char *kv[] = { "listen=[::1]:0", "flush_interval=50ms", NULL };
        int rc = tp_open(&t, "statsd", kv);

        if (rc != PIPIT_OK)
            skip(1, "no IPv6 loopback");
        else
            ok(wait_flush(&t, true), "IPv6 listen works and flushes");
        tp_close(&t);
    }
}

int main(void)
{
    tp_plugin("statsd");
    sender = socket(AF_INET, SOCK_DGRAM, 0);
    test_counters_gauges();
    test_timers();
    test_tags_names();
    test_bad_lines();
    test_tcp();
    test_options();
    close(sender);
    return done_testing();
}
