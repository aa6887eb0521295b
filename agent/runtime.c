/* runtime.c: the daemon's loop: start a generation of instances, drain it at stop or reload. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uv.h>
#include "command_channel.h"
#include "errors.h"
#include "health.h"
#include "http_server.h"
#include "identity.h"
#include "privileges.h"
#include "instance.h"
#include "log.h"
#include "pipeline.h"
#include "plugin_proc.h"
#include "record.h"
#include "runtime.h"
#include "scheduler.h"
#include "selfmetrics.h"
#include "spool.h"
#include "wire.h"

/* Everything made from one configuration; replaced whole on reload. */
struct generation {
    struct agent_conf *conf;
    struct pipeline *pl;
    struct scheduler sched;
    struct pipit_instance **inputs, **outputs;
    size_t ninputs, noutputs;
    enum {                              /* how far a drain has come */
        DRAIN_COLLECTIONS = 0,          /* waiting for running collections */
        DRAIN_LIVE,                     /* inputs alive (acks reach them) */
        DRAIN_FINAL                     /* inputs' fini ran; last records */
    } phase;
};

struct runtime {
    uv_loop_t loop;
    struct runtime_options opt;
    struct identity id;
    char *state_dir;                    /* the one identity was opened in */
    struct spool *spool;                /* opened once; NULL when disabled */
    char *spool_dir;
    struct instance_host host;
    struct generation *gen;
    struct agent_conf *next_conf;       /* swapped in when the drain ends */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;
    struct http_server *http;           /* NULL: endpoints off */
    struct command_channel *commands;   /* NULL: no command channel */
    uv_timer_t http_timer;              /* publishes what the endpoints serve */
    int64_t start_ns;                   /* wall clock */
    bool draining;
    bool exit_after;                    /* drain ends the process */
    bool abandon;                       /* stalled calls left: exit at once */
    int exit_code;
};

static void check_drain(void *arg);
static void publish_http(struct runtime *rt);

/* Loop thread: the command channel's event records, into the pipeline. */
static int rt_command_events(void *arg, int kind, const char *lines, size_t len,
                             uint32_t count)
{
    struct runtime *rt = arg;
    if (!rt->gen || !rt->gen->pl)
        return PIPIT_ESTATE;
    return pipeline_deliver(rt->gen->pl, kind, lines, len, count);
}

/* The command channel lives as long as the process: a reload keeps it. */
static int open_commands(struct runtime *rt, const struct agent_conf *c)
{
    char why[1024];
    if (!c->commands.brokers || !*c->commands.brokers)
        return PIPIT_OK;
    const struct command_channel_opts o = {
        .conf = &c->commands, .host_name = rt->id.host, .agent_id = rt->id.agent_id,
        .state_dir = rt->state_dir,
        .plugin_dir = rt->opt.plugin_dir ? rt->opt.plugin_dir : c->agent.plugin_dir,
        .loop = &rt->loop, .deliver = rt_command_events, .arg = rt,
    };
    if (command_channel_start(&rt->commands, &o, why, sizeof why) != 0) {
        log_error("commands", "%s", why);
        return PIPIT_EINVAL;
    }
    return PIPIT_OK;
}

/* How often the loop publishes /metrics and /readyz (and beats for /healthz). */
#define HTTP_PUBLISH_MS 1000

static int rt_deliver(struct instance_host *h, struct pipit_instance *ins, int kind,
                      const char *lines, size_t len, uint32_t count)
{
    struct runtime *rt = h->opaque;
    if (!rt->gen || !rt->gen->pl)
        return PIPIT_ESTATE;
    return pipeline_deliver(rt->gen->pl, kind, lines, len, count);
}

static void rt_flush_done(struct instance_host *h, struct pipit_instance *ins,
                          uint64_t id, int status)
{
    struct runtime *rt = h->opaque;
    if (rt->gen && rt->gen->pl)
        pipeline_flush_done(rt->gen->pl, ins, id, status);
}

static int rt_mark(struct instance_host *h, struct pipit_instance *ins, uint64_t token)
{
    struct runtime *rt = h->opaque;
    if (!rt->gen || !rt->gen->pl)
        return PIPIT_ESTATE;
    return pipeline_mark(rt->gen->pl, ins, token);
}

static int rt_caught_up(struct instance_host *h, struct pipit_instance *ins)
{
    struct runtime *rt = h->opaque;
    (void)ins;
    if (!rt->gen || !rt->gen->pl)
        return PIPIT_ESTATE;
    pipeline_caught_up(rt->gen->pl);
    return PIPIT_OK;
}

static void apply_logging(const struct agent_conf *c)
{
    log_setup(stderr, (enum log_format)log_format_parse(c->agent.log_format),
              log_level_parse(c->agent.log_level));
}

static uint64_t jitter(uint64_t max_ms)
{
    uint32_t r = 0;
    if (max_ms == 0)
        return 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
        r = (uint32_t)rand();
    return r % (max_ms + 1);
}

/* Make and init one instance of a validated entry; NULL if that failed. */
static struct pipit_instance *make_instance(struct runtime *rt,
                                            const struct agent_conf *c,
                                            const struct conf_instance *ci)
{
    struct diag d;
    diag_init(&d);
    struct pipit_instance *ins = instance_create(
        &rt->host, ci->lp, ci->role, ci->name, ci->node,
        ci->role == PIPIT_COLLECTOR ? settings_input_keys : settings_output_keys,
        c->file, ci->prefix, &d);
    if (!ins) {
        diag_log(&d, "runtime");
        diag_free(&d);
        return NULL;
    }
    diag_free(&d);
    ins->kind_mask = ci->kind_mask;
    ins->interval_ms = ci->interval_ms ? ci->interval_ms : c->agent.interval_ms;
    ins->collect_timeout_ms = ci->collect_timeout_ms;
    ins->max_emit_bytes = (size_t)ci->max_emit_bytes;
    ins->on_emit_limit = (enum emit_limit_policy)ci->on_emit_limit;
    if (!ci->isolated) {
        instance_init(ins);             /* a failure disables it, logged */
        return ins;
    }
    struct proc_config pcfg = {
        .plugin_path = ci->lp->path, .options = ci->node,
        .log_level = c->agent.log_level, .log_format = c->agent.log_format,
        .require_signature = c->plugins.require_signature,
        .trusted_keys = &c->plugins.trusted_keys,
        .memory_limit = ci->memory_limit, .restart_on_stall = ci->restart_on_stall,
    };
    char why[512];
    if (c->agent.user && *c->agent.user && geteuid() == 0 &&
        privileges_lookup(c->agent.user, &pcfg.uid, &pcfg.gid, why, sizeof why) == PIPIT_OK)
        pcfg.set_user = true;           /* never root, even before the drop */
    if (proc_start(&rt->loop, ins, &pcfg) != PIPIT_OK)
        ins->state = INS_DISABLED;
    return ins;
}

/*
 * Start the instances of conf: outputs first so that the pipeline knows
 * them, then inputs, each collector scheduled with its interval and a
 * random first delay of up to agent.jitter.
 */
static int start_generation(struct runtime *rt, struct agent_conf *c)
{
    struct generation *g = calloc(1, sizeof *g);
    if (!g)
        return PIPIT_ENOMEM;
    g->conf = c;
    apply_logging(c);
    if (c->agent.hostname && *c->agent.hostname)
        snprintf(rt->id.host, sizeof rt->id.host, "%s", c->agent.hostname);
    if (strcmp(rt->state_dir, c->agent.state_dir) != 0)
        log_warn("runtime", "agent.state_dir changed to %s; it takes effect at the "
                 "next restart (still using %s)", c->agent.state_dir, rt->state_dir);
    rt->host.max_collect_bytes = (size_t)c->pipeline.max_collect_bytes;
    if ((rt->spool != NULL) != c->spool.enabled)
        log_warn("runtime", "spool.enabled changed; it takes effect at the next restart");
    if ((rt->http != NULL) != c->http.enabled)
        log_warn("runtime", "http.enabled changed; it takes effect at the next restart");

    g->outputs = calloc(c->noutputs + 1, sizeof *g->outputs);
    g->inputs = calloc(c->ninputs + 1, sizeof *g->inputs);
    if (!g->outputs || !g->inputs)
        goto oom;
    for (size_t i = 0; i < c->noutputs; i++) {
        struct pipit_instance *ins = make_instance(rt, c, &c->outputs[i]);
        if (ins)
            g->outputs[g->noutputs++] = ins;
    }
    struct batch_limits lim = {
        .max_records = (uint32_t)c->batch.max_records,
        .max_bytes = (size_t)c->batch.max_bytes,
        .linger_ns = c->batch.linger_ms * 1000000,
    };
    g->pl = pipeline_new(&rt->loop, &rt->id, &lim, (size_t)c->pipeline.max_pending_bytes,
                         g->outputs, g->noutputs);
    if (!g->pl)
        goto oom;
    g->pl->on_progress = check_drain;
    g->pl->progress_arg = rt;
    struct wire_encode_opts wopt = {
        .codec = wire_codec_parse(c->wire.compression),
        .level = (int)c->wire.level,
        .key = c->wire.signing_key && *c->wire.signing_key ? c->wire.signing_key : NULL,
        .key_len = c->wire.signing_key ? strlen(c->wire.signing_key) : 0,
    };
    if (pipeline_set_store(g->pl, &wopt, rt->spool) != PIPIT_OK)
        goto oom;
    rt->gen = g;                        /* inputs may emit from init() */

    scheduler_init(&g->sched, &rt->loop, g->pl);
    g->sched.on_progress = check_drain;
    g->sched.progress_arg = rt;
    size_t running = 0, disabled = 0;
    for (size_t i = 0; i < c->ninputs; i++) {
        struct pipit_instance *ins = make_instance(rt, c, &c->inputs[i]);
        if (!ins)
            continue;
        g->inputs[g->ninputs++] = ins;
        if (ins->state != INS_RUNNING && ins->state != INS_STARTING) {
            disabled++;
            continue;
        }
        running++;
        if (ins->plugin->desc.collect) {
            uint64_t first = jitter((uint64_t)(c->agent.jitter_ms < ins->interval_ms
                                               ? c->agent.jitter_ms : ins->interval_ms));
            if (scheduler_add(&g->sched, ins, (uint64_t)ins->interval_ms, first) != PIPIT_OK)
                goto oom;
        }
    }
    size_t outs_running = 0;
    for (size_t i = 0; i < g->noutputs; i++)
        outs_running += g->outputs[i]->state == INS_RUNNING;
    log_info("runtime", "running %s: inputs %zu running, %zu disabled; outputs %zu "
             "running, %zu disabled; agent id %s, host %s", c->file, running, disabled,
             outs_running, g->noutputs - outs_running, rt->id.agent_id, rt->id.host);
    if (outs_running == 0)
        log_warn("runtime", "no output is running: every record will be counted as "
                 "dropped");
    return PIPIT_OK;
oom:
    log_error("runtime", "out of memory starting %s", c->file);
    return PIPIT_ENOMEM;
}

static void log_instance_stats(const struct pipit_instance *ins)
{
    const struct instance_stats *s = &ins->stats;
    const char *plugin = ins->plugin->desc.name;
    if (ins->role == PIPIT_OUTPUT) {
        const struct pipeline_output *o = ins->out;
        if (!o)
            return;
        log_line(PIPIT_LOG_INFO, ins->name, plugin, "runtime",
                 "output totals: batches=%llu records=%llu retries=%llu "
                 "failed_batches=%llu failed_records=%llu",
                 (unsigned long long)o->batches, (unsigned long long)o->records,
                 (unsigned long long)o->retries, (unsigned long long)o->failed_batches,
                 (unsigned long long)o->failed_records);
        return;
    }
    log_line(PIPIT_LOG_INFO, ins->name, plugin, "runtime",
             "input totals: runs=%llu records=%llu dropped=%llu invalid=%llu "
             "errors=%llu overruns=%llu skipped=%llu",
             (unsigned long long)s->runs, (unsigned long long)s->records,
             (unsigned long long)s->dropped, (unsigned long long)s->invalid,
             (unsigned long long)s->errors, (unsigned long long)s->overruns,
             (unsigned long long)s->skipped);
}

/* Tear the drained generation down and free it. */
static void end_generation(struct runtime *rt)
{
    struct generation *g = rt->gen;
    const struct pipeline_stats *ps = &g->pl->stats;

    for (size_t i = 0; i < g->ninputs; i++)
        log_instance_stats(g->inputs[i]);
    for (size_t i = 0; i < g->noutputs; i++)
        log_instance_stats(g->outputs[i]);
    log_info("runtime", "pipeline totals: records=%llu batches=%llu dropped_full=%llu "
             "unrouted=%llu lost=%llu replayed=%llu spool_waits=%llu spool_errors=%llu "
             "spool_dropped=%llu", (unsigned long long)ps->records_in,
             (unsigned long long)ps->batches_closed,
             (unsigned long long)ps->records_full,
             (unsigned long long)ps->records_unrouted,
             (unsigned long long)ps->records_lost,
             (unsigned long long)ps->records_replayed,
             (unsigned long long)ps->spool_waits,
             (unsigned long long)ps->spool_errors,
             (unsigned long long)ps->records_spool_dropped);
    /* an input stalled in a call passes to the scheduler with it */
    for (size_t i = 0; i < g->ninputs; i++)
        if (g->inputs[i]->state != INS_STALLED)
            instance_fini(g->inputs[i]);    /* no-op unless a drain timed out */
    for (size_t i = 0; i < g->noutputs; i++)
        instance_fini(g->outputs[i]);
    for (size_t i = 0; i < g->ninputs; i++)
        if (g->inputs[i]->state == INS_STALLED)
            g->inputs[i] = NULL;
    scheduler_release(&g->sched);
    pipeline_close(g->pl);
    rt->gen = NULL;
    for (size_t i = 0; i < g->ninputs; i++)
        instance_free(g->inputs[i]);
    for (size_t i = 0; i < g->noutputs; i++)
        instance_free(g->outputs[i]);
    free(g->inputs);
    free(g->outputs);
    settings_free(g->conf);
    free(g);
}

static void close_runtime_handles(struct runtime *rt)
{
    uv_close((uv_handle_t *)&rt->sig_term, NULL);
    uv_close((uv_handle_t *)&rt->sig_int, NULL);
    uv_close((uv_handle_t *)&rt->sig_hup, NULL);
    uv_close((uv_handle_t *)&rt->drain_timer, NULL);
    if (rt->http)
        uv_close((uv_handle_t *)&rt->http_timer, NULL);
    instance_host_close(&rt->host);
}

/* The drain is over (or timed out): exit, or start the next configuration. */
static void finish_drain(struct runtime *rt)
{
    uv_timer_stop(&rt->drain_timer);
    end_generation(rt);
    rt->draining = false;
    if (rt->exit_after) {
        log_info("runtime", "stopped");
        close_runtime_handles(rt);
        if (scheduler_orphans()) {
            /* their worker threads cannot be stopped nor waited for */
            log_warn("runtime", "exiting with %zu stalled collect() calls still "
                     "running", scheduler_orphans());
            rt->abandon = true;
            uv_stop(&rt->loop);
        }
        return;
    }
    struct agent_conf *c = rt->next_conf;
    rt->next_conf = NULL;
    if (start_generation(rt, c) != PIPIT_OK) {
        rt->exit_code = 1;
        rt->exit_after = true;
        close_runtime_handles(rt);
        return;
    }
    publish_http(rt);
    log_info("runtime", "configuration reloaded");
}

/*
 * Move the drain forward after any progress. Running collections finish
 * first; then every open batch closes and the outputs take them while the
 * inputs are still alive, so their acks (checkpoints, offsets) arrive; then
 * the inputs' fini() runs (it may emit last records), and those are
 * delivered too.
 */
static void check_drain(void *arg)
{
    struct runtime *rt = arg;
    struct generation *g = rt->gen;

    while (rt->draining && g && !scheduler_busy(&g->sched)) {
        switch (g->phase) {
        case DRAIN_COLLECTIONS:
            pipeline_close_open(g->pl);
            g->phase = DRAIN_LIVE;
            continue;
        case DRAIN_LIVE:
            if (!pipeline_idle(g->pl))
                return;
            for (size_t i = 0; i < g->ninputs; i++) {
                instance_fini(g->inputs[i]);
                pipeline_forget(g->pl, g->inputs[i]);
            }
            pipeline_close_open(g->pl);
            g->phase = DRAIN_FINAL;
            continue;
        case DRAIN_FINAL:
            if (pipeline_idle(g->pl))
                finish_drain(rt);
            return;
        }
    }
}

static void drain_timeout(uv_timer_t *t)
{
    struct runtime *rt = t->data;
    struct generation *g = rt->gen;

    if (!g)
        return;
    if (scheduler_busy(&g->sched)) {
        log_error("runtime", "a collection is still running after agent.shutdown_timeout");
        if (rt->exit_after) {
            pipeline_abandon(g->pl);
            log_error("runtime", "exiting without waiting for it");
            rt->exit_code = 1;
            uv_stop(&rt->loop);
            return;
        }
        uv_timer_start(&rt->drain_timer, drain_timeout, 1000, 0);
        return;                         /* a reload has to wait for it */
    }
    log_error("runtime", "outputs did not take every batch within "
              "agent.shutdown_timeout (%lld ms)", (long long)g->conf->agent.shutdown_timeout_ms);
    pipeline_abandon(g->pl);
    finish_drain(rt);
}

static void begin_drain(struct runtime *rt, bool exit_after)
{
    if (exit_after && rt->commands) {
        /* a running plan is interrupted (its journal resumes it at the next
         * start); its last events still go into this drain */
        command_channel_stop(rt->commands);
        rt->commands = NULL;
    }
    rt->draining = true;
    rt->exit_after = exit_after;
    scheduler_stop(&rt->gen->sched);
    for (size_t i = 0; i < rt->gen->ninputs; i++)
        instance_pause(rt->gen->inputs[i]);   /* no new records from watches */
    uv_timer_start(&rt->drain_timer, drain_timeout,
                   (uint64_t)rt->gen->conf->agent.shutdown_timeout_ms, 0);
    check_drain(rt);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    struct runtime *rt = s->data;
    if (rt->draining && rt->exit_after) {
        log_warn("runtime", "second SIG%s: exiting now", sigabbrev_np(signum));
        if (rt->gen)
            pipeline_abandon(rt->gen->pl);
        rt->exit_code = 1;
        uv_stop(&rt->loop);
        return;
    }
    log_info("runtime", "SIG%s: stopping; flushing what is in flight", sigabbrev_np(signum));
    if (rt->draining) {                 /* a reload was draining: exit instead */
        settings_free(rt->next_conf);
        rt->next_conf = NULL;
        rt->exit_after = true;
        return;
    }
    begin_drain(rt, true);
}

static void on_reload_signal(uv_signal_t *s, int signum)
{
    struct runtime *rt = s->data;
    struct diag d;

    if (rt->draining) {
        log_warn("runtime", "SIGHUP ignored: a stop or reload is in progress");
        return;
    }
    log_info("runtime", "SIGHUP: reloading %s", rt->opt.config_path);
    diag_init(&d);
    struct agent_conf *c = settings_load(rt->opt.config_path, rt->opt.plugin_dir, &d);
    if (!c) {
        diag_log(&d, "reload");
        log_error("runtime", "reload refused: %s has %zu errors; the running "
                  "configuration stays", rt->opt.config_path, d.count + d.dropped);
        diag_free(&d);
        return;
    }
    diag_free(&d);
    rt->next_conf = c;
    begin_drain(rt, false);
}

/*
 * Render what the endpoints serve from the running generation and hand it
 * to the server's thread; the server never reads live state itself.
 */
static void publish_http(struct runtime *rt)
{
    struct generation *g = rt->gen;
    struct buf metrics = BUF_INIT, ready = BUF_INIT;
    struct output_health health[SETTINGS_MAX_OUTPUTS];
    struct daemon_view v = {
        .pl = g ? g->pl : NULL,
        .inputs = g ? g->inputs : NULL,
        .ninputs = g ? g->ninputs : 0,
        .outputs = g ? g->outputs : NULL,
        .noutputs = g ? g->noutputs : 0,
        .spool = rt->spool,
        .spool_max_bytes = g && rt->spool ? (uint64_t)g->conf->spool.max_bytes : 0,
        .http = rt->http,
        .start_time_ns = rt->start_ns,
        .ready_grace_ns = g ? g->conf->http.ready_grace_ms * 1000000 : 0,
        .now_ns = batch_clock_ns(),
        .health = health,
    };

    if (!rt->http)
        return;
    health_judge(&v);
    selfmetrics_render(&metrics, &v);
    health_render_ready(&ready, &v);
    http_server_publish(rt->http, &metrics, &ready, v.ready);
    buf_free(&metrics);
    buf_free(&ready);
}

static void http_tick(uv_timer_t *t)
{
    publish_http(t->data);
}

/*
 * Start the endpoints when http.enabled (once per process, like the
 * spool: a reload that changes http: takes effect at the next restart).
 * Returns PIPIT_OK, or an error when they were asked for and cannot run.
 */
static int open_http(struct runtime *rt, const struct agent_conf *c)
{
    const struct http_settings *hs = &c->http;
    char err[512];
    struct http_server_config hc = {
        .listen = hs->listen,
        .tls_cert = hs->tls_cert,
        .tls_key = hs->tls_key,
        .token_file = hs->token_file,
        .max_connections = (unsigned)hs->max_connections,
        .timeout_s = (unsigned)((hs->timeout_ms + 999) / 1000),
        .max_request_bytes = (size_t)hs->max_request_bytes,
        .stall_timeout_ns = hs->stall_timeout_ms * 1000000,
        .query_db = hs->query_db,
        .query_timeout_ms = hs->query_timeout_ms,
        .query_threads = (unsigned)hs->query_threads,
    };

    if (!hs->enabled)
        return PIPIT_OK;
    rt->http = http_server_start(&hc, err, sizeof err);
    if (!rt->http) {
        log_error("runtime", "cannot start the HTTP endpoints: %s", err);
        return PIPIT_EIO;
    }
    uv_timer_init(&rt->loop, &rt->http_timer);
    rt->http_timer.data = rt;
    uv_timer_start(&rt->http_timer, http_tick, HTTP_PUBLISH_MS, HTTP_PUBLISH_MS);
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(hs->listen, ':') - hs->listen),
             hs->listen);
    log_info("runtime", "serving /metrics, /healthz and /readyz on %s://%s:%u (%s)",
             hs->tls_cert ? "https" : "http", host, http_server_port(rt->http),
             hs->token_file ? "bearer token required" : "no authentication");
    if (hs->query_db)
        log_info("runtime", "serving the query API (/v1/...) and the status page (/) "
                 "from %s", hs->query_db);
    struct http_server_addr addr;
    if (http_parse_listen(hs->listen, &addr, err, sizeof err) == PIPIT_OK &&
        !http_addr_is_loopback(&addr) && (!hs->token_file || !hs->tls_cert))
        log_warn("runtime", "http.listen %s is reachable from other hosts without %s: "
                 "set http.token_file and http.tls_cert/tls_key", hs->listen,
                 !hs->token_file && !hs->tls_cert ? "a token or TLS"
                 : !hs->token_file ? "a token" : "TLS");
    return PIPIT_OK;
}

/* Open the spool named by the configuration (once per process). */
static int open_spool(struct runtime *rt, const struct agent_conf *c)
{
    char err[512], dir[4096];
    snprintf(dir, sizeof dir, "%s", c->spool.dir ? c->spool.dir : "");
    if (!c->spool.dir)
        snprintf(dir, sizeof dir, "%s/spool", c->agent.state_dir);
    struct spool_config sc = {
        .dir = dir,
        .max_bytes = (uint64_t)c->spool.max_bytes,
        .segment_bytes = (uint64_t)c->spool.segment_bytes,
        .policy = strcmp(c->spool.policy, "drop_oldest") == 0 ? SPOOL_DROP_OLDEST
                                                               : SPOOL_BLOCK,
        .fsync = c->spool.fsync,
    };
    rt->spool = spool_open(&sc, err, sizeof err);
    if (!rt->spool) {
        log_error("runtime", "cannot open the spool: %s", err);
        return PIPIT_EIO;
    }
    rt->spool_dir = strdup(dir);
    const struct spool_stats *st = spool_stats(rt->spool);
    log_info("runtime", "spool %s: %llu batches unsent, %llu bytes, %llu damaged batches "
             "skipped (%llu bytes), bound %lld bytes, policy %s", dir,
             (unsigned long long)st->entries, (unsigned long long)st->bytes,
             (unsigned long long)st->corrupt_entries, (unsigned long long)st->corrupt_bytes,
             (long long)c->spool.max_bytes, c->spool.policy);
    return PIPIT_OK;
}

/* Threads for blocking collections: enough that slow ones do not starve others. */
static void size_threadpool(const struct agent_conf *c)
{
    char n[16];
    if (getenv("UV_THREADPOOL_SIZE"))
        return;
    size_t want = c->ninputs + 2;
    if (want < 4)
        want = 4;
    if (want > 64)
        want = 64;
    snprintf(n, sizeof n, "%zu", want);
    setenv("UV_THREADPOOL_SIZE", n, 1);
}

int runtime_run(struct agent_conf *conf, const struct runtime_options *opt)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    int code;

    if (!rt) {
        settings_free(conf);
        return 1;
    }
    rt->opt = *opt;
    apply_logging(conf);
    size_threadpool(conf);
    signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&rt->loop) != 0) {
        log_error("runtime", "cannot initialise the event loop");
        settings_free(conf);
        free(rt);
        return 1;
    }
    if (identity_open(&rt->id, conf->agent.state_dir, conf->agent.hostname) != PIPIT_OK) {
        settings_free(conf);
        uv_loop_close(&rt->loop);
        free(rt);
        return 1;
    }
    rt->state_dir = strdup(conf->agent.state_dir);
    rt->start_ns = record_now_ns();
    if ((conf->spool.enabled && open_spool(rt, conf) != PIPIT_OK) ||
        open_http(rt, conf) != PIPIT_OK) {
        if (rt->spool)
            spool_close(rt->spool);
        free(rt->spool_dir);
        identity_close(&rt->id);
        free(rt->state_dir);
        settings_free(conf);
        uv_loop_close(&rt->loop);
        free(rt);
        return 1;
    }
    rt->host.loop = &rt->loop;
    rt->host.host_name = rt->id.host;
    rt->host.agent_id = rt->id.agent_id;
    rt->host.state_dir = rt->state_dir;
    rt->host.deliver = rt_deliver;
    rt->host.flush_done = rt_flush_done;
    rt->host.mark = rt_mark;
    rt->host.caught_up = rt_caught_up;
    rt->host.opaque = rt;
    instance_host_open(&rt->host);

    uv_signal_init(&rt->loop, &rt->sig_term);
    uv_signal_init(&rt->loop, &rt->sig_int);
    uv_signal_init(&rt->loop, &rt->sig_hup);
    rt->sig_term.data = rt->sig_int.data = rt->sig_hup.data = rt;
    uv_signal_start(&rt->sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&rt->sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&rt->sig_hup, on_reload_signal, SIGHUP);
    uv_timer_init(&rt->loop, &rt->drain_timer);
    rt->drain_timer.data = rt;

    int rc = start_generation(rt, conf);
    if (rc == PIPIT_OK)
        rc = open_commands(rt, rt->gen->conf);
    if (rc == PIPIT_OK && conf->agent.user && *conf->agent.user) {
        const char *dirs[] = { rt->state_dir, rt->spool_dir };
        rc = privileges_drop(conf->agent.user, dirs, rt->spool_dir ? 2 : 1);
    }
    if (rc != PIPIT_OK) {
        rt->exit_code = 1;
        command_channel_stop(rt->commands);
        rt->commands = NULL;
        if (rt->gen)
            end_generation(rt);
        close_runtime_handles(rt);
    }
    publish_http(rt);
    uv_run(&rt->loop, UV_RUN_DEFAULT);
    http_server_stop(rt->http);         /* its thread reads only snapshots */
    rt->http = NULL;
    code = rt->exit_code;
    if (rt->abandon) {
        /* A worker thread is stuck in a plugin: exit() would run libuv's
         * thread-pool destructor, which joins every worker, forever. */
        if (rt->spool)
            spool_close(rt->spool);
        identity_close(&rt->id);
        fflush(stdout);
        fflush(stderr);
        _exit(code);
    }
    if (uv_loop_close(&rt->loop) == 0) {  /* not after uv_stop with work left */
        if (rt->spool)
            spool_close(rt->spool);
        free(rt->spool_dir);
        identity_close(&rt->id);
        free(rt->state_dir);
        free(rt);
    }
    return code;
}
