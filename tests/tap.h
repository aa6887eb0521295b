/* tap.h: a tiny Test Anything Protocol producer for pipit's C tests. */
#ifndef PIPIT_TAP_H
#define PIPIT_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap__n, tap__failed, tap__planned = -1;

static inline void plan(int n) { tap__planned = n; printf("1..%d\n", n); fflush(stdout); }
static inline void plan_skip_all(const char *why) { printf("1..0 # SKIP %s\n", why); exit(0); }

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static inline int tap__vok(int pass, const char *file, int line, const char *fmt, va_list ap)
{
    printf("%sok %d - ", pass ? "" : "not ", ++tap__n);
    vprintf(fmt, ap);
    printf("\n");
    if (!pass) {
        tap__failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return pass;
}

static inline int tap__ok(int pass, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int tap__ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = tap__vok(pass, file, line, fmt, ap);
    va_end(ap);
    return r;
}

#define ok(cond, ...) tap__ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...) do {                                         \
    long long tap__g = (long long)(got), tap__w = (long long)(want);          \
    if (!tap__ok(tap__g == tap__w, __FILE__, __LINE__, __VA_ARGS__))          \
        diag("  got %lld, want %lld", tap__g, tap__w);                        \
} while (0)

#define is_str(got, want, ...) do {                                         \
    const char *tap__g = (got), *tap__w = (want);                             \
    int tap__p = (tap__g && tap__w) ? strcmp(tap__g, tap__w) == 0             \
                                    : tap__g == tap__w;                       \
    if (!tap__ok(tap__p, __FILE__, __LINE__, __VA_ARGS__))                    \
        diag("  got \"%s\", want \"%s\"", tap__g ? tap__g : "(null)",         \
             tap__w ? tap__w : "(null)");                                     \
} while (0)

#define skip(n, why) do {                                                   \
    for (int tap__i = 0; tap__i < (n); tap__i++)                              \
        printf("ok %d # SKIP %s\n", ++tap__n, (why));                         \
    fflush(stdout);                                                           \
} while (0)

/* End the test: checks the plan and returns the exit status for main(). */
static inline int done_testing(void)
{
    if (tap__planned < 0)
        printf("1..%d\n", tap__n);
    else if (tap__planned != tap__n)
        printf("# planned %d tests but ran %d\n", tap__planned, tap__n), tap__failed++;
    fflush(stdout);
    return tap__failed ? 1 : 0;
}

#endif
