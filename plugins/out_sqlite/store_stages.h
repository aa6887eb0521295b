/* store_stages.h: the time a store spends in each stage of its flushes, summed over the instance's life and logged when it stops. */
#ifndef PIPIT_STORE_STAGES_H
#define PIPIT_STORE_STAGES_H

#include <stddef.h>
#include <stdint.h>

#define STORE_STAGES_MAX 8             /* a store names at most this many */

struct store_stages {
    const char *const *names;           /* n names, static */
    int n;
    int64_t ns[STORE_STAGES_MAX];       /* nanoseconds per stage */
};

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t store_mono_ns(void);

/* Add the time since *t to stage; *t becomes now. */
static inline void store_lap(struct store_stages *s, int stage, int64_t *t)
{
    int64_t now = store_mono_ns();

    s->ns[stage] += now - *t;
    *t = now;
}

/* "name 0.123 s, name 0.456 s, ..." into out (cut at len). */
void store_stages_format(const struct store_stages *s, char *out, size_t len);

#endif
