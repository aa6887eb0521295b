/* fuzz_statsd.c: libFuzzer target for in_statsd's line parser (statsd_parse_line, statsd_parse_number). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "statsd_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True when p[0..n) lies inside [lo, hi). */
static int fuzz_inside(const char *p, size_t n, const char *lo, const char *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

/*
 * The input is split on '\n' like a datagram; each line is parsed from an
 * exact-size copy so that a read past its end is caught. A good line must
 * point inside the line, have a non-empty name and value, a known type, a
 * finite value and a rate in (0, 1].
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct statsd_line l;
    double v;

    if (statsd_parse_number(p, size, &v) && !isfinite(v))
        abort();
    while (p <= end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        char *line = malloc(n ? n : 1);
        const char *lend = line + n;

        if (!line)
            return 0;
        memcpy(line, p, n);
        if (!statsd_parse_line(line, n, &l)) {
            if (!l.name_len || !fuzz_inside(l.name, l.name_len, line, lend) ||
                !l.raw_len || !fuzz_inside(l.raw, l.raw_len, line, lend))
                abort();
            if (l.type != STATSD_COUNTER && l.type != STATSD_GAUGE &&
                l.type != STATSD_TIMER && l.type != STATSD_SET)
                abort();
            if (!isfinite(l.value) || !(l.rate > 0 && l.rate <= 1) ||
                l.ntags > STATSD_MAX_TAGS || n > STATSD_MAX_LINE + 1)
                abort();
            for (size_t i = 0; i < l.ntags; i++)
                if (!l.tags[i].key_len ||
                    !fuzz_inside(l.tags[i].key, l.tags[i].key_len, line, lend) ||
                    !fuzz_inside(l.tags[i].value, l.tags[i].value_len, line, lend))
                    abort();
        }
        free(line);
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}
