/* SPDX-License-Identifier: MIT */
/* Lock-free message rings (include/kiln/ring.h, docs/ring.md). Owns the shared block
 * layout (ring_block below; include/kiln/dialect/ring.h mirrors it for kernels), the
 * handle table, and the SPSC and MPMC (Vyukov's bounded queue) protocols.
 * Invariants: indices are 32-bit and wrap (capacity <= 2^30, so differences fit in
 * int32); tail - head <= capacity; an MPMC slot's seq is pos (free for the push of
 * position pos), pos + 1 (holds the message of position pos) or pos + capacity (freed
 * by the pop of pos, free for the next lap). The data calls take no lock and write no
 * thread-local state on their fast paths; they validate the handle with one table
 * range check and a tag load. Any thread, under each call's kind contract. */
#include "ring/ring_layout.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "kiln/host.h"
#include "kiln/ring.h"
#include "platform/platform.h"

/* ---------------------------------------------------------------- handles */
#define RING_TAG_LIVE 0x52494e00u  /* "RIN" + the kind in the low byte while live */
#define GROUP_TAG_LIVE 0x52475250u /* RGRP */
#define RING_SLOTS 4096u
#define GROUP_SLOTS 256u
#define GROUP_MAX_PARTITIONS 256u

/* One process's view of a ring: a copy of the geometry, so the fast paths read one
 * line of their own and the block's hot lines. 128 bytes, so the table index is a
 * shift. */
typedef struct ring_obj {
  _Atomic uint32_t tag; /* RING_TAG_LIVE | kind while the handle lives, else 0 */
  uint32_t kind, mask, capacity, message_bytes, slot_bytes;
  ring_block *block;
  unsigned char *slots;
  kiln_context owner; /* kiln_ring_create's context (frees the block), else NULL */
  unsigned char pad[128 - 48];
} ring_obj;
_Static_assert(sizeof(ring_obj) == 128, "ring_obj is 128 bytes");

typedef struct group_obj {
  _Atomic uint32_t tag;
  uint32_t partitions;
  ring_obj **rings; /* kiln__alloc'd array of `partitions` */
  unsigned char pad[128 - 16];
} group_obj;
_Static_assert(sizeof(group_obj) == 128, "group_obj is 128 bytes");

static _Alignas(128) ring_obj ring_table[RING_SLOTS];
static _Alignas(128) group_obj group_table[GROUP_SLOTS];

/* Slot allocation: fresh slots first, then freed ones in FIFO order (the longest-dead
 * slot is reused first, so a stale handle is refused for as long as possible). */
typedef struct slot_pool {
  pthread_mutex_t lock;
  uint32_t fresh, head, count, size;
  uint32_t *fifo; /* ring of freed indices, `size` entries */
} slot_pool;
static uint32_t ring_fifo[RING_SLOTS], group_fifo[GROUP_SLOTS];
static slot_pool ring_slots = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, RING_SLOTS, ring_fifo};
static slot_pool group_slots = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, GROUP_SLOTS, group_fifo};

static bool slot_take(slot_pool *p, uint32_t *index) {
  bool ok = true;
  pthread_mutex_lock(&p->lock);
  if (p->fresh < p->size) {
    *index = p->fresh++;
  } else if (p->count) {
    *index = p->fifo[p->head];
    p->head = (p->head + 1) % p->size;
    p->count--;
  } else {
    ok = false;
  }
  pthread_mutex_unlock(&p->lock);
  return ok;
}

static void slot_give(slot_pool *p, uint32_t index) {
  pthread_mutex_lock(&p->lock);
  p->fifo[(p->head + p->count) % p->size] = index;
  p->count++;
  pthread_mutex_unlock(&p->lock);
}

/* The live ring behind a handle, or NULL. */
static inline ring_obj *ring_of(kiln_ring r) {
  uintptr_t p = (uintptr_t)r, base = (uintptr_t)ring_table;
  if (p - base >= sizeof ring_table || (p - base) % sizeof(ring_obj))
    return NULL;
  ring_obj *o = (ring_obj *)r;
  /* acquire: pairs with the release store of the tag in ring_publish, so the
   * geometry written before it is visible */
  uint32_t tag = atomic_load_explicit(&o->tag, memory_order_acquire);
  return (tag & ~0xffu) == RING_TAG_LIVE ? o : NULL;
}

/* The live ring of kind `kind` behind a handle, or NULL: one compare for the data
 * calls' fast path (the tag holds the kind). */
static inline ring_obj *ring_of_kind(kiln_ring r, uint32_t kind) {
  uintptr_t p = (uintptr_t)r, base = (uintptr_t)ring_table;
  if (p - base >= sizeof ring_table || (p - base) % sizeof(ring_obj))
    return NULL;
  ring_obj *o = (ring_obj *)r;
  /* acquire: pairs with the release store of the tag in ring_publish */
  return atomic_load_explicit(&o->tag, memory_order_acquire) == (RING_TAG_LIVE | kind) ? o : NULL;
}

static group_obj *group_of(kiln_ring_group g) {
  uintptr_t p = (uintptr_t)g, base = (uintptr_t)group_table;
  if (p - base >= sizeof group_table || (p - base) % sizeof(group_obj))
    return NULL;
  group_obj *o = (group_obj *)g;
  /* acquire: pairs with the release store in kiln_ring_group_create */
  return atomic_load_explicit(&o->tag, memory_order_acquire) == GROUP_TAG_LIVE ? o : NULL;
}

/* ---------------------------------------------------------------- errors (cold) */
#define COLD __attribute__((cold, noinline))

/* Error detail for a call that did not enter through KILN__API_ENTER (the data calls
 * record their name only when they fail). */
static COLD kiln_status refuse(const char *fn, kiln_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kiln_status refuse(const char *fn, kiln_status s, const char *fmt, ...) {
  kiln__api_enter(fn, NULL, 0);
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return kiln__error(s, "%s", msg);
}

static COLD kiln_status bad_ring(const char *fn, kiln_ring r) {
  if (!r)
    return refuse(fn, KILN_ERROR_INVALID_HANDLE, "ring is NULL");
  kiln_status s = refuse(fn, KILN_ERROR_INVALID_HANDLE,
                         "ring %p is not a live ring handle (destroyed, or never one)", (void *)r);
  kiln__error_suggest("use a handle from kiln_ring_create, kiln_ring_init_in or "
                      "kiln_ring_attach that has not been destroyed");
  return s;
}

static const char *kind_name(uint32_t kind) {
  return kind == KILN_RING_SPSC ? "SPSC" : kind == KILN_RING_MPMC ? "MPMC" : "unknown";
}

static COLD kiln_status wrong_kind(const char *fn, const ring_obj *o, const char *other) {
  kiln_status s =
      refuse(fn, KILN_ERROR_INVALID_ARGUMENT, "ring %p is an %s ring: %s is for %s rings",
             (const void *)o, kind_name(o->kind), fn, o->kind == KILN_RING_SPSC ? "MPMC" : "SPSC");
  kiln__error_suggest("call %s instead (the kind is fixed at creation: kiln_ring_desc.kind)",
                      other);
  return s;
}

static COLD kiln_status null_arg(const char *fn, const char *what) {
  return refuse(fn, KILN_ERROR_INVALID_ARGUMENT, "%s is NULL", what);
}

/* A data call refused before it started: a dead handle, or a live one of the other kind. */
static COLD kiln_status bad_handle(const char *fn, kiln_ring r, const char *other) {
  ring_obj *o = ring_of(r);
  return o ? wrong_kind(fn, o, other) : bad_ring(fn, r);
}

/* Validate a data call: live handle of the right kind and a non-NULL message pointer.
 * `other` names the same call for the other kind (for the suggestion). */
#define CHECK_DATA(fn, r, want_kind, ptr, ptr_name, other) \
  ring_obj *o = ring_of_kind(r, want_kind);                \
  if (__builtin_expect(!o, 0))                             \
    return bad_handle(fn, r, other);                       \
  if (__builtin_expect(!(ptr), 0))                         \
  return null_arg(fn, ptr_name)

/* ---------------------------------------------------------------- geometry */
static uint32_t slot_bytes_of(uint32_t message_bytes) {
  return KILN__RING_SLOT_HEADER + ((message_bytes + 7u) & ~7u);
}

/* desc (NULL: defaults) resolved into *out, or INVALID_ARGUMENT naming the field. */
static kiln_status resolve_desc(const char *fn, const kiln_ring_desc *desc, kiln_ring_desc *out) {
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  if (desc) {
    if (desc->struct_size < offsetof(kiln_ring_desc, message_bytes) + sizeof(uint32_t)) {
      kiln_status s = refuse(fn, KILN_ERROR_INVALID_ARGUMENT,
                             "desc->struct_size is %zu, less than the %zu bytes of "
                             "kiln_ring_desc this kiln needs",
                             desc->struct_size, sizeof(kiln_ring_desc));
      kiln__error_suggest("initialise the description with KILN_RING_DESC_INIT");
      return s;
    }
    d.kind = desc->kind;
    d.capacity = desc->capacity;
    d.message_bytes = desc->message_bytes;
  }
  if (!d.kind)
    d.kind = KILN_RING_MPMC;
  if (!d.capacity)
    d.capacity = KILN_RING_DEFAULT_CAPACITY;
  if (!d.message_bytes)
    d.message_bytes = KILN_RING_DEFAULT_MESSAGE_BYTES;
  if (d.kind != KILN_RING_SPSC && d.kind != KILN_RING_MPMC) {
    kiln_status s =
        refuse(fn, KILN_ERROR_INVALID_ARGUMENT, "desc->kind is %d, not a ring kind", (int)d.kind);
    kiln__error_suggest("use KILN_RING_SPSC (1), KILN_RING_MPMC (2) or 0 for MPMC");
    return s;
  }
  if (d.capacity < 2 || d.capacity > KILN_RING_MAX_CAPACITY || (d.capacity & (d.capacity - 1))) {
    kiln_status s = refuse(fn, KILN_ERROR_INVALID_ARGUMENT,
                           "desc->capacity is %u: a ring's capacity must be a power of two in "
                           "[2, %u]",
                           d.capacity, KILN_RING_MAX_CAPACITY);
    uint32_t up = 2;
    while (up < d.capacity && up < KILN_RING_MAX_CAPACITY)
      up <<= 1;
    kiln__error_suggest("use %u (or 0 for the default %u)", up, KILN_RING_DEFAULT_CAPACITY);
    return s;
  }
  if (d.message_bytes > KILN_RING_MAX_MESSAGE_BYTES) {
    kiln_status s = refuse(fn, KILN_ERROR_INVALID_ARGUMENT,
                           "desc->message_bytes is %u, more than the %u bytes a ring message "
                           "may have",
                           d.message_bytes, KILN_RING_MAX_MESSAGE_BYTES);
    kiln__error_suggest("pass larger payloads in a buffer and send its offset in the message");
    return s;
  }
  *out = d;
  return KILN_SUCCESS;
}

static size_t block_bytes(const kiln_ring_desc *d) {
  return KILN__RING_SLOTS_OFFSET + (size_t)d->capacity * slot_bytes_of(d->message_bytes);
}

kiln_status kiln_ring_bytes_needed(const kiln_ring_desc *desc, size_t *bytes) {
  KILN__API_ENTER();
  if (!bytes)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "bytes (the out-parameter) is NULL");
  *bytes = 0;
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  kiln_status s = resolve_desc(__func__, desc, &d);
  if (s == KILN_SUCCESS)
    *bytes = block_bytes(&d);
  return s;
}

/* ---------------------------------------------------------------- block and handle */
static void format_block(ring_block *b, const kiln_ring_desc *d, size_t bytes) {
  memset(b, 0, KILN__RING_SLOTS_OFFSET);
  b->version = KILN__RING_VERSION;
  b->kind = (uint32_t)d->kind;
  b->capacity = d->capacity;
  b->message_bytes = d->message_bytes;
  b->slot_bytes = slot_bytes_of(d->message_bytes);
  b->slots_offset = KILN__RING_SLOTS_OFFSET;
  b->total_bytes = bytes;
  unsigned char *slots = (unsigned char *)b + KILN__RING_SLOTS_OFFSET;
  for (uint32_t i = 0; i < d->capacity; i++) {
    ring_slot *sl = (ring_slot *)(slots + (size_t)i * b->slot_bytes);
    atomic_init(&sl->seq, i); /* free for the push of position i */
    sl->reserved = 0;
  }
  /* release: the magic is stored last, so a thread or device that reads it (acquire)
   * sees a formatted block; pairs with the acquire load in check_block and in the
   * dialect header */
  atomic_store_explicit(&b->magic, KILN__RING_MAGIC, memory_order_release);
}

/* A handle for a formatted block (geometry already checked). */
static kiln_status ring_publish(const char *fn, ring_block *b, kiln_context owner, kiln_ring *out) {
  uint32_t index;
  if (!slot_take(&ring_slots, &index)) {
    kiln_status s = refuse(fn, KILN_ERROR_LIMIT_EXCEEDED,
                           "all %u ring handles of the process are in use", RING_SLOTS);
    kiln__error_suggest("destroy rings you no longer use, or put messages for several "
                        "workers through one MPMC ring");
    return s;
  }
  ring_obj *o = &ring_table[index];
  o->kind = b->kind;
  o->capacity = b->capacity;
  o->mask = b->capacity - 1u;
  o->message_bytes = b->message_bytes;
  o->slot_bytes = b->slot_bytes;
  o->block = b;
  o->slots = (unsigned char *)b + b->slots_offset;
  o->owner = owner;
  /* release: pairs with the acquire load in ring_of (the fields above are visible to
   * any thread that sees the tag) */
  atomic_store_explicit(&o->tag, RING_TAG_LIVE | b->kind, memory_order_release);
  *out = (kiln_ring)o;
  return KILN_SUCCESS;
}

static void ring_unpublish(ring_obj *o) {
  atomic_store_explicit(&o->tag, 0, memory_order_relaxed); /* the slot lock orders reuse */
  slot_give(&ring_slots, (uint32_t)(o - ring_table));
}

kiln_status kiln_ring_init_in(void *memory, size_t bytes, const kiln_ring_desc *desc,
                              kiln_ring *ring) {
  KILN__API_ENTER();
  if (!ring)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ring (the out-parameter) is NULL");
  *ring = NULL;
  if (!memory)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "memory is NULL");
  if ((uintptr_t)memory % KILN__RING_ALIGN) {
    kiln_status s = kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                                "memory %p is not %u-byte aligned (a ring's header keeps its "
                                "indices on lines of their own)",
                                memory, KILN__RING_ALIGN);
    kiln__error_suggest("align the memory to %u bytes (kiln_host_alloc and kiln buffers are)",
                        KILN__RING_ALIGN);
    return s;
  }
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  kiln_status s = resolve_desc(__func__, desc, &d);
  if (s != KILN_SUCCESS)
    return s;
  size_t need = block_bytes(&d);
  if (bytes < need) {
    s = kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                    "bytes is %zu, less than the %zu bytes a ring of %u slots of %u-byte "
                    "messages needs",
                    bytes, need, d.capacity, d.message_bytes);
    kiln__error_suggest("size the memory with kiln_ring_bytes_needed");
    return s;
  }
  format_block((ring_block *)memory, &d, need);
  return ring_publish(__func__, (ring_block *)memory, NULL, ring);
}

kiln_status kiln_ring_create(kiln_context context, const kiln_ring_desc *desc, kiln_ring *ring) {
  KILN__API_ENTER();
  if (!ring)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ring (the out-parameter) is NULL");
  *ring = NULL;
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  kiln_status s = resolve_desc(__func__, desc, &d);
  if (s != KILN_SUCCESS)
    return s;
  size_t need = block_bytes(&d);
  void *mem = NULL;
  if ((s = kiln_host_alloc(context, need, &mem)) != KILN_SUCCESS)
    return s; /* the detail names the context or the allocation */
  format_block((ring_block *)mem, &d, need);
  if ((s = ring_publish(__func__, (ring_block *)mem, context, ring)) != KILN_SUCCESS)
    kiln_host_free(context, mem); /* succeeds: leaves the detail ring_publish set */
  return KILN_SUCCESS;
}

kiln_status kiln_ring_attach(void *memory, size_t bytes, kiln_ring *ring) {
  KILN__API_ENTER();
  if (!ring)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ring (the out-parameter) is NULL");
  *ring = NULL;
  if (!memory)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "memory is NULL");
  if ((uintptr_t)memory % KILN__RING_ALIGN)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "memory %p is not %u-byte aligned", memory,
                       KILN__RING_ALIGN);
  if (bytes < KILN__RING_SLOTS_OFFSET)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "bytes is %zu, less than a ring's %u-byte header", bytes,
                       KILN__RING_SLOTS_OFFSET);
  ring_block *b = memory;
  /* acquire: pairs with the release store of the magic in format_block */
  uint32_t magic = atomic_load_explicit(&b->magic, memory_order_acquire);
  if (magic != KILN__RING_MAGIC) {
    kiln_status s = kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                                "memory %p holds no ring (magic 0x%08x, expected 0x%08x)", memory,
                                magic, KILN__RING_MAGIC);
    kiln__error_suggest("format it with kiln_ring_init_in first");
    return s;
  }
  if (b->version != KILN__RING_VERSION)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "the ring at %p has layout version %u; this kiln reads version %u", memory,
                       b->version, KILN__RING_VERSION);
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  d.kind = (kiln_ring_kind)b->kind;
  d.capacity = b->capacity;
  d.message_bytes = b->message_bytes;
  if (!d.kind || !d.capacity || !d.message_bytes) /* 0 would mean "default" to resolve_desc */
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "the ring at %p has a corrupt header (kind %u, capacity %u, "
                       "message_bytes %u)",
                       memory, b->kind, b->capacity, b->message_bytes);
  kiln_status s = resolve_desc(__func__, &d, &d);
  if (s != KILN_SUCCESS)
    return s;
  size_t need = block_bytes(&d);
  if (b->slot_bytes != slot_bytes_of(d.message_bytes) ||
      b->slots_offset != KILN__RING_SLOTS_OFFSET || b->total_bytes != need)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "the ring at %p has a corrupt header (slot_bytes %u, slots_offset %u, "
                       "total_bytes %llu for %u slots of %u bytes)",
                       memory, b->slot_bytes, b->slots_offset, (unsigned long long)b->total_bytes,
                       d.capacity, d.message_bytes);
  if (bytes < need)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                       "bytes is %zu, but the ring at %p spans %zu bytes", bytes, memory, need);
  return ring_publish(__func__, b, NULL, ring);
}

kiln_status kiln_ring_destroy(kiln_ring ring) {
  KILN__API_ENTER();
  if (!ring)
    return KILN_SUCCESS;
  ring_obj *o = ring_of(ring);
  if (!o)
    return bad_ring(__func__, ring);
  kiln_context owner = o->owner;
  ring_block *b = o->block;
  ring_unpublish(o);
  if (owner) {
    atomic_store_explicit(&b->magic, 0, memory_order_relaxed); /* attach refuses it now */
    kiln_status s = kiln_host_free(owner, b);
    /* a destroyed context freed the block already: the handle is gone all the same */
    if (s == KILN_ERROR_INVALID_HANDLE)
      kiln_clear_error();
    else if (s != KILN_SUCCESS)
      return s;
  }
  return KILN_SUCCESS;
}

kiln_status kiln_ring_get_info(kiln_ring ring, kiln_ring_info *info) {
  KILN__API_ENTER();
  ring_obj *o = ring_of(ring);
  if (!o)
    return bad_ring(__func__, ring);
  if (!info)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "info is NULL");
  if (info->struct_size < sizeof(kiln_ring_info)) {
    kiln_status s = kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                                "info->struct_size is %zu, less than the %zu bytes of "
                                "kiln_ring_info",
                                info->struct_size, sizeof(kiln_ring_info));
    kiln__error_suggest("initialise it with KILN_RING_INFO_INIT");
    return s;
  }
  info->kind = (kiln_ring_kind)o->kind;
  info->capacity = o->capacity;
  info->message_bytes = o->message_bytes;
  info->slot_bytes = o->slot_bytes;
  info->bytes = (size_t)o->block->total_bytes;
  info->memory = o->block;
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- wakeups */
/* A sleeper raises `waiters`, makes a heavy barrier (membarrier) and looks at the ring
 * again before it sleeps on `futex`; the other side publishes (its release store),
 * then this: a compiler barrier and a relaxed load of `waiters`. The heavy barrier
 * orders the sleeper against every thread of the process (liburcu's asymmetric
 * fences): either the sleeper's second look sees the message, or the publisher's load
 * sees the sleeper. */
static COLD void wake_slow(_Atomic uint32_t *futex) {
  /* relaxed: the futex word only changes the value a sleeper compares; the ring's own
   * indices carry the data */
  atomic_fetch_add_explicit(futex, 1, memory_order_relaxed);
  kiln__futex_wake_all((const uint32_t *)futex);
}

static inline void wake(_Atomic uint32_t *waiters, _Atomic uint32_t *futex) {
  /* compiler barrier: pairs with the sleeper's kiln__heavy_barrier (see above) */
  atomic_signal_fence(memory_order_seq_cst);
  /* relaxed: ordered by the heavy barrier of the sleeper */
  if (__builtin_expect(atomic_load_explicit(waiters, memory_order_relaxed) != 0, 0))
    wake_slow(futex);
}

/* ---------------------------------------------------------------- SPSC */
static inline ring_slot *slot_at(const ring_obj *o, uint32_t pos) {
  return (ring_slot *)(o->slots + (size_t)(pos & o->mask) * o->slot_bytes);
}

/* Copy one message of n bytes without a loop for n <= 64: overlapping 16-, 8-, 4-byte
 * moves that cover [0, n) exactly (what memcpy does inside, without the call); larger
 * messages go to memcpy. perf: at ~12 ns a message between two cores, glibc's memmove
 * call, then a word loop, cost kiln's SPSC ring a quarter of its throughput against
 * ck_ring, which copies a fixed-size struct inline. */
typedef struct bytes16 {
  unsigned char b[16];
} bytes16;
typedef struct bytes8 {
  unsigned char b[8];
} bytes8;
typedef struct bytes4 {
  unsigned char b[4];
} bytes4;

/* Messages above 64 bytes: out of line, so the fast paths make no call (and need no
 * frame) for the small ones. */
static __attribute__((noinline)) void copy_large(unsigned char *restrict dst,
                                                 const unsigned char *restrict src, uint32_t n) {
  memcpy(dst, src, n);
}

static inline void copy_msg(unsigned char *restrict dst, const unsigned char *restrict src,
                            uint32_t n) {
  if (n >= 16) {
    if (n > 64) {
      copy_large(dst, src, n);
      return;
    }
    uint32_t o1 = n - 16 < 16 ? n - 16 : 16, o2 = n - 16 < 32 ? n - 16 : 32, o3 = n - 16;
    bytes16 a, b, c, d;
    memcpy(&a, src, 16);
    memcpy(&b, src + o1, 16);
    memcpy(&c, src + o2, 16);
    memcpy(&d, src + o3, 16);
    memcpy(dst, &a, 16);
    memcpy(dst + o1, &b, 16);
    memcpy(dst + o2, &c, 16);
    memcpy(dst + o3, &d, 16);
  } else if (n >= 8) {
    bytes8 a, b;
    memcpy(&a, src, 8);
    memcpy(&b, src + n - 8, 8);
    memcpy(dst, &a, 8);
    memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    bytes4 a, b;
    memcpy(&a, src, 4);
    memcpy(&b, src + n - 4, 4);
    memcpy(dst, &a, 4);
    memcpy(dst + n - 4, &b, 4);
  } else {
    unsigned char a = src[0], b = src[n / 2], c = src[n - 1];
    dst[0] = a;
    dst[n / 2] = b;
    dst[n - 1] = c;
  }
}

/* Push up to n messages (n >= 1); returns how many. */
static inline uint32_t spsc_push(ring_obj *o, const unsigned char *msgs, uint32_t n) {
  ring_block *b = o->block;
  /* relaxed: only this producer writes tail */
  uint32_t t = atomic_load_explicit(&b->tail, memory_order_relaxed);
  /* relaxed: head_cache is this producer's own copy */
  uint32_t h = atomic_load_explicit(&b->head_cache, memory_order_relaxed);
  uint32_t room = o->capacity - (t - h);
  if (room < n) {
    /* acquire: pairs with the consumer's release store of head, so its reads of the
     * slots it freed are done before we overwrite them */
    h = atomic_load_explicit(&b->head, memory_order_acquire);
    atomic_store_explicit(&b->head_cache, h, memory_order_relaxed); /* own copy */
    room = o->capacity - (t - h);
    if (!room)
      return 0;
    if (room < n)
      n = room;
  }
  for (uint32_t i = 0; i < n; i++)
    copy_msg(slot_at(o, t + i)->data, msgs + (size_t)i * o->message_bytes, o->message_bytes);
  /* release: pairs with the consumer's acquire load of tail (the messages are written) */
  atomic_store_explicit(&b->tail, t + n, memory_order_release);
  wake(&b->pop_waiters, &b->pop_futex);
  return n;
}

static inline uint32_t spsc_pop(ring_obj *o, unsigned char *msgs, uint32_t n) {
  ring_block *b = o->block;
  /* relaxed: only this consumer writes head */
  uint32_t h = atomic_load_explicit(&b->head, memory_order_relaxed);
  /* relaxed: tail_cache is this consumer's own copy */
  uint32_t t = atomic_load_explicit(&b->tail_cache, memory_order_relaxed);
  uint32_t have = t - h;
  if (have < n) {
    /* acquire: pairs with the producer's release store of tail */
    t = atomic_load_explicit(&b->tail, memory_order_acquire);
    atomic_store_explicit(&b->tail_cache, t, memory_order_relaxed); /* own copy */
    have = t - h;
    if (!have)
      return 0;
    if (have < n)
      n = have;
  }
  for (uint32_t i = 0; i < n; i++)
    copy_msg(msgs + (size_t)i * o->message_bytes, slot_at(o, h + i)->data, o->message_bytes);
  /* release: pairs with the producer's acquire load of head (our reads are done) */
  atomic_store_explicit(&b->head, h + n, memory_order_release);
  wake(&b->push_waiters, &b->push_futex);
  return n;
}

/* ---------------------------------------------------------------- MPMC (Vyukov) */
static inline int32_t seq_diff(uint32_t a, uint32_t b) {
  return (int32_t)(a - b);
}

static inline uint32_t mpmc_push(ring_obj *o, const unsigned char *msgs, uint32_t n) {
  ring_block *b = o->block;
  /* relaxed: a hint; the compare-exchange below decides */
  uint32_t pos = atomic_load_explicit(&b->tail, memory_order_relaxed);
  uint32_t got;
  for (;;) {
    got = 0;
    while (got < n) {
      /* acquire: pairs with the release store of seq by the pop that freed the slot
       * (its reads of the old message are done) */
      uint32_t seq = atomic_load_explicit(&slot_at(o, pos + got)->seq, memory_order_acquire);
      if (seq != pos + got)
        break;
      got++;
    }
    if (!got) {
      uint32_t seq = atomic_load_explicit(&slot_at(o, pos)->seq, memory_order_relaxed);
      if (seq_diff(seq, pos) < 0) {
        /* the slot still holds the previous lap's message: full, unless tail moved */
        uint32_t now = atomic_load_explicit(&b->tail, memory_order_relaxed); /* a hint */
        if (now == pos)
          return 0;
        pos = now;
      } else {
        pos = atomic_load_explicit(&b->tail, memory_order_relaxed); /* another push won */
      }
      continue;
    }
    /* relaxed: the claim orders nothing; the data goes through each slot's seq */
    if (atomic_compare_exchange_weak_explicit(&b->tail, &pos, pos + got, memory_order_relaxed,
                                              memory_order_relaxed))
      break;
  }
  for (uint32_t i = 0; i < got; i++) {
    ring_slot *sl = slot_at(o, pos + i);
    copy_msg(sl->data, msgs + (size_t)i * o->message_bytes, o->message_bytes);
    /* release: pairs with the popper's acquire load of seq (the message is written) */
    atomic_store_explicit(&sl->seq, pos + i + 1u, memory_order_release);
  }
  wake(&b->pop_waiters, &b->pop_futex);
  return got;
}

static inline uint32_t mpmc_pop(ring_obj *o, unsigned char *msgs, uint32_t n) {
  ring_block *b = o->block;
  /* relaxed: a hint; the compare-exchange below decides */
  uint32_t pos = atomic_load_explicit(&b->head, memory_order_relaxed);
  uint32_t got;
  for (;;) {
    got = 0;
    while (got < n) {
      /* acquire: pairs with the pusher's release store of seq (the message is there) */
      uint32_t seq = atomic_load_explicit(&slot_at(o, pos + got)->seq, memory_order_acquire);
      if (seq != pos + got + 1u)
        break;
      got++;
    }
    if (!got) {
      uint32_t seq = atomic_load_explicit(&slot_at(o, pos)->seq, memory_order_relaxed);
      if (seq_diff(seq, pos + 1u) < 0) {
        /* not pushed yet: empty, unless head moved */
        uint32_t now = atomic_load_explicit(&b->head, memory_order_relaxed); /* a hint */
        if (now == pos)
          return 0;
        pos = now;
      } else {
        pos = atomic_load_explicit(&b->head, memory_order_relaxed); /* another pop won */
      }
      continue;
    }
    /* relaxed: the claim orders nothing; the data went through the slots' seq */
    if (atomic_compare_exchange_weak_explicit(&b->head, &pos, pos + got, memory_order_relaxed,
                                              memory_order_relaxed))
      break;
  }
  for (uint32_t i = 0; i < got; i++) {
    ring_slot *sl = slot_at(o, pos + i);
    copy_msg(msgs + (size_t)i * o->message_bytes, sl->data, o->message_bytes);
    /* release: pairs with the next lap's pusher's acquire load (our read is done) */
    atomic_store_explicit(&sl->seq, pos + i + o->capacity, memory_order_release);
  }
  wake(&b->push_waiters, &b->push_futex);
  return got;
}

static inline void count_overflow(ring_obj *o, uint64_t n) {
  /* relaxed: a statistic; nothing is ordered by it */
  atomic_fetch_add_explicit(&o->block->overflow, n, memory_order_relaxed);
}

/* ---------------------------------------------------------------- public data calls */
kiln_status kiln_ring_try_push_spsc(kiln_ring ring, const void *msg) {
  CHECK_DATA("kiln_ring_try_push_spsc", ring, KILN_RING_SPSC, msg, "msg",
             "kiln_ring_try_push_mpmc");
  if (spsc_push(o, msg, 1))
    return KILN_SUCCESS;
  count_overflow(o, 1);
  return KILN_NOT_READY;
}

kiln_status kiln_ring_try_pop_spsc(kiln_ring ring, void *msg) {
  CHECK_DATA("kiln_ring_try_pop_spsc", ring, KILN_RING_SPSC, msg, "msg", "kiln_ring_try_pop_mpmc");
  return spsc_pop(o, msg, 1) ? KILN_SUCCESS : KILN_NOT_READY;
}

kiln_status kiln_ring_try_push_mpmc(kiln_ring ring, const void *msg) {
  CHECK_DATA("kiln_ring_try_push_mpmc", ring, KILN_RING_MPMC, msg, "msg",
             "kiln_ring_try_push_spsc");
  if (mpmc_push(o, msg, 1))
    return KILN_SUCCESS;
  count_overflow(o, 1);
  return KILN_NOT_READY;
}

kiln_status kiln_ring_try_pop_mpmc(kiln_ring ring, void *msg) {
  CHECK_DATA("kiln_ring_try_pop_mpmc", ring, KILN_RING_MPMC, msg, "msg", "kiln_ring_try_pop_spsc");
  return mpmc_pop(o, msg, 1) ? KILN_SUCCESS : KILN_NOT_READY;
}

typedef uint32_t (*batch_fn)(ring_obj *, unsigned char *, uint32_t);

static inline kiln_status batch(const char *fn, kiln_ring ring, uint32_t kind, const void *msgs,
                                size_t count, size_t *done, int push, const char *other) {
  if (__builtin_expect(!done, 0))
    return null_arg(fn, "done");
  *done = 0;
  CHECK_DATA(fn, ring, kind, msgs || !count, "msgs", other);
  if (!count)
    return KILN_SUCCESS;
  uint32_t want = count > o->capacity ? o->capacity : (uint32_t)count;
  uint32_t got;
  if (push)
    got = kind == KILN_RING_SPSC ? spsc_push(o, msgs, want) : mpmc_push(o, msgs, want);
  else
    got = kind == KILN_RING_SPSC ? spsc_pop(o, (void *)(uintptr_t)msgs, want)
                                 : mpmc_pop(o, (void *)(uintptr_t)msgs, want);
  *done = got;
  if (push && got < count)
    count_overflow(o, count - got);
  return got ? KILN_SUCCESS : KILN_NOT_READY;
}

kiln_status kiln_ring_push_batch_spsc(kiln_ring ring, const void *msgs, size_t count,
                                      size_t *done) {
  return batch("kiln_ring_push_batch_spsc", ring, KILN_RING_SPSC, msgs, count, done, 1,
               "kiln_ring_push_batch_mpmc");
}

kiln_status kiln_ring_pop_batch_spsc(kiln_ring ring, void *msgs, size_t count, size_t *done) {
  return batch("kiln_ring_pop_batch_spsc", ring, KILN_RING_SPSC, msgs, count, done, 0,
               "kiln_ring_pop_batch_mpmc");
}

kiln_status kiln_ring_push_batch_mpmc(kiln_ring ring, const void *msgs, size_t count,
                                      size_t *done) {
  return batch("kiln_ring_push_batch_mpmc", ring, KILN_RING_MPMC, msgs, count, done, 1,
               "kiln_ring_push_batch_spsc");
}

kiln_status kiln_ring_pop_batch_mpmc(kiln_ring ring, void *msgs, size_t count, size_t *done) {
  return batch("kiln_ring_pop_batch_mpmc", ring, KILN_RING_MPMC, msgs, count, done, 0,
               "kiln_ring_pop_batch_spsc");
}

/* ---------------------------------------------------------------- blocking calls */
#define SLEEP_SLICE_MIN_NS 50000u   /* first sleep between looks: 50 us */
#define SLEEP_SLICE_MAX_NS 1000000u /* at most 1 ms (device and other-process pushes) */

static inline uint32_t one_op(ring_obj *o, void *msg, int push) {
  if (push)
    return o->kind == KILN_RING_SPSC ? spsc_push(o, msg, 1) : mpmc_push(o, msg, 1);
  return o->kind == KILN_RING_SPSC ? spsc_pop(o, msg, 1) : mpmc_pop(o, msg, 1);
}

static kiln_status wait_op(ring_obj *o, void *msg, uint64_t timeout_ns, int push) {
  if (one_op(o, msg, push))
    return KILN_SUCCESS;
  if (!timeout_ns)
    return KILN_TIMEOUT; /* one try, as documented */
  uint64_t start = kiln__now_ns();
  uint64_t deadline = timeout_ns > UINT64_MAX - start ? UINT64_MAX : start + timeout_ns;
  uint64_t spin_end = start + KILN__SPIN_NS < deadline ? start + KILN__SPIN_NS : deadline;
  kiln__backoff bo = {0};
  while (kiln__now_ns() < spin_end) {
    kiln__backoff_step(&bo);
    if (one_op(o, msg, push))
      return KILN_SUCCESS;
  }
  ring_block *b = o->block;
  _Atomic uint32_t *waiters = push ? &b->push_waiters : &b->pop_waiters;
  _Atomic uint32_t *futex = push ? &b->push_futex : &b->pop_futex;
  uint64_t slice = SLEEP_SLICE_MIN_NS;
  for (;;) {
    /* relaxed: the value a sleep compares; the ring's indices carry the data */
    uint32_t word = atomic_load_explicit(futex, memory_order_relaxed);
    atomic_fetch_add(waiters, 1); /* seq_cst, then the heavy barrier (see wake) */
    if (kiln__heavy_barrier() != 0)
      atomic_thread_fence(memory_order_seq_cst); /* the slice bounds a missed wake */
    bool ok = one_op(o, msg, push) != 0;
    uint64_t now = kiln__now_ns();
    if (!ok && now < deadline)
      kiln__futex_wait((const uint32_t *)futex, word,
                       deadline - now < slice ? deadline - now : slice);
    atomic_fetch_sub(waiters, 1);
    if (ok || one_op(o, msg, push))
      return KILN_SUCCESS;
    if (kiln__now_ns() >= deadline)
      return KILN_TIMEOUT;
    slice = slice * 2 > SLEEP_SLICE_MAX_NS ? SLEEP_SLICE_MAX_NS : slice * 2;
  }
}

kiln_status kiln_ring_push_wait_spsc(kiln_ring ring, const void *msg, uint64_t timeout_ns) {
  CHECK_DATA("kiln_ring_push_wait_spsc", ring, KILN_RING_SPSC, msg, "msg",
             "kiln_ring_push_wait_mpmc");
  kiln_status s = wait_op(o, (void *)(uintptr_t)msg, timeout_ns, 1);
  if (s == KILN_TIMEOUT)
    count_overflow(o, 1);
  return s;
}

kiln_status kiln_ring_pop_wait_spsc(kiln_ring ring, void *msg, uint64_t timeout_ns) {
  CHECK_DATA("kiln_ring_pop_wait_spsc", ring, KILN_RING_SPSC, msg, "msg",
             "kiln_ring_pop_wait_mpmc");
  return wait_op(o, msg, timeout_ns, 0);
}

kiln_status kiln_ring_push_wait_mpmc(kiln_ring ring, const void *msg, uint64_t timeout_ns) {
  CHECK_DATA("kiln_ring_push_wait_mpmc", ring, KILN_RING_MPMC, msg, "msg",
             "kiln_ring_push_wait_spsc");
  kiln_status s = wait_op(o, (void *)(uintptr_t)msg, timeout_ns, 1);
  if (s == KILN_TIMEOUT)
    count_overflow(o, 1);
  return s;
}

kiln_status kiln_ring_pop_wait_mpmc(kiln_ring ring, void *msg, uint64_t timeout_ns) {
  CHECK_DATA("kiln_ring_pop_wait_mpmc", ring, KILN_RING_MPMC, msg, "msg",
             "kiln_ring_pop_wait_spsc");
  return wait_op(o, msg, timeout_ns, 0);
}

/* ---------------------------------------------------------------- counters */
kiln_status kiln_ring_count(kiln_ring ring, size_t *count) {
  ring_obj *o = ring_of(ring);
  if (!o)
    return bad_ring("kiln_ring_count", ring);
  if (!count)
    return null_arg("kiln_ring_count", "count");
  /* acquire (both): a snapshot that is exact when nobody pushes or pops; pairs with
   * the release stores of the indices */
  uint32_t h = atomic_load_explicit(&o->block->head, memory_order_acquire);
  uint32_t t = atomic_load_explicit(&o->block->tail, memory_order_acquire);
  int32_t n = seq_diff(t, h);
  *count = n < 0 ? 0 : (uint32_t)n > o->capacity ? o->capacity : (size_t)n;
  return KILN_SUCCESS;
}

kiln_status kiln_ring_overflow_count(kiln_ring ring, uint64_t *count) {
  ring_obj *o = ring_of(ring);
  if (!o)
    return bad_ring("kiln_ring_overflow_count", ring);
  if (!count)
    return null_arg("kiln_ring_overflow_count", "count");
  *count = atomic_load_explicit(&o->block->overflow, memory_order_relaxed); /* a statistic */
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- partitioned queue */
static void group_free(group_obj *g, uint32_t made) {
  for (uint32_t i = 0; i < made; i++)
    kiln_ring_destroy((kiln_ring)g->rings[i]);
  kiln__free(g->rings, sizeof(ring_obj *) * g->partitions);
  g->rings = NULL;
}

kiln_status kiln_ring_group_create(kiln_context context, const kiln_ring_desc *desc,
                                   uint32_t partitions, kiln_ring_group *group) {
  KILN__API_ENTER();
  if (!group)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "group (the out-parameter) is NULL");
  *group = NULL;
  if (!partitions || partitions > GROUP_MAX_PARTITIONS)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "partitions is %u: use 1..%u", partitions,
                       GROUP_MAX_PARTITIONS);
  kiln_ring_desc d = KILN_RING_DESC_INIT;
  kiln_status s = resolve_desc(__func__, desc, &d);
  if (s != KILN_SUCCESS)
    return s;
  if (d.kind != KILN_RING_MPMC) {
    s = kiln__error(KILN_ERROR_INVALID_ARGUMENT,
                    "desc->kind is SPSC: a ring group's partitions are MPMC rings (pushes go "
                    "to other partitions when one is full, pops steal)");
    kiln__error_suggest("leave kind 0 or set KILN_RING_MPMC");
    return s;
  }
  uint32_t index;
  if (!slot_take(&group_slots, &index)) {
    s = kiln__error(KILN_ERROR_LIMIT_EXCEEDED, "all %u ring group handles are in use", GROUP_SLOTS);
    kiln__error_suggest("destroy ring groups you no longer use");
    return s;
  }
  group_obj *g = &group_table[index];
  g->partitions = partitions;
  g->rings = kiln__calloc(partitions, sizeof(ring_obj *));
  if (!g->rings) {
    slot_give(&group_slots, index);
    kiln__api_enter(__func__, NULL, 0);
    return kiln__error(KILN_ERROR_OUT_OF_HOST_MEMORY,
                       "out of host memory for a ring group of %u partitions", partitions);
  }
  for (uint32_t i = 0; i < partitions; i++) {
    kiln_ring r;
    if ((s = kiln_ring_create(context, &d, &r)) != KILN_SUCCESS) {
      kiln_error_info e = *kiln_last_error(); /* keep the cause across the cleanup */
      group_free(g, i);
      slot_give(&group_slots, index);
      kiln__api_enter("kiln_ring_group_create", NULL, 0);
      kiln__error(s, "partition %u of %u: %s", i, partitions, e.message);
      kiln__error_suggest("%s", e.suggestion);
      return s;
    }
    g->rings[i] = (ring_obj *)r;
  }
  /* release: pairs with the acquire load in group_of */
  atomic_store_explicit(&g->tag, GROUP_TAG_LIVE, memory_order_release);
  *group = (kiln_ring_group)g;
  return KILN_SUCCESS;
}

static COLD kiln_status bad_group(const char *fn, kiln_ring_group g) {
  if (!g)
    return refuse(fn, KILN_ERROR_INVALID_HANDLE, "group is NULL");
  return refuse(fn, KILN_ERROR_INVALID_HANDLE,
                "group %p is not a live ring group (destroyed, or never one)", (void *)g);
}

kiln_status kiln_ring_group_destroy(kiln_ring_group group) {
  KILN__API_ENTER();
  if (!group)
    return KILN_SUCCESS;
  group_obj *g = group_of(group);
  if (!g)
    return bad_group(__func__, group);
  atomic_store_explicit(&g->tag, 0, memory_order_relaxed); /* the slot lock orders reuse */
  group_free(g, g->partitions);
  slot_give(&group_slots, (uint32_t)(g - group_table));
  return KILN_SUCCESS;
}

kiln_status kiln_ring_group_push(kiln_ring_group group, uint32_t hint, const void *msg) {
  group_obj *g = group_of(group);
  if (__builtin_expect(!g, 0))
    return bad_group("kiln_ring_group_push", group);
  if (__builtin_expect(!msg, 0))
    return null_arg("kiln_ring_group_push", "msg");
  uint32_t n = g->partitions, first = hint % n;
  for (uint32_t k = 0; k < n; k++) {
    uint32_t i = first + k < n ? first + k : first + k - n;
    if (mpmc_push(g->rings[i], msg, 1))
      return KILN_SUCCESS;
  }
  count_overflow(g->rings[first], 1);
  return KILN_NOT_READY;
}

kiln_status kiln_ring_group_pop(kiln_ring_group group, uint32_t partition, void *msg) {
  group_obj *g = group_of(group);
  if (__builtin_expect(!g, 0))
    return bad_group("kiln_ring_group_pop", group);
  if (__builtin_expect(!msg, 0))
    return null_arg("kiln_ring_group_pop", "msg");
  uint32_t n = g->partitions;
  if (__builtin_expect(partition >= n, 0))
    return refuse("kiln_ring_group_pop", KILN_ERROR_OUT_OF_RANGE,
                  "partition %u of a group of %u partitions", partition, n);
  for (uint32_t k = 0; k < n; k++) {
    uint32_t i = partition + k < n ? partition + k : partition + k - n;
    if (mpmc_pop(g->rings[i], msg, 1))
      return KILN_SUCCESS;
  }
  return KILN_NOT_READY;
}

kiln_status kiln_ring_group_get_ring(kiln_ring_group group, uint32_t i, kiln_ring *ring) {
  KILN__API_ENTER();
  if (!ring)
    return kiln__error(KILN_ERROR_INVALID_ARGUMENT, "ring (the out-parameter) is NULL");
  *ring = NULL;
  group_obj *g = group_of(group);
  if (!g)
    return bad_group(__func__, group);
  if (i >= g->partitions)
    return kiln__error(KILN_ERROR_OUT_OF_RANGE, "partition %u of a group of %u partitions", i,
                       g->partitions);
  *ring = (kiln_ring)g->rings[i];
  return KILN_SUCCESS;
}

/* ---------------------------------------------------------------- the dialect text */
extern const char kiln__ring_dialect_text[]; /* generated (cmake/embed_text.cmake) */

const char *kiln_ring_dialect_source(void) {
  return kiln__ring_dialect_text;
}
