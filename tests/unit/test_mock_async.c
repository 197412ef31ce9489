/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock unit */
/* kiln-test-env: KILN_MOCK=1 */
/* Asynchronous errors and device loss, driven by the mock backend (include/kiln/mock.h;
 * design.md "Errors", "Handles and generations"; docs/async.md):
 * - an injected failure completes the op's token with the injected status; ops that
 *   read what it wrote (on any stream) complete with KILN_ERROR_DEPENDENCY_FAILED
 *   without running, naming the first failure's file:line, and pass the mark on;
 *   events and callbacks after it report it; the stream stays usable; a successful
 *   write/fill/copy of the whole buffer clears the mark;
 * - a lost device refuses every handle of its generation with KILN_ERROR_DEVICE_LOST
 *   (destroy still succeeds), queued ops complete with it, kiln_device_reset opens
 *   generation + 1, and a failing reset probe leaves the device lost with "restart the
 *   process". Each test ends with the device usable (a later test in the same process
 *   must not inherit a loss).
 * Every test runs under the test allocator: nothing may leak on these paths. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_test.h"

#define THIS_FILE "test_mock_async.c"
#define N 64 /* uint32 per buffer */

typedef struct menv {
  kiln_device dev;
  kiln_context ctx;
  kiln_stream a, b; /* two streams: cross-stream dependents */
  kiln_buffer x, y, z;
  kt_gate gate;
  int gate_used;
} menv;

static kiln_buffer mbuf(kiln_context ctx, const char *label) {
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = N * sizeof(uint32_t);
  d.label = label;
  kiln_buffer buf = NULL;
  KT_OK(kiln_buffer_create(ctx, &d, &buf));
  return buf;
}

static void configure(uint64_t fail_call, kiln_status status) {
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.fail_call = fail_call;
  c.fail_status = status;
  KT_OK(kiln_mock_configure(&c));
}

static int msetup(void **state) {
  menv *e = calloc(1, sizeof *e);
  assert_non_null(e);
  *state = e;
  KT_OK(kiln_mock_configure(NULL));
  e->dev = kt_mock_device();
  KT_OK(kt_alloc_install());
  KT_OK(kiln_context_create(e->dev, NULL, &e->ctx));
  KT_OK(kiln_stream_create(e->ctx, NULL, &e->a));
  KT_OK(kiln_stream_create(e->ctx, NULL, &e->b));
  e->x = mbuf(e->ctx, "x");
  e->y = mbuf(e->ctx, "y");
  e->z = mbuf(e->ctx, "z");
  kt_gate_init(&e->gate);
  return 0;
}

static int mteardown(void **state) {
  menv *e = *state;
  int rc = 0;
  kt_gate_open(&e->gate);
  KT_OK(kiln_mock_configure(NULL));
  if (e->ctx) {
    kiln_status st = kiln_context_destroy(e->ctx);
    if (st != KILN_SUCCESS) {
      print_error("teardown: kiln_context_destroy: %s\n", kiln_status_name(st));
      rc = -1;
    }
  }
  if (kt_alloc_uninstall() != KILN_SUCCESS)
    rc = -1;
  if (!kt_alloc_check_clean("mock teardown"))
    rc = -1;
  free(e);
  return rc;
}

static void fill_host(uint32_t *h, uint32_t base) {
  for (uint32_t i = 0; i < N; i++)
    h[i] = base + i;
}

static void expect_host(const uint32_t *h, uint32_t base) {
  for (uint32_t i = 0; i < N; i++)
    if (h[i] != base + i)
      fail_msg("word %u is 0x%x, expected 0x%x", i, h[i], base + i);
}

/* The last error's message names THIS_FILE:line. */
static void expect_names_line(int line) {
  char where[64];
  snprintf(where, sizeof where, THIS_FILE ":%d", line);
  KT_MSG_HAS(where);
}

/* Put a known value into a buffer with a blocking write (not injected). */
static void put(kiln_buffer buf, uint32_t base) {
  uint32_t h[N];
  fill_host(h, base);
  KT_OK(kiln_buffer_write(buf, 0, sizeof h, h));
}

/* Counts its runs: "mark"(out WRITE): out[i] = 0xC0DE0000 + i; "consume"(in READ, out
 * WRITE): out[i] = in[i] + 1. */
static atomic_int kernel_runs;
static void mark_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  uint32_t *out = args[0];
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    out[i] = 0xC0DE0000u + (uint32_t)i;
  atomic_fetch_add(&kernel_runs, 1);
}
static void consume_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)user;
  const uint32_t *in = args[0];
  uint32_t *out = args[1];
  for (size_t i = r->begin[0]; i < r->end[0]; i++)
    out[i] = in[i] + 1;
  atomic_fetch_add(&kernel_runs, 1);
}
static kiln_kernel make_kernel(kiln_context ctx, int consume) {
  static const kiln_param mark_p[] = {{KILN_PARAM_BUFFER_WRITE, 0}};
  static const kiln_param consume_p[] = {{KILN_PARAM_BUFFER_READ, 0}, {KILN_PARAM_BUFFER_WRITE, 0}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = consume ? "consume" : "mark";
  d.fn = consume ? consume_fn : mark_fn;
  d.params = consume ? consume_p : mark_p;
  d.param_count = consume ? 2 : 1;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(ctx, &d, &k));
  return k;
}

/* "peek"(buf WRITE): copies the buffer's bytes into `peeked` without changing them. */
static uint32_t peeked[N];
static void peek_fn(const kiln_native_range *r, void *const *args, void *user) {
  (void)r;
  (void)user;
  memcpy(peeked, args[0], sizeof peeked);
}
static void peek(menv *e, kiln_buffer buf) {
  static const kiln_param p[] = {{KILN_PARAM_BUFFER_WRITE, 0}};
  kiln_native_kernel_desc d = KILN_NATIVE_KERNEL_DESC_INIT;
  d.name = "peek";
  d.fn = peek_fn;
  d.params = p;
  d.param_count = 1;
  kiln_kernel k = NULL;
  KT_OK(kiln_kernel_create_native(e->ctx, &d, &k));
  kiln_arg arg = kiln_arg_buffer(buf);
  kiln_range r = kiln_range_1d(1);
  memset(peeked, 0, sizeof peeked);
  KT_OK(kiln_launch(e->a, k, &r, &arg, 1));
  KT_OK(kiln_kernel_destroy(k));
}

/* ================================================================ asynchronous errors */

static void injected_failure_completes_token_with_its_status(void **state) {
  menv *e = *state;
  uint32_t h[N];
  fill_host(h, 100);
  configure(1, KILN_ERROR_OUT_OF_DEVICE_MEMORY); /* the next backend call */
  kiln_pending t;
  int line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t)); /* queued fine */
  kiln_status st = kiln_wait(&t);
  KT_EXPECT(st, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  expect_names_line(line);
  assert_int_equal(kiln_mock_failures(), 1);
  assert_true(t.id == 0);
  /* with the default status */
  configure(1, KILN_SUCCESS);
  KT_OK(kiln_buffer_fill_async(e->b, e->y, 0, sizeof h, h, 4, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  /* a blocking call returns the injected status itself */
  configure(1, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  KT_EXPECT(kiln_buffer_write(e->z, 0, sizeof h, h), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  /* a failing create call: out-parameter NULL, injected status */
  configure(1, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  kiln_stream s = (kiln_stream)(uintptr_t)1;
  KT_EXPECT(kiln_stream_create(e->ctx, NULL, &s), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_null(s);
}

static void dependent_read_on_other_stream_fails_naming_first_failure(void **state) {
  menv *e = *state;
  uint32_t h[N], out[N];
  fill_host(h, 200);
  put(e->x, 1);
  configure(1, KILN_ERROR_BACKEND);
  kiln_pending tw, tr;
  int fail_line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &tw));
  for (uint32_t i = 0; i < N; i++)
    out[i] = 0xDEADBEEFu; /* must stay untouched */
  int read_line = __LINE__ + 1;
  KT_OK(kiln_buffer_read_async(e->b, e->x, 0, sizeof out, out, &tr)); /* waits for the write */
  kiln_status st = kiln_wait(&tr);
  KT_EXPECT(st, KILN_ERROR_DEPENDENCY_FAILED);
  expect_names_line(fail_line); /* the first failure */
  expect_names_line(read_line); /* and the op that did not run */
  for (uint32_t i = 0; i < N; i++)
    if (out[i] != 0xDEADBEEFu)
      fail_msg("the dependent read wrote word %u (0x%x)", i, out[i]);
  KT_EXPECT(kiln_wait(&tw), KILN_ERROR_BACKEND);
  expect_names_line(fail_line);
}

/* A blocking call that fails while running (not at validation) fills
 * kiln_last_error() for itself, even when an older error is still there: the read of
 * a failed buffer names the first failure. */
static void blocking_call_failure_fills_last_error(void **state) {
  menv *e = *state;
  uint32_t h[N], out[N];
  fill_host(h, 250);
  configure(1, KILN_ERROR_BACKEND);
  kiln_pending tw;
  int fail_line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &tw));
  KT_EXPECT(kiln_wait(&tw), KILN_ERROR_BACKEND); /* leaves an error behind */
  KT_EXPECT(kiln_buffer_read(e->x, 0, sizeof out, out), KILN_ERROR_DEPENDENCY_FAILED);
  expect_names_line(fail_line);
  assert_string_equal(kiln_last_error()->function, "kiln_buffer_read");
  KT_EXPECT(kiln_buffer_copy(e->y, 0, e->x, 0, sizeof h), KILN_ERROR_DEPENDENCY_FAILED);
  assert_string_equal(kiln_last_error()->function, "kiln_buffer_copy");
  /* and an injected failure of a blocking call, after an older error */
  configure(1, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  KT_EXPECT(kiln_buffer_fill(e->z, 0, sizeof h, h, 4), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  assert_string_equal(kiln_last_error()->function, "kiln_buffer_fill");
}

static void dependents_propagate_the_mark_without_running(void **state) {
  menv *e = *state;
  uint32_t h[N], out[N];
  fill_host(h, 300);
  put(e->y, 7);
  put(e->z, 9);
  kiln_kernel consume = make_kernel(e->ctx, 1);
  atomic_store(&kernel_runs, 0);
  configure(1, KILN_ERROR_BACKEND);
  kiln_pending t[4];
  int fail_line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t[0]));
  kiln_arg args[2] = {kiln_arg_buffer(e->x), kiln_arg_buffer(e->y)};
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_launch_async(e->b, consume, &r, args, 2, &t[1])); /* reads x: must not run */
  KT_OK(kiln_buffer_copy_async(e->a, e->z, 0, e->y, 0, sizeof h, &t[2])); /* reads y */
  KT_OK(kiln_buffer_read_async(e->b, e->z, 0, sizeof out, out, &t[3]));   /* reads z */
  KT_EXPECT(kiln_wait(&t[0]), KILN_ERROR_BACKEND);
  for (int i = 1; i < 4; i++) {
    KT_EXPECT(kiln_wait(&t[i]), KILN_ERROR_DEPENDENCY_FAILED);
    expect_names_line(fail_line); /* always the first failure, not the one in between */
  }
  assert_int_equal(atomic_load(&kernel_runs), 0);
  /* the marks stay until the buffers are rewritten */
  KT_EXPECT(kiln_buffer_read(e->y, 0, sizeof out, out), KILN_ERROR_DEPENDENCY_FAILED);
  expect_names_line(fail_line);
  KT_EXPECT(kiln_buffer_read(e->z, 0, sizeof out, out), KILN_ERROR_DEPENDENCY_FAILED);
  expect_names_line(fail_line);
  /* and nothing was written: y and z still hold what they held (a write-only kernel
   * runs on a marked buffer, since it reads nothing failed: it peeks at the bytes) */
  peek(e, e->y);
  expect_host(peeked, 7);
  peek(e, e->z);
  expect_host(peeked, 9);
  KT_OK(kiln_kernel_destroy(consume));
}

static void stream_stays_usable_after_failure(void **state) {
  menv *e = *state;
  uint32_t h[N], out[N];
  fill_host(h, 400);
  configure(1, KILN_ERROR_BACKEND);
  kiln_pending t[3];
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t[0])); /* fails */
  KT_OK(kiln_buffer_write_async(e->a, e->y, 0, sizeof h, h, &t[1])); /* independent */
  KT_OK(kiln_buffer_read_async(e->a, e->y, 0, sizeof out, out, &t[2]));
  KT_EXPECT(kiln_wait(&t[0]), KILN_ERROR_BACKEND);
  KT_OK(kiln_wait(&t[1]));
  KT_OK(kiln_wait(&t[2]));
  expect_host(out, 400);
  /* kernels run on it too */
  kiln_kernel mark = make_kernel(e->ctx, 0);
  kiln_arg arg = kiln_arg_buffer(e->z);
  kiln_range r = kiln_range_1d(N);
  KT_OK(kiln_launch_async(e->a, mark, &r, &arg, 1, &t[0]));
  KT_OK(kiln_wait(&t[0]));
  KT_OK(kiln_buffer_read(e->z, 0, sizeof out, out));
  assert_int_equal(out[5], 0xC0DE0005u);
  KT_OK(kiln_kernel_destroy(mark));
  KT_OK(kiln_stream_query(e->a));
}

static void event_after_failed_op_reports_it(void **state) {
  menv *e = *state;
  uint32_t h[N];
  fill_host(h, 500);
  kiln_event before = NULL, after = NULL, later = NULL;
  KT_OK(kiln_event_create(e->ctx, NULL, &before));
  KT_OK(kiln_event_create(e->ctx, NULL, &after));
  KT_OK(kiln_event_create(e->ctx, NULL, &later));
  KT_OK(kiln_event_record(before, e->a));
  configure(1, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  kiln_pending t;
  int fail_line = __LINE__ + 1;
  KT_OK(kiln_buffer_fill_async(e->a, e->x, 0, sizeof h, h, 4, &t));
  KT_OK(kiln_pending_release(&t));
  KT_OK(kiln_event_record(after, e->a));
  KT_OK(kiln_event_synchronize(before)); /* recorded before the failure */
  KT_EXPECT(kiln_event_synchronize(after), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  expect_names_line(fail_line);
  /* the next event covers only what came after the previous one: clean */
  KT_OK(kiln_buffer_write_async(e->a, e->y, 0, sizeof h, h, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_event_record(later, e->a));
  KT_OK(kiln_event_synchronize(later));
  /* a stream that waits on the failed event: its wait op fails with DEPENDENCY_FAILED,
   * which kiln_stream_synchronize reports; work after it still runs */
  KT_OK(kiln_stream_wait_event(e->b, after));
  uint32_t out[N];
  KT_OK(kiln_buffer_read_async(e->b, e->y, 0, sizeof out, out, &t));
  KT_EXPECT(kiln_stream_synchronize(e->b), KILN_ERROR_DEPENDENCY_FAILED);
  KT_OK(kiln_wait(&t));
  expect_host(out, 500);
  KT_OK(kiln_stream_synchronize(e->b)); /* reported once */
  KT_OK(kiln_event_destroy(before));
  KT_OK(kiln_event_destroy(after));
  KT_OK(kiln_event_destroy(later));
}

static atomic_int cb_status;
static atomic_int cb_runs;
static void status_cb(kiln_status status, void *user) {
  (void)user;
  atomic_store(&cb_status, (int)status);
  atomic_fetch_add(&cb_runs, 1);
}

static void callback_after_failure_receives_it(void **state) {
  menv *e = *state;
  uint32_t h[N];
  fill_host(h, 600);
  atomic_store(&cb_runs, 0);
  configure(1, KILN_ERROR_OUT_OF_DEVICE_MEMORY);
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t));
  KT_OK(kiln_pending_release(&t));
  KT_OK(kiln_stream_add_callback(e->a, status_cb, NULL));
  KT_EXPECT(kiln_stream_synchronize(e->a), KILN_ERROR_OUT_OF_DEVICE_MEMORY); /* unreported */
  KT_OK(kiln_context_synchronize(e->ctx)); /* drains callbacks; the failure was reported */
  assert_int_equal(atomic_load(&cb_runs), 1);
  assert_int_equal(atomic_load(&cb_status), KILN_ERROR_OUT_OF_DEVICE_MEMORY);
}

/* The stream's own report: a failure whose token was released surfaces at the next
 * kiln_stream_synchronize, once. */
static void stream_synchronize_reports_unwaited_failure_once(void **state) {
  menv *e = *state;
  uint32_t h[N];
  fill_host(h, 700);
  configure(2, KILN_ERROR_BACKEND);
  kiln_pending t[3];
  KT_OK(kiln_buffer_write_async(e->a, e->y, 0, sizeof h, h, &t[0]));
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t[1])); /* call 2: fails */
  KT_OK(kiln_buffer_write_async(e->a, e->z, 0, sizeof h, h, &t[2]));
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_pending_release(&t[i]));
  KT_EXPECT(kiln_stream_synchronize(e->a), KILN_ERROR_BACKEND);
  KT_OK(kiln_stream_synchronize(e->a));
}

/* stream.h: kiln_stream_synchronize "returns the first failure among it that no token
 * or event wait has reported yet": a failure its token already reported is not
 * reported again by the stream. */
static void stream_synchronize_skips_failure_reported_by_token(void **state) {
  menv *e = *state;
  uint32_t h[N];
  fill_host(h, 750);
  configure(1, KILN_ERROR_BACKEND);
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  KT_OK(kiln_stream_synchronize(e->a));
}

/* Read the whole buffer on stream s; returns the token's status. */
static kiln_status read_all(kiln_stream s, kiln_buffer buf, uint32_t *out) {
  kiln_pending t;
  KT_OK(kiln_buffer_read_async(s, buf, 0, N * sizeof(uint32_t), out, &t));
  return kiln_wait(&t);
}

static void whole_buffer_rewrite_clears_the_mark(void **state) {
  menv *e = *state;
  uint32_t h[N], out[N];
  fill_host(h, 800);
  kiln_pending t;
  /* write: partial rewrite keeps the mark, whole rewrite clears it */
  configure(1, KILN_ERROR_BACKEND);
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  KT_OK(kiln_buffer_write(e->x, 0, 8, h));
  KT_EXPECT(read_all(e->b, e->x, out), KILN_ERROR_DEPENDENCY_FAILED);
  KT_OK(kiln_buffer_write_async(e->b, e->x, 0, sizeof h, h, &t)); /* another stream */
  KT_OK(kiln_wait(&t));
  KT_OK(read_all(e->a, e->x, out));
  expect_host(out, 800);
  /* fill of the whole buffer */
  configure(1, KILN_ERROR_BACKEND);
  KT_OK(kiln_buffer_write_async(e->a, e->y, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  uint32_t pat = 0x11223344u;
  KT_OK(kiln_buffer_fill(e->y, 0, sizeof h, &pat, 4));
  KT_OK(read_all(e->a, e->y, out));
  assert_int_equal(out[N - 1], 0x11223344u);
  /* copy of the whole buffer from a good one */
  configure(1, KILN_ERROR_BACKEND);
  KT_OK(kiln_buffer_write_async(e->a, e->z, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  KT_OK(kiln_buffer_copy_async(e->b, e->z, 0, e->x, 0, sizeof h, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(read_all(e->a, e->z, out));
  expect_host(out, 800);
  /* a kernel that only writes the buffer runs (it reads nothing failed) but does not
   * clear the mark: kiln cannot know which bytes it wrote (docs/async.md) */
  configure(1, KILN_ERROR_BACKEND);
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_BACKEND);
  kiln_kernel mark = make_kernel(e->ctx, 0);
  kiln_arg arg = kiln_arg_buffer(e->x);
  kiln_range r = kiln_range_1d(N);
  atomic_store(&kernel_runs, 0);
  KT_OK(kiln_launch_async(e->b, mark, &r, &arg, 1, &t));
  KT_OK(kiln_wait(&t));
  assert_int_equal(atomic_load(&kernel_runs), 1);
  KT_EXPECT(read_all(e->b, e->x, out), KILN_ERROR_DEPENDENCY_FAILED);
  KT_OK(kiln_kernel_destroy(mark));
}

/* ================================================================ device loss */

static unsigned generation(kiln_device dev) {
  kiln_device_props p = KILN_DEVICE_PROPS_INIT;
  KT_OK(kiln_device_get_props(dev, &p));
  return p.generation;
}

/* A fresh context on the device works end to end. */
static void expect_device_works(kiln_device dev) {
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(dev, NULL, &ctx));
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(ctx, NULL, &s));
  kiln_buffer b = mbuf(ctx, "after-reset");
  uint32_t h[N], out[N];
  fill_host(h, 0xABC);
  kiln_pending t[2];
  KT_OK(kiln_buffer_write_async(s, b, 0, sizeof h, h, &t[0]));
  KT_OK(kiln_buffer_read_async(s, b, 0, sizeof out, out, &t[1]));
  KT_OK(kiln_wait_all(t, 2));
  expect_host(out, 0xABC);
  KT_OK(kiln_context_destroy(ctx));
}

/* Every use of an old or lost handle is refused with DEVICE_LOST. */
static void expect_all_refused(menv *e, kiln_event ev, kiln_kernel k) {
  uint32_t h[N];
  fill_host(h, 0);
  kiln_pending t;
  kiln_stream s = NULL;
  kiln_buffer b = NULL;
  kiln_event ev2 = NULL;
  KT_EXPECT(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t), KILN_ERROR_DEVICE_LOST);
  assert_true(t.id == 0);
  KT_EXPECT(kiln_buffer_read_async(e->b, e->x, 0, sizeof h, h, &t), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_buffer_write(e->x, 0, sizeof h, h), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_buffer_read(e->y, 0, sizeof h, h), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_buffer_copy(e->y, 0, e->x, 0, 16), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_buffer_fill(e->z, 0, 16, h, 4), KILN_ERROR_DEVICE_LOST);
  size_t bytes = 1;
  KT_EXPECT(kiln_buffer_get_size(e->x, &bytes), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_stream_synchronize(e->a), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_stream_query(e->a), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_stream_wait_event(e->b, ev), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_event_record(ev, e->a), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_event_query(ev), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_event_synchronize(ev), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_stream_add_callback(e->a, status_cb, NULL), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_stream_create(e->ctx, NULL, &s), KILN_ERROR_DEVICE_LOST);
  assert_null(s);
  kiln_buffer_desc d = KILN_BUFFER_DESC_INIT;
  d.bytes = 64;
  KT_EXPECT(kiln_buffer_create(e->ctx, &d, &b), KILN_ERROR_DEVICE_LOST);
  assert_null(b);
  KT_EXPECT(kiln_event_create(e->ctx, NULL, &ev2), KILN_ERROR_DEVICE_LOST);
  assert_null(ev2);
  KT_EXPECT(kiln_context_synchronize(e->ctx), KILN_ERROR_DEVICE_LOST);
  kiln_arg arg = kiln_arg_buffer(e->x);
  kiln_range r = kiln_range_1d(N);
  KT_EXPECT(kiln_launch_async(e->a, k, &r, &arg, 1, &t), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_launch(e->a, k, &r, &arg, 1), KILN_ERROR_DEVICE_LOST);
}

/* Old-generation handles are destroyed without error. */
static void destroy_all(menv *e, kiln_event ev, kiln_kernel k) {
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_event_destroy(ev));
  KT_OK(kiln_buffer_destroy(e->x));
  KT_OK(kiln_buffer_destroy(e->y));
  KT_OK(kiln_stream_destroy(e->a));
  KT_OK(kiln_stream_destroy(e->b));
  KT_OK(kiln_context_destroy(e->ctx)); /* and what is left (z) with it */
  e->ctx = NULL;
}

static void device_loss_refuses_handles_and_fails_queued_ops(void **state) {
  menv *e = *state;
  kiln_kernel gate_k = kt_gate_kernel(e->ctx);
  kiln_kernel mark = make_kernel(e->ctx, 0);
  kiln_event ev = NULL;
  KT_OK(kiln_event_create(e->ctx, NULL, &ev));
  unsigned gen0 = generation(e->dev);
  uint32_t h[N], out[N];
  fill_host(h, 900);
  for (uint32_t i = 0; i < N; i++)
    out[i] = 0xDEADBEEFu;
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.lose_device_call = 4; /* gate launch, write, event record, then the read is lost */
  KT_OK(kiln_mock_configure(&c));
  kiln_pending tg, tw, tr;
  KT_OK(kt_gate_launch_async(e->a, gate_k, &e->gate, &tg));
  assert_true(kt_wait_atomic_at_least(&e->gate.entered, 1, 30.0)); /* it runs */
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &tw)); /* queued behind */
  KT_OK(kiln_event_record(ev, e->a));
  KT_OK(kiln_buffer_read_async(e->b, e->y, 0, sizeof out, out, &tr)); /* the loss */
  kt_gate_open(&e->gate);
  KT_OK(kiln_wait(&tg)); /* was running before the loss */
  KT_EXPECT(kiln_wait(&tw), KILN_ERROR_DEVICE_LOST);
  KT_EXPECT(kiln_wait(&tr), KILN_ERROR_DEVICE_LOST);
  for (uint32_t i = 0; i < N; i++)
    if (out[i] != 0xDEADBEEFu)
      fail_msg("an op of the lost device wrote host word %u", i);
  expect_all_refused(e, ev, mark);
  kiln_context ctx2 = NULL;
  KT_EXPECT(kiln_context_create(e->dev, NULL, &ctx2), KILN_ERROR_DEVICE_LOST);
  assert_null(ctx2);
  assert_int_equal(generation(e->dev), gen0); /* no reset yet */
  kiln_context_stats st = KILN_CONTEXT_STATS_INIT;
  KT_OK(kiln_context_get_stats(e->ctx, &st)); /* counters stay readable */
  KT_OK(kiln_kernel_destroy(gate_k));
  destroy_all(e, ev, mark);
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_device_reset(e->dev));
  assert_int_equal(generation(e->dev), gen0 + 1);
  expect_device_works(e->dev);
}

static void reset_makes_old_generation_handles_dead(void **state) {
  menv *e = *state;
  kiln_kernel mark = make_kernel(e->ctx, 0);
  kiln_event ev = NULL;
  KT_OK(kiln_event_create(e->ctx, NULL, &ev));
  uint32_t h[N];
  fill_host(h, 1000);
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t));
  KT_OK(kiln_wait(&t));
  KT_OK(kiln_event_record(ev, e->a));
  unsigned gen0 = generation(e->dev);
  /* lose the device, then reset while the old handles still exist */
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.lose_device_call = 1;
  KT_OK(kiln_mock_configure(&c));
  KT_OK(kiln_buffer_fill_async(e->a, e->y, 0, sizeof h, h, 4, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_DEVICE_LOST);
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_device_reset(e->dev));
  assert_int_equal(generation(e->dev), gen0 + 1);
  /* the device works again, but not for handles of the old generation */
  expect_device_works(e->dev);
  expect_all_refused(e, ev, mark);
  char gen_text[32];
  snprintf(gen_text, sizeof gen_text, "generation %u", gen0);
  KT_EXPECT_MSG(kiln_buffer_write(e->x, 0, 16, h), KILN_ERROR_DEVICE_LOST, gen_text);
  destroy_all(e, ev, mark);
  /* a reset of a device that is not lost is allowed: its handles die the same way */
  kiln_context ctx = NULL;
  KT_OK(kiln_context_create(e->dev, NULL, &ctx));
  kiln_buffer b = mbuf(ctx, "dies");
  KT_OK(kiln_device_reset(e->dev));
  assert_int_equal(generation(e->dev), gen0 + 2);
  KT_EXPECT(kiln_buffer_write(b, 0, 16, h), KILN_ERROR_DEVICE_LOST);
  KT_OK(kiln_buffer_destroy(b));
  KT_OK(kiln_context_destroy(ctx));
  expect_device_works(e->dev);
}

static void reset_with_failing_probe_keeps_device_lost(void **state) {
  menv *e = *state;
  uint32_t h[N];
  fill_host(h, 1100);
  unsigned gen0 = generation(e->dev);
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.lose_device_call = 1;
  KT_OK(kiln_mock_configure(&c));
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(e->a, e->x, 0, sizeof h, h, &t));
  KT_EXPECT(kiln_wait(&t), KILN_ERROR_DEVICE_LOST);
  c.lose_device_call = 0;
  c.reset_probe_fails = 1;
  KT_OK(kiln_mock_configure(&c));
  KT_EXPECT(kiln_device_reset(e->dev), KILN_ERROR_DEVICE_LOST);
  if (!kt_strcasestr(kiln_last_error()->suggestion, "restart the process"))
    fail_msg("the suggestion does not say to restart the process: '%s'",
             kiln_last_error()->suggestion);
  assert_true(generation(e->dev) > gen0);
  kiln_context ctx = NULL;
  KT_EXPECT(kiln_context_create(e->dev, NULL, &ctx), KILN_ERROR_DEVICE_LOST);
  assert_null(ctx);
  KT_EXPECT(kiln_buffer_write(e->x, 0, 16, h), KILN_ERROR_DEVICE_LOST);
  /* destroying the old handles still works while the device is lost */
  KT_OK(kiln_context_destroy(e->ctx));
  e->ctx = NULL;
  /* a later reset whose probe passes brings it back */
  KT_OK(kiln_mock_configure(NULL));
  unsigned gen1 = generation(e->dev);
  KT_OK(kiln_device_reset(e->dev));
  assert_int_equal(generation(e->dev), gen1 + 1);
  expect_device_works(e->dev);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(injected_failure_completes_token_with_its_status, msetup,
                                      mteardown),
      cmocka_unit_test_setup_teardown(dependent_read_on_other_stream_fails_naming_first_failure,
                                      msetup, mteardown),
      cmocka_unit_test_setup_teardown(blocking_call_failure_fills_last_error, msetup, mteardown),
      cmocka_unit_test_setup_teardown(dependents_propagate_the_mark_without_running, msetup,
                                      mteardown),
      cmocka_unit_test_setup_teardown(stream_stays_usable_after_failure, msetup, mteardown),
      cmocka_unit_test_setup_teardown(event_after_failed_op_reports_it, msetup, mteardown),
      cmocka_unit_test_setup_teardown(callback_after_failure_receives_it, msetup, mteardown),
      cmocka_unit_test_setup_teardown(stream_synchronize_reports_unwaited_failure_once, msetup,
                                      mteardown),
      cmocka_unit_test_setup_teardown(stream_synchronize_skips_failure_reported_by_token, msetup,
                                      mteardown),
      cmocka_unit_test_setup_teardown(whole_buffer_rewrite_clears_the_mark, msetup, mteardown),
      cmocka_unit_test_setup_teardown(device_loss_refuses_handles_and_fails_queued_ops, msetup,
                                      mteardown),
      cmocka_unit_test_setup_teardown(reset_makes_old_generation_handles_dead, msetup, mteardown),
      cmocka_unit_test_setup_teardown(reset_with_failing_probe_keeps_device_lost, msetup,
                                      mteardown),
  };
  if (!kt_backend_available(KILN_BACKEND_MOCK)) {
    fprintf(stderr, "SKIP: the mock backend is not available (KILN_MOCK=1 must be set)\n");
    return 77;
  }
  if (argc > 1)
    cmocka_set_test_filter(argv[1]);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
