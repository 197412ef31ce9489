/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda-fake */
/* Futures (include/kiln/future.h, docs/async.md): from tokens and events; wait, wait
 * with a timeout, query, drop; continuations on the callback thread that call kiln; a
 * chain whose third link fails passes the failure and its detail (the failing link's
 * file:line) on; when_all (first failure in array order) and when_any (one failure and
 * one success: success); a wait on the callback thread for a future that needs that
 * thread is refused with KILN_ERROR_INVALID_STATE; a future of a destroyed context and
 * every bad input get clear errors; host allocations failing at each step leak
 * nothing. Real op failures: test_futures_mock.c. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "kiln_test.h"

#define HANG_TIMEOUT_S 30.0
#define THIS_FILE "test_futures.c"

static void expect_names_line(int line) {
  char where[64];
  snprintf(where, sizeof where, THIS_FILE ":%d", line);
  if (!strstr(kiln_last_error()->message, where))
    fail_msg("expected the message to name %s: %s", where, kiln_last_error()->message);
}

/* A future of an async write of 64 bytes (its source static: it outlives the op). */
static kiln_future write_future(kt_env *env, kiln_buffer b) {
  static uint32_t src[16];
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof src, src, &t));
  kiln_future f;
  KT_OK(kiln_future_from_pending(&t, &f));
  assert_int_equal(t.id, 0); /* consumed */
  assert_true(f.id != 0);
  return f;
}

static void from_pending_wait_once(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kiln_future f = write_future(env, b);
  kiln_future copy = f;
  KT_OK(kiln_future_wait(&f));
  assert_int_equal(f.id, 0);
  int line = __LINE__ + 1;
  KT_EXPECT_MSG(kiln_future_wait(&copy), KILN_ERROR_INVALID_HANDLE, "already waited");
  assert_int_equal(kiln_last_error()->line, line);            /* the second wait's line */
  KT_EXPECT(kiln_future_wait(&f), KILN_ERROR_INVALID_HANDLE); /* empty */
  KT_EXPECT(kiln_future_query(&copy), KILN_ERROR_INVALID_HANDLE);
  /* drop */
  kiln_future d = write_future(env, b);
  KT_OK(kiln_future_drop(&d));
  KT_EXPECT(kiln_future_drop(&d), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_stream_synchronize(env->stream)); /* covers the dropped one */
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- continuations ---- */

typedef struct link {
  atomic_int runs;
  kiln_status seen;     /* the status it was called with */
  kiln_status returns;  /* what it returns */
  struct link *prev;    /* must have run before */
  atomic_int order_bad; /* ran before prev */
  /* re-entry: a round trip through kiln */
  kiln_stream stream;
  kiln_buffer buf;
  atomic_int kiln_failures;
} link;

static void link_init(link *l, link *prev, kiln_status returns, kiln_stream s, kiln_buffer b) {
  memset(l, 0, sizeof *l);
  atomic_init(&l->runs, 0);
  atomic_init(&l->order_bad, 0);
  atomic_init(&l->kiln_failures, 0);
  l->prev = prev;
  l->returns = returns;
  l->stream = s;
  l->buf = b;
}

static kiln_status link_fn(kiln_status status, void *user) {
  link *l = user;
  l->seen = status;
  if (l->prev && atomic_load(&l->prev->runs) != 1)
    atomic_store(&l->order_bad, 1);
  if (l->buf) { /* a continuation may call kiln, waits included */
    uint32_t v[4] = {1, 2, 3, 4}, out[4] = {0};
    kiln_pending t;
    if (kiln_buffer_write_async(l->stream, l->buf, 0, sizeof v, v, &t) != KILN_SUCCESS ||
        kiln_wait(&t) != KILN_SUCCESS || kiln_buffer_read(l->buf, 0, sizeof out, out) != 0 ||
        out[3] != 4)
      atomic_fetch_add(&l->kiln_failures, 1);
  }
  atomic_fetch_add(&l->runs, 1);
  return l->returns;
}

static void chain_third_link_fails(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64), scratch = kt_buffer(env->ctx, 64);
  kiln_stream other;
  KT_OK(kiln_stream_create(env->ctx, NULL, &other));
  link l1, l2, l3, l4;
  link_init(&l1, NULL, KILN_SUCCESS, other, scratch);
  link_init(&l2, &l1, KILN_SUCCESS, other, scratch);
  link_init(&l3, &l2, KILN_ERROR_LIMIT_EXCEEDED, NULL, NULL);
  link_init(&l4, &l3, KILN_SUCCESS, NULL, NULL);
  kiln_future f = write_future(env, b), f1, f2, f3, f4;
  KT_OK(kiln_future_then(&f, link_fn, &l1, &f1));
  assert_int_equal(f.id, 0);
  KT_OK(kiln_future_then(&f1, link_fn, &l2, &f2));
  int line = __LINE__ + 1;
  KT_OK(kiln_future_then(&f2, link_fn, &l3, &f3));
  KT_OK(kiln_future_then(&f3, link_fn, &l4, &f4));
  KT_EXPECT(kiln_future_wait(&f4), KILN_ERROR_LIMIT_EXCEEDED);
  expect_names_line(line); /* the first failure's detail, through the fourth link */
  KT_MSG_HAS("continuation");
  for (link *l = &l1; l; l = l == &l1 ? &l2 : l == &l2 ? &l3 : l == &l3 ? &l4 : NULL) {
    assert_int_equal(atomic_load(&l->runs), 1);
    assert_int_equal(atomic_load(&l->order_bad), 0);
    assert_int_equal(atomic_load(&l->kiln_failures), 0);
  }
  assert_int_equal(l1.seen, KILN_SUCCESS);
  assert_int_equal(l3.seen, KILN_SUCCESS);
  assert_int_equal(l4.seen, KILN_ERROR_LIMIT_EXCEEDED); /* told, for cleanup */
  KT_OK(kiln_stream_destroy(other));
  KT_OK(kiln_buffer_destroy(scratch));
  KT_OK(kiln_buffer_destroy(b));
}

static void when_all_and_when_any_with_a_failure(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kt_gate *g = kt_env_gate(env);
  kiln_stream held;
  KT_OK(kiln_stream_create(env->ctx, NULL, &held));
  for (int any = 0; any < 2; any++) {
    link bad;
    link_init(&bad, NULL, KILN_ERROR_BACKEND, NULL, NULL);
    kiln_future in[3], failing = write_future(env, b), r;
    int fail_line = __LINE__ + 1;
    KT_OK(kiln_future_then(&failing, link_fn, &bad, &in[0]));
    in[1] = write_future(env, b);
    if (any) { /* one failure, one success, one still held: the success wins */
      kiln_pending hold;
      KT_OK(kt_hold_async(env->ctx, held, g, &hold));
      KT_OK(kiln_future_from_pending(&hold, &in[2]));
      KT_OK(kiln_future_when_any(in, 3, &r));
      for (int i = 0; i < 3; i++)
        assert_int_equal(in[i].id, 0); /* consumed */
      KT_OK(kiln_future_wait(&r));
      kt_gate_open(g);
      KT_OK(kiln_stream_synchronize(held));
    } else { /* the first failure in array order, with its detail */
      in[2] = write_future(env, b);
      KT_OK(kiln_future_when_all(in, 3, &r));
      KT_EXPECT(kiln_future_wait(&r), KILN_ERROR_BACKEND);
      expect_names_line(fail_line);
    }
    /* when_any may finish before the failing link has run: `bad` lives until it has */
    if (!kt_wait_atomic_at_least(&bad.runs, 1, HANG_TIMEOUT_S))
      fail_msg("the failing continuation did not run");
    KT_OK(kiln_context_synchronize(env->ctx));
    assert_int_equal(atomic_load(&bad.runs), 1);
  }
  /* when_any whose inputs all fail: the first failure */
  link bad1, bad2;
  link_init(&bad1, NULL, KILN_ERROR_OUT_OF_DEVICE_MEMORY, NULL, NULL);
  link_init(&bad2, NULL, KILN_ERROR_OUT_OF_DEVICE_MEMORY, NULL, NULL);
  kiln_future a = write_future(env, b), c = write_future(env, b), in[2], r;
  KT_OK(kiln_future_then(&a, link_fn, &bad1, &in[0]));
  KT_OK(kiln_future_then(&c, link_fn, &bad2, &in[1]));
  KT_OK(kiln_future_when_any(in, 2, &r));
  KT_EXPECT(kiln_future_wait(&r), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  KT_OK(kiln_stream_destroy(held));
  KT_OK(kiln_buffer_destroy(b));
}

static void chaining_in_place(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  link l1, l2;
  link_init(&l1, NULL, KILN_SUCCESS, NULL, NULL);
  link_init(&l2, &l1, KILN_SUCCESS, NULL, NULL);
  kiln_future f = write_future(env, b);
  uint64_t first = f.id;
  KT_OK(kiln_future_then(&f, link_fn, &l1, &f)); /* f now names the continuation */
  assert_true(f.id != 0 && f.id != first);
  KT_OK(kiln_future_then(&f, link_fn, &l2, &f));
  kiln_future in[2] = {f, write_future(env, b)};
  KT_OK(kiln_future_when_all(in, 2, &in[0])); /* the result into the array */
  assert_true(in[0].id != 0);
  assert_int_equal(in[1].id, 0);
  KT_OK(kiln_future_wait(&in[0]));
  assert_int_equal(atomic_load(&l2.runs), 1);
  assert_int_equal(atomic_load(&l2.order_bad), 0);
  /* a refused in-place call keeps the future */
  kiln_future g = write_future(env, b);
  KT_EXPECT(kiln_future_then(&g, NULL, NULL, &g), KILN_ERROR_INVALID_ARGUMENT);
  assert_true(g.id != 0);
  KT_OK(kiln_future_wait(&g));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- waits on the callback thread ---- */

typedef struct nested {
  kiln_future target; /* a then-future not yet run: needs the callback thread */
  kiln_future plain;  /* a future of an op: does not */
  kiln_status target_status, plain_status;
  char message[512];
  atomic_int done;
} nested;

static kiln_status waits_inside(kiln_status status, void *user) {
  (void)status;
  nested *n = user;
  n->target_status = kiln_future_wait(&n->target); /* refused, target kept */
  snprintf(n->message, sizeof n->message, "%s", kiln_last_error()->message);
  n->plain_status = kiln_future_wait(&n->plain); /* an op: fine */
  atomic_store(&n->done, 1);
  return KILN_SUCCESS;
}

static kiln_status noop_link(kiln_status status, void *user) {
  (void)user;
  return status;
}

static void wait_on_callback_thread_needing_it_is_refused(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kt_gate *g = kt_env_gate(env);
  kiln_stream held;
  KT_OK(kiln_stream_create(env->ctx, NULL, &held));
  kiln_pending hold;
  KT_OK(kt_hold_async(env->ctx, held, g, &hold));
  nested n;
  memset(&n, 0, sizeof n);
  atomic_init(&n.done, 0);
  kiln_future gated, outer = write_future(env, b), next;
  KT_OK(kiln_future_from_pending(&hold, &gated));
  KT_OK(kiln_future_then(&gated, noop_link, NULL, &n.target)); /* runs after the gate */
  n.plain = write_future(env, b);
  KT_OK(kiln_future_then(&outer, waits_inside, &n, &next));
  KT_OK(kiln_future_wait(&next)); /* from the test thread: fine */
  assert_int_equal(atomic_load(&n.done), 1);
  assert_int_equal(n.target_status, KILN_ERROR_INVALID_STATE);
  if (!strstr(n.message, "callback thread"))
    fail_msg("expected the refusal to explain the callback thread: %s", n.message);
  assert_int_equal(n.plain_status, KILN_SUCCESS);
  assert_true(n.target.id != 0); /* the refused wait kept it */
  kt_gate_open(g);
  KT_OK(kiln_future_wait(&n.target));
  KT_OK(kiln_stream_destroy(held));
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- events, timeouts, contexts ---- */

static void from_event_and_timeout(void **state) {
  kt_env *env = *state;
  kiln_event ev;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  kiln_future never;
  KT_OK(kiln_future_from_event(ev, &never)); /* never recorded: complete */
  KT_OK(kiln_future_query(&never));
  KT_OK(kiln_future_wait(&never));
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  KT_OK(kiln_event_record(ev, env->stream));
  kiln_future f;
  KT_OK(kiln_future_from_event(ev, &f));
  KT_EXPECT(kiln_future_query(&f), KILN_NOT_READY);
  KT_EXPECT(kiln_future_wait_timeout(&f, 1000000), KILN_TIMEOUT);
  assert_true(f.id != 0); /* kept */
  kt_gate_open(g);
  KT_OK(kiln_future_wait_timeout(&f, (uint64_t)(HANG_TIMEOUT_S * 1e9)));
  KT_OK(kiln_wait(&hold));
  KT_OK(kiln_event_destroy(ev));
  kiln_future dead;
  KT_EXPECT_MSG(kiln_future_from_event(ev, &dead), KILN_ERROR_INVALID_HANDLE, "destroyed");
  assert_int_equal(dead.id, 0);
}

static void future_of_destroyed_context(void **state) {
  kt_env *env = *state;
  kiln_context ctx;
  KT_OK(kiln_context_create(env->device, NULL, &ctx));
  kiln_stream s;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer b = kt_buffer(ctx, 64);
  static uint32_t src[16];
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(s, b, 0, sizeof src, src, &t));
  kiln_future f;
  int line = __LINE__ + 1;
  KT_OK(kiln_future_from_pending(&t, &f));
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_ERROR);
  KT_OK(kiln_context_destroy(ctx));
  kt_log_capture_stop(&cap);
  char where[64];
  snprintf(where, sizeof where, THIS_FILE ":%d", line);
  if (!kt_log_capture_has(&cap, where))
    fail_msg("expected the unwaited future reported naming %s:\n%s", where, cap.text);
  KT_EXPECT_MSG(kiln_future_wait(&f), KILN_ERROR_INVALID_HANDLE, "context that was destroyed");
  KT_EXPECT_MSG(kiln_future_query(&f), KILN_ERROR_INVALID_HANDLE, "context that was destroyed");
}

/* ---- bad input ---- */

static void future_bad_input(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kiln_future f = write_future(env, b), out, empty = KILN_FUTURE_INIT;
  KT_EXPECT(kiln_future_from_pending(NULL, &out), KILN_ERROR_INVALID_ARGUMENT);
  kiln_pending none = KILN_PENDING_INIT;
  KT_EXPECT_MSG(kiln_future_from_pending(&none, &out), KILN_ERROR_INVALID_HANDLE, "empty");
  KT_EXPECT(kiln_future_from_pending(&none, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_future_from_event(NULL, &out), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_future_wait(NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT_MSG(kiln_future_wait(&empty), KILN_ERROR_INVALID_HANDLE, "empty");
  KT_EXPECT(kiln_future_query(NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT_MSG(kiln_future_then(&f, NULL, NULL, &out), KILN_ERROR_INVALID_ARGUMENT, "fn");
  KT_EXPECT(kiln_future_then(&f, noop_link, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  assert_true(f.id != 0); /* refused calls keep it */
  KT_EXPECT(kiln_future_when_all(NULL, 1, &out), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT_MSG(kiln_future_when_all(&f, 0, &out), KILN_ERROR_INVALID_ARGUMENT, "count is 0");
  KT_EXPECT_MSG(kiln_future_when_any(&f, 0, &out), KILN_ERROR_INVALID_ARGUMENT, "count is 0");
  KT_EXPECT(kiln_future_when_any(&f, 1, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_future two[2] = {f, f};
  KT_EXPECT_MSG(kiln_future_when_all(two, 2, &out), KILN_ERROR_INVALID_HANDLE,
                "futures[1] duplicates futures[0]");
  kiln_future with_empty[2] = {f, KILN_FUTURE_INIT};
  KT_EXPECT_MSG(kiln_future_when_any(with_empty, 2, &out), KILN_ERROR_INVALID_HANDLE, "futures[1]");
  /* another context's future */
  kiln_context ctx2;
  KT_OK(kiln_context_create(env->device, NULL, &ctx2));
  kiln_event ev2;
  KT_OK(kiln_event_create(ctx2, NULL, &ev2));
  kiln_future g2;
  KT_OK(kiln_future_from_event(ev2, &g2));
  kiln_future mixed[2] = {f, g2};
  KT_EXPECT_MSG(kiln_future_when_all(mixed, 2, &out), KILN_ERROR_DEVICE_MISMATCH,
                "another context");
  KT_OK(kiln_future_wait(&g2));
  KT_OK(kiln_event_destroy(ev2));
  KT_OK(kiln_context_destroy(ctx2));
  KT_OK(kiln_future_wait(&f)); /* every refusal left it usable */
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- host allocations failing at each step ---- */

static void count_cb(kiln_status status, void *user) {
  (void)status;
  atomic_fetch_add((atomic_int *)user, 1);
}

static atomic_int sweep_callbacks;
static int sweep_registered;

static kiln_status sweep_scenario(kt_env *env, kiln_buffer b) {
  static uint32_t src[16];
  kiln_pending t1, t2, t0;
  kiln_status st = kiln_buffer_write_async(env->stream, b, 0, 64, src, &t0);
  if (st != KILN_SUCCESS)
    return st;
  st = kiln_pending_add_callback(&t0, count_cb, &sweep_callbacks);
  if (st != KILN_SUCCESS) {
    assert_true(t0.id != 0); /* kept */
    KT_OK(kiln_wait(&t0));
    return st;
  }
  sweep_registered++;
  st = kiln_buffer_write_async(env->stream, b, 0, 64, src, &t1);
  if (st != KILN_SUCCESS)
    return st;
  st = kiln_buffer_write_async(env->stream, b, 0, 64, src, &t2);
  if (st != KILN_SUCCESS) {
    KT_OK(kiln_wait(&t1));
    return st;
  }
  kiln_future f1, f2, n1, all;
  st = kiln_future_from_pending(&t1, &f1);
  if (st != KILN_SUCCESS) {
    assert_true(t1.id != 0); /* kept */
    KT_OK(kiln_wait(&t1));
    KT_OK(kiln_wait(&t2));
    return st;
  }
  st = kiln_future_from_pending(&t2, &f2);
  if (st != KILN_SUCCESS) {
    KT_OK(kiln_wait(&t2));
    KT_OK(kiln_future_wait(&f1));
    return st;
  }
  st = kiln_future_then(&f1, noop_link, NULL, &n1);
  if (st != KILN_SUCCESS) {
    assert_true(f1.id != 0);
    KT_OK(kiln_future_wait(&f1));
    KT_OK(kiln_future_wait(&f2));
    return st;
  }
  kiln_future in[2] = {n1, f2};
  st = kiln_future_when_all(in, 2, &all);
  if (st != KILN_SUCCESS) {
    KT_OK(kiln_future_wait(&in[0]));
    KT_OK(kiln_future_wait(&in[1]));
    return st;
  }
  return kiln_future_wait(&all);
}

static void futures_survive_allocation_failures(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  KT_OK(sweep_scenario(env, b)); /* warm: the callback thread and slabs exist */
  kt_alloc_fail_none();
  KT_OK(sweep_scenario(env, b));
  size_t calls = kt_alloc_calls();
  assert_true(calls >= 2); /* the callback's item, the combination's inputs */
  size_t failed = 0;
  for (size_t n = 1; n <= calls + 2; n++) {
    kt_alloc_fail_nth(n);
    kiln_status st = sweep_scenario(env, b);
    kt_alloc_fail_none();
    if (st != KILN_SUCCESS) {
      assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
      failed++;
    }
    KT_OK(kiln_stream_synchronize(env->stream));
  }
  assert_true(failed >= 2);
  KT_OK(kiln_context_synchronize(env->ctx));                         /* every callback has run */
  assert_int_equal(atomic_load(&sweep_callbacks), sweep_registered); /* each ran once */
  KT_OK(kiln_buffer_destroy(b));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(from_pending_wait_once, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(chain_third_link_fails, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(when_all_and_when_any_with_a_failure, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(chaining_in_place, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(wait_on_callback_thread_needing_it_is_refused, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(from_event_and_timeout, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(future_of_destroyed_context, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(future_bad_input, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(futures_survive_allocation_failures, kt_setup, kt_teardown),
};
KT_MAIN(tests)
