/*
 * A malloc interposer that only counts. Each call forwards to glibc's __libc_* entry points, so
 * there is no dlsym bootstrap problem. The process-wide count is one relaxed atomic add per
 * allocation: contended only when allocations happen, which on Spindle's hot path they must not.
 */
#include "malloc_counter.h"
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SPMC_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SPMC_SANITIZED 1
#endif

#ifdef SPMC_SANITIZED
/* Sanitizers own malloc: no interposing, no counts (spmc_available() says so). */
uint64_t spmc_total(void) { return 0; }
uint64_t spmc_thread(void) { return 0; }
int spmc_active(void) { return 0; }
int spmc_available(void) { return 0; }
#else

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static uint64_t spmc_global;
static __thread uint64_t spmc_local;
static int spmc_seen;

static inline void spmc_count(void) {
    __atomic_fetch_add(&spmc_global, 1, __ATOMIC_RELAXED);
    spmc_local++;
    spmc_seen = 1;
}

void *malloc(size_t n) { spmc_count(); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { spmc_count(); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { spmc_count(); return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t a, size_t n) { spmc_count(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { spmc_count(); return __libc_memalign(a, n); }
void *valloc(size_t n) { spmc_count(); return __libc_memalign(4096, n); }
int posix_memalign(void **out, size_t a, size_t n) {
    spmc_count();
    void *p = __libc_memalign(a, n);
    if (p == NULL) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

uint64_t spmc_total(void) { return __atomic_load_n(&spmc_global, __ATOMIC_RELAXED); }
uint64_t spmc_thread(void) { return spmc_local; }
int spmc_active(void) { return spmc_seen; }
int spmc_available(void) { return 1; }
#endif
