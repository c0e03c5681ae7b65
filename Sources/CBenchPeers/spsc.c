/*
 * spsc.c — the raw single-producer single-consumer ring: the physical limit of Spindle's cross-core
 * handoff. Same geometry as Spindle's SPSC rings (64-byte slots, 4096 of them, batches of 32).
 */
#include "peers_internal.h"
#include <stdlib.h>

#define MASK (CBP_CAPACITY - 1)

typedef struct spsc_ring {
    /* Producer line: its index and its cached copy of the consumer's, so the producer reads the
     * consumer's line only when the cached view says the ring is full. */
    _Alignas(CBP_CACHE_LINE) uint64_t head;
    uint64_t cached_tail;
    char pad0[CBP_CACHE_LINE - 2 * sizeof(uint64_t)];
    /* Consumer line, likewise; apart from the producer's so the two never false-share. */
    _Alignas(CBP_CACHE_LINE) uint64_t tail;
    uint64_t cached_head;
    char pad1[CBP_CACHE_LINE - 2 * sizeof(uint64_t)];
    cbp_slot slots[CBP_CAPACITY];
} spsc_ring;

/* Room for `n` slots? Refreshes the cached tail only when the cached view is too small. */
static inline int spsc_reserve(spsc_ring *r, uint32_t n) {
    if (r->head + n - r->cached_tail <= CBP_CAPACITY) return 1;
    /* acquire: pairs with the release store of tail in spsc_consume (slots are free to overwrite) */
    r->cached_tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    return r->head + n - r->cached_tail <= CBP_CAPACITY;
}

static inline void spsc_fill(spsc_ring *r, uint64_t first_value, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        cbp_event e = {first_value + i, 0};
        cbp_write_event(&r->slots[(r->head + i) & MASK], 1, &e);
    }
}

static inline void spsc_publish(spsc_ring *r, uint32_t n) {
    /* release: pairs with the acquire load of head in spsc_consume (slot contents visible first) */
    __atomic_store_n(&r->head, r->head + n, __ATOMIC_RELEASE);
}

/* Consumes up to CBP_BATCH slots, reading every payload. Returns how many. */
static inline uint32_t spsc_consume(spsc_ring *r, uint64_t *sum) {
    uint64_t avail = r->cached_head - r->tail;
    if (avail == 0) {
        /* acquire: pairs with the release store in spsc_publish */
        r->cached_head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        avail = r->cached_head - r->tail;
        if (avail == 0) return 0;
    }
    uint32_t n = avail < CBP_BATCH ? (uint32_t)avail : CBP_BATCH;
    uint64_t s = 0;
    for (uint32_t i = 0; i < n; i++) {
        const cbp_slot *slot = &r->slots[(r->tail + i) & MASK];
        cbp_event e = cbp_read_event(slot);
        s += e.value + slot->kind;
    }
    *sum += s;
    /* release: pairs with the acquire load of tail in spsc_reserve (we are done reading) */
    __atomic_store_n(&r->tail, r->tail + n, __ATOMIC_RELEASE);
    return n;
}

typedef struct spsc_run {
    cbp_pair pair;
    spsc_ring *ring;
    uint64_t events;
    uint64_t start_ns, end_ns, sum;
} spsc_run;

static void *spsc_producer(void *arg) {
    spsc_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.producer_cpu);
    run->start_ns = cbp_now_ns();
    for (uint64_t sent = 0; sent < run->events;) {
        uint64_t left = run->events - sent;
        uint32_t n = left < CBP_BATCH ? (uint32_t)left : CBP_BATCH;
        while (!spsc_reserve(run->ring, n))
            cbp_relax();
        spsc_fill(run->ring, sent, n);
        spsc_publish(run->ring, n);
        sent += n;
    }
    return NULL;
}

static void *spsc_consumer(void *arg) {
    spsc_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.consumer_cpu);
    uint64_t got = 0, sum = 0;
    while (got < run->events) {
        uint32_t n = spsc_consume(run->ring, &sum);
        if (n == 0) cbp_relax();
        got += n;
        cbp_beat(n);
    }
    run->end_ns = cbp_now_ns();
    run->sum = sum;
    return NULL;
}

int cbp_spsc_cross(uint64_t events, int producer_cpu, int consumer_cpu, cbp_trial *out) {
    spsc_ring *ring = cbp_alloc_lines(sizeof(spsc_ring));
    if (!ring) return 12;
    spsc_run run = {.ring = ring, .events = events};
    run.pair = (cbp_pair){.producer = spsc_producer,
                          .consumer = spsc_consumer,
                          .arg = &run,
                          .producer_cpu = producer_cpu,
                          .consumer_cpu = consumer_cpu};
    int rc = cbp_run_pair(&run.pair);
    free(ring);
    if (rc != 0) return rc;
    *out = (cbp_trial){.events = events, .elapsed_ns = run.end_ns - run.start_ns, .checksum = run.sum};
    return 0;
}

int cbp_spsc_same(uint64_t events, int cpu, cbp_trial *out) {
    spsc_ring *ring = cbp_alloc_lines(sizeof(spsc_ring));
    if (!ring) return 12;
    cbp_pin_self(cpu);
    uint64_t sum = 0, got = 0, sent = 0;
    uint64_t start = cbp_now_ns();
    while (got < events) {
        uint64_t left = events - sent;
        uint32_t n = left < CBP_BATCH ? (uint32_t)left : CBP_BATCH;
        if (n > 0 && spsc_reserve(ring, n)) {
            spsc_fill(ring, sent, n);
            spsc_publish(ring, n);
            sent += n;
        }
        got += spsc_consume(ring, &sum);
    }
    uint64_t end = cbp_now_ns();
    free(ring);
    *out = (cbp_trial){.events = events, .elapsed_ns = end - start, .checksum = sum};
    return 0;
}
