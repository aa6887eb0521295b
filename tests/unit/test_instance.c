/* test_instance.c: plugin instances and the host services, driven through the harness with the in_fixture collector. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>

#include "harness.h"
#include "instance.h"
#include "log.h"
#include "in_fixture.h"
#include "../tap.h"

static char fixture_path[4096];         /* $PIPIT_TEST_LIB/in_fixture.so */
static FILE *log_file;

static const char *log_taken(void)
{
    static char text[1 << 18];
    int fd = fileno(log_file);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);

    text[n > 0 ? n : 0] = '\0';
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        diag("cannot empty the log");
    return text;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Open the fixture with "key=value" options (NULL-terminated); bail out if
 * that fails, since nothing else can be checked then. */
static struct fixture_ctx *open_fixture(struct harness *h, const char *what, ...)
{
    char opts[8][256], *kv[8];
    int n = 0;
    va_list ap;

    va_start(ap, what);
    for (const char *o; n < 8 && (o = va_arg(ap, const char *)) != NULL; n++) {
        snprintf(opts[n], sizeof opts[n], "%s", o);
        kv[n] = opts[n];
    }
    va_end(ap);
    if (harness_open(h, fixture_path, kv, n, stderr) != PIPIT_OK) {
        printf("Bail out! %s: cannot open %s\n", what, fixture_path);
        exit(1);
    }
    return h->ins->ctx;
}

/* fini, then check it ran want_fini times; close the host and check that
 * the loop closes with no handle left; then the rest of harness_close. */
static void close_checked(struct harness *h, const char *what, int want_fini)
{
    struct fixture_ctx *c = h->ins->ctx;

    instance_fini(h->ins);
    is_int(c->fini_calls, want_fini, "%s: fini ran %d time(s)", what, want_fini);
    instance_free(h->ins);
    h->ins = NULL;
    instance_host_close(&h->host);
    h->host_open = false;
    for (int i = 0; i < 10; i++)        /* close callbacks; never blocks */
        uv_run(&h->loop, UV_RUN_NOWAIT);
    is_int(uv_loop_close(&h->loop), 0, "%s: the loop closes, no handle left", what);
    h->loop_open = false;
    harness_close(h);
}

/* Line i (from 0) of h->out parsed, or NULL. */
static json_t *line_of(const struct harness *h, int i)
{
    const char *p = h->out.data;
    for (; p && i > 0; i--) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p || !*p)
        return NULL;
    const char *nl = strchr(p, '\n');
    return json_loadb(p, nl ? (size_t)(nl - p) : strlen(p), 0, NULL);
}

static int lines_in(const struct harness *h)
{
    return h->out.data ? count_of(h->out.data, "\n") : 0;
}

static bool jstr(json_t *j, const char *key, const char *want)
{
    json_t *v = json_object_get(j, key);
    return v && json_is_string(v) && strcmp(json_string_value(v), want) == 0;
}

static void test_gauges(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "gauges", "mode=gauges", "count=5", NULL);

    ok(h.ins->state == INS_CONFIGURED && c->init_calls == 0,
       "gauges: created, init not run yet");
    is_int(c->count, 5, "gauges: the count option is stored in ctx");
    is_int(harness_init(&h), PIPIT_OK, "gauges: init succeeds");
    is_int(h.ins->state, INS_RUNNING, "gauges: running");
    ok(h.records == 1 && h.ins->stats.records == 1 && c->emit_ok == 1,
       "gauges: a record emitted from init (loop thread) is delivered at once");
    is_int(harness_run(&h), PIPIT_OK, "gauges: collect succeeds");
    ok(c->collect_calls == 1 && c->emit_ok == 6, "gauges: collect emitted 5 records");
    is_int(h.records, 6, "gauges: 6 records reached the host");
    is_int(h.ins->stats.records, 6, "gauges: stats.records 6");
    ok(h.ins->stats.dropped == 0 && h.ins->stats.invalid == 0, "gauges: none dropped or invalid");
    is_int(lines_in(&h), 6, "gauges: 6 JSON lines");

    json_t *j = line_of(&h, 0);
    ok(j && jstr(j, "name", "fixture.init"), "gauges: the first is the one from init");
    json_decref(j);
    bool all = true;
    for (int i = 0; i < 5; i++) {
        char idx[8];
        snprintf(idx, sizeof idx, "%05d", i);
        j = line_of(&h, i + 1);
        json_t *labels = json_object_get(j, "labels");
        if (!j || !jstr(j, "kind", "metric") || !jstr(j, "type", "gauge") ||
            !jstr(j, "name", "fixture.gauge") || !jstr(j, "instance", "fixture") ||
            !jstr(j, "host", h.host_name) ||
            json_number_value(json_object_get(j, "value")) != i ||
            !jstr(labels, "index", idx) || !jstr(labels, "mode", "gauges") ||
            json_object_size(labels) != 2)
            all = false;
        json_decref(j);
    }
    ok(all, "gauges: each line holds the gauge, value, labels, instance and host");

    harness_run(&h);
    ok(h.records == 11 && h.ins->stats.records == 11, "gauges: a second collect adds 5 more");
    close_checked(&h, "gauges", 1);
}

/* Costs from plugins of ABI 1.0 (no amount_micros) and 1.1 encode to the
 * same exact amount; the host never reads past a record's struct_size. */
static void test_costs(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "costs", "mode=costs", NULL);

    is_int(harness_init(&h), PIPIT_OK, "costs: init succeeds");
    is_int(harness_run(&h), PIPIT_OK, "costs: collect succeeds");
    ok(c->emit_ok == 2 && lines_in(&h) == 2, "costs: both costs accepted");
    for (int i = 0; i < 2; i++) {
        json_t *j = line_of(&h, i);
        ok(j && json_integer_value(json_object_get(j, "amount_micros")) == 41600 &&
           json_real_value(json_object_get(j, "amount")) == 0.0416,
           "costs: the ABI 1.%d record is 41600 micros, amount 0.0416", i);
        json_decref(j);
    }
    close_checked(&h, "costs", 1);
}

static void test_invalid(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "invalid", "mode=invalid", "count=4", NULL);

    harness_init(&h);
    log_taken();
    is_int(harness_run(&h), PIPIT_OK, "invalid: collect succeeds");
    ok(c->emit_einval == 5 && c->emit_ok == 1, "invalid: emit refused 5 records with PIPIT_EINVAL");
    is_int(h.ins->stats.invalid, 5, "invalid: stats.invalid 5");
    is_int(h.ins->stats.records, 1, "invalid: stats.records 1");
    is_int(h.ins->stats.dropped, 0, "invalid: stats.dropped 0");
    ok(h.records == 1 && strstr(h.out.data, "\"message\":\"good line\""),
       "invalid: only the good record reached the host");
    const char *l = log_taken();
    is_int(count_of(l, "invalid record refused: metric without a name"), 4,
           "invalid: each nameless metric logged with its reason");
    is_int(count_of(l, "invalid record refused: log record with unknown level 9"), 1,
           "invalid: the bad level logged with its reason");
    ok(count_of(l, "instance=fixture plugin=fixture") == 5, "invalid: logged under the instance");
    close_checked(&h, "invalid", 1);
}

static bool thread_done(const struct harness *h)
{
    return h->records >= 7;
}

static void test_thread(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "thread", "mode=thread", "count=7", NULL);

    harness_init(&h);
    is_int(instance_run(h.ins), PIPIT_OK, "thread: collect succeeds");
    instance_handoff(h.ins);
    is_int(c->emit_ok, 7, "thread: the plugin's thread emitted 7 records");
    ok(h.records == 0 && h.ins->stats.records == 0,
       "thread: its records wait for the loop (not the collection's buffer)");
    ok(c->thread_timer_rc == PIPIT_EINVAL && c->thread_watch_rc == PIPIT_EINVAL,
       "thread: timer_start and watch_fd are refused off the loop thread");
    is_int(c->thread_caught_up_rc, PIPIT_ESTATE, "thread: caught_up is refused off the loop thread");
    for (int i = 0; i < 1000 && !thread_done(&h); i++)
        uv_run(&h.loop, UV_RUN_NOWAIT);
    is_int(h.records, 7, "thread: the loop delivers all 7");
    is_int(h.ins->stats.records, 7, "thread: stats.records 7");
    ok(h.ins->stats.dropped == 0 && h.ins->stats.invalid == 0, "thread: none dropped");
    json_t *j = line_of(&h, 6);
    ok(j && jstr(json_object_get(j, "labels"), "index", "00006") &&
       jstr(json_object_get(j, "labels"), "mode", "thread"), "thread: in the order emitted");
    json_decref(j);
    close_checked(&h, "thread", 1);
}

static void test_flood(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "flood", "mode=flood", "count=100", NULL);

    harness_init(&h);
    h.host.max_collect_bytes = 1000;
    log_taken();
    is_int(harness_run(&h), PIPIT_OK, "flood: collect succeeds");
    size_t len = h.out.data ? (size_t)(strchr(h.out.data, '\n') - h.out.data) + 1 : 0;
    ok(len > 0 && h.out.len % len == 0, "flood: every line has the same length (%zu)", len);
    int fit = len ? (int)(1000 / len) : -1;
    diag("%d lines of %zu bytes fit in 1000", fit, len);
    is_int(h.ins->stats.records, fit, "flood: the records that fit the cap are kept");
    is_int(h.ins->stats.capped, 100 - fit, "flood: the rest are counted as capped");
    is_int(h.ins->stats.dropped, 0, "flood: not as refused by the pipeline");
    ok(c->emit_ok == fit && c->emit_efull == 100 - fit, "flood: emit returned PIPIT_EFULL for each");
    is_int(count_of(log_taken(), "one collection emitted more than 1000 bytes"), 1,
           "flood: warned once for the collection");
    harness_run(&h);
    ok(h.ins->stats.records == (uint64_t)(2 * fit) && h.ins->stats.capped == (uint64_t)(200 - 2 * fit),
       "flood: the cap is per collection");
    is_int(count_of(log_taken(), "one collection emitted more than 1000 bytes"), 1,
           "flood: warned again for the next collection");

    /* A cap of exactly three lines keeps three: the cap is reached, not passed */
    h.host.max_collect_bytes = 3 * len;
    size_t before = h.out.len;
    harness_run(&h);
    is_int(h.out.len - before, 3 * len, "flood: a cap of exactly 3 lines keeps 3 lines");
    ok(h.ins->stats.records == (uint64_t)(2 * fit + 3) &&
       h.ins->stats.capped == (uint64_t)(200 - 2 * fit + 97), "flood: and drops the other 97");

    /* The instance's own max_emit_bytes wins over the host's bound */
    h.ins->max_emit_bytes = 2 * len;
    before = h.out.len;
    harness_run(&h);
    is_int(h.out.len - before, 2 * len, "flood: an instance's max_emit_bytes of 2 lines keeps 2");
    h.ins->max_emit_bytes = 0;
    close_checked(&h, "flood", 1);
}

static void test_state(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "state", "mode=state", NULL);
    char want[4200], path[4300];
    struct stat st;

    harness_init(&h);
    snprintf(want, sizeof want, "%s/plugins/fixture", h.state_dir);
    is_str(c->state_dir, want, "state: the directory is <state_dir>/plugins/<instance>");
    ok(stat(want, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700,
       "state: it exists with mode 0700");
    snprintf(path, sizeof path, "%s/plugins", h.state_dir);
    ok(stat(path, &st) == 0 && (st.st_mode & 07777) == 0700, "state: plugins/ is 0700 too");
    snprintf(path, sizeof path, "%s/marker", want);
    ok(c->state_file == 0 && access(path, F_OK) == 0, "state: the plugin made a file in it");
    const char *again = instance_api()->state_dir(h.ins);
    ok(again && strcmp(again, want) == 0 && again == instance_api()->state_dir(h.ins),
       "state: later calls return the same string");
    close_checked(&h, "state", 1);
}

static void test_config(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "config", "mode=config", "text=hello world", NULL);

    harness_init(&h);
    is_str(c->text, "hello world", "config: the text option is stored in ctx");
    is_str(c->config_text, "hello world", "config: config_get returns the configured text");
    ok(c->config_count == NULL && c->count == 3,
       "config: config_get of an option left at its default is NULL");
    ok(c->config_unknown == NULL, "config: config_get of an undeclared key is NULL");
    close_checked(&h, "config", 1);

    c = open_fixture(&h, "config", "mode=config", "count=5", NULL);
    harness_init(&h);
    is_str(c->config_count, "5", "config: config_get of a set number is its text");
    is_str(c->config_text, NULL, "config: an unset string option is NULL");
    close_checked(&h, "config", 1);
}

static int caught_up_calls;

static int count_caught_up(struct instance_host *host, struct pipit_instance *ins)
{
    (void)host;
    (void)ins;
    caught_up_calls++;
    return PIPIT_OK;
}

/* api->caught_up(): handed to the host on the loop, refused inside collect()
 * (its records are not handed over yet), ENOTSUP where the host has none. */
static void test_caught_up(void)
{
    struct harness h;
    const struct pipit_api *api = instance_api();
    struct fixture_ctx *c = open_fixture(&h, "caught_up", "mode=gauges", "count=2", NULL);

    harness_init(&h);
    is_int(api->caught_up(h.ins), PIPIT_ENOTSUP, "caught_up: ENOTSUP without a host service");
    h.host.caught_up = count_caught_up;
    is_int(api->caught_up(h.ins), PIPIT_OK, "caught_up: from the loop, outside collect()");
    is_int(caught_up_calls, 1, "caught_up: the host was told once");
    is_int(instance_run(h.ins), PIPIT_OK, "caught_up: collect succeeds");
    instance_handoff(h.ins);
    is_int(c->collect_caught_up_rc, PIPIT_ESTATE, "caught_up: refused inside collect()");
    is_int(caught_up_calls, 1, "caught_up: the host was not told from collect()");
    ok(PIPIT_API_HAS(api, caught_up), "caught_up: PIPIT_API_HAS sees the service");
    close_checked(&h, "caught_up", 1);
}

static void test_loop(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "loop", "mode=loop", "count=3", NULL);
    const struct pipit_api *api = instance_api();

    harness_init(&h);
    ok(c->watch_rc == PIPIT_OK && c->timer_rc == PIPIT_OK,
       "loop: watch_fd and timer_start from init succeed");
    is_int(c->timer_fired, 0, "loop: nothing fires before the loop runs");
    /* Wait on the loop itself: the timer ticks three times, each tick writes
     * a byte, the watch reads it; no clock involved */
    for (int i = 0; i < 100000 && !(c->timer_fired >= 3 && c->fd_bytes >= 3); i++)
        uv_run(&h.loop, UV_RUN_ONCE);
    is_int(c->timer_fired, 3, "loop: the timer fired 3 times and stopped itself");
    is_int(c->timer_stop_rc, PIPIT_OK, "loop: timer_stop succeeded");
    ok(h.ins->timer && !uv_is_active((uv_handle_t *)h.ins->timer), "loop: the timer is stopped");
    ok(c->fd_events >= 1 && c->fd_bytes == 3, "loop: the watch read the 3 bytes the timer wrote");

    int fd = c->pipe_fds[0];
    is_int(api->watch_fd(h.ins, -1, PIPIT_FD_READ, NULL), PIPIT_EINVAL, "loop: watch_fd(-1) refused");
    is_int(api->watch_fd(h.ins, fd, 0, NULL), PIPIT_EINVAL, "loop: watch_fd without events or callback refused");
    is_int(api->timer_start(h.ins, 1, 0, NULL), PIPIT_EINVAL, "loop: timer_start without callback refused");
    is_int(api->unwatch_fd(h.ins, 12345), PIPIT_ENOENT, "loop: unwatch_fd of an unwatched fd");
    is_int(api->unwatch_fd(h.ins, fd), PIPIT_OK, "loop: unwatch_fd of the pipe");
    ok(h.ins->watches == NULL, "loop: no watch left");
    close_checked(&h, "loop", 1);

    /* Left to the host: fini's caller ends the watch and the timer itself */
    c = open_fixture(&h, "loop left open", "mode=loop", "count=2", NULL);
    harness_init(&h);
    for (int i = 0; i < 100000 && !(c->timer_fired >= 2 && c->fd_bytes >= 2); i++)
        uv_run(&h.loop, UV_RUN_ONCE);
    ok(c->timer_fired == 2 && c->fd_bytes == 2 && h.ins->watches != NULL,
       "loop left open: ticked twice, the watch still on");
    close_checked(&h, "loop left open", 1);
}

static void test_logs(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "logs", "mode=logs", "count=200", NULL);

    harness_init(&h);
    log_taken();
    harness_run(&h);
    const char *l = log_taken();
    is_int(count_of(l, "msg=\"fixture line"), 50, "logs: 50 of 200 lines in one window");
    is_int(count_of(l, "fixture debug"), 0, "logs: lines below the level are not written");
    ok(count_of(l, "level=info instance=fixture plugin=fixture msg=\"fixture line 0\"") == 1 &&
       count_of(l, "msg=\"fixture line 49\"") == 1 && count_of(l, "msg=\"fixture line 50\"") == 0,
       "logs: the first 50 are written, under the instance and plugin");
    is_int(h.ins->log_suppressed, 150, "logs: 150 suppressed (debug lines do not count)");
    is_int(count_of(l, "suppressed"), 0, "logs: no report within the window");
    ok(c->collect_calls == 1, "logs: one collection");

    /* The next window: the instance's window started 10 s earlier */
    h.ins->log_window -= 10LL * 1000000000;
    harness_run(&h);
    l = log_taken();
    const char *rep = strstr(l, "level=warn instance=fixture plugin=fixture "
                                "msg=\"150 log lines of this instance suppressed by the rate limit\"");
    ok(rep != NULL, "logs: the next window reports the 150 suppressed lines");
    is_int(count_of(l, "suppressed by the rate limit"), 1, "logs: once");
    const char *first = strstr(l, "fixture line 0\"");
    ok(rep && first && rep < first, "logs: before the new window's lines");
    is_int(count_of(l, "msg=\"fixture line"), 50, "logs: 50 lines again in the new window");
    is_int(h.ins->log_suppressed, 150, "logs: and 150 suppressed again");
    close_checked(&h, "logs", 1);
}

static void test_failures(void)
{
    struct harness h;
    struct fixture_ctx *c = open_fixture(&h, "fail", "mode=fail", NULL);

    harness_init(&h);
    is_int(harness_run(&h), PIPIT_EIO, "fail: collect's status is returned");
    close_checked(&h, "fail", 1);

    c = open_fixture(&h, "initfail", "mode=initfail", NULL);
    log_taken();
    is_int(harness_init(&h), PIPIT_ECONFIG, "initfail: init's status is returned");
    is_int(h.ins->state, INS_DISABLED, "initfail: the instance is disabled");
    ok(strstr(log_taken(), "instance=fixture plugin=fixture msg=\"init failed: invalid "
                           "configuration; instance disabled") != NULL,
       "initfail: logged with the reason");
    is_int(harness_run(&h), PIPIT_ESTATE, "initfail: a disabled instance does not collect");
    is_int(c->collect_calls, 0, "initfail: collect never ran");
    close_checked(&h, "initfail", 0);

    /* An unknown option is refused when the instance is made */
    FILE *err = tmpfile();
    char bogus[] = "bogus=1", *kv[] = { bogus };
    is_int(harness_open(&h, fixture_path, kv, 1, err), PIPIT_EINVAL, "an unknown option is refused");
    char text[1024];
    rewind(err);
    size_t n = fread(text, 1, sizeof text - 1, err);
    text[n] = '\0';
    ok(strstr(text, "bogus") != NULL, "the refusal names the key");
    fclose(err);
}

int main(void)
{
    const char *lib = getenv("PIPIT_TEST_LIB");

    if (!lib || !*lib)
        plan_skip_all("PIPIT_TEST_LIB is not set (run through make check)");
    snprintf(fixture_path, sizeof fixture_path, "%s/in_fixture.so", lib);
    alarm(300);                         /* a hung loop fails instead of blocking */
    log_file = tmpfile();
    if (!log_file)
        plan_skip_all("cannot make a temporary file");
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);

    test_gauges();
    test_costs();
    test_invalid();
    test_thread();
    test_flood();
    test_state();
    test_config();
    test_loop();
    test_caught_up();
    test_logs();
    test_failures();
    fclose(log_file);
    return done_testing();
}
