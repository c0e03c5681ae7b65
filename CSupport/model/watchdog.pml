/*
 * watchdog.pml — the stall watchdog's park (watchdog.c sp_watchdog_park_if_idle) against workers
 * coming out of their sleeps (engine.h sp_watchdog_worker_awake, worker.c).
 *
 *   Watchdog   each pass: if every worker's sleep flag is set, store `parked`, (heavy barrier), read
 *              the futex word, look at the flags again and, if all are still set, futex_wait on the
 *              word (blocks while it is unchanged); then clear `parked`.
 *   Worker(i)  ROUNDS times: store its flag, come out of the sleep (a wake-up, or the re-check found
 *              work: both are the same here), clear its flag, then (light barrier) read `parked`
 *              and, if set, exchange it to 0 and bump the word + FUTEX_WAKE (sp_watchdog_kick).
 *              Then it runs a batch, which may stall forever; after its rounds it sleeps for good.
 *
 * Sequentially consistent (the barrier pair, as in wake.pml; barrier.pml checks it under store
 * buffers). The check (Monitor): when nothing can move, no batch is stalled while the watchdog is
 * parked — a stall is always watched.
 *
 * Knobs: NW workers (default 2), ROUNDS (default 2); NO_KICK: the worker never looks at `parked`;
 * KICK_FIRST: the worker reads `parked` before it clears its flag (the wrong order);
 * SEQ_AFTER_PARK: the watchdog reads the futex word after storing `parked` (the first version of
 * 52cf399: a worker's kick clears `parked` and bumps the word, the worker sleeps again, the
 * watchdog reads the bumped word and sees every flag set, parks; the worker wakes, finds `parked`
 * clear, does not kick, and its batch stalls unwatched).
 */
#ifndef NW
#define NW 2
#endif
#ifndef ROUNDS
#define ROUNDS 2
#endif

bit sleeping[3];       /* NW ≤ 3; the unused ones read as asleep */
bit parked = 0;
byte seq = 0;          /* futex word (wraps: only "changed" matters, and it changes ≤ NW*ROUNDS times) */
bit wd_blocked = 0;    /* ghost: the watchdog is inside futex_wait */
byte stalled = 0;      /* ghost: batches stalled forever */

#define ALL_ASLEEP (sleeping[0] && sleeping[1] && sleeping[2])

inline kick() {
    atomic {
        if
        :: parked ->                                  /* exchange won; bump + FUTEX_WAKE */
#ifdef COVER
           if :: wd_blocked -> assert(false) :: else -> skip fi;   /* witness: a parked watchdog woken */
#endif
           parked = 0; seq++
        :: else -> skip
        fi
    }
}

proctype Worker(byte me) {
    byte k = 0;
    do
    :: k < ROUNDS ->
       sleeping[me] = 1;                 /* store, heavy barrier, re-check, wait ... */
#ifdef KICK_FIRST
       kick();
#endif
       sleeping[me] = 0;                 /* ... awake again */
#if !defined(NO_KICK) && !defined(KICK_FIRST)
       kick();                           /* sp_watchdog_worker_awake */
#endif
       if
       :: stalled++; goto stuck          /* a handler that never returns */
       :: skip
       fi;
       k++
    :: else -> break
    od;
    sleeping[me] = 1;                    /* asleep for good */
end_idle:
    false;
stuck:
    skip
}

active proctype Watchdog() {
    byte s;
end_tick:
    do
    :: ALL_ASLEEP ->
#ifdef SEQ_AFTER_PARK
       parked = 1;                       /* as first written: the word read after `parked` */
       s = seq;
#else
       s = seq;                          /* the word first: a kick that clears this `parked` moves it */
       parked = 1;                       /* heavy barrier after it */
#endif
       if
       :: ALL_ASLEEP ->
          wd_blocked = 1;
end_park:
          (seq != s);                    /* futex_wait until the word moves */
          wd_blocked = 0
       :: else -> skip
       fi;
       parked = 0;
       s = 0
    :: else -> skip                      /* a pass over the workers' batches */
    od
}

active proctype Monitor() {
    timeout ->
    /* nothing can move: the watchdog must not sleep through a stalled batch */
    assert(!(stalled > 0 && wd_blocked))
}

init {
    byte i = 0;
    atomic {
        do
        :: i < 3 && i >= NW -> sleeping[i] = 1; i++
        :: i < NW -> run Worker(i); i++
        :: i == 3 -> break
        od
    }
}

