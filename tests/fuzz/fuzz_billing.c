/* fuzz_billing.c: libFuzzer target for the billing_export input's readers: CSV rows fed in pieces, JSON line items, line item fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "csv.h"
#include "item.h"
#include "jsonitems.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A line item from the text of up to ITEM_NFIELDS fields, all mapped; a
 * good one must hold what item_read() promises, and have an identity. */
static void fuzz_item(const char *const vals[ITEM_NFIELDS], const char *def_currency)
{
    static const unsigned char mapped[ITEM_NFIELDS] = { 1, 1, 1, 1, 1, 1 };
    static const unsigned char some[ITEM_NFIELDS] = { 0, 1, 0, 1, 1, 0 };
    const char *keys[1] = { "team" };
    unsigned char d[ITEM_DIGEST_LEN], e[ITEM_DIGEST_LEN];
    struct item it;
    char why[256];
    int bad = -1;

    for (int m = 0; m < 2; m++) {
        if (item_read(vals, m ? some : mapped, def_currency, &it, &bad, why, sizeof why) != 0) {
            if (bad < 0 || bad >= ITEM_NFIELDS || !why[0] || strlen(why) >= sizeof why)
                abort();
            continue;
        }
        if (it.end_ns < it.start_ns || it.start_ns < 0 || strlen(it.currency) != 3 ||
            !it.resource)
            abort();
        for (int i = 0; i < 3; i++)
            if (it.currency[i] < 'A' || it.currency[i] > 'Z')
                abort();
        if (item_digest(&it, keys, &vals[ITEM_RESOURCE], 1, d) != 0 ||
            item_digest_nth(d, 1, e) != 0 || !memcmp(d, e, sizeof d))
            abort();
    }
}

/* CSV: the input after the setup bytes, fed step bytes at a time as the
 * plugin's stream reader does, with a row cap and a delimiter. */
static void fuzz_csv(const char *in, size_t len, size_t step, size_t max_row, char delim)
{
    struct csv_row row = { 0 };
    char *buf = malloc(len + 1);
    size_t have = 0, fed = 0, consumed = 0;

    if (!buf)
        return;
    for (;;) {
        size_t k = len - fed < step ? len - fed : step;
        memcpy(buf + have, in + fed, k);
        have += k;
        fed += k;
        int final = fed == len;
        size_t off = 0;
        while (off < have) {
            size_t used = 0;
            int rc = csv_next_row(buf + off, have - off, final, max_row, delim, &row, &used);
            if (rc == CSV_NEED_MORE) {
                if (final || used)
                    abort();            /* the end always ends a row */
                break;
            }
            if (used == 0 || used > have - off)
                abort();
            if (rc == CSV_ROW) {
                if (row.nfields == 0)
                    abort();
                const char *vals[ITEM_NFIELDS] = { 0 };
                for (size_t i = 0; i < row.nfields; i++) {
                    if (row.fields[i] < row.buf || row.fields[i] >= row.buf + row.cap_buf)
                        abort();
                    if (i < ITEM_NFIELDS)
                        vals[i] = row.fields[i];
                }
                fuzz_item(vals, "USD");
            } else if (rc != CSV_ETOOLONG && rc != CSV_EQUOTE && rc != CSV_SKIP) {
                abort();
            }
            off += used;
        }
        consumed += off;
        memmove(buf, buf + off, have - off);
        have -= off;
        /* a cap bounds what waits for more */
        if (max_row && have > max_row + 2 && !final)
            abort();
        if (final)
            break;
    }
    if (have != 0 || consumed != len)
        abort();
    free(buf);
    csv_row_free(&row);
}

/* JSON: the input as a document, its items at a few paths, each item's
 * fields by key as the plugin maps them. */
static void fuzz_json(const char *in, size_t len)
{
    static const char *const paths[] = { "", "rows", "data.items", "a.b.c" };
    static const char *const keys[ITEM_NFIELDS] = {
        "id", "cost", "currency", "sku.description", "usage_start_time", "usage_end_time",
    };
    json_error_t err;
    json_t *doc = json_loadb(in, len, JSON_DECODE_ANY, &err);
    char why[256], nums[ITEM_NFIELDS][JITEMS_NUM_MAX];

    if (!doc)
        return;
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        json_t *items = jsonitems_select(doc, paths[p], why, sizeof why), *item;
        size_t i;

        if (!items) {
            if (!why[0])
                abort();
            continue;
        }
        if (!json_is_array(items))
            abort();
        json_array_foreach(items, i, item) {
            const char *vals[ITEM_NFIELDS];
            int skip = 0;

            for (int f = 0; f < ITEM_NFIELDS; f++)
                if (jsonitems_text(item, keys[f], nums[f], &vals[f]) != 0)
                    skip = 1;
            if (!skip)
                fuzz_item(vals, NULL);
        }
    }
    json_decref(doc);
}

/*
 * The first byte picks the piece size and the row cap, the second the
 * delimiter; the rest is read as CSV, as a JSON document, and as one NUL
 * terminated time.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[] = { ',', ';', '\t', '|' };
    static const size_t caps[] = { 0, 16, 64, 4096 };

    if (size < 2)
        return 0;
    size_t step = (size_t)(data[0] & 0x3f) + 1;
    size_t max_row = caps[(data[0] >> 6) & 3];
    char delim = delims[data[1] & 3];
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    fuzz_csv(in, len, step, max_row, delim);
    fuzz_json(in, len);
    char *s = malloc(len + 1);
    if (s) {
        int64_t ns;
        memcpy(s, in, len);
        s[len] = '\0';
        if (item_time_parse(s, &ns) == 0 && ns < 0)
            abort();
        free(s);
    }
    return 0;
}
