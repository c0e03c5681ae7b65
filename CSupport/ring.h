/*
 * ring.h — the lock-free rings a lane is made of.
 *
 * SPSC: one producer thread, one consumer thread (worker → worker, and a worker's own local
 * queue where both are the same thread). MPSC: Vyukov's bounded queue with a sequence number per
 * slot, for threads that are not workers. Slots are 64-byte cache lines (sp_slot); capacity is a
 * power of two so an index maps to a slot with a mask. Indices are 64-bit and never wrap in
 * practice, so `tail - head` is the fill level and `tail` is the count ever enqueued.
 *
 * Hot functions are static inline: they run once per event.
 */
#ifndef SP_RING_H
#define SP_RING_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "spindle.h"
#include "spindle_fast.h"

#define SP_CACHELINE 64

/* ---- SPSC ------------------------------------------------------------------------------------ */

typedef struct sp_spsc {
    /* Producer's private line: written on every post, read by nobody else on the hot path (stats
     * read the counters). The consumer polls only the published `tail` on the next line, so a
     * post never invalidates a line the consumer is spinning on: false sharing here turned every
     * event into a cache-line round trip (measured: ~2× cross-core throughput). */
    _Alignas(SP_CACHELINE) uint64_t ptail; /* filled up to here; [tail, ptail) not yet published */
    uint64_t head_cache;          /* producer's last view of head: re-read only when the ring looks full */
    uint64_t pub;                 /* producer's copy of tail */
    uint64_t p_mask;
    sp_slot *p_slots;
    _Atomic uint64_t rejected;    /* producer-owned counters, read by stats (relaxed) */
    _Atomic uint64_t dropped;
    uint32_t consumer;            /* worker id of the consumer */
    uint32_t listed;              /* on the producer's dirty list (spindle_fast.h) */

    /* Published tail: written once per publish, polled by the consumer. */
    _Alignas(SP_CACHELINE) _Atomic uint64_t tail;
    /* Latency sampling (timing.h): SP_SAMPLE_OFF, or 2^k - 1 — the post at position p is stamped
     * when (p + 1) & sample_mask == 0. Written only by the producer's thread (at a round boundary,
     * or when it creates the ring); read by sp_spsc_push, on the line it writes `tail` to anyway.
     * (spindle_fast.h's inline path reads the worker's own copy, sp_worker_fast.sample_mask.) */
    uint64_t sample_mask;

    /* Consumer's line: the producer reads head only when its cached view says full. */
    _Alignas(SP_CACHELINE) _Atomic uint64_t head;
    uint64_t tail_cache;          /* consumer's last view of tail: re-read only when the ring looks empty */
    uint64_t c_mask;
    sp_slot *c_slots;
} sp_spsc;

/* ---- MPSC ------------------------------------------------------------------------------------ */

typedef struct sp_mpsc {
    /* Producers' line: claimed with a CAS on `tail`. */
    _Alignas(SP_CACHELINE) _Atomic uint64_t tail;
    uint64_t p_mask;
    sp_slot *p_slots;
    /* Latency sampling (timing.h): SP_SAMPLE_OFF until sp_engine_enable_timing, then 2^k - 1.
     * A sampled post writes its stamp into stamps[(p >> k) & stamp_mask] (a slot's `seq` is the
     * Vyukov sequence here) before it publishes the slot. Set once (release), read per post
     * (relaxed, on the line the producer CASes anyway). */
    _Atomic uint64_t sample_mask;
    _Atomic(struct sp_stamp *) stamps;
    uint64_t stamp_mask;
    /* Counters and the block-lane waiter handshake: touched only on the full/reject slow path,
     * so kept off the line every producer CASes. */
    _Alignas(SP_CACHELINE) _Atomic uint64_t rejected;
    _Atomic uint64_t dropped;
    _Atomic uint32_t waiters;  /* a blocked producer is waiting for room */
    _Atomic uint32_t wait_seq; /* futex word: bumped by the consumer to wake blocked producers */

    /* Consumer's line. */
    _Alignas(SP_CACHELINE) _Atomic uint64_t head;
    uint64_t c_mask;
    sp_slot *c_slots;
} sp_mpsc;

/* spindle_fast.h's producer view must match the producer's line: same offsets and same field
 * types (`_Atomic` included), so a read through the view reads the ring's own object. */
#define SP_FAST_FIELD(ring, view)                                                                    \
    _Static_assert(__builtin_offsetof(sp_spsc, ring) == __builtin_offsetof(sp_spsc_producer, view) &&  \
                       __builtin_types_compatible_p(__typeof__(&((sp_spsc *)0)->ring),                 \
                                                    __typeof__(&((sp_spsc_producer *)0)->view)),       \
                   "fast layout: " #ring)
SP_FAST_FIELD(ptail, ptail);
SP_FAST_FIELD(head_cache, head_cache);
SP_FAST_FIELD(pub, pub);
SP_FAST_FIELD(p_mask, mask);
SP_FAST_FIELD(p_slots, slots);
SP_FAST_FIELD(rejected, rejected);
SP_FAST_FIELD(dropped, dropped);
SP_FAST_FIELD(consumer, consumer);
SP_FAST_FIELD(listed, listed);
SP_FAST_FIELD(tail, tail);

/* ---- latency sampling (see timing.h) ----------------------------------------------------------- */

/* Sampling off: (p + 1) & SP_SAMPLE_OFF is never 0 (positions never reach 2^64 - 1). */
#define SP_SAMPLE_OFF UINT64_MAX

/* An MPSC ring's stamp of sampled position `pos`: CLOCK_MONOTONIC ns when it was enqueued. The
 * consumer trusts it only when `pos` matches (a producer that had not yet seen sampling on leaves
 * the cell of an earlier lap). */
typedef struct sp_stamp {
    uint64_t pos;
    uint64_t ns;
} sp_stamp;

/* SPSC: a sampled post's stamp goes into its slot's `seq`, unused by SPSC rings (0 = none). The
 * consumer reads and clears it before it releases the slot. */
static inline __attribute__((always_inline)) void sp_spsc_stamp(sp_spsc *r, uint64_t pos, uint32_t count) {
    uint64_t m = r->sample_mask;
    if (__builtin_expect(m == SP_SAMPLE_OFF, 1)) return;
    uint64_t now = 0;
    for (uint64_t q = (pos + 1 + m) & ~m; q <= pos + count; q += m + 1) {
        if (!now) now = sp_now_ns();
        r->p_slots[(q - 1) & r->p_mask].seq = now;
    }
}

/* MPSC: the slots [pos, pos + count) are claimed, not yet published. */
static inline void sp_mpsc_stamp(sp_mpsc *r, uint64_t m, uint64_t pos, uint32_t count) {
    /* acquire: pairs with the release in sp_engine_enable_timing (the cells before the pointer). */
    sp_stamp *cells = atomic_load_explicit(&r->stamps, memory_order_acquire);
    if (!cells) return;
    uint32_t shift = (uint32_t)__builtin_popcountll(m);
    uint64_t now = 0;
    for (uint64_t q = (pos + 1 + m) & ~m; q <= pos + count; q += m + 1) {
        if (!now) now = sp_now_ns();
        /* Two live sampled positions never share a cell: they are less than a ring apart, and
         * the cells cover a ring (timing.c). The consumer reads it after the slot's publish. */
        sp_stamp *c = &cells[((q - 1) >> shift) & r->stamp_mask];
        c->pos = q - 1;
        c->ns = now;
    }
}

static inline __attribute__((always_inline)) void sp_mpsc_stamp_if(sp_mpsc *r, uint64_t pos, uint32_t count) {
    uint64_t m = atomic_load_explicit(&r->sample_mask, memory_order_relaxed);
    if (__builtin_expect(m != SP_SAMPLE_OFF, 0)) sp_mpsc_stamp(r, m, pos, count);
}

size_t sp_spsc_bytes(uint32_t capacity);
size_t sp_mpsc_bytes(uint32_t capacity);
/* Initialise a ring in zeroed memory of sp_*_bytes(capacity) bytes (header then slots). */
sp_spsc *sp_spsc_init(void *mem, uint32_t capacity, uint32_t consumer);
sp_mpsc *sp_mpsc_init(void *mem, uint32_t capacity);

static inline void sp_slot_fill(sp_slot *s, uint32_t kind, uint32_t flags, const void *payload, uint32_t len) {
    s->kind = kind;
    s->flags = flags;
    memcpy(s->payload, payload, len);
}

/* Producer: room for `n` more events? Re-reads head only when the cached view says no. */
static inline int sp_spsc_has_room(sp_spsc *r, uint64_t tail, uint32_t n) {
    uint64_t cap = r->p_mask + 1;
    if (tail + n - r->head_cache <= cap) return 1;
    /* acquire: pairs with the release store of head in sp_spsc_release — the consumer has finished
     * reading the slots before head, so they may be overwritten. */
    r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
    return tail + n - r->head_cache <= cap;
}

/* Writes at ptail (after any slots the fast path filled and has not published yet, so order
 * holds) and publishes everything up to the new end. */
static inline int sp_spsc_push(sp_spsc *r, uint32_t kind, uint32_t flags, const void *payload, uint32_t len) {
    uint64_t pt = r->ptail; /* only this thread writes it */
    if (!sp_spsc_has_room(r, pt, 1)) return 0;
    sp_slot_fill(&r->p_slots[pt & r->p_mask], kind, flags, payload, len);
    sp_spsc_stamp(r, pt, 1);
    r->ptail = pt + 1;
    r->pub = pt + 1;
    /* release: pairs with the acquire load of tail in sp_spsc_peek — the slot is written before
     * the consumer can see it. */
    atomic_store_explicit(&r->tail, pt + 1, memory_order_release);
    return 1;
}

static inline int sp_spsc_push_batch(sp_spsc *r, uint32_t kind, uint32_t flags, const unsigned char *payloads,
                                     size_t stride, uint32_t len, uint32_t count) {
    uint64_t pt = r->ptail;
    if (!sp_spsc_has_room(r, pt, count)) return 0;
    for (uint32_t i = 0; i < count; i++)
        sp_slot_fill(&r->p_slots[(pt + i) & r->p_mask], kind, flags, payloads + (size_t)i * stride, len);
    sp_spsc_stamp(r, pt, count);
    r->ptail = pt + count;
    r->pub = pt + count;
    atomic_store_explicit(&r->tail, pt + count, memory_order_release); /* one publish; pairs as above */
    return 1;
}

/* Publishes what the fast path filled. Returns 1 when something was published. */
static inline int sp_spsc_publish(sp_spsc *r) {
    r->listed = 0;
    if (r->pub == r->ptail) return 0;
    r->pub = r->ptail;
    atomic_store_explicit(&r->tail, r->ptail, memory_order_release); /* pairs with sp_spsc_peek */
    return 1;
}

/* Consumer: up to `max` events contiguous in memory starting at the head (a wrap splits a batch). */
static inline uint32_t sp_spsc_peek(sp_spsc *r, uint32_t max, sp_slot **out) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed); /* only this thread writes it */
    uint64_t avail = r->tail_cache - head;
    if (avail == 0) {
        /* acquire: pairs with the release store in sp_spsc_push — slot contents are visible. */
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        avail = r->tail_cache - head;
        if (avail == 0) return 0;
    }
    uint64_t idx = head & r->c_mask;
    uint64_t contiguous = r->c_mask + 1 - idx;
    if (avail > contiguous) avail = contiguous;
    if (avail > max) avail = max;
    *out = &r->c_slots[idx];
    return (uint32_t)avail;
}

static inline void sp_spsc_release(sp_spsc *r, uint32_t n) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* release: pairs with the acquire of head in sp_spsc_has_room — our reads of these slots are
     * done before the producer may reuse them. */
    atomic_store_explicit(&r->head, head + n, memory_order_release);
}

/* Any event visible to the consumer? (Reads the producer's line only when the cache says empty.) */
static inline int sp_spsc_nonempty(sp_spsc *r) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (r->tail_cache != head) return 1;
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    return r->tail_cache != head;
}

/* ---- MPSC (Vyukov) --------------------------------------------------------------------------- */

/* A slot's `seq` is a plain uint64_t (sp_slot is public, and Swift imports no `_Atomic` field): it
 * is read and written only with the __atomic builtins, which GCC and Clang define on ordinary
 * objects of integer type. (A cast to `_Atomic uint64_t *` would access a uint64_t object through
 * another type: undefined, and `_Atomic` types need not even share the representation.) */

/* Bit 63 of `tail` closes the ring (shutdown): a claim and the close are ordered by the same atomic
 * word, so a producer either claimed before the close — and the drain waits for its event — or is
 * refused. (A state check alone left a window: a producer that read RUNNING could claim after the
 * workers found the engine quiescent and exited; its event was never handled.) Positions never
 * reach 2^63. Readers of `tail` as a count use sp_mpsc_tail. */
#define SP_MPSC_CLOSED (1ull << 63)
#define SP_MPSC_REFUSED (UINT64_MAX - 1) /* sp_mpsc_claim: the ring is closed */

static inline uint64_t sp_mpsc_tail(sp_mpsc *r) {
    return atomic_load_explicit(&r->tail, memory_order_acquire) & ~SP_MPSC_CLOSED;
}

/* Closes the ring: every later claim is refused. seq_cst: ordered before the state store that
 * tells workers to drain, so a worker that sees the drain sees every claim made before it. */
static inline void sp_mpsc_close(sp_mpsc *r) { atomic_fetch_or_explicit(&r->tail, SP_MPSC_CLOSED, memory_order_seq_cst); }

/* Claims `n` consecutive slots: returns the first position, UINT64_MAX when there is no room, or
 * SP_MPSC_REFUSED when the ring is closed. */
static inline uint64_t sp_mpsc_claim(sp_mpsc *r, uint32_t n) {
    uint64_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
    for (;;) {
        if (__builtin_expect(pos & SP_MPSC_CLOSED, 0)) return SP_MPSC_REFUSED;
        uint64_t last = pos + n - 1;
        sp_slot *s = &r->p_slots[last & r->p_mask];
        /* acquire: pairs with the consumer's release of seq in sp_mpsc_release. The consumer frees
         * slots in order, so the last slot being free means all n are. */
        uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        int64_t dif = (int64_t)(seq - last);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->tail, &pos, pos + n, memory_order_relaxed,
                                                      memory_order_relaxed))
                return pos;
        } else if (dif < 0) {
            uint64_t now = atomic_load_explicit(&r->tail, memory_order_relaxed);
            if (now == pos) return UINT64_MAX; /* full: the slot still holds an event of the last lap */
            pos = now;
        } else {
            pos = atomic_load_explicit(&r->tail, memory_order_relaxed);
        }
    }
}

static inline void sp_mpsc_publish(sp_mpsc *r, uint64_t pos) {
    sp_slot *s = &r->p_slots[pos & r->p_mask];
    /* release: pairs with the acquire in sp_mpsc_peek — contents before the sequence. */
    __atomic_store_n(&s->seq, pos + 1, __ATOMIC_RELEASE);
}

static inline int sp_mpsc_push(sp_mpsc *r, uint32_t kind, uint32_t flags, const void *payload, uint32_t len) {
    uint64_t pos = sp_mpsc_claim(r, 1);
    if (pos >= SP_MPSC_REFUSED) return 0;
    sp_slot_fill(&r->p_slots[pos & r->p_mask], kind, flags, payload, len);
    sp_mpsc_stamp_if(r, pos, 1);
    sp_mpsc_publish(r, pos);
    return 1;
}

static inline uint32_t sp_mpsc_peek(sp_mpsc *r, uint32_t max, sp_slot **out) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t idx = head & r->c_mask;
    uint64_t contiguous = r->c_mask + 1 - idx;
    if (max > contiguous) max = (uint32_t)contiguous;
    uint32_t n = 0;
    while (n < max) {
        sp_slot *s = &r->c_slots[idx + n];
        if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != head + n + 1) break;
        n++;
    }
    *out = &r->c_slots[idx];
    return n;
}

static inline void sp_mpsc_release(sp_mpsc *r, uint32_t n) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t cap = r->c_mask + 1;
    for (uint32_t i = 0; i < n; i++) {
        sp_slot *s = &r->c_slots[(head + i) & r->c_mask];
        /* release: pairs with the acquire in sp_mpsc_claim — the slot is free for the next lap. */
        __atomic_store_n(&s->seq, head + i + cap, __ATOMIC_RELEASE);
    }
    atomic_store_explicit(&r->head, head + n, memory_order_relaxed); /* read by stats only */
}

static inline int sp_mpsc_nonempty(sp_mpsc *r) {
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    sp_slot *s = &r->c_slots[head & r->c_mask];
    return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) == head + 1;
}

#endif
