/*
 * barrier.pml — the asymmetric barrier pair of the sleep handshake (barrier.h) under store
 * buffers: what wake.pml takes as given (sequential consistency) checked against a weaker model.
 *
 * Producer: store tail; sp_light_barrier (a compiler barrier only, when membarrier is registered);
 * load sleeping; if 1, exchange it (a locked RMW) and wake.
 * Sleeper: store sleeping = 1; sp_heavy_barrier; load tail; if empty, sleep.
 *
 * membarrier(PRIVATE_EXPEDITED) runs a full barrier on every CPU running one of our threads, so
 * after it returns the producer's buffered tail store is visible (or the producer has not stored
 * it yet, and will then see the flag). barrier.c sp_heavy_barrier_slow falls back to a plain
 * seq_cst fence when the syscall fails — which orders the sleeper only, while producers still use
 * a compiler barrier: the store-buffering outcome (both read the old value) is then possible.
 * The syscall can fail after registration: -ENOMEM (membarrier_private_expedited allocates a
 * cpumask with GFP_KERNEL when CONFIG_CPUMASK_OFFSTACK).
 *
 * Knob: MEMBARRIER_FAILS — the heavy barrier's syscall fails and the fallback fence is used.
 */

byte tail = 0;           /* memory */
bit sleeping = 0;
bit p_sb = 0;            /* producer's store buffer holds its tail store */
bit s_sb = 0;            /* sleeper's store buffer holds its sleeping store */
bit efd = 0;
bit handled = 0;

active proctype Producer() {
    bit won;
    p_sb = 1;                             /* store tail = 1: buffered */
    /* sp_light_barrier: compiler barrier only */
    atomic {                              /* load sleeping; a 1 is exchanged (locked: drains) */
        if
        :: sleeping -> p_sb = 0; tail = 1; sleeping = 0; won = 1
        :: else -> skip
        fi
    };
    if
    :: won -> efd = 1                     /* the wake syscall (a syscall also drains) */
    :: else -> skip
    fi
}

active proctype Sleeper() {
    s_sb = 1;                             /* store sleeping = 1: buffered */
    atomic {
        if                                /* our own buffer drains (a fence, or the syscall) */
        :: s_sb -> sleeping = 1; s_sb = 0
        :: else -> skip
        fi;
#ifndef MEMBARRIER_FAILS
        if                                /* membarrier: so does every running CPU's */
        :: p_sb -> tail = 1; p_sb = 0
        :: else -> skip
        fi
#endif
    };
    if
    :: tail -> handled = 1                /* the re-check sees the event */
    :: else ->
end_sleep:
       efd;                               /* wait() */
       handled = 1
    fi
}

active proctype Memory() {
end_m:
    do
    :: atomic { p_sb -> tail = 1; p_sb = 0 }
    :: atomic { s_sb -> sleeping = 1; s_sb = 0 }
    od
}

active proctype Monitor() {
    timeout -> assert(handled)            /* nothing can move: the event must have been seen */
}
