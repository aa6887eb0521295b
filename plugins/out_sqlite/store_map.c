/* store_map.c: a hash map from byte-string keys to integers, for the stores' caches and ledgers. */
#include <stdlib.h>
#include <string.h>
#include "store_map.h"

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t store_map_hash(const void *key, size_t klen)
{
    const unsigned char *p = key;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

static struct store_map_ent *store_map_slot(struct store_map_ent *ents, size_t cap,
                                      uint64_t h, const void *key, size_t klen)
{
    size_t i = (size_t)h & (cap - 1);

    for (;;) {
        struct store_map_ent *e = &ents[i];
        if (!e->hash || (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0))
            return e;
        i = (i + 1) & (cap - 1);
    }
}

bool store_map_get(const struct store_map *m, const void *key, size_t klen, int64_t *val)
{
    if (!m->len)
        return false;
    struct store_map_ent *e = store_map_slot(m->ents, m->cap, store_map_hash(key, klen), key, klen);
    if (!e->hash)
        return false;
    *val = e->val;
    return true;
}

/* Double the table (or make the first one), moving every entry. */
static int store_map_grow(struct store_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct store_map_ent *ents = calloc(cap, sizeof *ents);

    if (!ents)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        struct store_map_ent *e = &m->ents[i];
        if (e->hash)
            *store_map_slot(ents, cap, e->hash, e->key, e->klen) = *e;
    }
    free(m->ents);
    m->ents = ents;
    m->cap = cap;
    return 0;
}

int store_map_put(struct store_map *m, const void *key, size_t klen, int64_t val)
{
    uint64_t h = store_map_hash(key, klen);
    struct store_map_ent *e;

    if ((m->len + 1) * 4 > m->cap * 3 && store_map_grow(m) != 0)   /* load <= 3/4 */
        return -1;
    e = store_map_slot(m->ents, m->cap, h, key, klen);
    if (!e->hash) {
        char *copy = malloc(klen ? klen : 1);
        if (!copy)
            return -1;
        memcpy(copy, key, klen);
        e->hash = h;
        e->key = copy;
        e->klen = klen;
        m->len++;
    }
    e->val = val;
    return 0;
}

void store_map_clear(struct store_map *m)
{
    for (size_t i = 0; i < m->cap && m->len; i++) {
        if (m->ents[i].hash) {
            free(m->ents[i].key);
            m->len--;
        }
    }
    if (m->ents)
        memset(m->ents, 0, m->cap * sizeof *m->ents);
    m->len = 0;
}

void store_map_free(struct store_map *m)
{
    store_map_clear(m);
    free(m->ents);
    m->ents = NULL;
    m->cap = 0;
}
