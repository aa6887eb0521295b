/* loggen.c: a deterministic generator of nginx-style access log lines for the log-path benchmark. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Usage: loggen LINES [SEED [RATE]] > FILE
 *
 * Writes LINES lines in nginx's "combined" format, the same bytes for the
 * same LINES and SEED on every machine (a xorshift generator, no libc
 * rand()), about 193 bytes a line on average. Times start at
 * 2026-01-01T00:00:00Z and advance by 0 to 2 ms a line. With RATE, lines
 * are written at RATE a second, flushed every 10 ms (the latency benchmark
 * appends them to a file that an agent tails).
 */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;             /* xorshift64* */

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * UINT64_C(2685821657736338717);
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static const char *const methods[] = { "GET", "GET", "GET", "GET", "POST", "PUT", "HEAD",
                                       "DELETE" };
static const char *const paths[] = {
    "/", "/index.html", "/api/v1/orders", "/api/v1/orders/%u", "/api/v1/users/%u/profile",
    "/static/js/app.%x.js", "/static/css/site.%x.css", "/images/products/%u.jpg",
    "/search?q=item%u&page=2", "/api/v2/cart/%u/items", "/healthz", "/login",
};
static const unsigned statuses[] = { 200, 200, 200, 200, 200, 200, 304, 301, 404, 500, 201,
                                     204 };
static const char *const referers[] = {
    "-", "https://www.example.com/", "https://www.example.com/products?category=shoes",
    "https://search.example.org/?q=running+shoes", "https://shop.example.net/cart",
};
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
    "curl/7.88.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Go-http-client/1.1",
    "kube-probe/1.28",
};
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                      "Aug", "Sep", "Oct", "Nov", "Dec" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The path template with its one "%u" (decimal) or "%x" (hex) replaced by n. */
static void expand(char *out, size_t size, const char *tpl, unsigned n)
{
    const char *pct = strchr(tpl, '%');

    if (!pct) {
        snprintf(out, size, "%s", tpl);
        return;
    }
    snprintf(out, size, pct[1] == 'x' ? "%.*s%x%s" : "%.*s%u%s", (int)(pct - tpl), tpl, n,
             pct + 2);
}

/* Flush, then sleep until done lines are due at rate lines a second. */
static int pace(const struct timespec *start, uint64_t done, uint64_t rate)
{
    if (fflush(stdout) != 0) {
        fprintf(stderr, "loggen: %s\n", strerror(errno));
        return 1;
    }
    uint64_t due_ns = done * UINT64_C(1000000000) / rate;
    struct timespec t = { start->tv_sec + (time_t)(due_ns / 1000000000),
                          start->tv_nsec + (long)(due_ns % 1000000000) };
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
        ;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: loggen LINES [SEED [RATE]] > FILE\n");
        return 2;
    }
    uint64_t lines = strtoull(argv[1], NULL, 10);
    rng_state = argc >= 3 ? strtoull(argv[2], NULL, 10) : 1;
    if (rng_state == 0)
        rng_state = 1;
    uint64_t rate = argc == 4 ? strtoull(argv[3], NULL, 10) : 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);

    static char out[1 << 20];
    setvbuf(stdout, out, _IOFBF, sizeof out);
    uint64_t ms = 0;                    /* since 2026-01-01 */
    static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    for (uint64_t i = 0; i < lines; i++) {
        char path[128];
        ms += pick(3);
        uint64_t s = ms / 1000, day = s / 86400;
        unsigned mon = 0;
        while (mon < 11 && day >= mdays[mon])
            day -= mdays[mon++];
        expand(path, sizeof path, paths[pick(N(paths))], pick(100000));
        int n = printf("10.%u.%u.%u - - [%02u/%s/2026:%02u:%02u:%02u +0000] \"%s %s HTTP/1.1\" "
                       "%u %u \"%s\" \"%s\" rt=%u.%03u cs=%u\n",
                       pick(256), pick(256), pick(256), (unsigned)day + 1, months[mon],
                       (unsigned)(s / 3600 % 24), (unsigned)(s / 60 % 60), (unsigned)(s % 60),
                       methods[pick(N(methods))], path, statuses[pick(N(statuses))],
                       200 + pick(50000), referers[pick(N(referers))],
                       agents[pick(N(agents))], pick(3), pick(1000), pick(1000000));
        if (n < 0) {
            fprintf(stderr, "loggen: %s\n", strerror(errno));
            return 1;
        }
        if (rate && (i + 1) % (rate / 100 ? rate / 100 : 1) == 0 && pace(&start, i + 1, rate) != 0)
            return 1;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "loggen: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}
