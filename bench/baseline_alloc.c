/* SPDX-License-Identifier: MIT */
/* Baselines of the pool suite on the host: posix_memalign + free of the case's size
 * (aligned to 64 bytes, as the CPU device's buffers are); and the fragmentation workload with a
 * plain best-fit allocator over one growing address range (no size classes, no slabs: split on
 * allocation, coalesce on free, grow and trim at the top), which the kiln side replays against the
 * device pool. Includes no kiln header (checked with nm). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "baselines.h"

/* ---- posix_memalign + free ---- */
typedef struct alloc_state {
  size_t bytes;
} alloc_state;

int bench_baseline_host_alloc_setup(void *arg, void **state) {
  *state = NULL;
  size_t bytes = arg != NULL ? *(const size_t *)arg : 0;
  if (bytes == 0)
    return EINVAL;
  alloc_state *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s->bytes = bytes;
  *state = s;
  return 0;
}

void bench_baseline_host_alloc_teardown(void *state) {
  alloc_state *s = state;
  free(s);
}

static int pair(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes) != 0)
    return ENOMEM;
  /* keep the compiler from eliding the pair */
  __asm__ __volatile__("" : : "r"(p) : "memory");
  free(p);
  return 0;
}

int bench_baseline_host_alloc_free(void *state, uint64_t iters) {
  alloc_state *s = state;
  for (uint64_t i = 0; i < iters; i++)
    if (pair(s->bytes) != 0)
      return ENOMEM;
  return 0;
}

/* host_alloc_free: page-aligned memory, as the cpu backend's kiln_host_alloc made it
 * before the pool (posix_memalign to 4096 + free). */
int bench_baseline_page_alloc_free(void *state, uint64_t iters) {
  alloc_state *s = state;
  for (uint64_t i = 0; i < iters; i++) {
    void *p = NULL;
    if (posix_memalign(&p, 4096, s->bytes) != 0)
      return ENOMEM;
    __asm__ __volatile__("" : : "r"(p) : "memory");
    free(p);
  }
  return 0;
}

/* ---- the fragmentation workload ---- */
typedef struct live_entry {
  void *handle;
  size_t bytes;
} live_entry;

static uint64_t next_rand(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

int bench_frag_run(const bench_frag_params *p, const bench_frag_ops *ops, void *ctx,
                   uint64_t *peak_in_use) {
  live_entry *live = calloc(p->max_live, sizeof *live);
  if (live == NULL)
    return ENOMEM;
  uint64_t rng = p->seed ? p->seed : 0x9E3779B97F4A7C15ull;
  unsigned octaves = 0; /* log2(max_bytes / min_bytes) */
  while ((p->min_bytes << (octaves + 1)) <= p->max_bytes)
    octaves++;
  size_t n = 0;
  uint64_t in_use = 0, peak = 0;
  int rc = 0;
  for (uint64_t op = 0; op < p->ops && rc == 0; op++) {
    uint64_t r = next_rand(&rng);
    if (n > 0 && (r & 1)) { /* a free of a random live one: random lifetimes */
      size_t k = (size_t)(next_rand(&rng) % n);
      rc = ops->free_fn(ctx, live[k].handle);
      in_use -= live[k].bytes;
      live[k] = live[--n];
      continue;
    }
    /* log-uniform size: a uniform octave, uniform within it */
    unsigned e = octaves ? (unsigned)((r >> 1) % octaves) : 0;
    size_t base = p->min_bytes << e;
    size_t bytes = base + (size_t)(next_rand(&rng) % base);
    while (n > 0 && rc == 0 && (in_use + bytes > p->max_live_bytes || n == p->max_live)) {
      size_t k = (size_t)(next_rand(&rng) % n); /* the cap forces frees first */
      rc = ops->free_fn(ctx, live[k].handle);
      in_use -= live[k].bytes;
      live[k] = live[--n];
    }
    if (rc != 0 || in_use + bytes > p->max_live_bytes)
      break;
    void *h = NULL;
    if ((rc = ops->alloc_fn(ctx, bytes, &h)) != 0)
      break;
    live[n].handle = h;
    live[n].bytes = bytes;
    n++;
    in_use += bytes;
    if (in_use > peak)
      peak = in_use;
  }
  for (size_t k = 0; k < n && rc == 0; k++)
    rc = ops->free_fn(ctx, live[k].handle);
  free(live);
  *peak_in_use = peak;
  return rc;
}

/* ---- a plain best-fit allocator over one address range ---- */
typedef struct fit_block {
  uint64_t offset, bytes;
  int free;
  struct fit_block *prev, *next;   /* by address */
  struct fit_block *fprev, *fnext; /* free list (unordered) */
} fit_block;

typedef struct bestfit {
  fit_block *first, *last, *free_list;
  uint64_t top, peak_top;
  uint64_t gran;
} bestfit;

static void free_insert(bestfit *h, fit_block *b) {
  b->free = 1;
  b->fprev = NULL;
  b->fnext = h->free_list;
  if (h->free_list)
    h->free_list->fprev = b;
  h->free_list = b;
}

static void free_remove(bestfit *h, fit_block *b) {
  if (b->fprev)
    b->fprev->fnext = b->fnext;
  else
    h->free_list = b->fnext;
  if (b->fnext)
    b->fnext->fprev = b->fprev;
  b->free = 0;
}

static void unlink_block(bestfit *h, fit_block *b) {
  if (b->prev)
    b->prev->next = b->next;
  else
    h->first = b->next;
  if (b->next)
    b->next->prev = b->prev;
  else
    h->last = b->prev;
}

static int bf_alloc(void *ctx, size_t bytes, void **handle) {
  bestfit *h = ctx;
  uint64_t want = (bytes + h->gran - 1) / h->gran * h->gran;
  fit_block *best = NULL;
  for (fit_block *b = h->free_list; b; b = b->fnext)
    if (b->bytes >= want && (!best || b->bytes < best->bytes))
      best = b;
  if (best == NULL) { /* grow at the top (extending a free last block) */
    fit_block *tail = h->last;
    if (tail && tail->free) {
      h->top += want - tail->bytes;
      tail->bytes = want;
      best = tail;
    } else {
      fit_block *b = calloc(1, sizeof *b);
      if (b == NULL)
        return ENOMEM;
      b->offset = h->top;
      b->bytes = want;
      b->prev = h->last;
      if (h->last)
        h->last->next = b;
      else
        h->first = b;
      h->last = b;
      h->top += want;
      if (h->top > h->peak_top)
        h->peak_top = h->top;
      *handle = b;
      return 0;
    }
    if (h->top > h->peak_top)
      h->peak_top = h->top;
  }
  free_remove(h, best);
  if (best->bytes - want >= h->gran) { /* split: the rest stays free */
    fit_block *r = calloc(1, sizeof *r);
    if (r == NULL)
      return ENOMEM;
    r->offset = best->offset + want;
    r->bytes = best->bytes - want;
    r->prev = best;
    r->next = best->next;
    if (best->next)
      best->next->prev = r;
    else
      h->last = r;
    best->next = r;
    best->bytes = want;
    free_insert(h, r);
  }
  *handle = best;
  return 0;
}

static int bf_free(void *ctx, void *handle) {
  bestfit *h = ctx;
  fit_block *b = handle;
  fit_block *n = b->next, *p = b->prev;
  if (n && n->free) { /* coalesce */
    free_remove(h, n);
    b->bytes += n->bytes;
    unlink_block(h, n);
    free(n);
  }
  if (p && p->free) {
    free_remove(h, p);
    p->bytes += b->bytes;
    unlink_block(h, b);
    free(b);
    b = p;
  }
  if (b == h->last) { /* trim the top */
    h->top = b->offset;
    unlink_block(h, b);
    free(b);
    return 0;
  }
  free_insert(h, b);
  return 0;
}

int bench_baseline_bestfit_overhead(const bench_frag_params *p, double *overhead) {
  bestfit h;
  memset(&h, 0, sizeof h);
  h.gran = p->granularity ? p->granularity : 256;
  bench_frag_ops ops = {bf_alloc, bf_free};
  uint64_t peak = 0;
  int rc = bench_frag_run(p, &ops, &h, &peak);
  for (fit_block *b = h.first, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  if (rc != 0)
    return rc;
  *overhead = peak ? (double)h.peak_top / (double)peak : 0.0;
  return 0;
}
