/*
 * config.c — the embedded default and every rule an sp_config must satisfy.
 *
 * Messages are one line: `key = value: rule; fix: what to do`. The profile loader prefixes the
 * file and section; Swift's Engine.Configuration.validate() passes them through.
 */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spindle.h"

static void sp_lane_default(sp_lane_config *l, const char *name, uint32_t policy, uint32_t budget_or_weight) {
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    l->policy = policy;
    if (policy == SP_POLICY_STRICT)
        l->budget = budget_or_weight;
    else
        l->weight = budget_or_weight;
    l->capacity = 4096;
    l->on_full = SP_ON_FULL_REJECT;
    l->max_batch = 32;
}

void sp_config_host_default(sp_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cpu_set_t set;
    CPU_ZERO(&set);
    uint32_t n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE && n < SP_MAX_WORKERS; cpu++)
            if (CPU_ISSET(cpu, &set)) cfg->cpus[n++] = (uint16_t)cpu;
    }
    if (n == 0) cfg->cpus[n++] = 0;
    cfg->worker_count = n;
    cfg->lane_count = 4;
    sp_lane_default(&cfg->lanes[0], "critical", SP_POLICY_STRICT, 64);
    sp_lane_default(&cfg->lanes[1], "high", SP_POLICY_WEIGHTED, 8);
    sp_lane_default(&cfg->lanes[2], "normal", SP_POLICY_WEIGHTED, 4);
    sp_lane_default(&cfg->lanes[3], "bulk", SP_POLICY_WEIGHTED, 1);
    cfg->numa_policy = SP_NUMA_LOCAL;
    cfg->backend = SP_BACKEND_AUTO;
    cfg->spin_ns = 50000; /* a sleeping worker costs ~22 µs one way to wake on this kind of VM */
    cfg->uring_entries = 256;
    cfg->uring_flags = SP_URING_WANT_DEFER_TASKRUN | SP_URING_WANT_COOP_TASKRUN;
    cfg->eager_ring_bytes = 64ull << 20;
    cfg->slow_handler_ns = 10000000; /* 10 ms */
}

static int sp_fail(char *msg, size_t len, const char *fmt, ...) {
    if (msg && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, len, fmt, ap);
        va_end(ap);
    }
    return SP_EINVAL;
}

static int sp_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static uint32_t sp_pow2_near(uint64_t v, uint32_t lo, uint32_t hi) {
    uint32_t p = lo;
    while (p < hi && p < v) p <<= 1;
    return p;
}

int sp_config_validate(const sp_config *cfg, int check_host, char *msg, size_t len) {
    if (cfg->worker_count < 1 || cfg->worker_count > SP_MAX_WORKERS)
        return sp_fail(msg, len, "engine.cpus = %u CPUs: rule 1...%u workers; fix: list between 1 and %u CPUs",
                       cfg->worker_count, SP_MAX_WORKERS, SP_MAX_WORKERS);
    for (uint32_t i = 0; i < cfg->worker_count; i++) {
        if (cfg->cpus[i] >= SP_MAX_CPUS)
            return sp_fail(msg, len, "engine.cpus[%u] = %u: rule a CPU number below %u; fix: use a CPU this host has",
                           i, cfg->cpus[i], SP_MAX_CPUS);
        for (uint32_t j = 0; j < i; j++)
            if (cfg->cpus[j] == cfg->cpus[i])
                return sp_fail(msg, len, "engine.cpus[%u] = %u: rule each CPU at most once (also engine.cpus[%u]); fix: remove the duplicate",
                               i, cfg->cpus[i], j);
    }
    if (cfg->numa_policy > SP_NUMA_NONE)
        return sp_fail(msg, len, "engine.numa_policy = %u: rule one of local (0), interleave (1), none (2); fix: use local",
                       cfg->numa_policy);
    if (cfg->backend > SP_BACKEND_EPOLL)
        return sp_fail(msg, len, "engine.backend = %u: rule one of auto (0), io_uring (1), epoll (2); fix: use auto", cfg->backend);
    if (cfg->spin_ns > 1000000000ull)
        return sp_fail(msg, len, "engine.spin_us = %llu: rule at most 1000000 (1 s); fix: use 50 (a wake-up costs ~20 us here)",
                       (unsigned long long)(cfg->spin_ns / 1000));
    if (!sp_pow2(cfg->uring_entries) || cfg->uring_entries < 8 || cfg->uring_entries > 32768)
        return sp_fail(msg, len, "engine.uring_entries = %u: rule a power of two in 8...32768; fix: use %u", cfg->uring_entries,
                       sp_pow2_near(cfg->uring_entries, 8, 32768));
    if (cfg->uring_flags & ~(SP_URING_WANT_DEFER_TASKRUN | SP_URING_WANT_COOP_TASKRUN))
        return sp_fail(msg, len, "engine.uring_flags = 0x%x: rule only known feature bits (0x3); fix: remove unknown bits",
                       cfg->uring_flags);
    if (cfg->lane_count < 1 || cfg->lane_count > SP_MAX_LANES)
        return sp_fail(msg, len, "lanes = %u lanes: rule 1...%u lanes; fix: define between 1 and %u lanes", cfg->lane_count,
                       SP_MAX_LANES, SP_MAX_LANES);
    int seen_weighted = 0;
    for (uint32_t i = 0; i < cfg->lane_count; i++) {
        const sp_lane_config *l = &cfg->lanes[i];
        size_t nlen = strnlen(l->name, SP_LANE_NAME_MAX);
        if (nlen == 0 || nlen == SP_LANE_NAME_MAX)
            return sp_fail(msg, len, "lanes[%u].name = \"%.*s\": rule 1...%d bytes; fix: give the lane a short name", i,
                           (int)(nlen < 31 ? nlen : 31), l->name, SP_LANE_NAME_MAX - 1);
        const char *n = l->name;
        for (uint32_t j = 0; j < i; j++)
            if (strncmp(cfg->lanes[j].name, n, SP_LANE_NAME_MAX) == 0)
                return sp_fail(msg, len, "lanes.%s.name = \"%s\": rule lane names are unique (also lanes[%u]); fix: rename one", n,
                               n, j);
        if (l->policy == SP_POLICY_STRICT) {
            if (seen_weighted)
                return sp_fail(msg, len, "lanes.%s.policy = strict: rule strict lanes come before every weighted lane (lane 0 is the highest); fix: move lane \"%s\" above the weighted lanes",
                               n, n);
            if (l->budget < 1 || l->budget > 65536)
                return sp_fail(msg, len, "lanes.%s.budget = %u: rule 1...65536 events per round; fix: use 64", n, l->budget);
        } else if (l->policy == SP_POLICY_WEIGHTED) {
            seen_weighted = 1;
            if (l->weight < 1 || l->weight > 1024)
                return sp_fail(msg, len, "lanes.%s.weight = %u: rule 1...1024; fix: use 1 for the lowest share", n, l->weight);
        } else {
            return sp_fail(msg, len, "lanes.%s.policy = %u: rule strict (0) or weighted (1); fix: use weighted", n, l->policy);
        }
        if (!sp_pow2(l->capacity) || l->capacity < 64 || l->capacity > (1u << 22))
            return sp_fail(msg, len, "lanes.%s.capacity = %u: rule a power of two in 64...4194304; fix: use %u", n, l->capacity,
                           sp_pow2_near(l->capacity, 64, 1u << 22));
        if (l->max_batch < 1 || l->max_batch > 1024)
            return sp_fail(msg, len, "lanes.%s.max_batch = %u: rule 1...1024; fix: use 32", n, l->max_batch);
        if (l->max_batch > l->capacity)
            return sp_fail(msg, len, "lanes.%s.max_batch = %u: rule at most the lane's capacity (%u); fix: use %u or raise capacity",
                           n, l->max_batch, l->capacity, l->capacity);
        if (l->on_full > SP_ON_FULL_BLOCK)
            return sp_fail(msg, len, "lanes.%s.on_full = %u: rule reject (0), drop (1) or block (2); fix: use reject", n, l->on_full);
        if (l->on_full != SP_ON_FULL_BLOCK && l->block_timeout_ns != 0)
            return sp_fail(msg, len, "lanes.%s.block_timeout_us = %llu: rule only a block lane has a timeout; fix: remove it or set on_full = block",
                           n, (unsigned long long)(l->block_timeout_ns / 1000));
        if (l->block_timeout_ns > 3600ull * 1000000000ull)
            return sp_fail(msg, len, "lanes.%s.block_timeout_us = %llu: rule at most 3600000000 (1 h); fix: use a shorter timeout", n,
                           (unsigned long long)(l->block_timeout_ns / 1000));
    }
    if (check_host) {
        cpu_set_t set;
        CPU_ZERO(&set);
        long present = sysconf(_SC_NPROCESSORS_CONF);
        int have_aff = sched_getaffinity(0, sizeof set, &set) == 0;
        for (uint32_t i = 0; i < cfg->worker_count; i++) {
            uint32_t cpu = cfg->cpus[i];
            if (present > 0 && cpu >= (uint32_t)present)
                return sp_fail(msg, len, "engine.cpus[%u] = %u: rule the CPU exists on this host (it has %ld); fix: use CPUs 0...%ld",
                               i, cpu, present, present - 1);
            if (have_aff && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set)))
                return sp_fail(msg, len, "engine.cpus[%u] = %u: rule the CPU is in this process's affinity mask and cgroup cpuset; fix: run with that CPU allowed (taskset/cpuset) or remove it",
                               i, cpu);
        }
    }
    return SP_OK;
}
