/*
 * engine.h — the engine's and workers' internal layout, shared by engine.c, worker.c, lanes.c
 * and the backends. Not part of the public API.
 */
#ifndef SP_ENGINE_H
#define SP_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "barrier.h"
#include "ring.h"
#include "spindle.h"
#include "spindle_fast.h"

struct sp_backend_ops;
struct sp_source;

/* A lane's per-worker scheduling state and counters. */
typedef struct sp_lane_state {
    uint32_t policy, budget, quantum, max_batch, on_full;
    uint32_t cursor;       /* source to try first (round robin between producers) */
    int64_t deficit;       /* weighted: deficit round robin */
    uint32_t used;         /* strict: events served this round */
    _Atomic uint64_t handled; /* written by the worker only (relaxed load + store, no RMW) */
    _Atomic uint64_t failed;
    sp_spsc *local;        /* this worker's own queue (ctx.post without destination) */
    sp_mpsc *mpsc;         /* foreign threads */
    _Atomic(sp_spsc *) *in; /* in[src]: SPSC ring from worker src (NULL until created; in[self] unused) */
} sp_lane_state;

struct sp_worker {
    /* Read by every producer on every post: the sleep flag and how to wake. Its own line, so
     * the worker's frequent writes to its scheduling state below do not evict it. */
    _Alignas(SP_CACHELINE) _Atomic uint32_t sleeping;
    _Atomic uint32_t urgent; /* a strict lane got work: cut the weighted batch short (spindle_fast.h) */
    int event_fd;  /* foreign threads (and the epoll backend) wake the worker through it */
    int ring_fd;   /* io_uring fd for MSG_RING wake-ups from other workers (-1: none) */

    /* The producer's fast-path view (spindle_fast.h), its own line: read on every post. */
    _Alignas(SP_CACHELINE) sp_worker_fast fast;

    _Alignas(SP_CACHELINE) sp_engine *engine;
    uint32_t id, cpu;
    int node;
    pid_t tid;
    pthread_t thread;
    void *userdata;
    void *backend;   /* the backend's per-worker state */
    void *io;        /* I/O sources (io/io.h) */
    uint32_t lane_count, worker_count;
    uint32_t strict_count; /* lanes [0, strict_count) are strict, the rest weighted */
    sp_lane_state lanes[SP_MAX_LANES];
    uint32_t spread;  /* round robin for SP_DEST_SPREAD from this worker */
    uint64_t spin_ns, slow_ns; /* live-tunable copies (tune.c) */
    uint64_t tune_seen;        /* engine tune_gen these values come from */
    /* Sends queued for the kernel (io_uring: an SQE, uring_io.c). A strict lane whose handlers
     * queued one ends the round early so the round's io_uring_enter submits it before the weighted
     * lanes run (lanes.c); never two such rounds in a row (cut_last). */
    uint64_t sends_queued;
    uint32_t cut_last;

    /* Counters read by stats (written only by this worker: relaxed load + store). */
    _Atomic uint64_t rounds, batches, sleeps, wakeups_sent, slow_batches, pairs_created;
    /* The batch in progress, for the watchdog (watchdog.c): written once per batch, only while a
     * slow-batch threshold is set. started = 0: none. */
    _Atomic uint64_t batch_started;  /* coarse ns; release: pairs with the watchdog's acquire */
    _Atomic uint64_t batch_lane_count; /* lane << 32 | events */
    _Atomic uint32_t batch_kind;       /* the first event's handler kind (the watchdog never reads slots:
                                          a producer may refill them once the batch is done) */
    _Alignas(SP_CACHELINE) _Atomic uint64_t foreign_wakeups; /* written by foreign threads (RMW) */
    size_t mapping_bytes;
    /* Batch times and latency samples (timing.h): NULL (off: one predictable branch per batch)
     * until the worker takes sp_engine_enable_timing at a round boundary; then its lanes'
     * records. Read and written only by this worker; `timing_on` tells other threads. */
    struct sp_lane_timing *timing;
    _Atomic uint32_t timing_on;
};

_Static_assert(__builtin_offsetof(struct sp_worker, fast) == SP_WORKER_FAST_OFFSET, "spindle_fast.h layout");
_Static_assert(__builtin_offsetof(struct sp_worker, sleeping) == SP_WORKER_SLEEPING_OFFSET, "sleep flag first");
_Static_assert(__builtin_offsetof(struct sp_worker, urgent) == SP_WORKER_URGENT_OFFSET, "urgent flag right after it");

/* The backend interface (uring.c, poll.c): how a worker sleeps and is woken. */
typedef struct sp_backend_ops {
    uint32_t kind; /* SP_BACKEND_IO_URING or SP_BACKEND_EPOLL */
    /* On the worker thread, before it reports ready. Returns SP_OK or an error with a message. */
    int (*init)(sp_worker *w, uint32_t want_flags, uint32_t entries, uint32_t *features, char *msg, size_t len);
    /* Sleep until woken (eventfd, MSG_RING) or an io completion arrives. */
    void (*wait)(sp_worker *w);
    /* Wake `target` from worker `self`'s thread. Returns 1 when a syscall was made. */
    int (*wake_from_worker)(sp_worker *self, sp_worker *target);
    void (*destroy)(sp_worker *w);
    /* I/O sources (io/): arm a new source (may create its fd); re-arm one whose request ended
     * (timer period, multishot ended); cancel — returns 1 when a final completion will follow, 0
     * when the source is gone now. All on the worker's thread. */
    int (*io_arm)(sp_worker *w, struct sp_source *s, char *msg, size_t len);
    int (*io_rearm)(sp_worker *w, struct sp_source *s); /* events delivered, or -1: retry next round */
    int (*io_cancel)(sp_worker *w, struct sp_source *s);
    /* A busy worker, once per round while it has sources: submit what is queued and reap what
     * completed — entering the kernel only when something is there (io_uring: the CQ tail and
     * IORING_SQ_TASKRUN; epoll: at most every SP_EPOLL_POLL_NS). Returns events delivered. */
    uint32_t (*io_poll)(sp_worker *w);
    /* TCP: set up the receive buffers (io_uring: register the buffer ring); give a buffer back;
     * send the head of a connection's queue; stop receiving on a connection (close or final). */
    int (*buf_setup)(sp_worker *w, char *msg, size_t len);
    void (*buf_return)(sp_worker *w, uint32_t bid);
    void (*buf_flush)(sp_worker *w);
    void (*conn_send)(sp_worker *w, struct sp_source *s);
    void (*conn_stop)(sp_worker *w, struct sp_source *s);
} sp_backend_ops;

extern const sp_backend_ops sp_uring_backend;
extern const sp_backend_ops sp_epoll_backend;

enum { SP_STATE_STARTING = 0, SP_STATE_RUNNING = 1, SP_STATE_STOPPING = 2, SP_STATE_DRAINED = 3, SP_STATE_ABORT = 4 };

struct sp_engine {
    sp_config cfg;
    sp_callbacks cb;
    const sp_backend_ops *backend;
    uint32_t features;
    uint32_t worker_count, lane_count;
    sp_worker **workers;

    /* Read by every foreign post: only written at shutdown. */
    _Alignas(SP_CACHELINE) _Atomic uint32_t state;

    _Alignas(SP_CACHELINE) pthread_mutex_t lock; /* start/exit handshakes only (cold) */
    pthread_cond_t cond;
    uint32_t ready, failed_workers, exited;
    int start_err;
    char start_msg[256];
    int go; /* 1: run, -1: abort start */
    int shut_down;
    _Atomic uint64_t ring_bytes;
    _Atomic uint64_t tune_gen; /* bumped by sp_engine_retune */
    char backend_note[160]; /* why io_uring was not used (empty when it is) */
    /* A manual engine (manual.c, SpindleTesting): no threads; the caller runs each round and
     * moves the clock its timers run on. Never set on an engine sp_engine_start made. */
    uint32_t manual;
    _Atomic uint64_t manual_now;
    /* The slow-handler watchdog (watchdog.c): a thread that reads each worker's batch_started. */
    pthread_t watchdog;
    int watchdog_running;
    _Atomic int32_t watchdog_tid;
    /* Its own line: read by a worker each time it wakes, written when the watchdog parks. */
    _Alignas(SP_CACHELINE) _Atomic uint32_t watchdog_parked; /* 1: waiting for a worker to wake */
    _Atomic uint32_t watchdog_seq;  /* futex word: bumped to wake it (a worker waking, retune, stop) */
    _Atomic uint32_t watchdog_stop;
    /* Timers (timing.h): set once by sp_engine_enable_timing (under `lock`), freed with the engine. */
    _Atomic(struct sp_timing *) timing;
};

/* watchdog.c */
void sp_watchdog_start(sp_engine *e);
void sp_watchdog_stop(sp_engine *e);
void sp_watchdog_kick(sp_engine *e); /* wakes the watchdog (cold: a worker woke while it was parked) */
void sp_watchdog_retuned(sp_engine *e); /* the threshold may have changed: reread it now */

/* A worker that had published `sleeping = 1` is awake again (its flag is 0): the watchdog may have
 * parked on seeing every worker asleep, and a batch is about to run. Pairs with the heavy barrier
 * in the watchdog's park (the same pair as the sleep handshake: either the watchdog sees our flag
 * 0 and does not park, or we see it parked and kick it). Only on the sleep → awake transition,
 * which already cost a syscall; a compiler barrier and one load when the watchdog is not parked. */
static inline void sp_watchdog_worker_awake(sp_engine *e) {
    sp_light_barrier();
    if (__builtin_expect(atomic_load_explicit(&e->watchdog_parked, memory_order_relaxed) != 0, 0)) sp_watchdog_kick(e);
}

/* engine.c */
sp_engine *sp_engine_alloc(const sp_config *cfg, const sp_callbacks *cb, int *err, char *msg, size_t len);
void sp_engine_free(sp_engine *e);
void sp_release_pending(sp_engine *e);
sp_spsc *sp_engine_pair_ring_slow(sp_worker *src, sp_worker *dst, uint32_t lane);

/* The SPSC ring src → dst for a lane (created on first use by the slow path). Only src's thread
 * produces into it, so a relaxed load sees the pointer src itself stored. */
static inline sp_spsc *sp_engine_pair_ring(sp_worker *src, sp_worker *dst, uint32_t lane) {
    sp_spsc *r = atomic_load_explicit(&dst->lanes[lane].in[src->id], memory_order_relaxed);
    if (__builtin_expect(r != NULL, 1)) return r;
    return sp_engine_pair_ring_slow(src, dst, lane);
}
int sp_engine_quiescent(sp_engine *e);
void sp_wake_all(sp_engine *e);
void sp_eventfd_wake(sp_worker *d); /* one eventfd write (retried on EINTR) */
void *sp_map_on_node(size_t bytes, int node, uint32_t numa_policy);
void sp_unmap(void *p, size_t bytes);

/* manual.c */
int sp_manual_shutdown(sp_engine *e, uint64_t deadline_ns);
/* fault.c: tests' injected failures (sp_test_fail_nth); 1 when this operation must fail. */
#define SP_FAULT_KINDS 3
int sp_fault_hit(uint32_t fault);

/* worker.c */
void *sp_worker_main(void *arg);
extern __thread sp_worker *sp_tls_worker;

/* post.c: publishes what the fast path deferred (at the end of every batch, before sleeping). */
void sp_worker_flush_slow(sp_worker *w);
void sp_futex_wake_all(_Atomic uint32_t *word); /* wakes every thread waiting on a block lane */
static inline void sp_worker_flush(sp_worker *w) {
    if (__builtin_expect(w->fast.ndirty != 0, 0)) sp_worker_flush_slow(w);
}

/* tune.c */
void sp_worker_take_tuning(sp_worker *w);

/* lanes.c */
uint32_t sp_sched_round(sp_worker *w);
int sp_worker_has_work(sp_worker *w);

/* Wakes `d` if it sleeps; `self` is the posting worker or NULL for a foreign thread. Called after
 * a publish. */
void sp_wake_slow(sp_worker *self, sp_worker *d);
static inline void sp_wake_if_sleeping(sp_worker *self, sp_worker *d) {
    /* Pairs with sp_heavy_barrier in the worker's sleep path: either it sees our tail or we see
     * its flag (see barrier.h). */
    sp_light_barrier();
    if (__builtin_expect(atomic_load_explicit(&d->sleeping, memory_order_relaxed) != 0, 0)) sp_wake_slow(self, d);
}

#endif
