/* clock.h — the coarse clock used to spot slow batches (see clock.c). */
#ifndef SP_CLOCK_H
#define SP_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC_COARSE: a vDSO read of the kernel's tick-updated time, a few ns, resolution one
 * tick (1–4 ms). Precise clocks cost more than a whole batch of small events here: the vDSO
 * CLOCK_MONOTONIC showed as 10–14 % of a busy worker's time and rdtsc (slow under this
 * hypervisor) as a quarter of the dispatch loop. A 10 ms slow-batch threshold needs no more. */
static inline uint64_t sp_coarse_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC (vDSO): for timers that need µs resolution, only while they are on (timing.h). */
static inline uint64_t sp_precise_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
