/* options.c: check a config map against a plugin's option table and store typed values. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>
#include "options.h"

#define OPT_SHOW_MAX 64                 /* bytes of a bad value quoted in errors */
#define OPT_SUGGEST_MAX 64              /* longest key we compute distances for */
#define OPT_FRAC_DIGITS 6               /* fraction digits in "1.5s", "0.25GiB" */

/* One key that was set in the config, with its text as configured. */
struct opt_kv {
    char *key;
    char *text;
};

struct opt_store {
    struct opt_kv *kv;                  /* set keys, for opt_store_get() */
    size_t nkv, capkv;
    void **mem;                         /* every other allocation */
    size_t nmem, capmem;
};

/* State of one opt_apply() call. */
struct opt_run {
    const char *file;
    const char *prefix;
    struct diag *d;
    struct opt_store *s;
    int errors;
};

/* ---- the store ---------------------------------------------------------- */

/* Take ownership of p (freed by opt_store_free). On failure p is freed and
 * PIPIT_ENOMEM returned. */
static int store_keep(struct opt_store *s, void *p)
{
    if (s->nmem == s->capmem) {
        size_t cap = s->capmem ? s->capmem * 2 : 16;
        void **mem = realloc(s->mem, cap * sizeof(*mem));
        if (!mem) {
            free(p);
            return PIPIT_ENOMEM;
        }
        s->mem = mem;
        s->capmem = cap;
    }
    s->mem[s->nmem++] = p;
    return PIPIT_OK;
}

/* Copy n bytes of p as a NUL-terminated string owned by the store, or NULL
 * on out of memory. */
static char *store_strndup(struct opt_store *s, const char *p, size_t n)
{
    char *c = malloc(n + 1);

    if (!c)
        return NULL;
    memcpy(c, p, n);
    c[n] = '\0';
    return store_keep(s, c) == PIPIT_OK ? c : NULL;
}

/* Remember the configured text of key. The store owns copies of both. */
static int store_set_text(struct opt_store *s, const char *key, const char *text)
{
    char *k = NULL, *t = NULL;

    if (s->nkv == s->capkv) {
        size_t cap = s->capkv ? s->capkv * 2 : 8;
        struct opt_kv *kv = realloc(s->kv, cap * sizeof(*kv));
        if (!kv)
            return PIPIT_ENOMEM;
        s->kv = kv;
        s->capkv = cap;
    }
    k = strdup(key);
    t = strdup(text);
    if (!k || !t)
        goto fail;
    s->kv[s->nkv].key = k;
    s->kv[s->nkv].text = t;
    s->nkv++;
    return PIPIT_OK;
fail:
    free(k);
    free(t);
    return PIPIT_ENOMEM;
}

const char *opt_store_get(const struct opt_store *s, const char *key)
{
    if (!s || !key)
        return NULL;
    for (size_t i = 0; i < s->nkv; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return s->kv[i].text;
    return NULL;
}

void opt_store_free(struct opt_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nkv; i++) {
        free(s->kv[i].key);
        free(s->kv[i].text);
    }
    free(s->kv);
    for (size_t i = 0; i < s->nmem; i++)
        free(s->mem[i]);
    free(s->mem);
    free(s);
}

/* ---- text parsers ------------------------------------------------------- */

const char *opt_type_name(int type)
{
    switch (type) {
    case PIPIT_OPT_T_BOOL:     return "bool";
    case PIPIT_OPT_T_INT:      return "int";
    case PIPIT_OPT_T_DOUBLE:   return "double";
    case PIPIT_OPT_T_STRING:   return "string";
    case PIPIT_OPT_T_DURATION: return "duration";
    case PIPIT_OPT_T_SIZE:     return "size";
    case PIPIT_OPT_T_LIST:     return "list";
    case PIPIT_OPT_T_MAP:      return "map";
    }
    return "unknown";
}

int opt_parse_bool(const char *s, bool *v)
{
    static const char *const yes[] = { "true", "yes", "on" };
    static const char *const no[] = { "false", "no", "off" };

    if (!s)
        return PIPIT_EINVAL;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *v = true;
            return PIPIT_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *v = false;
            return PIPIT_OK;
        }
    }
    return PIPIT_EINVAL;
}

/*
 * Parse the len bytes at num as a non-negative decimal number with an
 * optional fraction ("10", "1.5") and multiply it by unit, exactly: the
 * result must be a whole number (1.5 * 1000 is, 1.0005 * 1000 is not).
 * Returns PIPIT_OK, PIPIT_EINVAL for malformed text or a fraction that does
 * not give a whole result, PIPIT_ERANGE on overflow.
 */
static int parse_scaled(const char *num, size_t len, int64_t unit, int64_t *out)
{
    int64_t ip = 0, fp = 0, pow10 = 1, v;
    size_t i = 0;
    int nfrac = 0;
    bool range = false;

    if (len == 0 || !isdigit((unsigned char)num[0]))
        return PIPIT_EINVAL;
    for (; i < len && isdigit((unsigned char)num[i]); i++) {
        if (__builtin_mul_overflow(ip, 10, &ip) ||
            __builtin_add_overflow(ip, num[i] - '0', &ip))
            range = true;
    }
    if (i < len && num[i] == '.') {
        i++;
        if (i == len)
            return PIPIT_EINVAL;        /* "1." */
        for (; i < len && isdigit((unsigned char)num[i]); i++) {
            if (nfrac == OPT_FRAC_DIGITS) {
                if (num[i] != '0')      /* trailing zeros are harmless */
                    return PIPIT_EINVAL;
                continue;
            }
            fp = fp * 10 + (num[i] - '0');
            pow10 *= 10;
            nfrac++;
        }
    }
    if (i != len)
        return PIPIT_EINVAL;
    if (range || __builtin_mul_overflow(ip, unit, &v))
        return PIPIT_ERANGE;
    if (nfrac > 0) {
        int64_t f;
        /* fp < 10^6 and unit < 2^41: no overflow. */
        if (__builtin_mul_overflow(fp, unit, &f))
            return PIPIT_ERANGE;
        if (f % pow10 != 0)
            return PIPIT_EINVAL;
        if (__builtin_add_overflow(v, f / pow10, &v))
            return PIPIT_ERANGE;
    }
    *out = v;
    return PIPIT_OK;
}

/* Split "10s" into the number part and the unit part. Returns the length of
 * the number part. */
static size_t number_len(const char *s)
{
    size_t n = 0;

    while (isdigit((unsigned char)s[n]) || s[n] == '.')
        n++;
    return n;
}

int opt_parse_duration(const char *s, int64_t *ms)
{
    static const struct { const char *name; int64_t ms; } units[] = {
        { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
        { "h", 3600000 }, { "d", 86400000 },
    };
    size_t n;

    if (!s)
        return PIPIT_EINVAL;
    n = number_len(s);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(s + n, units[i].name) == 0)
            return parse_scaled(s, n, units[i].ms, ms);
    return PIPIT_EINVAL;
}

int opt_parse_size(const char *s, int64_t *bytes)
{
    static const struct { const char *name; int shift; } units[] = {
        { "", 0 }, { "b", 0 },
        { "k", 10 }, { "kb", 10 }, { "kib", 10 },
        { "m", 20 }, { "mb", 20 }, { "mib", 20 },
        { "g", 30 }, { "gb", 30 }, { "gib", 30 },
        { "t", 40 }, { "tb", 40 }, { "tib", 40 },
    };
    size_t n;

    if (!s)
        return PIPIT_EINVAL;
    n = number_len(s);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(s + n, units[i].name) == 0)
            return parse_scaled(s, n, (int64_t)1 << units[i].shift, bytes);
    return PIPIT_EINVAL;
}

/* Parse a decimal integer: optional sign, digits, nothing else. Returns
 * PIPIT_OK, PIPIT_EINVAL or PIPIT_ERANGE. */
static int parse_int(const char *s, int64_t *v)
{
    const char *p = s;
    char *end;
    long long x;

    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p))
        return PIPIT_EINVAL;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return PIPIT_EINVAL;
    errno = 0;
    x = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return PIPIT_ERANGE;
    if (*end != '\0')
        return PIPIT_EINVAL;
    *v = x;
    return PIPIT_OK;
}

/* Parse a floating-point number with strtod; the whole text must be used.
 * Returns PIPIT_OK, PIPIT_EINVAL or PIPIT_ERANGE (overflow). */
static int parse_double(const char *s, double *v)
{
    char *end;
    double x;

    if (*s == '\0' || isspace((unsigned char)*s) || strpbrk(s, "xX"))
        return PIPIT_EINVAL;            /* no hexadecimal floats */
    errno = 0;
    x = strtod(s, &end);
    if (*end != '\0' || end == s)
        return PIPIT_EINVAL;
    if (errno == ERANGE && isinf(x))
        return PIPIT_ERANGE;
    *v = x;
    return PIPIT_OK;
}

/* ---- messages ----------------------------------------------------------- */

/* The key path "prefix.key" (or "key"), written to out. */
static const char *key_path(char *out, size_t len, const char *prefix,
                            const char *key)
{
    if (prefix && *prefix)
        snprintf(out, len, "%s.%s", prefix, key);
    else
        snprintf(out, len, "%s", key);
    return out;
}

/* Record one error for key (a path below the run's prefix). */
static void opt_error(struct opt_run *r, int line, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void opt_error(struct opt_run *r, int line, const char *key,
                      const char *fmt, ...)
{
    char path[512], msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag_add(r->d, r->file, line, key_path(path, sizeof(path), r->prefix, key),
             "%s", msg);
    r->errors++;
}

/* Write "ms" as the largest unit that divides it ("90s", "2h"). */
static const char *fmt_duration(char *out, size_t len, double ms)
{
    static const struct { const char *name; int64_t ms; } units[] = {
        { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
    };
    int64_t v;

    if (!(ms >= -9e18 && ms <= 9e18) || ms != (double)(int64_t)ms) {
        snprintf(out, len, "%gms", ms);
        return out;
    }
    v = (int64_t)ms;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (v != 0 && v % units[i].ms == 0) {
            snprintf(out, len, "%lld%s", (long long)(v / units[i].ms), units[i].name);
            return out;
        }
    }
    snprintf(out, len, "%lldms", (long long)v);
    return out;
}

/* Write a byte count as the largest binary unit that divides it. */
static const char *fmt_size(char *out, size_t len, double bytes)
{
    static const struct { const char *name; int shift; } units[] = {
        { "TiB", 40 }, { "GiB", 30 }, { "MiB", 20 }, { "KiB", 10 },
    };
    int64_t v;

    if (!(bytes >= -9e18 && bytes <= 9e18) || bytes != (double)(int64_t)bytes) {
        snprintf(out, len, "%g", bytes);
        return out;
    }
    v = (int64_t)bytes;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        int64_t u = (int64_t)1 << units[i].shift;
        if (v != 0 && v % u == 0) {
            snprintf(out, len, "%lld%s", (long long)(v / u), units[i].name);
            return out;
        }
    }
    snprintf(out, len, "%lld", (long long)v);
    return out;
}

/* Write a range bound of an option in its own unit. */
static const char *fmt_bound(char *out, size_t len, int type, double v)
{
    if (type == PIPIT_OPT_T_DURATION)
        return fmt_duration(out, len, v);
    if (type == PIPIT_OPT_T_SIZE)
        return fmt_size(out, len, v);
    snprintf(out, len, "%.17g", v);
    return out;
}

/* Example syntax for a type, for wrong-type messages. */
static const char *type_hint(int type)
{
    switch (type) {
    case PIPIT_OPT_T_BOOL:     return " (true or false)";
    case PIPIT_OPT_T_INT:      return " (a whole number)";
    case PIPIT_OPT_T_DURATION: return " (e.g. 500ms, 10s, 5m, 1h, 1d)";
    case PIPIT_OPT_T_SIZE:     return " (e.g. 512, 64KiB, 16MiB, 1GiB)";
    }
    return "";
}

/* Report that the text of key is not a valid value of opt's type, showing
 * the text only when it is not secret. */
static void bad_value(struct opt_run *r, const struct pipit_option *o, int line,
                      const char *key, const char *text, bool secret, int err)
{
    const char *more = strlen(text) > OPT_SHOW_MAX ? "..." : "";

    if (secret || (o->flags & PIPIT_OPT_SECRET)) {
        if (err == PIPIT_ERANGE)
            opt_error(r, line, key, "value is too large for a %s; the value is "
                      "secret and not shown", opt_type_name(o->type));
        else
            opt_error(r, line, key, "expected %s%s; the value is secret and not "
                      "shown", opt_type_name(o->type), type_hint(o->type));
    } else if (err == PIPIT_ERANGE) {
        opt_error(r, line, key, "value \"%.*s%s\" is too large for a %s",
                  OPT_SHOW_MAX, text, more, opt_type_name(o->type));
    } else {
        opt_error(r, line, key, "expected %s%s, got \"%.*s%s\"",
                  opt_type_name(o->type), type_hint(o->type), OPT_SHOW_MAX, text,
                  more);
    }
}

/* ---- applying one value ------------------------------------------------- */

/* A YAML null: an unquoted empty scalar, "~" or "null". */
static bool node_is_null(const struct cfg_node *n)
{
    return n->type == CFG_SCALAR && n->plain &&
           (!n->value || n->value[0] == '\0' || strcmp(n->value, "~") == 0 ||
            strcmp(n->value, "null") == 0 || strcmp(n->value, "Null") == 0 ||
            strcmp(n->value, "NULL") == 0);
}

static const char *node_kind(const struct cfg_node *n)
{
    return n->type == CFG_MAP ? "a map" : n->type == CFG_SEQ ? "a list" : "a scalar";
}

static bool has_range(const struct pipit_option *o)
{
    return o->min <= o->max;
}

/* Check v against the option's range; report and return false when outside. */
static bool in_range(struct opt_run *r, const struct pipit_option *o, int line,
                     const char *key, double v, const char *text, bool secret)
{
    char lo[64], hi[64];

    if (!has_range(o) || (v >= o->min && v <= o->max))
        return true;
    if (secret || (o->flags & PIPIT_OPT_SECRET))
        opt_error(r, line, key, "value out of range: must be between %s and %s",
                  fmt_bound(lo, sizeof(lo), o->type, o->min),
                  fmt_bound(hi, sizeof(hi), o->type, o->max));
    else
        opt_error(r, line, key, "value %.*s is out of range: must be between %s and %s",
                  OPT_SHOW_MAX, text, fmt_bound(lo, sizeof(lo), o->type, o->min),
                  fmt_bound(hi, sizeof(hi), o->type, o->max));
    return false;
}

/*
 * Convert the scalar text of one option and store it at ctx + offset.
 * text is the configured (or default) text; strings are copied into the
 * store. Returns true when stored; errors are reported to the run.
 */
static bool store_scalar(struct opt_run *r, const struct pipit_option *o,
                         void *ctx, int line, const char *key, const char *text,
                         bool secret)
{
    char *field = (char *)ctx + o->offset;
    int err;

    switch (o->type) {
    case PIPIT_OPT_T_BOOL: {
        bool b;
        if ((err = opt_parse_bool(text, &b)) != PIPIT_OK)
            goto bad;
        memcpy(field, &b, sizeof(b));
        return true;
    }
    case PIPIT_OPT_T_INT: {
        int64_t v;
        if ((err = parse_int(text, &v)) != PIPIT_OK)
            goto bad;
        if (!in_range(r, o, line, key, (double)v, text, secret))
            return false;
        memcpy(field, &v, sizeof(v));
        return true;
    }
    case PIPIT_OPT_T_DURATION:
    case PIPIT_OPT_T_SIZE: {
        int64_t v;
        err = o->type == PIPIT_OPT_T_DURATION ? opt_parse_duration(text, &v)
                                              : opt_parse_size(text, &v);
        if (err != PIPIT_OK)
            goto bad;
        if (!in_range(r, o, line, key, (double)v, text, secret))
            return false;
        memcpy(field, &v, sizeof(v));
        return true;
    }
    case PIPIT_OPT_T_DOUBLE: {
        double v;
        if ((err = parse_double(text, &v)) != PIPIT_OK)
            goto bad;
        if (!isfinite(v) && has_range(o)) {
            opt_error(r, line, key, "expected a finite number");
            return false;
        }
        if (!in_range(r, o, line, key, v, text, secret))
            return false;
        memcpy(field, &v, sizeof(v));
        return true;
    }
    case PIPIT_OPT_T_STRING: {
        const char *c = store_strndup(r->s, text, strlen(text));
        if (!c) {
            opt_error(r, line, key, "out of memory");
            return false;
        }
        memcpy(field, &c, sizeof(c));
        return true;
    }
    }
    opt_error(r, line, key, "option has an unknown type %d", o->type);
    return false;
bad:
    bad_value(r, o, line, key, text, secret, err);
    return false;
}

/* Store a list of n strings (copied) at the option's field. */
static bool store_list(struct opt_run *r, const struct pipit_option *o,
                       void *ctx, int line, const char *key,
                       const char *const *items, size_t n)
{
    struct pipit_strlist l;
    const char **arr = calloc(n + 1, sizeof(*arr)); /* NULL-terminated too */

    if (!arr || store_keep(r->s, arr) != PIPIT_OK)
        goto oom;
    for (size_t i = 0; i < n; i++)
        if (!(arr[i] = store_strndup(r->s, items[i], strlen(items[i]))))
            goto oom;
    l.items = arr;
    l.count = n;
    memcpy((char *)ctx + o->offset, &l, sizeof(l));
    return true;
oom:
    opt_error(r, line, key, "out of memory");
    return false;
}

/* The text of a list as opt_store_get() returns it: items joined by ",". */
static char *join_items(const char *const *items, size_t n)
{
    size_t len = 1;
    char *s, *p;

    for (size_t i = 0; i < n; i++)
        len += strlen(items[i]) + 1;
    if (!(s = malloc(len)))
        return NULL;
    p = s;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i]);
        if (i)
            *p++ = ',';
        memcpy(p, items[i], l);
        p += l;
    }
    *p = '\0';
    return s;
}

/*
 * Store the map node n (string keys to scalar values) at the option's field
 * as a struct pipit_strmap, keys and values copied into the store. Every
 * entry whose value is not a scalar is reported; values are never quoted in
 * messages (they are often credentials). The text kept for config_get() is
 * "key=value" pairs joined by ",". Returns true when stored.
 */
static bool apply_map(struct opt_run *r, const struct pipit_option *o,
                      void *ctx, const struct cfg_node *n)
{
    struct pipit_strmap m;
    const char **keys, **values;
    size_t count = n->nchild, len = 1;
    bool okay = true;
    char *text, *p;

    for (size_t i = 0; i < count; i++) {
        const struct cfg_node *c = n->child[i];
        char ik[320];
        if (c->type == CFG_SCALAR && !node_is_null(c) && c->key)
            continue;
        snprintf(ik, sizeof(ik), "%s.%s", o->name, c->key ? c->key : "?");
        opt_error(r, c->line, ik, "map values must be scalars, got %s",
                  c->type == CFG_SCALAR ? "null" : node_kind(c));
        okay = false;
    }
    if (!okay)
        return false;
    keys = calloc(count + 1, sizeof(*keys));   /* NULL-terminated too */
    if (!keys || store_keep(r->s, keys) != PIPIT_OK)
        goto oom;
    values = calloc(count + 1, sizeof(*values));
    if (!values || store_keep(r->s, values) != PIPIT_OK)
        goto oom;
    for (size_t i = 0; i < count; i++) {
        const struct cfg_node *c = n->child[i];
        if (!(keys[i] = store_strndup(r->s, c->key, strlen(c->key))) ||
            !(values[i] = store_strndup(r->s, c->value, strlen(c->value))))
            goto oom;
        len += strlen(c->key) + strlen(c->value) + 2;
    }
    m.keys = keys;
    m.values = values;
    m.count = count;
    memcpy((char *)ctx + o->offset, &m, sizeof(m));

    if (!(text = malloc(len)))
        goto oom;
    p = text;
    for (size_t i = 0; i < count; i++)
        p += sprintf(p, "%s%s=%s", i ? "," : "", keys[i], values[i]);
    *p = '\0';
    okay = store_set_text(r->s, o->name, text) == PIPIT_OK;
    free(text);
    if (okay)
        return true;
oom:
    opt_error(r, n->line, o->name, "out of memory");
    return false;
}

/*
 * Apply the configured node n (not null) to option o: type check, convert,
 * range check, store, remember the text. Returns true on success.
 */
static bool apply_node(struct opt_run *r, const struct pipit_option *o,
                       void *ctx, const struct cfg_node *n)
{
    const char *key = o->name;

    if (o->type == PIPIT_OPT_T_MAP) {
        if (n->type != CFG_MAP) {
            opt_error(r, n->line, key, "expected map (keys with scalar values), "
                      "got %s", node_kind(n));
            return false;
        }
        return apply_map(r, o, ctx, n);
    }
    if (o->type == PIPIT_OPT_T_LIST) {
        const char **items;
        size_t count = n->type == CFG_SEQ ? n->nchild : 1;
        bool okay = true;
        char *text;

        if (n->type == CFG_MAP) {
            opt_error(r, n->line, key, "expected list (a sequence of scalars or "
                      "one scalar), got a map");
            return false;
        }
        items = calloc(count ? count : 1, sizeof(*items));
        if (!items) {
            opt_error(r, n->line, key, "out of memory");
            return false;
        }
        if (n->type == CFG_SCALAR) {
            items[0] = n->value ? n->value : "";
        } else {
            for (size_t i = 0; i < count; i++) {
                const struct cfg_node *c = n->child[i];
                char ik[256];
                if (c->type != CFG_SCALAR || node_is_null(c)) {
                    snprintf(ik, sizeof(ik), "%s[%zu]", key, i);
                    opt_error(r, c->line, ik, "list items must be scalars, got %s",
                              c->type == CFG_SCALAR ? "null" : node_kind(c));
                    okay = false;
                    continue;
                }
                items[i] = c->value;
            }
        }
        if (okay)
            okay = store_list(r, o, ctx, n->line, key, items, count);
        if (okay) {
            text = join_items(items, count);
            if (!text || store_set_text(r->s, key, text) != PIPIT_OK) {
                opt_error(r, n->line, key, "out of memory");
                okay = false;
            }
            free(text);
        }
        free(items);
        return okay;
    }

    if (n->type != CFG_SCALAR) {
        opt_error(r, n->line, key, "expected %s%s, got %s", opt_type_name(o->type),
                  type_hint(o->type), node_kind(n));
        return false;
    }
    if (!store_scalar(r, o, ctx, n->line, key, n->value, n->secret))
        return false;
    if (store_set_text(r->s, key, n->value) != PIPIT_OK) {
        opt_error(r, n->line, key, "out of memory");
        return false;
    }
    return true;
}

/*
 * Parse the default of a list option: a YAML flow sequence of scalars
 * ("[a, b]"), one scalar (a one-item list) or empty (an empty list).
 * Stores the list; returns true on success.
 */
static bool apply_list_default(struct opt_run *r, const struct pipit_option *o,
                               void *ctx)
{
    yaml_parser_t p;
    yaml_event_t ev;
    const char **items = NULL;
    char **owned = NULL;
    size_t n = 0, cap = 0;
    bool okay = false, in_seq = false, done = false;
    int depth = 0;

    if (!yaml_parser_initialize(&p)) {
        opt_error(r, 0, o->name, "out of memory");
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)o->def, strlen(o->def));
    while (!done) {
        if (!yaml_parser_parse(&p, &ev))
            goto bad;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_SEQUENCE_START_EVENT:
            if (in_seq || ++depth > 1) {
                yaml_event_delete(&ev);
                goto bad;
            }
            in_seq = true;
            break;
        case YAML_SEQUENCE_END_EVENT:
            break;
        case YAML_SCALAR_EVENT: {
            bool null = !in_seq && ev.data.scalar.length == 0 &&
                        ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            if (!null) {
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 4;
                    char **g = realloc(owned, nc * sizeof(*g));
                    if (!g) {
                        yaml_event_delete(&ev);
                        goto oom;
                    }
                    owned = g;
                    cap = nc;
                }
                if (!(owned[n] = strndup((const char *)ev.data.scalar.value,
                                         ev.data.scalar.length))) {
                    yaml_event_delete(&ev);
                    goto oom;
                }
                n++;
            }
            break;
        }
        case YAML_MAPPING_START_EVENT:
        case YAML_ALIAS_EVENT:
            yaml_event_delete(&ev);
            goto bad;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    items = (const char **)owned;
    okay = store_list(r, o, ctx, 0, o->name, items, n);
    goto out;
oom:
    opt_error(r, 0, o->name, "out of memory");
    goto out;
bad:
    opt_error(r, 0, o->name, "invalid default \"%.*s\" for a list option",
              OPT_SHOW_MAX, o->def);
out:
    for (size_t i = 0; i < n; i++)
        free(owned[i]);
    free(owned);
    yaml_parser_delete(&p);
    return okay;
}

/*
 * Parse the default of a map option, a YAML flow mapping of scalars
 * ("{a: 1, b: x}"), and store it. Returns true on success.
 */
static bool apply_map_default(struct opt_run *r, const struct pipit_option *o,
                              void *ctx)
{
    struct diag d;
    struct cfg_doc *doc = NULL;
    const struct cfg_node *n = NULL;
    char *text = NULL;
    bool okay = false;

    diag_init(&d);
    if (asprintf(&text, "v: %s\n", o->def) < 0) {
        text = NULL;
        opt_error(r, 0, o->name, "out of memory");
        goto out;
    }
    doc = cfg_load_string(text, strlen(text), "default", &d);
    if (doc && doc->root)
        n = cfg_get(doc->root, "v");
    if (n && node_is_null(n)) {
        okay = true;                    /* an empty default: the empty map */
        goto out;
    }
    if (!n || n->type != CFG_MAP) {
        opt_error(r, 0, o->name, "invalid default \"%.*s\" for a map option",
                  OPT_SHOW_MAX, o->def);
        goto out;
    }
    okay = apply_map(r, o, ctx, n);
out:
    cfg_free(doc);
    diag_free(&d);
    free(text);
    return okay;
}

/* Store the default of o (the field stays zero when there is none). */
static bool apply_default(struct opt_run *r, const struct pipit_option *o,
                          void *ctx)
{
    int before = r->errors;

    if (!o->def)
        return true;
    if (o->type == PIPIT_OPT_T_LIST)
        return apply_list_default(r, o, ctx);
    if (o->type == PIPIT_OPT_T_MAP)
        return apply_map_default(r, o, ctx);
    if (store_scalar(r, o, ctx, 0, o->name, o->def, false))
        return true;
    /* A bad default is a bug of the plugin; say so besides the parse error. */
    if (r->errors > before && (o->flags & PIPIT_OPT_SECRET))
        opt_error(r, 0, o->name, "the option's built-in default is invalid");
    else if (r->errors > before)
        opt_error(r, 0, o->name, "the option's built-in default \"%.*s\" is invalid",
                  OPT_SHOW_MAX, o->def);
    return false;
}

/* ---- unknown keys ------------------------------------------------------- */

static int norm_char(char c)
{
    return c == '-' ? '_' : tolower((unsigned char)c);
}

/* Optimal-string-alignment distance between a and b (case and -/_
 * insensitive), or a large number when either is too long to bother. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char dp[OPT_SUGGEST_MAX + 1][OPT_SUGGEST_MAX + 1];

    if (la > OPT_SUGGEST_MAX || lb > OPT_SUGGEST_MAX)
        return (size_t)-1;
    for (size_t i = 0; i <= la; i++)
        dp[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= lb; j++)
        dp[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int cost = norm_char(a[i - 1]) != norm_char(b[j - 1]);
            unsigned v = dp[i - 1][j] + 1u;
            if (dp[i][j - 1] + 1u < v)
                v = dp[i][j - 1] + 1u;
            if (dp[i - 1][j - 1] + (unsigned)cost < v)
                v = dp[i - 1][j - 1] + (unsigned)cost;
            if (i > 1 && j > 1 && norm_char(a[i - 1]) == norm_char(b[j - 2]) &&
                norm_char(a[i - 2]) == norm_char(b[j - 1]) &&
                dp[i - 2][j - 2] + 1u < v)
                v = dp[i - 2][j - 2] + 1u;
            dp[i][j] = (unsigned char)v;
        }
    }
    return dp[la][lb];
}

/* Consider name as a suggestion for key; keep the closest so far. */
static void consider(const char *key, const char *name, const char **best,
                     size_t *bestd)
{
    size_t d = edit_distance(key, name);
    size_t len = strlen(key), limit = (len + 2) / 4;

    if (limit < 1)
        limit = 1;
    if (limit > 3)
        limit = 3;
    if (d <= limit && d < *bestd) {
        *best = name;
        *bestd = d;
    }
}

/* Report an unknown key, suggesting the closest known one if any is close. */
static void unknown_key(struct opt_run *r, const struct pipit_option *opts,
                        const char *const *host_keys, const struct cfg_node *n)
{
    const char *best = NULL;
    size_t bestd = (size_t)-1;

    for (const struct pipit_option *o = opts; o && o->name; o++)
        consider(n->key, o->name, &best, &bestd);
    for (size_t i = 0; host_keys && host_keys[i]; i++)
        consider(n->key, host_keys[i], &best, &bestd);
    if (best)
        opt_error(r, n->line, n->key, "unknown key '%.*s'; did you mean '%s'?",
                  OPT_SUGGEST_MAX, n->key, best);
    else
        opt_error(r, n->line, n->key, "unknown key '%.*s'", OPT_SUGGEST_MAX,
                  n->key);
}

static bool is_host_key(const char *const *host_keys, const char *key)
{
    for (size_t i = 0; host_keys && host_keys[i]; i++)
        if (strcmp(host_keys[i], key) == 0)
            return true;
    return false;
}

const struct pipit_option *opt_find(const struct pipit_option *opts, const char *key)
{
    for (const struct pipit_option *o = opts; o && o->name; o++)
        if (strcmp(o->name, key) == 0)
            return o;
    return NULL;
}

/* Zero every pointer field the table declares, so that a ctx left behind by
 * a failed opt_apply() holds no pointer into the freed store. */
static void clear_pointers(const struct pipit_option *opts, void *ctx)
{
    static const struct pipit_strlist empty;
    static const struct pipit_strmap empty_map;
    static const char *const null_str;

    for (const struct pipit_option *o = opts; o && o->name; o++) {
        if (o->type == PIPIT_OPT_T_STRING)
            memcpy((char *)ctx + o->offset, &null_str, sizeof(null_str));
        else if (o->type == PIPIT_OPT_T_LIST)
            memcpy((char *)ctx + o->offset, &empty, sizeof(empty));
        else if (o->type == PIPIT_OPT_T_MAP)
            memcpy((char *)ctx + o->offset, &empty_map, sizeof(empty_map));
    }
}

/*
 * Apply opts to map (see options.h). Every key of the map is checked first
 * (unknown keys), then every option in table order gets its configured
 * value or its default. All errors are collected before returning.
 */
int opt_apply(const struct pipit_option *opts, const struct cfg_node *map,
              const char *const *host_keys, void *ctx, const char *file,
              const char *prefix, struct opt_store **store, struct diag *d)
{
    struct opt_run r = { .file = file, .prefix = prefix, .d = d };

    *store = NULL;
    if (!(r.s = calloc(1, sizeof(*r.s)))) {
        diag_add(d, file, map ? map->line : 0, prefix, "out of memory");
        return PIPIT_ECONFIG;
    }
    if (map && map->type != CFG_MAP) {
        diag_add(d, file, map->line, prefix && *prefix ? prefix : NULL,
                 "expected a map of options, got %s", node_kind(map));
        r.errors++;
        map = NULL;
    }

    if (map) {
        for (size_t i = 0; i < map->nchild; i++) {
            const struct cfg_node *n = map->child[i];
            if (!n->key) {
                opt_error(&r, n->line, "?", "map entry without a key");
                continue;
            }
            if (!opt_find(opts, n->key) && !is_host_key(host_keys, n->key))
                unknown_key(&r, opts, host_keys, n);
        }
    }

    for (const struct pipit_option *o = opts; o && o->name; o++) {
        const struct cfg_node *n = map ? cfg_get(map, o->name) : NULL;

        if (o->type <= PIPIT_OPT_T_END || o->type > PIPIT_OPT_T_MAP) {
            opt_error(&r, 0, o->name, "option has an unknown type %d", o->type);
            continue;
        }
        if (is_host_key(host_keys, o->name))
            n = NULL;                   /* the host's, not the plugin's */
        if (n && node_is_null(n)) {
            if (o->flags & PIPIT_OPT_REQUIRED) {
                opt_error(&r, n->line, o->name, "required key has no value");
                continue;
            }
            n = NULL;                   /* "key:" with nothing means the default */
        }
        if (n) {
            apply_node(&r, o, ctx, n);
        } else if (o->flags & PIPIT_OPT_REQUIRED) {
            opt_error(&r, map ? map->line : 0, o->name,
                      "required key '%s' is missing", o->name);
        } else {
            apply_default(&r, o, ctx);
        }
    }

    if (r.errors) {
        clear_pointers(opts, ctx);
        opt_store_free(r.s);
        return PIPIT_ECONFIG;
    }
    *store = r.s;
    return PIPIT_OK;
}
