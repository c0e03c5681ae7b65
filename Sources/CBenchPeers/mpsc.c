/*
 * mpsc.c — Dmitry Vyukov's bounded MPSC ring (per-slot sequence numbers), the raw peer of Spindle's
 * foreign-thread path, and its throughput run.
 */
#include "fifo.h"
#include <stdlib.h>

#define MASK (CBP_CAPACITY - 1)

mpsc_ring *mpsc_create(void) {
    mpsc_ring *r = cbp_alloc_lines(sizeof(mpsc_ring));
    if (!r) return NULL;
    for (uint64_t i = 0; i < CBP_CAPACITY; i++)
        r->slots[i].seq = i;
    return r;
}

int mpsc_push(mpsc_ring *r, const cbp_event *e) {
    uint64_t pos = __atomic_load_n(&r->enqueue_pos, __ATOMIC_RELAXED);
    for (;;) {
        cbp_slot *s = &r->slots[pos & MASK];
        /* acquire: pairs with the consumer's release of seq (the slot is free again) */
        uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            /* relaxed CAS: the slot's seq, not the position, publishes the data */
            if (__atomic_compare_exchange_n(&r->enqueue_pos, &pos, pos + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
                cbp_write_event(s, 1, e);
                /* release: pairs with the consumer's acquire of seq (payload visible first) */
                __atomic_store_n(&s->seq, pos + 1, __ATOMIC_RELEASE);
                return 1;
            }
        } else if (dif < 0) {
            return 0; /* full */
        } else {
            pos = __atomic_load_n(&r->enqueue_pos, __ATOMIC_RELAXED);
        }
    }
}

uint32_t mpsc_pop(mpsc_ring *r, cbp_event *out, uint32_t max) {
    uint32_t n = 0;
    uint64_t pos = r->dequeue_pos;
    while (n < max) {
        cbp_slot *s = &r->slots[pos & MASK];
        /* acquire: pairs with the producer's release of seq */
        uint64_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
        if (seq != pos + 1) break;
        out[n++] = cbp_read_event(s);
        /* release: the producer may reuse the slot one lap later */
        __atomic_store_n(&s->seq, pos + CBP_CAPACITY, __ATOMIC_RELEASE);
        pos++;
    }
    r->dequeue_pos = pos;
    return n;
}

typedef struct mpsc_run {
    cbp_pair pair;
    mpsc_ring *ring;
    uint64_t events, start_ns, end_ns, sum;
} mpsc_run;

static void *mpsc_producer(void *arg) {
    mpsc_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.producer_cpu);
    run->start_ns = cbp_now_ns();
    for (uint64_t i = 0; i < run->events; i++) {
        cbp_event e = {i, 0};
        while (!mpsc_push(run->ring, &e))
            cbp_relax();
    }
    return NULL;
}

static void *mpsc_consumer(void *arg) {
    mpsc_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.consumer_cpu);
    cbp_event buf[CBP_BATCH];
    uint64_t got = 0, sum = 0;
    while (got < run->events) {
        uint32_t n = mpsc_pop(run->ring, buf, CBP_BATCH);
        if (n == 0) {
            cbp_relax();
            continue;
        }
        for (uint32_t i = 0; i < n; i++)
            sum += buf[i].value;
        got += n;
        cbp_beat(n);
    }
    run->end_ns = cbp_now_ns();
    run->sum = sum;
    return NULL;
}

int cbp_mpsc_cross(uint64_t events, int producer_cpu, int consumer_cpu, cbp_trial *out) {
    mpsc_ring *ring = mpsc_create();
    if (!ring) return 12;
    mpsc_run run = {.ring = ring, .events = events};
    run.pair = (cbp_pair){.producer = mpsc_producer,
                          .consumer = mpsc_consumer,
                          .arg = &run,
                          .producer_cpu = producer_cpu,
                          .consumer_cpu = consumer_cpu};
    int rc = cbp_run_pair(&run.pair);
    free(ring);
    if (rc != 0) return rc;
    *out = (cbp_trial){.events = events, .elapsed_ns = run.end_ns - run.start_ns, .checksum = run.sum};
    return 0;
}
