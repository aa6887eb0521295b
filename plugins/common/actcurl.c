/* actcurl.c: one blocking libcurl transfer within a step's deadline, for the HTTP actions. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "actcurl.h"
#include "httploop.h"

struct actcurl_xfer {
    const struct actcurl_req *req;
    struct actcurl_result *r;
    const struct pipit_api *api;
    pipit_instance *ins;
    size_t cap;                         /* bytes allocated at r->body */
    const char *sink_why;               /* the sink's reason to stop */
    bool nomem;
};

int64_t actcurl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static CURLcode actcurl_global_rc;

static void actcurl_global_once(void)
{
    actcurl_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int actcurl_global_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, actcurl_global_once);
    return actcurl_global_rc == CURLE_OK ? PIPIT_OK : PIPIT_EIO;
}

/* Keep what fits under max_body (or hand it to the sink); returning less
 * than n ends the transfer with CURLE_WRITE_ERROR. */
static size_t actcurl_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct actcurl_xfer *x = arg;
    struct actcurl_result *r = x->r;
    size_t n = size * nmemb;

    r->bytes += n;
    if (x->req->sink) {
        x->sink_why = x->req->sink(x->req->sink_arg, p, n);
        return x->sink_why ? 0 : n;
    }
    size_t room = x->req->max_body > r->body_len ? x->req->max_body - r->body_len : 0;
    size_t take = n < room ? n : room;
    if (take < n)
        r->body_cut = true;
    if (take) {
        if (r->body_len + take + 1 > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < r->body_len + take + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) {
                x->nomem = true;
                return 0;
            }
            r->body = b;
            x->cap = cap;
        }
        memcpy(r->body + r->body_len, p, take);
        r->body_len += take;
        r->body[r->body_len] = '\0';
    }
    return n;
}

/* Called by curl about once a second and on every piece of data. */
static int actcurl_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                            curl_off_t un)
{
    struct actcurl_xfer *x = arg;

    (void)dt, (void)dn, (void)ut, (void)un;
    if (x->api->cancelled && x->api->cancelled(x->ins)) {
        x->r->cancelled = true;
        return 1;
    }
    return 0;
}

#define ACTCURL_SET(opt, val) do {                                          \
    if ((c = curl_easy_setopt(e, opt, val)) != CURLE_OK)                    \
        goto refused;                                                       \
} while (0)

int actcurl_run(const struct pipit_api *api, pipit_instance *ins,
                const struct actcurl_req *req, struct actcurl_result *r)
{
    struct actcurl_xfer x = { .req = req, .r = r, .api = api, .ins = ins };
    char errbuf[CURL_ERROR_SIZE] = "";
    int64_t left = api->time_left_ms ? api->time_left_ms(ins) : -1;
    int64_t t0 = actcurl_now_ms();
    CURLcode c;
    CURL *e;
    int rc;

    memset(r, 0, sizeof *r);
    r->limit_ms = req->timeout_ms > 0 ? req->timeout_ms : 0;
    if (left >= 0 && (r->limit_ms == 0 || left < r->limit_ms)) {
        r->limit_ms = left;
        r->step_deadline = true;
    }
    if (!(r->body = calloc(1, 1)))
        return PIPIT_ENOMEM;
    x.cap = 1;
    if (r->step_deadline && r->limit_ms == 0) {
        r->timed_out = true;
        r->code = CURLE_OPERATION_TIMEDOUT;
        snprintf(r->error, sizeof r->error, "the step's deadline passed before the request");
        return PIPIT_ETIMEDOUT;
    }
    if (api->cancelled && api->cancelled(ins)) {
        r->cancelled = true;
        r->code = CURLE_ABORTED_BY_CALLBACK;
        snprintf(r->error, sizeof r->error, "cancelled");
        return PIPIT_ECANCELED;
    }
    if (!(e = curl_easy_init())) {
        snprintf(r->error, sizeof r->error, "curl_easy_init failed");
        return PIPIT_ENOMEM;
    }
    ACTCURL_SET(CURLOPT_URL, req->url);
    ACTCURL_SET(CURLOPT_PROTOCOLS_STR, req->protocols ? req->protocols : "http,https");
    ACTCURL_SET(CURLOPT_NOSIGNAL, 1L);          /* worker thread: no SIGALRM */
    ACTCURL_SET(CURLOPT_ERRORBUFFER, errbuf);
    ACTCURL_SET(CURLOPT_WRITEFUNCTION, actcurl_write);
    ACTCURL_SET(CURLOPT_WRITEDATA, &x);
    ACTCURL_SET(CURLOPT_NOPROGRESS, 0L);
    ACTCURL_SET(CURLOPT_XFERINFOFUNCTION, actcurl_progress);
    ACTCURL_SET(CURLOPT_XFERINFODATA, &x);
    ACTCURL_SET(CURLOPT_USERAGENT, "pipit");
    if (r->limit_ms > 0)
        ACTCURL_SET(CURLOPT_TIMEOUT_MS, (long)r->limit_ms);
    if (req->follow) {
        ACTCURL_SET(CURLOPT_FOLLOWLOCATION, 1L);
        ACTCURL_SET(CURLOPT_MAXREDIRS, 10L);
        ACTCURL_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    if (req->fail_on_error)
        ACTCURL_SET(CURLOPT_FAILONERROR, 1L);
    if (req->method && strcmp(req->method, "HEAD") == 0)
        ACTCURL_SET(CURLOPT_NOBODY, 1L);
    else if (req->method && strcmp(req->method, "GET") != 0)
        ACTCURL_SET(CURLOPT_CUSTOMREQUEST, req->method);
    if (req->body) {
        ACTCURL_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        ACTCURL_SET(CURLOPT_POSTFIELDS, req->body);
        if (!req->method || strcmp(req->method, "GET") == 0)
            ACTCURL_SET(CURLOPT_CUSTOMREQUEST, "GET");  /* POSTFIELDS makes a POST */
    }
    if (req->headers)
        ACTCURL_SET(CURLOPT_HTTPHEADER, req->headers);
    if ((c = httploop_set_tls(e, req->tls_ca_file, req->tls_cert_file, req->tls_key_file,
                              req->tls_insecure)) != CURLE_OK)
        goto refused;

    r->code = c = curl_easy_perform(e);
    r->duration_ms = actcurl_now_ms() - t0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    if (c == CURLE_OK) {
        rc = PIPIT_OK;
    } else if (c == CURLE_OPERATION_TIMEDOUT) {
        r->timed_out = true;
        snprintf(r->error, sizeof r->error, "no complete response within %s of %lld ms",
                 r->step_deadline ? "the step's time left" : "the timeout",
                 (long long)r->limit_ms);
        rc = PIPIT_ETIMEDOUT;
    } else if (r->cancelled) {
        snprintf(r->error, sizeof r->error, "cancelled");
        rc = PIPIT_ECANCELED;
    } else if (x.sink_why) {
        snprintf(r->error, sizeof r->error, "%s", x.sink_why);
        rc = PIPIT_EIO;
    } else if (x.nomem) {
        snprintf(r->error, sizeof r->error, "out of memory for the response body");
        rc = PIPIT_ENOMEM;
    } else if (c == CURLE_HTTP_RETURNED_ERROR) {
        snprintf(r->error, sizeof r->error, "HTTP status %ld", r->status);
        rc = PIPIT_EIO;
    } else {
        snprintf(r->error, sizeof r->error, "%s", *errbuf ? errbuf : curl_easy_strerror(c));
        rc = PIPIT_EIO;
    }
    curl_easy_cleanup(e);
    return rc;
refused:
    snprintf(r->error, sizeof r->error, "libcurl refused an option: %s",
             curl_easy_strerror(c));
    r->code = c;
    curl_easy_cleanup(e);
    return PIPIT_EINVAL;
}

void actcurl_result_free(struct actcurl_result *r)
{
    free(r->body);
    r->body = NULL;
}
