/* test_billing_parse.c: the billing_export input's readers alone: CSV rows, JSON line items, line item fields, the identity set. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "csv.h"
#include "idset.h"
#include "item.h"
#include "jsonitems.h"
#include "../tap.h"

/* Every row of text read at once (final), as "f1|f2/g1|g2" with errors as
 * "!ETOOLONG", "!EQUOTE" (static buffer). */
static const char *rows(const char *text, size_t max_row, char delim)
{
    static char out[4096];
    struct csv_row row = { 0 };
    size_t off = 0, len = strlen(text), n = 0;

    out[0] = '\0';
    while (off < len) {
        size_t used;
        int rc = csv_next_row(text + off, len - off, 1, max_row, delim, &row, &used);

        if (rc == CSV_NEED_MORE || used == 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s!STUCK", n ? "/" : "");
            break;
        }
        if (rc == CSV_ROW) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", n ? "/" : "");
            for (size_t i = 0; i < row.nfields; i++)
                n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? "|" : "",
                                      row.fields[i]);
        } else if (rc != CSV_SKIP) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s!%s", n ? "/" : "",
                                  rc == CSV_ETOOLONG ? "ETOOLONG" : rc == CSV_EQUOTE
                                  ? "EQUOTE" : "ENOMEM");
        }
        off += used;
    }
    csv_row_free(&row);
    return out;
}

/* The same text fed in pieces of step bytes, as a stream reader does:
 * unparsed bytes are kept and more appended. */
static const char *rows_chunked(const char *text, size_t step, size_t max_row)
{
    static char out[4096];
    struct csv_row row = { 0 };
    size_t len = strlen(text), have = 0, fed = 0, n = 0;
    char *buf = malloc(len + 1);

    out[0] = '\0';
    while (fed < len || have) {
        size_t k = fed + step <= len ? step : len - fed;
        memcpy(buf + have, text + fed, k);
        have += k;
        fed += k;
        int final = fed == len;
        size_t off = 0;
        for (;;) {
            size_t used;
            int rc = csv_next_row(buf + off, have - off, final, max_row, ',', &row, &used);
            if (rc == CSV_NEED_MORE)
                break;
            if (rc == CSV_ROW) {
                n += (size_t)snprintf(out + n, sizeof out - n, "%s", n ? "/" : "");
                for (size_t i = 0; i < row.nfields; i++)
                    n += (size_t)snprintf(out + n, sizeof out - n, "%s%s", i ? "|" : "",
                                          row.fields[i]);
            } else if (rc != CSV_SKIP) {
                n += (size_t)snprintf(out + n, sizeof out - n, "%s!%d", n ? "/" : "", rc);
            }
            off += used;
            if (off == have)
                break;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (final && have == 0)
            break;
        if (final && off == 0)
            break;
    }
    free(buf);
    csv_row_free(&row);
    return out;
}

static void test_csv(void)
{
    struct csv_row row = { 0 };
    size_t used = 99;

    is_str(rows("a,b,c\n1,2,3\n", 0, ','), "a|b|c/1|2|3", "plain rows");
    is_str(rows("a,b\r\n1,2\r\n", 0, ','), "a|b/1|2", "CRLF line ends are not in the fields");
    is_str(rows("\"x,y\",z\n", 0, ','), "x,y|z", "a quoted field holds the delimiter");
    is_str(rows("\"say \"\"hi\"\"\",2\n", 0, ','), "say \"hi\"|2",
           "a doubled quote is one quote");
    is_str(rows("\"line1\nline2\",b\nc,d\n", 0, ','), "line1\nline2|b/c|d",
           "a quoted field holds a newline; the row ends at the next one outside quotes");
    is_str(rows("\"a\r\nb\",c\r\n", 0, ','), "a\r\nb|c", "a quoted CRLF is kept as it is");
    is_str(rows("a,,\n,\n", 0, ','), "a||/|", "empty fields, at the end too");
    is_str(rows("a,b\n1,2", 0, ','), "a|b/1|2", "the last row without a newline ends at the end");
    is_str(rows("a,b\n1,\"2", 0, ','), "a|b/!EQUOTE",
           "a truncated last row (its quote never closed) is refused");
    is_str(rows("\"a\"b,c\nd,e\n", 0, ','), "!EQUOTE/d|e",
           "text after a closing quote refuses that row only");
    is_str(rows("ab\"c,d\n", 0, ','), "ab\"c|d", "a quote inside an unquoted field is text");
    is_str(rows("a;b;\"c;d\"\n", 0, ';'), "a|b|c;d", "another delimiter");
    is_str(rows("a\tb\n", 0, '\t'), "a|b", "a tab delimiter");
    is_str(rows("short\n0123456789abcdef\nok\n", 8, ','), "short/!ETOOLONG/ok",
           "a row past the cap is refused; the next line is read");
    is_str(rows("\"open quote runs away\nand on\nok\n", 12, ','), "!ETOOLONG/and on/ok",
           "a runaway quote costs one cap's worth: reading goes on at the next line break");
    is_str(rows("a\r", 0, ','), "a", "a CR at the very end ends the row");

    ok(csv_next_row("a,b", 3, 0, 0, ',', &row, &used) == CSV_NEED_MORE && used == 0,
       "a row without its newline waits for more when not final");
    ok(csv_next_row("a,b\r", 4, 0, 0, ',', &row, &used) == CSV_NEED_MORE,
       "so does a row whose last byte is a CR");
    ok(csv_next_row("\"a\nb", 4, 0, 0, ',', &row, &used) == CSV_NEED_MORE,
       "and one inside an open quote");
    ok(csv_next_row("", 0, 1, 0, ',', &row, &used) == CSV_NEED_MORE && used == 0,
       "nothing is no row");
    csv_row_free(&row);

    const char *text = "id,\"amount\"\n\"r\n1\",\"0.1\"\r\nr2,\"say \"\"x\"\"\"\nr3,3";
    for (size_t step = 1; step <= 7; step += 3)
        is_str(rows_chunked(text, step, 0), "id|amount/r\n1|0.1/r2|say \"x\"/r3|3",
               "fed %zu bytes at a time: the same rows", step);
    is_str(rows_chunked("a\n0123456789012345678901234567890\nb\n", 4, 10), "a/!-1/b",
           "a too-long row fed in pieces is refused once and skipped");
}

static void test_json(void)
{
    json_error_t err;
    json_t *doc = json_loads("{\"data\":{\"items\":[{\"cost\":0.1,\"n\":3,\"s\":\"x\","
                             "\"b\":true,\"z\":null,\"o\":{},\"service\":{\"description\":"
                             "\"Compute\"},\"a.b\":\"flat\"}]},\"x\":5}", 0, &err);
    char why[256], buf[JITEMS_NUM_MAX];
    const char *v;
    json_t *items, *it;

    ok(doc != NULL, "a JSON document");
    items = jsonitems_select(doc, "data.items", why, sizeof why);
    ok(items && json_array_size(items) == 1, "json_path data.items finds the array");
    ok(!jsonitems_select(doc, "data.nope", why, sizeof why) && strstr(why, "not found"),
       "a path that is not there: %s", why);
    ok(!jsonitems_select(doc, "x", why, sizeof why) && strstr(why, "a number"),
       "a path to a number: %s", why);
    ok(!jsonitems_select(doc, "", why, sizeof why) && strstr(why, "an object"),
       "\"\" on an object: %s", why);
    it = json_array_get(items, 0);
    int rc = jsonitems_text(it, "cost", buf, &v);
    ok(rc == 0 && v && !strcmp(v, "0.1"), "a real reads as its shortest text: %s",
       v ? v : "(null)");
    ok(jsonitems_text(it, "n", buf, &v) == 0 && v && !strcmp(v, "3"), "an integer");
    ok(jsonitems_text(it, "s", buf, &v) == 0 && v && !strcmp(v, "x"), "a string");
    ok(jsonitems_text(it, "b", buf, &v) == 0 && v && !strcmp(v, "true"), "true");
    ok(jsonitems_text(it, "z", buf, &v) == 0 && !v, "null is absent");
    ok(jsonitems_text(it, "missing", buf, &v) == 0 && !v, "a missing key is absent");
    ok(jsonitems_text(it, "o", buf, &v) == -1, "an object is not a field");
    ok(jsonitems_text(it, "service.description", buf, &v) == 0 && v && !strcmp(v, "Compute"),
       "a dotted key reaches into an object");
    ok(jsonitems_text(it, "a.b", buf, &v) == 0 && v && !strcmp(v, "flat"),
       "a key with a dot in it is found whole first");
    json_decref(doc);

    doc = json_loads("[{\"c\":1e-7},{\"c\":123456.789012}]", 0, &err);
    items = jsonitems_select(doc, "", why, sizeof why);
    ok(items && json_array_size(items) == 2, "\"\": the document is the array");
    rc = jsonitems_text(json_array_get(items, 0), "c", buf, &v);
    ok(rc == 0 && v && !strcmp(v, "1e-07"), "a small real keeps its exponent: %s",
       v ? v : "(null)");
    rc = jsonitems_text(json_array_get(items, 1), "c", buf, &v);
    ok(rc == 0 && v && !strcmp(v, "123456.789012"),
       "twelve significant digits come back as written: %s", v ? v : "(null)");
    json_decref(doc);
}

/* item_read on amount, currency, start, end (NULL: not mapped). */
static int read4(const char *amount, const char *cur, const char *start, const char *end,
                 struct item *it, int *bad, char *why)
{
    const char *vals[ITEM_NFIELDS] = { NULL, amount, cur, "vm-1", start, end };
    unsigned char mapped[ITEM_NFIELDS] = { 0, 1, cur != NULL, 1, start != NULL, end != NULL };

    return item_read(vals, mapped, "USD", it, bad, why, 256);
}

static void test_item(void)
{
    struct item it;
    char why[256];
    int bad = -1;
    int64_t ns = 0, sum = 0;

    for (int i = 0; i < 10; i++) {
        read4("0.1", NULL, NULL, NULL, &it, &bad, why);
        sum += it.amount_micros;
    }
    is_int(sum, 1000000, "ten amounts of 0.1 sum to exactly 1000000 micros");
    ok(read4(" -2.5 ", "eur", NULL, NULL, &it, &bad, why) == 0 && it.amount_micros == -2500000 &&
       !strcmp(it.currency, "EUR"), "a credit with blanks; the currency in capitals");
    ok(read4("0.0000004", NULL, NULL, NULL, &it, &bad, why) == 0 && it.amount_micros == 0,
       "less than half a micro rounds to 0");
    ok(read4("0.0000005", NULL, NULL, NULL, &it, &bad, why) == 0 && it.amount_micros == 1,
       "half a micro rounds away from zero");
    ok(read4("1,5", NULL, NULL, NULL, &it, &bad, why) == -1 && bad == ITEM_AMOUNT &&
       strstr(why, "\"1,5\""), "a bad amount names its text: %s", why);
    ok(read4("1", "US", NULL, NULL, &it, &bad, why) == -1 && bad == ITEM_CURRENCY,
       "a two-letter currency is refused: %s", why);
    ok(read4("1", "", NULL, NULL, &it, &bad, why) == 0 && !strcmp(it.currency, "USD"),
       "an empty currency cell takes the fixed currency");
    ok(read4("1", NULL, "2024-05-01T00:00:00Z", "2024-05-01T01:00:00Z", &it, &bad, why) == 0 &&
       it.start_ns == 1714521600000000000LL && it.end_ns == 1714525200000000000LL,
       "RFC 3339 start and end");
    ok(read4("1", NULL, "2024-05-01T03:00:00+02:00", NULL, &it, &bad, why) == 0 &&
       it.start_ns == 1714525200000000000LL && it.end_ns == it.start_ns,
       "an offset is applied; a start alone is the end too");
    ok(read4("1", NULL, "2024-05-02", "2024-05-01", &it, &bad, why) == -1 && bad == ITEM_END,
       "an end before the start is refused: %s", why);
    ok(read4("1", NULL, "2024-02-30", NULL, &it, &bad, why) == -1 && bad == ITEM_START,
       "February 30th is refused: %s", why);
    ok(read4("1", NULL, "", "", &it, &bad, why) == 0 && it.start_ns == 0 && it.end_ns == 0,
       "empty times are no times");

    static const struct { const char *s; int64_t ns; } times[] = {
        { "2024-05-01 00:00:00", 1714521600000000000LL },
        { "2024-05-01T00:00:00.5Z", 1714521600500000000LL },
        { "2024-05-01T00:00Z", 1714521600000000000LL },
        { "2024-05-01T00:00:00-0130", 1714527000000000000LL },
        { "2024-05-01 00:00:00 UTC", 1714521600000000000LL },
        { "1714521600", 1714521600000000000LL },
        { "2024-05-01", 1714521600000000000LL },
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        ok(item_time_parse(times[i].s, &ns) == 0 && ns == times[i].ns, "time \"%s\"",
           times[i].s);
    static const char *const bad_times[] = {
        "2024-13-01", "2024-05-01T25:00:00Z", "2024-05-01T00:00:00Q", "yesterday",
        "1969-12-31", "2024-05-01T00:00:00+", "99999999999",
    };
    for (size_t i = 0; i < sizeof bad_times / sizeof bad_times[0]; i++)
        ok(item_time_parse(bad_times[i], &ns) == -1, "time \"%s\" refused", bad_times[i]);

    /* identities */
    unsigned char a[ITEM_DIGEST_LEN], b[ITEM_DIGEST_LEN], c[ITEM_DIGEST_LEN];
    const char *keys[] = { "team" }, *v1[] = { "web" }, *v2[] = { "db" };
    read4("0.10", NULL, "2024-05-01", NULL, &it, &bad, why);
    item_digest(&it, keys, v1, 1, a);
    read4("0.1", NULL, "2024-05-01T00:00:00Z", NULL, &it, &bad, why);
    item_digest(&it, keys, v1, 1, b);
    ok(!memcmp(a, b, sizeof a), "the same item written differently has the same identity");
    item_digest(&it, keys, v2, 1, c);
    ok(memcmp(a, c, sizeof a) != 0, "another label value is another item");
    item_digest_nth(a, 1, c);
    ok(memcmp(a, c, sizeof a) != 0, "the second of two equal rows is another item");
    item_digest_nth(a, 0, c);
    ok(!memcmp(a, c, sizeof a), "the first is the row's own digest");
}

static void test_idset(void)
{
    struct idset s = { 0 };
    unsigned char id[IDSET_ID_LEN];
    char why[512], dir[] = "/tmp/billing-idset.XXXXXX", path[600];
    char *v = NULL;
    size_t vlen = 0;

    for (int i = 0; i < 1000; i++) {
        memset(id, 0, sizeof id);
        memcpy(id, &i, sizeof i);
        id[31] = (unsigned char)i;
        idset_add(&s, id, (int64_t)i * 10, i < 990 ? 0 : 7);
    }
    memset(id, 0, sizeof id);
    int k = 500;
    memcpy(id, &k, sizeof k);
    id[31] = (unsigned char)k;
    ok(idset_find(&s, id) && idset_find(&s, id)->end_ns == 5000, "found among 1000");
    ok(idset_bound(&s, 100) == 890 && s.n == 110,
       "bound to 100 committed: 890 dropped, the 10 pending kept (%zu left)", s.n);
    is_int(s.horizon_ns, 8890, "the horizon is the latest end dropped");
    ok(!idset_find(&s, id), "an old one is gone");
    idset_commit(&s, 7);
    ok(mkdtemp(dir) != NULL, "a scratch directory");
    snprintf(path, sizeof path, "%s/state", dir);
    ok(idset_save(&s, path, "v\n1", 3, why, sizeof why) == 0, "saved");
    idset_free(&s);
    ok(idset_load(&s, path, &v, &vlen, why, sizeof why) == 0 && s.n == 110 &&
       s.horizon_ns == 8890 && vlen == 3 && !memcmp(v, "v\n1", 3),
       "loaded back: entries, horizon and validator");
    free(v);
    idset_free(&s);
    FILE *f = fopen(path, "a");
    fputs("zz not an entry\n", f);
    fclose(f);
    ok(idset_load(&s, path, &v, &vlen, why, sizeof why) == -1 && strstr(why, ":114:") &&
       s.n == 0, "a damaged line is named: %s", why);
    unlink(path);
    ok(idset_load(&s, path, &v, &vlen, why, sizeof why) == 0 && s.n == 0 && !v,
       "no file is an empty set");
    rmdir(dir);
}

int main(void)
{
    test_csv();
    test_json();
    test_item();
    test_idset();
    return done_testing();
}
