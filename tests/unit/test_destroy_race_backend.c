/* SPDX-License-Identifier: MIT */
/* A wait or query that calls the backend on a stream another thread destroys: on
 * OpenCL kiln_stream_query and kiln_event_query poll the stream, kiln_stream_synchronize
 * asks it to wait (stream_wait), kiln_event_synchronize waits for the marker (op_wait).
 * Each such call used to be made with nothing holding the stream, so a destroy that ran
 * to its end in between (the call had seen work queued) freed the backend's stream
 * first (ASan: heap-use-after-free in the OpenCL backend's poll or wait). They are now
 * made with the stream's wait_users raised, which the destroy waits out.
 * The destroy is placed exactly there with the core's before_backend_wait test hook: it
 * starts another thread's destroy (which opens the gate holding the stream) and gives it
 * up to a quarter of a second to finish (a few milliseconds here, under ASan too).
 * Without the fix it finishes and the call then touches freed memory; with it the
 * destroy waits for the call (the hook's wait runs out: no timing is asserted either
 * way). The event stays alive throughout: destroying the stream an event was recorded
 * on while another thread waits on the event is legal. */
/* kiln-test-labels: unit */
/* kiln-test-backends: opencl */
/* kiln-test-link: static */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>

#include "core/core.h"
#include "kiln_test.h"

typedef struct race {
  kiln_stream stream;
  kt_gate *gate;
  atomic_int go, destroyed, hooked;
  kiln_status destroy_status;
} race;

static race *_Atomic armed; /* the race the hook starts, once */

static void start_destroy_and_give_it_time(kiln__stream_obj *s) {
  race *r = atomic_exchange(&armed, NULL);
  if (!r)
    return;
  assert_ptr_equal(s, r->stream);
  atomic_store(&r->hooked, 1);
  atomic_store(&r->go, 1);
  (void)kt_wait_atomic_at_least(&r->destroyed, 1, 0.25); /* not reached with the fix */
}

static void *destroyer(void *arg) {
  race *r = arg;
  kt_wait_atomic_at_least(&r->go, 1, KT_GATE_TIMEOUT_S);
  kt_gate_open(r->gate);
  r->destroy_status = kiln_stream_destroy(r->stream);
  atomic_store(&r->destroyed, 1);
  return NULL;
}

typedef enum call { STREAM_QUERY, STREAM_SYNCHRONIZE, EVENT_QUERY, EVENT_SYNCHRONIZE } call;

static void race_call(kt_env *env, call c) {
  race r = {.gate = kt_env_gate(env)};
  KT_OK(kiln_stream_create(env->ctx, NULL, &r.stream));
  kiln_pending hold = KILN_PENDING_INIT;
  KT_OK(kt_hold_async(env->ctx, r.stream, r.gate, &hold));
  KT_OK(kiln_pending_release(&hold)); /* the destroy waits for it */
  kiln_event ev = NULL;
  KT_OK(kiln_event_create(env->ctx, NULL, &ev));
  KT_OK(kiln_event_record(ev, r.stream)); /* held behind the gate */
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, destroyer, &r), 0);
  atomic_store(&armed, &r);
  atomic_store(&kiln__test_hooks_now.before_backend_wait, start_destroy_and_give_it_time);
  kiln_status st = KILN_SUCCESS;
  switch (c) {
  case STREAM_QUERY:
    st = kiln_stream_query(r.stream);
    assert_true(st == KILN_NOT_READY || st == KILN_SUCCESS);
    break;
  case STREAM_SYNCHRONIZE:
    KT_OK(kiln_stream_synchronize(r.stream));
    break;
  case EVENT_QUERY:
    st = kiln_event_query(ev);
    assert_true(st == KILN_NOT_READY || st == KILN_SUCCESS);
    break;
  case EVENT_SYNCHRONIZE:
    KT_OK(kiln_event_synchronize(ev));
    break;
  }
  atomic_store(&kiln__test_hooks_now.before_backend_wait, NULL);
  assert_int_equal(atomic_load(&r.hooked), 1); /* the call reached the backend */
  assert_int_equal(pthread_join(th, NULL), 0);
  KT_OK(r.destroy_status);
  KT_OK(kiln_event_query(ev)); /* complete: its stream's destroy waited for it */
  KT_OK(kiln_event_destroy(ev));
}

static void stream_query_racing_destroy(void **state) {
  race_call(*state, STREAM_QUERY);
}
static void stream_synchronize_racing_destroy(void **state) {
  race_call(*state, STREAM_SYNCHRONIZE);
}
static void event_query_racing_its_stream_destroy(void **state) {
  race_call(*state, EVENT_QUERY);
}
static void event_synchronize_racing_its_stream_destroy(void **state) {
  race_call(*state, EVENT_SYNCHRONIZE);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(stream_query_racing_destroy, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stream_synchronize_racing_destroy, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(event_query_racing_its_stream_destroy, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(event_synchronize_racing_its_stream_destroy, kt_setup,
                                    kt_teardown),
};
KT_MAIN(tests)
