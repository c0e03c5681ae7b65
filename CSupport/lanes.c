/*
 * lanes.c — the lane scheduler: one round serves strict lanes first (each up to its budget,
 * re-checked between every batch, so a strict event waits at most for the batch in progress),
 * then weighted lanes by deficit round robin (quantum = weight × max_batch), every dispatch at
 * most max_batch events. When every lane is backlogged a weighted lane's share of a round is at
 * least quantum / (Σ budgets + Σ quanta): no lane starves.
 */
#include "clock.h"
#include "engine.h"
#include "io/io.h"
#include "timing.h"

enum { SP_SRC_LOCAL = 0, SP_SRC_MPSC = 1, SP_SRC_PEERS = 2 };

static inline void sp_bump(_Atomic uint64_t *c, uint64_t n) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* After freeing MPSC slots on a block lane: wake producers waiting for room, only if one said so. */
static inline void sp_notify_blocked(sp_mpsc *r) {
    /* seq_cst: pairs with the fence in post.c's sp_block (waiters store, fence, retry). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&r->waiters, memory_order_relaxed)) {
        atomic_store_explicit(&r->waiters, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->wait_seq, 1, memory_order_release);
        sp_futex_wake_all(&r->wait_seq);
    }
}

/* `ring` is the batch's source (an sp_spsc, or the sp_mpsc when `mpsc`), read only for timing. */
static inline uint32_t sp_run_batch(sp_worker *w, sp_lane_state *ls, uint32_t lane, sp_slot *slots, uint32_t n,
                                    void *ring, int mpsc) {
    sp_engine *e = w->engine;
    uint64_t t0 = w->slow_ns ? sp_coarse_ns() : 0;
    /* Timers (timing.h): off, one predictable branch; on, a precise clock read per batch start. */
    sp_lane_timing *lt = w->timing;
    uint64_t p0 = 0;
    if (__builtin_expect(lt != NULL, 0)) {
        lt += lane;
        p0 = sp_precise_ns();
    }
    /* A weighted batch may be cut short for a strict lane only while one has budget left in this
     * round; otherwise the flag would cut every batch to one event without serving anything. */
    uint32_t arg = lane;
    if (lane >= w->strict_count) {
        for (uint32_t s = 0; s < w->strict_count; s++)
            if (w->lanes[s].used < w->lanes[s].budget) {
                arg |= SP_DISPATCH_PREEMPTIBLE;
                break;
            }
    }
    if (t0) { /* for the watchdog: what runs since when (stores per batch, none per event) */
        atomic_store_explicit(&w->batch_kind, slots[0].kind, memory_order_relaxed);
        atomic_store_explicit(&w->batch_lane_count, (uint64_t)lane << 32 | n, memory_order_relaxed);
        atomic_store_explicit(&w->batch_started, t0, memory_order_release);
    }
    uint64_t r = e->cb.dispatch(e->cb.context, w, arg, slots, n);
    if (t0) atomic_store_explicit(&w->batch_started, 0, memory_order_relaxed);
    uint32_t failed = (uint32_t)r, done = (uint32_t)(r >> 32);
    if (__builtin_expect(done < n, 0)) n = done; /* stopped early: a strict lane has work */
    /* Receive buffers the handled events borrowed go back now (one load when none is out). */
    if (__builtin_expect(((sp_io *)w->io)->lent != 0, 0)) sp_io_return_buffers(w, slots, n);
    if (t0 && sp_coarse_ns() - t0 > w->slow_ns) sp_bump(&w->slow_batches, 1);
    /* Before the ring's head moves: the sampled slots' stamps are still this batch's. */
    if (__builtin_expect(lt != NULL, 0)) sp_timing_batch(w, lt, ring, mpsc, slots, n, p0);
    /* Publish what the handlers posted cross-core (deferred by spindle_fast.h) before counting the
     * batch handled: quiescence (handled == enqueued) must never see their events missing. */
    sp_worker_flush(w);
    /* handled grows before the ring's head: enqueued = handled + pending may be over by this
     * batch for an instant, never under (and quiescence needs handled to catch up). */
    sp_bump(&ls->handled, n);
    if (failed) sp_bump(&ls->failed, failed);
    sp_bump(&w->batches, 1);
    return n;
}

/* One batch from one of the lane's sources (round robin between them). Returns events handled. */
static uint32_t sp_dispatch(sp_worker *w, uint32_t lane, uint32_t max) {
    sp_lane_state *ls = &w->lanes[lane];
    uint32_t nsrc = SP_SRC_PEERS + w->worker_count;
    for (uint32_t tries = 0; tries < nsrc; tries++) {
        uint32_t src = ls->cursor;
        ls->cursor = src + 1 == nsrc ? 0 : src + 1;
        sp_slot *slots;
        uint32_t n;
        if (src == SP_SRC_LOCAL) {
            n = sp_spsc_peek(ls->local, max, &slots);
            if (!n) continue;
            n = sp_run_batch(w, ls, lane, slots, n, ls->local, 0);
            sp_spsc_release(ls->local, n);
        } else if (src == SP_SRC_MPSC) {
            n = sp_mpsc_peek(ls->mpsc, max, &slots);
            if (!n) continue;
            n = sp_run_batch(w, ls, lane, slots, n, ls->mpsc, 1);
            sp_mpsc_release(ls->mpsc, n);
            if (ls->on_full == SP_ON_FULL_BLOCK) sp_notify_blocked(ls->mpsc);
        } else {
            uint32_t peer = src - SP_SRC_PEERS;
            /* acquire: pairs with the release in sp_engine_pair_ring (ring initialised first). */
            sp_spsc *r = atomic_load_explicit(&ls->in[peer], memory_order_acquire);
            if (!r) continue;
            n = sp_spsc_peek(r, max, &slots);
            if (!n) continue;
            n = sp_run_batch(w, ls, lane, slots, n, r, 0);
            sp_spsc_release(r, n);
        }
        /* Stay on a source that still has work only if it is the sole busy one: moving the cursor
         * on keeps producers fair, and costs nothing when one source is busy. */
        return n;
    }
    return 0;
}

static int sp_lane_nonempty(sp_worker *w, uint32_t lane) {
    sp_lane_state *ls = &w->lanes[lane];
    if (sp_spsc_nonempty(ls->local) || sp_mpsc_nonempty(ls->mpsc)) return 1;
    for (uint32_t s = 0; s < w->worker_count; s++) {
        sp_spsc *r = atomic_load_explicit(&ls->in[s], memory_order_acquire);
        if (r && sp_spsc_nonempty(r)) return 1;
    }
    return 0;
}

int sp_worker_has_work(sp_worker *w) {
    for (uint32_t l = 0; l < w->lane_count; l++)
        if (sp_lane_nonempty(w, l)) return 1;
    return 0;
}

static inline int sp_aborting(sp_worker *w) {
    return atomic_load_explicit(&w->engine->state, memory_order_relaxed) == SP_STATE_ABORT;
}

/* Strict lanes in priority order, each within its budget for this round; after every batch start
 * again from lane 0 so a higher strict lane never waits behind a lower one. */
static uint32_t sp_serve_strict(sp_worker *w) {
    uint32_t total = 0;
    /* Clear before looking: an event published after this store sets the flag again. */
    if (atomic_load_explicit(&w->urgent, memory_order_relaxed)) atomic_store_explicit(&w->urgent, 0, memory_order_relaxed);
again:
    for (uint32_t l = 0; l < w->strict_count; l++) {
        sp_lane_state *ls = &w->lanes[l];
        if (ls->used >= ls->budget) continue;
        uint32_t want = ls->budget - ls->used;
        if (want > ls->max_batch) want = ls->max_batch;
        uint32_t n = sp_dispatch(w, l, want);
        if (n) {
            ls->used += n;
            total += n;
            if (sp_aborting(w)) return total;
            goto again;
        }
    }
    return total;
}

uint32_t sp_sched_round(sp_worker *w) {
    uint32_t total = 0;
    sp_worker_take_tuning(w);
    for (uint32_t l = 0; l < w->strict_count; l++) w->lanes[l].used = 0;
    uint64_t sends = w->sends_queued;
    total += sp_serve_strict(w);
    /* A strict lane's handlers queued a send on io_uring (a control reply): the round ends here,
     * and the worker's next io_uring_enter — this round's one — submits it now rather than after
     * the weighted lanes' batches (docs/io.md). Never twice in a row: the weighted lanes still run
     * at least every other round, so a strict lane that always sends cannot starve them. */
    if (w->sends_queued != sends && !w->cut_last) {
        w->cut_last = 1;
        sp_bump(&w->rounds, 1);
        return total;
    }
    w->cut_last = 0;
    for (uint32_t l = w->strict_count; l < w->lane_count; l++) {
        sp_lane_state *ls = &w->lanes[l];
        ls->deficit += ls->quantum;
        while (ls->deficit > 0) {
            uint32_t want = ls->deficit < (int64_t)ls->max_batch ? (uint32_t)ls->deficit : ls->max_batch;
            uint32_t n = sp_dispatch(w, l, want);
            if (!n) break;
            ls->deficit -= n;
            total += n;
            if (sp_aborting(w)) return total;
            if (w->strict_count) total += sp_serve_strict(w);
        }
        /* Deficit round robin: an emptied lane keeps no credit (no burst after idling). */
        if (ls->deficit > 0 && !sp_lane_nonempty(w, l)) ls->deficit = 0;
    }
    sp_bump(&w->rounds, 1);
    return total;
}
