#define _GNU_SOURCE
#include "ctest_support.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

int cts_deny_io_uring(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    /* TSYNC: every thread of the process, like a container's profile. */
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SPINDLE_TEST_DENY_IO_URING=1: the whole test process runs under the filter from its first
 * instruction, as in a container that denies io_uring, so every suite that asks for `.auto` meets
 * the fallback (scripts/test.sh runs the I/O suites this way). Installed before main, on the only
 * thread, so TSYNC covers every thread created later. */
__attribute__((constructor)) static void cts_deny_from_env(void) {
    const char *v = getenv("SPINDLE_TEST_DENY_IO_URING");
    if (v == NULL || strcmp(v, "1") != 0) return;
    if (cts_deny_io_uring() != 0) {
        fprintf(stderr, "SPINDLE_TEST_DENY_IO_URING=1: the seccomp filter could not be installed\n");
        abort();
    }
}

int cts_io_uring_denied_by_env(void) {
    const char *v = getenv("SPINDLE_TEST_DENY_IO_URING");
    return v != NULL && strcmp(v, "1") == 0;
}

/* SPINDLE_TEST_URING_WITHHELD=<SP_FEAT_* bits>: the io_uring backend acts as on an older kernel
 * (no multishot poll, recv/accept, or buffer rings), so the degraded forms run the I/O suites here
 * (scripts/test.sh). Declared here: this target does not depend on CSpindle's headers. */
unsigned sp_test_set_uring_withheld(unsigned features);

__attribute__((constructor)) static void cts_withhold_from_env(void) {
    const char *v = getenv("SPINDLE_TEST_URING_WITHHELD");
    if (v == NULL || *v == 0) return;
    sp_test_set_uring_withheld((unsigned)strtoul(v, NULL, 0));
}

unsigned cts_uring_withheld_by_env(void) {
    const char *v = getenv("SPINDLE_TEST_URING_WITHHELD");
    return v == NULL || *v == 0 ? 0u : (unsigned)strtoul(v, NULL, 0);
}
