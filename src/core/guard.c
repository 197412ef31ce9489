/* SPDX-License-Identifier: MIT */
/* The host-range guard (AddressSanitizer builds only): the host memory of every _async
 * read and write is poisoned from its submission until the user observes completion
 * through a wait (token, stream, event, context) or a destroy that waits (buffer,
 * stream, context); never unpoisoned by a worker. A destroyed buffer, stream or
 * context leaves no range behind, so a later covering wait cannot unpoison memory
 * the program has freed since (ASan could no longer report its use-after-free).
 * Overlapping ranges are reference-counted: releasing one unpoisons it, then poisons
 * again what other live ranges still cover. ASan works in 8-byte granules: a range
 * that does not start and end on 8-byte boundaries is poisoned only on the granules it
 * covers fully (docs/async.md). The table uses the C library's allocator (it exists in
 * sanitizer builds only and must not disturb allocation-failure sweeps). */
#include "core/core.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <stdlib.h>

typedef struct guard_entry {
  const kiln__stream_obj *stream;
  const kiln__buffer_obj *buffer; /* the op's buffer: its destroy is a covering wait */
  uint64_t uid, seq;
  unsigned char *ptr;
  size_t bytes;
} guard_entry;

static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static guard_entry *entries;
static size_t count, cap;

void kiln__guard_add(const kiln__stream_obj *stream, uint64_t seq, const kiln__buffer_obj *buffer,
                     const void *ptr, size_t bytes) {
  pthread_mutex_lock(&guard_lock);
  if (count == cap) {
    size_t ncap = cap ? cap * 2 : 64;
    guard_entry *e = realloc(entries, ncap * sizeof *e);
    if (!e) { /* best effort: the range goes unguarded */
      pthread_mutex_unlock(&guard_lock);
      return;
    }
    entries = e;
    cap = ncap;
  }
  guard_entry *g = &entries[count++];
  g->stream = stream;
  g->buffer = buffer;
  g->uid = atomic_load(&((kiln__stream_obj *)stream)->uid);
  g->seq = seq;
  g->ptr = (unsigned char *)(uintptr_t)ptr;
  g->bytes = bytes;
  ASAN_POISON_MEMORY_REGION(g->ptr, bytes);
  pthread_mutex_unlock(&guard_lock);
}

/* Remove the entries `match` selects, unpoison them, re-poison overlaps. */
typedef bool (*guard_match)(const guard_entry *e, const void *arg);

static void release_matching(guard_match match, const void *arg) {
  pthread_mutex_lock(&guard_lock);
  size_t kept = 0, removed_from = count;
  /* Partition: kept entries first, removed ones at the end (order is irrelevant). */
  for (size_t i = 0; i < count; i++) {
    if (match(&entries[i], arg))
      continue;
    guard_entry t = entries[kept];
    entries[kept++] = entries[i];
    entries[i] = t;
  }
  removed_from = kept;
  for (size_t i = removed_from; i < count; i++)
    ASAN_UNPOISON_MEMORY_REGION(entries[i].ptr, entries[i].bytes);
  for (size_t i = removed_from; i < count; i++)
    for (size_t k = 0; k < kept; k++) {
      unsigned char *lo = entries[k].ptr > entries[i].ptr ? entries[k].ptr : entries[i].ptr;
      unsigned char *a = entries[k].ptr + entries[k].bytes, *b = entries[i].ptr + entries[i].bytes;
      unsigned char *hi = a < b ? a : b;
      if (lo < hi)
        ASAN_POISON_MEMORY_REGION(lo, (size_t)(hi - lo));
    }
  count = kept;
  if (!count) {
    free(entries);
    entries = NULL;
    cap = 0;
  }
  pthread_mutex_unlock(&guard_lock);
}

struct op_key {
  const kiln__stream_obj *stream;
  uint64_t uid, seq;
  bool upto;
};

static bool match_op(const guard_entry *e, const void *arg) {
  const struct op_key *k = arg;
  if (k->stream && (e->stream != k->stream || e->uid != k->uid))
    return false;
  return k->upto ? e->seq <= k->seq : e->seq == k->seq;
}

static bool match_ctx(const guard_entry *e, const void *arg) {
  return e->stream->h.ctx == arg;
}

static bool match_buffer(const guard_entry *e, const void *arg) {
  return e->buffer == arg;
}

void kiln__guard_release_op(const kiln__stream_obj *stream, uint64_t uid, uint64_t seq) {
  struct op_key k = {stream, uid, seq, false};
  if (entries)
    release_matching(match_op, &k);
}

void kiln__guard_release_upto(const kiln__stream_obj *stream, uint64_t uid, uint64_t seq) {
  struct op_key k = {stream, uid, seq, true};
  if (entries)
    release_matching(match_op, &k);
}

void kiln__guard_release_buffer(const kiln__buffer_obj *buffer) {
  if (entries)
    release_matching(match_buffer, buffer);
}

void kiln__guard_release_context(const kiln__context_obj *ctx) {
  if (entries)
    release_matching(match_ctx, ctx);
}

struct range_key {
  const unsigned char *lo, *hi;
};

static bool match_range(const guard_entry *e, const void *arg) {
  const struct range_key *k = arg;
  return e->ptr >= k->lo && e->ptr + e->bytes <= k->hi;
}

void kiln__guard_release_range(const void *ptr, size_t bytes) {
  struct range_key k = {ptr, (const unsigned char *)ptr + bytes};
  if (entries)
    release_matching(match_range, &k);
}

#else
typedef int kiln__guard_unused; /* ISO C wants a declaration in every translation unit */
#endif
