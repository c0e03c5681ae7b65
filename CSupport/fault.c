/*
 * fault.c — fault injection for tests: make the Nth allocation, backend setup or pinning fail, so
 * the paths that refuse cleanly (start fails with a message, everything torn down; a lazy ring's
 * post is refused and counted) are exercised. Compiled in always; checked only on cold paths
 * (start, a pair ring's first use), one relaxed load when disarmed.
 */
#include <stdatomic.h>

#include "engine.h"

static _Atomic int64_t sp_fault_countdown[SP_FAULT_KINDS] = {-1, -1, -1};

void sp_test_fail_nth(uint32_t fault, int64_t nth) {
    if (fault >= SP_FAULT_KINDS) return;
    atomic_store(&sp_fault_countdown[fault], nth < 0 ? -1 : nth);
}

int sp_fault_hit(uint32_t fault) {
    if (__builtin_expect(atomic_load_explicit(&sp_fault_countdown[fault], memory_order_relaxed) < 0, 1)) return 0;
    /* The one that takes the count from 0 to -1 fails; later ones see -1: disarmed again. */
    int64_t c = atomic_load(&sp_fault_countdown[fault]);
    while (c >= 0 && !atomic_compare_exchange_weak(&sp_fault_countdown[fault], &c, c - 1)) {
    }
    return c == 0;
}
