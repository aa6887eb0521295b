/* delay_proxy: a TCP forwarder that holds every chunk of bytes for a set delay, each way. */
/*
 * delay_proxy [-d MS] [-j MS] [-q BYTES] [-m CONNS] [--on] LISTEN=TARGET...
 *
 * LISTEN and TARGET are IPv4 ADDR:PORT. Each connection accepted on a
 * LISTEN address is joined to a new connection to its TARGET; what one side
 * sends is queued in chunks (one read each) and written to the other side
 * no earlier than DELAY +- JITTER milliseconds after it was read. A chunk is
 * never released before the one read ahead of it, so the stream keeps its
 * order (like netem with a rate limit, unlike netem with plain jitter, which
 * reorders packets and lets TCP put them back).
 *
 * Memory is bounded: each direction of a connection queues at most -q bytes
 * (default 256 KiB); when its queue is full the proxy stops reading that
 * side, so TCP's flow control pushes back on the sender. At most -m
 * connection pairs (default 64) exist at once; a connection beyond that is
 * accepted, reported on stderr and closed.
 *
 * The delay is off at start (chunks pass at once) unless --on is given.
 * SIGUSR1 turns it on, SIGUSR2 off; chunks already queued keep their release
 * time. SIGTERM or SIGINT stop the proxy, which then prints its counters to
 * stderr and exits 0. Each switch is reported on stderr ("delay on: ..." /
 * "delay off: ..."), so a test can wait for it. The first line on stdout,
 * flushed at once, is "listening" when every LISTEN socket is bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DP_MAX_ROUTES   32
#define DP_CHUNK        16384
#define DP_DEF_QUEUE    (256 * 1024)
#define DP_DEF_CONNS    64
#define DP_MAX_CONNS    1024

struct dp_chunk {
    struct dp_chunk *next;
    int64_t read_ms, due_ms;            /* read at, not written before (monotonic) */
    size_t len, off;                    /* bytes in data, bytes already written */
    bool held;                          /* read while the delay was on */
    char data[];
};

/* One direction of a pair: bytes read from `from`, queued, written to `to`. */
struct dp_dir {
    struct dp_chunk *head, *tail;
    size_t queued;                      /* bytes in the queue, not yet written */
    bool eof;                           /* `from` has sent FIN */
    bool shut;                          /* FIN passed on to `to` */
};

struct dp_pair {
    int fd[2];                          /* 0: accepted (client), 1: to the target */
    bool connecting;                    /* fd[1]'s connect() in progress */
    struct dp_dir dir[2];               /* dir[i]: from fd[i] to fd[1 - i] */
};

struct dp_route {
    struct sockaddr_in listen, target;
    int fd;
    char spec[96];
};

struct dp_state {
    struct dp_route routes[DP_MAX_ROUTES];
    int nroutes;
    struct dp_pair *pairs;
    int npairs, max_pairs;
    size_t max_queue;
    long delay_ms, jitter_ms;
    bool on;
    uint64_t rng;
    int sfd;
    bool quit;
    /* counters, printed on exit */
    uint64_t accepted, refused, bytes[2], chunks_held, chunks_held_out;
    int64_t max_hold_ms, sum_hold_ms;   /* of the chunks read while the delay was on */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xorshift64*: jitter only, no need for more. */
static uint64_t dp_rand(struct dp_state *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ULL;
}

static int parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    char *end;
    long port;

    if (!colon || (size_t)(colon - text) >= sizeof host)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static long parse_num(const char *opt, const char *text, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || *end || end == text || v < min || v > max) {
        fprintf(stderr, "delay_proxy: %s: expected a number from %ld to %ld, got '%s'\n",
                opt, min, max, text);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr, "usage: delay_proxy [-d MS] [-j MS] [-q BYTES] [-m CONNS] [--on] "
                    "LISTEN_ADDR:PORT=TARGET_ADDR:PORT...\n");
    exit(2);
}

static void dir_free(struct dp_dir *d)
{
    while (d->head) {
        struct dp_chunk *c = d->head;
        d->head = c->next;
        free(c);
    }
    d->tail = NULL;
    d->queued = 0;
}

static void pair_close(struct dp_state *s, int i)
{
    struct dp_pair *p = &s->pairs[i];

    close(p->fd[0]);
    close(p->fd[1]);
    dir_free(&p->dir[0]);
    dir_free(&p->dir[1]);
    s->pairs[i] = s->pairs[--s->npairs];
}

static void set_delay(struct dp_state *s, bool on)
{
    s->on = on;
    fprintf(stderr, "delay_proxy: delay %s: %ld ms +- %ld ms each way\n",
            on ? "on" : "off", s->delay_ms, s->jitter_ms);
}

static void accept_one(struct dp_state *s, struct dp_route *r)
{
    struct dp_pair *p;
    int cfd, tfd;

    cfd = accept4(r->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            fprintf(stderr, "delay_proxy: accept on %s: %s\n", r->spec, strerror(errno));
        return;
    }
    if (s->npairs == s->max_pairs) {
        fprintf(stderr, "delay_proxy: %s: %d connections already, closing the new one\n",
                r->spec, s->max_pairs);
        s->refused++;
        close(cfd);
        return;
    }
    tfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (tfd < 0) {
        fprintf(stderr, "delay_proxy: socket: %s\n", strerror(errno));
        close(cfd);
        return;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
    setsockopt(tfd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
    if (connect(tfd, (struct sockaddr *)&r->target, sizeof r->target) < 0 &&
        errno != EINPROGRESS) {
        fprintf(stderr, "delay_proxy: connect for %s: %s\n", r->spec, strerror(errno));
        close(tfd);
        close(cfd);
        return;
    }
    p = &s->pairs[s->npairs++];
    memset(p, 0, sizeof *p);
    p->fd[0] = cfd;
    p->fd[1] = tfd;
    p->connecting = true;
    s->accepted++;
}

/* read_side: one read from p->fd[i] into dir[i]. Returns -1 when the pair
 * must be closed (reset, error). */
static int read_side(struct dp_state *s, struct dp_pair *p, int i)
{
    struct dp_dir *d = &p->dir[i];
    struct dp_chunk *c;
    char buf[DP_CHUNK];
    ssize_t n;
    int64_t due;
    size_t room = s->max_queue - d->queued;

    n = read(p->fd[i], buf, room < sizeof buf ? room : sizeof buf);
    if (n <= 0) {
        if (n == 0) {
            d->eof = true;
            return 0;
        }
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    c = malloc(sizeof *c + (size_t)n);  /* the bytes read, not the buffer */
    if (!c) {
        fprintf(stderr, "delay_proxy: out of memory\n");
        return -1;
    }
    memcpy(c->data, buf, (size_t)n);
    c->read_ms = due = now_ms();
    c->held = s->on;
    if (s->on) {
        long hold = s->delay_ms;
        if (s->jitter_ms > 0)
            hold += (long)(dp_rand(s) % (uint64_t)(2 * s->jitter_ms + 1)) - s->jitter_ms;
        due += hold > 0 ? hold : 0;
        s->chunks_held++;
    }
    if (d->tail && d->tail->due_ms > due)
        due = d->tail->due_ms;          /* never ahead of the chunk before it */
    c->next = NULL;
    c->due_ms = due;
    c->len = (size_t)n;
    c->off = 0;
    if (d->tail)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    d->queued += (size_t)n;
    s->bytes[i] += (uint64_t)n;
    return 0;
}

/* write_side: write what is due of dir[i] to fd[1 - i]; pass a FIN on when
 * the queue is empty after one. Returns -1 when the pair must be closed. */
static int write_side(struct dp_state *s, struct dp_pair *p, int i, int64_t now)
{
    struct dp_dir *d = &p->dir[i];
    int to = p->fd[1 - i];

    while (d->head && d->head->due_ms <= now) {
        struct dp_chunk *c = d->head;
        ssize_t n = send(to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->off += (size_t)n;
        d->queued -= (size_t)n;
        if (c->off < c->len)
            return 0;
        if (c->held) {
            int64_t hold = now - c->read_ms;
            s->sum_hold_ms += hold;
            s->chunks_held_out++;
            if (hold > s->max_hold_ms)
                s->max_hold_ms = hold;
        }
        d->head = c->next;
        if (!d->head)
            d->tail = NULL;
        free(c);
    }
    if (!d->head && d->eof && !d->shut) {
        shutdown(to, SHUT_WR);
        d->shut = true;
    }
    return 0;
}

static int open_listeners(struct dp_state *s)
{
    for (int i = 0; i < s->nroutes; i++) {
        struct dp_route *r = &s->routes[i];
        r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (r->fd < 0 ||
            setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int)) < 0 ||
            bind(r->fd, (struct sockaddr *)&r->listen, sizeof r->listen) < 0 ||
            listen(r->fd, 64) < 0) {
            fprintf(stderr, "delay_proxy: %s: cannot listen: %s\n", r->spec, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void handle_signals(struct dp_state *s)
{
    struct signalfd_siginfo si;

    while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR1)
            set_delay(s, true);
        else if (si.ssi_signo == SIGUSR2)
            set_delay(s, false);
        else
            s->quit = true;
    }
}

/* run: the poll loop. pfd holds the signal fd, the listeners, then two
 * entries per pair (fd[0], fd[1]) in pair order. */
static int run(struct dp_state *s)
{
    size_t nfds_max = 1 + (size_t)s->nroutes + 2 * (size_t)s->max_pairs;
    struct pollfd *pfd = calloc(nfds_max, sizeof *pfd);

    if (!pfd) {
        fprintf(stderr, "delay_proxy: out of memory\n");
        return -1;
    }
    while (!s->quit) {
        int64_t now = now_ms(), next = -1;
        int base = 1 + s->nroutes, npairs = s->npairs, timeout;

        pfd[0] = (struct pollfd){ .fd = s->sfd, .events = POLLIN };
        for (int i = 0; i < s->nroutes; i++)
            pfd[1 + i] = (struct pollfd){ .fd = s->routes[i].fd, .events = POLLIN };
        for (int k = 0; k < npairs; k++) {
            struct dp_pair *p = &s->pairs[k];
            for (int i = 0; i < 2; i++) {
                struct pollfd *f = &pfd[base + 2 * k + i];
                struct dp_dir *in = &p->dir[i], *out = &p->dir[1 - i];
                f->fd = p->fd[i];
                f->events = 0;
                f->revents = 0;
                if (i == 1 && p->connecting) {
                    f->events = POLLOUT;
                    continue;
                }
                if (!in->eof && in->queued < s->max_queue)
                    f->events |= POLLIN;
                if (out->head && !p->connecting) {
                    if (out->head->due_ms <= now)
                        f->events |= POLLOUT;
                    else if (next < 0 || out->head->due_ms < next)
                        next = out->head->due_ms;
                }
                if (!f->events)
                    f->fd = -1;             /* nothing wanted: no POLLHUP spin */
            }
        }
        timeout = next < 0 ? -1 : (int)(next - now);
        if (poll(pfd, (nfds_t)(base + 2 * npairs), timeout) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "delay_proxy: poll: %s\n", strerror(errno));
            free(pfd);
            return -1;
        }
        if (pfd[0].revents)
            handle_signals(s);
        now = now_ms();
        /* Pairs first, from the last (pair_close moves the last into k). */
        for (int k = npairs - 1; k >= 0; k--) {
            struct dp_pair *p = &s->pairs[k];
            short r0 = pfd[base + 2 * k].revents, r1 = pfd[base + 2 * k + 1].revents;
            bool bad = false;

            if (p->connecting && r1) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    fprintf(stderr, "delay_proxy: connect to target: %s\n", strerror(err));
                    bad = true;
                } else {
                    p->connecting = false;
                }
                r1 = 0;
            }
            if (!bad && (r0 & (POLLIN | POLLHUP | POLLERR)))
                bad = read_side(s, p, 0) < 0;
            if (!bad && !p->connecting && (r1 & (POLLIN | POLLHUP | POLLERR)))
                bad = read_side(s, p, 1) < 0;
            if (!bad && !p->connecting)
                bad = write_side(s, p, 0, now) < 0 || write_side(s, p, 1, now) < 0;
            if (bad || (p->dir[0].shut && p->dir[1].shut))
                pair_close(s, k);
        }
        for (int i = 0; i < s->nroutes; i++)
            if (pfd[1 + i].revents & POLLIN)
                accept_one(s, &s->routes[i]);
    }
    free(pfd);
    return 0;
}

int main(int argc, char **argv)
{
    struct dp_state s = { .max_queue = DP_DEF_QUEUE, .max_pairs = DP_DEF_CONNS,
                          .delay_ms = 100, .jitter_ms = 0, .sfd = -1 };
    bool start_on = false;
    sigset_t mask;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "-d") || !strcmp(a, "-j") || !strcmp(a, "-q") || !strcmp(a, "-m")) &&
            i + 1 < argc) {
            const char *v = argv[++i];
            if (a[1] == 'd')
                s.delay_ms = parse_num(a, v, 0, 60000);
            else if (a[1] == 'j')
                s.jitter_ms = parse_num(a, v, 0, 60000);
            else if (a[1] == 'q')
                s.max_queue = (size_t)parse_num(a, v, DP_CHUNK, 1L << 30);
            else
                s.max_pairs = (int)parse_num(a, v, 1, DP_MAX_CONNS);
        } else if (!strcmp(a, "--on")) {
            start_on = true;
        } else if (a[0] == '-') {
            usage();
        } else {
            struct dp_route *r;
            const char *eq = strchr(a, '=');
            char lhs[64];
            if (s.nroutes == DP_MAX_ROUTES) {
                fprintf(stderr, "delay_proxy: at most %d routes\n", DP_MAX_ROUTES);
                return 2;
            }
            r = &s.routes[s.nroutes];
            if (!eq || (size_t)(eq - a) >= sizeof lhs) {
                fprintf(stderr, "delay_proxy: '%s': expected LISTEN_ADDR:PORT=TARGET_ADDR:PORT\n", a);
                return 2;
            }
            memcpy(lhs, a, (size_t)(eq - a));
            lhs[eq - a] = '\0';
            if (parse_addr(lhs, &r->listen) < 0 || parse_addr(eq + 1, &r->target) < 0) {
                fprintf(stderr, "delay_proxy: '%s': expected LISTEN_ADDR:PORT=TARGET_ADDR:PORT "
                                "(IPv4)\n", a);
                return 2;
            }
            snprintf(r->spec, sizeof r->spec, "%s", a);
            r->fd = -1;
            s.nroutes++;
        }
    }
    if (s.nroutes == 0)
        usage();
    if (s.jitter_ms > s.delay_ms) {
        fprintf(stderr, "delay_proxy: -j %ld is larger than -d %ld\n", s.jitter_ms, s.delay_ms);
        return 2;
    }
    s.rng = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)now_ms();
    if (!s.rng)
        s.rng = 1;
    s.pairs = calloc((size_t)s.max_pairs, sizeof *s.pairs);
    if (!s.pairs) {
        fprintf(stderr, "delay_proxy: out of memory\n");
        return 1;
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (s.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        fprintf(stderr, "delay_proxy: signalfd: %s\n", strerror(errno));
        goto out;
    }
    if (open_listeners(&s) < 0)
        goto out;
    if (start_on)
        set_delay(&s, true);
    printf("listening\n");
    fflush(stdout);
    if (run(&s) == 0)
        rc = 0;
    fprintf(stderr, "delay_proxy: stopped: %llu connections (%llu refused), "
                    "%llu bytes to the targets, %llu back; %llu chunks delayed, "
                    "held %lld ms on average, %lld ms at most\n",
            (unsigned long long)s.accepted, (unsigned long long)s.refused,
            (unsigned long long)s.bytes[0], (unsigned long long)s.bytes[1],
            (unsigned long long)s.chunks_held,
            (long long)(s.chunks_held_out ? s.sum_hold_ms / (int64_t)s.chunks_held_out : 0),
            (long long)s.max_hold_ms);
out:
    while (s.npairs > 0)
        pair_close(&s, s.npairs - 1);
    for (int i = 0; i < s.nroutes; i++)
        if (s.routes[i].fd >= 0)
            close(s.routes[i].fd);
    if (s.sfd >= 0)
        close(s.sfd);
    free(s.pairs);
    return rc;
}
