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

/* ---- I/O sources: timers ------------------------------------------------------------------ */

/** A periodic timer on `cpu` (the calling thread is pinned there): `count` firings of a
 *  CLOCK_MONOTONIC timerfd armed with absolute deadlines start + k × `period_ns`
 *  (TFD_TIMER_ABSTIME, kernel re-arm), the thread blocking in read(2). Writes each firing's
 *  lateness (now − its deadline, ns) to `samples`; `out->checksum` = periods coalesced. */
int cbp_timer_timerfd(uint32_t count, uint64_t period_ns, int cpu, uint64_t *samples, cbp_trial *out);

/** The same with IORING_OP_TIMEOUT: the thread's own io_uring (SINGLE_ISSUER | DEFER_TASKRUN where
 *  the kernel has them), one absolute timeout (IORING_TIMEOUT_ABS) per firing re-armed with the
 *  next deadline, submitted and waited for in one io_uring_enter. */
int cbp_timer_uring(uint32_t count, uint64_t period_ns, int cpu, uint64_t *samples, cbp_trial *out);

/* ---- I/O sources: TCP echo ---------------------------------------------------------------- */

#define CBP_ECHO_MAX_CONNECTIONS 256
#define CBP_ECHO_MAX_MESSAGE     1024
#define CBP_ECHO_MAX_LISTENERS   2

/** Which raw echo server. */
typedef enum cbp_echo_kind { CBP_ECHO_URING = 0, CBP_ECHO_EPOLL = 1 } cbp_echo_kind;

/** A raw echo server: one thread serving 1–2 loopback listeners from one loop. */
typedef struct cbp_echo_server cbp_echo_server;

/** Starts a server thread pinned to `cpu` with `listeners` listening sockets on 127.0.0.1 (ports
 *  picked by the kernel); returns once it serves. 0 or an errno value. */
int cbp_echo_server_start(cbp_echo_kind kind, int cpu, uint32_t listeners, cbp_echo_server **out);
/** A listener's port. */
uint16_t cbp_echo_server_port(const cbp_echo_server *s, uint32_t listener);
/** The server thread's kernel thread id. */
int cbp_echo_server_tid(const cbp_echo_server *s);
/** Stops the server (bounded: its loop looks every 50 ms), closes everything and frees it. Returns
 *  0 or the errno its loop ended with. */
int cbp_echo_server_stop(cbp_echo_server *s);

/** What the echo client does. */
typedef struct cbp_echo_client_spec {
    uint16_t port;          /* the echo (bulk) listener on 127.0.0.1 */
    uint16_t control_port;  /* io-priority: the control listener (0: none) */
    uint32_t connections;   /* closed-loop connections to `port` (≤ CBP_ECHO_MAX_CONNECTIONS) */
    uint32_t message_bytes; /* bytes per message (8 … CBP_ECHO_MAX_MESSAGE) */
    uint64_t messages;      /* no control: round trips measured (over all connections) */
    uint32_t pings;         /* control: pings measured; the bulk connections flood meanwhile */
    uint64_t ping_interval_ns;
    int cpu;                /* the client thread (the calling one) is pinned here */
    uint64_t *samples;      /* round trips in ns: every message's (no control) or every ping's */
    uint64_t max_samples;
    /* Called on the client thread at the start (0) and the end (1) of the measured window, after
     *  the warm-up exchange of every connection (may be NULL). */
    void (*window)(void *ctx, int phase);
    void *window_ctx;
    const char *failure;    /* out: what failed, when the client returns an error (a static string) */
} cbp_echo_client_spec;

/** The client: one thread, `connections` closed loops over epoll; see echo_client.c. `out->events`:
 *  round trips completed in the window (pings when there are no bulk connections). 0 or errno. */
int cbp_echo_client(cbp_echo_client_spec *spec, cbp_trial *out);

/* ---- syscall counting (diagnostics) ------------------------------------------------------- */

/** A counter of the syscalls thread `tid` enters (perf_event_open on the raw_syscalls:sys_enter
 *  tracepoint, counting from now). Returns its fd, or -errno where perf or tracefs is unavailable. */
int cbp_syscall_counter_open(int tid);
/** The count so far (0 on an error). */
uint64_t cbp_syscall_counter_read(int fd);
/** Closes the counter. */
void cbp_syscall_counter_close(int fd);
/** CPU time (ns) thread `tid` of this process has used (0: the calling thread). */
uint64_t cbp_thread_cpu_ns(int tid);

#ifdef __cplusplus
}
#endif
#endif /* SPINDLE_CBENCH_PEERS_H */
