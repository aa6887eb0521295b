/* idset.h: the set of line item identities the billing_export input has emitted, bounded, saved atomically. */
#ifndef PIPIT_BILLING_IDSET_H
#define PIPIT_BILLING_IDSET_H

#include <stddef.h>
#include <stdint.h>

/* Compiled into the plugin and its tests; never exported. */
#define IDSET_HIDDEN __attribute__((visibility("hidden")))

#define IDSET_ID_LEN 32                 /* a SHA-256 digest */

struct idset_entry {
    unsigned char id[IDSET_ID_LEN];
    int64_t end_ns;                     /* end of the item's period */
    uint64_t tag;                       /* the plugin's: 0 committed, else the
                                         * mark token it waits for */
};

/* A hash set of identities; zero-filled is empty. */
struct idset {
    struct idset_entry *e;              /* n entries in insertion order */
    size_t n, cap;
    uint32_t *slots;                    /* open addressing: entry index + 1 */
    size_t nslots;                      /* a power of two, or 0 */
    int64_t horizon_ns;                 /* items that ended at or before it
                                         * were dropped by idset_bound() */
};

/* The entry of id, or NULL. Valid until the set next changes. */
IDSET_HIDDEN struct idset_entry *idset_find(const struct idset *s,
                                            const unsigned char id[IDSET_ID_LEN]);

/* Add id (not in the set yet). Returns its entry, or NULL when out of memory. */
IDSET_HIDDEN struct idset_entry *idset_add(struct idset *s, const unsigned char id[IDSET_ID_LEN],
                                           int64_t end_ns, uint64_t tag);

/* Tag 0 (committed) every entry whose tag is in 1..token. */
IDSET_HIDDEN void idset_commit(struct idset *s, uint64_t token);

/* Remove every entry whose tag is not 0 (what a failed pass left). */
IDSET_HIDDEN void idset_drop_pending(struct idset *s);

/*
 * Keep at most max committed entries: drop those whose period ended
 * longest ago, raising horizon_ns to the latest end dropped. Entries that
 * wait for an ack are never dropped. Returns how many were dropped, or
 * (size_t)-1 when out of memory (nothing dropped).
 */
IDSET_HIDDEN size_t idset_bound(struct idset *s, size_t max);

/* Empty the set (its horizon too) and free its memory. */
IDSET_HIDDEN void idset_free(struct idset *s);

/*
 * Write the committed entries, the horizon and validator (len bytes, may be
 * 0) to path atomically: a temporary file beside it, fsync, rename, fsync
 * of the directory. Returns 0, or -1 with why (errno's words and the path).
 */
IDSET_HIDDEN int idset_save(const struct idset *s, const char *path, const void *validator,
                            size_t vlen, char *why, size_t size);

/*
 * Load path into the empty set s (entries committed) and its validator into
 * *validator (malloc'd, NUL-terminated, NULL when none; free it). A missing
 * file is an empty set. Returns 0, or -1 with why naming the path and line
 * (the set is then left empty).
 */
IDSET_HIDDEN int idset_load(struct idset *s, const char *path, char **validator,
                            size_t *vlen, char *why, size_t size);

#endif
