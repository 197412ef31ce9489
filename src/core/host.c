/* SPDX-License-Identifier: MIT */
/* kiln_host_alloc / kiln_host_free: page-locked host memory from the backend (or
 * page-aligned memory from kiln's allocator), remembered per context in a sorted
 * array so transfers can tell pinned from pageable memory (kiln__host_pinned) and
 * context destroy can free what is left. */
#include <string.h>

#include "core/backend.h"
#include "core/core.h"

#define HOST_ALIGN 4096u

static size_t page_round(size_t bytes) { return (bytes + HOST_ALIGN - 1) / HOST_ALIGN * HOST_ALIGN; }

/* Index of the first block whose base is > p. Called with host_lock. */
static size_t upper_locked(const kiln__context *ctx, uintptr_t p) {
  size_t lo = 0, hi = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ctx->host[mid].base <= p) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The block containing p, or NULL. Called with host_lock. */
static kiln__host_block *find_locked(kiln__context *ctx, uintptr_t p) {
  size_t i = upper_locked(ctx, p);
  if (i == 0) return NULL;
  kiln__host_block *b = &ctx->host[i - 1];
  return p - b->base < b->bytes ? b : NULL;
}

bool kiln__host_pinned(kiln__context *ctx, const void *ptr, size_t bytes) {
  if (!atomic_load_explicit(&ctx->host_count, memory_order_acquire)) return false;
  uintptr_t p = (uintptr_t)ptr;
  pthread_mutex_lock(&ctx->host_lock);
  const kiln__host_block *b = find_locked(ctx, p);
  bool in = b && bytes <= b->bytes - (p - b->base);
  pthread_mutex_unlock(&ctx->host_lock);
  return in;
}

static kiln_status backend_alloc(kiln__context *ctx, size_t bytes, void **ptr, void **native) {
  *native = NULL;
  if (ctx->h.ops->host_alloc) return ctx->h.ops->host_alloc(ctx, bytes, ptr, native);
  *ptr = kiln__alloc_aligned(page_round(bytes), HOST_ALIGN);
  if (!*ptr) return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating %zu bytes", bytes);
  return KILN_SUCCESS;
}

static void backend_free(kiln__context *ctx, void *ptr, size_t bytes, void *native) {
  if (ctx->h.ops->host_free) ctx->h.ops->host_free(ctx, ptr, bytes, native);
  else kiln__free_aligned(ptr, page_round(bytes), HOST_ALIGN);
}

kiln_status kiln_host_alloc(kiln_context context, size_t bytes, void **ptr) {
  KILN__API_ENTER();
  if (!ptr) return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ptr (the out-parameter) is NULL");
  *ptr = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS) return st;
  if (bytes == 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes is 0: ask for at least one byte of host memory");
  if (bytes > SIZE_MAX - HOST_ALIGN)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes is %zu, more than any host allocation can be", bytes);
  kiln__context *ctx = context;
  /* Room in the table first: once the memory exists, recording it cannot fail. */
  pthread_mutex_lock(&ctx->host_lock);
  size_t n = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  if (n == ctx->host_cap) {
    size_t cap = ctx->host_cap ? ctx->host_cap * 2 : 16;
    kiln__host_block *grown = kiln__alloc(cap * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&ctx->host_lock);
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory recording a host allocation");
    }
    if (n) memcpy(grown, ctx->host, n * sizeof *grown);
    kiln__free(ctx->host, ctx->host_cap * sizeof *ctx->host);
    ctx->host = grown;
    ctx->host_cap = cap;
  }
  pthread_mutex_unlock(&ctx->host_lock);
  void *p = NULL, *native = NULL;
  st = backend_alloc(ctx, bytes, &p, &native);
  if (st != KILN_SUCCESS) return st;
  pthread_mutex_lock(&ctx->host_lock);
  n = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  if (n == ctx->host_cap) { /* another thread filled the room meanwhile */
    pthread_mutex_unlock(&ctx->host_lock);
    backend_free(ctx, p, bytes, native);
    return kiln_host_alloc(context, bytes, ptr);
  }
  size_t at = upper_locked(ctx, (uintptr_t)p);
  memmove(&ctx->host[at + 1], &ctx->host[at], (n - at) * sizeof *ctx->host);
  ctx->host[at].base = (uintptr_t)p;
  ctx->host[at].bytes = bytes;
  ctx->host[at].native = native;
  atomic_store_explicit(&ctx->host_count, n + 1, memory_order_release);
  pthread_mutex_unlock(&ctx->host_lock);
  *ptr = p;
  return KILN_SUCCESS;
}

static void wait_stream(void *elem, void *user) {
  (void)user;
  kiln__stream_wait_idle(elem);
}

kiln_status kiln_host_free(kiln_context context, void *ptr) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS) return st;
  if (!ptr) return KILN_SUCCESS;
  kiln__context *ctx = context;
  uintptr_t p = (uintptr_t)ptr;
  pthread_mutex_lock(&ctx->host_lock);
  const kiln__host_block *b = find_locked(ctx, p);
  uintptr_t base = b ? b->base : 0;
  pthread_mutex_unlock(&ctx->host_lock);
  if (!b)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p was not returned by kiln_host_alloc on this context, or was freed already", ptr);
  if (base != p)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p points %zu bytes into the block %p from kiln_host_alloc: free the block's own pointer",
                       ptr, (size_t)(p - base), (void *)base);
  /* No transfer may still use it: wait for every stream (errors stay with them). */
  kiln__slab_each_alive(&ctx->streams, wait_stream, NULL);
  pthread_mutex_lock(&ctx->lock);
  kiln__stream *def = ctx->default_stream;
  pthread_mutex_unlock(&ctx->lock);
  if (def) kiln__stream_wait_idle(def);
  kiln__guard_release_context(ctx); /* a synchronisation point, as kiln_context_synchronize */
  pthread_mutex_lock(&ctx->host_lock);
  size_t n = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  kiln__host_block *blk = find_locked(ctx, p);
  if (!blk || blk->base != p) { /* freed by another thread meanwhile */
    pthread_mutex_unlock(&ctx->host_lock);
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ptr %p was freed by another thread meanwhile", ptr);
  }
  size_t bytes = blk->bytes, at = (size_t)(blk - ctx->host);
  void *native = blk->native;
  memmove(&ctx->host[at], &ctx->host[at + 1], (n - at - 1) * sizeof *ctx->host);
  atomic_store_explicit(&ctx->host_count, n - 1, memory_order_release);
  pthread_mutex_unlock(&ctx->host_lock);
  backend_free(ctx, ptr, bytes, native);
  return KILN_SUCCESS;
}

kiln_status kiln_host_is_pinned(kiln_context context, const void *ptr, size_t bytes, int *pinned) {
  KILN__API_ENTER();
  if (!pinned) return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "pinned (the out-parameter) is NULL");
  *pinned = 0;
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS) return st;
  if (!ptr) return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ptr is NULL");
  *pinned = kiln__host_pinned(context, ptr, bytes ? bytes : 1);
  return KILN_SUCCESS;
}

void kiln__host_teardown(kiln__context *ctx) {
  size_t n = atomic_load(&ctx->host_count);
  if (n) kiln__log(KILN_LOG_INFO, "context destroy: freeing %zu block(s) of host memory from kiln_host_alloc", n);
  for (size_t i = 0; i < n; i++) backend_free(ctx, (void *)ctx->host[i].base, ctx->host[i].bytes, ctx->host[i].native);
  kiln__free(ctx->host, ctx->host_cap * sizeof *ctx->host);
  ctx->host = NULL;
  ctx->host_cap = 0;
  atomic_store(&ctx->host_count, 0);
}
