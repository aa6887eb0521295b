/* test_options.c: option tables applied to config maps, and the value parsers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../tap.h"
#include "../../agent/config.h"   /* not the build's autoconf config.h */
#include "diag.h"
#include "options.h"

#define SECRET "hunter2-XYZZY"

struct ctx {
    bool enabled;
    int64_t count;
    double ratio;
    const char *name;
    int64_t interval;
    int64_t max_bytes;
    struct pipit_strlist tags;
    const char *password;
    int64_t pin;
    double any;
    const char *nodef;
    int64_t nodef_int;
    struct pipit_strlist hosts;
};

static const struct pipit_option opts[] = {
    PIPIT_OPT_BOOL("enabled", "true", struct ctx, enabled, "On or off"),
    PIPIT_OPT_INT("count", "5", 1, 10, struct ctx, count, "How many"),
    PIPIT_OPT_DOUBLE("ratio", "0.5", 0, 1, struct ctx, ratio, "A fraction"),
    PIPIT_OPT_STRING("name", "anon", struct ctx, name, "A name"),
    PIPIT_OPT_DURATION("interval", "10s", 1000, 3600000, struct ctx, interval,
                       "How often"),
    PIPIT_OPT_SIZE("max_bytes", "1MiB", 1024, 1 << 30, struct ctx, max_bytes,
                   "How much"),
    PIPIT__OPT("tags", PIPIT_OPT_T_LIST, "[a, b]", struct ctx, tags, 0, 1, 0,
               "Labels"),
    PIPIT_OPT_SECRET_STRING("password", NULL, struct ctx, password, "A secret"),
    PIPIT__OPT("pin", PIPIT_OPT_T_INT, NULL, struct ctx, pin, PIPIT_OPT_SECRET,
               0, 9999, "A secret number"),
    PIPIT_OPT_DOUBLE("any", NULL, 1, 0, struct ctx, any, "Any double"),
    PIPIT_OPT_STRING("nodef", NULL, struct ctx, nodef, "No default"),
    PIPIT_OPT_INT("nodef_int", NULL, 1, 0, struct ctx, nodef_int, "No default"),
    PIPIT_OPT_LIST("hosts", struct ctx, hosts, "Hosts"),
    PIPIT_OPT_END
};

struct req_ctx {
    const char *brokers;
    int64_t port;
};

static const struct pipit_option req_opts[] = {
    PIPIT_OPT_STRING_REQ("brokers", struct req_ctx, brokers, "Bootstrap servers"),
    PIPIT__OPT("port", PIPIT_OPT_T_INT, NULL, struct req_ctx, port,
               PIPIT_OPT_REQUIRED, 1, 65535, "Port"),
    PIPIT_OPT_END
};

static char *diag_text(const struct diag *d)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);

    if (!f)
        return strdup("");
    diag_print(d, f);
    fclose(f);
    return s;
}

static bool has_error(const struct diag *d, int line, const char *key,
                      const char *needle)
{
    for (size_t i = 0; i < d->count; i++) {
        const struct diag_item *it = &d->items[i];
        if (it->line != line)
            continue;
        if (key ? !it->key || strcmp(it->key, key) != 0 : it->key != NULL)
            continue;
        if (needle && !strstr(it->msg, needle))
            continue;
        return true;
    }
    return false;
}

/*
 * Load YAML text whose top-level key "o" holds the options, and apply tbl
 * to it with prefix "inputs[0]". Returns opt_apply's result; *store and d
 * are left for the caller to check and free.
 */
static int apply_text(const struct pipit_option *tbl, const char *text,
                      void *ctx, struct opt_store **store, struct diag *d)
{
    struct cfg_doc *doc;
    int rc;

    diag_init(d);
    doc = cfg_load_string(text, strlen(text), "c.yaml", d);
    if (!doc) {
        char *s = diag_text(d);
        diag("config did not load:\n%s", s);
        free(s);
        *store = NULL;
        return -999;
    }
    rc = opt_apply(tbl, doc->root ? cfg_get(doc->root, "o") : NULL, NULL, ctx,
                   "c.yaml", "inputs[0]", store, d);
    cfg_free(doc);
    return rc;
}

/* Apply and expect exactly one error at line/key containing needle. */
static void expect_error(const struct pipit_option *tbl, const char *text,
                         int line, const char *key, const char *needle,
                         const char *what)
{
    struct ctx c;
    struct opt_store *s;
    struct diag d;
    int rc;
    bool good;

    memset(&c, 0, sizeof(c));
    rc = apply_text(tbl, text, &c, &s, &d);
    good = rc == PIPIT_ECONFIG && s == NULL && d.count == 1 &&
           has_error(&d, line, key, needle);
    ok(good, "%s", what);
    if (!good) {
        char *out = diag_text(&d);
        diag("rc %d, %zu errors:\n%s", rc, d.count, out);
        free(out);
    }
    opt_store_free(s);
    diag_free(&d);
}

static void test_defaults(void)
{
    struct ctx c;
    struct opt_store *s = NULL;
    struct diag d;
    int rc;

    memset(&c, 0, sizeof(c));
    c.nodef_int = 77;                   /* no default: left alone */
    diag_init(&d);
    rc = opt_apply(opts, NULL, NULL, &c, "c.yaml", "x", &s, &d);
    is_int(rc, PIPIT_OK, "NULL map: all defaults");
    ok(s != NULL && d.count == 0, "store made, no errors");
    ok(c.enabled == true, "bool default");
    is_int(c.count, 5, "int default");
    ok(c.ratio == 0.5, "double default");
    is_str(c.name, "anon", "string default");
    is_int(c.interval, 10000, "duration default in ms");
    is_int(c.max_bytes, 1 << 20, "size default in bytes");
    ok(c.tags.count == 2 && strcmp(c.tags.items[0], "a") == 0 &&
       strcmp(c.tags.items[1], "b") == 0 && c.tags.items[2] == NULL,
       "list default from a flow list, NULL-terminated");
    ok(c.password == NULL && c.nodef == NULL && c.hosts.count == 0 &&
       c.hosts.items == NULL, "NULL default leaves the field zero");
    is_int(c.nodef_int, 77, "NULL default does not touch an int field");
    ok(opt_store_get(s, "count") == NULL, "opt_store_get: defaults are not 'set'");
    ok(opt_store_get(NULL, "count") == NULL, "opt_store_get(NULL)");
    opt_store_free(s);
    diag_free(&d);

    /* An empty map, and keys with no value, also mean defaults. */
    memset(&c, 0, sizeof(c));
    rc = apply_text(opts, "o:\n  count:\n  name: ~\n  tags:\n  hosts: null\n",
                    &c, &s, &d);
    is_int(rc, PIPIT_OK, "null values: defaults");
    ok(c.count == 5 && strcmp(c.name, "anon") == 0 && c.tags.count == 2 &&
       c.hosts.count == 0, "null values take the default");
    ok(opt_store_get(s, "count") == NULL, "a null value is not 'set'");
    opt_store_free(s);
    diag_free(&d);

    /* Scalar and empty list defaults. */
    {
        struct lctx { struct pipit_strlist a, b, c; } l;
        static const struct pipit_option lo[] = {
            PIPIT__OPT("a", PIPIT_OPT_T_LIST, "one", struct lctx, a, 0, 1, 0, ""),
            PIPIT__OPT("b", PIPIT_OPT_T_LIST, "[]", struct lctx, b, 0, 1, 0, ""),
            PIPIT__OPT("c", PIPIT_OPT_T_LIST, "", struct lctx, c, 0, 1, 0, ""),
            PIPIT_OPT_END
        };
        memset(&l, 0, sizeof(l));
        diag_init(&d);
        rc = opt_apply(lo, NULL, NULL, &l, "c.yaml", NULL, &s, &d);
        ok(rc == PIPIT_OK && l.a.count == 1 && strcmp(l.a.items[0], "one") == 0,
           "scalar list default: one item");
        ok(l.b.count == 0 && l.b.items && l.c.count == 0 && l.c.items,
           "[] and empty list defaults: empty lists");
        opt_store_free(s);
        diag_free(&d);
    }
}

static void test_values(void)
{
    struct ctx c;
    struct opt_store *s;
    struct diag d;
    int rc;
    const char *text =
        "o:\n"
        "  enabled: off\n"
        "  count: 10\n"
        "  ratio: 1e-1\n"
        "  name: \"\"\n"
        "  interval: 1.5m\n"
        "  max_bytes: 64KiB\n"
        "  tags: [x, \"y z\", 3]\n"
        "  password: pw\n"
        "  pin: \"0042\"\n"
        "  any: -inf\n"
        "  hosts: solo\n";

    memset(&c, 0, sizeof(c));
    rc = apply_text(opts, text, &c, &s, &d);
    is_int(rc, PIPIT_OK, "every type: applies");
    ok(c.enabled == false, "bool off");
    is_int(c.count, 10, "int at the top of its range");
    ok(fabs(c.ratio - 0.1) < 1e-12, "double in exponent form");
    is_str(c.name, "", "quoted empty string is a value");
    is_int(c.interval, 90000, "duration 1.5m");
    is_int(c.max_bytes, 65536, "size 64KiB");
    ok(c.tags.count == 3 && strcmp(c.tags.items[1], "y z") == 0 &&
       strcmp(c.tags.items[2], "3") == 0, "list from a sequence");
    is_str(c.password, "pw", "secret string stored");
    is_int(c.pin, 42, "quoted int with leading zeros");
    ok(isinf(c.any) && c.any < 0, "-inf allowed without a range");
    ok(c.hosts.count == 1 && strcmp(c.hosts.items[0], "solo") == 0 &&
       c.hosts.items[1] == NULL, "one scalar is a one-item list");
    is_str(opt_store_get(s, "interval"), "1.5m", "opt_store_get: configured text");
    is_str(opt_store_get(s, "tags"), "x,y z,3", "opt_store_get: list joined by ,");
    is_str(opt_store_get(s, "name"), "", "opt_store_get: empty string");
    ok(opt_store_get(s, "nope") == NULL, "opt_store_get: unknown key");
    opt_store_free(s);
    diag_free(&d);

    /* Empty sequence. */
    memset(&c, 0, sizeof(c));
    rc = apply_text(opts, "o:\n  hosts: []\n", &c, &s, &d);
    ok(rc == PIPIT_OK && c.hosts.count == 0 && c.hosts.items &&
       c.hosts.items[0] == NULL, "[] is an empty list");
    is_str(opt_store_get(s, "hosts"), "", "empty list text");
    opt_store_free(s);
    diag_free(&d);

    /* Host keys are skipped, and a hand-made map works too. */
    {
        struct cfg_node *m = cfg_new_map();
        static const char *const host[] = { "plugin", "interval", NULL };
        cfg_map_set(m, "plugin", "cpu");
        cfg_map_set(m, "interval", "not a duration");
        cfg_map_set(m, "count", "3");
        memset(&c, 0, sizeof(c));
        diag_init(&d);
        rc = opt_apply(opts, m, host, &c, "command line", NULL, &s, &d);
        ok(rc == PIPIT_OK && c.count == 3 && c.interval == 10000,
           "host keys are not the plugin's: skipped, default kept");
        opt_store_free(s);
        diag_free(&d);
        cfg_node_free(m);
    }

    /* nan and inf only without a range. */
    memset(&c, 0, sizeof(c));
    rc = apply_text(opts, "o:\n  any: nan\n", &c, &s, &d);
    ok(rc == PIPIT_OK && isnan(c.any), "nan allowed without a range");
    opt_store_free(s);
    diag_free(&d);
}

static void test_errors(void)
{
    expect_error(opts, "o:\n  intervl: 5s\n", 2, "inputs[0].intervl",
                 "unknown key 'intervl'; did you mean 'interval'?",
                 "unknown key with a suggestion");
    expect_error(opts, "o:\n  Max-Bytes: 1\n", 2, "inputs[0].Max-Bytes",
                 "did you mean 'max_bytes'?", "suggestion ignores case and -/_");
    expect_error(opts, "o:\n  enalbed: true\n", 2, "inputs[0].enalbed",
                 "did you mean 'enabled'?", "transposition is one edit");
    {
        struct ctx c;
        struct opt_store *s;
        struct diag d;
        memset(&c, 0, sizeof(c));
        apply_text(opts, "o:\n  colour: red\n", &c, &s, &d);
        ok(d.count == 1 && has_error(&d, 2, "inputs[0].colour", "unknown key 'colour'") &&
           !strstr(d.items[0].msg, "did you mean"), "no suggestion when none is close");
        opt_store_free(s);
        diag_free(&d);
    }
    expect_error(opts, "o:\n  count: 11\n", 2, "inputs[0].count",
                 "value 11 is out of range: must be between 1 and 10", "int above max");
    expect_error(opts, "o:\n  count: 0\n", 2, "inputs[0].count", "out of range",
                 "int below min");
    expect_error(opts, "o:\n  count: 1.5\n", 2, "inputs[0].count",
                 "expected int (a whole number), got \"1.5\"", "float for int");
    expect_error(opts, "o:\n  count: 0x10\n", 2, "inputs[0].count", "expected int",
                 "hex for int");
    expect_error(opts, "o:\n  count: 1e3\n", 2, "inputs[0].count", "expected int",
                 "exponent for int");
    expect_error(opts, "o:\n  count: \" 5\"\n", 2, "inputs[0].count", "expected int",
                 "leading space for int");
    expect_error(opts, "o:\n  nodef_int: 9223372036854775808\n", 2,
                 "inputs[0].nodef_int", "too large for a int", "int overflow");
    expect_error(opts, "o:\n  ratio: 1.5\n", 2, "inputs[0].ratio",
                 "must be between 0 and 1", "double above max");
    expect_error(opts, "o:\n  ratio: 0.5x\n", 2, "inputs[0].ratio",
                 "expected double, got \"0.5x\"", "junk after a double");
    expect_error(opts, "o:\n  ratio: 0x1p-2\n", 2, "inputs[0].ratio",
                 "expected double", "hexadecimal double");
    expect_error(opts, "o:\n  ratio: nan\n", 2, "inputs[0].ratio", "finite",
                 "nan with a range");
    expect_error(opts, "o:\n  ratio: inf\n", 2, "inputs[0].ratio", "finite",
                 "inf with a range");
    expect_error(opts, "o:\n  any: 1e999\n", 2, "inputs[0].any", "too large",
                 "double overflow");
    expect_error(opts, "o:\n  enabled: maybe\n", 2, "inputs[0].enabled",
                 "expected bool (true or false), got \"maybe\"", "bad bool");
    expect_error(opts, "o:\n  enabled: 1\n", 2, "inputs[0].enabled", "expected bool",
                 "1 is not a bool");
    expect_error(opts, "o:\n  interval: 500ms\n", 2, "inputs[0].interval",
                 "value 500ms is out of range: must be between 1s and 1h",
                 "duration below min, bounds shown as durations");
    expect_error(opts, "o:\n  interval: 2h\n", 2, "inputs[0].interval",
                 "out of range", "duration above max");
    expect_error(opts, "o:\n  interval: 10 s\n", 2, "inputs[0].interval",
                 "expected duration", "space inside a duration");
    expect_error(opts, "o:\n  interval: -5s\n", 2, "inputs[0].interval",
                 "expected duration", "negative duration");
    expect_error(opts, "o:\n  max_bytes: 2GiB\n", 2, "inputs[0].max_bytes",
                 "must be between 1KiB and 1GiB", "size above max, bounds as sizes");
    expect_error(opts, "o:\n  max_bytes: 12Q\n", 2, "inputs[0].max_bytes",
                 "expected size", "unknown size unit");
    expect_error(opts, "o:\n  name: {a: 1}\n", 2, "inputs[0].name",
                 "expected string, got a map", "map for a string");
    expect_error(opts, "o:\n  count:\n    - 1\n", 2, "inputs[0].count",
                 "expected int (a whole number), got a list", "list for an int");
    expect_error(opts, "o:\n  hosts: {a: 1}\n", 2, "inputs[0].hosts",
                 "got a map", "map for a list");
    expect_error(opts, "o:\n  hosts:\n    - a\n    - [b]\n", 4, "inputs[0].hosts[1]",
                 "list items must be scalars", "nested list item");
    expect_error(opts, "o:\n  hosts:\n    - a\n    -\n", 4, "inputs[0].hosts[1]",
                 "got null", "null list item");
    expect_error(opts, "o: [1, 2]\n", 1, "inputs[0]", "expected a map of options",
                 "options that are not a map");

    /* Required keys: missing at the map's line; null at the key's line. */
    expect_error(req_opts, "x: 1\no:\n  port: 9092\n", 2, "inputs[0].brokers",
                 "required key 'brokers' is missing", "missing required key");
    expect_error(req_opts, "o:\n  brokers:\n  port: 1\n", 2, "inputs[0].brokers",
                 "required key has no value", "required key with no value");
    {
        struct req_ctx c;
        struct opt_store *s;
        struct diag d;
        int rc;
        memset(&c, 0, sizeof(c));
        diag_init(&d);
        rc = opt_apply(req_opts, NULL, NULL, &c, "c.yaml", "out", &s, &d);
        ok(rc == PIPIT_ECONFIG && d.count == 2 &&
           has_error(&d, 0, "out.brokers", "missing") &&
           has_error(&d, 0, "out.port", "missing"),
           "NULL map: every required key missing");
        diag_free(&d);
        memset(&c, 0, sizeof(c));
        rc = apply_text(req_opts, "o:\n  brokers: \"\"\n  port: 1\n", &c, &s, &d);
        ok(rc == PIPIT_OK && c.brokers && !*c.brokers && c.port == 1,
           "required key with an empty string is set");
        opt_store_free(s);
        diag_free(&d);
    }

    /* A bad default in a table is the plugin's bug, reported as such. */
    {
        struct bctx { int64_t a; } c;
        static const struct pipit_option bad[] = {
            PIPIT_OPT_DURATION("a", "ten seconds", 1, 0, struct bctx, a, ""),
            PIPIT_OPT_END
        };
        struct opt_store *s;
        struct diag d;
        diag_init(&d);
        ok(opt_apply(bad, NULL, NULL, &c, "c.yaml", NULL, &s, &d) == PIPIT_ECONFIG &&
           has_error(&d, 0, "a", "built-in default \"ten seconds\" is invalid"),
           "invalid default reported");
        diag_free(&d);
    }
}

static void test_all_errors_and_cleanup(void)
{
    struct ctx c;
    struct opt_store *s;
    struct diag d;
    int rc;
    const char *text =
        "o:\n"                          /* 1 */
        "  name: kept\n"                /* 2 */
        "  count: 99\n"                 /* 3 */
        "  ratio: lots\n"               /* 4 */
        "  intervall: 5s\n"             /* 5 */
        "  tags: [a]\n"                 /* 6 */
        "  enabled: perhaps\n";         /* 7 */

    memset(&c, 0, sizeof(c));
    rc = apply_text(opts, text, &c, &s, &d);
    ok(rc == PIPIT_ECONFIG && s == NULL, "errors: PIPIT_ECONFIG, no store");
    is_int(d.count, 4, "all four errors reported");
    ok(has_error(&d, 3, "inputs[0].count", NULL) &&
       has_error(&d, 4, "inputs[0].ratio", NULL) &&
       has_error(&d, 5, "inputs[0].intervall", "did you mean 'interval'") &&
       has_error(&d, 7, "inputs[0].enabled", NULL), "each at its own line and key");
    ok(c.name == NULL && c.tags.items == NULL && c.tags.count == 0,
       "on failure no pointer into the freed store is left in ctx");
    diag_free(&d);
}

static void test_secrets(void)
{
    struct ctx c;
    struct opt_store *s;
    struct diag d;
    char *out;
    int rc;
    const char *text =
        "o:\n"
        "  count: ${PIPIT_T_SECRET}\n"
        "  interval: \"x${PIPIT_T_SECRET}\"\n"
        "  pin: " SECRET "\n"
        "  ratio: ${PIPIT_T_BIG}\n"
        "  max_bytes: ${PIPIT_T_SECRET}\n"
        "  enabled: ${PIPIT_T_SECRET}\n"
        "  nodef_int: ${PIPIT_T_HUGE}\n";

    setenv("PIPIT_T_SECRET", SECRET, 1);
    setenv("PIPIT_T_BIG", "7", 1);
    setenv("PIPIT_T_HUGE", "99999999999999999999", 1);
    memset(&c, 0, sizeof(c));
    rc = apply_text(opts, text, &c, &s, &d);
    out = diag_text(&d);
    ok(rc == PIPIT_ECONFIG && d.count == 7, "seven errors on secret values");
    ok(strstr(out, SECRET) == NULL, "no secret value in any message");
    ok(strstr(out, "99999999999999999999") == NULL && strstr(out, "value 7") == NULL,
       "out-of-range and overflowing secrets are not shown either");
    ok(has_error(&d, 4, "inputs[0].pin", "secret and not shown"),
       "PIPIT_OPT_SECRET hides a literal value");
    ok(has_error(&d, 2, "inputs[0].count", "secret and not shown"),
       "an expanded value is hidden");
    free(out);
    diag_free(&d);

    /* A secret that is valid is stored and readable by the plugin. */
    memset(&c, 0, sizeof(c));
    rc = apply_text(opts, "o:\n  password: \"${PIPIT_T_SECRET}\"\n", &c, &s, &d);
    ok(rc == PIPIT_OK && c.password && strcmp(c.password, SECRET) == 0,
       "expanded secret stored");
    is_str(opt_store_get(s, "password"), SECRET, "config_get returns the value");
    opt_store_free(s);
    diag_free(&d);
}

static void test_parsers(void)
{
    static const struct { const char *s; int rc; int64_t v; } dur[] = {
        { "0", PIPIT_OK, 0 },           { "1500", PIPIT_OK, 1500 },
        { "250ms", PIPIT_OK, 250 },     { "10s", PIPIT_OK, 10000 },
        { "5m", PIPIT_OK, 300000 },     { "1h", PIPIT_OK, 3600000 },
        { "2d", PIPIT_OK, 172800000 },  { "1.5s", PIPIT_OK, 1500 },
        { "0.25h", PIPIT_OK, 900000 },  { "1.0000000s", PIPIT_OK, 1000 },
        { "0.5ms", PIPIT_EINVAL, 0 },   { "0.0005s", PIPIT_EINVAL, 0 },
        { "", PIPIT_EINVAL, 0 },        { "s", PIPIT_EINVAL, 0 },
        { "-1s", PIPIT_EINVAL, 0 },     { "+1s", PIPIT_EINVAL, 0 },
        { "1S", PIPIT_EINVAL, 0 },      { "1sec", PIPIT_EINVAL, 0 },
        { "1s ", PIPIT_EINVAL, 0 },     { " 1s", PIPIT_EINVAL, 0 },
        { "1.s", PIPIT_EINVAL, 0 },     { ".5s", PIPIT_EINVAL, 0 },
        { "1..5s", PIPIT_EINVAL, 0 },   { "1e3", PIPIT_EINVAL, 0 },
        { "1m30s", PIPIT_EINVAL, 0 },   { "0x10", PIPIT_EINVAL, 0 },
        { "9223372036854775807", PIPIT_OK, INT64_MAX },
        { "9223372036854775808", PIPIT_ERANGE, 0 },
        { "106751991167d", PIPIT_OK, 106751991167LL * 86400000 },
        { "106751991168d", PIPIT_ERANGE, 0 },
        { "99999999999999999999999999h", PIPIT_ERANGE, 0 },
    };
    static const struct { const char *s; int rc; int64_t v; } sz[] = {
        { "0", PIPIT_OK, 0 },           { "512", PIPIT_OK, 512 },
        { "512B", PIPIT_OK, 512 },      { "64k", PIPIT_OK, 65536 },
        { "64K", PIPIT_OK, 65536 },     { "64KB", PIPIT_OK, 65536 },
        { "64KiB", PIPIT_OK, 65536 },   { "16M", PIPIT_OK, 16 << 20 },
        { "16MB", PIPIT_OK, 16 << 20 }, { "16MiB", PIPIT_OK, 16 << 20 },
        { "1G", PIPIT_OK, 1 << 30 },    { "1GB", PIPIT_OK, 1 << 30 },
        { "2GiB", PIPIT_OK, 2LL << 30 }, { "1T", PIPIT_OK, 1LL << 40 },
        { "1TiB", PIPIT_OK, 1LL << 40 }, { "1.5k", PIPIT_OK, 1536 },
        { "0.5MiB", PIPIT_OK, 1 << 19 }, { "0.1k", PIPIT_EINVAL, 0 },
        { "", PIPIT_EINVAL, 0 },        { "k", PIPIT_EINVAL, 0 },
        { "-1", PIPIT_EINVAL, 0 },      { "5 k", PIPIT_EINVAL, 0 },
        { "1P", PIPIT_EINVAL, 0 },      { "1KiBs", PIPIT_EINVAL, 0 },
        { "1.5", PIPIT_EINVAL, 0 },     { "1ki", PIPIT_EINVAL, 0 },
        { "8388607T", PIPIT_OK, 8388607LL << 40 },
        { "8388608T", PIPIT_ERANGE, 0 },
        { "9223372036854775807", PIPIT_OK, INT64_MAX },
        { "9223372036854775808", PIPIT_ERANGE, 0 },
    };
    static const struct { const char *s; int rc; bool v; } bo[] = {
        { "true", PIPIT_OK, true },  { "TRUE", PIPIT_OK, true },
        { "True", PIPIT_OK, true },  { "yes", PIPIT_OK, true },
        { "On", PIPIT_OK, true },    { "false", PIPIT_OK, false },
        { "No", PIPIT_OK, false },   { "OFF", PIPIT_OK, false },
        { "1", PIPIT_EINVAL, false }, { "", PIPIT_EINVAL, false },
        { "y", PIPIT_EINVAL, false }, { "truee", PIPIT_EINVAL, false },
    };

    for (size_t i = 0; i < sizeof(dur) / sizeof(dur[0]); i++) {
        int64_t v = -1;
        int rc = opt_parse_duration(dur[i].s, &v);
        ok(rc == dur[i].rc && (rc != PIPIT_OK || v == dur[i].v),
           "duration \"%s\" -> %d %lld", dur[i].s, dur[i].rc, (long long)dur[i].v);
    }
    for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
        int64_t v = -1;
        int rc = opt_parse_size(sz[i].s, &v);
        ok(rc == sz[i].rc && (rc != PIPIT_OK || v == sz[i].v),
           "size \"%s\" -> %d %lld", sz[i].s, sz[i].rc, (long long)sz[i].v);
    }
    for (size_t i = 0; i < sizeof(bo) / sizeof(bo[0]); i++) {
        bool v = !bo[i].v;
        int rc = opt_parse_bool(bo[i].s, &v);
        ok(rc == bo[i].rc && (rc != PIPIT_OK || v == bo[i].v), "bool \"%s\"", bo[i].s);
    }
    {
        int64_t v;
        bool b;
        ok(opt_parse_duration(NULL, &v) == PIPIT_EINVAL &&
           opt_parse_size(NULL, &v) == PIPIT_EINVAL &&
           opt_parse_bool(NULL, &b) == PIPIT_EINVAL, "NULL text refused");
    }
    is_str(opt_type_name(PIPIT_OPT_T_BOOL), "bool", "type name bool");
    is_str(opt_type_name(PIPIT_OPT_T_INT), "int", "type name int");
    is_str(opt_type_name(PIPIT_OPT_T_DOUBLE), "double", "type name double");
    is_str(opt_type_name(PIPIT_OPT_T_STRING), "string", "type name string");
    is_str(opt_type_name(PIPIT_OPT_T_DURATION), "duration", "type name duration");
    is_str(opt_type_name(PIPIT_OPT_T_SIZE), "size", "type name size");
    is_str(opt_type_name(PIPIT_OPT_T_LIST), "list", "type name list");
    is_str(opt_type_name(99), "unknown", "type name of an unknown type");
}

struct map_ctx {
    struct pipit_strmap props;
    struct pipit_strmap preset;
    const char *name;
};

static const struct pipit_option map_opts[] = {
    PIPIT_OPT_MAP("props", struct map_ctx, props, "Library properties"),
    PIPIT__OPT("preset", PIPIT_OPT_T_MAP, "{a: 1, b.c: x}", struct map_ctx, preset,
               0, 1, 0, "A map with a default"),
    PIPIT_OPT_STRING("name", NULL, struct map_ctx, name, "A name"),
    PIPIT_OPT_END
};

/* The value of key in m, or NULL. */
static const char *map_get(const struct pipit_strmap *m, const char *key)
{
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->keys[i], key) == 0)
            return m->values[i];
    return NULL;
}

static void test_map(void)
{
    struct map_ctx c;
    struct opt_store *s;
    struct diag d;
    char *out;
    int rc;

    /* Absent: an empty map, and the default of the other one. */
    memset(&c, 0, sizeof(c));
    rc = apply_text(map_opts, "o:\n  name: x\n", &c, &s, &d);
    ok(rc == PIPIT_OK && c.props.count == 0, "map: absent is empty");
    ok(c.preset.count == 2 && map_get(&c.preset, "a") &&
       strcmp(map_get(&c.preset, "a"), "1") == 0 &&
       strcmp(map_get(&c.preset, "b.c"), "x") == 0, "map: flow default parsed");
    opt_store_free(s);
    diag_free(&d);

    /* Configured: keys in order, values as text, config_get text. */
    memset(&c, 0, sizeof(c));
    rc = apply_text(map_opts,
                    "o:\n"
                    "  props:\n"
                    "    security.protocol: SASL_SSL\n"
                    "    linger.ms: 5\n"
                    "    \"ssl.ca.location\": \"/etc/ssl/ca.pem\"\n"
                    "    empty: \"\"\n",
                    &c, &s, &d);
    ok(rc == PIPIT_OK && c.props.count == 4, "map: four entries stored");
    ok(c.props.count == 4 && strcmp(c.props.keys[0], "security.protocol") == 0 &&
       strcmp(c.props.values[1], "5") == 0 && strcmp(c.props.keys[3], "empty") == 0 &&
       strcmp(c.props.values[3], "") == 0 && c.props.keys[4] == NULL,
       "map: keys in config order, scalars as text, NULL-terminated");
    is_str(opt_store_get(s, "props"),
           "security.protocol=SASL_SSL,linger.ms=5,ssl.ca.location=/etc/ssl/ca.pem,empty=",
           "map: config_get text is key=value pairs");
    opt_store_free(s);
    diag_free(&d);

    /* An empty flow map is an empty map. */
    memset(&c, 0, sizeof(c));
    rc = apply_text(map_opts, "o:\n  props: {}\n", &c, &s, &d);
    ok(rc == PIPIT_OK && c.props.count == 0, "map: {} is empty");
    opt_store_free(s);
    diag_free(&d);

    /* Wrong shapes. */
    expect_error(map_opts, "o:\n  props: SASL_SSL\n", 2, "inputs[0].props",
                 "expected map", "map: a scalar is refused");
    expect_error(map_opts, "o:\n  props: [a, b]\n", 2, "inputs[0].props",
                 "got a list", "map: a list is refused");
    expect_error(map_opts, "o:\n  props:\n    ssl:\n      ca: x\n", 3,
                 "inputs[0].props.ssl", "must be scalars, got a map",
                 "map: a nested map is refused at its key");
    expect_error(map_opts, "o:\n  props:\n    a: [1]\n", 3, "inputs[0].props.a",
                 "got a list", "map: a list value is refused");
    expect_error(map_opts, "o:\n  props:\n    a:\n", 3, "inputs[0].props.a",
                 "got null", "map: a null value is refused");

    /* Secret values: stored for the plugin, never in messages. */
    setenv("PIPIT_T_SECRET", SECRET, 1);
    memset(&c, 0, sizeof(c));
    rc = apply_text(map_opts,
                    "o:\n"
                    "  props:\n"
                    "    sasl.password: ${PIPIT_T_SECRET}\n"
                    "    sasl.username: \"u-${PIPIT_T_SECRET}\"\n"
                    "  name: [x]\n",
                    &c, &s, &d);
    out = diag_text(&d);
    ok(rc == PIPIT_ECONFIG && d.count == 1 && strstr(out, SECRET) == NULL,
       "map: an error elsewhere never shows a secret value");
    ok(c.props.count == 0 && c.props.keys == NULL,
       "map: on failure no pointer into the freed store is left in ctx");
    free(out);
    diag_free(&d);
    memset(&c, 0, sizeof(c));
    rc = apply_text(map_opts, "o:\n  props:\n    sasl.password: ${PIPIT_T_SECRET}\n"
                    "    bad: {x: 1}\n", &c, &s, &d);
    out = diag_text(&d);
    ok(rc == PIPIT_ECONFIG && strstr(out, SECRET) == NULL,
       "map: an error in the map never shows a secret value");
    free(out);
    diag_free(&d);
    memset(&c, 0, sizeof(c));
    rc = apply_text(map_opts, "o:\n  props:\n    sasl.password: ${PIPIT_T_SECRET}\n",
                    &c, &s, &d);
    ok(rc == PIPIT_OK && c.props.count == 1 &&
       strcmp(c.props.values[0], SECRET) == 0, "map: an expanded secret is stored");
    opt_store_free(s);
    diag_free(&d);

    is_str(opt_type_name(PIPIT_OPT_T_MAP), "map", "type name map");
}

int main(void)
{
    test_defaults();
    test_values();
    test_errors();
    test_all_errors_and_cleanup();
    test_secrets();
    test_parsers();
    test_map();
    return done_testing();
}
