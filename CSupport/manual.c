/*
 * manual.c — the manual engine behind SpindleTesting: the real engine's workers, lanes, rings and
 * scheduler (lanes.c's sp_sched_round, post.c's paths) with no thread. The caller's thread runs
 * one worker's round at a time; timers run on a clock the caller moves, through a backend of
 * their own (below), so a test sees what a real worker would do with the same events, in the same
 * order, deterministically. A real engine never calls into this file: its loop (worker.c) is
 * untouched, and sp_engine_shutdown only branches here for an engine made by
 * sp_engine_start_manual.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "io/io.h"

/* ---- the manual backend: timers on the engine's clock, nothing else -------------------------- */

/* Per worker (w->backend): its armed timers in arm order (ties between equal deadlines fire in
 * that order), and scratch room to sort the due ones. */
typedef struct sp_manual_timers {
    sp_source **armed, **due;
    uint32_t count, cap;
} sp_manual_timers;

static int sp_manual_init(sp_worker *w, uint32_t want_flags, uint32_t entries, uint32_t *features, char *msg,
                          size_t len) {
    (void)want_flags, (void)entries;
    *features = 0;
    sp_manual_timers *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(msg, len, "worker %u: out of memory", w->id);
        return SP_ENOMEM;
    }
    w->backend = t;
    return SP_OK;
}

static void sp_manual_wait(sp_worker *w) { (void)w; } /* never called: a manual worker never sleeps */

static int sp_manual_wake(sp_worker *self, sp_worker *target) {
    (void)self, (void)target;
    return 0;
}

static void sp_manual_destroy(sp_worker *w) {
    sp_manual_timers *t = w->backend;
    if (!t) return;
    free(t->armed);
    free(t->due);
    free(t);
    w->backend = NULL;
}

static const char *sp_source_name(uint32_t kind) {
    switch (kind) {
    case SP_SOURCE_FD: return "an fd watch";
    case SP_SOURCE_SIGNALS: return "a signal source";
    case SP_SOURCE_LISTEN: return "a TCP listener";
    case SP_SOURCE_UDP: return "a UDP socket";
    default: return "an I/O source";
    }
}

static int sp_manual_arm(sp_worker *w, sp_source *s, char *msg, size_t len) {
    if (s->kind != SP_SOURCE_TIMER) {
        snprintf(msg, len,
                 "%s cannot run on a test engine: SpindleTesting runs timers only; fix: test its handler with the "
                 "events posted as ordinary events, or run it on a real engine (Engine.Builder.start())",
                 sp_source_name(s->kind));
        return SP_EINVAL;
    }
    sp_manual_timers *t = w->backend;
    if (t->count == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 16;
        sp_source **a = realloc(t->armed, cap * sizeof *a), **d;
        if (a) t->armed = a;
        d = a ? realloc(t->due, cap * sizeof *d) : NULL;
        if (!a || !d) {
            snprintf(msg, len, "worker %u: out of memory for a timer", w->id);
            return SP_ENOMEM;
        }
        t->due = d;
        t->cap = cap;
    }
    t->armed[t->count++] = s;
    s->state = SP_SRC_ARMED;
    return SP_OK;
}

static void sp_manual_disarm(sp_manual_timers *t, sp_source *s) {
    for (uint32_t i = 0; i < t->count; i++)
        if (t->armed[i] == s) {
            memmove(&t->armed[i], &t->armed[i + 1], (t->count - i - 1) * sizeof *t->armed); /* keeps arm order */
            t->count--;
            return;
        }
}

/* A due timer whose lane was full stays armed with its deadline and is tried again at the next
 * poll: nothing to re-arm. */
static int sp_manual_rearm(sp_worker *w, sp_source *s) {
    (void)w, (void)s;
    return 0;
}

static int sp_manual_cancel(sp_worker *w, sp_source *s) {
    sp_manual_disarm(w->backend, s);
    return 0; /* nothing in flight: the cancelled event comes at the next poll (sp_io_pending) */
}

/* After each round: cancelled events, then every timer due at the clock, in deadline order (arm
 * order between equal deadlines), each at most once (a periodic timer that missed deadlines fires
 * once with them coalesced, as on the real backends). */
static uint32_t sp_manual_poll(sp_worker *w) {
    sp_io *io = w->io;
    sp_manual_timers *t = w->backend;
    uint32_t n = sp_io_pending(w);
    uint64_t now = atomic_load_explicit(&w->engine->manual_now, memory_order_relaxed);
    uint32_t ndue = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        sp_source *s = t->armed[i];
        if (s->deadline > now) continue;
        uint32_t j = ndue++; /* insertion sort: stable, so arm order breaks ties */
        while (j > 0 && t->due[j - 1]->deadline > s->deadline) {
            t->due[j] = t->due[j - 1];
            j--;
        }
        t->due[j] = s;
    }
    for (uint32_t i = 0; i < ndue; i++) {
        sp_source *s = t->due[i];
        if (!sp_io_has_room(w, s)) {
            sp_io_bump(&io->stalled, 1); /* stays due: tried again after the next round */
            continue;
        }
        uint64_t late, coalesced;
        uint64_t deadline = sp_io_timer_fired(s, now, &late, &coalesced);
        if (!s->interval) {
            sp_manual_disarm(t, s);
            n += (uint32_t)sp_io_deliver_ext(w, s, 0, SP_IO_FINAL, late, 0, deadline); /* frees the record */
        } else {
            n += (uint32_t)sp_io_deliver_ext(w, s, 0, 0, late, coalesced, deadline);
        }
    }
    return n;
}

static int sp_manual_buf_setup(sp_worker *w, char *msg, size_t len) {
    snprintf(msg, len, "worker %u: a test engine has no receive buffers (TCP and UDP need a real engine)", w->id);
    return SP_EINVAL;
}
static void sp_manual_buf_return(sp_worker *w, uint32_t bid) { (void)w, (void)bid; }
static void sp_manual_buf_flush(sp_worker *w) { (void)w; }
static void sp_manual_conn(sp_worker *w, sp_source *s) { (void)w, (void)s; }

static const sp_backend_ops sp_manual_backend = {
    .kind = SP_BACKEND_MANUAL,
    .init = sp_manual_init,
    .wait = sp_manual_wait,
    .wake_from_worker = sp_manual_wake,
    .destroy = sp_manual_destroy,
    .io_arm = sp_manual_arm,
    .io_rearm = sp_manual_rearm,
    .io_cancel = sp_manual_cancel,
    .io_poll = sp_manual_poll,
    .buf_setup = sp_manual_buf_setup,
    .buf_return = sp_manual_buf_return,
    .buf_flush = sp_manual_buf_flush,
    .conn_send = sp_manual_conn,
    .conn_stop = sp_manual_conn,
};

/* ---- the manual engine ----------------------------------------------------------------------- */

sp_engine *sp_engine_start_manual(const sp_config *cfg, const sp_callbacks *cb, uint64_t now_ns, int *err, char *msg,
                                  size_t len) {
    int dummy;
    if (!err) err = &dummy;
    int rc = sp_config_validate(cfg, 0, msg, len);
    if (rc != SP_OK) {
        *err = rc;
        return NULL;
    }
    sp_engine *e = sp_engine_alloc(cfg, cb, err, msg, len);
    if (!e) return NULL;
    e->manual = 1;
    atomic_store_explicit(&e->manual_now, now_ns, memory_order_relaxed);
    e->backend = &sp_manual_backend;
    for (uint32_t i = 0; i < e->worker_count; i++) {
        sp_worker *w = e->workers[i];
        uint32_t features;
        rc = sp_io_init(w, SP_MAX_SOURCES);
        if (rc != SP_OK) {
            if (msg && len) snprintf(msg, len, "worker %u: cannot allocate its source table", i);
        } else {
            rc = e->backend->init(w, 0, 0, &features, msg, len);
        }
        if (rc != SP_OK) {
            *err = rc;
            sp_engine_free(e); /* no worker_started hook has run yet */
            return NULL;
        }
    }
    /* Per-worker state, built as a worker thread would build it: with the worker current, so
     * sources added here (builder timers) are armed on it. */
    sp_worker *saved = sp_tls_worker;
    for (uint32_t i = 0; i < e->worker_count && e->cb.worker_started; i++) {
        sp_tls_worker = e->workers[i];
        e->cb.worker_started(e->cb.context, e->workers[i], i);
    }
    sp_tls_worker = saved;
    atomic_store_explicit(&e->state, SP_STATE_RUNNING, memory_order_release);
    *err = SP_OK;
    return e;
}

static uint32_t sp_manual_run(sp_engine *e, sp_worker *w, uint32_t *delivered) {
    sp_worker *saved = sp_tls_worker;
    sp_tls_worker = w; /* posts from handlers take this worker's paths, as on its thread */
    sp_io *io = w->io;
    if (atomic_load_explicit(&io->ctl_pending, memory_order_acquire)) sp_io_take_control(w);
    uint32_t n = sp_sched_round(w);
    uint32_t d = io->live ? e->backend->io_poll(w) : 0; /* as worker.c: completions after the round */
    sp_worker_flush(w); /* posts made outside a batch (none in a round; kept as worker.c does when idle) */
    sp_tls_worker = saved;
    if (delivered) *delivered = d;
    return n;
}

int sp_manual_round(sp_engine *e, uint32_t worker, uint32_t *handled, uint32_t *delivered) {
    if (handled) *handled = 0;
    if (delivered) *delivered = 0;
    if (!e->manual) return SP_EINVAL;
    if (worker >= e->worker_count) return SP_EBAD_WORKER;
    if (sp_tls_worker && sp_tls_worker->engine == e) return SP_EWORKER_THREAD;
    if (atomic_load_explicit(&e->state, memory_order_acquire) != SP_STATE_RUNNING) return SP_ESTOPPED;
    uint32_t n = sp_manual_run(e, e->workers[worker], delivered);
    if (handled) *handled = n;
    return SP_OK;
}

void sp_manual_set_now(sp_engine *e, uint64_t now_ns) {
    if (now_ns > atomic_load_explicit(&e->manual_now, memory_order_relaxed))
        atomic_store_explicit(&e->manual_now, now_ns, memory_order_relaxed);
}

uint64_t sp_manual_next_deadline(const sp_engine *e) {
    uint64_t next = UINT64_MAX;
    if (!e->manual) return next;
    for (uint32_t i = 0; i < e->worker_count; i++) {
        sp_manual_timers *t = e->workers[i]->backend;
        for (uint32_t j = 0; t && j < t->count; j++)
            if (t->armed[j]->deadline < next) next = t->armed[j]->deadline;
    }
    return next;
}

uint64_t sp_worker_now_ns(const sp_worker *w) {
    sp_engine *e = w->engine;
    return e->manual ? atomic_load_explicit(&e->manual_now, memory_order_relaxed) : sp_now_ns();
}

sp_worker *sp_manual_worker(const sp_engine *e, uint32_t worker) {
    return e->manual && worker < e->worker_count ? e->workers[worker] : NULL;
}

static uint32_t sp_copy_slots(const sp_slot *slots, uint64_t mask, uint64_t head, uint64_t tail, int mpsc,
                              sp_slot *out, uint32_t max, uint32_t n) {
    for (uint64_t p = head; p < tail; p++) {
        const sp_slot *sl = &slots[p & mask];
        if (mpsc && __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE) != p + 1) continue; /* claimed, not yet published */
        if (n < max) out[n] = *sl;
        n++;
    }
    return n;
}

uint32_t sp_manual_lane_slots(const sp_engine *e, uint32_t worker, uint32_t lane, sp_slot *out, uint32_t max) {
    if (!e->manual || worker >= e->worker_count || lane >= e->lane_count) return 0;
    sp_lane_state *ls = &e->workers[worker]->lanes[lane];
    uint32_t n = 0;
    n = sp_copy_slots(ls->local->c_slots, ls->local->c_mask, atomic_load(&ls->local->head),
                      atomic_load(&ls->local->tail), 0, out, max, n);
    n = sp_copy_slots(ls->mpsc->c_slots, ls->mpsc->c_mask, atomic_load(&ls->mpsc->head), sp_mpsc_tail(ls->mpsc), 1,
                      out, max, n);
    for (uint32_t s = 0; s < e->worker_count; s++) {
        sp_spsc *r = atomic_load(&ls->in[s]);
        if (r) n = sp_copy_slots(r->c_slots, r->c_mask, atomic_load(&r->head), atomic_load(&r->tail), 0, out, max, n);
    }
    return n;
}

static uint32_t sp_count_stamps(const sp_slot *slots, uint64_t mask, uint64_t head, uint64_t tail) {
    uint32_t n = 0;
    for (uint64_t p = head; p < tail; p++) n += slots[p & mask].seq != 0;
    return n;
}

uint32_t sp_manual_lane_stamps(const sp_engine *e, uint32_t worker, uint32_t lane) {
    if (!e->manual || worker >= e->worker_count || lane >= e->lane_count) return 0;
    sp_lane_state *ls = &e->workers[worker]->lanes[lane];
    uint32_t n = sp_count_stamps(ls->local->c_slots, ls->local->c_mask, atomic_load(&ls->local->head),
                                 atomic_load(&ls->local->tail));
    for (uint32_t s = 0; s < e->worker_count; s++) {
        sp_spsc *r = atomic_load(&ls->in[s]);
        if (r) n += sp_count_stamps(r->c_slots, r->c_mask, atomic_load(&r->head), atomic_load(&r->tail));
    }
    sp_mpsc *m = ls->mpsc;
    sp_stamp *cells = atomic_load(&m->stamps);
    uint64_t sm = atomic_load(&m->sample_mask);
    if (cells && sm != SP_SAMPLE_OFF) {
        uint32_t shift = (uint32_t)__builtin_popcountll(sm);
        for (uint64_t p = atomic_load(&m->head); p < sp_mpsc_tail(m); p++)
            if (__atomic_load_n(&m->c_slots[p & m->c_mask].seq, __ATOMIC_ACQUIRE) == p + 1 &&
                cells[(p >> shift) & m->stamp_mask].pos == p)
                n++;
    }
    return n;
}

/* sp_engine_shutdown for a manual engine: foreign posts refused from now on; rounds on the calling
 * thread until every lane is empty (handlers may still post) or the deadline (CLOCK_MONOTONIC ns,
 * 0 = none) passes; then each worker's stopping hook, as its thread would run it. */
int sp_manual_shutdown(sp_engine *e, uint64_t deadline_ns) {
    if (e->shut_down) return SP_OK;
    uint32_t expected = SP_STATE_RUNNING;
    atomic_compare_exchange_strong(&e->state, &expected, SP_STATE_STOPPING);
    while (!sp_engine_quiescent(e) && (deadline_ns == 0 || sp_now_ns() < deadline_ns))
        for (uint32_t i = 0; i < e->worker_count; i++) sp_manual_run(e, e->workers[i], NULL);
    atomic_store(&e->state, sp_engine_quiescent(e) ? SP_STATE_DRAINED : SP_STATE_ABORT);
    sp_worker *saved = sp_tls_worker;
    for (uint32_t i = 0; i < e->worker_count; i++) {
        sp_worker *w = e->workers[i];
        sp_tls_worker = w;
        sp_io_worker_exit(w);
        if (e->cb.worker_stopping) e->cb.worker_stopping(e->cb.context, w, i);
    }
    sp_tls_worker = saved;
    sp_release_pending(e);
    e->shut_down = 1;
    return SP_OK;
}
