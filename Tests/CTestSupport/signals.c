/* Signals delivered to workers and producers at a high rate (FaultTests): every blocking wait they
 * are in returns EINTR. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ctest_support.h"

static _Atomic uint64_t cts_delivered;

static void cts_count(int sig) {
    (void)sig;
    atomic_fetch_add_explicit(&cts_delivered, 1, memory_order_relaxed);
}

int cts_install_counting_handler(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cts_count;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: interrupted calls fail with EINTR */
    if (sigaction(sig, &sa, NULL) != 0) return -errno;
    return cts_unblock_signal(sig);
}

int cts_unblock_signal(int sig) {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    return -pthread_sigmask(SIG_UNBLOCK, &one, NULL);
}

int cts_restore_default(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    return sigaction(sig, &sa, NULL) == 0 ? 0 : -errno;
}

uint64_t cts_signals_delivered(void) { return atomic_load_explicit(&cts_delivered, memory_order_relaxed); }

int cts_signal_thread(int32_t tid, int sig) {
    return syscall(SYS_tgkill, getpid(), tid, sig) == 0 ? 0 : -errno;
}

int32_t cts_gettid(void) { return (int32_t)syscall(SYS_gettid); }
