/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: unit */
/* kiln-test-backends: cpu opencl mock cuda-fake */
/* Async integration (issue #19, include/kiln/async.h, docs/async.md): KILN_NO_TOKEN
 * ops covered by stream, event and context waits and never reported as forgotten, a
 * forgotten real token reported at error level; completion callbacks on tokens (the
 * callback consumes the token) and on events, each re-entering kiln; pollable
 * descriptors of events and streams, not readable while work is held and readable
 * after, level-triggered; bad input. Work is held with kt_hold_async; waits on
 * callbacks have timeouts that only turn hangs into failures. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "kiln_test.h"

#define HANG_TIMEOUT_S 30.0

/* 1 when fd is readable now (poll with timeout 0), 0 when not. */
static int readable_now(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int rc = poll(&p, 1, 0);
  assert_true(rc >= 0);
  return rc == 1 && (p.revents & POLLIN);
}

/* Wait (up to the hang timeout) for fd to become readable. */
static int readable_within(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int rc = poll(&p, 1, (int)(HANG_TIMEOUT_S * 1000));
  return rc == 1 && (p.revents & POLLIN);
}

/* ---- KILN_NO_TOKEN ---- */

static void no_token_covered_by_stream_synchronize(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 256);
  static uint32_t src[64], dst[64];
  for (uint32_t i = 0; i < 64; i++)
    src[i] = 0x100u + i;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof src, src, KILN_NO_TOKEN));
  static const uint32_t pattern = 7;
  KT_OK(kiln_buffer_fill_async(env->stream, b, 0, 16, &pattern, 4, KILN_NO_TOKEN));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, sizeof dst, dst, KILN_NO_TOKEN));
  KT_OK(kiln_stream_synchronize(env->stream));
  for (uint32_t i = 0; i < 64; i++)
    assert_int_equal(dst[i], i < 4 ? 7u : 0x100u + i);
  KT_OK(kiln_buffer_destroy(b));
}

static void no_token_covered_by_event_and_context(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 256);
  kiln_kernel k = kt_add_kernel(env->ctx);
  static uint32_t host[64];
  memset(host, 0, sizeof host);
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, sizeof host, host, KILN_NO_TOKEN));
  kiln_arg args[3];
  static const uint64_t off = 0;
  static const uint32_t add = 5;
  kt_add_args(args, b, &off, &add);
  kiln_range r = kiln_range_1d(64);
  KT_OK(kiln_launch_async(env->stream, k, &r, args, 3, KILN_NO_TOKEN));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, sizeof host, host, KILN_NO_TOKEN));
  kiln_event ev;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  KT_OK(kiln_event_record(ev, env->stream));
  KT_OK(kiln_event_synchronize(ev));
  for (int i = 0; i < 64; i++)
    assert_int_equal(host[i], 5u);
  KT_OK(kiln_buffer_copy_async(env->stream, b, 0, b, 128, 64, KILN_NO_TOKEN));
  KT_OK(kiln_buffer_read_async(env->stream, b, 0, sizeof host, host, KILN_NO_TOKEN));
  KT_OK(kiln_context_synchronize(env->ctx));
  assert_int_equal(host[0], 5u);
  KT_OK(kiln_event_destroy(ev));
  KT_OK(kiln_kernel_destroy(k));
  KT_OK(kiln_buffer_destroy(b));
}

static void no_token_not_reported_forgotten_token_is_error(void **state) {
  kt_env *env = *state;
  kiln_stream s;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  kiln_buffer b = kt_buffer(env->ctx, 64);
  static uint32_t src[16];
  kt_log_capture cap;
  kt_log_capture_start(&cap, KILN_LOG_ERROR); /* only what the default log prints */
  KT_OK(kiln_buffer_write_async(s, b, 0, 64, src, KILN_NO_TOKEN));
  KT_OK(kiln_stream_destroy(s)); /* waits; nothing forgotten */
  int quiet_lines = cap.lines;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s));
  kiln_pending forgotten;
  int line = __LINE__ + 1;
  KT_OK(kiln_buffer_write_async(s, b, 0, 64, src, &forgotten));
  KT_OK(kiln_stream_destroy(s));
  kt_log_capture_stop(&cap);
  assert_int_equal(quiet_lines, 0);
  char where[64];
  snprintf(where, sizeof where, "test_async_notify.c:%d", line);
  if (!kt_log_capture_has(&cap, where) || !kt_log_capture_has(&cap, "neither waited"))
    fail_msg("expected an error-level report naming %s, got:\n%s", where, cap.text);
  KT_OK(kiln_buffer_destroy(b));
}

static void no_token_refused_by_waits(void **state) {
  kt_env *env = *state;
  KT_EXPECT_MSG(kiln_wait(KILN_NO_TOKEN), KILN_ERROR_INVALID_ARGUMENT, "KILN_NO_TOKEN");
  KT_EXPECT_MSG(kiln_wait_timeout(KILN_NO_TOKEN, 1000), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_NO_TOKEN");
  KT_EXPECT_MSG(kiln_wait_all(KILN_NO_TOKEN, 1), KILN_ERROR_INVALID_ARGUMENT, "KILN_NO_TOKEN");
  KT_EXPECT_MSG(kiln_pending_query(KILN_NO_TOKEN), KILN_ERROR_INVALID_ARGUMENT, "KILN_NO_TOKEN");
  KT_EXPECT_MSG(kiln_pending_release(KILN_NO_TOKEN), KILN_ERROR_INVALID_ARGUMENT, "KILN_NO_TOKEN");
  KT_EXPECT_MSG(kiln_pending_add_callback(KILN_NO_TOKEN, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_NO_TOKEN");
  kiln_future f;
  KT_EXPECT_MSG(kiln_future_from_pending(KILN_NO_TOKEN, &f), KILN_ERROR_INVALID_ARGUMENT,
                "KILN_NO_TOKEN");
  assert_int_equal(f.id, 0);
  /* An accidental NULL is still refused by the _async calls. */
  kiln_buffer b = kt_buffer(env->ctx, 64);
  static uint32_t src[16];
  KT_EXPECT_MSG(kiln_buffer_write_async(env->stream, b, 0, 64, src, NULL),
                KILN_ERROR_INVALID_ARGUMENT, "token is NULL");
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- callbacks on tokens and events ---- */

typedef struct cb_rec {
  atomic_int runs;
  atomic_int on_main;
  kiln_status status;
  pthread_t main_thread;
  /* re-entry: the callback runs a blocking round trip on this buffer */
  kiln_stream stream;
  kiln_buffer buf;
  atomic_int reentry_failures;
  uint32_t seen;
} cb_rec;

static void rec_init(cb_rec *r, kiln_stream s, kiln_buffer b) {
  memset(r, 0, sizeof *r);
  atomic_init(&r->runs, 0);
  atomic_init(&r->on_main, 0);
  atomic_init(&r->reentry_failures, 0);
  r->main_thread = pthread_self();
  r->stream = s;
  r->buf = b;
}

static void reentrant_cb(kiln_status status, void *user) {
  cb_rec *r = user;
  r->status = status;
  if (pthread_equal(pthread_self(), r->main_thread))
    atomic_store(&r->on_main, 1);
  if (r->buf) { /* call kiln: an async write waited here, then a blocking read */
    static uint32_t v[4] = {11, 12, 13, 14};
    kiln_pending t;
    if (kiln_buffer_write_async(r->stream, r->buf, 0, sizeof v, v, &t) != KILN_SUCCESS ||
        kiln_wait(&t) != KILN_SUCCESS)
      atomic_fetch_add(&r->reentry_failures, 1);
    uint32_t out[4] = {0};
    if (kiln_buffer_read(r->buf, 0, sizeof out, out) != KILN_SUCCESS)
      atomic_fetch_add(&r->reentry_failures, 1);
    r->seen = out[2];
  }
  atomic_fetch_add(&r->runs, 1); /* last: the test reads the rest once it sees this */
}

static void token_callback_consumes_and_reenters(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kiln_stream other;
  KT_OK(kiln_stream_create(env->ctx, NULL, &other));
  kiln_pending hold, t;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  static uint32_t src[16];
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, src, &t));
  cb_rec r;
  rec_init(&r, other, b);
  kiln_pending copy = t;
  KT_OK(kiln_pending_add_callback(&t, reentrant_cb, &r));
  assert_int_equal(t.id, 0);                              /* consumed */
  KT_EXPECT(kiln_wait(&copy), KILN_ERROR_INVALID_HANDLE); /* the callback is its wait */
  kt_sleep_us(2000);
  assert_int_equal(atomic_load(&r.runs), 0); /* held */
  kt_gate_open(g);
  KT_OK(kiln_wait(&hold));
  if (!kt_wait_atomic_at_least(&r.runs, 1, HANG_TIMEOUT_S))
    fail_msg("the token's callback did not run");
  assert_int_equal(r.status, KILN_SUCCESS);
  assert_int_equal(atomic_load(&r.on_main), 0);
  assert_int_equal(atomic_load(&r.reentry_failures), 0);
  assert_int_equal(r.seen, 13u);
  KT_OK(kiln_stream_destroy(other));
  KT_OK(kiln_buffer_destroy(b));
}

static void event_callback_reenters_and_never_recorded_runs(void **state) {
  kt_env *env = *state;
  kt_gate *g = kt_env_gate(env);
  kiln_buffer b = kt_buffer(env->ctx, 64);
  kiln_event ev, fresh;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  KT_OK(kiln_event_create(env->ctx, NULL, &fresh));
  kiln_pending hold;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  KT_OK(kiln_event_record(ev, env->stream));
  cb_rec r, r2;
  rec_init(&r, env->stream, b);
  rec_init(&r2, NULL, NULL);
  KT_OK(kiln_event_add_callback(ev, reentrant_cb, &r));
  KT_OK(kiln_event_add_callback(fresh, reentrant_cb, &r2)); /* never recorded: runs */
  if (!kt_wait_atomic_at_least(&r2.runs, 1, HANG_TIMEOUT_S))
    fail_msg("the callback of a never-recorded event did not run");
  assert_int_equal(atomic_load(&r.runs), 0); /* held */
  kt_gate_open(g);
  KT_OK(kiln_wait(&hold));
  if (!kt_wait_atomic_at_least(&r.runs, 1, HANG_TIMEOUT_S))
    fail_msg("the event's callback did not run");
  assert_int_equal(r.status, KILN_SUCCESS);
  assert_int_equal(atomic_load(&r.reentry_failures), 0);
  assert_int_equal(r.seen, 13u);
  KT_OK(kiln_event_destroy(ev));
  KT_OK(kiln_event_destroy(fresh));
  KT_OK(kiln_buffer_destroy(b));
}

static void noop_cb(kiln_status status, void *user) {
  (void)status;
  (void)user;
}

static void callback_bad_input(void **state) {
  kt_env *env = *state;
  kiln_event ev;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  KT_EXPECT_MSG(kiln_event_add_callback(ev, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT, "fn");
  KT_OK(kiln_event_destroy(ev));
  KT_EXPECT_MSG(kiln_event_add_callback(ev, noop_cb, NULL), KILN_ERROR_INVALID_HANDLE, "destroyed");
  KT_EXPECT(kiln_event_add_callback(NULL, noop_cb, NULL), KILN_ERROR_INVALID_HANDLE);
  KT_EXPECT(kiln_pending_add_callback(NULL, noop_cb, NULL), KILN_ERROR_INVALID_ARGUMENT);
  kiln_pending empty = KILN_PENDING_INIT;
  KT_EXPECT_MSG(kiln_pending_add_callback(&empty, noop_cb, NULL), KILN_ERROR_INVALID_HANDLE,
                "empty");
  /* fn NULL on a real token: refused, and the token is left as it was */
  kiln_buffer b = kt_buffer(env->ctx, 64);
  static uint32_t src[16];
  kiln_pending t;
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, src, &t));
  uint64_t id = t.id;
  KT_EXPECT_MSG(kiln_pending_add_callback(&t, NULL, NULL), KILN_ERROR_INVALID_ARGUMENT, "fn");
  assert_int_equal(t.id, id);
  KT_OK(kiln_wait(&t));
  KT_EXPECT(kiln_event_fd(NULL, NULL), KILN_ERROR_INVALID_ARGUMENT);
  int fd = 5;
  KT_EXPECT_MSG(kiln_event_fd(ev, &fd), KILN_ERROR_INVALID_HANDLE, "destroyed");
  assert_int_equal(fd, -1);
  KT_EXPECT(kiln_stream_fd(env->stream, NULL), KILN_ERROR_INVALID_ARGUMENT);
  KT_EXPECT(kiln_stream_fd(NULL, &fd), KILN_ERROR_INVALID_HANDLE);
  KT_OK(kiln_buffer_destroy(b));
}

/* ---- descriptors ---- */

static void event_fd_level_triggered(void **state) {
  kt_env *env = *state;
  kiln_event ev;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  int fd = -1, again = -1;
  KT_OK(kiln_event_fd(ev, &fd));
  assert_true(fd >= 0);
  KT_OK(kiln_event_fd(ev, &again));
  assert_int_equal(fd, again);                  /* made once */
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC); /* EFD_CLOEXEC */
  assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK); /* EFD_NONBLOCK */
  assert_int_equal(readable_now(fd), 1);        /* never recorded: complete */
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  KT_OK(kiln_event_record(ev, env->stream));
  assert_int_equal(readable_now(fd), 0); /* recorded behind held work */
  kt_sleep_us(2000);
  assert_int_equal(readable_now(fd), 0);
  kt_gate_open(g);
  assert_int_equal(readable_within(fd), 1);
  assert_int_equal(readable_now(fd), 1); /* level: stays readable */
  KT_OK(kiln_event_query(ev));
  KT_OK(kiln_wait(&hold));
  /* recorded again behind new held work: not readable until it completes */
  kt_gate *g2 = kt_env_gate(env);
  KT_OK(kt_hold_async(env->ctx, env->stream, g2, &hold));
  KT_OK(kiln_event_record(ev, env->stream));
  assert_int_equal(readable_now(fd), 0);
  kt_gate_open(g2);
  assert_int_equal(readable_within(fd), 1);
  KT_OK(kiln_wait(&hold));
  KT_OK(kiln_event_destroy(ev));
  errno = 0;
  assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed by the destroy */
  assert_int_equal(errno, EBADF);
}

static void event_fd_made_while_pending(void **state) {
  kt_env *env = *state;
  kiln_event ev;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  KT_OK(kiln_event_record(ev, env->stream));
  int fd;
  KT_OK(kiln_event_fd(ev, &fd));
  assert_int_equal(readable_now(fd), 0);
  kt_gate_open(g);
  assert_int_equal(readable_within(fd), 1);
  KT_OK(kiln_wait(&hold));
  KT_OK(kiln_event_destroy(ev));
}

static void stream_fd_follows_idle(void **state) {
  kt_env *env = *state;
  int fd = -1, again = -1;
  KT_OK(kiln_stream_fd(env->stream, &fd));
  KT_OK(kiln_stream_fd(env->stream, &again));
  assert_int_equal(fd, again);
  assert_int_equal(readable_now(fd), 1); /* idle */
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  assert_int_equal(readable_now(fd), 0); /* new work arrived */
  kiln_buffer b = kt_buffer(env->ctx, 64);
  static uint32_t src[16];
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, src, KILN_NO_TOKEN));
  kt_sleep_us(2000);
  assert_int_equal(readable_now(fd), 0);
  kt_gate_open(g);
  assert_int_equal(readable_within(fd), 1);
  assert_int_equal(readable_now(fd), 1);
  KT_OK(kiln_stream_query(env->stream));
  KT_OK(kiln_wait(&hold));
  KT_OK(kiln_stream_synchronize(env->stream));
  /* more work: not readable until done, then readable again */
  KT_OK(kiln_buffer_write_async(env->stream, b, 0, 64, src, KILN_NO_TOKEN));
  KT_OK(kiln_stream_synchronize(env->stream));
  assert_int_equal(readable_within(fd), 1);
  kiln_stream s2;
  KT_OK(kiln_stream_create(env->ctx, NULL, &s2));
  int fd2;
  KT_OK(kiln_stream_fd(s2, &fd2));
  assert_true(fd2 != fd);
  KT_OK(kiln_stream_destroy(s2));
  errno = 0;
  assert_int_equal(fcntl(fd2, F_GETFD), -1); /* closed by the destroy */
  assert_int_equal(errno, EBADF);
  KT_OK(kiln_buffer_destroy(b));
}

/* Host allocations failing: a descriptor, a record's watch, a callback's item. */
static void allocation_failures_leave_things_usable(void **state) {
  kt_env *env = *state;
  kiln_event ev;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  int fd = 3;
  kt_alloc_fail_nth(1);
  KT_EXPECT(kiln_event_fd(ev, &fd), KILN_ERROR_OUT_OF_HOST_MEMORY);
  kt_alloc_fail_none();
  assert_int_equal(fd, -1);
  kt_alloc_fail_nth(1);
  KT_EXPECT(kiln_stream_fd(env->stream, &fd), KILN_ERROR_OUT_OF_HOST_MEMORY);
  kt_alloc_fail_none();
  assert_int_equal(fd, -1);
  KT_OK(kiln_event_fd(ev, &fd));
  /* a record needs a watch for the descriptor: refused cleanly, the event unchanged */
  size_t failed = 0;
  for (size_t n = 1; n <= 4; n++) {
    kt_alloc_fail_nth(n);
    kiln_status st = kiln_event_record(ev, env->stream);
    kt_alloc_fail_none();
    if (st != KILN_SUCCESS) {
      assert_int_equal(st, KILN_ERROR_OUT_OF_HOST_MEMORY);
      failed++;
    }
    assert_int_equal(readable_within(fd), 1); /* whatever marker it has completes */
  }
  assert_true(failed >= 1);
  cb_rec r;
  rec_init(&r, NULL, NULL);
  kt_alloc_fail_nth(1);
  KT_EXPECT(kiln_event_add_callback(ev, reentrant_cb, &r), KILN_ERROR_OUT_OF_HOST_MEMORY);
  kt_alloc_fail_none();
  KT_OK(kiln_context_synchronize(env->ctx));
  assert_int_equal(atomic_load(&r.runs), 0);
  KT_OK(kiln_event_destroy(ev));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(no_token_covered_by_stream_synchronize, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(no_token_covered_by_event_and_context, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(no_token_not_reported_forgotten_token_is_error, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(no_token_refused_by_waits, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(token_callback_consumes_and_reenters, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(event_callback_reenters_and_never_recorded_runs, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(callback_bad_input, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(event_fd_level_triggered, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(event_fd_made_while_pending, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stream_fd_follows_idle, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(allocation_failures_leave_things_usable, kt_setup, kt_teardown),
};
KT_MAIN(tests)
