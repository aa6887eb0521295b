/* item.c: one billing line item read from the mapped text of an export row, and its identity. */
#include "item.h"
#include "decimal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

const char *const item_field_names[ITEM_NFIELDS] = {
    "id", "amount", "currency", "resource", "start", "end",
};

#define ITEM_NS 1000000000LL
#define ITEM_YEAR_MIN 1970
#define ITEM_YEAR_MAX 2261              /* Unix nanoseconds end in 2262 */

static int item_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Trim blanks: *len of s after *s moved past the leading ones. */
static void item_trim(const char **s, size_t *len)
{
    while (*len && item_blank(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && item_blank((*s)[*len - 1]))
        (*len)--;
}

/* n decimal digits at s as a number in *v; 0, or -1 when one is not a digit. */
static int item_digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil). */
static int64_t item_days(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int item_mdays(int y, int m)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return mdays[m - 1] + (m == 2 && leap);
}

/* Parse the len bytes at s as item_time_parse() says. */
static int item_time_parse_n(const char *s, size_t len, int64_t *ns)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, tz = 0;
    int64_t frac = 0;
    size_t i;

    item_trim(&s, &len);
    if (len == 0)
        return -1;
    for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        ;
    if (i == len) {                     /* Unix seconds */
        int64_t v = 0;

        if (len > 10)
            return -1;
        for (i = 0; i < len; i++)
            v = v * 10 + (s[i] - '0');
        if (v > (int64_t)(INT64_MAX / ITEM_NS))
            return -1;
        *ns = v * ITEM_NS;
        return 0;
    }
    if (len < 10 || s[4] != '-' || s[7] != '-' || item_digits(s, 4, &y) ||
        item_digits(s + 5, 2, &mo) || item_digits(s + 8, 2, &d))
        return -1;
    if (y < ITEM_YEAR_MIN || y > ITEM_YEAR_MAX || mo < 1 || mo > 12 || d < 1 ||
        d > item_mdays(y, mo))
        return -1;
    i = 10;
    if (i < len) {
        if ((s[i] != 'T' && s[i] != 't' && s[i] != ' ') || len < i + 6 ||
            item_digits(s + i + 1, 2, &h) || s[i + 3] != ':' ||
            item_digits(s + i + 4, 2, &mi))
            return -1;
        i += 6;
        if (i < len && s[i] == ':') {
            if (len < i + 3 || item_digits(s + i + 1, 2, &sec))
                return -1;
            i += 3;
            if (i < len && (s[i] == '.' || s[i] == ',')) {
                int n = 0;

                for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
                    if (n < 9)
                        frac = frac * 10 + (s[i] - '0');
                if (n == 0)
                    return -1;
                for (; n < 9; n++)
                    frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            int th, tm;
            size_t at = i + 1;

            if (len < at + 4 || item_digits(s + at, 2, &th))
                return -1;
            at += 2;
            if (s[at] == ':')
                at++;
            if (len < at + 2 || item_digits(s + at, 2, &tm) || th > 23 || tm > 59)
                return -1;
            tz = (th * 60 + tm) * 60 * (s[i] == '-' ? -1 : 1);
            i = at + 2;
        } else if (len - i == 4 && !memcmp(s + i, " UTC", 4)) {
            i = len;
        }
        if (i != len)
            return -1;
    }
    int64_t t = item_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - tz;
    if (t < 0 || t > (int64_t)(INT64_MAX / ITEM_NS) - 1)
        return -1;
    *ns = t * ITEM_NS + frac;
    return 0;
}

int item_time_parse(const char *s, int64_t *ns)
{
    return item_time_parse_n(s, strlen(s), ns);
}

int item_read(const char *const vals[ITEM_NFIELDS], const unsigned char mapped[ITEM_NFIELDS],
              const char *def_currency, struct item *it, int *bad, char *why, size_t size)
{
    const char *s;
    size_t len;
    int rc;

    memset(it, 0, sizeof *it);
    for (int f = 0; f < ITEM_NFIELDS; f++) {
        if (mapped[f] && !vals[f] && f != ITEM_RESOURCE && f != ITEM_START &&
            f != ITEM_END && !(f == ITEM_CURRENCY && def_currency)) {
            *bad = f;
            snprintf(why, size, "is missing");
            return -1;
        }
    }
    *bad = ITEM_AMOUNT;
    s = vals[ITEM_AMOUNT];
    if (!s) {
        snprintf(why, size, "is missing");
        return -1;
    }
    len = strlen(s);
    item_trim(&s, &len);
    if ((rc = decimal_parse(s, len, DECIMAL_MICRO, DECIMAL_ROUND, &it->amount_micros)) != 0) {
        snprintf(why, size, "\"%.40s\" is not an amount (%s)", vals[ITEM_AMOUNT],
                 decimal_strerror(rc));
        return -1;
    }

    *bad = ITEM_CURRENCY;
    s = vals[ITEM_CURRENCY];
    len = s ? strlen(s) : 0;
    if (s)
        item_trim(&s, &len);
    if (len == 0 && def_currency) {
        s = def_currency;
        len = strlen(s);
    }
    if (len != 3) {
        snprintf(why, size, len ? "\"%.40s\" is not a three-letter currency code"
                 : "is empty and no fixed currency is set", s ? s : "");
        return -1;
    }
    for (int i = 0; i < 3; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c < 'A' || c > 'Z') {
            snprintf(why, size, "\"%.3s\" is not a three-letter currency code", s);
            return -1;
        }
        it->currency[i] = c;
    }

    if (mapped[ITEM_ID]) {
        *bad = ITEM_ID;
        if (!*vals[ITEM_ID]) {
            snprintf(why, size, "is empty");
            return -1;
        }
        it->id = vals[ITEM_ID];
    }
    it->resource = vals[ITEM_RESOURCE] && *vals[ITEM_RESOURCE] ? vals[ITEM_RESOURCE]
                                                               : ITEM_RESOURCE_NONE;

    int64_t t[2] = { 0, 0 };
    int have[2] = { 0, 0 };
    for (int k = 0; k < 2; k++) {
        int f = k ? ITEM_END : ITEM_START;

        if (!vals[f] || !vals[f][strspn(vals[f], " \t")])
            continue;                   /* an empty cell gives no time */
        *bad = f;
        if (item_time_parse(vals[f], &t[k]) != 0) {
            snprintf(why, size, "\"%.40s\" is not a time (RFC 3339, YYYY-MM-DD, or Unix "
                     "seconds)", vals[f]);
            return -1;
        }
        have[k] = 1;
    }
    it->start_ns = have[0] ? t[0] : t[1];
    it->end_ns = have[1] ? t[1] : t[0];
    if (it->end_ns < it->start_ns) {
        *bad = ITEM_END;
        snprintf(why, size, "\"%.40s\" is before the start", vals[ITEM_END]);
        return -1;
    }
    return 0;
}

/* Add a length-prefixed field to the digest. */
static int item_put(EVP_MD_CTX *md, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    unsigned char len[4] = { n >> 24, n >> 16, n >> 8, n };

    return EVP_DigestUpdate(md, len, 4) && EVP_DigestUpdate(md, s, n) ? 0 : -1;
}

int item_digest(const struct item *it, const char *const *label_keys,
                const char *const *label_vals, size_t nlabels,
                unsigned char out[ITEM_DIGEST_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    char num[3][24];
    unsigned n = 0;
    int rc = -1;

    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto out;
    if (it->id) {
        if (item_put(md, "id") || item_put(md, it->id))
            goto out;
    } else {
        snprintf(num[0], sizeof num[0], "%lld", (long long)it->amount_micros);
        snprintf(num[1], sizeof num[1], "%lld", (long long)it->start_ns);
        snprintf(num[2], sizeof num[2], "%lld", (long long)it->end_ns);
        if (item_put(md, "row") || item_put(md, num[0]) || item_put(md, it->currency) ||
            item_put(md, it->resource) || item_put(md, num[1]) || item_put(md, num[2]))
            goto out;
        for (size_t i = 0; i < nlabels; i++)
            if (item_put(md, label_keys[i]) || item_put(md, label_vals[i] ? label_vals[i] : ""))
                goto out;
    }
    if (EVP_DigestFinal_ex(md, out, &n) && n == ITEM_DIGEST_LEN)
        rc = 0;
out:
    EVP_MD_CTX_free(md);
    return rc;
}

int item_digest_nth(const unsigned char digest[ITEM_DIGEST_LEN], uint32_t n,
                    unsigned char out[ITEM_DIGEST_LEN])
{
    unsigned char in[ITEM_DIGEST_LEN + 4];
    unsigned int len = 0;

    if (n == 0) {
        memmove(out, digest, ITEM_DIGEST_LEN);
        return 0;
    }
    memcpy(in, digest, ITEM_DIGEST_LEN);
    in[ITEM_DIGEST_LEN] = (unsigned char)(n >> 24);
    in[ITEM_DIGEST_LEN + 1] = (unsigned char)(n >> 16);
    in[ITEM_DIGEST_LEN + 2] = (unsigned char)(n >> 8);
    in[ITEM_DIGEST_LEN + 3] = (unsigned char)n;
    return EVP_Digest(in, sizeof in, out, &len, EVP_sha256(), NULL) && len == ITEM_DIGEST_LEN
               ? 0 : -1;
}
