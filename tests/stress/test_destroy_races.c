/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu stress */
/* Two threads destroy the same handle at the same instant, for every kind of handle
 * with a destroy (run under TSan by make check): exactly one destroy succeeds and the
 * other is refused with INVALID_HANDLE, every round. Before each destroy claimed its
 * handle, both could pass the liveness check and tear it down: a stream's worker was
 * stopped twice (a NULL dereference in the CPU backend), a stream pool or set tore its
 * streams down twice (a hang), an event or a device pool went back to its slab or
 * table twice (two later handles in one slot), a context ran its whole teardown twice.
 * Under the test allocator: nothing leaks. KILN_STRESS_OPS (default 80, 40 under TSan)
 * sets the rounds. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "kiln_test.h"

/* Half as many under TSan, where a round costs several times as much and a misused
 * lock or a double free is seen whenever the interleaving occurs. */
#if defined(__SANITIZE_THREAD__)
#define DEFAULT_ROUNDS 40
#else
#define DEFAULT_ROUNDS 80
#endif

static int rounds(void) {
  const char *v = getenv("KILN_STRESS_OPS");
  int n = v && *v ? atoi(v) : DEFAULT_ROUNDS;
  return n > 0 ? n : DEFAULT_ROUNDS;
}

typedef enum kind { STREAM, EVENT, BUFFER, KERNEL, STREAM_POOL, STREAM_SET, POOL, CONTEXT } kind;

typedef struct race {
  kind k;
  _Atomic(void *) target;
  atomic_int go; /* round number; -1: stop */
  atomic_int arrived, finished;
  atomic_int succeeded, refused, other;
} race;

static kiln_status destroy_one(kind k, void *h) {
  switch (k) {
  case STREAM:
    return kiln_stream_destroy(h);
  case EVENT:
    return kiln_event_destroy(h);
  case BUFFER:
    return kiln_buffer_destroy(h);
  case KERNEL:
    return kiln_kernel_destroy(h);
  case STREAM_POOL:
    return kiln_stream_pool_destroy(h);
  case STREAM_SET:
    return kiln_stream_set_destroy(h);
  case POOL:
    return kiln_pool_destroy(h);
  case CONTEXT:
    return kiln_context_destroy(h);
  }
  return KILN_ERROR_INVALID_ARGUMENT;
}

static void *destroyer(void *arg) {
  race *r = arg;
  for (int seen = 0;;) {
    int g;
    while ((g = atomic_load(&r->go)) == seen)
      sched_yield();
    if (g < 0)
      return NULL;
    seen = g;
    /* both threads here before either destroys: the two calls overlap */
    atomic_fetch_add(&r->arrived, 1);
    while (atomic_load(&r->arrived) < 2)
      ;
    kiln_status st = destroy_one(r->k, atomic_load(&r->target));
    if (st == KILN_SUCCESS)
      atomic_fetch_add(&r->succeeded, 1);
    else if (st == KILN_ERROR_INVALID_HANDLE)
      atomic_fetch_add(&r->refused, 1);
    else
      atomic_fetch_add(&r->other, 1);
    atomic_fetch_add(&r->finished, 1);
  }
}

static void *make_one(kt_env *env, kind k) {
  void *h = NULL;
  switch (k) {
  case STREAM:
    KT_OK(kiln_stream_create(env->ctx, NULL, (kiln_stream *)&h));
    break;
  case EVENT:
    KT_OK(kiln_event_create(env->ctx, NULL, (kiln_event *)&h));
    break;
  case BUFFER:
    h = kt_buffer(env->ctx, 64);
    break;
  case KERNEL:
    KT_OK(kt_kernel(env->ctx, "kt_set_u32", (kiln_kernel *)&h));
    break;
  case STREAM_POOL:
    KT_OK(kiln_stream_pool_create(env->ctx, 2, NULL, (kiln_stream_pool *)&h));
    break;
  case STREAM_SET:
    KT_OK(kiln_stream_set_create(env->ctx, 2, NULL, (kiln_stream_set *)&h));
    break;
  case POOL:
    KT_OK(kiln_pool_create(env->ctx, NULL, (kiln_pool *)&h));
    break;
  case CONTEXT:
    KT_OK(kiln_context_create(kt_device(), NULL, (kiln_context *)&h));
    break;
  }
  assert_non_null(h);
  return h;
}

static void race_destroys(kt_env *env, kind k) {
  race r = {.k = k};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, destroyer, &r), 0);
  int n = rounds();
  for (int round = 1; round <= n; round++) {
    atomic_store(&r.target, make_one(env, k));
    atomic_store(&r.arrived, 0);
    atomic_store(&r.finished, 0);
    atomic_store(&r.go, round);
    while (atomic_load(&r.finished) < 2)
      sched_yield();
  }
  atomic_store(&r.go, -1);
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  assert_int_equal(atomic_load(&r.other), 0);
  assert_int_equal(atomic_load(&r.succeeded), n);
  assert_int_equal(atomic_load(&r.refused), n);
}

/* A stream destroyed while another thread submits to it: each submission is queued
 * before the teardown (which then waits for it) or refused with INVALID_HANDLE. A
 * submission that had checked the handle before the destroy used to reach the CPU
 * backend after the stream's worker was gone (a NULL dereference there); the teardown
 * now closes the stream under its submit lock, which lives as long as the slot. */
typedef struct user {
  _Atomic(kiln_stream) current;
  kiln_buffer buffer;
  atomic_int stop, calls, queued, refused, other;
} user;

static void *submit_loop(void *arg) {
  user *u = arg;
  static const uint64_t word = 5;
  while (!atomic_load(&u->stop)) {
    kiln_stream s = atomic_load(&u->current);
    if (!s)
      continue;
    kiln_status st = kiln_buffer_write_async(s, u->buffer, 0, sizeof word, &word, KILN_NO_TOKEN);
    if (st == KILN_SUCCESS)
      atomic_fetch_add(&u->queued, 1);
    else if (st == KILN_ERROR_INVALID_HANDLE)
      atomic_fetch_add(&u->refused, 1);
    else
      atomic_fetch_add(&u->other, 1);
    atomic_fetch_add(&u->calls, 1);
  }
  return NULL;
}

static void stream_destroyed_while_another_thread_submits(void **state) {
  kt_env *env = *state;
  user u = {.buffer = kt_buffer(env->ctx, 64)};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, submit_loop, &u), 0);
  int n = rounds();
  for (int round = 0; round < n; round++) {
    kiln_stream s = NULL;
    KT_OK(kiln_stream_create(env->ctx, NULL, &s));
    atomic_store(&u.current, s);
    for (int seen = atomic_load(&u.calls); atomic_load(&u.calls) == seen;)
      sched_yield();               /* a call of this round has finished: the next is under way */
    KT_OK(kiln_stream_destroy(s)); /* it stays published: later calls are refused */
  }
  atomic_store(&u.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&u.other), 0);
  assert_true(atomic_load(&u.queued) > 0);
  assert_true(atomic_load(&u.refused) > 0);
  KT_OK(kiln_buffer_destroy(u.buffer));
}

/* An event destroyed while another thread records it, asks for its descriptor and for
 * its elapsed time: each call lands before the destroy (which then drops its marker and
 * closes its descriptor) or is refused with INVALID_HANDLE. Such a call used to lock the
 * event's mutex after the destroy had destroyed it (TSan), and a descriptor made then
 * was never closed (the test allocator sees its record left); a time (or query,
 * synchronize) asked after the destroy had dropped the marker answered as if the event
 * had never been recorded (INVALID_STATE, or SUCCESS) instead of refusing. */
typedef struct recorder {
  _Atomic(kiln_event) current;
  kiln_stream stream;
  atomic_int stop, calls, done, refused, other;
} recorder;

static void *record_loop(void *arg) {
  recorder *r = arg;
  for (unsigned i = 0; !atomic_load(&r->stop); i++) {
    kiln_event e = atomic_load(&r->current);
    if (!e)
      continue;
    int fd = -1;
    uint64_t ns = 0;
    kiln_status st = i % 3 == 0   ? kiln_event_record(e, r->stream)
                     : i % 3 == 1 ? kiln_event_fd(e, &fd)
                                  : kiln_event_elapsed_ns(e, e, &ns); /* NOT_READY or done */
    if (st == KILN_NOT_READY)
      st = KILN_SUCCESS;
    if (st == KILN_SUCCESS)
      atomic_fetch_add(&r->done, 1);
    else if (st == KILN_ERROR_INVALID_HANDLE)
      atomic_fetch_add(&r->refused, 1);
    else
      atomic_fetch_add(&r->other, 1);
    atomic_fetch_add(&r->calls, 1);
  }
  return NULL;
}

static void event_destroyed_while_another_thread_records_it(void **state) {
  kt_env *env = *state;
  recorder r = {.stream = env->stream};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, record_loop, &r), 0);
  int n = rounds();
  for (int round = 0; round < n; round++) {
    kiln_event e = NULL;
    kiln_event_desc d = KILN_EVENT_DESC_INIT;
    d.flags = KILN_EVENT_TIMING;
    KT_OK(kiln_event_create(env->ctx, &d, &e));
    KT_OK(kiln_event_record(e, r.stream)); /* recorded: "never recorded" is never right */
    atomic_store(&r.current, e);
    for (int seen = atomic_load(&r.calls); atomic_load(&r.calls) < seen + 3 + round % 3;)
      sched_yield(); /* a record, a descriptor, a time: the next is under way */
    KT_OK(kiln_event_destroy(e));
  }
  atomic_store(&r.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&r.other), 0);
  assert_true(atomic_load(&r.done) > 0);
  assert_true(atomic_load(&r.refused) > 0);
}

/* A stream pool (or set) destroyed while another thread uses it: acquire, release,
 * pick, get, statistics and synchronize_all each land before the destroy (a stream it
 * returns is then refused when used) or are refused with INVALID_HANDLE. Such a call
 * used to read the group's stream array after the destroy had freed it (ASan:
 * heap-use-after-free; a NULL dereference once the pointer was cleared); the array now
 * lives as long as the group's slot. */
typedef struct group_user {
  _Atomic(void *) current;
  int sets;
  atomic_int stop, calls, done, refused, other;
} group_user;

static kiln_status use_group(const group_user *u, void *g, unsigned i) {
  kiln_stream s = NULL;
  kiln_stream_stats stats = KILN_STREAM_STATS_INIT;
  if (u->sets) {
    switch (i % 3) {
    case 0:
      return kiln_stream_set_get(g, i) ? KILN_SUCCESS : KILN_ERROR_INVALID_HANDLE;
    case 1:
      return kiln_stream_set_get_stats(g, i % 2, &stats);
    default:
      return kiln_stream_set_synchronize_all(g);
    }
  }
  switch (i % 5) {
  case 0: {
    kiln_status st = kiln_stream_pool_acquire(g, &s);
    if (st == KILN_SUCCESS)
      st = kiln_stream_pool_release(g, s); /* refused once the pool is gone */
    return st;
  }
  case 1:
    return kiln_stream_pool_pick(g, &s);
  case 2:
    return kiln_stream_pool_get(g, 1, &s);
  case 3:
    return kiln_stream_pool_get_stats(g, 0, &stats);
  default:
    return kiln_stream_pool_synchronize_all(g);
  }
}

static void *group_loop(void *arg) {
  group_user *u = arg;
  for (unsigned i = 0; !atomic_load(&u->stop); i++) {
    void *g = atomic_load(&u->current);
    if (!g)
      continue;
    kiln_status st = use_group(u, g, i);
    if (st == KILN_SUCCESS)
      atomic_fetch_add(&u->done, 1);
    else if (st == KILN_ERROR_INVALID_HANDLE)
      atomic_fetch_add(&u->refused, 1);
    else
      atomic_fetch_add(&u->other, 1);
    atomic_fetch_add(&u->calls, 1);
  }
  return NULL;
}

static void group_destroyed_while_another_thread_uses_it(kt_env *env, int sets) {
  group_user u = {.sets = sets};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, group_loop, &u), 0);
  int n = rounds();
  for (int round = 0; round < n; round++) {
    void *g = make_one(env, sets ? STREAM_SET : STREAM_POOL);
    atomic_store(&u.current, g);
    for (int seen = atomic_load(&u.calls); round % 2 && atomic_load(&u.calls) == seen;)
      sched_yield(); /* odd rounds: a call has finished, the next is under way */
    KT_OK(destroy_one(sets ? STREAM_SET : STREAM_POOL, g)); /* stays published */
  }
  atomic_store(&u.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&u.other), 0);
  assert_true(atomic_load(&u.done) > 0);
  assert_true(atomic_load(&u.refused) > 0);
}

static void stream_pool_destroyed_while_another_thread_uses_it(void **state) {
  group_destroyed_while_another_thread_uses_it(*state, 0);
}
static void stream_set_destroyed_while_another_thread_uses_it(void **state) {
  group_destroyed_while_another_thread_uses_it(*state, 1);
}

/* A device pool destroyed while another thread allocates from it (and frees), warms,
 * trims, compacts it and asks for its statistics: each call lands before the destroy
 * (which is refused while a buffer of it lives, and retried) or is refused with
 * INVALID_HANDLE. Such a call used to reach the pool's state after the destroy had
 * freed it (ASan: heap-use-after-free; TSan: its lock destroyed), and an allocation
 * landing just after the destroy counted the live buffers left a buffer on freed state;
 * the destroy now closes the state and waits out the calls inside it. */
typedef struct pool_user {
  _Atomic(kiln_pool) current;
  kiln_stream stream;
  atomic_int stop, calls, done, refused, other;
} pool_user;

static kiln_status use_pool(const pool_user *u, kiln_pool p, unsigned i) {
  kiln_pool_stats stats = KILN_POOL_STATS_INIT;
  switch (i % 5) {
  case 0: {
    kiln_buffer b = NULL;
    kiln_status st = kiln_pool_alloc(p, u->stream, 256, &b);
    if (st == KILN_SUCCESS)
      KT_OK(kiln_pool_free(b, u->stream)); /* a live buffer holds the pool */
    return st;
  }
  case 1:
    return kiln_pool_warm(p, 256, 2);
  case 2:
    return kiln_pool_trim(p, 0);
  case 3:
    return kiln_pool_compact(p);
  default:
    return kiln_pool_get_stats(p, &stats);
  }
}

static void *pool_loop(void *arg) {
  pool_user *u = arg;
  for (unsigned i = 0; !atomic_load(&u->stop); i++) {
    kiln_pool p = atomic_load(&u->current);
    if (!p)
      continue;
    kiln_status st = use_pool(u, p, i);
    if (st == KILN_SUCCESS)
      atomic_fetch_add(&u->done, 1);
    else if (st == KILN_ERROR_INVALID_HANDLE)
      atomic_fetch_add(&u->refused, 1);
    else
      atomic_fetch_add(&u->other, 1);
    atomic_fetch_add(&u->calls, 1);
  }
  return NULL;
}

static void device_pool_destroyed_while_another_thread_uses_it(void **state) {
  kt_env *env = *state;
  pool_user u = {.stream = env->stream};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, pool_loop, &u), 0);
  int n = rounds();
  for (int round = 0; round < n; round++) {
    kiln_pool p = make_one(env, POOL);
    atomic_store(&u.current, p);
    for (int seen = atomic_load(&u.calls); round % 2 && atomic_load(&u.calls) == seen;)
      sched_yield(); /* odd rounds: a call has finished, the next is under way */
    kiln_status st;
    while ((st = kiln_pool_destroy(p)) == KILN_ERROR_INVALID_STATE)
      sched_yield(); /* a buffer of it lives for a moment */
    KT_OK(st);       /* it stays published: later calls are refused */
  }
  atomic_store(&u.stop, 1);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(atomic_load(&u.other), 0);
  assert_true(atomic_load(&u.done) > 0);
  assert_true(atomic_load(&u.refused) > 0);
}

static void streams(void **state) {
  race_destroys(*state, STREAM);
}
static void events(void **state) {
  race_destroys(*state, EVENT);
}
static void buffers(void **state) {
  race_destroys(*state, BUFFER);
}
static void kernels(void **state) {
  race_destroys(*state, KERNEL);
}
static void stream_pools(void **state) {
  race_destroys(*state, STREAM_POOL);
}
static void stream_sets(void **state) {
  race_destroys(*state, STREAM_SET);
}
static void device_pools(void **state) {
  race_destroys(*state, POOL);
}
static void contexts(void **state) {
  race_destroys(*state, CONTEXT);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(streams, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(events, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(buffers, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(kernels, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stream_pools, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stream_sets, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(device_pools, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(contexts, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(stream_destroyed_while_another_thread_submits, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(event_destroyed_while_another_thread_records_it, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(stream_pool_destroyed_while_another_thread_uses_it, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(stream_set_destroyed_while_another_thread_uses_it, kt_setup,
                                    kt_teardown),
    cmocka_unit_test_setup_teardown(device_pool_destroyed_while_another_thread_uses_it, kt_setup,
                                    kt_teardown),
};
KT_MAIN_CPU(tests)
