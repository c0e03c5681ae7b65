/*
 * echo_server.c — the raw TCP echo servers of the `echo` and `io-priority` scenarios: one thread,
 * pinned to the CPU Spindle's worker runs on, serving every connection of one or two loopback
 * listeners from one loop, written as the fastest idiomatic C for each mechanism:
 *
 *  - io_uring (CBP_ECHO_URING): its own ring (SINGLE_ISSUER | DEFER_TASKRUN where the kernel has
 *    them), a multishot accept per listener, a multishot recv per connection into a provided-buffer
 *    ring, and the echo sent straight from the received buffer (no copy), which goes back to the
 *    buffer ring when the send completes; a short send is continued. One io_uring_enter per loop
 *    iteration submits the sends and waits for the next completions.
 *  - epoll (CBP_ECHO_EPOLL): level-triggered EPOLLIN, accept4 until EAGAIN, one recv and one send
 *    per readable connection (a send that does not take everything keeps the rest and waits for
 *    EPOLLOUT, reading nothing from that connection meanwhile).
 *
 * Both look at their stop flag at least every 50 ms, so stopping is bounded.
 */
#include "peers_internal.h"
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

#define ECHO_MAX_FD 4096     /* connection fds at or above this are refused (closed at once) */
#define ECHO_BUF 4096        /* bytes per receive buffer */
#define URING_BUFFERS 512    /* provided buffers (a power of two) */
#define URING_BGID 7         /* the buffer group */
#define STOP_POLL_MS 50      /* the loops look at the stop flag at least this often */

struct cbp_echo_server {
    cbp_echo_kind kind;
    int cpu;
    uint32_t nlisteners;
    int listen_fd[CBP_ECHO_MAX_LISTENERS];
    uint16_t port[CBP_ECHO_MAX_LISTENERS];
    pthread_t thread;
    int tid;    /* the loop thread's kernel id (for syscall counting) */
    int ready;  /* 0: setting up; 1: serving; -errno: setup failed */
    int stop;   /* set by cbp_echo_server_stop */
    int error;  /* errno the loop ended with (0: stopped) */
    uint64_t echoed; /* receive completions echoed */
    /* connections open (so the loop can close them when it stops) */
    unsigned char open[ECHO_MAX_FD];
};

static int listen_loopback(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* request/response: no Nagle delay */
}

static void close_all(cbp_echo_server *s) {
    for (int fd = 0; fd < ECHO_MAX_FD; fd++)
        if (s->open[fd]) {
            close(fd);
            s->open[fd] = 0;
        }
}

static void announce(cbp_echo_server *s, int ready) {
    /* named, so `perf stat --per-thread` and `top -H` tell the servers apart */
    pthread_setname_np(pthread_self(), s->kind == CBP_ECHO_URING ? "cbp-echo-uring" : "cbp-echo-epoll");
    s->tid = (int)syscall(SYS_gettid);
    __atomic_store_n(&s->ready, ready, __ATOMIC_RELEASE);
}

/* ---- epoll ------------------------------------------------------------------------------------ */

#define LISTENER_TAG (1ull << 63)

typedef struct pending {
    uint32_t off, len;
    unsigned char *bytes;
} pending;

static void epoll_close(cbp_echo_server *s, int epfd, int fd, pending *pend) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    s->open[fd] = 0;
    free(pend[fd].bytes);
    pend[fd] = (pending){0};
}

/* Sends what is pending on `fd`; 1 when all of it went, 0 when some is left, -1 on an error. */
static int epoll_flush(int fd, pending *p) {
    while (p->off < p->len) {
        ssize_t w = send(fd, p->bytes + p->off, p->len - p->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        p->off += (uint32_t)w;
    }
    return 1;
}

static void *epoll_loop(void *arg) {
    cbp_echo_server *s = arg;
    cbp_pin_self(s->cpu);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    pending *pend = calloc(ECHO_MAX_FD, sizeof *pend);
    if (epfd < 0 || !pend) {
        int e = errno ? errno : ENOMEM;
        if (epfd >= 0) close(epfd);
        free(pend);
        announce(s, -e);
        return NULL;
    }
    for (uint32_t i = 0; i < s->nlisteners; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER_TAG | i};
        epoll_ctl(epfd, EPOLL_CTL_ADD, s->listen_fd[i], &ev);
    }
    announce(s, 1);
    unsigned char buf[ECHO_BUF];
    struct epoll_event evs[64];
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        int n = epoll_wait(epfd, evs, 64, STOP_POLL_MS);
        if (n < 0) {
            if (errno == EINTR) continue;
            s->error = errno;
            break;
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag & LISTENER_TAG) {
                int lfd = s->listen_fd[tag & 0xff];
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break; /* EAGAIN: accepted them all (or a transient error) */
                    if (fd >= ECHO_MAX_FD) {
                        close(fd);
                        continue;
                    }
                    nodelay(fd);
                    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)fd};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                    s->open[fd] = 1;
                }
                continue;
            }
            int fd = (int)tag;
            pending *p = &pend[fd];
            if (p->len > p->off) {
                /* waiting for room: only EPOLLOUT is asked for */
                int f = epoll_flush(fd, p);
                if (f < 0) {
                    epoll_close(s, epfd, fd, pend);
                } else if (f == 1) {
                    p->off = p->len = 0;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)fd};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (r <= 0) { /* EOF or an error (reset): the connection ends */
                epoll_close(s, epfd, fd, pend);
                continue;
            }
            s->echoed++;
            ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w == r) continue;
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                epoll_close(s, epfd, fd, pend);
                continue;
            }
            /* a short send (never seen with these message sizes): keep the rest, wait for room */
            size_t done = w < 0 ? 0 : (size_t)w;
            if (!p->bytes) p->bytes = malloc(ECHO_BUF);
            if (!p->bytes) {
                epoll_close(s, epfd, fd, pend);
                continue;
            }
            memcpy(p->bytes, buf + done, (size_t)r - done);
            p->off = 0;
            p->len = (uint32_t)((size_t)r - done);
            struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)fd};
            epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
        }
    }
    for (int fd = 0; fd < ECHO_MAX_FD; fd++) free(pend[fd].bytes);
    free(pend);
    close_all(s);
    close(epfd);
    return NULL;
}

/* ---- io_uring --------------------------------------------------------------------------------- */

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };

static inline uint64_t ud(uint64_t op, uint64_t v) { return op << 56 | v; }

typedef struct uring_state {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    unsigned char *bufs;
    int send_fd[URING_BUFFERS];
    uint32_t send_off[URING_BUFFERS], send_len[URING_BUFFERS];
} uring_state;

/* An SQE, submitting what is queued first when the submission queue is full. */
static struct io_uring_sqe *sqe_get(uring_state *u) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    return sqe;
}

static int arm_accept(uring_state *u, cbp_echo_server *s, uint32_t i) {
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) return -EBUSY;
    io_uring_prep_multishot_accept(sqe, s->listen_fd[i], NULL, NULL, SOCK_CLOEXEC);
    sqe->user_data = ud(OP_ACCEPT, i);
    return 0;
}

static int arm_recv(uring_state *u, int fd) {
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) return -EBUSY;
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    sqe->user_data = ud(OP_RECV, (uint64_t)fd);
    return 0;
}

static int send_buf(uring_state *u, uint32_t bid) {
    struct io_uring_sqe *sqe = sqe_get(u);
    if (!sqe) return -EBUSY;
    io_uring_prep_send(sqe, u->send_fd[bid], u->bufs + (size_t)bid * ECHO_BUF + u->send_off[bid],
                       u->send_len[bid] - u->send_off[bid], MSG_NOSIGNAL);
    sqe->user_data = ud(OP_SEND, bid);
    return 0;
}

static void return_buf(uring_state *u, uint32_t bid) {
    io_uring_buf_ring_add(u->br, u->bufs + (size_t)bid * ECHO_BUF, ECHO_BUF, (unsigned short)bid,
                          io_uring_buf_ring_mask(URING_BUFFERS), 0);
    io_uring_buf_ring_advance(u->br, 1);
}

static void uring_close(cbp_echo_server *s, int fd) {
    if (fd >= 0 && fd < ECHO_MAX_FD && s->open[fd]) {
        close(fd);
        s->open[fd] = 0;
    }
}

static void uring_cqe(uring_state *u, cbp_echo_server *s, struct io_uring_cqe *cqe) {
    uint64_t op = cqe->user_data >> 56, v = cqe->user_data & ((1ull << 56) - 1);
    int res = cqe->res;
    int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    switch (op) {
    case OP_ACCEPT:
        if (res >= 0) {
            if (res >= ECHO_MAX_FD) {
                close(res);
            } else {
                nodelay(res);
                s->open[res] = 1;
                if (arm_recv(u, res) != 0) uring_close(s, res);
            }
        }
        if (!more && !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) arm_accept(u, s, (uint32_t)v);
        break;
    case OP_RECV: {
        int fd = (int)v;
        if (res > 0) {
            uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
            u->send_fd[bid] = fd;
            u->send_off[bid] = 0;
            u->send_len[bid] = (uint32_t)res;
            s->echoed++;
            if (send_buf(u, bid) != 0) return_buf(u, bid);
            if (!more) arm_recv(u, fd); /* the kernel ended the multishot (e.g. CQ overflow): re-arm */
        } else if (res == -ENOBUFS) {
            if (!more) arm_recv(u, fd); /* buffers come back as sends complete */
        } else if (!more) {
            uring_close(s, fd); /* EOF (0) or an error: the connection ends */
        }
        break;
    }
    case OP_SEND: {
        uint32_t bid = (uint32_t)v;
        if (res > 0 && u->send_off[bid] + (uint32_t)res < u->send_len[bid]) {
            u->send_off[bid] += (uint32_t)res; /* a short send: continue it */
            if (send_buf(u, bid) == 0) break;
        }
        return_buf(u, bid);
        break;
    }
    default:
        break;
    }
}

static int uring_setup(uring_state *u) {
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(512, &u->ring, &p);
    if (rc == -EINVAL) {
        struct io_uring_params plain = {0};
        rc = io_uring_queue_init_params(512, &u->ring, &plain);
    }
    if (rc < 0) return rc;
    u->br_bytes = URING_BUFFERS * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    u->bufs = mmap(NULL, (size_t)URING_BUFFERS * ECHO_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || u->bufs == MAP_FAILED) {
        rc = -ENOMEM;
        goto fail;
    }
    u->br = mem;
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)mem, .ring_entries = URING_BUFFERS, .bgid = URING_BGID};
    rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (rc != 0) goto fail;
    io_uring_buf_ring_init(u->br);
    for (uint32_t i = 0; i < URING_BUFFERS; i++)
        io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * ECHO_BUF, ECHO_BUF, (unsigned short)i,
                              io_uring_buf_ring_mask(URING_BUFFERS), (int)i);
    io_uring_buf_ring_advance(u->br, URING_BUFFERS);
    return 0;
fail:
    if (mem != MAP_FAILED) munmap(mem, u->br_bytes);
    if (u->bufs != MAP_FAILED) munmap(u->bufs, (size_t)URING_BUFFERS * ECHO_BUF);
    io_uring_queue_exit(&u->ring);
    return rc;
}

static void *uring_loop(void *arg) {
    cbp_echo_server *s = arg;
    cbp_pin_self(s->cpu);
    uring_state *u = calloc(1, sizeof *u);
    if (!u) {
        announce(s, -ENOMEM);
        return NULL;
    }
    int rc = uring_setup(u); /* on this thread: it is the ring's single issuer */
    if (rc < 0) {
        free(u);
        announce(s, rc);
        return NULL;
    }
    for (uint32_t i = 0; i < s->nlisteners; i++) arm_accept(u, s, i);
    announce(s, 1);
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        struct io_uring_cqe *cqe = NULL;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = STOP_POLL_MS * 1000000ll};
        /* submit the sends and re-arms queued so far and wait, in one io_uring_enter */
        rc = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
            s->error = -rc;
            break;
        }
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&u->ring, head, cqe) {
            uring_cqe(u, s, cqe);
            seen++;
        }
        io_uring_cq_advance(&u->ring, seen);
    }
    io_uring_queue_exit(&u->ring); /* cancels what is in flight */
    munmap(u->br, u->br_bytes);
    munmap(u->bufs, (size_t)URING_BUFFERS * ECHO_BUF);
    free(u);
    close_all(s);
    return NULL;
}

/* ---- start and stop --------------------------------------------------------------------------- */

int cbp_echo_server_start(cbp_echo_kind kind, int cpu, uint32_t listeners, cbp_echo_server **out) {
    if (listeners < 1 || listeners > CBP_ECHO_MAX_LISTENERS) return EINVAL;
    cbp_echo_server *s = calloc(1, sizeof *s);
    if (!s) return ENOMEM;
    s->kind = kind;
    s->cpu = cpu;
    s->nlisteners = listeners;
    for (uint32_t i = 0; i < listeners; i++) s->listen_fd[i] = -1;
    int rc = 0;
    for (uint32_t i = 0; i < listeners; i++) {
        int fd = listen_loopback(&s->port[i]);
        if (fd < 0) {
            rc = -fd;
            goto fail;
        }
        s->listen_fd[i] = fd;
    }
    rc = pthread_create(&s->thread, NULL, kind == CBP_ECHO_URING ? uring_loop : epoll_loop, s);
    if (rc != 0) goto fail;
    /* bounded: the loop announces itself (or its setup error) at once */
    uint64_t deadline = cbp_now_ns() + 2000000000ull;
    int ready;
    while ((ready = __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) == 0 && cbp_now_ns() < deadline) usleep(100);
    if (ready != 1) {
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
        pthread_join(s->thread, NULL);
        rc = ready < 0 ? -ready : ETIMEDOUT;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    for (uint32_t i = 0; i < listeners; i++)
        if (s->listen_fd[i] >= 0) close(s->listen_fd[i]);
    free(s);
    return rc;
}

uint16_t cbp_echo_server_port(const cbp_echo_server *s, uint32_t listener) {
    return listener < s->nlisteners ? s->port[listener] : 0;
}

int cbp_echo_server_tid(const cbp_echo_server *s) { return s->tid; }

uint64_t cbp_echo_server_echoed(const cbp_echo_server *s) { return s->echoed; }

int cbp_echo_server_stop(cbp_echo_server *s) {
    if (!s) return 0;
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    pthread_join(s->thread, NULL); /* bounded: the loop looks at the flag every STOP_POLL_MS */
    for (uint32_t i = 0; i < s->nlisteners; i++) close(s->listen_fd[i]);
    int rc = s->error;
    free(s);
    return rc;
}
