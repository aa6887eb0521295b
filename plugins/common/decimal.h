/* decimal.h: exact decimal numbers (prices, money) read from text as scaled integers. */
#ifndef PIPIT_PLUGINS_DECIMAL_H
#define PIPIT_PLUGINS_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* Compiled into each plugin that uses it; never exported from the .so. */
#define DECIMAL_HIDDEN __attribute__((visibility("hidden")))

/*
 * A decimal number is held as an int64_t count of 10^-scale units, so
 * "0.0416" at scale 6 is 41600 and never drifts the way a double does.
 * Two scales are in use (docs/records.md, docs/plugins/cost.md):
 *   DECIMAL_MICRO (6): amounts of money, as in a record's amount_micros;
 *   DECIMAL_NANO  (9): unit prices, which are often smaller than a micro
 *                      ("0.0000125" per request).
 */
#define DECIMAL_MICRO 6
#define DECIMAL_NANO  9
#define DECIMAL_SCALE_MAX 18

/* Results of decimal_parse(); 0 is success, errors are negative. */
#define DECIMAL_OK         0
#define DECIMAL_ESYNTAX   -1            /* not a decimal number */
#define DECIMAL_EPRECISION -2           /* more fractional digits than the scale holds */
#define DECIMAL_ERANGE    -3            /* does not fit in int64_t at this scale */

/* Flags of decimal_parse(). */
#define DECIMAL_ROUND 0x1u              /* round extra digits half away from
                                           zero instead of DECIMAL_EPRECISION */

/*
 * Parse the len bytes at s as a decimal number and store it in *out as a
 * count of 10^-scale units (0 <= scale <= DECIMAL_SCALE_MAX).
 *
 * Accepted: an optional sign ('+' or '-'), digits with an optional '.' and
 * fraction (at least one digit in all: "12", "-3.5", "0.0416", ".5", "5."),
 * and an optional exponent ("1.25e-5", "3E2"), applied exactly. Nothing
 * else: no spaces, no thousands separators, no "inf" or "nan"; callers trim
 * what their format allows. Digits beyond the scale are accepted only when
 * they are zeros ("0.10000000000"), unless flags has DECIMAL_ROUND.
 *
 * Returns DECIMAL_OK, or a negative DECIMAL_E* (see decimal_strerror());
 * *out is written only on success. Never reads past s + len.
 */
DECIMAL_HIDDEN int decimal_parse(const char *s, size_t len, int scale,
                                 unsigned flags, int64_t *out);

/* decimal_parse() of a NUL-terminated string, without flags. */
DECIMAL_HIDDEN int decimal_parse_str(const char *s, int scale, int64_t *out);

/* One phrase for a DECIMAL_* result ("more than 6 decimal places" is up to
 * the caller to say with the scale it used). */
DECIMAL_HIDDEN const char *decimal_strerror(int status);

/*
 * Write value (a count of 10^-scale units) as decimal text into buf of size
 * bytes, NUL-terminated, with no exponent and no trailing fractional zeros:
 * 41600 at scale 6 is "0.0416", -3500000 is "-3.5", 12000000 is "12".
 * Returns the length of the text, like snprintf (truncated when >= size).
 * DECIMAL_TEXT_MAX bytes are always enough.
 */
#define DECIMAL_TEXT_MAX 48
DECIMAL_HIDDEN int decimal_format(char *buf, size_t size, int64_t value, int scale);

#endif
