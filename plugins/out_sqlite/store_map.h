/* store_map.h: a hash map from byte-string keys to integers, for the stores' caches and ledgers. */
#ifndef PIPIT_STORE_MAP_H
#define PIPIT_STORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store_map_ent {
    uint64_t hash;                      /* 0: empty slot */
    char *key;                          /* owned copy, klen bytes */
    size_t klen;
    int64_t val;
};

/* Open addressing, linear probing; zero-filled is an empty map. */
struct store_map {
    struct store_map_ent *ents;
    size_t cap, len;                    /* cap is 0 or a power of two */
};

/* Look key up; true and *val when present. */
bool store_map_get(const struct store_map *m, const void *key, size_t klen, int64_t *val);
/* Insert or replace key (copied). Returns 0, or -1 when out of memory. */
int store_map_put(struct store_map *m, const void *key, size_t klen, int64_t val);
/* Remove every entry, keeping the table. */
void store_map_clear(struct store_map *m);
void store_map_free(struct store_map *m);

#endif
