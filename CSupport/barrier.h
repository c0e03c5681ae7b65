/*
 * barrier.h — the store→load barrier pair of the sleep/wake handshake.
 *
 * A producer publishes a ring index and then reads the consumer's `sleeping` flag; a consumer
 * about to sleep stores `sleeping` and then re-reads the ring indices. Without a StoreLoad
 * barrier on both sides each could miss the other's store (a lost wake-up). Producers post far
 * more often than workers fall asleep, so the cost is moved to the sleeper (as folly's
 * asymmetric barriers do): with membarrier(PRIVATE_EXPEDITED) registered, the producer side is a
 * compiler barrier and the sleeper issues the membarrier, which runs a full barrier on every CPU
 * running one of our threads. Without membarrier both sides use a full fence.
 */
#ifndef SP_BARRIER_H
#define SP_BARRIER_H

#include <stdatomic.h>

extern int sp_membarrier_ok; /* set once by sp_barrier_init() */

void sp_barrier_init(void);
void sp_heavy_barrier_slow(void);

/* The producer's side: after publishing, before reading `sleeping`. */
static inline void sp_light_barrier(void) {
    if (__builtin_expect(sp_membarrier_ok, 1)) {
        atomic_signal_fence(memory_order_seq_cst); /* compiler only: the sleeper's membarrier orders the CPU */
    } else {
        atomic_thread_fence(memory_order_seq_cst);
    }
}

/* The sleeper's side: after storing `sleeping`, before re-reading ring indices. */
static inline void sp_heavy_barrier(void) {
    if (sp_membarrier_ok) {
        sp_heavy_barrier_slow();
    } else {
        atomic_thread_fence(memory_order_seq_cst);
    }
}

static inline void sp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
