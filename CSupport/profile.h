/*
 * profile.h — the on-disk layout of a version 1 profile (internal to CSupport).
 *
 * Offsets are written out as constants rather than packed structs so that nothing depends on
 * the compiler's layout and every read goes through a bounds-checked little-endian accessor.
 * docs/profile-format.md is the same table in prose; change both together, append-only.
 */
#ifndef SP_PROFILE_INTERNAL_H
#define SP_PROFILE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "include/spindle_profile.h"

/* ---- header (64 bytes at offset 0) --------------------------------------------------------- */
#define SP_PF_MAGIC "SPNDLPRF"
#define SP_PF_H_MAGIC 0          /* 8 bytes */
#define SP_PF_H_MAJOR 8          /* u16 */
#define SP_PF_H_MINOR 10         /* u16 */
#define SP_PF_H_HEADER_LEN 12    /* u32: >= 64, multiple of 8; bytes past 64 belong to newer minors */
#define SP_PF_H_TOTAL_LEN 16     /* u64: the file's size */
#define SP_PF_H_INCOMPAT 24      /* u64 */
#define SP_PF_H_RO_COMPAT 32     /* u64 */
#define SP_PF_H_COMPAT 40        /* u64 */
#define SP_PF_H_SECTION_COUNT 48 /* u32: 3..16 */
#define SP_PF_H_RESERVED0 52     /* u32, zero */
#define SP_PF_H_RESERVED1 56     /* u64, zero */
#define SP_PF_HEADER_LEN 64

/* Feature bits this loader knows (none yet in v1.0: every set bit is unknown). */
#define SP_PF_INCOMPAT_KNOWN 0x0ull
#define SP_PF_RO_COMPAT_KNOWN 0x0ull
#define SP_PF_COMPAT_KNOWN 0x0ull

/* ---- section table (16 bytes per entry, right after the header) ---------------------------- */
#define SP_PF_S_TAG 0    /* u32, four ASCII bytes */
#define SP_PF_S_FLAGS 4  /* u32, zero */
#define SP_PF_S_OFFSET 8 /* u32, multiple of 8 */
#define SP_PF_S_LENGTH 12 /* u32, multiple of 8 */
#define SP_PF_SECTION_ENTRY 16
#define SP_PF_MAX_SECTIONS 16

#define SP_PF_TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define SP_PF_TAG_ENGINE SP_PF_TAG('E', 'N', 'G', 'N')
#define SP_PF_TAG_LANES SP_PF_TAG('L', 'A', 'N', 'E')
#define SP_PF_TAG_HOST SP_PF_TAG('H', 'O', 'S', 'T')

/* ---- ENGINE (560 bytes in v1.0) ------------------------------------------------------------ */
#define SP_PF_E_WORKER_COUNT 0 /* u32: = popcount(cpu bitmap) */
#define SP_PF_E_NUMA_POLICY 4  /* u32: sp_numa_policy */
#define SP_PF_E_SPIN_NS 8      /* u64: 0..1e9 */
#define SP_PF_E_URING_ENTRIES 16 /* u32: power of two 8..32768 */
#define SP_PF_E_URING_FLAGS 20 /* u32: SP_URING_WANT_* */
#define SP_PF_E_BACKEND 24     /* u32: sp_backend */
#define SP_PF_E_RESERVED 28    /* u32, zero */
#define SP_PF_E_EAGER_RING_BYTES 32 /* u64: <= 1 TiB */
#define SP_PF_E_SLOW_BATCH_NS 40 /* u64: 0 (off) or 1 µs..60 s */
#define SP_PF_E_CPU_BITMAP 48  /* u64[64]: bit c of word c/64 set = a worker on CPU c */
#define SP_PF_ENGINE_LEN (48 + 8 * SP_CPU_WORDS)

/* ---- LANES (8 + lane_count * record_size) -------------------------------------------------- */
#define SP_PF_L_COUNT 0       /* u32: 1..8 */
#define SP_PF_L_RECORD_SIZE 4 /* u32: >= 64, multiple of 8 (newer minors append fields) */
#define SP_PF_L_RECORDS 8
/* one lane record */
#define SP_PF_LR_NAME 0        /* char[32], NUL-terminated, zero after the NUL */
#define SP_PF_LR_POLICY 32     /* u32 */
#define SP_PF_LR_BUDGET 36     /* u32: strict 1..65536, weighted 0 */
#define SP_PF_LR_WEIGHT 40     /* u32: weighted 1..1024, strict 0 */
#define SP_PF_LR_CAPACITY 44   /* u32: power of two 64..1<<22 */
#define SP_PF_LR_ON_FULL 48    /* u32 */
#define SP_PF_LR_MAX_BATCH 52  /* u32: 1..1024, <= capacity */
#define SP_PF_LR_BLOCK_TIMEOUT_NS 56 /* u64: block lanes only, <= 1 hour */
#define SP_PF_LANE_RECORD 64

/* ---- HOST (424 bytes + cpu_node table in v1.0) --------------------------------------------- */
#define SP_PF_HO_FINGERPRINT 0 /* u64 */
#define SP_PF_HO_CPU_SPAN 8    /* u32: 0..4096 */
#define SP_PF_HO_NUMA_NODES 12 /* u32: 0..16 */
#define SP_PF_HO_URING_FEATURES 16 /* u32 */
#define SP_PF_HO_WAKE_NS 20    /* u32 */
#define SP_PF_HO_CACHE_LINE 24 /* u32 */
#define SP_PF_HO_L2_BYTES 28   /* u32 */
#define SP_PF_HO_L3_BYTES 32   /* u32 */
#define SP_PF_HO_CPU_NODE_OFFSET 36 /* u32: where cpu_node[] starts in the section (424 in v1.0) */
#define SP_PF_HO_CPU_MODEL 40  /* char[64] */
#define SP_PF_HO_KERNEL 104    /* char[64] */
#define SP_PF_HO_DISTANCE 168  /* u8[16][16] */
#define SP_PF_HOST_FIXED 424

#define SP_PF_TRAILER 8 /* u32 CRC32C of every byte before it, u32 zero */

#define SP_PF_MAX_SIZE (1u << 20) /* far above any v1 profile: refuse before mapping anything silly */

static inline uint16_t sp_pf_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t sp_pf_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t sp_pf_u64(const uint8_t *p) { return (uint64_t)sp_pf_u32(p) | (uint64_t)sp_pf_u32(p + 4) << 32; }
static inline void sp_pf_put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void sp_pf_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void sp_pf_put64(uint8_t *p, uint64_t v) {
    sp_pf_put32(p, (uint32_t)v);
    sp_pf_put32(p + 4, (uint32_t)(v >> 32));
}

/* Formats "<name>: <SECTION> <key> = <value>: rule <rule>; fix: <fix>" into msg; returns code. */
int sp_pf_fail(char *msg, size_t len, int code, const char *name, const char *section, const char *key,
               const char *value, const char *rule, const char *fix);

/* The state of one parse: the bytes, the file's name for messages, the message buffer. */
typedef struct sp_pf_ctx {
    const uint8_t *b;
    uint64_t size;
    const char *name;
    char *msg;
    size_t len;
    uint16_t minor; /* version_minor: v1.0 files must have exact v1.0 lengths */
} sp_pf_ctx;

typedef struct sp_pf_section {
    uint32_t offset, length;
} sp_pf_section;

/* sp_pf_fail with the value formatted by printf. */
__attribute__((format(printf, 7, 8))) int sp_pf_failf(sp_pf_ctx *c, int code, const char *section, const char *key,
                                                      const char *rule, const char *fix, const char *vfmt, ...);

#define SP_PF_RECOMPILE "recompile it with `spindle profile compile`"

/* profile_sections.c: each section's fields, then the rules between sections. */
int sp_pf_parse_engine(sp_pf_ctx *c, sp_pf_section s, sp_config *cfg);
int sp_pf_parse_lanes(sp_pf_ctx *c, sp_pf_section s, sp_config *cfg);
int sp_pf_parse_host(sp_pf_ctx *c, sp_pf_section s, sp_host_facts *host);
int sp_pf_cross_check(sp_pf_ctx *c, const sp_config *cfg, const sp_host_facts *host);

#endif
