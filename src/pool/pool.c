/* SPDX-License-Identifier: MIT */
/* Device pools, a service of the core: slabs from the backend's buffer_create, blocks
 * carved from them with buffer_view_create (the only ways it reaches a device). Size
 * classes (powers of two) keep LIFO free lists; larger requests are best-fit over
 * size bins with splitting and coalescing; huge ones get a slab of their own.
 * Invariants, all under the pool's lock: every block is LIVE (its handle alive), FREE
 * (in its class's list or its size bin; a huge one only until its free completes) or
 * QUARANTINED (KILN_POOL=debug: never reused); a block's `dep` is the free that gave it
 * back, which every use of its previous life precedes; a handle object is reused only
 * once that dep is done, else it waits in the retire list. Called by the public
 * kiln_pool_* functions and by the core (the "device pools" entries of core.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "trace/trace.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define POOL_REDZONE 64u /* bytes after every block (ASan builds): out-of-bounds shows */
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#define POOL_REDZONE 0u
#endif

#define MAX_POOLS 4096u
#define FIT_BINS 64u
#define LIFO_SCAN 4 /* free-list entries looked at for one freed on the caller's stream */

enum { SLAB_CLASS, SLAB_FIT, SLAB_HUGE };
enum { BLOCK_FREE, BLOCK_LIVE, BLOCK_QUARANTINED };
enum { MODE_ON, MODE_OFF, MODE_DEBUG };
enum { ALIVE = 0, DEAD_DESTROYED = 1, DEAD_CONTEXT = 2 };

struct pool_slab;
typedef struct kiln__pool_block {
  kiln__buffer view; /* what its buffers take as native (view.bytes: the block's size) */
  struct pool_slab *slab;
  size_t offset, bytes;  /* in the slab */
  size_t used;           /* live: the bytes asked for */
  kiln__dep dep;         /* the free that gave it back (stream NULL: none) */
  kiln__buffer_obj *obj; /* the handle it (re)issues, NULL before the first */
  struct kiln__pool_block *phys_prev, *phys_next; /* its slab's blocks, by address */
  struct kiln__pool_block *prev, *next;           /* its free list */
  unsigned char state;
  bool has_view;       /* view made by buffer_view_create (else the slab's own storage) */
  unsigned char *host; /* its host address (host-visible devices), else NULL */
} pool_block;

typedef struct pool_slab {
  kiln__buffer buf; /* the backend's buffer */
  int kind;
  unsigned cls;        /* SLAB_CLASS */
  size_t carved;       /* SLAB_CLASS: bytes carved so far (blocks are made on demand) */
  uint32_t live;       /* live blocks */
  unsigned char *host; /* host address of its storage (from its first view), or NULL */
  bool host_known;
  bool pending;      /* SLAB_HUGE: its block was freed (counted in huge_pending) */
  pool_block *first; /* blocks by address */
  pool_block *tail;  /* SLAB_CLASS: the last block carved */
  struct pool_slab *prev, *next;
} pool_slab;

typedef struct pool_class {
  size_t bytes, stride, slab_bytes;
  pool_block *free_head; /* LIFO */
  pool_slab *carving;    /* a slab with room left, or NULL */
  uint64_t hits, misses, live, free;
} pool_class;

typedef struct pool_state {
  pthread_mutex_t lock;
  kiln__context_obj *ctx;
  int mode;
  bool carve; /* the backend makes views */
  size_t align, gran, fit_slab_bytes, huge_bytes;
  uint64_t release_threshold;
  char label[48];
  unsigned class_count;
  pool_class classes[KILN_POOL_MAX_CLASSES];
  pool_block *bins[FIT_BINS];
  pool_slab *slabs;
  kiln__buffer_obj *retire_head, *retire_tail;
  uint64_t retire_count, huge_pending;
  uint64_t live_buffers;
  uint64_t live_block_bytes; /* sizes of live blocks (reserved minus this: cached) */
  kiln_pool_stats s;         /* counters kept as they change */
} pool_state;

typedef struct kiln_pool_s {
  kiln__handle_obj h;
  _Atomic int dead_why;
  /* kiln_pool_destroy's claim (an exchange): of two destroys one goes on; given back
   * when the destroy is refused for live buffers. */
  _Atomic int destroying;
  /* Calls inside the pool's state (pool_enter), and the destroy's closing of it: the
   * destroy sets `closing`, waits `users` out, then decides (live buffers: it gives up
   * and clears `closing`; else it frees the state). A call raises `users`, then finds
   * `closing` clear and the tag alive, or backs off (seq_cst both sides). Both live in
   * the static table, so a call that checked the handle before a destroy on another
   * thread finds them valid after it. */
  _Atomic int users;
  _Atomic int closing;
  pool_state *st;
  struct kiln_pool_s *next; /* its context's list (under the context's lock) */
  uint32_t index;
} kiln__pool_obj;

static kiln__pool_obj table[MAX_POOLS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t free_fifo[MAX_POOLS];
static uint32_t fifo_head, fifo_count;
static int table_ready;

/* ------------------------------------------------------------- small helpers */
static unsigned log2_floor(size_t v) {
  unsigned r = 0;
  while (v >>= 1)
    r++;
  return r;
}

static bool is_pow2(size_t v) {
  return v && (v & (v - 1)) == 0;
}

static bool dep_pending(const kiln__dep *d) {
  return d->stream && !kiln__dep_done(d);
}

static void note_reserved(pool_state *st, int64_t delta) {
  st->s.bytes_reserved = (uint64_t)((int64_t)st->s.bytes_reserved + delta);
  if (st->s.bytes_reserved > st->s.bytes_reserved_peak)
    st->s.bytes_reserved_peak = st->s.bytes_reserved;
}

static uint64_t cached_bytes(const pool_state *st) {
  return st->s.bytes_reserved - st->live_block_bytes;
}

/* ------------------------------------------------------------- slabs */
static kiln_status slab_new(pool_state *st, int kind, size_t bytes, pool_slab **out) {
  *out = NULL;
  pool_slab *sl = kiln__calloc(1, sizeof *sl);
  if (!sl)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a pool slab record");
  kiln__context_obj *ctx = st->ctx;
  sl->buf.h.ops = ctx->h.ops;
  sl->buf.h.generation = ctx->h.generation;
  sl->buf.h.ctx = &ctx->view;
  atomic_store_explicit(&sl->buf.h.tag, KILN__TAG_BUFFER | KILN__TAG_INTERNAL,
                        memory_order_relaxed); /* never a handle; for a backend's eyes only */
  sl->buf.bytes = bytes;
  sl->kind = kind;
  kiln_status st_ = ctx->h.ops->buffer_create(&sl->buf);
  if (st_ != KILN_SUCCESS) {
    kiln__free(sl, sizeof *sl);
    return st_;
  }
  sl->next = st->slabs;
  if (st->slabs)
    st->slabs->prev = sl;
  st->slabs = sl;
  note_reserved(st, (int64_t)bytes);
  st->s.slabs++;
  st->s.device_allocs++;
  *out = sl;
  return KILN_SUCCESS;
}

static void release_idle(pool_state *st, uint64_t keep, bool wait);

/* slab_new_once; when the device is out of memory, the pool returns its idle slabs
 * once (waiting for their frees) and tries again; the report names the bytes. */
static kiln_status slab_new_retry(pool_state *st, int kind, size_t bytes, pool_slab **out) {
  kiln_status s = slab_new(st, kind, bytes, out);
  if (s != KILN_ERROR_OUT_OF_DEVICE_MEMORY || !cached_bytes(st))
    return s;
  uint64_t before = st->s.bytes_reserved;
  release_idle(st, 0, true);
  uint64_t trimmed = before - st->s.bytes_reserved;
  if (!trimmed)
    return s;
  kiln__log(KILN_LOG_INFO,
            "pool '%s': a device allocation of %zu bytes failed: trimmed %llu cached bytes and "
            "retrying",
            st->label, bytes, (unsigned long long)trimmed);
  s = slab_new(st, kind, bytes, out);
  if (s != KILN_SUCCESS)
    kiln__error_suggest("the pool already gave its %llu cached bytes back to the device and the "
                        "allocation failed again: free buffers or ask for less "
                        "(kiln_budget_check says what fits)",
                        (unsigned long long)trimmed);
  return s;
}

/* A block record for [offset, offset + bytes) of the slab (view not made yet). */
static pool_block *block_record(pool_slab *sl, size_t offset, size_t bytes) {
  pool_block *b = kiln__calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->view = sl->buf;
  b->view.native = NULL;
  b->view.bytes = bytes;
  b->slab = sl;
  b->offset = offset;
  b->bytes = bytes;
  b->state = BLOCK_FREE;
  return b;
}

/* Make the block's view (the slab's own storage for a one-block slab). */
static kiln_status block_view(pool_state *st, pool_block *b) {
  pool_slab *sl = b->slab;
  if (b->has_view || (!st->carve || sl->kind == SLAB_HUGE)) {
    if (!b->has_view) {
      b->view.native = sl->buf.native;
      b->host = NULL;
    }
    return KILN_SUCCESS;
  }
  void *host = NULL;
  b->view.bytes = b->bytes;
  kiln_status s = st->ctx->h.ops->buffer_view_create(&b->view, &sl->buf, b->offset, &host);
  if (s != KILN_SUCCESS)
    return s;
  b->has_view = true;
  b->host = host;
  if (!sl->host_known) { /* the first view says whether the slab is host memory */
    sl->host_known = true;
    sl->host = host ? (unsigned char *)host - b->offset : NULL;
    if (sl->host)
      POOL_POISON(sl->host, sl->buf.bytes);
  }
  return KILN_SUCCESS;
}

static void block_drop_view(pool_state *st, pool_block *b) {
  if (b->has_view)
    st->ctx->h.ops->buffer_view_destroy(&b->view);
  b->has_view = false;
  b->view.native = NULL;
  b->host = NULL;
}

/* ------------------------------------------------------------- free lists */
static unsigned bin_of(size_t bytes) {
  unsigned b = log2_floor(bytes);
  return b < FIT_BINS ? b : FIT_BINS - 1;
}

static void list_push(pool_block **head, pool_block *b) {
  b->prev = NULL;
  b->next = *head;
  if (*head)
    (*head)->prev = b;
  *head = b;
}

static void list_remove(pool_block **head, pool_block *b) {
  if (b->prev)
    b->prev->next = b->next;
  else
    *head = b->next;
  if (b->next)
    b->next->prev = b->prev;
  b->prev = b->next = NULL;
}

/* The free list a FREE block is in. */
static pool_block **free_list_of(pool_state *st, pool_block *b) {
  if (b->slab->kind == SLAB_CLASS)
    return &st->classes[b->slab->cls].free_head;
  if (b->slab->kind == SLAB_FIT)
    return &st->bins[bin_of(b->bytes)];
  return NULL; /* huge blocks are in no list */
}

/* ------------------------------------------------------------- handle objects */
/* Release a handle object whose work is complete (its slot goes back to the context). */
static void obj_release(pool_state *st, kiln__buffer_obj *o) {
  (void)st;
  o->pool = NULL;
  o->pool_block = NULL;
  kiln__buffer_release(o);
}

/* Release the retired objects whose last work is done (all of them, waiting, if wait). */
static void retire_poll(pool_state *st, bool wait) {
  while (st->retire_head) {
    kiln__buffer_obj *o = st->retire_head;
    if (wait)
      kiln__dep_wait(&o->pool_dep, UINT64_MAX);
    else if (dep_pending(&o->pool_dep))
      break; /* FIFO: later ones are checked next time */
    st->retire_head = o->pool_next;
    if (!st->retire_head)
      st->retire_tail = NULL;
    st->retire_count--;
    obj_release(st, o);
  }
}

static void retire_push(pool_state *st, kiln__buffer_obj *o, const kiln__dep *dep) {
  o->pool_dep = *dep;
  o->pool_next = NULL;
  if (st->retire_tail)
    st->retire_tail->pool_next = o;
  else
    st->retire_head = o;
  st->retire_tail = o;
  st->retire_count++;
}

/* ------------------------------------------------------------- releasing slabs */
/* Whether the slab can go back to the device: no live block, and (unless waiting) no
 * pending free. */
static bool slab_idle(const pool_slab *sl, bool wait) {
  if (sl->live)
    return false;
  if (wait)
    return true;
  for (const pool_block *b = sl->first; b; b = b->phys_next)
    if (dep_pending(&b->dep))
      return false;
  return true;
}

static void slab_release(pool_state *st, pool_slab *sl) {
  for (pool_block *b = sl->first, *next; b; b = next) {
    next = b->phys_next;
    kiln__dep_wait(&b->dep, UINT64_MAX);
    if (b->state == BLOCK_FREE) {
      pool_block **list = free_list_of(st, b);
      if (list)
        list_remove(list, b);
      if (sl->kind == SLAB_CLASS)
        st->classes[sl->cls].free--;
    }
    if (b->obj)
      obj_release(st, b->obj);
    block_drop_view(st, b);
    kiln__free(b, sizeof *b);
  }
  if (sl->kind == SLAB_CLASS && st->classes[sl->cls].carving == sl)
    st->classes[sl->cls].carving = NULL;
  if (sl->pending)
    st->huge_pending--;
  if (sl->host)
    POOL_UNPOISON(sl->host, sl->buf.bytes);
  if (sl->prev)
    sl->prev->next = sl->next;
  else
    st->slabs = sl->next;
  if (sl->next)
    sl->next->prev = sl->prev;
  note_reserved(st, -(int64_t)sl->buf.bytes);
  st->s.slabs--;
  st->s.device_frees++;
  st->ctx->h.ops->buffer_destroy(&sl->buf);
  kiln__free(sl, sizeof *sl);
}

/* Return idle slabs: every huge one, then others while more than `keep` bytes are
 * cached. wait: wait for pending frees (trim, compact, destroy) instead of skipping. */
static void release_idle(pool_state *st, uint64_t keep, bool wait) {
  retire_poll(st, wait);
  for (pool_slab *sl = st->slabs, *next; sl; sl = next) {
    next = sl->next;
    if (sl->kind != SLAB_HUGE && cached_bytes(st) <= keep)
      continue;
    if (slab_idle(sl, wait)) {
      if (KILN__TRACE_ON())
        kiln__trace_instant("pool", "trim", 2, "slab_bytes", (int64_t)sl->buf.bytes, "keep_bytes",
                            (int64_t)keep);
      slab_release(st, sl);
    }
  }
}

/* ------------------------------------------------------------- carving */
static kiln_status class_carve(pool_state *st, unsigned c, pool_block **out) {
  pool_class *pc = &st->classes[c];
  pool_slab *sl = pc->carving;
  if (!sl || sl->carved + pc->stride > sl->buf.bytes) {
    kiln_status s = slab_new_retry(st, SLAB_CLASS, pc->slab_bytes, &sl);
    if (s != KILN_SUCCESS)
      return s;
    sl->cls = c;
    pc->carving = sl;
  }
  pool_block *b = block_record(sl, sl->carved, pc->bytes);
  if (!b)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a pool block");
  kiln_status s = block_view(st, b);
  if (s != KILN_SUCCESS) {
    kiln__free(b, sizeof *b);
    return s;
  }
  /* link by address: carving only appends */
  if (sl->tail) {
    sl->tail->phys_next = b;
    b->phys_prev = sl->tail;
  } else {
    sl->first = b;
  }
  sl->tail = b;
  sl->carved += pc->stride;
  if (sl->carved + pc->stride > sl->buf.bytes && pc->carving == sl)
    pc->carving = NULL;
  *out = b;
  return KILN_SUCCESS;
}

/* A free block of class c for `stream`: one freed on it (or whose free is done) among
 * the first few, else the most recent. */
static pool_block *class_pop(pool_state *st, unsigned c, const kiln__stream_obj *stream) {
  pool_class *pc = &st->classes[c];
  pool_block *pick = pc->free_head;
  int n = 0;
  for (pool_block *b = pc->free_head; b && n < LIFO_SCAN; b = b->next, n++)
    if (!b->dep.stream || (stream && b->dep.stream == &stream->view) || !dep_pending(&b->dep)) {
      pick = b;
      break;
    }
  if (pick) {
    list_remove(&pc->free_head, pick);
    pc->free--;
  }
  return pick;
}

/* Best fit: the smallest free block of at least `bytes` (bins hold [2^i, 2^(i+1))). */
static pool_block *fit_find(pool_state *st, size_t bytes) {
  for (unsigned i = bin_of(bytes); i < FIT_BINS; i++) {
    pool_block *best = NULL;
    for (pool_block *b = st->bins[i]; b; b = b->next)
      if (b->bytes >= bytes && (!best || b->bytes < best->bytes))
        best = b;
    if (best)
      return best;
  }
  return NULL;
}

/* Cut the free block `b` to `bytes`, the rest a new free block after it. */
static kiln_status fit_split(pool_state *st, pool_block *b, size_t bytes) {
  if (b->bytes - bytes < st->gran)
    return KILN_SUCCESS;
  pool_block *r = block_record(b->slab, b->offset + bytes, b->bytes - bytes);
  if (!r)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a pool block");
  r->dep = b->dep;
  r->phys_prev = b;
  r->phys_next = b->phys_next;
  if (b->phys_next)
    b->phys_next->phys_prev = r;
  b->phys_next = r;
  b->bytes = bytes;
  block_drop_view(st, b);
  list_push(&st->bins[bin_of(r->bytes)], r);
  return KILN_SUCCESS;
}

/* Deps of two adjacent free blocks as one (false: both pending on different streams, so
 * they stay apart until one completes). */
static bool dep_merge(const kiln__dep *a, const kiln__dep *b, kiln__dep *out) {
  if (!dep_pending(a)) {
    *out = dep_pending(b) ? *b : (kiln__dep){NULL, 0, 0};
    return true;
  }
  if (!dep_pending(b)) {
    *out = *a;
    return true;
  }
  if (a->stream == b->stream && a->uid == b->uid) {
    *out = a->seq > b->seq ? *a : *b;
    return true;
  }
  return false;
}

/* Merge the free fit block b with its free neighbours; returns the merged block (not in
 * a bin). */
static pool_block *fit_coalesce(pool_state *st, pool_block *b) {
  for (int side = 0; side < 2; side++) {
    pool_block *n = side ? b->phys_next : b->phys_prev;
    kiln__dep d;
    if (!n || n->state != BLOCK_FREE || n->obj || b->obj || !dep_merge(&b->dep, &n->dep, &d))
      continue;
    list_remove(&st->bins[bin_of(n->bytes)], n);
    pool_block *lo = side ? b : n, *hi = side ? n : b;
    lo->bytes += hi->bytes;
    lo->dep = d;
    lo->phys_next = hi->phys_next;
    if (hi->phys_next)
      hi->phys_next->phys_prev = lo;
    block_drop_view(st, lo);
    block_drop_view(st, hi);
    kiln__free(hi, sizeof *hi);
    b = lo;
  }
  return b;
}

/* ------------------------------------------------------------- issuing */
/* The class serving `bytes`, or class_count when none does. */
static unsigned class_of(const pool_state *st, size_t bytes) {
  for (unsigned c = 0; c < st->class_count; c++)
    if (bytes <= st->classes[c].bytes)
      return c;
  return st->class_count;
}

/* Hand block b out as a live handle of `bytes`. */
static kiln_status issue(pool_state *st, kiln__pool_obj *pool, pool_block *b, size_t bytes,
                         kiln__buffer_obj **out) {
  kiln__buffer_obj *o = b->obj;
  if (o && dep_pending(&b->dep)) { /* its last life's work still runs: a fresh handle */
    retire_push(st, o, &b->dep);
    b->obj = o = NULL;
  }
  if (!o) {
    kiln_status s = kiln__buffer_new(st->ctx, bytes, st->label, &o);
    if (s != KILN_SUCCESS)
      return s;
    b->obj = o;
  }
  /* No lock: no op refers to the object any more (its last life's ops completed: the
   * dep_done above loaded their streams' `completed`, seq_cst, which their completion
   * stored after its last touch of the object), and no thread can reach it (dead). */
  o->bytes = bytes;
  o->native = b->view.native;
  o->wrapped = false;
  atomic_store_explicit(&o->failed, 0, memory_order_relaxed); /* not inherited */
  o->fail_cause.status = KILN_SUCCESS;
  o->last_write = dep_pending(&b->dep) ? b->dep : (kiln__dep){NULL, 0, 0};
  o->reader_count = 0;
  o->pool = pool;
  o->pool_block = b;
  b->state = BLOCK_LIVE;
  b->used = bytes;
  b->slab->live++;
  if (b->host) { /* all of the block poisoned but what was asked for */
    POOL_POISON(b->host, b->bytes);
    POOL_UNPOISON(b->host, bytes);
  }
  st->live_buffers++;
  st->live_block_bytes += b->bytes;
  st->s.allocs++;
  st->s.bytes_in_use += bytes;
  if (st->s.bytes_in_use > st->s.bytes_in_use_peak)
    st->s.bytes_in_use_peak = st->s.bytes_in_use;
  atomic_store(&o->h.tag, KILN__TAG_BUFFER);
  *out = o;
  return KILN_SUCCESS;
}

/* Put a block that was not issued back where it came from. */
static void unissue_free(pool_state *st, pool_block *b) {
  b->state = BLOCK_FREE;
  if (b->slab->kind == SLAB_CLASS) {
    list_push(&st->classes[b->slab->cls].free_head, b);
    st->classes[b->slab->cls].free++;
  } else if (b->slab->kind == SLAB_FIT) {
    b = fit_coalesce(st, b);
    list_push(&st->bins[bin_of(b->bytes)], b);
  }
}

static kiln_status alloc_locked(pool_state *st, kiln__pool_obj *pool,
                                const kiln__stream_obj *stream, size_t bytes,
                                kiln__buffer_obj **out) {
  retire_poll(st, false);
  if (st->huge_pending)
    release_idle(st, UINT64_MAX, false);
  size_t need = bytes + POOL_REDZONE;
  unsigned c = class_of(st, bytes);
  pool_block *b = NULL;
  kiln_status s = KILN_SUCCESS;
  bool hit = false;
  if (c < st->class_count) {
    pool_class *pc = &st->classes[c];
    if (st->mode != MODE_DEBUG && (b = class_pop(st, c, stream)) != NULL) {
      hit = true;
      pc->hits++;
    } else if ((s = class_carve(st, c, &b)) == KILN_SUCCESS) {
      pc->misses++;
    } else {
      return s;
    }
    if ((s = issue(st, pool, b, bytes, out)) != KILN_SUCCESS) {
      unissue_free(st, b);
      return s;
    }
    pc->live++;
  } else if (need <= st->huge_bytes) {
    size_t want = kiln__round_up(need, st->gran);
    b = st->mode == MODE_DEBUG ? NULL : fit_find(st, want);
    hit = b != NULL;
    if (!b) {
      pool_slab *sl = NULL;
      if ((s = slab_new_retry(st, SLAB_FIT, st->fit_slab_bytes, &sl)) != KILN_SUCCESS)
        return s;
      if (!(b = block_record(sl, 0, sl->buf.bytes))) {
        slab_release(st, sl);
        return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a pool block");
      }
      sl->first = b;
    } else {
      list_remove(&st->bins[bin_of(b->bytes)], b);
    }
    if ((s = fit_split(st, b, want)) != KILN_SUCCESS || (s = block_view(st, b)) != KILN_SUCCESS ||
        (s = issue(st, pool, b, bytes, out)) != KILN_SUCCESS) {
      unissue_free(st, b);
      return s;
    }
  } else {
    pool_slab *sl = NULL;
    if ((s = slab_new_retry(st, SLAB_HUGE, kiln__round_up(bytes, st->align), &sl)) != KILN_SUCCESS)
      return s;
    if (!(b = block_record(sl, 0, sl->buf.bytes))) {
      slab_release(st, sl);
      return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory for a pool block");
    }
    sl->first = b;
    block_view(st, b); /* the slab's own storage: cannot fail */
    if ((s = issue(st, pool, b, bytes, out)) != KILN_SUCCESS) {
      slab_release(st, sl);
      return s;
    }
    st->s.huge_live++;
  }
  if (hit)
    st->s.hits++;
  else
    st->s.misses++;
  if (KILN__TRACE_ON())
    kiln__trace_instant("pool", hit ? "hit" : "miss", 2, "bytes", (int64_t)bytes, "class",
                        (int64_t)c);
  return KILN_SUCCESS;
}

/* Take back the live block of handle o, freed by dep (none: its work is done). The
 * handle is dead already. */
static void give_back_locked(pool_state *st, kiln__buffer_obj *o, const kiln__dep *dep) {
  pool_block *b = o->pool_block;
  pool_slab *sl = b->slab;
  st->live_buffers--;
  st->live_block_bytes -= b->bytes;
  st->s.frees++;
  st->s.bytes_in_use -= b->used;
  sl->live--;
  b->dep = dep_pending(dep) ? *dep : (kiln__dep){NULL, 0, 0};
  if (b->host && !b->dep.stream) /* idle: poison it now (else its work may still run) */
    POOL_POISON(b->host, b->bytes);
  if (sl->kind == SLAB_HUGE) { /* back to the device once its work is done */
    st->s.huge_live--;
    b->state = BLOCK_FREE;
    if (dep_pending(&b->dep)) {
      sl->pending = true;
      st->huge_pending++;
    } else {
      slab_release(st, sl);
    }
    return;
  }
  if (sl->kind == SLAB_CLASS)
    st->classes[sl->cls].live--;
  if (st->mode == MODE_DEBUG) {
    b->state = BLOCK_QUARANTINED;
  } else if (sl->kind == SLAB_CLASS) {
    b->state = BLOCK_FREE;
    list_push(&st->classes[sl->cls].free_head, b);
    st->classes[sl->cls].free++;
  } else {
    b->state = BLOCK_FREE;
    if (!dep_pending(&b->dep) && b->obj) { /* the handle is free to go: merging drops it */
      obj_release(st, b->obj);
      b->obj = NULL;
    } else if (b->obj) {
      retire_push(st, b->obj, &b->dep);
      b->obj = NULL;
    }
    b = fit_coalesce(st, b);
    list_push(&st->bins[bin_of(b->bytes)], b);
  }
  if (st->release_threshold && cached_bytes(st) > st->release_threshold)
    release_idle(st, st->release_threshold, false);
}

/* ------------------------------------------------------------- create / destroy */
static int env_mode(void) {
  /* kiln__env_pool_words' order is MODE_ON, MODE_OFF, MODE_DEBUG; other values were
   * reported at the first device enumeration (core/env.c) */
  return kiln__env_word("KILN_POOL", kiln__env_pool_words, MODE_ON);
}

static kiln_status check_desc(const kiln__context_obj *ctx, const kiln_pool_desc *d) {
  if (d->struct_size < sizeof(kiln_pool_desc))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_POOL_DESC_INIT",
                       d->struct_size, sizeof(kiln_pool_desc));
  if (d->flags)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "desc->flags is 0x%x: no flags are defined yet",
                       d->flags);
  if (d->min_class_bytes && !is_pow2(d->min_class_bytes))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->min_class_bytes is %zu: size classes are powers of two",
                       d->min_class_bytes);
  if (d->max_class_bytes && !is_pow2(d->max_class_bytes))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->max_class_bytes is %zu: size classes are powers of two",
                       d->max_class_bytes);
  uint64_t max_alloc = ctx->device->props.max_alloc_bytes;
  if ((uint64_t)d->slab_bytes > max_alloc || (uint64_t)d->fit_slab_bytes > max_alloc) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "desc->slab_bytes %zu or fit_slab_bytes %zu exceeds the device's largest "
                "allocation (%llu bytes)",
                d->slab_bytes, d->fit_slab_bytes, (unsigned long long)max_alloc);
    kiln__error_suggest("leave them 0 for the defaults, or use at most max_alloc_bytes");
    return KILN_ERROR_LIMIT_EXCEEDED;
  }
  return KILN_SUCCESS;
}

/* Fill the state from the (validated) desc and the device. */
static kiln_status state_init(pool_state *st, kiln__context_obj *ctx, const kiln_pool_desc *d) {
  const kiln_device_props *p = &ctx->device->props;
  st->ctx = ctx;
  st->mode = env_mode();
  st->carve = ctx->h.ops->buffer_view_create && ctx->h.ops->buffer_view_destroy;
  st->align = p->mem_align_bytes ? p->mem_align_bytes : 1;
  size_t min_class = d->min_class_bytes ? d->min_class_bytes : 256;
  while (min_class < st->align)
    min_class *= 2;
  size_t max_class = d->max_class_bytes ? d->max_class_bytes : (size_t)256 * 1024;
  if (max_class < min_class)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "desc->max_class_bytes %zu is below the smallest class, %zu bytes (the "
                       "larger of min_class_bytes and the device's base-address alignment)",
                       max_class, min_class);
  unsigned n = log2_floor(max_class) - log2_floor(min_class) + 1;
  if (n > KILN_POOL_MAX_CLASSES)
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                       "size classes from %zu to %zu bytes make %u classes, more than the %d a "
                       "pool has",
                       min_class, max_class, n, KILN_POOL_MAX_CLASSES);
  uint64_t max_alloc = p->max_alloc_bytes;
  st->gran = min_class;
  size_t slab = d->slab_bytes ? d->slab_bytes : (size_t)2 << 20;
  st->class_count = n;
  for (unsigned c = 0; c < n; c++) {
    pool_class *pc = &st->classes[c];
    pc->bytes = min_class << c;
    pc->stride = st->carve ? kiln__round_up(pc->bytes + POOL_REDZONE, st->align) : pc->bytes;
    size_t sb = slab > pc->stride * 4 ? slab : pc->stride * 4;
    if (!st->carve)
      sb = pc->bytes; /* one block per device allocation */
    if ((uint64_t)sb > max_alloc)
      sb = (size_t)max_alloc;
    if (pc->stride > sb) {
      kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                  "the size class of %zu bytes does not fit the device's largest allocation "
                  "(%llu bytes)",
                  pc->bytes, (unsigned long long)max_alloc);
      kiln__error_suggest("lower desc->max_class_bytes (0: 256 KiB)");
      return KILN_ERROR_LIMIT_EXCEEDED;
    }
    pc->slab_bytes = sb;
  }
  size_t fit = d->fit_slab_bytes ? d->fit_slab_bytes : (size_t)32 << 20;
  if ((uint64_t)fit > max_alloc)
    fit = (size_t)max_alloc;
  st->fit_slab_bytes = fit;
  st->huge_bytes = d->huge_bytes ? d->huge_bytes : fit / 4;
  if (st->huge_bytes > fit)
    st->huge_bytes = fit;
  if (!st->carve)
    st->huge_bytes = 0; /* no carving: every larger request is its own allocation */
  st->release_threshold = d->release_threshold;
  kiln__strlcpy(st->label, d->label ? d->label : "pool", sizeof st->label);
  st->s.struct_size = sizeof(kiln_pool_stats);
  return KILN_SUCCESS;
}

static kiln_status warm_locked(pool_state *st, unsigned c, size_t count) {
  pool_class *pc = &st->classes[c];
  for (size_t i = 0; i < count; i++) {
    pool_block *b = NULL;
    kiln_status s = class_carve(st, c, &b);
    if (s != KILN_SUCCESS)
      return s;
    list_push(&pc->free_head, b);
    pc->free++;
  }
  return KILN_SUCCESS;
}

/* Every block and slab back to the device; live handles die with them. */
static void state_release_all(pool_state *st) {
  retire_poll(st, true);
  while (st->slabs) {
    pool_slab *sl = st->slabs;
    for (pool_block *b = sl->first; b; b = b->phys_next)
      if (b->state == BLOCK_LIVE && b->obj) {
        b->state = BLOCK_QUARANTINED; /* not in a list */
        sl->live--;
      }
    sl->live = 0;
    slab_release(st, sl);
  }
}

static kiln_status pool_new(kiln__context_obj *ctx, const kiln_pool_desc *desc,
                            kiln__pool_obj **out) {
  *out = NULL;
  pool_state *st = kiln__calloc(1, sizeof *st);
  if (!st)
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY, "out of host memory creating a pool");
  kiln_status s = state_init(st, ctx, desc);
  if (s != KILN_SUCCESS) {
    kiln__free(st, sizeof *st);
    return s;
  }
  pthread_mutex_init(&st->lock, NULL);
  if (desc->warm_count && st->mode == MODE_ON)
    for (unsigned c = 0; c < st->class_count && s == KILN_SUCCESS; c++)
      s = warm_locked(st, c, desc->warm_count);
  if (s != KILN_SUCCESS) {
    state_release_all(st);
    pthread_mutex_destroy(&st->lock);
    kiln__free(st, sizeof *st);
    return s;
  }
  pthread_mutex_lock(&table_lock);
  if (!table_ready) {
    for (uint32_t i = 0; i < MAX_POOLS; i++)
      free_fifo[i] = i;
    fifo_count = MAX_POOLS;
    table_ready = 1;
  }
  if (fifo_count == 0) {
    pthread_mutex_unlock(&table_lock);
    state_release_all(st);
    pthread_mutex_destroy(&st->lock);
    kiln__free(st, sizeof *st);
    return kiln__error(KILN_ERROR_LIMIT_EXCEEDED, "%u pools exist already, the most kiln allows",
                       MAX_POOLS);
  }
  uint32_t index = free_fifo[fifo_head];
  fifo_head = (fifo_head + 1) % MAX_POOLS;
  fifo_count--;
  pthread_mutex_unlock(&table_lock);
  kiln__pool_obj *pool = &table[index];
  pool->h.ops = ctx->h.ops;
  pool->h.generation = ctx->h.generation;
  pool->h.ctx = ctx;
  pool->h.slot = index;
  pool->index = index;
  pool->st = st;
  atomic_store(&pool->destroying, 0);
  atomic_store(&pool->closing, 0);
  atomic_store(&pool->dead_why, ALIVE);
  pthread_mutex_lock(&ctx->lock);
  pool->next = ctx->pools;
  ctx->pools = pool;
  pthread_mutex_unlock(&ctx->lock);
  atomic_store(&pool->h.tag, KILN__TAG_POOL);
  *out = pool;
  return KILN_SUCCESS;
}

/* Free the state and give the table slot back (the pool is off its context's list). */
static void pool_end(kiln__pool_obj *pool, int why) {
  pool_state *st = pool->st;
  pthread_mutex_lock(&st->lock);
  state_release_all(st);
  pthread_mutex_unlock(&st->lock);
  pthread_mutex_destroy(&st->lock);
  kiln__free(st, sizeof *st);
  pool->st = NULL;
  atomic_store(&pool->dead_why, why);
  atomic_fetch_add(&pool->h.slot_gen, 1);
  atomic_store(&pool->h.tag, KILN__TAG_POOL | KILN__TAG_DEAD);
  pthread_mutex_lock(&table_lock);
  free_fifo[(fifo_head + fifo_count) % MAX_POOLS] = pool->index;
  fifo_count++;
  pthread_mutex_unlock(&table_lock);
}

/* ------------------------------------------------------------- validation */
static kiln_status check_pool(kiln_pool pool) {
  uintptr_t p = (uintptr_t)pool, base = (uintptr_t)table;
  if (pool && (p < base || p >= base + sizeof table || (p - base) % sizeof table[0]))
    return kiln__check_alive(pool, KILN__TAG_POOL, "pool"); /* names what it is instead */
  if (pool && atomic_load(&pool->h.tag) == (KILN__TAG_POOL | KILN__TAG_DEAD) &&
      atomic_load(&pool->dead_why) == DEAD_CONTEXT) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "pool %p belonged to a context that was destroyed: kiln_context_destroy "
                "destroys the context's pools",
                (void *)pool);
    kiln__error_suggest("destroy a context only after its last use of its pools");
    return KILN_ERROR_INVALID_HANDLE;
  }
  return kiln__check_handle(pool, KILN__TAG_POOL, "pool");
}

/* A call's claim on the pool's state (after check_pool): the state stays until
 * pool_leave. INVALID_HANDLE when a destroy on another thread got there first; while a
 * destroy is deciding (it may yet be refused for live buffers) the call waits. */
static kiln_status pool_enter(kiln__pool_obj *pool) {
  for (unsigned i = 0;; i++) {
    atomic_fetch_add(&pool->users, 1);
    if (!atomic_load(&pool->closing) && atomic_load(&pool->h.tag) == KILN__TAG_POOL)
      return KILN_SUCCESS;
    atomic_fetch_sub(&pool->users, 1);
    if (atomic_load(&pool->h.tag) != KILN__TAG_POOL)
      return kiln__error(KILN_ERROR_INVALID_HANDLE,
                         "pool %p was destroyed by another thread while this call used it",
                         (void *)pool);
    if (i < 64)
      kiln__cpu_relax();
    else
      kiln__yield();
  }
}

static void pool_leave(kiln__pool_obj *pool) {
  atomic_fetch_sub(&pool->users, 1);
}

static kiln_status check_size(const kiln__context_obj *ctx, size_t bytes) {
  if (bytes == 0)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "bytes is 0: a pool allocation needs at least 1 byte");
  const kiln_device_props *p = &ctx->device->props;
  if ((uint64_t)bytes > p->max_alloc_bytes) {
    kiln__error(KILN_ERROR_LIMIT_EXCEEDED,
                "a pool allocation of %zu bytes exceeds the largest allocation of device %s:%u "
                "(%llu bytes)",
                bytes, kiln_backend_name(p->backend), p->index,
                (unsigned long long)p->max_alloc_bytes);
    kiln__error_suggest("split the data over several buffers of at most max_alloc_bytes");
    return KILN_ERROR_LIMIT_EXCEEDED;
  }
  return KILN_SUCCESS;
}

static kiln_status check_stream(kiln_stream stream, const kiln__context_obj *ctx,
                                const char *what) {
  kiln_status s = kiln__check_handle(stream, KILN__TAG_STREAM, what);
  if (s != KILN_SUCCESS)
    return s;
  if (stream->h.ctx != ctx)
    return kiln__error(KILN_ERROR_DEVICE_MISMATCH,
                       "%s %p belongs to another context than the pool's buffer", what,
                       (void *)stream);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- off mode */
static kiln_status off_alloc(kiln__pool_obj *pool, size_t bytes, kiln__buffer_obj **out) {
  pool_state *st = pool->st;
  kiln__buffer_obj *o;
  kiln_status s = kiln__buffer_new(st->ctx, bytes, st->label, &o);
  if (s != KILN_SUCCESS)
    return s;
  if ((s = st->ctx->h.ops->buffer_create(&o->view)) != KILN_SUCCESS) {
    kiln__buffer_release(o);
    return s;
  }
  o->pool = pool;
  pthread_mutex_lock(&st->lock);
  st->live_buffers++;
  st->s.allocs++;
  st->s.misses++;
  st->s.device_allocs++;
  if (KILN__TRACE_ON())
    kiln__trace_instant("pool", "miss", 1, "bytes", (int64_t)bytes);
  st->s.bytes_in_use += bytes;
  if (st->s.bytes_in_use > st->s.bytes_in_use_peak)
    st->s.bytes_in_use_peak = st->s.bytes_in_use;
  st->live_block_bytes += bytes;
  note_reserved(st, (int64_t)bytes);
  pthread_mutex_unlock(&st->lock);
  atomic_store(&o->h.tag, KILN__TAG_BUFFER);
  *out = o;
  return KILN_SUCCESS;
}

/* The handle is dead; its work is done. */
static void off_free(kiln__buffer_obj *o) {
  pool_state *st = o->pool->st;
  pthread_mutex_lock(&st->lock);
  st->live_buffers--;
  st->s.frees++;
  st->s.device_frees++;
  st->s.bytes_in_use -= o->bytes;
  st->live_block_bytes -= o->bytes;
  note_reserved(st, -(int64_t)o->bytes);
  pthread_mutex_unlock(&st->lock);
  o->h.ops->buffer_destroy(&o->view);
  o->pool = NULL;
  kiln__buffer_release(o);
}

/* ------------------------------------------------------------- the core's entries */
kiln_status kiln__pool_context_init(kiln__context_obj *ctx) {
  kiln_pool_desc d = KILN_POOL_DESC_INIT;
  d.label = "context pool";
  kiln__pool_obj *pool;
  kiln_status s = pool_new(ctx, &d, &pool);
  if (s == KILN_SUCCESS)
    ctx->buffer_pool = pool;
  return s;
}

static kiln_status pool_alloc(kiln__pool_obj *pool, const kiln__stream_obj *stream, size_t bytes,
                              kiln__buffer_obj **out) {
  pool_state *st = pool->st;
  if (st->mode == MODE_OFF)
    return off_alloc(pool, bytes, out);
  pthread_mutex_lock(&st->lock);
  kiln_status s = alloc_locked(st, pool, stream, bytes, out);
  pthread_mutex_unlock(&st->lock);
  return s;
}

kiln_status kiln__pool_buffer_create(kiln__context_obj *ctx, size_t bytes, const char *label,
                                     kiln__buffer_obj **out) {
  kiln_status s = pool_alloc(ctx->buffer_pool, NULL, bytes, out);
  if (s == KILN_SUCCESS)
    kiln__strlcpy((*out)->label, label ? label : "", sizeof(*out)->label);
  return s;
}

void kiln__pool_buffer_destroy(kiln__buffer_obj *o) {
  atomic_store(&o->h.tag, KILN__TAG_BUFFER | KILN__TAG_DEAD);
  if (!o->pool_block) {
    off_free(o);
    return;
  }
  pool_state *st = o->pool->st;
  kiln__dep none = {NULL, 0, 0};
  pthread_mutex_lock(&st->lock);
  give_back_locked(st, o, &none);
  pthread_mutex_unlock(&st->lock);
}

void kiln__pool_context_teardown(kiln__context_obj *ctx) {
  ctx->buffer_pool = NULL;
  while (ctx->pools) {
    kiln__pool_obj *pool = ctx->pools;
    ctx->pools = pool->next;
    pool_end(pool, DEAD_CONTEXT);
  }
}

uint64_t kiln__pool_context_cached(kiln__context_obj *ctx) {
  uint64_t sum = 0;
  pthread_mutex_lock(&ctx->lock);
  for (kiln__pool_obj *pool = ctx->pools; pool; pool = pool->next) {
    pthread_mutex_lock(&pool->st->lock);
    sum += cached_bytes(pool->st);
    pthread_mutex_unlock(&pool->st->lock);
  }
  pthread_mutex_unlock(&ctx->lock);
  return sum;
}

uint64_t kiln__pool_context_trim(kiln__context_obj *ctx) {
  uint64_t trimmed = 0;
  pthread_mutex_lock(&ctx->lock);
  for (kiln__pool_obj *pool = ctx->pools; pool; pool = pool->next) {
    pool_state *st = pool->st;
    pthread_mutex_lock(&st->lock);
    uint64_t before = st->s.bytes_reserved;
    release_idle(st, 0, true);
    trimmed += before - st->s.bytes_reserved;
    pthread_mutex_unlock(&st->lock);
  }
  pthread_mutex_unlock(&ctx->lock);
  return trimmed;
}

/* ------------------------------------------------------------- public API */
kiln_status kiln_pool_create(kiln_context context, const kiln_pool_desc *desc, kiln_pool *pool) {
  KILN__API_ENTER();
  if (!pool)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "pool (the out-parameter) is NULL");
  *pool = NULL;
  kiln_status s = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (s != KILN_SUCCESS)
    return s;
  kiln_pool_desc d = KILN_POOL_DESC_INIT;
  if (desc) {
    if ((s = check_desc(context, desc)) != KILN_SUCCESS)
      return s;
    d = *desc;
  }
  return pool_new(context, &d, pool);
}

kiln_status kiln_pool_destroy(kiln_pool pool) {
  KILN__API_ENTER();
  if (!pool)
    return KILN_SUCCESS;
  uintptr_t p = (uintptr_t)pool, base = (uintptr_t)table;
  if (p < base || p >= base + sizeof table || (p - base) % sizeof table[0] ||
      atomic_load(&pool->h.tag) != KILN__TAG_POOL) {
    kiln_status s = check_pool(pool); /* refused: says why */
    return s != KILN_SUCCESS ? s : KILN_ERROR_INVALID_HANDLE;
  }
  kiln__context_obj *ctx = pool->h.ctx;
  if (ctx->buffer_pool == pool) {
    kiln__error(KILN_ERROR_INVALID_STATE,
                "pool %p is the context's own (KILN_CONTEXT_POOLED): it goes with the context",
                (void *)pool);
    kiln__error_suggest("destroy the context instead");
    return KILN_ERROR_INVALID_STATE;
  }
  if (atomic_exchange(&pool->destroying, 1)) /* another thread's destroy has it */
    return kiln__refuse_second_destroy("pool", pool);
  /* Close the state to new calls and wait out those inside (pool_enter), so no
   * allocation lands after the count of live buffers below and nothing uses the state
   * once it is freed. */
  atomic_store(&pool->closing, 1);
  for (unsigned i = 0; atomic_load(&pool->users) != 0; i++)
    if (i < 64)
      kiln__cpu_relax();
    else
      kiln__yield();
  pool_state *st = pool->st;
  pthread_mutex_lock(&st->lock);
  uint64_t live = st->live_buffers;
  pthread_mutex_unlock(&st->lock);
  if (live) {
    atomic_store(&pool->closing, 0); /* the pool stays: calls waiting go on */
    atomic_store(&pool->destroying, 0);
    kiln__error(KILN_ERROR_INVALID_STATE, "pool %p still has %llu live buffers", (void *)pool,
                (unsigned long long)live);
    kiln__error_suggest("free them (kiln_pool_free or kiln_buffer_destroy) before destroying "
                        "the pool");
    return KILN_ERROR_INVALID_STATE;
  }
  pthread_mutex_lock(&ctx->lock);
  for (kiln__pool_obj **pp = &ctx->pools; *pp; pp = &(*pp)->next)
    if (*pp == pool) {
      *pp = pool->next;
      break;
    }
  pthread_mutex_unlock(&ctx->lock);
  pool_end(pool, DEAD_DESTROYED);
  return KILN_SUCCESS;
}

kiln_status kiln_context_get_pool(kiln_context context, kiln_pool *pool) {
  KILN__API_ENTER();
  if (!pool)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "pool (the out-parameter) is NULL");
  *pool = NULL;
  kiln_status s = kiln__check_handle(context, KILN__TAG_CONTEXT, "context");
  if (s != KILN_SUCCESS)
    return s;
  if (!context->buffer_pool) {
    kiln__error(KILN_ERROR_INVALID_STATE,
                "context %p has no pool of its own: it was made without KILN_CONTEXT_POOLED",
                (void *)context);
    kiln__error_suggest("create the context with KILN_CONTEXT_POOLED in its desc's flags, or "
                        "make a pool with kiln_pool_create");
    return KILN_ERROR_INVALID_STATE;
  }
  *pool = context->buffer_pool;
  return KILN_SUCCESS;
}

kiln_status kiln_pool_alloc(kiln_pool pool, kiln_stream stream, size_t bytes, kiln_buffer *buffer) {
  KILN__API_ENTER();
  if (!buffer)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "buffer (the out-parameter) is NULL");
  *buffer = NULL;
  kiln_status s = check_pool(pool);
  if (s != KILN_SUCCESS)
    return s;
  if (stream && (s = check_stream(stream, pool->h.ctx, "stream")) != KILN_SUCCESS)
    return s;
  if ((s = check_size(pool->h.ctx, bytes)) != KILN_SUCCESS)
    return s;
  if ((s = pool_enter(pool)) != KILN_SUCCESS)
    return s;
  kiln__buffer_obj *o;
  if ((s = pool_alloc(pool, stream, bytes, &o)) == KILN_SUCCESS)
    *buffer = o;
  pool_leave(pool);
  return s;
}

/* Whether some pending work on the buffer runs on a stream other than s. */
static bool used_elsewhere(kiln__buffer_obj *b, const kiln__stream_obj *s) {
  bool cross = false;
  pthread_mutex_lock(&b->hazard_lock);
  if (b->last_write.stream && b->last_write.stream != &s->view && dep_pending(&b->last_write))
    cross = true;
  for (uint32_t i = 0; i < b->reader_count && !cross; i++)
    if (b->readers[i].stream != &s->view && dep_pending(&b->readers[i]))
      cross = true;
  pthread_mutex_unlock(&b->hazard_lock);
  return cross;
}

kiln_status kiln_pool_free(kiln_buffer buffer, kiln_stream stream) {
  KILN__API_ENTER();
  if (!buffer)
    return kiln__error(KILN_ERROR_INVALID_HANDLE, "buffer is NULL: nothing to free");
  uint32_t tag = buffer ? atomic_load(&buffer->h.tag) : 0;
  if (tag == (KILN__TAG_BUFFER | KILN__TAG_DEAD)) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "buffer %p was already freed or destroyed: a second free is refused",
                (void *)buffer);
    kiln__error_suggest("free each pooled buffer once; a freed handle must not be used again");
    return KILN_ERROR_INVALID_HANDLE;
  }
  kiln_status s = kiln__check_handle(buffer, KILN__TAG_BUFFER, "buffer");
  if (s != KILN_SUCCESS)
    return s;
  if (!buffer->pool) {
    kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                "buffer %p was not allocated from a pool (%s): kiln_pool_free takes only buffers "
                "of kiln_pool_alloc",
                (void *)buffer,
                buffer->wrapped ? "it wraps native memory" : "kiln_buffer_create made it");
    kiln__error_suggest("destroy it with kiln_buffer_destroy");
    return KILN_ERROR_INVALID_ARGUMENT;
  }
  if (!stream) {
    kiln__error(KILN_ERROR_INVALID_HANDLE,
                "stream is NULL: kiln_pool_free orders the free on a stream");
    kiln__error_suggest("pass the stream of the buffer's last use, or call kiln_buffer_destroy "
                        "for a blocking free");
    return KILN_ERROR_INVALID_HANDLE;
  }
  if ((s = check_stream(stream, buffer->h.ctx, "stream")) != KILN_SUCCESS)
    return s;
  kiln__buffer_obj *b = buffer;
  uint32_t expect = KILN__TAG_BUFFER;
  if (!atomic_compare_exchange_strong(&b->h.tag, &expect, KILN__TAG_BUFFER | KILN__TAG_DEAD)) {
    kiln__error(KILN_ERROR_INVALID_HANDLE, "buffer %p was freed by another thread during this call",
                (void *)buffer);
    return KILN_ERROR_INVALID_HANDLE;
  }
  kiln__stream_obj *str = stream;
  if (!b->pool_block) { /* KILN_POOL=off: a blocking free */
    kiln__buffer_quiesce(b);
    kiln__guard_release_buffer(b);
    off_free(b);
    return KILN_SUCCESS;
  }
  kiln__dep dep = {&str->view, atomic_load(&str->uid), 0};
  if (used_elsewhere(b, str)) {
    /* Work on other streams still uses it: a marker on `stream` that waits for it (the
     * hazard tracking adds the dependencies) is the free. */
    kiln__op_obj *op;
    if ((s = kiln__op_new(str, KILN__OP_MARKER, &op)) != KILN_SUCCESS) {
      atomic_store(&b->h.tag, KILN__TAG_BUFFER);
      return s;
    }
    op->pool_free = 1;
    kiln__op_ref(&op->view); /* ours: read its seq after submit */
    kiln__use use = {b, true};
    if ((s = kiln__submit(op, &use, 1, NULL, NULL, 0)) != KILN_SUCCESS) {
      atomic_store(&b->h.tag, KILN__TAG_BUFFER);
      return s; /* the op was discarded */
    }
    dep.seq = op->seq;
    kiln__op_unref(&op->view);
  } else {
    /* Only `stream` (or nothing) still uses it: the free is the stream's current end. */
    dep.seq = atomic_load(&str->submitted);
  }
  pool_state *st = b->pool->st;
  pthread_mutex_lock(&st->lock);
  give_back_locked(st, b, &dep);
  pthread_mutex_unlock(&st->lock);
  return KILN_SUCCESS;
}

static kiln_status warm_entered(kiln__pool_obj *pool, size_t bytes, size_t count) {
  pool_state *st = pool->st;
  unsigned c = class_of(st, bytes);
  if (bytes && c == st->class_count)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "bytes %zu is above the largest size class (%zu bytes): only size classes "
                       "are warmed",
                       bytes, st->classes[st->class_count - 1].bytes);
  if (st->mode != MODE_ON)
    return KILN_SUCCESS; /* off: nothing cached; debug: blocks are never reused */
  kiln_status s = KILN_SUCCESS;
  pthread_mutex_lock(&st->lock);
  for (unsigned i = bytes ? c : 0; i < (bytes ? c + 1 : st->class_count) && s == KILN_SUCCESS; i++)
    s = warm_locked(st, i, count);
  pthread_mutex_unlock(&st->lock);
  return s;
}

kiln_status kiln_pool_warm(kiln_pool pool, size_t bytes, size_t count) {
  KILN__API_ENTER();
  kiln_status s = check_pool(pool);
  if (s == KILN_SUCCESS)
    s = pool_enter(pool);
  if (s != KILN_SUCCESS)
    return s;
  s = warm_entered(pool, bytes, count);
  pool_leave(pool);
  return s;
}

kiln_status kiln_pool_trim(kiln_pool pool, size_t bytes_to_keep) {
  KILN__API_ENTER();
  kiln_status s = check_pool(pool);
  if (s == KILN_SUCCESS)
    s = pool_enter(pool);
  if (s != KILN_SUCCESS)
    return s;
  pool_state *st = pool->st;
  pthread_mutex_lock(&st->lock);
  release_idle(st, bytes_to_keep, true);
  pthread_mutex_unlock(&st->lock);
  pool_leave(pool);
  return KILN_SUCCESS;
}

kiln_status kiln_pool_compact(kiln_pool pool) {
  KILN__API_ENTER();
  kiln_status s = check_pool(pool);
  if (s == KILN_SUCCESS)
    s = pool_enter(pool);
  if (s != KILN_SUCCESS)
    return s;
  pool_state *st = pool->st;
  pthread_mutex_lock(&st->lock);
  release_idle(st, 0, true);
  /* Free fit blocks whose frees are done merge now; cached views of free blocks go. */
  for (unsigned i = 0; i < FIT_BINS; i++)
    for (pool_block *b = st->bins[i], *next; b; b = next) {
      next = b->next;
      block_drop_view(st, b);
    }
  pthread_mutex_unlock(&st->lock);
  pool_leave(pool);
  return KILN_SUCCESS;
}

/* Largest contiguous free block of the pool. */
static uint64_t largest_free(const pool_state *st) {
  uint64_t best = 0;
  for (const pool_slab *sl = st->slabs; sl; sl = sl->next) {
    if (sl->kind == SLAB_CLASS) {
      uint64_t tail = sl->buf.bytes - sl->carved;
      if (tail > best)
        best = tail;
    }
    /* runs of adjacent free blocks (uncarved class space follows the last block) */
    uint64_t run = 0;
    for (const pool_block *b = sl->first; b; b = b->phys_next) {
      if (b->state == BLOCK_FREE) {
        run += sl->kind == SLAB_CLASS ? st->classes[sl->cls].stride : b->bytes;
        if (!b->phys_next && sl->kind == SLAB_CLASS)
          run += sl->buf.bytes - sl->carved;
      } else {
        run = 0;
      }
      if (run > best)
        best = run;
    }
  }
  return best;
}

kiln_status kiln_pool_get_stats(kiln_pool pool, kiln_pool_stats *stats) {
  KILN__API_ENTER();
  if (!stats)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stats is NULL");
  if (stats->struct_size < sizeof(kiln_pool_stats))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "stats->struct_size is %zu, expected at least %zu: initialise it with "
                       "KILN_POOL_STATS_INIT",
                       stats->struct_size, sizeof(kiln_pool_stats));
  kiln_status s = check_pool(pool);
  if (s == KILN_SUCCESS)
    s = pool_enter(pool);
  if (s != KILN_SUCCESS)
    return s;
  pool_state *st = pool->st;
  pthread_mutex_lock(&st->lock);
  retire_poll(st, false);
  *stats = st->s;
  stats->struct_size = sizeof(kiln_pool_stats);
  stats->bytes_cached = cached_bytes(st);
  stats->largest_free_bytes = largest_free(st);
  if (stats->largest_free_bytes > stats->bytes_cached)
    stats->largest_free_bytes = stats->bytes_cached;
  stats->fragmentation = stats->bytes_cached
                             ? 1.0 - (double)stats->largest_free_bytes / (double)stats->bytes_cached
                             : 0.0;
  stats->pending_frees = st->retire_count;
  stats->class_count = st->class_count;
  for (unsigned c = 0; c < st->class_count; c++) {
    const pool_class *pc = &st->classes[c];
    kiln_pool_class_stats *cs = &stats->classes[c];
    cs->block_bytes = pc->bytes;
    cs->hits = pc->hits;
    cs->misses = pc->misses;
    cs->live = pc->live;
    cs->free = pc->free;
  }
  pthread_mutex_unlock(&st->lock);
  pool_leave(pool);
  return KILN_SUCCESS;
}

/* ------------------------------------------------------------- JSON */
typedef struct json_out {
  char *buf;
  size_t cap, len;
} json_out;

static void jprintf(json_out *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jprintf(json_out *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *dst = j->len < j->cap ? j->buf + j->len : NULL;
  size_t room = j->len < j->cap ? j->cap - j->len : 0;
  int n = vsnprintf(dst, room, fmt, ap);
  va_end(ap);
  if (n > 0)
    j->len += (size_t)n;
}

kiln_status kiln_pool_stats_json(const kiln_pool_stats *stats, char *out, size_t out_bytes,
                                 size_t *needed) {
  KILN__API_ENTER();
  if (needed)
    *needed = 0;
  if (!stats)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "stats is NULL");
  if (stats->struct_size < sizeof(kiln_pool_stats))
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "stats->struct_size is %zu, expected at least %zu: fill it with "
                       "kiln_pool_get_stats",
                       stats->struct_size, sizeof(kiln_pool_stats));
  if (!out && out_bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "out is NULL with out_bytes %zu", out_bytes);
  if (stats->class_count > KILN_POOL_MAX_CLASSES)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "stats->class_count is %u, more than KILN_POOL_MAX_CLASSES (%d)",
                       stats->class_count, KILN_POOL_MAX_CLASSES);
  json_out j = {out, out_bytes, 0};
  const kiln_pool_stats *s = stats;
  jprintf(&j,
          "{\"hits\": %llu, \"misses\": %llu, \"allocs\": %llu, \"frees\": %llu, "
          "\"bytes_in_use\": %llu, \"bytes_in_use_peak\": %llu, \"bytes_reserved\": %llu, "
          "\"bytes_reserved_peak\": %llu, \"bytes_cached\": %llu, \"largest_free_bytes\": %llu, "
          "\"fragmentation\": %.6f, \"hit_rate\": %.6f, \"slabs\": %llu, \"device_allocs\": %llu, "
          "\"device_frees\": %llu, \"huge_live\": %llu, \"pending_frees\": %llu, \"classes\": [",
          (unsigned long long)s->hits, (unsigned long long)s->misses, (unsigned long long)s->allocs,
          (unsigned long long)s->frees, (unsigned long long)s->bytes_in_use,
          (unsigned long long)s->bytes_in_use_peak, (unsigned long long)s->bytes_reserved,
          (unsigned long long)s->bytes_reserved_peak, (unsigned long long)s->bytes_cached,
          (unsigned long long)s->largest_free_bytes, s->fragmentation,
          s->hits + s->misses ? (double)s->hits / (double)(s->hits + s->misses) : 0.0,
          (unsigned long long)s->slabs, (unsigned long long)s->device_allocs,
          (unsigned long long)s->device_frees, (unsigned long long)s->huge_live,
          (unsigned long long)s->pending_frees);
  for (unsigned c = 0; c < s->class_count; c++) {
    const kiln_pool_class_stats *cs = &s->classes[c];
    jprintf(&j,
            "%s{\"block_bytes\": %zu, \"hits\": %llu, \"misses\": %llu, \"live\": %llu, "
            "\"free\": %llu}",
            c ? ", " : "", cs->block_bytes, (unsigned long long)cs->hits,
            (unsigned long long)cs->misses, (unsigned long long)cs->live,
            (unsigned long long)cs->free);
  }
  jprintf(&j, "]}");
  if (needed)
    *needed = j.len;
  if (j.len >= out_bytes) {
    if (out && out_bytes)
      out[0] = '\0';
    kiln__error(KILN_ERROR_OUT_OF_RANGE, "the pool's stats take %zu bytes of JSON; out has %zu",
                j.len + 1, out_bytes);
    kiln__error_suggest("pass a buffer of at least *needed + 1 bytes");
    return KILN_ERROR_OUT_OF_RANGE;
  }
  return KILN_SUCCESS;
}
