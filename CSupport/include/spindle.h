/*
 * spindle.h — the one public header of the Spindle engine core (module CSpindle).
 *
 * Opaque handles, plain structs, negative errno-style error codes. Swift sees only this
 * header: liburing stays behind it (it clashes with swift-system's io_uring definitions).
 */
#ifndef SPINDLE_H
#define SPINDLE_H

#if !defined(__linux__)
#error "Spindle supports Linux only: it is built on io_uring, epoll, eventfd and libnuma."
#endif

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits -------------------------------------------------------------------------------- */

#define SP_MAX_WORKERS 256
#define SP_MAX_LANES 8
#define SP_LANE_NAME_MAX 32 /* bytes including the terminating NUL */
#define SP_SLOT_SIZE 64
#define SP_INLINE_MAX 48 /* payload bytes in a slot */
#define SP_INLINE_ALIGN 16
#define SP_MAX_CPUS 4096
#define SP_MAX_SOURCES 4096 /* I/O sources per worker */

/* ---- errors -------------------------------------------------------------------------------- */

typedef enum sp_error {
    SP_OK = 0,
    SP_ELANE_FULL = -1,     /* the lane's ring has no room (on_full = reject, or a worker on a block lane) */
    SP_ESTOPPED = -2,       /* the engine is shutting down or has stopped */
    SP_EBAD_WORKER = -3,    /* destination worker id out of range */
    SP_EBAD_LANE = -4,      /* lane index out of range */
    SP_ETIMEDOUT = -5,      /* a block lane stayed full until the deadline */
    SP_EBATCH_TOO_LARGE = -6, /* post_batch larger than the lane's capacity */
    SP_EINVAL = -7,         /* invalid configuration (see the message) */
    SP_ENOMEM = -8,         /* allocation failed */
    SP_EPIN = -9,           /* a worker could not pin itself to its CPU */
    SP_EURING = -10,        /* io_uring could not be set up (and the epoll fallback was not allowed) */
    SP_ESYS = -11,          /* another system call failed at start (see the message) */
    SP_EWORKER_THREAD = -12, /* the call is refused from a worker thread (shutdown) */
    SP_EDROPPED = -13,      /* not an error: the lane's policy dropped the (newest) event */
    SP_ENOENT = -14,        /* no such source (its final event was already delivered) */
    SP_EBUSY = -15,         /* the signal has another owner, or the fd is already watched here */
    SP_ENOSPC = -16,        /* the worker's source table is full */
} sp_error;

/** A static, human description of an sp_error code. */
const char *sp_strerror(int code);

/* ---- configuration (mirrored by Swift's Engine.Configuration) ------------------------------ */

typedef enum sp_lane_policy { SP_POLICY_STRICT = 0, SP_POLICY_WEIGHTED = 1 } sp_lane_policy;
typedef enum sp_on_full { SP_ON_FULL_REJECT = 0, SP_ON_FULL_DROP = 1, SP_ON_FULL_BLOCK = 2 } sp_on_full;
typedef enum sp_numa_policy { SP_NUMA_LOCAL = 0, SP_NUMA_INTERLEAVE = 1, SP_NUMA_NONE = 2 } sp_numa_policy;
typedef enum sp_backend { SP_BACKEND_AUTO = 0, SP_BACKEND_IO_URING = 1, SP_BACKEND_EPOLL = 2, SP_BACKEND_MANUAL = 3 } sp_backend;
/* SP_BACKEND_MANUAL: what sp_engine_backend reports for a manual engine (never valid in a config). */

typedef struct sp_lane_config {
    char name[SP_LANE_NAME_MAX];
    uint32_t policy;      /* sp_lane_policy */
    uint32_t budget;      /* strict: events per round, 1..65536 */
    uint32_t weight;      /* weighted: 1..1024; quantum = weight * max_batch */
    uint32_t capacity;    /* ring slots, power of two, 64..1<<22 */
    uint32_t on_full;     /* sp_on_full */
    uint32_t max_batch;   /* events per dispatch, 1..1024, <= capacity */
    uint64_t block_timeout_ns; /* block lanes: longest a foreign post waits; 0 = until shutdown */
} sp_lane_config;

typedef struct sp_config {
    uint32_t worker_count;          /* 1..SP_MAX_WORKERS */
    uint32_t lane_count;            /* 1..SP_MAX_LANES */
    uint16_t cpus[SP_MAX_WORKERS];  /* CPU of worker i (distinct) */
    uint32_t numa_policy;           /* sp_numa_policy */
    uint32_t backend;               /* sp_backend */
    uint64_t spin_ns;               /* busy-poll time before sleeping, 0..1 s */
    uint32_t uring_entries;         /* SQ entries, power of two, 8..32768 */
    uint32_t uring_flags;           /* SP_URING_WANT_* bits */
    uint64_t eager_ring_bytes;      /* create every pair's SPSC rings at start while their total stays below this */
    uint64_t slow_handler_ns;       /* a batch taking longer than this is counted as slow (0 = off) */
    sp_lane_config lanes[SP_MAX_LANES];
} sp_config;

#define SP_URING_WANT_DEFER_TASKRUN 0x1u /* SINGLE_ISSUER | DEFER_TASKRUN when the kernel has it */
#define SP_URING_WANT_COOP_TASKRUN 0x2u  /* COOP_TASKRUN where DEFER_TASKRUN is missing */

/** Fills `cfg` with the embedded default for this host: every CPU this process may run on
 *  (at most SP_MAX_WORKERS), four lanes critical/high/normal/bulk, capacity 4096, reject,
 *  max batch 32, spin 50 µs. */
void sp_config_host_default(sp_config *cfg);

/** Checks every field's range and every cross-field rule. Returns SP_OK or SP_EINVAL with one line
 *  (key, value, rule, fix) written into `msg`. Host rules (CPUs present and allowed) are checked too
 *  when `check_host` is non-zero. */
int sp_config_validate(const sp_config *cfg, int check_host, char *msg, size_t msg_len);

/* ---- slots --------------------------------------------------------------------------------- */

/* One ring slot: a cache line. `seq` is used by the MPSC ring only (Vyukov sequence). Rings are
 * page-aligned arrays of slots, so every slot starts a cache line and its payload (offset 16) is
 * 16-byte aligned. (No alignment attribute here: Swift's importer drops over-aligned structs.)
 * The payload is bytes in mapped ring memory (no declared type): a post memcpy's a value in, which
 * gives those bytes the value's type (C11 6.5p6), and it is read back as that same type (the
 * engine's sp_io_event; in Swift a raw load of the BitwiseCopyable event or the box pointer). */
typedef struct sp_slot {
    uint64_t seq;
    uint32_t kind;   /* handler index from registration */
    uint32_t flags;  /* SP_SLOT_BOXED: payload holds a retained pointer */
    unsigned char payload[SP_INLINE_MAX];
} sp_slot;
_Static_assert(sizeof(sp_slot) == SP_SLOT_SIZE, "a slot is one cache line");

#define SP_SLOT_BOXED 0x1u
#define SP_SLOT_RELEASED 0x2u /* boxed payload already released at shutdown */

/* ---- engine -------------------------------------------------------------------------------- */

typedef struct sp_engine sp_engine;
typedef struct sp_worker sp_worker;

/** Called once per batch on a worker thread: `count` slots of one lane, contiguous in memory.
 *  Returns (handled << 32) | failed: how many slots it consumed (all of them, or fewer when a
 *  weighted lane's batch stops early because a strict lane has work — see
 *  sp_worker_urgent) and how many of those handlers threw. */
#define SP_DISPATCH_PREEMPTIBLE 0x80000000u /* or-ed into `lane`: the batch may stop early (see above) */
typedef uint64_t (*sp_dispatch_fn)(void *context, sp_worker *worker, uint32_t lane, const sp_slot *slots,
                                   uint32_t count);
/** Called on each worker thread after pinning, before start() returns (build per-worker state). */
typedef void (*sp_worker_hook_fn)(void *context, sp_worker *worker, uint32_t worker_id);
/** Releases one boxed payload (a post that was rejected/dropped is released by the caller instead). */
typedef void (*sp_release_fn)(void *context, const sp_slot *slot);
/** The watchdog: a batch of `count` events of worker `worker`'s lane `lane`, the first of handler
 *  kind `first_kind`, has been running for `running_ns`, past the slow-batch threshold, and has not
 *  returned yet. Called once per such batch, on the engine's watchdog thread, while the handler
 *  still runs. */
typedef void (*sp_stall_fn)(void *context, uint32_t worker, uint32_t lane, uint32_t first_kind, uint32_t count,
                            uint64_t running_ns);

typedef struct sp_callbacks {
    void *context;
    sp_dispatch_fn dispatch;
    sp_worker_hook_fn worker_started; /* may be NULL */
    sp_worker_hook_fn worker_stopping; /* may be NULL; on the worker thread, after its last batch */
    sp_release_fn release;            /* may be NULL when no event is boxed */
    sp_stall_fn stalled;              /* may be NULL: no watchdog thread (see sp_stall_fn) */
} sp_callbacks;

/** Creates and starts an engine. Returns only after every worker has pinned itself and set up its
 *  backend (or failed): on failure returns NULL, `*err` holds the code and `msg` one line. */
sp_engine *sp_engine_start(const sp_config *cfg, const sp_callbacks *cb, int *err, char *msg, size_t msg_len);

/** Starts shutdown: foreign posts get SP_ESTOPPED from now on; workers drain every lane (handlers
 *  may still post) and exit when all lanes are empty and no handler runs, or at the deadline
 *  (CLOCK_MONOTONIC ns, 0 = none). Blocks until the workers have exited. Idempotent. Refused from a
 *  worker thread of this engine (SP_EWORKER_THREAD). */
int sp_engine_shutdown(sp_engine *e, uint64_t deadline_ns);

/** Stops the engine now, without draining: foreign posts get SP_ESTOPPED from now on, workers exit
 *  after the batch in progress, as when a shutdown deadline passes. A pending sp_engine_shutdown
 *  returns as soon as they have exited; a later one returns at once (it still joins the workers and
 *  counts what was left as pending). Callable from any thread, never blocks; idempotent. */
void sp_engine_abort(sp_engine *e);

/** Retunes a running engine: lane budgets and weights, spin time and the slow-batch threshold are
 *  taken by each worker at its next round boundary. Any other difference from the running
 *  configuration (CPUs, lane count/names/policies, capacities, batch sizes, full-lane policies,
 *  backend, NUMA policy) is refused with SP_EINVAL and one line in `msg`. */
int sp_engine_retune(sp_engine *e, const sp_config *cfg, char *msg, size_t msg_len);

/** Frees everything. Releases boxed payloads never handled (once). The engine must be shut down. */
void sp_engine_destroy(sp_engine *e);

uint32_t sp_engine_worker_count(const sp_engine *e);
uint32_t sp_engine_lane_count(const sp_engine *e);
const sp_config *sp_engine_config(const sp_engine *e);
/** Bytes of ring memory allocated (at start, plus pairs created later). */
uint64_t sp_engine_ring_bytes(const sp_engine *e);
/** Backend in use: SP_BACKEND_IO_URING or SP_BACKEND_EPOLL. */
uint32_t sp_engine_backend(const sp_engine *e);
/** Why io_uring is not in use ("" when it is): for the one log line of the epoll fallback. */
const char *sp_engine_backend_note(const sp_engine *e);
/** io_uring features found by the probe on worker 0 (SP_FEAT_* bits). */
uint32_t sp_engine_features(const sp_engine *e);

#define SP_FEAT_SINGLE_ISSUER 0x1u
#define SP_FEAT_DEFER_TASKRUN 0x2u
#define SP_FEAT_COOP_TASKRUN 0x4u
#define SP_FEAT_MSG_RING 0x8u
#define SP_FEAT_MULTISHOT_POLL 0x10u /* IORING_POLL_ADD_MULTI (5.13); below it polls are re-armed per event */
#define SP_FEAT_BUF_RING 0x20u /* provided-buffer rings (5.19, probed by registering one); below it each
                                  receive is a single-shot recv into a buffer the worker picks */
#define SP_FEAT_MULTISHOT_RECV 0x40u /* multishot recv (6.0) and accept (5.19); below, single-shot forms
                                        re-armed after every completion */

/** For tests: makes the io_uring backend of engines created afterwards act as on an older kernel
 *  (SP_FEAT_MULTISHOT_POLL, SP_FEAT_BUF_RING, SP_FEAT_MULTISHOT_RECV bits withheld), so the
 *  degraded forms run here; SP_TEST_NO_PROVIDE_BUFFERS makes the opcode probe miss an opcode.
 *  Process-wide; 0 restores the probe's answer. Returns the previous value. */
uint32_t sp_test_set_uring_withheld(uint32_t features);
#define SP_TEST_NO_PROVIDE_BUFFERS 0x80000000u

/* ---- posting ------------------------------------------------------------------------------- */

/* Destinations: a worker id, or one of these. */
#define SP_DEST_SPREAD 0xFFFFFFFFu

/** Maps a key to a worker: a fixed 64-bit mixer, stable across processes and runs. */
uint32_t sp_key_worker(uint64_t key, uint32_t worker_count);

/** Posts one event: copies `len` (<= 48) bytes of `payload` into a slot. From a worker thread of this
 *  engine it takes that worker's SPSC ring (or its local queue when `dest` is itself); from any other
 *  thread the destination's MPSC ring. Returns SP_OK, SP_EDROPPED, or a negative error. On error or
 *  drop the caller still owns (and must release) a boxed payload. */
int sp_post(sp_engine *e, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags, const void *payload,
            uint32_t len);

/** Posts `count` events of one kind, `stride` bytes apart, all or nothing, one publish. */
int sp_post_batch(sp_engine *e, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags, const void *payloads,
                  size_t stride, uint32_t len, uint32_t count);

/** Which worker `dest` names for the calling thread (resolves SP_DEST_SPREAD); for error reports. */
uint32_t sp_resolve_dest(sp_engine *e, uint32_t dest);

/* From inside a handler (on worker `w`'s thread). dest == SP_DEST_SELF posts to w's local queue. */
#define SP_DEST_SELF 0xFFFFFFFEu
int sp_worker_post(sp_worker *w, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags, const void *payload,
                   uint32_t len);

/** sp_worker_post for `count` events of one kind, `stride` bytes apart: all or nothing, one publish. */
int sp_worker_post_batch(sp_worker *w, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags,
                         const void *payloads, size_t stride, uint32_t len, uint32_t count);

uint32_t sp_worker_id(const sp_worker *w);
uint32_t sp_worker_cpu(const sp_worker *w);
sp_engine *sp_worker_engine(sp_worker *w);
/** The Swift side's per-worker data (set in worker_started). */
void *sp_worker_userdata(const sp_worker *w);
void sp_worker_set_userdata(sp_worker *w, void *data);

/** The worker of `e` running on the calling thread, or NULL. */
sp_worker *sp_current_worker(const sp_engine *e);

/* ---- I/O sources ------------------------------------------------------------------------------
 * A source lives on one worker: its completions enter that worker's queue of the source's lane as
 * events of the source's handler kind, and the scheduler treats them like posts. Every outcome is
 * an event; the last one carries SP_IO_FINAL (a one-shot timer's firing, an error that ends it, or
 * the `cancelled` event that follows a cancel). */

typedef enum sp_source_kind {
    SP_SOURCE_TIMER = 1,
    SP_SOURCE_FD = 2,
    SP_SOURCE_SIGNALS = 3,
    SP_SOURCE_LISTEN = 4, /* a TCP listener; its connections' events go to the same handler and lane */
    SP_SOURCE_CONN = 5,   /* a connection the engine accepted (never given to sp_worker_add_source) */
    SP_SOURCE_UDP = 6,    /* a bound UDP socket: one DATAGRAM event per datagram received */
} sp_source_kind;

typedef struct sp_source_spec {
    uint32_t kind;         /* sp_source_kind */
    uint32_t lane;         /* the lane its events enter */
    uint32_t handler_kind; /* the registered handler its events go to */
    int32_t fd;            /* SP_SOURCE_FD: kept open by the caller until the final event */
    uint32_t events;       /* SP_SOURCE_FD: POLLIN, POLLOUT, POLLPRI (readiness is edge-like: one
                              event per change, as io_uring's multishot poll and EPOLLET report it) */
    uint32_t pad_;
    uint64_t first_ns;     /* SP_SOURCE_TIMER: first expiry, CLOCK_MONOTONIC ns (absolute) */
    uint64_t interval_ns;  /* SP_SOURCE_TIMER: period; 0 = one shot */
    uint64_t signals;      /* SP_SOURCE_SIGNALS: bit (signo - 1) per signal; each signal has one owner */
    const void *addr;      /* SP_SOURCE_LISTEN: a struct sockaddr_in / sockaddr_in6 to bind */
    uint32_t addr_len;
    uint32_t backlog;      /* SP_SOURCE_LISTEN: listen(2) backlog */
    uint32_t reuse_port;   /* SP_SOURCE_LISTEN: SO_REUSEPORT (one listener per worker on one port) */
    uint32_t pad2_;
    uint64_t tag;          /* copied into every event of the source (e.g. which key a timer expires) */
} sp_source_spec;

/* The payload of a source's event: 40 bytes, inline in the slot. */
typedef struct sp_io_event {
    uint64_t source; /* the source id */
    int32_t result;  /* timer: 0; fd: the poll revents; signals: the signal number; < 0: -errno */
    uint32_t flags;  /* SP_IO_* */
    uint64_t value;  /* timer: lateness in ns (from the deadline to the reap) */
    uint64_t count;  /* timer: firings coalesced into this one because the worker fell behind */
    uint64_t reserved; /* timer: the latest deadline this firing stands for (CLOCK_MONOTONIC ns) */
    uint64_t tag;      /* the tag the source was added with (sp_source_spec.tag) */
} sp_io_event;
_Static_assert(sizeof(sp_io_event) <= SP_INLINE_MAX, "an I/O event travels inline in a slot");

#define SP_IO_FINAL 0x1u     /* no event of this source follows */
#define SP_IO_CANCELLED 0x2u /* the event that ends a cancelled source */
#define SP_IO_STALE 0x4u     /* queued before cancel(): its handler is not called (counted handled) */
/* TCP events: the operation in bits 8..15 of `flags`. */
#define SP_IO_OP(flags) (((flags) >> 8) & 0xffu)
enum {
    SP_OP_NONE = 0,
    SP_OP_ACCEPTED = 1, /* source: the listener; value: the new connection's id */
    SP_OP_DATA = 2,     /* source: the connection; result: bytes; value: their address; count: buffer id */
    SP_OP_CLOSED = 3,   /* final: result 0 (EOF, or closed by us) or -errno (reset, …) */
    SP_OP_SENT = 4,     /* result: the bytes of one send call, or -errno; value: its sequence number */
    SP_OP_NOBUFS = 5,   /* the buffer ring ran dry: receiving resumes when buffers return (counted) */
    SP_OP_DATAGRAM = 6, /* source: the UDP socket; result: bytes; value: their address; count: buffer id;
                           reserved: the sender's address (a sockaddr_in or _in6 in the same buffer) */
};
#define SP_UDP_ADDR_SPACE 32 /* bytes at the start of a receive buffer that hold the sender's address */
#define SP_SLOT_BUFFER 0x4u /* the slot lends a receive buffer (id in the payload's count), returned after its batch */

/** Receive buffers and send chunks of a worker, allocated at its first listener. */
#define SP_RECV_BUFFERS 256
#define SP_RECV_BUFFER_SIZE 16384
#define SP_SEND_CHUNKS 256
#define SP_SEND_CHUNK_SIZE 16384
#define SP_SEND_MAX (4 * SP_SEND_CHUNK_SIZE) /* bytes of one send call */

/** Queues `len` bytes (copied) on connection `conn` of worker `w`, from w's thread. Sends go out in
 *  order, one in flight per connection; a short send is continued by the engine; the handler gets
 *  one SP_OP_SENT event per call, with its sequence number (`*seq`). SP_ENOENT: no such
 *  connection (closed); SP_ENOSPC: the worker's send chunks are all queued (wait for SENT events);
 *  SP_EINVAL: len over SP_SEND_MAX. */
int sp_conn_send(sp_worker *w, uint64_t conn, const void *data, uint32_t len, uint64_t *seq);
/** Sends one datagram from UDP source `sock` of worker `w` to `addr` (sendto, non-blocking, from w's
 *  thread). Returns the bytes sent or a negative errno (-EAGAIN: the socket buffer is full). */
int sp_udp_send(sp_worker *w, uint64_t sock, const void *data, uint32_t len, const void *addr, uint32_t addr_len);
/** Closes connection `conn` after its queued sends: one final SP_OP_CLOSED event follows. */
int sp_conn_close(sp_worker *w, uint64_t conn);
/** Resets connection `conn` now, for a peer that stopped reading: the peer gets an RST
 *  (SO_LINGER 0), queued sends are not sent — each call still gets its SP_OP_SENT event, with an
 *  error — and one final SP_OP_CLOSED event follows, so its send chunks come back at once. */
int sp_conn_abort(sp_worker *w, uint64_t conn);
/** The local port of listener `id` on worker `w` (after it was armed). */
int sp_source_local_port(sp_worker *w, uint64_t id);

/** Adds a source on worker `w`, from w's own thread (a handler, or the worker_started hook). Returns
 *  SP_OK and its id, or an error with one line in `msg` (SP_EINVAL, SP_EBUSY, SP_ENOSPC, SP_ESYS). */
int sp_worker_add_source(sp_worker *w, const sp_source_spec *spec, uint64_t *id, char *msg, size_t len);

/** Cancels a source of worker `w` from w's thread: no event of it is handled after this returns
 *  except exactly one final SP_IO_CANCELLED event. SP_ENOENT when its final event already came. */
int sp_worker_cancel_source(sp_worker *w, uint64_t id);

/** Cancels a source from any thread: on the worker's thread as sp_worker_cancel_source; from another
 *  thread the request is queued to the worker (woken if asleep) and the final SP_IO_CANCELLED
 *  event says when it took effect. SP_ESTOPPED after shutdown began. */
int sp_engine_cancel_source(sp_engine *e, uint32_t worker, uint64_t id);

typedef struct sp_io_stats {
    uint64_t live;    /* sources armed on the worker */
    uint64_t rearms;  /* multishot requests the kernel ended and the engine re-armed */
    uint64_t stalled; /* completions held back a round because their lane's queue was full */
    uint64_t enters;  /* io_uring_enter / epoll_wait calls made by a busy worker for I/O */
    uint64_t nobufs;  /* receives stopped because the buffer ring was empty (resumed when buffers returned) */
    uint64_t buffers_lent; /* receive buffers in handlers' hands or queued now */
    uint64_t short_sends;  /* sends the kernel completed short (the engine sent the rest) */
} sp_io_stats;

int sp_engine_io_stats(const sp_engine *e, uint32_t worker, sp_io_stats *out);

/* ---- counting ------------------------------------------------------------------------------ */

typedef struct sp_lane_stats {
    uint64_t enqueued; /* accepted into a ring */
    uint64_t rejected; /* the post returned an error */
    uint64_t dropped;  /* accepted by a drop lane's policy and discarded (the newest event) */
    uint64_t handled;  /* handler returned or threw */
    uint64_t failed;   /* handler threw */
    uint64_t pending;  /* read from ring indices */
} sp_lane_stats;

/** Counts of (worker, lane). Exact at quiescence; while running never off by more than a batch. */
int sp_engine_lane_stats(const sp_engine *e, uint32_t worker, uint32_t lane, sp_lane_stats *out);

typedef struct sp_worker_stats {
    uint64_t rounds;
    uint64_t batches;
    uint64_t sleeps;         /* times the worker went to sleep in the kernel */
    uint64_t wakeups_sent;   /* wake syscalls this worker made for others (MSG_RING or eventfd) */
    uint64_t slow_batches;   /* batches over slow_handler_ns */
    uint64_t pairs_created;  /* SPSC rings created lazily by this worker as a producer */
    uint32_t sleeping;       /* the sleep flag now: 1 = asleep (or about to be) and not yet woken */
    uint32_t pad_;
} sp_worker_stats;

int sp_engine_worker_stats(const sp_engine *e, uint32_t worker, sp_worker_stats *out);

/** Foreign-thread wake syscalls made for worker `worker` (eventfd writes). */
uint64_t sp_engine_foreign_wakeups(const sp_engine *e, uint32_t worker);

/* ---- timers: batch time and sampled queueing latency (SpindleMetrics) --------------------------
 * Off by default: then the hot path pays one predictable branch per batch and per post. */

#define SP_SAMPLE_SHIFT_MAX 20

/** Turns timing on, once, for the engine's life: each worker, from its next round boundary, times
 *  every batch (two CLOCK_MONOTONIC reads) and, for one post in 2^`sample_shift` per ring (the
 *  post at ring position p with (p + 1) mod 2^shift == 0, counting from the ring's first post),
 *  the time from its enqueue to the start of the batch that handles it. Idle workers are woken to
 *  take it. Allocates the records (cold; callable from any thread but a worker of this engine).
 *  SP_OK; again with the same shift: SP_OK, nothing changes; another shift or one above
 *  SP_SAMPLE_SHIFT_MAX: SP_EINVAL; SP_ENOMEM. */
int sp_engine_enable_timing(sp_engine *e, uint32_t sample_shift);

/** The sample shift timing runs with, or -1 when it is off. */
int32_t sp_engine_timing_shift(const sp_engine *e);

typedef struct sp_timing_stats {
    uint32_t active;            /* the worker has taken timing (its batches are timed from then on) */
    uint32_t pad_;
    uint64_t batches;           /* batches timed (buffered + lost) */
    uint64_t batches_lost;      /* timed, but the buffer was full (the sampler fell behind) */
    uint64_t latencies;         /* sampled events measured (buffered + lost) */
    uint64_t latencies_lost;
    uint64_t latencies_missed;  /* a sampled position whose producer had not yet seen timing on */
} sp_timing_stats;

/** Counts of (worker, lane)'s timers (zeros while timing is off). SP_EBAD_WORKER, SP_EBAD_LANE. */
int sp_engine_timing_stats(const sp_engine *e, uint32_t worker, uint32_t lane, sp_timing_stats *out);

#define SP_TIMER_BATCH 0
#define SP_TIMER_LATENCY 1
/** Moves up to `max` buffered durations (ns, oldest first) of (worker, lane)'s timer `which`
 *  (SP_TIMER_BATCH or SP_TIMER_LATENCY) into `out`; returns how many (0 while timing is off).
 *  Drains are serialised (one at a time per engine); each duration is returned once. */
uint32_t sp_engine_timing_drain(sp_engine *e, uint32_t worker, uint32_t lane, uint32_t which, uint64_t *out,
                                uint32_t max);

/* ---- testing --------------------------------------------------------------------------------- */

/** Called by a worker that is about to sleep, after it published its sleep flag and found its
 *  rings empty, just before the backend's wait: the window in which a producer's wake-up must not
 *  be lost. `sleep_no` counts this worker's sleeps from 0. For tests only (a process-wide hook, read
 *  once per sleep); NULL removes it. */
typedef void (*sp_sleep_hook)(void *context, uint32_t worker, uint64_t sleep_no);
void sp_test_set_sleep_hook(sp_sleep_hook hook, void *context);

/* ---- manual engine (SpindleTesting) ------------------------------------------------------------
 * The real engine's workers, lanes, rings and scheduler with no thread: the caller's thread runs
 * one worker's scheduler round at a time, and timers run on a clock the caller moves. Nothing here
 * touches a real engine's loop. Timers are the only I/O source a manual engine accepts (any other
 * is refused with SP_EINVAL and a message); host rules (CPUs present and allowed) are not checked,
 * so a production configuration can be tested on any machine. Not thread-safe: one thread drives
 * it (posts from other threads are accepted into the MPSC rings as usual). */

/** Creates a manual engine: validates `cfg` (without host rules), builds every worker's state on
 *  the calling thread (worker_started with the worker as the current one), clock at `now_ns`.
 *  NULL on failure, with `*err` and one line in `msg`. Stop and free it like any engine
 *  (sp_engine_shutdown drains it on the calling thread, then sp_engine_destroy). */
sp_engine *sp_engine_start_manual(const sp_config *cfg, const sp_callbacks *cb, uint64_t now_ns, int *err, char *msg,
                                  size_t msg_len);

/** One scheduler round of worker `worker` on the calling thread, exactly as its thread would run
 *  it: control requests (cancels), the round (strict lanes, then weighted lanes by DRR, bounded
 *  batches), then the timers due at the engine's clock enter their lanes (in deadline order) —
 *  handled at the next round, as a real worker reaps completions after its round. `*handled`:
 *  events handled; `*delivered`: timer events that entered a lane. SP_EINVAL: not a manual
 *  engine; SP_EBAD_WORKER; SP_EWORKER_THREAD: called from one of its handlers; SP_ESTOPPED: after
 *  shutdown. */
int sp_manual_round(sp_engine *e, uint32_t worker, uint32_t *handled, uint32_t *delivered);

/** Sets a manual engine's clock (ns; never moves back: an earlier value is ignored). */
void sp_manual_set_now(sp_engine *e, uint64_t now_ns);

/** The earliest deadline of a timer armed on any worker of a manual engine (UINT64_MAX: none). */
uint64_t sp_manual_next_deadline(const sp_engine *e);

/** Copies up to `max` of the slots pending in (worker, lane) of a manual engine into `out`, in
 *  ring order source by source (the worker's own queue, foreign posts, then each peer worker's
 *  ring). Returns how many are pending (may exceed `max`). Boxed payloads are copied as pointers,
 *  still owned by the ring. */
uint32_t sp_manual_lane_slots(const sp_engine *e, uint32_t worker, uint32_t lane, sp_slot *out, uint32_t max);

/** How many of the events pending in (worker, lane) of a manual engine carry a queueing-latency
 *  stamp (sp_engine_enable_timing): the per-post work of latency sampling, counted. */
uint32_t sp_manual_lane_stamps(const sp_engine *e, uint32_t worker, uint32_t lane);

/** The worker `worker` of a manual engine (for reading its userdata between rounds), or NULL. */
sp_worker *sp_manual_worker(const sp_engine *e, uint32_t worker);

/** The clock timers of worker `w`'s engine run on: CLOCK_MONOTONIC ns, or a manual engine's
 *  clock. Timer deadlines (sp_source_spec.first_ns) are absolute on this clock. */
uint64_t sp_worker_now_ns(const sp_worker *w);
/** Fault injection, for tests: the `nth` next operation (0 = the next one) of kind `fault`, counted
 *  process-wide from this call, fails as if the system had refused it; `nth` < 0 disarms. Checked on
 *  cold paths only (start, a pair ring's first use). SP_FAULT_MAP: a ring or worker mapping
 *  (ENOMEM); SP_FAULT_BACKEND: a worker's backend setup (io_uring_queue_init or epoll_create:
 *  ENOMEM); SP_FAULT_PIN: a worker pinning itself (EPERM). */
typedef enum sp_fault { SP_FAULT_MAP = 0, SP_FAULT_BACKEND = 1, SP_FAULT_PIN = 2 } sp_fault;
void sp_test_fail_nth(uint32_t fault, int64_t nth);

/* ---- clock ------------------------------------------------------------------------------------ */

/** CLOCK_MONOTONIC in nanoseconds (vDSO, no syscall). */
uint64_t sp_now_ns(void);

/** The CPU the calling thread runs on now (sched_getcpu). */
int32_t sp_current_cpu(void);

/** Thread id (gettid) of worker `worker`, for /proc accounting in tests and tools. */
int32_t sp_engine_worker_tid(const sp_engine *e, uint32_t worker);

/** Thread id (gettid) of the engine's slow-handler watchdog (`spindle-stall`), for /proc
 *  accounting in tests; -1 when it does not run (no stall callback), 0 until it has started. */
int32_t sp_engine_watchdog_tid(const sp_engine *e);

#ifdef __cplusplus
}
#endif
#endif /* SPINDLE_H */
