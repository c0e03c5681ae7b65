/*
 * io.h — I/O sources: the per-worker table of source records, how a completion becomes a slot in
 * its lane, and the half each backend implements (uring_io.c, epoll_io.c). Internal.
 *
 * A source lives on one worker, which alone arms, re-arms, reaps and cancels it. Its id is
 * (generation << 32 | index): a completion or a cancel naming an old generation is recognised
 * and dropped, never handed to a handler. A record is freed only on its final completion.
 */
#ifndef SP_IO_H
#define SP_IO_H

#include <stdint.h>

#include "../engine.h"

enum {
    SP_SRC_FREE = 0,
    SP_SRC_ARMED = 1,      /* a request is in the kernel (or the fd is in the epoll set) */
    SP_SRC_IDLE = 2,       /* between a completion and its re-arm (the next round) */
    SP_SRC_CANCELLING = 3, /* cancel() was called; waiting for the target's final completion */
};

/* user_data / epoll data of a source request: bit 63 set (backend tags are small numbers); bit 62
 * marks a connection's send (its recv has the plain tag). Generations wrap at 2^30. */
#define SP_IO_TAG 0x8000000000000000ull
#define SP_IO_SEND_TAG 0x4000000000000000ull
#define SP_IO_ID_MASK 0x3FFFFFFFFFFFFFFFull
#define SP_IO_CANCEL_TAG 4u /* a cancel request's own completion (skipped on success) */
#define SP_URING_PROVIDE_TAG 6u /* PROVIDE_BUFFERS (below 5.19): | first id << 8 | count << 32 */

typedef struct sp_source {
    uint32_t gen;
    uint8_t kind;  /* SP_SOURCE_* */
    uint8_t state; /* SP_SRC_* */
    uint8_t rearm; /* needs re-arming at the next round (multishot ended, ENOBUFS, timer) */
    uint8_t flags;
    uint32_t lane, handler_kind;
    int fd;            /* fd / timerfd / signal eventfd; -1 for io_uring timers */
    uint32_t events;   /* fd: poll mask */
    uint64_t deadline; /* timer: the next expiry (CLOCK_MONOTONIC ns) */
    uint64_t interval; /* timer: 0 = one shot */
    uint64_t signals;  /* signals: bit signo-1 */
    uint64_t tag;      /* the spec's tag, copied into every event */
    uint32_t next_free;
    uint32_t inflight; /* uring: requests whose final CQE has not come */
    uint32_t held;     /* epoll: readiness seen while the lane was full, delivered next round */
    int64_t ts_sec, ts_nsec; /* uring timers: the deadline as a __kernel_timespec, read at submit */
    /* TCP (listener, connection) */
    uint16_t port;        /* listener: the local port */
    uint8_t closing;      /* close() asked: finish the queued sends, then stop */
    uint8_t eof;          /* the peer ended (EOF or error in close_err): final once nothing is in flight */
    uint8_t nobufs;       /* receiving stopped: no free buffer (resumed when buffers return) */
    uint8_t sending;      /* a send is in flight */
    uint8_t recv_armed;   /* uring: the multishot recv is in the kernel */
    uint8_t listed;       /* on the held list (bit 0) / the buffer-wait list (bit 1); kept across
                             free and reuse, like the links, so a list never loses its tail */
    uint8_t stop_sent;    /* conn_stop ran (once): uring submitted the recv cancel, epoll removed the fd */
    int32_t close_err;
    uint32_t sq_head, sq_tail; /* the send queue: chunk indices, SP_NONE when empty */
    uint64_t send_seq;         /* sequence number of the next send call */
    uint32_t next_held;        /* the held list: sources sp_io_pending comes back to */
    uint32_t next_nobufs;      /* the buffer-wait list: receives resumed when buffers return */
} sp_source;

#define SP_NONE 0xFFFFFFFFu
#define SP_UDP_BUFFERS 64
#define SP_UDP_BUF 0x80000000u /* a buffer id from the UDP pool */

/* A send chunk: part of one send call's bytes, queued on its connection. */
typedef struct sp_chunk {
    uint32_t next;
    uint32_t len, off;
    uint32_t last;     /* the call's last chunk: its completion is the call's SENT event */
    uint32_t call_len; /* on the last chunk: the call's bytes */
    uint32_t pad_;
    uint64_t seq;
    unsigned char data[SP_SEND_CHUNK_SIZE];
} sp_chunk;

typedef struct sp_io {
    sp_source *src;
    uint32_t capacity, free_head, live;
    /* Sources to come back to, each a FIFO list through the records (SP_NONE: empty), so a round
     * visits only those, never the whole table: held (rearm set: a full lane, no SQE, a re-arm)
     * and waiting for receive buffers (nobufs set). A record cleared while listed stays on its
     * list and is skipped when its turn comes. */
    uint32_t held_head, held_tail;
    uint32_t nobufs_head, nobufs_tail;
    uint64_t rearms;        /* multishot requests the kernel ended and we re-armed */
    uint64_t stalled;       /* completions held back because their lane's queue was full */
    uint64_t enters;        /* kernel entries a busy worker made for I/O */
    uint64_t last_poll;     /* epoll: time of the last zero-timeout epoll_wait */
    /* TCP: receive buffers and send chunks, made at the worker's first listener */
    unsigned char *rbuf;    /* SP_RECV_BUFFERS × SP_RECV_BUFFER_SIZE */
    void *br;               /* uring: the provided-buffer ring (group 0) */
    uint32_t *rfree, rfree_n; /* epoll: free buffer ids */
    unsigned char *ubuf;      /* UDP receive buffers (SP_UDP_BUFFERS, both backends) */
    uint32_t *ufree, ufree_n;
    uint32_t lent;          /* buffers out (in events not yet handled) */
    uint32_t returned;      /* uring: buffers added to the ring since the last advance */
    sp_chunk *chunks;
    uint32_t chunk_free, chunks_used;
    uint64_t nobufs;
    uint64_t short_sends;    /* sends the kernel completed short; the engine sent the rest */
    size_t pool_bytes;
    /* control requests from other threads (cancel): a cold path, under a mutex */
    pthread_mutex_t ctl_lock;
    _Atomic uint32_t ctl_pending;
    uint32_t ctl_count;
    uint64_t ctl_cancel[64];
} sp_io;

/* Counters written only by the worker and read by stats from any thread: a relaxed load and store
 * (no read-modify-write on the hot path), atomic so a reader never sees a torn or raced value. */
#define sp_io_bump(p, d) __atomic_store_n((p), __atomic_load_n((p), __ATOMIC_RELAXED) + (d), __ATOMIC_RELAXED)

/* Appends `s` to a list (`bit` in s->listed says it is on it) unless it is on it already. */
static inline void sp_io_list_push(sp_io *io, sp_source *s, uint8_t bit, uint32_t *head, uint32_t *tail,
                                   uint32_t *(*link)(sp_source *)) {
    if (s->listed & bit) return;
    s->listed |= bit;
    uint32_t idx = (uint32_t)(s - io->src);
    *link(s) = SP_NONE;
    if (*tail == SP_NONE)
        *head = idx;
    else
        *link(&io->src[*tail]) = idx;
    *tail = idx;
}
static inline uint32_t *sp_io_held_link(sp_source *s) { return &s->next_held; }
static inline uint32_t *sp_io_nobufs_link(sp_source *s) { return &s->next_nobufs; }

/* Keeps `s` for the next round (a full lane, no SQE, a re-arm): sp_io_pending comes back to it. */
static inline void sp_io_hold(sp_io *io, sp_source *s) {
    s->rearm = 1;
    sp_io_list_push(io, s, 1, &io->held_head, &io->held_tail, sp_io_held_link);
}

/* `s` receives again when a batch gives buffers back (sp_io_return_buffers). */
static inline void sp_io_wait_buffers(sp_io *io, sp_source *s) {
    s->nobufs = 1;
    sp_io_list_push(io, s, 2, &io->nobufs_head, &io->nobufs_tail, sp_io_nobufs_link);
}

/* io.c */
int sp_io_init(sp_worker *w, uint32_t capacity);
sp_source *sp_io_alloc(sp_worker *w);
uint32_t sp_io_pending(sp_worker *w);
/* A receive found no free buffer: counted, reported once (NOBUFS), resumed when buffers return. */
int sp_io_out_of_buffers(sp_worker *w, sp_source *s);
void sp_io_destroy(sp_worker *w);
sp_source *sp_io_lookup(sp_worker *w, uint64_t id); /* NULL for a stale id */
static inline uint64_t sp_io_id(sp_worker *w, sp_source *s) {
    return ((uint64_t)s->gen << 32) | (uint32_t)(s - ((sp_io *)w->io)->src);
}
/* Writes an event for `s` into its lane's local queue. Returns 0 when the queue is full (the
 * caller keeps the completion and retries next round). `final` frees the record. */
int sp_io_deliver(sp_worker *w, sp_source *s, int32_t result, uint32_t flags, uint64_t value, uint64_t count);
int sp_io_has_room(sp_worker *w, sp_source *s);
int sp_io_room(sp_worker *w, sp_source *s, uint32_t k); /* room for k events in its lane */
/* A DATA event lending receive buffer `bid` (returned after the event's batch). */
int sp_io_deliver_data(sp_worker *w, sp_source *s, int32_t n, uint32_t bid);
void sp_tcp_pools_free(sp_io *io);
uint32_t sp_tcp_queued_calls(sp_worker *w, sp_source *s);
void sp_io_free(sp_worker *w, sp_source *s);
/* Timers: given an expiry seen at `now`, the lateness, firings coalesced, and the next deadline. */
uint64_t sp_io_timer_fired(sp_source *s, uint64_t now, uint64_t *lateness, uint64_t *coalesced); /* → deadline */
int sp_io_deliver_ext(sp_worker *w, sp_source *s, int32_t result, uint32_t flags, uint64_t value, uint64_t count,
                      uint64_t extra);
/* Marks queued, unhandled events of `s` stale (their handler call is skipped): none after cancel. */
void sp_io_mark_stale(sp_worker *w, sp_source *s);
/* Runs control requests other threads queued for this worker (cancel). */
void sp_io_take_control(sp_worker *w);

/* The signal owner table (process-wide): signo → the eventfd of the worker that owns it. */
int sp_signals_claim(uint64_t mask, int efd, char *msg, size_t len);
void sp_signals_release(uint64_t mask);
uint64_t sp_signals_take(uint64_t mask); /* pending signals of `mask`, cleared */
void sp_signals_put_back(uint64_t bits);  /* taken but not delivered (a full lane) */
int sp_io_signals_ready(sp_worker *w, sp_source *s); /* the doorbell rang: one event per pending signal */
int sp_io_signal_doorbell(sp_source *s, char *msg, size_t len); /* eventfd + claim, at arm */
void sp_io_worker_exit(sp_worker *w); /* the worker exits: signals back to default, sockets shut down */

/* tcp.c (UDP too) */
int sp_udp_socket(sp_source *s, const sp_source_spec *spec, char *msg, size_t len);
int sp_udp_read(sp_worker *w, sp_source *s);
int sp_udp_take_buffer(sp_worker *w, uint32_t *bid);
void sp_udp_give_buffer(sp_worker *w, uint32_t bid);
int sp_io_deliver_datagram(sp_worker *w, sp_source *s, int32_t n, uint32_t bid, uint32_t addr_len);
int sp_tcp_pools(sp_worker *w, char *msg, size_t len); /* once, at the first listener */
int sp_tcp_listen_socket(sp_source *s, const sp_source_spec *spec, char *msg, size_t len);
sp_source *sp_tcp_new_conn(sp_worker *w, sp_source *listener, int fd);
/* After a batch: its lent buffers go back (lanes.c); connections waiting for buffers resume. */
void sp_io_return_buffers(sp_worker *w, const sp_slot *slots, uint32_t n);
/* A send finished `n` bytes of the queue head (or failed with n < 0): events and the next send. */
void sp_tcp_sent(sp_worker *w, sp_source *s, int32_t n);
/* The connection is done when nothing is in flight and it was closed or the peer ended it. */
void sp_tcp_maybe_final(sp_worker *w, sp_source *s);
void sp_tcp_free_conn(sp_worker *w, sp_source *s);

/* The backends' halves (uring_io.c, epoll_io.c). */
int sp_uring_io_arm(sp_worker *w, sp_source *s, char *msg, size_t len);
int sp_uring_io_rearm(sp_worker *w, sp_source *s);
int sp_uring_io_cancel(sp_worker *w, sp_source *s);
int sp_uring_buf_setup(sp_worker *w, char *msg, size_t len);
void sp_uring_buf_return(sp_worker *w, uint32_t bid);
void sp_uring_buf_flush(sp_worker *w);
void sp_uring_provide_failed(sp_worker *w, uint64_t tag, int32_t res); /* a PROVIDE_BUFFERS CQE */
void sp_uring_conn_send(sp_worker *w, sp_source *s);
void sp_uring_conn_stop(sp_worker *w, sp_source *s);
/* One source CQE: events delivered, or -1 when its lane is full (the CQE stays for next round). */
int sp_uring_io_complete(sp_worker *w, uint64_t tag, int32_t res, uint32_t cflags);
int sp_epoll_io_arm(sp_worker *w, sp_source *s, char *msg, size_t len);
int sp_epoll_io_rearm(sp_worker *w, sp_source *s);
int sp_epoll_io_cancel(sp_worker *w, sp_source *s);
int sp_epoll_buf_setup(sp_worker *w, char *msg, size_t len);
void sp_epoll_buf_return(sp_worker *w, uint32_t bid);
void sp_epoll_buf_flush(sp_worker *w);
void sp_epoll_conn_send(sp_worker *w, sp_source *s);
void sp_epoll_conn_stop(sp_worker *w, sp_source *s);
/* One readiness event of a source: events delivered (a full lane holds it for the next round). */
int sp_epoll_io_ready(sp_worker *w, uint64_t data, uint32_t revents);

#endif
