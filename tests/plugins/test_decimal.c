/* test_decimal.c: the shared exact decimal parser and formatter (plugins/common/decimal.c). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "decimal.h"
#include "../tap.h"

/* s parses at scale to want. */
static void parses(const char *s, int scale, unsigned flags, int64_t want)
{
    int64_t got = 0x5a5a;
    int rc = decimal_parse(s, strlen(s), scale, flags, &got);

    ok(rc == DECIMAL_OK && got == want, "\"%s\" at scale %d is %lld (got %d, %lld)",
       s, scale, (long long)want, rc, (long long)got);
}

/* s is refused at scale with err, and *out is left alone. */
static void refused(const char *s, int scale, int err)
{
    int64_t got = 77;
    int rc = decimal_parse(s, strlen(s), scale, 0, &got);

    ok(rc == err && got == 77, "\"%s\" at scale %d: %s (got %d)", s, scale,
       decimal_strerror(err), rc);
}

static void formats(int64_t v, int scale, const char *want)
{
    char buf[DECIMAL_TEXT_MAX];
    int n = decimal_format(buf, sizeof buf, v, scale);

    ok(strcmp(buf, want) == 0 && n == (int)strlen(want),
       "%lld at scale %d formats as \"%s\" (got \"%s\")", (long long)v, scale, want, buf);
}

int main(void)
{
    int64_t v = 0;

    plan(50);

    /* plain numbers */
    parses("0.0416", DECIMAL_MICRO, 0, 41600);
    parses("12", DECIMAL_MICRO, 0, 12000000);
    parses("-3.5", DECIMAL_MICRO, 0, -3500000);
    parses("+3.5", DECIMAL_MICRO, 0, 3500000);
    parses("0.0000125", DECIMAL_NANO, 0, 12500);
    parses(".5", DECIMAL_MICRO, 0, 500000);
    parses("5.", DECIMAL_MICRO, 0, 5000000);
    parses("007.250", DECIMAL_MICRO, 0, 7250000);
    parses("-0", DECIMAL_MICRO, 0, 0);
    parses("0.10000000000000000000", DECIMAL_MICRO, 0, 100000);
    parses("42", 0, 0, 42);

    /* exponents, applied exactly */
    parses("1.25e-5", DECIMAL_NANO, 0, 12500);
    parses("3E2", DECIMAL_MICRO, 0, 300000000);
    parses("4.16E+2", 2, 0, 41600);
    parses("0e999999999999", DECIMAL_MICRO, 0, 0);
    parses("125e-9", DECIMAL_NANO, 0, 125);

    /* the edges of int64_t */
    parses("9223372036854775807", 0, 0, INT64_MAX);
    parses("-9223372036854775808", 0, 0, INT64_MIN);
    parses("9223372036854.775807", DECIMAL_MICRO, 0, INT64_MAX);
    refused("9223372036854775808", 0, DECIMAL_ERANGE);
    refused("-9223372036854775809", 0, DECIMAL_ERANGE);
    refused("9223372036854.775808", DECIMAL_MICRO, DECIMAL_ERANGE);
    refused("1e19", 0, DECIMAL_ERANGE);
    refused("1e999999999999", DECIMAL_MICRO, DECIMAL_ERANGE);
    refused("123456789012345678901234567890", DECIMAL_MICRO, DECIMAL_ERANGE);

    /* precision: more places than the scale, unless they are zeros or rounding is asked */
    refused("0.0000125", DECIMAL_MICRO, DECIMAL_EPRECISION);
    refused("1e-7", DECIMAL_MICRO, DECIMAL_EPRECISION);
    refused("1e-999999999999", DECIMAL_MICRO, DECIMAL_EPRECISION);
    parses("0.0000125", DECIMAL_MICRO, DECIMAL_ROUND, 13);
    parses("-0.0000125", DECIMAL_MICRO, DECIMAL_ROUND, -13);
    parses("0.00001249", DECIMAL_MICRO, DECIMAL_ROUND, 12);
    parses("1e-999999999999", DECIMAL_MICRO, DECIMAL_ROUND, 0);
    parses("0.0000005", DECIMAL_MICRO, DECIMAL_ROUND, 1);
    ok(decimal_parse("-9223372036854775808.5", 22, 0, DECIMAL_ROUND, &v) == DECIMAL_ERANGE &&
       decimal_parse("9223372036854775807.5", 21, 0, DECIMAL_ROUND, &v) == DECIMAL_ERANGE,
       "rounding past either end of int64_t is out of range");

    /* syntax */
    refused("", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused("-", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused(".", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused(" 1", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused("1 ", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused("1,000", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused("1.2.3", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused("1e", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused("nan", DECIMAL_MICRO, DECIMAL_ESYNTAX);
    refused("$5", DECIMAL_MICRO, DECIMAL_ESYNTAX);

    /* only len bytes are read */
    ok(decimal_parse("12.5xyz", 4, DECIMAL_MICRO, 0, &v) == DECIMAL_OK && v == 12500000,
       "only the given length is parsed");

    formats(41600, DECIMAL_MICRO, "0.0416");
    formats(-3500000, DECIMAL_MICRO, "-3.5");
    formats(12000000, DECIMAL_MICRO, "12");
    formats(INT64_MIN, DECIMAL_MICRO, "-9223372036854.775808");
    formats(7, 0, "7");
    return done_testing();
}
