/*
 * timing.h — batch times and sampled queueing latency per (worker, lane), for swift-metrics
 * timers (SpindleMetrics). Off until sp_engine_enable_timing; off, the hot path pays one
 * predictable branch per batch (w->timing) and one per post (the sample mask).
 *
 * On, per batch: two vDSO CLOCK_MONOTONIC reads (start, end). Per post: nothing, except one post
 * in 2^k per ring, which reads the clock once and writes a stamp — into its slot's unused `seq`
 * (SPSC) or a cell beside the MPSC ring. The consumer looks only at the sampled positions of the
 * batch it ran (arithmetic on the ring position, no per-event test), and records start - stamp.
 *
 * Durations go into small single-writer buffers (the worker writes, the sampler drains: no RMW,
 * no lock on the worker); when the sampler falls behind, the newest durations are counted as
 * `lost` instead of overwriting ones not yet read.
 */
#ifndef SP_TIMING_H
#define SP_TIMING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ring.h"

#define SP_TIMING_BUF 256 /* durations buffered per (worker, lane, timer) between two drains */

typedef struct sp_durations {
    _Alignas(SP_CACHELINE) _Atomic uint64_t tail; /* worker: durations buffered so far */
    uint64_t head_cache;                          /* worker's last view of head */
    _Atomic uint64_t lost;                        /* worker: measured, buffer full, not kept */
    _Alignas(SP_CACHELINE) _Atomic uint64_t head; /* sampler: drained so far */
    _Atomic uint64_t ns[SP_TIMING_BUF];
} sp_durations;

typedef struct sp_lane_timing {
    sp_durations batch;   /* each batch's duration (handlers of one dispatch) */
    sp_durations latency; /* each sampled event: batch start - its enqueue stamp */
    _Alignas(SP_CACHELINE) sp_stamp *cells; /* the stamps of this (worker, lane)'s MPSC ring */
    uint64_t cell_mask;
    _Atomic uint64_t missed; /* worker: a sampled position without its stamp (enabled mid-flight) */
} sp_lane_timing;

struct sp_timing {
    uint32_t shift;
    uint64_t mask; /* 2^shift - 1 */
    uint32_t lane_count;
    pthread_mutex_t drain_lock; /* one drain at a time (the sampler side only) */
    sp_lane_timing *lanes;      /* [worker * lane_count + lane] */
    size_t bytes;
};

/* lanes.c, after a batch of `n` handled events that started at `t0` (precise ns), taken from
 * `ring` (an sp_spsc, or the sp_mpsc when `mpsc`) at its head, which is not yet released. */
void sp_timing_batch(sp_worker *w, sp_lane_timing *lt, void *ring, int mpsc, sp_slot *slots, uint32_t n, uint64_t t0);

/* tune.c: the worker takes timing at a round boundary. */
void sp_worker_take_timing(sp_worker *w);

void sp_timing_free(sp_engine *e);

#endif
