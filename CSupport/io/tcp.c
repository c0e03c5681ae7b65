/*
 * tcp.c — the backend-independent half of TCP sources: a worker's receive buffers and send
 * chunks (made once, at its first listener, on its NUMA node), the listening socket, connection
 * records, the send queue (one send in flight per connection, later sends in order, a short send
 * continued) and the end of a connection (one final CLOSED event, after its last completion).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"

int sp_tcp_pools(sp_worker *w, char *msg, size_t len) {
    sp_io *io = w->io;
    if (io->rbuf) return SP_OK;
    size_t rbytes = (size_t)SP_RECV_BUFFERS * SP_RECV_BUFFER_SIZE;
    size_t cbytes = (size_t)SP_SEND_CHUNKS * sizeof(sp_chunk);
    /* First touch on the worker's thread puts the pages on its node (numa_set_localalloc). */
    io->rbuf = mmap(NULL, rbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    io->chunks = mmap(NULL, cbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    io->rfree = calloc(SP_RECV_BUFFERS, sizeof(uint32_t));
    io->ufree = calloc(SP_UDP_BUFFERS, sizeof(uint32_t));
    io->ubuf = mmap(NULL, (size_t)SP_UDP_BUFFERS * SP_RECV_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (io->ubuf == MAP_FAILED) io->ubuf = NULL;
    if (io->rbuf == MAP_FAILED || io->chunks == MAP_FAILED || !io->rfree || !io->ufree || !io->ubuf) {
        snprintf(msg, len, "worker %u: cannot map %zu KiB of socket buffers: %s", w->id, (rbytes + cbytes) >> 10,
                 strerror(errno));
        if (io->rbuf != MAP_FAILED && io->rbuf) munmap(io->rbuf, rbytes);
        if (io->chunks != MAP_FAILED && io->chunks) munmap(io->chunks, cbytes);
        free(io->rfree);
        free(io->ufree);
        if (io->ubuf) munmap(io->ubuf, (size_t)SP_UDP_BUFFERS * SP_RECV_BUFFER_SIZE);
        io->rbuf = NULL, io->chunks = NULL, io->rfree = NULL, io->ufree = NULL, io->ubuf = NULL;
        return SP_ENOMEM;
    }
    io->pool_bytes = rbytes + cbytes;
    for (uint32_t i = 0; i < SP_SEND_CHUNKS; i++) io->chunks[i].next = i + 1 < SP_SEND_CHUNKS ? i + 1 : SP_NONE;
    io->chunk_free = 0;
    for (uint32_t i = 0; i < SP_RECV_BUFFERS; i++) io->rfree[i] = SP_RECV_BUFFERS - 1 - i;
    io->rfree_n = SP_RECV_BUFFERS;
    for (uint32_t i = 0; i < SP_UDP_BUFFERS; i++) io->ufree[i] = SP_UDP_BUFFERS - 1 - i;
    io->ufree_n = SP_UDP_BUFFERS;
    return w->engine->backend->buf_setup(w, msg, len);
}

void sp_tcp_pools_free(sp_io *io) {
    if (io->rbuf) munmap(io->rbuf, (size_t)SP_RECV_BUFFERS * SP_RECV_BUFFER_SIZE);
    if (io->chunks) munmap(io->chunks, (size_t)SP_SEND_CHUNKS * sizeof(sp_chunk));
    free(io->rfree);
    free(io->ufree);
    if (io->ubuf) munmap(io->ubuf, (size_t)SP_UDP_BUFFERS * SP_RECV_BUFFER_SIZE);
}

int sp_udp_socket(sp_source *s, const sp_source_spec *spec, char *msg, size_t len) {
    const struct sockaddr *sa = spec->addr;
    if (!sa || spec->addr_len < sizeof(struct sockaddr_in) || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
        snprintf(msg, len, "udp: an IPv4 or IPv6 address is needed");
        return SP_EINVAL;
    }
    int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, sa, spec->addr_len) != 0) {
        snprintf(msg, len, "udp bind failed: %s", strerror(errno));
        if (fd >= 0) close(fd);
        return SP_ESYS;
    }
    union {
        struct sockaddr_storage ss;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } local;
    socklen_t ll = sizeof local;
    getsockname(fd, (struct sockaddr *)&local.ss, &ll);
    s->port = ntohs(local.ss.ss_family == AF_INET6 ? local.in6.sin6_port : local.in.sin_port);
    s->fd = fd;
    return SP_OK;
}

/* UDP receive buffers: their own small pool on both backends (io_uring's buffer ring belongs to
 * the kernel until a completion hands one out, and UDP reads with recvfrom). Ids carry SP_UDP_BUF. */
int sp_udp_take_buffer(sp_worker *w, uint32_t *bid) {
    sp_io *io = w->io;
    if (io->ufree_n == 0) return 0;
    *bid = io->ufree[--io->ufree_n] | SP_UDP_BUF;
    return 1;
}

void sp_udp_give_buffer(sp_worker *w, uint32_t bid) {
    sp_io *io = w->io;
    io->ufree[io->ufree_n++] = bid & ~SP_UDP_BUF;
}

int sp_udp_send(sp_worker *w, uint64_t id, const void *data, uint32_t len, const void *addr, uint32_t addr_len) {
    sp_source *s = sp_io_lookup(w, id);
    if (!s || s->kind != SP_SOURCE_UDP || s->state == SP_SRC_CANCELLING) return -ENOENT;
    ssize_t n = sendto(s->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, addr, addr_len);
    return n < 0 ? -errno : (int)n;
}

/* Reads datagrams until EAGAIN into free receive buffers (the sender's address in the buffer's
 * first SP_UDP_ADDR_SPACE bytes), one DATAGRAM event each. Stops, held for a later round, when the
 * lane is full or the buffers ran out (NOBUFS, resumed when a batch gives some back). Both backends
 * call it on readiness (a multishot poll or EPOLLET). */
int sp_udp_read(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    int n = 0;
    for (;;) {
        if (!sp_io_room(w, s, 2)) {
            sp_io_bump(&io->stalled, 1);
            sp_io_hold(io, s);
            return n;
        }
        uint32_t bid;
        if (!sp_udp_take_buffer(w, &bid)) {
            return n + sp_io_out_of_buffers(w, s);
        }
        unsigned char *buf = io->ubuf + (size_t)(bid & ~SP_UDP_BUF) * SP_RECV_BUFFER_SIZE;
        socklen_t alen = SP_UDP_ADDR_SPACE;
        /* MSG_TRUNC: the datagram's real length, so one larger than the buffer is refused (EMSGSIZE)
         * instead of handed over cut short. */
        ssize_t got = recvfrom(s->fd, buf + SP_UDP_ADDR_SPACE, SP_RECV_BUFFER_SIZE - SP_UDP_ADDR_SPACE, MSG_TRUNC,
                               (struct sockaddr *)buf, &alen);
        if (got > SP_RECV_BUFFER_SIZE - SP_UDP_ADDR_SPACE) {
            sp_udp_give_buffer(w, bid);
            n += sp_io_deliver(w, s, -EMSGSIZE, SP_OP_DATAGRAM << 8, 0, 0);
            continue;
        }
        if (got < 0) {
            sp_udp_give_buffer(w, bid);
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) n += sp_io_deliver(w, s, -errno, SP_OP_DATAGRAM << 8, 0, 0);
            return n;
        }
        n += sp_io_deliver_datagram(w, s, (int32_t)got, bid, alen);
    }
}

int sp_tcp_listen_socket(sp_source *s, const sp_source_spec *spec, char *msg, size_t len) {
    const struct sockaddr *sa = spec->addr;
    if (!sa || spec->addr_len < sizeof(struct sockaddr_in) || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) {
        snprintf(msg, len, "listen: an IPv4 or IPv6 address is needed");
        return SP_EINVAL;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(msg, len, "socket failed: %s", strerror(errno));
        return SP_ESYS;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (spec->reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, sa, spec->addr_len) != 0 || listen(fd, spec->backlog ? (int)spec->backlog : 1024) != 0) {
        int err = errno;
        int port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        snprintf(msg, len, "listen on port %d failed: %s; fix: %s", port, strerror(err),
                 err == EADDRINUSE ? "another process holds the port (pick another, or port 0 for any)" : "check the address");
        close(fd);
        return SP_ESYS;
    }
    /* A union, not casts of a sockaddr_storage: reading sin6_port through a cast would access the
     * storage's padding bytes (declared char) as in_port_t; reading a member of the union the
     * kernel filled is defined (C11 6.5.2.3: the bytes are reinterpreted as the member's type). */
    union { struct sockaddr_storage ss; struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6; } local;
    socklen_t ll = sizeof local;
    getsockname(fd, &local.sa, &ll);
    s->port = ntohs(local.ss.ss_family == AF_INET6 ? local.in6.sin6_port : local.in.sin_port);
    s->fd = fd;
    return SP_OK;
}

sp_source *sp_tcp_new_conn(sp_worker *w, sp_source *listener, int fd) {
    sp_source *c = sp_io_alloc(w);
    if (!c) return NULL;
    c->kind = SP_SOURCE_CONN;
    c->lane = listener->lane;
    c->handler_kind = listener->handler_kind;
    c->tag = listener->tag;
    c->fd = fd;
    c->sq_head = c->sq_tail = SP_NONE;
    c->state = SP_SRC_ARMED;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* request/response: no Nagle delay */
    return c;
}

int sp_source_local_port(sp_worker *w, uint64_t id) {
    sp_source *s = sp_io_lookup(w, id);
    return s && (s->kind == SP_SOURCE_LISTEN || s->kind == SP_SOURCE_UDP) ? s->port : -1;
}

/* ---- receive buffers ---------------------------------------------------------------------------- */

void sp_io_return_buffers(sp_worker *w, const sp_slot *slots, uint32_t n) {
    sp_io *io = w->io;
    const sp_backend_ops *b = w->engine->backend;
    uint32_t back = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!(slots[i].flags & SP_SLOT_BUFFER)) continue;
        const sp_io_event *ev = (const sp_io_event *)slots[i].payload;
        if (ev->count & SP_UDP_BUF)
            sp_udp_give_buffer(w, (uint32_t)ev->count);
        else
            b->buf_return(w, (uint32_t)ev->count);
        back++;
    }
    if (!back) return;
    sp_io_bump(&io->lent, (uint32_t)-back);
    b->buf_flush(w);
    /* Receives that stopped for lack of buffers resume now (not on a timer, and never spin). */
    uint32_t i = io->nobufs_head;
    io->nobufs_head = io->nobufs_tail = SP_NONE;
    while (i != SP_NONE) {
        sp_source *s = &io->src[i];
        i = s->next_nobufs;
        s->listed &= (uint8_t)~2u;
        if (s->state == SP_SRC_FREE || (s->kind != SP_SOURCE_CONN && s->kind != SP_SOURCE_UDP) || !s->nobufs) continue;
        s->nobufs = 0;
        sp_io_hold(io, s);
    }
}

/* ---- sends -------------------------------------------------------------------------------------- */

int sp_conn_send(sp_worker *w, uint64_t id, const void *data, uint32_t len, uint64_t *seq) {
    sp_io *io = w->io;
    sp_source *s = sp_io_lookup(w, id);
    if (!s || s->kind != SP_SOURCE_CONN || s->closing || s->state == SP_SRC_CANCELLING) return SP_ENOENT;
    if (len > SP_SEND_MAX) return SP_EINVAL;
    uint32_t need = len ? (len + SP_SEND_CHUNK_SIZE - 1) / SP_SEND_CHUNK_SIZE : 1;
    if (io->chunks_used + need > SP_SEND_CHUNKS) return SP_ENOSPC;
    uint64_t q = s->send_seq++;
    const unsigned char *p = data;
    for (uint32_t i = 0; i < need; i++) {
        uint32_t ci = io->chunk_free;
        sp_chunk *c = &io->chunks[ci];
        io->chunk_free = c->next;
        io->chunks_used++;
        uint32_t part = len - i * SP_SEND_CHUNK_SIZE;
        if (part > SP_SEND_CHUNK_SIZE) part = SP_SEND_CHUNK_SIZE;
        memcpy(c->data, p + (size_t)i * SP_SEND_CHUNK_SIZE, part);
        c->len = part;
        c->off = 0;
        c->last = i + 1 == need;
        c->call_len = len;
        c->seq = q;
        c->next = SP_NONE;
        if (s->sq_tail == SP_NONE)
            s->sq_head = ci;
        else
            io->chunks[s->sq_tail].next = ci;
        s->sq_tail = ci;
    }
    if (seq) *seq = q;
    if (!s->sending) w->engine->backend->conn_send(w, s);
    return SP_OK;
}

static void sp_chunk_pop(sp_io *io, sp_source *s) {
    uint32_t ci = s->sq_head;
    sp_chunk *c = &io->chunks[ci];
    s->sq_head = c->next;
    if (s->sq_head == SP_NONE) s->sq_tail = SP_NONE;
    c->next = io->chunk_free;
    io->chunk_free = ci;
    io->chunks_used--;
}

void sp_tcp_sent(sp_worker *w, sp_source *s, int32_t n) {
    sp_io *io = w->io;
    s->sending = 0;
    if (s->sq_head == SP_NONE) return;
    sp_chunk *c = &io->chunks[s->sq_head];
    if (n < 0) {
        /* The connection cannot send any more: every queued call gets its SENT event with the
         * error (none is dropped silently); the receive side reports how it ended. */
        while (s->sq_head != SP_NONE) {
            c = &io->chunks[s->sq_head];
            if (c->last) sp_io_deliver(w, s, n, SP_OP_SENT << 8, c->seq, 0);
            sp_chunk_pop(io, s);
        }
        if (!s->eof) {
            s->eof = 1;
            s->close_err = n;
        }
        w->engine->backend->conn_stop(w, s);
        sp_tcp_maybe_final(w, s);
        return;
    }
    c->off += (uint32_t)n;
    if (c->off < c->len) sp_io_bump(&io->short_sends, 1); /* finished by the engine, counted */
    if (c->off >= c->len) {
        if (c->last) sp_io_deliver(w, s, (int32_t)c->call_len, SP_OP_SENT << 8, c->seq, 0);
        sp_chunk_pop(io, s);
    }
    if (s->sq_head != SP_NONE) {
        w->engine->backend->conn_send(w, s); /* the rest of a short send, or the next chunk */
        return;
    }
    if (s->closing) w->engine->backend->conn_stop(w, s);
    sp_tcp_maybe_final(w, s);
}

int sp_conn_close(sp_worker *w, uint64_t id) {
    sp_source *s = sp_io_lookup(w, id);
    if (!s || s->kind != SP_SOURCE_CONN || s->closing) return SP_ENOENT;
    s->closing = 1;
    if (!s->sending) w->engine->backend->conn_stop(w, s);
    sp_tcp_maybe_final(w, s);
    return SP_OK;
}

int sp_conn_abort(sp_worker *w, uint64_t id) {
    sp_source *s = sp_io_lookup(w, id);
    if (!s || s->kind != SP_SOURCE_CONN || s->state == SP_SRC_CANCELLING) return SP_ENOENT;
    s->closing = 1;
    struct linger l = {.l_onoff = 1, .l_linger = 0}; /* close(2) sends an RST */
    setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    /* The kernel ends what is in flight: a receive sees EOF, a send blocked on a full socket fails
     * (EPIPE). Queued sends are handed to the kernel, which refuses them at once, so each call gets
     * its SENT event with the error through the usual path (room in the lane checked there). */
    shutdown(s->fd, SHUT_RDWR);
    if (s->sq_head != SP_NONE && !s->sending)
        w->engine->backend->conn_send(w, s);
    else if (!s->sending)
        w->engine->backend->conn_stop(w, s);
    sp_tcp_maybe_final(w, s);
    return SP_OK;
}

void sp_tcp_free_conn(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    while (s->sq_head != SP_NONE) sp_chunk_pop(io, s);
    s->nobufs = 0; /* off the buffer-wait list when its turn comes */
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
}

/* One final CLOSED event once the connection is over (closed by us, or ended by the peer) and
 * nothing of it is in the kernel any more. A full lane retries next round (the held list). */
void sp_tcp_maybe_final(sp_worker *w, sp_source *s) {
    if (!(s->closing || s->eof) || s->sending || s->recv_armed || s->inflight) return;
    if (s->sq_head != SP_NONE && !s->eof) return;
    sp_tcp_free_conn(w, s);
    int32_t err = s->eof ? s->close_err : 0;
    if (!sp_io_deliver(w, s, err, SP_IO_FINAL | (SP_OP_CLOSED << 8), 0, 0)) {
        s->state = SP_SRC_CANCELLING; /* delivered by sp_io_pending as the final event */
        s->close_err = err;
        sp_io_hold((sp_io *)w->io, s);
    }
}
