/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda-fake */
/* The pinned host pool behind kiln_host_alloc (include/kiln/host.h, docs/memory.md) on
 * every backend: a freed block is reissued from its size class (hits, misses, bytes and
 * classes in the stats), huge blocks go back to the backend at their free, trim returns
 * idle slabs; kiln_host_free_on returns at once and keeps the block out of the pool
 * until the work queued on *every* stream of the context has completed (a transfer held
 * on another stream still reads the block's own bytes); bad input refused, naming what
 * to do. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

static kiln_pool_stats stats_of(kiln_context ctx) {
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_OK(kiln_host_pool_get_stats(ctx, &s));
  return s;
}

static void reuse_stats_and_trim(void **state) {
  kt_env *env = *state;
  void *a = NULL, *b = NULL, *h = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 4096, &a));
  KT_OK(kiln_host_free(env->ctx, a));
  KT_OK(kiln_host_alloc(env->ctx, 4000, &b));
  assert_ptr_equal(a, b); /* the class's free list is LIFO */
  assert_int_equal((uintptr_t)b % 4096, 0);
  KT_OK(kiln_host_alloc(env->ctx, (3u << 20) + 1, &h)); /* above the classes: its own */
  kiln_pool_stats s = stats_of(env->ctx);
  assert_int_equal(s.allocs, 3);
  assert_int_equal(s.frees, 1);
  assert_int_equal(s.hits, 1);
  assert_int_equal(s.misses, 2);
  assert_int_equal(s.bytes_in_use, 4000 + (3u << 20) + 1);
  assert_int_equal(s.bytes_reserved, (2u << 20) + (3u << 20) + 4096);
  assert_int_equal(s.huge_live, 1);
  assert_int_equal(s.slabs, 2);
  assert_int_equal(s.class_count, 9);
  assert_int_equal(s.classes[0].block_bytes, 4096);
  assert_int_equal(s.classes[8].block_bytes, 1u << 20);
  assert_int_equal(s.classes[0].live, 1);
  assert_int_equal(s.classes[0].hits, 1);
  assert_int_equal(s.bytes_cached, (2u << 20) - 4096);
  KT_OK(kiln_host_free(env->ctx, h)); /* huge: back to the backend at once */
  s = stats_of(env->ctx);
  assert_int_equal(s.huge_live, 0);
  assert_int_equal(s.device_frees, 1);
  assert_int_equal(s.bytes_reserved, 2u << 20);
  KT_OK(kiln_host_pool_trim(env->ctx, 0)); /* b is live: its slab stays */
  assert_int_equal(stats_of(env->ctx).bytes_reserved, 2u << 20);
  KT_OK(kiln_host_free(env->ctx, b));
  KT_OK(kiln_host_pool_trim(env->ctx, 0));
  s = stats_of(env->ctx);
  assert_int_equal(s.bytes_reserved, 0);
  assert_int_equal(s.slabs, 0);
  assert_int_equal(s.bytes_in_use, 0);
  assert_int_equal(s.bytes_in_use_peak, 4000 + (3u << 20) + 1);
}

/* A write from a pinned block is queued on s2 behind a hold; the block is freed on s1
 * (idle). The free returns at once; the block must stay out of the pool until s2's
 * write has run, so an allocation meanwhile gets another block and the write sends the
 * block's own bytes; once everything completed the block is reissued. */
static void free_on_waits_for_every_stream(void **state) {
  kt_env *env = *state;
  const size_t n = 64 * 1024;
  kiln_stream s2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  kiln_buffer buf = kt_buffer(env->ctx, n);
  unsigned char *p = NULL, *q = NULL, *r = NULL;
  KT_OK(kiln_host_alloc(env->ctx, n, (void **)&p));
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(i * 7u + 3u);
  kt_gate *gate = kt_env_gate(env);
  kiln_pending hold = KILN_PENDING_INIT, w = KILN_PENDING_INIT;
  KT_OK(kt_hold_async(env->ctx, s2, gate, &hold));
  KT_OK(kiln_buffer_write_async(s2, buf, 0, n, p, &w));
  KT_OK(kiln_host_free_on(env->ctx, p, env->stream)); /* env->stream is idle */
  kiln_pool_stats s = stats_of(env->ctx);
  assert_int_equal(s.pending_frees, 1);
  assert_int_equal(s.frees, 1);
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, p, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "freed already");
  KT_OK(kiln_host_alloc(env->ctx, n, (void **)&q));
  assert_ptr_not_equal(q, p);
  memset(q, 0xEE, n); /* would overwrite the queued write's source if it were p */
  kt_gate_open(gate);
  KT_OK(kiln_wait(&hold));
  KT_OK(kiln_wait(&w));
  unsigned char *back = malloc(n);
  assert_non_null(back);
  KT_OK(kiln_buffer_read(buf, 0, n, back));
  for (size_t i = 0; i < n; i++)
    if (back[i] != (unsigned char)(i * 7u + 3u))
      fail_msg("byte %zu is %u: the block was reused before the queued write read it", i, back[i]);
  free(back);
  KT_OK(kiln_stream_synchronize(s2));
  KT_OK(kiln_host_alloc(env->ctx, n, (void **)&r));
  assert_ptr_equal(r, p); /* back in the pool now */
  assert_int_equal(stats_of(env->ctx).pending_frees, 0);
  KT_OK(kiln_host_free_on(env->ctx, r, s2)); /* nothing queued: back at once */
  assert_int_equal(stats_of(env->ctx).pending_frees, 0);
  KT_OK(kiln_host_free(env->ctx, q));
  KT_OK(kiln_buffer_destroy(buf));
  KT_OK(kiln_stream_destroy(s2));
}

static void bad_input_refused(void **state) {
  kt_env *env = *state;
  void *p = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 100, &p));
  KT_OK(kiln_host_free_on(env->ctx, NULL, env->stream)); /* no-op */
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, p, NULL), KILN_ERROR_INVALID_HANDLE, "stream is NULL");
  kiln_stream dead = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &dead));
  KT_OK(kiln_stream_destroy(dead));
  KT_EXPECT(kiln_host_free_on(env->ctx, p, dead), KILN_ERROR_INVALID_HANDLE);
  kiln_context other = NULL;
  kiln_stream os = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &other));
  KT_OK(kiln_stream_create(other, NULL, &os));
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, p, os), KILN_ERROR_DEVICE_MISMATCH, "another context");
  KT_EXPECT_MSG(kiln_host_free_on(other, p, os), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  KT_OK(kiln_context_destroy(other));
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, (char *)p + 8, env->stream),
                KILN_ERROR_INVALID_ARGUMENT, "points 8 bytes into");
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, (char *)p + 4096 * 3, env->stream),
                KILN_ERROR_INVALID_ARGUMENT, "not returned by kiln_host_alloc");
  /* p is still live after every refusal */
  int pinned = 0;
  KT_OK(kiln_host_is_pinned(env->ctx, p, 100, &pinned));
  assert_int_equal(pinned, 1);
  KT_OK(kiln_host_free(env->ctx, p));
  KT_OK(kiln_host_is_pinned(env->ctx, p, 100, &pinned));
  assert_int_equal(pinned, 0); /* a free block of the pool is no block of the program */
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, p, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "freed already");
  KT_EXPECT_MSG(kiln_host_free(env->ctx, p), KILN_ERROR_INVALID_ARGUMENT, "freed already");
  KT_EXPECT(kiln_host_free_on(NULL, p, env->stream), KILN_ERROR_INVALID_HANDLE);
  kiln_pool_stats s = KILN_POOL_STATS_INIT;
  KT_EXPECT(kiln_host_pool_get_stats(env->ctx, NULL), KILN_ERROR_INVALID_ARGUMENT);
  s.struct_size = 8;
  KT_EXPECT_MSG(kiln_host_pool_get_stats(env->ctx, &s), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_POOL_STATS_INIT");
  KT_EXPECT(kiln_host_pool_trim(NULL, 0), KILN_ERROR_INVALID_HANDLE);
}

/* Blocks left live, and freed with their work pending, go with the context. */
static void leftovers_at_destroy(void **state) {
  kt_env *env = *state;
  void *p = NULL, *q = NULL, *h = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 5000, &p));
  KT_OK(kiln_host_alloc(env->ctx, 5000, &q));
  KT_OK(kiln_host_alloc(env->ctx, 2u << 20, &h));
  kiln_buffer buf = kt_buffer(env->ctx, 5000);
  kiln_pending w = KILN_PENDING_INIT;
  KT_OK(kiln_buffer_write_async(env->stream, buf, 0, 5000, q, &w));
  KT_OK(kiln_pending_release(&w));
  KT_OK(kiln_host_free_on(env->ctx, q, env->stream));
  (void)p;
  (void)h; /* kt_teardown's context destroy releases them; the test allocator checks */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(reuse_stats_and_trim, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(free_on_waits_for_every_stream, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(bad_input_refused, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(leftovers_at_destroy, kt_setup, kt_teardown),
};
KT_MAIN(tests)
