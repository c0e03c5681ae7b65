/*
 * watchdog.c — reports a handler that stalls past the slow-batch threshold *while it runs*: a
 * low-frequency thread per engine reads each worker's "batch started at" (written once per batch
 * by lanes.c, only while a threshold is set) and calls the stall callback once per stalled batch,
 * naming worker, lane, the first event's kind, the batch's size and how long it has run. The engine goes on; the
 * workers pay three relaxed stores per batch and nothing per event.
 *
 * It parks while every worker sleeps (no batch can run then): after a pass that finds every
 * worker's sleep flag set it waits on a futex with no timeout, and the first worker to wake kicks
 * it (engine.h sp_watchdog_worker_awake: on the sleep → awake transition only, a load when it is
 * not parked). An idle engine's watchdog makes no wake-up at all; a busy one's, one per threshold.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"

/* Wakes every threshold (at least 10 ms, at most 1 s apart): a stall is reported within about
 * two thresholds of its batch's start. */
static uint64_t sp_watchdog_period(uint64_t slow_ns) {
    if (slow_ns < 10000000ull) return 10000000ull;
    return slow_ns > 1000000000ull ? 1000000000ull : slow_ns;
}

/* Waits until the futex word moves away from `seq`, or for `ns` (0: no timeout). Returns at once
 * if it already has; may return early (a signal, a spurious wake-up): callers loop. */
static void sp_watchdog_wait(sp_engine *e, uint32_t seq, uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    syscall(SYS_futex, (uint32_t *)&e->watchdog_seq, FUTEX_WAIT_PRIVATE, seq, ns ? &ts : NULL, NULL, 0);
}

static int sp_watchdog_stopping(sp_engine *e) { return atomic_load_explicit(&e->watchdog_stop, memory_order_acquire) != 0; }

static int sp_watchdog_all_asleep(sp_engine *e) {
    for (uint32_t i = 0; i < e->worker_count; i++)
        if (!atomic_load_explicit(&e->workers[i]->sleeping, memory_order_relaxed)) return 0;
    return 1;
}

/* Parks until a worker wakes (or a retune, or stop), if every worker is asleep now. */
static void sp_watchdog_park_if_idle(sp_engine *e) {
    /* A first look without the barrier: a busy engine's watchdog costs its workers no membarrier. */
    if (!sp_watchdog_all_asleep(e)) return;
    /* The word before `parked`: a worker whose kick clears this `parked` bumps it after our read,
     * so our wait returns at once even if that worker is asleep again when we look at the flags
     * (read after the store, a kick could be consumed unseen: CSupport/model watchdog.pml). */
    uint32_t seq = atomic_load_explicit(&e->watchdog_seq, memory_order_acquire);
    atomic_store_explicit(&e->watchdog_parked, 1, memory_order_seq_cst);
    /* The sleeper's side of the pair (barrier.h): our `parked` store before we read their flags;
     * a worker clears its flag, then reads `parked` (sp_watchdog_worker_awake). */
    sp_heavy_barrier();
    if (sp_watchdog_all_asleep(e)) {
        while (!sp_watchdog_stopping(e) && atomic_load_explicit(&e->watchdog_seq, memory_order_acquire) == seq)
            sp_watchdog_wait(e, seq, 0);
    }
    atomic_store_explicit(&e->watchdog_parked, 0, memory_order_relaxed);
}

static void *sp_watchdog_main(void *arg) {
    sp_engine *e = arg;
    uint64_t reported[SP_MAX_WORKERS] = {0};
    atomic_store_explicit(&e->watchdog_tid, (int32_t)syscall(SYS_gettid), memory_order_release);
    while (!sp_watchdog_stopping(e)) {
        /* seq before the threshold: a retune writes the threshold, then bumps seq (so either we
         * read its value, or our wait below returns at once). */
        uint32_t seq0 = atomic_load_explicit(&e->watchdog_seq, memory_order_acquire);
        pthread_mutex_lock(&e->lock); /* the threshold changes live (tune.c writes it under the lock) */
        uint64_t slow = e->cfg.slow_handler_ns;
        pthread_mutex_unlock(&e->lock);
        if (slow == 0) { /* off: wait for a retune (or stop) */
            if (!sp_watchdog_stopping(e)) sp_watchdog_wait(e, seq0, 0);
            continue;
        }
        uint64_t wake = sp_now_ns() + sp_watchdog_period(slow);
        for (;;) {
            uint32_t seq = atomic_load_explicit(&e->watchdog_seq, memory_order_acquire);
            uint64_t now = sp_now_ns();
            if (sp_watchdog_stopping(e) || now >= wake) break;
            sp_watchdog_wait(e, seq, wake - now);
        }
        if (sp_watchdog_stopping(e)) break;
        uint64_t now = sp_coarse_ns();
        for (uint32_t i = 0; i < e->worker_count; i++) {
            sp_worker *w = e->workers[i];
            /* acquire: pairs with the release store in lanes.c — slots and lane are this batch's. */
            uint64_t started = atomic_load_explicit(&w->batch_started, memory_order_acquire);
            if (started == 0 || started == reported[i] || now - started <= slow) continue;
            uint64_t lc = atomic_load_explicit(&w->batch_lane_count, memory_order_relaxed);
            uint32_t kind = atomic_load_explicit(&w->batch_kind, memory_order_relaxed);
            /* Still the same batch? (A new one may have begun between the loads.) */
            if (atomic_load_explicit(&w->batch_started, memory_order_acquire) != started) continue;
            reported[i] = started;
            e->cb.stalled(e->cb.context, i, (uint32_t)(lc >> 32), kind, (uint32_t)lc, now - started);
        }
        sp_watchdog_park_if_idle(e);
    }
    return NULL;
}

void sp_watchdog_kick(sp_engine *e) {
    /* Only the first waker makes the syscall; the watchdog clears `parked` itself when it runs. */
    if (!atomic_exchange_explicit(&e->watchdog_parked, 0, memory_order_seq_cst)) return;
    atomic_fetch_add_explicit(&e->watchdog_seq, 1, memory_order_release);
    sp_futex_wake_all(&e->watchdog_seq);
}

/* After a successful start, when a stall callback is set. */
void sp_watchdog_start(sp_engine *e) {
    if (!e->cb.stalled) return;
    e->watchdog_running = pthread_create(&e->watchdog, NULL, sp_watchdog_main, e) == 0;
    if (e->watchdog_running) pthread_setname_np(e->watchdog, "spindle-stall");
}

/* A retune may have turned the threshold on, or changed it: the watchdog rereads it now. */
void sp_watchdog_retuned(sp_engine *e) {
    if (!e->watchdog_running) return;
    atomic_fetch_add_explicit(&e->watchdog_seq, 1, memory_order_release);
    sp_futex_wake_all(&e->watchdog_seq);
}

void sp_watchdog_stop(sp_engine *e) {
    if (!e->watchdog_running) return;
    atomic_store_explicit(&e->watchdog_stop, 1, memory_order_release);
    atomic_fetch_add_explicit(&e->watchdog_seq, 1, memory_order_release);
    sp_futex_wake_all(&e->watchdog_seq);
    pthread_join(e->watchdog, NULL);
    e->watchdog_running = 0;
}

int32_t sp_engine_watchdog_tid(const sp_engine *e) {
    return e->watchdog_running ? atomic_load_explicit(&((sp_engine *)e)->watchdog_tid, memory_order_acquire) : -1;
}
