/*
 * peers_internal.h — what the peer files share: the slot, cache-line padding, the two-thread runner.
 */
#ifndef CBP_INTERNAL_H
#define CBP_INTERNAL_H
#include "cbench_peers.h"
#include <stddef.h>
#include <string.h>

#define CBP_CACHE_LINE 64

/* Spindle's slot: a cache line with a 16-byte header and 48 bytes of payload (same layout as
 * sp_slot), so a peer moves exactly the bytes Spindle moves. */
typedef struct __attribute__((aligned(CBP_CACHE_LINE))) cbp_slot {
    uint64_t seq;
    uint32_t kind;
    uint32_t flags;
    unsigned char payload[48] __attribute__((aligned(16)));
} cbp_slot;

/* The benchmark's event: 16 bytes, as in the Spindle rows. */
typedef struct cbp_event {
    uint64_t value;
    uint64_t stamp; /* post time for probes, 0 otherwise */
} cbp_event;

_Static_assert(sizeof(cbp_slot) == CBP_SLOT_SIZE, "slot must be one cache line");

static inline void cbp_write_event(cbp_slot *s, uint32_t kind, const cbp_event *e) {
    s->kind = kind;
    s->flags = 0;
    memcpy(s->payload, e, sizeof *e);
}

static inline cbp_event cbp_read_event(const cbp_slot *s) {
    cbp_event e;
    memcpy(&e, s->payload, sizeof e);
    return e;
}

/* Runs `producer` and `consumer` on two new threads pinned to their CPUs, both released by one
 * start barrier so neither measures the other's creation. Returns 0 or an errno value. */
typedef struct cbp_pair {
    void *(*producer)(void *);
    void *(*consumer)(void *);
    void *arg;
    int producer_cpu;
    int consumer_cpu;
    int ready; /* start barrier: both threads increment, then spin until 2 */
} cbp_pair;

int cbp_run_pair(cbp_pair *pair);
/* Called first by each side of a pair: pins, then waits at the barrier. */
void cbp_pair_enter(cbp_pair *pair, int cpu);

void *cbp_alloc_lines(size_t bytes); /* cache-line aligned, zeroed */

#endif
