/* SPDX-License-Identifier: MIT */
/* The test allocator (see test_alloc.h). Each block carries a header just below the
 * pointer handed out: a magic word, the size and alignment it was allocated with and
 * the distance to the malloc'd base, so every free is checked against its block.
 * All counters are seq_cst atomics: kiln allocates and frees on its worker threads. */
#define _POSIX_C_SOURCE 200809L
#include "test_alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KT_MAGIC_LIVE UINT64_C(0x6b696c6e4c495645) /* "kilnLIVE" */
#define KT_MAGIC_DEAD UINT64_C(0x6b696c6e44454144) /* "kilnDEAD" */

typedef struct block_header {
  uint64_t magic;
  size_t size;
  size_t align;
  size_t offset; /* from the malloc'd base to the user pointer */
} block_header;

static atomic_size_t live_count;
static atomic_size_t live_bytes;
static atomic_size_t peak_bytes;
static atomic_size_t calls;
static atomic_size_t failures;
static atomic_size_t bad_frees;
static atomic_size_t mismatched_frees;
static atomic_size_t bad_allocs;
static atomic_int mode = KT_ALLOC_NEVER_FAIL;
static atomic_size_t mode_n;

static int is_pow2(size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

static void *test_alloc_fn(size_t size, size_t align, void *user) {
  (void)user;
  size_t call = atomic_fetch_add(&calls, 1) + 1;
  int m = atomic_load(&mode);
  size_t n = atomic_load(&mode_n);
  if ((m == KT_ALLOC_FAIL_NTH && call == n) || (m == KT_ALLOC_FAIL_FROM && call >= n)) {
    atomic_fetch_add(&failures, 1);
    return NULL;
  }
  if (!is_pow2(align)) {
    atomic_fetch_add(&bad_allocs, 1);
    return NULL;
  }
  size_t eff_align = align < 16 ? 16 : align;
  size_t offset = (sizeof(block_header) + eff_align - 1) & ~(eff_align - 1);
  if (size > SIZE_MAX - offset)
    return NULL;
  void *base = NULL;
  size_t pm_align = eff_align < sizeof(void *) ? sizeof(void *) : eff_align;
  if (posix_memalign(&base, pm_align, offset + (size ? size : 1)) != 0)
    return NULL;
  unsigned char *user_ptr = (unsigned char *)base + offset;
  block_header *h = (block_header *)(void *)(user_ptr - sizeof(block_header));
  h->magic = KT_MAGIC_LIVE;
  h->size = size;
  h->align = align;
  h->offset = offset;
  atomic_fetch_add(&live_count, 1);
  size_t now = atomic_fetch_add(&live_bytes, size) + size;
  size_t peak = atomic_load(&peak_bytes);
  while (now > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, now)) {
  }
  return user_ptr;
}

static void test_free_fn(void *ptr, size_t size, size_t align, void *user) {
  (void)user;
  if (ptr == NULL)
    return;
  block_header *h = (block_header *)(void *)((unsigned char *)ptr - sizeof(block_header));
  if (h->magic != KT_MAGIC_LIVE) {
    atomic_fetch_add(&bad_frees, 1);
    return; /* unknown block or double free: leave it alone */
  }
  if (h->size != size || h->align != align)
    atomic_fetch_add(&mismatched_frees, 1);
  h->magic = KT_MAGIC_DEAD;
  atomic_fetch_sub(&live_count, 1);
  atomic_fetch_sub(&live_bytes, h->size);
  free((unsigned char *)ptr - h->offset);
}

void kt_alloc_set_mode(kt_alloc_mode m, size_t n) {
  atomic_store(&mode, KT_ALLOC_NEVER_FAIL);
  atomic_store(&calls, 0);
  atomic_store(&failures, 0);
  atomic_store(&mode_n, n);
  atomic_store(&mode, (int)m);
}

void kt_alloc_fail_nth(size_t n) {
  kt_alloc_set_mode(KT_ALLOC_FAIL_NTH, n);
}
void kt_alloc_fail_from(size_t n) {
  kt_alloc_set_mode(KT_ALLOC_FAIL_FROM, n);
}
void kt_alloc_fail_none(void) {
  kt_alloc_set_mode(KT_ALLOC_NEVER_FAIL, 0);
}

kiln_status kt_alloc_install(void) {
  atomic_store(&peak_bytes, atomic_load(&live_bytes));
  atomic_store(&bad_frees, 0);
  atomic_store(&mismatched_frees, 0);
  atomic_store(&bad_allocs, 0);
  kt_alloc_fail_none();
  kiln_allocator a = KILN_ALLOCATOR_INIT;
  a.alloc = test_alloc_fn;
  a.free = test_free_fn;
  a.user = NULL;
  return kiln_set_allocator(&a);
}

kiln_status kt_alloc_uninstall(void) {
  kt_alloc_fail_none();
  return kiln_set_allocator(NULL);
}

kt_alloc_stats kt_alloc_get_stats(void) {
  kt_alloc_stats s;
  s.live_count = atomic_load(&live_count);
  s.live_bytes = atomic_load(&live_bytes);
  s.peak_bytes = atomic_load(&peak_bytes);
  s.calls = atomic_load(&calls);
  s.failures = atomic_load(&failures);
  s.bad_frees = atomic_load(&bad_frees);
  s.mismatched_frees = atomic_load(&mismatched_frees);
  s.bad_allocs = atomic_load(&bad_allocs);
  return s;
}

size_t kt_alloc_live_count(void) {
  return atomic_load(&live_count);
}
size_t kt_alloc_calls(void) {
  return atomic_load(&calls);
}
size_t kt_alloc_failures(void) {
  return atomic_load(&failures);
}

int kt_alloc_check_clean(const char *what) {
  kt_alloc_stats s = kt_alloc_get_stats();
  if (s.live_count == 0 && s.live_bytes == 0 && s.bad_frees == 0 && s.mismatched_frees == 0 &&
      s.bad_allocs == 0)
    return 1;
  fprintf(stderr,
          "test allocator after %s: %zu blocks (%zu bytes) still live, %zu bad frees, "
          "%zu frees with the wrong size/alignment, %zu allocs with a bad alignment\n",
          what ? what : "test", s.live_count, s.live_bytes, s.bad_frees, s.mismatched_frees,
          s.bad_allocs);
  return 0;
}
