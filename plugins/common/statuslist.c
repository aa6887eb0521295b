/* statuslist.c: parse and match an expected-status list (http_check and the HTTP actions). */
#include <stdio.h>
#include <string.h>
#include "statuslist.h"

static void statuslist_add(struct statuslist *set, unsigned lo, unsigned hi)
{
    for (unsigned c = lo; c <= hi; c++)
        set->bits[c / 64] |= (uint64_t)1 << (c % 64);
}

/* Read a three-digit status at *p into *out and move *p past it. Returns
 * false when there are not exactly three digits there. */
static bool statuslist_code(const char **p, unsigned *out)
{
    const char *s = *p;

    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
        (s[3] >= '0' && s[3] <= '9'))
        return false;
    *out = (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
    *p = s + 3;
    return true;
}

static const char *statuslist_skip(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/*
 * Parse one item starting at *p (blanks skipped) up to the next comma or
 * the end, add it to set and move *p to that comma or end. Returns NULL,
 * or why the item is refused.
 */
static const char *statuslist_item(const char **p, struct statuslist *set)
{
    const char *s = statuslist_skip(*p);
    unsigned lo, hi;

    if (*s == ',' || *s == '\0')
        return "an empty item";
    if (s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
        (s[2] == 'x' || s[2] == 'X')) {
        lo = (unsigned)(s[0] - '0') * 100;
        hi = lo + 99;
        s += 3;
    } else {
        if (!statuslist_code(&s, &lo))
            return "not a three-digit status, a range N-M or a class Nxx";
        hi = lo;
        s = statuslist_skip(s);
        if (*s == '-') {
            s = statuslist_skip(s + 1);
            if (!statuslist_code(&s, &hi))
                return "a range whose end is not a three-digit status";
            if (hi < lo)
                return "a range that ends before it starts";
        }
    }
    if (lo < STATUSLIST_MIN || hi > STATUSLIST_MAX)
        return "a status outside 100..599";
    s = statuslist_skip(s);
    if (*s != ',' && *s != '\0')
        return "text after the status";
    statuslist_add(set, lo, hi);
    *p = s;
    return NULL;
}

int statuslist_parse(const char *text, struct statuslist *set, char *why, size_t size)
{
    const char *p = text ? text : "";
    unsigned n = 0;

    memset(set, 0, sizeof *set);
    for (;;) {
        const char *start = statuslist_skip(p);
        const char *err = statuslist_item(&p, set);

        n++;
        if (err) {
            size_t len = strcspn(start, ",");
            snprintf(why, size, "item %u \"%.*s\": %s", n, (int)(len > 32 ? 32 : len),
                     start, err);
            memset(set, 0, sizeof *set);
            return -1;
        }
        if (*p == '\0')
            return 0;
        p++;                            /* the comma */
    }
}

bool statuslist_has(const struct statuslist *set, long status)
{
    if (status < 0 || status >= (long)(sizeof set->bits * 8))
        return false;
    return (set->bits[status / 64] >> (status % 64)) & 1;
}

int statuslist_parse_items(const char *const *items, size_t count, struct statuslist *set,
                           char *text, size_t tsize, char *why, size_t size)
{
    size_t used = 0;

    memset(set, 0, sizeof *set);
    if (tsize)
        text[0] = '\0';
    if (count == 0) {
        snprintf(why, size, "the list is empty");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        struct statuslist one;

        if (statuslist_parse(items[i], &one, why, size) != 0) {
            memset(set, 0, sizeof *set);
            return -1;
        }
        for (size_t b = 0; b < sizeof set->bits / sizeof set->bits[0]; b++)
            set->bits[b] |= one.bits[b];
        if (used < tsize) {
            int n = snprintf(text + used, tsize - used, "%s%s", i ? ", " : "", items[i]);
            if (n > 0)
                used += (size_t)n;
        }
    }
    return 0;
}
