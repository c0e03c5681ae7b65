/*
 * profile_encode.c — writes a version 1.0 profile. The layout is fixed and every byte is
 * written (padding zeroed), so the same configuration and host facts always give the same
 * bytes on any machine: that is what makes `compile(inspect(x)) == x` hold.
 * The result is run through the loader before it is handed back, so the encoder can never
 * produce a file the loader would refuse.
 */
#include <inttypes.h>
#include <stdio.h>

#include "profile.h"

#define ENGINE_OFF (SP_PF_HEADER_LEN + 3 * SP_PF_SECTION_ENTRY)
#define LANES_OFF (ENGINE_OFF + SP_PF_ENGINE_LEN)

static uint32_t lanes_len(const sp_config *cfg) {
    uint32_t n = cfg->lane_count > SP_MAX_LANES ? SP_MAX_LANES : cfg->lane_count;
    return SP_PF_L_RECORDS + n * SP_PF_LANE_RECORD;
}

static uint32_t host_len(const sp_host_facts *h) {
    uint32_t span = h->cpu_span > SP_MAX_CPUS ? SP_MAX_CPUS : h->cpu_span;
    return (SP_PF_HOST_FIXED + span + 7) & ~7u;
}

size_t sp_profile_encoded_size(const sp_config *cfg, const sp_host_facts *host) {
    return (size_t)LANES_OFF + lanes_len(cfg) + host_len(host) + SP_PF_TRAILER;
}

uint64_t sp_host_fingerprint(const sp_host_facts *h) {
    /* FNV-1a: tiny, stable across versions and platforms; this is an identity, not a MAC. */
    uint64_t x = 0xcbf29ce484222325ull;
#define MIX(ptr, n)                                                                                                   \
    do {                                                                                                              \
        const uint8_t *q = (const uint8_t *)(ptr);                                                                    \
        for (size_t i = 0; i < (n); i++) x = (x ^ q[i]) * 0x100000001b3ull;                                           \
    } while (0)
    uint8_t le[8];
    uint32_t span = h->cpu_span > SP_MAX_CPUS ? SP_MAX_CPUS : h->cpu_span;
    MIX(h->cpu_model, strnlen(h->cpu_model, SP_HOST_STRING_MAX));
    MIX("", 1);
    MIX(h->kernel, strnlen(h->kernel, SP_HOST_STRING_MAX));
    MIX("", 1);
    sp_pf_put32(le, h->numa_nodes);
    sp_pf_put32(le + 4, span);
    MIX(le, 8);
    MIX(h->distance, sizeof h->distance);
    MIX(h->cpu_node, span);
#undef MIX
    return x;
}

static void put_string(uint8_t *p, const char *s, size_t cap) {
    size_t n = strnlen(s, cap - 1);
    memcpy(p, s, n); /* the rest stays zero: NUL and padding */
}

long sp_profile_encode(const sp_config *cfg, const sp_host_facts *host, const char *name, void *out, size_t cap,
                       char *msg, size_t msg_len) {
    sp_pf_ctx c = {.name = name ? name : "profile", .msg = msg, .len = msg_len};
    if (cfg->lane_count > SP_MAX_LANES || cfg->lane_count == 0)
        return sp_pf_failf(&c, SP_PROFILE_ERANGE, "LANES", "lanes", "1...8 lanes", "define between 1 and 8 [[lanes]]",
                           "%u lanes", cfg->lane_count);
    if (cfg->worker_count > SP_MAX_WORKERS || cfg->worker_count == 0)
        return sp_pf_failf(&c, SP_PROFILE_ERANGE, "ENGINE", "engine.cpus", "1...256 CPUs",
                           "list between 1 and 256 CPUs", "%u CPUs", cfg->worker_count);
    if (host->cpu_span > SP_MAX_CPUS)
        return sp_pf_failf(&c, SP_PROFILE_ERANGE, "HOST", "host.cpu_span", "0...4096", "re-run detect", "%u",
                           host->cpu_span);
    size_t size = sp_profile_encoded_size(cfg, host);
    if (cap < size)
        return sp_pf_failf(&c, SP_PROFILE_ENOMEM, "file", "buffer", "room for the whole profile", "pass a larger buffer",
                           "%zu bytes (need %zu)", cap, size);
    uint8_t *b = out;
    memset(b, 0, size);
    /* header */
    memcpy(b + SP_PF_H_MAGIC, SP_PF_MAGIC, 8);
    sp_pf_put16(b + SP_PF_H_MAJOR, SP_PROFILE_VERSION_MAJOR);
    sp_pf_put16(b + SP_PF_H_MINOR, SP_PROFILE_VERSION_MINOR);
    sp_pf_put32(b + SP_PF_H_HEADER_LEN, SP_PF_HEADER_LEN);
    sp_pf_put64(b + SP_PF_H_TOTAL_LEN, size);
    sp_pf_put32(b + SP_PF_H_SECTION_COUNT, 3);
    /* section table */
    const uint32_t tags[3] = {SP_PF_TAG_ENGINE, SP_PF_TAG_LANES, SP_PF_TAG_HOST};
    const uint32_t offs[3] = {ENGINE_OFF, LANES_OFF, LANES_OFF + lanes_len(cfg)};
    const uint32_t lens[3] = {SP_PF_ENGINE_LEN, lanes_len(cfg), host_len(host)};
    for (int i = 0; i < 3; i++) {
        uint8_t *e = b + SP_PF_HEADER_LEN + i * SP_PF_SECTION_ENTRY;
        sp_pf_put32(e + SP_PF_S_TAG, tags[i]);
        sp_pf_put32(e + SP_PF_S_OFFSET, offs[i]);
        sp_pf_put32(e + SP_PF_S_LENGTH, lens[i]);
    }
    /* ENGINE */
    uint8_t *e = b + offs[0];
    sp_pf_put32(e + SP_PF_E_WORKER_COUNT, cfg->worker_count);
    sp_pf_put32(e + SP_PF_E_NUMA_POLICY, cfg->numa_policy);
    sp_pf_put64(e + SP_PF_E_SPIN_NS, cfg->spin_ns);
    sp_pf_put32(e + SP_PF_E_URING_ENTRIES, cfg->uring_entries);
    sp_pf_put32(e + SP_PF_E_URING_FLAGS, cfg->uring_flags);
    sp_pf_put32(e + SP_PF_E_BACKEND, cfg->backend);
    sp_pf_put64(e + SP_PF_E_EAGER_RING_BYTES, cfg->eager_ring_bytes);
    sp_pf_put64(e + SP_PF_E_SLOW_BATCH_NS, cfg->slow_handler_ns);
    for (uint32_t w = 0; w < cfg->worker_count; w++) {
        uint32_t cpu = cfg->cpus[w];
        /* The bitmap keeps CPUs in ascending order: a list in any other order would not survive decoding. */
        if (cpu >= SP_MAX_CPUS || (w > 0 && cpu <= cfg->cpus[w - 1]))
            return sp_pf_failf(&c, SP_PROFILE_ERULE, "ENGINE", "engine.cpus",
                               "ascending, distinct CPU numbers below 4096 (worker i runs on the i-th)",
                               "sort the list and remove duplicates", "CPU %u at index %u", cpu, w);
        uint8_t *word = e + SP_PF_E_CPU_BITMAP + 8 * (cpu / 64);
        sp_pf_put64(word, sp_pf_u64(word) | 1ull << (cpu % 64));
    }
    /* LANES */
    uint8_t *l = b + offs[1];
    sp_pf_put32(l + SP_PF_L_COUNT, cfg->lane_count);
    sp_pf_put32(l + SP_PF_L_RECORD_SIZE, SP_PF_LANE_RECORD);
    for (uint32_t i = 0; i < cfg->lane_count; i++) {
        const sp_lane_config *lc = &cfg->lanes[i];
        uint8_t *r = l + SP_PF_L_RECORDS + i * SP_PF_LANE_RECORD;
        put_string(r + SP_PF_LR_NAME, lc->name, SP_LANE_NAME_MAX);
        sp_pf_put32(r + SP_PF_LR_POLICY, lc->policy);
        /* Only the field the policy uses is written, so a stale budget/weight never reaches the file. */
        sp_pf_put32(r + SP_PF_LR_BUDGET, lc->policy == SP_POLICY_STRICT ? lc->budget : 0);
        sp_pf_put32(r + SP_PF_LR_WEIGHT, lc->policy == SP_POLICY_STRICT ? 0 : lc->weight);
        sp_pf_put32(r + SP_PF_LR_CAPACITY, lc->capacity);
        sp_pf_put32(r + SP_PF_LR_ON_FULL, lc->on_full);
        sp_pf_put32(r + SP_PF_LR_MAX_BATCH, lc->max_batch);
        sp_pf_put64(r + SP_PF_LR_BLOCK_TIMEOUT_NS, lc->block_timeout_ns);
    }
    /* HOST */
    uint8_t *h = b + offs[2];
    sp_pf_put64(h + SP_PF_HO_FINGERPRINT, sp_host_fingerprint(host));
    sp_pf_put32(h + SP_PF_HO_CPU_SPAN, host->cpu_span);
    sp_pf_put32(h + SP_PF_HO_NUMA_NODES, host->numa_nodes);
    sp_pf_put32(h + SP_PF_HO_URING_FEATURES, host->uring_features);
    sp_pf_put32(h + SP_PF_HO_WAKE_NS, host->wake_ns);
    sp_pf_put32(h + SP_PF_HO_CACHE_LINE, host->cache_line);
    sp_pf_put32(h + SP_PF_HO_L2_BYTES, host->l2_bytes);
    sp_pf_put32(h + SP_PF_HO_L3_BYTES, host->l3_bytes);
    sp_pf_put32(h + SP_PF_HO_CPU_NODE_OFFSET, SP_PF_HOST_FIXED);
    put_string(h + SP_PF_HO_CPU_MODEL, host->cpu_model, SP_HOST_STRING_MAX);
    put_string(h + SP_PF_HO_KERNEL, host->kernel, SP_HOST_STRING_MAX);
    memcpy(h + SP_PF_HO_DISTANCE, host->distance, sizeof host->distance);
    memcpy(h + SP_PF_HOST_FIXED, host->cpu_node, host->cpu_span);
    /* trailer */
    sp_pf_put32(b + size - SP_PF_TRAILER, sp_crc32c(0, b, size - SP_PF_TRAILER));
    int rc = sp_profile_parse(b, size, c.name, NULL, NULL, NULL, msg, msg_len);
    return rc ? rc : (long)size;
}
