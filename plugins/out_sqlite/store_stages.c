/* store_stages.c: the stage timer of the stores (see store_stages.h). */
#include <stdio.h>
#include <time.h>
#include "store_stages.h"

int64_t store_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void store_stages_format(const struct store_stages *s, char *out, size_t len)
{
    size_t n = 0;

    if (len)
        out[0] = '\0';
    for (int i = 0; i < s->n && n < len; i++) {
        int w = snprintf(out + n, len - n, "%s%s %.3f s", i ? ", " : "", s->names[i],
                         (double)s->ns[i] / 1e9);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}
