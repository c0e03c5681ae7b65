#ifndef SPINDLE_CTEST_SUPPORT_H
#define SPINDLE_CTEST_SUPPORT_H
/** Installs a seccomp filter in the calling process that fails io_uring_setup with EPERM, as a
 *  container's default seccomp profile does. Irreversible: call it in a child (exit test).
 *  Returns 0 on success. */
int cts_deny_io_uring(void);
/** 1 when the process runs under the filter from start (SPINDLE_TEST_DENY_IO_URING=1). */
int cts_io_uring_denied_by_env(void);
/** The io_uring features withheld from start (SPINDLE_TEST_URING_WITHHELD, SP_FEAT_* bits), or 0. */
unsigned cts_uring_withheld_by_env(void);

#include <stdint.h>

/** A rendezvous in a worker's sleep window (spindle.h's sp_test_set_sleep_hook): the hook holds
 *  worker `worker` at its sleep number `sleep_no` — after its sleep flag is published and its rings
 *  were found empty, before the backend's wait — until the test has posted (cts_release), so a
 *  wake-up lands exactly in the window. The hold is bounded by `hold_ns`: a test that never
 *  releases fails on its own deadline, never hangs the worker. */
typedef struct cts_rendezvous {
    uint32_t worker;
    uint32_t pad_;
    uint64_t sleep_no;
    uint64_t hold_ns;
    int32_t state;     /* 0 armed, 1 holding the worker in its window, 2 released, 3 timed out */
    int32_t pad2_;
    uint64_t hits;     /* windows held so far */
} cts_rendezvous;

/** The hook (pass it with the rendezvous as context). */
void cts_rendezvous_hook(void *context, uint32_t worker, uint64_t sleep_no);
/** Arms `r` for `worker`'s sleep number `sleep_no` (0: a fresh engine's first sleep). */
void cts_rendezvous_arm(cts_rendezvous *r, uint32_t worker, uint64_t sleep_no, uint64_t hold_ns);
/** Waits up to `timeout_ns` until the worker is held in its window. Returns 1 when it is. */
int cts_rendezvous_wait_held(cts_rendezvous *r, uint64_t timeout_ns);
/** Lets the held worker go on into its wait. */
void cts_rendezvous_release(cts_rendezvous *r);
/** The state (0 armed, 1 held, 2 released, 3 the hold timed out). */
int32_t cts_rendezvous_state(const cts_rendezvous *r);

/** Signals for the EINTR test: installs a no-op handler for `sig` without SA_RESTART (so every
 *  blocking call it interrupts returns EINTR), unblocks it in the calling thread, and counts
 *  deliveries. Returns 0 on success. */
int cts_install_counting_handler(int sig);
/** Unblocks `sig` in the calling thread (threads it creates inherit that; the test runner's threads
 *  may block it). Also done by cts_install_counting_handler. Returns 0 or -errno. */
int cts_unblock_signal(int sig);
/** Puts `sig` back to its default disposition (the engine's signal sources refuse a signal that
 *  has a handler). Returns 0 or -errno. */
int cts_restore_default(int sig);
/** Deliveries counted by that handler so far. */
uint64_t cts_signals_delivered(void);
/** tgkill(getpid(), tid, sig): a signal to one thread. Returns 0 or -errno. */
int cts_signal_thread(int32_t tid, int sig);
/** The calling thread's kernel id (gettid). */
int32_t cts_gettid(void);
/** A blocking TCP connection to 127.0.0.1:`port` with `timeout_s` send and receive timeouts (every
 *  wait bounded) and, when > 0, that receive buffer. Returns the fd or -errno. */
int cts_connect_loopback(int port, int receive_buffer, int timeout_s);
#endif
