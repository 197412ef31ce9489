/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* Futures and callbacks over operations that really fail (the mock backend's injected
 * failures, include/kiln/mock.h): a chain of three ops whose third fails passes the
 * failure through two continuations, with the op's status and file:line; when_any
 * with one failed op and one successful op succeeds, when_all fails naming the op; a
 * token's callback gets its op's failure; and the stream's synchronize does not
 * report again a failure a future's wait or a callback has reported; and with the Nth
 * backend call failing, for every N of a scenario with a descriptor, callbacks and a
 * future chain, everything completes, nothing leaks and some wait, callback or
 * synchronize sees the failure. */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define THIS_FILE "test_futures_mock.c"

typedef struct menv {
  kiln_context ctx;
  kiln_stream s;
  kiln_buffer x, y;
} menv;

static int msetup(void **state) {
  static menv e;
  memset(&e, 0, sizeof e);
  *state = &e;
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kt_alloc_install());
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &e.ctx));
  KT_OK(kiln_stream_create(e.ctx, NULL, &e.s));
  e.x = kt_buffer(e.ctx, 256);
  e.y = kt_buffer(e.ctx, 256);
  return 0;
}

static int mteardown(void **state) {
  menv *e = *state;
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_context_destroy(e->ctx));
  KT_OK(kt_alloc_uninstall());
  return kt_alloc_check_clean("futures mock teardown") ? 0 : -1;
}

/* Fail the op queued `n` backend calls from now (each queued op is one call). */
static void fail_nth_op(uint64_t n) {
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.fail_call = n;
  c.fail_status = KILN_ERROR_OUT_OF_DEVICE_MEMORY;
  KT_OK(kiln_mock_configure(&c));
}

static void expect_names_line(int line) {
  char where[64];
  snprintf(where, sizeof where, THIS_FILE ":%d", line);
  if (!strstr(kiln_last_error()->message, where))
    fail_msg("expected the message to name %s: %s", where, kiln_last_error()->message);
}

typedef struct step {
  kiln_status seen;
  atomic_int runs;
} step;

static kiln_status step_fn(kiln_status status, void *user) {
  step *s = user;
  s->seen = status;
  atomic_fetch_add(&s->runs, 1);
  return KILN_SUCCESS;
}

static void chain_whose_third_op_fails(void **state) {
  menv *e = *state;
  static uint32_t h[64];
  kiln_pending t[3];
  fail_nth_op(3);
  KT_OK(kiln_buffer_write_async(e->s, e->x, 0, 64, h, &t[0]));
  KT_OK(kiln_buffer_copy_async(e->s, e->y, 0, e->x, 0, 64, &t[1]));
  int line = __LINE__ + 1;
  KT_OK(kiln_buffer_read_async(e->s, e->y, 0, 64, h + 32, &t[2])); /* fails */
  kiln_future f[3], all, n1, n2;
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_future_from_pending(&t[i], &f[i]));
  KT_OK(kiln_future_when_all(f, 3, &all));
  step s1, s2;
  memset(&s1, 0, sizeof s1);
  memset(&s2, 0, sizeof s2);
  KT_OK(kiln_future_then(&all, step_fn, &s1, &n1));
  KT_OK(kiln_future_then(&n1, step_fn, &s2, &n2));
  KT_EXPECT(kiln_future_wait(&n2), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  expect_names_line(line);
  KT_MSG_HAS("kiln_buffer_read_async");
  assert_int_equal(s1.seen, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_int_equal(s2.seen, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_int_equal(kiln_mock_failures(), 1);
  KT_OK(kiln_stream_synchronize(e->s)); /* the future's wait reported it */
}

static void when_any_one_failed_one_succeeded(void **state) {
  menv *e = *state;
  static uint32_t h[64];
  kiln_pending bad, good;
  fail_nth_op(1);
  int line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(e->s, e->x, 0, 64, h, &bad)); /* fails */
  KT_OK(kiln_buffer_write_async(e->s, e->y, 0, 64, h + 16, &good));
  kiln_future in[2], any;
  KT_OK(kiln_future_from_pending(&bad, &in[0]));
  KT_OK(kiln_future_from_pending(&good, &in[1]));
  KT_OK(kiln_future_when_any(in, 2, &any));
  KT_OK(kiln_future_wait(&any));
  /* the failure was never observed by a future: the stream reports it */
  KT_EXPECT(kiln_stream_synchronize(e->s), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  expect_names_line(line);
  /* when_all over the same shape fails, naming the op */
  fail_nth_op(1);
  line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(e->s, e->x, 0, 64, h, &bad));
  KT_OK(kiln_buffer_write_async(e->s, e->y, 0, 64, h + 16, &good));
  KT_OK(kiln_future_from_pending(&bad, &in[0]));
  KT_OK(kiln_future_from_pending(&good, &in[1]));
  kiln_future all;
  KT_OK(kiln_future_when_all(in, 2, &all));
  KT_EXPECT(kiln_future_wait(&all), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  expect_names_line(line);
  KT_OK(kiln_stream_synchronize(e->s));
}

typedef struct got {
  atomic_int runs;
  kiln_status status;
} got;

static void got_cb(kiln_status status, void *user) {
  got *g = user;
  g->status = status;
  atomic_fetch_add(&g->runs, 1);
}

static void token_callback_gets_the_failure(void **state) {
  menv *e = *state;
  static uint32_t h[64];
  kiln_pending t;
  fail_nth_op(1);
  KT_OK(kiln_buffer_write_async(e->s, e->x, 0, 64, h, &t));
  got g;
  memset(&g, 0, sizeof g);
  KT_OK(kiln_pending_add_callback(&t, got_cb, &g));
  if (!kt_wait_atomic_at_least(&g.runs, 1, 30.0))
    fail_msg("the token's callback did not run");
  KT_OK(kiln_stream_synchronize(e->s)); /* the callback, the token's wait, reported it */
  assert_int_equal(atomic_load(&g.runs), 1);
  assert_int_equal(g.status, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  /* an event callback after a failed op gets the failure too */
  kiln_event ev;
  KT_OK(kiln_event_create(e->ctx, NULL, &ev));
  fail_nth_op(1);
  KT_OK(kiln_buffer_write_async(e->s, e->y, 0, 64, h, KILN_NO_TOKEN));
  KT_OK(kiln_event_record(ev, e->s));
  got g2;
  memset(&g2, 0, sizeof g2);
  KT_OK(kiln_event_add_callback(ev, got_cb, &g2));
  (void)kiln_stream_synchronize(e->s); /* reports the unwaited failure */
  KT_OK(kiln_context_synchronize(e->ctx));
  assert_int_equal(atomic_load(&g2.runs), 1);
  assert_int_equal(g2.status, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  KT_OK(kiln_event_destroy(ev));
}

/* ---- the Nth backend call fails, for every N ---- */

typedef struct sweep_cb {
  atomic_int runs;
  atomic_int failures;
} sweep_cb;

static void sweep_cb_fn(kiln_status status, void *user) {
  sweep_cb *c = user;
  if (status != KILN_SUCCESS)
    atomic_fetch_add(&c->failures, 1);
  atomic_fetch_add(&c->runs, 1);
}

static kiln_status sweep_link(kiln_status status, void *user) {
  sweep_cb_fn(status, user);
  return status;
}

/* Create a stream and a buffer, watch work through a descriptor, callbacks on a token
 * and an event, and a future chain; destroy everything. Returns how many failures it
 * saw (creation, waits, callbacks, synchronize); never hangs. */
static int sweep_scenario(menv *e) {
  static uint32_t h[64];
  int seen = 0;
  kiln_stream s = NULL;
  kiln_buffer x = NULL;
  kiln_event ev = NULL;
  if (kiln_stream_create(e->ctx, NULL, &s) != KILN_SUCCESS)
    return 1;
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 256;
  if (kiln_buffer_create(e->ctx, &d, &x) != KILN_SUCCESS) {
    KT_OK(kiln_stream_destroy(s));
    return 1;
  }
  KT_OK(kiln_event_create(e->ctx, NULL, &ev));
  int fd;
  KT_OK(kiln_stream_fd(s, &fd));
  static sweep_cb cb;
  atomic_store(&cb.runs, 0);
  atomic_store(&cb.failures, 0);
  kiln_pending t1, t2;
  kiln_future f1, f2;
  KT_OK(kiln_buffer_write_async(s, x, 0, 128, h, &t1));
  KT_OK(kiln_future_from_pending(&t1, &f1));
  KT_OK(kiln_future_then(&f1, sweep_link, &cb, &f2));
  KT_OK(kiln_buffer_read_async(s, x, 0, 128, h + 32, &t2));
  KT_OK(kiln_pending_add_callback(&t2, sweep_cb_fn, &cb));
  static const uint32_t pattern = 0x5a5a5a5au; /* not h: the write above still owns it */
  KT_OK(kiln_buffer_fill_async(s, x, 128, 128, &pattern, 4, KILN_NO_TOKEN));
  KT_OK(kiln_event_record(ev, s));
  KT_OK(kiln_event_add_callback(ev, sweep_cb_fn, &cb));
  if (kiln_future_wait(&f2) != KILN_SUCCESS)
    seen++;
  struct pollfd p = {fd, POLLIN, 0};
  assert_int_equal(poll(&p, 1, 30000), 1); /* every failure still completes the stream */
  if (kiln_stream_synchronize(s) != KILN_SUCCESS)
    seen++;
  KT_OK(kiln_context_synchronize(e->ctx)); /* the callbacks have run */
  assert_int_equal(atomic_load(&cb.runs), 3);
  seen += atomic_load(&cb.failures);
  KT_OK(kiln_event_destroy(ev));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_stream_destroy(s));
  return seen;
}

static void every_backend_call_failing_is_seen(void **state) {
  menv *e = *state;
  KT_OK(kiln_mock_configure(NULL));
  assert_int_equal(sweep_scenario(e), 0);
  uint64_t calls = kiln_mock_calls();
  assert_true(calls >= 6); /* a stream, a buffer, four ops */
  uint64_t injected = 0;
  for (uint64_t n = 1; n <= calls; n++) {
    fail_nth_op(n);
    int seen = sweep_scenario(e);
    injected += kiln_mock_failures();
    if (kiln_mock_failures() > 0 && seen == 0)
      fail_msg("backend call %llu failed, but no wait, callback or synchronize saw it",
               (unsigned long long)n);
  }
  assert_int_equal(injected, calls); /* each run failed its call */
  KT_OK(kiln_mock_configure(NULL));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(chain_whose_third_op_fails, msetup, mteardown),
      cmocka_unit_test_setup_teardown(when_any_one_failed_one_succeeded, msetup, mteardown),
      cmocka_unit_test_setup_teardown(token_callback_gets_the_failure, msetup, mteardown),
      cmocka_unit_test_setup_teardown(every_backend_call_failing_is_seen, msetup, mteardown),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
