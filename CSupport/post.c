/*
 * post.c — where a post goes and what a full lane does.
 *
 * A worker thread posts through its own queue (destination itself) or its SPSC ring to the
 * destination; any other thread through the destination's MPSC ring. Every post ends as exactly
 * one of: enqueued (a ring's tail moved), rejected (an error; counted on the ring it was meant
 * for), dropped (a drop lane was full; counted, the newest event discarded).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

static __thread uint32_t sp_tls_spread;

uint32_t sp_resolve_dest(sp_engine *e, uint32_t dest) {
    if (dest == SP_DEST_SPREAD) return sp_tls_spread % e->worker_count;
    if (dest == SP_DEST_SELF) {
        sp_worker *w = sp_tls_worker;
        return w ? w->id : 0;
    }
    return dest;
}

/* What a full ring means for this lane. `shared` counters are RMW (MPSC, many producers). */
static inline int sp_full(uint32_t on_full, _Atomic uint64_t *rejected, _Atomic uint64_t *dropped, int shared,
                          uint32_t count) {
    if (on_full == SP_ON_FULL_DROP) {
        if (shared)
            atomic_fetch_add_explicit(dropped, count, memory_order_relaxed);
        else
            atomic_store_explicit(dropped, atomic_load_explicit(dropped, memory_order_relaxed) + count, memory_order_relaxed);
        return SP_EDROPPED;
    }
    if (shared)
        atomic_fetch_add_explicit(rejected, count, memory_order_relaxed);
    else
        atomic_store_explicit(rejected, atomic_load_explicit(rejected, memory_order_relaxed) + count, memory_order_relaxed);
    return SP_ELANE_FULL;
}

/* ---- from a worker --------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) int sp_worker_post_n(sp_worker *w, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags,
                                   const void *payload, size_t stride, uint32_t len, uint32_t count) {
    sp_engine *e = w->engine;
    if (__builtin_expect(lane >= e->lane_count, 0)) return SP_EBAD_LANE;
    if (dest == SP_DEST_SPREAD) dest = w->spread++ % e->worker_count;
    if (dest == SP_DEST_SELF) dest = w->id;
    if (__builtin_expect(dest >= e->worker_count, 0)) return SP_EBAD_WORKER;
    const sp_lane_config *lc = &e->cfg.lanes[lane];
    if (__builtin_expect(count > lc->capacity, 0)) return SP_EBATCH_TOO_LARGE;
    /* A worker never waits on a ring: `block` behaves as `reject` here. */
    uint32_t on_full = lc->on_full == SP_ON_FULL_DROP ? SP_ON_FULL_DROP : SP_ON_FULL_REJECT;
    sp_spsc *r;
    sp_worker *d = NULL;
    if (dest == w->id) {
        r = w->lanes[lane].local; /* same thread produces and consumes: no wake needed */
    } else {
        d = e->workers[dest];
        r = sp_engine_pair_ring(w, d, lane);
        if (__builtin_expect(r == NULL, 0)) {
            /* The pair's ring could not be mapped on first use: refused, and counted where the
             * destination's counts live (cold: its shared MPSC counter), so no post goes uncounted. */
            atomic_fetch_add_explicit(&d->lanes[lane].mpsc->rejected, count, memory_order_relaxed);
            return SP_ENOMEM;
        }
    }
    int ok = count == 1 ? sp_spsc_push(r, kind, flags, payload, len)
                        : sp_spsc_push_batch(r, kind, flags, payload, stride, len, count);
    if (__builtin_expect(!ok, 0)) return sp_full(on_full, &r->rejected, &r->dropped, 0, count);
    if (lane < w->strict_count) sp_mark_urgent(e->workers[dest]);
    if (d) sp_wake_if_sleeping(w, d);
    return SP_OK;
}

int sp_worker_post(sp_worker *w, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags, const void *payload,
                   uint32_t len) {
    return sp_worker_post_n(w, dest, lane, kind, flags, payload, 0, len, 1);
}

int sp_worker_post_batch(sp_worker *w, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags,
                         const void *payloads, size_t stride, uint32_t len, uint32_t count) {
    if (count == 0) return SP_OK;
    return sp_worker_post_n(w, dest, lane, kind, flags, payloads, stride, len, count);
}

void sp_worker_flush_now(sp_worker *w) { sp_worker_flush(w); }

void sp_worker_flush_slow(sp_worker *w) {
    uint32_t n = w->fast.ndirty;
    w->fast.ndirty = 0;
    uint32_t published = 0;
    for (uint32_t i = 0; i < n; i++) published |= (uint32_t)sp_spsc_publish((sp_spsc *)w->fast.dirty[i]);
    if (!published) return;
    sp_light_barrier(); /* pairs with the sleeper's heavy barrier, as in sp_wake_if_sleeping */
    for (uint32_t i = 0; i < n; i++) {
        sp_worker *d = w->engine->workers[((sp_spsc *)w->fast.dirty[i])->consumer];
        if (atomic_load_explicit(&d->sleeping, memory_order_relaxed)) sp_wake_slow(w, d);
    }
}

/* ---- from a foreign thread ------------------------------------------------------------------- */

static int sp_futex_wait(_Atomic uint32_t *word, uint32_t expected, const struct timespec *timeout) {
    return (int)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
}

void sp_futex_wake_all(_Atomic uint32_t *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* 1: enqueued; 0: no room; -1: the ring is closed (shutdown began). */
static inline int sp_mpsc_try(sp_mpsc *r, uint32_t kind, uint32_t flags, const void *payload, size_t stride,
                              uint32_t len, uint32_t count) {
    uint64_t pos = sp_mpsc_claim(r, count);
    if (__builtin_expect(pos >= SP_MPSC_REFUSED, 0)) return pos == SP_MPSC_REFUSED ? -1 : 0;
    const unsigned char *p = payload;
    for (uint32_t i = 0; i < count; i++) sp_slot_fill(&r->p_slots[(pos + i) & r->p_mask], kind, flags, p + i * stride, len);
    sp_mpsc_stamp_if(r, pos, count); /* latency sampling: one load and a branch when off */
    for (uint32_t i = 0; i < count; i++) sp_mpsc_publish(r, pos + i);
    return 1;
}

/* A block lane, from a foreign thread: wait for room until the deadline or shutdown. The waiter
 * flag tells the consumer to wake us; it only does so when the flag is set. */
static int sp_block(sp_engine *e, sp_worker *d, sp_mpsc *r, const sp_lane_config *lc, uint32_t kind, uint32_t flags,
                    const void *payload, size_t stride, uint32_t len, uint32_t count) {
    uint64_t deadline = lc->block_timeout_ns ? sp_now_ns() + lc->block_timeout_ns : 0;
    for (;;) {
        /* The futex word before the state: shutdown stores the state and then bumps wait_seq, so
         * either we see the state here or our futex wait returns at once. (State first could read
         * RUNNING, then the bumped seq, and sleep with nobody left to wake us.) acquire: pairs with
         * the release bump in sp_wake_blocked_producers and sp_notify_blocked. */
        uint32_t seq = atomic_load_explicit(&r->wait_seq, memory_order_acquire);
        if (atomic_load_explicit(&e->state, memory_order_acquire) != SP_STATE_RUNNING) {
            atomic_fetch_add_explicit(&r->rejected, count, memory_order_relaxed);
            return SP_ESTOPPED;
        }
        atomic_store_explicit(&r->waiters, 1, memory_order_relaxed);
        /* seq_cst: pairs with the consumer's fence in lanes.c (store head, fence, load waiters). */
        atomic_thread_fence(memory_order_seq_cst);
        int got = sp_mpsc_try(r, kind, flags, payload, stride, len, count);
        if (got < 0) {
            atomic_fetch_add_explicit(&r->rejected, count, memory_order_relaxed);
            return SP_ESTOPPED;
        }
        if (got) {
            if (lc->policy == SP_POLICY_STRICT) sp_mark_urgent(d);
            sp_wake_if_sleeping(NULL, d);
            return SP_OK;
        }
        struct timespec ts, *tp = NULL;
        if (deadline) {
            uint64_t now = sp_now_ns();
            if (now >= deadline) {
                atomic_fetch_add_explicit(&r->rejected, count, memory_order_relaxed);
                return SP_ETIMEDOUT;
            }
            uint64_t left = deadline - now;
            ts.tv_sec = (time_t)(left / 1000000000ull);
            ts.tv_nsec = (long)(left % 1000000000ull);
            tp = &ts;
        }
        sp_futex_wait(&r->wait_seq, seq, tp);
    }
}

static inline __attribute__((always_inline)) int sp_foreign_post(sp_engine *e, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags,
                           const void *payload, size_t stride, uint32_t len, uint32_t count) {
    if (__builtin_expect(lane >= e->lane_count, 0)) return SP_EBAD_LANE;
    if (dest == SP_DEST_SPREAD) dest = sp_tls_spread++ % e->worker_count;
    if (__builtin_expect(dest >= e->worker_count, 0)) return SP_EBAD_WORKER;
    const sp_lane_config *lc = &e->cfg.lanes[lane];
    sp_worker *d = e->workers[dest];
    sp_mpsc *r = d->lanes[lane].mpsc;
    if (__builtin_expect(count > lc->capacity, 0)) return SP_EBATCH_TOO_LARGE;
    if (__builtin_expect(atomic_load_explicit(&e->state, memory_order_relaxed) != SP_STATE_RUNNING, 0)) {
        atomic_fetch_add_explicit(&r->rejected, count, memory_order_relaxed);
        return SP_ESTOPPED;
    }
    int got = sp_mpsc_try(r, kind, flags, payload, stride, len, count);
    if (__builtin_expect(got <= 0, 0)) {
        if (got < 0) { /* closed by a shutdown that began after the state check */
            atomic_fetch_add_explicit(&r->rejected, count, memory_order_relaxed);
            return SP_ESTOPPED;
        }
        if (lc->on_full == SP_ON_FULL_BLOCK) return sp_block(e, d, r, lc, kind, flags, payload, stride, len, count);
        return sp_full(lc->on_full, &r->rejected, &r->dropped, 1, count);
    }
    if (lc->policy == SP_POLICY_STRICT) sp_mark_urgent(d);
    sp_wake_if_sleeping(NULL, d);
    return SP_OK;
}

/* ---- public entry points --------------------------------------------------------------------- */

int sp_post(sp_engine *e, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags, const void *payload,
            uint32_t len) {
    sp_worker *w = sp_tls_worker;
    if (w && w->engine == e) return sp_worker_post_n(w, dest, lane, kind, flags, payload, 0, len, 1);
    return sp_foreign_post(e, dest, lane, kind, flags, payload, 0, len, 1);
}

int sp_post_batch(sp_engine *e, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags, const void *payloads,
                  size_t stride, uint32_t len, uint32_t count) {
    if (count == 0) return SP_OK;
    sp_worker *w = sp_tls_worker;
    if (w && w->engine == e) return sp_worker_post_n(w, dest, lane, kind, flags, payloads, stride, len, count);
    return sp_foreign_post(e, dest, lane, kind, flags, payloads, stride, len, count);
}
