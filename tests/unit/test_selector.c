/* test_selector.c: target selectors: the grammar, the positions of errors, and which agents they address. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <pipit/plugin.h>
#include "selector.h"
#include "../tap.h"

static const char *const keys[] = { "role", "env", "zone" };
static const char *const values[] = { "web", "prod", "eu-west-1a" };
static const struct pipit_strmap labels = { keys, values, 3 };

/* Whether text parses and addresses host with the labels above. */
static bool matches(const char *text, const char *host)
{
    struct selector s;
    char err[256];

    if (selector_parse(text, &s, err, sizeof err) != PIPIT_OK) {
        diag("\"%s\" does not parse: %s", text, err);
        return false;
    }
    bool m = selector_match(&s, host, &labels);
    selector_free(&s);
    return m;
}

/* The error of text, or "" when it parses. */
static const char *parse_error(const char *text)
{
    static char err[256];
    struct selector s;

    err[0] = '\0';
    int r = selector_parse(text, &s, err, sizeof err);
    if (r == PIPIT_OK) {
        selector_free(&s);
        return "";
    }
    if (r != PIPIT_EPARSE)
        return "not PIPIT_EPARSE";
    if (s.terms || s.count || s.all)
        return "selector not zeroed on error";
    return err;
}

static void test_grammar(void)
{
    struct selector s;
    char err[256];

    is_int(selector_parse("role=web,env!=dev*", &s, err, sizeof err), PIPIT_OK,
           "two terms parse");
    ok(s.count == 2 && !s.all && !strcmp(s.terms[0].key, "role") &&
       !strcmp(s.terms[0].glob, "web") && !s.terms[0].negate &&
       !strcmp(s.terms[1].key, "env") && !strcmp(s.terms[1].glob, "dev*") &&
       s.terms[1].negate, "keys, globs and != are kept");
    selector_free(&s);
    selector_free(&s);                  /* twice is harmless */
    is_int(selector_parse(" * ", &s, err, sizeof err), PIPIT_OK, "'*' alone parses");
    ok(s.all && s.count == 0, "and selects all");
    selector_free(&s);
    is_int(selector_parse(" role = web", &s, err, sizeof err), PIPIT_EPARSE,
           "blanks inside a term are refused");
    is_int(selector_parse("role=web , env=prod", &s, err, sizeof err), PIPIT_OK,
           "blanks around terms are ignored");
    selector_free(&s);
    is_int(selector_parse("app.kubernetes.io/name=pip-it_1", &s, err, sizeof err), PIPIT_OK,
           "keys with . / - _ parse");
    selector_free(&s);

    is_str(parse_error(""), "at position 1: empty selector; '*' selects every agent",
           "empty selector");
    is_str(parse_error("role"), "at position 5: expected '=' or '!=' after key \"role\"",
           "key without operator: the position is after the key");
    is_str(parse_error("role=web,"), "at position 10: expected a term such as role=web",
           "trailing comma");
    is_str(parse_error("role=web,,env=prod"), "at position 10: expected a term such as role=web",
           "empty term between commas");
    is_str(parse_error("role="), "at position 6: expected a value after \"role=\"",
           "empty value");
    is_str(parse_error("env!="), "at position 6: expected a value after \"env!=\"",
           "empty value after !=");
    is_str(parse_error("role=web env=prod"),
           "at position 10: unexpected character 'e' after a term; terms are separated by ','",
           "two terms without a comma");
    is_str(parse_error("=web"),
           "at position 1: unexpected character '='; a key is letters, digits and _.-/",
           "no key");
    is_str(parse_error("role=w\x01"),
           "at position 7: unexpected byte 0x01 after a term; terms are separated by ','",
           "a control byte is shown by value");
    is_str(parse_error("*,role=web"), "at position 2: '*' selects every agent and stands alone",
           "'*' with other terms");
    is_str(parse_error("role=web,*"),
           "at position 10: unexpected character '*'; a key is letters, digits and _.-/",
           "'*' after a term");
    is_str(parse_error("role!web"), "at position 5: expected '=' or '!=' after key \"role\"",
           "'!' without '='");
    char big[SELECTOR_MAX_LEN + 8];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ok(strstr(parse_error(big), "longer than 4096") != NULL, "an over-long selector is refused");
    char many[SELECTOR_MAX_TERMS * 4 + 8] = "";
    for (int i = 0; i <= SELECTOR_MAX_TERMS; i++)
        strcat(many, i ? ",a=b" : "a=b");
    ok(strstr(parse_error(many), "more than 64 terms") != NULL, "65 terms are refused");
    is_int(selector_parse(NULL, &s, err, sizeof err), PIPIT_EPARSE, "NULL is refused");
}

static void test_match(void)
{
    ok(matches("*", "anything"), "'*' addresses every agent");
    ok(matches("role=web", "web-01"), "a label equal");
    ok(!matches("role=db", "web-01"), "a label different");
    ok(matches("role=web,env=prod", "web-01"), "comma is AND: both hold");
    ok(!matches("role=web,env=staging", "web-01"), "comma is AND: one fails");
    ok(matches("host=web-0*", "web-01"), "host glob matches the host name");
    ok(!matches("host=web-0*", "web-11"), "host glob does not match another");
    ok(!matches("host=web-0*", "db-01"), "nor a different name");
    ok(matches("host!=db-*", "web-01"), "host != glob");
    ok(!matches("host!=web-*", "web-01"), "host != glob that matches refuses");
    ok(matches("zone=eu-west-1[ab]", "x"), "bracket globs");
    ok(matches("env!=dev", "x"), "!= on a label with another value");
    ok(!matches("env!=prod", "x"), "!= on a label with that value");
    ok(matches("team!=ops", "x"), "!= on a missing label holds");
    ok(!matches("team=*", "x"), "= on a missing label fails, even with '*'");
    ok(matches("role=*", "x"), "= '*' needs only that the label exists");
    ok(!matches("host=web-01", "WEB-01"), "matching is case-sensitive");

    struct selector s;
    char err[64];
    selector_parse("role=web", &s, err, sizeof err);
    ok(!selector_match(&s, "web-01", NULL), "no labels: a label term fails");
    selector_free(&s);
    memset(&s, 0, sizeof s);
    ok(!selector_match(&s, "web-01", &labels), "an empty (unparsed) selector addresses no one");
}

int main(void)
{
    test_grammar();
    test_match();
    return done_testing();
}
