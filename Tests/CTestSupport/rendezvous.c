/*
 * rendezvous.c — holds a worker in the window between its sleep flag and its wait, so a test can
 * post into exactly that window (the lost wake-up issue: a wake-up sent there was consumed).
 */
#include <sched.h>
#include <time.h>

#include "ctest_support.h"

static uint64_t cts_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void cts_rendezvous_hook(void *context, uint32_t worker, uint64_t sleep_no) {
    cts_rendezvous *r = context;
    if (worker != __atomic_load_n(&r->worker, __ATOMIC_ACQUIRE) || sleep_no != __atomic_load_n(&r->sleep_no, __ATOMIC_ACQUIRE))
        return;
    int32_t armed = 0;
    /* acq_rel: the test's arm (worker, sleep_no, hold_ns) is seen before we hold. */
    if (!__atomic_compare_exchange_n(&r->state, &armed, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return;
    __atomic_add_fetch(&r->hits, 1, __ATOMIC_RELAXED);
    uint64_t deadline = cts_now_ns() + r->hold_ns;
    while (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) == 1) {
        if (cts_now_ns() > deadline) {
            int32_t held = 1;
            __atomic_compare_exchange_n(&r->state, &held, 3, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
            return;
        }
        sched_yield(); /* the test thread needs the CPU to post */
    }
}

void cts_rendezvous_arm(cts_rendezvous *r, uint32_t worker, uint64_t sleep_no, uint64_t hold_ns) {
    __atomic_store_n(&r->state, 2, __ATOMIC_RELEASE); /* disarmed while the fields change */
    r->hold_ns = hold_ns;
    __atomic_store_n(&r->worker, worker, __ATOMIC_RELEASE);
    __atomic_store_n(&r->sleep_no, sleep_no, __ATOMIC_RELEASE);
    __atomic_store_n(&r->state, 0, __ATOMIC_RELEASE);
}

int cts_rendezvous_wait_held(cts_rendezvous *r, uint64_t timeout_ns) {
    uint64_t deadline = cts_now_ns() + timeout_ns;
    while (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE) != 1) {
        if (cts_now_ns() > deadline) return 0;
        sched_yield();
    }
    return 1;
}

void cts_rendezvous_release(cts_rendezvous *r) {
    int32_t held = 1;
    __atomic_compare_exchange_n(&r->state, &held, 2, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

int32_t cts_rendezvous_state(const cts_rendezvous *r) { return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE); }

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int cts_connect_loopback(int port, int receive_buffer, int timeout_s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -errno;
    if (receive_buffer > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    struct timeval tv = {.tv_sec = timeout_s, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}
