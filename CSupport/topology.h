/*
 * topology.h — CPU-list helpers shared by the host reader and the host rules (internal).
 */
#ifndef SP_TOPOLOGY_H
#define SP_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "include/spindle_profile.h"

/* Parses a kernel cpulist ("0-3,8,10-11") into a SP_CPU_WORDS bitmap (OR-ed in). -1 on bad syntax. */
int sp_cpulist_parse(const char *text, uint64_t *bits);
/* Formats a bitmap as a cpulist ("" when empty). */
void sp_cpulist_format(const uint64_t *bits, char *out, size_t len);

static inline int sp_cpu_isset(const uint64_t *bits, uint32_t cpu) {
    return cpu < SP_MAX_CPUS && (bits[cpu / 64] >> (cpu % 64)) & 1;
}

#endif
