/* actcurl.h: one blocking libcurl transfer within a step's deadline, for the actions that speak HTTP (http, fetch, wait_healthy). */
#ifndef PIPIT_PLUGINS_ACTCURL_H
#define PIPIT_PLUGINS_ACTCURL_H

#include <pipit/plugin.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Compiled into each plugin that uses it; never exported from the .so. */
#define ACTCURL_HIDDEN __attribute__((visibility("hidden")))

/*
 * Where the response body goes: with sink set, every piece is handed to
 * sink(sink_arg, p, n), which returns NULL to go on or a reason to stop the
 * transfer (copied into the result's error); without one, the first
 * max_body bytes are kept in the result and the rest is read and dropped.
 */
typedef const char *(*actcurl_sink_fn)(void *arg, const char *p, size_t n);

/* One request. Strings are borrowed for the call. */
struct actcurl_req {
    const char *url;
    const char *protocols;              /* CURLOPT_PROTOCOLS_STR, e.g. "http,https" */
    const char *method;                 /* NULL: GET */
    const struct curl_slist *headers;   /* NULL: none */
    const char *body;                   /* NULL: no body */
    size_t body_len;
    bool follow;                        /* follow redirects (at most 10) */
    bool fail_on_error;                 /* a status >= 400 fails the transfer */
    int64_t timeout_ms;                 /* the action's own limit, 0: none */
    const char *tls_ca_file;            /* TLS, NULL and false: curl's defaults */
    const char *tls_cert_file;
    const char *tls_key_file;
    bool tls_insecure;
    actcurl_sink_fn sink;
    void *sink_arg;
    size_t max_body;                    /* bytes kept without a sink */
};

/* What a transfer gave. body is malloc'd and NUL-terminated (never NULL
 * after actcurl_run); free the result with actcurl_result_free. */
struct actcurl_result {
    CURLcode code;                      /* CURLE_OK when a response arrived */
    long status;                        /* HTTP status, 0 when none (or file://) */
    char *body;
    size_t body_len;
    bool body_cut;                      /* more arrived than max_body */
    uint64_t bytes;                     /* body bytes received in all */
    bool timed_out;                     /* the timeout or the deadline passed */
    bool step_deadline;                 /* ... and it was the step's deadline */
    bool cancelled;                     /* api->cancelled() became true */
    int64_t duration_ms;
    int64_t limit_ms;                   /* the limit that applied, 0: none */
    char error[CURL_ERROR_SIZE + 64];   /* why it failed, "" when it did not */
};

/* Once per process, from the plugin's load(): curl_global_init. */
ACTCURL_HIDDEN int actcurl_global_init(void);

/*
 * Perform req on a fresh easy handle, within the smaller of req->timeout_ms
 * and api->time_left_ms(ins), and stopped soon after api->cancelled(ins).
 * Returns PIPIT_OK when a response arrived (whatever its status),
 * PIPIT_ETIMEDOUT, PIPIT_ECANCELED, or PIPIT_EIO with the reason in
 * r->error. r is filled in every case.
 */
ACTCURL_HIDDEN int actcurl_run(const struct pipit_api *api, pipit_instance *ins,
                               const struct actcurl_req *req, struct actcurl_result *r);
ACTCURL_HIDDEN void actcurl_result_free(struct actcurl_result *r);

/* Monotonic milliseconds. */
ACTCURL_HIDDEN int64_t actcurl_now_ms(void);

#endif
