#include "barrier.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

int sp_membarrier_ok = 0;
static pthread_once_t sp_barrier_once = PTHREAD_ONCE_INIT;

static int sp_membarrier(int cmd) { return (int)syscall(__NR_membarrier, cmd, 0, 0); }

static void sp_barrier_setup(void) {
    int cmds = sp_membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return;
    if (sp_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return;
    /* Store before any worker starts (pthread_create orders it for them); foreign threads read
     * it after sp_engine_start returned to someone, which also orders it. */
    __atomic_store_n(&sp_membarrier_ok, 1, __ATOMIC_RELEASE);
}

void sp_barrier_init(void) { pthread_once(&sp_barrier_once, sp_barrier_setup); }

/* Producers rely on this call having run a barrier on their CPU: a local fence instead would not
 * pair with their compiler-only barrier (a lost wake-up; CSupport/model barrier.pml). So a failed
 * call (ENOMEM, EINTR) is retried until it succeeds, never replaced. */
void sp_heavy_barrier_slow(void) {
    while (sp_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) sched_yield();
}
