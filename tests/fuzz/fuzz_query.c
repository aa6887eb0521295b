/* fuzz_query.c: libFuzzer target for the query API's parameters (agent/query_params.c), the request's arguments as libmicrohttpd hands them over. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pipit/plugin.h>
#include "query_params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW (1765090000LL * 1000000000LL)

/* True when s is NUL-terminated within a field of QUERY_MAX_VALUE + 1 bytes. */
static bool bounded(const char *s) { return memchr(s, '\0', QUERY_MAX_VALUE + 1) != NULL; }

/*
 * The first byte picks the endpoint; the rest is "k=v&k=v..." split into
 * NUL-terminated arguments (a key without '=' has a NULL value). A request
 * that parses must hold its bounds: a page within the limits, from before
 * to, a step of a second or more giving fewer than QUERY_MAX_BUCKETS
 * buckets, at most QUERY_MAX_LABELS matchers, every string terminated.
 * The whole input is also tried as one time and one duration.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct query_arg args[64];
    struct query_request r;
    char why[512];
    size_t n = 0;
    int64_t ns;

    if (size < 1 || size > 4096)
        return 0;
    enum query_endpoint ep = (enum query_endpoint)(data[0] % 6);
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (query_parse_time(s, NOW, &ns) == PIPIT_OK && ns < 0)
        abort();
    if (query_parse_duration(s, &ns) == PIPIT_OK && ns <= 0)
        abort();
    for (char *p = s, *next; p && n < 64; p = next) {
        next = strchr(p, '&');
        if (next)
            *next++ = '\0';
        char *eq = strchr(p, '=');
        if (eq)
            *eq++ = '\0';
        args[n++] = (struct query_arg){ p, eq };
    }
    if (query_params_parse(ep, args, n, NOW, &r, why, sizeof why) == PIPIT_OK) {
        if (r.limit < 1 || r.limit > QUERY_LIMIT_MAX || r.offset < 0 ||
            r.offset > QUERY_OFFSET_MAX || r.nlabels > QUERY_MAX_LABELS)
            abort();
        if (ep != QUERY_AGENTS && r.from_ns >= r.to_ns)
            abort();
        if (r.step_ns && (r.step_ns < 1000000000LL ||
                          (r.to_ns - r.from_ns) / r.step_ns >= QUERY_MAX_BUCKETS))
            abort();
        if ((ep == QUERY_SERIES || ep == QUERY_THROUGHPUT) && !r.step_ns)
            abort();
        if (!bounded(r.metric) || !bounded(r.host) || !bounded(r.text) ||
            !bounded(r.group_by) || !bounded(r.plan))
            abort();
        for (size_t i = 0; i < r.nlabels; i++)
            if (!r.labels[i].key[0] || !r.labels[i].value[0] || !bounded(r.labels[i].key) ||
                !bounded(r.labels[i].value))
                abort();
        if (r.min_level < -1 || r.min_level > 4)
            abort();
    } else if (!why[0] || !memchr(why, '\0', sizeof why)) {
        abort();                        /* a refusal always says why */
    }
    free(s);
    return 0;
}
