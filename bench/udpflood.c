/* udpflood.c: send StatsD lines over UDP as fast as the socket takes them, for the statsd benchmark. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * Usage: udpflood PORT LINES [SERIES] [PER_DATAGRAM] [RATE]
 *
 * Sends LINES lines to 127.0.0.1:PORT at RATE lines a second (default 0:
 * as fast as the socket takes them), PER_DATAGRAM (default 20) lines a
 * datagram, 32 datagrams a sendmmsg() call, cycling over SERIES (default
 * 1000) names: counters, gauges, timers with a sample rate and tags, and
 * sets. Prints the lines sent, the seconds it took and the rate. A full
 * socket buffer is waited on (blocking socket), so nothing is dropped by
 * the sender; the receiver may still drop what its buffer cannot hold.
 */

#define BATCH 32

static int line(char *buf, size_t n, unsigned long i, unsigned series)
{
    unsigned s = (unsigned)(i % series);

    switch (i % 4) {
    case 0:  return snprintf(buf, n, "app.requests.%u:1|c|#env:prod,svc:api\n", s);
    case 1:  return snprintf(buf, n, "app.queue.%u:%lu|g\n", s, i % 977);
    case 2:  return snprintf(buf, n, "app.latency.%u:%lu.%lu|ms|@0.5|#route:/v1\n", s,
                             i % 250, i % 10);
    default: return snprintf(buf, n, "app.users.%u:user%lu|s\n", s, i % 5000);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: udpflood PORT LINES [SERIES] [PER_DATAGRAM] [RATE]\n");
        return 2;
    }
    unsigned port = (unsigned)strtoul(argv[1], NULL, 10);
    unsigned long total = strtoul(argv[2], NULL, 10);
    unsigned series = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 1000;
    unsigned per = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 20;
    double rate = argc > 5 ? strtod(argv[5], NULL) : 0;
    if (!series || !per || per > 64) {
        fprintf(stderr, "udpflood: SERIES must be > 0 and PER_DATAGRAM 1 to 64\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "udpflood: %s\n", strerror(errno));
        return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

    static char bufs[BATCH][64 * 80];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct timespec t0, t1;
    unsigned long sent = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (sent < total) {
        if (rate > 0) {                 /* ahead of the rate: wait for it */
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double ahead = (double)sent / rate - ((double)(t1.tv_sec - t0.tv_sec) +
                                                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
            if (ahead > 0) {
                struct timespec ts = { (time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9) };
                nanosleep(&ts, NULL);
            }
        }
        unsigned n = 0;
        for (; n < BATCH && sent < total; n++) {
            size_t len = 0;
            for (unsigned k = 0; k < per && sent < total; k++, sent++)
                len += (size_t)line(bufs[n] + len, sizeof bufs[n] - len, sent, series);
            iov[n] = (struct iovec){ bufs[n], len };
            memset(&msgs[n], 0, sizeof msgs[n]);
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
        }
        for (unsigned done = 0; done < n;) {
            int r = sendmmsg(fd, msgs + done, n - done, 0);
            if (r < 0) {
                if (errno == EINTR || errno == ENOBUFS || errno == ECONNREFUSED)
                    continue;
                fprintf(stderr, "udpflood: sendmmsg: %s\n", strerror(errno));
                return 1;
            }
            done += (unsigned)r;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("sent=%lu seconds=%.3f rate=%.0f\n", sent, secs, secs > 0 ? (double)sent / secs : 0);
    close(fd);
    return 0;
}
