/*
 * prio.c — priority isolation for the FIFO peers: one flooding producer held at a backlog of D
 * unhandled events (a credit window), a probe stamped at its post call every K flood posts. With one
 * FIFO queue a probe waits behind the whole backlog; that is what Spindle's lanes are compared with.
 */
#include "fifo.h"
#include <stdlib.h>

typedef struct prio_run {
    cbp_pair pair;
    cbp_fifo kind;
    mpsc_ring *ring;
    mutex_queue *q;
    uint64_t flood, probes, total;
    uint32_t backlog, probe_every, work_iters;
    uint64_t depth_sum;
    uint64_t *samples, max_samples, nsamples;
    _Alignas(CBP_CACHE_LINE) uint64_t handled; /* written by the consumer only, read by the flooder */
    char pad[CBP_CACHE_LINE - sizeof(uint64_t)];
    uint64_t start_ns, end_ns, sum;
} prio_run;

static inline void post(prio_run *run, const cbp_event *e) {
    if (run->kind == CBP_FIFO_MPSC) {
        while (!mpsc_push(run->ring, e))
            cbp_relax();
    } else {
        mutexq_push(run->q, e);
    }
}

static void *prio_producer(void *arg) {
    prio_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.producer_cpu);
    run->start_ns = cbp_now_ns();
    uint64_t posted = 0;
    if (run->flood == 0) {
        /* baseline: one probe at a time, the next once the previous was handled */
        for (uint64_t i = 0; i < run->probes; i++) {
            while (__atomic_load_n(&run->handled, __ATOMIC_ACQUIRE) != posted)
                cbp_relax();
            cbp_event probe = {i, cbp_now_ns()};
            post(run, &probe);
            posted++;
        }
        return NULL;
    }
    for (uint64_t i = 0; i < run->flood; i++) {
        /* credit window: at most `backlog` posted and not yet handled */
        while (posted - __atomic_load_n(&run->handled, __ATOMIC_ACQUIRE) >= run->backlog)
            cbp_relax();
        cbp_event e = {i, 0};
        post(run, &e);
        posted++;
        if ((i + 1) % run->probe_every == 0) {
            run->depth_sum += posted - __atomic_load_n(&run->handled, __ATOMIC_ACQUIRE);
            cbp_event probe = {i, cbp_now_ns()};
            post(run, &probe);
            posted++;
        }
    }
    return NULL;
}

static void *prio_consumer(void *arg) {
    prio_run *run = arg;
    cbp_pair_enter(&run->pair, run->pair.consumer_cpu);
    cbp_event buf[CBP_BATCH];
    uint64_t got = 0, sum = 0, ns = 0;
    while (got < run->total) {
        uint32_t n =
            run->kind == CBP_FIFO_MPSC ? mpsc_pop(run->ring, buf, CBP_BATCH) : mutexq_pop(run->q, buf, CBP_BATCH);
        if (n == 0) {
            cbp_relax();
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (buf[i].stamp != 0) {
                if (ns < run->max_samples) run->samples[ns++] = cbp_now_ns() - buf[i].stamp;
            } else {
                sum += cbp_work(buf[i].value, run->work_iters);
            }
        }
        got += n;
        cbp_beat(n);
        /* release: the samples are written before the flooder (and the caller) see the count */
        __atomic_store_n(&run->handled, got, __ATOMIC_RELEASE);
    }
    run->end_ns = cbp_now_ns();
    run->sum = sum;
    run->nsamples = ns;
    return NULL;
}

int cbp_prio_fifo(cbp_fifo kind, uint64_t flood, uint64_t probes, uint32_t backlog, uint32_t probe_every,
                  uint32_t work_iters, int producer_cpu, int consumer_cpu, uint64_t *samples, uint64_t max_samples,
                  cbp_trial *out) {
    if (backlog == 0 || probe_every == 0) return 22;
    prio_run *run = cbp_alloc_lines(sizeof(prio_run));
    if (!run) return 12;
    run->kind = kind;
    run->flood = flood;
    run->probes = flood == 0 ? probes : flood / probe_every;
    run->total = flood + run->probes;
    run->backlog = backlog;
    run->probe_every = probe_every;
    run->work_iters = work_iters;
    run->samples = samples;
    run->max_samples = max_samples;
    if (kind == CBP_FIFO_MPSC)
        run->ring = mpsc_create();
    else
        run->q = mutexq_create();
    if (!run->ring && !run->q) {
        free(run);
        return 12;
    }
    run->pair = (cbp_pair){.producer = prio_producer,
                           .consumer = prio_consumer,
                           .arg = run,
                           .producer_cpu = producer_cpu,
                           .consumer_cpu = consumer_cpu};
    int rc = cbp_run_pair(&run->pair);
    if (run->ring) free(run->ring);
    if (run->q) mutexq_destroy(run->q);
    if (rc == 0) {
        *out = (cbp_trial){.events = run->total,
                           .elapsed_ns = run->end_ns - run->start_ns,
                           .checksum = run->sum,
                           .samples = run->nsamples,
                           .depth_sum = run->depth_sum};
    }
    free(run);
    return rc;
}
