/* query_params.c: the query API's parameters from outside input: times, durations, labels, pages. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pipit/plugin.h>
#include "query_params.h"

#define NS_PER_S 1000000000LL

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

/* The parameters each endpoint takes, NULL-terminated. */
static const char *const agents_keys[] = { "limit", "offset", NULL };
static const char *const series_keys[] = { "metric", "labels", "host", "from", "to", "step",
                                           "agg", "limit", "offset", NULL };
static const char *const logs_keys[] = { "host", "level", "text", "from", "to", "limit",
                                         "offset", NULL };
static const char *const costs_keys[] = { "group_by", "from", "to", "step", "limit",
                                          "offset", NULL };
static const char *const deployments_keys[] = { "plan", "host", "from", "to", "limit",
                                                "offset", NULL };

static const char *const throughput_keys[] = { "from", "to", "step", NULL };

static const char *const *endpoint_keys(enum query_endpoint ep)
{
    switch (ep) {
    case QUERY_AGENTS: return agents_keys;
    case QUERY_SERIES: return series_keys;
    case QUERY_LOGS: return logs_keys;
    case QUERY_COSTS: return costs_keys;
    case QUERY_DEPLOYMENTS: return deployments_keys;
    case QUERY_THROUGHPUT: return throughput_keys;
    }
    return agents_keys;
}

int query_endpoint_parse(const char *path)
{
    static const struct { const char *path; enum query_endpoint ep; } routes[] = {
        { "/v1/agents", QUERY_AGENTS }, { "/v1/query", QUERY_SERIES },
        { "/v1/logs", QUERY_LOGS }, { "/v1/costs", QUERY_COSTS },
        { "/v1/deployments", QUERY_DEPLOYMENTS }, { "/v1/throughput", QUERY_THROUGHPUT },
    };
    if (!path)
        return -1;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(path, routes[i].path) == 0)
            return (int)routes[i].ep;
    return -1;
}

const char *query_level_name(int level)
{
    return level >= 0 && level < 5 ? level_names[level] : "any";
}

/*
 * A non-negative decimal scaled by unit (nanoseconds per whole unit):
 * digits[.digits], at most 9 fraction digits, none finer than a
 * nanosecond. Refuses overflow.
 */
static int parse_scaled(const char *s, size_t len, int64_t unit, int64_t *out)
{
    int64_t whole = 0, frac = 0, place = unit;
    size_t i = 0, nd = 0;

    for (; i < len && isdigit((unsigned char)s[i]); i++, nd++) {
        if (whole > (INT64_MAX - 9) / 10)
            return PIPIT_EINVAL;
        whole = whole * 10 + (s[i] - '0');
    }
    if (i < len && s[i] == '.') {
        size_t nf = 0;
        for (i++; i < len && isdigit((unsigned char)s[i]); i++, nf++) {
            if (nf >= 9 || place % 10 != 0)
                return PIPIT_EINVAL;
            place /= 10;
            frac += (s[i] - '0') * place;
        }
        if (nf == 0)
            return PIPIT_EINVAL;
        nd += nf;
    }
    if (i != len || nd == 0 || whole > (INT64_MAX - frac) / unit)
        return PIPIT_EINVAL;
    *out = whole * unit + frac;
    return PIPIT_OK;
}

int query_parse_duration(const char *s, int64_t *ns)
{
    static const struct { const char *suffix; int64_t unit; } units[] = {
        { "ms", 1000000LL }, { "s", NS_PER_S }, { "m", 60 * NS_PER_S },
        { "h", 3600 * NS_PER_S }, { "d", 86400 * NS_PER_S },
    };
    if (!s || !*s)
        return PIPIT_EINVAL;
    size_t len = strlen(s);
    size_t n = 0;
    while (n < len && (isdigit((unsigned char)s[n]) || s[n] == '.'))
        n++;
    int64_t unit = NS_PER_S;
    if (n < len) {
        bool found = false;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcmp(s + n, units[i].suffix) == 0) {
                unit = units[i].unit;
                found = true;
            }
        if (!found)
            return PIPIT_EINVAL;
    }
    int64_t v;
    if (parse_scaled(s, n, unit, &v) != PIPIT_OK || v <= 0)
        return PIPIT_EINVAL;
    *ns = v;
    return PIPIT_OK;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac]Z" (or a lower-case t and z, or a space). */
static int parse_rfc3339(const char *s, int64_t *ns)
{
    size_t len = strlen(s);
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    if (len < 20)
        return PIPIT_EINVAL;
    for (size_t i = 0; i < 19; i++) {
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i])
                            : shape[i] == 'T' ? (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
                                              : s[i] != shape[i])
            return PIPIT_EINVAL;
    }
    if (s[len - 1] != 'Z' && s[len - 1] != 'z')
        return PIPIT_EINVAL;
    struct tm tm = { 0 };
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    tm.tm_sec = atoi(s + 17);
    if (tm.tm_year < 70 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return PIPIT_EINVAL;
    int64_t frac = 0;
    if (len > 20) {
        /* ".digits" between the seconds and the Z */
        char buf[16] = "0";
        size_t fl = len - 20;           /* ".ddd" */
        if (s[19] != '.' || fl < 2 || fl > 10)
            return PIPIT_EINVAL;
        memcpy(buf + 1, s + 19, fl);
        buf[fl + 1] = '\0';
        if (parse_scaled(buf, fl + 1, NS_PER_S, &frac) != PIPIT_OK)
            return PIPIT_EINVAL;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || (int64_t)t > INT64_MAX / NS_PER_S - 1)
        return PIPIT_EINVAL;
    *ns = (int64_t)t * NS_PER_S + frac;
    return PIPIT_OK;
}

int query_parse_time(const char *s, int64_t now_ns, int64_t *ns)
{
    int64_t d;

    if (!s || !*s)
        return PIPIT_EINVAL;
    if (strcmp(s, "now") == 0) {
        *ns = now_ns;
        return PIPIT_OK;
    }
    const char *rel = strncmp(s, "now-", 4) == 0 ? s + 4 : s[0] == '-' ? s + 1 : NULL;
    if (rel) {
        if (query_parse_duration(rel, &d) != PIPIT_OK || d > now_ns)
            return PIPIT_EINVAL;
        *ns = now_ns - d;
        return PIPIT_OK;
    }
    if (strchr(s, '-'))
        return parse_rfc3339(s, ns);
    return parse_scaled(s, strlen(s), NS_PER_S, ns);
}

/* A label key or a group_by: letters, digits, '_', '.', '-'. */
static bool label_key_ok(const char *k, size_t n)
{
    if (n == 0 || n > QUERY_MAX_VALUE)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '_' && k[i] != '.' && k[i] != '-')
            return false;
    return true;
}

/* labels=k=v,k2=v2: at most QUERY_MAX_LABELS, keys as label_key_ok, values non-empty. */
static int parse_labels(const char *s, struct query_request *r, char *why, size_t whylen)
{
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        if (!eq) {
            snprintf(why, whylen, "labels: \"%.*s\" is not key=value", (int)(n > 64 ? 64 : n), p);
            return PIPIT_EINVAL;
        }
        size_t kl = (size_t)(eq - p), vl = n - kl - 1;
        if (!label_key_ok(p, kl)) {
            snprintf(why, whylen, "labels: a key must be 1 to %d letters, digits, '_', '.' "
                     "or '-'", QUERY_MAX_VALUE);
            return PIPIT_EINVAL;
        }
        if (vl == 0 || vl > QUERY_MAX_VALUE) {
            snprintf(why, whylen, "labels: the value of \"%.*s\" must be 1 to %d bytes",
                     (int)(kl > 64 ? 64 : kl), p, QUERY_MAX_VALUE);
            return PIPIT_EINVAL;
        }
        if (r->nlabels == QUERY_MAX_LABELS) {
            snprintf(why, whylen, "labels: at most %d matchers", QUERY_MAX_LABELS);
            return PIPIT_EINVAL;
        }
        struct query_label *l = &r->labels[r->nlabels++];
        memcpy(l->key, p, kl);
        l->key[kl] = '\0';
        memcpy(l->value, eq + 1, vl);
        l->value[vl] = '\0';
        p += n;
        if (*p == ',') {
            p++;
            if (!*p) {
                snprintf(why, whylen, "labels: a trailing comma");
                return PIPIT_EINVAL;
            }
        }
    }
    return PIPIT_OK;
}

/* A decimal integer in [lo, hi]. */
static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = 0;
    if (!*s || strlen(s) > 18)
        return PIPIT_EINVAL;
    for (const char *p = s; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return PIPIT_EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi)
        return PIPIT_EINVAL;
    *out = v;
    return PIPIT_OK;
}

static int copy_str(char *dst, const char *key, const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);
    if (n > QUERY_MAX_VALUE) {
        snprintf(why, whylen, "%s: longer than %d bytes", key, QUERY_MAX_VALUE);
        return PIPIT_EINVAL;
    }
    memcpy(dst, v, n + 1);
    return PIPIT_OK;
}

/* The value of key among args, or NULL; *dup set when it is given twice. */
static const char *arg_get(const struct query_arg *args, size_t nargs, const char *key)
{
    for (size_t i = 0; i < nargs; i++)
        if (strcmp(args[i].key, key) == 0)
            return args[i].value ? args[i].value : "";
    return NULL;
}

/*
 * The checks every endpoint shares: every key known and given once, with
 * a value. Returns PIPIT_OK or PIPIT_EINVAL with why.
 */
static int check_keys(enum query_endpoint ep, const struct query_arg *args, size_t nargs,
                      char *why, size_t whylen)
{
    const char *const *keys = endpoint_keys(ep);
    for (size_t i = 0; i < nargs; i++) {
        const char *k = args[i].key ? args[i].key : "";
        bool known = false;
        for (size_t j = 0; keys[j]; j++)
            if (strcmp(keys[j], k) == 0)
                known = true;
        if (!known) {
            int n = snprintf(why, whylen, "unknown parameter \"%.64s\" (expected", k);
            for (size_t j = 0; keys[j] && n > 0 && (size_t)n < whylen; j++)
                n += snprintf(why + n, whylen - (size_t)n, "%s%s", j ? ", " : " ", keys[j]);
            if (n > 0 && (size_t)n < whylen)
                snprintf(why + n, whylen - (size_t)n, ")");
            return PIPIT_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(args[j].key, k) == 0) {
                snprintf(why, whylen, "%s: given more than once", k);
                return PIPIT_EINVAL;
            }
        if (!args[i].value || !*args[i].value) {
            snprintf(why, whylen, "%s: empty value", k);
            return PIPIT_EINVAL;
        }
    }
    return PIPIT_OK;
}

int query_params_parse(enum query_endpoint ep, const struct query_arg *args, size_t nargs,
                       int64_t now_ns, struct query_request *r, char *why, size_t whylen)
{
    const char *v;

    memset(r, 0, sizeof *r);
    r->ep = ep;
    r->limit = QUERY_LIMIT_DEFAULT;
    r->min_level = -1;
    r->agg = QUERY_AVG;
    if (check_keys(ep, args, nargs, why, whylen) != PIPIT_OK)
        return PIPIT_EINVAL;

    /* Time range: [now - 1 h, now) for series, [now - 24 h, now) otherwise;
     * deployments and costs look back further by default. */
    int64_t span = ep == QUERY_SERIES || ep == QUERY_THROUGHPUT ? 3600 * NS_PER_S
                 : ep == QUERY_LOGS ? 86400 * NS_PER_S : 30 * 86400 * NS_PER_S;
    r->to_ns = now_ns;
    if ((v = arg_get(args, nargs, "to")) && query_parse_time(v, now_ns, &r->to_ns) != PIPIT_OK) {
        snprintf(why, whylen, "to: \"%.64s\" is not a time (Unix seconds, RFC 3339 in UTC, "
                 "now or now-DURATION)", v);
        return PIPIT_EINVAL;
    }
    r->from_ns = r->to_ns > span ? r->to_ns - span : 0;
    if ((v = arg_get(args, nargs, "from")) &&
        query_parse_time(v, now_ns, &r->from_ns) != PIPIT_OK) {
        snprintf(why, whylen, "from: \"%.64s\" is not a time (Unix seconds, RFC 3339 in UTC, "
                 "now or now-DURATION)", v);
        return PIPIT_EINVAL;
    }
    if (ep != QUERY_AGENTS && r->from_ns >= r->to_ns) {
        snprintf(why, whylen, "from: must be before to");
        return PIPIT_EINVAL;
    }

    if ((v = arg_get(args, nargs, "step"))) {
        if (query_parse_duration(v, &r->step_ns) != PIPIT_OK || r->step_ns < NS_PER_S) {
            snprintf(why, whylen, "step: \"%.64s\" is not a duration of 1s or more "
                     "(e.g. 30s, 5m, 1h)", v);
            return PIPIT_EINVAL;
        }
    } else if (ep == QUERY_SERIES || ep == QUERY_THROUGHPUT) {
        /* about 60 points, in whole seconds */
        int64_t s = (r->to_ns - r->from_ns) / 60;
        r->step_ns = s < NS_PER_S ? NS_PER_S : (s + NS_PER_S - 1) / NS_PER_S * NS_PER_S;
    }
    if (r->step_ns && (r->to_ns - r->from_ns) / r->step_ns >= QUERY_MAX_BUCKETS) {
        snprintf(why, whylen, "step: (to - from) / step is more than %d buckets; raise step "
                 "or narrow from/to", QUERY_MAX_BUCKETS);
        return PIPIT_EINVAL;
    }

    if ((v = arg_get(args, nargs, "limit")) &&
        parse_int(v, 1, QUERY_LIMIT_MAX, &r->limit) != PIPIT_OK) {
        snprintf(why, whylen, "limit: must be an integer from 1 to %d", QUERY_LIMIT_MAX);
        return PIPIT_EINVAL;
    }
    if ((v = arg_get(args, nargs, "offset")) &&
        parse_int(v, 0, QUERY_OFFSET_MAX, &r->offset) != PIPIT_OK) {
        snprintf(why, whylen, "offset: must be an integer from 0 to %d", QUERY_OFFSET_MAX);
        return PIPIT_EINVAL;
    }

    if ((v = arg_get(args, nargs, "metric")) && copy_str(r->metric, "metric", v, why, whylen))
        return PIPIT_EINVAL;
    if (ep == QUERY_SERIES && !r->metric[0]) {
        snprintf(why, whylen, "metric: required (the metric name, e.g. metric=cpu.time_seconds)");
        return PIPIT_EINVAL;
    }
    if ((v = arg_get(args, nargs, "host")) && copy_str(r->host, "host", v, why, whylen))
        return PIPIT_EINVAL;
    if ((v = arg_get(args, nargs, "text")) && copy_str(r->text, "text", v, why, whylen))
        return PIPIT_EINVAL;
    if ((v = arg_get(args, nargs, "plan")) && copy_str(r->plan, "plan", v, why, whylen))
        return PIPIT_EINVAL;
    if ((v = arg_get(args, nargs, "labels")) && parse_labels(v, r, why, whylen) != PIPIT_OK)
        return PIPIT_EINVAL;
    if ((v = arg_get(args, nargs, "group_by"))) {
        if (!label_key_ok(v, strlen(v))) {
            snprintf(why, whylen, "group_by: must be a label name (letters, digits, '_', "
                     "'.' or '-')");
            return PIPIT_EINVAL;
        }
        memcpy(r->group_by, v, strlen(v) + 1);
    } else if (ep == QUERY_COSTS) {
        snprintf(why, whylen, "group_by: required (a label name, e.g. group_by=team)");
        return PIPIT_EINVAL;
    }
    if ((v = arg_get(args, nargs, "level"))) {
        for (int i = 0; i < 5; i++)
            if (strcmp(v, level_names[i]) == 0)
                r->min_level = i;
        if (r->min_level < 0) {
            snprintf(why, whylen, "level: \"%.64s\" is not one of error, warn, info, debug, "
                     "trace", v);
            return PIPIT_EINVAL;
        }
    }
    if ((v = arg_get(args, nargs, "agg"))) {
        static const char *const aggs[] = { "avg", "min", "max", "sum", "count", "last" };
        int found = -1;
        for (int i = 0; i < 6; i++)
            if (strcmp(v, aggs[i]) == 0)
                found = i;
        if (found < 0) {
            snprintf(why, whylen, "agg: \"%.64s\" is not one of avg, min, max, sum, count, "
                     "last", v);
            return PIPIT_EINVAL;
        }
        r->agg = (enum query_agg)found;
    }
    return PIPIT_OK;
}
