/* item.h: one billing line item read from the mapped text of an export row, and its identity. */
#ifndef PIPIT_BILLING_ITEM_H
#define PIPIT_BILLING_ITEM_H

#include <stddef.h>
#include <stdint.h>

/* Compiled into the plugin, its tests and its fuzz target; never exported. */
#define ITEM_HIDDEN __attribute__((visibility("hidden")))

/* The fields of a line item that columns: maps, in this order. */
enum item_field {
    ITEM_ID = 0,                        /* the provider's line item id */
    ITEM_AMOUNT,                        /* decimal text, required */
    ITEM_CURRENCY,                      /* ISO 4217 code */
    ITEM_RESOURCE,                      /* what was paid for */
    ITEM_START,                         /* start of the usage period */
    ITEM_END,                           /* end of the usage period */
    ITEM_NFIELDS
};

/* "id", "amount", ... by enum item_field. */
ITEM_HIDDEN extern const char *const item_field_names[ITEM_NFIELDS];

#define ITEM_DIGEST_LEN 32              /* SHA-256 */
#define ITEM_RESOURCE_NONE "unknown"    /* resource when none is given */

/* A line item read by item_read(); strings borrowed from its input. */
struct item {
    int64_t amount_micros;              /* exact, rounded half away from zero */
    int64_t start_ns, end_ns;           /* 0 and 0 when no time was given */
    char currency[4];                   /* upper case, NUL-terminated */
    const char *resource;               /* never NULL */
    const char *id;                     /* NULL when the id is not mapped */
};

/*
 * Read a line item from the text of its fields: vals[f] is the text of
 * field f (NULL when the field is not mapped, or not in this row).
 * mapped[f] says whether columns: maps f at all, def_currency is the fixed
 * currency (NULL: none). Blanks around amounts, times and currencies are
 * ignored. The rules:
 *   amount    required; a decimal ("12", "-0.5", "1.2e-3"), rounded to micros;
 *   currency  three letters (the column, else def_currency);
 *   id        when mapped, must not be empty;
 *   start/end RFC 3339 ("2024-05-01T00:00:00Z", "+02:00" offsets, fractions),
 *             "2024-05-01 00:00:00" (UTC), "2024-05-01", or Unix seconds;
 *             one alone stands for both; an empty or absent one is not
 *             given; end may not come before start.
 * An absent id, amount or currency (without def_currency) is refused.
 * Returns 0, or -1 with *bad the field at fault and why the reason (for
 * the caller to prefix with where the row is).
 */
ITEM_HIDDEN int item_read(const char *const vals[ITEM_NFIELDS],
                          const unsigned char mapped[ITEM_NFIELDS],
                          const char *def_currency, struct item *it, int *bad,
                          char *why, size_t size);

/* Parse a time as item_read() does into Unix nanoseconds; 0 or -1. */
ITEM_HIDDEN int item_time_parse(const char *s, int64_t *ns);

/*
 * The identity of a line item: SHA-256 of "id" and the id when it has one,
 * else of every field in its normal form (micros, nanoseconds, the
 * upper-case currency) and the nlabels label keys and values given.
 * Returns 0, -1 when OpenSSL failed.
 */
ITEM_HIDDEN int item_digest(const struct item *it, const char *const *label_keys,
                            const char *const *label_vals, size_t nlabels,
                            unsigned char out[ITEM_DIGEST_LEN]);

/*
 * The identity of the n-th (from 0) row of a pass with the same digest and
 * no id: digest itself for n 0, else SHA-256 of it and n. Identical line
 * items (two equal usage lines) so stay apart, while a rewritten export
 * maps each to the same identity again. Returns 0, -1 on failure.
 */
ITEM_HIDDEN int item_digest_nth(const unsigned char digest[ITEM_DIGEST_LEN], uint32_t n,
                                unsigned char out[ITEM_DIGEST_LEN]);

#endif
