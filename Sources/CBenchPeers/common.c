/*
 * common.c — clock, pinning and the two-thread runner shared by every raw peer.
 */
#include "peers_internal.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

uint64_t cbp_heartbeat;

uint64_t cbp_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int cbp_pin_self(int cpu) {
    if (cpu < 0) return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

void *cbp_alloc_lines(size_t bytes) {
    void *p = NULL;
    size_t rounded = (bytes + CBP_CACHE_LINE - 1) & ~(size_t)(CBP_CACHE_LINE - 1);
    if (posix_memalign(&p, CBP_CACHE_LINE, rounded) != 0) return NULL;
    memset(p, 0, rounded);
    return p;
}

void cbp_pair_enter(cbp_pair *pair, int cpu) {
    cbp_pin_self(cpu);
    /* acq_rel: each side's setup happens before the other side starts measuring */
    __atomic_fetch_add(&pair->ready, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&pair->ready, __ATOMIC_ACQUIRE) < 2)
        cbp_relax();
}

int cbp_run_pair(cbp_pair *pair) {
    pthread_t p, c;
    pair->ready = 0;
    int rc = pthread_create(&c, NULL, pair->consumer, pair->arg);
    if (rc != 0) return rc;
    rc = pthread_create(&p, NULL, pair->producer, pair->arg);
    if (rc != 0) {
        /* the consumer waits at the barrier forever otherwise: release it through the barrier and
         * let it see zero events */
        __atomic_fetch_add(&pair->ready, 1, __ATOMIC_RELEASE);
        pthread_join(c, NULL);
        return rc;
    }
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    return 0;
}
