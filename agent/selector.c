/* selector.c: target selectors ("role=web,env=prod", "host=web-0*") that say which agents a command addresses. */
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "selector.h"

static int fail(char *err, size_t errlen, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, size_t pos, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "at position %zu: ", pos + 1);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return PIPIT_EPARSE;
}

static bool is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-' || c == '/';
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether c may appear in a glob: printable ASCII other than blank and ',', or UTF-8. */
static bool is_glob_char(char c)
{
    unsigned char u = (unsigned char)c;
    return (u > 0x20 && u < 0x7f && c != ',') || u >= 0x80;
}

/* A character for a message: 'c' when printable, else its byte value. */
static const char *show_char(char c, char out[16])
{
    unsigned char u = (unsigned char)c;
    if (u > 0x20 && u < 0x7f)
        snprintf(out, 16, "character '%c'", c);
    else
        snprintf(out, 16, "byte 0x%02x", u);
    return out;
}

/*
 * Parse one term at text[*pos], leaving *pos after it. Returns PIPIT_OK,
 * PIPIT_EPARSE (err says where) or PIPIT_ENOMEM.
 */
static int parse_term(const char *text, size_t *pos, struct selector_term *t, char *err,
                      size_t errlen)
{
    size_t i = *pos, k0 = i;
    char shown[16];

    while (is_key_char(text[i]))
        i++;
    if (i == k0) {
        if (text[i] == '\0' || text[i] == ',')
            return fail(err, errlen, i, "expected a term such as role=web");
        return fail(err, errlen, i, "unexpected %s; a key is letters, digits and _.-/",
                    show_char(text[i], shown));
    }
    size_t klen = i - k0;
    if (text[i] == '!' && text[i + 1] == '=') {
        t->negate = true;
        i += 2;
    } else if (text[i] == '=') {
        i++;
    } else {
        return fail(err, errlen, i, "expected '=' or '!=' after key \"%.*s\"", (int)klen,
                    text + k0);
    }
    size_t g0 = i;
    while (is_glob_char(text[i]))
        i++;
    if (i == g0)
        return fail(err, errlen, i, "expected a value after \"%.*s\"", (int)(i - k0),
                    text + k0);
    t->key = strndup(text + k0, klen);
    t->glob = strndup(text + g0, i - g0);
    if (!t->key || !t->glob)
        return PIPIT_ENOMEM;
    *pos = i;
    return PIPIT_OK;
}

int selector_parse(const char *text, struct selector *sel, char *err, size_t errlen)
{
    size_t i = 0, len;
    int r;

    memset(sel, 0, sizeof *sel);
    if (err && errlen)
        err[0] = '\0';
    if (!text)
        return fail(err, errlen, 0, "no selector");
    len = strlen(text);
    if (len > SELECTOR_MAX_LEN)
        return fail(err, errlen, SELECTOR_MAX_LEN, "selector longer than %d characters",
                    SELECTOR_MAX_LEN);
    while (is_blank(text[i]))
        i++;
    if (text[i] == '*') {
        size_t star = i++;
        while (is_blank(text[i]))
            i++;
        if (text[i] != '\0')
            return fail(err, errlen, text[i] == ',' ? i : star,
                        "'*' selects every agent and stands alone");
        sel->all = true;
        return PIPIT_OK;
    }
    if (text[i] == '\0')
        return fail(err, errlen, i, "empty selector; '*' selects every agent");
    sel->terms = calloc(SELECTOR_MAX_TERMS, sizeof *sel->terms);
    if (!sel->terms)
        return PIPIT_ENOMEM;
    for (;;) {
        while (is_blank(text[i]))
            i++;
        if (sel->count == SELECTOR_MAX_TERMS) {
            r = fail(err, errlen, i, "more than %d terms", SELECTOR_MAX_TERMS);
            goto fail;
        }
        r = parse_term(text, &i, &sel->terms[sel->count], err, errlen);
        sel->count++;                   /* so that selector_free frees a partial term */
        if (r != PIPIT_OK)
            goto fail;
        while (is_blank(text[i]))
            i++;
        if (text[i] == '\0')
            break;
        if (text[i] != ',') {
            char shown[16];
            r = fail(err, errlen, i, "unexpected %s after a term; terms are separated by "
                     "','", show_char(text[i], shown));
            goto fail;
        }
        i++;
    }
    return PIPIT_OK;
fail:
    selector_free(sel);
    return r;
}

static const char *label_value(const struct pipit_strmap *labels, const char *key)
{
    if (!labels)
        return NULL;
    for (size_t i = 0; i < labels->count; i++)
        if (labels->keys[i] && !strcmp(labels->keys[i], key))
            return labels->values[i];
    return NULL;
}

bool selector_match(const struct selector *sel, const char *host,
                    const struct pipit_strmap *labels)
{
    if (sel->all)
        return true;
    if (sel->count == 0)
        return false;                   /* an unparsed selector addresses no one */
    for (size_t i = 0; i < sel->count; i++) {
        const struct selector_term *t = &sel->terms[i];
        const char *v = !strcmp(t->key, "host") ? host : label_value(labels, t->key);
        bool hit = v && fnmatch(t->glob, v, 0) == 0;
        if (hit == t->negate)
            return false;
    }
    return true;
}

void selector_free(struct selector *sel)
{
    for (size_t i = 0; i < sel->count; i++) {
        free(sel->terms[i].key);
        free(sel->terms[i].glob);
    }
    free(sel->terms);
    memset(sel, 0, sizeof *sel);
}
