/* SPDX-License-Identifier: MIT */
/* Host allocation routing (kiln_set_allocator). The allocator may only change while no
 * context exists, so every block is freed by the allocator that made it. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kcache/kcache.h"

_Atomic int kiln__live_contexts;

static kiln_allocator current; /* alloc == NULL: the C library */
static pthread_mutex_t alloc_lock = PTHREAD_MUTEX_INITIALIZER;

kiln_status kiln_set_allocator(const kiln_allocator *allocator) {
  KILN__API_ENTER();
  if (allocator) {
    if (allocator->struct_size < sizeof(kiln_allocator))
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                         "allocator->struct_size is %zu, expected %zu: initialise it with "
                         "KILN_ALLOCATOR_INIT",
                         allocator->struct_size, sizeof(kiln_allocator));
    if (!allocator->alloc || !allocator->free)
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                         "allocator->%s is NULL: both alloc and free are required",
                         allocator->alloc ? "free" : "alloc");
  }
  pthread_mutex_lock(&alloc_lock);
  int live = atomic_load(&kiln__live_contexts);
  if (live > 0) {
    pthread_mutex_unlock(&alloc_lock);
    kiln__error(KILN_ERROR_INVALID_STATE, "kiln_set_allocator called while %d context(s) exist",
                live);
    kiln__error_suggest("destroy every context first: their memory must be freed by the "
                        "allocator that made it");
    return KILN_ERROR_INVALID_STATE;
  }
  kiln__kcache_drop_memory(); /* the cache's in-process copies came from the old allocator */
  if (allocator)
    current = *allocator;
  else
    memset(&current, 0, sizeof current);
  pthread_mutex_unlock(&alloc_lock);
  return KILN_SUCCESS;
}

#define KILN__MIN_ALIGN 16u

void *kiln__alloc_aligned(size_t bytes, size_t align) {
  if (align < KILN__MIN_ALIGN)
    align = KILN__MIN_ALIGN;
  if (bytes == 0)
    bytes = 1;
  if (current.alloc)
    return current.alloc(bytes, align, current.user);
  void *p = NULL;
  if (posix_memalign(&p, align, bytes) != 0)
    return NULL;
  return p;
}

void kiln__free_aligned(void *ptr, size_t bytes, size_t align) {
  if (!ptr)
    return;
  if (align < KILN__MIN_ALIGN)
    align = KILN__MIN_ALIGN;
  if (bytes == 0)
    bytes = 1;
  if (current.free)
    current.free(ptr, bytes, align, current.user);
  else
    free(ptr);
}

void *kiln__alloc(size_t bytes) {
  return kiln__alloc_aligned(bytes, KILN__MIN_ALIGN);
}

void *kiln__calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size)
    return NULL;
  void *p = kiln__alloc(count * size);
  if (p)
    memset(p, 0, count * size);
  return p;
}

void kiln__free(void *ptr, size_t bytes) {
  kiln__free_aligned(ptr, bytes, KILN__MIN_ALIGN);
}

void *kiln_allocator_alloc(size_t bytes, size_t align) {
  if (align & (align - 1))
    return NULL; /* not a power of two: refused like an exhausted allocator */
  return kiln__alloc_aligned(bytes, align);
}

void kiln_allocator_free(void *ptr, size_t bytes, size_t align) {
  kiln__free_aligned(ptr, bytes, align);
}
