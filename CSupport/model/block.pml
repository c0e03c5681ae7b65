/*
 * block.pml — a block lane: foreign producers facing a full MPSC ring wait on a futex
 * (post.c sp_foreign_post → sp_block), the consuming worker wakes them after freeing slots
 * (lanes.c sp_dispatch → sp_notify_blocked), and shutdown wakes them all
 * (engine.c sp_engine_shutdown → sp_wake_blocked_producers).
 *
 * The ring has CAP slots and starts full (a backlog), so producers go straight to the waiting
 * path. The consumer's own sleep is abstracted (it waits until its ring is non-empty or the state
 * changes: wake.pml checks that handshake). Sequentially consistent (the waiters/fence pairs in
 * post.c and lanes.c are seq_cst fences).
 *
 * Knobs:
 *   STATE_FIRST  sp_block as of 7dcdfce: check the state, then load wait_seq (the hang)
 *                (default: 9e7f13d, load wait_seq, then check the state)
 *   ABORT_STOPS  the deadline passes during shutdown (state ABORT) and the worker stops handling
 *                at once (docs/reliability.md's wording; worker.c in fact keeps draining, see
 *                abort.pml), so nobody frees a slot any more
 *   NP, CAP      producers (2) and ring capacity (1)
 */

#ifndef NP
#define NP 2
#endif
#ifndef CAP
#define CAP 1
#endif

#define RUNNING  1
#define STOPPING 2
#define DRAINED  3
#define ABORT    4

byte state = RUNNING;
byte count = CAP;        /* events in the ring: claim succeeds iff count < CAP (sp_mpsc_try) */
bit waiters = 0;         /* r->waiters */
byte wait_seq = 0;       /* r->wait_seq, the futex word */
bit queued[NP];          /* producer p sleeps in futex_wait on wait_seq */
bit consumer_gone = 0;

/* ghosts */
byte posted = 0, refused = 0;

/* FUTEX_WAIT_PRIVATE: compare and enqueue under the futex bucket lock, then sleep until woken */
inline futex_wait(val) {
    atomic {
        if
        :: wait_seq == val -> queued[me] = 1
        :: else -> skip                   /* EAGAIN: the word moved on */
        fi
    };
    (queued[me] == 0)                     /* asleep: NOT a valid end state */
}

inline futex_wake_all() {
    atomic {
        byte i = 0;
        do
        :: i < NP -> queued[i] = 0; i++
        :: else -> break
        od;
        i = 0
    }
}

proctype Producer(byte me) {
    byte seq;
    /* sp_foreign_post: refuse when not running, then one try */
    if
    :: state != RUNNING -> refused++; goto done
    :: else -> skip
    fi;
    if
    :: atomic { count < CAP -> count++; posted++ }; goto done
    :: else -> skip
    fi;
    /* sp_block (no timeout: block_timeout_ns = 0) */
again:
#ifdef STATE_FIRST
    if
    :: state != RUNNING -> refused++; goto done      /* SP_ESTOPPED */
    :: else -> skip
    fi;
    seq = wait_seq;
#else
    seq = wait_seq;
    if
    :: state != RUNNING -> refused++; goto done      /* SP_ESTOPPED */
    :: else -> skip
    fi;
#endif
    waiters = 1;
    /* seq_cst fence, then retry the ring */
    if
    :: atomic { count < CAP -> count++; posted++ }; goto done
    :: else -> skip
    fi;
    futex_wait(seq);
    goto again;
done:
    seq = 0
}

proctype Consumer() {
end_idle:
    do
    :: atomic { count > 0 -> count-- };
       /* sp_notify_blocked: fence; if (waiters) { waiters = 0; wait_seq++; futex_wake_all } */
       if
       :: waiters ->
          waiters = 0;
          wait_seq++;
          futex_wake_all()
       :: else -> skip
       fi
    :: count == 0 && state != RUNNING -> break       /* idle and stopping: quiescent, exit */
#ifdef ABORT_STOPS
    :: state == ABORT -> break                       /* stop after the batch in progress */
#endif
    od;
    consumer_gone = 1
}

proctype Shutdown() {
    state = STOPPING;                                /* CAS RUNNING → STOPPING */
    /* sp_wake_all (the consumer's eventfd: abstracted) */
    wait_seq++;                                      /* sp_wake_blocked_producers */
    futex_wake_all();
#ifdef ABORT_STOPS
    state = ABORT                                    /* the deadline passed */
#endif
}

init {
    byte p = 0;
    atomic {
        run Consumer();
        do
        :: p < NP -> run Producer(p); p++
        :: else -> break
        od;
        run Shutdown()
    }
}
