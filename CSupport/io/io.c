/*
 * io.c — the backend-independent half of I/O sources: the per-worker record table, turning a
 * completion into an event in its lane's queue, timer arithmetic, cancellation bookkeeping, and
 * the process-wide owner table of signals.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"

int sp_io_init(sp_worker *w, uint32_t capacity) {
    sp_io *io = calloc(1, sizeof *io);
    if (!io) return SP_ENOMEM;
    io->src = calloc(capacity, sizeof *io->src);
    if (!io->src) {
        free(io);
        return SP_ENOMEM;
    }
    io->capacity = capacity;
    for (uint32_t i = 0; i < capacity; i++) {
        io->src[i].next_free = i + 1;
        io->src[i].fd = -1;
        io->src[i].gen = 1;
    }
    io->free_head = 0;
    io->held_head = io->held_tail = SP_NONE;
    io->nobufs_head = io->nobufs_tail = SP_NONE;
    pthread_mutex_init(&io->ctl_lock, NULL);
    w->io = io;
    return SP_OK;
}

void sp_io_destroy(sp_worker *w) {
    sp_io *io = w->io;
    if (!io) return;
    for (uint32_t i = 0; i < io->capacity; i++) {
        sp_source *s = &io->src[i];
        if (s->state == SP_SRC_FREE) continue;
        if (s->kind == SP_SOURCE_SIGNALS) sp_signals_release(s->signals);
        if (s->fd >= 0 && s->kind != SP_SOURCE_FD) close(s->fd); /* our timerfd, eventfd, socket */
    }
    sp_tcp_pools_free(io);
    pthread_mutex_destroy(&io->ctl_lock);
    free(io->src);
    free(io);
    w->io = NULL;
}

sp_source *sp_io_alloc(sp_worker *w) {
    sp_io *io = w->io;
    if (io->free_head >= io->capacity) return NULL;
    sp_source *s = &io->src[io->free_head];
    io->free_head = s->next_free;
    uint32_t gen = s->gen, next_held = s->next_held, next_nobufs = s->next_nobufs;
    uint8_t listed = s->listed;
    memset(s, 0, sizeof *s);
    s->gen = gen;
    s->listed = listed; /* still linked on a list: its links stay (the walk skips a cleared record) */
    s->next_held = next_held;
    s->next_nobufs = next_nobufs;
    s->fd = -1;
    sp_io_bump(&io->live, 1);
    return s;
}

void sp_io_free(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    if (s->kind == SP_SOURCE_SIGNALS) sp_signals_release(s->signals);
    if (s->fd >= 0 && s->kind != SP_SOURCE_FD) close(s->fd);
    s->fd = -1;
    s->state = SP_SRC_FREE;
    s->gen = (s->gen + 1) & 0x3FFFFFFFu; /* a late completion or cancel naming the old generation is dropped */
    if (s->gen == 0) s->gen = 1;
    s->next_free = io->free_head;
    io->free_head = (uint32_t)(s - io->src);
    sp_io_bump(&io->live, (uint32_t)-1);
}

sp_source *sp_io_lookup(sp_worker *w, uint64_t id) {
    sp_io *io = w->io;
    id &= SP_IO_ID_MASK;
    uint32_t idx = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (!io || idx >= io->capacity) return NULL;
    sp_source *s = &io->src[idx];
    return s->state != SP_SRC_FREE && s->gen == gen ? s : NULL;
}

int sp_io_has_room(sp_worker *w, sp_source *s) {
    sp_spsc *q = w->lanes[s->lane].local;
    return sp_spsc_has_room(q, q->ptail, 1);
}

int sp_io_room(sp_worker *w, sp_source *s, uint32_t k) {
    sp_spsc *q = w->lanes[s->lane].local;
    return sp_spsc_has_room(q, q->ptail, k);
}

int sp_io_deliver_data(sp_worker *w, sp_source *s, int32_t n, uint32_t bid) {
    sp_io *io = w->io;
    sp_spsc *q = w->lanes[s->lane].local;
    sp_io_event ev = {.source = sp_io_id(w, s), .result = n, .flags = SP_OP_DATA << 8, .tag = s->tag,
                      .value = (uint64_t)(uintptr_t)(io->rbuf + (size_t)bid * SP_RECV_BUFFER_SIZE), .count = bid};
    if (!sp_spsc_push(q, s->handler_kind, SP_SLOT_BUFFER, &ev, sizeof ev)) {
        sp_io_bump(&io->stalled, 1);
        return 0;
    }
    sp_io_bump(&io->lent, 1);
    if (s->lane < w->strict_count) sp_mark_urgent(w);
    return 1;
}

int sp_io_deliver(sp_worker *w, sp_source *s, int32_t result, uint32_t flags, uint64_t value, uint64_t count) {
    return sp_io_deliver_ext(w, s, result, flags, value, count, 0);
}

int sp_io_deliver_datagram(sp_worker *w, sp_source *s, int32_t n, uint32_t bid, uint32_t addr_len) {
    sp_io *io = w->io;
    sp_spsc *q = w->lanes[s->lane].local;
    unsigned char *buf = io->ubuf + (size_t)(bid & ~SP_UDP_BUF) * SP_RECV_BUFFER_SIZE;
    (void)addr_len; /* the family in the address says its length */
    sp_io_event ev = {.source = sp_io_id(w, s), .result = n, .flags = SP_OP_DATAGRAM << 8, .tag = s->tag,
                      .value = (uint64_t)(uintptr_t)(buf + SP_UDP_ADDR_SPACE), .count = bid,
                      .reserved = (uint64_t)(uintptr_t)buf};
    if (!sp_spsc_push(q, s->handler_kind, SP_SLOT_BUFFER, &ev, sizeof ev)) {
        sp_udp_give_buffer(w, bid);
        sp_io_bump(&io->stalled, 1);
        return 0;
    }
    sp_io_bump(&io->lent, 1);
    if (s->lane < w->strict_count) sp_mark_urgent(w);
    return 1;
}

int sp_io_deliver_ext(sp_worker *w, sp_source *s, int32_t result, uint32_t flags, uint64_t value, uint64_t count,
                      uint64_t extra) {
    sp_spsc *q = w->lanes[s->lane].local;
    sp_io_event ev = {.source = sp_io_id(w, s), .result = result, .flags = flags, .value = value, .count = count, .tag = s->tag,
                      .reserved = extra};
    /* The worker's own queue: producer and consumer are this thread. A full queue keeps the
     * completion where it is (CQ, or the held readiness) until the handler drains it: nothing is
     * dropped. */
    if (!sp_spsc_push(q, s->handler_kind, 0, &ev, sizeof ev)) {
        sp_io_bump(&((sp_io *)w->io)->stalled, 1);
        return 0;
    }
    if (s->lane < w->strict_count) sp_mark_urgent(w);
    if (flags & SP_IO_FINAL) sp_io_free(w, s);
    return 1;
}

uint64_t sp_io_timer_fired(sp_source *s, uint64_t now, uint64_t *lateness, uint64_t *coalesced) {
    *lateness = now > s->deadline ? now - s->deadline : 0;
    *coalesced = 0;
    uint64_t fired = s->deadline;
    if (!s->interval) return fired;
    /* Absolute deadlines: the schedule never drifts. Deadlines already past when the worker got
     * here are not fired one by one: they are counted in this firing. */
    uint64_t next = s->deadline + s->interval;
    if (next <= now) {
        uint64_t missed = (now - next) / s->interval + 1;
        *coalesced = missed;
        next += missed * s->interval;
    }
    s->deadline = next;
    return fired + *coalesced * s->interval; /* the latest deadline this firing stands for */
}

void sp_io_mark_stale(sp_worker *w, sp_source *s) {
    sp_spsc *q = w->lanes[s->lane].local;
    uint64_t id = sp_io_id(w, s);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    /* Including a batch being handled right now: its slots after the current one are read by the
     * handler loop only when it gets to them. */
    for (uint64_t p = head; p < q->ptail; p++) {
        sp_slot *sl = &q->c_slots[p & q->c_mask];
        if (sl->kind != s->handler_kind) continue;
        sp_io_event *ev = (sp_io_event *)sl->payload;
        /* A listener's ACCEPTED events announce connections that live on: never skipped. */
        if (ev->source == id && SP_IO_OP(ev->flags) != SP_OP_ACCEPTED) ev->flags |= SP_IO_STALE;
    }
}

/* ---- signals: one owner per signal in the process -------------------------------------------- */

static _Atomic int sp_sig_efd[65];      /* signo → the owning source's eventfd + 1 (0: none) */
static _Atomic uint64_t sp_sig_pending; /* bit signo-1: delivered, not yet taken */
static pthread_mutex_t sp_sig_lock = PTHREAD_MUTEX_INITIALIZER;

static void sp_sig_handler(int signo) {
    int saved = errno;
    atomic_fetch_or(&sp_sig_pending, 1ull << (signo - 1));
    int fd = atomic_load(&sp_sig_efd[signo]) - 1;
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t rc = write(fd, &one, sizeof one); /* async-signal-safe */
        (void)rc;
    }
    errno = saved;
}

int sp_signals_claim(uint64_t mask, int efd, char *msg, size_t len) {
    pthread_mutex_lock(&sp_sig_lock);
    for (int sig = 1; sig <= 64; sig++) {
        if (!(mask & (1ull << (sig - 1)))) continue;
        struct sigaction old;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &old) != 0) {
            snprintf(msg, len, "signal %d cannot be handled; fix: remove it from the signal set", sig);
            pthread_mutex_unlock(&sp_sig_lock);
            return SP_EINVAL;
        }
        if (atomic_load(&sp_sig_efd[sig]) != 0 || old.sa_handler != SIG_DFL) {
            snprintf(msg, len,
                     "signal %d (%s) already has an owner (%s); fix: one owner per signal — do not also register it with "
                     "Dispatch/ServiceGroup or another engine",
                     sig, strsignal(sig),
                     atomic_load(&sp_sig_efd[sig])        ? "a Spindle source"
                     : old.sa_handler == SIG_IGN ? "it is ignored: SIG_IGN, as DispatchSource signal owners set it"
                                                 : "a signal handler");
            pthread_mutex_unlock(&sp_sig_lock);
            return SP_EBUSY;
        }
    }
    for (int sig = 1; sig <= 64; sig++) {
        if (!(mask & (1ull << (sig - 1)))) continue;
        atomic_store(&sp_sig_efd[sig], efd + 1);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = sp_sig_handler;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, NULL);
        /* Unblocked in this (worker) thread, so the process always has a thread to take it. */
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    }
    pthread_mutex_unlock(&sp_sig_lock);
    return SP_OK;
}

void sp_signals_release(uint64_t mask) {
    pthread_mutex_lock(&sp_sig_lock);
    for (int sig = 1; sig <= 64; sig++) {
        if (!(mask & (1ull << (sig - 1)))) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(sig, &sa, NULL);
        atomic_store(&sp_sig_efd[sig], 0);
    }
    atomic_fetch_and(&sp_sig_pending, ~mask);
    pthread_mutex_unlock(&sp_sig_lock);
}

uint64_t sp_signals_take(uint64_t mask) { return atomic_fetch_and(&sp_sig_pending, ~mask) & mask; }

void sp_signals_put_back(uint64_t bits) { atomic_fetch_or(&sp_sig_pending, bits); }

/* ---- control requests from other threads ------------------------------------------------------ */

void sp_io_take_control(sp_worker *w) {
    sp_io *io = w->io;
    uint64_t ids[64];
    pthread_mutex_lock(&io->ctl_lock);
    uint32_t n = io->ctl_count;
    memcpy(ids, io->ctl_cancel, n * sizeof ids[0]);
    io->ctl_count = 0;
    atomic_store_explicit(&io->ctl_pending, 0, memory_order_relaxed);
    pthread_mutex_unlock(&io->ctl_lock);
    for (uint32_t i = 0; i < n; i++) sp_worker_cancel_source(w, ids[i]);
}

/* ---- the public entry points ------------------------------------------------------------------ */

static int sp_spec_check(sp_worker *w, const sp_source_spec *spec, char *msg, size_t len) {
    if (spec->lane >= w->lane_count) {
        snprintf(msg, len, "source lane %u: the engine has %u lanes", spec->lane, w->lane_count);
        return SP_EBAD_LANE;
    }
    switch (spec->kind) {
    case SP_SOURCE_TIMER:
        if (spec->interval_ns != 0 && spec->interval_ns < 1000) {
            snprintf(msg, len, "timer interval %llu ns: rule at least 1 µs; fix: use a longer period",
                     (unsigned long long)spec->interval_ns);
            return SP_EINVAL;
        }
        return SP_OK;
    case SP_SOURCE_FD:
        if (spec->fd < 0 || spec->events == 0) {
            snprintf(msg, len, "fd watch: fd %d, events 0x%x: rule an open fd and at least one of POLLIN/POLLOUT/POLLPRI",
                     spec->fd, spec->events);
            return SP_EINVAL;
        }
        return SP_OK;
    case SP_SOURCE_LISTEN:
    case SP_SOURCE_UDP:
        return SP_OK; /* the address is checked when the socket is made */
    case SP_SOURCE_SIGNALS:
        if (spec->signals == 0) {
            snprintf(msg, len, "signal source: no signal given; fix: name at least one (SIGTERM, SIGINT, SIGHUP…)");
            return SP_EINVAL;
        }
        return SP_OK;
    default:
        snprintf(msg, len, "source kind %u: unknown", spec->kind);
        return SP_EINVAL;
    }
}

int sp_worker_add_source(sp_worker *w, const sp_source_spec *spec, uint64_t *id, char *msg, size_t len) {
    char scratch[8];
    if (!msg || !len) msg = scratch, len = sizeof scratch;
    msg[0] = 0;
    if (sp_tls_worker != w) {
        snprintf(msg, len, "sources are added on their worker's thread (a handler or worker_started)");
        return SP_EWORKER_THREAD;
    }
    int rc = sp_spec_check(w, spec, msg, len);
    if (rc != SP_OK) return rc;
    sp_source *s = sp_io_alloc(w);
    if (!s) {
        snprintf(msg, len, "worker %u has %u sources: the table is full; fix: cancel sources you no longer need",
                 w->id, ((sp_io *)w->io)->capacity);
        return SP_ENOSPC;
    }
    s->kind = (uint8_t)spec->kind;
    s->lane = spec->lane;
    s->handler_kind = spec->handler_kind;
    s->fd = spec->kind == SP_SOURCE_FD ? spec->fd : -1;
    s->events = spec->events;
    s->deadline = spec->first_ns;
    s->interval = spec->interval_ns;
    s->signals = spec->signals;
    s->tag = spec->tag;
    s->sq_head = s->sq_tail = SP_NONE;
    if (spec->kind == SP_SOURCE_LISTEN || spec->kind == SP_SOURCE_UDP) {
        rc = sp_tcp_pools(w, msg, len);
        if (rc == SP_OK)
            rc = spec->kind == SP_SOURCE_UDP ? sp_udp_socket(s, spec, msg, len) : sp_tcp_listen_socket(s, spec, msg, len);
        if (spec->kind == SP_SOURCE_UDP) s->events = POLLIN;
        if (rc != SP_OK) {
            sp_io_free(w, s);
            return rc;
        }
    }
    rc = w->engine->backend->io_arm(w, s, msg, len);
    if (rc != SP_OK) {
        sp_io_free(w, s);
        return rc;
    }
    *id = sp_io_id(w, s);
    return SP_OK;
}

int sp_worker_cancel_source(sp_worker *w, uint64_t id) {
    sp_source *s = sp_io_lookup(w, id);
    if (!s || s->state == SP_SRC_CANCELLING) return SP_ENOENT;
    if (s->kind == SP_SOURCE_CONN) return sp_conn_close(w, id); /* a connection ends with CLOSED */
    sp_io_mark_stale(w, s);
    if (w->engine->backend->io_cancel(w, s)) {
        s->state = SP_SRC_CANCELLING; /* the final CQE delivers the cancelled event */
        return SP_OK;
    }
    /* Nothing in flight: the cancelled event now. A full lane holds it until there is room, as
     * the backend does for any completion (never dropped). */
    s->state = SP_SRC_CANCELLING;
    sp_io_hold(w->io, s);
    return SP_OK;
}

int sp_engine_cancel_source(sp_engine *e, uint32_t worker, uint64_t id) {
    if (worker >= e->worker_count) return SP_EBAD_WORKER;
    sp_worker *w = e->workers[worker];
    if (sp_tls_worker == w) return sp_worker_cancel_source(w, id);
    if (atomic_load_explicit(&e->state, memory_order_acquire) != SP_STATE_RUNNING) return SP_ESTOPPED;
    sp_io *io = w->io;
    for (;;) {
        pthread_mutex_lock(&io->ctl_lock);
        if (io->ctl_count < 64) {
            io->ctl_cancel[io->ctl_count++] = id;
            atomic_store_explicit(&io->ctl_pending, 1, memory_order_release);
            pthread_mutex_unlock(&io->ctl_lock);
            break;
        }
        pthread_mutex_unlock(&io->ctl_lock);
        sched_yield(); /* 64 cancels queued and not yet taken: the worker takes them every round */
    }
    sp_wake_if_sleeping(NULL, w);
    return SP_OK;
}

int sp_engine_io_stats(const sp_engine *e, uint32_t worker, sp_io_stats *out) {
    if (worker >= e->worker_count) return SP_EBAD_WORKER;
    sp_io *io = e->workers[worker]->io;
    memset(out, 0, sizeof *out);
    if (!io) return SP_OK;
    out->live = __atomic_load_n(&io->live, __ATOMIC_RELAXED);
    out->rearms = __atomic_load_n(&io->rearms, __ATOMIC_RELAXED);
    out->stalled = __atomic_load_n(&io->stalled, __ATOMIC_RELAXED);
    out->enters = __atomic_load_n(&io->enters, __ATOMIC_RELAXED);
    out->nobufs = __atomic_load_n(&io->nobufs, __ATOMIC_RELAXED);
    out->buffers_lent = __atomic_load_n(&io->lent, __ATOMIC_RELAXED);
    out->short_sends = __atomic_load_n(&io->short_sends, __ATOMIC_RELAXED);
    return SP_OK;
}

/* The cancelled events that had nothing in flight, and anything else the backend left for the
 * next round. Returns events delivered. */
uint32_t sp_io_pending(sp_worker *w) {
    sp_io *io = w->io;
    if (io->held_head == SP_NONE) return 0;
    /* The list as it is now; what is held again below goes on a fresh one, for the next round. */
    uint32_t i = io->held_head;
    io->held_head = io->held_tail = SP_NONE;
    uint32_t n = 0;
    while (i != SP_NONE) {
        sp_source *s = &io->src[i];
        i = s->next_held;
        s->listed &= (uint8_t)~1u;
        if (s->state == SP_SRC_FREE || !s->rearm) continue;
        if (s->state == SP_SRC_CANCELLING) {
            int ok = s->kind == SP_SOURCE_CONN ? sp_io_deliver(w, s, s->close_err, SP_IO_FINAL | (SP_OP_CLOSED << 8), 0, 0)
                                               : sp_io_deliver(w, s, 0, SP_IO_FINAL | SP_IO_CANCELLED, 0, 0);
            if (!ok) { /* full: next round */
                sp_io_hold(io, s);
                continue;
            }
            s->rearm = 0;
            n++;
            continue;
        }
        /* Cleared first: a backend that has to hold the source again (a full lane, no buffer)
         * sets it again itself, and that must survive this call. */
        s->rearm = 0;
        int r = w->engine->backend->io_rearm(w, s);
        if (r < 0) {
            sp_io_hold(io, s); /* retry next round */
            continue;
        }
        n += (uint32_t)r;
    }
    return n;
}

void sp_io_worker_exit(sp_worker *w) {
    sp_io *io = w->io;
    if (!io) return;
    for (uint32_t i = 0; i < io->capacity; i++) {
        sp_source *s = &io->src[i];
        if (s->state == SP_SRC_FREE) continue;
        if (s->kind == SP_SOURCE_SIGNALS && s->signals) {
            sp_signals_release(s->signals); /* the default disposition is back */
            s->signals = 0;
        }
        /* Peers see the end now (FIN; a listener stops accepting), not when the engine is freed:
         * the fds themselves close after the ring, which may still hold requests on them. */
        if ((s->kind == SP_SOURCE_CONN || s->kind == SP_SOURCE_LISTEN) && s->fd >= 0) shutdown(s->fd, SHUT_RDWR);
    }
}

uint32_t sp_tcp_queued_calls(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    uint32_t n = 0;
    for (uint32_t ci = s->sq_head; ci != SP_NONE; ci = io->chunks[ci].next) n += io->chunks[ci].last;
    return n;
}

/* The signal doorbell rang (both backends): drain it, then take the pending signals — a signal
 * after the take rings again — and deliver one event each. A full lane puts the rest back and
 * rings the doorbell again, so they come at a later round instead of waiting for another signal. */
int sp_io_signals_ready(sp_worker *w, sp_source *s) {
    uint64_t v;
    while (read(s->fd, &v, sizeof v) == sizeof v) {
    }
    uint64_t bits = sp_signals_take(s->signals);
    int n = 0;
    for (int sig = 1; sig <= 64 && bits; sig++) {
        uint64_t b = 1ull << (sig - 1);
        if (!(bits & b)) continue;
        if (!sp_io_deliver(w, s, sig, 0, 0, 1)) {
            sp_signals_put_back(bits);
            uint64_t one = 1;
            ssize_t rc = write(s->fd, &one, sizeof one);
            (void)rc;
            break;
        }
        bits &= ~b;
        n++;
    }
    return n;
}

/* A signal source's doorbell (both backends): an eventfd the signal handler writes, claimed as the
 * owner of the source's signals. On failure nothing is left claimed or open. */
int sp_io_signal_doorbell(sp_source *s, char *msg, size_t len) {
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        snprintf(msg, len, "eventfd for a signal source failed: %s", strerror(errno));
        return SP_ESYS;
    }
    int rc = sp_signals_claim(s->signals, efd, msg, len);
    if (rc != SP_OK) {
        close(efd);
        s->signals = 0; /* nothing to release */
        return rc;
    }
    s->fd = efd;
    return SP_OK;
}

int sp_io_out_of_buffers(sp_worker *w, sp_source *s) {
    sp_io *io = w->io;
    sp_io_bump(&io->nobufs, 1);
    if (s->nobufs) return 0;
    sp_io_wait_buffers(io, s);
    return sp_io_deliver(w, s, -ENOBUFS, SP_OP_NOBUFS << 8, 0, 0);
}
