/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda cuda-fake */
/* Tokens never forgotten, never waited twice (design.md "Buffers, tokens and host
 * access"; seed 000's review): a token neither waited nor released is reported through
 * the log callback when its stream or context is destroyed, naming the _async call's
 * file:line, and counted in kiln_context_stats.tokens_forgotten; waited, released and
 * empty tokens are never reported; a second wait of a token is
 * KILN_ERROR_INVALID_HANDLE whose kiln_last_error() names the second wait's file:line.
 * (The third case of the review, reading a non-blocking read's destination early, is
 * the guard.read_early test of the ASan tree: tests/guard/guard_helper.c.) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define THIS_FILE "test_tokens.c"

/* "test_tokens.c:<line>" */
static void site(char *out, size_t n, int line) {
  snprintf(out, n, THIS_FILE ":%d", line);
}

static void expect_reported(kt_log_capture *cap, int line) {
  char where[64];
  site(where, sizeof where, line);
  if (!kt_log_capture_has(cap, where))
    fail_msg("expected a forgotten-token warning naming %s; got %d warning(s):\n%s", where,
             cap->warn_lines, cap->text);
}

static uint64_t forgotten_count(kiln_context ctx) {
  kiln_context_stats st = KILN_CONTEXT_STATS_INIT;
  KT_OK(kiln_context_get_stats(ctx, &st));
  return st.tokens_forgotten;
}

/* One forgotten token of every _async kind; their lines go to lines[0..4]. */
static void queue_forgotten(kiln_context ctx, kiln_stream s, kiln_buffer a, kiln_buffer b,
                            uint32_t *host, int lines[5]) {
  static const uint32_t pattern = 0x5a5a5a5au;
  static const uint64_t off = 0;
  static const uint32_t add = 1;
  kiln_kernel k = kt_add_kernel(ctx);
  kiln_arg args[3];
  kt_add_args(args, a, &off, &add);
  kiln_range r = kiln_range_1d(16);
  kiln_pending t[5];
  lines[0] = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(s, a, 0, 64, host, &t[0]));
  lines[1] = __LINE__ + 1;
  KT_OK(kiln_buffer_fill_async(s, b, 0, 64, &pattern, 4, &t[1]));
  lines[2] = __LINE__ + 1;
  KT_OK(kiln_launch_async(s, k, &r, args, 3, &t[2]));
  lines[3] = __LINE__ + 1;
  KT_OK(kiln_buffer_copy_async(s, b, 0, a, 0, 64, &t[3]));
  lines[4] = __LINE__ + 1;
  KT_OK(kiln_buffer_read_async(s, b, 0, 64, host + 16, &t[4]));
  KT_OK(kiln_kernel_destroy(k)); /* queued launches keep working */
  /* the tokens go out of scope here: forgotten */
}

static void forgotten_tokens_reported_at_stream_destroy(void **state) {
  kt_env *env = *state;
  static uint32_t host[32];
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  kiln_buffer a = kt_buffer(env->ctx, 64), b = kt_buffer(env->ctx, 64);
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  int lines[5];
  queue_forgotten(env->ctx, s, a, b, host, lines);
  /* a waited and a released token on the same stream are not reported */
  kiln_pending waited, released;
  KT_OK(kiln_buffer_write_async(s, a, 0, 4, host, &waited));
  KT_OK(kiln_wait(&waited));
  static const uint32_t pat = 9; /* not `host`: its ranges are guarded while in flight */
  KT_OK(kiln_buffer_fill_async(s, b, 0, 4, &pat, 4, &released));
  KT_OK(kiln_pending_release(&released));
  assert_int_equal(forgotten_count(env->ctx), 0); /* reported at destroy, not before */
  KT_OK(kiln_stream_destroy(s));
  kt_log_capture_stop(&cap);
  for (int i = 0; i < 5; i++)
    expect_reported(&cap, lines[i]);
  if (cap.warn_lines != 5)
    fail_msg("expected exactly 5 warnings (one per forgotten token), got %d:\n%s", cap.warn_lines,
             cap.text);
  assert_int_equal(forgotten_count(env->ctx), 5);
  /* the report drops the tokens: a later context destroy reports nothing more */
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_OK(kiln_buffer_destroy(a));
  KT_OK(kiln_buffer_destroy(b));
  kt_log_capture_stop(&cap);
  assert_int_equal(cap.warn_lines, 0);
}

static void forgotten_tokens_reported_at_context_destroy(void **state) {
  kt_env *env = *state;
  static uint32_t host[32];
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &ctx));
  kiln_stream s1 = NULL, s2 = NULL;
  KT_OK(kiln_stream_create(ctx, NULL, &s1));
  KT_OK(kiln_stream_create(ctx, NULL, &s2));
  kiln_buffer a = kt_buffer(ctx, 64), b = kt_buffer(ctx, 64);
  int lines[5];
  queue_forgotten(ctx, s1, a, b, host, lines);
  kiln_pending t;
  int line2 = __LINE__ + 1;
  KT_OK(kiln_buffer_read_async(s2, a, 0, 8, host + 24, &t)); /* another stream's */
  KT_OK(kiln_context_synchronize(ctx)); /* a wait, but not of the tokens: still forgotten */
  assert_int_equal(forgotten_count(ctx), 0);
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_OK(kiln_context_destroy(ctx)); /* streams, buffers destroyed with it */
  kt_log_capture_stop(&cap);
  for (int i = 0; i < 5; i++)
    expect_reported(&cap, lines[i]);
  expect_reported(&cap, line2);
  if (cap.warn_lines != 6)
    fail_msg("expected exactly 6 warnings, got %d:\n%s", cap.warn_lines, cap.text);
}

/* The stats count a token of a context destroyed later too: read them on a context
 * whose stream was destroyed (the context-destroy count is unobservable afterwards). */
static void forgotten_counted_per_context(void **state) {
  kt_env *env = *state;
  static uint32_t host[4];
  kiln_context other = NULL;
  KT_OK(kiln_context_create(env->device, NULL, &other));
  kiln_stream s = NULL, so = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  KT_OK(kiln_stream_create(other, NULL, &so));
  kiln_buffer b = kt_buffer(env->ctx, 16), bo = kt_buffer(other, 16);
  kiln_pending t1, t2, t3;
  KT_OK(kiln_buffer_write_async(s, b, 0, 16, host, &t1));
  static const uint32_t pat = 3; /* not `host`: guarded while the write is in flight */
  KT_OK(kiln_buffer_fill_async(s, b, 0, 16, &pat, 4, &t2));
  KT_OK(kiln_buffer_fill_async(so, bo, 0, 16, &pat, 4, &t3));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  KT_OK(kiln_stream_destroy(s));
  KT_OK(kiln_stream_destroy(so));
  kt_log_capture_stop(&cap);
  assert_int_equal(cap.warn_lines, 3);
  assert_int_equal(forgotten_count(env->ctx), 2);
  assert_int_equal(forgotten_count(other), 1);
  KT_OK(kiln_context_destroy(other));
}

static void no_report_for_waited_released_or_failed_tokens(void **state) {
  kt_env *env = *state;
  static uint32_t host[16];
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  kiln_pending t[4];
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, host, &t[0]));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, 16, host, &t[1]));
  static const uint64_t pat = 5; /* not `host`: guarded while the read is in flight */
  KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 64, &pat, 8, &t[2]));
  KT_OK(kiln_buffer_copy_async(env->stream, b, 0, b, 32, 32, &t[3]));
  KT_OK(kiln_wait(&t[0]));
  KT_OK(kiln_pending_release(&t[1]));
  KT_OK(kiln_wait_all(&t[2], 2));
  kiln_pending bad;
  KT_EXPECT(kiln_buffer_read_async(env->stream, b, 60, 16, host, &bad), KILN_ERROR_OUT_OF_RANGE);
  assert_true(bad.id == 0); /* a failed call writes an empty token: nothing to forget */
  kiln_pending timed;
  KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 4, &pat, 4, &timed));
  KT_OK(kiln_wait_timeout(&timed, UINT64_C(10000000000)));
  KT_OK(kiln_stream_synchronize(env->stream));
  KT_OK(kiln_stream_destroy(env->stream));
  env->stream = NULL;
  kt_log_capture_stop(&cap);
  if (cap.warn_lines != 0)
    fail_msg("unexpected warning(s):\n%s", cap.text);
  assert_int_equal(forgotten_count(env->ctx), 0);
  KT_OK(kiln_buffer_destroy(b));
}

/* Seed 000's review: a token discarded, a token waited twice. Each caught, naming the
 * line. */
static void seed000_review_discard_and_double_wait(void **state) {
  kt_env *env = *state;
  static uint32_t host[16];
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  kiln_buffer b = kt_buffer(env->ctx, 64);

  /* (b) a token discarded: reported at stream destroy, naming the _async call */
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_WARN);
  {
    kiln_pending discarded;
    int discard_line = __LINE__ + 1;
    KT_OK(kiln_buffer_write_async(s, b, 0, 64, host, &discarded));
    KT_OK(kiln_stream_destroy(s));
    kt_log_capture_stop(&cap);
    expect_reported(&cap, discard_line);
    assert_int_equal(cap.warn_lines, 1);
    /* and it is dead: waiting the discarded token now is refused */
    KT_EXPECT(kiln_wait(&discarded), KILN_ERROR_INVALID_HANDLE);
  }

  /* (c) a token waited twice: the second wait is refused, naming its own line */
  kiln_pending t, copy;
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, 64, host, &t));
  copy = t;
  KT_OK(kiln_wait(&t));
  assert_true(t.id == 0); /* consumed */
  int second_line = __LINE__ + 1;
  kiln_status st = kiln_wait(&t);
  KT_EXPECT(st, KILN_ERROR_INVALID_HANDLE);
  const kiln_error_info *e = kiln_last_error();
  assert_int_equal(e->line, second_line);
  if (!strstr(e->file, THIS_FILE))
    fail_msg("kiln_last_error()->file is '%s'", e->file);
  assert_string_equal(e->function, "kiln_wait_at");
  /* a copy of a waited token is the same token: refused too, at its own line */
  int copy_line = __LINE__ + 1;
  st = kiln_wait(&copy);
  KT_EXPECT(st, KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(kiln_last_error()->line, copy_line);
  KT_MSG_HAS("already waited");
  /* released then waited: refused the same way */
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, 64, host, &t));
  copy = t;
  KT_OK(kiln_pending_release(&t));
  int released_line = __LINE__ + 1;
  st = kiln_wait(&copy);
  KT_EXPECT(st, KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(kiln_last_error()->line, released_line);
  KT_OK(kiln_stream_synchronize(env->stream));
  /* wait_all with an already-waited token: refused up front, consuming nothing */
  kiln_pending pair[2];
  static const uint32_t pat = 1;
  KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 64, &pat, 4, &pair[0]));
  pair[1] = copy; /* stale */
  int all_line = __LINE__ + 1;
  st = kiln_wait_all(pair, 2);
  KT_EXPECT(st, KILN_ERROR_INVALID_HANDLE);
  assert_int_equal(kiln_last_error()->line, all_line);
  assert_true(pair[0].id != 0);
  KT_OK(kiln_wait(&pair[0]));
  KT_OK(kiln_buffer_destroy(b));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(forgotten_tokens_reported_at_stream_destroy, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(forgotten_tokens_reported_at_context_destroy, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(forgotten_counted_per_context, kt_setup, kt_teardown),
      cmocka_unit_test_setup_teardown(no_report_for_waited_released_or_failed_tokens, kt_setup,
                                      kt_teardown),
      cmocka_unit_test_setup_teardown(seed000_review_discard_and_double_wait, kt_setup,
                                      kt_teardown),
  };
  if (!kt_backend_available(kt_backend())) { /* KILN_TEST_BACKEND, set by ctest */
    fprintf(stderr, "SKIP: the %s backend is not available\n", kiln_backend_name(kt_backend()));
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
