/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 KILN_CALLBACK_WARN_MS=100 */
/* Issue #12's holes in the core, each with the behaviour that replaced it: messages
 * that name the right thing (a duplicated token in kiln_wait_all, a token whose stream
 * was destroyed, the failed operation behind a synchronize, "an event"), and a context
 * destroy that neither deadlocks on its own callback thread nor waits silently for a
 * blocked callback; a full context table refused with what to do. Runs on the CPU
 * device, and on the mock for injected failures. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/mock.h"
#include "kiln_test.h"

static kiln_buffer buffer64(kiln_context ctx) {
  return kt_buffer(ctx, 64);
}

/* ---- tokens ---- */

static void wait_all_names_the_duplicate(void **state) {
  kt_env *env = *state;
  kiln_buffer b = buffer64(env->ctx);
  uint64_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof src, src, &t));
  kiln_pending three[3] = {t, t, t};
  KT_EXPECT_MSG(kiln_wait_all(three, 3), KILN_ERROR_INVALID_HANDLE,
                "tokens[1] duplicates tokens[0]");
  /* Nothing was consumed: the token still waits once. */
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_buffer_destroy(b));
}

static void token_of_destroyed_stream_says_so(void **state) {
  kt_env *env = *state;
  kiln_buffer b = buffer64(env->ctx);
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  uint64_t src[8] = {0};
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(s, b, 0, sizeof src, src, &t));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN); /* the forgotten token's report */
  KT_OK(kiln_stream_destroy(s));
  kt_log_capture_stop(&cap);
  assert_true(kt_log_capture_has(&cap, "neither waited nor released"));
  kiln_pending copy = t;
  KT_EXPECT_MSG(kiln_wait(&t), KILN_ERROR_INVALID_HANDLE, "stream was destroyed");
  KT_MSG_HAS("KILN_SUCCESS");            /* what became of the operation */
  KT_MSG_HAS("kiln_buffer_write_async"); /* which operation */
  KT_MSG_HAS("test_reliability_core.c"); /* queued where */
  KT_EXPECT_MSG(kiln_pending_query(&copy), KILN_ERROR_INVALID_HANDLE, "stream was destroyed");
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- synchronize names the failed operation ---- */

static int mock_setup(void **state) {
  int rc = kt_setup(state);
  if (rc)
    return rc;
  kt_env *env = *state;
  KT_OK(kiln_stream_destroy(env->stream));
  KT_OK(kiln_context_destroy(env->ctx));
  env->device = kt_mock_device();
  KT_OK(kiln_device_get_props(env->device, &env->props));
  KT_OK(kiln_context_create(env->device, NULL, &env->ctx));
  KT_OK(kiln_stream_create(env->ctx, NULL, &env->stream));
  return 0;
}

static int mock_teardown(void **state) {
  kiln_mock_configure(NULL);
  return kt_teardown(state);
}

/* Queue a write whose run fails (injected), release its token; returns its line. */
static int queue_failing_write(kt_env *env, kiln_buffer b, const uint64_t *src) {
  kiln_mock_config mc = KILN_MOCK_CONFIG_INIT;
  KT_OK(kiln_mock_configure(&mc));
  mc.fail_call = kiln_mock_calls() + 1; /* the next backend call: this write */
  mc.fail_status = KILN_ERROR_BACKEND;
  KT_OK(kiln_mock_configure(&mc));
  kiln_pending t;
  int line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, src, &t));
  KT_OK(kiln_pending_release(&t));
  return line;
}

static void synchronize_names_the_failed_operation(void **state) {
  kt_env *env = *state;
  kiln_buffer b = buffer64(env->ctx);
  static uint64_t src[8];
  char where[64];

  int line = queue_failing_write(env, b, src);
  snprintf(where, sizeof where, "test_reliability_core.c:%d", line);
  KT_EXPECT_MSG(kiln_context_synchronize(env->ctx), KILN_ERROR_BACKEND, where);
  KT_MSG_HAS("kiln_buffer_write_async");
  KT_MSG_HAS("KILN_ERROR_BACKEND");
  KT_OK(kiln_context_synchronize(env->ctx)); /* reported once */

  line = queue_failing_write(env, b, src);
  snprintf(where, sizeof where, "test_reliability_core.c:%d", line);
  KT_EXPECT_MSG(kiln_stream_synchronize(env->stream), KILN_ERROR_BACKEND, where);
  KT_MSG_HAS("kiln_buffer_write_async");
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- handle messages ---- */

static void wrong_handle_type_reads_well(void **state) {
  kt_env *env = *state;
  kiln_buffer b = buffer64(env->ctx);
  KT_EXPECT_MSG(kiln_event_record((kiln_event)(void *)b, env->stream), KILN_ERROR_INVALID_HANDLE,
                "is a buffer, not an event");
  kiln_event e = NULL;
  KT_OK(kiln_event_create(env->ctx, NULL, &e));
  KT_EXPECT_MSG(kiln_buffer_destroy((kiln_buffer)(void *)e), KILN_ERROR_INVALID_HANDLE,
                "is an event, not a buffer");
  KT_OK(kiln_event_destroy(e));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- context destroy and callbacks ---- */

typedef struct destroy_from_cb {
  kiln_context ctx;
  kiln_status status; /* what destroy returned, written before done */
  atomic_int done;
  char message[512];
} destroy_from_cb;

static void destroying_callback(kiln_status status, void *user) {
  (void)status;
  destroy_from_cb *d = user;
  kiln_status st = kiln_context_destroy(d->ctx);
  snprintf(d->message, sizeof d->message, "%s", kiln_last_error()->message);
  d->status = st;
  atomic_store(&d->done, 1);
}

static void destroy_from_own_callback_is_refused(void **state) {
  kt_env *env = *state;
  destroy_from_cb d = {env->ctx, KILN_SUCCESS, 0, {0}};
  KT_OK(kiln_stream_add_callback(env->stream, destroying_callback, &d));
  KT_OK(kiln_stream_synchronize(env->stream));
  assert_true(kt_wait_atomic_at_least(&d.done, 1, 30.0)); /* a hang before: self-join */
  assert_int_equal(d.status, KILN_ERROR_INVALID_STATE);
  assert_non_null(strstr(d.message, "from a completion callback of this context"));
  /* The context is intact: it still runs work, and teardown destroys it. */
  kiln_buffer b = buffer64(env->ctx);
  uint64_t v[8] = {0};
  KT_OK(kiln_buffer_write(b, 0, sizeof v, v));
  KT_OK(kiln_buffer_destroy(b));
}

typedef struct blocked_cb {
  pthread_mutex_t lock; /* held by the test thread, which destroys the context */
  atomic_int entered, reported, unlocked;
  char line[1024];
} blocked_cb;

static void blocking_callback(kiln_status status, void *user) {
  (void)status;
  blocked_cb *b = user;
  atomic_store(&b->entered, 1);
  pthread_mutex_lock(&b->lock); /* blocks until the destroying thread lets go */
  pthread_mutex_unlock(&b->lock);
}

/* Runs on the destroying thread (kiln logs from the caller): it holds the lock the
 * callback waits for, and lets go once destroy has said what it waits for. */
static void destroy_log(kiln_log_level level, const char *message, void *user) {
  blocked_cb *b = user;
  if (level != KILN_LOG_ERROR || !strstr(message, "completion callback"))
    return;
  if (!atomic_exchange(&b->reported, 1))
    snprintf(b->line, sizeof b->line, "%s", message);
  if (!atomic_exchange(&b->unlocked, 1))
    pthread_mutex_unlock(&b->lock);
}

static void destroy_reports_a_blocked_callback(void **state) {
  kt_env *env = *state;
  blocked_cb *b = calloc(1, sizeof *b);
  assert_non_null(b);
  pthread_mutex_init(&b->lock, NULL);
  pthread_mutex_lock(&b->lock);
  KT_OK(kiln_stream_add_callback(env->stream, blocking_callback, b));
  assert_true(kt_wait_atomic_at_least(&b->entered, 1, 30.0));
  kiln_set_log_callback(destroy_log, KILN_LOG_ERROR, b);
  KT_OK(kiln_context_destroy(env->ctx)); /* would wait forever, silently, before */
  env->ctx = NULL;
  env->stream = NULL;
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
  if (!atomic_load(&b->unlocked))
    pthread_mutex_unlock(&b->lock);
  assert_int_equal(atomic_load(&b->reported), 1);
  assert_non_null(strstr(b->line, "kiln_context_destroy has waited"));
  char user[64];
  snprintf(user, sizeof user, "user data %p", (void *)b);
  if (!strstr(b->line, user))
    fail_msg("the report does not name the callback's data: %s", b->line);
  pthread_mutex_destroy(&b->lock);
  free(b);
}

/* ---- the context table ---- */

/* The table's last slot taken, the next create is LIMIT_EXCEEDED with the limit and what
 * to do, writes no handle and leaks nothing; after one destroy a create succeeds again. */
static void context_table_full_says_what_to_do(void **state) {
  (void)state;
  enum { MOST = 1024 }; /* KILN__MAX_CONTEXTS (docs/architecture.md) */
  static kiln_context ctx[MOST];
  size_t made = 0;
  kiln_status st = KILN_SUCCESS;
  while (made < MOST &&
         (st = kiln_context_create(kt_cpu_device(), NULL, &ctx[made])) == KILN_SUCCESS)
    made++;
  assert_int_equal(made, MOST);
  kiln_context extra = (kiln_context)(uintptr_t)1;
  KT_EXPECT_MSG(kiln_context_create(kt_cpu_device(), NULL, &extra), KILN_ERROR_LIMIT_EXCEEDED,
                "1024 contexts exist already");
  KT_MSG_HAS("destroy one first");
  assert_null(extra);
  KT_OK(kiln_context_destroy(ctx[MOST - 1]));
  KT_OK(kiln_context_create(kt_cpu_device(), NULL, &ctx[MOST - 1]));
  for (size_t i = 0; i < MOST; i++)
    KT_OK(kiln_context_destroy(ctx[i]));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(context_table_full_says_what_to_do),
      cmocka_unit_test_setup_teardown(wait_all_names_the_duplicate, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(token_of_destroyed_stream_says_so, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(synchronize_names_the_failed_operation, mock_setup,
                                      mock_teardown),
      cmocka_unit_test_setup_teardown(wrong_handle_type_reads_well, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(destroy_from_own_callback_is_refused, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(destroy_reports_a_blocked_callback, kt_setup, kt_teardown),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
