/* test_wait_healthy.c: the wait_healthy action through the harness: a URL that turns healthy, a command that succeeds on its third run, the deadline. */
#include "acttest.h"
#include "../http/httpd.h"

static const char *tmp;                 /* scratch directory of the test */
static struct httpd srv;

static const char *url(const char *path)
{
    static char bufs[4][512];
    static int n;
    char *b = bufs[n++ % 4];

    snprintf(b, sizeof bufs[0], "url=http://127.0.0.1:%u/%s", srv.port, path);
    return b;
}

static void test_url(void)
{
    struct tp t;
    int rc;

    rc = at_step(&t, "wait_healthy", (const char *[]){ url("a?fail_first=3"),
                                                       "interval=50ms", NULL }, 10000);
    is_int(rc, PIPIT_OK, "a URL that answers 503 three times, then 200");
    is_str(at_res(&t, "attempts"), "6", "takes 3 failures and 3 successes");
    is_str(at_res(&t, "successes"), "3", "successes 3");
    is_str(at_res(&t, "last_error"), "HTTP status 503, expected 2xx",
           "last_error names the last unhealthy answer");
    tp_close(&t);

    rc = at_step(&t, "wait_healthy", (const char *[]){ url("b?fail_first=1"), "successes=1",
                                                       "interval=50ms", NULL }, 10000);
    is_int(rc, PIPIT_OK, "successes=1");
    is_str(at_res(&t, "attempts"), "2", "stops at the first success");
    tp_close(&t);

    rc = at_step(&t, "wait_healthy", (const char *[]){ url("c?status=404"),
                                                       "expect_status=[404]", "interval=10ms",
                                                       NULL }, 10000);
    is_int(rc, PIPIT_OK, "expect_status decides what is healthy");
    tp_close(&t);

    at_log_clear();
    int64_t t0 = tp__ms();
    rc = at_step(&t, "wait_healthy", (const char *[]){ url("d?status=500"), "interval=100ms",
                                                       NULL }, 800);
    int64_t took = tp__ms() - t0;
    is_int(rc, PIPIT_ETIMEDOUT, "a URL that stays unhealthy fails at the deadline");
    ok(took >= 700 && took < 2500, "at the deadline (%lld ms)", (long long)took);
    ok(at_logged("0 of 3 consecutive successes"), "the log names the successes reached");
    ok(at_logged("last error: HTTP status 500, expected 2xx"), "and the last error");
    ok(atoi(at_res(&t, "attempts")) >= 3, "attempts %s", at_res(&t, "attempts"));
    is_str(at_res(&t, "successes"), "0", "successes 0");
    tp_close(&t);

    t0 = tp__ms();
    rc = at_step(&t, "wait_healthy", (const char *[]){ url("e?delay_ms=4000"),
                                                       "timeout=600ms", NULL }, 0);
    took = tp__ms() - t0;
    is_int(rc, PIPIT_ETIMEDOUT, "the timeout option ends a hung probe");
    ok(took < 2500, "in time (%lld ms)", (long long)took);
    ok(strstr(at_res(&t, "last_error"), "no complete response") != NULL,
       "last_error: %s", at_res(&t, "last_error"));
    tp_close(&t);
}

static void test_command(void)
{
    char counter[4400], script[9400], opt[4500];
    struct tp t;
    int rc;

    snprintf(counter, sizeof counter, "%s/count", tmp);
    snprintf(script, sizeof script,
             "n=$(cat '%s' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '%s'\n"
             "[ $n -ge 3 ] || { echo \"try $n: not yet\" >&2; exit 1; }\n", counter, counter);
    tp_write(tmp, "probe.sh", script);
    snprintf(opt, sizeof opt, "command=[sh, %s/probe.sh]", tmp);
    rc = at_step(&t, "wait_healthy", (const char *[]){ opt, "successes=1", "interval=20ms",
                                                       NULL }, 10000);
    is_int(rc, PIPIT_OK, "a command that succeeds on its third run");
    is_str(at_res(&t, "attempts"), "3", "3 attempts");
    is_str(at_res(&t, "successes"), "1", "successes 1");
    is_str(at_res(&t, "last_error"), "sh exited with status 1: try 2: not yet",
           "last_error has the exit status and stderr");
    tp_close(&t);

    unlink(counter);
    rc = at_step(&t, "wait_healthy", (const char *[]){ opt, "interval=20ms", NULL }, 10000);
    is_int(rc, PIPIT_OK, "and three in a row after that");
    is_str(at_res(&t, "attempts"), "5", "5 attempts");
    tp_close(&t);

    at_log_clear();
    rc = at_step(&t, "wait_healthy", (const char *[]){ "command=[false]", "interval=50ms",
                                                       NULL }, 500);
    is_int(rc, PIPIT_ETIMEDOUT, "a command that keeps failing fails at the deadline");
    ok(at_logged("last error: false exited with status 1"), "naming the last error");
    tp_close(&t);

    int64_t t0 = tp__ms();
    rc = at_step(&t, "wait_healthy", (const char *[]){ "command=[sleep, 30]", NULL }, 500);
    is_int(rc, PIPIT_ETIMEDOUT, "a hung command is killed at the deadline");
    ok(tp__ms() - t0 < 3000, "in time");
    tp_close(&t);

    at_cancel = true;
    t0 = tp__ms();
    rc = at_step(&t, "wait_healthy", (const char *[]){ "command=[false]", NULL }, 0);
    at_cancel = false;
    is_int(rc, PIPIT_ECANCELED, "a cancelled run stops waiting");
    ok(tp__ms() - t0 < 2000, "soon");
    tp_close(&t);
}

static void test_config(void)
{
    struct tp t;

    is_int(at_step(&t, "wait_healthy", (const char *[]){ "interval=1s", NULL }, 0),
           PIPIT_ECONFIG, "neither url nor command is refused");
    tp_close(&t);
    is_int(at_step(&t, "wait_healthy", (const char *[]){ url("x"), "command=[true]", NULL }, 0),
           PIPIT_ECONFIG, "both url and command are refused");
    tp_close(&t);
    is_int(at_step(&t, "wait_healthy", (const char *[]){ url("x"), "expect_status=[2x]", NULL },
                   0), PIPIT_ECONFIG, "a malformed expect_status is refused");
    tp_close(&t);
}

int main(void)
{
    char www[4200];

    tmp = tp_tmpdir();
    snprintf(www, sizeof www, "%s/www", tmp);
    tp_mkdirs(tmp, "www");
    tp_write(tmp, "www/a", "ok\n");
    tp_write(tmp, "www/b", "ok\n");
    tp_write(tmp, "www/c", "ok\n");
    tp_write(tmp, "www/d", "ok\n");
    tp_write(tmp, "www/e", "ok\n");
    at_log_setup(tmp);
    if (httpd_start(&srv, www, tmp, NULL) != 0) {
        printf("Bail out! httpd_fixture did not start\n");
        return 1;
    }
    test_url();
    test_command();
    test_config();
    httpd_stop(&srv);
    at_log_end();
    tp_rmtree(tmp);
    return done_testing();
}
