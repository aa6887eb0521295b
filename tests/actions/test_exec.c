/* test_exec.c: the exec action through the harness: argv without a shell (metacharacters stay text), results, exit statuses, timeout, cancel, env, cwd, user, bounds. */
#include <pwd.h>
#include "acttest.h"

static const char *tmp;                 /* scratch directory of the test */

static const char *kv(const char *key, const char *value)
{
    static char bufs[6][4400];
    static int n;
    char *b = bufs[n++ % 6];

    snprintf(b, sizeof bufs[0], "%s=%s", key, value);
    return b;
}

static void test_results(void)
{
    struct tp t;
    int rc = at_step(&t, "exec", (const char *[]){
        "command=[sh, -c, 'echo out; echo err >&2; exit 0']", NULL }, 5000);
    is_int(rc, PIPIT_OK, "a command that exits 0 succeeds");
    is_str(at_res(&t, "stdout"), "out\n", "stdout is a result");
    is_str(at_res(&t, "stderr"), "err\n", "stderr is a result");
    is_str(at_res(&t, "exit_code"), "0", "exit_code is a result");
    ok(at_result(&t, "duration_ms") != NULL, "duration_ms is a result");
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){ "command=[sh, -c, 'exit 3']", NULL }, 5000);
    ok(rc != PIPIT_OK, "exit 3 fails the step");
    is_str(at_res(&t, "exit_code"), "3", "with exit_code 3");
    is_str(at_res(&t, "error"), "exited with status 3", "and the error says so");
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){ "command=[sh, -c, 'exit 3']", "ok_exit=[0, 3]",
                                               NULL }, 5000);
    is_int(rc, PIPIT_OK, "ok_exit: 3 counts as success when listed");
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){ "command=[/nonexistent/prog]", NULL }, 5000);
    ok(rc != PIPIT_OK && strstr(at_res(&t, "error"), "/nonexistent/prog"),
       "a program that does not exist fails, naming it");
    tp_close(&t);
}

/* Arguments are passed as they are: no shell ever sees them. */
static void test_no_shell(void)
{
    char canary[512], arg[4400];
    struct tp t;

    snprintf(canary, sizeof canary, "%.400s/pwned", tmp);
    snprintf(arg, sizeof arg, "command=[printf, '%%s|', '; touch %s', '$(touch %s)', "
             "'`touch %s`', '| touch %s', '../../etc/passwd', '\"quoted\" *']",
             canary, canary, canary, canary);
    int rc = at_step(&t, "exec", (const char *[]){ arg, NULL }, 5000);
    is_int(rc, PIPIT_OK, "metacharacters in arguments");
    ok(!at_exists(canary), "never reach a shell: nothing was run from them");
    char want[4400];
    snprintf(want, sizeof want, "; touch %s|$(touch %s)|`touch %s`|| touch %s|"
             "../../etc/passwd|\"quoted\" *|", canary, canary, canary, canary);
    is_str(at_res(&t, "stdout"), want, "each reaches the program as one argument, unchanged");
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){ "command=[echo, a, b]", "shell=true", NULL },
                 5000);
    ok(rc != PIPIT_OK, "shell: true with more than one item is refused");
    tp_close(&t);

    snprintf(arg, sizeof arg, "command=['echo $((6*7)) > %s/shell']", tmp);
    rc = at_step(&t, "exec", (const char *[]){ arg, "shell=true", NULL }, 5000);
    snprintf(canary, sizeof canary, "%.400s/shell", tmp);
    ok(rc == PIPIT_OK && strcmp(tp_slurp(canary), "42\n") == 0,
       "shell: true runs the one item with /bin/sh -c");
    tp_close(&t);
}

static void test_bounds(void)
{
    struct tp t;
    int64_t t0 = (int64_t)(uv_hrtime() / 1000000);
    int rc = at_step(&t, "exec", (const char *[]){ "command=[sleep, '30']", NULL }, 300);
    int64_t ms = (int64_t)(uv_hrtime() / 1000000) - t0;
    is_int(rc, PIPIT_ETIMEDOUT, "past the step's time left the command is killed");
    ok(ms < 3000, "soon after the deadline (%lld ms)", (long long)ms);
    ok(strstr(at_res(&t, "error"), "killed after the timeout") != NULL, "the error says so");
    tp_close(&t);

    at_cancel = true;
    t0 = (int64_t)(uv_hrtime() / 1000000);
    rc = at_step(&t, "exec", (const char *[]){ "command=[sleep, '30']", NULL }, 0);
    ms = (int64_t)(uv_hrtime() / 1000000) - t0;
    at_cancel = false;
    is_int(rc, PIPIT_ECANCELED, "a cancelled run stops the command");
    ok(ms < 3000, "at once (%lld ms)", (long long)ms);
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){
        "command=[sh, -c, 'head -c 200000 /dev/zero | tr \"\\\\0\" x']", "max_output=1KiB",
        NULL }, 5000);
    is_int(rc, PIPIT_OK, "a command printing 200 kB");
    is_int((long long)strlen(at_res(&t, "stdout")), 1024, "keeps max_output bytes of stdout");
    ok(at_logged("output longer than max_output"), "and logs the cut");
    tp_close(&t);
}

static void test_env_cwd_user(void)
{
    struct tp t;
    char cwd[4400];

    int rc = at_step(&t, "exec", (const char *[]){ "command=[sh, -c, 'echo $GREETING']",
                                                   "env={GREETING: hello}", NULL }, 5000);
    ok(rc == PIPIT_OK && strcmp(at_res(&t, "stdout"), "hello\n") == 0, "env adds variables");
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){ "command=[pwd]", kv("cwd", tmp), NULL }, 5000);
    snprintf(cwd, sizeof cwd, "%s\n", tmp);
    ok(rc == PIPIT_OK && strcmp(at_res(&t, "stdout"), cwd) == 0, "cwd sets the directory");
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){ "command=[pwd]", "cwd=/nonexistent/dir", NULL },
                 5000);
    ok(rc != PIPIT_OK && strstr(at_res(&t, "error"), "/nonexistent/dir"),
       "a missing cwd fails, naming it");
    tp_close(&t);

    rc = at_step(&t, "exec", (const char *[]){ "command=[id, -u]", "user=no-such-user-x", NULL },
                 5000);
    ok(rc != PIPIT_OK && at_logged("no-such-user-x"), "an unknown user is refused at init");
    tp_close(&t);

    if (geteuid() != 0 || !getpwnam("nobody")) {
        skip(2, "user: needs root and the user nobody");
        return;
    }
    rc = at_step(&t, "exec", (const char *[]){ "command=[id, -u]", "user=nobody", NULL }, 5000);
    char want[32];
    snprintf(want, sizeof want, "%u\n", (unsigned)getpwnam("nobody")->pw_uid);
    is_int(rc, PIPIT_OK, "user: runs as another user");
    is_str(at_res(&t, "stdout"), want, "with its uid");
    tp_close(&t);
}

int main(void)
{
    tmp = tp_tmpdir();
    at_log_setup(tmp);
    test_results();
    test_no_shell();
    test_bounds();
    test_env_cwd_user();
    at_log_end();
    tp_rmtree(tmp);
    return done_testing();
}
