/*
 * quiesce.pml — shutdown's "last worker to go idle" decision under a store buffer (x86-TSO; any
 * weaker model allows the same outcome).
 *
 * During STOPPING a worker that goes idle asks sp_engine_quiescent (engine.c) whether every
 * enqueued event is handled; the one that sees "yes" sets DRAINED and wakes the others
 * (worker.c). Each worker counts its last batch with a plain store (lanes.c sp_run_batch:
 * sp_bump(&ls->handled, n)) and then, with no StoreLoad fence in between, loads every worker's
 * `handled` (sp_engine_quiescent's seq_cst fence comes after those loads, before the tails).
 * Two workers finishing their last batches together can each read the other's count before the
 * other's store left its store buffer (the store-buffering litmus test): both see handled <
 * enqueued, both go to sleep — the sleep path's re-check after membarrier looks at the rings and
 * at the state, not at quiescence — and nobody sets DRAINED. sp_engine_shutdown without a
 * deadline then waits forever.
 *
 * Only the `handled` stores go through a store buffer here; everything else is SC. The heavy
 * barrier (membarrier) drains every running CPU's buffer.
 *
 * Knob: FIX — a seq_cst fence at the top of sp_engine_quiescent (before the handled loads).
 */

#define STOPPING 2
#define DRAINED  3

byte state = STOPPING;   /* shutdown has begun (and its wake-all was already consumed) */
byte handled[2];         /* memory */
bit sb_full[2];          /* worker i's store buffer holds its `handled` store */
byte sb_val[2];
bit efd[2];
bit sleeping[2];
byte exited = 0;

#define ENQUEUED 2       /* one event per worker, published long ago (tails visible) */

/* a load of handled[i] by worker `me`: its own pending store is forwarded */
inline load_handled(i, dst) {
    atomic {
        if
        :: i == me && sb_full[me] -> dst = sb_val[me]
        :: else -> dst = handled[i]
        fi
    }
}

proctype Worker(byte me) {
    byte h0, h1, st;
    /* the last batch's handler returned; sp_run_batch counts it: a plain store (buffered) */
    atomic { sb_val[me] = 1; sb_full[me] = 1 };
top:
    /* sp_sched_round found nothing; read the state */
    st = state;
    if
    :: st == DRAINED -> goto out
    :: else -> skip
    fi;
    /* sp_engine_quiescent */
#ifdef FIX
    (sb_full[me] == 0);                   /* seq_cst fence first */
#endif
    load_handled(0, h0);
    load_handled(1, h1);
    (sb_full[me] == 0);                   /* its seq_cst fence, then the tails (constant here) */
    if
    :: h0 + h1 == ENQUEUED ->
       atomic { if :: state == STOPPING -> state = DRAINED :: else -> skip fi };
       efd[0] = 1; efd[1] = 1;            /* sp_wake_all */
       goto out
    :: else -> h0 = 0; h1 = 0
    fi;
    /* sleep: flag, heavy barrier (membarrier: every CPU's store buffer drains), re-check */
    sleeping[me] = 1;
    (sb_full[0] == 0 && sb_full[1] == 0);
    if
    :: state != st -> sleeping[me] = 0; goto top
    :: else -> skip
    fi;
end_sleep:
    efd[me];
    efd[me] = 0;
    sleeping[me] = 0;
    goto top;
out:
    exited++
}

active proctype Memory() {                /* store buffers drain at any time */
end_m:
    do
    :: atomic { sb_full[0] -> handled[0] = sb_val[0]; sb_full[0] = 0 }
    :: atomic { sb_full[1] -> handled[1] = sb_val[1]; sb_full[1] = 0 }
    od
}

active proctype Shutdown() {
    exited == 2                           /* sp_engine_shutdown(e, 0): wait for every worker */
}

init {
    atomic { run Worker(0); run Worker(1) }
}
