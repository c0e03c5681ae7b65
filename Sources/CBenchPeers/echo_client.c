/*
 * echo_client.c — the client of the `echo` and `io-priority` scenarios, the same for every server
 * (Spindle's and the raw peers'): one thread, pinned to the other CPU, driving N loopback TCP
 * connections with epoll (level-triggered), each a closed loop — send one message, wait for its
 * whole echo, send the next — and recording each message's round-trip time.
 *
 * With a control port (io-priority) the bulk connections flood (each keeps one message in flight,
 * as fast as this thread can) while one control connection sends a ping every `ping_interval_ns`
 * and records its round-trip time. The control socket is read without blocking after every bulk
 * message while a ping is out, so the client notices a reply within one bulk message's handling;
 * with no bulk connections the thread spins on it (and sleeps between pings).
 *
 * Everything lives on the stack (no allocation in the measured window or around it); every wait is
 * bounded: a connection or a ping that makes no progress for 2 s ends the run with ETIMEDOUT.
 */
#include "peers_internal.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define STALL_NS 2000000000ull

typedef struct client_conn {
    int fd;
    uint32_t got;      /* bytes of the current echo received */
    uint64_t seq;      /* the current message's sequence number (its first 8 bytes) */
    uint64_t echo_seq; /* the echo's first 8 bytes, as they arrive */
    uint64_t sent_at;
    int busy; /* a message is out */
} client_conn;

typedef struct client {
    cbp_echo_client_spec *spec;
    const char *why; /* what failed (a static string) */
    client_conn conns[CBP_ECHO_MAX_CONNECTIONS];
    client_conn control;
    uint32_t nconns;
    int epfd;
    uint32_t bytes;
    int issuing;      /* bulk connections send a next message when their echo is complete */
    int recording;    /* bulk round trips are sampled (echo without control) */
    uint64_t quota;   /* messages still to issue (echo without control) */
    uint64_t completed, nsamples, pings_done, checksum;
    uint64_t last_progress;
    uint64_t elapsed_ns;  /* the measured window */
    uint64_t window_done; /* bulk round trips completed in it */
} client;

static int connect_loopback(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* bounded connect (a full accept queue would retry the SYN for a long time) */
    struct timeval tv = {.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Sends one message on `c`: its sequence number, then filler. A 64-byte send into an empty socket
 * buffer always goes at once; a short one is finished by spinning (bounded). */
static int send_message(client *cl, client_conn *c, uint64_t seq) {
    unsigned char msg[CBP_ECHO_MAX_MESSAGE];
    memset(msg, 0x5a, cl->bytes);
    memcpy(msg, &seq, sizeof seq);
    c->seq = seq;
    c->echo_seq = 0;
    c->got = 0;
    c->busy = 1;
    c->sent_at = cbp_now_ns();
    uint32_t off = 0;
    while (off < cl->bytes) {
        ssize_t w = send(c->fd, msg + off, cl->bytes - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            off += (uint32_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            cl->why = "send failed";
            return -errno;
        }
        if (cbp_now_ns() - c->sent_at > STALL_NS) {
            cl->why = "a send found no room in the socket buffer for 2 s";
            return -ETIMEDOUT;
        }
        cbp_relax();
    }
    return 0;
}

/* Reads what has arrived of `c`'s echo. Returns 1 when it is complete (the round trip is in
 * `*rtt`), 0 when more is to come, -errno on an error, EOF or a wrong echo. */
static int read_echo(client *cl, client_conn *c, uint64_t *rtt) {
    unsigned char buf[CBP_ECHO_MAX_MESSAGE];
    ssize_t r = recv(c->fd, buf, cl->bytes - c->got, MSG_DONTWAIT);
    uint64_t now = cbp_now_ns();
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        cl->why = "recv failed";
        return -errno;
    }
    if (r == 0) {
        cl->why = "the server closed a connection";
        return -ECONNRESET;
    }
    /* the first 8 bytes of the echo are the sequence number */
    for (uint32_t i = 0; i < (uint32_t)r && c->got + i < 8; i++)
        ((unsigned char *)&c->echo_seq)[c->got + i] = buf[i];
    c->got += (uint32_t)r;
    if (c->got < cl->bytes) return 0;
    if (c->echo_seq != c->seq) {
        cl->why = "an echo of another message";
        return -EPROTO;
    }
    c->busy = 0;
    *rtt = now - c->sent_at;
    return 1;
}

/* While a ping is out: reads what has arrived of its echo and records it when complete. */
static int check_control(client *cl) {
    client_conn *c = &cl->control;
    if (!c->busy) return 0;
    uint64_t rtt;
    int r = read_echo(cl, c, &rtt);
    if (r < 0) return r;
    if (r == 1) {
        if (cl->nsamples < cl->spec->max_samples) cl->spec->samples[cl->nsamples++] = rtt;
        cl->pings_done++;
        cl->checksum += c->seq;
        cbp_beat(1);
        return 0;
    }
    if (cbp_now_ns() - c->sent_at > STALL_NS) {
        cl->why = "a control ping got no echo in 2 s";
        return -ETIMEDOUT;
    }
    return 0;
}

/* One epoll_wait over the bulk connections and the echoes it reports: records and re-issues. */
static int pump(client *cl, int timeout_ms) {
    struct epoll_event evs[CBP_ECHO_MAX_CONNECTIONS];
    int n = epoll_wait(cl->epfd, evs, (int)cl->nconns, timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return 0;
        cl->why = "epoll_wait failed";
        return -errno;
    }
    uint64_t done = 0;
    for (int i = 0; i < n; i++) {
        client_conn *c = &cl->conns[evs[i].data.u32];
        uint64_t rtt;
        int r = read_echo(cl, c, &rtt);
        if (r < 0) return r;
        if (r == 0) continue;
        done++;
        cl->completed++;
        cl->checksum += c->seq;
        if (cl->recording && cl->nsamples < cl->spec->max_samples) cl->spec->samples[cl->nsamples++] = rtt;
        if (cl->issuing && cl->quota > 0) {
            cl->quota--;
            int rc = send_message(cl, c, c->seq + 1);
            if (rc < 0) return rc;
        }
        if (cl->control.busy) {
            int rc = check_control(cl);
            if (rc < 0) return rc;
        }
    }
    uint64_t now = cbp_now_ns();
    if (done > 0) {
        cbp_beat(done);
        cl->last_progress = now;
    } else if (now - cl->last_progress > STALL_NS) {
        /* nothing for 2 s although messages are out */
        for (uint32_t i = 0; i < cl->nconns; i++)
            if (cl->conns[i].busy) {
                cl->why = "no echo on any busy connection for 2 s";
                return -ETIMEDOUT;
            }
        cl->last_progress = now;
    }
    return 0;
}

static int busy_conns(const client *cl) {
    int n = 0;
    for (uint32_t i = 0; i < cl->nconns; i++) n += cl->conns[i].busy;
    return n;
}

/* Waits (bounded) until no bulk message is out. */
static int drain(client *cl) {
    cl->issuing = 0;
    cl->last_progress = cbp_now_ns();
    while (busy_conns(cl) > 0) {
        int rc = pump(cl, 10);
        if (rc < 0) return rc;
    }
    return 0;
}

static void sleep_until(uint64_t ns) {
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Sends one ping and spins until its echo is back (the warm-up of the control connection). */
static int ping_once(client *cl, uint64_t seq) {
    int rc = send_message(cl, &cl->control, seq);
    while (rc == 0 && cl->control.busy) rc = check_control(cl);
    return rc;
}

static int run(client *cl) {
    cbp_echo_client_spec *spec = cl->spec;
    /* warm-up, unmeasured: one exchange per connection (the server has accepted them all after it) */
    cl->issuing = 0;
    cl->last_progress = cbp_now_ns();
    for (uint32_t i = 0; i < cl->nconns; i++) {
        int rc = send_message(cl, &cl->conns[i], (uint64_t)i << 32);
        if (rc < 0) return rc;
    }
    int rc = drain(cl);
    if (rc < 0) return rc;
    if (cl->control.fd >= 0 && (rc = ping_once(cl, 1ull << 62)) < 0) return rc;
    cl->completed = cl->nsamples = cl->pings_done = 0;

    if (spec->window) spec->window(spec->window_ctx, 0);
    uint64_t start = cbp_now_ns();
    cl->last_progress = start;
    if (cl->control.fd < 0) {
        /* echo: a closed loop per connection until `messages` round trips are done */
        cl->issuing = 1;
        cl->recording = 1;
        cl->quota = spec->messages;
        for (uint32_t i = 0; i < cl->nconns && cl->quota > 0; i++) {
            cl->quota--;
            if ((rc = send_message(cl, &cl->conns[i], ((uint64_t)i << 32) + 1)) < 0) return rc;
        }
        while (cl->completed < spec->messages)
            if ((rc = pump(cl, 100)) < 0) return rc;
    } else {
        /* io-priority: the bulk connections flood while the control connection pings */
        cl->issuing = 1;
        cl->quota = UINT64_MAX;
        for (uint32_t i = 0; i < cl->nconns; i++)
            if ((rc = send_message(cl, &cl->conns[i], ((uint64_t)i << 32) + 1)) < 0) return rc;
        uint64_t next_ping = start + spec->ping_interval_ns;
        uint64_t seq = 1ull << 62;
        while (cl->pings_done < spec->pings) {
            uint64_t now = cbp_now_ns();
            if (!cl->control.busy && now >= next_ping) {
                if ((rc = send_message(cl, &cl->control, ++seq)) < 0) return rc;
                next_ping += spec->ping_interval_ns;
                if (next_ping <= now) next_ping = now + spec->ping_interval_ns; /* never a burst */
            }
            if ((rc = check_control(cl)) < 0) return rc;
            if (cl->nconns > 0) {
                if ((rc = pump(cl, 0)) < 0) return rc;
            } else if (!cl->control.busy && cl->pings_done < spec->pings) {
                sleep_until(next_ping);
            }
        }
    }
    uint64_t end = cbp_now_ns();
    if (spec->window) spec->window(spec->window_ctx, 1);
    cl->elapsed_ns = end - start;
    cl->window_done = cl->completed;
    /* the flood's last messages come back before the connections close (no reset mid-echo) */
    return drain(cl);
}

int cbp_echo_client(cbp_echo_client_spec *spec, cbp_trial *out) {
    spec->failure = NULL;
    if (spec->connections > CBP_ECHO_MAX_CONNECTIONS || spec->message_bytes < 8 ||
        spec->message_bytes > CBP_ECHO_MAX_MESSAGE || (spec->control_port == 0 && spec->connections == 0) ||
        (spec->control_port != 0 && (spec->pings == 0 || spec->ping_interval_ns == 0)))
        return EINVAL;
    int rc = cbp_pin_self(spec->cpu);
    if (rc != 0) return rc;
    pthread_setname_np(pthread_self(), "cbp-echo-client");
    client cl;
    memset(&cl, 0, sizeof cl);
    cl.spec = spec;
    cl.bytes = spec->message_bytes;
    cl.control.fd = -1;
    cl.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (cl.epfd < 0) return errno;
    for (uint32_t i = 0; i < spec->connections; i++) {
        int fd = connect_loopback(spec->port);
        if (fd < 0) {
            cl.why = "connect failed";
            rc = -fd;
            goto out;
        }
        cl.conns[i] = (client_conn){.fd = fd};
        cl.nconns++;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (epoll_ctl(cl.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            rc = errno;
            goto out;
        }
    }
    if (spec->control_port != 0) {
        int fd = connect_loopback(spec->control_port);
        if (fd < 0) {
            cl.why = "connect (control) failed";
            rc = -fd;
            goto out;
        }
        cl.control.fd = fd;
    }
    rc = run(&cl);
    rc = rc < 0 ? -rc : 0;
    if (rc == 0)
        *out = (cbp_trial){.events = cl.nconns > 0 ? cl.window_done : cl.pings_done,
                           .elapsed_ns = cl.elapsed_ns,
                           .checksum = cl.checksum,
                           .samples = cl.nsamples};
out:
    if (rc != 0) spec->failure = cl.why;
    for (uint32_t i = 0; i < cl.nconns; i++) close(cl.conns[i].fd);
    if (cl.control.fd >= 0) close(cl.control.fd);
    close(cl.epfd);
    return rc;
}
