/*
 * fifo.h — the two FIFO queues the peers share between throughput and priority runs: a Vyukov
 * bounded MPSC ring and a mutex + condition-variable queue.
 */
#ifndef CBP_FIFO_H
#define CBP_FIFO_H
#include "peers_internal.h"
#include <pthread.h>

/* ---- Vyukov bounded MPSC ---------------------------------------------------------------------- */

typedef struct mpsc_ring {
    /* Producers' claim counter: contended among producers only, on its own line. */
    _Alignas(CBP_CACHE_LINE) uint64_t enqueue_pos;
    char pad0[CBP_CACHE_LINE - sizeof(uint64_t)];
    /* The single consumer's position: private to the consumer, own line. */
    _Alignas(CBP_CACHE_LINE) uint64_t dequeue_pos;
    char pad1[CBP_CACHE_LINE - sizeof(uint64_t)];
    cbp_slot slots[CBP_CAPACITY]; /* slot.seq is the Vyukov sequence */
} mpsc_ring;

mpsc_ring *mpsc_create(void);
/* 1 when posted, 0 when full. */
int mpsc_push(mpsc_ring *r, const cbp_event *e);
/* Pops up to `max` events into `out`; returns how many. */
uint32_t mpsc_pop(mpsc_ring *r, cbp_event *out, uint32_t max);

/* ---- mutex + condition variables ---------------------------------------------------------------- */

typedef struct mutex_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    uint64_t head, tail;
    int consumer_waiting, producer_waiting;
    cbp_event items[CBP_CAPACITY];
} mutex_queue;

mutex_queue *mutexq_create(void);
void mutexq_destroy(mutex_queue *q);
/* Blocks while full. */
void mutexq_push(mutex_queue *q, const cbp_event *e);
/* Blocks while empty; takes up to `max`. */
uint32_t mutexq_pop(mutex_queue *q, cbp_event *out, uint32_t max);

#endif
