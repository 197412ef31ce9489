/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu mock unit stress */
/* kiln-test-env: KILN_MOCK=1 */
/* What the API fuzzer (tests/fuzz/fuzz_api.c) found, one test per finding, each the
 * smallest program that showed it; the inputs themselves are replayed from
 * tests/fuzz/api-regressions by fuzz.api_regressions. Runs under the test allocator:
 * nothing may leak. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/mock.h"
#include "kiln_test.h"

/* kiln_host_free / kiln_host_free_on of a pointer that is not a block of the context
 * is INVALID_ARGUMENT (host.h), even when host memory is short: the free used to make
 * the context's pinned pool first (or, for _on, the list of streams to wait for) and
 * answered OUT_OF_HOST_MEMORY when that allocation failed. */
static void host_free_of_foreign_pointer_allocates_nothing(void **state) {
  kt_env *env = *state;
  uint64_t mine[4] = {0};
  kt_alloc_fail_from(1); /* no host memory at all from here */
  KT_EXPECT_MSG(kiln_host_free(env->ctx, mine), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, mine, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  kt_alloc_fail_none();
  /* With the pool made (a block allocated), a foreign pointer given to free_on is refused
   * before the stream list is allocated. */
  void *block = NULL;
  KT_OK(kiln_host_alloc(env->ctx, 4096, &block));
  kt_alloc_fail_from(1);
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, mine, env->stream), KILN_ERROR_INVALID_ARGUMENT,
                "not returned by kiln_host_alloc");
  KT_EXPECT_MSG(kiln_host_free_on(env->ctx, (char *)block + 8, env->stream),
                KILN_ERROR_INVALID_ARGUMENT, "points 8 bytes into the block");
  assert_int_equal(kt_alloc_failures(), 0); /* nothing was even tried */
  kt_alloc_fail_none();
  KT_OK(kiln_host_free_on(env->ctx, block, env->stream));
  KT_EXPECT_MSG(kiln_host_free(env->ctx, block), KILN_ERROR_INVALID_ARGUMENT, "freed already");
}

/* A blocking read on one thread while another destroys the buffer: the read either runs
 * before the destroy frees the storage (the destroy waits for it) or is refused with
 * INVALID_HANDLE. It used to pass the handle check, then register its op after the
 * destroy had waited for the buffer's (then empty) work and freed the storage: the
 * worker read from NULL (found by fuzz_api, through a completion callback that read a
 * buffer the program destroyed meanwhile). Many rounds, as the window is a few
 * instructions wide; each round's read runs against a fresh buffer. In the TSan tree
 * (this file is labelled stress) it also shows that a read refused late locks a live
 * mutex: the buffer's hazard mutex used to be destroyed with the buffer, under a read
 * that had checked the handle before ("destroy of a locked mutex"). */
/* TSan sees a mutex used after its destroy whenever the interleaving occurs, without
 * needing it to hit a narrow window; its rounds cost ten times as much. */
#if defined(__SANITIZE_THREAD__)
#define RACE_ROUNDS 600
#else
#define RACE_ROUNDS 3000
#endif

typedef struct racer {
  _Atomic(kiln_buffer) current;
  atomic_int stop;
  atomic_long reads, refused;
  kiln_status bad;
} racer;

static void *read_loop(void *arg) {
  racer *r = arg;
  uint64_t word;
  while (!atomic_load(&r->stop)) {
    kiln_buffer b = atomic_load(&r->current);
    if (!b)
      continue;
    kiln_status st = kiln_buffer_read(b, 0, sizeof word, &word);
    if (st == KILN_SUCCESS)
      atomic_fetch_add(&r->reads, 1);
    else if (st == KILN_ERROR_INVALID_HANDLE)
      atomic_fetch_add(&r->refused, 1);
    else
      r->bad = st;
  }
  return NULL;
}

static void race_reads_with_destroy(kt_env *env, bool managed, int rounds) {
  racer r;
  atomic_init(&r.current, NULL);
  atomic_init(&r.stop, 0);
  atomic_init(&r.reads, 0);
  atomic_init(&r.refused, 0);
  r.bad = KILN_SUCCESS;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, read_loop, &r), 0);
  for (int round = 0; round < rounds; round++) {
    kiln_buffer b = NULL;
    if (managed)
      KT_OK(kiln_managed_create(env->ctx, 64, &b));
    else
      b = kt_buffer(env->ctx, 64);
    uint64_t words[8] = {0};
    KT_OK(kiln_buffer_write(b, 0, sizeof words, words));
    atomic_store(&r.current, b);
    for (long seen = atomic_load(&r.reads) + atomic_load(&r.refused);
         atomic_load(&r.reads) + atomic_load(&r.refused) == seen;)
      sched_yield(); /* until a read of this round has finished: the next is under way */
    KT_OK(kiln_buffer_destroy(b)); /* the handle stays published: later reads are refused */
  }
  atomic_store(&r.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(r.bad, KILN_SUCCESS);
  assert_true(atomic_load(&r.reads) > 0);
  assert_true(atomic_load(&r.refused) > 0);
}

static void read_racing_buffer_destroy(void **state) {
  race_reads_with_destroy(*state, false, RACE_ROUNDS);
}

/* The same with managed buffers, whose host copy and state the destroy frees too. A
 * third of the rounds: what it adds is the managed record, which TSan and ASan see
 * misused whenever the interleaving occurs. */
static void read_racing_managed_buffer_destroy(void **state) {
  race_reads_with_destroy(*state, true, RACE_ROUNDS / 3);
}

/* A transfer or launch on a managed buffer the host holds is INVALID_STATE (managed.h),
 * even when host memory is short: the refusal used to come only when the op was
 * submitted, after the call had made the context's internal stream and the op, so a
 * failed allocation answered OUT_OF_HOST_MEMORY instead. */
static void acquired_managed_buffer_refused_before_allocating(void **state) {
  kt_env *env = *state;
  kiln_buffer m = NULL;
  KT_OK(kiln_managed_create(env->ctx, 64, &m));
  void *host = NULL;
  KT_OK(kiln_managed_acquire(m, KILN_PARAM_BUFFER_WRITE, &host));
  uint64_t word = 0;
  kt_alloc_fail_from(1); /* no host memory at all from here */
  KT_EXPECT_MSG(kiln_buffer_read(m, 0, sizeof word, &word), KILN_ERROR_INVALID_STATE,
                "acquired for write");
  KT_EXPECT_MSG(kiln_buffer_write(m, 0, sizeof word, &word), KILN_ERROR_INVALID_STATE,
                "acquired for write");
  KT_EXPECT_MSG(kiln_buffer_fill(m, 0, sizeof word, &word, sizeof word), KILN_ERROR_INVALID_STATE,
                "acquired for write");
  KT_EXPECT_MSG(kiln_buffer_copy(m, 0, m, 8, 8), KILN_ERROR_INVALID_STATE, "acquired for write");
  kiln_kernel k = NULL;
  kt_alloc_fail_none();
  KT_OK(kt_kernel(env->ctx, "kt_set_u32", &k));
  uint32_t value = 7;
  kiln_arg args[2] = {kiln_arg_buffer(m), kiln_arg_scalar(&value, sizeof value)};
  kiln_range range = kiln_range_1d(4);
  kt_alloc_fail_from(1);
  KT_EXPECT_MSG(kiln_launch(env->stream, k, &range, args, 2), KILN_ERROR_INVALID_STATE,
                "acquired for write");
  assert_int_equal(kt_alloc_failures(), 0); /* nothing was even tried */
  kt_alloc_fail_none();
  KT_OK(kiln_managed_release(m));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_buffer_destroy(m));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(host_free_of_foreign_pointer_allocates_nothing, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(read_racing_buffer_destroy, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(read_racing_managed_buffer_destroy, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(acquired_managed_buffer_refused_before_allocating, kt_setup,
                                      kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_CPU) || !kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the cpu or mock backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
