/* SPDX-License-Identifier: MIT */
/* Per-type slabs of handles. Invariants: chunk memory lives until kiln__slab_destroy;
 * the FIFO of free indices has room for every slot, so release never allocates; a
 * released slot is handed out again only once `quarantine` other free slots queue
 * behind it. Thread-safe under slab->lock. */
#include <string.h>

#include "core/core.h"

static _Atomic uint32_t gen_seed_counter = 1;

void kiln__slab_init(kiln__slab *slab, size_t elem_bytes, uint32_t tag, uint32_t quarantine) {
  memset(slab, 0, sizeof *slab);
  pthread_mutex_init(&slab->lock, NULL);
  slab->elem_bytes = (elem_bytes + 63u) & ~(size_t)63u;
  slab->tag = tag;
  slab->quarantine = quarantine;
  /* Slot generations start from a process-wide counter so that a token of an earlier
   * context in the same table slot does not match this one's ops. */
  slab->gen_seed = atomic_fetch_add(&gen_seed_counter, 0x10000u);
}

void kiln__slab_destroy(kiln__slab *slab) {
  for (uint32_t i = 0; i < slab->chunk_count; i++)
    kiln__free_aligned(slab->chunks[i], slab->elem_bytes * KILN__SLAB_CHUNK, 64);
  kiln__free(slab->chunks, sizeof(*slab->chunks) * slab->chunk_cap);
  kiln__free(slab->fifo, sizeof(uint32_t) * (size_t)slab->chunk_cap * KILN__SLAB_CHUNK);
  pthread_mutex_destroy(&slab->lock);
  memset(slab, 0, sizeof *slab);
}

static unsigned char *elem_at_locked(kiln__slab *slab, uint32_t index) {
  return slab->chunks[index / KILN__SLAB_CHUNK] + (size_t)(index % KILN__SLAB_CHUNK) * slab->elem_bytes;
}

/* Add one chunk; the FIFO grows with the chunk table so release never allocates. */
static kiln_status grow_locked(kiln__slab *slab) {
  if (slab->chunk_count == slab->chunk_cap) {
    uint32_t cap = slab->chunk_cap ? slab->chunk_cap * 2 : 4;
    unsigned char **chunks = kiln__calloc(cap, sizeof *chunks);
    uint32_t *fifo = kiln__calloc((size_t)cap * KILN__SLAB_CHUNK, sizeof *fifo);
    if (!chunks || !fifo) {
      kiln__free(chunks, sizeof *chunks * cap);
      kiln__free(fifo, sizeof *fifo * (size_t)cap * KILN__SLAB_CHUNK);
      return KILN_ERROR_OUT_OF_HOST_MEMORY;
    }
    if (slab->chunk_count) memcpy(chunks, slab->chunks, sizeof *chunks * slab->chunk_count);
    uint32_t old_fifo_cap = slab->chunk_cap * KILN__SLAB_CHUNK;
    for (uint32_t i = 0; i < slab->fifo_count; i++)
      fifo[i] = slab->fifo[(slab->fifo_head + i) % old_fifo_cap];
    kiln__free(slab->chunks, sizeof *chunks * slab->chunk_cap);
    kiln__free(slab->fifo, sizeof *fifo * old_fifo_cap);
    slab->chunks = chunks;
    slab->fifo = fifo;
    slab->fifo_head = 0;
    slab->chunk_cap = cap;
  }
  unsigned char *chunk = kiln__alloc_aligned(slab->elem_bytes * KILN__SLAB_CHUNK, 64);
  if (!chunk) return KILN_ERROR_OUT_OF_HOST_MEMORY;
  memset(chunk, 0, slab->elem_bytes * KILN__SLAB_CHUNK);
  slab->chunks[slab->chunk_count++] = chunk;
  return KILN_SUCCESS;
}

kiln_status kiln__slab_alloc(kiln__slab *slab, void **out) {
  *out = NULL;
  pthread_mutex_lock(&slab->lock);
  uint32_t index;
  if (slab->fifo_count > slab->quarantine) {
    index = slab->fifo[slab->fifo_head];
    slab->fifo_head = (slab->fifo_head + 1) % (slab->chunk_cap * KILN__SLAB_CHUNK);
    slab->fifo_count--;
  } else {
    if (slab->used == slab->chunk_count * KILN__SLAB_CHUNK) {
      if (slab->used >= (1u << 22)) {
        pthread_mutex_unlock(&slab->lock);
        return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                           "more than %u live objects of one kind in a context", 1u << 22);
      }
      kiln_status st = grow_locked(slab);
      if (st != KILN_SUCCESS) {
        pthread_mutex_unlock(&slab->lock);
        return kiln__error(st, "out of host memory growing a handle table to %u entries",
                           (slab->chunk_count + 1) * KILN__SLAB_CHUNK);
      }
    }
    index = slab->used++;
  }
  unsigned char *e = elem_at_locked(slab, index);
  kiln__handle *h = (kiln__handle *)e;
  uint32_t slot_gen = h->slot_gen ? h->slot_gen : slab->gen_seed + index;
  memset(e, 0, slab->elem_bytes);
  h->slot = index;
  h->slot_gen = slot_gen;
  slab->live++;
  pthread_mutex_unlock(&slab->lock);
  *out = e;
  return KILN_SUCCESS;
}

void kiln__slab_release(kiln__slab *slab, void *elem) {
  kiln__handle *h = elem;
  pthread_mutex_lock(&slab->lock);
  atomic_store(&h->tag, slab->tag | KILN__TAG_DEAD);
  h->slot_gen++;
  if (h->slot_gen == 0) h->slot_gen = 1;
  uint32_t cap = slab->chunk_cap * KILN__SLAB_CHUNK;
  slab->fifo[(slab->fifo_head + slab->fifo_count) % cap] = h->slot;
  slab->fifo_count++;
  slab->live--;
  pthread_mutex_unlock(&slab->lock);
}

void *kiln__slab_at(kiln__slab *slab, uint32_t index) {
  pthread_mutex_lock(&slab->lock);
  void *e = index < slab->used ? elem_at_locked(slab, index) : NULL;
  pthread_mutex_unlock(&slab->lock);
  return e;
}

void *kiln__slab_at_gen(kiln__slab *slab, uint32_t index, uint32_t slot_gen) {
  pthread_mutex_lock(&slab->lock);
  void *e = index < slab->used ? elem_at_locked(slab, index) : NULL;
  if (e && ((kiln__handle *)e)->slot_gen != slot_gen) e = NULL;
  pthread_mutex_unlock(&slab->lock);
  return e;
}

void kiln__slab_each_alive(kiln__slab *slab, void (*fn)(void *elem, void *user), void *user) {
  pthread_mutex_lock(&slab->lock);
  uint32_t used = slab->used;
  pthread_mutex_unlock(&slab->lock);
  for (uint32_t i = 0; i < used; i++) {
    pthread_mutex_lock(&slab->lock);
    kiln__handle *h = (kiln__handle *)elem_at_locked(slab, i);
    pthread_mutex_unlock(&slab->lock);
    if (atomic_load(&h->tag) == slab->tag) fn(h, user);
  }
}
