/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda cuda-fake */
/* Pinned host memory (include/kiln/host.h) on every backend: blocks are page-aligned
 * and known to kiln_host_is_pinned; transfers from and to them, and from and to
 * pageable memory of several staging chunks (CUDA stages those), give the data back;
 * kiln_host_free refuses what kiln_host_alloc did not return (naming the pointer) and
 * waits for queued work; context destroy frees what is left; an allocation failure at
 * any point loses nothing; the program's memory registered (kiln_host_register) is
 * pinned for kiln until unregistered; stream priorities are accepted everywhere. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"
#include "test_alloc.h"

static void fill_pattern(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)((i * 131u + seed) >> 3);
}

static void check_pattern(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)((i * 131u + seed) >> 3))
      fail_msg("byte %zu of %zu is %u, expected %u", i, n, p[i],
               (unsigned)(unsigned char)((i * 131u + seed) >> 3));
}

static void pinned_blocks_roundtrip(void **state) {
  kt_env *env = *state;
  static const size_t sizes[] = {4096, (1u << 20) + 123, (9u << 20) + 5};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    void *src = NULL, *dst = NULL;
    KT_OK(kiln_host_alloc(env->ctx, n, &src));
    KT_OK(kiln_host_alloc(env->ctx, n, &dst));
    assert_int_equal((uintptr_t)src % 4096, 0);
    assert_int_equal((uintptr_t)dst % 4096, 0);
    int pinned = -1;
    KT_OK(kiln_host_is_pinned(env->ctx, src, n, &pinned));
    assert_int_equal(pinned, 1);
    KT_OK(kiln_host_is_pinned(env->ctx, (char *)src + n - 1, 1, &pinned));
    assert_int_equal(pinned, 1);
    KT_OK(kiln_host_is_pinned(env->ctx, (char *)src + 1, n, &pinned)); /* runs past the end */
    assert_int_equal(pinned, 0);
    fill_pattern(src, n, (unsigned)k);
    memset(dst, 0, n);
    kiln_buffer b = kt_buffer(env->ctx, n);
    kiln_pending w = KILN_PENDING_INIT, r = KILN_PENDING_INIT;
    KT_OK(kiln_buffer_write_async(env->stream, b, 0, n, src, &w));
    KT_OK(kiln_buffer_read_async(env->stream, b, 0, n, dst, &r));
    KT_OK(kiln_wait(&w));
    KT_OK(kiln_wait(&r));
    check_pattern(dst, n, (unsigned)k);
    /* blocking calls too */
    memset(dst, 0, n);
    KT_OK(kiln_buffer_write(b, 0, n, src));
    KT_OK(kiln_buffer_read(b, 0, n, dst));
    check_pattern(dst, n, (unsigned)k);
    KT_OK(kiln_buffer_destroy(b));
    KT_OK(kiln_host_free(env->ctx, src));
    KT_OK(kiln_host_free(env->ctx, dst));
  }
}

/* Pageable memory of several 4 MiB staging chunks, not chunk-aligned, with an offset
 * into the buffer; a small async read; both directions async on one stream. */
static void pageable_transfers_of_many_chunks(void **state) {
  kt_env *env = *state;
  const size_t n = (9u << 20) + 77, off = 4096 + 12;
  unsigned char *src = malloc(n), *dst = malloc(n);
  assert_non_null(src);
  assert_non_null(dst);
  int pinned = -1;
  KT_OK(kiln_host_is_pinned(env->ctx, src, n, &pinned));
  assert_int_equal(pinned, 0);
  fill_pattern(src, n, 7);
  memset(dst, 0, n);
  kiln_buffer b = kt_buffer(env->ctx, n + off);
  kiln_pending w = KILN_PENDING_INIT, r = KILN_PENDING_INIT, small = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_write_async(env->stream, b, off, n, src, &w));
  KT_OK(kiln_buffer_read_async(env->stream, b, off, n, dst, &r));
  unsigned char tail[4096];
  KT_OK(kiln_buffer_read_async(env->stream, b, off + n - sizeof tail, sizeof tail, tail, &small));
  KT_OK(kiln_wait(&w));
  KT_OK(kiln_wait(&r));
  KT_OK(kiln_wait(&small));
  check_pattern(dst, n, 7);
  assert_memory_equal(tail, dst + n - sizeof tail, sizeof tail);
  /* blocking, through the context's own stream */
  memset(dst, 0, n);
  KT_OK(kiln_buffer_read(b, off, n, dst));
  check_pattern(dst, n, 7);
  KT_OK(kiln_buffer_destroy(b));
  free(src);
  free(dst);
}

static void host_memory_bad_input(void **state) {
  kt_env *env = *state;
  void *p = (void *)1;
  KT_EXPECT_MSG(kiln_host_alloc(env->ctx, 0, &p), KILN_ERROR_INVALID_ARGUMENT, "bytes is 0");
  assert_null(p);
  KT_EXPECT_MSG(kiln_host_alloc(env->ctx, 64, NULL), KILN_ERROR_INVALID_ARGUMENT, "ptr");
  KT_EXPECT(kiln_host_alloc(NULL, 64, &p), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT_MSG(kiln_host_alloc(env->ctx, SIZE_MAX, &p), KILN_ERROR_INVALID_ARGUMENT,
                "more than any");

  void *block = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 8192, &block));
  char *plain = malloc(64);
  assert_non_null(plain);
  char want[96];
  snprintf(want, sizeof want, "%p was not returned by kiln_host_alloc", (void *)plain);
  KT_EXPECT_MSG(kiln_host_free(env->ctx, plain), KILN_ERROR_INVALID_ARGUMENT, want);
  free(plain);
  KT_EXPECT_MSG(kiln_host_free(env->ctx, (char *)block + 16), KILN_ERROR_INVALID_ARGUMENT,
                "points 16 bytes into");
  /* a block of another context is not this one's */
  kiln_context other = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &other));
  KT_EXPECT_MSG(kiln_host_free(other, block), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  int pinned = -1;
  KT_OK(kiln_host_is_pinned(other, block, 1, &pinned));
  assert_int_equal(pinned, 0);
  KT_OK(kiln_context_destroy(other));
  KT_EXPECT(kiln_host_free(NULL, block), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_host_free(env->ctx, NULL));
  KT_OK(kiln_host_free(env->ctx, block));
  KT_EXPECT_MSG(kiln_host_free(env->ctx, block), KILN_ERROR_INVALID_ARGUMENT, "freed already");
  KT_EXPECT(kiln_host_is_pinned(env->ctx, NULL, 1, &pinned), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_host_is_pinned(env->ctx, &pinned, 1, NULL), KILN_ERROR_INVALID_ARGUMENT);
}

typedef struct free_call {
  kiln_context ctx;
  void *ptr;
  atomic_int done;
  kiln_status st;
} free_call;

static void *free_thread(void *arg) {
  free_call *c = arg;
  c->st = kiln_host_free(c->ctx, c->ptr);
  atomic_store(&c->done, 1);
  return NULL;
}

/* kiln_host_free waits until the context's queued work is done: a read into the
 * block, queued behind a held stream, completes before the block goes. */
static void host_free_waits_for_queued_transfers(void **state) {
  kt_env *env = *state;
  kt_gate *gate = kt_env_gate(env);
  kiln_pending held = KILN_PENDING_INIT, r = KILN_PENDING_INIT;
  kiln_buffer b = kt_buffer(env->ctx, 64 << 10);
  static const uint32_t pat = 0x01020304u;
  KT_OK(kiln_buffer_fill(b, 0, 64 << 10, &pat, 4));
  void *block = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 64 << 10, &block));
  KT_OK(kt_hold_async(env->ctx, env->stream, gate, &held));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, 64 << 10, block, &r));
  free_call c = {env->ctx, block, 0, KILN_ERROR_BACKEND};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, free_thread, &c), 0);
  kt_sleep_us(100000);
  assert_int_equal(atomic_load(&c.done), 0); /* still held: the free waits */
  kt_gate_open(gate);
  assert_int_equal(pthread_join(t, NULL), 0);
  KT_OK(c.st);
  KT_OK(kiln_wait(&held));
  KT_OK(kiln_wait(&r));
  KT_OK(kiln_buffer_destroy(b));
}

/* Blocks left at context destroy are freed with it (kt_teardown checks the allocator;
 * LeakSanitizer the rest). More blocks than the table's first size, freed in an
 * interleaved order, each still found while alive and not after. */
static void many_blocks_and_leftovers_at_destroy(void **state) {
  kt_env *env = *state;
  enum { N = 40 };
  void *blocks[N];
  for (int i = 0; i < N; i++)
    KT_OK(kiln_host_alloc(env->ctx, (size_t)(i + 1) * 1000, &blocks[i]));
  for (int i = 0; i < N; i += 3)
    KT_OK(kiln_host_free(env->ctx, blocks[i]));
  for (int i = 0; i < N; i++) {
    int pinned = -1;
    KT_OK(kiln_host_is_pinned(env->ctx, blocks[i], (size_t)(i + 1) * 1000, &pinned));
    if (i % 3 == 0) {
      if (pinned) { /* freed: may only be "pinned" again if a live block reuses the address */
        int reused = 0;
        for (int j = 0; j < N; j++)
          reused |= j % 3 && blocks[j] == blocks[i];
        assert_true(reused);
      }
    } else {
      assert_int_equal(pinned, 1);
    }
  }
  /* the rest stays for kiln_context_destroy (kt_teardown) */
}

/* Every host allocation of kiln_host_alloc failing in turn: OUT_OF_HOST_MEMORY, and
 * the context's table and blocks stay consistent (the sweep ends with a success). */
static void host_alloc_failure_sweep(void **state) {
  kt_env *env = *state;
  void *warm = NULL; /* the pool exists, its slab went back: only the sweep's records count */
  KT_OK(kiln_host_alloc(env->ctx, 12345, &warm));
  KT_OK(kiln_host_free(env->ctx, warm));
  KT_OK(kiln_host_pool_trim(env->ctx, 0));
  size_t before = kt_alloc_live_count();
  int succeeded = 0;
  for (size_t n = 1; n < 16 && !succeeded; n++) {
    kt_alloc_fail_nth(n);
    void *p = NULL;
    kiln_status st = kiln_host_alloc(env->ctx, 12345, &p);
    kt_alloc_fail_none();
    if (st == KILN_SUCCESS) {
      succeeded = 1;
      KT_OK(kiln_host_free(env->ctx, p));
      KT_OK(kiln_host_pool_trim(env->ctx, 0));
    } else {
      KT_EXPECT(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
      assert_null(p);
    }
    assert_true(kt_alloc_live_count() <= before + 1); /* at most the grown table */
  }
  assert_true(succeeded);
}

/* The program's own memory registered: pinned for kiln, transfers correct, overlaps
 * and the wrong release call refused naming the right one, a registration left at
 * context destroy released with it (static memory: it outlives the context). */
static unsigned char leftover_region[3 * 4096];
static void registered_memory(void **state) {
  kt_env *env = *state;
  const size_t n = (5u << 20) + 300;
  unsigned char *mine = malloc(n), *back = malloc(n);
  assert_non_null(mine);
  assert_non_null(back);
  KT_OK(kiln_host_register(env->ctx, mine, n));
  KT_OK(kiln_host_register(env->ctx, back, n));
  int pinned = -1;
  KT_OK(kiln_host_is_pinned(env->ctx, mine + 100, n - 100, &pinned));
  assert_int_equal(pinned, 1);
  KT_EXPECT_MSG(kiln_host_register(env->ctx, mine + 4096, 10), KILN_ERROR_INVALID_ARGUMENT,
                "overlaps");
  KT_EXPECT_MSG(kiln_host_register(env->ctx, mine - 10, 11), KILN_ERROR_INVALID_ARGUMENT,
                "overlaps");
  KT_EXPECT_MSG(kiln_host_register(env->ctx, NULL, 10), KILN_ERROR_INVALID_ARGUMENT, "ptr is NULL");
  KT_EXPECT_MSG(kiln_host_register(env->ctx, mine, 0), KILN_ERROR_INVALID_ARGUMENT, "bytes is 0");
  KT_EXPECT_MSG(kiln_host_free(env->ctx, mine), KILN_ERROR_INVALID_ARGUMENT,
                "kiln_host_unregister");
  void *block = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 4096, &block));
  KT_EXPECT_MSG(kiln_host_unregister(env->ctx, block), KILN_ERROR_INVALID_ARGUMENT,
                "kiln_host_free");
  KT_OK(kiln_host_free(env->ctx, block));
  fill_pattern(mine, n, 9);
  memset(back, 0, n);
  kiln_buffer b = kt_buffer(env->ctx, n);
  kiln_pending w = KILN_PENDING_INIT, r = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, n, mine, &w));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, n, back, &r));
  KT_OK(kiln_wait(&w));
  KT_OK(kiln_wait(&r));
  check_pattern(back, n, 9);
  KT_OK(kiln_buffer_destroy(b));
  KT_EXPECT_MSG(kiln_host_unregister(env->ctx, mine + 1), KILN_ERROR_INVALID_ARGUMENT,
                "points 1 bytes into");
  KT_OK(kiln_host_unregister(env->ctx, mine));
  KT_OK(kiln_host_unregister(env->ctx, back));
  KT_EXPECT_MSG(kiln_host_unregister(env->ctx, mine), KILN_ERROR_INVALID_ARGUMENT,
                "unregistered already");
  KT_OK(kiln_host_is_pinned(env->ctx, mine, n, &pinned));
  assert_int_equal(pinned, 0);
  free(mine);
  free(back);
  KT_OK(kiln_host_register(env->ctx, leftover_region, sizeof leftover_region)); /* for destroy */
}

/* Priorities: accepted on every backend (CUDA maps them onto its range), and the
 * streams work. */
static void streams_with_priorities(void **state) {
  kt_env *env = *state;
  static const int prios[] = {-3, 1, 5, 1000};
  for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++) {
    kiln_stream_desc d = KILN_STREAM_DESC_INIT;
    d.priority = prios[i];
    kiln_stream s = NULL;
    KT_OK(kiln_stream_create(env->ctx, &d, &s));
    kiln_buffer b = kt_buffer(env->ctx, 256);
    uint32_t pat = 0xabc00000u + (uint32_t)i, back[64];
    kiln_pending t = KILN_PENDING_INIT;
    KT_OK(kiln_buffer_fill_async(s, b, 0, 256, &pat, 4, &t));
    KT_OK(kiln_wait(&t));
    KT_OK(kiln_buffer_read(b, 0, 256, back));
    for (int k = 0; k < 64; k++)
      assert_int_equal(back[k], pat);
    KT_OK(kiln_buffer_destroy(b));
    KT_OK(kiln_stream_destroy(s));
  }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(pinned_blocks_roundtrip, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(pageable_transfers_of_many_chunks, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(host_memory_bad_input, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(host_free_waits_for_queued_transfers, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(many_blocks_and_leftovers_at_destroy, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(host_alloc_failure_sweep, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(streams_with_priorities, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(registered_memory, kt_setup, kt_teardown),
};
KT_MAIN(tests)
