/* http_parse.c: the listen address of the HTTP endpoints and the bearer credential of a request. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pipit/plugin.h>
#include "http_parse.h"

int http_parse_listen(const char *s, struct http_server_addr *a, char *why, size_t whylen)
{
    char host[64];
    const char *colon, *port;
    char *end;

    memset(a, 0, sizeof *a);
    if (!s || !*s) {
        snprintf(why, whylen, "empty address (expected HOST:PORT, e.g. 127.0.0.1:9790)");
        return PIPIT_EINVAL;
    }
    bool v6 = s[0] == '[';
    colon = v6 ? strstr(s, "]:") : strrchr(s, ':');
    if (!colon || (!v6 && strchr(s, ':') != colon)) {
        snprintf(why, whylen, "\"%s\" is not HOST:PORT (IPv6: [ADDR]:PORT)", s);
        return PIPIT_EINVAL;
    }
    size_t hlen = (size_t)(colon - s) - (v6 ? 1 : 0);
    port = colon + (v6 ? 2 : 1);
    if (hlen == 0 || hlen >= sizeof host) {
        snprintf(why, whylen, "\"%s\": missing or overlong host", s);
        return PIPIT_EINVAL;
    }
    memcpy(host, s + (v6 ? 1 : 0), hlen);
    host[hlen] = '\0';
    unsigned long p = strtoul(port, &end, 10);
    if (!*port || *end || p > 65535 || *port == '-' || *port == '+') {
        snprintf(why, whylen, "\"%s\": port must be a number from 0 to 65535", s);
        return PIPIT_EINVAL;
    }
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a->ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
            a->len = sizeof *in6;
            return PIPIT_OK;
        }
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&a->ss;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)p);
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
            a->len = sizeof *in4;
            return PIPIT_OK;
        }
    }
    snprintf(why, whylen, "\"%s\": host must be an IP address literal", host);
    return PIPIT_EINVAL;
}

bool http_addr_is_loopback(const struct http_server_addr *a)
{
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
}

const char *http_bearer_token(const char *header, size_t *len)
{
    if (!header)
        return NULL;
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *t = header + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0)
        return NULL;
    *len = n;
    return t;
}
