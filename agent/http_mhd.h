/* http_mhd.h: the libmicrohttpd functions the HTTP endpoints call, loaded with dlopen only when the endpoints start. */
#ifndef PIPIT_HTTP_MHD_H
#define PIPIT_HTTP_MHD_H

#include <stddef.h>
#include <microhttpd.h>

/*
 * pipitd does not link libmicrohttpd: it and GnuTLS below it would be
 * mapped (about 3 MiB resident) in every daemon, and the endpoints are off
 * unless http.enabled (or agent.role: aggregator). The header still gives
 * the types and constants; the functions are reached through http_mhd,
 * filled from the library whose SONAME configure found (PIPIT_MHD_SONAME).
 *
 * X(field, symbol): one line per function, the field typed from the
 * header's own declaration so that a mismatch fails to compile.
 */
#define HTTP_MHD_FUNCTIONS(X)                                   \
    X(start_daemon, MHD_start_daemon)                           \
    X(stop_daemon, MHD_stop_daemon)                             \
    X(get_daemon_info, MHD_get_daemon_info)                     \
    X(is_feature_supported, MHD_is_feature_supported)           \
    X(lookup_connection_value, MHD_lookup_connection_value)     \
    X(get_connection_values, MHD_get_connection_values)         \
    X(create_response_from_buffer, MHD_create_response_from_buffer) \
    X(add_response_header, MHD_add_response_header)             \
    X(queue_response, MHD_queue_response)                       \
    X(destroy_response, MHD_destroy_response)

struct http_mhd {
#define HTTP_MHD_FIELD(field, symbol) __typeof__(&symbol) field;
    HTTP_MHD_FUNCTIONS(HTTP_MHD_FIELD)
#undef HTTP_MHD_FIELD
};

/* Filled by http_mhd_load; read only after it returned PIPIT_OK. */
extern struct http_mhd http_mhd;

/*
 * Open libmicrohttpd and fill http_mhd, once per process (later calls
 * return the first outcome; the library stays loaded). Returns PIPIT_OK,
 * or PIPIT_ENOENT with the library's name and dlerror()'s reason in
 * err. Thread-safe.
 *
 * Test hook: PIPIT_TEST_MHD_SONAME, when set (and the process is not
 * set-id), names the library to open instead, so that the tests can show
 * what a host without libmicrohttpd gets. Leave it unset.
 */
int http_mhd_load(char *err, size_t errlen);

/* The library http_mhd_load opens: the test hook's value or the SONAME. */
const char *http_mhd_soname(void);

#endif
