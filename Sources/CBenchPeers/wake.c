/*
 * wake.c — the raw wake-up peers: one event at a time to a thread sleeping in the kernel, through an
 * eventfd (read(2)) or through IORING_OP_MSG_RING into the sleeper's own io_uring. These are the
 * mechanisms Spindle uses to wake a sleeping worker from a foreign thread and from another worker.
 */
#include "peers_internal.h"
#include <errno.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A sleeper that does not wake within this long is reported as a failure instead of hanging. */
#define WAKE_TIMEOUT_NS 2000000000ull

typedef struct wake_run {
    cbp_pair pair;
    uint32_t count;
    uint64_t settle_ns;
    uint64_t *samples;
    int efd;          /* eventfd variant */
    int sleeper_fd;   /* MSG_RING variant: the sleeper's ring fd, published before the barrier */
    uint64_t stamp;   /* eventfd variant: the post time, written before the wake */
    uint32_t handled; /* events the sleeper has recorded */
    int asleep;       /* the sleeper is about to block */
    int failed;       /* an error or a wake-up that never came: both sides stop */
    uint64_t start_ns, end_ns;
} wake_run;

/* Waits until the sleeper has handled `i` events and announced sleep, then `settle_ns` more so that
 * it (and its idle vCPU) is really asleep. Returns 0 when the run failed. */
static int wait_for_sleeper(wake_run *run, uint32_t i) {
    uint64_t deadline = cbp_now_ns() + WAKE_TIMEOUT_NS;
    /* acquire: pairs with the sleeper's release stores of handled/asleep */
    while (__atomic_load_n(&run->handled, __ATOMIC_ACQUIRE) != i || !__atomic_load_n(&run->asleep, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&run->failed, __ATOMIC_RELAXED) || cbp_now_ns() > deadline) {
            __atomic_store_n(&run->failed, 1, __ATOMIC_RELAXED);
            return 0;
        }
        cbp_relax();
    }
    uint64_t until = cbp_now_ns() + run->settle_ns;
    while (cbp_now_ns() < until)
        cbp_relax();
    __atomic_store_n(&run->asleep, 0, __ATOMIC_RELAXED);
    return 1;
}

static void record(wake_run *run, uint32_t i, uint64_t now, uint64_t stamp) {
    run->samples[i] = now - stamp;
    cbp_beat(1);
    /* release: the sample is written before the waker sees the count */
    __atomic_store_n(&run->handled, i + 1, __ATOMIC_RELEASE);
}

/* ---- eventfd ---------------------------------------------------------------------------------- */

static void *efd_waker(void *arg) {
    wake_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.producer_cpu);
    run->start_ns = cbp_now_ns();
    for (uint32_t i = 0; i < run->count; i++) {
        if (!wait_for_sleeper(run, i)) break;
        /* release: the stamp is visible before the wake (the sleeper loads it with acquire) */
        __atomic_store_n(&run->stamp, cbp_now_ns(), __ATOMIC_RELEASE);
        uint64_t one = 1;
        if (write(run->efd, &one, sizeof one) != sizeof one) {
            __atomic_store_n(&run->failed, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

static void *efd_sleeper(void *arg) {
    wake_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.consumer_cpu);
    for (uint32_t i = 0; i < run->count; i++) {
        __atomic_store_n(&run->asleep, 1, __ATOMIC_RELEASE);
        uint64_t v;
        if (read(run->efd, &v, sizeof v) != sizeof v) {
            __atomic_store_n(&run->failed, 1, __ATOMIC_RELAXED);
            break;
        }
        uint64_t now = cbp_now_ns();
        record(run, i, now, __atomic_load_n(&run->stamp, __ATOMIC_ACQUIRE));
    }
    run->end_ns = cbp_now_ns();
    return NULL;
}

int cbp_wake_eventfd(uint32_t count, int waker_cpu, int sleeper_cpu, uint64_t settle_ns, uint64_t *samples,
                     cbp_trial *out) {
    wake_run run = {.count = count, .settle_ns = settle_ns, .samples = samples};
    run.efd = eventfd(0, EFD_CLOEXEC);
    if (run.efd < 0) return errno;
    run.pair = (cbp_pair){.producer = efd_waker,
                          .consumer = efd_sleeper,
                          .arg = &run,
                          .producer_cpu = waker_cpu,
                          .consumer_cpu = sleeper_cpu};
    int rc = cbp_run_pair(&run.pair);
    close(run.efd);
    if (rc != 0) return rc;
    if (run.failed) return EIO;
    *out = (cbp_trial){.events = count, .elapsed_ns = run.end_ns - run.start_ns, .samples = count};
    return 0;
}

/* ---- MSG_RING ----------------------------------------------------------------------------------- */

/* A ring as Spindle's workers set theirs up: SINGLE_ISSUER | DEFER_TASKRUN where the kernel has
 * them (the fastest wake measured on this machine), plain otherwise. */
static int ring_init(struct io_uring *ring) {
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int rc = io_uring_queue_init_params(8, ring, &p);
    if (rc == -EINVAL) {
        struct io_uring_params plain = {0};
        rc = io_uring_queue_init_params(8, ring, &plain);
    }
    return rc;
}

static void *ring_waker(void *arg) {
    wake_run *run = arg;
    struct io_uring ring;
    int rc = ring_init(&ring);
    cbp_pair_enter(&run->pair, run->pair.producer_cpu);
    if (rc < 0) {
        __atomic_store_n(&run->failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    run->start_ns = cbp_now_ns();
    for (uint32_t i = 0; i < run->count; i++) {
        if (!wait_for_sleeper(run, i)) break;
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        /* the stamp travels in the CQE's user_data: no shared memory besides the wake itself */
        io_uring_prep_msg_ring(sqe, run->sleeper_fd, 0, cbp_now_ns(), 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS; /* nothing to reap on success */
        if (io_uring_submit(&ring) != 1) {
            __atomic_store_n(&run->failed, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    io_uring_queue_exit(&ring);
    return NULL;
}

static void *ring_sleeper(void *arg) {
    wake_run *run = arg;
    struct io_uring ring;
    int rc = ring_init(&ring);
    run->sleeper_fd = rc < 0 ? -1 : ring.ring_fd;
    cbp_pair_enter(&run->pair, run->pair.consumer_cpu);
    if (rc < 0) {
        __atomic_store_n(&run->failed, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    for (uint32_t i = 0; i < run->count; i++) {
        __atomic_store_n(&run->asleep, 1, __ATOMIC_RELEASE);
        struct io_uring_cqe *cqe = NULL;
        struct __kernel_timespec ts = {.tv_sec = WAKE_TIMEOUT_NS / 1000000000ull, .tv_nsec = 0};
        rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
        uint64_t now = cbp_now_ns();
        if (rc < 0 || cqe == NULL || __atomic_load_n(&run->failed, __ATOMIC_RELAXED)) {
            __atomic_store_n(&run->failed, 1, __ATOMIC_RELAXED);
            break;
        }
        uint64_t stamp = cqe->user_data;
        io_uring_cqe_seen(&ring, cqe);
        record(run, i, now, stamp);
    }
    run->end_ns = cbp_now_ns();
    io_uring_queue_exit(&ring);
    return NULL;
}

int cbp_wake_msgring(uint32_t count, int waker_cpu, int sleeper_cpu, uint64_t settle_ns, uint64_t *samples,
                     cbp_trial *out) {
    wake_run run = {.count = count, .settle_ns = settle_ns, .samples = samples, .sleeper_fd = -1};
    run.pair = (cbp_pair){.producer = ring_waker,
                          .consumer = ring_sleeper,
                          .arg = &run,
                          .producer_cpu = waker_cpu,
                          .consumer_cpu = sleeper_cpu};
    int rc = cbp_run_pair(&run.pair);
    if (rc != 0) return rc;
    if (run.failed) return EIO;
    *out = (cbp_trial){.events = count, .elapsed_ns = run.end_ns - run.start_ns, .samples = count};
    return 0;
}
