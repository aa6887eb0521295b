/* test_deploy.c: the pure parts of pipit deploy: inventory files, waves (rolling N, N%, canary), ids, per-host targets, outcomes and the stop rule. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <pipit/plugin.h>
#include "deploy_plan.h"
#include "selector.h"
#include "../tap.h"

static int parse(const char *text, struct deploy_inventory *inv, struct diag *d)
{
    diag_init(d);
    return deploy_inventory_parse(text, strlen(text), "inv.txt", inv, d);
}

/* The first error as "line: key: msg". */
static const char *first_error(const struct diag *d)
{
    static char s[512];
    if (!d->count)
        return "";
    snprintf(s, sizeof s, "%d: %s: %s", d->items[0].line,
             d->items[0].key ? d->items[0].key : "-", d->items[0].msg);
    return s;
}

static const char *label(const struct deploy_host *h, const char *k)
{
    for (size_t i = 0; i < h->labels.count; i++)
        if (!strcmp(h->labels.keys[i], k))
            return h->labels.values[i];
    return NULL;
}

static void test_inventory(void)
{
    struct deploy_inventory inv;
    struct diag d;

    is_int(parse("# the web tier\n"
                 "web-01 role=web zone=a\n"
                 "\n"
                 "  web-02\trole=web   zone=b   # comment\n"
                 "db-01 role=db\r\n"
                 "lonely", &inv, &d), PIPIT_OK, "an inventory with comments and blanks parses");
    is_int(inv.count, 4, "four hosts, blank and comment lines skipped");
    ok(inv.count == 4 && !strcmp(inv.hosts[0].name, "web-01") &&
       !strcmp(inv.hosts[1].name, "web-02") && !strcmp(inv.hosts[2].name, "db-01") &&
       !strcmp(inv.hosts[3].name, "lonely"), "hosts in file order, last line without newline");
    ok(inv.count == 4 && inv.hosts[1].labels.count == 2 &&
       !strcmp(label(&inv.hosts[1], "zone"), "b") && !strcmp(label(&inv.hosts[2], "role"), "db") &&
       inv.hosts[3].labels.count == 0, "labels kept per host (CR of CRLF not in a value)");
    is_int(inv.hosts[2].line, 5, "each host knows its line");

    struct selector sel;
    char err[256];
    size_t idx[4];
    selector_parse("role=web,zone!=b", &sel, err, sizeof err);
    size_t n = deploy_select(&inv, &sel, idx);
    ok(n == 1 && idx[0] == 0, "the selector applies to host labels");
    selector_free(&sel);
    selector_parse("host=*-01", &sel, err, sizeof err);
    n = deploy_select(&inv, &sel, idx);
    ok(n == 2 && idx[0] == 0 && idx[1] == 2, "host= terms match the name, in inventory order");
    selector_free(&sel);
    deploy_inventory_free(&inv);
    diag_free(&d);

    is_int(parse("web-01\nweb-02\nweb-01 role=x\n", &inv, &d), PIPIT_EPARSE,
           "a host listed twice is an error");
    is_str(first_error(&d), "3: web-01: host listed twice (first on line 1)",
           "the error names the line and the first listing");
    ok(inv.count == 0 && !inv.hosts, "the inventory is empty on error");
    diag_free(&d);
    is_int(parse("web-01 role\n", &inv, &d), PIPIT_EPARSE, "a label without = is an error");
    ok(strstr(first_error(&d), "1: web-01: \"role\": a label is key=value") != NULL,
       "it says what a label is");
    diag_free(&d);
    parse("ok-1\nweb-01 role=a role=b\n", &inv, &d);
    is_str(first_error(&d), "2: web-01: label role given twice", "a label twice on a line");
    diag_free(&d);
    parse("web-01 host=x\n", &inv, &d);
    ok(strstr(first_error(&d), "\"host\" is not a label") != NULL, "host= is not a label");
    diag_free(&d);
    parse("a=b role=web\n", &inv, &d);
    ok(strstr(first_error(&d), "1: -: host name \"a=b\"") != NULL,
       "a host name with '=' (a forgotten host) is an error");
    diag_free(&d);
    parse("web-01 ro*le=x\nweb-02 r=\n", &inv, &d);
    ok(d.count == 2 && d.items[1].line == 2, "every bad line is reported, not only the first");
    diag_free(&d);
    is_int(parse("", &inv, &d), PIPIT_OK, "an empty inventory parses");
    is_int(inv.count, 0, "to no hosts");
    diag_free(&d);
}

static bool wave_is(const struct deploy_waves *w, size_t i, const char *want)
{
    char got[256] = "";
    size_t o = 0;
    for (size_t k = 0; i < w->count && k < w->waves[i].count; k++)
        o += (size_t)snprintf(got + o, sizeof got - o, "%s%zu", k ? "," : "", w->waves[i].hosts[k]);
    if (strcmp(got, want)) {
        diag("  wave %zu: got %s, want %s", i, got, want);
        return false;
    }
    return true;
}

static void test_waves(void)
{
    struct deploy_batch b;
    struct deploy_waves w;
    size_t t[10] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };

    is_int(deploy_batch_parse("3", &b), PIPIT_OK, "--batch 3 parses");
    ok(b.n == 3 && !b.percent, "as 3 hosts");
    is_int(deploy_batch_parse("20%", &b), PIPIT_OK, "--batch 20%% parses");
    ok(b.n == 20 && b.percent, "as 20 percent");
    ok(deploy_batch_parse("0", &b) && deploy_batch_parse("101%", &b) &&
       deploy_batch_parse("3x", &b) && deploy_batch_parse("-1", &b) &&
       deploy_batch_parse("", &b) && deploy_batch_parse("%", &b),
       "0, 101%%, 3x, -1, empty and %% alone are refused");
    deploy_batch_parse("25%", &b);
    is_int(deploy_batch_size(&b, 10), 3, "25%% of 10 hosts is 3 (rounded up)");
    deploy_batch_parse("1%", &b);
    is_int(deploy_batch_size(&b, 10), 1, "1%% of 10 hosts is still 1");
    deploy_batch_parse("100%", &b);
    is_int(deploy_batch_size(&b, 7), 7, "100%% is every host");
    deploy_batch_parse("50", &b);
    is_int(deploy_batch_size(&b, 7), 7, "a batch larger than the targets is all of them");

    is_int(deploy_waves_rolling(t, 10, 3, &w), PIPIT_OK, "rolling waves of 3 over 10 hosts");
    ok(w.count == 4 && wave_is(&w, 0, "0,1,2") && wave_is(&w, 1, "3,4,5") &&
       wave_is(&w, 3, "9") && !w.waves[0].canary, "3, 3, 3 and 1, in order");
    deploy_waves_free(&w);
    deploy_waves_rolling(t, 10, 1, &w);
    is_int(w.count, 10, "batch 1: one host a wave");
    deploy_waves_free(&w);
    deploy_waves_rolling(t, 0, 3, &w);
    is_int(w.count, 0, "no targets: no waves");
    deploy_waves_free(&w);

    struct deploy_inventory inv;
    struct diag d;
    parse("web-01 zone=a\nweb-02 zone=b\nweb-03 zone=a\nweb-04 zone=b\nweb-05 zone=b\n",
          &inv, &d);
    char err[256];
    size_t targets[5] = { 0, 1, 2, 3, 4 };
    is_int(deploy_waves_canary(&inv, targets, 5, NULL, 2, 2, &w, err, sizeof err), PIPIT_OK,
           "canary: the first 2, then waves of 2");
    ok(w.count == 3 && w.waves[0].canary && !w.waves[1].canary && wave_is(&w, 0, "0,1") &&
       wave_is(&w, 1, "2,3") && wave_is(&w, 2, "4"), "canary 0,1 then 2,3 and 4");
    deploy_waves_free(&w);
    struct selector sel;
    selector_parse("zone=a", &sel, err, sizeof err);
    deploy_waves_canary(&inv, targets, 5, &sel, 0, 3, &w, err, sizeof err);
    ok(w.count == 2 && wave_is(&w, 0, "0,2") && wave_is(&w, 1, "1,3,4"),
       "a canary selector takes its hosts out of the rolling waves");
    deploy_waves_free(&w);
    size_t some[2] = { 1, 3 };
    is_int(deploy_waves_canary(&inv, some, 2, &sel, 0, 3, &w, err, sizeof err), PIPIT_EINVAL,
           "a canary selector that matches no target is refused");
    is_str(err, "no target host matches the canary selector", "with a reason");
    ok(w.count == 0 && !w.waves, "and no waves");
    selector_free(&sel);
    deploy_waves_canary(&inv, targets, 5, NULL, 9, 2, &w, err, sizeof err);
    ok(w.count == 1 && w.waves[0].count == 5 && w.waves[0].canary,
       "a canary of every target is the only wave");
    deploy_waves_free(&w);
    deploy_inventory_free(&inv);
    diag_free(&d);
}

static void test_ids_targets(void)
{
    char id[160];
    const unsigned char rnd[2] = { 0xab, 0x05 };
    struct buf b = BUF_INIT;
    struct selector sel;
    char err[256];

    is_int(deploy_make_id(id, sizeof id, "web-rollout", 1700000000, rnd), PIPIT_OK,
           "a deployment id is made");
    is_str(id, "web-rollout-20231114T221320Z-ab05", "<plan>-<UTC time>-<4 hex>");
    ok(deploy_id_valid(id, 128), "it is a valid envelope id");
    is_int(deploy_make_id(id, 10, "web-rollout", 1700000000, rnd), PIPIT_ERANGE,
           "an id that does not fit is an error");
    ok(!deploy_id_valid("has blank", 128) && !deploy_id_valid("", 128) &&
       !deploy_id_valid("abcd", 3) && deploy_id_valid("abc", 3), "ids: no blanks, 1 to max");

    selector_parse(" role=web ", &sel, err, sizeof err);
    deploy_host_target(" role=web ", &sel, "web-03", &b);
    is_str(b.data, "role=web,host=web-03", "the selector and the host, both checked");
    selector_free(&sel);
    buf_reset(&b);
    selector_parse("*", &sel, err, sizeof err);
    deploy_host_target("*", &sel, "web-03", &b);
    is_str(b.data, "host=web-03", "a '*' deployment addresses the host alone");
    buf_reset(&b);
    deploy_host_target("*", &sel, "odd[1]*", &b);
    is_str(b.data, "host=odd\\[1\\]\\*", "glob characters of a host name are escaped");
    selector_free(&sel);
    is_int(selector_parse(b.data, &sel, err, sizeof err), PIPIT_OK, "the target parses");
    ok(selector_match(&sel, "odd[1]*", NULL) && !selector_match(&sel, "odd1x", NULL),
       "and addresses exactly that host");
    selector_free(&sel);
    buf_free(&b);
}

static void test_outcomes(void)
{
    struct deploy_watch w[3] = {
        { .host = "web-01" }, { .host = "web-02" }, { .host = "web-03" },
    };
    const char *id = "demo-1";
    struct deploy_event ev = { .name = "plan.finished", .status = "ok", .host = "web-01",
                               .run = "other-run", .duration_ms = -1 };

    is_int(deploy_watch_apply(w, 3, id, &ev), -1, "an event of another run is ignored");
    ev.run = id;
    ev.host = "web-99";
    is_int(deploy_watch_apply(w, 3, id, &ev), -1, "an event of a host not watched is ignored");
    ev.host = "web-01";
    ev.name = "step.finished";
    ev.step = "fetch";
    is_int(deploy_watch_apply(w, 3, id, &ev), 0, "a step event is about its host");
    is_int(w[0].result, DEPLOY_PENDING, "and decides nothing");
    ev.name = "plan.finished";
    is_int(deploy_watch_apply(w, 3, id, &ev), 0, "plan.finished ok of the run");
    is_int(w[0].result, DEPLOY_OK, "makes the host ok");
    ev.status = "failed";
    is_int(deploy_watch_apply(w, 3, id, &ev), -1, "a second outcome of a decided host is ignored");
    is_int(w[0].result, DEPLOY_OK, "the first stands");
    ev.host = "web-02";
    ev.status = "rolled_back";
    ev.message = "step deploy failed";
    deploy_watch_apply(w, 3, id, &ev);
    ok(w[1].result == DEPLOY_FAILED && !strcmp(w[1].status, "rolled_back"),
       "a plan that rolled back is failed, with its status");
    struct deploy_event rf = { .name = "command.refused", .status = "refused", .host = "web-03",
                               .run = id, .reason = "action_not_allowed",
                               .message = "uses service", .duration_ms = -1 };
    deploy_watch_apply(w, 3, id, &rf);
    ok(w[2].result == DEPLOY_REFUSED && !strcmp(w[2].detail, "action_not_allowed: uses service"),
       "command.refused of the run: refused, with reason and message");

    struct deploy_tally t = { { 0 }, 0 };
    ok(!deploy_should_stop(&t, 0), "no failures: go on");
    deploy_tally_add(&t, DEPLOY_OK);
    deploy_tally_add(&t, DEPLOY_OK);
    ok(!deploy_should_stop(&t, 0), "successes never stop a deployment");
    deploy_tally_add(&t, DEPLOY_TIMED_OUT);
    ok(deploy_should_stop(&t, 0), "one failure over --max-failures 0 stops");
    ok(!deploy_should_stop(&t, 1), "one failure within --max-failures 1 does not");
    deploy_tally_add(&t, DEPLOY_SEND_FAILED);
    ok(deploy_should_stop(&t, 1), "two failures exceed --max-failures 1");
    ok(deploy_result_fails(DEPLOY_REFUSED) && deploy_result_fails(DEPLOY_FAILED) &&
       !deploy_result_fails(DEPLOY_NOT_SENT) && !deploy_result_fails(DEPLOY_ROLLED_BACK),
       "refused and failed count; not sent and rolled back do not");
    is_int(t.n[DEPLOY_OK], 2, "results are counted per kind");
    is_str(deploy_result_name(DEPLOY_TIMED_OUT), "timed_out", "result names");
}

int main(void)
{
    plan(66);
    test_inventory();
    test_waves();
    test_ids_targets();
    test_outcomes();
    return done_testing();
}
