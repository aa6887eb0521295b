/* tail_parse.c: turn the bytes of a log file into records: lines, split pieces, multiline records, parsed labels. */
#include "tail_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

/* Compile one pattern in byte mode (any input bytes are safe to match). */
static pcre2_code *tail_compile(const char *what, const char *re, char *err, size_t errlen)
{
    PCRE2_SIZE at = 0;
    int code = 0;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &code, &at, NULL);

    if (!c) {
        PCRE2_UCHAR msg[256];

        pcre2_get_error_message(code, msg, sizeof msg);
        snprintf(err, errlen, "%s: %s at offset %zu", what, (const char *)msg, (size_t)at);
    }
    return c;
}

int tail_conf_init(struct tail_parse_conf *conf, const char *start_re,
                   const char *parse_re, char *err, size_t errlen)
{
    conf->start = conf->regex = NULL;
    if (start_re && *start_re &&
        !(conf->start = tail_compile("multiline_start", start_re, err, errlen)))
        goto fail;
    if (parse_re && *parse_re &&
        !(conf->regex = tail_compile("regex", parse_re, err, errlen)))
        goto fail;
    return PIPIT_OK;
fail:
    tail_conf_free(conf);
    return PIPIT_EINVAL;
}

void tail_conf_free(struct tail_parse_conf *conf)
{
    pcre2_code_free(conf->start);
    pcre2_code_free(conf->regex);
    conf->start = conf->regex = NULL;
}

int tail_parser_init(struct tail_parser *p, const struct tail_parse_conf *conf,
                     struct tail_counts *counts, uint64_t pos)
{
    memset(p, 0, sizeof *p);
    p->conf = conf;
    p->counts = counts;
    p->line = malloc(conf->max_line ? conf->max_line : 1);
    if (conf->start)
        p->rec = malloc(conf->max_record ? conf->max_record : 1);
    p->md = pcre2_match_data_create(64, NULL);
    if (!p->line || (conf->start && !p->rec) || !p->md) {
        tail_parser_free(p);
        return PIPIT_ENOMEM;
    }
    tail_parser_reset(p, pos);
    return PIPIT_OK;
}

void tail_parser_free(struct tail_parser *p)
{
    free(p->line);
    free(p->rec);
    free(p->scratch);
    pcre2_match_data_free(p->md);
    memset(p, 0, sizeof *p);
}

void tail_parser_reset(struct tail_parser *p, uint64_t pos)
{
    p->line_len = p->rec_len = 0;
    p->line_cont = p->rec_open = p->rec_split = p->rec_truncated = false;
    p->line_off = p->rec_off = p->rec_end = p->pos = pos;
}

bool tail_parser_pending(const struct tail_parser *p)
{
    return p->rec_open;
}

uint64_t tail_parser_safe(const struct tail_parser *p)
{
    return p->rec_open ? p->rec_off : p->line_off;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/*
 * Copy as valid UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above
 * U+10FFFF); each invalid byte and each NUL becomes U+FFFD.
 */
size_t tail_utf8_clean(const char *in, size_t n, char *out, struct tail_counts *c)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;

    while (i < n) {
        /* Runs of ASCII without NUL are copied eight bytes at a time:
         * (x - ONES) & ~x & HIGHS is not zero exactly when x has a zero
         * byte, and x & HIGHS when it has a byte of 0x80 or more. */
        size_t run = i;
        while (n - i >= 8) {
            uint64_t x;
            memcpy(&x, s + i, 8);
            if (((x - ONES) & ~x & HIGHS) | (x & HIGHS))
                break;
            i += 8;
        }
        if (i > run) {
            memcpy(out + o, s + run, i - run);
            o += i - run;
            continue;
        }
        unsigned char b = s[i];
        size_t len = 0;

        if (b == 0) {
            c->nul++;
        } else if (b < 0x80) {
            len = 1;
        } else if (b >= 0xc2 && b <= 0xdf) {
            len = (i + 1 < n && (s[i + 1] & 0xc0) == 0x80) ? 2 : 0;
        } else if (b >= 0xe0 && b <= 0xef) {
            if (i + 2 < n && (s[i + 1] & 0xc0) == 0x80 && (s[i + 2] & 0xc0) == 0x80 &&
                !(b == 0xe0 && s[i + 1] < 0xa0) && !(b == 0xed && s[i + 1] > 0x9f))
                len = 3;
        } else if (b >= 0xf0 && b <= 0xf4) {
            if (i + 3 < n && (s[i + 1] & 0xc0) == 0x80 && (s[i + 2] & 0xc0) == 0x80 &&
                (s[i + 3] & 0xc0) == 0x80 && !(b == 0xf0 && s[i + 1] < 0x90) &&
                !(b == 0xf4 && s[i + 1] > 0x8f))
                len = 4;
        }
        if (len) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
            continue;
        }
        if (b != 0)
            c->invalid_utf8++;
        memcpy(out + o, "\xef\xbf\xbd", 3);
        o += 3;
        i++;
    }
    out[o] = '\0';
    return o;
}

int tail_level_of(const char *s, size_t n)
{
    static const struct { const char *w; int level; } words[] = {
        { "fatal", PIPIT_LOG_ERROR }, { "crit", PIPIT_LOG_ERROR },
        { "critical", PIPIT_LOG_ERROR }, { "error", PIPIT_LOG_ERROR },
        { "err", PIPIT_LOG_ERROR }, { "emerg", PIPIT_LOG_ERROR },
        { "alert", PIPIT_LOG_ERROR }, { "warn", PIPIT_LOG_WARN },
        { "warning", PIPIT_LOG_WARN }, { "notice", PIPIT_LOG_INFO },
        { "info", PIPIT_LOG_INFO }, { "debug", PIPIT_LOG_DEBUG },
        { "trace", PIPIT_LOG_TRACE },
    };

    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].w) == n && strncasecmp(words[i].w, s, n) == 0)
            return words[i].level;
    return 0;
}

/* Make room for n bytes of scratch. */
static bool tail_scratch(struct tail_parser *p, size_t n)
{
    if (n <= p->scratch_cap)
        return true;
    char *s = realloc(p->scratch, n);

    if (!s)
        return false;
    p->scratch = s;
    p->scratch_cap = n;
    return true;
}

/* The message and labels of a JSON object line. Returns false when the
 * line is not a JSON object. Strings point into obj or into dup (freed by
 * the caller). */
static bool tail_parse_json(struct tail_parser *p, json_t *obj, struct tail_rec *r,
                            char **dup, size_t *ndup)
{
    const char *k;
    json_t *v;

    if (!json_is_object(obj))
        return false;
    json_object_foreach(obj, k, v) {
        const char *s = json_string_value(v);

        if (!s) {
            if (json_is_object(v) || json_is_array(v) || *ndup >= TAIL_MAX_LABELS)
                continue;
            s = dup[(*ndup)++] = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            if (!s)
                continue;
        }
        if (!strcmp(k, "message") || !strcmp(k, "msg") || !strcmp(k, "log")) {
            r->message = s;
            r->len = strlen(s);
        } else if (!strcmp(k, "level") || !strcmp(k, "severity") || !strcmp(k, "lvl")) {
            int l = tail_level_of(s, strlen(s));

            if (l)
                r->level = l;
        } else if (r->nlabels < TAIL_MAX_LABELS) {
            p->labels[r->nlabels].key = k;
            p->labels[r->nlabels].value = s;
            r->nlabels++;
        }
    }
    return true;
}

/* The named groups of the regex as message, level and labels. The text
 * lives in p->scratch after the cleaned line (sized by the caller). Returns false when the regex does not match. */
static bool tail_parse_regex(struct tail_parser *p, const char *text, size_t len,
                             struct tail_rec *r)
{
    const struct tail_parse_conf *c = p->conf;
    uint32_t count = 0, esize = 0;
    PCRE2_SPTR table = NULL;
    PCRE2_SIZE *ov;
    char *out = p->scratch + len + 1;
    int rc = pcre2_match(c->regex, (PCRE2_SPTR)text, len, 0, 0, p->md, NULL);

    if (rc < 0)
        return false;
    ov = pcre2_get_ovector_pointer(p->md);
    pcre2_pattern_info(c->regex, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(c->regex, PCRE2_INFO_NAMEENTRYSIZE, &esize);
    pcre2_pattern_info(c->regex, PCRE2_INFO_NAMETABLE, &table);
    for (uint32_t i = 0; i < count; i++) {
        const unsigned char *e = table + (size_t)i * esize;
        unsigned g = (unsigned)(e[0] << 8 | e[1]);
        const char *name = (const char *)e + 2;
        size_t n;

        if (g >= (unsigned)rc || ov[2 * g] == PCRE2_UNSET || ov[2 * g + 1] < ov[2 * g])
            continue;
        n = ov[2 * g + 1] - ov[2 * g];
        /* a group may end inside a multibyte sequence: clean it again */
        struct tail_counts ignore = { 0 };
        size_t m = tail_utf8_clean(text + ov[2 * g], n, out, &ignore);

        if (!strcmp(name, "message")) {
            r->message = out;
            r->len = m;
        } else if (!strcmp(name, "level")) {
            int l = tail_level_of(out, m);

            if (l)
                r->level = l;
        } else if (r->nlabels < TAIL_MAX_LABELS) {
            p->labels[r->nlabels].key = name;
            p->labels[r->nlabels].value = out;
            r->nlabels++;
        }
        out += m + 1;
    }
    return true;
}

/* Clean, parse and emit one record of text[0..n). */
static int tail_emit_text(struct tail_parser *p, const char *text, size_t n, uint64_t off,
                          uint64_t end, bool split, bool truncated, tail_emit_cb emit,
                          void *arg)
{
    struct tail_rec r = { 0 };
    json_t *obj = NULL;
    char *dup[TAIL_MAX_LABELS];
    size_t ndup = 0, clen;
    int rc;

    uint32_t groups = 0;

    if (p->conf->format == TAIL_FMT_REGEX && p->conf->regex)
        pcre2_pattern_info(p->conf->regex, PCRE2_INFO_NAMECOUNT, &groups);
    /* the cleaned text, then each named group cleaned again (at most 3x) */
    if (!tail_scratch(p, (3 * n + 1) + (size_t)groups * (9 * n + 1)))
        return 0;                       /* out of memory: the record is skipped */
    clen = tail_utf8_clean(text, n, p->scratch, p->counts);
    r.message = p->scratch;
    r.len = clen;
    r.offset = off;
    r.end = end;
    r.level = PIPIT_LOG_INFO;
    r.split = split;
    r.truncated = truncated;
    r.labels = p->labels;
    if (p->conf->format == TAIL_FMT_JSON) {
        json_error_t je;

        obj = json_loadb(p->scratch, clen, 0, &je);
        if (!tail_parse_json(p, obj, &r, dup, &ndup)) {
            p->counts->parse_errors++;
            r.message = p->scratch;
            r.len = clen;
            r.nlabels = 0;
        }
    } else if (p->conf->format == TAIL_FMT_REGEX && p->conf->regex) {
        if (!tail_parse_regex(p, p->scratch, clen, &r)) {
            p->counts->parse_errors++;
            r.nlabels = 0;
        }
    }
    p->counts->records++;
    rc = emit(arg, &r);
    for (size_t i = 0; i < ndup; i++)
        free(dup[i]);
    json_decref(obj);
    return rc;
}

/* Emit the pending multiline record, if any. */
static int tail_flush_rec(struct tail_parser *p, tail_emit_cb emit, void *arg)
{
    int rc;

    if (!p->rec_open)
        return 0;
    p->rec_open = false;
    rc = tail_emit_text(p, p->rec, p->rec_len, p->rec_off, p->rec_end, p->rec_split,
                        p->rec_truncated, emit, arg);
    p->rec_len = 0;
    p->rec_split = p->rec_truncated = false;
    return rc;
}

/* A line (or a piece of one) is complete in p->line: emit it, or add it to
 * the multiline record. end is the file offset after it. */
static int tail_line_done(struct tail_parser *p, size_t len, bool split, uint64_t end,
                          tail_emit_cb emit, void *arg)
{
    const struct tail_parse_conf *c = p->conf;
    bool start;
    int rc;

    p->counts->lines++;
    if (split)
        p->counts->split++;
    if (!c->start)
        return tail_emit_text(p, p->line, len, p->line_off, end, split, false, emit, arg);
    start = !p->line_cont &&
            pcre2_match(c->start, (PCRE2_SPTR)p->line, len, 0, 0, p->md, NULL) >= 0;
    if (start || !p->rec_open) {
        rc = tail_flush_rec(p, emit, arg);
        if (rc)
            return rc;
        p->rec_open = true;
        p->rec_off = p->line_off;
        p->rec_len = 0;
    } else if (p->rec_len < c->max_record) {
        p->rec[p->rec_len++] = '\n';
    }
    size_t room = c->max_record - p->rec_len, take = len < room ? len : room;

    if (take < len && !p->rec_truncated) {
        p->rec_truncated = true;
        p->counts->truncated++;
    }
    memcpy(p->rec + p->rec_len, p->line, take);
    p->rec_len += take;
    p->rec_split |= split;
    p->rec_end = end;
    return 0;
}

int tail_parser_feed(struct tail_parser *p, const char *buf, size_t n,
                     tail_emit_cb emit, void *arg)
{
    size_t i = 0, max = p->conf->max_line;
    int rc;

    while (i < n) {
        const char *nl = memchr(buf + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (buf + i)) : n - i, room = max - p->line_len;

        if (take > room) {
            /* the line is longer than max_line: emit a flagged piece */
            memcpy(p->line + p->line_len, buf + i, room);
            i += room;
            p->pos += room;
            rc = tail_line_done(p, max, true, p->pos, emit, arg);
            p->line_len = 0;
            p->line_off = p->pos;
            p->line_cont = true;
            if (rc)
                return rc;
            continue;
        }
        memcpy(p->line + p->line_len, buf + i, take);
        p->line_len += take;
        i += take;
        p->pos += take;
        if (!nl)
            break;
        i++;
        p->pos++;
        size_t len = p->line_len;

        if (len && p->line[len - 1] == '\r')
            len--;
        rc = tail_line_done(p, len, p->line_cont, p->pos, emit, arg);
        p->line_len = 0;
        p->line_off = p->pos;
        p->line_cont = false;
        if (rc)
            return rc;
    }
    return 0;
}

int tail_parser_flush(struct tail_parser *p, bool partial, tail_emit_cb emit, void *arg)
{
    int rc;

    if (partial && p->line_len) {
        rc = tail_line_done(p, p->line_len, p->line_cont, p->pos, emit, arg);
        p->line_len = 0;
        p->line_off = p->pos;
        p->line_cont = false;
        if (rc)
            return rc;
    }
    return tail_flush_rec(p, emit, arg);
}
