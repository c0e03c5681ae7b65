/*
 * syscalls.c — what a server thread costs over an echo window (SPINDLE_BENCH_SYSCALLS=1): the
 * syscalls it makes, counted by a perf counter on the raw_syscalls:sys_enter tracepoint attached to
 * the thread — the in-process equivalent of `perf stat -e raw_syscalls:sys_enter -t TID`, with no
 * cost to the counted thread beyond the tracepoint itself (unlike strace, which stops it at every
 * syscall) — and the CPU time it used (its per-thread CPU clock), which says which side of the
 * echo is the bottleneck.
 */
#include "peers_internal.h"
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long tracepoint_id(void) {
    static const char *paths[] = {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                                  "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"};
    for (unsigned i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        FILE *f = fopen(paths[i], "r");
        if (!f) continue;
        long id = -1;
        if (fscanf(f, "%ld", &id) != 1) id = -1;
        fclose(f);
        if (id >= 0) return id;
    }
    return -ENOENT;
}

int cbp_syscall_counter_open(int tid) {
    long id = tracepoint_id();
    if (id < 0) return (int)id;
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_TRACEPOINT;
    a.size = sizeof a;
    a.config = (uint64_t)id;
    a.disabled = 0;
    a.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

uint64_t cbp_syscall_counter_read(int fd) {
    uint64_t v = 0;
    if (fd < 0 || read(fd, &v, sizeof v) != sizeof v) return 0;
    return v;
}

void cbp_syscall_counter_close(int fd) {
    if (fd >= 0) close(fd);
}

uint64_t cbp_thread_cpu_ns(int tid) {
    /* the kernel's per-thread CPU clock id: MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) */
    clockid_t id = tid == 0 ? CLOCK_THREAD_CPUTIME_ID : (clockid_t)((~(unsigned)tid << 3) | 6);
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
