/*
 * topology.c — what this host is: CPUs, NUMA nodes and distances, caches, CPU model and
 * kernel, read from a sysfs/procfs-shaped root so tests can point it at a fixture tree; the
 * CPUs this process may use (affinity ∩ cgroup cpuset); io_uring features; wake-up latency.
 * Reading goes through plain files rather than libnuma so a fixture is all a test needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "topology.h"
#include "uring_compat.h"


int sp_cpulist_parse(const char *s, uint64_t *bits) {
    while (*s == ' ' || *s == '\t') s++;
    while (*s && *s != '\n') {
        char *end;
        errno = 0;
        unsigned long a = strtoul(s, &end, 10), b = a;
        if (end == s || errno) return -1;
        s = end;
        if (*s == '-') {
            s++;
            b = strtoul(s, &end, 10);
            if (end == s || errno) return -1;
            s = end;
        }
        if (a > b || b >= SP_MAX_CPUS) return -1;
        for (unsigned long c = a; c <= b; c++) bits[c / 64] |= 1ull << (c % 64);
        if (*s == ',') s++;
        else if (*s && *s != '\n') return -1;
    }
    return 0;
}

void sp_cpulist_format(const uint64_t *bits, char *out, size_t len) {
    size_t o = 0;
    if (len) out[0] = 0;
    for (uint32_t c = 0; c < SP_MAX_CPUS && o < len; c++) {
        if (!sp_cpu_isset(bits, c)) continue;
        uint32_t e = c;
        while (e + 1 < SP_MAX_CPUS && sp_cpu_isset(bits, e + 1)) e++;
        int n = e == c ? snprintf(out + o, len - o, "%s%u", o ? "," : "", c)
                       : snprintf(out + o, len - o, "%s%u-%u", o ? "," : "", c, e);
        o += n > 0 ? (size_t)n : 0;
        c = e;
    }
}

/* Reads root/rel into buf (NUL-terminated, trailing newline kept). -1 when absent. */
static int read_file(const char *root, const char *rel, char *buf, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return 0;
}

static uint32_t parse_size(const char *s) {
    /* sysfs cache sizes: "48K", "1024K", "32768K", "1M" */
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'K') v <<= 10;
    else if (*end == 'M') v <<= 20;
    else if (*end == 'G') v <<= 30;
    return v > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)v;
}

static void read_caches(const char *root, uint32_t cpu, sp_host_facts *h) {
    char rel[256], buf[64], type[32];
    for (int i = 0; i < 8; i++) {
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%u/cache/index%d/level", cpu, i);
        if (read_file(root, rel, buf, sizeof buf)) break;
        int level = atoi(buf);
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%u/cache/index%d/type", cpu, i);
        if (read_file(root, rel, type, sizeof type)) type[0] = 0;
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%u/cache/index%d/size", cpu, i);
        uint32_t size = read_file(root, rel, buf, sizeof buf) ? 0 : parse_size(buf);
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%u/cache/index%d/coherency_line_size", cpu, i);
        if (!read_file(root, rel, buf, sizeof buf) && !h->cache_line) h->cache_line = (uint32_t)atoi(buf);
        if (strncmp(type, "Instruction", 11) == 0) continue;
        if (level == 2) h->l2_bytes = size;
        if (level == 3) h->l3_bytes = size;
    }
}

static void copy_line(char *dst, const char *src) {
    size_t n = 0;
    while (src[n] && src[n] != '\n' && n < SP_HOST_STRING_MAX - 1) {
        char ch = src[n];
        dst[n] = (ch >= 0x20 && ch < 0x7f) ? ch : '?'; /* the profile keeps printable ASCII only */
        n++;
    }
    while (n > 0 && dst[n - 1] == ' ') n--;
    memset(dst + n, 0, SP_HOST_STRING_MAX - n);
}

static void cgroup_cpuset(uint64_t *allowed) {
    /* sched_getaffinity already reflects the cpuset; reading it too catches a cpuset narrowed
     * after this thread's mask was set, and says what the container was given. */
    char buf[8192], rel[4096 + 64], path[4096] = "";
    if (read_file("/", "proc/self/cgroup", buf, sizeof buf)) return;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char *p = strchr(line, ':');
        if (!p) continue;
        char *q = strchr(p + 1, ':');
        if (!q) continue;
        if ((q == p + 1 && line[0] == '0') || strstr(p + 1, "cpuset") == p + 1) {
            snprintf(path, sizeof path, "%s", q + 1);
            char cpus[4096];
            if (q == p + 1)
                snprintf(rel, sizeof rel, "sys/fs/cgroup%s/cpuset.cpus.effective", path);
            else
                snprintf(rel, sizeof rel, "sys/fs/cgroup/cpuset%s/cpuset.effective_cpus", path);
            uint64_t set[SP_CPU_WORDS] = {0};
            if (!read_file("/", rel, cpus, sizeof cpus) && cpus[0] && cpus[0] != '\n' && !sp_cpulist_parse(cpus, set))
                for (int w = 0; w < SP_CPU_WORDS; w++) allowed[w] &= set[w];
        }
    }
}

int sp_host_read(const char *root, sp_host_facts *h, uint64_t *allowed, char *msg, size_t msg_len) {
    static __thread char buf[65536]; /* cpuinfo of a big host; per thread, never on a worker's stack */
    char rel[256];
    uint64_t online[SP_CPU_WORDS] = {0};
    memset(h, 0, sizeof *h);
    memset(h->cpu_node, SP_NODE_NONE, sizeof h->cpu_node);
    if (!root || !*root) root = "/";
    if (read_file(root, "sys/devices/system/cpu/online", buf, sizeof buf) || sp_cpulist_parse(buf, online)) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "%s/sys/devices/system/cpu/online: cannot read the online CPUs; fix: mount sysfs",
                     root);
        return SP_PROFILE_EIO;
    }
    uint64_t nodes_online[SP_CPU_WORDS] = {0};
    int have_nodes = !read_file(root, "sys/devices/system/node/online", buf, sizeof buf) &&
                     !sp_cpulist_parse(buf, nodes_online);
    if (!have_nodes) nodes_online[0] = 1; /* no NUMA in sysfs: one node holding every CPU */
    for (uint32_t n = 0; n < SP_MAX_NODES; n++) {
        if (!sp_cpu_isset(nodes_online, n)) continue;
        h->numa_nodes = n + 1;
        uint64_t cpus[SP_CPU_WORDS] = {0};
        snprintf(rel, sizeof rel, "sys/devices/system/node/node%u/cpulist", n);
        if (!have_nodes) memcpy(cpus, online, sizeof cpus);
        else if (read_file(root, rel, buf, sizeof buf) == 0) sp_cpulist_parse(buf, cpus);
        for (uint32_t c = 0; c < SP_MAX_CPUS; c++)
            if (sp_cpu_isset(cpus, c) && sp_cpu_isset(online, c)) h->cpu_node[c] = (uint8_t)n;
        snprintf(rel, sizeof rel, "sys/devices/system/node/node%u/distance", n);
        h->distance[n][n] = 10;
        if (have_nodes && read_file(root, rel, buf, sizeof buf) == 0) {
            char *p = buf;
            for (uint32_t m = 0; m < SP_MAX_NODES; m++) {
                char *end;
                long d = strtol(p, &end, 10);
                if (end == p) break;
                h->distance[n][m] = (uint8_t)(d < 0 ? 0 : d > 254 ? 254 : d);
                p = end;
            }
        }
    }
    for (uint32_t c = 0; c < SP_MAX_CPUS; c++)
        if (h->cpu_node[c] != SP_NODE_NONE) h->cpu_span = c + 1;
    if (read_file(root, "proc/cpuinfo", buf, sizeof buf) == 0) {
        char *m = strstr(buf, "model name");
        if (m && (m = strchr(m, ':'))) copy_line(h->cpu_model, m + 2 <= buf + strlen(buf) ? m + 2 : m + 1);
    }
    if (!h->cpu_model[0]) copy_line(h->cpu_model, "unknown");
    if (read_file(root, "proc/sys/kernel/osrelease", buf, sizeof buf) == 0) copy_line(h->kernel, buf);
    for (uint32_t c = 0; c < SP_MAX_CPUS; c++)
        if (sp_cpu_isset(online, c)) {
            read_caches(root, c, h);
            break;
        }
    if (allowed) {
        memset(allowed, 0, SP_CPU_WORDS * 8);
        if (strcmp(root, "/") == 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            if (sched_getaffinity(0, sizeof set, &set) == 0) {
                for (uint32_t c = 0; c < CPU_SETSIZE && c < SP_MAX_CPUS; c++)
                    if (CPU_ISSET(c, &set)) allowed[c / 64] |= 1ull << (c % 64);
            } else
                memcpy(allowed, online, sizeof online);
            cgroup_cpuset(allowed);
        } else {
            char *p = NULL;
            if (read_file(root, "proc/self/status", buf, sizeof buf) == 0) p = strstr(buf, "Cpus_allowed_list:");
            if (!p || sp_cpulist_parse(p + strlen("Cpus_allowed_list:"), allowed)) memcpy(allowed, online, sizeof online);
        }
        for (int w = 0; w < SP_CPU_WORDS; w++) allowed[w] &= online[w];
    }
    h->fingerprint = sp_host_fingerprint(h);
    return 0;
}

uint32_t sp_host_probe_uring(void) {
    uint32_t feats = 0;
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(8, &ring, &p) == 0) {
        feats |= SP_FEAT_SINGLE_ISSUER | SP_FEAT_DEFER_TASKRUN;
        io_uring_queue_exit(&ring);
    }
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_COOP_TASKRUN;
    if (io_uring_queue_init_params(8, &ring, &p) == 0) {
        feats |= SP_FEAT_COOP_TASKRUN;
        struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
        if (probe) {
            if (io_uring_opcode_supported(probe, IORING_OP_MSG_RING)) feats |= SP_FEAT_MSG_RING;
            io_uring_free_probe(probe);
        }
        io_uring_queue_exit(&ring);
    }
    return feats;
}

static pthread_once_t sp_host_once = PTHREAD_ONCE_INIT;
static sp_host_facts sp_host_here;
static uint64_t sp_host_allowed[SP_CPU_WORDS];

static void sp_host_init(void) {
    if (sp_host_read("/", &sp_host_here, sp_host_allowed, NULL, 0) != 0) return;
    sp_host_here.uring_features = sp_host_probe_uring();
}

const sp_host_facts *sp_host_current(const uint64_t **allowed) {
    pthread_once(&sp_host_once, sp_host_init);
    if (allowed) *allowed = sp_host_allowed;
    return &sp_host_here;
}

/* ---- wake-up latency ----------------------------------------------------------------------- */

typedef struct sp_wake_pair {
    int ping, pong;
    uint32_t rounds;
    int cpu;
} sp_wake_pair;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *sp_wake_echo(void *arg) {
    sp_wake_pair *w = arg;
    pin(w->cpu);
    uint64_t v;
    for (uint32_t i = 0; i < w->rounds; i++) {
        if (read(w->ping, &v, 8) != 8) break;
        v = 1;
        if (write(w->pong, &v, 8) != 8) break;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t sp_host_measure_wake_ns(uint32_t rounds) {
    if (rounds == 0 || rounds > 100000) return 0;
    const uint64_t *allowed;
    sp_host_current(&allowed);
    int cpus[2] = {-1, -1}, n = 0;
    for (uint32_t c = 0; c < SP_MAX_CPUS && n < 2; c++)
        if (sp_cpu_isset(allowed, c)) cpus[n++] = (int)c;
    sp_wake_pair w = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC), rounds, n == 2 ? cpus[1] : -1};
    uint64_t *samples = calloc(rounds, sizeof *samples);
    pthread_t t;
    if (w.ping < 0 || w.pong < 0 || !samples || pthread_create(&t, NULL, sp_wake_echo, &w) != 0) {
        if (w.ping >= 0) close(w.ping);
        if (w.pong >= 0) close(w.pong);
        free(samples);
        return 0;
    }
    /* Measure on a helper-free copy of our mask: pinning this thread is undone below. */
    cpu_set_t saved;
    int restore = sched_getaffinity(0, sizeof saved, &saved) == 0;
    if (n == 2) pin(cpus[0]);
    uint32_t done = 0;
    for (uint32_t i = 0; i < rounds; i++) {
        /* Let the echo thread fall asleep in read() first: a wake of a running thread is not
         * what a sleeping worker costs. 300 µs is far above the kernel's sleep path. */
        uint64_t until = now_ns() + 300000;
        while (now_ns() < until) {
        }
        uint64_t v = 1, t0 = now_ns();
        if (write(w.ping, &v, 8) != 8 || read(w.pong, &v, 8) != 8) break;
        samples[done++] = (now_ns() - t0) / 2; /* both directions slept: one way is half the round trip */
    }
    if (done < rounds) {
        uint64_t v = 1;
        for (uint32_t i = done; i < rounds; i++)
            if (write(w.ping, &v, 8) != 8) break;
    }
    pthread_join(t, NULL);
    if (restore) sched_setaffinity(0, sizeof saved, &saved);
    close(w.ping);
    close(w.pong);
    uint32_t median = 0;
    if (done) {
        qsort(samples, done, sizeof *samples, cmp_u64);
        median = samples[done / 2] > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)samples[done / 2];
    }
    free(samples);
    return median;
}
