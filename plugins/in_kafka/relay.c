/* relay.c: one JSON record line of an agent batch parsed back into a record for relaying. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "relay.h"

static const char *const kinds[] = { NULL, "metric", "log", "cost", "event" };
static const char *const level_names[] = { NULL, "error", "warn", "info", "debug", "trace" };

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static double jnum(json_t *v)
{
    if (json_is_number(v))
        return json_number_value(v);
    const char *s = json_string_value(v);
    if (s && strcmp(s, "NaN") == 0)
        return __builtin_nan("");
    if (s && strcmp(s, "+Inf") == 0)
        return __builtin_inf();
    if (s && strcmp(s, "-Inf") == 0)
        return -__builtin_inf();
    return 0;
}

/*
 * The unsigned integer member k of o into *out: absent or not an integer
 * reads as 0; a negative integer is refused (false), as it has no unsigned
 * value and would be written back as a number no JSON reader takes.
 */
static bool juint(json_t *o, const char *k, uint64_t *out)
{
    json_t *v = json_object_get(o, k);
    json_int_t i = json_integer_value(v);

    *out = 0;
    if (i < 0)
        return false;
    *out = (uint64_t)i;
    return true;
}

/*
 * The record's own origin, which a relayed record must keep exactly: an
 * object with the agent id, a sequence number (an integer >= 0) and an
 * index (an integer of 32 bits). Returns false when it is anything else.
 */
static bool origin_of(json_t *origin, struct pipit_record *rec)
{
    json_t *seq = json_object_get(origin, "seq"), *index = json_object_get(origin, "index");

    if (!json_is_object(origin) || !json_is_integer(seq) || json_integer_value(seq) < 0 ||
        !json_is_integer(index) || json_integer_value(index) < 0 ||
        json_integer_value(index) > UINT32_MAX)
        return false;
    rec->origin_agent = jstr(origin, "agent");
    rec->origin_seq = (uint64_t)json_integer_value(seq);
    rec->origin_index = (uint32_t)json_integer_value(index);
    return rec->origin_agent != NULL;
}

static int level_of(const char *s)
{
    for (int i = 1; i <= 5; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    return PIPIT_LOG_INFO;
}

static int type_of(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "gauge") == 0)
        return PIPIT_GAUGE;
    if (strcmp(s, "counter") == 0)
        return PIPIT_COUNTER;
    if (strcmp(s, "histogram") == 0)
        return PIPIT_HISTOGRAM;
    return 0;
}

/*
 * Re-emit one JSON record line of the batch as the same record, keeping its
 * host, instance and time, with its origin (agent, seq, index): relayed
 * records keep the origin they already carry. Returns the emit status, or
 * PIPIT_EPARSE for a line that is not a record of the batch's kind. The
 * record's strings point into the parsed document, freed after emit.
 */
int relay_parse_json(const char *line, size_t len, int kind, const char *agent, uint64_t seq,
                     uint32_t index, relay_emit_cb emit, void *arg)
{
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    struct pipit_label labels[RELAY_MAX_LABELS];
    double bounds[256];
    uint64_t counts[256];
    int r = PIPIT_EPARSE;

    if (kind < PIPIT_METRIC || kind > PIPIT_EVENT || !json_is_object(o))
        goto out;
    const char *k = jstr(o, "kind");
    if (!k || strcmp(k, kinds[kind]) != 0)
        goto out;
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = kind,
        .time_ns = json_integer_value(json_object_get(o, "time")),
        .host = jstr(o, "host"), .instance = jstr(o, "instance"),
        .origin_agent = agent, .origin_seq = seq, .origin_index = index,
    };
    if (rec.time_ns <= 0 || !rec.host || !*rec.host || !rec.instance || !*rec.instance)
        goto out;
    json_t *origin = json_object_get(o, "origin");
    if (origin && !origin_of(origin, &rec))
        goto out;
    json_t *lab = json_object_get(o, "labels"), *v;
    const char *key;
    if (lab && !json_is_object(lab))
        goto out;
    json_object_foreach(lab, key, v) {
        if (rec.nlabels == RELAY_MAX_LABELS || !json_is_string(v))
            goto out;
        labels[rec.nlabels].key = key;
        labels[rec.nlabels].value = json_string_value(v);
        rec.nlabels++;
    }
    rec.labels = labels;
    switch (kind) {
    case PIPIT_METRIC:
        rec.name = jstr(o, "name");
        rec.metric_type = type_of(jstr(o, "type"));
        if (rec.metric_type == PIPIT_HISTOGRAM) {
            json_t *b = json_object_get(o, "buckets"), *e;
            size_t i;
            if (!json_is_array(b) || json_array_size(b) > 256)
                goto out;
            json_array_foreach(b, i, e) {
                bounds[i] = jnum(json_object_get(e, "le"));
                if (!juint(e, "count", &counts[i]))
                    goto out;
            }
            rec.bucket_bounds = bounds;
            rec.bucket_counts = counts;
            rec.nbuckets = json_array_size(b);
            rec.sum = jnum(json_object_get(o, "sum"));
            if (!juint(o, "count", &rec.count))
                goto out;
        } else {
            rec.value = jnum(json_object_get(o, "value"));
        }
        break;
    case PIPIT_LOG:
        rec.level = level_of(jstr(o, "level"));
        rec.message = jstr(o, "message");
        rec.source = jstr(o, "source");
        if (!juint(o, "offset", &rec.offset))
            goto out;
        break;
    case PIPIT_COST: {
        /* amount_micros, when the line has it, is the exact amount: a
         * line from an agent before ABI 1.1 has only amount. */
        json_t *micros = json_object_get(o, "amount_micros");
        if (micros && !json_is_integer(micros))
            goto out;
        rec.amount_micros = json_integer_value(micros);
        rec.amount = jnum(json_object_get(o, "amount"));
        rec.currency = jstr(o, "currency");
        rec.resource = jstr(o, "resource");
        rec.period_start_ns = json_integer_value(json_object_get(o, "period_start"));
        rec.period_end_ns = json_integer_value(json_object_get(o, "period_end"));
        break;
    }
    case PIPIT_EVENT:
        rec.name = jstr(o, "name");
        rec.status = jstr(o, "status");
        rec.message = jstr(o, "message");
        break;
    }
    r = emit(arg, &rec);
out:
    json_decref(o);
    return r;
}


/* ---- the line as the encoder writes it ---------------------------------- */

/*
 * A reader of exactly the lines record_encode_json() writes: keys in its
 * order, no white space, strings of printable ASCII with the short escapes,
 * numbers in JSON's grammar within range. That is every line of a pipit
 * agent, read here about ten times faster than through jansson. Anything
 * else (another key order, unknown keys, \u escapes, UTF-8, a duplicate
 * label, an out-of-range number) makes the reader give up, and the line is
 * read by jansson instead: both readers hand the same record to emit, which
 * tests/fuzz/fuzz_relay checks on every input.
 */
struct cur {
    const char *p, *end;
    char *out;                          /* decoded strings, NUL-terminated */
};

static bool lit(struct cur *c, const char *s)
{
    size_t n = strlen(s);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool str(struct cur *c, const char **v)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    c->p++;
    *v = c->out;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;

        if (ch == '"') {
            *c->out++ = '\0';
            return true;
        }
        if (ch < 0x20 || ch >= 0x7f)
            return false;               /* control or not ASCII: jansson's */
        if (ch == '\\') {
            if (c->p >= c->end)
                return false;
            switch (*c->p++) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            default: return false;      /* \u: jansson's */
            }
        }
        *c->out++ = (char)ch;
    }
    return false;
}

/* A JSON number token; *is_int when it has no fraction or exponent. */
static bool number_token(struct cur *c, const char **start, size_t *n, bool *is_int)
{
    const char *p = c->p, *e = c->end;

    *start = p;
    *is_int = true;
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0')
        p++;
    else if (p < e && *p >= '1' && *p <= '9')
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (p < e && *p == '.') {
        *is_int = false;
        if (++p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        *is_int = false;
        if (++p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return false;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    *n = (size_t)(p - *start);
    c->p = p;
    return *n < 64;
}

/* An integer token within int64_t. */
static bool intg(struct cur *c, int64_t *v)
{
    const char *t;
    size_t n;
    bool is_int;

    if (!number_token(c, &t, &n, &is_int) || !is_int)
        return false;
    bool neg = *t == '-';
    uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = neg; i < n; i++) {
        unsigned d = (unsigned)(t[i] - '0');
        if (m > (lim - d) / 10)
            return false;               /* out of range: jansson refuses it */
        m = m * 10 + d;
    }
    *v = neg ? (int64_t)(0 - m) : (int64_t)m;
    return true;
}

/* A number as jnum() reads it: a JSON number, or "NaN", "+Inf", "-Inf". */
static bool num(struct cur *c, double *v)
{
    const char *t;
    size_t n;
    bool is_int;
    char tmp[64];

    if (lit(c, "\"NaN\"")) {
        *v = __builtin_nan("");
        return true;
    }
    if (lit(c, "\"+Inf\"")) {
        *v = __builtin_inf();
        return true;
    }
    if (lit(c, "\"-Inf\"")) {
        *v = -__builtin_inf();
        return true;
    }
    if (!number_token(c, &t, &n, &is_int))
        return false;
    if (is_int) {                       /* jansson: an integer, then a double */
        struct cur ic = { t, t + n, NULL };
        int64_t i;
        if (!intg(&ic, &i))
            return false;
        *v = (double)i;
        return true;
    }
    memcpy(tmp, t, n);
    tmp[n] = '\0';
    errno = 0;
    *v = strtod(tmp, NULL);
    return errno == 0 && isfinite(*v);  /* overflow and underflow: jansson's */
}

/* One of names[1..n] in quotes; its index. */
static bool name_of(struct cur *c, const char *const *names, int n, int *out)
{
    const char *v;

    if (!str(c, &v))
        return false;
    for (int i = 1; i <= n; i++)
        if (names[i] && strcmp(v, names[i]) == 0) {
            *out = i;
            return true;
        }
    return false;
}

/*
 * Read the line into rec (strings in c->out) the way relay_parse_json()
 * does, refusing what it refuses. Returns 1 with *r set (PIPIT_EPARSE or
 * emit's status), or 0 when the line is not in the encoder's form.
 */
static int relay_fast(struct cur *c, int kind, const char *agent, uint64_t seq,
                      uint32_t index, relay_emit_cb emit, void *arg, int *r)
{
    static const char *const types[] = { NULL, "gauge", "counter", "histogram" };
    struct pipit_label labels[RELAY_MAX_LABELS];
    double bounds[256];
    uint64_t counts[256];
    struct pipit_record rec = {
        .struct_size = sizeof rec, .kind = kind,
        .origin_agent = agent, .origin_seq = seq, .origin_index = index,
    };
    int k, t;
    int64_t i64;

    *r = PIPIT_EPARSE;
    if (!lit(c, "{\"kind\":") || !name_of(c, kinds, 4, &k) || !lit(c, ",\"time\":") ||
        !intg(c, &rec.time_ns) || !lit(c, ",\"host\":") || !str(c, &rec.host) ||
        !lit(c, ",\"instance\":") || !str(c, &rec.instance))
        return 0;
    if (lit(c, ",\"origin\":")) {
        int64_t s, x;
        if (!lit(c, "{\"agent\":") || !str(c, &rec.origin_agent) || !lit(c, ",\"seq\":") ||
            !intg(c, &s) || !lit(c, ",\"index\":") || !intg(c, &x) || !lit(c, "}"))
            return 0;
        if (s < 0 || x < 0 || x > UINT32_MAX)
            return 1;                   /* as origin_of() */
        rec.origin_seq = (uint64_t)s;
        rec.origin_index = (uint32_t)x;
    }
    switch (k) {
    case PIPIT_METRIC:
        if (!lit(c, ",\"name\":") || !str(c, &rec.name) || !lit(c, ",\"type\":") ||
            !name_of(c, types, 3, &t))
            return 0;
        rec.metric_type = t;
        if (t == PIPIT_HISTOGRAM) {
            if (!lit(c, ",\"buckets\":["))
                return 0;
            while (!lit(c, "]")) {
                if (rec.nbuckets == 256)
                    return 0;
                if ((rec.nbuckets && !lit(c, ",")) || !lit(c, "{\"le\":") ||
                    !num(c, &bounds[rec.nbuckets]) || !lit(c, ",\"count\":") ||
                    !intg(c, &i64) || !lit(c, "}"))
                    return 0;
                if (i64 < 0)
                    return 1;           /* as juint() */
                counts[rec.nbuckets++] = (uint64_t)i64;
            }
            rec.bucket_bounds = bounds;
            rec.bucket_counts = counts;
            if (!lit(c, ",\"sum\":") || !num(c, &rec.sum) || !lit(c, ",\"count\":") ||
                !intg(c, &i64))
                return 0;
            if (i64 < 0)
                return 1;
            rec.count = (uint64_t)i64;
        } else if (!lit(c, ",\"value\":") || !num(c, &rec.value)) {
            return 0;
        }
        break;
    case PIPIT_LOG:
        if (!lit(c, ",\"level\":") || !name_of(c, level_names, 5, &rec.level) ||
            !lit(c, ",\"message\":") || !str(c, &rec.message))
            return 0;
        if (lit(c, ",\"source\":")) {
            if (!str(c, &rec.source) || !lit(c, ",\"offset\":") || !intg(c, &i64))
                return 0;
            if (i64 < 0)
                return 1;
            rec.offset = (uint64_t)i64;
        }
        break;
    case PIPIT_COST:
        if (!lit(c, ",\"amount\":") || !num(c, &rec.amount) ||
            !lit(c, ",\"amount_micros\":") || !intg(c, &rec.amount_micros) ||
            !lit(c, ",\"currency\":") || !str(c, &rec.currency) ||
            !lit(c, ",\"resource\":") || !str(c, &rec.resource) ||
            !lit(c, ",\"period_start\":") || !intg(c, &rec.period_start_ns) ||
            !lit(c, ",\"period_end\":") || !intg(c, &rec.period_end_ns))
            return 0;
        break;
    default:
        if (!lit(c, ",\"name\":") || !str(c, &rec.name) || !lit(c, ",\"status\":") ||
            !str(c, &rec.status) || (lit(c, ",\"message\":") && !str(c, &rec.message)))
            return 0;
        break;
    }
    if (!lit(c, ",\"labels\":{"))
        return 0;
    while (!lit(c, "}")) {
        if (rec.nlabels == RELAY_MAX_LABELS)
            return 0;                   /* jansson's: it says why */
        struct pipit_label *l = &labels[rec.nlabels];
        if ((rec.nlabels && !lit(c, ",")) || !str(c, &l->key) || !lit(c, ":") ||
            !str(c, &l->value))
            return 0;
        for (size_t j = 0; j < rec.nlabels; j++)
            if (strcmp(labels[j].key, l->key) == 0)
                return 0;               /* a duplicate key: jansson refuses it */
        rec.nlabels++;
    }
    rec.labels = labels;
    if (!lit(c, "}") || c->p != c->end)
        return 0;
    if (k != kind || rec.time_ns <= 0 || !*rec.host || !*rec.instance)
        return 1;
    *r = emit(arg, &rec);
    return 1;
}

int relay_parse(const char *line, size_t len, int kind, const char *agent, uint64_t seq,
                uint32_t index, relay_emit_cb emit, void *arg)
{
    char small[4096];
    char *out = len < sizeof small ? small : malloc(len + 1);
    int r;

    if (kind >= PIPIT_METRIC && kind <= PIPIT_EVENT && out) {
        struct cur c = { line, line + len, out };
        int done = relay_fast(&c, kind, agent, seq, index, emit, arg, &r);
        if (out != small)
            free(out);
        if (done)
            return r;
    } else if (out != small) {
        free(out);
    }
    return relay_parse_json(line, len, kind, agent, seq, index, emit, arg);
}
