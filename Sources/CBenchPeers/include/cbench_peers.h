/*
 * cbench_peers.h — the raw C peers of `spindle bench`: the physical limits of each handoff Spindle
 * makes, written as the fastest idiomatic C a competent engineer would write.
 *
 * Every peer runs its own threads (pinned with pthread_setaffinity_np) and reports one trial. Swift
 * sees only this header: liburing stays inside the .c files.
 */
#ifndef SPINDLE_CBENCH_PEERS_H
#define SPINDLE_CBENCH_PEERS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The raw rings use Spindle's geometry: 64-byte slots, 4096 of them, batches of 32. */
#define CBP_SLOT_SIZE 64
#define CBP_CAPACITY  4096
#define CBP_BATCH     32

/** One measured trial of a peer. */
typedef struct cbp_trial {
    uint64_t events;     /* events handled by the consumer */
    uint64_t elapsed_ns; /* first post to last handled, CLOCK_MONOTONIC */
    uint64_t checksum;   /* sum of the payloads the consumer read (keeps the reads alive) */
    uint64_t samples;    /* latency samples written (latency peers) */
    uint64_t depth_sum;  /* priority runs: sum over probes of the events queued ahead at its post */
} cbp_trial;

/** Events handled by every peer's consumer so far: the harness's stall watchdog reads it (a round
 *  whose count stands still is reported and ends the run, never hangs it). */
extern uint64_t cbp_heartbeat;

/** Adds `n` handled events to the heartbeat, once per batch. One consumer runs at a time, so a
 *  relaxed load and store (no read-modify-write) suffice; the watchdog only needs to see it move. */
static inline void cbp_beat(uint64_t n) {
    __atomic_store_n(&cbp_heartbeat, __atomic_load_n(&cbp_heartbeat, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/** The heartbeat now. */
static inline uint64_t cbp_heartbeat_now(void) { return __atomic_load_n(&cbp_heartbeat, __ATOMIC_RELAXED); }

/** CLOCK_MONOTONIC in nanoseconds (vDSO): the one clock of the harness. */
uint64_t cbp_now_ns(void);

/** Pins the calling thread to `cpu` (no-op when cpu < 0). Returns 0 or an errno value. */
int cbp_pin_self(int cpu);

/** Spin-wait hint (x86 `pause`). */
static inline void cbp_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/** The handler's work per flood event in priority runs: `iters` dependent multiply-adds (~1 ns
 *  each), the same in every system, so the consumer, not the flooder, is the bottleneck and the
 *  backlog really builds up to the credit window. */
static inline uint64_t cbp_work(uint64_t x, uint32_t iters) {
    for (uint32_t i = 0; i < iters; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        __asm__ __volatile__("" : "+r"(x)); /* keep the chain: one iteration per step */
    }
    return x;
}

/* ---- throughput peers --------------------------------------------------------------------- */

/** SPSC ring cross-core: producer on `producer_cpu` writes batches of 32 slots and publishes each
 *  batch once; consumer on `consumer_cpu` takes up to 32 per step and reads every payload. */
int cbp_spsc_cross(uint64_t events, int producer_cpu, int consumer_cpu, cbp_trial *out);

/** The same ring driven by one thread: publish 32, consume 32. */
int cbp_spsc_same(uint64_t events, int cpu, cbp_trial *out);

/** Vyukov bounded MPSC ring (4096 64-byte slots), one producer thread, one consumer thread. */
int cbp_mpsc_cross(uint64_t events, int producer_cpu, int consumer_cpu, cbp_trial *out);

/** A mutex + two condition variables around a 4096-entry ring; the consumer takes up to 32 per lock. */
int cbp_mutexq_cross(uint64_t events, int producer_cpu, int consumer_cpu, cbp_trial *out);

/* ---- wake-up peers ------------------------------------------------------------------------ */

/** One event at a time to a thread sleeping in read(2) on an eventfd. The waker waits until the
 *  sleeper has announced sleep plus `settle_ns`, stamps, writes the eventfd; the sleeper records
 *  now - stamp. Writes `count` latencies (ns) to `samples`. */
int cbp_wake_eventfd(uint32_t count, int waker_cpu, int sleeper_cpu, uint64_t settle_ns, uint64_t *samples,
                     cbp_trial *out);

/** The same with io_uring: the sleeper waits in io_uring_wait_cqe on its own ring (SINGLE_ISSUER |
 *  DEFER_TASKRUN when the kernel has them); the waker sends IORING_OP_MSG_RING from its own ring. */
int cbp_wake_msgring(uint32_t count, int waker_cpu, int sleeper_cpu, uint64_t settle_ns, uint64_t *samples,
                     cbp_trial *out);

/* ---- priority isolation: one FIFO queue at a held backlog --------------------------------- */

/** Which FIFO queue a priority run uses. */
typedef enum cbp_fifo { CBP_FIFO_MPSC = 0, CBP_FIFO_MUTEXQ = 1 } cbp_fifo;

/** A flooder on `producer_cpu` posts `flood` events, holding at most `backlog` unhandled (a credit
 *  window), and after every `probe_every` flood posts a probe stamped at the post call. The consumer
 *  does `work_iters` of cbp_work per flood event and records each probe's post-to-handle latency
 *  into `samples` (at most `max_samples`). With
 *  `flood == 0` it posts `probes` probes one at a time (the unflooded baseline). */
int cbp_prio_fifo(cbp_fifo kind, uint64_t flood, uint64_t probes, uint32_t backlog, uint32_t probe_every,
                  uint32_t work_iters, int producer_cpu, int consumer_cpu, uint64_t *samples, uint64_t max_samples,
                  cbp_trial *out);

#ifdef __cplusplus
}
#endif
#endif /* SPINDLE_CBENCH_PEERS_H */
