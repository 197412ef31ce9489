/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: mock stress */
/* kiln-test-env: KILN_MOCK=1 */
/* Calls racing the destroy of a stream whose work failed (the mock backend fails it on
 * demand; run under TSan by make check). The failure is what makes the racing call
 * take the stream's error lock: kiln_stream_synchronize takes the stream's first error,
 * kiln_event_synchronize marks it reported on the marker's stream. That lock used to
 * be destroyed with the stream, so a call that checked its handle just before the
 * destroy (or an event whose stream another thread destroys: a legal use) locked a
 * destroyed mutex (TSan: a race of pthread_mutex_destroy with pthread_mutex_lock, or
 * "use of an invalid mutex"); it now lives as long as the stream's slot.
 * KILN_STRESS_OPS (default 80, 40 under TSan) sets the rounds. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "kiln/mock.h"
#include "kiln_test.h"

#if defined(__SANITIZE_THREAD__)
#define DEFAULT_ROUNDS 40 /* fewer than the slab's quarantine: no slot is reused */
#else
#define DEFAULT_ROUNDS 80
#endif

static int rounds(void) {
  const char *v = getenv("KILN_STRESS_OPS");
  int n = v && *v ? atoi(v) : DEFAULT_ROUNDS;
  return n > 0 ? n : DEFAULT_ROUNDS;
}

typedef struct env {
  kiln_context ctx;
  kiln_buffer buffer;
} env;

static void open_env(env *e) {
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_context_create(kt_mock_device(), NULL, &e->ctx));
  e->buffer = kt_buffer(e->ctx, 64);
}

static void close_env(env *e) {
  KT_OK(kiln_mock_configure(NULL));
  KT_OK(kiln_buffer_destroy(e->buffer));
  KT_OK(kiln_context_destroy(e->ctx));
}

/* A new stream with a failed write on it (and, when asked, an event recorded after
 * it), all completed: its first error is set and not yet taken. */
static kiln_stream failed_stream(env *e, kiln_event *event) {
  kiln_stream s = NULL;
  KT_OK(kiln_stream_create(e->ctx, NULL, &s));
  kiln_mock_config c = KILN_MOCK_CONFIG_INIT;
  c.fail_from_call = 1; /* every op queued from here fails when it runs */
  KT_OK(kiln_mock_configure(&c));
  static const uint64_t word = 7;
  KT_OK(kiln_buffer_write_async(s, e->buffer, 0, sizeof word, &word, KILN_NO_TOKEN));
  if (event)
    KT_OK(kiln_event_record(*event, s));
  KT_OK(kiln_mock_configure(NULL));
  for (uint64_t pending = 1; pending;) {
    KT_OK(kiln_stream_pending(s, &pending));
    sched_yield();
  }
  return s;
}

typedef struct racer {
  _Atomic(void *) current; /* a stream (synchronize) or an event (event synchronize) */
  int events;
  atomic_int stop, calls, failed, refused, ok, other;
} racer;

static void *sync_loop(void *arg) {
  racer *r = arg;
  while (!atomic_load(&r->stop)) {
    void *h = atomic_load(&r->current);
    if (!h)
      continue;
    kiln_status st = r->events ? kiln_event_synchronize(h) : kiln_stream_synchronize(h);
    if (st == KILN_ERROR_BACKEND) /* the injected failure, reported */
      atomic_fetch_add(&r->failed, 1);
    else if (st == KILN_ERROR_INVALID_HANDLE)
      atomic_fetch_add(&r->refused, 1);
    else if (st == KILN_SUCCESS) /* the failure was reported by an earlier call */
      atomic_fetch_add(&r->ok, 1);
    else
      atomic_fetch_add(&r->other, 1);
    atomic_fetch_add(&r->calls, 1);
  }
  return NULL;
}

/* kiln_stream_synchronize on one thread, the stream's destroy on another, just after
 * its work failed: the synchronize reports the failure, finds it reported, or is
 * refused; the destroy succeeds. */
static void stream_synchronize_racing_destroy(void **state) {
  (void)state;
  env e;
  open_env(&e);
  racer r = {.events = 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, sync_loop, &r), 0);
  int n = rounds();
  for (int round = 0; round < n; round++) {
    kiln_stream s = failed_stream(&e, NULL);
    atomic_store(&r.current, s);
    for (int seen = atomic_load(&r.calls); round % 2 && atomic_load(&r.calls) == seen;)
      sched_yield(); /* odd rounds: a call has finished, the next may take the error */
    KT_OK(kiln_stream_destroy(s)); /* it stays published: later calls are refused */
  }
  atomic_store(&r.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&r.other), 0);
  assert_true(atomic_load(&r.failed) > 0);
  assert_true(atomic_load(&r.refused) > 0);
  close_env(&e);
}

/* kiln_event_synchronize on one thread while another destroys the stream the event
 * was recorded on (the event stays alive: a legal use), after the work before the
 * marker failed: each call reports the failure. The event's own destroy then races
 * the next call too (refused, or the failure). */
static void event_synchronize_racing_its_stream_destroy(void **state) {
  (void)state;
  env e;
  open_env(&e);
  racer r = {.events = 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, sync_loop, &r), 0);
  int n = rounds();
  for (int round = 0; round < n; round++) {
    kiln_event ev = NULL;
    KT_OK(kiln_event_create(e.ctx, NULL, &ev));
    kiln_stream s = failed_stream(&e, &ev);
    atomic_store(&r.current, ev);
    KT_OK(kiln_stream_destroy(s)); /* while the other thread synchronizes the event */
    for (int seen = atomic_load(&r.calls); atomic_load(&r.calls) < seen + 2;)
      sched_yield(); /* a call that began after the destroy has finished too */
    KT_OK(kiln_event_destroy(ev));
  }
  atomic_store(&r.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&r.other), 0);
  assert_int_equal(atomic_load(&r.ok), 0);
  assert_true(atomic_load(&r.failed) > 0);
  close_env(&e);
}

/* A program destroyed while another thread makes kernels of it (the mock's fake
 * compiler builds it at once): each kiln_kernel_create lands before the destroy (the
 * kernel stays valid) or is refused with INVALID_HANDLE. Such a call used to read the
 * program's parsed signatures and hand its backend program to kernel_create after the
 * destroy had freed them (ASan: heap-use-after-free); the destroy now waits out the
 * kernel creations inside the program. */
typedef struct maker {
  _Atomic(kiln_program) current;
  atomic_int stop, calls, made, refused, other;
} maker;

static void *make_loop(void *arg) {
  maker *m = arg;
  while (!atomic_load(&m->stop)) {
    kiln_program p = atomic_load(&m->current);
    if (!p)
      continue;
    kiln_kernel k = NULL;
    kiln_status st = kiln_kernel_create(p, "race_k", &k);
    if (st == KILN_SUCCESS) {
      atomic_fetch_add(&m->made, 1);
      KT_OK(kiln_kernel_destroy(k));
    } else if (st == KILN_ERROR_INVALID_HANDLE) {
      atomic_fetch_add(&m->refused, 1);
    } else {
      atomic_fetch_add(&m->other, 1);
    }
    atomic_fetch_add(&m->calls, 1);
  }
  return NULL;
}

static void program_destroyed_while_another_thread_makes_kernels(void **state) {
  (void)state;
  env e;
  open_env(&e);
  static const char src[] = "KILN_KERNEL void race_k(KILN_GLOBAL kiln_u32 *out) {\n"
                            "  out[kiln_global_id(0)] = 1u;\n"
                            "}\n";
  kiln_program_desc d = KILN_PROGRAM_DESC_INIT;
  d.source = src;
  d.name = "destroy_race.kiln";
  maker m = {0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, make_loop, &m), 0);
  int n = rounds();
  for (int round = 0; round < n; round++) {
    kiln_program p = NULL;
    KT_OK(kiln_program_create(e.ctx, &d, &p));
    atomic_store(&m.current, p);
    for (int seen = atomic_load(&m.calls); round % 2 && atomic_load(&m.calls) == seen;)
      sched_yield();                /* odd rounds: a call has finished, the next is under way */
    KT_OK(kiln_program_destroy(p)); /* it stays published: later calls are refused */
  }
  atomic_store(&m.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&m.other), 0);
  assert_true(atomic_load(&m.made) > 0);
  assert_true(atomic_load(&m.refused) > 0);
  close_env(&e);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(stream_synchronize_racing_destroy),
    cmocka_unit_test(event_synchronize_racing_its_stream_destroy),
    cmocka_unit_test(program_destroyed_while_another_thread_makes_kernels),
};
KT_MAIN_MOCK(tests)
