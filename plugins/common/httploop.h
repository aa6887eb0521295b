/* httploop.h: libcurl's multi interface driven by the pipit loop, for the plugins that speak HTTP. */
#ifndef PIPIT_PLUGINS_HTTPLOOP_H
#define PIPIT_PLUGINS_HTTPLOOP_H

#include <pipit/plugin.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One driver per plugin instance, made in init() and freed in fini(), on the
 * loop thread. Transfers run concurrently on curl's non-blocking sockets,
 * which the driver hands to api->watch_fd(); curl's timeouts and the
 * plugin's own periodic tick share the instance's one timer
 * (api->timer_start), so a plugin that uses the driver must not call
 * timer_start()/watch_fd() itself.
 *
 * A transfer is a CURL easy handle the plugin made and configured (URL,
 * timeouts, TLS, headers). The driver sets its write callback, private
 * pointer and error buffer, collects the body up to a cap, and calls the
 * plugin's done callback once, on the loop thread, when it ends; the easy
 * handle then belongs to the plugin again (to read curl_easy_getinfo() and
 * curl_easy_header() from, to reuse or to clean up).
 */

/* Compiled into each plugin that uses it; never exported from the .so. */
#define HTTPLOOP_HIDDEN __attribute__((visibility("hidden")))

struct httploop;

/* The outcome of one transfer; valid during the done callback only. */
struct httploop_result {
    CURLcode code;              /* CURLE_OK when a response arrived */
    long status;                /* HTTP status, 0 when none arrived */
    const char *error;          /* why it failed (curl's words), "" when OK */
    const char *body;           /* the body, NUL-terminated, never NULL */
    size_t body_len;
    bool too_large;             /* the body passed the cap: code is
                                 * CURLE_WRITE_ERROR and body is cut */
    double seconds;             /* wall time from start to end */
};

typedef void (*httploop_done_fn)(void *arg, CURL *easy,
                                 const struct httploop_result *res);
typedef void (*httploop_tick_fn)(void *arg);

/* Once per process, from the plugin's load(): curl_global_init. */
HTTPLOOP_HIDDEN int httploop_global_init(const struct pipit_api *api);

/* A driver for ins; NULL when out of memory or curl refused (logged). */
HTTPLOOP_HIDDEN struct httploop *httploop_new(const struct pipit_api *api,
                                              pipit_instance *ins);

/* Abort what is running (done callbacks are not called; each easy handle
 * is handed to abandon(), which may be NULL, to be freed by the plugin)
 * and free the driver. */
HTTPLOOP_HIDDEN void httploop_free(struct httploop *hl,
                                   void (*abandon)(void *arg, CURL *easy));

/* Call tick(arg) first_ms from now and then every every_ms (0: once);
 * ticks missed while the loop was busy are skipped, not bunched. */
HTTPLOOP_HIDDEN int httploop_tick(struct httploop *hl, uint64_t first_ms,
                                  uint64_t every_ms, httploop_tick_fn tick,
                                  void *arg);

/* Start a transfer; its body is kept up to max_body bytes. PIPIT_OK, or an
 * error when curl refused the handle (done is then not called). */
HTTPLOOP_HIDDEN int httploop_start(struct httploop *hl, CURL *easy,
                                   size_t max_body, httploop_done_fn done,
                                   void *arg);

/* Set the TLS options the HTTP plugins share on easy: the CA file, the
 * client certificate and its key, and skipping verification; NULL and false
 * keep libcurl's defaults. Returns CURLE_OK or libcurl's refusal. */
HTTPLOOP_HIDDEN CURLcode httploop_set_tls(CURL *easy, const char *ca_file,
                                          const char *cert_file, const char *key_file,
                                          bool insecure);

/* Check the TLS file options the HTTP plugins share: tls_cert_file and
 * tls_key_file go together, and each file given (NULL: none) can be read
 * now. Returns NULL, or the first problem as "KEY: reason" in why. */
HTTPLOOP_HIDDEN const char *httploop_check_tls_files(const char *ca_file,
                                                     const char *cert_file,
                                                     const char *key_file,
                                                     char *why, size_t whylen);

/* True when s is an RFC 9110 token (a header name, a method). */
HTTPLOOP_HIDDEN bool httploop_token(const char *s);

/*
 * Append the headers option (name to value) to *list for CURLOPT_HTTPHEADER:
 * each name a token, no CR or LF in a value, an empty value sent as
 * "Name;" (curl's form: "Name:" would remove the header), at most max
 * headers (0: no bound). Values are secret: a problem names the header
 * only, and each line is wiped once curl has copied it. Returns NULL, or
 * the first problem as "headers...: reason" in why ("out of memory" when
 * that is the problem); *list keeps what was appended (free it with
 * curl_slist_free_all either way).
 */
HTTPLOOP_HIDDEN const char *httploop_headers(const struct pipit_strmap *headers, size_t max,
                                             struct curl_slist **list, char *why,
                                             size_t whylen);

/* What the HTTP plugins read from a URL option; free with httploop_url_free. */
struct httploop_url {
    char *shown;                /* the URL without user:password, for logs */
    char *host;
    char *port;                 /* the scheme's default when the URL has none */
    bool https;
};

/*
 * Read url, an http:// or https:// URL with a host, into u. Returns NULL,
 * or why it is refused as "KEY: reason" in why ("out of memory" when that
 * is the problem); the URL is not repeated when it may hold credentials.
 * u is filled only on success.
 */
HTTPLOOP_HIDDEN const char *httploop_url_parse(const char *url, const char *key,
                                               struct httploop_url *u, char *why,
                                               size_t whylen);
HTTPLOOP_HIDDEN void httploop_url_free(struct httploop_url *u);

/* Transfers started and not ended yet. */
HTTPLOOP_HIDDEN unsigned httploop_running(const struct httploop *hl);

#endif
