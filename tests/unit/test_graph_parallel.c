/* SPDX-License-Identifier: MIT */
/* kiln-test-labels: cpu unit */
/* kiln-test-env: KILN_CPU_SHUFFLE=5 */
/* Task graphs II (docs/graph.md): independent host nodes run at the same time on the
 * graph's workers (a rendezvous that only passes when they overlap, and fails rather
 * than hangs when they cannot: shown with workers = 1), failures in a parallel launch
 * (the first in schedule order named, dependants stopped, device successors too), and
 * kiln_graph_launch_future (then-continuations with the launch's status, when_all of
 * two graphs, refusals while in flight, destroy with the future outstanding), and the
 * allocation-failure sweep over a parallel graph launched every way. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln_test.h"

static kiln_graph par_graph(kt_env *env, unsigned workers, const char *name) {
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.name = name;
  d.workers = workers;
  kiln_graph g = NULL;
  KT_OK(kiln_graph_create(env->ctx, &d, &g));
  return g;
}

/* ---- rendezvous: `parties` host nodes wait for each other (with a timeout) */

typedef struct meet {
  pthread_mutex_t m;
  pthread_cond_t c;
  int parties, arrived, generation;
  long timeout_ms;
} meet;

static void meet_init(meet *mt, int parties, long timeout_ms) {
  pthread_mutex_init(&mt->m, NULL);
  pthread_cond_init(&mt->c, NULL);
  mt->parties = parties;
  mt->arrived = mt->generation = 0;
  mt->timeout_ms = timeout_ms;
}

static void meet_destroy(meet *mt) {
  pthread_cond_destroy(&mt->c);
  pthread_mutex_destroy(&mt->m);
}

static kiln_status host_meet(void *user) {
  meet *mt = user;
  pthread_mutex_lock(&mt->m);
  int gen = mt->generation;
  if (++mt->arrived == mt->parties) {
    mt->arrived = 0;
    mt->generation++;
    pthread_cond_broadcast(&mt->c);
    pthread_mutex_unlock(&mt->m);
    return KILN_SUCCESS;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += mt->timeout_ms / 1000;
  ts.tv_nsec += (mt->timeout_ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  while (mt->generation == gen) {
    if (pthread_cond_timedwait(&mt->c, &mt->m, &ts) == ETIMEDOUT && mt->generation == gen) {
      mt->arrived--;
      pthread_mutex_unlock(&mt->m);
      return kiln_error_report(KILN_ERROR_INVALID_STATE, "host_meet", NULL,
                               "rendezvous of %d timed out: the nodes did not overlap",
                               mt->parties);
    }
  }
  pthread_mutex_unlock(&mt->m);
  return KILN_SUCCESS;
}

static kiln_status host_nop(void *user) {
  (void)user;
  return KILN_SUCCESS;
}

/* upload -> {parties meeting host nodes} -> join host -> download: with `workers`
 * workers, run and launch+wait `reps` times each. */
static kiln_status run_meeting(kt_env *env, unsigned workers, int parties, long timeout_ms,
                               int reps) {
  meet mt;
  meet_init(&mt, parties, timeout_ms);
  kiln_buffer x = kt_buffer(env->ctx, 64);
  uint32_t in[16] = {7}, out[16] = {0};
  kiln_graph g = par_graph(env, workers, "meeting");
  kiln_graph_node up, down, join, h[8];
  KT_OK(kiln_graph_add_write(g, "up", x, 0, 64, in, &up));
  KT_OK(kiln_graph_add_host(g, "join", host_nop, NULL, NULL, 0, &join));
  for (int i = 0; i < parties; i++) {
    char name[16];
    snprintf(name, sizeof name, "meet%d", i);
    KT_OK(kiln_graph_add_host(g, name, host_meet, &mt, NULL, 0, &h[i]));
    KT_OK(kiln_graph_precede(g, up, h[i]));
    KT_OK(kiln_graph_precede(g, h[i], join));
  }
  KT_OK(kiln_graph_add_read(g, "down", x, 0, 64, out, &down));
  KT_OK(kiln_graph_precede(g, join, down));
  kiln_status st = KILN_SUCCESS;
  for (int r = 0; r < reps && st == KILN_SUCCESS; r++) {
    in[0] = (uint32_t)r;
    if (r % 2)
      st = kiln_graph_run(g);
    else if ((st = kiln_graph_launch(g)) == KILN_SUCCESS)
      st = kiln_graph_wait(g);
    if (st == KILN_SUCCESS)
      assert_int_equal(out[0], (uint32_t)r);
  }
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(x));
  meet_destroy(&mt);
  return st;
}

/* Two (and four, more than this machine's cores) independent host nodes meet at a
 * barrier: passes only if they run at the same time. With one worker the same graph
 * fails (the barrier's timeout), so the test can fail. */
static void test_independent_host_nodes_overlap(void **state) {
  kt_env *env = *state;
  KT_OK(run_meeting(env, 2, 2, 10000, 20));
  KT_OK(run_meeting(env, 4, 4, 10000, 10));
  KT_EXPECT_MSG(run_meeting(env, 1, 2, 100, 1), KILN_ERROR_INVALID_STATE, "did not overlap");
  KT_MSG_HAS("node 'meet0' (host)");
}

/* Host nodes that call back into their own graph are refused on a worker as on the
 * launching thread: two nodes meet first (so they run on two threads, one of them a
 * worker), then each waits for and destroys its own graph. */
typedef struct self_call {
  meet mt;
  kiln_graph g;
  atomic_int refused;
} self_call;

static kiln_status host_calls_own_graph(void *user) {
  self_call *sc = user;
  kiln_status st = host_meet(&sc->mt);
  if (st != KILN_SUCCESS)
    return st;
  if (kiln_graph_wait(sc->g) == KILN_ERROR_INVALID_STATE)
    atomic_fetch_add(&sc->refused, 1);
  if (kiln_graph_destroy(sc->g) == KILN_ERROR_INVALID_STATE)
    atomic_fetch_add(&sc->refused, 1);
  return KILN_SUCCESS;
}

static void test_worker_calls_own_graph_refused(void **state) {
  kt_env *env = *state;
  static self_call sc;
  meet_init(&sc.mt, 2, 10000);
  sc.g = par_graph(env, 2, "self");
  atomic_store(&sc.refused, 0);
  kiln_graph_node a, b;
  KT_OK(kiln_graph_add_host(sc.g, "a", host_calls_own_graph, &sc, NULL, 0, &a));
  KT_OK(kiln_graph_add_host(sc.g, "b", host_calls_own_graph, &sc, NULL, 0, &b));
  KT_OK(kiln_graph_run(sc.g));
  assert_int_equal(atomic_load(&sc.refused), 4);
  KT_OK(kiln_graph_launch(sc.g));
  KT_OK(kiln_graph_wait(sc.g));
  assert_int_equal(atomic_load(&sc.refused), 8);
  KT_OK(kiln_graph_destroy(sc.g));
  meet_destroy(&sc.mt);
}

/* ---- failures in a parallel launch */

static atomic_int ran[8];

static kiln_status host_mark(void *user) {
  atomic_fetch_add(&ran[(intptr_t)user], 1);
  return KILN_SUCCESS;
}
static kiln_status host_fail_io(void *user) {
  (void)user;
  return kiln_error_report(KILN_ERROR_IO, "loader", "check the input file",
                           "input.dat: no such file");
}
static kiln_status host_fail_arg(void *user) {
  (void)user;
  return kiln_error_report(KILN_ERROR_INVALID_ARGUMENT, "parser", NULL, "bad line 3");
}

/* a; b (fails, IO) -> d, b -> kernel k; c (fails, later in schedule order) -> e; f.
 * Every launch reports b whatever thread failed first; d, e and k are stopped. */
static void test_parallel_failure(void **state) {
  kt_env *env = *state;
  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_buffer x = kt_buffer(env->ctx, 64);
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, x, &off, &one);
  kiln_range range = kiln_range_1d(16);
  kiln_graph g = par_graph(env, 4, "etl");
  kiln_graph_node a, b, c, d, e, f, k;
  KT_OK(kiln_graph_add_host(g, "a", host_mark, (void *)(intptr_t)0, NULL, 0, &a));
  KT_OK(kiln_graph_add_host(g, "loader", host_fail_io, NULL, NULL, 0, &b));
  KT_OK(kiln_graph_add_host(g, "parser", host_fail_arg, NULL, NULL, 0, &c));
  KT_OK(kiln_graph_add_host(g, "d", host_mark, (void *)(intptr_t)1, NULL, 0, &d));
  KT_OK(kiln_graph_add_host(g, "e", host_mark, (void *)(intptr_t)2, NULL, 0, &e));
  KT_OK(kiln_graph_add_host(g, "f", host_mark, (void *)(intptr_t)3, NULL, 0, &f));
  KT_OK(kiln_graph_add_kernel(g, "k", add, &range, args, 3, &k));
  KT_OK(kiln_graph_precede(g, b, d));
  KT_OK(kiln_graph_precede(g, b, k));
  KT_OK(kiln_graph_precede(g, c, e));
  KT_OK(kiln_buffer_fill(x, 0, 64, &off, 4));
  for (int rep = 0; rep < 30; rep++) {
    for (int i = 0; i < 4; i++)
      atomic_store(&ran[i], 0);
    if (rep % 2) {
      KT_OK(kiln_graph_launch(g));
      KT_EXPECT_MSG(kiln_graph_wait(g), KILN_ERROR_IO, "node 'loader' (host)");
    } else {
      KT_EXPECT_MSG(kiln_graph_run(g), KILN_ERROR_IO, "node 'loader' (host)");
    }
    KT_MSG_HAS("input.dat: no such file");
    assert_int_equal(atomic_load(&ran[0]), 1);
    assert_int_equal(atomic_load(&ran[1]), 0);
    assert_int_equal(atomic_load(&ran[2]), 0);
    assert_int_equal(atomic_load(&ran[3]), 1);
    KT_EXPECT(kiln_graph_node_status(g, c), KILN_ERROR_INVALID_ARGUMENT);
    KT_EXPECT_MSG(kiln_graph_node_status(g, d), KILN_ERROR_DEPENDENCY_FAILED, "'loader'");
    KT_EXPECT_MSG(kiln_graph_node_status(g, e), KILN_ERROR_DEPENDENCY_FAILED, "'parser'");
    KT_EXPECT_MSG(kiln_graph_node_status(g, k), KILN_ERROR_DEPENDENCY_FAILED, "'loader'");
  }
  uint32_t v[16];
  KT_OK(kiln_buffer_read(x, 0, 64, v));
  assert_int_equal(v[0], 0); /* the kernel never ran */
  KT_OK(kiln_graph_destroy(g));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(add));
}

/* Refused worker counts, by value. */
static void test_workers_refused(void **state) {
  kt_env *env = *state;
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.workers = KILN_GRAPH_MAX_WORKERS + 1;
  kiln_graph g = (kiln_graph)1;
  KT_EXPECT_MSG(kiln_graph_create(env->ctx, &d, &g), KILN_ERROR_INVALID_ARGUMENT,
                "desc->workers is 65");
  assert_null(g);
}

/* ---- futures */

typedef struct seen {
  atomic_int calls;
  _Atomic kiln_status status;
} seen;

static kiln_status then_record(kiln_status status, void *user) {
  seen *s = user;
  atomic_fetch_add(&s->calls, 1);
  atomic_store(&s->status, status);
  return KILN_SUCCESS;
}

static atomic_int gate_open;
static kiln_status host_gate(void *user) {
  (void)user;
  for (int i = 0; i < 200000 && !atomic_load(&gate_open); i++) /* 20 s at most */
    kt_sleep_us(100);
  return atomic_load(&gate_open) ? KILN_SUCCESS : KILN_ERROR_INVALID_STATE;
}

/* then on a graph's future: once, with the launch's status, on success and on a
 * failing node (the failure's message in the next future's wait); refusals while the
 * future's launch is in flight; the graph relaunched after. */
static void test_future_then(void **state) {
  kt_env *env = *state;
  kiln_graph g = par_graph(env, 2, "futured");
  kiln_graph_node a, b;
  KT_OK(kiln_graph_add_host(g, "gate", host_gate, NULL, NULL, 0, &a));
  KT_OK(kiln_graph_add_host(g, "b", host_mark, (void *)(intptr_t)4, NULL, 0, &b));
  KT_OK(kiln_graph_precede(g, a, b));
  atomic_store(&ran[4], 0);
  for (int rep = 0; rep < 3; rep++) {
    atomic_store(&gate_open, 0);
    kiln_future fut, next;
    seen s = {0, KILN_NOT_READY};
    KT_OK(kiln_graph_launch_future(g, &fut));
    assert_true(fut.id != 0);
    KT_EXPECT_MSG(kiln_graph_wait(g), KILN_ERROR_INVALID_STATE, "wait the future");
    KT_EXPECT_MSG(kiln_graph_launch(g), KILN_ERROR_INVALID_STATE, "launch in flight");
    kiln_future other;
    KT_EXPECT(kiln_graph_launch_future(g, &other), KILN_ERROR_INVALID_STATE);
    assert_true(other.id == 0);
    assert_int_equal(kiln_graph_query(g), KILN_NOT_READY);
    KT_OK(kiln_future_then(&fut, then_record, &s, &next));
    atomic_store(&gate_open, 1);
    KT_OK(kiln_future_wait(&next));
    assert_int_equal(atomic_load(&s.calls), 1);
    assert_int_equal(atomic_load(&s.status), KILN_SUCCESS);
    assert_int_equal(atomic_load(&ran[4]), rep + 1);
  }
  KT_OK(kiln_graph_run(g)); /* the plain launch still works after */
  KT_OK(kiln_graph_destroy(g));

  kiln_graph bad = par_graph(env, 2, "bad");
  kiln_graph_node l, after;
  KT_OK(kiln_graph_add_host(bad, "loader", host_fail_io, NULL, NULL, 0, &l));
  KT_OK(kiln_graph_add_host(bad, "after", host_mark, (void *)(intptr_t)5, NULL, 0, &after));
  KT_OK(kiln_graph_precede(bad, l, after));
  atomic_store(&ran[5], 0);
  seen s = {0, KILN_NOT_READY};
  kiln_future fut, next;
  KT_OK(kiln_graph_launch_future(bad, &fut));
  KT_OK(kiln_future_then(&fut, then_record, &s, &next));
  /* a continuation's future names the failed operation only by its status (the core's
   * rule for chains); the launch's own future carries the node's message (below) */
  KT_EXPECT_MSG(kiln_future_wait(&next), KILN_ERROR_IO, "KILN_ERROR_IO");
  assert_int_equal(atomic_load(&s.calls), 1);
  assert_int_equal(atomic_load(&s.status), KILN_ERROR_IO);
  assert_int_equal(atomic_load(&ran[5]), 0);
  KT_EXPECT_MSG(kiln_graph_node_status(bad, after), KILN_ERROR_DEPENDENCY_FAILED, "'loader'");
  /* a plain wait of the future */
  KT_OK(kiln_graph_launch_future(bad, &fut));
  KT_EXPECT_MSG(kiln_future_wait(&fut), KILN_ERROR_IO, "graph 'bad' node 'loader' (host)");
  KT_MSG_HAS("input.dat: no such file");
  KT_OK(kiln_graph_destroy(bad));
  KT_EXPECT(kiln_graph_launch_future(NULL, &fut), KILN_ERROR_INVALID_HANDLE);
  assert_true(fut.id == 0);
  KT_EXPECT_MSG(kiln_graph_launch_future(NULL, NULL), KILN_ERROR_INVALID_ARGUMENT, "future");
}

/* when_all of two graphs: a device-only one (its launch still gets a future) and one
 * with host nodes; both results checked. */
static void test_future_when_all(void **state) {
  kt_env *env = *state;
  kiln_kernel add = kt_add_kernel(env->ctx);
  kiln_buffer x = kt_buffer(env->ctx, 64);
  static const uint64_t off = 0;
  static const uint32_t one = 1;
  kiln_arg args[3];
  kt_add_args(args, x, &off, &one);
  kiln_range range = kiln_range_1d(16);
  uint32_t in[16] = {0}, out[16] = {0};
  kiln_graph dev = par_graph(env, 0, "dev"), host = par_graph(env, 3, "host");
  kiln_graph_node w, k, r, h[3];
  KT_OK(kiln_graph_add_write(dev, "w", x, 0, 64, in, &w));
  KT_OK(kiln_graph_add_kernel(dev, "k", add, &range, args, 3, &k));
  KT_OK(kiln_graph_add_read(dev, "r", x, 0, 64, out, &r));
  for (int i = 0; i < 3; i++)
    KT_OK(kiln_graph_add_host(host, NULL, host_mark, (void *)(intptr_t)6, NULL, 0, &h[i]));
  atomic_store(&ran[6], 0);
  for (int rep = 0; rep < 5; rep++) {
    in[0] = (uint32_t)(10 * rep);
    kiln_future f[2];
    KT_OK(kiln_graph_launch_future(dev, &f[0]));
    KT_OK(kiln_graph_launch_future(host, &f[1]));
    KT_OK(kiln_future_when_all(f, 2, &f[0]));
    KT_OK(kiln_future_wait(&f[0]));
    assert_int_equal(out[0], (uint32_t)(10 * rep + 1));
    assert_int_equal(atomic_load(&ran[6]), 3 * (rep + 1));
  }
  KT_OK(kiln_graph_destroy(dev));
  KT_OK(kiln_graph_destroy(host));
  KT_OK(kiln_buffer_destroy(x));
  KT_OK(kiln_kernel_destroy(add));
}

/* A continuation of the launch's future may launch the graph again: the graph is free
 * before the future completes. */
typedef struct relaunch {
  kiln_graph g;
  _Atomic kiln_status got;
} relaunch;

static kiln_status then_relaunch(kiln_status status, void *user) {
  relaunch *r = user;
  atomic_store(&r->got, status == KILN_SUCCESS ? kiln_graph_run(r->g) : status);
  return KILN_SUCCESS;
}

static void test_future_continuation_relaunches(void **state) {
  kt_env *env = *state;
  relaunch r = {par_graph(env, 2, "again"), KILN_NOT_READY};
  kiln_graph_node a, b;
  KT_OK(kiln_graph_add_host(r.g, "a", host_mark, (void *)(intptr_t)7, NULL, 0, &a));
  KT_OK(kiln_graph_add_host(r.g, "b", host_mark, (void *)(intptr_t)7, NULL, 0, &b));
  atomic_store(&ran[7], 0);
  kiln_future f;
  KT_OK(kiln_graph_launch_future(r.g, &f));
  KT_OK(kiln_future_then(&f, then_relaunch, &r, &f));
  KT_OK(kiln_future_wait(&f));
  KT_OK(atomic_load(&r.got));
  assert_int_equal(atomic_load(&ran[7]), 4);
  KT_OK(kiln_graph_destroy(r.g));
}

static void *open_gate_later(void *arg) {
  (void)arg;
  kt_sleep_us(20000);
  atomic_store(&gate_open, 1);
  return NULL;
}

/* Destroy with the future outstanding: destroy waits for the launch, the future and its
 * continuation still complete (once, successfully). */
static void test_future_outlives_destroy(void **state) {
  kt_env *env = *state;
  kiln_graph g = par_graph(env, 2, "short-lived");
  kiln_graph_node a;
  KT_OK(kiln_graph_add_host(g, "gate", host_gate, NULL, NULL, 0, &a));
  atomic_store(&gate_open, 0);
  kiln_future fut, next;
  seen s = {0, KILN_NOT_READY};
  KT_OK(kiln_graph_launch_future(g, &fut));
  KT_OK(kiln_future_then(&fut, then_record, &s, &next));
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, open_gate_later, NULL), 0);
  KT_OK(kiln_graph_destroy(g)); /* in flight until the gate opens */
  KT_OK(kiln_future_wait(&next));
  assert_int_equal(atomic_load(&s.calls), 1);
  assert_int_equal(atomic_load(&s.status), KILN_SUCCESS);
  pthread_join(t, NULL);
}

/* ---- allocation failures over a parallel graph, launched every way */

static kiln_status sweep_scenario(kiln_context ctx, kiln_buffer x) {
  kiln_graph g = NULL;
  uint32_t in[16] = {3}, out[16] = {0};
  kiln_status st;
  kiln_graph_desc d = KILN_GRAPH_DESC_INIT;
  d.workers = 3;
  if ((st = kiln_graph_create(ctx, &d, &g)) != KILN_SUCCESS) {
    assert_null(g);
    return st;
  }
  kiln_graph_node n[5];
  kiln_future fut = KILN_FUTURE_INIT;
  if ((st = kiln_graph_add_write(g, "w", x, 0, 64, in, &n[0])) == KILN_SUCCESS &&
      (st = kiln_graph_add_host(g, "h1", host_nop, NULL, NULL, 0, &n[1])) == KILN_SUCCESS &&
      (st = kiln_graph_add_host(g, "h2", host_nop, NULL, NULL, 0, &n[2])) == KILN_SUCCESS &&
      (st = kiln_graph_add_host(g, "j", host_nop, NULL, NULL, 0, &n[3])) == KILN_SUCCESS &&
      (st = kiln_graph_add_read(g, "r", x, 0, 64, out, &n[4])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[0], n[1])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[0], n[2])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[1], n[3])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[2], n[3])) == KILN_SUCCESS &&
      (st = kiln_graph_precede(g, n[3], n[4])) == KILN_SUCCESS &&
      (st = kiln_graph_run(g)) == KILN_SUCCESS && (st = kiln_graph_launch(g)) == KILN_SUCCESS &&
      (st = kiln_graph_wait(g)) == KILN_SUCCESS &&
      (st = kiln_graph_launch_future(g, &fut)) == KILN_SUCCESS)
    st = kiln_future_wait(&fut);
  if (st == KILN_SUCCESS && out[0] != 3)
    fail_msg("the scenario read %u, expected 3", out[0]);
  kiln_status ds = kiln_graph_destroy(g);
  return st != KILN_SUCCESS ? st : ds;
}

static void test_alloc_sweep_parallel(void **state) {
  kt_env *env = *state;
  kiln_buffer x = kt_buffer(env->ctx, 64);
  size_t base = kt_alloc_live_count();
  kt_alloc_fail_none();
  KT_OK(sweep_scenario(env->ctx, x));
  KT_OK(kiln_context_synchronize(env->ctx));
  size_t calls = kt_alloc_calls();
  assert_true(calls >= 12); /* graph, nodes, edges, schedule, ready ring, promise, ... */
  for (int mode = 0; mode < 2; mode++)
    for (size_t n = 1; n <= calls + 2; n++) {
      if (mode)
        kt_alloc_fail_from(n);
      else
        kt_alloc_fail_nth(n);
      kiln_status st = sweep_scenario(env->ctx, x);
      size_t failures = kt_alloc_failures();
      kt_alloc_fail_none();
      KT_OK(kiln_context_synchronize(env->ctx));
      if (failures && st != KILN_ERROR_OUT_OF_HOST_MEMORY)
        fail_msg("%s N=%zu: the scenario ended in %s, expected OUT_OF_HOST_MEMORY (%s)",
                 mode ? "from" : "nth", n, kiln_status_name(st), kiln_last_error()->message);
      if (!failures)
        KT_OK(st);
      if (kt_alloc_live_count() > base + 64) /* kiln's op slab may keep grown chunks */
        fail_msg("N=%zu: %zu blocks live, %zu before", n, kt_alloc_live_count(), base);
    }
  KT_OK(kiln_buffer_destroy(x));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_independent_host_nodes_overlap, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_worker_calls_own_graph_refused, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_parallel_failure, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_workers_refused, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_future_then, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_future_when_all, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_future_continuation_relaunches, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_future_outlives_destroy, kt_setup, kt_teardown),
    cmocka_unit_test_setup_teardown(test_alloc_sweep_parallel, kt_setup, kt_teardown),
};
KT_MAIN_CPU(tests)
