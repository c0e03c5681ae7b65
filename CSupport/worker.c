/*
 * worker.c — a worker thread: pin, place memory, set up the backend, then loop: scheduler rounds
 * while there is work, spin for the configured time, then sleep in the kernel until woken.
 */
#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "io/io.h"

__thread sp_worker *sp_tls_worker;

/* Tests only (spindle.h): a rendezvous in the window between the sleep flag and the wait. */
static _Atomic(sp_sleep_hook) sp_hook;
static void *_Atomic sp_hook_context;

void sp_test_set_sleep_hook(sp_sleep_hook hook, void *context) {
    atomic_store(&sp_hook_context, context);
    atomic_store(&sp_hook, hook);
}

static void sp_report_ready(sp_engine *e, int err, const char *msg) {
    pthread_mutex_lock(&e->lock);
    if (err) {
        if (!e->failed_workers) {
            e->start_err = err;
            snprintf(e->start_msg, sizeof e->start_msg, "%s", msg);
        }
        e->failed_workers++;
    } else {
        e->ready++;
    }
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

static int sp_wait_go(sp_engine *e) {
    pthread_mutex_lock(&e->lock);
    while (e->go == 0) pthread_cond_wait(&e->cond, &e->lock);
    int go = e->go;
    pthread_mutex_unlock(&e->lock);
    return go > 0;
}

static void sp_report_exit(sp_engine *e) {
    pthread_mutex_lock(&e->lock);
    e->exited++;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

static int sp_worker_setup(sp_worker *w, char *msg, size_t len) {
    sp_engine *e = w->engine;
    w->tid = (pid_t)syscall(SYS_gettid);
    char name[16];
    snprintf(name, sizeof name, "spindle-w%u", w->id);
    pthread_setname_np(pthread_self(), name);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    if ((sp_fault_hit(SP_FAULT_PIN) && (errno = EPERM)) || sched_setaffinity(0, sizeof set, &set) != 0) {
        snprintf(msg, len, "worker %u cannot pin itself to CPU %u: %s; fix: allow that CPU (affinity/cgroup cpuset) or remove it from engine.cpus",
                 w->id, w->cpu, strerror(errno));
        return SP_EPIN;
    }
    if (numa_available() >= 0 && e->cfg.numa_policy == SP_NUMA_LOCAL) numa_set_localalloc();
    uint32_t features = 0;
    const sp_backend_ops *b = e->backend;
    if (sp_io_init(w, SP_MAX_SOURCES) != SP_OK) {
        snprintf(msg, len, "worker %u: cannot allocate its source table", w->id);
        return SP_ENOMEM;
    }
    if (sp_fault_hit(SP_FAULT_BACKEND)) {
        snprintf(msg, len, "worker %u: %s setup failed: %s (injected)", w->id,
                 b->kind == SP_BACKEND_IO_URING ? "io_uring" : "epoll", strerror(ENOMEM));
        return SP_EURING;
    }
    int rc = b->init(w, e->cfg.uring_flags, e->cfg.uring_entries, &features, msg, len);
    if (rc == SP_OK && w->id == 0) e->features = features;
    return rc;
}

void *sp_worker_main(void *arg) {
    sp_worker *w = arg;
    sp_engine *e = w->engine;
    sp_tls_worker = w;
    char msg[256] = {0};
    int rc = sp_worker_setup(w, msg, sizeof msg);
    if (rc == SP_OK && e->cb.worker_started) e->cb.worker_started(e->cb.context, w, w->id);
    sp_report_ready(e, rc, msg);
    if (rc != SP_OK || !sp_wait_go(e)) {
        if (rc == SP_OK && e->cb.worker_stopping) e->cb.worker_stopping(e->cb.context, w, w->id);
        sp_tls_worker = NULL;
        return NULL;
    }

    uint64_t idle_since = 0;
    sp_io *io = w->io;
    for (;;) {
        if (__builtin_expect(atomic_load_explicit(&io->ctl_pending, memory_order_acquire) != 0, 0)) sp_io_take_control(w);
        uint32_t n = sp_sched_round(w);
        /* I/O completions enter the lanes once per round; a worker without sources skips it. */
        if (io->live) n += e->backend->io_poll(w);
        if (n) {
            idle_since = 0;
            /* Past the shutdown deadline a busy worker stops after the batch in progress, even if
             * handlers keep posting to it (CSupport/model abort.pml). */
            if (__builtin_expect(atomic_load_explicit(&e->state, memory_order_relaxed) == SP_STATE_ABORT, 0)) break;
            continue;
        }
        sp_worker_flush(w); /* posts made outside a batch (worker_started hooks) */
        uint32_t st = atomic_load_explicit(&e->state, memory_order_acquire);
        if (st == SP_STATE_ABORT || st == SP_STATE_DRAINED) break;
        if (st == SP_STATE_STOPPING && sp_engine_quiescent(e)) {
            /* The last worker to go idle sees the whole engine drained and tells the others. */
            uint32_t expected = SP_STATE_STOPPING;
            atomic_compare_exchange_strong(&e->state, &expected, SP_STATE_DRAINED);
            sp_wake_all(e);
            break;
        }
        uint64_t now = sp_now_ns();
        if (idle_since == 0) idle_since = now;
        if (now - idle_since < w->spin_ns) {
            sp_cpu_relax();
            continue;
        }
        /* Sleep. Publish the flag, then (heavy barrier, see barrier.h) look once more: a producer
         * that published before our flag was visible is seen here; one after sees the flag. */
        atomic_store_explicit(&w->sleeping, 1, memory_order_relaxed);
        sp_heavy_barrier();
        if (sp_worker_has_work(w) || atomic_load_explicit(&io->ctl_pending, memory_order_relaxed) ||
            atomic_load_explicit(&e->state, memory_order_acquire) != st) {
            atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
            sp_watchdog_worker_awake(e); /* the watchdog may have seen our flag and parked */
            continue;
        }
        uint64_t sleep_no = atomic_load_explicit(&w->sleeps, memory_order_relaxed);
        atomic_store_explicit(&w->sleeps, sleep_no + 1, memory_order_relaxed);
        sp_sleep_hook hook = atomic_load_explicit(&sp_hook, memory_order_acquire);
        if (__builtin_expect(hook != NULL, 0)) hook(atomic_load(&sp_hook_context), w->id, sleep_no);
        /* The backend's wait must return for any wake-up sent after our flag became visible, even
         * one sent before it got here (docs/reliability.md, "The sleep/wake handshake"). */
        e->backend->wait(w);
        atomic_store_explicit(&w->sleeping, 0, memory_order_relaxed);
        sp_watchdog_worker_awake(e); /* a parked watchdog watches again (cold: after a wait) */
        idle_since = 0;
    }
    sp_io_worker_exit(w); /* signals back to their default disposition; peers see their sockets end */
    if (e->cb.worker_stopping) e->cb.worker_stopping(e->cb.context, w, w->id);
    /* The backend (ring fd, epoll fd) stays open until every worker has exited: another worker
     * may still be waking this one with MSG_RING, and a closed fd number could be reused. */
    sp_tls_worker = NULL;
    sp_report_exit(e);
    return NULL;
}
