/*
 * malloc_counter.h — counts heap allocations by interposing malloc & co.
 *
 * Linked only into benchmark executables and test bundles: a Spindle row's "mallocs per event"
 * and the tests' "rejecting allocates nothing" come from these counters.
 */
#ifndef SPINDLE_MALLOC_COUNTER_H
#define SPINDLE_MALLOC_COUNTER_H
#include <stdint.h>

/** Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign, valloc) made by
 *  every thread of the process since it started. */
uint64_t spmc_total(void);
/** Allocations made by the calling thread since it started. */
uint64_t spmc_thread(void);
/** 1 when the interposer is compiled in (not under a sanitizer, which owns malloc). */
int spmc_available(void);
/** 1 when the interposer is active (the symbols resolved to this file). */
int spmc_active(void);

#endif
