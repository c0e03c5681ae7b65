/*
 * mutexq.c — the textbook queue: a ring under a pthread mutex, with "not empty" and "not full"
 * condition variables signalled only when the other side waits; the consumer drains up to a batch per
 * lock. The peer a C or Swift user reaches for first.
 */
#include "fifo.h"
#include <stdlib.h>

#define MASK (CBP_CAPACITY - 1)

mutex_queue *mutexq_create(void) {
    mutex_queue *q = cbp_alloc_lines(sizeof(mutex_queue));
    if (!q) return NULL;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    return q;
}

void mutexq_destroy(mutex_queue *q) {
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    free(q);
}

void mutexq_push(mutex_queue *q, const cbp_event *e) {
    pthread_mutex_lock(&q->lock);
    while (q->head - q->tail == CBP_CAPACITY) {
        q->producer_waiting = 1;
        pthread_cond_wait(&q->not_full, &q->lock);
    }
    q->items[q->head & MASK] = *e;
    q->head++;
    int wake = q->consumer_waiting;
    pthread_mutex_unlock(&q->lock);
    if (wake) pthread_cond_signal(&q->not_empty);
}

uint32_t mutexq_pop(mutex_queue *q, cbp_event *out, uint32_t max) {
    pthread_mutex_lock(&q->lock);
    while (q->head == q->tail) {
        q->consumer_waiting = 1;
        pthread_cond_wait(&q->not_empty, &q->lock);
    }
    q->consumer_waiting = 0;
    uint64_t avail = q->head - q->tail;
    uint32_t n = avail < max ? (uint32_t)avail : max;
    for (uint32_t i = 0; i < n; i++)
        out[i] = q->items[(q->tail + i) & MASK];
    q->tail += n;
    int wake = q->producer_waiting;
    q->producer_waiting = 0;
    pthread_mutex_unlock(&q->lock);
    if (wake) pthread_cond_signal(&q->not_full);
    return n;
}

typedef struct mutexq_run {
    cbp_pair pair;
    mutex_queue *q;
    uint64_t events, start_ns, end_ns, sum;
} mutexq_run;

static void *mq_producer(void *arg) {
    mutexq_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.producer_cpu);
    run->start_ns = cbp_now_ns();
    for (uint64_t i = 0; i < run->events; i++) {
        cbp_event e = {i, 0};
        mutexq_push(run->q, &e);
    }
    return NULL;
}

static void *mq_consumer(void *arg) {
    mutexq_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.consumer_cpu);
    cbp_event buf[CBP_BATCH];
    uint64_t got = 0, sum = 0;
    while (got < run->events) {
        uint32_t n = mutexq_pop(run->q, buf, CBP_BATCH);
        for (uint32_t i = 0; i < n; i++)
            sum += buf[i].value;
        got += n;
        cbp_beat(n);
    }
    run->end_ns = cbp_now_ns();
    run->sum = sum;
    return NULL;
}

int cbp_mutexq_cross(uint64_t events, int producer_cpu, int consumer_cpu, cbp_trial *out) {
    mutex_queue *q = mutexq_create();
    if (!q) return 12;
    mutexq_run run = {.q = q, .events = events};
    run.pair = (cbp_pair){.producer = mq_producer,
                          .consumer = mq_consumer,
                          .arg = &run,
                          .producer_cpu = producer_cpu,
                          .consumer_cpu = consumer_cpu};
    int rc = cbp_run_pair(&run.pair);
    mutexq_destroy(q);
    if (rc != 0) return rc;
    *out = (cbp_trial){.events = events, .elapsed_ns = run.end_ns - run.start_ns, .checksum = run.sum};
    return 0;
}
