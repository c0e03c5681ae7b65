/*
 * profile_host.c — the host rules, checked by `spindle profile validate` and at engine start
 * (not by compile, so a profile can be compiled on one machine for another):
 *   refuse: a profile CPU this host does not have, or one this process may not run on
 *           (sched affinity ∩ cgroup cpuset);
 *   warn (refuse when strict): CPU model, NUMA layout or kernel differ from what detect saw.
 */
#include <inttypes.h>
#include <stdio.h>

#include "profile.h"
#include "topology.h"

/* Counts one drift warning; its line goes into `warn` (when given) and the first one into `first`
 * (the refusal's one line under SP_PROFILE_STRICT, which needs no warn buffer). */
static int add_warning(char *warn, size_t len, char *first, const char *line, int count) {
    if (count == 0) snprintf(first, SP_PROFILE_MSG_MAX, "%s", line);
    if (warn && len) {
        size_t o = strnlen(warn, len);
        snprintf(warn + o, len - o, "%s%s", o ? "\n" : "", line);
    }
    return count + 1;
}

static int same_layout(const sp_host_facts *a, const sp_host_facts *b) {
    if (a->numa_nodes != b->numa_nodes || a->cpu_span != b->cpu_span) return 0;
    if (memcmp(a->distance, b->distance, sizeof a->distance) != 0) return 0;
    return memcmp(a->cpu_node, b->cpu_node, a->cpu_span) == 0;
}

int sp_profile_check_host(const sp_config *cfg, const sp_host_facts *ph, const sp_host_facts *here,
                          const uint64_t *allowed, unsigned flags, const char *name, char *warn, size_t warn_len,
                          char *msg, size_t msg_len) {
    sp_pf_ctx c = {.name = name ? name : "profile", .msg = msg, .len = msg_len};
    char have[1024], line[SP_PROFILE_MSG_MAX], first[SP_PROFILE_MSG_MAX];
    first[0] = 0;
    if (warn && warn_len) warn[0] = 0;
    if (msg && msg_len) msg[0] = 0;
    uint64_t online[SP_CPU_WORDS] = {0};
    for (uint32_t cpu = 0; cpu < here->cpu_span; cpu++)
        if (here->cpu_node[cpu] != SP_NODE_NONE) online[cpu / 64] |= 1ull << (cpu % 64);
    for (uint32_t w = 0; w < cfg->worker_count && w < SP_MAX_WORKERS; w++) {
        uint32_t cpu = cfg->cpus[w];
        if (!sp_cpu_isset(online, cpu)) {
            sp_cpulist_format(online, have, sizeof have);
            return sp_pf_failf(&c, SP_PROFILE_EHOST, "ENGINE", "engine.cpus",
                               "every CPU exists on this host", "use CPUs from the online list or re-run detect here",
                               "CPU %u (this host has %s)", cpu, have);
        }
        if (allowed && !sp_cpu_isset(allowed, cpu)) {
            sp_cpulist_format(allowed, have, sizeof have);
            return sp_pf_failf(&c, SP_PROFILE_EHOST, "ENGINE", "engine.cpus",
                               "every CPU is allowed by this process's affinity and cgroup cpuset",
                               "use allowed CPUs, or widen the affinity (taskset) / cpuset",
                               "CPU %u (allowed here: %s)", cpu, have[0] ? have : "none");
        }
    }
    int drift = 0; /* warning lines so far */
    if (ph->cpu_span == 0) {
        snprintf(line, sizeof line,
                 "%s: HOST host = (none): rule a profile carries the facts detect saw; fix: run `spindle profile "
                 "detect` on the target host and keep its [host] table",
                 c.name);
        drift = add_warning(warn, warn_len, first, line, drift);
    } else {
        if (strncmp(ph->cpu_model, here->cpu_model, SP_HOST_STRING_MAX) != 0) {
            snprintf(line, sizeof line,
                     "%s: HOST host.cpu_model = \"%.63s\": rule same CPU model as here (\"%.63s\"); fix: re-run detect "
                     "on this host",
                     c.name, ph->cpu_model, here->cpu_model);
            drift = add_warning(warn, warn_len, first, line, drift);
        }
        if (!same_layout(ph, here)) {
            snprintf(line, sizeof line,
                     "%s: HOST host.numa_node_cpus = %u nodes over %u CPUs: rule same NUMA layout as here (%u nodes "
                     "over %u CPUs, distances equal); fix: re-run detect on this host",
                     c.name, ph->numa_nodes, ph->cpu_span, here->numa_nodes, here->cpu_span);
            drift = add_warning(warn, warn_len, first, line, drift);
        }
        if (strncmp(ph->kernel, here->kernel, SP_HOST_STRING_MAX) != 0) {
            snprintf(line, sizeof line,
                     "%s: HOST host.kernel = \"%.63s\": rule same kernel as here (\"%.63s\"); fix: re-run detect on "
                     "this host",
                     c.name, ph->kernel, here->kernel);
            drift = add_warning(warn, warn_len, first, line, drift);
        }
    }
    if (drift && (flags & SP_PROFILE_STRICT)) {
        /* The first warning is the refusal's one line. */
        if (msg && msg_len) snprintf(msg, msg_len, "%s (--strict)", first);
        return SP_PROFILE_EDRIFT;
    }
    return drift;
}
