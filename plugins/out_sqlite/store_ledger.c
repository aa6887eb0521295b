/* store_ledger.c: one flush's records grouped by batch key (agent, seq), for the batches and agents tables. */
#include <stdlib.h>
#include <string.h>
#include "store_ledger.h"

struct store_batch *store_ledger_get(struct store_ledger *l, const char *agent,
                                     int64_t seq, int kind, const char *host)
{
    size_t alen = strlen(agent);
    int64_t pos;
    struct store_batch *b;

    l->key.len = 0;
    if (store_buf_put(&l->key, agent, alen + 1) != 0 ||
        store_buf_put(&l->key, &seq, sizeof seq) != 0)
        return NULL;
    if (store_map_get(&l->index, l->key.data, l->key.len, &pos))
        return &l->b[pos];
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct store_batch *nb = realloc(l->b, cap * sizeof *nb);
        if (!nb)
            return NULL;
        l->b = nb;
        l->cap = cap;
    }
    b = &l->b[l->n];
    memset(b, 0, sizeof *b);
    b->agent = strdup(agent);
    b->host = strdup(host ? host : "");
    if (!b->agent || !b->host ||
        store_map_put(&l->index, l->key.data, l->key.len, (int64_t)l->n) != 0) {
        free(b->agent);
        free(b->host);
        return NULL;
    }
    b->seq = seq;
    b->kind = kind;
    l->n++;
    return b;
}

static int store_ledger_cmp(const void *pa, const void *pb)
{
    const struct store_batch *a = pa, *b = pb;
    int c = strcmp(a->agent, b->agent);

    if (c)
        return c;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

void store_ledger_sort(struct store_ledger *l)
{
    if (l->n > 1)
        qsort(l->b, l->n, sizeof *l->b, store_ledger_cmp);
    store_map_clear(&l->index);
}

void store_ledger_reset(struct store_ledger *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->b[i].agent);
        free(l->b[i].host);
    }
    l->n = 0;
    store_map_clear(&l->index);
}

void store_ledger_free(struct store_ledger *l)
{
    store_ledger_reset(l);
    free(l->b);
    store_map_free(&l->index);
    store_buf_free(&l->key);
    memset(l, 0, sizeof *l);
}
