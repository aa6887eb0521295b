/* store_ledger.h: one flush's records grouped by batch key (agent, seq), for the batches and agents tables. */
#ifndef PIPIT_STORE_LEDGER_H
#define PIPIT_STORE_LEDGER_H

#include <stddef.h>
#include <stdint.h>
#include "store_map.h"
#include "store_record.h"

/*
 * One batch as the store's ledger knows it: the batch a flush received
 * (the carrier) or a batch named by the origin of relayed records.
 */
struct store_batch {
    char *agent;                        /* agent id, owned */
    int64_t seq;
    int kind;                           /* enum pipit_record_kind */
    char *host;                         /* host name to record, owned */
    int64_t lines;                      /* lines keyed to it in this flush */
    int64_t stored;                     /* of which stored now (not duplicates) */
    int64_t skipped;                    /* lines skipped as malformed */
};

struct store_ledger {
    struct store_batch *b;
    size_t n, cap;
    struct store_map index;             /* key -> position in b */
    struct store_buf key;               /* scratch */
};

/*
 * The entry of (agent, seq), made with kind and host when new. The pointer
 * is valid until the next call or store_ledger_sort(). NULL when out of
 * memory.
 */
struct store_batch *store_ledger_get(struct store_ledger *l, const char *agent,
                                     int64_t seq, int kind, const char *host);
/* Order the entries by agent then seq, so that concurrent writers take row
 * locks in one order. Lookups are not possible afterwards until reset. */
void store_ledger_sort(struct store_ledger *l);
void store_ledger_reset(struct store_ledger *l);
void store_ledger_free(struct store_ledger *l);

#endif
