/*
 * profile_sections.c — the fields of ENGINE, LANES and HOST, each checked against its range,
 * then the rules that tie fields and sections together. Keys in messages are the TOML keys an
 * operator edits (engine.spin_ns, lanes[1].weight, host.kernel), so a refusal points at the
 * line to change.
 */
#include <inttypes.h>
#include <stdio.h>

#include "profile.h"

#define fail sp_pf_failf
#define RC SP_PF_RECOMPILE

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static int check_length(sp_pf_ctx *c, const char *section, uint32_t len, uint32_t v10) {
    /* v1.0 files have exactly the v1.0 lengths; later minors may only append. */
    if (len < v10 || (c->minor == 0 && len != v10))
        return fail(c, SP_PROFILE_ESECTION, section, "length",
                    c->minor == 0 ? "exactly the v1.0 length" : "at least the v1.0 length", RC, "%u (v1.0: %u)", len,
                    v10);
    return 0;
}

int sp_pf_parse_engine(sp_pf_ctx *c, sp_pf_section s, sp_config *cfg) {
    int rc;
    if ((rc = check_length(c, "ENGINE", s.length, SP_PF_ENGINE_LEN))) return rc;
    const uint8_t *e = c->b + s.offset;
    uint32_t workers = sp_pf_u32(e + SP_PF_E_WORKER_COUNT), numa = sp_pf_u32(e + SP_PF_E_NUMA_POLICY);
    uint64_t spin = sp_pf_u64(e + SP_PF_E_SPIN_NS);
    uint32_t entries = sp_pf_u32(e + SP_PF_E_URING_ENTRIES), uflags = sp_pf_u32(e + SP_PF_E_URING_FLAGS);
    uint32_t backend = sp_pf_u32(e + SP_PF_E_BACKEND);
    uint64_t eager = sp_pf_u64(e + SP_PF_E_EAGER_RING_BYTES), slow = sp_pf_u64(e + SP_PF_E_SLOW_BATCH_NS);
    if (workers < 1 || workers > SP_MAX_WORKERS)
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.worker_count", "1...256 workers",
                    "list between 1 and 256 CPUs in engine.cpus", "%u", workers);
    if (numa > SP_NUMA_NONE)
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.numa_policy", "0 (local), 1 (interleave) or 2 (none)",
                    "use numa_policy = \"local\"", "%u", numa);
    if (spin % 1000 || slow % 1000)
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", spin % 1000 ? "engine.spin_us" : "engine.slow_batch_us",
                    "whole microseconds", SP_PF_RECOMPILE, "%" PRIu64 " ns", spin % 1000 ? spin : slow);
    if (spin > 1000000000ull)
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.spin_us", "0...1000000 (at most 1 s)",
                    "use the spin time `detect --measure` derives, e.g. 50", "%" PRIu64, spin / 1000);
    if (!is_pow2(entries) || entries < 8 || entries > 32768)
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.uring_entries", "a power of two in 8...32768",
                    "use 256", "%u", entries);
    if (uflags & ~(uint32_t)(SP_URING_WANT_DEFER_TASKRUN | SP_URING_WANT_COOP_TASKRUN))
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.uring_flags",
                    "only bits 0x1 (defer_taskrun) and 0x2 (coop_taskrun)", RC, "0x%x", uflags);
    if (backend > SP_BACKEND_EPOLL)
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.backend", "0 (auto), 1 (io_uring) or 2 (epoll)",
                    "use backend = \"auto\"", "%u", backend);
    if (sp_pf_u32(e + SP_PF_E_RESERVED))
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "reserved", "zero", RC, "0x%x", sp_pf_u32(e + SP_PF_E_RESERVED));
    if (eager > (1ull << 40))
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.eager_ring_bytes", "0...1099511627776 (1 TiB)",
                    "use 67108864 (64 MiB)", "%" PRIu64, eager);
    if (slow != 0 && (slow < 1000 || slow > 60000000000ull))
        return fail(c, SP_PROFILE_ERANGE, "ENGINE", "engine.slow_batch_us", "0 (off) or 1...60000000 (60 s)",
                    "use 10000 (10 ms)", "%" PRIu64, slow / 1000);
    uint32_t n = 0;
    for (uint32_t w = 0; w < SP_CPU_WORDS; w++) {
        uint64_t word = sp_pf_u64(e + SP_PF_E_CPU_BITMAP + 8 * w);
        while (word) {
            uint32_t cpu = w * 64 + (uint32_t)__builtin_ctzll(word);
            word &= word - 1;
            if (n < SP_MAX_WORKERS) cfg->cpus[n] = (uint16_t)cpu;
            n++;
        }
    }
    if (n != workers)
        return fail(c, SP_PROFILE_ERULE, "ENGINE", "engine.worker_count", "equals the number of CPUs in engine.cpus",
                    RC, "%u (engine.cpus has %u CPUs)", workers, n);
    cfg->worker_count = workers;
    cfg->numa_policy = numa;
    cfg->spin_ns = spin;
    cfg->uring_entries = entries;
    cfg->uring_flags = uflags;
    cfg->backend = backend;
    cfg->eager_ring_bytes = eager;
    cfg->slow_handler_ns = slow;
    return 0;
}

/* A lane name is an identifier an operator types (and a TOML key path component, hence no '.'):
 * 1...31 bytes of [A-Za-z0-9_-], zero after the NUL. */
static int check_name(sp_pf_ctx *c, const uint8_t *p, const char *key, char out[SP_LANE_NAME_MAX]) {
    size_t len = 0;
    while (len < SP_LANE_NAME_MAX && p[len]) len++;
    if (len == 0 || len == SP_LANE_NAME_MAX)
        return fail(c, SP_PROFILE_ERANGE, "LANES", key, "1...31 bytes, NUL-terminated", "give the lane a short name",
                    "%s", len ? "(not terminated)" : "\"\"");
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = p[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                 ch == '-';
        if (!ok)
            return fail(c, SP_PROFILE_ERANGE, "LANES", key, "letters, digits, '_' and '-' only",
                        "rename the lane", "byte %zu = 0x%02x", i, ch);
    }
    for (size_t i = len; i < SP_LANE_NAME_MAX; i++)
        if (p[i]) return fail(c, SP_PROFILE_ERANGE, "LANES", key, "zero bytes after the NUL", RC, "byte %zu = 0x%02x", i, p[i]);
    memcpy(out, p, SP_LANE_NAME_MAX);
    return 0;
}

int sp_pf_parse_lanes(sp_pf_ctx *c, sp_pf_section s, sp_config *cfg) {
    if (s.length < SP_PF_L_RECORDS)
        return fail(c, SP_PROFILE_ESECTION, "LANES", "length", "at least 8 bytes (count and record size)", RC, "%u",
                    s.length);
    const uint8_t *l = c->b + s.offset;
    uint32_t count = sp_pf_u32(l + SP_PF_L_COUNT), rsize = sp_pf_u32(l + SP_PF_L_RECORD_SIZE);
    if (count < 1 || count > SP_MAX_LANES)
        return fail(c, SP_PROFILE_ERANGE, "LANES", "lanes", "1...8 lanes", "define between 1 and 8 [[lanes]]",
                    "%u lanes", count);
    if (rsize < SP_PF_LANE_RECORD || rsize % 8 || (c->minor == 0 && rsize != SP_PF_LANE_RECORD))
        return fail(c, SP_PROFILE_ESECTION, "LANES", "record_size",
                    c->minor == 0 ? "64 in v1.0" : "a multiple of 8, at least 64", RC, "%u", rsize);
    int rc;
    if ((rc = check_length(c, "LANES", s.length, SP_PF_L_RECORDS + count * rsize))) return rc;
    int seen_weighted = -1;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = l + SP_PF_L_RECORDS + (uint64_t)i * rsize;
        sp_lane_config *lc = &cfg->lanes[i];
        char key[48];
#define KEY(field) (snprintf(key, sizeof key, "lanes.%s." field, lc->name), key)
        snprintf(key, sizeof key, "lanes[%u].name", i);
        if ((rc = check_name(c, r + SP_PF_LR_NAME, key, lc->name))) return rc;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(cfg->lanes[j].name, lc->name) == 0)
                return fail(c, SP_PROFILE_ERULE, "LANES", KEY("name"), "lane names are unique",
                            "rename one of the lanes", "\"%s\" (also lanes[%u])", lc->name, j);
        uint32_t policy = sp_pf_u32(r + SP_PF_LR_POLICY), budget = sp_pf_u32(r + SP_PF_LR_BUDGET);
        uint32_t weight = sp_pf_u32(r + SP_PF_LR_WEIGHT), cap = sp_pf_u32(r + SP_PF_LR_CAPACITY);
        uint32_t on_full = sp_pf_u32(r + SP_PF_LR_ON_FULL), batch = sp_pf_u32(r + SP_PF_LR_MAX_BATCH);
        uint64_t timeout = sp_pf_u64(r + SP_PF_LR_BLOCK_TIMEOUT_NS);
        if (policy > SP_POLICY_WEIGHTED)
            return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("policy"), "0 (strict) or 1 (weighted)",
                        "use policy = \"weighted\"", "%u", policy);
        if (policy == SP_POLICY_STRICT) {
            if (budget < 1 || budget > 65536)
                return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("budget"), "1...65536 events per round",
                            "use budget = 64", "%u", budget);
            if (weight)
                return fail(c, SP_PROFILE_ERULE, "LANES", KEY("weight"), "a strict lane has no weight",
                            "remove weight or set policy = \"weighted\"", "%u", weight);
            if (seen_weighted >= 0)
                return fail(c, SP_PROFILE_ERULE, "LANES", KEY("policy"),
                            "strict lanes come before weighted lanes (lane 0 is highest)",
                            "move this lane above the weighted ones", "strict (after weighted lanes[%d])",
                            seen_weighted);
        } else {
            if (weight < 1 || weight > 1024)
                return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("weight"), "1...1024", "use weight = 1 or more", "%u",
                            weight);
            if (budget)
                return fail(c, SP_PROFILE_ERULE, "LANES", KEY("budget"), "a weighted lane has no budget",
                            "remove budget or set policy = \"strict\"", "%u", budget);
            if (seen_weighted < 0) seen_weighted = (int)i;
        }
        if (!is_pow2(cap) || cap < 64 || cap > (1u << 22))
            return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("capacity"), "a power of two in 64...4194304",
                        "use capacity = 4096", "%u", cap);
        if (on_full > SP_ON_FULL_BLOCK)
            return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("on_full"), "0 (reject), 1 (drop) or 2 (block)",
                        "use on_full = \"reject\"", "%u", on_full);
        if (batch < 1 || batch > 1024)
            return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("max_batch"), "1...1024", "use max_batch = 32", "%u", batch);
        if (batch > cap)
            return fail(c, SP_PROFILE_ERULE, "LANES", KEY("max_batch"), "at most the lane's capacity",
                        "lower max_batch or raise capacity", "%u (capacity %u)", batch, cap);
        if (timeout % 1000)
            return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("block_timeout_us"), "whole microseconds", SP_PF_RECOMPILE,
                        "%" PRIu64 " ns", timeout);
        if (on_full != SP_ON_FULL_BLOCK && timeout)
            return fail(c, SP_PROFILE_ERULE, "LANES", KEY("block_timeout_us"), "only a block lane has a timeout",
                        "remove block_timeout_us or set on_full = \"block\"", "%" PRIu64, timeout / 1000);
        if (timeout > 3600000000000ull)
            return fail(c, SP_PROFILE_ERANGE, "LANES", KEY("block_timeout_us"), "0 (until shutdown) or 1...3600000000 (1 h)",
                        "use a shorter timeout", "%" PRIu64, timeout / 1000);
#undef KEY
        lc->policy = policy;
        lc->budget = budget;
        lc->weight = weight;
        lc->capacity = cap;
        lc->on_full = on_full;
        lc->max_batch = batch;
        lc->block_timeout_ns = timeout;
    }
    cfg->lane_count = count;
    return 0;
}

static int check_string(sp_pf_ctx *c, const uint8_t *p, const char *key, char out[SP_HOST_STRING_MAX]) {
    size_t len = 0;
    while (len < SP_HOST_STRING_MAX && p[len]) len++;
    if (len == SP_HOST_STRING_MAX)
        return fail(c, SP_PROFILE_ERANGE, "HOST", key, "at most 63 bytes, NUL-terminated", RC, "(not terminated)");
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return fail(c, SP_PROFILE_ERANGE, "HOST", key, "printable ASCII", "re-run `spindle profile detect`",
                        "byte %zu = 0x%02x", i, p[i]);
    for (size_t i = len; i < SP_HOST_STRING_MAX; i++)
        if (p[i]) return fail(c, SP_PROFILE_ERANGE, "HOST", key, "zero bytes after the NUL", RC, "byte %zu = 0x%02x", i, p[i]);
    memcpy(out, p, SP_HOST_STRING_MAX);
    return 0;
}

int sp_pf_parse_host(sp_pf_ctx *c, sp_pf_section s, sp_host_facts *h) {
    if (s.length < SP_PF_HOST_FIXED)
        return fail(c, SP_PROFILE_ESECTION, "HOST", "length", "at least 424 bytes", RC, "%u", s.length);
    const uint8_t *p = c->b + s.offset;
    memset(h, 0, offsetof(sp_host_facts, cpu_node));
    memset(h->cpu_node, SP_NODE_NONE, sizeof h->cpu_node);
    uint32_t span = sp_pf_u32(p + SP_PF_HO_CPU_SPAN), nodes = sp_pf_u32(p + SP_PF_HO_NUMA_NODES);
    uint32_t table = sp_pf_u32(p + SP_PF_HO_CPU_NODE_OFFSET);
    if (span > SP_MAX_CPUS)
        return fail(c, SP_PROFILE_ERANGE, "HOST", "host.cpu_span", "0...4096", "re-run `spindle profile detect`", "%u",
                    span);
    if (nodes > SP_MAX_NODES)
        return fail(c, SP_PROFILE_ERANGE, "HOST", "host.numa_nodes", "0...16 nodes", "re-run `spindle profile detect`",
                    "%u", nodes);
    if ((nodes == 0) != (span == 0))
        return fail(c, SP_PROFILE_ERULE, "HOST", "host.numa_node_cpus",
                    "an unknown host has neither nodes nor CPUs; a known one has both", "re-run `spindle profile detect`",
                    "%u nodes, %u CPUs", nodes, span);
    if (table < SP_PF_HOST_FIXED || table % 8 || (c->minor == 0 && table != SP_PF_HOST_FIXED))
        return fail(c, SP_PROFILE_ESECTION, "HOST", "cpu_node_offset", "424 in v1.0, a multiple of 8 and at least 424 later",
                    RC, "%u", table);
    uint64_t need = ((uint64_t)table + span + 7) & ~7ull;
    if ((uint64_t)table + span > s.length || (c->minor == 0 && s.length != need))
        return fail(c, SP_PROFILE_ESECTION, "HOST", "length", "holds cpu_node[cpu_span], padded to 8 bytes", RC,
                    "%u (needs %" PRIu64 ")", s.length, need);
    h->fingerprint = sp_pf_u64(p + SP_PF_HO_FINGERPRINT);
    h->cpu_span = span;
    h->numa_nodes = nodes;
    h->uring_features = sp_pf_u32(p + SP_PF_HO_URING_FEATURES);
    h->wake_ns = sp_pf_u32(p + SP_PF_HO_WAKE_NS);
    h->cache_line = sp_pf_u32(p + SP_PF_HO_CACHE_LINE);
    h->l2_bytes = sp_pf_u32(p + SP_PF_HO_L2_BYTES);
    h->l3_bytes = sp_pf_u32(p + SP_PF_HO_L3_BYTES);
    if (h->uring_features & ~0xFu)
        return fail(c, SP_PROFILE_ERANGE, "HOST", "host.uring_features", "only SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN, MSG_RING",
                    "re-run `spindle profile detect`", "0x%x", h->uring_features);
    if (h->wake_ns > 1000000000u)
        return fail(c, SP_PROFILE_ERANGE, "HOST", "host.wake_ns", "0...1000000000 (1 s)", "re-run `detect --measure`",
                    "%u", h->wake_ns);
    if (h->cache_line && (!is_pow2(h->cache_line) || h->cache_line > 4096))
        return fail(c, SP_PROFILE_ERANGE, "HOST", "host.cache_line", "0 (unknown) or a power of two up to 4096",
                    "use 64", "%u", h->cache_line);
    int rc;
    if ((rc = check_string(c, p + SP_PF_HO_CPU_MODEL, "host.cpu_model", h->cpu_model)) ||
        (rc = check_string(c, p + SP_PF_HO_KERNEL, "host.kernel", h->kernel)))
        return rc;
    for (uint32_t i = 0; i < SP_MAX_NODES; i++)
        for (uint32_t j = 0; j < SP_MAX_NODES; j++) {
            uint8_t d = p[SP_PF_HO_DISTANCE + i * SP_MAX_NODES + j];
            int ok = (i >= nodes || j >= nodes) ? d == 0 : (i == j ? d == 10 : d > 10 && d < 255);
            if (!ok) {
                char key[48];
                snprintf(key, sizeof key, "host.numa_distances[%u][%u]", i, j);
                return fail(c, SP_PROFILE_ERANGE, "HOST", key,
                            "10 on the diagonal, 11...254 between nodes, 0 beyond numa_nodes",
                            "copy the distances from /sys/devices/system/node/node*/distance", "%u", d);
            }
            h->distance[i][j] = d;
        }
    for (uint32_t cpu = 0; cpu < span; cpu++) {
        uint8_t n = p[table + cpu];
        if (n != SP_NODE_NONE && n >= nodes)
            return fail(c, SP_PROFILE_ERANGE, "HOST", "host.numa_node_cpus", "each CPU's node is below numa_nodes",
                        "re-run `spindle profile detect`", "CPU %u on node %u (%u nodes)", cpu, n, nodes);
        h->cpu_node[cpu] = n;
    }
    if (span && p[table + span - 1] == SP_NODE_NONE)
        return fail(c, SP_PROFILE_ERULE, "HOST", "host.cpu_span", "the highest CPU + 1 (the last CPU exists)", RC,
                    "%u", span);
    for (uint64_t i = (uint64_t)table + span; i < s.length; i++)
        if (c->minor == 0 && p[i])
            return fail(c, SP_PROFILE_ERANGE, "HOST", "padding", "zero", RC, "offset %" PRIu64 " = 0x%02x", i, p[i]);
    uint64_t fp = sp_host_fingerprint(h);
    if (fp != h->fingerprint)
        return fail(c, SP_PROFILE_ERULE, "HOST", "host.fingerprint", "the FNV-1a hash of cpu_model, kernel and NUMA layout",
                    RC, "0x%016" PRIx64 " (computed 0x%016" PRIx64 ")", h->fingerprint, fp);
    return 0;
}

int sp_pf_cross_check(sp_pf_ctx *c, const sp_config *cfg, const sp_host_facts *h) {
    if (h->cpu_span == 0) return 0; /* a hand-written profile without host facts: validate warns */
    for (uint32_t w = 0; w < cfg->worker_count; w++) {
        uint32_t cpu = cfg->cpus[w];
        if (cpu >= h->cpu_span || h->cpu_node[cpu] == SP_NODE_NONE)
            return fail(c, SP_PROFILE_ERULE, "ENGINE", "engine.cpus",
                        "every CPU exists on the host described in [host]",
                        "remove it from engine.cpus or re-run detect on the target host", "CPU %u", cpu);
    }
    return 0;
}
