/*
 * uring.c — the io_uring backend: each worker owns a ring it created itself (SINGLE_ISSUER |
 * DEFER_TASKRUN where the kernel has them, else COOP_TASKRUN), sleeps in io_uring_enter, and is
 * woken by another worker with IORING_OP_MSG_RING (no eventfd, no extra syscall on the sleeper's
 * side) or by a foreign thread through its eventfd, watched by a multishot poll it keeps armed.
 *
 * liburing stays in this file: Swift never sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "io/io.h"
#include "uring_compat.h"


enum { SP_TAG_EVENTFD = 1, SP_TAG_WAKE = 2, SP_TAG_WAKE_SENT = 3 /* | target id << 8 */ };

typedef struct sp_uring {
    struct io_uring ring;
    int efd_armed;
    int msg_ring;
    int multishot_poll; /* IORING_POLL_ADD_MULTI (5.13): else single-shot polls, re-armed per event */
    int multishot_recv; /* IORING_RECV_MULTISHOT (6.0), multishot accept (5.19): else single-shot, re-armed */
    int buf_ring;       /* provided-buffer rings (5.19): else a single-shot recv into a buffer we pick */
    /* Completions taken off the CQ whose lane was full, oldest first (see sp_uring_reap). Bounded
     * by the CQ's size; allocated with the ring. */
    struct sp_cqe_copy {
        uint64_t tag;
        int32_t res;
        uint32_t flags;
    } *stash;
    uint32_t stash_len, stash_cap;
} sp_uring;

static _Atomic uint32_t sp_uring_withheld; /* tests: features to act as if the kernel lacked */

uint32_t sp_test_set_uring_withheld(uint32_t features) { return atomic_exchange(&sp_uring_withheld, features); }

/* Buffer rings are a registration, not an opcode: probed by registering a one-entry ring (group
 * 0xFFFF, never used) and unregistering it. */
static int sp_uring_probe_buf_ring(struct io_uring *ring) {
    long page = sysconf(_SC_PAGESIZE);
    void *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return 0;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)mem;
    reg.ring_entries = 1;
    reg.bgid = 0xFFFF;
    int ok = io_uring_register_buf_ring(ring, &reg, 0) == 0;
    if (ok) io_uring_unregister_buf_ring(ring, 0xFFFF);
    munmap(mem, (size_t)page);
    return ok;
}

/* The opcodes the engine submits. NULL when `probe` has them all, else why not. */
static const char *sp_uring_missing_opcode(struct io_uring_probe *probe) {
    static const struct { int op; const char *why; } needed[] = {
        {IORING_OP_POLL_ADD, "this kernel has no IORING_OP_POLL_ADD (Linux 5.6 or later needed)"},
        {IORING_OP_TIMEOUT, "this kernel has no IORING_OP_TIMEOUT (Linux 5.6 or later needed)"},
        {IORING_OP_TIMEOUT_REMOVE, "this kernel has no IORING_OP_TIMEOUT_REMOVE (Linux 5.6 or later needed)"},
        {IORING_OP_ASYNC_CANCEL, "this kernel has no IORING_OP_ASYNC_CANCEL (Linux 5.6 or later needed)"},
        {IORING_OP_ACCEPT, "this kernel has no IORING_OP_ACCEPT (Linux 5.6 or later needed)"},
        {IORING_OP_RECV, "this kernel has no IORING_OP_RECV (Linux 5.6 or later needed)"},
        {IORING_OP_SEND, "this kernel has no IORING_OP_SEND (Linux 5.6 or later needed)"},
        {IORING_OP_PROVIDE_BUFFERS, "this kernel has no IORING_OP_PROVIDE_BUFFERS (Linux 5.7 or later needed)"},
    };
    if (!probe) return "the opcode probe failed (Linux 5.6 or later needed)";
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        int test_miss = needed[i].op == IORING_OP_PROVIDE_BUFFERS && (sp_uring_withheld & SP_TEST_NO_PROVIDE_BUFFERS);
        if (!io_uring_opcode_supported(probe, needed[i].op) || test_miss) return needed[i].why;
    }
    return NULL;
}

static int sp_uring_init(sp_worker *w, uint32_t want, uint32_t entries, uint32_t *features, char *msg, size_t len) {
    sp_uring *u = calloc(1, sizeof *u);
    if (!u) return SP_ENOMEM;
    struct io_uring_params p;
    int rc = -EINVAL;
    uint32_t feats = 0;
    if (want & SP_URING_WANT_DEFER_TASKRUN) {
        memset(&p, 0, sizeof p);
        /* TASKRUN_FLAG: the kernel raises IORING_SQ_TASKRUN when completions wait for us to
         * enter, so a busy worker knows without a syscall (sp_uring_io_poll). */
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        rc = io_uring_queue_init_params(entries, &u->ring, &p);
        if (rc == 0) feats = SP_FEAT_SINGLE_ISSUER | SP_FEAT_DEFER_TASKRUN;
    }
    if (rc == -EINVAL && (want & SP_URING_WANT_COOP_TASKRUN)) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        rc = io_uring_queue_init_params(entries, &u->ring, &p);
        if (rc == 0) feats = SP_FEAT_COOP_TASKRUN;
    }
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(entries, &u->ring, &p);
    }
    if (rc < 0) {
        snprintf(msg, len, "io_uring_setup failed on worker %u: %s", w->id, strerror(-rc));
        free(u);
        return SP_EURING;
    }
    /* Every opcode the engine submits, probed on this worker's own ring: a kernel without one is
     * refused (the availability probe already made `auto` fall back to epoll), never found out later. */
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    const char *missing = sp_uring_missing_opcode(probe);
    if (missing) {
        snprintf(msg, len, "io_uring on worker %u: %s", w->id, missing);
        if (probe) io_uring_free_probe(probe);
        io_uring_queue_exit(&u->ring);
        free(u);
        return SP_EURING;
    }
    if (io_uring_opcode_supported(probe, IORING_OP_MSG_RING)) {
        feats |= SP_FEAT_MSG_RING;
        u->msg_ring = 1;
    }
    io_uring_free_probe(probe);
    /* Multishot poll, recv and accept are flags, not opcodes: the opcode probe cannot see them,
     * so the kernel's version says (5.13 poll, 5.19 accept, 6.0 recv). Buffer rings are probed. */
    struct utsname un;
    unsigned major = 0, minor = 0;
    if (uname(&un) == 0) sscanf(un.release, "%u.%u", &major, &minor);
    uint32_t withheld = sp_uring_withheld;
    u->multishot_poll = (major > 5 || (major == 5 && minor >= 13)) && !(withheld & SP_FEAT_MULTISHOT_POLL);
    u->multishot_recv = major >= 6 && !(withheld & SP_FEAT_MULTISHOT_RECV);
    u->buf_ring = !(withheld & SP_FEAT_BUF_RING) && sp_uring_probe_buf_ring(&u->ring);
    if (u->multishot_poll) feats |= SP_FEAT_MULTISHOT_POLL;
    if (u->multishot_recv) feats |= SP_FEAT_MULTISHOT_RECV;
    if (u->buf_ring) feats |= SP_FEAT_BUF_RING;
    u->stash_cap = u->ring.cq.ring_entries;
    u->stash = calloc(u->stash_cap, sizeof *u->stash);
    if (!u->stash) {
        snprintf(msg, len, "io_uring on worker %u: cannot allocate its completion stash (%u entries)", w->id, u->stash_cap);
        io_uring_queue_exit(&u->ring);
        free(u);
        return SP_ENOMEM;
    }
    *features = feats;
    w->backend = u;

    /* Published for other workers' MSG_RING; they read it after start() returned (ordered by
     * the start handshake's mutex). */
    w->ring_fd = u->msg_ring ? u->ring.ring_fd : -1;
    return SP_OK;
}

/* The eventfd doorbell: a multishot poll, armed on the first sleep and again whenever the kernel
 * ends it (a CQE without IORING_CQE_F_MORE, e.g. on CQ overflow). Every eventfd write posts a
 * completion while it is armed, and arming it while the counter is non-zero posts one at once.
 *
 * The worker never reads (drains) the eventfd. It used to, when arming — after its sleep flag was
 * published — and that lost wake-ups: a producer that saw the flag between the flag and the drain
 * wrote the eventfd, the drain consumed the write, the poll was armed on a zero counter, and with
 * the flag already cleared by that producer nobody wrote again (docs/reliability.md). Undrained,
 * the counter only grows (by one per wake-up: 2^64 writes are out of reach) and a re-arm costs at
 * most one spurious wake-up. A poll is used, not a read: its completion is posted from the write
 * itself, with no read to run in the worker's task work (a few µs off a foreign wake-up). */
static int sp_uring_arm_eventfd(sp_uring *u, sp_worker *w) {
    if (u->efd_armed) return 1;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) return 0; /* the submit failed (-EBUSY, -ENOMEM): not armed */
    }
    io_uring_prep_poll_multishot(sqe, w->event_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, SP_TAG_EVENTFD);
    u->efd_armed = 1;
    return 1;
}

/* A MSG_RING wake-up we sent failed (its CQE only appears on failure: CQE_SKIP_SUCCESS): the
 * target's flag is already cleared, so nobody else will wake it — do it through its eventfd. */
static void sp_uring_wake_failed(sp_worker *self, uint64_t tag) {
    uint32_t target = (uint32_t)(tag >> 8);
    sp_engine *e = self->engine;
    if (target < e->worker_count) sp_eventfd_wake(e->workers[target]);
}

/* The lane an I/O completion goes to, or -1 when its source is gone (the completion is then
 * dropped by sp_uring_io_complete, whatever the lanes hold). */
static int sp_uring_tag_lane(sp_worker *w, uint64_t tag) {
    sp_source *s = sp_io_lookup(w, tag & SP_IO_ID_MASK);
    return s ? (int)s->lane : -1;
}

/* One I/O completion, unless its lane is blocked in this reap (an earlier one of that lane found
 * it full): then, or when it finds the lane full itself, it is kept in the stash, its lane marked
 * blocked. Returns the events delivered, or -1 when it had to be kept and the stash is full. */
static int sp_uring_take(sp_uring *u, sp_worker *w, uint64_t tag, int32_t res, uint32_t flags, uint32_t *blocked) {
    /* The lane is looked up only when some lane is blocked or this one was refused: the common
     * reap (no full lane) does one lookup per completion, in sp_uring_io_complete. */
    int lane = *blocked ? sp_uring_tag_lane(w, tag) : -1;
    int r = lane >= 0 && (*blocked >> lane & 1u) ? -1 : sp_uring_io_complete(w, tag, res, flags);
    if (r >= 0) return r;
    if (lane < 0) lane = sp_uring_tag_lane(w, tag);
    if (lane >= 0) *blocked |= 1u << lane;
    if (u->stash_len == u->stash_cap) return -1;
    u->stash[u->stash_len++] = (struct sp_cqe_copy){tag, res, flags};
    return 0;
}

/* Consumes the CQEs: I/O sources' completions become events in their lanes, wake-up doorbells
 * need nothing (the worker re-checks its rings), the eventfd poll's end is noted, and failed
 * MSG_RING sends are answered. Returns the events delivered.
 *
 * A full lane holds back only its own completions: they move from the CQ to the stash, in order,
 * and the CQ is reaped on — a strict lane's completion is never stuck behind a flood on a full
 * weighted lane (the epoll backend holds sources per source; this is the same rule). Later
 * completions of a blocked lane are stashed after it (one source's order is kept); the stash is
 * taken first, oldest first, at the next reap. Nothing is dropped: only when the stash itself is
 * full (as many entries as the CQ) does the reap stop there and leave the rest in the CQ. */
static uint32_t sp_uring_reap(sp_uring *u, sp_worker *w) {
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    uint32_t delivered = 0, blocked = 0; /* lanes (bit per lane) found full in this reap */
    if (u->stash_len) {
        /* Kept entries are written back from the start, in order: index stash_len <= i, and
         * entry i is copied before it can be overwritten. */
        uint32_t len = u->stash_len;
        u->stash_len = 0;
        for (uint32_t i = 0; i < len; i++) {
            struct sp_cqe_copy c = u->stash[i];
            int r = sp_uring_take(u, w, c.tag, c.res, c.flags, &blocked);
            if (r > 0) delivered += (uint32_t)r;
        }
    }
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        uint64_t tag = io_uring_cqe_get_data64(cqe);
        if (tag & SP_IO_TAG) {
            int r = sp_uring_take(u, w, tag, cqe->res, cqe->flags, &blocked);
            if (r < 0) break; /* the stash is full: the rest stay in the CQ, nothing is dropped */
            delivered += (uint32_t)r;
        } else if ((tag & 0xff) == SP_URING_PROVIDE_TAG) {
            sp_uring_provide_failed(w, tag, cqe->res);
        } else if (tag == SP_TAG_EVENTFD && !(cqe->flags & IORING_CQE_F_MORE)) {
            u->efd_armed = 0;
        } else if ((tag & 0xff) == SP_TAG_WAKE_SENT && cqe->res < 0) {
            sp_uring_wake_failed(w, tag);
        }
        n++;
    }
    io_uring_cq_advance(&u->ring, n);
    return delivered;
}

struct io_uring *sp_uring_ring(sp_worker *w) { return &((sp_uring *)w->backend)->ring; }
int sp_uring_multishot_poll(sp_worker *w) { return ((sp_uring *)w->backend)->multishot_poll; }
int sp_uring_multishot_recv(sp_worker *w) { return ((sp_uring *)w->backend)->multishot_recv; }
int sp_uring_buf_ring(sp_worker *w) { return ((sp_uring *)w->backend)->buf_ring; }

/* A busy worker with sources, once per round: one io_uring_enter only when there is something to
 * submit or task work to run (IORING_SQ_TASKRUN, set by the kernel under DEFER_TASKRUN with
 * TASKRUN_FLAG), then reap from shared memory. With nothing in flight: no syscall. */
static uint32_t sp_uring_io_poll(sp_worker *w) {
    sp_uring *u = w->backend;
    sp_io *io = w->io;
    uint32_t n = sp_io_pending(w);
    unsigned sq_flags = __atomic_load_n(u->ring.sq.kflags, __ATOMIC_RELAXED);
    if (io_uring_sq_ready(&u->ring) || (sq_flags & IORING_SQ_TASKRUN)) {
        io_uring_submit_and_get_events(&u->ring);
        sp_io_bump(&io->enters, 1);
    }
    if (io_uring_cq_ready(&u->ring) || u->stash_len) n += sp_uring_reap(u, w);
    return n;
}

static void sp_uring_wait(sp_worker *w) {
    sp_uring *u = w->backend;
    if (!sp_uring_arm_eventfd(u, w)) {
        /* Without the doorbell a foreign wake-up could not end the wait: do not block. The worker
         * loops and tries again (CSupport/model wake.pml, armfail). */
        io_uring_submit(&u->ring);
        sp_uring_reap(u, w);
        return;
    }
    int rc;
    do {
        rc = io_uring_submit_and_wait(&u->ring, 1);
    } while (rc == -EINTR);
    sp_uring_reap(u, w);
}

static int sp_uring_wake_from_worker(sp_worker *self, sp_worker *target) {
    sp_uring *u = self->backend;
    if (!u || !u->msg_ring || target->ring_fd < 0) {
        sp_eventfd_wake(target);
        return 1;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
    }
    if (!sqe) {
        sp_eventfd_wake(target);
        return 1;
    }
    /* A CQE tagged WAKE appears in the target's ring and ends its io_uring_enter wait. Our own
     * completion is skipped on success; a failure (e.g. -ENOMEM, -EOVERFLOW) posts one to our
     * ring, tagged with the target, and is answered with an eventfd write. */
    io_uring_prep_msg_ring(sqe, target->ring_fd, 0, SP_TAG_WAKE, 0);
    io_uring_sqe_set_data64(sqe, SP_TAG_WAKE_SENT | ((uint64_t)target->id << 8));
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    if (io_uring_submit(&u->ring) < 0) {
        sp_eventfd_wake(target); /* the submit itself failed: the MSG_RING never went out */
        return 1;
    }
    /* Usually MSG_RING runs inline in the submit and a failure is already in our CQ (a memory
     * read, no syscall, when there is none). On some kernels (6.3–6.10, DEFER_TASKRUN targets) it
     * runs as the target's task work and a failure comes back later: it is answered at our next
     * reap (every round while we have I/O in flight, and before we sleep) — delayed, never lost. */
    if (io_uring_cq_ready(&u->ring)) sp_uring_reap(u, self);
    return 1;
}

static void sp_uring_destroy(sp_worker *w) {
    sp_uring *u = w->backend;
    if (!u) return;
    io_uring_queue_exit(&u->ring);
    free(u->stash);
    free(u);
    w->backend = NULL;
}

const sp_backend_ops sp_uring_backend = {
    .kind = SP_BACKEND_IO_URING,
    .init = sp_uring_init,
    .wait = sp_uring_wait,
    .wake_from_worker = sp_uring_wake_from_worker,
    .destroy = sp_uring_destroy,
    .io_arm = sp_uring_io_arm,
    .io_rearm = sp_uring_io_rearm,
    .io_cancel = sp_uring_io_cancel,
    .io_poll = sp_uring_io_poll,
    .buf_setup = sp_uring_buf_setup,
    .buf_return = sp_uring_buf_return,
    .buf_flush = sp_uring_buf_flush,
    .conn_send = sp_uring_conn_send,
    .conn_stop = sp_uring_conn_stop,
};

typedef struct sp_probe {
    int rc;
    const char *missing; /* an opcode the kernel lacks */
} sp_probe;

static void *sp_uring_probe_thread(void *arg) {
    sp_probe *p = arg;
    struct io_uring ring;
    p->rc = io_uring_queue_init(8, &ring, 0);
    if (p->rc == 0) {
        struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
        p->missing = sp_uring_missing_opcode(probe);
        if (probe) io_uring_free_probe(probe);
        io_uring_queue_exit(&ring);
    }
    return NULL;
}

/* Can this process use io_uring (seccomp, kernel.io_uring_disabled)? Probed on a short-lived thread
 * of its own, not the caller's: tearing a ring down queues task work on the thread that used it
 * (TWA_SIGNAL), which interrupted the caller's next blocking call with EINTR — a user's thread
 * that started an engine saw a recv with SO_RCVTIMEO fail. */
int sp_uring_available(char *msg, size_t len) {
    sp_probe p = {.rc = -EAGAIN};
    pthread_t t;
    if (pthread_create(&t, NULL, sp_uring_probe_thread, &p) != 0) {
        sp_uring_probe_thread(&p); /* no thread to be had: probe here */
    } else {
        pthread_join(t, NULL);
    }
    if (p.rc < 0) {
        snprintf(msg, len, "io_uring is not available here (%s: seccomp or kernel.io_uring_disabled?)", strerror(-p.rc));
        return 0;
    }
    if (p.missing) {
        snprintf(msg, len, "io_uring is too old here: %s", p.missing);
        return 0;
    }
    return 1;
}
