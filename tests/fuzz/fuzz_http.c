/* fuzz_http.c: libFuzzer target for what the HTTP endpoints parse themselves: the bearer header (http_bearer_token) and the listen address (http_parse_listen). */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input as a NUL-terminated header value, as libmicrohttpd hands it
 * over. A credential must lie inside the value, be non-empty, and have no
 * blank at either end.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct http_server_addr a;
    char why[128];
    size_t n = 0;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    const char *t = http_bearer_token(s, &n);
    if (t) {
        size_t len = strlen(s);
        if (t < s || t + n > s + len || n == 0 || t[0] == ' ' || t[0] == '\t' ||
            t[n - 1] == ' ' || t[n - 1] == '\t')
            abort();
    }
    int r = http_parse_listen(s, &a, why, sizeof why);
    if (r == PIPIT_OK && a.len != sizeof(struct sockaddr_in) &&
        a.len != sizeof(struct sockaddr_in6))
        abort();
    if (r != PIPIT_OK && r != PIPIT_EINVAL)
        abort();
    free(s);
    return 0;
}
