/* httploop.c: libcurl's multi interface driven by the pipit loop (see httploop.h). */
#define _GNU_SOURCE
#include "httploop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HTTPLOOP_NEVER UINT64_MAX

/* One running transfer. */
struct httploop_xfer {
    struct httploop *hl;
    CURL *easy;
    httploop_done_fn done;
    void *arg;
    char *body;
    size_t len, cap, max;
    bool too_large;
    uint64_t start_ns;
    struct httploop_xfer *prev, *next;
    char errbuf[CURL_ERROR_SIZE];
};

struct httploop {
    const struct pipit_api *api;
    pipit_instance *ins;
    CURLM *multi;
    struct httploop_xfer *xfers;        /* running, newest first */
    unsigned running;
    uint64_t curl_due;                  /* monotonic ms, or HTTPLOOP_NEVER */
    uint64_t tick_due;
    uint64_t tick_every;
    httploop_tick_fn tick;
    void *tick_arg;
    bool closing;                       /* in httploop_free: arm and watch nothing */
    struct httploop *next;              /* in the registry */
};

/*
 * The host's fd and timer callbacks name the instance, not the driver; a
 * registry of the drivers of this plugin file maps one to the other. It is
 * short (one entry per instance) and only touched on the loop thread, but
 * instances of one file may be set up while another runs, hence the lock.
 */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct httploop *registry;

static struct httploop *lookup(pipit_instance *ins)
{
    struct httploop *hl;

    pthread_mutex_lock(&registry_mu);
    for (hl = registry; hl && hl->ins != ins; hl = hl->next)
        ;
    pthread_mutex_unlock(&registry_mu);
    return hl;
}

static void unregister(struct httploop *hl)
{
    pthread_mutex_lock(&registry_mu);
    for (struct httploop **pp = &registry; *pp; pp = &(*pp)->next)
        if (*pp == hl) {
            *pp = hl->next;
            break;
        }
    pthread_mutex_unlock(&registry_mu);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
    return mono_ns() / 1000000u;
}

static void on_timer(pipit_instance *ins, void *data);

/* Arm the instance's timer for the earlier of curl's timeout and the tick. */
static void arm(struct httploop *hl)
{
    uint64_t due = hl->curl_due;

    if (hl->closing)
        return;

    if (hl->tick && hl->tick_due < due)
        due = hl->tick_due;
    if (due == HTTPLOOP_NEVER) {
        hl->api->timer_stop(hl->ins);
        return;
    }
    uint64_t now = mono_ms();
    int rc = hl->api->timer_start(hl->ins, due > now ? due - now : 0, 0, on_timer);
    if (rc != PIPIT_OK)
        hl->api->log(hl->ins, PIPIT_LOG_ERROR, "cannot arm the HTTP timer: %s",
                     hl->api->strerror(rc));
}

/* Hand every finished transfer to its done callback. */
static void reap(struct httploop *hl)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(hl->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        struct httploop_xfer *x = NULL;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(hl->multi, easy);
        if (!x)
            continue;
        if (x->prev)
            x->prev->next = x->next;
        else
            hl->xfers = x->next;
        if (x->next)
            x->next->prev = x->prev;
        hl->running--;

        struct httploop_result res = {
            .code = code,
            .error = "",
            .body = x->body ? x->body : "",
            .body_len = x->len,
            .too_large = x->too_large,
            .seconds = (double)(mono_ns() - x->start_ns) / 1e9,
        };
        if (code == CURLE_OK || code == CURLE_WRITE_ERROR)
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &res.status);
        if (x->too_large)
            res.error = "the response body passed its size limit";
        else if (code != CURLE_OK)
            res.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(code);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        x->done(x->arg, easy, &res);
        free(x->body);
        free(x);
    }
}

static void on_timer(pipit_instance *ins, void *data)
{
    struct httploop *hl = lookup(ins);
    uint64_t now = mono_ms();
    int n;

    (void)data;
    if (!hl)
        return;
    if (hl->curl_due <= now) {
        hl->curl_due = HTTPLOOP_NEVER;
        curl_multi_socket_action(hl->multi, CURL_SOCKET_TIMEOUT, 0, &n);
        reap(hl);
    }
    if (hl->tick && hl->tick_due <= now) {
        httploop_tick_fn tick = hl->tick;
        void *arg = hl->tick_arg;

        if (hl->tick_every == 0) {
            hl->tick = NULL;
        } else {
            while (hl->tick_due <= now)
                hl->tick_due += hl->tick_every;
        }
        tick(arg);
    }
    arm(hl);
}

static void on_fd(pipit_instance *ins, void *data, int fd, int events)
{
    struct httploop *hl = lookup(ins);
    int ev = 0, n;

    (void)data;
    if (!hl)
        return;
    if (events & PIPIT_FD_READ)
        ev |= CURL_CSELECT_IN;
    if (events & PIPIT_FD_WRITE)
        ev |= CURL_CSELECT_OUT;
    curl_multi_socket_action(hl->multi, fd, ev, &n);
    reap(hl);
}

/* CURLMOPT_SOCKETFUNCTION: watch a socket for what curl waits on. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct httploop *hl = userp;

    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        hl->api->unwatch_fd(hl->ins, s);
        return 0;
    }
    if (hl->closing)
        return 0;
    int ev = ((what & CURL_POLL_IN) ? PIPIT_FD_READ : 0) |
             ((what & CURL_POLL_OUT) ? PIPIT_FD_WRITE : 0);
    int rc = hl->api->watch_fd(hl->ins, s, ev, on_fd);
    if (rc != PIPIT_OK) {
        hl->api->log(hl->ins, PIPIT_LOG_ERROR, "cannot watch an HTTP socket: %s",
                     hl->api->strerror(rc));
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: curl wants socket_action(TIMEOUT) in ms, or never. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct httploop *hl = userp;

    (void)multi;
    hl->curl_due = timeout_ms < 0 ? HTTPLOOP_NEVER : mono_ms() + (uint64_t)timeout_ms;
    arm(hl);
    return 0;
}

/* CURLOPT_WRITEFUNCTION: keep the body up to its cap; past it, keep the
 * part that fits and end the transfer (curl reports CURLE_WRITE_ERROR, the
 * result says too_large) rather than cut it silently. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct httploop_xfer *x = userp;
    size_t n = size * nmemb, room = x->max - x->len;
    bool over = n > room;

    if (over)
        n = room;
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 16384;
        while (cap < x->len + n + 1)
            cap *= 2;
        if (cap > x->max + 1)
            cap = x->max + 1;
        char *b = realloc(x->body, cap);
        if (!b)
            return 0;
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
    x->body[x->len] = '\0';
    if (over) {
        x->too_large = true;
        return 0;
    }
    return n;
}

CURLcode httploop_set_tls(CURL *easy, const char *ca_file, const char *cert_file,
                          const char *key_file, bool insecure)
{
    CURLcode c = CURLE_OK;

    if (ca_file)
        c = curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file);
    if (c == CURLE_OK && cert_file) {
        c = curl_easy_setopt(easy, CURLOPT_SSLCERT, cert_file);
        if (c == CURLE_OK)
            c = curl_easy_setopt(easy, CURLOPT_SSLKEY, key_file);
    }
    if (c == CURLE_OK && insecure) {
        c = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        if (c == CURLE_OK)
            c = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return c;
}

const char *httploop_check_tls_files(const char *ca_file, const char *cert_file,
                                     const char *key_file, char *why, size_t whylen)
{
    const char *files[3][2] = {
        { "tls_ca_file", ca_file }, { "tls_cert_file", cert_file },
        { "tls_key_file", key_file },
    };

    if (!cert_file != !key_file)
        return "tls_cert_file: tls_cert_file and tls_key_file go together";
    for (int i = 0; i < 3; i++)
        if (files[i][1] && access(files[i][1], R_OK) != 0) {
            snprintf(why, whylen, "%s: %s: %s", files[i][0], files[i][1], strerror(errno));
            return why;
        }
    return NULL;
}

bool httploop_token(const char *s)
{
    if (!*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    return true;
}

const char *httploop_headers(const struct pipit_strmap *headers, size_t max,
                             struct curl_slist **list, char *why, size_t whylen)
{
    if (max && headers->count > max) {
        snprintf(why, whylen, "headers: more than %zu", max);
        return why;
    }
    for (size_t i = 0; i < headers->count; i++) {
        const char *k = headers->keys[i], *v = headers->values[i];
        char *line;

        if (!httploop_token(k)) {
            snprintf(why, whylen, "headers: \"%.64s\" is not a header name", k);
            return why;
        }
        if (strpbrk(v, "\r\n")) {
            snprintf(why, whylen, "headers.%.64s: the value holds a line break", k);
            return why;
        }
        if (asprintf(&line, *v ? "%s: %s" : "%s;", k, v) < 0)
            return "out of memory";
        struct curl_slist *l = curl_slist_append(*list, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (!l)
            return "out of memory";
        *list = l;
    }
    return NULL;
}

const char *httploop_url_parse(const char *url, const char *key, struct httploop_url *u,
                               char *why, size_t whylen)
{
    struct httploop_url r = { .https = false };
    CURLU *h = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *shown = NULL;
    const char *err = NULL;

    if (!h)
        return "out of memory";
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host ||
        curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(why, whylen, "%s: \"%s\" is not a URL with a scheme and a host", key,
                 strchr(url, '@') ? "(hidden: it may hold credentials)" : url);
        err = why;
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(why, whylen, "%s: scheme \"%.16s\" is not http or https", key, scheme);
        err = why;
        goto out;
    }
    r.https = strcmp(scheme, "https") == 0;
    curl_url_set(h, CURLUPART_USER, NULL, 0);
    curl_url_set(h, CURLUPART_PASSWORD, NULL, 0);
    if (curl_url_get(h, CURLUPART_URL, &shown, 0) != CURLUE_OK ||
        !(r.shown = strdup(shown)) || !(r.host = strdup(host)) || !(r.port = strdup(port))) {
        httploop_url_free(&r);
        err = "out of memory";
    }
out:
    curl_free(shown);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);
    if (!err)
        *u = r;
    return err;
}

void httploop_url_free(struct httploop_url *u)
{
    free(u->shown);
    free(u->host);
    free(u->port);
    u->shown = u->host = u->port = NULL;
}

static CURLcode global_rc;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int httploop_global_init(const struct pipit_api *api)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, global_init_once);
    if (global_rc != CURLE_OK) {
        api->log(NULL, PIPIT_LOG_ERROR, "curl_global_init failed: %s",
                 curl_easy_strerror(global_rc));
        return PIPIT_EIO;
    }
    return PIPIT_OK;
}

struct httploop *httploop_new(const struct pipit_api *api, pipit_instance *ins)
{
    struct httploop *hl = calloc(1, sizeof *hl);

    if (!hl)
        return NULL;
    hl->api = api;
    hl->ins = ins;
    hl->curl_due = HTTPLOOP_NEVER;
    hl->multi = curl_multi_init();
    if (!hl->multi) {
        api->log(ins, PIPIT_LOG_ERROR, "curl_multi_init failed");
        free(hl);
        return NULL;
    }
    curl_multi_setopt(hl->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(hl->multi, CURLMOPT_SOCKETDATA, hl);
    curl_multi_setopt(hl->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(hl->multi, CURLMOPT_TIMERDATA, hl);
    pthread_mutex_lock(&registry_mu);
    hl->next = registry;
    registry = hl;
    pthread_mutex_unlock(&registry_mu);
    return hl;
}

void httploop_free(struct httploop *hl, void (*abandon)(void *arg, CURL *easy))
{
    if (!hl)
        return;
    /*
     * Removing transfers and cleaning up the multi handle call curl's timer
     * and socket callbacks. The host has already ended the instance's
     * watches and timer when this runs from fini(), so nothing may be armed
     * or watched again: a timer started now would outlive the instance.
     */
    hl->closing = true;
    unregister(hl);
    while (hl->xfers) {
        struct httploop_xfer *x = hl->xfers;

        hl->xfers = x->next;
        curl_multi_remove_handle(hl->multi, x->easy);
        curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
        if (abandon)
            abandon(x->arg, x->easy);
        free(x->body);
        free(x);
    }
    curl_multi_cleanup(hl->multi);
    hl->api->timer_stop(hl->ins);
    free(hl);
}

int httploop_tick(struct httploop *hl, uint64_t first_ms, uint64_t every_ms,
                  httploop_tick_fn tick, void *arg)
{
    if (!tick)
        return PIPIT_EINVAL;
    hl->tick = tick;
    hl->tick_arg = arg;
    hl->tick_every = every_ms;
    hl->tick_due = mono_ms() + first_ms;
    arm(hl);
    return PIPIT_OK;
}

int httploop_start(struct httploop *hl, CURL *easy, size_t max_body,
                   httploop_done_fn done, void *arg)
{
    struct httploop_xfer *x = calloc(1, sizeof *x);

    if (!x)
        return PIPIT_ENOMEM;
    x->hl = hl;
    x->easy = easy;
    x->done = done;
    x->arg = arg;
    x->max = max_body;
    x->start_ns = mono_ns();
    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    CURLMcode mc = curl_multi_add_handle(hl->multi, easy);
    if (mc != CURLM_OK) {
        hl->api->log(hl->ins, PIPIT_LOG_ERROR, "cannot start an HTTP transfer: %s",
                     curl_multi_strerror(mc));
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return PIPIT_EIO;
    }
    x->next = hl->xfers;
    if (hl->xfers)
        hl->xfers->prev = x;
    hl->xfers = x;
    hl->running++;
    return PIPIT_OK;
}

unsigned httploop_running(const struct httploop *hl)
{
    return hl->running;
}
