/* ctlping: the control client of the services benchmark (scripts/bench-services.sh).
 *
 * Sends a RESP `PING` on one TCP connection once per interval (default 1 ms, on an absolute
 * schedule: a late reply delays the next send but the schedule does not drift) and records each
 * round trip until +PONG arrives. Prints one JSON line with the percentiles.
 *
 *   ctlping --port P [--host 127.0.0.1] [--count N | --duration S] [--interval-us U]
 *           [--timeout-ms T] [--raw FILE] [--local-port L]
 *
 * --local-port binds the client's end to port L first, so a packet capture can pick this one
 * connection out of a flood on the same server port (scripts/services/residence.py).
 *
 * Every wait is bounded: connect, each reply (--timeout-ms, default 2000) and the whole run.
 * Exit 0 on success, 1 on a connection error or timeout (the JSON line still says how far it got).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The first sample at or above fraction q of the sorted samples (nearest rank). */
static double pct_us(const uint64_t *s, size_t n, double q) {
    if (n == 0) return 0;
    size_t rank = (size_t)(q * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)s[rank - 1] / 1000.0;
}

static void usage(void) {
    fprintf(stderr, "usage: ctlping --port P [--host ADDR] [--count N | --duration S] [--interval-us U] "
                    "[--timeout-ms T] [--raw FILE] [--local-port L]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *raw = NULL;
    int port = 0, timeout_ms = 2000, local_port = 0;
    long count = 5000, interval_us = 1000;
    double duration = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--port")) port = atoi(v);
        else if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--count")) count = atol(v);
        else if (!strcmp(a, "--duration")) duration = atof(v);
        else if (!strcmp(a, "--interval-us")) interval_us = atol(v);
        else if (!strcmp(a, "--timeout-ms")) timeout_ms = atoi(v);
        else if (!strcmp(a, "--raw")) raw = v;
        else if (!strcmp(a, "--local-port")) local_port = atoi(v);
        else usage();
        i++;
    }
    if (port <= 0 || port > 65535 || count <= 0 || interval_us <= 0 || timeout_ms <= 0) usage();
    if (duration > 0) count = (long)(duration * 1e6 / (double)interval_us) + 1;

    uint64_t *samples = calloc((size_t)count, sizeof *samples);
    if (!samples) { fprintf(stderr, "ctlping: out of memory for %ld samples\n", count); return 1; }

    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "ctlping: bad host '%s' or no socket: %s\n", host, strerror(errno));
        return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect() too */
    if (local_port > 0) {
        struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons((uint16_t)local_port), .sin_addr = sa.sin_addr};
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&la, sizeof la) != 0) {
            fprintf(stderr, "ctlping: cannot bind local port %d: %s\n", local_port, strerror(errno));
            return 1;
        }
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "ctlping: cannot connect to %s:%d: %s\n", host, port, strerror(errno));
        return 1;
    }

    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    static const char pong[] = "+PONG\r\n";
    char buf[256];
    long n = 0, late = 0;
    const char *error = NULL;
    int error_errno = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (; n < count; n++) {
        next.tv_nsec += interval_us * 1000;
        while (next.tv_nsec >= 1000000000) { next.tv_nsec -= 1000000000; next.tv_sec++; }
        uint64_t due = (uint64_t)next.tv_sec * 1000000000ull + (uint64_t)next.tv_nsec;
        if (now_ns() < due) {
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {}
        } else {
            late++; /* the previous reply took longer than the interval: send at once */
        }
        uint64_t t0 = now_ns();
        if (send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof ping - 1)) {
            error = "send failed"; error_errno = errno; break;
        }
        size_t got = 0;
        while (got < sizeof pong - 1) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            int left = timeout_ms - (int)((now_ns() - t0) / 1000000);
            int r = left > 0 ? poll(&p, 1, left) : 0;
            if (r == 0) { error = "no reply within the timeout"; break; }
            if (r < 0) { if (errno == EINTR) continue; error = "poll failed"; error_errno = errno; break; }
            ssize_t k = recv(fd, buf + got, sizeof pong - 1 - got, 0);
            if (k == 0) { error = "connection closed by the server"; break; }
            if (k < 0) { if (errno == EINTR || errno == EAGAIN) continue; error = "recv failed"; error_errno = errno; break; }
            got += (size_t)k;
        }
        if (error) break;
        if (memcmp(buf, pong, sizeof pong - 1) != 0) { error = "reply was not +PONG"; break; }
        samples[n] = now_ns() - t0;
    }
    close(fd);

    if (raw) {
        FILE *f = fopen(raw, "w");
        if (f) {
            for (long i = 0; i < n; i++) fprintf(f, "%llu\n", (unsigned long long)samples[i]);
            fclose(f);
        }
    }
    qsort(samples, (size_t)n, sizeof *samples, cmp_u64);
    printf("{\"samples\": %ld, \"late_sends\": %ld, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, "
           "\"p999_us\": %.1f, \"max_us\": %.1f, \"error\": ",
           n, late, pct_us(samples, (size_t)n, 0.50), pct_us(samples, (size_t)n, 0.90),
           pct_us(samples, (size_t)n, 0.99), pct_us(samples, (size_t)n, 0.999),
           n ? (double)samples[n - 1] / 1000.0 : 0.0);
    if (error) printf("\"%s%s%s\"}\n", error, error_errno ? ": " : "", error_errno ? strerror(error_errno) : "");
    else printf("null}\n");
    free(samples);
    return error ? 1 : 0;
}
