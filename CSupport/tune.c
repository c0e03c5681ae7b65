/*
 * tune.c — live retuning: lane weights, budgets, spin time and the slow-batch threshold change
 * while the engine runs; each worker picks the new values up at its next round boundary. What
 * sizes memory or threads (CPUs, lane count, capacities, batch sizes, full-lane policies,
 * backend) cannot change live and is refused with a message.
 */
#include <stdio.h>
#include <string.h>

#include "engine.h"
#include "timing.h"

static int sp_refuse(char *msg, size_t len, const char *key, unsigned long long from, unsigned long long to) {
    if (msg && len)
        snprintf(msg, len, "%s = %llu (running: %llu): rule cannot change while the engine runs; fix: restart the engine with the new profile",
                 key, to, from);
    return SP_EINVAL;
}

int sp_engine_retune(sp_engine *e, const sp_config *cfg, char *msg, size_t len) {
    int rc = sp_config_validate(cfg, 0, msg, len);
    if (rc != SP_OK) return rc;
    const sp_config *cur = &e->cfg;
    if (cfg->worker_count != cur->worker_count) return sp_refuse(msg, len, "engine.cpus (count)", cur->worker_count, cfg->worker_count);
    for (uint32_t i = 0; i < cfg->worker_count; i++)
        if (cfg->cpus[i] != cur->cpus[i]) {
            char key[48];
            snprintf(key, sizeof key, "engine.cpus[%u]", i);
            return sp_refuse(msg, len, key, cur->cpus[i], cfg->cpus[i]);
        }
    if (cfg->lane_count != cur->lane_count) return sp_refuse(msg, len, "lanes (count)", cur->lane_count, cfg->lane_count);
    if (cfg->numa_policy != cur->numa_policy) return sp_refuse(msg, len, "engine.numa_policy", cur->numa_policy, cfg->numa_policy);
    if (cfg->backend != cur->backend) return sp_refuse(msg, len, "engine.backend", cur->backend, cfg->backend);
    if (cfg->uring_entries != cur->uring_entries) return sp_refuse(msg, len, "engine.uring_entries", cur->uring_entries, cfg->uring_entries);
    for (uint32_t l = 0; l < cfg->lane_count; l++) {
        const sp_lane_config *a = &cur->lanes[l], *b = &cfg->lanes[l];
        char key[96];
#define SP_SAME(field, label)                                                                 \
    if (a->field != b->field) {                                                               \
        snprintf(key, sizeof key, "lanes.%s.%s", a->name, label);                             \
        return sp_refuse(msg, len, key, (unsigned long long)a->field, (unsigned long long)b->field); \
    }
        SP_SAME(policy, "policy")
        SP_SAME(capacity, "capacity")
        SP_SAME(max_batch, "max_batch")
        SP_SAME(on_full, "on_full")
        SP_SAME(block_timeout_ns, "block_timeout_ns")
#undef SP_SAME
        if (strncmp(a->name, b->name, SP_LANE_NAME_MAX) != 0) {
            if (msg && len)
                snprintf(msg, len, "lanes[%u].name = \"%s\" (running: \"%s\"): rule cannot change while the engine runs; fix: restart the engine with the new profile",
                         l, b->name, a->name);
            return SP_EINVAL;
        }
    }
    pthread_mutex_lock(&e->lock);
    for (uint32_t l = 0; l < cfg->lane_count; l++) {
        e->cfg.lanes[l].budget = cfg->lanes[l].budget;
        e->cfg.lanes[l].weight = cfg->lanes[l].weight;
    }
    e->cfg.spin_ns = cfg->spin_ns;
    e->cfg.slow_handler_ns = cfg->slow_handler_ns;
    /* release: pairs with the acquire in sp_worker_take_tuning — values before the generation. */
    atomic_fetch_add_explicit(&e->tune_gen, 1, memory_order_release);
    pthread_mutex_unlock(&e->lock);
    sp_watchdog_retuned(e); /* a threshold turned on (or changed) is read now, not at the next wake */
    return SP_OK;
}

/* At a round boundary, on the worker: one relaxed load per round when nothing changed. */
void sp_worker_take_tuning(sp_worker *w) {
    sp_engine *e = w->engine;
    uint64_t gen = atomic_load_explicit(&e->tune_gen, memory_order_acquire);
    if (__builtin_expect(gen == w->tune_seen, 1)) return;
    pthread_mutex_lock(&e->lock);
    for (uint32_t l = 0; l < w->lane_count; l++) {
        sp_lane_state *ls = &w->lanes[l];
        const sp_lane_config *lc = &e->cfg.lanes[l];
        ls->budget = lc->budget;
        ls->quantum = lc->policy == SP_POLICY_WEIGHTED ? lc->weight * lc->max_batch : 0;
    }
    w->spin_ns = e->cfg.spin_ns;
    w->slow_ns = e->cfg.slow_handler_ns;
    if (__builtin_expect(w->timing == NULL, 1)) sp_worker_take_timing(w); /* sp_engine_enable_timing bumps tune_gen */
    w->tune_seen = atomic_load_explicit(&e->tune_gen, memory_order_relaxed);
    pthread_mutex_unlock(&e->lock);
}
