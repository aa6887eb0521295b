/* test_query_params.c: the query API's parameter parsing and validation: times, durations, labels, pages, 400 messages. */
#include <stdio.h>
#include <string.h>
#include <pipit/plugin.h>
#include "query_params.h"
#include "../tap.h"

#define S 1000000000LL
#define NOW (1765090000LL * S)

/* Parse "k=v&k2=v2" (no decoding) for endpoint ep; why gets the message. */
static int parse(enum query_endpoint ep, const char *qs, struct query_request *r, char *why,
                 size_t whylen)
{
    static char copy[2048];
    struct query_arg args[32];
    size_t n = 0;

    snprintf(copy, sizeof copy, "%s", qs);
    for (char *p = copy, *next; p && *p && n < 32; p = next) {
        next = strchr(p, '&');
        if (next)
            *next++ = '\0';
        char *eq = strchr(p, '=');
        if (eq)
            *eq++ = '\0';
        args[n++] = (struct query_arg){ p, eq };
    }
    why[0] = '\0';
    return query_params_parse(ep, args, n, NOW, r, why, whylen);
}

/* The request must be refused with a message containing param. */
static void refused(enum query_endpoint ep, const char *qs, const char *param)
{
    struct query_request r;
    char why[512];
    int rc = parse(ep, qs, &r, why, sizeof why);
    ok(rc == PIPIT_EINVAL && strstr(why, param) != NULL, "refused \"%s\": %s", qs, why);
}

static void test_times(void)
{
    int64_t ns = 0;
    ok(query_parse_time("1765090000", NOW, &ns) == PIPIT_OK && ns == 1765090000LL * S,
       "Unix seconds");
    ok(query_parse_time("1765090000.25", NOW, &ns) == PIPIT_OK && ns == 1765090000LL * S + S / 4,
       "Unix seconds with a fraction");
    ok(query_parse_time("1.000000001", NOW, &ns) == PIPIT_OK && ns == S + 1,
       "nine fraction digits: nanoseconds");
    ok(query_parse_time("1.0000000001", NOW, &ns) == PIPIT_EINVAL, "ten fraction digits refused");
    ok(query_parse_time("2025-12-07T06:46:40Z", NOW, &ns) == PIPIT_OK && ns == NOW,
       "RFC 3339 in UTC");
    ok(query_parse_time("2025-12-07T06:46:40.5Z", NOW, &ns) == PIPIT_OK && ns == NOW + S / 2,
       "RFC 3339 with a fraction");
    ok(query_parse_time("2025-12-07T06:46:40+01:00", NOW, &ns) == PIPIT_EINVAL,
       "RFC 3339 with an offset refused (UTC only)");
    ok(query_parse_time("2025-13-07T06:46:40Z", NOW, &ns) == PIPIT_EINVAL, "month 13 refused");
    ok(query_parse_time("now", NOW, &ns) == PIPIT_OK && ns == NOW, "now");
    ok(query_parse_time("now-1h", NOW, &ns) == PIPIT_OK && ns == NOW - 3600 * S, "now-1h");
    ok(query_parse_time("-90s", NOW, &ns) == PIPIT_OK && ns == NOW - 90 * S, "-90s");
    ok(query_parse_time("now-", NOW, &ns) == PIPIT_EINVAL, "now- alone refused");
    ok(query_parse_time("99999999999999999999", NOW, &ns) == PIPIT_EINVAL, "overflow refused");
    ok(query_parse_time("9223372037", NOW, &ns) == PIPIT_EINVAL,
       "seconds beyond 64-bit nanoseconds refused");
    ok(query_parse_time("12ab", NOW, &ns) == PIPIT_EINVAL, "trailing garbage refused");
    ok(query_parse_time(".", NOW, &ns) == PIPIT_EINVAL, "a lone dot refused");
}

static void test_durations(void)
{
    int64_t ns = 0;
    ok(query_parse_duration("30s", &ns) == PIPIT_OK && ns == 30 * S, "30s");
    ok(query_parse_duration("1.5h", &ns) == PIPIT_OK && ns == 5400 * S, "1.5h");
    ok(query_parse_duration("250ms", &ns) == PIPIT_OK && ns == S / 4, "250ms");
    ok(query_parse_duration("2d", &ns) == PIPIT_OK && ns == 2 * 86400 * S, "2d");
    ok(query_parse_duration("60", &ns) == PIPIT_OK && ns == 60 * S, "a bare number is seconds");
    ok(query_parse_duration("0s", &ns) == PIPIT_EINVAL, "zero refused");
    ok(query_parse_duration("5w", &ns) == PIPIT_EINVAL, "unknown unit refused");
    ok(query_parse_duration("0.0000001ms", &ns) == PIPIT_EINVAL, "finer than a nanosecond refused");
    ok(query_parse_duration("", &ns) == PIPIT_EINVAL, "empty refused");
}

static void test_requests(void)
{
    struct query_request r;
    char why[512];

    ok(parse(QUERY_AGENTS, "", &r, why, sizeof why) == PIPIT_OK && r.limit == QUERY_LIMIT_DEFAULT &&
       r.offset == 0, "agents: defaults");
    ok(parse(QUERY_SERIES, "metric=cpu&labels=cpu=0,state=user&step=1m&agg=max", &r, why,
             sizeof why) == PIPIT_OK && r.nlabels == 2 && strcmp(r.labels[1].key, "state") == 0 &&
       strcmp(r.labels[1].value, "user") == 0 && r.step_ns == 60 * S && r.agg == QUERY_MAX &&
       r.to_ns == NOW && r.from_ns == NOW - 3600 * S, "query: labels, step, agg and the last hour");
    ok(parse(QUERY_SERIES, "metric=cpu&from=now-6h", &r, why, sizeof why) == PIPIT_OK &&
       r.step_ns == 360 * S, "query: the default step gives about 60 points");
    ok(parse(QUERY_SERIES, "metric=cpu&labels=path=/a=b", &r, why, sizeof why) == PIPIT_OK &&
       strcmp(r.labels[0].value, "/a=b") == 0, "query: a label value may hold '='");
    ok(parse(QUERY_LOGS, "host=web-01&level=warn&text=disk full&limit=1000&offset=20", &r, why,
             sizeof why) == PIPIT_OK && r.min_level == 1 && r.limit == 1000 && r.offset == 20 &&
       strcmp(r.text, "disk full") == 0 && r.from_ns == NOW - 86400 * S,
       "logs: filters, page, the last day");
    ok(parse(QUERY_COSTS, "group_by=team&step=1d", &r, why, sizeof why) == PIPIT_OK &&
       strcmp(r.group_by, "team") == 0 && r.step_ns == 86400 * S &&
       r.from_ns == NOW - 30 * 86400 * S, "costs: group_by, step, the last 30 days");
    ok(parse(QUERY_DEPLOYMENTS, "plan=web&host=web-01", &r, why, sizeof why) == PIPIT_OK &&
       strcmp(r.plan, "web") == 0, "deployments: plan and host");
    ok(parse(QUERY_THROUGHPUT, "", &r, why, sizeof why) == PIPIT_OK && r.step_ns == 60 * S,
       "throughput: a minute per bucket over the last hour");

    refused(QUERY_SERIES, "labels=a=b", "metric");
    refused(QUERY_SERIES, "metric=x&step=0s", "step");
    refused(QUERY_SERIES, "metric=x&step=500ms", "step");
    refused(QUERY_SERIES, "metric=x&from=now-7d&step=1m", "step");
    refused(QUERY_SERIES, "metric=x&agg=median", "agg");
    refused(QUERY_SERIES, "metric=x&labels=a", "labels");
    refused(QUERY_SERIES, "metric=x&labels=a=", "labels");
    refused(QUERY_SERIES, "metric=x&labels=a=b,", "labels");
    refused(QUERY_SERIES, "metric=x&labels=a\"b=c", "labels");
    refused(QUERY_SERIES, "metric=x&labels=a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,"
            "l=12,m=13,n=14,o=15,p=16,q=17", "labels");
    refused(QUERY_LOGS, "limit=0", "limit");
    refused(QUERY_LOGS, "limit=1001", "limit");
    refused(QUERY_LOGS, "limit=-1", "limit");
    refused(QUERY_LOGS, "limit=1e3", "limit");
    refused(QUERY_LOGS, "offset=1000001", "offset");
    refused(QUERY_LOGS, "level=fatal", "level");
    refused(QUERY_LOGS, "from=yesterday", "from");
    refused(QUERY_LOGS, "to=now&from=now", "from");
    refused(QUERY_LOGS, "to=1e9", "to");
    refused(QUERY_LOGS, "host=", "host");
    refused(QUERY_LOGS, "host", "host");
    refused(QUERY_LOGS, "host=a&host=b", "host");
    refused(QUERY_LOGS, "metric=x", "metric");
    refused(QUERY_AGENTS, "from=now", "from");
    refused(QUERY_COSTS, "", "group_by");
    refused(QUERY_COSTS, "group_by=a'b", "group_by");
    refused(QUERY_DEPLOYMENTS, "step=1m&from=now-30d&to=now", "step");

    char longv[400];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    char qs[512];
    snprintf(qs, sizeof qs, "text=%s", longv);
    refused(QUERY_LOGS, qs, "text");

    is_int(query_endpoint_parse("/v1/costs"), QUERY_COSTS, "route /v1/costs");
    is_int(query_endpoint_parse("/v1/costs/"), -1, "no route /v1/costs/");
    is_str(query_level_name(1), "warn", "level names");
}

int main(void)
{
    plan(64);
    test_times();
    test_durations();
    test_requests();
    return done_testing();
}
