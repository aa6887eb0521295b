/* http_server.h: the daemon's HTTP endpoints (/metrics, /healthz, /readyz, the /v1 query API, /) on libmicrohttpd. */
#ifndef PIPIT_HTTP_SERVER_H
#define PIPIT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "http_parse.h"

struct http_server_config {
    const char *listen;                 /* as for http_parse_listen */
    const char *tls_cert, *tls_key;     /* PEM files, or NULL: plain HTTP */
    const char *token_file;             /* NULL: no authentication */
    unsigned max_connections;
    unsigned timeout_s;                 /* idle connection timeout */
    size_t max_request_bytes;           /* request line and headers */
    int64_t stall_timeout_ns;           /* /healthz: heartbeat older is a stall */
    const char *query_db;               /* SQLite store of /v1 and /; NULL: off */
    int64_t query_timeout_ms;           /* bound on one query */
    unsigned query_threads;             /* server threads when query_db is set */
};

/* The statuses the server answers with, counted for /metrics. */
#define HTTP_SERVER_STATUSES(X) \
    X(200) X(400) X(401) X(404) X(405) X(413) X(414) X(500) X(503)
enum {
#define HTTP_SERVER_ST(code) HTTP_ST_##code,
    HTTP_SERVER_STATUSES(HTTP_SERVER_ST)
#undef HTTP_SERVER_ST
    HTTP_ST_MAX
};
extern const unsigned http_server_status_codes[HTTP_ST_MAX];

struct http_server;

/*
 * Start serving on c->listen from a thread of libmicrohttpd's. The token
 * and TLS files are read now (their contents are never logged). Until the
 * first http_server_publish(), /metrics is empty and /readyz answers 503.
 * Returns the server (stop with http_server_stop) or NULL with the reason
 * in err.
 */
struct http_server *http_server_start(const struct http_server_config *c,
                                      char *err, size_t errlen);
/* The port bound (useful with port 0). */
unsigned http_server_port(const struct http_server *s);
/*
 * Loop thread: what /metrics and /readyz serve from now on, and a beat of
 * the loop's heart for /healthz. The contents of metrics and ready are
 * taken (the buffers are left empty).
 */
void http_server_publish(struct http_server *s, struct buf *metrics, struct buf *ready,
                         bool ready_ok);
/* Requests answered so far with each status (indexed as HTTP_ST_*). */
void http_server_counts(const struct http_server *s, uint64_t counts[HTTP_ST_MAX]);
/* Stop serving (waits for the server's thread) and free s. NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
