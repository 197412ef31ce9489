/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda-fake */
/* kiln-test-env: KILN_CPU_SHUFFLE=5 */
/* Managed buffers (include/kiln/managed.h) on every backend, under shuffled completion
 * (KILN_CPU_SHUFFLE on cpu; the mock's shuffle and delays): rounds of a host write
 * through kiln_managed_acquire, launches on two streams that add to the buffer (ordered
 * by the hazard tracking alone), and a read acquire that must see every add; a transfer
 * from the buffer after a host write sees the host's data (uploaded first), a transfer
 * into it is seen by the next acquire (downloaded); zero-copy on cpu (the host copy is
 * the buffer's memory). Misuse refused with INVALID_STATE or INVALID_ARGUMENT: a
 * release without an acquire, a launch or transfer while acquired for write, a write
 * launch while acquired for read, a second write acquire, an acquire of an ordinary
 * buffer, a bad access kind. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define N 4096u
#define ROUNDS 24

static void shuffle_on(void) {
  if (kt_backend() != KILN_BACKEND_MOCK)
    return;
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  mc.shuffle_seed = 77;
  mc.delay_ns = 20000;
  KT_OK(kiln_mock_configure(&mc));
}

static void shuffle_off(void) {
  if (kt_backend() == KILN_BACKEND_MOCK)
    KT_OK(kiln_mock_configure(NULL));
}

static void coherent_under_shuffle(void **state) {
  kt_env *env = *state;
  shuffle_on();
  kiln_stream s1 = NULL, s2 = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s1));
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  kiln_buffer m = NULL;
  KT_OK(kiln_managed_create(env->ctx, N * 4, &m));
  kiln_kernel add = kt_add_kernel(env->ctx);
  uint32_t *host = malloc(N * 4);
  assert_non_null(host);
  uint64_t off = 0;
  uint32_t one = 1, two = 2;
  kiln_arg a1[3], a2[3];
  kt_add_args(a1, m, &off, &one);
  kt_add_args(a2, m, &off, &two);
  kiln_range r = kiln_range_1d(N);
  for (int round = 0; round < ROUNDS; round++) {
    uint32_t *p = NULL;
    KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_WRITE, (void **)&p));
    if (kt_backend() == KILN_BACKEND_CPU) { /* zero-copy: the buffer's own memory */
      void *native = NULL;
      KT_OK(kiln_buffer_get_native(m, KILN_NATIVE_HOST_POINTER, &native));
      assert_ptr_equal(native, p);
    }
    for (uint32_t i = 0; i < N; i++)
      p[i] = (uint32_t)round * 100000u + i;
    KT_OK(kiln_managed_release(m));
    kiln_pending t1 = KILN_PENDING_INIT, t2 = KILN_PENDING_INIT, t3 = KILN_PENDING_INIT;
    if (round % 3 == 2) { /* a transfer after the host write: the host's data */
      KT_OK(kiln_buffer_read_async(s2, m, 0, N * 4, host, &t3));
      KT_OK(kiln_wait(&t3));
      for (uint32_t i = 0; i < N; i++)
        if (host[i] != (uint32_t)round * 100000u + i)
          fail_msg("round %d: word %u read %u: the host write was not uploaded", round, i, host[i]);
    }
    KT_OK(kiln_launch_async(s1, add, &r, a1, 3, &t1));
    KT_OK(kiln_launch_async(s2, add, &r, a2, 3, &t2));
    KT_OK(kiln_pending_release(&t1));
    KT_OK(kiln_pending_release(&t2));
    const uint32_t *q = NULL;
    KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_READ, (void **)&q));
    for (uint32_t i = 0; i < N; i++)
      if (q[i] != (uint32_t)round * 100000u + i + 3u)
        fail_msg("round %d: word %u is %u, expected %u", round, i, q[i],
                 (uint32_t)round * 100000u + i + 3u);
    KT_OK(kiln_managed_release(m));
    if (round % 4 == 3) { /* a transfer into it: the next acquire downloads */
      for (uint32_t i = 0; i < N; i++)
        host[i] = 7u * i + (uint32_t)round;
      KT_OK(kiln_buffer_write_async(s1, m, 0, N * 4, host, &t3));
      KT_OK(kiln_wait(&t3)); /* host is the write's until a wait sees it done (the guard) */
      KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_READ_WRITE, (void **)&p));
      for (uint32_t i = 0; i < N; i++)
        if (p[i] != 7u * i + (uint32_t)round)
          fail_msg("round %d: word %u is %u after a write into the buffer", round, i, p[i]);
      KT_OK(kiln_managed_release(m));
    }
  }
  free(host);
  KT_OK(kiln_kernel_destroy(add));
  KT_OK(kiln_stream_destroy(s1));
  KT_OK(kiln_stream_destroy(s2));
  KT_OK(kiln_buffer_destroy(m));
  shuffle_off();
}

static void misuse_refused(void **state) {
  kt_env *env = *state;
  kiln_buffer m = NULL, plain = kt_buffer(env->ctx, 64);
  KT_OK(kiln_managed_create(env->ctx, 2048, &m)); /* 512 words; launches touch 256 */
  void *p = NULL;
  KT_EXPECT_MSG(kiln_managed_release(m), KILN_ERROR_INVALID_STATE, "is not acquired");
  KT_EXPECT_MSG(kiln_managed_acquire(plain, KILN_PARAM_BUFFER_READ, &p),
                KILN_ERROR_INVALID_ARGUMENT, "not a managed buffer");
  KT_EXPECT_MSG(kiln_managed_release(plain), KILN_ERROR_INVALID_ARGUMENT, "not a managed buffer");
  KT_EXPECT_MSG(kiln_managed_acquire(m, KILN_PARAM_SCALAR, &p), KILN_ERROR_INVALID_ARGUMENT,
                "access is 4");
  KT_EXPECT(kiln_managed_acquire(m, KILN_PARAM_BUFFER_READ, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_managed_acquire(NULL, KILN_PARAM_BUFFER_READ, &p), KILN_ERROR_INVALID_HANDLE);
  kiln_kernel add = kt_add_kernel(env->ctx);
  uint64_t off = 0;
  uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, m, &off, &one);
  kiln_range r = kiln_range_1d(256);
  KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_WRITE, &p));
  memset(p, 0, 2048);
  KT_EXPECT_MSG(kiln_launch(env->stream, add, &r, args, 3), KILN_ERROR_INVALID_STATE,
                "acquired for write");
  unsigned char back[16];
  KT_EXPECT_MSG(kiln_buffer_read(m, 0, 16, back), KILN_ERROR_INVALID_STATE, "acquired for write");
  KT_EXPECT_MSG(kiln_managed_acquire(m, KILN_PARAM_BUFFER_READ, &p), KILN_ERROR_INVALID_STATE,
                "already acquired for write");
  KT_OK(kiln_managed_release(m));
  /* read acquires overlap; a write use and a write acquire are refused meanwhile */
  void *q = NULL;
  KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_READ, &p));
  KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_READ, &q));
  assert_ptr_equal(p, q);
  KT_EXPECT_MSG(kiln_launch(env->stream, add, &r, args, 3), KILN_ERROR_INVALID_STATE,
                "acquired for read");
  KT_OK(kiln_buffer_read(m, 0, 16, back)); /* reading it on the device is fine */
  for (int i = 0; i < 16; i++)
    assert_int_equal(back[i], 0);
  KT_EXPECT_MSG(kiln_managed_acquire(m, KILN_PARAM_BUFFER_WRITE, &p), KILN_ERROR_INVALID_STATE,
                "exclusive");
  KT_OK(kiln_managed_release(m));
  KT_OK(kiln_managed_release(m));
  KT_EXPECT(kiln_managed_release(m), KILN_ERROR_INVALID_STATE);
  KT_OK(kiln_launch(env->stream, add, &r, args, 3)); /* released: allowed again */
  uint32_t *w = NULL;
  KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_READ, (void **)&w));
  assert_int_equal(w[0], 1);
  assert_int_equal(w[255], 1);
  assert_int_equal(w[256], 0);
  KT_OK(kiln_managed_release(m));
  /* bad create */
  kiln_buffer none = NULL;
  KT_EXPECT_MSG(kiln_managed_create(env->ctx, 0, &none), KILN_ERROR_INVALID_ARGUMENT, "bytes is 0");
  KT_EXPECT(kiln_managed_create(env->ctx, (size_t)env->props.max_alloc_bytes + 1, &none),
            KILN_ERROR_LIMIT_EXCEEDED);
  KT_EXPECT(kiln_managed_create(env->ctx, 16, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_managed_create(NULL, 16, &none), KILN_ERROR_INVALID_HANDLE);
  /* a buffer destroyed while acquired: its host copy goes with it */
  KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_WRITE, &p));
  KT_OK(kiln_kernel_destroy(add));
  KT_OK(kiln_buffer_destroy(m));
  KT_OK(kiln_buffer_destroy(plain));
}

/* Every host allocation failing in turn: the create fails cleanly, nothing leaks
 * (kt_teardown checks the test allocator). */
static void create_failure_sweep(void **state) {
  kt_env *env = *state;
  int made = 0;
  for (size_t n = 1; n < 12 && !made; n++) {
    kt_alloc_fail_nth(n);
    kiln_buffer m = NULL;
    kiln_status st = kiln_managed_create(env->ctx, 4096, &m);
    kt_alloc_fail_none();
    if (st == KILN_SUCCESS) {
      made = 1;
      KT_OK(kiln_buffer_destroy(m));
    } else {
      assert_true(st == KILN_ERROR_OUT_OF_HOST_MEMORY || st == KILN_ERROR_OUT_OF_DEVICE_MEMORY);
      assert_null(m);
    }
  }
  assert_true(made);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(coherent_under_shuffle, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(misuse_refused, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(create_failure_sweep, kt_setup, kt_teardown),
};
KT_MAIN(tests)
