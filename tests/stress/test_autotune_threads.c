/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* kiln-test-env: KILN_AUTOTUNE=1 KILN_AUTOTUNE_SAMPLES=2 KILN_CACHE=off */
/* Autotuning under threads (src/core/tune.c): four threads, each on a stream of its
 * own, launch one kernel that counts its work-items with an atomic, asynchronously in
 * bursts, while a fifth asks for the launch configuration; the kernel's table, the
 * candidates' turns and the timings of launches completing on the CPU backend's
 * workers are shared. Every launch runs every work-item once, the tuning converges,
 * and (in the TSan tree) no race is reported. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define THREADS 4
#define ROUNDS 6
#define BURST 4
#define N 70000u

static const char src[] = "KILN_KERNEL void count(KILN_GLOBAL uint *c, uint n) {\n"
                          "  if (kiln_global_id(0) < n) kiln_atomic_inc(c);\n"
                          "}\n";

typedef struct shared {
  kiln_context ctx;
  kiln_kernel k;
  kiln_buffer c;
  kiln_stream s[THREADS];
  atomic_int next;
  atomic_int stop;
} shared;

/* The streams are made and destroyed by the main thread, with every thread joined: a
 * stream destroyed while another stream's worker still waits on it for a hazard
 * dependency (all launches write c) is a race of its own, outside autotuning. */
static void *launcher(void *arg) {
  shared *sh = arg;
  kiln_stream s = sh->s[atomic_fetch_add(&sh->next, 1)];
  unsigned n = N;
  kiln_arg a[2] = {kiln_arg_buffer(sh->c), kiln_arg_scalar(&n, 4)};
  kiln_range r = kiln_range_1d(N);
  for (int round = 0; round < ROUNDS; round++) {
    kiln_pending t[BURST];
    for (int i = 0; i < BURST; i++)
      if (kiln_launch_async(s, sh->k, &r, a, 2, &t[i]) != KILN_SUCCESS)
        return (void *)2;
    for (int i = 0; i < BURST; i++)
      if (kiln_wait(&t[i]) != KILN_SUCCESS)
        return (void *)3;
  }
  return NULL;
}

static void *asker(void *arg) {
  shared *sh = arg;
  kiln_range r = kiln_range_1d(N);
  while (!atomic_load(&sh->stop)) {
    kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
    if (kiln_kernel_get_launch_config(sh->k, &r, &c) != KILN_SUCCESS || c.local[0] == 0)
      return (void *)1;
  }
  return NULL;
}

static void tuning_under_threads(void **state) {
  (void)state;
  shared sh;
  memset(&sh, 0, sizeof sh);
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &sh.ctx));
  kiln_program_desc pd = KILN_PROGRAM_DESC_INIT;
  pd.source = src;
  kiln_program p;
  KT_OK(kiln_program_create(sh.ctx, &pd, &p));
  KT_OK(kiln_kernel_create(p, "count", &sh.k));
  sh.c = kt_buffer(sh.ctx, 4);
  unsigned zero = 0;
  KT_OK(kiln_buffer_write(sh.c, 0, 4, &zero));
  for (int i = 0; i < THREADS; i++)
    KT_OK(kiln_stream_create(sh.ctx, NULL, &sh.s[i]));
  pthread_t th[THREADS], ask;
  assert_int_equal(pthread_create(&ask, NULL, asker, &sh), 0);
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, launcher, &sh), 0);
  for (int i = 0; i < THREADS; i++) {
    void *rc;
    assert_int_equal(pthread_join(th[i], &rc), 0);
    assert_null(rc);
  }
  atomic_store(&sh.stop, 1);
  void *rc;
  assert_int_equal(pthread_join(ask, &rc), 0);
  assert_null(rc);
  unsigned got = 0;
  KT_OK(kiln_buffer_read(sh.c, 0, 4, &got));
  assert_int_equal(got, THREADS * ROUNDS * BURST * N);
  kiln_launch_config c = KILN_LAUNCH_CONFIG_INIT;
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_kernel_get_launch_config(sh.k, &r, &c));
  assert_int_equal(c.origin, KILN_LAUNCH_ORIGIN_AUTOTUNED); /* 96 launches, <= 12 needed */
  for (int i = 0; i < THREADS; i++)
    KT_OK(kiln_stream_destroy(sh.s[i]));
  KT_OK(kiln_buffer_destroy(sh.c));
  KT_OK(kiln_kernel_destroy(sh.k));
  KT_OK(kiln_program_destroy(p));
  KT_OK(kiln_context_destroy(sh.ctx));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(tuning_under_threads),
};
KT_MAIN_CPU(tests)
