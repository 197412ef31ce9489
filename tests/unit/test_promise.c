/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* Promises (include/kiln/future.h): a future the program completes from any thread —
 * what libkiln_mpi hands out for its async transfers. Completed with success and with
 * a failure whose message the wait reports; composed with then and when_all beside a
 * token's future; completed twice, empty, or with a status that is not final: refused;
 * a promise of a destroyed context refused; one never completed is freed by context
 * destroy; kiln_error_report_native fills kiln_last_error as kiln's calls do;
 * kiln_buffer_get_context names a buffer's context; allocation failures leak nothing. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <string.h>

#include "kiln_test.h"

static void promise_success_and_failure(void **state) {
  kt_env *env = *state;
  kiln_future f;
  kiln_promise p;
  KT_OK(kiln_future_promise(env->ctx, &f, &p));
  assert_true(f.id != 0 && p.id == f.id);
  assert_int_equal(kiln_future_query(&f), KILN_NOT_READY);
  KT_EXPECT(kiln_future_wait_timeout(&f, 1000000), KILN_TIMEOUT); /* kept */
  KT_OK(kiln_promise_complete(&p, KILN_SUCCESS, "ignored"));
  assert_int_equal(p.id, 0);
  assert_int_equal(kiln_future_query(&f), KILN_SUCCESS);
  KT_OK(kiln_future_wait(&f));

  int line = __LINE__ + 1;
  KT_OK(kiln_future_promise(env->ctx, &f, &p));
  kiln_promise copy = p;
  KT_OK(kiln_promise_complete(&p, KILN_ERROR_BACKEND, "rank 1: MPI_Recv failed: MPI_ERR_TRUNCATE"));
  KT_EXPECT_MSG(kiln_promise_complete(&copy, KILN_SUCCESS, NULL), KILN_ERROR_INVALID_HANDLE,
                "already completed");
  KT_EXPECT_MSG(kiln_future_wait(&f), KILN_ERROR_BACKEND, "MPI_ERR_TRUNCATE");
  char where[64];
  snprintf(where, sizeof where, "test_promise.c:%d", line);
  KT_MSG_HAS(where); /* the future names where it was made */
}

static kiln_status then_fn(kiln_status st, void *user) {
  atomic_int *runs = user;
  atomic_fetch_add(runs, 1);
  return st;
}

static void *complete_later(void *arg) {
  kiln_promise *p = arg;
  struct timespec ts = {0, 2000000};
  nanosleep(&ts, NULL);
  kiln_status st = kiln_promise_complete(p, KILN_ERROR_LIMIT_EXCEEDED, "from another thread");
  return (void *)(intptr_t)st;
}

static void promise_composes(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  static uint32_t src[16];
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof src, src, &t));
  kiln_future fs[2], chained, all;
  kiln_promise p;
  KT_OK(kiln_future_from_pending(&t, &fs[0]));
  KT_OK(kiln_future_promise(env->ctx, &fs[1], &p));
  atomic_int runs;
  atomic_init(&runs, 0);
  KT_OK(kiln_future_then(&fs[1], then_fn, &runs, &chained));
  fs[1] = chained;
  KT_OK(kiln_future_when_all(fs, 2, &all));
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, complete_later, &p), 0);
  KT_EXPECT_MSG(kiln_future_wait(&all), KILN_ERROR_LIMIT_EXCEEDED, "kiln_future_promise");
  void *ret = NULL;
  pthread_join(th, &ret);
  assert_int_equal((int)(intptr_t)ret, KILN_SUCCESS);
  assert_int_equal(atomic_load(&runs), 1);
  KT_OK(kiln_buffer_destroy(b));
}

static void promise_bad_input(void **state) {
  kt_env *env = *state;
  kiln_future f = {7};
  kiln_promise p = {7};
  KT_EXPECT_MSG(kiln_future_promise(env->ctx, NULL, &p), KILN_ERROR_INVALID_ARGUMENT, "future");
  KT_EXPECT_MSG(kiln_future_promise(env->ctx, &f, NULL), KILN_ERROR_INVALID_ARGUMENT, "promise");
  assert_int_equal(f.id, 0);
  KT_EXPECT(kiln_future_promise(NULL, &f, &p), KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(p.id, 0);
  KT_EXPECT_MSG(kiln_promise_complete(NULL, KILN_SUCCESS, NULL), KILN_ERROR_INVALID_ARGUMENT,
                "NULL");
  KT_EXPECT_MSG(kiln_promise_complete(&p, KILN_SUCCESS, NULL), KILN_ERROR_INVALID_HANDLE, "empty");
  KT_OK(kiln_future_promise(env->ctx, &f, &p));
  KT_EXPECT_MSG(kiln_promise_complete(&p, KILN_NOT_READY, NULL), KILN_ERROR_INVALID_ARGUMENT,
                "not a final kiln_status");
  KT_EXPECT(kiln_promise_complete(&p, (kiln_status)-999, NULL), KILN_ERROR_INVALID_ARGUMENT);
  assert_true(p.id != 0); /* kept: still completable */
  KT_OK(kiln_future_drop(&f));
  KT_OK(kiln_promise_complete(&p, KILN_SUCCESS, NULL)); /* after its future was dropped */
  /* never completed: context destroy frees it (a warning), the promise is then stale */
  kiln_context other;
  KT_OK(kiln_context_create(kt_device(), NULL, &other));
  KT_OK(kiln_future_promise(other, &f, &p));
  KT_OK(kiln_future_drop(&f));
  KT_OK(kiln_context_destroy(other));
  KT_EXPECT_MSG(kiln_promise_complete(&p, KILN_SUCCESS, NULL), KILN_ERROR_INVALID_HANDLE,
                "destroyed");
}

static void set_error_fills_last_error(void **state) {
  (void)state;
  kiln_clear_error();
  assert_int_equal(kiln_error_report_native(KILN_ERROR_BACKEND, "kiln_mpi_recv", 15,
                                            "MPI_ERR_TRUNCATE", NULL, "rank %d: %s", 1,
                                            "message truncated"),
                   KILN_ERROR_BACKEND);
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->status, KILN_ERROR_BACKEND);
  assert_int_equal(e->native_code, 15);
  assert_string_equal(e->native_name, "MPI_ERR_TRUNCATE");
  assert_string_equal(e->function, "kiln_mpi_recv");
  assert_string_equal(e->message, "rank 1: message truncated");
  assert_string_equal(e->suggestion, kiln_status_suggestion(KILN_ERROR_BACKEND));
  assert_int_equal(e->line, 0);
  kiln_error_report_native(KILN_ERROR_INVALID_ARGUMENT, NULL, 0, NULL, "do this", "x");
  assert_string_equal(kiln_last_error()->suggestion, "do this");
  assert_string_equal(kiln_last_error()->function, "");
}

static void buffer_get_context(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kiln_context c = NULL;
  KT_OK(kiln_buffer_get_context(b, &c));
  assert_ptr_equal(c, env->ctx);
  KT_EXPECT_MSG(kiln_buffer_get_context(b, NULL), KILN_ERROR_INVALID_ARGUMENT, "context");
  c = env->ctx;
  KT_EXPECT(kiln_buffer_get_context(NULL, &c), KILN_ERROR_INVALID_HANDLE);
  assert_null(c);
  KT_OK(kiln_buffer_destroy(b));
  KT_EXPECT(kiln_buffer_get_context(b, &c), KILN_ERROR_INVALID_HANDLE);
}

static void promise_allocation_failures(void **state) {
  kt_env *env = *state;
  kiln_future f;
  kiln_promise p;
  KT_OK(kiln_future_promise(env->ctx, &f, &p)); /* warm: the slab chunk exists */
  KT_OK(kiln_promise_complete(&p, KILN_SUCCESS, NULL));
  KT_OK(kiln_future_wait(&f));
  size_t failed = 0;
  for (size_t n = 1; n <= 4; n++) {
    kt_alloc_fail_from(n);
    kiln_future g[70];
    kiln_promise q[70];
    size_t made = 0;
    kiln_status st = KILN_SUCCESS;
    for (; made < 70; made++) /* past one slab chunk (64) */
      if ((st = kiln_future_promise(env->ctx, &g[made], &q[made])) != KILN_SUCCESS)
        break;
    kt_alloc_fail_none();
    if (st != KILN_SUCCESS) {
      assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
      assert_int_equal(g[made].id, 0);
      assert_int_equal(q[made].id, 0);
      failed++;
    }
    for (size_t i = 0; i < made; i++) {
      KT_OK(kiln_promise_complete(&q[i], KILN_SUCCESS, NULL));
      KT_OK(kiln_future_wait(&g[i]));
    }
  }
  assert_true(failed >= 1);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(promise_success_and_failure, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(promise_composes, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(promise_bad_input, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(set_error_fills_last_error, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(buffer_get_context, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(promise_allocation_failures, kt_setup, kt_teardown),
};
KT_MAIN_CPU(tests)
