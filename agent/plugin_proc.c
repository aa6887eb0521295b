/* plugin_proc.c: pipitd's side of an input in its own process: spawn, frames, deadline kill, restart with backoff. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "errors.h"
#include "instance.h"
#include "log.h"
#include "plugin_proc.h"
#include "plugin_proto.h"

#define RESTART_FIRST_MS 1000           /* first restart delay, doubled per crash */
#define RESTART_MAX_MS   30000
#define STOP_GRACE_MS    5000           /* fini() time before SIGKILL at stop */
#define READ_CHUNK       (64u << 10)

struct proc_child {
    uv_loop_t *loop;
    struct pipit_instance *ins;         /* NULL once stopped */
    char *init;                         /* the INIT payload, kept for restarts */
    bool restart_on_stall;
    bool set_user;
    uid_t uid;
    gid_t gid;
    uv_process_t proc;
    uv_pipe_t to, from;                 /* its stdin and stdout */
    uv_timer_t timer;                   /* restart backoff, or the stop grace */
    struct proto_dec dec;
    int pid;
    bool alive;                         /* spawned, exit not seen yet */
    bool ready;                         /* READY seen since the spawn */
    bool init_failed;                   /* ERROR seen: do not restart */
    bool killed;                        /* by proc_kill (a deadline) */
    bool stopping;
    uint64_t backoff_ms;
    int open;                           /* handles not closed yet */
    void (*done)(void *arg, int status);  /* the call in flight */
    void *done_arg;
    char readbuf[READ_CHUNK];
};

struct proc_write {
    uv_write_t req;
    struct buf b;
};

static void spawn(struct proc_child *pc);

static void pc_maybe_free(struct proc_child *pc)
{
    if (pc->stopping && pc->open == 0) {
        proto_dec_free(&pc->dec);
        free(pc->init);
        free(pc);
    }
}

static void handle_closed(uv_handle_t *h)
{
    struct proc_child *pc = h->data;
    pc->open--;
    pc_maybe_free(pc);
}

static void close_handle(struct proc_child *pc, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        h->data = pc;
        uv_close(h, handle_closed);
    }
}

static void write_done(uv_write_t *req, int status)
{
    struct proc_write *w = (struct proc_write *)req;
    buf_free(&w->b);
    free(w);
}

/* Queue one frame to the process's stdin. */
static int send_frame(struct proc_child *pc, int type, const void *payload, size_t len)
{
    struct proc_write *w = calloc(1, sizeof *w);
    if (!w || proto_put(&w->b, type, payload, len) != PIPIT_OK) {
        if (w)
            buf_free(&w->b);
        free(w);
        return PIPIT_ENOMEM;
    }
    uv_buf_t ub = uv_buf_init(w->b.data, (unsigned)w->b.len);
    if (uv_write(&w->req, (uv_stream_t *)&pc->to, &ub, 1, write_done) != 0) {
        buf_free(&w->b);
        free(w);
        return PIPIT_EIO;
    }
    return PIPIT_OK;
}

struct keep_arg {
    struct pipit_instance *ins;
    int kind;
};

static void keep_in_call(const char *line, size_t len, void *arg)
{
    struct keep_arg *k = arg;
    instance_take_line(k->ins, k->kind, line, len);
}

/* Outside a call (init() or fini() emitting): to the pipeline at once. */
static void keep_now(const char *line, size_t len, void *arg)
{
    struct keep_arg *k = arg;
    if (k->ins->host->deliver(k->ins->host, k->ins, k->kind, line, len, 1) == PIPIT_OK)
        k->ins->stats.records++;
    else
        k->ins->stats.dropped++;
}

/* One frame from the process. Returns PIPIT_OK, or PIPIT_EPARSE when the
 * frame makes no sense now (the process is then killed). */
static int handle_frame(struct proc_child *pc, const struct proto_frame *f)
{
    struct pipit_instance *ins = pc->ins;
    const char *plugin = ins->plugin->desc.name;

    switch (f->type) {
    case PROTO_READY:
        if (pc->ready)
            return PIPIT_EPARSE;
        pc->ready = true;
        ins->state = INS_RUNNING;
        log_line(PIPIT_LOG_INFO, ins->name, plugin, "isolation",
                 "running in its own process (pid %d)", pc->pid);
        return PIPIT_OK;
    case PROTO_ERROR:
        if (pc->ready)
            return PIPIT_EPARSE;
        pc->init_failed = true;
        log_line(PIPIT_LOG_ERROR, ins->name, plugin, "isolation",
                 "init failed in its process: %.*s (%s)", (int)(f->len - 4),
                 (const char *)f->payload + 4,
                 pipit_strerror((int32_t)proto_get_u32(f->payload)));
        return PIPIT_OK;
    case PROTO_RECORDS: {
        size_t bad = 0;
        struct keep_arg k = { ins, f->payload[0] };
        proto_check_lines(k.kind, (const char *)f->payload + 1, f->len - 1,
                          ins->host->host_name, ins->name,
                          pc->done ? keep_in_call : keep_now, &k, &bad);
        if (bad) {
            atomic_fetch_add(&ins->emit_invalid, bad);
            log_line(PIPIT_LOG_WARN, ins->name, plugin, "isolation", "%zu record lines "
                     "from its process were malformed or not its own; refused and "
                     "counted", bad);
        }
        return PIPIT_OK;
    }
    case PROTO_DONE: {
        if (!pc->done)
            return PIPIT_EPARSE;
        uint32_t capped = proto_get_u32(f->payload + 4);
        if (capped && !ins->collecting)
            ins->collecting = calloc(1, sizeof *ins->collecting);
        if (capped && ins->collecting)
            ins->collecting->capped += capped;
        pc->backoff_ms = RESTART_FIRST_MS;      /* it works again */
        void (*done)(void *, int) = pc->done;
        pc->done = NULL;
        done(pc->done_arg, (int32_t)proto_get_u32(f->payload));  /* may stop pc */
        return PIPIT_OK;
    }
    case PROTO_LOG: {
        int level = f->payload[0];
        if (level < PIPIT_LOG_ERROR)
            level = PIPIT_LOG_ERROR;
        if (level > PIPIT_LOG_TRACE)
            level = PIPIT_LOG_TRACE;
        instance_api()->log(ins, level, "%.*s", (int)(f->len - 1),
                            (const char *)f->payload + 1);
        return PIPIT_OK;
    }
    }
    return PIPIT_EPARSE;
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct proc_child *pc = h->data;
    *b = uv_buf_init(pc->readbuf, sizeof pc->readbuf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct proc_child *pc = s->data;
    struct proto_frame f;
    char err[160];
    int r = 0;

    if (n < 0) {
        uv_read_stop(s);                /* the exit callback follows */
        return;
    }
    if (n == 0 || !pc->ins)
        return;
    if (proto_dec_feed(&pc->dec, b->base, (size_t)n) != PIPIT_OK) {
        snprintf(err, sizeof err, "out of memory");
        goto bad;
    }
    while (pc->ins && (r = proto_next(&pc->dec, &f, err, sizeof err)) == 1)
        if (handle_frame(pc, &f) != PIPIT_OK) {
            snprintf(err, sizeof err, "frame type %d out of turn", f.type);
            goto bad;
        }
    if (r >= 0 || !pc->ins)
        return;
bad:
    log_line(PIPIT_LOG_ERROR, pc->ins->name, pc->ins->plugin->desc.name, "isolation",
             "its process broke the protocol (%s); killing it", err);
    uv_read_stop(s);
    if (pc->alive)
        uv_process_kill(&pc->proc, SIGKILL);
}

static void restart_cb(uv_timer_t *t)
{
    struct proc_child *pc = t->data;
    if (pc->stopping || !pc->ins)
        return;
    if (pc->open > 1) {                 /* the last run's pipes still closing */
        uv_timer_start(&pc->timer, restart_cb, 100, 0);
        return;
    }
    spawn(pc);
}

static void exit_cb(uv_process_t *p, int64_t status, int sig)
{
    struct proc_child *pc = p->data;
    struct pipit_instance *ins = pc->ins;
    char how[96];

    pc->alive = false;
    pc->ready = false;
    close_handle(pc, (uv_handle_t *)&pc->proc);
    close_handle(pc, (uv_handle_t *)&pc->to);
    close_handle(pc, (uv_handle_t *)&pc->from);
    proto_dec_free(&pc->dec);
    if (!ins) {                         /* stopped: this was the expected end */
        close_handle(pc, (uv_handle_t *)&pc->timer);
        return;
    }
    const char *plugin = ins->plugin->desc.name;
    if (sig)
        snprintf(how, sizeof how, "was killed by signal %d (%s)", sig, strsignal(sig));
    else
        snprintf(how, sizeof how, "exited with status %lld", (long long)status);
    bool restart = !pc->init_failed && (!pc->killed || pc->restart_on_stall);
    ins->state = restart ? INS_STARTING : INS_DISABLED;
    if (!restart) {
        log_line(PIPIT_LOG_ERROR, ins->name, plugin, "isolation",
                 "its process (pid %d) %s; %s: the instance is disabled", pc->pid, how,
                 pc->init_failed ? "init failed" : "on_stall is disable");
    } else {
        ins->stats.restarts++;
        log_line(PIPIT_LOG_ERROR, ins->name, plugin, "isolation",
                 "its process (pid %d) %s; starting it again in %llu ms (restart %llu)",
                 pc->pid, how, (unsigned long long)pc->backoff_ms,
                 (unsigned long long)ins->stats.restarts);
        uv_timer_start(&pc->timer, restart_cb, pc->backoff_ms, 0);
        pc->backoff_ms = pc->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS
                                                             : pc->backoff_ms * 2;
    }
    if (pc->done) {                     /* the call in flight fails */
        void (*done)(void *, int) = pc->done;
        pc->done = NULL;
        /* last: the end of the call may end a drain, which stops pc and
         * frees ins */
        done(pc->done_arg, pc->killed ? PIPIT_ETIMEDOUT : PIPIT_EIO);
    }
}

/* Start one run of the host process and send it INIT. A failure to spawn
 * is retried with the same backoff as a crash. */
static void spawn(struct proc_child *pc)
{
    struct pipit_instance *ins = pc->ins;
    char *args[] = { "pipitd", "--plugin-host", NULL };
    uv_stdio_container_t stdio[3] = {
        { .flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&pc->to },
        { .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&pc->from },
        { .flags = UV_INHERIT_FD, .data.fd = 2 },
    };
    uv_process_options_t o = {
        .exit_cb = exit_cb, .file = "/proc/self/exe", .args = args,
        .stdio_count = 3, .stdio = stdio,
    };

    if (pc->set_user) {
        o.flags = UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        o.uid = pc->uid;
        o.gid = pc->gid;
    }
    pc->ready = pc->init_failed = pc->killed = false;
    proto_dec_init(&pc->dec, ins->max_emit_bytes ? ins->max_emit_bytes + 1
                                                 : ins->host->max_collect_bytes + 1);
    uv_pipe_init(pc->loop, &pc->to, 0);
    uv_pipe_init(pc->loop, &pc->from, 0);
    pc->to.data = pc->from.data = pc->proc.data = pc;
    pc->open += 3;
    int r = uv_spawn(pc->loop, &pc->proc, &o);
    pc->proc.data = pc;
    if (r != 0) {
        log_line(PIPIT_LOG_ERROR, ins->name, ins->plugin->desc.name, "isolation",
                 "cannot start its process: %s; trying again in %llu ms", uv_strerror(r),
                 (unsigned long long)pc->backoff_ms);
        close_handle(pc, (uv_handle_t *)&pc->proc);
        close_handle(pc, (uv_handle_t *)&pc->to);
        close_handle(pc, (uv_handle_t *)&pc->from);
        uv_timer_start(&pc->timer, restart_cb, pc->backoff_ms, 0);
        return;
    }
    pc->alive = true;
    pc->pid = pc->proc.pid;
    uv_read_start((uv_stream_t *)&pc->from, alloc_cb, read_cb);
    if (send_frame(pc, PROTO_INIT, pc->init, strlen(pc->init)) != PIPIT_OK)
        uv_process_kill(&pc->proc, SIGKILL);
}

/* A scalar's text as YAML the host process reads back the same:
 * "${" written as "$${" so that nothing is expanded twice. */
static void yaml_scalar(struct buf *b, const struct cfg_node *n)
{
    const char *v = n->value ? n->value : "";
    bool bare = n->plain && *v;
    for (const char *c = v; *c && bare; c++)
        bare = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
               (*c >= '0' && *c <= '9') || strchr("_./+-", *c);
    if (n->plain && !*v)
        return;                         /* null */
    if (bare) {
        buf_puts(b, v);
        return;
    }
    struct buf t = BUF_INIT;
    for (const char *c = v; *c; c++) {
        if (c[0] == '$' && c[1] == '{')
            buf_putc(&t, '$');
        buf_putc(&t, *c);
    }
    buf_json_str(b, t.data ? t.data : "", t.len);
    buf_free(&t);
}

/* The instance's map as flow YAML. */
static void yaml_node(struct buf *b, const struct cfg_node *n)
{
    if (n->type == CFG_SCALAR) {
        yaml_scalar(b, n);
        return;
    }
    bool map = n->type == CFG_MAP;
    buf_putc(b, map ? '{' : '[');
    for (size_t i = 0; i < n->nchild; i++) {
        if (i)
            buf_puts(b, ", ");
        if (map) {
            buf_json_str(b, n->child[i]->key, strlen(n->child[i]->key));
            buf_puts(b, ": ");
        }
        yaml_node(b, n->child[i]);
    }
    buf_putc(b, map ? '}' : ']');
}

/* The INIT payload (JSON, docs/plugin-isolation.md); NULL on out of memory. */
static char *init_payload(const struct pipit_instance *ins, const struct proc_config *cfg)
{
    struct buf opts = BUF_INIT;
    json_t *keys = json_array();
    size_t cap = ins->max_emit_bytes ? ins->max_emit_bytes : ins->host->max_collect_bytes;

    yaml_node(&opts, cfg->options);
    for (size_t i = 0; keys && cfg->trusted_keys && i < cfg->trusted_keys->count; i++)
        json_array_append_new(keys, json_string(cfg->trusted_keys->items[i]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:I, s:I, s:b, s:o, s:s#}",
                          "plugin", cfg->plugin_path, "name", ins->name,
                          "host", ins->host->host_name,
                          "agent_id", ins->host->agent_id ? ins->host->agent_id : "",
                          "state_dir", ins->host->state_dir,
                          "log_level", cfg->log_level, "log_format", cfg->log_format,
                          "max_emit_bytes", (json_int_t)cap,
                          "memory_limit", (json_int_t)cfg->memory_limit,
                          "require_signature", cfg->require_signature,
                          "trusted_keys", keys,
                          "options", opts.data ? opts.data : "{}", opts.data ? opts.len : 2);
    buf_free(&opts);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

int proc_start(uv_loop_t *loop, struct pipit_instance *ins, const struct proc_config *cfg)
{
    struct proc_child *pc = calloc(1, sizeof *pc);

    if (!pc || !(pc->init = init_payload(ins, cfg))) {
        free(pc);
        log_line(PIPIT_LOG_ERROR, ins->name, ins->plugin->desc.name, "isolation",
                 "out of memory");
        return PIPIT_ENOMEM;
    }
    pc->loop = loop;
    pc->ins = ins;
    pc->restart_on_stall = cfg->restart_on_stall;
    pc->set_user = cfg->set_user;
    pc->uid = cfg->uid;
    pc->gid = cfg->gid;
    pc->backoff_ms = RESTART_FIRST_MS;
    uv_timer_init(loop, &pc->timer);
    pc->timer.data = pc;
    pc->open = 1;
    ins->child = pc;
    ins->state = INS_STARTING;
    spawn(pc);
    return PIPIT_OK;
}

int proc_collect(struct proc_child *pc, void (*done)(void *arg, int status), void *arg)
{
    if (!pc->ready || pc->done || !pc->alive)
        return PIPIT_ESTATE;
    if (send_frame(pc, PROTO_COLLECT, NULL, 0) != PIPIT_OK)
        return PIPIT_EIO;
    pc->done = done;
    pc->done_arg = arg;
    return PIPIT_OK;
}

void proc_kill(struct proc_child *pc)
{
    if (!pc->alive)
        return;
    pc->killed = true;
    uv_process_kill(&pc->proc, SIGKILL);
}

static void grace_over(uv_timer_t *t)
{
    struct proc_child *pc = t->data;
    if (pc->alive) {
        log_warn("isolation", "plugin host process %d did not exit within %d ms of "
                 "its stop; killing it", pc->pid, STOP_GRACE_MS);
        uv_process_kill(&pc->proc, SIGKILL);
    }
}

void proc_stop(struct proc_child *pc)
{
    pc->ins = NULL;
    pc->done = NULL;
    pc->stopping = true;
    uv_timer_stop(&pc->timer);
    if (!pc->alive) {
        close_handle(pc, (uv_handle_t *)&pc->timer);
        pc_maybe_free(pc);
        return;
    }
    close_handle(pc, (uv_handle_t *)&pc->to);   /* EOF: fini() and exit */
    uv_timer_start(&pc->timer, grace_over, STOP_GRACE_MS, 0);
}
