/*
 * epoll_io.c — the epoll half of I/O sources, for where io_uring is denied: the same sources and
 * events. Timers are timerfds with an absolute deadline re-armed from each firing (as the io_uring
 * half does); fd readiness is EPOLLET (one event per change, like a multishot poll); the signal
 * doorbell is an eventfd. A readiness seen while the source's lane is full is held in the record
 * and delivered at a later round: nothing is dropped.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "io.h"

int sp_epoll_fd(sp_worker *w); /* poll.c */

static int sp_timerfd_set(sp_source *s) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    uint64_t d = s->deadline ? s->deadline : 1; /* 0 would disarm it */
    its.it_value.tv_sec = (time_t)(d / 1000000000ull);
    its.it_value.tv_nsec = (long)(d % 1000000000ull);
    return timerfd_settime(s->fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static uint32_t sp_to_epoll(uint32_t poll_events) {
    uint32_t e = 0;
    if (poll_events & POLLIN) e |= EPOLLIN;
    if (poll_events & POLLOUT) e |= EPOLLOUT;
    if (poll_events & POLLPRI) e |= EPOLLPRI;
    return e;
}

static uint32_t sp_to_poll(uint32_t ev) {
    uint32_t p = 0;
    if (ev & EPOLLIN) p |= POLLIN;
    if (ev & EPOLLOUT) p |= POLLOUT;
    if (ev & EPOLLPRI) p |= POLLPRI;
    if (ev & EPOLLERR) p |= POLLERR;
    if (ev & EPOLLHUP) p |= POLLHUP;
    if (ev & EPOLLRDHUP) p |= POLLRDHUP;
    return p;
}

int sp_epoll_io_arm(sp_worker *w, sp_source *s, char *msg, size_t len) {
    int ep = sp_epoll_fd(w);
    struct epoll_event ev = {.data.u64 = SP_IO_TAG | sp_io_id(w, s)};
    int fd;
    switch (s->kind) {
    case SP_SOURCE_TIMER:
        s->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (s->fd < 0 || sp_timerfd_set(s) != 0) {
            snprintf(msg, len, "timerfd failed: %s", strerror(errno));
            return SP_ESYS;
        }
        ev.events = EPOLLIN;
        fd = s->fd;
        break;
    case SP_SOURCE_FD:
        ev.events = sp_to_epoll(s->events) | EPOLLET;
        fd = s->fd;
        break;
    case SP_SOURCE_LISTEN:
    case SP_SOURCE_UDP:
        ev.events = EPOLLIN | EPOLLET;
        fd = s->fd;
        break;
    default: { /* SP_SOURCE_SIGNALS */
        int rc = sp_io_signal_doorbell(s, msg, len);
        if (rc != SP_OK) return rc;
        ev.events = EPOLLIN;
        fd = s->fd;
    }
    }
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int err = errno;
        if (err == EEXIST) {
            snprintf(msg, len, "fd %d is already watched on worker %u; fix: one watch per fd and worker", fd, w->id);
            return SP_EBUSY;
        }
        snprintf(msg, len, "epoll_ctl(ADD, fd %d) failed: %s", fd, strerror(err));
        return err == EPERM ? SP_EINVAL : SP_ESYS;
    }
    s->state = SP_SRC_ARMED;
    return SP_OK;
}

/* Delivers readiness held back by a full lane (timers and the doorbell are level-triggered and are
 * simply reported again; an EPOLLET fd's edge is kept here). */
static int sp_epoll_accept(sp_worker *w, sp_source *s);
static int sp_epoll_conn_read(sp_worker *w, sp_source *s);

int sp_epoll_io_rearm(sp_worker *w, sp_source *s) {
    if (s->kind == SP_SOURCE_LISTEN) return sp_epoll_accept(w, s);
    if (s->kind == SP_SOURCE_UDP) return sp_udp_read(w, s);
    if (s->kind == SP_SOURCE_CONN) {
        int n = 0;
        if (s->sq_head != SP_NONE && !s->sending) w->engine->backend->conn_send(w, s), n = 1;
        return n + sp_epoll_conn_read(w, s);
    }
    if (!s->held) return 0;
    if (!sp_io_has_room(w, s)) return -1;
    uint32_t held = s->held;
    s->held = 0;
    return sp_io_deliver(w, s, (int32_t)held, 0, 0, 0);
}

int sp_epoll_io_cancel(sp_worker *w, sp_source *s) {
    epoll_ctl(sp_epoll_fd(w), EPOLL_CTL_DEL, s->fd, NULL); /* our timerfd/eventfd is closed at free */
    if (s->held) {
        s->held = 0;
        s->rearm = 0; /* skipped on the held list */
    }
    return 0; /* nothing in flight: the cancelled event comes at the next round */
}

int sp_epoll_io_ready(sp_worker *w, uint64_t data, uint32_t revents) {
    sp_source *s = sp_io_lookup(w, data & ~SP_IO_TAG);
    if (!s || s->state == SP_SRC_CANCELLING) return 0;
    sp_io *io = w->io;
    switch (s->kind) {
    case SP_SOURCE_LISTEN:
        return sp_epoll_accept(w, s);
    case SP_SOURCE_UDP:
        return sp_udp_read(w, s);
    case SP_SOURCE_CONN: {
        int n = 0;
        if ((revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && s->sending) {
            s->sending = 0;
            w->engine->backend->conn_send(w, s);
            n = 1;
        }
        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) n += sp_epoll_conn_read(w, s);
        return n;
    }
    case SP_SOURCE_TIMER: {
        if (!sp_io_has_room(w, s)) {
            sp_io_bump(&io->stalled, 1);
            return 0; /* level-triggered: reported again next round */
        }
        uint64_t expirations;
        if (read(s->fd, &expirations, sizeof expirations) != sizeof expirations) return 0;
        uint64_t late, coalesced;
        uint64_t deadline = sp_io_timer_fired(s, sp_now_ns(), &late, &coalesced);
        if (!s->interval) return sp_io_deliver_ext(w, s, 0, SP_IO_FINAL, late, 0, deadline);
        sp_io_deliver_ext(w, s, 0, 0, late, coalesced, deadline);
        if (sp_timerfd_set(s) != 0) return 1 + sp_io_deliver(w, s, -errno, SP_IO_FINAL, 0, 0);
        return 1;
    }
    case SP_SOURCE_FD:
        if (!sp_io_has_room(w, s)) {
            /* EPOLLET reports an edge once: keep it for the next round. */
            sp_io_hold(io, s);
            s->held |= sp_to_poll(revents);
            sp_io_bump(&io->stalled, 1);
            return 0;
        }
        return sp_io_deliver(w, s, (int32_t)sp_to_poll(revents), 0, 0, 0);
    default: { /* SP_SOURCE_SIGNALS */
        if (!sp_io_has_room(w, s)) {
            sp_io_bump(&io->stalled, 1);
            return 0;
        }
        return sp_io_signals_ready(w, s);
    }
    }
}

/* ---- TCP ------------------------------------------------------------------------------------------ */

/* Keeps a source for the next round (its lane is full, or a buffer is missing). */
static void sp_epoll_hold(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    sp_io_bump(&io->stalled, 1);
    sp_io_hold(io, s);
}

/* EPOLLET: accept until EAGAIN, or until the lane is full (then the rest next round). */
static int sp_epoll_accept(sp_worker *w, sp_source *s) {
    int n = 0;
    for (;;) {
        if (!sp_io_has_room(w, s)) {
            sp_epoll_hold(w, s);
            return n;
        }
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) n += sp_io_deliver(w, s, -errno, SP_OP_ACCEPTED << 8, 0, 0);
            return n;
        }
        sp_source *c = sp_tcp_new_conn(w, s, fd);
        if (!c) {
            close(fd);
            n += sp_io_deliver(w, s, -ENOSPC, SP_OP_ACCEPTED << 8, 0, 0);
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = SP_IO_TAG | sp_io_id(w, c)};
        epoll_ctl(sp_epoll_fd(w), EPOLL_CTL_ADD, fd, &ev); /* reports data already there at once */
        n += sp_io_deliver(w, s, 0, SP_OP_ACCEPTED << 8, sp_io_id(w, c), 0);
    }
}

/* EPOLLET: read until EAGAIN into free receive buffers, one DATA event each; stop (held) when the
 * lane is full or the buffers ran out (NOBUFS, resumed when a batch gives some back). */
static int sp_epoll_conn_read(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    int n = 0;
    while (!s->closing && !s->eof) {
        if (!sp_io_room(w, s, 2)) { /* a DATA event, and room for what ends the read */
            sp_epoll_hold(w, s);
            return n;
        }
        if (io->rfree_n == 0) {
            return n + sp_io_out_of_buffers(w, s);
        }
        uint32_t bid = io->rfree[--io->rfree_n];
        ssize_t got = recv(s->fd, io->rbuf + (size_t)bid * SP_RECV_BUFFER_SIZE, SP_RECV_BUFFER_SIZE, 0);
        if (got > 0) {
            n += sp_io_deliver_data(w, s, (int32_t)got, bid);
            continue;
        }
        io->rfree[io->rfree_n++] = bid;
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return n;
        s->eof = 1; /* EOF, or an error: the connection is over once its sends are done */
        s->close_err = got < 0 ? -errno : 0;
        w->engine->backend->conn_stop(w, s);
        sp_tcp_maybe_final(w, s);
        return n + 1;
    }
    return n;
}

int sp_epoll_buf_setup(sp_worker *w, char *msg, size_t len) {
    (void)w, (void)msg, (void)len;
    return SP_OK; /* the free list tcp.c made is the whole mechanism */
}

void sp_epoll_buf_return(sp_worker *w, uint32_t bid) {
    sp_io *io = w->io;
    io->rfree[io->rfree_n++] = bid;
}

void sp_epoll_buf_flush(sp_worker *w) { (void)w; }

/* Sends the queue head with send(2) until it is empty or the socket is full (then EPOLLOUT). */
void sp_epoll_conn_send(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    while (s->sq_head != SP_NONE && !s->sending) {
        /* A finished call is a SENT event: room for it (and for what an error would add). */
        if (!sp_io_room(w, s, sp_tcp_queued_calls(w, s) + 1)) {
            sp_epoll_hold(w, s);
            return;
        }
        sp_chunk *c = &io->chunks[s->sq_head];
        ssize_t put = send(s->fd, c->data + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            s->sending = 1; /* the socket is full: EPOLLOUT continues it */
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                     .data.u64 = SP_IO_TAG | sp_io_id(w, s)};
            epoll_ctl(sp_epoll_fd(w), EPOLL_CTL_MOD, s->fd, &ev);
            return;
        }
        s->sending = 1;
        sp_tcp_sent(w, s, put < 0 ? -errno : (int32_t)put); /* clears `sending`; may send the next */
        return;
    }
}

void sp_epoll_conn_stop(sp_worker *w, sp_source *s) {
    if (s->stop_sent) return;
    s->stop_sent = 1;
    epoll_ctl(sp_epoll_fd(w), EPOLL_CTL_DEL, s->fd, NULL);
}
