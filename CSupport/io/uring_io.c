/*
 * uring_io.c — the io_uring half of I/O sources. Timers are IORING_OP_TIMEOUT with an absolute
 * CLOCK_MONOTONIC deadline, re-armed from the completion with the next deadline of the period (the
 * schedule never drifts and a late worker's missed firings are counted exactly, see io.c); fd
 * readiness and the signal doorbell are multishot POLL_ADD, re-armed (and counted) when the
 * kernel ends them. Re-arm SQEs are only queued here: they go to the kernel with the round's one
 * io_uring_enter (or the sleep's), never in a syscall of their own.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "../uring_compat.h"
#include "io.h"

struct io_uring *sp_uring_ring(sp_worker *w); /* uring.c */
int sp_uring_multishot_poll(sp_worker *w);
int sp_uring_multishot_recv(sp_worker *w);
int sp_uring_buf_ring(sp_worker *w);

static void sp_uring_provide(sp_worker *w);

static inline uint64_t sp_tag(sp_worker *w, sp_source *s) { return SP_IO_TAG | sp_io_id(w, s); }

static struct io_uring_sqe *sp_sqe(struct io_uring *ring) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        io_uring_submit(ring); /* a full SQ: rare (entries from the profile), one extra enter */
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

/* Queues the source's request. Returns 0, or -1 when no SQE could be had (re-armed next round). */
static int sp_uring_request(sp_worker *w, sp_source *s) {
    struct io_uring *ring = sp_uring_ring(w);
    struct io_uring_sqe *sqe = sp_sqe(ring);
    if (!sqe) return -1;
    int multi = sp_uring_multishot_recv(w);
    if (s->kind == SP_SOURCE_LISTEN) {
        /* Below 6.0 single-shot forms: a CQE without F_MORE is re-armed like an ended multishot. */
        if (multi)
            io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        else
            io_uring_prep_accept(sqe, s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else if (s->kind == SP_SOURCE_CONN) {
        /* Multishot recv into the worker's provided buffers (group 0): one CQE per arrival. Below
         * 5.19 (no buffer ring: buffers provided with PROVIDE_BUFFERS) a single-shot recv. */
        if (multi && sp_uring_buf_ring(w))
            io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
        else
            io_uring_prep_recv(sqe, s->fd, NULL, SP_RECV_BUFFER_SIZE, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
        io_uring_sqe_set_data64(sqe, sp_tag(w, s));
        s->recv_armed = 1;
        s->state = SP_SRC_ARMED;
        return 0;
    } else if (s->kind == SP_SOURCE_TIMER) {
        s->ts_sec = (int64_t)(s->deadline / 1000000000ull);
        s->ts_nsec = (int64_t)(s->deadline % 1000000000ull);
        /* The kernel copies the timespec when the SQE is submitted; it lives in the record. */
        io_uring_prep_timeout(sqe, (struct __kernel_timespec *)&s->ts_sec, 0, IORING_TIMEOUT_ABS);
    } else {
        unsigned mask = s->kind == SP_SOURCE_SIGNALS ? POLLIN : s->events;
        /* Below 5.13 a single-shot poll: its one CQE (no F_MORE) is re-armed like an ended multishot. */
        if (sp_uring_multishot_poll(w))
            io_uring_prep_poll_multishot(sqe, s->fd, mask);
        else
            io_uring_prep_poll_add(sqe, s->fd, mask);
    }
    io_uring_sqe_set_data64(sqe, sp_tag(w, s));
    s->inflight++;
    s->state = SP_SRC_ARMED;
    return 0;
}

int sp_uring_io_arm(sp_worker *w, sp_source *s, char *msg, size_t len) {
    if (s->kind == SP_SOURCE_SIGNALS) {
        int rc = sp_io_signal_doorbell(s, msg, len);
        if (rc != SP_OK) return rc;
    }
    if (sp_uring_request(w, s) != 0) {
        snprintf(msg, len, "no submission queue entry: the ring is full; fix: raise io_uring.entries");
        return SP_ENOSPC;
    }
    return SP_OK;
}

int sp_uring_io_rearm(sp_worker *w, sp_source *s) {
    if (s->kind == SP_SOURCE_CONN && (s->closing || s->eof || s->recv_armed)) return 0;
    if (s->kind == SP_SOURCE_UDP) return sp_udp_read(w, s); /* held by a full lane or missing buffers */
    if (sp_uring_request(w, s) != 0) return -1;
    return 0;
}

int sp_uring_io_cancel(sp_worker *w, sp_source *s) {
    if (s->inflight == 0) return 0;
    struct io_uring_sqe *sqe = sp_sqe(sp_uring_ring(w));
    if (!sqe) return 0; /* cannot happen after a submit; treated as gone (its CQE is dropped as stale) */
    if (s->kind == SP_SOURCE_TIMER)
        io_uring_prep_timeout_remove(sqe, sp_tag(w, s), 0);
    else
        io_uring_prep_cancel64(sqe, sp_tag(w, s), 0);
    io_uring_sqe_set_data64(sqe, SP_IO_CANCEL_TAG);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return 1;
}

/* A connection's recv or send completion. */
static int sp_uring_conn_complete(sp_worker *w, sp_source *s, int send, int32_t res, uint32_t cflags) {
    sp_io *io = w->io;
    if (send) {
        /* An error answers every queued call: room for all of them first. */
        if (res < 0 && !sp_io_room(w, s, sp_tcp_queued_calls(w, s) + 1)) {
            sp_io_bump(&io->stalled, 1);
            return -1;
        }
        sp_tcp_sent(w, s, res);
        return 1;
    }
    int final = !(cflags & IORING_CQE_F_MORE);
    if (final) s->recv_armed = 0;
    if (res > 0 && (cflags & IORING_CQE_F_BUFFER)) {
        sp_io_deliver_data(w, s, res, cflags >> IORING_CQE_BUFFER_SHIFT);
        if (final && !s->closing && !s->eof) {
            /* The kernel ended the multishot recv: re-armed, counted (a single-shot one is not). */
            if (sp_uring_multishot_recv(w) && sp_uring_buf_ring(w)) sp_io_bump(&io->rearms, 1);
            if (sp_uring_request(w, s) != 0) sp_io_hold(io, s);
        }
        return 1;
    }
    if (res == -ENOBUFS) {
        /* The buffer ring ran dry (ENOBUFS ends a multishot recv): counted, reported, and the
         * recv is re-armed when a batch gives buffers back — not on a timer, never spinning. */
        sp_io_bump(&io->nobufs, 1);
        if (!s->nobufs) sp_io_wait_buffers(io, s);
        sp_io_deliver(w, s, -ENOBUFS, SP_OP_NOBUFS << 8, 0, 0);
        if (!io->br) sp_uring_provide(w); /* ids a failed PROVIDE_BUFFERS kept */
        if (io->lent == 0 && !s->rearm) { /* nothing out to come back: try again next round */
            s->nobufs = 0;
            sp_io_hold(io, s);
        }
        return 1;
    }
    if (res == -ECANCELED && (s->closing || s->eof)) {
        sp_tcp_maybe_final(w, s);
        return 1;
    }
    /* EOF (0) or an error (reset, …): the connection is over once nothing is in flight. */
    if (!s->eof) {
        s->eof = 1;
        s->close_err = res < 0 ? res : 0;
    }
    if (s->recv_armed) w->engine->backend->conn_stop(w, s);
    sp_tcp_maybe_final(w, s);
    return 1;
}

int sp_uring_io_complete(sp_worker *w, uint64_t tag, int32_t res, uint32_t cflags) {
    sp_source *s = sp_io_lookup(w, tag & SP_IO_ID_MASK);
    if (!s) {
        /* A late completion of a freed record: dropped, never handed to a handler. A buffer it
         * carries goes back to the ring. */
        if (cflags & IORING_CQE_F_BUFFER) {
            sp_uring_buf_return(w, cflags >> IORING_CQE_BUFFER_SHIFT);
            sp_uring_buf_flush(w);
        }
        return 0;
    }
    if (!sp_io_has_room(w, s)) {
        sp_io_bump(&((sp_io *)w->io)->stalled, 1);
        return -1; /* keep the CQE: nothing is dropped */
    }
    if (s->kind == SP_SOURCE_CONN) return sp_uring_conn_complete(w, s, (tag & SP_IO_SEND_TAG) != 0, res, cflags);
    if (s->kind == SP_SOURCE_LISTEN && s->state == SP_SRC_CANCELLING && res >= 0) close(res); /* accepted as it was cancelled */
    if (s->kind == SP_SOURCE_LISTEN && s->state != SP_SRC_CANCELLING) {
        int final = !(cflags & IORING_CQE_F_MORE);
        if (final && s->inflight) s->inflight--;
        sp_io *io = w->io;
        if (res >= 0) {
            sp_source *c = sp_tcp_new_conn(w, s, res);
            if (!c) {
                close(res);
                sp_io_deliver(w, s, -ENOSPC, SP_OP_ACCEPTED << 8, 0, 0); /* refused: the table is full */
            } else {
                if (sp_uring_request(w, c) != 0) sp_io_hold(io, c); /* no SQE: its recv next round */
                sp_io_deliver(w, s, 0, SP_OP_ACCEPTED << 8, sp_io_id(w, c), 0);
            }
        } else {
            sp_io_deliver(w, s, res, SP_OP_ACCEPTED << 8, 0, 0); /* e.g. -EMFILE: reported, goes on */
        }
        if (final) {
            sp_io_bump(&io->rearms, 1);
            if (sp_uring_request(w, s) != 0) sp_io_hold(io, s);
        }
        return 1;
    }
    int final = !(cflags & IORING_CQE_F_MORE);
    if (final && s->inflight) s->inflight--;
    if (s->state == SP_SRC_CANCELLING) {
        /* Cancel is not a barrier: the target still posts its final CQE. That one ends it. */
        if (final && s->inflight == 0) return sp_io_deliver(w, s, 0, SP_IO_FINAL | SP_IO_CANCELLED, 0, 0);
        return 0;
    }
    sp_io *io = w->io;
    switch (s->kind) {
    case SP_SOURCE_TIMER: {
        if (res != -ETIME) return sp_io_deliver(w, s, res < 0 ? res : -EIO, SP_IO_FINAL, 0, 0);
        uint64_t late, coalesced;
        uint64_t deadline = sp_io_timer_fired(s, sp_now_ns(), &late, &coalesced);
        if (!s->interval) return sp_io_deliver_ext(w, s, 0, SP_IO_FINAL, late, 0, deadline);
        sp_io_deliver_ext(w, s, 0, 0, late, coalesced, deadline);
        if (sp_uring_request(w, s) != 0) sp_io_hold(io, s);
        return 1;
    }
    case SP_SOURCE_UDP:
        if (res < 0) return sp_io_deliver(w, s, res, SP_IO_FINAL, 0, 0);
        {
            int n = sp_udp_read(w, s);
            if (final) goto rearm;
            return n;
        }
    case SP_SOURCE_FD:
        if (res < 0) return sp_io_deliver(w, s, res, SP_IO_FINAL, 0, 0); /* e.g. -EBADF: ends it */
        sp_io_deliver(w, s, res, 0, 0, 0);
        break;
    default: /* SP_SOURCE_SIGNALS */
        if (res < 0) return sp_io_deliver(w, s, res, SP_IO_FINAL, 0, 0);
        {
            int n = sp_io_signals_ready(w, s);
            if (final) goto rearm;
            return n;
        }
    }
    if (!final) return 1;
rearm:
    /* The kernel ended the multishot (CQ overflow, or its own reasons): re-arm, counted. */
    sp_io_bump(&io->rearms, 1);
    if (sp_uring_request(w, s) != 0) sp_io_hold(io, s);
    return 1;
}

/* ---- TCP: the provided-buffer ring, sends, stopping a connection ------------------------------ */

int sp_uring_buf_setup(sp_worker *w, char *msg, size_t len) {
    sp_io *io = w->io;
    if (!sp_uring_buf_ring(w)) {
        /* Below 5.19: the same buffers given to the kernel with PROVIDE_BUFFERS (5.7); io->rfree
         * (epoll's free list, unused here) holds the ids waiting to be provided again. */
        for (uint32_t i = 0; i < SP_RECV_BUFFERS; i++) io->rfree[i] = i;
        io->rfree_n = SP_RECV_BUFFERS;
        sp_uring_buf_flush(w);
        return SP_OK;
    }
    size_t bytes = (size_t)SP_RECV_BUFFERS * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        snprintf(msg, len, "worker %u: cannot map the buffer ring: %s", w->id, strerror(errno));
        return SP_ENOMEM;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)mem;
    reg.ring_entries = SP_RECV_BUFFERS;
    reg.bgid = 0;
    int rc = io_uring_register_buf_ring(sp_uring_ring(w), &reg, 0);
    if (rc != 0) {
        munmap(mem, bytes);
        snprintf(msg, len, "worker %u: io_uring buffer ring registration failed: %s; needs Linux 5.19, fix: backend = epoll",
                 w->id, strerror(-rc));
        return SP_ESYS;
    }
    io->br = mem;
    io_uring_buf_ring_init(io->br);
    for (uint32_t i = 0; i < SP_RECV_BUFFERS; i++) sp_uring_buf_return(w, i);
    sp_uring_buf_flush(w);
    return SP_OK;
}

void sp_uring_buf_return(sp_worker *w, uint32_t bid) {
    sp_io *io = w->io;
    if (!io->br) { /* provided again at the flush */
        io->rfree[io->rfree_n++] = bid;
        return;
    }
    io_uring_buf_ring_add(io->br, io->rbuf + (size_t)bid * SP_RECV_BUFFER_SIZE, SP_RECV_BUFFER_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(SP_RECV_BUFFERS), (int)io->returned++);
}

/* Below 5.19: the returned ids go back with PROVIDE_BUFFERS, one SQE per run of consecutive ids
 * (at most one per buffer), submitted with the round's enter. Its CQE says only a failure apart
 * (sp_uring_provide_failed): the ids are kept and provided again. */
static void sp_uring_provide(sp_worker *w) {
    sp_io *io = w->io;
    while (io->rfree_n) {
        uint32_t last = io->rfree_n - 1, first = io->rfree[last], n = 1;
        while (n <= last && io->rfree[last - n] == first - n) n++; /* a run pushed in order */
        first -= n - 1;
        struct io_uring_sqe *sqe = sp_sqe(sp_uring_ring(w));
        if (!sqe) return; /* the rest at the next flush */
        io_uring_prep_provide_buffers(sqe, io->rbuf + (size_t)first * SP_RECV_BUFFER_SIZE, SP_RECV_BUFFER_SIZE, (int)n, 0,
                                      (int)first);
        io_uring_sqe_set_data64(sqe, SP_URING_PROVIDE_TAG | (uint64_t)first << 8 | (uint64_t)n << 32);
        io->rfree_n -= n;
    }
}

void sp_uring_provide_failed(sp_worker *w, uint64_t tag, int32_t res) {
    if (res >= 0) return;
    sp_io *io = w->io;
    uint32_t first = (uint32_t)(tag >> 8) & 0xFFFFFFu, n = (uint32_t)(tag >> 32) & 0xFFFFu;
    for (uint32_t i = 0; i < n && io->rfree_n < SP_RECV_BUFFERS; i++) io->rfree[io->rfree_n++] = first + i;
}

void sp_uring_buf_flush(sp_worker *w) {
    sp_io *io = w->io;
    if (!io->br) {
        sp_uring_provide(w);
        return;
    }
    if (!io->returned) return;
    io_uring_buf_ring_advance(io->br, (int)io->returned); /* one release store for the batch */
    io->returned = 0;
}

void sp_uring_conn_send(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    if (s->sq_head == SP_NONE) return;
    struct io_uring_sqe *sqe = sp_sqe(sp_uring_ring(w));
    if (!sqe) {
        sp_io_hold(io, s);
        return;
    }
    sp_chunk *c = &io->chunks[s->sq_head];
    /* One send in flight per connection: two could complete out of order. MSG_NOSIGNAL: a peer
     * that went away is an EPIPE event, not a SIGPIPE. */
    io_uring_prep_send(sqe, s->fd, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, sp_tag(w, s) | SP_IO_SEND_TAG);
    s->sending = 1;
    w->sends_queued++;
}

void sp_uring_conn_stop(sp_worker *w, sp_source *s) {
    if (!s->recv_armed || s->stop_sent) return;
    struct io_uring_sqe *sqe = sp_sqe(sp_uring_ring(w));
    if (!sqe) return;
    io_uring_prep_cancel64(sqe, sp_tag(w, s), 0);
    io_uring_sqe_set_data64(sqe, SP_IO_CANCEL_TAG);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    s->stop_sent = 1; /* cancel sent once; the recv's final CQE (-ECANCELED) ends it */
}
