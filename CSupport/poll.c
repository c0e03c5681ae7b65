/*
 * poll.c — the epoll backend, for where io_uring is denied (containers' seccomp,
 * kernel.io_uring_disabled): a worker sleeps in epoll_wait on its eventfd; every wake-up, from a
 * worker or a foreign thread, is an eventfd write.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine.h"
#include "io/io.h"

static int sp_epoll_init(sp_worker *w, uint32_t want, uint32_t entries, uint32_t *features, char *msg, size_t len) {
    (void)want;
    (void)entries;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        snprintf(msg, len, "epoll_create1 failed on worker %u: %s", w->id, strerror(errno));
        return SP_ESYS;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, w->event_fd, &ev) != 0) {
        snprintf(msg, len, "epoll_ctl failed on worker %u: %s", w->id, strerror(errno));
        close(ep);
        return SP_ESYS;
    }
    *features = 0;
    w->backend = (void *)(intptr_t)(ep + 1); /* +1: fd 0 is valid, NULL means none */
    return SP_OK;
}

int sp_epoll_fd(sp_worker *w) { return (int)(intptr_t)w->backend - 1; }

/* Hands each readiness to its source (data.u64 1 is the wake-up eventfd: nothing to do). */
static uint32_t sp_epoll_dispatch(sp_worker *w, struct epoll_event *evs, int n) {
    uint32_t delivered = 0;
    for (int i = 0; i < n; i++)
        if (evs[i].data.u64 & SP_IO_TAG) delivered += (uint32_t)sp_epoll_io_ready(w, evs[i].data.u64, evs[i].events);
    return delivered;
}

static void sp_epoll_wait(sp_worker *w) {
    struct epoll_event evs[64];
    int n;
    do {
        n = epoll_wait(sp_epoll_fd(w), evs, 64, -1);
    } while (n < 0 && errno == EINTR);
    /* Drained after the wake-up and before the flag is published again: a write consumed here was
     * sent for this sleep, which is over (docs/reliability.md). */
    uint64_t v;
    while (read(w->event_fd, &v, sizeof v) == sizeof v) {
    }
    if (n > 0) sp_epoll_dispatch(w, evs, n);
}

/* A busy worker with sources: epoll has no shared-memory view of readiness, so it is asked with a
 * zero timeout — at most once every SP_EPOLL_POLL_NS, never per event. */
#define SP_EPOLL_POLL_NS 20000ull
static uint32_t sp_epoll_io_poll(sp_worker *w) {
    sp_io *io = w->io;
    uint32_t delivered = sp_io_pending(w);
    uint64_t now = sp_now_ns(); /* vDSO; only while sources are live on the epoll fallback */
    if (now - io->last_poll < SP_EPOLL_POLL_NS) return delivered;
    io->last_poll = now;
    struct epoll_event evs[64];
    int n = epoll_wait(sp_epoll_fd(w), evs, 64, 0);
    sp_io_bump(&io->enters, 1);
    if (n > 0) delivered += sp_epoll_dispatch(w, evs, n);
    return delivered;
}

static int sp_epoll_wake_from_worker(sp_worker *self, sp_worker *target) {
    (void)self;
    sp_eventfd_wake(target);
    return 1;
}

static void sp_epoll_destroy(sp_worker *w) {
    if (!w->backend) return;
    close((int)(intptr_t)w->backend - 1);
    w->backend = NULL;
}

const sp_backend_ops sp_epoll_backend = {
    .kind = SP_BACKEND_EPOLL,
    .init = sp_epoll_init,
    .wait = sp_epoll_wait,
    .wake_from_worker = sp_epoll_wake_from_worker,
    .destroy = sp_epoll_destroy,
    .io_arm = sp_epoll_io_arm,
    .io_rearm = sp_epoll_io_rearm,
    .io_cancel = sp_epoll_io_cancel,
    .io_poll = sp_epoll_io_poll,
    .buf_setup = sp_epoll_buf_setup,
    .buf_return = sp_epoll_buf_return,
    .buf_flush = sp_epoll_buf_flush,
    .conn_send = sp_epoll_conn_send,
    .conn_stop = sp_epoll_conn_stop,
};
