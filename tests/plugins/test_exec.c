/* test_exec.c: the exec collector through the harness: three formats, timeout, exit status, output cap, argv without a shell. */
#include "plugtest.h"
#include <signal.h>

static const char *dir;                 /* scratch directory of the scripts */

/*
 * The records here keep the names the command printed, which have no dots:
 * plugtest's naming check reports them as malformed, and these tests do not
 * look at t.bad.
 *
 * Open the exec plugin with options given as YAML (lists and maps need it):
 * the harness is opened with a placeholder command, then its instance is
 * made again from the YAML map. Returns init's status, or PIPIT_EINVAL.
 */
static int exec_open(struct tp *t, const char *yaml)
{
    static const char *const kv[] = { "command=true", NULL };

    return tp_open_yaml(t, "exec", kv, yaml);
}

/* Write an executable script dir/name; returns its path (static buffer). */
static const char *script(const char *name, const char *body)
{
    static char path[4200];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    tp_write(dir, name, body);
    chmod(path, 0755);
    return path;
}

/* tp_run, or PIPIT_ESTATE when the instance could not be made. */
static int run(struct tp *t)
{
    return t->h.ins ? tp_run(t) : PIPIT_ESTATE;
}

static void test_prometheus(void)
{
    char yaml[8192];
    struct tp t;
    json_t *r;

    snprintf(yaml, sizeof yaml, "command: [%s]\n",
             script("prom.sh", "#!/bin/sh\n"
                    "echo '# TYPE app_requests_total counter'\n"
                    "echo 'app_requests_total{code=\"200\"} 1027'\n"
                    "echo '# TYPE app_latency histogram'\n"
                    "echo 'app_latency_bucket{le=\"0.1\"} 3'\n"
                    "echo 'app_latency_bucket{le=\"+Inf\"} 4'\n"
                    "echo 'app_latency_sum 0.9'\n"
                    "echo 'app_latency_count 4'\n"
                    "echo 'temp_celsius 21.5'\n"));
    is_int(exec_open(&t, yaml), PIPIT_OK, "init with a script");
    is_int(run(&t), PIPIT_OK, "collect");
    is_int(json_array_size(t.recs), 3 + 4, "three records from the output, four of its own");
    r = tp_find(&t, "app_requests_total", "code", "200", NULL);
    is_num(tp_val(r), 1027, 0, "counter value");
    is_str(tp_type(r), "counter", "counter type");
    is_int(json_object_size(json_object_get(r, "labels")), 1, "no label added");
    r = tp_find(&t, "temp_celsius", NULL);
    is_num(tp_val(r), 21.5, 0, "untyped value");
    is_str(tp_type(r), "gauge", "untyped is a gauge");
    r = tp_find(&t, "app_latency", NULL);
    is_str(tp_type(r), "histogram", "histogram assembled");
    is_num(json_number_value(json_object_get(r, "count")), 4, 0, "histogram count");
    is_num(tp_val(tp_find(&t, "exec.failures", NULL)), 0, 0, "exec.failures 0");
    ok(tp_val(tp_find(&t, "exec.duration_seconds", NULL)) < 5, "exec.duration_seconds");
    is_num(tp_val(tp_find(&t, "exec.malformed_lines", NULL)), 0, 0, "no malformed line");
    tp_close(&t);

    snprintf(yaml, sizeof yaml, "command: [%s]\n",
             script("bad.sh", "#!/bin/sh\necho 'good 1'\necho 'bad{'\necho 'good2 2'\n"));
    is_int(exec_open(&t, yaml), PIPIT_OK, "init with a script printing a bad line");
    is_int(run(&t), PIPIT_OK, "a bad line does not fail the run");
    is_int(tp_count(&t, "good", NULL) + tp_count(&t, "good2", NULL), 2, "good lines kept");
    is_num(tp_val(tp_find(&t, "exec.malformed_lines", NULL)), 1, 0, "malformed line counted");
    tp_close(&t);
}

static void test_json(void)
{
    char yaml[8192];
    struct tp t;
    json_t *r;

    snprintf(yaml, sizeof yaml, "command: [%s]\nformat: json\n",
             script("json.sh", "#!/bin/sh\n"
                    "echo '{\"name\":\"queue.depth\",\"value\":42,\"labels\":{\"q\":\"a\"}}'\n"
                    "echo ''\n"
                    "echo '{\"name\":\"jobs.done\",\"value\":7.5,\"type\":\"counter\"}'\n"
                    "echo '{\"name\":\"x\",\"value\":\"1\"}'\n"
                    "echo 'not json'\n"
                    "echo '{\"name\":\"y\",\"value\":1,\"type\":\"histogram\"}'\n"));
    is_int(exec_open(&t, yaml), PIPIT_OK, "init format=json");
    is_int(run(&t), PIPIT_OK, "collect");
    is_int(json_array_size(t.recs), 2 + 4, "two records and four of its own");
    r = tp_find(&t, "queue.depth", "q", "a", NULL);
    is_num(tp_val(r), 42, 0, "gauge with its label");
    is_str(tp_type(r), "gauge", "gauge by default");
    r = tp_find(&t, "jobs.done", NULL);
    is_num(tp_val(r), 7.5, 0, "counter value");
    is_str(tp_type(r), "counter", "counter type");
    is_num(tp_val(tp_find(&t, "exec.malformed_lines", NULL)), 3, 0,
           "a string value, not JSON and a histogram refused");
    tp_close(&t);
}

static void test_influx(void)
{
    char yaml[8192];
    struct tp t;
    json_t *r;

    snprintf(yaml, sizeof yaml, "command: [%s]\nformat: influx\n",
             script("influx.sh", "#!/bin/sh\n"
                    "echo '# a comment'\n"
                    "echo 'cpu,host=a,region=eu\\ west usage=0.5,busy=t,n=12i,msg=\"x y\" 1465839830100400200'\n"
                    "echo 'disk\\,x free=1e3'\n"
                    "echo ''\n"
                    "echo 'bad,tag value=1'\n"
                    "echo 'nofields'\n"
                    "echo 'num v=12abc'\n"
                    "echo 'mem used=7u'\n"));
    is_int(exec_open(&t, yaml), PIPIT_OK, "init format=influx");
    is_int(run(&t), PIPIT_OK, "collect");
    is_int(json_array_size(t.recs), 5 + 4, "five numeric fields and four of its own");
    r = tp_find(&t, "cpu.usage", "host", "a", "region", "eu west", NULL);
    is_num(tp_val(r), 0.5, 0, "float field with escaped space in a tag");
    is_num(json_number_value(json_object_get(r, "time")), 1465839830100400200.0, 0,
           "timestamp in nanoseconds");
    is_num(tp_val(tp_find(&t, "cpu.busy", NULL)), 1, 0, "boolean field as 1");
    is_num(tp_val(tp_find(&t, "cpu.n", NULL)), 12, 0, "integer field");
    is_int(tp_count(&t, "cpu.msg", NULL), 0, "string field skipped");
    is_num(tp_val(tp_find(&t, "disk,x.free", NULL)), 1000, 0, "escaped comma in a measurement");
    is_num(tp_val(tp_find(&t, "mem.used", NULL)), 7, 0, "unsigned field");
    is_num(tp_val(tp_find(&t, "exec.malformed_lines", NULL)), 3, 0,
           "tag without a value, no fields, bad number refused");
    tp_close(&t);
}

/* True when pid is gone or a zombie waiting for its reaper. */
static bool gone(pid_t pid)
{
    char path[64];
    const char *s, *p;

    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    s = tp_slurp(path);
    p = s ? strrchr(s, ')') : NULL;
    return !s || (p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

static void test_timeout(void)
{
    char yaml[8192], pidf[4200], kidf[4200];
    struct timespec a, b;
    struct tp t;
    pid_t pid = 0, kid = 0;
    const char *s;

    snprintf(pidf, sizeof pidf, "%s/pid", dir);
    snprintf(kidf, sizeof kidf, "%s/kid", dir);
    snprintf(yaml, sizeof yaml, "command: [%s]\ntimeout: 300ms\n",
             script("sleep.sh", "#!/bin/sh\n"
                    "echo 'early 1'\n"
                    "sleep 30 &\n"
                    "echo $! > \"$(dirname \"$0\")/kid\"\n"
                    "echo $$ > \"$(dirname \"$0\")/pid\"\n"
                    "wait\n"));
    is_int(exec_open(&t, yaml), PIPIT_OK, "init timeout=300ms");
    clock_gettime(CLOCK_MONOTONIC, &a);
    is_int(run(&t), PIPIT_ETIMEDOUT, "a run past the timeout fails with ETIMEDOUT");
    clock_gettime(CLOCK_MONOTONIC, &b);
    {
        double secs = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
        ok(secs >= 0.29 && secs < 2.5, "the run ended after %.3f s", secs);
    }
    if ((s = tp_slurp(pidf)))
        pid = atoi(s);
    if ((s = tp_slurp(kidf)))
        kid = atoi(s);
    ok(pid > 0 && gone(pid), "the command (pid %d) is gone", (int)pid);
    for (int i = 0; i < 100 && kid > 0 && !gone(kid); i++)
        usleep(20000);
    ok(kid > 0 && gone(kid), "its child in the same group (pid %d) is gone", (int)kid);
    is_int(tp_count(&t, "early", NULL), 0, "output of a killed run is not used");
    is_num(tp_val(tp_find(&t, "exec.failures", NULL)), 1, 0, "exec.failures 1");
    tp_close(&t);
}

static void test_exit_status(void)
{
    struct tp t;

    is_int(exec_open(&t, "command: [sh, -c, 'echo \"out 1\"; echo oops >&2; exit 3']\n"),
           PIPIT_OK, "init");
    is_int(run(&t), PIPIT_EIO, "exit status 3: EIO");
    is_int(tp_count(&t, "out", NULL), 0, "output of a failed run is not used");
    is_num(tp_val(tp_find(&t, "exec.failures", NULL)), 1, 0, "exec.failures 1");
    is_int(run(&t), PIPIT_EIO, "again");
    is_num(tp_val(tp_find(&t, "exec.failures", NULL)), 2, 0, "exec.failures counts on: 2");
    tp_close(&t);

    is_int(exec_open(&t, "command: [/nonexistent/pipit-command]\n"), PIPIT_OK, "init");
    is_int(run(&t), PIPIT_EIO, "a command that does not exist: EIO");
    is_num(tp_val(tp_find(&t, "exec.failures", NULL)), 1, 0, "counted");
    tp_close(&t);
}

static void test_max_output(void)
{
    struct tp t;

    is_int(exec_open(&t, "command: [sh, -c, 'for i in $(seq 10 99); do echo \"m$i 1\"; done']\n"
                         "max_output: 64\n"), PIPIT_OK, "init max_output=64");
    is_int(run(&t), PIPIT_OK, "collect");
    is_int(tp_count(&t, "m10", NULL) + tp_count(&t, "m19", NULL), 2, "m10 .. m19 kept");
    is_int(tp_count(&t, "m20", NULL), 0, "the line cut at 64 bytes is dropped");
    is_int(json_array_size(t.recs), 10 + 4, "ten whole lines in 64 bytes");
    is_num(tp_val(tp_find(&t, "exec.truncations", NULL)), 1, 0, "exec.truncations 1");
    tp_close(&t);
}

static void test_argv(void)
{
    struct tp t;
    json_t *r;

    is_int(exec_open(&t, "command: [printf, '%s\\n', "
                         "'literal{arg=\"$(id); rm -rf /nonexistent-pipit `id`\"} 1']\n"),
           PIPIT_OK, "init printf with shell syntax in an argument");
    is_int(run(&t), PIPIT_OK, "collect");
    r = tp_find(&t, "literal", NULL);
    is_str(json_string_value(json_object_get(json_object_get(r, "labels"), "arg")),
           "$(id); rm -rf /nonexistent-pipit `id`", "the argument arrived as written");
    tp_close(&t);

    is_int(exec_open(&t, "command: 'echo \"sh_one $((1 + 2))\"; echo sh_two 2'\nshell: true\n"),
           PIPIT_OK, "init shell: true");
    is_int(run(&t), PIPIT_OK, "collect");
    is_num(tp_val(tp_find(&t, "sh_one", NULL)), 3, 0, "the shell expanded");
    is_num(tp_val(tp_find(&t, "sh_two", NULL)), 2, 0, "and ran the second command");
    tp_close(&t);

    is_int(exec_open(&t, "command: [sh, -c, 'echo \"envv $PIPIT_T_X\"; [ -n \"$PATH\" ] && echo \"path_kept 1\"']\n"
                         "env: {PIPIT_T_X: '42'}\n"), PIPIT_OK, "init with env");
    is_int(run(&t), PIPIT_OK, "collect");
    is_num(tp_val(tp_find(&t, "envv", NULL)), 42, 0, "env reaches the command");
    is_num(tp_val(tp_find(&t, "path_kept", NULL)), 1, 0, "the agent's environment too");
    tp_close(&t);

    is_int(exec_open(&t, "command: [a, b]\nshell: true\n"), PIPIT_ECONFIG,
           "shell: true with two items: ECONFIG");
    tp_close(&t);
    is_int(exec_open(&t, "command: [true]\nformat: xml\n"), PIPIT_ECONFIG,
           "unknown format: ECONFIG");
    tp_close(&t);
}

int main(void)
{
    dir = strdup(tp_tmpdir());
    test_prometheus();
    test_json();
    test_influx();
    test_timeout();
    test_exit_status();
    test_max_output();
    test_argv();
    tp_rmtree(dir);
    free((char *)dir);
    return done_testing();
}
