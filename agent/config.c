/* config.c: read a YAML config (libyaml events) into a node tree with lines and ${} expansion. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <pipit/plugin.h>
#include "buf.h"
#include "config.h"

#define CFG_MAX_FILE     (4u << 20)     /* bytes of config text */
#define CFG_MAX_DEPTH    64             /* nested maps and lists */
#define CFG_MAX_NODES    100000         /* nodes in one document */
#define CFG_MAX_SECRET   (64u << 10)    /* bytes read by one ${file:...} */
#define CFG_MAX_VALUE    (1u << 20)     /* bytes of one scalar after expansion */
#define CFG_MAX_EXPANDED (16u << 20)    /* bytes of all expanded scalars */
#define CFG_PATH_MAX     512            /* key path kept for messages */
#define CFG_KEY_SHOW     64             /* bytes of one key in a key path */

/* State of one load: the libyaml parser and what the tree has used so far. */
struct loader {
    yaml_parser_t parser;
    const char *text;                   /* the input, for reader error lines */
    size_t len;
    const char *file;                   /* name used in errors */
    const char *basedir;                /* for relative ${file:...}, or NULL */
    struct diag *d;
    size_t nodes;                       /* nodes made so far */
    size_t expanded;                    /* bytes of expanded scalars so far */
    bool stop;                          /* a fatal error: read no further */
    char path[CFG_PATH_MAX];            /* key path of the current node */
    size_t pathlen;
};

/* ---- nodes -------------------------------------------------------------- */

void cfg_node_free(struct cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nchild; i++)
        cfg_node_free(n->child[i]);
    free(n->child);
    free(n->key);
    free(n->value);
    free(n);
}

void cfg_free(struct cfg_doc *doc)
{
    if (!doc)
        return;
    cfg_node_free(doc->root);
    free(doc->file);
    free(doc);
}

static struct cfg_node *node_new(enum cfg_type type, int line)
{
    struct cfg_node *n = calloc(1, sizeof(*n));

    if (n) {
        n->type = type;
        n->line = line;
    }
    return n;
}

/* Append child c to collection n. Returns PIPIT_OK or PIPIT_ENOMEM (c is
 * then still the caller's). */
static int node_append(struct cfg_node *n, struct cfg_node *c)
{
    if ((n->nchild & (n->nchild - 1)) == 0) {   /* 0, 1, 2, 4, 8...: grow */
        size_t cap = n->nchild ? n->nchild * 2 : 1;
        struct cfg_node **child = realloc(n->child, cap * sizeof(*child));
        if (!child)
            return PIPIT_ENOMEM;
        n->child = child;
    }
    n->child[n->nchild++] = c;
    return PIPIT_OK;
}

const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key)
{
    if (!map || map->type != CFG_MAP || !key)
        return NULL;
    for (size_t i = 0; i < map->nchild; i++)
        if (map->child[i]->key && strcmp(map->child[i]->key, key) == 0)
            return map->child[i];
    return NULL;
}

struct cfg_node *cfg_node_copy(const struct cfg_node *n, cfg_rewrite_fn rewrite, void *arg)
{
    struct cfg_node *c = node_new(n->type, n->line);

    if (!c)
        return NULL;
    c->secret = n->secret;
    c->plain = n->plain;
    if (n->key && !(c->key = strdup(n->key)))
        goto fail;
    if (n->value && !(c->value = rewrite ? rewrite(n, arg) : strdup(n->value)))
        goto fail;
    for (size_t i = 0; i < n->nchild; i++) {
        struct cfg_node *k = cfg_node_copy(n->child[i], rewrite, arg);
        if (!k)
            goto fail;
        if (node_append(c, k) != PIPIT_OK) {
            cfg_node_free(k);
            goto fail;
        }
    }
    return c;
fail:
    cfg_node_free(c);
    return NULL;
}

struct cfg_node *cfg_new_map(void)
{
    return node_new(CFG_MAP, 0);
}

/*
 * Set key to a scalar in map, replacing an existing entry of that key. The
 * text is taken as it is (no ${} expansion) and counts as quoted, so "" is
 * an empty string; a NULL value makes a YAML null. Returns the new node
 * (owned by map) or NULL on out of memory or when map is not a map.
 */
/* Put n (keyed) into map, replacing an entry of the same key. */
static struct cfg_node *map_put(struct cfg_node *map, struct cfg_node *n)
{
    for (size_t i = 0; i < map->nchild; i++) {
        if (map->child[i]->key && strcmp(map->child[i]->key, n->key) == 0) {
            cfg_node_free(map->child[i]);
            map->child[i] = n;
            return n;
        }
    }
    if (node_append(map, n) != PIPIT_OK) {
        cfg_node_free(n);
        return NULL;
    }
    return n;
}

struct cfg_node *cfg_map_set(struct cfg_node *map, const char *key,
                             const char *value)
{
    struct cfg_node *n;

    if (!map || map->type != CFG_MAP || !key)
        return NULL;
    if (!(n = node_new(CFG_SCALAR, 0)))
        return NULL;
    n->key = strdup(key);
    n->value = strdup(value ? value : "");
    n->plain = value == NULL;
    if (!n->key || !n->value) {
        cfg_node_free(n);
        return NULL;
    }
    return map_put(map, n);
}

struct cfg_node *cfg_map_set_text(struct cfg_node *map, const char *key,
                                  const char *text, struct diag *d)
{
    if (!map || map->type != CFG_MAP || !key || !text)
        return NULL;
    if (text[0] != '[' && text[0] != '{')
        return cfg_map_set(map, key, text);

    size_t len = strlen(text) + 4;
    char *yaml = malloc(len);
    if (!yaml)
        return NULL;
    snprintf(yaml, len, "v: %s", text);
    struct cfg_doc *doc = cfg_load_string(yaml, len - 1, key, d);
    free(yaml);
    if (!doc)
        return NULL;
    struct cfg_node *n = doc->root && doc->root->nchild == 1 ? doc->root->child[0] : NULL;
    if (n) {
        doc->root->nchild = 0;          /* n is ours now */
        free(n->key);
        n->key = strdup(key);
    }
    cfg_free(doc);
    if (!n || !n->key) {
        cfg_node_free(n);
        return NULL;
    }
    return map_put(map, n);
}

const char *cfg_show(const struct cfg_node *n)
{
    if (!n)
        return "(none)";
    if (n->secret)
        return "<redacted>";
    if (n->type == CFG_MAP)
        return "<map>";
    if (n->type == CFG_SEQ)
        return "<list>";
    return n->value ? n->value : "";
}

/* ---- errors and key paths ----------------------------------------------- */

static void load_error(struct loader *L, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void load_error(struct loader *L, int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    diag_add(L->d, L->file, line, L->pathlen ? L->path : NULL, "%s", msg);
}

/* Append a key (".key", or "key" at the top) or an index ("[3]") to the
 * key path; returns the old length for path_pop(). Long paths are cut. */
static size_t path_push_key(struct loader *L, const char *key)
{
    size_t old = L->pathlen;
    int n = snprintf(L->path + old, sizeof(L->path) - old, "%s%.*s",
                     old ? "." : "", CFG_KEY_SHOW, key);

    if (n > 0)
        L->pathlen = old + (size_t)n < sizeof(L->path) ? old + (size_t)n
                                                       : sizeof(L->path) - 1;
    return old;
}

static size_t path_push_index(struct loader *L, size_t i)
{
    size_t old = L->pathlen;
    int n = snprintf(L->path + old, sizeof(L->path) - old, "[%zu]", i);

    if (n > 0)
        L->pathlen = old + (size_t)n < sizeof(L->path) ? old + (size_t)n
                                                       : sizeof(L->path) - 1;
    return old;
}

static void path_pop(struct loader *L, size_t old)
{
    L->pathlen = old;
    L->path[old] = '\0';
}

/* Line (1-based) of a byte offset of the input. */
static int offset_line(const struct loader *L, size_t off)
{
    int line = 1;

    if (off > L->len)
        off = L->len;
    for (size_t i = 0; i < off; i++)
        if (L->text[i] == '\n')
            line++;
    return line;
}

/* Report the parser's error (syntax, encoding or memory) and stop. */
static void syntax_error(struct loader *L)
{
    yaml_parser_t *p = &L->parser;
    const char *problem = p->problem ? p->problem : "unknown error";
    size_t old = L->pathlen;

    L->pathlen = 0;                     /* the key path would mislead here */
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        load_error(L, 0, "out of memory while parsing");
        break;
    case YAML_READER_ERROR:
        if (p->problem_value != -1)
            load_error(L, offset_line(L, p->problem_offset),
                       "invalid input: %s (byte 0x%02x)", problem,
                       (unsigned)p->problem_value & 0xffu);
        else
            load_error(L, offset_line(L, p->problem_offset), "invalid input: %s",
                       problem);
        break;
    default:
        if (p->context)
            load_error(L, (int)p->problem_mark.line + 1,
                       "YAML syntax error: %s (%s at line %d)", problem,
                       p->context, (int)p->context_mark.line + 1);
        else
            load_error(L, (int)p->problem_mark.line + 1, "YAML syntax error: %s",
                       problem);
        break;
    }
    L->pathlen = old;
    L->stop = true;
}

/* Read the next event; false (error reported, L->stop set) when there is
 * none. The caller deletes a returned event. */
static bool next_event(struct loader *L, yaml_event_t *ev)
{
    if (L->stop)
        return false;
    if (!yaml_parser_parse(&L->parser, ev)) {
        syntax_error(L);
        return false;
    }
    return true;
}

/* Refuse anchors and tags on a node: config stays plain YAML. */
static void check_plain(struct loader *L, int line, const yaml_char_t *anchor,
                        const yaml_char_t *tag)
{
    if (anchor)
        load_error(L, line, "anchors (&name) are not allowed");
    if (tag)
        load_error(L, line, "tags (!tag) are not allowed");
}

/* ---- ${} expansion ------------------------------------------------------ */

static bool valid_env_name(const char *s, size_t n)
{
    if (n == 0 || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') ||
                    (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

int cfg_read_small_file(const char *path, size_t max, struct buf *out,
                           const char **why)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int rc = PIPIT_EIO;

    if (fd < 0) {
        *why = strerror(errno);
        return PIPIT_EIO;
    }
    if (fstat(fd, &st) != 0) {
        *why = strerror(errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        goto out;
    }
    if ((uintmax_t)st.st_size > max) {
        *why = "file too large";
        rc = PIPIT_EFULL;
        goto out;
    }
    for (;;) {
        ssize_t r;
        if (buf_reserve(out, 4096) != PIPIT_OK) {
            *why = "out of memory";
            goto out;
        }
        r = read(fd, out->data + out->len, out->cap - out->len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            *why = strerror(errno);
            goto out;
        }
        if (r == 0) {
            out->data[out->len] = '\0';  /* an empty file too */
            break;
        }
        out->len += (size_t)r;
        out->data[out->len] = '\0';
        if (out->len > max) {           /* it grew while we read */
            *why = "file too large";
            rc = PIPIT_EFULL;
            goto out;
        }
    }
    rc = PIPIT_OK;
out:
    close(fd);
    return rc;
}

/*
 * Append the contents of the file named by ${file:spec} to b (one trailing
 * newline removed). A relative path is taken from the config file's
 * directory. Errors are reported; returns false on error.
 */
static bool expand_file(struct loader *L, int line, const char *spec, size_t n,
                        struct buf *b)
{
    struct buf content = BUF_INIT;
    char *path = NULL;
    const char *why = NULL;
    bool ok = false;
    int rc;

    if (n == 0) {
        load_error(L, line, "${file:} needs a path");
        return false;
    }
    if (spec[0] != '/' && L->basedir)
        rc = asprintf(&path, "%s/%.*s", L->basedir, (int)n, spec);
    else
        rc = asprintf(&path, "%.*s", (int)n, spec);
    if (rc < 0) {
        path = NULL;
        load_error(L, line, "out of memory");
        goto out;
    }
    if (strlen(path) != (size_t)rc) {
        load_error(L, line, "${file:...} path contains a NUL byte");
        goto out;
    }
    rc = cfg_read_small_file(path, CFG_MAX_SECRET, &content, &why);
    if (rc == PIPIT_EFULL) {
        load_error(L, line, "cannot read ${file:%s}: larger than %u KiB",
                   path, CFG_MAX_SECRET >> 10);
        goto out;
    }
    if (rc != PIPIT_OK) {
        load_error(L, line, "cannot read ${file:%s}: %s", path, why);
        goto out;
    }
    if (content.len && memchr(content.data, '\0', content.len)) {
        load_error(L, line, "${file:%s} contains a NUL byte", path);
        goto out;
    }
    if (content.len && content.data[content.len - 1] == '\n') {
        content.len--;
        if (content.len && content.data[content.len - 1] == '\r')
            content.len--;
    }
    if (buf_append(b, content.data, content.len) != PIPIT_OK) {
        load_error(L, line, "out of memory");
        goto out;
    }
    ok = true;
out:
    buf_free(&content);
    free(path);
    return ok;
}

/*
 * Expand ${NAME}, ${file:path} and $${ in the n bytes at in. Returns the
 * result (free()) and sets *secret when anything was expanded; returns NULL
 * after reporting an error. Values never appear in messages: only names.
 */
static char *expand(struct loader *L, int line, const char *in, size_t n,
                    bool *secret)
{
    struct buf b = BUF_INIT;
    size_t i = 0;

    *secret = false;
    if (!memchr(in, '$', n))            /* the common case */
        return strndup(in, n);
    while (i < n) {
        const char *close, *name;
        size_t nlen;

        if (in[i] == '$' && i + 2 < n && in[i + 1] == '$' && in[i + 2] == '{') {
            if (buf_append(&b, "${", 2) != PIPIT_OK)
                goto oom;
            i += 3;
            continue;
        }
        if (!(in[i] == '$' && i + 1 < n && in[i + 1] == '{')) {
            if (buf_putc(&b, in[i]) != PIPIT_OK)
                goto oom;
            i++;
            continue;
        }
        name = in + i + 2;
        close = memchr(name, '}', n - (i + 2));
        if (!close) {
            load_error(L, line, "unterminated ${ (write $${ for a literal \"${\")");
            goto fail;
        }
        nlen = (size_t)(close - name);
        *secret = true;
        if (nlen >= 5 && memcmp(name, "file:", 5) == 0) {
            if (!expand_file(L, line, name + 5, nlen - 5, &b))
                goto fail;
        } else if (!valid_env_name(name, nlen)) {
            load_error(L, line, "invalid variable name in ${%.*s}: use letters, "
                       "digits and _, or file:/path", nlen > 64 ? 64 : (int)nlen,
                       name);
            goto fail;
        } else {
            char var[256];
            const char *v;
            if (nlen >= sizeof(var)) {
                load_error(L, line, "variable name too long in ${...}");
                goto fail;
            }
            memcpy(var, name, nlen);
            var[nlen] = '\0';
            if (!(v = getenv(var))) {
                load_error(L, line, "environment variable %s is not set", var);
                goto fail;
            }
            if (strlen(v) > CFG_MAX_VALUE || buf_puts(&b, v) != PIPIT_OK)
                goto toolong;
        }
        if (b.len > CFG_MAX_VALUE)
            goto toolong;
        i += 2 + nlen + 1;
    }
    if (b.len > CFG_MAX_VALUE)
        goto toolong;
    L->expanded += b.len;
    if (L->expanded > CFG_MAX_EXPANDED) {
        load_error(L, line, "expanded values exceed %u MiB in total",
                   CFG_MAX_EXPANDED >> 20);
        L->stop = true;
        goto fail;
    }
    return buf_steal(&b);
toolong:
    load_error(L, line, "value longer than %u KiB after expansion",
               CFG_MAX_VALUE >> 10);
    goto fail;
oom:
    load_error(L, line, "out of memory");
fail:
    buf_free(&b);
    return NULL;
}

/* ---- the tree ----------------------------------------------------------- */

static struct cfg_node *parse_node(struct loader *L, yaml_event_t *ev, int depth);

/* Count one more node; false (reported, stop) past the limit. */
static bool count_node(struct loader *L, int line)
{
    if (++L->nodes <= CFG_MAX_NODES)
        return true;
    load_error(L, line, "too many values (more than %d)", CFG_MAX_NODES);
    L->stop = true;
    return false;
}

/* Make a scalar node from a scalar event, expanding its value. Errors are
 * reported and leave an empty value; NULL only on out of memory. */
static struct cfg_node *parse_scalar(struct loader *L, yaml_event_t *ev, int line)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    struct cfg_node *node = node_new(CFG_SCALAR, line);

    if (!node)
        goto oom;
    node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    check_plain(L, line, ev->data.scalar.anchor, ev->data.scalar.tag);
    if (memchr(v, '\0', n)) {
        load_error(L, line, "value contains a NUL character");
        node->value = strdup("");
    } else {
        node->value = expand(L, line, v, n, &node->secret);
        if (!node->value && !(node->value = strdup("")))
            goto oom;
    }
    if (!node->value)
        goto oom;
    return node;
oom:
    cfg_node_free(node);
    load_error(L, line, "out of memory");
    L->stop = true;
    return NULL;
}

/* Parse the items of a sequence up to its end event. */
static struct cfg_node *parse_seq(struct loader *L, int line, int depth)
{
    struct cfg_node *seq = node_new(CFG_SEQ, line);
    yaml_event_t ev;

    if (!seq) {
        load_error(L, line, "out of memory");
        L->stop = true;
        return NULL;
    }
    while (next_event(L, &ev)) {
        struct cfg_node *item;
        size_t mark;

        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return seq;
        }
        mark = path_push_index(L, seq->nchild);
        item = parse_node(L, &ev, depth + 1);
        path_pop(L, mark);
        if (!item)
            break;
        if (node_append(seq, item) != PIPIT_OK) {
            cfg_node_free(item);
            load_error(L, line, "out of memory");
            L->stop = true;
            break;
        }
    }
    cfg_node_free(seq);
    return NULL;
}

struct key_ref {
    const char *key;
    size_t index;                       /* order in the map */
    int line;                           /* line of the key */
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Report every key that appears twice in map (sorting keeps large maps
 * fast). lines[i] is the line of the key of child i. */
static void check_duplicates(struct loader *L, const struct cfg_node *map,
                             const int *lines)
{
    struct key_ref *refs;

    if (map->nchild < 2)
        return;
    if (!(refs = malloc(map->nchild * sizeof(*refs)))) {
        load_error(L, map->line, "out of memory");
        L->stop = true;
        return;
    }
    for (size_t i = 0; i < map->nchild; i++)
        refs[i] = (struct key_ref){ map->child[i]->key, i, lines[i] };
    qsort(refs, map->nchild, sizeof(*refs), key_ref_cmp);
    for (size_t i = 1, first = 0; i < map->nchild; i++) {
        size_t mark;
        if (strcmp(refs[i].key, refs[first].key) != 0) {
            first = i;
            continue;
        }
        mark = path_push_key(L, refs[i].key);
        load_error(L, refs[i].line, "duplicate key '%.*s' (first at line %d)",
                   CFG_KEY_SHOW, refs[i].key, refs[first].line);
        path_pop(L, mark);
    }
    free(refs);
}

/*
 * Parse the entries of a map up to its end event. Keys must be non-empty
 * scalars; a key that is not is reported and its entry dropped.
 */
static struct cfg_node *parse_map(struct loader *L, int line, int depth)
{
    struct cfg_node *map = node_new(CFG_MAP, line);
    int *lines = NULL;                  /* line of each key, for duplicates */
    yaml_event_t ev;

    if (!map)
        goto oom;
    while (next_event(L, &ev)) {
        struct cfg_node *value;
        char *key = NULL;
        int kline = (int)ev.start_mark.line + 1;
        size_t mark;

        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            check_duplicates(L, map, lines);
            free(lines);
            lines = NULL;
            if (L->stop)
                break;
            return map;
        }
        if (ev.type == YAML_SCALAR_EVENT) {
            const char *k = (const char *)ev.data.scalar.value;
            size_t klen = ev.data.scalar.length;
            check_plain(L, kline, ev.data.scalar.anchor, ev.data.scalar.tag);
            if (klen == 0)
                load_error(L, kline, "empty key");
            else if (memchr(k, '\0', klen))
                load_error(L, kline, "key contains a NUL character");
            else if (!(key = strndup(k, klen))) {
                yaml_event_delete(&ev);
                goto oom;
            }
            yaml_event_delete(&ev);
        } else if (ev.type == YAML_ALIAS_EVENT) {
            load_error(L, kline, "aliases (*name) are not allowed");
            yaml_event_delete(&ev);
        } else {
            /* A map or list as a key: parse it to skip it. */
            struct cfg_node *junk;
            load_error(L, kline, "keys must be scalars, not %s",
                       ev.type == YAML_MAPPING_START_EVENT ? "maps" : "lists");
            junk = parse_node(L, &ev, depth + 1);
            if (!junk)
                break;
            cfg_node_free(junk);
        }

        if (!next_event(L, &ev)) {
            free(key);
            break;
        }
        mark = key ? path_push_key(L, key) : L->pathlen;
        value = parse_node(L, &ev, depth + 1);
        path_pop(L, mark);
        if (!value) {
            free(key);
            break;
        }
        /* Collections and empty values are reported at their key's line. */
        if (value->type != CFG_SCALAR || (value->plain && !*value->value))
            value->line = kline;
        if (!key) {
            cfg_node_free(value);
            continue;
        }
        value->key = key;
        if ((map->nchild & (map->nchild - 1)) == 0) {
            int *nl = realloc(lines, (map->nchild ? map->nchild * 2 : 1) *
                                     sizeof(*nl));
            if (!nl) {
                cfg_node_free(value);
                goto oom;
            }
            lines = nl;
        }
        if (node_append(map, value) != PIPIT_OK) {
            cfg_node_free(value);
            goto oom;
        }
        lines[map->nchild - 1] = kline;
    }
    goto fail;
oom:
    load_error(L, line, "out of memory");
    L->stop = true;
fail:
    free(lines);
    cfg_node_free(map);
    return NULL;
}

/*
 * Build the node that starts with event ev (which this function deletes).
 * depth is the nesting of the new node (the document root is 1). Returns
 * NULL when parsing must stop (fatal error already reported).
 */
static struct cfg_node *parse_node(struct loader *L, yaml_event_t *ev, int depth)
{
    int line = (int)ev->start_mark.line + 1;
    struct cfg_node *n = NULL;

    if (!count_node(L, line))
        goto out;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = parse_scalar(L, ev, line);
        break;
    case YAML_ALIAS_EVENT:
        load_error(L, line, "aliases (*name) are not allowed");
        n = node_new(CFG_SCALAR, line);
        if (n && !(n->value = strdup(""))) {
            cfg_node_free(n);
            n = NULL;
        }
        if (!n) {
            load_error(L, line, "out of memory");
            L->stop = true;
        }
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool is_map = ev->type == YAML_MAPPING_START_EVENT;
        if (is_map)
            check_plain(L, line, ev->data.mapping_start.anchor,
                        ev->data.mapping_start.tag);
        else
            check_plain(L, line, ev->data.sequence_start.anchor,
                        ev->data.sequence_start.tag);
        if (depth > CFG_MAX_DEPTH) {
            load_error(L, line, "nested deeper than %d levels", CFG_MAX_DEPTH);
            L->stop = true;
            break;
        }
        yaml_event_delete(ev);
        return is_map ? parse_map(L, line, depth) : parse_seq(L, line, depth);
    }
    default:
        load_error(L, line, "unexpected YAML event %d", (int)ev->type);
        L->stop = true;
        break;
    }
out:
    yaml_event_delete(ev);
    return n;
}

/* A YAML null at the top: an empty document. */
static bool is_null_scalar(const struct cfg_node *n)
{
    return n->type == CFG_SCALAR && n->plain &&
           (!*n->value || strcmp(n->value, "~") == 0 ||
            strcmp(n->value, "null") == 0 || strcmp(n->value, "Null") == 0 ||
            strcmp(n->value, "NULL") == 0);
}

/*
 * Parse the whole stream: at most one document whose root is a map (or
 * empty). Returns the root (NULL for an empty document, or on error: tell
 * them apart by the diag count).
 */
static struct cfg_node *parse_stream(struct loader *L)
{
    struct cfg_node *root = NULL;
    yaml_event_t ev;
    int line;

    if (!next_event(L, &ev))            /* STREAM-START */
        return NULL;
    yaml_event_delete(&ev);
    if (!next_event(L, &ev))
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return NULL;                    /* empty file */
    }
    line = (int)ev.start_mark.line + 1;
    if (ev.data.document_start.tag_directives.start !=
        ev.data.document_start.tag_directives.end)
        load_error(L, line, "%%TAG directives are not allowed");
    yaml_event_delete(&ev);

    if (!next_event(L, &ev))
        return NULL;
    root = parse_node(L, &ev, 1);
    if (!root)
        return NULL;
    if (!next_event(L, &ev))            /* DOCUMENT-END */
        goto fail;                      /* a syntax error says more */
    yaml_event_delete(&ev);
    if (root->type != CFG_MAP) {
        if (!is_null_scalar(root))
            load_error(L, root->line, "the top level must be a map of settings, "
                       "not %s", root->type == CFG_SEQ ? "a list" : "a scalar");
        cfg_node_free(root);
        root = NULL;
    }
    if (!next_event(L, &ev))
        goto fail;
    if (ev.type == YAML_DOCUMENT_START_EVENT)
        load_error(L, (int)ev.start_mark.line + 1,
                   "more than one document (---): a config is one document");
    yaml_event_delete(&ev);
    return root;
fail:
    cfg_node_free(root);
    return NULL;
}

/*
 * Parse text into a document named name; basedir resolves relative
 * ${file:...} paths. Returns the document or NULL when errors were added
 * to d.
 */
static struct cfg_doc *load(const char *text, size_t len, const char *name,
                            const char *basedir, struct diag *d)
{
    struct loader *L = NULL;
    struct cfg_doc *doc = NULL;
    size_t errors = d->count + d->dropped;

    if (!name)
        name = "<string>";
    if (len > CFG_MAX_FILE) {
        diag_add(d, name, 0, NULL, "file too large (more than %u MiB)",
                 CFG_MAX_FILE >> 20);
        return NULL;
    }
    if (!(L = calloc(1, sizeof(*L))) || !yaml_parser_initialize(&L->parser)) {
        diag_add(d, name, 0, NULL, "out of memory");
        free(L);
        return NULL;
    }
    L->text = text;
    L->len = len;
    L->file = name;
    L->basedir = basedir;
    L->d = d;
    yaml_parser_set_input_string(&L->parser, (const unsigned char *)text, len);

    if (!(doc = calloc(1, sizeof(*doc))) || !(doc->file = strdup(name))) {
        diag_add(d, name, 0, NULL, "out of memory");
        goto fail;
    }
    doc->root = parse_stream(L);
    if (d->count + d->dropped != errors)
        goto fail;
    yaml_parser_delete(&L->parser);
    free(L);
    return doc;
fail:
    cfg_free(doc);
    yaml_parser_delete(&L->parser);
    free(L);
    return NULL;
}

struct cfg_doc *cfg_load_string(const char *text, size_t len, const char *name,
                                struct diag *d)
{
    return load(text ? text : "", text ? len : 0, name, NULL, d);
}

/*
 * Read the file at path (a regular file of at most 4 MiB) and parse it.
 * Relative ${file:...} paths are taken from the file's directory.
 */
struct cfg_doc *cfg_load_file(const char *path, struct diag *d)
{
    struct buf text = BUF_INIT;
    struct cfg_doc *doc = NULL;
    const char *why = NULL, *slash;
    char *dir = NULL;
    int rc;

    rc = cfg_read_small_file(path, CFG_MAX_FILE, &text, &why);
    if (rc == PIPIT_EFULL) {
        diag_add(d, path, 0, NULL, "file too large (more than %u MiB)",
                 CFG_MAX_FILE >> 20);
        goto out;
    }
    if (rc != PIPIT_OK) {
        diag_add(d, path, 0, NULL, "cannot read: %s", why);
        goto out;
    }
    slash = strrchr(path, '/');
    if (slash && !(dir = strndup(path, slash == path ? 1 : (size_t)(slash - path)))) {
        diag_add(d, path, 0, NULL, "out of memory");
        goto out;
    }
    doc = load(text.data ? text.data : "", text.len, path, dir, d);
out:
    free(dir);
    buf_free(&text);
    return doc;
}
