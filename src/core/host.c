/* SPDX-License-Identifier: MIT */
/* Pinned host memory: kiln_host_alloc / kiln_host_free (page-locked memory from the
 * backend, or page-aligned memory from kiln's allocator) and kiln_host_register /
 * kiln_host_unregister (the program's own memory, page-locked in place where the
 * backend can). Every block is remembered per context in an array sorted by address,
 * so transfers can tell pinned from pageable memory (kiln__host_pinned) and context
 * destroy can release what is left. */
#include <string.h>

#include "core/core.h"

#define HOST_ALIGN 4096u

static size_t page_round(size_t bytes) {
  return (bytes + HOST_ALIGN - 1) / HOST_ALIGN * HOST_ALIGN;
}

/* Index of the first block whose base is > p. Called with host_lock. */
static size_t upper_locked(const kiln__context_obj *ctx, uintptr_t p) {
  size_t lo = 0, hi = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ctx->host[mid].base <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* The block containing p, or NULL. Called with host_lock. */
static kiln__host_block *find_locked(kiln__context_obj *ctx, uintptr_t p) {
  size_t i = upper_locked(ctx, p);
  if (i == 0)
    return NULL;
  kiln__host_block *b = &ctx->host[i - 1];
  return p - b->base < b->bytes ? b : NULL;
}

bool kiln__host_pinned(kiln__context *view, const void *ptr, size_t bytes) {
  kiln__context_obj *ctx = KILN__OBJ(kiln__context_obj, view);
  if (!atomic_load_explicit(&ctx->host_count, memory_order_acquire))
    return false;
  uintptr_t p = (uintptr_t)ptr;
  kiln__host_pool *pool = kiln__host_pool_lock(ctx); /* a slab's blocks are its */
  pthread_mutex_lock(&ctx->host_lock);
  const kiln__host_block *b = find_locked(ctx, p);
  bool in = b && (b->slab ? kiln__host_pool_covers(b->slab, p, bytes)
                          : bytes <= b->bytes - (p - b->base));
  pthread_mutex_unlock(&ctx->host_lock);
  kiln__host_pool_unlock(pool);
  return in;
}

/* ------------------------------------------------------------- backend parts */
kiln_status kiln__host_alloc_plain(size_t bytes, void **ptr) {
  *ptr = kiln__alloc_aligned(page_round(bytes), HOST_ALIGN);
  if (!*ptr)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory allocating %zu bytes",
                       bytes);
  return KILN_SUCCESS;
}

void kiln__host_free_plain(void *ptr, size_t bytes) {
  kiln__free_aligned(ptr, page_round(bytes), HOST_ALIGN);
}

static kiln_status backend_alloc(kiln__context_obj *ctx, size_t bytes, void **ptr, void **native) {
  *native = NULL;
  if (ctx->h.ops->host_alloc)
    return ctx->h.ops->host_alloc(&ctx->view, bytes, ptr, native);
  return kiln__host_alloc_plain(bytes, ptr);
}

static void backend_release(kiln__context_obj *ctx, const kiln__host_block *b) {
  void *p = (void *)b->base;
  if (b->registered) {
    if (ctx->h.ops->host_unregister)
      ctx->h.ops->host_unregister(&ctx->view, p, b->bytes, b->native);
  } else if (ctx->h.ops->host_free) {
    ctx->h.ops->host_free(&ctx->view, p, b->bytes, b->native);
  } else {
    kiln__host_free_plain(p, b->bytes);
  }
}

/* ------------------------------------------------------------- the table */
/* Room for one more block (grown before the memory exists, so recording it cannot
 * fail afterwards, unless another thread took the room: insert_locked says so). */
static kiln_status reserve_room(kiln__context_obj *ctx) {
  pthread_mutex_lock(&ctx->host_lock);
  size_t n = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  if (n == ctx->host_cap) {
    size_t cap = ctx->host_cap ? ctx->host_cap * 2 : 16;
    kiln__host_block *grown = kiln__alloc(cap * sizeof *grown);
    if (!grown) {
      pthread_mutex_unlock(&ctx->host_lock);
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                         "out of host memory recording a block of host memory");
    }
    if (n)
      memcpy(grown, ctx->host, n * sizeof *grown);
    kiln__free(ctx->host, ctx->host_cap * sizeof *ctx->host);
    ctx->host = grown;
    ctx->host_cap = cap;
  }
  pthread_mutex_unlock(&ctx->host_lock);
  return KILN_SUCCESS;
}

/* Record b. Called with host_lock; false when the table is full again. */
static bool insert_locked(kiln__context_obj *ctx, const kiln__host_block *b) {
  size_t n = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  if (n == ctx->host_cap)
    return false;
  size_t at = upper_locked(ctx, b->base);
  memmove(&ctx->host[at + 1], &ctx->host[at], (n - at) * sizeof *ctx->host);
  ctx->host[at] = *b;
  atomic_store_explicit(&ctx->host_count, n + 1, memory_order_release);
  return true;
}

/* ------------------------------------------------------------- the host pool's services */
kiln_status kiln__host_backend_alloc(kiln__context_obj *ctx, size_t bytes, void **ptr,
                                     void **native) {
  return backend_alloc(ctx, bytes, ptr, native);
}

void kiln__host_backend_release(kiln__context_obj *ctx, const kiln__host_block *b) {
  backend_release(ctx, b);
}

kiln_status kiln__host_table_add(kiln__context_obj *ctx, const kiln__host_block *b) {
  for (;;) {
    kiln_status st = reserve_room(ctx);
    if (st != KILN_SUCCESS)
      return st;
    pthread_mutex_lock(&ctx->host_lock);
    bool ok = insert_locked(ctx, b);
    pthread_mutex_unlock(&ctx->host_lock);
    if (ok)
      return KILN_SUCCESS; /* else another thread took the room: again */
  }
}

void kiln__host_table_drop(kiln__context_obj *ctx, uintptr_t base) {
  pthread_mutex_lock(&ctx->host_lock);
  size_t n = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  kiln__host_block *blk = find_locked(ctx, base);
  if (blk && blk->base == base) {
    size_t at = (size_t)(blk - ctx->host);
    memmove(&ctx->host[at], &ctx->host[at + 1], (n - at - 1) * sizeof *ctx->host);
    atomic_store_explicit(&ctx->host_count, n - 1, memory_order_release);
  }
  pthread_mutex_unlock(&ctx->host_lock);
}

struct kiln__host_slab *kiln__host_table_slab(kiln__context_obj *ctx, uintptr_t p,
                                              bool *registered) {
  pthread_mutex_lock(&ctx->host_lock);
  const kiln__host_block *b = find_locked(ctx, p);
  struct kiln__host_slab *slab = b ? b->slab : NULL;
  *registered = b && b->registered;
  pthread_mutex_unlock(&ctx->host_lock);
  return slab;
}

/* The block starting at p, of the kind the caller frees; error naming what p is. */
static kiln_status check_base(kiln__context_obj *ctx, void *ptr, bool registered,
                              const char *fn_made) {
  uintptr_t p = (uintptr_t)ptr;
  pthread_mutex_lock(&ctx->host_lock);
  const kiln__host_block *b = find_locked(ctx, p);
  uintptr_t base = b ? b->base : 0;
  bool reg = b && b->registered;
  pthread_mutex_unlock(&ctx->host_lock);
  if (!b)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p was not returned by %s on this context, or was %s already", ptr,
                       fn_made, registered ? "unregistered" : "freed");
  if (reg != registered)
    return kiln__error(
        KILN_ERROR_INVALID_ARGUMENT, "ptr %p is %s: %s", ptr,
        reg ? "memory registered with kiln_host_register" : "a block from kiln_host_alloc",
        reg ? "give it back with kiln_host_unregister" : "free it with kiln_host_free");
  if (base != p)
    return kiln__error(
        KILN_ERROR_INVALID_ARGUMENT,
        "ptr %p points %zu bytes into the block %p from %s: pass the block's own pointer", ptr,
        (size_t)(p - base), (void *)base, fn_made);
  return KILN_SUCCESS;
}

static void wait_stream(void *elem, void *user) {
  (void)user;
  kiln__stream_wait_idle(elem);
}

/* Wait until no queued transfer can use a block any more, take it out of the table and
 * release it. */
static kiln_status drop_block(kiln__context_obj *ctx, void *ptr) {
  kiln__slab_each_alive(&ctx->streams, wait_stream, NULL); /* errors stay with the streams */
  pthread_mutex_lock(&ctx->lock);
  kiln__stream_obj *def = ctx->default_stream;
  pthread_mutex_unlock(&ctx->lock);
  if (def)
    kiln__stream_wait_idle(def);
  kiln__guard_release_context(ctx); /* a synchronisation point, as kiln_context_synchronize */
  uintptr_t p = (uintptr_t)ptr;
  pthread_mutex_lock(&ctx->host_lock);
  size_t n = atomic_load_explicit(&ctx->host_count, memory_order_relaxed);
  kiln__host_block *blk = find_locked(ctx, p);
  if (!blk || blk->base != p) { /* released by another thread meanwhile */
    pthread_mutex_unlock(&ctx->host_lock);
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p was released by another thread meanwhile", ptr);
  }
  kiln__host_block b = *blk;
  size_t at = (size_t)(blk - ctx->host);
  memmove(&ctx->host[at], &ctx->host[at + 1], (n - at - 1) * sizeof *ctx->host);
  atomic_store_explicit(&ctx->host_count, n - 1, memory_order_release);
  pthread_mutex_unlock(&ctx->host_lock);
  backend_release(ctx, &b);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- API */
kiln_status kiln_host_alloc(kiln_context context, size_t bytes, void **ptr) {
  KILN__API_ENTER();
  if (!ptr)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ptr (the out-parameter) is NULL");
  *ptr = NULL;
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (bytes == 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "bytes is 0: ask for at least one byte of host memory");
  if (bytes > SIZE_MAX - HOST_ALIGN)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "bytes is %zu, more than any host allocation can be", bytes);
  return kiln__host_pool_alloc(context, bytes, ptr);
}

kiln_status kiln_host_free(kiln_context context, void *ptr) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!ptr)
    return KILN_SUCCESS;
  return kiln__host_pool_free(context, ptr, NULL);
}

kiln_status kiln_host_register(kiln_context context, void *ptr, size_t bytes) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!ptr)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr is NULL: pass the start of the memory to register");
  if (bytes == 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes is 0: register at least one byte");
  uintptr_t p = (uintptr_t)ptr;
  if (bytes > UINTPTR_MAX - p)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p + bytes %zu runs past the end of the address space", ptr, bytes);
  kiln__context_obj *ctx = context;
  for (;;) {
    if ((st = reserve_room(ctx)) != KILN_SUCCESS)
      return st;
    /* No overlap with a block the context knows. */
    pthread_mutex_lock(&ctx->host_lock);
    size_t at = upper_locked(ctx, p + bytes - 1);
    const kiln__host_block *prev = at ? &ctx->host[at - 1] : NULL;
    bool overlap = prev && prev->base + prev->bytes > p;
    uintptr_t ob = overlap ? prev->base : 0;
    size_t obytes = overlap ? prev->bytes : 0;
    pthread_mutex_unlock(&ctx->host_lock);
    if (overlap)
      return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                         "[%p, +%zu) overlaps the block [%p, +%zu) this context already has pinned",
                         ptr, bytes, (void *)ob, obytes);
    kiln__host_block b = {p, bytes, NULL, true, NULL};
    if (ctx->h.ops->host_register &&
        (st = ctx->h.ops->host_register(&ctx->view, ptr, bytes, &b.native)) != KILN_SUCCESS)
      return st;
    pthread_mutex_lock(&ctx->host_lock);
    bool ok = insert_locked(ctx, &b);
    pthread_mutex_unlock(&ctx->host_lock);
    if (ok)
      return KILN_SUCCESS;
    backend_release(ctx, &b);
  }
}

kiln_status kiln_host_unregister(kiln_context context, void *ptr) {
  KILN__API_ENTER();
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!ptr)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr is NULL: pass the pointer given to kiln_host_register");
  if ((st = check_base(context, ptr, true, "kiln_host_register")) != KILN_SUCCESS)
    return st;
  return drop_block(context, ptr);
}

kiln_status kiln_host_is_pinned(kiln_context context, const void *ptr, size_t bytes, int *pinned) {
  KILN__API_ENTER();
  if (!pinned)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "pinned (the out-parameter) is NULL");
  *pinned = 0;
  kiln_status st = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (st != KILN_SUCCESS)
    return st;
  if (!ptr)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ptr is NULL");
  *pinned = kiln__host_pinned(&context->view, ptr, bytes ? bytes : 1);
  return KILN_SUCCESS;
}

void kiln__host_teardown(kiln__context_obj *ctx) {
  kiln__host_pool_teardown(ctx); /* its slabs are in the table */
  size_t n = atomic_load(&ctx->host_count);
  if (n)
    kiln__log(KILN_LOG_INFO,
              "context destroy: releasing %zu slab(s) or registration(s) of pinned host memory", n);
  for (size_t i = 0; i < n; i++)
    backend_release(ctx, &ctx->host[i]);
  kiln__free(ctx->host, ctx->host_cap * sizeof *ctx->host);
  ctx->host = NULL;
  ctx->host_cap = 0;
  atomic_store(&ctx->host_count, 0);
}
