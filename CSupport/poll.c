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

static void sp_epoll_wait(sp_worker *w) {
    int ep = (int)(intptr_t)w->backend - 1;
    struct epoll_event ev;
    int n;
    do {
        n = epoll_wait(ep, &ev, 1, -1);
    } while (n < 0 && errno == EINTR);
    uint64_t v;
    while (read(w->event_fd, &v, sizeof v) == sizeof v) {
    }
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
};
