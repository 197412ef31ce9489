/* SPDX-License-Identifier: MIT */
/* Per-type slabs of handles. Invariants: chunk memory lives until kiln__slab_destroy;
 * directory and chunk pointers are written once (release) and read without a lock
 * (acquire); the FIFO of free indices (quarantine mode) has room for every slot, so
 * release never allocates; the LIFO free stack (quarantine 0) carries an ABA counter
 * in its top word. Growth is under slab->lock; everything else is thread-safe as
 * described per function. */
#include <assert.h>
#include <string.h>

#include "core/core.h"

static _Atomic uint32_t gen_seed_counter = 1;

static kiln__handle_obj *elem_at(kiln__slab *slab, uint32_t index);

void kiln__slab_prefetch(kiln__slab *slab, size_t offset, size_t bytes) {
  for (size_t line = offset / 64; bytes && line <= (offset + bytes - 1) / 64 && line < 64; line++)
    slab->prefetch_mask |= (uint64_t)1 << line;
}

void kiln__slab_init(kiln__slab *slab, size_t elem_bytes, size_t zero_bytes, uint32_t tag,
                     uint32_t quarantine) {
  memset(slab, 0, sizeof *slab);
  pthread_mutex_init(&slab->lock, NULL);
  slab->elem_bytes = (elem_bytes + 63u) & ~(size_t)63u;
  slab->zero_bytes =
      zero_bytes > slab->elem_bytes ? slab->elem_bytes : (zero_bytes + 7u) & ~(size_t)7u;
  if (slab->zero_bytes < sizeof(kiln__handle_obj))
    slab->zero_bytes = sizeof(kiln__handle_obj);
  slab->tag = tag;
  slab->quarantine = quarantine;
  /* Slot generations start from a process-wide counter so that a token of an earlier
   * context in the same table slot does not match this one's ops. */
  slab->gen_seed = atomic_fetch_add(&gen_seed_counter, 0x10000u);
}

void kiln__slab_set_slot_life(kiln__slab *slab, void (*init)(void *elem),
                              void (*fini)(void *elem)) {
  slab->slot_init = init;
  slab->slot_fini = fini;
}

void kiln__slab_keep(kiln__slab *slab, size_t offset, size_t bytes) {
  assert(slab->keeps < KILN__SLAB_KEEPS);
  assert(slab->keeps == 0 || offset >= slab->keep_end[slab->keeps - 1]);
  slab->keep_begin[slab->keeps] = offset & ~(size_t)7u;
  slab->keep_end[slab->keeps] = (offset + bytes + 7u) & ~(size_t)7u;
  slab->keeps++;
}

void kiln__slab_destroy(kiln__slab *slab) {
  if (slab->slot_fini)
    for (uint32_t i = 0, used = atomic_load(&slab->used); i < used; i++)
      slab->slot_fini(elem_at(slab, i));
  for (uint32_t c = 0; c < slab->chunk_count; c++) {
    unsigned char *_Atomic *dir = atomic_load(&slab->dirs[c / KILN__SLAB_DIR]);
    kiln__free_aligned(atomic_load(&dir[c % KILN__SLAB_DIR]), slab->elem_bytes * KILN__SLAB_CHUNK,
                       64);
  }
  for (uint32_t d = 0; d < KILN__SLAB_DIRS; d++) {
    unsigned char *_Atomic *dir = atomic_load(&slab->dirs[d]);
    if (dir)
      kiln__free(dir, sizeof(*dir) * KILN__SLAB_DIR);
  }
  kiln__free(slab->fifo, sizeof(uint32_t) * slab->fifo_cap);
  pthread_mutex_destroy(&slab->lock);
  memset(slab, 0, sizeof *slab);
}

static kiln__handle_obj *elem_at(kiln__slab *slab, uint32_t index) {
  /* acquire pairs with the release stores in grow_locked. */
  unsigned char *_Atomic *dir = atomic_load_explicit(
      &slab->dirs[index / (KILN__SLAB_CHUNK * KILN__SLAB_DIR)], memory_order_acquire);
  unsigned char *chunk =
      atomic_load_explicit(&dir[(index / KILN__SLAB_CHUNK) % KILN__SLAB_DIR], memory_order_acquire);
  return (kiln__handle_obj *)(chunk + (size_t)(index % KILN__SLAB_CHUNK) * slab->elem_bytes);
}

/* Add one chunk (and its directory, and FIFO room); no element is published yet. */
static kiln_status grow_locked(kiln__slab *slab) {
  uint32_t c = slab->chunk_count;
  if ((size_t)(c + 1) * KILN__SLAB_CHUNK > KILN__SLAB_MAX_SLOTS)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "more than %u live objects of one kind in a context", KILN__SLAB_MAX_SLOTS);
  if (slab->quarantine && slab->fifo_cap < (c + 1) * KILN__SLAB_CHUNK) {
    uint32_t cap = slab->fifo_cap ? slab->fifo_cap * 2 : KILN__SLAB_CHUNK;
    uint32_t *fifo = kiln__calloc(cap, sizeof *fifo);
    if (!fifo)
      goto oom;
    for (uint32_t i = 0; i < slab->fifo_count; i++)
      fifo[i] = slab->fifo[(slab->fifo_head + i) % slab->fifo_cap];
    kiln__free(slab->fifo, sizeof *fifo * slab->fifo_cap);
    slab->fifo = fifo;
    slab->fifo_cap = cap;
    slab->fifo_head = 0;
  }
  unsigned char *_Atomic *dir = atomic_load(&slab->dirs[c / KILN__SLAB_DIR]);
  if (!dir) {
    dir = kiln__calloc(KILN__SLAB_DIR, sizeof *dir);
    if (!dir)
      goto oom;
    atomic_store_explicit(&slab->dirs[c / KILN__SLAB_DIR], dir, memory_order_release);
  }
  unsigned char *chunk = kiln__alloc_aligned(slab->elem_bytes * KILN__SLAB_CHUNK, 64);
  if (!chunk)
    goto oom;
  memset(chunk, 0, slab->elem_bytes * KILN__SLAB_CHUNK);
  atomic_store_explicit(&dir[c % KILN__SLAB_DIR], chunk, memory_order_release);
  slab->chunk_count++;
  return KILN_SUCCESS;
oom:
  return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                     "out of host memory growing a handle table to %u entries",
                     (c + 1) * KILN__SLAB_CHUNK);
}

/* Fetch the masked lines of an element for writing (x86: PREFETCHW, which older CPUs
 * run as a no-op; elsewhere the compiler's write prefetch). Only a hint: the element
 * may be taken by another thread meanwhile. */
static void prefetch_lines(const kiln__handle_obj *h, uint64_t mask) {
  const unsigned char *p = (const unsigned char *)h;
  for (; mask; mask &= mask - 1) {
    const unsigned char *line = p + 64 * (size_t)__builtin_ctzll(mask);
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*line));
#else
    __builtin_prefetch(line, 1, 3);
#endif
  }
}

static void prepare(kiln__slab *slab, kiln__handle_obj *h, uint32_t index) {
  /* Clear with relaxed atomic stores rather than memset: a stale reader (a token of
   * the slot's previous op, a scan for forgotten tokens, a dependency on a destroyed
   * stream) may load the atomic fields of this slot right now, and must see either
   * old or new values, not a torn race. Offsets and sizes are multiples of 8. */
  uint64_t *w = (uint64_t *)(void *)h;
  size_t end = slab->zero_bytes / 8, i = sizeof *h / 8;
  for (unsigned k = 0; k <= slab->keeps; k++) { /* the cleared stretches between keeps */
    size_t stop = k < slab->keeps ? slab->keep_begin[k] / 8 : end;
    for (; i < stop && i < end; i++)
      __atomic_store_n(&w[i], 0, __ATOMIC_RELAXED);
    if (k < slab->keeps && slab->keep_end[k] / 8 > i)
      i = slab->keep_end[k] / 8; /* slot-lived bytes (kiln__slab_keep) */
  }
  h->slot = index;
  if (atomic_load_explicit(&h->slot_gen, memory_order_relaxed) == 0)
    atomic_store(&h->slot_gen, slab->gen_seed + index ? slab->gen_seed + index : 1u);
}

kiln_status kiln__slab_alloc(kiln__slab *slab, void **out) {
  *out = NULL;
  if (!slab->quarantine) {
    /* Lock-free pop; the counter in the top word defeats ABA, and element memory is
     * never unmapped, so reading free_next of an element popped meanwhile is safe. */
    uint64_t top = atomic_load(&slab->free_top);
    while ((uint32_t)top) {
      uint32_t index = (uint32_t)top - 1u;
      kiln__handle_obj *h = elem_at(slab, index);
      uint32_t next = atomic_load_explicit(&h->free_next, memory_order_relaxed);
      uint64_t want = (((top >> 32) + 1u) << 32) | next;
      if (atomic_compare_exchange_weak(&slab->free_top, &top, want)) {
        if (next && slab->prefetch_mask) /* the next pop's element (its memory stays) */
          prefetch_lines(elem_at(slab, next - 1u), slab->prefetch_mask);
        prepare(slab, h, index);
        *out = h;
        return KILN_SUCCESS;
      }
    }
  }
  pthread_mutex_lock(&slab->lock);
  uint32_t index;
  if (slab->quarantine && slab->fifo_count > slab->quarantine) {
    index = slab->fifo[slab->fifo_head];
    slab->fifo_head = (slab->fifo_head + 1) % slab->fifo_cap;
    slab->fifo_count--;
  } else {
    uint32_t used = atomic_load(&slab->used);
    if (used == slab->chunk_count * KILN__SLAB_CHUNK) {
      kiln_status st = grow_locked(slab);
      if (st != KILN_SUCCESS) {
        pthread_mutex_unlock(&slab->lock);
        return st;
      }
    }
    index = used;
    if (slab->slot_init) /* a fresh slot: its chunk was zeroed by grow_locked */
      slab->slot_init(elem_at(slab, index));
    atomic_store(&slab->used, used + 1);
  }
  kiln__handle_obj *h = elem_at(slab, index);
  prepare(slab, h, index);
  pthread_mutex_unlock(&slab->lock);
  *out = h;
  return KILN_SUCCESS;
}

/* Push the chain first..last (linked through free_next) onto the free stack. */
static void push_chain(kiln__slab *slab, kiln__handle_obj *first, kiln__handle_obj *last) {
  uint64_t top = atomic_load(&slab->free_top);
  do {
    atomic_store_explicit(&last->free_next, (uint32_t)top, memory_order_relaxed);
  } while (!atomic_compare_exchange_weak(&slab->free_top, &top,
                                         (((top >> 32) + 1u) << 32) | (first->slot + 1u)));
}

static _Thread_local struct {
  int active;
  unsigned count;
  kiln__slab *slab;
  kiln__handle_obj *first, *last;
} defer;

void kiln__slab_defer_begin(void) {
  defer.active = 1;
}

void kiln__slab_defer_flush(void) {
  if (defer.count)
    push_chain(defer.slab, defer.first, defer.last);
  defer.count = 0;
  defer.slab = NULL;
  defer.first = defer.last = NULL;
}

void kiln__slab_release(kiln__slab *slab, void *elem) {
  kiln__handle_obj *h = elem;
  /* release: a scan or token lookup that sees the new tag or generation (acquire or
   * seq_cst loads) sees the object's final state; the free-stack push publishes both. */
  atomic_store_explicit(&h->tag, slab->tag | KILN__TAG_DEAD, memory_order_release);
  uint32_t gen = atomic_load_explicit(&h->slot_gen, memory_order_relaxed) + 1u;
  atomic_store_explicit(&h->slot_gen, gen ? gen : 1u, memory_order_release);
  if (!slab->quarantine) {
    if (!defer.active) {
      push_chain(slab, h, h);
      return;
    }
    if (defer.count && defer.slab != slab)
      kiln__slab_defer_flush();
    atomic_store_explicit(&h->free_next, defer.first ? defer.first->slot + 1u : 0u,
                          memory_order_relaxed);
    if (!defer.count)
      defer.last = h;
    defer.first = h;
    defer.slab = slab;
    if (++defer.count >= 64)
      kiln__slab_defer_flush();
    return;
  }
  pthread_mutex_lock(&slab->lock);
  slab->fifo[(slab->fifo_head + slab->fifo_count) % slab->fifo_cap] = h->slot;
  slab->fifo_count++;
  pthread_mutex_unlock(&slab->lock);
}

void *kiln__slab_at(kiln__slab *slab, uint32_t index) {
  return index < atomic_load(&slab->used) ? elem_at(slab, index) : NULL;
}

void *kiln__slab_at_gen(kiln__slab *slab, uint32_t index, uint32_t slot_gen) {
  kiln__handle_obj *h = kiln__slab_at(slab, index);
  return h && atomic_load(&h->slot_gen) == slot_gen ? h : NULL;
}

void kiln__slab_each_alive(kiln__slab *slab, void (*fn)(void *elem, void *user), void *user) {
  uint32_t used = atomic_load(&slab->used);
  for (uint32_t i = 0; i < used; i++) {
    kiln__handle_obj *h = elem_at(slab, i);
    if (atomic_load(&h->tag) == slab->tag)
      fn(h, user);
  }
}
