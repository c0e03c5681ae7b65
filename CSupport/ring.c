#include "ring.h"

size_t sp_spsc_bytes(uint32_t capacity) { return sizeof(sp_spsc) + (size_t)capacity * sizeof(sp_slot); }
size_t sp_mpsc_bytes(uint32_t capacity) { return sizeof(sp_mpsc) + (size_t)capacity * sizeof(sp_slot); }

sp_spsc *sp_spsc_init(void *mem, uint32_t capacity, uint32_t consumer) {
    sp_spsc *r = mem;
    r->consumer = consumer;
    sp_slot *slots = (sp_slot *)(r + 1);
    r->p_mask = r->c_mask = capacity - 1;
    r->p_slots = r->c_slots = slots;
    r->sample_mask = SP_SAMPLE_OFF;
    return r;
}

sp_mpsc *sp_mpsc_init(void *mem, uint32_t capacity) {
    sp_mpsc *r = mem;
    sp_slot *slots = (sp_slot *)(r + 1);
    r->p_mask = r->c_mask = capacity - 1;
    r->p_slots = r->c_slots = slots;
    atomic_store_explicit(&r->sample_mask, SP_SAMPLE_OFF, memory_order_relaxed);
    /* Slot i is free for position i (Vyukov): seq == position means "empty, yours to fill". */
    for (uint32_t i = 0; i < capacity; i++) __atomic_store_n(&slots[i].seq, i, __ATOMIC_RELAXED);
    return r;
}
