/*
 * spindle_profile.h — per-host profiles (module CSpindle): the binary profile loader and
 * encoder, host facts (topology, io_uring features, wake-up latency) and the host rules.
 *
 * A profile is a small little-endian file, memory-mapped read-only and validated completely
 * before any value is used; docs/profile-format.md gives every byte. Errors are negative
 * SP_PROFILE_E* codes plus one line: file, section, key, value, rule and fix.
 * Like spindle.h this header never includes liburing.
 */
#ifndef SPINDLE_PROFILE_H
#define SPINDLE_PROFILE_H

#include "spindle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits -------------------------------------------------------------------------------- */

#define SP_PROFILE_VERSION_MAJOR 1
#define SP_PROFILE_VERSION_MINOR 0
#define SP_MAX_NODES 16          /* NUMA nodes a profile can describe */
#define SP_HOST_STRING_MAX 64    /* bytes of cpu_model / kernel, including the NUL */
#define SP_CPU_WORDS (SP_MAX_CPUS / 64)
#define SP_NODE_NONE 0xFFu       /* cpu_node[] entry of a CPU the host does not have */
#define SP_PROFILE_MSG_MAX 512   /* a message buffer this long always holds the whole line */

/* ---- errors -------------------------------------------------------------------------------- */

typedef enum sp_profile_error {
    SP_PROFILE_OK = 0,
    SP_PROFILE_EIO = -101,        /* open, fstat or mmap failed */
    SP_PROFILE_EPERM = -102,      /* writable by other users (StrictModes) */
    SP_PROFILE_ETRUNCATED = -103, /* shorter than a field it must hold */
    SP_PROFILE_EMAGIC = -104,     /* not a Spindle profile */
    SP_PROFILE_EVERSION = -105,   /* a major version this loader does not read */
    SP_PROFILE_EFEATURE = -106,   /* an incompat feature bit this loader does not know */
    SP_PROFILE_ELENGTH = -107,    /* header or total length inconsistent */
    SP_PROFILE_ECRC = -108,       /* CRC32C mismatch */
    SP_PROFILE_ESECTION = -109,   /* section missing, duplicated, out of order, out of bounds or overlapping */
    SP_PROFILE_ERANGE = -110,     /* a field outside its range */
    SP_PROFILE_ERULE = -111,      /* a cross-field rule broken */
    SP_PROFILE_EHOST = -112,      /* host rule: a CPU is missing or not allowed here */
    SP_PROFILE_EDRIFT = -113,     /* host changed since detect (refused only when strict) */
    SP_PROFILE_ENOMEM = -114,
} sp_profile_error;

/** A static, human name of an SP_PROFILE_E* code ("bad CRC", …). */
const char *sp_profile_strerror(int code);

/* ---- host facts ---------------------------------------------------------------------------- */

/* What `detect` measured about a host; the HOST section of a profile holds one of these, and
 * sp_host_read() fills one for the machine we run on. */
typedef struct sp_host_facts {
    uint64_t fingerprint;      /* sp_host_fingerprint() of the fields below that identify a host */
    uint32_t cpu_span;         /* entries of cpu_node[] in use: highest CPU number + 1 (0 = unknown host) */
    uint32_t numa_nodes;       /* 0..SP_MAX_NODES (0 = unknown host) */
    uint32_t uring_features;   /* SP_FEAT_* found by the probe */
    uint32_t wake_ns;          /* measured one-way wake-up of a sleeping thread (0 = not measured) */
    uint32_t cache_line;       /* bytes */
    uint32_t l2_bytes;         /* per core */
    uint32_t l3_bytes;         /* per L3 */
    char cpu_model[SP_HOST_STRING_MAX];
    char kernel[SP_HOST_STRING_MAX];
    uint8_t distance[SP_MAX_NODES][SP_MAX_NODES]; /* SLIT distances, 10 on the diagonal */
    uint8_t cpu_node[SP_MAX_CPUS];                /* node of each CPU, SP_NODE_NONE where absent */
} sp_host_facts;

/** FNV-1a 64 over the identifying facts: cpu_model, kernel, numa_nodes, distances, cpu_node[]. */
uint64_t sp_host_fingerprint(const sp_host_facts *h);

/** Reads the host under `root` (a sysfs/procfs-shaped tree: "/" in production, a fixture in tests):
 *  sys/devices/system/{cpu,node}, proc/cpuinfo, proc/sys/kernel/osrelease. `allowed` (SP_CPU_WORDS
 *  words, may be NULL) receives the CPUs this process may run on: sched_getaffinity ∩ the cgroup
 *  cpuset when root is "/", else root/proc/self/status Cpus_allowed_list (all CPUs when absent).
 *  Does not probe io_uring nor measure (see below). Returns 0 or SP_PROFILE_EIO with a message. */
int sp_host_read(const char *root, sp_host_facts *out, uint64_t *allowed, char *msg, size_t msg_len);

/** The facts and allowed CPUs of this host, read once per process (root "/", io_uring probed). */
const sp_host_facts *sp_host_current(const uint64_t **allowed);

/** SP_FEAT_* bits io_uring offers on this kernel (0 when io_uring is denied). */
uint32_t sp_host_probe_uring(void);

/** Measures the one-way wake-up latency of a thread sleeping in the kernel (eventfd ping-pong
 *  between two threads, `rounds` round trips). Returns the median in ns, 0 on failure. */
uint32_t sp_host_measure_wake_ns(uint32_t rounds);

/* ---- CRC ----------------------------------------------------------------------------------- */

/** CRC32C (Castagnoli), as iSCSI/ext4: start with crc = 0. */
uint32_t sp_crc32c(uint32_t crc, const void *data, size_t len);

/* ---- the profile --------------------------------------------------------------------------- */

typedef struct sp_profile sp_profile;

typedef struct sp_profile_info {
    uint16_t version_major, version_minor;
    uint32_t section_count;
    uint64_t total_length;
    uint64_t incompat, ro_compat, compat; /* feature masks as found in the file */
    uint32_t read_only;                   /* unknown ro_compat bits: may be loaded, never rewritten */
    uint32_t crc;
} sp_profile_info;

#define SP_PROFILE_ALLOW_WRITABLE 0x1u /* accept a file other users may write (not recommended) */

/** Opens, maps read-only and validates a profile (format, lengths, CRC, sections, ranges and
 *  cross-field rules; host rules are separate). NULL on failure with `*err` and one line in `msg`. */
sp_profile *sp_profile_open(const char *path, unsigned flags, int *err, char *msg, size_t msg_len);

/** The same checks on bytes in memory (copied); `name` stands for the file in messages. */
sp_profile *sp_profile_from_memory(const void *data, size_t size, const char *name, int *err, char *msg,
                                   size_t msg_len);

/** Validates `size` bytes without allocating; fills the outputs (each may be NULL) on success. */
int sp_profile_parse(const void *data, size_t size, const char *name, sp_config *cfg, sp_host_facts *host,
                     sp_profile_info *info, char *msg, size_t msg_len);

void sp_profile_close(sp_profile *p);
const sp_config *sp_profile_config(const sp_profile *p);
const sp_host_facts *sp_profile_host(const sp_profile *p);
const sp_profile_info *sp_profile_get_info(const sp_profile *p);

/** Bytes the encoding of `cfg` with `host` takes. */
size_t sp_profile_encoded_size(const sp_config *cfg, const sp_host_facts *host);

/** Encodes a v1.0 profile into `out` (at least sp_profile_encoded_size bytes, any content: every
 *  byte is written, padding zeroed) and checks it with sp_profile_parse, so nothing that breaks a
 *  host-independent rule is ever produced. `host->fingerprint` is recomputed. Returns the size
 *  written or a negative code with one line in `msg` (`name` stands for the source file). */
long sp_profile_encode(const sp_config *cfg, const sp_host_facts *host, const char *name, void *out, size_t cap,
                       char *msg, size_t msg_len);

#define SP_PROFILE_STRICT 0x1u /* host drift refuses instead of warning */

/** Host rules: every CPU of the profile exists here and is allowed (affinity ∩ cgroup cpuset);
 *  drift of CPU model, NUMA layout or kernel since detect is written as warning lines into `warn`
 *  (newline-separated; may be NULL) and refuses with SP_PROFILE_EDRIFT under SP_PROFILE_STRICT.
 *  Returns the number of warning lines (0 when the host has not drifted) or a negative code with
 *  one line in `msg`. Allocates nothing and formats nothing when the host has not drifted, so a
 *  caller can pass no `warn` buffer first and ask again for the text only when the count is > 0. */
int sp_profile_check_host(const sp_config *cfg, const sp_host_facts *profile_host, const sp_host_facts *here,
                          const uint64_t *allowed, unsigned flags, const char *name, char *warn, size_t warn_len,
                          char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif
#endif /* SPINDLE_PROFILE_H */
