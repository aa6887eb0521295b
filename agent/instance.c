/* instance.c: plugin instances, their lifecycle, and the host services (struct pipit_api) they call. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "errors.h"
#include "instance.h"
#include "log.h"
#include "plugin_proc.h"
#include "record.h"

#define LOG_WINDOW_NS   (10LL * 1000000000)  /* plugin log rate-limit window */
#define LOG_WINDOW_MAX  50                   /* lines per instance per window */
#define FOREIGN_MAX_BYTES (8u << 20)          /* queued from foreign threads */
#define EMIT_LINE_KEEP    (64u << 10)         /* api_emit keeps a buffer this large */

/* The instance whose collect()/act() runs on this thread, if any. */
static _Thread_local struct pipit_instance *tls_running;

struct foreign_item {                   /* a record emitted by a plugin thread */
    struct foreign_item *next;
    struct pipit_instance *ins;
    int kind;                           /* 0: a mark with token */
    uint64_t token;
    size_t len;
    char line[];
};

struct instance_watch {                 /* one api->watch_fd() */
    uv_poll_t poll;
    int fd;
    pipit_fd_cb cb;
    struct pipit_instance *ins;
    struct instance_watch *next;
};

/* ---- logging ------------------------------------------------------------ */

/*
 * Plugin log lines carry the instance and plugin names. At most
 * LOG_WINDOW_MAX lines per instance per 10 s window are written; the number
 * suppressed is reported when the next window opens.
 */
static void api_vlog(pipit_instance *ins, int level, const char *fmt, va_list ap)
{
    if (!log_enabled(level))
        return;
    if (!ins) {
        log_vline(level, "pipitd", NULL, "plugin", fmt, ap);
        return;
    }
    const char *plugin = ins->plugin ? ins->plugin->desc.name : NULL;
    int64_t now = record_now_ns();
    unsigned suppressed = 0;
    bool write_it;

    pthread_mutex_lock(&ins->log_mu);
    if (now - ins->log_window >= LOG_WINDOW_NS) {
        suppressed = ins->log_suppressed;
        ins->log_window = now;
        ins->log_lines = 0;
        ins->log_suppressed = 0;
    }
    write_it = ins->log_lines < LOG_WINDOW_MAX;
    if (write_it)
        ins->log_lines++;
    else
        ins->log_suppressed++;
    pthread_mutex_unlock(&ins->log_mu);

    if (suppressed)
        log_line(PIPIT_LOG_WARN, ins->name, plugin, NULL,
                 "%u log lines of this instance suppressed by the rate limit",
                 suppressed);
    if (write_it)
        log_vline(level, ins->name, plugin, NULL, fmt, ap);
}

static void api_log(pipit_instance *ins, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    api_vlog(ins, level, fmt, ap);
    va_end(ap);
}

static bool api_log_enabled(pipit_instance *ins, int level)
{
    return log_enabled(level);
}

/* ---- emitting records --------------------------------------------------- */

static int emitbuf_add(struct emitbuf *e, int kind, const char *line, size_t len)
{
    if (buf_append(&e->lines[kind], line, len) != PIPIT_OK)
        return PIPIT_ENOMEM;
    e->count[kind]++;
    e->bytes += len;
    return PIPIT_OK;
}

void emitbuf_free(struct emitbuf *e)
{
    for (int k = 0; k <= PIPIT_RECORD_KIND_MAX; k++)
        buf_free(&e->lines[k]);
    memset(e, 0, sizeof *e);
}

/* Queue one line from a thread that is neither the loop nor a collect(). */
static int foreign_push(struct pipit_instance *ins, int kind, const char *line,
                        size_t len)
{
    struct instance_host *h = ins->host;
    if (!h->foreign_ready)
        return PIPIT_ESTATE;
    struct foreign_item *it = malloc(sizeof *it + len);
    if (!it)
        return PIPIT_ENOMEM;
    it->next = NULL;
    it->ins = ins;
    it->kind = kind;
    it->token = 0;
    it->len = len;
    if (len)
        memcpy(it->line, line, len);
    pthread_mutex_lock(&h->foreign_mu);
    if (h->foreign_bytes + len > FOREIGN_MAX_BYTES) {
        pthread_mutex_unlock(&h->foreign_mu);
        free(it);
        return PIPIT_EFULL;
    }
    h->foreign_bytes += len;
    *h->foreign_tail = it;
    h->foreign_tail = &it->next;
    pthread_mutex_unlock(&h->foreign_mu);
    uv_async_send(&h->foreign_async);
    return PIPIT_OK;
}

static void foreign_drain(uv_async_t *a)
{
    struct instance_host *h = a->data;
    pthread_mutex_lock(&h->foreign_mu);
    struct foreign_item *it = h->foreign_head;
    h->foreign_head = NULL;
    h->foreign_tail = &h->foreign_head;
    h->foreign_bytes = 0;
    pthread_mutex_unlock(&h->foreign_mu);
    while (it) {
        struct foreign_item *next = it->next;
        if (it->kind == 0) {
            if (h->mark)
                h->mark(h, it->ins, it->token);
        } else if (h->deliver(h, it->ins, it->kind, it->line, it->len, 1) == PIPIT_OK) {
            it->ins->stats.records++;
        } else {
            it->ins->stats.dropped++;
        }
        free(it);
        it = next;
    }
}

int instance_take_line(struct pipit_instance *ins, int kind, const char *line, size_t len)
{
    struct emitbuf *e = ins->collecting;
    size_t cap = ins->max_emit_bytes ? ins->max_emit_bytes : ins->host->max_collect_bytes;

    if (!e) {
        e = ins->collecting = calloc(1, sizeof *e);
        if (!e)
            return PIPIT_ENOMEM;
    }
    if (cap && e->bytes + len > cap) {
        if (e->capped++ == 0)
            api_log(ins, PIPIT_LOG_WARN, "one collection emitted more than %zu bytes of "
                    "records (max_emit_bytes); the rest are dropped and counted", cap);
        return PIPIT_EFULL;
    }
    return emitbuf_add(e, kind, line, len);
}

/*
 * Check, encode and route one record: into the running collection's buffer
 * when called from collect(), straight to the pipeline on the loop thread,
 * or through the foreign queue from any other thread.
 */
static int api_emit(pipit_instance *ins, const struct pipit_record *rec)
{
    char err[256];
    struct buf local = BUF_INIT, *line = &local;
    int r;

    if (!ins)
        return PIPIT_EINVAL;
    struct pipit_record copy;
    if (rec && rec->struct_size < sizeof copy && rec->struct_size >= offsetof(struct pipit_record, host)) {
        /* a plugin built before the relay fields: read only what it has */
        memset(&copy, 0, sizeof copy);
        memcpy(&copy, rec, rec->struct_size);
        rec = &copy;
    }
    if (record_check(rec, err, sizeof err) != PIPIT_OK) {
        atomic_fetch_add(&ins->emit_invalid, 1);
        api_log(ins, PIPIT_LOG_WARN, "invalid record refused: %s", err);
        return PIPIT_EINVAL;
    }
    /* Every branch below copies the line, so the loop thread encodes into
     * one buffer kept by the host instead of allocating one per record. */
    bool on_loop = pthread_equal(pthread_self(), ins->host->loop_thread);
    if (on_loop && !ins->host->emit_line_busy) {
        line = &ins->host->emit_line;
        buf_reset(line);
        ins->host->emit_line_busy = true;
    }
    if (record_encode_json(line, rec, ins->host->host_name, ins->name,
                           record_now_ns()) != PIPIT_OK) {
        atomic_fetch_add(&ins->emit_dropped, 1);
        r = PIPIT_ENOMEM;
    } else if (tls_running == ins && ins->collecting) {
        r = instance_take_line(ins, rec->kind, line->data, line->len);
    } else if (on_loop) {
        r = ins->host->deliver(ins->host, ins, rec->kind, line->data, line->len, 1);
        if (r == PIPIT_OK)
            ins->stats.records++;
        else
            ins->stats.dropped++;
    } else {
        r = foreign_push(ins, rec->kind, line->data, line->len);
        if (r != PIPIT_OK)
            atomic_fetch_add(&ins->emit_dropped, 1);
    }
    if (line == &ins->host->emit_line) {
        ins->host->emit_line_busy = false;
        if (line->cap > EMIT_LINE_KEEP)     /* one huge record: do not keep it */
            buf_free(line);
    }
    buf_free(&local);
    return r;
}

static int api_emit_metric(pipit_instance *ins, int type, const char *name,
                           double value, const struct pipit_label *labels,
                           size_t nlabels)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_METRIC, .name = name,
        .metric_type = type, .value = value, .labels = labels,
        .nlabels = nlabels,
    };
    return api_emit(ins, &rec);
}

static int api_emit_gauge(pipit_instance *ins, const char *name, double value)
{
    return api_emit_metric(ins, PIPIT_GAUGE, name, value, NULL, 0);
}

static int api_emit_counter(pipit_instance *ins, const char *name, double value)
{
    return api_emit_metric(ins, PIPIT_COUNTER, name, value, NULL, 0);
}

static int api_emit_log(pipit_instance *ins, int level, const char *message,
                        const struct pipit_label *labels, size_t nlabels)
{
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = PIPIT_LOG, .level = level,
        .message = message, .labels = labels, .nlabels = nlabels,
    };
    return api_emit(ins, &rec);
}

/* ---- identity and environment ------------------------------------------ */

static const char *api_config_get(pipit_instance *ins, const char *key)
{
    return ins && ins->opts ? opt_store_get(ins->opts, key) : NULL;
}

static const char *api_instance_name(pipit_instance *ins) { return ins->name; }
static const char *api_host_name(pipit_instance *ins) { return ins->host->host_name; }
static const char *api_agent_id(pipit_instance *ins) { return ins->host->agent_id; }
static int64_t api_now_ns(void) { return record_now_ns(); }

/* <state_dir>/plugins/<instance>, made 0700 on first use. */
static const char *api_state_dir(pipit_instance *ins)
{
    const char *res = NULL;
    char path[4096];

    pthread_mutex_lock(&ins->log_mu);
    if (ins->state_dir) {
        res = ins->state_dir;
        goto out;
    }
    if (!ins->host->state_dir)
        goto out;
    snprintf(path, sizeof path, "%s/plugins", ins->host->state_dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        goto out;
    snprintf(path, sizeof path, "%s/plugins/%s", ins->host->state_dir, ins->name);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        goto out;
    ins->state_dir = strdup(path);
    res = ins->state_dir;
out:
    pthread_mutex_unlock(&ins->log_mu);
    if (!res)
        api_log(ins, PIPIT_LOG_ERROR, "cannot create the instance state directory "
                "under %s: %s", ins->host->state_dir ? ins->host->state_dir : "(none)",
                strerror(errno));
    return res;
}

/* ---- loop services ------------------------------------------------------ */

static bool on_loop(pipit_instance *ins)
{
    return ins->host->loop && pthread_equal(pthread_self(), ins->host->loop_thread);
}

static void watch_closed(uv_handle_t *h)
{
    free(h->data);
}

static void watch_fired(uv_poll_t *p, int status, int events)
{
    struct instance_watch *w = p->data;
    int ev = 0;

    if (status < 0) {
        /* libuv reports an error pending on the fd (POLLERR: a refused
         * connection, an ICMP error on UDP) as UV_EBADF and stops the
         * watch. That is the peer's doing, not the fd's: the plugin reads
         * the error itself, and logs it in its own words. */
        api_log(w->ins, PIPIT_LOG_DEBUG, "error pending on watched fd %d (%s)", w->fd,
                uv_strerror(status));
        ev = PIPIT_FD_READ;             /* let the plugin see the error on read */
    }
    if (events & UV_READABLE)
        ev |= PIPIT_FD_READ;
    if (events & UV_WRITABLE)
        ev |= PIPIT_FD_WRITE;
    w->cb(w->ins, w->ins->ctx, w->fd, ev);
}

static int api_watch_fd(pipit_instance *ins, int fd, int events, pipit_fd_cb cb)
{
    if (!on_loop(ins) || !cb || fd < 0 || !(events & (PIPIT_FD_READ | PIPIT_FD_WRITE)))
        return PIPIT_EINVAL;
    int uvev = ((events & PIPIT_FD_READ) ? UV_READABLE : 0) |
               ((events & PIPIT_FD_WRITE) ? UV_WRITABLE : 0);
    for (struct instance_watch *w = ins->watches; w; w = w->next)
        if (w->fd == fd) {              /* change the events of a watch */
            w->cb = cb;
            return uv_poll_start(&w->poll, uvev, watch_fired) ? PIPIT_EIO : PIPIT_OK;
        }
    struct instance_watch *w = calloc(1, sizeof *w);
    if (!w)
        return PIPIT_ENOMEM;
    int r = uv_poll_init(ins->host->loop, &w->poll, fd);
    if (r != 0) {
        api_log(ins, PIPIT_LOG_ERROR, "cannot watch fd %d: %s", fd, uv_strerror(r));
        free(w);
        return r == UV_EPERM ? PIPIT_ENOTSUP : PIPIT_EIO;
    }
    w->poll.data = w;
    w->fd = fd;
    w->cb = cb;
    w->ins = ins;
    r = uv_poll_start(&w->poll, uvev, watch_fired);
    if (r != 0) {
        uv_close((uv_handle_t *)&w->poll, watch_closed);
        return PIPIT_EIO;
    }
    w->next = ins->watches;
    ins->watches = w;
    return PIPIT_OK;
}

static int api_unwatch_fd(pipit_instance *ins, int fd)
{
    if (!on_loop(ins))
        return PIPIT_EINVAL;
    for (struct instance_watch **pp = &ins->watches; *pp; pp = &(*pp)->next) {
        struct instance_watch *w = *pp;
        if (w->fd != fd)
            continue;
        *pp = w->next;
        uv_poll_stop(&w->poll);
        uv_close((uv_handle_t *)&w->poll, watch_closed);
        return PIPIT_OK;
    }
    return PIPIT_ENOENT;
}

struct instance_timer {
    uv_timer_t timer;
    pipit_timer_cb cb;
    struct pipit_instance *ins;
};

static void timer_fired(uv_timer_t *t)
{
    struct instance_timer *it = (struct instance_timer *)t;
    it->cb(it->ins, it->ins->ctx);
}

static int api_timer_start(pipit_instance *ins, uint64_t timeout_ms,
                           uint64_t repeat_ms, pipit_timer_cb cb)
{
    if (!on_loop(ins) || !cb)
        return PIPIT_EINVAL;
    struct instance_timer *it = (struct instance_timer *)ins->timer;
    if (!it) {
        it = calloc(1, sizeof *it);
        if (!it)
            return PIPIT_ENOMEM;
        uv_timer_init(ins->host->loop, &it->timer);
        it->timer.data = it;
        it->ins = ins;
        ins->timer = &it->timer;
    }
    it->cb = cb;
    return uv_timer_start(&it->timer, timer_fired, timeout_ms, repeat_ms)
           ? PIPIT_EIO : PIPIT_OK;
}

static int api_timer_stop(pipit_instance *ins)
{
    if (!on_loop(ins))
        return PIPIT_EINVAL;
    if (ins->timer)
        uv_timer_stop(ins->timer);
    return PIPIT_OK;
}

static void api_flush_done(pipit_instance *ins, uint64_t batch_id, int status)
{
    if (!on_loop(ins) || !ins->host->flush_done) {
        api_log(ins, PIPIT_LOG_ERROR, "flush_done called off the loop thread or "
                "without a pipeline; batch %llu", (unsigned long long)batch_id);
        return;
    }
    ins->host->flush_done(ins->host, ins, batch_id, status);
}

/*
 * Record a mark after everything emitted so far: inside collect() it waits
 * in the collection's buffer for the handoff, on the loop it goes to the
 * pipeline at once, from other threads through the foreign queue, so a
 * mark never overtakes the records emitted before it.
 */
static int api_mark(pipit_instance *ins, uint64_t token)
{
    if (!ins || !ins->host->mark)
        return PIPIT_ENOTSUP;
    if (tls_running == ins && ins->collecting) {
        ins->collecting->marked = true;
        ins->collecting->mark = token;
        return PIPIT_OK;
    }
    if (pthread_equal(pthread_self(), ins->host->loop_thread))
        return ins->host->mark(ins->host, ins, token);
    struct instance_host *h = ins->host;
    if (!h->foreign_ready)
        return PIPIT_ESTATE;
    struct foreign_item *it = calloc(1, sizeof *it);
    if (!it)
        return PIPIT_ENOMEM;
    it->ins = ins;
    it->token = token;
    pthread_mutex_lock(&h->foreign_mu);
    *h->foreign_tail = it;
    h->foreign_tail = &it->next;
    pthread_mutex_unlock(&h->foreign_mu);
    uv_async_send(&h->foreign_async);
    return PIPIT_OK;
}

static bool result_key_ok(const char *key)
{
    if (!key || !*key || strlen(key) > 64)
        return false;
    for (const char *c = key; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

static int api_set_result(pipit_instance *ins, const char *key, const char *value)
{
    if (!ins || !ins->host->set_result)
        return PIPIT_ENOTSUP;
    if (!result_key_ok(key) || !value) {
        api_log(ins, PIPIT_LOG_ERROR, "set_result: key \"%s\" is not lower_snake "
                "(a-z, 0-9, _; at most 64) or the value is NULL", key ? key : "(null)");
        return PIPIT_EINVAL;
    }
    return ins->host->set_result(ins->host, ins, key, value);
}

static int64_t api_time_left_ms(pipit_instance *ins)
{
    if (!ins || !ins->host->time_left_ms)
        return -1;
    return ins->host->time_left_ms(ins->host, ins);
}

/*
 * The input has caught up with its source: the open batches close now. Only
 * on the loop and outside collect(), whose records are not handed over yet.
 */
static int api_caught_up(pipit_instance *ins)
{
    if (!ins)
        return PIPIT_EINVAL;
    if (!pthread_equal(pthread_self(), ins->host->loop_thread) ||
        (tls_running == ins && ins->collecting))
        return PIPIT_ESTATE;
    return ins->host->caught_up ? ins->host->caught_up(ins->host, ins) : PIPIT_ENOTSUP;
}

static bool api_cancelled(pipit_instance *ins)
{
    return ins && ins->host->cancelled && ins->host->cancelled(ins->host, ins);
}

static const struct pipit_api host_api = {
    .struct_size = sizeof(struct pipit_api),
    .abi_major = PIPIT_ABI_MAJOR,
    .abi_minor = PIPIT_ABI_MINOR,
    .log = api_log,
    .vlog = api_vlog,
    .log_enabled = api_log_enabled,
    .emit = api_emit,
    .emit_gauge = api_emit_gauge,
    .emit_counter = api_emit_counter,
    .emit_metric = api_emit_metric,
    .emit_log = api_emit_log,
    .config_get = api_config_get,
    .instance_name = api_instance_name,
    .host_name = api_host_name,
    .agent_id = api_agent_id,
    .state_dir = api_state_dir,
    .now_ns = api_now_ns,
    .strerror = pipit_strerror,
    .watch_fd = api_watch_fd,
    .unwatch_fd = api_unwatch_fd,
    .timer_start = api_timer_start,
    .timer_stop = api_timer_stop,
    .flush_done = api_flush_done,
    .mark = api_mark,
    .set_result = api_set_result,
    .time_left_ms = api_time_left_ms,
    .cancelled = api_cancelled,
    .caught_up = api_caught_up,
};

const struct pipit_api *instance_api(void)
{
    return &host_api;
}

/* ---- lifecycle ---------------------------------------------------------- */

int instance_host_open(struct instance_host *h)
{
    h->loop_thread = pthread_self();
    h->emit_line = (struct buf)BUF_INIT;
    h->emit_line_busy = false;
    h->foreign_head = NULL;
    h->foreign_tail = &h->foreign_head;
    if (pthread_mutex_init(&h->foreign_mu, NULL) != 0)
        return PIPIT_ENOMEM;
    if (h->loop) {
        if (uv_async_init(h->loop, &h->foreign_async, foreign_drain) != 0) {
            pthread_mutex_destroy(&h->foreign_mu);
            return PIPIT_EIO;
        }
        h->foreign_async.data = h;
        h->foreign_ready = true;
    }
    return PIPIT_OK;
}

void instance_host_close(struct instance_host *h)
{
    buf_free(&h->emit_line);
    if (h->foreign_ready) {
        foreign_drain(&h->foreign_async);
        uv_close((uv_handle_t *)&h->foreign_async, NULL);
        h->foreign_ready = false;
    }
    pthread_mutex_destroy(&h->foreign_mu);
}

struct pipit_instance *instance_create(struct instance_host *h,
                                       const struct loader_plugin *p,
                                       unsigned role, const char *name,
                                       const struct cfg_node *map,
                                       const char *const *host_keys,
                                       const char *file, const char *prefix,
                                       struct diag *d)
{
    static const struct pipit_option no_options[] = { PIPIT_OPT_END };
    struct pipit_instance *ins = calloc(1, sizeof *ins);

    if (!ins)
        goto oom;
    ins->name = strdup(name);
    ins->ctx = calloc(1, p->desc.ctx_size ? p->desc.ctx_size : 1);
    if (!ins->name || !ins->ctx)
        goto oom;
    ins->role = role;
    ins->plugin = p;
    ins->host = h;
    pthread_mutex_init(&ins->log_mu, NULL);
    if (opt_apply(p->desc.options ? p->desc.options : no_options, map, host_keys,
                  ins->ctx, file, prefix, &ins->opts, d) != PIPIT_OK) {
        instance_free(ins);
        return NULL;
    }
    return ins;
oom:
    diag_add(d, file, map ? map->line : 0, prefix, "out of memory");
    if (ins) {
        free(ins->name);
        free(ins->ctx);
        free(ins);
    }
    return NULL;
}

int instance_init(struct pipit_instance *ins)
{
    int r = PIPIT_OK;
    if (ins->plugin->desc.init)
        r = ins->plugin->desc.init(ins, ins->ctx);
    if (r != PIPIT_OK) {
        ins->state = INS_DISABLED;
        ins->initialised = false;
        log_line(PIPIT_LOG_ERROR, ins->name, ins->plugin->desc.name, NULL,
                 "init failed: %s; instance disabled, the rest keeps running",
                 pipit_strerror(r));
        return r;
    }
    ins->state = INS_RUNNING;
    ins->initialised = true;
    return PIPIT_OK;
}

/* Drop foreign-queue lines of ins so none outlives it. */
static void foreign_forget(struct pipit_instance *ins)
{
    struct instance_host *h = ins->host;
    if (!h->foreign_ready)
        return;
    pthread_mutex_lock(&h->foreign_mu);
    struct foreign_item **pp = &h->foreign_head;
    while (*pp) {
        struct foreign_item *it = *pp;
        if (it->ins == ins) {
            *pp = it->next;
            h->foreign_bytes -= it->len;
            free(it);
        } else {
            pp = &it->next;
        }
    }
    h->foreign_tail = pp;
    pthread_mutex_unlock(&h->foreign_mu);
}

void instance_pause(struct pipit_instance *ins)
{
    while (ins->watches)
        api_unwatch_fd(ins, ins->watches->fd);
    if (ins->timer) {
        uv_timer_stop(ins->timer);
        uv_close((uv_handle_t *)ins->timer, (uv_close_cb)free);
        ins->timer = NULL;
    }
}

void instance_fini(struct pipit_instance *ins)
{
    if (ins->child) {                   /* its fini() runs in its process */
        proc_stop(ins->child);
        ins->child = NULL;
    }
    instance_pause(ins);
    if (ins->initialised && ins->plugin->desc.fini)
        ins->plugin->desc.fini(ins, ins->ctx);
    ins->initialised = false;
    if (ins->state == INS_RUNNING)
        ins->state = INS_STOPPED;
    if (ins->host->foreign_ready) {
        foreign_drain(&ins->host->foreign_async);  /* deliver what it sent */
        foreign_forget(ins);
    }
}

void instance_free(struct pipit_instance *ins)
{
    if (!ins)
        return;
    if (ins->collecting) {
        emitbuf_free(ins->collecting);
        free(ins->collecting);
    }
    opt_store_free(ins->opts);
    pthread_mutex_destroy(&ins->log_mu);
    free(ins->state_dir);
    free(ins->ctx);
    free(ins->name);
    free(ins);
}

int instance_run(struct pipit_instance *ins)
{
    const struct pipit_plugin *d = &ins->plugin->desc;
    int (*fn)(pipit_instance *, void *) =
        ins->role == PIPIT_ACTION ? d->act : d->collect;

    if (ins->state != INS_RUNNING || !fn)
        return PIPIT_ESTATE;
    if (!ins->collecting) {
        ins->collecting = calloc(1, sizeof *ins->collecting);
        if (!ins->collecting)
            return PIPIT_ENOMEM;
    }
    tls_running = ins;
    int r = fn(ins, ins->ctx);
    tls_running = NULL;
    return r;
}

/* Empty an emitbuf for the next call: small buffers are kept, large ones
 * given back. */
static void emitbuf_reset(struct emitbuf *e)
{
    for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++) {
        e->count[k] = 0;
        if (e->lines[k].cap > (256u << 10))
            buf_free(&e->lines[k]);
        else
            buf_reset(&e->lines[k]);
    }
    e->bytes = 0;
    e->capped = 0;
    e->marked = false;
}

uint64_t instance_discard(struct pipit_instance *ins)
{
    struct emitbuf *e = ins->collecting;
    uint64_t n = 0;

    if (e) {
        for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++)
            n += e->count[k];
        ins->stats.capped += e->capped;
        emitbuf_reset(e);
    }
    ins->stats.stalled += n;
    ins->stats.invalid += atomic_exchange(&ins->emit_invalid, 0);
    ins->stats.dropped += atomic_exchange(&ins->emit_dropped, 0);
    return n;
}

uint32_t instance_handoff(struct pipit_instance *ins)
{
    struct emitbuf *e = ins->collecting;
    uint32_t capped = 0;

    if (e) {
        for (int k = PIPIT_METRIC; k <= PIPIT_RECORD_KIND_MAX; k++) {
            if (!e->count[k])
                continue;
            if (ins->host->deliver(ins->host, ins, k, e->lines[k].data,
                                   e->lines[k].len, e->count[k]) == PIPIT_OK)
                ins->stats.records += e->count[k];
            else
                ins->stats.dropped += e->count[k];
        }
        if (e->marked && ins->host->mark)
            ins->host->mark(ins->host, ins, e->mark);
        capped = e->capped;
        ins->stats.capped += capped;
        emitbuf_reset(e);
    }
    ins->stats.invalid += atomic_exchange(&ins->emit_invalid, 0);
    ins->stats.dropped += atomic_exchange(&ins->emit_dropped, 0);
    return capped;
}
