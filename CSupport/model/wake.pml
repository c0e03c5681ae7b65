/*
 * wake.pml — the sleep/wake handshake of a Spindle worker (CSupport/worker.c) with both backends
 * (uring.c, poll.c), foreign producers (post.c sp_foreign_post → engine.c sp_wake_slow →
 * sp_eventfd_wake), a worker producer (spindle_fast.h sp_worker_post_fast / post.c
 * sp_worker_flush_slow → uring.c sp_uring_wake_from_worker, MSG_RING), and optionally shutdown
 * (engine.c sp_engine_shutdown / sp_wake_all, worker.c's STOPPING/DRAINED exit).
 *
 * Processes:
 *   Worker(0)   the target: consumes an MPSC ring (foreign producers) and an SPSC ring from W1.
 *   Worker(1)   a full worker too; its local queue holds one event whose handler posts EVW events
 *               to W0 (deferred or published at once, then flushed before the batch is counted).
 *               After that handler it sleeps like W0 — only with SHUTDOWN, MSG_FAIL or W1_SLEEPS:
 *               otherwise it just leaves (its own sleeps then play no part, and cost states).
 *   Foreign(f)  NF foreign threads, EVF events each, into W0's MPSC ring.
 *   Kernel      delivers MSG_RING CQEs and MSG_RING error CQEs asynchronously (with a
 *               DEFER_TASKRUN target, MSG_RING runs as task work on the target: 6.3+).
 *               A poll CQE is posted in the same step as the eventfd write that causes it.
 *   Shutdown    (-DSHUTDOWN) sp_engine_shutdown: close W0's MPSC ring (bit 63 of its tail, 34f879f),
 *               then STOPPING, sp_wake_all, wait; (-DDEADLINE) it may also time out → ABORT.
 *   Monitor     when nothing can move any more, checks that no published event is left behind.
 *
 * Memory model: sequentially consistent (the sleeper's membarrier + the producer's compiler
 * barrier act as a full fence pair; see barrier.h). One Promela statement = one atomic access.
 *
 * Knobs (spin -DNAME ...):
 *   EPOLL          the epoll backend (poll.c) instead of io_uring
 *   DRAIN_ON_ARM   io_uring as of 7dcdfce: drain the eventfd (read until EAGAIN) when arming
 *                  the multishot poll — the lost wake-up
 *   MSG_FAIL       one MSG_RING send may fail (its error CQE lands, later, in the sender's CQ)
 *   NO_FALLBACK    as of 7dcdfce: that error CQE is reaped and ignored (no eventfd fallback)
 *   ARM_MAY_FAIL   once, sp_uring_arm_eventfd finds no SQE after its submit and returns unarmed
 *   MAXTERMS=n     the kernel may end the multishot poll n times (CQE without F_MORE); default 1
 *   NF, EVF, EVW   foreign threads, events per foreign thread, events W1 posts (defaults 2, 1, 2)
 *   SHUTDOWN       a shutdown thread (sp_engine_shutdown without a deadline); DEADLINE: with one
 *   NO_CLOSE       as of 7dacd46 (before 34f879f): shutdown does not close the MPSC rings; a
 *                  foreign post is refused only by its state check
 *   CLOSE_LATE     the close moved after the store of STOPPING (a broken reordering of 34f879f)
 *   LIVENESS       check the ltl formula at the end instead (cc without -DSAFETY; ./pan -a -f)
 *   COVER=n        make witness n fail (see WITNESS below)
 *
 * The check (Monitor): when no process can move, every event is handled (SHUTDOWN: every worker
 * exited, shutdown returned, every foreign attempt ended enqueued or refused, and every enqueued
 * event was handled — nothing lost to the shutdown; with DEADLINE, ABORT may leave events pending:
 * they are released and reported, not lost). Workers asleep in wait() are at end states, so a lost
 * wake-up shows up as the assertion, not as a deadlock.
 */

#ifndef NF
#define NF 2
#endif
#ifndef EVF
#define EVF 1
#endif
#ifndef EVW
#define EVW 2
#endif
#ifndef MAXTERMS
#define MAXTERMS 1
#endif

#define NW 2
#define W0 0
#define W1 1
#define MCAP (NF * EVF)
#define TOTAL (NF * EVF + EVW + 1)   /* every event, W1's own first one included */

/* Witnesses (-DCOVER=n): an assertion that fails when scenario n is reached, to show that a model
 * which verifies does go through it (the model is not vacuous). Placed inside atomic sequences so
 * that without COVER they add no state. */
#ifdef COVER
#define WITNESS(n, c) if :: (COVER == n && (c)) -> assert(false) :: else -> skip fi
#else
#define WITNESS(n, c) skip
#endif
#define W0_PENDING (mpub[mhead] || shead != stail)

/* engine.h SP_STATE_* */
#define RUNNING  1
#define STOPPING 2
#define DRAINED  3
#define ABORT    4

byte state = RUNNING;     /* e->state */
byte exited = 0;          /* e->exited (sp_report_exit) */
bit shutdown_done = 0;

bit sleeping[NW];         /* w->sleeping */
bit efd[NW];              /* eventfd counter > 0 (its value beyond that never matters) */

/* io_uring, per worker */
bit armed[NW];            /* u->efd_armed: the worker's belief that its multishot poll is armed */
bit poll_k[NW];           /* the kernel's multishot poll on the eventfd is live */
bit cq_more[NW];          /* CQ holds a poll CQE with F_MORE */
bit cq_end[NW];           /* CQ holds the poll CQE without F_MORE (the kernel ended the multishot) */
bit cq_msg[NW];           /* CQ holds a MSG_RING wake CQE (SP_TAG_WAKE) */
bit cq_err[NW];           /* CQ holds a failed MSG_RING send's CQE (SP_TAG_WAKE_SENT, res < 0) */
bit msg_fly[NW];          /* a MSG_RING to this worker is on its way (task work on the target) */
bit err_fly[NW];          /* a failed send's CQE is on its way to this (sending) worker */
byte terms = 0;           /* multishot ends so far (bounded by MAXTERMS) */
byte msgfails = 0;
byte armfails = 0;

/* W0's MPSC ring (foreign threads): Vyukov, a slot is claimed (tail) then published (seq) */
byte mtail = 0;            /* claimed positions (the tail without its close bit: sp_mpsc_tail) */
bit mclosed = 0;          /* bit 63 of the tail: sp_mpsc_close */
byte mhead = 0;
bit mpub[MCAP + 1];
/* W0's SPSC ring from W1 */
byte sptail = 0;          /* W1's fill index (ptail): slots written, maybe not yet published */
byte stail = 0;           /* published tail */
byte shead = 0;
/* W1's own local queue: one event at start (its handler posts EVW events to W0) */
byte ltail = 1;
byte lhead = 0;

byte handled[NW];         /* lanes[].handled, summed */

/* ghosts (never read by the processes above) */
byte nhandled = 0;        /* events handled */
byte npub = 1;            /* events enqueued (W1's first event included) */
byte nfenq = 0;           /* foreign attempts that claimed a slot (enqueued) */
byte nrefused = 0;        /* foreign attempts refused as stopped (state check or closed ring) */

/* ---- kernel objects ---------------------------------------------------------------------- */

/* A poll CQE for the eventfd of worker d. The kernel may end the multishot there (CQ overflow). */
inline post_poll_cqe(d) {
    if
    :: terms < MAXTERMS -> terms++; cq_end[d] = 1; poll_k[d] = 0
    :: cq_more[d] = 1
    fi
}

/* engine.c sp_eventfd_wake: write(event_fd, 1). Wakes every waiter on the eventfd's queue: the
 * multishot poll posts a CQE (io_uring), epoll_wait sees it readable (epoll). */
inline eventfd_write(d) {
    atomic {
        efd[d] = 1;
#ifndef EPOLL
        if
        :: poll_k[d] -> post_poll_cqe(d)
        :: else -> skip
        fi
#endif
    }
}

/* ---- producer side ----------------------------------------------------------------------- */

/* uring.c sp_uring_reap (9e7f13d): consume every CQE; a poll CQE without F_MORE disarms; a failed
 * MSG_RING send is answered with an eventfd write to its target (the only target here is the
 * other worker). As of 7dcdfce (NO_FALLBACK) the failed send's CQE was consumed and ignored. */
inline reap(w) {
    atomic {
        WITNESS(1, w == W0 && (cq_more[w] || cq_end[w]) && W0_PENDING);  /* woken by a foreign write */
        WITNESS(2, w == W0 && cq_msg[w] && shead != stail);               /* woken by MSG_RING */
        WITNESS(8, state == DRAINED && (cq_more[w] || cq_end[w]));          /* woken by the last worker's sp_wake_all */
        if
        :: cq_end[w] -> armed[w] = 0
        :: else -> skip
        fi;
        e = cq_err[w];
#ifndef NO_FALLBACK
        WITNESS(5, e);                                                     /* MSG_RING fallback */
#endif
        cq_more[w] = 0; cq_end[w] = 0; cq_msg[w] = 0; cq_err[w] = 0
    };
#ifndef NO_FALLBACK
    if
    :: e -> e = 0; eventfd_write(1 - w)
    :: else -> skip
    fi
#endif
    e = 0
}

/* backend->wake_from_worker(self = me, target = d) */
inline wake_from_worker(d) {
#ifdef EPOLL
    eventfd_write(d)                      /* poll.c sp_epoll_wake_from_worker */
#else
    /* uring.c sp_uring_wake_from_worker: MSG_RING with CQE_SKIP_SUCCESS */
    if
    :: msg_fly[d] = 1                     /* sent: a CQE will appear in d's CQ */
#ifdef MSG_FAIL
    :: msgfails < 1 -> msgfails++; err_fly[me] = 1   /* failed: an error CQE will appear in ours */
#endif
    fi;
#ifndef NO_FALLBACK
    /* 9e7f13d: if (io_uring_cq_ready(&u->ring)) sp_uring_reap(u, self) */
    if
    :: (cq_more[me] || cq_end[me] || cq_msg[me] || cq_err[me]) -> reap(me)
    :: else -> skip
    fi
#endif
#endif
}

/* sp_wake_if_sleeping + engine.c sp_wake_slow: read the flag; if it reads 1, exchange it to 0;
 * only the producer whose exchange returned 1 makes the wake syscall. The plain read has no
 * effect of its own, so "read 1, then exchange" is folded into one step: the exchange, done only
 * when the flag is 1 (a read of 0, or an exchange that returns 0, both mean: no syscall). */
inline flip_flag(d) {
    atomic {
        if
        :: sleeping[d] -> sleeping[d] = 0; won = 1
        :: else -> skip
        fi
    }
}

inline worker_wake(d) {
    flip_flag(d);
    if
    :: won -> won = 0; wake_from_worker(d)
    :: else -> skip
    fi
}

/* W1's handler posts one event to W0: spindle_fast.h sp_worker_post_fast. Deferred (published
 * when the batch ends) only when a deferred run is already open or W0 reads awake; published at
 * once otherwise — or always, for a strict lane or a full batch (hence the free choice). */
inline post_to_w0() {
    if
    :: atomic {
           (sptail != stail || sleeping[W0] == 0) -> sptail++; npub++;
           WITNESS(6, sptail - stail >= 2 && sleeping[W0])                 /* a deferred run, W0 asleep */
       }
    :: atomic { sptail++; npub++ };
       stail = sptail;                    /* release store of tail */
       worker_wake(W0)                    /* light barrier, then the flag */
    fi
}

/* post.c sp_worker_flush_slow: publish the deferred run, then look at the flag */
inline flush() {
    if
    :: sptail != stail ->
       stail = sptail;
       worker_wake(W0)
    :: else -> skip
    fi
}

/* ---- the backends' wait ------------------------------------------------------------------ */

#ifdef EPOLL
/* poll.c sp_epoll_wait: epoll_wait on the level-triggered eventfd, then read until EAGAIN */
inline backend_wait() {
    skip;
end_sleep:
    efd[me];
    do
    :: atomic {                           /* read() returned the counter */
           efd[me] -> efd[me] = 0;
           WITNESS(7, me == W0 && W0_PENDING)                              /* woken by a write */
       }
    :: !efd[me] -> break                  /* read() returned EAGAIN */
    od
}
#else
/* uring.c sp_uring_wait */
inline backend_wait() {
    /* sp_uring_arm_eventfd */
    if
    :: !armed[me] ->
#ifdef DRAIN_ON_ARM
       do                                 /* 7dcdfce: while (read(event_fd) == 8) {} */
       :: atomic { efd[me] -> efd[me] = 0 }
       :: !efd[me] -> break
       od;
#endif
#ifdef ARM_MAY_FAIL
       if
       :: armfails < 1 -> armfails++;     /* no SQE even after io_uring_submit: return unarmed */
#ifdef ARM_FIX
          goto no_block                   /* the fix: without the doorbell, do not block */
#else
          skip
#endif
       :: armed[me] = 1; arming = 1       /* io_uring_prep_poll_multishot; efd_armed = 1 */
       fi
#else
       armed[me] = 1; arming = 1
#endif
    :: else -> skip
    fi;
    /* io_uring_submit_and_wait(ring, 1): the submit arms the poll; the kernel checks readiness */
    if
    :: arming ->
       arming = 0;
       atomic {
           WITNESS(3, efd[me]);                                            /* arm on a non-zero counter */
           WITNESS(4, terms > 0 && me == W0);                              /* re-arm after the kernel ended it */
           poll_k[me] = 1;
           if
           :: efd[me] -> post_poll_cqe(me)
           :: else -> skip
           fi
       }
    :: else -> skip
    fi;
end_sleep:
    (cq_more[me] || cq_end[me] || cq_msg[me] || cq_err[me]);   /* ≥ 1 CQE */
#ifdef ARM_FIX
no_block:
#endif
    reap(me)
}
#endif

/* ---- a worker ---------------------------------------------------------------------------- */

proctype Worker(byte me) {
    byte st, hs, es, k;
    bit won, e, arming;
top:
    /* sp_sched_round: one event from a non-empty ring; with none, the worker is idle */
    if
    :: atomic { me == W0 && mpub[mhead] -> handled[me]++; nhandled++; mhead++ }; goto top
    :: atomic { me == W0 && shead != stail -> handled[me]++; nhandled++; shead++ }; goto top
    :: me == W1 && lhead != ltail ->
       /* the handler: EVW posts to W0; sp_run_batch flushes, then counts the batch handled */
       k = 0;
       do
       :: k < EVW -> post_to_w0(); k++
       :: else -> k = 0; break
       od;
       flush();
       atomic { handled[me]++; nhandled++; lhead++ };
#if !defined(SHUTDOWN) && !defined(MSG_FAIL) && !defined(W1_SLEEPS)
       goto out;    /* W1's own sleeps matter only to shutdown and to the MSG_RING fallback */
#endif
       goto top
    :: else -> st = state               /* worker.c: the engine state, read once per idle pass */
    fi;

    if
    :: st == ABORT || st == DRAINED -> goto out
    :: st == STOPPING ->
       /* sp_engine_quiescent: the handled counts (our own cannot change under us), then tails */
       atomic { hs = handled[W0] + handled[W1] };
       es = mtail;
       es = es + stail + ltail;
       if
       :: hs == es ->
          atomic {
              hs = 0; es = 0;
              if
              :: state == STOPPING -> state = DRAINED
              :: else -> skip
              fi
          };
          eventfd_write(W0); eventfd_write(W1);   /* sp_wake_all */
          goto out
       :: else -> hs = 0; es = 0
       fi
    :: else -> skip
    fi;

    /* sleep: publish the flag, heavy barrier, look once more at every ring and at the state.
     * The re-check is one step: the real reads come one after the other, but a ring only goes
     * from empty to non-empty while we look (we are its only consumer) and the state only moves
     * away from `st`, so any outcome of the sequence is the outcome of one snapshot. */
    sleeping[me] = 1;
    if
    :: (me == W0 && (mpub[mhead] || shead != stail)) || (me == W1 && lhead != ltail) || state != st ->
       atomic { sleeping[me] = 0; st = 0 };
       goto top
    :: else -> skip
    fi;
    backend_wait();
    atomic { sleeping[me] = 0; st = 0 };
    goto top;
out:
    exited++
}

/* ---- a foreign thread -------------------------------------------------------------------- */

proctype Foreign(byte f) {
    byte k, pos;
    bit won;
    k = 0;
    do
    :: k < EVF ->
       if
       :: state != RUNNING -> nrefused++; goto next   /* SP_ESTOPPED, counted rejected */
       :: else -> skip
       fi;
       /* sp_mpsc_claim (the ring never fills here): the close bit and the claim share the tail
        * word, so "closed?" and the CAS that claims are one atomic step */
       atomic {
           if
           :: mclosed -> nrefused++;                    /* SP_MPSC_REFUSED → SP_ESTOPPED */
              WITNESS(9, true);                         /* read RUNNING, then refused by the close */
              goto next
           :: else -> pos = mtail; mtail++; nfenq++
           fi
       };
       atomic {                           /* sp_mpsc_publish (+ ghost count) */
           WITNESS(10, state != RUNNING);                /* claimed before the close, published after STOPPING */
           mpub[pos] = 1; npub++; pos = 0
       };
       /* sp_wake_if_sleeping(NULL, W0) → sp_wake_slow → sp_eventfd_wake */
       flip_flag(W0);
       if
       :: won -> won = 0; eventfd_write(W0)
       :: else -> skip
       fi;
next:
       k++
    :: else -> break
    od
}

/* ---- the kernel's asynchronous part: MSG_RING delivery (task work on the target) --------- */

active proctype Kernel() {
end_k:
    do
    :: atomic { msg_fly[W0] -> msg_fly[W0] = 0; cq_msg[W0] = 1 }
    :: atomic { msg_fly[W1] -> msg_fly[W1] = 0; cq_msg[W1] = 1 }
    :: atomic { err_fly[W0] -> err_fly[W0] = 0; cq_err[W0] = 1 }
    :: atomic { err_fly[W1] -> err_fly[W1] = 0; cq_err[W1] = 1 }
    od
}

/* ---- shutdown ---------------------------------------------------------------------------- */

#ifdef SHUTDOWN
inline close_rings() {
    /* if still RUNNING, sp_mpsc_close every worker's every lane (only W0's ring has producers
     * here; each ring's close orders only that ring's claims, so one step per ring is exact) */
    atomic {
        if
        :: state == RUNNING -> mclosed = 1
        :: else -> skip
        fi
    }
}

proctype Shutdown() {
    /* engine.c sp_engine_shutdown, under e->lock: close the foreign rings, then CAS RUNNING →
     * STOPPING (the workers' drain starts when they read STOPPING) */
#if !defined(NO_CLOSE) && !defined(CLOSE_LATE)
    close_rings();
#endif
    atomic {
        if
        :: state == RUNNING -> state = STOPPING
        :: else -> skip
        fi
    };
#ifdef CLOSE_LATE
    mclosed = 1;
#endif
    eventfd_write(W0); eventfd_write(W1); /* sp_wake_all */
#ifdef DEADLINE
    if
    :: exited == NW -> skip
    :: exited < NW ->                     /* pthread_cond_timedwait: ETIMEDOUT */
       state = ABORT;
       eventfd_write(W0); eventfd_write(W1);
       exited == NW                       /* then waits with no deadline */
    fi;
#else
    exited == NW;                         /* pthread_cond_wait until every worker exited */
#endif
    shutdown_done = 1
}
#endif

/* ---- the check --------------------------------------------------------------------------- */

#ifndef LIVENESS
/* When nothing can move any more: every worker asleep or gone, every producer done. */
active proctype Monitor() {
    timeout ->
#ifdef SHUTDOWN
    assert(exited == NW && shutdown_done);
    /* every foreign attempt ended enqueued or refused as stopped */
    assert(nfenq + nrefused == NF * EVF);
#ifndef DEADLINE
    /* nothing lost: every enqueued event was handled before the workers exited */
    assert(npub == nhandled)
#endif
#else
    /* a published event left with its worker asleep and nobody left to wake it = a lost wake-up */
    assert(nhandled == TOTAL)
#endif
}
#endif

init {
    byte f = 0;
    atomic {
        run Worker(W0);
        run Worker(W1);
        do
        :: f < NF -> run Foreign(f); f++
        :: else -> break
        od;
#ifdef SHUTDOWN
        run Shutdown()
#endif
    }
}

#ifdef LIVENESS
#ifdef SHUTDOWN
ltl live { <> (shutdown_done == 1) }
#else
ltl live { <> (nhandled == TOTAL) }
#endif
#endif
