/*
 * abort.pml — shutdown with a deadline, against a handler that keeps posting to its own worker.
 *
 * worker.c's loop reads the engine state only when a scheduler round found nothing to do:
 *     if (sp_sched_round(w)) { idle_since = 0; continue; }
 *     ... st = state; if (st == ABORT || st == DRAINED) break; ...
 * and sp_sched_round (lanes.c) stops a round early on ABORT (sp_aborting) but still returns the
 * events it handled, so the loop starts another round. A worker whose rings never run dry — a
 * handler that re-posts to its own worker (a tick, a retry loop), or enough events circulating —
 * never looks at ABORT. sp_engine_shutdown sets ABORT when its deadline passes and then waits
 * with no deadline for every worker to exit (engine.c); Engine.deinit calls it with the deadline
 * "now". docs/reliability.md: "After the shutdown deadline workers stop after the batch in
 * progress".
 *
 * Liveness check (spin -a, cc without -DSAFETY, ./pan -a -f): <> shutdown returned, under weak
 * fairness. The worker's sleep is abstracted (wake.pml checks it).
 *
 * Knob: FIX — the proposed fix: after a round that handled something, break on ABORT
 *   (worker.c: if (sp_sched_round(w)) { if (state == SP_STATE_ABORT) break; ... continue; }).
 */

#define RUNNING  1
#define STOPPING 2
#define DRAINED  3
#define ABORT    4

byte state = RUNNING;
byte queue = 1;          /* events in the worker's own queue (a handler re-posts to it) */
bit exited = 0;
bit done = 0;

active proctype Worker() {
    byte st;
top:
    if
    :: queue > 0 ->
       /* sp_sched_round: one batch; the handler may post the next tick to this worker */
       queue--;
       if
       :: queue++                        /* re-posted */
       :: skip                           /* the chain ends */
       fi;
       /* sp_aborting → the round returns early, but with total > 0 */
#ifdef FIX
       if
       :: state == ABORT -> goto out
       :: else -> skip
       fi;
#endif
       goto top
    :: else -> st = state
    fi;
    if
    :: st == ABORT || st == DRAINED -> goto out
    :: st == STOPPING -> atomic { if :: state == STOPPING -> state = DRAINED :: else -> skip fi }; goto out
    :: else -> skip
    fi;
    /* sleep until a post or a state change (sp_wake_all) */
    (queue > 0 || state != st);
    st = 0;
    goto top;
out:
    exited = 1
}

active proctype Shutdown() {
    atomic { state == RUNNING -> state = STOPPING };
    if
    :: exited -> skip
    :: !exited -> state = ABORT; exited  /* deadline passed: ABORT, wake all, wait without deadline */
    fi;
    done = 1
}

ltl shutdown_returns { <> done }
