/*
 * spindle_fast.h — the inline fast path of a post from a worker (ctx.post), so Swift callers
 * compile it into their own code: a ring-index check, a 64-byte slot write, a release store and
 * a look at the destination's sleep flag — no call, no lock, no syscall.
 *
 * The structs here mirror the first cache lines of the engine's internal layout (engine.h and
 * ring.h assert the offsets). They are not API: use the functions.
 *
 * Strict aliasing (the engine is built without -fno-strict-aliasing): every access here is
 * defined behaviour. sp_worker_fast is the real type of struct sp_worker's `fast` member. The
 * worker's flags and a ring's published tail are `_Atomic` objects and are only accessed through
 * `_Atomic` lvalues, as in the engine. sp_spsc_producer is a view of a ring, hence may_alias
 * (below).
 */
#ifndef SPINDLE_FAST_H
#define SPINDLE_FAST_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "spindle.h"

/* The producer's side of an SPSC ring (ring.h: sp_spsc). Two cache lines: the first is private
 * to the producer (written on every post, never read by the consumer, so posting never touches a
 * line the consumer is polling); the second holds the published tail, written once per publish.
 *
 * The object is always an sp_spsc, never one of these: may_alias exempts accesses through this
 * view from type-based alias analysis (GCC and Clang treat them as character accesses, which may
 * alias anything), so the compiler cannot assume that the engine's stores through sp_spsc
 * (ring.h, post.c) leave a field read here unchanged, or the reverse. Each field has the type of
 * its sp_spsc counterpart (`_Atomic` where the ring's is), so the value read is that object's. */
typedef struct __attribute__((may_alias)) sp_spsc_producer {
    uint64_t ptail;      /* filled up to here; [tail, ptail) not yet published */
    uint64_t head_cache; /* producer's last view of the consumer's head */
    uint64_t pub;        /* producer's copy of tail (what it last published) */
    uint64_t mask;
    sp_slot *slots;
    _Atomic uint64_t rejected;
    _Atomic uint64_t dropped;
    uint32_t consumer;   /* the worker that consumes this ring */
    uint32_t listed;     /* 1 while on the producer's dirty list */
    _Atomic uint64_t tail; /* published: the consumer may read slots below it (release) */
    uint64_t pad_[7];
} sp_spsc_producer;

/* What a worker needs to post: at SP_WORKER_FAST_OFFSET in its (internal) struct. */
typedef struct sp_worker_fast {
    uint32_t id;
    uint32_t worker_count;
    uint32_t lane_count;
    uint32_t light_barrier; /* 1: membarrier is registered, the producer side is a compiler barrier */
    uint32_t strict_count;  /* lanes [0, strict_count) publish every post at once */
    uint32_t ndirty;        /* rings on the dirty list */
    sp_spsc_producer **out; /* [lane * worker_count + dest]: own queue for dest == id; NULL until created */
    _Atomic uint32_t **sleeping; /* [dest]: each worker's sleep flag (the first member of its struct) */
    sp_spsc_producer **dirty; /* rings with filled, unpublished slots: published when the batch ends */
    /* Queueing-latency sampling: UINT64_MAX (off), or 2^k - 1 — the post at ring position p gets a
     * CLOCK_MONOTONIC stamp in its slot's `seq` when (p + 1) & sample_mask == 0. Set by the
     * worker itself at a round boundary (sp_engine_enable_timing). */
    uint64_t sample_mask;
    uint64_t pad_;
} sp_worker_fast;

/* Cross-core posts from a handler to a weighted lane of an awake worker are published every this
 * many events, or when the handler's batch ends, or at sp_worker_flush_now (like NIO's flush at
 * channelReadComplete): the destination sees whole batches, and the cache line holding the
 * ring's tail moves between cores once per batch instead of once per event. Strict lanes, a
 * sleeping destination and a worker's own queue are published at every post. */
#define SP_PUBLISH_BATCH 32

#define SP_WORKER_FAST_OFFSET 64
/* A worker's struct begins with its sleep flag and its urgent flag (engine.h asserts both). */
#define SP_WORKER_SLEEPING_OFFSET 0
#define SP_WORKER_URGENT_OFFSET 4

/* The urgent flag of worker `w`: character arithmetic inside the struct sp_worker object (the
 * offsetof idiom), then the member's own type, `_Atomic uint32_t`. (Not `flag + 1` from the sleep
 * flag: that would step past a single object, and read an `_Atomic` object as a plain one.) */
static inline __attribute__((always_inline)) _Atomic uint32_t *sp_worker_urgent_flag(sp_worker *w) {
    return (_Atomic uint32_t *)((char *)w + SP_WORKER_URGENT_OFFSET);
}

/** Non-zero when a strict lane of worker `w` received an event since the worker last served its
 *  strict lanes: a weighted lane's batch in progress stops after the current handler (read once
 *  per event by the handler loop; set by producers, cleared by the scheduler). */
static inline __attribute__((always_inline)) uint32_t sp_worker_urgent(const sp_worker *w) {
    return atomic_load_explicit((const _Atomic uint32_t *)((const char *)w + SP_WORKER_URGENT_OFFSET),
                                memory_order_relaxed);
}

/* Tells worker `d` that a strict lane has work. */
static inline __attribute__((always_inline)) void sp_mark_urgent(sp_worker *d) {
    _Atomic uint32_t *urgent = sp_worker_urgent_flag(d);
    if (!atomic_load_explicit(urgent, memory_order_relaxed)) atomic_store_explicit(urgent, 1, memory_order_relaxed);
}

/** Publishes now what this worker's handler posted cross-core and the engine would otherwise
 *  publish when the batch ends (ctx.flush()). */
void sp_worker_flush_now(sp_worker *w);

/** Wakes worker `dest` if it sleeps (the slow half of the fast path). */
void sp_worker_wake(sp_worker *w, uint32_t dest);

/** ``sp_worker_post`` with its common case inline: destination a worker index or SP_DEST_SELF,
 *  ring not full. Anything else (spread, a full ring, a ring not yet created, bad arguments) takes
 *  the out-of-line path, which does the same and handles the rest. */
static inline __attribute__((always_inline)) int sp_worker_post_fast(sp_worker *w, uint32_t dest, uint32_t lane, uint32_t kind, uint32_t flags,
                                      const void *payload, uint32_t len) {
    const sp_worker_fast *f = (const sp_worker_fast *)((const char *)w + SP_WORKER_FAST_OFFSET);
    if (dest == SP_DEST_SELF) dest = f->id;
    if (__builtin_expect(dest >= f->worker_count || lane >= f->lane_count, 0))
        return sp_worker_post(w, dest, lane, kind, flags, payload, len);
    sp_spsc_producer *r = f->out[lane * f->worker_count + dest];
    if (__builtin_expect(r == 0, 0)) return sp_worker_post(w, dest, lane, kind, flags, payload, len);
    uint64_t pt = r->ptail;
    /* Looks full by the cached head: the out-of-line path re-reads head (acquire) or refuses. */
    if (__builtin_expect(pt - r->head_cache > r->mask, 0)) return sp_worker_post(w, dest, lane, kind, flags, payload, len);
    sp_slot *s = &r->slots[pt & r->mask];
    s->kind = kind;
    s->flags = flags;
    memcpy(s->payload, payload, len);
    /* Latency sampling: one post in 2^k per ring is stamped; off, (pt + 1) & UINT64_MAX is never 0. */
    if (__builtin_expect(((pt + 1) & f->sample_mask) == 0, 0)) s->seq = sp_now_ns();
    r->ptail = pt + 1;
    if (dest == f->id) {
        /* Own queue: the consumer is this thread; publishing is a plain store. */
        r->pub = pt + 1;
        atomic_store_explicit(&r->tail, pt + 1, memory_order_release);
        /* The sleep flag is the first member of its worker's struct: a pointer to it, converted,
         * points to the worker (C11 6.7.2.1p15). */
        if (lane < f->strict_count) sp_mark_urgent((sp_worker *)f->sleeping[dest]);
        return SP_OK;
    }
    /* Defer only towards an awake worker: a sleeping one is published to (and woken) at once. The
     * flag is looked at when a deferred run starts, not on every post (the slot stream keeps
     * evicting its line from L1: reading it per post cost 15 % of the producer's time); one that
     * falls asleep during the run is woken by the flush. */
    if (lane >= f->strict_count && pt + 1 - r->pub < SP_PUBLISH_BATCH &&
        (pt != r->pub || atomic_load_explicit(f->sleeping[dest], memory_order_relaxed) == 0)) {
        if (!r->listed) {
            r->listed = 1;
            ((sp_worker_fast *)f)->dirty[((sp_worker_fast *)f)->ndirty++] = r;
        }
        return SP_OK;
    }
    /* release: pairs with the consumer's acquire of tail (ring.h sp_spsc_peek). */
    r->pub = pt + 1;
    atomic_store_explicit(&r->tail, pt + 1, memory_order_release);
    if (lane < f->strict_count) sp_mark_urgent((sp_worker *)f->sleeping[dest]);
    /* The light side of the sleep handshake (barrier.h): then look at the sleep flag. */
    if (f->light_barrier)
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
    else
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__builtin_expect(atomic_load_explicit(f->sleeping[dest], memory_order_relaxed) != 0, 0)) sp_worker_wake(w, dest);
    return SP_OK;
}

#endif
