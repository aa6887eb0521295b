/* query_params.h: the JSON query API's parameters, parsed and validated from a request's arguments. */
#ifndef PIPIT_QUERY_PARAMS_H
#define PIPIT_QUERY_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define QUERY_MAX_LABELS     16         /* label matchers of labels= */
#define QUERY_LIMIT_DEFAULT  100        /* rows (or series, groups, runs) a page */
#define QUERY_LIMIT_MAX      1000
#define QUERY_OFFSET_MAX     1000000
#define QUERY_MAX_BUCKETS    2000       /* (to - from) / step */
#define QUERY_MAX_VALUE      256        /* bytes of one string parameter */

/* The endpoints under /v1/. */
enum query_endpoint {
    QUERY_AGENTS,                       /* /v1/agents */
    QUERY_SERIES,                       /* /v1/query */
    QUERY_LOGS,                         /* /v1/logs */
    QUERY_COSTS,                        /* /v1/costs */
    QUERY_DEPLOYMENTS,                  /* /v1/deployments */
    QUERY_THROUGHPUT                    /* /v1/throughput */
};

/* How /v1/query folds the samples of a bucket into one point. */
enum query_agg { QUERY_AVG, QUERY_MIN, QUERY_MAX, QUERY_SUM, QUERY_COUNT, QUERY_LAST };

struct query_label {                    /* one key=value matcher */
    char key[QUERY_MAX_VALUE + 1];
    char value[QUERY_MAX_VALUE + 1];
};

/* A validated request; strings are "" when not given. */
struct query_request {
    enum query_endpoint ep;
    int64_t from_ns, to_ns;             /* [from, to): Unix nanoseconds */
    int64_t step_ns;                    /* 0: none (costs without step) */
    int64_t limit, offset;
    enum query_agg agg;
    int min_level;                      /* logs: 0 error .. 4 trace; -1 any */
    char metric[QUERY_MAX_VALUE + 1];
    char host[QUERY_MAX_VALUE + 1];
    char text[QUERY_MAX_VALUE + 1];
    char group_by[QUERY_MAX_VALUE + 1];
    char plan[QUERY_MAX_VALUE + 1];
    struct query_label labels[QUERY_MAX_LABELS];
    size_t nlabels;
};

/* One argument of the request, as libmicrohttpd decoded it (value may be NULL). */
struct query_arg {
    const char *key;
    const char *value;
};

/*
 * The endpoint a path names ("/v1/agents" ...), or -1 for any other path.
 */
int query_endpoint_parse(const char *path);

/*
 * Validate the arguments of a request to endpoint ep at now_ns (the wall
 * clock, for relative times and defaults) into r. Unknown, repeated,
 * empty, malformed or out-of-range parameters are refused: returns
 * PIPIT_OK, or PIPIT_EINVAL with a message naming the parameter in why.
 */
int query_params_parse(enum query_endpoint ep, const struct query_arg *args, size_t nargs,
                       int64_t now_ns, struct query_request *r, char *why, size_t whylen);

/*
 * A time parameter: Unix seconds with up to 9 decimals ("1765090000.5"),
 * RFC 3339 in UTC ("2026-12-07T06:00:00Z", fraction allowed), "now", or
 * "now-DURATION" / "-DURATION" relative to now_ns. PIPIT_OK or PIPIT_EINVAL.
 */
int query_parse_time(const char *s, int64_t now_ns, int64_t *ns);

/*
 * A duration: a number and a unit, ms, s, m, h or d ("30s", "1.5h"), or a
 * bare number of seconds. Positive only. PIPIT_OK or PIPIT_EINVAL.
 */
int query_parse_duration(const char *s, int64_t *ns);

/* The name of a log level index (0 error .. 4 trace). */
const char *query_level_name(int level);

#endif
