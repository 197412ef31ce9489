/* SPDX-License-Identifier: MIT */
/* The pinned host pool behind kiln_host_alloc / kiln_host_free / kiln_host_free_on:
 * page-locked slabs from the backend's host_alloc (CUDA cuMemHostAlloc, OpenCL a mapped
 * CL_MEM_ALLOC_HOST_PTR buffer, cpu page-aligned memory), carved into power-of-two size
 * classes from 4 KiB (page aligned) with LIFO free lists; larger requests get a backend
 * allocation of their own, returned once free. Every slab is one entry of the
 * context's host table (host.c), so transfers see its blocks as pinned.
 * Invariants, all under the pool's lock: a carved block is LIVE (the program's), PENDING
 * (freed; `deps` names the work queued on every stream of the context at its free, it
 * is in the pending list until all of it completed; a blocking free has no deps and is
 * in no list while it waits), FREE (in its class's list, poisoned under ASan) or
 * QUARANTINED (KILN_POOL=debug: never reused). A slab's `busy` counts its blocks that
 * are not FREE; a slab with none can go back to the backend. Lock order: the pool's
 * lock, then the context's host_lock (the table). */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kiln/host.h"
#include "kiln/pool.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HP_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define HP_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HP_POISON(p, n) ((void)(p), (void)(n))
#define HP_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define HP_PAGE 4096u
#define HP_MIN_CLASS 4096u
#define HP_CLASSES 9u              /* 4 KiB .. 1 MiB */
#define HP_SLAB_MIN (2u << 20)     /* class slabs: at least this, and 4 blocks */
#define HP_HUGE ((size_t)-1 >> 1u) /* a slab's cls when it holds one huge block */

enum { HB_FREE, HB_LIVE, HB_PENDING, HB_QUARANTINED };
enum { MODE_ON, MODE_OFF, MODE_DEBUG };

typedef struct hp_block {
  struct kiln__host_slab *slab;
  unsigned char *ptr;
  size_t used; /* live: the bytes asked for */
  unsigned char state;
  uint32_t ndeps, deps_cap;
  kiln__dep *deps; /* PENDING: work that must complete first (kiln__alloc'd, deps_cap) */
  struct hp_block *prev, *next;
} hp_block;

typedef struct kiln__host_slab {
  unsigned char *base;
  size_t bytes, block_bytes;
  size_t cls; /* class index, or HP_HUGE */
  uint32_t nblocks, carved, busy;
  void *native;
  hp_block *blocks; /* nblocks records; the first `carved` are blocks */
  struct kiln__host_slab *prev, *next;
} hp_slab;

typedef struct hp_class {
  size_t bytes, slab_bytes;
  hp_block *free_head;
  hp_slab *carving;
  uint64_t hits, misses, live, free;
} hp_class;

typedef struct kiln__host_pool {
  pthread_mutex_t lock;
  int mode;
  hp_class classes[HP_CLASSES];
  hp_block *pending; /* PENDING blocks with deps, newest first */
  hp_slab *slabs;
  uint64_t live_block_bytes, pending_count;
  kiln_pool_stats s;
} hp_pool;

static int pool_mode(void) {
  return kiln__env_word("KILN_POOL", kiln__env_pool_words, MODE_ON); /* as pool.c's */
}

static size_t page_round(size_t bytes) {
  return (bytes + HP_PAGE - 1) / HP_PAGE * HP_PAGE;
}

/* The class serving `bytes`, or HP_CLASSES when none does. */
static size_t class_of(size_t bytes) {
  size_t c = 0;
  while (c < HP_CLASSES && ((size_t)HP_MIN_CLASS << c) < bytes)
    c++;
  return c;
}

static void list_push(hp_block **head, hp_block *b) {
  b->prev = NULL;
  b->next = *head;
  if (*head)
    (*head)->prev = b;
  *head = b;
}

static void list_remove(hp_block **head, hp_block *b) {
  if (b->prev)
    b->prev->next = b->next;
  else
    *head = b->next;
  if (b->next)
    b->next->prev = b->prev;
  b->prev = b->next = NULL;
}

static void note_reserved(hp_pool *p, int64_t delta) {
  p->s.bytes_reserved = (uint64_t)((int64_t)p->s.bytes_reserved + delta);
  if (p->s.bytes_reserved > p->s.bytes_reserved_peak)
    p->s.bytes_reserved_peak = p->s.bytes_reserved;
}

static uint64_t cached_bytes(const hp_pool *p) {
  return p->s.bytes_reserved - p->live_block_bytes;
}

/* The pool of the context, made at its first use. */
static kiln_status pool_get(kiln__context_obj *ctx, hp_pool **out) {
  pthread_mutex_lock(&ctx->host_lock);
  hp_pool *p = ctx->host_pool;
  if (!p) {
    p = kiln__calloc(1, sizeof *p);
    if (!p) {
      pthread_mutex_unlock(&ctx->host_lock);
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                         "out of host memory creating the context's pinned host pool");
    }
    pthread_mutex_init(&p->lock, NULL);
    p->mode = pool_mode();
    p->s.struct_size = sizeof p->s;
    p->s.class_count = HP_CLASSES;
    for (unsigned c = 0; c < HP_CLASSES; c++) {
      hp_class *pc = &p->classes[c];
      pc->bytes = (size_t)HP_MIN_CLASS << c;
      pc->slab_bytes = 4 * pc->bytes > HP_SLAB_MIN ? 4 * pc->bytes : HP_SLAB_MIN;
    }
    ctx->host_pool = p;
  }
  pthread_mutex_unlock(&ctx->host_lock);
  *out = p;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- slabs */
static void slab_unlink_release(kiln__context_obj *ctx, hp_pool *p, hp_slab *sl) {
  if (sl->prev)
    sl->prev->next = sl->next;
  else
    p->slabs = sl->next;
  if (sl->next)
    sl->next->prev = sl->prev;
  if (sl->cls != HP_HUGE) {
    hp_class *pc = &p->classes[sl->cls];
    for (uint32_t i = 0; i < sl->carved; i++)
      if (sl->blocks[i].state == HB_FREE) {
        list_remove(&pc->free_head, &sl->blocks[i]);
        pc->free--;
      }
    if (pc->carving == sl)
      pc->carving = NULL;
  }
  kiln__guard_release_range(sl->base, sl->bytes);
  HP_UNPOISON(sl->base, sl->bytes);
  kiln__host_table_drop(ctx, (uintptr_t)sl->base);
  kiln__host_block hb = {(uintptr_t)sl->base, sl->bytes, sl->native, false, NULL};
  kiln__host_backend_release(ctx, &hb);
  note_reserved(p, -(int64_t)sl->bytes);
  p->s.slabs--;
  p->s.device_frees++;
  kiln__free(sl->blocks, sl->nblocks * sizeof *sl->blocks);
  kiln__free(sl, sizeof *sl);
}

/* Return idle class slabs while more than `keep` bytes are cached; the bytes returned. */
static uint64_t release_idle(kiln__context_obj *ctx, hp_pool *p, uint64_t keep) {
  uint64_t released = 0;
  for (hp_slab *sl = p->slabs, *next; sl; sl = next) {
    next = sl->next;
    if (cached_bytes(p) <= keep)
      break;
    if (sl->cls != HP_HUGE && !sl->busy) {
      released += sl->bytes;
      slab_unlink_release(ctx, p, sl);
    }
  }
  return released;
}

/* A slab of `bytes` from the backend, in the table. On a backend failure the pool's idle
 * slabs go back once and the allocation is tried again (the message names the bytes). */
static kiln_status slab_new(kiln__context_obj *ctx, hp_pool *p, size_t bytes, size_t cls,
                            uint32_t nblocks, hp_slab **out) {
  *out = NULL;
  hp_slab *sl = kiln__calloc(1, sizeof *sl);
  hp_block *blocks = sl ? kiln__calloc(nblocks, sizeof *blocks) : NULL;
  if (!blocks) {
    kiln__free(sl, sizeof *sl);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory for the records of a pinned slab");
  }
  void *mem = NULL, *native = NULL;
  kiln_status s = kiln__host_backend_alloc(ctx, bytes, &mem, &native);
  if ((s == KILN_ERROR_OUT_OF_HOST_MEMORY || s == KILN_ERROR_OUT_OF_DEVICE_MEMORY) &&
      cached_bytes(p)) {
    uint64_t trimmed = release_idle(ctx, p, 0);
    if (trimmed) {
      kiln__log(KILN_LOG_INFO,
                "pinned allocation of %zu bytes failed: trimmed %llu cached bytes of the host "
                "pool and retrying",
                bytes, (unsigned long long)trimmed);
      s = kiln__host_backend_alloc(ctx, bytes, &mem, &native);
      if (s != KILN_SUCCESS)
        kiln__error_suggest("the host pool already returned its %llu cached bytes and the "
                            "allocation failed again: free pinned blocks or ask for less",
                            (unsigned long long)trimmed);
    }
  }
  if (s != KILN_SUCCESS) {
    kiln__free(blocks, nblocks * sizeof *blocks);
    kiln__free(sl, sizeof *sl);
    return s;
  }
  sl->base = mem;
  sl->bytes = bytes;
  sl->native = native;
  sl->cls = cls;
  sl->nblocks = nblocks;
  sl->block_bytes = cls == HP_HUGE ? bytes : p->classes[cls].bytes;
  sl->blocks = blocks;
  kiln__host_block hb = {(uintptr_t)mem, bytes, native, false, sl};
  if ((s = kiln__host_table_add(ctx, &hb)) != KILN_SUCCESS) {
    kiln__host_backend_release(ctx, &hb);
    kiln__free(blocks, nblocks * sizeof *blocks);
    kiln__free(sl, sizeof *sl);
    return s;
  }
  HP_POISON(mem, bytes);
  sl->next = p->slabs;
  if (p->slabs)
    p->slabs->prev = sl;
  p->slabs = sl;
  note_reserved(p, (int64_t)bytes);
  p->s.slabs++;
  p->s.device_allocs++;
  *out = sl;
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- blocks */
static void block_issue(hp_pool *p, hp_block *b, size_t bytes) {
  b->state = HB_LIVE;
  b->used = bytes;
  b->slab->busy++;
  HP_UNPOISON(b->ptr, bytes); /* the rest of the block stays poisoned */
  p->live_block_bytes += b->slab->block_bytes;
  p->s.allocs++;
  p->s.bytes_in_use += bytes;
  if (p->s.bytes_in_use > p->s.bytes_in_use_peak)
    p->s.bytes_in_use_peak = p->s.bytes_in_use;
  if (b->slab->cls == HP_HUGE)
    p->s.huge_live++;
  else
    p->classes[b->slab->cls].live++;
}

/* A freed block whose work has completed: back to its class, quarantine, or (huge) the
 * backend. The guard forgets its ranges inside the block first. */
static void block_return(kiln__context_obj *ctx, hp_pool *p, hp_block *b) {
  hp_slab *sl = b->slab;
  kiln__free(b->deps, b->deps_cap * sizeof *b->deps);
  b->deps = NULL;
  b->ndeps = b->deps_cap = 0;
  kiln__guard_release_range(b->ptr, sl->block_bytes);
  if (sl->cls == HP_HUGE) {
    sl->busy--;
    slab_unlink_release(ctx, p, sl);
    return;
  }
  HP_POISON(b->ptr, sl->block_bytes);
  if (p->mode == MODE_DEBUG) {
    b->state = HB_QUARANTINED;
    return;
  }
  b->state = HB_FREE;
  sl->busy--;
  hp_class *pc = &p->classes[sl->cls];
  list_push(&pc->free_head, b);
  pc->free++;
}

/* Return the pending blocks whose work has completed (wait: all, waiting for it). */
static void pending_poll(kiln__context_obj *ctx, hp_pool *p, bool wait) {
  for (hp_block *b = p->pending, *next; b; b = next) {
    next = b->next;
    uint32_t left = 0;
    for (uint32_t i = 0; i < b->ndeps; i++) {
      if (wait)
        kiln__dep_wait(&b->deps[i], UINT64_MAX);
      else if (!kiln__dep_done(&b->deps[i]))
        b->deps[left++] = b->deps[i];
    }
    b->ndeps = left;
    if (left)
      continue;
    list_remove(&p->pending, b);
    p->pending_count--;
    block_return(ctx, p, b);
  }
}

static kiln_status alloc_locked(kiln__context_obj *ctx, hp_pool *p, size_t bytes, void **ptr) {
  size_t c = p->mode == MODE_OFF ? HP_CLASSES : class_of(bytes);
  if (c == HP_CLASSES) {
    hp_slab *sl;
    kiln_status s = slab_new(ctx, p, page_round(bytes), HP_HUGE, 1, &sl);
    if (s != KILN_SUCCESS)
      return s;
    hp_block *b = &sl->blocks[0];
    b->slab = sl;
    b->ptr = sl->base;
    sl->carved = 1;
    p->s.misses++;
    block_issue(p, b, bytes);
    *ptr = b->ptr;
    return KILN_SUCCESS;
  }
  hp_class *pc = &p->classes[c];
  hp_block *b = pc->free_head;
  if (b) {
    list_remove(&pc->free_head, b);
    pc->free--;
    pc->hits++;
    p->s.hits++;
  } else {
    hp_slab *sl = pc->carving;
    if (!sl) {
      kiln_status s =
          slab_new(ctx, p, pc->slab_bytes, c, (uint32_t)(pc->slab_bytes / pc->bytes), &sl);
      if (s != KILN_SUCCESS)
        return s;
      pc->carving = sl;
    }
    b = &sl->blocks[sl->carved];
    b->slab = sl;
    b->ptr = sl->base + (size_t)sl->carved * pc->bytes;
    if (++sl->carved == sl->nblocks)
      pc->carving = NULL;
    pc->misses++;
    p->s.misses++;
  }
  block_issue(p, b, bytes);
  *ptr = b->ptr;
  return KILN_SUCCESS;
}

kiln_status kiln__host_pool_alloc(kiln__context_obj *ctx, size_t bytes, void **ptr) {
  hp_pool *p;
  kiln_status s = pool_get(ctx, &p);
  if (s != KILN_SUCCESS)
    return s;
  pthread_mutex_lock(&p->lock);
  if (p->pending)
    pending_poll(ctx, p, false);
  s = alloc_locked(ctx, p, bytes, ptr);
  pthread_mutex_unlock(&p->lock);
  return s;
}

/* The live block starting at ptr, or an error naming what ptr is. Called with the pool's
 * lock, or where the context has no pool yet (no slab exists then). */
static kiln_status find_live(kiln__context_obj *ctx, void *ptr, hp_block **out) {
  *out = NULL;
  uintptr_t a = (uintptr_t)ptr;
  bool registered = false;
  hp_slab *sl = kiln__host_table_slab(ctx, a, &registered);
  if (registered) {
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p is memory registered with kiln_host_register: give it back with "
                       "kiln_host_unregister",
                       ptr);
  }
  if (!sl)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p was not returned by kiln_host_alloc on this context, or was "
                       "freed already",
                       ptr);
  size_t off = (size_t)(a - (uintptr_t)sl->base), i = off / sl->block_bytes;
  if (i >= sl->carved)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p was not returned by kiln_host_alloc on this context", ptr);
  hp_block *b = &sl->blocks[i];
  if (b->ptr != ptr)
    return kiln__error(
        KILN_ERROR_INVALID_ARGUMENT,
        "ptr %p points %zu bytes into the block %p from kiln_host_alloc: pass the block's own "
        "pointer",
        ptr, (size_t)(a - (uintptr_t)b->ptr), (void *)b->ptr);
  if (b->state != HB_LIVE) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                "ptr %p was freed already (kiln_host_free or kiln_host_free_on): a second free "
                "is refused",
                ptr);
    kiln__error_suggest("free each pinned block once");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  *out = b;
  return KILN_SUCCESS;
}

/* A freed block stops counting as in use (its memory is still reserved until it returns). */
static void note_freed(hp_pool *p, hp_block *b) {
  b->state = HB_PENDING;
  p->s.frees++;
  p->s.bytes_in_use -= b->used;
  p->live_block_bytes -= b->slab->block_bytes;
  if (b->slab->cls == HP_HUGE)
    p->s.huge_live--;
  else
    p->classes[b->slab->cls].live--;
}

typedef struct dep_fill {
  kiln__dep *d;
  uint32_t n, cap;
} dep_fill;

static void count_stream(void *elem, void *user) {
  (void)elem;
  ((dep_fill *)user)->cap++;
}

static void add_dep(dep_fill *f, kiln__stream_obj *s) {
  if (f->n == f->cap)
    return; /* a stream made during the call: none of its work is older than the free */
  kiln__dep d = {&s->view, atomic_load(&s->uid), atomic_load(&s->submitted)};
  if (d.uid && !kiln__dep_done(&d))
    f->d[f->n++] = d;
}

static void fill_stream(void *elem, void *user) {
  add_dep(user, elem);
}

static void wait_stream(void *elem, void *user) {
  (void)user;
  kiln__stream_wait_idle(elem);
}

kiln_status kiln__host_pool_free(kiln__context_obj *ctx, void *ptr, kiln__stream_obj *stream) {
  /* A free never makes the pool (whose allocation could fail and hide what ptr is):
   * without one no block was handed out, and find_live says what ptr is (registered
   * memory, or nothing of this context). */
  pthread_mutex_lock(&ctx->host_lock);
  hp_pool *p = ctx->host_pool;
  pthread_mutex_unlock(&ctx->host_lock);
  hp_block *b;
  kiln_status s;
  if (!p)
    return find_live(ctx, ptr, &b);
  dep_fill f = {NULL, 0, 0};
  if (stream) { /* the work queued so far on every stream of the context */
    /* ptr is checked before anything is allocated for it: a bad pointer is
     * INVALID_ARGUMENT whatever memory is left (checked again below, under the lock
     * that claims the block, since another thread may free it meanwhile). */
    pthread_mutex_lock(&p->lock);
    s = find_live(ctx, ptr, &b);
    pthread_mutex_unlock(&p->lock);
    if (s != KILN_SUCCESS)
      return s;
    kiln__slab_each_alive(&ctx->streams, count_stream, &f);
    f.cap++; /* the default stream */
    if (!(f.d = kiln__alloc(f.cap * sizeof *f.d)))
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                         "out of host memory recording the streams kiln_host_free_on waits for "
                         "(ptr %p stays allocated)",
                         ptr);
    uint32_t cap = f.cap;
    f.cap--;
    kiln__slab_each_alive(&ctx->streams, fill_stream, &f);
    f.cap = cap;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->default_stream)
      add_dep(&f, ctx->default_stream);
    pthread_mutex_unlock(&ctx->lock);
  }
  pthread_mutex_lock(&p->lock);
  s = find_live(ctx, ptr, &b);
  if (s != KILN_SUCCESS) {
    pthread_mutex_unlock(&p->lock);
    kiln__free(f.d, f.cap * sizeof *f.d);
    return s;
  }
  note_freed(p, b);
  if (stream) {
    if (f.n) {
      b->deps = f.d;
      b->ndeps = f.n;
      b->deps_cap = f.cap;
      list_push(&p->pending, b);
      p->pending_count++;
    } else {
      kiln__free(f.d, f.cap * sizeof *f.d);
      block_return(ctx, p, b);
    }
    pthread_mutex_unlock(&p->lock);
    return KILN_SUCCESS;
  }
  /* Blocking: the block is PENDING (no deps, in no list) while the context drains. */
  pthread_mutex_unlock(&p->lock);
  kiln__slab_each_alive(&ctx->streams, wait_stream, NULL); /* errors stay with the streams */
  pthread_mutex_lock(&ctx->lock);
  kiln__stream_obj *def = ctx->default_stream;
  pthread_mutex_unlock(&ctx->lock);
  if (def)
    kiln__stream_wait_idle(def);
  kiln__guard_release_context(ctx); /* a synchronisation point, as kiln_context_synchronize */
  pthread_mutex_lock(&p->lock);
  block_return(ctx, p, b);
  pthread_mutex_unlock(&p->lock);
  return KILN_SUCCESS;
}

kiln_status kiln__host_pool_free_now(kiln__context_obj *ctx, void *ptr) {
  pthread_mutex_lock(&ctx->host_lock);
  hp_pool *p = ctx->host_pool;
  pthread_mutex_unlock(&ctx->host_lock);
  if (!p)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "ptr %p was not returned by kiln_host_alloc on this context", ptr);
  pthread_mutex_lock(&p->lock);
  hp_block *b;
  kiln_status s = find_live(ctx, ptr, &b);
  if (s == KILN_SUCCESS) {
    note_freed(p, b);
    block_return(ctx, p, b);
  }
  pthread_mutex_unlock(&p->lock);
  return s;
}

uint64_t kiln__host_pool_trim(kiln__context_obj *ctx, uint64_t keep) {
  pthread_mutex_lock(&ctx->host_lock);
  hp_pool *p = ctx->host_pool;
  pthread_mutex_unlock(&ctx->host_lock);
  if (!p)
    return 0;
  pthread_mutex_lock(&p->lock);
  pending_poll(ctx, p, true);
  uint64_t released = release_idle(ctx, p, keep);
  pthread_mutex_unlock(&p->lock);
  return released;
}

void kiln__host_pool_teardown(kiln__context_obj *ctx) {
  hp_pool *p = ctx->host_pool;
  if (!p)
    return;
  for (hp_slab *sl = p->slabs, *next; sl; sl = next) {
    next = sl->next;
    HP_UNPOISON(sl->base, sl->bytes); /* the table's entry releases the memory */
    for (uint32_t i = 0; i < sl->carved; i++)
      kiln__free(sl->blocks[i].deps, sl->blocks[i].deps_cap * sizeof(kiln__dep));
    kiln__free(sl->blocks, sl->nblocks * sizeof *sl->blocks);
    kiln__free(sl, sizeof *sl);
  }
  pthread_mutex_destroy(&p->lock);
  kiln__free(p, sizeof *p);
  ctx->host_pool = NULL;
}

/* For kiln__host_pinned (host.c), which holds host_lock inside the pool's lock. */
kiln__host_pool *kiln__host_pool_lock(kiln__context_obj *ctx) {
  pthread_mutex_lock(&ctx->host_lock);
  hp_pool *p = ctx->host_pool;
  pthread_mutex_unlock(&ctx->host_lock);
  if (p)
    pthread_mutex_lock(&p->lock);
  return p;
}

void kiln__host_pool_unlock(kiln__host_pool *p) {
  if (p)
    pthread_mutex_unlock(&p->lock);
}

bool kiln__host_pool_covers(const struct kiln__host_slab *sl, uintptr_t p, size_t bytes) {
  size_t i = (size_t)(p - (uintptr_t)sl->base) / sl->block_bytes;
  if (i >= sl->carved)
    return false;
  const hp_block *b = &sl->blocks[i];
  size_t off = (size_t)(p - (uintptr_t)b->ptr);
  return b->state == HB_LIVE && off < b->used && bytes <= b->used - off;
}

/* ------------------------------------------------------------- public API */
kiln_status kiln_host_free_on(kiln_context context, void *ptr, kiln_stream stream) {
  KILN__API_ENTER();
  kiln_status s = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (s != KILN_SUCCESS)
    return s;
  if (!ptr)
    return KILN_SUCCESS;
  if (!stream) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "stream is NULL: kiln_host_free_on orders the free after a stream's work");
    kiln__error_suggest("pass the stream of the block's last transfer, or call kiln_host_free "
                        "for a blocking free");
    return KILN_ERROR_INVALID_HANDLE;
  }
  if ((s = kiln__check_handle(stream, KILN__TAG_STREAM, "stream")) != KILN_SUCCESS)
    return s;
  if (stream->h.ctx != context)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "stream %p belongs to another context than ptr's (%p)", (void *)stream,
                       (void *)context);
  return kiln__host_pool_free(context, ptr, stream);
}

kiln_status kiln_host_pool_trim(kiln_context context, size_t bytes_to_keep) {
  KILN__API_ENTER();
  kiln_status s = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (s != KILN_SUCCESS)
    return s;
  kiln__host_pool_trim(context, bytes_to_keep);
  return KILN_SUCCESS;
}

kiln_status kiln_host_pool_get_stats(kiln_context context, kiln_pool_stats *stats) {
  KILN__API_ENTER();
  if (!stats)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stats is NULL");
  if (stats->struct_size < sizeof(kiln_pool_stats))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "stats->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_POOL_STATS_INIT",
                       stats->struct_size, sizeof(kiln_pool_stats));
  kiln_status s = kiln__check_alive(context, KILN__TAG_CONTEXT, "context");
  if (s != KILN_SUCCESS)
    return s;
  hp_pool *p;
  if ((s = pool_get(context, &p)) != KILN_SUCCESS)
    return s;
  pthread_mutex_lock(&p->lock);
  if (p->pending)
    pending_poll(context, p, false);
  *stats = p->s;
  stats->struct_size = sizeof(kiln_pool_stats);
  stats->bytes_cached = cached_bytes(p);
  uint64_t largest = 0;
  for (const hp_slab *sl = p->slabs; sl; sl = sl->next) {
    if (sl->cls == HP_HUGE)
      continue;
    uint64_t run = 0; /* adjacent free blocks, then the uncarved tail */
    for (uint32_t i = 0; i < sl->nblocks; i++) {
      run = i >= sl->carved || sl->blocks[i].state == HB_FREE ? run + sl->block_bytes : 0;
      if (run > largest)
        largest = run;
    }
  }
  stats->largest_free_bytes = largest < stats->bytes_cached ? largest : stats->bytes_cached;
  stats->fragmentation = stats->bytes_cached
                             ? 1.0 - (double)stats->largest_free_bytes / (double)stats->bytes_cached
                             : 0.0;
  stats->pending_frees = p->pending_count;
  for (unsigned c = 0; c < HP_CLASSES; c++) {
    const hp_class *pc = &p->classes[c];
    kiln_pool_class_stats *cs = &stats->classes[c];
    cs->block_bytes = pc->bytes;
    cs->hits = pc->hits;
    cs->misses = pc->misses;
    cs->live = pc->live;
    cs->free = pc->free;
  }
  pthread_mutex_unlock(&p->lock);
  return KILN_SUCCESS;
}
