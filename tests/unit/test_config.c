/* test_config.c: YAML config loading, ${} expansion, error lines and the diag list. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../tap.h"
#include "../../agent/config.h"   /* not the build's autoconf config.h */
#include "diag.h"
#include "log.h"

#define SECRET "s3cr3t-Value-42"

static char tmpdir[256];

/* Everything diag_print writes, as one string (free()). */
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

/* True when d has an error at line whose key is key (NULL: none) and whose
 * message contains needle. */
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

/* Load text, expecting exactly one error at line/key containing needle. */
static void expect_error(const char *text, int line, const char *key,
                         const char *needle, const char *what)
{
    struct diag d;
    struct cfg_doc *doc;

    diag_init(&d);
    doc = cfg_load_string(text, strlen(text), "t.yaml", &d);
    ok(doc == NULL && d.count == 1 && has_error(&d, line, key, needle),
       "%s: error at line %d", what, line);
    if (d.count != 1 || !has_error(&d, line, key, needle)) {
        char *s = diag_text(&d);
        diag("got %zu errors:\n%s", d.count, s);
        free(s);
    }
    cfg_free(doc);
    diag_free(&d);
}

/* Load text that must be valid. */
static struct cfg_doc *load_ok(const char *text, const char *what)
{
    struct diag d;
    struct cfg_doc *doc;

    diag_init(&d);
    doc = cfg_load_string(text, strlen(text), "t.yaml", &d);
    ok(doc != NULL && d.count == 0, "%s: loads", what);
    if (d.count) {
        char *s = diag_text(&d);
        diag("%s", s);
        free(s);
    }
    diag_free(&d);
    return doc;
}

static char *write_file(const char *name, const char *content, size_t len)
{
    char *path = NULL;
    FILE *f;

    if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
        abort();
    f = fopen(path, "wb");
    if (!f || fwrite(content, 1, len, f) != len)
        abort();
    fclose(f);
    return path;
}

static void test_tree(void)
{
    const char *text =
        "# a comment\n"                 /* 1 */
        "agent:\n"                      /* 2 */
        "  name: web-1\n"               /* 3 */
        "  empty:\n"                    /* 4 */
        "  quoted: \"\"\n"              /* 5 */
        "  tilde: ~\n"                  /* 6 */
        "inputs:\n"                     /* 7 */
        "  - plugin: cpu\n"             /* 8 */
        "    interval: 10s\n"           /* 9 */
        "  - plugin: mem\n"             /* 10 */
        "    tags: [a, 'b c']\n"        /* 11 */
        "text: |\n"                     /* 12 */
        "  line one\n"                  /* 13 */
        "  line two\n";                 /* 14 */
    struct cfg_doc *doc = load_ok(text, "tree");
    const struct cfg_node *r, *a, *in, *n;

    if (!doc) {
        skip(24, "no document");
        return;
    }
    r = doc->root;
    is_str(doc->file, "t.yaml", "document keeps its name");
    ok(r && r->type == CFG_MAP && r->nchild == 3, "root is a map of 3");
    a = cfg_get(r, "agent");
    ok(a && a->type == CFG_MAP && a->line == 2, "agent: map at line 2");
    n = cfg_get(a, "name");
    ok(n && n->type == CFG_SCALAR && n->line == 3 && n->plain && !n->secret,
       "agent.name scalar, plain, line 3");
    is_str(n ? n->value : NULL, "web-1", "agent.name value");
    is_str(n ? n->key : NULL, "name", "node keeps its key");
    n = cfg_get(a, "empty");
    ok(n && n->plain && n->value && !*n->value && n->line == 4,
       "key with no value: empty plain scalar (null) at its key's line");
    n = cfg_get(a, "quoted");
    ok(n && !n->plain && n->value && !*n->value && n->line == 5,
       "\"\": empty string, not plain");
    n = cfg_get(a, "tilde");
    ok(n && n->plain && strcmp(n->value, "~") == 0, "~ stays as plain text");
    in = cfg_get(r, "inputs");
    ok(in && in->type == CFG_SEQ && in->nchild == 2 && in->line == 7,
       "inputs: list of 2 at line 7");
    ok(in && in->nchild == 2 && in->child[0]->type == CFG_MAP &&
       in->child[0]->line == 8 && in->child[0]->key == NULL,
       "list item 0 is a map at line 8 without key");
    n = in && in->nchild == 2 ? cfg_get(in->child[0], "interval") : NULL;
    ok(n && n->line == 9 && strcmp(n->value, "10s") == 0, "inputs[0].interval");
    n = in && in->nchild == 2 ? cfg_get(in->child[1], "tags") : NULL;
    ok(n && n->type == CFG_SEQ && n->nchild == 2 && n->line == 11, "flow list");
    ok(n && n->nchild == 2 && n->child[0]->plain && !n->child[1]->plain &&
       strcmp(n->child[1]->value, "b c") == 0, "flow list items, quoting kept");
    n = cfg_get(r, "text");
    is_str(n ? n->value : NULL, "line one\nline two\n", "block literal");
    ok(n && !n->plain && n->line == 12, "block literal is not plain");
    ok(cfg_get(r, "missing") == NULL, "cfg_get: missing key");
    ok(cfg_get(NULL, "x") == NULL, "cfg_get: NULL map");
    ok(cfg_get(in, "x") == NULL, "cfg_get: not a map");
    is_str(cfg_show(a), "<map>", "cfg_show map");
    is_str(cfg_show(in), "<list>", "cfg_show list");
    is_str(cfg_show(NULL), "(none)", "cfg_show NULL");
    is_str(cfg_show(cfg_get(a, "name")), "web-1", "cfg_show scalar");
    ok(cfg_get(r, "agent") == r->child[0], "children keep file order");
    cfg_free(doc);
}

static void test_empty(void)
{
    struct cfg_doc *doc;

    doc = load_ok("", "empty text");
    ok(doc && doc->root == NULL, "empty text: no root");
    cfg_free(doc);
    doc = load_ok("# only a comment\n\n", "comments only");
    ok(doc && doc->root == NULL, "comments only: no root");
    cfg_free(doc);
    doc = load_ok("---\n", "bare document start");
    ok(doc && doc->root == NULL, "--- alone: no root");
    cfg_free(doc);
    doc = load_ok("---\na: 1\n...\n", "explicit document markers");
    ok(doc && doc->root && cfg_get(doc->root, "a") &&
       cfg_get(doc->root, "a")->line == 2, "--- a: 1 ...: line 2");
    cfg_free(doc);
    doc = load_ok("{a: 1, b: [x, y]}", "flow map at the top");
    ok(doc && doc->root && doc->root->nchild == 2, "flow map: 2 entries");
    cfg_free(doc);
    doc = load_ok("%YAML 1.2\n---\na: 1\n", "%YAML directive");
    cfg_free(doc);
}

static void test_expansion(void)
{
    struct cfg_doc *doc;
    const struct cfg_node *n;
    char *path, *text;

    setenv("PIPIT_T_TOKEN", SECRET, 1);
    setenv("PIPIT_T_EMPTY", "", 1);
    setenv("PIPIT_T_A", "aa", 1);
    doc = load_ok("auth: \"Bearer ${PIPIT_T_TOKEN}\"\n"
                  "plain: ${PIPIT_T_TOKEN}\n"
                  "two: ${PIPIT_T_A}-${PIPIT_T_A}\n"
                  "empty: x${PIPIT_T_EMPTY}y\n"
                  "esc: \"$${PIPIT_T_TOKEN} costs $5 $$ $x\"\n"
                  "single: 'in ${PIPIT_T_A}'\n"
                  "mixed: $${a}${PIPIT_T_A}\n"
                  "${PIPIT_T_A}: key\n",
                  "expansion");
    if (!doc) {
        skip(14, "no document");
        return;
    }
    n = cfg_get(doc->root, "auth");
    is_str(n ? n->value : NULL, "Bearer " SECRET, "text around ${} is kept");
    ok(n && n->secret, "expanded node is secret");
    is_str(cfg_show(n), "<redacted>", "cfg_show hides a secret");
    n = cfg_get(doc->root, "plain");
    ok(n && n->secret && n->plain && strcmp(n->value, SECRET) == 0,
       "unquoted ${} expands, stays plain");
    n = cfg_get(doc->root, "two");
    is_str(n ? n->value : NULL, "aa-aa", "two expansions in one value");
    n = cfg_get(doc->root, "empty");
    ok(n && n->secret && strcmp(n->value, "xy") == 0, "empty variable is defined");
    n = cfg_get(doc->root, "esc");
    is_str(n ? n->value : NULL, "${PIPIT_T_TOKEN} costs $5 $$ $x",
           "$${ is a literal ${, other $ untouched");
    ok(n && !n->secret, "escape alone does not make a secret");
    n = cfg_get(doc->root, "single");
    is_str(n ? n->value : NULL, "in aa", "single-quoted values expand too");
    n = cfg_get(doc->root, "mixed");
    is_str(n ? n->value : NULL, "${a}aa", "escape next to an expansion");
    ok(cfg_get(doc->root, "${PIPIT_T_A}") != NULL, "keys are never expanded");
    cfg_free(doc);

    /* ${file:...}: one trailing newline (or CRLF) removed. */
    path = write_file("token", SECRET "\n\n", strlen(SECRET) + 2);
    if (asprintf(&text, "k: \"${file:%s}\"\n", path) < 0)
        abort();
    doc = load_ok(text, "${file:}");
    n = doc ? cfg_get(doc->root, "k") : NULL;
    is_str(n ? n->value : NULL, SECRET "\n", "file: one trailing newline stripped");
    ok(n && n->secret, "file: node is secret");
    cfg_free(doc);
    free(text);
    free(path);

    path = write_file("crlf", "pw\r\n", 4);
    if (asprintf(&text, "k: ${file:%s}\n", path) < 0)
        abort();
    doc = load_ok(text, "${file:} with CRLF");
    n = doc ? cfg_get(doc->root, "k") : NULL;
    is_str(n ? n->value : NULL, "pw", "file: CRLF stripped");
    cfg_free(doc);
    free(text);
    free(path);

    path = write_file("emptyfile", "", 0);
    if (asprintf(&text, "k: <${file:%s}>\n", path) < 0)
        abort();
    doc = load_ok(text, "${file:} of an empty file");
    n = doc ? cfg_get(doc->root, "k") : NULL;
    is_str(n ? n->value : NULL, "<>", "empty file expands to nothing");
    cfg_free(doc);
    free(text);
    free(path);
}

static void test_file_load(void)
{
    struct diag d;
    struct cfg_doc *doc;
    char *cfg, *secret, *missing;
    const struct cfg_node *n;

    /* Relative ${file:} paths are taken from the config file's directory. */
    secret = write_file("rel-secret", "relpw\n", 6);
    cfg = write_file("rel.yaml", "a:\n  pw: ${file:rel-secret}\n", 28);
    diag_init(&d);
    doc = cfg_load_file(cfg, &d);
    ok(doc && d.count == 0, "cfg_load_file: loads");
    is_str(doc ? doc->file : NULL, cfg, "cfg_load_file: named by its path");
    n = doc ? cfg_get(cfg_get(doc->root, "a"), "pw") : NULL;
    is_str(n ? n->value : NULL, "relpw", "relative ${file:} from the config's dir");
    ok(n && n->line == 2, "expanded node keeps its line");
    cfg_free(doc);
    diag_free(&d);
    free(cfg);
    free(secret);

    if (asprintf(&missing, "%s/no-such.yaml", tmpdir) < 0)
        abort();
    diag_init(&d);
    doc = cfg_load_file(missing, &d);
    ok(!doc && d.count == 1 && has_error(&d, 0, NULL, "No such file") &&
       strcmp(d.items[0].file, missing) == 0,
       "missing config file: error names the file");
    diag_free(&d);
    free(missing);

    diag_init(&d);
    doc = cfg_load_file(tmpdir, &d);
    ok(!doc && d.count == 1 && has_error(&d, 0, NULL, "not a regular file"),
       "a directory is refused");
    diag_free(&d);
}

static void test_expansion_errors(void)
{
    char *path, *text, *big;
    size_t bigsz = (64u << 10) + 1;

    unsetenv("PIPIT_T_UNSET");
    expect_error("a:\n  b:\n    c: x ${PIPIT_T_UNSET} y\n", 3, "a.b.c",
                 "PIPIT_T_UNSET is not set", "undefined variable");
    expect_error("list:\n  - ok\n  - ${PIPIT_T_UNSET}\n", 3, "list[1]",
                 "not set", "undefined variable in a list");
    expect_error("a: 1\nb: \"${PIPIT_T_A\"\n", 2, "b", "unterminated ${",
                 "unterminated ${");
    expect_error("a: ${}\n", 1, "a", "invalid variable name", "empty ${}");
    expect_error("a: ${A-B}\n", 1, "a", "invalid variable name", "bad name");
    expect_error("a: ${1A}\n", 1, "a", "invalid variable name", "digit first");
    expect_error("a: ${file:}\n", 1, "a", "needs a path", "${file:} without path");

    if (asprintf(&path, "%s/does-not-exist", tmpdir) < 0 ||
        asprintf(&text, "x: 1\nsec:\n  pw: ${file:%s}\n", path) < 0)
        abort();
    expect_error(text, 3, "sec.pw", path, "missing ${file:} names the path");
    expect_error(text, 3, "sec.pw", "No such file", "missing ${file:} says why");
    free(text);
    free(path);

    if (asprintf(&text, "pw: ${file:%s}\n", tmpdir) < 0)
        abort();
    expect_error(text, 1, "pw", "not a regular file", "${file:} of a directory");
    free(text);

    big = malloc(bigsz);
    memset(big, 'x', bigsz);
    path = write_file("big", big, bigsz);
    if (asprintf(&text, "pw: ${file:%s}\n", path) < 0)
        abort();
    expect_error(text, 1, "pw", "larger than 64 KiB", "${file:} over 64 KiB");
    free(text);
    free(path);
    path = write_file("big64", big, bigsz - 1);
    if (asprintf(&text, "pw: ${file:%s}\n", path) < 0)
        abort();
    {
        struct cfg_doc *doc = load_ok(text, "${file:} of exactly 64 KiB");
        const struct cfg_node *n = doc ? cfg_get(doc->root, "pw") : NULL;
        ok(n && strlen(n->value) == bigsz - 1, "64 KiB secret read whole");
        cfg_free(doc);
    }
    free(text);
    free(path);
    free(big);

    path = write_file("nul", "a\0b", 3);
    if (asprintf(&text, "pw: ${file:%s}\n", path) < 0)
        abort();
    expect_error(text, 1, "pw", "NUL", "${file:} with a NUL byte");
    free(text);
    free(path);

    /* Several errors are all reported. */
    {
        struct diag d;
        const char *t = "a: ${PIPIT_T_UNSET}\nb: ok\nc: ${PIPIT_T_UNSET2}\n";
        struct cfg_doc *doc;
        diag_init(&d);
        unsetenv("PIPIT_T_UNSET2");
        doc = cfg_load_string(t, strlen(t), "t.yaml", &d);
        ok(!doc && d.count == 2 && has_error(&d, 1, "a", NULL) &&
           has_error(&d, 3, "c", NULL), "every undefined variable is reported");
        diag_free(&d);
    }
}

static void test_structure_errors(void)
{
    char *s;

    expect_error("a: 1\nb: 2\na: 3\n", 3, "a", "duplicate key 'a' (first at line 1)",
                 "duplicate key");
    expect_error("top:\n  x: 1\n  y:\n    z: 1\n  x: 2\n", 5, "top.x",
                 "first at line 2", "nested duplicate key");
    expect_error("{a: 1, a: 2}\n", 1, "a", "duplicate", "flow duplicate");
    expect_error("a: 1\n? [x, y]\n: 2\n", 2, NULL, "keys must be scalars",
                 "list as key");
    expect_error("a: 1\n? {x: 1}\n: 2\n", 2, NULL, "keys must be scalars",
                 "map as key");
    expect_error("a: 1\n\"\": 2\n", 2, NULL, "empty key", "empty key");
    expect_error("a: 1\nb: &anchor 2\n", 2, "b", "anchors", "anchor");
    expect_error("a: 1\nb: &x\n  c: 1\n", 2, "b", "anchors", "anchor on a map");
    expect_error("a: 1\nb: !!str 2\n", 2, "b", "tags", "tag");
    expect_error("a: 1\nb: !custom\n  c: 1\n", 2, "b", "tags", "tag on a map");
    expect_error("a: 1\nb: \"x\\0y\"\n", 2, "b", "NUL", "NUL in a value");
    expect_error("a: 1\n---\nb: 2\n", 2, NULL, "more than one document",
                 "two documents");
    expect_error("- a\n- b\n", 1, NULL, "top level must be a map", "top-level list");
    expect_error("\n\njust text\n", 3, NULL, "top level must be a map",
                 "top-level scalar");
    expect_error("just text\nb: 1\n", 2, NULL, "mapping values are not allowed",
                 "syntax error after a top-level scalar: only the syntax error");
    expect_error("a: 1\nb: [1, 2\nc: 3\n", 3, NULL, "YAML syntax error",
                 "unclosed flow list");
    expect_error("a: b\n c: d\n", 2, NULL, "mapping values are not allowed",
                 "bad indentation");
    expect_error("a: 1\nb: \"open\n", 3, NULL, "YAML syntax error",
                 "unterminated quote");
    expect_error("a: 1\nb: \xff\n", 2, NULL, "invalid input", "invalid UTF-8");
    expect_error("%TAG ! tag:example.com,2000:\n---\na: 1\n", 1, NULL,
                 "%TAG directives", "%TAG directive");

    {
        /* An alias is refused wherever it appears. */
        struct diag d;
        const char *t = "a: &x 1\nb: *x\n";
        struct cfg_doc *doc;
        diag_init(&d);
        doc = cfg_load_string(t, strlen(t), "t.yaml", &d);
        ok(!doc && has_error(&d, 1, "a", "anchors") &&
           has_error(&d, 2, "b", "aliases"), "anchor and alias both reported");
        diag_free(&d);
    }

    /* Nesting: 64 levels are fine, 65 are not. The root map is level 1. */
    {
        size_t k = 63, i;
        char key[4 * 64];
        strcpy(key, "a");
        for (i = 0; i < k; i++)
            strcat(key, "[0]");
        s = malloc(2 * 65 + 16);
        strcpy(s, "a: ");
        for (i = 0; i < k; i++)
            strcat(s, "[");
        for (i = 0; i < k; i++)
            strcat(s, "]");
        cfg_free(load_ok(s, "64 levels of nesting"));
        strcpy(s, "a: ");
        for (i = 0; i < k + 1; i++)
            strcat(s, "[");
        for (i = 0; i < k + 1; i++)
            strcat(s, "]");
        expect_error(s, 1, key, "nested deeper than 64", "65 levels of nesting");
        free(s);
    }

    /* Size limits: the file and the node count. */
    {
        size_t n = (4u << 20) + 1;
        struct diag d;
        s = malloc(n);
        memset(s, '#', n);
        diag_init(&d);
        ok(cfg_load_string(s, n, "big.yaml", &d) == NULL &&
           has_error(&d, 0, NULL, "too large"), "config over 4 MiB refused");
        diag_free(&d);
        free(s);
    }
    {
        size_t items = 100001, len = 8 + items * 2;
        s = malloc(len);
        strcpy(s, "a: [");
        for (size_t i = 0; i < items; i++)
            strcat(s + 4 + 2 * i, "1,");
        strcat(s, "]");
        expect_error(s, 1, "a[99998]", "too many values", "over 100000 nodes");
        free(s);
    }
}

static void test_secret_never_shown(void)
{
    struct diag d;
    struct cfg_doc *doc;
    char *out;
    const char *t = "a: \"" "${PIPIT_T_TOKEN}" "${PIPIT_T_UNSET}\"\n"
                    "b: ${PIPIT_T_TOKEN}\n"
                    "b: dup\n";

    setenv("PIPIT_T_TOKEN", SECRET, 1);
    unsetenv("PIPIT_T_UNSET");
    diag_init(&d);
    doc = cfg_load_string(t, strlen(t), "t.yaml", &d);
    out = diag_text(&d);
    ok(!doc && d.count == 2, "errors around secrets are reported");
    ok(strstr(out, SECRET) == NULL, "no secret in diag output");
    ok(strstr(out, "PIPIT_T_UNSET") != NULL, "variable name is shown");
    free(out);
    diag_free(&d);
}

static void test_hand_made(void)
{
    struct cfg_node *m = cfg_new_map(), *n;

    ok(m && m->type == CFG_MAP && m->nchild == 0, "cfg_new_map");
    n = cfg_map_set(m, "interval", "10s");
    ok(n && n->type == CFG_SCALAR && !n->plain && strcmp(n->value, "10s") == 0 &&
       strcmp(n->key, "interval") == 0, "cfg_map_set adds a scalar");
    n = cfg_map_set(m, "path", "");
    ok(n && !n->plain && n->value[0] == '\0', "empty value is an empty string");
    n = cfg_map_set(m, "none", NULL);
    ok(n && n->plain && n->value[0] == '\0', "NULL value is a YAML null");
    n = cfg_map_set(m, "interval", "5s");
    ok(n && m->nchild == 3 && cfg_get(m, "interval") == n &&
       strcmp(n->value, "5s") == 0, "cfg_map_set replaces an existing key");
    n = cfg_map_set(m, "lit", "${NOT_EXPANDED}");
    is_str(n ? n->value : NULL, "${NOT_EXPANDED}", "hand-made values are not expanded");
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        cfg_map_set(m, k, k);
    }
    ok(m->nchild == 44 && strcmp(cfg_get(m, "k39")->value, "k39") == 0,
       "many keys");
    ok(cfg_map_set(NULL, "a", "b") == NULL, "cfg_map_set(NULL) fails");

    struct diag d;
    diag_init(&d);
    n = cfg_map_set_text(m, "urls", "[\"http://a:1/x?b=1\", c]", &d);
    ok(n && n->type == CFG_SEQ && n->nchild == 2 && strcmp(n->key, "urls") == 0 &&
       strcmp(n->child[0]->value, "http://a:1/x?b=1") == 0 &&
       strcmp(n->child[1]->value, "c") == 0, "cfg_map_set_text reads a flow sequence");
    n = cfg_map_set_text(m, "env", "{A: 1, B: two}", &d);
    ok(n && n->type == CFG_MAP && n->nchild == 2 && cfg_get(m, "env") == n &&
       strcmp(cfg_get(n, "B")->value, "two") == 0, "and a flow map");
    n = cfg_map_set_text(m, "regex", "^(?<a>\\w+): #x", &d);
    ok(n && n->type == CFG_SCALAR && strcmp(n->value, "^(?<a>\\w+): #x") == 0,
       "other text stays one scalar, as written");
    ok(cfg_map_set_text(m, "bad", "[a, b", &d) == NULL && d.count > 0,
       "an unclosed sequence is an error");
    diag_free(&d);
    cfg_node_free(m);
    cfg_node_free(NULL);
    cfg_free(NULL);
}

static void test_diag(void)
{
    struct diag d;
    char *out;
    FILE *f;

    diag_init(&d);
    ok(d.max == 100 && d.count == 0, "diag_init: max 100");
    diag_add(&d, "f.yaml", 3, "inputs[0].interval", "bad %s", "value");
    diag_add(&d, "f.yaml", 0, "x", "no line");
    diag_add(&d, NULL, 0, NULL, "bare");
    diag_add(&d, "f.yaml", 7, NULL, "no key");
    diag_add(&d, "f.yaml", 2, "a\nb", "line\nbreak\x1b[31m");
    out = diag_text(&d);
    is_str(out, "f.yaml:3: inputs[0].interval: bad value\n"
                "f.yaml: x: no line\n"
                "bare\n"
                "f.yaml:7: no key\n"
                "f.yaml:2: a\\nb: line\\nbreak\\x1b[31m\n",
           "diag_print formats and escapes control characters");
    free(out);

    f = tmpfile();
    if (f) {
        char line[512];
        int lines = 0;
        bool found = false;
        log_setup(f, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
        diag_log(&d, "config");
        fflush(f);
        rewind(f);
        while (fgets(line, sizeof(line), f)) {
            lines++;
            if (strstr(line, "f.yaml:3: inputs[0].interval: bad value"))
                found = true;
        }
        ok(lines == 5 && found, "diag_log writes one log line per error");
        log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
        fclose(f);
    } else {
        skip(1, "no tmpfile");
    }
    diag_free(&d);
    ok(d.count == 0 && d.items == NULL, "diag_free resets");

    diag_init(&d);
    for (int i = 0; i < 130; i++)
        diag_add(&d, "f", i + 1, NULL, "error %d", i);
    ok(d.count == 100 && d.dropped == 30, "past 100 errors only counted");
    out = diag_text(&d);
    ok(strstr(out, "f:100: error 99\n... and 30 more errors\n") != NULL,
       "the count of dropped errors is printed");
    free(out);
    diag_free(&d);

    diag_init(&d);
    d.max = 2;
    for (int i = 0; i < 3; i++)
        diag_add(&d, "f", 1, NULL, "e");
    out = diag_text(&d);
    ok(d.count == 2 && strstr(out, "... and 1 more error\n"), "custom max");
    free(out);
    diag_free(&d);
}

/* Edge inputs: odd keys, ${ and $ at the end of the text, document markers.
 * A fuzzer crash input belongs here as a regression case. */
static void test_edge_inputs(void)
{
    struct diag d;
    struct cfg_doc *doc;
    static const char *const inputs[] = {
        "? a\n? a\n",
        ": a\n",
        "a: {? [b]}\n",
        "[a]: 1\n",
        "a: $${",
        "a: ${",
        "a: $",
        "a: $$",
        "a: x\n...\n---\n",
        "? !t &x [a, *x]\n: 1\n",
    };

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        diag_init(&d);
        doc = cfg_load_string(inputs[i], strlen(inputs[i]), "fz", &d);
        ok((doc == NULL) == (d.count + d.dropped > 0),
           "edge input %zu: result matches errors", i);
        cfg_free(doc);
        diag_free(&d);
    }
}

static void cleanup_tmp(void)
{
    char *cmd = NULL;

    if (tmpdir[0] && asprintf(&cmd, "rm -rf '%s'", tmpdir) >= 0) {
        if (system(cmd) != 0)
            diag("could not remove %s", tmpdir);
    }
    free(cmd);
}

int main(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/test_config.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir))
        plan_skip_all("cannot create a temporary directory");
    test_tree();
    test_empty();
    test_expansion();
    test_file_load();
    test_expansion_errors();
    test_structure_errors();
    test_secret_never_shown();
    test_hand_made();
    test_diag();
    test_edge_inputs();
    cleanup_tmp();
    return done_testing();
}
