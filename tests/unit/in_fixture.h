/* in_fixture.h: the instance state of the in_fixture test collector, shared with test_instance. */
#ifndef PIPIT_TEST_IN_FIXTURE_H
#define PIPIT_TEST_IN_FIXTURE_H

#include <stdint.h>

/*
 * Options select what the fixture does (mode) and how often (count); the
 * rest is what it observed, read back by test_instance through the
 * instance's ctx before the instance is freed.
 */
struct fixture_ctx {
    /* options */
    const char *mode;                   /* gauges, costs, invalid, thread, flood, state,
                                           config, loop, logs, fail, initfail */
    int64_t count;                      /* records, log lines or timer ticks */
    const char *text;                   /* read back through api->config_get */

    /* what happened */
    int init_calls, collect_calls, fini_calls;
    int emit_ok, emit_einval, emit_efull, emit_other;  /* emit() statuses */
    const char *config_text;            /* config_get("text") */
    const char *config_count;           /* config_get("count") */
    const char *config_unknown;         /* config_get("no_such_key") */
    char state_dir[4096];               /* api->state_dir(), copied */
    int state_file;                     /* 0 when a file was made in it */
    int thread_timer_rc, thread_watch_rc;  /* loop services off the loop */
    int thread_caught_up_rc;            /* api->caught_up() off the loop */
    int collect_caught_up_rc;           /* api->caught_up() inside collect() */
    int watch_rc, timer_rc;             /* loop services from init */
    int timer_fired, fd_events, fd_bytes;
    int timer_stop_rc;
    int pipe_fds[2];
};

#endif
