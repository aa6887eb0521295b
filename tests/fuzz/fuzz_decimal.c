/* fuzz_decimal.c: libFuzzer target for the exact decimal parser (plugins/common/decimal.c), with its formatter as the oracle. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "decimal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * At every scale: a number parsed exactly must also parse with rounding to
 * the same value, and its formatted text must parse back to it (at its
 * scale, and at a finer one, ten times larger, when that fits).
 */
static void fuzz_scale(const char *s, size_t len, int scale)
{
    char text[DECIMAL_TEXT_MAX];
    int64_t exact, rounded, back;
    int rc = decimal_parse(s, len, scale, 0, &exact);
    int rr = decimal_parse(s, len, scale, DECIMAL_ROUND, &rounded);

    if (rc == DECIMAL_EPRECISION) {
        if (rr != DECIMAL_OK && rr != DECIMAL_ERANGE)
            abort();
        return;
    }
    if (rc != rr)
        abort();
    if (rc != DECIMAL_OK)
        return;
    if (rounded != exact)
        abort();
    int n = decimal_format(text, sizeof text, exact, scale);
    if (n <= 0 || (size_t)n >= sizeof text)
        abort();
    if (decimal_parse(text, (size_t)n, scale, 0, &back) != DECIMAL_OK || back != exact)
        abort();
    if (scale < DECIMAL_SCALE_MAX && exact > INT64_MIN / 10 && exact < INT64_MAX / 10 &&
        (decimal_parse(text, (size_t)n, scale + 1, 0, &back) != DECIMAL_OK ||
         back != exact * 10))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int scales[] = { 0, 2, DECIMAL_MICRO, DECIMAL_NANO, DECIMAL_SCALE_MAX };
    char *s = malloc(size + 1);

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';                     /* a NUL past len must not be needed */
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
        fuzz_scale(s, size, scales[i]);
    free(s);
    return 0;
}
