/*
 * uring.c — the io_uring backend: each worker owns a ring it created itself (SINGLE_ISSUER |
 * DEFER_TASKRUN where the kernel has them, else COOP_TASKRUN), sleeps in io_uring_enter, and is
 * woken by another worker with IORING_OP_MSG_RING (no eventfd, no extra syscall on the sleeper's
 * side) or by a foreign thread through an eventfd read it keeps armed.
 *
 * liburing stays in this file: Swift never sees it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "uring_compat.h"


enum { SP_TAG_EVENTFD = 1, SP_TAG_WAKE = 2 };

typedef struct sp_uring {
    struct io_uring ring;
    uint64_t efd_value;
    int efd_armed;
    int msg_ring;
} sp_uring;

static int sp_uring_init(sp_worker *w, uint32_t want, uint32_t entries, uint32_t *features, char *msg, size_t len) {
    sp_uring *u = calloc(1, sizeof *u);
    if (!u) return SP_ENOMEM;
    struct io_uring_params p;
    int rc = -EINVAL;
    uint32_t feats = 0;
    if (want & SP_URING_WANT_DEFER_TASKRUN) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
        rc = io_uring_queue_init_params(entries, &u->ring, &p);
        if (rc == 0) feats = SP_FEAT_SINGLE_ISSUER | SP_FEAT_DEFER_TASKRUN;
    }
    if (rc == -EINVAL && (want & SP_URING_WANT_COOP_TASKRUN)) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_COOP_TASKRUN;
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
    struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
    if (probe) {
        if (io_uring_opcode_supported(probe, IORING_OP_MSG_RING)) {
            feats |= SP_FEAT_MSG_RING;
            u->msg_ring = 1;
        }
        io_uring_free_probe(probe);
    }
    *features = feats;
    w->backend = u;

    /* Published for other workers' MSG_RING; they read it after start() returned (ordered by
     * the start handshake's mutex). */
    w->ring_fd = u->msg_ring ? u->ring.ring_fd : -1;
    return SP_OK;
}

static void sp_uring_arm_eventfd(sp_uring *u, sp_worker *w) {
    if (u->efd_armed) return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        io_uring_submit(&u->ring);
        sqe = io_uring_get_sqe(&u->ring);
        if (!sqe) return;
    }
    /* A multishot poll, not a read: its completion is posted from the eventfd's wake-up itself,
     * with no read to run in the worker's task work first (measured: a few µs off a foreign
     * wake-up). Every write signals it; the counter is reset here, when the poll is (re)armed. */
    uint64_t v;
    while (read(w->event_fd, &v, sizeof v) == sizeof v) {
    }
    io_uring_prep_poll_multishot(sqe, w->event_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, SP_TAG_EVENTFD);
    u->efd_armed = 1;
}

static void sp_uring_reap(sp_uring *u) {
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        if (io_uring_cqe_get_data64(cqe) == SP_TAG_EVENTFD && !(cqe->flags & IORING_CQE_F_MORE)) u->efd_armed = 0;
        n++;
    }
    io_uring_cq_advance(&u->ring, n);
}

static void sp_uring_wait(sp_worker *w) {
    sp_uring *u = w->backend;
    sp_uring_arm_eventfd(u, w);
    int rc;
    do {
        rc = io_uring_submit_and_wait(&u->ring, 1);
    } while (rc == -EINTR);
    sp_uring_reap(u);
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
     * completion is skipped on success: nothing to reap here. */
    io_uring_prep_msg_ring(sqe, target->ring_fd, 0, SP_TAG_WAKE, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_submit(&u->ring);
    return 1;
}

static void sp_uring_destroy(sp_worker *w) {
    sp_uring *u = w->backend;
    if (!u) return;
    io_uring_queue_exit(&u->ring);
    free(u);
    w->backend = NULL;
}

const sp_backend_ops sp_uring_backend = {
    .kind = SP_BACKEND_IO_URING,
    .init = sp_uring_init,
    .wait = sp_uring_wait,
    .wake_from_worker = sp_uring_wake_from_worker,
    .destroy = sp_uring_destroy,
};

int sp_uring_available(char *msg, size_t len) {
    struct io_uring ring;
    int rc = io_uring_queue_init(8, &ring, 0);
    if (rc < 0) {
        snprintf(msg, len, "io_uring is not available here (%s: seccomp or kernel.io_uring_disabled?)", strerror(-rc));
        return 0;
    }
    io_uring_queue_exit(&ring);
    return 1;
}
