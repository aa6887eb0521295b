/* http_parse.h: what the HTTP endpoints parse themselves: the listen address and the bearer header. */
#ifndef PIPIT_HTTP_PARSE_H
#define PIPIT_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A parsed listen address. */
struct http_server_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/*
 * Parse "HOST:PORT" where HOST is an IPv4 literal or "[IPv6]" (port 0:
 * any free port). Returns PIPIT_OK, or PIPIT_EINVAL with the reason in why.
 */
int http_parse_listen(const char *s, struct http_server_addr *a, char *why, size_t whylen);

/* True for 127.0.0.0/8 and ::1: reachable from this host only. */
bool http_addr_is_loopback(const struct http_server_addr *a);

/*
 * The credential of an "Authorization: Bearer <token>" header value (the
 * scheme is case-insensitive, blanks around the token are skipped): a
 * pointer into header and its length in len, or NULL when header is NULL
 * or not a bearer credential.
 */
const char *http_bearer_token(const char *header, size_t *len);

#endif
