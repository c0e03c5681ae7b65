/* uring_compat.h — io_uring setup flags newer than the liburing headers we build against (Debian 12
 * ships 2.3); the running kernel decides whether they work. Included only by .c files. */
#ifndef SP_URING_COMPAT_H
#define SP_URING_COMPAT_H

#include <liburing.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif

#endif
