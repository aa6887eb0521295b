/* config.h: YAML configuration as a tree of nodes with line numbers. */
#ifndef PIPIT_CONFIG_H
#define PIPIT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"
#include "diag.h"

enum cfg_type {
    CFG_SCALAR = 1,                     /* text in value */
    CFG_MAP,                            /* children with keys */
    CFG_SEQ                             /* children without keys */
};

struct cfg_node {
    enum cfg_type type;
    int line;                           /* 1-based line of the node */
    char *key;                          /* key in the parent map, or NULL */
    char *value;                        /* scalar text after ${} expansion */
    bool secret;                        /* value came from ${...}: never print */
    bool plain;                         /* scalar was unquoted (null/bool rules) */
    struct cfg_node **child;            /* map entries or sequence items */
    size_t nchild;
};

struct cfg_doc {
    char *file;                         /* name used in errors */
    struct cfg_node *root;              /* a map, or NULL for an empty file */
};

/*
 * Parse a YAML file into a tree. ${NAME} expands to the environment variable
 * NAME, ${file:/path} to the contents of a file (one trailing newline
 * removed); both mark the node secret. $${ stays a literal "${". A missing
 * variable or file, a duplicate key, anchors/aliases/tags, multiple
 * documents and YAML syntax errors are reported to d with file and line.
 * Returns a document (free with cfg_free) or NULL when d has errors.
 */
struct cfg_doc *cfg_load_file(const char *path, struct diag *d);
struct cfg_doc *cfg_load_string(const char *text, size_t len,
                                const char *name, struct diag *d);
void cfg_free(struct cfg_doc *doc);

/* Child of a map by key, or NULL. */
const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key);

/* Make nodes by hand (for key=value options on the command line). The new
 * node is owned by parent (or by the caller for a root; free with
 * cfg_node_free). Return NULL on out of memory. */
struct cfg_node *cfg_new_map(void);
struct cfg_node *cfg_map_set(struct cfg_node *map, const char *key,
                             const char *value);
/* Like cfg_map_set, but text starting with '[' or '{' is read as a YAML
 * flow sequence or map ("[a, b]", "{k: v}"); errors go to d. */
struct cfg_node *cfg_map_set_text(struct cfg_node *map, const char *key,
                                  const char *text, struct diag *d);
void cfg_node_free(struct cfg_node *n);

/* A deep copy of n (lines, keys, flags kept). With rewrite, each scalar's
 * value is what rewrite returns (malloc'd; NULL aborts the copy). Returns
 * NULL on out of memory or an aborted copy. */
typedef char *(*cfg_rewrite_fn)(const struct cfg_node *scalar, void *arg);
struct cfg_node *cfg_node_copy(const struct cfg_node *n, cfg_rewrite_fn rewrite, void *arg);

/*
 * Read a file of at most max bytes, appending to out (NUL-terminated).
 * Only regular files are read (a FIFO or a device could block or never
 * end). Returns PIPIT_OK, or an error with errno-style text in why.
 */
int cfg_read_small_file(const char *path, size_t max, struct buf *out,
                        const char **why);

/* The value as it may be shown: "<redacted>" for secrets. */
const char *cfg_show(const struct cfg_node *n);

#endif
