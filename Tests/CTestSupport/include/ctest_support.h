#ifndef SPINDLE_CTEST_SUPPORT_H
#define SPINDLE_CTEST_SUPPORT_H
/** Installs a seccomp filter in the calling process that fails io_uring_setup with EPERM, as a
 *  container's default seccomp profile does. Irreversible: call it in a child (exit test).
 *  Returns 0 on success. */
int cts_deny_io_uring(void);
#endif
