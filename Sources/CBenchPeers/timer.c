/*
 * timer.c — the raw timer peers of the `timer` scenario: a pinned thread that sleeps until a
 * periodic CLOCK_MONOTONIC deadline and records how late it woke (now − the deadline), once through
 * a timerfd and once through IORING_OP_TIMEOUT on its own io_uring. These are the two mechanisms
 * Spindle's backends use for `builder.timer(every:)` (epoll: timerfd; io_uring: absolute timeouts
 * re-armed from each completion).
 *
 * Both follow the engine's schedule rules: absolute deadlines start + k × period (no drift), and a
 * firing that finds later deadlines already past counts them as coalesced instead of firing them one
 * by one, so every system produces one sample per wake-up with the same definition of lateness.
 */
#include "peers_internal.h"
#include <errno.h>
#include <liburing.h>
#include <sys/timerfd.h>
#include <unistd.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/* A firing that does not come within this long past its deadline fails the run (never hangs it). */
#define TIMER_TIMEOUT_NS 2000000000ull

static struct timespec to_timespec(uint64_t ns) {
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
}

/* The next deadline after a firing of `deadline` noticed at `now`: deadline + period, or later when
 * that one is already past (the missed ones are counted in `*coalesced`). */
static uint64_t next_deadline(uint64_t deadline, uint64_t period, uint64_t now, uint64_t *coalesced) {
    uint64_t next = deadline + period;
    if (next <= now) {
        uint64_t missed = (now - next) / period + 1;
        *coalesced += missed;
        next += missed * period;
    }
    return next;
}

int cbp_timer_timerfd(uint32_t count, uint64_t period_ns, int cpu, uint64_t *samples, cbp_trial *out) {
    if (count == 0 || period_ns == 0) return EINVAL;
    int rc = cbp_pin_self(cpu);
    if (rc != 0) return rc;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    if (fd < 0) return errno;
    uint64_t start = cbp_now_ns();
    uint64_t deadline = start + period_ns;
    /* absolute first expiry, then the kernel's periodic re-arm on the same absolute grid */
    struct itimerspec its = {.it_value = to_timespec(deadline), .it_interval = to_timespec(period_ns)};
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        rc = errno;
        close(fd);
        return rc;
    }
    uint64_t coalesced = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t expirations = 0;
        /* blocking read: the periodic timer always fires, so this wait is bounded by the period */
        ssize_t n = read(fd, &expirations, sizeof expirations);
        uint64_t now = cbp_now_ns();
        if (n != sizeof expirations || expirations == 0) {
            rc = n < 0 ? errno : EIO;
            close(fd);
            return rc;
        }
        samples[i] = now > deadline ? now - deadline : 0;
        cbp_beat(1);
        /* the kernel counted `expirations` periods; the next read returns at the one after them */
        coalesced += expirations - 1;
        deadline += expirations * period_ns;
    }
    uint64_t end = cbp_now_ns();
    close(fd);
    *out = (cbp_trial){.events = count, .elapsed_ns = end - start, .samples = count, .checksum = coalesced};
    return 0;
}

int cbp_timer_uring(uint32_t count, uint64_t period_ns, int cpu, uint64_t *samples, cbp_trial *out) {
    if (count == 0 || period_ns == 0) return EINVAL;
    int rc = cbp_pin_self(cpu);
    if (rc != 0) return rc;
    struct io_uring ring;
    /* as Spindle's workers set theirs up: SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them */
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    rc = io_uring_queue_init_params(8, &ring, &p);
    if (rc == -EINVAL) {
        struct io_uring_params plain = {0};
        rc = io_uring_queue_init_params(8, &ring, &plain);
    }
    if (rc < 0) return -rc;
    uint64_t start = cbp_now_ns();
    uint64_t deadline = start + period_ns;
    uint64_t coalesced = 0;
    struct __kernel_timespec ts;
    for (uint32_t i = 0; i < count; i++) {
        /* one absolute timeout per firing, re-armed with the next deadline of the period */
        ts.tv_sec = (long long)(deadline / 1000000000ull);
        ts.tv_nsec = (long long)(deadline % 1000000000ull);
        struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
        io_uring_prep_timeout(sqe, &ts, 0, IORING_TIMEOUT_ABS);
        sqe->user_data = i;
        /* submit and wait in one io_uring_enter; the wait's own bound is 2 s past the deadline */
        struct __kernel_timespec bound = {.tv_sec = TIMER_TIMEOUT_NS / 1000000000ull + 1, .tv_nsec = 0};
        struct io_uring_cqe *cqe = NULL;
        rc = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &bound, NULL);
        uint64_t now = cbp_now_ns();
        if (rc < 0 || cqe == NULL) {
            io_uring_queue_exit(&ring);
            return rc == -ETIME ? ETIMEDOUT : (rc < 0 ? -rc : EIO);
        }
        int res = cqe->res;
        io_uring_cqe_seen(&ring, cqe);
        if (res != -ETIME) { /* -ETIME is a timeout's normal firing */
            io_uring_queue_exit(&ring);
            return res < 0 ? -res : EIO;
        }
        samples[i] = now > deadline ? now - deadline : 0;
        cbp_beat(1);
        deadline = next_deadline(deadline, period_ns, now, &coalesced);
    }
    uint64_t end = cbp_now_ns();
    io_uring_queue_exit(&ring);
    *out = (cbp_trial){.events = count, .elapsed_ns = end - start, .samples = count, .checksum = coalesced};
    return 0;
}
