/* test_service.c: the service action through the harness with a stub systemctl that records its arguments, and without systemd. */
#include "acttest.h"

static const char *tmp;                 /* scratch directory of the test */
static char stub[4200], args[4200], rundir[4200], state[4200];

static const char *kv(const char *key, const char *value)
{
    static char bufs[8][4400];
    static int n;
    char *b = bufs[n++ % 8];

    snprintf(b, sizeof bufs[0], "%s=%s", key, value);
    return b;
}

/* The stub answers is-active with the text of the file `state` and fails
 * an operation when the file `fail` exists. */
static void write_stub(void)
{
    char text[16000];

    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "echo \"$*\" >> '%s'\n"
             "if [ \"$1\" = is-active ]; then\n"
             "    s=$(cat '%s'); echo \"$s\"; [ \"$s\" = active ]; exit $?\n"
             "fi\n"
             "if [ -e '%s/fail' ]; then echo \"Job for $2 failed.\" >&2; exit 1; fi\n"
             "exit 0\n", args, state, tmp);
    tp_write(tmp, "systemctl", text);
    chmod(stub, 0755);
}

static void set_state(const char *s)
{
    tp_write(tmp, "state", s);
}

static int step(struct tp *t, const char *unit, const char *op)
{
    unlink(args);
    return at_step(t, "service", (const char *[]){ kv("unit", unit), kv("operation", op),
                                                   kv("systemctl", stub),
                                                   kv("systemd_run_dir", rundir), NULL },
                   10000);
}

static void test_operations(void)
{
    struct tp t;
    int rc;

    set_state("active\n");
    rc = step(&t, "web", "restart");
    is_int(rc, PIPIT_OK, "restart of an active unit");
    is_str(tp_slurp(args), "restart web.service\nis-active web.service\n",
           "runs systemctl restart UNIT.service, then is-active");
    is_str(at_res(&t, "active_state"), "active", "active_state active");
    is_str(at_res(&t, "skipped"), "false", "skipped false");
    tp_close(&t);

    rc = step(&t, "app@blue.socket", "start");
    is_int(rc, PIPIT_OK, "start of a socket unit");
    is_str(tp_slurp(args), "start app@blue.socket\nis-active app@blue.socket\n",
           "a known suffix is kept");
    tp_close(&t);

    set_state("inactive\n");
    rc = step(&t, "web.service", "stop");
    is_int(rc, PIPIT_OK, "stop");
    is_str(tp_slurp(args), "stop web.service\nis-active web.service\n", "stop web.service");
    is_str(at_res(&t, "active_state"), "inactive", "active_state inactive");
    tp_close(&t);

    set_state("failed\n");
    at_log_clear();
    rc = step(&t, "web", "start");
    is_int(rc, PIPIT_EIO, "a unit that is not active after start fails the step");
    ok(at_logged("the unit is failed, not active"), "naming its state");
    is_str(at_res(&t, "active_state"), "failed", "active_state failed");
    tp_close(&t);

    set_state("active\n");
    tp_write(tmp, "fail", "");
    at_log_clear();
    rc = step(&t, "web", "reload");
    is_int(rc, PIPIT_EIO, "a failing systemctl reload fails the step");
    ok(at_logged("systemctl reload web.service exited with status 1: Job for "
                 "web.service failed."), "with its exit status and stderr");
    is_str(tp_slurp(args), "reload web.service\n", "is-active is not asked then");
    tp_close(&t);
    char fail[4400];
    snprintf(fail, sizeof fail, "%s/fail", tmp);
    unlink(fail);
}

static void test_no_systemd(void)
{
    char none[4400];
    struct tp t;
    int rc;

    snprintf(none, sizeof none, "%s/no-such-dir", tmp);
    unlink(args);
    at_log_clear();
    rc = at_step(&t, "service", (const char *[]){ "unit=web", "operation=restart",
                                                  kv("systemctl", stub),
                                                  kv("systemd_run_dir", none), NULL }, 10000);
    is_int(rc, PIPIT_ENOTSUP, "without systemd the step fails");
    ok(at_logged("systemd is not running"), "saying systemd is absent");
    ok(!at_exists(args), "systemctl is not run");
    tp_close(&t);

    at_log_clear();
    rc = at_step(&t, "service", (const char *[]){ "unit=web", "operation=restart",
                                                  kv("systemctl", stub),
                                                  kv("systemd_run_dir", none),
                                                  "skip_without_systemd=true", NULL }, 10000);
    is_int(rc, PIPIT_OK, "skip_without_systemd: true succeeds");
    is_str(at_res(&t, "skipped"), "true", "with skipped=true");
    ok(at_logged("level=warn") && at_logged("skipped"), "and a warning");
    ok(!at_exists(args), "systemctl is not run");
    tp_close(&t);

    at_log_clear();
    rc = at_step(&t, "service", (const char *[]){ "unit=web", "operation=start",
                                                  "systemctl=/nonexistent/systemctl",
                                                  kv("systemd_run_dir", rundir), NULL }, 10000);
    is_int(rc, PIPIT_ENOTSUP, "a missing systemctl fails the step");
    ok(at_logged("systemctl is missing (/nonexistent/systemctl not found)"), "saying so");
    tp_close(&t);
}

static void test_config(void)
{
    static const char *const bad_units[] = { "../etc/x", "a/b", "-web", "", "we b" };
    struct tp t;

    for (size_t i = 0; i < sizeof bad_units / sizeof bad_units[0]; i++) {
        is_int(at_step(&t, "service", (const char *[]){ kv("unit", bad_units[i]),
                                                        "operation=start", NULL }, 0),
               PIPIT_ECONFIG, "unit \"%s\" is refused", bad_units[i]);
        tp_close(&t);
    }
    is_int(at_step(&t, "service", (const char *[]){ "unit=web", "operation=enable", NULL }, 0),
           PIPIT_ECONFIG, "operation enable is refused");
    tp_close(&t);
}

int main(void)
{
    tmp = tp_tmpdir();
    snprintf(stub, sizeof stub, "%s/systemctl", tmp);
    snprintf(args, sizeof args, "%s/args", tmp);
    snprintf(state, sizeof state, "%s/state", tmp);
    snprintf(rundir, sizeof rundir, "%s/run-systemd", tmp);
    tp_mkdirs(tmp, "run-systemd");
    at_log_setup(tmp);
    write_stub();
    test_operations();
    test_no_systemd();
    test_config();
    at_log_end();
    tp_rmtree(tmp);
    return done_testing();
}
