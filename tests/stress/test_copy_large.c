/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* kiln-test-link: static */
/* kiln-test-env: KILN_COPY_THREADS=3 */
/* kiln__copy_large (src/platform/pcopy.c), the host copy the cpu backend and CUDA's
 * staging use for large transfers: every byte lands, and not one more, for sizes
 * around its split points (below the threshold, whole parts, a ragged tail), from four
 * threads at once with three helpers (KILN_COPY_THREADS, more than this machine's
 * cores) so that callers and helpers take each other's parts; this file runs under
 * TSan in make check. Through the public API too: a 40 MiB write and read on the cpu
 * backend. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "platform/platform.h"

static const size_t sizes[] = {1,        4096,           (8u << 20) - 1,
                               8u << 20, (8u << 20) + 1, (33u << 20) + 4093};

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(i * 2654435761u >> 13) ^ (unsigned char)seed;
}

typedef struct copier {
  unsigned seed;
  int bad;
} copier;

static void *copy_all_sizes(void *arg) {
  copier *c = arg;
  size_t max = sizes[sizeof sizes / sizeof sizes[0] - 1];
  unsigned char *src = malloc(max), *dst = malloc(max + 1);
  if (!src || !dst) {
    c->bad = 1;
  } else {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0] && !c->bad; k++) {
      size_t n = sizes[k];
      fill(src, n, c->seed + (unsigned)k);
      memset(dst, 0xee, n + 1);
      kiln__copy_large(dst, src, n);
      if (memcmp(dst, src, n) != 0 || dst[n] != 0xee)
        c->bad = 1;
    }
  }
  free(src);
  free(dst);
  return NULL;
}

static void copies_from_four_threads(void **state) {
  (void)state;
  enum { T = 4 };
  pthread_t t[T];
  copier c[T];
  for (int i = 0; i < T; i++) {
    c[i] = (copier){(unsigned)i * 17u, 0};
    assert_int_equal(pthread_create(&t[i], NULL, copy_all_sizes, &c[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(c[i].bad, 0);
  }
}

static void large_buffer_transfers(void **state) {
  kt_env *env = *state;
  const size_t n = (40u << 20) + 3;
  unsigned char *src = malloc(n), *dst = calloc(1, n);
  assert_non_null(src);
  assert_non_null(dst);
  fill(src, n, 5);
  kiln_buffer b = kt_buffer(env->ctx, n);
  KT_OK(kiln_buffer_write(b, 0, n, src));
  KT_OK(kiln_buffer_read(b, 0, n, dst));
  assert_memory_equal(src, dst, n);
  KT_OK(kiln_buffer_destroy(b));
  free(src);
  free(dst);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(copies_from_four_threads),
    cmocka_unit_test_setup_teardown(large_buffer_transfers, kt_setup, kt_teardown),
};
KT_MAIN_CPU(tests)
