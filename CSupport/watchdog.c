/*
 * watchdog.c — reports a handler that stalls past the slow-batch threshold *while it runs*: a
 * low-frequency thread per engine reads each worker's "batch started at" (written once per batch
 * by lanes.c, only while a threshold is set) and calls the stall callback once per stalled batch,
 * naming worker, lane, the first event's kind, the batch's size and how long it has run. The engine goes on; the
 * workers pay three relaxed stores per batch and nothing per event.
 */
#include <errno.h>
#include <time.h>

#include "clock.h"
#include "engine.h"

/* Wakes every threshold (at least 10 ms, at most 1 s apart): a stall is reported within about
 * two thresholds of its batch's start. */
static uint64_t sp_watchdog_period(uint64_t slow_ns) {
    if (slow_ns < 10000000ull) return 10000000ull;
    return slow_ns > 1000000000ull ? 1000000000ull : slow_ns;
}

static void *sp_watchdog_main(void *arg) {
    sp_engine *e = arg;
    uint64_t reported[SP_MAX_WORKERS] = {0};
    pthread_mutex_lock(&e->watchdog_lock);
    while (!e->watchdog_stop) {
        pthread_mutex_lock(&e->lock); /* the threshold changes live (tune.c writes it under the lock) */
        uint64_t slow = e->cfg.slow_handler_ns;
        pthread_mutex_unlock(&e->lock);
        uint64_t wake = sp_now_ns() + sp_watchdog_period(slow);
        struct timespec ts = {(time_t)(wake / 1000000000ull), (long)(wake % 1000000000ull)};
        while (!e->watchdog_stop && pthread_cond_timedwait(&e->watchdog_cond, &e->watchdog_lock, &ts) != ETIMEDOUT) {
        }
        if (e->watchdog_stop || slow == 0) continue;
        pthread_mutex_unlock(&e->watchdog_lock);
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
        pthread_mutex_lock(&e->watchdog_lock);
    }
    pthread_mutex_unlock(&e->watchdog_lock);
    return NULL;
}

/* After a successful start, when a stall callback is set (the lock and cond are made with the
 * engine's, in engine.c). */
void sp_watchdog_start(sp_engine *e) {
    if (!e->cb.stalled) return;
    e->watchdog_running = pthread_create(&e->watchdog, NULL, sp_watchdog_main, e) == 0;
    if (e->watchdog_running) pthread_setname_np(e->watchdog, "spindle-stall");
}

void sp_watchdog_stop(sp_engine *e) {
    if (!e->watchdog_running) return;
    pthread_mutex_lock(&e->watchdog_lock);
    e->watchdog_stop = 1;
    pthread_cond_broadcast(&e->watchdog_cond);
    pthread_mutex_unlock(&e->watchdog_lock);
    pthread_join(e->watchdog, NULL);
    e->watchdog_running = 0;
}
