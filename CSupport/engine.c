/*
 * engine.c — an engine's life (start, shutdown, destroy), where posts go, and the counts.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "timing.h"
#include "io/io.h"

/* ---- memory ---------------------------------------------------------------------------------- */

/* Under AddressSanitizer, LeakSanitizer scans the heap, stacks and globals but not anonymous
 * mappings: the worker's own mapping holds the only pointer to its I/O state (io/io.c), so a
 * process that exits with an engine running (an exit test) would report it as leaked. Registered
 * mappings are scanned like the heap. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/lsan_interface.h>
#define SP_LSAN_ROOT(p, n) __lsan_register_root_region((p), (n))
#define SP_LSAN_UNROOT(p, n) __lsan_unregister_root_region((p), (n))
#endif
#endif
#ifndef SP_LSAN_ROOT
#define SP_LSAN_ROOT(p, n) ((void)0)
#define SP_LSAN_UNROOT(p, n) ((void)0)
#endif

void *sp_map_on_node(size_t bytes, int node, uint32_t numa_policy) {
    if (__builtin_expect(sp_fault_hit(SP_FAULT_MAP), 0)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    SP_LSAN_ROOT(p, bytes);
    /* Bind before first touch, so every page is faulted in on the consumer's node. */
    if (numa_available() >= 0) {
        if (numa_policy == SP_NUMA_LOCAL && node >= 0)
            numa_tonode_memory(p, bytes, node);
        else if (numa_policy == SP_NUMA_INTERLEAVE)
            numa_interleave_memory(p, bytes, numa_all_nodes_ptr);
    }
    return p;
}

void sp_unmap(void *p, size_t bytes) {
    if (!p) return;
    SP_LSAN_UNROOT(p, bytes);
    munmap(p, bytes);
}

static size_t sp_page_round(size_t n) {
    size_t page = 4096;
    return (n + page - 1) & ~(page - 1);
}

/* ---- clock / misc ---------------------------------------------------------------------------- */

uint64_t sp_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int32_t sp_current_cpu(void) { return sched_getcpu(); }

uint32_t sp_key_worker(uint64_t key, uint32_t worker_count) {
    /* splitmix64's finalizer: fixed, so a key maps to the same worker in every process and run. */
    uint64_t z = key + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (uint32_t)(((unsigned __int128)z * worker_count) >> 64);
}

const char *sp_strerror(int code) {
    switch (code) {
    case SP_OK: return "ok";
    case SP_ELANE_FULL: return "lane full";
    case SP_ESTOPPED: return "engine stopped";
    case SP_EBAD_WORKER: return "no such worker";
    case SP_EBAD_LANE: return "no such lane";
    case SP_ETIMEDOUT: return "timed out waiting for room on a block lane";
    case SP_EBATCH_TOO_LARGE: return "batch larger than the lane's capacity";
    case SP_EINVAL: return "invalid configuration";
    case SP_ENOMEM: return "out of memory";
    case SP_EPIN: return "could not pin a worker to its CPU";
    case SP_EURING: return "io_uring unavailable";
    case SP_ESYS: return "system call failed";
    case SP_EWORKER_THREAD: return "not allowed on a worker thread";
    case SP_EDROPPED: return "dropped by the lane's policy";
    case SP_ENOENT: return "no such source (its final event was already delivered)";
    case SP_EBUSY: return "already owned (a signal with another owner, or an fd already watched)";
    case SP_ENOSPC: return "the worker's source table is full";
    default: return "unknown error";
    }
}

/* ---- rings between workers ------------------------------------------------------------------- */

static sp_spsc *sp_create_spsc(sp_engine *e, sp_worker *dst, uint32_t lane) {
    uint32_t cap = e->cfg.lanes[lane].capacity;
    size_t bytes = sp_page_round(sp_spsc_bytes(cap));
    void *mem = sp_map_on_node(bytes, dst->node, e->cfg.numa_policy);
    if (!mem) return NULL;
    atomic_fetch_add_explicit(&e->ring_bytes, bytes, memory_order_relaxed);
    return sp_spsc_init(mem, cap, dst->id);
}

/* The SPSC ring src → dst for a lane; created on first use when it was not made at start (a
 * counted, one-time slow path). Only src's thread produces into it, so only src creates it. */
sp_spsc *sp_engine_pair_ring_slow(sp_worker *src, sp_worker *dst, uint32_t lane) {
    _Atomic(sp_spsc *) *slot = &dst->lanes[lane].in[src->id];
    sp_spsc *r = sp_create_spsc(src->engine, dst, lane);
    if (!r) return NULL;
    /* release: pairs with the consumer's acquire load in lanes.c — the ring is initialised
     * before the consumer can see its pointer. */
    atomic_store_explicit(slot, r, memory_order_release);
    src->fast.out[lane * src->worker_count + dst->id] = (sp_spsc_producer *)r; /* producer-owned */
    r->sample_mask = src->fast.sample_mask; /* latency sampling, as on src's other rings */
    atomic_store_explicit(&src->pairs_created, atomic_load_explicit(&src->pairs_created, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return r;
}

/* ---- wake-ups -------------------------------------------------------------------------------- */

void sp_eventfd_wake(sp_worker *d) {
    uint64_t one = 1;
    ssize_t rc;
    do {
        rc = write(d->event_fd, &one, sizeof one);
    } while (rc < 0 && errno == EINTR);
}

void sp_wake_slow(sp_worker *self, sp_worker *d) {
    /* Only the producer that flips the flag makes the syscall. */
    if (!atomic_exchange_explicit(&d->sleeping, 0, memory_order_relaxed)) return;
    if (self && self->engine == d->engine) {
        d->engine->backend->wake_from_worker(self, d);
        atomic_store_explicit(&self->wakeups_sent, atomic_load_explicit(&self->wakeups_sent, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    } else {
        sp_eventfd_wake(d);
        atomic_fetch_add_explicit(&d->foreign_wakeups, 1, memory_order_relaxed);
    }
}

void sp_worker_wake(sp_worker *w, uint32_t dest) {
    sp_wake_slow(w, w->engine->workers[dest]);
}

void sp_wake_all(sp_engine *e) {
    for (uint32_t i = 0; i < e->worker_count; i++) sp_eventfd_wake(e->workers[i]);
}

/* ---- start ----------------------------------------------------------------------------------- */

static void sp_msg(char *msg, size_t len, const char *fmt, const char *a, int b) {
    if (msg && len) snprintf(msg, len, fmt, a, b);
}

static void sp_worker_free(sp_engine *e, sp_worker *w) {
    if (!w) return;
    if (w->backend && e->backend) e->backend->destroy(w); /* after every worker thread has exited */
    sp_io_destroy(w); /* after the ring: no request refers to a record any more */
    for (uint32_t l = 0; l < e->lane_count; l++) {
        sp_lane_state *ls = &w->lanes[l];
        uint32_t cap = e->cfg.lanes[l].capacity;
        if (ls->local) sp_unmap(ls->local, sp_page_round(sp_spsc_bytes(cap)));
        if (ls->mpsc) sp_unmap(ls->mpsc, sp_page_round(sp_mpsc_bytes(cap)));
        if (ls->in) {
            for (uint32_t s = 0; s < e->worker_count; s++) {
                sp_spsc *r = atomic_load_explicit(&ls->in[s], memory_order_relaxed);
                if (r) sp_unmap(r, sp_page_round(sp_spsc_bytes(cap)));
            }
        }
    }
    if (w->event_fd >= 0) close(w->event_fd);
    sp_unmap(w, w->mapping_bytes);
}

static sp_worker *sp_worker_create(sp_engine *e, uint32_t id, char *msg, size_t len) {
    const sp_config *c = &e->cfg;
    int node = numa_available() >= 0 ? numa_node_of_cpu(c->cpus[id]) : 0;
    if (node < 0) node = 0;
    size_t in_bytes = (size_t)e->lane_count * e->worker_count * sizeof(_Atomic(sp_spsc *));
    size_t out_bytes = (size_t)e->lane_count * e->worker_count * sizeof(sp_spsc_producer *);
    size_t sleep_bytes = (size_t)e->worker_count * sizeof(_Atomic uint32_t *);
    size_t dirty_bytes = out_bytes;
    size_t bytes = sp_page_round(sizeof(sp_worker) + in_bytes + out_bytes + sleep_bytes + dirty_bytes);
    sp_worker *w = sp_map_on_node(bytes, node, c->numa_policy);
    if (!w) {
        sp_msg(msg, len, "cannot map worker memory: %s (worker %d)", strerror(errno), (int)id);
        return NULL;
    }
    w->mapping_bytes = bytes;
    w->engine = e;
    w->id = id;
    w->cpu = c->cpus[id];
    w->node = node;
    w->ring_fd = -1;
    w->lane_count = e->lane_count;
    w->worker_count = e->worker_count;
    w->spin_ns = c->spin_ns;
    w->slow_ns = c->slow_handler_ns;
    w->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->event_fd < 0) {
        sp_msg(msg, len, "eventfd failed: %s (worker %d)", strerror(errno), (int)id);
        sp_worker_free(e, w);
        return NULL;
    }
    _Atomic(sp_spsc *) *in = (_Atomic(sp_spsc *) *)(w + 1);
    w->fast.id = id;
    w->fast.worker_count = e->worker_count;
    w->fast.lane_count = e->lane_count;
    w->fast.light_barrier = (uint32_t)sp_membarrier_ok;
    w->fast.sample_mask = SP_SAMPLE_OFF;
    w->fast.out = (sp_spsc_producer **)((char *)in + in_bytes);
    w->fast.sleeping = (_Atomic uint32_t **)((char *)w->fast.out + out_bytes);
    w->fast.dirty = (sp_spsc_producer **)((char *)w->fast.sleeping + sleep_bytes);
    for (uint32_t l = 0; l < e->lane_count; l++) {
        const sp_lane_config *lc = &c->lanes[l];
        sp_lane_state *ls = &w->lanes[l];
        ls->policy = lc->policy;
        ls->budget = lc->budget;
        ls->max_batch = lc->max_batch;
        ls->quantum = lc->policy == SP_POLICY_WEIGHTED ? lc->weight * lc->max_batch : 0;
        ls->on_full = lc->on_full;
        ls->in = in + (size_t)l * e->worker_count;
        if (lc->policy == SP_POLICY_STRICT) w->strict_count = w->fast.strict_count = l + 1;
        size_t sb = sp_page_round(sp_spsc_bytes(lc->capacity)), mb = sp_page_round(sp_mpsc_bytes(lc->capacity));
        void *lm = sp_map_on_node(sb, node, c->numa_policy);
        void *mm = sp_map_on_node(mb, node, c->numa_policy);
        if (!lm || !mm) {
            sp_unmap(lm, sb);
            sp_unmap(mm, mb);
            sp_msg(msg, len, "cannot map ring memory: %s (worker %d)", strerror(errno), (int)id);
            sp_worker_free(e, w);
            return NULL;
        }
        ls->local = sp_spsc_init(lm, lc->capacity, id);
        w->fast.out[l * e->worker_count + id] = (sp_spsc_producer *)ls->local;
        ls->mpsc = sp_mpsc_init(mm, lc->capacity);
        atomic_fetch_add_explicit(&e->ring_bytes, sb + mb, memory_order_relaxed);
    }
    return w;
}

void sp_engine_free(sp_engine *e) {
    if (e->workers) {
        for (uint32_t i = 0; i < e->worker_count; i++) sp_worker_free(e, e->workers[i]);
        free(e->workers);
    }
    sp_watchdog_stop(e);
    sp_timing_free(e);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    free(e);
}

int sp_uring_available(char *msg, size_t len);

/* io_uring first, not only: where it is denied, `auto` falls back to epoll and says why. */
static const sp_backend_ops *sp_pick_backend(sp_engine *e, char *msg, size_t len) {
    if (e->cfg.backend == SP_BACKEND_EPOLL) return &sp_epoll_backend;
    if (sp_uring_available(e->backend_note, sizeof e->backend_note)) return &sp_uring_backend;
    if (e->cfg.backend == SP_BACKEND_IO_URING) {
        if (msg && len) snprintf(msg, len, "engine.backend = io_uring: %s; fix: use backend = auto or epoll", e->backend_note);
        return NULL;
    }
    return &sp_epoll_backend;
}

const char *sp_engine_backend_note(const sp_engine *e) { return e->backend_note; }

/* An engine, its workers and their rings, without threads and without a backend: what
 * sp_engine_start starts, and what the manual engine (manual.c) runs on the caller's thread.
 * The configuration must have been validated. */
sp_engine *sp_engine_alloc(const sp_config *cfg, const sp_callbacks *cb, int *err, char *msg, size_t len) {
    sp_barrier_init();
    sp_engine *e = calloc(1, sizeof *e);
    if (!e) {
        *err = SP_ENOMEM;
        if (msg && len) snprintf(msg, len, "out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    e->cb = *cb;
    e->worker_count = cfg->worker_count;
    e->lane_count = cfg->lane_count;
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cond, &ca);
    pthread_condattr_destroy(&ca);
    e->workers = calloc(e->worker_count, sizeof *e->workers);
    if (!e->workers) {
        *err = SP_ENOMEM;
        sp_engine_free(e);
        return NULL;
    }
    for (uint32_t i = 0; i < e->worker_count; i++) {
        e->workers[i] = sp_worker_create(e, i, msg, len);
        if (!e->workers[i]) {
            *err = SP_ENOMEM;
            sp_engine_free(e);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < e->worker_count; i++)
        for (uint32_t d = 0; d < e->worker_count; d++)
            e->workers[i]->fast.sleeping[d] = &e->workers[d]->sleeping;
    /* Every pair's rings up front while that stays small; beyond the threshold they are made on
     * first use (DESIGN rule 7: N×N×L rings is fine at 2 cores and gigabytes at 128). */
    uint64_t pair_bytes = 0;
    for (uint32_t l = 0; l < e->lane_count; l++)
        pair_bytes += (uint64_t)sp_page_round(sp_spsc_bytes(cfg->lanes[l].capacity)) * e->worker_count *
                      (e->worker_count - 1);
    if (pair_bytes <= cfg->eager_ring_bytes) {
        for (uint32_t d = 0; d < e->worker_count; d++)
            for (uint32_t s = 0; s < e->worker_count; s++)
                for (uint32_t l = 0; s != d && l < e->lane_count; l++) {
                    sp_spsc *r = sp_create_spsc(e, e->workers[d], l);
                    if (!r) {
                        *err = SP_ENOMEM;
                        if (msg && len) snprintf(msg, len, "cannot map ring memory: %s", strerror(errno));
                        sp_engine_free(e);
                        return NULL;
                    }
                    atomic_store_explicit(&e->workers[d]->lanes[l].in[s], r, memory_order_relaxed);
                    e->workers[s]->fast.out[l * e->worker_count + d] = (sp_spsc_producer *)r;
                }
    }
    return e;
}

sp_engine *sp_engine_start(const sp_config *cfg, const sp_callbacks *cb, int *err, char *msg, size_t len) {
    int dummy;
    if (!err) err = &dummy;
    int rc = sp_config_validate(cfg, 1, msg, len);
    if (rc != SP_OK) {
        *err = rc;
        return NULL;
    }
    sp_engine *e = sp_engine_alloc(cfg, cb, err, msg, len);
    if (!e) return NULL;
    e->backend = sp_pick_backend(e, msg, len);
    if (!e->backend) {
        *err = SP_EURING;
        sp_engine_free(e);
        return NULL;
    }
    uint32_t started = 0;
    for (; started < e->worker_count; started++) {
        sp_worker *w = e->workers[started];
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        /* Created already pinned: the thread never runs, nor touches memory, on another CPU. */
        pthread_attr_setaffinity_np(&attr, sizeof set, &set);
        int prc = pthread_create(&w->thread, &attr, sp_worker_main, w);
        pthread_attr_destroy(&attr);
        if (prc != 0) {
            if (msg && len)
                snprintf(msg, len, "cannot start worker %u on CPU %u: %s", w->id, w->cpu, strerror(prc));
            *err = prc == EINVAL ? SP_EPIN : SP_ESYS;
            break;
        }
    }
    pthread_mutex_lock(&e->lock);
    while (e->ready + e->failed_workers < started) pthread_cond_wait(&e->cond, &e->lock);
    int ok = started == e->worker_count && e->failed_workers == 0;
    e->go = ok ? 1 : -1;
    if (ok) atomic_store_explicit(&e->state, SP_STATE_RUNNING, memory_order_release);
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
    if (!ok) {
        if (e->failed_workers) {
            *err = e->start_err;
            if (msg && len) snprintf(msg, len, "%s", e->start_msg);
        }
        for (uint32_t i = 0; i < started; i++) pthread_join(e->workers[i]->thread, NULL);
        sp_engine_free(e);
        return NULL;
    }
    sp_watchdog_start(e);
    *err = SP_OK;
    return e;
}

/* ---- shutdown -------------------------------------------------------------------------------- */

static void sp_wake_blocked_producers(sp_engine *e) {
    for (uint32_t w = 0; w < e->worker_count; w++)
        for (uint32_t l = 0; l < e->lane_count; l++) {
            sp_mpsc *r = e->workers[w]->lanes[l].mpsc;
            atomic_fetch_add_explicit(&r->wait_seq, 1, memory_order_release);
            sp_futex_wake_all(&r->wait_seq);
        }
}

/* Releases boxed payloads nobody will handle. Slots stay in the ring (pending stays exact); the
 * RELEASED flag keeps a later pass from releasing them twice. */
void sp_release_pending(sp_engine *e) {
    if (!e->cb.release) return;
    for (uint32_t w = 0; w < e->worker_count; w++) {
        sp_worker *wk = e->workers[w];
        for (uint32_t l = 0; l < e->lane_count; l++) {
            sp_lane_state *ls = &wk->lanes[l];
            for (uint32_t s = 0; s < e->worker_count + 2; s++) {
                sp_slot *slots;
                uint64_t head, tail, mask;
                int mpsc = 0;
                if (s == e->worker_count) {
                    slots = ls->local->c_slots, mask = ls->local->c_mask;
                    head = atomic_load(&ls->local->head), tail = atomic_load(&ls->local->tail);
                } else if (s == e->worker_count + 1) {
                    slots = ls->mpsc->c_slots, mask = ls->mpsc->c_mask, mpsc = 1;
                    head = atomic_load(&ls->mpsc->head), tail = sp_mpsc_tail(ls->mpsc);
                } else {
                    sp_spsc *r = atomic_load(&ls->in[s]);
                    if (!r) continue;
                    slots = r->c_slots, mask = r->c_mask;
                    head = atomic_load(&r->head), tail = atomic_load(&r->tail);
                }
                for (uint64_t p = head; p < tail; p++) {
                    sp_slot *sl = &slots[p & mask];
                    if (mpsc && __atomic_load_n(&sl->seq, __ATOMIC_SEQ_CST) != p + 1) continue; /* never published */
                    if ((sl->flags & (SP_SLOT_BOXED | SP_SLOT_RELEASED)) == SP_SLOT_BOXED) {
                        e->cb.release(e->cb.context, sl);
                        sl->flags |= SP_SLOT_RELEASED;
                    }
                }
            }
        }
    }
}

int sp_engine_shutdown(sp_engine *e, uint64_t deadline_ns) {
    sp_worker *self = sp_tls_worker;
    if (self && self->engine == e) return SP_EWORKER_THREAD;
    if (e->manual) return sp_manual_shutdown(e, deadline_ns); /* no threads: drained here (manual.c) */
    pthread_mutex_lock(&e->lock);
    if (e->shut_down) {
        pthread_mutex_unlock(&e->lock);
        return SP_OK;
    }
    /* Foreign producers' rings close first: a post that claimed a slot before is counted in
     * the tails the workers' quiescence check reads (so it is handled before they exit); one after
     * is refused as stopped. */
    if (atomic_load(&e->state) == SP_STATE_RUNNING)
        for (uint32_t w = 0; w < e->worker_count; w++)
            for (uint32_t l = 0; l < e->lane_count; l++) sp_mpsc_close(e->workers[w]->lanes[l].mpsc);
    uint32_t expected = SP_STATE_RUNNING;
    atomic_compare_exchange_strong(&e->state, &expected, SP_STATE_STOPPING);
    pthread_mutex_unlock(&e->lock);
    sp_wake_all(e);
    sp_wake_blocked_producers(e);

    pthread_mutex_lock(&e->lock);
    while (e->exited < e->worker_count) {
        if (deadline_ns == 0) {
            pthread_cond_wait(&e->cond, &e->lock);
            continue;
        }
        struct timespec ts = {(time_t)(deadline_ns / 1000000000ull), (long)(deadline_ns % 1000000000ull)};
        if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) == ETIMEDOUT && e->exited < e->worker_count) {
            /* Deadline: workers stop after the batch in progress; what is left is reported. */
            atomic_store(&e->state, SP_STATE_ABORT);
            pthread_mutex_unlock(&e->lock);
            sp_wake_all(e);
            pthread_mutex_lock(&e->lock);
            deadline_ns = 0;
        }
    }
    pthread_mutex_unlock(&e->lock);
    for (uint32_t i = 0; i < e->worker_count; i++) pthread_join(e->workers[i]->thread, NULL);
    sp_watchdog_stop(e); /* after the workers: no batch runs any more */
    sp_release_pending(e);
    pthread_mutex_lock(&e->lock);
    e->shut_down = 1;
    pthread_mutex_unlock(&e->lock);
    return SP_OK;
}

void sp_engine_abort(sp_engine *e) {
    /* The state a passed deadline gives (see sp_engine_shutdown), from RUNNING or STOPPING; a
     * drained engine stays drained. Workers see it at their next batch boundary and exit; a waiter in
     * sp_engine_shutdown learns of it through e->cond as usual. */
    uint32_t st = atomic_load(&e->state);
    while ((st == SP_STATE_RUNNING || st == SP_STATE_STOPPING) &&
           !atomic_compare_exchange_weak(&e->state, &st, SP_STATE_ABORT)) {
    }
    sp_wake_all(e);
    sp_wake_blocked_producers(e);
}

void sp_engine_destroy(sp_engine *e) {
    if (!e) return;
    if (!e->shut_down) sp_engine_shutdown(e, sp_now_ns());
    sp_release_pending(e); /* posts that raced with shutdown */
    sp_engine_free(e);
}

/* Every enqueued event handled, no handler running? Reads all `handled` counts first, then all
 * ring tails: handled ≤ enqueued at every instant, both only grow, and a running handler's event
 * is enqueued but not yet handled — so equal sums mean that between the two reads nothing was
 * pending or running (and then nothing on a worker can post again). */
int sp_engine_quiescent(sp_engine *e) {
    uint64_t handled = 0, enqueued = 0;
    /* Our own last `handled` store before anyone else's is read: two workers finishing their last
     * batches together must not each miss the other's count and both sleep (CSupport/model
     * quiesce.pml). Cold path: only idle workers of a stopping engine get here. */
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t w = 0; w < e->worker_count; w++)
        for (uint32_t l = 0; l < e->lane_count; l++)
            handled += atomic_load_explicit(&e->workers[w]->lanes[l].handled, memory_order_acquire);
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t w = 0; w < e->worker_count; w++)
        for (uint32_t l = 0; l < e->lane_count; l++) {
            sp_lane_state *ls = &e->workers[w]->lanes[l];
            enqueued += atomic_load_explicit(&ls->local->tail, memory_order_acquire);
            enqueued += sp_mpsc_tail(ls->mpsc);
            for (uint32_t s = 0; s < e->worker_count; s++) {
                sp_spsc *r = atomic_load_explicit(&ls->in[s], memory_order_acquire);
                if (r) enqueued += atomic_load_explicit(&r->tail, memory_order_acquire);
            }
        }
    return handled == enqueued;
}

/* ---- accessors & counts ---------------------------------------------------------------------- */

uint32_t sp_engine_worker_count(const sp_engine *e) { return e->worker_count; }
uint32_t sp_engine_lane_count(const sp_engine *e) { return e->lane_count; }
const sp_config *sp_engine_config(const sp_engine *e) { return &e->cfg; }
uint64_t sp_engine_ring_bytes(const sp_engine *e) { return atomic_load(&((sp_engine *)e)->ring_bytes); }
uint32_t sp_engine_backend(const sp_engine *e) { return e->backend->kind; }
uint32_t sp_engine_features(const sp_engine *e) { return e->features; }
int32_t sp_engine_worker_tid(const sp_engine *e, uint32_t w) { return w < e->worker_count ? e->workers[w]->tid : -1; }

uint32_t sp_worker_id(const sp_worker *w) { return w->id; }
uint32_t sp_worker_cpu(const sp_worker *w) { return w->cpu; }
sp_engine *sp_worker_engine(sp_worker *w) { return w->engine; }
void *sp_worker_userdata(const sp_worker *w) { return w->userdata; }
void sp_worker_set_userdata(sp_worker *w, void *data) { w->userdata = data; }
sp_worker *sp_current_worker(const sp_engine *e) {
    sp_worker *w = sp_tls_worker;
    return w && w->engine == e ? w : NULL;
}

int sp_engine_lane_stats(const sp_engine *e, uint32_t worker, uint32_t lane, sp_lane_stats *out) {
    if (worker >= e->worker_count) return SP_EBAD_WORKER;
    if (lane >= e->lane_count) return SP_EBAD_LANE;
    sp_lane_state *ls = &e->workers[worker]->lanes[lane];
    memset(out, 0, sizeof *out);
    /* handled before heads before tails: pending never reads negative. */
    out->handled = atomic_load_explicit(&ls->handled, memory_order_acquire);
    out->failed = atomic_load_explicit(&ls->failed, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&ls->local->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&ls->local->tail, memory_order_acquire);
    out->enqueued += t, out->pending += t - h;
    out->rejected += atomic_load_explicit(&ls->local->rejected, memory_order_relaxed);
    out->dropped += atomic_load_explicit(&ls->local->dropped, memory_order_relaxed);
    h = atomic_load_explicit(&ls->mpsc->head, memory_order_acquire);
    t = sp_mpsc_tail(ls->mpsc);
    out->enqueued += t, out->pending += t - h;
    out->rejected += atomic_load_explicit(&ls->mpsc->rejected, memory_order_relaxed);
    out->dropped += atomic_load_explicit(&ls->mpsc->dropped, memory_order_relaxed);
    for (uint32_t s = 0; s < e->worker_count; s++) {
        sp_spsc *r = atomic_load_explicit(&ls->in[s], memory_order_acquire);
        if (!r) continue;
        h = atomic_load_explicit(&r->head, memory_order_acquire);
        t = atomic_load_explicit(&r->tail, memory_order_acquire);
        out->enqueued += t, out->pending += t - h;
        out->rejected += atomic_load_explicit(&r->rejected, memory_order_relaxed);
        out->dropped += atomic_load_explicit(&r->dropped, memory_order_relaxed);
    }
    return SP_OK;
}

int sp_engine_worker_stats(const sp_engine *e, uint32_t worker, sp_worker_stats *out) {
    if (worker >= e->worker_count) return SP_EBAD_WORKER;
    sp_worker *w = e->workers[worker];
    out->rounds = atomic_load_explicit(&w->rounds, memory_order_relaxed);
    out->batches = atomic_load_explicit(&w->batches, memory_order_relaxed);
    out->sleeps = atomic_load_explicit(&w->sleeps, memory_order_relaxed);
    out->wakeups_sent = atomic_load_explicit(&w->wakeups_sent, memory_order_relaxed);
    out->slow_batches = atomic_load_explicit(&w->slow_batches, memory_order_relaxed);
    out->pairs_created = atomic_load_explicit(&w->pairs_created, memory_order_relaxed);
    out->sleeping = atomic_load_explicit(&w->sleeping, memory_order_relaxed);
    out->pad_ = 0;
    return SP_OK;
}

uint64_t sp_engine_foreign_wakeups(const sp_engine *e, uint32_t worker) {
    return worker < e->worker_count ? atomic_load_explicit(&e->workers[worker]->foreign_wakeups, memory_order_relaxed) : 0;
}
