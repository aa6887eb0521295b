/* fuzz_config.c: libFuzzer target for the YAML config loader and option tables. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../agent/config.h"
#include "diag.h"
#include "options.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One field of every option type, like a plugin's instance state. */
struct fuzz_ctx {
    bool enabled;
    int64_t count;
    double ratio;
    double any;
    const char *name;
    const char *password;
    int64_t interval;
    int64_t max_bytes;
    struct pipit_strlist tags;
    struct pipit_strlist brokers;
    struct pipit_strmap props;
    struct pipit_strmap preset;
};

static const struct pipit_option fuzz_options[] = {
    PIPIT_OPT_BOOL("enabled", "true", struct fuzz_ctx, enabled, "On or off"),
    PIPIT_OPT_INT("count", "5", 1, 1000, struct fuzz_ctx, count, "A count"),
    PIPIT_OPT_DOUBLE("ratio", "0.5", 0, 1, struct fuzz_ctx, ratio, "A fraction"),
    PIPIT_OPT_DOUBLE("any", NULL, 1, 0, struct fuzz_ctx, any, "Any number"),
    PIPIT_OPT_STRING("name", "x", struct fuzz_ctx, name, "A name"),
    PIPIT_OPT_SECRET_STRING("password", NULL, struct fuzz_ctx, password, "A secret"),
    PIPIT_OPT_DURATION("interval", "10s", 100, 86400000, struct fuzz_ctx, interval,
                       "A period"),
    PIPIT_OPT_SIZE("max_bytes", "1MiB", 1, 1LL << 40, struct fuzz_ctx, max_bytes,
                   "A size"),
    PIPIT__OPT("tags", PIPIT_OPT_T_LIST, "[a, b]", struct fuzz_ctx, tags, 0, 1, 0,
               "Labels"),
    PIPIT__OPT("brokers", PIPIT_OPT_T_LIST, NULL, struct fuzz_ctx, brokers,
               PIPIT_OPT_REQUIRED, 1, 0, "Servers"),
    PIPIT_OPT_MAP("props", struct fuzz_ctx, props, "Library properties"),
    PIPIT__OPT("preset", PIPIT_OPT_T_MAP, "{a: 1, b: x}", struct fuzz_ctx, preset,
               0, 1, 0, "A map with a default"),
    PIPIT_OPT_END
};

static const char *const fuzz_host_keys[] = { "plugin", "kinds", NULL };

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    setenv("PIPIT_FUZZ_TOKEN", "fuzz-secret", 1);
    setenv("PIPIT_FUZZ_EMPTY", "", 1);
    devnull = fopen("/dev/null", "w");
    return 0;
}

/* Apply the option table to map and check the store's answers. */
static void apply(const struct cfg_node *map, const char *prefix, struct diag *d)
{
    struct fuzz_ctx ctx;
    struct opt_store *store = NULL;

    memset(&ctx, 0, sizeof(ctx));
    if (opt_apply(fuzz_options, map, fuzz_host_keys, &ctx, "fuzz.yaml", prefix,
                  &store, d) == PIPIT_OK) {
        if (!store)
            abort();
        for (const struct pipit_option *o = fuzz_options; o->name; o++)
            (void)opt_store_get(store, o->name);
        for (size_t i = 0; i < ctx.tags.count; i++)
            if (!ctx.tags.items[i])
                abort();
        for (size_t i = 0; i < ctx.props.count; i++)
            if (!ctx.props.keys[i] || !ctx.props.values[i])
                abort();
        if (ctx.preset.count == 0 && !ctx.preset.keys)
            abort();                    /* set, or its default applied */
        if (ctx.brokers.count == 0 && !ctx.brokers.items)
            abort();                    /* required: must have been set */
    } else if (store) {
        abort();
    }
    opt_store_free(store);
}

/* Walk the tree, checking it is well formed and exercising cfg_show. */
static void walk(const struct cfg_node *n, int depth)
{
    if (depth > 64 || !n)
        abort();
    (void)cfg_show(n);
    if (n->type == CFG_SCALAR && (!n->value || n->nchild))
        abort();
    for (size_t i = 0; i < n->nchild; i++) {
        if ((n->type == CFG_MAP) != (n->child[i]->key != NULL))
            abort();
        walk(n->child[i], depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d;
    struct cfg_doc *doc;

    diag_init(&d);
    doc = cfg_load_string((const char *)data, size, "fuzz.yaml", &d);
    if ((doc == NULL) != (d.count + d.dropped > 0))
        abort();                        /* NULL exactly when errors were found */
    if (doc && doc->root) {
        const struct cfg_node *root = doc->root;
        walk(root, 1);
        apply(root, NULL, &d);
        /* Every map one level down, as settings sections and instances are. */
        for (size_t i = 0; i < root->nchild; i++) {
            const struct cfg_node *c = root->child[i];
            char prefix[64];
            if (c->type == CFG_MAP) {
                apply(c, c->key, &d);
            } else if (c->type == CFG_SEQ) {
                for (size_t j = 0; j < c->nchild && j < 8; j++) {
                    snprintf(prefix, sizeof(prefix), "%.40s[%zu]", c->key, j);
                    apply(c->child[j], prefix, &d);
                }
            }
        }
    }
    if (devnull)
        diag_print(&d, devnull);
    cfg_free(doc);
    diag_free(&d);
    return 0;
}
