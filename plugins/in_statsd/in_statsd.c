/* in_statsd: receive StatsD / DogStatsD lines over UDP and emit aggregates per flush interval. */
#define _GNU_SOURCE
#include <pipit/plugin.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "statsd_parse.h"

#define STATSD_MAX_PCT      16          /* percentiles option entries */
#define STATSD_BATCH        32          /* datagrams per recvmmsg() */
#define STATSD_MAX_BATCHES  32          /* recvmmsg() calls per wakeup */
#define STATSD_DGRAM        65536       /* largest UDP payload */
#define STATSD_MAX_SET      65536       /* members counted per set */
#define STATSD_TCP_READS    16          /* read() calls per connection wakeup */

static const struct pipit_api *api;     /* borrowed from the host */

/* One aggregated series: a type, a name and its sorted labels. */
struct statsd_series {
    uint64_t hash;                      /* of key[0..key_len) */
    bool seen;                          /* updated in this interval */
    uint8_t type;                       /* enum statsd_type */
    uint8_t nlabels;
    double value;                       /* counter sum, gauge value */
    /* timers */
    double count;                       /* rate-adjusted number of samples */
    double sum, min, max;               /* over every sample received */
    uint64_t received;                  /* samples received */
    double *samples;                    /* reservoir, nsamples entries */
    uint32_t nsamples, samples_cap;
    /* sets: open-addressing table of member hashes (0 = empty) */
    uint64_t *members;
    uint32_t nmembers, members_cap;
    size_t key_len;
    char key[];                         /* name \0 (key \0 value \0)* */
};

/* One TCP connection: the start of a line that has not ended yet. */
struct statsd_conn {
    int fd;
    bool skipping;                      /* in a line already counted too long */
    size_t len;                         /* bytes in buf */
    char buf[STATSD_MAX_LINE + 1];      /* + 1: a trailing '\r' */
};

struct statsd_ctx {
    /* options */
    const char *listen;                 /* host:port, [v6]:port */
    int64_t rcvbuf;                     /* SO_RCVBUF, 0 = system default */
    int64_t flush_ms;                   /* flush interval */
    struct pipit_strlist percentiles;   /* e.g. [50, 90, 99] */
    bool delete_gauges;                 /* drop gauges unseen for an interval */
    int64_t max_series;                 /* series cap */
    int64_t max_samples;                /* timer reservoir size per series */
    bool tcp;                           /* also listen on TCP */
    int64_t max_conns;                  /* TCP connections at once */

    /* state */
    int fd;                             /* the UDP socket */
    int tcp_fd;                         /* the TCP listener, or -1 */
    struct statsd_conn **conns;         /* max_conns slots, NULL when free */
    size_t nconns;
    bool refused_logged;                /* a refused connection was logged */
    double pct[STATSD_MAX_PCT];         /* parsed percentiles */
    char pct_name[STATSD_MAX_PCT][24];  /* ".p50", ".p99_9" */
    size_t npct;
    struct statsd_series **series;      /* nseries entries */
    size_t nseries, series_cap;
    uint32_t *index;                    /* hash table of series index + 1 */
    size_t index_cap;                   /* power of two */
    uint64_t rng;                       /* xorshift state for reservoirs */
    uint64_t lines, bad_lines, overflow;/* this interval */
    bool bad_logged;                    /* a bad line was logged this interval */
    char *bufs;                         /* STATSD_BATCH datagram buffers */
    struct mmsghdr msgs[STATSD_BATCH];
    struct iovec iov[STATSD_BATCH];
    char key[2 * STATSD_MAX_LINE + 64]; /* scratch series key */
    char name[2 * STATSD_MAX_LINE + 64];/* scratch emitted name */
};

static const struct pipit_option statsd_options[] = {
    PIPIT_OPT_STRING("listen", "127.0.0.1:8125", struct statsd_ctx, listen,
                     "UDP address to listen on: host:port or [ipv6]:port"),
    PIPIT_OPT_SIZE("rcvbuf", "0", 0, 1 << 30, struct statsd_ctx, rcvbuf,
                   "SO_RCVBUF of the socket; 0 keeps the system default"),
    PIPIT_OPT_DURATION("flush_interval", "10s", 10, 86400000, struct statsd_ctx,
                       flush_ms, "How often aggregates are emitted"),
    PIPIT_OPT_LIST_DEF("percentiles", "[50, 90, 99]", struct statsd_ctx, percentiles,
                       "Percentiles of timers emitted as <name>.p<N>, each in (0, 100]"),
    PIPIT_OPT_BOOL("delete_gauges", "false", struct statsd_ctx, delete_gauges,
                   "Stop emitting a gauge that received nothing in an interval"),
    PIPIT_OPT_INT("max_series", "100000", 1, 100000000, struct statsd_ctx, max_series,
                  "Most series held at once; lines of new series beyond it are dropped"),
    PIPIT_OPT_INT("max_timer_samples", "10000", 1, 10000000, struct statsd_ctx,
                  max_samples, "Samples kept per timer and interval for percentiles (reservoir)"),
    PIPIT_OPT_BOOL("tcp", "false", struct statsd_ctx, tcp,
                   "Also accept newline-delimited lines over TCP on the same address"),
    PIPIT_OPT_INT("max_connections", "64", 1, 65536, struct statsd_ctx, max_conns,
                  "Most TCP connections at once; more are closed when accepted"),
    PIPIT_OPT_END
};

static int statsd_load(const struct pipit_api *host)
{
    api = host;
    return PIPIT_OK;
}

/* FNV-1a, 64 bits. */
static uint64_t statsd_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t statsd_rand(struct statsd_ctx *ctx)
{
    uint64_t x = ctx->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return ctx->rng = x;
}

/* Name characters: letters, digits, '_', '.', '-' are kept, others become
 * '_'. Label keys keep letters, digits and '_'. Label values keep every
 * printable ASCII character. Writes n bytes to out. */
static void statsd_clean(const char *in, size_t n, char *out, int what)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        bool keep;

        if (what == 2)
            keep = c >= 0x20 && c < 0x7f;
        else
            keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c >= '0' && c <= '9') || c == '_' ||
                   (what == 0 && (c == '.' || c == '-'));
        out[i] = keep ? (char)c : '_';
    }
}

/*
 * Build the series key of a parsed line into ctx->key: type, name, then
 * the tags sorted by key (a repeated key keeps its first value). Returns
 * the key length.
 */
static size_t statsd_make_key(struct statsd_ctx *ctx, const struct statsd_line *l)
{
    size_t order[STATSD_MAX_TAGS], n = 0, k = 0;
    char *key = ctx->key;

    key[k++] = (char)l->type;
    statsd_clean(l->name, l->name_len, key + k, 0);
    k += l->name_len;
    key[k++] = '\0';
    for (size_t i = 0; i < l->ntags; i++) {
        size_t j = n;

        /* insertion sort on the raw keys; stable */
        while (j > 0) {
            const struct statsd_tag *a = &l->tags[order[j - 1]], *b = &l->tags[i];
            size_t m = a->key_len < b->key_len ? a->key_len : b->key_len;
            int c = memcmp(a->key, b->key, m);

            if (c < 0 || (c == 0 && a->key_len <= b->key_len))
                break;
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        const struct statsd_tag *t = &l->tags[order[i]];

        if (i > 0) {
            const struct statsd_tag *p = &l->tags[order[i - 1]];

            if (p->key_len == t->key_len && !memcmp(p->key, t->key, t->key_len))
                continue;
        }
        statsd_clean(t->key, t->key_len, key + k, 1);
        k += t->key_len;
        key[k++] = '\0';
        statsd_clean(t->value, t->value_len, key + k, 2);
        k += t->value_len;
        key[k++] = '\0';
    }
    return k;
}

/* Insert series index i into the hash table (which has room). */
static void statsd_index_put(struct statsd_ctx *ctx, size_t i)
{
    size_t mask = ctx->index_cap - 1, s = ctx->series[i]->hash & mask;

    while (ctx->index[s])
        s = (s + 1) & mask;
    ctx->index[s] = (uint32_t)(i + 1);
}

/* Rebuild the hash table with cap slots from ctx->series. Returns false
 * when out of memory (the old table is kept). */
static bool statsd_reindex(struct statsd_ctx *ctx, size_t cap)
{
    uint32_t *idx = calloc(cap, sizeof *idx);

    if (!idx)
        return false;
    free(ctx->index);
    ctx->index = idx;
    ctx->index_cap = cap;
    for (size_t i = 0; i < ctx->nseries; i++)
        statsd_index_put(ctx, i);
    return true;
}

/*
 * Find the series of key[0..n), creating it when absent and the cap allows.
 * Returns NULL when the cap is reached (counted) or memory ran out.
 */
static struct statsd_series *statsd_lookup(struct statsd_ctx *ctx, const char *key,
                                           size_t n, size_t nlabels)
{
    uint64_t h = statsd_hash(key, n);
    size_t mask = ctx->index_cap - 1, s = h & mask;
    struct statsd_series *se;

    for (; ctx->index[s]; s = (s + 1) & mask) {
        se = ctx->series[ctx->index[s] - 1];
        if (se->hash == h && se->key_len == n && !memcmp(se->key, key, n))
            return se;
    }
    if (ctx->nseries >= (size_t)ctx->max_series) {
        ctx->overflow++;
        return NULL;
    }
    if (ctx->nseries == ctx->series_cap) {
        size_t cap = ctx->series_cap ? ctx->series_cap * 2 : 64;
        struct statsd_series **a = realloc(ctx->series, cap * sizeof *a);

        if (!a)
            return NULL;
        ctx->series = a;
        ctx->series_cap = cap;
    }
    se = calloc(1, sizeof *se + n);
    if (!se)
        return NULL;
    se->hash = h;
    se->type = (uint8_t)key[0];
    se->nlabels = (uint8_t)nlabels;
    se->key_len = n;
    se->min = INFINITY;
    se->max = -INFINITY;
    memcpy(se->key, key, n);
    ctx->series[ctx->nseries++] = se;
    if (ctx->nseries * 2 > ctx->index_cap) {
        if (!statsd_reindex(ctx, ctx->index_cap * 2)) {
            ctx->nseries--;
            free(se);
            return NULL;
        }
    } else {
        ctx->index[s] = (uint32_t)ctx->nseries;
    }
    return se;
}

/* Add one timer sample: exact count/sum/min/max, reservoir for percentiles. */
static void statsd_add_sample(struct statsd_ctx *ctx, struct statsd_series *se,
                              double v, double rate)
{
    se->count += 1.0 / rate;
    se->sum += v;
    if (v < se->min)
        se->min = v;
    if (v > se->max)
        se->max = v;
    se->received++;
    if (se->nsamples < (uint64_t)ctx->max_samples) {
        if (se->nsamples == se->samples_cap) {
            uint32_t cap = se->samples_cap ? se->samples_cap * 2 : 16;
            double *a;

            if (cap > (uint64_t)ctx->max_samples)
                cap = (uint32_t)ctx->max_samples;
            a = realloc(se->samples, cap * sizeof *a);
            if (!a)
                return;
            se->samples = a;
            se->samples_cap = cap;
        }
        se->samples[se->nsamples++] = v;
    } else {
        uint64_t j = statsd_rand(ctx) % se->received;

        if (j < se->nsamples)
            se->samples[j] = v;
    }
}

/* Add a set member (by the hash of its text); sets stop growing at
 * STATSD_MAX_SET members. */
static void statsd_add_member(struct statsd_series *se, const char *m, size_t n)
{
    uint64_t h = statsd_hash(m, n) | 1;
    size_t mask, s;

    if (se->nmembers * 2 >= se->members_cap) {
        uint32_t cap = se->members_cap ? se->members_cap * 2 : 16;
        uint64_t *a;

        if (se->nmembers >= STATSD_MAX_SET)
            return;
        a = calloc(cap, sizeof *a);
        if (!a)
            return;
        for (uint32_t i = 0; i < se->members_cap; i++) {
            if (!se->members[i])
                continue;
            s = se->members[i] & (cap - 1);
            while (a[s])
                s = (s + 1) & (cap - 1);
            a[s] = se->members[i];
        }
        free(se->members);
        se->members = a;
        se->members_cap = cap;
    }
    mask = se->members_cap - 1;
    for (s = h & mask; se->members[s]; s = (s + 1) & mask)
        if (se->members[s] == h)
            return;
    se->members[s] = h;
    se->nmembers++;
}

/* Count a bad line; the first of an interval is logged with its reason
 * and position, never its content. */
static void statsd_bad(pipit_instance *ins, struct statsd_ctx *ctx, const char *why,
                       size_t len)
{
    ctx->bad_lines++;
    if (!ctx->bad_logged) {
        ctx->bad_logged = true;
        api->log(ins, PIPIT_LOG_WARN, "bad line (%s, %zu bytes); further bad lines "
                 "this interval are only counted", why, len);
    }
}

/* Parse and aggregate one line. */
static void statsd_line(pipit_instance *ins, struct statsd_ctx *ctx, const char *p,
                        size_t len)
{
    struct statsd_line l;
    struct statsd_series *se;
    const char *why;
    size_t k;

    if (len == 0 || (len == 1 && p[0] == '\r'))
        return;
    why = statsd_parse_line(p, len, &l);
    if (why) {
        statsd_bad(ins, ctx, why, len);
        return;
    }
    k = statsd_make_key(ctx, &l);
    {
        size_t nl = 0;

        for (size_t i = 1 + l.name_len + 1; i < k; i++)
            nl += ctx->key[i] == '\0';
        se = statsd_lookup(ctx, ctx->key, k, nl / 2);
    }
    if (!se)
        return;
    ctx->lines++;
    switch (l.type) {
    case STATSD_COUNTER:
        se->value += l.value / l.rate;
        break;
    case STATSD_GAUGE:
        se->value = l.delta ? se->value + l.value : l.value;
        break;
    case STATSD_TIMER:
        statsd_add_sample(ctx, se, l.value, l.rate);
        break;
    case STATSD_SET:
        statsd_add_member(se, l.raw, l.raw_len);
        break;
    }
    se->seen = true;
}

/* Split a datagram into lines. */
static void statsd_datagram(pipit_instance *ins, struct statsd_ctx *ctx, const char *p,
                            size_t n)
{
    const char *end = p + n;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;

        statsd_line(ins, ctx, p, (size_t)(stop - p));
        p = stop + 1;
    }
}

/* Readable socket: read up to STATSD_BATCH * STATSD_MAX_BATCHES datagrams. */
static void statsd_on_read(pipit_instance *ins, void *data, int fd, int events)
{
    struct statsd_ctx *ctx = data;

    (void)events;
    for (int b = 0; b < STATSD_MAX_BATCHES; b++) {
        int n;

        for (int i = 0; i < STATSD_BATCH; i++) {
            ctx->iov[i].iov_base = ctx->bufs + (size_t)i * STATSD_DGRAM;
            ctx->iov[i].iov_len = STATSD_DGRAM;
            memset(&ctx->msgs[i].msg_hdr, 0, sizeof ctx->msgs[i].msg_hdr);
            ctx->msgs[i].msg_hdr.msg_iov = &ctx->iov[i];
            ctx->msgs[i].msg_hdr.msg_iovlen = 1;
        }
        n = recvmmsg(fd, ctx->msgs, STATSD_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                api->log(ins, PIPIT_LOG_WARN, "recvmmsg: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++)
            statsd_datagram(ins, ctx, ctx->bufs + (size_t)i * STATSD_DGRAM,
                            ctx->msgs[i].msg_len);
        if (n < STATSD_BATCH)
            return;
    }
}

/* Close a TCP connection and free its slot. */
static void statsd_conn_close(pipit_instance *ins, struct statsd_ctx *ctx, size_t i)
{
    struct statsd_conn *c = ctx->conns[i];

    api->unwatch_fd(ins, c->fd);
    close(c->fd);
    free(c);
    ctx->conns[i] = NULL;
    ctx->nconns--;
}

/*
 * Feed p[0..n) read from connection c: complete lines are aggregated, the
 * start of an unfinished line is kept in c->buf. A line longer than
 * STATSD_MAX_LINE is counted bad once and skipped up to its newline.
 */
static void statsd_conn_feed(pipit_instance *ins, struct statsd_ctx *ctx,
                             struct statsd_conn *c, const char *p, size_t n)
{
    const char *end = p + n;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = (size_t)((nl ? nl : end) - p);

        if (!c->skipping && c->len + k > sizeof c->buf) {
            statsd_bad(ins, ctx, "line too long", c->len + k);
            c->skipping = true;
            c->len = 0;
        }
        if (!c->skipping) {
            if (!nl || c->len) {
                memcpy(c->buf + c->len, p, k);
                c->len += k;
            }
            if (nl) {
                if (c->len)
                    statsd_line(ins, ctx, c->buf, c->len);
                else
                    statsd_line(ins, ctx, p, k);
                c->len = 0;
            }
        } else if (nl) {
            c->skipping = false;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
}

/* Readable TCP connection: read what is there (bounded per wakeup); at
 * end of stream the last unterminated line counts, then it is closed. */
static void statsd_on_conn(pipit_instance *ins, void *data, int fd, int events)
{
    struct statsd_ctx *ctx = data;
    struct statsd_conn *c = NULL;
    size_t i;

    (void)events;
    for (i = 0; i < (size_t)ctx->max_conns; i++)
        if (ctx->conns[i] && ctx->conns[i]->fd == fd) {
            c = ctx->conns[i];
            break;
        }
    if (!c)
        return;
    for (int r = 0; r < STATSD_TCP_READS; r++) {
        ssize_t n = read(fd, ctx->bufs, STATSD_DGRAM);

        if (n > 0) {
            statsd_conn_feed(ins, ctx, c, ctx->bufs, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n == 0 && c->len && !c->skipping)
            statsd_line(ins, ctx, c->buf, c->len);
        statsd_conn_close(ins, ctx, i);
        return;
    }
}

/* TCP listener readable: accept the waiting connections, closing those
 * past max_connections (logged once per interval). */
static void statsd_on_accept(pipit_instance *ins, void *data, int fd, int events)
{
    struct statsd_ctx *ctx = data;

    (void)events;
    for (int a = 0; a < 64; a++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct statsd_conn *c;
        size_t i;

        if (cfd < 0)
            return;
        if (ctx->nconns >= (size_t)ctx->max_conns) {
            if (!ctx->refused_logged)
                api->log(ins, PIPIT_LOG_WARN, "max_connections=%lld reached: "
                         "closing new TCP connections", (long long)ctx->max_conns);
            ctx->refused_logged = true;
            close(cfd);
            continue;
        }
        c = malloc(sizeof *c);
        if (!c) {
            close(cfd);
            continue;
        }
        c->fd = cfd;
        c->len = 0;
        c->skipping = false;
        for (i = 0; ctx->conns[i]; i++)
            ;
        ctx->conns[i] = c;
        ctx->nconns++;
        if (api->watch_fd(ins, cfd, PIPIT_FD_READ, statsd_on_conn) != PIPIT_OK) {
            close(cfd);
            free(c);
            ctx->conns[i] = NULL;
            ctx->nconns--;
        }
    }
}

static int statsd_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Emit name+suffix with the series' labels. */
static void statsd_emit(pipit_instance *ins, struct statsd_ctx *ctx,
                        const struct statsd_series *se, const char *suffix,
                        int type, double v)
{
    struct pipit_label labels[STATSD_MAX_TAGS];
    const char *p = se->key + 1, *end = se->key + se->key_len;
    size_t nl = 0, len = strlen(p);

    memcpy(ctx->name, p, len);
    strcpy(ctx->name + len, suffix);
    p += len + 1;
    while (p < end && nl < STATSD_MAX_TAGS) {
        labels[nl].key = p;
        p += strlen(p) + 1;
        labels[nl++].value = p;
        p += strlen(p) + 1;
    }
    api->emit_metric(ins, type, ctx->name, v, nl ? labels : NULL, nl);
}

/* Emit a timer's aggregates: count (counter), sum, min, max, mean and each
 * percentile (gauges, nearest rank over the reservoir). */
static void statsd_emit_timer(pipit_instance *ins, struct statsd_ctx *ctx,
                              struct statsd_series *se)
{
    statsd_emit(ins, ctx, se, ".count", PIPIT_COUNTER, se->count);
    statsd_emit(ins, ctx, se, ".sum", PIPIT_GAUGE, se->sum);
    statsd_emit(ins, ctx, se, ".min", PIPIT_GAUGE, se->min);
    statsd_emit(ins, ctx, se, ".max", PIPIT_GAUGE, se->max);
    statsd_emit(ins, ctx, se, ".mean", PIPIT_GAUGE, se->sum / (double)se->received);
    if (!se->nsamples)
        return;
    qsort(se->samples, se->nsamples, sizeof *se->samples, statsd_cmp_double);
    for (size_t i = 0; i < ctx->npct; i++) {
        double r = ceil(ctx->pct[i] / 100.0 * se->nsamples);
        size_t k = r < 1 ? 0 : (size_t)r - 1;

        if (k >= se->nsamples)
            k = se->nsamples - 1;
        statsd_emit(ins, ctx, se, ctx->pct_name[i], PIPIT_GAUGE, se->samples[k]);
    }
}

static void statsd_free_series(struct statsd_series *se)
{
    free(se->samples);
    free(se->members);
    free(se);
}

/*
 * Flush timer: emit every series updated in the interval (and every gauge
 * unless delete_gauges), then drop all but the gauges that persist, and
 * emit the plugin's own counters.
 */
static void statsd_on_flush(pipit_instance *ins, void *data)
{
    struct statsd_ctx *ctx = data;
    size_t kept = 0;

    for (size_t i = 0; i < ctx->nseries; i++) {
        struct statsd_series *se = ctx->series[i];
        bool keep = false;

        switch (se->type) {
        case STATSD_COUNTER:
            if (se->seen)
                statsd_emit(ins, ctx, se, "", PIPIT_COUNTER, se->value);
            break;
        case STATSD_GAUGE:
            if (se->seen || !ctx->delete_gauges) {
                statsd_emit(ins, ctx, se, "", PIPIT_GAUGE, se->value);
                keep = true;
            }
            break;
        case STATSD_TIMER:
            if (se->seen && se->received)
                statsd_emit_timer(ins, ctx, se);
            break;
        case STATSD_SET:
            if (se->seen)
                statsd_emit(ins, ctx, se, "", PIPIT_GAUGE, se->nmembers);
            break;
        }
        if (keep) {
            se->seen = false;
            ctx->series[kept++] = se;
        } else {
            statsd_free_series(se);
        }
    }
    if (kept != ctx->nseries) {
        ctx->nseries = kept;
        memset(ctx->index, 0, ctx->index_cap * sizeof *ctx->index);
        for (size_t i = 0; i < ctx->nseries; i++)
            statsd_index_put(ctx, i);
    }
    api->emit_metric(ins, PIPIT_COUNTER, "statsd.lines", (double)ctx->lines, NULL, 0);
    api->emit_metric(ins, PIPIT_COUNTER, "statsd.bad_lines", (double)ctx->bad_lines,
                     NULL, 0);
    api->emit_metric(ins, PIPIT_COUNTER, "statsd.dropped_lines", (double)ctx->overflow,
                     NULL, 0);
    if (ctx->overflow)
        api->log(ins, PIPIT_LOG_WARN, "max_series=%lld reached: %llu lines of new "
                 "series dropped in this interval", (long long)ctx->max_series,
                 (unsigned long long)ctx->overflow);
    ctx->lines = ctx->bad_lines = ctx->overflow = 0;
    ctx->bad_logged = false;
    ctx->refused_logged = false;
}

/* Parse the percentiles option into ctx->pct and ctx->pct_name. */
static int statsd_init_pct(pipit_instance *ins, struct statsd_ctx *ctx)
{
    if (ctx->percentiles.count > STATSD_MAX_PCT) {
        api->log(ins, PIPIT_LOG_ERROR, "percentiles: at most %d", STATSD_MAX_PCT);
        return PIPIT_EINVAL;
    }
    for (size_t i = 0; i < ctx->percentiles.count; i++) {
        const char *s = ctx->percentiles.items[i];
        size_t n = strlen(s);
        double v;

        if (n > 12 || !statsd_parse_number(s, n, &v) || !(v > 0 && v <= 100) ||
            s[0] == '+' || s[0] == '-') {
            api->log(ins, PIPIT_LOG_ERROR, "percentiles: \"%s\" is not in (0, 100]", s);
            return PIPIT_EINVAL;
        }
        ctx->pct[i] = v;
        snprintf(ctx->pct_name[i], sizeof ctx->pct_name[i], ".p%s", s);
        for (char *c = ctx->pct_name[i] + 2; *c; c++)
            if (*c == '.')
                *c = '_';
    }
    ctx->npct = ctx->percentiles.count;
    return PIPIT_OK;
}

/*
 * Split listen ("host:port", "[v6]:port") and bind a non-blocking UDP
 * socket to it. Returns the socket or a negative PIPIT error.
 */
static int statsd_bind(pipit_instance *ins, struct statsd_ctx *ctx, int type)
{
    char host[256];
    const char *port, *l = ctx->listen;
    struct addrinfo hints = { 0 }, *res = NULL;
    int fd = -1, rc, one = 1;

    if (l[0] == '[') {
        const char *rb = strchr(l, ']');

        if (!rb || rb[1] != ':' || (size_t)(rb - l - 1) >= sizeof host)
            goto bad;
        memcpy(host, l + 1, (size_t)(rb - l - 1));
        host[rb - l - 1] = '\0';
        port = rb + 2;
    } else {
        const char *c = strrchr(l, ':');

        if (!c || (size_t)(c - l) >= sizeof host)
            goto bad;
        memcpy(host, l, (size_t)(c - l));
        host[c - l] = '\0';
        port = c + 1;
    }
    hints.ai_socktype = type;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc) {
        api->log(ins, PIPIT_LOG_ERROR, "listen %s: %s", l, gai_strerror(rc));
        return PIPIT_EINVAL;
    }
    fd = socket(res->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto sys;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ctx->rcvbuf > 0) {
        int sz = (int)ctx->rcvbuf;

        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz) < 0)
            api->log(ins, PIPIT_LOG_WARN, "SO_RCVBUF %d: %s", sz, strerror(errno));
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
        (type == SOCK_STREAM && listen(fd, 128) < 0))
        goto sys;
    freeaddrinfo(res);
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char h[NI_MAXHOST], s[NI_MAXSERV];

        /* name the port actually bound, which differs when it was 0 */
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 &&
            getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, s, sizeof s,
                        NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            api->log(ins, PIPIT_LOG_INFO, "listening on %s %s%s%s:%s",
                     type == SOCK_STREAM ? "tcp" : "udp",
                     ss.ss_family == AF_INET6 ? "[" : "", h,
                     ss.ss_family == AF_INET6 ? "]" : "", s);
    }
    return fd;
bad:
    api->log(ins, PIPIT_LOG_ERROR, "listen \"%s\": want host:port or [ipv6]:port", l);
    return PIPIT_EINVAL;
sys:
    api->log(ins, PIPIT_LOG_ERROR, "listen %s: %s", l, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return PIPIT_EIO;
}

static void statsd_free(struct statsd_ctx *ctx)
{
    for (size_t i = 0; ctx->conns && i < (size_t)ctx->max_conns; i++)
        if (ctx->conns[i]) {
            close(ctx->conns[i]->fd);
            free(ctx->conns[i]);
        }
    free(ctx->conns);
    ctx->conns = NULL;
    ctx->nconns = 0;
    for (size_t i = 0; i < ctx->nseries; i++)
        statsd_free_series(ctx->series[i]);
    free(ctx->series);
    free(ctx->index);
    free(ctx->bufs);
    ctx->series = NULL;
    ctx->index = NULL;
    ctx->bufs = NULL;
    ctx->nseries = 0;
}

static int statsd_init(pipit_instance *ins, void *data)
{
    struct statsd_ctx *ctx = data;
    int rc;

    ctx->fd = ctx->tcp_fd = -1;
    rc = statsd_init_pct(ins, ctx);
    if (rc != PIPIT_OK)
        return rc;
    ctx->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)api->now_ns();
    ctx->bufs = malloc((size_t)STATSD_BATCH * STATSD_DGRAM);
    if (!ctx->bufs || !statsd_reindex(ctx, 128)) {
        rc = PIPIT_ENOMEM;
        goto fail;
    }
    ctx->fd = statsd_bind(ins, ctx, SOCK_DGRAM);
    if (ctx->fd < 0) {
        rc = ctx->fd;
        goto fail;
    }
    if (ctx->tcp) {
        ctx->conns = calloc((size_t)ctx->max_conns, sizeof *ctx->conns);
        if (!ctx->conns) {
            rc = PIPIT_ENOMEM;
            goto fail;
        }
        ctx->tcp_fd = statsd_bind(ins, ctx, SOCK_STREAM);
        if (ctx->tcp_fd < 0) {
            rc = ctx->tcp_fd;
            goto fail;
        }
        rc = api->watch_fd(ins, ctx->tcp_fd, PIPIT_FD_READ, statsd_on_accept);
        if (rc != PIPIT_OK)
            goto fail;
    }
    rc = api->watch_fd(ins, ctx->fd, PIPIT_FD_READ, statsd_on_read);
    if (rc != PIPIT_OK)
        goto fail;
    rc = api->timer_start(ins, (uint64_t)ctx->flush_ms, (uint64_t)ctx->flush_ms,
                          statsd_on_flush);
    if (rc != PIPIT_OK)
        goto fail;
    return PIPIT_OK;
fail:
    if (ctx->tcp_fd >= 0) {
        api->unwatch_fd(ins, ctx->tcp_fd);
        close(ctx->tcp_fd);
    }
    if (ctx->fd >= 0) {
        api->unwatch_fd(ins, ctx->fd);
        close(ctx->fd);
    }
    ctx->fd = ctx->tcp_fd = -1;
    statsd_free(ctx);
    return rc;
}

/*
 * Stop: take what the socket still holds, then emit the interval in
 * progress. The host delivers records emitted by fini() before it exits or
 * reloads, so the last interval is not lost.
 */
static void statsd_fini(pipit_instance *ins, void *data)
{
    struct statsd_ctx *ctx = data;

    if (ctx->fd >= 0)
        statsd_on_read(ins, ctx, ctx->fd, PIPIT_FD_READ);
    statsd_on_flush(ins, ctx);
    if (ctx->fd >= 0)
        close(ctx->fd);
    if (ctx->tcp_fd >= 0)
        close(ctx->tcp_fd);
    statsd_free(ctx);
}

PIPIT_PLUGIN_DEFINE(
    .name = "statsd", .version = "1.0.0", .kinds = PIPIT_COLLECTOR,
    .description = "StatsD / DogStatsD server over UDP, aggregated per flush interval",
    .ctx_size = sizeof(struct statsd_ctx), .options = statsd_options,
    .load = statsd_load, .init = statsd_init, .fini = statsd_fini);
