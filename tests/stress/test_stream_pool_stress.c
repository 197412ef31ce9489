/* SPDX-License-Identifier: MIT */
/* kiln-test-backends: cpu opencl mock */
/* kiln-test-labels: stress */
/* kiln-test-env: KILN_CPU_SHUFFLE=20261203 */
/* A stream pool under contention: 8 threads each queue KILN_POOL_STRESS_OPS (default
 * 10 000 under TSan, 2 500 elsewhere) operations, every one on a stream just acquired from a
 * least-pending pool of 4 and released at once (even threads) or taken by index, round-robin (odd
 * threads), so consecutive operations on one buffer land on different streams and only the hazard
 * rules order them. Completion is shuffled (cpu: KILN_CPU_SHUFFLE; mock: its shuffle_seed; PoCL
 * runs queues on its own threads). Each thread works on 4 buffers in turn, adding 1 to one three
 * times out of four and copying it to a second buffer the fourth: the final values are exact only
 * if no dependency was missed. Runs under TSan in make check. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define THREADS 8
#define POOL 4
#define ELEMS 64
#define CHAINS 4 /* buffers per thread, used in turn */
/* The full 10 000 under TSan (make check's stress phase, where a missed dependency is
 * also a reported race); a quarter in the other trees, which run it for its results
 * only (the shuffled delays, not the checks, take the time). */
#if defined(__SANITIZE_THREAD__)
#define DEFAULT_OPS 10000
#else
#define DEFAULT_OPS 2500
#endif

typedef struct worker {
  kiln_stream_pool pool;
  kiln_kernel add;
  kiln_buffer mine[CHAINS], copy[CHAINS];
  long ops;
  int by_index; /* odd threads take stream j mod 4 themselves, even ones acquire */
  long adds[CHAINS], adds_at_last_copy[CHAINS];
  kiln_status failed;
  char why[600];
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_range r = kiln_range_1d(ELEMS);
  for (long j = 0; j < w->ops && !w->failed; j++) {
    kiln_stream s = NULL;
    kiln_status st = w->by_index ? kiln_stream_pool_get(w->pool, (size_t)j % POOL, &s)
                                 : kiln_stream_pool_acquire(w->pool, &s);
    kiln_pending t = {0};
    long c = j % CHAINS, k = j / CHAINS; /* op k of chain c */
    if (st == KILN_SUCCESS && k % 4 != 3) {
      kiln_arg args[3];
      kt_add_args(args, w->mine[c], &off, &one);
      st = kiln_launch_async(s, w->add, &r, args, 3, &t);
      w->adds[c]++;
    } else if (st == KILN_SUCCESS) {
      st = kiln_buffer_copy_async(s, w->copy[c], 0, w->mine[c], 0, ELEMS * 4, &t);
      w->adds_at_last_copy[c] = w->adds[c];
    }
    if (st == KILN_SUCCESS)
      st = j % 1000 == 999 ? kiln_wait(&t) : kiln_pending_release(&t);
    if (s && st == KILN_SUCCESS && !w->by_index)
      st = kiln_stream_pool_release(w->pool, s);
    if (st != KILN_SUCCESS) {
      w->failed = st;
      snprintf(w->why, sizeof w->why, "op %ld: %s", j, kiln_last_error()->message);
    }
  }
  return NULL;
}

static void eight_threads_10000_ops(void **state) {
  kt_env *env = *state;
  if (kt_backend() == KILN_BACKEND_MOCK) {
    kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
    mc.shuffle_seed = 0x5eed;
    KT_OK(kiln_mock_configure(&mc));
  } else if (kt_backend() == KILN_BACKEND_CPU && !getenv("KILN_CPU_SHUFFLE")) {
    fail_msg("KILN_CPU_SHUFFLE is not set: run the test through ctest, which sets it");
  }
  const char *v = getenv("KILN_POOL_STRESS_OPS");
  long ops = v && *v ? atol(v) : DEFAULT_OPS;
  kiln_stream_pool_desc d = KILN_STREAM_POOL_DESC_INIT;
  d.policy = KILN_STREAM_LEAST_PENDING;
  d.label = "stress";
  kiln_stream_pool pool = NULL;
  KT_OK(kiln_stream_pool_create(env->ctx, POOL, &d, &pool));
  kiln_kernel add = kt_add_kernel(env->ctx);
  static worker w[THREADS];
  pthread_t th[THREADS];
  uint32_t zero[ELEMS] = {0};
  for (int i = 0; i < THREADS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].pool = pool;
    w[i].add = add;
    w[i].ops = ops;
    w[i].by_index = i % 2;
    for (int c = 0; c < CHAINS; c++) {
      w[i].mine[c] = kt_buffer(env->ctx, ELEMS * 4);
      w[i].copy[c] = kt_buffer(env->ctx, ELEMS * 4);
      KT_OK(kiln_buffer_write(w[i].mine[c], 0, sizeof zero, zero));
      KT_OK(kiln_buffer_write(w[i].copy[c], 0, sizeof zero, zero));
    }
  }
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  KT_OK(kiln_stream_pool_synchronize_all(pool));
  uint64_t total_ops = 0;
  for (size_t i = 0; i < POOL; i++) {
    kiln_stream_stats st = KILN_STREAM_STATS_INIT;
    KT_OK(kiln_stream_pool_get_stats(pool, i, &st));
    assert_int_equal(st.held, 0);
    assert_int_equal(st.pending, 0);
    total_ops += st.ops;
  }
  assert_true(total_ops >= (uint64_t)(THREADS * ops)); /* plus hazard waits, if any */
  for (int i = 0; i < THREADS; i++) {
    if (w[i].failed)
      fail_msg("thread %d failed with %s: %s", i, kiln_status_name(w[i].failed), w[i].why);
    for (int c = 0; c < CHAINS; c++) {
      uint32_t got[ELEMS], copied[ELEMS];
      KT_OK(kiln_buffer_read(w[i].mine[c], 0, sizeof got, got));
      KT_OK(kiln_buffer_read(w[i].copy[c], 0, sizeof copied, copied));
      for (int e = 0; e < ELEMS; e++)
        if (got[e] != (uint32_t)w[i].adds[c] || copied[e] != (uint32_t)w[i].adds_at_last_copy[c])
          fail_msg("thread %d buffer %d element %d: %u adds (expected %ld), copy %u (expected "
                   "%ld)",
                   i, c, e, got[e], w[i].adds[c], copied[e], w[i].adds_at_last_copy[c]);
      KT_OK(kiln_buffer_destroy(w[i].mine[c]));
      KT_OK(kiln_buffer_destroy(w[i].copy[c]));
    }
  }
  KT_OK(kiln_stream_pool_destroy(pool));
  if (kt_backend() == KILN_BACKEND_MOCK)
    KT_OK(kiln_mock_configure(NULL));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(eight_threads_10000_ops, kt_setup, kt_teardown),
};

KT_MAIN(tests)
