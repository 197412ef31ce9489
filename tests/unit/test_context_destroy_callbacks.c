/* SPDX-License-Identifier: MIT */
/* kiln_context_destroy runs every completion callback while the context is whole:
 * before it tears a stream down (callbacks may use the context's streams and buffers).
 * A token's callback is posted by the op's completer just after it publishes the op's
 * completion, so a destroy that saw the stream idle could drain an empty callback queue
 * and tear down while the callback was still to come; that late callback then read a
 * buffer through the context's default stream, which the destroy had torn down
 * already, and made a new one nobody destroyed (the fuzzer's "1 host blocks of kiln's
 * allocator not freed", tests/fuzz/api-regressions/leak-one-host-block-rare).
 * The window is held open with core.h's test hooks: the completer waits in it until
 * either the destroy shows it waits for the completer (the fix) or the destroy has
 * begun tearing the stream down (a forgotten token reported, at error level, by the
 * stream's teardown), so each test fails every time the behaviour is missing.
 * kiln-test-labels: cpu unit
 * kiln-test-link: static */
#define _POSIX_C_SOURCE 200809L
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "kiln_test.h"

static atomic_int armed;          /* the completer's hook holds the window */
static atomic_int past_drain;     /* a stream's teardown has begun (forgotten token) */
static atomic_int destroy_waited; /* a waiter waits for the completer (consumed) */
static atomic_int hook_gave_up;

static void on_log(kiln_log_level level, const char *message, void *user) {
  (void)level, (void)user;
  if (strstr(message, "neither waited nor released"))
    atomic_store(&past_drain, 1);
}

static void before_notify(kiln__op_obj *op) {
  (void)op;
  if (!atomic_load(&armed))
    return;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  while (!atomic_load(&past_drain) && !atomic_exchange(&destroy_waited, 0)) {
    sched_yield();
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 30) { /* a bug becomes a failure, not a hang */
      atomic_store(&hook_gave_up, 1);
      return;
    }
  }
}

static void waiting_notified(kiln__stream_obj *s) {
  (void)s;
  atomic_store(&destroy_waited, 1);
}

typedef struct probe {
  kiln_stream stream;
  kiln_buffer buffer;
  atomic_int runs;
  atomic_int late;           /* ran after the destroy began tearing down */
  atomic_int stream_refused; /* kiln_stream_query on its stream failed */
  atomic_int read_refused;   /* kiln_buffer_read of its buffer failed */
  atomic_int chain;          /* the first callback queues work with a callback of its own */
  struct probe *next;
  kiln_context ctx;
  kt_gate *gate; /* holds that work until its callback is added */
} probe;

static void probe_cb(kiln_status status, void *user) {
  (void)status;
  probe *p = user;
  if (atomic_load(&past_drain))
    atomic_store(&p->late, 1);
  if (kiln_stream_query(p->stream) != KILN_SUCCESS)
    atomic_store(&p->stream_refused, 1);
  uint8_t byte;
  if (kiln_buffer_read(p->buffer, 0, 1, &byte) != KILN_SUCCESS)
    atomic_store(&p->read_refused, 1);
  if (atomic_load(&p->chain) && p->next) {
    /* Pending when its callback is added (else the callback is posted at once, by this
     * thread): the completer posts it, after the op's completion is published. */
    static uint64_t word;
    kiln_pending hold, t;
    if (kt_hold_async(p->ctx, p->stream, p->gate, &hold) != KILN_SUCCESS ||
        kiln_pending_release(&hold) != KILN_SUCCESS ||
        kiln_buffer_write_async(p->stream, p->buffer, 8, sizeof word, &word, &t) != KILN_SUCCESS ||
        kiln_pending_add_callback(&t, probe_cb, p->next) != KILN_SUCCESS)
      atomic_store(&p->read_refused, 2);
    kt_gate_open(p->gate);
  }
  atomic_fetch_add(&p->runs, 1);
}

static void probe_init(probe *p, kt_env *env, kiln_buffer b) {
  memset(p, 0, sizeof *p);
  p->stream = env->stream;
  p->buffer = b;
}

static void expect_on_time(const probe *p, const char *which) {
  if (atomic_load(&p->runs) != 1)
    fail_msg("%s: ran %d times, expected once", which, atomic_load(&p->runs));
  if (atomic_load(&p->late))
    fail_msg("%s: ran after kiln_context_destroy began tearing the context down", which);
  if (atomic_load(&p->stream_refused) || atomic_load(&p->read_refused))
    fail_msg("%s: its stream or buffer was refused (stream %d, read %d)", which,
             atomic_load(&p->stream_refused), atomic_load(&p->read_refused));
}

/* The scene: a stream held by a gate, a forgotten token on it (the teardown's sign), an
 * op whose token carries the probe's callback; then the destroy, with the completer
 * held in its window. */
static void destroy_with_held_completer(kt_env *env, probe *first) {
  kt_gate *g = kt_env_gate(env);
  kiln_pending hold, forgotten, t;
  KT_OK(kt_hold_async(env->ctx, env->stream, g, &hold));
  KT_OK(kiln_pending_release(&hold));
  static uint64_t words[2];
  KT_OK(kiln_buffer_write_async(env->stream, first->buffer, 16, sizeof words[0], &words[0],
                                &forgotten));
  KT_OK(kiln_buffer_write_async(env->stream, first->buffer, 24, sizeof words[1], &words[1], &t));
  KT_OK(kiln_pending_add_callback(&t, probe_cb, first));
  kiln_set_log_callback(on_log, KILN_LOG_ERROR, NULL);
  atomic_store(&kiln__test_hooks_now.before_notify, before_notify);
  atomic_store(&kiln__test_hooks_now.waiting_notified, waiting_notified);
  atomic_store(&armed, 1);
  kt_gate_open(g);
  kiln_status st = kiln_context_destroy(env->ctx);
  env->ctx = NULL;
  atomic_store(&armed, 0);
  atomic_store(&kiln__test_hooks_now.before_notify, NULL);
  atomic_store(&kiln__test_hooks_now.waiting_notified, NULL);
  kiln_set_log_callback(NULL, KILN_LOG_ERROR, NULL);
  KT_OK(st);
  assert_int_equal(atomic_load(&hook_gave_up), 0);
  assert_int_equal(atomic_load(&past_drain), 1); /* the forgotten token was reported */
}

static int reset_flags(void **state) {
  atomic_store(&armed, 0);
  atomic_store(&past_drain, 0);
  atomic_store(&destroy_waited, 0);
  atomic_store(&hook_gave_up, 0);
  return kt_setup(state);
}

/* A token's callback whose post the completer has not made yet when the destroy finds
 * the stream idle: the destroy waits for the post, then runs the callback. */
static void token_callback_runs_before_teardown(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  uint64_t zero = 0;
  KT_OK(kiln_buffer_write(b, 0, sizeof zero, &zero)); /* the default stream exists */
  probe p;
  probe_init(&p, env, b);
  destroy_with_held_completer(env, &p);
  expect_on_time(&p, "the token's callback");
}

/* A callback that, run by the destroy, queues work with a callback of its own: that one
 * runs before the teardown too (the destroy waits and drains until a round runs none). */
static void callback_queued_by_a_callback_runs_before_teardown(void **state) {
  kt_env *env = *state;
  kiln_buffer b = kt_buffer(env->ctx, 64);
  uint64_t zero = 0;
  KT_OK(kiln_buffer_write(b, 0, sizeof zero, &zero));
  probe first, second;
  probe_init(&first, env, b);
  probe_init(&second, env, b);
  first.next = &second;
  first.ctx = env->ctx;
  first.gate = kt_env_gate(env);
  atomic_store(&first.chain, 1);
  destroy_with_held_completer(env, &first);
  expect_on_time(&first, "the first callback");
  expect_on_time(&second, "the callback the first one queued");
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(token_callback_runs_before_teardown, reset_flags, kt_teardown),
    cmocka_unit_test_setup_teardown(callback_queued_by_a_callback_runs_before_teardown, reset_flags,
                                    kt_teardown),
};
KT_MAIN_CPU(tests)
