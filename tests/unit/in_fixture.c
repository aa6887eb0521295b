/* in_fixture: a collector for test_instance whose mode option picks the host service it exercises. */
#include <pipit/plugin.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "in_fixture.h"

static const struct pipit_api *api;     /* borrowed from the host */

static const struct pipit_option fixture_options[] = {
    PIPIT_OPT_STRING("mode", "gauges", struct fixture_ctx, mode,
                     "What to do: gauges, invalid, thread, flood, state, config, loop, logs, fail, initfail"),
    PIPIT_OPT_INT("count", "3", 0, 100000, struct fixture_ctx, count,
                  "How many records, log lines or timer ticks"),
    PIPIT_OPT_STRING("text", NULL, struct fixture_ctx, text,
                     "Any text, read back with config_get"),
    PIPIT_OPT_END
};

static bool mode_is(const struct fixture_ctx *c, const char *m)
{
    return c->mode && strcmp(c->mode, m) == 0;
}

/* Tally the status of one emit. */
static void tally(struct fixture_ctx *c, int r)
{
    if (r == PIPIT_OK)
        c->emit_ok++;
    else if (r == PIPIT_EINVAL)
        c->emit_einval++;
    else if (r == PIPIT_EFULL)
        c->emit_efull++;
    else
        c->emit_other++;
}

/* count gauges "fixture.gauge" valued 0..count-1, labelled with their index
 * (zero-padded to 5 digits) and the mode. */
static void emit_gauges(pipit_instance *ins, struct fixture_ctx *c)
{
    for (int64_t i = 0; i < c->count; i++) {
        char idx[24];
        snprintf(idx, sizeof idx, "%05lld", (long long)i);
        struct pipit_label labels[] = { { "index", idx }, { "mode", c->mode } };
        /* flood: every line the same length, so the cap keeps a known number */
        double v = mode_is(c, "flood") ? 1 : (double)i;
        tally(c, api->emit_metric(ins, PIPIT_GAUGE, "fixture.gauge", v, labels, 2));
    }
}

static int fixture_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

static void fixture_timer(pipit_instance *ins, void *data)
{
    struct fixture_ctx *c = data;
    if (++c->timer_fired >= c->count)
        c->timer_stop_rc = api->timer_stop(ins);
    if (write(c->pipe_fds[1], "x", 1) != 1)
        api->log(ins, PIPIT_LOG_ERROR, "cannot write to the pipe");
}

static void fixture_readable(pipit_instance *ins, void *data, int fd, int events)
{
    struct fixture_ctx *c = data;
    char buf[64];

    c->fd_events++;
    if (events & PIPIT_FD_READ) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0)
            c->fd_bytes += (int)n;
    }
}

static int fixture_init(pipit_instance *ins, void *data)
{
    struct fixture_ctx *c = data;

    c->init_calls++;
    c->pipe_fds[0] = c->pipe_fds[1] = -1;
    if (mode_is(c, "initfail"))
        return PIPIT_ECONFIG;
    if (mode_is(c, "gauges"))           /* from init, on the loop thread */
        tally(c, api->emit_gauge(ins, "fixture.init", 1));
    if (mode_is(c, "config")) {
        c->config_text = api->config_get(ins, "text");
        c->config_count = api->config_get(ins, "count");
        c->config_unknown = api->config_get(ins, "no_such_key");
    }
    if (mode_is(c, "state")) {
        const char *dir = api->state_dir(ins);
        c->state_file = -1;
        if (dir) {
            char path[4200];
            snprintf(c->state_dir, sizeof c->state_dir, "%s", dir);
            snprintf(path, sizeof path, "%s/marker", dir);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd >= 0 && write(fd, "ok\n", 3) == 3)
                c->state_file = 0;
            if (fd >= 0)
                close(fd);
        }
    }
    if (mode_is(c, "loop")) {
        if (pipe2(c->pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
            return PIPIT_EIO;
        c->watch_rc = api->watch_fd(ins, c->pipe_fds[0], PIPIT_FD_READ, fixture_readable);
        c->timer_rc = api->timer_start(ins, 1, 1, fixture_timer);
    }
    return PIPIT_OK;
}

struct thread_arg {
    pipit_instance *ins;
    struct fixture_ctx *c;
};

/* A thread of the plugin's own: its records take the foreign-thread path,
 * and the loop services refuse it. */
static void *fixture_emitter(void *p)
{
    struct thread_arg *t = p;
    emit_gauges(t->ins, t->c);
    t->c->thread_timer_rc = api->timer_start(t->ins, 1, 0, fixture_timer);
    t->c->thread_watch_rc = api->watch_fd(t->ins, 0, PIPIT_FD_READ, fixture_readable);
    t->c->thread_caught_up_rc = api->caught_up(t->ins);
    return NULL;
}

static int fixture_collect(pipit_instance *ins, void *data)
{
    struct fixture_ctx *c = data;

    c->collect_calls++;
    if (mode_is(c, "gauges") || mode_is(c, "flood")) {
        emit_gauges(ins, c);
        c->collect_caught_up_rc = api->caught_up(ins);
    } else if (mode_is(c, "invalid")) {
        struct pipit_record nameless = {
            .struct_size = sizeof nameless, .kind = PIPIT_METRIC,
            .metric_type = PIPIT_GAUGE, .value = 1,
        };
        for (int64_t i = 0; i < c->count; i++)
            tally(c, api->emit(ins, &nameless));
        tally(c, api->emit_log(ins, 9, "bad level", NULL, 0));
        tally(c, api->emit_log(ins, PIPIT_LOG_WARN, "good line", NULL, 0));
    } else if (mode_is(c, "costs")) {
        /* one cost as a plugin built for ABI 1.0 emits it (its struct ends
         * before amount_micros, which holds junk the host must not read),
         * then the same amount, exact, from a plugin of ABI 1.1 */
        struct pipit_record cost = {
            .struct_size = offsetof(struct pipit_record, amount_micros),
            .kind = PIPIT_COST, .amount = 0.0416, .currency = "USD",
            .resource = "instance", .amount_micros = 999,
        };
        tally(c, api->emit(ins, &cost));
        cost.struct_size = sizeof cost;
        cost.amount = 7;                /* ignored: amount_micros wins */
        cost.amount_micros = 41600;
        tally(c, api->emit(ins, &cost));
    } else if (mode_is(c, "thread")) {
        struct thread_arg t = { ins, c };
        pthread_t th;
        if (pthread_create(&th, NULL, fixture_emitter, &t) != 0)
            return PIPIT_EIO;
        pthread_join(th, NULL);
    } else if (mode_is(c, "logs")) {
        for (int64_t i = 0; i < 100; i++)   /* below the level: not counted */
            api->log(ins, PIPIT_LOG_DEBUG, "fixture debug %lld", (long long)i);
        for (int64_t i = 0; i < c->count; i++)
            api->log(ins, PIPIT_LOG_INFO, "fixture line %lld", (long long)i);
    } else if (mode_is(c, "fail")) {
        return PIPIT_EIO;
    }
    return PIPIT_OK;
}

static void fixture_fini(pipit_instance *ins, void *data)
{
    struct fixture_ctx *c = data;

    c->fini_calls++;
    for (int i = 0; i < 2; i++)
        if (c->pipe_fds[i] >= 0)
            close(c->pipe_fds[i]);
}

PIPIT_PLUGIN_DEFINE(
    .name = "fixture", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "Test collector exercising the host services",
    .ctx_size = sizeof(struct fixture_ctx), .options = fixture_options,
    .load = fixture_load, .init = fixture_init, .collect = fixture_collect,
    .fini = fixture_fini);
