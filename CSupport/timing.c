/*
 * timing.c — batch times and sampled queueing latency (see timing.h): turning it on, the worker's
 * per-batch record, and the sampler's drain.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "timing.h"

/* Worker: keep one duration, or count it lost when the sampler has not drained the buffer. */
static void sp_durations_put(sp_durations *d, uint64_t ns) {
    uint64_t t = atomic_load_explicit(&d->tail, memory_order_relaxed);
    if (t - d->head_cache >= SP_TIMING_BUF) {
        /* acquire: pairs with the drain's release of head — its reads of these entries are done. */
        d->head_cache = atomic_load_explicit(&d->head, memory_order_acquire);
        if (t - d->head_cache >= SP_TIMING_BUF) {
            atomic_store_explicit(&d->lost, atomic_load_explicit(&d->lost, memory_order_relaxed) + 1, memory_order_relaxed);
            return;
        }
    }
    atomic_store_explicit(&d->ns[t % SP_TIMING_BUF], ns, memory_order_relaxed);
    atomic_store_explicit(&d->tail, t + 1, memory_order_release); /* pairs with the drain's acquire */
}

void sp_timing_batch(sp_worker *w, sp_lane_timing *lt, void *ring, int mpsc, sp_slot *slots, uint32_t n, uint64_t t0) {
    sp_durations_put(&lt->batch, sp_precise_ns() - t0);
    uint64_t m = w->fast.sample_mask;
    /* The consumer's own head: still the batch's first position (released after this). */
    uint64_t head = mpsc ? atomic_load_explicit(&((sp_mpsc *)ring)->head, memory_order_relaxed)
                         : atomic_load_explicit(&((sp_spsc *)ring)->head, memory_order_relaxed);
    uint32_t shift = (uint32_t)__builtin_popcountll(m);
    /* Sampled positions p in [head, head + n): (p + 1) a multiple of 2^shift. No test per event. */
    for (uint64_t q = (head + 1 + m) & ~m; q <= head + n; q += m + 1) {
        uint64_t p = q - 1, stamp;
        if (mpsc) {
            sp_stamp *c = &lt->cells[(p >> shift) & lt->cell_mask];
            stamp = c->pos == p ? c->ns : 0; /* published with the slot (release/acquire on its seq) */
        } else {
            sp_slot *s = &slots[p - head];
            stamp = s->seq; /* written before the tail's release, which the peek acquired */
            s->seq = 0;     /* a later lap stamps afresh; a producer that had timing off leaves 0 */
        }
        if (stamp == 0 || stamp > t0) {
            atomic_store_explicit(&lt->missed, atomic_load_explicit(&lt->missed, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            continue;
        }
        sp_durations_put(&lt->latency, t0 - stamp);
    }
}

void sp_worker_take_timing(sp_worker *w) {
    sp_engine *e = w->engine;
    /* Under e->lock (sp_worker_take_tuning), as sp_engine_enable_timing sets it. */
    struct sp_timing *tm = atomic_load_explicit(&e->timing, memory_order_acquire);
    if (!tm) return;
    /* Every ring this worker produces into stamps with the same rule from now on: its own queue,
     * its pair rings (one made later copies fast.sample_mask), and the inline path's copy. */
    w->fast.sample_mask = tm->mask;
    for (uint32_t i = 0; i < w->lane_count * w->worker_count; i++)
        if (w->fast.out[i]) ((sp_spsc *)w->fast.out[i])->sample_mask = tm->mask;
    w->timing = &tm->lanes[(size_t)w->id * tm->lane_count];
    atomic_store_explicit(&w->timing_on, 1, memory_order_release);
}

int sp_engine_enable_timing(sp_engine *e, uint32_t shift) {
    if (shift > SP_SAMPLE_SHIFT_MAX) return SP_EINVAL;
    if (sp_current_worker(e)) return SP_EWORKER_THREAD;
    pthread_mutex_lock(&e->lock);
    struct sp_timing *cur = atomic_load_explicit(&e->timing, memory_order_relaxed);
    if (cur) {
        pthread_mutex_unlock(&e->lock);
        return cur->shift == shift ? SP_OK : SP_EINVAL;
    }
    uint32_t nlanes = e->worker_count * e->lane_count;
    size_t cells = 0;
    for (uint32_t l = 0; l < e->lane_count; l++) {
        uint64_t c = e->cfg.lanes[l].capacity >> shift;
        cells += (size_t)(c ? c : 1) * e->worker_count;
    }
    size_t bytes = sizeof(struct sp_timing) + (size_t)nlanes * sizeof(sp_lane_timing) + cells * sizeof(sp_stamp) +
                   2 * SP_CACHELINE;
    struct sp_timing *tm = NULL;
    if (posix_memalign((void **)&tm, SP_CACHELINE, bytes) != 0) {
        pthread_mutex_unlock(&e->lock);
        return SP_ENOMEM;
    }
    memset(tm, 0, bytes);
    tm->shift = shift;
    tm->mask = (1ull << shift) - 1;
    tm->lane_count = e->lane_count;
    tm->bytes = bytes;
    pthread_mutex_init(&tm->drain_lock, NULL);
    uintptr_t p = ((uintptr_t)(tm + 1) + SP_CACHELINE - 1) & ~(uintptr_t)(SP_CACHELINE - 1);
    tm->lanes = (sp_lane_timing *)p;
    sp_stamp *cell = (sp_stamp *)(tm->lanes + nlanes);
    for (uint32_t w = 0; w < e->worker_count; w++)
        for (uint32_t l = 0; l < e->lane_count; l++) {
            uint64_t c = e->cfg.lanes[l].capacity >> shift;
            if (!c) c = 1; /* 2^shift >= capacity: at most one sampled event in the ring at a time */
            sp_lane_timing *lt = &tm->lanes[w * e->lane_count + l];
            lt->cells = cell;
            lt->cell_mask = c - 1;
            for (uint64_t i = 0; i < c; i++) cell[i].pos = UINT64_MAX; /* no position */
            cell += c;
            sp_mpsc *r = e->workers[w]->lanes[l].mpsc;
            r->stamp_mask = c - 1;
            /* release: the cells and stamp_mask before the pointer (sp_mpsc_stamp's acquire). */
            atomic_store_explicit(&r->stamps, lt->cells, memory_order_release);
            atomic_store_explicit(&r->sample_mask, tm->mask, memory_order_release);
        }
    /* release: the records before the pointer and the generation (sp_worker_take_tuning). */
    atomic_store_explicit(&e->timing, tm, memory_order_release);
    atomic_fetch_add_explicit(&e->tune_gen, 1, memory_order_release);
    pthread_mutex_unlock(&e->lock);
    if (!e->manual) sp_wake_all(e); /* an idle worker takes it at the round its wake-up starts */
    return SP_OK;
}

int32_t sp_engine_timing_shift(const sp_engine *e) {
    struct sp_timing *tm = atomic_load_explicit(&((sp_engine *)e)->timing, memory_order_acquire);
    return tm ? (int32_t)tm->shift : -1;
}

int sp_engine_timing_stats(const sp_engine *e, uint32_t worker, uint32_t lane, sp_timing_stats *out) {
    if (worker >= e->worker_count) return SP_EBAD_WORKER;
    if (lane >= e->lane_count) return SP_EBAD_LANE;
    memset(out, 0, sizeof *out);
    struct sp_timing *tm = atomic_load_explicit(&((sp_engine *)e)->timing, memory_order_acquire);
    if (!tm) return SP_OK;
    out->active = atomic_load_explicit(&e->workers[worker]->timing_on, memory_order_acquire);
    sp_lane_timing *lt = &tm->lanes[worker * tm->lane_count + lane];
    out->batches_lost = atomic_load_explicit(&lt->batch.lost, memory_order_relaxed);
    out->batches = atomic_load_explicit(&lt->batch.tail, memory_order_acquire) + out->batches_lost;
    out->latencies_lost = atomic_load_explicit(&lt->latency.lost, memory_order_relaxed);
    out->latencies = atomic_load_explicit(&lt->latency.tail, memory_order_acquire) + out->latencies_lost;
    out->latencies_missed = atomic_load_explicit(&lt->missed, memory_order_relaxed);
    return SP_OK;
}

uint32_t sp_engine_timing_drain(sp_engine *e, uint32_t worker, uint32_t lane, uint32_t which, uint64_t *out,
                                uint32_t max) {
    struct sp_timing *tm = atomic_load_explicit(&e->timing, memory_order_acquire);
    if (!tm || worker >= e->worker_count || lane >= e->lane_count || which > SP_TIMER_LATENCY) return 0;
    sp_lane_timing *lt = &tm->lanes[worker * tm->lane_count + lane];
    sp_durations *d = which == SP_TIMER_BATCH ? &lt->batch : &lt->latency;
    pthread_mutex_lock(&tm->drain_lock);
    uint64_t h = atomic_load_explicit(&d->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&d->tail, memory_order_acquire); /* entries below it are written */
    uint32_t n = t - h < max ? (uint32_t)(t - h) : max;
    for (uint32_t i = 0; i < n; i++) out[i] = atomic_load_explicit(&d->ns[(h + i) % SP_TIMING_BUF], memory_order_relaxed);
    atomic_store_explicit(&d->head, h + n, memory_order_release); /* the worker may reuse them */
    pthread_mutex_unlock(&tm->drain_lock);
    return n;
}

void sp_timing_free(sp_engine *e) {
    struct sp_timing *tm = atomic_load_explicit(&e->timing, memory_order_relaxed);
    if (!tm) return;
    pthread_mutex_destroy(&tm->drain_lock);
    free(tm);
}
