/* test_billing_export.c: the billing_export input through the harness: CSV, JSON and NDJSON export files, HTTP against httpd_fixture, each line item once across rewrites, restarts and lost acks. */
#include "plugtest.h"
#include "log.h"
#include "../http/httpd.h"

static const char *tmp;                 /* scratch directory of the test */
static char state[4200];                /* the host state directory, kept across instances */
static char logpath[4200];
static FILE *log_file;                  /* the plugin's log lines */
static uint64_t marked;                 /* the last token marked */
static int nmarks;

/* The host's mark: remember the token; the test acknowledges it, or not. */
static int test_mark(struct instance_host *h, struct pipit_instance *ins, uint64_t token)
{
    (void)h;
    (void)ins;
    marked = token;
    nmarks++;
    return PIPIT_OK;
}

/*
 * Open billing_export with the options in yaml and run init(), with the
 * host state directory `state` (so that a second instance finds what the
 * first saved) and, when marks, a host that marks and waits for the test
 * to acknowledge.
 */
static int bx_open(struct tp *t, const char *yaml, bool marks)
{
    const struct loader_plugin *lp;
    struct cfg_doc *doc;
    struct diag d;

    memset(t, 0, sizeof *t);
    if (harness_open(&t->h, tp_plugin("billing_export"), NULL, 0, stderr) != PIPIT_OK)
        return PIPIT_EINVAL;
    t->open = true;
    t->h.host.state_dir = state;
    t->h.host.mark = marks ? test_mark : NULL;
    lp = t->h.ins->plugin;
    instance_free(t->h.ins);
    t->h.ins = NULL;
    diag_init(&d);
    doc = cfg_load_string(yaml, strlen(yaml), "test", &d);
    if (doc)
        t->h.ins = instance_create(&t->h.host, lp, PIPIT_COLLECTOR, "billing_export",
                                   doc->root, NULL, "test", NULL, &d);
    if (!t->h.ins)
        diag_print(&d, stderr);
    cfg_free(doc);
    diag_free(&d);
    if (!t->h.ins)
        return PIPIT_EINVAL;
    return harness_init(&t->h);
}

/* The plugin's acknowledgement of token, as the host gives it. */
static void bx_ack(struct tp *t, uint64_t token)
{
    t->h.ins->plugin->desc.ack(t->h.ins, t->h.ins->ctx, token);
}

static const char *str(json_t *r, const char *key)
{
    const char *v = json_string_value(json_object_get(r, key));
    return v ? v : "";
}

static const char *label(json_t *r, const char *key)
{
    return str(json_object_get(r, "labels"), key);
}

static bool is_cost(json_t *r)
{
    return !strcmp(str(r, "kind"), "cost");
}

/* Cost records of the last run. */
static int costs(struct tp *t)
{
    size_t i;
    json_t *r;
    int n = 0;

    json_array_foreach(t->recs, i, r)
        n += is_cost(r);
    return n;
}

static long long sum_micros(struct tp *t)
{
    size_t i;
    json_t *r;
    long long s = 0;

    json_array_foreach(t->recs, i, r)
        if (is_cost(r))
            s += json_integer_value(json_object_get(r, "amount_micros"));
    return s;
}

/* The cost record of the last run for resource, or NULL. */
static json_t *cost_of(struct tp *t, const char *resource)
{
    size_t i;
    json_t *r;

    json_array_foreach(t->recs, i, r)
        if (is_cost(r) && !strcmp(str(r, "resource"), resource))
            return r;
    return NULL;
}

/* A counter of the last run (billing_export.<name>). */
static double counter(struct tp *t, const char *name)
{
    char full[128];

    snprintf(full, sizeof full, "billing_export.%s", name);
    return tp_val(tp_find(t, full, NULL));
}

static const char *log_text(void)
{
    fflush(log_file);
    return tp_slurp(logpath);
}

static void log_clear(void)
{
    fflush(log_file);
    if (ftruncate(fileno(log_file), 0) != 0)
        diag("cannot truncate the log");
    rewind(log_file);
}

static void fresh_state(void)
{
    static int n;

    snprintf(state, sizeof state, "%s/state%d", tmp, ++n);
    mkdir(state, 0700);
}

/* ---- exports ------------------------------------------------------------ */

#define CUR_HEADER "identity/LineItemId,lineItem/UsageStartDate,lineItem/UsageEndDate," \
    "lineItem/UnblendedCost,lineItem/CurrencyCode,lineItem/ResourceId,product/region," \
    "resourceTags/user:team\r\n"

/* An AWS CUR-like CSV: rows from..to-1 of 0.1 USD each, an hour apart. */
static void cur_rows(char *out, size_t size, int from, int to)
{
    size_t n = 0;

    for (int i = from; i < to; i++)
        n += (size_t)snprintf(out + n, size - n,
                              "li-%d,2024-05-01T%02d:00:00Z,2024-05-01T%02d:00:00Z,0.1,USD,"
                              "\"i-%d\",eu-west-1,%s\r\n", i, i % 24, i % 24 + (i % 24 < 23),
                              i, i % 2 ? "db" : "web");
}

static const char *cur_yaml(const char *path, const char *extra)
{
    static char y[16384];

    snprintf(y, sizeof y,
             "path: %s\n"
             "columns:\n"
             "  id: identity/LineItemId\n"
             "  amount: lineItem/UnblendedCost\n"
             "  currency: lineItem/CurrencyCode\n"
             "  resource: lineItem/ResourceId\n"
             "  start: lineItem/UsageStartDate\n"
             "  end: lineItem/UsageEndDate\n"
             "labels:\n"
             "  region: product/region\n"
             "  team: \"resourceTags/user:team\"\n"
             "%s", path, extra ? extra : "");
    return y;
}

static void test_csv(void)
{
    struct tp t;
    char path[4300], body[16384], text[20000];
    json_t *r;

    fresh_state();
    log_clear();
    snprintf(path, sizeof path, "%s/cur.csv", tmp);
    cur_rows(body, sizeof body, 0, 10);
    snprintf(text, sizeof text, "%s%s"
             "li-bad1,2024-05-01T00:00:00Z,2024-05-01T01:00:00Z,0.1.2,USD,i-x,eu-west-1,web\r\n"
             "li-bad2,2024-05-01T99:00:00Z,2024-05-01T01:00:00Z,1,USD,i-y,eu-west-1,web\r\n"
             "li-bad3,2024-05-01T00:00:00Z\r\n"
             "\"li-ml\",2024-05-01T00:00:00Z,2024-05-01T01:00:00Z,\"2.50\",USD,\"i-multi\n"
             "line\",eu-west-1,web\r\n", CUR_HEADER, body);
    tp_write(tmp, "cur.csv", text);
    ok(bx_open(&t, cur_yaml(path, NULL), false) == PIPIT_OK, "csv: opens");
    ok(tp_run(&t) == PIPIT_OK, "csv: a pass");
    is_int(costs(&t), 11, "csv: the 10 good rows and the multi-line one are emitted");
    is_int(sum_micros(&t), 1000000 + 2500000, "csv: ten rows of 0.1 and one of 2.50 are "
           "exactly 3500000 micros");
    is_int(t.bad, 0, "csv: records well-formed");
    r = cost_of(&t, "i-3");
    ok(r && json_integer_value(json_object_get(r, "amount_micros")) == 100000 &&
       !strcmp(str(r, "currency"), "USD") &&
       json_integer_value(json_object_get(r, "period_start")) == 1714532400000000000LL &&
       json_integer_value(json_object_get(r, "period_end")) == 1714536000000000000LL,
       "csv: amount, currency and period of a row");
    ok(r && !strcmp(label(r, "region"), "eu-west-1") && !strcmp(label(r, "team"), "db") &&
       !strcmp(label(r, "source"), path), "csv: mapped labels and the source label");
    ok(cost_of(&t, "i-multi\nline") != NULL, "csv: a quoted field across a line break");
    is_num(counter(&t, "refused"), 3, 0, "csv: three rows refused, counted");
    is_num(counter(&t, "rows_read"), 14, 0, "csv: 14 rows read");
    const char *lg = log_text();
    ok(strstr(lg, "line 12 (row 11), column \\\"lineItem/UnblendedCost\\\" (amount): "
                  "\\\"0.1.2\\\" is not an amount") != NULL,
       "csv: a bad amount is logged with its line, row and column");
    ok(strstr(lg, "line 13 (row 12), column \\\"lineItem/UsageStartDate\\\" (start)") != NULL,
       "csv: a bad time is logged with its line, row and column");
    ok(strstr(lg, "line 14 (row 13), column \\\"lineItem/UnblendedCost\\\" (amount): is "
                  "missing") != NULL, "csv: a short row is logged as a missing column");
    ok(strstr(lg, "14 rows read, 11 emitted, 0 duplicates, 0 expired, 3 refused") != NULL,
       "csv: the pass's summary line");
    if (!strstr(lg, "line 12 (row 11)"))
        diag("log: %s", lg);

    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 0, "csv: an unchanged file emits nothing");
    is_num(counter(&t, "unchanged"), 1, 0, "csv: and is not read again");

    /* rewritten whole, reordered and grown: only the new items */
    cur_rows(body, sizeof body, 0, 14);
    snprintf(text, sizeof text, "%s%s", CUR_HEADER, body);
    tp_write(tmp, "cur.csv", text);
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 4, "csv: a rewritten, grown export emits only "
       "the 4 new items (%d)", costs(&t));
    ok(cost_of(&t, "i-10") && cost_of(&t, "i-13") && !cost_of(&t, "i-0"),
       "csv: which are the new ones");
    is_num(counter(&t, "duplicates"), 10, 0, "csv: the 10 old ones are counted as duplicates");
    tp_close(&t);

    /* a restart emits nothing new, from the file's state or its items */
    ok(bx_open(&t, cur_yaml(path, NULL), false) == PIPIT_OK, "csv: opens again");
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 0, "csv: after a restart nothing is emitted");
    tp_write(tmp, "cur.csv", text);     /* the same text, a new file */
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 0 && counter(&t, "duplicates") == 14,
       "csv: the same items in a new file are all duplicates");
    tp_close(&t);

    /* a changed mapping reads the unchanged file again */
    ok(bx_open(&t, cur_yaml(path, "currency: USD\n"), false) == PIPIT_OK &&
       tp_run(&t) == PIPIT_OK && counter(&t, "unchanged") == 0 && costs(&t) == 0,
       "csv: other options read the file again, its items still known");
    tp_close(&t);
}

/* Without an ack the items come again after a restart; with one, never. */
static void test_acks(void)
{
    struct tp t;
    char path[4300], body[16384], text[20000];

    fresh_state();
    snprintf(path, sizeof path, "%s/acks.csv", tmp);
    cur_rows(body, sizeof body, 0, 5);
    snprintf(text, sizeof text, "%s%s", CUR_HEADER, body);
    tp_write(tmp, "acks.csv", text);
    nmarks = 0;
    ok(bx_open(&t, cur_yaml(path, NULL), true) == PIPIT_OK && tp_run(&t) == PIPIT_OK &&
       costs(&t) == 5 && nmarks == 1, "acks: 5 items emitted and marked");
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 0, "acks: not again while the ack is awaited");
    tp_close(&t);                       /* the process dies before the ack */

    ok(bx_open(&t, cur_yaml(path, NULL), true) == PIPIT_OK && tp_run(&t) == PIPIT_OK &&
       costs(&t) == 5, "acks: without the ack a restart emits them again (%d)", costs(&t));
    bx_ack(&t, marked);
    tp_close(&t);

    ok(bx_open(&t, cur_yaml(path, NULL), true) == PIPIT_OK && tp_run(&t) == PIPIT_OK &&
       costs(&t) == 0, "acks: once acknowledged, a restart emits nothing");
    cur_rows(body, sizeof body, 0, 7);
    snprintf(text, sizeof text, "%s%s", CUR_HEADER, body);
    tp_write(tmp, "acks.csv", text);
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 2, "acks: the export grows: 2 new items");
    uint64_t first = marked;
    cur_rows(body, sizeof body, 0, 8);
    snprintf(text, sizeof text, "%s%s", CUR_HEADER, body);
    tp_write(tmp, "acks.csv", text);
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 1 && marked > first,
       "acks: and again: 1, under a later mark");
    bx_ack(&t, first);                  /* only the first of the two marks */
    tp_close(&t);
    ok(bx_open(&t, cur_yaml(path, NULL), true) == PIPIT_OK && tp_run(&t) == PIPIT_OK &&
       costs(&t) == 1 && cost_of(&t, "i-7"), "acks: what the acked mark covered stays "
       "emitted; the rest comes again");
    tp_close(&t);
}

/* max_tracked: the oldest identities go, and items as old are skipped. */
static void test_bound(void)
{
    struct tp t;
    char path[4300], body[16384], text[20000];

    fresh_state();
    snprintf(path, sizeof path, "%s/bound.csv", tmp);
    cur_rows(body, sizeof body, 0, 10);
    snprintf(text, sizeof text, "%s%s", CUR_HEADER, body);
    tp_write(tmp, "bound.csv", text);
    ok(bx_open(&t, cur_yaml(path, "max_tracked: 4\n"), false) == PIPIT_OK &&
       tp_run(&t) == PIPIT_OK && costs(&t) == 10, "bound: 10 items emitted");
    is_num(tp_val(tp_find(&t, "billing_export.tracked", NULL)), 4, 0,
           "bound: 4 identities kept");
    tp_write(tmp, "bound.csv", text);
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 0 && counter(&t, "expired") == 6 &&
       counter(&t, "duplicates") == 4,
       "bound: read again, the 4 kept are duplicates, the 6 older are skipped as expired");
    tp_close(&t);
}

static void test_json(void)
{
    struct tp t;
    char path[4300], text[20000];
    size_t n = 0;
    json_t *r;

    fresh_state();
    log_clear();
    snprintf(path, sizeof path, "%s/gcp.json", tmp);
    n += (size_t)snprintf(text + n, sizeof text - n, "{\"kind\":\"export\",\"rows\":[");
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(text + n, sizeof text - n,
                              "%s{\"service\":{\"description\":\"Compute Engine\"},"
                              "\"sku\":{\"description\":\"N2 core %d\"},\"project\":{\"id\":"
                              "\"proj-a\"},\"usage_start_time\":\"2024-05-01T00:00:00Z\","
                              "\"usage_end_time\":\"2024-05-01T01:00:00Z\",\"cost\":0.1,"
                              "\"currency\":\"EUR\"}", i ? "," : "", i % 9);
    n += (size_t)snprintf(text + n, sizeof text - n,
                          ",{\"sku\":{\"description\":\"bad\"},\"cost\":\"ten\",\"currency\":"
                          "\"EUR\",\"usage_start_time\":\"2024-05-01T00:00:00Z\"},"
                          "{\"sku\":{\"description\":\"obj\"},\"cost\":{\"v\":1},"
                          "\"currency\":\"EUR\"}, 7]}");
    tp_write(tmp, "gcp.json", text);
#define GCP_YAML "path: %s\n" \
        "json_path: rows\n" \
        "columns: {amount: cost, currency: currency, resource: sku.description,\n" \
        "          start: usage_start_time, end: usage_end_time}\n" \
        "labels: {service: service.description, project: project.id}\n"
    char y[8192];
    snprintf(y, sizeof y, GCP_YAML, path);
    ok(bx_open(&t, y, false) == PIPIT_OK && tp_run(&t) == PIPIT_OK, "json: a pass");
    is_int(costs(&t), 10, "json: 10 items, two of them equal in every field, all emitted");
    is_int(sum_micros(&t), 1000000, "json: ten costs of 0.1 are exactly 1000000 micros");
    is_int(t.bad, 0, "json: records well-formed");
    r = cost_of(&t, "N2 core 3");
    ok(r && !strcmp(str(r, "currency"), "EUR") && !strcmp(label(r, "service"), "Compute Engine") &&
       !strcmp(label(r, "project"), "proj-a") && !strcmp(label(r, "source"), path),
       "json: dotted keys into nested objects for the resource and labels");
    is_num(counter(&t, "refused"), 3, 0, "json: a bad cost, an object and a number refused");
    const char *lg = log_text();
    ok(strstr(lg, "item 11, key \\\"cost\\\" (amount): \\\"ten\\\" is not an amount") != NULL,
       "json: a refused item is logged with its index and key");
    ok(strstr(lg, "item 12, key \\\"cost\\\" (amount): is an object or an array") != NULL,
       "json: so is an object where a value belongs");
    ok(strstr(lg, "item 13: not an object") != NULL, "json: and an item that is no object");

    /* rewritten with one more item: only that one */
    char *end = strstr(text, ", 7]}");
    snprintf(end, sizeof text - (size_t)(end - text),
             ",{\"sku\":{\"description\":\"new\"},\"cost\":\"1.25\",\"currency\":\"EUR\","
             "\"usage_start_time\":\"2024-05-02\"}]}");
    tp_write(tmp, "gcp.json", text);
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 1 && cost_of(&t, "new") &&
       sum_micros(&t) == 1250000, "json: a grown export emits only its new item");
    tp_close(&t);
    ok(bx_open(&t, y, false) == PIPIT_OK && tp_run(&t) == PIPIT_OK && costs(&t) == 0,
       "json: a restart emits nothing");
    tp_close(&t);

    tp_write(tmp, "broken.json", "{\"rows\": [1, 2");
    snprintf(path, sizeof path, "%s/broken.json", tmp);
    snprintf(y, sizeof y, GCP_YAML, path);
    log_clear();
    ok(bx_open(&t, y, false) == PIPIT_OK && tp_run(&t) == PIPIT_EPARSE && costs(&t) == 0,
       "json: a document that is not JSON fails the pass");
    ok(strstr(log_text(), "broken.json line 1, column ") != NULL,
       "json: the error names the file, line and column");
    tp_close(&t);
}

static void test_ndjson(void)
{
    struct tp t;
    char path[4300], y[8192];

    fresh_state();
    log_clear();
    snprintf(path, sizeof path, "%s/items.ndjson", tmp);
    tp_write(tmp, "items.ndjson",
             "{\"id\":\"a\",\"usd\":\"0.5\",\"svc\":\"s3\"}\n"
             "{\"id\":\"b\",\"usd\":0.25,\n"
             "\n"
             "{\"id\":\"c\",\"usd\":1,\"svc\":\"ec2\"}\n"
             "{\"id\":\"a\",\"usd\":\"0.5\",\"svc\":\"s3\"}");
    snprintf(y, sizeof y, "path: %s\ncurrency: USD\ncolumns: {id: id, amount: usd, "
             "resource: svc}\n", path);
    ok(bx_open(&t, y, false) == PIPIT_OK && tp_run(&t) == PIPIT_OK, "ndjson: a pass");
    ok(costs(&t) == 2 && sum_micros(&t) == 1500000, "ndjson: two items, the fixed currency");
    ok(counter(&t, "refused") == 1 && counter(&t, "duplicates") == 1,
       "ndjson: a broken line refused, a repeated id a duplicate");
    ok(strstr(log_text(), "items.ndjson line 2, column ") != NULL,
       "ndjson: the broken line is named");
    tp_close(&t);
}

static void test_options(void)
{
    struct tp t;
    static const char *const bad[][2] = {
        { "columns: {amount: c}\ncurrency: USD\n", "exactly one of path and url" },
        { "path: /x\nurl: http://127.0.0.1/\ncolumns: {amount: c}\ncurrency: USD\n",
          "exactly one" },
        { "path: /x\ncolumns: {id: c}\ncurrency: USD\n", "columns.amount: is required" },
        { "path: /x\ncolumns: {amount: c}\n", "currency: give" },
        { "path: /x\ncolumns: {amount: c, cost: d}\ncurrency: USD\n", "columns.cost: not" },
        { "path: /x\ncolumns: {amount: c}\ncurrency: usd\n", "currency: must be" },
        { "path: /x\ncolumns: {amount: c}\ncurrency: USD\nformat: xml\n", "format: \\\"xml\\\"" },
        { "path: /x\ncolumns: {amount: c}\ncurrency: USD\ndelimiter: ';;'\n", "delimiter:" },
        { "path: /x\ncolumns: {amount: c}\ncurrency: USD\nlabels: {source: c}\n",
          "labels.source:" },
        { "url: ftp://h/x\ncolumns: {amount: c}\ncurrency: USD\n", "not http or https" },
        { "path: /x\ncolumns: {amount: c}\ncurrency: USD\nheaders: {A: b}\n",
          "are for url" },
    };

    fresh_state();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        log_clear();
        int rc = bx_open(&t, bad[i][0], false);
        ok(rc == PIPIT_ECONFIG && strstr(log_text(), bad[i][1]),
           "options refused: %s (%d)", bad[i][1], rc);
        if (rc != PIPIT_ECONFIG || !strstr(log_text(), bad[i][1]))
            diag("log: %s", log_text());
        tp_close(&t);
    }
}

/* HTTP: an unchanged export answers 304 and is not read; a changed one
 * brings its new items only; headers reach the server, never the log. */
static void test_http(void)
{
    struct httpd srv;
    struct tp t;
    char www[4300], body[16384], text[20000], y[16384], url[256];

    fresh_state();
    snprintf(www, sizeof www, "%s/www", tmp);
    cur_rows(body, sizeof body, 0, 10);
    snprintf(text, sizeof text, "%s%s", CUR_HEADER, body);
    tp_write(tmp, "www/cur.csv", text);
    if (httpd_start(&srv, www, tmp, (const char *[]){ "--token", "s3cret-token", NULL }) != 0) {
        skip(9, "httpd_fixture did not start");
        return;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%u/cur.csv", srv.port);
    snprintf(y, sizeof y, "%s", cur_yaml("x", "headers: {Authorization: Bearer s3cret-token}\n"));
    /* the path line becomes the url */
    char yurl[16800];
    snprintf(yurl, sizeof yurl, "url: %s\n%s", url, strchr(y, '\n') + 1);
    log_clear();
    ok(bx_open(&t, yurl, false) == PIPIT_OK && tp_run(&t) == PIPIT_OK && costs(&t) == 10 &&
       sum_micros(&t) == 1000000, "http: 10 items, exactly 1000000 micros");
    ok(cost_of(&t, "i-1") && !strcmp(label(cost_of(&t, "i-1"), "source"), url),
       "http: the source label is the URL");
    int before = httpd_requests(&srv);
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 0 && counter(&t, "unchanged") == 1,
       "http: unchanged: nothing emitted, counted as unchanged");
    const char *reqlog = tp_slurp(srv.log);
    ok(httpd_requests(&srv) == before + 1 && strstr(reqlog, "status=304 auth=yes"),
       "http: the second request was answered 304 (If-None-Match)");
    cur_rows(body, sizeof body, 0, 13);
    snprintf(text, sizeof text, "%s%s", CUR_HEADER, body);
    tp_write(tmp, "www/cur.csv", text);
    ok(tp_run(&t) == PIPIT_OK && costs(&t) == 3 && counter(&t, "duplicates") == 10,
       "http: a changed export brings its 3 new items only");
    tp_close(&t);
    ok(bx_open(&t, yurl, false) == PIPIT_OK && tp_run(&t) == PIPIT_OK && costs(&t) == 0 &&
       strstr(tp_slurp(srv.log), "status=304"), "http: after a restart the saved ETag "
       "still gives a 304");
    tp_close(&t);
    ok(!strstr(log_text(), "s3cret-token"), "http: the header's value is never logged");

    /* a refused request fails the pass, naming the status */
    fresh_state();
    log_clear();
    snprintf(yurl, sizeof yurl, "url: %s\n%s", url, strchr(cur_yaml("x", NULL), '\n') + 1);
    ok(bx_open(&t, yurl, false) == PIPIT_OK && tp_run(&t) == PIPIT_EIO && costs(&t) == 0,
       "http: without the token the pass fails");
    ok(strstr(log_text(), "HTTP status 401") != NULL, "http: the status is logged");
    tp_close(&t);
    httpd_stop(&srv);
}

int main(void)
{
    tmp = tp_tmpdir();
    snprintf(logpath, sizeof logpath, "%s/plugin.log", tmp);
    log_file = fopen(logpath, "w+");
    if (!log_file) {
        printf("Bail out! cannot open %s\n", logpath);
        return 1;
    }
    log_setup(log_file, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    test_csv();
    test_acks();
    test_bound();
    test_json();
    test_ndjson();
    test_options();
    test_http();
    log_setup(stderr, LOG_FMT_LOGFMT, PIPIT_LOG_INFO);
    fclose(log_file);
    tp_rmtree(tmp);
    return done_testing();
}
